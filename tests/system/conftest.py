"""System test harness: a Debian 12 container with systemd as PID 1.

The root file system is made once with debootstrap (bookworm, minbase plus
what the node and its tests need) and cached in CACHE as a directory named
after a hash of its recipe; it is rebuilt only when that directory is
missing. Each container boots an overlay of it (the cache stays pristine,
a fresh container costs nothing) with

    systemd-nspawn -b --register=no --keep-unit --private-network -D <overlay>

--private-network leaves the container nothing but its own loopback: every
request the test makes inside goes to 127.0.0.1, and nothing can reach out.
Commands run inside with nsenter into the namespaces of the container's
PID 1 (there is no machined to ask with --register=no), as root, the way an
operator types them at the node's shell.

Root only (debootstrap, mounts, nspawn). Needs debootstrap and
systemd-container (tests/deps.sh installs them).
"""
import fcntl
import hashlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("NODO_SYSTEM_CACHE", "/var/cache/nodo-system-test"))
RESULTS = Path(os.environ.get("NODO_SYSTEM_RESULTS", ROOT / "build" / "system-test"))
MIRROR = os.environ.get("NODO_SYSTEM_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"

# Everything the container needs, installed at build time (the container has
# no network): systemd and PostgreSQL as on a node; what install.sh builds
# the package with (it finds them installed and does not call apt-get:
# build-essential, debhelper and the -dev packages); the package's
# run-time dependencies (dpkg -I build/deb/nodo_*.deb); python3 and
# jsonschema for the fake Cloudflare server; sudo for the seed's commands.
PACKAGES = sorted("""
systemd systemd-sysv dbus libpam-systemd sudo procps adduser
postgresql-15 postgresql-client-15
curl ca-certificates python3 python3-jsonschema
build-essential debhelper make pkg-config libmicrohttpd-dev libpq-dev
libcurl4-openssl-dev libcjson-dev libsystemd-dev libssl-dev libarchive-dev
libmicrohttpd12 libpq5 libcurl4 libcjson1 libsystemd0 libssl3 libarchive13
""".split())
# Bump when the recipe below changes in a way the package list does not show.
RECIPE = "3"
MACHINE = "nodo-systest"
CPATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# The fake Cloudflare server inside the container and the settings that
# point the node at it.
CF_PORT = 8787
CF_TOKEN = "test-token"
TUNNEL_ID = "6ff42ae2-765d-4adf-8112-31c55c1551ef"


def _integration():
    """tests/integration/conftest.py, for its template SQL and zone ids."""
    spec = importlib.util.spec_from_file_location(
        "nodo_integration_conftest", ROOT / "tests/integration/conftest.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def log(msg):
    print(f"[system {time.strftime('%H:%M:%S')}] {msg}", flush=True)


FIGURES = {}


def figure(name, value):
    """Records a measured figure; all of them are printed at the end."""
    FIGURES[name] = value
    log(f"figure: {name} = {value}")


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.write_sep("-", "system test figures")
        for k, v in FIGURES.items():
            terminalreporter.write_line(f"{k}: {v}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "figures.json").write_text(json.dumps(FIGURES, indent=2) + "\n")


# --- One step after another ------------------------------------------------
# The tests of a module are the steps of one story in one container: once a
# step fails, the later ones are reported as not run (with the step that
# broke) instead of failing for a reason that has nothing to do with them.

def pytest_runtest_makereport(item, call):
    if call.excinfo is not None and call.when in ("setup", "call") and \
            not call.excinfo.errisinstance(pytest.skip.Exception):
        item.module._nodo_broken = item.name


def pytest_runtest_setup(item):
    broken = getattr(item.module, "_nodo_broken", None)
    if broken:
        pytest.skip(f"not run: the earlier step {broken} failed")


# --- The root file system ----------------------------------------------------

def rootfs_key():
    h = hashlib.sha256()
    h.update(f"{RECIPE} {SUITE} {MIRROR} {' '.join(PACKAGES)}".encode())
    return h.hexdigest()[:16]


def build_rootfs(dest):
    tmp = dest.with_name(dest.name + ".tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    log(f"building the root file system {dest} (debootstrap {SUITE}, "
        f"{len(PACKAGES)} packages; once, then cached)")
    t0 = time.monotonic()
    with open(CACHE / "debootstrap.log", "w") as out:
        subprocess.run(["debootstrap", "--variant=minbase",
                        "--include=" + ",".join(PACKAGES), SUITE, str(tmp),
                        MIRROR], check=True, stdout=out, stderr=subprocess.STDOUT)
    # No network inside: the apt timers would only fail (and could hold
    # apt's locks while a test installs the package).
    for t in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        (tmp / "etc/systemd/system" / t).unlink(missing_ok=True)
        os.symlink("/dev/null", tmp / "etc/systemd/system" / t)
    (tmp / "etc/hostname").write_text(MACHINE + "\n")
    with open(tmp / "etc/hosts", "a") as f:
        f.write(f"127.0.1.1\t{MACHINE}\n")
    subprocess.run(["chroot", str(tmp), "apt-get", "clean"], check=True)
    os.rename(tmp, dest)
    # The roots of other recipes go once no run has used them for a day
    # (branches with another recipe share the machine's cache meanwhile).
    for other in CACHE.glob("rootfs-*"):
        if other != dest and time.time() - other.stat().st_mtime > 86400:
            shutil.rmtree(other, ignore_errors=True)
    figure("rootfs build (debootstrap, cold cache) s", round(time.monotonic() - t0, 1))


@pytest.fixture(scope="session")
def rootfs():
    if os.geteuid() != 0:
        pytest.fail("the system test needs root (debootstrap, mounts, systemd-nspawn)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-buildpackage"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: run tests/deps.sh as root")
    CACHE.mkdir(parents=True, exist_ok=True)
    dest = CACHE / f"rootfs-{rootfs_key()}"
    # One system test at a time on a machine, for the whole session: the
    # root file system is built once, and what is left in /var/tmp from a
    # run that was killed can only be stale.
    lock = open(CACHE / "lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    for old in Path("/var/tmp").glob("nodo-systest-*"):
        if subprocess.run(["mountpoint", "-q", str(old / "root")]).returncode == 0 and \
                subprocess.run(["umount", str(old / "root")]).returncode != 0:
            log(f"{old} is still in use: left alone")
            continue
        shutil.rmtree(old, ignore_errors=True)
    if not dest.is_dir():
        build_rootfs(dest)
    else:
        log(f"root file system from the cache: {dest}")
        os.utime(dest)  # in use: kept by the clean-up of other recipes
    yield dest
    lock.close()


# --- The packages ------------------------------------------------------------

@pytest.fixture(scope="session")
def debs(tmp_path_factory):
    """Two builds of the package from this tree: the one `make deb` makes, and
    the same tree as an earlier version, to upgrade from."""
    out = tmp_path_factory.mktemp("debs")
    version = subprocess.run(["dpkg-parsechangelog", "-l", str(ROOT / "debian/changelog"),
                              "-S", "Version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    prev = version + "~systest1"
    t0 = time.monotonic()
    paths = {}
    for name, ver in (("prev", prev), ("cur", "")):
        d = out / name
        log(f"make deb PKG_VERSION={ver or '(changelog: ' + version + ')'}")
        with open(RESULTS_DIR() / f"deb-{name}.log", "w") as f:
            subprocess.run(["make", "-C", str(ROOT), "deb", f"DEB_OUT={d}"] +
                           ([f"PKG_VERSION={ver}"] if ver else []), check=True,
                           stdout=f, stderr=subprocess.STDOUT)
        want = d / f"nodo_{ver or version}_amd64.deb"
        assert want.is_file(), f"make deb did not leave {want}"
        paths[name] = want
    figure("two package builds s", round(time.monotonic() - t0, 1))
    return {"prev": paths["prev"], "cur": paths["cur"], "prev_version": prev,
            "version": version}


def RESULTS_DIR():
    RESULTS.mkdir(parents=True, exist_ok=True)
    return RESULTS


# --- The container -----------------------------------------------------------

class Failed(AssertionError):
    pass


class Container:
    """One overlay of the cached root, booted and shut down as often as a test
    likes; what it writes lives in the overlay's upper layer until close()."""

    def __init__(self, lower, name):
        self.name = name
        self.lower = lower
        self.dir = Path(tempfile.mkdtemp(prefix=f"nodo-systest-{name}-", dir="/var/tmp"))
        for d in ("upper", "work", "root"):
            (self.dir / d).mkdir()
        self.root = self.dir / "root"
        subprocess.run(["mount", "-t", "overlay", "overlay", "-o",
                        f"lowerdir={lower},upperdir={self.dir / 'upper'},"
                        f"workdir={self.dir / 'work'}", str(self.root)], check=True)
        self.proc = None
        self.leader = None
        self.boots = 0

    # Booting and stopping.
    def boot(self, timeout=120):
        self.boots += 1
        self.console = open(RESULTS_DIR() / f"{self.name}-console-{self.boots}.log", "w")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(
            ["systemd-nspawn", "-b", "--register=no", "--keep-unit",
             "--private-network", "--console=read-only", "-q",
             f"--machine={MACHINE}", "-D", str(self.root)],
            stdin=subprocess.DEVNULL, stdout=self.console, stderr=subprocess.STDOUT)
        while self.leader is None:
            if self.proc.poll() is not None:
                raise Failed(f"systemd-nspawn exited with {self.proc.returncode}: "
                             f"see {self.console.name}")
            # The container's PID 1 is the nspawn process's child once that
            # has become systemd (the child may come and go meanwhile).
            try:
                kids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
                pid = kids.read_text().split()[0]
                if os.readlink(f"/proc/{pid}/exe").endswith("/systemd"):
                    self.leader = int(pid)
                    continue
            except (OSError, IndexError):
                pass
            if time.monotonic() - t0 > timeout:
                raise Failed("the container's PID 1 did not appear")
            else:
                time.sleep(0.1)
        # Wait for the end of the boot; "degraded" (a failed unit) is a failure.
        state = ""
        while time.monotonic() - t0 < timeout:
            r = self.run("systemctl is-system-running --wait", check=False, timeout=timeout)
            state = r.stdout.strip()
            if state in ("running", "degraded"):
                break
            time.sleep(0.3)
        if state != "running":
            failed = self.run("systemctl --failed --no-pager", check=False).stdout
            raise Failed(f"boot ended {state!r}, not 'running':\n{failed}")
        return time.monotonic() - t0

    def poweroff(self, timeout=90):
        self.run("systemctl poweroff", check=False)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise Failed("the container did not power off")
        self.proc = None
        self.leader = None
        self.console.close()
        if rc != 0:
            raise Failed(f"systemd-nspawn exited with {rc} after poweroff")

    def close(self):
        if self.proc is not None:
            try:
                self.run("journalctl -b --no-pager -o short-monotonic > "
                         "/root/journal.txt", check=False, timeout=30)
                shutil.copy(self.root / "root/journal.txt",
                            RESULTS_DIR() / f"{self.name}-journal.txt")
            except (OSError, Failed, subprocess.TimeoutExpired):
                pass
            self.proc.send_signal(signal.SIGTERM)  # nspawn powers the container off
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.console.close()
        subprocess.run(["umount", str(self.root)], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)

    # Running commands inside.
    def run(self, cmd, check=True, input=None, timeout=300, user=None):
        """Runs the shell command CMD inside, as root (or USER), in a login-like
        environment. With check, a non-zero status is a test failure that
        shows the command and its output."""
        if self.leader is None:
            raise Failed("the container is not running")
        argv = ["nsenter", "-t", str(self.leader), "-a", "env", "-i",
                f"PATH={CPATH}", "HOME=/root", "LANG=C.UTF-8", "TERM=dumb",
                "USER=root", "LOGNAME=root"]
        if user:
            argv += ["runuser", "-u", user, "--"]
        argv += ["bash", "-c", cmd]
        r = subprocess.run(argv, input=input, capture_output=True, text=True,
                           timeout=timeout)
        # What an operator would have seen, for the reader of a failed run.
        with open(RESULTS_DIR() / f"{self.name}-transcript.log", "a") as t:
            t.write(f"# {cmd.strip()}\n{r.stdout}{r.stderr}[exit {r.returncode}]\n\n")
        if check and r.returncode != 0:
            raise Failed(f"inside the container: {cmd}\nexit {r.returncode}\n"
                         f"--- stdout\n{r.stdout}--- stderr\n{r.stderr}")
        return r

    def sh(self, cmd, **kw):
        """run() that returns the output, stripped."""
        return self.run(cmd, **kw).stdout.strip()

    def prop(self, unit, name):
        return self.sh(f"systemctl show -P {name} {unit}")

    def wait_for(self, cmd, timeout=60, what=None):
        """Runs CMD until it succeeds (status 0); a failure after TIMEOUT."""
        t0 = time.monotonic()
        while True:
            r = self.run(cmd, check=False)
            if r.returncode == 0:
                return time.monotonic() - t0
            if time.monotonic() - t0 > timeout:
                raise Failed(f"{what or cmd}: still failing after {timeout} s\n"
                             f"{r.stdout}{r.stderr}")
            time.sleep(0.3)

    def put(self, path, text, mode=0o644):
        p = self.root / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
        os.chmod(p, mode)

    def copy_tree(self, files, dest):
        """Copies the repository files FILES (relative paths) to DEST inside."""
        for rel in files:
            src = ROOT / rel
            if not src.is_file():
                continue
            d = self.root / dest.lstrip("/") / rel
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, d)


def repo_files():
    r = subprocess.run(["git", "-C", str(ROOT), "ls-files", "--cached", "--others",
                        "--exclude-standard"], capture_output=True, text=True)
    if r.returncode == 0:
        return r.stdout.split()
    return [str(p.relative_to(ROOT)) for p in ROOT.rglob("*")
            if p.is_file() and ".git" not in p.parts and not p.parts[len(ROOT.parts)].startswith("build")]


# --- What an Odoo node has before Nodo comes ---------------------------------

def template_sql():
    """The integration tests' Odoo-like template, with a real admin hash."""
    mod = _integration()
    with warnings.catch_warnings():  # passlib's import of crypt (Python 3.11)
        warnings.simplefilter("ignore", DeprecationWarning)
        from passlib.hash import pbkdf2_sha512
    h = pbkdf2_sha512.using(rounds=1000).hash(mod.TEMPLATE_PASSWORD)
    return mod.TEMPLATE_SQL.replace("%(hash)s", "'" + h + "'"), mod


def setup_odoo_node(c, odoo_user_exists=True):
    """What Odoo's own installation leaves: the odoo role in PostgreSQL (the
    node's database role, CREATEDB), the template database tcs owned by it
    with its filestore, and /etc/odoo/odoo.conf (root:odoo 0640, as Debian's
    odoo package ships it). With ODOO_USER_EXISTS false the system user is
    expected to exist already (the package created it)."""
    sql, mod = template_sql()
    if odoo_user_exists:
        c.run("adduser --system --group --home /var/lib/odoo --quiet odoo")
    c.put("/root/template.sql", sql)
    files = "\n".join(f"mkdir -p /var/lib/odoo/filestore/tcs/{shlex.quote(os.path.dirname(rel))}"
                      f" && printf %s {shlex.quote(content.decode())} > "
                      f"/var/lib/odoo/filestore/tcs/{shlex.quote(rel)}"
                      for rel, content in mod.FILESTORE_FILES.items())
    c.run(f"""set -e
        runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -c 'CREATE ROLE odoo LOGIN CREATEDB'
        runuser -u postgres -- createdb -O odoo -E UTF8 -T template0 tcs
        runuser -u odoo -- psql -q -v ON_ERROR_STOP=1 -d tcs < /root/template.sql
        install -d -o odoo -g odoo -m 0750 /var/lib/odoo /var/lib/odoo/filestore
        {files}
        chown -R odoo:odoo /var/lib/odoo/filestore
        install -d -m 0755 /etc/odoo
        printf '[options]\\ndata_dir = /var/lib/odoo\\ndbfilter = ^%%d$\\nlist_db = False\\n' > /etc/odoo/odoo.conf
        chown root:odoo /etc/odoo/odoo.conf
        chmod 0640 /etc/odoo/odoo.conf
    """)
    return mod


def start_fake_cloudflare(c, fakes_dir):
    """The fake Cloudflare API inside, on 127.0.0.1:CF_PORT, as a unit of the
    container's systemd."""
    c.run(f"systemd-run --unit=fake-cloudflare --property=Restart=no "
          f"/usr/bin/python3 {fakes_dir}/fake_cloudflare.py --port {CF_PORT} "
          f"--token {CF_TOKEN}")
    c.wait_for(f"curl -sf -o /dev/null -H 'Authorization: Bearer {CF_TOKEN}' "
               f"http://127.0.0.1:{CF_PORT}/client/v4/zones?name=sajet.us",
               what="the fake Cloudflare server")


def configure_node(c, mod, env="/opt/nodo/config/.env"):
    """The operator's edit of .env and domains.json (the seed's step after
    the install): the zones, the token and the tunnel, here the fake's."""
    c.run(f"""set -e
        sed -i -e 's|^CLOUDFLARE_API_TOKEN=.*|CLOUDFLARE_API_TOKEN={CF_TOKEN}|' \
            -e 's|^#CF_TUNNEL_ID=.*|CF_TUNNEL_ID={TUNNEL_ID}|' \
            -e 's|^#CLOUDFLARE_API_URL=.*|CLOUDFLARE_API_URL=http://127.0.0.1:{CF_PORT}/client/v4|' \
            -e 's|^#DB_WATCHER_INTERVAL=.*|DB_WATCHER_INTERVAL=2|' {env}
        grep -q '^CLOUDFLARE_API_TOKEN={CF_TOKEN}$' {env}
        grep -q '^CF_TUNNEL_ID={TUNNEL_ID}$' {env}
        cat > /opt/nodo/cloudflare/domains.json <<'EOF'
{{"zones": {{"sajet.us": "{mod.ZONE_SAJET}", "otro.dominio": "{mod.ZONE_OTRO}"}},
 "tunnel_id": "{TUNNEL_ID}"}}
EOF
    """)


def api_key(c):
    key = c.sh("sed -n 's/^PROVISIONING_API_KEY=//p' /opt/nodo/config/.env")
    assert len(key) == 64 and all(ch in "0123456789abcdef" for ch in key), \
        "PROVISIONING_API_KEY is not 64 random hex digits"
    return key


def dns_records(c, name):
    """The fake's CNAMEs named NAME (a list of records)."""
    mod_zone = _integration().ZONE_SAJET
    out = c.sh(f"curl -sf -H 'Authorization: Bearer {CF_TOKEN}' "
               f"'http://127.0.0.1:{CF_PORT}/client/v4/zones/{mod_zone}/dns_records"
               f"?type=CNAME&name={name}'")
    return json.loads(out)["result"]
