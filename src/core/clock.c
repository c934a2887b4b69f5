/*
 * clock: monotonic deadlines for the background threads' timed waits (see
 * clock.h). A condition variable times out against the clock it was created
 * with; pthread's default is CLOCK_REALTIME, which a wall-clock step moves.
 */
#include "core/clock.h"
#include "core/util.h"

int (*clock_gettime_hook)(clockid_t id, struct timespec *ts) = clock_gettime;

int clock_cond_init(pthread_cond_t *c)
{
    pthread_condattr_t a;
    if (pthread_condattr_init(&a) != 0)
        return -1;
    int rc = pthread_condattr_setclock(&a, CLOCK_MONOTONIC) == 0 && pthread_cond_init(c, &a) == 0 ? 0 : -1;
    pthread_condattr_destroy(&a);
    return rc;
}

void clock_deadline(struct timespec *ts, uint64_t ms)
{
    clock_gettime_hook(CLOCK_MONOTONIC, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts->tv_nsec >= 1000000000) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000;
    }
}

int clock_cond_wait_ms(pthread_cond_t *c, pthread_mutex_t *m, uint64_t ms)
{
    struct timespec ts;
    clock_deadline(&ts, ms);
    return pthread_cond_timedwait(c, m, &ts);
}

/* Lock held: makes the condition on first use (only ENOMEM can fail it). */
static void stop_ready_locked(clock_stop_t *s)
{
    if (!s->ready && clock_cond_init(&s->cond) != 0)
        util_oom();
    s->ready = 1;
}

int clock_stop_sleep(clock_stop_t *s, uint64_t ms)
{
    pthread_mutex_lock(&s->lock);
    stop_ready_locked(s);
    if (!s->stop && ms > 0)
        clock_cond_wait_ms(&s->cond, &s->lock, ms); /* monotonic: a wall-clock step neither delays nor hastens it */
    int stop = s->stop;
    pthread_mutex_unlock(&s->lock);
    return stop;
}

void clock_stop_signal(clock_stop_t *s)
{
    pthread_mutex_lock(&s->lock);
    stop_ready_locked(s);
    s->stop = 1;
    pthread_cond_broadcast(&s->cond);
    pthread_mutex_unlock(&s->lock);
}
