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
  4. creates PREFIX/config/.env from config/nodo.env if it does not exist
     (mode 0600, owned by the service user, with a random
     PROVISIONING_API_KEY that is printed once); an existing .env and
     cloudflare/domains.json are kept
  5. finds the service user and Odoo's config, and checks dbfilter/list_db
  6. installs the systemd units into /etc/systemd/system, reloads systemd,
     enables and (re)starts both services and shows their status; where
     systemd is not PID 1 (containers, CI) it says how to start them by hand
  7. links /opt/odoo/scripts/{create,list,delete}_tenant.sh to PREFIX/scripts

Options:
  --prefix DIR     installation directory (default /opt/nodo)
  --destdir DIR    stage everything under DIR (for packages and tests): no
                   root needed, no apt-get, no systemctl
  --user NAME      service user (default: odoo if it exists, else the owner
                   of the running Odoo process, else root)
  --no-deps        do not install packages with apt-get
  --no-build       do not run make; install an already built tree (build/,
                   or $NODO_BUILD)
  --no-start       install and enable the services but do not start them
  --uninstall      remove the binaries, scripts, units and links; keep
                   PREFIX/config and PREFIX/cloudflare
  --purge          with --uninstall: also remove the configuration (.env,
                   nodo.env, domains.json). Tenant databases and filestores
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
deps=1
build=1
start=1
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
	--no-deps) deps=0 ;;
	--no-build) build=0 ;;
	--no-start) start=0 ;;
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
dropin_name=10-install.conf
dropin_mark="# Written by Nodo's install.sh"
example_key=prov-key-2026-secure

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

	for d in "${daemons[@]}"; do
		rm -f -- "$dest/bin/$d"
	done
	for f in "${clis[@]}" nodo-common.sh; do
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
			"$dest/cloudflare/domains.json"
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

user_reason=
if [ -n "$svc_user" ]; then
	user_reason="given with --user"
elif [ -n "$destdir" ]; then
	svc_user=odoo # the target machine's user, not this one's
	user_reason="the units' default for a staged install (--user to change)"
elif id -u odoo >/dev/null 2>&1; then
	svc_user=odoo
	user_reason="the user odoo exists"
elif [ -n "$odoo_ps_line" ]; then
	svc_user=${odoo_ps_line%% *}
	user_reason="owner of the running Odoo process"
else
	svc_user=root
	user_reason="no user odoo and no running Odoo process found"
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
if [ "$svc_user" = root ]; then
	warn "the daemons will run as root. Create the user Odoo runs as (normally odoo)" \
		"or pass --user NAME, then run install.sh again."
fi

# Odoo's config: /etc/odoo/odoo.conf, else -c/--config of the running Odoo.
odoo_conf=
conf_reason=
if [ -f /etc/odoo/odoo.conf ]; then
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

data_dir=/var/lib/odoo
if [ -n "$odoo_conf" ] && [ -r "$odoo_conf" ]; then
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
	'' | False)
		home=$(getent passwd "$svc_user" | cut -d: -f6)
		warn "$odoo_conf sets no data_dir: Odoo keeps filestores in" \
			"${home:-~$svc_user}/.local/share/Odoo/filestore, Nodo in /var/lib/odoo/filestore." \
			"Set data_dir in $odoo_conf (or ODOO_DATA_DIR in $prefix/config/.env) so they agree."
		;;
	*)
		data_dir=${conf_data_dir%/}
		say "data_dir = $data_dir (filestores in $data_dir/filestore)"
		;;
	esac
else
	if [ -n "$odoo_conf" ]; then
		warn "cannot read Odoo's config $odoo_conf"
	else
		warn "Odoo's config not found (no /etc/odoo/odoo.conf, no running Odoo):" \
			"set ODOO_CONF in $prefix/config/.env"
	fi
	odoo_conf=
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

# --- config/.env -----------------------------------------------------------

can_chown=0
if [ "$(id -u)" -eq 0 ] && id -u "$svc_user" >/dev/null 2>&1; then
	can_chown=1
fi

new_key() {
	local k
	k=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	[ "${#k}" -eq 64 ] || die "cannot read 32 random bytes from /dev/urandom"
	printf '%s' "$k"
}

# env_key FILE: prints the value of PROVISIONING_API_KEY in FILE (quotes
# removed), empty when unset.
env_key() {
	local line v=''
	while IFS= read -r line || [ -n "$line" ]; do
		line=${line%$'\r'}
		line=${line#"${line%%[![:space:]]*}"}
		case $line in
		PROVISIONING_API_KEY=* | PROVISIONING_API_KEY[[:space:]]*=*)
			v=${line#*=}
			v=${v#"${v%%[![:space:]]*}"}
			v=${v%"${v##*[![:space:]]}"}
			case $v in
			\"*\" | \'*\') v=${v:1:${#v}-2} ;;
			esac
			;;
		esac
	done <"$1"
	printf '%s' "$v"
}

# write_env SRC DEST KEY [ODOO_CONF]: writes SRC to DEST (atomically, mode
# 0600, owned by the service user) with PROVISIONING_API_KEY set to KEY (the
# line replaced, or added) and, if given, ODOO_CONF set. Shell builtins only:
# the key never appears on a command line.
write_env() {
	local from=$1 to=$2 key=$3 conf=${4-} tmp line done_key=0 done_conf=0
	tmp=$(mktemp "$to.XXXXXX")
	chmod 0600 "$tmp"
	if [ "$can_chown" -eq 1 ]; then
		chown "$svc_user:$svc_group" "$tmp"
	fi
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
			esac
			printf '%s\n' "$line"
		done <"$from"
		if [ "$done_key" -eq 0 ]; then
			printf '\n# Added by install.sh\nPROVISIONING_API_KEY=%s\n' "$key"
		fi
		if [ -n "$conf" ] && [ "$done_conf" -eq 0 ]; then
			printf 'ODOO_CONF=%s\n' "$conf"
		fi
	} >"$tmp"
	mv -f -- "$tmp" "$to"
}

step "Configuration"
env_file=$dest/config/.env
key=
if [ -e "$env_file" ] || [ -L "$env_file" ]; then
	if [ ! -f "$env_file" ] || [ -L "$env_file" ]; then
		die "$env_file is not a regular file"
	fi
	say "kept the existing $prefix/config/.env"
	mode=$(stat -c %a "$env_file")
	if [ "$mode" != 600 ] && [ "$mode" != 400 ]; then
		chmod go-rwx "$env_file"
		say "made $prefix/config/.env private (mode was $mode; the daemons refuse an env file others can read)"
	fi
	if [ "$can_chown" -eq 1 ] && [ "$(stat -c %U "$env_file")" != "$svc_user" ]; then
		chown "$svc_user:$svc_group" "$env_file"
		say "gave $prefix/config/.env to $svc_user (the daemons run as $svc_user)"
	fi
	current=$(env_key "$env_file")
	if [ -z "$current" ]; then
		key=$(new_key)
		write_env "$env_file" "$env_file" "$key"
		say "PROVISIONING_API_KEY was not set: generated a random one"
	elif [ "$current" = "$example_key" ]; then
		warn "$prefix/config/.env still uses the documented example key ($example_key)." \
			"Anyone who read the docs can create and drop tenants: put a random key there" \
			"(od -An -tx1 -N32 /dev/urandom | tr -d ' \\n'), give it to the APP server," \
			"and restart both services."
	fi
	current=
else
	key=$(new_key)
	conf_line=
	if [ -n "$odoo_conf" ] && [ "$odoo_conf" != /etc/odoo/odoo.conf ]; then
		conf_line=$odoo_conf
	fi
	write_env "$dest/config/nodo.env" "$env_file" "$key" "$conf_line"
	say "created $prefix/config/.env (mode 0600, owner $svc_user) from nodo.env"
	say "edit it: ODOO_DOMAIN, CLOUDFLARE_API_TOKEN, CF_TUNNEL_ID; and $prefix/cloudflare/domains.json"
fi
if [ -n "$key" ]; then
	say ""
	say "  PROVISIONING_API_KEY=$key"
	say ""
	say "  This is the X-API-KEY of the node's API. It is shown only now: give it to the"
	if [ "$svc_user" = root ]; then
		say "  APP server. It stays in $prefix/config/.env (readable by root only)."
	else
		say "  APP server. It stays in $prefix/config/.env (readable by root and $svc_user)."
	fi
fi
key=
say "kept $prefix/cloudflare/domains.json (installed only when absent)"

# --- systemd units ---------------------------------------------------------

step "systemd units"
install -d "$unit_dir"
for u in "${units[@]}"; do
	install -m 0644 "$src/systemd/$u" "$unit_dir/$u"
done
# A drop-in for what differs from the units' defaults (user, prefix,
# data_dir); removed again when nothing differs.
for i in 0 1; do
	u=${units[i]}
	d=${daemons[i]}
	dir=$unit_dir/$u.d
	body=
	if [ "$svc_user" != odoo ] || [ "$svc_group" != odoo ]; then
		body+="User=$svc_user"$'\n'"Group=$svc_group"$'\n'
	fi
	if [ "$svc_user" = root ]; then
		# Running as root, the filestore copy keeps owners with fchown(),
		# which the units' "~@privileged" filter refuses: allow @chown back.
		body+="SystemCallFilter=@chown"$'\n'
	fi
	if [ "$prefix" != /opt/nodo ]; then
		body+="ExecStart="$'\n'"ExecStart=$prefix/bin/$d --config $prefix/config/.env"$'\n'
	fi
	if [ "$d" = odoo-local-api ]; then
		case $data_dir/ in
		/var/lib/odoo/*) ;;
		*) body+="ReadWritePaths=-$data_dir"$'\n' ;;
		esac
	fi
	if [ -n "$body" ]; then
		install -d "$dir"
		printf '%s\n%s\n[Service]\n%s' "$dropin_mark (service user, prefix, data_dir)." \
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

step "Seed paths"
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
say "linked /opt/odoo/scripts/{create,list,delete}_tenant.sh -> $prefix/scripts/"

# --- Start -----------------------------------------------------------------

run_as() {
	if [ "$svc_user" = root ] || [ "$(id -un)" = "$svc_user" ]; then
		"$@"
	else
		runuser -u "$svc_user" -- "$@"
	fi
}

print_manual_start() {
	local how='' d
	if [ "$svc_user" != root ]; then
		how="runuser -u $svc_user -- "
	fi
	say "Start the daemons by hand (each runs in the foreground; logs go to stderr):"
	for d in "${daemons[@]}"; do
		say "  $how$prefix/bin/$d --config $prefix/config/.env &"
	done
	say "Check the settings first with:"
	say "  $how$prefix/bin/odoo-local-api --config $prefix/config/.env --check"
}

step "Services"
if [ -n "$destdir" ]; then
	say "staged into $destdir: systemd was not touched."
	say "On the target machine: systemctl daemon-reload && systemctl enable --now ${units[*]}"
	print_manual_start
elif [ "$use_systemd" -eq 0 ]; then
	say "systemd is not PID 1 here (a container or CI): the units were installed but not started."
	print_manual_start
else
	systemctl daemon-reload
	systemctl enable "${units[@]}"
	if [ "$start" -eq 0 ]; then
		say "enabled, not started (--no-start). Start them with: systemctl start ${units[*]}"
	else
		checks_ok=1
		for d in "${daemons[@]}"; do
			if ! run_as "$dest/bin/$d" --config "$env_file" --check; then
				checks_ok=0
				warn "$d --check found problems (above)"
			fi
		done
		if [ "$checks_ok" -eq 1 ]; then
			# restart, not start: a re-run must load the new binaries.
			systemctl restart "${units[@]}"
			sleep 1
			systemctl --no-pager --full status "${units[@]}" || true
		else
			warn "the services are enabled but were not started. Fix $prefix/config/.env," \
				"then: systemctl restart ${units[*]}"
		fi
	fi
fi

step "Done"
say "Nodo is installed in $prefix. Try:"
say "  sudo /opt/odoo/scripts/list_tenants.sh"
say "  curl http://127.0.0.1:8070/health"
say "Docs: $prefix/docs/README.md"
