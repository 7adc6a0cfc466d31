"""Configuration errors and outages reach the journal as errors: the `<N>`
priority prefixes on stderr (sd-daemon(3)), which journald reads the same
way as sd_journal_send()'s PRIORITY= (tests/unit/test_log.c checks that
mapping). `journalctl -p err` must show why a daemon exited 78, and why the
API answers 503, once."""
import os
import re
import socket
import struct
import subprocess
import threading
import time

import requests

from conftest import API_KEY, BUILD, CF_TOKEN, NODE_PASSWORD

EX_CONFIG = 78

# TENANT_CACHE_FRESH_MS (1 s), and some margin: after that a list asks
# PostgreSQL itself.
LIST_FRESH_S = 1.5


def run_bad(node, prog, **env):
    d = node(prog=prog, start=False)
    d.env.update(env)
    d.write_env()
    p = subprocess.run([str(BUILD / prog), "--config", str(d.env_file)],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": os.environ["PATH"]},
                       stdin=subprocess.DEVNULL)
    return p


def test_every_fatal_reason_is_logged_at_err(node):
    for prog in ("odoo-local-api", "odoo-db-watcher"):
        p = run_bad(node, prog, API_PORT="nope", DB_WATCHER_INTERVAL="-3")
        assert p.returncode == EX_CONFIG, (prog, p.returncode, p.stderr)
        lines = [x for x in p.stderr.splitlines() if x.strip()]
        reasons = [x for x in lines if "API_PORT" in x or
                   "DB_WATCHER_INTERVAL" in x]
        assert reasons, (prog, p.stderr)
        # Every reason at err (3): never at the stream's default, info.
        for line in reasons:
            assert line.startswith("<3>"), (prog, line)
        assert not [x for x in lines if not re.match(r"<[0-7]>", x)], \
            (prog, p.stderr)
        for secret in (API_KEY, CF_TOKEN, NODE_PASSWORD):
            assert secret not in p.stderr


def test_503_says_why_once_per_outage(node, pg):
    api = node()
    try:
        pg.stop("fast")
        time.sleep(LIST_FRESH_S)  # the list snapshot is no longer served
        for _ in range(4):
            r = api.get("/api/tenants")
            assert r.status_code == 503, r.text
            assert r.json()["code"] == "database_unavailable"
        for _ in range(3):
            assert requests.get(api.url + "/health",
                                timeout=30).status_code == 503
        log = api.log()
        why = re.findall(r"^<(\d)>answering 503 .*$", log, re.M)
        assert why == ["3"], log  # once, at err
        assert re.search(r"^<3>answering 503 until PostgreSQL is usable: "
                         r"database: PostgreSQL is unreachable", log, re.M)
    finally:
        pg.start()
    r = api.get("/api/tenants")
    assert r.status_code == 200, r.text
    log = api.log()
    assert len(re.findall(r"PostgreSQL usable again", log)) == 1, log
    # A new outage is said again, once.
    try:
        pg.stop("fast")
        time.sleep(LIST_FRESH_S)  # the list snapshot is no longer served
        for _ in range(3):
            assert api.get("/api/tenants").status_code == 503
    finally:
        pg.start()
    assert len(re.findall(r"^<3>answering 503 ", api.log(), re.M)) == 2
    assert api.get("/api/tenants").status_code == 200


class FatalAfterReady:
    """A PostgreSQL that lets a client in and, in the same packet as
    ReadyForQuery, ends the session with the FATAL a fast shutdown sends:
    the race CI met when PostgreSQL stopped just after a connection was
    made. libpq hands that message to the notice processor at once."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.sessions = 0
        self.stopping = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    @staticmethod
    def msg(kind, body):
        return kind + struct.pack("!I", len(body) + 4) + body

    def serve(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                try:
                    self.session(c)
                except OSError:
                    pass

    def session(self, c):
        c.settimeout(5)
        while True:
            n, = struct.unpack("!I", c.recv(4, socket.MSG_WAITALL))
            body = c.recv(n - 4, socket.MSG_WAITALL)
            code, = struct.unpack("!I", body[:4])
            if code in (80877103, 80877104):  # SSLRequest, GSSENCRequest
                c.sendall(b"N")
                continue
            break
        fatal = b"".join(k + v.encode() + b"\0" for k, v in (
            (b"S", "FATAL"), (b"V", "FATAL"), (b"C", "57P01"),
            (b"M", "terminating connection due to administrator command")))
        c.sendall(self.msg(b"R", struct.pack("!I", 0))
                  + self.msg(b"S", b"server_version\x0015.0\0")
                  + self.msg(b"S", b"client_encoding\0UTF8\0")
                  + self.msg(b"K", struct.pack("!II", 1, 2))
                  + self.msg(b"Z", b"I")
                  + self.msg(b"E", fatal + b"\0"))
        self.sessions += 1

    def close(self):
        self.stopping = True
        self.sock.close()


def test_a_fatal_right_after_the_connection_is_logged(node):
    """Before the fix libpq printed it raw on stderr ("FATAL:  terminating
    connection..."), without a priority, from a connection whose notice
    processor was set only once it was made."""
    srv = FatalAfterReady()
    try:
        api = node(PGHOST="127.0.0.1", PGPORT=str(srv.port))
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and \
                "postgres: FATAL:" not in api.log():
            requests.get(api.url + "/health", timeout=10)
            time.sleep(0.2)
        log = api.log()
        assert srv.sessions > 0, log
        assert re.search(r"^<\d>postgres: FATAL:  terminating connection "
                         r"due to administrator command", log, re.M), log
        raw = [x for x in log.splitlines() if not re.match(r"<\d>", x)]
        assert raw == [], raw[:5]
        assert api.stop() == 0
    finally:
        srv.close()
