/*
 * names.h - tenant name rules (CONTRACT section 3).
 *
 * A subdomain is 2 to 63 bytes of ^[a-z0-9][a-z0-9_-]*[a-z0-9]$; it is also
 * the database name, so it must never be a system database, a template, or
 * start with the node's internal prefix. Pure functions, thread-safe.
 */
#ifndef NODO_NAMES_H
#define NODO_NAMES_H

#define NAME_MIN     2
#define NAME_MAX_LEN 63 /* PostgreSQL's NAMEDATALEN - 1 and a DNS label */

/*
 * Prefix of the databases and filestore folders of creations in progress.
 * It starts with '_', which no subdomain can, so it never collides.
 */
#define NAME_TMP_PREFIX "_nodo_"

enum name_check {
	NAME_OK,
	NAME_INVALID,  /* breaks the pattern or the length */
	NAME_RESERVED, /* postgres, template0/1, www, the template */
};

/* Checks syntax only: 0 when the name matches the subdomain rule. */
int name_valid(const char *s);

/* Full check; templ is the configured default template (may be NULL). */
enum name_check name_check(const char *s, const char *templ);

/*
 * A template database name: 1 to 63 bytes of a-z, 0-9, '_' and '-', not
 * starting with '-' nor with NAME_TMP_PREFIX. 0 when valid.
 */
int template_name_valid(const char *s);

/* A valid DNS domain name ("sajet.us"), lower case: 0 when valid. */
int domain_valid(const char *s);

#endif
