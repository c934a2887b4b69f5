/*
 * Unit tests for src/metrics.c: counting by method/status, tool outcomes and
 * final statuses, and the shape of the rendered exposition (every sample has
 * a HELP and TYPE line; unknown methods fold into "other").
 */
#include "../../src/core/metrics.c"

#include "exec/exec.h"
#include "mcp/transport.h"
#include "cluster/mirror.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static char *render(void)
{
    strbuf_t b = {0};
    metrics_render(&b);
    size_t len;
    return strbuf_steal(&b, &len);
}

/* The value of the sample line that starts with `sample` (name and labels) in `text`; -1 when absent. */
static double value_of(const char *text, const char *sample)
{
    size_t n = strlen(sample);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n'), p = p != NULL ? p + 1 : NULL)
        if (strncmp(p, sample, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/*
 * Checks how much a sample grew between two renders (it must be in the second). The counters are process-wide,
 * so every test compares against what it found before acting: the tests hold
 * in any order, alone or together.
 */
static void assert_grew(const char *before, const char *after, const char *sample, double by)
{
    double a = value_of(before, sample), b = value_of(after, sample);
    if (b < 0)
        fail_msg("sample %s missing", sample);
    if (a < 0)
        a = 0; /* a row appears with its first count */
    if (b - a != by)
        fail_msg("%s grew by %g, expected %g", sample, b - a, by);
}

static void test_http_counts(void **state)
{
    char *t0 = render();
    metrics_http("POST", 4, 200);
    metrics_http("POST", 4, 200);
    metrics_http("GET", 3, 404);
    metrics_http("BREW", 4, 418);     /* not a method we name: "other" */
    metrics_http("POSTX", 5, 200);    /* a prefix match is not a match */
    metrics_http("GET", 3, 99);       /* out of range: ignored */
    metrics_http("GET", 3, 600);
    char *t = render();
    assert_grew(t0, t, "mcp_sandboxd_http_requests_total{method=\"POST\",status=\"200\"}", 2);
    assert_grew(t0, t, "mcp_sandboxd_http_requests_total{method=\"GET\",status=\"404\"}", 1);
    assert_grew(t0, t, "mcp_sandboxd_http_requests_total{method=\"other\",status=\"418\"}", 1);
    assert_grew(t0, t, "mcp_sandboxd_http_requests_total{method=\"other\",status=\"200\"}", 1);
    assert_null(strstr(t, "status=\"99\""));
    assert_null(strstr(t, "status=\"600\""));
    free(t0);
    free(t);
}

static void test_tools_and_executions(void **state)
{
    static const char execute_code[] = "execute_code";
    char *t0 = render();
    metrics_tool(execute_code, "ok");
    metrics_tool(execute_code, "error");
    metrics_tool("execute_code", "ok"); /* same name from elsewhere: same row */
    metrics_tool("unknown", "rpc_error");
    char *t = render();
    assert_grew(t0, t, "mcp_sandboxd_tool_calls_total{tool=\"execute_code\",outcome=\"ok\"}", 2);
    assert_grew(t0, t, "mcp_sandboxd_tool_calls_total{tool=\"execute_code\",outcome=\"error\"}", 1);
    assert_grew(t0, t, "mcp_sandboxd_tool_calls_total{tool=\"execute_code\",outcome=\"rpc_error\"}", 0);
    assert_grew(t0, t, "mcp_sandboxd_tool_calls_total{tool=\"unknown\",outcome=\"rpc_error\"}", 1);
    /* exec's provider: one row per final status from exec's status table, nothing for the others */
    assert_grew(t0, t, "mcp_sandboxd_executions_total{status=\"completed\"}", 0);
    assert_grew(t0, t, "mcp_sandboxd_executions_total{status=\"timeout\"}", 0);
    assert_grew(t0, t, "mcp_sandboxd_executions_total{status=\"cancelled\"}", 0);
    assert_grew(t0, t, "mcp_sandboxd_executions_total{status=\"failed\"}", 0);
    assert_null(strstr(t, "executions_total{status=\"running\"}"));
    free(t0);
    free(t);
}

/* Every sample line's metric name has "# HELP" and "# TYPE" lines before it. */
static void test_every_sample_is_described(void **state)
{
    char *t = render();
    char *save = NULL, *copy = strdup(t);
    int samples = 0;
    for (char *line = strtok_r(copy, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#')
            continue;
        char name[128];
        size_t n = strcspn(line, "{ ");
        assert_true(n > 0 && n < sizeof(name));
        memcpy(name, line, n);
        name[n] = '\0';
        const char *base = name;
        char help[160], type[160];
        snprintf(help, sizeof(help), "# HELP %s ", base);
        snprintf(type, sizeof(type), "# TYPE %s ", base);
        char *h = strstr(t, help), *ty = strstr(t, type), *at = strstr(t, line);
        assert_non_null(h);
        assert_non_null(ty);
        assert_true(h < at && ty < at);
        samples++;
    }
    assert_true(samples > 20);
    free(copy);
    free(t);
}

int main(void)
{
    metrics_init();
    metrics_register_provider(exec_metrics);
    metrics_register_provider(mcp_metrics);
    metrics_register_provider(cluster_metrics);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_http_counts),
        cmocka_unit_test(test_tools_and_executions),
        cmocka_unit_test(test_every_sample_is_described),
        /* again, in the other order: nothing depends on what ran before */
        cmocka_unit_test(test_tools_and_executions),
        cmocka_unit_test(test_http_counts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
