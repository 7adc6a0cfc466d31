#!/bin/bash
# backup_tenant.sh - downloads a tenant's backup through the local Nodo API
# (GET /api/tenants/<name>/backup, CONTRACT sections 10 and 13): a zip in
# Odoo's own format, which Odoo's database manager restores. A thin wrapper
# over `nodo backup`: the daemon makes the zip while nodo streams it to disk.
set -eu

# shellcheck source-path=SCRIPTDIR
# shellcheck source=nodo-common.sh
. "$(dirname -- "$(readlink -f -- "${BASH_SOURCE[0]}")")/nodo-common.sh"

usage() {
	cat <<'EOF_USAGE'
Usage: backup_tenant.sh [--json] <nombre_tenant> [archivo]

Downloads a backup of the tenant <nombre_tenant> as a zip in Odoo's own
format (dump.sql, filestore/, manifest.json). The file appears only when
the download is complete: a broken transfer leaves nothing.

Parameters:
  nombre_tenant  the tenant (its subdomain)
  archivo        where to write the zip (default:
                 ./<nombre_tenant>_<UTC YYYY-MM-DD_HH-MM-SS>.zip);
                 "-" writes it to standard output

Options:
  --json         print {"subdomain","file","bytes"} instead of the summary
  -h, --help     show this help

A progress bar is shown when standard error is a terminal.

Environment:
  NODO_ENV_FILE     env file with PROVISIONING_API_KEY and API_PORT
                    (default /opt/nodo/config/.env)
  NODO_API_URL      API base URL (default http://127.0.0.1:<API_PORT>)
  NODO_API_KEY      key to use instead of the env file's
  NODO_API_TIMEOUT  seconds the whole download may take (default: no limit)

Exit status: 0 downloaded, 1 the API refused (its reason is printed), 64
usage error (or the file exists), 69 API unreachable or the download broke
off, 74 the file could not be written, 78 configuration error.

Example:
  sudo /opt/odoo/scripts/backup_tenant.sh cliente1 /srv/backups/cliente1.zip
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
if [ "${#args[@]}" -lt 1 ] || [ "${#args[@]}" -gt 2 ]; then
	usage >&2
	exit "$NODO_EX_USAGE"
fi
name=${args[0]}
file=${args[1]-}
[ -n "$name" ] || nodo_die "$NODO_EX_USAGE" "nombre_tenant is empty"
opts=()
[ "$json" -eq 0 ] || opts+=(--json)
[ -z "$file" ] || opts+=(--output "$file")
nodo_run backup "${opts[@]}" -- "$name"
