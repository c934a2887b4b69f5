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

/* Of the finished runs still holding output, the one that finished first: in `es`, or anywhere when NULL. */
static exec_t *oldest_releasable(struct exec_session *es)
{
    exec_t *best = NULL, *e;
#define CONSIDER(e)                                                                                                    \
    if (!exec_is_active(e) && !(e)->log.released && (e)->log.bytes > 0 &&                                            \
        (best == NULL || (e)->finished_seq < best->finished_seq))                                                      \
    best = (e)
    if (es != NULL) {
        TAILQ_FOREACH(e, &es->execs, session_link)
        CONSIDER(e);
    } else {
        RB_FOREACH(e, exec_tree, &exec_mgr.all)
        CONSIDER(e);
    }
#undef CONSIDER
    return best;
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
            exec_t *v = have > cap ? oldest_releasable(scope == 0 ? es : NULL) : NULL;
            if (v == NULL)
                break;
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
