"""The example env file and docs/SETTINGS.md are generated from the table of
keys (src/lib/settings.c, `make settings-docs`): the committed ones must be
what the built daemon prints, so that neither drifts from the code."""
import subprocess

from conftest import BUILD, ROOT


def printed(flag):
    r = subprocess.run([str(BUILD / "odoo-local-api"), flag],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_committed_example_env_is_generated():
    assert (ROOT / "config/nodo.env").read_text() == \
        printed("--print-example-env"), "run make settings-docs"


def test_committed_settings_doc_is_generated():
    assert (ROOT / "docs/SETTINGS.md").read_text() == \
        printed("--print-settings-doc"), "run make settings-docs"


def test_example_keeps_the_seeds_keys_and_comments():
    # The seed README's .env block: its keys and Spanish comments.
    text = (ROOT / "config/nodo.env").read_text()
    for line in ("# Dominio del nodo", "ODOO_DOMAIN=sajet.us",
                 "# Token de Cloudflare para auto-provisioning de DNS",
                 "CLOUDFLARE_API_TOKEN=", "# ID del túnel Cloudflare",
                 "#CF_TUNNEL_ID=tu_tunnel_id_aqui",
                 "# API Key para comunicación entre nodos",
                 "PROVISIONING_API_KEY=",
                 "#TRASH_RETENTION_DAYS=7", "#SPARE_TENANTS=1",
                 "#RESTORE_MAX_BYTES=17179869184"):
        assert line in text, line
    # Every documented key is in the docs page, secrets marked.
    doc = (ROOT / "docs/SETTINGS.md").read_text()
    for key in ("PROVISIONING_API_KEY", "CLOUDFLARE_API_TOKEN",
                "PGPASSWORD"):
        row = next(r for r in doc.splitlines() if r.startswith(f"| `{key}`"))
        assert row.split("|")[7].strip() == "yes", row


def test_check_names_a_bad_key_from_the_table(tmp_path):
    env = tmp_path / "bad.env"
    env.write_text("ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY=0123456789abcdef01\n"
                   "TRASH_RETENTION_DAYS=4000\nRESTORE_MAX_BYTES=lots\n"
                   f"ODOO_CONF={tmp_path}/none.conf\nDOMAINS_FILE={tmp_path}/none.json\n")
    env.chmod(0o600)
    r = subprocess.run([str(BUILD / "odoo-local-api"), "--config", str(env),
                        "--check"], capture_output=True, text=True,
                       timeout=30, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 78, r.stdout + r.stderr
    out = r.stdout + r.stderr
    assert "TRASH_RETENTION_DAYS: must be a whole number from 0 to 3650" in out
    assert ("RESTORE_MAX_BYTES: must be a whole number from 1 to "
            "1125899906842624") in out
