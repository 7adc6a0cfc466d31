#!/bin/sh
# Installs the Debian packages that building and testing Nodo need, when
# one is missing and we are root (a fresh Debian 12 machine, CI). As another
# user it only says what is missing.
set -eu

PKGS="build-essential pkg-config libmicrohttpd-dev libpq-dev
libcurl4-openssl-dev libcjson-dev libsystemd-dev libssl-dev libarchive-dev libcmocka-dev
postgresql-15 postgresql-client-15 python3 python3-pytest python3-requests
python3-psycopg2 python3-passlib python3-jsonschema python3-yaml curl
shellcheck systemd clang wrk strace debootstrap systemd-container dpkg-dev
debhelper lintian fakeroot git python3-fastapi python3-uvicorn
python3-prometheus-client prometheus"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
	    grep -q 'install ok installed'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "deps.sh: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "deps.sh: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
# shellcheck disable=SC2086 # word splitting of the list is intended
apt-get install -y -q --no-install-recommends $missing
