"""A node installed by the install.sh before the package (make install into
/opt/nodo, units in /etc/systemd/system) moves to the package when the
operator runs the new install.sh: the old unit files go, the package's
units run the new binaries, .env and the tenants stay, the key is not
printed again, and a reboot starts both.

The steps run in order in one container; a failed step stops the story
(conftest.py).
"""
import re
import subprocess

import pytest

from conftest import (ROOT, Container, api_key, configure_node, figure,
                      repo_files, setup_odoo_node, start_fake_cloudflare)

UNITS = ("odoo-local-api", "odoo-db-watcher")
# The last commit whose install.sh installed by hand (make install).
OLD = "306d6c9"


@pytest.fixture(scope="module")
def c(rootfs):
    box = Container(rootfs, "migrate")
    try:
        box.boot()
        yield box
    finally:
        box.close()


@pytest.fixture(scope="module")
def state():
    return {}


def test_a_node_of_the_old_install_sh(c, state):
    r = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{OLD}^{{commit}}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"commit {OLD} (the old install.sh) is not in this clone: "
                    f"the migration test needs the project's history")
    (c.root / "root/old").mkdir()
    subprocess.run(f"git -C {ROOT} archive {OLD} | tar -x -C {c.root / 'root/old'}",
                   shell=True, check=True)
    mod = setup_odoo_node(c)
    c.copy_tree([str(p.relative_to(ROOT)) for p in (ROOT / "tests/fakes").rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts], "/root")
    start_fake_cloudflare(c, "/root/tests/fakes")
    c.run("cd /root/old && ./install.sh", timeout=600)
    configure_node(c, mod)
    c.run("systemctl start odoo-local-api odoo-db-watcher")
    out = c.sh("/opt/odoo/scripts/create_tenant.sh antiguo clave-antigua-1 sajet.us tcs")
    assert "Tenant antiguo created." in out, out
    for u in UNITS:
        assert c.prop(u, "FragmentPath") == f"/etc/systemd/system/{u}.service"
    assert c.run("dpkg-query -W nodo", check=False).returncode != 0
    state["key"] = api_key(c)


def test_the_new_install_sh_moves_it_to_the_package(c, state):
    c.copy_tree(repo_files(), "/root/nodo")
    sums = c.sh("sha256sum /opt/nodo/config/.env /opt/nodo/cloudflare/domains.json")
    pids = {u: c.prop(u, "MainPID") for u in UNITS}
    r = c.run("cd /root/nodo && ./install.sh", timeout=600)
    out = r.stdout
    for u in UNITS:
        assert f"removed /etc/systemd/system/{u}.service" in out, out
        assert c.run(f"test -e /etc/systemd/system/{u}.service", check=False).returncode == 1
    assert c.sh("dpkg-query -W -f '${Status}' nodo") == "install ok installed"
    # The package's units run the package's binaries: both restarted.
    assert "they ran before the package came" in out
    for u in UNITS:
        assert c.prop(u, "FragmentPath") == f"/lib/systemd/system/{u}.service"
        assert c.sh(f"systemctl is-active {u}") == "active"
        assert c.sh(f"systemctl is-enabled {u}") == "enabled"
        assert c.prop(u, "MainPID") not in ("0", pids[u]), f"{u} was not restarted"
    assert "warning" not in r.stderr.lower(), r.stderr
    # The operator's settings and the key are kept; the key is not printed.
    assert c.sh("sha256sum /opt/nodo/config/.env /opt/nodo/cloudflare/domains.json") == sums
    assert api_key(c) == state["key"] and state["key"] not in out + r.stderr
    assert c.sh("stat -c '%a %U %G' /opt/nodo/config/.env") == "640 root nodo"
    # The old install.sh's watcher drop-in gave way to the package's.
    assert c.run("test -e /etc/systemd/system/odoo-db-watcher.service.d/10-install.conf",
                 check=False).returncode == 1
    assert c.prop("odoo-db-watcher", "User") == "odoo"
    status = c.sh(f"cat /proc/{c.prop('odoo-db-watcher', 'MainPID')}/status")
    assert re.search(r"^Uid:\s+(\d+)", status, re.M).group(1) == c.sh("id -u odoo")
    assert "antiguo" in c.sh("/opt/odoo/scripts/list_tenants.sh")
    assert c.sh("/opt/nodo/bin/odoo-local-api --version").split()[-1] == \
        c.sh("dpkg-query -W -f '${Version}' nodo")


def test_reboot(c):
    c.poweroff()
    figure("migrate: boot after the move to the package s", round(c.boot(), 1))
    for u in UNITS:
        assert c.sh(f"systemctl is-active {u}") == "active"
    assert "antiguo" in c.sh("/opt/odoo/scripts/list_tenants.sh")
    # No dangling enablement link of the old units.
    assert c.sh("find /etc/systemd/system -xtype l -name 'odoo-*'") == ""
