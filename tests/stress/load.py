#!/usr/bin/python3
"""Load test of odoo-local-api (`make stress`): mixed traffic for a while,
then figures and a verdict.

Starts its own PostgreSQL 15 cluster, template, fake Cloudflare and one
odoo-local-api (the classes of tests/integration/conftest.py), then for
LOAD_SECONDS (default 600; the short CI variant uses 20) runs at once:

  * wrk on GET /health and wrk on GET /api/tenants (with X-API-KEY),
  * a Python thread creating and deleting distinct tenants, with duplicate
    creates now and then (one after the other, and two at the same time),
  * a sampler reading VmRSS, Pss (/proc/PID/smaps_rollup) and the number
    of open fds every few seconds; after warm-up (a tenth of the run) it
    reports min, max, end and the least-squares slope of each.

It fails (exit 1) on any error other than the expected 409s: a non-2xx or
socket error from wrk, an unexpected status, a tenant that is not complete
(admin password not the one asked for, filestore missing), a leftover,
memory or fds growing past a bound, or a daemon that does not stop with
exit 0. It prints request counts, errors, wrk's p50/p99 latency, and memory
and fds at the start and the end.

Environment: LOAD_SECONDS, LOAD_CONNS (wrk connections per endpoint,
default 8), NODO_BUILD (default ./build), LOAD_RSS_BOUND_MB (default 64),
LOAD_FD_BOUND (default 32).
"""
import collections
import concurrent.futures
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))
import conftest as h  # noqa: E402
from passlib.hash import pbkdf2_sha512  # noqa: E402

SECONDS = int(os.environ.get("LOAD_SECONDS", "600"))
CONNS = int(os.environ.get("LOAD_CONNS", "8"))
RSS_BOUND_MB = float(os.environ.get("LOAD_RSS_BOUND_MB", "64"))
FD_BOUND = int(os.environ.get("LOAD_FD_BOUND", "32"))
SAMPLE_S = 5 if SECONDS >= 60 else 1
KEEP_ALIVE = 10  # tenants kept at once; older ones are deleted


def status_field(pid, field):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def pss_mb(pid):
    """Proportional set size: shared pages divided among their users."""
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def sample(pid):
    """(time, VmRSS MB, open fds, Pss MB)."""
    return (time.monotonic(), status_field(pid, "VmRSS") / 1024,
            len(os.listdir(f"/proc/{pid}/fd")), pss_mb(pid))


def slope_per_min(points):
    """Least-squares slope of (t, v) in units per minute; 0 if too few."""
    if len(points) < 3:
        return 0.0
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    den = sum((t - mt) ** 2 for t, _ in points)
    if den == 0:
        return 0.0
    return 60 * sum((t - mt) * (v - mv) for t, v in points) / den


def flat_report(samples, base):
    """After warm-up: min, max, end and slope of VmRSS, Pss and fds."""
    after = [x for x in samples if x[0] >= base[0]]
    lines = []
    for i, what, unit in ((1, "VmRSS", "MB"), (3, "Pss", "MB"),
                          (2, "open fds", "")):
        vals = [x[i] for x in after]
        sl = slope_per_min([(x[0], x[i]) for x in after])
        lines.append(f"  after warm-up {what}: min {min(vals):.1f}{unit}, "
                     f"max {max(vals):.1f}{unit}, end {vals[-1]:.1f}{unit},"
                     f" slope {sl:+.3f}{unit}/min over {len(vals)} samples")
    return "\n".join(lines)


def to_ms(value, unit):
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def parse_wrk(out):
    """Figures of `wrk --latency` output."""
    def num(pattern, default=0):
        m = re.search(pattern, out)
        return int(m.group(1)) if m else default

    lat = {p: to_ms(v, u) for p, v, u in
           re.findall(r"^\s+(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", out,
                      re.M)}
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write "
                     r"(\d+), timeout (\d+)", out)
    return {
        "requests": num(r"(\d+) requests in"),
        "non2xx": num(r"Non-2xx or 3xx responses: (\d+)"),
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50": lat.get("50"), "p99": lat.get("99"),
    }


class Churn:
    """Creates and deletes tenants; checks each one it makes."""

    def __init__(self, api, pg, data_dir, stop):
        self.api, self.pg, self.data_dir, self.stop = api, pg, data_dir, stop
        self.template_hash = admin_hash(pg, "tcs")
        self.alive = collections.OrderedDict()   # name -> password
        self.counts = collections.Counter()
        self.errors = []

    def bad(self, what):
        self.errors.append(what)
        print(f"load: ERROR {what}", flush=True)

    def complete(self, name, pw, full):
        try:
            hsh = admin_hash(self.pg, name)
        except Exception as e:  # noqa: BLE001
            return self.bad(f"{name}: cannot read its admin password: {e}")
        if hsh == self.template_hash:
            self.bad(f"{name}: has the template's admin password")
        elif full and not pbkdf2_sha512.verify(pw, hsh):
            self.bad(f"{name}: admin password does not verify")
        fs = Path(self.data_dir) / "filestore" / name
        for rel, content in h.FILESTORE_FILES.items():
            if not (fs / rel).is_file() or (fs / rel).read_bytes() != \
                    content:
                return self.bad(f"{name}: filestore incomplete ({rel})")

    def expect(self, r, status, what):
        self.counts[f"{what} {r.status_code}"] += 1
        if r.status_code != status:
            self.bad(f"{what}: {r.status_code} {r.text[:200]}")
            return False
        return True

    def run(self):
        rng = random.Random(1)
        i = 0
        while not self.stop.is_set():
            name, pw = f"load{i}", f"pw-{i}-{rng.random()}"
            if self.expect(self.api.create(name, pw), 201, "create"):
                self.alive[name] = pw
                self.complete(name, pw, full=i % 5 == 0)
            if i % 7 == 3:
                self.expect(self.api.create(name, "other"), 409,
                            "duplicate create")
            if i % 11 == 5:
                self.racing_duplicates(f"dup{i}")
            while len(self.alive) > KEEP_ALIVE:
                victim, _ = self.alive.popitem(last=False)
                r = self.api.delete("/api/tenant",
                                    params={"subdomain": victim})
                if self.expect(r, 200, "delete"):
                    if victim in self.pg.databases():
                        self.bad(f"{victim}: deleted but still there")
                    if (Path(self.data_dir) / "filestore" / victim).exists():
                        self.bad(f"{victim}: deleted, filestore left")
            i += 1

    def racing_duplicates(self, name):
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            rs = list(ex.map(lambda k: self.api.create(name, f"pw{k}"),
                             range(2)))
        codes = sorted(r.status_code for r in rs)
        self.counts[f"racing duplicate {codes}"] += 1
        if codes != [201, 409]:
            self.bad(f"two creates of {name} at once: {codes}")
        if 201 in codes:
            r = self.api.delete("/api/tenant", params={"subdomain": name})
            self.expect(r, 200, "delete")


def admin_hash(pg, db):
    c = pg.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute("SELECT password FROM res_users WHERE login = "
                        "'admin'")
            return cur.fetchone()[0]
    finally:
        c.close()


def wrk(url, lua, seconds, conns):
    return subprocess.Popen(
        ["wrk", "-t1", f"-c{conns}", f"-d{seconds}s", "--latency",
         "--timeout", "30s", "-s", lua, url],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def main():
    if not shutil.which("wrk"):
        sys.exit("load: wrk is not installed (apt-get install wrk)")
    if not (h.BUILD / "odoo-local-api").exists():
        sys.exit(f"load: {h.BUILD}/odoo-local-api not built (make, or set "
                 "NODO_BUILD)")
    pg = h.Postgres()
    cf = h.FakeCloudflare(token=h.CF_TOKEN,
                          zones={"sajet.us": h.ZONE_SAJET,
                                 "otro.dominio": h.ZONE_OTRO})
    tmp = Path(tempfile.mkdtemp(prefix="nodo-load-"))
    api, failures = None, []
    try:
        pg.init()
        data = tmp / "data"
        data.mkdir()
        h.make_template(pg, data)
        cf.start()
        (tmp / "domains.json").write_text(
            '{"zones": {"sajet.us": "%s", "otro.dominio": "%s"}, '
            '"tunnel_id": "%s"}' % (h.ZONE_SAJET, h.ZONE_OTRO, h.TUNNEL_ID))
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
               "LOG_LEVEL": os.environ.get("LOAD_LOG_LEVEL", "warning")}
        api = h.Daemon("odoo-local-api", tmp, env).start()
        pid = api.proc.pid
        lua = tmp / "key.lua"
        lua.write_text(f'wrk.headers["X-API-KEY"] = "{h.API_KEY}"\n')

        stop = threading.Event()
        samples = [sample(pid)]

        def sampler():
            while not stop.wait(SAMPLE_S):
                if api.proc.poll() is None:
                    samples.append(sample(pid))

        churn = Churn(api, pg, data, stop)
        threads = [threading.Thread(target=sampler),
                   threading.Thread(target=churn.run)]
        print(f"load: {SECONDS} s against {api.url} (wrk -c{CONNS} on "
              "/health and on /api/tenants, creates/deletes in a thread)",
              flush=True)
        t0 = time.monotonic()
        w_health = wrk(api.url + "/health", str(lua), SECONDS, CONNS)
        w_list = wrk(api.url + "/api/tenants", str(lua), SECONDS, CONNS)
        for t in threads:
            t.start()
        out_health, _ = w_health.communicate(timeout=SECONDS + 120)
        out_list, _ = w_list.communicate(timeout=SECONDS + 120)
        stop.set()
        for t in threads:
            t.join(120)
            if t.is_alive():
                failures.append("a load thread hung")
        elapsed = time.monotonic() - t0
        if api.proc.poll() is not None:
            failures.append(f"the daemon died: {api.log()[-2000:]}")
        samples.append(sample(pid))

        # Everything still there is complete; nothing internal is left.
        for name, pw in churn.alive.items():
            churn.complete(name, pw, full=True)
        tenants = sorted(t["subdomain"] for t in
                         api.get("/api/tenants").json()["tenants"])
        if tenants != sorted(churn.alive):
            failures.append(f"listed {tenants}, expected "
                            f"{sorted(churn.alive)}")
        # Internal databases: a deleted tenant's trash entry (CONTRACT 9)
        # and the spares (CONTRACT 11) are expected, anything else is
        # debris; every internal folder belongs to one of those.
        internal = dict(pg.su_exec(
            "SELECT datname, coalesce(shobj_description(oid, "
            "'pg_database'), '') FROM pg_database "
            "WHERE left(datname, 6) = '_nodo_'"))
        kept = {d for d, com in internal.items()
                if com.startswith(("nodo:op=trash;", "nodo:op=spare;"))}
        trash = [d for d in kept if internal[d].startswith("nodo:op=trash;")]
        left = sorted(set(internal) - kept) + \
            [f.name for f in (data / "filestore").iterdir()
             if f.name.startswith("_nodo_") and f.name not in kept]
        if left:
            failures.append(f"leftovers {left}")
        if len(trash) != churn.counts["delete 200"]:
            failures.append(f"{len(trash)} trash entries after "
                            f"{churn.counts['delete 200']} deletes")
        recs = collections.Counter(r["name"] for r in cf.records())
        if recs != collections.Counter(f"{n}.sajet.us" for n in churn.alive):
            failures.append(f"DNS records {dict(recs)} do not match the "
                            "tenants")
        failures += churn.errors

        fh, fl = parse_wrk(out_health), parse_wrk(out_list)
        for what, f, out in (("/health", fh, out_health),
                             ("/api/tenants", fl, out_list)):
            if f["non2xx"] or f["socket_errors"]:
                failures.append(f"wrk {what}: {f['non2xx']} non-2xx, "
                                f"{f['socket_errors']} socket errors\n{out}")
        # Memory and fds: the first sample after a tenth of the run (pools
        # and caches warm) against the end.
        warm = [s for s in samples if s[0] - samples[0][0] >= SECONDS / 10]
        base = warm[0] if warm else samples[0]
        end = samples[-1]
        max_rss = max(s[1] for s in samples)
        max_fds = max(s[2] for s in samples)
        if end[1] - base[1] > RSS_BOUND_MB:
            failures.append(f"RSS grew {end[1] - base[1]:.1f} MB "
                            f"(bound {RSS_BOUND_MB} MB)")
        if end[2] - base[2] > FD_BOUND:
            failures.append(f"fds grew {end[2] - base[2]} (bound "
                            f"{FD_BOUND})")

        print(f"load: ran {elapsed:.0f} s")
        for what, f in (("GET /health", fh), ("GET /api/tenants", fl)):
            print(f"  {what}: {f['requests']} requests ({f['rps']:.0f}/s),"
                  f" non-2xx {f['non2xx']}, socket errors "
                  f"{f['socket_errors']}, p50 {f['p50']:.2f} ms, p99 "
                  f"{f['p99']:.2f} ms")
        c = churn.counts
        expected = ("create 201", "duplicate create 409", "delete 200",
                    "racing duplicate [201, 409]")
        print(f"  creates 201: {c[expected[0]]}, duplicate creates 409: "
              f"{c[expected[1]]}, racing duplicate pairs [201, 409]: "
              f"{c[expected[3]]}, deletes 200: {c[expected[2]]}, other "
              f"answers: {sum(c.values()) - sum(c[k] for k in expected)}")
        print(f"  memory VmRSS: start {samples[0][1]:.1f} MB, after warm-up "
              f"{base[1]:.1f} MB, max {max_rss:.1f} MB, end {end[1]:.1f} MB")
        print(f"  open fds: start {samples[0][2]}, after warm-up {base[2]}, "
              f"max {max_fds}, end {end[2]}")
        print(f"  memory Pss: start {samples[0][3]:.1f} MB, after warm-up "
              f"{base[3]:.1f} MB, max {max(x[3] for x in samples):.1f} MB,"
              f" end {end[3]:.1f} MB")
        print(flat_report(samples, base))
        print(f"  samples: {len(samples)} every {SAMPLE_S} s")
    except Exception as e:  # noqa: BLE001 - reported as a failure
        failures.append(f"load: {type(e).__name__}: {e}")
    finally:
        if api is not None:
            rc = api.stop()
            if rc != 0:
                failures.append(f"the daemon exited {rc} on SIGTERM")
            if h.sanitizer_report(api.log()):
                failures.append("sanitizer report:\n" + api.log()[-4000:])
        cf.stop()
        pg.destroy()
        if os.environ.get("LOAD_KEEP_LOG") and api is not None:
            shutil.copy(api.log_path, os.environ["LOAD_KEEP_LOG"])
        shutil.rmtree(tmp, ignore_errors=True)
    if failures:
        print(f"load: FAILED ({len(failures)} problem(s))")
        for f in failures[:20]:
            print(f"  - {f}")
        return 1
    print("load: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
