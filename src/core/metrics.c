/*
 * metrics: fixed tables, no allocation on the counting path. HTTP statuses
 * are indexed 100..599 per method; tools by (catalogue name, outcome).
 */
#include "core/metrics.h"
#include "core/config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "OPTIONS", "PUT", "PATCH", "other"};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))
static uint64_t http_counts[N_METHODS][500];

#define MAX_TOOLS 16
static const char *const outcomes[] = {"ok", "error", "rpc_error"};
#define N_OUTCOMES 3
static struct {
    const char *name; /* static catalogue string */
    uint64_t n[N_OUTCOMES];
} tool_counts[MAX_TOOLS];

#define MAX_PROVIDERS 16
static metrics_provider_fn providers[MAX_PROVIDERS];
static size_t n_providers;
static uint64_t started_ms;

void metrics_init(void)
{
    started_ms = util_now_ms();
}

void metrics_http(const char *method, size_t len, int status)
{
    size_t m = N_METHODS - 1;
    for (size_t i = 0; i + 1 < N_METHODS; i++)
        if (strlen(methods[i]) == len && memcmp(methods[i], method, len) == 0)
            m = i;
    if (status >= 100 && status < 600)
        http_counts[m][status - 100]++;
}

void metrics_tool(const char *tool, const char *outcome)
{
    size_t o = 0;
    while (o < N_OUTCOMES - 1 && strcmp(outcomes[o], outcome) != 0)
        o++;
    for (size_t i = 0; i < MAX_TOOLS; i++) {
        if (tool_counts[i].name == NULL)
            tool_counts[i].name = tool;
        if (tool_counts[i].name == tool || !strcmp(tool_counts[i].name, tool)) {
            tool_counts[i].n[o]++;
            return;
        }
    }
}

void metrics_register_provider(metrics_provider_fn fn)
{
    if (n_providers < MAX_PROVIDERS)
        providers[n_providers++] = fn;
}

void metrics_family(strbuf_t *out, const char *name, const char *type, const char *help)
{
    strbuf_printf(out, "# HELP mcp_sandboxd_%s %s\n# TYPE mcp_sandboxd_%s %s\n", name, help, name, type);
}

void metrics_single(strbuf_t *out, const char *name, const char *type, const char *help, double v)
{
    metrics_family(out, name, type, help);
    strbuf_printf(out, "mcp_sandboxd_%s %.17g\n", name, v);
}

void metrics_gauge(strbuf_t *out, const char *name, const char *help, double v)
{
    metrics_single(out, name, "gauge", help, v);
}

/* Resident set size in bytes (from /proc/self/statm) and open descriptors. */
static void process_figures(double *rss, double *fds)
{
    *rss = *fds = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f != NULL) {
        unsigned long size, res;
        if (fscanf(f, "%lu %lu", &size, &res) == 2)
            *rss = (double)res * (double)sysconf(_SC_PAGESIZE);
        fclose(f);
    }
    DIR *d = opendir("/proc/self/fd");
    if (d != NULL) {
        while (readdir(d) != NULL)
            (*fds)++;
        *fds -= 3; /* ".", ".." and the directory's own descriptor */
        closedir(d);
    }
}

void metrics_label_value(strbuf_t *out, const char *v)
{
    for (; *v; v++) {
        if (*v == '\\' || *v == '"')
            strbuf_printf(out, "\\%c", *v);
        else if (*v == '\n')
            strbuf_puts(out, "\\n");
        else
            strbuf_append(out, v, 1);
    }
}

/*
 * What /health no longer tells an unauthenticated caller: the deployment's
 * configuration (the sandbox's state and the Redis address: their providers).
 */
static void render_deployment(strbuf_t *out)
{
    metrics_family(out, "config_info", "gauge", "Configuration of this process (always 1).");
    strbuf_printf(out,
                  "mcp_sandboxd_config_info{isolation=\"%s\",max_concurrent=\"%d\",max_per_session=\"%d\","
                  "max_output_bytes=\"%lld\",max_retained_bytes=\"%lld\",max_retained_bytes_total=\"%lld\","
                  "retention_seconds=\"%d\",heartbeat_seconds=\"%d\"} 1\n",
                  config.isolation_none ? "none" : "bwrap", config.max_concurrent, config.max_per_session,
                  (long long)config.max_output_bytes, (long long)config.max_retained_session,
                  (long long)config.max_retained_total, config.retention, config.heartbeat);
}

void metrics_render(strbuf_t *out)
{
    metrics_family(out, "build_info", "gauge", "Version and replica id of this process (always 1).");
    strbuf_printf(out, "mcp_sandboxd_build_info{version=\"%s\",replica=\"%s\"} 1\n", MCP_SANDBOXD_VERSION, config.replica);

    metrics_family(out, "http_requests_total", "counter", "HTTP requests answered by the server, by method and status.");
    for (size_t m = 0; m < N_METHODS; m++)
        for (int st = 0; st < 500; st++)
            if (http_counts[m][st] > 0)
                strbuf_printf(out, "mcp_sandboxd_http_requests_total{method=\"%s\",status=\"%d\"} %llu\n", methods[m],
                              st + 100, (unsigned long long)http_counts[m][st]);

    metrics_family(out, "tool_calls_total", "counter",
           "tools/call requests by tool and outcome (ok, error: a tool error result, rpc_error: a JSON-RPC error).");
    for (size_t i = 0; i < MAX_TOOLS && tool_counts[i].name != NULL; i++)
        for (size_t o = 0; o < N_OUTCOMES; o++)
            strbuf_printf(out, "mcp_sandboxd_tool_calls_total{tool=\"%s\",outcome=\"%s\"} %llu\n", tool_counts[i].name,
                          outcomes[o], (unsigned long long)tool_counts[i].n[o]);

    double rss, fds;
    process_figures(&rss, &fds);
    metrics_gauge(out, "resident_memory_bytes", "Resident set size of the server process.", rss);
    metrics_gauge(out, "open_fds", "Open file descriptors of the server process.", fds);
    metrics_gauge(out, "uptime_seconds", "Seconds since the server started.", (double)(util_now_ms() - started_ms) / 1000.0);
    render_deployment(out);
    for (size_t i = 0; i < n_providers; i++)
        providers[i](out);
}
