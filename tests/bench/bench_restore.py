#!/usr/bin/python3
"""A restore's time and the daemon's memory: figures, not pass/fail.

    make B=build && NODO_BUILD=$PWD/build /usr/bin/python3 tests/bench/bench_restore.py

A tenant with BENCH_RESTORE_MIB (default 200) MiB of random bytea rows and
BENCH_RESTORE_FILES (default 2000) filestore files of 1 to 16 KiB is backed
up once through the API; then, BENCH_ROUNDS times (default 3), that zip is
restored in two ways, one after the other in each round so both see the
same machine and page cache:
  * the API: POST /api/tenant/restore with the zip as the body (upload on
    127.0.0.1, spooling, checks, scan, psql, fsyncs, publish), the
    daemon's VmRSS sampled every 50 ms;
  * by hand: `unzip -q` to a folder, `createdb`, `psql -q -f dump.sql`
    (what Odoo's restore_db does, without its checks), the filestore
    moved into place.
It prints the median times, their ratio and the daemon's peak RSS.
Everything runs on 127.0.0.1 against a PostgreSQL 15 cluster of its own
(tests/backup_kit.py, shared with bench_backup.py and
tests/stress/big_backup.py, which restores a 1 GiB tenant's backup).
"""
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import backup_kit as kit  # noqa: E402

MIB = int(os.environ.get("BENCH_RESTORE_MIB", "200"))
FILES = int(os.environ.get("BENCH_RESTORE_FILES", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def main():
    node = kit.Node(prefix="nodo-bench-restore-")
    try:
        node.start()
        api = node.api
        r = api.create("bench")
        assert r.status_code == 201, r.text
        kit.fill(node, "bench", blob_mib=MIB, files=FILES)
        size = node.db_size("bench")
        zpath = node.work / "bench.zip"
        kit.api_backup(api, "bench", zpath)
        base = kit.status_kib(api.proc.pid)
        print(f"tenant: {size / 2**20:.0f} MiB database, {FILES} filestore "
              f"files, zip {zpath.stat().st_size / 2**20:.0f} MiB; {ROUNDS} "
              f"rounds; {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.2f}; daemon RSS at rest "
              f"{base / 1024:.1f} MiB")
        a, m, peaks = [], [], []
        for rnd in range(ROUNDS):
            took, s = kit.api_restore(api, zpath, f"api{rnd}")
            a.append(took)
            peaks.append(s.peak_rss)
            kit.drop(node, f"api{rnd}")
            m.append(kit.unzip_psql_by_hand(node, zpath, f"hand{rnd}"))
            kit.drop(node, f"hand{rnd}")
            print(f"  round {rnd + 1}: API {a[-1]:.1f} s (RSS peak "
                  f"{s.peak_rss / 1024:.1f} MiB), unzip + psql -f by hand "
                  f"{m[-1]:.1f} s")
        ma, mm = statistics.median(a), statistics.median(m)
        print(f"median: API {ma:.1f} s, unzip + psql -f by hand {mm:.1f} s, "
              f"ratio {ma / mm:.2f}; daemon RSS peak {max(peaks) / 1024:.1f}"
              f" MiB (+{(max(peaks) - base) / 1024:.1f} MiB over rest)")
    finally:
        node.close()


if __name__ == "__main__":
    main()
