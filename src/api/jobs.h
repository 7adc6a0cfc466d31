/*
 * jobs.h - a small bounded pool of threads for the slow requests of
 * odoo-local-api (creates, deletes, lists: anything that waits for
 * PostgreSQL, Cloudflare or a password hash), so that libmicrohttpd's poll
 * threads never block and /health is never queued behind a create.
 */
#ifndef NODO_API_JOBS_H
#define NODO_API_JOBS_H

#define JOBS_THREADS 6  /* threads that run jobs */
#define JOBS_HEAVY   4  /* of which at most this many run heavy jobs */
#define JOBS_QUEUE   64 /* jobs waiting or running at once */

struct job {
	void (*fn)(struct job *); /* runs on a pool thread */
	int heavy;                /* counts against JOBS_HEAVY */
	struct job *next;         /* the pool's; the caller owns the job */
};

struct job_pool;

/* Starts the threads (stack bytes each). NULL with a log line on error. */
struct job_pool *jobs_start(int threads, int heavy_max, int queue_max,
    size_t stack);

/*
 * Reserves a place for one job: 0, or -1 when JOBS_QUEUE jobs are waiting
 * or running already, or the pool is stopping. A reservation must be
 * followed by exactly one jobs_submit(). Thread-safe.
 */
int jobs_reserve(struct job_pool *p);

/* Queues j in the place reserved; j->fn runs later on a pool thread. */
void jobs_submit(struct job_pool *p, struct job *j);

/* Jobs waiting and running now (a snapshot). Thread-safe. */
void jobs_counts(struct job_pool *p, int *queued, int *running);

/*
 * Refuses new jobs (jobs_reserve fails from now on), runs every job queued
 * or reserved, joins the threads. The pool stays valid until jobs_free.
 */
void jobs_drain(struct job_pool *p);

/* Drains (if not done) and frees; NULL is fine. */
void jobs_free(struct job_pool *p);

#endif
