#!/usr/bin/python3
"""make demo: a throw-away Nodo node to play with.

Starts, on 127.0.0.1 only and all inside one temporary folder:
  * a PostgreSQL 15 cluster with the small sample template database `tcs`
    (and its filestore), the same one the integration tests use;
  * a fake Cloudflare DNS API (tests/fakes/fake_cloudflare.py, the one the
    tests use) holding the zones sajet.us and otro.dominio;
  * odoo-local-api and odoo-db-watcher from the build directory
    ($NODO_BUILD, default ./build), both pointed at that fake, so every
    tenant's CNAME appears there (--no-dns: DNS disabled instead, empty
    CLOUDFLARE_API_TOKEN);
then prints the env file, the API's URL and key, the seed's commands to
try and the curl that lists the fake zone's records (where the CNAME
appears), and waits. Ctrl-C (SIGINT) or SIGTERM stops everything and
removes the temporary folder.

  tests/demo.py [--no-dns] [--port PORT] [--smoke]

--smoke starts everything, checks that /health answers 200 and that one
create + list + delete works (through the API and the CLI wrappers, the
CNAME appearing in and leaving the fake zone), then stops and cleans up:
exit 0 when all of that worked, 1 otherwise.

Needs what the integration tests need: postgresql-15, python3-psycopg2,
python3-requests, python3-passlib, python3-pytest (the harness lives in
tests/integration/conftest.py), and root or a user that may run initdb.
"""
import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The harness reads NODO_BUILD when it is imported: settle it first.
_build = Path(os.environ.get("NODO_BUILD", "build"))
if not _build.is_absolute():
    _build = (Path.cwd() / _build).resolve()
os.environ["NODO_BUILD"] = str(_build)
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))

import requests  # noqa: E402

from conftest import (BUILD, NODE_PASSWORD, NODE_ROLE, TEMPLATE_PASSWORD,  # noqa: E402
                      TUNNEL_ID, Daemon, Postgres, free_port, make_template,
                      sanitizer_report)
from fakes.fake_cloudflare import (DEFAULT_TOKEN, ZONE_OTRO,  # noqa: E402
                                   ZONE_SAJET, FakeCloudflare)

DAEMONS = ("odoo-local-api", "odoo-db-watcher")


class Stop(Exception):
    """Raised by the SIGINT/SIGTERM handler."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def on_signal(signum, frame):
    raise Stop(signum)


def say(*args):
    print(*args, flush=True)


def port_is_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


class Demo:
    def __init__(self, with_cf, port):
        self.with_cf = with_cf
        self.port = port
        self.dir = None
        self.pg = None
        self.cf = None
        self.api = None
        self.watcher = None
        self.key = secrets.token_hex(16)

    # -- start ----------------------------------------------------------------

    def start(self):
        for d in DAEMONS:
            if not os.access(BUILD / d, os.X_OK):
                raise RuntimeError(f"{BUILD / d} is not built: run `make` "
                                   "first (or set NODO_BUILD)")
        self.dir = Path(tempfile.mkdtemp(prefix="nodo-demo-"))
        # The PostgreSQL cluster lives inside it too; when we are root it
        # runs as `postgres`, which must be able to reach its folder. The
        # secrets in here (the env files) are mode 0600.
        self.dir.chmod(0o755)
        tempfile.tempdir = str(self.dir)
        try:
            self.pg = Postgres()
        finally:
            tempfile.tempdir = None
        say(f"Starting PostgreSQL on 127.0.0.1:{self.pg.port} ...")
        self.pg.init()
        data_dir = self.dir / "odoo-data"
        data_dir.mkdir()
        make_template(self.pg, data_dir, "tcs")
        self.data_dir = data_dir

        if self.with_cf:
            self.cf = FakeCloudflare(token=DEFAULT_TOKEN,
                                     zones={"sajet.us": ZONE_SAJET,
                                            "otro.dominio": ZONE_OTRO})
            self.cf.start()
            say(f"Fake Cloudflare on {self.cf.url}")

        domains = self.dir / "domains.json"
        domains.write_text(json.dumps({
            "zones": {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO},
            "tunnel_id": TUNNEL_ID}, indent=2) + "\n")

        port = self.port
        if port == 0:
            port = 8070 if port_is_free(8070) else free_port()
        env = {
            "ODOO_DOMAIN": "sajet.us",
            "PROVISIONING_API_KEY": self.key,
            "CLOUDFLARE_API_TOKEN": DEFAULT_TOKEN if self.cf else "",
            "DOMAINS_FILE": str(domains),
            "API_HOST": "127.0.0.1",
            "API_PORT": str(port),
            "DEFAULT_TEMPLATE_DB": "tcs",
            "ODOO_CONF": str(self.dir / "no-odoo.conf"),
            "ODOO_DATA_DIR": str(data_dir),
            "PGHOST": self.pg.host,
            "PGPORT": str(self.pg.port),
            "PGUSER": NODE_ROLE,
            "PGPASSWORD": NODE_PASSWORD,
            "LOG_LEVEL": "info",
            "DB_WATCHER_INTERVAL": "2",
        }
        if self.cf:
            env["CLOUDFLARE_API_URL"] = self.cf.url
        # Both daemons read the same settings; each gets its own folder
        # (env file and log).
        for prog in DAEMONS:
            (self.dir / prog).mkdir()
        say(f"Starting odoo-local-api on 127.0.0.1:{port} ...")
        self.api = Daemon("odoo-local-api", self.dir / "odoo-local-api", env)
        self.api.start()
        say("Starting odoo-db-watcher ...")
        self.watcher = Daemon("odoo-db-watcher", self.dir / "odoo-db-watcher",
                              env)
        self.watcher.start()
        time.sleep(0.3)
        self.check_alive()

    def check_alive(self):
        for d in (self.api, self.watcher):
            if d is not None and d.proc is not None and \
                    d.proc.poll() is not None:
                raise RuntimeError(f"{d.prog} exited {d.proc.returncode}:\n"
                                   + d.log()[-3000:])

    # -- stop -----------------------------------------------------------------

    def stop(self):
        """Stops everything that was started and removes the folder. Never
        raises; returns a list of problems."""
        problems = []
        for d in (self.watcher, self.api):
            if d is None or d.proc is None:
                continue
            try:
                rc = d.stop(timeout=30)
                if rc not in (0, None):
                    problems.append(f"{d.prog} exited {rc}")
            except Exception as e:  # noqa: BLE001 - keep cleaning up
                problems.append(f"{d.prog}: {e}")
                d.kill()
            if sanitizer_report(d.log()):
                problems.append(f"{d.prog} sanitizer report:\n"
                                + d.log()[-4000:])
        if self.cf is not None:
            try:
                self.cf.stop()
            except Exception as e:  # noqa: BLE001
                problems.append(f"fake Cloudflare: {e}")
        if self.pg is not None:
            try:
                self.pg.destroy()
            except Exception as e:  # noqa: BLE001
                problems.append(f"PostgreSQL: {e}")
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            if self.dir.exists():
                problems.append(f"could not remove {self.dir}")
        return problems

    def records_url(self):
        """The fake Cloudflare's list of the records of zone sajet.us."""
        return f"{self.cf.url}/zones/{ZONE_SAJET}/dns_records"

    def fake_records(self):
        r = requests.get(self.records_url(), timeout=10, headers={
            "Authorization": f"Bearer {DEFAULT_TOKEN}"})
        assert r.status_code == 200, f"fake Cloudflare: {r.status_code}"
        return {(x["type"], x["name"]) for x in r.json()["result"]}

    # -- what to try ------------------------------------------------------------

    def instructions(self):
        url, key = self.api.url, self.key
        q = shlex.quote
        env_file = str(self.api.env_file)
        hdr = q(f"X-API-KEY: {key}")
        body = json.dumps({"subdomain": "nuevo_cliente",
                           "admin_password": "secreto123",
                           "domain": "sajet.us", "template_db": "tcs"})
        ne = f"NODO_ENV_FILE={q(env_file)}"
        scripts = ROOT / "scripts"
        dns = (f"fake Cloudflare at {self.cf.url} (token {DEFAULT_TOKEN})"
               if self.cf else "disabled (empty CLOUDFLARE_API_TOKEN)")
        if self.cf:
            look = [
                "",
                "See the DNS record appear (the fake Cloudflare's zone "
                "sajet.us; the create",
                "above adds the CNAME nuevo_cliente.sajet.us, the delete "
                "removes it):",
                f"  curl -s -H {q('Authorization: Bearer ' + DEFAULT_TOKEN)} "
                f"{q(self.records_url())}",
            ]
        else:
            look = []
        lines = [
            "",
            "Nodo demo node is running (127.0.0.1 only).",
            f"  temp folder: {self.dir}",
            f"  env file:    {env_file}",
            f"  API URL:     {url}",
            f"  API key:     {key}",
            f"  DNS:         {dns}",
            f"  PostgreSQL:  127.0.0.1:{self.pg.port} user {NODE_ROLE} "
            f"password {NODE_PASSWORD}; template `tcs` (admin password "
            f"{TEMPLATE_PASSWORD})",
            f"  logs:        {self.api.log_path}",
            f"               {self.watcher.log_path}",
            "",
            "Try (the seed's examples):",
            f"  curl {url}/health",
            f"  curl -H {hdr} {url}/api/tenants",
            f"  curl -X POST -H {hdr} -H 'Content-Type: application/json' \\",
            f"       -d {q(body)} \\",
            f"       {url}/api/tenant",
            f"  curl -H {hdr} {q(url + '/api/tenants?domain=sajet.us')}",
            f"  curl -X DELETE -H {hdr} '{url}/api/tenant?subdomain=nuevo_cliente'",
            f"  curl -H {hdr} {url}/api/domains",
        ] + look + [
            "",
            "The CLI wrappers:",
            f"  {ne} {scripts}/create_tenant.sh nuevo_cliente secreto123 sajet.us tcs",
            f"  {ne} {scripts}/list_tenants.sh sajet.us",
            f"  {ne} {scripts}/delete_tenant.sh nuevo_cliente",
            "",
            "Look inside:",
            f"  PGPASSWORD={NODE_PASSWORD} psql -h 127.0.0.1 -p {self.pg.port} "
            f"-U {NODE_ROLE} -d postgres -c '\\l'",
            f"  tail -f {self.api.log_path}",
            "",
            "Press Ctrl-C to stop everything and remove the temp folder.",
        ]
        return "\n".join(lines)

    # -- smoke --------------------------------------------------------------------

    def smoke(self):
        """Raises AssertionError on the first thing that does not work."""
        api = self.api
        r = requests.get(api.url + "/health", timeout=10)
        assert r.status_code == 200, f"/health: {r.status_code} {r.text}"
        assert r.json().get("postgres") == "ok", r.text
        say(f"smoke: GET /health -> 200 {r.text.strip()}")

        r = api.create("nuevo_cliente", "secreto123", domain="sajet.us",
                       template_db="tcs")
        assert r.status_code == 201, f"create: {r.status_code} {r.text}"
        want_dns = "created" if self.cf else "disabled"
        assert r.json()["dns"]["status"] == want_dns, r.text
        assert "nuevo_cliente" in self.pg.databases()
        say(f"smoke: POST /api/tenant -> 201 (dns {want_dns})")
        if self.cf:
            assert ("CNAME", "nuevo_cliente.sajet.us") in \
                self.fake_records(), self.fake_records()
            say("smoke: fake Cloudflare lists CNAME nuevo_cliente.sajet.us")

        r = api.get("/api/tenants", params={"domain": "sajet.us"})
        assert r.status_code == 200, r.text
        assert [t["subdomain"] for t in r.json()["tenants"]] == [
            "nuevo_cliente"], r.text
        say("smoke: GET /api/tenants -> nuevo_cliente")

        # The printed wrapper commands work too.
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8",
               "NODO_ENV_FILE": str(api.env_file),
               "NODO_BUILD": str(BUILD)}  # where the wrappers find nodo
        p = subprocess.run([str(ROOT / "scripts/list_tenants.sh"), "--json",
                            "sajet.us"], env=env, capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=60)
        assert p.returncode == 0, f"list_tenants.sh: {p.stderr}"
        assert json.loads(p.stdout) == r.json(), p.stdout
        say("smoke: list_tenants.sh sajet.us -> same as the API")

        r = api.delete("/api/tenant", params={"subdomain": "nuevo_cliente"})
        assert r.status_code == 200, f"delete: {r.status_code} {r.text}"
        assert r.json()["deleted"] is True, r.text
        assert "nuevo_cliente" not in self.pg.databases()
        r = api.get("/api/tenants")
        assert r.json()["count"] == 0, r.text
        say("smoke: DELETE /api/tenant -> 200, database gone")
        if self.cf:
            assert ("CNAME", "nuevo_cliente.sajet.us") not in \
                self.fake_records(), self.fake_records()
            say("smoke: fake Cloudflare no longer lists it")
        self.check_alive()


def main():
    ap = argparse.ArgumentParser(
        description="Run a throw-away Nodo node (PostgreSQL with the sample "
                    "template tcs, odoo-local-api, odoo-db-watcher) on "
                    "127.0.0.1 until Ctrl-C.")
    ap.add_argument("--no-dns", action="store_true",
                    help="DNS disabled (empty CLOUDFLARE_API_TOKEN) instead "
                         "of the local fake Cloudflare API")
    ap.add_argument("--with-fake-cloudflare", action="store_true",
                    help=argparse.SUPPRESS)  # the default now; kept
    ap.add_argument("--port", type=int, default=0,
                    help="API port (default 8070 when free, else any free "
                         "port; --smoke always uses a free port)")
    ap.add_argument("--smoke", action="store_true",
                    help="start, check /health and one create+list+delete, "
                         "stop, clean up; exit 0 or 1")
    args = ap.parse_args()
    port = free_port() if args.smoke and args.port == 0 else args.port

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    demo = Demo(not args.no_dns, port)
    status = 0
    try:
        demo.start()
        if args.smoke:
            say(f"temp folder: {demo.dir}")
            demo.smoke()
            say("smoke: ok")
        else:
            say(demo.instructions())
            while True:
                time.sleep(0.5)
                demo.check_alive()
    except Stop as s:
        say(f"\n{s} received: stopping.")
    except (AssertionError, RuntimeError, OSError,
            subprocess.CalledProcessError, requests.RequestException) as e:
        status = 1
        msg = str(e)
        if isinstance(e, subprocess.CalledProcessError):
            msg += f"\n{e.stdout or ''}{e.stderr or ''}"
        print(f"demo: error: {msg}", file=sys.stderr, flush=True)
        for d in (demo.api, demo.watcher):
            if d is not None and d.proc is not None:
                print(f"--- {d.prog} log (tail) ---\n{d.log()[-2000:]}",
                      file=sys.stderr, flush=True)
    finally:
        # A second Ctrl-C must not leave half a cleanup behind.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        problems = demo.stop()
        for p in problems:
            print(f"demo: cleanup: {p}", file=sys.stderr, flush=True)
        if problems:
            status = 1
        elif demo.dir is not None:
            say(f"Stopped; removed {demo.dir}.")
    return status


if __name__ == "__main__":
    sys.exit(main())
