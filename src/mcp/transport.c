/*
 * mcp: Streamable HTTP at /mcp.
 *
 * POST carries one JSON-RPC message (or, under 2025-03-26, a batch). Each
 * request in it becomes an mcp_call; the calls share one mcp_reply
 * (mcp/reply.c), which is sent when the last call is answered: at once for
 * ping and tools/list, later for a tool that parks (waiting on a run).
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
#define PROTOCOL_DEFAULT "2025-03-26" /* assumed when MCP-Protocol-Version is absent */
#define MCP_MAX_BATCH 64              /* a batch's answers must not amplify a small body */

static mcp_responder_t responder; /* the HTTP server's (mcp_set_responder) */
static int (*resolve_session)(const char *, remote_read_cb, void *); /* adoption; NULL without a cluster */

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

void mcp_set_responder(const mcp_responder_t *r)
{
    responder = *r;
    reply_set_responder(r);
}

/* A request header by lowercase name; its value or NULL. */
static const h2o_iovec_t *header_value(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i < 0 ? NULL : &req->headers.entries[i].value;
}

void mcp_set_session_resolver(int (*resolve)(const char *session_id, remote_read_cb cb, void *arg))
{
    resolve_session = resolve;
}

void mcp_metrics(strbuf_t *out)
{
    metrics_gauge(out, "sessions", "Live MCP sessions held by this replica.", (double)session_count());
    metrics_gauge(out, "requests_waiting", "HTTP requests parked waiting for an answer.", (double)reply_inflight());
    metrics_gauge(out, "workspaces", "Live workspaces (sessions' defaults and handles) held by this replica.",
                  (double)workspace_count());
}

void mcp_health(cJSON *h)
{
    cJSON_AddNumberToObject(h, "sessions", (double)session_count());
}

size_t mcp_inflight(void)
{
    return reply_inflight();
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
    "Runs shell commands in a sandbox (bubblewrap, a cgroup per run; network only through the server's egress "
    "proxy, under the operator's rules). execute_code runs a command and waits for it "
    "(wait_for_completion=false returns at once); execute_code_async starts it. Each answer names an "
    "execution_id and a workspace_id: these handles are all later calls need, from any session or connection "
    "with the same credentials. Poll with get_execution_output (last_event_id: only newer events; head, tail, "
    "grep and max_output_chars: part of a long output; a cut answer says what it left out), feed a run with "
    "send_stdin, stop it with cancel_execution, list yours with list_executions. Pass workspace_id to run "
    "again among the same files: without it, a session (protocol 2025-*) reuses its own workspace and a "
    "sessionless request (2026-07-28) gets a new one. Idle workspaces expire with their files.";

/* Ends an initialize / server/discover result with the instructions, and answers the call with it. */
static void answer_with_instructions(mcp_call_t *call, strbuf_t *b)
{
    strbuf_puts(b, ",\"instructions\":");
    strbuf_json_cstr(b, instructions);
    strbuf_puts(b, "}");
    reply_call_result(call, b->data, b->len);
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
    strbuf_printf(&b, "{\"protocolVersion\":\"%s\"," SERVER_CAPS ",\"serverInfo\":" MCP_SERVER_INFO, version);
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
        reply_call_result(call, list, len);
        return;
    }
    strbuf_t b = {0};
    strbuf_append(&b, list, len - 1); /* without the closing brace */
    strbuf_printf(&b, ",\"ttlMs\":%d,\"cacheScope\":\"public\"}", MODERN_LIST_TTL_MS);
    reply_call_result(call, b.data, b.len);
    strbuf_free(&b);
}

/* server/discover: the versions served, capabilities, serverInfo and instructions. */
static void do_discover(mcp_call_t *call)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "{\"supportedVersions\":[");
    for (int i = 0; served_versions[i] != NULL; i++)
        strbuf_printf(&b, "%s\"%s\"", i ? "," : "", served_versions[i]);
    strbuf_printf(&b, "]," SERVER_CAPS ",\"serverInfo\":" MCP_SERVER_INFO ",\"ttlMs\":%d,\"cacheScope\":\"public\"",
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
        reply_call_result(call, "{}", 2);
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

static void on_adopt_read(void *arg, int found, const char *meta, size_t meta_len, const remote_events_t *events,
                          const char *err)
{
    adopt_t *a = arg;
    h2o_req_t *req = a->req;
    reply_inflight_add(-1);
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
    reply_inflight_add(1);
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
    mcp_reply_t *r = reply_new(req, principal, kind, batch, n, modern);
    for (int i = 0; i < n; i++) {
        const cJSON *msg = batch ? cJSON_GetArrayItem(body, i) : body;
        jsonrpc_msg_t m;
        jsonrpc_classify(msg, &m);
        if (m.kind == JSONRPC_NOTIFICATION || m.kind == JSONRPC_RESPONSE) {
            if (m.kind == JSONRPC_NOTIFICATION)
                log_debug("notification %s", m.method);
            continue;
        }
        mcp_call_t *call = reply_call_new(r, i, jsonrpc_id_json(m.id));
        if (m.kind == JSONRPC_INVALID)
            mcp_call_error(call, JSONRPC_INVALID_REQUEST, m.why);
        else
            dispatch(call, r, s, &m);
    }
    reply_park(r);
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
