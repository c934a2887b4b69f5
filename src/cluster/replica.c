/*
 * replica: this replica's presence in a cluster that shares one Redis.
 *
 * A watcher thread, with its own hiredis connection, every --heartbeat seconds:
 *  - writes replica:{id} (TTL three heartbeats) and adds the id to `replicas`,
 *    unless the loop thread has not ticked for three heartbeats (a wedged
 *    replica is as good as a lost one);
 *  - looks for ids in `replicas` whose heartbeat key has expired and, with
 *    one atomic Lua script, marks the executions that replica still listed in
 *    replica:{id}:running as failed / "replica lost" (with a final error
 *    event), so a client polling through a survivor gets a final answer.
 * At its first connection it does the same for runs a previous process with
 * the same id left behind (a restart inside the heartbeat TTL). If its own key
 * had lapsed (Redis unreachable, loop stalled) it may have been declared lost:
 * the loop rewrites every execution it holds. The owner stays the source of
 * truth. replica:{id}:running itself is kept by the writer thread.
 */
#include "core/clock.h"
#include "core/config.h"
#include "exec/exec.h"
#include "core/log.h"
#include "cluster/keys.h"
#include "cluster/mirror_internal.h"
#include "cluster/replica.h"
#include "core/util.h"

#include <bsd/string.h>
#include <cjson/cJSON.h>
#include <hiredis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static clock_stop_t watcher_stop = CLOCK_STOP_INIT;

/*
 * KEYS: replica:{id}, replica:{id}:running, replicas.
 * ARGV: id, instance to keep ("" = the replica is gone: all of them, and only
 * while its heartbeat is absent), timestamp, TTL. Returns the executions
 * marked, or -1 when the heartbeat is back.
 */
static const char reap_script[] =
    "local id, keep, now, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local st_running, st_pending, st_failed, exec_prefix = ARGV[5], ARGV[6], ARGV[7], ARGV[8]\n"
    "if keep == '' and redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    "local runs = redis.call('HGETALL', KEYS[2])\n"
    "local n = 0\n"
    "for i = 1, #runs, 2 do\n"
    "  local eid, inst = runs[i], runs[i + 1]\n"
    "  if inst ~= keep then\n"
    "    redis.call('HDEL', KEYS[2], eid)\n"
    "    local key = exec_prefix .. eid\n"
    "    local raw = redis.call('GET', key)\n"
    "    local ok, m = pcall(cjson.decode, raw or '')\n"
    "    if ok and type(m) == 'table' and m.replica == id and (m.status == st_running or m.status == st_pending) then\n"
    "      m.status = st_failed\n"
    "      m.error_message = 'replica lost'\n"
    "      m.completed_at = now\n"
    "      redis.call('SET', key, cjson.encode(m), 'EX', ttl)\n"
    "      local okey = key .. ':output'\n"
    "      local seq = 1\n"
    "      local last = redis.call('LINDEX', okey, -1)\n"
    "      if last then\n"
    "        local ok2, ev = pcall(cjson.decode, last)\n"
    "        if ok2 and type(ev) == 'table' and tonumber(ev.event_id) then seq = tonumber(ev.event_id) + 1 end\n"
    "      end\n"
    "      redis.call('RPUSH', okey, cjson.encode({event_id = string.format('%d', seq), type = 'error',\n"
    "                                              ts = now, message = 'replica lost'}))\n"
    "      redis.call('EXPIRE', okey, ttl)\n"
    "      n = n + 1\n"
    "    end\n"
    "  end\n"
    "end\n"
    "if keep == '' then redis.call('SREM', KEYS[3], id) end\n"
    "return n\n";

/* Runs the reap script for replica `id`; returns executions marked, -1 (heartbeat back), -2 (error). */
static long long reap(redisContext *c, const char *id, const char *keep)
{
    char hkey[448], rkey[448], ts[40], ttl[16], set[96], eprefix[96];
    keys_replicas(set, sizeof(set));
    keys_execution_prefix(eprefix, sizeof(eprefix));
    keys_replica(hkey, sizeof(hkey), id);
    keys_replica_running(rkey, sizeof(rkey), id);
    util_iso8601(util_wall_ms(), ts, sizeof(ts));
    snprintf(ttl, sizeof(ttl), "%d", config.redis_ttl);
    /* the status names from exec's one table */
    const char *argv[] = {"EVAL", reap_script, "3", hkey, rkey, set, id, keep, ts, ttl,
                          exec_status_name(EXEC_RUNNING), exec_status_name(EXEC_PENDING), exec_status_name(EXEC_FAILED),
                          eprefix};
    enum { N_ARGS = sizeof(argv) / sizeof(argv[0]) };
    size_t alen[N_ARGS];
    for (int i = 0; i < N_ARGS; i++)
        alen[i] = i == 1 ? sizeof(reap_script) - 1 : strlen(argv[i]);
    redisReply *r = redisCommandArgv(c, N_ARGS, argv, alen);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        log_warn("replica watcher: sweeping replica %s failed: %s", id,
                 r == NULL ? c->errstr : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
        if (r != NULL)
            freeReplyObject(r);
        return -2;
    }
    long long n = r->integer;
    freeReplyObject(r);
    return n;
}

/* Finds replicas whose heartbeat expired and marks their running executions lost. */
static void sweep(redisContext *c)
{
    char set[96];
    keys_replicas(set, sizeof(set));
    redisReply *r = redisCommand(c, "SMEMBERS %s", set);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
        if (r != NULL)
            freeReplyObject(r);
        return;
    }
    /* one round trip for every heartbeat */
    size_t asked = 0;
    for (size_t i = 0; i < r->elements; i++)
        if (r->element[i]->type == REDIS_REPLY_STRING && strcmp(r->element[i]->str, config.replica) != 0) {
            char hkey[448];
            keys_replica(hkey, sizeof(hkey), r->element[i]->str); /* under --redis-prefix, like the beat */
            redisAppendCommand(c, "EXISTS %s", hkey);
            asked++;
        }
    for (size_t i = 0, k = 0; i < r->elements && k < asked; i++) {
        if (r->element[i]->type != REDIS_REPLY_STRING || strcmp(r->element[i]->str, config.replica) == 0)
            continue;
        k++;
        redisReply *x = NULL;
        if (redisGetReply(c, (void **)&x) != REDIS_OK)
            break;
        int alive = x->type != REDIS_REPLY_INTEGER || x->integer != 0;
        freeReplyObject(x);
        if (alive)
            continue;
        const char *id = r->element[i]->str;
        long long n = reap(c, id, "");
        if (n < 0)
            continue;
        atomic_fetch_add(&mirror_st.stats.replicas_lost, 1);
        atomic_fetch_add(&mirror_st.stats.executions_lost, (unsigned long long)n);
        if (n > 0)
            log_warn("replica %s lost (no heartbeat for %d s): marked its %lld running executions failed", id,
                     3 * config.heartbeat, n);
        else
            log_info("replica %s lost (no heartbeat for %d s); it had no running executions", id, 3 * config.heartbeat);
    }
    freeReplyObject(r);
}

/* The heartbeat's value: who we are, for operators reading it with redis-cli. */
static char *beat_value(uint64_t started_wall_ms)
{
    cJSON *o = cJSON_CreateObject();
    char ts[40];
    cJSON_AddStringToObject(o, "replica", config.replica);
    cJSON_AddStringToObject(o, "instance", mirror_st.instance);
    cJSON_AddNumberToObject(o, "pid", (double)getpid());
    cJSON_AddStringToObject(o, "version", MCP_SANDBOXD_VERSION);
    util_iso8601(started_wall_ms, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "started_at", ts);
    util_iso8601(util_wall_ms(), ts, sizeof(ts));
    cJSON_AddStringToObject(o, "beat_at", ts);
    cJSON_AddNumberToObject(o, "heartbeat_seconds", config.heartbeat);
    char *s = util_json_print(o);
    return s;
}

/*
 * SET replica:{id} ... EX 3*heartbeat GET, then SADD replicas. Returns 0, or -1 on
 * a connection failure. *lapsed is set when our key had expired after we had
 * written it at least once.
 */
static int beat(redisContext *c, uint64_t started_wall_ms, int first, int *lapsed)
{
    static int with_get = 1; /* SET ... GET needs Redis 6.2; older ones get a plain SET */
    char key[448], ttl[16];
    keys_replica(key, sizeof(key), config.replica);
    snprintf(ttl, sizeof(ttl), "%d", 3 * config.heartbeat);
    char *v = beat_value(started_wall_ms);
    const char *argv[6] = {"SET", key, v, "EX", ttl, "GET"};
    size_t alen[6] = {3, strlen(key), strlen(v), 2, strlen(ttl), 3};
    redisReply *r = redisCommandArgv(c, with_get ? 6 : 5, argv, alen);
    if (r != NULL && r->type == REDIS_REPLY_ERROR && with_get) {
        log_info("replica watcher: this Redis has no SET ... GET (%s); a lapsed heartbeat will not be noticed", r->str);
        with_get = 0;
        freeReplyObject(r);
        r = redisCommandArgv(c, 5, argv, alen);
    }
    free(v);
    if (r == NULL)
        return -1;
    *lapsed = with_get && !first && r->type == REDIS_REPLY_NIL;
    if (r->type == REDIS_REPLY_STRING && !first) {
        cJSON *old = cJSON_ParseWithLength(r->str, r->len);
        const cJSON *inst = cJSON_GetObjectItemCaseSensitive(old, "instance");
        if (cJSON_IsString(inst) && strcmp(inst->valuestring, mirror_st.instance) != 0)
            log_error("replica watcher: another process heartbeats as replica %s (instance %s): replica ids must be unique",
                      config.replica, inst->valuestring);
        cJSON_Delete(old);
    }
    if (r->type == REDIS_REPLY_ERROR)
        log_warn("replica watcher: heartbeat refused: %s", r->str);
    freeReplyObject(r);
    char set[96];
    keys_replicas(set, sizeof(set));
    r = redisCommand(c, "SADD %s %s", set, config.replica);
    if (r == NULL)
        return -1;
    freeReplyObject(r);
    return 0;
}

void *replica_watcher_main(void *arg)
{
    (void)arg;
    setpriority(PRIO_PROCESS, (id_t)gettid(), 5);
    redisContext *c = NULL;
    uint64_t started_wall_ms = util_wall_ms(), period = (uint64_t)config.heartbeat * 1000;
    int beats = 0, swept_own = 0, wedged = 0;
    char err[256];
    do {
        if (c == NULL && (c = mirror_redis_open(MIRROR_CONN_WATCHER, err, sizeof(err))) == NULL)
            continue; /* the writer logs Redis' absence; try again next period */
        uint64_t silent = util_now_ms() - atomic_load(&mirror_st.stats.loop_tick_ms);
        if (silent > 3 * period) {
            if (!wedged)
                log_error("replica watcher: the loop thread has not run for %llu ms; heartbeat withheld",
                          (unsigned long long)silent);
            wedged = 1;
            continue;
        }
        wedged = 0;
        int lapsed = 0;
        if (!swept_own) {
            /* runs a previous process with this id left listed are gone with it */
            long long n = reap(c, config.replica, mirror_st.instance);
            if (n > 0)
                log_warn("replica %s restarted: marked %lld executions of its previous process failed (replica lost)",
                         config.replica, n);
            if (n >= 0) {
                atomic_fetch_add(&mirror_st.stats.executions_lost, (unsigned long long)n);
                swept_own = 1;
            }
        }
        if (beat(c, started_wall_ms, beats == 0, &lapsed) != 0 || c->err) {
            mirror_redis_close(MIRROR_CONN_WATCHER, c);
            c = NULL;
            continue;
        }
        if (lapsed) {
            log_warn("replica watcher: our heartbeat had expired; rewriting every execution held here");
            mirror_msg_t *m = xcalloc(1, sizeof(*m));
            m->kind = MSG_RESYNC_ALL;
            mirror_post(m);
        }
        beats++;
        sweep(c);
        atomic_fetch_add(&mirror_st.stats.sweeps, 1);
        if (c->err) {
            mirror_redis_close(MIRROR_CONN_WATCHER, c);
            c = NULL;
        }
    } while (!clock_stop_sleep(&watcher_stop, period)); /* monotonic: a wall-clock step does not delay the beat */
    if (c == NULL)
        c = mirror_redis_open(MIRROR_CONN_WATCHER, err, sizeof(err));
    if (c != NULL) {
        /* a clean exit is not a loss: drop the heartbeat, then settle what is still listed as
         * running here (runs whose final status the writer could not write before the deadline) */
        char hkey[448];
        keys_replica(hkey, sizeof(hkey), config.replica);
        redisReply *r = redisCommand(c, "DEL %s", hkey);
        if (r != NULL)
            freeReplyObject(r);
        long long n = reap(c, config.replica, "");
        if (n > 0)
            log_warn("replica %s stopping: %lld executions had no final status in Redis; marked failed (replica lost)",
                     config.replica, n);
        mirror_redis_close(MIRROR_CONN_WATCHER, c);
    }
    return NULL;
}

void replica_watcher_signal_stop(void)
{
    clock_stop_signal(&watcher_stop);
}
