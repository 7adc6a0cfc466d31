#!/bin/bash
# reset_password.sh - replaces a tenant's admin password through the local
# Nodo API (POST /api/tenants/<name>/password, CONTRACT sections 10 and 13).
# The password is never an argument: `nodo password` reads it from a
# terminal prompt or from the first line of standard input.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

usage() {
	cat <<'EOF_USAGE'
Usage: reset_password.sh [--json] <nombre_tenant>

Replaces the password of the admin user of <nombre_tenant> (1 to 1024
bytes). On a terminal it is asked for twice; otherwise the first line of
standard input is the password.

Options:
  --json         print the API's raw JSON reply (the tenant's detail)
  -h, --help     show this help

Environment: NODO_ENV_FILE, NODO_API_URL, NODO_API_KEY, NODO_API_TIMEOUT
(as for create_tenant.sh).

Exit status: 0 replaced, 1 the API refused (its reason is printed), 64 usage
error, 69 API unreachable, 78 configuration error.

Example:
  printf '%s\n' "$PASS" | sudo /opt/odoo/scripts/reset_password.sh cliente1
EOF_USAGE
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
if [ "${#args[@]}" -ne 1 ]; then
	usage >&2
	exit "$NODO_EX_USAGE"
fi
name=${args[0]}
[ -n "$name" ] || nodo_die "$NODO_EX_USAGE" "nombre_tenant is empty"
opts=()
[ "$json" -eq 0 ] || opts+=(--json)
# nodo asks on a terminal, or reads the first line of stdin.
nodo_run password "${opts[@]}" -- "$name"
