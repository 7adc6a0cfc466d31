#!/bin/bash
# install.sh - the seed's one command: installs (or upgrades, or removes) a
# Nodo node on Debian or Ubuntu through its Debian package. It installs the
# packages that are missing, builds the package (make deb), installs it
# (apt-get install ./nodo_*.deb) and then configures what the package
# cannot know: Odoo's user, config and data dir. Everything else (accounts,
# the /opt/nodo tree, .env made once with a random key, the units, the
# seed's /opt/odoo/scripts links, restarts on upgrade) is the package's:
# debian/nodo.postinst and its neighbours.
set -eu

usage() {
	cat <<'EOF'
Usage: sudo ./install.sh [options]
       sudo ./install.sh --uninstall [--purge]

Installs Nodo (odoo-local-api and odoo-db-watcher) on this Odoo server:
  1. checks it runs as root on Debian or Ubuntu
  2. installs the packages it builds with (apt-get), when missing
  3. builds the Debian package (make deb: build/deb/nodo_<version>_<arch>.deb)
  4. finds the user Odoo runs as and Odoo's config and data dir; checks
     dbfilter/list_db; writes a drop-in for what differs from the units'
     defaults (/etc/systemd/system/<unit>.d/10-install.conf)
  5. installs the package (apt-get install ./nodo_*.deb), which creates the
     group nodo, the user nodo-watcher, /opt/nodo/config/.env once (root:nodo
     0640, a random PROVISIONING_API_KEY; an existing .env is kept, but for
     the seed's example key), the units (enabled) and the seed's links
     /opt/odoo/scripts/{create,list,delete}_tenant.sh; an upgrade restarts
     the daemons that run
  6. sets ODOO_CONF and ODOO_DATA_DIR in .env when Odoo's are not the
     defaults (a value already there is kept)
  7. a first install starts nothing (edit .env first); a re-run restarts
     what runs; --start starts both. Each daemon's --check (the new
     package's binaries, as the units' users) must pass first, else nothing
     is installed or (re)started and install.sh exits 1. The key (when it is
     new) and the next steps are printed last

Options:
  --user NAME      the user Odoo runs as, which odoo-local-api runs as too
                   (default: User= of odoo.service, else odoo if it exists,
                   else the owner of the running Odoo process, else odoo,
                   which the package creates). root is refused.
  --odoo-conf FILE Odoo's config (default: /etc/odoo/odoo.conf, else the
                   --config of the running Odoo process)
  --deb FILE       install this package instead of building one
  --no-deps        do not install packages with apt-get before the build
  --no-build       install the package already built (NODO_BUILD/deb)
  --start          start both services, also on a first install (after
                   their --check passes)
  --no-start       start nothing that is stopped (what runs is restarted by
                   the package, as on every upgrade, after the checks pass)
  --uninstall      apt-get remove nodo (the programs, units and links) and
                   install.sh's drop-ins; keeps /opt/nodo/config and
                   /opt/nodo/cloudflare
  --purge          with --uninstall: apt-get purge nodo, which removes the
                   configuration too (.env, cloudflare-token, domains.json).
                   Tenant databases and filestores belong to Odoo and are
                   never touched.
  -h, --help       show this help

Environment:
  NODO_BUILD       build directory (make's B=); the package is built into
                   NODO_BUILD/deb (default: build/ next to install.sh)

Example (the seed's):
  sudo bash /path/to/nodo/install.sh
EOF
}

prog=install.sh
say() { printf '%s\n' "$*"; }
step() { printf '\n==> %s\n' "$*"; }
warn() { printf '%s: WARNING: %s\n' "$prog" "$*" >&2; }
die() {
	printf '%s: error: %s\n' "$prog" "$*" >&2
	exit 1
}

# --- Options ---------------------------------------------------------------

svc_user=
odoo_conf=
deb=
deps=1
build=1
start=auto
uninstall=0
purge=0
while [ "$#" -gt 0 ]; do
	case $1 in
	--user)
		[ "$#" -ge 2 ] || die "--user needs a name"
		svc_user=$2
		shift
		;;
	--user=*) svc_user=${1#*=} ;;
	--odoo-conf)
		[ "$#" -ge 2 ] || die "--odoo-conf needs a file"
		odoo_conf=$2
		shift
		;;
	--odoo-conf=*) odoo_conf=${1#*=} ;;
	--deb)
		[ "$#" -ge 2 ] || die "--deb needs a file"
		deb=$2
		shift
		;;
	--deb=*) deb=${1#*=} ;;
	--no-deps) deps=0 ;;
	--no-build) build=0 ;;
	--no-start) start=no ;;
	--start) start=yes ;;
	--uninstall) uninstall=1 ;;
	--purge) purge=1 ;;
	--prefix | --prefix=* | --destdir | --destdir=*)
		die "${1%%=*} is gone: the package installs into /opt/nodo (a staged tree for" \
			"another layout: make install DESTDIR=DIR PREFIX=DIR)"
		;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
	shift
done
[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die "--purge goes with --uninstall"

src=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
prefix=/opt/nodo
env_file=$prefix/config/.env
token_file=$prefix/config/cloudflare-token
unit_dir=/etc/systemd/system
units=(odoo-local-api.service odoo-db-watcher.service)
daemons=(odoo-local-api odoo-db-watcher)
dropin_name=10-install.conf
dropin_mark="# Written by Nodo's install.sh"
nodo_group=nodo
default_conf=/etc/odoo/odoo.conf
default_data_dir=/var/lib/odoo
export DEBIAN_FRONTEND=noninteractive
# postinst leaves the next steps to us (they come last, where they are seen).
export NODO_INSTALL_SH=1

# odoo_conf_get, env_get, env_set: the parsers the package uses too.
# shellcheck source=scripts/nodo-conf.sh
. "$src/scripts/nodo-conf.sh"

# systemd is managed where it is PID 1.
use_systemd=0
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	use_systemd=1
fi

[ "$(id -u)" -eq 0 ] || die "run it as root: sudo $0"

# --- Uninstall -------------------------------------------------------------

remove_dropins() {
	local u f
	for u in "${units[@]}"; do
		f=$unit_dir/$u.d/$dropin_name
		if [ -f "$f" ] && grep -qF "$dropin_mark" "$f"; then
			rm -f -- "$f"
			say "removed $f"
		fi
		rmdir -- "$unit_dir/$u.d" 2>/dev/null || true
	done
}

if [ "$uninstall" -eq 1 ]; then
	step "Uninstalling Nodo"
	if dpkg-query -W -f='${Status}\n' nodo 2>/dev/null | grep -q ' installed$\| config-files$'; then
		if [ "$purge" -eq 1 ]; then
			apt-get purge -y -q nodo
		else
			apt-get remove -y -q nodo
		fi
	else
		say "the package nodo is not installed"
	fi
	remove_dropins
	if [ "$use_systemd" -eq 1 ]; then
		systemctl daemon-reload
		systemctl reset-failed "${units[@]}" 2>/dev/null || true
	fi
	if [ "$purge" -eq 1 ]; then
		say "removed the configuration (--purge)"
	else
		say "kept $prefix/config and $prefix/cloudflare (remove them with --uninstall --purge)"
	fi
	say "Tenant databases and filestores belong to Odoo: nothing of them was touched."
	exit 0
fi

# --- Checks ----------------------------------------------------------------

[ -f "$src/Makefile" ] || [ -n "$deb" ] || die "run install.sh from the Nodo source tree" \
	"(no Makefile in $src), or give the package with --deb FILE"

step "Checking the system"
id=$(sed -n 's/^ID=//p' /etc/os-release 2>/dev/null | tr -d '"')
like=$(sed -n 's/^ID_LIKE=//p' /etc/os-release 2>/dev/null | tr -d '"')
case " $id $like " in
*" debian "* | *" ubuntu "*)
	say "System: $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
	;;
*) die "Nodo is a Debian package: this installer needs Debian or Ubuntu (ID=${id:-?})" ;;
esac

# The service user: --user, else odoo.service's User=, else odoo, else the
# owner of a running Odoo, else odoo (the package creates it).
odoo_ps_line= # "user args..." of a running Odoo server, if any
find_odoo_process() {
	local user args w0 w1
	while read -r user args; do
		read -r w0 w1 _ <<<"$args" || true
		case "${w0##*/} ${w1##*/}" in
		odoo\ * | odoo-bin\ * | openerp-server\ * | odoo.py\ * | \
			python*\ odoo | python*\ odoo-bin | python*\ openerp-server | python*\ odoo.py)
			odoo_ps_line="$user $args"
			return 0
			;;
		esac
	done < <(ps -eo user:64=,args= 2>/dev/null || true)
	return 1
}
find_odoo_process || true

odoo_unit_user() {
	local u f
	if [ "$use_systemd" -eq 1 ]; then
		for u in odoo.service odoo-server.service; do
			f=$(systemctl show -p User --value "$u" 2>/dev/null || true)
			if [ -n "$f" ]; then
				printf '%s' "$f"
				return 0
			fi
		done
	fi
	for f in /etc/systemd/system/odoo.service /lib/systemd/system/odoo.service \
		/usr/lib/systemd/system/odoo.service /etc/systemd/system/odoo-server.service; do
		[ -r "$f" ] || continue
		u=$(sed -n 's/^[[:space:]]*User[[:space:]]*=[[:space:]]*\([^[:space:]]*\).*/\1/p' "$f" | tail -n 1)
		if [ -n "$u" ]; then
			printf '%s' "$u"
			return 0
		fi
	done
	return 0
}

unit_user=
[ -n "$svc_user" ] || unit_user=$(odoo_unit_user)
if [ -n "$svc_user" ]; then
	user_reason="given with --user"
elif [ -n "$unit_user" ]; then
	svc_user=$unit_user
	user_reason="User= of Odoo's systemd unit"
elif id -u odoo >/dev/null 2>&1; then
	svc_user=odoo
	user_reason="the user odoo exists"
elif [ -n "$odoo_ps_line" ]; then
	svc_user=${odoo_ps_line%% *}
	user_reason="owner of the running Odoo process"
else
	svc_user=odoo
	user_reason="no Odoo found: the package creates the system user odoo"
fi
# Root never runs the daemons (issue 8, item 10): they parse input from the
# network and would run what a writable path holds; nobody is shared by
# every unprivileged daemon.
uid=$(id -u "$svc_user" 2>/dev/null || true)
if [ "$svc_user" = root ] || [ "$uid" = 0 ]; then
	die "refusing to install the services to run as root ($svc_user, $user_reason):" \
		"run Odoo as its own user (normally odoo) and pass --user NAME"
fi
if [ "$svc_user" = nobody ] || [ "$uid" = 65534 ]; then
	die "refusing to install the services to run as $svc_user ($user_reason): that user" \
		"is shared by unrelated daemons; run Odoo as its own user and pass --user NAME"
fi
if [ -n "$uid" ]; then
	svc_group=$(id -gn "$svc_user")
elif [ "$svc_user" = odoo ]; then
	svc_group=odoo
else
	die "user $svc_user does not exist"
fi
step "Service user: $svc_user (group $svc_group): $user_reason"

# Odoo's config: --odoo-conf, else /etc/odoo/odoo.conf, else -c/--config of
# the running Odoo.
conf_reason=
if [ -n "$odoo_conf" ]; then
	conf_reason="given with --odoo-conf"
	if [ ! -f "$odoo_conf" ] || [ ! -r "$odoo_conf" ]; then
		die "cannot read Odoo's config $odoo_conf (--odoo-conf)"
	fi
elif [ -f "$default_conf" ]; then
	odoo_conf=$default_conf
	conf_reason="the default path"
elif [ -n "$odoo_ps_line" ]; then
	read -r -a words <<<"${odoo_ps_line#* }"
	for ((i = 0; i < ${#words[@]}; i++)); do
		case ${words[i]} in
		-c | --config) odoo_conf=${words[i + 1]-} ;;
		--config=*) odoo_conf=${words[i]#--config=} ;;
		-c?*) odoo_conf=${words[i]#-c} ;;
		esac
	done
	[ -z "$odoo_conf" ] || conf_reason="--config of the running Odoo process"
fi

# Odoo's data dir: data_dir of odoo.conf, else Odoo's own default
# (appdirs' user_data_dir: ~/.local/share/Odoo of the user it runs as).
data_dir=$default_data_dir
env_data_dir= # ODOO_DATA_DIR for .env ("" when the default is right)
home_data_dir() {
	local home
	home=$(getent passwd "$svc_user" 2>/dev/null | cut -d: -f6 || true)
	if [ -z "$home" ] || [ "$home" = / ] || [ "$home" = /nonexistent ]; then
		[ -z "$uid" ] || warn "cannot tell the home of $svc_user, where Odoo keeps its files" \
			"when no data_dir is set: set data_dir in odoo.conf or ODOO_DATA_DIR in $env_file"
		return 0
	fi
	data_dir=${home%/}/.local/share/Odoo
	say "Odoo's data dir: $data_dir (no data_dir in Odoo's config: Odoo's default under" \
		"the home of $svc_user, the user it runs as)"
	[ "$data_dir" = "$default_data_dir" ] || env_data_dir=$data_dir
}

if [ -n "$odoo_conf" ] && [ -f "$odoo_conf" ] && [ -r "$odoo_conf" ]; then
	step "Odoo config: $odoo_conf ($conf_reason)"
	dbfilter=$(odoo_conf_get "$odoo_conf" dbfilter) || dbfilter=
	list_db=$(odoo_conf_get "$odoo_conf" list_db) || list_db=
	conf_data_dir=$(odoo_conf_get "$odoo_conf" data_dir) || conf_data_dir=
	if [ "$dbfilter" = '^%d$' ]; then
		say "dbfilter = ^%d\$ (each subdomain serves its own database)"
	else
		warn "$odoo_conf: dbfilter is '${dbfilter:-unset}', not ^%d\$: tenants will not be" \
			"served by subdomain. Set 'dbfilter = ^%d\$' in [options] and restart Odoo."
	fi
	case $list_db in
	[Ff]alse) say "list_db = False (the database manager is hidden)" ;;
	*)
		warn "$odoo_conf: list_db is '${list_db:-unset (True)}': anyone can list, copy or" \
			"drop databases through /web/database. Set 'list_db = False' and restart Odoo."
		;;
	esac
	case $conf_data_dir in
	'' | False | false) home_data_dir ;;
	*)
		data_dir=${conf_data_dir%/}
		say "data_dir = $data_dir (filestores in $data_dir/filestore)"
		;;
	esac
else
	[ -z "$odoo_conf" ] || warn "cannot read Odoo's config $odoo_conf"
	[ -n "$odoo_conf" ] || warn "Odoo's config not found (no $default_conf, no running Odoo):" \
		"set ODOO_CONF in $env_file"
	odoo_conf=
	home_data_dir
fi

# --- Packages and the build ------------------------------------------------

# What `make deb` builds with (debian/control's Build-Depends, and
# dpkg-buildpackage itself).
build_pkgs=(build-essential dpkg-dev debhelper pkg-config libmicrohttpd-dev libpq-dev
	libcurl4-openssl-dev libcjson-dev libsystemd-dev libssl-dev libarchive-dev)
if [ "$deps" -eq 1 ] && [ -z "$deb" ] && [ "$build" -eq 1 ]; then
	step "Installing packages"
	missing=()
	for p in "${build_pkgs[@]}"; do
		if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		say "all packages are installed"
	else
		say "installing: ${missing[*]}"
		apt-get update -q
		apt-get install -y -q --no-install-recommends "${missing[@]}"
	fi
fi

bdir=${NODO_BUILD:-$src/build}
case $bdir in
/*) ;;
*) bdir=$(pwd)/$bdir ;;
esac
if [ -z "$deb" ]; then
	version=$(sed -n '1s/^nodo (\([^)]*\)).*/\1/p' "$src/debian/changelog")
	deb=$bdir/deb/nodo_${version}_$(dpkg --print-architecture).deb
	if [ "$build" -eq 1 ]; then
		step "Building the package"
		mkdir -p "$bdir"
		log=$bdir/deb-build.log
		if ! env -u MAKEFLAGS -u MFLAGS make -C "$src" deb DEB_OUT="$bdir/deb" >"$log" 2>&1; then
			tail -n 30 "$log" >&2
			die "make deb failed (the whole log: $log; missing packages? run without --no-deps)"
		fi
		say "built $deb (log: $log)"
	fi
fi
case $deb in
/*) ;;
*) deb=$(pwd)/$deb ;;
esac
[ -f "$deb" ] || die "no package $deb (build it with make deb, or leave out --no-build)"
new_version=$(dpkg-deb -f "$deb" Version)

# --- What differs from the units' defaults ---------------------------------

# A drop-in per unit for Odoo's user and data_dir (the package's units say
# odoo and /var/lib/odoo); removed again when nothing differs. The package
# reads the API's User= from it (postinst: nodo_api_user).
write_dropins() {
	local i u body dir
	for i in 0 1; do
		u=${units[i]}
		dir=$unit_dir/$u.d
		body=
		if [ "$i" -eq 0 ]; then
			if [ "$svc_user" != odoo ] || [ "$svc_group" != odoo ]; then
				body+="User=$svc_user"$'\n'"Group=$svc_group"$'\n'
			fi
			case $data_dir/ in
			"$default_data_dir"/*) ;;
			/home/* | /root/* | /run/user/*)
				# ProtectHome=yes hides homes: show only the data dir.
				body+="ProtectHome=tmpfs"$'\n'"BindPaths=-$data_dir"$'\n'
				;;
			*) body+="ReadWritePaths=-$data_dir"$'\n' ;;
			esac
		elif [ "$data_dir" != "$default_data_dir" ]; then
			body+="InaccessiblePaths=-$data_dir/filestore"$'\n'
		fi
		if [ -n "$body" ]; then
			install -d "$dir"
			printf '%s (Odoo'"'"'s user and data_dir).\n%s\n[Service]\n%s' "$dropin_mark" \
				"# Re-running install.sh rewrites it." "$body" >"$dir/$dropin_name"
			chmod 0644 "$dir/$dropin_name"
			say "$u: drop-in $dir/$dropin_name"
			sed 's/^/    /' "$dir/$dropin_name"
		elif [ -f "$dir/$dropin_name" ] && grep -qF "$dropin_mark" "$dir/$dropin_name"; then
			rm -f -- "$dir/$dropin_name"
			rmdir -- "$dir" 2>/dev/null || true
		fi
	done
}

# configure_env: ODOO_CONF and ODOO_DATA_DIR in .env when Odoo's are not
# the defaults and .env sets none; prints what it changed. Returns 1 when
# nothing changed.
configure_env() {
	local changed=1 v
	if [ -n "$odoo_conf" ] && [ "$odoo_conf" != "$default_conf" ] &&
		! v=$(env_get "$env_file" ODOO_CONF); then
		env_set "$env_file" ODOO_CONF "$odoo_conf" "Added by install.sh: Odoo's config"
		say "set ODOO_CONF=$odoo_conf in $env_file"
		changed=0
	fi
	if [ -n "$env_data_dir" ] && ! v=$(env_get "$env_file" ODOO_DATA_DIR); then
		env_set "$env_file" ODOO_DATA_DIR "$env_data_dir" "Added by install.sh: where Odoo keeps its files"
		say "set ODOO_DATA_DIR=$env_data_dir in $env_file (Odoo keeps its files there)"
		changed=0
	fi
	# What the daemons will use: an ODOO_DATA_DIR of .env wins (the units'
	# drop-ins follow it).
	if v=$(env_get "$env_file" ODOO_DATA_DIR) && [ -n "$v" ]; then
		data_dir=${v%/}
	fi
	return "$changed"
}

# watcher_account: w_user, w_group and w_supp, what the package's postinst
# gives odoo-db-watcher for this .env (the rule of watcher-user.sh).
watcher_account() {
	local w
	w=$("$src/scripts/watcher-user.sh" - "$env_file" "$svc_user" "$svc_group") ||
		die "scripts/watcher-user.sh failed"
	{
		read -r w_user
		read -r w_group
		read -r w_supp
	} <<<"$w"
}

# check_daemon BIN_DIR DAEMON: its --check, from BIN_DIR, as the user the
# package's unit (with the drop-ins) runs it as, with the Cloudflare token
# credential as systemd would hand it over.
check_daemon() {
	local bin=$1 d=$2 user group supp g cred='' rc=0
	if [ "$d" = odoo-local-api ]; then
		user=$svc_user group=$svc_group supp=$nodo_group
	else
		watcher_account
		user=$w_user group=$w_group supp=$w_supp
	fi
	if [ -s "$token_file" ]; then
		cred=$(mktemp -d)
		install -m 0400 -o "$user" "$token_file" "$cred/cloudflare-token"
		chown "$user" "$cred"
		chmod 0500 "$cred"
	fi
	local -a sg=()
	for g in $supp; do
		sg+=(-G "$g")
	done
	runuser -u "$user" -g "$group" "${sg[@]}" -- env ${cred:+CREDENTIALS_DIRECTORY="$cred"} "$bin/$d" --config "$env_file" --check || rc=$?
	[ -z "$cred" ] || rm -rf -- "$cred"
	return "$rc"
}

# check_all BIN_DIR: both checks; 1 when one failed.
check_all() {
	local d failed=0
	for d in "${daemons[@]}"; do
		if ! check_daemon "$1" "$d"; then
			failed=1
			warn "$d --check found problems (above)"
		fi
	done
	return "$failed"
}

# --- Install ---------------------------------------------------------------

first_install=1
[ ! -e "$env_file" ] || first_install=0
old_key=
if [ "$first_install" -eq 0 ]; then
	old_key=$(env_get "$env_file" PROVISIONING_API_KEY) || old_key=
fi
running=()
if [ "$use_systemd" -eq 1 ]; then
	for u in "${units[@]}"; do
		if systemctl is-active --quiet "$u"; then
			running+=("$u")
		fi
	done
fi

# Units left in /etc/systemd/system by the install.sh before the package
# would hide the package's (and their enablement links would dangle).
for u in "${units[@]}"; do
	if [ -f "$unit_dir/$u" ] && grep -q "^ExecStart=$prefix/bin/" "$unit_dir/$u"; then
		[ "$use_systemd" -eq 0 ] || systemctl disable --quiet "$u" || true
		rm -f -- "$unit_dir/$u"
		say "removed $unit_dir/$u (an older install.sh's copy; the package's is in /lib/systemd/system)"
	fi
done

step "Configuration"
if [ "$first_install" -eq 0 ]; then
	say "kept the existing $env_file"
	configure_env || true
else
	say "no $env_file yet: the package makes it (then ODOO_CONF and ODOO_DATA_DIR, if needed)"
fi
write_dropins
[ "$use_systemd" -eq 0 ] || systemctl daemon-reload

failed=0
installed=0
if [ "$first_install" -eq 0 ] && { [ "${#running[@]}" -gt 0 ] || [ "$start" = yes ]; }; then
	# The package restarts what runs: the new binaries must accept the
	# settings first, or nothing is installed and nothing restarted.
	step "Checking the settings with the new package's daemons"
	tmp=$(mktemp -d)
	chmod 0755 "$tmp"
	dpkg-deb -x "$deb" "$tmp"
	check_all "$tmp$prefix/bin" || failed=1
	rm -rf -- "$tmp"
fi

if [ "$failed" -eq 0 ]; then
	step "Installing the package $(basename -- "$deb")"
	reinstall=()
	was=$(dpkg-query -W -f='${Status} ${Version}' nodo 2>/dev/null || true)
	if [ "$was" = "install ok installed $new_version" ]; then
		reinstall=(--reinstall) # the same version, rebuilt: the new files
	fi
	apt-get install -y -q --no-install-recommends "${reinstall[@]}" "$deb"
	installed=1
	if [ "${#running[@]}" -gt 0 ] && [ "${was#install ok installed }" = "$was" ]; then
		# The package's first install starts nothing, but these ran (from
		# the install.sh before the package): they run the new binaries now.
		systemctl restart "${running[@]}"
		say "restarted ${running[*]}: they ran before the package came"
	fi
	if [ "$first_install" -eq 1 ]; then
		[ -f "$env_file" ] || die "the package did not create $env_file"
		if configure_env; then
			# The watcher's user follows .env and odoo.conf (postinst
			# decided before ODOO_CONF was there).
			"$prefix/scripts/watcher-user.sh" --apply
		fi
		write_dropins
		[ "$use_systemd" -eq 0 ] || systemctl daemon-reload
	fi
fi

# --- Start -----------------------------------------------------------------

step "Services"
started=0
if [ "$failed" -eq 1 ]; then
	warn "nothing was installed or (re)started: ${running[*]:-the services} were left as" \
		"they were. Fix $env_file, then run install.sh again"
elif [ "$use_systemd" -eq 0 ]; then
	say "systemd is not PID 1 here (a container or CI): the units were installed but not started."
	say "Start the daemons by hand (each runs in the foreground; logs go to stderr):"
	say "  runuser -u $svc_user -g $svc_group -G $nodo_group -- $prefix/bin/odoo-local-api --config $env_file &"
	watcher_account
	say "  runuser -u $w_user -g $w_group${w_supp:+ -G $w_supp} -- $prefix/bin/odoo-db-watcher --config $env_file &"
elif [ "$start" = yes ]; then
	if [ "$first_install" -eq 1 ] && ! check_all "$prefix/bin"; then
		failed=1
		warn "nothing was started: fix $env_file, then: systemctl start ${units[*]}"
	else
		systemctl start "${units[@]}"
		started=1
		sleep 1
		systemctl --no-pager --full status "${units[@]}" || true
	fi
elif [ "${#running[@]}" -gt 0 ]; then
	say "restarted by the package (they were running): ${running[*]}"
	started=1
elif [ "$first_install" -eq 1 ]; then
	say "enabled, not started (a first install): edit the settings first (below), then start them."
else
	say "enabled; none was running, so none was started (--start starts them)."
fi

# The key and the next steps come last, where they are seen. The key is
# printed when it is new: made by the package now (a first install, or the
# seed's example key replaced).
step "Done"
key=
if [ "$installed" -eq 1 ]; then
	key=$(env_get "$env_file" PROVISIONING_API_KEY) || key=
	[ "$key" != "$old_key" ] || key=
fi
old_key=
say "Nodo $new_version is installed in $prefix."
if [ -n "$key" ]; then
	say ""
	say "  PROVISIONING_API_KEY=$key"
	say ""
	say "  (A new random key.) This is the X-API-KEY of the node's API, shown only now. It"
	say "  stays in $env_file, readable by root and the group $nodo_group."
	give="Give the key above to the APP server (it stays in $env_file)."
else
	give="The APP server needs the key of $env_file (PROVISIONING_API_KEY)."
fi
key=
check="sudo -u $svc_user -g $nodo_group $prefix/bin/odoo-local-api --config $env_file --check"
say ""
say "Next steps:"
if [ "$failed" -ne 0 ]; then
	say "  1. Fix what the checks above report, in $env_file (or domains.json)."
	say "  2. Check again: $check"
	say "  3. Run install.sh again, or: sudo systemctl restart ${units[*]}"
elif [ "$started" -eq 1 ]; then
	say "  1. $give"
	say "  2. Check: curl http://127.0.0.1:8070/health"
	say "  3. Try: sudo $prefix/scripts/list_tenants.sh (members of $nodo_group need no sudo)"
else
	say "  1. $give"
	say "  2. Edit $env_file (ODOO_DOMAIN, CF_TUNNEL_ID), put the Cloudflare token in"
	say "     $token_file, and list the zones in $prefix/cloudflare/domains.json."
	say "  3. Check and start: $check"
	say "     && sudo systemctl start ${units[*]}"
fi
say "Docs: $prefix/docs/README.md"
[ "$failed" -eq 0 ] || die "a check failed: the services were left as they were"
