/*
 * output: the one formatter of an execution's output answer
 * (get_execution_output, execute_code's wait), whether the events come from
 * this replica's memory or from Redis. Both paths fill an output_view_t with
 * the events after last_event_id (their JSON texts) and get the same answer:
 *
 * - structuredContent: execution_id, status, exit_code, output, dropped_events,
 *   last_event_id, then source (remote read), workspace_id (execute_code),
 *   message, truncated, selection;
 *   the output events within the budget (first and last ones kept).
 * - text: compact by default (one header line, then the output as plain
 *   lines: stderr lines prefixed "! ", server notes "~ ", a stdout line
 *   starting with '!', '~' or '\' escaped by a leading '\'); with
 *   --text-format json the structuredContent's JSON itself (0.4.0's text).
 *
 * head / tail / grep select line events (stdout, stderr) before the budget;
 * the other events (exit, error, timeout, ...) are always kept.
 *
 * The cost follows the result, not the log: the figures of what is left out
 * are differences of the events' running totals, the budget is spent from
 * both ends, and only the events shown (and the few non-line events) are
 * parsed; grep alone scans (at most OUTPUT_GREP_MAX_SCAN bytes). Loop thread only.
 */
#ifndef MCP_SANDBOXD_OUTPUT_H
#define MCP_SANDBOXD_OUTPUT_H

#include "core/events.h"
#include "core/util.h"

#include <regex.h>
#include <stdint.h>

/** Default max_output_chars of an output answer. */
#define OUTPUT_DEFAULT_CHARS 20000
/** Longest grep pattern accepted (the regex runs on the loop thread). */
#define OUTPUT_GREP_MAX_PATTERN 512
/** Output bytes grep scans in one call; past them it stops and says where. */
#define OUTPUT_GREP_MAX_SCAN (16u << 20)

/** What an output answer says. */
typedef struct output_view {
    const char *execution_id;
    const char *status;
    const char *exit_code_json;     /**< a JSON number, or "null" */
    /** The i-th event after last_event_id (0 = oldest), or NULL: events[i]. Events carry their running totals (core/events.h). */
    const event_t *(*event_at)(const void *src, size_t i);
    const void *src;                /**< event_at's argument */
    const event_t *events;          /**< the events after last_event_id when event_at is NULL */
    size_t n_events;
    uint64_t dropped_events;        /**< events the caps evicted before the first one held */
    const char *last_event_id;      /**< NULL when there are none */
    const char *source;             /**< "redis" for a remote read, NULL for this replica's memory */
    const char *workspace_id;       /**< the workspace the run went to (execute_code's answer), or NULL */
    const char *message;            /**< a note (still running, ...) or NULL */
} output_view_t;

/** What the caller asked for. */
typedef struct output_query {
    size_t max_chars;    /**< budget of the text and of structuredContent, each */
    long head, tail;     /**< first / last N lines (0: all) */
    regex_t *grep;       /**< lines matching it (NULL: all); owned (output_query_free) */
    int text_json;       /**< the text is the structuredContent JSON */
} output_query_t;

/** Writes the answer's structuredContent object to `structured` and its text to `text`. */
void output_render(const output_view_t *v, const output_query_t *q, strbuf_t *structured, strbuf_t *text);

/**
 * Reads max_output_chars, head, tail and grep from a call's arguments
 * (`args`, a cJSON object) into `q`, with the defaults (OUTPUT_DEFAULT_CHARS
 * under --max-result-chars, --text-format). 0, or -1 with err (bad values, a
 * bad regex). output_query_free() afterwards either way.
 */
int output_query_parse(const void *args, output_query_t *q, char *err, size_t errlen);
/** Frees what output_query_parse() compiled. */
void output_query_free(output_query_t *q);

#endif
