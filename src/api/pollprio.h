/*
 * pollprio.h - the scheduling of libmicrohttpd's poll threads.
 *
 * A poll thread answers /health and every refusal itself, so its wake-up
 * delay is /health's. A nice value only orders threads within one
 * scheduling group (a process's autogroup, a unit's cgroup), and
 * PostgreSQL's clones run in another: while they and the hashes hold both
 * CPUs, a woken poll thread waited their slices, 20 ms at times
 * (docs/DESIGN.md, "/health while creates run"). So a poll thread runs
 * SCHED_RR at priority POLLPRIO_RT_PRIO where RLIMIT_RTPRIO allows it (the
 * unit's LimitRTPRIO=1): a woken poll thread then runs before every
 * normal thread, whatever its group.
 *
 * A real-time thread that any client can keep busy would starve the
 * node, so the kernel holds each to a budget: a timer on the thread's own
 * CPU clock fires once it has run POLLPRIO_BUDGET_MS in its window of
 * POLLPRIO_WINDOW_MS, and the thread drops to SCHED_OTHER (keeping its
 * nice) wherever it was; a second timer, at the end of the window, gives
 * it real-time back with the budget full. A thread that stays within its
 * budget gets it back each window on its next accept or request. A flood
 * thus gets at most POLLPRIO_BUDGET_MS of real-time CPU per window on
 * each poll thread, then the share of nice HTTP_POLL_NICE. Where
 * real-time or the timers are refused, the thread runs at that nice only.
 */
#ifndef NODO_API_POLLPRIO_H
#define NODO_API_POLLPRIO_H

#define POLLPRIO_RT_PRIO   1  /* SCHED_RR priority: the lowest */
#define POLLPRIO_WINDOW_MS 50 /* ms: the budget's window */
#define POLLPRIO_BUDGET_MS 20 /* ms of CPU per window at SCHED_RR */

/*
 * Called by a poll thread on each accept and each new request. The first
 * call sets the thread's nice to nice and, with its two timers, asks for
 * SCHED_RR; later calls give a thread within its budget a full one for
 * each new window.
 */
void pollprio_tick(int nice);

/* How many times a poll thread ran out of its budget (GET /metrics). */
unsigned long pollprio_limited_total(void);

#endif
