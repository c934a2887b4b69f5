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
#include <hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define READ_PIPELINE_MAX 512 /* executions whose reads go in one pipeline (read_session) */

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

/* A control message (control.c): pushed (found = 1), or not, its replica being gone (found = 0). */
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
        while (mirror_st.rq.head == NULL && !mirror_st.rq.stopping)
            pthread_cond_wait(&mirror_st.rq.cond, &mirror_st.rq.lock);
        struct read_req *q = mirror_st.rq.head;
        if (q == NULL) {
            pthread_mutex_unlock(&mirror_st.rq.lock);
            break;
        }
        mirror_st.rq.head = q->next;
        if (mirror_st.rq.head == NULL)
            mirror_st.rq.tail = NULL;
        mirror_st.rq.queued--;
        int stopping = mirror_st.rq.stopping;
        pthread_mutex_unlock(&mirror_st.rq.lock);
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
                free(m->events);
                m->err = m->meta = m->events = NULL;
                m->found = 0;
            }
        }
        mirror_post(m);
    }
    mirror_redis_close(MIRROR_CONN_READER, c);
    return NULL;
}

