"""The CLI wrappers (CONTRACT section 7) against a running odoo-local-api.

scripts/create_tenant.sh, list_tenants.sh and delete_tenant.sh are run as
an operator would, with subprocess and no terminal on stdin (except where a
pseudo-terminal is the point), pointed at the `api` fixture with
NODO_ENV_FILE and NODO_API_URL. Every test checks what the script printed
and its exit status against what the API and PostgreSQL really hold.

The wrappers are thin: they hand the work to the `nodo` program, found
through a PATH shim that records its own argv and environment and then
execs the real build/nodo, so the tests can prove that the key and the
admin password never reach a command line (nodo itself talks HTTP with
libcurl and starts no other program). "curl_calls" are the shim's records.
"""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from passlib.hash import pbkdf2_sha512

from conftest import (API_KEY, BUILD, ROOT, TEMPLATE_PASSWORD, TUNNEL_ID,
                      ZONE_OTRO, ZONE_SAJET, free_port, make_template)

SCRIPTS = ROOT / "scripts"
CREATE = SCRIPTS / "create_tenant.sh"
LIST = SCRIPTS / "list_tenants.sh"
DELETE = SCRIPTS / "delete_tenant.sh"

# Exit statuses of the wrappers and nodo (scripts/nodo-common.sh).
EX_API, EX_USAGE, EX_UNAVAILABLE, EX_CONFIG = 1, 64, 69, 78

CURL_SHIM = """#!/bin/sh
# Records this invocation's argv (NUL-separated) and environment, then
# becomes the real nodo with exactly the same argv.
n=$(date +%s%N)-$$
for a in "$0" "$@"; do printf '%s\\0' "$a"; done >"$CURL_LOG_DIR/$n.argv"
cat /proc/$$/environ >"$CURL_LOG_DIR/$n.environ"
exec @NODO@ "$@"
"""
NODO = Path(BUILD) / "nodo"


class Cli:
    """Runs the wrappers against one API with a recording nodo shim."""

    def __init__(self, api, tmp_path):
        self.api = api
        self.tmp = tmp_path
        self.shim_dir = tmp_path / "shim"
        self.shim_dir.mkdir()
        shim = self.shim_dir / "nodo"
        shim.write_text(CURL_SHIM.replace("@NODO@", str(NODO)))
        shim.chmod(0o755)
        self.log_dir = tmp_path / "curl-log"
        self.log_dir.mkdir()
        self.home = tmp_path / "home"
        self.home.mkdir()

    def env(self, env_file=True, url=True, **extra):
        e = {"PATH": f"{self.shim_dir}:/usr/bin:/bin",
             "HOME": str(self.home), "LANG": "C.UTF-8",
             "CURL_LOG_DIR": str(self.log_dir)}
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

    def run(self, script, *args, stdin=subprocess.DEVNULL, input=None,
            env=None, prefix=(), timeout=120):
        if env is None:
            env = self.env()
        kw = {"input": input} if input is not None else {"stdin": stdin}
        return subprocess.run(list(prefix) + [str(script)] + list(args),
                              env=env, capture_output=True, text=True,
                              timeout=timeout, cwd=str(self.tmp), **kw)

    def curl_calls(self):
        """[(argv list, environ bytes)] of every nodo run so far."""
        calls = []
        for a in sorted(self.log_dir.glob("*.argv")):
            argv = a.read_bytes().split(b"\0")[:-1]
            environ = a.with_suffix(".environ").read_bytes()
            calls.append(([x.decode() for x in argv], environ))
        return calls

    def clear_calls(self):
        for f in self.log_dir.iterdir():
            f.unlink()


@pytest.fixture
def cli(api, tmp_path):
    return Cli(api, tmp_path)


def tenant_dbs(pg):
    return sorted(d for d in pg.databases()
                  if d not in ("postgres", "template0", "template1", "tcs"))


def admin_hash(pg, db):
    c = pg.connect(db)
    with c.cursor() as cur:
        cur.execute("SELECT password FROM res_users WHERE login = 'admin'")
        h = cur.fetchone()[0]
    c.close()
    return h


def icp_value(pg, db, key):
    c = pg.connect(db)
    with c.cursor() as cur:
        cur.execute("SELECT value FROM ir_config_parameter WHERE key = %s",
                    (key,))
        row = cur.fetchone()
    c.close()
    return row[0] if row else None


def fields(stdout):
    """'Key: value' lines of a summary as a dict."""
    out = {}
    for line in stdout.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            out[k] = v
    return out


def api_tenant(api, name):
    body = api.get("/api/tenants").json()
    for t in body["tenants"]:
        if t["subdomain"] == name:
            return t
    return None


class Listener:
    """A listening socket on 127.0.0.1 that counts the connections made to
    it: pointed at by NODO_API_URL, it shows that nodo stopped before
    calling the API."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.setblocking(False)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def connections(self):
        n = 0
        while True:
            try:
                c, _ = self.sock.accept()
            except BlockingIOError:
                return n
            c.close()
            n += 1


def assert_failed_with(r, status, detail):
    """Non-zero exit, the API's detail on stderr, nothing on stdout."""
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert detail, "the API gave no detail to compare with"
    assert detail in r.stderr, (detail, r.stderr)
    assert r.stdout == ""


def assert_no_secret_in_curl(cli, *secrets, want_calls=1):
    calls = cli.curl_calls()
    assert len(calls) >= want_calls, "the nodo shim was not used"
    for argv, environ in calls:
        joined = "\0".join(argv)
        for s in secrets:
            assert s not in joined, f"{s!r} in curl argv: {argv}"
            assert s.encode() not in environ, f"{s!r} in curl environment"
    return calls


# --- create -----------------------------------------------------------------

def test_create_seed_two_args(cli, api, pg, data_dir, cloudflare):
    """create_tenant.sh nombre_tenant contraseña: defaults from the node."""
    assert "cliente_nuevo" not in pg.databases()
    r = cli.run(CREATE, "cliente_nuevo", "secreto123")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == "Tenant cliente_nuevo created."
    f = fields(r.stdout)
    assert f["URL"] == "https://cliente_nuevo.sajet.us"
    assert f["Database"] == "cliente_nuevo"
    assert f["Domain"] == "sajet.us"
    assert f["Template"] == "tcs"
    assert f["DNS"] == "created (cliente_nuevo.sajet.us)"
    # Really there: database, password, filestore, DNS record, API listing.
    assert "cliente_nuevo" in pg.databases()
    h = admin_hash(pg, "cliente_nuevo")
    assert pbkdf2_sha512.verify("secreto123", h)
    assert not pbkdf2_sha512.verify(TEMPLATE_PASSWORD, h)
    assert (Path(data_dir) / "filestore" / "cliente_nuevo").is_dir()
    assert [(x["name"], x["content"]) for x in cloudflare.records(ZONE_SAJET)
            if x["name"].startswith("cliente_nuevo.")] == [
        ("cliente_nuevo.sajet.us", f"{TUNNEL_ID}.cfargotunnel.com")]
    assert api_tenant(api, "cliente_nuevo") == {
        "subdomain": "cliente_nuevo", "database": "cliente_nuevo",
        "domain": "sajet.us", "url": "https://cliente_nuevo.sajet.us",
        "state": "active"}


def test_create_seed_with_domain(cli, api, pg, cloudflare):
    """create_tenant.sh nombre_tenant contraseña dominio."""
    r = cli.run(CREATE, "otro_cliente", "pw-otro", "otro.dominio")
    assert r.returncode == 0, r.stderr
    f = fields(r.stdout)
    assert f["URL"] == "https://otro_cliente.otro.dominio"
    assert f["Domain"] == "otro.dominio"
    assert f["Template"] == "tcs"
    assert "otro_cliente" in pg.databases()
    assert pbkdf2_sha512.verify("pw-otro", admin_hash(pg, "otro_cliente"))
    assert api_tenant(api, "otro_cliente")["domain"] == "otro.dominio"
    assert [x["name"] for x in cloudflare.records(ZONE_OTRO)] == [
        "otro_cliente.otro.dominio"]


def test_create_seed_with_domain_and_template(cli, api, pg, data_dir):
    """create_tenant.sh nombre_tenant contraseña dominio plantilla: the copy
    comes from the template named, not from the default one."""
    make_template(pg, data_dir, "tcs2", is_template=True)
    c = pg.connect("tcs2")
    with c.cursor() as cur:
        cur.execute("INSERT INTO ir_config_parameter (key, value) "
                    "VALUES ('nodo.test.marker', 'from-tcs2')")
    c.close()
    r = cli.run(CREATE, "desde_tcs2", "secreto123", "sajet.us", "tcs2")
    assert r.returncode == 0, r.stderr
    f = fields(r.stdout)
    assert f["Template"] == "tcs2"
    assert f["Domain"] == "sajet.us"
    assert "desde_tcs2" in pg.databases()
    assert icp_value(pg, "desde_tcs2", "nodo.test.marker") == "from-tcs2"
    assert icp_value(pg, "tcs", "nodo.test.marker") is None
    assert pbkdf2_sha512.verify("secreto123", admin_hash(pg, "desde_tcs2"))
    # The seed's full form with the default template, too.
    r = cli.run(CREATE, "desde_tcs", "secreto123", "sajet.us", "tcs")
    assert r.returncode == 0, r.stderr
    assert fields(r.stdout)["Template"] == "tcs"
    assert icp_value(pg, "desde_tcs", "nodo.test.marker") is None


def test_create_password_is_sent_verbatim(cli, pg):
    """Quotes, backslashes, $, spaces and UTF-8 reach Odoo unchanged."""
    pw = 'pä"ss \\word $HOME `x` \'q\' ñ'
    r = cli.run(CREATE, "raro", pw)
    assert r.returncode == 0, r.stderr
    assert pbkdf2_sha512.verify(pw, admin_hash(pg, "raro"))


def test_create_password_from_stdin(cli, pg):
    """contraseña "-" reads the first line of a non-terminal stdin."""
    r = cli.run(CREATE, "por_stdin", "-", input="desde-stdin-pw\nignored\n")
    assert r.returncode == 0, r.stderr
    assert pbkdf2_sha512.verify("desde-stdin-pw", admin_hash(pg, "por_stdin"))
    r = cli.run(CREATE, "sin_pw", "-", input="")
    assert r.returncode == EX_USAGE
    assert "no password" in r.stderr
    assert "sin_pw" not in pg.databases()


def test_create_json_is_the_api_reply(cli, api, pg):
    r = cli.run(CREATE, "--json", "json_cli", "secreto123", "sajet.us", "tcs")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["subdomain"] == "json_cli"
    assert body["database"] == "json_cli"
    assert body["domain"] == "sajet.us"
    assert body["url"] == "https://json_cli.sajet.us"
    assert body["template_db"] == "tcs"
    assert body["dns"]["status"] == "created"
    assert body["dns"]["name"] == "json_cli.sajet.us"
    listed = api_tenant(api, "json_cli")
    assert listed.pop("state") == "active"  # the list's own (CONTRACT 10)
    assert listed == {k: body[k] for k in listed}
    assert "json_cli" in pg.databases()


# --- list -------------------------------------------------------------------

def test_list_empty(cli, api):
    r = cli.run(LIST)
    assert r.returncode == 0, r.stderr
    assert r.stdout == "No tenants.\n0 tenants\n"
    r = cli.run(LIST, "sajet.us")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "No tenants in sajet.us.\n0 tenants\n"


def table(stdout):
    lines = stdout.splitlines()
    assert lines[0].split() == ["SUBDOMAIN", "DOMAIN", "URL"]
    return [line.split() for line in lines[1:-1]], lines[-1]


def test_list_all_and_by_domain(cli, api, pg):
    for name, dom in (("zeta", "sajet.us"), ("alfa", "otro.dominio"),
                      ("beta-1", "sajet.us")):
        assert api.create(name, "pw", domain=dom).status_code == 201
    # A database made outside the API is a tenant of ODOO_DOMAIN, listed
    # once the list's catalog check sees it (every 250 ms).
    pg.su_exec("CREATE DATABASE gamma OWNER odoo TEMPLATE tcs")
    deadline = time.monotonic() + 10
    while "gamma" not in [t["subdomain"] for t in
                          api.get("/api/tenants").json()["tenants"]]:
        assert time.monotonic() < deadline, "gamma never listed"
        time.sleep(0.05)

    r = cli.run(LIST)
    assert r.returncode == 0, r.stderr
    rows, total = table(r.stdout)
    want = [[t["subdomain"], t["domain"], t["url"]]
            for t in api.get("/api/tenants").json()["tenants"]]
    assert rows == want
    assert [row[0] for row in rows] == ["alfa", "beta-1", "gamma", "zeta"]
    assert rows[0] == ["alfa", "otro.dominio", "https://alfa.otro.dominio"]
    assert total == "4 tenants"

    r = cli.run(LIST, "sajet.us")
    assert r.returncode == 0, r.stderr
    rows, total = table(r.stdout)
    assert rows == [["beta-1", "sajet.us", "https://beta-1.sajet.us"],
                    ["gamma", "sajet.us", "https://gamma.sajet.us"],
                    ["zeta", "sajet.us", "https://zeta.sajet.us"]]
    assert total == "3 tenants"

    r = cli.run(LIST, "otro.dominio")
    assert r.returncode == 0, r.stderr
    rows, total = table(r.stdout)
    assert rows == [["alfa", "otro.dominio", "https://alfa.otro.dominio"]]
    assert total == "1 tenant"


def test_list_json_equals_api(cli, api):
    for name, dom in (("uno", "sajet.us"), ("dos", "otro.dominio")):
        assert api.create(name, "pw", domain=dom).status_code == 201
    r = cli.run(LIST, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == api.get("/api/tenants").json()
    assert json.loads(r.stdout)["count"] == 2
    r = cli.run(LIST, "--json", "otro.dominio")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got == api.get("/api/tenants",
                          params={"domain": "otro.dominio"}).json()
    assert [t["subdomain"] for t in got["tenants"]] == ["dos"]


def test_list_url_from_env_file(cli, api):
    """Without NODO_API_URL the URL comes from API_HOST/API_PORT of the env
    file."""
    assert api.create("por_puerto", "pw").status_code == 201
    r = cli.run(LIST, "--json", env=cli.env(url=None))
    assert r.returncode == 0, r.stderr
    assert [t["subdomain"] for t in json.loads(r.stdout)["tenants"]] == [
        "por_puerto"]
    assert "NODO_API_URL" not in cli.env(url=None)


def test_list_unknown_domain_is_422(cli, api):
    want = api.get("/api/tenants", params={"domain": "nope.example"})
    assert want.status_code == 422
    r = cli.run(LIST, "nope.example")
    assert_failed_with(r, EX_API, want.json()["detail"])
    assert "HTTP 422" in r.stderr


# --- delete -----------------------------------------------------------------

def test_delete_seed_form(cli, api, pg, data_dir, cloudflare):
    """delete_tenant.sh nombre_tenant --yes (option after the name)."""
    assert api.create("borrame", "pw").status_code == 201
    assert "borrame" in pg.databases()
    assert any(x["name"] == "borrame.sajet.us"
               for x in cloudflare.records(ZONE_SAJET))
    r = cli.run(DELETE, "borrame", "--yes")
    assert r.returncode == 0, r.stderr
    m = re.fullmatch(r"Tenant borrame moved to the trash \(id ([0-9a-f]{16}), "
                     r"restorable until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; "
                     r"nodo trash-restore \1\)\.\n"
                     r"DNS: deleted \(borrame\.sajet\.us\)\n", r.stdout)
    assert m, r.stdout
    assert "borrame" not in pg.databases()
    assert "_nodo_t" + m.group(1) in pg.databases()
    assert not (Path(data_dir) / "filestore" / "borrame").exists()
    assert not any(x["name"] == "borrame.sajet.us"
                   for x in cloudflare.records(ZONE_SAJET))
    assert api_tenant(api, "borrame") is None


def test_delete_json(cli, api, pg):
    assert api.create("borrame_json", "pw").status_code == 201
    r = cli.run(DELETE, "--json", "-y", "borrame_json")
    assert r.returncode == 0, r.stderr
    body = json.loads(r.stdout)
    assert body["subdomain"] == "borrame_json"
    assert body["deleted"] is True
    assert body["dns"]["status"] == "deleted"
    assert body["dns"].get("name", "borrame_json.sajet.us") == \
        "borrame_json.sajet.us"
    assert "borrame_json" not in pg.databases()
    # Deleting it again: the API's 404, and --json still prints its body.
    want = api.delete("/api/tenant", json={"subdomain": "borrame_json"})
    assert want.status_code == 404
    r = cli.run(DELETE, "--json", "--yes", "borrame_json")
    assert r.returncode == EX_API
    assert json.loads(r.stdout) == want.json()
    assert want.json()["detail"] in r.stderr


def test_delete_without_a_terminal_deletes_without_asking(cli, api, pg):
    """The seed's form: scripts and the APP server call delete_tenant.sh
    with no terminal on stdin and no --yes; it deletes, asks nothing."""
    for name, kw in (("sin_tty_null", {"stdin": subprocess.DEVNULL}),
                     ("sin_tty_pipe", {"input": "n\n"})):
        assert api.create(name, "pw").status_code == 201
        r = cli.run(DELETE, name, **kw)
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(f"Tenant {name} moved to the trash"), \
            r.stdout
        assert "[y/N]" not in r.stderr
        assert name not in pg.databases()
        assert api_tenant(api, name) is None


def test_unknown_nodo_variable_is_warned_about(cli, api):
    """A typo such as NODO_API_ULR is named on stderr; the CLI's own
    variables are not."""
    r = cli.run(LIST, env=cli.env(NODO_API_ULR="http://127.0.0.1:1",
                                  NODO_API_TIMEOUT="60"))
    assert r.returncode == 0, r.stderr
    assert "unknown environment variable NODO_API_ULR ignored" in r.stderr
    assert "NODO_API_TIMEOUT" not in r.stderr.replace(
        "NODO_ENV_FILE NODO_API_URL NODO_API_KEY NODO_API_TIMEOUT", "")
    r = cli.run(LIST, env=cli.env(NODO_API_TIMEOUT="60"))
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""


def run_on_pty(cli, args, answer):
    """Runs delete_tenant.sh with a pseudo-terminal as stdin, answering the
    prompt with `answer`."""
    master, slave = os.openpty()
    try:
        p = subprocess.Popen([str(DELETE)] + args, stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=cli.env(), text=True, cwd=str(cli.tmp))
        os.close(slave)
        slave = None
        os.write(master, answer.encode())
        out, err = p.communicate(timeout=60)
        return p.returncode, out, err
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)


def test_delete_asks_on_a_terminal(cli, api, pg):
    """To the trash: restorable, so nothing is asked even at a terminal
    (CONTRACT 13); --purge asks there."""
    assert api.create("preguntame", "pw").status_code == 201
    rc, out, err = run_on_pty(cli, ["preguntame"], "")
    assert rc == 0, err
    assert "[y/N]" not in err
    assert out.startswith("Tenant preguntame moved to the trash")
    assert "preguntame" not in pg.databases()
    assert api.create("preguntame", "pw").status_code == 201
    rc, out, err = run_on_pty(cli, ["--purge", "preguntame"], "n\n")
    assert rc == EX_API
    assert "Delete tenant preguntame and all its data" in err
    assert "[y/N]" in err
    assert "preguntame" in pg.databases()
    trash = api.get("/api/trash").json()["count"]
    rc, out, err = run_on_pty(cli, ["--purge", "preguntame"], "y\n")
    assert rc == 0, err
    assert "preguntame" not in pg.databases()
    assert api.get("/api/trash").json()["count"] == trash


# --- help and usage -----------------------------------------------------------

@pytest.mark.parametrize("script,usage", [
    (CREATE, "Usage: create_tenant.sh [--json] <nombre_tenant> <contraseña> "
             "[dominio] [plantilla]"),
    (LIST, "Usage: list_tenants.sh [--json] [dominio]"),
    (DELETE, "Usage: delete_tenant.sh [--yes] [--json] <nombre_tenant>"),
])
def test_help(cli, script, usage):
    for opt in ("--help", "-h"):
        # --help needs neither the env file nor the API.
        r = cli.run(script, opt, env=cli.env(env_file="/nonexistent/.env",
                                             url=None))
        assert r.returncode == 0, r.stderr
        assert r.stdout.startswith(usage + "\n")
        assert "NODO_ENV_FILE" in r.stdout
        assert "Exit status" in r.stdout
        assert r.stderr == ""
    assert cli.curl_calls() == []


@pytest.mark.parametrize("script,args", [
    (CREATE, []), (CREATE, ["solo_nombre"]), (CREATE, ["a1", "b", "c", "d", "e"]),
    (CREATE, ["--bogus", "a1", "pw"]), (LIST, ["a", "b"]), (LIST, ["--bogus"]),
    (DELETE, []), (DELETE, ["a1", "b1", "--yes"]), (DELETE, ["--bogus", "a1"]),
])
def test_usage_errors(cli, api, pg, script, args):
    before = tenant_dbs(pg)
    r = cli.run(script, *args)
    assert r.returncode == EX_USAGE, (r.stdout, r.stderr)
    assert "Usage:" in r.stderr or "unknown option" in r.stderr
    assert r.stdout == ""
    assert cli.curl_calls() == []
    assert tenant_dbs(pg) == before


# --- errors from the API --------------------------------------------------------

def test_create_duplicate_is_409(cli, api, pg):
    r = cli.run(CREATE, "duplicado", "primera")
    assert r.returncode == 0, r.stderr
    want = api.create("duplicado", "segunda")
    assert want.status_code == 409
    r = cli.run(CREATE, "duplicado", "tercera")
    assert_failed_with(r, EX_API, want.json()["detail"])
    assert "HTTP 409 tenant_exists" in r.stderr
    # The first password is still the one in place.
    h = admin_hash(pg, "duplicado")
    assert pbkdf2_sha512.verify("primera", h)
    assert not pbkdf2_sha512.verify("tercera", h)
    # --json prints the error body as the API sent it.
    r = cli.run(CREATE, "--json", "duplicado", "x")
    assert r.returncode == EX_API
    assert json.loads(r.stdout) == want.json()


@pytest.mark.parametrize("name,code", [
    ("Mayusculas", "invalid_subdomain"), ("a", "invalid_subdomain"),
    ("-guion", "invalid_subdomain"), ("x;drop", "invalid_subdomain"),
    ("con espacio", "invalid_subdomain"), ("www", "reserved_name"),
    ("tcs", "reserved_name"),
])
def test_create_invalid_name_is_422(cli, api, pg, name, code):
    before = tenant_dbs(pg)
    want = api.create(name, "pw")
    assert want.status_code == 422, want.text
    assert want.json()["code"] == code
    args = ["--", name, "pw"] if name.startswith("-") else [name, "pw"]
    r = cli.run(CREATE, *args)
    assert_failed_with(r, EX_API, want.json()["detail"])
    assert f"HTTP 422 {code}" in r.stderr
    assert tenant_dbs(pg) == before


def test_create_unknown_domain_is_422(cli, api, pg):
    want = api.create("dominio_malo", "pw", domain="nope.example")
    assert want.status_code == 422
    r = cli.run(CREATE, "dominio_malo", "pw", "nope.example")
    assert_failed_with(r, EX_API, want.json()["detail"])
    assert "dominio_malo" not in pg.databases()


def test_create_unknown_template_is_404(cli, api, pg, data_dir):
    want = api.create("sin_plantilla", "pw", domain="sajet.us",
                      template_db="no_existe")
    assert want.status_code == 404
    r = cli.run(CREATE, "sin_plantilla", "pw", "sajet.us", "no_existe")
    assert_failed_with(r, EX_API, want.json()["detail"])
    assert "HTTP 404 template_not_found" in r.stderr
    assert "sin_plantilla" not in pg.databases()
    assert not (Path(data_dir) / "filestore" / "sin_plantilla").exists()


def test_delete_unknown_tenant_is_404(cli, api):
    want = api.delete("/api/tenant", json={"subdomain": "fantasma"})
    assert want.status_code == 404
    r = cli.run(DELETE, "--yes", "fantasma")
    assert_failed_with(r, EX_API, want.json()["detail"])
    assert "HTTP 404 tenant_not_found" in r.stderr


def test_delete_template_is_422(cli, api, pg):
    want = api.delete("/api/tenant", json={"subdomain": "tcs"})
    assert want.status_code == 422
    r = cli.run(DELETE, "--yes", "tcs")
    assert_failed_with(r, EX_API, want.json()["detail"])
    assert "tcs" in pg.databases()


def wrong_key_env(cli, tmp_path):
    text = Path(cli.api.env_file).read_text()
    assert f"PROVISIONING_API_KEY={API_KEY}\n" in text
    bad = tmp_path / "wrong.env"
    bad.write_text(text.replace(f"PROVISIONING_API_KEY={API_KEY}",
                                "PROVISIONING_API_KEY=not-the-key"))
    bad.chmod(0o600)
    return bad


def test_wrong_key_is_401(cli, api, pg, tmp_path):
    assert api.create("con_llave", "pw").status_code == 201
    bad = wrong_key_env(cli, tmp_path)
    want = api.get("/api/tenants", key=False,
                   headers={"X-API-KEY": "not-the-key"})
    assert want.status_code == 401
    detail = want.json()["detail"]
    env = cli.env(env_file=bad)
    for script, args in ((LIST, []), (CREATE, ["sin_llave", "pw"]),
                         (DELETE, ["--yes", "con_llave"])):
        r = cli.run(script, *args, env=env)
        assert_failed_with(r, EX_API, detail)
        assert "HTTP 401 unauthorized" in r.stderr
    # Nothing changed.
    assert "sin_llave" not in pg.databases()
    assert "con_llave" in pg.databases()


def test_api_unreachable(cli, api, pg):
    dead = f"http://127.0.0.1:{free_port()}"
    env = cli.env(url=dead)
    for script, args in ((LIST, []), (CREATE, ["nadie", "pw"]),
                         (DELETE, ["--yes", "nadie"])):
        r = cli.run(script, *args, env=env)
        assert r.returncode == EX_UNAVAILABLE, (r.stdout, r.stderr)
        assert f"cannot connect to the Nodo API at {dead}" in r.stderr
        assert r.stdout == ""
    assert "nadie" not in pg.databases()


def test_env_file_missing(cli, api, tmp_path):
    missing = tmp_path / "no-such" / ".env"
    silent = Listener()
    for script, args in ((LIST, []), (CREATE, ["nadie", "pw"]),
                         (DELETE, ["--yes", "nadie"])):
        r = cli.run(script, *args, env=cli.env(env_file=missing,
                                               url=silent.url))
        assert r.returncode == EX_CONFIG, (r.stdout, r.stderr)
        assert f"env file {missing} not found" in r.stderr
        assert r.stdout == ""
    # Without NODO_ENV_FILE the default path is used (and is absent here).
    if not Path("/opt/nodo/config/.env").exists():
        r = cli.run(LIST, env=cli.env(env_file=None, url=silent.url))
        assert r.returncode == EX_CONFIG
        assert "/opt/nodo/config/.env" in r.stderr
    assert silent.connections() == 0


def test_env_file_without_key(cli, api, tmp_path):
    f = tmp_path / "nokey.env"
    f.write_text(f"ODOO_DOMAIN=sajet.us\nAPI_PORT={api.port}\n")
    silent = Listener()
    r = cli.run(LIST, env=cli.env(env_file=f, url=silent.url))
    assert r.returncode == EX_CONFIG
    assert "PROVISIONING_API_KEY is not set" in r.stderr
    assert silent.connections() == 0


def test_env_file_unreadable(cli, api, pg, tmp_path):
    # A directory where the file should be.
    d = tmp_path / "dir.env"
    d.mkdir()
    r = cli.run(LIST, env=cli.env(env_file=d))
    assert r.returncode == EX_CONFIG, r.stderr
    assert f"cannot read the env file {d}" in r.stderr

    # A real file the caller may not read (mode 0600, someone else's).
    pub = Path(tempfile.mkdtemp(prefix="nodo-cli-unreadable-"))
    try:
        f = pub / ".env"
        shutil.copyfile(api.env_file, f)
        if os.geteuid() == 0:
            f.chmod(0o600)  # root's: `nobody` cannot read it
            runuser = shutil.which("runuser",
                                   path="/usr/sbin:/sbin:/usr/bin:/bin")
            assert runuser, "runuser (util-linux) is needed as root"
            prefix = [runuser, "-u", "nobody", "--"]
        else:
            f.chmod(0)
            prefix = []
        env = cli.env(env_file=f, TMPDIR=pub)
        env["HOME"] = str(pub)
        env["PATH"] = "/usr/bin:/bin"  # the shim dir is private
        env["NODO_BUILD"] = str(BUILD)  # where the wrappers find nodo
        pub.chmod(0o1777)
        for script, args in ((LIST, []), (CREATE, ["nadie", "pw"]),
                             (DELETE, ["--yes", "con_llave"])):
            r = cli.run(script, *args, env=env, prefix=prefix)
            assert r.returncode == EX_CONFIG, (r.stdout, r.stderr)
            assert f"cannot read the env file {f}" in r.stderr
            assert "sudo" in r.stderr  # says how to fix it
        assert "nadie" not in pg.databases()
    finally:
        shutil.rmtree(pub, ignore_errors=True)


# --- secrets never on a command line -------------------------------------------

def test_key_and_password_not_in_curl_argv(cli, api, pg):
    password = "s3cr3t-pass-ZX81-unico"
    r = cli.run(CREATE, "secretos", password, "sajet.us", "tcs")
    assert r.returncode == 0, r.stderr
    calls = assert_no_secret_in_curl(cli, API_KEY, password)
    assert len(calls) == 1
    argv, _ = calls[0]
    assert argv[1] == "create" and argv[-1] == "secretos"
    # It really was sent: the database carries that password.
    assert pbkdf2_sha512.verify(password, admin_hash(pg, "secretos"))

    cli.clear_calls()
    r = cli.run(LIST, "sajet.us")
    assert r.returncode == 0, r.stderr
    assert_no_secret_in_curl(cli, API_KEY)

    cli.clear_calls()
    r = cli.run(DELETE, "secretos", "--yes")
    assert r.returncode == 0, r.stderr
    assert_no_secret_in_curl(cli, API_KEY)
    assert "secretos" not in pg.databases()

    # Error paths too: the 401 reply and a wrong key.
    cli.clear_calls()
    r = cli.run(LIST, env=cli.env(NODO_API_KEY="wrong-key-in-env-only"))
    assert r.returncode == EX_API
    argv, _ = cli.curl_calls()[0]
    assert "wrong-key-in-env-only" not in "\0".join(argv)


def test_password_from_stdin_never_in_any_argv(cli, pg):
    """With "-" the password is in no argv at all, not even the script's."""
    password = "stdin-only-pw-7731"
    r = cli.run(CREATE, "stdin_pw", "-", input=password + "\n")
    assert r.returncode == 0, r.stderr
    assert_no_secret_in_curl(cli, API_KEY, password)
    assert pbkdf2_sha512.verify(password, admin_hash(pg, "stdin_pw"))


def test_dns_disabled_summary(node, tmp_path, pg):
    """DNS disabled (no token) still creates and deletes; the summary says
    so."""
    api = node(dns=False)
    c = Cli(api, tmp_path)
    r = c.run(CREATE, "sin_dns", "pw")
    assert r.returncode == 0, r.stderr
    assert fields(r.stdout)["DNS"] == "disabled (no CLOUDFLARE_API_TOKEN)"
    assert "sin_dns" in pg.databases()
    r = c.run(DELETE, "--yes", "sin_dns")
    assert r.returncode == 0, r.stderr
    assert "DNS: disabled" in r.stdout
    assert "sin_dns" not in pg.databases()


def test_wrappers_pass_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    r = subprocess.run(["shellcheck", "-x", "create_tenant.sh",
                        "list_tenants.sh", "delete_tenant.sh",
                        "nodo-common.sh"], cwd=SCRIPTS, capture_output=True,
                       text=True)
    assert r.returncode == 0, r.stdout + r.stderr
