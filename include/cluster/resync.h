/*
 * resync: an execution's resync operation built over several loop turns.
 *
 * A resync rewrites execution:{id}:output with every event memory holds (one
 * OP_RESYNC: DEL + RPUSH + LTRIM inside MULTI). Copying a 250,000-event log
 * into that operation in one loop turn stalls the loop for as long as the
 * copy takes, so the copy is made in steps of a bounded number of events and
 * bytes, resumed by event seq; events the ring evicted meanwhile are skipped
 * (the LTRIM to the log's count at the end drops any the operation still
 * holds). Pure: no Redis, no loop, no executions. Loop thread only.
 */
#ifndef MCP_SANDBOXD_RESYNC_H
#define MCP_SANDBOXD_RESYNC_H

#include "cluster/queue.h"
#include "core/events.h"

#include <stdint.h>

/** Events one step copies at most (the last step copies up to the log's end). */
#define RESYNC_STEP_EVENTS 4096
/** Bytes of JSON one step copies at most (one event more if a single one is larger). */
#define RESYNC_STEP_BYTES (1024 * 1024)
/** Builds under way at once (each holds a copy of its run's log until it is queued). */
#define RESYNC_BUILDS_MAX 4
/**
 * Steps beyond those the log held at the start needs after which a build that
 * has not caught up with a fast run copies the rest at once.
 */
#define RESYNC_EXTRA_STEPS 64

/** One execution's resync under construction. */
typedef struct resync_build {
    struct resync_build *next;
    char id[40];       /**< the execution */
    op_t *op;          /**< the OP_RESYNC being filled (events only until it is finished) */
    uint64_t next_seq; /**< seq of the first event not copied yet */
    unsigned steps;    /**< steps taken */
    unsigned max_steps; /**< past these, the step copies to the end (the log at the start's steps + RESYNC_EXTRA_STEPS) */
} resync_build_t;

/** A step's allowance, shared by the builds of one loop turn; decremented as events are copied. */
typedef struct resync_budget {
    size_t events, bytes;
} resync_budget_t;

/** A new build of `log` for execution `id`, starting at its oldest event (`op` must be an empty OP_RESYNC). */
resync_build_t *resync_build_new(const char *id, op_t *op, const event_log_t *log);
/** Frees a build and its operation. */
void resync_build_free(resync_build_t *b);
/**
 * Copies the log's events from b->next_seq on into b->op while `budget`
 * lasts (all of them to the end when `to_end`, or once the build took
 * max_steps steps: a run that outpaces the copy, the rest bounded by its
 * caps). When events from next_seq on
 * were evicted, the operation (whose events are all older still) is emptied
 * and the copy goes on from the oldest held event. Returns 1 when the log's
 * end is reached (the operation then holds every held event, in order, after
 * any older ones LTRIM drops), 0 when the budget ran out first.
 */
int resync_build_step(resync_build_t *b, const event_log_t *log, resync_budget_t *budget, int to_end);

#endif
