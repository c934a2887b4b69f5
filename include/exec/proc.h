/*
 * proc: one child process tree driven from the loop: spawn with pipes,
 * stdout/stderr read as they come, stdin written without blocking, exit seen
 * through a pidfd, bwrap's --json-status-fd read for the sandbox's init pid,
 * and the kill of the whole tree. With a run cgroup (cgroup.h) the child joins
 * it before it execs, SIGTERM goes to every pid of the cgroup and SIGKILL to
 * the whole cgroup at once; without one, SIGTERM goes to every process of the
 * sandbox's PID namespace (a /proc walk) and SIGKILL to its init.
 *
 * The owner gets on_output for each chunk and on_exit exactly once, after the
 * process has exited AND both output pipes reached EOF (so no output is lost).
 * Loop thread only.
 */
#ifndef MCP_SANDBOXD_PROC_H
#define MCP_SANDBOXD_PROC_H

#include "exec/cgroup.h"
#include "core/deadline.h"
#include "core/util.h"

#include <bsd/sys/queue.h>
#include <sys/resource.h>
#include <sys/types.h>

/** Output bytes of one pipe handed to on_output per loop turn; the rest waits (backpressure on the run). */
#define PROC_OUTPUT_TURN_BUDGET (64 * 1024)
/** Output lines (events to build) of one pipe handed to on_output per loop turn. */
#define PROC_OUTPUT_TURN_LINES 2048

#define H2O_USE_LIBUV 0
#include <h2o.h>

/** How the run ended. */
typedef struct proc_exit {
    int exit_code;   /**< 0..255; 128+N when signal N ended the command */
    int signal;      /**< the signal that ended the command, 0 if none */
    int started;     /**< 1 when the sandbox came up (bwrap reported its child) */
    uint64_t cpu_ms; /**< user+system CPU of bwrap and the sandbox's init with all it reaped */
    char setup_error[256]; /**< bwrap's complaint when it could not set up */
} proc_exit_t;

typedef struct proc_callbacks {
    void (*on_output)(void *arg, int stream, const char *data, size_t len); /**< stream 0 stdout, 1 stderr */
    void (*on_exit)(void *arg, const proc_exit_t *x);                       /**< once, at the very end */
} proc_callbacks_t;

/** What to run. */
typedef struct proc_spec {
    char *const *argv;        /**< argv[0] is an absolute path */
    char *const *envp;
    int interactive;          /**< stdin is a pipe (else /dev/null) */
    int seccomp_fd;           /**< installed as fd 3 in the child, or -1 */
    const int *extra_fds;     /**< installed as fds 5, 6, ... in the child (bwrap --bind-fd sources) */
    int n_extra_fds;
    int sandboxed;            /**< bwrap: read fd 4 as --json-status-fd; the start marker is
                                   installed at fd 5 + n_extra_fds (sandbox_build writes to it) */
    const char *cwd;          /**< chdir before exec (NULL: stay; bwrap does its own --chdir) */
    uid_t uid;                /**< switch to before exec ((uid_t)-1: stay) */
    gid_t gid;
    struct rlimit rl_as, rl_cpu, rl_fsize, rl_nproc, rl_nofile;
    cgroup_run_t *cgroup;     /**< the run's cgroup: the child writes its pid into its procs fds before
                                   anything else; kills go through it (NULL or inactive: none) */
} proc_spec_t;

typedef struct proc {
    pid_t pid;                /**< the process we spawned (bwrap or sh) */
    pid_t inner_pid;          /**< bwrap's child (PID 1 of the sandbox), 0 until known */
    int inner_pidfd;
    uint64_t pidns;           /**< the sandbox's PID namespace inode */
    h2o_socket_t *out[2];     /**< stdout, stderr */
    h2o_socket_t *in;         /**< stdin (interactive only) */
    h2o_socket_t *status;     /**< bwrap's JSON status pipe */
    h2o_socket_t *pidsock;    /**< pidfd of `pid` */
    h2o_socket_t *marker;     /**< start marker pipe (a byte when the command starts) */
    int marker_seen;          /**< the sandbox got as far as the command */
    int inner_reaped;         /**< the sandbox's init was reaped (its CPU is in cpu_ms) */
    int lingered;             /**< stopped waiting for pipes / the init after exit */
    strbuf_t status_buf;      /**< partial status lines */
    strbuf_t stdin_queue;     /**< bytes waiting for the pipe */
    size_t stdin_inflight;    /**< bytes handed to h2o_socket_write */
    char *stdin_writing;      /**< buffer of the write in flight */
    int stdin_close_after;
    int exited, eof[2];
    int killing;              /**< SIGTERM sent; SIGKILL pending */
    int kill_deferred;        /**< SIGKILL waits for bwrap to report the sandbox's init */
    int wstatus;
    uint64_t cpu_ms;          /**< from wait4's rusage at exit */
    int status_exit_code;     /**< from --json-status-fd, -1 until seen */
    strbuf_t setup_err;       /**< first stderr bytes, for setup failures */
    deadline_t kill_timer;
    deadline_t linger_timer;
    deadline_t output_resume; /**< next turn's share of a pipe that went over its budget */
    int output_paused[2];     /**< stdout/stderr not read until output_resume fires */
    int output_eof_pending[2];/**< EOF seen on a paused pipe, handled once its bytes are delivered */
    proc_callbacks_t cb;
    void *arg;
    int sandboxed;            /**< spawned through bwrap (PID namespace kill) */
    cgroup_run_t *cgroup;     /**< weak: the owner's run cgroup, NULL when none; outlives the proc */
    LIST_ENTRY(proc) live_link; /**< in the live list until reaped (private) */
    int done;
} proc_t;

/** Sets the loop the pipes and pidfds of every later run are watched on (startup, once). */
void proc_init(h2o_evloop_t *loop);
/** Starts the child. 0, or -1 with err (nothing to clean up then). */
int proc_spawn(proc_t *p, const proc_spec_t *spec, const proc_callbacks_t *cb, void *arg, char *err, size_t errlen);
/** Queues bytes for stdin. 0, or -1 with err (not interactive, closed, too much queued). */
int proc_write_stdin(proc_t *p, const char *data, size_t len, char *err, size_t errlen);
/** Closes stdin once queued bytes are written. */
void proc_close_stdin(proc_t *p);
/**
 * Stops the whole tree: SIGTERM then SIGKILL after grace_ms; at once when force.
 * Only sends signals and arms timers: it never calls on_exit (or on_output)
 * synchronously, so a caller walking a list of runs may call it on each one
 * and the run is still there when it returns. on_exit comes later, from the
 * loop (the pidfd, the pipes' EOF, SIGCHLD).
 */
void proc_terminate(proc_t *p, int force, int grace_ms);
/** Frees what remains after on_exit (or kills and abandons a live child at teardown). */
void proc_release(proc_t *p);
/** SIGCHLD: reaps every exited child (our runs through their exit path, orphans silently). */
void proc_reap_children(void);
/** Bytes queued for stdin. */
size_t proc_stdin_queued(const proc_t *p);

#endif
