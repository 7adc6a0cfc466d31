"""kill -9 at random moments of a restore from a backup (POST
/api/tenant/restore, CONTRACT 10); after each restart (the clean-up runs
before the API listens) the target name must be either a complete tenant
(database open to connections, its record, every row and every file of the
backup, web.base.url its URL, the identity kept by mode=move and new for
mode=copy, listed, its DNS record as a create makes it, by the restore or
else by the watcher's next pass) or nothing at all (no database, no
folder, no record, the name free: a create of it succeeds); and nothing
internal is left: no _nodo_ database or folder, no file beside the
filestore (the body is spooled to an O_TMPFILE in ODOO_DATA_DIR), no psql
of the dead process still connected.

NODO_CRASH_TRIALS sets the trials (15 in `make check`, 50 in `make
stress`, through tests/stress/crash.sh); NODO_CRASH_SEED makes a run
repeatable. The summary line tells where the kills fell: by the step the
killed process last logged (restore.c's debug step lines) and before or
after the publish commit."""
import os
import random
import re
import threading
import time
from pathlib import Path

from conftest import TUNNEL_ID, ZONE_SAJET, wait_for
from test_restore import _quiet, make_zip, nothing_left, restore, \
    small_dump, backup_bytes
from test_trash_crash import TRIALS, World, databases, files_of, killed
from test_watcher import run_once

SRC = "fuente"
TARGET = f"{TUNNEL_ID}.cfargotunnel.com"
ROWS = 10000
TINY = make_zip([("dump.sql", small_dump())])
STEP_RE = r"restore of {}: step (\w+)"


def table_sum(pg, db):
    return pg.su_exec("SELECT count(*), md5(string_agg(body, ',' ORDER BY "
                      "id)) FROM x_crash", db=db)[0]


def icp(pg, db):
    return dict(pg.su_exec("SELECT key, value FROM ir_config_parameter "
                           "WHERE key IN ('database.uuid', 'web.base.url')",
                           db=db))


def records(cloudflare, name):
    return [r for r in cloudflare.records(ZONE_SAJET)
            if r["name"] == f"{name}.sajet.us"]


def shape(rec):
    """What a create's record is, whatever its name and id."""
    return {k: rec[k] for k in ("type", "content", "proxied", "ttl",
                                "comment")}


def make_source(api, pg, data_dir):
    """A tenant with rows and a filestore of a few MB (random bytes: the
    zip does not shrink them), and its backup."""
    assert api.create(SRC, "pw-fuente").status_code == 201
    pg.su_exec("CREATE TABLE x_crash (id serial PRIMARY KEY, body text); "
               "INSERT INTO x_crash (body) SELECT md5(g::text) || "
               f"repeat('x', 100) FROM generate_series(1, {ROWS}) g; "
               "ALTER TABLE x_crash OWNER TO odoo", db=SRC)
    rng = random.Random(7)
    fs = Path(data_dir) / "filestore" / SRC
    for k in range(4):
        p = fs / f"{k:02x}" / f"{k:02x}{'0' * 38}"
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(rng.randbytes(256 * 1024))
    return backup_bytes(api, SRC)


class Checks(World):
    """World's stray checks, plus what a restore's target must be."""

    def __init__(self, pg, data_dir, cloudflare, watcher):
        super().__init__(pg, data_dir)
        self.cf, self.watcher = cloudflare, watcher
        self.data = Path(data_dir)
        self.entries = {p.name for p in self.data.iterdir()}
        self.files = files_of(self.fs / SRC)
        self.rows = table_sum(pg, SRC)
        self.uuid = icp(pg, SRC)["database.uuid"]
        self.record = shape(records(cloudflare, SRC)[0])
        self.by_watcher = 0

    def tenant(self, api, name, mode, where):
        """The name is a tenant: complete, in every part."""
        allow, com = databases(self.pg)[name]
        if not allow or not re.fullmatch(
                r"nodo:domain=sajet\.us;template=", com):
            self.bad(f"{where}: {name}: connections {allow}, record {com!r}")
        if files_of(self.fs / name) != self.files:
            self.bad(f"{where}: {name}: the folder is not the backup's")
        if table_sum(self.pg, name) != self.rows:
            self.bad(f"{where}: {name}: rows differ from the backup's")
        p = icp(self.pg, name)
        if p.get("web.base.url") != f"https://{name}.sajet.us":
            self.bad(f"{where}: {name}: web.base.url {p}")
        if (p.get("database.uuid") == self.uuid) != (mode == "move"):
            self.bad(f"{where}: {name}: uuid {p} after mode={mode}")
        listed = [t["subdomain"] for t in
                  api.get("/api/tenants").json()["tenants"]]
        if name not in listed:
            self.bad(f"{where}: {name} not listed")
        if not records(self.cf, name):
            # Killed after the publish, before the DNS step: the watcher's
            # next pass makes the record, as for a create.
            self.by_watcher += 1
            if run_once(self.watcher) != 0:
                self.bad(f"{where}: the watcher's pass failed")
        recs = records(self.cf, name)
        if len(recs) != 1 or shape(recs[0]) != self.record:
            self.bad(f"{where}: {name}: DNS {recs}, want {self.record}")

    def nothing(self, name, where):
        """The name is nothing at all (the create that shows it is free
        is the caller's)."""
        if (self.fs / name).exists():
            self.bad(f"{where}: folder {name} without its database")
        if records(self.cf, name):
            self.bad(f"{where}: a DNS record for {name}, no tenant")

    def nothing_internal(self, where):
        n = len(self.problems)
        self.no_strays([], where)
        if len(self.problems) > n:
            # What the stray is, and what PostgreSQL did with it.
            strays = {d: v for d, v in databases(self.pg).items()
                      if d.startswith("_nodo_")}
            log = self.pg.log.read_text(errors="replace").splitlines()
            self.bad(f"{where}: strays {strays}; server log: " + "\n".join(
                [ln for ln in log if any(d in ln for d in strays)][-20:]))
        extra = {p.name for p in self.data.iterdir()} - self.entries
        if extra:
            self.bad(f"{where}: left in ODOO_DATA_DIR: {extra}")
        try:
            wait_for(lambda: not self.pg.su_exec(
                "SELECT pid FROM pg_stat_activity WHERE application_name "
                "= 'nodo-restore'"), 10, "the dead restore's psql")
        except AssertionError:
            self.bad(f"{where}: the killed restore's psql still runs")


def test_crash_during_restore_from_backup(node, pg, data_dir, cloudflare):
    # DDL in the server's log, with pid and application: what a stray
    # internal database came from.
    pg.su_exec("ALTER SYSTEM SET log_statement = 'ddl'")
    pg.su_exec("ALTER SYSTEM SET log_line_prefix = '%m [%p] %a '")
    pg.su_exec("SELECT pg_reload_conf()")
    try:
        trials(node, pg, data_dir, cloudflare)
    finally:
        pg.su_exec("ALTER SYSTEM RESET log_statement")
        pg.su_exec("ALTER SYSTEM RESET log_line_prefix")
        pg.su_exec("SELECT pg_reload_conf()")


def trials(node, pg, data_dir, cloudflare):
    api = node()
    watcher = node(prog="odoo-db-watcher", args=["--once"], start=False)
    rng = random.Random(os.environ.get("NODO_CRASH_SEED"))
    data = make_source(api, pg, data_dir)
    w = Checks(pg, data_dir, cloudflare, watcher)
    # The span: the longest of a few restores, measured here, on this load.
    span = 0.0
    for i, mode in enumerate(("move", "copy", "move")):
        t = time.monotonic()
        r = restore(api, f"warm{i}", data, mode=mode)
        span = max(span, time.monotonic() - t)
        assert r.status_code == 201, r.text
        w.tenant(api, f"warm{i}", mode, f"warm-up {i}")
        assert api.delete("/api/tenant", params={
            "subdomain": f"warm{i}", "purge": "true"}).status_code == 200
    assert not w.problems, "\n".join(w.problems)
    t0 = time.monotonic()
    steps, commit = {}, {"before": 0, "after": 0}
    modes = {"move": 0, "copy": 0}

    for i in range(TRIALS):
        name, mode = f"rc{i}", ("move", "copy")[i % 2]
        modes[mode] += 1
        m = rng.uniform(0, span * 1.3)
        api.new_log()
        r = killed(api, "POST", "/api/tenant/restore", m, data=data,
                   params={"subdomain": name, "mode": mode})
        where = f"trial {i} mode={mode} (kill at {m:.3f} s)"
        seen = re.findall(STEP_RE.format(name), api.new_log())
        at = "answered" if r is not None and r.status_code == 201 else \
            seen[-1] if seen else "upload"
        steps[at] = steps.get(at, 0) + 1
        if name in databases(pg):
            commit["after"] += 1
            if r is not None and r.status_code != 201:
                w.bad(f"{where}: restored, but answered {r.status_code}")
            w.tenant(api, name, mode, where)
            r2 = api.delete("/api/tenant", params={"subdomain": name,
                                                   "purge": "true"})
            if r2.status_code != 200:
                w.bad(f"{where}: purge of {name}: {r2.text}")
        else:
            commit["before"] += 1
            if r is not None and r.status_code == 201:
                w.bad(f"{where}: 201 answered but {name} is gone")
            w.nothing(name, where)
            # The name is free. A create hashes its password (600000
            # rounds: seconds on a loaded machine), so the first proof and
            # every fifth is a create, the others the restore of a tiny
            # zip (the same name checks: database, folder, busy table).
            how = "create" if commit["before"] % 5 == 1 else "restore"
            r2 = api.create(name, "pw") if how == "create" else \
                restore(api, name, TINY)
            if r2.status_code != 201:
                w.bad(f"{where}: the name is not free ({how}): {r2.text}")
            api.delete("/api/tenant", params={"subdomain": name,
                                              "purge": "true"})
        w.nothing_internal(where)
        assert not w.problems, "\n".join(w.problems)

    # The DNS step, made slow (Cloudflare answers its POST 500 after 30
    # s): killed there, the tenant is complete without its record, and
    # the watcher's next pass makes it.
    cloudflare.inject(500, {"success": False}, count=1, delay=30,
                      match="POST /client/v4/zones/")
    api.new_log()
    th = threading.Thread(target=_quiet, args=(restore, api, "rcdns", data),
                          daemon=True)
    th.start()
    wait_for(lambda: "restore of rcdns: step dns" in api.log(), 60,
             "the DNS step")
    api.kill()
    th.join(60)
    api.start()
    before = w.by_watcher
    w.tenant(api, "rcdns", "move", "kill in the DNS step")
    if w.by_watcher != before + 1:
        w.bad("kill in the DNS step: the record was made anyway")
    w.nothing_internal("kill in the DNS step")
    print(f"\nrestore crash trials: {TRIALS} ({modes}) in "
          f"{time.monotonic() - t0:.0f} s, span "
          f"{span * 1000:.0f} ms, backup {len(data) / 1e6:.1f} MB; "
          f"killed before / after the publish commit: {commit}; by step "
          f"last logged: {steps}; DNS left to the watcher: {w.by_watcher}")
    assert not w.problems, "\n".join(w.problems)


def test_crash_between_folder_and_publish(node, pg, data_dir):
    """The narrowest window, made wide: the folder is already renamed to
    filestore/<name>, the publish transaction waits (a lock on
    pg_shdescription blocks its COMMENT), the API is killed and the
    transaction rolls back. The clean-up must drop the internal database
    and the folder it left under the tenant's name (the record's target=),
    or the name stays blocked (409) for ever."""
    api = node()
    fs = Path(data_dir) / "filestore" / "huerfano"
    z = make_zip([("filestore/ab/f1", b"file"), ("dump.sql", small_dump())])
    su = pg.su_connect()
    th = threading.Thread(target=_quiet, args=(restore, api, "huerfano", z),
                          daemon=True)
    th.start()
    wait_for(lambda: "restore of huerfano: step extract" in api.log(), 30,
             "the internal database's record")
    su.autocommit = False
    with su.cursor() as cur:
        cur.execute("LOCK TABLE pg_catalog.pg_shdescription IN ACCESS "
                    "EXCLUSIVE MODE")
    waiting = ("SELECT pid FROM pg_stat_activity WHERE wait_event_type = "
               "'Lock' AND query LIKE 'COMMENT ON DATABASE \"huerfano\"%'")
    try:
        wait_for(lambda: fs.exists(), 30, "the folder under its name")
        wait_for(lambda: pg.su_exec(waiting), 30, "the blocked publish")
        api.kill()
    finally:
        su.rollback()
        su.close()
    th.join(30)
    wait_for(lambda: not pg.su_exec(waiting), 30, "the publish's end")
    dbs = pg.databases()
    assert "huerfano" not in dbs and fs.exists()
    assert len([d for d in dbs if d.startswith("_nodo_")]) == 1, dbs
    api.start()  # cleans up before it listens
    nothing_left(pg, data_dir, "huerfano")
    r = api.create("huerfano")
    assert r.status_code == 201, r.text
