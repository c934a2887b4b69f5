/*
 * Fuzz target: what the egress proxy reads from a hostile run (issue 14):
 * HTTP proxy request heads (src/egress_proxy.c, included to reach its static
 * parsers), SOCKS5 CONNECT requests, and the run's allowed_domains entries
 * with the decisions on them (src/egress.c). The first input byte picks which.
 * Invariants:
 *   - an accepted HTTP head gives a host of 1..255 resolver characters and a
 *     port in 1..65535; a plain request is rewritten into a head that ends at
 *     its first blank line, carries exactly one Host line (the decided name)
 *     and no Proxy-Authorization / Proxy-Connection / Connection: keep-alive
 *     from the client;
 *   - an accepted SOCKS5 request gives a non-empty host, a port > 0 and
 *     consumes no more than it was given;
 *   - an entry accepted into a policy and also denied is always "denied".
 */
#include "../../src/exec/egress.c"
#include "../../src/exec/egress_proxy.c"

#include <stdint.h>

#include "fuzz_check.h"

/* Counts case-insensitive occurrences of a header name at line starts. */
static int count_header(const char *head, size_t n, const char *name)
{
    int k = 0;
    size_t nl = strlen(name);
    for (size_t i = 0; i + nl <= n; i++)
        if ((i == 0 || head[i - 1] == '\n') && !strncasecmp(head + i, name, nl))
            k++;
    return k;
}

static void fuzz_http(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 4);
    memcpy(buf, data, size);
    memcpy(buf + size, "\r\n\r\n", 4);
    size_t n = (size_t)((char *)memmem(buf, size + 4, "\r\n\r\n", 4) - buf) + 4;
    egress_conn_t c;
    memset(&c, 0, sizeof(c));
    if (parse_http(&c, buf, n) == 0) {
        size_t hl = strlen(c.host);
        CHECK(hl >= 1 && hl < sizeof(c.host));
        CHECK(c.port >= 1 && c.port <= 65535);
        if (!c.method_connect) {
            CHECK(c.head != NULL && c.head_len >= 4);
            CHECK(memmem(c.head, c.head_len, "\r\n\r\n", 4) == c.head + c.head_len - 4);
            CHECK(count_header(c.head, c.head_len, "host:") == 1);
            CHECK(count_header(c.head, c.head_len, "proxy-authorization:") == 0);
            CHECK(count_header(c.head, c.head_len, "proxy-connection:") == 0);
            CHECK(count_header(c.head, c.head_len, "connection:") == 1); /* ours: close */
        }
    }
    free(c.head);
    free(buf);
}

static void fuzz_socks(const uint8_t *data, size_t size)
{
    egress_conn_t c;
    memset(&c, 0, sizeof(c));
    c.socks = c.socks_greeted = 1;
    if (parse_socks(&c, data, size) == 1) {
        CHECK(c.host[0] != '\0' && strlen(c.host) < sizeof(c.host));
        CHECK(c.port > 0 && c.port <= 65535);
        CHECK(c.consumed <= size);
    }
}

/* NUL-separated entries; the last piece is a name:port to decide. */
static void fuzz_policy(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1), err[256];
    memcpy(buf, data, size);
    buf[size] = '\0';
    egress_policy_t *p = NULL;
    const char *last = buf;
    for (char *s = buf; s < buf + size; s += strlen(s) + 1) {
        last = s;
        if (egress_policy_add(&p, 0, s, err, sizeof(err)) == 0 && egress_policy_add(&p, 1, s, err, sizeof(err)) == 0) {
            egress_pattern_t pat;
            CHECK(pattern_parse(s, &pat) == 0);
            if (!pat.wildcard)
                CHECK(strcmp(egress_decide_name(p, pat.name, pat.port ? pat.port : 443), "denied") == 0);
        }
    }
    if (p != NULL)
        (void)egress_decide_name(p, last, 443);
    egress_policy_free(p);
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    switch (data[0] % 3) {
    case 0: fuzz_http(data + 1, size - 1); break;
    case 1: fuzz_socks(data + 1, size - 1); break;
    default: fuzz_policy(data + 1, size - 1); break;
    }
    return 0;
}
