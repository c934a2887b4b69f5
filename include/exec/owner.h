/*
 * owner: who executions belong to, as the execution manager sees it: an id
 * (the MCP session's) and exec's own per-owner state (run list, workspace,
 * uid). The layer above embeds one in whatever owns runs (today an MCP
 * session) and passes it in, so exec never depends on mcp.
 */
#ifndef MCP_SANDBOXD_OWNER_H
#define MCP_SANDBOXD_OWNER_H

/** Longest owner id exec stores beside an execution. */
#define EXEC_OWNER_ID_MAX 64

struct exec_session;

/** The owner of executions. Zero-initialise; `id` must outlive it. */
typedef struct exec_owner {
    const char *id;             /**< at most EXEC_OWNER_ID_MAX characters */
    const char *tenant;         /**< who owns its runs: the principal's name, or `id` without auth (at most
                                     EXEC_OWNER_ID_MAX characters); runs are found by tenant, not by owner */
    const char *principal;      /**< the principal's name for logs, NULL without auth */
    struct exec_session *state; /**< exec's per-owner state, NULL until its first run (exec's to manage) */
} exec_owner_t;

#endif
