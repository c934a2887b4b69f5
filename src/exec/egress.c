/*
 * egress: policies, the operator's settings and the decisions (names and
 * addresses). The proxy itself lives in egress_proxy.c.
 */
#include "exec/egress.h"
#include "exec/egress_internal.h"
#include "core/metrics.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EGRESS_MAX_ENTRIES 256

/* One pattern: "*" (any), "*.suffix" (names below suffix), or an exact name; port 0 = any. */
typedef struct egress_pattern {
    char name[256]; /* lowercase, without "*." */
    int wildcard;   /* 1: "*.name"; 2: "*" */
    int port;
} egress_pattern_t;

struct egress_policy {
    egress_pattern_t allow[EGRESS_MAX_ENTRIES];
    int n_allow;
    egress_pattern_t deny[EGRESS_MAX_ENTRIES];
    int n_deny;
};

/* An address range: family, network bytes, prefix length. */
typedef struct egress_cidr {
    int family;
    unsigned char addr[16];
    int prefix;
} egress_cidr_t;

/* A pinned name. */
typedef struct egress_pin {
    char name[256];
    struct sockaddr_storage addr;
} egress_pin_t;

/* Everything egress_init() parsed: read-only afterwards (loop thread). */
static struct {
    egress_pattern_t ceiling[EGRESS_MAX_ENTRIES];
    int n_ceiling;
    egress_cidr_t open[64];
    int n_open;
    egress_pin_t pins[64];
    int n_pins;
    struct sockaddr_storage own[8]; /* the server's listener and Redis: never reached (port always set) */
    int n_own;
    int own_any_port[8];            /* listener on a wildcard address: that port on every address */
    char bridge[4096];
} eg;

egress_state_t egress_state;

/* Parses "name", "*.name", "*", with an optional ":port" (IPv6 literals in brackets). 0 / -1. */
static int pattern_parse(const char *s, egress_pattern_t *p)
{
    memset(p, 0, sizeof(*p));
    const char *host = s, *colon = NULL;
    size_t hl;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL)
            return -1;
        host = s + 1;
        hl = (size_t)(close - host);
        colon = close[1] == ':' ? close + 1 : close[1] == '\0' ? NULL : (const char *)-1;
        if (colon == (const char *)-1)
            return -1;
    } else {
        colon = strrchr(s, ':');
        if (colon != NULL && strchr(s, ':') != colon)
            colon = NULL; /* a bare IPv6 literal: no port */
        hl = colon != NULL ? (size_t)(colon - s) : strlen(s);
    }
    if (colon != NULL) {
        char *end;
        long port = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || port < 1 || port > 65535)
            return -1;
        p->port = (int)port;
    }
    if (hl == 1 && host[0] == '*') {
        p->wildcard = 2;
        return 0;
    }
    if (hl > 2 && host[0] == '*' && host[1] == '.') {
        p->wildcard = 1;
        host += 2;
        hl -= 2;
    }
    if (hl > 1 && host[hl - 1] == '.')
        hl--; /* "example.com." is "example.com" (as egress_decide_name treats the names asked for) */
    if (hl == 0 || hl >= sizeof(p->name))
        return -1;
    for (size_t i = 0; i < hl; i++) {
        unsigned char c = (unsigned char)host[i];
        if (!isalnum(c) && c != '-' && c != '.' && c != '_' && c != ':')
            return -1;
        p->name[i] = (char)tolower(c);
    }
    p->name[hl] = '\0';
    /* no empty label: ".x", "x..y", "x.." never match a name asked for */
    return p->name[0] == '.' || p->name[hl - 1] == '.' || strstr(p->name, "..") != NULL ? -1 : 0;
}

/* Does the pattern match the (lowercase) host and port? */
static int pattern_match(const egress_pattern_t *p, const char *host, int port)
{
    if (p->port != 0 && p->port != port)
        return 0;
    if (p->wildcard == 2)
        return 1;
    if (!p->wildcard)
        return !strcmp(p->name, host);
    size_t n = strlen(p->name), h = strlen(host);
    return h > n + 1 && host[h - n - 1] == '.' && !strcmp(host + h - n, p->name);
}

/* Is everything pattern `in` matches also matched by `outer`? */
static int pattern_within(const egress_pattern_t *in, const egress_pattern_t *outer)
{
    if (outer->port != 0 && outer->port != in->port)
        return 0;
    if (outer->wildcard == 2)
        return 1;
    if (in->wildcard == 2)
        return 0;
    if (!in->wildcard)
        return pattern_match(outer, in->name, outer->port != 0 ? outer->port : in->port);
    if (!outer->wildcard)
        return 0;
    egress_pattern_t probe = *outer;
    probe.port = 0;
    return !strcmp(in->name, outer->name) || pattern_match(&probe, in->name, 0);
}

/* Is the pattern inside the operator's ceiling? */
static int within_ceiling(const egress_pattern_t *p)
{
    if (eg.n_ceiling == 0)
        return 1; /* before egress_init (unit tests): the default "*" */
    for (int i = 0; i < eg.n_ceiling; i++)
        if (pattern_within(p, &eg.ceiling[i]))
            return 1;
    return 0;
}

int egress_policy_add(egress_policy_t **pp, int deny, const char *entry, char *err, size_t errlen)
{
    egress_pattern_t pat;
    if (pattern_parse(entry, &pat) != 0) {
        snprintf(err, errlen, "'%.100s' is not a domain pattern (name, *.name or *, with an optional :port)", entry);
        return -1;
    }
    if (!deny && !within_ceiling(&pat)) {
        snprintf(err, errlen, "'%.100s' is outside what this server allows (the operator's --egress-domains ceiling)",
                 entry);
        return -1;
    }
    if (*pp == NULL)
        *pp = xcalloc(1, sizeof(**pp));
    egress_policy_t *p = *pp;
    if ((deny ? p->n_deny : p->n_allow) >= EGRESS_MAX_ENTRIES) {
        snprintf(err, errlen, "at most %d entries", EGRESS_MAX_ENTRIES);
        return -1;
    }
    if (deny)
        p->deny[p->n_deny++] = pat;
    else
        p->allow[p->n_allow++] = pat;
    return 0;
}

int egress_policy_any_allowed(const egress_policy_t *p)
{
    return p != NULL && p->n_allow > 0;
}

void egress_policy_free(egress_policy_t *p)
{
    free(p);
}

egress_policy_t *egress_policy_copy(const egress_policy_t *p)
{
    egress_policy_t *c = xcalloc(1, sizeof(*c));
    memcpy(c, p, sizeof(*c));
    return c;
}

const char *egress_decide_name(const egress_policy_t *p, const char *host, int port)
{
    char low[256];
    size_t n = strlen(host);
    if (n == 0 || n >= sizeof(low))
        return EGRESS_NOT_ALLOWED;
    for (size_t i = 0; i <= n; i++)
        low[i] = (char)tolower((unsigned char)host[i]);
    if (n > 1 && low[n - 1] == '.')
        low[n - 1] = '\0'; /* "example.com." is "example.com" */
    for (int i = 0; i < p->n_deny; i++)
        if (pattern_match(&p->deny[i], low, port))
            return EGRESS_DENIED;
    int ceiling = eg.n_ceiling == 0;
    for (int i = 0; i < eg.n_ceiling && !ceiling; i++)
        ceiling = pattern_match(&eg.ceiling[i], low, port);
    if (!ceiling)
        return EGRESS_CEILING;
    for (int i = 0; i < p->n_allow; i++)
        if (pattern_match(&p->allow[i], low, port))
            return NULL;
    return EGRESS_NOT_ALLOWED;
}

/* ---------------------------------------------------------------- addresses */

/* The bytes and family of an address (IPv4-mapped IPv6 counts as IPv4). */
static int addr_bytes(const struct sockaddr *sa, unsigned char out[16], int *port)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        memcpy(out, &in->sin_addr, 4);
        *port = ntohs(in->sin_port);
        return AF_INET;
    }
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
    *port = ntohs(in6->sin6_port);
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
        memcpy(out, in6->sin6_addr.s6_addr + 12, 4);
        return AF_INET;
    }
    memcpy(out, in6->sin6_addr.s6_addr, 16);
    return AF_INET6;
}

/* Is `a` (of `family`) inside the range? */
static int cidr_match(const egress_cidr_t *c, int family, const unsigned char *a)
{
    if (c->family != family)
        return 0;
    int full = c->prefix / 8, rest = c->prefix % 8;
    if (memcmp(c->addr, a, (size_t)full) != 0)
        return 0;
    return rest == 0 || ((c->addr[full] ^ a[full]) & (0xff << (8 - rest))) == 0;
}

/* Parses "ADDR/PREFIX" (a bare address is a /32 or /128). 0 / -1. */
static int cidr_parse(const char *s, egress_cidr_t *c)
{
    char buf[128];
    if (strlen(s) >= sizeof(buf))
        return -1;
    strcpy(buf, s);
    char *slash = strchr(buf, '/');
    if (slash != NULL)
        *slash++ = '\0';
    memset(c, 0, sizeof(*c));
    c->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
    if (inet_pton(c->family, buf, c->addr) != 1)
        return -1;
    int max = c->family == AF_INET ? 32 : 128;
    char *end = NULL;
    long prefix = slash != NULL ? strtol(slash, &end, 10) : max;
    if (slash != NULL && (*slash == '\0' || *end != '\0'))
        return -1;
    if (prefix < 0 || prefix > max)
        return -1;
    c->prefix = (int)prefix;
    return 0;
}

/* The ranges refused by default: loopback, link-local (metadata), private, CGNAT, multicast, reserved. */
static const char *const refused_ranges[] = {
    "0.0.0.0/8",   "127.0.0.0/8",  "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
    "100.64.0.0/10", "192.0.0.0/24", "198.18.0.0/15", "224.0.0.0/4", "240.0.0.0/4", "::/128", "::1/128",
    "fe80::/10",   "fc00::/7",     "ff00::/8",   "64:ff9b::/96",  "fd00:ec2::254/128", "2001:db8::/32"};

/* Is it the server's own listener or Redis? */
static int addr_is_own(int family, const unsigned char *a, int port)
{
    for (int i = 0; i < eg.n_own; i++) {
        unsigned char o[16];
        int oport, of = addr_bytes((const struct sockaddr *)&eg.own[i], o, &oport);
        if (oport != port)
            continue;
        if (eg.own_any_port[i] || (of == family && !memcmp(o, a, family == AF_INET ? 4 : 16)))
            return 1;
    }
    return 0;
}

int egress_address_ok(const struct sockaddr *sa)
{
    unsigned char a[16];
    int port, family = addr_bytes(sa, a, &port);
    if (addr_is_own(family, a, port))
        return 0;
    for (int i = 0; i < eg.n_open; i++)
        if (cidr_match(&eg.open[i], family, a))
            return 1;
    for (size_t i = 0; i < sizeof(refused_ranges) / sizeof(refused_ranges[0]); i++) {
        egress_cidr_t c;
        if (cidr_parse(refused_ranges[i], &c) == 0 && cidr_match(&c, family, a))
            return 0;
    }
    return 1;
}

/* Fills `ss` from a numeric address and a port; 0 / -1. */
int egress_numeric_addr(const char *host, int port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *in = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons((uint16_t)port);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        return 0;
    }
    return -1;
}

int egress_pinned(const char *host, int port, struct sockaddr_storage *ss)
{
    for (int i = 0; i < eg.n_pins; i++)
        if (!strcasecmp(eg.pins[i].name, host)) {
            *ss = eg.pins[i].addr;
            if (ss->ss_family == AF_INET)
                ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
            else
                ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
            return 0;
        }
    return -1;
}

/* ---------------------------------------------------------------- settings */

/* Notes an address (numeric or a name, resolved once at startup) and port the runs may never reach. */
static void add_own(const char *host, int port)
{
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    char ps[16];
    snprintf(ps, sizeof(ps), "%d", port);
    int any = host[0] == '\0' || !strcmp(host, "0.0.0.0") || !strcmp(host, "::") || !strcmp(host, "*");
    if (getaddrinfo(any ? "0.0.0.0" : host, ps, &hints, &res) != 0)
        return;
    for (struct addrinfo *ai = res; ai != NULL && eg.n_own < 8; ai = ai->ai_next) {
        memcpy(&eg.own[eg.n_own], ai->ai_addr, ai->ai_addrlen);
        eg.own_any_port[eg.n_own++] = any;
    }
    freeaddrinfo(res);
}

/* --egress-resolve NAME=ADDR entries into pins; 0, or -1 with err. */
static int parse_pins(const egress_settings_t *s, char *err, size_t errlen)
{
    for (int i = 0; i < s->n_resolve; i++) {
        const char *eq = strchr(s->resolve[i], '=');
        egress_pin_t *pin = &eg.pins[eg.n_pins];
        size_t nl = eq != NULL ? (size_t)(eq - s->resolve[i]) : 0;
        if (eg.n_pins >= 64 || nl == 0 || nl >= sizeof(pin->name) ||
            egress_numeric_addr(eq + 1, 0, &pin->addr) != 0) {
            snprintf(err, errlen, "--egress-resolve: expected NAME=ADDR (a numeric address), got '%.100s'",
                     s->resolve[i]);
            return -1;
        }
        memcpy(pin->name, s->resolve[i], nl);
        pin->name[nl] = '\0';
        eg.n_pins++;
    }
    return 0;
}

/* Finds mcp-sandboxd-bridge next to the server binary (MCP_SANDBOXD_BRIDGE overrides). */
static void find_bridge(void)
{
    const char *env = getenv("MCP_SANDBOXD_BRIDGE");
    char self[4096];
    eg.bridge[0] = '\0';
    if (env != NULL && env[0] == '/') {
        snprintf(eg.bridge, sizeof(eg.bridge), "%s", env);
    } else {
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0)
            return;
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash == NULL)
            return;
        *slash = '\0';
        snprintf(eg.bridge, sizeof(eg.bridge), "%s/mcp-sandboxd-bridge", self);
    }
    if (access(eg.bridge, X_OK) != 0)
        eg.bridge[0] = '\0';
}

int egress_init(h2o_loop_t *loop, const egress_settings_t *s, char *err, size_t errlen)
{
    memset(&eg, 0, sizeof(eg));
    for (int i = 0; i < s->n_ceiling; i++)
        if (eg.n_ceiling >= EGRESS_MAX_ENTRIES || pattern_parse(s->ceiling[i], &eg.ceiling[eg.n_ceiling++]) != 0) {
            snprintf(err, errlen, "--egress-domains: '%.100s' is not a domain pattern", s->ceiling[i]);
            return -1;
        }
    if (eg.n_ceiling == 0)
        pattern_parse("*", &eg.ceiling[eg.n_ceiling++]);
    for (int i = 0; i < s->n_allow_cidr; i++)
        if (eg.n_open >= 64 || cidr_parse(s->allow_cidr[i], &eg.open[eg.n_open++]) != 0) {
            snprintf(err, errlen, "--egress-allow-cidr: '%.100s' is not ADDR/PREFIX", s->allow_cidr[i]);
            return -1;
        }
    if (parse_pins(s, err, errlen) != 0)
        return -1;
    if (s->listen_host != NULL)
        add_own(s->listen_host, s->listen_port);
    if (s->redis_host != NULL && s->redis_host[0])
        add_own(s->redis_host, s->redis_port);
    find_bridge();
    if (egress_proxy_init(loop, s->max_connections, s->max_lookups, s->resolve_timeout, err, errlen) != 0)
        return -1;
    static int registered; /* once (unit tests initialise again) */
    if (!registered++)
        metrics_register_provider(egress_metrics_render);
    return 0;
}

void egress_cleanup(void)
{
    egress_proxy_cleanup();
}

const char *egress_bridge_path(void)
{
    return eg.bridge[0] ? eg.bridge : NULL;
}

void egress_metrics_render(strbuf_t *out)
{
    static const char *const names[EGRESS_N_OUTCOMES] = {"allowed", "not allowed", "denied", "private address",
                                                         "ceiling", "limit"};
    strbuf_puts(out, "# HELP mcp_sandboxd_egress_decisions_total Proxy decisions by outcome.\n"
                     "# TYPE mcp_sandboxd_egress_decisions_total counter\n");
    for (int i = 0; i < EGRESS_N_OUTCOMES; i++)
        strbuf_printf(out, "mcp_sandboxd_egress_decisions_total{outcome=\"%s\"} %llu\n", names[i],
                      (unsigned long long)egress_state.decisions[i]);
    strbuf_printf(out, "# HELP mcp_sandboxd_egress_bytes_total Bytes relayed by the egress proxy.\n"
                       "# TYPE mcp_sandboxd_egress_bytes_total counter\nmcp_sandboxd_egress_bytes_total %llu\n",
                  (unsigned long long)egress_state.bytes);
    strbuf_printf(out, "# HELP mcp_sandboxd_egress_endpoints Runs with an open proxy endpoint.\n"
                       "# TYPE mcp_sandboxd_egress_endpoints gauge\nmcp_sandboxd_egress_endpoints %ld\n"
                       "# HELP mcp_sandboxd_egress_connections Open proxy connections of all runs.\n"
                       "# TYPE mcp_sandboxd_egress_connections gauge\nmcp_sandboxd_egress_connections %ld\n",
                  egress_state.endpoints, egress_state.connections);
}

/* Counts a decision; reason NULL = allowed. */
void egress_count(const char *reason)
{
    static const char *const reasons[] = {NULL, EGRESS_NOT_ALLOWED, EGRESS_DENIED, EGRESS_PRIVATE, EGRESS_CEILING,
                                          EGRESS_LIMIT};
    for (int i = 0; i < EGRESS_N_OUTCOMES; i++)
        if (reasons[i] == reason || (reason != NULL && reasons[i] != NULL && !strcmp(reasons[i], reason))) {
            egress_state.decisions[i]++;
            return;
        }
}
