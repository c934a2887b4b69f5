/*
 * mirror: the cluster's public API (cluster_attach/start/flush/stop, its
 * /metrics and /health figures) and the mirror itself, which copies
 * executions into Redis from background threads. "cluster" names what a
 * composition root plugs in (only with REDIS_URL: cluster_attach hands the
 * exec observer, session hooks, remote reads and session resolver to the
 * layers below); "mirror" names the copying of executions into Redis.
 *
 * The loop thread hands operations to a writer thread through a queue bounded
 * in bytes (mirror_exec_meta, mirror_exec_event); it never waits on Redis.
 * The writer pipelines them on its own hiredis connection, reconnects with
 * capped backoff, and after any loss (queue overflow, a batch lost with the
 * connection) asks the loop to resync the affected executions from memory.
 * A reader thread, with its own connection, answers reads for executions this
 * replica does not hold; answers come back to the loop through the queue
 * cluster_start is given. A third thread, the replica watcher (replica.c), heartbeats;
 * a fourth, the control thread (control.c), takes other replicas' control commands.
 * Every connection is close-on-exec; every timed wait is monotonic. Without
 * REDIS_URL every call here is a no-op.
 */
#ifndef MCP_SANDBOXD_MIRROR_H
#define MCP_SANDBOXD_MIRROR_H

#include "core/events.h"
#include "mcp/session.h"
#include "mcp/remote.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <stddef.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

struct exec;

/** Parsed REDIS_URL. */
typedef struct mirror_url {
    int unix_socket;     /**< 1: `path` is a socket file */
    char host[256];
    int port;
    char path[512];
    char user[128];
    char password[256];
    int db;
} mirror_url_t;

/** Parses redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]. 0, or -1 with err. */
int mirror_url_parse(const char *url, mirror_url_t *out, char *err, size_t errlen);
/**
 * Starts the writer and reader threads when config.redis_url is set; their
 * results come back to the loop through `queue`. 0 / -1 with err (bad URL).
 */
int cluster_start(h2o_multithread_queue_t *queue, char *err, size_t errlen);
/**
 * Loop thread: lets the writer drain the queue while Redis answers, and stops
 * the writer, reader, watcher and control threads, all within `deadline_ms`: when it
 * passes, the Redis connections are shut down so no blocked call can hold the
 * exit (a connect under way still has its 2 s timeout). Logs how many
 * operations were not written ("N operations not written to Redis").
 */
void cluster_stop(int deadline_ms);
/**
 * Plugs the cluster into the server through the interfaces the layers below
 * publish: the exec observer, the session hooks, the tools' remote reads and
 * the session resolver for adoption. Startup, only when REDIS_URL is set.
 */
void cluster_attach(void);
/** 1 when REDIS_URL is set. */
int mirror_enabled(void);
/** Loop thread: (re)writes execution:{id} (and SADDs it to its session set). */
void mirror_exec_meta(const struct exec *e);
/** Loop thread: RPUSHes one event to execution:{id}:output. */
void mirror_exec_event(const struct exec *e, const event_t *ev);
/** Loop thread: hands the events staged this loop turn to the writer (once per turn). */
void cluster_flush(void);
/** Loop thread: refreshes the TTLs of an execution's keys (a read through the tools). */
void mirror_exec_touch(const struct exec *e);
/**
 * Loop thread: the execution is about to be freed: a final resync when Redis
 * may be behind its log (a copy under way is finished from where it is; else
 * the finished log is copied in one go, once per run).
 */
void mirror_exec_final_resync(const struct exec *e);
/** Loop thread: writes the session record mcp:session:{id} (TTL --session-ttl) naming this replica. */
void mirror_session_put(session_t *s);
/** Loop thread: a request used the session; rewrites its record when it is due a TTL refresh. */
void mirror_session_touch(session_t *s);
/** Loop thread: deletes the session record (`only_if_mine`: only while it names this replica). */
void mirror_session_del(const session_t *s, int only_if_mine);
/** Appends the mirror's metrics (Prometheus text) to `out`. */
void cluster_metrics(strbuf_t *out);
/** Adds the mirror's state to /health. */
void cluster_health(cJSON *h);

/** A read answered by the reader thread, delivered on the loop thread (the mcp remote-read callback). */
typedef remote_read_cb mirror_read_cb;
/**
 * Loop thread: looks up execution `id` in Redis for `session_id`; `with_output`
 * also fetches its events after id `after` (indexed by the reader thread). `cb` runs on the loop; found=0 when absent or owned
 * by another session. Returns -1 (cb not called) when the mirror is disabled
 * or stopping, -2 when too many reads are already waiting for Redis.
 */
int mirror_read_exec(const char *id, const char *session_id, int with_output, uint64_t after, mirror_read_cb cb,
                     void *arg);
/**
 * Loop thread: reads the record of a session this replica does not hold
 * (meta_json is the record's JSON: id, protocol, client, replica, created_at).
 * -1 / -2 as above.
 */
int mirror_read_session_record(const char *session_id, mirror_read_cb cb, void *arg);
/** Loop thread: lists `session_id`'s executions in Redis (meta_json is a JSON array). -1 / -2 as above. */
int mirror_read_session(const char *session_id, mirror_read_cb cb, void *arg);

#endif
