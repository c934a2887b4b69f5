/*
 * util: small helpers every subsystem uses: a growable byte buffer, clocks,
 * random identifiers and JSON string escaping through cJSON.
 *
 * No state; safe on any thread.
 */
#ifndef MCP_SANDBOXD_UTIL_H
#define MCP_SANDBOXD_UTIL_H

#include <stddef.h>
#include <stdint.h>

/**
 * Declares the RB tree `name` of `struct type` (linked by its `node` field,
 * ordered by its string `id`) and defines its functions; the user includes
 * <bsd/sys/tree.h> and <string.h>. Sessions and workspaces are such trees.
 */
#define UTIL_ID_TREE(name, type)                                                                                      \
    RB_HEAD(name, type);                                                                                              \
    static int name##_cmp(struct type *a, struct type *b)                                                             \
    {                                                                                                                 \
        return strcmp(a->id, b->id);                                                                                  \
    }                                                                                                                 \
    RB_GENERATE(name, type, node, name##_cmp)

/** A growable byte buffer; `data` is NUL-terminated whenever len < cap. */
typedef struct strbuf {
    char *data;  /**< malloc'd bytes, NULL until the first append */
    size_t len;  /**< bytes used */
    size_t cap;  /**< bytes allocated */
} strbuf_t;

/** Makes room for `n` more bytes and returns where they go. Aborts on OOM. */
char *strbuf_reserve(strbuf_t *b, size_t n);
/** Appends `n` bytes. */
void strbuf_append(strbuf_t *b, const void *p, size_t n);
/** Appends a NUL-terminated string. */
void strbuf_puts(strbuf_t *b, const char *s);
/** Appends printf-formatted text. */
void strbuf_printf(strbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Largest JSON string (escaped, with its quotes) the strbuf_json_* functions write: 1 GiB. */
#define STRBUF_JSON_MAX ((size_t)1 << 30)
/** Bytes the JSON string for the `n` bytes at `s` takes, quotes included (the escaping is cJSON's). */
size_t util_json_escaped_len(const char *s, size_t n);
/**
 * Appends the NUL-terminated `s` as a quoted, escaped JSON string, without a
 * copy (invalid UTF-8 becomes U+FFFD). A string whose JSON would exceed
 * STRBUF_JSON_MAX is written as a short notice string instead (never aborts).
 */
void strbuf_json_cstr(strbuf_t *b, const char *s);
/**
 * Same for `s` (NUL-terminated at `n`) already known to be valid UTF-8: no
 * second scan. Returns 0, or -1 with nothing appended and nothing allocated
 * when the JSON would exceed STRBUF_JSON_MAX (the caller answers with an error).
 */
int strbuf_json_utf8(strbuf_t *b, const char *s, size_t n);
/** Same for exactly `n` bytes at `s` (copied first: cJSON needs a terminator). */
void strbuf_json_string(strbuf_t *b, const char *s, size_t n);
/** Hands the bytes over to the caller (who frees them) and resets `b`. */
char *strbuf_steal(strbuf_t *b, size_t *len);
/** Frees the bytes. */
void strbuf_free(strbuf_t *b);

/** Length of the valid UTF-8 sequence at s (1..4; no overlongs, surrogates or NUL), 0 when invalid or cut. */
size_t util_utf8_seq_len(const unsigned char *s, size_t avail);
/** Length of the longest valid UTF-8 prefix of `s` (== len when all of it is valid; NUL counts as invalid). */
size_t util_utf8_valid_len(const char *s, size_t len);
/** Appends `s` with each invalid byte (and NUL) replaced by U+FFFD. */
void util_utf8_sanitize(const char *s, size_t len, strbuf_t *out);

/** Monotonic milliseconds (for deadlines and durations). */
uint64_t util_now_ms(void);
/** Wall-clock milliseconds since the epoch (for timestamps). */
uint64_t util_wall_ms(void);
/** Formats wall-clock `ms` as ISO-8601 UTC with milliseconds into buf (>= 25 bytes). */
void util_iso8601(uint64_t ms, char *buf, size_t len);
/** Writes `nbytes` random bytes from arc4random as lowercase hex (buf >= 2*nbytes+1). */
void util_random_hex(char *buf, size_t nbytes);
/** Writes a random RFC 4122 version-4 UUID (buf >= 37 bytes). */
void util_uuid4(char *buf);
/** Out-of-memory: logs and aborts (the one place the server gives up). */
void util_oom(void) __attribute__((noreturn));
/** malloc/calloc/strdup that abort through util_oom(). */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t m);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

struct cJSON;
/** Prints `o` as compact JSON and deletes it; the text is malloc'd (out of memory: util_oom). */
char *util_json_print(struct cJSON *o);

#endif
