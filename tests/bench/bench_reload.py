#!/usr/bin/python3
"""What a reload (SIGHUP) costs: figures, not pass/fail.

    NODO_BUILD=$PWD/build /usr/bin/python3 tests/bench/bench_reload.py

Starts odoo-local-api on 127.0.0.1 with DNS disabled and no PostgreSQL
(none is needed to serve /api/domains), a domains.json of BENCH_ZONES zones
(default 200), then BENCH_RELOADS times (default 50) adds one zone and
sends SIGHUP, timing until /api/domains lists the new zone. It prints the
median and the worst of those times, and the median /api/domains latency
of a client that polls all the while.
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
import conftest as h  # noqa: E402

ZONES = int(os.environ.get("BENCH_ZONES", "200"))
RELOADS = int(os.environ.get("BENCH_RELOADS", "50"))


def zones_json(path, n):
    zones = {f"z{i}.example": "%032x" % (i + 1) for i in range(n)}
    zones["sajet.us"] = "%032x" % 0xfeed
    path.write_text(json.dumps({"zones": zones, "tunnel_id": "t"}))


def main():
    wd = Path(tempfile.mkdtemp(prefix="nodo-bench-reload-"))
    zf = wd / "domains.json"
    zones_json(zf, ZONES)
    port = h.free_port()
    env = wd / ".env"
    env.write_text(f"ODOO_DOMAIN=sajet.us\nPROVISIONING_API_KEY={h.API_KEY}\n"
                   f"DOMAINS_FILE={zf}\nAPI_HOST=127.0.0.1\nAPI_PORT={port}\n"
                   f"ODOO_CONF={wd}/none.conf\nODOO_DATA_DIR={wd}\n"
                   f"PGHOST=127.0.0.1\nPGPORT={h.free_port()}\nLOG_LEVEL=warning\n")
    env.chmod(0o600)
    log = open(wd / "api.log", "wb")
    p = subprocess.Popen([str(h.BUILD / "odoo-local-api"), "--config",
                          str(env)], stdout=log, stderr=subprocess.STDOUT,
                         env={"PATH": "/usr/bin:/bin"})
    url = f"http://127.0.0.1:{port}/api/domains"
    hdr = {"X-API-KEY": h.API_KEY}
    h.wait_for(lambda: _ok(url, hdr), 30, "the API")
    lat, stop = [], threading.Event()

    def poller():
        s = requests.Session()
        while not stop.is_set():
            t = time.monotonic()
            s.get(url, headers=hdr, timeout=30)
            lat.append(time.monotonic() - t)

    th = threading.Thread(target=poller)
    th.start()
    times = []
    try:
        for i in range(RELOADS):
            zones_json(zf, ZONES + i + 1)
            want = f"z{ZONES + i}.example"
            t = time.monotonic()
            p.send_signal(signal.SIGHUP)
            h.wait_for(lambda: want in requests.get(url, headers=hdr,
                                                    timeout=30).text,
                       30, want, step=0.001)
            times.append(time.monotonic() - t)
    finally:
        stop.set()
        th.join()
        p.send_signal(signal.SIGTERM)
        p.wait(30)
    print(f"reload ({ZONES}+ zones, {RELOADS} times), SIGHUP to the new "
          f"zone served: median {statistics.median(times) * 1e3:.1f} ms, "
          f"worst {max(times) * 1e3:.1f} ms")
    print(f"/api/domains meanwhile: median {statistics.median(lat) * 1e3:.2f}"
          f" ms over {len(lat)} requests")


def _ok(url, hdr):
    try:
        return requests.get(url, headers=hdr, timeout=1).status_code == 200
    except requests.RequestException:
        return False


if __name__ == "__main__":
    main()
