/*
 * mirror_internal: what the mirror's loop side (mirror.c) and its threads
 * (writer.c, reader.c, replica.c) share: the writer queue (queue.h), the
 * reader's request queue, the atomic stats and the messages the threads post
 * back to the loop.
 */
#ifndef MCP_SANDBOXD_MIRROR_INTERNAL_H
#define MCP_SANDBOXD_MIRROR_INTERNAL_H

#include "core/deadline.h"
#include "cluster/mirror.h"
#include "cluster/queue.h"
#include "mcp/session.h"

#include <hiredis.h>
#include <pthread.h>
#include <stdatomic.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** The reader's request queue. Every field under `lock`; `cond` wakes the reader. */
typedef struct mirror_read_queue {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct read_req *head, *tail;
    int stopping;
    size_t queued;
    struct events_garbage *garbage; /* output reads the loop answered: the reader frees them (remote_events_discard) */
} mirror_read_queue_t;

/** Figures any thread bumps and /metrics and /health read: atomics, no lock. */
typedef struct mirror_stats {
    _Atomic int connected; /**< the writer is connected */
    _Atomic unsigned long long drops, resyncs, written, batches_lost, reconnects;
    _Atomic unsigned long long resync_steps; /**< loop turns resyncs were built in (mirror.c's builds) */
    _Atomic unsigned long long replicas_lost, executions_lost; /**< found by the watcher */
    _Atomic unsigned long long sweeps;                        /**< lost-replica sweeps the watcher completed */
    _Atomic uint64_t loop_tick_ms; /**< util_now_ms() at the loop's last tick: a wedged loop stops the heartbeat */
} mirror_stats_t;

/**
 * What the loop side and the threads share, split by who guards it: the
 * writer queue (wq.lock, which also guards stop_lost and last_error), the
 * reader queue (rq.lock), the atomic stats, and what is set once at start
 * (enabled, url, redacted, instance) and read-only after. Loop-local state
 * (the stage, the dirty set, timers) lives in mirror.c.
 */
typedef struct mirror_state {
    int enabled;
    mirror_url_t url;
    char redacted[1100];
    char instance[17];       /* this process's random token, written beside its running executions */
    mirror_queue_t wq;
    size_t stop_lost;        /* under wq.lock: operations of batches that failed once stopping (nobody resyncs them) */
    char last_error[256];    /* under wq.lock */
    mirror_read_queue_t rq;
    mirror_stats_t stats;
    pthread_t writer, reader, watcher, control;
} mirror_state_t;

/** The one mirror state (see mirror_state_t for who guards what). */
extern mirror_state_t mirror_st;

/* Messages posted to the loop. */
enum msg_kind { MSG_CONNECTED, MSG_LOST, MSG_READ, MSG_RESYNC_ALL, MSG_CONTROL };

struct read_req {
    struct read_req *next;
    int session_list;        /* SMEMBERS session:{id}:executions + each GET */
    int session_record;      /* GET mcp:session:{id} */
    int with_output;
    uint64_t after;          /* with_output: the events after this id */
    char id[40];
    char session_id[MIRROR_SESSION_KEY_LEN + 1]; /* the session key (SHA-256 hex of the id) */
    mirror_read_cb cb;
    void *arg;
    uint64_t enqueued_ms;    /* util_now_ms() when queued: stale reads are not sent */
    char *push;              /* a control message to RPUSH (control.c), else NULL: the request is a read */
    size_t push_len;
    char push_key[448];      /* the list it goes to */
    char alive_key[448];     /* "", or the heartbeat key that must exist for the push to happen */
    int push_ttl;            /* the list's EXPIRE, seconds */
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
    int found;                       /* MSG_READ: found (a push: -1 unsure); MSG_CONTROL: popped from the replies list */
    char *meta, *err;                /* MSG_CONTROL: meta is the popped message */
    size_t meta_len;
    remote_events_t *events;         /* MSG_READ with output: remote_events_free() after the callback */
} mirror_msg_t;

/** Frees a reader's events (NULL is fine). */
void remote_events_free(remote_events_t *ev);
/**
 * Loop thread: disposes of a reader's events once answered. A large read is
 * handed back to the reader thread to free (freeing tens of MB returns pages
 * to the kernel: milliseconds the loop does not spend); a small one is freed here.
 */
void remote_events_discard(remote_events_t *ev);
/** Any thread: hands a message to the loop (runs on_messages there). */
void mirror_post(mirror_msg_t *m);
/**
 * Loop thread: has the reader RPUSH `payload` (taken over) onto list `key`
 * with an EXPIRE of `ttl` s, only while `alive_key` exists when it is not "";
 * cb(arg, found = pushed, ...) on the loop; with err, found = -1 says the
 * connection failed after the command was written (it may have landed), 0
 * that it did not. 0, -1 (stopping), -2 (too many waiting).
 */
int mirror_push(const char *key, const char *alive_key, char *payload, size_t len, int ttl, mirror_read_cb cb, void *arg);
/** The writer thread's body. */
void *mirror_writer_main(void *arg);
/** The reader thread's body. */
void *mirror_reader_main(void *arg);
/** The threads' connections, one each (see mirror_redis_cut_all). */
enum { MIRROR_CONN_WRITER, MIRROR_CONN_READER, MIRROR_CONN_WATCHER, MIRROR_CONN_CONTROL, MIRROR_CONN_SLOTS };
/**
 * A mirror thread: connects its `slot` connection (close-on-exec), authenticates
 * and selects the db. NULL with err filled on failure.
 */
redisContext *mirror_redis_open(int slot, char *err, size_t errlen);
/** The thread owning `slot`: frees its connection (NULL: nothing). */
void mirror_redis_close(int slot, redisContext *c);
/** Any thread: shuts slot's connection down (its thread's blocked call fails now; it reconnects unless stopping). */
void mirror_redis_cut(int slot);
/** Any thread (cluster_stop at the deadline): shuts every connection down, so blocked calls fail now. 1 the first time. */
int mirror_redis_cut_all(void);

#endif
