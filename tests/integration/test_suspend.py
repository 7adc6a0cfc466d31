"""Suspend and resume (CONTRACT sections 3 and 10, DESIGN.md "Suspend and
resume"), against the real PostgreSQL cluster and the fake Cloudflare."""
import threading
from pathlib import Path

import psycopg2
import pytest

from conftest import NODE_ROLE, wait_for
from test_watcher import ours, polls, wait_polls, watcher


def state_of(pg, db):
    return pg.su_exec(
        "SELECT datallowconn, coalesce(shobj_description(oid,"
        " 'pg_database'), '') FROM pg_database WHERE datname = %s", args=(db,))


def sessions(pg, db):
    return pg.su_exec("SELECT count(*) FROM pg_stat_activity"
                      " WHERE datname = %s", args=(db,))[0][0]


def listed(api, sub):
    r = api.get("/api/tenants")
    assert r.status_code == 200, r.text
    items = [t for t in r.json()["tenants"] if t["subdomain"] == sub]
    return items[0] if items else None


def refused(pg, db):
    try:
        pg.connect(db).close()
    except psycopg2.OperationalError as e:
        return "not currently accepting connections" in str(e)
    return False


def test_suspend_ends_sessions_keeps_everything_and_resume(api, pg, data_dir,
                                                           cloudflare):
    assert api.create("sus1").status_code == 201
    fs = Path(data_dir) / "filestore" / "sus1"
    files = sorted(p.name for p in fs.rglob("*"))
    assert files
    live = pg.connect("sus1")
    with live.cursor() as cur:
        cur.execute("INSERT INTO res_users (login, active, share) VALUES"
                    " ('u2', true, false)")
    r = api.post("/api/tenants/sus1/suspend")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["state"] == "suspended"
    # Counted while it still allowed connections: admin and u2.
    assert d["users"] == 2
    assert d["created_at"] is not None and d["created_at"].endswith("Z")
    assert d["template_db"] == "tcs" and d["domain"] == "sajet.us"
    # The open session is gone, a new one is refused.
    with pytest.raises(psycopg2.Error):
        with live.cursor() as cur:
            cur.execute("SELECT 1")
    live.close()
    assert refused(pg, "sus1")
    assert sessions(pg, "sus1") == 0
    allow, comment = state_of(pg, "sus1")[0]
    assert allow is False
    assert comment.startswith("nodo:domain=sajet.us;template=tcs;")
    assert ";suspended=1;users=2;created_at=" in comment
    # Data, files and DNS kept.
    assert "sus1" in pg.databases()
    assert sorted(p.name for p in fs.rglob("*")) == files
    assert ours(cloudflare, "sus1.sajet.us")
    # Listed, detailed, counted.
    assert listed(api, "sus1")["state"] == "suspended"
    det = api.get("/api/tenants/sus1").json()
    assert det["state"] == "suspended" and det["users"] == 2
    assert det["created_at"] == d["created_at"]
    node = api.get("/api/node").json()
    assert node["suspended"] == 1 and node["tenants"] == 1
    m = api.get("/metrics").text
    assert 'nodo_tenants{state="suspended"} 1' in m
    assert 'nodo_tenants{state="active"} 0' in m
    # Idempotent: nothing changes, the same detail.
    before = state_of(pg, "sus1")
    r2 = api.post("/api/tenants/sus1/suspend")
    assert r2.status_code == 200 and r2.json()["state"] == "suspended"
    assert state_of(pg, "sus1") == before
    # Resume: connections again, the mark gone, the comment as it was.
    r = api.post("/api/tenants/sus1/resume")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "active" and r.json()["users"] == 2
    assert state_of(pg, "sus1")[0] == (True,
                                       "nodo:domain=sajet.us;template=tcs")
    pg.connect("sus1").close()
    assert listed(api, "sus1")["state"] == "active"
    assert api.get("/api/node").json()["suspended"] == 0
    before = state_of(pg, "sus1")
    assert api.post("/api/tenants/sus1/resume").status_code == 200
    assert state_of(pg, "sus1") == before
    # No DNS call for either.
    assert not [q for q in cloudflare.requests if q["method"] == "DELETE"]


def test_list_shape_and_domain_filter(api, pg):
    assert api.create("sus2", domain="otro.dominio").status_code == 201
    assert api.create("act2").status_code == 201
    assert api.post("/api/tenants/sus2/suspend").status_code == 200
    r = api.get("/api/tenants").json()
    assert r["count"] == 2
    for t in r["tenants"]:
        assert set(t) == {"subdomain", "database", "domain", "url", "state"}
    assert [(t["subdomain"], t["state"]) for t in r["tenants"]] == [
        ("act2", "active"), ("sus2", "suspended")]
    r = api.get("/api/tenants?domain=otro.dominio").json()
    assert [t["subdomain"] for t in r["tenants"]] == ["sus2"]


def test_hostile_names_and_key(api, pg):
    assert api.create("sus3").status_code == 201
    before = state_of(pg, "sus3")
    for verb in ("suspend", "resume"):
        for bad in ("A", "a!b", "-ab", "x" * 64, "_nodo_abc", "a%27b"):
            r = api.post(f"/api/tenants/{bad}/{verb}")
            assert r.status_code == 422, (bad, r.text)
            assert r.json()["code"] == "invalid_subdomain"
            assert "subdomain" in r.json()["detail"]
        for notenant in ("tcs", "postgres", "template1", "nosuch"):
            r = api.post(f"/api/tenants/{notenant}/{verb}")
            assert r.status_code == 404, (notenant, r.text)
            assert r.json()["code"] == "tenant_not_found"
        r = api.post(f"/api/tenants/sus3/{verb}", key=False)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
        r = api.get(f"/api/tenants/sus3/{verb}")
        assert r.status_code == 405 and r.headers["Allow"] == "POST"
    assert state_of(pg, "sus3") == before
    assert state_of(pg, "tcs")[0][0] is True
    # Another role's database closed to connections is no tenant.
    pg.su_exec("CREATE DATABASE theirs2")
    try:
        assert api.post("/api/tenants/theirs2/suspend").status_code == 404
    finally:
        pg.su_exec("DROP DATABASE theirs2")
    # Ours, closed, but without the mark: not a tenant, not resumed.
    pg.su_exec(f"CREATE DATABASE closed2 OWNER {NODE_ROLE} TEMPLATE tcs")
    pg.su_exec("ALTER DATABASE closed2 ALLOW_CONNECTIONS false")
    assert api.post("/api/tenants/closed2/resume").status_code == 404
    assert state_of(pg, "closed2")[0][0] is False
    assert listed(api, "closed2") is None


def test_delete_of_suspended_tenant(api, pg, data_dir, cloudflare):
    assert api.create("sus4").status_code == 201
    assert api.post("/api/tenants/sus4/suspend").status_code == 200
    r = api.request("DELETE", "/api/tenant?subdomain=sus4")
    assert r.status_code == 200, r.text
    assert "sus4" not in pg.databases()
    assert not (Path(data_dir) / "filestore" / "sus4").exists()
    assert not ours(cloudflare, "sus4.sajet.us")
    assert api.post("/api/tenants/sus4/resume").status_code == 404


def test_password_and_backup_of_suspended_tenant_say_resume(api, pg):
    assert api.create("sus5").status_code == 201
    assert api.post("/api/tenants/sus5/suspend").status_code == 200
    r = api.post("/api/tenants/sus5/password",
                 json={"admin_password": "nuevo123"})
    assert r.status_code == 404 and "resume" in r.json()["detail"]
    r = api.get("/api/tenants/sus5/backup")
    assert r.status_code == 404 and "resume" in r.json()["detail"]
    assert state_of(pg, "sus5")[0][0] is False


def test_watcher_keeps_record_of_suspended_tenant(node, pg, cloudflare):
    api = node()
    # Orphan removal on, with a short grace: a tenant that dropped out of
    # the list loses its record within a few polls. closed6 (closed by
    # hand, no mark) is the control: its record goes while sus6's stays.
    # keep6 keeps the list non-empty (an empty list deletes nothing).
    w = watcher(node, DB_WATCHER_INTERVAL="1", WATCHER_DELETE_ORPHANS="true",
                WATCHER_ORPHAN_GRACE_SECONDS="1")
    for name in ("keep6", "sus6", "closed6"):
        assert api.create(name).status_code == 201
        wait_for(lambda: f"record {name}.sajet.us already in place"
                 in w.log(), 30, f"the watcher to see {name}'s record")
    n = len(cloudflare.requests)
    assert api.post("/api/tenants/sus6/suspend").status_code == 200
    pg.su_exec("ALTER DATABASE closed6 ALLOW_CONNECTIONS false")
    wait_for(lambda: not ours(cloudflare, "closed6.sajet.us"), 60,
             "closed6's record deleted as an orphan")
    wait_polls(w, 2)
    assert ours(cloudflare, "sus6.sajet.us")
    assert ours(cloudflare, "keep6.sajet.us")
    gone = [q["path"] for q in cloudflare.requests[n:]
            if q["method"] == "DELETE"]
    assert len(gone) == 1, gone
    assert not [q for q in cloudflare.requests[n:]
                if q["method"] in ("POST", "PUT", "PATCH")]
    assert polls(w.log())


def test_concurrent_suspend_and_delete_of_one_name(api, pg):
    """The busy-name table: a suspend and a delete of one name never run
    at once; whichever loses gets 409 (or 404 once the other finished)."""
    for i in range(3):
        name = f"race{i}"
        assert api.create(name).status_code == 201
        out = {}

        def sus():
            out["s"] = api.post(f"/api/tenants/{name}/suspend")

        def dele():
            out["d"] = api.request("DELETE", f"/api/tenant?subdomain={name}")

        ts = [threading.Thread(target=sus), threading.Thread(target=dele)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        assert out["s"].status_code in (200, 404, 409), out["s"].text
        assert out["d"].status_code in (200, 409), out["d"].text
        if out["d"].status_code == 409:
            assert out["d"].json()["code"] == "tenant_exists"
            assert out["s"].status_code == 200
            assert api.request(
                "DELETE", f"/api/tenant?subdomain={name}").status_code == 200
        assert name not in pg.databases()


def test_half_done_suspend_is_finished_at_start(node, pg):
    """A kill -9 after the transaction (mark + closed) and before the
    sessions were ended leaves sessions on a suspended tenant; a marked
    tenant that still allows connections (a hand edit, an older build) is
    a suspend not finished. The next start finishes both."""
    api = node()
    assert api.create("half1").status_code == 201
    assert api.create("half2").status_code == 201
    api.kill()
    # half1: what a kill -9 between the commit and the sessions' end left.
    live = pg.connect("half1")
    pg.su_exec("BEGIN; COMMENT ON DATABASE half1 IS"
               " 'nodo:domain=sajet.us;template=tcs;suspended=1;users=1';"
               " ALTER DATABASE half1 ALLOW_CONNECTIONS false; COMMIT")
    assert sessions(pg, "half1") == 1
    # half2: the mark alone.
    live2 = pg.connect("half2")
    pg.su_exec("COMMENT ON DATABASE half2 IS"
               " 'nodo:domain=sajet.us;template=tcs;suspended=1'")
    api2 = node()
    wait_for(lambda: sessions(pg, "half1") == 0 and
             sessions(pg, "half2") == 0, 30, "sessions ended at start")
    assert state_of(pg, "half1")[0][0] is False
    assert state_of(pg, "half2")[0][0] is False
    assert refused(pg, "half2")
    for c in (live, live2):
        with pytest.raises(psycopg2.Error):
            with c.cursor() as cur:
                cur.execute("SELECT 1")
        c.close()
    assert "finishing the suspend of half2" in api2.log()
    d = api2.get("/api/tenants/half2").json()
    assert d["state"] == "suspended"
    # The count is taken while finishing (it still allowed connections).
    assert d["users"] == 1
    assert api2.post("/api/tenants/half2/resume").json()["state"] == "active"
    assert api2.post("/api/tenants/half1/resume").status_code == 200
    pg.connect("half1").close()
    pg.connect("half2").close()


def test_suspend_reply_refreshes_list_at_once(api, pg):
    """tenant_cache_changed after a suspend: the next list says so."""
    assert api.create("sus7").status_code == 201
    assert listed(api, "sus7")["state"] == "active"
    assert api.post("/api/tenants/sus7/suspend").status_code == 200
    assert listed(api, "sus7")["state"] == "suspended"
    assert api.post("/api/tenants/sus7/resume").status_code == 200
    assert listed(api, "sus7")["state"] == "active"
    # A suspend by hand (as another node process would) is seen by the
    # catalog check: the comment and datallowconn are in its hash.
    pg.su_exec("BEGIN; COMMENT ON DATABASE sus7 IS"
               " 'nodo:domain=sajet.us;template=tcs;suspended=1';"
               " ALTER DATABASE sus7 ALLOW_CONNECTIONS false; COMMIT")
    wait_for(lambda: listed(api, "sus7")["state"] == "suspended", 10,
             "the list to see a suspend made by hand")
