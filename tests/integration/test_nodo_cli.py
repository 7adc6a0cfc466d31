"""The nodo command line tool (CONTRACT sections 7 and 13, docs/nodo.1.md)
against a running odoo-local-api, for every subcommand whose route the
daemon has today: create, list, delete, show, backup, password, node,
domains; and its errors (unknown tenant, missing env file, bad URL, wrong
key, unreachable API). What it prints and its exit status are checked
against what the API and PostgreSQL really hold.

The trash, restore-from-a-backup and suspend subcommands are tested in
test_nodo_cli_lifecycle.py.
"""
import json
import os
import select
import subprocess
import threading
import time
import zipfile
from pathlib import Path

import pytest
from passlib.hash import pbkdf2_sha512

from conftest import (API_KEY, BUILD, ROOT, TEMPLATE_PASSWORD, ZONE_SAJET,
                      free_port)

NODO = Path(BUILD) / "nodo"

EX_OK, EX_API, EX_USAGE, EX_UNAVAILABLE, EX_IOERR, EX_CONFIG = (
    0, 1, 64, 69, 74, 78)

COMMANDS = ("create", "list", "delete", "trash", "trash-restore",
            "trash-purge", "show", "backup", "restore", "suspend", "resume",
            "password", "node", "domains")


class Nodo:
    """Runs build/nodo against one API."""

    def __init__(self, api, tmp_path):
        self.api = api
        self.tmp = tmp_path

    def env(self, env_file=True, url=True, **extra):
        e = {"PATH": "/usr/bin:/bin", "HOME": str(self.tmp),
             "LANG": "C.UTF-8"}
        if env_file is True:
            e["NODO_ENV_FILE"] = str(self.api.env_file)
        elif env_file is not None:
            e["NODO_ENV_FILE"] = str(env_file)
        if url is True:
            e["NODO_API_URL"] = self.api.url
        elif url is not None:
            e["NODO_API_URL"] = url
        e.update({k: str(v) for k, v in extra.items()})
        return e

    def run(self, *args, input=None, env=None, timeout=120):
        kw = {"input": input} if input is not None else {
            "stdin": subprocess.DEVNULL}
        return subprocess.run([str(NODO)] + list(args),
                              env=env or self.env(), capture_output=True,
                              text=True, timeout=timeout, cwd=str(self.tmp),
                              **kw)

    def run_pty(self, *args, answers=(), stderr_pty=True, env=None,
                timeout=120):
        """Runs nodo with a pseudo-terminal as stdin (and stderr): each
        (prompt, text) of answers is typed once prompt has appeared on the
        terminal. Returns (rc, stdout, terminal output)."""
        master, slave = os.openpty()
        p = subprocess.Popen(
            [str(NODO)] + list(args), stdin=slave, stdout=subprocess.PIPE,
            stderr=slave if stderr_pty else subprocess.PIPE,
            env=env or self.env(), cwd=str(self.tmp))
        os.close(slave)
        seen = bytearray()
        out = []
        reader = threading.Thread(target=lambda: out.append(
            p.stdout.read()), daemon=True)
        reader.start()
        pending = list(answers)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if pending and pending[0][0].encode() in seen:
                    os.write(master, pending.pop(0)[1].encode())
                r, _, _ = select.select([master], [], [], 0.1)
                if r:
                    try:
                        chunk = os.read(master, 65536)
                    except OSError:  # EIO: the last slave end closed
                        break
                    if not chunk:
                        break
                    seen += chunk
                elif p.poll() is not None and not pending:
                    break
            try:
                rc = p.wait(timeout=max(1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise AssertionError(
                    f"nodo {' '.join(args)} still running after {timeout}"
                    f" s (waiting for an answer?); terminal: {seen!r}")
        finally:
            os.close(master)
            if p.poll() is None:
                p.kill()
        reader.join(10)
        return rc, (out[0] if out else b"").decode(), seen.decode(
            errors="replace")


@pytest.fixture
def nodo(api, tmp_path):
    return Nodo(api, tmp_path)


def admin_hash(pg, db):
    c = pg.connect(db)
    with c.cursor() as cur:
        cur.execute("SELECT password FROM res_users WHERE login = 'admin'")
        h = cur.fetchone()[0]
    c.close()
    return h


def fields(stdout):
    out = {}
    for line in stdout.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k] = v
    return out


def assert_api_error(r, status, want):
    """Exit status, the API's detail and code on stderr, nothing on
    stdout, no secret anywhere."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    body = want.json()
    assert body["detail"] in r.stderr, (body, r.stderr)
    assert f"(HTTP {want.status_code} {body['code']})" in r.stderr
    assert r.stdout == ""
    assert API_KEY not in r.stderr


# --- help and usage ---------------------------------------------------------

def test_help_needs_no_settings(nodo):
    env = nodo.env(env_file="/nonexistent/.env", url=None)
    r = nodo.run("--help", env=env)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("Usage: nodo [--json] <command>")
    for c in COMMANDS:
        assert f"  nodo {c} " in r.stdout or f"  nodo {c}\n" in r.stdout, c
    assert "Exit status" in r.stdout and "NODO_ENV_FILE" in r.stdout
    for c in COMMANDS:
        for opt in ("--help", "-h"):
            r = nodo.run(c, opt, env=env)
            assert r.returncode == 0, (c, r.stderr)
            assert r.stdout.startswith(f"Usage: nodo {c} "), (c, r.stdout)
            assert "Exit status: 0 done" in r.stdout
            assert r.stderr == ""
    r = nodo.run("--version", env=env)
    assert r.returncode == 0 and r.stdout.startswith("nodo ")


@pytest.mark.parametrize("args,why", [
    ([], "Usage: nodo"), (["bogus"], "unknown command: bogus"),
    (["--bogus", "list"], "unknown option: --bogus"),
    (["list", "a", "b"], "too many arguments"),
    (["create"], "Usage: nodo create"),
    (["delete"], "Usage: nodo delete"),
    (["delete", "a1", "--bogus"], "unknown option: --bogus"),
    (["delete", "--yes=no", "a1"], "--yes takes no value"),
    (["show"], "Usage: nodo show"),
    (["backup", "a1", "--output"], "--output needs a value"),
    (["restore", "a1"], "Usage: nodo restore"),
    (["restore", "a1", "x.zip", "--mode", "swap"], "--mode is move or copy"),
    (["trash-restore"], "Usage: nodo trash-restore"),
    (["node", "extra"], "too many arguments"),
])
def test_usage_errors(nodo, pg, args, why):
    before = sorted(pg.databases())
    r = nodo.run(*args)
    assert r.returncode == EX_USAGE, (r.stdout, r.stderr)
    assert why in r.stderr
    assert r.stdout == ""
    assert sorted(pg.databases()) == before


# --- create, list, show -------------------------------------------------------

def test_create_from_stdin_and_list_and_show(nodo, api, pg, data_dir):
    r = nodo.run("create", "cli_uno", input="pw-uno\nignored\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "Tenant cli_uno created."
    f = fields(r.stdout)
    assert f["URL"] == "https://cli_uno.sajet.us"
    assert f["Template"] == "tcs"
    assert f["DNS"] == "created (cli_uno.sajet.us)"
    h = admin_hash(pg, "cli_uno")
    assert pbkdf2_sha512.verify("pw-uno", h)
    assert not pbkdf2_sha512.verify(TEMPLATE_PASSWORD, h)
    assert (Path(data_dir) / "filestore" / "cli_uno").is_dir()

    r = nodo.run("--json", "create", "cli_dos", "otro.dominio", "tcs",
                 input="pw-dos\n")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["domain"] == "otro.dominio" and body["template_db"] == "tcs"
    assert body["dns"]["status"] == "created"

    r = nodo.run("list")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["SUBDOMAIN", "DOMAIN", "URL"]
    assert [x.split() for x in lines[1:-1]] == [
        ["cli_dos", "otro.dominio", "https://cli_dos.otro.dominio"],
        ["cli_uno", "sajet.us", "https://cli_uno.sajet.us"]]
    assert lines[-1] == "2 tenants"
    r = nodo.run("list", "otro.dominio", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == api.get(
        "/api/tenants", params={"domain": "otro.dominio"}).json()
    r = nodo.run("list", "nope.example")
    assert_api_error(r, EX_API, api.get("/api/tenants",
                                        params={"domain": "nope.example"}))

    r = nodo.run("show", "cli_uno")
    assert r.returncode == 0, r.stderr
    want = api.get("/api/tenants/cli_uno").json()
    f = fields(r.stdout)
    assert f["Tenant"] == "cli_uno"
    assert f["URL"] == want["url"]
    assert f["State"] == want["state"] == "active"
    assert f["Template"] == "tcs"
    assert f["Users"] == str(want["users"])
    assert "Database size" in f
    r = nodo.run("show", "--json", "cli_uno")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got.keys() == want.keys()
    assert got["subdomain"] == "cli_uno"


def test_create_password_on_a_terminal_is_not_echoed(nodo, pg):
    pw = "tty-secret-pw-4411"
    rc, out, term = nodo.run_pty(
        "create", "cli_tty", answers=[("Admin password for cli_tty:", pw +
                                       "\n"),
                                      ("Repeat it:", pw + "\n")])
    assert rc == 0, term
    assert out.startswith("Tenant cli_tty created.")
    assert pw not in term  # echo was off
    assert pbkdf2_sha512.verify(pw, admin_hash(pg, "cli_tty"))
    # two different answers: nothing is created
    rc, out, term = nodo.run_pty(
        "create", "cli_tty2", answers=[("Admin password for", "one\n"),
                                       ("Repeat it:", "two\n")])
    assert rc == EX_USAGE
    assert "the passwords differ" in term
    assert "cli_tty2" not in pg.databases()


def test_create_errors(nodo, api, pg):
    r = nodo.run("create", "sin_pw")  # stdin is /dev/null
    assert r.returncode == EX_USAGE and "no password" in r.stderr
    assert nodo.run("create", "dup", input="a\n").returncode == 0
    want = api.create("dup", "b")
    assert want.status_code == 409
    r = nodo.run("create", "dup", input="c\n")
    assert_api_error(r, EX_API, want)
    r = nodo.run("--json", "create", "dup", input="c\n")
    assert r.returncode == EX_API
    assert json.loads(r.stdout) == want.json()
    want = api.create("Mal", "pw")
    r = nodo.run("create", "Mal", input="pw\n")
    assert_api_error(r, EX_API, want)
    assert "Mal" not in pg.databases()


# --- show / delete errors ----------------------------------------------------

def test_unknown_tenant(nodo, api):
    for args, method, path, kw in (
            (["show", "fantasma"], "GET", "/api/tenants/fantasma", {}),
            (["delete", "fantasma"], "DELETE", "/api/tenant",
             {"json": {"subdomain": "fantasma"}}),
            (["password", "fantasma"], "POST",
             "/api/tenants/fantasma/password",
             {"json": {"admin_password": "x"}})):
        want = api.request(method, path, **kw)
        assert want.status_code == 404, want.text
        r = nodo.run(*args, input="x\n")
        assert_api_error(r, EX_API, want)
        assert "tenant_not_found" in r.stderr
    # a name that is no path segment stays one: encoded, then refused
    r = nodo.run("show", "../node")
    assert r.returncode == EX_API
    assert "HTTP 4" in r.stderr


# --- delete ------------------------------------------------------------------

def test_delete_without_a_terminal_asks_nothing(nodo, api, pg, cloudflare):
    for name, extra in (("del_uno", []), ("del_dos", ["--purge"])):
        assert api.create(name, "pw").status_code == 201
        r = nodo.run("delete", name, *extra, input="n\n")
        assert r.returncode == 0, r.stderr
        assert "[y/N]" not in r.stderr
        assert r.stdout.splitlines()[-1] == f"DNS: deleted ({name}.sajet.us)"
        assert name not in pg.databases()
        assert not any(x["name"] == f"{name}.sajet.us"
                       for x in cloudflare.records(ZONE_SAJET))
    assert api.create("del_json", "pw").status_code == 201
    r = nodo.run("delete", "--json", "--purge", "--yes", "del_json")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["subdomain"] == "del_json" and body["deleted"] is True


def test_delete_on_a_terminal(nodo, api, pg):
    """A final delete asks on a terminal: --purge always; a plain delete
    when the daemon has no trash (GET /api/trash is 404, as on this
    branch's daemon). --yes never asks. "n" keeps the tenant."""
    assert api.create("del_tty", "pw").status_code == 201
    trash = api.get("/api/trash").status_code
    for extra, question in (
            (["--purge"], "Delete tenant del_tty and all its data for good"
                          " (no trash)? [y/N]"),
            ([], "Delete tenant del_tty and all its data? [y/N]")):
        if not extra and trash != 404:
            continue  # with a trash: test_nodo_cli_lifecycle.py
        rc, out, term = nodo.run_pty("delete", "del_tty", *extra,
                                     answers=[("[y/N]", "n\n")])
        assert rc == EX_API, term
        assert question in term
        assert "Not deleted." in term
        assert out == ""
        assert "del_tty" in pg.databases()
    rc, out, term = nodo.run_pty("delete", "del_tty", "--purge",
                                 answers=[("[y/N]", "y\n")])
    assert rc == 0, term
    assert out.startswith("Tenant del_tty deleted")
    assert "del_tty" not in pg.databases()
    assert api.create("del_tty", "pw").status_code == 201
    rc, out, term = nodo.run_pty("delete", "--yes", "--purge", "del_tty")
    assert rc == 0, term
    assert "[y/N]" not in term
    assert "del_tty" not in pg.databases()


# --- backup ------------------------------------------------------------------

def test_backup_to_file(nodo, api, tmp_path):
    assert api.create("bk_cli").status_code == 201
    out = tmp_path / "bk.zip"
    r = nodo.run("backup", "bk_cli", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == f"Backup of bk_cli written to {out} " \
        f"({out.stat().st_size} bytes).\n"
    assert r.stderr == ""  # no bar without a terminal
    z = zipfile.ZipFile(out)
    assert z.testzip() is None
    assert "dump.sql" in z.namelist() and "manifest.json" in z.namelist()
    assert json.loads(z.read("manifest.json"))["db_name"] == "bk_cli"
    assert not Path(str(out) + ".part").exists()
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    # never overwritten
    r = nodo.run("backup", "bk_cli", "--output", str(out))
    assert r.returncode == EX_USAGE and "exists already" in r.stderr
    # --json and the default name in the current folder
    r = nodo.run("backup", "--json", "bk_cli")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["file"].startswith("./bk_cli_") and d["file"].endswith(".zip")
    assert d["bytes"] == (tmp_path / d["file"]).stat().st_size
    # "-": the zip on standard output
    p = subprocess.run([str(NODO), "backup", "bk_cli", "-"], env=nodo.env(),
                       capture_output=True, timeout=120, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    assert p.stdout[:2] == b"PK"
    (tmp_path / "std.zip").write_bytes(p.stdout)
    assert zipfile.ZipFile(tmp_path / "std.zip").testzip() is None


def test_backup_progress_bar_on_a_terminal(nodo, api, tmp_path):
    assert api.create("bk_bar").status_code == 201
    out = tmp_path / "bar.zip"
    rc, stdout, term = nodo.run_pty("backup", "bk_bar", str(out))
    assert rc == 0, term
    assert "written to" in stdout
    frames = [x.strip() for x in term.replace("\x1b[K", "").split("\r")
              if x.strip()]
    # redrawn in place; the last frame is complete: 100 %, size = bytes
    size = out.stat().st_size
    assert frames[-1].startswith("[") and " 100%  " in frames[-1], term
    assert frames[-1].count(" / ") == 1
    assert f"({size} bytes)" in stdout
    assert out.is_file()


def test_backup_errors(nodo, api, tmp_path):
    out = tmp_path / "none.zip"
    want = api.get("/api/tenants/nosuch/backup")
    assert want.status_code == 404
    r = nodo.run("backup", "nosuch", str(out))
    assert_api_error(r, EX_API, want)
    assert not out.exists() and not Path(str(out) + ".part").exists()
    r = nodo.run("backup", "nosuch", str(tmp_path / "no-dir" / "x.zip"))
    assert r.returncode == EX_USAGE and "cannot create" in r.stderr
    # a full disk: /dev/full as the output
    assert api.create("bk_full").status_code == 201
    p = subprocess.run(f"{NODO} backup bk_full - >/dev/full", shell=True,
                       env=nodo.env(), capture_output=True, text=True,
                       timeout=120, cwd=str(tmp_path))
    assert p.returncode == EX_IOERR, p.stderr
    assert "cannot write standard output" in p.stderr
    # "-" with a terminal as standard output: no zip thrown at it
    master, slave = os.openpty()
    try:
        p = subprocess.run([str(NODO), "backup", "bk_full", "-"],
                           stdin=subprocess.DEVNULL, stdout=slave,
                           stderr=subprocess.PIPE, env=nodo.env(),
                           timeout=60, cwd=str(tmp_path))
    finally:
        os.close(slave)
        os.close(master)
    assert p.returncode == EX_USAGE
    assert b"standard output is a terminal" in p.stderr


# --- password ----------------------------------------------------------------

def test_password(nodo, api, pg):
    assert api.create("pw_cli", password="old-pw").status_code == 201
    r = nodo.run("password", "pw_cli", input="new-pw-1\n")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "Admin password of pw_cli replaced.\n"
    assert pbkdf2_sha512.verify("new-pw-1", admin_hash(pg, "pw_cli"))
    rc, out, term = nodo.run_pty("password", "pw_cli", answers=[
        ("New admin password for pw_cli:", "tty-pw-2\n"),
        ("Repeat it:", "tty-pw-2\n")])
    assert rc == 0, term
    assert "tty-pw-2" not in term
    assert pbkdf2_sha512.verify("tty-pw-2", admin_hash(pg, "pw_cli"))
    r = nodo.run("password", "--json", "pw_cli", input="json-pw\n")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["subdomain"] == "pw_cli"
    # too long for the API: its 422 naming the field; nothing changed
    r = nodo.run("password", "pw_cli", input="x" * 1025 + "\n")
    assert r.returncode == EX_API and "admin_password" in r.stderr
    assert pbkdf2_sha512.verify("json-pw", admin_hash(pg, "pw_cli"))
    r = nodo.run("password", "pw_cli", input="\n")
    assert r.returncode == EX_USAGE and "empty" in r.stderr


# --- node and domains --------------------------------------------------------

def test_node(nodo, api):
    assert api.create("nd_cli").status_code == 201
    r = nodo.run("node")
    assert r.returncode == 0, r.stderr
    want = api.get("/api/node").json()
    f = fields(r.stdout)
    assert f["Version"] == want["version"]
    assert f["Tenants"].startswith(f"{want['tenants']} (")
    assert f["CPUs"] == str(want["cpus"])
    assert "free of" in f["Disk (data_dir)"]
    assert any(line.startswith("Template: tcs")
               for line in r.stdout.splitlines())
    r = nodo.run("node", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout).keys() == want.keys()


def test_domains(nodo, api):
    r = nodo.run("domains")
    assert r.returncode == 0, r.stderr
    want = api.get("/api/domains").json()
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["DOMAIN", "ZONE_ID"]
    rows = [x.split() for x in lines[1:-1]]
    assert [r_[0] for r_ in rows] == [d["domain"] for d in want["domains"]]
    assert ["sajet.us", ZONE_SAJET, "(default)"] in rows
    assert lines[-1] == f"Tunnel: {want['tunnel_id']}"
    r = nodo.run("--json", "domains")
    assert json.loads(r.stdout) == want


# --- configuration and connection errors -------------------------------------

def test_env_file_errors(nodo, api, tmp_path):
    missing = tmp_path / "nope" / ".env"
    r = nodo.run("list", env=nodo.env(env_file=missing))
    assert r.returncode == EX_CONFIG
    assert f"env file {missing} not found" in r.stderr
    f = tmp_path / "nokey.env"
    f.write_text(f"API_PORT={api.port}\n")
    r = nodo.run("list", env=nodo.env(env_file=f, url=None))
    assert r.returncode == EX_CONFIG
    assert "PROVISIONING_API_KEY is not set" in r.stderr
    f.write_text(f"PROVISIONING_API_KEY={API_KEY}\nAPI_PORT=99999\n")
    r = nodo.run("list", env=nodo.env(env_file=f, url=None))
    assert r.returncode == EX_CONFIG
    assert "API_PORT in" in r.stderr and API_KEY not in r.stderr
    # the daemons' parser: a broken line is named, the key never shown
    f.write_text(f"PROVISIONING_API_KEY={API_KEY}\nnot a setting\n")
    r = nodo.run("list", env=nodo.env(env_file=f, url=None))
    assert r.returncode == EX_CONFIG
    assert f"{f}:2:" in r.stderr and API_KEY not in r.stderr
    # the key and port of the file alone (no NODO_API_URL)
    f.write_text(f"PROVISIONING_API_KEY='{API_KEY}'\nAPI_HOST=0.0.0.0\n"
                 f"API_PORT={api.port}\n")
    r = nodo.run("list", env=nodo.env(env_file=f, url=None))
    assert r.returncode == 0, r.stderr
    # a directory, and an unreadable file
    r = nodo.run("list", env=nodo.env(env_file=tmp_path))
    assert r.returncode == EX_CONFIG
    assert "cannot read the env file" in r.stderr and "nodo" in r.stderr
    if os.geteuid() != 0:
        f.chmod(0)
        r = nodo.run("list", env=nodo.env(env_file=f))
        assert r.returncode == EX_CONFIG
        assert "cannot read the env file" in r.stderr


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/", "http://", "127.0.0.1:80",
                                 "http://127.0.0.1:80 /x"])
def test_bad_url(nodo, url):
    r = nodo.run("list", env=nodo.env(url=url))
    assert r.returncode == EX_CONFIG, r.stderr
    assert "NODO_API_URL is not an http:// or https:// URL" in r.stderr


def test_unreachable_and_timeout_setting(nodo, pg):
    dead = f"http://127.0.0.1:{free_port()}"
    for args in (["list"], ["show", "x1"], ["node"]):
        r = nodo.run(*args, env=nodo.env(url=dead))
        assert r.returncode == EX_UNAVAILABLE, r.stderr
        assert f"cannot connect to the Nodo API at {dead}" in r.stderr
        assert r.stdout == ""
    r = nodo.run("create", "nadie", input="pw\n", env=nodo.env(url=dead))
    assert r.returncode == EX_UNAVAILABLE
    assert "nadie" not in pg.databases()
    r = nodo.run("list", env=nodo.env(NODO_API_TIMEOUT="soon"))
    assert r.returncode == EX_USAGE and "NODO_API_TIMEOUT" in r.stderr


def test_wrong_key(nodo, api, pg, tmp_path):
    assert api.create("llave").status_code == 201
    want = api.get("/api/tenants", key=False,
                   headers={"X-API-KEY": "not-the-key"})
    assert want.status_code == 401
    env = nodo.env(NODO_API_KEY="not-the-key")
    for args in (["list"], ["show", "llave"], ["delete", "--purge", "llave"],
                 ["backup", "llave", str(tmp_path / "k.zip")]):
        r = nodo.run(*args, env=env)
        assert_api_error(r, EX_API, want)
        assert "not-the-key" not in r.stderr
    assert "llave" in pg.databases()
    assert not (tmp_path / "k.zip").exists()


def test_unknown_nodo_variable_is_warned_about(nodo, api):
    r = nodo.run("list", env=nodo.env(NODO_API_ULR="http://127.0.0.1:1"))
    assert r.returncode == 0, r.stderr
    assert "unknown environment variable NODO_API_ULR ignored" in r.stderr
    r = nodo.run("list", env=nodo.env(NODO_API_TIMEOUT="60"))
    assert r.returncode == 0 and r.stderr == ""


@pytest.mark.parametrize("script,cmd", [("restore_tenant.sh", "restore"),
                                        ("suspend_tenant.sh", "suspend"),
                                        ("resume_tenant.sh", "resume")])
def test_new_wrappers_are_nodo(nodo, script, cmd):
    """The wrappers of the newer operations are exactly `nodo <cmd>`."""
    env = nodo.env(NODO_BUILD=BUILD)
    path = str(ROOT / "scripts" / script)
    r = subprocess.run([path, "--help"], env=env, capture_output=True,
                       text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"Usage: nodo {cmd} ")
    r = subprocess.run([path], env=env, capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert r.returncode == EX_USAGE
    assert f"Usage: nodo {cmd} " in r.stderr
