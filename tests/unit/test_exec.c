/*
 * Unit tests for src/exec/exec.c: the execution state machine, against fakes
 * of proc, sandbox, cgroup and quota defined here at link level (this test
 * links none of their objects). The fake proc_spawn keeps the callbacks; the
 * test then plays the process: output, exit, a failed start. The observer
 * (what the cluster would plug in) records what exec told it.
 *
 * unit-links: core/util core/log core/config core/deadline core/clock core/events core/metrics exec/exec_retain exec/exec_report
 */
#include "../../src/exec/exec.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* ---------------------------------------------------------------- fakes */

static struct fake {
    int spawn_fails;       /* proc_spawn answers -1 */
    int spawned, terminated, forced, released, stdin_writes;
    proc_t *last;          /* the proc of the last spawn */
    int cgroups_made, cgroups_released;
    int workspaces_made, workspaces_removed, uids_released;
} fake;

int proc_spawn(proc_t *p, const proc_spec_t *spec, const proc_callbacks_t *cb, void *arg, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    if (fake.spawn_fails) {
        snprintf(err, errlen, "fake spawn failure");
        return -1;
    }
    p->cb = *cb;
    p->arg = arg;
    p->pid = 4242;
    fake.spawned++;
    fake.last = p;
    return 0;
}
void proc_terminate(proc_t *p, int force, int grace_ms)
{
    fake.terminated++;
    fake.forced += force;
}
void proc_release(proc_t *p) { fake.released++; }
int proc_write_stdin(proc_t *p, const char *data, size_t len, char *err, size_t errlen)
{
    fake.stdin_writes++;
    return 0;
}
const char *sandbox_error(void) { return NULL; }
int sandbox_seccomp_fd(int network_host) { return -1; }
/* egress (issue 14): no run here asks for allowed_domains */
egress_run_t *egress_run_start(const egress_policy_t *p, egress_denied_cb cb, void *arg, int *child_fd, char *err,
                               size_t errlen)
{
    snprintf(err, errlen, "fake: no egress");
    return NULL;
}
void egress_run_close(egress_run_t *r) {}
int sandbox_uid_acquire(uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    *uid = 1000;
    *gid = 1000;
    return 0;
}
void sandbox_uid_release(uid_t uid) { fake.uids_released++; }
int sandbox_workspace_create(char *buf, size_t len, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    fake.workspaces_made++;
    snprintf(buf, len, "/nonexistent/ws");
    return 0;
}
void sandbox_workspace_remove(const char *path) { fake.workspaces_removed++; }
void sandbox_workspace_remove_now(const char *path) { fake.workspaces_removed++; }
static char *fake_argv[] = {"/bin/sh", "-c", "true", NULL};
int sandbox_build(const sandbox_policy_t *p, const char *workspace, const char *cwd, const char *command,
                  char *const *env, size_t n_env, int status_fd, int seccomp_fd, sandbox_argv_t *argv,
                  sandbox_argv_t *envp)
{
    memset(argv, 0, sizeof(*argv));
    memset(envp, 0, sizeof(*envp));
    argv->v = fake_argv;
    argv->n = 3;
    envp->v = fake_argv + 3;
    return 0;
}
void sandbox_argv_free(sandbox_argv_t *a) {}
int cgroup_run_create(cgroup_run_t *r, const char *exec_id, const cgroup_limits_t *lim, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    fake.cgroups_made++;
    return 0; /* "not needed": inactive, as without cgroups */
}
void cgroup_run_placed(cgroup_run_t *r) {}
void cgroup_run_release(cgroup_run_t *r) { fake.cgroups_released++; }
int cgroup_run_stats(const cgroup_run_t *r, cgroup_stats_t *st) { return -1; }
uint64_t cgroup_run_cpu_ns(const cgroup_run_t *r) { return 0; }
const char *cgroup_mode_name(void) { return "none (rlimits)"; }
void cgroup_health(cJSON *h) {}
int quota_enabled(void) { return 0; }
quota_scan_t *quota_scan(const char *path, quota_cb cb, void *arg) { return NULL; }
void quota_cancel(quota_scan_t *s) {}

/* ---------------------------------------------------------------- the observer */

static struct observed {
    int metas, events, reads, frees;
    exec_status_t last_status;
    char last_type[32];
} seen;

static void obs_meta(const exec_t *e)
{
    seen.metas++;
    seen.last_status = e->status;
}
static void obs_event(const exec_t *e, const event_t *ev)
{
    seen.events++;
    const char *t = memmem(ev->json, ev->len, "\"type\":\"", 8);
    if (t != NULL)
        sscanf(t + 8, "%31[^\"]", seen.last_type);
}
static void obs_read(const exec_t *e) { seen.reads++; }
static void obs_free(const exec_t *e) { seen.frees++; }

/* ---------------------------------------------------------------- helpers */

static exec_owner_t session_a, session_b;

static int setup(void **state)
{
    memset(&fake, 0, sizeof(fake));
    memset(&seen, 0, sizeof(seen));
    static const exec_observer_t obs = {obs_meta, obs_event, obs_read, obs_free};
    exec_set_observer(&obs);
    session_a = (exec_owner_t){.id = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"};
    session_b = (exec_owner_t){.id = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"};
    return 0;
}

static int teardown(void **state)
{
    exec_session_end(&session_a);
    exec_session_end(&session_b);
    assert_int_equal(exec_mgr.held, 0);
    return 0;
}

static exec_t *start(exec_owner_t *s, const char *command)
{
    exec_request_t rq;
    memset(&rq, 0, sizeof(rq));
    rq.command = command;
    rq.timeout_s = 60;
    rq.policy.mem_mb = 64;
    rq.policy.cpu_s = 10;
    rq.policy.fsize_mb = 10;
    rq.policy.nproc = 10;
    char err[256] = "";
    exec_t *e = exec_start(s, &rq, err, sizeof(err));
    assert_non_null(e);
    return e;
}

/* The fake process ends: exit code, or a signal (128+N). */
static void process_ends(exec_t *e, int exit_code, int sig)
{
    proc_exit_t x;
    memset(&x, 0, sizeof(x));
    x.exit_code = sig ? 128 + sig : exit_code;
    x.signal = sig;
    x.started = 1;
    e->proc.cb.on_exit(e->proc.arg, &x);
}

/* ---------------------------------------------------------------- tests */

/* pending -> running -> completed; the observer hears start, every event and the end. */
static void test_run_completes(void **state)
{
    exec_t *e = start(&session_a, "echo hi");
    assert_int_equal(e->status, EXEC_RUNNING);
    assert_int_equal(fake.spawned, 1);
    assert_int_equal(exec_running(), 1);
    assert_int_equal(seen.metas, 1);
    assert_int_equal(seen.last_status, EXEC_RUNNING);
    assert_string_equal(seen.last_type, "ready");
    e->proc.cb.on_output(e->proc.arg, 0, "hi\n", 3);
    assert_string_equal(seen.last_type, "stdout");
    process_ends(e, 0, 0);
    assert_int_equal(e->status, EXEC_COMPLETED);
    assert_int_equal(e->exit_code, 0);
    assert_int_equal(exec_running(), 0);
    assert_int_equal(seen.metas, 2);
    assert_int_equal(seen.last_status, EXEC_COMPLETED);
    assert_true(exec_find_in_session(&session_a, e->id) == e); /* kept for retention */
    assert_false(exec_is_active(e));
}

/* A non-zero exit is still "completed", with its code. */
static void test_nonzero_exit_is_completed(void **state)
{
    exec_t *e = start(&session_a, "exit 3");
    process_ends(e, 3, 0);
    assert_int_equal(e->status, EXEC_COMPLETED);
    assert_int_equal(e->exit_code, 3);
}

/* cancel: the process is terminated; its end is recorded as cancelled; a second cancel is refused. */
static void test_cancel(void **state)
{
    exec_t *e = start(&session_a, "sleep 100");
    char err[256];
    assert_int_equal(exec_cancel(e, 0, err, sizeof(err)), 0);
    assert_int_equal(fake.terminated, 1);
    assert_int_equal(e->status, EXEC_RUNNING); /* until the process is gone */
    process_ends(e, 0, SIGTERM);
    assert_int_equal(e->status, EXEC_CANCELLED);
    assert_int_equal(exec_cancel(e, 1, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "already completed (status: cancelled)"));
}

/* A failed spawn: no execution, nothing held, the run's cgroup released, nothing observed. */
static void test_spawn_failure_leaves_nothing(void **state)
{
    fake.spawn_fails = 1;
    exec_request_t rq;
    memset(&rq, 0, sizeof(rq));
    rq.command = "true";
    rq.timeout_s = 60;
    char err[256] = "";
    assert_null(exec_start(&session_a, &rq, err, sizeof(err)));
    assert_string_equal(err, "fake spawn failure");
    assert_int_equal(exec_mgr.held, 0);
    assert_int_equal(exec_running(), 0);
    assert_int_equal(fake.cgroups_released, fake.cgroups_made);
    assert_int_equal(seen.metas, 0);
}

/* exec_find checks the session; exec_lookup does not. */
static void test_find_checks_the_session(void **state)
{
    exec_t *e = start(&session_a, "true");
    assert_true(exec_find_in_session(&session_a, e->id) == e);
    assert_null(exec_find_in_session(&session_b, e->id));
    assert_true(exec_find_any_session(e->id) == e);
    assert_null(exec_find_any_session("no-such-id"));
    process_ends(e, 0, 0);
}

/* The session ends: its live run is killed, and once it is gone everything is freed (on_free observed). */
static void test_session_end_kills_and_frees(void **state)
{
    exec_t *e = start(&session_b, "sleep 100");
    exec_session_end(&session_b);
    assert_true(fake.terminated >= 1);
    assert_int_equal(seen.frees, 0); /* still running: kept until its end */
    process_ends(e, 0, SIGKILL);
    assert_int_equal(seen.frees, 1);
    assert_int_equal(exec_mgr.held, 0);
    assert_int_equal(fake.workspaces_removed, 1);
    assert_int_equal(fake.uids_released, 1);
}

/* exec_note_read reaches the observer's on_read. */
static void test_read_is_observed(void **state)
{
    exec_t *e = start(&session_a, "true");
    exec_note_read(e);
    assert_int_equal(seen.reads, 1);
    process_ends(e, 0, 0);
}

/* executions_total comes from exec's one status table: each final status once, nothing else. */
static void test_metrics_count_final_statuses(void **state)
{
    exec_t *e = start(&session_a, "true");
    process_ends(e, 0, 0);
    strbuf_t b = {0};
    exec_metrics(&b);
    assert_non_null(strstr(b.data, "mcp_sandboxd_executions_total{status=\"completed\"}"));
    assert_non_null(strstr(b.data, "mcp_sandboxd_executions_total{status=\"timeout\"}"));
    assert_null(strstr(b.data, "mcp_sandboxd_executions_total{status=\"running\"}"));
    assert_null(strstr(b.data, "mcp_sandboxd_executions_total{status=\"pending\"}"));
    strbuf_free(&b);
}

int main(void)
{
    char err[256];
    if (config_parse(&config, 1, (char *[]){"test", NULL}, (char *[]){NULL}, err, sizeof(err), NULL, 0) != CONFIG_OK)
        return 1;
    config.isolation_none = 1;
    if (deadline_init(h2o_evloop_create()) != 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_run_completes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nonzero_exit_is_completed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spawn_failure_leaves_nothing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find_checks_the_session, setup, teardown),
        cmocka_unit_test_setup_teardown(test_session_end_kills_and_frees, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_is_observed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_count_final_statuses, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
