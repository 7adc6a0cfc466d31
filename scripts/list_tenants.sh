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

nodo_load_env
path=/api/tenants
if [ -n "$domain" ]; then
	path+="?domain=$(nodo_urlencode "$domain")"
fi
nodo_request GET "$path"

if ! nodo_is_success; then
	[ "$json" -eq 0 ] || nodo_print_raw
	nodo_fail_reply
fi
if [ "$json" -eq 1 ]; then
	nodo_print_raw
	exit 0
fi

# The inside of the "tenants" array, one object per line. Subdomains,
# domains and URLs cannot contain "]", "{" or "}", so splitting the array on
# "},{" is exact for this reply.
flat=$(nodo_json_flat "$NODO_BODY")
inner=$(printf '%s\n' "$flat" |
	sed -nE 's/.*"tenants"[[:space:]]*:[[:space:]]*\[([^]]*)\].*/=\1/p')
if [ -z "$inner" ]; then
	nodo_die "$NODO_EX_UNAVAILABLE" "unexpected reply from $NODO_URL (no \"tenants\" array)"
fi
inner=${inner#=}
objects=$(printf '%s\n' "$inner" |
	sed -E 's/^[[:space:]]*\{//; s/\}[[:space:]]*$//; s/\}[[:space:]]*,[[:space:]]*\{/\n/g')

# field KEY OBJECT: sets REPLY to the string value of KEY in one flat
# object, without forking when there is nothing to unescape (this runs for
# every tenant).
field() {
	local re='"'"$1"'"[[:space:]]*:[[:space:]]*"(([^"\\]|\\.)*)"'
	REPLY=
	if [[ $2 =~ $re ]]; then
		REPLY=${BASH_REMATCH[1]}
		case $REPLY in
		*\\* | *[[:cntrl:]]*) REPLY=$(nodo_json_unescape "$REPLY") ;;
		esac
	fi
}

subs=() doms=() urls=()
w1=9 w2=6 w3=3 # at least the width of the headers
while IFS= read -r obj; do
	case $obj in
	*[![:space:]]*) ;;
	*) continue ;;
	esac
	field subdomain "$obj"
	s=$REPLY
	field domain "$obj"
	d=$REPLY
	field url "$obj"
	u=$REPLY
	subs+=("$s") doms+=("$d") urls+=("$u")
	[ "${#s}" -le "$w1" ] || w1=${#s}
	[ "${#d}" -le "$w2" ] || w2=${#d}
	[ "${#u}" -le "$w3" ] || w3=${#u}
done <<<"$objects"

count=$(nodo_json_scalar count "$NODO_BODY") || count=${#subs[@]}

if [ "${#subs[@]}" -eq 0 ]; then
	printf 'No tenants%s.\n' "${domain:+ in $domain}"
else
	printf '%-*s  %-*s  %s\n' "$w1" SUBDOMAIN "$w2" DOMAIN URL
	for i in "${!subs[@]}"; do
		printf '%-*s  %-*s  %s\n' "$w1" "${subs[i]}" "$w2" "${doms[i]}" "${urls[i]}"
	done
fi
if [ "$count" = 1 ]; then
	printf '1 tenant\n'
else
	printf '%s tenants\n' "$count"
fi
