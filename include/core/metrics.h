/*
 * metrics: counters for /metrics, rendered in the Prometheus text format
 * (version 0.0.4). Counters are bumped on the loop thread where things
 * happen (HTTP answers, tool results, execution ends); gauges are read from
 * their owners when /metrics is rendered. Loop thread only.
 */
#ifndef MCP_SANDBOXD_METRICS_H
#define MCP_SANDBOXD_METRICS_H

#include "core/util.h"

#include <stddef.h>

/** Notes the start time (for the uptime gauge). */
void metrics_init(void);
/** An HTTP answer was sent: `method` (any bytes; unknown ones count as "other") and its status. */
void metrics_http(const char *method, size_t method_len, int status);
/** A tools/call finished: `tool` is a catalogue name (or "unknown"); `outcome` is "ok", "error" or "rpc_error". */
void metrics_tool(const char *tool, const char *outcome);
/** An execution reached its final status (exec_status_name()). */
void metrics_exec_end(const char *status);
/** Appends every metric, gauges included, to `out`. */
void metrics_render(strbuf_t *out);

#endif
