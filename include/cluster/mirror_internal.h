/*
 * mirror_internal: what the mirror's loop side (mirror.c) and its threads
 * (mirror_threads.c) share: the operation queue, the reader's request queue
 * and the messages the threads post back to the loop. Everything in
 * mirror_state_t that is not atomic is guarded by `lock` (writer queue) or
 * `rlock` (reader queue), except the loop-only fields marked below.
 */
#ifndef MCP_SANDBOXD_MIRROR_INTERNAL_H
#define MCP_SANDBOXD_MIRROR_INTERNAL_H

#include "core/deadline.h"
#include "cluster/mirror.h"
#include "mcp/session.h"

#include <hiredis.h>
#include <pthread.h>
#include <stdatomic.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/* Hex characters of a session key: Redis holds SHA-256(session id), never the id. */
#define MIRROR_SESSION_KEY_LEN 64

enum op_kind { OP_META, OP_EVENT, OP_TOUCH, OP_RESYNC, OP_SESSION_PUT, OP_SESSION_DEL };

typedef struct op {
    struct op *next;
    enum op_kind kind;
    char id[MIRROR_SESSION_KEY_LEN + 1]; /* execution id; SESSION_*: the session key */
    char session_id[MIRROR_SESSION_KEY_LEN + 1]; /* the session key (SHA-256 hex of the id), never the id */
    int active;              /* META, RESYNC: still running (listed in replica:{id}:running) */
    int only_if_mine;        /* SESSION_DEL: only when the record names this replica */
    char *meta;              /* META, RESYNC; SESSION_PUT: the session record */
    size_t meta_len;
    char *blob;              /* EVENT, RESYNC: the events' JSON back to back */
    size_t blob_len, blob_cap;
    size_t *ends;            /* end offset of each event in blob */
    size_t n_events, ends_cap;
    size_t keep;             /* events the list should keep (LTRIM) */
    size_t bytes;            /* accounted queue bytes */
} op_t;

typedef struct mirror_state {
    int enabled;
    mirror_url_t url;
    char redacted[1100];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    op_t *head, *tail;
    size_t queue_bytes, queue_ops, queue_events;
    int writer_waiting, stopping;
    size_t stop_lost;        /* operations of batches that failed once stopping (nobody resyncs them) */
    pthread_t writer, reader;
    _Atomic int connected;
    _Atomic unsigned long long drops, resyncs, written, batches_lost, reconnects;
    char instance[17];       /* this process's random token, written beside its running executions */
    _Atomic uint64_t loop_tick_ms; /* util_now_ms() at the loop's last tick: a wedged loop stops the heartbeat */
    _Atomic unsigned long long replicas_lost, executions_lost; /* found by the watcher */
    _Atomic unsigned long long sweeps; /* lost-replica sweeps the watcher completed */
    pthread_t watcher;
    char last_error[256]; /* under lock */
    /* reader */
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
    struct read_req *rhead, *rtail;
    int rstopping;
    size_t rqueued;
    /* loop side (loop thread only) */
    h2o_multithread_receiver_t receiver;
    deadline_t resync_timer, tick_timer;
} mirror_state_t;

/** The one mirror state (queue under `lock`, reader queue under `rlock`). */
extern mirror_state_t mirror_st;

/* Messages posted to the loop. */
enum msg_kind { MSG_CONNECTED, MSG_LOST, MSG_READ, MSG_RESYNC_ALL };

struct read_req {
    struct read_req *next;
    int session_list;        /* SMEMBERS session:{id}:executions + each GET */
    int session_record;      /* GET mcp:session:{id} */
    int with_output;
    char id[40];
    char session_id[MIRROR_SESSION_KEY_LEN + 1]; /* the session key (SHA-256 hex of the id) */
    mirror_read_cb cb;
    void *arg;
    uint64_t enqueued_ms;    /* util_now_ms() when queued: stale reads are not sent */
};

#define MIRROR_READ_QUEUE_MAX 256

typedef struct mirror_msg {
    h2o_multithread_message_t super; /* must be first; zeroed */
    enum msg_kind kind;
    int reconnect;                   /* MSG_CONNECTED: not the first connection */
    int command_error;               /* MSG_LOST: Redis refused commands (retry later, not at once) */
    char (*ids)[40];                 /* MSG_LOST */
    size_t n_ids;
    struct read_req *req;            /* MSG_READ */
    int found;
    char *meta, *events, *err;
    size_t meta_len, events_len;
} mirror_msg_t;

/** Any thread: hands a message to the loop (runs on_messages there). */
void mirror_post(mirror_msg_t *m);
/** Appends one event's JSON to an operation. */
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
/** The writer thread's body. */
void *mirror_writer_main(void *arg);
/** The reader thread's body. */
void *mirror_reader_main(void *arg);
/** The threads' connections, one each (see mirror_redis_cut_all). */
enum { MIRROR_CONN_WRITER, MIRROR_CONN_READER, MIRROR_CONN_WATCHER, MIRROR_CONN_SLOTS };
/**
 * A mirror thread: connects its `slot` connection (close-on-exec), authenticates
 * and selects the db. NULL with err filled on failure.
 */
redisContext *mirror_redis_open(int slot, char *err, size_t errlen);
/** The thread owning `slot`: frees its connection (NULL: nothing). */
void mirror_redis_close(int slot, redisContext *c);
/** Any thread (mirror_stop at the deadline): shuts every connection down, so blocked calls fail now. 1 the first time. */
int mirror_redis_cut_all(void);
/** The watcher thread's body (replica.c): heartbeat and lost-replica sweep. */
void *replica_watcher_main(void *arg);
/** Loop thread: asks the watcher to stop (it deletes the heartbeat: a clean exit is not a loss). */
void replica_watcher_signal_stop(void);

#endif
