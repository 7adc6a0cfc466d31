#!/usr/bin/python3
"""A small stand-in for the seed's list endpoint, for tests/bench/bench.py.

The seed (FastAPI + uvicorn + psycopg2, not in this repository) answered
GET /api/tenants from PostgreSQL on every request. This does the same on
Debian's python3-fastapi and python3-uvicorn: one uvicorn worker, a sync
endpoint (FastAPI's thread pool), one psycopg2 connection kept per thread
(kinder to the stand-in than a connection per request), the node's own
list query, the same JSON. Usage:
  seed_standin.py PORT  (PGHOST, PGPORT, PGUSER, PGPASSWORD, API_KEY,
                         ODOO_DOMAIN in the environment)
"""
import os
import sys
import threading

import psycopg2
import uvicorn
from fastapi import FastAPI, Header, HTTPException

SQL = ("SELECT d.datname, coalesce(shobj_description(d.oid, 'pg_database'),"
       " '') FROM pg_database d WHERE d.datdba = (SELECT oid FROM pg_roles"
       " WHERE rolname = current_user) AND NOT d.datistemplate AND"
       " d.datallowconn AND d.datname NOT IN ('postgres', 'template0',"
       " 'template1', 'tcs') AND left(d.datname, 6) <> '_nodo_'"
       " ORDER BY d.datname COLLATE \"C\"")
app = FastAPI()
local = threading.local()
DOMAIN = os.environ.get("ODOO_DOMAIN", "sajet.us")


def conn():
    c = getattr(local, "c", None)
    if c is None or c.closed:
        c = psycopg2.connect(dbname="postgres")
        c.autocommit = True
        local.c = c
    return c


@app.get("/api/tenants")
def tenants(x_api_key: str = Header(None)):
    if x_api_key != os.environ["API_KEY"]:
        raise HTTPException(status_code=401, detail="invalid key")
    with conn().cursor() as cur:
        cur.execute(SQL)
        rows = cur.fetchall()
    out = []
    for name, comment in rows:
        dom = DOMAIN
        if comment.startswith("nodo:domain="):
            dom = comment[len("nodo:domain="):].split(";")[0]
        out.append({"subdomain": name, "database": name, "domain": dom,
                    "url": f"https://{name}.{dom}"})
    return {"tenants": out, "count": len(out)}


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]),
                log_level="warning", access_log=False)
