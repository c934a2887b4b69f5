/*
 * modern: the 2026-07-28 header rules. Every comparison is between the
 * decoded header value and the body value; any failure is 400 -32020
 * (HeaderMismatch), a missing or malformed _meta is -32602.
 */
#include "mcp/modern.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define META_VERSION "io.modelcontextprotocol/protocolVersion"
#define META_CAPS "io.modelcontextprotocol/clientCapabilities"
#define META_INFO "io.modelcontextprotocol/clientInfo"

static int fault(modern_fault_t *f, int status, int code, const char *fmt, const char *a, const char *b)
{
    f->status = status;
    f->code = code;
    snprintf(f->message, sizeof(f->message), fmt, a, b != NULL ? b : "");
    return -1;
}

/* The value of base64 digit `c` (0..63), or -1 for any other byte (padding included). */
static int b64_value(int c)
{
    static const char digits[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c > 0 && c < 128 ? strchr(digits, c) : NULL;
    return p != NULL ? (int)(p - digits) : -1;
}

/* Standard base64 (padding optional) into a malloc'd NUL-terminated buffer; -1 when malformed. */
static int b64_decode(const char *in, size_t len, char **out, size_t *outlen)
{
    while (len > 0 && in[len - 1] == '=')
        len--;
    if (len % 4 == 1)
        return -1;
    char *o = malloc(len * 3 / 4 + 1);
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            free(o);
            return -1;
        }
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return 0;
}

int modern_header_decode(const char *v, size_t len, char **out, size_t *outlen)
{
    while (len > 0 && (*v == ' ' || *v == '\t'))
        v++, len--;
    while (len > 0 && (v[len - 1] == ' ' || v[len - 1] == '\t'))
        len--;
    for (size_t i = 0; i < len; i++)
        if (!((unsigned char)v[i] >= 0x20 && (unsigned char)v[i] <= 0x7e) && v[i] != '\t')
            return -1;
    if (len >= 11 && !memcmp(v, "=?base64?", 9) && !memcmp(v + len - 2, "?=", 2)) {
        if (b64_decode(v + 9, len - 11, out, outlen) != 0)
            return -1;
        if (memchr(*out, '\0', *outlen) != NULL) { /* cJSON strings cannot hold it: never equal */
            free(*out);
            return -1;
        }
        return 0;
    }
    *out = strndup(v, len);
    *outlen = len;
    return 0;
}

/* 1 when the header `name` decodes to exactly `want`; 0 when it differs or is invalid; -1 when absent. */
static int header_equals(h2o_req_t *req, const char *name, const char *want)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    if (i < 0)
        return -1;
    char *got;
    size_t len;
    if (modern_header_decode(req->headers.entries[i].value.base, req->headers.entries[i].value.len, &got, &len) != 0)
        return 0;
    int eq = len == strlen(want) && !memcmp(got, want, len);
    free(got);
    return eq;
}

/* The _meta envelope: present, protocolVersion a string equal to the header, clientCapabilities an object. */
static int check_meta(const jsonrpc_msg_t *m, const char *version, modern_fault_t *f)
{
    const cJSON *meta = cJSON_IsObject(m->params) ? cJSON_GetObjectItemCaseSensitive(m->params, "_meta") : NULL;
    if (!cJSON_IsObject(meta))
        return fault(f, 400, JSONRPC_INVALID_PARAMS, "Invalid params: params._meta is required in protocol version %s%s",
                     MCP_MODERN_VERSION, "");
    const cJSON *pv = cJSON_GetObjectItemCaseSensitive(meta, META_VERSION);
    const cJSON *caps = cJSON_GetObjectItemCaseSensitive(meta, META_CAPS);
    const cJSON *info = cJSON_GetObjectItemCaseSensitive(meta, META_INFO);
    if (!cJSON_IsString(pv))
        return fault(f, 400, JSONRPC_INVALID_PARAMS, "Invalid params: _meta needs a string \"%s\"%s", META_VERSION, "");
    if (!cJSON_IsObject(caps))
        return fault(f, 400, JSONRPC_INVALID_PARAMS, "Invalid params: _meta needs an object \"%s\"%s", META_CAPS, "");
    if (info != NULL && !cJSON_IsObject(info))
        return fault(f, 400, JSONRPC_INVALID_PARAMS, "Invalid params: _meta \"%s\" must be an object%s", META_INFO, "");
    if (strcmp(pv->valuestring, version) != 0)
        return fault(f, 400, MCP_HEADER_MISMATCH,
                     "Header mismatch: MCP-Protocol-Version '%.40s' does not match _meta protocolVersion '%.40s'", version,
                     pv->valuestring);
    return 0;
}

/* The text a primitive body value has in a header; 0, or -1 for a value that has no header form. */
static int body_text(const cJSON *v, char *buf, size_t len)
{
    if (cJSON_IsString(v))
        return snprintf(buf, len, "%s", v->valuestring) < (int)len ? 0 : -1;
    if (cJSON_IsBool(v))
        return snprintf(buf, len, "%s", cJSON_IsTrue(v) ? "true" : "false"), 0;
    if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) && fabs(v->valuedouble) < 9007199254740992.0)
        return snprintf(buf, len, "%.0f", v->valuedouble), 0;
    return -1;
}

/* Does the decoded header text equal the body value (integers numerically)? */
static int param_matches(const cJSON *v, const char *got)
{
    if (cJSON_IsNumber(v)) {
        char *end;
        double d = strtod(got, &end);
        return end != got && *end == '\0' && d == v->valuedouble;
    }
    char want[4096];
    return body_text(v, want, sizeof(want)) == 0 && !strcmp(want, got);
}

/* One x-mcp-header parameter: the header's presence and value against the argument's. */
static int check_param(h2o_req_t *req, const char *header, const cJSON *value, modern_fault_t *f)
{
    char name[160];
    snprintf(name, sizeof(name), "mcp-param-%s", header);
    for (char *p = name; *p; p++)
        *p = (char)(*p >= 'A' && *p <= 'Z' ? *p + 32 : *p);
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    int has_value = value != NULL && !cJSON_IsNull(value);
    if (i < 0)
        return has_value ? fault(f, 400, MCP_HEADER_MISMATCH,
                                 "Header mismatch: the body has this parameter but header Mcp-Param-%s is missing%s",
                                 header, "")
                         : 0;
    char *got;
    size_t len;
    if (modern_header_decode(req->headers.entries[i].value.base, req->headers.entries[i].value.len, &got, &len) != 0)
        return fault(f, 400, MCP_HEADER_MISMATCH, "Header mismatch: Mcp-Param-%s holds invalid characters or base64%s",
                     header, "");
    int ok = has_value && (cJSON_IsString(value) || cJSON_IsBool(value) || cJSON_IsNumber(value)) && param_matches(value, got);
    free(got);
    if (!ok)
        return fault(f, 400, MCP_HEADER_MISMATCH, "Header mismatch: Mcp-Param-%s does not match the body's value%s", header,
                     "");
    return 0;
}

/* Every property of `schema` annotated with x-mcp-header, against the call's arguments. */
static int check_params(h2o_req_t *req, const cJSON *schema, const cJSON *args, modern_fault_t *f)
{
    const cJSON *prop;
    cJSON_ArrayForEach(prop, cJSON_GetObjectItemCaseSensitive(schema, "properties"))
    {
        const cJSON *h = cJSON_GetObjectItemCaseSensitive(prop, "x-mcp-header");
        if (!cJSON_IsString(h))
            continue;
        const cJSON *v = cJSON_IsObject(args) ? cJSON_GetObjectItemCaseSensitive(args, prop->string) : NULL;
        if (check_param(req, h->valuestring, v, f) != 0)
            return -1;
    }
    return 0;
}

int modern_check(h2o_req_t *req, const jsonrpc_msg_t *m, const char *version, const cJSON *schema, modern_fault_t *f)
{
    int eq = header_equals(req, "mcp-method", m->method);
    if (eq != 1)
        return fault(f, 400, MCP_HEADER_MISMATCH,
                     eq < 0 ? "Header mismatch: the Mcp-Method header is required (method '%.80s')%s"
                            : "Header mismatch: Mcp-Method does not match the body's method '%.80s'%s",
                     m->method, "");
    if (check_meta(m, version, f) != 0)
        return -1;
    if (strcmp(m->method, "tools/call") != 0)
        return 0;
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(m->params, "name");
    if (!cJSON_IsString(name))
        return fault(f, 400, JSONRPC_INVALID_PARAMS, "Invalid params: tools/call needs a string \"name\"%s%s", "", "");
    eq = header_equals(req, "mcp-name", name->valuestring);
    if (eq != 1)
        return fault(f, 400, MCP_HEADER_MISMATCH,
                     eq < 0 ? "Header mismatch: the Mcp-Name header is required for tools/call '%.80s'%s"
                            : "Header mismatch: Mcp-Name does not match the body's name '%.80s'%s",
                     name->valuestring, "");
    return schema != NULL ? check_params(req, schema, cJSON_GetObjectItemCaseSensitive(m->params, "arguments"), f) : 0;
}
