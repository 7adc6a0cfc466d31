"""Tenant detail, streamed backups in Odoo's format, admin password reset
(CONTRACT section 10), against the real PostgreSQL cluster."""
import io
import json
import os
import re
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import psycopg2
import pytest
import requests
from passlib.hash import pbkdf2_sha512

from conftest import API_KEY, FILESTORE_FILES, NODE_PASSWORD, NODE_ROLE, PGBIN

ZIP_NAME = re.compile(r'^attachment; filename="([a-z0-9_-]+)_'
                      r'(\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d)\.zip"$')


def fs_of(data_dir, db):
    return Path(data_dir) / "filestore" / db


def tree(root):
    """{relative path: bytes} of the regular files under root, no links."""
    out = {}
    for dirpath, dirs, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            if p.is_symlink() or not p.is_file():
                continue
            out[str(p.relative_to(root))] = p.read_bytes()
    return out


def q(pg, db, sql, args=None):
    c = pg.connect(db)
    try:
        with c.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall() if cur.description else None
    finally:
        c.close()


def tables(pg, db):
    return [r[0] for r in q(pg, db,
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " ORDER BY 1")]


def table_rows(pg, db, table):
    return q(pg, db, f'SELECT t::text FROM "{table}" t ORDER BY t::text')


def get_backup(api, sub, timeout=600):
    """A streamed GET on a session of its own: requests.get() would close
    the connection as soon as it returns (its session ends)."""
    s = requests.Session()
    r = s.get(f"{api.url}/api/tenants/{sub}/backup", stream=True,
              headers=api.headers(), timeout=timeout)
    r.session_kept = s
    return r


def psql_restore(pg, db, dump_path):
    """What Odoo's restore_db does: an empty database, then psql -q -f."""
    pg.su_exec(f'CREATE DATABASE "{db}" OWNER {NODE_ROLE} '
               "ENCODING 'unicode' TEMPLATE template0")
    env = dict(os.environ, PGPASSWORD=NODE_PASSWORD)
    r = subprocess.run([str(PGBIN / "psql"), "-q", "-h", pg.host, "-p",
                        str(pg.port), "-U", NODE_ROLE, "-d", db, "-f",
                        str(dump_path)], env=env, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stderr
    return r


def test_detail_fields(api, pg, data_dir):
    assert api.create("det1").status_code == 201
    fs = fs_of(data_dir, "det1")
    # A link inside the filestore is neither followed nor counted.
    big = data_dir / "outside.bin"
    big.write_bytes(b"x" * 100000)
    (fs / "link").symlink_to(big)
    r = api.get("/api/tenants/det1")
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {"subdomain", "database", "domain", "url", "state",
                      "created_at", "template_db", "database_bytes",
                      "filestore_bytes", "filestore_files", "users"}
    assert d["subdomain"] == d["database"] == "det1"
    assert d["domain"] == "sajet.us"
    assert d["url"] == "https://det1.sajet.us"
    assert d["state"] == "active"
    assert d["template_db"] == "tcs"
    files = tree(fs)
    assert d["filestore_files"] == len(files) == len(FILESTORE_FILES)
    assert d["filestore_bytes"] == sum(len(v) for v in files.values())
    size = q(pg, "postgres", "SELECT pg_database_size('det1')")[0][0]
    assert abs(d["database_bytes"] - size) < 1 << 20
    # admin only: __system__ is inactive, portal is share = true
    assert d["users"] == 1
    q(pg, "det1", "INSERT INTO res_users (login, active, share) VALUES"
      " ('u2', true, false), ('u3', true, NULL), ('u4', false, false),"
      " ('p2', true, true)")
    assert api.get("/api/tenants/det1").json()["users"] == 3
    created = q(pg, "det1", "SELECT value FROM ir_config_parameter"
                " WHERE key = 'database.create_date'")[0][0]
    assert d["created_at"] == created.replace(" ", "T") + "Z"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", d["created_at"])


def test_detail_by_hand_and_other_domain(api, pg, data_dir):
    """A database made by hand: no template known, the default domain."""
    pg.su_exec(f"CREATE DATABASE hand1 OWNER {NODE_ROLE} TEMPLATE tcs")
    r = api.get("/api/tenants/hand1")
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["template_db"] is None
    assert d["domain"] == "sajet.us"
    assert d["filestore_files"] == 0 and d["filestore_bytes"] == 0
    assert api.create("det2", domain="otro.dominio").status_code == 201
    d = api.get("/api/tenants/det2").json()
    assert d["domain"] == "otro.dominio"
    assert d["url"] == "https://det2.otro.dominio"


def test_detail_errors(api, pg):
    r = api.get("/api/tenants/nosuch")
    assert r.status_code == 404 and r.json()["code"] == "tenant_not_found"
    for bad in ("A", "a!b", "-ab", "x" * 64, "_nodo_abc"):
        r = api.get(f"/api/tenants/{bad}")
        assert r.status_code == 422, bad
        assert r.json()["code"] == "invalid_subdomain"
        assert "subdomain" in r.json()["detail"]
    for notenant in ("tcs", "postgres", "template1"):
        r = api.get(f"/api/tenants/{notenant}")
        assert r.status_code == 404, notenant
    # another role's database is not ours
    pg.su_exec("CREATE DATABASE theirs1")
    try:
        assert api.get("/api/tenants/theirs1").status_code == 404
    finally:
        pg.su_exec("DROP DATABASE theirs1")
    for path in ("/api/tenants/x1", "/api/tenants/x1/backup"):
        r = api.get(path, key=False)
        assert r.status_code == 401 and r.json()["code"] == "unauthorized"
    r = api.post("/api/tenants/x1/password", key=False,
                 json={"admin_password": "x"})
    assert r.status_code == 401
    r = api.post("/api/tenants/x1")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    assert api.get("/api/tenants/x1/other").status_code == 404
    assert api.get("/api/tenants//backup").status_code == 404


def fill_tenant(pg, data_dir, sub):
    """Rows of several types and a nested filestore, as a tenant grows."""
    q(pg, sub, "CREATE TABLE res_partner (id serial PRIMARY KEY,"
      " name varchar, note text, img bytea, amount numeric(12,2),"
      " at timestamp, tags jsonb)")
    q(pg, sub, "INSERT INTO res_partner (name, note, img, amount, at, tags)"
      " SELECT 'p' || g, repeat('ñ€ line\n\t', g % 7), "
      " decode(md5(g::text), 'hex'), g * 1.25, now(), "
      " jsonb_build_object('g', g) FROM generate_series(1, 5000) g")
    q(pg, sub, "CREATE INDEX ON res_partner (name)")
    fs = fs_of(data_dir, sub)
    for i in range(40):
        p = fs / f"{i:02x}" / (f"{i:02x}" + "ab" * 19)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(1000 + i * 37))
    (fs / "ff" / "empty").parent.mkdir(exist_ok=True)
    (fs / "ff" / "empty").write_bytes(b"")
    os.symlink("/etc/passwd", fs / "ff" / "link")


def test_backup_read_back_as_odoo_does(api, pg, data_dir, tmp_path):
    assert api.create("bk1").status_code == 201
    fill_tenant(pg, data_dir, "bk1")
    before = time.time()
    r = get_backup(api, "bk1")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/zip"
    m = ZIP_NAME.match(r.headers["Content-Disposition"])
    assert m and m.group(1) == "bk1", r.headers["Content-Disposition"]
    stamp = time.strptime(m.group(2) + " UTC", "%Y-%m-%d_%H-%M-%S %Z")
    assert abs(time.mktime(stamp) - time.timezone - before) < 120
    path = tmp_path / "bk1.zip"
    with open(path, "wb") as f:
        for chunk in r.iter_content(1 << 16):
            f.write(chunk)
    z = zipfile.ZipFile(path)
    assert z.testzip() is None
    names = z.namelist()
    assert names[0] == "manifest.json" and names[-1] == "dump.sql"
    fsn = names[1:-1]
    assert all(n.startswith("filestore/") for n in fsn)
    assert fsn == sorted(fsn)
    assert not any(n.endswith("/") for n in names)  # files only
    for info in z.infolist():
        assert info.compress_type == zipfile.ZIP_DEFLATED

    man = json.loads(z.read("manifest.json"))
    assert set(man) == {"odoo_dump", "db_name", "version", "version_info",
                        "major_version", "pg_version", "modules"}
    assert man["odoo_dump"] == "1"
    assert man["db_name"] == "bk1"
    assert man["version"] == man["major_version"] == "18.0"
    assert man["version_info"] == [18, 0, 0, "final", 0, ""]
    sv = int(q(pg, "bk1", "SHOW server_version_num")[0][0])
    assert man["pg_version"] == "%d.%d" % divmod(sv // 100, 100)
    assert man["modules"] == {"base": "18.0.1.3", "web": "18.0.1.0"}

    # The filestore, file by file; the link is not in the archive.
    src = tree(fs_of(data_dir, "bk1"))
    got = {n[len("filestore/"):]: z.read(n) for n in fsn}
    assert got == src
    assert "filestore/ff/link" not in names

    # The dump, as Odoo's restore runs it.
    dump = tmp_path / "dump.sql"
    dump.write_bytes(z.read("dump.sql"))
    text = dump.read_text()
    assert "OWNER TO" not in text  # --no-owner
    psql_restore(pg, "bk1_restored", dump)
    try:
        assert tables(pg, "bk1_restored") == tables(pg, "bk1")
        for t in tables(pg, "bk1"):
            assert table_rows(pg, "bk1_restored", t) == \
                table_rows(pg, "bk1", t), t
    finally:
        pg.su_exec('DROP DATABASE IF EXISTS "bk1_restored"')
    log = api.log()
    assert "backup of bk1 complete" in log
    assert NODE_PASSWORD not in log


def test_backup_errors(api, pg):
    r = api.get("/api/tenants/nosuch/backup")
    assert r.status_code == 404 and r.json()["code"] == "tenant_not_found"
    r = api.get("/api/tenants/No!/backup")
    assert r.status_code == 422 and r.json()["code"] == "invalid_subdomain"
    assert api.get("/api/tenants/tcs/backup").status_code == 404
    r = api.get("/api/tenants/nosuch/backup", key=False)
    assert r.status_code == 401
    r = api.post("/api/tenants/nosuch/backup")
    assert r.status_code == 405


def add_random_table(pg, sub, mib):
    """mib rows of 1 MiB of random bytes: incompressible, as photos are."""
    c = pg.connect(sub)
    with c.cursor() as cur:
        cur.execute("CREATE TABLE blob (id int PRIMARY KEY, data bytea)")
        cur.execute("ALTER TABLE blob ALTER data SET STORAGE EXTERNAL")
        for i in range(mib):
            cur.execute("INSERT INTO blob VALUES (%s, %s)",
                        (i, psycopg2.Binary(os.urandom(1 << 20))))
    c.close()


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class RssSampler(threading.Thread):
    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.peak, self.stop = pid, 0, threading.Event()

    def run(self):
        while not self.stop.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.05)


def backend_pids(pg, app="nodo-backup"):
    return [r[0] for r in pg.su_exec(
        "SELECT pid FROM pg_stat_activity WHERE application_name = %s",
        args=(app,))]


def test_backup_big_tenant_memory_flat(api, pg, data_dir, tmp_path):
    """A 300 MiB tenant: the daemon's RSS must not grow with its size."""
    assert api.create("bkbig").status_code == 201
    add_random_table(pg, "bkbig", 300)
    size = q(pg, "postgres", "SELECT pg_database_size('bkbig')")[0][0]
    assert size > 300 << 20
    # warm up: one small backup so that first-use allocations are done
    r = get_backup(api, "bkbig")
    next(r.iter_content(1 << 16))
    r.close()
    time.sleep(1)
    base = rss_kib(api.proc.pid)
    s = RssSampler(api.proc.pid)
    s.start()
    path = tmp_path / "big.zip"
    t0 = time.monotonic()
    r = get_backup(api, "bkbig", timeout=900)
    assert r.status_code == 200
    n = 0
    with open(path, "wb") as f:
        for chunk in r.iter_content(1 << 20):
            f.write(chunk)
            n += len(chunk)
    took = time.monotonic() - t0
    s.stop.set()
    s.join()
    growth_mib = (s.peak - base) / 1024
    print(f"\nbackup of {size / 2**20:.0f} MiB database: {n / 2**20:.0f} MiB"
          f" zip in {took:.1f} s; daemon RSS {base / 1024:.0f} MiB before,"
          f" peak {s.peak / 1024:.0f} MiB (+{growth_mib:.0f} MiB)")
    assert n > 300 << 20
    z = zipfile.ZipFile(path)
    info = z.getinfo("dump.sql")
    assert info.file_size > 600 << 20  # hex-escaped bytea in COPY
    # a bound well below the size: the ring, libarchive, zlib and ASan
    assert growth_mib < 48, f"RSS grew by {growth_mib:.0f} MiB"


def test_backup_pg_dump_fails_midway(api, pg, data_dir):
    """pg_dump's backend terminated: the download breaks, it is logged."""
    assert api.create("bkfail").status_code == 201
    add_random_table(pg, "bkfail", 40)
    r = get_backup(api, "bkfail", timeout=120)
    assert r.status_code == 200
    it = r.iter_content(1 << 16)
    got = next(it)
    # The reader stopped: the ring and the pipe are full, pg_dump waits.
    deadline = time.monotonic() + 30
    while not backend_pids(pg) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend_pids(pg), "pg_dump never connected"
    pg.su_exec("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
               " WHERE application_name = 'nodo-backup'")
    broken = False
    try:
        for chunk in it:
            got += chunk
    except requests.exceptions.RequestException:
        broken = True
    if not broken:  # the bytes received must not make a valid zip
        with pytest.raises(zipfile.BadZipFile):
            zipfile.ZipFile(io.BytesIO(got)).testzip()
    deadline = time.monotonic() + 10
    while "failed after" not in api.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    log = api.log()
    assert "backup of bkfail failed" in log and "pg_dump exited" in log, log[-2000:]
    assert NODE_PASSWORD not in log


def test_backup_client_gone_ends_pg_dump(api, pg, data_dir):
    assert api.create("bkgone").status_code == 201
    add_random_table(pg, "bkgone", 40)
    r = get_backup(api, "bkgone", timeout=120)
    # The iterator is kept: a discarded one closes urllib3's connection.
    chunks = r.iter_content(1 << 16)
    next(chunks)
    deadline = time.monotonic() + 30
    while not backend_pids(pg) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert backend_pids(pg)
    r.close()
    deadline = time.monotonic() + 30
    while backend_pids(pg) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not backend_pids(pg), "pg_dump still running"
    deadline = time.monotonic() + 10
    while "cancelled after" not in api.log() and \
            time.monotonic() < deadline:
        time.sleep(0.1)
    assert "cancelled after" in api.log()
    # the slot is free again: a whole backup works
    r = get_backup(api, "bkgone", timeout=300)
    zipfile.ZipFile(io.BytesIO(r.content)).testzip()


def test_backup_bounded(api, pg, data_dir):
    """Two backups at once at most; a third is 503, nothing is started."""
    assert api.create("bkbusy").status_code == 201
    add_random_table(pg, "bkbusy", 40)
    held = [get_backup(api, "bkbusy", timeout=120) for _ in range(2)]
    chunks = []
    for h in held:
        assert h.status_code == 200
        # Kept: a discarded iterator closes urllib3's connection.
        chunks.append(h.iter_content(1 << 16))
        next(chunks[-1])
    r = api.get("/api/tenants/bkbusy/backup", stream=True)
    assert r.status_code == 503, api.log()[-3000:]
    assert r.json()["code"] == "server_busy"
    for h in held:
        h.close()


def test_password_reset(api, pg):
    assert api.create("pw1", password="old-password").status_code == 201
    r = api.post("/api/tenants/pw1/password",
                 json={"admin_password": "néw secret"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["subdomain"] == "pw1" and d["state"] == "active"
    h = q(pg, "pw1", "SELECT password FROM res_users WHERE login = 'admin'")
    h = h[0][0]
    assert h.startswith("$pbkdf2-sha512$600000$")
    assert pbkdf2_sha512.verify("néw secret", h)
    assert not pbkdf2_sha512.verify("old-password", h)
    log = api.log()
    assert "néw secret" not in log and "admin password of pw1 replaced" in log


def test_password_errors(api, pg):
    assert api.create("pw2", password="keep-me").status_code == 201
    before = q(pg, "pw2", "SELECT password FROM res_users"
               " WHERE login = 'admin'")[0][0]
    cases = [
        ({"admin_password": ""}, 422, "invalid_password"),
        ({"admin_password": "x" * 1025}, 422, "invalid_password"),
        ({"admin_password": 5}, 400, "invalid_request"),
        ({}, 400, "invalid_request"),
    ]
    for body, status, code in cases:
        r = api.post("/api/tenants/pw2/password", json=body)
        assert r.status_code == status, (body, r.text)
        assert r.json()["code"] == code
        assert "admin_password" in r.json()["detail"]
    # as for a create: a NUL inside the password is the field's own 422,
    # and the password stays as it was (cJSON would have cut it to "a")
    r = api.post("/api/tenants/pw2/password",
                 json={"admin_password": "a\u0000b"})
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid_password"
    assert "admin_password" in r.json()["detail"]
    assert q(pg, "pw2", "SELECT password FROM res_users"
             " WHERE login = 'admin'")[0][0] == before
    r = api.post("/api/tenants/pw2/password", data="{nope",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["code"] == "invalid_json"
    r = api.post("/api/tenants/nosuch/password",
                 json={"admin_password": "x"})
    assert r.status_code == 404
    r = api.post("/api/tenants/tcs/password", json={"admin_password": "x"})
    assert r.status_code == 404
    r = api.post("/api/tenants/Bad!/password", json={"admin_password": "x"})
    assert r.status_code == 422
    r = api.post("/api/tenants/pw2/password", key=False,
                 json={"admin_password": "x"})
    assert r.status_code == 401
    after = q(pg, "pw2", "SELECT password FROM res_users"
              " WHERE login = 'admin'")[0][0]
    assert after == before
    assert pbkdf2_sha512.verify("keep-me", after)


def _try_backup(api, sub):
    try:
        r = get_backup(api, sub, timeout=120)
        return r.content
    except requests.RequestException as e:
        return e


def test_stop_during_a_parked_backup(node, pg, data_dir):
    """SIGTERM while a backup's reader is parked (its connection suspended:
    the ring is empty because pg_dump waits for a lock): the daemon stops
    cleanly. Without backup_halt_all libmicrohttpd panics on a suspended
    connection (MHD_stop_daemon)."""
    api = node()
    assert api.create("bkstop").status_code == 201
    add_random_table(pg, "bkstop", 1)
    holder = pg.connect("bkstop")
    holder.autocommit = False
    with holder.cursor() as cur:
        cur.execute("LOCK TABLE blob IN ACCESS EXCLUSIVE MODE")
    try:
        # The headers wait for the first bytes, so the client waits too:
        # it runs on a thread of its own.
        got = []
        t = threading.Thread(target=lambda: got.append(
            _try_backup(api, "bkstop")), daemon=True)
        t.start()
        # pg_dump now waits for the lock: libarchive's first block is not
        # full, the ring is empty, the reader parked
        deadline = time.monotonic() + 30
        while not backend_pids(pg) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert backend_pids(pg)
        time.sleep(1)
        rc = api.stop(timeout=60)
        log = api.log()
        assert rc == 0, log[-3000:]
        assert "suspended connections" not in log
    finally:
        holder.rollback()
        holder.close()
    deadline = time.monotonic() + 30
    while backend_pids(pg) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not backend_pids(pg), "pg_dump outlived the daemon"
