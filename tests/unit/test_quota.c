/*
 * Unit tests for src/quota.c's measurement (quota_measure): allocated blocks
 * summed, each entry at least 4 KiB, symlinks not followed, a missing path -1.
 */
#include "../../src/exec/quota.c"

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>
#include <cmocka.h>

static void write_file(const char *path, size_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    char buf[4096];
    memset(buf, 'x', sizeof(buf));
    for (size_t done = 0; done < bytes; done += sizeof(buf))
        assert_true(write(fd, buf, bytes - done < sizeof(buf) ? bytes - done : sizeof(buf)) > 0);
    fsync(fd);
    close(fd);
}

static void test_measure(void **state)
{
    char root[] = "/var/tmp/unit-quota-XXXXXX", p[256];
    assert_non_null(mkdtemp(root));
    snprintf(p, sizeof(p), "%s/big", root);
    write_file(p, 1 << 20);
    int64_t one = quota_measure(root);
    assert_true(one >= (1 << 20) + 4096); /* the file and the directory */
    /* 100 empty files: each costs at least one 4 KiB block */
    for (int i = 0; i < 100; i++) {
        snprintf(p, sizeof(p), "%s/e%d", root, i);
        write_file(p, 0);
    }
    assert_true(quota_measure(root) >= one + 100 * 4096);
    /* a symlink to a big tree is not followed */
    snprintf(p, sizeof(p), "%s/usr", root);
    assert_int_equal(symlink("/usr", p), 0);
    assert_true(quota_measure(root) < one + 102 * 4096 + 8192);
    /* a missing path */
    assert_int_equal(quota_measure("/nonexistent/unit-quota"), -1);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_measure)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
