"""backup_tenant.sh and reset_password.sh (CONTRACT section 13) against a
running odoo-local-api, with the recording curl shim of test_cli.py: the
key and the password never reach a command line."""
import json
import zipfile

from passlib.hash import pbkdf2_sha512

from conftest import API_KEY, ROOT
from test_cli import EX_API, EX_USAGE, Cli, admin_hash, cli  # noqa: F401

BACKUP = ROOT / "scripts" / "backup_tenant.sh"
RESET = ROOT / "scripts" / "reset_password.sh"


def no_secret_in_argv(cli, *secrets):
    calls = cli.curl_calls()
    assert calls
    for argv, _ in calls:
        for s in secrets:
            assert not any(s in a for a in argv), argv


def test_backup_script_writes_zip(cli, api, tmp_path):
    assert api.create("clibk").status_code == 201
    out = tmp_path / "b.zip"
    r = cli.run(BACKUP, "clibk", str(out))
    assert r.returncode == 0, r.stderr
    assert "written to" in r.stdout
    z = zipfile.ZipFile(out)
    assert z.namelist()[0] == "manifest.json"
    assert z.namelist()[-1] == "dump.sql"
    assert not (tmp_path / "b.zip.part").exists()
    no_secret_in_argv(cli, API_KEY)
    # --json, and the default name in the current folder
    r = cli.run(BACKUP, "--json", "clibk")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["subdomain"] == "clibk" and d["bytes"] > 0
    name = d["file"]
    assert name.startswith("./clibk_") and name.endswith(".zip")
    zipfile.ZipFile(cli.tmp / name).testzip()
    # an existing file is never overwritten
    r = cli.run(BACKUP, "clibk", str(out))
    assert r.returncode == EX_USAGE and "exists" in r.stderr


def test_backup_script_errors(cli, api, tmp_path):
    out = tmp_path / "none.zip"
    r = cli.run(BACKUP, "nosuch", str(out))
    assert r.returncode == EX_API
    assert "no tenant named 'nosuch'" in r.stderr and "404" in r.stderr
    assert not out.exists() and not (tmp_path / "none.zip.part").exists()
    r = cli.run(BACKUP)
    assert r.returncode == EX_USAGE
    r = cli.run(BACKUP, "--help")
    assert r.returncode == 0 and "Usage" in r.stdout


def test_reset_password_from_stdin(cli, api, pg):
    assert api.create("clipw", password="old-one").status_code == 201
    r = cli.run(RESET, "clipw", input="brand-new-pw\n")
    assert r.returncode == 0, r.stderr
    assert "replaced" in r.stdout
    h = admin_hash(pg, "clipw")
    assert pbkdf2_sha512.verify("brand-new-pw", h)
    assert not pbkdf2_sha512.verify("old-one", h)
    no_secret_in_argv(cli, API_KEY, "brand-new-pw")
    r = cli.run(RESET, "--json", "clipw", input="again-pw\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["subdomain"] == "clipw"


def test_reset_password_errors(cli, api):
    r = cli.run(RESET, "nosuch", input="x\n")
    assert r.returncode == EX_API and "404" in r.stderr
    r = cli.run(RESET, "clipw2")  # stdin is /dev/null: no password
    assert r.returncode == EX_USAGE
    r = cli.run(RESET, "a", "b")
    assert r.returncode == EX_USAGE
    r = cli.run(RESET, "clipw2", input="x" * 1025 + "\n")
    assert r.returncode == EX_API and "admin_password" in r.stderr
