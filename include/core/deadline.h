/*
 * deadline: one-shot timers at arbitrary times on the loop thread.
 *
 * h2o 2.2's h2o_timeout_t has one fixed duration per object and every object
 * is scanned each iteration, so per-execution timeouts, kill graces, wait
 * deadlines, retention and session expiry live here instead: an RB tree
 * ordered by due time and ONE timerfd armed for the earliest. Loop thread only.
 */
#ifndef MCP_SANDBOXD_DEADLINE_H
#define MCP_SANDBOXD_DEADLINE_H

#include <bsd/sys/tree.h>
#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

typedef struct deadline deadline_t;
typedef void (*deadline_cb)(deadline_t *d);

/** Embed in the object that owns the timer; zero-initialise. */
struct deadline {
    RB_ENTRY(deadline) node; /**< tree link (private) */
    uint64_t at_ms;          /**< due time, util_now_ms() clock */
    uint64_t seq;            /**< tie-break so equal times stay distinct */
    deadline_cb cb;          /**< called once when due */
    int armed;               /**< 1 while in the tree */
};

/** Creates the timerfd and watches it on `loop`. 0 / -1. */
int deadline_init(h2o_evloop_t *loop);
/** Stops watching the timerfd (shutdown). */
void deadline_close(void);
/** (Re)arms `d` to fire `cb` after `delay_ms`. */
void deadline_arm(deadline_t *d, uint64_t delay_ms, deadline_cb cb);
/**
 * Lazy idle expiry: called when an idle deadline fires. When the thing was
 * used since (last_used_ms + ttl_ms still ahead) re-arms `d` for the rest and
 * returns 1; returns 0 when it is idle for ttl_ms (the caller ends it).
 */
int deadline_idle_rearm(deadline_t *d, uint64_t last_used_ms, uint64_t ttl_ms, deadline_cb cb);
/** Disarms `d` (no-op when not armed). */
void deadline_cancel(deadline_t *d);
/** Number of armed deadlines (diagnostics). */
size_t deadline_count(void);

#endif
