#!/bin/bash
# delete_tenant.sh - deletes a tenant through the local Nodo API
# (DELETE /api/tenant, CONTRACT sections 4, 9 and 13): to the trash, or for
# good with --purge. A thin wrapper over `nodo delete`.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

usage() {
	cat <<'EOF'
Usage: delete_tenant.sh [--yes] [--json] <nombre_tenant>
       delete_tenant.sh --purge [--yes] [--json] <nombre_tenant>

Deletes the tenant <nombre_tenant>: its sessions are ended, it disappears
(not listed, not reachable, its DNS record deleted, its name free) and goes
to the trash, where it stays restorable for TRASH_RETENTION_DAYS (nodo trash,
nodo trash-restore). No question is asked.

Parameters:
  nombre_tenant  the tenant's name (its subdomain and database)

Options:
  --purge        delete it for good: database, filestore and DNS record,
                 no trash, no undo
  -y, --yes      do not ask for confirmation. A delete that cannot be undone
                 (--purge, or a node without a trash) asks
                 "Delete tenant X and all its data? [y/N]" when standard
                 input is a terminal; from a script, a pipe or the APP
                 server (standard input not a terminal) nothing is ever
                 asked, as the seed's script did.
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
unreachable, 78 configuration error (see nodo(1), which does the work).

Example:
  /opt/odoo/scripts/delete_tenant.sh nombre_tenant
  /opt/odoo/scripts/delete_tenant.sh --purge --yes nombre_tenant
EOF
}

json=0
yes=0
purge=0
args=()
while [ "$#" -gt 0 ]; do
	case $1 in
	--json) json=1 ;;
	-y | --yes) yes=1 ;;
	--purge) purge=1 ;;
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
[ "$yes" -eq 0 ] || opts+=(--yes)
[ "$purge" -eq 0 ] || opts+=(--purge)
nodo_run delete "${opts[@]}" -- "$name"
