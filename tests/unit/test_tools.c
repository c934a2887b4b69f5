/*
 * Unit tests for src/tools.c: the checks on a tool's arguments that need no
 * running execution.
 */
#include "../../src/mcp/tools.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* An id of `n` characters (hex digits and UUID dashes). */
static const char *id_of(size_t n)
{
    static char buf[64];
    for (size_t i = 0; i < n; i++)
        buf[i] = (i == 8 || i == 13 || i == 18 || i == 23) ? '-' : "0123456789abcdef"[i % 16];
    buf[n] = '\0';
    return buf;
}

/* An execution id read from Redis must fit the mirror's char[40] buffers whole. */
static void test_valid_exec_id_length(void **state)
{
    assert_true(valid_exec_id(id_of(1)));
    assert_true(valid_exec_id(id_of(36))); /* a UUID */
    assert_true(valid_exec_id(id_of(39)));
    assert_false(valid_exec_id(id_of(40))); /* would be cut to 39 by strlcpy into char[40] */
    assert_false(valid_exec_id(id_of(41)));
    assert_false(valid_exec_id(""));
    assert_false(valid_exec_id("0123-xyz"));
    assert_false(valid_exec_id("../../etc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_exec_id_length),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
