/*
 * Unit tests for src/exec/proc.c: the order in which a run's end is reported.
 * on_exit must come once, and only after the process exited, both output
 * pipes reached EOF (every byte delivered first) and, for a sandboxed run,
 * bwrap's status pipe and the start marker were closed. Real children on a
 * real loop; a plain /bin/sh stands in for bwrap (it writes the JSON status
 * to fd 4 and the marker byte to fd 5, as bwrap and sandbox.c's script do).
 *
 * unit-links: core/util core/log core/deadline core/clock exec/cgroup core/metrics core/config
 */
#include "../../src/exec/proc.c"
#include "core/deadline.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static h2o_evloop_t *loop;

/* What the callbacks saw. */
static struct seen {
    size_t bytes[2];        /* stdout, stderr */
    size_t bytes_at_exit[2];
    int exits;
    proc_exit_t x;
} seen;

static void on_out(void *arg, int stream, const char *data, size_t len)
{
    assert_int_equal(seen.exits, 0); /* no output after the end */
    seen.bytes[stream] += len;
}

static void on_end(void *arg, const proc_exit_t *x)
{
    seen.exits++;
    seen.x = *x;
    memcpy(seen.bytes_at_exit, seen.bytes, sizeof(seen.bytes));
}

static const proc_callbacks_t cbs = {on_out, on_end};

/* Runs `script` under /bin/sh -c and turns the loop until on_exit came (a bound, not a timing claim). */
static void run(const char *script, int sandboxed)
{
    char *argv[] = {"/bin/sh", "-c", (char *)script, NULL};
    char *envp[] = {"PATH=/usr/bin:/bin", NULL};
    proc_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.argv = argv;
    spec.envp = envp;
    spec.seccomp_fd = -1;
    spec.sandboxed = sandboxed;
    spec.uid = (uid_t)-1;
    spec.gid = (gid_t)-1;
    /* the limits this process has (a child may not raise them) */
    getrlimit(RLIMIT_AS, &spec.rl_as);
    getrlimit(RLIMIT_CPU, &spec.rl_cpu);
    getrlimit(RLIMIT_FSIZE, &spec.rl_fsize);
    getrlimit(RLIMIT_NPROC, &spec.rl_nproc);
    memset(&seen, 0, sizeof(seen));
    proc_t p;
    char err[256];
    assert_int_equal(proc_spawn(&p, &spec, &cbs, NULL, err, sizeof(err)), 0);
    for (int turns = 0; seen.exits == 0 && turns < 100000; turns++)
        h2o_evloop_run(loop, 100);
    assert_int_equal(seen.exits, 1);
    proc_release(&p);
    h2o_evloop_run(loop, 0); /* frees the closed sockets */
}

/*
 * Output written just before exit is all delivered before on_exit, on both
 * pipes, written at once. Short lines: a pipe's last 64 KiB are then many turns' worth
 * (PROC_OUTPUT_TURN_LINES), so the exit is seen long before the pipe is drained.
 */
static void test_exit_after_both_pipes_drained(void **state)
{
    run("yes | head -n 300000 & yes e | head -n 300000 >&2 & wait; exit 3", 0);
    assert_int_equal(seen.bytes_at_exit[0], 600000);
    assert_int_equal(seen.bytes_at_exit[1], 600000);
    assert_int_equal(seen.x.exit_code, 3);
    assert_int_equal(seen.x.signal, 0);
    assert_true(seen.x.started);
}

/* A signal ends the command: 128+N and the signal. */
static void test_exit_by_signal(void **state)
{
    run("kill -TERM $$", 0);
    assert_int_equal(seen.x.exit_code, 128 + SIGTERM);
    assert_int_equal(seen.x.signal, SIGTERM);
}

/*
 * Sandboxed: the process exits and its output pipes close at once, but the
 * status pipe stays open a while longer in a background job, which then
 * reports the command's exit code. on_exit waits for it: the code is the
 * status pipe's 7, not the wait status' 0.
 */
static void test_exit_waits_for_status_pipe(void **state)
{
    run("printf x >&5; (exec 1>/dev/null 2>&1 5>&-; sleep 0.3; printf '{\"exit-code\": 7}\\n' >&4) & exit 0", 1);
    assert_int_equal(seen.x.exit_code, 7);
    assert_true(seen.x.started); /* the marker byte came */
}

/* Sandboxed, the marker never written: the sandbox did not start (setup failure, stderr kept). */
static void test_no_marker_is_a_setup_failure(void **state)
{
    run("echo 'bwrap: cannot do it' >&2; exit 1", 1);
    assert_false(seen.x.started);
    assert_string_equal(seen.x.setup_error, "bwrap: cannot do it");
}

int main(void)
{
    loop = h2o_evloop_create();
    proc_init(loop);
    if (deadline_init(loop) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exit_after_both_pipes_drained),
        cmocka_unit_test(test_exit_by_signal),
        cmocka_unit_test(test_exit_waits_for_status_pipe),
        cmocka_unit_test(test_no_marker_is_a_setup_failure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
