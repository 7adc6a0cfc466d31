"""A PostgreSQL that hangs does not hang the node (issue 8, item 7).

A stopped server process is the hard case: its kernel still acknowledges
every byte, so TCP keepalives and tcp_user_timeout see nothing, and the
server's own statement_timeout cannot fire. The test stops (SIGSTOP) the
backends serving the node's role and the postmaster, so that neither the
pooled connections nor a new one can get an answer, and checks that the
daemons answer, log and retry within their client-side deadlines
(include/nodo/pg.h), then recover after SIGCONT. The times measured are
printed as figures; the pass condition is an answer at all (a request
timeout far above the deadlines), never a timing.
"""
import os
import re
import signal
import time
from pathlib import Path

import requests

from conftest import NODE_ROLE, TUNNEL_ID, ZONE_SAJET, wait_for

PING_TIMEOUT_S = 2      # PG_PING_TIMEOUT_MS
PING_FRESH_S = 1        # PG_PING_FRESH_MS: a reply this recent is a ping
PROBE_INTERVAL_S = 2    # PROBE_INTERVAL_MS of src/api/probe.h
CACHE_FRESH_S = 1       # TENANT_CACHE_FRESH_MS of include/nodo/tenant_cache.h
REPLY_TIMEOUT_S = 15    # PG_REPLY_TIMEOUT_MS
CONNECT_TIMEOUT_S = 5   # PG_CONNECT_TIMEOUT
# An answer later than this is a hang, whatever the load.
HANG_S = 60
TARGET = f"{TUNNEL_ID}.cfargotunnel.com"


def node_backends(pg):
    return [r[0] for r in pg.su_exec(
        "SELECT pid FROM pg_stat_activity WHERE usename = %s"
        " AND backend_type = 'client backend'", args=(NODE_ROLE,))]


def postmaster_pid(pg):
    return int((pg.data / "postmaster.pid").read_text().split()[0])


def node_children(postmaster):
    """The postmaster's children serving the node's role, from /proc: a
    backend forked a moment ago (a daemon thread just connecting) is in
    it too, which pg_stat_activity may not show yet."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmd = (d / "cmdline").read_bytes().decode(errors="replace")
        except (OSError, IndexError, ValueError):
            continue
        if ppid == postmaster and f"postgres: {NODE_ROLE} " in cmd:
            pids.append(int(d.name))
    return pids


class Frozen:
    """SIGSTOP the postmaster (no new backend), then every backend of the
    node's role; SIGCONT on exit."""

    def __init__(self, pg):
        self.postmaster = postmaster_pid(pg)
        self.pids = node_backends(pg)

    def __enter__(self):
        self.t0 = time.monotonic()
        os.kill(self.postmaster, signal.SIGSTOP)
        self.pids = sorted(set(self.pids) | set(node_children(self.postmaster)))
        for p in self.pids:
            os.kill(p, signal.SIGSTOP)
        self.pids.append(self.postmaster)
        return self

    def thaw(self):
        for p in self.pids:
            try:
                os.kill(p, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.pids = []

    def __exit__(self, *exc):
        self.thaw()


def timed(fn):
    t0 = time.monotonic()
    r = fn()
    return r, time.monotonic() - t0


def test_api_answers_while_postgres_is_stopped(node, pg):
    api = node(dns=False)
    r = api.get("/health", key=False)
    assert r.status_code == 200 and r.json()["postgres"] == "ok"
    assert api.get("/api/tenants").status_code == 200
    with Frozen(pg) as f:
        assert len(f.pids) >= 2, "the API holds no connection to stop"
        # The probe's connection looks fine to poll(): only its round
        # trip (every PROBE_INTERVAL_S, at most PING_TIMEOUT_S) shows the
        # server does not answer. /health itself never waits for it.
        t0 = time.monotonic()
        wait_for(lambda: api.get("/health", key=False,
                                 timeout=HANG_S).status_code == 503,
                 PROBE_INTERVAL_S + PING_TIMEOUT_S + HANG_S,
                 "/health 503 while PostgreSQL is stopped")
        t_health = time.monotonic() - t0
        r = api.get("/health", key=False, timeout=HANG_S)
        assert r.status_code == 503, r.text
        assert r.json()["status"] == "degraded"
        assert r.json()["postgres"] == "unreachable"
        # The pool retired its idle connections; a new one cannot start.
        r, t_list = timed(lambda: api.get("/api/tenants", timeout=HANG_S))
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "database_unavailable"
        assert "PostgreSQL is unreachable" in r.json()["detail"]
        r, t_create = timed(lambda: api.create("frozen", timeout=HANG_S))
        assert r.status_code == 503, r.text
        assert r.json()["code"] == "database_unavailable"
        r, t_health2 = timed(lambda: api.get("/health", key=False,
                                             timeout=HANG_S))
        assert r.status_code == 503
        print(f"\nPostgreSQL stopped: /health 503 in {t_health:.2f} s "
              f"(probe every {PROBE_INTERVAL_S} s, ping deadline "
              f"{PING_TIMEOUT_S} s), list 503 in "
              f"{t_list:.2f} s, create 503 in {t_create:.2f} s, /health "
              f"again {t_health2:.2f} s (connect_timeout "
              f"{CONNECT_TIMEOUT_S} s)")
        f.thaw()
        t0 = time.monotonic()
        wait_for(lambda: api.get("/health", key=False,
                                 timeout=HANG_S).status_code == 200,
                 HANG_S, "/health after SIGCONT")
        print(f"/health 200 again {time.monotonic() - t0:.2f} s after "
              "SIGCONT")
    assert api.get("/api/tenants").status_code == 200
    r = api.create("thawed")
    assert r.status_code == 201, r.text
    log = api.log()
    assert re.search(r"<4>PostgreSQL sent no reply in \d+ ms", log), log
    assert "frozen" not in pg.databases()
    assert api.proc.poll() is None


def test_watcher_retries_while_postgres_is_stopped(node, pg, cloudflare):
    pg.su_exec('CREATE DATABASE "before" OWNER odoo TEMPLATE "tcs"')
    d = node(prog="odoo-db-watcher", DB_WATCHER_INTERVAL="1")

    def has(fqdn):
        return any(r["name"] == fqdn and r["content"] == TARGET
                   for r in cloudflare.records(ZONE_SAJET))

    wait_for(lambda: has("before.sajet.us"), 30, "before's record")
    d.new_log()
    with Frozen(pg) as f:
        assert len(f.pids) >= 2, "the watcher holds no connection to stop"
        wait_for(lambda: "PostgreSQL sent no reply" in d.log(), HANG_S,
                 "the watcher to give up on its connection")
        t_noticed = time.monotonic() - f.t0
        # Then the reconnection cannot start either: one warning, retries.
        wait_for(lambda: re.search(r"<4>PostgreSQL: .*retrying in",
                                   d.log()), HANG_S,
                 "the watcher's warning")
        t_warned = time.monotonic() - f.t0
        assert d.proc.poll() is None
        print(f"\nwatcher: gave up on its connection {t_noticed:.2f} s "
              f"after SIGSTOP (reply deadline {REPLY_TIMEOUT_S} s, "
              f"interval 1 s), warned {t_warned:.2f} s after")
    pg.su_exec('CREATE DATABASE "after" OWNER odoo TEMPLATE "tcs"')
    wait_for(lambda: has("after.sajet.us"), HANG_S + 30,
             "after's record once PostgreSQL runs again")
    log = d.log()
    assert "PostgreSQL reachable again" in log
    assert len(re.findall(r"<4>PostgreSQL: ", log)) == 1, log
    assert d.proc.poll() is None


def test_api_answers_while_a_catalog_is_locked(node, pg):
    """A server that runs but cannot serve (pg_database locked by another
    session): lock_timeout ends the list, which answers 503, not never."""
    api = node(dns=False)
    assert api.get("/api/tenants").status_code == 200
    c = pg.su_connect()
    try:
        c.autocommit = False
        with c.cursor() as cur:
            cur.execute("LOCK TABLE pg_database IN ACCESS EXCLUSIVE MODE")
            # The list's snapshot is served only within CACHE_FRESH_S of
            # the check that confirmed it; the check now waits on the lock.
            time.sleep(CACHE_FRESH_S + 0.5)
            r, t_list = timed(lambda: api.get("/api/tenants",
                                              timeout=HANG_S))
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "database_unavailable"
            assert "lock timeout" in r.json()["detail"], r.text
            # The server itself answers: /health stays ok.
            r, t_health = timed(lambda: api.get("/health", key=False,
                                                timeout=HANG_S))
            assert r.status_code == 200, r.text
            print(f"\npg_database locked: list 503 in {t_list:.2f} s "
                  f"(lock_timeout 5 s), /health 200 in {t_health:.3f} s")
        c.rollback()
    finally:
        c.close()
    assert api.get("/api/tenants").status_code == 200
