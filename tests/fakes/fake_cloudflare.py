#!/usr/bin/python3
"""Fake Cloudflare DNS API (client/v4) for Nodo's integration tests.

Serves, on 127.0.0.1, the subset of the Cloudflare API the daemons use:

    GET    /client/v4/zones?name=...                      (zone look-up)
    GET    /client/v4/zones/{zone_id}/dns_records          (list, filters, paging)
    POST   /client/v4/zones/{zone_id}/dns_records          (create)
    GET    /client/v4/zones/{zone_id}/dns_records/{id}     (details)
    PATCH  /client/v4/zones/{zone_id}/dns_records/{id}     (partial update)
    PUT    /client/v4/zones/{zone_id}/dns_records/{id}     (overwrite)
    DELETE /client/v4/zones/{zone_id}/dns_records/{id}     (delete)

Behaviour follows the "Fake server checklist" of the team's CLOUDFLARE.md reference
(envelope, FQDN names, conflict codes 81053/81054/81058, 81044, auth errors
6003/9109/10000, routing errors 7003+7000, 429/10429 with Retry-After).

Every request is checked against Cloudflare's OpenAPI document
(tests/fakes/schema/cloudflare-dns-openapi.json, cloudflare-zones-openapi.json):
path and query parameters, Content-Type and request body (with OpenAPI 3.0
readOnly semantics).  A request that breaks the schema is appended, as a
string, to FakeCloudflare.schema_violations and answered 400/1004, so both
the test and the client notice.  The responses the fake produces can be
checked the same way (validate_responses=True, or FAKE_CF_VALIDATE_RESPONSES=1);
problems land in FakeCloudflare.response_violations.

Faults (inject, rate_limit, set_delay) let tests exercise the clients'
error handling: raw statuses and bodies, 429 with Retry-After, slow replies
and replies cut half-way.

Use from Python (tests put the repository's tests/ directory on sys.path):

    from fakes.fake_cloudflare import FakeCloudflare, ZONE_SAJET
    cf = FakeCloudflare()
    url = cf.start()            # http://127.0.0.1:PORT/client/v4
    ...
    cf.stop()

or from the command line (serves until SIGINT/SIGTERM, prints the base URL):

    /usr/bin/python3 tests/fakes/fake_cloudflare.py --port 8787 --token T \
        --zone sajet.us=<32hex> [--zone otro.dominio=<32hex>]

Only the Python standard library and Debian's python3-jsonschema are used.
Thread-safe: one lock guards all state.  Quiet unless FAKE_CF_DEBUG=1.
"""

import argparse
import copy
import datetime
import ipaddress
import json
import math
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import jsonschema

__all__ = [
    "FakeCloudflare",
    "ZONE_SAJET",
    "ZONE_OTRO",
    "DEFAULT_TOKEN",
    "DEFAULT_ZONES",
    "ACCOUNT_ID",
    "SchemaBook",
    "find_schema_dir",
]

# ---------------------------------------------------------------------------
# Constants
# ---------------------------------------------------------------------------

ZONE_SAJET = "5a1e7c0de5a1e7c0de5a1e7c0de5a1e7"
ZONE_OTRO = "0f70d0f1a10f70d0f1a10f70d0f1a100"
DEFAULT_TOKEN = "test-token"
DEFAULT_ZONES = {"sajet.us": ZONE_SAJET, "otro.dominio": ZONE_OTRO}
ACCOUNT_ID = "acc0acc0acc0acc0acc0acc0acc0acc0"
OWNER_ID = "0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e0e"

API_PREFIX = "/client/v4"
MAX_BODY_BYTES = 1 << 20          # 1 MiB: larger request bodies get 413
HANDLER_TIMEOUT_S = 30            # idle keep-alive connections are closed after this
RATE_LIMIT_MESSAGE = "Rate limited. Please wait and consider throttling your request speed"

DNS_SPEC_FILE = "cloudflare-dns-openapi.json"
ZONES_SPEC_FILE = "cloudflare-zones-openapi.json"
SCHEMA_DIR = Path(__file__).resolve().parent / "schema"

# Dotted filter operators the live API accepts on the list operation that the
# 2024-08 schema does not declare (CLOUDFLARE.md section 1.2).  They are not
# schema violations.  Their values are strings.
LIVE_EXTRA_LIST_PARAMS = frozenset(
    "%s.%s" % (field, op)
    for field in ("name", "content")
    for op in ("exact", "contains", "startswith", "endswith")
)

# CLOUDFLARE.md section 1.4: "Read-only: id, proxiable, created_on,
# modified_on, meta".  The schema marks all of them readOnly except `id`
# (dns-records_identifier carries no readOnly flag), yet lists `id` as
# required in the body it reuses for requests.  Treat it as read-only too.
EXTRA_READ_ONLY = frozenset(["id"])

PROXIABLE_TYPES = frozenset(["A", "AAAA", "CNAME"])
HOSTNAME_CONTENT_TYPES = frozenset(["CNAME", "NS", "MX", "PTR"])

_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9._~+/=-]+$")
_LABEL_RE = re.compile(r"^(\*|[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)$")
_NUMBER_RE = re.compile(r"^-?(?:\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?$")


def _debug_enabled():
    return os.environ.get("FAKE_CF_DEBUG", "") == "1"


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _is_hostname(value):
    """True for a DNS host name (labels of letters, digits, '-', '_')."""
    if not isinstance(value, str) or not value:
        return False
    host = value[:-1] if value.endswith(".") else value
    if not host or len(host) > 253:
        return False
    return all(_LABEL_RE.match(label) for label in host.split("."))


# ---------------------------------------------------------------------------
# Schema handling
# ---------------------------------------------------------------------------


def find_schema_dir(schema_dir=None):
    """Directory holding the two OpenAPI files.

    The explicit argument if given, else the copies shipped with the tests
    (tests/fakes/schema, see its README for their origin).  Nothing outside
    the repository is ever read.
    """
    cand = Path(schema_dir) if schema_dir is not None else SCHEMA_DIR
    if (cand / DNS_SPEC_FILE).is_file() and (cand / ZONES_SPEC_FILE).is_file():
        return cand
    raise FileNotFoundError(
        "fake_cloudflare: cannot find %s and %s in %s"
        % (DNS_SPEC_FILE, ZONES_SPEC_FILE, cand)
    )


def _make_format_checker():
    checker = jsonschema.FormatChecker(["ipv4", "ipv6"])

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value):
        if not isinstance(value, str):
            return True
        if "T" not in value and "t" not in value:
            raise ValueError("no 'T' separator")
        datetime.datetime.fromisoformat(value.replace("z", "Z"))
        return True

    @checker.checks("hostname")
    def _hostname(value):
        if not isinstance(value, str):
            return True
        return _is_hostname(value)

    return checker


_FORMAT_CHECKER = _make_format_checker()


def _inline(node, doc, stack=()):
    """Deep copy of `node` with every local $ref replaced by its target and
    OpenAPI 3.0 `nullable` turned into JSON Schema.  Equivalent to using a
    RefResolver with the whole document as base, but leaves a plain tree that
    the readOnly transformation below can rewrite."""
    if isinstance(node, list):
        return [_inline(item, doc, stack) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        ref = node["$ref"]
        if not ref.startswith("#/"):
            raise ValueError("non-local $ref %r" % ref)
        if ref in stack:
            raise ValueError("recursive $ref %r" % ref)
        target = doc
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        resolved = _inline(target, doc, stack + (ref,))
        extra = {k: v for k, v in node.items() if k != "$ref"}
        if extra:  # siblings of $ref (not allowed in 3.0, but be lenient)
            return {"allOf": [resolved, _inline(extra, doc, stack)]}
        return resolved
    out = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: _inline(v, doc, stack) for k, v in value.items()}
        elif key in ("example", "examples", "default", "enum", "description"):
            out[key] = copy.deepcopy(value)
        else:
            out[key] = _inline(value, doc, stack)
    if out.pop("nullable", False):
        if "type" in out:
            types = out["type"] if isinstance(out["type"], list) else [out["type"]]
            if "null" not in types:
                out["type"] = types + ["null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = list(out["enum"]) + [None]
        if "type" not in out and "enum" not in out:
            out = {"anyOf": [{"type": "null"}, out]}
    return out


def _read_only_names(schema):
    """Names of properties declared readOnly in `schema` or its allOf parts."""
    names = set()
    if not isinstance(schema, dict):
        return names
    for name, prop in schema.get("properties", {}).items():
        if isinstance(prop, dict) and prop.get("readOnly"):
            names.add(name)
    for part in schema.get("allOf", []):
        names |= _read_only_names(part)
    return names


def _request_schema(schema, partial=False, inherited_required=(), ro_context=frozenset()):
    """Rewrite an (inlined) schema for validating a request.

    OpenAPI 3.0 readOnly: "If the property is marked as readOnly being true
    and is in the required list, the required will take effect on the
    response only."  `required` lists are therefore stripped of read-only
    names.  A `required` list sitting beside oneOf/anyOf (as in
    dns-records_dns-record) is pushed into each branch first, because which
    properties are read-only depends on the branch (`content` is read-only
    for CAA but required for CNAME).  With partial=True (PATCH) nothing is
    required at all and oneOf becomes anyOf (without `type` several branches
    match a partial body).
    """
    if isinstance(schema, list):
        return [_request_schema(s, partial) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    required = list(out.pop("required", [])) + list(inherited_required)
    branches_key = "oneOf" if "oneOf" in out else ("anyOf" if "anyOf" in out else None)
    if branches_key:
        branches = [_request_schema(b, partial, required, ro_context) for b in out.pop(branches_key)]
        out["anyOf" if partial else branches_key] = branches
        required = []  # now enforced inside every branch
    read_only = _read_only_names(out) | set(ro_context) | EXTRA_READ_ONLY
    if "allOf" in out:
        out["allOf"] = [_request_schema(p, partial, (), frozenset(read_only)) for p in out["allOf"]]
    if "properties" in out:
        out["properties"] = {k: _request_schema(v, partial) for k, v in out["properties"].items()}
    for key in ("items", "additionalProperties", "not"):
        if isinstance(out.get(key), dict):
            out[key] = _request_schema(out[key], partial)
    required = [r for r in dict.fromkeys(required) if r not in read_only]
    if required and not partial:
        out["required"] = required
    return out


def _make_validator(schema):
    return jsonschema.Draft4Validator(schema, format_checker=_FORMAT_CHECKER)


def _describe_error(err):
    where = "/".join(str(p) for p in err.absolute_path)
    return "%s%s" % ("at '%s': " % where if where else "", err.message)


class _Operation:
    """One OpenAPI operation with its compiled validators."""

    def __init__(self, doc, path, method, op):
        self.path = path
        self.method = method.upper()
        self.operation_id = op.get("operationId", "")
        self.path_params = {}
        self.query_params = {}
        for prm in op.get("parameters", []):
            prm = _inline(prm, doc)
            schema = prm.get("schema", {})
            target = self.path_params if prm["in"] == "path" else self.query_params
            if prm["in"] in ("path", "query"):
                target[prm["name"]] = (schema, _make_validator(schema), bool(prm.get("required")))
        body = op.get("requestBody")
        self.body_required = bool(body and body.get("required"))
        self.body_schema = None
        self.body_validator = None
        self.branch_validators = {}
        self.has_body = body is not None
        if body:
            media = body.get("content", {}).get("application/json", {})
            if "schema" in media:
                raw = _inline(media["schema"], doc)
                self.body_schema = _request_schema(raw, partial=(self.method == "PATCH"))
                self.body_validator = _make_validator(self.body_schema)
                # Per-type branches, to explain a oneOf failure precisely.
                for branch in self.body_schema.get("oneOf", self.body_schema.get("anyOf", [])):
                    enum = _find_type_enum(branch)
                    if enum:
                        self.branch_validators[enum] = _make_validator(branch)
        self.responses = {}
        for status, resp in op.get("responses", {}).items():
            media = resp.get("content", {}).get("application/json", {})
            if "schema" in media:
                self.responses[status.lower()] = _make_validator(_inline(media["schema"], doc))


def _find_type_enum(schema):
    """The single value of properties.type.enum in a record-type branch."""
    if not isinstance(schema, dict):
        return None
    prop = schema.get("properties", {}).get("type")
    if isinstance(prop, dict) and isinstance(prop.get("enum"), list) and len(prop["enum"]) == 1:
        return prop["enum"][0]
    for part in schema.get("allOf", []):
        found = _find_type_enum(part)
        if found:
            return found
    return None


class SchemaBook:
    """The two OpenAPI documents, compiled once per directory."""

    _cache = {}
    _cache_lock = threading.Lock()

    @classmethod
    def load(cls, schema_dir=None):
        directory = find_schema_dir(schema_dir).resolve()
        with cls._cache_lock:
            if directory not in cls._cache:
                cls._cache[directory] = cls(directory)
            return cls._cache[directory]

    def __init__(self, directory):
        self.directory = directory
        self.operations = {}
        self.failure_validators = {}
        for fname, failure_name in (
            (DNS_SPEC_FILE, "dns-records_api-response-common-failure"),
            (ZONES_SPEC_FILE, "zones_api-response-common-failure"),
        ):
            with open(directory / fname, encoding="utf-8") as fh:
                doc = json.load(fh)
            for path, ops in doc["paths"].items():
                for method, op in ops.items():
                    if method.lower() in ("get", "post", "put", "patch", "delete"):
                        self.operations[(method.upper(), path)] = _Operation(doc, path, method, op)
            failure = _inline(doc["components"]["schemas"][failure_name], doc)
            self.failure_validators[fname] = _make_validator(failure)

    def op(self, method, path):
        return self.operations[(method, path)]

    def validate_response(self, method, path, status, body):
        """Problems (list of strings) of a response body against the spec.

        2xx bodies are checked against the operation's "200" schema.  Error
        bodies are checked against the document's common-failure schema:
        the spec's own 4xx schema is allOf[success-response, failure], which
        no body can satisfy (success must be both true and false)."""
        op = self.operations[(method, path)]
        if 200 <= status < 300:
            validator = op.responses.get(str(status)) or op.responses.get("2xx")
            if validator is None:
                return ["%s %s: no response schema for status %d" % (method, path, status)]
        else:
            fname = ZONES_SPEC_FILE if path == "/zones" else DNS_SPEC_FILE
            validator = self.failure_validators[fname]
        problems = [_describe_error(e) for e in validator.iter_errors(body)]
        if status >= 400 and isinstance(body, dict) and not body.get("errors"):
            problems.append("failure response with an empty errors list")
        return ["%s %s -> %d: %s" % (method, path, status, p) for p in problems]


# ---------------------------------------------------------------------------
# Replies
# ---------------------------------------------------------------------------


class _Reply(Exception):
    """Raised inside request processing to answer immediately."""

    def __init__(self, status, body, headers=None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _envelope(result, result_info=None):
    env = {"success": True, "errors": [], "messages": [], "result": result}
    if result_info is not None:
        env["result_info"] = result_info
    return env


def _failure(status, *errors):
    """errors: (code, message) or (code, message, error_chain)."""
    items = []
    for err in errors:
        item = {"code": err[0], "message": err[1]}
        if len(err) > 2 and err[2]:
            item["error_chain"] = [{"code": c, "message": m} for c, m in err[2]]
        items.append(item)
    return _Reply(status, {"success": False, "errors": items, "messages": [], "result": None})


def _no_route(rel_path):
    return _failure(
        400,
        (7003, "Could not route to %s, perhaps your object identifier is invalid?" % rel_path),
        (7000, "No route for that URI"),
    )


def _validation_error(code, message):
    return _failure(400, (1004, "DNS Validation Error", [(code, message)]))


def _rate_limit_body():
    return {
        "success": False,
        "errors": [{"code": 10429, "message": RATE_LIMIT_MESSAGE}],
        "messages": [],
        "result": None,
    }


# ---------------------------------------------------------------------------
# The fake
# ---------------------------------------------------------------------------


class FakeCloudflare:
    """In-process fake of the Cloudflare DNS API.  See the module docstring."""

    def __init__(self, token=DEFAULT_TOKEN, zones=None, schema_dir=None, validate_responses=None):
        self.token = token
        self.zones = dict(DEFAULT_ZONES if zones is None else zones)
        for domain, zid in self.zones.items():
            if not _HEX32.match(zid):
                raise ValueError("zone id for %s must be 32 lowercase hex: %r" % (domain, zid))
        self.zones = {d.lower().rstrip("."): z for d, z in self.zones.items()}
        self._zone_names = {z: d for d, z in self.zones.items()}
        self.schemas = SchemaBook.load(schema_dir)
        if validate_responses is None:
            validate_responses = os.environ.get("FAKE_CF_VALIDATE_RESPONSES", "") == "1"
        self.validate_responses = bool(validate_responses)
        self.url = None
        self.requests = []
        self.schema_violations = []
        self.response_violations = []
        self.internal_errors = []
        self.responses_validated = 0
        self._lock = threading.RLock()
        self._records = {}        # id -> internal record
        self._seq = 0
        self._faults = []
        self._delay = 0.0
        self._server = None
        self._thread = None
        self._connections = set()
        self._zone_created = _now_iso()

    # -- lifecycle ---------------------------------------------------------

    def start(self, port=0, host="127.0.0.1"):
        """Bind host:port (0 = a free port), serve in a daemon thread and
        return the base URL, e.g. http://127.0.0.1:PORT/client/v4."""
        if self._server is not None:
            return self.url
        handler = type("FakeCloudflareHandler", (_Handler,), {"fake": self})
        server = _Server((host, port), handler)
        server.fake = self
        self._server = server
        self.port = server.server_address[1]
        self.url = "http://%s:%d%s" % (host, self.port, API_PREFIX)
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05},
            name="fake-cloudflare", daemon=True,
        )
        self._thread.start()
        return self.url

    def stop(self):
        """Stop serving and close every open connection.  Idempotent."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns = list(self._connections)
            self._connections.clear()
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- test helpers ------------------------------------------------------

    def add_record(self, zone_id, type, name, content, proxied=False, comment=None, ttl=1):
        """Store a record directly (no conflict checks) and return its id."""
        with self._lock:
            if zone_id not in self._zone_names:
                raise KeyError("unknown zone id %r" % zone_id)
            now = _now_iso()
            rec = self._new_record(zone_id, {
                "type": type, "name": name, "content": content,
                "proxied": proxied, "comment": comment, "ttl": ttl,
            }, now, now)
            self._records[rec["id"]] = rec
            return rec["id"]

    def records(self, zone_id=None):
        """Stored records as the API returns them, in creation order."""
        with self._lock:
            recs = sorted(self._records.values(), key=lambda r: r["_seq"])
            return [self._public(r) for r in recs if zone_id is None or r["zone_id"] == zone_id]

    def inject(self, status, body=b"", headers=None, count=1, delay=0.0, match=None):
        """Answer the next `count` requests (None: all, until clear_faults)
        whose "METHOD /path?query" contains `match` (None: any) with this raw
        reply, after sleeping `delay` seconds.  body: bytes, str, a dict
        (sent as JSON) or "CUT" (headers promise more bytes than are sent,
        then the connection is closed)."""
        if count is not None and count < 1:
            raise ValueError("count must be >= 1 or None")
        with self._lock:
            self._faults.append({
                "status": int(status), "body": body, "headers": dict(headers or {}),
                "remaining": count, "delay": float(delay), "match": match,
            })

    def rate_limit(self, retry_after=None, count=1):
        """Queue 429/10429 replies, with Retry-After when given."""
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        self.inject(429, _rate_limit_body(), headers=headers, count=count)

    def set_delay(self, seconds):
        """Delay every normal reply by `seconds` (0 clears).  The request is
        processed first (state changes), only the answer is late."""
        with self._lock:
            self._delay = max(0.0, float(seconds))

    def clear_faults(self):
        with self._lock:
            self._faults.clear()

    def reset(self):
        """Forget records, requests, faults, delay and violations."""
        with self._lock:
            self._records.clear()
            self.requests.clear()
            self._faults.clear()
            self._delay = 0.0
            self.schema_violations.clear()
            self.response_violations.clear()
            self.internal_errors.clear()
            self.responses_validated = 0

    def count(self, method=None, path_contains=None):
        """Number of recorded requests with this method (any if None) whose
        "/path?query" contains `path_contains` (any if None)."""
        with self._lock:
            n = 0
            for req in self.requests:
                if method is not None and req["method"] != method.upper():
                    continue
                if path_contains is not None and path_contains not in req["target"]:
                    continue
                n += 1
            return n

    # -- records -----------------------------------------------------------

    def _fqdn(self, zone_id, name):
        zone = self._zone_names[zone_id]
        name = (name or "").strip().lower()
        if name.endswith(".") and len(name) > 1:
            name = name[:-1]
        if name in ("@", ""):
            return zone if name == "@" else ""
        if name == zone or name.endswith("." + zone):
            return name
        return name + "." + zone

    def _new_record(self, zone_id, fields, created_on, modified_on, rec_id=None):
        self._seq += 1
        rtype = str(fields.get("type", "")).upper()
        proxied = bool(fields.get("proxied") or False)
        ttl = fields.get("ttl", 1)
        if ttl is None:
            ttl = 1
        if proxied:
            ttl = 1  # proxied records always have TTL "auto"
        comment = fields.get("comment")
        rec = {
            "id": rec_id or uuid.uuid4().hex,
            "zone_id": zone_id,
            "type": rtype,
            "name": self._fqdn(zone_id, fields.get("name", "")),
            "content": fields.get("content") if fields.get("content") is not None else "",
            "proxied": proxied,
            "ttl": int(ttl) if float(ttl).is_integer() else ttl,
            "comment": comment if comment else None,
            "tags": list(fields.get("tags") or []),
            "created_on": created_on,
            "modified_on": modified_on,
            "_seq": self._seq,
        }
        for extra in ("priority", "data"):
            if fields.get(extra) is not None:
                rec[extra] = copy.deepcopy(fields[extra])
        return rec

    @staticmethod
    def _public(rec):
        out = {
            "id": rec["id"],
            "type": rec["type"],
            "name": rec["name"],
            "content": rec["content"],
            "proxiable": rec["type"] in PROXIABLE_TYPES,
            "proxied": rec["proxied"],
            "ttl": rec["ttl"],
            "meta": {"auto_added": False, "source": "primary"},
            "tags": list(rec["tags"]),
            "created_on": rec["created_on"],
            "modified_on": rec["modified_on"],
        }
        if rec["comment"]:
            out["comment"] = rec["comment"]
        for extra in ("priority", "data"):
            if extra in rec:
                out[extra] = copy.deepcopy(rec[extra])
        return out

    def _check_record(self, rec):
        """400 unless the record's own fields are acceptable."""
        rtype, name, content = rec["type"], rec["name"], rec["content"]
        host = name[:-1] if name.endswith(".") else name
        if not host or not _is_hostname(host):
            raise _validation_error(9000, "DNS name is invalid.")
        if rtype in ("A", "AAAA", "CNAME", "TXT", "NS", "MX", "PTR"):
            if not isinstance(content, str) or not content.strip():
                raise _validation_error(9007, "Content for %s record is invalid." % rtype)
        if rtype == "CNAME":
            target = content.lower().rstrip(".")
            if target == name or not _is_hostname(content):
                raise _validation_error(9007, "Content for CNAME record is invalid.")
        elif rtype == "A":
            try:
                ipaddress.IPv4Address(content)
            except ValueError:
                raise _validation_error(9005, "Content for A record must be a valid IPv4 address.")
        elif rtype == "AAAA":
            try:
                ipaddress.IPv6Address(content)
            except ValueError:
                raise _validation_error(9006, "Content for AAAA record must be a valid IPv6 address.")
        if rec["proxied"] and rtype not in PROXIABLE_TYPES:
            raise _failure(400, (9004, "This record type cannot be proxied."))
        comment = rec["comment"]
        if comment is not None and ("\n" in comment or "\r" in comment):
            # Cloudflare documents the rule, not the code; 9100 is the fake's.
            raise _validation_error(9100, "Comment must not contain line breaks.")

    def _check_conflicts(self, rec):
        """400 with 81053/81054/81058 when `rec` cannot coexist with the
        zone's other records (rec itself is ignored by id)."""
        rtype, name = rec["type"], rec["name"]
        others = [
            r for r in self._records.values()
            if r["zone_id"] == rec["zone_id"] and r["name"] == name and r["id"] != rec["id"]
        ]
        if rtype == "CNAME" and any(r["type"] in ("A", "AAAA", "CNAME") for r in others):
            raise _failure(400, (81053, "An A, AAAA, or CNAME record with that host already exists."))
        if rtype in ("A", "AAAA") and any(r["type"] == "CNAME" for r in others):
            raise _failure(400, (81054, "A CNAME record with that host already exists."))
        for r in others:
            if r["type"] != rtype:
                continue
            a, b = r["content"], rec["content"]
            if rtype in HOSTNAME_CONTENT_TYPES:
                a, b = a.lower().rstrip("."), b.lower().rstrip(".")
            if a == b and r.get("data") == rec.get("data"):
                raise _failure(400, (81058, "An identical record already exists."))

    # -- request processing (called by the handler) ------------------------

    def _take_fault(self, target_line):
        with self._lock:
            for fault in self._faults:
                if fault["match"] is not None and fault["match"] not in target_line:
                    continue
                if fault["remaining"] is not None:
                    fault["remaining"] -= 1
                    if fault["remaining"] <= 0:
                        self._faults.remove(fault)
                return fault
        return None

    def _violation(self, method, target, text):
        msg = "%s %s: %s" % (method, target, text)
        with self._lock:
            self.schema_violations.append(msg)
        if _debug_enabled():
            sys.stderr.write("fake_cloudflare: schema violation: %s\n" % msg)
        return msg

    def _process(self, method, path, query, headers, raw_body, target):
        """Return (status, body_dict, spec_key) for a normal request, where
        spec_key is (METHOD, openapi_path) or None.  Raises nothing."""
        rel = path[len(API_PREFIX):] if path.startswith(API_PREFIX + "/") else None
        if rel is None:
            return self._reply_of(_no_route(path), None)
        parts = rel.strip("/").split("/") if rel != "/" else []
        if rel.endswith("/") or "" in parts:
            return self._reply_of(_no_route(rel), None)

        # Routing: which operation, with which path parameters.
        spec_path, params = None, {}
        if parts == ["zones"]:
            spec_path = "/zones"
        elif len(parts) in (3, 4) and parts[0] == "zones" and parts[2] == "dns_records":
            if not _HEX32.match(parts[1]) or (len(parts) == 4 and not _HEX32.match(parts[3])):
                return self._reply_of(_no_route(rel), None)
            params["zone_id"] = parts[1]
            if len(parts) == 3:
                spec_path = "/zones/{zone_id}/dns_records"
            else:
                spec_path = "/zones/{zone_id}/dns_records/{dns_record_id}"
                params["dns_record_id"] = parts[3]
        if spec_path is None or (method, spec_path) not in self.schemas.operations:
            return self._reply_of(_no_route(rel), None)
        key = (method, spec_path)
        op = self.schemas.op(method, spec_path)

        try:
            self._authenticate(headers)
            if "zone_id" in params and params["zone_id"] not in self._zone_names:
                raise _failure(403, (10000, "Authentication error"))
            body, typed_query = self._validate_request(op, method, target, params, query, headers, raw_body)
            with self._lock:
                return self._dispatch(op, params, typed_query, body) + (key,)
        except _Reply as reply:
            return reply.status, reply.body, key

    @staticmethod
    def _reply_of(reply, key):
        return reply.status, reply.body, key

    def _authenticate(self, headers):
        auth = headers.get("authorization")
        m = re.match(r"^Bearer ([^ ]+)$", auth or "")
        if not m or not _TOKEN_RE.match(m.group(1)):
            raise _failure(
                400, (6003, "Invalid request headers", [(6111, "Invalid format for Authorization header")])
            )
        if m.group(1) != self.token:
            raise _failure(403, (9109, "Invalid access token"))

    def _validate_request(self, op, method, target, params, query, headers, raw_body):
        """Check parameters and body against the operation; record and
        answer 400 on any violation.  Returns (body, typed_query)."""
        problems = []
        for name, (schema, validator, _required) in op.path_params.items():
            for err in validator.iter_errors(params.get(name)):
                problems.append("path parameter %s: %s" % (name, err.message))

        typed_query = {}
        for name, values in query.items():
            if name in op.query_params:
                schema, validator, _required = op.query_params[name]
            elif op.path == "/zones/{zone_id}/dns_records" and method == "GET" and name in LIVE_EXTRA_LIST_PARAMS:
                schema, validator = {"type": "string"}, None
            else:
                problems.append("unknown query parameter %r" % name)
                continue
            if len(values) > 1:
                problems.append("query parameter %s given %d times" % (name, len(values)))
            value = _coerce(values[-1], schema)
            if validator is not None:
                for err in validator.iter_errors(value):
                    problems.append("query parameter %s=%r: %s" % (name, values[-1], err.message))
            typed_query[name] = value
        for name, (_schema, _validator, required) in op.query_params.items():
            if required and name not in query:
                problems.append("missing required query parameter %s" % name)

        body = None
        ctype = headers.get("content-type", "")
        if raw_body:
            if not op.has_body:
                problems.append("%s takes no request body" % method)
            elif ctype.split(";")[0].strip().lower() != "application/json":
                problems.append("request body with Content-Type %r, not application/json" % ctype)
            try:
                body = json.loads(raw_body.decode("utf-8"))
            except (UnicodeDecodeError, ValueError) as exc:
                problems.append("request body is not JSON: %s" % exc)
                self._violation(method, target, "; ".join(problems))
                raise _failure(400, (9207, "Request body is invalid."))
        elif op.body_required and method != "DELETE":
            # DELETE: the spec marks a (schema-less) body required, but the
            # live API and every client send none; not a violation.
            problems.append("request body required")

        if body is not None and op.body_validator is not None:
            errors = list(op.body_validator.iter_errors(body))
            if errors:
                problems.extend("body " + d for d in _explain_body(op, body, errors))

        if problems:
            self._violation(method, target, "; ".join(problems))
            raise _validation_error(9000, "Request does not match the API schema: " + "; ".join(problems))
        return body, typed_query

    def _dispatch(self, op, params, query, body):
        """(status, body) of a valid request.  Caller holds the lock."""
        method, path = op.method, op.path
        if path == "/zones":
            return self._list_zones(query)
        zone_id = params["zone_id"]
        if path == "/zones/{zone_id}/dns_records":
            if method == "GET":
                return self._list_records(zone_id, query)
            return self._create_record(zone_id, body)
        rec = self._records.get(params["dns_record_id"])
        if rec is None or rec["zone_id"] != zone_id:
            raise _failure(404, (81044, "Record does not exist."))
        if method == "GET":
            return 200, _envelope(self._public(rec))
        if method == "DELETE":
            del self._records[rec["id"]]
            return 200, _envelope({"id": rec["id"]})
        if method == "PATCH":
            fields = {k: rec[k] for k in ("type", "name", "content", "proxied", "ttl", "comment", "tags")}
            for extra in ("priority", "data"):
                if extra in rec:
                    fields[extra] = rec[extra]
            fields.update(body)
        else:  # PUT: unspecified fields take their defaults
            fields = dict(body)
        new = self._new_record(zone_id, fields, rec["created_on"], _now_iso(), rec_id=rec["id"])
        new["_seq"] = rec["_seq"]
        self._check_record(new)
        self._check_conflicts(new)
        self._records[rec["id"]] = new
        return 200, _envelope(self._public(new))

    def _create_record(self, zone_id, body):
        now = _now_iso()
        rec = self._new_record(zone_id, body, now, now)
        self._check_record(rec)
        self._check_conflicts(rec)
        self._records[rec["id"]] = rec
        return 200, _envelope(self._public(rec))

    def _list_records(self, zone_id, q):
        recs = [r for r in self._records.values() if r["zone_id"] == zone_id]
        conds = []

        def text_filter(field, op, value, fold=True):
            def cond(r):
                have = r.get(field)
                if op == "present":
                    return bool(have)
                if op == "absent":
                    return not have
                if have is None:
                    return False
                a, b = (have.lower(), value.lower()) if fold else (have, value)
                if field == "name":
                    b = b.rstrip(".")
                return {
                    "exact": a == b, "contains": b in a,
                    "startswith": a.startswith(b), "endswith": a.endswith(b),
                }[op]
            return cond

        if "name" in q:
            conds.append(text_filter("name", "exact", q["name"]))
        if "type" in q:
            conds.append(lambda r, t=q["type"]: r["type"] == t)
        if "content" in q:
            conds.append(text_filter("content", "exact", q["content"], fold=False))
        if "proxied" in q:
            conds.append(lambda r, p=q["proxied"]: r["proxied"] == p)
        if "comment" in q:
            conds.append(text_filter("comment", "exact", q["comment"]))
        for key, value in q.items():
            field, _, op = key.partition(".")
            if field in ("name", "content", "comment") and op:
                conds.append(text_filter(field, op, value))
        tag_conds = []
        for key, value in q.items():
            if key == "tag" or key.startswith("tag."):
                op = key.partition(".")[2] or ("exact" if ":" in value else "present")
                tag_conds.append(_tag_filter(op, value))
        if "search" in q:
            s = q["search"].lower()
            recs = [r for r in recs if s in r["name"] or s in r["content"].lower() or s in (r["comment"] or "").lower()]

        combine = any if q.get("match") == "any" else all
        tag_combine = any if q.get("tag_match") == "any" else all

        def keep(r):
            parts = [c(r) for c in conds]
            if tag_conds:
                parts.append(tag_combine(c(r) for c in tag_conds))
            return combine(parts) if parts else True

        recs = [r for r in recs if keep(r)]
        order = q.get("order", "type")
        recs.sort(key=lambda r: (_sort_key(r.get(order)), r["name"], r["_seq"]),
                  reverse=q.get("direction") == "desc")
        page = int(q.get("page", 1))
        per_page = int(q.get("per_page", 100))
        total = len(recs)
        chunk = recs[(page - 1) * per_page: page * per_page]
        info = {
            "page": page, "per_page": per_page, "count": len(chunk),
            "total_count": total, "total_pages": math.ceil(total / per_page),
        }
        return 200, _envelope([self._public(r) for r in chunk], info)

    def _list_zones(self, q):
        zones = []
        for domain, zid in sorted(self.zones.items()):
            if "name" in q and q["name"].lower().rstrip(".") != domain:
                continue
            if "status" in q and q["status"] != "active":
                continue
            if "account.id" in q and q["account.id"] != ACCOUNT_ID:
                continue
            zones.append(self._zone_object(domain, zid))
        page = int(q.get("page", 1))
        per_page = int(q.get("per_page", 20))
        chunk = zones[(page - 1) * per_page: page * per_page]
        info = {
            "page": page, "per_page": per_page, "count": len(chunk),
            "total_count": len(zones), "total_pages": math.ceil(len(zones) / per_page),
        }
        return 200, _envelope(chunk, info)

    def _zone_object(self, domain, zid):
        return {
            "id": zid,
            "name": domain,
            "status": "active",
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None,
            "original_registrar": None,
            "original_dnshost": None,
            "created_on": self._zone_created,
            "modified_on": self._zone_created,
            "activated_on": self._zone_created,
            "meta": {"step": 2, "custom_certificate_quota": 0, "page_rule_quota": 3,
                     "phishing_detected": False},
            "owner": {"id": OWNER_ID, "type": "user", "name": "Nodo test user"},
            "account": {"id": ACCOUNT_ID, "name": "Nodo test account"},
            "permissions": ["#dns_records:edit", "#dns_records:read", "#zone:read"],
        }

    def _record_request(self, entry):
        with self._lock:
            self.requests.append(entry)

    def _check_response(self, key, status, body):
        if not self.validate_responses or key is None or not isinstance(body, dict):
            return
        problems = self.schemas.validate_response(key[0], key[1], status, body)
        with self._lock:
            self.responses_validated += 1
            self.response_violations.extend(problems)


def _tag_filter(op, value):
    value = value.lower()

    def cond(r):
        tags = [t.lower() for t in r["tags"]]
        names = [t.partition(":")[0] for t in tags]
        if op == "present":
            return value in names
        if op == "absent":
            return value not in names
        return any({"exact": t == value, "contains": value in t,
                    "startswith": t.startswith(value), "endswith": t.endswith(value)}[op]
                   for t in tags)
    return cond


def _sort_key(value):
    if isinstance(value, bool):
        return (0, int(value), "")
    if isinstance(value, (int, float)):
        return (0, value, "")
    return (1, 0, str(value or ""))


def _coerce(text, schema):
    """A query-string value typed as its schema says, when it parses."""
    types = schema.get("type")
    types = types if isinstance(types, list) else [types]
    if ("number" in types or "integer" in types) and _NUMBER_RE.match(text):
        num = float(text)
        return int(num) if num.is_integer() and "e" not in text.lower() and "." not in text else num
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    return text


def _explain_body(op, body, errors):
    """Readable reasons for a body that failed validation.  For the oneOf
    of record types, use the branch named by the body's `type`."""
    if isinstance(body, dict) and body.get("type") in op.branch_validators:
        branch = op.branch_validators[body["type"]]
        detail = [_describe_error(e) for e in branch.iter_errors(body)]
        if detail:
            return ["(%s record) %s" % (body["type"], d) for d in detail]
    out = [_describe_error(err) for err in errors]
    if isinstance(body, dict) and "type" not in body and not getattr(op, "method", "") == "PATCH":
        out.append("(body has no 'type', so it matches no record type)")
    return out


# ---------------------------------------------------------------------------
# HTTP plumbing
# ---------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128  # bursts of parallel clients must not see SYN drops

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, TimeoutError)):
            return
        if _debug_enabled() or not isinstance(exc, OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    fake = None  # set on the per-instance subclass
    protocol_version = "HTTP/1.1"
    server_version = "cloudflare"
    sys_version = ""
    timeout = HANDLER_TIMEOUT_S
    disable_nagle_algorithm = True  # headers and body go out in separate writes

    def setup(self):
        super().setup()
        with self.fake._lock:
            self.fake._connections.add(self.connection)

    def finish(self):
        try:
            super().finish()
        finally:
            with self.fake._lock:
                self.fake._connections.discard(self.connection)

    def log_message(self, fmt, *args):
        if _debug_enabled():
            sys.stderr.write("fake_cloudflare: %s - %s\n" % (self.address_string(), fmt % args))

    def do_GET(self):
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _read_body(self):
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks, total = [], 0
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY_BYTES:
                    raise _failure(413, (1000, "Request body too large"))
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise _failure(413, (1000, "Request body too large"))
        return self.rfile.read(length) if length > 0 else b""

    def _handle(self):
        fake = self.fake
        method = self.command.upper()
        split = urlsplit(self.path)
        path = unquote(split.path)
        target = path + ("?" + split.query if split.query else "")
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {}
        for k, v in self.headers.items():
            k = k.lower()
            headers[k] = headers[k] + ", " + v if k in headers else v
        entry = {
            "method": method, "path": path, "query": query, "headers": headers,
            "body": None, "raw_body": b"", "status": None, "time": time.monotonic(),
            "target": target,
        }
        try:
            raw = self._read_body()
        except _Reply as reply:
            entry["status"] = reply.status
            fake._record_request(entry)
            self.close_connection = True
            self._send(reply.status, reply.body, {})
            return
        except (ValueError, OSError):
            entry["status"] = 400
            fake._record_request(entry)
            self.close_connection = True
            self._send(400, _failure(400, (9207, "Request body is invalid.")).body, {})
            return
        entry["raw_body"] = raw
        if raw:
            try:
                entry["body"] = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError):
                entry["body"] = None
        fake._record_request(entry)

        fault = fake._take_fault(method + " " + target)
        if fault is not None:
            entry["status"] = fault["status"]
            if fault["delay"] > 0:
                time.sleep(fault["delay"])
            self._send_fault(fault)
            return

        try:
            status, body, key = fake._process(method, path, query, headers, raw, target)
        except Exception:  # a bug in the fake: make it loud, answer 500
            text = traceback.format_exc()
            with fake._lock:
                fake.internal_errors.append(text)
            sys.stderr.write("fake_cloudflare: internal error\n" + text)
            status, body, key = 500, _failure(500, (1000, "fake_cloudflare internal error")).body, None
        entry["status"] = status
        fake._check_response(key, status, body)
        with fake._lock:
            delay = fake._delay
        if delay > 0:
            time.sleep(delay)
        self._send(status, body, {})

    def _send(self, status, body, headers):
        data = json.dumps(body).encode("utf-8")
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if not method_is_head(self.command):
                self.wfile.write(data)
            self.wfile.flush()
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    def _send_fault(self, fault):
        body = fault["body"]
        headers = dict(fault["headers"])
        cut = isinstance(body, str) and body == "CUT"
        if cut:
            full = json.dumps(_envelope({"id": "0" * 32, "note": "this reply is cut half-way"})).encode()
            data = full[: len(full) // 2]
            length = len(full)
            headers.setdefault("Content-Type", "application/json")
        else:
            if isinstance(body, (dict, list)):
                data = json.dumps(body).encode("utf-8")
                headers.setdefault("Content-Type", "application/json")
            elif isinstance(body, str):
                data = body.encode("utf-8")
            else:
                data = bytes(body or b"")
            length = len(data)
        try:
            self.send_response(fault["status"])
            self.send_header("Content-Length", str(length))
            for k, v in headers.items():
                self.send_header(k, str(v))
            if cut:
                self.send_header("Connection", "close")
            self.end_headers()
            if not method_is_head(self.command):
                self.wfile.write(data)
            self.wfile.flush()
            if cut:
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        except (ConnectionError, socket.timeout, OSError):
            self.close_connection = True


def method_is_head(command):
    return command.upper() == "HEAD"


# ---------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------


def _parse_zone(text):
    domain, sep, zid = text.partition("=")
    if not sep or not domain or not _HEX32.match(zid):
        raise argparse.ArgumentTypeError("expected DOMAIN=<32 lowercase hex>, got %r" % text)
    return domain, zid


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fake Cloudflare DNS API for Nodo's tests.")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8787, help="port (0 = any free port; default 8787)")
    parser.add_argument("--token", default=DEFAULT_TOKEN, help="accepted API token")
    parser.add_argument("--zone", action="append", type=_parse_zone, default=[],
                        metavar="DOMAIN=ZONE_ID", help="zone to serve (repeatable); default sajet.us, otro.dominio")
    parser.add_argument("--schema-dir", default=None, help="directory with the OpenAPI files")
    args = parser.parse_args(argv)

    zones = dict(args.zone) if args.zone else None
    fake = FakeCloudflare(token=args.token, zones=zones, schema_dir=args.schema_dir)
    stop = threading.Event()

    def on_signal(signum, frame):
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    url = fake.start(port=args.port, host=args.host)
    print(url, flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        fake.stop()
        if fake.schema_violations:
            sys.stderr.write("fake_cloudflare: %d schema violation(s):\n" % len(fake.schema_violations))
            for v in fake.schema_violations:
                sys.stderr.write("  %s\n" % v)
    return 0


if __name__ == "__main__":
    sys.exit(main())
