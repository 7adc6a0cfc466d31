#!/bin/sh
# regress.sh - the fast fuzz regression check for `make check`: builds the
# fuzz targets (run.sh --build-only, incremental) and runs each once over
# every file of its seed corpus, tests/fuzz/corpus/<target>/, and of its
# past findings, tests/fuzz/regressions/<target>/. No fuzzing happens, so it
# takes seconds. Exits 1 when an input crashes, leaks, times out or breaks
# a property the target checks; 2 when the build fails.
set -eu

cd "$(dirname "$0")/../.."

B=${FUZZ_BUILD:-build-fuzz}
TIMEOUT=5 # seconds, one input

sh tests/fuzz/run.sh --build-only || exit 2
mkdir -p "$B/work"

fail=0
for src in tests/fuzz/fuzz_*.c; do
	t=$(basename "$src" .c)
	# Files only: given a directory, libFuzzer would start fuzzing it.
	set --
	for f in tests/fuzz/corpus/"$t"/* tests/fuzz/regressions/"$t"/*; do
		if [ -f "$f" ]; then
			set -- "$@" "$f"
		fi
	done
	if [ $# -eq 0 ]; then
		echo "regress: $t: no inputs"
		continue
	fi
	log="$B/work/$t.regress.log"
	if "$B/$t" -timeout="$TIMEOUT" "$@" >"$log" 2>&1; then
		echo "regress: $t: $# inputs ok"
	else
		fail=1
		echo "regress: $t: FAILED, log $log" >&2
		grep -E '^(Running: |SUMMARY|==[0-9]+==ERROR|.*runtime error:|fuzz_)' \
		    "$log" | tail -n 4 >&2 || true
	fi
done
exit "$fail"
