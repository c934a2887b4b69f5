/*
 * queue: operations, the writer queue, the stage and the dirty set (see
 * queue.h). Nothing here knows Redis, the loop or the executions.
 */
#include "cluster/queue.h"
#include "core/util.h"

#include <bsd/string.h>
#include <stdlib.h>
#include <string.h>

void mirror_op_add_event(op_t *o, const char *json, size_t len)
{
    if (o->blob_len + len > o->blob_cap) {
        o->blob_cap = (o->blob_len + len) * 2 + 256;
        if ((o->blob = realloc(o->blob, o->blob_cap)) == NULL)
            util_oom();
    }
    if (o->n_events == o->ends_cap) {
        o->ends_cap = o->ends_cap ? o->ends_cap * 2 : 16;
        if ((o->ends = realloc(o->ends, o->ends_cap * sizeof(size_t))) == NULL)
            util_oom();
    }
    memcpy(o->blob + o->blob_len, json, len);
    o->blob_len += len;
    o->ends[o->n_events++] = o->blob_len;
    o->bytes += len + sizeof(size_t);
}

void mirror_op_free(op_t *o)
{
    free(o->meta);
    free(o->blob);
    free(o->ends);
    free(o);
}

/* ---------------------------------------------------------------- writer queue */

/* Appends the list head..tail (lock held); returns whether to wake the writer. */
static int splice_locked(mirror_queue_t *q, op_t *head, op_t *tail, size_t bytes, size_t ops, size_t events)
{
    if (head != NULL) {
        if (q->tail != NULL)
            q->tail->next = head;
        else
            q->head = head;
        q->tail = tail;
    }
    q->bytes += bytes;
    q->ops += ops;
    q->events += events;
    int wake = q->writer_waiting;
    q->writer_waiting = 0;
    return wake;
}

int mirror_queue_push(mirror_queue_t *q, op_t *o, size_t cap)
{
    pthread_mutex_lock(&q->lock);
    if (q->stopping || (q->bytes + o->bytes > cap && q->head != NULL)) {
        pthread_mutex_unlock(&q->lock);
        return -1;
    }
    o->next = NULL;
    int wake = splice_locked(q, o, o, o->bytes, 1, o->n_events);
    pthread_mutex_unlock(&q->lock);
    if (wake)
        pthread_cond_signal(&q->cond);
    return 0;
}

/* Lock held: cuts the stage after what fits under `cap` (nothing once stopping); returns the rest. */
static op_t *stage_cut_locked(mirror_queue_t *q, mirror_stage_t *st, size_t cap)
{
    op_t *o = st->head, *last = NULL;
    st->bytes = st->ops = st->events = 0;
    while (o != NULL && !q->stopping && q->bytes + st->bytes + o->bytes <= cap) {
        st->bytes += o->bytes;
        st->ops++;
        st->events += o->n_events;
        last = o;
        o = o->next;
    }
    if (last != NULL) {
        last->next = NULL;
        st->tail = last;
    } else {
        st->head = st->tail = NULL;
    }
    return o;
}

op_t *mirror_queue_push_stage(mirror_queue_t *q, mirror_stage_t *st, size_t cap)
{
    if (st->head == NULL)
        return NULL;
    pthread_mutex_lock(&q->lock);
    op_t *dropped = NULL;
    if (q->stopping || (q->bytes + st->bytes > cap && q->head != NULL))
        dropped = stage_cut_locked(q, st, cap);
    int wake = splice_locked(q, st->head, st->tail, st->bytes, st->ops, st->events);
    pthread_mutex_unlock(&q->lock);
    if (wake)
        pthread_cond_signal(&q->cond);
    memset(st, 0, sizeof(*st));
    return dropped;
}

op_t *mirror_queue_take_batch_locked(mirror_queue_t *q, size_t max_ops, size_t max_bytes, size_t *count)
{
    op_t *batch = q->head, *last = batch;
    size_t n = 1, bytes = batch->bytes, events = batch->n_events;
    while (last->next != NULL && n < max_ops && bytes < max_bytes) {
        last = last->next;
        n++;
        bytes += last->bytes;
        events += last->n_events;
    }
    q->head = last->next;
    if (q->head == NULL)
        q->tail = NULL;
    last->next = NULL;
    q->bytes -= bytes;
    q->ops -= n;
    q->events -= events;
    *count = n;
    return batch;
}

int mirror_queue_below(mirror_queue_t *q, size_t limit)
{
    pthread_mutex_lock(&q->lock);
    int below = q->bytes < limit;
    pthread_mutex_unlock(&q->lock);
    return below;
}

void mirror_stage_add(mirror_stage_t *st, op_t *o)
{
    o->next = NULL;
    if (st->tail != NULL)
        st->tail->next = o;
    else
        st->head = o;
    st->tail = o;
    st->bytes += o->bytes;
    st->ops++;
    st->events += o->n_events;
}

/* ---------------------------------------------------------------- dirty set */

struct dirty {
    RB_ENTRY(dirty) node;
    char id[40];
};

static int dirty_cmp(struct dirty *a, struct dirty *b)
{
    return strcmp(a->id, b->id);
}

RB_GENERATE(dirty_tree, dirty, node, dirty_cmp)

void dirty_mark(dirty_set_t *ds, const char *id)
{
    struct dirty key;
    strlcpy(key.id, id, sizeof(key.id));
    if (RB_FIND(dirty_tree, &ds->tree, &key) != NULL)
        return;
    struct dirty *d = xcalloc(1, sizeof(*d));
    strlcpy(d->id, id, sizeof(d->id));
    RB_INSERT(dirty_tree, &ds->tree, d);
    ds->count++;
}

int dirty_take(dirty_set_t *ds, const char *id)
{
    struct dirty key;
    strlcpy(key.id, id, sizeof(key.id));
    struct dirty *d = RB_FIND(dirty_tree, &ds->tree, &key);
    if (d == NULL)
        return 0;
    RB_REMOVE(dirty_tree, &ds->tree, d);
    ds->count--;
    free(d);
    return 1;
}

void dirty_clear(dirty_set_t *ds)
{
    struct dirty *d;
    while ((d = RB_MIN(dirty_tree, &ds->tree)) != NULL) {
        RB_REMOVE(dirty_tree, &ds->tree, d);
        free(d);
    }
    ds->count = 0;
}

size_t dirty_resync_pass(dirty_set_t *ds, int (*room)(void *arg), dirty_resync_fn resync, void *arg)
{
    size_t done = 0;
    struct dirty *d;
    while ((d = RB_MIN(dirty_tree, &ds->tree)) != NULL && room(arg)) {
        char id[40];
        memcpy(id, d->id, sizeof(id));
        RB_REMOVE(dirty_tree, &ds->tree, d);
        ds->count--;
        free(d);
        int rc = resync(id, arg);
        if (rc < 0) {
            dirty_mark(ds, id); /* the queue refused it: it stays dirty, try again on the next tick */
            break;
        }
        done += (size_t)rc;
    }
    return done;
}
