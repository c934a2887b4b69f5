/*
 * tools: the tool handlers and tools/call dispatch: arguments are checked
 * (mcp/args.h), then handed to the execution manager. The catalogue the
 * handlers answer for (tools/list) is mcp/catalog.h. Loop thread only.
 */
#ifndef MCP_SANDBOXD_TOOLS_H
#define MCP_SANDBOXD_TOOLS_H

#include "mcp/context.h"
#include "mcp/session.h"
#include "mcp/remote.h"

#include <cjson/cJSON.h>

/** The request a tool answers (opaque; the transport's). */
typedef struct mcp_call mcp_call_t;

/**
 * How a tool answers its call: the transport implements it (and a test or a
 * fuzz target its own). result: `structured` is the result's JSON object,
 * NUL-terminated at `len`; error: a JSON-RPC error; both consume the call.
 * alive: 1 while the call can still be answered. set_tool: names the tool
 * the call runs (a static catalogue string) so its outcome is counted.
 * result_text (may be NULL: then result): a result whose text content is
 * `text` (the compact output) instead of the structured JSON.
 */
typedef struct tools_reply {
    void (*result)(mcp_call_t *call, const char *structured, size_t len, int is_error);
    void (*error)(mcp_call_t *call, int code, const char *message);
    int (*alive)(const mcp_call_t *call);
    void (*set_tool)(mcp_call_t *call, const char *tool);
    void (*result_text)(mcp_call_t *call, const char *structured, size_t len, const char *text, size_t text_len,
                        int is_error);
    /** notifications/progress for a call that carried a progress token (may be NULL). */
    void (*progress)(mcp_call_t *call, double progress, const char *message);
    /** 1 when the call asked for progress (may be NULL: never). */
    int (*wants_progress)(const mcp_call_t *call);
} tools_reply_t;

/** Sets how tools answer (startup, before the first call). */
void tools_set_reply(const tools_reply_t *r);
/** Sets the reads of executions other replicas hold (NULL: local state only). Startup only. */
void tools_set_remote(const remote_reader_t *r);
/**
 * Runs tool `name` in context `ctx` with `args` (an object). Returns 0 when the tool
 * exists (the call is then answered now or later), -1 when it does not (the
 * caller answers -32602 and still owns the call).
 */
int tools_call(mcp_call_t *call, const mcp_ctx_t *ctx, const char *name, const cJSON *args);
/**
 * Runs control tool `tool` ("send_stdin" or "cancel_execution") with `args`
 * for a call another replica forwarded (the cluster's control channel), by the
 * same code a local call runs, on the execution held here when `owner_ok`
 * accepts its tenant (else the unknown-id answer). Returns the tool's result
 * object as JSON text (malloc'd) and sets *is_error.
 */
char *tools_control_forwarded(const char *tool, const cJSON *args, int (*owner_ok)(const char *tenant, void *arg),
                              void *arg, int *is_error);

#endif
