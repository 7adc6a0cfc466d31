#!/bin/sh
# crash.sh - the long variant of the kill -9 test (tests/integration/
# test_faults.py::test_crash_during_create): NODO_CRASH_TRIALS trials
# (default 50), each killing odoo-local-api at a moment drawn uniformly
# over a create's duration, restarting it and checking that no visible
# tenant is incomplete and nothing internal is left; as many trials of
# each trash operation (test_trash_crash.py: delete, restore, purge) and
# of a restore from a backup (test_restore_crash.py). Prints the counts.
#
#   tests/stress/crash.sh            # build/, 50 trials
#   NODO_BUILD=build-san NODO_CRASH_TRIALS=200 tests/stress/crash.sh
set -eu

root=$(cd "$(dirname "$0")/../.." && pwd)
NODO_BUILD=${NODO_BUILD:-$root/build}
NODO_CRASH_TRIALS=${NODO_CRASH_TRIALS:-50}
PYTHON=${PYTHON:-/usr/bin/python3}
export NODO_BUILD NODO_CRASH_TRIALS

cd "$root"
exec "$PYTHON" -m pytest -q -s -p no:cacheprovider \
    tests/integration/test_faults.py tests/integration/test_trash_crash.py \
    tests/integration/test_restore_crash.py \
    -k "test_crash_during_create or test_crash_during_delete_restore_purge \
or test_crash_during_restore_from_backup" \
    "$@"
