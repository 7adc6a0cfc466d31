#!/usr/bin/python3
"""A backup's time and the daemon's memory: figures, not pass/fail.

    make B=build && NODO_BUILD=$PWD/build /usr/bin/python3 tests/bench/bench_backup.py

A tenant with BENCH_BACKUP_MIB (default 300) MiB of random bytea rows and
BENCH_BACKUP_FILES (default 2000) filestore files of 1 to 16 KiB is backed
up BENCH_ROUNDS times (default 3) in two ways, one after the other in each
round so both see the same machine and page cache:
  * the API: GET /api/tenants/<t>/backup written to a file, the daemon's
    VmRSS sampled every 50 ms;
  * by hand: `pg_dump --no-owner` to a file, then `zip -q -r` of it and a
    copy of the filestore (what an operator would do; zip's default
    deflate level 6, as libarchive's).
It prints the median times, their ratio and the daemon's peak RSS.
Everything runs on 127.0.0.1 against a PostgreSQL 15 cluster of its own.
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import conftest as h  # noqa: E402
import psycopg2  # noqa: E402
import requests  # noqa: E402

MIB = int(os.environ.get("BENCH_BACKUP_MIB", "300"))
FILES = int(os.environ.get("BENCH_BACKUP_FILES", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def api_backup(api, out):
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(api.proc.pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.monotonic()
    with requests.get(f"{api.url}/api/tenants/bench/backup", stream=True,
                      headers=api.headers(), timeout=3600) as r:
        r.raise_for_status()
        with open(out, "wb") as f:
            for chunk in r.iter_content(1 << 20):
                f.write(chunk)
    took = time.monotonic() - t0
    stop.set()
    t.join()
    return took, peak[0]


def by_hand(pg, data, work):
    d = work / "hand"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    env = dict(os.environ, PGPASSWORD=h.NODE_PASSWORD)
    t0 = time.monotonic()
    with open(d / "dump.sql", "wb") as f:
        subprocess.run([str(h.PGBIN / "pg_dump"), "--no-owner", "-h",
                        pg.host, "-p", str(pg.port), "-U", h.NODE_ROLE,
                        "bench"], stdout=f, env=env, check=True)
    shutil.copytree(data / "filestore" / "bench", d / "filestore")
    (d / "manifest.json").write_text("{}")
    subprocess.run(["zip", "-q", "-r", str(work / "hand.zip"),
                    "manifest.json", "filestore", "dump.sql"], cwd=d,
                   check=True)
    took = time.monotonic() - t0
    (work / "hand.zip").unlink()
    shutil.rmtree(d)
    return took


def main():
    pg = h.Postgres()
    work = Path(tempfile.mkdtemp(prefix="nodo-bench-backup-"))
    data = work / "data"
    (data / "filestore").mkdir(parents=True)
    api = None
    try:
        pg.init()
        h.make_template(pg, data)
        env = {"ODOO_DOMAIN": "sajet.us", "PROVISIONING_API_KEY": h.API_KEY,
               "CLOUDFLARE_API_TOKEN": "", "API_HOST": "127.0.0.1",
               "API_PORT": str(h.free_port()), "DEFAULT_TEMPLATE_DB": "tcs",
               "ODOO_CONF": str(work / "no-odoo.conf"),
               "ODOO_DATA_DIR": str(data), "PGHOST": pg.host,
               "PGPORT": str(pg.port), "PGUSER": h.NODE_ROLE,
               "PGPASSWORD": h.NODE_PASSWORD, "LOG_LEVEL": "info"}
        (work / "api").mkdir()
        api = h.Daemon("odoo-local-api", work / "api", env).start()
        r = api.create("bench")
        assert r.status_code == 201, r.text
        c = psycopg2.connect(host=pg.host, port=pg.port, user=h.NODE_ROLE,
                             password=h.NODE_PASSWORD, dbname="bench")
        c.autocommit = True
        with c.cursor() as cur:
            cur.execute("CREATE TABLE blob (id int PRIMARY KEY, data bytea)")
            for i in range(MIB):
                cur.execute("INSERT INTO blob VALUES (%s, %s)",
                            (i, psycopg2.Binary(os.urandom(1 << 20))))
            cur.execute("SELECT pg_database_size('bench')")
            size = cur.fetchone()[0]
        c.close()
        fs = data / "filestore" / "bench"
        for i in range(FILES):
            p = fs / f"{i % 256:02x}" / f"{i:040x}"
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(os.urandom(1024 + (i * 7919) % (15 * 1024)))
        base = rss_kib(api.proc.pid)
        print(f"tenant: {size / 2**20:.0f} MiB database, {FILES} filestore "
              f"files; {ROUNDS} rounds; {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.2f}; daemon RSS at rest "
              f"{base / 1024:.1f} MiB")
        a, m, peaks = [], [], []
        for rnd in range(ROUNDS):
            took, peak = api_backup(api, work / "api.zip")
            zsize = (work / "api.zip").stat().st_size
            (work / "api.zip").unlink()
            a.append(took)
            peaks.append(peak)
            m.append(by_hand(pg, data, work))
            print(f"  round {rnd + 1}: API {a[-1]:.1f} s ({zsize / 2**20:.0f}"
                  f" MiB zip, RSS peak {peak / 1024:.1f} MiB), by hand "
                  f"{m[-1]:.1f} s")
        ma, mm = statistics.median(a), statistics.median(m)
        print(f"median: API {ma:.1f} s, pg_dump + zip by hand {mm:.1f} s, "
              f"ratio {ma / mm:.2f}; daemon RSS peak {max(peaks) / 1024:.1f}"
              f" MiB (+{(max(peaks) - base) / 1024:.1f} MiB over rest)")
    finally:
        if api is not None:
            api.stop()
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
