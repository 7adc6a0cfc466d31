#!/usr/bin/python3
"""What the filestore fsyncs cost a create: figures, not pass/fail.

    NODO_BUILD=$PWD/build NODO_BENCH_BASE=/path/to/old/build \\
        /usr/bin/python3 tests/bench/bench_filestore.py

A template filestore of BENCH_FS_FILES files (default 3000, 1 to 16 KiB,
in Odoo's 256 two-hex-digit folders) is copied by creates, in two layouts:
  * hard links: the template's folder is in the data dir (Odoo's case);
  * byte copy: the template's folder is a link to /dev/shm, another file
    system, so every file is copied and (now) fsynced to the data dir's
    disk.
Each layout runs three daemons, one after the other in every round
(BENCH_ROUNDS, default 5), so all see the same machine and page cache:
  * before: the build at NODO_BENCH_BASE (the code before the fsyncs;
    optional: `git archive <commit> | tar -x -C DIR && make -C DIR`);
  * after: NODO_BUILD;
  * after, fsync a no-op: the same binary with an LD_PRELOAD that makes
    fsync return 0, which isolates the fsyncs from the descriptor walk.
It prints the median create time and the median filestore step (the
daemon's own "filestore N ms" log figure) of each. Everything runs on
127.0.0.1 against a PostgreSQL 15 cluster of its own.
"""
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import conftest as h  # noqa: E402

FILES = int(os.environ.get("BENCH_FS_FILES", "3000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
STEP = re.compile(r"created from \S+ .* in (\d+) ms: .* filestore (\d+),")
NOFSYNC_C = "int fsync(int fd) { (void)fd; return 0; }\n"


def make_filestore(path):
    rnd = random.Random(8)
    total = 0
    for i in range(FILES):
        d = path / f"{i % 256:02x}"
        d.mkdir(parents=True, exist_ok=True)
        data = rnd.randbytes(rnd.randint(1024, 16384))
        (d / f"{i:040x}").write_bytes(data)
        total += len(data)
    return total


class Daemon(h.Daemon):
    """h.Daemon with a binary of its own and extra environment."""

    def __init__(self, binary, workdir, env, extra_env):
        super().__init__("odoo-local-api", workdir, env)
        self.binary = binary
        self.extra_env = extra_env

    def start(self, wait=True):
        self.write_env()
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        env.update(self.extra_env)
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(self.binary), "--config", str(self.env_file)],
            stdout=self.logf, stderr=subprocess.STDOUT, env=env)
        self.wait_ready()
        return self


def one_create(binary, extra_env, base_env, workdir, name):
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(base_env, API_PORT=str(h.free_port()))
    api = Daemon(binary, workdir, env, extra_env).start()
    try:
        t = time.perf_counter()
        r = api.create(name, "pw")
        wall = (time.perf_counter() - t) * 1000
        r.raise_for_status()
        time.sleep(0.1)  # the log line is written before the reply
        m = STEP.search(api.new_log())
        step = float(m.group(2)) if m else float("nan")
        api.delete("/api/tenant", params={"subdomain": name}
                   ).raise_for_status()
    finally:
        api.proc.send_signal(signal.SIGTERM)
        api.proc.wait(30)
        api.logf.close()
    return wall, step


def main():
    new = Path(os.environ.get("NODO_BUILD", h.ROOT / "build"))
    base = os.environ.get("NODO_BENCH_BASE")
    pg = h.Postgres()
    cf = h.FakeCloudflare(token=h.CF_TOKEN, zones={"sajet.us": h.ZONE_SAJET})
    tmp = Path(tempfile.mkdtemp(prefix="nodo-bench-fs-"))
    shm = Path(tempfile.mkdtemp(prefix="nodo-bench-fs-", dir="/dev/shm"))
    try:
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o",
                        str(tmp / "nofsync.so"), "-x", "c", "-"],
                       input=NOFSYNC_C, text=True, check=True)
        pg.init()
        cf.start()
        (tmp / "domains.json").write_text(
            '{"zones": {"sajet.us": "%s"}, "tunnel_id": "%s"}'
            % (h.ZONE_SAJET, h.TUNNEL_ID))
        layouts = {}
        for layout in ("hard links", "byte copy"):
            data = tmp / layout.replace(" ", "-")
            (data / "filestore").mkdir(parents=True)
            layouts[layout] = data
        h.make_template(pg, layouts["hard links"])
        shutil.rmtree(layouts["hard links"] / "filestore" / "tcs")
        size = make_filestore(layouts["hard links"] / "filestore" / "tcs")
        make_filestore(shm / "tcs")
        (layouts["byte copy"] / "filestore" / "tcs").symlink_to(shm / "tcs")
        print(f"template filestore: {FILES} files, {size / 1e6:.1f} MB in "
              f"256 folders; data dir on {disk(tmp)}; {ROUNDS} rounds; "
              f"load average {os.getloadavg()[0]:.2f}")

        variants = []
        if base:
            variants.append(("before", Path(base) / "odoo-local-api", {}))
        variants.append(("after", new / "odoo-local-api", {}))
        variants.append(("after, fsync a no-op", new / "odoo-local-api",
                         {"LD_PRELOAD": str(tmp / "nofsync.so")}))
        res = {(layout, v[0]): [] for layout in layouts for v in variants}
        for rnd in range(ROUNDS):
            for layout, data in layouts.items():
                env = {"ODOO_DOMAIN": "sajet.us",
                       "PROVISIONING_API_KEY": h.API_KEY,
                       "CLOUDFLARE_API_TOKEN": "",
                       "DOMAINS_FILE": str(tmp / "domains.json"),
                       "API_HOST": "127.0.0.1",
                       "DEFAULT_TEMPLATE_DB": "tcs",
                       "ODOO_CONF": str(tmp / "none.conf"),
                       "ODOO_DATA_DIR": str(data),
                       "PGHOST": pg.host, "PGPORT": str(pg.port),
                       "PGUSER": h.NODE_ROLE,
                       "PGPASSWORD": h.NODE_PASSWORD,
                       "LOG_LEVEL": "info"}
                # Each round starts with another variant: none is always
                # the one that follows the others' writeback.
                order = list(enumerate(variants))
                order = order[rnd % len(order):] + order[:rnd % len(order)]
                for k, (name, binary, extra) in order:
                    wall, step = one_create(
                        binary, extra, env,
                        tmp / f"run-{rnd}-{layout[0]}-{k}", f"fs{rnd}v{k}")
                    res[(layout, name)].append((wall, step))
        print(f"{'layout':<11} {'variant':<22} {'create ms':>10} "
              f"{'filestore ms':>13}  (medians)")
        for (layout, name), v in res.items():
            print(f"{layout:<11} {name:<22} "
                  f"{statistics.median(x[0] for x in v):>10.0f} "
                  f"{statistics.median(x[1] for x in v):>13.0f}  "
                  f"(filestore min {min(x[1] for x in v):.0f}, "
                  f"max {max(x[1] for x in v):.0f})")
        print(f"load average at the end {os.getloadavg()[0]:.2f}")
    finally:
        cf.stop()
        pg.destroy()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(shm, ignore_errors=True)


def disk(path):
    out = subprocess.run(["df", "-T", str(path)], capture_output=True,
                         text=True).stdout.splitlines()[-1].split()
    return f"{out[0]} ({out[1]})"


if __name__ == "__main__":
    main()
