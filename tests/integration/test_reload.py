"""systemctl reload (SIGHUP): the daemons re-read the env file and
domains.json through the same loader, swap in what can change without a
restart, name what cannot, and keep everything when the new settings fail
validation (docs/DESIGN.md, "Settings table and reload")."""
import json
import signal
import threading

from conftest import API_KEY, CF_TOKEN, TUNNEL_ID, ZONE_OTRO, ZONE_SAJET, \
    FakeCloudflare, wait_for

ZONE_NUEVO = "4e0e4e0e4e0e4e0e4e0e4e0e4e0e4e0e"
NEW_TOKEN = "rotated-token-8c1f"
NEW_KEY = "rotated-api-key-77aa55cc33ee11"


def zones_file(path, zones):
    path.write_text(json.dumps({"zones": zones, "tunnel_id": TUNNEL_ID}))


def reload(d, what="reload done"):
    """SIGHUP, then the log line that ends the reload (its new lines)."""
    d.new_log()
    d.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: what in d.log()[d._log_offset:], 30,
             f"'{what}' in the log")
    return d.new_log()


def domains(d, key=None):
    r = d.get("/api/domains",
              headers={"X-API-KEY": key} if key else {})
    assert r.status_code == 200, r.text
    return sorted(z["domain"] for z in r.json()["domains"])


def test_reload_applies_zones_token_level_key(node, tmp_path):
    cf = FakeCloudflare(token=CF_TOKEN,
                        zones={"sajet.us": ZONE_SAJET,
                               "otro.dominio": ZONE_OTRO,
                               "nuevo.example": ZONE_NUEVO})
    cf.start()
    try:
        zf = tmp_path / "reload-domains.json"
        zones_file(zf, {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO})
        api = node(DOMAINS_FILE=str(zf), CLOUDFLARE_API_URL=cf.url,
                   LOG_LEVEL="info")
        assert domains(api) == ["otro.dominio", "sajet.us"]
        r = api.create("antes", domain="nuevo.example")
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "unknown_domain"

        # The operator adds a zone, rotates the token and the key, and
        # asks for debug logs; the fake now wants the new token.
        zones_file(zf, {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO,
                        "nuevo.example": ZONE_NUEVO})
        api.env.update(CLOUDFLARE_API_TOKEN=NEW_TOKEN, LOG_LEVEL="debug",
                       PROVISIONING_API_KEY=NEW_KEY)
        api.write_env()
        cf.token = NEW_TOKEN
        pid = api.proc.pid
        log = reload(api)
        for key in ("CLOUDFLARE_API_TOKEN changed", "LOG_LEVEL changed",
                    "PROVISIONING_API_KEY changed",
                    "zones of %s changed (3 zone(s) now)" % zf):
            assert key in log, log
        # Names only: no secret's value in the log.
        assert NEW_TOKEN not in log and NEW_KEY not in log
        assert NEW_TOKEN not in api.log() and NEW_KEY not in api.log()
        assert "restart odoo-local-api" not in log, log
        assert api.proc.pid == pid and api.proc.poll() is None

        # The old key is refused from now on; the new one works.
        r = api.get("/api/domains")
        assert r.status_code == 401, r.text
        api.key = NEW_KEY
        assert domains(api) == ["nuevo.example", "otro.dominio", "sajet.us"]
        # A create on the new zone, its CNAME made with the new token.
        r = api.create("recargado", domain="nuevo.example")
        assert r.status_code == 201, r.text
        assert r.json()["dns"]["status"] == "created", r.text
        names = [x["name"] for x in cf.records(ZONE_NUEVO)]
        assert "recargado.nuevo.example" in names
        r = api.get("/api/tenants", params={"domain": "nuevo.example"})
        assert r.status_code == 200, r.text
        assert [t["subdomain"] for t in r.json()["tenants"]] == \
            ["recargado"], r.text
        # LOG_LEVEL=debug applied: /health is logged at debug now.
        api.new_log()
        assert api.get("/health", key=False).status_code == 200
        wait_for(lambda: "GET /health 200" in api.log()[api._log_offset:],
                 10, "/health's debug line")
        r = api.delete("/api/tenant", json={"subdomain": "recargado"})
        assert r.status_code == 200, r.text
    finally:
        cf.stop()


def test_reload_invalid_keeps_old_settings(node, tmp_path):
    zf = tmp_path / "bad-domains.json"
    zones_file(zf, {"sajet.us": ZONE_SAJET})
    api = node(DOMAINS_FILE=str(zf), LOG_LEVEL="info")
    assert domains(api) == ["sajet.us"]
    # A bad value next to a good change: nothing is applied.
    zones_file(zf, {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO})
    api.env.update(LOG_LEVEL="loud", SPARE_TENANTS="99")
    api.write_env()
    log = reload(api, "reload refused")
    wait_for(lambda: "SPARE_TENANTS: must be a whole number from 0 to 16"
             in api.log(), 10, "the reason in the log")
    log = api.log()
    assert "LOG_LEVEL: must be debug, info, warning or error" in log, log
    assert "<3>" in log  # at err
    assert api.proc.poll() is None
    assert domains(api) == ["sajet.us"]
    # domains.json broken: refused too, old zones kept.
    api.env.update(LOG_LEVEL="info", SPARE_TENANTS="2")
    api.write_env()
    zf.write_text('{"zones": {"sajet.us": ')
    reload(api, "reload refused")
    assert domains(api) == ["sajet.us"]
    # Fixed: applied.
    zones_file(zf, {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO})
    log = reload(api)
    assert "SPARE_TENANTS changed" in log, log
    assert domains(api) == ["otro.dominio", "sajet.us"]


def test_reload_names_restart_only_keys(node):
    api = node()
    old_port = api.port
    api.env.update(API_PORT="1", DEFAULT_TEMPLATE_DB="otra",
                   PGPASSWORD="another-secret-pw-42")
    api.write_env()
    log = reload(api)
    for key in ("API_PORT", "DEFAULT_TEMPLATE_DB", "PGPASSWORD"):
        assert f"{key} changed: restart odoo-local-api to apply" in log, log
    assert "<4>" in log  # at warning
    assert "another-secret-pw-42" not in api.log()
    # Still the old port, the old template and the old password.
    assert api.port == old_port
    r = api.create("viejo")
    assert r.status_code == 201, r.text
    assert r.json()["template_db"] == "tcs", r.text


def test_reload_under_load(node, tmp_path):
    """Requests in flight while the settings swap many times: every reply
    is one whole set of zones (no torn read), the sanitizers stay quiet
    (the fixture checks the log)."""
    zf = tmp_path / "flip-domains.json"
    one = {"sajet.us": ZONE_SAJET}
    two = {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO}
    zones_file(zf, one)
    api = node(DOMAINS_FILE=str(zf), LOG_LEVEL="info")
    seen, bad, stop = set(), [], threading.Event()

    def reader():
        while not stop.is_set():
            r = api.get("/api/domains", timeout=30)
            if r.status_code != 200:
                bad.append(r.text)
                continue
            seen.add(tuple(sorted(z["domain"]
                                  for z in r.json()["domains"])))

    threads = [threading.Thread(target=reader) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for i in range(20):
            zones_file(zf, two if i % 2 == 0 else one)
            reload(api)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not bad, bad[:3]
    assert seen <= {("sajet.us",), ("otro.dominio", "sajet.us")}, seen
    assert len(seen) == 2, seen


# ---- the watcher -------------------------------------------------------------

def create_db(pg, name, domain):
    pg.su_exec(f'CREATE DATABASE "{name}" OWNER odoo TEMPLATE "tcs"')
    pg.su_exec(f"COMMENT ON DATABASE \"{name}\" IS 'nodo:domain={domain}'")


def named(cf, zone, fqdn):
    return [r for r in cf.records(zone) if r["name"] == fqdn]


def test_watcher_reload_zones_and_restart_keys(node, pg, cloudflare,
                                               tmp_path):
    zf = tmp_path / "w-domains.json"
    zones_file(zf, {"sajet.us": ZONE_SAJET})
    create_db(pg, "hupzone", "otro.dominio")
    w = node(prog="odoo-db-watcher", DOMAINS_FILE=str(zf))
    wait_for(lambda: w.log().count("poll ") >= 2, 30, "two polls")
    assert named(cloudflare, ZONE_OTRO, "hupzone.otro.dominio") == []

    # A bad value: refused, the watcher keeps polling as it was.
    w.env.update(DB_WATCHER_INTERVAL="0")
    w.write_env()
    reload(w, "reload refused")
    wait_for(lambda: "DB_WATCHER_INTERVAL: must be a whole number from 1 "
             "to 3600" in w.log(), 10, "the reason")
    n = w.log().count("poll ")
    wait_for(lambda: w.log().count("poll ") >= n + 2, 30, "polls go on")
    assert named(cloudflare, ZONE_OTRO, "hupzone.otro.dominio") == []

    # The zone added and a restart-only key changed: the zone is watched.
    zones_file(zf, {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO})
    w.env.update(DB_WATCHER_INTERVAL="1",
                 WATCHER_METRICS_FILE=str(tmp_path / "other.prom"))
    w.write_env()
    pid = w.proc.pid
    log = reload(w)
    assert ("WATCHER_METRICS_FILE changed: restart odoo-db-watcher to "
            "apply") in log, log
    assert "zones of %s changed (2 zone(s) now)" % zf in log, log
    wait_for(lambda: named(cloudflare, ZONE_OTRO, "hupzone.otro.dominio"),
             30, "the new zone's record")
    assert w.proc.pid == pid and w.proc.poll() is None


def test_watcher_reload_enables_dns(node, pg, cloudflare, tmp_path):
    create_db(pg, "hupdns", "sajet.us")
    w = node(prog="odoo-db-watcher", dns=False)
    wait_for(lambda: "nothing to watch" in w.log(), 30, "the idle state")
    w.env.update(CLOUDFLARE_API_TOKEN=CF_TOKEN)
    w.write_env()
    log = reload(w)
    assert "CLOUDFLARE_API_TOKEN changed" in log, log
    assert CF_TOKEN not in w.log()
    wait_for(lambda: named(cloudflare, ZONE_SAJET, "hupdns.sajet.us"), 30,
             "the record once DNS is on")
