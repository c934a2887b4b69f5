/*
 * workspace: explicit workspace handles. A workspace is a directory with its
 * own sandbox uid and disk-quota measurement, where runs execute; it belongs
 * to a tenant (the principal, or the session without auth) and any request of
 * that tenant naming its id may use it. Ids are server-minted: "w-" and 128
 * random bits in hex.
 *
 * A legacy session's workspace is its default one (pinned: it ends with the
 * session). Other workspaces (created when a caller has no default, i.e. the
 * 2026-07-28 era) expire after --workspace-ttl seconds without use; ending a
 * workspace stops its runs and removes its files (exec_session_end).
 * Loop thread only.
 */
#ifndef MCP_SANDBOXD_WORKSPACE_H
#define MCP_SANDBOXD_WORKSPACE_H

#include "core/deadline.h"
#include "exec/owner.h"

#include <bsd/sys/tree.h>
#include <stddef.h>
#include <stdint.h>

#define WORKSPACE_ID_LEN 34 /**< "w-" + 32 hex characters */

/** One workspace. */
typedef struct workspace {
    RB_ENTRY(workspace) node;           /**< table link (private) */
    char id[WORKSPACE_ID_LEN + 1];      /**< the handle */
    char tenant[EXEC_OWNER_ID_MAX + 1]; /**< who may use it */
    int pinned;                         /**< a session's default: no idle expiry, ends with the session */
    uint64_t last_used_ms;              /**< util_now_ms() at the last use */
    deadline_t expiry;                  /**< idle expiry (private) */
    exec_owner_t exec;                  /**< what the execution manager sees (id = the handle; its runs, dir, uid) */
} workspace_t;

/** Sets the idle TTL and the cap on a tenant's unpinned workspaces (0: none). */
void workspace_setup(uint64_t ttl_ms, size_t per_tenant);
/**
 * A new workspace of `tenant` (pinned or not); `principal` (a static or
 * longer-lived name for logs, NULL without auth). NULL with err when the tenant
 * has its --max-workspaces-per-principal unpinned workspaces already.
 */
workspace_t *workspace_create(const char *tenant, const char *principal, int pinned, char *err, size_t errlen);
/** The workspace `id` of `tenant`; NULL when unknown or another tenant's (the same answer). */
workspace_t *workspace_find(const char *tenant, const char *id);
/** Marks it used now by its handle, from outside its session if pinned (postpones its idle expiry). */
void workspace_touch(workspace_t *w);
/**
 * Unpins a session's default workspace when its session expires while the
 * workspace is still used through its handle: it then lives on, and expires,
 * as any other workspace (--workspace-ttl after its last use).
 */
void workspace_release(workspace_t *w);
/** Ends it: stops its runs, removes its files, frees it. */
void workspace_end(workspace_t *w);
/** Ends every workspace (shutdown). */
void workspace_end_all(void);
/** Unpinned workspaces of `tenant`. */
size_t workspace_count_tenant(const char *tenant);
/** Live workspaces. */
size_t workspace_count(void);

#endif
