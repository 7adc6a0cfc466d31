#!/bin/bash
# create_tenant.sh - creates a tenant through the local Nodo API
# (POST /api/tenant, CONTRACT sections 4 and 7). A thin client: the daemon
# does the work, this script only builds the request and prints the result.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

usage() {
	cat <<'EOF'
Usage: create_tenant.sh [--json] <nombre_tenant> <contraseña> [dominio] [plantilla]

Creates the tenant <nombre_tenant>: a copy of the template database with its
own admin password, filestore and DNS record, served at
https://<nombre_tenant>.<dominio>.

Parameters:
  nombre_tenant  the tenant's name, which is its subdomain and its database:
                 2 to 63 characters, a-z 0-9 _ -, starting and ending with a
                 letter or digit (e.g. cliente_nuevo)
  contraseña     password of the tenant's admin user (1 to 1024 bytes).
                 Use "-" to type it at a prompt, or to read it from the first
                 line of standard input: an argument is visible to other
                 users in `ps` while the script runs.
  dominio        domain of the tenant (default: ODOO_DOMAIN of the node)
  plantilla      template database to copy (default: DEFAULT_TEMPLATE_DB of
                 the node, usually tcs)

Options:
  --json         print the API's raw JSON reply instead of the summary
  -h, --help     show this help
  --             end of options (for a password that starts with "-")

Environment:
  NODO_ENV_FILE     env file with PROVISIONING_API_KEY and API_PORT
                    (default /opt/nodo/config/.env; readable by root and the
                    service user only, so run this with sudo)
  NODO_API_URL      API base URL (default http://127.0.0.1:<API_PORT>)
  NODO_API_KEY      key to use instead of the env file's
  NODO_API_TIMEOUT  seconds the whole request may take (default 900)

Exit status: 0 created (even when the DNS record is still pending), 1 the
API refused (its reason is printed), 64 usage error, 69 API unreachable,
78 configuration error.

Example:
  /opt/odoo/scripts/create_tenant.sh nuevo_cliente secreto123 sajet.us tcs
  printf '%s\n' "$PASS" | /opt/odoo/scripts/create_tenant.sh nuevo_cliente -
EOF
}

json=0
args=()
while [ "$#" -gt 0 ]; do
	case $1 in
	--json) json=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		args+=("$@")
		break
		;;
	-?*) nodo_die "$NODO_EX_USAGE" "unknown option: $1 (see --help; put -- before a password that starts with -)" ;;
	*) args+=("$1") ;;
	esac
	shift
done

if [ "${#args[@]}" -lt 2 ] || [ "${#args[@]}" -gt 4 ]; then
	usage >&2
	exit "$NODO_EX_USAGE"
fi
name=${args[0]}
password=${args[1]}
domain=${args[2]-}
template=${args[3]-}

[ -n "$name" ] || nodo_die "$NODO_EX_USAGE" "nombre_tenant is empty"
opts=()
[ "$json" -eq 0 ] || opts+=(--json)
[ -z "$domain" ] || opts+=(--domain "$domain")
[ -z "$template" ] || opts+=(--template "$template")

if [ "$password" = - ]; then
	# nodo asks on a terminal, or reads the first line of stdin.
	nodo_run create "${opts[@]}" -- "$name"
fi
[ -n "$password" ] || nodo_die "$NODO_EX_USAGE" "contraseña is empty"
case $password in
*$'\n'*) nodo_die "$NODO_EX_USAGE" "contraseña contains a line break" ;;
esac
nodo_find
# printf is a builtin: the password reaches nodo through a pipe only.
printf '%s\n' "$password" | "$NODO_BIN" create "${opts[@]}" -- "$name"
