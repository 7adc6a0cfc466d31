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


def get_backup(api, sub, **kw):
    return api.get(f"/api/tenants/{sub}/backup", stream=True, **kw)


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
