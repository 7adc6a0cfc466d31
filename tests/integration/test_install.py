"""install.sh staged with --destdir (CONTRACT section 1): the `make install`
tree, modes, the env file with its random key (created once, printed once,
never overwritten), the operator's domains.json kept, the seed's
/opt/odoo/scripts links, --uninstall [--purge]; and the systemd unit checks
of tests/test_units.sh.

install.sh is run with --no-deps --no-start --no-build and NODO_BUILD set to
the build directory of the suite, so it installs the binaries under test
without rebuilding them.
"""
import grp
import json
import os
import pwd
import re
import shutil
import subprocess

import pytest

from conftest import BUILD, ROOT

INSTALL = ROOT / "install.sh"
PREFIX = "opt/nodo"
DAEMONS = ("odoo-local-api", "odoo-db-watcher")
CLIS = ("create_tenant.sh", "list_tenants.sh", "delete_tenant.sh")
UNITS = ("odoo-local-api.service", "odoo-db-watcher.service")
EXAMPLE_KEY = "prov-key-2026-secure"
KEY_LINE = re.compile(r"^PROVISIONING_API_KEY=(.*)$", re.M)
# docs/README.md, "Users, groups, owners and modes": root:nodo 0640 when
# install.sh runs as root; a non-root staging run keeps it 0600 (the
# daemons refuse a group-readable env file that root does not own).
ENV_MODE = 0o640 if os.geteuid() == 0 else 0o600


def run_install(destdir, *args, env=None, check=True, script=INSTALL):
    e = dict(os.environ)
    e["NODO_BUILD"] = str(BUILD)
    e.pop("MAKEFLAGS", None)
    e.pop("MFLAGS", None)
    if env:
        e.update(env)
    cmd = ["bash", str(script), "--destdir", str(destdir)] + list(args)
    r = subprocess.run(cmd, capture_output=True, text=True, env=e,
                       stdin=subprocess.DEVNULL, timeout=300, cwd=str(ROOT))
    if check:
        assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
    return r


def stage(destdir, *extra, **kw):
    return run_install(destdir, "--no-deps", "--no-start", "--no-build",
                       *extra, **kw)


def mode(p):
    return os.lstat(p).st_mode & 0o7777


@pytest.fixture(scope="module")
def built():
    for d in DAEMONS:
        if not os.access(BUILD / d, os.X_OK):
            pytest.fail(f"{BUILD / d} is not built: run make "
                        f"B={BUILD} first (or set NODO_BUILD)")
    return BUILD


@pytest.fixture
def staged(built, tmp_path):
    """(destdir, result of the first install.sh run)."""
    root = tmp_path / "root"
    r = stage(root)
    return root, r


def test_help():
    r = subprocess.run(["bash", str(INSTALL), "--help"], capture_output=True,
                       text=True, stdin=subprocess.DEVNULL)
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: sudo ./install.sh [options]")
    for opt in ("--destdir", "--prefix", "--no-deps", "--no-build",
                "--no-start", "--start", "--odoo-conf", "--uninstall",
                "--purge", "NODO_BUILD"):
        assert opt in r.stdout, opt
    r = subprocess.run(["bash", str(INSTALL), "--frobnicate"],
                       capture_output=True, text=True)
    assert r.returncode != 0
    assert "unknown option: --frobnicate" in r.stderr


def test_layout_and_modes(staged, built):
    root, _ = staged
    dest = root / PREFIX
    for d in DAEMONS:
        p = dest / "bin" / d
        assert p.is_file() and not p.is_symlink()
        assert mode(p) == 0o755, oct(mode(p))
        assert p.read_bytes() == (built / d).read_bytes(), \
            f"{p} is not the binary of NODO_BUILD"
    for s in CLIS + ("nodo-common.sh", "watcher-user.sh"):
        p = dest / "scripts" / s
        assert mode(p) == 0o755, (s, oct(mode(p)))
        assert p.read_bytes() == (ROOT / "scripts" / s).read_bytes()
    nodo_env = dest / "config" / "nodo.env"
    assert mode(nodo_env) == 0o644
    assert nodo_env.read_bytes() == (ROOT / "config/nodo.env").read_bytes()
    domains = dest / "cloudflare" / "domains.json"
    assert mode(domains) == 0o644
    assert json.loads(domains.read_text()) == json.loads(
        (ROOT / "cloudflare/domains.json").read_text())
    for u in UNITS:
        for p in (dest / "systemd" / u, root / "etc/systemd/system" / u):
            assert mode(p) == 0o644
            assert p.read_bytes() == (ROOT / "systemd" / u).read_bytes()
    # A staged install for the default prefix and user needs no drop-in.
    assert not list((root / "etc/systemd/system").glob("*.d"))
    docs = sorted(p.name for p in (ROOT / "docs").iterdir() if p.is_file())
    assert "README.md" in docs
    assert sorted(p.name for p in (dest / "docs").iterdir()) == docs
    for name in docs:
        assert mode(dest / "docs" / name) == 0o644
    assert mode(dest / "install.sh") == 0o755
    env = dest / "config" / ".env"
    assert env.is_file() and not env.is_symlink()
    assert mode(env) == ENV_MODE, oct(mode(env))
    if os.geteuid() == 0:
        assert os.stat(env).st_uid == 0
    # The Cloudflare token file of LoadCredential=: there, empty, private.
    tok = dest / "config" / "cloudflare-token"
    assert tok.is_file() and not tok.is_symlink()
    assert mode(tok) == 0o600 and tok.stat().st_size == 0
    assert mode(dest / "config") == 0o755
    # Nothing outside the staging directory's opt/ and etc/.
    assert sorted(p.name for p in root.iterdir()) == ["etc", "opt"]


def test_env_has_random_key_printed_once(staged, built, tmp_path):
    root, r = staged
    env = root / PREFIX / "config" / ".env"
    text = env.read_text()
    keys = KEY_LINE.findall(text)
    assert len(keys) == 1, keys
    key = keys[0]
    assert key != EXAMPLE_KEY
    assert re.fullmatch(r"[0-9a-f]{64}", key), key
    assert EXAMPLE_KEY not in text
    # Printed exactly once, on stdout; never on stderr.
    assert r.stdout.count(key) == 1
    assert f"PROVISIONING_API_KEY={key}" in r.stdout
    assert key not in r.stderr
    # Apart from the key, .env is the documented nodo.env.
    nodo_env = (ROOT / "config/nodo.env").read_text()

    def strip(t):
        return [line for line in t.splitlines()
                if not line.startswith(("PROVISIONING_API_KEY=", "ODOO_CONF=",
                                        "#ODOO_CONF="))]
    assert strip(text) == strip(nodo_env)
    # Another install gets another key.
    r2 = stage(tmp_path / "other")
    key2 = KEY_LINE.findall(
        (tmp_path / "other" / PREFIX / "config/.env").read_text())[0]
    assert re.fullmatch(r"[0-9a-f]{64}", key2)
    assert key2 != key
    assert r2.stdout.count(key2) == 1


def test_rerun_keeps_env_and_domains(staged, built):
    root, first = staged
    dest = root / PREFIX
    env = dest / "config" / ".env"
    domains = dest / "cloudflare" / "domains.json"
    key = KEY_LINE.findall(env.read_text())[0]
    # The operator edits both files (and leaves .env too open).
    with open(env, "a") as f:
        f.write("# edited by the operator\nODOO_DOMAIN=otro.dominio\n"
                "CLOUDFLARE_API_TOKEN='tok en'\n")
    env.chmod(0o644)
    env_bytes = env.read_bytes()
    edited = {"zones": {"mi.dominio": "0123456789abcdef0123456789abcdef"},
              "tunnel_id": "mi-tunel"}
    domains.write_text(json.dumps(edited, indent=1) + "\n")
    domains_bytes = domains.read_bytes()
    # A binary replaced by hand is put back.
    (dest / "bin" / "odoo-db-watcher").write_bytes(b"stale")

    r = stage(root)
    assert env.read_bytes() == env_bytes
    assert domains.read_bytes() == domains_bytes
    assert mode(env) == ENV_MODE, "re-run did not make .env private again"
    assert key not in r.stdout and key not in r.stderr  # printed only once
    assert "PROVISIONING_API_KEY=" not in r.stdout
    assert "kept the existing /opt/nodo/config/.env" in r.stdout
    assert (dest / "bin" / "odoo-db-watcher").read_bytes() == \
        (built / "odoo-db-watcher").read_bytes()
    # And a third run is a no-op for the configuration too.
    stage(root)
    assert env.read_bytes() == env_bytes
    assert domains.read_bytes() == domains_bytes


def test_rerun_replaces_the_example_key_and_fills_in_a_missing_one(staged):
    root, _ = staged
    env = root / PREFIX / "config" / ".env"
    # The seed's published example key is replaced by a random one, said
    # and printed once; the rest of the operator's file is unchanged.
    text = KEY_LINE.sub(f"PROVISIONING_API_KEY='{EXAMPLE_KEY}'",
                        env.read_text()) + "# mine\nODOO_DOMAIN=otro.dominio\n"
    env.write_text(text)
    r = stage(root)
    new = env.read_text()
    keys = KEY_LINE.findall(new)
    assert len(keys) == 1 and re.fullmatch(r"[0-9a-f]{64}", keys[0]), keys
    assert EXAMPLE_KEY not in KEY_LINE.sub("", new)
    assert KEY_LINE.sub("K", new) == KEY_LINE.sub("K", text)
    assert "replaced the seed's published example PROVISIONING_API_KEY" \
        in r.stdout
    assert r.stdout.count(keys[0]) == 1 and keys[0] not in r.stderr
    # ...and printed at the end, where it is seen.
    tail = r.stdout[r.stdout.rindex("==> Done"):]
    assert f"PROVISIONING_API_KEY={keys[0]}" in tail
    assert "Next steps:" in tail
    assert mode(env) == ENV_MODE
    # A second run keeps the new key and prints nothing.
    r = stage(root)
    assert env.read_text() == new
    assert "PROVISIONING_API_KEY=" not in r.stdout
    # A short key is kept (the APP server may use it), with a warning that
    # the API will refuse it.
    short = KEY_LINE.sub("PROVISIONING_API_KEY=short-key", new)
    env.write_text(short)
    r = stage(root)
    assert env.read_text() == short
    assert "shorter than 16 bytes" in r.stderr
    assert "short-key" not in r.stdout + r.stderr
    # No key at all: a random one is added and printed.
    env.write_text("ODOO_DOMAIN=sajet.us\n")
    r = stage(root)
    keys = KEY_LINE.findall(env.read_text())
    assert len(keys) == 1 and re.fullmatch(r"[0-9a-f]{64}", keys[0])
    assert env.read_text().startswith("ODOO_DOMAIN=sajet.us\n")
    assert r.stdout.count(keys[0]) == 1
    assert mode(env) == ENV_MODE


def test_seed_links(staged):
    root, _ = staged
    for s in CLIS:
        link = root / "opt/odoo/scripts" / s
        assert link.is_symlink(), link
        target = os.readlink(link)
        # The link is for the target machine: /opt/nodo/scripts/X.
        assert target == f"/{PREFIX}/scripts/{s}"
        staged_target = root / target.lstrip("/")
        assert staged_target.is_file()
        assert os.access(staged_target, os.X_OK)


def test_seed_paths_run_the_wrappers(staged, node, tmp_path):
    """The installed scripts, called through a seed-style symlink, find
    nodo-common.sh and talk to a real API with the key install.sh made."""
    root, _ = staged
    dest = root / PREFIX
    key = KEY_LINE.findall((dest / "config/.env").read_text())[0]
    api = node(PROVISIONING_API_KEY=key)
    # /opt/odoo/scripts/X -> /opt/nodo/scripts/X, relocated into the stage.
    seed = tmp_path / "opt-odoo-scripts"
    seed.mkdir()
    for s in CLIS:
        (seed / s).symlink_to(dest / "scripts" / s)
    env = {"PATH": "/usr/bin:/bin", "NODO_ENV_FILE": str(dest / "config/.env"),
           "NODO_API_URL": api.url}

    def run(*args):
        return subprocess.run([str(seed / args[0])] + list(args[1:]),
                              env=env, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=120)
    r = run("create_tenant.sh", "instalado", "secreto123", "sajet.us", "tcs")
    assert r.returncode == 0, r.stderr
    assert "Tenant instalado created." in r.stdout
    r = run("list_tenants.sh", "--json", "sajet.us")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == api.get(
        "/api/tenants", params={"domain": "sajet.us"}).json()
    assert [t["subdomain"] for t in json.loads(r.stdout)["tenants"]] == [
        "instalado"]
    r = run("delete_tenant.sh", "instalado", "--yes")
    assert r.returncode == 0, r.stderr
    assert api.get("/api/tenants").json()["count"] == 0


def test_existing_seed_script_is_saved_and_restored(built, tmp_path):
    root = tmp_path / "root"
    old = root / "opt/odoo/scripts/create_tenant.sh"
    old.parent.mkdir(parents=True)
    old.write_text("#!/bin/sh\necho the old python-era script\n")
    stage(root)
    assert old.is_symlink()
    saved = old.with_name("create_tenant.sh.pre-nodo")
    assert saved.read_text().startswith("#!/bin/sh\necho the old")
    stage(root)  # re-run: still one backup, still the link
    assert old.is_symlink() and saved.is_file()
    run_install(root, "--uninstall")
    assert not old.is_symlink()
    assert old.read_text().startswith("#!/bin/sh\necho the old")
    assert not saved.exists()


def test_uninstall_keeps_config_unless_purge(staged):
    root, _ = staged
    dest = root / PREFIX
    env = dest / "config" / ".env"
    domains = dest / "cloudflare" / "domains.json"
    domains.write_text('{"zones": {"x.example": "%s"}, "tunnel_id": "t"}\n'
                       % ("a" * 32))
    kept = {p: p.read_bytes() for p in (env, domains,
                                        dest / "config" / "nodo.env")}
    r = run_install(root, "--uninstall")
    assert f"kept {dest}/config and {dest}/cloudflare" in r.stdout
    for p, content in kept.items():
        assert p.read_bytes() == content, p
    assert mode(env) == ENV_MODE
    for gone in ("bin", "scripts", "systemd", "docs", "install.sh"):
        assert not (dest / gone).exists(), gone
    for u in UNITS:
        assert not (root / "etc/systemd/system" / u).exists()
    assert not (root / "opt/odoo/scripts").exists()
    # Uninstalling twice is fine.
    run_install(root, "--uninstall")
    for p, content in kept.items():
        assert p.read_bytes() == content, p
    # Reinstalling finds the old configuration and keeps it.
    r = stage(root)
    for p, content in kept.items():
        assert p.read_bytes() == content, p
    assert "PROVISIONING_API_KEY=" not in r.stdout
    # --purge removes it all.
    r = run_install(root, "--uninstall", "--purge")
    assert "removed the configuration" in r.stdout
    assert not dest.exists()
    assert not (root / "opt/odoo/scripts").exists()
    # --purge alone is refused.
    r = run_install(root, "--purge", check=False)
    assert r.returncode != 0
    assert "--purge goes with --uninstall" in r.stderr


def test_installed_copy_can_uninstall(staged):
    root, _ = staged
    dest = root / PREFIX
    copy = dest / "install.sh"
    # Run from the installed copy: no Makefile next to it.
    r = run_install(root, "--uninstall", script=copy)
    assert "removed the programs, scripts and docs" in r.stdout
    assert not (dest / "bin").exists()
    assert (dest / "config" / ".env").exists()
    # But it cannot install (no source tree).
    assert not copy.exists()


def test_installed_copy_refuses_to_install(staged, tmp_path):
    root, _ = staged
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(root / PREFIX / "install.sh", lone / "install.sh")
    r = run_install(tmp_path / "other", "--no-deps", "--no-build",
                    check=False, script=lone / "install.sh")
    assert r.returncode != 0
    assert "no Makefile" in r.stderr
    assert not (tmp_path / "other").exists()


def test_no_build_without_binaries_fails_cleanly(tmp_path):
    empty = tmp_path / "empty-build"
    empty.mkdir()
    root = tmp_path / "root"
    r = stage(root, env={"NODO_BUILD": str(empty)}, check=False)
    assert r.returncode != 0
    assert f"--no-build: {empty}/odoo-local-api has not been built" \
        in r.stderr
    assert not (root / PREFIX / "bin").exists()
    assert not (root / PREFIX / "config" / ".env").exists()


def test_root_is_refused(built, tmp_path):
    """Issue 8, item 10: the services never run as root."""
    root = tmp_path / "root"
    for user in ("root", "0"):
        r = stage(root, "--user", user, check=False)
        assert r.returncode != 0
        assert "refusing to install the services to run as root" in r.stderr
        assert not root.exists()
    r = stage(root, "--user", "nobody", check=False)
    assert r.returncode != 0
    assert "refusing to install the services to run as nobody" in r.stderr
    assert not root.exists()


def test_other_prefix_and_user_get_a_drop_in(built, tmp_path):
    root = tmp_path / "root"
    user = pwd.getpwnam("daemon")
    group = grp.getgrgid(user.pw_gid).gr_name
    stage(root, "--prefix", "/srv/nodo", "--user", "daemon")
    dest = root / "srv/nodo"
    assert (dest / "bin" / "odoo-local-api").is_file()
    assert mode(dest / "config" / ".env") == ENV_MODE
    for u, d in zip(UNITS, DAEMONS):
        dropin = root / "etc/systemd/system" / f"{u}.d" / "10-install.conf"
        text = dropin.read_text()
        assert "[Service]\n" in text
        assert "ExecStart=\n" in text
        assert f"ExecStart=/srv/nodo/bin/{d} --config /srv/nodo/config/.env" \
            in text
        assert "LoadCredential=\nLoadCredential=cloudflare-token:" \
            "/srv/nodo/config/cloudflare-token\n" in text
        if d == "odoo-local-api":
            assert f"User=daemon\nGroup={group}\n" in text
        else:
            # A staged install without Odoo's config keeps the watcher's
            # own user.
            assert "User=" not in text
    for s in CLIS:
        assert os.readlink(root / "opt/odoo/scripts" / s) == \
            f"/srv/nodo/scripts/{s}"
    verify_merged(root, tmp_path, prefix="/srv/nodo")
    run_install(root, "--prefix", "/srv/nodo", "--uninstall", "--purge")
    assert not (root / "etc/systemd/system" / f"{UNITS[0]}.d").exists()
    assert not dest.exists()


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


def test_installed_units_pass_the_same_checks(staged):
    root, _ = staged
    run_unit_checks(root / PREFIX / "systemd")
    run_unit_checks(root / "etc/systemd/system")


def dropin(root, unit):
    p = root / "etc/systemd/system" / f"{unit}.d" / "10-install.conf"
    return p.read_text() if p.exists() else ""


def verify_merged(root, tmp_path, prefix="/opt/nodo"):
    """systemd-analyze verify of each installed unit with its drop-in's
    lines appended (what systemd merges), ExecStart= pointed at /bin/true:
    the drop-ins install.sh writes must be valid unit syntax."""
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed")
    out = tmp_path / "merged"
    out.mkdir(exist_ok=True)
    for u, d in zip(UNITS, DAEMONS):
        text = (root / "etc/systemd/system" / u).read_text()
        extra = dropin(root, u).split("[Service]\n", 1)
        text += "\n[Service]\n" + (extra[1] if len(extra) == 2 else "")
        text = re.sub(rf"^ExecStart={re.escape(prefix)}/bin/{d}",
                      "ExecStart=/bin/true", text, flags=re.M)
        (out / u).write_text(text)
        r = subprocess.run(["systemd-analyze", "verify", f"./{u}"],
                           cwd=out, capture_output=True, text=True,
                           timeout=120)
        assert r.returncode == 0 and not r.stdout.strip() and \
            not r.stderr.strip(), (u, text, r.stdout, r.stderr)


def user_with_home():
    """A user of this machine (not root) whose home is a real directory."""
    for u in pwd.getpwall():
        if u.pw_uid != 0 and u.pw_dir not in ("", "/", "/nonexistent") \
                and os.path.isdir(u.pw_dir) and u.pw_name != "root":
            return u
    pytest.fail("no user with a home directory on this machine")


def test_odoo_data_dir_from_odoo_conf(built, tmp_path):
    """Issue 8, item 3: odoo.conf's data_dir is where the API may write
    and what the watcher may not see; nothing goes into .env (the daemons
    read odoo.conf themselves)."""
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\ndbfilter = ^%d$\nlist_db = False\n"
                    "data_dir = /srv/odoo-data/\n")
    root = tmp_path / "root"
    r = stage(root, "--odoo-conf", str(conf))
    assert "data_dir = /srv/odoo-data" in r.stdout
    env = (root / PREFIX / "config/.env").read_text()
    assert "\nODOO_DATA_DIR=" not in env
    assert f"ODOO_CONF={conf}\n" in env
    assert "ReadWritePaths=-/srv/odoo-data\n" in dropin(root, UNITS[0])
    assert "InaccessiblePaths=-/srv/odoo-data/filestore\n" in \
        dropin(root, UNITS[1])
    run_unit_checks(root / "etc/systemd/system")
    verify_merged(root, tmp_path)


def test_odoo_data_dir_from_the_odoo_users_home(built, tmp_path):
    """Without data_dir Odoo keeps its files in ~/.local/share/Odoo of the
    user it runs as: install.sh writes ODOO_DATA_DIR into a new .env, and
    adds it to an existing .env that has none."""
    u = user_with_home()
    want = u.pw_dir.rstrip("/") + "/.local/share/Odoo"
    conf = tmp_path / "odoo.conf"
    conf.write_text("[options]\ndb_host = False\ndata_dir = False\n")
    root = tmp_path / "root"
    r = stage(root, "--odoo-conf", str(conf), "--user", u.pw_name)
    assert f"Odoo's data dir: {want}" in r.stdout
    envp = root / PREFIX / "config/.env"
    env = envp.read_text()
    assert env.count(f"\nODOO_DATA_DIR={want}\n") == 1, env
    assert "#ODOO_DATA_DIR" not in env
    api = dropin(root, UNITS[0])
    if want.startswith(("/home/", "/root/")):
        assert f"ProtectHome=tmpfs\nBindPaths=-{want}\n" in api
    else:
        assert f"ReadWritePaths=-{want}\n" in api
    assert f"InaccessiblePaths=-{want}/filestore\n" in dropin(root, UNITS[1])
    verify_merged(root, tmp_path)
    # A re-run keeps it (once); an old .env without it gets it added.
    stage(root, "--odoo-conf", str(conf), "--user", u.pw_name)
    assert envp.read_text() == env
    envp.write_text("ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY=%s\n"
                    % ("k" * 32))
    r = stage(root, "--odoo-conf", str(conf), "--user", u.pw_name)
    assert envp.read_text() == ("ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY="
                                "%s\n# Added by install.sh: where Odoo keeps "
                                "its files\nODOO_DATA_DIR=%s\n"
                                % ("k" * 32, want))
    assert f"added ODOO_DATA_DIR={want}" in r.stdout
    # An operator's own ODOO_DATA_DIR is left alone.
    envp.write_text("PROVISIONING_API_KEY=%s\nODOO_DATA_DIR=/mine\n"
                    % ("k" * 32))
    stage(root, "--odoo-conf", str(conf), "--user", u.pw_name)
    assert envp.read_text().endswith("ODOO_DATA_DIR=/mine\n")
    # ...and the units follow it: the daemons will use it.
    assert "ReadWritePaths=-/mine\n" in dropin(root, UNITS[0])
    assert "InaccessiblePaths=-/mine/filestore\n" in dropin(root, UNITS[1])
    # An --odoo-conf that cannot be read is an error.
    r = stage(tmp_path / "r2", "--odoo-conf", str(tmp_path / "none.conf"),
              check=False)
    assert r.returncode != 0 and "cannot read Odoo's config" in r.stderr


@pytest.mark.parametrize("case", ["peer", "tcp-world", "tcp-group",
                                  "tcp-rootgroup", "tcp-private",
                                  "pgpassword", "tcp-nouser"])
def test_watcher_user(built, tmp_path, case):
    """Issue 8, item 9: the watcher runs as nodo-watcher when it can log in
    to PostgreSQL with a password over TCP as a named role and read
    odoo.conf, else as Odoo's user (peer authentication, or libpq's default
    role: the Unix user's name), and install.sh says why."""
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
    root = tmp_path / "root"
    if case == "pgpassword":
        # PGHOST and PGPASSWORD of an existing .env count too.
        cfg = root / PREFIX / "config"
        cfg.mkdir(parents=True)
        (cfg / ".env").write_text("PROVISIONING_API_KEY=%s\nPGHOST=db.local\n"
                                  "PGPASSWORD=pw-in-env\n" % ("k" * 32))
        (cfg / ".env").chmod(0o600)
    r = stage(root, "--odoo-conf", str(conf), "--user", "daemon")
    verify_merged(root, tmp_path)
    text = dropin(root, UNITS[1])
    conf_group = grp.getgrgid(conf.stat().st_gid).gr_name
    if case in ("peer", "tcp-private", "tcp-rootgroup", "tcp-nouser"):
        assert f"User=daemon\nGroup={ugroup}\nSupplementaryGroups=nodo\n" \
            in text, text
        assert "Watcher user: daemon: Odoo's user" in r.stdout
        if case == "tcp-nouser":
            assert "no db_user (or PGUSER) names the node's role" in r.stdout
    else:
        assert "User=" not in text, text
        assert "Watcher user: nodo-watcher: its own user" in r.stdout
        if case == "tcp-group":
            assert f"SupplementaryGroups={conf_group}\n" in text
        else:
            assert "SupplementaryGroups=" not in text
    for secret in ("s3cret-pw", "pw-in-env"):
        assert secret not in r.stdout + r.stderr


def test_seed_links_only_under_root_owned_dirs(built, tmp_path):
    """Issue 8, item 10: /opt/odoo/scripts/*.sh links are made only when
    every directory of the path is root's (the stager's) and writable by
    neither group nor others; otherwise install.sh says why and where the
    scripts are, and removes links of its own made before."""
    root = tmp_path / "root"
    stage(root)
    odoo = root / "opt/odoo"
    seed = odoo / "scripts"
    assert all((seed / s).is_symlink() for s in CLIS)
    odoo.chmod(0o775)  # the service user's group may now rename scripts/
    r = stage(root)
    assert "not linking the seed's paths" in r.stderr
    assert "/opt/odoo is writable by its group or by others (mode 775)" \
        in r.stderr
    assert "Run the wrappers from /opt/nodo/scripts/" in r.stderr
    assert not any((seed / s).is_symlink() for s in CLIS)
    assert "removed the old link" in r.stdout
    odoo.chmod(0o755)
    if os.geteuid() == 0:
        # Owned by another user: the same refusal.
        os.chown(odoo, 65534, 65534)
        r = stage(root)
        assert "/opt/odoo is owned by nobody, not by root" in r.stderr
        assert not any((seed / s).is_symlink() for s in CLIS)
        os.chown(odoo, 0, 0)
    # A world-writable /opt (above both paths) is refused as well.
    (root / "opt").chmod(0o1777)
    r = stage(root)
    assert "/opt is writable by its group or by others (mode 1777)" \
        in r.stderr
    assert not any((seed / s).is_symlink() for s in CLIS)
    (root / "opt").chmod(0o755)
    stage(root)
    assert all((seed / s).is_symlink() for s in CLIS)
    # A missing /opt/odoo is created root's, 0755, and linked.
    root2 = tmp_path / "root2"
    stage(root2)
    assert mode(root2 / "opt/odoo") == 0o755
    assert all((root2 / "opt/odoo/scripts" / s).is_symlink() for s in CLIS)


def test_cloudflare_token_file(staged):
    """Issue 8, item 9: the credential file is created empty once, kept
    with its content, made private again, and removed by --purge only."""
    root, _ = staged
    tok = root / PREFIX / "config/cloudflare-token"
    tok.write_text("cf-token-value\n")
    tok.chmod(0o644)
    r = stage(root)
    assert tok.read_text() == "cf-token-value\n"
    assert mode(tok) == 0o600
    assert "cf-token-value" not in r.stdout + r.stderr
    run_install(root, "--uninstall")
    assert tok.read_text() == "cf-token-value\n"
    run_install(root, "--uninstall", "--purge")
    assert not tok.exists()


def test_token_credential_reaches_the_daemon(staged, node, tmp_path):
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


NS_DRIVER = r'''
set -eu
T=$1
shift
# A private mount namespace: /opt, /etc and /run are this test's copies, so
# a real (non --destdir) install writes users, units and /opt/nodo there
# and nowhere else; systemctl is a fake that records what it is asked.
mount --bind "$T/opt" /opt
mount --bind "$T/etc" /etc
mount --bind "$T/run" /run
export PATH="$T/bin:$PATH"
exec "$@"
'''

FAKE_SYSTEMCTL = r'''#!/bin/sh
T=@T@
echo "$*" >>"$T/systemctl.log"
case $1 in
is-active)
	[ "$2" = --quiet ] && shift
	grep -qx "$2" "$T/active"
	exit
	;;
show) [ "$5" = odoo.service ] && echo odoo ;;
restart | start)
	shift
	for u in "$@"; do grep -qx "$u" "$T/active" || echo "$u" >>"$T/active"; done
	;;
esac
exit 0
'''


@pytest.fixture
def real_root(built, tmp_path):
    """Runs install.sh as a real install (no --destdir) inside a private
    mount namespace with copies of /etc and empty /opt and /run."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    probe = subprocess.run(["unshare", "-m", "true"], capture_output=True,
                           text=True)
    if probe.returncode != 0:
        pytest.skip(f"no private mount namespace here: {probe.stderr}")
    t = tmp_path / "ns"
    for d in ("opt", "run/systemd/system", "bin"):
        (t / d).mkdir(parents=True)
    (t / "opt").chmod(0o755)
    subprocess.run(["cp", "-a", "/etc", str(t / "etc")], check=True)
    (t / "active").write_text("")
    fake = t / "bin" / "systemctl"
    fake.write_text(FAKE_SYSTEMCTL.replace("@T@", str(t)))
    fake.chmod(0o755)
    driver = t / "driver.sh"
    driver.write_text(NS_DRIVER)

    def run(*cmd, check=True):
        e = dict(os.environ)
        e.update(NODO_BUILD=str(BUILD), ASAN_OPTIONS="detect_leaks=0")
        e.pop("MAKEFLAGS", None)
        r = subprocess.run(["unshare", "-m", "--propagation", "private",
                            "sh", str(driver), str(t)] + list(cmd),
                           capture_output=True, text=True, env=e,
                           stdin=subprocess.DEVNULL, timeout=600,
                           cwd=str(ROOT))
        if check:
            assert r.returncode == 0, f"{cmd}\n{r.stdout}\n{r.stderr}"
        return r

    def install(*args, check=True):
        (t / "systemctl.log").write_text("")
        return run("bash", str(INSTALL), "--no-deps", "--no-build", *args,
                   check=check)

    run("useradd", "--system", "--home-dir", "/var/lib/odoo",
        "--shell", "/usr/sbin/nologin", "odoo")
    return t, run, install


def test_real_install_users_modes_and_start_order(real_root, pg, data_dir,
                                                  cloudflare):
    """Issue 8 items 2, 3, 9, 10 and issue 11 item 2 on a real install: the
    group and user are made, the files get the owners of docs/README.md, a
    first install starts nothing and prints the key last, a re-run restarts
    what runs after the checks (run as the units' users, with the token
    credential) pass, and a failed check restarts nothing and exits 1."""
    from conftest import CF_TOKEN, NODE_PASSWORD, NODE_ROLE, ZONE_OTRO, \
        ZONE_SAJET
    t, run, install = real_root
    r = install()
    log = (t / "systemctl.log").read_text()
    assert "daemon-reload" in log
    assert "enable odoo-local-api.service odoo-db-watcher.service" in log
    assert "restart" not in log and "start " not in log
    assert "enabled, not started (a first install)" in r.stdout
    assert "Service user: odoo (group odoo): User= of Odoo's systemd unit" \
        in r.stdout
    # The key and the next steps are the end of the output.
    tail = r.stdout.strip().splitlines()[-16:]
    assert any(line.startswith("  PROVISIONING_API_KEY=") for line in tail)
    assert "Next steps:" in tail
    etc = t / "etc"
    nodo_gid = [g for g in (etc / "group").read_text().splitlines()
                if g.startswith("nodo:")][0].split(":")[2]
    watcher = [u for u in (etc / "passwd").read_text().splitlines()
               if u.startswith("nodo-watcher:")][0].split(":")
    assert watcher[3] == nodo_gid and watcher[5] == "/nonexistent"
    assert watcher[6] == "/usr/sbin/nologin"
    cfg = t / "opt/nodo/config"
    st = os.stat(cfg / ".env")
    assert (st.st_uid, st.st_gid, mode(cfg / ".env")) == \
        (0, int(nodo_gid), 0o640)
    st = os.stat(cfg / "cloudflare-token")
    assert (st.st_uid, mode(cfg / "cloudflare-token")) == (0, 0o600)
    env = (cfg / ".env").read_text()
    # Odoo's user's home: Odoo's default data dir, written into .env.
    assert "\nODOO_DATA_DIR=/var/lib/odoo/.local/share/Odoo\n" in env
    # No password over TCP: the watcher runs as Odoo's user.
    units = etc / "systemd/system"
    w = (units / "odoo-db-watcher.service.d/10-install.conf").read_text()
    assert "User=odoo\nGroup=odoo\nSupplementaryGroups=nodo\n" in w
    # /opt is root's 0755 here: the seed's links are made.
    for s in CLIS:
        assert os.readlink(t / "opt/odoo/scripts" / s) == \
            f"/opt/nodo/scripts/{s}"

    # Odoo's data dir is readable by Odoo's user, as on a real node: the
    # checks run as the units' users, and --check asks whether the
    # template's filestore folder is readable (filestore_missing).
    for p in [data_dir, *data_dir.rglob("*")]:
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    # The operator edits .env and puts the token in the credential file.
    with open(cfg / ".env", "a") as f:
        f.write(f"PGHOST=127.0.0.1\nPGPORT={pg.port}\nPGUSER={NODE_ROLE}\n"
                f"PGPASSWORD={NODE_PASSWORD}\nODOO_DATA_DIR={data_dir}\n"
                f"CLOUDFLARE_API_URL={cloudflare.url}\nCF_TUNNEL_ID=tun\n")
    (t / "opt/nodo/cloudflare/domains.json").write_text(json.dumps(
        {"zones": {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO}}))
    (cfg / "cloudflare-token").write_text(CF_TOKEN + "\n")
    # Nothing runs: a re-run starts nothing.
    r = install()
    assert "restart" not in (t / "systemctl.log").read_text()
    assert "none was running, so none was started" in r.stdout
    # A password over TCP now: the watcher gets its own user back.
    assert "User=" not in (units / "odoo-db-watcher.service.d/10-install"
                           ".conf").read_text()
    # --start: the checks pass as the units' users, with the credential.
    r = install("--start")
    assert r.stdout.count("dns: enabled") == 2, r.stdout
    assert "postgres: ok" in r.stdout
    assert CF_TOKEN not in r.stdout + r.stderr
    assert "restart odoo-local-api.service odoo-db-watcher.service" in \
        (t / "systemctl.log").read_text()
    # Only the running one is restarted on a re-run.
    (t / "active").write_text("odoo-db-watcher.service\n")
    install()
    log = (t / "systemctl.log").read_text()
    assert "restart odoo-db-watcher.service\n" in log
    assert not re.search(r"^restart .*odoo-local-api", log, re.M), log
    # A failed check: exit 1, nothing restarted.
    (t / "active").write_text("odoo-local-api.service\n"
                              "odoo-db-watcher.service\n")
    with open(cfg / ".env", "a") as f:
        f.write("API_PORT=0\n")
    r = install(check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert "a check failed: the services were left as they were" in r.stderr
    assert "restart" not in (t / "systemctl.log").read_text()
    assert r.stdout.rstrip().endswith("Docs: /opt/nodo/docs/README.md")


def test_group_nodo_runs_the_wrappers_odoo_cannot_read_the_key(real_root,
                                                               node):
    """Issue 11 item 4: a member of the group nodo runs the wrappers without
    root; Odoo's user can read neither the env file nor the token file."""
    t, run, install = real_root
    install()
    key = KEY_LINE.findall((t / "opt/nodo/config/.env").read_text())[0]
    api = node(PROVISIONING_API_KEY=key)
    run("useradd", "--create-home", "--groups", "nodo", "operador")
    lst = ["env", f"NODO_API_URL={api.url}", "/opt/nodo/scripts/list_tenants.sh"]
    r = run("runuser", "-u", "operador", "--", *lst, "--json")
    assert json.loads(r.stdout) == api.get("/api/tenants").json()
    r = run("runuser", "-u", "odoo", "--", *lst, check=False)
    assert r.returncode == 78, r.stdout + r.stderr
    assert "cannot read the env file /opt/nodo/config/.env" in r.stderr
    assert "or as a member of the group nodo" in r.stderr
    for f in (".env", "cloudflare-token"):
        r = run("runuser", "-u", "odoo", "--", "cat", f"/opt/nodo/config/{f}",
                check=False)
        assert r.returncode != 0 and "Permission denied" in r.stderr, f
        assert key not in r.stdout
