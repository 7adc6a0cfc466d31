/*
 * odoo.c - what the node knows of Odoo's database (ODOO.md): its
 * ir_config_parameter keys, its admin user, its identities (uuid1/uuid4 as
 * Odoo makes them), file-backed attachments.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "nodo/odoo.h"
#include "nodo/pg.h"
#include "nodo/tenant.h"

const char tenant_admin_password_sql[] =
    "UPDATE res_users SET password = $1 WHERE id = (SELECT res_id"
    " FROM ir_model_data WHERE module = 'base' AND name = 'user_admin'"
    " AND model = 'res.users')";

int
odoo_set_params(PGconn *c, const char *keys, const char *vals, char *err,
    size_t errlen)
{
	/* ir.config_parameter's set_param for several keys: update or insert. */
	static const char sql[] =
	    "WITH v(key, value) AS (SELECT * FROM unnest($1::text[], "
	    "$2::text[])),"
	    " u AS (UPDATE ir_config_parameter p SET value = v.value,"
	    " write_uid = 1, write_date = now() AT TIME ZONE 'UTC'"
	    " FROM v WHERE p.key = v.key RETURNING p.key)"
	    " INSERT INTO ir_config_parameter"
	    " (key, value, create_uid, write_uid, create_date, write_date)"
	    " SELECT key, value, 1, 1, now() AT TIME ZONE 'UTC',"
	    " now() AT TIME ZONE 'UTC' FROM v"
	    " WHERE key NOT IN (SELECT key FROM u)";
	const char *p[2] = { keys, vals };

	return pg_exec(c, sql, 2, p, err, errlen, NULL);
}

/* uuid4 (random) and uuid1 (time based, random node) as Odoo stores them. */
int
odoo_uuid(char out[37], int version)
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
	if (version == 1) {
		struct timespec ts;
		unsigned long long t;

		clock_gettime(CLOCK_REALTIME, &ts);
		/* 100 ns intervals since 1582-10-15 (RFC 4122). */
		t = (unsigned long long)ts.tv_sec * 10000000ULL +
		    (unsigned long long)ts.tv_nsec / 100 +
		    0x01B21DD213814000ULL;
		b[0] = (unsigned char)(t >> 24);
		b[1] = (unsigned char)(t >> 16);
		b[2] = (unsigned char)(t >> 8);
		b[3] = (unsigned char)t;
		b[4] = (unsigned char)(t >> 40);
		b[5] = (unsigned char)(t >> 32);
		b[6] = (unsigned char)((t >> 56) & 0x0f) | 0x10;
		b[7] = (unsigned char)(t >> 48);
		b[10] |= 0x01; /* multicast bit: a random node id */
	} else
		b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, 37,
	    "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10],
	    b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

int
tenant_db_has_files(PGconn *c, char *err, size_t errlen)
{
	PGresult *r;
	int rc = -1;

	/* An Odoo database always has the table; a bare copy may not. */
	r = pg_query(c,
	    "SELECT to_regclass('ir_attachment') IS NOT NULL"
	    " AND EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
	    " to_regclass('ir_attachment') AND attname = 'store_fname'"
	    " AND NOT attisdropped)",
	    0, NULL);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		rc = PQgetvalue(r, 0, 0)[0] == 't';
	else
		snprintf(err, errlen, "%s", pg_result_error(c, r));
	PQclear(r);
	if (rc != 1)
		return rc;
	r = pg_query(c,
	    "SELECT 1 FROM ir_attachment WHERE store_fname IS NOT NULL"
	    " LIMIT 1",
	    0, NULL);
	if (PQresultStatus(r) == PGRES_TUPLES_OK)
		rc = PQntuples(r) > 0;
	else {
		snprintf(err, errlen, "%s", pg_result_error(c, r));
		rc = -1;
	}
	PQclear(r);
	return rc;
}
