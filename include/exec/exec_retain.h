/*
 * exec_retain: the retained-output accounting of executions.
 *
 * Owns the per-session and server totals of output bytes held by
 * executions, and their caps (--max-retained-bytes per session,
 * --max-retained-bytes-total): while a total exceeds its cap, the output of
 * the run that finished first is released (its status stays). Running runs
 * are never released. The finished runs holding output are kept in lists in
 * the order they finished (one for the server, one per session), so finding
 * the oldest is O(1). Loop thread only.
 */
#ifndef MCP_SANDBOXD_EXEC_RETAIN_H
#define MCP_SANDBOXD_EXEC_RETAIN_H

#include <stddef.h>
#include <stdint.h>

struct exec;
struct exec_session;

/** Carries a change of e's log size into its session's and the server's totals. */
void exec_retain_account(struct exec *e);
/** A run finished and is kept: its output joins the releasable, newest last. */
void exec_retain_finished(struct exec *e);
/** The run is about to be freed (or its output was released): off the releasable lists. */
void exec_retain_forget(struct exec *e);
/** Releases the output of the oldest finished runs while `es`'s total (if any) or the server's is above its cap. */
void exec_retain_enforce(struct exec_session *es);

/** Output bytes held by every execution (the retained_output_bytes gauge). */
size_t exec_retained_bytes(void);
/** Finished runs whose output was released by --max-retained-bytes[-total]. */
uint64_t exec_released_total(void);

#endif
