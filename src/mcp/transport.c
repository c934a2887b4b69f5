/*
 * mcp: Streamable HTTP at /mcp.
 *
 * POST carries one JSON-RPC message (or, under 2025-03-26, a batch). Each
 * request in it becomes an mcp_call; the calls share one mcp_reply, which is
 * sent when the last call is answered: at once for ping and tools/list, later
 * for a tool that parks (waiting on a run). The reply holds a weak pointer to
 * the h2o request, cleared by a dispose hook in the request's pool, so a call
 * answered after its client went away is simply dropped.
 */
#include "mcp/transport.h"
#include "mcp/modern.h"
#include "mcp/remote.h"
#include "core/config.h"
#include "exec/exec.h"
#include "core/jsonrpc.h"
#include "core/log.h"
#include "core/metrics.h"
#include "mcp/tools.h"
#include "mcp/catalog.h"
#include "core/util.h"

#include <bsd/string.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *const mcp_protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", NULL};
/* what an unsupported MCP-Protocol-Version is told: every version served, newest first */
static const char *const served_versions[] = {MCP_MODERN_VERSION, "2025-11-25", "2025-06-18", "2025-03-26", NULL};
#define MODERN_LIST_TTL_MS 300000
#define SERVER_CAPS "\"capabilities\":{\"tools\":{\"listChanged\":false}}"
#define SERVER_INFO "{\"name\":\"mcp-sandboxd\",\"version\":\"" MCP_SANDBOXD_VERSION "\"}" /* tools/list and server/discover: fixed while the server runs */
#define PROTOCOL_DEFAULT "2025-03-26" /* assumed when MCP-Protocol-Version is absent */
#define MCP_MAX_BATCH 64              /* a batch's answers must not amplify a small body */
#define MCP_MAX_BATCH_REPLY (64u << 20)

typedef struct mcp_reply mcp_reply_t;

struct reply_guard {
    mcp_reply_t *reply; /* NULL once the reply is sent */
};

struct mcp_reply {
    h2o_req_t *req;              /* NULL once the HTTP request died */
    struct reply_guard *guard;   /* in req->pool */
    int sse;                     /* answer as text/event-stream */
    int batch;                   /* answer is a JSON array */
    int modern;                  /* 2026-07-28: results carry resultType and serverInfo, no session */
    int pending;                 /* calls not answered yet (+1 while dispatching) */
    int parked;                  /* counted in n_inflight */
    int n_slots;
    strbuf_t *slots;             /* one response per call */
    size_t bytes;                /* result bytes held in slots (batch cap) */
    int sse_ok;                  /* the client accepts text/event-stream (progress may open a stream) */
    mcp_stream_t *stream;        /* the open SSE stream once a progress notification was sent */
    char session_id[SESSION_ID_LEN + 1]; /* set on the initialize response */
    char principal[PRINCIPAL_NAME_MAX + 1]; /* who sent the request ("" without auth) */
};

struct mcp_call {
    mcp_reply_t *reply;
    int slot;
    char *id_json;
    const char *tool;            /* tools/call: the catalogue name (for metrics) */
    char *progress_token;        /* tools/call: params._meta.progressToken as JSON, or NULL */
};

static mcp_responder_t responder; /* the HTTP server's (mcp_set_responder) */
static int (*resolve_session)(const char *, remote_read_cb, void *); /* adoption; NULL without a cluster */
static size_t n_inflight;

const char *mcp_protocol_negotiate(const char *requested)
{
    if (requested != NULL && mcp_protocol_supported(requested))
        return requested;
    return mcp_protocol_versions[0];
}

int mcp_protocol_supported(const char *v)
{
    for (int i = 0; mcp_protocol_versions[i] != NULL; i++)
        if (!strcmp(v, mcp_protocol_versions[i]))
            return 1;
    return 0;
}

static void on_guard_dispose(void *p)
{
    struct reply_guard *g = p;
    if (g->reply != NULL)
        g->reply->req = NULL;
}

static void reply_free(mcp_reply_t *r)
{
    if (r->stream != NULL) /* the client went away after progress: the stream frees itself */
        responder.stream_end(r->stream, NULL, 0);
    for (int i = 0; i < r->n_slots; i++)
        strbuf_free(&r->slots[i]);
    free(r->slots);
    free(r);
}

/* Sends the assembled answer (if anyone still waits) and frees the reply. */
static void reply_send(mcp_reply_t *r)
{
    if (r->parked) {
        n_inflight--;
        r->parked = 0;
    }
    if (r->req != NULL) {
        r->guard->reply = NULL; /* before responding: the guard lives in the request's pool (http.h) */
        strbuf_t body = {0};
        int any = 0;
        if (r->batch && !r->sse)
            strbuf_puts(&body, "[");
        for (int i = 0; i < r->n_slots; i++) {
            if (r->slots[i].len == 0)
                continue;
            if (r->sse) {
                strbuf_puts(&body, "event: message\ndata: ");
                strbuf_append(&body, r->slots[i].data, r->slots[i].len);
                strbuf_puts(&body, "\n\n");
            } else {
                if (any)
                    strbuf_puts(&body, ",");
                strbuf_append(&body, r->slots[i].data, r->slots[i].len);
            }
            any = 1;
        }
        if (r->batch && !r->sse)
            strbuf_puts(&body, "]");
        size_t len;
        char *data = strbuf_steal(&body, &len);
        if (r->stream != NULL) { /* progress opened the stream: the result is its last event */
            responder.stream_end(r->stream, data, len);
            r->stream = NULL;
            free(data);
        } else if (!any) {
            free(data);
            responder.respond(r->req, 202, "Accepted", NULL, NULL, 0, r->session_id[0] ? r->session_id : NULL);
        } else {
            responder.respond(r->req, 200, "OK", r->sse ? "text/event-stream" : "application/json", data, len,
                         r->session_id[0] ? r->session_id : NULL);
        }
    }
    reply_free(r);
}

static void reply_done_one(mcp_reply_t *r)
{
    if (--r->pending == 0)
        reply_send(r);
}

static void call_finish(mcp_call_t *call)
{
    mcp_reply_t *r = call->reply;
    free(call->progress_token);
    free(call->id_json);
    free(call);
    reply_done_one(r);
}

static void call_result(mcp_call_t *call, const char *result, size_t len);

/*
 * A modern-era result: the result object (ours, so "{...}") with
 * resultType "complete" and the serverInfo in _meta added before its
 * closing brace.
 */
static void modern_decorate(strbuf_t *out, const char *result, size_t len)
{
    while (len > 0 && result[len - 1] != '}')
        len--;
    if (len == 0) { /* not an object: cannot happen with our results; keep it as it is */
        strbuf_append(out, result, strlen(result));
        return;
    }
    strbuf_append(out, result, len - 1);
    size_t i = 1;
    while (i < len - 1 && (result[i] == ' ' || result[i] == '\n'))
        i++;
    strbuf_printf(out, "%s\"resultType\":\"complete\",\"_meta\":{\"io.modelcontextprotocol/serverInfo\":%s}}",
                  i < len - 1 ? "," : "", SERVER_INFO);
}

void mcp_call_set_tool(mcp_call_t *call, const char *tool)
{
    call->tool = tool;
}

void mcp_call_tool_result(mcp_call_t *call, const char *structured, size_t len, int is_error)
{
    mcp_call_tool_result_text(call, structured, len, NULL, 0, is_error);
}

void mcp_call_tool_result_text(mcp_call_t *call, const char *structured, size_t len, const char *text, size_t text_len,
                               int is_error)
{
    if (call->tool != NULL)
        metrics_tool(call->tool, is_error ? "error" : "ok");
    strbuf_t clean = {0};
    if (util_utf8_valid_len(structured, len) != len) { /* e.g. an error message quoting a cut argument name */
        util_utf8_sanitize(structured, len, &clean);
        structured = clean.data;
        len = clean.len;
    }
    strbuf_t res = {0};
    strbuf_puts(&res, "{\"content\":[{\"type\":\"text\",\"text\":");
    strbuf_t clean_text = {0};
    if (text == NULL) {
        text = structured;
        text_len = len;
    } else if (util_utf8_valid_len(text, text_len) != text_len) {
        util_utf8_sanitize(text, text_len, &clean_text);
        text = clean_text.data;
        text_len = clean_text.len;
    }
    if (strbuf_json_utf8(&res, text, text_len) != 0) { /* NUL-terminated JSON, checked (or repaired) above */
        /* the text copy of a huge result would pass STRBUF_JSON_MAX: an error, not an abort */
        strbuf_free(&res);
        strbuf_free(&clean);
        strbuf_free(&clean_text);
        jsonrpc_write_error(&call->reply->slots[call->slot], call->id_json, JSONRPC_INTERNAL_ERROR,
                            "This result would exceed 1 GiB as JSON text: ask for less output at a time "
                            "(get_execution_output with last_event_id)");
        call_finish(call);
        return;
    }
    strbuf_puts(&res, "}],\"structuredContent\":");
    strbuf_append(&res, structured, len);
    strbuf_puts(&res, is_error ? ",\"isError\":true}" : ",\"isError\":false}");
    call_result(call, res.data, res.len);
    strbuf_free(&res);
    strbuf_free(&clean);
    strbuf_free(&clean_text);
}

void mcp_call_error(mcp_call_t *call, int code, const char *message)
{
    if (call->tool != NULL)
        metrics_tool(call->tool, "rpc_error");
    jsonrpc_write_error(&call->reply->slots[call->slot], call->id_json, code, message);
    call_finish(call);
}

/*
 * Stores a call's result. A batch is one small request that may ask for many
 * large outputs: past MCP_MAX_BATCH_REPLY bytes in all, further results are
 * replaced by an error asking for them one at a time.
 */
static void call_result(mcp_call_t *call, const char *result, size_t len)
{
    mcp_reply_t *r = call->reply;
    if (r->modern) {
        r->modern = 0; /* one call per modern reply: decorate once, then store as usual */
        strbuf_t d = {0};
        modern_decorate(&d, result, len);
        call_result(call, d.data, d.len);
        strbuf_free(&d);
        return;
    }
    if (r->batch && r->bytes + len > MCP_MAX_BATCH_REPLY) {
        jsonrpc_write_error(&r->slots[call->slot], call->id_json, JSONRPC_INTERNAL_ERROR,
                            "This batch's answers would exceed 64 MiB: send this request on its own");
    } else {
        jsonrpc_write_result(&r->slots[call->slot], call->id_json, result, len);
        r->bytes += len;
    }
    call_finish(call);
}

int mcp_call_alive(const mcp_call_t *call)
{
    return call->reply->req != NULL && (call->reply->stream == NULL || responder.stream_alive(call->reply->stream));
}

int mcp_call_wants_progress(const mcp_call_t *call)
{
    const mcp_reply_t *r = call->reply;
    return call->progress_token != NULL && !r->batch && r->sse_ok && r->req != NULL && responder.stream_start != NULL;
}

/*
 * Sends notifications/progress for a call that carried a progress token:
 * the first one turns the answer into an SSE stream (the result follows on it).
 */
void mcp_call_progress(mcp_call_t *call, double progress, const char *message)
{
    mcp_reply_t *r = call->reply;
    if (!mcp_call_wants_progress(call) || (r->stream != NULL && !responder.stream_alive(r->stream)))
        return;
    if (r->stream == NULL) {
        r->stream = responder.stream_start(r->req, "text/event-stream", r->session_id[0] ? r->session_id : NULL);
        r->sse = 1;
    }
    strbuf_t b = {0};
    strbuf_printf(&b, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":"
                      "{\"progressToken\":%s,\"progress\":%.0f",
                  call->progress_token, progress);
    if (message != NULL) {
        strbuf_puts(&b, ",\"message\":");
        strbuf_json_cstr(&b, message);
    }
    strbuf_puts(&b, "}}\n\n");
    responder.stream_send(r->stream, b.data, b.len);
    strbuf_free(&b);
}

void mcp_set_responder(const mcp_responder_t *r)
{
    responder = *r;
}

/* A request header by lowercase name; its value or NULL. */
static const h2o_iovec_t *header_value(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i < 0 ? NULL : &req->headers.entries[i].value;
}

/* The transport's answers to tools (tools_set_reply at startup). */
const tools_reply_t mcp_tools_reply = {.result = mcp_call_tool_result,
                                       .progress = mcp_call_progress,
                                       .wants_progress = mcp_call_wants_progress,
                                       .result_text = mcp_call_tool_result_text,
                                       .error = mcp_call_error,
                                       .alive = mcp_call_alive,
                                       .set_tool = mcp_call_set_tool};

void mcp_set_session_resolver(int (*resolve)(const char *session_id, remote_read_cb cb, void *arg))
{
    resolve_session = resolve;
}

void mcp_metrics(strbuf_t *out)
{
    metrics_gauge(out, "sessions", "Live MCP sessions held by this replica.", (double)session_count());
    metrics_gauge(out, "requests_waiting", "HTTP requests parked waiting for an answer.", (double)n_inflight);
    metrics_gauge(out, "workspaces", "Live workspaces (sessions' defaults and handles) held by this replica.",
                  (double)workspace_count());
}

void mcp_health(cJSON *h)
{
    cJSON_AddNumberToObject(h, "sessions", (double)session_count());
}

size_t mcp_inflight(void)
{
    return n_inflight;
}

/* ---------------------------------------------------------------- header rules */

static int iov_eq(const h2o_iovec_t *v, const char *s)
{
    size_t l = strlen(s);
    return v->len == l && strncasecmp(v->base, s, l) == 0;
}

/* Decides from Accept whether we may answer JSON (1), only SSE (2), or neither (0); | 4 when JSON and SSE both are. */
static int accept_kind(h2o_req_t *req)
{
    const h2o_iovec_t *acc = header_value(req, "accept");
    if (acc == NULL)
        return 1;
    int json = 0, sse = 0;
    const char *p = acc->base, *end = acc->base + acc->len;
    while (p < end) {
        while (p < end && (*p == ' ' || *p == ','))
            p++;
        const char *start = p;
        while (p < end && *p != ',' && *p != ';' && *p != ' ')
            p++;
        h2o_iovec_t type = h2o_iovec_init(start, (size_t)(p - start));
        const char *params = p;
        while (p < end && *p != ',')
            p++;
        /* "q=0" means "not acceptable" */
        const char *q = memmem(params, (size_t)(p - params), "q=0", 3);
        if (q != NULL && (q + 3 == p || q[3] == ' ' || q[3] == ';' || (q[3] == '.' && strspn(q + 4, "0") >= (size_t)(p - q - 4))))
            continue;
        if (iov_eq(&type, "*/*"))
            json = sse = 1;
        else if (iov_eq(&type, "application/json") || iov_eq(&type, "application/*"))
            json = 1;
        else if (iov_eq(&type, "text/event-stream") || iov_eq(&type, "text/*"))
            sse = 1;
    }
    return (json ? 1 : sse ? 2 : 0) | (json && sse ? 4 : 0);
}

static int content_type_is_json(h2o_req_t *req)
{
    const h2o_iovec_t *ct = header_value(req, "content-type");
    if (ct == NULL)
        return 0;
    size_t l = 0;
    while (l < ct->len && ct->base[l] != ';' && ct->base[l] != ' ')
        l++;
    h2o_iovec_t type = h2o_iovec_init(ct->base, l);
    return iov_eq(&type, "application/json");
}

/* Copies a header value into a NUL-terminated buffer; 0 when absent. */
static int header_str(h2o_req_t *req, const char *name, char *buf, size_t len)
{
    const h2o_iovec_t *v = header_value(req, name);
    if (v == NULL)
        return 0;
    size_t n = v->len < len - 1 ? v->len : len - 1;
    memcpy(buf, v->base, n);
    buf[n] = '\0';
    return 1;
}

/* ---------------------------------------------------------------- methods */

static const char *instructions =
    "Runs shell commands inside a bubblewrap sandbox. execute_code runs a command and waits for it "
    "(or returns at once with wait_for_completion=false); execute_code_async starts it; poll with "
    "get_execution_output (pass last_event_id to get only new events), feed interactive runs with send_stdin, "
    "stop them with cancel_execution. Each session has its own writable workspace, kept across its runs; "
    "execute_code returns its workspace_id, which any later call (from any session with the same token) may pass "
    "to run there again.";

/* Ends an initialize / server/discover result with the instructions, and answers the call with it. */
static void answer_with_instructions(mcp_call_t *call, strbuf_t *b)
{
    strbuf_puts(b, ",\"instructions\":");
    strbuf_json_cstr(b, instructions);
    strbuf_puts(b, "}");
    call_result(call, b->data, b->len);
    strbuf_free(b);
}

static void do_initialize(mcp_call_t *call, mcp_reply_t *r, const cJSON *params)
{
    const cJSON *pv = params != NULL ? cJSON_GetObjectItemCaseSensitive(params, "protocolVersion") : NULL;
    if (!cJSON_IsString(pv)) {
        mcp_call_error(call, JSONRPC_INVALID_PARAMS, "Invalid params: initialize needs a string \"protocolVersion\"");
        return;
    }
    const char *version = mcp_protocol_negotiate(pv->valuestring);
    const cJSON *ci = cJSON_GetObjectItemCaseSensitive(params, "clientInfo");
    const cJSON *cname = cJSON_IsObject(ci) ? cJSON_GetObjectItemCaseSensitive(ci, "name") : NULL;
    /* without auth each session is its own owner: the per-principal cap has nobody to count */
    session_t *s = session_create(version, cJSON_IsString(cname) ? cname->valuestring : NULL, r->principal,
                                  r->principal[0] != '\0' ? (size_t)config.max_sessions_principal : 0);
    if (s == NULL) {
        mcp_call_error(call, JSONRPC_INTERNAL_ERROR,
                       session_count() >= (size_t)config.max_sessions
                           ? "Too many sessions: the server's --max-sessions limit is reached"
                           : "Too many sessions: this principal's --max-sessions-per-principal limit is reached");
        return;
    }
    memcpy(r->session_id, s->id, sizeof(r->session_id));
    strbuf_t b = {0};
    strbuf_printf(&b, "{\"protocolVersion\":\"%s\"," SERVER_CAPS ",\"serverInfo\":" SERVER_INFO, version);
    answer_with_instructions(call, &b);
}

/*
 * params._meta.progressToken when a notification can echo it (a string of at
 * most 256 bytes, or a number), else NULL. Both eras carry it there.
 */
static const cJSON *meta_progress_token(const cJSON *meta)
{
    const cJSON *token = cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "progressToken") : NULL;
    if ((cJSON_IsString(token) && strlen(token->valuestring) <= 256) || cJSON_IsNumber(token))
        return token;
    return NULL;
}

/* tools/call in either era: the name and arguments checked, then the tool. */
static void do_tools_call_ctx(mcp_call_t *call, const mcp_ctx_t *ctx, const cJSON *params)
{
    const cJSON *name = params != NULL ? cJSON_GetObjectItemCaseSensitive(params, "name") : NULL;
    if (!cJSON_IsString(name)) {
        mcp_call_error(call, JSONRPC_INVALID_PARAMS, "Invalid params: tools/call needs a string \"name\"");
        return;
    }
    const cJSON *args = cJSON_GetObjectItemCaseSensitive(params, "arguments");
    if (ctx->progress_token != NULL) /* the call outlives ctx: notifications echo this copy */
        call->progress_token = cJSON_PrintUnformatted(ctx->progress_token);
    cJSON *empty = NULL;
    if (args == NULL || cJSON_IsNull(args)) {
        args = empty = cJSON_CreateObject();
    } else if (!cJSON_IsObject(args)) {
        mcp_call_error(call, JSONRPC_INVALID_PARAMS, "Invalid params: \"arguments\" must be an object");
        return;
    }
    if (tools_call(call, ctx, name->valuestring, args) != 0) {
        metrics_tool("unknown", "rpc_error");
        char msg[160];
        snprintf(msg, sizeof(msg), "Unknown tool: %.100s", name->valuestring);
        mcp_call_error(call, JSONRPC_INVALID_PARAMS, msg);
    }
    cJSON_Delete(empty);
}

/* tools/list: the one page, in the catalogue's fixed order; `cache` adds ttlMs and cacheScope (2026-07-28). */
static void do_tools_list(mcp_call_t *call, const cJSON *params, int cache)
{
    const cJSON *cursor = params != NULL ? cJSON_GetObjectItemCaseSensitive(params, "cursor") : NULL;
    if (cursor != NULL && !cJSON_IsNull(cursor)) {
        mcp_call_error(call, JSONRPC_INVALID_PARAMS, "Invalid params: unknown cursor (the tool list has one page)");
        return;
    }
    size_t len;
    const char *list = catalog_list_json(&len);
    if (!cache) {
        call_result(call, list, len);
        return;
    }
    strbuf_t b = {0};
    strbuf_append(&b, list, len - 1); /* without the closing brace */
    strbuf_printf(&b, ",\"ttlMs\":%d,\"cacheScope\":\"public\"}", MODERN_LIST_TTL_MS);
    call_result(call, b.data, b.len);
    strbuf_free(&b);
}

/* server/discover: the versions served, capabilities, serverInfo and instructions. */
static void do_discover(mcp_call_t *call)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "{\"supportedVersions\":[");
    for (int i = 0; served_versions[i] != NULL; i++)
        strbuf_printf(&b, "%s\"%s\"", i ? "," : "", served_versions[i]);
    strbuf_printf(&b, "]," SERVER_CAPS ",\"serverInfo\":" SERVER_INFO ",\"ttlMs\":%d,\"cacheScope\":\"public\"",
                  MODERN_LIST_TTL_MS);
    answer_with_instructions(call, &b);
}

/*
 * tools/call in the modern era: no session. The tenant is the principal, or
 * without auth (loopback, or --insecure-no-auth) the one anonymous tenant; a
 * run without workspace_id gets a new workspace (tools: run_workspace), and
 * executions are then found by tenant and id from any call.
 */
static void modern_tools_call(mcp_call_t *call, const cJSON *params)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
    const char *principal = call->reply->principal[0] != '\0' ? call->reply->principal : NULL;
    mcp_ctx_t ctx = {.era = MCP_ERA_MODERN, .meta = meta, .principal = principal};
    ctx.tenant = principal != NULL ? principal : MCP_ANON_TENANT;
    ctx.progress_token = meta_progress_token(meta);
    do_tools_call_ctx(call, &ctx, params);
}

/* One modern-era request whose headers and _meta were checked (modern_check). */
static void modern_dispatch(mcp_call_t *call, const jsonrpc_msg_t *m)
{
    if (!strcmp(m->method, "server/discover"))
        do_discover(call);
    else if (!strcmp(m->method, "tools/list"))
        do_tools_list(call, m->params, 1);
    else
        modern_tools_call(call, m->params);
}

/* tools/call in a legacy session. */
static void do_tools_call(mcp_call_t *call, session_t *s, const cJSON *params)
{
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(params, "_meta");
    mcp_ctx_t ctx = {.session = s, .era = MCP_ERA_LEGACY, .meta = cJSON_IsObject(meta) ? meta : NULL};
    ctx.principal = s->principal[0] != '\0' ? s->principal : NULL;
    ctx.tenant = s->tenant;
    ctx.ws = s->ws;
    ctx.progress_token = meta_progress_token(meta);
    do_tools_call_ctx(call, &ctx, params);
}

/* Dispatches one request; `s` is NULL only for initialize (and in the modern era). */
static void dispatch(mcp_call_t *call, mcp_reply_t *r, session_t *s, const jsonrpc_msg_t *m)
{
    if (r->modern) {
        modern_dispatch(call, m);
    } else if (!strcmp(m->method, "initialize")) {
        if (r->batch)
            mcp_call_error(call, JSONRPC_INVALID_REQUEST, "Invalid Request: initialize must not be part of a batch");
        else
            do_initialize(call, r, m->params);
    } else if (s == NULL) {
        mcp_call_error(call, JSONRPC_INVALID_REQUEST, "Invalid Request: the session is not initialized");
    } else if (!strcmp(m->method, "ping")) {
        call_result(call, "{}", 2);
    } else if (!strcmp(m->method, "tools/list")) {
        do_tools_list(call, m->params, 0);
    } else if (!strcmp(m->method, "tools/call")) {
        if (m->params == NULL || !cJSON_IsObject(m->params)) {
            mcp_call_error(call, JSONRPC_INVALID_PARAMS, "Invalid params: tools/call needs an object with \"name\"");
            return;
        }
        do_tools_call(call, s, m->params);
    } else {
        char msg[160];
        snprintf(msg, sizeof(msg), "Method not found: %.100s", m->method);
        mcp_call_error(call, JSONRPC_METHOD_NOT_FOUND, msg);
    }
}

/* cJSON ends strings at NUL, so an id or argument holding \u0000 would silently change: refuse it. */
static int has_escaped_nul(const char *p, size_t len)
{
    for (const char *q = p; (q = memmem(q, len - (size_t)(q - p), "\\u0000", 6)) != NULL; q += 6) {
        size_t backslashes = 0;
        while (q - (ssize_t)backslashes > p && q[-1 - (ssize_t)backslashes] == '\\')
            backslashes++;
        if (backslashes % 2 == 0) /* the backslash of \u0000 is not itself escaped */
            return 1;
    }
    return 0;
}

static int only_whitespace(const char *p, const char *end)
{
    for (; p != NULL && p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\0')
            return 0;
    return 1;
}

/* Has any element of the body the method "initialize"? */
static int is_initialize(const cJSON *msg)
{
    const cJSON *m = cJSON_IsObject(msg) ? cJSON_GetObjectItemCaseSensitive(msg, "method") : NULL;
    return cJSON_IsString(m) && !strcmp(m->valuestring, "initialize");
}

/* Does the body hold a JSON-RPC request (an id and a method), not only notifications or responses? */
static int has_request(const cJSON *body, int batch)
{
    int n = batch ? cJSON_GetArraySize(body) : 1;
    for (int i = 0; i < n; i++) {
        const cJSON *m = batch ? cJSON_GetArrayItem(body, i) : body;
        if (cJSON_IsObject(m) && cJSON_GetObjectItemCaseSensitive(m, "method") != NULL &&
            cJSON_GetObjectItemCaseSensitive(m, "id") != NULL)
            return 1;
    }
    return 0;
}

/* ---------------------------------------------------------------- adoption */

/*
 * A request names a session this replica does not hold. In a cluster the
 * session may live on another replica (the client's affinity moved, or its
 * replica died): its record mcp:session:{id} in Redis says so, and the
 * session is adopted here before the request runs again.
 */
typedef struct adopt adopt_t;
struct adopt_guard {
    adopt_t *a; /* NULL once the read answered */
};
struct adopt {
    h2o_req_t *req;              /* NULL once the HTTP request died */
    struct adopt_guard *guard;   /* in req->pool */
    char id[SESSION_ID_LEN + 1];
    char principal[PRINCIPAL_NAME_MAX + 1]; /* who sent the request ("" without auth) */
};

static void on_adopt_guard_dispose(void *p)
{
    struct adopt_guard *g = p;
    if (g->a != NULL)
        g->a->req = NULL;
}

static void on_adopt_read(void *arg, int found, const char *meta, size_t meta_len, const char *events, size_t events_len,
                          const char *err)
{
    adopt_t *a = arg;
    h2o_req_t *req = a->req;
    n_inflight--;
    if (req == NULL) {
        free(a);
        return;
    }
    a->guard->a = NULL;
    session_t *s = session_find(a->id); /* a request that raced this one may have adopted it */
    if (s == NULL && found) {
        cJSON *rec = cJSON_ParseWithLength(meta, meta_len);
        const cJSON *proto = cJSON_GetObjectItemCaseSensitive(rec, "protocol");
        const cJSON *client = cJSON_GetObjectItemCaseSensitive(rec, "client");
        const cJSON *from = cJSON_GetObjectItemCaseSensitive(rec, "replica");
        const cJSON *owner = cJSON_GetObjectItemCaseSensitive(rec, "principal");
        /* another principal's session is not found, exactly as an unknown one */
        found = !strcmp(cJSON_IsString(owner) ? owner->valuestring : "", a->principal);
        const char *version = cJSON_IsString(proto) && mcp_protocol_supported(proto->valuestring) ? proto->valuestring
                                                                                                  : PROTOCOL_DEFAULT;
        s = found ? session_adopt(a->id, version, cJSON_IsString(client) ? client->valuestring : NULL, a->principal)
                  : NULL;
        if (s != NULL) {
            log_info("session %.8s adopted from replica %s", s->id, cJSON_IsString(from) ? from->valuestring : "?");
        }
        cJSON_Delete(rec);
    }
    if (s != NULL && session_usable(s, a->principal)) {
        char principal[PRINCIPAL_NAME_MAX + 1];
        memcpy(principal, a->principal, sizeof(principal));
        free(a);
        mcp_handle(req, principal[0] ? principal : NULL);
        return;
    }
    if (err != NULL) {
        char msg[400];
        snprintf(msg, sizeof(msg), "Service Unavailable: session not held by this replica and Redis could not be read (%.200s)", err);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        responder.respond_error(req, 503, "Service Unavailable", JSONRPC_SERVER_ERROR, msg);
    } else if (found) {
        responder.respond_error(req, 503, "Service Unavailable", JSONRPC_SERVER_ERROR,
                                   "Service Unavailable: too many sessions (--max-sessions) to adopt this one here");
    } else {
        responder.respond_error(req, 404, "Not Found", JSONRPC_SESSION_NOT_FOUND,
                                   "Session not found: it expired or was terminated; initialize a new one");
    }
    free(a);
}

/*
 * Asks Redis whether another replica holds session `sid`. Returns 1 when the
 * request is taken care of (answered now or after the read), 0 when there is
 * nobody to ask (the caller answers 404).
 */
static int try_adopt(h2o_req_t *req, const char *sid, const char *principal)
{
    if (resolve_session == NULL || !session_id_valid(sid))
        return 0;
    adopt_t *a = xcalloc(1, sizeof(*a));
    a->req = req;
    memcpy(a->id, sid, sizeof(a->id));
    strlcpy(a->principal, principal != NULL ? principal : "", sizeof(a->principal));
    int rc = resolve_session(sid, on_adopt_read, a);
    if (rc == -2) {
        free(a);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_RETRY_AFTER, NULL, H2O_STRLIT("1"));
        responder.respond_error(req, 503, "Service Unavailable", JSONRPC_SERVER_ERROR,
                                   "Service Unavailable: session not held by this replica and too many Redis reads are waiting");
        return 1;
    }
    if (rc != 0) {
        free(a);
        return 0;
    }
    a->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*a->guard), on_adopt_guard_dispose);
    a->guard->a = a;
    n_inflight++;
    return 1;
}

/* The headers of a POST: Accept (kind 1: JSON, 2: SSE) and Content-Type. Returns the kind, or 0 when answered. */
static int post_headers_check(h2o_req_t *req)
{
    int kind = accept_kind(req);
    if (kind == 0) {
        responder.respond_error(req, 406, "Not Acceptable", JSONRPC_SERVER_ERROR,
                                "Not Acceptable: Accept must allow application/json or text/event-stream");
        return 0;
    }
    if (!content_type_is_json(req)) {
        responder.respond_error(req, 415, "Unsupported Media Type", JSONRPC_SERVER_ERROR,
                                "Unsupported Media Type: Content-Type must be application/json");
        return 0;
    }
    return kind;
}

/* A JSON-RPC error carrying the request's id (JSON text) and optional `data` (JSON text), no session. */
static void respond_rpc_error(h2o_req_t *req, int status, const char *id_json, int code, const char *message,
                              const char *data)
{
    strbuf_t b = {0};
    jsonrpc_write_error(&b, id_json, code, message);
    if (data != NULL) { /* into the error object: before its two closing braces */
        b.len -= 2;
        strbuf_puts(&b, ",\"data\":");
        strbuf_puts(&b, data);
        strbuf_puts(&b, "}}");
    }
    size_t len;
    char *body = strbuf_steal(&b, &len);
    responder.respond(req, status, status == 404 ? "Not Found" : status == 400 ? "Bad Request" : "OK",
                      "application/json", body, len, NULL);
}

/* The id of a single (non-batch) body as JSON text (malloc'd; "null" when absent). */
static char *body_id_json(const cJSON *body)
{
    const cJSON *id = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "id") : NULL;
    return jsonrpc_id_json(cJSON_IsString(id) || cJSON_IsNumber(id) ? id : NULL);
}

/* An MCP-Protocol-Version this server does not serve: 400 -32022 with the supported versions in data. */
static void respond_unsupported_version(h2o_req_t *req, const cJSON *body, const char *version)
{
    cJSON *data = cJSON_CreateObject();
    cJSON *list = cJSON_AddArrayToObject(data, "supported");
    for (int i = 0; served_versions[i] != NULL; i++)
        cJSON_AddItemToArray(list, cJSON_CreateString(served_versions[i]));
    strbuf_t clean = {0}; /* the header may hold bytes 0x80-0xff: quoted back as U+FFFD, never raw */
    util_utf8_sanitize(version, strlen(version), &clean);
    cJSON_AddStringToObject(data, "requested", clean.data);
    char *data_json = cJSON_PrintUnformatted(data);
    char msg[240], *id = body_id_json(body);
    snprintf(msg, sizeof(msg), "Bad Request: unsupported MCP-Protocol-Version '%.80s' (supported: %s, %s, %s, %s)",
             clean.data, served_versions[0], served_versions[1], served_versions[2], served_versions[3]);
    strbuf_free(&clean);
    respond_rpc_error(req, 400, id, MCP_UNSUPPORTED_VERSION, msg, data_json);
    free(id);
    free(data_json);
    cJSON_Delete(data);
}

/*
 * The body as JSON: not empty, no NUL byte, valid UTF-8 (RFC 8259 8.1:
 * nothing else may be echoed back), no escaped NUL, one JSON value. NULL when
 * the request was answered with an error.
 */
static cJSON *post_body_parse(h2o_req_t *req)
{
    if (req->entity.base == NULL || req->entity.len == 0) {
        responder.respond_error(req, 400, "Bad Request", JSONRPC_PARSE_ERROR, "Parse error: empty request body");
        return NULL;
    }
    if (memchr(req->entity.base, '\0', req->entity.len) != NULL) {
        responder.respond_error(req, 400, "Bad Request", JSONRPC_PARSE_ERROR, "Parse error: the body holds a NUL byte");
        return NULL;
    }
    size_t valid = util_utf8_valid_len(req->entity.base, req->entity.len);
    if (valid != req->entity.len) {
        char msg[120];
        snprintf(msg, sizeof(msg), "Parse error: the body is not valid UTF-8 (at byte %zu)", valid);
        responder.respond_error(req, 400, "Bad Request", JSONRPC_PARSE_ERROR, msg);
        return NULL;
    }
    if (has_escaped_nul(req->entity.base, req->entity.len)) {
        /* valid JSON, but not representable here: an invalid request, like other unusable shapes */
        responder.respond_error(req, 200, "OK", JSONRPC_INVALID_REQUEST,
                                "Invalid Request: strings containing \\u0000 are not supported");
        return NULL;
    }
    const char *end = NULL;
    cJSON *body = cJSON_ParseWithLengthOpts(req->entity.base, req->entity.len, &end, 0);
    if (body == NULL || !only_whitespace(end, req->entity.base + req->entity.len)) {
        cJSON_Delete(body);
        responder.respond_error(req, 400, "Bad Request", JSONRPC_PARSE_ERROR,
                                body == NULL ? "Parse error: the body is not valid JSON"
                                             : "Parse error: unexpected data after the JSON value");
        return NULL;
    }
    return body;
}

/*
 * The session a POST runs in: none for a lone initialize; otherwise the one
 * Mcp-Session-Id names (held here, or adopted from another replica, which
 * answers later). Returns 0 with *s set (NULL for initialize), or -1 when the
 * request was answered (or is being answered by the adoption).
 */
static int post_session(h2o_req_t *req, const cJSON *body, int batch, const char *version, int has_version,
                        const char *principal, session_t **s)
{
    *s = NULL;
    if (!batch && is_initialize(body))
        return 0;
    char sid[SESSION_ID_LEN + 8];
    if (!header_str(req, "mcp-session-id", sid, sizeof(sid))) {
        responder.respond_error(req, 400, "Bad Request", JSONRPC_SERVER_ERROR,
                                "Bad Request: Mcp-Session-Id header is required (call initialize first)");
        return -1;
    }
    if ((*s = session_find(sid)) == NULL || !session_usable(*s, principal)) {
        if (*s != NULL || !try_adopt(req, sid, principal))
            responder.respond_error(req, 404, "Not Found", JSONRPC_SESSION_NOT_FOUND,
                                    "Session not found: it expired or was terminated; initialize a new one");
        return -1;
    }
    session_touch(*s);
    if (has_request(body, batch))
        session_note_request(*s);
    const char *effective = has_version ? version : PROTOCOL_DEFAULT; /* absent means 2025-03-26 */
    if (batch && strcmp(effective, "2025-03-26") != 0) {
        char msg[160];
        snprintf(msg, sizeof(msg), "Invalid Request: batches are not supported in protocol version %s", effective);
        responder.respond_error(req, 400, "Bad Request", JSONRPC_INVALID_REQUEST, msg);
        return -1;
    }
    return 0;
}

/* Runs every message of the body; the reply goes out once the last call is answered (now or later). */
static void post_run(h2o_req_t *req, const cJSON *body, int batch, int n, int kind, session_t *s, const char *principal,
                     int modern)
{
    mcp_reply_t *r = xcalloc(1, sizeof(*r));
    strlcpy(r->principal, principal != NULL ? principal : "", sizeof(r->principal));
    r->req = req;
    r->modern = modern;
    r->sse = kind == 2;
    r->sse_ok = kind == 2 || (kind & 4);
    r->batch = batch;
    r->n_slots = n;
    r->slots = xcalloc((size_t)n, sizeof(strbuf_t));
    r->pending = 1;
    r->guard = h2o_mem_alloc_shared(&req->pool, sizeof(*r->guard), on_guard_dispose);
    r->guard->reply = r;
    for (int i = 0; i < n; i++) {
        const cJSON *msg = batch ? cJSON_GetArrayItem(body, i) : body;
        jsonrpc_msg_t m;
        jsonrpc_classify(msg, &m);
        if (m.kind == JSONRPC_NOTIFICATION || m.kind == JSONRPC_RESPONSE) {
            if (m.kind == JSONRPC_NOTIFICATION)
                log_debug("notification %s", m.method);
            continue;
        }
        mcp_call_t *call = xcalloc(1, sizeof(*call));
        call->reply = r;
        call->slot = i;
        call->id_json = jsonrpc_id_json(m.id);
        r->pending++;
        if (m.kind == JSONRPC_INVALID)
            mcp_call_error(call, JSONRPC_INVALID_REQUEST, m.why);
        else
            dispatch(call, r, s, &m);
    }
    if (r->pending > 1 && !r->parked) {
        r->parked = 1;
        n_inflight++;
    }
    reply_done_one(r);
}

/*
 * A 2026-07-28 request: one message, no session. Checked in the order the
 * revision gives (shape, method, standard headers, _meta, tool parameters),
 * every refusal carrying the request's id.
 */
static void modern_post(h2o_req_t *req, const cJSON *body, int kind, const char *version, const char *principal)
{
    if (cJSON_IsArray(body)) {
        respond_rpc_error(req, 400, "null", JSONRPC_INVALID_REQUEST,
                          "Invalid Request: batches are not part of protocol version " MCP_MODERN_VERSION, NULL);
        return;
    }
    jsonrpc_msg_t m;
    jsonrpc_classify(body, &m);
    if (m.kind == JSONRPC_NOTIFICATION || m.kind == JSONRPC_RESPONSE) {
        responder.respond(req, 202, "Accepted", NULL, NULL, 0, NULL);
        return;
    }
    char *id = jsonrpc_id_json(m.id);
    modern_fault_t f;
    if (m.kind == JSONRPC_INVALID) {
        respond_rpc_error(req, 400, id, JSONRPC_INVALID_REQUEST, m.why, NULL);
    } else if (strcmp(m.method, "server/discover") != 0 && strcmp(m.method, "tools/list") != 0 &&
               strcmp(m.method, "tools/call") != 0) {
        char msg[200];
        snprintf(msg, sizeof(msg), "Method not found: %.100s (not served in protocol version %s)", m.method,
                 MCP_MODERN_VERSION);
        respond_rpc_error(req, 404, id, JSONRPC_METHOD_NOT_FOUND, msg, NULL);
    } else {
        const cJSON *name = cJSON_IsObject(m.params) ? cJSON_GetObjectItemCaseSensitive(m.params, "name") : NULL;
        const cJSON *schema = cJSON_IsString(name) ? catalog_input_schema(name->valuestring) : NULL;
        if (modern_check(req, &m, version, schema, &f) != 0)
            respond_rpc_error(req, f.status, id, f.code, f.message, NULL);
        else
            post_run(req, body, 0, 1, kind, NULL, principal, 1);
    }
    free(id);
}

/* A legacy body whose _meta names a protocol version other than the header's: 400 -32020. */
static int legacy_meta_mismatch(h2o_req_t *req, const cJSON *body, const char *version)
{
    const cJSON *params = cJSON_IsObject(body) ? cJSON_GetObjectItemCaseSensitive(body, "params") : NULL;
    const cJSON *meta = cJSON_IsObject(params) ? cJSON_GetObjectItemCaseSensitive(params, "_meta") : NULL;
    const cJSON *pv = cJSON_IsObject(meta) ? cJSON_GetObjectItemCaseSensitive(meta, "io.modelcontextprotocol/protocolVersion") : NULL;
    if (!cJSON_IsString(pv) || !strcmp(pv->valuestring, version))
        return 0;
    char msg[200], *id = body_id_json(body);
    snprintf(msg, sizeof(msg), "Header mismatch: MCP-Protocol-Version '%.40s' does not match _meta protocolVersion '%.40s'",
             version, pv->valuestring);
    respond_rpc_error(req, 400, id, MCP_HEADER_MISMATCH, msg, NULL);
    free(id);
    return 1;
}

/* POST /mcp: headers, body, then the era: modern (no session) or legacy (session, then the messages). */
static int handle_post(h2o_req_t *req, const char *principal)
{
    char version[40];
    int kind = post_headers_check(req);
    cJSON *body = kind != 0 ? post_body_parse(req) : NULL;
    if (body == NULL)
        return 0;
    int has_version = header_str(req, "mcp-protocol-version", version, sizeof(version));
    int batch = cJSON_IsArray(body);
    int n = batch ? cJSON_GetArraySize(body) : 1;
    session_t *s = NULL;
    if (has_version && !strcmp(version, MCP_MODERN_VERSION)) {
        modern_post(req, body, kind, version, principal);
    } else if (has_version && !mcp_protocol_supported(version)) {
        respond_unsupported_version(req, body, version);
    } else if (has_version && legacy_meta_mismatch(req, body, version)) {
        /* answered */
    } else if (batch && (n == 0 || n > MCP_MAX_BATCH)) {
        char msg[120];
        snprintf(msg, sizeof(msg), "Invalid Request: a batch must hold 1 to %d messages", MCP_MAX_BATCH);
        responder.respond_error(req, 400, "Bad Request", JSONRPC_INVALID_REQUEST, msg);
    } else if (post_session(req, body, batch, version, has_version, principal, &s) == 0) {
        post_run(req, body, batch, n, kind, s, principal, 0);
    }
    cJSON_Delete(body);
    return 0;
}

static int handle_delete(h2o_req_t *req, const char *principal)
{
    char sid[SESSION_ID_LEN + 8];
    if (!header_str(req, "mcp-session-id", sid, sizeof(sid))) {
        responder.respond_error(req, 400, "Bad Request", JSONRPC_SERVER_ERROR, "Bad Request: Mcp-Session-Id header is required");
        return 0;
    }
    session_t *s = session_find(sid);
    if (s == NULL || !session_usable(s, principal)) {
        if (s != NULL || !try_adopt(req, sid, principal))
            responder.respond_error(req, 404, "Not Found", JSONRPC_SESSION_NOT_FOUND, "Session not found");
        return 0;
    }
    session_end(s, SESSION_DELETED);
    responder.respond(req, 200, "OK", NULL, NULL, 0, NULL);
    return 0;
}

int mcp_handle(h2o_req_t *req, const char *principal)
{
    exec_log_manager_use();
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("POST")))
        return handle_post(req, principal);
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("DELETE")))
        return handle_delete(req, principal);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("POST, DELETE"));
    responder.respond_error(req, 405, "Method Not Allowed", JSONRPC_SERVER_ERROR,
                               h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET"))
                                   ? "Method Not Allowed: this server does not offer a GET stream; use POST"
                                   : "Method Not Allowed: /mcp takes POST and DELETE");
    return 0;
}
