#!/usr/bin/python3
"""Load test of odoo-local-api (`make stress`): mixed traffic for a while,
then figures and a verdict.

Starts its own PostgreSQL 15 cluster, template, fake Cloudflare and one
odoo-local-api (the classes of tests/integration/conftest.py, spares as by
default), makes a tenant and one small backup zip of it, then for
LOAD_SECONDS (default 600; the short CI variant uses 20) runs at once:

  * wrk on GET /health and wrk on GET /api/tenants (with X-API-KEY),
  * a Python thread (Churn) creating tenants and deleting them to the
    trash, with, in turn: restores from the trash (under the old name or a
    new one), purges, restores of the backup zip (mode copy and move),
    backups, duplicate creates (one after the other and two at once), a
    restore under a taken name (409) and of a purged entry (404),
  * a Python thread (Observer) on GET /api/node, /metrics and /api/trash,
  * a sampler reading, every second, the API's VmRSS and RssAnon
    (/proc/PID/status), Pss (/proc/PID/smaps_rollup) and its open fds
    (/proc/PID/fd; sockets sorted by /proc/PID/net/tcp into HTTP clients,
    PostgreSQL, Cloudflare and the rest).

The run has two phases: a warm-up (a fifth of it, at most 60 s), a pause
until every request has finished and every client connection is closed
(the "rest" sample after warm-up), then the rest of the run, and again a
pause (the "rest" sample at the end). Both rest samples see the same thing
(no request in flight, no client connection), so they compare exactly.

The bookkeeping is exact: every tenant, trash entry and spare at the end is
one the load expects (listed, in the trash, in PostgreSQL and on disk, with
its DNS record); anything else is debris and fails the run.

It fails (exit 1) on any error: a non-2xx or socket error from wrk, an
unexpected status, a tenant that is not complete (admin password not the
one asked for, filestore missing), a leftover, memory grown more than
LOAD_RSS_BOUND_MB (VmRSS, RssAnon or Pss) or fds more than LOAD_FD_BOUND
from the rest sample after warm-up to the one at the end, or a daemon that
does not stop with exit 0 (or leaves a sanitizer report). It prints request
counts, status counts and p50/p99 per route, and memory and fds at the
start, after warm-up, at their max and at the end.

Environment: LOAD_SECONDS, LOAD_CONNS (wrk connections per endpoint,
default 8), NODO_BUILD (default ./build), LOAD_RSS_BOUND_MB (default 8),
LOAD_FD_BOUND (default 4), LOAD_SPARES (SPARE_TENANTS, default 1),
LOAD_LOG_LEVEL, LOAD_KEEP_LOG (copy the daemon's log there).
"""
import collections
import concurrent.futures
import io
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))
import conftest as h  # noqa: E402
from passlib.hash import pbkdf2_sha512  # noqa: E402

SECONDS = int(os.environ.get("LOAD_SECONDS", "600"))
CONNS = int(os.environ.get("LOAD_CONNS", "8"))
WARM_S = max(1, min(SECONDS // 5, 60))
# Growth allowed from the rest sample after warm-up to the one at the end.
# Memory: the API's heap is glibc malloc, two arenas shared by all its
# threads (M_ARENA_MAX, src/api/main.c); a freed block inside an arena is
# kept for reuse, not given back, so an arena's resident size follows the
# largest working sets it has served at once so far (a backup's 1 MiB ring
# and zip writer, a restore's archive reader, libpq's input buffer after
# the largest answer; glibc's mmap threshold rises to the largest block
# freed, so such blocks end up in an arena too), and that high-water mark
# is reached only over minutes of a mixed load: heaptrack finds no live
# growth, yet RSS climbs a few MiB at most and levels off. 8 MiB is above
# that (measured: under 2 MiB in 10 minutes, docs/DESIGN.md "Hot paths at
# their floor") and below what any leak on a hot path leaves: 1 byte per
# /health or list request (millions in a run) or 30 KiB per tenant
# operation (hundreds) is more. Smaller leaks per operation are the ASan
# build's leak report's to find (NODO_BUILD=build-san), not this bound's.
RSS_BOUND_MB = float(os.environ.get("LOAD_RSS_BOUND_MB", "8"))
# Fds: at both rest samples no request is in flight and no client is
# connected, so every fd but PostgreSQL's connections must be back where it
# was, give or take a spare being made or libcurl's kept connection: a few.
# PostgreSQL's connections are a cache: the pool parks up to
# PG_POOL_MAX_IDLE of them for PG_POOL_IDLE_S (include/nodo/pg.h), as many
# as were in use at once in that time; they may grow up to that bound.
FD_BOUND = int(os.environ.get("LOAD_FD_BOUND", "4"))
PG_POOL_MAX_IDLE = int(re.search(
    r"#define PG_POOL_MAX_IDLE\s+(\d+)",
    (ROOT / "include" / "nodo" / "pg.h").read_text()).group(1))
SPARES = int(os.environ.get("LOAD_SPARES", "1"))
SAMPLE_S = 1
KEEP_ALIVE = 6   # tenants kept at once; older ones are deleted to the trash
KEEP_TRASH = 8   # trash entries kept at once; older ones are purged
HEX16 = re.compile(r"^[0-9a-f]{16}$")


def status_kb(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "RssAnon"):
            out[k] = int(v.split()[0])
    return out


def pss_kb(pid):
    """Proportional set size: shared pages divided among their users."""
    for line in open(f"/proc/{pid}/smaps_rollup"):
        if line.startswith("Pss:"):
            return int(line.split()[1])
    return 0


def tcp_sockets(pid):
    """inode -> (local port, remote port, state) of the TCP sockets of the
    process's network namespace."""
    out = {}
    for f in ("tcp", "tcp6"):
        try:
            lines = open(f"/proc/{pid}/net/{f}").read().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            x = line.split()
            out[x[9]] = (int(x[1].rsplit(":", 1)[1], 16),
                         int(x[2].rsplit(":", 1)[1], 16), x[3])
    return out


class Sample:
    """One look at a process: memory in MiB, fds by kind."""

    def __init__(self, pid, ports):
        self.t = time.monotonic()
        st = status_kb(pid)
        self.rss = st.get("VmRSS", 0) / 1024
        self.anon = st.get("RssAnon", 0) / 1024
        self.pss = pss_kb(pid) / 1024
        tcp = tcp_sockets(pid)
        kinds = collections.Counter()
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue   # closed since the listing
            kinds[self.kind(link, tcp, ports)] += 1
        self.kinds = kinds
        self.fds = sum(kinds.values())

    @staticmethod
    def kind(link, tcp, ports):
        m = re.match(r"socket:\[(\d+)\]$", link)
        if not m or m.group(1) not in tcp:
            return "other"
        local, remote, state = tcp[m.group(1)]
        if local == ports["api"] and state != "0A":   # 0A: LISTEN
            return "http"
        if remote == ports["pg"]:
            return "pg"
        if remote == ports["cf"]:
            return "cf"
        return "other"

    def fd_text(self):
        k = self.kinds
        return (f"{self.fds} (http {k['http']}, pg {k['pg']}, cf "
                f"{k['cf']}, other {k['other']})")


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
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {
        "requests": num(r"(\d+) requests in"),
        "non2xx": num(r"Non-2xx or 3xx responses: (\d+)"),
        "socket_errors": sum(int(x) for x in sock.groups()) if sock else 0,
        "rps": float(rps.group(1)) if rps else 0.0,
        "p50": lat.get("50", 0.0), "p99": lat.get("99", 0.0),
    }


def percentile(values, p):
    if not values:
        return 0.0
    v = sorted(values)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


class Recorder:
    """Status counts and latencies per route of the Python clients."""

    def __init__(self, api):
        self.api = api
        self.lock = threading.Lock()
        self.status = collections.defaultdict(collections.Counter)
        self.ms = collections.defaultdict(list)

    def call(self, route, method, path, **kw):
        t = time.monotonic()
        r = self.api.request(method, path, **kw)
        ms = (time.monotonic() - t) * 1000
        with self.lock:
            self.status[route][r.status_code] += 1
            self.ms[route].append(ms)
        return r

    def lines(self):
        out = []
        for route in sorted(self.status):
            st = " ".join(f"{k}:{v}" for k, v in
                          sorted(self.status[route].items()))
            ms = self.ms[route]
            out.append(f"  {route}: {len(ms)} requests [{st}], p50 "
                       f"{percentile(ms, 50):.1f} ms, p99 "
                       f"{percentile(ms, 99):.1f} ms")
        return out


class Pausable:
    """A load thread that stops between two operations when asked."""

    def __init__(self, stop):
        self.stop = stop
        self.pause = threading.Event()
        self.paused = threading.Event()
        self.errors = []

    def bad(self, what):
        self.errors.append(what)
        print(f"load: ERROR {what}", flush=True)

    def checkpoint(self):
        if self.pause.is_set():
            self.paused.set()
            while self.pause.is_set() and not self.stop.is_set():
                time.sleep(0.05)
            self.paused.clear()

    def run(self):
        try:
            while not self.stop.is_set():
                self.checkpoint()
                if not self.stop.is_set():
                    self.step()
        except Exception as e:  # noqa: BLE001 - reported as a failure
            self.bad(f"{type(self).__name__}: {type(e).__name__}: {e}")
        finally:
            self.paused.set()


class Observer(Pausable):
    """GET /api/node, /metrics and /api/trash now and then."""

    def __init__(self, rec, stop):
        super().__init__(stop)
        self.rec, self.n = rec, 0

    def step(self):
        route = ("GET /api/node", "GET /metrics", "GET /api/trash")[
            self.n % 3]
        self.n += 1
        r = self.rec.call(route, "GET", route.split()[1])
        if r.status_code != 200:
            self.bad(f"{route}: {r.status_code} {r.text[:200]}")
        elif route == "GET /metrics" and "nodo_trash_tenants" not in r.text:
            self.bad("GET /metrics: no nodo_trash_tenants")
        elif route != "GET /metrics" and not isinstance(r.json(), dict):
            self.bad(f"{route}: not an object")
        self.stop.wait(0.5)


class Churn(Pausable):
    """Creates, deletes to the trash, restores, purges, backups; checks
    each answer and keeps the expected state: alive (name -> admin
    password) and trash (id -> (name, password)), oldest first."""

    EXTRAS = ("trash_restore", "backup_restore", "purge", "backup",
              "trash_restore_renamed", "duplicate", "restore_taken",
              "backup_restore_move", "racing", "restore_purged")

    def __init__(self, api, rec, pg, data_dir, stop, zipped, zip_pw):
        super().__init__(stop)
        self.api, self.rec, self.pg = api, rec, pg
        self.data_dir = Path(data_dir)
        self.template_hash = admin_hash(pg, "tcs")
        self.alive = collections.OrderedDict()
        self.trash = collections.OrderedDict()
        self.purged = []
        self.zipped, self.zip_pw = zipped, zip_pw
        self.rng = random.Random(1)
        self.i = 0
        self.done = collections.Counter()

    def complete(self, name, pw, full):
        try:
            hsh = admin_hash(self.pg, name)
        except Exception as e:  # noqa: BLE001
            return self.bad(f"{name}: cannot read its admin password: {e}")
        if hsh == self.template_hash:
            self.bad(f"{name}: has the template's admin password")
        elif full and not pbkdf2_sha512.verify(pw, hsh):
            self.bad(f"{name}: admin password does not verify")
        fs = self.data_dir / "filestore" / name
        for rel, content in h.FILESTORE_FILES.items():
            if not (fs / rel).is_file() or (fs / rel).read_bytes() != \
                    content:
                return self.bad(f"{name}: filestore incomplete ({rel})")

    def expect(self, r, status, what, code=None):
        if r.status_code != status or (
                code and r.json().get("code") != code):
            self.bad(f"{what}: {r.status_code} {r.text[:200]}")
            return False
        self.done[what] += 1
        return True

    # -- operations --------------------------------------------------------

    def create(self, name, pw):
        r = self.rec.call("POST /api/tenant", "POST", "/api/tenant",
                          json={"subdomain": name, "admin_password": pw})
        if self.expect(r, 201, "create"):
            self.alive[name] = pw
            self.complete(name, pw, full=self.i % 5 == 0)
            return True
        return False

    def delete(self, name):
        pw = self.alive.pop(name)
        r = self.rec.call("DELETE /api/tenant", "DELETE", "/api/tenant",
                          params={"subdomain": name})
        if not self.expect(r, 200, "delete"):
            return
        b = r.json()
        tid = (b.get("trash") or {}).get("id", "")
        if b.get("purged") is not False or not HEX16.match(tid):
            return self.bad(f"delete {name}: not to the trash: {b}")
        self.trash[tid] = (name, pw)
        if name in self.pg.databases():
            self.bad(f"{name}: deleted but still there")
        if (self.data_dir / "filestore" / name).exists():
            self.bad(f"{name}: deleted, filestore left")
        if not (self.data_dir / "filestore" / f"_nodo_t{tid}").is_dir():
            self.bad(f"{name}: its filestore is not in the trash")

    def purge(self, tid):
        self.trash.pop(tid)
        r = self.rec.call("DELETE /api/trash/{id}", "DELETE",
                          f"/api/trash/{tid}")
        if self.expect(r, 200, "purge"):
            if r.json() != {"id": tid, "purged": True}:
                self.bad(f"purge {tid}: {r.text[:200]}")
            self.purged.append(tid)
            if f"_nodo_t{tid}" in self.pg.databases() or \
                    (self.data_dir / "filestore" / f"_nodo_t{tid}").exists():
                self.bad(f"purge {tid}: its database or folder is left")

    def trash_restore(self, renamed=False):
        if not self.trash:
            return self.done.update(["trash restore (trash empty)"])
        tid = self.rng.choice(list(self.trash))
        name, pw = self.trash[tid]
        body = None
        if renamed or name in self.alive:
            name = f"rs{self.i}"
            body = {"subdomain": name}
        r = self.rec.call("POST /api/trash/{id}/restore", "POST",
                          f"/api/trash/{tid}/restore", json=body)
        if self.expect(r, 201, "trash restore renamed" if body else
                       "trash restore"):
            b = r.json()
            if b.get("restored_from_trash") != tid or \
                    b.get("subdomain") != name:
                self.bad(f"trash restore {tid}: {r.text[:200]}")
            del self.trash[tid]
            self.alive[name] = pw
            self.complete(name, pw, full=True)

    def restore_taken(self):
        """A restore under a name that exists: 409, nothing changes."""
        if not self.trash or not self.alive:
            return self.done.update(["restore taken (nothing to try)"])
        tid = next(iter(self.trash))
        taken = next(reversed(self.alive))
        r = self.rec.call("POST /api/trash/{id}/restore", "POST",
                          f"/api/trash/{tid}/restore",
                          json={"subdomain": taken})
        self.expect(r, 409, "trash restore taken name", "tenant_exists")
        if f"_nodo_t{tid}" not in self.pg.databases():
            self.bad(f"a refused restore of {tid} removed its database")

    def restore_purged(self):
        if not self.purged:
            return self.done.update(["restore purged (none purged)"])
        tid = self.rng.choice(self.purged)
        r = self.rec.call("POST /api/trash/{id}/restore", "POST",
                          f"/api/trash/{tid}/restore")
        self.expect(r, 404, "trash restore purged", "trash_not_found")

    def backup_restore(self, mode):
        name = f"br{self.i}"
        r = self.rec.call("POST /api/tenant/restore", "POST",
                          "/api/tenant/restore", data=self.zipped,
                          params={"subdomain": name, "mode": mode},
                          headers={"Content-Type": "application/zip"})
        if self.expect(r, 201, f"backup restore {mode}"):
            b = r.json()
            if b.get("mode") != mode or b.get("subdomain") != name:
                self.bad(f"backup restore {name}: {r.text[:200]}")
            self.alive[name] = self.zip_pw
            self.complete(name, self.zip_pw, full=True)

    def backup(self):
        name = self.rng.choice(list(self.alive))
        r = self.rec.call("GET /api/tenants/{name}/backup", "GET",
                          f"/api/tenants/{name}/backup")
        if self.expect(r, 200, "backup"):
            problem = zip_problem(r.content)
            if problem:
                self.bad(f"backup of {name}: {problem}")

    def duplicate(self, name):
        r = self.rec.call("POST /api/tenant", "POST", "/api/tenant",
                          json={"subdomain": name,
                                "admin_password": "other"})
        self.expect(r, 409, "duplicate create", "tenant_exists")

    def racing(self, name):
        def one(k):
            return self.rec.call("POST /api/tenant", "POST", "/api/tenant",
                                 json={"subdomain": name,
                                       "admin_password": f"pw{k}"})
        with concurrent.futures.ThreadPoolExecutor(2) as ex:
            rs = list(ex.map(one, range(2)))
        codes = sorted(r.status_code for r in rs)
        if codes != [201, 409]:
            return self.bad(f"two creates of {name} at once: {codes}")
        self.done["racing duplicate pair"] += 1
        self.alive[name] = f"pw{[r.status_code for r in rs].index(201)}"
        self.complete(name, self.alive[name], full=True)

    def step(self):
        i = self.i
        name = f"load{i}"
        if self.create(name, f"pw-{i}-{self.rng.random()}"):
            pass
        for k in (2 * i, 2 * i + 1):
            op = self.EXTRAS[k % len(self.EXTRAS)]
            if op == "trash_restore":
                self.trash_restore()
            elif op == "trash_restore_renamed":
                self.trash_restore(renamed=True)
            elif op == "backup_restore":
                self.backup_restore("copy")
            elif op == "backup_restore_move":
                self.backup_restore("move")
            elif op == "purge" and self.trash:
                self.purge(self.rng.choice(list(self.trash)))
            elif op == "backup":
                self.backup()
            elif op == "duplicate" and name in self.alive:
                self.duplicate(name)
            elif op == "restore_taken":
                self.restore_taken()
            elif op == "racing":
                self.racing(f"dup{i}")
            elif op == "restore_purged":
                self.restore_purged()
        while len(self.alive) > KEEP_ALIVE:
            self.delete(next(iter(self.alive)))
        while len(self.trash) > KEEP_TRASH:
            self.purge(next(iter(self.trash)))
        self.i += 1


def zip_problem(data):
    """Why data is not a whole backup zip (None if it is)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = z.namelist()
            if "dump.sql" not in names or "manifest.json" not in names:
                return f"members {names}"
            if z.testzip() is not None:
                return "a member's CRC does not match"
    except zipfile.BadZipFile as e:
        return f"not a zip: {e}"
    return None


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


def wait_rest(pid, ports, threads, failures, what):
    """Every load thread stopped between two operations, no HTTP client
    connected: the rest sample (the last of a few, a second apart, once
    two in a row agree on the fds)."""
    deadline = time.monotonic() + 300
    for t in threads:
        t.pause.set()
    for t in threads:
        if not t.paused.wait(max(0, deadline - time.monotonic())):
            failures.append(f"{what}: a load thread did not pause")
    prev = None
    while time.monotonic() < deadline:
        s = Sample(pid, ports)
        if s.kinds["http"] == 0 and prev is not None and \
                prev.fds == s.fds:
            return s
        prev = s
        time.sleep(1)
    failures.append(f"{what}: clients still connected: {s.fd_text()}")
    return s


def mem_line(what, key, samples, warm, end):
    vals = [getattr(x, key) for x in samples]
    after = [x for x in samples if x.t >= warm.t]
    sl = slope_per_min([(x.t, getattr(x, key)) for x in after])
    return (f"  {what}: start {vals[0]:.1f} MiB, after warm-up "
            f"{getattr(warm, key):.1f}, max {max(vals):.1f}, end "
            f"{getattr(end, key):.1f} (growth "
            f"{getattr(end, key) - getattr(warm, key):+.2f} MiB; slope "
            f"after warm-up {sl:+.3f} MiB/min)")


def trend(samples, key, step):
    """The value every step seconds from the start: the shape of a
    growth (a leak climbs steadily, an arena filling levels off)."""
    out, nxt = [], samples[0].t
    for x in samples:
        if x.t >= nxt:
            out.append(f"{getattr(x, key):.1f}")
            nxt += step
    return " ".join(out)


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
    stop = threading.Event()
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
               "SPARE_TENANTS": str(SPARES),
               "LOG_LEVEL": os.environ.get("LOAD_LOG_LEVEL", "warning")}
        api = h.Daemon("odoo-local-api", tmp, env).start()
        pid = api.proc.pid
        ports = {"api": api.port, "pg": pg.port,
                 "cf": cf.port}
        lua = tmp / "key.lua"
        lua.write_text(f'wrk.headers["X-API-KEY"] = "{h.API_KEY}"\n')

        samples = [Sample(pid, ports)]
        rec = Recorder(api)
        # The backup restored again and again: one of a fresh tenant.
        zip_pw = "pw-backup-source"
        r = api.create("seed", zip_pw)
        if r.status_code != 201:
            raise RuntimeError(f"create seed: {r.status_code} {r.text}")
        r = rec.call("GET /api/tenants/{name}/backup", "GET",
                     "/api/tenants/seed/backup")
        if r.status_code != 200 or zip_problem(r.content):
            raise RuntimeError(f"backup of seed: {r.status_code} "
                               f"{zip_problem(r.content)}")
        churn = Churn(api, rec, pg, data, stop, r.content, zip_pw)
        churn.alive["seed"] = zip_pw
        # Two entries in the trash from the start, so that even a short run
        # restores and purges.
        for k in range(2):
            if not churn.create(f"seedt{k}", f"pw-seedt{k}"):
                raise RuntimeError(f"create seedt{k}: {churn.errors}")
            churn.delete(f"seedt{k}")
        observer = Observer(rec, stop)

        def sampler():
            while not stop.wait(SAMPLE_S):
                try:
                    samples.append(Sample(pid, ports))
                except OSError:   # the daemon died: reported below
                    return

        # Daemon threads, and stop set on every way out (finally): a
        # failure part-way must end the run, not leave a thread looping.
        threads = [threading.Thread(target=f, daemon=True)
                   for f in (sampler, churn.run, observer.run)]
        print(f"load: {SECONDS} s against {api.url} (wrk -c{CONNS} on "
              "/health and on /api/tenants; creates, deletes to the trash, "
              "restores, purges, backups in a thread; /api/node, /metrics, "
              f"/api/trash in another; warm-up {WARM_S} s; backup zip "
              f"{len(churn.zipped)} bytes)", flush=True)
        t0 = time.monotonic()
        for t in threads:
            t.start()
        outs = {}
        for phase, secs in (("warm-up", WARM_S), ("load", SECONDS - WARM_S)):
            if phase == "load":
                for t in (churn, observer):
                    t.pause.clear()
            w = {"/health": wrk(api.url + "/health", str(lua), secs, CONNS),
                 "/api/tenants": wrk(api.url + "/api/tenants", str(lua),
                                     secs, CONNS)}
            for what, p in w.items():
                outs[phase, what] = p.communicate(timeout=secs + 120)[0]
            if phase == "warm-up":
                warm = wait_rest(pid, ports, (churn, observer), failures,
                                 "after warm-up")
                samples.append(warm)
        elapsed = time.monotonic() - t0
        end = wait_rest(pid, ports, (churn, observer), failures, "at the end")
        stop.set()
        for t in threads:
            t.join(300)
            if t.is_alive():
                failures.append("a load thread hung")
        if api.proc.poll() is not None:
            failures.append(f"the daemon died: {api.log()[-2000:]}")
        samples.append(end)
        failures += check_state(api, pg, cf, data, churn)
        failures += churn.errors + observer.errors

        wrk_lines = []
        for (phase, what), out in sorted(outs.items()):
            f = parse_wrk(out)
            if f["non2xx"] or f["socket_errors"] or not f["requests"]:
                failures.append(f"wrk {what} ({phase}): {f['non2xx']} "
                                f"non-2xx, {f['socket_errors']} socket "
                                f"errors\n{out}")
            wrk_lines.append(
                f"  GET {what} ({phase}, wrk): {f['requests']} requests "
                f"({f['rps']:.0f}/s), non-2xx {f['non2xx']}, socket errors "
                f"{f['socket_errors']}, p50 {f['p50']:.2f} ms, p99 "
                f"{f['p99']:.2f} ms")
        # Growth: rest sample after warm-up against the rest sample at the
        # end (see RSS_BOUND_MB and FD_BOUND).
        for what, key in (("VmRSS", "rss"), ("RssAnon", "anon"),
                          ("Pss", "pss")):
            grew = getattr(end, key) - getattr(warm, key)
            if grew > RSS_BOUND_MB:
                failures.append(f"{what} grew {grew:.1f} MiB after warm-up "
                                f"(bound {RSS_BOUND_MB} MiB)")
        own = end.fds - end.kinds["pg"] - (warm.fds - warm.kinds["pg"])
        if own > FD_BOUND:
            failures.append(f"open fds but PostgreSQL's grew {own:+d} from "
                            f"{warm.fd_text()} to {end.fd_text()} (bound "
                            f"+{FD_BOUND})")
        if end.kinds["pg"] - warm.kinds["pg"] > FD_BOUND and \
                end.kinds["pg"] > samples[0].kinds["pg"] + PG_POOL_MAX_IDLE:
            failures.append(f"PostgreSQL connections grew past the pool's "
                            f"bound ({PG_POOL_MAX_IDLE} idle): "
                            f"{warm.fd_text()} to {end.fd_text()}")

        la = open("/proc/loadavg").read().split()[:3]
        print(f"load: ran {elapsed:.0f} s (warm-up {WARM_S} s), load "
              f"average at the end {' '.join(la)}, {os.cpu_count()} cpus")
        print("\n".join(wrk_lines))
        print("\n".join(rec.lines()))
        print("  operations: " + ", ".join(
            f"{k} {v}" for k, v in sorted(churn.done.items())))
        print(f"  at the end: {len(churn.alive)} tenants, "
              f"{len(churn.trash)} in the trash, {len(churn.purged)} purged")
        for what, key in (("VmRSS", "rss"), ("RssAnon", "anon"),
                          ("Pss", "pss")):
            print(mem_line(what, key, samples, warm, end))
        step = 60 if SECONDS >= 300 else 5
        for what, key in (("RssAnon", "anon"), ("Pss", "pss"),
                          ("open fds", "fds")):
            print(f"  {what} every {step} s: {trend(samples, key, step)}")
        print(f"  open fds: start {samples[0].fd_text()}, after warm-up "
              f"{warm.fd_text()}, max {max(x.fds for x in samples)}, end "
              f"{end.fd_text()}")
        print(f"  samples: {len(samples)} every {SAMPLE_S} s")
    except Exception as e:  # noqa: BLE001 - reported as a failure
        failures.append(f"load: {type(e).__name__}: {e}")
    finally:
        stop.set()
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


def check_state(api, pg, cf, data, churn):
    """The end state is exactly the expected one: every tenant complete and
    listed with its DNS record, every trash entry listed, in PostgreSQL and
    on disk, at most SPARES spares, and nothing else internal."""
    failures = []
    for name, pw in churn.alive.items():
        churn.complete(name, pw, full=True)
    tenants = sorted(t["subdomain"] for t in
                     api.get("/api/tenants").json()["tenants"])
    if tenants != sorted(churn.alive):
        failures.append(f"listed {tenants}, expected {sorted(churn.alive)}")
    listed = {e["id"]: e["subdomain"] for e in
              api.get("/api/trash").json()["trash"]}
    expected = {tid: name for tid, (name, _) in churn.trash.items()}
    if listed != expected:
        failures.append(f"trash lists {listed}, expected {expected}")
    internal = dict(pg.su_exec(
        "SELECT datname, coalesce(shobj_description(oid, "
        "'pg_database'), '') FROM pg_database "
        "WHERE left(datname, 6) = '_nodo_'"))
    trash = {d for d, com in internal.items()
             if com.startswith("nodo:op=trash;")}
    spares = {d for d, com in internal.items()
              if com.startswith("nodo:op=spare;")}
    if trash != {f"_nodo_t{tid}" for tid in churn.trash}:
        failures.append(f"trash databases {sorted(trash)}, expected "
                        f"{sorted(churn.trash)}")
    if len(spares) > SPARES:
        failures.append(f"{len(spares)} spares (SPARE_TENANTS={SPARES})")
    folders = {f.name for f in (data / "filestore").iterdir()
               if f.name.startswith("_nodo_")}
    left = sorted(set(internal) - trash - spares) + \
        sorted(folders - trash - spares) + \
        sorted(f.name for f in data.iterdir()
               if f.name.startswith(".nodo-restore"))
    if left:
        failures.append(f"leftovers {left}")
    if trash - folders:
        failures.append(f"trash entries without a folder "
                        f"{sorted(trash - folders)}")
    node = api.get("/api/node").json()
    if (node.get("tenants"), node.get("trash")) != \
            (len(churn.alive), len(churn.trash)) or \
            node.get("spares", 0) > SPARES:
        failures.append(f"/api/node says {node.get('tenants')} tenants, "
                        f"{node.get('trash')} in the trash, "
                        f"{node.get('spares')} spares")
    recs = collections.Counter(r["name"] for r in cf.records())
    if recs != collections.Counter(f"{n}.sajet.us" for n in churn.alive):
        failures.append(f"DNS records {dict(recs)} do not match the "
                        "tenants")
    return failures


if __name__ == "__main__":
    sys.exit(main())
