/*
 * pollprio.h - the scheduling of libmicrohttpd's poll threads.
 *
 * A poll thread answers /health and every refusal itself, so its wake-up
 * delay is /health's. A nice value only orders threads within one
 * scheduling group (a process's autogroup, a unit's cgroup), and
 * PostgreSQL's clones run in another group: while they and the hashes
 * hold both CPUs, a woken poll thread waited their slices, 20 ms at
 * times (docs/DESIGN.md, "/health while creates run"). So a poll thread
 * runs SCHED_RR at priority POLLPRIO_RT_PRIO where RLIMIT_RTPRIO allows
 * it (the unit's LimitRTPRIO=1), and is never kept waiting by a normal
 * thread of any group.
 *
 * A real-time thread that any client can keep busy would starve the
 * node, so a thread holds SCHED_RR only while its CPU time stays under
 * POLLPRIO_BUDGET_MS per window of POLLPRIO_WINDOW_MS; past it, it runs
 * as a normal thread at HTTP_POLL_NICE until a request comes in a new
 * window. A flood thus gets what it got before: the CPU share of nice
 * -5. Where real-time is not allowed, nice -5 (where RLIMIT_NICE allows)
 * is all.
 */
#ifndef NODO_API_POLLPRIO_H
#define NODO_API_POLLPRIO_H

#define POLLPRIO_RT_PRIO   1  /* SCHED_RR priority: the lowest */
#define POLLPRIO_WINDOW_MS 50 /* ms: the budget's window */
#define POLLPRIO_BUDGET_MS 20 /* ms of CPU per window at SCHED_RR */

/* The policy of the calling thread now (pollprio_tick's view). */
enum pollprio_state {
	POLLPRIO_NORMAL,  /* real-time was refused: nice only */
	POLLPRIO_RT,      /* SCHED_RR */
	POLLPRIO_LIMITED, /* over this window's budget: nice, until the next */
};

/*
 * Called by a poll thread on each accept and each new request. The first
 * call sets the thread's nice to nice and asks for SCHED_RR; later calls
 * keep the budget. Returns 1 when this call took the thread off SCHED_RR
 * for its budget (the caller counts it), else 0. *state, when not NULL,
 * gets the thread's state.
 */
int pollprio_tick(int nice, enum pollprio_state *state);

#endif
