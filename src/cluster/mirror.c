/*
 * mirror: the Redis mirror, loop side.
 *
 * Threads and ownership:
 *  - the loop thread enqueues operations (mirror_exec_*, mirror_session_*),
 *    staged per loop turn and spliced into the writer's queue once a turn
 *    (cluster_flush), and owns the set of "dirty" executions that Redis may
 *    hold wrongly;
 *  - the writer thread owns its hiredis connection; it takes up to
 *    BATCH_MAX_OPS operations (BATCH_MAX_BYTES) at a time and writes them as
 *    one pipeline (consecutive events of one execution become variadic RPUSHes);
 *  - the reader thread owns another connection and answers cross-replica
 *    reads from its own queue, posting results back to the loop through h2o's
 *    queue the composition root gives cluster_start;
 *  - the control thread (control.c) owns a fourth: it pops control commands
 *    and their replies (send_stdin / cancel_execution between replicas);
 *  - the replica watcher (replica.c) owns a third connection: heartbeat and
 *    lost-replica sweeps.
 * Shared: the writer queue (`lock`), the reader queue (`rlock`), atomic
 * counters, and the connections' sockets (writer.c's conns_lock, so
 * cluster_stop can cut them). When the queue is full an operation is dropped
 * and its execution marked dirty; when a batch is lost with the connection or
 * refused, the writer posts the batch's execution ids back to the loop, which
 * marks them dirty. Dirty executions are resynced from memory (one MULTI: DEL +
 * RPUSH of every held event + SET of the metadata) once Redis answers, so
 * Redis ends up holding exactly what the replica holds; a large log is copied
 * into that operation a bounded step per loop turn (resync.c), and queued in
 * the turn the copy reaches its end. Every timed wait of
 * these threads is on CLOCK_MONOTONIC (clock.h).
 *
 * At shutdown cluster_stop gives the writer until one deadline to drain, then
 * stops the threads by the same deadline, cutting the connections if Redis
 * has not answered by then; what was not written is counted and logged.
 *
 * This file holds the queues, the dirty set, resync and the lifecycle;
 * redis_url.c the URL parser, writer.c the writer thread and the connections,
 * reader.c the reader thread.
 */
#include "cluster/mirror.h"
#include "cluster/control.h"
#include "cluster/keys.h"
#include "cluster/mirror_internal.h"
#include "cluster/replica.h"
#include "cluster/resync.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/deadline.h"
#include "exec/exec.h"
#include "mcp/tools.h"
#include "mcp/transport.h"
#include "core/log.h"
#include "core/message.h"
#include "core/metrics.h"
#include "core/util.h"

#include <bsd/string.h>
#include <errno.h>
#include <hiredis.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OP_OVERHEAD 96

mirror_state_t mirror_st = {.wq = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER},
                             .rq = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER}};

/* Loop-local state (loop thread only): the threads' receiver, timers, this turn's stage, the dirty set. */
static struct {
    h2o_multithread_receiver_t receiver;
    deadline_t resync_timer, tick_timer, build_timer;
    mirror_stage_t stage;
    dirty_set_t dirty;
    resync_build_t *builds; /* resyncs under construction, oldest first */
    size_t n_builds;
} loop_st = {.dirty = {RB_INITIALIZER(&loop_st.dirty.tree), 0}};

void mirror_post(mirror_msg_t *m)
{
    h2o_multithread_send_message(&loop_st.receiver, &m->super);
}

/* ---------------------------------------------------------------- loop side: dirty set */

/* Marks an execution Redis may be behind on and makes sure a resync pass comes. */
static void mark_dirty(const char *id)
{
    dirty_mark(&loop_st.dirty, id);
}

static void resync_dirty(deadline_t *d);

/* Counts a dropped operation; says so in the log at most once a second. */
static void note_drop(size_t events)
{
    static uint64_t last_log_ms;
    static unsigned long long since_log;
    atomic_fetch_add(&mirror_st.stats.drops, 1);
    since_log += events > 0 ? events : 1;
    uint64_t now = util_now_ms();
    if (now - last_log_ms >= 1000) {
        log_warn("redis mirror: queue full (--mirror-queue-bytes %lld): %llu operations/events dropped; "
                 "the affected executions will be resynced from memory",
                 (long long)config.mirror_queue_bytes, since_log);
        last_log_ms = now;
        since_log = 0;
    }
}

static void mark_dirty_exec(exec_t *e, void *arg)
{
    (void)arg;
    mark_dirty(e->id);
}

/*
 * Events are staged on the loop and handed to the writer's queue in one lock
 * per loop turn (cluster_flush), not one per event. Anything else is queued
 * directly, after the stage, so the per-execution order is kept.
 */
#define STAGE_FLUSH_BYTES (256 * 1024)
#define EVENTS_PER_OP 1024

void cluster_flush(void)
{
    op_t *dropped = mirror_queue_push_stage(&mirror_st.wq, &loop_st.stage, (size_t)config.mirror_queue_bytes);
    while (dropped != NULL) { /* dropped: their executions are resynced later */
        op_t *next = dropped->next;
        note_drop(dropped->n_events);
        mark_dirty(dropped->id);
        mirror_op_free(dropped);
        dropped = next;
    }
    if (loop_st.dirty.count > 0 && !loop_st.resync_timer.armed && !mirror_st.wq.stopping)
        deadline_arm(&loop_st.resync_timer, 1000, resync_dirty);
}

static void stage_event(op_t *o)
{
    mirror_stage_add(&loop_st.stage, o);
    if (loop_st.stage.bytes >= STAGE_FLUSH_BYTES)
        cluster_flush();
}

/* Enqueues an op unless the queue is full; returns 0, or -1 (caller marks dirty). */
static int enqueue(op_t *o)
{
    cluster_flush(); /* staged events of this execution go first */
    return mirror_queue_push(&mirror_st.wq, o, (size_t)config.mirror_queue_bytes);
}

static void enqueue_or_dirty(op_t *o)
{
    char id[40];
    strlcpy(id, o->id, sizeof(id));
    if (enqueue(o) != 0) {
        note_drop(o->n_events);
        mirror_op_free(o);
        mark_dirty(id);
        if (!loop_st.resync_timer.armed && !mirror_st.wq.stopping)
            deadline_arm(&loop_st.resync_timer, 1000, resync_dirty);
    }
}

/* The execution's metadata as stored at execution:{id}: its status plus where it ran. */
static char *meta_json(const exec_t *e, size_t *len)
{
    cJSON *o = exec_status_json(e);
    char skey[MIRROR_SESSION_KEY_LEN + 1];
    keys_session_hash(e->tenant, skey); /* the owner key: whoever may read it (principal, or session) */
    cJSON_AddStringToObject(o, "session_id", skey);
    if (e->tenant_is_principal)
        cJSON_AddStringToObject(o, "principal", e->tenant);
    cJSON_AddStringToObject(o, "workspace_id", e->session_id); /* the owner's id: the workspace handle */
    cJSON_AddNumberToObject(o, "timeout_seconds", e->timeout_s);
    cJSON_AddStringToObject(o, "replica", config.replica);
    char *s = util_json_print(o);
    *len = strlen(s);
    return s;
}

static op_t *op_new(enum op_kind kind, const exec_t *e)
{
    op_t *o = xcalloc(1, sizeof(*o));
    o->kind = kind;
    strlcpy(o->id, e->id, sizeof(o->id));
    keys_session_hash(e->tenant, o->session_id);
    strlcpy(o->workspace_id, e->session_id, sizeof(o->workspace_id)); /* the owner's id: the workspace handle */
    o->active = exec_is_active(e);
    o->bytes = OP_OVERHEAD;
    return o;
}

/* A resync operation of `e` with no events yet (OP_META when its output was released). */
static op_t *resync_op_new(const exec_t *e)
{
    /* a run whose output was released (--max-retained-bytes) resyncs its status only: Redis keeps its events */
    return op_new(e->log.released ? OP_META : OP_RESYNC, e);
}

/*
 * Queues a resync operation holding `e`'s events: its metadata and running
 * state are taken now, so they are current, and LTRIM keeps the log's count.
 * Called in the turn the copy reached the log's end, after cluster_flush
 * (enqueue), so events mirrored before are covered by it and those after
 * follow it. 0, or -1 (queue full: it stays dirty).
 */
static int resync_op_enqueue(op_t *o, const exec_t *e)
{
    o->active = exec_is_active(e);
    o->meta = meta_json(e, &o->meta_len);
    o->bytes += o->meta_len;
    o->keep = e->log.count;
    dirty_take(&loop_st.dirty, e->id); /* a loss noted before now is covered by this full copy */
    if (enqueue(o) != 0) {
        mirror_op_free(o);
        mark_dirty(e->id);
        return -1;
    }
    atomic_fetch_add(&mirror_st.stats.resyncs, 1);
    return 0;
}

/* Queues a full copy of the execution in one go (a small log, or a freed run's last chance); 0 or -1. */
static int enqueue_resync(const exec_t *e)
{
    op_t *o = resync_op_new(e);
    if (o->kind == OP_RESYNC) {
        resync_build_t b = {.op = o};
        resync_budget_t all = {0, 0};
        resync_build_step(&b, &e->log, &all, 1);
    }
    return resync_op_enqueue(o, e);
}

/* The build under way for execution `id`, with the link pointing at it (NULL when none). */
static resync_build_t *build_find(const char *id, resync_build_t ***link)
{
    for (resync_build_t **l = &loop_st.builds; *l != NULL; l = &(*l)->next)
        if (!strcmp((*l)->id, id)) {
            if (link != NULL)
                *link = l;
            return *l;
        }
    return NULL;
}

/* Unlinks a build and hands its operation back (the caller queues or frees it). */
static op_t *build_unlink(resync_build_t **link)
{
    resync_build_t *b = *link;
    op_t *o = b->op;
    *link = b->next;
    b->op = NULL;
    resync_build_free(b);
    loop_st.n_builds--;
    return o;
}

/*
 * One step of the build at `link` with this turn's `budget`: drops it when
 * the run is gone (its last resync ran when it was freed) or released (a
 * status-only resync instead), queues it once the copy reaches the log's end.
 * Returns the next link to visit.
 */
static resync_build_t **build_advance(resync_build_t **link, resync_budget_t *budget)
{
    resync_build_t *b = *link;
    exec_t *e = exec_find_any_session(b->id);
    if (e == NULL || e->log.released) {
        mirror_op_free(build_unlink(link));
        if (e != NULL)
            enqueue_resync(e);
        return link;
    }
    if (resync_build_step(b, &e->log, budget, 0)) {
        atomic_fetch_add(&mirror_st.stats.resync_steps, b->steps);
        resync_op_enqueue(build_unlink(link), e);
        return link;
    }
    return &b->next;
}

/* The build timer: advances the builds by at most one step's worth of events and bytes per loop turn. */
static void build_pass(deadline_t *d)
{
    (void)d;
    resync_budget_t budget = {RESYNC_STEP_EVENTS, RESYNC_STEP_BYTES};
    for (resync_build_t **l = &loop_st.builds; *l != NULL && (budget.events > 0 && budget.bytes > 0);)
        l = build_advance(l, &budget);
    if (loop_st.builds != NULL && !mirror_st.wq.stopping)
        deadline_arm(&loop_st.build_timer, 1, build_pass); /* a later loop turn (0 could fire again in this one) */
}

/* Finishes `id`'s build now, when there is one (the run is about to go, or shutdown); 1 when there was. */
static int build_finish_now(const exec_t *e)
{
    resync_build_t **link;
    resync_build_t *b = build_find(e->id, &link);
    if (b == NULL)
        return 0;
    if (e->log.released) {
        mirror_op_free(build_unlink(link));
        enqueue_resync(e);
        return 1;
    }
    resync_budget_t none = {0, 0};
    resync_build_step(b, &e->log, &none, 1);
    resync_op_enqueue(build_unlink(link), e);
    return 1;
}

/*
 * The resync pass's room: under half the cap queued, the copies under way
 * counted as queued (they are, a few turns later), so the pass holds no more
 * memory than when each copy was queued at once; and few copies under way.
 */
static int resync_room(void *arg)
{
    (void)arg;
    size_t building = 0, half = (size_t)config.mirror_queue_bytes / 2;
    for (const resync_build_t *b = loop_st.builds; b != NULL; b = b->next)
        building += b->op->bytes;
    return loop_st.n_builds < RESYNC_BUILDS_MAX && building < half &&
           mirror_queue_below(&mirror_st.wq, half - building);
}

/*
 * The resync pass's step, when the execution is still held: a small log is
 * copied and queued at once; a larger one gets a build that the build timer
 * advances a bounded step per loop turn (one already under way covers it).
 */
static int resync_one(const char *id, void *arg)
{
    (void)arg;
    exec_t *e = exec_find_any_session(id);
    if (e == NULL)
        return 0;
    if (build_find(id, NULL) != NULL)
        return 1;
    if (e->log.released || (e->log.count <= RESYNC_STEP_EVENTS && e->log.bytes <= RESYNC_STEP_BYTES))
        return enqueue_resync(e) == 0 ? 1 : -1;
    resync_build_t *b = resync_build_new(id, resync_op_new(e), &e->log);
    b->next = NULL;
    resync_build_t **tail = &loop_st.builds;
    while (*tail != NULL)
        tail = &(*tail)->next;
    *tail = b;
    loop_st.n_builds++;
    if (!loop_st.build_timer.armed)
        deadline_arm(&loop_st.build_timer, 1, build_pass);
    return 1;
}

/* Resyncs dirty executions while Redis answers and the queue has room. */
static void resync_dirty(deadline_t *d)
{
    (void)d;
    if (!atomic_load(&mirror_st.stats.connected) || mirror_st.wq.stopping) {
        if (loop_st.dirty.count > 0 && !mirror_st.wq.stopping)
            deadline_arm(&loop_st.resync_timer, 1000, resync_dirty);
        return;
    }
    size_t done = dirty_resync_pass(&loop_st.dirty, resync_room, resync_one, NULL);
    if (done > 0)
        log_info("redis mirror: resyncing %zu executions from memory (%zu being copied, %zu still waiting)", done,
                 loop_st.n_builds, loop_st.dirty.count);
    if (loop_st.dirty.count > 0)
        deadline_arm(&loop_st.resync_timer, 1000, resync_dirty);
}

void mirror_exec_meta(const exec_t *e)
{
    if (!mirror_st.enabled)
        return;
    op_t *o = op_new(OP_META, e);
    o->meta = meta_json(e, &o->meta_len);
    o->bytes += o->meta_len;
    enqueue_or_dirty(o);
}

void mirror_exec_event(const exec_t *e, const event_t *ev)
{
    if (!mirror_st.enabled)
        return;
    /* consecutive events of one execution share one op (one allocation per ~1000 events) */
    op_t *o = loop_st.stage.tail;
    if (o != NULL && o->kind == OP_EVENT && o->n_events < EVENTS_PER_OP && !strcmp(o->id, e->id)) {
        size_t before = o->bytes;
        mirror_op_add_event(o, ev->json, ev->len);
        o->keep = e->log.count;
        loop_st.stage.bytes += o->bytes - before;
        loop_st.stage.events++;
        if (loop_st.stage.bytes >= STAGE_FLUSH_BYTES)
            cluster_flush();
        return;
    }
    o = op_new(OP_EVENT, e);
    mirror_op_add_event(o, ev->json, ev->len);
    o->keep = e->log.count;
    stage_event(o);
}

void mirror_exec_touch(const exec_t *e)
{
    if (!mirror_st.enabled)
        return;
    op_t *o = op_new(OP_TOUCH, e);
    if (enqueue(o) != 0)
        mirror_op_free(o); /* a missed TTL refresh is harmless: the next write refreshes it */
}

void mirror_exec_final_resync(const exec_t *e)
{
    if (!mirror_st.enabled)
        return;
    /* last chance before the memory copy goes: a build under way is finished from where it is,
     * else a dirty run is copied in one go (a finished run's log, bounded by its caps, once per run) */
    if (!build_finish_now(e) && dirty_take(&loop_st.dirty, e->id))
        enqueue_resync(e);
}

/* ---------------------------------------------------------------- loop side: sessions */

/* Refresh the record at most this often per session (it lives --session-ttl). */
static uint64_t session_refresh_ms(void)
{
    uint64_t quarter = (uint64_t)config.session_ttl * 250;
    return quarter < 60000 ? quarter : 60000;
}

void mirror_session_put(session_t *s)
{
    if (!mirror_st.enabled)
        return;
    op_t *o = xcalloc(1, sizeof(*o));
    o->kind = OP_SESSION_PUT;
    keys_session_hash(s->id, o->id);
    cJSON *j = cJSON_CreateObject();
    char ts[40];
    util_iso8601(util_wall_ms() - (util_now_ms() - s->created_ms), ts, sizeof(ts));
    cJSON_AddStringToObject(j, "protocol", s->protocol);
    cJSON_AddStringToObject(j, "client", s->client);
    if (s->principal[0] != '\0')
        cJSON_AddStringToObject(j, "principal", s->principal); /* adoption checks it */
    cJSON_AddStringToObject(j, "replica", config.replica);
    cJSON_AddStringToObject(j, "created_at", ts);
    o->meta = cJSON_PrintUnformatted(j);
    cJSON_Delete(j);
    if (o->meta == NULL)
        util_oom();
    o->meta_len = strlen(o->meta);
    o->bytes = OP_OVERHEAD + o->meta_len;
    s->mirrored_ms = util_now_ms();
    if (enqueue(o) != 0) {
        mirror_op_free(o);
        s->mirrored_ms = 0; /* queue full: try again on the next request */
    }
}

void mirror_session_touch(session_t *s)
{
    if (mirror_st.enabled && util_now_ms() - s->mirrored_ms >= session_refresh_ms())
        mirror_session_put(s);
}

void mirror_session_del(const session_t *s, int only_if_mine)
{
    if (!mirror_st.enabled)
        return;
    op_t *o = xcalloc(1, sizeof(*o));
    o->kind = OP_SESSION_DEL;
    o->only_if_mine = only_if_mine;
    keys_session_hash(s->id, o->id);
    o->bytes = OP_OVERHEAD;
    if (enqueue(o) != 0)
        mirror_op_free(o); /* the record expires with its TTL anyway */
}

/* A session ended: a record outlives a shutdown so another replica can adopt the session;
 * an expired one is dropped only while it still names this replica (another may have adopted it). */
static void on_session_end(session_t *s, enum session_end_reason why)
{
    if (why != SESSION_SHUTDOWN)
        mirror_session_del(s, why == SESSION_EXPIRED);
}

void cluster_attach(void)
{
    static const exec_observer_t exec_obs = {.on_meta = mirror_exec_meta,
                                             .on_event = mirror_exec_event,
                                             .on_read = mirror_exec_touch,
                                             .on_free = mirror_exec_final_resync};
    static const session_hooks_t session_obs = {.on_create = mirror_session_put,
                                                .on_touch = mirror_session_touch,
                                                .on_end = on_session_end};
    static const remote_reader_t reader = {.read_exec = mirror_read_exec,
                                           .read_session = mirror_read_session,
                                           .read_session_record = mirror_read_session_record,
                                           .control = control_forward};
    exec_set_observer(&exec_obs);
    session_set_hooks(&session_obs);
    tools_set_remote(&reader);
    mcp_set_session_resolver(mirror_read_session_record);
}

/* Frees a reader request (and the message it was to push). */
static void read_req_free(struct read_req *q)
{
    free(q->push);
    free(q);
}

/* Messages from the threads, on the loop. */
static void on_messages(h2o_multithread_receiver_t *r, h2o_linklist_t *messages)
{
    MESSAGE_FOREACH(msg, messages) {
        mirror_msg_t *m = H2O_STRUCT_FROM_MEMBER(mirror_msg_t, super, msg);
        switch (m->kind) {
        case MSG_CONNECTED:
            /* a Redis that comes back may have lost everything (restart without persistence):
             * rewrite every execution this replica holds */
            if (m->reconnect)
                exec_foreach(mark_dirty_exec, NULL);
            if (loop_st.dirty.count > 0)
                resync_dirty(NULL);
            break;
        case MSG_LOST:
            for (size_t i = 0; i < m->n_ids; i++)
                mark_dirty(m->ids[i]);
            if (m->command_error)
                deadline_arm(&loop_st.resync_timer, 30000, resync_dirty); /* Redis said no: give it time */
            else if (!loop_st.resync_timer.armed)
                deadline_arm(&loop_st.resync_timer, 200, resync_dirty);
            break;
        case MSG_READ:
            m->req->cb(m->req->arg, m->found, m->meta, m->meta_len, m->events, m->err);
            read_req_free(m->req);
            break;
        case MSG_CONTROL:
            control_on_popped(m->found, m->meta, m->meta_len);
            break;
        case MSG_RESYNC_ALL:
            /* our heartbeat had lapsed: another replica may have marked our runs lost */
            exec_foreach(mark_dirty_exec, NULL);
            if (loop_st.dirty.count > 0)
                resync_dirty(NULL);
            break;
        }
        free(m->ids);
        free(m->meta);
        remote_events_discard(m->events);
        free(m->err);
        free(m);
    }
}

/* Queues a read for the reader thread: 0, -1 (stopping) or -2 (too many reads waiting). */
static int read_enqueue(struct read_req *q)
{
    q->enqueued_ms = util_now_ms();
    pthread_mutex_lock(&mirror_st.rq.lock);
    if (mirror_st.rq.stopping) {
        pthread_mutex_unlock(&mirror_st.rq.lock);
        return -1;
    }
    if (mirror_st.rq.queued >= MIRROR_READ_QUEUE_MAX) {
        pthread_mutex_unlock(&mirror_st.rq.lock);
        return -2;
    }
    mirror_st.rq.queued++;
    if (mirror_st.rq.tail != NULL)
        mirror_st.rq.tail->next = q;
    else
        mirror_st.rq.head = q;
    mirror_st.rq.tail = q;
    pthread_mutex_unlock(&mirror_st.rq.lock);
    pthread_cond_signal(&mirror_st.rq.cond);
    return 0;
}

/* A new read request for `session_id` answered to cb(arg); NULL when the mirror is off. */
static struct read_req *read_req_new(const char *session_id, mirror_read_cb cb, void *arg)
{
    if (!mirror_st.enabled)
        return NULL;
    struct read_req *q = xcalloc(1, sizeof(*q));
    keys_session_hash(session_id, q->session_id);
    q->cb = cb;
    q->arg = arg;
    return q;
}

/* Queues `q` (NULL: the mirror is off, -1); frees it when refused. */
static int read_submit(struct read_req *q)
{
    if (q == NULL)
        return -1;
    int rc = read_enqueue(q);
    if (rc != 0)
        read_req_free(q);
    return rc;
}

int mirror_push(const char *key, const char *alive_key, char *payload, size_t len, int ttl, mirror_read_cb cb, void *arg)
{
    if (!mirror_st.enabled) {
        free(payload);
        return -1;
    }
    struct read_req *q = xcalloc(1, sizeof(*q));
    q->cb = cb;
    q->arg = arg;
    q->push = payload;
    q->push_len = len;
    q->push_ttl = ttl;
    strlcpy(q->push_key, key, sizeof(q->push_key));
    strlcpy(q->alive_key, alive_key, sizeof(q->alive_key));
    return read_submit(q);
}

int mirror_read_exec(const char *id, const char *session_id, int with_output, uint64_t after, mirror_read_cb cb,
                     void *arg)
{
    struct read_req *q = read_req_new(session_id, cb, arg);
    if (q != NULL) {
        strlcpy(q->id, id, sizeof(q->id));
        q->with_output = with_output;
        q->after = after;
    }
    return read_submit(q);
}

/* Queues a read about session `session_id`: its record, or the list of its executions. */
static int read_session_req(const char *session_id, int record, mirror_read_cb cb, void *arg)
{
    struct read_req *q = read_req_new(session_id, cb, arg);
    if (q != NULL) {
        q->session_record = record;
        q->session_list = !record;
    }
    return read_submit(q);
}

int mirror_read_session_record(const char *session_id, mirror_read_cb cb, void *arg)
{
    return read_session_req(session_id, 1, cb, arg);
}

int mirror_read_session(const char *session_id, mirror_read_cb cb, void *arg)
{
    return read_session_req(session_id, 0, cb, arg);
}

/* ---------------------------------------------------------------- lifecycle */

int mirror_enabled(void)
{
    return mirror_st.enabled;
}

/* The loop proves it is alive to the watcher thread (see replica.c). */
static void on_tick(deadline_t *d)
{
    atomic_store(&mirror_st.stats.loop_tick_ms, util_now_ms());
    deadline_arm(d, (uint64_t)config.heartbeat * 500, on_tick);
}

int cluster_start(h2o_multithread_queue_t *queue, char *err, size_t errlen)
{
    if (config.redis_url[0] == '\0')
        return 0;
    if (mirror_url_parse(config.redis_url, &mirror_st.url, err, errlen) != 0)
        return -1;
    config_redacted_redis_url(config.redis_url, mirror_st.redacted, sizeof(mirror_st.redacted));
    mirror_st.enabled = 1;
    h2o_multithread_register_receiver(queue, &loop_st.receiver, on_messages);
    loop_st.resync_timer.cb = resync_dirty;
    loop_st.build_timer.cb = build_pass;
    util_random_hex(mirror_st.instance, 8);
    /* the writer's backoff waits on `cond` against CLOCK_MONOTONIC: a wall-clock step cannot stretch them */
    if (clock_cond_init(&mirror_st.wq.cond) != 0) {
        snprintf(err, errlen, "cannot create the mirror's condition variable");
        return -1;
    }
    on_tick(&loop_st.tick_timer);
    if (pthread_create(&mirror_st.writer, NULL, mirror_writer_main, NULL) != 0 ||
        pthread_create(&mirror_st.reader, NULL, mirror_reader_main, NULL) != 0 ||
        pthread_create(&mirror_st.watcher, NULL, replica_watcher_main, NULL) != 0 ||
        pthread_create(&mirror_st.control, NULL, control_main, NULL) != 0) {
        snprintf(err, errlen, "cannot start the Redis mirror threads");
        return -1;
    }
    return 0;
}

/*
 * Joins thread `t` by `until` (CLOCK_MONOTONIC). Past it, cuts every Redis
 * connection (shutdown(2)), so a call blocked on a hung Redis fails now, and
 * joins then: what is left of the thread is a few instructions, or a connect
 * that is still under way (hiredis' 2 s connect timeout).
 */
static void join_by(pthread_t t, const struct timespec *until)
{
    if (pthread_clockjoin_np(t, NULL, CLOCK_MONOTONIC, until) == 0)
        return;
    if (mirror_redis_cut_all())
        log_warn("redis mirror: the shutdown deadline passed with Redis still busy: cutting its connections");
    pthread_join(t, NULL);
}

/* Frees the queue (Redis unreachable or the deadline passed); returns how many operations it held. */
static size_t queue_drop_locked(void)
{
    size_t n = mirror_st.wq.ops;
    for (op_t *o = mirror_st.wq.head; o != NULL;) {
        op_t *next = o->next;
        mirror_op_free(o);
        o = next;
    }
    mirror_st.wq.head = mirror_st.wq.tail = NULL;
    mirror_st.wq.ops = mirror_st.wq.bytes = mirror_st.wq.events = 0;
    return n;
}

/* Shutdown: finishes the resyncs under way in one go (their runs are still held) and stops the build timer. */
static void finish_builds(void)
{
    deadline_cancel(&loop_st.build_timer);
    while (loop_st.builds != NULL) {
        exec_t *e = exec_find_any_session(loop_st.builds->id);
        if (e == NULL || !build_finish_now(e))
            mirror_op_free(build_unlink(&loop_st.builds));
    }
}

/*
 * Lets the writer drain the queue while Redis answers, then stops the four
 * threads, all by one deadline `deadline_ms` from now: past it the Redis
 * connections are cut, so a slow or hung Redis cannot hold the exit. Counts
 * and logs the operations that were not written.
 */
void cluster_stop(int deadline_ms)
{
    if (!mirror_st.enabled)
        return;
    control_signal_stop(); /* no more commands are taken: the loop will not run them */
    mirror_redis_cut(MIRROR_CONN_CONTROL); /* its BLPOP ends now, not within the second */
    finish_builds(); /* the loop serves no more: resyncs under way are completed and drained with the rest */
    cluster_flush();
    struct timespec until;
    clock_deadline(&until, (uint64_t)deadline_ms);
    uint64_t until_ms = util_now_ms() + (uint64_t)deadline_ms;
    for (;;) {
        pthread_mutex_lock(&mirror_st.wq.lock);
        size_t left = mirror_st.wq.ops;
        pthread_mutex_unlock(&mirror_st.wq.lock);
        if (left == 0 || util_now_ms() >= until_ms || !atomic_load(&mirror_st.stats.connected))
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&mirror_st.wq.lock);
    mirror_st.wq.stopping = 1;
    size_t dropped = atomic_load(&mirror_st.stats.connected) ? 0 : queue_drop_locked(); /* Redis is down */
    pthread_mutex_unlock(&mirror_st.wq.lock);
    pthread_cond_broadcast(&mirror_st.wq.cond);
    pthread_mutex_lock(&mirror_st.rq.lock);
    mirror_st.rq.stopping = 1;
    pthread_mutex_unlock(&mirror_st.rq.lock);
    pthread_cond_broadcast(&mirror_st.rq.cond);
    join_by(mirror_st.writer, &until);
    join_by(mirror_st.reader, &until);
    deadline_cancel(&loop_st.tick_timer);
    replica_watcher_signal_stop(); /* after the writer: the final statuses are in Redis before the heartbeat goes */
    join_by(mirror_st.watcher, &until);
    join_by(mirror_st.control, &until);
    control_stop();
    pthread_mutex_lock(&mirror_st.wq.lock);
    size_t late = queue_drop_locked() + mirror_st.stop_lost; /* left queued, or lost in flight at the cut */
    pthread_mutex_unlock(&mirror_st.wq.lock);
    if (dropped + late > 0)
        log_warn("redis mirror: %zu operations not written to Redis at shutdown (%s)", dropped + late,
                 late == 0 ? "Redis was unreachable" : "the shutdown deadline passed first");
    log_info("redis mirror stopped: %llu events written, %llu dropped, %llu resyncs", (unsigned long long)mirror_st.stats.written,
             (unsigned long long)mirror_st.stats.drops, (unsigned long long)mirror_st.stats.resyncs);
}

void cluster_metrics(strbuf_t *out)
{
    if (mirror_st.enabled) {
        metrics_family(out, "redis_info", "gauge", "The Redis the mirror writes to, password redacted (always 1).");
        strbuf_puts(out, "mcp_sandboxd_redis_info{url=\"");
        metrics_label_value(out, mirror_st.redacted);
        strbuf_puts(out, "\"} 1\n");
    }
    metrics_single(out, "redis_enabled", "gauge", "1 when REDIS_URL is set.", mirror_st.enabled);
    metrics_single(out, "redis_up", "gauge", "1 while the mirror's writer is connected to Redis.",
           mirror_st.enabled && atomic_load(&mirror_st.stats.connected));
    pthread_mutex_lock(&mirror_st.wq.lock);
    double qb = (double)mirror_st.wq.bytes, qo = (double)mirror_st.wq.ops, qe = (double)mirror_st.wq.events;
    pthread_mutex_unlock(&mirror_st.wq.lock);
    metrics_single(out, "mirror_queue_bytes", "gauge", "Bytes waiting in the mirror queue.", qb);
    metrics_single(out, "mirror_queue_operations", "gauge", "Operations waiting in the mirror queue.", qo);
    metrics_single(out, "mirror_queue_events", "gauge", "Output events waiting in the mirror queue.", qe);
    metrics_single(out, "mirror_events_written_total", "counter", "Output events written to Redis.",
           (double)atomic_load(&mirror_st.stats.written));
    metrics_single(out, "mirror_drops_total", "counter", "Operations dropped because the mirror queue was full.",
           (double)atomic_load(&mirror_st.stats.drops));
    metrics_single(out, "mirror_resyncs_total", "counter", "Executions rewritten into Redis from memory.",
           (double)atomic_load(&mirror_st.stats.resyncs));
    metrics_single(out, "mirror_batches_lost_total", "counter", "Write batches lost with the connection or refused by Redis.",
           (double)atomic_load(&mirror_st.stats.batches_lost));
    metrics_single(out, "mirror_reconnects_total", "counter", "Reconnections to Redis.", (double)atomic_load(&mirror_st.stats.reconnects));
    metrics_single(out, "mirror_dirty_executions", "gauge", "Executions waiting to be resynced.", (double)loop_st.dirty.count);
    metrics_single(out, "mirror_resyncs_building", "gauge", "Resyncs being copied from memory, a bounded step per loop turn.",
           (double)loop_st.n_builds);
    metrics_single(out, "mirror_resync_steps_total", "counter", "Loop turns the resyncs of large runs were copied in (a small run's is copied at once).",
           (double)atomic_load(&mirror_st.stats.resync_steps));
    metrics_single(out, "replicas_lost_total", "counter", "Other replicas this one found without a heartbeat and swept.",
           (double)atomic_load(&mirror_st.stats.replicas_lost));
    metrics_single(out, "replica_sweeps_total", "counter", "Lost-replica sweeps the replica watcher completed.",
           (double)atomic_load(&mirror_st.stats.sweeps));
    metrics_single(out, "executions_marked_lost_total", "counter",
           "Executions this replica marked failed / \"replica lost\" in Redis.", (double)atomic_load(&mirror_st.stats.executions_lost));
    control_metrics(out);
}

void cluster_health(cJSON *h)
{
    if (!mirror_st.enabled) {
        cJSON_AddStringToObject(h, "redis", "disabled");
        return;
    }
    cJSON_AddStringToObject(h, "redis", atomic_load(&mirror_st.stats.connected) ? "connected" : "disconnected");
    cJSON *x = cJSON_AddObjectToObject(h, "mirror");
    pthread_mutex_lock(&mirror_st.wq.lock);
    cJSON_AddNumberToObject(x, "queue_bytes", (double)mirror_st.wq.bytes);
    cJSON_AddNumberToObject(x, "queue_events", (double)mirror_st.wq.events);
    cJSON_AddNumberToObject(x, "queue_ops", (double)mirror_st.wq.ops);
    if (mirror_st.last_error[0])
        cJSON_AddStringToObject(x, "last_error", mirror_st.last_error);
    pthread_mutex_unlock(&mirror_st.wq.lock);
    cJSON_AddNumberToObject(x, "events_written", (double)atomic_load(&mirror_st.stats.written));
    cJSON_AddNumberToObject(x, "drops", (double)atomic_load(&mirror_st.stats.drops));
    cJSON_AddNumberToObject(x, "resyncs", (double)atomic_load(&mirror_st.stats.resyncs));
    cJSON_AddNumberToObject(x, "batches_lost", (double)atomic_load(&mirror_st.stats.batches_lost));
    cJSON_AddNumberToObject(x, "reconnects", (double)atomic_load(&mirror_st.stats.reconnects));
    cJSON_AddNumberToObject(x, "dirty_executions", (double)loop_st.dirty.count);
    cJSON_AddNumberToObject(x, "heartbeat_seconds", config.heartbeat);
    cJSON_AddNumberToObject(x, "replicas_lost", (double)atomic_load(&mirror_st.stats.replicas_lost));
    cJSON_AddNumberToObject(x, "executions_marked_lost", (double)atomic_load(&mirror_st.stats.executions_lost));
    cJSON_AddStringToObject(x, "url", mirror_st.redacted);
}
