/*
 * Fuzz target: whole HTTP requests to the real server stack, in process.
 *
 * src/http.c is included (to reach its accept context, as the unit tests
 * reach static functions): http_start() sets up h2o exactly as the server
 * does, and each input is written as raw HTTP/1.x bytes into one end of a
 * socketpair whose other end was accepted like a listener connection
 * (h2o_evloop_socket_create + h2o_accept). The loop runs until the server has
 * answered and closed the connection (the client half-closes after the last
 * byte), so routing, Origin/Host checks, bearer auth, the MCP header rules,
 * JSON-RPC parsing, batches, sessions, tools/list and tools/call all run for
 * real. Nothing is spawned: config.max_concurrent is 0, so execute_code
 * answers its limit error once its arguments passed.
 *
 * Input conveniences (the fuzzer cannot learn a random session id or keep a
 * Content-Length right while mutating a body):
 *   - each "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz" (32 bytes) is replaced by the id of
 *     a session created for this input (protocol 2025-03-26);
 *   - "@@" in the first request's header block becomes the number of bytes
 *     after that block (so "Content-Length: @@" fits a mutated body).
 * The server runs with --token fuzz-token, bound to loopback.
 *
 * Checked: the connection is answered and closed (no request hangs); no
 * response is a 5xx; every application/json body is JSON-RPC 2.0 (an object
 * or a non-empty array of objects with "jsonrpc":"2.0" and either a result or
 * an error), every text/event-stream message likewise; a Mcp-Session-Id is 32
 * hex digits; when the request is valid UTF-8, so is everything answered.
 * Sessions are ended after each input (session_end_all).
 */
#include "../../src/http/server.c"

#include "core/events.h"
#include "mcp/tools.h"
#include "mcp/catalog.h"
#include "exec/cgroup.h"
#include "exec/proc.h"

#include <ctype.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "fuzz_check.h"

#define SID_PLACEHOLDER "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz"
#define MAX_TURNS 4000 /* loop turns per input before it counts as a hang */

static void on_session_end(session_t *s, enum session_end_reason why)
{
    (void)s; /* session_end ends the default workspace itself */
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *av[] = {"mcp-sandboxd", "--host", "127.0.0.1", "--token", "fuzz-token", "--max-sessions", "64", NULL};
    char *ev[] = {NULL}, err[512];
    if (config_parse(&config, 7, av, ev, err, sizeof(err), NULL, 0) != CONFIG_OK) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    config.port = 0;           /* any free port: the listener is never used */
    config.max_concurrent = 0; /* nothing may be spawned */
    signal(SIGPIPE, SIG_IGN);
    log_open("/dev/null", LOG_DEBUG); /* every log line is formatted, none is kept */
    h2o_evloop_t *loop = h2o_evloop_create();
    proc_init(loop); /* the composition main.c makes, without the cluster */
    cgroup_set_loop(loop);
    tools_set_reply(&mcp_tools_reply);
    if (deadline_init(loop) != 0 || catalog_init() != 0)
        abort();
    session_setup((uint64_t)config.session_ttl * 1000, (size_t)config.max_sessions, on_session_end);
    if (http_start(loop, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        abort();
    }
    return 0;
}

/* ---------------------------------------------------------------- the request */

/* The input with the session placeholder and "@@" (Content-Length) filled in. */
static char *prepare(const uint8_t *data, size_t size, const char *sid, size_t *out_len)
{
    strbuf_t b = {0};
    const char *p = (const char *)data, *end = p + size;
    size_t plen = strlen(SID_PLACEHOLDER);
    while (p < end) {
        const char *hit = memmem(p, (size_t)(end - p), SID_PLACEHOLDER, plen);
        if (hit == NULL) {
            strbuf_append(&b, p, (size_t)(end - p));
            break;
        }
        strbuf_append(&b, p, (size_t)(hit - p));
        strbuf_append(&b, sid, SESSION_ID_LEN);
        p = hit + plen;
    }
    if (b.len == 0) {
        *out_len = 0;
        return b.data;
    }
    const char *hdr_end = memmem(b.data, b.len, "\r\n\r\n", 4);
    const char *at = hdr_end != NULL ? memmem(b.data, (size_t)(hdr_end - b.data), "@@", 2) : NULL;
    if (at != NULL) {
        size_t body = b.len - (size_t)(hdr_end + 4 - b.data);
        strbuf_t c = {0};
        strbuf_append(&c, b.data, (size_t)(at - b.data));
        strbuf_printf(&c, "%zu", body);
        strbuf_append(&c, at + 2, b.len - (size_t)(at + 2 - b.data));
        strbuf_free(&b);
        b = c;
    }
    *out_len = b.len;
    return b.data;
}

/* Writes the request, runs the loop, collects the answer until the server closes. */
static int exchange(const char *req, size_t len, strbuf_t *resp)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        abort();
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    h2o_socket_t *sock = h2o_evloop_socket_create(ctx.loop, sv[0], 0);
    h2o_accept(&accept_ctx, sock);
    size_t off = 0;
    int eof = 0, shut = 0, turns;
    for (turns = 0; turns < MAX_TURNS && !eof; turns++) {
        if (!shut) {
            ssize_t w = off < len ? write(sv[1], req + off, len - off) : 0;
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                off = len; /* the server closed early: fine, read what it said */
            if (off == len) {
                shutdown(sv[1], SHUT_WR);
                shut = 1;
            }
        }
        h2o_evloop_run(ctx.loop, 0);
        for (;;) {
            char buf[16384];
            ssize_t r = read(sv[1], buf, sizeof(buf));
            if (r > 0) {
                if (resp->len < (8u << 20))
                    strbuf_append(resp, buf, (size_t)r);
                continue;
            }
            if (r == 0 || (errno != EAGAIN && errno != EINTR))
                eof = 1;
            break;
        }
        log_flush();
    }
    close(sv[1]);
    for (int i = 0; i < 4; i++) /* let h2o see the close and free the connection */
        h2o_evloop_run(ctx.loop, 0);
    return eof;
}

/* ---------------------------------------------------------------- the answer */

static void check_jsonrpc_message(const cJSON *m)
{
    CHECK(cJSON_IsObject(m));
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(m, "jsonrpc");
    CHECK(cJSON_IsString(v) && !strcmp(v->valuestring, "2.0"));
    CHECK(cJSON_HasObjectItem(m, "id"));
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(m, "result");
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(m, "error");
    CHECK((res != NULL) != (err != NULL));
    if (err != NULL) {
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
        CHECK(cJSON_IsNumber(code) && cJSON_IsString(msg));
    } else {
        CHECK(cJSON_IsObject(res));
    }
}

static void check_json_body(const char *body, size_t len)
{
    cJSON *j = cJSON_ParseWithLength(body, len);
    CHECK(j != NULL);
    if (cJSON_IsObject(j) && !cJSON_HasObjectItem(j, "jsonrpc") && cJSON_HasObjectItem(j, "uptime_seconds")) {
        cJSON_Delete(j); /* GET /health */
        return;
    }
    if (cJSON_IsArray(j)) {
        CHECK(cJSON_GetArraySize(j) > 0);
        const cJSON *m;
        cJSON_ArrayForEach(m, j)
        check_jsonrpc_message(m);
    } else {
        check_jsonrpc_message(j);
    }
    cJSON_Delete(j);
}

static void check_sse_body(const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl != NULL ? nl : end;
        if ((size_t)(le - p) >= 6 && !memcmp(p, "data: ", 6))
            check_json_body(p + 6, (size_t)(le - p - 6));
        p = nl != NULL ? nl + 1 : end;
    }
}

/* Finds a header's value in [h, end) (lowercase name); NULL when absent. */
static const char *find_header(const char *h, const char *end, const char *name, size_t *vlen)
{
    size_t nl = strlen(name);
    for (const char *p = h; p < end;) {
        const char *e = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (e == NULL)
            e = end;
        if ((size_t)(e - p) > nl && !strncasecmp(p, name, nl) && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < e && *v == ' ')
                v++;
            *vlen = (size_t)(e - v);
            return v;
        }
        p = e + 2;
    }
    return NULL;
}

/* Walks the responses; stops quietly at anything it cannot frame. */
static void check_responses(const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        const char *hdr_end = memmem(p, (size_t)(end - p), "\r\n\r\n", 4);
        if (hdr_end == NULL || (size_t)(end - p) < 12 || memcmp(p, "HTTP/1.", 7) != 0)
            return;
        int status = atoi(p + 9);
        CHECK(status >= 100 && status < 500);
        const char *headers = (const char *)memmem(p, (size_t)(hdr_end + 2 - p), "\r\n", 2) + 2;
        if (status < 200) { /* 100 Continue: headers only */
            p = hdr_end + 4;
            continue;
        }
        size_t vl;
        const char *cl = find_header(headers, hdr_end + 2, "content-length", &vl);
        const char *te = find_header(headers, hdr_end + 2, "transfer-encoding", &vl);
        if (cl == NULL || te != NULL)
            return; /* h2o's own chunked answers: nothing of ours */
        size_t blen = strtoul(cl, NULL, 10);
        const char *body = hdr_end + 4;
        if (blen > (size_t)(end - body))
            return;
        const char *ct = find_header(headers, hdr_end + 2, "content-type", &vl);
        if (ct != NULL && vl >= 16 && !strncmp(ct, "application/json", 16) && blen > 0)
            check_json_body(body, blen);
        else if (ct != NULL && vl >= 17 && !strncmp(ct, "text/event-stream", 17))
            check_sse_body(body, blen);
        const char *sid = find_header(headers, hdr_end + 2, "mcp-session-id", &vl);
        if (sid != NULL) {
            CHECK(vl == SESSION_ID_LEN);
            for (size_t i = 0; i < vl; i++)
                CHECK(isxdigit((unsigned char)sid[i]));
        }
        p = body + blen;
    }
}

/* 1 when [p, p+len) is UTF-8 without NUL (what events_utf8_sanitize leaves alone). */
static int utf8_valid(const char *p, size_t len)
{
    if (len == 0)
        return 1;
    strbuf_t clean = {0};
    events_utf8_sanitize(p, len, &clean);
    int same = clean.len == len && memcmp(clean.data, p, len) == 0;
    strbuf_free(&clean);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    session_t *s = session_create("2025-03-26", "fuzz", NULL, 0);
    CHECK(s != NULL);
    size_t len;
    char *req = prepare(data, size, s->id, &len);
    strbuf_t resp = {0};
    int closed = exchange(req, len, &resp);
    if (getenv("FUZZ_VERBOSE") != NULL) /* shows what the server answered */
        fprintf(stderr, "---- %zu bytes in, %zu out\n%.*s\n", len, resp.len, (int)resp.len, resp.data ? resp.data : "");
    CHECK(closed); /* every request is answered (or refused) and the connection closed */
    /* HEAD answers carry a Content-Length but no body: the stream cannot be framed */
    if (resp.len > 0 && (len == 0 || memmem(req, len, "HEAD", 4) == NULL))
        check_responses(resp.data, resp.len);
    /* JSON must be UTF-8: a UTF-8 request gets a UTF-8 answer (no character cut in half) */
    if (utf8_valid(req, len))
        CHECK(utf8_valid(resp.data, resp.len));
    strbuf_free(&resp);
    free(req);
    session_end_all();
    CHECK(session_count() == 0 && mcp_inflight() == 0);
    log_flush();
    return 0;
}
