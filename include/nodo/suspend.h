/*
 * suspend.h - suspending and resuming a tenant (CONTRACT section 10,
 * DESIGN.md "Suspend and resume").
 *
 * A suspended tenant is a tenant database whose comment carries the mark
 * ";suspended=1" (with the users count and created_at read at suspend
 * time: nobody can connect to count them later) and which refuses
 * connections (datallowconn false). The mark and ALLOW_CONNECTIONS change
 * in one transaction; the sessions are ended after it commits. The mark
 * is the truth: a marked database that still allows connections or still
 * has sessions (a crash, a hand edit) is a suspend not finished, which
 * suspend_recover() finishes. Data, filestore and DNS record stay.
 */
#ifndef NODO_SUSPEND_H
#define NODO_SUSPEND_H

#include "nodo/tenant.h"

/* A POSIX regular expression (SQL literal) matching a marked comment. */
#define SUSPEND_MARK_RE "'^nodo:([^;]*;)*suspended=1(;|$)'"

/* 1 when comment (may be NULL) carries the suspend mark, else 0. */
int suspend_marked(const char *comment);

/*
 * The comment without the mark's keys (suspended, users, created_at) into
 * out: "nodo:..." ("nodo:" alone when nothing else was left; a comment not
 * of ours is not kept). 0, or -1 when it does not fit in len bytes.
 */
int suspend_strip_mark(const char *comment, char *out, size_t len);

/*
 * Suspends (suspend 1) or resumes (0) the tenant name: TENANT_OK when it
 * is (now or already) in that state; TENANT_INVALID_SUBDOMAIN,
 * TENANT_NOT_FOUND (no tenant: absent, a template, internal, another
 * role's), TENANT_EXISTS (the name is busy with another operation of this
 * process: 409), TENANT_DB_UNAVAILABLE, TENANT_INTERNAL, with res->detail.
 */
enum tenant_err tenant_suspend(const struct tenant_ctx *t, const char *name,
    int suspend, struct tenant_result *res);

/*
 * Finishes the suspends a crash or a hand edit left half done: marked
 * tenants that allow connections or have sessions are closed and their
 * sessions ended. Skips names busy in this process. 0, or -1 when
 * PostgreSQL could not be asked.
 */
int suspend_recover(const struct tenant_ctx *t);

#endif
