/*
 * exec: the execution manager. Created on the first request, it lives as
 * long as the process and owns every execution: its process (proc), its
 * event log (events), its timers (timeout, retention) and the requests parked
 * waiting for it. Executions belong to the MCP session that started them;
 * a session's end kills its runs and removes its workspace. Loop thread only.
 */
#ifndef MCP_SANDBOXD_EXEC_H
#define MCP_SANDBOXD_EXEC_H

#include "exec/cgroup.h"
#include "core/deadline.h"
#include "core/events.h"
#include "exec/proc.h"
#include "exec/sandbox.h"
#include "exec/owner.h"

#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>
#include <cjson/cJSON.h>

/** An execution's status; the final ones come from EXEC_FIRST_FINAL on. Names: exec_status_name(). */
typedef enum exec_status {
    EXEC_PENDING,
    EXEC_RUNNING,
    EXEC_COMPLETED,
    EXEC_CANCELLED,
    EXEC_FAILED,
    EXEC_TIMEOUT,
    EXEC_N_STATUSES
} exec_status_t;
#define EXEC_FIRST_FINAL EXEC_COMPLETED

typedef struct exec exec_t;
typedef struct exec_waiter exec_waiter_t;
struct exec_session;

/** Called once per waiter: `finished` is 1 when the run ended, 0 at the wait deadline, -1 when not parked (cap). */
typedef void (*exec_wait_cb)(void *arg, exec_t *e, int finished);

struct exec_waiter {
    TAILQ_ENTRY(exec_waiter) link;
    exec_t *e;
    deadline_t deadline;
    exec_wait_cb cb;
    void *arg;
};

/** One execution. Fields are read by tools (loop thread); exec writes them. */
struct exec {
    RB_ENTRY(exec) node;              /**< manager index by id (private) */
    TAILQ_ENTRY(exec) session_link;   /**< owner's list (private) */
    char id[37];                      /**< UUID v4 */
    char session_id[EXEC_OWNER_ID_MAX + 1]; /**< its owner's id (the MCP session's) */
    char tenant[EXEC_OWNER_ID_MAX + 1];     /**< who may use it: its owner's tenant (principal name, or session id) */
    int tenant_is_principal;          /**< `tenant` is a principal's name (else a session id: never to be shown) */
    struct exec_session *owner;       /**< its session's state (run list, workspace): set at start, never NULL;
                                           outlives the session (owner->ended) until its last execution is freed */
    char *command;
    int interactive;
    exec_status_t status;
    int has_exit_code, exit_code;
    char *error_message;              /**< NULL unless failed/timeout/cancelled */
    uint64_t started_wall_ms, completed_wall_ms, started_ms;
    int timeout_s;
    long cpu_limit_s;                 /**< the run's RLIMIT_CPU, to tell SIGXCPU from `exit 152` */
    int saw_fsize_msg;                /**< the shell reported "File size limit exceeded" */
    int64_t disk_limit;               /**< workspace bytes this run may reach (the quota, or the usage it started with) */
    int fsize_is_quota;               /**< RLIMIT_FSIZE was lowered to the quota: a SIGXFSZ death is the disk limit */
    int disk_exceeded;                /**< a scan found the workspace above disk_limit */
    struct quota_scan *final_scan;    /**< the scan the run's end waits for (quota.c), NULL otherwise */
    int final_scanned;                /**< that scan answered */
    proc_exit_t exit_info;            /**< how the process ended, kept across the final scan */
    event_log_t log;
    size_t retained;                  /**< log bytes counted in the session's and the server's totals */
    uint64_t start_seq;               /**< order in which runs started (lists are in this order) */
    TAILQ_ENTRY(exec) release_link;   /**< the server's finished runs holding output, oldest first (exec_retain) */
    TAILQ_ENTRY(exec) release_session_link; /**< the same, in its session (exec_retain) */
    int releasable;                   /**< on those two lists */
    proc_t proc;
    int proc_live;                    /**< proc spawned and not yet released */
    cgroup_run_t cgroup;              /**< the run's cgroup (inactive without cgroups) */
    struct egress_run *egress;        /**< the run's proxy endpoint (allowed_domains), NULL: none */
    deadline_t cpu_timer;             /**< with a cgroup: re-checks the run's CPU budget */
    uint64_t cpu_budget_ns;           /**< max_cpu_seconds of the whole run, with a cgroup */
    int cpu_exceeded;                 /**< the server ended the run for its CPU budget */
    int have_usage;                   /**< the fields below are set (the process ended) */
    uint64_t cpu_ms, peak_bytes;      /**< CPU of the run; peak memory (0 without a cgroup) */
    int oom_killed;                   /**< the OOM killer ended a process of the run */
    int cancel_requested, timed_out;
    deadline_t timeout_timer, retention_timer;
    TAILQ_HEAD(, exec_waiter) waiters;
    size_t n_waiters;                 /**< parked requests (at most EXEC_MAX_WAITERS) */
};

/** Requests one execution may park: a client that vanishes mid-wait keeps its connection until the wait ends. */
#define EXEC_MAX_WAITERS 64

/** What a tool asks to run (already checked by tools). */
typedef struct exec_request {
    const char *command;
    int timeout_s;
    int interactive;
    const char *working_directory;    /**< NULL: the workspace */
    char **env;                       /**< "KEY=VALUE" strings */
    size_t n_env;
    sandbox_policy_t policy;
} exec_request_t;

/** Logs the manager's first use (info) or its reuse (debug); it only logs (the manager is static state). */
void exec_log_manager_use(void);
/** NULL when runs can be sandboxed, else why not (also in /health). */
const char *exec_sandbox_error(void);
/** Starts a run for session `s`. Returns the execution, or NULL with err. */
exec_t *exec_start(exec_owner_t *s, const exec_request_t *rq, char *err, size_t errlen);
/**
 * What an observer (the cluster) learns of executions, on the loop thread:
 * on_meta when its record changes (started, finished), on_event for every
 * event appended to its log, on_read when a client read it through the tools,
 * on_free just before it is freed (the last chance to read e->log).
 */
typedef struct exec_observer {
    void (*on_meta)(const exec_t *e);
    void (*on_event)(const exec_t *e, const event_t *ev);
    void (*on_read)(const exec_t *e);
    void (*on_free)(const exec_t *e);
} exec_observer_t;

/** Sets the observer (NULL: none). One observer; startup only. */
void exec_set_observer(const exec_observer_t *o);
/** A client read `e` through the tools: tells the observer (refreshes the mirrored copy's TTL). */
void exec_note_read(const exec_t *e);
/** 1 while the run has not finished. */
int exec_is_active(const exec_t *e);
/** Writes to an interactive run's stdin. 0, or -1 with err. */
int exec_send_stdin(exec_t *e, const char *data, size_t len, char *err, size_t errlen);
/** Cancels a run (SIGTERM, SIGKILL after the grace; at once with force). 0, or -1 with err when already finished. */
int exec_cancel(exec_t *e, int force, char *err, size_t errlen);
/**
 * Parks `cb` until `e` finishes or `timeout_ms` passes. The waiter frees itself after cb.
 * With EXEC_MAX_WAITERS already parked on `e`, cb runs at once with finished=-1: the caller answers without waiting.
 */
void exec_wait(exec_t *e, uint64_t timeout_ms, exec_wait_cb cb, void *arg);
/** Ends the wait parked with `arg` now (its cb runs with finished=0), e.g. its client went away; the run goes on. */
void exec_wait_end(exec_t *e, void *arg);
/** Status name as the tools report it. */
const char *exec_status_name(exec_status_t st);
/** The session ended: kill its runs, drop its executions, remove its workspace. */
void exec_session_end(exec_owner_t *s);
/** Shutdown: cancels every run. Returns how many are still running. */
size_t exec_shutdown(int force);
/** Shutdown deadline passed: records runs still alive as cancelled (final events, mirror). */
void exec_abandon_all(void);
#include "exec/exec_report.h"
#include "exec/exec_retain.h"

#endif
