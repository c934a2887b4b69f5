/*
 * exec_internal: the execution manager's state, shared by exec.c (runs),
 * exec_retain.c (retained output) and exec_report.c (finders, listings,
 * metrics, health). Loop thread only.
 */
#ifndef MCP_SANDBOXD_EXEC_INTERNAL_H
#define MCP_SANDBOXD_EXEC_INTERNAL_H

#include "exec/exec.h"
#include "exec/quota.h"

#include <bsd/sys/queue.h>
#include <bsd/sys/tree.h>
#include <stdint.h>

RB_HEAD(exec_tree, exec);
RB_PROTOTYPE(exec_tree, exec, node, exec_cmp)
/** Finished runs still holding output, in the order they finished (exec_retain.c). */
TAILQ_HEAD(exec_release_list, exec);

/** Per-session state; outlives its session while runs are still being killed. */
struct exec_session {
    char workspace[1100];
    uid_t uid;                /* the session's host uid/gid (sandbox_uid_acquire), -1 until its first run */
    gid_t gid;
    int has_uid;
    deadline_t quota_timer;   /* next measurement of the workspace while runs are live */
    quota_scan_t *scan;       /* measurement in flight */
    int64_t usage;            /* bytes at the last measurement */
    TAILQ_HEAD(, exec) execs;
    struct exec_release_list releasable; /* its finished runs holding output, oldest first */
    size_t running;
    size_t retained;                  /* output bytes its executions hold */
    int ended;
};

/** The manager: every held execution by id, and the counters. Defined in exec.c. */
struct exec_mgr {
    int initialized;
    int shutting_down;
    struct exec_tree all;
    size_t held, running, started_total;
    size_t retained;                  /* output bytes every execution holds */
    struct exec_release_list releasable; /* every finished run holding output, oldest first */
    uint64_t released_total;
    uint64_t ends[EXEC_N_STATUSES]; /* executions that reached each final status */
};
extern struct exec_mgr exec_mgr;

#endif
