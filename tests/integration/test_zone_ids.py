"""One zone-id rule, the Cloudflare client's (32 lower-case hex digits),
applied to domains.json: the seed's example file (`zone_id_1`) still lets
the node start with DNS disabled, `--check` reports it, and with DNS
enabled it is a configuration error (78) instead of a failure on every DNS
call."""
import os
import subprocess

from conftest import BUILD, ROOT

EXAMPLE = ROOT / "cloudflare" / "domains.json"


def run(d, *args):
    d.write_env()
    return subprocess.run([str(BUILD / d.prog), "--config", str(d.env_file)]
                          + list(args), capture_output=True, text=True,
                          timeout=60, env={"PATH": os.environ["PATH"]},
                          stdin=subprocess.DEVNULL)


def test_example_file_fails_check_with_a_clear_message(node):
    assert '"zone_id_1"' in EXAMPLE.read_text()
    for prog in ("odoo-local-api", "odoo-db-watcher"):
        d = node(prog=prog, dns=False, start=False)
        d.env["DOMAINS_FILE"] = str(EXAMPLE)
        p = run(d, "--check")
        assert p.returncode == 1, (prog, p.returncode, p.stdout, p.stderr)
        assert (f"DOMAINS_FILE: FAILED: {EXAMPLE}: zones.sajet.us: zone id "
                "'zone_id_1' is not a Cloudflare zone id (32 characters of "
                "0-9 and a-f") in p.stdout, (prog, p.stdout)
        assert "zone id 'zone_id_2'" in p.stdout


def test_example_file_starts_with_dns_off_warning(node):
    d = node(dns=False, start=False)
    d.env["DOMAINS_FILE"] = str(EXAMPLE)
    d.start()
    r = d.get("/api/domains")
    assert r.status_code == 200, r.text
    log = d.log()
    assert "<4>" + str(EXAMPLE) + ": zones.sajet.us: zone id 'zone_id_1'" \
        in log, log
    assert "DNS is disabled" in log


def test_example_file_with_dns_on_is_a_config_error(node):
    for prog in ("odoo-local-api", "odoo-db-watcher"):
        d = node(prog=prog, start=False)
        d.env["DOMAINS_FILE"] = str(EXAMPLE)
        p = run(d)
        assert p.returncode == 78, (prog, p.returncode, p.stderr)
        assert (f"<3>{EXAMPLE}: zones.sajet.us: zone id 'zone_id_1' is "
                "not a Cloudflare zone id") in p.stderr, (prog, p.stderr)


def test_good_ids_pass_check(node, cloudflare):
    d = node(prog="odoo-db-watcher", start=False)
    p = run(d, "--check")
    assert p.returncode == 0, (p.stdout, p.stderr)
    assert "FAILED" not in p.stdout
