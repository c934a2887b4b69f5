/*
 * jsonrpc: JSON-RPC 2.0 message shapes: classify a parsed message, write
 * results and errors. Pure functions on cJSON trees and strbufs; any thread.
 */
#ifndef MCP_SANDBOXD_JSONRPC_H
#define MCP_SANDBOXD_JSONRPC_H

#include "core/util.h"

#include <cjson/cJSON.h>

#define JSONRPC_PARSE_ERROR -32700
#define JSONRPC_INVALID_REQUEST -32600
#define JSONRPC_METHOD_NOT_FOUND -32601
#define JSONRPC_INVALID_PARAMS -32602
#define JSONRPC_INTERNAL_ERROR -32603
#define JSONRPC_SERVER_ERROR -32000     /**< transport-level failures (bad headers) */
#define JSONRPC_SESSION_NOT_FOUND -32001

enum jsonrpc_kind {
    JSONRPC_REQUEST,      /**< method + id: needs a response */
    JSONRPC_NOTIFICATION, /**< method, no id: never answered */
    JSONRPC_RESPONSE,     /**< result or error + id: from the client, accepted */
    JSONRPC_INVALID       /**< anything else: answered with -32600 */
};

/** A classified message; pointers borrow from the cJSON tree. */
typedef struct jsonrpc_msg {
    enum jsonrpc_kind kind;
    const char *method;   /**< for requests and notifications */
    const cJSON *id;      /**< string or number; NULL when absent or unusable */
    const cJSON *params;  /**< object or array; NULL when absent */
    const char *why;      /**< for JSONRPC_INVALID: what is wrong */
} jsonrpc_msg_t;

/** Classifies `msg` (any JSON value) into `out`. */
void jsonrpc_classify(const cJSON *msg, jsonrpc_msg_t *out);
/** Serializes an id (string/number) for reuse in a response; "null" when NULL. Caller frees. */
char *jsonrpc_id_json(const cJSON *id);
/** Appends {"jsonrpc":"2.0","id":ID,"result":RESULT}. */
void jsonrpc_write_result(strbuf_t *b, const char *id_json, const char *result, size_t len);
/** Appends {"jsonrpc":"2.0","id":ID,"error":{"code":C,"message":M}}. */
void jsonrpc_write_error(strbuf_t *b, const char *id_json, int code, const char *message);

#endif
