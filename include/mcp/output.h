/*
 * output: the one formatter of an execution's output answer
 * (get_execution_output, execute_code's wait), whether the events come from
 * this replica's memory or from Redis. Both paths fill an output_view_t and
 * get the same fields in the same order: execution_id, status, exit_code,
 * output, dropped_events, last_event_id, then source when read remotely.
 * Loop thread only.
 */
#ifndef MCP_SANDBOXD_OUTPUT_H
#define MCP_SANDBOXD_OUTPUT_H

#include "core/util.h"

#include <stdint.h>

/** What an output answer says; the events are written by `write_events` (a JSON array). */
typedef struct output_view {
    const char *execution_id;
    const char *status;
    const char *exit_code_json; /**< a JSON number, or "null" */
    void (*write_events)(strbuf_t *out, const void *arg);
    const void *events_arg;
    uint64_t dropped_events;    /**< events the caps evicted before the first one held */
    const char *last_event_id;  /**< NULL when there are none */
    const char *source;         /**< "redis" for a remote read, NULL for this replica's memory */
} output_view_t;

/** Appends the view's fields (without the enclosing braces) to `out`. */
void output_write_fields(strbuf_t *out, const output_view_t *v);

#endif
