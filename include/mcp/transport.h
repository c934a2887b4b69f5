/*
 * mcp: the Streamable HTTP transport at /mcp: header rules (Accept,
 * Content-Type, Mcp-Session-Id, MCP-Protocol-Version), JSON-RPC dispatch,
 * the lifecycle methods, and answers that may come later (parked calls).
 *
 * A request's answer is assembled in an mcp_reply (mcp/reply.h); each
 * JSON-RPC request in it is an mcp_call that a tool answers now or later.
 * If the HTTP request dies first the answer is dropped. Loop thread only.
 */
#ifndef MCP_SANDBOXD_MCP_H
#define MCP_SANDBOXD_MCP_H

#include "mcp/session.h"
#include "mcp/remote.h"
#include "mcp/tools.h"
#include "mcp/reply.h"
#include "core/util.h"

#include <cjson/cJSON.h>

#include <stddef.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** Sets the responder (startup, before the first request). */
void mcp_set_responder(const mcp_responder_t *r);

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
