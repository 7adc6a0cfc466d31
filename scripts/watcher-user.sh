#!/bin/sh
# watcher-user.sh - which Unix user runs odoo-db-watcher (docs/README.md,
# "The watcher's user"). The Debian package's postinst and install.sh both
# run it, so the rule is written once.
#
# Usage: watcher-user.sh ODOO_CONF ENV_FILE ODOO_USER ODOO_GROUP
#        watcher-user.sh --apply
#   ODOO_CONF   Odoo's config ("" when there is none or it cannot be read;
#               "-": ODOO_CONF of ENV_FILE, else /etc/odoo/odoo.conf)
#   ENV_FILE    Nodo's env file (PGHOST and PGPASSWORD there count; it may
#               not exist yet)
#   ODOO_USER, ODOO_GROUP  the user Odoo runs as and its group
# Prints four lines: the user, the group, a supplementary group (empty for
# none) and why, in words.
#
# --apply decides for this node (ODOO_CONF of /opt/nodo/config/.env, else
# /etc/odoo/odoo.conf; the API's user as its unit runs it) and writes the
# drop-in /etc/systemd/system/odoo-db-watcher.service.d/10-package.conf, or
# removes it when the unit's nodo-watcher:nodo is right; it prints
# "nodo: odoo-db-watcher runs as USER: WHY". The caller reloads systemd.
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

# The parsers of odoo.conf and the env file, shared with install.sh and the
# package's postinst: next to this script (symlinks resolved).
here=$(dirname -- "$(readlink -f -- "$0")")
# shellcheck source=scripts/nodo-conf.sh
. "$here/nodo-conf.sh"

apply=0
if [ "$#" -eq 1 ] && [ "$1" = --apply ]; then
	apply=1
	conf=- env_file=/opt/nodo/config/.env
	svc_user=$(nodo_api_user)
	svc_group=$(id -gn "$svc_user")
elif [ "$#" -eq 4 ]; then
	conf=$1 env_file=$2 svc_user=$3 svc_group=$4
else
	echo "usage: $0 ODOO_CONF ENV_FILE ODOO_USER ODOO_GROUP | --apply" >&2
	exit 64
fi

# cfg_env KEY [set]: the value of KEY in the env file, or with "set" 1 when
# it is set and not empty.
cfg_env() {
	_val=$(env_get "$env_file" "$1") || _val=
	if [ -z "${2-}" ]; then
		printf '%s\n' "$_val"
	elif [ -n "$_val" ]; then
		echo 1
	fi
	_val=
}

# cfg_conf KEY [set]: the value of KEY in [options] of odoo.conf (False is
# unset), or with "set" 1 when it is set.
cfg_conf() {
	[ -n "$conf" ] || return 0
	_val=$(odoo_conf_get "$conf" "$1") || _val=
	case $_val in
	[Ff]alse) _val= ;;
	esac
	if [ -z "${2-}" ]; then
		printf '%s\n' "$_val"
	elif [ -n "$_val" ]; then
		echo 1
	fi
	_val=
}

if [ "$conf" = - ]; then
	conf=$(cfg_env ODOO_CONF)
	conf=${conf:-$default_conf}
fi
if [ -n "$conf" ] && { [ ! -f "$conf" ] || [ ! -r "$conf" ]; }; then
	conf=
fi

pg_host=$(cfg_env PGHOST)
[ -n "$pg_host" ] || pg_host=$(cfg_conf db_host)
pg_pw=$(cfg_env PGPASSWORD set)
[ -n "$pg_pw" ] || pg_pw=$(cfg_conf db_password set)
case $pg_host in
'' | /*) pg_tcp=0 ;;
*) pg_tcp=1 ;;
esac
pg_user=$(cfg_env PGUSER)
[ -n "$pg_user" ] || pg_user=$(cfg_conf db_user)

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
if [ "$apply" -eq 0 ]; then
	printf '%s\n%s\n%s\n%s\n' "$user" "$group" "$supp" "$why"
	exit 0
fi

dropin_dir=/etc/systemd/system/odoo-db-watcher.service.d
dropin=$dropin_dir/10-package.conf
dropin_mark="# Written by the nodo package's postinst"
body=
if [ "$user" != "$watcher_account" ] || [ "$group" != "$nodo_group" ]; then
	body="User=$user
Group=$group
"
fi
if [ -n "$supp" ]; then
	body="${body}SupplementaryGroups=$supp
"
fi
if [ -n "$body" ]; then
	install -d -m 0755 "$dropin_dir"
	tmp=$(mktemp "$dropin.XXXXXX")
	printf '%s (the watcher'"'"'s user).\n# dpkg-reconfigure nodo rewrites it.\n[Service]\n%s' \
		"$dropin_mark" "$body" >"$tmp"
	chmod 0644 "$tmp"
	mv -f -- "$tmp" "$dropin"
elif [ -f "$dropin" ] && grep -qF "$dropin_mark" "$dropin"; then
	rm -f -- "$dropin"
	rmdir -- "$dropin_dir" 2>/dev/null || true
fi
echo "nodo: odoo-db-watcher runs as $user: $why"
