/*
 * sandbox_policy: what one run may do, parsed from a call's `sandbox_config`.
 *
 * Owns the policy type and its parsing: the server's defaults merged with
 * `sandbox_config` (snake_case or camelCase, unknown fields refused by name,
 * values checked against the server's caps): network (host or allowed/denied
 * domains), filesystem (deny_read, allow_write under the write roots,
 * deny_write) and resource limits. Caller paths that will be bound writable
 * are opened as the sandbox user without following symlinks. Loop thread only.
 */
#ifndef MCP_SANDBOXD_SANDBOX_POLICY_H
#define MCP_SANDBOXD_SANDBOX_POLICY_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

#define SANDBOX_MAX_PATHS 64

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

/** Fills `p` from server defaults and `cfg` (may be NULL). 0, or -1 with a message naming the field. */
int sandbox_policy_parse(const cJSON *cfg, sandbox_policy_t *p, char *err, size_t errlen);
/** Frees the policy's paths. */
void sandbox_policy_free(sandbox_policy_t *p);

#endif
