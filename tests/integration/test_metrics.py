"""GET /metrics, GET /api/node and the logs an operator acts on (CONTRACT
section 12; issue 11 items 5 to 7), against the real PostgreSQL cluster of
the harness, the fake Cloudflare and the daemons.

/metrics is parsed back with prometheus_client's own text parser (Debian's
python3-prometheus-client), so a format slip fails here. /api/node is
compared with what PostgreSQL (pg_database_size), os.statvfs and /proc
say at the same moment.
"""
import os
import re
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from conftest import (API_KEY, BUILD, ROOT, clone_tcs, drop_template,
                      wait_for)

PROMTOOL = shutil.which("promtool")  # Debian's prometheus (tests/deps.sh)
DOCS = ROOT / "docs" / "prometheus"
ROUTES = {"/health", "/api/tenants", "/api/tenant", "/api/domains",
          "/api/node", "/metrics"}
CTYPE = "text/plain; version=0.0.4; charset=utf-8"


def scrape(api, **kw):
    r = api.get("/metrics", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == CTYPE
    return r.text


def families(text):
    """{family name: Metric} from prometheus_client's parser."""
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(fams, family, name=None):
    """[(labels, value)] of one family's samples named `name`."""
    f = fams[family]
    name = name or family
    return [(s.labels, s.value) for s in f.samples if s.name == name]


def value(fams, family, name=None, **labels):
    got = [v for lab, v in samples(fams, family, name)
           if all(lab.get(k) == w for k, w in labels.items())]
    assert len(got) == 1, (family, labels, samples(fams, family, name))
    return got[0]


def check_histogram(fams, family, labels):
    """Cumulative buckets, ending in +Inf == _count."""
    buckets = [(float(lab["le"]), v)
               for lab, v in samples(fams, family, family + "_bucket")
               if all(lab.get(k) == w for k, w in labels.items())]
    assert buckets, (family, labels)
    les = [le for le, _ in buckets]
    assert les == sorted(les) and les[-1] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), counts
    count = value(fams, family, family + "_count", **labels)
    assert counts[-1] == count
    assert value(fams, family, family + "_sum", **labels) >= 0
    return count


# ---- /metrics --------------------------------------------------------------

def test_metrics_needs_the_key_x_api_key_or_bearer(api):
    assert api.get("/metrics", key=False).status_code == 401
    r = api.get("/metrics", key=False, headers={"X-API-KEY": "wrong"})
    assert r.status_code == 401
    assert r.json()["code"] == "unauthorized"
    for auth in (f"Bearer {API_KEY}", f"bearer {API_KEY}",
                 f"Bearer   {API_KEY}"):
        r = api.get("/metrics", key=False, headers={"Authorization": auth})
        assert r.status_code == 200, (auth, r.text)
    for auth in ("Bearer wrong-key", f"Basic {API_KEY}", "Bearer ",
                 API_KEY):
        r = api.get("/metrics", key=False, headers={"Authorization": auth})
        assert r.status_code == 401, auth
    # Bearer works on the rest of the API too.
    r = api.get("/api/tenants", key=False,
                headers={"Authorization": f"Bearer {API_KEY}"})
    assert r.status_code == 200
    # A wrong method: the key first, then 405 naming GET.
    assert api.post("/metrics", key=False).status_code == 401
    r = api.post("/metrics")
    assert r.status_code == 405 and r.headers["Allow"] == "GET"
    # The refusals are counted (each is also logged at warning).
    fams = families(scrape(api))
    assert value(fams, "nodo_http_auth_refused",
                 "nodo_http_auth_refused_total") >= 7


def test_metrics_text_parses_and_counts(api, pg, data_dir):
    assert api.get("/health", key=False).status_code == 200
    assert api.get("/api/tenants").status_code == 200
    assert api.create("mt-one").status_code == 201
    assert api.create("mt-one").status_code == 409
    assert api.delete("/api/tenant?subdomain=mt-none").status_code == 404
    assert api.create("mt-two").status_code == 201
    assert api.delete("/api/tenant?subdomain=mt-two").status_code == 200
    assert api.get("/nope", key=False).status_code == 404

    # A request is counted when its connection is done with it, which may
    # be a moment after its reply reached us: wait for the last one.
    def counted():
        t = scrape(api)
        return 'nodo_http_requests_total{route="other",code="404"} 1' \
            in t and t
    text = wait_for(counted, 10, "the last request counted")
    fams = families(text)
    assert fams["nodo_http_requests"].type == "counter"
    # One /health is the harness' own, waiting for the daemon.
    assert value(fams, "nodo_http_requests", "nodo_http_requests_total",
                 route="/health", code="200") == 2
    assert value(fams, "nodo_http_requests", "nodo_http_requests_total",
                 route="/api/tenant", code="201") == 2
    assert value(fams, "nodo_http_requests", "nodo_http_requests_total",
                 route="/api/tenant", code="409") == 1
    assert value(fams, "nodo_http_requests", "nodo_http_requests_total",
                 route="other", code="404") == 1

    h = "nodo_http_request_duration_seconds"
    assert fams[h].type == "histogram"
    assert check_histogram(fams, h, {"route": "/api/tenant"}) == 5
    assert check_histogram(fams, h, {"route": "/health"}) == 2

    op = "nodo_tenant_operation_duration_seconds"
    assert fams[op].type == "histogram"
    assert check_histogram(fams, op, {"op": "create"}) == 3
    assert check_histogram(fams, op, {"op": "delete"}) == 2
    # Declared before they exist: the series are there, at zero.
    assert check_histogram(fams, op, {"op": "restore"}) == 0
    assert check_histogram(fams, op, {"op": "backup"}) == 0
    ops = "nodo_tenant_operations"
    assert value(fams, ops, ops + "_total", op="create",
                 outcome="ok") == 2
    assert value(fams, ops, ops + "_total", op="create",
                 outcome="rejected") == 1
    assert value(fams, ops, ops + "_total", op="delete",
                 outcome="rejected") == 1
    assert value(fams, ops, ops + "_total", op="create",
                 outcome="failed") == 0

    dns = "nodo_dns_results"
    assert value(fams, dns, dns + "_total", status="created") == 2
    assert value(fams, dns, dns + "_total", status="deleted") == 1
    assert value(fams, dns, dns + "_total", status="pending") == 0

    assert value(fams, "nodo_postgres_up") == 1
    assert value(fams, "nodo_tenants", state="active") == 1
    assert value(fams, "nodo_tenants", state="suspended") == 0
    # The one delete went to the trash (TRASH_RETENTION_DAYS defaults to 7).
    assert value(fams, "nodo_trash_tenants") == 1
    assert value(fams, "nodo_spare_tenants") == 0
    assert value(fams, "nodo_build_info", version="1.0.0") == 1
    st = os.statvfs(data_dir)
    assert value(fams, "nodo_data_dir_size_bytes") == st.f_blocks * \
        st.f_frsize
    free = st.f_bavail * st.f_frsize
    # The machine is shared: other writers move the free space a little.
    assert abs(value(fams, "nodo_data_dir_free_bytes") - free) < 2 ** 30
    assert value(fams, "process_resident_memory_bytes") > 0
    assert value(fams, "process_open_fds") > 0
    assert abs(value(fams, "process_start_time_seconds") - time.time()) \
        < 600
    # Every family has HELP and TYPE; names follow the conventions.
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ")
            if typ == "counter":
                assert name.endswith("_total"), name
            assert f"# HELP {name} " in text
    # /metrics itself is not logged at info (monitors poll it).
    assert "<6>GET /metrics" not in api.log()
    assert "<7>GET /metrics 200" in api.log()


def test_metrics_labels_are_bounded(api):
    """A tenant named like a route never becomes a label value."""
    name = "zz-route-probe"
    assert api.create(name).status_code == 201
    for path in (f"/{name}", f"/api/{name}", f"/api/tenant/{name}",
                 f"/metrics/{name}"):
        api.get(path)
        api.get(path, key=False)
    api.get(f"/api/tenants?domain={name}.example")
    api.delete(f"/api/tenant?subdomain={name}")
    api.delete(f"/api/tenant?subdomain={name}")
    text = scrape(api)
    assert name not in text
    fams = families(text)
    routes = {lab["route"]
              for lab, _ in samples(fams, "nodo_http_requests",
                                    "nodo_http_requests_total")}
    assert routes <= ROUTES | {"other"}, routes
    assert "other" in routes
    codes = {lab["code"]
             for lab, _ in samples(fams, "nodo_http_requests",
                                   "nodo_http_requests_total")}
    assert all(re.fullmatch(r"[1-5][0-9][0-9]", c) for c in codes), codes


def test_metrics_while_postgres_is_down(api, pg):
    pg.stop()
    try:
        fams = families(scrape(api))
        assert value(fams, "nodo_postgres_up") == 0
        assert "nodo_tenants" not in fams  # unknown, not zero
        r = api.get("/api/node")
        assert r.status_code == 503
        assert r.json()["code"] == "database_unavailable"
    finally:
        pg.start()
    fams = families(scrape(api))
    assert value(fams, "nodo_postgres_up") == 1


def test_watcher_metrics_reach_the_scrape(node, pg, cloudflare, tmp_path):
    api = node()
    prom = Path(api.env["WATCHER_METRICS_FILE"])
    assert value(families(scrape(api)), "nodo_watcher_up") == 0
    assert "nodo_watcher_polls_total" not in scrape(api)

    w = node(prog="odoo-db-watcher")
    assert api.create("mt-watched").status_code == 201
    fams = wait_for(
        lambda: (f := families(scrape(api)))
        and "nodo_watcher_tenants" in f
        and value(f, "nodo_watcher_tenants") == 1
        and value(f, "nodo_watcher_records") == 1
        and f, 30, "a poll that saw the tenant, in the scrape")
    assert value(fams, "nodo_watcher_up") == 1
    assert fams["nodo_watcher_polls"].type == "counter"
    last = value(fams, "nodo_watcher_last_success_timestamp_seconds")
    assert abs(time.time() - last) < 30
    cf = "nodo_watcher_cloudflare_requests"
    got = {(lab["method"], lab["code"]): v
           for lab, v in samples(fams, cf, cf + "_total")}
    # The zone read at start is a GET answered 200.
    assert got.get(("GET", "200"), 0) >= 1, got
    fake_gets = [r for r in cloudflare.requests if r["method"] == "GET"]
    assert sum(v for (m, _), v in got.items() if m == "GET") <= \
        len(fake_gets)
    assert value(fams, "nodo_watcher_tenants") == 1
    assert value(fams, "nodo_watcher_records") == 1
    assert value(fams, "nodo_watcher_pending_records") == 0
    assert oct(prom.stat().st_mode & 0o777) == "0o640"

    # Every series the sample alerts use is in a real scrape.
    text = scrape(api)
    names = {s.name for f in fams.values() for s in f.samples}
    rules = yaml.safe_load((DOCS / "nodo.rules.yml").read_text())
    used = {n for g in rules["groups"] for r in g["rules"]
            for n in re.findall(r"\bnodo_[a-z_]+", r["expr"])}
    assert used and used <= names, used - names
    # promtool's linter agrees with the names and the HELP lines.
    lint = subprocess.run([PROMTOOL, "check", "metrics"], input=text,
                          capture_output=True, text=True, timeout=60)
    assert lint.returncode == 0, lint.stdout + lint.stderr

    # The watcher stops: its file goes, the scrape says so.
    assert w.stop() == 0
    assert not prom.exists()
    fams = families(scrape(api))
    assert value(fams, "nodo_watcher_up") == 0
    assert "nodo_watcher_polls" not in fams


def test_watcher_file_is_filtered_and_staleness_shows(api):
    prom = Path(api.env["WATCHER_METRICS_FILE"])
    prom.write_text("# TYPE nodo_watcher_polls_total counter\n"
                    "nodo_watcher_polls_total 7\n"
                    "nodo_http_requests_total{route=\"x\",code=\"200\"} 9\n"
                    "evil_metric 1\n"
                    "nodo_watcher_cut_line 1")  # no newline: dropped
    text = scrape(api)
    fams = families(text)
    assert value(fams, "nodo_watcher_polls", "nodo_watcher_polls_total") \
        == 7
    assert "evil_metric" not in text and 'route="x"' not in text
    assert "nodo_watcher_cut_line" not in text
    assert value(fams, "nodo_watcher_up") == 1
    old = time.time() - 3600
    os.utime(prom, (old, old))
    assert value(families(scrape(api)), "nodo_watcher_up") == 0
    prom.unlink()
    prom.symlink_to("/etc/hostname")  # not followed
    assert value(families(scrape(api)), "nodo_watcher_up") == 0


def test_watcher_dns_disabled_still_writes(node):
    api = node(dns=False)
    node(prog="odoo-db-watcher", dns=False)
    fams = wait_for(
        lambda: (f := families(scrape(api)))
        and "nodo_watcher_dns_enabled" in f and f, 20, "the idle file")
    assert value(fams, "nodo_watcher_dns_enabled") == 0
    assert value(fams, "nodo_watcher_up") == 1
    assert value(fams, "nodo_watcher_polls", "nodo_watcher_polls_total") \
        == 0


def test_bad_watcher_metrics_file_setting(node):
    d = node(start=False, WATCHER_METRICS_FILE="relative/watcher.prom")
    d.write_env()
    r = subprocess.run([str(BUILD / "odoo-local-api"), "--config",
                        str(d.env_file), "--check"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 78
    assert "WATCHER_METRICS_FILE" in r.stdout + r.stderr


def test_prometheus_samples_pass_promtool(tmp_path):
    """docs/prometheus: the scrape config, the alert rules and their unit
    tests (promtool test rules) as Prometheus itself reads them."""
    assert PROMTOOL, "promtool missing: install Debian's prometheus " \
        "(tests/deps.sh)"
    for f in DOCS.iterdir():
        shutil.copy(f, tmp_path / f.name)
    key = tmp_path / "nodo-api-key"  # the config's credentials_file
    key.write_text(API_KEY + "\n")
    key.chmod(0o600)
    for args in (["check", "config", "prometheus.yml"],
                 ["check", "rules", "nodo.rules.yml"],
                 ["test", "rules", "nodo.rules.test.yml"]):
        r = subprocess.run([PROMTOOL] + args, cwd=tmp_path,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (args, r.stdout, r.stderr)
        assert "SUCCESS" in r.stdout + r.stderr, (args, r.stdout)
    alerts = {r["alert"] for g in yaml.safe_load(
        (DOCS / "nodo.rules.yml").read_text())["groups"] for r in g["rules"]}
    assert {"NodoNodeDown", "NodoDnsPending", "NodoCreatesFailing",
            "NodoDiskNearlyFull", "NodoWatcherStalled"} <= alerts


# ---- /api/node -------------------------------------------------------------

def meminfo():
    out = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        k, v = line.split(":", 1)
        out[k] = int(v.split()[0]) * 1024
    return out


def tree_bytes(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            st = os.lstat(os.path.join(dirpath, f))
            if not os.path.islink(os.path.join(dirpath, f)):
                total += st.st_size
    return total


def test_node_report_matches_postgres_and_statvfs(api, pg, data_dir):
    for n in ("nr-one", "nr-two"):
        assert api.create(n).status_code == 201
    # A link out of the template's filestore is not followed.
    link = Path(data_dir) / "filestore" / "tcs" / "nr-link"
    link.symlink_to("/usr")
    try:
        # The first report measures the sizes itself and reads the
        # template's Odoo version (PostgreSQL then writes its relation
        # cache file into the template's folder: its size grows once).
        first = api.get("/api/node")
        assert first.status_code == 200
        assert first.json()["tenants"] == 2
    finally:
        link.unlink()
    # A create right after a report is not blocked by the template; the
    # next report counts it at once (sizes lag: measured in the
    # background when a report finds them stale or a database unmeasured).
    assert api.create("nr-three").status_code == 201
    assert api.get("/api/node").json()["tenants"] == 3

    def settled():
        r = api.get("/api/node", key=False,
                    headers={"Authorization": f"Bearer {API_KEY}"})
        assert r.status_code == 200, r.text
        sizes = dict(pg.su_exec("SELECT datname, pg_database_size(datname) "
                                "FROM pg_database"))
        rep = r.json()
        want = sum(sizes[n] for n in ("nr-one", "nr-two", "nr-three"))
        ok = rep["databases_bytes"] == want and \
            rep["templates"][0]["database_bytes"] == sizes["tcs"]
        return ok and (r, rep, sizes)
    r, rep, sizes = wait_for(settled, 30, "the sizes measured again",
                             step=0.5)
    assert r.headers["Content-Type"] == "application/json"
    assert set(rep) == {"version", "tenants", "suspended", "trash", "spares",
                        "templates", "disk", "databases_bytes", "cpus",
                        "load", "memory"}
    assert rep["version"] == "1.0.0"
    assert rep["tenants"] == 3
    assert (rep["suspended"], rep["trash"], rep["spares"]) == (0, 0, 0)
    assert [t["name"] for t in rep["templates"]] == ["tcs"]
    t = rep["templates"][0]
    assert t["database_bytes"] == sizes["tcs"]
    assert t["filestore_bytes"] == tree_bytes(
        Path(data_dir) / "filestore" / "tcs") > 0
    assert t["odoo_version"] == "18.0.1.3"
    # The version was read over a connection that is gone again.
    assert pg.su_exec("SELECT count(*) FROM pg_stat_activity "
                      "WHERE datname = 'tcs'")[0][0] == 0

    st = os.statvfs(data_dir)
    disk = rep["disk"]["data_dir"]
    assert disk["total_bytes"] == st.f_blocks * st.f_frsize
    assert abs(disk["free_bytes"] - st.f_bavail * st.f_frsize) < 2 ** 30
    assert disk["free_bytes"] <= disk["total_bytes"]
    assert rep["cpus"] == os.cpu_count()
    assert len(rep["load"]) == 3
    for got, want in zip(rep["load"], os.getloadavg()):
        assert abs(got - want) < 2 + want, (rep["load"], os.getloadavg())
    mem = meminfo()
    assert rep["memory"]["total_bytes"] == mem["MemTotal"]
    assert 0 < rep["memory"]["available_bytes"] <= mem["MemTotal"]
    assert abs(rep["memory"]["available_bytes"] - mem["MemAvailable"]) \
        < 2 ** 31

    assert api.get("/api/node", key=False).status_code == 401


def test_node_report_other_templates(api, pg, data_dir):
    """A database of the node's role marked as a template is listed; one
    without an Odoo version reports null."""
    pg.su_exec("CREATE DATABASE nr_tmpl2 OWNER odoo IS_TEMPLATE true "
               "TEMPLATE template0")
    try:
        assert api.create("nr-tenant").status_code == 201
        rep = api.get("/api/node").json()
        by = {t["name"]: t for t in rep["templates"]}
        assert set(by) == {"tcs", "nr_tmpl2"}
        assert by["nr_tmpl2"]["odoo_version"] is None
        assert by["nr_tmpl2"]["filestore_bytes"] == 0
        assert rep["tenants"] == 1
    finally:
        pg.su_exec("ALTER DATABASE nr_tmpl2 IS_TEMPLATE false")
        pg.su_exec("DROP DATABASE nr_tmpl2 WITH (FORCE)")


# ---- logs ------------------------------------------------------------------

def test_failed_create_says_where_it_stopped(api, pg):
    """A create that fails in a step: the line names the step it stopped
    in, at error, and the metrics count it as failed (5xx). The template
    is an IS_TEMPLATE copy of tcs (the only templates a create may use)
    without file-backed attachments (it has no folder)."""
    clone_tcs(pg, "mt_noadmin", files=False)
    try:
        pg.su_exec("DELETE FROM ir_model_data WHERE name = 'user_admin'",
                   db="mt_noadmin")
        api.new_log()
        r = api.create("lg-broken", template_db="mt_noadmin")
        assert r.status_code == 500, r.text
        log = api.new_log()
        assert re.search(
            r"<3>tenant lg-broken not created from mt_noadmin \(domain "
            r"sajet\.us\) \(internal_error: template_db: the template has "
            r"no admin user.*\) after \d+ ms: clone \d+, configure \d+ "
            r"\(stopped here\)", log), log
        fams = families(scrape(api))
        assert value(fams, "nodo_tenant_operations",
                     "nodo_tenant_operations_total", op="create",
                     outcome="failed") == 1
    finally:
        drop_template(pg, "mt_noadmin")


def test_log_lines_an_operator_can_act_on(api):
    api.new_log()
    assert api.get("/api/tenants", key=False,
                   headers={"X-API-KEY": "wrong"}).status_code == 401
    assert api.create("lg-one").status_code == 201
    assert api.create("lg-one").status_code == 409
    assert api.delete("/api/tenant?subdomain=lg-one").status_code == 200
    log = wait_for(lambda: (t := api.new_log()) and "deleted" in t and t, 10,
                   "the delete's line")
    assert "<4>refused GET /api/tenants from 127.0.0.1: the API key " \
        "does not match" in log
    assert re.search(r"<6>POST /api/tenant 201 [0-9.]+ ms from 127\.0\.0\.1",
                     log)
    assert re.search(
        r"<6>tenant lg-one created from tcs \(domain sajet\.us\), dns "
        r"created in \d+ ms: clone \d+, configure \d+, filestore \d+, "
        r"publish \d+, dns \d+", log), log
    assert re.search(
        r"<4>tenant lg-one not created from tcs \(domain sajet\.us\) "
        r"\(tenant_exists: .*\) after \d+ ms", log), log
    assert re.search(
        r"<6>tenant lg-one deleted to the trash as [0-9a-f]{16}, dns "
        r"deleted in \d+ ms: lookup \d+, move \d+, filestore \d+, "
        r"dns \d+", log), log
    assert API_KEY not in log and "wrong\n" not in log

    # Ten refusals a minute from one address are warnings; past them the
    # address is slowed down and its refusals go to debug: no log flood.
    for _ in range(9):
        assert api.get("/api/domains", key=False).status_code == 401
    assert api.get("/api/domains", key=False).status_code == 401  # 11th
    log = wait_for(lambda: (t := api.log()) and t.count("refused ") == 11
                   and t, 10, "eleven refusals logged")
    assert log.count("<4>refused ") == 10
    assert "<4>refused GET /api/domains from 127.0.0.1: no API key" in log
    assert "<7>refused GET /api/domains from 127.0.0.1: no API key" in log


def read_journal_datagram(data):
    """Fields of one native-protocol datagram (systemd.journal-fields)."""
    fields = {}
    i = 0
    while i < len(data):
        nl = data.index(b"\n", i)
        line = data[i:nl]
        if b"=" in line:
            k, v = line.split(b"=", 1)
            i = nl + 1
        else:
            k = line
            (n,) = struct.unpack("<Q", data[nl + 1:nl + 9])
            v = data[nl + 9:nl + 9 + n]
            i = nl + 9 + n + 1
        fields[k.decode()] = v.decode(errors="replace")
    return fields


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare(1) for a private /run "
                           "with a stand-in journald socket")
def test_journal_tenant_field_tells_a_tenants_story(node, tmp_path):
    """With stderr on the journal ($JOURNAL_STREAM), every line about a
    tenant carries TENANT=<name>: `journalctl TENANT=acme` is its story.
    journald's socket path is fixed, so the daemon runs in a private mount
    namespace whose /run is a test folder holding our socket."""
    run = Path(tempfile.mkdtemp(prefix="nodo-run-"))
    (run / "systemd" / "journal").mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(run / "systemd" / "journal" / "socket"))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    got, stop = [], threading.Event()

    def receive():
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                got.append(read_journal_datagram(sock.recv(1 << 16)))
            except socket.timeout:
                continue

    th = threading.Thread(target=receive, daemon=True)
    th.start()
    d = node(start=False)
    d.write_env()
    err = open(d.log_path, "ab")
    st = os.fstat(err.fileno())
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
           "JOURNAL_STREAM": f"{st.st_dev}:{st.st_ino}",
           "ASAN_OPTIONS": "detect_leaks=1:abort_on_error=0"}
    proc = subprocess.Popen(
        ["unshare", "-m", "--", "sh", "-c",
         'mount --bind "$0" /run && exec "$@"', str(run),
         str(BUILD / "odoo-local-api"), "--config", str(d.env_file)],
        stdout=err, stderr=err, env=env)
    d.proc, d.logf = proc, err
    try:
        d.wait_ready()
        assert d.create("acme").status_code == 201
        assert d.create("acme").status_code == 409
        assert d.create("other-one").status_code == 201
        assert d.delete("/api/tenant?subdomain=acme").status_code == 200
        wait_for(lambda: any("deleted" in f.get("MESSAGE", "")
                             and f.get("TENANT") == "acme" for f in got),
                 10, "the delete in the journal")
    finally:
        assert d.stop() == 0
        stop.set()
        th.join()
        sock.close()
        shutil.rmtree(run, ignore_errors=True)
    story = [f["MESSAGE"] for f in got if f.get("TENANT") == "acme"]
    assert any(m.startswith("tenant acme created from tcs") for m in story)
    assert any(m.startswith("tenant acme not created") for m in story)
    assert any(m.startswith("tenant acme deleted") for m in story)
    assert any(m.startswith("dns acme.sajet.us: created") for m in story)
    assert not any("other-one" in m for m in story)
    for f in got:
        assert f["SYSLOG_IDENTIFIER"] == "odoo-local-api"
        assert f["PRIORITY"] in "01234567"
    # Request lines name the client; they belong to no tenant.
    reqs = [f for f in got if f["MESSAGE"].startswith("POST /api/tenant ")]
    assert len(reqs) == 3
    assert all("from 127.0.0.1" in f["MESSAGE"] and "TENANT" not in f
               for f in reqs)
    # Nothing went to stderr: the journal took every line.
    assert "tenant acme" not in d.log()
