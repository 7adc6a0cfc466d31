"""tests/demo.py (make demo): --smoke, and the interactive mode stopped by
Ctrl-C (SIGINT to the whole process group, as a terminal sends it) or by
SIGTERM. Each run must leave nothing behind: no temp folder, no daemon and
no PostgreSQL listening."""
import json
import os
import queue
import re
import shlex
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import requests

from conftest import BUILD, ROOT, free_port

DEMO = ROOT / "tests" / "demo.py"


def demo_env(**extra):
    e = dict(os.environ)
    e["NODO_BUILD"] = str(BUILD)
    e.update(extra)
    return e


def listening(port):
    s = socket.socket()
    s.settimeout(1)
    try:
        s.connect(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def assert_all_gone(text):
    folder = re.search(r"temp folder: *(\S+)", text)
    assert folder, text
    folder = Path(folder.group(1))
    assert folder.name.startswith("nodo-demo-")
    assert not folder.exists(), f"{folder} was left behind"
    m = re.search(r"PostgreSQL on 127\.0\.0\.1:(\d+)", text)
    assert m, text
    assert not listening(int(m.group(1))), "PostgreSQL still listening"
    m = re.search(r"odoo-local-api on 127\.0\.0\.1:(\d+)", text)
    assert m, text
    assert not listening(int(m.group(1))), "odoo-local-api still listening"
    return folder


def test_demo_is_executable():
    assert os.access(DEMO, os.X_OK)
    assert DEMO.read_text().startswith("#!/usr/bin/python3\n")


@pytest.mark.parametrize("flags,dns", [([], "created"),
                                       (["--no-dns"], "disabled")])
def test_smoke(flags, dns):
    r = subprocess.run([str(DEMO), "--smoke"] + flags, env=demo_env(),
                       capture_output=True, text=True, timeout=300,
                       stdin=subprocess.DEVNULL, cwd=str(ROOT))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "smoke: GET /health -> 200" in r.stdout
    assert f"smoke: POST /api/tenant -> 201 (dns {dns})" in r.stdout
    assert "smoke: DELETE /api/tenant -> 200, database gone" in r.stdout
    assert "smoke: ok" in r.stdout
    if dns == "created":  # the CNAME appeared in the fake zone, then left
        assert "smoke: fake Cloudflare lists CNAME nuevo_cliente.sajet.us" \
            in r.stdout
        assert "smoke: fake Cloudflare no longer lists it" in r.stdout
    else:
        assert "fake Cloudflare" not in r.stdout
    folder = assert_all_gone(r.stdout)
    assert f"removed {folder}" in r.stdout


def test_smoke_without_binaries_fails(tmp_path):
    r = subprocess.run([str(DEMO), "--smoke"],
                       env=demo_env(NODO_BUILD=str(tmp_path)),
                       capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 1
    assert f"{tmp_path}/odoo-local-api is not built" in r.stderr
    assert "smoke: ok" not in r.stdout


class Reader:
    """Collects a process's stdout lines in the background."""

    def __init__(self, stream):
        self.lines = []
        self.q = queue.Queue()
        self.t = threading.Thread(target=self._run, args=(stream,),
                                  daemon=True)
        self.t.start()

    def _run(self, stream):
        for line in stream:
            self.q.put(line)
        self.q.put(None)

    def until(self, marker, timeout=120):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.q.get(timeout=0.2)
            except queue.Empty:
                continue
            if line is None:
                break
            self.lines.append(line)
            if marker in line:
                return "".join(self.lines)
        raise AssertionError(f"no {marker!r} in:\n{''.join(self.lines)}")

    def rest(self, timeout=60):
        self.t.join(timeout)
        while True:
            try:
                line = self.q.get_nowait()
            except queue.Empty:
                break
            if line is not None:
                self.lines.append(line)
        return "".join(self.lines)


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_interactive_until_signal(how, tmp_path):
    port = free_port()
    p = subprocess.Popen([str(DEMO), "--port", str(port)], env=demo_env(),
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, text=True,
                         start_new_session=True, cwd=str(ROOT))
    reader = Reader(p.stdout)
    try:
        text = reader.until("Press Ctrl-C")
        url = re.search(r"API URL: *(\S+)", text).group(1)
        key = re.search(r"API key: *(\S+)", text).group(1)
        env_file = Path(re.search(r"env file: *(\S+)", text).group(1))
        assert url == f"http://127.0.0.1:{port}"
        assert env_file.is_file()
        assert (env_file.stat().st_mode & 0o777) == 0o600
        assert f"PROVISIONING_API_KEY={key}\n" in env_file.read_text()
        assert "DNS:         fake Cloudflare at http://127.0.0.1:" in text
        # The seed's commands are printed ...
        assert f"curl {url}/health" in text
        assert '"subdomain": "nuevo_cliente"' in text
        assert '"admin_password": "secreto123"' in text
        assert '"template_db": "tcs"' in text
        assert f"'{url}/api/tenant?subdomain=nuevo_cliente'" in text
        for s in ("create_tenant.sh nuevo_cliente secreto123 sajet.us tcs",
                  "list_tenants.sh sajet.us", "delete_tenant.sh nuevo_cliente"):
            assert s in text, s
        # ... and work: run the printed create (curl) and list (script)
        # commands as a user would paste them.
        create = next(i for i, line in enumerate(text.splitlines())
                      if line.strip().startswith("curl -X POST"))
        lines = text.splitlines()
        cmd = " ".join(line.strip().rstrip("\\")
                       for line in lines[create:create + 3])
        r = subprocess.run(["bash", "-c", cmd + " -sS -o /dev/null "
                            "-w '%{http_code}'"], capture_output=True,
                           text=True, timeout=120)
        assert r.stdout == "201", (cmd, r.stdout, r.stderr)
        listing = next(line.strip() for line in lines
                       if "list_tenants.sh sajet.us" in line)
        r = subprocess.run(["bash", "-c", listing], capture_output=True,
                           text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert r.returncode == 0, r.stderr
        assert "nuevo_cliente  sajet.us  https://nuevo_cliente.sajet.us" \
            in r.stdout
        h = requests.get(url + "/health", timeout=10)
        assert h.status_code == 200
        t = requests.get(url + "/api/tenants", headers={"X-API-KEY": key},
                         timeout=10).json()
        assert [x["subdomain"] for x in t["tenants"]] == ["nuevo_cliente"]
        assert shlex.split(listing)[0].startswith("NODO_ENV_FILE=")
        # Where to look for DNS: the printed curl lists the fake zone,
        # which now holds the tenant's CNAME to the tunnel.
        look = next(line.strip() for line in lines
                    if line.strip().startswith("curl -s -H 'Authorization:"))
        r = subprocess.run(["bash", "-c", look], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        recs = json.loads(r.stdout)["result"]
        cname = [x for x in recs if x["name"] == "nuevo_cliente.sajet.us"]
        assert len(cname) == 1 and cname[0]["type"] == "CNAME", recs
        assert cname[0]["content"].endswith(".cfargotunnel.com")
        assert cname[0]["proxied"] is True

        if how == "ctrl-c":
            os.killpg(p.pid, signal.SIGINT)  # what a terminal does
        else:
            p.send_signal(signal.SIGTERM)
        rc = p.wait(timeout=120)
        out = reader.rest()
        assert rc == 0, out
        want = "SIGINT received" if how == "ctrl-c" else "SIGTERM received"
        assert want in out
        assert_all_gone(out)
        assert not listening(port)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
