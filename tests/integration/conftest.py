"""Integration test harness: a real PostgreSQL 15 cluster, a minimal Odoo-like
template database with a filestore, the fake Cloudflare server, and the
daemons built by `make` (NODO_BUILD, default ./build).

Everything listens on 127.0.0.1 only. PostgreSQL refuses to run as root, so
the cluster is run as the `postgres` user (runuser) when we are root.
"""
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg2
import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))
from fakes.fake_cloudflare import FakeCloudflare, ZONE_SAJET, ZONE_OTRO  # noqa: E402

PGBIN = Path("/usr/lib/postgresql/15/bin")
BUILD = Path(os.environ.get("NODO_BUILD", ROOT / "build"))
NODE_ROLE = "odoo"
NODE_PASSWORD = "odoo-test-pw"
API_KEY = "test-api-key-0123456789abcdef"
CF_TOKEN = "test-token"
TUNNEL_ID = "6ff42ae2-765d-4adf-8112-31c55c1551ef"
TEMPLATE_PASSWORD = "template-admin-pw"
# passlib pbkdf2_sha512 of TEMPLATE_PASSWORD (600000 rounds, fixed salt)
TEMPLATE_HASH = None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_for(pred, timeout, what, step=0.05):
    """pred()'s first true value within timeout seconds; else the test
    fails naming what it waited for."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def as_postgres(cmd, **kw):
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--"] + cmd
    return subprocess.run(cmd, check=True, capture_output=True, text=True,
                          **kw)


class Postgres:
    """A throw-away cluster in a temp dir."""

    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="nodo-pg-"))
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.sock.mkdir()
        self.port = free_port()
        self.host = "127.0.0.1"
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
            shutil.chown(self.sock, "postgres", "postgres")
        self.log = self.dir / "postgres.log"

    def init(self):
        as_postgres([str(PGBIN / "initdb"), "-D", str(self.data), "-U",
                     "postgres", "-E", "UTF8", "--locale=C.UTF-8",
                     "--auth-local=trust", "--auth-host=scram-sha-256",
                     "--no-sync"])
        with open(self.data / "postgresql.conf", "a") as f:
            f.write(f"listen_addresses = '127.0.0.1'\nport = {self.port}\n"
                    f"unix_socket_directories = '{self.sock}'\n"
                    "fsync = off\nsynchronous_commit = off\n"
                    "full_page_writes = off\nmax_connections = 300\n")
        self.start()
        self.su_exec(f"CREATE ROLE {NODE_ROLE} LOGIN CREATEDB "
                     f"PASSWORD '{NODE_PASSWORD}'")

    def start(self):
        as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.data), "-l",
                     str(self.log), "-w", "-t", "60", "start"])

    def stop(self, mode="fast"):
        as_postgres([str(PGBIN / "pg_ctl"), "-D", str(self.data), "-m",
                     mode, "-w", "-t", "60", "stop"])

    def destroy(self):
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.dir, ignore_errors=True)

    def su_connect(self, db="postgres"):
        c = psycopg2.connect(host=str(self.sock), port=self.port,
                             user="postgres", dbname=db)
        c.autocommit = True
        return c

    def connect(self, db="postgres"):
        """As the node's role, over TCP like the daemons."""
        c = psycopg2.connect(host=self.host, port=self.port, user=NODE_ROLE,
                             password=NODE_PASSWORD, dbname=db)
        c.autocommit = True
        return c

    def su_exec(self, sql, db="postgres", args=None):
        c = self.su_connect(db)
        try:
            with c.cursor() as cur:
                cur.execute(sql, args)
                if cur.description:
                    return cur.fetchall()
                return None
        finally:
            c.close()

    def databases(self):
        return [r[0] for r in self.su_exec(
            "SELECT datname FROM pg_database ORDER BY 1")]


TEMPLATE_SQL = """
CREATE TABLE res_users (
    id serial PRIMARY KEY, login varchar NOT NULL UNIQUE,
    password varchar, active boolean DEFAULT true,
    share boolean, write_date timestamp);
CREATE TABLE ir_model_data (
    id serial PRIMARY KEY, module varchar NOT NULL, name varchar NOT NULL,
    model varchar NOT NULL, res_id integer, noupdate boolean DEFAULT false,
    UNIQUE (module, name));
CREATE TABLE ir_config_parameter (
    id serial PRIMARY KEY, key varchar NOT NULL, value text NOT NULL,
    create_uid integer, create_date timestamp,
    write_uid integer, write_date timestamp,
    CONSTRAINT ir_config_parameter_key_uniq UNIQUE (key));
CREATE TABLE ir_attachment (
    id serial PRIMARY KEY, name varchar NOT NULL, res_model varchar,
    res_id integer, type varchar DEFAULT 'binary', store_fname varchar,
    db_datas bytea, file_size integer, checksum varchar, mimetype varchar);
CREATE TABLE ir_module_module (
    id serial PRIMARY KEY, name varchar NOT NULL UNIQUE, state varchar,
    latest_version varchar);
INSERT INTO res_users (id, login, password, active, share) VALUES
    (1, '__system__', NULL, false, false), (2, 'admin', %(hash)s, true, false),
    (6, 'portal', %(hash)s, true, true);
SELECT setval('res_users_id_seq', 6);
INSERT INTO ir_model_data (module, name, model, res_id) VALUES
    ('base', 'user_root', 'res.users', 1),
    ('base', 'user_admin', 'res.users', 2),
    ('base', 'default_user', 'res.users', 6);
INSERT INTO ir_config_parameter (key, value, create_uid, create_date,
        write_uid, write_date) VALUES
    ('database.secret', 'template-secret', 1, now(), 1, now()),
    ('database.uuid', '00000000-0000-1000-8000-000000000000', 1, now(), 1,
     now()),
    ('database.create_date', '2024-01-01 00:00:00', 1, now(), 1, now()),
    ('web.base.url', 'http://localhost:8069', 1, now(), 1, now()),
    ('database.enterprise_code', 'M1234', 1, now(), 1, now());
INSERT INTO ir_attachment (name, res_model, store_fname, checksum,
        file_size, mimetype) VALUES
    ('web.assets.css', 'ir.ui.view',
     '0a/0a1b2c3d4e5f60718293a4b5c6d7e8f901234567',
     '0a1b2c3d4e5f60718293a4b5c6d7e8f901234567', 17, 'text/css');
INSERT INTO ir_attachment (name, res_model, db_datas, file_size) VALUES
    ('in the database', 'res.partner', 'abc', 3);
INSERT INTO ir_module_module (name, state, latest_version) VALUES
    ('base', 'installed', '18.0.1.3'), ('web', 'installed', '18.0.1.0');
"""

FILESTORE_FILES = {
    "0a/0a1b2c3d4e5f60718293a4b5c6d7e8f901234567": b"asset bundle css\n",
    "d7/d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e9f00": b"web.assets js" * 100,
    "checklist/.keep": b"",
}


def make_template(pg, data_dir, name="tcs", is_template=False):
    """An Odoo-like database with a filestore; is_template marks it
    IS_TEMPLATE (then it is on the node's default TEMPLATE_DBS)."""
    from passlib.hash import pbkdf2_sha512
    h = pbkdf2_sha512.using(rounds=1000).hash(TEMPLATE_PASSWORD)
    pg.su_exec(f'CREATE DATABASE "{name}" OWNER {NODE_ROLE} '
               "ENCODING 'UTF8' TEMPLATE template0")
    c = pg.connect(name)
    with c.cursor() as cur:
        cur.execute(TEMPLATE_SQL, {"hash": h})
    c.close()
    if is_template:
        pg.su_exec(f'ALTER DATABASE "{name}" IS_TEMPLATE true')
    fs = Path(data_dir) / "filestore" / name
    for rel, content in FILESTORE_FILES.items():
        p = fs / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content)
    return fs


def clone_tcs(pg, name, files=True):
    """A copy of the database tcs marked IS_TEMPLATE (so on the node's
    default TEMPLATE_DBS), with no filestore folder; files=False also
    removes its file-backed attachments."""
    pg.su_exec(f'CREATE DATABASE "{name}" OWNER {NODE_ROLE} TEMPLATE tcs '
               "IS_TEMPLATE true")
    if not files:
        pg.su_exec("DELETE FROM ir_attachment WHERE store_fname IS NOT NULL",
                   db=name)


def drop_template(pg, name):
    pg.su_exec(f'ALTER DATABASE "{name}" IS_TEMPLATE false')
    pg.su_exec(f'DROP DATABASE "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg():
    p = Postgres()
    try:
        p.init()
        yield p
    finally:
        p.destroy()


@pytest.fixture(scope="session")
def data_dir(pg):
    d = Path(tempfile.mkdtemp(prefix="nodo-data-"))
    make_template(pg, d)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cloudflare():
    f = FakeCloudflare(token=CF_TOKEN,
                       zones={"sajet.us": ZONE_SAJET,
                              "otro.dominio": ZONE_OTRO})
    f.start()
    yield f
    f.stop()
    assert f.schema_violations == [], f.schema_violations


def drop_tenants(pg, data_dir, keep=("tcs",)):
    for db in pg.databases():
        if db in ("postgres", "template0", "template1") or db in keep:
            continue
        pg.su_exec(f'ALTER DATABASE "{db}" IS_TEMPLATE false')
        pg.su_exec(f'DROP DATABASE "{db}" WITH (FORCE)')
    fs = Path(data_dir) / "filestore"
    if fs.exists():
        for d in fs.iterdir():
            if d.name not in keep:
                shutil.rmtree(d, ignore_errors=True)


class Daemon:
    """A running odoo-local-api or odoo-db-watcher with its env file."""

    def __init__(self, prog, workdir, env, args=(), wrap=()):
        self.prog = prog
        self.wrap = list(wrap)  # a command that runs the daemon: prlimit
        self.workdir = Path(workdir)
        self.env = dict(env)
        self.args = list(args)
        self.proc = None
        self.log_path = self.workdir / f"{prog}.log"
        self.env_file = self.workdir / ".env"
        self.port = int(env.get("API_PORT", 0))
        self.url = f"http://127.0.0.1:{self.port}"
        self.key = env.get("PROVISIONING_API_KEY")
        self._log_offset = 0

    def write_env(self):
        with open(self.env_file, "w") as f:
            for k, v in self.env.items():
                if v is not None:
                    f.write(f"{k}={v}\n")
        os.chmod(self.env_file, 0o600)

    def start(self, wait=True):
        self.write_env()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
               "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0",
               "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1"}
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            self.wrap + [str(BUILD / self.prog), "--config",
                         str(self.env_file)]
            + self.args, stdout=self.logf, stderr=subprocess.STDOUT,
            env=env)
        if wait and self.prog == "odoo-local-api":
            self.wait_ready()
        return self

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"{self.prog} exited "
                                     f"{self.proc.returncode}:\n{self.log()}")
            try:
                requests.get(self.url + "/health", timeout=1)
                return
            except (requests.ConnectionError, requests.Timeout):
                # Timeout: bound, still cleaning up before it serves.
                time.sleep(0.02)
        raise AssertionError(f"{self.prog} not ready:\n{self.log()}")

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"{self.prog} did not stop in {timeout}s")
        self.logf.close()
        return rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            self.logf.close()

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def new_log(self):
        """Log lines written since the last call."""
        text = self.log()
        new = text[self._log_offset:]
        self._log_offset = len(text)
        return new

    def headers(self, key=True):
        return {"X-API-KEY": self.key} if key else {}

    def request(self, method, path, key=True, **kw):
        kw.setdefault("timeout", 60)
        headers = self.headers(key)
        headers.update(kw.pop("headers", {}))
        return requests.request(method, self.url + path, headers=headers,
                                **kw)

    def get(self, path, key=True, **kw):
        return self.request("GET", path, key, **kw)

    def post(self, path, key=True, **kw):
        return self.request("POST", path, key, **kw)

    def delete(self, path, key=True, **kw):
        return self.request("DELETE", path, key, **kw)

    def create(self, sub, password="secreto123", **fields):
        body = {"subdomain": sub, "admin_password": password}
        body.update(fields)
        return self.post("/api/tenant", json=body)


def sanitizer_report(text):
    for marker in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "SUMMARY: UndefinedBehaviorSanitizer"):
        if marker in text:
            return True
    return False


@pytest.fixture
def node(pg, data_dir, cloudflare, tmp_path):
    """Factory: node(prog="odoo-local-api", dns=True, **env) -> Daemon.
    Every daemon started is stopped at the end, must exit 0 and must leave
    no sanitizer report; tenants are dropped after the test."""
    started = []
    domains = tmp_path / "domains.json"
    domains.write_text('{"zones": {"sajet.us": "%s", "otro.dominio": "%s"},'
                       ' "tunnel_id": "%s"}' % (ZONE_SAJET, ZONE_OTRO,
                                                TUNNEL_ID))

    def make(prog="odoo-local-api", dns=True, args=(), start=True, wrap=(),
             **extra):
        wd = tmp_path / f"{prog}-{len(started)}"
        wd.mkdir()
        env = {
            "ODOO_DOMAIN": "sajet.us",
            "PROVISIONING_API_KEY": API_KEY,
            "CLOUDFLARE_API_TOKEN": CF_TOKEN if dns else "",
            "CLOUDFLARE_API_URL": cloudflare.url,
            "DOMAINS_FILE": str(domains),
            "API_HOST": "127.0.0.1",
            "API_PORT": str(free_port()),
            "DEFAULT_TEMPLATE_DB": "tcs",
            "ODOO_CONF": str(tmp_path / "no-odoo.conf"),
            "ODOO_DATA_DIR": str(data_dir),
            "PGHOST": pg.host,
            "PGPORT": str(pg.port),
            "PGUSER": NODE_ROLE,
            "PGPASSWORD": NODE_PASSWORD,
            "LOG_LEVEL": "debug",
            "DB_WATCHER_INTERVAL": "1",
            # Shared by the API and the watcher of one test (GET /metrics).
            "WATCHER_METRICS_FILE": str(tmp_path / "watcher.prom"),
            # No spares unless a test asks (test_spares.py): their thread
            # holds a connection and clones in the background.
            "SPARE_TENANTS": "0",
        }
        env.update({k: (str(v) if v is not None else None)
                    for k, v in extra.items()})
        d = Daemon(prog, wd, env, args, wrap)
        started.append(d)
        if start:
            d.start()
        return d

    yield make
    problems = []
    for d in started:
        if d.proc is None:
            continue
        if d.proc.poll() is None:
            rc = d.stop()
            if rc != 0:
                problems.append(f"{d.prog} exited {rc} on SIGTERM")
        if sanitizer_report(d.log()):
            problems.append(f"{d.prog} sanitizer report:\n{d.log()[-4000:]}")
    drop_tenants(pg, data_dir)
    assert not problems, "\n".join(problems)


@pytest.fixture
def api(node):
    return node()
