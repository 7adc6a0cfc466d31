"""docs/openapi.yaml against the running odoo-local-api.

Every response the daemon gives here must be documented for its operation
(path, method, status), with a body that validates against the documented
schema ($refs resolved inside the document), the documented content type
and headers. The documented paths and methods must be exactly the daemon's
routes (the routes[] table of src/api/http.c), and a wrong method must be
answered with an Allow header that lists exactly the documented methods.
"""
import copy
import os
import re
from pathlib import Path

import jsonschema
import pytest
import yaml

from conftest import ROOT, TUNNEL_ID, ZONE_SAJET, clone_tcs, drop_template

SPEC_PATH = ROOT / "docs" / "openapi.yaml"
HTTP_C = ROOT / "src" / "api" / "http.c"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch",
           "trace")
TARGET = f"{TUNNEL_ID}.cfargotunnel.com"
BIG = "x" * (64 * 1024 + 1)  # one byte over the documented limit


def _openapi_to_jsonschema(node):
    """OpenAPI 3.0 `nullable: true` is JSON Schema's type [T, "null"]."""
    if isinstance(node, dict):
        out = {k: _openapi_to_jsonschema(v) for k, v in node.items()}
        if out.pop("nullable", False) and "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
        return out
    if isinstance(node, list):
        return [_openapi_to_jsonschema(v) for v in node]
    return node


RAW = yaml.safe_load(SPEC_PATH.read_text())
SPEC = _openapi_to_jsonschema(copy.deepcopy(RAW))
RESOLVER = jsonschema.RefResolver.from_schema(SPEC)


def deref(obj):
    """Follows a local $ref (#/a/b) to the object it names."""
    while isinstance(obj, dict) and "$ref" in obj:
        ref = obj["$ref"]
        assert ref.startswith("#/"), f"non-local $ref {ref}"
        node = SPEC
        for part in ref[2:].split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


def operations(path):
    item = SPEC["paths"][path]
    return {m.upper(): op for m, op in item.items() if m in METHODS}


def daemon_routes():
    """(method, path) pairs of the routes[] table in src/api/http.c."""
    text = HTTP_C.read_text()
    table = re.search(r"routes\[\]\s*=\s*\{(.*?)\n\};", text, re.S)
    assert table, "routes[] table not found in http.c"
    pairs = re.findall(r'\{\s*"(/[^"]*)",\s*"([A-Z]+)"', table.group(1))
    assert pairs, "no route found in http.c"
    return {(m, p) for p, m in pairs}


def check_body(resp, response_obj, where):
    content = response_obj.get("content")
    if content is None:
        assert not resp.content, f"{where}: undocumented body {resp.text!r}"
        return
    ctype = resp.headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype in content, (
        f"{where}: Content-Type {ctype!r} not documented "
        f"({sorted(content)})")
    schema = content[ctype].get("schema")
    if schema is None:
        return
    try:
        jsonschema.Draft7Validator(schema, resolver=RESOLVER).validate(
            resp.json())
    except jsonschema.ValidationError as e:
        pytest.fail(f"{where}: body {resp.text} does not match the "
                    f"documented schema: {e.message} at "
                    f"{list(e.absolute_path)}")


def check_headers(resp, response_obj, where):
    for name, h in (response_obj.get("headers") or {}).items():
        h = deref(h)
        if h.get("required", True):
            assert name in resp.headers, f"{where}: header {name} missing"


def check(resp, method, path, expect=None):
    """resp answers `method path`: documented status, schema, headers."""
    where = f"{method} {path} -> {resp.status_code}"
    if expect is not None:
        assert resp.status_code == expect, f"{where}: {resp.text}"
    ops = operations(path)
    status = str(resp.status_code)
    if method in ops:
        responses = ops[method]["responses"]
        assert status in responses, (
            f"{where} is not documented (documented: "
            f"{sorted(responses)}): {resp.text}")
        response_obj = deref(responses[status])
    else:
        # A method the path does not serve: 405, documented on the path's
        # operations, with an Allow header listing exactly them.
        assert resp.status_code == 405, f"{where}: {resp.text}"
        documented = [deref(op["responses"].get("405"))
                      for op in ops.values() if "405" in op["responses"]]
        assert documented, f"{where}: 405 documented on no operation"
        response_obj = documented[0]
        allow = {m.strip() for m in resp.headers.get("Allow", "").split(",")}
        assert allow == set(ops), f"{where}: Allow {allow} != {set(ops)}"
    check_headers(resp, response_obj, where)
    if method != "HEAD":
        check_body(resp, response_obj, where)
    return resp


def check_component(resp, name, expect):
    """A response documented as components/responses/<name> (routes that
    are not in paths: unknown routes)."""
    where = f"{name} -> {resp.status_code}"
    assert resp.status_code == expect, f"{where}: {resp.text}"
    response_obj = SPEC["components"]["responses"][name]
    check_headers(resp, response_obj, where)
    check_body(resp, response_obj, where)


# --------------------------------------------------------------- the spec


def test_documented_paths_are_the_daemons_routes():
    routes = daemon_routes()
    assert set(SPEC["paths"]) == {p for _, p in routes}
    assert set(SPEC["paths"]) == {"/health", "/api/tenants", "/api/tenant",
                                  "/api/domains", "/api/node", "/metrics",
                                  "/api/tenants/{subdomain}",
                                  "/api/tenants/{subdomain}/backup",
                                  "/api/tenants/{subdomain}/password",
                                  "/api/tenant/restore",
                                  "/api/tenants/{subdomain}/suspend",
                                  "/api/tenants/{subdomain}/resume",
                                  "/api/trash", "/api/trash/{id}",
                                  "/api/trash/{id}/restore"}
    documented = {(m, p) for p in SPEC["paths"] for m in operations(p)}
    assert documented == routes


def test_every_ref_resolves_and_codes_are_known():
    codes = set(SPEC["components"]["schemas"]["ErrorCode"]["enum"])

    def walk(node, trail):
        if isinstance(node, dict):
            if "$ref" in node:
                deref(node)  # raises KeyError when dangling
            for k, v in node.items():
                walk(v, trail + [k])
        elif isinstance(node, list):
            for i, v in enumerate(node):
                walk(v, trail + [i])

    walk(SPEC, [])
    # Every documented error example carries a known code.
    for path in SPEC["paths"]:
        for method, op in operations(path).items():
            for status, r in op["responses"].items():
                r = deref(r)
                for media in (r.get("content") or {}).values():
                    ex = media.get("example")
                    if isinstance(ex, dict) and "code" in ex:
                        assert ex["code"] in codes, (method, path, status)
                    if "example" in media and "schema" in media:
                        jsonschema.Draft7Validator(
                            media["schema"], resolver=RESOLVER).validate(ex)


# ------------------------------------------------------------- the daemon


def test_routes_answer_as_documented(api, pg, data_dir, cloudflare):
    bad_key = {"X-API-KEY": "wrong-key-0123456789"}

    # Every documented operation exists (neither 404 nor 405).
    for path in SPEC["paths"]:
        for method in operations(path):
            if method in ("POST", "DELETE"):
                continue  # they change things: exercised below
            r = api.request(method, path)
            assert r.status_code not in (404, 405), (method, path, r.text)

    # /health
    check(api.get("/health", key=False), "GET", "/health", 200)
    check(api.get("/health", key=False, data="{}"), "GET", "/health", 400)
    check(api.get("/health", key=False, data=BIG), "GET", "/health", 413)
    check(api.post("/health", key=False), "POST", "/health", 405)
    check(api.request("HEAD", "/health", key=False), "HEAD", "/health", 405)
    check(api.request("PUT", "/health", key=False), "PUT", "/health", 405)

    # POST /api/tenant: 201 and every cheap error
    P = "/api/tenant"
    check(api.create("oa-one"), "POST", P, 201)
    check(api.create("oa-one"), "POST", P, 409)
    check(api.post(P, data="not json"), "POST", P, 400)
    check(api.post(P, data="[1, 2]"), "POST", P, 400)
    check(api.post(P, data=b'{"subdomain": "oa-x", "admin_password": '
                           b'"a\\u0000b"}'), "POST", P, 422)
    check(api.post(P, data=b'{"subdomain": "oa-x", "admin_password": '
                           b'"\xff"}'), "POST", P, 400)
    check(api.post(P, data="[" * 17 + "]" * 17), "POST", P, 400)
    check(api.post(P, json={"subdomain": "oa-x"}), "POST", P, 400)
    check(api.post(P, json={"subdomain": 5, "admin_password": "pw"}),
          "POST", P, 400)
    check(api.post(P, data='{"subdomain": "oa-x", "subdomain": "oa-y", '
                           '"admin_password": "pw"}'), "POST", P, 400)
    check(api.post(P, key=False, json={"subdomain": "oa-x",
                                       "admin_password": "pw"}),
          "POST", P, 401)
    check(api.post(P, key=False, headers=bad_key, json={}), "POST", P, 401)
    check(api.create("oa-x", template_db="oa_no_such_template"),
          "POST", P, 404)
    check(api.post(P, data=BIG), "POST", P, 413)
    check(api.create("Bad.Name"), "POST", P, 422)
    check(api.create("oa-x", domain="nodomain.example"), "POST", P, 422)
    check(api.create("tcs"), "POST", P, 422)
    check(api.create("www"), "POST", P, 422)
    check(api.create("oa-x", password=""), "POST", P, 422)
    check(api.request("PUT", P), "PUT", P, 405)
    check(api.get(P), "GET", P, 405)

    # GET /api/tenants
    T = "/api/tenants"
    r = check(api.get(T), "GET", T, 200)
    assert r.json()["count"] == 1
    check(api.get(T + "?domain=sajet.us"), "GET", T, 200)
    check(api.get(T + "?domain=nodomain.example"), "GET", T, 422)
    check(api.get(T, key=False), "GET", T, 401)
    check(api.get(T, key=False, headers=bad_key), "GET", T, 401)
    check(api.get(T, data="{}"), "GET", T, 400)
    check(api.get(T, data=BIG), "GET", T, 413)
    check(api.post(T), "POST", T, 405)

    # GET /api/domains
    D = "/api/domains"
    r = check(api.get(D), "GET", D, 200)
    assert r.json()["dns_enabled"] is True
    check(api.get(D, key=False), "GET", D, 401)
    check(api.get(D, data="{}"), "GET", D, 400)
    check(api.get(D, data=BIG), "GET", D, 413)
    check(api.delete(D), "DELETE", D, 405)

    # GET /api/node, GET /metrics
    for path in ("/api/node", "/metrics"):
        check(api.get(path), "GET", path, 200)
        check(api.get(path, key=False,
                      headers={"Authorization": f"Bearer {api.key}"}),
              "GET", path, 200)
        check(api.get(path, key=False), "GET", path, 401)
        check(api.get(path, key=False, headers=bad_key), "GET", path, 401)
        check(api.get(path, data="{}"), "GET", path, 400)
        check(api.get(path, data=BIG), "GET", path, 413)
        check(api.post(path), "POST", path, 405)

    # DELETE /api/tenant
    check(api.delete(P), "DELETE", P, 400)
    check(api.delete(P + "?subdomain=oa-one", json={"subdomain": "oa-two"}),
          "DELETE", P, 400)
    check(api.delete(P, data="{"), "DELETE", P, 400)
    check(api.delete(P + "?subdomain=oa-one", key=False), "DELETE", P, 401)
    check(api.delete(P + "?subdomain=oa-none"), "DELETE", P, 404)
    check(api.delete(P + "?subdomain=tcs"), "DELETE", P, 422)
    check(api.delete(P + "?subdomain=Bad.Name"), "DELETE", P, 422)
    check(api.delete(P, data=BIG), "DELETE", P, 413)
    r = check(api.delete(P, json={"subdomain": "oa-one"}), "DELETE", P, 200)
    assert r.json()["dns"]["status"] == "deleted"
    r = check(api.create("oa-one"), "POST", P, 201)
    check(api.delete(P + "?subdomain=oa-one"), "DELETE", P, 200)

    # GET /api/tenants/{subdomain}, its backup and its password
    r = check(api.create("oa-one"), "POST", P, 201)
    G = "/api/tenants/{subdomain}"
    r = check(api.get("/api/tenants/oa-one"), "GET", G, 200)
    assert r.json()["template_db"] == "tcs"
    check(api.get("/api/tenants/oa-none"), "GET", G, 404)
    check(api.get("/api/tenants/tcs"), "GET", G, 404)
    check(api.get("/api/tenants/Bad.Name"), "GET", G, 422)
    check(api.get("/api/tenants/oa-one", key=False), "GET", G, 401)
    check(api.get("/api/tenants/oa-one", data="{}"), "GET", G, 400)
    check(api.get("/api/tenants/oa-one", data=BIG), "GET", G, 413)
    check(api.delete("/api/tenants/oa-one"), "DELETE", G, 405)
    B = G + "/backup"
    r = check(api.get("/api/tenants/oa-one/backup"), "GET", B, 200)
    assert r.content[:2] == b"PK"
    check(api.get("/api/tenants/oa-none/backup"), "GET", B, 404)
    check(api.get("/api/tenants/Bad.Name/backup"), "GET", B, 422)
    check(api.get("/api/tenants/oa-one/backup", key=False), "GET", B, 401)
    check(api.post("/api/tenants/oa-one/backup"), "POST", B, 405)
    W = G + "/password"
    r = check(api.post("/api/tenants/oa-one/password",
                       json={"admin_password": "new-pw"}), "POST", W, 200)
    check(api.post("/api/tenants/oa-one/password", json={}), "POST", W, 400)
    check(api.post("/api/tenants/oa-one/password", data="{"), "POST", W,
          400)
    check(api.post("/api/tenants/oa-one/password",
                   json={"admin_password": ""}), "POST", W, 422)
    check(api.post("/api/tenants/oa-none/password",
                   json={"admin_password": "x"}), "POST", W, 404)
    check(api.post("/api/tenants/oa-one/password", key=False, json={}),
          "POST", W, 401)
    check(api.post("/api/tenants/oa-one/password", data=BIG), "POST", W,
          413)
    check(api.get("/api/tenants/oa-one/password"), "GET", W, 405)
    for verb, state in (("suspend", "suspended"), ("resume", "active")):
        V = G + "/" + verb
        r = check(api.post(f"/api/tenants/oa-one/{verb}"), "POST", V, 200)
        assert r.json()["state"] == state
        r = check(api.get("/api/tenants"), "GET", "/api/tenants", 200)
        assert [t["state"] for t in r.json()["tenants"]] == [state]
        check(api.post(f"/api/tenants/oa-one/{verb}"), "POST", V, 200)
        check(api.post(f"/api/tenants/oa-none/{verb}"), "POST", V, 404)
        check(api.post(f"/api/tenants/Bad.Name/{verb}"), "POST", V, 422)
        check(api.post(f"/api/tenants/oa-one/{verb}", key=False), "POST",
              V, 401)
        check(api.post(f"/api/tenants/oa-one/{verb}", data="{}"), "POST",
              V, 400)
        check(api.post(f"/api/tenants/oa-one/{verb}", data=BIG), "POST", V,
              413)
        check(api.get(f"/api/tenants/oa-one/{verb}"), "GET", V, 405)
    R = "/api/tenant/restore"
    zipped = api.get("/api/tenants/oa-one/backup").content
    zh = {"Content-Type": "application/zip"}
    r = check(api.post(R + "?subdomain=oa-two", data=zipped, headers=zh),
              "POST", R, 201)
    assert r.json()["restored_from"]["db_name"] == "oa-one"
    check(api.post(R + "?subdomain=oa-two", data=zipped, headers=zh),
          "POST", R, 409)
    check(api.post(R, data=zipped, headers=zh), "POST", R, 400)
    check(api.post(R + "?subdomain=oa-three", data=b"not a zip",
                   headers=zh), "POST", R, 400)
    check(api.post(R + "?subdomain=Bad.Name", data=zipped, headers=zh),
          "POST", R, 422)
    check(api.post(R + "?subdomain=oa-three", key=False, data=zipped),
          "POST", R, 401)
    check(api.get(R), "GET", R, 405)
    check(api.delete(P + "?subdomain=oa-two"), "DELETE", P, 200)
    check(api.delete(P + "?subdomain=oa-one"), "DELETE", P, 200)

    # Routes that do not exist: 401 under /api/ without a key, else 404.
    check_component(api.get("/api/nope", key=False), "Unauthorized", 401)
    check_component(api.get("/api/nope"), "NotFound", 404)
    check_component(api.get("/nope", key=False), "NotFound", 404)
    check_component(api.get("/api", key=False), "NotFound", 404)


def test_created_variants_match_the_schema(api, pg, cloudflare):
    """201 with each dns.status the node can give, and with a warning."""
    P = "/api/tenant"
    r = check(api.create("oa-created"), "POST", P, 201)
    assert r.json()["dns"]["status"] == "created"
    assert "detail" not in r.json()["dns"]

    cloudflare.add_record(ZONE_SAJET, "CNAME", "oa-exists.sajet.us", TARGET,
                          proxied=True, comment="managed-by=nodo")
    r = check(api.create("oa-exists"), "POST", P, 201)
    assert r.json()["dns"]["status"] == "exists"

    cloudflare.add_record(ZONE_SAJET, "A", "oa-conflict.sajet.us",
                          "192.0.2.1")
    r = check(api.create("oa-conflict"), "POST", P, 201)
    assert r.json()["dns"]["status"] == "conflict"
    assert r.json()["dns"]["detail"]
    # The record is not the node's: the delete leaves it, "absent".
    r = check(api.delete(P + "?subdomain=oa-conflict"), "DELETE", P, 200)
    assert r.json()["dns"]["status"] == "absent"

    clone_tcs(pg, "oa_nofs", files=False)
    clone_tcs(pg, "oa_files")  # file-backed attachments, no folder
    try:
        r = check(api.create("oa-warning", template_db="oa_nofs"),
                  "POST", P, 201)
        assert "filestore" in r.json()["warning"]
        r = check(api.create("oa-nofiles", template_db="oa_files"),
                  "POST", P, 500)
        assert r.json()["code"] == "filestore_missing"
        # A tenant is no template (CONTRACT 8).
        r = check(api.create("oa-thief", template_db="oa-warning"),
                  "POST", P, 422)
        assert r.json()["code"] == "template_not_allowed"
    finally:
        drop_template(pg, "oa_nofs")
        drop_template(pg, "oa_files")

    cloudflare.inject(500, b"", count=None)
    r = check(api.create("oa-pending"), "POST", P, 201)
    assert r.json()["dns"]["status"] == "pending"
    assert r.json()["dns"]["detail"]
    r = check(api.delete(P + "?subdomain=oa-pending"), "DELETE", P, 200)
    assert r.json()["dns"]["status"] == "pending"


def test_filestore_conflict_is_a_documented_409(api, data_dir):
    stale = Path(data_dir) / "filestore" / "oa-stale"
    stale.mkdir()
    try:
        check(api.create("oa-stale"), "POST", "/api/tenant", 409)
    finally:
        stale.rmdir()


def test_skipped_filestore_entries_match_the_schema(node, tmp_path):
    """A template folder with a link to / and a fifo: 201 with the
    `filestore` object (test_filestore.py has the rest)."""
    fs = tmp_path / "data" / "filestore" / "tcs"
    (fs / "0a").mkdir(parents=True)
    (fs / "0a" / "f").write_text("x")
    (fs / "0a" / "root").symlink_to("/")
    os.mkfifo(fs / "fifo")
    api = node(ODOO_DATA_DIR=str(tmp_path / "data"))
    r = check(api.create("oa-skipped"), "POST", "/api/tenant", 201)
    assert r.json()["filestore"]["skipped"] == 2
    assert "2 entries not copied" in r.json()["warning"]


def test_dns_disabled_matches_the_schema(node):
    api = node(dns=False)
    r = check(api.get("/health", key=False), "GET", "/health", 200)
    assert r.json()["dns"] == "disabled"
    r = check(api.get("/api/domains"), "GET", "/api/domains", 200)
    assert r.json()["dns_enabled"] is False
    r = check(api.create("oa-nodns"), "POST", "/api/tenant", 201)
    assert r.json()["dns"]["status"] == "disabled"
    r = check(api.delete("/api/tenant?subdomain=oa-nodns"), "DELETE",
              "/api/tenant", 200)
    assert r.json()["dns"]["status"] == "disabled"
