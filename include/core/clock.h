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

/** A background thread's stop flag and the monotonic condition it sleeps on. Zero it, or CLOCK_STOP_INIT. */
typedef struct clock_stop {
    pthread_mutex_t lock;
    pthread_cond_t cond; /**< made by clock_cond_init on first use (under lock) */
    int ready;           /**< cond is made */
    int stop;            /**< set once by clock_stop_signal */
} clock_stop_t;
#define CLOCK_STOP_INIT {.lock = PTHREAD_MUTEX_INITIALIZER}

/** The thread: waits up to `ms` (0: not at all) unless stopping; returns 1 when stopping. */
int clock_stop_sleep(clock_stop_t *s, uint64_t ms);
/** Any thread: sets the flag and wakes the sleeper. */
void clock_stop_signal(clock_stop_t *s);

#endif
