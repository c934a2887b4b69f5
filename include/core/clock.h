/*
 * clock: the time source of every timed wait on the background threads (the
 * mirror's writer, the replica watcher, the workspace remover). Waits are on
 * CLOCK_MONOTONIC, so a step of the wall clock (NTP, an operator's `date -s`)
 * neither delays nor hastens a heartbeat. The reading goes through a hook so
 * a unit test can stand in a clock of its own.
 */
#ifndef MCP_SANDBOXD_CLOCK_H
#define MCP_SANDBOXD_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

/** The clock reader (clock_gettime by default); tests may replace it. Set before any thread starts. */
extern int (*clock_gettime_hook)(clockid_t id, struct timespec *ts);

/** Initialises `c` to time out against CLOCK_MONOTONIC (as clock_deadline counts). 0 / -1. */
int clock_cond_init(pthread_cond_t *c);
/** The absolute CLOCK_MONOTONIC time `ms` from now, for pthread_cond_timedwait on a clock_cond_init cond. */
void clock_deadline(struct timespec *ts, uint64_t ms);
/** Waits on `c` (made by clock_cond_init; `m` held) until signalled or `ms` elapsed. pthread_cond_timedwait's result. */
int clock_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ms);

#endif
