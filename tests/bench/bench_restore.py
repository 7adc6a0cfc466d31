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

MIB = int(os.environ.get("BENCH_RESTORE_MIB", "200"))
FILES = int(os.environ.get("BENCH_RESTORE_FILES", "2000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def api_restore(api, zpath, name):
    peak = [0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(api.proc.pid))
            time.sleep(0.05)

    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.monotonic()
    with open(zpath, "rb") as f:
        r = requests.post(f"{api.url}/api/tenant/restore",
                          params={"subdomain": name}, data=f,
                          headers=dict(api.headers(), **{
                              "Content-Type": "application/zip"}),
                          timeout=3600)
    took = time.monotonic() - t0
    stop.set()
    t.join()
    assert r.status_code == 201, r.text
    return took, peak[0]


def by_hand(pg, data, work, zpath, name):
    d = work / "hand"
    shutil.rmtree(d, ignore_errors=True)
    env = dict(os.environ, PGPASSWORD=h.NODE_PASSWORD)
    conn = ["-h", pg.host, "-p", str(pg.port), "-U", h.NODE_ROLE]
    t0 = time.monotonic()
    subprocess.run(["unzip", "-q", str(zpath), "-d", str(d)], check=True)
    subprocess.run([str(h.PGBIN / "createdb")] + conn +
                   ["-E", "unicode", "-T", "template0", name], env=env,
                   check=True)
    subprocess.run([str(h.PGBIN / "psql"), "-q", "-o", "/dev/null"] + conn +
                   ["-d", name, "-f", str(d / "dump.sql")], env=env,
                   check=True)
    os.rename(d / "filestore", data / "filestore" / name)
    took = time.monotonic() - t0
    shutil.rmtree(d)
    return took


def drop(pg, data, name):
    pg.su_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(data / "filestore" / name, ignore_errors=True)


def main():
    pg = h.Postgres()
    work = Path(tempfile.mkdtemp(prefix="nodo-bench-restore-"))
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
        zpath = work / "bench.zip"
        with requests.get(f"{api.url}/api/tenants/bench/backup", stream=True,
                          headers=api.headers(), timeout=3600) as r:
            r.raise_for_status()
            with open(zpath, "wb") as f:
                for chunk in r.iter_content(1 << 20):
                    f.write(chunk)
        base = rss_kib(api.proc.pid)
        print(f"tenant: {size / 2**20:.0f} MiB database, {FILES} filestore "
              f"files, zip {zpath.stat().st_size / 2**20:.0f} MiB; {ROUNDS} "
              f"rounds; {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.2f}; daemon RSS at rest "
              f"{base / 1024:.1f} MiB")
        a, m, peaks = [], [], []
        for rnd in range(ROUNDS):
            took, peak = api_restore(api, zpath, f"api{rnd}")
            a.append(took)
            peaks.append(peak)
            drop(pg, data, f"api{rnd}")
            m.append(by_hand(pg, data, work, zpath, f"hand{rnd}"))
            drop(pg, data, f"hand{rnd}")
            print(f"  round {rnd + 1}: API {a[-1]:.1f} s (RSS peak "
                  f"{peak / 1024:.1f} MiB), unzip + psql -f by hand "
                  f"{m[-1]:.1f} s")
        ma, mm = statistics.median(a), statistics.median(m)
        print(f"median: API {ma:.1f} s, unzip + psql -f by hand {mm:.1f} s, "
              f"ratio {ma / mm:.2f}; daemon RSS peak {max(peaks) / 1024:.1f}"
              f" MiB (+{(max(peaks) - base) / 1024:.1f} MiB over rest)")
    finally:
        if api is not None:
            api.stop()
        pg.destroy()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
