/*
 * exec_report: finders over the held executions, their JSON listings and
 * status objects, and the manager's /metrics and /health figures.
 */
#include "exec/exec_report.h"
#include "exec/exec_internal.h"
#include "core/config.h"
#include "core/metrics.h"

#include <stdlib.h>
#include <string.h>

exec_t *exec_find_any_session(const char *id)
{
    exec_t key;
    if (strlen(id) >= sizeof(key.id))
        return NULL;
    memcpy(key.id, id, strlen(id) + 1);
    return RB_FIND(exec_tree, &exec_mgr.all, &key);
}

void exec_foreach(void (*cb)(exec_t *e, void *arg), void *arg)
{
    exec_t *e, *next;
    RB_FOREACH_SAFE(e, exec_tree, &exec_mgr.all, next) /* cb may free e */
    cb(e, arg);
}

exec_t *exec_find_in_session(exec_owner_t *s, const char *id)
{
    exec_t *e = exec_find_any_session(id);
    if (e == NULL || strcmp(e->session_id, s->id) != 0)
        return NULL;
    return e;
}

exec_t *exec_find_for_tenant(const char *tenant, const char *id)
{
    exec_t *e = exec_find_any_session(id);
    if (e == NULL || strcmp(e->tenant, tenant) != 0)
        return NULL;
    return e;
}

size_t exec_running_tenant(const char *tenant)
{
    size_t n = 0;
    exec_t *e;
    RB_FOREACH(e, exec_tree, &exec_mgr.all)
    n += exec_is_active(e) && !strcmp(e->tenant, tenant);
    return n;
}

static int by_start(const void *a, const void *b)
{
    const exec_t *x = *(exec_t *const *)a, *y = *(exec_t *const *)b;
    return x->start_seq < y->start_seq ? -1 : x->start_seq > y->start_seq;
}

void exec_list_json_tenant(const char *tenant, const char *owner_id, strbuf_t *out)
{
    exec_t **v = xcalloc(exec_mgr.held + 1, sizeof(*v)), *e;
    size_t n = 0;
    RB_FOREACH(e, exec_tree, &exec_mgr.all)
    if (n < exec_mgr.held && !strcmp(e->tenant, tenant) && (owner_id == NULL || !strcmp(e->session_id, owner_id)))
        v[n++] = e;
    qsort(v, n, sizeof(*v), by_start);
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = 0; i < n; i++)
        cJSON_AddItemToArray(arr, exec_status_json(v[i]));
    free(v);
    char *text = util_json_print(arr);
    strbuf_puts(out, text);
    free(text);
}

cJSON *exec_status_json(const exec_t *e)
{
    cJSON *o = cJSON_CreateObject();
    char ts[32];
    cJSON_AddStringToObject(o, "id", e->id);
    cJSON_AddStringToObject(o, "status", exec_status_name(e->status));
    cJSON_AddStringToObject(o, "command", e->command);
    cJSON_AddBoolToObject(o, "interactive", e->interactive);
    util_iso8601(e->started_wall_ms, ts, sizeof(ts));
    cJSON_AddStringToObject(o, "started_at", ts);
    if (exec_is_active(e)) {
        cJSON_AddNullToObject(o, "completed_at");
    } else {
        util_iso8601(e->completed_wall_ms, ts, sizeof(ts));
        cJSON_AddStringToObject(o, "completed_at", ts);
    }
    if (e->has_exit_code)
        cJSON_AddNumberToObject(o, "exit_code", e->exit_code);
    else
        cJSON_AddNullToObject(o, "exit_code");
    if (e->error_message != NULL)
        cJSON_AddStringToObject(o, "error_message", e->error_message);
    else
        cJSON_AddNullToObject(o, "error_message");
    return o;
}

void exec_list_json(exec_owner_t *s, strbuf_t *out)
{
    cJSON *arr = cJSON_CreateArray();
    struct exec_session *es = s->state;
    exec_t *e;
    if (es != NULL)
        TAILQ_FOREACH(e, &es->execs, session_link)
        cJSON_AddItemToArray(arr, exec_status_json(e));
    char *text = util_json_print(arr);
    strbuf_puts(out, text);
    free(text);
}

size_t exec_running(void)
{
    return exec_mgr.running;
}

void exec_health_status(cJSON *h)
{
    cJSON_AddStringToObject(h, "status", exec_sandbox_error() == NULL ? "ok" : "degraded");
}

void exec_metrics(strbuf_t *out)
{
    metrics_family(out, "executions_total", "counter", "Executions that ended, by final status.");
    for (int st = EXEC_FIRST_FINAL; st < EXEC_N_STATUSES; st++)
        strbuf_printf(out, "mcp_sandboxd_executions_total{status=\"%s\"} %llu\n", exec_status_name(st),
                      (unsigned long long)exec_mgr.ends[st]);
    metrics_gauge(out, "executions_running", "Executions running now.", (double)exec_mgr.running);
    metrics_gauge(out, "retained_output_bytes",
                  "Output bytes held in memory by every execution (event JSON plus per-event overhead; "
                  "capped by --max-retained-bytes per session and --max-retained-bytes-total).",
                  (double)exec_retained_bytes());
    metrics_family(out, "output_released_total", "counter",
                   "Finished executions whose output was freed by a retained-output cap.");
    strbuf_printf(out, "mcp_sandboxd_output_released_total %llu\n", (unsigned long long)exec_mgr.released_total);
    metrics_gauge(out, "sandbox_available", "Whether runs can be sandboxed now (1) or not (0).",
                  exec_sandbox_error() == NULL);
}

void exec_health(cJSON *h)
{
    cJSON *x = cJSON_AddObjectToObject(h, "executions");
    cJSON_AddNumberToObject(x, "running", (double)exec_mgr.running);
    cJSON_AddNumberToObject(x, "held", (double)exec_mgr.held);
    cJSON_AddNumberToObject(x, "started_total", (double)exec_mgr.started_total);
    cJSON_AddBoolToObject(x, "manager_initialized", exec_mgr.initialized);
    cJSON *sb = cJSON_AddObjectToObject(h, "sandbox");
    cJSON_AddStringToObject(sb, "isolation", config.isolation_none ? "none" : "bwrap");
    const char *why = sandbox_error();
    cJSON_AddBoolToObject(sb, "available", why == NULL);
    if (why != NULL)
        cJSON_AddStringToObject(sb, "error", why);
}
