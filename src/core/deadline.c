/*
 * deadline: RB tree of due times + one timerfd (CLOCK_MONOTONIC, absolute).
 */
#include "core/deadline.h"
#include "core/log.h"
#include "core/util.h"

#include <errno.h>
#include <string.h>
#include <sys/timerfd.h>
#include <unistd.h>

RB_HEAD(deadline_tree, deadline);

static int deadline_cmp(deadline_t *a, deadline_t *b)
{
    if (a->at_ms != b->at_ms)
        return a->at_ms < b->at_ms ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

RB_GENERATE(deadline_tree, deadline, node, deadline_cmp)

static struct deadline_tree tree = RB_INITIALIZER(&tree);
static int tfd = -1;
static h2o_socket_t *tsock;
static uint64_t next_seq;
static uint64_t armed_at = UINT64_MAX; /* what the timerfd is set to */
static size_t n_armed;

/*
 * Sets the timerfd to the earliest due time (or disarms it). A failure cannot
 * come from these values on an open fd; it is logged, and armed_at is left
 * unset so that the next arm or cancel tries again. After deadline_close()
 * (shutdown) there is no fd to set.
 */
static void rearm(void)
{
    if (tfd < 0)
        return;
    deadline_t *first = RB_MIN(deadline_tree, &tree);
    uint64_t at = first != NULL ? first->at_ms : 0;
    if (first != NULL && at == armed_at)
        return;
    struct itimerspec its = {0};
    if (first != NULL) {
        if (at == 0)
            at = 1;
        its.it_value.tv_sec = (time_t)(at / 1000);
        its.it_value.tv_nsec = (long)(at % 1000) * 1000000;
    }
    armed_at = first != NULL ? at : UINT64_MAX;
    if (timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL) != 0) {
        log_error("timerfd_settime: %s: deadlines may fire late", strerror(errno));
        armed_at = UINT64_MAX;
    }
}

static void on_timerfd(h2o_socket_t *sock, const char *err)
{
    uint64_t ticks;
    while (read(tfd, &ticks, sizeof(ticks)) < 0 && errno == EINTR)
        ;
    armed_at = UINT64_MAX;
    uint64_t now = util_now_ms();
    deadline_t *d;
    /* callbacks may arm or cancel others: take the minimum afresh each time */
    while ((d = RB_MIN(deadline_tree, &tree)) != NULL && d->at_ms <= now) {
        RB_REMOVE(deadline_tree, &tree, d);
        d->armed = 0;
        n_armed--;
        d->cb(d);
    }
    rearm();
}

int deadline_init(h2o_evloop_t *loop)
{
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (tfd < 0)
        return -1;
    tsock = h2o_evloop_socket_create(loop, tfd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(tsock, on_timerfd);
    return 0;
}

void deadline_close(void)
{
    if (tsock != NULL) {
        h2o_socket_close(tsock);
        tsock = NULL;
        tfd = -1;
    }
}

void deadline_arm(deadline_t *d, uint64_t delay_ms, deadline_cb cb)
{
    if (d->armed) {
        RB_REMOVE(deadline_tree, &tree, d);
        n_armed--;
    }
    d->at_ms = util_now_ms() + delay_ms;
    d->seq = next_seq++;
    d->cb = cb;
    d->armed = 1;
    RB_INSERT(deadline_tree, &tree, d);
    n_armed++;
    rearm();
}

int deadline_idle_rearm(deadline_t *d, uint64_t last_used_ms, uint64_t ttl_ms, deadline_cb cb)
{
    uint64_t now = util_now_ms();
    if (last_used_ms + ttl_ms <= now)
        return 0;
    deadline_arm(d, last_used_ms + ttl_ms - now, cb);
    return 1;
}

void deadline_cancel(deadline_t *d)
{
    if (!d->armed)
        return;
    RB_REMOVE(deadline_tree, &tree, d);
    d->armed = 0;
    n_armed--;
    rearm();
}

size_t deadline_count(void)
{
    return n_armed;
}
