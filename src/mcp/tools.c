/*
 * tools: the seven execution tools, compatible with srt-mcp-server.
 *
 * Each handler checks its arguments (unknown ones are refused by name), calls
 * the execution manager and answers with structuredContent plus the same JSON
 * as text. Failures are tool results with isError: {error, status: "failed"}
 * for the execute/status/output tools, {success: false, error} for send_stdin
 * and cancel_execution. Waiting calls park on the execution (exec_wait) and
 * answer when it ends or at the wait deadline. Another replica's run is read
 * from Redis (remote reads); send_stdin and cancel_execution on it are
 * forwarded to that replica (remote.control), which runs them through
 * tools_control_forwarded: the same control_parse / control_apply as here.
 */
#include "mcp/tools.h"
#include "mcp/args.h"
#include "core/config.h"
#include "exec/exec.h"
#include "core/jsonrpc.h"
#include "core/log.h"
#include "mcp/remote.h"
#include "mcp/output.h"
#include "mcp/workspace.h"
#include "core/util.h"

#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*tool_fn)(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args);

/* A tool's handler; its name, description and schemas are the catalogue's (mcp/catalog.h). */
struct tool {
    const char *name;
    tool_fn fn;
};

/* ---------------------------------------------------------------- results */

static tools_reply_t reply; /* how calls are answered (tools_set_reply) */
static remote_reader_t remote; /* reads of what other replicas hold; all NULL without a cluster */
static void reply_json(mcp_call_t *call, cJSON *o, int is_error)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL) { /* cJSON prints at most INT_MAX bytes: a huge result is an error, not an abort */
        reply.error(call, JSONRPC_INTERNAL_ERROR, "This result is too large to print as JSON");
        return;
    }
    reply.result(call, text, strlen(text), is_error);
    free(text);
}

/* {error, status: "failed"} */
static void fail(mcp_call_t *call, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "error", msg);
    cJSON_AddStringToObject(o, "status", "failed");
    reply_json(call, o, 1);
}

/* A control tool's failure (send_stdin, cancel_execution): {success: false, [was_running: false,] error}. */
static cJSON *control_error(const char *msg, int with_was_running)
{
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 0);
    if (with_was_running)
        cJSON_AddBoolToObject(o, "was_running", 0);
    cJSON_AddStringToObject(o, "error", msg);
    return o;
}

static void fail_control(mcp_call_t *call, const char *msg, int with_was_running)
{
    reply_json(call, control_error(msg, with_was_running), 1);
}

/* The unknown-id answer of a control tool: what another tenant's id gets too. */
static cJSON *control_not_found(const char *id, int with_was_running)
{
    char msg[200];
    snprintf(msg, sizeof(msg), "Execution not found: %.64s", id);
    return control_error(msg, with_was_running);
}

static void not_found(mcp_call_t *call, const char *id, int success_shape, int with_was_running)
{
    char msg[200];
    if (success_shape) {
        reply_json(call, control_not_found(id, with_was_running), 1);
        return;
    }
    snprintf(msg, sizeof(msg), "Execution not found: %.64s", id);
    fail(call, msg);
}

/* Answers with an output result: structuredContent and its text (compact, or the JSON itself). */
static void reply_output(mcp_call_t *call, const output_view_t *v, const output_query_t *q)
{
    strbuf_t st = {0}, text = {0};
    output_render(v, q, &st, &text);
    if (reply.result_text != NULL)
        reply.result_text(call, st.data, st.len, text.data, text.len, 0);
    else
        reply.result(call, st.data, st.len, 0);
    strbuf_free(&st);
    strbuf_free(&text);
}

/* A local view's events: the log's, from index `from`. */
struct local_events {
    const event_log_t *log;
    size_t from;
};

/* output_view_t.event_at over a log held here: no copy, the formatter reads what it shows. */
static const event_t *local_event_at(const void *src, size_t i)
{
    const struct local_events *l = src;
    return events_at(l->log, l->from + i);
}

/*
 * The output answer from this replica's memory (events from index `from`),
 * through the one formatter; `workspace_id` (execute_code's answer) or NULL.
 */
static void reply_local_output(mcp_call_t *call, exec_t *e, size_t from, const char *message, const char *workspace_id,
                               const output_query_t *q)
{
    char code[16], last[24];
    snprintf(code, sizeof(code), "%d", e->exit_code);
    if (e->log.count > 0)
        snprintf(last, sizeof(last), "%llu", (unsigned long long)events_at(&e->log, e->log.count - 1)->seq);
    struct local_events src = {&e->log, from};
    output_view_t v = {.execution_id = e->id,
                       .status = exec_status_name(e->status),
                       .exit_code_json = e->has_exit_code ? code : "null",
                       .event_at = local_event_at,
                       .src = &src,
                       .n_events = from < e->log.count ? e->log.count - from : 0,
                       .dropped_events = e->log.dropped,
                       .last_event_id = e->log.count > 0 ? last : NULL,
                       .workspace_id = workspace_id,
                       .message = message};
    reply_output(call, &v, q);
}

/* ---------------------------------------------------------------- argument checks */

/* ---------------------------------------------------------------- waiting */

enum wait_kind { WAIT_EXECUTE, WAIT_OUTPUT };

/* A parked call: what it answers with when the wait ends (its query's regex lives here). */
struct wait_ctx {
    mcp_call_t *call;
    enum wait_kind kind;
    char last_event_id[32];
    output_query_t q;
    exec_t *e;             /* alive while parked: the waiter holds it until on_wait_done */
    deadline_t tick;       /* progress: every PROGRESS_TICK_MS while the call asked for it */
    uint64_t sent_events;  /* events so far at the last notification */
    uint64_t sent_ms;      /* when it was sent */
    uint64_t quiet;        /* notifications sent since the events last changed */
};

#define PROGRESS_TICK_MS 1000   /* at most one notification a second while output arrives */
#define PROGRESS_IDLE_MS 4000   /* and one at least this often without output (under the 5 s promised) */
#define PROGRESS_MESSAGE_MAX 200

/* The latest output line of `e` (its last stdout/stderr event among the last few), cut to 200 characters. */
static void latest_line(const exec_t *e, char *out, size_t outlen)
{
    out[0] = '\0';
    for (size_t k = 0; k < 16 && k < e->log.count; k++) {
        const event_t *ev = events_at(&e->log, e->log.count - 1 - k);
        cJSON *o = cJSON_ParseWithLength(ev->json, ev->len);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type"), *d = cJSON_GetObjectItemCaseSensitive(o, "data");
        int line = cJSON_IsString(t) && (!strcmp(t->valuestring, "stdout") || !strcmp(t->valuestring, "stderr"));
        if (line && cJSON_IsString(d)) {
            size_t n = 0, chars = 0;
            while (d->valuestring[n] != '\0' && n + 4 < outlen && chars < PROGRESS_MESSAGE_MAX) {
                n++; /* whole UTF-8 characters only */
                while (((unsigned char)d->valuestring[n] & 0xC0) == 0x80)
                    n++;
                chars++;
            }
            memcpy(out, d->valuestring, n);
            out[n] = '\0';
        }
        cJSON_Delete(o);
        if (line)
            return;
    }
}

/*
 * The progress tick of a parked call: notifications/progress when output
 * arrived, or when it has been quiet a while. progress must increase with
 * every notification (MCP): it is the events so far, plus k/(k+1) for the
 * k-th quiet notification since they last changed, so floor(progress) is
 * still the events so far.
 */
static void on_progress_tick(deadline_t *d)
{
    struct wait_ctx *w = (struct wait_ctx *)((char *)d - offsetof(struct wait_ctx, tick));
    if (!reply.alive(w->call)) { /* the client closed the stream: the wait ends (w is freed), the run goes on */
        exec_wait_end(w->e, w);
        return;
    }
    uint64_t events = w->e->log.next_seq - 1, now = util_now_ms();
    if (events != w->sent_events || now - w->sent_ms >= PROGRESS_IDLE_MS) {
        char msg[PROGRESS_MESSAGE_MAX * 4 + 8];
        latest_line(w->e, msg, sizeof(msg));
        w->quiet = events != w->sent_events ? 0 : w->quiet + 1;
        reply.progress(w->call, (double)events + (double)w->quiet / (double)(w->quiet + 1), msg[0] ? msg : NULL);
        w->sent_events = events;
        w->sent_ms = now;
    }
    deadline_arm(&w->tick, PROGRESS_TICK_MS, on_progress_tick);
}

/* with_message: 0 none, 1 the wait deadline passed, 2 the call was not parked (EXEC_MAX_WAITERS). */
/* with_workspace: execute_code's answer, which names the workspace the run went to. */
static void answer_output(mcp_call_t *call, exec_t *e, const char *last_event_id, int with_message, int with_workspace,
                          const output_query_t *q)
{
    char err[300], msg[300];
    long from = events_resume_index(&e->log, last_event_id, err, sizeof(err));
    if (from < 0) {
        fail(call, err);
        return;
    }
    exec_note_read(e);
    const char *message = NULL;
    if (with_message == 1 && exec_is_active(e)) {
        snprintf(msg, sizeof(msg), "Still running after the %d s wait limit; poll get_execution_output with last_event_id",
                 config.wait_deadline);
        message = msg;
    } else if (with_message == 2 && exec_is_active(e)) {
        snprintf(msg, sizeof(msg), "Still running; %d requests already wait on this execution, so this one did not: "
                                   "poll get_execution_output with last_event_id",
                 EXEC_MAX_WAITERS);
        message = msg;
    }
    /* the owner's id is the workspace handle */
    reply_local_output(call, e, (size_t)from, message, with_workspace ? e->session_id : NULL, q);
}

static void on_wait_done(void *arg, exec_t *e, int finished)
{
    struct wait_ctx *w = arg;
    if (!reply.alive(w->call))
        log_debug("answering a parked call whose client went away");
    deadline_cancel(&w->tick);
    answer_output(w->call, e, w->kind == WAIT_OUTPUT ? w->last_event_id : NULL, finished < 0 ? 2 : 1,
                  w->kind == WAIT_EXECUTE, &w->q);
    output_query_free(&w->q);
    free(w);
}

/* Parks the call on `e`; the wait context takes over `q` (and its compiled regex). */
static void park(mcp_call_t *call, exec_t *e, enum wait_kind kind, const char *last_event_id, output_query_t *q)
{
    struct wait_ctx *w = xcalloc(1, sizeof(*w));
    w->call = call;
    w->kind = kind;
    if (last_event_id != NULL)
        snprintf(w->last_event_id, sizeof(w->last_event_id), "%s", last_event_id);
    w->q = *q;
    q->grep = NULL;
    w->e = e;
    if (reply.wants_progress != NULL && reply.progress != NULL && reply.wants_progress(call)) {
        w->sent_ms = util_now_ms();
        deadline_arm(&w->tick, PROGRESS_TICK_MS, on_progress_tick);
    }
    exec_wait(e, (uint64_t)config.wait_deadline * 1000, on_wait_done, w);
}

/* ---------------------------------------------------------------- handlers */

/* The optional workspace_id argument: 0 with *id (NULL when absent), -1 with err when not a string. */
static int get_workspace_id(const cJSON *args, const char **id, char *err, size_t errlen)
{
    return args_get_string(args, "workspace_id", 0, id, err, errlen);
}

/*
 * The workspace a run goes to: the caller's `workspace_id` (its tenant's),
 * else the session's default; a caller without one (no session: the
 * 2026-07-28 era) gets a new workspace. NULL with err.
 */
static workspace_t *run_workspace(const mcp_ctx_t *ctx, const char *wsid, char *err, size_t errlen)
{
    workspace_t *w = NULL;
    if (wsid != NULL && (w = workspace_find(ctx->tenant, wsid)) == NULL)
        snprintf(err, errlen, "Workspace not found: %.64s", wsid);
    else if (wsid == NULL && (w = ctx->ws) == NULL)
        w = workspace_create(ctx->tenant, ctx->principal, 0, err, errlen);
    if (w != NULL && w != ctx->ws)
        workspace_touch(w); /* the session's own default is used as long as the session is */
    return w;
}

static void run_tool(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args, int async)
{
    exec_request_t rq;
    output_query_t q;
    int wait = 1;
    char err[512];
    if (args_parse_run(args, !async, &rq, &wait, err, sizeof(err)) != 0 || output_query_parse(args, &q, err, sizeof(err)) != 0) {
        args_free_run(&rq);
        fail(call, err);
        return;
    }
    const char *wsid = NULL;
    workspace_t *w = get_workspace_id(args, &wsid, err, sizeof(err)) == 0 ? run_workspace(ctx, wsid, err, sizeof(err)) : NULL;
    exec_t *e = w != NULL ? exec_start(&w->exec, &rq, err, sizeof(err)) : NULL;
    args_free_run(&rq);
    if (e == NULL) {
        fail(call, err);
        return;
    }
    if (!async && wait) {
        park(call, e, WAIT_EXECUTE, NULL, &q);
        return;
    }
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "execution_id", e->id);
    cJSON_AddStringToObject(o, "status", "running");
    cJSON_AddStringToObject(o, "workspace_id", w->id);
    if (!async)
        cJSON_AddStringToObject(o, "message", "Execution started; follow it with get_execution_output");
    reply_json(call, o, 0);
}

static void tool_execute_code(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args)
{
    run_tool(call, ctx, args, 0);
}

static void tool_execute_code_async(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args)
{
    run_tool(call, ctx, args, 1);
}

/* What a read from Redis answers, for an execution this replica does not hold. */
enum { REMOTE_STATUS, REMOTE_OUTPUT, REMOTE_LIST, REMOTE_STDIN, REMOTE_CANCEL };
static int ask_remote(mcp_call_t *call, const mcp_ctx_t *ctx, int kind, const char *id, const char *last_event_id,
                      const char *wsid, output_query_t *q, const cJSON *args);
static int valid_exec_id(const char *id);

/*
 * Execution `id` of the caller's tenant when held here (in the `workspace_id`
 * of `args`, when given); otherwise the call is answered from Redis (another
 * replica's run; REMOTE_OUTPUT takes over `q`) or as not found, and NULL.
 */
static exec_t *held_or_remote(mcp_call_t *call, const mcp_ctx_t *ctx, const char *id, int kind, const char *last_event_id,
                              const cJSON *args, output_query_t *q)
{
    const char *wsid = NULL;
    char err[200];
    if (get_workspace_id(args, &wsid, err, sizeof(err)) != 0) {
        if (kind == REMOTE_STDIN || kind == REMOTE_CANCEL)
            fail_control(call, err, kind == REMOTE_CANCEL);
        else
            fail(call, err);
        return NULL;
    }
    exec_t *e = exec_find_for_tenant(ctx->tenant, id);
    workspace_t *w = e != NULL ? workspace_find(ctx->tenant, e->session_id) : NULL;
    if (w != NULL && w != ctx->ws)
        workspace_touch(w); /* followed from another session: in use by handle (session.c) */
    if (e != NULL && wsid != NULL && strcmp(e->session_id, wsid) != 0) { /* held here, in another workspace */
        not_found(call, id, kind == REMOTE_STDIN || kind == REMOTE_CANCEL, kind == REMOTE_CANCEL);
        return NULL;
    }
    if (e == NULL && (!valid_exec_id(id) || ask_remote(call, ctx, kind, id, last_event_id, wsid, q, args) != 0)) {
        int control = kind == REMOTE_STDIN || kind == REMOTE_CANCEL;
        not_found(call, id, control, kind == REMOTE_CANCEL);
    }
    return e;
}

/* A control tool's arguments (send_stdin, cancel_execution), checked. */
struct control_args {
    int kind;         /* REMOTE_STDIN or REMOTE_CANCEL */
    const char *id;   /* execution_id */
    const char *data; /* send_stdin's input_data */
    int force;        /* cancel_execution's force */
    const char *wsid; /* the optional workspace_id (NULL: absent) */
};

/* Checks a control tool's arguments (unknown ones refused by name). 0, or -1 with err. */
static int control_parse(const cJSON *args, int kind, struct control_args *ca, char *err, size_t errlen)
{
    static const char *const stdin_known[] = {"execution_id", "input_data", "workspace_id", NULL};
    static const char *const cancel_known[] = {"execution_id", "force", "workspace_id", NULL};
    memset(ca, 0, sizeof(*ca));
    ca->kind = kind;
    if (args_check_known(args, kind == REMOTE_STDIN ? stdin_known : cancel_known, err, errlen) != 0 ||
        args_get_string(args, "execution_id", 1, &ca->id, err, errlen) != 0 ||
        get_workspace_id(args, &ca->wsid, err, errlen) != 0)
        return -1;
    if (kind == REMOTE_STDIN)
        return args_get_string(args, "input_data", 1, &ca->data, err, errlen);
    return args_get_bool(args, "force", 0, &ca->force, err, errlen);
}

/*
 * The one body of send_stdin and cancel_execution on an execution held here,
 * for a local call and for one another replica forwarded (control channel):
 * the tool's result object, *is_error set.
 */
static cJSON *control_apply(exec_t *e, const struct control_args *ca, int *is_error)
{
    char err[300];
    int cancel = ca->kind == REMOTE_CANCEL;
    int rc = cancel ? exec_cancel(e, ca->force, err, sizeof(err)) : exec_send_stdin(e, ca->data, strlen(ca->data), err, sizeof(err));
    *is_error = rc != 0;
    if (rc != 0)
        return control_error(err, cancel);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddBoolToObject(o, "success", 1);
    if (cancel)
        cJSON_AddBoolToObject(o, "was_running", 1);
    return o;
}

/* send_stdin / cancel_execution: on the run held here, else through Redis (held_or_remote). */
static void tool_control(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args, int kind)
{
    struct control_args ca;
    char err[300];
    if (control_parse(args, kind, &ca, err, sizeof(err)) != 0) {
        fail_control(call, err, kind == REMOTE_CANCEL);
        return;
    }
    exec_t *e = held_or_remote(call, ctx, ca.id, kind, NULL, args, NULL);
    if (e == NULL)
        return;
    int is_error;
    cJSON *o = control_apply(e, &ca, &is_error);
    reply_json(call, o, is_error);
}

static void tool_send_stdin(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args)
{
    tool_control(call, ctx, args, REMOTE_STDIN);
}

static void tool_cancel_execution(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args)
{
    tool_control(call, ctx, args, REMOTE_CANCEL);
}

char *tools_control_forwarded(const char *tool, const cJSON *args, int (*owner_ok)(const char *tenant, void *arg),
                              void *arg, int *is_error)
{
    int kind = !strcmp(tool, "send_stdin") ? REMOTE_STDIN : REMOTE_CANCEL;
    struct control_args ca;
    char err[300];
    cJSON *o;
    *is_error = 1;
    if (control_parse(args, kind, &ca, err, sizeof(err)) != 0) {
        o = control_error(err, kind == REMOTE_CANCEL);
    } else {
        exec_t *e = exec_find_any_session(ca.id);
        if (e == NULL || !owner_ok(e->tenant, arg) || (ca.wsid != NULL && strcmp(e->session_id, ca.wsid) != 0)) {
            o = control_not_found(ca.id, kind == REMOTE_CANCEL); /* another tenant's id: the unknown-id answer */
        } else {
            workspace_t *w = workspace_find(e->tenant, e->session_id);
            if (w != NULL)
                workspace_touch(w); /* used by handle, from another replica */
            o = control_apply(e, &ca, is_error);
        }
    }
    return util_json_print(o);
}

/* ---- answers from Redis for executions this replica does not hold */

struct remote_ctx {
    mcp_call_t *call;
    int kind; /* REMOTE_* */
    char id[EXEC_OWNER_ID_MAX + 1]; /* the execution id, or the tenant for REMOTE_LIST */
    char last_event_id[32];
    char workspace_id[WORKSPACE_ID_LEN + 2]; /* the caller's workspace filter ("" = none; longer = no match) */
    output_query_t q; /* REMOTE_OUTPUT: what to answer with (its regex owned here) */
    char tenant[EXEC_OWNER_ID_MAX + 1]; /* REMOTE_STDIN, REMOTE_CANCEL: the caller's tenant */
    char *args_json;  /* REMOTE_STDIN, REMOTE_CANCEL: the call's arguments, to forward to the owner */
};

static const char *status_keys[] = {"id", "status", "command", "interactive", "started_at", "completed_at", "exit_code",
                                    "error_message", NULL};

/* Does the record (or summary) `m` say it ran in workspace `wsid`? */
static int in_workspace(const cJSON *m, const char *wsid)
{
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(m, "workspace_id");
    return cJSON_IsString(w) && !strcmp(w->valuestring, wsid);
}

/* list_executions: this replica's executions (fresher) plus those only Redis knows. */
static void remote_list(struct remote_ctx *rc, int found, const char *meta, size_t meta_len, const char *rerr)
{
    strbuf_t mine = {0};
    exec_list_json_tenant(rc->id, rc->workspace_id[0] ? rc->workspace_id : NULL, &mine); /* rc->id: the tenant */
    /* a failed read may be partial: then only this replica's list, with a warning */
    cJSON *list = cJSON_Parse(mine.data), *remote = found && rerr == NULL ? cJSON_ParseWithLength(meta, meta_len) : NULL;
    strbuf_free(&mine);
    if (rerr != NULL)
        log_warn("redis list for %.8s failed: %s", rc->id, rerr);
    cJSON *it;
    cJSON_ArrayForEach(it, remote)
    {
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(it, "id");
        int dup = rc->workspace_id[0] != '\0' && !in_workspace(it, rc->workspace_id);
        const cJSON *m;
        cJSON_ArrayForEach(m, list)
        {
            const cJSON *mid = cJSON_GetObjectItemCaseSensitive(m, "id");
            if (cJSON_IsString(id) && cJSON_IsString(mid) && !strcmp(id->valuestring, mid->valuestring))
                dup = 1;
        }
        if (!dup) {
            cJSON *copy = cJSON_Duplicate(it, 1);
            cJSON_DeleteItemFromObjectCaseSensitive(copy, "workspace_id"); /* the same fields as the local summaries */
            cJSON_AddItemToArray(list, copy);
        }
    }
    cJSON_Delete(remote);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "executions", list);
    if (rerr != NULL) {
        char w[300];
        snprintf(w, sizeof(w), "Redis could not be read (%s): executions of other replicas are missing", rerr);
        cJSON_AddStringToObject(o, "warning", w);
    }
    reply_json(rc->call, o, 0);
}

/* A control call forwarded to the replica that runs the execution. */
struct forward_ctx {
    mcp_call_t *call;
    int cancel;                      /* cancel_execution (else send_stdin) */
    char id[EXEC_OWNER_ID_MAX + 1];  /* the execution id */
    char replica[160];               /* the owner replica */
};

/*
 * The owner's answer (remote_control_cb): its tool result, relayed as it is,
 * so the caller sees what a local call gives; or why it could not be had.
 */
static void on_forwarded(void *arg, const char *result, size_t len, int is_error, const char *err)
{
    struct forward_ctx *f = arg;
    cJSON *o = err == NULL ? cJSON_ParseWithLength(result, len) : NULL;
    char msg[600];
    if (err != NULL) {
        snprintf(msg, sizeof(msg), "Execution %s runs on replica %s, which could not be reached: %s", f->id, f->replica, err);
        fail_control(f->call, msg, f->cancel);
    } else if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        snprintf(msg, sizeof(msg), "Replica %s answered for execution %s with an invalid result", f->replica, f->id);
        fail_control(f->call, msg, f->cancel);
    } else {
        reply_json(f->call, o, is_error);
    }
    free(f);
}

/*
 * send_stdin / cancel_execution on another replica's run: stdin and signals
 * need the process, which only the owner has, so the call is forwarded to it
 * through Redis (remote.control) and its answer relayed. Said plainly when the
 * run ended, or when there is no channel (no cluster, or stopping).
 */
static void remote_control(struct remote_ctx *rc, const cJSON *m)
{
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "status");
    const cJSON *rep = cJSON_GetObjectItemCaseSensitive(m, "replica");
    const char *status = cJSON_IsString(st) ? st->valuestring : "unknown";
    const char *owner = cJSON_IsString(rep) ? rep->valuestring : "?";
    char msg[512];
    if (strcmp(status, "running") != 0 && strcmp(status, "pending") != 0) {
        snprintf(msg, sizeof(msg), "Execution %s already completed (status: %s)", rc->id, status);
        fail_control(rc->call, msg, rc->kind == REMOTE_CANCEL);
        return;
    }
    int r = -1;
    if (remote.control != NULL && cJSON_IsString(rep) && strcmp(owner, config.replica) != 0) {
        struct forward_ctx *f = xcalloc(1, sizeof(*f));
        f->call = rc->call;
        f->cancel = rc->kind == REMOTE_CANCEL;
        snprintf(f->id, sizeof(f->id), "%s", rc->id);
        snprintf(f->replica, sizeof(f->replica), "%.128s", owner);
        r = remote.control(owner, f->cancel ? "cancel_execution" : "send_stdin", rc->tenant, rc->args_json, on_forwarded, f);
        if (r == 0)
            return;
        free(f);
    }
    if (r == -2 || r == -4)
        snprintf(msg, sizeof(msg), "Execution %s runs on replica %.128s and too many %scalls to other replicas are "
                                   "waiting for an answer; try again", rc->id, owner, r == -4 ? "of your " : "");
    else if (r == -3)
        snprintf(msg, sizeof(msg), "Execution %s runs on replica %.128s and this call is too large to forward there",
                 rc->id, owner);
    else
        snprintf(msg, sizeof(msg),
                 "Execution %s runs on replica %.128s, not on this one (%.128s): send_stdin and cancel_execution "
                 "must reach the replica that runs it (behind nginx, the client's usual replica)",
                 rc->id, owner, config.replica);
    fail_control(rc->call, msg, rc->kind == REMOTE_CANCEL);
}

/* get_execution_status from the record: the same keys the local answer has. */
static void remote_status(struct remote_ctx *rc, const cJSON *m)
{
    cJSON *o = cJSON_CreateObject();
    for (int i = 0; status_keys[i] != NULL; i++) {
        cJSON *v = cJSON_GetObjectItemCaseSensitive(m, status_keys[i]);
        cJSON_AddItemToObject(o, status_keys[i], v != NULL ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
    }
    reply_json(rc->call, o, 0);
}

/*
 * get_execution_output from the record and its events after last_event_id,
 * read and indexed by the reader thread (mcp/remote.h), through the one
 * formatter: the loop's work follows the result. The caps evicted the events
 * before the first one Redis holds (ids are consecutive from 1); events the
 * reader's byte cap left out count with them.
 */
static void remote_output(struct remote_ctx *rc, const cJSON *m, const remote_events_t *re)
{
    static const remote_events_t none = {0};
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(m, "status");
    const cJSON *ec = cJSON_GetObjectItemCaseSensitive(m, "exit_code");
    char code[32] = "null", last[32] = "";
    if (re == NULL)
        re = &none;
    if (cJSON_IsNumber(ec))
        snprintf(code, sizeof(code), "%d", ec->valueint);
    if (re->n > 0)
        snprintf(last, sizeof(last), "%llu", (unsigned long long)re->events[re->n - 1].seq);
    uint64_t first = re->skipped > 0 && re->n > 0 ? re->events[0].seq : re->first_id;
    char note[200] = "";
    if (re->invalid > 0 || re->missing > 0) /* a list not written as this server writes it: say so */
        snprintf(note, sizeof(note),
                 "The output list in Redis was not written as this server writes it: %llu elements left out (no "
                 "event, out of order or too long), %llu event ids missing",
                 (unsigned long long)re->invalid, (unsigned long long)re->missing);
    output_view_t v = {.execution_id = rc->id,
                       .status = cJSON_IsString(st) ? st->valuestring : "failed",
                       .exit_code_json = code,
                       .events = re->events,
                       .n_events = re->n,
                       .dropped_events = first > 1 ? first - 1 : 0,
                       .last_event_id = last[0] ? last : NULL,
                       .source = "redis",
                       .message = note[0] ? note : NULL};
    reply_output(rc->call, &v, &rc->q);
}

/* A remote read answered (remote_read_cb): the tool's answer from what Redis holds. */
static void on_remote(void *arg, int found, const char *meta, size_t meta_len, const remote_events_t *events,
                      const char *rerr)
{
    struct remote_ctx *rc = arg;
    int control = rc->kind == REMOTE_STDIN || rc->kind == REMOTE_CANCEL;
    cJSON *m = NULL;
    if (rc->kind == REMOTE_LIST) {
        remote_list(rc, found, meta, meta_len, rerr);
    } else if (!found) {
        if (rerr != NULL)
            log_warn("redis read for %s failed: %s", rc->id, rerr);
        not_found(rc->call, rc->id, control, rc->kind == REMOTE_CANCEL);
    } else if ((m = cJSON_ParseWithLength(meta, meta_len)) == NULL) {
        fail(rc->call, "Execution record in Redis is not valid JSON");
    } else if (rc->workspace_id[0] != '\0' && !in_workspace(m, rc->workspace_id)) {
        not_found(rc->call, rc->id, control, rc->kind == REMOTE_CANCEL);
    } else if (control) {
        remote_control(rc, m);
    } else if (rc->kind == REMOTE_STATUS) {
        remote_status(rc, m);
    } else {
        remote_output(rc, m, events);
    }
    cJSON_Delete(m);
    output_query_free(&rc->q);
    free(rc->args_json);
    free(rc);
}

/*
 * Asks Redis for execution `id` of the caller's tenant (in workspace `wsid`
 * when not NULL); the read takes over `q` (REMOTE_OUTPUT) when it starts. A
 * control call keeps its `args` to forward them to the replica that runs it.
 */
static int ask_remote(mcp_call_t *call, const mcp_ctx_t *ctx, int kind, const char *id, const char *last_event_id,
                      const char *wsid, output_query_t *q, const cJSON *args)
{
    struct remote_ctx *rc = xcalloc(1, sizeof(*rc));
    rc->call = call;
    rc->kind = kind;
    snprintf(rc->id, sizeof(rc->id), "%s", id);
    snprintf(rc->workspace_id, sizeof(rc->workspace_id), "%s", wsid != NULL ? wsid : "");
    if (last_event_id != NULL)
        snprintf(rc->last_event_id, sizeof(rc->last_event_id), "%s", last_event_id);
    if (q != NULL)
        rc->q = *q;
    if (kind == REMOTE_STDIN || kind == REMOTE_CANCEL) {
        snprintf(rc->tenant, sizeof(rc->tenant), "%s", ctx->tenant);
        rc->args_json = cJSON_PrintUnformatted(args); /* NULL (too large to print): the owner cannot be asked */
    }
    uint64_t after = rc->last_event_id[0] ? strtoull(rc->last_event_id, NULL, 10) : 0;
    int r = remote.read_exec != NULL ? remote.read_exec(id, ctx->tenant, kind == REMOTE_OUTPUT, after, on_remote, rc) : -1;
    if (r == 0) {
        if (q != NULL)
            q->grep = NULL; /* the read owns it now */
        return 0;
    }
    free(rc->args_json);
    free(rc);
    if (r == -2) {
        fail(call, "This execution is not held by this replica and too many Redis reads are waiting; try again");
        return 0;
    }
    return -1;
}

/* Longest execution id read from Redis: the mirror's id buffers are char[40]
 * (a UUID takes 36), so a 40-character id would be cut, not looked up. */
#define EXEC_ID_MAX 39

/* An id worth a Redis read: 1 to EXEC_ID_MAX hex digits and dashes. */
static int valid_exec_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > EXEC_ID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(isxdigit((unsigned char)id[i]) || id[i] == '-'))
            return 0;
    return 1;
}

static void tool_get_execution_status(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args)
{
    static const char *const known[] = {"execution_id", "workspace_id", NULL};
    const char *id;
    char err[300];
    if (args_check_known(args, known, err, sizeof(err)) != 0 || args_get_string(args, "execution_id", 1, &id, err, sizeof(err)) != 0) {
        fail(call, err);
        return;
    }
    exec_t *e = held_or_remote(call, ctx, id, REMOTE_STATUS, NULL, args, NULL);
    if (e == NULL)
        return;
    exec_note_read(e);
    cJSON *o = exec_status_json(e);
    reply_json(call, o, 0);
}

static void tool_get_execution_output(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args)
{
    static const char *const known[] = {"execution_id", "wait", "last_event_id", "max_output_chars", "head", "tail", "grep",
                                        "workspace_id", NULL};
    const char *id, *last = NULL;
    int wait;
    char err[300], lastbuf[32];
    output_query_t q = {0};
    if (args_check_known(args, known, err, sizeof(err)) != 0 || args_get_string(args, "execution_id", 1, &id, err, sizeof(err)) != 0 ||
        args_get_bool(args, "wait", 0, &wait, err, sizeof(err)) != 0 ||
        args_last_event_id(args, &last, lastbuf, sizeof(lastbuf), err, sizeof(err)) != 0 ||
        output_query_parse(args, &q, err, sizeof(err)) != 0) {
        output_query_free(&q);
        fail(call, err);
        return;
    }
    exec_t *e = held_or_remote(call, ctx, id, REMOTE_OUTPUT, last, args, &q);
    if (e != NULL && e->log.released && remote.read_exec != NULL &&
        ask_remote(call, ctx, REMOTE_OUTPUT, id, last, NULL, &q, NULL) == 0)
        e = NULL; /* released here (--max-retained-bytes): Redis still has the events */
    else if (e != NULL && events_resume_index(&e->log, last, err, sizeof(err)) < 0) {
        fail(call, err);
        e = NULL;
    } else if (e != NULL && wait && exec_is_active(e)) {
        park(call, e, WAIT_OUTPUT, last, &q);
        e = NULL;
    }
    if (e != NULL)
        answer_output(call, e, last, 0, 0, &q);
    output_query_free(&q);
}

static void tool_list_executions(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *args)
{
    static const char *const known[] = {"workspace_id", NULL};
    char err[300];
    const char *wsid = NULL;
    if (args_check_known(args, known, err, sizeof(err)) != 0 || get_workspace_id(args, &wsid, err, sizeof(err)) != 0) {
        fail(call, err);
        return;
    }
    if (remote.read_session != NULL) {
        struct remote_ctx *rc = xcalloc(1, sizeof(*rc));
        rc->call = call;
        rc->kind = REMOTE_LIST;
        snprintf(rc->id, sizeof(rc->id), "%s", ctx->tenant);
        snprintf(rc->workspace_id, sizeof(rc->workspace_id), "%s", wsid != NULL ? wsid : "");
        if (remote.read_session(ctx->tenant, on_remote, rc) == 0)
            return;
        free(rc); /* busy or stopping: this replica's list alone */
    }
    strbuf_t b = {0};
    strbuf_puts(&b, "{\"executions\":");
    exec_list_json_tenant(ctx->tenant, wsid, &b);
    strbuf_puts(&b, "}");
    reply.result(call, b.data, b.len, 0);
    strbuf_free(&b);
}

/* The handlers, by tool name (the catalogue lists the same seven). */
static const struct tool tools[] = {
    {"execute_code", tool_execute_code},
    {"execute_code_async", tool_execute_code_async},
    {"send_stdin", tool_send_stdin},
    {"cancel_execution", tool_cancel_execution},
    {"list_executions", tool_list_executions},
    {"get_execution_status", tool_get_execution_status},
    {"get_execution_output", tool_get_execution_output},
};
#define N_TOOLS (sizeof(tools) / sizeof(tools[0]))

void tools_set_reply(const tools_reply_t *r)
{
    reply = *r;
}

void tools_set_remote(const remote_reader_t *r)
{
    remote = r != NULL ? *r : (remote_reader_t){0};
}

int tools_call(mcp_call_t *call, const mcp_ctx_t *ctx, const char *name, const cJSON *args)
{
    for (size_t i = 0; i < N_TOOLS; i++)
        if (!strcmp(tools[i].name, name)) {
            reply.set_tool(call, tools[i].name);
            tools[i].fn(call, ctx, args);
            return 0;
        }
    return -1;
}
