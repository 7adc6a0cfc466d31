/*
 * pollprio.c - SCHED_RR for the poll threads, within a CPU budget
 * (pollprio.h).
 */
#include <errno.h>
#include <sched.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "nodo/log.h"
#include "pollprio.h"

/* One poll thread's view; each thread has its own. */
static _Thread_local struct {
	int started;
	int rt_ok;              /* SCHED_RR was granted at the start */
	enum pollprio_state st; /* now */
	long long win_ns;       /* monotonic: the window's start */
	long long cpu_ns;       /* the thread's CPU time then */
} me;

static long long
clock_ns(clockid_t id)
{
	struct timespec ts;

	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SCHED_RR (rt) or SCHED_OTHER, keeping the nice; 0 or -1 (errno). */
static int
set_policy(int rt)
{
	struct sched_param sp = { .sched_priority = rt ? POLLPRIO_RT_PRIO : 0 };

	/* A process this thread spawned would not inherit real-time. */
	return sched_setscheduler(0,
	    (rt ? SCHED_RR : SCHED_OTHER) | SCHED_RESET_ON_FORK, &sp);
}

static void
start(int nice)
{
	me.started = 1;
	me.st = POLLPRIO_NORMAL;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice) != 0)
		log_debug("poll thread left at its nice: setpriority(%d): %s",
		    nice, strerror(errno));
	if (set_policy(1) != 0) {
		log_debug("poll thread not real-time: SCHED_RR %d: %s "
		          "(LimitRTPRIO=%d allows it)",
		    POLLPRIO_RT_PRIO, strerror(errno), POLLPRIO_RT_PRIO);
		return;
	}
	me.rt_ok = 1;
	me.st = POLLPRIO_RT;
	me.win_ns = clock_ns(CLOCK_MONOTONIC);
	me.cpu_ns = clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

int
pollprio_tick(int nice, enum pollprio_state *state)
{
	long long now, cpu;
	int limited = 0;

	if (!me.started)
		start(nice);
	else if (me.rt_ok) {
		now = clock_ns(CLOCK_MONOTONIC);
		cpu = clock_ns(CLOCK_THREAD_CPUTIME_ID);
		if (now - me.win_ns >= POLLPRIO_WINDOW_MS * 1000000LL) {
			me.win_ns = now;
			me.cpu_ns = cpu;
			if (me.st == POLLPRIO_LIMITED && set_policy(1) == 0)
				me.st = POLLPRIO_RT;
		} else if (me.st == POLLPRIO_RT &&
		    cpu - me.cpu_ns > POLLPRIO_BUDGET_MS * 1000000LL &&
		    set_policy(0) == 0) {
			me.st = POLLPRIO_LIMITED;
			limited = 1;
		}
	}
	if (state != NULL)
		*state = me.st;
	return limited;
}
