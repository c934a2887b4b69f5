/*
 * metrics: counters for /metrics, rendered in the Prometheus text format
 * (version 0.0.4). Counters are bumped on the loop thread where things
 * happen (HTTP answers, tool results); every other module registers a
 * provider at startup that writes its own families through the one writer
 * below (metrics_family, metrics_gauge). Loop thread only.
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
/** Writes a module's metric families (Prometheus text) when /metrics is rendered. */
typedef void (*metrics_provider_fn)(strbuf_t *out);
/** Registers a provider (startup; rendered in registration order; at most 16). */
void metrics_register_provider(metrics_provider_fn fn);
/** Writes the "# HELP" and "# TYPE" lines of family mcp_sandboxd_<name>. */
void metrics_family(strbuf_t *out, const char *name, const char *type, const char *help);
/** Writes a whole one-sample family mcp_sandboxd_<name> of `type` ("gauge", "counter"). */
void metrics_single(strbuf_t *out, const char *name, const char *type, const char *help, double v);
/** Writes a whole one-sample gauge family mcp_sandboxd_<name> (metrics_single with "gauge"). */
void metrics_gauge(strbuf_t *out, const char *name, const char *help, double v);
/** Writes a Prometheus label value: backslash, quote and newline escaped. */
void metrics_label_value(strbuf_t *out, const char *v);
/** Appends every metric, gauges included, to `out`. */
void metrics_render(strbuf_t *out);

#endif
