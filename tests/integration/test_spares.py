"""Spares (CONTRACT 11, SPARE_TENANTS): ready clones of the default
template that a create claims instead of cloning.

Each test starts its API with SPARE_TENANTS set (the harness's default is
0) and checks the catalog and the data directory, not only the replies.
"""
import concurrent.futures
import os
import re
import shutil
import signal
import time
from pathlib import Path

import psycopg2
import pytest
from passlib.hash import pbkdf2_sha512

from conftest import ZONE_SAJET, wait_for

PREFIX = "_nodo_s"


# ---- helpers ---------------------------------------------------------------

def spares_in_catalog(pg):
    """{name: (datallowconn, comment)} of the spare-named databases."""
    rows = pg.su_exec(
        "SELECT datname, datallowconn, coalesce(shobj_description(oid, "
        "'pg_database'), '') FROM pg_database WHERE left(datname, 7) = %s",
        args=(PREFIX,))
    return {r[0]: (r[1], r[2]) for r in rows}


def ready_spares(pg):
    return {n: v for n, v in spares_in_catalog(pg).items()
            if v[1].startswith("nodo:op=spare;")}


def internal_dbs(pg):
    return [d for d in pg.databases() if d.startswith("_nodo_")]


def internal_folders(data_dir):
    fs = Path(data_dir) / "filestore"
    return sorted(p.name for p in fs.iterdir() if p.name.startswith("_nodo_"))


def metric(api, name):
    text = api.get("/metrics").text
    m = re.search(rf"^{name} (\S+)$", text, re.M)
    assert m, f"{name} not in /metrics"
    return float(m.group(1))


def wait_ready(api, pg, n=1, timeout=60):
    wait_for(lambda: api.get("/api/node").json()["spares"] == n, timeout,
             f"{n} spare(s) ready")
    return ready_spares(pg)


def icp(pg, db):
    return dict(pg.su_exec("SELECT key, value FROM ir_config_parameter",
                           db=db))


def admin_hash(pg, db):
    return pg.su_exec("SELECT password FROM res_users WHERE login = 'admin'",
                      db=db)[0][0]


def files_of(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def spare_api(node):
    return node(SPARE_TENANTS="1")


# ---- tests -----------------------------------------------------------------

def test_spare_is_made_hidden_and_closed(spare_api, pg, data_dir, node,
                                         cloudflare):
    """A spare is an internal database (no connections, op=spare comment)
    with its own filestore copy; never listed, never given DNS, no
    connection accepted, not a tenant for any route."""
    spares = wait_ready(spare_api, pg)
    assert len(spares) == 1
    (name, (allow, comment)), = spares.items()
    assert allow is False
    assert re.fullmatch(r"nodo:op=spare;template=tcs;stamp=\S+", comment)
    assert files_of(Path(data_dir) / "filestore" / name) == \
        files_of(Path(data_dir) / "filestore" / "tcs")
    assert metric(spare_api, "nodo_spare_tenants") == 1
    # Its size counts in databases_bytes (CONTRACT 12), tenants none.
    wait_for(lambda: spare_api.get("/api/node").json()["databases_bytes"]
             > 0, 30, "the spare's size in databases_bytes")
    assert spare_api.get("/api/tenants").json()["count"] == 0
    assert spare_api.get(f"/api/tenants/{name}").status_code in (404, 422)
    with pytest.raises(psycopg2.OperationalError,
                       match="not currently accepting connections"):
        pg.su_connect(name)
    w = node("odoo-db-watcher")
    # The watcher's poll sees a tenant made by hand, never the spare.
    pg.su_exec("CREATE DATABASE handmade OWNER odoo TEMPLATE tcs")
    wait_for(lambda: any(r["name"] == "handmade.sajet.us"
                         for r in cloudflare.records(ZONE_SAJET)), 30,
             "the watcher's record of handmade")
    assert not any(PREFIX in r["name"] for r in cloudflare.records(ZONE_SAJET))
    w.stop()


def test_create_claims_a_spare(spare_api, pg, data_dir):
    """The claimed tenant is what a clone gives: its own uuid, secret,
    date, URL and password, the template's rows and files."""
    (name, _), = wait_ready(spare_api, pg).items()
    spare_api.new_log()
    r = spare_api.create("claimed", "pw-claimed")
    assert r.status_code == 201, r.text
    assert "claimed a spare of tcs" in spare_api.new_log()
    assert metric(spare_api, "nodo_spare_claims_total") == 1
    assert name not in pg.databases()
    assert not (Path(data_dir) / "filestore" / name).exists()
    # A second create right away finds no spare ready: it clones.
    r = spare_api.create("cloned", "pw-cloned")
    assert r.status_code == 201, r.text
    assert metric(spare_api, "nodo_spare_claims_total") == 1

    tmpl = icp(pg, "tcs")
    a, b = icp(pg, "claimed"), icp(pg, "cloned")
    assert a.keys() == b.keys()
    for k in ("database.uuid", "database.secret"):
        assert len({a[k], b[k], tmpl[k]}) == 3, k
    assert a["web.base.url"] == "https://claimed.sajet.us"
    assert a["web.base.url.freeze"] == "True"
    assert a["database.create_date"] != tmpl["database.create_date"]
    assert pbkdf2_sha512.verify("pw-claimed", admin_hash(pg, "claimed"))
    assert pbkdf2_sha512.verify("pw-cloned", admin_hash(pg, "cloned"))
    for q in ("SELECT count(*) FROM res_users",
              "SELECT count(*) FROM ir_attachment"):
        assert pg.su_exec(q, db="claimed") == pg.su_exec(q, db="cloned")
    row = pg.su_exec("SELECT datallowconn, shobj_description(oid, "
                     "'pg_database') FROM pg_database WHERE datname = "
                     "'claimed'")[0]
    assert row == (True, "nodo:domain=sajet.us;template=tcs")
    tfiles = files_of(Path(data_dir) / "filestore" / "tcs")
    assert files_of(Path(data_dir) / "filestore" / "claimed") == tfiles
    assert files_of(Path(data_dir) / "filestore" / "cloned") == tfiles
    # And a new spare is made once creates have stopped.
    again = wait_ready(spare_api, pg)
    assert name not in again
    assert internal_folders(data_dir) == sorted(again)


def test_zero_removes_spares(node, pg, data_dir):
    a = node(SPARE_TENANTS="2")
    assert len(wait_ready(a, pg, n=2)) == 2
    assert a.stop() == 0
    b = node(SPARE_TENANTS="0")
    wait_for(lambda: not spares_in_catalog(pg), 30, "spares dropped")
    wait_for(lambda: internal_folders(data_dir) == [], 10, "folders removed")
    assert b.get("/api/node").json()["spares"] == 0
    assert metric(b, "nodo_spare_tenants") == 0


def _stale_then_rebuilt(api, pg, data_dir, change, check):
    (old, (_, old_comment)), = wait_ready(api, pg).items()
    change()
    api.new_log()
    r = api.create("fresh", "pw")
    assert r.status_code == 201, r.text
    log = api.new_log()
    assert "claimed a spare" not in log, log
    assert metric(api, "nodo_spare_claims_total") == 0
    check()
    # The stale spare is dropped and a fresh one made.
    wait_for(lambda: old not in spares_in_catalog(pg) and
             len(ready_spares(pg)) == 1, 60, "the spare rebuilt")
    (new, (_, new_comment)), = ready_spares(pg).items()
    assert new_comment != old_comment
    assert internal_folders(data_dir) == [new]


def test_row_written_to_template_makes_spare_stale(spare_api, pg, data_dir):
    def change():
        pg.su_exec("INSERT INTO ir_config_parameter (key, value) "
                   "VALUES ('test.after_spare', 'yes')", db="tcs")

    def check():
        assert icp(pg, "fresh").get("test.after_spare") == "yes"
    try:
        _stale_then_rebuilt(spare_api, pg, data_dir, change, check)
    finally:
        pg.su_exec("DELETE FROM ir_config_parameter WHERE key = "
                   "'test.after_spare'", db="tcs")


def test_filestore_file_added_makes_spare_stale(spare_api, pg, data_dir):
    extra = Path(data_dir) / "filestore" / "tcs" / "ff" / "added-later"

    def change():
        extra.parent.mkdir(exist_ok=True)
        extra.write_bytes(b"new file")

    def check():
        assert (Path(data_dir) / "filestore" / "fresh" / "ff" /
                "added-later").read_bytes() == b"new file"
    try:
        _stale_then_rebuilt(spare_api, pg, data_dir, change, check)
    finally:
        shutil.rmtree(extra.parent, ignore_errors=True)


def test_template_remade_makes_spare_stale(spare_api, pg, data_dir):
    """Same rows, new database (new oid): the spare is stale."""
    def change():
        pg.su_exec("ALTER DATABASE tcs RENAME TO tcs_old")
        pg.su_exec("CREATE DATABASE tcs OWNER odoo TEMPLATE tcs_old")

    def check():
        assert icp(pg, "fresh")["web.base.url"] == "https://fresh.sajet.us"
    try:
        _stale_then_rebuilt(spare_api, pg, data_dir, change, check)
    finally:
        if "tcs_old" in pg.databases():
            pg.su_exec("DROP DATABASE tcs_old WITH (FORCE)")


def test_concurrent_creates_with_one_spare(spare_api, pg, data_dir):
    wait_ready(spare_api, pg)
    names = [f"conc{i}" for i in range(4)]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        replies = list(ex.map(lambda n: spare_api.create(n, "pw-" + n),
                              names))
    assert [r.status_code for r in replies] == [201] * 4, \
        [r.text for r in replies]
    assert metric(spare_api, "nodo_spare_claims_total") == 1
    uuids = set()
    for n in names:
        p = icp(pg, n)
        assert p["web.base.url"] == f"https://{n}.sajet.us"
        uuids.add(p["database.uuid"])
        assert pbkdf2_sha512.verify("pw-" + n, admin_hash(pg, n))
        assert files_of(Path(data_dir) / "filestore" / n) == \
            files_of(Path(data_dir) / "filestore" / "tcs")
    assert len(uuids) == 4
    assert {t["subdomain"] for t in
            spare_api.get("/api/tenants").json()["tenants"]} == set(names)


def _kill_when(api, pred, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            api.proc.send_signal(signal.SIGKILL)
            api.proc.wait()
            api.logf.close()
            return True
        time.sleep(0.005)
    return False


def test_crash_during_preparation_is_cleaned(node, pg, data_dir):
    """kill -9 while a spare's database is cloned, then while its folder
    is copied: the next start's clean-up removes the half-made ones and
    keeps finished spares; nothing else is left."""
    fs = Path(data_dir) / "filestore" / "tcs" / "bulk"
    fs.mkdir()
    try:
        # Enough files that the folder copy (each fsynced) takes a while.
        for i in range(1500):
            (fs / f"f{i:04d}").write_bytes(os.urandom(256))

        def cloning():
            return bool(pg.su_exec(
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE "
                "'CREATE DATABASE \"_nodo_s%'"))

        def copying():
            half = [n for n, v in spares_in_catalog(pg).items()
                    if not v[1].startswith("nodo:op=spare")]
            return any(n in internal_folders(data_dir) for n in half)

        for pred in (cloning, copying):
            a = node(SPARE_TENANTS="1")
            assert _kill_when(a, pred), "never caught it half made"
        b = node(SPARE_TENANTS="1")
        spares = wait_ready(b, pg, timeout=120)
        assert len(spares) == 1
        assert internal_dbs(pg) == list(spares)
        assert internal_folders(data_dir) == list(spares)
        assert "removing" in b.log()
        assert b.stop() == 0
        # And with SPARE_TENANTS=0 nothing internal stays.
        node(SPARE_TENANTS="0")
        wait_for(lambda: internal_dbs(pg) == [] and
                 internal_folders(data_dir) == [], 30, "all removed")
    finally:
        shutil.rmtree(fs, ignore_errors=True)


def test_reload_turns_spares_on_and_off(node, pg, data_dir):
    """SPARE_TENANTS is reloadable: the spares thread reads it each turn
    (it read the start's settings for ever before)."""
    api = node(SPARE_TENANTS="0")
    time.sleep(2)
    assert spares_in_catalog(pg) == {}
    api.env.update(SPARE_TENANTS="1")
    api.write_env()
    api.new_log()
    api.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: "SPARE_TENANTS changed" in api.log(), 30,
             "the reload logged")
    r = api.get("/api/node")
    assert r.status_code == 200, (r.text, api.log()[-2000:])
    assert len(wait_ready(api, pg, n=1)) == 1
    api.env.update(SPARE_TENANTS="0")
    api.write_env()
    api.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: not spares_in_catalog(pg), 60, "spares dropped")
    wait_for(lambda: internal_folders(data_dir) == [], 10, "folders removed")
