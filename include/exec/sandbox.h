/*
 * sandbox: turns a policy into a bubblewrap command line.
 *
 * A policy (sandbox_policy.h) is the server's defaults merged with a call's
 * `sandbox_config`. sandbox_init() finds bwrap, resolves the
 * sandbox user, compiles the seccomp filter and probes that bwrap can really
 * create a sandbox here; the result is reported by sandbox_error() and /health.
 * Workspaces (one per MCP session) live in sandbox_workspace.h; this header
 * includes both, for its callers.
 * Loop thread only (sandbox_init runs before the loop starts).
 */
#ifndef MCP_SANDBOXD_SANDBOX_H
#define MCP_SANDBOXD_SANDBOX_H

#include "exec/sandbox_policy.h"
#include "exec/sandbox_workspace.h"
#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_FIRST_BIND_FD 5            /**< bind-source fds start here in the child */
#define SANDBOX_MAX_FDS (3 * SANDBOX_MAX_PATHS)

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

#endif
