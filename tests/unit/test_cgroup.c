/*
 * Unit tests for src/cgroup.c against fake cgroupfs trees in a temp
 * directory: detection (v2 delegated subtree, v1 hierarchies with co-mounted
 * cpu,cpuacct, the fallback), the limits written into a run's cgroup, the
 * files the child joins through, usage, the kill, removal, the startup sweep
 * and the pid_max check. mkdir/rmdir are swapped for versions that create and
 * delete the files the kernel would; no real cgroup is touched.
 */
#include "../../src/exec/cgroup.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>

static char tmp[256];

static const char *const fake_files[] = {
    "cgroup.procs", "cgroup.kill", "cgroup.controllers", "cgroup.subtree_control", "cgroup.event_control",
    "memory.max", "memory.swap.max", "memory.oom.group", "memory.peak", "memory.events", "memory.limit_in_bytes",
    "memory.memsw.limit_in_bytes", "memory.max_usage_in_bytes", "memory.oom_control", "pids.max", "cpu.max",
    "cpu.stat", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpuacct.usage", "freezer.state", NULL};

static void put(const char *dir, const char *file, const char *text)
{
    char p[1500];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void get(const char *dir, const char *file, char *buf, size_t len)
{
    assert_true(read_file(dir, file, buf, len) >= 0);
}

/* mkdir as the kernel does it: the directory comes with its control files */
static int fake_mkdir(const char *path, mode_t mode)
{
    if (mkdir(path, mode) != 0)
        return -1;
    for (int i = 0; fake_files[i] != NULL; i++)
        put(path, fake_files[i], "");
    return 0;
}

/* rmdir as the kernel does it: refused while cgroup.procs lists a process */
static int fake_rmdir(const char *path)
{
    char buf[64];
    if (read_file(path, "cgroup.procs", buf, sizeof(buf)) > 0) {
        errno = EBUSY;
        return -1;
    }
    for (int i = 0; fake_files[i] != NULL; i++) {
        char p[1500];
        snprintf(p, sizeof(p), "%s/%s", path, fake_files[i]);
        unlink(p);
    }
    return rmdir(path);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    return remove(p);
}

static int setup(void **state)
{
    strcpy(tmp, "/tmp/test_cgroup.XXXXXX");
    assert_non_null(mkdtemp(tmp));
    cg_mkdir = fake_mkdir;
    cg_rmdir = fake_rmdir;
    return 0;
}

static int teardown(void **state)
{
    nftw(tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    while (pending_head != NULL) {
        struct pending *p = pending_head;
        pending_head = p->next;
        free(p);
    }
    n_pending = 0;
    return 0;
}

static void mkd(const char *rel)
{
    char p[1024];
    snprintf(p, sizeof(p), "%s/%s", tmp, rel);
    assert_int_equal(fake_mkdir(p, 0755), 0);
}

/* ---------------------------------------------------------------- v2 */

static void make_v2_tree(const char *controllers)
{
    char p[1024];
    put(tmp, "cgroup.controllers", "cpuset cpu io memory hugetlb pids rdma misc\n");
    mkd("system.slice");
    mkd("system.slice/sbx.service");
    snprintf(p, sizeof(p), "%s/system.slice/sbx.service", tmp);
    put(p, "cgroup.controllers", controllers);
    put(tmp, "self", "0::/system.slice/sbx.service\n");
}

static void test_v2_detect_moves_server_and_enables_controllers(void **state)
{
    char self[1024], why[256], buf[256], own[1024];
    make_v2_tree("cpu memory pids\n");
    snprintf(self, sizeof(self), "%s/self", tmp);
    snprintf(own, sizeof(own), "%s/system.slice/sbx.service", tmp);
    assert_int_equal(cgroup_setup(tmp, self, "r1", 0, why, sizeof(why)), CGROUP_V2);
    assert_string_equal(cgroup_mode_name(), "v2");
    assert_string_equal(cg.dirs[0], own);
    /* the server itself went into <own>/server before the controllers were enabled */
    char leaf[1100];
    snprintf(leaf, sizeof(leaf), "%s/server", own);
    get(leaf, "cgroup.procs", buf, sizeof(buf));
    assert_int_equal(atoi(buf), (int)getpid());
    get(own, "cgroup.subtree_control", buf, sizeof(buf));
    assert_string_equal(buf, "+memory +pids +cpu");
    put(leaf, "cgroup.procs", ""); /* so the tree can be removed */
}

static void test_v2_not_delegated_falls_back(void **state)
{
    char self[1024], why[256];
    make_v2_tree("cpu pids\n"); /* no memory controller offered */
    snprintf(self, sizeof(self), "%s/self", tmp);
    assert_int_equal(cgroup_setup(tmp, self, "r1", 0, why, sizeof(why)), CGROUP_NONE);
    assert_non_null(strstr(why, "memory, pids and cpu"));
    assert_string_equal(cgroup_mode_name(), "none (rlimits)");
}

/* A delegated v2 tree with memory, pids and cpu, set up as replica "r1". */
static void setup_v2_r1(void)
{
    char self[1024], why[256];
    make_v2_tree("cpu memory pids\n");
    snprintf(self, sizeof(self), "%s/self", tmp);
    assert_int_equal(cgroup_setup(tmp, self, "r1", 0, why, sizeof(why)), CGROUP_V2);
}

static void test_v2_run_limits_stats_kill_remove(void **state)
{
    char err[256], buf[256], d[1400];
    setup_v2_r1();
    cgroup_run_t r;
    cgroup_limits_t lim = {256ull << 20, 34, 75};
    assert_int_equal(cgroup_run_create(&r, "abc", &lim, err, sizeof(err)), 0);
    assert_true(r.active);
    assert_string_equal(r.name, "mcp-r1-run-abc");
    assert_int_equal(r.n_procs_fd, 1);
    assert_true(r.procs_fd[0] >= 0);
    run_dir(0, r.name, d, sizeof(d));
    get(d, "memory.max", buf, sizeof(buf));
    assert_string_equal(buf, "268435456");
    get(d, "memory.swap.max", buf, sizeof(buf));
    assert_string_equal(buf, "0");
    get(d, "memory.oom.group", buf, sizeof(buf));
    assert_string_equal(buf, "1");
    get(d, "pids.max", buf, sizeof(buf));
    assert_string_equal(buf, "34");
    get(d, "cpu.max", buf, sizeof(buf));
    assert_string_equal(buf, "75000 100000");
    /* what the child does: write its pid into the open cgroup.procs */
    assert_int_equal(write(r.procs_fd[0], "4242", 4), 4);
    cgroup_run_placed(&r);
    assert_int_equal(r.procs_fd[0], -1);
    get(d, "cgroup.procs", buf, sizeof(buf));
    assert_string_equal(buf, "4242");
    put(d, "cpu.stat", "usage_usec 1500000\nuser_usec 1000000\nsystem_usec 500000\n");
    put(d, "memory.peak", "123456789\n");
    put(d, "memory.events", "low 0\nhigh 0\nmax 7\noom 1\noom_kill 1\n");
    cgroup_stats_t st;
    assert_int_equal(cgroup_run_stats(&r, &st), 0);
    assert_int_equal(st.cpu_ns, 1500000000ull);
    assert_int_equal(st.peak_bytes, 123456789);
    assert_int_equal(st.oom_kills, 1);
    /* an OOM with nothing the OOM killer would take still counts */
    put(d, "memory.events", "low 0\nhigh 0\nmax 7\noom 3\noom_kill 0\n");
    assert_int_equal(cgroup_run_stats(&r, &st), 0);
    assert_int_equal(st.oom_kills, 1);
    put(d, "memory.events", "low 0\nhigh 0\nmax 7\noom 0\noom_kill 0\n");
    assert_int_equal(cgroup_run_stats(&r, &st), 0);
    assert_int_equal(st.oom_kills, 0);
    put(d, "cgroup.procs", ""); /* the kill below must not signal a real pid 4242 */
    cgroup_run_kill(&r);
    get(d, "cgroup.kill", buf, sizeof(buf));
    assert_string_equal(buf, "1");
    cgroup_run_release(&r);
    assert_false(r.active);
    assert_int_equal(cgroup_pending_removals(), 1); /* removed from the timer, after the reply */
    assert_int_equal(cgroup_drain(0, NULL), 0);
    assert_int_equal(access(d, F_OK), -1);
}

static void test_v2_busy_cgroup_waits_for_removal(void **state)
{
    char err[256], d[1400];
    setup_v2_r1();
    cgroup_run_t r;
    cgroup_limits_t lim = {64ull << 20, 10, 0};
    assert_int_equal(cgroup_run_create(&r, "busy", &lim, err, sizeof(err)), 0);
    cgroup_run_placed(&r);
    run_dir(0, r.name, d, sizeof(d));
    put(d, "cgroup.procs", "999999999\n"); /* an exiting process (no such pid: kill() fails harmlessly) */
    cgroup_run_release(&r);
    assert_int_equal(cgroup_drain(20, NULL), 1); /* still busy */
    assert_int_equal(access(d, F_OK), 0);
    assert_int_equal(cgroup_pending_removals(), 1);
    put(d, "cgroup.procs", ""); /* it is gone */
    assert_int_equal(cgroup_drain(100, NULL), 0);
    assert_int_equal(access(d, F_OK), -1);
}

static void test_v2_sweep_removes_only_this_instances_runs(void **state)
{
    setup_v2_r1();
    mkd("system.slice/sbx.service/mcp-r1-run-old1");
    mkd("system.slice/sbx.service/mcp-r2-run-other");
    assert_int_equal(cgroup_sweep_leftovers(), 1);
    char p[1024];
    snprintf(p, sizeof(p), "%s/system.slice/sbx.service/mcp-r1-run-old1", tmp);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/system.slice/sbx.service/mcp-r2-run-other/cgroup.kill", tmp);
    char buf[16];
    assert_int_equal(read_path(p, buf, sizeof(buf)), 0); /* another instance's run: untouched */
    snprintf(p, sizeof(p), "%s/system.slice/sbx.service/server", tmp);
    put(p, "cgroup.procs", "");
}

/* ---------------------------------------------------------------- v1 */

static void make_v1_tree(void)
{
    mkd("memory");
    mkd("memory/machine");
    mkd("pids");
    mkd("cpu"); /* cpu,cpuacct co-mounted: one hierarchy, reached as cpu */
    mkd("freezer");
    put(tmp, "self", "9:name=systemd:/\n8:pids:/\n6:freezer:/\n4:memory:/machine\n2:cpu,cpuacct:/\n0::/\n");
}

static void test_v1_detect_and_run(void **state)
{
    char self[1024], why[256], err[256], buf[256], d[1400];
    make_v1_tree();
    snprintf(self, sizeof(self), "%s/self", tmp);
    assert_int_equal(cgroup_setup(tmp, self, "r1", 0, why, sizeof(why)), CGROUP_V1);
    assert_string_equal(cgroup_mode_name(), "v1");
    assert_int_equal(cg.n_dirs, 4); /* cpu and cpuacct share a hierarchy */
    assert_int_equal(cg.idx[HIER_CPU], cg.idx[HIER_CPUACCT]);
    snprintf(d, sizeof(d), "%s/memory/machine", tmp);
    assert_string_equal(cg.dirs[cg.idx[HIER_MEMORY]], d);
    cgroup_run_t r;
    cgroup_limits_t lim = {256ull << 20, 34, 50};
    assert_int_equal(cgroup_run_create(&r, "xyz", &lim, err, sizeof(err)), 0);
    assert_int_equal(r.n_procs_fd, 4);
    run_dir(cg.idx[HIER_MEMORY], r.name, d, sizeof(d));
    get(d, "memory.limit_in_bytes", buf, sizeof(buf));
    assert_string_equal(buf, "268435456");
    get(d, "memory.memsw.limit_in_bytes", buf, sizeof(buf));
    assert_string_equal(buf, "268435456");
    put(d, "memory.max_usage_in_bytes", "5000000\n");
    put(d, "memory.oom_control", "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n");
    run_dir(cg.idx[HIER_PIDS], r.name, d, sizeof(d));
    get(d, "pids.max", buf, sizeof(buf));
    assert_string_equal(buf, "34");
    run_dir(cg.idx[HIER_CPU], r.name, d, sizeof(d));
    get(d, "cpu.cfs_period_us", buf, sizeof(buf));
    assert_string_equal(buf, "100000");
    get(d, "cpu.cfs_quota_us", buf, sizeof(buf));
    assert_string_equal(buf, "50000");
    put(d, "cpuacct.usage", "2500000000\n");
    cgroup_run_placed(&r);
    cgroup_stats_t st;
    assert_int_equal(cgroup_run_stats(&r, &st), 0);
    assert_int_equal(st.cpu_ns, 2500000000ull);
    assert_int_equal(st.peak_bytes, 5000000);
    assert_int_equal(st.oom_kills, 2);
    /* the kill freezes, signals, thaws */
    cgroup_run_kill(&r);
    run_dir(cg.idx[HIER_FREEZER], r.name, d, sizeof(d));
    get(d, "freezer.state", buf, sizeof(buf));
    assert_string_equal(buf, "THAWED");
    cgroup_run_release(&r);
    assert_int_equal(cgroup_drain(0, NULL), 0);
    for (int i = 0; i < cg.n_dirs; i++) {
        run_dir(i, "mcp-r1-run-xyz", d, sizeof(d));
        assert_int_equal(access(d, F_OK), -1);
    }
}

static void test_v1_missing_hierarchy_falls_back(void **state)
{
    char self[1024], why[256];
    make_v1_tree();
    put(tmp, "self", "8:pids:/\n4:memory:/machine\n2:cpu,cpuacct:/\n"); /* no freezer */
    snprintf(self, sizeof(self), "%s/self", tmp);
    assert_int_equal(cgroup_setup(tmp, self, "r1", 0, why, sizeof(why)), CGROUP_NONE);
    assert_non_null(strstr(why, "freezer"));
    cgroup_run_t r;
    cgroup_limits_t lim = {1 << 20, 1, 0};
    char err[128];
    assert_int_equal(cgroup_run_create(&r, "x", &lim, err, sizeof(err)), 0);
    assert_false(r.active); /* nothing to create without cgroups */
}

static void test_disabled_and_empty_root(void **state)
{
    char why[256];
    assert_int_equal(cgroup_setup(tmp, "/proc/self/cgroup", "r1", 1, why, sizeof(why)), CGROUP_NONE);
    assert_non_null(strstr(why, "--cgroups off"));
    /* an empty root: no hierarchy to be found */
    assert_int_equal(cgroup_setup(tmp, "/proc/self/cgroup", "r1", 0, why, sizeof(why)), CGROUP_NONE);
    assert_string_equal(cgroup_mode_name(), "none (rlimits)");
}

static void test_pid_max_check(void **state)
{
    char p[1024], err[256];
    snprintf(p, sizeof(p), "%s/pid_max", tmp);
    put(tmp, "pid_max", "32768\n");
    assert_int_equal(cgroup_check_pid_max(32, 1024, p, err, sizeof(err)), 0);
    assert_int_equal(cgroup_check_pid_max(33, 1024, p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--max-concurrent (33)"));
    assert_non_null(strstr(err, "--max-processes (1024)"));
    assert_non_null(strstr(err, "kernel.pid_max (32768)"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_v2_detect_moves_server_and_enables_controllers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_not_delegated_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_run_limits_stats_kill_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_busy_cgroup_waits_for_removal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v2_sweep_removes_only_this_instances_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_detect_and_run, setup, teardown),
        cmocka_unit_test_setup_teardown(test_v1_missing_hierarchy_falls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_empty_root, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pid_max_check, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
