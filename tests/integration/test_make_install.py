"""`make install` fails when a file cannot be installed (no error is
swallowed), and installs the seed's tree when it can."""
import subprocess

from conftest import BUILD, ROOT


def make_install(dest):
    return subprocess.run(["make", "-s", f"B={BUILD}", f"DESTDIR={dest}",
                           "PREFIX=/opt/nodo", "install"], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)


def test_make_install_installs_the_tree(tmp_path):
    r = make_install(tmp_path)
    assert r.returncode == 0, r.stderr
    root = tmp_path / "opt/nodo"
    for f in ("bin/odoo-local-api", "bin/odoo-db-watcher",
              "scripts/create_tenant.sh", "scripts/nodo-common.sh",
              "systemd/odoo-local-api.service", "docs/API.md",
              "docs/openapi.yaml", "config/nodo.env",
              "cloudflare/domains.json"):
        assert (root / f).is_file(), f


def test_make_install_fails_when_a_file_cannot_be_installed(tmp_path):
    for blocked in ("scripts/delete_tenant.sh", "docs/README.md",
                    "systemd/odoo-db-watcher.service"):
        dest = tmp_path / blocked.replace("/", "_")
        # A directory where the file must go: install(1) cannot replace it.
        (dest / "opt/nodo" / blocked / "x").mkdir(parents=True)
        r = make_install(dest)
        assert r.returncode != 0, (blocked, r.stdout, r.stderr)
        assert blocked.split("/")[-1] in r.stderr, r.stderr
