#!/usr/bin/python3
"""GET /health at a steady rate on one keep-alive connection, for bench.py.

Usage: health_probe.py PORT RATE SECONDS. Prints one line: the number of
requests, then p50, p99 and max in ms. bench.py runs it at SCHED_RR (chrt)
to stand for a client on another machine: the latency it sees is then the
daemon's, not its own wait for a CPU shared with the creates.
"""
import http.client
import sys
import time


def main():
    port, rate, secs = int(sys.argv[1]), float(sys.argv[2]), \
        float(sys.argv[3])
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    lat = []
    t0 = time.perf_counter()
    k = 0
    while True:
        now = time.perf_counter()
        if now - t0 >= secs:
            break
        due = t0 + k / rate
        if due > now:
            time.sleep(due - now)
        t = time.perf_counter()
        c.request("GET", "/health")
        r = c.getresponse()
        r.read()
        lat.append(time.perf_counter() - t)
        if r.status != 200:
            sys.exit(f"health_probe: /health answered {r.status}")
        k += 1
    c.close()
    lat.sort()
    n = len(lat)
    print(n, lat[n // 2] * 1000, lat[int(n * 0.99)] * 1000, lat[-1] * 1000)


main()
