/*
 * sandbox: turns a policy into a bubblewrap command line.
 *
 * A policy is the server's defaults merged with a call's `sandbox_config`
 * (snake_case or camelCase, unknown fields refused by name, values checked
 * against the server's caps). sandbox_init() finds bwrap, resolves the
 * sandbox user, compiles the seccomp filter and probes that bwrap can really
 * create a sandbox here; the result is reported by sandbox_error() and /health.
 * Workspaces (one per MCP session) are created and removed here too.
 * Loop thread only (sandbox_init runs before the loop starts).
 */
#ifndef MCP_SANDBOXD_SANDBOX_H
#define MCP_SANDBOXD_SANDBOX_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_MAX_PATHS 64
#define SANDBOX_FIRST_BIND_FD 5            /**< bind-source fds start here in the child */
#define SANDBOX_MAX_FDS (3 * SANDBOX_MAX_PATHS)

/** What one run may do. */
typedef struct sandbox_policy {
    int network_host;                         /**< share the host network (needs --allow-network) */
    struct egress_policy *egress;             /**< allowed/denied domains (issue 14), NULL: no network */
    int egress_fd;                            /**< with egress: the bridge's end of the run's proxy channel
                                                   (set by the caller of sandbox_build, which dups it) */
    char *deny_read[SANDBOX_MAX_PATHS];       /**< paths hidden from the run */
    int n_deny_read;
    char *allow_write[SANDBOX_MAX_PATHS];     /**< host paths made writable */
    int n_allow_write;
    char *deny_write[SANDBOX_MAX_PATHS];      /**< paths forced read-only (wins over allow_write) */
    int n_deny_write;
    long mem_mb, cpu_s, fsize_mb, nproc;      /**< rlimits */
    uid_t uid;                                /**< host uid/gid of the run (its session's); -1: stay */
    gid_t gid;
} sandbox_policy_t;

/** A NULL-terminated argv/envp under construction. */
typedef struct sandbox_argv {
    char **v;
    size_t n, cap;
    int fds[SANDBOX_MAX_FDS];   /**< fd 5+i in the child: bind sources (opened without following
                                     symlinks), then the script and the --args memfds */
    int n_fds;
    char **args;                /**< bwrap's full argument list (what the --args memfd holds), for tests */
    size_t n_args;
} sandbox_argv_t;

/** Finds bwrap, resolves the user, builds seccomp, probes. 0, or -1 (the server still starts, degraded). */
int sandbox_init(void);
/** NULL when sandboxes can be created, else why not. */
const char *sandbox_error(void);
/** Frees what sandbox_init() built. */
void sandbox_cleanup(void);

/** Fills `p` from server defaults and `cfg` (may be NULL). 0, or -1 with a message naming the field. */
int sandbox_policy_parse(const cJSON *cfg, sandbox_policy_t *p, char *err, size_t errlen);
/** Frees the policy's paths. */
void sandbox_policy_free(sandbox_policy_t *p);

/**
 * Builds the argv to exec (`bwrap --args N`, its arguments in a memfd among
 * argv->fds, or with --isolation none just the shell) and the environment.
 * `status_fd` / `seccomp_fd` are the fd numbers the child will have.
 * `env` is the call's environment as "KEY=VALUE" strings. 0, or -1 (errno:
 * no memfd); free the argvs either way.
 */
int sandbox_build(const sandbox_policy_t *p, const char *workspace, const char *cwd, const char *command,
                  char *const *env, size_t n_env, int status_fd, int seccomp_fd, sandbox_argv_t *argv,
                  sandbox_argv_t *envp);
/** Frees an argv built by sandbox_build() and closes its fds. */
void sandbox_argv_free(sandbox_argv_t *a);
/** A new fd (memfd, offset 0) holding the seccomp filter for a run with or without the host network; -1 on failure. */
int sandbox_seccomp_fd(int network_host);
/**
 * A host uid/gid for a new session: its own from --uid-range (round-robin), or
 * the shared fallback ((uid_t)-1 when not root). 0, or -1 with err (range exhausted).
 */
int sandbox_uid_acquire(uid_t *uid, gid_t *gid, char *err, size_t errlen);
/** The session ended: its uid may be handed out again (last, round-robin). */
void sandbox_uid_release(uid_t uid);

/** Creates a fresh workspace directory owned by uid/gid, mode 0700; path into buf. 0 / -1. */
int sandbox_workspace_create(char *buf, size_t len, uid_t uid, gid_t gid, char *err, size_t errlen);
/** Queues a workspace tree for removal (not following symlinks) by the one remover thread, started at the first call. */
void sandbox_workspace_remove(const char *path);
/** Waits up to `deadline_ms` (monotonic) for the queued removals; returns how many are left. */
int sandbox_workspace_wait(int deadline_ms);
/** Removes a workspace tree now (shutdown). */
void sandbox_workspace_remove_now(const char *path);

#endif
