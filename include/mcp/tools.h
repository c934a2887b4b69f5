/*
 * tools: the tool catalogue (names, descriptions, input and output schemas)
 * and tools/call dispatch: arguments are checked here, then handed to the
 * execution manager. Loop thread only.
 */
#ifndef MCP_SANDBOXD_TOOLS_H
#define MCP_SANDBOXD_TOOLS_H

#include "mcp/transport.h"
#include "mcp/session.h"
#include "mcp/remote.h"

#include <cjson/cJSON.h>

/** Sets the reads of executions other replicas hold (NULL: local state only). Startup only. */
void tools_set_remote(const remote_reader_t *r);
/** Builds the cached tools/list result. 0 / -1. */
int tools_init(void);
/** Frees the cache. */
void tools_free(void);
/** The tools/list result (JSON text, owned by tools). */
const char *tools_list_json(size_t *len);
/**
 * Runs tool `name` for `s` with `args` (an object). Returns 0 when the tool
 * exists (the call is then answered now or later), -1 when it does not (the
 * caller answers -32602 and still owns the call).
 */
int tools_call(mcp_call_t *call, session_t *s, const char *name, const cJSON *args);

#endif
