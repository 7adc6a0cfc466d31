"""Trust boundaries (issue 8, CONTRACT 8): what the API key does NOT let
its holder do, and what a second daemon or a slow Cloudflare cannot do.

* template_db is an allow-list (TEMPLATE_DBS): a tenant, `postgres` or any
  other database that is not a template of the node is 422
  template_not_allowed, and nothing of it is touched: no session ended, no
  connection opened to it (PostgreSQL's own connection log says so);
* a template with file-backed attachments and no filestore folder is 500
  filestore_missing, leaving nothing, and `--check` says so;
* one odoo-local-api per node and role: a second one exits 1 naming the
  first and leaves the first one's creation in progress alone;
* a slow Cloudflare holds no database connection: /health and lists keep
  answering while more creates than pool connections wait for it.
"""
import os
import subprocess
import threading
import time
from pathlib import Path

import psycopg2
import pytest

from conftest import (BUILD, NODE_ROLE, clone_tcs, drop_template,
                      free_port, sanitizer_report, wait_for)

INTERNAL = "_nodo_"
SYSTEM_DBS = ("postgres", "template0", "template1")
POOL_MAX_OPEN = 32  # PG_POOL_MAX_OPEN of include/nodo/pg.h


def internal_dbs(pg):
    return [d for d in pg.databases() if d.startswith(INTERNAL)]


def folders(data_dir):
    fs = Path(data_dir) / "filestore"
    return sorted(p.name for p in fs.iterdir()) if fs.exists() else []


@pytest.fixture
def conn_log(pg):
    """PostgreSQL logs every connection while the test runs; the fixture
    returns a function giving the 'connection authorized' lines since."""
    pg.su_exec("ALTER SYSTEM SET log_connections = on")
    pg.su_exec("SELECT pg_reload_conf()")

    def on():
        c = pg.su_connect()
        try:
            with c.cursor() as cur:
                cur.execute("SHOW log_connections")
                return cur.fetchone()[0] == "on"
        finally:
            c.close()
    wait_for(on, 10, "log_connections")
    start = pg.log.stat().st_size

    def lines():
        with open(pg.log, "rb") as f:
            f.seek(start)
            text = f.read().decode(errors="replace")
        return [ln for ln in text.splitlines()
                if "connection authorized" in ln]
    try:
        yield lines
    finally:
        pg.su_exec("ALTER SYSTEM RESET log_connections")
        pg.su_exec("SELECT pg_reload_conf()")


def session(pg, db, app="customer-odoo"):
    """A customer's session on db, as Odoo would hold it."""
    c = psycopg2.connect(host=pg.host, port=pg.port, user=NODE_ROLE,
                         password="odoo-test-pw", dbname=db,
                         application_name=app)
    c.autocommit = True
    return c


def alive(c):
    try:
        with c.cursor() as cur:
            cur.execute("SELECT 1")
            return cur.fetchone() == (1,)
    except psycopg2.Error:
        return False


def backends_on(pg, db):
    return pg.su_exec("SELECT pid, application_name FROM pg_stat_activity"
                      " WHERE datname = %s", args=(db,))


# -- 1. templates are an allow-list ------------------------------------------

def test_tenant_as_template_is_refused_and_untouched(api, pg, data_dir,
                                                     cloudflare, conn_log):
    """The key's holder cannot copy a customer's database into a tenant of
    their own, nor end that customer's sessions (CONTRACT 8)."""
    assert api.create("victim", "victim-pw").status_code == 201
    cust = session(pg, "victim")
    try:
        with cust.cursor() as cur:
            cur.execute("CREATE TABLE secret (v text);"
                        "INSERT INTO secret VALUES ('customer data')")
        before_dbs = pg.databases()
        before_fs = folders(data_dir)
        n_cf = cloudflare.count()
        for body in ({"template_db": "victim"},
                     {"template_db": "victim", "domain": "otro.dominio"}):
            r = api.create("thief", "pw", **body)
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "template_not_allowed"
            assert "template_db" in r.json()["detail"]
            assert "victim" in r.json()["detail"]
        # Nothing touched: the customer's session lives, nobody else
        # connected to its database, nothing was made.
        assert alive(cust)
        assert [a for _, a in backends_on(pg, "victim")] == ["customer-odoo"]
        to_victim = [ln for ln in conn_log() if "database=victim" in ln]
        assert len(to_victim) == 1, to_victim  # the customer's own
        assert "application_name=customer-odoo" in to_victim[0]
        assert pg.databases() == before_dbs
        assert internal_dbs(pg) == []
        assert folders(data_dir) == before_fs
        assert cloudflare.count() == n_cf
        assert "thief" not in [t["subdomain"] for t in
                               api.get("/api/tenants").json()["tenants"]]
    finally:
        cust.close()


@pytest.mark.parametrize("db", SYSTEM_DBS)
def test_system_database_as_template_is_refused(api, pg, db, conn_log):
    """postgres, template0, template1 exist but are not the node's
    templates: 422, no session ended on them, no connection to them."""
    other = None
    if db == "postgres":
        other = session(pg, "postgres", app="someone-else")
    r = api.create("fromsys", "pw", template_db=db)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "template_not_allowed"
    assert db in r.json()["detail"]
    assert "fromsys" not in pg.databases()
    assert internal_dbs(pg) == []
    if other is not None:
        assert alive(other)
        other.close()
    # The node's own connections go to postgres (its maintenance
    # database); to the template databases it opened none.
    if db != "postgres":
        assert not [ln for ln in conn_log() if f"database={db} " in ln
                    or ln.endswith(f"database={db}")]


def test_unknown_template_stays_404(api, pg):
    r = api.create("fromnothing", "pw", template_db="no_such_db")
    assert r.status_code == 404
    assert r.json()["code"] == "template_not_found"
    assert "fromnothing" not in pg.databases()


def test_default_list_is_resolved_at_run_time(api, pg, data_dir):
    """Unset TEMPLATE_DBS: DEFAULT_TEMPLATE_DB plus the IS_TEMPLATE
    databases the node's role owns, looked up per request."""
    clone_tcs(pg, "tpl_late", files=False)
    pg.su_exec("ALTER DATABASE tpl_late IS_TEMPLATE false")
    try:
        # A plain database of the role: a tenant, so refused...
        r = api.create("fromlate", "pw", template_db="tpl_late")
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "template_not_allowed"
        # ... and marked IS_TEMPLATE later: allowed, with no restart.
        pg.su_exec("ALTER DATABASE tpl_late IS_TEMPLATE true")
        r = api.create("fromlate", "pw", template_db="tpl_late")
        assert r.status_code == 201, r.text
        assert r.json()["template_db"] == "tpl_late"
        names = [t["subdomain"] for t in
                 api.get("/api/tenants").json()["tenants"]]
        assert "fromlate" in names and "tpl_late" not in names
        # An IS_TEMPLATE database of another role is not the node's.
        pg.su_exec("ALTER DATABASE tpl_late OWNER TO postgres")
        r = api.create("fromlate2", "pw", template_db="tpl_late")
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "template_not_allowed"
        # DELETE refuses a template whatever its owner.
        r = api.delete("/api/tenant?subdomain=tpl_late")
        assert r.status_code == 422
        assert r.json()["code"] == "reserved_name"
        assert "tpl_late" in pg.databases()
    finally:
        drop_template(pg, "tpl_late")


def test_explicit_template_list(node, pg, data_dir):
    """TEMPLATE_DBS=tcs,tpl_plain: a plain database on the list is a
    template (copied, never listed, never deleted); an IS_TEMPLATE one
    off the list is refused."""
    pg.su_exec("CREATE DATABASE tpl_plain OWNER odoo TEMPLATE tcs")
    pg.su_exec("DELETE FROM ir_attachment WHERE store_fname IS NOT NULL",
               db="tpl_plain")  # it has no folder of its own
    clone_tcs(pg, "tpl_off", files=False)
    try:
        api = node(TEMPLATE_DBS="tcs, tpl_plain")
        names = [t["subdomain"] for t in
                 api.get("/api/tenants").json()["tenants"]]
        assert "tpl_plain" not in names
        r = api.create("fromplain", "pw", template_db="tpl_plain")
        assert r.status_code == 201, r.text
        assert "warning" in r.json()  # tpl_plain has no folder of its own
        r = api.create("fromoff", "pw", template_db="tpl_off")
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "template_not_allowed"
        assert "TEMPLATE_DBS" in r.json()["detail"]
        for name in ("tpl_plain", "tcs"):
            r = api.delete(f"/api/tenant?subdomain={name}")
            assert r.status_code == 422, r.text
            assert r.json()["code"] == "reserved_name"
            assert name in pg.databases()
        r = api.create("tpl_plain", "pw")
        assert r.status_code == 422
        assert r.json()["code"] == "reserved_name"
        assert r.json()["detail"].startswith("subdomain")
    finally:
        pg.su_exec("DROP DATABASE IF EXISTS tpl_plain WITH (FORCE)")
        drop_template(pg, "tpl_off")


@pytest.mark.parametrize("value,needle", [
    ("tcs2", "DEFAULT_TEMPLATE_DB"),
    ("tcs,postgres", "postgres"),
    ("tcs,,x", "empty"),
    ("tcs,Bad Name", "Bad Name"),
])
def test_bad_template_list_is_exit_78(node, value, needle):
    d = node(TEMPLATE_DBS=value, start=False)
    d.write_env()
    p = subprocess.run([str(BUILD / "odoo-local-api"), "--config",
                        str(d.env_file)], capture_output=True, text=True,
                       timeout=30, env={"PATH": os.environ["PATH"]})
    assert p.returncode == 78, p.stderr
    assert "TEMPLATE_DBS" in p.stderr and needle in p.stderr
    assert str(d.env_file) in p.stderr


# -- 3. no tenant without its files ------------------------------------------

def run_check(d, **env):
    """odoo-local-api --check with the daemon's env file (plus env)."""
    d.env.update(env)
    d.write_env()
    return subprocess.run([str(BUILD / "odoo-local-api"), "--config",
                           str(d.env_file), "--check"], capture_output=True,
                          text=True, timeout=60,
                          env={"PATH": os.environ["PATH"]})


@pytest.mark.parametrize("folder", ["absent", "file", "dangling-symlink",
                                    "empty-name-only"])
def test_template_with_files_and_no_folder(node, pg, data_dir, cloudflare,
                                           folder):
    """A template whose attachments live in the filestore cannot be copied
    without its folder: 500 filestore_missing naming the folder, nothing
    left behind, no DNS record; and --check says so."""
    fs = Path(data_dir) / "filestore" / "tpl_nofs"
    clone_tcs(pg, "tpl_nofs")  # its ir_attachment has a store_fname
    if folder == "file":
        fs.write_text("not a folder")
    elif folder == "dangling-symlink":
        fs.symlink_to("/nonexistent/nodo-tpl_nofs")
    elif folder == "empty-name-only":
        # Odoo's store_fname is set even when the folder exists elsewhere:
        # a folder under another name does not count.
        (Path(data_dir) / "filestore" / "tpl_nofs_old").mkdir()
    try:
        api = node()
        before = folders(data_dir)
        r = api.create("nofiles", "pw", template_db="tpl_nofs")
        assert r.status_code == 500, r.text
        assert r.json()["code"] == "filestore_missing"
        assert str(fs) in r.json()["detail"]
        assert "nofiles" not in pg.databases()
        assert internal_dbs(pg) == []
        assert folders(data_dir) == before
        assert cloudflare.requests == []
        assert "nofiles" not in [t["subdomain"] for t in
                                 api.get("/api/tenants").json()["tenants"]]
        # --check names it for DEFAULT_TEMPLATE_DB, and only then.
        p = run_check(api, DEFAULT_TEMPLATE_DB="tpl_nofs")
        assert p.returncode == 1, p.stdout + p.stderr
        assert "filestore_missing" in p.stdout and str(fs) in p.stdout
        p = run_check(api, DEFAULT_TEMPLATE_DB="tcs")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "filestore: ok" in p.stdout
        # The node still creates from a complete template.
        assert api.create("withfiles", "pw").status_code == 201
    finally:
        if fs.is_symlink() or fs.is_file():
            fs.unlink()
        drop_template(pg, "tpl_nofs")


def test_template_without_files_and_folder_checks_ok(node, pg, data_dir):
    """No file-backed attachment (db_datas only): no folder is needed, the
    create works with today's warning, and --check is content."""
    clone_tcs(pg, "tpl_dbonly", files=False)
    try:
        api = node()
        r = api.create("dbonly", "pw", template_db="tpl_dbonly")
        assert r.status_code == 201, r.text
        assert "filestore" in r.json()["warning"]
        p = run_check(api, DEFAULT_TEMPLATE_DB="tpl_dbonly")
        assert p.returncode == 0, p.stdout + p.stderr
        assert "no file-backed attachments" in p.stdout
    finally:
        drop_template(pg, "tpl_dbonly")


# -- 8. the DNS step holds nothing it does not need ---------------------------

ROLE_CONN_LIMIT = 7  # connections the node's role may open in the DNS test
# What the daemon needs besides DNS steps: its lock connection, /health's
# probe, the list cache's catalog check, one for the poller's requests, a
# create's pool connection and its clone connection.
ROLE_CONN_ROOM = ROLE_CONN_LIMIT - 6
CF_DELAY_S = 7.5     # per Cloudflare call: a create's DNS step is ~15 s


class Poller(threading.Thread):
    """GET /health and GET /api/tenants in a loop, recording each answer
    (path, status, seconds) until stopped."""

    def __init__(self, api):
        super().__init__(daemon=True)
        self.api = api
        self.answers = []
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for path, key in (("/health", False), ("/api/tenants", True)):
                t0 = time.monotonic()
                try:
                    st = self.api.get(path, key=key, timeout=30).status_code
                except Exception as e:  # noqa: BLE001 - asserted below
                    st = repr(e)
                self.answers.append((path, st, time.monotonic() - t0))
            self.stop.wait(0.2)


def staggered(api, pg, names, op, done, results):
    """Starts op(name) for each name in a thread of its own, the next one
    once done(name) holds (its database work finished, its DNS step
    waiting): the DNS steps pile up, the database steps do not. Returns
    the threads and the most DNS steps seen waiting at once."""
    threads, most = [], 0
    for i, name in enumerate(names):
        def run(name=name):
            try:
                results[name] = op(name).status_code
            except Exception as e:  # noqa: BLE001 - asserted by the caller
                results[name] = repr(e)
        th = threading.Thread(target=run)
        th.start()
        threads.append(th)
        wait_for(lambda: done(name) or name in results, 120,
                 f"{name}'s database step: {results}")
        most = max(most, i + 1 - len(results))
    return threads, most


def test_slow_cloudflare_holds_no_connection(node, pg, cloudflare):
    """Creates and deletes waiting for a Cloudflare that takes 7.5 s a
    call hold no database connection: with the node's role limited to 7
    connections, 9 creates and then 9 deletes pile up in their DNS step
    while /health and the list keep answering 200, and every one of them
    succeeds. (Before: each DNS step kept its pool connection; the later
    creates and deletes, /health and the list found none and answered
    503. The pool's own limit of 32 is the same wall, farther away: more
    concurrent creates than that, in their DNS step, did the same.)"""
    k = ROLE_CONN_LIMIT + 2
    names = [f"slowdns{i}" for i in range(k)]
    pg.su_exec(f"ALTER ROLE {NODE_ROLE} CONNECTION LIMIT {ROLE_CONN_LIMIT}")
    try:
        api = node()
        cloudflare.set_delay(CF_DELAY_S)
        poll = Poller(api)
        poll.start()
        created, deleted = {}, {}
        threads, in_dns_create = staggered(
            api, pg, names, lambda x: api.create(x, "pw", timeout=120),
            lambda x: x in pg.databases(), created)
        for th in threads:
            th.join(120)
        threads, in_dns_delete = staggered(
            api, pg, names,
            lambda x: api.delete(f"/api/tenant?subdomain={x}", timeout=120),
            lambda x: x not in pg.databases(), deleted)
        for th in threads:
            th.join(120)
        poll.stop.set()
        poll.join(60)
    finally:
        cloudflare.set_delay(0)
        pg.su_exec(f"ALTER ROLE {NODE_ROLE} CONNECTION LIMIT -1")
    assert created == {x: 201 for x in names}, created
    assert deleted == {x: 200 for x in names}, deleted
    bad = [a for a in poll.answers if a[1] != 200]
    assert bad == [], bad
    # Meaningful only when the DNS steps piled up past the limit's room.
    assert in_dns_create > ROLE_CONN_ROOM, in_dns_create
    assert in_dns_delete > ROLE_CONN_ROOM, in_dns_delete
    lat = sorted(a[2] for a in poll.answers)
    print(f"\nslow Cloudflare ({CF_DELAY_S} s a call), role limited to "
          f"{ROLE_CONN_LIMIT} connections: {in_dns_create} creates and "
          f"{in_dns_delete} deletes at once in their DNS step; "
          f"{len(lat)} /health and list answers, all 200, median "
          f"{lat[len(lat) // 2] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms")


def test_delete_during_the_dns_step_of_its_create_is_409(api, pg,
                                                           cloudflare):
    """The name stays busy through the DNS step: a delete of a tenant whose
    record is being made answers 409 (instead of racing the record and
    leaving one without its tenant), and works once the create is done."""
    cloudflare.set_delay(3)
    res = {}
    th = threading.Thread(target=lambda: res.update(
        r=api.create("racing", "pw", timeout=60)))
    th.start()
    try:
        wait_for(lambda: "racing" in pg.databases() or "r" in res, 60,
                 "racing published")
        assert "r" not in res, "the create ended before its DNS step"
        r = api.delete("/api/tenant?subdomain=racing")
        assert r.status_code == 409, r.text
        assert r.json()["code"] == "tenant_exists"
        assert "racing" in pg.databases()
    finally:
        th.join(60)
        cloudflare.set_delay(0)
    assert res["r"].status_code == 201
    assert res["r"].json()["dns"]["status"] == "created"
    r = api.delete("/api/tenant?subdomain=racing")
    assert r.status_code == 200, r.text
    assert r.json()["dns"]["status"] == "deleted"
    assert [x for x in cloudflare.records()
            if x["name"] == "racing.sajet.us"] == []


# -- 5. one API per node ------------------------------------------------------

NODELOCK_CLASS = 1315923055  # src/api/nodelock.h


def run_api(d, timeout=60, extra_env=None):
    """odoo-local-api with d's env file, to the end; (rc, output)."""
    d.write_env()
    env = {"PATH": os.environ["PATH"],
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"}
    env.update(extra_env or {})
    p = subprocess.run([str(BUILD / "odoo-local-api"), "--config",
                        str(d.env_file)], capture_output=True, text=True,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout + p.stderr


def lock_holders(pg):
    return pg.su_exec("SELECT l.pid FROM pg_locks l WHERE l.locktype = "
                      "'advisory' AND l.granted AND l.classid = %s::oid",
                      args=(NODELOCK_CLASS,))


@pytest.fixture
def slow_template(pg):
    """tpl_slow: a template whose admin password update sleeps 9 s in the
    clone, so a creation from it stays in progress, under its internal
    name, for that long (under the sessions' 10 s statement_timeout,
    PG_STATEMENT_TIMEOUT_MS, which would cancel a longer one)."""
    clone_tcs(pg, "tpl_slow", files=False)
    pg.su_exec("""
        CREATE FUNCTION nodo_test_slow() RETURNS trigger LANGUAGE plpgsql
        AS $$ BEGIN PERFORM pg_sleep(9); RETURN NEW; END $$;
        CREATE TRIGGER slow BEFORE UPDATE ON res_users
        FOR EACH ROW EXECUTE FUNCTION nodo_test_slow();""", db="tpl_slow")
    yield "tpl_slow"
    drop_template(pg, "tpl_slow")


def creation_in_progress(pg):
    """(internal database, pid of the API's backend working in it)."""
    rows = pg.su_exec("SELECT datname, pid FROM pg_stat_activity WHERE "
                      "left(datname, 6) = '_nodo_' AND state = 'active' "
                      "AND usename = %s", args=(NODE_ROLE,))
    return rows[0] if rows else None


@pytest.mark.parametrize("same_port", [True, False])
def test_second_api_refuses_and_leaves_the_creation(node, pg, data_dir,
                                                    slow_template,
                                                    same_port):
    """A second odoo-local-api started by hand while one runs exits 1,
    names the running one (its port, or its pid and port), and touches
    nothing: the first one's creation in progress goes on and completes.
    (Before: its start-up clean-up ended that creation's backend and
    dropped its database.) --check beside it only reads."""
    first = node()
    res = {}
    th = threading.Thread(target=lambda: res.update(
        r=first.create("inprogress", "pw", template_db=slow_template,
                       timeout=120)))
    th.start()
    try:
        tmp, backend = wait_for(lambda: creation_in_progress(pg), 60,
                                "the creation in progress")
        holders = lock_holders(pg)
        second = node(start=False,
                      API_PORT=first.port if same_port else free_port())
        rc, out = run_api(second)
        # Nothing touched: the same backend is still at work on tmp.
        assert creation_in_progress(pg) == (tmp, backend), out
        assert len(holders) == 1, holders
        assert rc == 1, out
        if same_port:
            assert str(first.port) in out and "in use" in out, out
        else:
            assert f"pid={first.proc.pid} port={first.port}" in out, out
        assert "touches nothing" in out, out
        # --check may run beside the daemon: it only reads.
        p = subprocess.run([str(BUILD / "odoo-local-api"), "--config",
                            str(first.env_file), "--check"],
                           capture_output=True, text=True, timeout=60,
                           env={"PATH": os.environ["PATH"]})
        assert p.returncode == 0, p.stdout + p.stderr
        # Nothing touched: the same backend is still at work on tmp.
        assert creation_in_progress(pg) == (tmp, backend)
        assert lock_holders(pg) == holders
    finally:
        th.join(120)
    assert res["r"].status_code == 201, res["r"].text
    assert "inprogress" in pg.databases()
    assert internal_dbs(pg) == []
    assert "removing" not in first.log()
    assert first.get("/health", key=False).status_code == 200


STRANGER = "nodo_stranger"  # a login role that owns nothing
STRANGER_PW = "stranger-pw"


def stranger_connects(pg, db):
    """True when a role other than the node's may connect to db."""
    try:
        psycopg2.connect(host=pg.host, port=pg.port, user=STRANGER,
                         password=STRANGER_PW, dbname=db,
                         connect_timeout=10).close()
        return True
    except psycopg2.OperationalError as e:
        assert "permission denied for database" in str(e), e
        return False


def test_creation_in_progress_is_recorded_and_closed(node, pg,
                                                     slow_template):
    """While a create is filled, its internal database carries the intent
    record op=create;target;domain;template and only the node's role may
    connect (other roles: permission denied); the published tenant is
    open to them again, as a new database is."""
    pg.su_exec(f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE "
               f"rolname = '{STRANGER}') THEN CREATE ROLE {STRANGER} LOGIN "
               f"PASSWORD '{STRANGER_PW}'; END IF; END$$")
    api = node()
    res = {}
    th = threading.Thread(target=lambda: res.update(
        r=api.create("cerrado", "pw", template_db=slow_template,
                     timeout=120)))
    th.start()
    try:
        tmp, _ = wait_for(lambda: creation_in_progress(pg), 60,
                          "the creation in progress")
        com = pg.su_exec("SELECT shobj_description(oid, 'pg_database') "
                         "FROM pg_database WHERE datname = %s",
                         args=(tmp,))[0][0]
        assert com == ("nodo:op=create;target=cerrado;domain=sajet.us;"
                       f"template={slow_template}"), com
        assert not stranger_connects(pg, tmp)
        # The node's role, its owner, still does (configure is at work).
        pg.connect(tmp).close()
    finally:
        th.join(120)
    assert res["r"].status_code == 201, res["r"].text
    assert stranger_connects(pg, "cerrado")
    acl = pg.su_exec("SELECT datacl::text FROM pg_database WHERE datname "
                     "= 'cerrado'")[0][0]
    assert acl is None or "=Tc/" in acl, acl


def test_lock_is_taken_again_after_postgres_restarts(node, pg):
    """The lock lives on a connection: a PostgreSQL restart drops it, and
    the daemon takes it again, so a second one still refuses."""
    first = node()
    before = lock_holders(pg)
    assert len(before) == 1
    pg.stop("fast")
    pg.start()
    after = wait_for(lambda: lock_holders(pg), 30, "the lock taken again")
    assert after != before  # a new backend holds it now
    second = node(start=False, API_PORT=free_port())
    rc, out = run_api(second)
    assert rc == 1, out
    assert f"pid={first.proc.pid}" in out, out
    assert wait_for(lambda: first.get("/health", key=False).status_code
                    == 200, 30, "/health after the restart")
    assert "node lock taken again" in first.log()


def test_restart_after_a_crash_takes_the_lock(node, pg):
    """SIGKILL, then an immediate restart on the same port (as systemd
    does): the dead API's lock goes with its backend, which may take a
    moment; the new one waits for it rather than refusing."""
    first = node()
    for i in range(3):
        first.kill()
        first.start()  # raises when it exits (1: lock still held)
        holders = wait_for(lambda: lock_holders(pg), 10, "the lock")
        assert len(holders) == 1, holders
        assert first.get("/health", key=False).status_code == 200


def test_clean_up_ends_only_the_apis_own_sessions(node, pg):
    """The start-up clean-up ends backends of a dead creation (the API's
    application_name), never another program's session of the same role,
    whatever its query looks like."""
    def busy(app):
        c = session(pg, "postgres", app=app)

        def run():
            try:
                c.cursor().execute(
                    'SELECT pg_sleep(20) /* CREATE DATABASE "_nodo_0123" */')
            except psycopg2.Error:
                pass  # ended: asserted through is_alive()
        th = threading.Thread(target=run, daemon=True)
        th.start()
        return c, th

    other, other_th = busy("odoo-worker")
    dead, dead_th = busy("odoo-local-api")  # as a crashed API left it
    try:
        def both_active():
            rows = pg.su_exec("SELECT application_name FROM "
                              "pg_stat_activity WHERE state = 'active' "
                              "AND pid <> pg_backend_pid() "
                              "AND query LIKE '%%pg_sleep(20)%%'")
            return sorted(r[0] for r in rows) == ["odoo-local-api",
                                                  "odoo-worker"]
        wait_for(both_active, 20, "both sessions at work")
        api = node()
        dead_th.join(20)
        assert not dead_th.is_alive()  # ended by the clean-up
        assert other_th.is_alive() and alive_query(pg, "odoo-worker")
        assert "interrupted creation" in api.log()
    finally:
        pg.su_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                   " WHERE application_name IN ('odoo-worker')")
        other_th.join(20)
        other.close()
        dead.close()


def alive_query(pg, app):
    return bool(pg.su_exec("SELECT 1 FROM pg_stat_activity WHERE "
                           "application_name = %s AND state = 'active'",
                           args=(app,)))


# -- 7 (last clause). the clean-up never holds up the watchdog ----------------

WATCHDOG_S = 4.0  # WATCHDOG_USEC given to the daemon: pings every 2 s
SO_TIMESTAMPNS = 35  # <asm-generic/socket.h>; Python does not name it


def recv_stamped(sock):
    """(seconds, text) of one notify datagram; the time is the kernel's
    arrival stamp (SO_TIMESTAMPNS), not when this thread got to it."""
    import socket as so
    import struct
    data, anc, _, _ = sock.recvmsg(4096, so.CMSG_SPACE(16))
    for level, kind, raw in anc:
        if level == so.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = struct.unpack("qq", raw[:16])
            return sec + nsec / 1e9, data.decode()
    return time.time(), data.decode()


def postmaster_pid(pg):
    return int((pg.data / "postmaster.pid").read_text().split()[0])


def test_watchdog_pings_while_postgres_hangs(node, pg, tmp_path):
    """With the postmaster stopped (SIGSTOP: every new connection hangs
    for connect_timeout, 5 s), the daemon starts degraded, its clean-up
    and lock keep trying, and the main thread still pings the watchdog
    every WATCHDOG_USEC / 2. (Before: the clean-up ran on the main thread,
    5 s per try, and the pings came 5 s apart: systemd would have killed
    it.) Once PostgreSQL is back, the lock is taken and the clean-up done."""
    import signal
    import socket as so
    d = node(start=False)
    d.write_env()
    path = str(tmp_path / "notify.sock")
    sock = so.socket(so.AF_UNIX, so.SOCK_DGRAM)
    sock.bind(path)
    sock.setsockopt(so.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.settimeout(0.5)
    pm = postmaster_pid(pg)
    env = {"PATH": os.environ["PATH"], "NOTIFY_SOCKET": path,
           "WATCHDOG_USEC": str(int(WATCHDOG_S * 1e6)),
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"}
    msgs = []
    os.kill(pm, signal.SIGSTOP)
    proc = None
    try:
        proc = subprocess.Popen([str(BUILD / "odoo-local-api"), "--config",
                                 str(d.env_file)], env=env,
                                stdout=open(d.log_path, "ab"),
                                stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline:
            try:
                msgs.append(recv_stamped(sock))
            except so.timeout:
                pass
            if proc.poll() is not None:
                break
    finally:
        os.kill(pm, signal.SIGCONT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(
                "reachable" in m and "unreachable" not in m
                for _, m in msgs):
            try:
                msgs.append(recv_stamped(sock))
            except so.timeout:
                pass
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(60)
        sock.close()
    assert rc == 0, d.log()
    assert not sanitizer_report(d.log()), d.log()
    ready = [t for t, m in msgs if "READY=1" in m]
    assert ready, msgs
    pings = [t for t, m in msgs if "WATCHDOG=1" in m and t >= ready[0]]
    gaps = [b - a for a, b in zip([ready[0]] + pings, pings)]
    assert len(pings) >= 8, msgs
    print(f"\nwatchdog while PostgreSQL hangs: {len(pings)} pings, "
          f"largest gap {max(gaps):.2f} s (WATCHDOG_USEC {WATCHDOG_S} s)")
    assert max(gaps) < WATCHDOG_S, gaps
    assert any("STATUS=listening, PostgreSQL reachable" in m
               for _, m in msgs), msgs
    assert "node lock taken" in d.log()
