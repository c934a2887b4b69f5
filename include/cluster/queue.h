/*
 * queue: the cluster's pure data structures, with no Redis and no event loop,
 * so they can be tested alone:
 *  - an operation (op_t): what the writer sends for one execution or session;
 *  - the writer queue (mirror_queue_t): operations in order, their accounted
 *    bytes held under a cap, guarded by its lock (loop thread and writer);
 *  - the stage (mirror_stage_t): events gathered on the loop during one turn
 *    and handed to the queue under one lock (loop thread only);
 *  - the dirty set (dirty_set_t): executions Redis may be behind on, resynced
 *    from memory later (loop thread only), and the resync pass over it.
 */
#ifndef MCP_SANDBOXD_QUEUE_H
#define MCP_SANDBOXD_QUEUE_H

#include <pthread.h>
#include <stddef.h>
#include <bsd/sys/tree.h>

/** Hex characters of a session key: Redis holds SHA-256(session id), never the id. */
#define MIRROR_SESSION_KEY_LEN 64
/** Bytes an operation is accounted beyond its payload. */
#define OP_OVERHEAD 96

enum op_kind { OP_META, OP_EVENT, OP_TOUCH, OP_RESYNC, OP_SESSION_PUT, OP_SESSION_DEL };

/** One operation for the writer. */
typedef struct op {
    struct op *next;
    enum op_kind kind;
    char id[MIRROR_SESSION_KEY_LEN + 1];         /**< execution id; SESSION_*: the session key */
    char session_id[MIRROR_SESSION_KEY_LEN + 1]; /**< the owner key (SHA-256 hex of the tenant), never a session id */
    char workspace_id[40];   /**< META, RESYNC, TOUCH: the execution's workspace handle ("" = none) */
    int active;              /**< META, RESYNC: still running (listed in replica:{id}:running) */
    int only_if_mine;        /**< SESSION_DEL: only when the record names this replica */
    char *meta;              /**< META, RESYNC; SESSION_PUT: the session record */
    size_t meta_len;
    char *blob;              /**< EVENT, RESYNC: the events' JSON back to back */
    size_t blob_len, blob_cap;
    size_t *ends;            /**< end offset of each event in blob */
    size_t n_events, ends_cap;
    size_t keep;             /**< events the list should keep (LTRIM) */
    size_t bytes;            /**< accounted queue bytes */
} op_t;

/** Appends one event's JSON to an operation (and to its accounted bytes). */
void mirror_op_add_event(op_t *o, const char *json, size_t len);
/** The i-th event of an operation. */
static inline const char *mirror_op_event(const op_t *o, size_t i, size_t *len)
{
    size_t start = i == 0 ? 0 : o->ends[i - 1];
    *len = o->ends[i] - start;
    return o->blob + start;
}
/** Frees an operation. */
void mirror_op_free(op_t *o);

/** The writer queue. Every field under `lock`; `cond` wakes the writer. */
typedef struct mirror_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    op_t *head, *tail;
    size_t bytes, ops, events; /**< accounted totals of what is queued */
    int writer_waiting;        /**< the writer sleeps on cond: signal it */
    int stopping;              /**< nothing more is accepted */
} mirror_queue_t;

/** Loop-local events of this turn, handed to the queue at once (mirror_queue_push_stage). */
typedef struct mirror_stage {
    op_t *head, *tail;
    size_t bytes, ops, events;
} mirror_stage_t;

/**
 * Queues `o` unless the queue is stopping or `o` would take it past `cap`
 * bytes (an operation larger than the whole cap still goes into an empty
 * queue: a big resync must get through). Takes the lock; wakes the writer.
 * 0, or -1 (the caller still owns `o`).
 */
int mirror_queue_push(mirror_queue_t *q, op_t *o, size_t cap);
/**
 * Moves the stage into the queue: all of it, or (past `cap`, or stopping)
 * what fits, in order. Returns the rest (dropped, in order, the caller's to
 * free and resync); the stage is empty after.
 */
op_t *mirror_queue_push_stage(mirror_queue_t *q, mirror_stage_t *st, size_t cap);
/** Lock held: takes up to max_ops operations (or until max_bytes) from the head; *count says how many. */
op_t *mirror_queue_take_batch_locked(mirror_queue_t *q, size_t max_ops, size_t max_bytes, size_t *count);
/** Whether fewer than `limit` bytes are queued (takes the lock). */
int mirror_queue_below(mirror_queue_t *q, size_t limit);
/** Appends `o` to the stage. */
void mirror_stage_add(mirror_stage_t *st, op_t *o);

struct dirty;
RB_HEAD(dirty_tree, dirty);
/** Execution ids Redis may be behind on, in id order. */
typedef struct dirty_set {
    struct dirty_tree tree;
    size_t count;
} dirty_set_t;

/** Adds `id` (no-op when present). */
void dirty_mark(dirty_set_t *ds, const char *id);
/** Removes `id`; 1 when it was there. */
int dirty_take(dirty_set_t *ds, const char *id);
/** Empties the set. */
void dirty_clear(dirty_set_t *ds);

/** One execution's resync: 1 queued, 0 no longer held (nothing to do), -1 queue full (it must stay dirty). */
typedef int (*dirty_resync_fn)(const char *id, void *arg);
/**
 * Resyncs dirty executions in id order while `room` says the queue has room;
 * one the queue refused is marked again and ends the pass. Returns how many
 * were queued.
 */
size_t dirty_resync_pass(dirty_set_t *ds, int (*room)(void *arg), dirty_resync_fn resync, void *arg);

#endif
