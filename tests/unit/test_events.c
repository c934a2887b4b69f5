/*
 * Unit tests for src/events.c: event ids, resuming after an id, the count and
 * byte caps, line splitting (across chunks, long lines, UTF-8 boundaries),
 * UTF-8 repair, flush at EOF and the JSON array writer; what an event costs
 * (held at its exact size, counted with its overhead), compaction and release;
 * each event's info word and running totals (the output formatter's prefix
 * sums), also across evictions and as events_index computes them from JSON.
 */
#include "../../src/core/events.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <malloc.h>

#define BIG (16u << 20)

static event_log_t lg;

static int setup(void **state)
{
    events_init(&lg, 10000, BIG);
    return 0;
}

static int teardown(void **state)
{
    events_free(&lg);
    return 0;
}

/* ---------------------------------------------------------------- helpers */

/* Parses the i-th held event. */
static cJSON *event_json(size_t i)
{
    const event_t *ev = events_at(&lg, i);
    assert_int_equal(strlen(ev->json), ev->len);
    cJSON *j = cJSON_Parse(ev->json);
    if (j == NULL)
        fail_msg("event %zu is not valid JSON: %.200s", i, ev->json);
    return j;
}

static const char *str_field(const cJSON *j, const char *name)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, name);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int is_partial(const cJSON *j)
{
    return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "partial"));
}

/* Checks that s[0..n) is valid UTF-8 with no NUL. */
static int valid_utf8(const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = util_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* Collects what the emit callback saw. */
struct seen {
    int n;
    uint64_t seqs[64];
};

static void on_emit(void *arg, const event_t *ev)
{
    struct seen *s = arg;
    if (s->n < 64)
        s->seqs[s->n] = ev->seq;
    s->n++;
}

static void append_n(size_t n)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *f = cJSON_CreateObject();
        cJSON_AddNumberToObject(f, "i", (double)i);
        assert_non_null(events_append(&lg, "test", f));
        cJSON_Delete(f);
    }
}

static size_t sum_bytes(void)
{
    size_t total = 0;
    for (size_t i = 0; i < lg.count; i++)
        total += events_at(&lg, i)->len + EVENTS_EVENT_OVERHEAD;
    return total;
}

/* ---------------------------------------------------------------- append */

static void test_ids_increase_from_one(void **state)
{
    assert_int_equal(lg.next_seq, 1);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "exit_code", 3);
    cJSON_AddStringToObject(f, "note", "x");
    const event_t *ev = events_append(&lg, "exit", f);
    assert_non_null(ev);
    assert_int_equal(ev->seq, 1);
    assert_null(f->child); /* the members were moved into the event */
    cJSON_Delete(f);
    assert_non_null(events_append(&lg, "start", NULL));
    assert_non_null(events_append(&lg, "end", NULL));
    assert_int_equal(lg.count, 3);
    assert_int_equal(lg.next_seq, 4);

    for (size_t i = 0; i < 3; i++) {
        cJSON *j = event_json(i);
        char want[8];
        snprintf(want, sizeof(want), "%zu", i + 1);
        assert_string_equal(str_field(j, "event_id"), want);
        assert_int_equal(events_at(&lg, i)->seq, i + 1);
        const char *ts = str_field(j, "ts");
        assert_non_null(ts);
        assert_int_equal(strlen(ts), 24); /* 2025-01-02T03:04:05.678Z */
        assert_int_equal(ts[10], 'T');
        assert_int_equal(ts[23], 'Z');
        cJSON_Delete(j);
    }
    cJSON *j = event_json(0);
    assert_string_equal(str_field(j, "type"), "exit");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "exit_code")->valueint, 3);
    assert_string_equal(str_field(j, "note"), "x");
    cJSON_Delete(j);
    j = event_json(2);
    assert_string_equal(str_field(j, "type"), "end");
    cJSON_Delete(j);
    assert_int_equal(lg.bytes, sum_bytes());
    assert_int_equal(lg.dropped, 0);
}

/* ---------------------------------------------------------------- resume */

static long resume(const char *id, char *err)
{
    err[0] = '\0';
    return events_resume_index(&lg, id, err, 256);
}

static void test_resume_index(void **state)
{
    char err[256];
    /* an empty log */
    assert_int_equal(resume(NULL, err), 0);
    assert_int_equal(resume("0", err), 0);
    assert_int_equal(resume("1", err), -1);

    append_n(5);
    assert_int_equal(resume(NULL, err), 0);
    assert_int_equal(resume("", err), 0);
    assert_int_equal(resume("0", err), 0);
    assert_int_equal(resume("1", err), 1);
    assert_int_equal(resume("3", err), 3);
    assert_int_equal(resume("5", err), 5); /* == count: nothing new */
    assert_int_equal(events_at(&lg, (size_t)resume("2", err))->seq, 3);
}

static void test_resume_future(void **state)
{
    char err[256];
    append_n(3);
    assert_int_equal(resume("4", err), -1);
    assert_non_null(strstr(err, "'4'"));
    assert_non_null(strstr(err, "newest event id is 3"));
    assert_int_equal(resume("18446744073709551615", err), -1);
    assert_int_equal(resume("99999999999999999999999999", err), -1);
}

static void test_resume_malformed(void **state)
{
    char err[256];
    append_n(3);
    static const char *bad[] = {"abc", "-1", "+1", "1x", " 1", "1 ", "0x1", "1.0", "1e2", "\xff"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (resume(bad[i], err) != -1)
            fail_msg("'%s' was accepted", bad[i]);
        if (strstr(err, "decimal") == NULL)
            fail_msg("error for '%s' does not explain the format: %s", bad[i], err);
    }
    /* a long malformed id is quoted truncated */
    char longid[300];
    memset(longid, 'z', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    assert_int_equal(resume(longid, err), -1);
    assert_true(strlen(err) < 200);
}

static void test_resume_dropped(void **state)
{
    char err[256];
    events_free(&lg);
    events_init(&lg, 16, BIG);
    append_n(20); /* ids 1..20; 1..4 dropped */
    assert_int_equal(lg.count, 16);
    assert_int_equal(lg.dropped, 4);
    assert_int_equal(events_at(&lg, 0)->seq, 5);

    assert_int_equal(resume("3", err), -1);
    assert_non_null(strstr(err, "oldest event still held is 5"));
    assert_non_null(strstr(err, "4 events dropped"));
    assert_non_null(strstr(err, "3"));
    assert_int_equal(resume("0", err), -1);
    assert_int_equal(resume(NULL, err), 0); /* from the start = from the oldest held */
    /* resuming after 4 needs 5 onwards, which is held */
    assert_int_equal(resume("4", err), 0);
    assert_int_equal(resume("5", err), 1);
    assert_int_equal(resume("20", err), 16);
    assert_int_equal(resume("21", err), -1);
}

/* ---------------------------------------------------------------- caps */

static void test_max_events_cap(void **state)
{
    events_free(&lg);
    events_init(&lg, 16, BIG);
    append_n(40);
    assert_int_equal(lg.count, 16);
    assert_int_equal(lg.cap, 16);
    assert_int_equal(lg.dropped, 24);
    assert_int_equal(lg.next_seq, 41);
    for (size_t i = 0; i < 16; i++)
        assert_int_equal(events_at(&lg, i)->seq, 25 + i);
    assert_int_equal(lg.bytes, sum_bytes());

    /* a cap that is not a power of two, crossed while growing */
    events_free(&lg);
    events_init(&lg, 20, BIG);
    append_n(17);
    assert_int_equal(lg.count, 17);
    assert_int_equal(lg.dropped, 0);
    append_n(10);
    assert_int_equal(lg.count, 20);
    assert_int_equal(lg.dropped, 7);
    for (size_t i = 0; i < 20; i++)
        assert_int_equal(events_at(&lg, i)->seq, 8 + i);
    assert_int_equal(lg.bytes, sum_bytes());
}

static void test_max_bytes_cap(void **state)
{
    events_free(&lg);
    events_init(&lg, 10000, 1000);
    struct seen seen = {0};
    char line[80];
    for (int i = 0; i < 50; i++) {
        int n = snprintf(line, sizeof(line), "line %02d padding padding padding\n", i);
        events_feed(&lg, 0, line, (size_t)n, on_emit, &seen);
        assert_true(lg.bytes <= 1000);
        assert_int_equal(lg.bytes, sum_bytes());
    }
    assert_int_equal(seen.n, 50);
    assert_true(lg.count > 1 && lg.count < 50);
    assert_int_equal(lg.dropped, 50 - lg.count);
    assert_int_equal(events_at(&lg, lg.count - 1)->seq, 50);
    assert_int_equal(events_at(&lg, 0)->seq, lg.dropped + 1);
    cJSON *j = event_json(lg.count - 1);
    assert_string_equal(str_field(j, "data"), "line 49 padding padding padding");
    cJSON_Delete(j);

    /* an event bigger than the whole cap still gets stored, alone */
    char big[3000];
    memset(big, 'b', sizeof(big));
    big[sizeof(big) - 1] = '\n';
    events_feed(&lg, 0, big, sizeof(big), on_emit, &seen);
    assert_int_equal(seen.n, 51);
    assert_int_equal(lg.count, 1);
    assert_int_equal(events_at(&lg, 0)->seq, 51);
    assert_int_equal(lg.dropped, 50);
    assert_int_equal(lg.bytes, events_at(&lg, 0)->len + EVENTS_EVENT_OVERHEAD);

    char err[256];
    assert_int_equal(events_resume_index(&lg, "10", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "oldest event still held is 51"));
}

/* ---------------------------------------------------------------- feeding lines */

static void assert_event(size_t i, const char *type, const char *data, int partial)
{
    cJSON *j = event_json(i);
    assert_string_equal(str_field(j, "type"), type);
    assert_string_equal(str_field(j, "data"), data);
    assert_int_equal(is_partial(j), partial);
    cJSON_Delete(j);
}

static void test_feed_splits_across_chunks(void **state)
{
    struct seen seen = {0};
    events_feed(&lg, 0, "hel", 3, on_emit, &seen);
    assert_int_equal(lg.count, 0);
    events_feed(&lg, 0, "lo\nwor", 6, on_emit, &seen);
    assert_int_equal(lg.count, 1);
    events_feed(&lg, 0, "ld\n\nlast", 8, on_emit, &seen);
    assert_int_equal(lg.count, 3);
    assert_event(0, "stdout", "hello", 0);
    assert_event(1, "stdout", "world", 0);
    assert_event(2, "stdout", "", 0); /* an empty line is an event */
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.seqs[0], 1);
    assert_int_equal(seen.seqs[2], 3);

    /* byte by byte */
    const char *text = "abc\ndef\n";
    for (size_t i = 0; i < strlen(text); i++)
        events_feed(&lg, 1, text + i, 1, NULL, NULL);
    assert_int_equal(lg.count, 5);
    assert_event(3, "stderr", "abc", 0);
    assert_event(4, "stderr", "def", 0);

    /* "last" is still pending on stdout */
    events_flush(&lg, 0, on_emit, &seen);
    assert_int_equal(lg.count, 6);
    assert_event(5, "stdout", "last", 0);
}

static void test_feed_streams_are_separate(void **state)
{
    events_feed(&lg, 0, "out-", 4, NULL, NULL);
    events_feed(&lg, 1, "err-", 4, NULL, NULL);
    events_feed(&lg, 0, "1\n", 2, NULL, NULL);
    events_feed(&lg, 1, "2\n", 2, NULL, NULL);
    assert_int_equal(lg.count, 2);
    assert_event(0, "stdout", "out-1", 0);
    assert_event(1, "stderr", "err-2", 0);
}

static void test_feed_many_lines_one_chunk(void **state)
{
    strbuf_t b = {0};
    for (int i = 0; i < 100; i++)
        strbuf_printf(&b, "line %d\n", i);
    struct seen seen = {0};
    events_feed(&lg, 0, b.data, b.len, on_emit, &seen);
    assert_int_equal(lg.count, 100);
    assert_int_equal(seen.n, 100);
    assert_event(99, "stdout", "line 99", 0);
    strbuf_free(&b);
}

/* Concatenates the "data" of events [from, count) into out; checks the partial flags. */
static void collect_pieces(size_t from, strbuf_t *out, size_t *n_pieces)
{
    *n_pieces = 0;
    for (size_t i = from; i < lg.count; i++) {
        cJSON *j = event_json(i);
        const char *d = str_field(j, "data");
        assert_non_null(d);
        int last = i + 1 == lg.count;
        if (is_partial(j) == last)
            fail_msg("piece %zu of %zu: partial=%d", i - from, lg.count - from, is_partial(j));
        if (!last)
            assert_true(strlen(d) <= EVENTS_MAX_LINE);
        strbuf_puts(out, d);
        (*n_pieces)++;
        cJSON_Delete(j);
    }
}

static void test_long_line_split(void **state)
{
    size_t n = 200000;
    char *line = xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        line[i] = (char)('a' + i % 26);
    line[n] = '\n';

    /* fed in 4 KiB chunks */
    for (size_t off = 0; off < n + 1; off += 4096)
        events_feed(&lg, 0, line + off, off + 4096 <= n + 1 ? 4096 : n + 1 - off, NULL, NULL);
    strbuf_t got = {0};
    size_t pieces;
    collect_pieces(0, &got, &pieces);
    assert_int_equal(pieces, 4);
    assert_int_equal(got.len, n);
    assert_memory_equal(got.data, line, n);
    for (size_t i = 0; i < 3; i++) {
        cJSON *j = event_json(i);
        assert_int_equal(strlen(str_field(j, "data")), EVENTS_MAX_LINE);
        cJSON_Delete(j);
    }
    cJSON *j = event_json(3);
    assert_int_equal(strlen(str_field(j, "data")), n - 3 * EVENTS_MAX_LINE);
    cJSON_Delete(j);
    strbuf_free(&got);

    /* fed in one call */
    size_t before = lg.count;
    events_feed(&lg, 0, line, n + 1, NULL, NULL);
    collect_pieces(before, &got, &pieces);
    assert_int_equal(pieces, 4);
    assert_int_equal(got.len, n);
    assert_memory_equal(got.data, line, n);
    strbuf_free(&got);

    /* without a newline, ended by flush */
    before = lg.count;
    events_feed(&lg, 1, line, n, NULL, NULL);
    assert_int_equal(lg.count - before, 3); /* the remainder waits for more */
    events_flush(&lg, 1, NULL, NULL);
    collect_pieces(before, &got, &pieces);
    assert_int_equal(pieces, 4);
    assert_int_equal(got.len, n);
    assert_memory_equal(got.data, line, n);
    strbuf_free(&got);
    free(line);
}

static void test_line_at_the_limit(void **state)
{
    char *line = xmalloc(EVENTS_MAX_LINE + 2);
    memset(line, 'x', EVENTS_MAX_LINE + 1);

    /* exactly EVENTS_MAX_LINE bytes: one whole event */
    line[EVENTS_MAX_LINE] = '\n';
    events_feed(&lg, 0, line, EVENTS_MAX_LINE + 1, NULL, NULL);
    assert_int_equal(lg.count, 1);
    cJSON *j = event_json(0);
    assert_false(is_partial(j));
    assert_int_equal(strlen(str_field(j, "data")), EVENTS_MAX_LINE);
    cJSON_Delete(j);

    /* the same, arriving in two chunks */
    events_feed(&lg, 0, line, 1000, NULL, NULL);
    events_feed(&lg, 0, line + 1000, EVENTS_MAX_LINE + 1 - 1000, NULL, NULL);
    assert_int_equal(lg.count, 2);
    j = event_json(1);
    assert_false(is_partial(j));
    assert_int_equal(strlen(str_field(j, "data")), EVENTS_MAX_LINE);
    cJSON_Delete(j);

    /* one byte more: a full partial piece and a one-byte final piece */
    line[EVENTS_MAX_LINE] = 'x';
    line[EVENTS_MAX_LINE + 1] = '\n';
    events_feed(&lg, 0, line, EVENTS_MAX_LINE + 2, NULL, NULL);
    assert_int_equal(lg.count, 4);
    j = event_json(2);
    assert_true(is_partial(j));
    assert_int_equal(strlen(str_field(j, "data")), EVENTS_MAX_LINE);
    cJSON_Delete(j);
    assert_event(3, "stdout", "x", 0);
    free(line);
}

static void test_multibyte_never_split(void **state)
{
    static const char *chars[] = {"\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80"};
    for (size_t c = 0; c < 3; c++) {
        size_t clen = strlen(chars[c]);
        /* put the character at every offset around the cut */
        for (size_t at = EVENTS_MAX_LINE - 4; at <= EVENTS_MAX_LINE; at++) {
            size_t n = 3 * EVENTS_MAX_LINE;
            char *line = xmalloc(n + 1);
            memset(line, 'a', n);
            memcpy(line + at, chars[c], clen);
            /* and fill the rest of the line with the same character, so every cut lands in one */
            for (size_t k = at + clen; k + clen <= n; k += clen)
                memcpy(line + k, chars[c], clen);
            size_t used = at + clen;
            while (used + clen <= n)
                used += clen;
            line[used] = '\n';
            size_t before = lg.count;
            events_feed(&lg, 0, line, used + 1, NULL, NULL);
            strbuf_t got = {0};
            size_t pieces;
            collect_pieces(before, &got, &pieces);
            assert_true(pieces >= 3);
            for (size_t i = before; i < lg.count; i++) {
                cJSON *j = event_json(i);
                const char *d = str_field(j, "data");
                if (strstr(d, "\xef\xbf\xbd") != NULL)
                    fail_msg("char %zu at %zu: piece %zu contains U+FFFD (a character was cut)", c, at, i - before);
                assert_true(valid_utf8(d, strlen(d)));
                cJSON_Delete(j);
            }
            assert_int_equal(got.len, used);
            assert_memory_equal(got.data, line, used);
            strbuf_free(&got);
            free(line);
            events_free(&lg);
            events_init(&lg, 10000, BIG);
        }
    }
}

static void test_multibyte_across_chunks(void **state)
{
    /* a character split between two reads is reassembled */
    events_feed(&lg, 0, "caf\xc3", 4, NULL, NULL);
    events_feed(&lg, 0, "\xa9 \xe2\x82", 4, NULL, NULL);
    events_feed(&lg, 0, "\xac\n", 2, NULL, NULL);
    assert_int_equal(lg.count, 1);
    assert_event(0, "stdout", "caf\xc3\xa9 \xe2\x82\xac", 0);
}

static void test_invalid_utf8_and_nul(void **state)
{
    events_feed(&lg, 0, "a\xff" "b\n", 4, NULL, NULL);
    events_feed(&lg, 0, "x\0y\n", 4, NULL, NULL);
    events_feed(&lg, 0, "\xc0\xaf\n", 3, NULL, NULL);          /* overlong '/' */
    events_feed(&lg, 0, "\xed\xa0\x80\n", 4, NULL, NULL);      /* a UTF-16 surrogate */
    events_feed(&lg, 0, "t\xe2\x82\n", 4, NULL, NULL);         /* truncated at end of line */
    events_feed(&lg, 0, "\xf4\x90\x80\x80\n", 5, NULL, NULL);  /* above U+10FFFF */
    events_feed(&lg, 0, "ok \xf0\x9f\x98\x80\n", 8, NULL, NULL);
    assert_int_equal(lg.count, 7);
    assert_event(0, "stdout", "a\xef\xbf\xbd" "b", 0);
    assert_event(1, "stdout", "x\xef\xbf\xbdy", 0);
    assert_event(2, "stdout", "\xef\xbf\xbd\xef\xbf\xbd", 0);
    assert_event(3, "stdout", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 0);
    assert_event(4, "stdout", "t\xef\xbf\xbd\xef\xbf\xbd", 0);
    assert_event(6, "stdout", "ok \xf0\x9f\x98\x80", 0);
    for (size_t i = 0; i < lg.count; i++) {
        cJSON *j = event_json(i);
        const char *d = str_field(j, "data");
        assert_true(valid_utf8(d, strlen(d)));
        cJSON_Delete(j);
    }
}

static void test_utf8_sanitize(void **state)
{
    strbuf_t b = {0};
    events_utf8_sanitize("plain", 5, &b);
    assert_string_equal(b.data, "plain");
    strbuf_free(&b);
    events_utf8_sanitize("\0", 1, &b);
    assert_string_equal(b.data, "\xef\xbf\xbd");
    strbuf_free(&b);
    events_utf8_sanitize("\x80\x80", 2, &b);
    assert_string_equal(b.data, "\xef\xbf\xbd\xef\xbf\xbd");
    strbuf_free(&b);
    events_utf8_sanitize("", 0, &b);
    assert_true(b.len == 0);
    strbuf_free(&b);
    /* appends */
    strbuf_puts(&b, ">");
    events_utf8_sanitize("\xe2\x82\xac", 3, &b);
    assert_string_equal(b.data, ">\xe2\x82\xac");
    strbuf_free(&b);
}

static void test_flush(void **state)
{
    struct seen seen = {0};
    /* nothing pending: nothing emitted */
    events_flush(&lg, 0, on_emit, &seen);
    assert_int_equal(lg.count, 0);
    assert_int_equal(seen.n, 0);

    events_feed(&lg, 0, "done\nno newline", 15, on_emit, &seen);
    events_feed(&lg, 1, "err tail", 8, on_emit, &seen);
    assert_int_equal(lg.count, 1);
    events_flush(&lg, 0, on_emit, &seen);
    assert_int_equal(lg.count, 2);
    assert_int_equal(seen.n, 2);
    assert_event(1, "stdout", "no newline", 0);
    /* flushing stdout left stderr's line alone */
    events_flush(&lg, 1, on_emit, &seen);
    assert_int_equal(lg.count, 3);
    assert_event(2, "stderr", "err tail", 0);
    /* a second flush emits nothing */
    events_flush(&lg, 0, on_emit, &seen);
    events_flush(&lg, 1, on_emit, &seen);
    assert_int_equal(lg.count, 3);
    assert_int_equal(seen.n, 3);
    /* the stream still works after a flush */
    events_feed(&lg, 0, "again\n", 6, NULL, NULL);
    assert_event(3, "stdout", "again", 0);
}

/* ---------------------------------------------------------------- array */

static cJSON *write_array(size_t from)
{
    strbuf_t b = {0};
    events_write_array(&lg, from, &b);
    cJSON *a = cJSON_ParseWithOpts(b.data, NULL, 1);
    if (a == NULL)
        fail_msg("not a JSON array: %.200s", b.data);
    assert_true(cJSON_IsArray(a));
    strbuf_free(&b);
    return a;
}

static void test_write_array(void **state)
{
    cJSON *a = write_array(0);
    assert_int_equal(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);

    events_feed(&lg, 0, "one\n\"two\"\n\\three\n", 17, NULL, NULL);
    events_append(&lg, "exit", NULL);
    a = write_array(0);
    assert_int_equal(cJSON_GetArraySize(a), 4);
    assert_string_equal(str_field(cJSON_GetArrayItem(a, 0), "data"), "one");
    assert_string_equal(str_field(cJSON_GetArrayItem(a, 1), "data"), "\"two\"");
    assert_string_equal(str_field(cJSON_GetArrayItem(a, 2), "data"), "\\three");
    assert_string_equal(str_field(cJSON_GetArrayItem(a, 3), "type"), "exit");
    cJSON_Delete(a);

    a = write_array(2);
    assert_int_equal(cJSON_GetArraySize(a), 2);
    assert_string_equal(str_field(cJSON_GetArrayItem(a, 0), "event_id"), "3");
    cJSON_Delete(a);

    a = write_array(4);
    assert_int_equal(cJSON_GetArraySize(a), 0);
    cJSON_Delete(a);

    /* after wrap-around, from the resume index */
    events_free(&lg);
    events_init(&lg, 16, BIG);
    append_n(30);
    char err[128];
    long from = events_resume_index(&lg, "20", err, sizeof(err));
    assert_int_equal(from, 6);
    a = write_array((size_t)from);
    assert_int_equal(cJSON_GetArraySize(a), 10);
    for (int i = 0; i < 10; i++) {
        char want[8];
        snprintf(want, sizeof(want), "%d", 21 + i);
        assert_string_equal(str_field(cJSON_GetArrayItem(a, i), "event_id"), want);
    }
    cJSON_Delete(a);

    /* appends to what the buffer already holds */
    strbuf_t b = {0};
    strbuf_puts(&b, "{\"events\":");
    events_write_array(&lg, 14, &b);
    strbuf_puts(&b, "}");
    cJSON *o = cJSON_Parse(b.data);
    assert_non_null(o);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(o, "events")), 2);
    cJSON_Delete(o);
    strbuf_free(&b);
}

/* ---------------------------------------------------------------- memory */

/*
 * An event's JSON is held in an allocation of its own size, not in the escape
 * buffer reserved for the worst case (6 bytes per input byte), and `bytes`
 * counts the JSON plus the per-event overhead.
 */
static void test_event_held_at_exact_size(void **state)
{
    static char line[20001];
    memset(line, '"', 10000);          /* escaped to 2 bytes each */
    line[10000] = '\n';
    events_feed(&lg, 0, line, 10001, NULL, NULL);
    memset(line, 'a', 20000);          /* no escaping at all */
    line[20000] = '\n';
    events_feed(&lg, 1, line, 20001, NULL, NULL);
    memset(line, 1, 5000);             /* \u0001: 6 bytes each */
    line[5000] = '\n';
    events_feed(&lg, 0, line, 5001, NULL, NULL);
    assert_int_equal(lg.count, 3);
    for (size_t i = 0; i < lg.count; i++) {
        const event_t *ev = events_at(&lg, i);
        size_t usable = malloc_usable_size(ev->json);
        assert_true(usable >= ev->len + 1);
        if (usable > ev->len + 1 + 32)
            fail_msg("event %zu: %zu bytes of JSON held in %zu bytes", i, ev->len, usable);
    }
    assert_int_equal(lg.bytes, sum_bytes());
    assert_true(lg.bytes < 20000 + 20000 + 30000 + 3 * 200);
}

/* A finished log's ring is cut to its events; reads and resumes are unchanged. */
static void test_compact(void **state)
{
    append_n(17);
    assert_int_equal(lg.cap, 32);
    events_compact(&lg);
    assert_int_equal(lg.cap, 17);
    assert_int_equal(lg.count, 17);
    for (size_t i = 0; i < 17; i++)
        assert_int_equal(events_at(&lg, i)->seq, i + 1);
    char err[256];
    assert_int_equal(events_resume_index(&lg, "10", err, sizeof(err)), 10);
    append_n(1); /* a compacted ring still grows */
    assert_int_equal(events_at(&lg, 17)->seq, 18);
    assert_int_equal(lg.bytes, sum_bytes());
    /* an empty log compacts to nothing */
    events_free(&lg);
    events_init(&lg, 100, BIG);
    events_compact(&lg);
    assert_int_equal(lg.cap, 0);
    append_n(2);
    assert_int_equal(lg.count, 2);
}

/* Release frees every event, keeps the ids known and makes reads say why. */
static void test_release(void **state)
{
    static const char out[] = "one\ntwo\nthree\n";
    events_feed(&lg, 0, out, sizeof(out) - 1, NULL, NULL);
    size_t before = lg.bytes;
    assert_true(before > 0);
    assert_int_equal(events_release(&lg), before);
    assert_int_equal(lg.bytes, 0);
    assert_int_equal(lg.count, 0);
    assert_null(lg.ring);
    assert_int_equal(lg.next_seq, 4);
    char err[256];
    assert_int_equal(events_resume_index(&lg, NULL, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "released"));
    assert_non_null(strstr(err, "--max-retained-bytes"));
    assert_int_equal(events_resume_index(&lg, "2", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "released"));
    strbuf_t b = {0};
    events_write_array(&lg, 0, &b);
    assert_string_equal(b.data, "[]");
    strbuf_free(&b);
    assert_int_equal(events_release(&lg), 0); /* twice: nothing more to free */
}

/* What events_describe makes of an event's JSON: the same info as the log's own. */
static uint32_t info_from_json(const event_t *ev)
{
    cJSON *o = cJSON_ParseWithLength(ev->json, ev->len);
    uint32_t info = events_describe(o);
    cJSON_Delete(o);
    return info;
}

/*
 * Every event's info and running totals equal what its JSON says, counted
 * from the log's start: data bytes of line events, line events (each piece),
 * whole lines (not partial); other events add nothing; a range's figures are
 * the difference of two events' totals.
 */
static void test_running_totals(void **state)
{
    events_append(&lg, "ready", NULL);
    events_feed(&lg, 0, "one\n!bang\n", 10, NULL, NULL);
    events_feed(&lg, 1, "err\n", 4, NULL, NULL);
    static char big[EVENTS_MAX_LINE + 11];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\n';
    events_feed(&lg, 0, big, sizeof(big), NULL, NULL); /* two events: a piece and its end */
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "code", 0);
    events_append(&lg, "exit", f);
    cJSON_Delete(f);
    assert_int_equal(lg.count, 7);
    uint64_t data = 0;
    uint32_t lines = 0, wholes = 0;
    static const int kinds[] = {EVENTS_READY, EVENTS_STDOUT, EVENTS_STDOUT, EVENTS_STDERR, EVENTS_STDOUT, EVENTS_STDOUT, EVENTS_OTHER};
    for (size_t i = 0; i < lg.count; i++) {
        const event_t *ev = events_at(&lg, i);
        cJSON *j = event_json(i);
        assert_int_equal(EVENTS_KIND(ev), kinds[i]);
        assert_int_equal(ev->info, info_from_json(ev));
        if (EVENTS_IS_LINE(ev)) {
            assert_int_equal(EVENTS_DATA_LEN(ev), strlen(str_field(j, "data")));
            assert_int_equal(EVENTS_PARTIAL(ev), is_partial(j));
            data += EVENTS_DATA_LEN(ev);
            lines++;
            wholes += !is_partial(j);
        }
        assert_int_equal(ev->data_sum, data);
        assert_int_equal(ev->line_sum, lines);
        assert_int_equal(ev->whole_sum, wholes);
        events_totals_t b = events_before(ev), a = events_after(ev);
        assert_int_equal(a.data - b.data, EVENTS_IS_LINE(ev) ? EVENTS_DATA_LEN(ev) : 0);
        cJSON_Delete(j);
    }
    assert_true(EVENTS_MARKER(events_at(&lg, 2)));  /* "!bang" */
    assert_false(EVENTS_MARKER(events_at(&lg, 1))); /* "one" */
    assert_int_equal(data, 3 + 5 + 3 + EVENTS_MAX_LINE + 10);
    assert_int_equal(lines, 5);
    assert_int_equal(wholes, 4);
    /* events 2..5 (indices 1..4): a difference of totals */
    events_totals_t x = events_before(events_at(&lg, 1)), y = events_after(events_at(&lg, 4));
    assert_int_equal(y.data - x.data, 3 + 5 + 3 + EVENTS_MAX_LINE);
    assert_int_equal(y.lines - x.lines, 4);
    assert_int_equal(y.wholes - x.wholes, 3);
}

/* Evicted events stay in the totals: the held ones' figures are still differences; release keeps the totals. */
static void test_running_totals_across_drops(void **state)
{
    events_free(&lg);
    events_init(&lg, 16, BIG);
    for (int i = 0; i < 40; i++) {
        char line[16];
        int n = snprintf(line, sizeof(line), "%d\n", i);
        events_feed(&lg, i % 2, line, (size_t)n, NULL, NULL);
    }
    assert_int_equal(lg.dropped, 24);
    const event_t *first = events_at(&lg, 0), *last = events_at(&lg, lg.count - 1);
    uint64_t held = 0;
    for (int i = 24; i < 40; i++)
        held += i < 10 ? 1 : 2;
    assert_int_equal(events_after(last).data - events_before(first).data, held);
    assert_int_equal(events_after(last).lines - events_before(first).lines, 16);
    assert_int_equal(last->line_sum, 40);
    uint64_t total = lg.totals.data;
    events_release(&lg);
    assert_int_equal(lg.totals.data, total);
}

/* events_index over JSON read back (as from Redis) gives the log's own info and totals. */
static void test_index_from_json(void **state)
{
    events_append(&lg, "ready", NULL);
    events_feed(&lg, 0, "a\n\\b\n", 5, NULL, NULL);
    events_feed(&lg, 1, "c\n", 2, NULL, NULL);
    events_totals_t t = {0, 0, 0};
    for (size_t i = 0; i < lg.count; i++) {
        const event_t *ev = events_at(&lg, i);
        event_t copy = {.seq = ev->seq, .json = ev->json, .len = ev->len};
        events_index(&copy, info_from_json(ev), &t);
        assert_int_equal(copy.info, ev->info);
        assert_int_equal(copy.data_sum, ev->data_sum);
        assert_int_equal(copy.line_sum, ev->line_sum);
        assert_int_equal(copy.whole_sum, ev->whole_sum);
    }
    assert_true(EVENTS_MARKER(events_at(&lg, 2))); /* "\\b" */
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_ids_increase_from_one),
        T(test_resume_index),
        T(test_resume_future),
        T(test_resume_malformed),
        T(test_resume_dropped),
        T(test_max_events_cap),
        T(test_max_bytes_cap),
        T(test_feed_splits_across_chunks),
        T(test_feed_streams_are_separate),
        T(test_feed_many_lines_one_chunk),
        T(test_long_line_split),
        T(test_line_at_the_limit),
        T(test_multibyte_never_split),
        T(test_multibyte_across_chunks),
        T(test_invalid_utf8_and_nul),
        T(test_utf8_sanitize),
        T(test_flush),
        T(test_write_array),
        T(test_event_held_at_exact_size),
        T(test_compact),
        T(test_release),
        T(test_running_totals),
        T(test_running_totals_across_drops),
        T(test_index_from_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
