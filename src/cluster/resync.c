/*
 * resync: the incremental resync builder (see resync.h).
 */
#include "cluster/resync.h"
#include "core/util.h"

#include <bsd/string.h>
#include <limits.h>
#include <stdlib.h>

resync_build_t *resync_build_new(const char *id, op_t *op, const event_log_t *log)
{
    resync_build_t *b = xcalloc(1, sizeof(*b));
    strlcpy(b->id, id, sizeof(b->id));
    b->op = op;
    /* what the log holds now takes this many full steps at most (events or bytes run out first) */
    size_t need = log->count / RESYNC_STEP_EVENTS + log->bytes / RESYNC_STEP_BYTES + 1;
    b->max_steps = need + RESYNC_EXTRA_STEPS < UINT_MAX ? (unsigned)(need + RESYNC_EXTRA_STEPS) : UINT_MAX;
    return b;
}

void resync_build_free(resync_build_t *b)
{
    if (b == NULL)
        return;
    if (b->op != NULL)
        mirror_op_free(b->op);
    free(b);
}

/* Empties the operation's events (they were all evicted): O(1), the buffers are kept. */
static void op_forget_events(op_t *o)
{
    o->bytes -= o->blob_len + o->n_events * sizeof(size_t);
    o->blob_len = 0;
    o->n_events = 0;
}

int resync_build_step(resync_build_t *b, const event_log_t *log, resync_budget_t *budget, int to_end)
{
    uint64_t oldest = log->count > 0 ? events_at(log, 0)->seq : log->next_seq; /* the oldest held event */
    if (b->next_seq < oldest) {
        /* everything from next_seq was evicted, so is everything the op holds */
        op_forget_events(b->op);
        b->next_seq = oldest;
    }
    size_t i = (size_t)(b->next_seq - oldest);
    if (++b->steps >= b->max_steps)
        to_end = 1;
    while (i < log->count) {
        const event_t *ev = events_at(log, i);
        if (!to_end && (budget->events == 0 || budget->bytes == 0))
            return 0;
        mirror_op_add_event(b->op, ev->json, ev->len);
        budget->events -= budget->events > 0 ? 1 : 0;
        budget->bytes -= budget->bytes > ev->len ? ev->len : budget->bytes;
        b->next_seq = ev->seq + 1;
        i++;
    }
    return 1;
}
