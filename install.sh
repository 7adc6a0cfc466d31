#!/bin/bash
# install.sh - installs (or upgrades, or removes) a Nodo node on Debian or
# Ubuntu: packages, build, `make install` into /opt/nodo, the env file, the
# systemd units and the seed's /opt/odoo/scripts paths (CONTRACT section 1).
#
# Safe to run again: binaries, scripts, units and docs are replaced; the
# operator's config/.env and cloudflare/domains.json are kept.
set -eu

usage() {
	cat <<'EOF'
Usage: sudo ./install.sh [options]
       sudo ./install.sh --uninstall [--purge] [--prefix DIR]

Installs Nodo (odoo-local-api and odoo-db-watcher) on this Odoo server:
  1. checks it runs as root on Debian or Ubuntu
  2. installs the build and runtime packages (apt-get)
  3. builds (make) and installs (make install) into PREFIX
  4. creates the group nodo and the user nodo-watcher (docs/README.md,
     "Users, groups, owners and modes")
  5. creates PREFIX/config/.env from config/nodo.env if it does not exist
     (root:nodo, mode 0640, with a random PROVISIONING_API_KEY that is
     printed at the end, and ODOO_DATA_DIR when Odoo's data dir is not the
     default); an existing .env and cloudflare/domains.json are kept, but
     the seed's example key in it is replaced by a random one; creates the
     Cloudflare token file PREFIX/config/cloudflare-token (root, 0600) empty
  6. finds the service user and Odoo's config, data dir and database login,
     and checks dbfilter/list_db
  7. installs the systemd units into /etc/systemd/system, reloads systemd
     and enables both services; a first install starts nothing (edit .env
     first), a re-run restarts the services that run, --start starts both;
     each daemon's --check must pass first, else nothing is (re)started and
     install.sh exits 1. Where systemd is not PID 1 (containers, CI) it says
     how to start them by hand. The key and the next steps are printed last
  8. links /opt/odoo/scripts/{create,list,delete}_tenant.sh to PREFIX/scripts
     when every directory of both paths is root's and writable by neither
     group nor others; otherwise it says why and where the scripts are

Options:
  --prefix DIR     installation directory (default /opt/nodo)
  --destdir DIR    stage everything under DIR (for packages and tests): no
                   root needed, no apt-get, no systemctl
  --user NAME      the user Odoo runs as, which odoo-local-api runs as too
                   (default: User= of odoo.service, else odoo if it exists,
                   else the owner of the running Odoo process). root is
                   refused.
  --odoo-conf FILE Odoo's config (default: /etc/odoo/odoo.conf, else the
                   --config of the running Odoo process)
  --no-deps        do not install packages with apt-get
  --no-build       do not run make; install an already built tree (build/,
                   or $NODO_BUILD)
  --start          (re)start both services, also on a first install (after
                   their --check passes)
  --no-start       install and enable the services but start nothing
                   (default: a first install starts nothing, so that .env
                   can be edited first; a re-run restarts the services
                   that run; a failed --check starts nothing, leaves the
                   running services as they were and exits 1)
  --uninstall      remove the binaries, scripts, units and links; keep
                   PREFIX/config and PREFIX/cloudflare
  --purge          with --uninstall: also remove the configuration (.env,
                   cloudflare-token, nodo.env, domains.json). Tenant databases and filestores
                   belong to Odoo and are never touched.
  -h, --help       show this help

Environment:
  NODO_BUILD       build directory (make's B=) to build into and install
                   from (default: build/ next to install.sh)

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

prefix=/opt/nodo
destdir=
svc_user=
odoo_conf=
deps=1
build=1
start=auto
uninstall=0
purge=0
while [ "$#" -gt 0 ]; do
	case $1 in
	--prefix)
		[ "$#" -ge 2 ] || die "--prefix needs a directory"
		prefix=$2
		shift
		;;
	--prefix=*) prefix=${1#*=} ;;
	--destdir)
		[ "$#" -ge 2 ] || die "--destdir needs a directory"
		destdir=$2
		shift
		;;
	--destdir=*) destdir=${1#*=} ;;
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
	--no-deps) deps=0 ;;
	--no-build) build=0 ;;
	--no-start) start=no ;;
	--start) start=yes ;;
	--uninstall) uninstall=1 ;;
	--purge) purge=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*) die "unknown option: $1 (see --help)" ;;
	esac
	shift
done

case $prefix in
/*) prefix=${prefix%/} ;;
*) die "--prefix must be an absolute path: $prefix" ;;
esac
[ -n "$prefix" ] || die "--prefix must not be /"
if [ -n "$destdir" ]; then
	case $destdir in
	/*) ;;
	*) destdir=$(pwd)/$destdir ;;
	esac
	destdir=${destdir%/}
	deps=0 # a staged install never touches the running system
fi
[ "$purge" -eq 0 ] || [ "$uninstall" -eq 1 ] || die "--purge goes with --uninstall"

src=$(cd "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
bdir=${NODO_BUILD:-$src/build} # make's B=: where the binaries are built
case $bdir in
/*) ;;
*) bdir=$(pwd)/$bdir ;;
esac
root=$destdir          # "" for a real install
dest=$destdir$prefix   # where PREFIX is, as seen from here
unit_dir=$root/etc/systemd/system
seed_dir=$root/opt/odoo/scripts # the seed's script paths
units=(odoo-local-api.service odoo-db-watcher.service)
daemons=(odoo-local-api odoo-db-watcher)
clis=(create_tenant.sh list_tenants.sh delete_tenant.sh)
# the other wrappers over bin/nodo (no seed path of their own)
more_scripts=(backup_tenant.sh reset_password.sh restore_tenant.sh
	suspend_tenant.sh resume_tenant.sh)
dropin_name=10-install.conf
dropin_mark="# Written by Nodo's install.sh"
example_key=prov-key-2026-secure
min_key_len=16 # bytes; the API refuses shorter keys (CONTRACT section 8)
nodo_group=nodo           # may read config/.env
watcher_account=nodo-watcher # runs odoo-db-watcher when it can
default_data_dir=/var/lib/odoo

# systemd is managed only on a real install where it is PID 1.
use_systemd=0
if [ -z "$destdir" ] && [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
	use_systemd=1
fi

# Installed files are world-readable by default; the secret one (.env) is
# written mode 0600 explicitly.
umask 022

# --- Checks ----------------------------------------------------------------

if [ -z "$destdir" ] && [ "$(id -u)" -ne 0 ]; then
	die "run it as root (sudo $0), or stage it with --destdir DIR"
fi

check_os() {
	local id='' like=''
	if [ -r /etc/os-release ]; then
		id=$(sed -n 's/^ID=//p' /etc/os-release | tr -d '"')
		like=$(sed -n 's/^ID_LIKE=//p' /etc/os-release | tr -d '"')
	fi
	case " $id $like " in
	*" debian "* | *" ubuntu "*)
		say "System: $(sed -n 's/^PRETTY_NAME=//p' /etc/os-release | tr -d '"')"
		;;
	*)
		if [ "$deps" -eq 1 ]; then
			die "this installer supports Debian and Ubuntu (/etc/os-release says ID=${id:-?});" \
				"install the packages yourself and run it with --no-deps"
		fi
		warn "not Debian or Ubuntu (ID=${id:-?}); going on because packages are skipped"
		;;
	esac
}

# --- Uninstall -------------------------------------------------------------

# Removes FILE when it is a symlink into PREFIX/scripts; puts back the file
# that was there before Nodo (saved as FILE.pre-nodo) if there is one.
remove_seed_link() {
	local link=$1 target
	if [ -L "$link" ]; then
		target=$(readlink -- "$link")
		case $target in
		"$prefix"/scripts/*)
			rm -f -- "$link"
			say "removed $link"
			;;
		*) say "kept $link (points to $target, not to Nodo)" ;;
		esac
	fi
	if [ ! -e "$link" ] && [ -e "$link.pre-nodo" ]; then
		mv -- "$link.pre-nodo" "$link"
		say "restored $link from $link.pre-nodo"
	fi
}

do_uninstall() {
	local u d f
	step "Uninstalling Nodo from $dest"
	if [ "$use_systemd" -eq 1 ]; then
		systemctl disable --now "${units[@]}" 2>/dev/null || true
	fi
	for u in "${units[@]}"; do
		rm -f -- "$unit_dir/$u"
		if [ -f "$unit_dir/$u.d/$dropin_name" ] &&
			grep -qF "$dropin_mark" "$unit_dir/$u.d/$dropin_name"; then
			rm -f -- "$unit_dir/$u.d/$dropin_name"
		fi
		rmdir -- "$unit_dir/$u.d" 2>/dev/null || true
	done
	if [ "$use_systemd" -eq 1 ]; then
		systemctl daemon-reload
		systemctl reset-failed "${units[@]}" 2>/dev/null || true
	fi
	say "removed the systemd units"

	for f in "${clis[@]}"; do
		remove_seed_link "$seed_dir/$f"
	done
	rmdir -- "$seed_dir" 2>/dev/null || true

	for d in "${daemons[@]}" nodo; do
		rm -f -- "$dest/bin/$d"
	done
	for f in "${clis[@]}" "${more_scripts[@]}" nodo-common.sh watcher-user.sh; do
		rm -f -- "$dest/scripts/$f"
	done
	for u in "${units[@]}"; do
		rm -f -- "$dest/systemd/$u"
	done
	# docs/ is ours alone (make install fills it): no operator file there.
	rm -rf -- "${dest:?}/docs"
	rm -f -- "$dest/install.sh"
	for d in bin scripts systemd docs; do
		rmdir -- "$dest/$d" 2>/dev/null || true
	done
	say "removed the programs, scripts and docs"

	if [ "$purge" -eq 1 ]; then
		rm -f -- "$dest/config/.env" "$dest/config/nodo.env" \
			"$dest/config/cloudflare-token" "$dest/cloudflare/domains.json"
		rmdir -- "$dest/config" "$dest/cloudflare" 2>/dev/null || true
		say "removed the configuration (--purge)"
	else
		say "kept $dest/config and $dest/cloudflare (remove them with --uninstall --purge)"
	fi
	rmdir -- "$dest" 2>/dev/null || true
	say "Tenant databases and filestores belong to Odoo: nothing of them was touched."
}

if [ "$uninstall" -eq 1 ]; then
	do_uninstall
	exit 0
fi

# --- Install ---------------------------------------------------------------

[ -f "$src/Makefile" ] || die "run install.sh from the Nodo source tree (no Makefile in $src);" \
	"an installed copy can only --uninstall"

step "Checking the system"
check_os

build_pkgs=(build-essential pkg-config libmicrohttpd-dev libpq-dev
	libcurl4-openssl-dev libcjson-dev libsystemd-dev libssl-dev libarchive-dev)
run_pkgs=(curl ca-certificates)

install_packages() {
	local p missing=()
	for p in "${build_pkgs[@]}" "${run_pkgs[@]}"; do
		if ! dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
			missing+=("$p")
		fi
	done
	if [ "${#missing[@]}" -eq 0 ]; then
		say "all packages are installed"
		return 0
	fi
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q --no-install-recommends "${missing[@]}"
}

if [ "$deps" -eq 1 ]; then
	step "Installing packages"
	install_packages
fi

# The service user: --user, else odoo, else the owner of a running Odoo.
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

# odoo_unit_user: User= of Odoo's systemd unit (odoo.service, or
# odoo-server.service), or nothing.
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

user_reason=
unit_user=
if [ -z "$svc_user" ] && [ -z "$destdir" ]; then
	unit_user=$(odoo_unit_user)
fi
if [ -n "$svc_user" ]; then
	user_reason="given with --user"
elif [ -n "$destdir" ]; then
	svc_user=odoo # the target machine's user, not this one's
	user_reason="the units' default for a staged install (--user to change)"
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
	die "cannot tell which user Odoo runs as (no odoo.service, no user odoo, no running" \
		"Odoo process): pass --user NAME"
fi
# Root never runs the daemons (issue 8, item 10): they parse input from the
# network and would run what a writable path holds.
if [ "$svc_user" = root ] || { id -u "$svc_user" >/dev/null 2>&1 && [ "$(id -u "$svc_user")" -eq 0 ]; }; then
	die "refusing to install the services to run as root ($svc_user, $user_reason):" \
		"run Odoo as its own user (normally odoo) and pass --user NAME"
fi
# nobody is shared by every unprivileged daemon: systemd calls it unsafe.
if [ "$svc_user" = nobody ] || { id -u "$svc_user" >/dev/null 2>&1 && [ "$(id -u "$svc_user")" -eq 65534 ]; }; then
	die "refusing to install the services to run as $svc_user ($user_reason): that user" \
		"is shared by unrelated daemons; run Odoo as its own user and pass --user NAME"
fi
if id -u "$svc_user" >/dev/null 2>&1; then
	svc_group=$(id -gn "$svc_user")
elif [ -n "$destdir" ]; then
	svc_group=$svc_user
	warn "user $svc_user does not exist here; files are left to the packager to chown"
else
	die "user $svc_user does not exist"
fi

step "Service user: $svc_user (group $svc_group): $user_reason"

# Odoo's config: --odoo-conf, else /etc/odoo/odoo.conf, else -c/--config of
# the running Odoo.
conf_reason=
conf_given=0
if [ -n "$odoo_conf" ]; then
	conf_reason="given with --odoo-conf"
	conf_given=1
elif [ -n "$destdir" ]; then
	: # a staged install is for another machine: no config is looked for
elif [ -f /etc/odoo/odoo.conf ]; then
	odoo_conf=/etc/odoo/odoo.conf
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

# odoo_conf_get KEY: the value of KEY in the [options] section of
# $odoo_conf ("key = value" or "key: value"), or nothing.
odoo_conf_get() {
	awk -v want="$1" '
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
		END { if (found) print val }
	' "$odoo_conf" 2>/dev/null
}

# odoo_home_data_dir: Odoo's own default when odoo.conf sets no data_dir
# (appdirs' user_data_dir: ~/.local/share/Odoo of the user Odoo runs as).
data_dir=$default_data_dir
env_data_dir= # ODOO_DATA_DIR to put into .env ("" when the default is right)
odoo_home_data_dir() {
	local home
	home=$(getent passwd "$svc_user" 2>/dev/null | cut -d: -f6)
	if [ -z "$home" ] || [ "$home" = / ] || [ "$home" = /nonexistent ]; then
		warn "cannot tell the home of $svc_user, where Odoo keeps its files when no" \
			"data_dir is set: set data_dir in odoo.conf or ODOO_DATA_DIR in $prefix/config/.env"
		return 0
	fi
	data_dir=${home%/}/.local/share/Odoo
	say "Odoo's data dir: $data_dir (no data_dir in Odoo's config: Odoo's default under" \
		"the home of $svc_user, the user it runs as)"
	if [ "$data_dir" != "$default_data_dir" ]; then
		env_data_dir=$data_dir
	fi
}

if [ -n "$odoo_conf" ] && [ -r "$odoo_conf" ] && [ -f "$odoo_conf" ]; then
	step "Odoo config: $odoo_conf ($conf_reason)"
	dbfilter=$(odoo_conf_get dbfilter)
	list_db=$(odoo_conf_get list_db)
	conf_data_dir=$(odoo_conf_get data_dir)
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
	'' | False | false) odoo_home_data_dir ;;
	*)
		data_dir=${conf_data_dir%/}
		say "data_dir = $data_dir (filestores in $data_dir/filestore)"
		;;
	esac
else
	if [ -n "$odoo_conf" ]; then
		[ "$conf_given" -eq 0 ] || die "cannot read Odoo's config $odoo_conf (--odoo-conf)"
		warn "cannot read Odoo's config $odoo_conf"
	elif [ -n "$destdir" ]; then
		say "staged install: Odoo's config is not looked for (--odoo-conf FILE to give it)"
	else
		warn "Odoo's config not found (no /etc/odoo/odoo.conf, no running Odoo):" \
			"set ODOO_CONF in $prefix/config/.env"
	fi
	odoo_conf=
	if [ -z "$destdir" ]; then
		odoo_home_data_dir
	fi
fi

# --- Build and install -----------------------------------------------------

step "Building"
if [ "$build" -eq 1 ]; then
	make -C "$src" B="$bdir" || die "the build failed (missing packages? run without --no-deps)"
	make_goal=(install)
else
	for d in "${daemons[@]}"; do
		[ -x "$bdir/$d" ] || die "--no-build: $bdir/$d has not been built"
	done
	say "skipped (--no-build): installing the binaries already in $bdir"
	make_goal=(-o all install) # do not rebuild what "install" depends on
fi

step "Installing into $dest"
make -C "$src" "${make_goal[@]}" B="$bdir" DESTDIR="$destdir" PREFIX="$prefix"
install -m 0755 "$src/install.sh" "$dest/install.sh"
say "installed $prefix/bin/{odoo-local-api,odoo-db-watcher}, scripts, docs and units"

# --- Users and groups ------------------------------------------------------

# Group nodo reads config/.env (the daemons, and operators who run the
# wrappers); nodo-watcher runs the watcher when it can (docs/README.md).
step "Users and groups"
if [ -n "$destdir" ]; then
	say "staged install: the group $nodo_group and the user $watcher_account are not created here;" \
		"the target machine needs them (docs/README.md, \"Users, groups, owners and modes\")"
else
	if ! getent group "$nodo_group" >/dev/null 2>&1; then
		groupadd --system "$nodo_group"
		say "created the system group $nodo_group (its members may run the wrappers)"
	else
		say "group $nodo_group exists"
	fi
	if ! id -u "$watcher_account" >/dev/null 2>&1; then
		useradd --system --gid "$nodo_group" --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "Nodo DNS watcher" "$watcher_account"
		say "created the system user $watcher_account (group $nodo_group) for odoo-db-watcher"
	else
		say "user $watcher_account exists"
	fi
fi

# --- config/.env -----------------------------------------------------------

is_root=0
if [ "$(id -u)" -eq 0 ]; then
	is_root=1
fi
# The env file is root:nodo 0640 when we are root (root:root 0640 when the
# group does not exist here, as in a staged install); a non-root staging
# run cannot give it away, and keeps it 0600 (the daemons refuse a
# group-readable file root does not own).
if [ "$is_root" -eq 1 ]; then
	env_owner=root
	if getent group "$nodo_group" >/dev/null 2>&1; then
		env_group=$nodo_group
	else
		env_group=root
	fi
	env_mode=640
else
	env_owner=$(id -un)
	env_group=$(id -gn)
	env_mode=600
fi

new_key() {
	local k
	k=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	[ "${#k}" -eq 64 ] || die "cannot read 32 random bytes from /dev/urandom"
	printf '%s' "$k"
}

# env_get FILE KEY: prints the value of KEY in FILE (quotes removed), empty
# when unset; returns 1 when no line sets KEY.
env_get() {
	local line v='' found=1
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		line=${line#"${line%%[![:space:]]*}"}
		case $line in
		"$2"=* | "$2"[[:space:]]*=*)
			v=${line#*=}
			v=${v#"${v%%[![:space:]]*}"}
			v=${v%"${v##*[![:space:]]}"}
			case $v in
			\"*\" | \'*\') v=${v:1:${#v}-2} ;;
			esac
			found=0
			;;
		esac
	done <"$1"
	printf '%s' "$v"
	return "$found"
}

# write_env SRC DEST KEY [ODOO_CONF [ODOO_DATA_DIR]]: writes SRC to DEST
# (atomically, owner $env_owner:$env_group, mode $env_mode) with
# PROVISIONING_API_KEY set to KEY (the line replaced, or added) and, if
# given, ODOO_CONF and ODOO_DATA_DIR set. Shell builtins only: the key never
# appears on a command line.
write_env() {
	local from=$1 to=$2 key=$3 conf=${4-} ddir=${5-} tmp line
	local done_key=0 done_conf=0 done_ddir=0
	tmp=$(mktemp "$to.XXXXXX")
	chmod 0600 "$tmp"
	if [ "$is_root" -eq 1 ]; then
		chown "$env_owner:$env_group" "$tmp"
	fi
	chmod "$env_mode" "$tmp"
	{
		while IFS= read -r line || [ -n "$line" ]; do
			case $line in
			PROVISIONING_API_KEY=* | PROVISIONING_API_KEY[[:space:]]*=*)
				if [ "$done_key" -eq 0 ]; then
					printf 'PROVISIONING_API_KEY=%s\n' "$key"
					done_key=1
				fi
				continue
				;;
			ODOO_CONF=* | '#ODOO_CONF='*)
				if [ -n "$conf" ] && [ "$done_conf" -eq 0 ]; then
					printf 'ODOO_CONF=%s\n' "$conf"
					done_conf=1
					continue
				fi
				;;
			ODOO_DATA_DIR=* | '#ODOO_DATA_DIR='*)
				if [ -n "$ddir" ] && [ "$done_ddir" -eq 0 ]; then
					printf 'ODOO_DATA_DIR=%s\n' "$ddir"
					done_ddir=1
					continue
				fi
				;;
			esac
			printf '%s\n' "$line"
		done <"$from"
		if [ "$done_key" -eq 0 ]; then
			printf '\n# Added by install.sh\nPROVISIONING_API_KEY=%s\n' "$key"
		fi
		if [ -n "$conf" ] && [ "$done_conf" -eq 0 ]; then
			printf 'ODOO_CONF=%s\n' "$conf"
		fi
		if [ -n "$ddir" ] && [ "$done_ddir" -eq 0 ]; then
			printf '# Added by install.sh: where Odoo keeps its files\nODOO_DATA_DIR=%s\n' "$ddir"
		fi
	} >"$tmp"
	mv -f -- "$tmp" "$to"
}

step "Configuration"
cfg_dir=$dest/config
env_file=$cfg_dir/.env
token_file=$cfg_dir/cloudflare-token
key=
key_why=
first_install=1
if [ -e "$env_file" ] || [ -L "$env_file" ]; then
	first_install=0
fi
# Nothing under config/ may be replaced by anyone but root.
if [ "$is_root" -eq 1 ]; then
	if [ "$(stat -c %u "$cfg_dir")" -ne 0 ] || [ $((8#$(stat -c %a "$cfg_dir") & 8#022)) -ne 0 ]; then
		say "gave $prefix/config to root, mode 0755 (was $(stat -c '%U:%G %a' "$cfg_dir"))"
		chown root:root "$cfg_dir"
		chmod 0755 "$cfg_dir"
	fi
fi
if [ -e "$env_file" ] || [ -L "$env_file" ]; then
	if [ ! -f "$env_file" ] || [ -L "$env_file" ]; then
		die "$env_file is not a regular file"
	fi
	say "kept the existing $prefix/config/.env"
	was=$(stat -c '%U:%G %a' "$env_file")
	if [ "$is_root" -eq 1 ]; then
		case $(stat -c '%U:%G %a' "$env_file") in
		"root:$env_group 640" | "root:$env_group 440") ;;
		*)
			chown "root:$env_group" "$env_file"
			chmod 0640 "$env_file"
			say "gave $prefix/config/.env to root:$env_group, mode 0640 (was $was): the daemons" \
				"and members of $env_group read it, only root writes it"
			;;
		esac
	else
		case $(stat -c %a "$env_file") in
		600 | 400) ;;
		*)
			chmod 0600 "$env_file"
			say "made $prefix/config/.env private, mode 0600 (was $was; the daemons refuse an env file others can read)"
			;;
		esac
	fi
	current=$(env_get "$env_file" PROVISIONING_API_KEY || true)
	add_ddir=
	if [ -n "$env_data_dir" ] && ! env_get "$env_file" ODOO_DATA_DIR >/dev/null; then
		add_ddir=$env_data_dir
	fi
	if [ -z "$current" ]; then
		key=$(new_key)
		key_why="PROVISIONING_API_KEY was not set: generated a random one"
		write_env "$env_file" "$env_file" "$key" "" "$add_ddir"
	elif [ "$current" = "$example_key" ]; then
		key=$(new_key)
		key_why="replaced the seed's published example PROVISIONING_API_KEY ($example_key) with a random key (the API refuses the example): give the new one to the APP server"
		write_env "$env_file" "$env_file" "$key" "" "$add_ddir"
		say "$key_why"
	elif [ -n "$add_ddir" ]; then
		write_env "$env_file" "$env_file" "$current" "" "$add_ddir"
	fi
	if [ -n "$add_ddir" ]; then
		say "added ODOO_DATA_DIR=$add_ddir to $prefix/config/.env (Odoo keeps its files there)"
	fi
	if [ -n "$current" ] && [ "$current" != "$example_key" ] && [ "${#current}" -lt "$min_key_len" ]; then
		warn "PROVISIONING_API_KEY in $prefix/config/.env is shorter than $min_key_len bytes:" \
			"odoo-local-api refuses to start with it. Put a random key there" \
			"(od -An -tx1 -N32 /dev/urandom | tr -d ' \\n') and give it to the APP server."
	fi
	current=
else
	key=$(new_key)
	key_why="a new install: a random key, generated now"
	conf_line=
	if [ -n "$odoo_conf" ] && [ "$odoo_conf" != /etc/odoo/odoo.conf ]; then
		conf_line=$odoo_conf
	fi
	write_env "$dest/config/nodo.env" "$env_file" "$key" "$conf_line" "$env_data_dir"
	say "created $prefix/config/.env ($env_owner:$env_group, mode 0$env_mode) from nodo.env"
	if [ -n "$env_data_dir" ]; then
		say "  with ODOO_DATA_DIR=$env_data_dir (Odoo keeps its files there)"
	fi
fi

# The Cloudflare token file (LoadCredential= of both units): it must exist,
# even empty, or systemd refuses to start the units.
if [ -L "$token_file" ] || { [ -e "$token_file" ] && [ ! -f "$token_file" ]; }; then
	die "$token_file is not a regular file"
fi
if [ ! -e "$token_file" ]; then
	install -m 0600 /dev/null "$token_file"
	say "created $prefix/config/cloudflare-token (empty, mode 0600): the place for the Cloudflare token"
else
	was=$(stat -c '%U:%G %a' "$token_file")
	if [ "$is_root" -eq 1 ] && [ "$was" != "root:root 600" ] && [ "$was" != "root:root 400" ]; then
		chown root:root "$token_file"
		chmod 0600 "$token_file"
		say "gave $prefix/config/cloudflare-token to root, mode 0600 (was $was)"
	elif [ "$is_root" -eq 0 ] && [ $((8#$(stat -c %a "$token_file") & 8#077)) -ne 0 ]; then
		chmod 0600 "$token_file"
		say "made $prefix/config/cloudflare-token private, mode 0600 (was $was)"
	else
		say "kept $prefix/config/cloudflare-token"
	fi
fi
say "kept $prefix/cloudflare/domains.json (installed only when absent)"
# What the daemons will use: an ODOO_DATA_DIR of .env wins (the units'
# drop-ins follow it).
if env_ddir=$(env_get "$env_file" ODOO_DATA_DIR) && [ -n "$env_ddir" ]; then
	data_dir=${env_ddir%/}
fi

# --- The watcher's user ----------------------------------------------------

# nodo-watcher can log in to PostgreSQL as the node's role only with a
# password over TCP; with peer authentication on the local socket (Odoo's
# usual db_host = False) only the Unix user of that name can. It must also
# read odoo.conf (a group may be added for that).
watcher_user=$watcher_account
watcher_group=$nodo_group
watcher_supp=
watcher_reason="its own user: it needs no access to Odoo's files"
if [ -z "$destdir" ] || [ "$conf_given" -eq 1 ]; then
	# The rule is scripts/watcher-user.sh's, which the package's postinst
	# runs too.
	w=$("$src/scripts/watcher-user.sh" "$odoo_conf" "$env_file" "$svc_user" "$svc_group") ||
		die "scripts/watcher-user.sh failed"
	{
		read -r watcher_user
		read -r watcher_group
		read -r watcher_supp
		read -r watcher_reason
	} <<<"$w"
fi
step "Watcher user: $watcher_user: $watcher_reason"

# --- systemd units ---------------------------------------------------------

step "systemd units"
install -d "$unit_dir"
for u in "${units[@]}"; do
	install -m 0644 "$src/systemd/$u" "$unit_dir/$u"
done
# A drop-in for what differs from the units' defaults (users, prefix,
# data_dir); removed again when nothing differs.
for i in 0 1; do
	u=${units[i]}
	d=${daemons[i]}
	dir=$unit_dir/$u.d
	body=
	if [ "$d" = odoo-local-api ]; then
		if [ "$svc_user" != odoo ] || [ "$svc_group" != odoo ]; then
			body+="User=$svc_user"$'\n'"Group=$svc_group"$'\n'
		fi
	else
		if [ "$watcher_user" != "$watcher_account" ] || [ "$watcher_group" != "$nodo_group" ]; then
			body+="User=$watcher_user"$'\n'"Group=$watcher_group"$'\n'
		fi
		if [ -n "$watcher_supp" ]; then
			body+="SupplementaryGroups=$watcher_supp"$'\n'
		fi
	fi
	if [ "$prefix" != /opt/nodo ]; then
		body+="ExecStart="$'\n'"ExecStart=$prefix/bin/$d --config $prefix/config/.env"$'\n'
		body+="LoadCredential="$'\n'"LoadCredential=cloudflare-token:$prefix/config/cloudflare-token"$'\n'
	fi
	if [ "$d" = odoo-local-api ]; then
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
		printf '%s\n%s\n[Service]\n%s' "$dropin_mark (users, prefix, data_dir)." \
			"# Re-running install.sh rewrites it." "$body" >"$dir/$dropin_name"
		chmod 0644 "$dir/$dropin_name"
		say "$u: drop-in $dir/$dropin_name"
		sed 's/^/    /' "$dir/$dropin_name"
	elif [ -f "$dir/$dropin_name" ] && grep -qF "$dropin_mark" "$dir/$dropin_name"; then
		rm -f -- "$dir/$dropin_name"
		rmdir -- "$dir" 2>/dev/null || true
	fi
done
say "installed ${units[*]} into $unit_dir"

# --- The seed's script paths -----------------------------------------------

# path_unsafe PATH: prints why root should not run what PATH holds and
# returns 0, or returns 1 when every existing component of it (from / or,
# in a staged install, from the stage's root) is owned by root (the
# packager, when staged) and writable by neither group nor others.
# Components that do not exist yet are made by install.sh, root's, 0755.
trusted_uid=0
if [ -n "$destdir" ]; then
	trusted_uid=$(id -u)
fi
path_unsafe() {
	local p=${root:-/} c uid mode
	local -a parts
	IFS=/ read -r -a parts <<<"${1#"$root"}"
	for c in '' "${parts[@]}"; do
		if [ -n "$c" ]; then
			p=${p%/}/$c
		fi
		[ -e "$p" ] || return 1
		uid=$(stat -L -c %u -- "$p")
		mode=$(stat -L -c %a -- "$p")
		if [ "$uid" -ne "$trusted_uid" ]; then
			printf '%s is owned by %s, not by %s' "${p#"$root"}" "$(stat -L -c %U -- "$p")" \
				"$(getent passwd "$trusted_uid" | cut -d: -f1)"
			return 0
		fi
		if [ $((8#$mode & 8#022)) -ne 0 ]; then
			printf '%s is writable by its group or by others (mode %s)' "${p#"$root"}" "$mode"
			return 0
		fi
	done
	return 1
}

step "Seed paths"
seed_why=$(path_unsafe "$seed_dir") || seed_why=
if [ -z "$seed_why" ]; then
	for f in "${clis[@]}"; do
		if seed_why=$(path_unsafe "$dest/scripts/$f"); then
			break
		fi
		seed_why=
	done
fi
if [ -n "$seed_why" ]; then
	warn "not linking the seed's paths /opt/odoo/scripts/*.sh: $seed_why, so someone" \
		"other than root could change what root runs there. Run the wrappers from" \
		"$prefix/scripts/ (sudo $prefix/scripts/list_tenants.sh), or make every directory of" \
		"/opt/odoo/scripts root's and not group- or world-writable and run install.sh again."
	for f in "${clis[@]}"; do
		link=$seed_dir/$f
		if [ -L "$link" ] && [ "$(readlink -- "$link")" = "$prefix/scripts/$f" ]; then
			rm -f -- "$link"
			say "removed the old link $link"
		fi
	done
else
	install -d "$seed_dir"
	for f in "${clis[@]}"; do
		link=$seed_dir/$f
		if [ -e "$link" ] && [ ! -L "$link" ]; then
			if [ -e "$link.pre-nodo" ]; then
				rm -f -- "$link"
			else
				mv -- "$link" "$link.pre-nodo"
				say "moved the old $link to $link.pre-nodo"
			fi
		fi
		ln -sfn -- "$prefix/scripts/$f" "$link"
	done
	say "linked /opt/odoo/scripts/{create,list,delete}_tenant.sh -> $prefix/scripts/" \
		"(the wrappers' own place is $prefix/scripts/)"
fi

# --- Start -----------------------------------------------------------------

# run_as USER GROUP SUPP CMD...: runs CMD as USER with primary group GROUP
# and supplementary group SUPP (may be empty), as systemd would.
run_as() {
	local user=$1 group=$2 supp=$3
	shift 3
	if [ "$(id -un)" = "$user" ]; then
		"$@"
	elif [ -n "$supp" ] && getent group "$supp" >/dev/null 2>&1; then
		runuser -u "$user" -g "$group" -G "$supp" -- "$@"
	else
		runuser -u "$user" -g "$group" -- "$@"
	fi
}

# check_daemon DAEMON: its --check as the user its unit runs it as, with
# the Cloudflare token credential as systemd would hand it over.
check_daemon() {
	local d=$1 user group supp cred='' rc=0
	if [ "$d" = odoo-local-api ]; then
		user=$svc_user group=$svc_group supp=$nodo_group
	else
		user=$watcher_user group=$watcher_group supp=$watcher_supp
	fi
	if [ -s "$token_file" ]; then
		cred=$(mktemp -d)
		install -m 0400 -o "$user" "$token_file" "$cred/cloudflare-token"
		chown "$user" "$cred"
		chmod 0500 "$cred"
	fi
	run_as "$user" "$group" "$supp" env ${cred:+CREDENTIALS_DIRECTORY="$cred"} \
		"$dest/bin/$d" --config "$env_file" --check || rc=$?
	if [ -n "$cred" ]; then
		rm -rf -- "$cred"
	fi
	return "$rc"
}

print_manual_start() {
	say "Start the daemons by hand (each runs in the foreground; logs go to stderr;"
	say "the token file $prefix/config/cloudflare-token is read only under systemd:"
	say "by hand, put CLOUDFLARE_API_TOKEN in .env):"
	say "  runuser -u $svc_user -g $svc_group -G $nodo_group -- $prefix/bin/odoo-local-api --config $prefix/config/.env &"
	if [ -n "$watcher_supp" ]; then
		say "  runuser -u $watcher_user -g $watcher_group -G $watcher_supp -- $prefix/bin/odoo-db-watcher --config $prefix/config/.env &"
	else
		say "  runuser -u $watcher_user -g $watcher_group -- $prefix/bin/odoo-db-watcher --config $prefix/config/.env &"
	fi
	say "Check the settings first with:"
	say "  runuser -u $svc_user -g $svc_group -G $nodo_group -- $prefix/bin/odoo-local-api --config $prefix/config/.env --check"
}

# What to (re)start: --start both; --no-start none; by default none on a
# first install (the operator edits .env first: the seed's order of steps)
# and, on a re-run, the units that are running (so they load the new
# binaries and settings).
step "Services"
failed=0
started=0
if [ -n "$destdir" ]; then
	say "staged into $destdir: systemd was not touched."
	say "On the target machine: systemctl daemon-reload && systemctl enable ${units[*]}"
	print_manual_start
elif [ "$use_systemd" -eq 0 ]; then
	say "systemd is not PID 1 here (a container or CI): the units were installed but not started."
	print_manual_start
else
	systemctl daemon-reload
	systemctl enable "${units[@]}"
	todo=()
	for u in "${units[@]}"; do
		case $start in
		yes) todo+=("$u") ;;
		auto)
			if [ "$first_install" -eq 0 ] && systemctl is-active --quiet "$u"; then
				todo+=("$u")
			fi
			;;
		esac
	done
	if [ "${#todo[@]}" -eq 0 ]; then
		case $start in
		no) say "enabled, not started (--no-start)." ;;
		*)
			if [ "$first_install" -eq 1 ]; then
				say "enabled, not started (a first install): edit the settings first (below), then start them."
			else
				say "enabled; none was running, so none was started (--start starts them)."
			fi
			;;
		esac
	else
		for d in "${daemons[@]}"; do
			if ! check_daemon "$d"; then
				failed=1
				warn "$d --check found problems (above)"
			fi
		done
		if [ "$failed" -eq 0 ]; then
			# restart, not start: a re-run must load the new binaries.
			systemctl restart "${todo[@]}"
			started=1
			sleep 1
			systemctl --no-pager --full status "${todo[@]}" || true
		else
			warn "nothing was (re)started: ${todo[*]} were left as they were. Fix" \
				"$prefix/config/.env, then: systemctl restart ${todo[*]}"
		fi
	fi
fi

# The key and the next steps come last, where they are seen.
step "Done"
say "Nodo is installed in $prefix."
if [ -n "$key" ]; then
	say ""
	say "  PROVISIONING_API_KEY=$key"
	say ""
	say "  ($key_why.) This is the X-API-KEY of the node's API, shown only now. It stays"
	say "  in $prefix/config/.env, readable by root and the group $nodo_group."
fi
if [ -n "$key" ]; then
	give="Give the key above to the APP server (it stays in $prefix/config/.env)."
else
	give="The APP server needs the key of $prefix/config/.env (PROVISIONING_API_KEY)."
fi
key=
say ""
say "Next steps:"
if [ "$failed" -ne 0 ]; then
	say "  1. Fix what the checks above report, in $prefix/config/.env (or domains.json)."
	say "  2. Check again: sudo -u $svc_user -g $nodo_group $prefix/bin/odoo-local-api --config $prefix/config/.env --check"
	say "  3. Run install.sh again, or: sudo systemctl restart ${units[*]}"
elif [ "$started" -eq 1 ]; then
	say "  1. $give"
	say "  2. Check: curl http://127.0.0.1:8070/health"
	say "  3. Try: sudo $prefix/scripts/list_tenants.sh (members of $nodo_group need no sudo)"
else
	say "  1. $give"
	say "  2. Edit $prefix/config/.env (ODOO_DOMAIN, CF_TUNNEL_ID), put the Cloudflare token in"
	say "     $prefix/config/cloudflare-token, and list the zones in $prefix/cloudflare/domains.json."
	say "  3. Check and start: sudo -u $svc_user -g $nodo_group $prefix/bin/odoo-local-api --config $prefix/config/.env --check"
	say "     && sudo systemctl start ${units[*]}"
fi
say "Docs: $prefix/docs/README.md"
if [ "$failed" -ne 0 ]; then
	die "a check failed: the services were left as they were"
fi
