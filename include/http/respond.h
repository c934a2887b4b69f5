/*
 * respond: sending an HTTP answer (status, headers, body) with its access-log
 * line; JSON-RPC error bodies; request header lookup. Loop thread only.
 */
#ifndef MCP_SANDBOXD_RESPOND_H
#define MCP_SANDBOXD_RESPOND_H

#include <stddef.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/**
 * Sends a complete response and writes the access-log line. `body` is
 * malloc'd and taken over (freed with the request); may be NULL when len is 0.
 * `session_id` (may be NULL) is set as Mcp-Session-Id.
 *
 * h2o (2.2.5, evloop) defers write completion: the socket write completes,
 * and `req` with its pool is disposed, from a later loop turn, never inside
 * this call. Callers still clear whatever guard they keep in req->pool (its
 * dispose callback's target) before calling it, so no code relies on that.
 */
void http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, char *body, size_t len,
                  const char *session_id);
/** Sends a JSON-RPC error body (id null) with an HTTP status. */
void http_respond_jsonrpc_error(h2o_req_t *req, int status, const char *reason, int code, const char *message);
/** A response that stays open (SSE), sent in pieces. */
typedef struct http_stream http_stream_t;
/** Starts a 200 response of `content_type` whose body follows in pieces; the stream is the caller's until http_stream_end. */
http_stream_t *http_stream_start(h2o_req_t *req, const char *content_type, const char *session_id);
/** Queues `data` (sent when the previous piece was written). 0, or -1 when the client is gone. */
int http_stream_send(http_stream_t *s, const char *data, size_t len);
/** Sends the last piece and ends the response; the caller no longer owns `s`. */
void http_stream_end(http_stream_t *s, const char *data, size_t len);
/** 1 while the client can still be written to. */
int http_stream_alive(const http_stream_t *s);
/** Finds a request header by lowercase name; returns its value or NULL. */
const h2o_iovec_t *http_header(h2o_req_t *req, const char *name);

#endif
