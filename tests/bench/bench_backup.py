#!/usr/bin/python3
"""A backup's time and the daemon's memory: figures, not pass/fail.

    make B=build && NODO_BUILD=$PWD/build /usr/bin/python3 tests/bench/bench_backup.py

A tenant with BENCH_BACKUP_MIB (default 300) MiB of random bytea rows and
BENCH_BACKUP_FILES (default 2000) filestore files of 1 to 16 KiB is backed
up BENCH_ROUNDS times (default 3) in two ways, one after the other in each
round so both see the same machine and page cache:
  * the API: GET /api/tenants/<t>/backup written to a file, the daemon's
    VmRSS sampled every 50 ms;
  * by hand: `pg_dump --no-owner` to a file, then `zip -q -r` of it and
    the filestore (what an operator would do; zip's default deflate level
    6, as libarchive's).
It prints the median times, their ratio and the daemon's peak RSS.
Everything runs on 127.0.0.1 against a PostgreSQL 15 cluster of its own
(tests/backup_kit.py, shared with bench_restore.py and
tests/stress/big_backup.py, which backs up a 1 GiB tenant).
"""
import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import backup_kit as kit  # noqa: E402

MIB = int(os.environ.get("BENCH_BACKUP_MIB", "300"))
FILES = int(os.environ.get("BENCH_BACKUP_FILES", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def main():
    node = kit.Node(prefix="nodo-bench-backup-")
    try:
        node.start()
        api = node.api
        r = api.create("bench")
        assert r.status_code == 201, r.text
        kit.fill(node, "bench", blob_mib=MIB, files=FILES)
        size = node.db_size("bench")
        base = kit.status_kib(api.proc.pid)
        print(f"tenant: {size / 2**20:.0f} MiB database, {FILES} filestore "
              f"files; {ROUNDS} rounds; {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.2f}; daemon RSS at rest "
              f"{base / 1024:.1f} MiB")
        a, m, peaks = [], [], []
        out = node.work / "api.zip"
        for rnd in range(ROUNDS):
            took, zsize, s = kit.api_backup(api, "bench", out)
            out.unlink()
            a.append(took)
            peaks.append(s.peak_rss)
            m.append(kit.dump_zip_by_hand(node, "bench",
                                          node.work / "hand.zip"))
            (node.work / "hand.zip").unlink()
            print(f"  round {rnd + 1}: API {a[-1]:.1f} s ({zsize / 2**20:.0f}"
                  f" MiB zip, RSS peak {s.peak_rss / 1024:.1f} MiB), by hand "
                  f"{m[-1]:.1f} s")
        ma, mm = statistics.median(a), statistics.median(m)
        print(f"median: API {ma:.1f} s, pg_dump + zip by hand {mm:.1f} s, "
              f"ratio {ma / mm:.2f}; daemon RSS peak {max(peaks) / 1024:.1f}"
              f" MiB (+{(max(peaks) - base) / 1024:.1f} MiB over rest)")
    finally:
        node.close()


if __name__ == "__main__":
    main()
