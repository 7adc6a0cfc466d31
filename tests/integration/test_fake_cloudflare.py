"""Tests of the fake Cloudflare DNS API (tests/fakes/fake_cloudflare.py).

Run with:  /usr/bin/python3 -m pytest -q tests/integration/test_fake_cloudflare.py

The fake runs with response validation on: after every test, each response
it produced must have matched the OpenAPI response schema, no request may
have been recorded as a schema violation unless the test expected it (and
cleared the list), and the fake must not have hit an internal error.
"""

import http.client
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from fakes.fake_cloudflare import (  # noqa: E402
    ZONE_OTRO,
    ZONE_SAJET,
    FakeCloudflare,
)

TOKEN = "test-token"
AUTH = {"Authorization": "Bearer " + TOKEN}
TUNNEL = "6ff42ae2-765d-4adf-8112-31c55c1551ef.cfargotunnel.com"
HEX32 = re.compile(r"^[0-9a-f]{32}$")
FAKE_PY = Path(__file__).resolve().parents[1] / "fakes" / "fake_cloudflare.py"


@pytest.fixture(scope="module")
def server():
    cf = FakeCloudflare(token=TOKEN, validate_responses=True)
    cf.start()
    yield cf
    cf.stop()


@pytest.fixture
def cf(server):
    server.reset()
    yield server
    assert server.internal_errors == []
    assert server.response_violations == []
    assert server.schema_violations == []


@pytest.fixture
def api():
    with requests.Session() as s:
        s.headers.update(AUTH)
        yield s


def records_url(cf, zone=ZONE_SAJET, rid=None):
    url = "%s/zones/%s/dns_records" % (cf.url, zone)
    return url + "/" + rid if rid else url


def cname(name, content=TUNNEL, **extra):
    body = {"type": "CNAME", "name": name, "content": content, "ttl": 1, "proxied": True}
    body.update(extra)
    return body


def error_codes(resp):
    body = resp.json()
    assert body["success"] is False
    assert body["result"] is None
    assert body["messages"] == []
    return [e["code"] for e in body["errors"]]


def expect_violation(cf, *needles):
    """The last request was recorded as a schema violation mentioning all needles."""
    assert cf.schema_violations, "no schema violation recorded"
    last = cf.schema_violations[-1]
    for needle in needles:
        assert needle in last, (needle, last)
    cf.schema_violations.clear()


# --- lifecycle --------------------------------------------------------------


def test_start_and_stop_bind_a_free_port_and_release_it():
    cf = FakeCloudflare()
    url = cf.start()
    assert re.match(r"^http://127\.0\.0\.1:\d+/client/v4$", url)
    assert cf.url == url
    resp = requests.get(url + "/zones", headers=AUTH, timeout=5)
    assert resp.status_code == 200
    assert {z["name"] for z in resp.json()["result"]} == {"sajet.us", "otro.dominio"}
    cf.stop()
    cf.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/zones", headers=AUTH, timeout=2)


def test_context_manager_and_custom_zones():
    zid = "ab" * 16
    with FakeCloudflare(token="other", zones={"example.test": zid}) as cf:
        resp = requests.get(cf.url + "/zones", headers={"Authorization": "Bearer other"}, timeout=5)
        assert [z["id"] for z in resp.json()["result"]] == [zid]
        assert cf.schema_violations == []
    with pytest.raises(ValueError):
        FakeCloudflare(zones={"bad.test": "not-hex"})


def test_cli_serves_until_sigterm():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_PY), "--port", str(port), "--token", "T",
         "--zone", "sajet.us=" + ZONE_SAJET],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = proc.stdout.readline().strip()
        assert line == "http://127.0.0.1:%d/client/v4" % port
        resp = requests.get(line + "/zones?name=sajet.us", headers={"Authorization": "Bearer T"}, timeout=5)
        assert resp.json()["result"][0]["id"] == ZONE_SAJET
        resp = requests.get(line + "/zones/%s/dns_records" % ZONE_OTRO,
                            headers={"Authorization": "Bearer T"}, timeout=5)
        assert resp.status_code == 403  # only the zone given on the command line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --- records: create, list, paging, names ----------------------------------


def test_create_returns_full_record_with_fqdn_and_defaults(cf, api):
    resp = api.post(records_url(cf), json={"type": "CNAME", "name": "acme", "content": TUNNEL, "ttl": 1})
    assert resp.status_code == 200
    env = resp.json()
    assert env["success"] is True and env["errors"] == [] and env["messages"] == []
    rec = env["result"]
    assert HEX32.match(rec["id"])
    assert rec["name"] == "acme.sajet.us"
    assert rec["type"] == "CNAME" and rec["content"] == TUNNEL
    assert rec["proxied"] is False  # default when absent
    assert rec["proxiable"] is True
    assert rec["ttl"] == 1
    assert "comment" not in rec  # omitted when empty
    assert rec["created_on"].endswith("Z") and rec["created_on"] == rec["modified_on"]
    assert cf.records(ZONE_SAJET) == [rec]
    assert cf.records(ZONE_OTRO) == []


def test_names_apex_and_trailing_dot_and_comment(cf, api):
    apex = api.post(records_url(cf), json={"type": "TXT", "name": "@", "content": "v=1", "ttl": 1}).json()
    assert apex["result"]["name"] == "sajet.us"
    full = api.post(records_url(cf), json=cname("Shop.Sajet.US.", comment="managed-by=nodo")).json()
    assert full["result"]["name"] == "shop.sajet.us"
    assert full["result"]["comment"] == "managed-by=nodo"
    assert full["result"]["proxied"] is True
    other = api.post(records_url(cf, ZONE_OTRO), json=cname("acme")).json()
    assert other["result"]["name"] == "acme.otro.dominio"


def test_list_filters_name_case_insensitive_type_content_comment(cf, api):
    a = cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL, proxied=True, comment="managed-by=nodo")
    cf.add_record(ZONE_SAJET, "TXT", "acme", "hello")
    cf.add_record(ZONE_SAJET, "A", "www", "192.0.2.1")
    cf.add_record(ZONE_OTRO, "CNAME", "acme", TUNNEL)

    def ids(**params):
        resp = api.get(records_url(cf), params=params)
        assert resp.status_code == 200
        return [r["id"] for r in resp.json()["result"]]

    assert len(ids(name="ACME.Sajet.us")) == 2
    assert len(ids(**{"name.exact": "acme.SAJET.us"})) == 2
    assert ids(type="CNAME", name="acme.sajet.us") == [a]
    assert ids(content=TUNNEL) == [a]
    assert ids(comment="managed-by=nodo") == [a]
    assert len(ids(**{"name.endswith": ".sajet.us"})) == 3
    assert len(ids(type="A", content=TUNNEL, match="any")) == 2
    assert ids(name="nobody.sajet.us") == []
    assert len(ids()) == 3


def test_empty_match_is_success_with_empty_result(cf, api):
    resp = api.get(records_url(cf), params={"name": "ghost.sajet.us", "type": "CNAME"})
    assert resp.status_code == 200
    assert resp.json() == {
        "success": True, "errors": [], "messages": [], "result": [],
        "result_info": {"page": 1, "per_page": 100, "count": 0, "total_count": 0, "total_pages": 0},
    }


def test_paging_counts_and_total_pages(cf, api):
    for i in range(7):
        cf.add_record(ZONE_SAJET, "CNAME", "t%d" % i, TUNNEL)
    seen = []
    for page, expected in ((1, 3), (2, 3), (3, 1), (4, 0)):
        resp = api.get(records_url(cf), params={"per_page": 3, "page": page})
        body = resp.json()
        assert resp.status_code == 200
        assert body["result_info"] == {"page": page, "per_page": 3, "count": expected,
                                       "total_count": 7, "total_pages": 3}
        seen += [r["name"] for r in body["result"]]
    assert sorted(seen) == sorted("t%d.sajet.us" % i for i in range(7))
    assert len(set(seen)) == 7
    desc = api.get(records_url(cf), params={"order": "name", "direction": "desc"}).json()["result"]
    assert [r["name"] for r in desc] == sorted(seen, reverse=True)


def test_get_single_record_and_unknown_id(cf, api):
    rid = cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL)
    resp = api.get(records_url(cf, rid=rid))
    assert resp.status_code == 200 and resp.json()["result"]["id"] == rid
    resp = api.get(records_url(cf, rid="f" * 32))
    assert resp.status_code == 404 and error_codes(resp) == [81044]
    # a record of another zone is not visible through this zone
    resp = api.get(records_url(cf, ZONE_OTRO, rid=rid))
    assert resp.status_code == 404 and error_codes(resp) == [81044]


# --- conflicts and content errors -----------------------------------------


@pytest.mark.parametrize("existing", ["A", "AAAA", "CNAME"])
def test_cname_over_a_aaaa_or_cname_is_81053(cf, api, existing):
    content = {"A": "192.0.2.1", "AAAA": "2001:db8::1", "CNAME": TUNNEL}[existing]
    cf.add_record(ZONE_SAJET, existing, "acme.sajet.us", content)
    resp = api.post(records_url(cf), json=cname("ACME.sajet.us"))
    assert resp.status_code == 400
    assert error_codes(resp) == [81053]
    assert resp.json()["errors"][0]["message"] == "An A, AAAA, or CNAME record with that host already exists."
    assert len(cf.records()) == 1


@pytest.mark.parametrize("rtype,content", [("A", "192.0.2.7"), ("AAAA", "2001:db8::7")])
def test_a_or_aaaa_over_cname_is_81054(cf, api, rtype, content):
    cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL)
    resp = api.post(records_url(cf), json={"type": rtype, "name": "acme.sajet.us", "content": content, "ttl": 1})
    assert resp.status_code == 400 and error_codes(resp) == [81054]


def test_identical_record_is_81058_but_different_content_is_fine(cf, api):
    body = {"type": "TXT", "name": "acme.sajet.us", "content": "owner=nodo", "ttl": 1}
    assert api.post(records_url(cf), json=body).status_code == 200
    resp = api.post(records_url(cf), json=body)
    assert resp.status_code == 400 and error_codes(resp) == [81058]
    assert resp.json()["errors"][0]["message"] == "An identical record already exists."
    body["content"] = "owner=else"
    assert api.post(records_url(cf), json=body).status_code == 200
    assert len(cf.records()) == 2
    # A and CNAME on other names, and two A records on one name, coexist
    assert api.post(records_url(cf), json=cname("b")).status_code == 200
    for ip in ("192.0.2.1", "192.0.2.2"):
        assert api.post(records_url(cf), json={"type": "A", "name": "c", "content": ip, "ttl": 1}).status_code == 200


@pytest.mark.parametrize("content", ["acme.sajet.us", "ACME.sajet.us.", ""])
def test_bad_cname_content_is_1004_with_9007(cf, api, content):
    resp = api.post(records_url(cf), json=cname("acme", content=content))
    assert resp.status_code == 400
    err = resp.json()["errors"][0]
    assert err["code"] == 1004
    assert [c["code"] for c in err["error_chain"]] == [9007]
    assert cf.records() == []


# --- update and delete ------------------------------------------------------


def test_delete_then_81044(cf, api):
    rid = cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL)
    resp = api.delete(records_url(cf, rid=rid))
    assert resp.status_code == 200
    assert resp.json() == {"success": True, "errors": [], "messages": [], "result": {"id": rid}}
    assert cf.records() == []
    resp = api.delete(records_url(cf, rid=rid))
    assert resp.status_code == 404
    assert error_codes(resp) == [81044]
    assert resp.json()["errors"][0]["message"] == "Record does not exist."


def test_patch_changes_only_sent_fields_put_resets_the_rest(cf, api):
    rid = cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL, proxied=True, comment="managed-by=nodo")
    resp = api.patch(records_url(cf, rid=rid), json={"content": "new.cfargotunnel.com"})
    assert resp.status_code == 200
    rec = resp.json()["result"]
    assert rec["content"] == "new.cfargotunnel.com"
    assert rec["proxied"] is True and rec["comment"] == "managed-by=nodo"
    resp = api.put(records_url(cf, rid=rid), json={"type": "CNAME", "name": "acme.sajet.us", "content": TUNNEL})
    assert resp.status_code == 200
    rec = resp.json()["result"]
    assert rec["id"] == rid and rec["content"] == TUNNEL
    assert rec["proxied"] is False and rec["ttl"] == 1 and "comment" not in rec
    assert rec["modified_on"] >= rec["created_on"]
    assert cf.records() == [rec]


def test_patch_into_conflict_is_refused(cf, api):
    cf.add_record(ZONE_SAJET, "A", "www", "192.0.2.1")
    rid = cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL)
    resp = api.patch(records_url(cf, rid=rid), json={"name": "www.sajet.us"})
    assert resp.status_code == 400 and error_codes(resp) == [81053]
    assert cf.records()[1]["name"] == "acme.sajet.us"


# --- auth and routing -------------------------------------------------------


@pytest.mark.parametrize("header", [None, "test-token", "Basic dGVzdA==", "Bearer ", "Bearer a b", "Bearer tok\u00e9n"])
def test_missing_or_garbled_authorization_is_6003_6111(cf, header):
    headers = {} if header is None else {"Authorization": header.encode("utf-8")}
    resp = requests.get(records_url(cf), headers=headers, timeout=5)
    assert resp.status_code == 400
    assert error_codes(resp) == [6003]
    assert resp.json()["errors"][0]["error_chain"] == [
        {"code": 6111, "message": "Invalid format for Authorization header"}]


def test_wrong_token_is_403_9109(cf):
    resp = requests.post(records_url(cf), json=cname("acme"), headers={"Authorization": "Bearer nope"}, timeout=5)
    assert resp.status_code == 403
    assert error_codes(resp) == [9109]
    assert resp.json()["errors"][0]["message"] == "Invalid access token"
    assert cf.records() == []


def test_unknown_zone_is_403_10000(cf, api):
    resp = api.get(records_url(cf, zone="0123456789abcdef" * 2))
    assert resp.status_code == 403
    assert error_codes(resp) == [10000]
    assert resp.json()["errors"][0]["message"] == "Authentication error"


@pytest.mark.parametrize("path", [
    "/zones/not-a-zone/dns_records",
    "/zones/%s/dns_records/xyz" % ZONE_SAJET,
    "/zones/%s/dns_records/" % ZONE_SAJET,
    "/zones/%s/dns_records/batch" % ZONE_SAJET,
    "/user/tokens/verify",
    "/nothing",
])
def test_bad_ids_and_unknown_routes_are_7003_7000(cf, api, path):
    resp = api.get(cf.url + path)
    assert resp.status_code == 400
    assert error_codes(resp) == [7003, 7000]
    assert resp.json()["errors"][1]["message"] == "No route for that URI"


def test_unsupported_method_on_a_known_path_is_no_route(cf, api):
    resp = api.post(records_url(cf, rid="a" * 32), json=cname("acme"))
    assert resp.status_code == 400 and error_codes(resp) == [7003, 7000]


# --- zones --------------------------------------------------------------------


def test_zone_lookup_by_name(cf, api):
    resp = api.get(cf.url + "/zones", params={"name": "sajet.us", "status": "active", "per_page": 50})
    assert resp.status_code == 200
    body = resp.json()
    assert [z["id"] for z in body["result"]] == [ZONE_SAJET]
    assert body["result"][0]["name"] == "sajet.us"
    assert body["result_info"]["total_count"] == 1
    resp = api.get(cf.url + "/zones", params={"name": "unknown.example"})
    assert resp.status_code == 200 and resp.json()["result"] == []


# --- schema validation of requests -------------------------------------------


def test_valid_requests_leave_no_violation(cf, api):
    rid = api.post(records_url(cf), json=cname("acme", comment="managed-by=nodo")).json()["result"]["id"]
    api.get(records_url(cf), params={"type": "CNAME", "name": "acme.sajet.us", "per_page": 5000,
                                       "page": 1, "match": "all", "order": "type", "direction": "asc",
                                       "name.exact": "acme.sajet.us", "content.contains": "cfargotunnel",
                                       "comment.startswith": "managed", "proxied": "true"})
    api.patch(records_url(cf, rid=rid), json={"proxied": True})  # partial body: nothing required
    api.delete(records_url(cf, rid=rid))
    assert cf.schema_violations == []
    assert [r["status"] for r in cf.requests] == [200, 200, 200, 200]


@pytest.mark.parametrize("body,needle", [
    (cname("acme", ttl="abc"), "ttl"),
    (cname("acme", ttl=5), "ttl"),
    (cname("acme", proxied="yes"), "proxied"),
    ({"name": "acme", "content": TUNNEL, "ttl": 1}, "type"),
    ({"type": "CNAME", "content": TUNNEL, "ttl": 1}, "'name' is a required property"),
    ({"type": "A", "name": "acme", "content": "not-an-ip", "ttl": 1}, "ipv4"),
    ({"type": "BOGUS", "name": "acme", "content": "x", "ttl": 1}, "not valid under any"),
    ([cname("acme")], "body"),
])
def test_schema_violating_bodies_are_recorded_and_refused(cf, api, body, needle):
    resp = api.post(records_url(cf), json=body)
    assert resp.status_code == 400
    assert error_codes(resp) == [1004]
    expect_violation(cf, "POST /client/v4/zones/%s/dns_records" % ZONE_SAJET, needle)
    assert cf.records() == []


@pytest.mark.parametrize("params,needle", [
    ({"per_page": 0}, "per_page"),
    ({"per_page": 5000001}, "per_page"),
    ({"page": "abc"}, "page"),
    ({"page": 0}, "page"),
    ({"direction": "up"}, "direction"),
    ({"order": "id"}, "order"),
    ({"match": "some"}, "match"),
    ({"proxied": "yes"}, "proxied"),
    ({"foo": "1"}, "unknown query parameter 'foo'"),
    ({"name.regex": "a.*"}, "unknown query parameter 'name.regex'"),
])
def test_schema_violating_query_parameters(cf, api, params, needle):
    resp = api.get(records_url(cf), params=params)
    assert resp.status_code == 400 and error_codes(resp) == [1004]
    expect_violation(cf, needle)


def test_zones_query_is_checked_against_the_zones_schema(cf, api):
    resp = api.get(cf.url + "/zones", params={"name": "sajet.us", "per_page": 100})
    assert resp.status_code == 400
    expect_violation(cf, "GET /client/v4/zones?", "per_page", "50")


def test_body_needs_json_content_type_and_valid_json(cf, api):
    raw = json.dumps(cname("acme"))
    resp = api.post(records_url(cf), data=raw, headers={"Content-Type": "text/plain"})
    assert resp.status_code == 400
    expect_violation(cf, "Content-Type")
    resp = api.post(records_url(cf), data="{not json", headers={"Content-Type": "application/json"})
    assert resp.status_code == 400 and error_codes(resp) == [9207]
    expect_violation(cf, "not JSON")
    resp = api.post(records_url(cf))
    assert resp.status_code == 400
    expect_violation(cf, "request body required")
    resp = api.get(records_url(cf), params={"type": "A"}, json={"x": 1})
    assert resp.status_code == 400
    expect_violation(cf, "GET takes no request body")
    assert cf.records() == []


def test_read_only_fields_are_not_required_in_requests(cf):
    op = cf.schemas.op("POST", "/zones/{zone_id}/dns_records")
    cname_branch = op.branch_validators["CNAME"].schema
    assert sorted(cname_branch["required"]) == ["content", "name", "type"]
    caa_branch = op.branch_validators["CAA"].schema  # content is read-only for CAA
    assert sorted(caa_branch["required"]) == ["data", "name", "type"]
    assert list(op.body_validator.iter_errors(cname("acme"))) == []
    patch = cf.schemas.op("PATCH", "/zones/{zone_id}/dns_records/{dns_record_id}")
    assert list(patch.body_validator.iter_errors({"comment": "x"})) == []
    assert list(patch.body_validator.iter_errors({"ttl": "abc"})) != []


# --- faults -------------------------------------------------------------------


def test_injected_500_with_empty_body_then_normal(cf, api):
    cf.inject(500)
    resp = api.get(records_url(cf))
    assert resp.status_code == 500 and resp.content == b""
    assert api.get(records_url(cf)).status_code == 200
    assert [r["status"] for r in cf.requests] == [500, 200]


def test_rate_limit_429_with_retry_after(cf, api):
    cf.rate_limit(retry_after=7, count=2)
    for _ in range(2):
        resp = api.post(records_url(cf), json=cname("acme"))
        assert resp.status_code == 429
        assert resp.headers["Retry-After"] == "7"
        assert resp.json() == {
            "success": False,
            "errors": [{"code": 10429,
                        "message": "Rate limited. Please wait and consider throttling your request speed"}],
            "messages": [], "result": None,
        }
    assert cf.records() == []  # a faulted request is not processed
    assert api.post(records_url(cf), json=cname("acme")).status_code == 200
    cf.rate_limit()
    resp = api.get(records_url(cf))
    assert resp.status_code == 429 and "Retry-After" not in resp.headers


def test_fault_match_forever_and_clear(cf, api):
    cf.inject(503, {"success": False, "errors": [{"code": 1000, "message": "x"}], "messages": [], "result": None},
              headers={"X-Test": "1"}, count=None, match="POST ")
    for _ in range(3):
        resp = api.post(records_url(cf), json=cname("acme"))
        assert resp.status_code == 503 and resp.headers["X-Test"] == "1"
        assert resp.json()["errors"][0]["code"] == 1000
    assert api.get(records_url(cf)).status_code == 200  # GET does not match
    cf.clear_faults()
    assert api.post(records_url(cf), json=cname("acme")).status_code == 200
    assert cf.count("POST") == 4 and cf.count("GET") == 1


def test_injected_delay_and_global_delay(cf, api):
    cf.inject(502, b"bad gateway", delay=0.3)
    t0 = time.monotonic()
    resp = api.get(records_url(cf))
    assert resp.status_code == 502 and resp.content == b"bad gateway"
    assert time.monotonic() - t0 >= 0.3
    cf.set_delay(1.0)
    with pytest.raises(requests.Timeout):
        api.post(records_url(cf), json=cname("acme"), timeout=0.3)
    cf.set_delay(0)
    # the request was processed; only its answer was late
    assert [r["name"] for r in cf.records()] == ["acme.sajet.us"]
    t0 = time.monotonic()
    assert api.get(records_url(cf), timeout=2).status_code == 200
    assert time.monotonic() - t0 < 0.5


def test_cut_reply_sends_fewer_bytes_than_content_length(cf):
    cf.inject(200, "CUT")
    u = urlsplit(cf.url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=5)
    try:
        conn.request("GET", u.path + "/zones/%s/dns_records" % ZONE_SAJET, headers=AUTH)
        resp = conn.getresponse()
        assert resp.status == 200
        declared = int(resp.getheader("Content-Length"))
        with pytest.raises(http.client.IncompleteRead) as info:
            resp.read()
        assert 0 < len(info.value.partial) < declared
    finally:
        conn.close()
    assert cf.requests[-1]["status"] == 200


# --- bookkeeping -------------------------------------------------------------


def test_requests_are_recorded_with_parsed_parts(cf, api):
    api.post(records_url(cf), json=cname("acme"), headers={"X-Extra": "yes"})
    api.get(records_url(cf), params={"name": "acme.sajet.us", "type": "CNAME"})
    post, get = cf.requests
    assert post["method"] == "POST"
    assert post["path"] == "/client/v4/zones/%s/dns_records" % ZONE_SAJET
    assert post["body"] == cname("acme")
    assert post["headers"]["authorization"] == "Bearer test-token"
    assert post["headers"]["x-extra"] == "yes"
    assert post["status"] == 200
    assert get["query"] == {"name": ["acme.sajet.us"], "type": ["CNAME"]}
    assert get["body"] is None
    assert post["time"] <= get["time"] <= time.monotonic()
    assert cf.count() == 2
    assert cf.count("get", "name=acme.sajet.us") == 1
    assert cf.count("DELETE") == 0


def test_reset_forgets_everything(cf, api):
    cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL)
    api.get(records_url(cf), params={"bogus": "1"})
    assert cf.schema_violations
    cf.inject(500, count=None)
    cf.set_delay(5)
    cf.reset()
    assert cf.records() == [] and cf.requests == [] and cf.schema_violations == []
    t0 = time.monotonic()
    assert api.get(records_url(cf)).status_code == 200
    assert time.monotonic() - t0 < 1


def test_concurrent_creates_of_one_name_yield_exactly_one_record(cf):
    statuses = []
    lock = threading.Lock()

    def worker():
        resp = requests.post(records_url(cf), json=cname("race"), headers=AUTH, timeout=5)
        with lock:
            statuses.append((resp.status_code, error_codes(resp) if resp.status_code != 200 else None))

    threads = [threading.Thread(target=worker) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(s for s, _ in statuses) == [200] + [400] * 11
    assert all(codes == [81053] for s, codes in statuses if s == 400)
    assert len(cf.records()) == 1


# --- response schema self-test --------------------------------------------------


def test_every_normal_response_matches_the_response_schema(cf, api):
    zid = ZONE_SAJET
    rid = api.post(records_url(cf), json=cname("acme", comment="c")).json()["result"]["id"]
    cf.add_record(zid, "A", "www", "192.0.2.1")
    cf.add_record(zid, "AAAA", "www", "2001:db8::1")
    cf.add_record(zid, "TXT", "@", "v=spf1 -all")
    api.get(records_url(cf), params={"per_page": 2})
    api.get(records_url(cf, rid=rid))
    api.patch(records_url(cf, rid=rid), json={"proxied": False})
    api.put(records_url(cf, rid=rid), json=cname("acme.sajet.us"))
    api.post(records_url(cf), json=cname("www"))           # 81053
    api.get(records_url(cf, rid="0" * 32))                  # 81044
    api.delete(records_url(cf, rid=rid))
    api.get(cf.url + "/zones", params={"name": "sajet.us"})
    requests.get(records_url(cf), timeout=5)                 # 6003
    requests.get(records_url(cf), headers={"Authorization": "Bearer x"}, timeout=5)  # 9109
    api.get(records_url(cf, zone="1" * 32))                 # 10000
    assert cf.responses_validated == 12
    assert cf.response_violations == []


def test_response_validator_catches_drift(cf):
    book = cf.schemas
    good = {"success": True, "errors": [], "messages": [], "result": cf.records() or [],
            "result_info": {"page": 1, "per_page": 100, "count": 0, "total_count": 0, "total_pages": 0}}
    assert book.validate_response("GET", "/zones/{zone_id}/dns_records", 200, good) == []
    rid = cf.add_record(ZONE_SAJET, "CNAME", "acme", TUNNEL)
    rec = cf.records()[0]
    single = {"success": True, "errors": [], "messages": [], "result": rec}
    assert book.validate_response("GET", "/zones/{zone_id}/dns_records/{dns_record_id}", 200, single) == []
    for field in ("id", "proxiable", "created_on"):
        broken = dict(rec)
        del broken[field]
        problems = book.validate_response("GET", "/zones/{zone_id}/dns_records/{dns_record_id}", 200,
                                          {"success": True, "errors": [], "messages": [], "result": broken})
        assert problems and field in " ".join(problems)
    bad_date = dict(rec, modified_on="yesterday")
    assert book.validate_response("PATCH", "/zones/{zone_id}/dns_records/{dns_record_id}", 200,
                                  {"success": True, "errors": [], "messages": [], "result": bad_date})
    assert book.validate_response("DELETE", "/zones/{zone_id}/dns_records/{dns_record_id}", 404,
                                  {"success": False, "errors": [], "messages": [], "result": None})
    assert book.validate_response("POST", "/zones/{zone_id}/dns_records", 400,
                                  {"success": True, "errors": [{"code": 1, "message": "x"}],
                                   "messages": [], "result": None})
    assert rid == rec["id"]


def test_schema_dir_is_the_projects_own_copy(tmp_path, monkeypatch):
    """The schemas come from tests/fakes/schema; nothing outside the
    repository is consulted, whatever the environment says."""
    from fakes.fake_cloudflare import (DNS_SPEC_FILE, SCHEMA_DIR,
                                       ZONES_SPEC_FILE, find_schema_dir)

    root = Path(__file__).resolve().parents[2]
    assert find_schema_dir() == SCHEMA_DIR
    assert SCHEMA_DIR.resolve().is_relative_to(root.resolve())
    assert (SCHEMA_DIR / DNS_SPEC_FILE).is_file()
    assert (SCHEMA_DIR / ZONES_SPEC_FILE).is_file()
    monkeypatch.setenv("NODO_SHARED_DIR", str(tmp_path / "missing"))
    assert find_schema_dir() == SCHEMA_DIR  # the old override is gone
    assert find_schema_dir(SCHEMA_DIR) == SCHEMA_DIR  # explicit argument wins
    with pytest.raises(FileNotFoundError):
        FakeCloudflare(schema_dir=tmp_path / "missing")
