#!/usr/bin/python3
"""A 1 GiB-class tenant backed up with the daemon's memory watched
(`make stress`): the peak RSS must not grow with the tenant's size.

Starts its own PostgreSQL 15 cluster, template and odoo-local-api
(tests/backup_kit.py) and makes two tenants of the same shape: `big` of
NODO_BIG_BACKUP_MB MiB (default 1024) and `small` of a tenth of that. Each
is 60 % random bytea rows (1 MiB each, incompressible), 10 % md5 text rows
(hex: deflates about 2x) and 30 % filestore files of 2 KiB to 2 MiB of
random bytes. After a warm-up backup of `small` (first-use allocations:
libarchive, zlib, the thread's malloc arena), each is backed up through
GET /api/tenants/{name}/backup into a temp file while the daemon's VmRSS
and Pss are sampled every 100 ms, then by hand (pg_dump + zip, the same
cluster, right after).

It fails (exit 1) when the big backup's peak RSS growth over its
baseline exceeds the small one's by more than NODO_BIG_BACKUP_SLACK_MB
(default 16), when a zip is not valid (every member's CRC read back by
zipfile's testzip, in 64 KiB reads, never the whole member in memory; the
member names those of the filestore plus manifest.json and dump.sql), when
dump.sql's COPY row counts differ from the tenant's tables, when the
restore (below) does not give back the same rows and files, or when the
daemon does not stop with exit 0 or reports a sanitizer error.

Unless NODO_BIG_RESTORE=0, the big zip is then restored through POST
/api/tenant/restore and by hand (unzip + createdb + psql -f), both timed.

Figures printed: sizes, times, MB/s, peak RSS and Pss (and growth) for
both tenants, the by-hand times and the ratios. Timings are figures, not
verdicts. Needs about 5x NODO_BIG_BACKUP_MB of free disk under $TMPDIR;
everything is deleted at the end.
"""
import os
import re
import shutil
import sys
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "tests"))
import backup_kit as kit  # noqa: E402
import conftest as h  # noqa: E402

BIG_MB = int(os.environ.get("NODO_BIG_BACKUP_MB", "1024"))
SLACK_MB = float(os.environ.get("NODO_BIG_BACKUP_SLACK_MB", "16"))
RESTORE = os.environ.get("NODO_BIG_RESTORE", "1") != "0"
FILE_SIZES = [2 << 10, 8 << 10, 32 << 10, 128 << 10, 512 << 10, 2 << 20]
COPY_RE = re.compile(r"^COPY (\S+) \(.*\) FROM stdin;$")


def make_tenant(node, name, mib):
    """A tenant of about mib MiB: (tables, filestore files)."""
    assert node.api.create(name).status_code == 201
    fs_bytes = mib * kit.MIB * 3 // 10
    files = max(6, fs_bytes * len(FILE_SIZES) // sum(FILE_SIZES))
    kit.fill(node, name, blob_mib=max(1, mib * 6 // 10),
             text_mib=max(1, mib // 10), files=files,
             file_size=lambda i: FILE_SIZES[i % len(FILE_SIZES)])
    return files


def dump_counts(zpath):
    """{table: rows} of dump.sql's COPY blocks, read as a stream."""
    counts, table, n = {}, None, 0
    with zipfile.ZipFile(zpath) as z, z.open("dump.sql") as f:
        for raw in f:
            if table is None:
                m = COPY_RE.match(raw.decode("utf-8", "replace").rstrip())
                if m:
                    table, n = m.group(1), 0
            elif raw == b"\\.\n":
                counts[table], table = n, None
            else:
                n += 1
    return counts


def source_counts(node, name, tables):
    c = node.pg.connect(name)
    try:
        with c.cursor() as cur:
            out = {}
            for t in tables:  # as pg_dump wrote them: schema-qualified
                cur.execute(f"SELECT count(*) FROM {t}")
                out[t] = cur.fetchone()[0]
            return out
    finally:
        c.close()


def check_zip(node, name, zpath, failures):
    """Members, CRCs and dump.sql's row counts; the row counts."""
    fs = node.data / "filestore" / name
    want = {"manifest.json", "dump.sql"} | {
        "filestore/" + str(p.relative_to(fs))
        for p in fs.rglob("*") if p.is_file()}
    with zipfile.ZipFile(zpath) as z:
        names = [i.filename for i in z.infolist() if not i.is_dir()]
        if sorted(names) != sorted(want):
            failures.append(f"{name}: {len(names)} members, expected "
                            f"{len(want)}: extra "
                            f"{sorted(set(names) - want)[:5]}, missing "
                            f"{sorted(want - set(names))[:5]}")
        bad = z.testzip()
        if bad is not None:
            failures.append(f"{name}: member {bad} fails its CRC")
        dump_size = z.getinfo("dump.sql").file_size
    got = dump_counts(zpath)
    src = source_counts(node, name, got)
    if got != src or "public.blob" not in got or "public.notes" not in got:
        failures.append(f"{name}: dump.sql rows {got} != tables {src}")
    return got, dump_size


def measure(node, name, failures):
    """One API backup (sampled every 100 ms) and one by hand."""
    zpath = node.work / f"{name}.zip"
    took, n, s = kit.api_backup(node.api, name, zpath, every=0.1, pss=True)
    counts, dump_size = check_zip(node, name, zpath, failures)
    hand_zip = node.work / "hand.zip"
    hand = kit.dump_zip_by_hand(node, name, hand_zip)
    hand_size = hand_zip.stat().st_size
    hand_zip.unlink()
    fs_bytes, files = node.fs_size(name)
    return {"name": name, "db": node.db_size(name), "fs": fs_bytes,
            "files": files, "zip": n, "dump": dump_size, "api_s": took,
            "hand_s": hand, "hand_zip": hand_size, "mem": s,
            "counts": counts, "zpath": zpath}


def restore(node, m, failures):
    """The big zip restored through the API and by hand: (api s, hand s,
    MemSampler)."""
    took, s = kit.api_restore(node.api, m["zpath"], "bigr", every=0.1,
                              pss=True)
    got = source_counts(node, "bigr", m["counts"])
    if got != m["counts"]:
        failures.append(f"restored rows {got} != {m['counts']}")
    fs_bytes, files = node.fs_size("bigr")
    if (fs_bytes, files) != (m["fs"], m["files"]):
        failures.append(f"restored filestore {files} files, {fs_bytes} B;"
                        f" expected {m['files']}, {m['fs']} B")
    kit.drop(node, "bigr")
    hand = kit.unzip_psql_by_hand(node, m["zpath"], "bigh")
    kit.drop(node, "bigh")
    return took, hand, s


def mb(n):
    return n / kit.MIB


def report(ms, rest):
    print("big_backup: figures (MiB = 2^20 bytes; growth = peak - the "
          "value just before that backup)")
    for m in ms:
        s = m["mem"]
        g_rss, g_pss = s.growth_mib()
        tenant = m["db"] + m["fs"]
        print(f"  {m['name']}: database {mb(m['db']):.0f} MiB + filestore "
              f"{mb(m['fs']):.0f} MiB in {m['files']} files = "
              f"{mb(tenant):.0f} MiB; dump.sql {mb(m['dump']):.0f} MiB; zip"
              f" {mb(m['zip']):.0f} MiB")
        rate_t, rate_z = mb(tenant) / m["api_s"], mb(m["zip"]) / m["api_s"]
        print(f"    API backup {m['api_s']:.1f} s ({rate_t:.1f} MiB/s of "
              f"tenant, {rate_z:.1f} MiB/s of zip); pg_dump + zip by hand "
              f"{m['hand_s']:.1f} s ({mb(m['hand_zip']):.0f} MiB zip); "
              f"ratio API / by hand {m['api_s'] / m['hand_s']:.2f}")
        print(f"    daemon VmRSS {s.rss0 / 1024:.1f} -> peak "
              f"{s.peak_rss / 1024:.1f} MiB (+{g_rss:.1f}), Pss "
              f"{s.pss0 / 1024:.1f} -> peak {s.peak_pss / 1024:.1f} MiB "
              f"(+{g_pss:.1f}); {s.samples} samples")
    if rest:
        took, hand, s = rest
        g_rss, g_pss = s.growth_mib()
        print(f"  restore of big's zip: API {took:.1f} s, unzip + psql -f "
              f"by hand {hand:.1f} s, ratio {took / hand:.2f}; daemon "
              f"VmRSS peak {s.peak_rss / 1024:.1f} MiB (+{g_rss:.1f}), Pss "
              f"peak {s.peak_pss / 1024:.1f} MiB (+{g_pss:.1f})")


def main():
    if not (h.BUILD / "odoo-local-api").exists():
        sys.exit(f"big_backup: {h.BUILD}/odoo-local-api not built (make, "
                 "or set NODO_BUILD)")
    free = shutil.disk_usage(os.environ.get("TMPDIR", "/tmp")).free
    if free < 5 * BIG_MB * kit.MIB:
        sys.exit(f"big_backup: {free >> 20} MiB free in TMPDIR, needs "
                 f"{5 * BIG_MB} (5x NODO_BIG_BACKUP_MB)")
    failures, ms, rest = [], [], None
    node = kit.Node(prefix="nodo-big-backup-", log_level="info")
    t_start = time.monotonic()
    try:
        node.start()
        small_mb = max(1, BIG_MB // 10)
        print(f"big_backup: tenants of {BIG_MB} and {small_mb} MiB; "
              f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}; "
              f"build {h.BUILD}", flush=True)
        t0 = time.monotonic()
        make_tenant(node, "small", small_mb)
        make_tenant(node, "big", BIG_MB)
        print(f"big_backup: filled in {time.monotonic() - t0:.0f} s",
              flush=True)
        warm = node.work / "warm.zip"
        kit.api_backup(node.api, "small", warm)
        warm.unlink()
        time.sleep(1)
        for name in ("small", "big"):
            ms.append(measure(node, name, failures))
            print(f"big_backup: {name} backed up in {ms[-1]['api_s']:.1f} s"
                  f" (by hand {ms[-1]['hand_s']:.1f} s); load "
                  f"{os.getloadavg()[0]:.2f}", flush=True)
            if name == "small":
                ms[-1]["zpath"].unlink()
        small, big = ms
        g_small, g_big = small["mem"].growth_mib()[0], \
            big["mem"].growth_mib()[0]
        if g_big - g_small > SLACK_MB:
            failures.append(f"RSS grew {g_big:.1f} MiB backing up "
                            f"{BIG_MB} MiB against {g_small:.1f} MiB for "
                            f"{small_mb} MiB (bound: +{SLACK_MB} MiB)")
        if RESTORE:
            rest = restore(node, big, failures)
        big["zpath"].unlink()
        if node.api.proc.poll() is not None:
            failures.append(f"the daemon died: {node.api.log()[-2000:]}")
        report(ms, rest)
        print(f"  machine: {os.cpu_count()} CPUs, load "
              f"{os.getloadavg()[0]:.2f} at the end; whole run "
              f"{time.monotonic() - t_start:.0f} s")
    except Exception as e:  # noqa: BLE001 - reported as a failure
        failures.append(f"{type(e).__name__}: {e}")
    finally:
        log = node.api.log() if node.api is not None else ""
        rc = node.close()
        if node.api is not None and rc != 0:
            failures.append(f"the daemon exited {rc} on SIGTERM")
        if h.sanitizer_report(log):
            failures.append("sanitizer report:\n" + log[-4000:])
    if failures:
        print(f"big_backup: FAILED ({len(failures)} problem(s))")
        for f in failures[:20]:
            print(f"  - {f}")
        return 1
    print("big_backup: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
