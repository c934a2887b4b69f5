/*
 * redis_url: parses REDIS_URL (redis://[[user]:password@]host[:port][/db] or
 * unix:///path[?db=N]) into a mirror_url_t, for the connections writer.c opens.
 * Declared in cluster/mirror.h. Pure: no Redis, no loop, any thread.
 */
#include "cluster/mirror.h"

#include <bsd/string.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Copies [s, s+n) into out, decoding %XX. -1 when it does not fit or is malformed. */
static int url_decode(const char *s, size_t n, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '%') {
            if (i + 2 >= n)
                return -1;
            int h = hexval((unsigned char)s[i + 1]);
            int l = hexval((unsigned char)s[i + 2]);
            if (h < 0 || l < 0)
                return -1;
            c = (char)(h * 16 + l);
            i += 2;
        }
        if (o + 1 >= len)
            return -1;
        out[o++] = c;
    }
    out[o] = '\0';
    return 0;
}

static int parse_db(const char *s, int *db)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0 || v > 1000000)
        return -1;
    *db = (int)v;
    return 0;
}

/* unix:///absolute/path[?db=N] (after "unix://"). 0 / -1 with err. */
static int url_parse_unix(const char *p, mirror_url_t *u, char *err, size_t errlen)
{
    const char *q = strchr(p, '?');
    size_t n = q != NULL ? (size_t)(q - p) : strlen(p);
    if (n == 0 || p[0] != '/' || n >= sizeof(u->path)) {
        snprintf(err, errlen, "expected unix:///absolute/path/to.sock[?db=N]");
        return -1;
    }
    memcpy(u->path, p, n);
    u->unix_socket = 1;
    if (q != NULL && (strncmp(q, "?db=", 4) != 0 || parse_db(q + 4, &u->db) != 0)) {
        snprintf(err, errlen, "unix socket URL: the only query accepted is ?db=N (N >= 0)");
        return -1;
    }
    return 0;
}

/* [user]:password@ when present: decoded into u; *p moves past it. 0 / -1 with err. */
static int url_parse_userinfo(const char **p, mirror_url_t *u, char *err, size_t errlen)
{
    const char *at = strrchr(*p, '@');
    if (at == NULL)
        return 0;
    const char *colon = memchr(*p, ':', (size_t)(at - *p));
    if (colon == NULL) {
        snprintf(err, errlen, "credentials must be [user]:password@ (a colon before the password)");
        return -1;
    }
    if (url_decode(*p, (size_t)(colon - *p), u->user, sizeof(u->user)) != 0 ||
        url_decode(colon + 1, (size_t)(at - colon - 1), u->password, sizeof(u->password)) != 0) {
        snprintf(err, errlen, "malformed or too long user/password");
        return -1;
    }
    *p = at + 1;
    return 0;
}

/* The host of p[0..len): "[v6]" or a name; *port_s points after its ':' (NULL without a port). 0 / -1 with err. */
static int url_parse_host(const char *p, size_t len, mirror_url_t *u, const char **port_s, char *err, size_t errlen)
{
    const char *hp_end = p + len, *host = p, *host_end = hp_end;
    *port_s = NULL;
    if (*p == '[') {
        const char *close = memchr(p, ']', len);
        if (close == NULL) {
            snprintf(err, errlen, "unterminated [IPv6] host");
            return -1;
        }
        if ((size_t)(close - p - 1) >= sizeof(u->host)) {
            snprintf(err, errlen, "host name too long");
            return -1;
        }
        if (close + 1 < hp_end && close[1] != ':') {
            snprintf(err, errlen, "expected :port after ]");
            return -1;
        }
        host = p + 1;
        host_end = close;
        *port_s = close + 1 < hp_end ? close + 2 : NULL;
    } else {
        const char *colon = memchr(p, ':', len);
        if (colon != NULL) {
            host_end = colon;
            *port_s = colon + 1;
        }
    }
    if ((size_t)(host_end - host) >= sizeof(u->host)) {
        snprintf(err, errlen, "host name too long");
        return -1;
    }
    memcpy(u->host, host, (size_t)(host_end - host));
    if (u->host[0] == '\0') {
        snprintf(err, errlen, "missing host");
        return -1;
    }
    return 0;
}

/* The port text port_s..end: 1..65535. 0 / -1 with err. */
static int url_parse_port(const char *port_s, const char *end, int *port, char *err, size_t errlen)
{
    char buf[8], *stop;
    size_t n = (size_t)(end - port_s);
    if (n == 0 || n >= sizeof(buf)) {
        snprintf(err, errlen, "port must be 1..65535");
        return -1;
    }
    memcpy(buf, port_s, n);
    buf[n] = '\0';
    long v = strtol(buf, &stop, 10);
    if (*stop != '\0' || v < 1 || v > 65535) {
        snprintf(err, errlen, "port must be 1..65535");
        return -1;
    }
    *port = (int)v;
    return 0;
}

int mirror_url_parse(const char *url, mirror_url_t *u, char *err, size_t errlen)
{
    memset(u, 0, sizeof(*u));
    u->port = 6379;
    if (!strncmp(url, "unix://", 7))
        return url_parse_unix(url + 7, u, err, errlen);
    if (!strncmp(url, "rediss://", 9)) {
        snprintf(err, errlen, "rediss:// (TLS) is not supported by hiredis 0.14; use redis:// or unix://");
        return -1;
    }
    if (strncmp(url, "redis://", 8) != 0) {
        snprintf(err, errlen, "expected redis://[[user]:password@]host[:port][/db] or unix:///path[?db=N]");
        return -1;
    }
    const char *p = url + 8, *port_s;
    if (url_parse_userinfo(&p, u, err, errlen) != 0)
        return -1;
    const char *slash = strchr(p, '/');
    size_t hostport = slash != NULL ? (size_t)(slash - p) : strlen(p);
    if (url_parse_host(p, hostport, u, &port_s, err, errlen) != 0)
        return -1;
    if (port_s != NULL && url_parse_port(port_s, p + hostport, &u->port, err, errlen) != 0)
        return -1;
    if (slash != NULL && slash[1] != '\0' && parse_db(slash + 1, &u->db) != 0) {
        snprintf(err, errlen, "the path must be a database number (/0, /1, ...)");
        return -1;
    }
    return 0;
}
