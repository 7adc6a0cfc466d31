"""What the backup and restore figures share (tests/bench/bench_backup.py,
tests/bench/bench_restore.py, tests/stress/big_backup.py).

  * Node: a PostgreSQL 15 cluster, the test template and one
    odoo-local-api in a temp folder of its own, all on 127.0.0.1;
  * fill(): a tenant's bulk: rows of random bytea (1 MiB each,
    incompressible, as photos are), optionally rows of md5 text
    (compressible about 2x, as hex is), and filestore files of random
    bytes;
  * MemSampler: the daemon's VmRSS and Pss (/proc/PID/smaps_rollup),
    sampled in a thread, with their peaks;
  * api_backup() / api_restore(): one transfer through the API (curl),
    timed;
  * dump_zip_by_hand() / unzip_psql_by_hand(): what an operator does by
    hand (pg_dump + zip; unzip + createdb + psql -f), timed, same cluster.
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "integration"))
import conftest as h  # noqa: E402
import psycopg2  # noqa: E402

MIB = 1 << 20


def status_kib(pid, field="VmRSS"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def pss_kib(pid):
    """Proportional set size: shared pages divided among their users."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class MemSampler(threading.Thread):
    """Peak VmRSS and Pss (KiB) of pid, every `every` seconds, from start()
    to done(); rss0/pss0 are the values at construction (the baseline)."""

    def __init__(self, pid, every=0.1, pss=True):
        super().__init__(daemon=True)
        self.pid, self.every, self.pss = pid, every, pss
        self.rss0 = status_kib(pid)
        self.pss0 = pss_kib(pid) if pss else 0
        self.peak_rss, self.peak_pss = self.rss0, self.pss0
        self.samples = 0
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            try:
                self.peak_rss = max(self.peak_rss, status_kib(self.pid))
                if self.pss:
                    self.peak_pss = max(self.peak_pss, pss_kib(self.pid))
                self.samples += 1
            except OSError:
                return  # the daemon is gone: the caller sees why
            self._halt.wait(self.every)

    def done(self):
        self._halt.set()
        self.join()
        return self

    def growth_mib(self):
        return ((self.peak_rss - self.rss0) / 1024,
                (self.peak_pss - self.pss0) / 1024)


class Node:
    """A cluster, the template and odoo-local-api (no Cloudflare)."""

    def __init__(self, prefix="nodo-backup-", log_level="info"):
        self.pg = h.Postgres()
        self.work = Path(tempfile.mkdtemp(prefix=prefix))
        self.data = self.work / "data"
        (self.data / "filestore").mkdir(parents=True)
        self.api = None
        self.log_level = log_level

    def start(self):
        self.pg.init()
        h.make_template(self.pg, self.data)
        env = {"ODOO_DOMAIN": "sajet.us", "PROVISIONING_API_KEY": h.API_KEY,
               "CLOUDFLARE_API_TOKEN": "", "API_HOST": "127.0.0.1",
               "API_PORT": str(h.free_port()), "DEFAULT_TEMPLATE_DB": "tcs",
               "ODOO_CONF": str(self.work / "no-odoo.conf"),
               "ODOO_DATA_DIR": str(self.data), "PGHOST": self.pg.host,
               "PGPORT": str(self.pg.port), "PGUSER": h.NODE_ROLE,
               "PGPASSWORD": h.NODE_PASSWORD, "LOG_LEVEL": self.log_level}
        (self.work / "api").mkdir()
        self.api = h.Daemon("odoo-local-api", self.work / "api", env).start()
        return self

    def close(self):
        """Stops everything, deletes every file; the daemon's exit code."""
        rc = None
        try:
            if self.api is not None:
                rc = self.api.stop()
        finally:
            self.pg.destroy()
            shutil.rmtree(self.work, ignore_errors=True)
        return rc

    def pg_env(self):
        return dict(os.environ, PGPASSWORD=h.NODE_PASSWORD)

    def pg_args(self):
        return ["-h", self.pg.host, "-p", str(self.pg.port), "-U",
                h.NODE_ROLE]

    def db_size(self, name):
        return self.pg.su_exec("SELECT pg_database_size(%s)",
                               args=(name,))[0][0]

    def fs_size(self, name):
        """(bytes, files) of a tenant's filestore."""
        n = k = 0
        for root, _, files in os.walk(self.data / "filestore" / name):
            for f in files:
                n += os.lstat(os.path.join(root, f)).st_size
                k += 1
        return n, k

    def counts(self, name, tables):
        """{table: rows} of a database."""
        c = self.pg.connect(name)
        try:
            with c.cursor() as cur:
                out = {}
                for t in tables:
                    cur.execute(f'SELECT count(*) FROM "{t}"')
                    out[t] = cur.fetchone()[0]
                return out
        finally:
            c.close()


def fill(node, name, blob_mib, text_mib=0, files=0,
         file_size=lambda i: 1024 + (i * 7919) % (15 * 1024)):
    """Bulk into tenant `name`: table blob (blob_mib rows of 1 MiB random
    bytea, stored uncompressed), table notes (about text_mib MiB of md5
    text, made by the server) and `files` filestore files of file_size(i)
    random bytes in Odoo's two-level layout."""
    c = node.pg.connect(name)
    try:
        with c.cursor() as cur:
            cur.execute("CREATE TABLE blob (id int PRIMARY KEY, data bytea)")
            cur.execute("ALTER TABLE blob ALTER data SET STORAGE EXTERNAL")
            for i in range(blob_mib):
                cur.execute("INSERT INTO blob VALUES (%s, %s)",
                            (i, psycopg2.Binary(os.urandom(MIB))))
            if text_mib:
                # 4 md5s (128 chars) a row: about 160 bytes on disk
                cur.execute("CREATE TABLE notes (id int PRIMARY KEY, "
                            "body text)")
                cur.execute("INSERT INTO notes SELECT g, md5(random()::text)"
                            " || md5(random()::text) || md5(random()::text)"
                            " || md5(g::text) FROM generate_series(1, %s) g",
                            (text_mib * MIB // 160,))
    finally:
        c.close()
    fs = node.data / "filestore" / name
    for i in range(files):
        p = fs / f"{i % 256:02x}" / f"{i:040x}"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(file_size(i)))


def curl(api, *args):
    """curl with the API key in a header file (never in argv): the client
    of the transfers, as Python's requests decodes a chunked body at half
    the daemon's speed on a loaded machine (measured: a 300 MiB tenant's
    backup took 117 s through requests, 58 s through curl, the daemon's
    CPU time the same)."""
    hdr = api.workdir / "curl-headers"
    if not hdr.exists():
        hdr.write_text(f"X-API-KEY: {api.key}\n")
        os.chmod(hdr, 0o600)
    return subprocess.run(["curl", "-sS", "--fail-with-body", "-H",
                           f"@{hdr}"] + list(args), capture_output=True,
                          text=True)


def api_backup(api, name, out, every=0.05, pss=False):
    """GET the backup of `name` into file `out` (curl) while sampling the
    daemon: (seconds, bytes, MemSampler)."""
    s = MemSampler(api.proc.pid, every, pss)
    s.start()
    t0 = time.monotonic()
    try:
        r = curl(api, "-o", str(out), f"{api.url}/api/tenants/{name}/backup")
    finally:
        s.done()
    took = time.monotonic() - t0
    assert r.returncode == 0, f"backup of {name}: {r.stderr} {r.stdout}"
    return took, out.stat().st_size, s


def api_restore(api, zpath, name, every=0.05, pss=False):
    """POST zpath (curl, streamed from the file) as the restore of a new
    tenant `name`: (seconds, MemSampler); asserts the 201."""
    s = MemSampler(api.proc.pid, every, pss)
    s.start()
    t0 = time.monotonic()
    reply = api.workdir / "restore-reply"
    try:
        r = curl(api, "-X", "POST", "-T", str(zpath), "-H",
                 "Content-Type: application/zip", "-w", "%{http_code}",
                 "-o", str(reply),
                 f"{api.url}/api/tenant/restore?subdomain={name}")
    finally:
        s.done()
    took = time.monotonic() - t0
    assert r.returncode == 0 and r.stdout == "201", \
        f"restore of {name}: {r.stdout} {r.stderr} {reply.read_text()}"
    return took, s


def dump_zip_by_hand(node, name, zpath):
    """`pg_dump --no-owner` to a file, then `zip -q -r` of it beside the
    tenant's filestore (zip's deflate level 6, as libarchive's); the
    seconds. The filestore is reached by a symbolic link (zip follows it):
    nothing is copied that an operator would not copy."""
    d = node.work / "hand"
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir()
    t0 = time.monotonic()
    with open(d / "dump.sql", "wb") as f:
        subprocess.run([str(h.PGBIN / "pg_dump"), "--no-owner"] +
                       node.pg_args() + [name], stdout=f,
                       env=node.pg_env(), check=True)
    fs = node.data / "filestore" / name
    if fs.exists():
        (d / "filestore").symlink_to(fs)
    (d / "manifest.json").write_text("{}")
    subprocess.run(["zip", "-q", "-r", str(zpath), "manifest.json",
                    "dump.sql"] + (["filestore"] if fs.exists() else []),
                   cwd=d, check=True)
    took = time.monotonic() - t0
    shutil.rmtree(d)
    return took


def unzip_psql_by_hand(node, zpath, name):
    """`unzip -q`, `createdb`, `psql -q -f dump.sql` (Odoo's restore_db
    without its checks), the filestore moved into place; the seconds."""
    d = node.work / "hand"
    shutil.rmtree(d, ignore_errors=True)
    t0 = time.monotonic()
    subprocess.run(["unzip", "-q", str(zpath), "-d", str(d)], check=True)
    subprocess.run([str(h.PGBIN / "createdb")] + node.pg_args() +
                   ["-E", "unicode", "-T", "template0", name],
                   env=node.pg_env(), check=True)
    subprocess.run([str(h.PGBIN / "psql"), "-q", "-o", "/dev/null",
                    "-v", "ON_ERROR_STOP=1"] + node.pg_args() +
                   ["-d", name, "-f", str(d / "dump.sql")],
                   env=node.pg_env(), check=True)
    if (d / "filestore").exists():
        os.rename(d / "filestore", node.data / "filestore" / name)
    took = time.monotonic() - t0
    shutil.rmtree(d)
    return took


def drop(node, name):
    node.pg.su_exec(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    shutil.rmtree(node.data / "filestore" / name, ignore_errors=True)
