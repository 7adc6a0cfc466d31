#!/bin/sh
# watcher-user.sh - which Unix user runs odoo-db-watcher (docs/README.md,
# "The watcher's user"). install.sh and the Debian package's postinst both
# ask it, so the rule is written once.
#
# Usage: watcher-user.sh ODOO_CONF ENV_FILE ODOO_USER ODOO_GROUP
#   ODOO_CONF   Odoo's config ("" when there is none or it cannot be read;
#               "-": ODOO_CONF of ENV_FILE, else /etc/odoo/odoo.conf)
#   ENV_FILE    Nodo's env file (PGHOST and PGPASSWORD there count; it may
#               not exist yet)
#   ODOO_USER, ODOO_GROUP  the user Odoo runs as and its group
# Prints four lines: the user, the group, a supplementary group (empty for
# none) and why, in words.
#
# The watcher must log in to PostgreSQL as the node's role. Its own user,
# nodo-watcher (group nodo), can do that only with a password over TCP:
# db_host (or PGHOST) a host name, not a socket directory, and db_password
# (or PGPASSWORD) set. Otherwise PostgreSQL authenticates the Unix user
# (peer) and the watcher runs as Odoo's user, with the group nodo for the
# env file. So it does when no db_user (or PGUSER) names the role: libpq
# then asks for the role of the Unix user's name, which only Odoo's user
# has. It must also read odoo.conf: a group-readable one adds its
# group, one that only its owner (or root's group) reads makes it Odoo's
# user too. Passwords are only tested for being set: never printed, never
# on a command line.
set -eu
LC_ALL=C
export LC_ALL

nodo_group=nodo
watcher_account=nodo-watcher
default_conf=/etc/odoo/odoo.conf

if [ "$#" -ne 4 ]; then
	echo "usage: $0 ODOO_CONF ENV_FILE ODOO_USER ODOO_GROUP" >&2
	exit 64
fi
conf=$1 env_file=$2 svc_user=$3 svc_group=$4

# env_get KEY [set]: the value of KEY in the env file (the last line that
# sets it, quotes removed), or with "set" 1 when it is set and not empty.
env_get() {
	[ -f "$env_file" ] && [ -r "$env_file" ] || return 0
	awk -v want="$1" -v test="${2-}" '
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
		END { if (found) print (test == "" ? val : (val == "" ? "" : "1")) }
	' "$env_file"
}

# conf_get KEY [set]: the value of KEY in [options] of odoo.conf ("key =
# value" or "key: value"; False is unset), or with "set" 1 when it is set.
conf_get() {
	[ -n "$conf" ] || return 0
	awk -v want="$1" -v test="${2-}" '
		/^[ \t]*\[/ { opt = ($0 ~ /^[ \t]*\[options\][ \t]*$/); next }
		!opt || /^[ \t]*[#;]/ { next }
		{
			line = $0
			p = index(line, "="); q = index(line, ":")
			if (p == 0 || (q > 0 && q < p)) p = q
			if (p == 0) next
			k = substr(line, 1, p - 1); v = substr(line, p + 1)
			gsub(/^[ \t]+|[ \t\r]+$/, "", k); gsub(/^[ \t]+|[ \t\r]+$/, "", v)
			if (tolower(k) == want) { val = v; found = 1 }
		}
		END {
			if (!found || val ~ /^[Ff]alse$/) val = ""
			print (test == "" ? val : (val == "" ? "" : "1"))
		}
	' "$conf" 2>/dev/null || true
}

if [ "$conf" = - ]; then
	conf=$(env_get ODOO_CONF)
	conf=${conf:-$default_conf}
fi
if [ -n "$conf" ] && { [ ! -f "$conf" ] || [ ! -r "$conf" ]; }; then
	conf=
fi

pg_host=$(env_get PGHOST)
[ -n "$pg_host" ] || pg_host=$(conf_get db_host)
pg_pw=$(env_get PGPASSWORD set)
[ -n "$pg_pw" ] || pg_pw=$(conf_get db_password set)
case $pg_host in
'' | /*) pg_tcp=0 ;;
*) pg_tcp=1 ;;
esac
pg_user=$(env_get PGUSER)
[ -n "$pg_user" ] || pg_user=$(conf_get db_user)

user=$watcher_account group=$nodo_group supp=
why="its own user: it needs no access to Odoo's files"
if [ "$pg_tcp" -eq 0 ] || [ -z "$pg_pw" ]; then
	user=$svc_user group=$svc_group supp=$nodo_group
	why="Odoo's user: PostgreSQL is reached without a password over TCP (db_host/PGHOST, db_password/PGPASSWORD), so it authenticates the Unix user (peer) and only $svc_user may log in as the node's role. The file system stays read-only for it"
elif [ -z "$pg_user" ]; then
	user=$svc_user group=$svc_group supp=$nodo_group
	why="Odoo's user: no db_user (or PGUSER) names the node's role, so PostgreSQL is asked for the role of the Unix user's name, which only $svc_user has. The file system stays read-only for it"
elif [ -n "$conf" ]; then
	# The last three digits of the mode: owner, group, others.
	m=$(stat -c %a "$conf")
	others=${m#"${m%?}"}
	g=${m%?}
	g=${g#"${g%?}"}
	case $others in
	[4567]) ;;
	*)
		case $g in
		[4567]) group_reads=1 ;;
		*) group_reads=0 ;;
		esac
		if [ "$group_reads" -eq 1 ] && [ "$(stat -c %g "$conf")" -ne 0 ]; then
			conf_group=$(stat -c %G "$conf")
			if [ "$conf_group" != "$nodo_group" ]; then
				supp=$conf_group
				why="its own user, with the group $supp to read $conf"
			fi
		else
			user=$svc_user group=$svc_group supp=$nodo_group
			why="Odoo's user: $conf (with the database password) is readable by its owner (or root's group) only"
		fi
		;;
	esac
fi
pg_pw=
printf '%s\n%s\n%s\n%s\n' "$user" "$group" "$supp" "$why"
