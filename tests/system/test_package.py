"""The Debian package under a real systemd: install on a fresh Debian 12
container, the first tenant, the units' sandbox, an upgrade from the
previous version, a reboot, remove and purge. Plus lintian on the package.

The steps run in order in one container; a failed step stops the story
(conftest.py).
"""
import re
import subprocess
import time

import pytest

from conftest import (Container, ROOT, api_key, configure_node, dns_records,
                      figure, setup_odoo_node, start_fake_cloudflare)

UNITS = ("odoo-local-api", "odoo-db-watcher")
OLD_SEED_SCRIPT = "#!/bin/sh\n# the Python seed's create_tenant.sh\n"
DROPIN = "/etc/systemd/system/odoo-db-watcher.service.d/10-package.conf"


@pytest.fixture(scope="module")
def state():
    return {}


@pytest.fixture(scope="module")
def c(rootfs, debs, state):
    box = Container(rootfs, "package")
    try:
        state["t0"] = time.monotonic()
        figure("package: boot of a fresh container s", round(box.boot(), 1))
        for name in ("prev", "cur"):
            subprocess.run(["cp", str(debs[name]), str(box.root / "root")], check=True)
        box.copy_tree([str(p.relative_to(ROOT)) for p in (ROOT / "tests/fakes").rglob("*")
                       if p.is_file() and "__pycache__" not in p.parts], "/root")
        yield box
    finally:
        box.close()


def test_lintian(debs):
    r = subprocess.run(["lintian", "--display-info", "--pedantic",
                        "--tag-display-limit", "0", str(debs["cur"])],
                       capture_output=True, text=True)
    out = "\n".join(line for line in (r.stdout + r.stderr).splitlines()
                    if "running with root privileges" not in line)
    figure("lintian (E/W/I/P tags, overrides applied)", out or "clean")
    assert r.returncode == 0 and out == "", out


def test_install(c, debs, state):
    # A file of the old Python seed where the package puts its links.
    c.put("/opt/odoo/scripts/create_tenant.sh", OLD_SEED_SCRIPT, 0o755)
    assert c.run("getent passwd odoo", check=False).returncode == 2
    t0 = time.monotonic()
    r = c.run(f"cd /root && sudo apt-get install -y ./{debs['prev'].name}", timeout=300)
    figure("package: apt-get install ./nodo_*.deb s", round(time.monotonic() - t0, 1))
    out = r.stdout
    assert "nodo: created the system user odoo" in out, out
    assert "nodo: both services are enabled but not started" in out
    assert "kept the old /opt/odoo/scripts/create_tenant.sh" in out
    key = api_key(c)
    assert key not in out + r.stderr  # not in apt's term.log either
    assert "nodo: created /opt/nodo/config/.env (root:nodo, mode 0640)" in out
    assert c.sh("stat -c '%a %U %G' /opt/nodo/config/.env") == "640 root nodo"
    assert c.sh("getent passwd odoo | cut -d: -f6") == "/var/lib/odoo"
    assert c.sh("stat -c '%U' /var/lib/odoo") == "odoo"
    # The accounts and the credential file of docs/README.md's table of
    # owners, which the units use.
    assert c.sh("id -gn nodo-watcher") == "nodo"
    assert c.sh("getent passwd nodo-watcher | cut -d: -f6,7") == "/nonexistent:/usr/sbin/nologin"
    assert c.sh("stat -c '%a %U %G %s' /opt/nodo/config/cloudflare-token") == "600 root root 0"
    assert c.sh("test -f /opt/nodo/cloudflare/domains.json && echo ok") == "ok"
    # No password over TCP (no odoo.conf, no PGHOST in .env yet): the
    # watcher runs as Odoo's user (peer authentication), by a drop-in.
    assert "nodo: odoo-db-watcher runs as odoo: Odoo's user" in out, out
    assert c.sh(f"grep -v '^#' {DROPIN}") == \
        "[Service]\nUser=odoo\nGroup=odoo\nSupplementaryGroups=nodo"
    assert c.prop("odoo-db-watcher", "User") == "odoo"
    assert c.prop("odoo-local-api", "User") == "odoo"
    assert c.prop("odoo-local-api", "SupplementaryGroups") == "nodo"
    assert c.sh("cat /opt/odoo/scripts/create_tenant.sh.pre-nodo") + "\n" == OLD_SEED_SCRIPT
    assert c.sh("readlink -f /opt/odoo/scripts/create_tenant.sh") == \
        "/opt/nodo/scripts/create_tenant.sh"
    for u in UNITS:
        assert c.sh(f"systemctl is-enabled {u}") == "enabled"
        assert c.sh(f"systemctl is-active {u}", check=False) == "inactive"
        assert c.prop(u, "FragmentPath") == f"/lib/systemd/system/{u}.service"
    assert c.sh("/opt/nodo/bin/odoo-local-api --version").endswith(debs["prev_version"])


def test_first_tenant(c, state):
    mod = setup_odoo_node(c, odoo_user_exists=False)
    start_fake_cloudflare(c, "/root/tests/fakes")
    configure_node(c, mod)
    # The check postinst names in its next steps.
    # (as root it would log in to PostgreSQL as the role root: peer).
    c.run("sudo -u odoo -g nodo /opt/nodo/bin/odoo-local-api "
          "--config /opt/nodo/config/.env --check")
    c.run("systemctl start odoo-local-api odoo-db-watcher")
    out = c.sh("/opt/odoo/scripts/create_tenant.sh primero clave-primero-1 sajet.us tcs")
    figure("package: fresh container to first tenant s (boot, install, template, "
           "edit, start, create)", round(time.monotonic() - state["t0"], 1))
    assert "Tenant primero created." in out and "DNS: created" in out, out
    assert len(dns_records(c, "primero.sajet.us")) == 1


def test_systemd_analyze_security(c):
    for u in UNITS:
        out = c.sh(f"systemd-analyze security --no-pager {u}.service")
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\S+)", out)
        assert m, out
        figure(f"systemd-analyze security {u}", f"{m.group(1)} {m.group(2)}")
        assert float(m.group(1)) <= 2.0, out


def test_upgrade_restarts_the_daemons(c, debs):
    # The .env of the package before docs/README.md's table of owners was
    # odoo:odoo 0600 (still accepted by the daemons): the upgrade keeps its
    # content and gives it to root:nodo 0640.
    c.run("chown odoo:odoo /opt/nodo/config/.env && chmod 0600 /opt/nodo/config/.env")
    env_sum = c.sh("sha256sum /opt/nodo/config/.env /opt/nodo/cloudflare/domains.json")
    pids = {u: c.prop(u, "MainPID") for u in UNITS}
    r = c.run(f"cd /root && sudo apt-get install -y ./{debs['cur'].name}", timeout=300)
    assert f"Unpacking nodo ({debs['version']}) over ({debs['prev_version']})" in r.stdout
    assert "enabled but not started" not in r.stdout  # only on a first install
    assert "nodo: gave /opt/nodo/config/.env to root:nodo, mode 0640 (was odoo:odoo 600)" \
        in r.stdout, r.stdout
    assert c.sh("stat -c '%a %U %G' /opt/nodo/config/.env") == "640 root nodo"
    for u in UNITS:
        assert c.sh(f"systemctl is-active {u}") == "active"
        assert c.prop(u, "MainPID") not in ("0", pids[u]), f"{u} was not restarted"
    h = c.sh("curl -s http://127.0.0.1:8070/health")
    assert f'"version":"{debs["version"]}"' in h.replace(" ", ""), h
    assert c.sh("sha256sum /opt/nodo/config/.env /opt/nodo/cloudflare/domains.json") == env_sum
    assert "primero" in c.sh("/opt/odoo/scripts/list_tenants.sh")


def test_upgrade_leaves_a_stopped_daemon_stopped(c, debs):
    c.run("systemctl stop odoo-db-watcher")
    pid = c.prop("odoo-local-api", "MainPID")
    c.run(f"cd /root && sudo apt-get install -y --reinstall ./{debs['cur'].name}", timeout=300)
    assert c.sh("systemctl is-active odoo-db-watcher", check=False) == "inactive"
    assert c.prop("odoo-local-api", "MainPID") not in ("0", pid)
    c.run("systemctl start odoo-db-watcher")


def test_reboot_starts_the_enabled_services(c):
    c.poweroff()
    figure("package: boot again s", round(c.boot(), 1))
    for u in UNITS:
        assert c.sh(f"systemctl is-active {u}") == "active"
    assert "primero" in c.sh("/opt/odoo/scripts/list_tenants.sh")


def test_reconfigure_for_a_password_over_tcp(c):
    """The watcher's user follows the operator's .env: with PGHOST, PGUSER
    and PGPASSWORD there, `dpkg-reconfigure nodo` rewrites the drop-in and the
    watcher runs as nodo-watcher (with odoo.conf's group, root:odoo 0640);
    without them it is Odoo's user again."""
    start_fake_cloudflare(c, "/root/tests/fakes")  # gone with the reboot
    c.run("""set -e
        runuser -u postgres -- psql -q -c "ALTER ROLE odoo PASSWORD 'pw-over-tcp-1'"
        printf 'PGHOST=127.0.0.1\\nPGPASSWORD=pw-over-tcp-1\\n' >> /opt/nodo/config/.env
    """)
    # Without a role name libpq would ask for the role "nodo-watcher".
    r = c.run("dpkg-reconfigure nodo", timeout=300)
    assert "nodo: odoo-db-watcher runs as odoo: Odoo's user: no db_user (or PGUSER)" \
        in r.stdout, r.stdout
    c.run("echo PGUSER=odoo >> /opt/nodo/config/.env")
    pid = c.prop("odoo-db-watcher", "MainPID")
    r = c.run("dpkg-reconfigure nodo", timeout=300)
    assert "nodo: odoo-db-watcher runs as nodo-watcher: its own user" in r.stdout, r.stdout
    assert "pw-over-tcp-1" not in r.stdout + r.stderr
    # The unit's User=nodo-watcher; the drop-in adds odoo.conf's group.
    assert c.sh(f"grep -v '^#' {DROPIN}") == "[Service]\nSupplementaryGroups=odoo"
    assert c.prop("odoo-db-watcher", "User") == "nodo-watcher"
    assert c.prop("odoo-db-watcher", "MainPID") not in ("0", pid)
    status = c.sh(f"cat /proc/{c.prop('odoo-db-watcher', 'MainPID')}/status")
    assert re.search(r"^Uid:\s+(\d+)", status, re.M).group(1) == c.sh("id -u nodo-watcher")
    groups = set(re.search(r"^Groups:\s*(.*)$", status, re.M).group(1).split())
    assert groups == {c.sh("getent group nodo | cut -d: -f3"),
                      c.sh("getent group odoo | cut -d: -f3")}, status
    # It logs in over TCP with the password and does its work.
    c.run("runuser -u odoo -- createdb -T tcs por_tcp")
    c.wait_for("systemctl is-active -q odoo-db-watcher && curl -sf -H 'Authorization: "
               "Bearer test-token' 'http://127.0.0.1:8787/client/v4/zones/"
               "5a1e7c0de5a1e7c0de5a1e7c0de5a1e7/dns_records?name=por_tcp.sajet.us' "
               "| grep -q cfargotunnel", timeout=60,
               what="the watcher (nodo-watcher, over TCP) publishing por_tcp")
    assert c.prop("odoo-db-watcher", "NRestarts") == "0"
    # Back to peer authentication: the drop-in is back.
    c.run("sed -i -e '/^PGHOST=/d' -e '/^PGUSER=/d' -e '/^PGPASSWORD=/d' "
          "/opt/nodo/config/.env")
    r = c.run("dpkg-reconfigure nodo", timeout=300)
    assert "nodo: odoo-db-watcher runs as odoo: Odoo's user" in r.stdout, r.stdout
    assert c.prop("odoo-db-watcher", "User") == "odoo"
    assert c.sh("systemctl is-active odoo-db-watcher") == "active"
    c.run("/opt/odoo/scripts/delete_tenant.sh --yes por_tcp")


def test_reconfigure_replaces_the_seed_example_key(c):
    # A .env that still has the seed's published example key (a seed node's):
    # postinst gives it a random key, says so and never prints it.
    c.run("sed -i 's/^PROVISIONING_API_KEY=.*/PROVISIONING_API_KEY=prov-key-2026-secure/' "
          "/opt/nodo/config/.env")
    rest = c.sh("grep -v '^PROVISIONING_API_KEY=' /opt/nodo/config/.env")
    # ...and an /opt/odoo its group may write (issue 8, item 10): said.
    c.run("chmod 0775 /opt/odoo")
    r = c.run("dpkg-reconfigure nodo", timeout=300)
    c.run("chmod 0755 /opt/odoo")
    assert "nodo: replaced the seed's published example PROVISIONING_API_KEY" in r.stdout, \
        r.stdout
    assert "nodo: WARNING: /opt/odoo is root:root, mode 775: someone other than root can " \
        "change what /opt/odoo/scripts/*.sh run" in r.stderr, r.stderr
    key = api_key(c)
    assert key not in r.stdout + r.stderr
    assert c.sh("grep -v '^PROVISIONING_API_KEY=' /opt/nodo/config/.env") == rest
    assert c.sh("grep -c '^PROVISIONING_API_KEY=' /opt/nodo/config/.env") == "1"
    assert c.sh("stat -c '%a %U %G' /opt/nodo/config/.env") == "640 root nodo"


def test_remove(c):
    c.run("sudo apt-get remove -y nodo", timeout=300)
    for u in UNITS:
        assert c.sh(f"systemctl is-active {u}", check=False) == "inactive"
        assert c.run(f"systemctl cat {u}", check=False).returncode != 0
    assert c.run("test -e /opt/nodo/bin/odoo-local-api", check=False).returncode == 1
    assert c.sh("stat -c '%a %U %G' /opt/nodo/config/.env") == "640 root nodo"  # kept
    assert c.sh(f"test -f {DROPIN} && echo kept") == "kept"
    assert c.sh("cat /opt/odoo/scripts/create_tenant.sh") + "\n" == OLD_SEED_SCRIPT
    assert c.sh("dpkg-query -W -f '${Status}' nodo") == "deinstall ok config-files"


def test_reinstall_after_remove_keeps_the_settings(c, debs):
    key = api_key(c)
    env_sum = c.sh("sha256sum /opt/nodo/config/.env")
    out = c.sh(f"cd /root && sudo apt-get install -y ./{debs['cur'].name}", timeout=300)
    assert "created /opt/nodo/config/.env" not in out
    assert api_key(c) == key and c.sh("sha256sum /opt/nodo/config/.env") == env_sum
    # From "config-files" dpkg configures with the old version: not a first
    # install, so nothing is started either.
    for u in UNITS:
        assert c.sh(f"systemctl is-active {u}", check=False) == "inactive"
    c.run("sudo apt-get remove -y nodo", timeout=300)


def test_purge(c):
    c.run("sudo apt-get purge -y nodo", timeout=300)
    assert c.run("test -e /opt/nodo", check=False).returncode == 1
    assert c.run("dpkg-query -W nodo", check=False).returncode != 0
    assert c.run("test -e /etc/systemd/system/multi-user.target.wants/odoo-local-api.service",
                 check=False).returncode == 1
    assert c.run(f"test -e {DROPIN.rsplit('/', 1)[0]}", check=False).returncode == 1
    # What is Odoo's stays: its user, the tenant's database and filestore.
    # (So do Nodo's system accounts, as Debian does with system users.)
    for who in ("odoo", "nodo-watcher"):
        assert c.run(f"getent passwd {who}", check=False).returncode == 0
    assert c.sh("runuser -u postgres -- psql -Atc "
                "\"SELECT count(*) FROM pg_database WHERE datname = 'primero'\"") == "1"
    assert c.sh("test -d /var/lib/odoo/filestore/primero && echo ok") == "ok"
