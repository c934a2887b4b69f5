/*
 * jsonrpc: message classification and response writing.
 */
#include "core/jsonrpc.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void jsonrpc_classify(const cJSON *msg, jsonrpc_msg_t *out)
{
    memset(out, 0, sizeof(*out));
    out->kind = JSONRPC_INVALID;
    if (!cJSON_IsObject(msg)) {
        out->why = "Invalid Request: a JSON-RPC message must be an object";
        return;
    }
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
    if (cJSON_IsString(id) || (cJSON_IsNumber(id) && isfinite(id->valuedouble)))
        out->id = id;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
    if (!cJSON_IsString(v) || strcmp(v->valuestring, "2.0") != 0) {
        out->why = "Invalid Request: \"jsonrpc\" must be \"2.0\"";
        return;
    }
    const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
    if (method == NULL) {
        const cJSON *result = cJSON_GetObjectItemCaseSensitive(msg, "result");
        const cJSON *error = cJSON_GetObjectItemCaseSensitive(msg, "error");
        if ((result != NULL) != (error != NULL) && id != NULL) {
            out->kind = JSONRPC_RESPONSE;
            return;
        }
        out->why = "Invalid Request: expected \"method\" (request or notification) or \"result\"/\"error\" with an \"id\"";
        return;
    }
    if (!cJSON_IsString(method) || method->valuestring[0] == '\0') {
        out->why = "Invalid Request: \"method\" must be a non-empty string";
        return;
    }
    out->method = method->valuestring;
    const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
    if (params != NULL && !cJSON_IsObject(params) && !cJSON_IsArray(params)) {
        out->why = "Invalid Request: \"params\" must be an object or an array";
        return;
    }
    out->params = params;
    if (id == NULL) {
        out->kind = JSONRPC_NOTIFICATION;
        return;
    }
    if (out->id == NULL) {
        out->why = "Invalid Request: \"id\" must be a string or a number";
        return;
    }
    out->kind = JSONRPC_REQUEST;
}

char *jsonrpc_id_json(const cJSON *id)
{
    if (id == NULL)
        return xstrdup("null");
    if (cJSON_IsNumber(id)) {
        double d = id->valuedouble;
        char buf[64];
        if (d == floor(d) && fabs(d) < 9007199254740992.0)
            snprintf(buf, sizeof(buf), "%.0f", d);
        else
            snprintf(buf, sizeof(buf), "%.17g", d);
        return xstrdup(buf);
    }
    strbuf_t b = {0};
    strbuf_json_cstr(&b, id->valuestring);
    return strbuf_steal(&b, NULL);
}

void jsonrpc_write_result(strbuf_t *b, const char *id_json, const char *result, size_t len)
{
    strbuf_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    strbuf_puts(b, id_json);
    strbuf_puts(b, ",\"result\":");
    strbuf_append(b, result, len);
    strbuf_puts(b, "}");
}

void jsonrpc_write_error(strbuf_t *b, const char *id_json, int code, const char *message)
{
    strbuf_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":");
    strbuf_puts(b, id_json);
    strbuf_printf(b, ",\"error\":{\"code\":%d,\"message\":", code);
    strbuf_json_cstr(b, message);
    strbuf_puts(b, "}}");
}
