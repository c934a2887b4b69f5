/*
 * principal: the tokens file (format, errors, reload keeping the old table on
 * a bad file, or one naming no principal), --token as "default", and
 * authentication by token.
 */
#include "mcp/principal.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

static char path[] = "/tmp/test_principal_XXXXXX";

static void write_file(const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int auth(const char *tok, char *name)
{
    return principal_authenticate(tok, strlen(tok), name);
}

static void test_load_and_authenticate(void **state)
{
    char err[256], name[PRINCIPAL_NAME_MAX + 1];
    write_file("# tenants\n\nalice:alice-token-0123456789\n  bob:bob-token-0123456789abc  \n");
    assert_int_equal(principal_load("the-default-token", path, err, sizeof(err)), 0);
    assert_int_equal(principal_count(), 3);
    assert_true(principal_enabled());
    assert_int_equal(auth("alice-token-0123456789", name), 0);
    assert_string_equal(name, "alice");
    assert_int_equal(auth("bob-token-0123456789abc", name), 0);
    assert_string_equal(name, "bob");
    assert_int_equal(auth("the-default-token", name), 0);
    assert_string_equal(name, "default");
    assert_int_equal(auth("alice-token-012345678", name), -1); /* a prefix */
    assert_int_equal(auth("alice-token-01234567890", name), -1); /* longer */
    assert_int_equal(auth("", name), -1);
    principal_free();
    assert_false(principal_enabled());
}

static void test_bad_files(void **state)
{
    char err[256];
    static const char *bad[] = {"alice:short\n", "alice\n", ":token-0123456789abc\n", "al ice:token-0123456789abc\n",
                                "a:token-0123456789abc\na:token-0123456789abd\n",
                                "a:token-0123456789abc\nb:token-0123456789abc\n", "a:token 0123456789abc\n", NULL};
    for (int i = 0; bad[i] != NULL; i++) {
        write_file(bad[i]);
        assert_int_equal(principal_load("", path, err, sizeof(err)), -1);
        assert_int_equal(principal_count(), 0);
        assert_null(strstr(err, "0123456789")); /* tokens are never in messages */
    }
    write_file("default:token-0123456789abc\n");
    assert_int_equal(principal_load("another-token-xyz", path, err, sizeof(err)), -1); /* --token is "default" */
    assert_int_equal(principal_load("", "/nonexistent/tokens", err, sizeof(err)), -1);
}

static void test_reload(void **state)
{
    char err[256], name[PRINCIPAL_NAME_MAX + 1];
    write_file("alice:alice-token-0123456789\n");
    assert_int_equal(principal_load("", path, err, sizeof(err)), 0);
    write_file("carol:carol-token-0123456789\n");
    assert_int_equal(principal_reload(err, sizeof(err)), 0);
    assert_int_equal(auth("alice-token-0123456789", name), -1);
    assert_int_equal(auth("carol-token-0123456789", name), 0);
    write_file("carol:short\n"); /* a bad file keeps the table in force */
    assert_int_equal(principal_reload(err, sizeof(err)), -1);
    assert_int_equal(auth("carol-token-0123456789", name), 0);
    assert_string_equal(name, "carol");
    write_file("# everyone removed\n"); /* an empty file would turn auth off: refused, the table stays */
    assert_int_equal(principal_reload(err, sizeof(err)), -1);
    assert_non_null(strstr(err, "names no principal"));
    assert_true(principal_enabled());
    assert_int_equal(auth("carol-token-0123456789", name), 0);
    assert_int_equal(principal_load("the-default-token", path, err, sizeof(err)), 0); /* --token alone is enough */
    assert_int_equal(principal_count(), 1);
    principal_free();
}

int main(void)
{
    int fd = mkstemp(path);
    if (fd < 0)
        return 1;
    close(fd);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_load_and_authenticate),
        cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_reload),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    unlink(path);
    return rc;
}
