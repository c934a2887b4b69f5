/*
 * Unit tests for the replica watcher's timed wait (src/cluster/replica.c, clock_stop_sleep) and the
 * clock module under it: the wall clock is simulated to step back by a day
 * (through the injectable clock reader) and the heartbeat period still ends
 * on time, because every deadline is taken and waited on CLOCK_MONOTONIC.
 */
#include "../../src/cluster/replica.c"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static int realtime_reads;

/* A clock whose wall time was a day ahead when read: as if it stepped back a day just after. */
static int stepped_clock(clockid_t id, struct timespec *ts)
{
    int rc = clock_gettime(id, ts);
    if (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE) {
        realtime_reads++;
        ts->tv_sec += 86400;
    }
    return rc;
}

static int install(void **state)
{
    clock_gettime_hook = stepped_clock;
    realtime_reads = 0;
    return 0;
}

static int uninstall(void **state)
{
    clock_gettime_hook = clock_gettime;
    return 0;
}

static void *sleep_thread(void *arg)
{
    *(int *)arg = clock_stop_sleep(&watcher_stop, 50);
    return NULL;
}

/* Runs `fn` in a thread; 0 when it ended within a minute (a wait on the stepped wall clock lasts a day). */
static int ends(void *(*fn)(void *), void *arg)
{
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    struct timespec guard;
    clock_gettime(CLOCK_MONOTONIC, &guard);
    guard.tv_sec += 60;
    if (pthread_clockjoin_np(t, NULL, CLOCK_MONOTONIC, &guard) == 0)
        return 0;
    pthread_detach(t); /* left waiting on static state: the test has failed */
    return -1;
}

/* The heartbeat wait ends after its period although the wall clock went back a day. */
static void test_watcher_sleep_ignores_wall_step(void **state)
{
    static int stop = -1;
    assert_int_equal(ends(sleep_thread, &stop), 0);
    assert_int_equal(stop, 0);
    assert_int_equal(realtime_reads, 0);
}

struct cw {
    pthread_cond_t c;
    pthread_mutex_t m;
    int rc;
};

static void *cond_thread(void *arg)
{
    struct cw *w = arg;
    pthread_mutex_lock(&w->m);
    w->rc = clock_cond_wait_ms(&w->c, &w->m, 30);
    pthread_mutex_unlock(&w->m);
    return NULL;
}

/* clock_cond_init + clock_cond_wait_ms: times out after its delay, whatever the wall clock says. */
static void test_cond_wait_times_out_monotonic(void **state)
{
    static struct cw w = {.m = PTHREAD_MUTEX_INITIALIZER, .rc = -1};
    assert_int_equal(clock_cond_init(&w.c), 0);
    assert_int_equal(ends(cond_thread, &w), 0);
    assert_int_equal(w.rc, ETIMEDOUT);
    assert_int_equal(realtime_reads, 0);
    pthread_cond_destroy(&w.c);
}

/* Once stopping, the wait returns 1 at once (the watcher leaves its loop). */
static void test_watcher_sleep_stops(void **state)
{
    replica_watcher_signal_stop();
    static int stop = -1;
    assert_int_equal(ends(sleep_thread, &stop), 0);
    assert_int_equal(stop, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_watcher_sleep_ignores_wall_step, install, uninstall),
        cmocka_unit_test_setup_teardown(test_cond_wait_times_out_monotonic, install, uninstall),
        cmocka_unit_test_setup_teardown(test_watcher_sleep_stops, install, uninstall),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
