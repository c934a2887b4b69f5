/*
 * exec: the execution manager.
 *
 * State: an RB tree of every held execution by id, and per MCP session an
 * exec_session (workspace, its executions, its running count). An execution
 * moves pending -> running -> completed | failed | timeout | cancelled; its
 * final transition happens in on_proc_exit, after the process is gone and
 * its pipes are drained, so the `exit` event is always the last one. Finished
 * executions are kept `retention` seconds, then freed. The retained-output
 * caps are exec_retain.c's; finders, listings, metrics and health are
 * exec_report.c's (the shared state: exec_internal.h).
 */
#include "exec/exec.h"
#include "exec/exec_internal.h"
#include "core/config.h"
#include "core/log.h"
#include "core/metrics.h"
#include "exec/egress.h"
#include "exec/quota.h"
#include "core/util.h"

#include <bsd/string.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static exec_observer_t observer; /* the cluster, or all NULL (exec_set_observer) */
static int exec_cmp(exec_t *a, exec_t *b)
{
    return strcmp(a->id, b->id);
}

RB_GENERATE(exec_tree, exec, node, exec_cmp)

struct exec_mgr exec_mgr = {.all = RB_INITIALIZER(&exec_mgr.all),
                            .releasable = TAILQ_HEAD_INITIALIZER(exec_mgr.releasable)};

/* The one table of status names, in exec_status_t order (metrics, tools schema and the replica script use it). */
static const char *const status_names[EXEC_N_STATUSES] = {"pending", "running", "completed", "cancelled", "failed", "timeout"};

const char *exec_status_name(exec_status_t st)
{
    return status_names[st];
}

void exec_log_manager_use(void)
{
    if (!exec_mgr.initialized) {
        exec_mgr.initialized = 1;
        log_info("First-time initialization of ExecutionManager");
    } else {
        log_debug("Reusing existing ExecutionManager");
    }
}

const char *exec_sandbox_error(void)
{
    return sandbox_error();
}

int exec_is_active(const exec_t *e)
{
    return e->status == EXEC_PENDING || e->status == EXEC_RUNNING;
}

static struct exec_session *session_state(exec_owner_t *s)
{
    if (s->state == NULL) {
        struct exec_session *es = xcalloc(1, sizeof(*es));
        TAILQ_INIT(&es->execs);
        TAILQ_INIT(&es->releasable);
        s->state = es;
    }
    return s->state;
}

void exec_set_observer(const exec_observer_t *o)
{
    observer = o != NULL ? *o : (exec_observer_t){0};
}

/* Tells the observer the execution's record changed (start, end). */
static void notify_meta(const exec_t *e)
{
    if (observer.on_meta != NULL)
        observer.on_meta(e);
}

/* Tells the observer an event was appended to the execution's log. */
static void notify_event(const exec_t *e, const event_t *ev)
{
    if (observer.on_event != NULL)
        observer.on_event(e, ev);
}

void exec_note_read(const exec_t *e)
{
    if (observer.on_read != NULL)
        observer.on_read(e);
}

static void exec_free(exec_t *e)
{
    quota_cancel(e->final_scan);
    if (observer.on_free != NULL)
        observer.on_free(e);
    deadline_cancel(&e->timeout_timer);
    deadline_cancel(&e->retention_timer);
    deadline_cancel(&e->cpu_timer);
    RB_REMOVE(exec_tree, &exec_mgr.all, e);
    exec_mgr.held--;
    exec_retain_forget(e);
    if (e->owner != NULL)
        TAILQ_REMOVE(&e->owner->execs, e, session_link);
    if (e->proc_live)
        proc_release(&e->proc);
    egress_run_close(e->egress); /* egress (issue 14) */
    cgroup_run_release(&e->cgroup);
    events_free(&e->log);
    exec_retain_account(e); /* its bytes leave the session's and the server's totals */
    free(e->command);
    free(e->error_message);
    free(e);
}

static void session_state_free_if_done(struct exec_session *es)
{
    if (es->ended && es->running == 0 && TAILQ_EMPTY(&es->execs)) {
        /* in the background normally; at shutdown now, since the process is about to exit */
        if (es->workspace[0] && exec_mgr.shutting_down)
            sandbox_workspace_remove_now(es->workspace);
        else if (es->workspace[0])
            sandbox_workspace_remove(es->workspace);
        if (es->has_uid)
            sandbox_uid_release(es->uid);
        deadline_cancel(&es->quota_timer);
        quota_cancel(es->scan);
        free(es);
    }
}

static void on_retention(deadline_t *d)
{
    exec_t *e = (exec_t *)((char *)d - offsetof(exec_t, retention_timer));
    log_debug("execution %s freed after retention", e->id);
    exec_free(e);
}

/* Appends an event and mirrors it. */
static void add_event(exec_t *e, const char *type, cJSON *fields)
{
    const event_t *ev = events_append(&e->log, type, fields);
    cJSON_Delete(fields);
    exec_retain_account(e);
    if (ev != NULL)
        notify_event(e, ev);
}

static void on_line_event(void *arg, const event_t *ev)
{
    exec_t *e = arg;
    /* evidence for a SIGXFSZ death: the shell says so on stderr (exit code 153 alone could be `exit 153`) */
    if (!e->saw_fsize_msg && memmem(ev->json, ev->len, "File size limit exceeded", 24) != NULL &&
        memmem(ev->json, ev->len, "\"type\":\"stderr\"", 15) != NULL)
        e->saw_fsize_msg = 1;
    notify_event(e, ev);
}

static void on_proc_output(void *arg, int stream, const char *data, size_t len)
{
    exec_t *e = arg;
    events_feed(&e->log, stream, data, len, on_line_event, e);
    exec_retain_account(e);
    if ((e->owner != NULL && e->owner->retained > (size_t)config.max_retained_session) ||
        exec_mgr.retained > (size_t)config.max_retained_total)
        exec_retain_enforce(e->owner);
}

static void fire_waiters(exec_t *e, int finished)
{
    exec_waiter_t *w;
    while ((w = TAILQ_FIRST(&e->waiters)) != NULL) {
        TAILQ_REMOVE(&e->waiters, w, link);
        e->n_waiters--;
        deadline_cancel(&w->deadline);
        w->cb(w->arg, e, finished);
        free(w);
    }
}

static void set_error(exec_t *e, const char *msg)
{
    free(e->error_message);
    e->error_message = xstrdup(msg);
}

/*
 * Exit code 152 is what both SIGXCPU and a plain `exit 152` produce: the
 * limit is reported only when the run's processes really used that much CPU
 * (bwrap's and the sandbox init's rusage, which covers what the init reaped).
 */
static int cpu_limit_plausible(const exec_t *e, const proc_exit_t *x)
{
    return x->cpu_ms + 100 >= (uint64_t)e->cpu_limit_s * 1000;
}

/*
 * The end of a run, whatever ended it (status and error already set): the
 * exit event, the counts, the mirror, the parked calls, then retention or,
 * when its session is gone, the execution itself.
 */
static void record_end(exec_t *e, int exit_code)
{
    e->has_exit_code = 1;
    e->exit_code = exit_code;
    e->completed_wall_ms = util_wall_ms();
    quota_cancel(e->final_scan); /* ended without its final measurement (shutdown) */
    e->final_scan = NULL;
    deadline_cancel(&e->timeout_timer);
    deadline_cancel(&e->cpu_timer);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "code", e->exit_code);
    cJSON_AddNumberToObject(f, "duration_ms", (double)(util_now_ms() - e->started_ms));
    if (e->have_usage) {
        cJSON_AddNumberToObject(f, "cpu_ms", (double)e->cpu_ms);
        if (e->cgroup.active)
            cJSON_AddNumberToObject(f, "peak_memory_bytes", (double)e->peak_bytes);
        else
            cJSON_AddNullToObject(f, "peak_memory_bytes"); /* unknown without a cgroup */
        cJSON_AddBoolToObject(f, "oom_killed", e->oom_killed);
    }
    add_event(e, "exit", f);
    events_compact(&e->log);
    if (e->proc_live)
        proc_release(&e->proc);
    e->proc_live = 0;
    cgroup_run_release(&e->cgroup); /* kills what is left; rmdir now or from a timer */
    exec_mgr.running--;
    if (e->owner != NULL)
        e->owner->running--;
    log_info("execution %s %s (exit %d) after %llu ms", e->id, exec_status_name(e->status), e->exit_code,
             (unsigned long long)(util_now_ms() - e->started_ms));
    notify_meta(e);
    exec_mgr.ends[e->status]++;
    fire_waiters(e, 1);
    struct exec_session *owner = e->owner;
    if (owner == NULL || owner->ended) {
        exec_free(e);
        if (owner != NULL)
            session_state_free_if_done(owner);
    } else {
        deadline_arm(&e->retention_timer, (uint64_t)config.retention * 1000, on_retention);
        exec_retain_finished(e);
        exec_retain_enforce(owner);
    }
}

/* The run's usage at its end: from its cgroup, else from bwrap's and the init's rusage. */
static void take_usage(exec_t *e, const proc_exit_t *x)
{
    cgroup_stats_t st;
    e->have_usage = 1;
    e->cpu_ms = x->cpu_ms;
    if (cgroup_run_stats(&e->cgroup, &st) == 0) {
        e->cpu_ms = st.cpu_ns / 1000000;
        e->peak_bytes = st.peak_bytes;
        e->oom_killed = st.oom_kills > 0;
    }
}

/* Ends the run's record with a resource_limit event. */
static void report_limit(exec_t *e, const char *reason, const char *msg)
{
    set_error(e, msg);
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "reason", reason);
    cJSON_AddStringToObject(f, "message", msg);
    add_event(e, "resource_limit", f);
}

/* The resource_limit for the workspace quota: measured over it, or a file stopped at it (RLIMIT_FSIZE). */
static void disk_limit_event(exec_t *e)
{
    char msg[300];
    e->status = EXEC_FAILED;
    if (e->disk_exceeded)
        snprintf(msg, sizeof(msg), "Workspace disk quota exceeded (--workspace-quota-mb %d): %lld MiB in use",
                 config.workspace_quota_mb, (long long)(e->owner != NULL ? e->owner->usage >> 20 : -1));
    else
        snprintf(msg, sizeof(msg), "Workspace disk quota exceeded (--workspace-quota-mb %d): a file reached it",
                 config.workspace_quota_mb);
    report_limit(e, "disk", msg);
}

static void on_cpu_timer(deadline_t *d);

/* Arms the CPU check at the soonest `left_ns` of CPU can be used up: spread over every CPU. */
static void arm_cpu_timer(exec_t *e, uint64_t left_ns)
{
    static long ncpu;
    if (ncpu <= 0)
        ncpu = sysconf(_SC_NPROCESSORS_ONLN) > 0 ? sysconf(_SC_NPROCESSORS_ONLN) : 1;
    uint64_t wait_ms = left_ns / 1000000 / (uint64_t)ncpu;
    deadline_arm(&e->cpu_timer, wait_ms < 10 ? 10 : wait_ms, on_cpu_timer);
}

/*
 * The CPU budget of a run with a cgroup: max_cpu_seconds summed over all its
 * processes. The timer is armed at the soonest the budget could run out (the
 * rest spread over every CPU); when it fires with budget left it re-arms.
 */
static void on_cpu_timer(deadline_t *d)
{
    exec_t *e = (exec_t *)((char *)d - offsetof(exec_t, cpu_timer));
    if (!exec_is_active(e) || !e->cgroup.active)
        return;
    uint64_t used = cgroup_run_cpu_ns(&e->cgroup);
    if (used >= e->cpu_budget_ns) {
        log_info("execution %s used its CPU budget (%llu ms): ending it", e->id, (unsigned long long)(used / 1000000));
        e->cpu_exceeded = 1;
        proc_terminate(&e->proc, 1, 0);
        return;
    }
    arm_cpu_timer(e, e->cpu_budget_ns - used);
}

/* The process is gone, its output drained and its workspace measured: record the end. */
static void finish_run(exec_t *e, const proc_exit_t *x)
{
    events_flush(&e->log, 0, on_line_event, e);
    events_flush(&e->log, 1, on_line_event, e);
    take_usage(e, x);
    char msg[400];
    if (e->timed_out) {
        e->status = EXEC_TIMEOUT;
        snprintf(msg, sizeof(msg), "Execution timed out after %d seconds", e->timeout_s);
        set_error(e, msg);
    } else if (e->cancel_requested) {
        e->status = EXEC_CANCELLED;
        set_error(e, "Execution cancelled");
    } else if (!x->started) {
        e->status = EXEC_FAILED;
        snprintf(msg, sizeof(msg), "Sandbox could not start the command: %s", x->setup_error[0] ? x->setup_error : "bwrap failed");
        set_error(e, msg);
        cJSON *f = cJSON_CreateObject();
        cJSON_AddStringToObject(f, "message", msg);
        add_event(e, "error", f);
    } else if (e->cpu_exceeded || e->oom_killed) {
        e->status = EXEC_FAILED;
        report_limit(e, e->cpu_exceeded ? "cpu_time" : "memory",
                     e->cpu_exceeded ? "CPU time (max_cpu_seconds) limit exceeded by the run's processes together"
                                     : "Memory (max_memory_mb) limit exceeded: the run's cgroup ran out of memory");
    } else if (e->disk_exceeded || (x->signal == SIGXFSZ && e->saw_fsize_msg && e->fsize_is_quota)) {
        disk_limit_event(e);
    } else if ((x->signal == SIGXCPU && cpu_limit_plausible(e, x)) || (x->signal == SIGXFSZ && e->saw_fsize_msg)) {
        e->status = EXEC_FAILED;
        snprintf(msg, sizeof(msg), "%s limit exceeded", x->signal == SIGXCPU ? "CPU time (max_cpu_seconds)" : "File size (max_file_size_mb)");
        report_limit(e, x->signal == SIGXCPU ? "cpu_time" : "file_size", msg);
    } else {
        e->status = EXEC_COMPLETED;
    }
    record_end(e, x->started ? x->exit_code : -1);
}

/* The final measurement of a finished run's workspace answered. */
static void on_final_scan(void *arg, int64_t bytes)
{
    exec_t *e = arg;
    e->final_scan = NULL;
    e->final_scanned = 1;
    if (bytes >= 0 && e->owner != NULL)
        e->owner->usage = bytes;
    if (bytes > e->disk_limit)
        e->disk_exceeded = 1;
    finish_run(e, &e->exit_info);
}

/*
 * The process is gone and its output drained. With a quota, the workspace is
 * measured once more before the end is recorded: a run that wrote past the
 * quota between two periodic measurements and exited still gets its
 * resource_limit.
 */
static void on_proc_exit(void *arg, const proc_exit_t *x)
{
    exec_t *e = arg;
    egress_run_close(e->egress); /* egress (issue 14): the endpoint and its connections end with the run */
    e->egress = NULL;
    if (!e->final_scanned && e->owner != NULL && e->owner->workspace[0]) {
        e->exit_info = *x;
        e->final_scan = quota_scan(e->owner->workspace, on_final_scan, e);
        if (e->final_scan != NULL)
            return;
    }
    finish_run(e, x);
}

/* Kills the session's live runs that took the workspace past their limit. */
static void enforce_quota(struct exec_session *es)
{
    exec_t *e;
    TAILQ_FOREACH(e, &es->execs, session_link)
    {
        if (!exec_is_active(e) || e->disk_exceeded || es->usage <= e->disk_limit)
            continue;
        e->disk_exceeded = 1;
        log_info("execution %s: workspace at %lld bytes, over its limit of %lld: killed", e->id, (long long)es->usage,
                 (long long)e->disk_limit);
        proc_terminate(&e->proc, 1, 0);
    }
}

#define QUOTA_PERIOD_MS 250 /* between the end of one measurement and the next */

static void on_quota_timer(deadline_t *d);

/* A periodic measurement answered: enforce, and measure again while runs are live. */
static void on_session_scan(void *arg, int64_t bytes)
{
    struct exec_session *es = arg;
    es->scan = NULL;
    if (bytes >= 0) {
        es->usage = bytes;
        enforce_quota(es);
    }
    if (es->running > 0)
        deadline_arm(&es->quota_timer, QUOTA_PERIOD_MS, on_quota_timer);
}

static void on_quota_timer(deadline_t *d)
{
    struct exec_session *es = (struct exec_session *)((char *)d - offsetof(struct exec_session, quota_timer));
    if (es->scan == NULL && es->running > 0 && es->workspace[0])
        es->scan = quota_scan(es->workspace, on_session_scan, es);
}

static void on_timeout(deadline_t *d)
{
    exec_t *e = (exec_t *)((char *)d - offsetof(exec_t, timeout_timer));
    if (!exec_is_active(e) || e->timed_out)
        return;
    e->timed_out = 1;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddNumberToObject(f, "timeout_seconds", e->timeout_s);
    add_event(e, "timeout", f);
    proc_terminate(&e->proc, 0, config.kill_grace_ms);
}

/*
 * The run's disk bounds: the workspace may reach the quota (or, when a killed
 * run left it over, the usage it starts with: a run may clean up, not grow
 * it), and no single file may pass the quota (RLIMIT_FSIZE), the bound on
 * what a measurement can miss.
 */
static void disk_limits(exec_t *e, const struct exec_session *es, const sandbox_policy_t *p, proc_spec_t *spec)
{
    e->disk_limit = (int64_t)config.workspace_quota_mb << 20;
    if (es->usage > e->disk_limit)
        e->disk_limit = es->usage;
    if (quota_enabled() && config.workspace_quota_mb < p->fsize_mb) {
        spec->rl_fsize.rlim_cur = spec->rl_fsize.rlim_max = (rlim_t)config.workspace_quota_mb << 20;
        e->fsize_is_quota = 1;
    }
}

/* Resolves the working directory: relative paths live in the workspace; no "..". */
static int resolve_cwd(const char *workspace, const char *wd, char *out, size_t len, char *err, size_t errlen)
{
    if (wd == NULL || *wd == '\0') {
        snprintf(out, len, "%s", workspace);
        return 0;
    }
    /* a ".." path component, wherever it is */
    size_t n = strlen(wd);
    if (strstr(wd, "/../") != NULL || !strncmp(wd, "../", 3) || !strcmp(wd, "..") || (n >= 3 && !strcmp(wd + n - 3, "/.."))) {
        snprintf(err, errlen, "working_directory '%.200s' must not contain '..'", wd);
        return -1;
    }
    if (wd[0] == '/')
        snprintf(out, len, "%s", wd);
    else
        snprintf(out, len, "%s/%s", workspace, wd);
    return 0;
}

/*
 * The run's limits on its process: with a cgroup, memory and CPU are bounded
 * for the run as a whole (no per-process RLIMIT_AS, which breaks runtimes that
 * reserve address space, nor RLIMIT_CPU: the server enforces the budget);
 * without one, rlimits per process are all there is.
 */
static void set_limits(exec_t *e, const exec_request_t *rq, proc_spec_t *spec)
{
    spec->rl_as.rlim_cur = spec->rl_as.rlim_max = (rlim_t)rq->policy.mem_mb << 20;
    spec->rl_cpu.rlim_cur = (rlim_t)rq->policy.cpu_s;
    spec->rl_cpu.rlim_max = (rlim_t)rq->policy.cpu_s + 1; /* SIGXCPU first, SIGKILL a second later */
    spec->rl_fsize.rlim_cur = spec->rl_fsize.rlim_max = (rlim_t)rq->policy.fsize_mb << 20;
    /* with bwrap, max_processes is applied inside the run's user namespace (sandbox.c); bwrap
     * gets the server-wide ceiling for all runs of the sandbox user together */
    spec->rl_nproc.rlim_cur = spec->rl_nproc.rlim_max =
        config.isolation_none ? (rlim_t)rq->policy.nproc : (rlim_t)config.nproc_max * (rlim_t)config.max_concurrent + 64;
    /* the server raised its own descriptor limit for connections; runs get the usual one */
    struct rlimit hard;
    if (getrlimit(RLIMIT_NOFILE, &hard) == 0) {
        spec->rl_nofile.rlim_max = hard.rlim_max < 65536 ? hard.rlim_max : 65536;
        spec->rl_nofile.rlim_cur = spec->rl_nofile.rlim_max < 1024 ? spec->rl_nofile.rlim_max : 1024;
    }
    if (getrlimit(RLIMIT_NPROC, &hard) == 0 && spec->rl_nproc.rlim_max > hard.rlim_max)
        spec->rl_nproc.rlim_cur = spec->rl_nproc.rlim_max = hard.rlim_max; /* raising it needs CAP_SYS_RESOURCE */
    if (e->cgroup.active) {
        spec->rl_as.rlim_cur = spec->rl_as.rlim_max = RLIM_INFINITY;
        spec->rl_cpu.rlim_cur = spec->rl_cpu.rlim_max = RLIM_INFINITY;
        spec->cgroup = &e->cgroup;
        e->cpu_budget_ns = (uint64_t)rq->policy.cpu_s * 1000000000ull;
    }
}

/*
 * Whether a run may start for `s` now: the sandbox works, the server is not
 * shutting down, the limits have room; the session gets its uid and
 * workspace on its first run. Returns the session's state (cwd resolved), or
 * NULL with err.
 */
static struct exec_session *exec_admit(exec_owner_t *s, const exec_request_t *rq, char *cwd, size_t cwdlen, char *err,
                                       size_t errlen)
{
    const char *why = sandbox_error();
    if (why != NULL) {
        snprintf(err, errlen, "Sandbox unavailable: %s", why);
        return NULL;
    }
    if (exec_mgr.shutting_down) {
        snprintf(err, errlen, "The server is shutting down: no new executions");
        return NULL;
    }
    if (exec_mgr.running >= (size_t)config.max_concurrent) {
        snprintf(err, errlen,
                 "Concurrent execution limit reached: %zu executions are running on this server "
                 "(SANDBOX_MAX_CONCURRENT=%d); wait for one to finish or cancel one",
                 exec_mgr.running, config.max_concurrent);
        return NULL;
    }
    size_t mine = config.max_concurrent_principal > 0 ? exec_running_tenant(s->tenant != NULL ? s->tenant : s->id) : 0;
    if (config.max_concurrent_principal > 0 && mine >= (size_t)config.max_concurrent_principal) {
        snprintf(err, errlen,
                 "Per-principal execution limit reached: %zu of your executions are running "
                 "(SANDBOX_MAX_CONCURRENT_PER_PRINCIPAL=%d); wait for one to finish or cancel one",
                 mine, config.max_concurrent_principal);
        return NULL;
    }
    struct exec_session *es = session_state(s);
    if (es->running >= (size_t)config.max_per_session) {
        snprintf(err, errlen,
                 "Per-session execution limit reached: this session has %zu running executions "
                 "(SANDBOX_MAX_PER_SESSION=%d); wait for one to finish or cancel one",
                 es->running, config.max_per_session);
        return NULL;
    }
    if (!es->has_uid) {
        if (sandbox_uid_acquire(&es->uid, &es->gid, err, errlen) != 0)
            return NULL;
        es->has_uid = 1;
    }
    if (es->workspace[0] == '\0' &&
        sandbox_workspace_create(es->workspace, sizeof(es->workspace), es->uid, es->gid, err, errlen) != 0) {
        es->workspace[0] = '\0';
        return NULL;
    }
    /* whether the directory exists is bwrap's to find out, as the sandbox user: a check here,
     * as root and following the run's symlinks, would tell a run what root can see */
    if (resolve_cwd(es->workspace, rq->working_directory, cwd, cwdlen, err, errlen) != 0)
        return NULL;
    return es;
}

/* A new pending execution for `s` (not yet in any table). */
static exec_t *exec_new(exec_owner_t *s, const exec_request_t *rq)
{
    exec_t *e = xcalloc(1, sizeof(*e));
    do
        util_uuid4(e->id);
    while (RB_FIND(exec_tree, &exec_mgr.all, e) != NULL);
    strlcpy(e->session_id, s->id, sizeof(e->session_id));
    strlcpy(e->tenant, s->tenant != NULL ? s->tenant : s->id, sizeof(e->tenant));
    e->tenant_is_principal = s->principal != NULL;
    e->command = xstrdup(rq->command);
    e->interactive = rq->interactive;
    e->timeout_s = rq->timeout_s;
    e->cpu_limit_s = rq->policy.cpu_s;
    e->status = EXEC_PENDING;
    e->started_wall_ms = util_wall_ms();
    e->started_ms = util_now_ms();
    TAILQ_INIT(&e->waiters);
    events_init(&e->log, (size_t)config.max_events, (size_t)config.max_output_bytes);
    return e;
}

/* Frees an execution that never started (exec_new's, its cgroup released), with its proxy endpoint. */
static void exec_discard(exec_t *e)
{
    egress_run_close(e->egress);
    events_free(&e->log);
    free(e->command);
    free(e);
}

/* ---------------------------------------------------------------- egress (issue 14) */

/* A connection of the run was refused: the model reads why in the run's output (and Redis). */
static void on_egress_denied(void *arg, const char *host, int port, const char *reason)
{
    exec_t *e = arg;
    cJSON *f = cJSON_CreateObject();
    cJSON_AddStringToObject(f, "host", host);
    cJSON_AddNumberToObject(f, "port", port);
    cJSON_AddStringToObject(f, "reason", reason);
    add_event(e, "network_denied", f);
}

/* A run with allowed_domains gets its proxy endpoint; *fd the bridge's end. 0, or -1 with err. */
static int egress_begin(exec_t *e, const exec_request_t *rq, int *fd, char *err, size_t errlen)
{
    *fd = -1;
    if (rq->policy.egress == NULL)
        return 0;
    if (config.isolation_none) {
        snprintf(err, errlen, "sandbox_config.network.allowed_domains needs the bwrap sandbox (--isolation none has no network isolation)");
        return -1;
    }
    e->egress = egress_run_start(rq->policy.egress, on_egress_denied, e, fd, err, errlen);
    return e->egress != NULL ? 0 : -1;
}

/* Closes the descriptors exec_launch holds (the seccomp filter, the bridge's channel end); -1: none. */
static void close_launch_fds(int sfd, int egress_fd)
{
    if (sfd >= 0)
        close(sfd);
    if (egress_fd >= 0)
        close(egress_fd);
}

/* Starts the child: the proc spec from the built bwrap arguments and the run's limits. 0, or -1 with err. */
static int spawn_child(exec_t *e, struct exec_session *es, const exec_request_t *rq, const char *cwd, int sfd,
                       sandbox_argv_t *argv, sandbox_argv_t *envp, char *err, size_t errlen)
{
    proc_spec_t spec;
    memset(&spec, 0, sizeof(spec));
    spec.argv = argv->v;
    spec.envp = envp->v;
    spec.interactive = rq->interactive;
    spec.seccomp_fd = sfd;
    spec.extra_fds = argv->fds;
    spec.n_extra_fds = argv->n_fds;
    spec.sandboxed = !config.isolation_none;
    spec.cwd = config.isolation_none ? cwd : NULL;
    spec.uid = es->uid;
    spec.gid = es->gid;
    set_limits(e, rq, &spec);
    disk_limits(e, es, &rq->policy, &spec);
    static const proc_callbacks_t cbs = {on_proc_output, on_proc_exit};
    int rc = proc_spawn(&e->proc, &spec, &cbs, e, err, errlen);
    cgroup_run_placed(&e->cgroup); /* the child joined before its exec (or failed) */
    return rc;
}

/*
 * Makes the run: the seccomp filter, the run's cgroup (limits written before
 * anything runs in it), the bwrap arguments, then the child. 0, or -1 with
 * err (the cgroup released, e still to discard).
 */
static int exec_launch(exec_t *e, struct exec_session *es, const exec_request_t *rq, const char *cwd, char *err,
                       size_t errlen)
{
    sandbox_argv_t argv, envp;
    int egress_fd; /* egress (issue 14): the bridge's end of the run's proxy channel */
    if (egress_begin(e, rq, &egress_fd, err, errlen) != 0)
        return -1;
    int sfd = config.isolation_none ? -1 : sandbox_seccomp_fd(rq->policy.network_host || e->egress != NULL);
    if (!config.isolation_none && sfd < 0) {
        snprintf(err, errlen, "cannot prepare the seccomp filter: %s", strerror(errno));
        close_launch_fds(-1, egress_fd);
        return -1;
    }
    cgroup_limits_t lim = {(uint64_t)rq->policy.mem_mb << 20, rq->policy.nproc + CGROUP_PIDS_OVERHEAD, config.cpu_percent};
    sandbox_policy_t policy = rq->policy; /* a shallow copy (paths shared) carrying the session's identity */
    policy.uid = es->uid;
    policy.gid = es->gid;
    policy.egress_fd = egress_fd;
    int made = cgroup_run_create(&e->cgroup, e->id, &lim, err, errlen) == 0;
    if (!made || sandbox_build(&policy, es->workspace, cwd, rq->command, rq->env, rq->n_env, 4, 3, &argv, &envp) != 0) {
        if (made) { /* the cgroup was made (or not needed): the arguments could not be */
            snprintf(err, errlen, "cannot pass the run's arguments to bwrap: %s", strerror(errno));
            sandbox_argv_free(&argv);
            sandbox_argv_free(&envp);
            cgroup_run_release(&e->cgroup);
        }
        close_launch_fds(sfd, egress_fd);
        return -1;
    }
    int rc = spawn_child(e, es, rq, cwd, sfd, &argv, &envp, err, errlen);
    close_launch_fds(sfd, egress_fd);
    sandbox_argv_free(&argv);
    sandbox_argv_free(&envp);
    if (rc != 0)
        cgroup_run_release(&e->cgroup);
    return rc;
}

/* The run started: it joins the tables and counts, its timers are armed, the observer hears of it. */
static void exec_started(exec_t *e, struct exec_session *es, exec_owner_t *s)
{
    e->proc_live = 1;
    e->status = EXEC_RUNNING;
    e->owner = es;
    TAILQ_INSERT_TAIL(&es->execs, e, session_link);
    RB_INSERT(exec_tree, &exec_mgr.all, e);
    exec_mgr.held++;
    exec_mgr.running++;
    exec_mgr.started_total++;
    e->start_seq = exec_mgr.started_total;
    es->running++;
    deadline_arm(&e->timeout_timer, (uint64_t)e->timeout_s * 1000, on_timeout);
    if (e->cgroup.active)
        arm_cpu_timer(e, e->cpu_budget_ns); /* the first check of the CPU budget */
    if (quota_enabled() && !es->quota_timer.armed && es->scan == NULL)
        deadline_arm(&es->quota_timer, QUOTA_PERIOD_MS, on_quota_timer);
    log_info("execution %s started in workspace %s, principal %s (timeout %ds%s)", e->id, s->id,
             s->principal != NULL ? s->principal : "-", e->timeout_s, e->interactive ? ", interactive" : "");
    notify_meta(e);
    add_event(e, "ready", NULL);
}

exec_t *exec_start(exec_owner_t *s, const exec_request_t *rq, char *err, size_t errlen)
{
    char cwd[4200];
    struct exec_session *es = exec_admit(s, rq, cwd, sizeof(cwd), err, errlen);
    if (es == NULL)
        return NULL;
    exec_t *e = exec_new(s, rq);
    if (exec_launch(e, es, rq, cwd, err, errlen) != 0) {
        exec_discard(e);
        return NULL;
    }
    exec_started(e, es, s);
    return e;
}

int exec_send_stdin(exec_t *e, const char *data, size_t len, char *err, size_t errlen)
{
    if (!e->interactive) {
        snprintf(err, errlen, "Execution %s is not interactive: start it with interactive: true to send stdin", e->id);
        return -1;
    }
    if (!exec_is_active(e)) {
        snprintf(err, errlen, "Execution %s already completed (status: %s)", e->id, exec_status_name(e->status));
        return -1;
    }
    if (proc_write_stdin(&e->proc, data, len, err, errlen) != 0)
        return -1;
    if (len == 0 || data[len - 1] != '\n')
        return proc_write_stdin(&e->proc, "\n", 1, err, errlen);
    return 0;
}

int exec_cancel(exec_t *e, int force, char *err, size_t errlen)
{
    if (!exec_is_active(e)) {
        snprintf(err, errlen, "Execution %s already completed (status: %s)", e->id, exec_status_name(e->status));
        return -1;
    }
    if (!e->cancel_requested && !e->timed_out) {
        e->cancel_requested = 1;
        cJSON *f = cJSON_CreateObject();
        cJSON_AddBoolToObject(f, "force", force);
        add_event(e, "cancelled", f);
        log_info("execution %s cancelled%s", e->id, force ? " (forced)" : "");
    }
    proc_terminate(&e->proc, force, config.kill_grace_ms);
    return 0;
}

static void on_wait_deadline(deadline_t *d)
{
    exec_waiter_t *w = (exec_waiter_t *)((char *)d - offsetof(exec_waiter_t, deadline));
    TAILQ_REMOVE(&w->e->waiters, w, link);
    w->e->n_waiters--;
    w->cb(w->arg, w->e, 0);
    free(w);
}

void exec_wait(exec_t *e, uint64_t timeout_ms, exec_wait_cb cb, void *arg)
{
    if (!exec_is_active(e)) {
        cb(arg, e, 1);
        return;
    }
    if (e->n_waiters >= EXEC_MAX_WAITERS) {
        static uint64_t logged_ms;
        if (util_now_ms() - logged_ms >= 10000) { /* at most every 10 s */
            logged_ms = util_now_ms();
            log_warn("execution %s: %d requests already wait on it; answering without waiting", e->id, EXEC_MAX_WAITERS);
        }
        cb(arg, e, -1);
        return;
    }
    e->n_waiters++;
    exec_waiter_t *w = xcalloc(1, sizeof(*w));
    w->e = e;
    w->cb = cb;
    w->arg = arg;
    TAILQ_INSERT_TAIL(&e->waiters, w, link);
    deadline_arm(&w->deadline, timeout_ms, on_wait_deadline);
}

void exec_wait_end(exec_t *e, void *arg)
{
    exec_waiter_t *w;
    TAILQ_FOREACH(w, &e->waiters, link)
        if (w->arg == arg) {
            deadline_cancel(&w->deadline);
            TAILQ_REMOVE(&e->waiters, w, link);
            e->n_waiters--;
            w->cb(w->arg, e, 0);
            free(w);
            return;
        }
}

void exec_session_end(exec_owner_t *s)
{
    struct exec_session *es = s->state;
    if (es == NULL)
        return;
    s->state = NULL;
    es->ended = 1;
    exec_t *e, *next;
    for (e = TAILQ_FIRST(&es->execs); e != NULL; e = next) {
        next = TAILQ_NEXT(e, session_link);
        if (exec_is_active(e)) {
            if (!e->cancel_requested) {
                e->cancel_requested = 1;
                cJSON *f = cJSON_CreateObject();
                cJSON_AddStringToObject(f, "reason", "session ended");
                add_event(e, "cancelled", f);
            }
            proc_terminate(&e->proc, 0, config.kill_grace_ms);
        } else {
            exec_free(e);
        }
    }
    session_state_free_if_done(es);
}

size_t exec_shutdown(int force)
{
    exec_mgr.shutting_down = 1;
    exec_t *e, *next;
    /* SAFE although neither add_event nor proc_terminate frees e today (proc.h) */
    RB_FOREACH_SAFE(e, exec_tree, &exec_mgr.all, next)
    {
        if (!exec_is_active(e))
            continue;
        if (!e->cancel_requested) {
            e->cancel_requested = 1;
            cJSON *f = cJSON_CreateObject();
            cJSON_AddStringToObject(f, "reason", "server shutdown");
            add_event(e, "cancelled", f);
        }
        proc_terminate(&e->proc, force, force ? 0 : config.kill_grace_ms);
    }
    return exec_mgr.running;
}

void exec_abandon_all(void)
{
    exec_t *e, *next;
    RB_FOREACH_SAFE(e, exec_tree, &exec_mgr.all, next)
    {
        if (!exec_is_active(e))
            continue;
        /* the same bookkeeping as on_proc_exit, without the process (SIGKILLed; PDEATHSIG ends the rest) */
        events_flush(&e->log, 0, on_line_event, e);
        events_flush(&e->log, 1, on_line_event, e);
        e->status = EXEC_CANCELLED;
        set_error(e, "The server shut down before the run ended");
        record_end(e, -1);
    }
}
