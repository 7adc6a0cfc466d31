#!/usr/bin/python3
"""The watcher reconciling many missing records (issue 10 item 5): figures.

Starts its own PostgreSQL 15 cluster and fake Cloudflare, makes CF_RECORDS
(default 1000) tenant databases from template0 with no record in the zone,
starts odoo-db-watcher (DB_WATCHER_INTERVAL=1) and waits until every tenant
has its CNAME. Prints the Cloudflare requests by kind, the requests per
missing record, the polls that called Cloudflare, the most requests in any
sliding five minutes (Cloudflare allows 1,200) and the time taken. Exit 1
when a record is missing, a request was refused (429) or any five minutes
held more than 1,200 requests; timings are reported, never judged.
Usage: NODO_BUILD=build /usr/bin/python3 tests/stress/cf_records.py
"""
import concurrent.futures
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))
import conftest as h  # noqa: E402

N = int(os.environ.get("CF_RECORDS", "1000"))
CF_LIMIT, CF_WINDOW_S = 1200, 300  # Cloudflare's, CLOUDFLARE.md
POLL_RE = re.compile(r"poll (\d+): .*; (\d+) Cloudflare requests")


def make_databases(pg, names, workers=4):
    def one(chunk):
        c = pg.su_connect()
        with c.cursor() as cur:
            for n in chunk:
                cur.execute(f'CREATE DATABASE "{n}" OWNER {h.NODE_ROLE} '
                            "TEMPLATE template0")
        c.close()
    with concurrent.futures.ThreadPoolExecutor(workers) as ex:
        list(ex.map(one, [names[i::workers] for i in range(workers)]))


def max_in_window(times, window):
    best, j = 0, 0
    for i, t in enumerate(times):
        while times[j] <= t - window:
            j += 1
        best = max(best, i - j + 1)
    return best


def main():
    pg = h.Postgres()
    cf = h.FakeCloudflare(token=h.CF_TOKEN,
                          zones={"sajet.us": h.ZONE_SAJET,
                                 "otro.dominio": h.ZONE_OTRO})
    tmp = Path(tempfile.mkdtemp(prefix="nodo-cf-"))
    d = None
    failures = []
    try:
        pg.init()
        names = [f"r{i:04d}" for i in range(N)]
        t0 = time.monotonic()
        make_databases(pg, names)
        print(f"{N} databases made in {time.monotonic() - t0:.0f} s")
        cf.start()
        (tmp / "domains.json").write_text(
            '{"zones": {"sajet.us": "%s", "otro.dominio": "%s"}, '
            '"tunnel_id": "%s"}' % (h.ZONE_SAJET, h.ZONE_OTRO, h.TUNNEL_ID))
        env = {"ODOO_DOMAIN": "sajet.us", "PROVISIONING_API_KEY": h.API_KEY,
               "CLOUDFLARE_API_TOKEN": h.CF_TOKEN,
               "CLOUDFLARE_API_URL": cf.url,
               "DOMAINS_FILE": str(tmp / "domains.json"),
               "ODOO_CONF": str(tmp / "none.conf"),
               "PGHOST": pg.host, "PGPORT": str(pg.port),
               "PGUSER": h.NODE_ROLE, "PGPASSWORD": h.NODE_PASSWORD,
               "LOG_LEVEL": "info", "DB_WATCHER_INTERVAL": "1"}
        t1 = time.monotonic()
        d = h.Daemon("odoo-db-watcher", tmp, env).start()
        want = {f"{n}.sajet.us" for n in names}
        deadline = t1 + 1800
        while time.monotonic() < deadline:
            got = {r["name"] for r in cf.records(h.ZONE_SAJET)
                   if r["type"] == "CNAME"}
            if want <= got:
                break
            time.sleep(0.2)
        took = time.monotonic() - t1
        time.sleep(2.5)  # two more polls: nothing more may be sent
        reqs = list(cf.requests)
        got = {r["name"] for r in cf.records(h.ZONE_SAJET)
               if r["type"] == "CNAME"}
        if not want <= got:
            failures.append(f"{len(want - got)} records still missing")
        total = len(reqs)
        posts = sum(1 for r in reqs if r["method"] == "POST")
        pages = sum(1 for r in reqs if r["method"] == "GET"
                    and "page=" in r["target"])
        lookups = sum(1 for r in reqs if r["method"] == "GET"
                      and "name=" in r["target"])
        refused = sum(1 for r in reqs if r["status"] == 429)
        peak = max_in_window(sorted(r["time"] for r in reqs), CF_WINDOW_S)
        busy = [n for _, n in POLL_RE.findall(d.log()) if int(n) > 0]
        print(f"{N} missing records reconciled in {took:.1f} s")
        print(f"  Cloudflare requests: {total} ({total / N:.3f} per missing "
              f"record): {posts} POST, {pages} list page(s), {lookups} "
              f"look-ups, {total - posts - pages - lookups} other; "
              f"{refused} refused (429)")
        print(f"  polls that called Cloudflare: {len(busy)} "
              f"({', '.join(busy)} requests)")
        print(f"  most requests in any {CF_WINDOW_S} s: {peak} "
              f"(Cloudflare allows {CF_LIMIT})")
        if refused:
            failures.append(f"{refused} requests refused")
        if peak > CF_LIMIT:
            failures.append(f"{peak} requests in {CF_WINDOW_S} s")
    finally:
        if d is not None and d.proc.poll() is None:
            d.stop()
        cf.stop()
        pg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
    for f in failures:
        print(f"  - {f}")
    print("cf_records: " + ("FAILED" if failures else "OK"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
