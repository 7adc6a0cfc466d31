#!/bin/bash
# list_tenants.sh - lists the node's tenants through the local Nodo API
# (GET /api/tenants, CONTRACT sections 4 and 7) as a table.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

usage() {
	cat <<'EOF'
Usage: list_tenants.sh [--json] [dominio]

Lists the node's tenants (sorted by subdomain) as a table of SUBDOMAIN,
DOMAIN and URL, followed by their number.

Parameters:
  dominio        show only the tenants of this domain (e.g. sajet.us)

Options:
  --json         print the API's raw JSON reply instead of the table
  -h, --help     show this help

Environment:
  NODO_ENV_FILE     env file with PROVISIONING_API_KEY and API_PORT
                    (default /opt/nodo/config/.env; readable by root and the
                    service user only, so run this with sudo)
  NODO_API_URL      API base URL (default http://127.0.0.1:<API_PORT>)
  NODO_API_KEY      key to use instead of the env file's
  NODO_API_TIMEOUT  seconds the whole request may take (default 900)

Exit status: 0 listed (also when there are none), 1 the API refused (its
reason is printed), 64 usage error, 69 API unreachable, 78 configuration
error.

Example:
  /opt/odoo/scripts/list_tenants.sh sajet.us
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
	-?*) nodo_die "$NODO_EX_USAGE" "unknown option: $1 (see --help)" ;;
	*) args+=("$1") ;;
	esac
	shift
done
if [ "${#args[@]}" -gt 1 ]; then
	usage >&2
	exit "$NODO_EX_USAGE"
fi
domain=${args[0]-}
opts=()
[ "$json" -eq 0 ] || opts+=(--json)
nodo_run list "${opts[@]}" -- ${domain:+"$domain"}
