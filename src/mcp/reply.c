/*
 * reply: the assembly of an answer to a POST to /mcp from its calls, and
 * its sending: JSON, a JSON array for a batch, SSE, or the last event of an
 * SSE stream that a progress notification opened (see mcp/reply.h). Owns
 * the count of requests waiting for an answer. Loop thread only.
 */
#include "mcp/reply.h"
#include "core/jsonrpc.h"
#include "core/metrics.h"
#include "core/util.h"

#include <bsd/string.h>
#include <stdlib.h>
#include <string.h>

#define MCP_MAX_BATCH_REPLY (64u << 20)

static mcp_responder_t responder; /* the HTTP server's (reply_set_responder) */
static size_t n_inflight;         /* requests parked waiting for an answer */

void reply_set_responder(const mcp_responder_t *r)
{
    responder = *r;
}

/* An adoption's read waits too: counted while it does (+1 when it starts, -1 when it answers). */
void reply_inflight_add(int delta)
{
    if (delta < 0)
        n_inflight -= (size_t)-delta;
    else
        n_inflight += (size_t)delta;
}

size_t reply_inflight(void)
{
    return n_inflight;
}

/* The request's pool is freed: the reply stops pointing at the dead request. */
static void on_guard_dispose(void *p)
{
    struct reply_guard *g = p;
    if (g->reply != NULL)
        g->reply->req = NULL;
}

/* Frees the reply, its slots and (the client gone after progress) its stream. */
void reply_free(mcp_reply_t *r)
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

/* One call answered: the reply goes out with the last. */
void reply_done_one(mcp_reply_t *r)
{
    if (--r->pending == 0)
        reply_send(r);
}

/* Frees an answered call and counts it done in its reply. */
static void call_finish(mcp_call_t *call)
{
    mcp_reply_t *r = call->reply;
    free(call->progress_token);
    free(call->id_json);
    free(call);
    reply_done_one(r);
}

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
                  i < len - 1 ? "," : "", MCP_SERVER_INFO);
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
    reply_call_result(call, res.data, res.len);
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
void reply_call_result(mcp_call_t *call, const char *result, size_t len)
{
    mcp_reply_t *r = call->reply;
    if (r->modern) {
        r->modern = 0; /* one call per modern reply: decorate once, then store as usual */
        strbuf_t d = {0};
        modern_decorate(&d, result, len);
        reply_call_result(call, d.data, d.len);
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
 * progress is printed whole (%.17g: an integer as one, a fraction exactly).
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
                      "{\"progressToken\":%s,\"progress\":%.17g",
                  call->progress_token, progress);
    if (message != NULL) {
        strbuf_puts(&b, ",\"message\":");
        strbuf_json_cstr(&b, message);
    }
    strbuf_puts(&b, "}}\n\n");
    responder.stream_send(r->stream, b.data, b.len);
    strbuf_free(&b);
}

/* A reply to `req` (see reply.h); its guard lives in the request's pool and clears r->req when the request dies. */
mcp_reply_t *reply_new(h2o_req_t *req, const char *principal, int kind, int batch, int n, int modern)
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
    return r;
}

/* A call answering into `slot` of `r`: the reply waits for it. */
mcp_call_t *reply_call_new(mcp_reply_t *r, int slot, char *id_json)
{
    mcp_call_t *call = xcalloc(1, sizeof(*call));
    call->reply = r;
    call->slot = slot;
    call->id_json = id_json;
    r->pending++;
    return call;
}

/* Calls left unanswered after dispatch (a tool parked): the request counts as waiting until sent. */
void reply_park(mcp_reply_t *r)
{
    if (r->pending > 1 && !r->parked) {
        r->parked = 1;
        n_inflight++;
    }
}

/* The transport's answers to tools (tools_set_reply at startup). */
const tools_reply_t mcp_tools_reply = {.result = mcp_call_tool_result,
                                       .progress = mcp_call_progress,
                                       .wants_progress = mcp_call_wants_progress,
                                       .result_text = mcp_call_tool_result_text,
                                       .error = mcp_call_error,
                                       .alive = mcp_call_alive,
                                       .set_tool = mcp_call_set_tool};
