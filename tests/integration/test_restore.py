"""POST /api/tenant/restore (CONTRACT section 10): backups restored under a
new name, Odoo's and odoo.sh's zips, and every hostile archive and dump
refused with 400 invalid_backup and nothing left behind."""
import io
import json
import os
import struct
import subprocess
import zipfile
from pathlib import Path

import pytest
import requests
from passlib.hash import pbkdf2_sha512

from conftest import (API_KEY, FILESTORE_FILES, NODE_PASSWORD, NODE_ROLE,
                      PGBIN, ZONE_SAJET, TUNNEL_ID)
from test_backup import get_backup, q, tables, table_rows, tree

MANIFEST = {"odoo_dump": "1", "db_name": "origen", "version": "18.0",
            "version_info": [18, 0, 0, "final", 0], "major_version": "18.0",
            "pg_version": "15.0", "modules": {"base": "18.0.1.3"}}


def restore(api, sub, body, timeout=300, **params):
    params = dict(params, subdomain=sub) if sub is not None else params
    return api.post("/api/tenant/restore", params=params, data=body,
                    headers={"Content-Type": "application/zip"},
                    timeout=timeout)


def backup_bytes(api, sub):
    r = get_backup(api, sub)
    assert r.status_code == 200, r.text
    data = r.content
    r.session_kept.close()
    return data


def dump_of(pg, db):
    """pg_dump --no-owner of db, as Odoo's dump_db makes it."""
    env = dict(os.environ, PGPASSWORD=NODE_PASSWORD)
    r = subprocess.run([str(PGBIN / "pg_dump"), "--no-owner", "-h", pg.host,
                        "-p", str(pg.port), "-U", NODE_ROLE, db], env=env,
                       capture_output=True, check=True)
    return r.stdout


def make_zip(members, compression=zipfile.ZIP_DEFLATED):
    """members: [(name, bytes)] or ZipInfo-ready tuples, in order."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", compression) as z:
        for name, data in members:
            z.writestr(name, data)
    return b.getvalue()


def odoo_zip(pg, db, manifest=True, files=None):
    """Odoo's database manager's zip: filestore/, manifest.json, dump.sql
    last (as its zip_dir sorts them)."""
    members = []
    for rel, data in sorted((files if files is not None
                             else FILESTORE_FILES).items()):
        members.append(("filestore/" + rel, data))
    if manifest:
        members.append(("manifest.json", json.dumps(MANIFEST)))
    members.append(("dump.sql", dump_of(pg, db)))
    return make_zip(members)


def nothing_left(pg, data_dir, sub):
    """No database, no folder, no internal name, no spooled file."""
    dbs = pg.databases()
    assert sub not in dbs
    assert not [d for d in dbs if d.startswith("_nodo_")], dbs
    fs = Path(data_dir) / "filestore"
    assert not (fs / sub).exists()
    assert not [p.name for p in fs.iterdir()
                if p.name.startswith("_nodo_")]
    assert not [p.name for p in Path(data_dir).iterdir()
                if p.name.startswith(".nodo-restore")]


def icp(pg, db, key):
    r = q(pg, db, "SELECT value FROM ir_config_parameter WHERE key = %s",
          (key,))
    return r[0][0] if r else None


def admin_hash(pg, db):
    return q(pg, db, "SELECT password FROM res_users WHERE login = 'admin'"
             )[0][0]


# -- round trips -----------------------------------------------------------

def test_round_trip_move_keeps_identity(api, pg, data_dir, cloudflare):
    assert api.create("origen", password="clave-origen").status_code == 201
    data = backup_bytes(api, "origen")
    r = restore(api, "destino", data)
    assert r.status_code == 201, r.text
    b = r.json()
    assert b["subdomain"] == "destino" and b["database"] == "destino"
    assert b["url"] == "https://destino.sajet.us"
    assert b["template_db"] is None
    assert b["restored_from"]["db_name"] == "origen"
    assert b["restored_from"]["version"]
    assert b["dns"]["status"] == "created"
    assert tables(pg, "origen") == tables(pg, "destino")
    for t in tables(pg, "origen"):
        if t == "ir_config_parameter":
            continue
        assert table_rows(pg, "origen", t) == table_rows(pg, "destino", t), t
    assert tree(Path(data_dir) / "filestore" / "origen") == \
        tree(Path(data_dir) / "filestore" / "destino")
    assert pbkdf2_sha512.verify("clave-origen", admin_hash(pg, "destino"))
    for k in ("database.uuid", "database.secret"):
        assert icp(pg, "destino", k) == icp(pg, "origen", k)
    assert icp(pg, "destino", "web.base.url") == "https://destino.sajet.us"
    assert icp(pg, "destino", "web.base.url.freeze") == "True"
    names = [t["subdomain"] for t in api.get("/api/tenants").json()
             ["tenants"]]
    assert "destino" in names
    d = api.get("/api/tenants/destino").json()
    assert d["template_db"] is None and d["state"] == "active"
    nothing_internal(pg, data_dir)


def nothing_internal(pg, data_dir):
    assert not [d for d in pg.databases() if d.startswith("_nodo_")]
    assert not [p for p in (Path(data_dir) / "filestore").iterdir()
                if p.name.startswith("_nodo_")]


def test_round_trip_copy_regenerates_identity(api, pg, data_dir):
    assert api.create("origen").status_code == 201
    r = restore(api, "copia", backup_bytes(api, "origen"), mode="copy")
    assert r.status_code == 201, r.text
    for k in ("database.uuid", "database.secret", "database.create_date"):
        assert icp(pg, "copia", k) != icp(pg, "origen", k), k
    assert len(icp(pg, "copia", "database.uuid")) == 36
    assert icp(pg, "copia", "web.base.url") == "https://copia.sajet.us"


def test_odoo_database_manager_zip(api, pg, data_dir):
    """dump.sql + filestore + manifest made by hand as Odoo's dump_db."""
    r = restore(api, "de-odoo", odoo_zip(pg, "tcs"), domain="otro.dominio")
    assert r.status_code == 201, r.text
    assert r.json()["domain"] == "otro.dominio"
    assert r.json()["restored_from"] == {"db_name": "origen",
                                         "version": "18.0"}
    assert tree(Path(data_dir) / "filestore" / "de-odoo") == FILESTORE_FILES
    assert table_rows(pg, "tcs", "res_users") == \
        table_rows(pg, "de-odoo", "res_users")


def test_odoo_sh_zip_without_manifest(api, pg, data_dir):
    """An odoo.sh download: dump.sql first at the root, filestore/, no
    manifest (accepted, restored_from unknown)."""
    members = [("dump.sql", dump_of(pg, "tcs"))]
    members += [("filestore/" + k, v) for k, v in FILESTORE_FILES.items()]
    r = restore(api, "de-odoo-sh", make_zip(members))
    assert r.status_code == 201, r.text
    assert r.json()["restored_from"] == {"db_name": None, "version": None}
    assert tree(Path(data_dir) / "filestore" / "de-odoo-sh") == \
        FILESTORE_FILES


def test_pg_dump_restrict_lines_accepted(api, pg, data_dir):
    """pg_dump 15.14+ writes \\restrict KEY first and \\unrestrict KEY
    last: such a dump restores (the lines are pg_dump's, not the dump's
    own meta-commands)."""
    dump = dump_of(pg, "tcs")
    if not dump.startswith(b"\\restrict"):
        dump = (b"\\restrict AbC123xyz\n" + dump +
                b"\n\\unrestrict AbC123xyz\n")
    r = restore(api, "restringido", make_zip([("dump.sql", dump)]))
    assert r.status_code == 201, r.text


def test_exists_and_bad_params(api, pg, data_dir):
    assert api.create("ocupado").status_code == 201
    z = odoo_zip(pg, "tcs")
    r = restore(api, "ocupado", z)
    assert r.status_code == 409 and r.json()["code"] == "tenant_exists"
    r = restore(api, None, z)
    assert r.status_code == 400 and r.json()["code"] == "invalid_request"
    assert "subdomain" in r.json()["detail"]
    r = restore(api, "otro", z, mode="clone")
    assert r.status_code == 400 and "mode" in r.json()["detail"]
    r = restore(api, "Mal!", z)
    assert r.status_code == 422 and r.json()["code"] == "invalid_subdomain"
    r = restore(api, "tcs", z)
    assert r.status_code == 422 and r.json()["code"] == "reserved_name"
    r = restore(api, "otro", z, domain="nadie.com")
    assert r.status_code == 422 and r.json()["code"] == "unknown_domain"
    r = restore(api, "otro", b"")
    assert r.status_code == 400 and r.json()["code"] == "invalid_backup"
    assert "otro" not in pg.databases()
    nothing_internal(pg, data_dir)


def test_incompatible_major_version(api, pg, data_dir):
    m = dict(MANIFEST, major_version="17.0", version="17.0")
    z = make_zip([("manifest.json", json.dumps(m)),
                  ("dump.sql", dump_of(pg, "tcs"))])
    r = restore(api, "vieja", z)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "incompatible_backup"
    assert "17.0" in r.json()["detail"] and "18.0" in r.json()["detail"]
    nothing_left(pg, data_dir, "vieja")


def test_body_over_restore_max_bytes(node, pg, data_dir):
    api = node(RESTORE_MAX_BYTES="4096")
    r = restore(api, "grande", b"x" * 8192)
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert "RESTORE_MAX_BYTES" in r.json()["detail"]
    nothing_left(pg, data_dir, "grande")


def test_neutralize_without_addons_path(api, pg, data_dir):
    r = restore(api, "neutra", odoo_zip(pg, "tcs"), neutralize="true")
    assert r.status_code == 422, r.text
    assert "addons_path" in r.json()["detail"]
    nothing_left(pg, data_dir, "neutra")


def test_neutralize_runs_module_scripts(node, pg, data_dir, tmp_path):
    addons = tmp_path / "addons"
    (addons / "base" / "data").mkdir(parents=True)
    (addons / "base" / "data" / "neutralize.sql").write_text(
        "INSERT INTO ir_config_parameter (key, value) VALUES "
        "('database.is_neutralized', true) ON CONFLICT (key) DO UPDATE "
        "SET value = true;\n")
    (addons / "web" / "data").mkdir(parents=True)
    (addons / "web" / "data" / "neutralize.sql").write_text(
        "UPDATE res_users SET active = false WHERE login = 'portal';\n")
    conf = tmp_path / "odoo.conf"
    conf.write_text(f"[options]\naddons_path = /nonexistent, {addons}\n")
    api = node(ODOO_CONF=str(conf))
    r = restore(api, "neutra", odoo_zip(pg, "tcs"), neutralize="true")
    assert r.status_code == 201, r.text
    assert icp(pg, "neutra", "database.is_neutralized") == "true"
    assert q(pg, "neutra", "SELECT active FROM res_users WHERE login = "
             "'portal'")[0][0] is False
