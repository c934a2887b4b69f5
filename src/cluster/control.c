/*
 * control: the control channel between replicas (see control.h).
 *
 * A command, RPUSHed to replica:{owner}:control (EXPIRE CONTROL_LIST_TTL_S):
 *   {"nonce": 32 hex, "op": "send_stdin" | "cancel_execution",
 *    "tenant": SHA-256 hex of the caller's tenant (Redis never holds a raw
 *              session id), "args": the tool's arguments as the client gave them,
 *    "reply_to": "{prefix}replica:{requester}:replies", "from": requester id,
 *    "deadline_ms": wall-clock ms after which nobody waits for it}
 * A reply, RPUSHed to reply_to (EXPIRE CONTROL_REPLY_TTL_S):
 *   {"nonce": the command's, "from": owner id, "is_error": bool, "result": the tool's result object}
 *
 * Threads: the control thread owns its connection and pops; every other piece
 * of state here (the waiting calls) is the loop thread's. Counters are atomics
 * (the thread counts what it drops unread). Everything popped is input from
 * Redis: each field is checked and a bad message is dropped and counted.
 */
#include "cluster/control.h"
#include "cluster/keys.h"
#include "cluster/mirror_internal.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/deadline.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mcp/tools.h"

#include <bsd/string.h>
#include <cjson/cJSON.h>
#include <ctype.h>
#include <hiredis.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define CONTROL_NONCE_HEX 32       /* 128 random bits */
#define CONTROL_LIST_TTL_S 30      /* an idle control list goes away */
#define CONTROL_REPLY_TTL_S 10     /* a reply nobody pops goes away */
#define CONTROL_BLPOP_S "1"        /* the thread notices a stop this often */
#define REPLICA_ID_MAX 128         /* config.c's limit */
#define CONTROL_RUN_MARGIN_MS 1000 /* a command is run only until this long before its caller gives up */

/* Figures any thread bumps and /metrics reads. */
static struct {
    _Atomic unsigned long long sent, received, answered, timed_out, unreachable, dropped, late, delayed, push_unsure;
} stats;

/*
 * The hand-over to the loop: what the control thread posted and the loop has
 * not taken yet, bounded (CONTROL_INFLIGHT_MAX messages, CONTROL_INFLIGHT_BYTES
 * bytes), so whoever writes the control list cannot pile messages up in the
 * loop's queue faster than the loop takes them: the thread pops the next one
 * only when there is room, and the rest wait in Redis. Guarded by `lock`; the
 * thread waits on `cond`, signalled by the loop (a message taken) and by a stop.
 */
static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    size_t n, bytes;           /* posted, not taken yet */
    size_t peak_n, peak_bytes; /* the most ever (metrics) */
    int stop;                  /* control_signal_stop: nothing more is taken */
} gate = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* ---------------------------------------------------------------- the control thread */

static clock_stop_t control_stop_flag = CLOCK_STOP_INIT;

/* Waits up to `ms` (0: not at all) unless stopping; returns 1 when stopping. */
static int control_sleep(uint64_t ms)
{
    return clock_stop_sleep(&control_stop_flag, ms);
}

void control_signal_stop(void)
{
    clock_stop_signal(&control_stop_flag);
    pthread_mutex_lock(&gate.lock);
    gate.stop = 1;
    pthread_mutex_unlock(&gate.lock);
    pthread_cond_broadcast(&gate.cond);
}

/* Under gate.lock: no room for one more message of the largest size. */
static int gate_full(void)
{
    return gate.n >= CONTROL_INFLIGHT_MAX || gate.bytes + CONTROL_MESSAGE_MAX > CONTROL_INFLIGHT_BYTES;
}

/*
 * Control thread, before each pop: waits until the loop has room for one more
 * message (each wait counted as a delay); 1 when stopping.
 */
static int gate_wait_room(void)
{
    pthread_mutex_lock(&gate.lock);
    if (!gate.stop && gate_full())
        atomic_fetch_add(&stats.delayed, 1);
    while (!gate.stop && gate_full())
        pthread_cond_wait(&gate.cond, &gate.lock);
    int stop = gate.stop;
    pthread_mutex_unlock(&gate.lock);
    return stop;
}

/* Control thread: a message of `len` bytes is being handed to the loop. */
static void gate_add(size_t len)
{
    pthread_mutex_lock(&gate.lock);
    gate.n++;
    gate.bytes += len;
    if (gate.n > gate.peak_n)
        gate.peak_n = gate.n;
    if (gate.bytes > gate.peak_bytes)
        gate.peak_bytes = gate.bytes;
    pthread_mutex_unlock(&gate.lock);
}

/* Loop thread: the loop took a message of `len` bytes: room for the thread. 1 when stopping. */
static int gate_take(size_t len)
{
    pthread_mutex_lock(&gate.lock);
    gate.n--;
    gate.bytes -= len;
    int stop = gate.stop;
    pthread_mutex_unlock(&gate.lock);
    pthread_cond_signal(&gate.cond);
    return stop;
}

/* Hands one popped message to the loop; an oversized one is dropped unread. */
static void post_popped(const redisReply *r, const char *replies_key)
{
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 2 || r->element[0]->type != REDIS_REPLY_STRING ||
        r->element[1]->type != REDIS_REPLY_STRING)
        return; /* nil: nothing within the BLPOP timeout */
    if (r->element[1]->len > CONTROL_MESSAGE_MAX) {
        atomic_fetch_add(&stats.dropped, 1);
        log_warn("control channel: dropped a %zu-byte message (over %u)", r->element[1]->len, CONTROL_MESSAGE_MAX);
        return;
    }
    mirror_msg_t *m = xcalloc(1, sizeof(*m));
    m->kind = MSG_CONTROL;
    m->found = strcmp(r->element[0]->str, replies_key) == 0;
    m->meta = xstrndup(r->element[1]->str, r->element[1]->len);
    m->meta_len = r->element[1]->len;
    gate_add(m->meta_len);
    mirror_post(m);
}

/*
 * BLPOPs this replica's replies and control lists (replies first: a flooded
 * control list does not starve the answers this replica waits for), one
 * second at a time, when the loop has room (gate_wait_room), and posts what it
 * pops to the loop; reconnects (1 s apart) when Redis fails.
 */
void *control_main(void *arg)
{
    (void)arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 5);
    char ckey[512], rkey[512], err[256];
    keys_replica_control(ckey, sizeof(ckey), config.replica);
    keys_replica_replies(rkey, sizeof(rkey), config.replica);
    redisContext *c = NULL;
    while (!control_sleep(0) && !gate_wait_room()) {
        if (c == NULL && (c = mirror_redis_open(MIRROR_CONN_CONTROL, err, sizeof(err))) == NULL) {
            control_sleep(1000); /* the writer logs Redis' absence */
            continue;
        }
        const char *argv[4] = {"BLPOP", rkey, ckey, CONTROL_BLPOP_S};
        redisReply *r = redisCommandArgv(c, 4, argv, NULL);
        if (r == NULL) {
            mirror_redis_close(MIRROR_CONN_CONTROL, c);
            c = NULL;
            control_sleep(1000);
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) { /* e.g. WRONGTYPE: a list key overwritten; no busy loop */
            log_warn("control channel: BLPOP refused: %s", r->str);
            control_sleep(1000);
        }
        post_popped(r, rkey);
        freeReplyObject(r);
    }
    mirror_redis_close(MIRROR_CONN_CONTROL, c);
    return NULL;
}

/* ---------------------------------------------------------------- loop side: checks */

/* Exactly `n` lowercase hex digits. */
static int is_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i]))
            return 0;
    return s[n] == '\0';
}

/* A replica id as config.c accepts it: 1 to 128 of A-Z a-z 0-9 . _ : - */
static int is_replica_id(const char *s, size_t n)
{
    if (n == 0 || n > REPLICA_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && strchr("._:-", s[i]) == NULL)
            return 0;
    return 1;
}

/* A reply list of some replica under our prefix: "{prefix}replica:{id}:replies". */
static int is_reply_key(const char *s)
{
    static const char head[] = "replica:", tail[] = ":replies";
    size_t plen = strlen(config.redis_prefix), n = strlen(s);
    if (n < plen + sizeof(head) - 1 + sizeof(tail) - 1 || strncmp(s, config.redis_prefix, plen) != 0 ||
        strncmp(s + plen, head, sizeof(head) - 1) != 0 || strcmp(s + n - (sizeof(tail) - 1), tail) != 0)
        return 0;
    return is_replica_id(s + plen + sizeof(head) - 1, n - plen - (sizeof(head) - 1) - (sizeof(tail) - 1));
}

/* The string member `name` of `o`, or NULL. */
static const char *str_of(const cJSON *o, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Counts a message dropped as malformed; says so in the log at most once a second. */
static void drop(const char *what, const char *why)
{
    static uint64_t last_log_ms;
    atomic_fetch_add(&stats.dropped, 1);
    if (util_now_ms() - last_log_ms >= 1000) {
        log_warn("control channel: dropped a %s: %s", what, why);
        last_log_ms = util_now_ms();
    }
}

/* ---------------------------------------------------------------- loop side: the requester */

/* A forwarded call waiting for the owner's answer. */
struct pending {
    struct pending *next;
    char nonce[CONTROL_NONCE_HEX + 1];
    char replica[REPLICA_ID_MAX + 1]; /* the owner */
    char tenant[MIRROR_SESSION_KEY_LEN + 1]; /* the caller's tenant, hashed */
    remote_control_cb cb;
    void *arg;
    deadline_t timer; /* CONTROL_TIMEOUT_MS */
    char push_err[128]; /* the command's write failed after it may have reached Redis: why */
};

static struct pending *pending_head;
static size_t n_pending;

static struct pending *pending_find(const char *nonce)
{
    for (struct pending *p = pending_head; p != NULL; p = p->next)
        if (!strcmp(p->nonce, nonce))
            return p;
    return NULL;
}

/* Answers a waiting call (the owner's result, or err) and forgets it. */
static void pending_finish(struct pending *p, const char *result, size_t len, int is_error, const char *err)
{
    struct pending **pp = &pending_head;
    while (*pp != p)
        pp = &(*pp)->next;
    *pp = p->next;
    n_pending--;
    deadline_cancel(&p->timer);
    p->cb(p->arg, result, len, is_error, err);
    free(p);
}

/* No answer in time: the owner is stopped, wedged, or lost the command. */
static void on_timeout(deadline_t *d)
{
    struct pending *p = (struct pending *)((char *)d - offsetof(struct pending, timer));
    char msg[400];
    atomic_fetch_add(&stats.timed_out, 1);
    snprintf(msg, sizeof(msg), "replica %s did not answer within %d s%s%s%s", p->replica, CONTROL_TIMEOUT_MS / 1000,
             p->push_err[0] ? " (writing the command to Redis failed: " : "", p->push_err, p->push_err[0] ? ")" : "");
    log_warn("control channel: %s (command %.8s)", msg, p->nonce);
    pending_finish(p, NULL, 0, 0, msg);
}

/*
 * The reader pushed a command (found = 1), or found the owner's heartbeat
 * gone (0), or failed (err). A write that failed after the command went out
 * (found = -1: a timeout) may still land and be run by the owner until its
 * deadline: the call then waits for the answer or its timeout, not to tell
 * the client "failed" about a stdin line or cancel that happens anyway.
 */
static void on_command_pushed(void *arg, int found, const char *meta, size_t meta_len, const remote_events_t *events,
                              const char *err)
{
    (void)meta, (void)meta_len, (void)events;
    struct pending *p = pending_find(arg);
    free(arg);
    if (err == NULL && found)
        atomic_fetch_add(&stats.sent, 1);
    if (p == NULL || (err == NULL && found))
        return; /* sent (the answer may even have come first), or the call is over (answered, timed out) */
    if (err != NULL && found < 0) {
        atomic_fetch_add(&stats.push_unsure, 1);
        strlcpy(p->push_err, err, sizeof(p->push_err));
        return;
    }
    char msg[400];
    atomic_fetch_add(&stats.unreachable, 1);
    if (err != NULL)
        snprintf(msg, sizeof(msg), "the command could not be written to Redis (%s)", err);
    else
        snprintf(msg, sizeof(msg), "replica %s is not alive (its heartbeat in Redis expired)", p->replica);
    pending_finish(p, NULL, 0, 0, msg);
}

/* The forwarded calls of tenant `tkey` (hashed) waiting now. */
static size_t pending_of_tenant(const char *tkey)
{
    size_t n = 0;
    for (const struct pending *p = pending_head; p != NULL; p = p->next)
        n += strcmp(p->tenant, tkey) == 0;
    return n;
}

/* The command's JSON; NULL when it is larger than CONTROL_MESSAGE_MAX. */
static char *command_json(const struct pending *p, const char *tool, cJSON *args, size_t *len)
{
    char reply_to[512];
    keys_replica_replies(reply_to, sizeof(reply_to), config.replica);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "nonce", p->nonce);
    cJSON_AddStringToObject(o, "op", tool);
    cJSON_AddStringToObject(o, "tenant", p->tenant);
    cJSON_AddItemToObject(o, "args", args);
    cJSON_AddStringToObject(o, "reply_to", reply_to);
    cJSON_AddStringToObject(o, "from", config.replica);
    /* the owner runs it only until a margin before we give up: its answer has time to come back */
    cJSON_AddNumberToObject(o, "deadline_ms", (double)(util_wall_ms() + CONTROL_TIMEOUT_MS - CONTROL_RUN_MARGIN_MS));
    char *s = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    *len = s != NULL ? strlen(s) : 0;
    if (s != NULL && *len > CONTROL_MESSAGE_MAX) {
        free(s);
        return NULL;
    }
    return s;
}

int control_forward(const char *replica, const char *tool, const char *tenant, const char *args_json, remote_control_cb cb,
                    void *arg)
{
    if (!mirror_enabled() || control_sleep(0) || !is_replica_id(replica, strlen(replica)))
        return -1;
    if (n_pending >= CONTROL_PENDING_MAX)
        return -2;
    char tkey[MIRROR_SESSION_KEY_LEN + 1];
    keys_session_hash(tenant, tkey);
    if (pending_of_tenant(tkey) >= CONTROL_PENDING_PER_TENANT)
        return -4;
    cJSON *args = args_json != NULL && strlen(args_json) <= CONTROL_MESSAGE_MAX ? cJSON_Parse(args_json) : NULL;
    if (!cJSON_IsObject(args)) {
        cJSON_Delete(args);
        return -3;
    }
    struct pending *p = xcalloc(1, sizeof(*p));
    util_random_hex(p->nonce, CONTROL_NONCE_HEX / 2);
    strlcpy(p->replica, replica, sizeof(p->replica));
    memcpy(p->tenant, tkey, sizeof(p->tenant));
    size_t len;
    char *cmd = command_json(p, tool, args, &len), key[512], alive[512];
    if (cmd == NULL) {
        free(p);
        return -3;
    }
    keys_replica_control(key, sizeof(key), replica);
    keys_replica(alive, sizeof(alive), replica);
    char *nonce = xstrdup(p->nonce); /* the push's answer finds the call by nonce: it may have timed out by then */
    int rc = mirror_push(key, alive, cmd, len, CONTROL_LIST_TTL_S, on_command_pushed, nonce);
    if (rc != 0) {
        free(nonce);
        free(p);
        return rc;
    }
    p->cb = cb;
    p->arg = arg;
    p->next = pending_head;
    pending_head = p;
    n_pending++;
    deadline_arm(&p->timer, CONTROL_TIMEOUT_MS, on_timeout);
    return 0;
}

/* A reply from an owner: the answer of a waiting call, or (too late) dropped. */
static void take_reply(const char *msg, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(msg, len);
    const char *nonce = str_of(o, "nonce");
    const cJSON *is_error = cJSON_GetObjectItemCaseSensitive(o, "is_error");
    const cJSON *result = cJSON_GetObjectItemCaseSensitive(o, "result");
    struct pending *p = NULL;
    if (nonce == NULL || !is_hex(nonce, CONTROL_NONCE_HEX) || !cJSON_IsBool(is_error) || !cJSON_IsObject(result)) {
        drop("reply", "not a reply object (nonce, is_error, result)");
    } else if ((p = pending_find(nonce)) == NULL) {
        atomic_fetch_add(&stats.late, 1); /* its call timed out already */
    } else {
        char *text = cJSON_PrintUnformatted(result);
        if (text == NULL)
            util_oom();
        pending_finish(p, text, strlen(text), cJSON_IsTrue(is_error), NULL);
        free(text);
    }
    cJSON_Delete(o);
}

/*
 * The calls still waiting when the loop ended (--shutdown-grace shorter than
 * CONTROL_TIMEOUT_MS) are answered, honestly: their command may be in the
 * owner's list and be run until its deadline.
 */
void control_stop(void)
{
    char msg[300];
    while (pending_head != NULL) {
        snprintf(msg, sizeof(msg), "the server is shutting down (the command was sent: replica %s may still run it)",
                 pending_head->replica);
        pending_finish(pending_head, NULL, 0, 0, msg);
    }
}

/* ---------------------------------------------------------------- loop side: the owner */

/* tools_control_forwarded's owner check: the execution's tenant hashes to the command's. */
static int tenant_matches(const char *tenant, void *arg)
{
    char key[MIRROR_SESSION_KEY_LEN + 1];
    keys_session_hash(tenant, key);
    return strcmp(key, arg) == 0;
}

/* The reader pushed a reply (or could not). */
static void on_reply_pushed(void *arg, int found, const char *meta, size_t meta_len, const remote_events_t *events,
                            const char *err)
{
    (void)arg, (void)found, (void)meta, (void)meta_len, (void)events;
    if (err != NULL)
        log_warn("control channel: a reply could not be written to Redis: %s", err);
    else
        atomic_fetch_add(&stats.answered, 1);
}

/*
 * A command from another replica: every field checked (input from Redis), a
 * command whose caller no longer waits is not run, then the tool runs through
 * the same code as a local call, on an execution held here whose tenant is
 * the command's, and the answer is pushed to the requester's reply list.
 */
static void take_command(const char *msg, size_t len)
{
    cJSON *o = cJSON_ParseWithLength(msg, len);
    const char *nonce = str_of(o, "nonce"), *op = str_of(o, "op"), *tenant = str_of(o, "tenant");
    const char *reply_to = str_of(o, "reply_to"), *from = str_of(o, "from");
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(o, "args");
    const cJSON *deadline = cJSON_GetObjectItemCaseSensitive(o, "deadline_ms");
    if (nonce == NULL || !is_hex(nonce, CONTROL_NONCE_HEX) || op == NULL ||
        (strcmp(op, "send_stdin") != 0 && strcmp(op, "cancel_execution") != 0) || tenant == NULL ||
        !is_hex(tenant, MIRROR_SESSION_KEY_LEN) || !cJSON_IsObject(args) || reply_to == NULL || !is_reply_key(reply_to) ||
        from == NULL || !is_replica_id(from, strlen(from)) || !cJSON_IsNumber(deadline)) {
        drop("command", "malformed (nonce, op, tenant, args, reply_to, from, deadline_ms)");
    } else if (deadline->valuedouble < (double)util_wall_ms()) {
        drop("command", "its deadline passed (nobody waits for it)");
    } else {
        atomic_fetch_add(&stats.received, 1);
        int is_error;
        char *result = tools_control_forwarded(op, args, tenant_matches, (void *)tenant, &is_error);
        strbuf_t b = {0};
        strbuf_printf(&b, "{\"nonce\":\"%s\",\"from\":\"%s\",\"is_error\":%s,\"result\":", nonce, config.replica,
                      is_error ? "true" : "false");
        strbuf_puts(&b, result);
        strbuf_puts(&b, "}");
        free(result);
        size_t blen;
        char *reply = strbuf_steal(&b, &blen);
        if (mirror_push(reply_to, "", reply, blen, CONTROL_REPLY_TTL_S, on_reply_pushed, NULL) != 0)
            log_warn("control channel: cannot answer command %.8s from %s (stopping, or too many Redis requests waiting)", nonce, from);
    }
    cJSON_Delete(o);
}

/* A popped message, by the list it came from. */
static void take_popped(int is_reply, const char *msg, size_t len)
{
    if (is_reply)
        take_reply(msg, len);
    else
        take_command(msg, len);
}

void control_on_popped(int is_reply, const char *msg, size_t len)
{
    if (gate_take(len))
        drop(is_reply ? "reply" : "command", "the server is stopping"); /* control_stop answered the calls */
    else
        take_popped(is_reply, msg, len);
}

void control_metrics(strbuf_t *out)
{
    metrics_single(out, "control_commands_sent_total", "counter",
                   "send_stdin / cancel_execution calls forwarded to the replica that runs the execution.",
                   (double)atomic_load(&stats.sent));
    metrics_single(out, "control_commands_received_total", "counter", "Well-formed control commands other replicas sent here.",
                   (double)atomic_load(&stats.received));
    metrics_single(out, "control_commands_answered_total", "counter", "Answers to control commands written to Redis.",
                   (double)atomic_load(&stats.answered));
    metrics_single(out, "control_calls_timed_out_total", "counter", "Forwarded calls whose owner replica did not answer in time.",
                   (double)atomic_load(&stats.timed_out));
    metrics_single(out, "control_calls_unreachable_total", "counter",
                   "Forwarded calls not sent: the owner replica was not alive, or Redis failed.",
                   (double)atomic_load(&stats.unreachable));
    metrics_single(out, "control_messages_dropped_total", "counter",
                   "Control messages dropped: malformed, oversized, or past their deadline.", (double)atomic_load(&stats.dropped));
    metrics_single(out, "control_replies_late_total", "counter", "Replies that arrived after their call had timed out.",
                   (double)atomic_load(&stats.late));
    metrics_single(out, "control_calls_waiting", "gauge", "Forwarded calls waiting for the owner's answer.", (double)n_pending);
    metrics_single(out, "control_calls_push_unsure_total", "counter",
                   "Forwarded calls whose command write failed after it may have reached Redis: they waited for the answer.",
                   (double)atomic_load(&stats.push_unsure));
    pthread_mutex_lock(&gate.lock);
    double n = (double)gate.n, peak_n = (double)gate.peak_n, peak_bytes = (double)gate.peak_bytes;
    pthread_mutex_unlock(&gate.lock);
    metrics_single(out, "control_popped_queued", "gauge", "Popped control messages handed to the loop and not taken yet.", n);
    metrics_single(out, "control_popped_queued_peak", "gauge", "The most popped control messages ever waiting for the loop.", peak_n);
    metrics_single(out, "control_popped_queued_peak_bytes", "gauge", "The most bytes of popped control messages ever waiting for the loop.",
                   peak_bytes);
    metrics_single(out, "control_pops_delayed_total", "counter",
                   "Times the control thread waited for the loop to take what it had popped before popping more.",
                   (double)atomic_load(&stats.delayed));
}
