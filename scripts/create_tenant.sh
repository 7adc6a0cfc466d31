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

if [ "$password" = - ]; then
	if [ -t 0 ]; then
		IFS= read -r -s -p "Admin password for $name: " password || password=
		printf '\n' >&2
		IFS= read -r -s -p "Repeat it: " again || again=
		printf '\n' >&2
		[ "$password" = "$again" ] || nodo_die "$NODO_EX_USAGE" "the passwords differ"
	else
		IFS= read -r password || [ -n "$password" ] ||
			nodo_die "$NODO_EX_USAGE" "no password on standard input"
		password=${password%$'\r'}
	fi
fi
[ -n "$name" ] || nodo_die "$NODO_EX_USAGE" "nombre_tenant is empty"
[ -n "$password" ] || nodo_die "$NODO_EX_USAGE" "contraseña is empty"

nodo_load_env

body='{"subdomain":'$(nodo_json_str "$name")',"admin_password":'$(nodo_json_str "$password")
if [ -n "$domain" ]; then
	body+=',"domain":'$(nodo_json_str "$domain")
fi
if [ -n "$template" ]; then
	body+=',"template_db":'$(nodo_json_str "$template")
fi
body+='}'
password=

nodo_request POST /api/tenant "$body"
body=

if ! nodo_is_success; then
	[ "$json" -eq 0 ] || nodo_print_raw
	nodo_fail_reply
fi
if [ "$json" -eq 1 ]; then
	nodo_print_raw
	exit 0
fi

r_sub=$(nodo_json_get subdomain "$NODO_BODY") || r_sub=$name
r_db=$(nodo_json_get database "$NODO_BODY") || r_db=$r_sub
r_domain=$(nodo_json_get domain "$NODO_BODY") || r_domain=${domain:-?}
r_url=$(nodo_json_get url "$NODO_BODY") || r_url="https://$r_sub.$r_domain"
r_template=$(nodo_json_get template_db "$NODO_BODY") || r_template=${template:-?}
dns=$(nodo_dns_text "$NODO_BODY")

printf 'Tenant %s created.\n' "$r_sub"
printf 'URL: %s\n' "$r_url"
printf 'Database: %s\n' "$r_db"
printf 'Domain: %s\n' "$r_domain"
printf 'Template: %s\n' "$r_template"
printf 'DNS: %s\n' "$dns"
if warning=$(nodo_json_get warning "$NODO_BODY") && [ -n "$warning" ]; then
	nodo_warn "warning: $warning"
fi
