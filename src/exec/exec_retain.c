/*
 * exec_retain: the output bytes executions hold, per session and in the
 * server, and the release of the oldest finished runs' output above the caps.
 */
#include "exec/exec_retain.h"
#include "exec/exec_internal.h"
#include "core/config.h"
#include "core/log.h"

/* Carries a change of e's log size into its session's and the server's totals. */
void exec_retain_account(exec_t *e)
{
    size_t now = e->log.bytes;
    exec_mgr.retained = exec_mgr.retained - e->retained + now;
    if (e->owner != NULL)
        e->owner->retained = e->owner->retained - e->retained + now;
    e->retained = now;
}

/* A run finished and is kept: its output, if any, joins the releasable lists (newest last). */
void exec_retain_finished(exec_t *e)
{
    if (e->releasable || e->log.released || e->log.bytes == 0)
        return;
    TAILQ_INSERT_TAIL(&exec_mgr.releasable, e, release_link);
    TAILQ_INSERT_TAIL(&e->owner->releasable, e, release_session_link);
    e->releasable = 1;
}

/* The run is about to be freed, or its output released: off both lists. */
void exec_retain_forget(exec_t *e)
{
    if (!e->releasable)
        return;
    TAILQ_REMOVE(&exec_mgr.releasable, e, release_link);
    TAILQ_REMOVE(&e->owner->releasable, e, release_session_link);
    e->releasable = 0;
}

/*
 * --max-retained-bytes (per session) and --max-retained-bytes-total (server):
 * while a total exceeds its cap, the output of the run that finished first is
 * freed (its status stays; a mirror keeps the Redis copy). Running runs are
 * bounded by --max-output-bytes each and are never released.
 */
void exec_retain_enforce(struct exec_session *es)
{
    for (int scope = 0; scope < 2; scope++) {
        for (;;) {
            size_t have = scope == 0 ? (es != NULL ? es->retained : 0) : exec_mgr.retained;
            size_t cap = (size_t)(scope == 0 ? config.max_retained_session : config.max_retained_total);
            exec_t *v = NULL;
            if (have > cap)
                v = scope == 0 ? TAILQ_FIRST(&es->releasable) : TAILQ_FIRST(&exec_mgr.releasable);
            if (v == NULL)
                break;
            exec_retain_forget(v);
            size_t freed = events_release(&v->log);
            exec_retain_account(v);
            exec_mgr.released_total++;
            log_info("execution %s: %zu bytes of output released (%s retained output above %zu bytes)", v->id, freed,
                     scope == 0 ? "the session's" : "the server's", cap);
        }
    }
}

size_t exec_retained_bytes(void)
{
    return exec_mgr.retained;
}

uint64_t exec_released_total(void)
{
    return exec_mgr.released_total;
}
