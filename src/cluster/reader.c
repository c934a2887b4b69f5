/*
 * reader: the reader thread, with its own hiredis connection: answers reads
 * for executions this replica does not hold (for the owning session only,
 * refreshing their TTLs), a session's executions in a few round trips, and
 * session records for adoption; and pushes control messages (control.c). Requests come from the loop through the
 * reader queue (mirror_st.rq); answers go back with mirror_post.
 */
#include "core/config.h"
#include "core/log.h"
#include "cluster/keys.h"
#include "cluster/mirror_internal.h"
#include "core/util.h"

#include <bsd/string.h>
#include <limits.h>
#include <hiredis.h>
#include <sds.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define READ_PIPELINE_MAX 512 /* executions whose reads go in one pipeline (read_session) */
#define READ_CHUNK 2000       /* events per LRANGE of an output read */
#define READ_REREADS_MAX 16   /* times an output read follows the list's front being trimmed under it */

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

/* ---------------------------------------------------------------- output reads */

void remote_events_free(remote_events_t *ev)
{
    if (ev == NULL)
        return;
    free(ev->n > 0 ? ev->events[0].json : NULL);
    free(ev->events);
    free(ev);
}

/* Reads answered, waiting for the reader thread to free them. */
struct events_garbage {
    struct events_garbage *next;
    remote_events_t *ev;
};

#define DISCARD_IN_PLACE_MAX 1024 /* events a read may hold to be freed on the loop itself */

void remote_events_discard(remote_events_t *ev)
{
    if (ev == NULL)
        return;
    if (ev->n <= DISCARD_IN_PLACE_MAX) {
        remote_events_free(ev);
        return;
    }
    struct events_garbage *g = xcalloc(1, sizeof(*g));
    g->ev = ev;
    pthread_mutex_lock(&mirror_st.rq.lock);
    int stopping = mirror_st.rq.stopping;
    if (!stopping) {
        g->next = mirror_st.rq.garbage;
        mirror_st.rq.garbage = g;
    }
    pthread_mutex_unlock(&mirror_st.rq.lock);
    if (stopping) { /* the reader may be gone: free it here */
        remote_events_free(ev);
        free(g);
        return;
    }
    pthread_cond_signal(&mirror_st.rq.cond);
}

/* Reader thread: frees a list of answered reads. */
static void garbage_free(struct events_garbage *g)
{
    while (g != NULL) {
        struct events_garbage *next = g->next;
        remote_events_free(g->ev);
        free(g);
        g = next;
    }
}

/* Events being read: their JSON in one block (offsets until done), the oldest dropped past the byte cap. */
struct out_build {
    remote_events_t *r;
    size_t cap, start; /* events[start..n) are held */
    strbuf_t blob;
    size_t blob_start; /* blob bytes before it belong to dropped events */
    events_totals_t totals;
    long long seen; /* the highest list index looked at: an element past it is looked at for the first time */
    uint64_t first_seen; /* the first event id looked at (the list's first when it was read from its start) */
    uint64_t reread_for; /* the id wanted when the read last went back (0: never) */
};

/* Moves the held events and their JSON to the front: what was dropped stops taking memory. */
static void out_compact(struct out_build *b)
{
    remote_events_t *r = b->r;
    size_t n = r->n - b->start;
    if (b->start == 0)
        return;
    memmove(r->events, r->events + b->start, n * sizeof(*r->events));
    for (size_t i = 0; i < n; i++)
        r->events[i].json = (char *)((uintptr_t)r->events[i].json - b->blob_start);
    memmove(b->blob.data, b->blob.data + b->blob_start, b->blob.len - b->blob_start);
    b->blob.len -= b->blob_start;
    r->n = n;
    b->start = b->blob_start = 0;
}

/* Appends event `s` (parsed as `o`) with id `id`; drops the oldest while the held JSON passes the byte cap. */
static void out_add(struct out_build *b, const char *s, size_t len, const cJSON *o, uint64_t id)
{
    remote_events_t *r = b->r;
    if (r->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 1024;
        event_t *n = xcalloc(b->cap, sizeof(*n));
        if (r->n > 0)
            memcpy(n, r->events, r->n * sizeof(*n));
        free(r->events);
        r->events = n;
    }
    event_t *ev = &r->events[r->n++];
    ev->seq = id;
    ev->json = (char *)(uintptr_t)b->blob.len; /* an offset until the block stops moving */
    ev->len = (uint32_t)len;
    events_index(ev, events_describe(o), &b->totals);
    strbuf_append(&b->blob, s, len);
    strbuf_append(&b->blob, "", 1);
    while (b->blob.len - b->blob_start > (size_t)config.max_output_bytes && b->start + 1 < r->n) {
        b->blob_start += r->events[b->start].len + 1;
        b->start++;
        r->skipped++;
    }
    if (b->blob_start > b->blob.len / 2 && b->blob_start >= (1u << 20))
        out_compact(b);
}

/* Finishes a read: the held events moved to the front, their JSON pointers set into one block. */
static void out_finish(struct out_build *b)
{
    remote_events_t *r = b->r;
    out_compact(b);
    char *block = xmalloc(b->blob.len + 1);
    if (b->blob.len > 0)
        memcpy(block, b->blob.data, b->blob.len);
    for (size_t i = 0; i < r->n; i++)
        r->events[i].json = block + (uintptr_t)r->events[i].json;
    if (r->n == 0)
        free(block);
    strbuf_free(&b->blob);
}

/* The id of JSON event `o` (0 when it has none: no event_id, or not a decimal number from 1). */
static uint64_t event_id_of(const cJSON *o)
{
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "event_id");
    if (!cJSON_IsString(id) || id->valuestring[0] < '1' || id->valuestring[0] > '9')
        return 0;
    char *end;
    unsigned long long v = strtoull(id->valuestring, &end, 10);
    return *end == '\0' && v != ULLONG_MAX ? (uint64_t)v : 0;
}

/*
 * List element `e` as an event object, or NULL: its text goes into answers as
 * is, so it must be one JSON object and nothing after it, and at most
 * --max-output-bytes long (so its data length fits event_t's: core/events.h).
 */
static cJSON *element_event(const redisReply *e)
{
    const char *end = NULL;
    if (e->type != REDIS_REPLY_STRING || e->len > (size_t)config.max_output_bytes)
        return NULL;
    cJSON *o = cJSON_ParseWithLengthOpts(e->str, e->len, &end, 0);
    if (o != NULL && (!cJSON_IsObject(o) || end != e->str + e->len)) {
        cJSON_Delete(o);
        o = NULL;
    }
    return o;
}

/*
 * Takes one LRANGE reply's events from `want` on. The writer may trim the
 * list's front meanwhile (indices shift down): an event past the one wanted
 * means the list moved by the difference; then *idx is moved back for a
 * reread (1): from where the id wanted now is, or from the list's front
 * when it is gone; what is gone is accepted as a gap, its ids counted as
 * missing (and so is a gap found again after a reread for the same id). An element looked at for the first time that is
 * no event, or whose id is not after the last one taken (out of order, a
 * duplicate), is left out and counted as invalid: a list written by another
 * hand gives an answer that says so, never wrong figures.
 */
static int take_chunk(struct out_build *b, const redisReply *r, long long *idx, uint64_t *want, int may_reread)
{
    for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements; i++) {
        int fresh = *idx + (long long)i > b->seen;
        if (fresh)
            b->seen = *idx + (long long)i;
        /* the id wanted sat at index at - (id - want): reread from there, or from the front when it is gone */
        cJSON *o = element_event(r->element[i]);
        uint64_t id = event_id_of(o), back = id - *want;
        if (b->first_seen == 0)
            b->first_seen = id;
        if (id > *want && b->r->first_id == 0 && b->first_seen == id)
            *want = id; /* read from the start: the ids before the list's first event were dropped, not missing */
        long long at = *idx + (long long)i;
        long long target = id > *want && back <= (uint64_t)at ? at - (long long)back : 0;
        if (id > *want && may_reread && b->reread_for != *want && target < at) {
            cJSON_Delete(o);
            b->reread_for = *want; /* once per id wanted: a list with a real gap is not reread again and again */
            *idx = target;
            return 1;
        }
        if (id >= *want) {
            b->r->missing += id - *want;
            out_add(b, r->element[i]->str, r->element[i]->len, o, id);
            *want = id + 1;
        } else if (fresh) {
            b->r->invalid++;
        }
        cJSON_Delete(o);
    }
    *idx += r->type == REDIS_REPLY_ARRAY ? (long long)r->elements : 0;
    return 0;
}

/*
 * The events of list `okey` after id `after`, off the loop: LRANGE by index
 * (the index of id X is X minus the first id held), READ_CHUNK at a time,
 * each event indexed (kind, data length, running totals) so the loop's
 * formatter reads only what it shows. At most --max-output-bytes of JSON is
 * held (the oldest are left out and counted). A list whose first element is
 * no event is read from its start (its first event's id then stands for the
 * first id held). 0, or -1 with m->err.
 */
static int read_output(redisContext *c, const char *okey, uint64_t after, mirror_msg_t *m)
{
    struct out_build b = {.r = xcalloc(1, sizeof(remote_events_t))};
    m->events = b.r;
    redisReply *r = redisCommand(c, "LINDEX %s 0", okey);
    if (r == NULL) {
        m->err = xstrdup(c->errstr);
        return -1;
    }
    cJSON *o = element_event(r);
    int more = r->type == REDIS_REPLY_STRING && after < UINT64_MAX;
    b.r->first_id = event_id_of(o);
    cJSON_Delete(o);
    freeReplyObject(r);
    uint64_t want = after + 1 > b.r->first_id ? after + 1 : b.r->first_id;
    uint64_t start = b.r->first_id != 0 ? want - b.r->first_id : 0;
    long long idx = start < (uint64_t)(LLONG_MAX / 2) ? (long long)start : LLONG_MAX / 2;
    int rereads = 0;
    b.seen = idx - 1;
    while (more) {
        r = redisCommand(c, "LRANGE %s %lld %lld", okey, idx, idx + READ_CHUNK - 1);
        if (r == NULL) {
            m->err = xstrdup(c->errstr);
            strbuf_free(&b.blob);
            b.r->n = 0; /* its json fields are offsets: nothing to free */
            return -1;
        }
        int reread = take_chunk(&b, r, &idx, &want, rereads < READ_REREADS_MAX);
        rereads += reread;
        more = reread || (r->type == REDIS_REPLY_ARRAY && r->elements == READ_CHUNK);
        freeReplyObject(r);
    }
    if (b.r->first_id == 0)
        b.r->first_id = b.first_seen;
    out_finish(&b);
    return 0;
}

/* ---------------------------------------------------------------- reads */

static void read_exec(redisContext *c, struct read_req *q, mirror_msg_t *m)
{
    char key[160], okey[168], ttl[16];
    keys_execution(key, sizeof(key), q->id, strlen(q->id));
    keys_execution_output(okey, sizeof(okey), q->id, strlen(q->id));
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
    if (q->with_output && read_output(c, okey, q->after, m) != 0) {
        m->found = 0;
        return;
    }
    /* reads refresh the TTLs too */
    r = redisCommand(c, "EXPIRE %s %s", key, ttl);
    if (r != NULL)
        freeReplyObject(r);
    r = redisCommand(c, "EXPIRE %s %s", okey, ttl);
    if (r != NULL)
        freeReplyObject(r);
    char skey[192];
    keys_session_executions(skey, sizeof(skey), q->session_id);
    r = redisCommand(c, "EXPIRE %s %s", skey, ttl);
    if (r != NULL)
        freeReplyObject(r);
}

/* Appends to `b` the summary of one execution's metadata `g` when it belongs to session `sid`. */
static void summary_append(strbuf_t *b, int *first, const redisReply *g, const char *sid)
{
    if (g->type != REDIS_REPLY_STRING || !owned_by(g->str, g->len, sid))
        return;
    cJSON *meta = cJSON_ParseWithLength(g->str, g->len), *o = cJSON_CreateObject();
    static const char *keys[] = {"id", "status", "command", "interactive", "started_at", "completed_at", "workspace_id", NULL};
    for (int k = 0; keys[k] != NULL; k++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(meta, keys[k]);
        cJSON_AddItemToObject(o, keys[k], v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    }
    char *s = cJSON_PrintUnformatted(o);
    if (s == NULL)
        util_oom();
    if (!*first)
        strbuf_puts(b, ",");
    strbuf_puts(b, s);
    *first = 0;
    free(s);
    cJSON_Delete(o);
    cJSON_Delete(meta);
}

/*
 * Sends, as one pipeline, the GET of executions [off, off + k) of the SMEMBERS
 * reply `r` and the EXPIREs of their keys (a read through the tools refreshes
 * the TTLs of what it read), then reads the replies. -1 when the connection
 * failed (a partial list would look complete: the caller fails the read).
 */
static int read_summaries(redisContext *c, const redisReply *r, size_t off, size_t k, const char *sid, strbuf_t *b,
                          int *first)
{
    for (size_t i = off; i < off + k; i++) {
        char key[192], okey[200];
        keys_execution(key, sizeof(key), r->element[i]->str, r->element[i]->len);
        keys_execution_output(okey, sizeof(okey), r->element[i]->str, r->element[i]->len);
        if (redisAppendCommand(c, "GET %s", key) != REDIS_OK ||
            redisAppendCommand(c, "EXPIRE %s %d", key, config.redis_ttl) != REDIS_OK ||
            redisAppendCommand(c, "EXPIRE %s %d", okey, config.redis_ttl) != REDIS_OK)
            return -1;
    }
    for (size_t i = 0; i < 3 * k; i++) {
        redisReply *x = NULL;
        if (redisGetReply(c, (void **)&x) != REDIS_OK)
            return -1;
        if (i % 3 == 0)
            summary_append(b, first, x, sid);
        freeReplyObject(x);
    }
    return 0;
}

/*
 * Lists a session's executions: SMEMBERS with the set's EXPIRE, then every
 * member's GET and EXPIREs pipelined READ_PIPELINE_MAX executions at a time:
 * two round trips for a session of up to READ_PIPELINE_MAX runs.
 */
static void read_session(redisContext *c, struct read_req *q, mirror_msg_t *m)
{
    char skey[192];
    keys_session_executions(skey, sizeof(skey), q->session_id);
    redisReply *r = NULL, *x = NULL;
    if (redisAppendCommand(c, "SMEMBERS %s", skey) != REDIS_OK ||
        redisAppendCommand(c, "EXPIRE %s %d", skey, config.redis_ttl) != REDIS_OK ||
        redisGetReply(c, (void **)&r) != REDIS_OK || redisGetReply(c, (void **)&x) != REDIS_OK) {
        if (r != NULL)
            freeReplyObject(r);
        m->err = xstrdup(c->err ? c->errstr : "cannot send the reads");
        return;
    }
    freeReplyObject(x);
    strbuf_t b = {0};
    strbuf_puts(&b, "[");
    int first = 1;
    size_t n = r->type == REDIS_REPLY_ARRAY ? r->elements : 0;
    for (size_t off = 0; off < n; off += READ_PIPELINE_MAX) {
        size_t k = n - off < READ_PIPELINE_MAX ? n - off : READ_PIPELINE_MAX;
        if (read_summaries(c, r, off, k, q->session_id, &b, &first) != 0) {
            m->err = xstrdup(c->err ? c->errstr : "cannot send the reads");
            break;
        }
    }
    freeReplyObject(r);
    if (m->err != NULL) {
        strbuf_free(&b);
        return;
    }
    strbuf_puts(&b, "]");
    m->meta = strbuf_steal(&b, &m->meta_len);
    m->found = 1;
}

/* GET mcp:session:{id}: the record another replica wrote when the session was opened. */
static void read_session_record(redisContext *c, struct read_req *q, mirror_msg_t *m)
{
    char key[192];
    keys_session_record(key, sizeof(key), q->session_id);
    redisReply *r = redisCommand(c, "GET %s", key);
    if (r == NULL) {
        m->err = xstrdup(c->errstr);
        return;
    }
    if (r->type == REDIS_REPLY_STRING) {
        m->meta = reply_dup(r, &m->meta_len);
        m->found = 1;
    } else if (r->type == REDIS_REPLY_ERROR) {
        m->err = xstrdup(r->str);
    }
    freeReplyObject(r);
}

/* RPUSH + EXPIRE of a control message, only while the heartbeat KEYS[2] (when given) exists. */
static const char push_script[] = "if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 0 then return 0 end "
                                  "redis.call('RPUSH', KEYS[1], ARGV[1]) "
                                  "redis.call('EXPIRE', KEYS[1], ARGV[2]) "
                                  "return 1";

/*
 * A control message (control.c): pushed (found = 1), or not, its replica
 * being gone (found = 0), or failed (err): with found = -1 when the
 * connection failed after the whole command was written (a timeout waiting
 * for the answer: it may still land). While hiredis' write buffer still holds
 * some of it, Redis holds an incomplete command it will never run: found = 0.
 */
static void push_control(redisContext *c, struct read_req *q, mirror_msg_t *m)
{
    char ttl[16];
    snprintf(ttl, sizeof(ttl), "%d", q->push_ttl);
    int with_alive = q->alive_key[0] != '\0';
    const char *argv[7] = {"EVAL", push_script, with_alive ? "2" : "1", q->push_key};
    size_t alen[7] = {4, sizeof(push_script) - 1, 1, strlen(q->push_key)};
    int n = 4;
    if (with_alive) {
        argv[n] = q->alive_key;
        alen[n++] = strlen(q->alive_key);
    }
    argv[n] = q->push;
    alen[n++] = q->push_len;
    argv[n] = ttl;
    alen[n++] = strlen(ttl);
    redisReply *r = redisCommandArgv(c, n, argv, alen);
    if (r == NULL) {
        m->err = xstrdup(c->errstr);
        m->found = c->obuf != NULL && sdslen(c->obuf) > 0 ? 0 : -1;
        return;
    }
    if (r->type == REDIS_REPLY_INTEGER)
        m->found = r->integer == 1;
    else
        m->err = xstrdup(r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply to a control push");
    freeReplyObject(r);
}

void *mirror_reader_main(void *arg)
{
    (void)arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 5);
    redisContext *c = NULL;
    char err[256];
    for (;;) {
        pthread_mutex_lock(&mirror_st.rq.lock);
        while (mirror_st.rq.head == NULL && mirror_st.rq.garbage == NULL && !mirror_st.rq.stopping)
            pthread_cond_wait(&mirror_st.rq.cond, &mirror_st.rq.lock);
        struct events_garbage *g = mirror_st.rq.garbage;
        mirror_st.rq.garbage = NULL;
        struct read_req *q = mirror_st.rq.head;
        if (q == NULL) {
            int stop = mirror_st.rq.stopping;
            pthread_mutex_unlock(&mirror_st.rq.lock);
            garbage_free(g);
            if (stop)
                break;
            continue;
        }
        mirror_st.rq.head = q->next;
        if (mirror_st.rq.head == NULL)
            mirror_st.rq.tail = NULL;
        mirror_st.rq.queued--;
        int stopping = mirror_st.rq.stopping;
        pthread_mutex_unlock(&mirror_st.rq.lock);
        garbage_free(g);
        mirror_msg_t *m = xcalloc(1, sizeof(*m));
        m->kind = MSG_READ;
        m->req = q;
        /* a read nobody can wait for any more is answered without asking Redis */
        if (stopping)
            m->err = xstrdup("the server is shutting down");
        else if (util_now_ms() - q->enqueued_ms > (uint64_t)config.wait_deadline * 1000)
            m->err = xstrdup("Redis did not answer in time");
        for (int attempt = 0; attempt < 2 && m->err == NULL; attempt++) {
            if (c == NULL) {
                if ((c = mirror_redis_open(MIRROR_CONN_READER, err, sizeof(err))) == NULL) {
                    m->err = xstrdup(err);
                    break;
                }
                struct timeval tv = {2, 0}; /* reads answer a waiting client: fail fast */
                redisSetTimeout(c, tv);
            }
            if (q->push != NULL)
                push_control(c, q, m);
            else if (q->session_record)
                read_session_record(c, q, m);
            else if (q->session_list)
                read_session(c, q, m);
            else
                read_exec(c, q, m);
            if (m->err == NULL || !c->err)
                break;
            mirror_redis_close(MIRROR_CONN_READER, c); /* the connection failed: one fresh attempt */
            c = NULL;
            if (q->push != NULL)
                break; /* unless it was a push: it may have landed, and stdin must not be written twice */
            if (attempt == 0) {
                free(m->err);
                free(m->meta);
                remote_events_free(m->events);
                m->err = m->meta = NULL;
                m->events = NULL;
                m->found = 0;
            }
        }
        mirror_post(m);
    }
    mirror_redis_close(MIRROR_CONN_READER, c);
    return NULL;
}

