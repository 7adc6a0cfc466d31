"""kill -9 at random moments of a delete to the trash, a restore from it
and a purge; after each restart (the clean-up runs before the API listens)
the invariant of CONTRACT 9 must hold: the tenant XOR its trash entry,
complete (database + folder + record), never both, never neither; no
stray internal database or folder.

NODO_CRASH_TRIALS sets the trials per operation (15 in `make check`, 50 in
`make stress`); NODO_CRASH_SEED makes a run repeatable."""
import os
import random
import threading
import time
from pathlib import Path

import requests

from conftest import FILESTORE_FILES

TRIALS = max(15, int(os.environ.get("NODO_CRASH_TRIALS", "15")))


def databases(pg):
    """{name: (datallowconn, comment)} of every database but the system's."""
    return {n: (a, c) for n, a, c in pg.su_exec(
        "SELECT datname, datallowconn, coalesce(shobj_description(oid, "
        "'pg_database'), '') FROM pg_database WHERE datname NOT IN "
        "('postgres', 'template0', 'template1', 'tcs')")}


def files_of(root):
    root = Path(root)
    return {str(p.relative_to(root)): p.read_bytes()
            for p in root.rglob("*") if p.is_file()}


class World:
    """What must be true: each name is either a tenant or one entry."""

    def __init__(self, pg, data_dir):
        self.pg, self.fs = pg, Path(data_dir) / "filestore"
        self.problems = []

    def bad(self, msg):
        self.problems.append(msg)

    def state_of(self, name, uuid, where):
        """'tenant', or ('entry', db): checks it is complete and alone."""
        dbs = databases(self.pg)
        entries = [d for d, (_, c) in dbs.items()
                   if d.startswith("_nodo_t")
                   and c.startswith(f"nodo:op=trash;name={name};")]
        tenant = name in dbs
        if tenant == bool(entries) or len(entries) > 1:
            self.bad(f"{where}: {name}: tenant {tenant}, entries {entries}")
            return None
        if tenant:
            allow, com = dbs[name]
            if not allow or not com.startswith("nodo:domain=sajet.us"):
                self.bad(f"{where}: tenant {name} not complete: {allow} "
                         f"{com!r}")
            if files_of(self.fs / name) != FILESTORE_FILES:
                self.bad(f"{where}: tenant {name}: folder not complete")
            c = self.pg.connect(name)
            with c.cursor() as cur:
                cur.execute("SELECT key, value FROM ir_config_parameter "
                            "WHERE key IN ('database.uuid', 'web.base.url')")
                icp = dict(cur.fetchall())
            c.close()
            if icp.get("database.uuid") != uuid:
                self.bad(f"{where}: tenant {name}: another uuid {icp}")
            if icp.get("web.base.url") != f"https://{name}.sajet.us":
                self.bad(f"{where}: tenant {name}: url {icp}")
            return "tenant"
        db = entries[0]
        allow, com = dbs[db]
        if allow or ";restore=" in com or ";purge=1" in com or \
                ";expires_at=" not in com or ";fs=1" not in com:
            self.bad(f"{where}: entry {db} not complete: {allow} {com!r}")
        if files_of(self.fs / db) != FILESTORE_FILES:
            self.bad(f"{where}: entry {db}: folder not complete")
        if (self.fs / name).exists():
            self.bad(f"{where}: entry {db}: folder {name} still there")
        return ("entry", db)

    def no_strays(self, allowed, where):
        dbs = {d for d in databases(self.pg) if d.startswith("_nodo_")}
        if dbs - set(allowed):
            self.bad(f"{where}: stray internal databases {dbs - set(allowed)}")
        folders = {p.name for p in self.fs.iterdir()
                   if p.name.startswith("_nodo_")}
        if folders != dbs & folders or folders - set(allowed):
            self.bad(f"{where}: stray folders {folders - set(allowed)}")


def killed(api, method, path, moment, **kw):
    """Sends the request, kills the API moment seconds later, restarts."""
    result = {}

    def go():
        try:
            result["r"] = requests.request(method, api.url + path,
                                           headers=api.headers(),
                                           timeout=30, **kw)
        except requests.RequestException as e:
            result["e"] = e

    th = threading.Thread(target=go)
    th.start()
    time.sleep(moment)
    api.kill()
    th.join(30)
    assert not th.is_alive()
    api.start()  # cleans up before it listens
    return result.get("r")


def uuid_of(pg, name):
    return pg.su_exec("SELECT value FROM ir_config_parameter "
                      "WHERE key = 'database.uuid'", db=name)[0][0]


def test_crash_during_delete_restore_purge(node, pg, data_dir):
    api = node()
    w = World(pg, data_dir)
    rng = random.Random(os.environ.get("NODO_CRASH_SEED"))
    # Spans: the longest of a few of each, measured here, on this load.
    span = {"delete": 0.0, "restore": 0.0, "purge": 0.0}
    for i in range(2):
        assert api.create(f"warm{i}", "pw").status_code == 201
        t = time.monotonic()
        r = api.delete("/api/tenant", params={"subdomain": f"warm{i}"})
        span["delete"] = max(span["delete"], time.monotonic() - t)
        tid = r.json()["trash"]["id"]
        t = time.monotonic()
        r = api.post(f"/api/trash/{tid}/restore")
        span["restore"] = max(span["restore"], time.monotonic() - t)
        assert r.status_code == 201, r.text
        tid = api.delete("/api/tenant",
                         params={"subdomain": f"warm{i}"}).json()["trash"]["id"]
        t = time.monotonic()
        assert api.delete(f"/api/trash/{tid}").status_code == 200
        span["purge"] = max(span["purge"], time.monotonic() - t)
    outcomes = {k: {"before": 0, "after": 0} for k in span}

    for i in range(TRIALS):
        name, new = f"crash{i}", f"back{i}"
        assert api.create(name, "pw").status_code == 201
        uuid = uuid_of(pg, name)
        # 1. A delete, killed.
        m = rng.uniform(0, span["delete"] * 1.3)
        r = killed(api, "DELETE", f"/api/tenant?subdomain={name}", m)
        where = f"trial {i} delete (kill at {m:.3f} s)"
        st = w.state_of(name, uuid, where)
        if st is None:
            break
        if r is not None and r.status_code == 200 and st == "tenant":
            w.bad(f"{where}: 200 answered but the tenant is back")
        outcomes["delete"]["after" if st != "tenant" else "before"] += 1
        if st == "tenant":
            tid = api.delete("/api/tenant", params={"subdomain": name}
                             ).json()["trash"]["id"]
        else:
            tid = st[1][len("_nodo_t"):]
            # The name is free at once: a create under it works.
            r = api.create(name, "pw2")
            if r.status_code != 201:
                w.bad(f"{where}: the name is not free: {r.text}")
            api.delete("/api/tenant", params={"subdomain": name,
                                              "purge": "true"})
        w.no_strays(["_nodo_t" + tid], where)

        # 2. A restore under a new name, killed.
        m = rng.uniform(0, span["restore"] * 1.3)
        r = killed(api, "POST", f"/api/trash/{tid}/restore", m,
                   json={"subdomain": new})
        where = f"trial {i} restore (kill at {m:.3f} s)"
        # The entry's record still says name=crash{i}: look for either.
        dbs = databases(pg)
        if new in dbs:
            st = w.state_of(new, uuid, where)
            if "_nodo_t" + tid in dbs:
                w.bad(f"{where}: both {new} and its entry")
            outcomes["restore"]["after"] += 1
            if r is not None and r.status_code != 201:
                w.bad(f"{where}: restored, but answered {r.status_code}")
            tid = api.delete("/api/tenant", params={"subdomain": new}
                             ).json()["trash"]["id"]
        else:
            st = w.state_of(name, uuid, where)
            if st == "tenant" or (st and st[1] != "_nodo_t" + tid):
                w.bad(f"{where}: the entry changed: {st}")
            if (Path(data_dir) / "filestore" / new).exists():
                w.bad(f"{where}: folder {new} left")
            if r is not None and r.status_code == 201:
                w.bad(f"{where}: 201 answered but {new} is gone")
            outcomes["restore"]["before"] += 1
        w.no_strays(["_nodo_t" + tid], where)

        # 3. A purge, killed: the entry, complete, or nothing.
        m = rng.uniform(0, span["purge"] * 1.3)
        r = killed(api, "DELETE", f"/api/trash/{tid}", m)
        where = f"trial {i} purge (kill at {m:.3f} s)"
        dbs = databases(pg)
        if "_nodo_t" + tid in dbs:
            outcomes["purge"]["before"] += 1
            allow, com = dbs["_nodo_t" + tid]
            if allow or ";purge=1" in com or files_of(
                    Path(data_dir) / "filestore" / ("_nodo_t" + tid)) != \
                    FILESTORE_FILES:
                w.bad(f"{where}: entry not complete: {com!r}")
            if r is not None and r.status_code == 200:
                w.bad(f"{where}: 200 answered but the entry is there")
            api.delete(f"/api/trash/{tid}")
        else:
            outcomes["purge"]["after"] += 1
        w.no_strays([], where)
        assert not w.problems, "\n".join(w.problems)
    print(f"\ntrash crash trials: {TRIALS} per operation, spans "
          + ", ".join(f"{k} {v * 1000:.0f} ms" for k, v in span.items())
          + f"; outcomes (killed before / after the commit): {outcomes}")
    assert not w.problems, "\n".join(w.problems)
