/*
 * pollprio.c - SCHED_RR for the poll threads, within a CPU budget the
 * kernel enforces (pollprio.h).
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "nodo/log.h"
#include "pollprio.h"

/* Debian 12's glibc (2.36) does not name the field. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

/* One poll thread's view; each thread has its own. */
static _Thread_local struct {
	int started;
	timer_t budget;            /* on this thread's CPU clock */
	timer_t window;            /* monotonic: the rest of the window */
	volatile long long win_ns; /* monotonic: the window's start */
	volatile sig_atomic_t rt;  /* SCHED_RR now (the handler clears it) */
} me;

enum { TIMER_BUDGET = 1, TIMER_WINDOW }; /* sival_int of each timer */

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_ok;
static atomic_ulong limited_total; /* lock-free: the handler adds */
_Static_assert(ATOMIC_LONG_LOCK_FREE == 2, "the handler's counter");

static long long
mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* SCHED_RR (rt) or SCHED_OTHER; the nice stays. 0 or -1 (errno). */
static int
set_policy(int rt)
{
	struct sched_param sp = { .sched_priority = rt ? POLLPRIO_RT_PRIO : 0 };

	/* Neither a thread nor a process it starts inherits real-time. */
	return sched_setscheduler(0,
	    (rt ? SCHED_RR : SCHED_OTHER) | SCHED_RESET_ON_FORK, &sp);
}

/* Timer t fires once, ns from now: 0 or -1. */
static int
arm(timer_t t, long ns)
{
	struct itimerspec it = {
		.it_value = { .tv_sec = ns / 1000000000L,
		    .tv_nsec = ns % 1000000000L },
	};

	return timer_settime(t, 0, &it, NULL);
}

/* Real-time, its budget full; SCHED_OTHER if refused. 0 or -1. */
static int
raise_rt(void)
{
	/* The timer first: the thread is never real-time without it. */
	if (arm(me.budget, POLLPRIO_BUDGET_MS * 1000000L) != 0)
		return -1;
	me.win_ns = mono_ns();
	me.rt = 1;
	if (set_policy(1) != 0) {
		me.rt = 0;
		return -1;
	}
	return 0;
}

/*
 * A timer of this thread fired (SIGEV_THREAD_ID; only timers count, by
 * their sival_int). TIMER_BUDGET: the thread ran its budget, so it goes
 * back to SCHED_OTHER where it stands, until TIMER_WINDOW, at the end of
 * the window, gives it real-time back. Lowering one's own policy is
 * always allowed; were it refused, the budget timer tries again in a
 * millisecond. Everything here is a plain system call or a lock-free
 * atomic.
 */
static void
on_timer(int sig, siginfo_t *si, void *uc)
{
	int e = errno;

	(void)sig;
	(void)uc;
	if (si->si_code != SI_TIMER)
		return;
	if (si->si_value.sival_int == TIMER_BUDGET && me.rt) {
		if (set_policy(0) == 0) {
			me.rt = 0;
			atomic_fetch_add_explicit(&limited_total, 1,
			    memory_order_relaxed);
			(void)arm(me.window,
			    (POLLPRIO_WINDOW_MS - POLLPRIO_BUDGET_MS) *
			        1000000L);
		} else
			(void)arm(me.budget, 1000000L);
	} else if (si->si_value.sival_int == TIMER_WINDOW && !me.rt)
		(void)raise_rt();
	errno = e;
}

static void
install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_timer;
	sa.sa_flags = SA_SIGINFO | SA_RESTART; /* read(), write() go on */
	sigemptyset(&sa.sa_mask);
	handler_ok = sigaction(SIGRTMIN, &sa, NULL) == 0;
}

/* A timer on clock that signals this thread with sival_int id. */
static int
new_timer(clockid_t clock, int id, timer_t *t)
{
	struct sigevent ev;

	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGRTMIN;
	ev.sigev_value.sival_int = id;
	ev.sigev_notify_thread_id = gettid();
	return timer_create(clock, &ev, t);
}

static void
start(int nice)
{
	sigset_t set;

	me.started = 1;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice) != 0)
		log_debug("poll thread left at its nice: setpriority(%d): %s",
		    nice, strerror(errno));
	pthread_once(&handler_once, install_handler);
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	if (!handler_ok || pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0 ||
	    new_timer(CLOCK_THREAD_CPUTIME_ID, TIMER_BUDGET, &me.budget) != 0) {
		log_notice("poll thread not real-time: no budget timer: %s",
		    strerror(errno));
		return;
	}
	if (new_timer(CLOCK_MONOTONIC, TIMER_WINDOW, &me.window) != 0) {
		log_notice("poll thread not real-time: no window timer: %s",
		    strerror(errno));
		timer_delete(me.budget);
		return;
	}
	if (raise_rt() != 0) {
		int e = errno;

		timer_delete(me.budget); /* before it can fire */
		timer_delete(me.window);
		log_notice("poll thread not real-time: SCHED_RR %d: %s (it "
		           "needs LimitRTPRIO=%d or CAP_SYS_NICE)",
		    POLLPRIO_RT_PRIO, strerror(e), POLLPRIO_RT_PRIO);
		return;
	}
}

unsigned long
pollprio_limited_total(void)
{
	return atomic_load_explicit(&limited_total, memory_order_relaxed);
}

void
pollprio_tick(int nice)
{
	long long now;

	if (!me.started) {
		start(nice);
		return;
	}
	/*
	 * A thread that works lightly for long gets its budget back each
	 * window; one that ran out of it (or never got real-time) waits
	 * for its window timer (or for nothing).
	 */
	if (!me.rt)
		return;
	now = mono_ns();
	if (now - me.win_ns >= POLLPRIO_WINDOW_MS * 1000000LL) {
		me.win_ns = now;
		(void)arm(me.budget, POLLPRIO_BUDGET_MS * 1000000L);
	}
}
