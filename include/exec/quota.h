/*
 * quota: measured disk usage of workspaces, for --workspace-quota-mb.
 *
 * The root file system here has no project quota, so usage is measured: one
 * worker thread walks a workspace (not following symlinks, not crossing
 * mounts) and sums its allocated blocks, each entry counted as at least one
 * 4 KiB block (so a run cannot exhaust the host's inodes with empty files).
 * Scans are queued; results come back to the loop through h2o's queue.
 * Loop thread for every call; the walk itself runs on the worker.
 */
#ifndef MCP_SANDBOXD_QUOTA_H
#define MCP_SANDBOXD_QUOTA_H

#include <stdint.h>

#define H2O_USE_LIBUV 0
#include <h2o.h>

typedef struct quota_scan quota_scan_t;

/** Called on the loop with the workspace's usage in bytes (-1: it could not be walked). */
typedef void (*quota_cb)(void *arg, int64_t bytes);

/**
 * Starts the worker when --workspace-quota-mb is set; results come back through
 * `queue` (the loop thread's). 0, or -1 (no thread: quotas are not enforced).
 */
int quota_start(h2o_multithread_queue_t *queue);
/** Stops the worker (pending scans are dropped without their callbacks). */
void quota_stop(void);
/** 1 when workspaces are measured. */
int quota_enabled(void);
/** Queues a walk of `path`; cb runs once on the loop unless cancelled first. NULL when quotas are off. */
quota_scan_t *quota_scan(const char *path, quota_cb cb, void *arg);
/** The caller no longer wants the answer: cb will not run. */
void quota_cancel(quota_scan_t *s);
/** Walks `path` now, on the calling thread (the worker uses it; exposed for tests). */
int64_t quota_measure(const char *path);

#endif
