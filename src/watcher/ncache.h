/*
 * ncache.h - the watcher's memory of the names in its zones.
 *
 * One entry per (zone, first-level label): what Cloudflare holds on the name
 * as of the last zone read or our own last change, and what the watcher
 * knows about the tenant of that name (when it was last listed, how long it
 * has been absent, whether a conflict was already logged). Only first-level
 * labels that could be tenants are kept, so the cache stays small however
 * many other records a zone holds. Entries are allocated one by one, so a
 * pointer to an entry stays valid until that entry is removed. Not
 * thread-safe: the watcher has one thread.
 */
#ifndef NODO_WATCHER_NCACHE_H
#define NODO_WATCHER_NCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "nodo/cloudflare.h"
#include "nodo/names.h"

/* Zone index of entries for tenants whose domain is not a configured zone. */
#define NCACHE_NO_ZONE UINT32_MAX

/* What holds the name, in the order cf_ensure_cname prefers them. */
enum ncache_state {
	NC_NONE,    /* nothing we know of: the tenant needs its record */
	NC_FOREIGN, /* a record we do not own: a conflict, left alone */
	NC_DRIFT,   /* our CNAME, but another target or not proxied */
	NC_OURS,    /* our CNAME to our target, proxied: nothing to do */
};

struct ncache_entry {
	struct ncache_entry *next; /* hash chain */
	uint32_t zone;             /* index into settings->zones */
	unsigned char state;       /* enum ncache_state */
	unsigned char absent;      /* polls in a row without its tenant */
	unsigned char conflict_logged;
	unsigned char dry_logged;  /* --dry-run said what it would do */
	unsigned char zone_warned; /* NCACHE_NO_ZONE: warned once */
	unsigned fails;            /* failures of this name alone, in a row */
	unsigned long seen_poll;   /* last poll that listed its tenant */
	int64_t absent_since_ms;   /* first poll that missed it (ms), or 0 */
	int64_t not_before_ms;     /* no call for it before (monotonic ms) */
	char *conflict;            /* NC_FOREIGN: sentence naming the record */
	char id[CF_MAX_ID + 1];    /* NC_OURS/NC_DRIFT: our record's id */
	char label[NAME_MAX_LEN + 1];
};

struct ncache {
	struct ncache_entry **b; /* buckets */
	size_t nb;               /* number of buckets, a power of two */
	size_t n;                /* entries */
};

/* 0, or -1 when out of memory. */
int ncache_init(struct ncache *c);

/* Frees every entry and the buckets; safe on a zeroed struct. */
void ncache_free(struct ncache *c);

/* The entry, or NULL. label must be at most NAME_MAX_LEN bytes. */
struct ncache_entry *ncache_find(const struct ncache *c, uint32_t zone,
    const char *label);

/*
 * The entry, created zeroed (NC_NONE) when missing; NULL when out of memory
 * or when label is too long.
 */
struct ncache_entry *ncache_get(struct ncache *c, uint32_t zone,
    const char *label);

/* Takes e out of c (without freeing it). */
void ncache_unlink(struct ncache *c, struct ncache_entry *e);

/* Puts an unlinked entry into c; 0, or -1 when out of memory. */
int ncache_link(struct ncache *c, struct ncache_entry *e);

/* Frees an unlinked entry. */
void ncache_entry_free(struct ncache_entry *e);

/*
 * Calls fn for each entry. fn returns 0 to keep it, 1 to have it removed and
 * freed, 2 to have it removed only (fn took it, e.g. linked it into another
 * cache). fn must not otherwise add to or remove from c.
 */
typedef int (*ncache_fn)(void *arg, struct ncache_entry *e);
void ncache_each(struct ncache *c, ncache_fn fn, void *arg);

#endif
