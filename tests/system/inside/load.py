#!/usr/bin/python3
"""Load on the node's API from inside the system-test container, for a
bounded time, on 127.0.0.1 only.

    load.py SECONDS OUT.json

Four threads list the tenants (with the key from /opt/nodo/config/.env) and
one asks /health, as fast as they get answers; one more creates and deletes
tenants load_0, load_1, ... one after another. Every answer is counted by
status code, a refused or reset connection as "conn_error"; OUT.json gets
the counts per kind of request and the creates that answered 201.
"""
import json
import sys
import threading
import time
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:8070"


def key():
    with open("/opt/nodo/config/.env") as f:
        for line in f:
            if line.startswith("PROVISIONING_API_KEY="):
                return line.split("=", 1)[1].strip()
    raise SystemExit("no PROVISIONING_API_KEY")


KEY = key()
counts = {}
created = []
lock = threading.Lock()


def count(kind, code):
    with lock:
        c = counts.setdefault(kind, {})
        c[str(code)] = c.get(str(code), 0) + 1


def call(kind, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    rq = urllib.request.Request(BASE + path, data=data, method=method)
    rq.add_header("X-API-KEY", KEY)
    if data is not None:
        rq.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(rq, timeout=60) as r:
            r.read()
            code = r.status
    except urllib.error.HTTPError as e:
        e.read()
        code = e.code
    except (OSError, urllib.error.URLError):
        code = "conn_error"
    count(kind, code)
    return code


def reader(deadline, kind, path):
    while time.monotonic() < deadline:
        call(kind, "GET", path)


def writer(deadline):
    i = 0
    while time.monotonic() < deadline:
        name = f"load_{i}"
        i += 1
        code = call("create", "POST", "/api/tenant",
                    {"subdomain": name, "admin_password": "load-pw-123",
                     "domain": "sajet.us", "template_db": "tcs"})
        if code == 201:
            created.append(name)
            call("delete", "DELETE", f"/api/tenant?subdomain={name}")
        elif code == "conn_error":
            time.sleep(0.2)


def main():
    seconds, out = float(sys.argv[1]), sys.argv[2]
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=reader, args=(deadline, "list", "/api/tenants"))
               for _ in range(4)]
    threads.append(threading.Thread(target=reader, args=(deadline, "health", "/health")))
    threads.append(threading.Thread(target=writer, args=(deadline,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with open(out, "w") as f:
        json.dump({"counts": counts, "created": created}, f)


if __name__ == "__main__":
    main()
