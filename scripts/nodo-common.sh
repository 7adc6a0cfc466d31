# shellcheck shell=bash
# nodo-common.sh - shared code of the Nodo CLI wrappers (CONTRACT sections 7
# and 13): create_tenant.sh, list_tenants.sh, delete_tenant.sh and the
# others source this file from the directory they really live in (symlinks
# resolved).
#
# The wrappers are thin: they keep the seed's arguments and help texts and
# hand the work to the `nodo` program (docs/nodo.1.md), which reads the env
# file with the daemons' own parser, calls the local API with libcurl (the
# key only ever in the X-API-KEY header, never in an argv) and prints the
# result. No JSON and no env file are parsed here.
#
# nodo is looked for, in order: ../bin/nodo beside the scripts (the
# installed tree, /opt/nodo/bin/nodo), `nodo` on PATH, $NODO_BUILD/nodo and
# ../build/nodo (a source tree).
#
# Exit statuses shared by the wrappers and nodo (sysexits.h):
#   0 success, 1 the API refused the request (its "detail" is on stderr) or
#   a question was answered no, 64 usage error, 69 the API cannot be reached
#   or gave no usable answer, 74 a local file could not be read or written,
#   78 configuration error (env file unreadable, no key, bad API_PORT).

# shellcheck disable=SC2034 # not every wrapper uses every status
readonly NODO_EX_API=1 NODO_EX_USAGE=64 NODO_EX_UNAVAILABLE=69 NODO_EX_CONFIG=78
NODO_PROG=${0##*/}
NODO_BIN=

# nodo_die STATUS MESSAGE...: prints "prog: MESSAGE" on stderr and exits.
nodo_die() {
	local status=$1
	shift
	printf '%s: %s\n' "$NODO_PROG" "$*" >&2
	exit "$status"
}

# nodo_find: sets NODO_BIN to the nodo program, or dies with 69.
nodo_find() {
	local dir
	dir=$(dirname -- "${BASH_SOURCE[0]}")
	if [ -x "$dir/../bin/nodo" ]; then
		NODO_BIN=$dir/../bin/nodo
	elif NODO_BIN=$(command -v nodo); then
		:
	elif [ -n "${NODO_BUILD:-}" ] && [ -x "$NODO_BUILD/nodo" ]; then
		NODO_BIN=$NODO_BUILD/nodo
	elif [ -x "$dir/../build/nodo" ]; then
		NODO_BIN=$dir/../build/nodo
	else
		nodo_die "$NODO_EX_UNAVAILABLE" "the nodo program is missing" \
			"(looked for $dir/../bin/nodo and nodo on PATH); reinstall Nodo"
	fi
}

# nodo_run ARGS...: becomes nodo with ARGS (its exit status is ours).
nodo_run() {
	nodo_find
	exec "$NODO_BIN" "$@"
}
