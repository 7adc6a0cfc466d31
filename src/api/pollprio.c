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
	int rt_ok;                  /* real-time with its timer: granted */
	timer_t timer;              /* on this thread's CPU clock */
	long long win_ns;           /* monotonic: the window's start */
	volatile sig_atomic_t over; /* the timer fired: SCHED_OTHER now */
} me;

static pthread_once_t handler_once = PTHREAD_ONCE_INIT;
static int handler_ok;
static atomic_ulong limited_total; /* lock-free: the handler adds */

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

/*
 * The budget timer fired on this thread (SIGEV_THREAD_ID): back to
 * SCHED_OTHER where it stands. One system call; lowering one's own
 * policy is always allowed.
 */
static void
on_budget(int sig)
{
	int e = errno;

	(void)sig;
	if (set_policy(0) == 0) {
		me.over = 1;
		atomic_fetch_add_explicit(&limited_total, 1,
		    memory_order_relaxed);
	}
	errno = e;
}

static void
install_handler(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_budget;
	sa.sa_flags = SA_RESTART; /* read(), write() and the like go on */
	sigemptyset(&sa.sa_mask);
	handler_ok = sigaction(SIGRTMIN, &sa, NULL) == 0;
}

/* The budget, full, from now: 0 or -1. */
static int
arm(void)
{
	struct itimerspec it = {
		.it_value = { .tv_sec = POLLPRIO_BUDGET_MS / 1000,
		    .tv_nsec = (POLLPRIO_BUDGET_MS % 1000) * 1000000L },
	};

	return timer_settime(me.timer, 0, &it, NULL);
}

static void
start(int nice)
{
	struct sigevent ev;
	sigset_t set;

	me.started = 1;
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), nice) != 0)
		log_debug("poll thread left at its nice: setpriority(%d): %s",
		    nice, strerror(errno));
	pthread_once(&handler_once, install_handler);
	memset(&ev, 0, sizeof(ev));
	ev.sigev_notify = SIGEV_THREAD_ID;
	ev.sigev_signo = SIGRTMIN;
	ev.sigev_notify_thread_id = gettid();
	sigemptyset(&set);
	sigaddset(&set, SIGRTMIN);
	if (!handler_ok || pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0 ||
	    timer_create(CLOCK_THREAD_CPUTIME_ID, &ev, &me.timer) != 0) {
		log_notice("poll thread not real-time: no budget timer: %s",
		    strerror(errno));
		return;
	}
	if (arm() != 0 || set_policy(1) != 0) {
		int e = errno;

		timer_delete(me.timer); /* before it can fire */
		log_notice("poll thread not real-time: SCHED_RR %d: %s (it "
		           "needs LimitRTPRIO=%d or CAP_SYS_NICE)",
		    POLLPRIO_RT_PRIO, strerror(e), POLLPRIO_RT_PRIO);
		return;
	}
	me.rt_ok = 1;
	me.win_ns = mono_ns();
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
	if (!me.rt_ok)
		return;
	now = mono_ns();
	if (now - me.win_ns < POLLPRIO_WINDOW_MS * 1000000LL)
		return;
	/*
	 * A new window. The order keeps the thread from ever being
	 * real-time without a running timer: the timer is armed before
	 * the policy is raised, and a timer that fires now finds the
	 * thread still (or again) where the handler leaves it.
	 */
	me.win_ns = now;
	if (me.over) {
		me.over = 0;
		if (arm() != 0 || set_policy(1) != 0)
			me.over = 1; /* stays SCHED_OTHER */
	} else
		(void)arm();
}
