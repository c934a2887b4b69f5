/*
 * context: what the transport tells a tool about the request it answers.
 *
 * The legacy era (2025-xx) has a session; the modern era (2026-07-28) has
 * none, only per-request _meta. Tools take this struct rather than a session
 * so that both eras share one call path. Ownership is by tenant (issue 13):
 * the principal's name, else (no auth) the legacy session's id, or the one
 * anonymous tenant MCP_ANON_TENANT for every modern-era request. Valid for the
 * duration of tools_call only: a tool that parks copies what it needs.
 */
#ifndef MCP_SANDBOXD_CONTEXT_H
#define MCP_SANDBOXD_CONTEXT_H

#include <cjson/cJSON.h>

struct session;
struct workspace;

/** The tenant of modern-era requests without auth (no session to own them): one for all such clients. */
#define MCP_ANON_TENANT "anonymous"

/** The protocol era a request belongs to (decided by MCP-Protocol-Version). */
typedef enum mcp_era {
    MCP_ERA_LEGACY = 0, /**< 2025-03-26 … 2025-11-25: initialize, Mcp-Session-Id */
    MCP_ERA_MODERN = 1, /**< 2026-07-28: no session, _meta on every request */
} mcp_era_t;

/** A request's context, as tools see it. */
typedef struct mcp_ctx {
    struct session *session; /**< the legacy session; NULL in the modern era */
    mcp_era_t era;           /**< which protocol era the request follows */
    const char *principal;   /**< the bearer token's principal; NULL without auth */
    const char *tenant;      /**< whose executions and workspaces the call sees and creates (never NULL) */
    struct workspace *ws;    /**< the default workspace of a run without workspace_id: the legacy session's;
                                  NULL in the modern era (a run then gets a new one) */
    const cJSON *meta;       /**< params._meta of the request, NULL when absent */
    const cJSON *progress_token; /**< _meta.progressToken (a string or a number), NULL when absent or unusable */
} mcp_ctx_t;

#endif
