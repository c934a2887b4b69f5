/*
 * egress_proxy: a run's HTTP and SOCKS5 proxy on the loop thread.
 *
 * The bridge in the sandbox sends two listening sockets (bound in the run's
 * own network namespace) over the run's socketpair; the loop accepts on them.
 * A connection reads its request (HTTP CONNECT, an absolute-form HTTP request,
 * or a SOCKS5 CONNECT), is decided (egress.c), resolved (pinned, numeric, or
 * with c-ares on this thread: egress_dns.c), connected without blocking, then relayed with backpressure: a side
 * stops reading while its bytes are being written to the other side.
 */
#include "exec/egress.h"
#include "exec/egress_internal.h"
#include "core/log.h"

#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <unistd.h>

#define EGRESS_HEAD_MAX (16 * 1024) /* request head (HTTP) or handshake (SOCKS5) */
#define EGRESS_IDLE_MS (120 * 1000) /* a connection silent for this long is closed */
/* Kernel receive buffer of each relayed socket: h2o reads until EAGAIN, so this bounds the bytes one
 * direction of a connection holds in the server while the other side writes them (no autotuning to MBs). */
#define EGRESS_RCVBUF (256 * 1024)

enum conn_state { CONN_HANDSHAKE, CONN_RESOLVING, CONN_CONNECTING, CONN_RELAY, CONN_CLOSING };

typedef struct egress_conn {
    egress_run_t *run;            /* NULL once the run closed it (a resolution may still be pending) */
    LIST_ENTRY(egress_conn) link; /* in run->conns */
    h2o_socket_t *client, *upstream;
    int socks;                    /* accepted on the SOCKS5 listener */
    int socks_greeted;            /* the method negotiation is done */
    enum conn_state state;
    int over_limit;               /* accepted beyond --egress-max-connections: refused once its target is known */
    int method_connect;           /* HTTP CONNECT (else plain forwarding) */
    char host[256];
    int port;
    size_t consumed;              /* request bytes of client->input not relayed */
    char *head;                   /* rewritten plain-HTTP head, sent first */
    size_t head_len;
    size_t in_flight[2];          /* bytes being written to [0] client, [1] upstream */
    h2o_timeout_entry_t idle;
    egress_lookup_t *lookup;      /* the name lookup in flight (egress_dns.c), NULL: none */
    char reply[1024];             /* a refusal or success reply being written */
} egress_conn_t;

struct egress_run {
    egress_policy_t *policy;
    egress_denied_cb cb;
    void *arg;
    h2o_socket_t *chan;       /* the server's end of the run's socketpair, until the listeners came */
    h2o_socket_t *listen[2];  /* HTTP, SOCKS5 */
    LIST_HEAD(, egress_conn) conns;
    int n_conns;
};

static struct {
    h2o_loop_t *loop;
    h2o_timeout_t idle;
    int idle_ready;               /* px.idle is initialised */
    int max_connections;
} px;

static void on_read(h2o_socket_t *sock, const char *err);
static void conn_decide(egress_conn_t *c);

/* Closes a connection's sockets, takes it off its run, drops its lookup and frees it. */
static void conn_close(egress_conn_t *c)
{
    if (c->run != NULL) {
        LIST_REMOVE(c, link);
        c->run->n_conns--;
        egress_state.connections--;
        c->run = NULL;
    }
    if (h2o_timeout_is_linked(&c->idle))
        h2o_timeout_unlink(&c->idle);
    if (c->client != NULL)
        h2o_socket_close(c->client);
    if (c->upstream != NULL)
        h2o_socket_close(c->upstream);
    egress_dns_cancel(c->lookup);
    free(c->head);
    free(c);
}

/* No byte either way for EGRESS_IDLE_MS. */
static void on_idle(h2o_timeout_entry_t *e)
{
    egress_conn_t *c = H2O_STRUCT_FROM_MEMBER(egress_conn_t, idle, e);
    conn_close(c);
}

/* Any activity pushes the idle deadline back. */
static void touch(egress_conn_t *c)
{
    if (h2o_timeout_is_linked(&c->idle))
        h2o_timeout_unlink(&c->idle);
    h2o_timeout_link(px.loop, &px.idle, &c->idle);
}

/* The final reply was written (or failed): done. */
static void on_reply_closed(h2o_socket_t *sock, const char *err)
{
    conn_close(sock->data);
}

/* Writes c->reply (len bytes) to the client, then closes the connection. */
static void reply_and_close(egress_conn_t *c, size_t len)
{
    c->state = CONN_CLOSING;
    h2o_socket_read_stop(c->client);
    h2o_iovec_t iov = h2o_iovec_init(c->reply, len);
    h2o_socket_write(c->client, &iov, 1, on_reply_closed);
}

/* A failure that is not a policy decision (bad request, upstream unreachable): 400/502 or a SOCKS5 code. */
static void fail(egress_conn_t *c, int http_status, int socks_code, const char *why)
{
    if (c->socks) {
        const unsigned char r[10] = {5, (unsigned char)socks_code, 0, 1};
        memcpy(c->reply, r, sizeof(r));
        reply_and_close(c, sizeof(r));
        return;
    }
    int n = snprintf(c->reply, sizeof(c->reply),
                     "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nConnection: close\r\nContent-Length: %zu\r\n\r\n%s\n",
                     http_status, http_status == 400 ? "Bad Request" : "Bad Gateway", strlen(why) + 1, why);
    reply_and_close(c, (size_t)n);
}

/* A policy refusal: counted, reported to the run, answered (403 naming the reason, or SOCKS5 code 2). */
static void refuse(egress_conn_t *c, const char *reason)
{
    egress_count(reason);
    log_debug("egress: %s:%d refused (%s)", c->host, c->port, reason); /* the run's own output says it */
    if (c->run != NULL && c->run->cb != NULL)
        c->run->cb(c->run->arg, c->host, c->port, reason);
    if (c->socks) {
        memcpy(c->reply, "\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00", 10);
        reply_and_close(c, 10);
        return;
    }
    char body[400];
    int bl = snprintf(body, sizeof(body), "mcp-sandboxd egress proxy: connection to %.255s:%d refused (%s)\n", c->host,
                      c->port, reason);
    size_t n = (size_t)snprintf(c->reply, sizeof(c->reply),
                                "HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                                "X-Sandbox-Egress-Denied: %s\r\nContent-Length: %d\r\n\r\n%s",
                                reason, bl, body);
    reply_and_close(c, n < sizeof(c->reply) ? n : sizeof(c->reply) - 1);
}

/* ---------------------------------------------------------------- relay */

/* Sends what `from` holds to the other side; `from` reads again once it was written. */
static void forward(egress_conn_t *c, h2o_socket_t *from);

/* Bytes reached `to`: drop them from the other side's input and let that side read again. */
static void on_relay_written(h2o_socket_t *to, const char *err)
{
    egress_conn_t *c = to->data;
    if (err != NULL) {
        conn_close(c);
        return;
    }
    int k = to == c->upstream;
    h2o_socket_t *from = k ? c->client : c->upstream;
    h2o_buffer_consume(&from->input, c->in_flight[k]);
    egress_state.bytes += c->in_flight[k];
    c->in_flight[k] = 0;
    h2o_socket_read_start(from, on_read);
}

static void forward(egress_conn_t *c, h2o_socket_t *from)
{
    h2o_socket_t *to = from == c->client ? c->upstream : c->client;
    int k = to == c->upstream;
    if (from->input->size == 0 || c->in_flight[k] != 0)
        return;
    h2o_socket_read_stop(from);
    c->in_flight[k] = from->input->size;
    h2o_iovec_t iov = h2o_iovec_init(from->input->bytes, from->input->size);
    h2o_socket_write(to, &iov, 1, on_relay_written);
}

/* Both sides connected and the preamble written: bytes flow both ways. */
static void relay_start(egress_conn_t *c)
{
    c->state = CONN_RELAY;
    h2o_buffer_consume(&c->client->input, c->consumed);
    c->consumed = 0;
    h2o_socket_read_start(c->upstream, on_read);
    if (c->client->input->size > 0)
        forward(c, c->client);
    else
        h2o_socket_read_start(c->client, on_read);
}

/* The preamble went out: relay both ways. */
static void on_preamble_written(h2o_socket_t *sock, const char *err)
{
    egress_conn_t *c = sock->data;
    if (err != NULL)
        conn_close(c);
    else
        relay_start(c);
}

/* The upstream answered the connect: send the preamble (SOCKS5 success, 200 to CONNECT, or the rewritten head). */
static void on_connected(h2o_socket_t *up, const char *err)
{
    egress_conn_t *c = up->data;
    if (err != NULL) {
        h2o_socket_close(up);
        c->upstream = NULL;
        fail(c, 502, 5, "cannot connect to the upstream");
        return;
    }
    touch(c);
    h2o_iovec_t iov;
    if (c->socks) {
        memcpy(c->reply, "\x05\x00\x00\x01\x00\x00\x00\x00\x00\x00", 10);
        iov = h2o_iovec_init(c->reply, 10);
        h2o_socket_write(c->client, &iov, 1, on_preamble_written);
    } else if (c->method_connect) {
        static const char ok[] = "HTTP/1.1 200 Connection established\r\n\r\n";
        iov = h2o_iovec_init(ok, sizeof(ok) - 1);
        h2o_socket_write(c->client, &iov, 1, on_preamble_written);
    } else {
        iov = h2o_iovec_init(c->head, c->head_len);
        h2o_socket_write(c->upstream, &iov, 1, on_preamble_written);
    }
}

/* Caps what the kernel queues for us on this socket (EGRESS_RCVBUF); no Nagle delay on relayed bytes. */
static void tune_socket(h2o_socket_t *sock)
{
    int v = EGRESS_RCVBUF, one = 1;
    setsockopt(h2o_socket_get_fd(sock), SOL_SOCKET, SO_RCVBUF, &v, sizeof(v));
    setsockopt(h2o_socket_get_fd(sock), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* Connects to one checked address. */
static void conn_connect(egress_conn_t *c, const struct sockaddr *sa, socklen_t len)
{
    egress_count(NULL);
    c->state = CONN_CONNECTING;
    c->upstream = h2o_socket_connect(px.loop, (struct sockaddr *)sa, len, on_connected);
    if (c->upstream == NULL) {
        fail(c, 502, 5, "cannot connect to the upstream");
        return;
    }
    c->upstream->data = c;
    tune_socket(c->upstream);
}

/* The addresses a name resolved to: every one must pass; the first is connected to. */
static void conn_addresses(egress_conn_t *c, const struct sockaddr_storage *addrs, int n)
{
    if (n <= 0) {
        fail(c, 502, 4, "cannot resolve the name");
        return;
    }
    for (int i = 0; i < n; i++)
        if ((addrs[i].ss_family != AF_INET && addrs[i].ss_family != AF_INET6) ||
            !egress_address_ok((const struct sockaddr *)&addrs[i])) {
            refuse(c, EGRESS_PRIVATE);
            return;
        }
    conn_connect(c, (const struct sockaddr *)&addrs[0],
                 addrs[0].ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
}

/* ---------------------------------------------------------------- resolution */

/* The lookup answered (on the loop): connect, or tell the client why not. */
static void on_looked_up(void *arg, int status, const struct sockaddr_storage *addrs, int n)
{
    egress_conn_t *c = arg;
    c->lookup = NULL;
    if (status == EGRESS_DNS_TIMEOUT)
        fail(c, 504, 4, "the name lookup timed out");
    else
        conn_addresses(c, addrs, status == EGRESS_DNS_OK ? n : 0);
}

/* Resolves c->host without blocking the loop (c-ares; bounded in number and time). */
static void conn_resolve(egress_conn_t *c)
{
    c->state = CONN_RESOLVING;
    c->lookup = egress_dns_lookup(c->host, c->port, on_looked_up, c);
    if (c->lookup == NULL)
        fail(c, 503, 1, "too many name lookups in flight");
}

/* A host name or literal as a resolver takes it: letters, digits, '-', '_', '.', ':' (IPv6). */
static int host_ok(const char *h)
{
    for (; *h; h++)
        if (!isalnum((unsigned char)*h) && *h != '-' && *h != '_' && *h != '.' && *h != ':')
            return 0;
    return 1;
}

/* The target is known: decide by name, then by address. */
static void conn_decide(egress_conn_t *c)
{
    if (!host_ok(c->host)) {
        fail(c, 400, 1, "not a host name");
        return;
    }
    if (c->over_limit) {
        refuse(c, EGRESS_LIMIT);
        return;
    }
    const char *why = egress_decide_name(c->run->policy, c->host, c->port);
    if (why != NULL) {
        refuse(c, why);
        return;
    }
    struct sockaddr_storage ss;
    if (egress_pinned(c->host, c->port, &ss) == 0 || egress_numeric_addr(c->host, c->port, &ss) == 0) {
        if (!egress_address_ok((struct sockaddr *)&ss)) {
            refuse(c, EGRESS_PRIVATE);
            return;
        }
        conn_connect(c, (struct sockaddr *)&ss,
                     ss.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
        return;
    }
    conn_resolve(c);
}

/* ---------------------------------------------------------------- requests */

/* Splits "host:port" / "[v6]:port" (port default `dflt`) into c->host, c->port; 0 / -1. */
static int set_target(egress_conn_t *c, const char *s, size_t n, int dflt)
{
    const char *colon = NULL, *h = s;
    size_t hl = n;
    if (n > 0 && s[0] == '[') {
        const char *close = memchr(s, ']', n);
        if (close == NULL)
            return -1;
        h = s + 1;
        hl = (size_t)(close - h);
        colon = close + 1 < s + n && close[1] == ':' ? close + 1 : NULL;
    } else {
        colon = memchr(s, ':', n);
        if (colon != NULL)
            hl = (size_t)(colon - s);
    }
    if (hl == 0 || hl >= sizeof(c->host))
        return -1;
    memcpy(c->host, h, hl);
    c->host[hl] = '\0';
    c->port = dflt;
    if (colon != NULL) {
        c->port = 0;
        for (const char *p = colon + 1; p < s + n; p++) {
            if (*p < '0' || *p > '9' || c->port > 65535)
                return -1;
            c->port = c->port * 10 + (*p - '0');
        }
    }
    return c->port >= 1 && c->port <= 65535 ? 0 : -1;
}

/* Is this header dropped when forwarding (hop-by-hop, the proxy's own, or Host: the decided name replaces it)? */
static int hop_header(const char *line, size_t n)
{
    static const char *const names[] = {"proxy-connection:", "proxy-authorization:", "connection:", "keep-alive:",
                                        "host:"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (n >= strlen(names[i]) && !strncasecmp(line, names[i], strlen(names[i])))
            return 1;
    return 0;
}

/* Every header line is `token:` then a value (no obs-fold, no space before the colon): 1 / 0. */
static int headers_ok(const char *l, const char *end)
{
    while (l < end) {
        const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
        const char *e = eol != NULL ? eol : end, *colon = memchr(l, ':', (size_t)(e - l));
        if (colon == NULL || colon == l)
            return 0;
        for (const char *c = l; c < colon; c++)
            if (!isalnum((unsigned char)*c) && strchr("!#$%&'*+-.^_`|~", *c) == NULL)
                return 0;
        l = e + 2;
    }
    return 1;
}

/* Builds the origin-form head for a plain HTTP request: one request per connection. */
static void rewrite_head(egress_conn_t *c, const char *method, size_t ml, const char *path, size_t pl,
                         const char *version, size_t vl, const char *headers, const char *end)
{
    strbuf_t b = {0};
    strbuf_append(&b, method, ml);
    strbuf_puts(&b, " ");
    if (pl == 0)
        strbuf_puts(&b, "/");
    else
        strbuf_append(&b, path, pl);
    strbuf_puts(&b, " ");
    strbuf_append(&b, version, vl);
    /* the name that was decided, not one the client chose (no fronting another site on a shared address) */
    if (c->port == 80)
        strbuf_printf(&b, strchr(c->host, ':') ? "\r\nHost: [%s]\r\n" : "\r\nHost: %s\r\n", c->host);
    else
        strbuf_printf(&b, strchr(c->host, ':') ? "\r\nHost: [%s]:%d\r\n" : "\r\nHost: %s:%d\r\n", c->host, c->port);
    for (const char *l = headers; l < end;) {
        const char *eol = memmem(l, (size_t)(end - l), "\r\n", 2);
        size_t n = eol != NULL ? (size_t)(eol - l) : (size_t)(end - l);
        if (n > 0 && !hop_header(l, n)) {
            strbuf_append(&b, l, n);
            strbuf_puts(&b, "\r\n");
        }
        l += n + 2;
    }
    strbuf_puts(&b, "Connection: close\r\n\r\n");
    c->head = strbuf_steal(&b, &c->head_len);
}

/* Parses the request line of a complete HTTP head (`n` bytes, CRLFCRLF included). 0, or -1 (bad request). */
static int parse_http(egress_conn_t *c, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) /* lines end in CRLF only: no bare CR or LF to smuggle a header past us */
        if (s[i] == '\0' || (s[i] == '\r' && (i + 1 == n || s[i + 1] != '\n')) || (s[i] == '\n' && (i == 0 || s[i - 1] != '\r')))
            return -1;
    const char *eol = memmem(s, n, "\r\n", 2);
    const char *sp1 = memchr(s, ' ', (size_t)(eol - s));
    const char *sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (sp1 == NULL || sp2 == NULL || eol - sp2 - 1 != 8 || (memcmp(sp2 + 1, "HTTP/1.1", 8) && memcmp(sp2 + 1, "HTTP/1.0", 8)))
        return -1;
    for (const char *m = s; m < sp1; m++) /* a method is a token */
        if (!isalnum((unsigned char)*m) && *m != '-' && *m != '_')
            return -1;
    const char *target = sp1 + 1;
    size_t tl = (size_t)(sp2 - target);
    if ((size_t)(sp1 - s) == 7 && !memcmp(s, "CONNECT", 7)) {
        c->method_connect = 1;
        return set_target(c, target, tl, 0);
    }
    if (tl < 8 || strncasecmp(target, "http://", 7) != 0)
        return -1; /* origin-form (not a proxy request) or https:// without CONNECT */
    const char *auth = target + 7, *path = memchr(auth, '/', tl - 7);
    size_t al = path != NULL ? (size_t)(path - auth) : tl - 7;
    const char *at = memchr(auth, '@', al);
    if (at != NULL || set_target(c, auth, al, 80) != 0 || !headers_ok(eol + 2, s + n - 2))
        return -1; /* no userinfo: it would hide the host */
    rewrite_head(c, s, (size_t)(sp1 - s), path, path != NULL ? (size_t)(sp2 - path) : 0, sp2 + 1,
                 (size_t)(eol - sp2 - 1), eol + 2, s + n - 2);
    return 0;
}

static void on_handshake(egress_conn_t *c);

/* The method reply went out: read the CONNECT request (maybe already here). */
static void on_socks_greeted(h2o_socket_t *sock, const char *err)
{
    egress_conn_t *c = sock->data;
    if (err != NULL) {
        conn_close(c);
        return;
    }
    h2o_socket_read_start(sock, on_read);
    if (sock->input->size > 0)
        on_handshake(c);
}

/* SOCKS5: method negotiation, then the CONNECT request. 1 when the target is known, 0 for more bytes, -1 bad. */
static int parse_socks(egress_conn_t *c, const unsigned char *s, size_t n)
{
    if (!c->socks_greeted) {
        if (n < 2 || n < 2u + s[1])
            return 0;
        if (s[0] != 5 || memchr(s + 2, 0, s[1]) == NULL) {
            memcpy(c->reply, "\x05\xff", 2);
            reply_and_close(c, 2);
            return -2;
        }
        h2o_buffer_consume(&c->client->input, 2u + s[1]);
        c->socks_greeted = 1;
        static const char ok[] = "\x05\x00";
        h2o_iovec_t iov = h2o_iovec_init(ok, 2);
        h2o_socket_read_stop(c->client); /* one write at a time: the request is read once this is sent */
        h2o_socket_write(c->client, &iov, 1, on_socks_greeted);
        return 0;
    }
    if (n < 5)
        return 0;
    size_t need = s[3] == 1 ? 10 : s[3] == 4 ? 22 : s[3] == 3 ? 7u + s[4] : 0;
    if (s[0] != 5 || s[1] != 1 || need == 0)
        return -1;
    if (n < need)
        return 0;
    char host[256];
    if (s[3] == 1)
        inet_ntop(AF_INET, s + 4, host, sizeof(host));
    else if (s[3] == 4)
        inet_ntop(AF_INET6, s + 4, host, sizeof(host));
    else {
        memcpy(host, s + 5, s[4]);
        host[s[4]] = '\0';
    }
    if (host[0] == '\0' || strlen(host) >= sizeof(c->host))
        return -1;
    strcpy(c->host, host);
    c->port = (s[need - 2] << 8) | s[need - 1];
    c->consumed = need;
    return c->port > 0 ? 1 : -1;
}

/* Bytes of the request arrived: once it is complete, decide. */
static void on_handshake(egress_conn_t *c)
{
    h2o_buffer_t *in = c->client->input;
    if (c->socks) {
        int r = parse_socks(c, (const unsigned char *)in->bytes, in->size);
        if (r == -1)
            fail(c, 400, 7, "bad SOCKS5 request");
        else if (r == 1) {
            h2o_socket_read_stop(c->client);
            conn_decide(c);
        } else if (r == 0 && in->size > EGRESS_HEAD_MAX)
            fail(c, 400, 1, "request too long");
        return;
    }
    const char *end = memmem(in->bytes, in->size, "\r\n\r\n", 4);
    if (end == NULL) {
        if (in->size > EGRESS_HEAD_MAX)
            fail(c, 400, 1, "request head too long");
        return;
    }
    c->consumed = (size_t)(end + 4 - in->bytes);
    h2o_socket_read_stop(c->client);
    if (parse_http(c, in->bytes, c->consumed) != 0) {
        fail(c, 400, 1, "not a proxy request: use CONNECT host:port or an absolute http:// URL");
        return;
    }
    conn_decide(c);
}

/* Either side of a connection read bytes (or failed): the request while handshaking, else the relay. */
static void on_read(h2o_socket_t *sock, const char *err)
{
    egress_conn_t *c = sock->data;
    if (err != NULL) {
        conn_close(c);
        return;
    }
    touch(c);
    if (c->state == CONN_HANDSHAKE)
        on_handshake(c);
    else if (c->state == CONN_RELAY)
        forward(c, sock);
}

/* ---------------------------------------------------------------- the run's endpoint */

/* A listener is readable: accept what is waiting (each connection counted against the cap). */
static void on_accept(h2o_socket_t *listener, const char *err)
{
    egress_run_t *r = listener->data;
    if (err != NULL)
        return;
    int lfd = h2o_socket_get_fd(listener);
    for (int i = 0; i < 16; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        if (r->n_conns >= 2 * px.max_connections) { /* far beyond the cap: not even an answer */
            egress_count(EGRESS_LIMIT);
            close(fd);
            continue;
        }
        egress_conn_t *c = xcalloc(1, sizeof(*c));
        c->run = r;
        c->socks = listener == r->listen[1];
        c->over_limit = r->n_conns >= px.max_connections;
        LIST_INSERT_HEAD(&r->conns, c, link);
        r->n_conns++;
        egress_state.connections++;
        c->client = h2o_evloop_socket_create(px.loop, fd, 0);
        c->client->data = c;
        tune_socket(c->client);
        c->idle.cb = on_idle;
        touch(c);
        h2o_socket_read_start(c->client, on_read);
    }
}

/* Takes one listener from the bridge: a listening TCP socket on 127.0.0.1 of the run's namespace. */
static void adopt_listener(egress_run_t *r, int fd)
{
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    int listening = 0, type = 0;
    socklen_t ol = sizeof(int);
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &ol) != 0 || !listening ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &ol) != 0 || type != SOCK_STREAM ||
        getsockname(fd, (struct sockaddr *)&a, &al) != 0 || a.sin_family != AF_INET) {
        close(fd);
        return;
    }
    int k = ntohs(a.sin_port) == EGRESS_SOCKS_PORT ? 1 : ntohs(a.sin_port) == EGRESS_HTTP_PORT ? 0 : -1;
    if (k < 0 || r->listen[k] != NULL) {
        close(fd);
        return;
    }
    r->listen[k] = h2o_evloop_socket_create(px.loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    r->listen[k]->data = r;
    h2o_socket_read_start(r->listen[k], on_accept);
}

/* The bridge sent its listeners (or went away): adopt them, then close the channel. */
static void on_chan(h2o_socket_t *chan, const char *err)
{
    egress_run_t *r = chan->data;
    char byte;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int) * 2)];
    } cm;
    struct iovec iov = {&byte, 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cm.buf, .msg_controllen = sizeof(cm.buf)};
    ssize_t n = err != NULL ? -1 : recvmsg(h2o_socket_get_fd(chan), &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; h != NULL; h = CMSG_NXTHDR(&msg, h))
        if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) {
            int fds[2], nfd = (int)((h->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            memcpy(fds, CMSG_DATA(h), sizeof(int) * (size_t)(nfd > 2 ? 2 : nfd));
            for (int i = 0; i < nfd && i < 2; i++)
                adopt_listener(r, fds[i]);
        }
    h2o_socket_close(chan);
    r->chan = NULL;
}

egress_run_t *egress_run_start(const egress_policy_t *p, egress_denied_cb cb, void *arg, int *child_fd, char *err,
                               size_t errlen)
{
    int sv[2];
    if (egress_bridge_path() == NULL) {
        snprintf(err, errlen, "the egress bridge (mcp-sandboxd-bridge next to the server binary) is missing: "
                              "domain allow-lists are unavailable on this server");
        return NULL;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0) {
        snprintf(err, errlen, "cannot create the run's proxy channel: %s", strerror(errno));
        return NULL;
    }
    egress_run_t *r = xcalloc(1, sizeof(*r));
    r->policy = egress_policy_copy(p);
    r->cb = cb;
    r->arg = arg;
    LIST_INIT(&r->conns);
    r->chan = h2o_evloop_socket_create(px.loop, sv[0], H2O_SOCKET_FLAG_DONT_READ);
    r->chan->data = r;
    h2o_socket_read_start(r->chan, on_chan);
    *child_fd = sv[1];
    egress_state.endpoints++;
    return r;
}

void egress_run_close(egress_run_t *r)
{
    if (r == NULL)
        return;
    while (!LIST_EMPTY(&r->conns))
        conn_close(LIST_FIRST(&r->conns));
    if (r->chan != NULL)
        h2o_socket_close(r->chan);
    for (int k = 0; k < 2; k++)
        if (r->listen[k] != NULL)
            h2o_socket_close(r->listen[k]);
    egress_policy_free(r->policy);
    free(r);
    egress_state.endpoints--;
}

int egress_proxy_init(h2o_loop_t *loop, int max_connections, int max_lookups, int resolve_timeout, char *err,
                      size_t errlen)
{
    px.loop = loop;
    px.max_connections = max_connections > 0 ? max_connections : 64;
    if (!px.idle_ready) { /* once (unit tests initialise again) */
        h2o_timeout_init(loop, &px.idle, EGRESS_IDLE_MS);
        px.idle_ready = 1;
    }
    return egress_dns_init(loop, max_lookups, resolve_timeout, err, errlen);
}

void egress_proxy_cleanup(void)
{
    egress_dns_cleanup();
}
