/*
 * Unit tests for src/util.c: strbuf, JSON string escaping, clocks, random ids.
 */
#include "../../src/core/util.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "big_input.h"

#include <ctype.h>
#include <sys/mman.h>

static void test_strbuf_append(void **state)
{
    strbuf_t b = {0};
    strbuf_append(&b, "ab", 2);
    strbuf_puts(&b, "cd");
    assert_string_equal(b.data, "abcd");
    assert_int_equal(b.len, 4);
    assert_true(b.cap > b.len);
    /* growth keeps the content and the terminator */
    for (int i = 0; i < 1000; i++)
        strbuf_puts(&b, "0123456789");
    assert_int_equal(b.len, 10004);
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data + 10004 - 10, "0123456789", 10);
    /* binary data with NUL */
    strbuf_append(&b, "\0x", 2);
    assert_int_equal(b.len, 10006);
    assert_int_equal(b.data[10005], 'x');
    strbuf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.cap, 0);
}

static void test_strbuf_printf(void **state)
{
    strbuf_t b = {0};
    strbuf_printf(&b, "%d-%s", 42, "x");
    assert_string_equal(b.data, "42-x");
    /* longer than the internal stack buffer */
    char big[1000];
    memset(big, 'z', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    strbuf_printf(&b, "[%s]", big);
    assert_int_equal(b.len, 4 + 2 + 999);
    assert_int_equal(strlen(b.data), b.len);
    assert_int_equal(b.data[4], '[');
    assert_int_equal(b.data[b.len - 1], ']');
    strbuf_free(&b);
}

static void test_strbuf_steal(void **state)
{
    strbuf_t b = {0};
    size_t len = 99;
    char *s = strbuf_steal(&b, &len); /* empty: still a valid string */
    assert_non_null(s);
    assert_string_equal(s, "");
    assert_int_equal(len, 0);
    free(s);
    strbuf_puts(&b, "hello");
    s = strbuf_steal(&b, &len);
    assert_string_equal(s, "hello");
    assert_int_equal(len, 5);
    assert_null(b.data);
    assert_int_equal(b.len, 0);
    free(s);
}

/* Escapes `s` (n bytes) and checks it parses back to the same bytes. */
static void json_roundtrip(const char *s, size_t n)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "[");
    strbuf_json_string(&b, s, n);
    strbuf_puts(&b, "]");
    assert_int_equal(strlen(b.data), b.len);
    cJSON *j = cJSON_Parse(b.data);
    if (j == NULL)
        fail_msg("not valid JSON: %s", b.data);
    const cJSON *v = cJSON_GetArrayItem(j, 0);
    assert_true(cJSON_IsString(v));
    assert_int_equal(strlen(v->valuestring), n);
    assert_memory_equal(v->valuestring, s, n);
    cJSON_Delete(j);
    strbuf_free(&b);
}

static void test_json_string(void **state)
{
    json_roundtrip("plain", 5);
    json_roundtrip("q\"uote", 6);
    json_roundtrip("back\\slash", 10);
    json_roundtrip("tab\tnl\ncr\r", 10);
    json_roundtrip("caf\xc3\xa9 \xf0\x9f\x98\x80", 10);
    json_roundtrip("mixed\x01", 6);
    /* only the first n bytes */
    strbuf_t b = {0};
    strbuf_json_string(&b, "abcdef", 3);
    assert_string_equal(b.data, "\"abc\"");
    strbuf_free(&b);
    /* a long string */
    char big[100001];
    for (size_t i = 0; i < sizeof(big) - 1; i++)
        big[i] = (char)(' ' + i % 90);
    big[sizeof(big) - 1] = '\0';
    json_roundtrip(big, sizeof(big) - 1);
}

static void test_json_string_reads_only_n_bytes(void **state)
{
    /* "n bytes" means no more: an unterminated heap buffer of exactly n bytes */
    size_t n = 4096;
    char *s = xmalloc(n);
    memset(s, 'q', n);
    json_roundtrip(s, n);
    free(s);
}

static void test_json_string_worst_case(void **state)
{
    /* the empty string, and strings where every byte becomes a six-byte \u00XX escape */
    json_roundtrip("", 0);
    json_roundtrip("\x01", 1);
    json_roundtrip("\x1b\x1b", 2);
    char ctl[301];
    for (size_t i = 0; i < sizeof(ctl) - 1; i++)
        ctl[i] = (char)(1 + i % 7); /* \x01..\x07: all \u-escaped */
    ctl[sizeof(ctl) - 1] = '\0';
    json_roundtrip(ctl, sizeof(ctl) - 1);
}

static void test_clocks(void **state)
{
    uint64_t a = util_now_ms(), b = util_now_ms();
    assert_true(b >= a);
    uint64_t w = util_wall_ms();
    assert_true(w > UINT64_C(1600000000000)); /* after 2020 */
    char buf[32];
    util_iso8601(UINT64_C(1700000000123), buf, sizeof(buf));
    assert_string_equal(buf, "2023-11-14T22:13:20.123Z");
    util_iso8601(0, buf, sizeof(buf));
    assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
    util_iso8601(w, buf, sizeof(buf));
    assert_int_equal(strlen(buf), 24);
}

static void test_random_hex(void **state)
{
    char a[33], b[33];
    util_random_hex(a, 16);
    util_random_hex(b, 16);
    assert_int_equal(strlen(a), 32);
    for (int i = 0; i < 32; i++)
        assert_true(isdigit((unsigned char)a[i]) || (a[i] >= 'a' && a[i] <= 'f'));
    assert_string_not_equal(a, b);
    char one[3];
    util_random_hex(one, 1);
    assert_int_equal(strlen(one), 2);
}

static void test_uuid4(void **state)
{
    char u[37], v[37];
    util_uuid4(u);
    util_uuid4(v);
    assert_int_equal(strlen(u), 36);
    assert_string_not_equal(u, v);
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(u[i], '-');
        else
            assert_true(isxdigit((unsigned char)u[i]) && !isupper((unsigned char)u[i]));
    }
    assert_int_equal(u[14], '4');
    assert_non_null(strchr("89ab", u[19]));
}

/* util_json_escaped_len is exactly what cJSON writes, byte by byte (the reservation relies on it). */
static void test_json_escaped_len_exact(void **state)
{
    for (int c = 1; c < 256; c++) {
        char s[4] = {'a', (char)c, 'b', '\0'};
        strbuf_t b = {0};
        assert_int_equal(strbuf_json_utf8(&b, s, 3), 0);
        if (b.len != util_json_escaped_len(s, 3))
            fail_msg("byte 0x%02x: cJSON wrote %zu bytes, counted %zu", c, b.len, util_json_escaped_len(s, 3));
        strbuf_free(&b);
    }
    assert_int_equal(util_json_escaped_len("", 0), 2);
    assert_int_equal(util_json_escaped_len("\x01\"\n", 3), 2 + 6 + 2 + 2);
}

/*
 * A string whose JSON would pass STRBUF_JSON_MAX is refused before anything
 * is allocated (it used to reach util_oom() once 6n passed INT_MAX). The input
 * is ~171 MiB of 0x01 (six bytes each once escaped): one 1 MiB memfd mapped
 * again and again, so the test costs 1 MiB of memory, not 171.
 */
static void test_json_utf8_refuses_oversized(void **state)
{
    const size_t n = STRBUF_JSON_MAX / 6 + (1 << 20);
    const char *base = big_input(n, 0x01);
    assert_true(util_json_escaped_len(base, n) > STRBUF_JSON_MAX);
    strbuf_t b = {0};
    assert_int_equal(strbuf_json_utf8(&b, base, n), -1);
    assert_null(b.data); /* nothing reserved */
    assert_int_equal(b.cap, 0);
    /* after other bytes: refused, and what was there stays as it was */
    strbuf_puts(&b, "[");
    assert_int_equal(strbuf_json_utf8(&b, base, n), -1);
    assert_int_equal(b.len, 1);
    assert_true(b.cap < 1024);
    assert_string_equal(b.data, "[");
    /* the count stays exact at this size (size_t, no int on the way) */
    size_t fits = (STRBUF_JSON_MAX - 2) / 6;
    assert_int_equal(util_json_escaped_len(base, fits), 2 + 6 * fits);
    strbuf_free(&b);
    big_input_free(base, n);
}

static void test_alloc_wrappers(void **state)
{
    char *s = xstrndup("abcdef", 3);
    assert_string_equal(s, "abc");
    free(s);
    s = xstrdup("");
    assert_string_equal(s, "");
    free(s);
    void *p = xmalloc(0);
    assert_non_null(p);
    free(p);
    int *z = xcalloc(4, sizeof(int));
    assert_int_equal(z[0] | z[1] | z[2] | z[3], 0);
    free(z);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_strbuf_append),
        cmocka_unit_test(test_strbuf_printf),
        cmocka_unit_test(test_strbuf_steal),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_clocks),
        cmocka_unit_test(test_random_hex),
        cmocka_unit_test(test_uuid4),
        cmocka_unit_test(test_alloc_wrappers),
        cmocka_unit_test(test_json_escaped_len_exact),
        cmocka_unit_test(test_json_utf8_refuses_oversized),
        /* last: an undersized buffer aborts the binary through util_oom() */
        cmocka_unit_test(test_json_string_worst_case),
        cmocka_unit_test(test_json_string_reads_only_n_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
