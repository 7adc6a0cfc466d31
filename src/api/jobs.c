/*
 * jobs.c - the job pool of odoo-local-api.
 *
 * A FIFO of intrusive jobs under one mutex. A thread takes the oldest job
 * it may run: a heavy job (create, delete) only while fewer than heavy_max
 * heavy jobs run, so that lists still find a thread while four creates
 * wait for PostgreSQL. The number of jobs waiting or running is bounded;
 * the caller reserves a place before it suspends its connection, so a full
 * pool is known before anything is handed over.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "nodo/log.h"
#include "jobs.h"

struct job_pool {
	pthread_mutex_t mu;
	pthread_cond_t work; /* a job was queued, a heavy one ended, or stop */
	struct job *head, *tail;
	int reserved; /* places taken: queued + running + reserved */
	int running, heavy_running;
	int heavy_max, queue_max, nthreads, stopping, joined;
	pthread_t *threads;
};

/* The oldest job this thread may run, unlinked; NULL if none. mu held. */
static struct job *
take(struct job_pool *p)
{
	struct job *prev = NULL, *j;

	for (j = p->head; j != NULL; prev = j, j = j->next) {
		if (j->heavy && p->heavy_running >= p->heavy_max)
			continue;
		if (prev != NULL)
			prev->next = j->next;
		else
			p->head = j->next;
		if (p->tail == j)
			p->tail = prev;
		j->next = NULL;
		return j;
	}
	return NULL;
}

static void *
worker(void *arg)
{
	struct job_pool *p = arg;
	struct job *j;

	pthread_mutex_lock(&p->mu);
	for (;;) {
		if ((j = take(p)) == NULL) {
			/* Reserved places will still be submitted: wait. */
			if (p->stopping && p->reserved == 0)
				break;
			pthread_cond_wait(&p->work, &p->mu);
			continue;
		}
		p->running++;
		if (j->heavy)
			p->heavy_running++;
		pthread_mutex_unlock(&p->mu);
		/* j may be freed by its own fn (its connection resumed). */
		{
			int heavy = j->heavy;

			j->fn(j);
			pthread_mutex_lock(&p->mu);
			p->running--;
			p->reserved--;
			if (heavy)
				p->heavy_running--;
			if (heavy || p->stopping)
				pthread_cond_broadcast(&p->work);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

struct job_pool *
jobs_start(int threads, int heavy_max, int queue_max, size_t stack)
{
	struct job_pool *p = calloc(1, sizeof(*p));
	pthread_attr_t attr;
	int i;

	if (p == NULL ||
	    (p->threads = calloc((size_t)threads, sizeof(*p->threads))) ==
	        NULL) {
		free(p);
		log_err("job pool: out of memory");
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	p->heavy_max = heavy_max;
	p->queue_max = queue_max;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, stack);
	for (i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], &attr, worker, p) != 0) {
			log_err("job pool: cannot start thread %d of %d", i + 1,
			    threads);
			break;
		}
		pthread_setname_np(p->threads[i], "nodo-job");
		p->nthreads++;
	}
	pthread_attr_destroy(&attr);
	if (p->nthreads < threads) {
		jobs_free(p);
		return NULL;
	}
	return p;
}

int
jobs_reserve(struct job_pool *p)
{
	int rc = -1;

	pthread_mutex_lock(&p->mu);
	if (!p->stopping && p->reserved < p->queue_max) {
		p->reserved++;
		rc = 0;
	}
	pthread_mutex_unlock(&p->mu);
	return rc;
}

void
jobs_submit(struct job_pool *p, struct job *j)
{
	j->next = NULL;
	pthread_mutex_lock(&p->mu);
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
}

void
jobs_counts(struct job_pool *p, int *queued, int *running)
{
	pthread_mutex_lock(&p->mu);
	*running = p->running;
	*queued = p->reserved - p->running;
	pthread_mutex_unlock(&p->mu);
}

void
jobs_drain(struct job_pool *p)
{
	int i;

	pthread_mutex_lock(&p->mu);
	p->stopping = 1;
	pthread_cond_broadcast(&p->work);
	pthread_mutex_unlock(&p->mu);
	if (p->joined)
		return;
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	p->joined = 1;
}

void
jobs_free(struct job_pool *p)
{
	if (p == NULL)
		return;
	jobs_drain(p);
	pthread_cond_destroy(&p->work);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
