/*
 * modern: the request rules of MCP 2026-07-28 (the "modern era") that the
 * transport checks before it runs a request: the standard headers
 * (Mcp-Method, Mcp-Name), the per-request _meta, and the Mcp-Param-*
 * headers that mirror x-mcp-header tool parameters (so that a proxy can
 * route on a handle without reading the body). Pure checks: no state.
 */
#ifndef MCP_SANDBOXD_MODERN_H
#define MCP_SANDBOXD_MODERN_H

#include "core/jsonrpc.h"

#include <cjson/cJSON.h>
#include <h2o.h>

#define MCP_MODERN_VERSION "2026-07-28" /**< the one modern revision served */
#define MCP_HEADER_MISMATCH -32020       /**< HeaderMismatch */
#define MCP_UNSUPPORTED_VERSION -32022   /**< UnsupportedProtocolVersionError */

/** Why a modern request is refused: HTTP status, JSON-RPC code, message. */
typedef struct modern_fault {
    int status;
    int code;
    char message[300];
} modern_fault_t;

/**
 * Checks a modern request (a JSON-RPC request, method known) against its
 * headers: Mcp-Method, the _meta envelope (protocolVersion equal to
 * `version`, clientCapabilities), Mcp-Name for tools/call, and the
 * Mcp-Param-* headers of the called tool's x-mcp-header parameters
 * (`schema`: its inputSchema, NULL for an unknown tool). 0 when the request
 * may run, -1 with `f` filled.
 */
int modern_check(h2o_req_t *req, const jsonrpc_msg_t *m, const char *version, const cJSON *schema, modern_fault_t *f);

/**
 * Decodes a header value sent for a body value: surrounding whitespace
 * trimmed, only visible ASCII, space and tab allowed, `=?base64?…?=`
 * decoded. 0 with a malloc'd NUL-terminated `*out`, -1 when invalid.
 */
int modern_header_decode(const char *v, size_t len, char **out, size_t *outlen);

#endif
