/*
 * mcp: the Streamable HTTP transport at /mcp: header rules (Accept,
 * Content-Type, Mcp-Session-Id, MCP-Protocol-Version), JSON-RPC dispatch,
 * the lifecycle methods, and answers that may come later (parked calls).
 *
 * A request's answer is assembled in an mcp_reply; each JSON-RPC request in
 * it is an mcp_call that a tool answers now or later. If the HTTP request
 * dies first the answer is dropped. Loop thread only.
 */
#ifndef MCP_SANDBOXD_MCP_H
#define MCP_SANDBOXD_MCP_H

#include "mcp/session.h"
#include "mcp/remote.h"
#include "mcp/tools.h"
#include "core/util.h"

#include <cjson/cJSON.h>

#include <stddef.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/**
 * How the transport sends an HTTP answer: the HTTP server implements it and
 * sets it at startup (mcp_set_responder), so mcp never calls http. respond:
 * a complete response, `body` malloc'd and taken over, `session_id` (may be
 * NULL) set as Mcp-Session-Id; respond_error: a JSON-RPC error body (id null).
 */
/** An answer sent in pieces (SSE), the HTTP server's. */
typedef struct mcp_stream mcp_stream_t;

/*
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

/** Sets the responder (startup, before the first request). */
void mcp_set_responder(const mcp_responder_t *r);
/** The transport's tools_reply_t: what main hands to tools_set_reply(). */
extern const tools_reply_t mcp_tools_reply;

/** Protocol versions this server speaks, newest first, NULL-terminated. */
extern const char *const mcp_protocol_versions[];
/** The version to answer an initialize that asked for `requested` (NULL = latest). */
const char *mcp_protocol_negotiate(const char *requested);
/** 1 when `v` is a version this server speaks. */
int mcp_protocol_supported(const char *v);

/**
 * Handles any request to /mcp (auth, Origin and Host already checked) for
 * `principal` (the name the bearer token resolved to; NULL without auth).
 * Sessions and executions of another principal are answered as unknown. Returns 0.
 */
int mcp_handle(h2o_req_t *req, const char *principal);

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
/** HTTP requests parked waiting for an answer. */
size_t mcp_inflight(void);
/** Metrics provider: live sessions and requests parked waiting for an answer. */
void mcp_metrics(strbuf_t *out);
/** Public /health field: "sessions". */
void mcp_health(cJSON *h);
/**
 * Sets the session resolver: how a request naming a session this replica
 * does not hold finds its record (adoption). NULL: such requests get 404.
 */
void mcp_set_session_resolver(int (*resolve)(const char *session_id, remote_read_cb cb, void *arg));

#endif
