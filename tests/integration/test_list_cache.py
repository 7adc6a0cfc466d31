"""GET /api/tenants from the in-process cache (DESIGN.md "The tenant list
cache"): the node's own creates and deletes show at once; what is done to
the databases by hand (create, drop, rename, comment, flags) shows after
the next catalog check, a fraction of a second; the JSON is the same."""
import time

from conftest import NODE_ROLE

# The daemon checks the catalog every 250 ms; this only bounds how long the
# test waits (a timing is measured by tests/bench/bench.py, not asserted).
WAIT_S = 10


def names(api, **params):
    r = api.get("/api/tenants", params=params)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["count"] == len(body["tenants"])
    return [t["subdomain"] for t in body["tenants"]]


def eventually(api, want, **params):
    """The list reaches `want`; returns how long it took."""
    t0 = time.monotonic()
    while True:
        got = names(api, **params)
        if got == want:
            return time.monotonic() - t0
        assert time.monotonic() - t0 < WAIT_S, f"still {got}, want {want}"
        time.sleep(0.02)


def test_own_changes_show_at_once(api):
    assert names(api) == []
    for i in range(5):
        assert api.create(f"own{i}", "pw").status_code == 201
        # No wait at all: the create invalidated the cache.
        assert names(api) == [f"own{j}" for j in range(i + 1)]
    assert api.create("otra", "pw", domain="otro.dominio").status_code == 201
    assert names(api, domain="otro.dominio") == ["otra"]
    assert names(api, domain="sajet.us") == [f"own{j}" for j in range(5)]
    for i in range(5):
        assert api.delete(f"/api/tenant?subdomain=own{i}").status_code == 200
        assert names(api) == ["otra"] + [f"own{j}" for j in range(i + 1, 5)]


def test_changes_by_hand_show(api, pg):
    assert names(api) == []
    pg.su_exec(f"CREATE DATABASE hand1 OWNER {NODE_ROLE} TEMPLATE tcs")
    eventually(api, ["hand1"])
    # The domain is the database's comment: a new one moves the tenant.
    pg.su_exec("COMMENT ON DATABASE hand1 IS 'nodo:domain=otro.dominio'")
    eventually(api, ["hand1"], domain="otro.dominio")
    eventually(api, [], domain="sajet.us")
    pg.su_exec("COMMENT ON DATABASE hand1 IS NULL")
    eventually(api, ["hand1"], domain="sajet.us")
    pg.su_exec("ALTER DATABASE hand1 RENAME TO hand2")
    eventually(api, ["hand2"])
    pg.su_exec("ALTER DATABASE hand2 ALLOW_CONNECTIONS false")
    eventually(api, [])
    pg.su_exec("ALTER DATABASE hand2 ALLOW_CONNECTIONS true")
    eventually(api, ["hand2"])
    pg.su_exec("ALTER DATABASE hand2 IS_TEMPLATE true")
    eventually(api, [])
    pg.su_exec("ALTER DATABASE hand2 IS_TEMPLATE false")
    eventually(api, ["hand2"])
    pg.su_exec("ALTER DATABASE hand2 OWNER TO postgres")
    eventually(api, [])
    pg.su_exec(f"ALTER DATABASE hand2 OWNER TO {NODE_ROLE}")
    eventually(api, ["hand2"])
    # A drop and a create between two checks: same count, other rows.
    pg.su_exec("DROP DATABASE hand2")
    pg.su_exec(f"CREATE DATABASE hand3 OWNER {NODE_ROLE} TEMPLATE tcs")
    eventually(api, ["hand3"])
    pg.su_exec("DROP DATABASE hand3")
    eventually(api, [])


def test_by_hand_between_own_changes(api, pg):
    """A snapshot read before a database made by hand is not kept past
    the next check, even when the node's own create came just before."""
    assert api.create("own1", "pw").status_code == 201
    pg.su_exec(f"CREATE DATABASE hand1 OWNER {NODE_ROLE} TEMPLATE tcs")
    assert "own1" in names(api)
    eventually(api, ["hand1", "own1"])


def test_same_json_as_before(api, pg):
    """Byte for byte what the list rendered before the cache (plus each
    item's state, since suspend)."""
    assert api.create("beta", "pw", domain="otro.dominio").status_code == 201
    assert api.create("alfa", "pw").status_code == 201
    r = api.get("/api/tenants")
    assert r.headers["Content-Type"] == "application/json"
    assert r.headers["Cache-Control"] == "no-store"
    assert r.content == (
        b'{"tenants":[{"subdomain":"alfa","database":"alfa",'
        b'"domain":"sajet.us","url":"https://alfa.sajet.us",'
        b'"state":"active"},'
        b'{"subdomain":"beta","database":"beta","domain":"otro.dominio",'
        b'"url":"https://beta.otro.dominio","state":"active"}],"count":2}')
    r = api.get("/api/tenants", params={"domain": "OTRO.dominio"})
    assert r.content == (
        b'{"tenants":[{"subdomain":"beta","database":"beta",'
        b'"domain":"otro.dominio","url":"https://beta.otro.dominio",'
        b'"state":"active"}],"count":1}')
    r = api.get("/api/tenants", params={"domain": "nope.example"})
    assert r.status_code == 422 and r.json()["code"] == "unknown_domain"


def test_postgres_down_is_503_not_stale(node, pg):
    """Without PostgreSQL the cache is not served: the list says 503 as it
    did without a cache, and comes back with PostgreSQL."""
    api = node()
    assert api.create("uno", "pw").status_code == 201
    assert names(api) == ["uno"]
    pg.stop()
    try:
        t0 = time.monotonic()
        while True:
            r = api.get("/api/tenants")
            if r.status_code == 503:
                break
            assert r.status_code == 200
            assert time.monotonic() - t0 < WAIT_S, "cache served on"
            time.sleep(0.05)
        assert r.json()["code"] == "database_unavailable"
    finally:
        pg.start()
    t0 = time.monotonic()
    while api.get("/api/tenants").status_code != 200:
        assert time.monotonic() - t0 < 30
        time.sleep(0.1)
    assert names(api) == ["uno"]


def test_many_readers_while_changing(api, pg):
    """Lists from many threads while the node creates and deletes: every
    answer is a whole list (count matches) and the end state is exact."""
    import concurrent.futures
    import threading

    stop = threading.Event()
    bad = []

    def reader():
        n = 0
        while not stop.is_set():
            try:
                names(api)
            except AssertionError as e:  # pragma: no cover - reported
                bad.append(str(e))
            n += 1
        return n

    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        futs = [ex.submit(reader) for _ in range(4)]
        for i in range(4):
            assert api.create(f"c{i}", "pw").status_code == 201
        for i in range(0, 4, 2):
            assert api.delete(f"/api/tenant?subdomain=c{i}").status_code \
                == 200
        stop.set()
        reads = sum(f.result() for f in futs)
    assert not bad, bad[:3]
    assert reads > 0
    assert names(api) == ["c1", "c3"]
