"""POST /api/tenant/restore (CONTRACT section 10): backups restored under a
new name, Odoo's and odoo.sh's zips, and every hostile archive and dump
refused with 400 invalid_backup and nothing left behind."""
import io
import json
import os
import struct
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import psycopg2
import pytest
from passlib.hash import pbkdf2_sha512

from conftest import (FILESTORE_FILES, NODE_PASSWORD, NODE_ROLE, PGBIN,
                      wait_for)
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


# -- hostile archives ------------------------------------------------------

def refused(api, pg, data_dir, sub, body, *words, **params):
    r = restore(api, sub, body, **params)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_backup", r.text
    for w in words:
        assert w in r.json()["detail"], (w, r.json()["detail"])
    nothing_left(pg, data_dir, sub)
    return r.json()["detail"]


def small_dump():
    return (b"SET standard_conforming_strings = on;\n"
            b"CREATE TABLE ir_config_parameter (id serial, key varchar "
            b"UNIQUE, value text, create_uid int, write_uid int, "
            b"create_date timestamp, write_date timestamp);\n")


def test_not_a_zip(api, pg, data_dir):
    refused(api, pg, data_dir, "malo", b"PK\x03\x04 not really a zip" * 10,
            "not a zip")
    refused(api, pg, data_dir, "malo", b"-- plain SQL\nSELECT 1;\n",
            "not a zip")


def test_no_dump(api, pg, data_dir):
    z = make_zip([("manifest.json", json.dumps(MANIFEST)),
                  ("filestore/ab/cd", b"x")])
    refused(api, pg, data_dir, "malo", z, "dump.sql")
    # A leading folder is not Odoo's layout: no dump.sql at the root.
    z = make_zip([("backup/dump.sql", small_dump())])
    refused(api, pg, data_dir, "malo", z, "dump.sql")


@pytest.mark.parametrize("name", ["../evil", "filestore/../../evil",
                                  "/etc/evil", "filestore/a/../../x",
                                  "filestore\\..\\x", "./dump.sql"])
def test_member_outside_archive(api, pg, data_dir, name):
    z = make_zip([(name, b"owned"), ("dump.sql", small_dump())])
    refused(api, pg, data_dir, "malo", z, "outside the archive")
    assert not (Path(data_dir).parent / "evil").exists()
    assert not (Path(data_dir) / "evil").exists()


@pytest.mark.parametrize("where", ["filestore/ab/link", "dump.sql",
                                   "elsewhere"])
def test_symlink_member(api, pg, data_dir, where):
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w") as z:
        info = zipfile.ZipInfo(where)
        info.create_system = 3  # Unix: external_attr holds st_mode
        info.external_attr = (0o120777 << 16)
        z.writestr(info, "/etc/passwd")
        if where != "dump.sql":
            z.writestr("dump.sql", small_dump())
    refused(api, pg, data_dir, "malo", b.getvalue(), "is a link")


def test_unreadable_manifest(api, pg, data_dir):
    for text in (b"{not json", b"[1, 2]", b"\xff\xfe"):
        z = make_zip([("manifest.json", text), ("dump.sql", small_dump())])
        refused(api, pg, data_dir, "malo", z, "manifest.json")


def test_zip_bomb_ratio(api, pg, data_dir):
    """40 MB of zeros in a few kB: over 200:1 (checked on the archive's
    directory, before anything is made)."""
    z = make_zip([("dump.sql", small_dump()),
                  ("filestore/ab/bomb", b"\0" * (40 << 20))])
    assert len(z) < (1 << 20)
    refused(api, pg, data_dir, "malo", z, "zip bomb")


def test_zip_bomb_one_member(api, pg, data_dir):
    """The whole archive under 200:1 (incompressible padding) but one
    member far over it: measured while it is extracted."""
    pad = os.urandom(300 << 10)
    z = make_zip([("dump.sql", small_dump()),
                  ("filestore/aa/pad", pad),
                  ("filestore/ab/bomb", b"\0" * (40 << 20))])
    assert (40 << 20) / len(z) < 200
    refused(api, pg, data_dir, "malo", z, "zip bomb", "filestore/ab/bomb")


def test_zip_bomb_absolute_cap(node, pg, data_dir):
    """Under the ratio, but more than 10 x RESTORE_MAX_BYTES unpacked."""
    api = node(RESTORE_MAX_BYTES=str(1100 << 10))
    text = b"".join(b"%s fixed text padding here and there\n" %
                    os.urandom(2).hex().encode()
                    for _ in range(300000))  # 11.7 MB, compresses ~11:1
    z = make_zip([("dump.sql", small_dump()), ("filestore/ab/big", text)])
    assert len(z) <= (1100 << 10) and len(text) / len(z) < 200
    assert len(text) > 10 * (1100 << 10)
    refused(api, pg, data_dir, "malo", z, "zip bomb", "RESTORE_MAX_BYTES")


def lying_zip(real, declared):
    """A stored member whose headers declare fewer bytes than it holds."""
    b = io.BytesIO()
    with zipfile.ZipFile(b, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("dump.sql", small_dump())
        z.writestr("filestore/ab/liar", real)
    data = bytearray(b.getvalue())
    n = struct.pack("<I", len(real))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as z:
        i = z.getinfo("filestore/ab/liar").header_offset
        j = z.start_dir
    # Local header (offset 22) and central directory (offset 24) sizes.
    assert data[i:i + 4] == b"PK\x03\x04" and data[i + 22:i + 26] == n
    data[i + 22:i + 26] = struct.pack("<I", declared)
    while data[j + 46:j + 46 + 17] != b"filestore/ab/liar":
        j = data.find(b"PK\x01\x02", j + 4)
        assert j > 0
    assert data[j + 24:j + 28] == n
    data[j + 24:j + 28] = struct.pack("<I", declared)
    return bytes(data)


def test_member_larger_than_declared(api, pg, data_dir):
    z = lying_zip(b"A" * 200000, 10)
    r = restore(api, "malo", z)
    assert r.status_code == 400, r.text
    assert r.json()["code"] == "invalid_backup"
    nothing_left(pg, data_dir, "malo")


@pytest.mark.parametrize("sql,what", [
    ("CREATE ROLE intruso SUPERUSER;", "CREATE ROLE"),
    ("create user intruso password 'x';", "CREATE USER"),
    ("ALTER ROLE odoo_node SUPERUSER;", "ALTER ROLE"),
    ("ALTER USER CURRENT_USER CREATEROLE;", "ALTER USER"),
    ("DROP ROLE IF EXISTS otro;", "DROP ROLE"),
    ("GRANT pg_read_server_files TO odoo_node;", "role membership"),
    ("REVOKE otro FROM odoo_node;", "role membership"),
    ("DROP DATABASE tcs;", "DROP DATABASE"),
    ("CREATE DATABASE otra;", "CREATE DATABASE"),
    ("ALTER DATABASE tcs OWNER TO otro;", "ALTER DATABASE"),
    ("COMMENT ON DATABASE tcs IS 'nodo:domain=x';", "COMMENT ON DATABASE"),
    ("GRANT CONNECT ON DATABASE tcs TO PUBLIC;", "ON DATABASE"),
    ("CREATE TABLE t (a int) TABLESPACE pg_default;", "TABLESPACE"),
    ("CREATE TABLESPACE x LOCATION '/tmp';", "CREATE TABLESPACE"),
    ("ALTER SYSTEM SET fsync = off;", "ALTER SYSTEM"),
    ("CREATE SUBSCRIPTION s CONNECTION 'host=x' PUBLICATION p;",
     "CREATE SUBSCRIPTION"),
    ("CREATE PUBLICATION p FOR ALL TABLES;", "CREATE PUBLICATION"),
    ("COPY ir_config_parameter TO '/tmp/out';", "COPY"),
    ("COPY ir_config_parameter FROM PROGRAM 'id';", "COPY"),
    ("COPY ir_config_parameter FROM '/etc/passwd';", "COPY"),
    ("COPY (SELECT 1) TO STDOUT;", "COPY"),
    ("CREATE EXTENSION adminpack;", "CREATE EXTENSION"),
    ("CREATE EXTENSION IF NOT EXISTS dblink;", "dblink"),
    ("CREATE EXTENSION IF NOT EXISTS adminpack;", "CREATE EXTENSION"),
    ("SELECT pg_read_file('/etc/passwd');", "pg_read_file"),
    ("SELECT lo_import('/etc/passwd');", "lo_import"),
    ("CREATE FUNCTION f() RETURNS text AS $x$ SELECT pg_ls_dir('/') $x$ "
     "LANGUAGE sql;", "pg_ls_dir"),
    ("SET ROLE postgres;", "SET ROLE"),
    ("SET SESSION AUTHORIZATION postgres;", "SET SESSION AUTHORIZATION"),
    ("SET LOCAL ROLE postgres;", "SET ROLE"),
    ("SET standard_conforming_strings = off;",
     "standard_conforming_strings"),
    ("DO $$ BEGIN PERFORM 1; END $$;", "DO"),
    ("LOAD 'plpgsql';", "LOAD"),
    ("REASSIGN OWNED BY otro TO odoo_node;", "REASSIGN"),
    ("DROP OWNED BY otro;", "DROP OWNED"),
    ("SECURITY LABEL ON ROLE x IS 'y';", "SECURITY"),
    ("\\! touch /tmp/nodo-pwned", "meta-command"),
    ("\\connect postgres", "meta-command"),
    ("\\copy ir_config_parameter from program 'id'", "meta-command"),
    ("SELECT 1 \\g /tmp/nodo-pwned", "meta-command"),
    ("\\restrict abc\n\\! id", "meta-command"),
    ("\\unrestrict abc; \\! id", "meta-command"),
])
def test_refused_statement(api, pg, data_dir, sql, what):
    dump = (small_dump() + b"-- a comment ; \\! not a command\n"
            b"SELECT 'a string; \\! not a command';\n" + sql.encode() +
            b"\n")
    detail = refused(api, pg, data_dir, "malo",
                     make_zip([("dump.sql", dump)]), what, "dump.sql line")
    assert "line 5" in detail or "line 6" in detail, detail
    assert not Path("/tmp/nodo-pwned").exists()


def test_allowed_lookalikes(api, pg, data_dir):
    """Words that only look like refused statements: data, strings,
    quoted identifiers, COPY data with backslashes, dollar quotes."""
    dump = small_dump() + (
        b"CREATE TABLE t (\"tablespace\" text, \"user\" text, role text);\n"
        b"COPY t (\"tablespace\", \"user\", role) FROM stdin;\n"
        b"\\\\! id\tCREATE ROLE x;\tDROP DATABASE tcs\n"
        b"\\N\t\\connect\tpg_read_file\n"
        b"\\.\n"
        b"INSERT INTO t VALUES ('ALTER SYSTEM', E'it\\'s; \\\\! x', $q$ ; "
        b"DROP DATABASE tcs; $q$);\n"
        b"/* nested /* comment */ GRANT x TO y; */\n"
        b"CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;\n"
        b"CREATE EXTENSION IF NOT EXISTS unaccent;\n"
        b"SET default_tablespace = '';\n"
        b"GRANT SELECT ON t TO PUBLIC;\n"
        b"SELECT pg_catalog.set_config('search_path', 'public', false);\n")
    r = restore(api, "parecido", make_zip([("dump.sql", dump)]))
    assert r.status_code == 201, r.text
    rows = q(pg, "parecido", "SELECT * FROM t ORDER BY 1")
    assert ("\\! id", "CREATE ROLE x;", "DROP DATABASE tcs") in rows
    assert len(rows) == 3


def test_dump_failing_part_way(api, pg, data_dir):
    """ON_ERROR_STOP in one transaction: the rows before the error are
    not kept, nothing is published."""
    dump = small_dump() + (b"CREATE TABLE antes (a int);\n"
                           b"INSERT INTO antes VALUES (1);\n"
                           b"INSERT INTO no_such_table VALUES (1);\n"
                           b"CREATE TABLE despues (a int);\n")
    detail = refused(api, pg, data_dir, "parcial",
                     make_zip([("dump.sql", dump)]), "psql stopped",
                     "no_such_table")
    assert "dump.sql line 5:" in detail, detail


def test_not_an_odoo_database(api, pg, data_dir):
    refused(api, pg, data_dir, "sinodoo",
            make_zip([("dump.sql", b"CREATE TABLE x (a int);\n")]),
            "not an Odoo database")


def test_insufficient_storage(node, pg, tmp_path):
    """The data folder on a 24 MB tmpfs: the files and the dump do not
    fit with the margin, 507 before anything is extracted."""
    if os.geteuid() != 0:
        pytest.skip("needs root to mount a small tmpfs")
    mnt = tmp_path / "small"
    mnt.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs",
                    str(mnt)], check=True)
    try:
        (mnt / "filestore").mkdir()
        api = node(ODOO_DATA_DIR=str(mnt))
        z = make_zip([("dump.sql", small_dump()),
                      ("filestore/ab/f", os.urandom(1 << 20))],
                     zipfile.ZIP_STORED)
        r = restore(api, "lleno", z)
        assert r.status_code == 507, r.text
        assert r.json()["code"] == "insufficient_storage"
        assert "free" in r.json()["detail"]
        assert "lleno" not in pg.databases()
        assert not [d for d in pg.databases() if d.startswith("_nodo_")]
        assert list((mnt / "filestore").iterdir()) == []
        assert [p.name for p in mnt.iterdir()] == ["filestore"]
        api.stop()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_kill_during_restore_leaves_nothing(node, pg, data_dir):
    """kill -9 while psql runs the dump: the next start's clean-up drops
    the internal database (op=create) and its folder; the name is free."""
    api = node()
    dump = small_dump() + b"SELECT pg_sleep(30);\n"
    z = make_zip([("filestore/ab/f1", b"file"), ("dump.sql", dump)])
    t = threading.Thread(target=lambda: _quiet(restore, api, "matado", z),
                         daemon=True)
    t.start()
    wait_for(lambda: [d for d in pg.databases() if d.startswith("_nodo_")],
             30, "the internal database")
    tmp = [d for d in pg.databases() if d.startswith("_nodo_")][0]
    com = pg.su_exec("SELECT shobj_description(oid, 'pg_database') FROM "
                     "pg_database WHERE datname = %s", args=(tmp,))[0][0]
    assert com == "nodo:op=create;target=matado;domain=sajet.us"
    # Closed to every role but the node's until published.
    pg.su_exec("DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE "
               "rolname = 'nodo_stranger') THEN CREATE ROLE nodo_stranger "
               "LOGIN PASSWORD 'stranger-pw'; END IF; END$$")
    with pytest.raises(psycopg2.OperationalError,
                       match="permission denied for database"):
        psycopg2.connect(host=pg.host, port=pg.port, user="nodo_stranger",
                         password="stranger-pw", dbname=tmp,
                         connect_timeout=10).close()
    wait_for(lambda: (Path(data_dir) / "filestore" / tmp).exists(), 30,
             "the internal folder")
    api.kill()
    t.join(60)
    time.sleep(0.2)
    api2 = node()
    wait_for(lambda: not [d for d in pg.databases()
                          if d.startswith("_nodo_")], 60, "the clean-up")
    wait_for(lambda: not (Path(data_dir) / "filestore" / tmp).exists(), 30,
             "the folder's removal")
    nothing_left(pg, data_dir, "matado")
    r = restore(api2, "matado", make_zip([("dump.sql", small_dump())]))
    assert r.status_code == 201, r.text


def _quiet(fn, *a):
    try:
        fn(*a)
    except Exception:  # the daemon is killed under it
        pass
