#!/bin/sh
# run.sh - builds the libFuzzer targets (tests/fuzz/fuzz_*.c, one per
# parser) into build-fuzz/ with clang, ASan and UBSan, linking the library
# sources directly, then fuzzes each one for FUZZ_SECONDS.
#
#   sh tests/fuzz/run.sh                  build, fuzz every target
#   sh tests/fuzz/run.sh fuzz_env ...     build, fuzz the named targets
#   sh tests/fuzz/run.sh --build-only     build only (regress.sh uses it)
#
# Environment: FUZZ_SECONDS (60, per target), FUZZ_CC (clang), FUZZ_BUILD
# (build-fuzz). Each target fuzzes a copy of tests/fuzz/corpus/<target>/
# in build-fuzz/work/<target>/corpus (kept between runs, so the repository
# corpus stays clean and coverage accumulates); crashes, leaks, timeouts
# and out-of-memory inputs go to tests/fuzz/findings/<target>/ (ignored by
# git). Prints executions and findings per target; exits 1 when a target
# found anything, 2 on a usage or build error.
set -eu

cd "$(dirname "$0")/../.."

CC_FUZZ=${FUZZ_CC:-clang}
B=${FUZZ_BUILD:-build-fuzz}
SECONDS_EACH=${FUZZ_SECONDS:-60}
MAX_LEN=65536  # bytes, largest input tried (settings files are capped at 1 MiB)
TIMEOUT=5      # seconds, one input; slower is a finding
PKGS="libmicrohttpd libpq libcurl libcjson libsystemd libcrypto"
FINDINGS=tests/fuzz/findings

# 0 would mean "no limit" to libFuzzer.
case $SECONDS_EACH in
'' | *[!0-9]* | 0*)
	echo "run.sh: FUZZ_SECONDS must be a positive number of seconds" >&2
	exit 2
	;;
esac

build_only=0
if [ "${1:-}" = "--build-only" ]; then
	build_only=1
	shift
fi

# Word splitting of these flag lists is intended throughout (SC2086).
# shellcheck disable=SC2086
PKG_CFLAGS=$(pkg-config --cflags $PKGS)
# shellcheck disable=SC2086
PKG_LIBS=$(pkg-config --libs $PKGS)
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-std=c17 -D_GNU_SOURCE -Iinclude -O1 -g -fno-omit-frame-pointer
-pthread $SAN $PKG_CFLAGS"
VERSION_DEF='-DNODO_VERSION="fuzz"'

mkdir -p "$B/obj" "$B/work"

# Objects built with other flags or another compiler are rebuilt.
stamp="$CC_FUZZ $CFLAGS $VERSION_DEF"
if [ ! -f "$B/flags" ] || [ "$(cat "$B/flags")" != "$stamp" ]; then
	rm -f "$B"/obj/*.o "$B"/fuzz_*
	printf '%s\n' "$stamp" >"$B/flags"
fi

# True when file $1 is missing or older than one of the paths after it.
stale() {
	f=$1
	shift
	[ ! -f "$f" ] || [ -n "$(find "$@" -newer "$f" -type f -print |
	    head -n 1)" ]
}

objs=""
for src in src/lib/*.c; do
	obj="$B/obj/$(basename "$src" .c).o"
	if stale "$obj" "$src" include/nodo "$B/flags"; then
		echo "CC $src"
		# shellcheck disable=SC2086
		if ! "$CC_FUZZ" $CFLAGS "$VERSION_DEF" \
		    -fsanitize=fuzzer-no-link -c -o "$obj" "$src"; then
			echo "run.sh: cannot compile $src" >&2
			exit 2
		fi
	fi
	objs="$objs $obj"
done
lib="$B/libnodo-fuzz.a"
# shellcheck disable=SC2086
if stale "$lib" $objs; then
	rm -f "$lib"
	ar rcs "$lib" $objs
fi

all_targets=""
for src in tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	all_targets="$all_targets $t"
	if stale "$B/$t" "$src" "$lib" include/nodo; then
		echo "LD $B/$t"
		# shellcheck disable=SC2086
		if ! "$CC_FUZZ" $CFLAGS "$VERSION_DEF" -fsanitize=fuzzer \
		    -o "$B/$t" "$src" "$lib" $PKG_LIBS; then
			echo "run.sh: cannot build $t" >&2
			exit 2
		fi
	fi
done
if [ "$build_only" -eq 1 ]; then
	exit 0
fi

if [ $# -gt 0 ]; then
	targets="$*"
else
	targets=$all_targets
fi

found=0
printf '%-16s %14s  %s\n' target executions findings
for t in $targets; do
	if [ ! -x "$B/$t" ]; then
		echo "run.sh: no target $t (have:$all_targets)" >&2
		exit 2
	fi
	work="$B/work/$t"
	out="$FINDINGS/$t"
	mkdir -p "$work/corpus" "$out"
	if [ -d "tests/fuzz/corpus/$t" ]; then
		cp tests/fuzz/corpus/"$t"/* "$work/corpus/" 2>/dev/null || true
	fi
	: >"$work/start"
	rc=0
	"$B/$t" -max_total_time="$SECONDS_EACH" -max_len="$MAX_LEN" \
	    -timeout="$TIMEOUT" -print_final_stats=1 \
	    -artifact_prefix="$out/" "$work/corpus" >"$work/log" 2>&1 ||
	    rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' \
	    "$work/log" | tail -n 1)
	new=$(find "$out" -type f -newer "$work/start" \( -name 'crash-*' \
	    -o -name 'leak-*' -o -name 'timeout-*' -o -name 'oom-*' \) \
	    -print)
	if [ -n "$new" ] || [ "$rc" -ne 0 ]; then
		found=1
		printf '%-16s %14s  %s\n' "$t" "${execs:-?}" \
		    "FOUND (exit $rc), log $work/log"
		for f in $new; do
			echo "    $f"
		done
		grep -m 3 -E '^(SUMMARY|==[0-9]+==ERROR|.*runtime error:|fuzz_)' \
		    "$work/log" | sed 's/^/    /' || true
	else
		printf '%-16s %14s  %s\n' "$t" "${execs:-?}" none
	fi
done
exit "$found"
