# shellcheck shell=bash
# nodo-common.sh - shared code of the Nodo CLI wrappers (CONTRACT section 7):
# create_tenant.sh, list_tenants.sh and delete_tenant.sh source this file
# from the directory they really live in (symlinks resolved).
#
# What it does for them:
#   * reads PROVISIONING_API_KEY, API_HOST and API_PORT from the env file
#     ($NODO_ENV_FILE, default /opt/nodo/config/.env) WITHOUT sourcing it:
#     the file is parsed line by line as data, never executed;
#   * calls the local API with curl, passing the key (a header) and the JSON
#     body through files in a private mode-0700 temporary directory, so that
#     neither appears on a command line that `ps` shows to other users;
#   * builds JSON strings safely and reads flat fields of the API's replies
#     with sed (jq and python are not required).
#
# Exit statuses shared by the wrappers (sysexits.h, like the daemons):
#   0 success, 1 the API refused the request (its "detail" is on stderr),
#   64 usage error, 69 the API cannot be reached or gave no usable answer,
#   78 configuration error (env file unreadable, no key, bad API_PORT).
#
# Environment:
#   NODO_ENV_FILE     env file to read (default /opt/nodo/config/.env)
#   NODO_API_URL      base URL of the API (default http://127.0.0.1:<API_PORT>)
#   NODO_API_KEY      use this key instead of the env file's
#   NODO_API_TIMEOUT  seconds a request may take in all (default 900)

# Byte semantics for the string functions below (escaping, url-encoding).
LC_ALL=C
export LC_ALL
# Every file the wrappers create (the key, the body) is private.
umask 077

readonly NODO_EX_API=1 NODO_EX_USAGE=64 NODO_EX_UNAVAILABLE=69 NODO_EX_CONFIG=78
NODO_DEFAULT_ENV_FILE=/opt/nodo/config/.env
NODO_PROG=${0##*/}
NODO_TMPDIR=
NODO_STATUS=
NODO_BODY=

# nodo_die STATUS MESSAGE...: prints "prog: MESSAGE" on stderr and exits.
nodo_die() {
	local status=$1
	shift
	printf '%s: %s\n' "$NODO_PROG" "$*" >&2
	exit "$status"
}

# nodo_warn MESSAGE...: prints "prog: MESSAGE" on stderr.
nodo_warn() {
	printf '%s: %s\n' "$NODO_PROG" "$*" >&2
}

nodo_cleanup() {
	if [ -n "$NODO_TMPDIR" ]; then
		rm -rf -- "$NODO_TMPDIR"
		NODO_TMPDIR=
	fi
}

# The private directory holding the header and body files; removed on exit,
# including on Ctrl-C and SIGTERM (which would otherwise skip the EXIT trap).
nodo_tmpdir() {
	if [ -z "$NODO_TMPDIR" ]; then
		trap nodo_cleanup EXIT
		trap 'nodo_cleanup; exit 129' HUP
		trap 'nodo_cleanup; exit 130' INT
		trap 'nodo_cleanup; exit 143' TERM
		NODO_TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/nodo-cli.XXXXXXXX") ||
			nodo_die "$NODO_EX_CONFIG" "cannot create a temporary directory"
	fi
}

# nodo_trim VALUE: prints VALUE without leading and trailing white space.
nodo_trim() {
	local s=$1
	s=${s#"${s%%[![:space:]]*}"}
	s=${s%"${s##*[![:space:]]}"}
	printf '%s' "$s"
}

# nodo_env_value RAW: the value of a KEY=value line as systemd's
# EnvironmentFile= reads it: surrounding white space dropped, one pair of
# matching single quotes (taken literally) or double quotes (\" and \\
# unescaped) removed.
nodo_env_value() {
	local v
	v=$(nodo_trim "$1")
	if [ "${#v}" -ge 2 ]; then
		case $v in
		\'*\')
			v=${v:1:${#v}-2}
			;;
		\"*\")
			v=${v:1:${#v}-2}
			v=${v//\\\\/$'\001'}
			v=${v//\\\"/\"}
			v=${v//$'\001'/\\}
			;;
		esac
	fi
	printf '%s' "$v"
}

# The CLI's own environment variables; any other NODO_* one is a typo
# (NODO_API_ULR) and gets a warning instead of silently doing nothing.
NODO_CLI_KEYS='NODO_ENV_FILE NODO_API_URL NODO_API_KEY NODO_API_TIMEOUT'

# nodo_check_env_keys: warns about each unknown NODO_* environment variable.
nodo_check_env_keys() {
	local k
	for k in $(compgen -e); do
		case $k in
		NODO_ENV_FILE | NODO_API_URL | NODO_API_KEY | NODO_API_TIMEOUT) ;;
		NODO_BUILD | NODO_CRASH_TRIALS) ;; # the Makefile's, for tests
		NODO_*) nodo_warn "unknown environment variable $k ignored" \
			"(the scripts read $NODO_CLI_KEYS)" ;;
		esac
	done
}

# nodo_load_env: sets NODO_KEY and NODO_URL from the env file and the
# NODO_* overrides. Dies with 78 when the file cannot be read (unless
# NODO_API_KEY and NODO_API_URL make it unnecessary) or the key is missing.
nodo_load_env() {
	local file=${NODO_ENV_FILE:-$NODO_DEFAULT_ENV_FILE}
	local line key val have_file=0
	local f_key='' f_host='' f_port=''

	nodo_check_env_keys
	if [ -r "$file" ] && [ -f "$file" ]; then
		have_file=1
	elif [ -n "${NODO_API_KEY:-}" ] && [ -n "${NODO_API_URL:-}" ]; then
		have_file=0 # everything needed comes from the environment
	elif [ -e "$file" ]; then
		nodo_die "$NODO_EX_CONFIG" "cannot read the env file $file" \
			"(it holds the API key and is readable by root and the group nodo only: run" \
			"with sudo, or as a member of the group nodo (sudo adduser <your user> nodo," \
			"then log in again; never Odoo's user, which must not read the key);" \
			"or set NODO_ENV_FILE)"
	else
		nodo_die "$NODO_EX_CONFIG" "env file $file not found" \
			"(is Nodo installed? set NODO_ENV_FILE to use another file)"
	fi

	if [ "$have_file" -eq 1 ]; then
		while IFS= read -r line || [ -n "$line" ]; do
			line=${line%$'\r'}
			line=${line#"${line%%[![:space:]]*}"}
			case $line in
			'' | '#'* | ';'*) continue ;;
			*=*) ;;
			*) continue ;;
			esac
			key=$(nodo_trim "${line%%=*}")
			case $key in
			PROVISIONING_API_KEY | API_HOST | API_PORT) ;;
			*) continue ;; # only what the wrappers need is looked at
			esac
			val=$(nodo_env_value "${line#*=}")
			case $key in
			PROVISIONING_API_KEY) f_key=$val ;;
			API_HOST) f_host=$val ;;
			API_PORT) f_port=$val ;;
			esac
		done <"$file" || nodo_die "$NODO_EX_CONFIG" "cannot read the env file $file"
	fi

	NODO_KEY=${NODO_API_KEY:-$f_key}
	if [ -z "$NODO_KEY" ]; then
		nodo_die "$NODO_EX_CONFIG" "PROVISIONING_API_KEY is not set in $file"
	fi
	case $NODO_KEY in
	*[[:cntrl:]]*)
		nodo_die "$NODO_EX_CONFIG" "PROVISIONING_API_KEY in $file contains control characters"
		;;
	esac

	if [ -n "${NODO_API_URL:-}" ]; then
		NODO_URL=${NODO_API_URL%/}
		return 0
	fi
	f_port=${f_port:-8070}
	case $f_port in
	'' | *[!0-9]* | 0*)
		nodo_die "$NODO_EX_CONFIG" "API_PORT in $file is not a port number: $f_port"
		;;
	esac
	if [ "${#f_port}" -gt 5 ] || [ "$f_port" -gt 65535 ]; then
		nodo_die "$NODO_EX_CONFIG" "API_PORT in $file is not a port number: $f_port"
	fi
	# The daemon listens on API_HOST; a wildcard address is reached locally.
	case $f_host in
	'' | 0.0.0.0 | '*') f_host=127.0.0.1 ;;
	:: | '[::]') f_host='[::1]' ;;
	\[*\]) ;;
	*:*) f_host="[$f_host]" ;;
	esac
	NODO_URL="http://$f_host:$f_port"
}

# nodo_json_str VALUE: prints VALUE as a JSON string, quotes included:
# " and \ escaped, control characters as \u00XX. Bytes >= 0x80 pass through
# unchanged (UTF-8 stays UTF-8).
nodo_json_str() {
	local s=$1 out='' c i
	s=${s//\\/\\\\}
	s=${s//\"/\\\"}
	case $s in
	*[[:cntrl:]]*)
		for ((i = 0; i < ${#s}; i++)); do
			c=${s:i:1}
			case $c in
			[[:cntrl:]]) printf -v c '\\u%04x' "'$c" ;;
			esac
			out+=$c
		done
		s=$out
		;;
	esac
	printf '"%s"' "$s"
}

# nodo_urlencode VALUE: prints VALUE percent-encoded for a query string.
nodo_urlencode() {
	local s=$1 out='' c i
	for ((i = 0; i < ${#s}; i++)); do
		c=${s:i:1}
		case $c in
		[A-Za-z0-9._~-]) out+=$c ;;
		*) printf -v c '%%%02X' "'$c" && out+=$c ;;
		esac
	done
	printf '%s' "$out"
}

# nodo_json_unescape VALUE: the text of a JSON string's inside. \uXXXX is
# decoded for printable ASCII only (the daemon sends UTF-8 as is); control
# characters become "?" so a reply cannot drive the terminal.
nodo_json_unescape() {
	local s=$1 out='' c hex
	while :; do
		case $s in
		*\\*) ;;
		*) break ;;
		esac
		out+=${s%%\\*}
		s=${s#*\\}
		c=${s:0:1}
		s=${s:1}
		case $c in
		n | r | t) out+=' ' ;;
		b | f) out+='?' ;;
		u)
			hex=${s:0:4}
			s=${s:4}
			case $hex in
			00[2-7][0-9A-Fa-f])
				if [ "$hex" = 007f ] || [ "$hex" = 007F ]; then
					out+='?'
				else
					# shellcheck disable=SC2059 # hex is two hex digits
					printf -v c "\\x${hex:2:2}" && out+=$c
				fi
				;;
			00[01][0-9A-Fa-f]) out+='?' ;;
			*) out+="\\u$hex" ;;
			esac
			;;
		*) out+=$c ;; # \" \\ \/
		esac
	done
	out+=$s
	out=${out//[[:cntrl:]]/?}
	printf '%s' "$out"
}

# nodo_json_flat JSON: the JSON text on one line. JSON strings cannot hold a
# raw line break, so joining lines changes nothing inside them.
nodo_json_flat() {
	local s=$1
	s=${s//$'\r'/ }
	s=${s//$'\n'/ }
	printf '%s' "$s"
}

# nodo_json_get KEY JSON: prints the (unescaped) string value of the last
# "KEY": "..." member in JSON, at any depth; returns 1 when there is none.
# Good for the API's flat replies, where each key name is used once.
nodo_json_get() {
	local key=$1 json raw
	json=$(nodo_json_flat "$2")
	# The "=" marks a match, so that an empty string is told from no member.
	raw=$(printf '%s\n' "$json" |
		sed -nE 's/.*"'"$key"'"[[:space:]]*:[[:space:]]*"(([^"\\]|\\.)*)".*/=\1/p')
	[ -n "$raw" ] || return 1
	nodo_json_unescape "${raw#=}"
}

# nodo_json_scalar KEY JSON: prints a number, true, false or null value of
# "KEY"; returns 1 when there is none.
nodo_json_scalar() {
	local key=$1 json raw
	json=$(nodo_json_flat "$2")
	raw=$(printf '%s\n' "$json" |
		sed -nE 's/.*"'"$key"'"[[:space:]]*:[[:space:]]*(-?[0-9][0-9.eE+-]*|true|false|null).*/\1/p')
	[ -n "$raw" ] || return 1
	printf '%s' "$raw"
}

# nodo_request METHOD PATH [BODY]: calls the API. Sets NODO_STATUS (the HTTP
# status) and NODO_BODY (the reply). Dies with 69 when there is no HTTP
# answer. The key and the body travel in mode-0600 files, never in argv.
nodo_request() {
	local method=$1 path=$2 body=${3-} rc=0 status timeout
	local -a args
	nodo_tmpdir
	timeout=${NODO_API_TIMEOUT:-900}
	case $timeout in
	'' | *[!0-9]*) nodo_die "$NODO_EX_USAGE" "NODO_API_TIMEOUT must be a number of seconds" ;;
	esac

	# Header lines for curl -H @file. The key cannot hold a line break
	# (checked in nodo_load_env), so it cannot inject another header.
	printf 'X-API-KEY: %s\nAccept: application/json\n' "$NODO_KEY" >"$NODO_TMPDIR/headers"
	args=(-q -sS --noproxy '*' --connect-timeout 10 --max-time "$timeout"
		-X "$method" -H "@$NODO_TMPDIR/headers"
		-A "nodo-cli/1.0" -o "$NODO_TMPDIR/reply" -w '%{http_code}')
	if [ "$#" -ge 3 ]; then
		printf '%s' "$body" >"$NODO_TMPDIR/body"
		args+=(-H 'Content-Type: application/json' --data-binary "@$NODO_TMPDIR/body")
	fi
	: >"$NODO_TMPDIR/reply"
	status=$(curl "${args[@]}" -- "$NODO_URL$path" 2>"$NODO_TMPDIR/curl.err") || rc=$?
	NODO_BODY=$(<"$NODO_TMPDIR/reply")
	NODO_STATUS=$status
	if [ "$rc" -ne 0 ] || [ -z "$status" ] || [ "$status" = 000 ]; then
		local why
		why=$(sed -n '1s/^curl: ([0-9]*) //p' "$NODO_TMPDIR/curl.err")
		case $rc in
		7) nodo_die "$NODO_EX_UNAVAILABLE" "cannot connect to the Nodo API at $NODO_URL" \
			"(${why:-connection refused}). Is odoo-local-api running?" \
			"Try: systemctl status odoo-local-api" ;;
		6) nodo_die "$NODO_EX_UNAVAILABLE" "cannot resolve the host of $NODO_URL (${why:-})" ;;
		28) nodo_die "$NODO_EX_UNAVAILABLE" "the Nodo API at $NODO_URL did not answer in time" \
			"(${why:-timeout}); the operation may still complete on the server" ;;
		*) nodo_die "$NODO_EX_UNAVAILABLE" "request to the Nodo API at $NODO_URL failed" \
			"(curl exit $rc${why:+: $why})" ;;
		esac
	fi
}

# nodo_is_success: true when NODO_STATUS is 2xx.
nodo_is_success() {
	case $NODO_STATUS in
	2??) return 0 ;;
	*) return 1 ;;
	esac
}

# nodo_fail_reply: reports a non-2xx reply: the API's "detail" (and code) on
# stderr, then exits 1. Replies that are not the API's JSON are reported as
# such.
nodo_fail_reply() {
	local detail code
	if detail=$(nodo_json_get detail "$NODO_BODY") && [ -n "$detail" ]; then
		code=$(nodo_json_get code "$NODO_BODY") || code=
		nodo_die "$NODO_EX_API" "$detail (HTTP $NODO_STATUS${code:+ $code})"
	fi
	case $NODO_STATUS in
	401) detail="unauthorized: the key in ${NODO_ENV_FILE:-$NODO_DEFAULT_ENV_FILE} is not the API's" ;;
	*) detail="unexpected reply from $NODO_URL" ;;
	esac
	local first
	first=$(nodo_json_flat "$NODO_BODY")
	first=${first//[[:cntrl:]]/?}
	nodo_die "$NODO_EX_API" "$detail (HTTP $NODO_STATUS)${first:+: ${first:0:200}}"
}

# nodo_print_raw: prints the reply as received (for --json).
nodo_print_raw() {
	printf '%s\n' "$NODO_BODY"
}

# nodo_dns_text JSON: one line describing the "dns" member of a reply.
nodo_dns_text() {
	local json=$1 status name detail
	status=$(nodo_json_get status "$json") || status=unknown
	name=$(nodo_json_get name "$json") || name=
	detail=$(nodo_json_get detail "$json") || detail=
	case $status in
	created | exists | deleted) printf '%s%s' "$status" "${name:+ ($name)}" ;;
	absent) printf 'absent (no record to delete)' ;;
	pending) printf 'pending%s (odoo-db-watcher will retry)' "${detail:+ — $detail}" ;;
	conflict) printf 'conflict%s (nothing was changed)' "${detail:+ — $detail}" ;;
	disabled) printf 'disabled (no CLOUDFLARE_API_TOKEN)' ;;
	*) printf '%s%s' "$status" "${detail:+ — $detail}" ;;
	esac
}
