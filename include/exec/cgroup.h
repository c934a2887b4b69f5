/*
 * cgroup: one cgroup per run, a child of the server's own cgroup.
 *
 * cgroup v2: the server's cgroup (from /proc/self/cgroup `0::/path`) must be a
 * delegated subtree with memory, pids and cpu available; the server moves
 * itself into `<own>/server` (no internal processes) and enables the
 * controllers for its children. cgroup v1: the server's own cgroup in each of
 * the memory, pids, cpu, cpuacct and freezer hierarchies; nothing is moved.
 * Without either, runs fall back to rlimits (cgroup_mode() is CGROUP_NONE).
 *
 * A run's cgroup is `<own>/<prefix>run-<execution id>`, the prefix naming the
 * server instance (its replica id) so a restarted server finds and kills what
 * an earlier one left. Limits are written before anything runs in it; the
 * spawned child writes its own pid into the cgroup.procs fds opened here before
 * it execs. Loop thread only (cgroup_setup: main, before any thread).
 */
#ifndef MCP_SANDBOXD_CGROUP_H
#define MCP_SANDBOXD_CGROUP_H

#include "core/util.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** Which cgroup interface per-run limits use. */
typedef enum cgroup_mode { CGROUP_NONE = 0, CGROUP_V1 = 1, CGROUP_V2 = 2 } cgroup_mode_t;

/** Hierarchies a run lives in (v1: memory, pids, cpu, cpuacct, freezer; v2: one). */
#define CGROUP_MAX_DIRS 5

/** pids a run's cgroup holds beyond max_processes: bwrap and the sandbox's init. */
#define CGROUP_PIDS_OVERHEAD 2

/** Limits written into a run's cgroup. */
typedef struct cgroup_limits {
    uint64_t memory_bytes; /**< memory (and memory+swap) limit; 0 = none */
    long pids;             /**< pids.max; 0 = none */
    int cpu_percent;       /**< CFS quota in percent of one core; 0 = none */
} cgroup_limits_t;

/** What a run used (read at its end). */
typedef struct cgroup_stats {
    uint64_t cpu_ns;     /**< CPU time of every process of the run */
    uint64_t peak_bytes; /**< peak memory (memory.max_usage_in_bytes / memory.peak); 0 when unknown */
    uint64_t oom_kills;  /**< processes the OOM killer ended in the run (at least 1 once the run hit OOM) */
} cgroup_stats_t;

/** One run's cgroup. Zero-initialise; `active` once created. */
typedef struct cgroup_run {
    int active;                     /**< created and not yet released */
    char name[192];                 /**< directory name under the server's cgroup */
    int procs_fd[CGROUP_MAX_DIRS];  /**< cgroup.procs of each hierarchy, open for the child to join; -1 */
    int n_procs_fd;
    h2o_socket_t *oom_sock;         /**< v1: eventfd signalled on OOM (the run is then killed whole) */
    int oom_seen;                   /**< v1: that eventfd fired */
} cgroup_run_t;

/**
 * Detects the cgroup interface under `root` (normally /sys/fs/cgroup) for the
 * process whose memberships `self_cgroup` lists (normally /proc/self/cgroup).
 * `instance` names this server (run cgroups get the prefix "mcp-<instance>-").
 * `disabled`: do not use cgroups. Returns the mode; with CGROUP_NONE, `why`
 * says why (for the log and /health).
 */
cgroup_mode_t cgroup_setup(const char *root, const char *self_cgroup, const char *instance, int disabled, char *why,
                           size_t whylen);
/** The loop OOM watches and removal retries run on (NULL until set: neither is armed). */
void cgroup_set_loop(h2o_evloop_t *loop);
/** The mode cgroup_setup() chose. */
cgroup_mode_t cgroup_mode(void);
/** "v1", "v2" or "none (rlimits)": what /health shows. */
const char *cgroup_mode_name(void);
/** Adds "cgroups" (and the fallback reason) to /health. */
void cgroup_health(cJSON *h);
/** Appends the cgroup mode (`cgroups_info{mode}`) to /metrics; a metrics provider. */
void cgroup_metrics(strbuf_t *out);
/**
 * Startup: kills and removes run cgroups an earlier instance of this server
 * (same prefix) left behind. Returns how many were found.
 */
int cgroup_sweep_leftovers(void);
/**
 * Refuses max_concurrent × max_processes above kernel.pid_max (read from
 * `pid_max_path`). 0, or -1 with err naming both settings.
 */
int cgroup_check_pid_max(long max_concurrent, long max_processes, const char *pid_max_path, char *err, size_t errlen);

/** Creates the run's cgroup with its limits and opens its cgroup.procs fds. 0, or -1 with err. */
int cgroup_run_create(cgroup_run_t *r, const char *exec_id, const cgroup_limits_t *lim, char *err, size_t errlen);
/** The child has joined (or failed to start): closes the cgroup.procs fds. */
void cgroup_run_placed(cgroup_run_t *r);
/** Sends `sig` to every process of the run but `except` (0: none): the graceful SIGTERM. */
void cgroup_run_signal(cgroup_run_t *r, int sig, pid_t except);
/** SIGKILLs every process of the run at once (v2 cgroup.kill; v1 freeze, kill, thaw). */
void cgroup_run_kill(cgroup_run_t *r);
/** CPU time of the run so far, in ns (cpuacct.usage / cpu.stat usage_usec). */
uint64_t cgroup_run_cpu_ns(const cgroup_run_t *r);
/** Reads the run's usage. 0, or -1 when not active. */
int cgroup_run_stats(const cgroup_run_t *r, cgroup_stats_t *st);
/**
 * The run is over: kills what is left now; the cgroup is removed from a timer
 * (from the next loop turn on, retried while it is not empty yet), so neither
 * the run's reply nor the loop waits for it.
 */
void cgroup_run_release(cgroup_run_t *r);
/** Cgroups waiting for removal (tests, shutdown). */
size_t cgroup_pending_removals(void);
/**
 * Shutdown, after the loop: retries the pending removals for up to wait_ms,
 * calling `reap` (may be NULL) before each try to collect exited children.
 * Blocks. Returns how many are left.
 */
size_t cgroup_drain(int wait_ms, void (*reap)(void));

#endif
