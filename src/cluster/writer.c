/*
 * writer: the Redis connections of the cluster's threads and the writer
 * thread (sync hiredis API: hiredis 0.14 has no async adapter for h2o).
 *  - writer: takes up to BATCH_MAX_OPS queued operations at a time and writes
 *    them as one pipeline, consecutive events of one execution merged into
 *    variadic RPUSHes; reconnects with capped backoff; reports lost batches
 *    to the loop, which resyncs those executions from memory.
 * Every connection (the writer's, the reader's (reader.c) and the replica
 * watcher's) is opened by mirror_redis_open: close-on-exec, and registered so
 * that cluster_stop can cut it when the shutdown deadline passes.
 */
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "cluster/keys.h"
#include "cluster/mirror_internal.h"
#include "core/util.h"

#include <bsd/string.h>
#include <errno.h>
#include <fcntl.h>
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH_MAX_OPS 4096
#define BATCH_MAX_BYTES (8u << 20) /* one pipeline's worth: bounds hiredis' output buffer */
#define RPUSH_GROUP_MAX 1024

/* ---------------------------------------------------------------- connections */

static void set_last_error(const char *s)
{
    pthread_mutex_lock(&mirror_st.wq.lock);
    strlcpy(mirror_st.last_error, s, sizeof(mirror_st.last_error));
    pthread_mutex_unlock(&mirror_st.wq.lock);
}

/*
 * The socket of each thread's connection, so that cluster_stop can cut them
 * (shutdown(2)) when the shutdown deadline passes: hiredis' sync calls block
 * in read/write, and a cut socket makes them fail at once. Under conns_lock,
 * so a socket is never cut after its thread closed it (the number reused).
 */
static pthread_mutex_t conns_lock = PTHREAD_MUTEX_INITIALIZER;
static int conn_fd[MIRROR_CONN_SLOTS] = {-1, -1, -1, -1};
static int conns_cut; /* once set, every connection (even a new one) is cut */

/* Records `c` as slot's connection; cuts it at once when the deadline has already passed. */
static void conn_register(int slot, redisContext *c)
{
    pthread_mutex_lock(&conns_lock);
    conn_fd[slot] = c->fd;
    if (conns_cut)
        shutdown(c->fd, SHUT_RDWR);
    pthread_mutex_unlock(&conns_lock);
}

void mirror_redis_close(int slot, redisContext *c)
{
    if (c == NULL)
        return;
    pthread_mutex_lock(&conns_lock);
    if (conn_fd[slot] == c->fd)
        conn_fd[slot] = -1;
    pthread_mutex_unlock(&conns_lock);
    redisFree(c);
}

void mirror_redis_cut(int slot)
{
    pthread_mutex_lock(&conns_lock);
    if (conn_fd[slot] >= 0)
        shutdown(conn_fd[slot], SHUT_RDWR);
    pthread_mutex_unlock(&conns_lock);
}

int mirror_redis_cut_all(void)
{
    pthread_mutex_lock(&conns_lock);
    int first = !conns_cut;
    conns_cut = 1;
    for (int i = 0; i < MIRROR_CONN_SLOTS; i++)
        if (conn_fd[i] >= 0)
            shutdown(conn_fd[i], SHUT_RDWR);
    pthread_mutex_unlock(&conns_lock);
    return first;
}

/*
 * Connects slot's connection. hiredis 0.14 creates its socket without
 * SOCK_CLOEXEC: FD_CLOEXEC is set right after the connect (a child forked in
 * between still closes it: proc.c's child closes every fd above its own).
 */
redisContext *mirror_redis_open(int slot, char *err, size_t errlen)
{
    struct timeval tv = {2, 0};
    redisContext *c = mirror_st.url.unix_socket ? redisConnectUnixWithTimeout(mirror_st.url.path, tv)
                                        : redisConnectWithTimeout(mirror_st.url.host, mirror_st.url.port, tv);
    if (c != NULL && !c->err && fcntl(c->fd, F_SETFD, FD_CLOEXEC) != 0) {
        snprintf(err, errlen, "cannot set close-on-exec on the Redis connection: %s", strerror(errno));
        redisFree(c);
        return NULL;
    }
    if (c == NULL || c->err) {
        snprintf(err, errlen, "%s", c != NULL ? c->errstr : "cannot allocate a connection");
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    conn_register(slot, c);
    struct timeval cmd = {5, 0};
    redisSetTimeout(c, cmd);
    if (!mirror_st.url.unix_socket)
        redisEnableKeepAlive(c);
    redisReply *r = NULL;
    if (mirror_st.url.password[0]) {
        if (mirror_st.url.user[0])
            r = redisCommand(c, "AUTH %s %s", mirror_st.url.user, mirror_st.url.password);
        else
            r = redisCommand(c, "AUTH %s", mirror_st.url.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "AUTH failed: %s", r != NULL ? r->str : c->errstr);
            goto Fail;
        }
        freeReplyObject(r);
    }
    if (mirror_st.url.db != 0) {
        r = redisCommand(c, "SELECT %d", mirror_st.url.db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "SELECT %d failed: %s", mirror_st.url.db, r != NULL ? r->str : c->errstr);
            goto Fail;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "PING");
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "PING failed: %s", r != NULL ? r->str : c->errstr);
        goto Fail;
    }
    freeReplyObject(r);
    return c;
Fail:
    if (r != NULL)
        freeReplyObject(r);
    mirror_redis_close(slot, c);
    return NULL;
}

/* Waits up to `ms` on the queue condition (returns early when stopping). */
static void writer_sleep(int ms)
{
    pthread_mutex_lock(&mirror_st.wq.lock);
    if (!mirror_st.wq.stopping)
        clock_cond_wait_ms(&mirror_st.wq.cond, &mirror_st.wq.lock, (uint64_t)ms); /* monotonic: see cluster_start */
    pthread_mutex_unlock(&mirror_st.wq.lock);
}

/* ---------------------------------------------------------------- writer */

struct pipeline {
    redisContext *c;
    int pending;          /* replies to read */
    char key[160], okey[168], skey[192], wkey[192], rkey[448];
};

static void append_argv(struct pipeline *p, int argc, const char **argv, const size_t *lens)
{
    if (redisAppendCommandArgv(p->c, argc, argv, lens) != REDIS_OK) { /* out of memory: no reply to wait for */
        log_warn("redis mirror: cannot queue %.*s: %s", (int)lens[0], argv[0], p->c->errstr[0] ? p->c->errstr : "out of memory");
        return;
    }
    p->pending++;
}

/* Appends a command of 1 to 4 arguments (trailing NULLs end it). */
static void append_fmt(struct pipeline *p, const char *a0, const char *a1, const char *a2, const char *a3)
{
    const char *argv[4] = {a0, a1, a2, a3};
    size_t lens[4] = {strlen(a0), a1 ? strlen(a1) : 0, a2 ? strlen(a2) : 0, a3 ? strlen(a3) : 0};
    append_argv(p, a3 ? 4 : a2 ? 3 : a1 ? 2 : 1, argv, lens);
}

static void keys_for(struct pipeline *p, const op_t *o)
{
    keys_execution(p->key, sizeof(p->key), o->id, strlen(o->id));
    keys_execution_output(p->okey, sizeof(p->okey), o->id, strlen(o->id));
    keys_session_executions(p->skey, sizeof(p->skey), o->session_id);
    keys_workspace_executions(p->wkey, sizeof(p->wkey), o->workspace_id);
}

/* RPUSHes an op's events (groups of RPUSH_GROUP_MAX values), then LTRIM to `keep` and EXPIRE. */
static void push_trim_expire(struct pipeline *p, const char *okey, const op_t *o, const char *ttl)
{
    for (size_t off = 0; off < o->n_events; off += RPUSH_GROUP_MAX) {
        size_t k = o->n_events - off < RPUSH_GROUP_MAX ? o->n_events - off : RPUSH_GROUP_MAX;
        const char *argv[RPUSH_GROUP_MAX + 2];
        size_t alen[RPUSH_GROUP_MAX + 2];
        argv[0] = "RPUSH";
        alen[0] = 5;
        argv[1] = okey;
        alen[1] = strlen(okey);
        for (size_t i = 0; i < k; i++)
            argv[i + 2] = mirror_op_event(o, off + i, &alen[i + 2]);
        append_argv(p, (int)k + 2, argv, alen);
    }
    char start[32];
    snprintf(start, sizeof(start), "-%zu", o->keep > 0 ? o->keep : 1);
    if (o->keep == 0)
        append_fmt(p, "DEL", okey, NULL, NULL);
    else
        append_fmt(p, "LTRIM", okey, start, "-1");
    append_fmt(p, "EXPIRE", okey, ttl, NULL);
    atomic_fetch_add(&mirror_st.stats.written, o->n_events);
}

static int has_error_element(const redisReply *r)
{
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i] != NULL && r->element[i]->type == REDIS_REPLY_ERROR)
            return 1;
    return 0;
}

/* Deletes a session record only if it still names this replica (another may have adopted it). */
static const char session_del_script[] =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v then return 0 end "
    "local ok, m = pcall(cjson.decode, v) "
    "if ok and type(m) == 'table' and m.replica == ARGV[1] then return redis.call('DEL', KEYS[1]) end "
    "return 0";

/* SET / conditional DEL of mcp:session:{key} (key: SHA-256 hex of the session id). */
static void append_session_op(struct pipeline *p, const op_t *o)
{
    char key[192], ttl[16];
    keys_session_record(key, sizeof(key), o->id);
    snprintf(ttl, sizeof(ttl), "%d", config.session_ttl);
    if (o->kind == OP_SESSION_PUT) {
        const char *argv[5] = {"SET", key, o->meta, "EX", ttl};
        size_t alen[5] = {3, strlen(key), o->meta_len, 2, strlen(ttl)};
        append_argv(p, 5, argv, alen);
    } else if (o->only_if_mine) {
        const char *argv[5] = {"EVAL", session_del_script, "1", key, config.replica};
        size_t alen[5] = {4, sizeof(session_del_script) - 1, 1, strlen(key), strlen(config.replica)};
        append_argv(p, 5, argv, alen);
    } else {
        append_fmt(p, "DEL", key, NULL, NULL);
    }
}

/* Keeps replica:{id}:running (execution id -> process instance) in step with the status. */
static void append_running_index(struct pipeline *p, const op_t *o, const char *ttl)
{
    if (o->active) {
        const char *argv[4] = {"HSET", p->rkey, o->id, mirror_st.instance};
        size_t alen[4] = {4, strlen(p->rkey), strlen(o->id), strlen(mirror_st.instance)};
        append_argv(p, 4, argv, alen);
        append_fmt(p, "EXPIRE", p->rkey, ttl, NULL);
    } else {
        append_fmt(p, "HDEL", p->rkey, o->id, NULL);
    }
}

/*
 * Writes a batch (a list of operations of any kind) as one pipeline, then
 * reads every reply: META and RESYNC rewrite execution:{id}, its session set
 * and replica:{id}:running (a RESYNC inside MULTI/EXEC, with its whole event
 * list), EVENT ops become RPUSHes of up to RPUSH_GROUP_MAX values with LTRIM
 * and EXPIRE, TOUCH refreshes TTLs, SESSION_* write or delete session
 * records. Returns 0 when every reply arrived without error, -1 when the
 * connection failed (c->err), -2 when Redis refused a command (either way
 * the batch's executions must be resynced; after -2, not at once).
 */
static int write_batch(redisContext *c, op_t *batch)
{
    struct pipeline p = {.c = c};
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", config.redis_ttl);
    keys_replica_running(p.rkey, sizeof(p.rkey), config.replica);
    for (op_t *o = batch; o != NULL; o = o->next) {
        if (o->kind == OP_SESSION_PUT || o->kind == OP_SESSION_DEL) {
            append_session_op(&p, o);
            continue;
        }
        keys_for(&p, o);
        if (o->kind == OP_EVENT) {
            push_trim_expire(&p, p.okey, o, ttl);
            continue;
        }
        /* a resync replaces the execution's keys all at once: a rejected RPUSH (Redis out of
         * memory, say) aborts the transaction instead of leaving the list emptied by the DEL */
        if (o->kind == OP_RESYNC)
            append_fmt(&p, "MULTI", NULL, NULL, NULL);
        if (o->kind == OP_META || o->kind == OP_RESYNC) {
            const char *argv[5] = {"SET", p.key, o->meta, "EX", ttl};
            size_t alen[5] = {3, strlen(p.key), o->meta_len, 2, strlen(ttl)};
            append_argv(&p, 5, argv, alen);
            append_fmt(&p, "SADD", p.skey, o->id, NULL);
            append_fmt(&p, "EXPIRE", p.skey, ttl, NULL);
            if (o->workspace_id[0] != '\0') {
                append_fmt(&p, "SADD", p.wkey, o->id, NULL);
                append_fmt(&p, "EXPIRE", p.wkey, ttl, NULL);
            }
            append_running_index(&p, o, ttl);
        }
        if (o->kind == OP_RESYNC) {
            append_fmt(&p, "DEL", p.okey, NULL, NULL);
            if (o->n_events > 0)
                push_trim_expire(&p, p.okey, o, ttl);
            append_fmt(&p, "EXEC", NULL, NULL, NULL);
        }
        if (o->kind == OP_TOUCH) {
            append_fmt(&p, "EXPIRE", p.key, ttl, NULL);
            append_fmt(&p, "EXPIRE", p.okey, ttl, NULL);
            append_fmt(&p, "EXPIRE", p.skey, ttl, NULL);
            if (o->workspace_id[0] != '\0')
                append_fmt(&p, "EXPIRE", p.wkey, ttl, NULL);
        }
    }
    int rc = 0;
    while (p.pending-- > 0) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            rc = -1;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR || (r->type == REDIS_REPLY_ARRAY && has_error_element(r))) {
            char msg[256];
            snprintf(msg, sizeof(msg), "%s", r->type == REDIS_REPLY_ERROR ? r->str : "error inside a transaction");
            set_last_error(msg);
            /* a command error (OOM, READONLY replica...) loses data too, but retrying at once would fail again */
            if (rc == 0)
                rc = -2;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Tells the loop which executions a lost batch touched. */
static void report_lost(op_t *batch, int command_error)
{
    size_t n = 0;
    for (op_t *o = batch; o != NULL; o = o->next)
        n++;
    mirror_msg_t *m = xcalloc(1, sizeof(*m));
    m->kind = MSG_LOST;
    m->command_error = command_error;
    m->ids = xcalloc(n ? n : 1, sizeof(*m->ids));
    for (op_t *o = batch; o != NULL; o = o->next)
        if (o->kind != OP_TOUCH && o->kind != OP_SESSION_PUT && o->kind != OP_SESSION_DEL)
            strlcpy(m->ids[m->n_ids++], o->id, sizeof(m->ids[0]));
    atomic_fetch_add(&mirror_st.stats.batches_lost, 1);
    mirror_post(m);
}

/* Writer, under lock: unlinks up to BATCH_MAX_OPS operations (BATCH_MAX_BYTES) from the queue's head. */

/*
 * Writer, after a batch of `n` operations failed: drops a broken connection
 * (*c = NULL), has the loop resync the batch's executions, and once stopping
 * (nobody resyncs any more) counts the batch for cluster_stop's report.
 */
static void batch_failed(redisContext **c, op_t *batch, size_t n, uint64_t *refused_logged_ms)
{
    int lost_connection = (*c)->err != 0;
    if (lost_connection) {
        set_last_error((*c)->errstr);
        log_warn("redis mirror: connection lost (%s); %zu operations will be resynced", (*c)->errstr, n);
        mirror_redis_close(MIRROR_CONN_WRITER, *c);
        *c = NULL;
        atomic_store(&mirror_st.stats.connected, 0);
    } else if (util_now_ms() - *refused_logged_ms >= 1000) {
        *refused_logged_ms = util_now_ms(); /* at most once a second */
        log_warn("redis mirror: Redis refused writes; the executions concerned will be resynced later");
    }
    report_lost(batch, !lost_connection);
    pthread_mutex_lock(&mirror_st.wq.lock);
    if (mirror_st.wq.stopping)
        mirror_st.stop_lost += n;
    pthread_mutex_unlock(&mirror_st.wq.lock);
}

void *mirror_writer_main(void *arg)
{
    (void)arg;
    /* the loop thread serves requests: on a busy machine it goes first */
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    redisContext *c = NULL;
    int backoff = 100, ever = 0;
    uint64_t refused_logged_ms = 0;
    char err[256];
    for (;;) {
        if (c == NULL) {
            pthread_mutex_lock(&mirror_st.wq.lock);
            int stop = mirror_st.wq.stopping;
            pthread_mutex_unlock(&mirror_st.wq.lock);
            if (stop)
                break; /* shutting down without a connection: cluster_stop drops what is left */
            c = mirror_redis_open(MIRROR_CONN_WRITER, err, sizeof(err));
            if (c == NULL) {
                set_last_error(err);
                if (backoff == 100 || !ever)
                    log_warn("redis mirror: %s unreachable (%s); serving from memory, retrying", mirror_st.redacted, err);
                ever = ever ? ever : -1;
                writer_sleep(backoff);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            if (ever <= 0)
                log_info("✅ Redis connected - distributed mode enabled (%s)", mirror_st.redacted);
            else {
                log_info("redis mirror: reconnected to %s", mirror_st.redacted);
                atomic_fetch_add(&mirror_st.stats.reconnects, 1);
            }
            mirror_msg_t *m = xcalloc(1, sizeof(*m));
            m->kind = MSG_CONNECTED;
            m->reconnect = ever == 1;
            ever = 1;
            backoff = 100;
            set_last_error("");
            atomic_store(&mirror_st.stats.connected, 1);
            mirror_post(m);
        }
        pthread_mutex_lock(&mirror_st.wq.lock);
        while (mirror_st.wq.head == NULL && !mirror_st.wq.stopping) {
            mirror_st.wq.writer_waiting = 1;
            pthread_cond_wait(&mirror_st.wq.cond, &mirror_st.wq.lock);
        }
        if (mirror_st.wq.head == NULL && mirror_st.wq.stopping) {
            pthread_mutex_unlock(&mirror_st.wq.lock);
            break;
        }
        size_t n;
        op_t *batch = mirror_queue_take_batch_locked(&mirror_st.wq, BATCH_MAX_OPS, BATCH_MAX_BYTES, &n);
        pthread_mutex_unlock(&mirror_st.wq.lock);
        int wrc = write_batch(c, batch);
        if (wrc == 0 && mirror_st.last_error[0] != '\0')
            set_last_error(""); /* writes go through again */
        if (wrc != 0)
            batch_failed(&c, batch, n, &refused_logged_ms);
        while (batch != NULL) {
            op_t *next = batch->next;
            mirror_op_free(batch);
            batch = next;
        }
    }
    mirror_redis_close(MIRROR_CONN_WRITER, c);
    atomic_store(&mirror_st.stats.connected, 0);
    return NULL;
}
