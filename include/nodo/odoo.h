/*
 * odoo.h - what the node knows of an Odoo database (ODOO.md): its
 * configuration parameters and identities. Thread-safe.
 */
#ifndef NODO_ODOO_H
#define NODO_ODOO_H

#include <stddef.h>
#include <libpq-fe.h>

/*
 * Sets ir_config_parameter keys to values (text[] literals of the same
 * length, e.g. "{web.base.url,web.base.url.freeze}") in the database c is
 * connected to, as set_param does: 0, or -1 with err.
 */
int odoo_set_params(PGconn *c, const char *keys, const char *vals, char *err,
    size_t errlen);

/* A uuid4 (random) or uuid1 (time based, random node) as Odoo makes it. */
int odoo_uuid(char out[37], int version);

#endif
