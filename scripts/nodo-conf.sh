# shellcheck shell=sh
# nodo-conf.sh - reads Odoo's config and Nodo's env file, and sets a key of
# the env file. Sourced, never run, by install.sh, watcher-user.sh and the
# package's postinst, so each rule is written once. POSIX sh.
#
# Values are read as data (never sourced) and written with shell builtins
# only: a secret is never on a command line that `ps` shows.

# odoo_conf_get FILE KEY: the value of KEY in the [options] section of
# Odoo's config FILE ("key = value" or "key: value", the last line wins,
# keys compared without case), or nothing; status 1 when no line sets it
# or FILE cannot be read. "False" is printed as it is: callers decide.
odoo_conf_get() {
	awk -v want="$2" '
		{ sub(/\r$/, "") }
		/^[ \t]*\[/ { opt = ($0 ~ /^[ \t]*\[options\][ \t]*$/); next }
		!opt || /^[ \t]*[#;]/ { next }
		{
			line = $0
			p = index(line, "="); q = index(line, ":")
			if (p == 0 || (q > 0 && q < p)) p = q
			if (p == 0) next
			k = substr(line, 1, p - 1); v = substr(line, p + 1)
			gsub(/^[ \t]+|[ \t\r]+$/, "", k); gsub(/^[ \t]+|[ \t\r]+$/, "", v)
			if (tolower(k) == tolower(want)) { val = v; found = 1 }
		}
		END { if (found) print val; exit (found ? 0 : 1) }
	' "$1" 2>/dev/null
}

# env_get FILE KEY: the value of KEY in the env file FILE (the last line
# that sets it, surrounding blanks and one pair of quotes removed), or
# nothing; status 1 when no line sets KEY or FILE cannot be read.
env_get() {
	[ -f "$1" ] && [ -r "$1" ] || return 1
	awk -v want="$2" '
		{
			sub(/\r$/, ""); line = $0; sub(/^[ \t]+/, "", line)
			if (index(line, want) != 1) next
			rest = substr(line, length(want) + 1)
			if (rest !~ /^[ \t]*=/) next
			sub(/^[ \t]*=[ \t]*/, "", rest); sub(/[ \t]+$/, "", rest)
			if (rest ~ /^".*"$/ || rest ~ /^\047.*\047$/)
				rest = substr(rest, 2, length(rest) - 2)
			val = rest; found = 1
		}
		END { if (found) print val; exit (found ? 0 : 1) }
	' "$1"
}

# env_set FILE KEY VALUE [COMMENT]: sets KEY to VALUE in the env file FILE,
# atomically, keeping its owner and mode. The first line that sets KEY is
# replaced (else the first commented-out "#KEY=" line of the example), later
# ones are dropped; with none, "KEY=VALUE" is appended after "# COMMENT".
env_set() {
	_f=$1 _k=$2 _v=$3 _c=${4-}
	_tmp=$(mktemp "$_f.XXXXXX") || return 1
	chown --reference="$_f" "$_tmp" 2>/dev/null || true
	chmod --reference="$_f" "$_tmp"
	_done=0
	if ! grep -qE "^${_k}[[:space:]]*=" "$_f"; then
		_done=2 # no active line: the first commented-out one is replaced
	fi
	while IFS= read -r _line || [ -n "$_line" ]; do
		case $_line in
		"$_k"=* | "$_k"[[:space:]]*=*)
			if [ "$_done" -eq 0 ]; then
				printf '%s=%s\n' "$_k" "$_v"
				_done=1
			fi
			continue
			;;
		"#$_k"=*)
			if [ "$_done" -eq 2 ]; then
				printf '%s=%s\n' "$_k" "$_v"
				_done=1
				continue
			fi
			;;
		esac
		printf '%s\n' "$_line"
	done <"$_f" >"$_tmp"
	if [ "$_done" -ne 1 ]; then
		if [ -n "$_c" ]; then
			printf '# %s\n' "$_c" >>"$_tmp"
		fi
		printf '%s=%s\n' "$_k" "$_v" >>"$_tmp"
	fi
	mv -f -- "$_tmp" "$_f"
	_v=
	_line=
}

# nodo_api_user: the user odoo-local-api runs as: the last User= of its
# drop-ins in /etc/systemd/system (install.sh writes one when Odoo runs as
# another user), else the unit's odoo.
nodo_api_user() {
	_u=$(cat /etc/systemd/system/odoo-local-api.service.d/*.conf 2>/dev/null |
		sed -n 's/^[[:space:]]*User[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' | tail -n 1)
	printf '%s\n' "${_u:-odoo}"
}
