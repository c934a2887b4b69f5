/*
 * exec_report: read-only views of the held executions.
 *
 * Owns the finders (by id, session, tenant), the JSON listings and status
 * objects, and the manager's /metrics and /health figures; exec.c keeps the
 * runs and their lifecycle. exec.h includes this header for its callers.
 * Loop thread only.
 */
#ifndef MCP_SANDBOXD_EXEC_REPORT_H
#define MCP_SANDBOXD_EXEC_REPORT_H

#include "core/util.h"
#include "exec/owner.h"

#include <cjson/cJSON.h>
#include <stddef.h>

typedef struct exec exec_t;

/** The execution `id` if it belongs to `s`; NULL otherwise. */
exec_t *exec_find_in_session(exec_owner_t *s, const char *id);
/** The execution `id` if it belongs to `tenant` (a principal, or a session without auth); NULL otherwise. */
exec_t *exec_find_for_tenant(const char *tenant, const char *id);
/** Appends the tenant's executions (of owner `owner_id` only, when not NULL) as a JSON array of summaries. */
void exec_list_json_tenant(const char *tenant, const char *owner_id, strbuf_t *out);
/** Running executions of `tenant`. */
size_t exec_running_tenant(const char *tenant);
/** The execution `id` whatever its session (for the mirror's resync); NULL when not held. */
exec_t *exec_find_any_session(const char *id);
/** Calls `cb` for every held execution (the mirror's full resync); `cb` may free the execution it is given. */
void exec_foreach(void (*cb)(exec_t *e, void *arg), void *arg);
/**
 * The execution's status as a JSON object: id, status, command, interactive,
 * started_at, completed_at, exit_code, error_message (what get_execution_status
 * answers; the mirror adds its own fields). Caller deletes it.
 */
cJSON *exec_status_json(const exec_t *e);
/** Appends the session's executions as a JSON array of summaries. */
void exec_list_json(exec_owner_t *s, strbuf_t *out);
/** Running executions in the server. */
size_t exec_running(void);
/** Public /health field: "status" ("ok", or "degraded" while runs cannot be sandboxed). */
void exec_health_status(cJSON *h);
/** Metrics provider: execution counters and gauges, the sandbox's and cgroups' state (Prometheus text). */
void exec_metrics(strbuf_t *out);
/** Adds execution figures to /health. */
void exec_health(cJSON *h);

#endif
