/*
 * mirror: the Redis mirror.
 *
 * Threads and ownership:
 *  - the loop thread enqueues operations (mirror_exec_*) and owns the set of
 *    "dirty" executions that Redis may hold wrongly;
 *  - the writer thread owns its hiredis connection; it takes the whole queue
 *    at once and writes it as one pipeline (consecutive events of one
 *    execution become one variadic RPUSH);
 *  - the reader thread owns another connection and answers cross-replica
 *    reads, posting results back to the loop through h2o's ctx.queue.
 * The queue is the only shared state (one mutex). When the queue is full an
 * operation is dropped and its execution marked dirty; when a batch is lost
 * with the connection the writer posts the batch's execution ids back to the
 * loop, which marks them dirty. Dirty executions are resynced from memory
 * (DEL + RPUSH of every held event + SET of the metadata) once Redis answers,
 * so Redis ends up holding exactly what the replica holds.
 */
#include "mirror.h"
#include "config.h"
#include "deadline.h"
#include "exec.h"
#include "http.h"
#include "log.h"
#include "util.h"

#include <bsd/string.h>
#include <errno.h>
#include <hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH_MAX_OPS 4096
#define RPUSH_GROUP_MAX 1024
#define OP_OVERHEAD 96

/* ---------------------------------------------------------------- URL */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies [s, s+n) into out, decoding %XX. -1 when it does not fit or is malformed. */
static int url_decode(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval((unsigned char)s[i + 1]);
            int l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= len)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000)
        return -1;
    *db = (int)v;
    return 0;
}

int mirror_url_parse(const char *url, mirror_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (!strncmp(url, "unix://", 7)) {
        const char *p = url + 7, *q = strchr(p, '?');
        size_t n = q != NULL ? (size_t)(q - p) : strlen(p);
        if (n == 0 || p[0] != '/' || n >= sizeof(u->path)) {
            snprintf(err, errlen, "expected unix:///absolute/path/to.sock[?db=N]");
            return -1;
        }
        memcpy(u->path, p, n);
        u->unix_socket = 1;
        if (q != NULL) {
            if (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &u->db) != 0) {
                snprintf(err, errlen, "unix socket URL: the only query accepted is ?db=N (N >= 0)");
                return -1;
            }
        }
        return 0;
    }
    if (!strncmp(url, "rediss://", 9)) {
        snprintf(err, errlen, "rediss:// (TLS) is not supported by hiredis 0.14; use redis:// or unix://");
        return -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "expected redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]");
        return -1;
    }
    const char *p = url + 8;
    const char *at = strrchr(p, '@');
    if (at != NULL) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (colon == NULL) {
            snprintf(err, errlen, "credentials must be [user]:password@ (a colon before the password)");
            return -1;
        }
        if (url_decode(p, (size_t)(colon - p), u->user, sizeof(u->user)) != 0 ||
            url_decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof(u->password)) != 0) {
            snprintf(err, errlen, "malformed or too long user/password");
            return -1;
        }
        p = at + 1;
    }
    const char *slash = strchr(p, '/');
    size_t hostport = slash != NULL ? (size_t)(slash - p) : strlen(p);
    const char *hp_end = p + hostport, *host_end = hp_end, *port_s = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', hostport);
        if (close == NULL) {
            snprintf(err, errlen, "unterminated [IPv6] host");
            return -1;
        }
        memcpy(u->host, p + 1, (size_t)(close - p - 1));
        if (close + 1 < hp_end) {
            if (close[1] != ':') {
                snprintf(err, errlen, "expected :port after ]");
                return -1;
            }
            port_s = close + 2;
        }
    } else {
        const char *colon = memchr(p, ':', hostport);
        if (colon != NULL) {
            host_end = colon;
            port_s = colon + 1;
        }
        if ((size_t)(host_end - p) >= sizeof(u->host)) {
            snprintf(err, errlen, "host name too long");
            return -1;
        }
        memcpy(u->host, p, (size_t)(host_end - p));
    }
    if (u->host[0] == '\0') {
        snprintf(err, errlen, "missing host");
        return -1;
    }
    if (port_s != NULL) {
        char buf[8];
        size_t n = (size_t)(hp_end - port_s);
        char *end;
        if (n == 0 || n >= sizeof(buf)) {
            snprintf(err, errlen, "port must be 1..65535");
            return -1;
        }
        memcpy(buf, port_s, n);
        buf[n] = '\0';
        long port = strtol(buf, &end, 10);
        if (*end != '\0' || port < 1 || port > 65535) {
            snprintf(err, errlen, "port must be 1..65535");
            return -1;
        }
        u->port = (int)port;
    }
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0) {
        snprintf(err, errlen, "the path must be a database number (/0, /1, ...)");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- shared state */

enum op_kind { OP_META, OP_EVENT, OP_TOUCH, OP_RESYNC };

typedef struct op {
    struct op *next;
    enum op_kind kind;
    char id[40];
    char session_id[SESSION_ID_LEN + 1];
    char *meta;              /* META, RESYNC */
    size_t meta_len;
    char **events;           /* EVENT: 1 entry; RESYNC: n entries */
    size_t *event_lens;
    size_t n_events;
    size_t keep;             /* events the list should keep (LTRIM) */
    size_t bytes;            /* accounted queue bytes */
} op_t;

static struct {
    int enabled;
    mirror_url_t url;
    char redacted[1100];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    op_t *head, *tail;
    size_t queue_bytes, queue_ops, queue_events;
    int writer_waiting, stopping;
    pthread_t writer, reader;
    _Atomic int connected;
    _Atomic unsigned long long drops, resyncs, written, batches_lost, reconnects;
    char last_error[256]; /* under lock */
    /* reader */
    pthread_mutex_t rlock;
    pthread_cond_t rcond;
    struct read_req *rhead, *rtail;
    int rstopping;
    /* loop side */
    h2o_multithread_receiver_t receiver;
    deadline_t resync_timer;
} M = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER, .rlock = PTHREAD_MUTEX_INITIALIZER,
       .rcond = PTHREAD_COND_INITIALIZER};

/* Messages posted to the loop. */
enum msg_kind { MSG_CONNECTED, MSG_LOST, MSG_READ };

struct read_req {
    struct read_req *next;
    int session_list;
    int with_output;
    char id[40];
    char session_id[SESSION_ID_LEN + 1];
    mirror_read_cb cb;
    void *arg;
};

typedef struct mirror_msg {
    h2o_multithread_message_t super; /* must be first; zeroed */
    enum msg_kind kind;
    char (*ids)[40];                 /* MSG_LOST */
    size_t n_ids;
    struct read_req *req;            /* MSG_READ */
    int found;
    char *meta, *events, *err;
    size_t meta_len, events_len;
} mirror_msg_t;

static void post(mirror_msg_t *m)
{
    h2o_multithread_send_message(&M.receiver, &m->super);
}

static void op_free(op_t *o)
{
    free(o->meta);
    for (size_t i = 0; i < o->n_events; i++)
        free(o->events[i]);
    free(o->events);
    free(o->event_lens);
    free(o);
}

/* ---------------------------------------------------------------- loop side: dirty set */

RB_HEAD(dirty_tree, dirty);
struct dirty {
    RB_ENTRY(dirty) node;
    char id[40];
};

static int dirty_cmp(struct dirty *a, struct dirty *b)
{
    return strcmp(a->id, b->id);
}

RB_GENERATE(dirty_tree, dirty, node, dirty_cmp)
static struct dirty_tree dirty = RB_INITIALIZER(&dirty);
static size_t n_dirty;

static void mark_dirty(const char *id)
{
    struct dirty key;
    strlcpy(key.id, id, sizeof(key.id));
    if (RB_FIND(dirty_tree, &dirty, &key) != NULL)
        return;
    struct dirty *d = xcalloc(1, sizeof(*d));
    strlcpy(d->id, id, sizeof(d->id));
    RB_INSERT(dirty_tree, &dirty, d);
    n_dirty++;
}

/* Enqueues an op unless the queue is full; returns 0, or -1 (caller marks dirty). */
static int enqueue(op_t *o)
{
    pthread_mutex_lock(&M.lock);
    if (M.stopping || M.queue_bytes + o->bytes > (size_t)config.mirror_queue_bytes) {
        pthread_mutex_unlock(&M.lock);
        return -1;
    }
    if (M.tail != NULL)
        M.tail->next = o;
    else
        M.head = o;
    M.tail = o;
    M.queue_bytes += o->bytes;
    M.queue_ops++;
    M.queue_events += o->n_events;
    int wake = M.writer_waiting;
    M.writer_waiting = 0;
    pthread_mutex_unlock(&M.lock);
    if (wake)
        pthread_cond_signal(&M.cond);
    return 0;
}

static void resync_dirty(deadline_t *d);

static void enqueue_or_dirty(op_t *o)
{
    char id[40];
    strlcpy(id, o->id, sizeof(id));
    if (enqueue(o) != 0) {
        op_free(o);
        atomic_fetch_add(&M.drops, 1);
        mark_dirty(id);
        if (!M.resync_timer.armed && !M.stopping)
            deadline_arm(&M.resync_timer, 1000, resync_dirty);
    }
}

/* The execution's metadata as stored at execution:{id}. */
static char *meta_json(const exec_t *e, size_t *len)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "session_id", e->session_id);
    cJSON_AddStringToObject(o, "command", e->command);
    cJSON_AddStringToObject(o, "status", exec_status_name(e->status));
    util_iso8601(e->started_wall_ms, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "started_at", ts);
    if (exec_is_active(e)) {
        cJSON_AddNullToObject(o, "completed_at");
        cJSON_AddNullToObject(o, "exit_code");
    } else {
        util_iso8601(e->completed_wall_ms, ts, sizeof(ts));
        cJSON_AddStringToObject(o, "completed_at", ts);
        if (e->has_exit_code)
            cJSON_AddNumberToObject(o, "exit_code", e->exit_code);
        else
            cJSON_AddNullToObject(o, "exit_code");
    }
    if (e->error_message != NULL)
        cJSON_AddStringToObject(o, "error_message", e->error_message);
    else
        cJSON_AddNullToObject(o, "error_message");
    cJSON_AddBoolToObject(o, "interactive", e->interactive);
    cJSON_AddNumberToObject(o, "timeout_seconds", e->timeout_s);
    cJSON_AddStringToObject(o, "replica", config.replica);
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (s == NULL)
        util_oom();
    *len = strlen(s);
    return s;
}

static op_t *op_new(enum op_kind kind, const exec_t *e)
{
    op_t *o = xcalloc(1, sizeof(*o));
    o->kind = kind;
    strlcpy(o->id, e->id, sizeof(o->id));
    strlcpy(o->session_id, e->session_id, sizeof(o->session_id));
    o->bytes = OP_OVERHEAD;
    return o;
}

static void enqueue_resync(const exec_t *e)
{
    op_t *o = op_new(OP_RESYNC, e);
    o->meta = meta_json(e, &o->meta_len);
    o->n_events = e->log.count;
    o->events = xcalloc(o->n_events + 1, sizeof(char *));
    o->event_lens = xcalloc(o->n_events + 1, sizeof(size_t));
    o->bytes += o->meta_len;
    for (size_t i = 0; i < o->n_events; i++) {
        const event_t *ev = events_at(&e->log, i);
        o->events[i] = xstrndup(ev->json, ev->len);
        o->event_lens[i] = ev->len;
        o->bytes += ev->len + 16;
    }
    o->keep = e->log.count;
    if (enqueue(o) != 0) {
        op_free(o);
        mark_dirty(e->id);
        return;
    }
    atomic_fetch_add(&M.resyncs, 1);
}

/* Resyncs dirty executions while Redis answers and the queue has room. */
static void resync_dirty(deadline_t *d)
{
    (void)d;
    if (!atomic_load(&M.connected) || M.stopping) {
        if (n_dirty > 0 && !M.stopping)
            deadline_arm(&M.resync_timer, 1000, resync_dirty);
        return;
    }
    size_t done = 0;
    struct dirty *x, *next;
    for (x = RB_MIN(dirty_tree, &dirty); x != NULL; x = next) {
        next = RB_NEXT(dirty_tree, &dirty, x);
        pthread_mutex_lock(&M.lock);
        int room = M.queue_bytes < (size_t)config.mirror_queue_bytes / 2;
        pthread_mutex_unlock(&M.lock);
        if (!room)
            break;
        RB_REMOVE(dirty_tree, &dirty, x);
        n_dirty--;
        exec_t *e = exec_lookup(x->id);
        if (e != NULL) {
            enqueue_resync(e);
            done++;
        }
        free(x);
    }
    if (done > 0)
        log_info("redis mirror: resynced %zu executions from memory (%zu still waiting)", done, n_dirty);
    if (n_dirty > 0)
        deadline_arm(&M.resync_timer, 1000, resync_dirty);
}

void mirror_exec_meta(const exec_t *e)
{
    if (!M.enabled)
        return;
    op_t *o = op_new(OP_META, e);
    o->meta = meta_json(e, &o->meta_len);
    o->bytes += o->meta_len;
    enqueue_or_dirty(o);
}

void mirror_exec_event(const exec_t *e, const event_t *ev)
{
    if (!M.enabled)
        return;
    op_t *o = op_new(OP_EVENT, e);
    o->events = xmalloc(sizeof(char *));
    o->event_lens = xmalloc(sizeof(size_t));
    o->events[0] = xstrndup(ev->json, ev->len);
    o->event_lens[0] = ev->len;
    o->n_events = 1;
    o->keep = e->log.count;
    o->bytes += ev->len;
    enqueue_or_dirty(o);
}

void mirror_exec_touch(const exec_t *e)
{
    if (!M.enabled)
        return;
    op_t *o = op_new(OP_TOUCH, e);
    if (enqueue(o) != 0)
        op_free(o); /* a missed TTL refresh is harmless: the next write refreshes it */
}

void mirror_exec_forget(const exec_t *e)
{
    if (!M.enabled || n_dirty == 0)
        return;
    struct dirty key;
    strlcpy(key.id, e->id, sizeof(key.id));
    struct dirty *d = RB_FIND(dirty_tree, &dirty, &key);
    if (d == NULL)
        return;
    RB_REMOVE(dirty_tree, &dirty, d);
    n_dirty--;
    free(d);
    enqueue_resync(e); /* last chance before the memory copy goes */
}

/* Messages from the threads, on the loop. */
static void on_messages(h2o_multithread_receiver_t *r, h2o_linklist_t *messages)
{
    (void)r;
    while (!h2o_linklist_is_empty(messages)) {
        mirror_msg_t *m = H2O_STRUCT_FROM_MEMBER(mirror_msg_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        switch (m->kind) {
        case MSG_CONNECTED:
            if (n_dirty > 0)
                resync_dirty(NULL);
            break;
        case MSG_LOST:
            for (size_t i = 0; i < m->n_ids; i++)
                mark_dirty(m->ids[i]);
            if (!M.resync_timer.armed)
                deadline_arm(&M.resync_timer, 200, resync_dirty);
            break;
        case MSG_READ:
            m->req->cb(m->req->arg, m->found, m->meta, m->meta_len, m->events, m->events_len, m->err);
            free(m->req);
            break;
        }
        free(m->ids);
        free(m->meta);
        free(m->events);
        free(m->err);
        free(m);
    }
}

/* ---------------------------------------------------------------- connections */

static void set_last_error(const char *s)
{
    pthread_mutex_lock(&M.lock);
    strlcpy(M.last_error, s, sizeof(M.last_error));
    pthread_mutex_unlock(&M.lock);
}

/* Connects, authenticates and selects the db. NULL with err filled on failure. */
static redisContext *redis_open(char *err, size_t errlen)
{
    struct timeval tv = {2, 0};
    redisContext *c = M.url.unix_socket ? redisConnectUnixWithTimeout(M.url.path, tv)
                                        : redisConnectWithTimeout(M.url.host, M.url.port, tv);
    if (c == NULL || c->err) {
        snprintf(err, errlen, "%s", c != NULL ? c->errstr : "cannot allocate a connection");
        if (c != NULL)
            redisFree(c);
        return NULL;
    }
    struct timeval cmd = {5, 0};
    redisSetTimeout(c, cmd);
    if (!M.url.unix_socket)
        redisEnableKeepAlive(c);
    redisReply *r = NULL;
    if (M.url.password[0]) {
        if (M.url.user[0])
            r = redisCommand(c, "AUTH %s %s", M.url.user, M.url.password);
        else
            r = redisCommand(c, "AUTH %s", M.url.password);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "AUTH failed: %s", r != NULL ? r->str : c->errstr);
            goto Fail;
        }
        freeReplyObject(r);
    }
    if (M.url.db != 0) {
        r = redisCommand(c, "SELECT %d", M.url.db);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "SELECT %d failed: %s", M.url.db, r != NULL ? r->str : c->errstr);
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
    redisFree(c);
    return NULL;
}

/* Waits up to `ms` on the queue condition (returns early when stopping). */
static void writer_sleep(int ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&M.lock);
    if (!M.stopping)
        pthread_cond_timedwait(&M.cond, &M.lock, &ts);
    pthread_mutex_unlock(&M.lock);
}

/* ---------------------------------------------------------------- writer */

struct pipeline {
    redisContext *c;
    int pending;          /* replies to read */
    char key[64], okey[72], skey[64];
};

static void append_argv(struct pipeline *p, int argc, const char **argv, const size_t *lens)
{
    redisAppendCommandArgv(p->c, argc, argv, lens);
    p->pending++;
}

static void append_fmt(struct pipeline *p, const char *a0, const char *a1, const char *a2, const char *a3)
{
    const char *argv[4] = {a0, a1, a2, a3};
    size_t lens[4] = {strlen(a0), strlen(a1), a2 ? strlen(a2) : 0, a3 ? strlen(a3) : 0};
    append_argv(p, a3 ? 4 : a2 ? 3 : 2, argv, lens);
}

static void keys_for(struct pipeline *p, const op_t *o)
{
    snprintf(p->key, sizeof(p->key), "execution:%s", o->id);
    snprintf(p->okey, sizeof(p->okey), "execution:%s:output", o->id);
    snprintf(p->skey, sizeof(p->skey), "session:%s:executions", o->session_id);
}

static void push_trim_expire(struct pipeline *p, const char *okey, char **vals, size_t *lens, size_t n, size_t keep,
                             const char *ttl)
{
    for (size_t off = 0; off < n; off += RPUSH_GROUP_MAX) {
        size_t k = n - off < RPUSH_GROUP_MAX ? n - off : RPUSH_GROUP_MAX;
        const char *argv[RPUSH_GROUP_MAX + 2];
        size_t alen[RPUSH_GROUP_MAX + 2];
        argv[0] = "RPUSH";
        alen[0] = 5;
        argv[1] = okey;
        alen[1] = strlen(okey);
        for (size_t i = 0; i < k; i++) {
            argv[i + 2] = vals[off + i];
            alen[i + 2] = lens[off + i];
        }
        append_argv(p, (int)k + 2, argv, alen);
    }
    char start[32];
    snprintf(start, sizeof(start), "-%zu", keep > 0 ? keep : 1);
    if (keep == 0)
        append_fmt(p, "DEL", okey, NULL, NULL);
    else
        append_fmt(p, "LTRIM", okey, start, "-1");
    append_fmt(p, "EXPIRE", okey, ttl, NULL);
}

/*
 * Writes a batch as one pipeline. Consecutive EVENT ops of one execution are
 * merged into variadic RPUSHes. Returns 0 when every reply arrived, -1 when
 * the connection failed (the batch's executions must then be resynced).
 */
static int write_batch(redisContext *c, op_t *batch)
{
    struct pipeline p = {.c = c};
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", config.redis_ttl);
    char *vals[RPUSH_GROUP_MAX];
    size_t lens[RPUSH_GROUP_MAX];
    for (op_t *o = batch; o != NULL;) {
        keys_for(&p, o);
        if (o->kind == OP_EVENT) {
            size_t n = 0, keep = o->keep;
            op_t *x = o;
            while (x != NULL && x->kind == OP_EVENT && !strcmp(x->id, o->id) && n < RPUSH_GROUP_MAX) {
                vals[n] = x->events[0];
                lens[n] = x->event_lens[0];
                keep = x->keep;
                n++;
                x = x->next;
            }
            push_trim_expire(&p, p.okey, vals, lens, n, keep, ttl);
            atomic_fetch_add(&M.written, n);
            o = x;
            continue;
        }
        if (o->kind == OP_META || o->kind == OP_RESYNC) {
            const char *argv[5] = {"SET", p.key, o->meta, "EX", ttl};
            size_t alen[5] = {3, strlen(p.key), o->meta_len, 2, strlen(ttl)};
            append_argv(&p, 5, argv, alen);
            append_fmt(&p, "SADD", p.skey, o->id, NULL);
            append_fmt(&p, "EXPIRE", p.skey, ttl, NULL);
        }
        if (o->kind == OP_RESYNC) {
            append_fmt(&p, "DEL", p.okey, NULL, NULL);
            if (o->n_events > 0)
                push_trim_expire(&p, p.okey, o->events, o->event_lens, o->n_events, o->keep, ttl);
            atomic_fetch_add(&M.written, o->n_events);
        }
        if (o->kind == OP_TOUCH) {
            append_fmt(&p, "EXPIRE", p.key, ttl, NULL);
            append_fmt(&p, "EXPIRE", p.okey, ttl, NULL);
            append_fmt(&p, "EXPIRE", p.skey, ttl, NULL);
        }
        o = o->next;
    }
    int rc = 0;
    while (p.pending-- > 0) {
        redisReply *r = NULL;
        if (redisGetReply(c, (void **)&r) != REDIS_OK) {
            rc = -1;
            break;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            char msg[256];
            snprintf(msg, sizeof(msg), "%s", r->str);
            set_last_error(msg);
            /* a command error (OOM, READONLY replica...) loses data like a dropped connection */
            rc = -1;
        }
        freeReplyObject(r);
    }
    return rc;
}

/* Tells the loop which executions a lost batch touched. */
static void report_lost(op_t *batch)
{
    size_t n = 0;
    for (op_t *o = batch; o != NULL; o = o->next)
        n++;
    mirror_msg_t *m = xcalloc(1, sizeof(*m));
    m->kind = MSG_LOST;
    m->ids = xcalloc(n ? n : 1, sizeof(*m->ids));
    for (op_t *o = batch; o != NULL; o = o->next)
        if (o->kind != OP_TOUCH)
            strlcpy(m->ids[m->n_ids++], o->id, sizeof(m->ids[0]));
    atomic_fetch_add(&M.batches_lost, 1);
    post(m);
}

static void *writer_main(void *arg)
{
    (void)arg;
    redisContext *c = NULL;
    int backoff = 100, ever = 0;
    char err[256];
    for (;;) {
        if (c == NULL) {
            pthread_mutex_lock(&M.lock);
            int stop = M.stopping;
            pthread_mutex_unlock(&M.lock);
            c = redis_open(err, sizeof(err));
            if (c == NULL) {
                set_last_error(err);
                if (backoff == 100 || !ever)
                    log_warn("redis mirror: %s unreachable (%s); serving from memory, retrying", M.redacted, err);
                ever = ever ? ever : -1;
                if (stop)
                    break;
                writer_sleep(backoff);
                backoff = backoff * 2 > 5000 ? 5000 : backoff * 2;
                continue;
            }
            if (ever <= 0)
                log_info("✅ Redis connected - distributed mode enabled (%s)", M.redacted);
            else {
                log_info("redis mirror: reconnected to %s", M.redacted);
                atomic_fetch_add(&M.reconnects, 1);
            }
            ever = 1;
            backoff = 100;
            atomic_store(&M.connected, 1);
            mirror_msg_t *m = xcalloc(1, sizeof(*m));
            m->kind = MSG_CONNECTED;
            post(m);
        }
        pthread_mutex_lock(&M.lock);
        while (M.head == NULL && !M.stopping) {
            M.writer_waiting = 1;
            pthread_cond_wait(&M.cond, &M.lock);
        }
        if (M.head == NULL && M.stopping) {
            pthread_mutex_unlock(&M.lock);
            break;
        }
        /* take up to BATCH_MAX_OPS ops */
        op_t *batch = M.head, *last = batch;
        size_t n = 1, bytes = batch->bytes, events = batch->n_events;
        while (last->next != NULL && n < BATCH_MAX_OPS) {
            last = last->next;
            n++;
            bytes += last->bytes;
            events += last->n_events;
        }
        M.head = last->next;
        if (M.head == NULL)
            M.tail = NULL;
        last->next = NULL;
        M.queue_bytes -= bytes;
        M.queue_ops -= n;
        M.queue_events -= events;
        pthread_mutex_unlock(&M.lock);
        if (write_batch(c, batch) != 0) {
            if (c->err) {
                set_last_error(c->errstr);
                log_warn("redis mirror: connection lost (%s); %zu operations will be resynced", c->errstr, n);
                redisFree(c);
                c = NULL;
                atomic_store(&M.connected, 0);
            }
            report_lost(batch);
        }
        while (batch != NULL) {
            op_t *next = batch->next;
            op_free(batch);
            batch = next;
        }
    }
    if (c != NULL)
        redisFree(c);
    atomic_store(&M.connected, 0);
    return NULL;
}

/* ---------------------------------------------------------------- reader */

static char *reply_dup(redisReply *r, size_t *len)
{
    *len = r->len;
    return xstrndup(r->str, r->len);
}

/* Does the metadata JSON say it belongs to session `sid`? */
static int owned_by(const char *json, size_t len, const char *sid)
{
    cJSON *m = cJSON_ParseWithLength(json, len);
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(m, "session_id");
    int ok = cJSON_IsString(s) && !strcmp(s->valuestring, sid);
    cJSON_Delete(m);
    return ok;
}

static void read_exec(redisContext *c, struct read_req *q, mirror_msg_t *m)
{
    char key[64], okey[72], ttl[16];
    snprintf(key, sizeof(key), "execution:%s", q->id);
    snprintf(okey, sizeof(okey), "execution:%s:output", q->id);
    snprintf(ttl, sizeof(ttl), "%d", config.redis_ttl);
    redisReply *r = redisCommand(c, "GET %s", key);
    if (r == NULL) {
        m->err = xstrdup(c->errstr);
        return;
    }
    if (r->type != REDIS_REPLY_STRING || !owned_by(r->str, r->len, q->session_id)) {
        freeReplyObject(r);
        return;
    }
    m->meta = reply_dup(r, &m->meta_len);
    freeReplyObject(r);
    m->found = 1;
    if (q->with_output) {
        r = redisCommand(c, "LRANGE %s 0 -1", okey);
        if (r == NULL) {
            m->err = xstrdup(c->errstr);
            m->found = 0;
            return;
        }
        strbuf_t b = {0};
        strbuf_puts(&b, "[");
        for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
            if (i > 0)
                strbuf_puts(&b, ",");
            strbuf_append(&b, r->element[i]->str, r->element[i]->len);
        }
        strbuf_puts(&b, "]");
        freeReplyObject(r);
        m->events = strbuf_steal(&b, &m->events_len);
    }
    /* reads refresh the TTLs too */
    r = redisCommand(c, "EXPIRE %s %s", key, ttl);
    if (r != NULL)
        freeReplyObject(r);
    r = redisCommand(c, "EXPIRE %s %s", okey, ttl);
    if (r != NULL)
        freeReplyObject(r);
}

static void read_session(redisContext *c, struct read_req *q, mirror_msg_t *m)
{
    char skey[64];
    snprintf(skey, sizeof(skey), "session:%s:executions", q->session_id);
    redisReply *r = redisCommand(c, "SMEMBERS %s", skey);
    if (r == NULL) {
        m->err = xstrdup(c->errstr);
        return;
    }
    strbuf_t b = {0};
    strbuf_puts(&b, "[");
    int first = 1;
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        redisReply *g = redisCommand(c, "GET execution:%b", r->element[i]->str, r->element[i]->len);
        if (g != NULL && g->type == REDIS_REPLY_STRING && owned_by(g->str, g->len, q->session_id)) {
            cJSON *meta = cJSON_ParseWithLength(g->str, g->len), *o = cJSON_CreateObject();
            static const char *keys[] = {"id", "status", "command", "interactive", "started_at", "completed_at", NULL};
            for (int k = 0; keys[k] != NULL; k++) {
                cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, keys[k]);
                cJSON_AddItemToObject(o, keys[k], v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
            }
            char *s = cJSON_PrintUnformatted(o);
            if (!first)
                strbuf_puts(&b, ",");
            strbuf_puts(&b, s);
            first = 0;
            free(s);
            cJSON_Delete(o);
            cJSON_Delete(meta);
        }
        if (g != NULL)
            freeReplyObject(g);
    }
    freeReplyObject(r);
    strbuf_puts(&b, "]");
    m->meta = strbuf_steal(&b, &m->meta_len);
    m->found = 1;
}

static void *reader_main(void *arg)
{
    (void)arg;
    redisContext *c = NULL;
    char err[256];
    for (;;) {
        pthread_mutex_lock(&M.rlock);
        while (M.rhead == NULL && !M.rstopping)
            pthread_cond_wait(&M.rcond, &M.rlock);
        struct read_req *q = M.rhead;
        if (q == NULL) {
            pthread_mutex_unlock(&M.rlock);
            break;
        }
        M.rhead = q->next;
        if (M.rhead == NULL)
            M.rtail = NULL;
        pthread_mutex_unlock(&M.rlock);
        mirror_msg_t *m = xcalloc(1, sizeof(*m));
        m->kind = MSG_READ;
        m->req = q;
        for (int attempt = 0; attempt < 2; attempt++) {
            if (c == NULL && (c = redis_open(err, sizeof(err))) == NULL) {
                free(m->err);
                m->err = xstrdup(err);
                break;
            }
            free(m->err);
            m->err = NULL;
            if (q->session_list)
                read_session(c, q, m);
            else
                read_exec(c, q, m);
            if (m->err == NULL || !c->err)
                break;
            redisFree(c); /* stale connection: one fresh attempt */
            c = NULL;
            free(m->meta);
            free(m->events);
            m->meta = m->events = NULL;
            m->found = 0;
        }
        post(m);
    }
    if (c != NULL)
        redisFree(c);
    return NULL;
}

static int read_enqueue(struct read_req *q)
{
    pthread_mutex_lock(&M.rlock);
    if (M.rstopping) {
        pthread_mutex_unlock(&M.rlock);
        return -1;
    }
    if (M.rtail != NULL)
        M.rtail->next = q;
    else
        M.rhead = q;
    M.rtail = q;
    pthread_mutex_unlock(&M.rlock);
    pthread_cond_signal(&M.rcond);
    return 0;
}

int mirror_read_exec(const char *id, const char *session_id, int with_output, mirror_read_cb cb, void *arg)
{
    if (!M.enabled)
        return -1;
    struct read_req *q = xcalloc(1, sizeof(*q));
    strlcpy(q->id, id, sizeof(q->id));
    strlcpy(q->session_id, session_id, sizeof(q->session_id));
    q->with_output = with_output;
    q->cb = cb;
    q->arg = arg;
    if (read_enqueue(q) != 0) {
        free(q);
        return -1;
    }
    return 0;
}

int mirror_read_session(const char *session_id, mirror_read_cb cb, void *arg)
{
    if (!M.enabled)
        return -1;
    struct read_req *q = xcalloc(1, sizeof(*q));
    strlcpy(q->session_id, session_id, sizeof(q->session_id));
    q->session_list = 1;
    q->cb = cb;
    q->arg = arg;
    if (read_enqueue(q) != 0) {
        free(q);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- lifecycle */

int mirror_enabled(void)
{
    return M.enabled;
}

int mirror_start(char *err, size_t errlen)
{
    if (config.redis_url[0] == '\0')
        return 0;
    if (mirror_url_parse(config.redis_url, &M.url, err, errlen) != 0)
        return -1;
    config_redacted_redis_url(config.redis_url, M.redacted, sizeof(M.redacted));
    M.enabled = 1;
    h2o_multithread_register_receiver(http_context()->queue, &M.receiver, on_messages);
    M.resync_timer.cb = resync_dirty;
    if (pthread_create(&M.writer, NULL, writer_main, NULL) != 0 || pthread_create(&M.reader, NULL, reader_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the Redis mirror threads");
        return -1;
    }
    return 0;
}

void mirror_stop(int deadline_ms)
{
    if (!M.enabled)
        return;
    uint64_t until = util_now_ms() + (uint64_t)deadline_ms;
    /* let the writer drain while Redis answers, up to the deadline */
    for (;;) {
        pthread_mutex_lock(&M.lock);
        size_t left = M.queue_ops;
        pthread_mutex_unlock(&M.lock);
        if (left == 0 || util_now_ms() >= until || !atomic_load(&M.connected))
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&M.lock);
    M.stopping = 1;
    size_t left = M.queue_ops;
    if (left > 0 && !atomic_load(&M.connected)) {
        /* Redis is down: what is queued cannot be written; drop it and say so */
        for (op_t *o = M.head; o != NULL;) {
            op_t *next = o->next;
            op_free(o);
            o = next;
        }
        M.head = M.tail = NULL;
        M.queue_ops = M.queue_bytes = M.queue_events = 0;
    }
    pthread_mutex_unlock(&M.lock);
    pthread_cond_broadcast(&M.cond);
    pthread_join(M.writer, NULL);
    pthread_mutex_lock(&M.rlock);
    M.rstopping = 1;
    pthread_mutex_unlock(&M.rlock);
    pthread_cond_broadcast(&M.rcond);
    pthread_join(M.reader, NULL);
    if (left > 0)
        log_warn("redis mirror: %zu operations not written at shutdown (Redis %s)", left,
                 atomic_load(&M.connected) ? "slow" : "unreachable");
    log_info("redis mirror stopped: %llu events written, %llu dropped, %llu resyncs", (unsigned long long)M.written,
             (unsigned long long)M.drops, (unsigned long long)M.resyncs);
}

void mirror_health(cJSON *h)
{
    if (!M.enabled) {
        cJSON_AddStringToObject(h, "redis", "disabled");
        return;
    }
    cJSON_AddStringToObject(h, "redis", atomic_load(&M.connected) ? "connected" : "disconnected");
    cJSON *x = cJSON_AddObjectToObject(h, "mirror");
    pthread_mutex_lock(&M.lock);
    cJSON_AddNumberToObject(x, "queue_bytes", (double)M.queue_bytes);
    cJSON_AddNumberToObject(x, "queue_events", (double)M.queue_events);
    cJSON_AddNumberToObject(x, "queue_ops", (double)M.queue_ops);
    if (M.last_error[0])
        cJSON_AddStringToObject(x, "last_error", M.last_error);
    pthread_mutex_unlock(&M.lock);
    cJSON_AddNumberToObject(x, "events_written", (double)atomic_load(&M.written));
    cJSON_AddNumberToObject(x, "drops", (double)atomic_load(&M.drops));
    cJSON_AddNumberToObject(x, "resyncs", (double)atomic_load(&M.resyncs));
    cJSON_AddNumberToObject(x, "batches_lost", (double)atomic_load(&M.batches_lost));
    cJSON_AddNumberToObject(x, "reconnects", (double)atomic_load(&M.reconnects));
    cJSON_AddNumberToObject(x, "dirty_executions", (double)n_dirty);
    cJSON_AddStringToObject(x, "url", M.redacted);
}
