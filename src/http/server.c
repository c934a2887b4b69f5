/*
 * http: listener, routing, auth, Origin/Host checks, /health, /metrics
 * (responses are respond.c's).
 *
 * One catch-all h2o handler routes on the normalized path: /health (no auth),
 * /mcp (auth, Origin, Host, then mcp_handle), anything else 404 (after auth,
 * so an unauthenticated client learns nothing about the paths). h2o itself
 * answers 413 for bodies over config.max_body.
 */
#include "http/server.h"
#include "http/respond.h"
#include "core/config.h"
#include "core/deadline.h"
#include "exec/exec.h"
#include "core/log.h"
#include "mcp/principal.h"
#include "mcp/transport.h"
#include "core/metrics.h"
#include "core/health.h"
#include "mcp/session.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <bsd/string.h>
#include <cjson/cJSON.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

static h2o_globalconf_t globalconf;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;
static h2o_socket_t *listener;
static h2o_hostconf_t *default_host; /* h2o puts its authority on requests that sent no Host */
static int bound_to_loopback;
static uint64_t started_ms;

/* ---------------------------------------------------------------- checks */

/* Splits "host[:port]" / "[v6]:port" and returns the host part. */
static h2o_iovec_t host_part(const char *p, size_t len)
{
    if (len > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', len);
        return h2o_iovec_init(p, close != NULL ? (size_t)(close - p + 1) : len);
    }
    const char *colon = memchr(p, ':', len);
    return h2o_iovec_init(p, colon != NULL ? (size_t)(colon - p) : len);
}

static int is_loopback_name(h2o_iovec_t h)
{
    return h2o_lcstris(h.base, h.len, H2O_STRLIT("localhost")) || h2o_memis(h.base, h.len, H2O_STRLIT("127.0.0.1")) ||
           h2o_memis(h.base, h.len, H2O_STRLIT("[::1]"));
}

/* Default Origins: http/https on localhost, 127.0.0.1 and [::1], any port. */
static int origin_allowed(const h2o_iovec_t *origin)
{
    if (config.n_allowed_origins > 0) {
        for (int i = 0; i < config.n_allowed_origins; i++) {
            const char *o = config.allowed_origins[i];
            if (!strcmp(o, "*") || (strlen(o) == origin->len && strncasecmp(o, origin->base, origin->len) == 0))
                return 1;
        }
        return 0;
    }
    const char *p = origin->base;
    size_t len = origin->len;
    if (len > 7 && strncasecmp(p, "http://", 7) == 0)
        p += 7, len -= 7;
    else if (len > 8 && strncasecmp(p, "https://", 8) == 0)
        p += 8, len -= 8;
    else
        return 0;
    h2o_iovec_t host = host_part(p, len);
    if (!is_loopback_name(host))
        return 0;
    for (size_t i = host.len; i < len; i++) /* the rest must be ":digits" */
        if (!(i == host.len ? p[i] == ':' : (p[i] >= '0' && p[i] <= '9')))
            return 0;
    return 1;
}

/*
 * The principal the request's bearer token names, into `name`: 0, or -1 when
 * the header is missing or no principal has that token (principal.c compares
 * every token in constant time).
 */
static int auth_principal(h2o_req_t *req, char name[PRINCIPAL_NAME_MAX + 1])
{
    const h2o_iovec_t *a = http_header(req, "authorization");
    if (a == NULL || a->len < 7 || strncasecmp(a->base, "Bearer ", 7) != 0)
        return -1;
    const char *tok = a->base + 7;
    size_t len = a->len - 7;
    while (len > 0 && *tok == ' ')
        tok++, len--;
    return principal_authenticate(tok, len, name);
}

static int auth_ok(h2o_req_t *req)
{
    char name[PRINCIPAL_NAME_MAX + 1];
    return auth_principal(req, name) == 0;
}


/*
 * /health answers load balancers without auth, so its public part says only
 * whether the server is up: status, version, uptime and sessions. The details
 * (replica id, executions, sandbox, Redis address and mirror queue: each
 * subsystem registers its own through health_register) are shown only to a request that
 * carries the configured bearer token; without a token configured they are
 * never shown here. /metrics carries the same figures (behind the token when
 * one is set).
 */
static void health_public(cJSON *h)
{
    cJSON_AddStringToObject(h, "version", MCP_SANDBOXD_VERSION);
    cJSON_AddNumberToObject(h, "uptime_seconds", (double)((util_now_ms() - started_ms) / 1000));
}

/* The server's own detail: which replica answers. */
static void health_details(cJSON *h)
{
    cJSON_AddStringToObject(h, "replica", config.replica);
}

static int respond_health(h2o_req_t *req)
{
    cJSON *h = cJSON_CreateObject();
    /* public fields: what a load balancer needs, nothing about the deployment */
    health_render(h, principal_enabled() && auth_ok(req));
    char *body = util_json_print(h);
    http_respond(req, 200, "OK", "application/json", body, strlen(body), NULL);
    return 0;
}

/* Answers 405 (Allow: GET) unless the request is a GET or HEAD; 1 when it did. */
static int refused_unless_get(h2o_req_t *req, const char *message)
{
    if (h2o_memis(req->method.base, req->method.len, H2O_STRLIT("GET")) ||
        h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")))
        return 0;
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL, H2O_STRLIT("GET"));
    http_respond_jsonrpc_error(req, 405, "Method Not Allowed", -32000, message);
    return 1;
}

/*
 * The path to route on. A request line in absolute form ("POST http://host/mcp",
 * RFC 9112 3.2.2) reaches h2o 2.2 as the path "/http://host/mcp": route on its path part.
 */
static h2o_iovec_t route_path(h2o_req_t *req)
{
    h2o_iovec_t raw = req->input.path;
    size_t skip = 0;
    if (raw.len > 7 && strncasecmp(raw.base, "http://", 7) == 0)
        skip = 7;
    else if (raw.len > 8 && strncasecmp(raw.base, "https://", 8) == 0)
        skip = 8;
    if (skip == 0)
        return req->path_normalized;
    const char *slash = memchr(raw.base + skip, '/', raw.len - skip);
    if (slash == NULL)
        return h2o_iovec_init(H2O_STRLIT("/"));
    size_t len = raw.len - (size_t)(slash - raw.base);
    const char *q = memchr(slash, '?', len);
    return h2o_iovec_init(slash, q != NULL ? (size_t)(q - slash) : len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    h2o_iovec_t path = route_path(req);
    /* DNS-rebinding defence first, for every path (/health included) */
    const h2o_iovec_t *origin = http_header(req, "origin");
    if (origin != NULL && !origin_allowed(origin)) {
        http_respond_jsonrpc_error(req, 403, "Forbidden", -32000, "Forbidden: Origin not allowed");
        return 0;
    }
    int no_host = req->input.authority.base == default_host->authority.hostport.base || req->input.authority.len == 0;
    if (no_host && req->version >= 0x101) {
        http_respond_jsonrpc_error(req, 400, "Bad Request", -32000, "Bad Request: HTTP/1.1 requests need a Host header");
        return 0;
    }
    if (bound_to_loopback && !no_host &&
        !is_loopback_name(host_part(req->input.authority.base, req->input.authority.len))) {
        http_respond_jsonrpc_error(req, 403, "Forbidden", -32000,
                                   "Forbidden: Host must be localhost, 127.0.0.1 or [::1] while the server is bound to loopback");
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/health"))) {
        if (refused_unless_get(req, "Method Not Allowed: /health takes GET"))
            return 0;
        return respond_health(req);
    }
    char principal[PRINCIPAL_NAME_MAX + 1] = "";
    if (principal_enabled() && auth_principal(req, principal) != 0) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"mcp-sandboxd\", error=\"invalid_token\""));
        http_respond_jsonrpc_error(req, 401, "Unauthorized", -32000,
                                   "Unauthorized: a valid 'Authorization: Bearer <token>' header is required");
        return 0;
    }
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/mcp")))
        return mcp_handle(req, principal[0] != '\0' ? principal : NULL);
    if (h2o_memis(path.base, path.len, H2O_STRLIT("/metrics"))) {
        if (refused_unless_get(req, "Method Not Allowed: /metrics takes GET"))
            return 0;
        strbuf_t b = {0};
        metrics_render(&b);
        size_t len;
        char *body = strbuf_steal(&b, &len);
        http_respond(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", body, len, NULL);
        return 0;
    }
    http_respond_jsonrpc_error(req, 404, "Not Found", -32000, "Not Found: the MCP endpoint is /mcp");
    return 0;
}

static deadline_t accept_pause;

static void on_accept(h2o_socket_t *sock, const char *err);

static void on_accept_resume(deadline_t *d)
{
    if (listener != NULL)
        h2o_socket_read_start(listener, on_accept);
}

static void on_accept(h2o_socket_t *sock, const char *err)
{
    if (err != NULL)
        return;
    for (int i = 0; i < 64; i++) {
        errno = 0;
        h2o_socket_t *conn = h2o_evloop_socket_accept(sock);
        if (conn == NULL) {
            /* out of descriptors: the pending connection keeps the listener readable, so
             * stop watching it for a moment instead of spinning */
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                static uint64_t logged_ms;
                if (util_now_ms() - logged_ms >= 10000) { /* at most every 10 s */
                    logged_ms = util_now_ms();
                    log_warn("accept: %s; pausing new connections for 100 ms at a time", strerror(errno));
                }
                h2o_socket_read_stop(sock);
                deadline_arm(&accept_pause, 100, on_accept_resume);
            }
            break;
        }
        h2o_accept(&accept_ctx, conn);
    }
}

static int host_is_loopback(const char *host)
{
    if (!strcasecmp(host, "localhost"))
        return 1;
    struct in_addr a4;
    struct in6_addr a6;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6);
    return 0;
}

/* mcp's streams are respond.c's http streams (mcp names the type, http defines it). */
static mcp_stream_t *stream_start(h2o_req_t *req, const char *content_type, const char *session_id)
{
    return (mcp_stream_t *)http_stream_start(req, content_type, session_id);
}

static int stream_send(mcp_stream_t *s, const char *data, size_t len)
{
    return http_stream_send((http_stream_t *)s, data, len);
}

static void stream_end(mcp_stream_t *s, const char *data, size_t len)
{
    http_stream_end((http_stream_t *)s, data, len);
}

static int stream_alive(const mcp_stream_t *s)
{
    return http_stream_alive((const http_stream_t *)s);
}

int http_start(h2o_evloop_t *loop, char *err, size_t errlen)
{
    static const mcp_responder_t responder = {.respond = http_respond,
                                              .respond_error = http_respond_jsonrpc_error,
                                              .stream_start = stream_start,
                                              .stream_send = stream_send,
                                              .stream_end = stream_end,
                                              .stream_alive = stream_alive};
    mcp_set_responder(&responder);
    health_register(health_public, 0);
    health_register(health_details, 1);
    started_ms = util_now_ms();
    bound_to_loopback = host_is_loopback(config.host);

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[8];
    snprintf(port, sizeof(port), "%d", config.port);
    int rc = getaddrinfo(config.host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "--host %s: %s", config.host, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) != 0 ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", config.host, config.port, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));

    h2o_config_init(&globalconf);
    globalconf.max_request_entity_size = (size_t)config.max_body;
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("mcp-sandboxd"));
    h2o_hostconf_t *hostconf = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    default_host = hostconf;
    h2o_pathconf_t *pathconf = h2o_config_register_path(hostconf, "/", 0);
    h2o_handler_t *handler = h2o_create_handler(pathconf, sizeof(*handler));
    handler->on_req = on_req;
    h2o_context_init(&ctx, loop, &globalconf);
    accept_ctx.ctx = &ctx;
    accept_ctx.hosts = globalconf.hosts;
    listener = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(listener, on_accept);
    return 0;
}

void http_stop_accepting(void)
{
    deadline_cancel(&accept_pause);
    if (listener != NULL) {
        h2o_socket_read_stop(listener);
        h2o_socket_close(listener);
        listener = NULL;
    }
    h2o_context_request_shutdown(&ctx);
}
