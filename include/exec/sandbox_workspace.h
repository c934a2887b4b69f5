/*
 * sandbox_workspace: the per-session workspace directories under
 * --workspace-root.
 *
 * Owns their creation (mode 0700, handed to the session's uid) and their
 * removal: a queue served by one remover thread started at the first removal
 * (a mass expiry of sessions starts no threads), waited for at shutdown.
 * create runs on the loop thread; the removal queue is under its own lock.
 */
#ifndef MCP_SANDBOXD_SANDBOX_WORKSPACE_H
#define MCP_SANDBOXD_SANDBOX_WORKSPACE_H

#include <stddef.h>
#include <sys/types.h>

/** Creates a fresh workspace directory owned by uid/gid, mode 0700; path into buf. 0 / -1. */
int sandbox_workspace_create(char *buf, size_t len, uid_t uid, gid_t gid, char *err, size_t errlen);
/** Queues a workspace tree for removal (not following symlinks) by the one remover thread, started at the first call. */
void sandbox_workspace_remove(const char *path);
/** Waits up to `deadline_ms` (monotonic) for the queued removals; returns how many are left. */
int sandbox_workspace_wait(int deadline_ms);
/** Removes a workspace tree now (shutdown). */
void sandbox_workspace_remove_now(const char *path);

#endif
