/*
 * util: strbuf, clocks, random ids and allocation wrappers.
 */
#include "core/util.h"

#include <bsd/stdlib.h>
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void util_oom(void)
{
    static const char msg[] = "mcp-sandboxd: out of memory\n";
    ssize_t r = write(2, msg, sizeof(msg) - 1);
    (void)r;
    abort();
}

void *xmalloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL)
        util_oom();
    return p;
}

void *xcalloc(size_t n, size_t m)
{
    void *p = calloc(n == 0 ? 1 : n, m == 0 ? 1 : m);
    if (p == NULL)
        util_oom();
    return p;
}

char *xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL)
        util_oom();
    return p;
}

char *xstrndup(const char *s, size_t n)
{
    char *p = xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *strbuf_reserve(strbuf_t *b, size_t n)
{
    if (b->cap - b->len < n + 1) {
        size_t cap = b->cap == 0 ? 256 : b->cap;
        while (cap - b->len < n + 1) {
            if (cap > SIZE_MAX / 2)
                util_oom();
            cap *= 2;
        }
        char *p = realloc(b->data, cap);
        if (p == NULL)
            util_oom();
        b->data = p;
        b->cap = cap;
    }
    return b->data + b->len;
}

void strbuf_append(strbuf_t *b, const void *p, size_t n)
{
    char *dst = strbuf_reserve(b, n);
    memcpy(dst, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void strbuf_puts(strbuf_t *b, const char *s)
{
    strbuf_append(b, s, strlen(s));
}

void strbuf_printf(strbuf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof(tmp)) {
        strbuf_append(b, tmp, (size_t)n);
        return;
    }
    char *dst = strbuf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(dst, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

size_t util_utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return c == 0 ? 0 : 1;
    size_t n;
    unsigned lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* no overlong forms */
        else if (c == 0xED)
            hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F; /* nothing above U+10FFFF */
    } else
        return 0;
    if (avail < n)
        return 0;
    if (s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

size_t util_utf8_valid_len(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        if (*p >= 0x01 && *p < 0x80) {
            p++;
            continue;
        }
        size_t n = util_utf8_seq_len(p, (size_t)(end - p));
        if (n == 0)
            break;
        p += n;
    }
    return (size_t)(p - (const unsigned char *)s);
}

void util_utf8_sanitize(const char *s, size_t len, strbuf_t *out)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    const unsigned char *run = p;
    while (p < end) {
        size_t n = util_utf8_seq_len(p, (size_t)(end - p));
        if (n > 0) {
            p += n;
            continue;
        }
        strbuf_append(out, run, (size_t)(p - run));
        strbuf_append(out, "\xEF\xBF\xBD", 3);
        p++;
        run = p;
    }
    strbuf_append(out, run, (size_t)(p - run));
}

/*
 * The length cJSON's print_string_ptr gives the JSON of `n` bytes: the quotes,
 * two bytes for a quote, a backslash, BS, FF, LF, CR and TAB, six (\u00XX) for
 * the other control bytes, one for every other byte. Counted first so that an
 * oversized string is refused before any allocation, and the reservation is
 * exact (not 6n).
 */
size_t util_json_escaped_len(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t len = 2;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t')
            len += 2;
        else if (c < 32)
            len += 6;
        else
            len += 1;
    }
    return len;
}

/*
 * JSON string escaping is cJSON's: a string reference printed into space
 * reserved in place, so a large output is escaped without an intermediate
 * copy. STRBUF_JSON_MAX keeps the room below cJSON's INT_MAX limit, so a
 * client's oversized result is an error for the caller, never util_oom().
 */
int strbuf_json_utf8(strbuf_t *b, const char *s, size_t n)
{
    size_t need = util_json_escaped_len(s, n);
    if (need > STRBUF_JSON_MAX)
        return -1;
    cJSON item;
    memset(&item, 0, sizeof(item));
    item.type = cJSON_String | cJSON_IsReference;
    item.valuestring = (char *)s;
    size_t room = need + 8; /* cJSON wants room for the NUL and a spare byte past the string */
    char *dst = strbuf_reserve(b, room);
    if (!cJSON_PrintPreallocated(&item, dst, (int)room, 0)) {
        dst[0] = '\0';
        return -1;
    }
    b->len += strlen(dst);
    return 0;
}

/* The stand-in for a string too large to write (only a multi-GiB message gets here). */
static void json_too_large(strbuf_t *b, size_t n)
{
    strbuf_printf(b, "\"[%zu bytes: too large for one JSON string]\"", n);
}

void strbuf_json_cstr(strbuf_t *b, const char *s)
{
    size_t n = strlen(s);
    if (util_utf8_valid_len(s, n) != n) {
        /* a message that quotes a cut or foreign (header) string: never emit invalid UTF-8 */
        strbuf_t clean = {0};
        util_utf8_sanitize(s, n, &clean);
        if (strbuf_json_utf8(b, clean.data, clean.len) != 0)
            json_too_large(b, n);
        strbuf_free(&clean);
        return;
    }
    if (strbuf_json_utf8(b, s, n) != 0)
        json_too_large(b, n);
}

void strbuf_json_string(strbuf_t *b, const char *s, size_t n)
{
    char *copy = xstrndup(s, n); /* cJSON reads NUL-terminated strings */
    strbuf_json_cstr(b, copy);
    free(copy);
}

char *strbuf_steal(strbuf_t *b, size_t *len)
{
    if (b->data == NULL)
        strbuf_reserve(b, 0), b->data[0] = '\0';
    char *p = b->data;
    if (len != NULL)
        *len = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void strbuf_free(strbuf_t *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

uint64_t util_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t util_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

void util_iso8601(uint64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&sec, &tm);
    snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

void util_random_hex(char *buf, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[64];
    if (nbytes > sizeof(raw))
        nbytes = sizeof(raw);
    arc4random_buf(raw, nbytes);
    for (size_t i = 0; i < nbytes; i++) {
        buf[2 * i] = hex[raw[i] >> 4];
        buf[2 * i + 1] = hex[raw[i] & 15];
    }
    buf[2 * nbytes] = '\0';
}

void util_uuid4(char *buf)
{
    unsigned char r[16];
    arc4random_buf(r, sizeof(r));
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    snprintf(buf, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4],
             r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

char *util_json_print(cJSON *o)
{
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL)
        util_oom();
    return text;
}
