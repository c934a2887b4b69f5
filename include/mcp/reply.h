/*
 * reply: the answer to one POST to /mcp, assembled from its calls. Each
 * JSON-RPC request of the body is an mcp_call holding a slot of the
 * mcp_reply; a call is answered now or later (a tool that parks), and the
 * reply goes out when its last call is answered: JSON (a batch as an
 * array), or SSE, or an SSE stream opened early by a progress notification.
 * The reply holds a weak pointer to the h2o request, cleared by a dispose
 * hook in the request's pool, so a call answered after its client went away
 * is dropped. Owns the count of requests waiting. Loop thread only.
 */
#ifndef MCP_SANDBOXD_REPLY_H
#define MCP_SANDBOXD_REPLY_H

#include "mcp/principal.h"
#include "mcp/session.h"
#include "mcp/tools.h"
#include "core/util.h"

#include <stddef.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** serverInfo: fixed while the server runs (initialize, server/discover, modern results' _meta). */
#define MCP_SERVER_INFO "{\"name\":\"mcp-sandboxd\",\"version\":\"" MCP_SANDBOXD_VERSION "\"}"

/** An answer sent in pieces (SSE), the HTTP server's. */
typedef struct mcp_stream mcp_stream_t;

/**
 * How the transport sends an HTTP answer: the HTTP server implements it and
 * sets it at startup (mcp_set_responder), so mcp never calls http. respond:
 * a complete response, `body` malloc'd and taken over, `session_id` (may be
 * NULL) set as Mcp-Session-Id; respond_error: a JSON-RPC error body (id null).
 * stream_*: an answer that stays open (SSE for progress): start sends the
 * headers, send queues a piece, end sends the last one and gives the
 * stream back (it frees itself once written, or at once when the client
 * is gone), alive is 0 once the client went away.
 */
typedef struct mcp_responder {
    void (*respond)(h2o_req_t *req, int status, const char *reason, const char *content_type, char *body, size_t len,
                    const char *session_id);
    void (*respond_error)(h2o_req_t *req, int status, const char *reason, int code, const char *message);
    mcp_stream_t *(*stream_start)(h2o_req_t *req, const char *content_type, const char *session_id);
    int (*stream_send)(mcp_stream_t *s, const char *data, size_t len);
    void (*stream_end)(mcp_stream_t *s, const char *data, size_t len);
    int (*stream_alive)(const mcp_stream_t *s);
} mcp_responder_t;

/** The answer to one POST (see the banner). */
typedef struct mcp_reply mcp_reply_t;

/** Lives in the request's pool: its dispose hook tells the reply the request died. */
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
    int parked;                  /* counted in the requests waiting (reply_inflight) */
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

/** Sets the responder replies are sent through (startup; mcp_set_responder calls it). */
void reply_set_responder(const mcp_responder_t *r);
/**
 * A reply to `req` with `n` slots: `kind` is accept_kind's (2: SSE; | 4: SSE
 * allowed), `modern` a 2026-07-28 request; pending 1 (the dispatch itself,
 * ended by reply_done_one).
 */
mcp_reply_t *reply_new(h2o_req_t *req, const char *principal, int kind, int batch, int n, int modern);
/** A call of `r` answering into `slot`, with its id (JSON text, taken over); counted pending. */
mcp_call_t *reply_call_new(mcp_reply_t *r, int slot, char *id_json);
/** Counts `r` among the requests waiting when calls are still unanswered after dispatch. */
void reply_park(mcp_reply_t *r);
/** One call (or the dispatch) of `r` done: the reply is sent and freed with the last. */
void reply_done_one(mcp_reply_t *r);
/** Frees `r` without sending it (reply_done_one sends it first). */
void reply_free(mcp_reply_t *r);
/** Answers `call` with the JSON-RPC result `result` (a JSON object); consumes the call. */
void reply_call_result(mcp_call_t *call, const char *result, size_t len);
/** Adds `delta` to the requests waiting (an adoption's read counts too). */
void reply_inflight_add(int delta);
/** HTTP requests parked waiting for an answer. */
size_t reply_inflight(void);

/**
 * Answers a tools/call: `structured` is the result's JSON object (structuredContent),
 * NUL-terminated at `len`,
 * also sent serialized as a text block; `is_error` sets isError. Consumes the call.
 */
void mcp_call_tool_result(mcp_call_t *call, const char *structured, size_t len, int is_error);
/** Answers a tools/call with `text` as its text content (NULL: the structured JSON, as mcp_call_tool_result). */
void mcp_call_tool_result_text(mcp_call_t *call, const char *structured, size_t len, const char *text, size_t text_len,
                               int is_error);
/** Names the tool a tools/call runs (a static catalogue string), so its outcome is counted. */
void mcp_call_set_tool(mcp_call_t *call, const char *tool);
/** Answers any call with a JSON-RPC error. Consumes the call. */
void mcp_call_error(mcp_call_t *call, int code, const char *message);
/** 1 when the call carried a progress token and its answer may become an SSE stream. */
int mcp_call_wants_progress(const mcp_call_t *call);
/** Sends notifications/progress {progress, message} for the call (opening its SSE stream); no-op without a token. */
void mcp_call_progress(mcp_call_t *call, double progress, const char *message);
/** 1 while the HTTP request that carries the call can still be answered. */
int mcp_call_alive(const mcp_call_t *call);
/** The transport's tools_reply_t (the mcp_call_* above): what main hands to tools_set_reply(). */
extern const tools_reply_t mcp_tools_reply;

#endif
