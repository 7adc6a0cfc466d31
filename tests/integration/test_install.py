"""install.sh and the shell code it shares with the Debian package, where
they can run without installing a package on this machine: options and
refusals (which come before anything is changed), the odoo.conf and env
file parsers of scripts/nodo-conf.sh (one copy, used by install.sh,
watcher-user.sh and postinst), the watcher's user rule, the Cloudflare
token credential, and the systemd unit checks of tests/test_units.sh.

install.sh itself builds and installs the package: tests/system/test_seed.py
runs it for real under systemd (first install, re-run, a failed check,
--start, uninstall, purge), and tests/system/test_package.py the package's
maintainer scripts.
"""
import grp
import os
import pwd
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

INSTALL = ROOT / "install.sh"
CONF_LIB = ROOT / "scripts/nodo-conf.sh"
WATCHER_USER = ROOT / "scripts/watcher-user.sh"
DAEMONS = ("odoo-local-api", "odoo-db-watcher")
UNITS = ("odoo-local-api.service", "odoo-db-watcher.service")


def run_install(*args, check=True):
    r = subprocess.run(["bash", str(INSTALL)] + list(args), capture_output=True,
                       text=True, stdin=subprocess.DEVNULL, timeout=120, cwd=str(ROOT))
    if check:
        assert r.returncode == 0, f"{args}\n{r.stdout}\n{r.stderr}"
    return r


def lib(script, *args):
    """Runs SCRIPT (sh) with scripts/nodo-conf.sh sourced; ARGS are $1..."""
    r = subprocess.run(["sh", "-c", f". {CONF_LIB}\n{script}", "sh"] + list(args),
                       capture_output=True, text=True, timeout=60)
    return r


def test_help():
    r = run_install("--help")
    assert r.stdout.startswith("Usage: sudo ./install.sh [options]")
    for opt in ("--user", "--odoo-conf", "--deb", "--no-deps", "--no-build",
                "--no-start", "--start", "--uninstall", "--purge", "NODO_BUILD",
                "make deb", "apt-get install ./nodo_*.deb"):
        assert opt in r.stdout, opt
    r = run_install("--frobnicate", check=False)
    assert r.returncode != 0
    assert "unknown option: --frobnicate" in r.stderr
    # The package decides the layout: the old staging options say so.
    for gone in ("--prefix=/srv/nodo", "--destdir", "--destdir=/tmp/x"):
        r = run_install(gone, "/tmp/x", check=False)
        assert r.returncode != 0
        assert "is gone: the package installs into /opt/nodo" in r.stderr, gone
    r = run_install("--purge", check=False)
    assert r.returncode != 0 and "--purge goes with --uninstall" in r.stderr


@pytest.fixture
def as_root():
    if os.geteuid() != 0:
        pytest.skip("install.sh refuses to run without root; these refusals come after that check")


def test_refusals_change_nothing(as_root, tmp_path):
    """Issue 8, item 10: the services never run as root (nor as nobody); a
    --odoo-conf that cannot be read is an error. All of it before apt-get,
    the build or the package: nothing on this machine changes (the test
    runs as root on the machine itself)."""
    before = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"],
                            capture_output=True, text=True).stdout
    for user in ("root", "0"):
        r = run_install("--no-deps", "--user", user, check=False)
        assert r.returncode == 1
        assert "refusing to install the services to run as root" in r.stderr
        assert "==> Installing" not in r.stdout and "==> Building" not in r.stdout
    r = run_install("--no-deps", "--user", "nobody", check=False)
    assert r.returncode == 1
    assert "refusing to install the services to run as nobody" in r.stderr
    r = run_install("--no-deps", "--user", "no-such-user-here", check=False)
    assert r.returncode == 1 and "user no-such-user-here does not exist" in r.stderr
    r = run_install("--no-deps", "--user", "daemon", "--odoo-conf",
                    str(tmp_path / "none.conf"), check=False)
    assert r.returncode == 1 and "cannot read Odoo's config" in r.stderr
    # A package that is not there.
    r = run_install("--no-deps", "--user", "daemon", "--deb",
                    str(tmp_path / "nodo_0_amd64.deb"), check=False)
    assert r.returncode == 1 and "no package" in r.stderr
    after = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Status}\n"],
                           capture_output=True, text=True).stdout
    assert after == before
    assert not any(os.path.exists(f"/etc/systemd/system/{u}.d/10-install.conf")
                   for u in UNITS)


def test_the_parsers_are_written_once():
    """The odoo.conf and env file parsers live in scripts/nodo-conf.sh
    alone: install.sh, watcher-user.sh and the package's postinst source it."""
    marker = r"\[options\]"  # the section test of the awk parser
    holders = [p.relative_to(ROOT).as_posix() for p in
               [INSTALL, *sorted((ROOT / "scripts").glob("*.sh")),
                *sorted((ROOT / "debian").glob("nodo.*"))]
               if marker in p.read_text()]
    assert holders == ["scripts/nodo-conf.sh"], holders
    for p in (INSTALL, WATCHER_USER, ROOT / "debian/nodo.postinst"):
        text = p.read_text()
        assert "nodo-conf.sh" in text, p
        assert "awk" not in text, f"{p} parses by itself"


def test_odoo_conf_get(tmp_path):
    conf = tmp_path / "odoo.conf"
    conf.write_text("db_user = not-in-a-section\n"
                    "[options]\r\n"
                    "; a comment: db_host = no\n"
                    "# db_host = no\n"
                    "DB_Host = first\n"
                    "db_host:second\n"
                    "dbfilter = ^%d$\n"
                    "admin_passwd = a=b:c\n"
                    "list_db = False\n"
                    "[queue_job]\n"
                    "db_user = other-section\n")
    want = {"db_host": "second", "DB_HOST": "second", "dbfilter": "^%d$",
            "admin_passwd": "a=b:c", "list_db": "False"}
    for key, value in want.items():
        r = lib('odoo_conf_get "$1" "$2"', str(conf), key)
        assert (r.returncode, r.stdout) == (0, value + "\n"), (key, r)
    for key in ("db_user", "data_dir"):
        r = lib('odoo_conf_get "$1" "$2"', str(conf), key)
        assert (r.returncode, r.stdout) == (1, ""), (key, r)
    r = lib('odoo_conf_get "$1" db_host', str(tmp_path / "missing.conf"))
    assert r.returncode != 0 and r.stdout == "" and r.stderr == ""


def test_env_get_and_env_set(tmp_path):
    env = tmp_path / "env"
    env.write_text("  A = ' quoted '\r\n"
                   "#ODOO_CONF=/etc/odoo/odoo.conf\n"
                   "PROVISIONING_API_KEY=first\n"
                   "X=1\n"
                   "PROVISIONING_API_KEY = \"last\"\n")
    env.chmod(0o640)
    for key, value in (("A", " quoted "), ("PROVISIONING_API_KEY", "last"), ("X", "1")):
        r = lib('env_get "$1" "$2"', str(env), key)
        assert (r.returncode, r.stdout) == (0, value + "\n"), (key, r)
    for key in ("ODOO_CONF", "PROVISIONING_API", "NOPE"):
        assert lib('env_get "$1" "$2"', str(env), key).returncode == 1, key
    assert lib('env_get "$1" A', str(tmp_path / "none")).returncode == 1
    # The first line that sets the key is replaced, later ones dropped; a
    # commented-out line of the example takes a key that is not set; a key
    # with neither is appended with its comment. Owner and mode are kept.
    r = lib('env_set "$1" PROVISIONING_API_KEY new-key && '
            'env_set "$1" ODOO_CONF /srv/odoo.conf && '
            'env_set "$1" ODOO_DATA_DIR /srv/data "Added by a test" && '
            'env_set "$1" X 2', str(env))
    assert r.returncode == 0, r.stderr
    assert env.read_bytes().decode() == ("  A = ' quoted '\r\n"
                               "ODOO_CONF=/srv/odoo.conf\n"
                               "PROVISIONING_API_KEY=new-key\n"
                               "X=2\n"
                               "# Added by a test\n"
                               "ODOO_DATA_DIR=/srv/data\n")
    assert env.stat().st_mode & 0o7777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env"]  # no temporary left


def test_api_user_follows_the_drop_ins():
    # No drop-in on this machine names one: the unit's odoo.
    if os.path.exists(f"/etc/systemd/system/{UNITS[0]}.d"):
        pytest.skip("this machine has odoo-local-api drop-ins of its own")
    r = lib("nodo_api_user")
    assert (r.returncode, r.stdout) == (0, "odoo\n")


@pytest.mark.parametrize("case", ["peer", "tcp-world", "tcp-group",
                                  "tcp-rootgroup", "tcp-private",
                                  "pgpassword", "tcp-nouser"])
def test_watcher_user(tmp_path, case):
    """Issue 8, item 9: the watcher runs as nodo-watcher when it can log in
    to PostgreSQL with a password over TCP as a named role and read
    odoo.conf, else as Odoo's user (peer authentication, or libpq's default
    role: the Unix user's name), and says why (the package's postinst and
    install.sh print it)."""
    u = pwd.getpwnam("daemon")
    ugroup = grp.getgrgid(u.pw_gid).gr_name
    conf = tmp_path / "odoo.conf"
    body = {"peer": "db_host = False\ndb_password = False\ndb_user = odoo\n",
            "pgpassword": "db_host = False\ndb_user = odoo\n",
            "tcp-nouser": "db_host = localhost\ndb_password = s3cret-pw\n"}.get(
        case, "db_host = localhost\ndb_password = s3cret-pw\ndb_user = odoo\n")
    conf.write_text("[options]\n" + body + "data_dir = /srv/o\n")
    conf.chmod({"tcp-group": 0o640, "tcp-rootgroup": 0o640,
                "tcp-private": 0o600}.get(case, 0o644))
    if os.geteuid() == 0:
        os.chown(conf, 0, 0 if case == "tcp-rootgroup" else 65534)
    elif case == "tcp-rootgroup":
        pytest.skip("needs root to give odoo.conf to the group root")
    env = tmp_path / "env"
    if case == "pgpassword":
        # PGHOST and PGPASSWORD of the env file count too.
        env.write_text("PROVISIONING_API_KEY=%s\nPGHOST=db.local\n"
                       "PGPASSWORD=pw-in-env\n" % ("k" * 32))
        env.chmod(0o600)
    r = subprocess.run(["sh", str(WATCHER_USER), str(conf), str(env), "daemon", ugroup],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    user, group, supp, why = r.stdout.split("\n")[:4]
    conf_group = grp.getgrgid(conf.stat().st_gid).gr_name
    if case in ("peer", "tcp-private", "tcp-rootgroup", "tcp-nouser"):
        assert (user, group, supp) == ("daemon", ugroup, "nodo"), r.stdout
        assert why.startswith("Odoo's user")
        if case == "tcp-nouser":
            assert "no db_user (or PGUSER) names the node's role" in why
    else:
        assert (user, group) == ("nodo-watcher", "nodo"), r.stdout
        assert why.startswith("its own user")
        assert supp == (conf_group if case == "tcp-group" else ""), r.stdout
    for secret in ("s3cret-pw", "pw-in-env"):
        assert secret not in r.stdout + r.stderr
    r = subprocess.run(["sh", str(WATCHER_USER), "one", "two"], capture_output=True,
                       text=True)
    assert r.returncode == 64 and "usage:" in r.stderr


def test_token_credential_reaches_the_daemon(node, tmp_path):
    """The daemons read the token from $CREDENTIALS_DIRECTORY as systemd's
    LoadCredential= hands it over: with the env file's token empty, DNS is
    on and the fake Cloudflare sees the credential's token."""
    creds = tmp_path / "creds"
    creds.mkdir()
    from conftest import CF_TOKEN
    (creds / "cloudflare-token").write_text(CF_TOKEN + "\n")
    api = node(start=False, CLOUDFLARE_API_TOKEN="")
    api.write_env()
    env = {"PATH": os.environ["PATH"], "CREDENTIALS_DIRECTORY": str(creds)}
    for prog in DAEMONS:
        r = subprocess.run([str(BUILD / prog), "--config", str(api.env_file),
                            "--check"], capture_output=True, text=True,
                           env=env, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        assert CF_TOKEN not in r.stdout + r.stderr
    # Without the credential the same env file means DNS off.
    (creds / "cloudflare-token").write_text("")
    r = subprocess.run([str(BUILD / "odoo-local-api"), "--config",
                        str(api.env_file), "--check"], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_install_sh_passes_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    r = subprocess.run(["shellcheck", "-x", "install.sh"], cwd=ROOT,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def run_unit_checks(unit_dir=None):
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian package "
                    "`systemd`): the unit checks of tests/test_units.sh "
                    "cannot run")
    cmd = ["sh", str(ROOT / "tests/test_units.sh")]
    if unit_dir is not None:
        cmd.append(str(unit_dir))
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    if r.returncode == 77:
        pytest.skip(f"tests/test_units.sh skipped: {r.stderr.strip()}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "all unit checks passed" in r.stdout
    return r


def test_systemd_units():
    """systemd-analyze verify and security (exposure <= 3.0) of systemd/."""
    r = run_unit_checks()
    for u in UNITS:
        assert f"ok: {u}: systemd-analyze verify" in r.stdout
        assert re.search(rf"ok: {re.escape(u)}: exposure \d+\.\d", r.stdout)


