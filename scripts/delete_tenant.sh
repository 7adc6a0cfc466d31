#!/bin/bash
# delete_tenant.sh - deletes a tenant through the local Nodo API
# (DELETE /api/tenant, CONTRACT sections 4, 7 and 9): to the trash (or
# for good when TRASH_RETENTION_DAYS=0), and the DNS record the node owns
# for it.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

usage() {
	cat <<'EOF'
Usage: delete_tenant.sh [--yes] [--json] <nombre_tenant>

Deletes the tenant <nombre_tenant>: its sessions are ended and the DNS
record the node owns for it deleted. With TRASH_RETENTION_DAYS > 0 (default
7) its database and filestore go to the trash, restorable for that many days
(GET /api/trash, POST /api/trash/<id>/restore); with 0 they are removed for
good.

Parameters:
  nombre_tenant  the tenant's name (its subdomain and database)

Options:
  -y, --yes      do not ask for confirmation. Without it the script asks
                 "Delete tenant X and all its data? [y/N]" when standard
                 input is a terminal; from a script, a pipe or the APP
                 server (standard input not a terminal) it deletes without
                 asking, as the seed's script did.
  --json         print the API's raw JSON reply instead of the summary
  -h, --help     show this help

Environment:
  NODO_ENV_FILE     env file with PROVISIONING_API_KEY and API_PORT
                    (default /opt/nodo/config/.env; readable by root and the
                    service user only, so run this with sudo)
  NODO_API_URL      API base URL (default http://127.0.0.1:<API_PORT>)
  NODO_API_KEY      key to use instead of the env file's
  NODO_API_TIMEOUT  seconds the whole request may take (default 900)

Exit status: 0 deleted, 1 the API refused (its reason is printed, e.g. an
unknown tenant) or the confirmation was declined, 64 usage error, 69 API
unreachable, 78 configuration error.

Example:
  /opt/odoo/scripts/delete_tenant.sh nombre_tenant
  /opt/odoo/scripts/delete_tenant.sh --yes nombre_tenant
EOF
}

json=0
yes=0
args=()
while [ "$#" -gt 0 ]; do
	case $1 in
	--json) json=1 ;;
	-y | --yes) yes=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	--)
		shift
		args+=("$@")
		break
		;;
	-?*) nodo_die "$NODO_EX_USAGE" "unknown option: $1 (see --help)" ;;
	*) args+=("$1") ;;
	esac
	shift
done
if [ "${#args[@]}" -ne 1 ]; then
	usage >&2
	exit "$NODO_EX_USAGE"
fi
name=${args[0]}
[ -n "$name" ] || nodo_die "$NODO_EX_USAGE" "nombre_tenant is empty"

# Read the configuration first: no point asking when we cannot call the API.
nodo_load_env

# Only a person at a terminal is asked; callers without one (scripts, the
# APP server) get the seed's behaviour: delete at once.
if [ "$yes" -eq 0 ] && [ -t 0 ]; then
	answer=
	printf 'Delete tenant %s and all its data? [y/N] ' "$name" >&2
	IFS= read -r answer || answer=
	case $answer in
	y | Y | yes | YES | Yes) ;;
	*)
		printf 'Not deleted.\n' >&2
		exit "$NODO_EX_API"
		;;
	esac
fi

# The tenant travels in the body, not the query string: no URL encoding.
nodo_request DELETE /api/tenant '{"subdomain":'"$(nodo_json_str "$name")"'}'

if ! nodo_is_success; then
	[ "$json" -eq 0 ] || nodo_print_raw
	nodo_fail_reply
fi
if [ "$json" -eq 1 ]; then
	nodo_print_raw
	exit 0
fi

r_sub=$(nodo_json_get subdomain "$NODO_BODY") || r_sub=$name
# With TRASH_RETENTION_DAYS > 0 the API keeps it in the trash (CONTRACT 9).
if r_id=$(nodo_json_get id "$NODO_BODY") && [ -n "$r_id" ]; then
	r_exp=$(nodo_json_get expires_at "$NODO_BODY") || r_exp=unknown
	printf 'Tenant %s moved to the trash (id %s, restorable until %s).\n' \
		"$r_sub" "$r_id" "$r_exp"
else
	printf 'Tenant %s deleted (database and filestore).\n' "$r_sub"
fi
printf 'DNS: %s\n' "$(nodo_dns_text "$NODO_BODY")"
