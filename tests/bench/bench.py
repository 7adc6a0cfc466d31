#!/usr/bin/python3
"""Benchmark of odoo-local-api (`make bench`): figures, not pass/fail.

Starts its own PostgreSQL 15 cluster, template and fake Cloudflare (as the
integration tests do) and prints:
  * median create time vs. the same run's CREATE DATABASE ... TEMPLATE tcs
    plus one pbkdf2-sha512 600000-round hash, done one after the other;
  * /health and GET /api/tenants (200 tenants) requests/s and p99 with wrk;
  * /health p99 while four creates run (a Python loop, then wrk);
  * the cost of one GET /metrics and one GET /api/node (200 tenants);
  * resident memory idle and under load.
Everything runs on 127.0.0.1. BENCH_CREATES (default 10) sets the sample,
BENCH_TENANTS (default 200) the tenants listed, BENCH_TEMPLATE_MB (default
20) the template's padding.
"""
import concurrent.futures
import hashlib
import http.client
import os
import re
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

N = int(os.environ.get("BENCH_CREATES", "10"))


def rss_kb(pid, field="VmRSS"):
    """VmRSS counts shared library pages too; RssAnon is the daemon's own."""
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def mem(pid):
    return (f"VmRSS {rss_kb(pid)/1024:.1f} MB (anonymous "
            f"{rss_kb(pid, 'RssAnon')/1024:.1f} MB)")


def bulk_template(pg, mb):
    """Make tcs look like a real Odoo 18 base template (~21 MB, ~1000
    relation files) so clone times are representative."""
    c = pg.connect("tcs")
    with c.cursor() as cur:
        for i in range(300):
            cur.execute(f"CREATE TABLE pad_{i} (id serial PRIMARY KEY, "
                        "name varchar, data text)")
            cur.execute(f"CREATE INDEX ON pad_{i} (name)")
        rows = int(mb * 1024 * 1024 / 300 / 200)
        for i in range(300):
            cur.execute(f"INSERT INTO pad_{i} (name, data) SELECT "
                        "md5(g::text), repeat('x', 160) FROM "
                        f"generate_series(1, {rows}) g")
    c.close()


def wrk(url, key, seconds=10, conns=16):
    lua = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
    lua.write(f'wrk.headers["X-API-KEY"] = "{key}"\n')
    lua.close()
    out = subprocess.run(["wrk", "-t2", f"-c{conns}", f"-d{seconds}s",
                          "--latency", "-s", lua.name, url],
                         capture_output=True, text=True, check=True).stdout
    os.unlink(lua.name)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, float(p99.group(1)) * scale, int(non2xx.group(1)) if \
        non2xx else 0


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main():
    if not shutil.which("wrk"):
        sys.exit("bench: wrk is not installed (apt-get install wrk)")
    pg = h.Postgres()
    cf = h.FakeCloudflare(token=h.CF_TOKEN,
                          zones={"sajet.us": h.ZONE_SAJET,
                                 "otro.dominio": h.ZONE_OTRO})
    tmp = Path(tempfile.mkdtemp(prefix="nodo-bench-"))
    api = None
    try:
        pg.init()
        data = tmp / "data"
        data.mkdir()
        h.make_template(pg, data)
        size_mb = float(os.environ.get("BENCH_TEMPLATE_MB", "20"))
        if size_mb > 0:
            bulk_template(pg, size_mb)
        with pg.connect().cursor() as cur:
            cur.execute("SELECT pg_database_size('tcs')")
            print(f"template tcs: {cur.fetchone()[0]/1e6:.1f} MB")
        cf.start()
        (tmp / "domains.json").write_text(
            '{"zones": {"sajet.us": "%s"}, "tunnel_id": "%s"}'
            % (h.ZONE_SAJET, h.TUNNEL_ID))
        env = {"ODOO_DOMAIN": "sajet.us",
               "PROVISIONING_API_KEY": h.API_KEY,
               "CLOUDFLARE_API_TOKEN": h.CF_TOKEN,
               "CLOUDFLARE_API_URL": cf.url,
               "DOMAINS_FILE": str(tmp / "domains.json"),
               "API_HOST": "127.0.0.1", "API_PORT": str(h.free_port()),
               "ODOO_CONF": str(tmp / "none.conf"),
               "ODOO_DATA_DIR": str(data),
               "PGHOST": pg.host, "PGPORT": str(pg.port),
               "PGUSER": h.NODE_ROLE, "PGPASSWORD": h.NODE_PASSWORD,
               "LOG_LEVEL": "warning"}
        api = h.Daemon("odoo-local-api", tmp, env).start()
        pid = api.proc.pid
        time.sleep(0.5)
        rss_idle = mem(pid)

        # 1. create vs. clone + hash, interleaved, same run.
        c = pg.connect()
        creates, clones, hashes = [], [], []
        for i in range(N):
            creates.append(timed(lambda: api.create(f"bench{i}", "pw")
                                 .raise_for_status()))
            with c.cursor() as cur:
                clones.append(timed(lambda: cur.execute(
                    f"CREATE DATABASE base{i} TEMPLATE tcs")))
            hashes.append(timed(lambda: hashlib.pbkdf2_hmac(
                "sha512", b"pw", os.urandom(16), 600000, 64)))
        for i in range(N):
            with c.cursor() as cur:
                cur.execute(f"DROP DATABASE base{i}")
        c.close()
        mc, ml, mh = (statistics.median(x) for x in (creates, clones,
                                                      hashes))
        print(f"create: median {mc*1000:.0f} ms over {N}; CREATE DATABASE "
              f"median {ml*1000:.0f} ms + hash median {mh*1000:.0f} ms = "
              f"{(ml+mh)*1000:.0f} ms; ratio {mc/(ml+mh):.2f} (aim <= 0.80)")

        # 2. 200 tenants, then wrk.
        with pg.connect().cursor() as cur:
            for i in range(N, int(os.environ.get("BENCH_TENANTS", "200"))):
                cur.execute(f"CREATE DATABASE bench{i} TEMPLATE tcs")
        n = len(api.get("/api/tenants").json()["tenants"])
        rps, p99, bad = wrk(api.url + "/health", h.API_KEY)
        print(f"/health: {rps:.0f} req/s, p99 {p99:.2f} ms, non-2xx {bad} "
              "(wrk -t2 -c16 -d10s)")
        rps, p99, bad = wrk(api.url + "/api/tenants", h.API_KEY)
        print(f"GET /api/tenants ({n} tenants): {rps:.0f} req/s, p99 "
              f"{p99:.2f} ms, non-2xx {bad}")
        rss_load = mem(pid)

        # 2b. One scrape and one node report, one after the other on one
        # connection (the first report, which reads the template's Odoo
        # version, is left out: it is cached for an hour).
        t = time.perf_counter()
        api.get("/api/node").raise_for_status()
        print(f"GET /api/node, the first (measures the {n} databases' "
              f"sizes itself, as the background thread does every 30 s "
              f"while polled): {(time.perf_counter() - t) * 1000:.0f} ms")
        for path in ("/metrics", "/api/node"):
            conn = http.client.HTTPConnection("127.0.0.1", api.port)
            took = []
            for _ in range(200):
                t = time.perf_counter()
                conn.request("GET", path, headers={"X-API-KEY": h.API_KEY})
                r = conn.getresponse()
                body = r.read()
                took.append(time.perf_counter() - t)
                assert r.status == 200, body
            conn.close()
            took.sort()
            print(f"GET {path} ({n} tenants): median "
                  f"{took[len(took) // 2] * 1000:.2f} ms, p99 "
                  f"{took[int(len(took) * 0.99)] * 1000:.2f} ms, "
                  f"{len(body)} bytes (200 requests, one connection)")

        # 3. /health latency while four creates run.
        stop = threading.Event()
        lat = []

        def poll():
            conn = http.client.HTTPConnection("127.0.0.1", api.port)
            while not stop.is_set():
                t = time.perf_counter()
                conn.request("GET", "/health")
                conn.getresponse().read()
                lat.append(time.perf_counter() - t)
            conn.close()

        def creator(k):
            for j in range(3):
                api.create(f"load{k}x{j}", "pw").raise_for_status()

        th = threading.Thread(target=poll)
        th.start()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(creator, range(4)))
        rss_creates = mem(pid)
        stop.set()
        th.join()
        lat.sort()
        p50 = lat[len(lat) // 2] * 1000
        p99 = lat[int(len(lat) * 0.99)] * 1000
        print(f"/health during 4 parallel creates: {len(lat)} requests, "
              f"p50 {p50:.2f} ms, p99 {p99:.2f} ms (aim p99 < 2 ms)")

        # 4. The same with wrk (-t2 -c16, keep-alive): creates keep four
        # at once for as long as wrk runs.
        res, made = {}, [0]

        def run_wrk():
            res["w"] = wrk(api.url + "/health", h.API_KEY, seconds=8)

        def churn(k):
            j = 0
            while "w" not in res:
                api.create(f"wrk{k}x{j}", "pw").raise_for_status()
                made[0] += 1
                j += 1

        th = threading.Thread(target=run_wrk)
        th.start()
        with concurrent.futures.ThreadPoolExecutor(4) as ex:
            list(ex.map(churn, range(4)))
        th.join()
        rps, p99, bad = res["w"]
        print(f"/health with wrk -t2 -c16 -d8s during 4 parallel creates "
              f"({made[0]} creates): {rps:.0f} req/s, p99 {p99:.2f} ms, "
              f"non-2xx {bad} (aim p99 < 2 ms)")
        print(f"memory idle: {rss_idle}\nmemory after wrk: {rss_load}\n"
              f"memory during creates: {rss_creates}")
    finally:
        if api is not None:
            api.stop()
        cf.stop()
        pg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
