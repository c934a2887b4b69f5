/*
 * Unit tests for the workspace remover of src/exec/sandbox_workspace.c (linked, not
 * included): a mass expiry queues removals for one worker thread instead of
 * starting a thread per workspace. pthread_create is interposed (this
 * executable's definition wins over libc's) to count the threads started.
 */
#include "exec/sandbox.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

static int creates;

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    static int (*real)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
    if (real == NULL)
        real = (int (*)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *))dlsym(RTLD_NEXT, "pthread_create");
    __atomic_fetch_add(&creates, 1, __ATOMIC_SEQ_CST);
    return real(t, a, fn, arg);
}

/* Threads of this process (entries of /proc/self/task). */
static int task_count(void)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    if (d != NULL)
        closedir(d);
    return n;
}

/* 10,000 workspaces (each with a file) expire at once: at most one thread starts, every one is removed. */
static void test_mass_removal_one_thread(void **state)
{
    char root[] = "/tmp/ws-remove-XXXXXX", path[128];
    assert_non_null(mkdtemp(root));
    enum { N = 10000 };
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "%s/%d", root, i);
        assert_int_equal(mkdir(path, 0700), 0);
        snprintf(path, sizeof(path), "%s/%d/f", root, i);
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fclose(f);
    }
    int before = task_count(), peak = before;
    for (int i = 0; i < N; i++) {
        snprintf(path, sizeof(path), "%s/%d", root, i);
        sandbox_workspace_remove(path);
        int now = task_count();
        peak = now > peak ? now : peak;
    }
    assert_in_range(creates, 0, 1);
    assert_in_range(peak, before, before + 1);
    assert_int_equal(sandbox_workspace_wait(600000), 0);
    for (int i = 0; i < N; i += 997) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%d", root, i);
        assert_int_not_equal(lstat(path, &st), 0);
    }
    assert_int_equal(rmdir(root), 0);
    /* a later removal reuses the worker */
    snprintf(path, sizeof(path), "%s", root);
    assert_non_null(mkdtemp(strcpy(path, "/tmp/ws-remove-XXXXXX")));
    sandbox_workspace_remove(path);
    assert_int_equal(sandbox_workspace_wait(600000), 0);
    assert_in_range(creates, 0, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mass_removal_one_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
