#!/bin/bash
# backup_tenant.sh - downloads a tenant's backup through the local Nodo API
# (GET /api/tenants/<name>/backup, CONTRACT sections 10 and 13): a zip in
# Odoo's own format, which Odoo's database manager restores. A thin client:
# the daemon makes the zip while it streams it.
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

Exit status: 0 downloaded, 1 the API refused (its reason is printed) or the
download broke, 64 usage error, 69 API unreachable, 78 configuration error.

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
if [ -z "$file" ]; then
	file="./${name}_$(date -u +%Y-%m-%d_%H-%M-%S).zip"
fi

nodo_load_env
nodo_tmpdir
printf 'X-API-KEY: %s\n' "$NODO_KEY" >"$NODO_TMPDIR/headers"

if [ "$file" = - ]; then
	part=$NODO_TMPDIR/backup.zip
else
	[ -d "$(dirname -- "$file")" ] ||
		nodo_die "$NODO_EX_USAGE" "no such folder: $(dirname -- "$file")"
	[ ! -e "$file" ] || nodo_die "$NODO_EX_USAGE" "$file exists already"
	part=$file.part
	# removed on any failure or interruption
	trap 'rm -f -- "$part"; nodo_cleanup' EXIT
fi

args=(-q --noproxy '*' --connect-timeout 10 -H "@$NODO_TMPDIR/headers"
	-A "nodo-cli/1.0" -o "$part" -w '%{http_code}')
if [ -n "${NODO_API_TIMEOUT:-}" ]; then
	case $NODO_API_TIMEOUT in
	*[!0-9]*) nodo_die "$NODO_EX_USAGE" "NODO_API_TIMEOUT must be a number of seconds" ;;
	esac
	args+=(--max-time "$NODO_API_TIMEOUT")
fi
if [ -t 2 ] && [ "$json" -eq 0 ]; then
	args+=(--progress-bar)
else
	args+=(-sS)
fi
rc=0
status=$(curl "${args[@]}" -- "$NODO_URL/api/tenants/$(nodo_urlencode "$name")/backup") || rc=$?
NODO_STATUS=$status
if [ -z "$status" ] || [ "$status" = 000 ]; then
	nodo_die "$NODO_EX_UNAVAILABLE" "cannot reach the Nodo API at $NODO_URL (curl exit $rc)." \
		"Is odoo-local-api running? Try: systemctl status odoo-local-api"
fi
if [ "$status" != 200 ]; then
	NODO_BODY=$(head -c 65536 -- "$part")
	rm -f -- "$part"
	nodo_fail_reply
fi
if [ "$rc" -ne 0 ]; then
	rm -f -- "$part"
	nodo_die "$NODO_EX_API" "the backup of $name broke off (curl exit $rc); nothing was kept." \
		"The daemon's log says why: journalctl -u odoo-local-api"
fi
bytes=$(stat -c %s -- "$part")
if [ "$file" = - ]; then
	cat -- "$part"
	file=-
else
	mv -- "$part" "$file"
	trap nodo_cleanup EXIT
fi
if [ "$json" -eq 1 ]; then
	printf '{"subdomain":%s,"file":%s,"bytes":%s}\n' "$(nodo_json_str "$name")" \
		"$(nodo_json_str "$file")" "$bytes"
elif [ "$file" != - ]; then
	printf 'Backup of %s written to %s (%s bytes).\n' "$name" "$file" "$bytes"
fi
