/*
 * ncache.c - a chained hash table of (zone, label) entries (ncache.h).
 *
 * Buckets double when the table is fuller than one entry per bucket, so a
 * look-up stays a handful of comparisons with thousands of tenants; entries
 * never move, which lets the reconcile pass keep pointers to them.
 */
#include <stdlib.h>
#include <string.h>

#include "ncache.h"
#include "nodo/util.h"

#define NCACHE_MIN_BUCKETS 64        /* buckets of an empty table */
#define NCACHE_MAX_BUCKETS (1 << 24) /* never grow past this */

/* FNV-1a over the zone index and the label. */
static uint32_t
ncache_hash(uint32_t zone, const char *label)
{
	uint32_t h = 2166136261u;
	int i;

	for (i = 0; i < 4; i++) {
		h ^= (zone >> (8 * i)) & 0xff;
		h *= 16777619u;
	}
	for (; *label != '\0'; label++) {
		h ^= (unsigned char)*label;
		h *= 16777619u;
	}
	return h;
}

int
ncache_init(struct ncache *c)
{
	memset(c, 0, sizeof(*c));
	if ((c->b = calloc(NCACHE_MIN_BUCKETS, sizeof(*c->b))) == NULL)
		return -1;
	c->nb = NCACHE_MIN_BUCKETS;
	return 0;
}

void
ncache_entry_free(struct ncache_entry *e)
{
	if (e == NULL)
		return;
	free(e->conflict);
	free(e);
}

void
ncache_free(struct ncache *c)
{
	struct ncache_entry *e, *next;
	size_t i;

	for (i = 0; i < c->nb; i++) {
		for (e = c->b[i]; e != NULL; e = next) {
			next = e->next;
			ncache_entry_free(e);
		}
	}
	free(c->b);
	memset(c, 0, sizeof(*c));
}

struct ncache_entry *
ncache_find(const struct ncache *c, uint32_t zone, const char *label)
{
	struct ncache_entry *e;

	if (c->nb == 0)
		return NULL;
	e = c->b[ncache_hash(zone, label) & (c->nb - 1)];
	for (; e != NULL; e = e->next) {
		if (e->zone == zone && strcmp(e->label, label) == 0)
			return e;
	}
	return NULL;
}

/* Doubles the buckets; a failure only leaves chains longer. */
static void
ncache_grow(struct ncache *c)
{
	struct ncache_entry **nb, *e, *next;
	size_t i, n = c->nb * 2, k;

	if (n > NCACHE_MAX_BUCKETS || (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (i = 0; i < c->nb; i++) {
		for (e = c->b[i]; e != NULL; e = next) {
			next = e->next;
			k = ncache_hash(e->zone, e->label) & (n - 1);
			e->next = nb[k];
			nb[k] = e;
		}
	}
	free(c->b);
	c->b = nb;
	c->nb = n;
}

int
ncache_link(struct ncache *c, struct ncache_entry *e)
{
	size_t k;

	if (c->nb == 0 && ncache_init(c) == -1)
		return -1;
	if (c->n >= c->nb)
		ncache_grow(c);
	k = ncache_hash(e->zone, e->label) & (c->nb - 1);
	e->next = c->b[k];
	c->b[k] = e;
	c->n++;
	return 0;
}

struct ncache_entry *
ncache_get(struct ncache *c, uint32_t zone, const char *label)
{
	struct ncache_entry *e;

	if ((e = ncache_find(c, zone, label)) != NULL)
		return e;
	if (strlen(label) > NAME_MAX_LEN || (e = calloc(1, sizeof(*e))) == NULL)
		return NULL;
	e->zone = zone;
	nodo_strlcpy(e->label, label, sizeof(e->label));
	if (ncache_link(c, e) == -1) {
		free(e);
		return NULL;
	}
	return e;
}

void
ncache_unlink(struct ncache *c, struct ncache_entry *e)
{
	struct ncache_entry **pp;

	pp = &c->b[ncache_hash(e->zone, e->label) & (c->nb - 1)];
	for (; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			e->next = NULL;
			c->n--;
			return;
		}
	}
}

void
ncache_each(struct ncache *c, ncache_fn fn, void *arg)
{
	struct ncache_entry **pp, *e, *next;
	size_t i;
	int r;

	for (i = 0; i < c->nb; i++) {
		pp = &c->b[i];
		while ((e = *pp) != NULL) {
			/* fn may link e elsewhere (2), rewriting e->next. */
			next = e->next;
			if ((r = fn(arg, e)) == 0) {
				pp = &e->next;
				continue;
			}
			*pp = next;
			c->n--;
			if (r == 1)
				ncache_entry_free(e);
		}
	}
}
