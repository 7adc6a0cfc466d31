#!/bin/sh
# test_units.sh - checks the systemd units in systemd/ (CONTRACT section 1,
# issue "systemd units"): each one passes `systemd-analyze verify`, rates
# "OK" or better in `systemd-analyze security --offline=true` (overall
# exposure at most 3.0), and carries the settings the daemons rely on: the
# users and groups of docs/README.md ("Users, groups, owners and modes")
# and the Cloudflare token as the systemd credential cloudflare-token.
#
# Usage: tests/test_units.sh [UNIT_DIR]   (default: the repository's systemd/)
# Exit 0 when every check passes, 1 otherwise; 77 (skip) without systemd-analyze.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
unit_dir=${1:-"$here/../systemd"}
max_exposure=3.0
units="odoo-local-api.service odoo-db-watcher.service"

if ! command -v systemd-analyze >/dev/null 2>&1; then
	echo "SKIP: systemd-analyze not installed" >&2
	exit 77
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT HUP INT TERM

failures=0
fail() {
	echo "FAIL: $*" >&2
	failures=$((failures + 1))
}
ok() {
	echo "ok: $*"
}

for unit in $units; do
	src="$unit_dir/$unit"
	if [ ! -r "$src" ]; then
		fail "$unit: $src not found"
		continue
	fi
	prog=${unit%.service}

	# verify needs ExecStart= to name an existing binary: check the real path
	# first, then point a copy at /bin/true.
	want="ExecStart=/opt/nodo/bin/$prog --config /opt/nodo/config/.env"
	if grep -qxF "$want" "$src"; then
		ok "$unit: $want"
	else
		fail "$unit: missing '$want'"
	fi
	sed "s#^ExecStart=/opt/nodo/bin/$prog#ExecStart=/bin/true#" "$src" >"$tmp/$unit"

	# systemd-analyze verify prints warnings without failing: any output
	# about the unit counts as a failure too.
	if out=$(cd "$tmp" && systemd-analyze verify "./$unit" 2>&1); then
		if [ -n "$out" ]; then
			fail "$unit: systemd-analyze verify warned:"
			printf '%s\n' "$out" >&2
		else
			ok "$unit: systemd-analyze verify"
		fi
	else
		fail "$unit: systemd-analyze verify failed:"
		printf '%s\n' "$out" >&2
	fi

	if ! out=$(cd "$tmp" && systemd-analyze security --offline=true "./$unit" 2>&1); then
		fail "$unit: systemd-analyze security failed:"
		printf '%s\n' "$out" >&2
		continue
	fi
	line=$(printf '%s\n' "$out" | grep 'Overall exposure level' || true)
	level=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9][0-9]*\.[0-9]\) \([A-Z][A-Z]*\).*/\1/p')
	rating=$(printf '%s\n' "$line" | sed -n 's/.*: \([0-9][0-9]*\.[0-9]\) \([A-Z][A-Z]*\).*/\2/p')
	if [ -z "$level" ]; then
		fail "$unit: no exposure level in: $out"
		continue
	fi
	# Compare as tenths, in integers: "1.2" -> 12.
	tenths=$(printf '%s\n' "$level" | sed 's/\.//; s/^0*\([0-9]\)/\1/')
	max_tenths=$(printf '%s\n' "$max_exposure" | sed 's/\.//')
	case $rating in
	OK | SAFE | PERFECT) rating_ok=1 ;;
	*) rating_ok=0 ;;
	esac
	if [ "$tenths" -le "$max_tenths" ] && [ "$rating_ok" -eq 1 ]; then
		ok "$unit: exposure $level $rating (at most $max_exposure)"
	else
		fail "$unit: exposure $level $rating (want at most $max_exposure, OK or better)"
	fi

	# Settings the daemons and the contract rely on.
	for want in Type=notify NotifyAccess=main WatchdogSec=30 Restart=on-failure \
		"ExecReload=/bin/kill -HUP \$MAINPID" \
		RestartSec=2 TimeoutStopSec=30 UMask=0077 \
		NoNewPrivileges=yes ProtectSystem=strict CapabilityBoundingSet= \
		'SystemCallFilter=@system-service' \
		'SystemCallFilter=~@privileged @resources' \
		'RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6' \
		'After=network-online.target postgresql.service' \
		'Wants=network-online.target' 'WantedBy=multi-user.target' \
		'LoadCredential=cloudflare-token:/opt/nodo/config/cloudflare-token'; do
		grep -qxF "$want" "$src" || fail "$unit: missing '$want'"
	done
	# Never root (docs/README.md, "Users, groups, owners and modes").
	if grep -qE '^(User|Group)=(root|0)?$' "$src"; then
		fail "$unit: runs as root"
	fi
	if grep -q '^EnvironmentFile=' "$src"; then
		fail "$unit: EnvironmentFile= set (the daemon reads --config itself)"
	fi
	if grep -q '^IPAddressDeny=' "$src"; then
		fail "$unit: IPAddressDeny= set (it must reach Cloudflare)"
	fi
done

# The API runs as Odoo's user (it writes filestores) with group nodo, which
# reads the env file; the watcher has its own user in group nodo and cannot
# see the filestores.
for want in User=odoo Group=odoo SupplementaryGroups=nodo; do
	grep -qxF "$want" "$unit_dir/odoo-local-api.service" ||
		fail "odoo-local-api.service: missing '$want'"
done
for want in User=nodo-watcher Group=nodo InaccessiblePaths=-/var/lib/odoo/filestore; do
	grep -qxF "$want" "$unit_dir/odoo-db-watcher.service" ||
		fail "odoo-db-watcher.service: missing '$want'"
done

# Only the API writes (filestores); the watcher has no writable path.
grep -qxF 'ReadWritePaths=-/var/lib/odoo' "$unit_dir/odoo-local-api.service" ||
	fail "odoo-local-api.service: missing ReadWritePaths=-/var/lib/odoo"
if grep -q '^ReadWritePaths=' "$unit_dir/odoo-db-watcher.service"; then
	fail "odoo-db-watcher.service: has ReadWritePaths= (it needs none)"
fi

if [ "$failures" -ne 0 ]; then
	echo "$failures check(s) failed" >&2
	exit 1
fi
echo "all unit checks passed"
