"""Moving a tenant between two nodes (CONTRACT section 10, docs/MOVES.md):
two API processes on two ports against two PostgreSQL clusters and one
fake Cloudflare. Back up on A, restore on B with dns=takeover (the record
now points at B's tunnel), DELETE on A leaves B's record alone."""
import shutil
import tempfile
from pathlib import Path

import pytest

from conftest import (TUNNEL_ID, ZONE_SAJET, Postgres, drop_tenants,
                      make_template)
from test_backup import table_rows, tree
from test_restore import backup_bytes, icp, restore

TUNNEL_B = "0b0b0b0b-1111-4222-8333-b0b0b0b0b0b0"
OWNER = "managed-by=nodo"


@pytest.fixture(scope="module")
def second():
    """Node B's own cluster and data folder, with its own template tcs."""
    pg2 = Postgres()
    d2 = Path(tempfile.mkdtemp(prefix="nodo-data-b-"))
    try:
        pg2.init()
        make_template(pg2, d2)
        yield pg2, d2
    finally:
        pg2.destroy()
        shutil.rmtree(d2, ignore_errors=True)


@pytest.fixture
def node_b(node, second):
    pg2, d2 = second
    made = []

    def make(**extra):
        b = node(PGHOST=pg2.host, PGPORT=str(pg2.port),
                 ODOO_DATA_DIR=str(d2), CF_TUNNEL_ID=TUNNEL_B, **extra)
        made.append(b)
        return b
    yield make
    for b in made:
        b.stop()
    drop_tenants(pg2, d2)


def record(cloudflare, fqdn):
    recs = [r for r in cloudflare.records(ZONE_SAJET) if r["name"] == fqdn]
    assert len(recs) == 1, recs
    return recs[0]


def test_move_between_nodes(api, node_b, second, pg, data_dir, cloudflare):
    pg2, d2 = second
    b = node_b()
    assert api.create("viajero", password="clave-viaje").status_code == 201
    rec_a = record(cloudflare, "viajero.sajet.us")
    assert rec_a["content"] == f"{TUNNEL_ID}.cfargotunnel.com"
    c = pg.connect("viajero")
    with c.cursor() as cur:
        cur.execute("INSERT INTO res_users (login, active, share) VALUES "
                    "('cliente', true, false)")
    c.close()
    zipped = backup_bytes(api, "viajero")

    # Without takeover, A's record is not B's: a conflict, left as it is.
    r = restore(b, "viajero", zipped)
    assert r.status_code == 201, r.text
    assert r.json()["dns"]["status"] == "conflict"
    assert record(cloudflare, "viajero.sajet.us")["content"] == \
        rec_a["content"]
    assert b.delete("/api/tenant?subdomain=viajero&purge=true"
                    ).status_code == 200
    assert record(cloudflare, "viajero.sajet.us")["content"] == \
        rec_a["content"]

    # With takeover: the same record now points at B's tunnel.
    r = restore(b, "viajero", zipped, dns="takeover")
    assert r.status_code == 201, r.text
    assert r.json()["dns"]["status"] == "created"
    assert r.json()["dns"]["record_id"] == rec_a["id"]
    rec_b = record(cloudflare, "viajero.sajet.us")
    assert rec_b["id"] == rec_a["id"]
    assert rec_b["content"] == f"{TUNNEL_B}.cfargotunnel.com"
    assert rec_b["comment"] == OWNER and rec_b["proxied"] is True
    for k in ("database.uuid", "database.secret"):
        assert icp(pg2, "viajero", k) == icp(pg, "viajero", k)
    assert table_rows(pg2, "viajero", "res_users") == \
        table_rows(pg, "viajero", "res_users")
    assert tree(d2 / "filestore" / "viajero") == \
        tree(Path(data_dir) / "filestore" / "viajero")

    # DELETE on A: its database goes, B's record stays.
    r = api.delete("/api/tenant?subdomain=viajero&purge=true")
    assert r.status_code == 200, r.text
    assert r.json()["dns"]["status"] in ("absent", "deleted")
    assert "viajero" not in pg.databases()
    assert record(cloudflare, "viajero.sajet.us")["content"] == \
        f"{TUNNEL_B}.cfargotunnel.com"
    assert "viajero" in pg2.databases()


def test_takeover_never_takes_a_foreign_record(api, node_b, pg, cloudflare):
    b = node_b()
    assert api.create("ajeno").status_code == 201
    zipped = backup_bytes(api, "ajeno")
    assert api.delete("/api/tenant?subdomain=ajeno&purge=true"
                      ).status_code == 200
    rid = cloudflare.add_record(ZONE_SAJET, "CNAME", "ajeno.sajet.us",
                                "someone-else.example.com", proxied=True,
                                comment="hand made")
    r = restore(b, "ajeno", zipped, dns="takeover")
    assert r.status_code == 201, r.text
    assert r.json()["dns"]["status"] == "conflict"
    rec = record(cloudflare, "ajeno.sajet.us")
    assert rec["id"] == rid and rec["content"] == "someone-else.example.com"
    assert rec["comment"] == "hand made"
