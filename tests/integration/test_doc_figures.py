"""Docs match the code where they quote a measured figure: the
`systemd-analyze security` exposure of each unit in docs/README.md is the
one tests/test_units.sh measures now."""
import re
import subprocess

from conftest import ROOT


def test_readme_security_figures_are_current():
    r = subprocess.run(["sh", str(ROOT / "tests" / "test_units.sh")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    got = dict(re.findall(r"ok: (odoo-[a-z-]+)\.service: exposure "
                          r"(\d+\.\d) OK", r.stdout))
    assert set(got) == {"odoo-local-api", "odoo-db-watcher"}, r.stdout
    readme = " ".join((ROOT / "docs" / "README.md").read_text().split())
    for unit, figure in got.items():
        assert f"exposure {figure} for {unit}" in readme or \
            f"{figure} for {unit}" in readme, (unit, figure)
