"""nodo's lifecycle subcommands (CONTRACT sections 9, 10 and 13) against
the real daemon: trash, trash-restore, trash-purge, a delete that goes to
the trash, restore from a backup zip, suspend and resume.

MERGE NOTE: these routes (GET /api/trash, POST /api/trash/{id}/restore,
DELETE /api/trash/{id}, POST /api/tenant/restore, POST
/api/tenants/{s}/suspend and /resume) are being added on the branches
trash, restore and suspend. On the cli branch alone, whose daemon lacks
them, these tests FAIL (404 not_found): that is expected. They are not
skipped; run them after merging those branches:
  NODO_BUILD=$PWD/build-san /usr/bin/python3 -m pytest -q -p no:cacheprovider \\
      tests/integration/test_nodo_cli_lifecycle.py
Also after that merge, test_cli.py's test_delete_asks_on_a_terminal (a
plain delete asks on a terminal) no longer holds: with a trash, a plain
delete asks nothing (CONTRACT 13); the question is for --purge, tested
here by test_delete_to_the_trash_asks_nothing.
"""
import json
import zipfile

import subprocess

from conftest import BUILD, ROOT
from test_nodo_cli import (EX_API, EX_IOERR, EX_OK, admin_hash,  # noqa
                           assert_api_error, fields, nodo)
from passlib.hash import pbkdf2_sha512


def trash_entry(api, name):
    for t in api.get("/api/trash").json()["trash"]:
        if t["subdomain"] == name:
            return t
    return None


# --- trash -------------------------------------------------------------------

def test_delete_to_the_trash_asks_nothing(nodo, api, pg):
    assert api.create("lc_tty", "pw").status_code == 201
    rc, out, term = nodo.run_pty("delete", "lc_tty")
    assert rc == EX_OK, term
    assert "[y/N]" not in term
    assert out.startswith("Tenant lc_tty moved to the trash (id ")
    t = trash_entry(api, "lc_tty")
    assert t is not None and t["id"] in out and t["expires_at"] in out
    assert "lc_tty" not in [x["subdomain"] for x in
                            api.get("/api/tenants").json()["tenants"]]
    # --purge still asks on a terminal; "n" keeps the tenant
    assert api.create("lc_tty2", "pw").status_code == 201
    rc, out, term = nodo.run_pty("delete", "--purge", "lc_tty2",
                                 answers=[("[y/N]", "n\n")])
    assert rc == EX_API and "Not deleted." in term
    assert api.get("/api/tenants/lc_tty2").status_code == 200


def test_trash_list_restore_purge(nodo, api, pg):
    assert api.create("lc_a", "pw-a").status_code == 201
    assert api.create("lc_b", "pw-b").status_code == 201
    r = nodo.run("trash")
    assert r.returncode == EX_OK, r.stderr
    assert r.stdout == "The trash is empty.\n0 in the trash\n"
    for name in ("lc_a", "lc_b"):
        r = nodo.run("delete", name)
        assert r.returncode == EX_OK, r.stderr
        assert "moved to the trash" in r.stdout
    r = nodo.run("trash")
    assert r.returncode == EX_OK, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "SUBDOMAIN", "DELETED"]
    want = api.get("/api/trash").json()
    assert [x.split()[0] for x in lines[1:-1]] == [
        t["id"] for t in want["trash"]]  # newest first, as the API
    assert lines[-1] == "2 in the trash"
    r = nodo.run("trash", "--json")
    assert json.loads(r.stdout) == want

    a = trash_entry(api, "lc_a")
    r = nodo.run("trash-restore", a["id"])
    assert r.returncode == EX_OK, r.stderr
    assert r.stdout.startswith("Tenant lc_a restored from the trash.")
    assert fields(r.stdout)["URL"] == "https://lc_a.sajet.us"
    assert pbkdf2_sha512.verify("pw-a", admin_hash(pg, "lc_a"))
    b = trash_entry(api, "lc_b")
    r = nodo.run("trash-restore", b["id"], "--subdomain", "lc_b2",
                 "--domain", "otro.dominio", "--json")
    assert r.returncode == EX_OK, r.stderr
    body = json.loads(r.stdout)
    assert body["subdomain"] == "lc_b2" and body["domain"] == "otro.dominio"
    assert trash_entry(api, "lc_b") is None

    want = api.post("/api/trash/nosuch-id/restore", json={})
    assert want.status_code == 404
    r = nodo.run("trash-restore", "nosuch-id")
    assert_api_error(r, EX_API, want)
    assert "trash_not_found" in r.stderr


def test_trash_purge(nodo, api):
    assert api.create("lc_p", "pw").status_code == 201
    assert nodo.run("delete", "lc_p").returncode == EX_OK
    t = trash_entry(api, "lc_p")
    rc, out, term = nodo.run_pty("trash-purge", t["id"],
                                 answers=[("[y/N]", "n\n")])
    assert rc == EX_API and "Not deleted." in term
    assert trash_entry(api, "lc_p") is not None
    r = nodo.run("trash-purge", t["id"])  # no terminal: no question
    assert r.returncode == EX_OK, r.stderr
    assert r.stdout == f"Trash entry {t['id']} purged.\n"
    assert trash_entry(api, "lc_p") is None
    want = api.delete(f"/api/trash/{t['id']}")
    assert want.status_code == 404
    r = nodo.run("trash-purge", "--yes", t["id"])
    assert_api_error(r, EX_API, want)


# --- restore from a backup ---------------------------------------------------

def test_restore_from_backup(nodo, api, pg, tmp_path):
    assert api.create("lc_src", "pw-src").status_code == 201
    z = tmp_path / "src.zip"
    assert nodo.run("backup", "lc_src", str(z)).returncode == EX_OK
    r = nodo.run("restore", "lc_copy", str(z), "--mode", "copy")
    assert r.returncode == EX_OK, r.stderr
    f = fields(r.stdout)
    assert r.stdout.startswith("Tenant lc_copy restored.")
    assert f["URL"] == "https://lc_copy.sajet.us"
    assert f["Restored from"].startswith("lc_src (Odoo ")
    assert pbkdf2_sha512.verify("pw-src", admin_hash(pg, "lc_copy"))
    # with a progress bar on a terminal, another domain, --json
    rc, out, term = nodo.run_pty("restore", "--json", "--domain",
                                 "otro.dominio", "--dns-takeover",
                                 "lc_copy2", str(z))
    assert rc == EX_OK, term
    body = json.loads(out)
    assert body["domain"] == "otro.dominio"
    assert body["restored_from"]["db_name"] == "lc_src"
    assert " 100%  " in term
    # the name is taken: the API's 409
    r = nodo.run("restore", "lc_copy", str(z))
    assert r.returncode == EX_API and "tenant_exists" in r.stderr


def test_restore_errors(nodo, api, pg, tmp_path):
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"this is no zip")
    r = nodo.run("restore", "lc_bad", str(bad))
    assert r.returncode == EX_API
    assert "invalid_backup" in r.stderr
    assert "lc_bad" not in pg.databases()
    empty = tmp_path / "empty.zip"
    with zipfile.ZipFile(empty, "w") as zf:
        zf.writestr("manifest.json", "{}")
    r = nodo.run("restore", "lc_bad", str(empty))
    assert r.returncode == EX_API and "dump.sql" in r.stderr
    r = nodo.run("restore", "lc_bad", str(tmp_path / "missing.zip"))
    assert r.returncode == EX_IOERR and "cannot read the backup" in r.stderr


# --- suspend and resume ------------------------------------------------------

def test_suspend_resume(nodo, api):
    assert api.create("lc_s", "pw").status_code == 201
    r = nodo.run("suspend", "lc_s")
    assert r.returncode == EX_OK, r.stderr
    assert r.stdout == "Tenant lc_s suspended (state: suspended).\n"
    assert api.get("/api/tenants/lc_s").json()["state"] == "suspended"
    r = nodo.run("list")
    assert "https://lc_s.sajet.us  (suspended)" in r.stdout
    assert fields(nodo.run("show", "lc_s").stdout)["State"] == "suspended"
    r = nodo.run("resume", "--json", "lc_s")
    assert r.returncode == EX_OK, r.stderr
    assert json.loads(r.stdout)["state"] == "active"
    want = api.post("/api/tenants/nosuch/suspend")  # the route takes no body
    assert want.status_code == 404
    r = nodo.run("suspend", "nosuch")
    assert_api_error(r, EX_API, want)


def test_suspend_and_resume_wrappers(nodo, api):
    assert api.create("lc_w", "pw").status_code == 201
    env = nodo.env(NODO_BUILD=BUILD)
    for script, state in (("suspend_tenant.sh", "suspended"),
                          ("resume_tenant.sh", "active")):
        r = subprocess.run([str(ROOT / "scripts" / script), "lc_w"],
                           env=env, capture_output=True, text=True,
                           timeout=120, stdin=subprocess.DEVNULL)
        assert r.returncode == EX_OK, r.stderr
        assert f"(state: {state})" in r.stdout
        assert api.get("/api/tenants/lc_w").json()["state"] == state
