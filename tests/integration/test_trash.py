"""The trash (CONTRACT section 9): DELETE to the trash, GET /api/trash,
restore, purge, expiry, and the clean-up of interrupted trash operations,
against the real PostgreSQL and the fake Cloudflare."""
import datetime
import re
import time
from pathlib import Path

from passlib.hash import pbkdf2_sha512

from conftest import FILESTORE_FILES, ZONE_OTRO, ZONE_SAJET, wait_for

ID = re.compile(r"^[0-9a-f]{16}$")


def icp(pg, db):
    c = pg.connect(db)
    with c.cursor() as cur:
        cur.execute("SELECT key, value FROM ir_config_parameter")
        rows = dict(cur.fetchall())
    c.close()
    return rows


def admin_hash(pg, db):
    c = pg.connect(db)
    with c.cursor() as cur:
        cur.execute("SELECT password FROM res_users WHERE login = 'admin'")
        h = cur.fetchone()[0]
    c.close()
    return h


def dbinfo(pg, name):
    """(datallowconn, comment) of database name, or None."""
    r = pg.su_exec("SELECT datallowconn, shobj_description(oid, "
                   "'pg_database') FROM pg_database WHERE datname = %s",
                   args=(name,))
    return r[0] if r else None


def internal(pg):
    return sorted(d for d in pg.databases() if d.startswith("_nodo_"))


def folders(data_dir):
    fs = Path(data_dir) / "filestore"
    return sorted(p.name for p in fs.iterdir() if p.name != "tcs")


def files_of(data_dir, name):
    root = Path(data_dir) / "filestore" / name
    return {str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


def names(cloudflare, zone=ZONE_SAJET):
    return sorted(r["name"] for r in cloudflare.records(zone))


def rfc3339(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def trash_state(pg, data_dir):
    """What a refused request must not change."""
    return (sorted((d, dbinfo(pg, d)) for d in pg.databases()),
            folders(data_dir))


def test_delete_moves_to_trash(api, pg, data_dir, cloudflare):
    assert api.create("acme", "pw-acme").status_code == 201
    before = icp(pg, "acme")
    assert names(cloudflare) == ["acme.sajet.us"]
    t0 = time.time()
    r = api.delete("/api/tenant", params={"subdomain": "acme"})
    assert r.status_code == 200, r.text
    j = r.json()
    assert j["subdomain"] == "acme" and j["deleted"] is True
    assert j["purged"] is False
    assert ID.match(j["trash"]["id"]), j
    exp = rfc3339(j["trash"]["expires_at"])
    assert abs(exp - (t0 + 7 * 86400)) < 120, j
    assert j["dns"] == {"status": "deleted", "name": "acme.sajet.us"}
    assert names(cloudflare) == []
    db = "_nodo_t" + j["trash"]["id"]
    assert "acme" not in pg.databases()
    allow, com = dbinfo(pg, db)
    assert allow is False
    assert re.match(r"^nodo:op=trash;name=acme;domain=sajet\.us;"
                    r"template=tcs;deleted_at=\d+;expires_at=\d+;fs=1$",
                    com), com
    assert f"expires_at={int(exp)}" in com
    # The folder moved beside the database; the name is free.
    assert folders(data_dir) == [db]
    assert files_of(data_dir, db) == FILESTORE_FILES
    assert api.get("/api/tenants").json()["count"] == 0
    assert api.get("/api/tenants/acme").status_code == 404
    r = api.get("/api/trash")
    assert r.status_code == 200
    t = r.json()
    assert t["count"] == 1
    e = t["trash"][0]
    assert e["id"] == j["trash"]["id"] and e["subdomain"] == "acme"
    assert e["domain"] == "sajet.us"
    assert e["expires_at"] == j["trash"]["expires_at"]
    assert abs(rfc3339(e["deleted_at"]) - t0) < 120
    assert e["database_bytes"] > 0
    assert e["filestore_bytes"] == sum(len(v)
                                       for v in FILESTORE_FILES.values())
    assert api.get("/api/node").json()["trash"] == 1
    m = api.get("/metrics").text
    assert re.search(r"^nodo_trash_tenants 1$", m, re.M), m
    # A second delete of the name: no tenant any more.
    r = api.delete("/api/tenant", params={"subdomain": "acme"})
    assert r.status_code == 404
    assert before["database.uuid"]  # (used by the round trip below)


def test_round_trip(api, pg, data_dir, cloudflare):
    """Delete, create another tenant under the freed name, restore the
    first under a new name: both work, each with its own identity."""
    assert api.create("acme", "first-pw").status_code == 201
    first = icp(pg, "acme")
    (Path(data_dir) / "filestore" / "acme" / "mine.txt").write_bytes(b"A")
    tid = api.delete("/api/tenant",
                     params={"subdomain": "acme"}).json()["trash"]["id"]
    r = api.create("acme", "second-pw")
    assert r.status_code == 201, r.text
    second = icp(pg, "acme")
    assert second["database.uuid"] != first["database.uuid"]
    r = api.post(f"/api/trash/{tid}/restore",
                 json={"subdomain": "acme2", "domain": "otro.dominio"})
    assert r.status_code == 201, r.text
    j = r.json()
    assert j["subdomain"] == "acme2" and j["database"] == "acme2"
    assert j["domain"] == "otro.dominio"
    assert j["url"] == "https://acme2.otro.dominio"
    assert j["template_db"] == "tcs"
    assert j["dns"]["status"] == "created"
    assert j["dns"]["name"] == "acme2.otro.dominio"
    assert names(cloudflare, ZONE_OTRO) == ["acme2.otro.dominio"]
    got = icp(pg, "acme2")
    for k in ("database.uuid", "database.secret", "database.create_date"):
        assert got[k] == first[k], k
    assert got["web.base.url"] == "https://acme2.otro.dominio"
    assert got["web.base.url.freeze"] == "True"
    assert pbkdf2_sha512.verify("first-pw", admin_hash(pg, "acme2"))
    assert pbkdf2_sha512.verify("second-pw", admin_hash(pg, "acme"))
    assert icp(pg, "acme")["database.uuid"] == second["database.uuid"]
    want = dict(FILESTORE_FILES, **{"mine.txt": b"A"})
    assert files_of(data_dir, "acme2") == want
    assert files_of(data_dir, "acme") == FILESTORE_FILES
    assert dbinfo(pg, "acme2") == (True,
                                   "nodo:domain=otro.dominio;template=tcs")
    listed = {t["subdomain"]: t["domain"]
              for t in api.get("/api/tenants").json()["tenants"]}
    assert listed == {"acme": "sajet.us", "acme2": "otro.dominio"}
    assert api.get("/api/trash").json() == {"trash": [], "count": 0}
    assert internal(pg) == []
    # The restored tenant is a tenant like any other: delete it again.
    r = api.delete("/api/tenant", params={"subdomain": "acme2"})
    assert r.status_code == 200 and r.json()["purged"] is False


def test_restore_to_its_own_name(api, pg, data_dir, cloudflare):
    assert api.create("back", "pw").status_code == 201
    uid = icp(pg, "back")["database.uuid"]
    tid = api.delete("/api/tenant",
                     json={"subdomain": "back"}).json()["trash"]["id"]
    r = api.post(f"/api/trash/{tid}/restore")
    assert r.status_code == 201, r.text
    assert r.json()["url"] == "https://back.sajet.us"
    assert icp(pg, "back")["database.uuid"] == uid
    assert icp(pg, "back")["web.base.url"] == "https://back.sajet.us"
    assert files_of(data_dir, "back") == FILESTORE_FILES
    assert names(cloudflare) == ["back.sajet.us"]
    # The entry is gone: restoring it again is 404.
    r = api.post(f"/api/trash/{tid}/restore")
    assert r.status_code == 404 and r.json()["code"] == "trash_not_found"


def test_restore_refusals_change_nothing(api, pg, data_dir):
    assert api.create("one", "pw").status_code == 201
    tid = api.delete("/api/tenant",
                     params={"subdomain": "one"}).json()["trash"]["id"]
    assert api.create("one", "pw").status_code == 201
    state = trash_state(pg, data_dir)
    cases = [
        (None, 409, "tenant_exists"),  # its own name is taken again
        ({"subdomain": "one"}, 409, "tenant_exists"),
        ({"subdomain": "tcs"}, 422, "reserved_name"),
        ({"subdomain": "postgres"}, 422, "reserved_name"),
        ({"subdomain": "_nodo_x1"}, 422, "invalid_subdomain"),
        ({"subdomain": "Bad Name"}, 422, "invalid_subdomain"),
        ({"subdomain": "x"}, 422, "invalid_subdomain"),
        ({"subdomain": "ok2", "domain": "evil.example"}, 422,
         "unknown_domain"),
        ({"subdomain": 5}, 400, "invalid_request"),
    ]
    for body, status, code in cases:
        kw = {"json": body} if body is not None else {}
        r = api.post(f"/api/trash/{tid}/restore", **kw)
        assert r.status_code == status, (body, r.text)
        assert r.json()["code"] == code, (body, r.text)
        assert "detail" in r.json()
        assert trash_state(pg, data_dir) == state, body
    r = api.post(f"/api/trash/{tid}/restore", data=b'{"subdomain": "a\\u0000b"}',
                 headers={**api.headers(), "Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    # A folder left under the name blocks it (409), and changes nothing.
    (Path(data_dir) / "filestore" / "blocked").mkdir()
    state = trash_state(pg, data_dir)
    r = api.post(f"/api/trash/{tid}/restore", json={"subdomain": "blocked"})
    assert r.status_code == 409, r.text
    assert trash_state(pg, data_dir) == state
    assert api.get("/api/trash").json()["count"] == 1


def test_hostile_ids(api, pg, data_dir):
    assert api.create("host", "pw").status_code == 201
    tid = api.delete("/api/tenant",
                     params={"subdomain": "host"}).json()["trash"]["id"]
    state = trash_state(pg, data_dir)
    bad = ["..%2F..%2Fetc", "%2e%2e", "0" * 15, "0" * 17, "g" * 16,
           tid.upper() if tid.upper() != tid else "ABCDEF0123456789",
           "a" * 300, "%00", tid + "%00", "%00" + tid[1:], "0123456789abcdef",
           "t" + tid, "_nodo_t" + tid, tid[:-1] + "%20"]
    for i in bad:
        for method, path in (("POST", f"/api/trash/{i}/restore"),
                             ("DELETE", f"/api/trash/{i}")):
            r = api.request(method, path)
            assert r.status_code in (404, 422), (i, method, r.text)
            assert r.json()["code"] in ("trash_not_found", "not_found"), i
            assert trash_state(pg, data_dir) == state, (i, method)
    # A NUL in a path segment never names what comes before it.
    assert api.create("nul", "pw").status_code == 201
    r = api.get("/api/tenants/nul%00")
    assert r.status_code in (404, 422), r.text
    r = api.post("/api/tenants/nul%00/password",
                 json={"admin_password": "changed"})
    assert r.status_code in (404, 422), r.text
    assert pbkdf2_sha512.verify("pw", admin_hash(pg, "nul"))
    state = trash_state(pg, data_dir)
    # A path with more segments is no route at all.
    r = api.request("DELETE", f"/api/trash/{tid}/x")
    assert r.status_code == 404
    # The key is needed: nothing happens without it.
    r = api.request("DELETE", f"/api/trash/{tid}", key=False)
    assert r.status_code == 401
    r = api.request("POST", f"/api/trash/{tid}/restore", key=False)
    assert r.status_code == 401
    r = api.get("/api/trash", key=False)
    assert r.status_code == 401
    assert trash_state(pg, data_dir) == state
    # Wrong methods.
    assert api.request("PUT", "/api/trash").status_code == 405
    assert api.request("GET", f"/api/trash/{tid}/restore").status_code == 405


def test_purge_an_entry(api, pg, data_dir):
    assert api.create("gone", "pw").status_code == 201
    tid = api.delete("/api/tenant",
                     params={"subdomain": "gone"}).json()["trash"]["id"]
    assert internal(pg) == ["_nodo_t" + tid]
    r = api.delete(f"/api/trash/{tid}")
    assert r.status_code == 200, r.text
    assert r.json() == {"id": tid, "purged": True}
    assert internal(pg) == []
    assert folders(data_dir) == []
    r = api.delete(f"/api/trash/{tid}")
    assert r.status_code == 404 and r.json()["code"] == "trash_not_found"
    assert api.get("/api/node").json()["trash"] == 0


def test_purge_true_is_final(api, pg, data_dir, cloudflare):
    for name, kw in (("fin1", {"params": {"subdomain": "fin1",
                                          "purge": "true"}}),
                     ("fin2", {"json": {"subdomain": "fin2",
                                        "purge": True}})):
        assert api.create(name, "pw").status_code == 201
        r = api.delete("/api/tenant", **kw)
        assert r.status_code == 200, r.text
        j = r.json()
        assert j["purged"] is True and "trash" not in j, j
        assert j["dns"]["status"] == "deleted"
        assert name not in pg.databases()
        assert internal(pg) == []
        assert folders(data_dir) == []
    assert api.get("/api/trash").json()["count"] == 0
    # purge=false is the trash; bad values are 400 and delete nothing.
    assert api.create("keep", "pw").status_code == 201
    for kw in ({"params": {"subdomain": "keep", "purge": "yes"}},
               {"params": {"subdomain": "keep", "purge": ""}},
               {"json": {"subdomain": "keep", "purge": "true"}},
               {"json": {"subdomain": "keep", "purge": 1}},
               {"params": {"subdomain": "keep", "purge": "true"},
                "json": {"purge": False}}):
        r = api.delete("/api/tenant", **kw)
        assert r.status_code == 400, (kw, r.text)
        assert r.json()["code"] == "invalid_request"
        assert "purge" in r.json()["detail"]
        assert "keep" in pg.databases()
    r = api.delete("/api/tenant", params={"subdomain": "keep",
                                          "purge": "false"})
    assert r.status_code == 200 and r.json()["purged"] is False


def test_retention_zero_makes_deletes_final(node, pg, data_dir):
    api = node(TRASH_RETENTION_DAYS="0")
    assert api.create("zero", "pw").status_code == 201
    r = api.delete("/api/tenant", params={"subdomain": "zero"})
    assert r.status_code == 200, r.text
    assert r.json()["purged"] is True and "trash" not in r.json()
    assert internal(pg) == [] and folders(data_dir) == []
    assert "zero" not in pg.databases()


def test_retention_setting_is_checked(node):
    for bad in ("-1", "3651", "seven", "1.5"):
        d = node(TRASH_RETENTION_DAYS=bad, start=False)
        d.start(wait=False)
        rc = d.proc.wait(30)
        assert rc == 78, (bad, rc)
        assert "TRASH_RETENTION_DAYS" in d.log(), d.log()


def test_retention_days_fix_expiry(node, pg):
    api = node(TRASH_RETENTION_DAYS="2")
    assert api.create("two", "pw").status_code == 201
    t0 = time.time()
    j = api.delete("/api/tenant", params={"subdomain": "two"}).json()
    assert abs(rfc3339(j["trash"]["expires_at"]) - (t0 + 2 * 86400)) < 120


def expire(pg, db):
    """Moves an entry's expires_at into the past, as time would."""
    _, com = dbinfo(pg, db)
    com = re.sub(r"expires_at=\d+", "expires_at=1000", com)
    pg.su_exec(f'COMMENT ON DATABASE "{db}" IS %s', args=(com,))


def test_expired_entries_are_purged(node, pg, data_dir):
    api = node()
    for n in ("old", "new"):
        assert api.create(n, "pw").status_code == 201
    old = api.delete("/api/tenant",
                     params={"subdomain": "old"}).json()["trash"]["id"]
    new = api.delete("/api/tenant",
                     params={"subdomain": "new"}).json()["trash"]["id"]
    ids = [e["id"] for e in api.get("/api/trash").json()["trash"]]
    assert ids == [new, old] or sorted(ids) == sorted([new, old])
    expire(pg, "_nodo_t" + old)
    # The clean-up runs at start (and every few minutes).
    assert api.stop() == 0
    api.start()
    wait_for(lambda: internal(pg) == ["_nodo_t" + new], 30,
             "the expired entry purged")
    assert folders(data_dir) == ["_nodo_t" + new]
    assert [e["id"] for e in api.get("/api/trash").json()["trash"]] == [new]
    assert "purging trash entry " + old in api.log()


def make_entry(pg, data_dir, api, name, tid, extra="", allow=False,
               fs_at=None):
    """A trash entry made by hand the way a crash leaves one: the tenant
    name's database renamed to _nodo_t<tid> with its record; its folder
    at filestore/<fs_at> (default: beside it)."""
    assert api.create(name, "pw").status_code == 201
    db = "_nodo_t" + tid
    pg.su_exec(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
    pg.su_exec(f'SELECT pg_terminate_backend(pid) FROM pg_stat_activity '
               f"WHERE datname = '{name}'")
    pg.su_exec(f'ALTER DATABASE "{name}" RENAME TO "{db}"')
    now = int(time.time())
    pg.su_exec(f'COMMENT ON DATABASE "{db}" IS %s', args=(
        f"nodo:op=trash;name={name};domain=sajet.us;template=tcs;"
        f"deleted_at={now};expires_at={now + 86400};fs=1{extra}",))
    if allow:
        pg.su_exec(f'ALTER DATABASE "{db}" ALLOW_CONNECTIONS true')
    fs = Path(data_dir) / "filestore"
    if fs_at is not None:
        (fs / name).rename(fs / fs_at)
    else:
        (fs / name).rename(fs / db)
    return db


def test_cleanup_finishes_interrupted_operations(node, pg, data_dir):
    api = node()
    # A delete stopped between the database's move and the folder's.
    a = make_entry(pg, data_dir, api, "dela", "00000000000000a1",
                   fs_at="dela")
    # A restore stopped after the folder's move, connections still on.
    b = make_entry(pg, data_dir, api, "resb", "00000000000000b2",
                   extra=";restore=resb2", allow=True, fs_at="resb2")
    # A purge stopped after its intent.
    c = make_entry(pg, data_dir, api, "purc", "00000000000000c3",
                   extra=";purge=1")
    # A purge stopped after the drop: the folder alone.
    (Path(data_dir) / "filestore" / "_nodo_t00000000000000d4").mkdir()
    # Entries in good order stay as they are.
    e = make_entry(pg, data_dir, api, "okay", "00000000000000e5")
    # The name dela is blocked by its folder until the clean-up.
    r = api.create("dela", "pw")
    assert r.status_code == 409, r.text
    assert api.stop() == 0
    api.start()
    wait_for(lambda: c not in pg.databases(), 30, "the purge finished")
    assert internal(pg) == sorted([a, b, e])
    assert folders(data_dir) == sorted([a, b, e])
    assert dbinfo(pg, b)[0] is False
    assert ";restore=" not in dbinfo(pg, b)[1]
    for db in (a, b, e):
        assert files_of(data_dir, db) == FILESTORE_FILES, db
    listed = {x["id"] for x in api.get("/api/trash").json()["trash"]}
    assert listed == {a[7:], b[7:], e[7:]}
    # Both names are free again, and the entries restore.
    assert api.create("dela", "pw").status_code == 201
    r = api.post(f"/api/trash/{a[7:]}/restore", json={"subdomain": "dela2"})
    assert r.status_code == 201, r.text
    r = api.post(f"/api/trash/{b[7:]}/restore", json={"subdomain": "resb2"})
    assert r.status_code == 201, r.text
    assert files_of(data_dir, "resb2") == FILESTORE_FILES


def test_cleanup_still_drops_creation_debris(node, pg, data_dir):
    """A legacy internal database without op (a crashed create) goes, its
    folder too; a trash entry beside it stays."""
    api = node()
    e = make_entry(pg, data_dir, api, "stay", "00000000000000f6")
    pg.su_exec("CREATE DATABASE _nodo_0123456789abcdef OWNER odoo "
               "TEMPLATE tcs")
    pg.su_exec("COMMENT ON DATABASE _nodo_0123456789abcdef IS "
               "'nodo:domain=sajet.us;creating=xyz'")
    (Path(data_dir) / "filestore" / "_nodo_0123456789abcdef").mkdir()
    assert api.stop() == 0
    api.start()
    wait_for(lambda: internal(pg) == [e], 30, "the debris dropped")
    assert folders(data_dir) == [e]
