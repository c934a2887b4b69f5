/*
 * remote: the interface through which mcp reads what this replica does not
 * hold (executions and session records another replica wrote), and through
 * which it forwards control calls to the replica that runs an execution. The cluster
 * implements it and hands it to tools_set_remote() and
 * mcp_set_session_resolver() at startup; without REDIS_URL nobody does, and
 * mcp answers from local state alone. Loop thread only.
 */
#ifndef MCP_SANDBOXD_REMOTE_H
#define MCP_SANDBOXD_REMOTE_H

#include "core/events.h"

#include <stddef.h>
#include <stdint.h>

/**
 * An execution's events as a remote read returns them: those after the id
 * asked for, oldest first, indexed off the loop (kind, data length, running
 * totals: core/events.h) so the formatter's cost follows the result. Their
 * JSON texts share one block; all is freed after the callback.
 */
typedef struct remote_events {
    event_t *events;
    size_t n;
    uint64_t first_id;   /**< the oldest event id the store holds (0: none); the ones before it were dropped */
    uint64_t skipped;    /**< events after the id asked for that the reader's byte cap left out (the oldest) */
    uint64_t invalid;    /**< list elements left out as no event: not one JSON object with a decimal event_id, an id not after the one before, or longer than --max-output-bytes */
    uint64_t missing;    /**< event ids absent between those read (trimmed by the writer during the read, or never in the list) */
} remote_events_t;

/**
 * A remote read's answer, delivered on the loop thread: found=0 when absent
 * (or owned by another session); `err` non-NULL when the store could not be
 * read. meta_json is a JSON text; `events` is NULL unless output was asked for.
 */
typedef void (*remote_read_cb)(void *arg, int found, const char *meta_json, size_t meta_len, const remote_events_t *events,
                               const char *err);

/**
 * A forwarded control call's answer, on the loop thread: the owner replica's
 * tool result (`result`, a JSON object text of `len` bytes, and whether it is
 * an error), or, when there is none, `err` saying why (result NULL): the
 * owner did not answer in time, is not alive, or Redis failed.
 */
typedef void (*remote_control_cb)(void *arg, const char *result, size_t len, int is_error, const char *err);

/**
 * A remote read: starts it and returns 0 (cb runs later, exactly once), -1
 * when there is nothing to ask (stopping), -2 when too many reads wait.
 */
typedef struct remote_reader {
    /** Execution `id` of `session_id`, with its events after id `after` when `with_output`. */
    int (*read_exec)(const char *id, const char *session_id, int with_output, uint64_t after, remote_read_cb cb, void *arg);
    /** The executions of `session_id` (meta_json is a JSON array of summaries). */
    int (*read_session)(const char *session_id, remote_read_cb cb, void *arg);
    /** The session resolver for adoption: the record of `session_id` (id, protocol, client, replica). */
    int (*read_session_record)(const char *session_id, remote_read_cb cb, void *arg);
    /**
     * Forwards control tool `tool` (send_stdin, cancel_execution) with its
     * arguments `args_json` for `tenant` to replica `replica`, which runs the
     * execution: 0 (cb runs later, exactly once), -1 (no channel: stopping),
     * -2 (too many forwarded calls wait), -3 (args_json NULL or too large),
     * -4 (too many of `tenant`'s forwarded calls wait).
     */
    int (*control)(const char *replica, const char *tool, const char *tenant, const char *args_json, remote_control_cb cb,
                   void *arg);
} remote_reader_t;

#endif
