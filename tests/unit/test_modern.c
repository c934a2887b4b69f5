/*
 * Unit tests for src/mcp/modern.c: how a Mcp-Param-* / Mcp-Name header
 * value is decoded (trimmed, visible ASCII only, the =?base64?…?= sentinel).
 */
#include "../../src/mcp/modern.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* Decodes `in` and expects `want` (NULL: refused). */
static void expect_decode(const char *in, const char *want)
{
    char *out = NULL;
    size_t len = 0;
    int rc = modern_header_decode(in, strlen(in), &out, &len);
    if (want == NULL) {
        if (rc == 0)
            fail_msg("'%s' decoded to '%s', expected a refusal", in, out);
        return;
    }
    assert_int_equal(rc, 0);
    assert_string_equal(out, want);
    assert_int_equal(len, strlen(want));
    free(out);
}

static void test_plain_and_trimmed(void **state)
{
    expect_decode("us-west1", "us-west1");
    expect_decode("  w-0123abcd\t", "w-0123abcd");
    expect_decode("", "");
}

static void test_base64(void **state)
{
    expect_decode("=?base64?SGVsbG8sIOS4lueVjA==?=", "Hello, \xe4\xb8\x96\xe7\x95\x8c");
    expect_decode("=?base64?IHBhZGRlZCA=?=", " padded ");
    expect_decode("=?base64?PT9iYXNlNjQ/bGl0ZXJhbD89?=", "=?base64?literal?=");
    expect_decode("=?base64?YWJj?=", "abc");
    expect_decode("=?base64?YW*j?=", NULL);  /* not base64 */
    expect_decode("=?base64?AA==?=", NULL);  /* decodes to a NUL byte */
    expect_decode("=?BASE64?YWJj?=", "=?BASE64?YWJj?="); /* markers are case-sensitive: a plain value */
}

static void test_invalid_characters(void **state)
{
    expect_decode("a\x01" "b", NULL);
    expect_decode("caf\xc3\xa9", NULL);
    expect_decode("a\x7f", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_and_trimmed),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_invalid_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
