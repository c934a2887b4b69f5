/*
 * respond: sending an HTTP answer and its access-log line (and the
 * http_requests_total count). The server uses it directly and hands it to
 * mcp as its responder (mcp_responder_t). Loop thread only.
 */
#include "http/respond.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"

#include <bsd/string.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

struct body_holder {
    char *body;
};

static void on_body_dispose(void *p)
{
    free(((struct body_holder *)p)->body);
}

const h2o_iovec_t *http_header(h2o_req_t *req, const char *name)
{
    ssize_t i = h2o_find_header_by_str(&req->headers, name, strlen(name), -1);
    return i < 0 ? NULL : &req->headers.entries[i].value;
}

/* Access log: method, path, status, duration, session-id prefix. Never headers or bodies. */
static void access_log(h2o_req_t *req, int status, const char *session_id)
{
    if (!log_enabled(LOG_INFO))
        return;
    const h2o_iovec_t *sid = http_header(req, "mcp-session-id");
    char prefix[9] = "-";
    if (session_id != NULL)
        strlcpy(prefix, session_id, sizeof(prefix));
    else if (sid != NULL) {
        size_t n = sid->len < 8 ? sid->len : 8;
        for (size_t i = 0; i < n; i++) /* only visible ASCII reaches the log */
            prefix[i] = sid->base[i] > 0x20 && sid->base[i] < 0x7f ? sid->base[i] : '?';
        prefix[n] = '\0';
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    double ms = (double)(now.tv_sec - req->timestamps.request_begin_at.tv_sec) * 1e3 +
                (double)(now.tv_usec - req->timestamps.request_begin_at.tv_usec) / 1e3;
    int plen = req->path_normalized.len > 200 ? 200 : (int)req->path_normalized.len;
    char path[201];
    for (int i = 0; i < plen; i++)
        path[i] = req->path_normalized.base[i] > 0x20 && req->path_normalized.base[i] < 0x7f ? req->path_normalized.base[i] : '?';
    path[plen] = '\0';
    log_msg(LOG_INFO, "%.*s %s %d %.2fms session=%s", (int)(req->method.len > 16 ? 16 : req->method.len), req->method.base,
            path, status, ms, prefix);
}

void http_respond(h2o_req_t *req, int status, const char *reason, const char *content_type, char *body, size_t len,
                  const char *session_id)
{
    static h2o_generator_t generator = {NULL, NULL};
    req->res.status = status;
    req->res.reason = reason;
    if (content_type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    if (session_id != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("mcp-session-id"), 0, NULL, session_id,
                              strlen(session_id));
    req->res.content_length = len;
    access_log(req, status, session_id);
    metrics_http(req->method.base, req->method.len, status);
    h2o_iovec_t buf = h2o_iovec_init(body, len);
    if (body != NULL) {
        struct body_holder *h = h2o_mem_alloc_shared(&req->pool, sizeof(*h), on_body_dispose);
        h->body = body;
    }
    int head = h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD"));
    h2o_start_response(req, &generator);
    h2o_send(req, &buf, body != NULL && len > 0 && !head ? 1 : 0, H2O_SEND_STATE_FINAL);
}

void http_respond_jsonrpc_error(h2o_req_t *req, int status, const char *reason, int code, const char *message)
{
    strbuf_t b = {0};
    strbuf_printf(&b, "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":%d,\"message\":", code);
    strbuf_json_cstr(&b, message);
    strbuf_puts(&b, "}}");
    size_t len;
    char *body = strbuf_steal(&b, &len);
    http_respond(req, status, reason, "application/json", body, len, NULL);
}

/*
 * A response that stays open (SSE): a generator with one send in flight at a
 * time (h2o 2.2.5), further data queued until proceed. The stream object is
 * freed when both its owner ended it and h2o disposed the request (or at
 * once when the request died first).
 */
struct http_stream {
    h2o_generator_t gen; /* first: h2o hands it back to proceed/stop */
    h2o_req_t *req;      /* NULL once the request died */
    strbuf_t queued, inflight;
    int sending, ended, final_sent;
};

struct stream_guard {
    http_stream_t *s;
};

/* Sends what is queued (and the end when asked for), if no send is in flight. */
static void stream_flush(http_stream_t *s)
{
    if (s->req == NULL || s->sending || s->final_sent || (s->queued.len == 0 && !s->ended))
        return;
    strbuf_free(&s->inflight);
    s->inflight = s->queued;
    s->queued = (strbuf_t){0};
    h2o_iovec_t buf = h2o_iovec_init(s->inflight.data, s->inflight.len);
    s->sending = 1;
    s->final_sent = s->ended;
    h2o_send(s->req, &buf, buf.len > 0 ? 1 : 0, s->ended ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void stream_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    http_stream_t *s = (http_stream_t *)g;
    s->sending = 0;
    stream_flush(s);
}

static void stream_stop(h2o_generator_t *g, h2o_req_t *req)
{
    ((http_stream_t *)g)->sending = 0;
}

/* The request's pool is going: the stream can no longer send; freed here if its owner is done with it. */
static void on_stream_dispose(void *p)
{
    http_stream_t *s = ((struct stream_guard *)p)->s;
    s->req = NULL;
    if (s->ended) {
        strbuf_free(&s->queued);
        strbuf_free(&s->inflight);
        free(s);
    }
}

http_stream_t *http_stream_start(h2o_req_t *req, const char *content_type, const char *session_id)
{
    http_stream_t *s = xcalloc(1, sizeof(*s));
    s->gen.proceed = stream_proceed;
    s->gen.stop = stream_stop;
    s->req = req;
    struct stream_guard *g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_stream_dispose);
    g->s = s;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, content_type, strlen(content_type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL, H2O_STRLIT("no-cache"));
    if (session_id != NULL)
        h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("mcp-session-id"), 0, NULL, session_id,
                              strlen(session_id));
    access_log(req, 200, session_id);
    metrics_http(req->method.base, req->method.len, 200);
    h2o_start_response(req, &s->gen);
    return s;
}

int http_stream_send(http_stream_t *s, const char *data, size_t len)
{
    if (s->req == NULL)
        return -1;
    strbuf_append(&s->queued, data, len);
    stream_flush(s);
    return 0;
}

void http_stream_end(http_stream_t *s, const char *data, size_t len)
{
    if (s->req != NULL && len > 0)
        strbuf_append(&s->queued, data, len);
    s->ended = 1;
    if (s->req == NULL) { /* the request died first: nobody else will free it */
        strbuf_free(&s->queued);
        strbuf_free(&s->inflight);
        free(s);
        return;
    }
    stream_flush(s);
}

int http_stream_alive(const http_stream_t *s)
{
    return s->req != NULL;
}
