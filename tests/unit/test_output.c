/*
 * Unit tests for src/mcp/output.c: the compact text (markers, escapes,
 * joined pieces), the budget at its edges with exact `truncated` figures, a
 * huge line cut, head/tail/grep selection, --text-format json and the
 * optional fields (workspace_id's place). Events are
 * written by hand as the event log holds them (indexed by events_index); a
 * view over a live log (event_at) reads the log's own running totals. The
 * omitted figures (differences of totals) are checked against a count of the
 * events themselves, with stderr, partial pieces and non-line events between.
 *
 * unit-links: core/util core/config core/log core/events
 */
#include "../../src/mcp/output.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#define MAX_EV 4096

static event_t evs[MAX_EV];
static char *jsons[MAX_EV];
static size_t n_evs;
static events_totals_t totals; /* the running totals, as the log keeps them */

/* Appends an event of `type` with `extra` JSON members (may be ""). */
static void add(const char *type, const char *extra)
{
    char buf[200000];
    size_t id = n_evs + 1;
    snprintf(buf, sizeof(buf), "{\"event_id\":\"%zu\",\"type\":\"%s\",\"ts\":\"t\"%s%s}", id, type, extra[0] ? "," : "", extra);
    jsons[n_evs] = xstrdup(buf);
    evs[n_evs] = (event_t){.seq = id, .json = jsons[n_evs], .len = (uint32_t)strlen(jsons[n_evs])};
    cJSON *o = cJSON_Parse(jsons[n_evs]);
    events_index(&evs[n_evs], events_describe(o), &totals);
    cJSON_Delete(o);
    n_evs++;
}

/* A stdout (or stderr) line event with `data` (no JSON escapes in it). */
static void line(int err, const char *data, int partial)
{
    char *extra = xmalloc(strlen(data) + 40);
    sprintf(extra, "\"data\":\"%s\"%s", data, partial ? ",\"partial\":true" : "");
    add(err ? "stderr" : "stdout", extra);
    free(extra);
}

static int teardown(void **state)
{
    for (size_t i = 0; i < n_evs; i++)
        free(jsons[i]);
    n_evs = 0;
    totals = (events_totals_t){0, 0, 0};
    return 0;
}

/* Renders the events with query `q`; the text and structured JSON go to the buffers. */
static void render(const output_query_t *q, strbuf_t *st, strbuf_t *text)
{
    output_view_t v = {.execution_id = "x", .status = "completed", .exit_code_json = "0", .events = evs,
                       .n_events = n_evs, .last_event_id = "1"};
    output_render(&v, q, st, text);
}

/* The text after its header line. */
static const char *body(const strbuf_t *text)
{
    const char *nl = strchr(text->data, '\n');
    return nl != NULL ? nl + 1 : "";
}

static void test_markers_and_joined_pieces(void **state)
{
    add("ready", "");
    line(0, "plain", 0);
    line(1, "oops", 0);
    line(0, "! looks like stderr", 0);
    line(0, "~ looks like a note", 0);
    line(0, "ab", 1);
    line(0, "cd", 0);
    add("error", "\"message\":\"two\\nlines\"");
    add("exit", "\"code\":0,\"duration_ms\":12");
    output_query_t q = {.max_chars = 20000};
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    assert_string_equal(body(&text), "plain\n! oops\n\\! looks like stderr\n\\~ looks like a note\nabcd\n~ error: two lines\n");
    assert_non_null(strstr(text.data, " duration_ms=12 "));
    assert_non_null(strstr(text.data, " lines_shown=5 lines_omitted=0"));
    assert_null(strstr(st.data, "truncated"));
    strbuf_free(&st);
    strbuf_free(&text);
}

/* What the text's header and notices take of a budget (output.c's envelope, for the view render() makes). */
static size_t text_envelope(const output_query_t *q)
{
    output_view_t v = {.execution_id = "x", .status = "completed", .exit_code_json = "0", .events = evs,
                       .n_events = n_evs, .last_event_id = "1"};
    struct selection none = {0};
    return envelope(&v, q, &none, -1, 0);
}

/* 1000 lines of 4 digits cost 5000 characters of text: the edge of a budget of 5000 + the envelope. */
static void thousand_lines(void)
{
    char d[16];
    for (int i = 1000; i < 2000; i++) {
        snprintf(d, sizeof(d), "%d", i);
        line(0, d, 0);
    }
}

static void test_budget_edges(void **state)
{
    thousand_lines();
    output_query_t q = {0};
    q.max_chars = 5000 + text_envelope(&q);
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    assert_non_null(strstr(text.data, "lines_shown=1000 lines_omitted=0"));
    strbuf_free(&st);
    strbuf_free(&text);
    q.max_chars--;
    render(&q, &st, &text);
    assert_non_null(strstr(text.data, "lines_shown=999 lines_omitted=1"));
    /* front: 499 lines (2495 of 2499), back: 500 lines: event 500 ("1499") is the one left out */
    assert_non_null(strstr(text.data, "~ [omitted: 1 events (1 lines, 4 bytes), event ids 500..500;"));
    assert_null(strstr(body(&text), "\n1499\n"));
    assert_non_null(strstr(body(&text), "\n1498\n~ [omitted: 1 events"));
    strbuf_free(&st);
    strbuf_free(&text);
}

static void test_structured_truncated_figures(void **state)
{
    thousand_lines();
    output_query_t q = {.max_chars = 20000};
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    assert_true(st.len <= 20000);
    cJSON *o = cJSON_Parse(st.data);
    const cJSON *t = cJSON_GetObjectItem(o, "truncated"), *out = cJSON_GetObjectItem(o, "output");
    int shown = cJSON_GetArraySize(out);
    int omitted = cJSON_GetObjectItem(t, "omitted_events")->valueint;
    assert_int_equal(shown + omitted, 1000);
    unsigned long first = strtoul(cJSON_GetObjectItem(t, "first_omitted_event_id")->valuestring, NULL, 10);
    unsigned long last = strtoul(cJSON_GetObjectItem(t, "last_omitted_event_id")->valuestring, NULL, 10);
    assert_int_equal(last - first + 1, omitted);
    assert_int_equal(cJSON_GetObjectItem(t, "omitted_bytes")->valueint, 4 * omitted);
    cJSON_Delete(o);
    strbuf_free(&st);
    strbuf_free(&text);
}

static void test_huge_line_cut(void **state)
{
    char *big = xmalloc(65537);
    memset(big, 'a', 65536);
    big[65536] = '\0';
    line(0, big, 1);
    line(0, big, 0);
    free(big);
    output_query_t q = {.max_chars = 2000};
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    assert_true(text.len <= 2000);
    assert_true(st.len <= 2000);
    assert_non_null(strstr(text.data, "more bytes of this line omitted]"));
    cJSON *o = cJSON_Parse(st.data);
    const cJSON *t = cJSON_GetObjectItem(o, "truncated");
    const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(o, "output"), 0);
    size_t shown = strlen(cJSON_GetObjectItem(first, "data")->valuestring);
    assert_int_equal(shown + (size_t)cJSON_GetObjectItem(t, "omitted_bytes")->valuedouble, 2 * 65536);
    cJSON_Delete(o);
    strbuf_free(&st);
    strbuf_free(&text);
}

static void test_head_tail_grep(void **state)
{
    thousand_lines();
    add("exit", "\"code\":0,\"duration_ms\":1");
    output_query_t q = {.max_chars = 20000, .tail = 2};
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    assert_string_equal(body(&text), "1998\n1999\n");
    strbuf_free(&st);
    strbuf_free(&text);
    q = (output_query_t){.max_chars = 20000, .head = 2};
    render(&q, &st, &text);
    assert_string_equal(body(&text), "1000\n1001\n");
    assert_non_null(strstr(st.data, "\"type\":\"exit\"")); /* the exit event stays */
    strbuf_free(&st);
    strbuf_free(&text);
    regex_t re;
    assert_int_equal(regcomp(&re, "^1(00|99)[05]$", REG_EXTENDED | REG_NOSUB), 0);
    q = (output_query_t){.max_chars = 20000, .grep = &re};
    render(&q, &st, &text);
    assert_string_equal(body(&text), "1000\n1005\n1990\n1995\n");
    assert_non_null(strstr(st.data, "\"selection\":{\"lines\":4}"));
    regfree(&re);
    strbuf_free(&st);
    strbuf_free(&text);
}

static void test_text_json(void **state)
{
    line(0, "x", 0);
    output_query_t q = {.max_chars = 20000, .text_json = 1};
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    assert_int_equal(st.len, text.len);
    assert_memory_equal(st.data, text.data, st.len);
    assert_string_equal(st.data, "{\"execution_id\":\"x\",\"status\":\"completed\",\"exit_code\":0,\"output\":[{\"event_id\":\"1\","
                                 "\"type\":\"stdout\",\"ts\":\"t\",\"data\":\"x\"}],\"dropped_events\":0,\"last_event_id\":\"1\"}");
    strbuf_free(&st);
    strbuf_free(&text);
}

/* workspace_id (execute_code's answer, issue 13): in the header after execution_id, in structuredContent after source. */
static void test_workspace_id(void **state)
{
    line(0, "x", 0);
    output_view_t v = {.execution_id = "x", .status = "completed", .exit_code_json = "0", .events = evs, .n_events = n_evs,
                       .last_event_id = "1", .source = "redis", .workspace_id = "w-1", .message = "m"};
    output_query_t q = {.max_chars = 20000};
    strbuf_t st = {0}, text = {0};
    output_render(&v, &q, &st, &text);
    assert_non_null(strstr(text.data, " execution_id=x workspace_id=w-1 last_event_id=1 "));
    assert_non_null(strstr(st.data, ",\"last_event_id\":\"1\",\"source\":\"redis\",\"workspace_id\":\"w-1\",\"message\":\"m\"}"));
    strbuf_free(&st);
    strbuf_free(&text);
    v.workspace_id = NULL;
    output_render(&v, &q, &st, &text);
    assert_null(strstr(text.data, "workspace_id"));
    assert_null(strstr(st.data, "workspace_id"));
    strbuf_free(&st);
    strbuf_free(&text);
}

/* Brute force: data bytes and whole lines of the events with ids first..last. */
static void count_ids(unsigned long first, unsigned long last, size_t *bytes, size_t *wholes)
{
    *bytes = *wholes = 0;
    for (size_t i = 0; i < n_evs; i++) {
        if (evs[i].seq < first || evs[i].seq > last || !EVENTS_IS_LINE(&evs[i]))
            continue;
        cJSON *o = cJSON_Parse(jsons[i]);
        *bytes += strlen(cJSON_GetObjectItem(o, "data")->valuestring);
        *wholes += !cJSON_IsTrue(cJSON_GetObjectItem(o, "partial"));
        cJSON_Delete(o);
    }
}

/* Mixed output over a budget: the truncated figures (prefix differences) equal a count of the events left out. */
static void test_truncated_figures_mixed(void **state)
{
    char d[64];
    add("ready", "");
    for (int i = 0; i < 3000; i++) {
        snprintf(d, sizeof(d), "line-%d", i);
        line(i % 7 == 3, d, i % 11 == 5); /* stderr lines, partial pieces */
        if (i == 1500)
            add("network_denied", "\"message\":\"blocked\"");
    }
    add("exit", "\"code\":0,\"duration_ms\":5");
    output_query_t q = {.max_chars = 8000};
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    cJSON *o = cJSON_Parse(st.data);
    const cJSON *t = cJSON_GetObjectItem(o, "truncated");
    unsigned long first = strtoul(cJSON_GetObjectItem(t, "first_omitted_event_id")->valuestring, NULL, 10);
    unsigned long last = strtoul(cJSON_GetObjectItem(t, "last_omitted_event_id")->valuestring, NULL, 10);
    size_t bytes, wholes;
    count_ids(first, last, &bytes, &wholes);
    assert_int_equal(cJSON_GetObjectItem(t, "omitted_events")->valueint, last - first + 1);
    assert_int_equal((size_t)cJSON_GetObjectItem(t, "omitted_bytes")->valuedouble, bytes);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(o, "output")) + (int)(last - first + 1), (int)n_evs);
    cJSON_Delete(o);
    /* the text's own notice */
    unsigned long tf, tl;
    size_t te, tlines, tb;
    const char *notice = strstr(text.data, "~ [omitted: ");
    assert_non_null(notice);
    assert_int_equal(sscanf(notice, "~ [omitted: %zu events (%zu lines, %zu bytes), event ids %lu..%lu", &te, &tlines, &tb, &tf, &tl), 5);
    count_ids(tf, tl, &bytes, &wholes);
    assert_int_equal(te, tl - tf + 1);
    assert_int_equal(tb, bytes);
    assert_int_equal(tlines, wholes);
    assert_non_null(strstr(text.data, " duration_ms=5 "));
    strbuf_free(&st);
    strbuf_free(&text);
}

/* Renders with query `q` and checks the text after the header. */
static void expect_body(const output_query_t *q, const char *want)
{
    strbuf_t st = {0}, text = {0};
    render(q, &st, &text);
    assert_string_equal(body(&text), want);
    strbuf_free(&st);
    strbuf_free(&text);
}

/* head / tail keep the non-line events wherever they are (found by binary search), never ready; grep combines with tail. */
static void test_head_tail_keep_other_events(void **state)
{
    char d[16];
    add("ready", "");
    for (int i = 1; i <= 10; i++) {
        snprintf(d, sizeof(d), "%d", i);
        line(0, d, 0);
        if (i == 5)
            add("network_denied", "\"message\":\"blocked\"");
    }
    add("exit", "\"code\":0");
    output_query_t q = {.max_chars = 20000, .head = 3};
    strbuf_t st = {0}, text = {0};
    render(&q, &st, &text);
    assert_null(strstr(st.data, "\"type\":\"ready\""));
    assert_non_null(strstr(st.data, "\"type\":\"exit\""));
    assert_non_null(strstr(st.data, "\"selection\":{\"lines\":3}"));
    strbuf_free(&st);
    strbuf_free(&text);
    expect_body(&q, "1\n2\n3\n~ network_denied: blocked\n");
    expect_body(&(output_query_t){.max_chars = 20000, .tail = 3}, "~ network_denied: blocked\n8\n9\n10\n");
    expect_body(&(output_query_t){.max_chars = 20000, .tail = 6}, "5\n~ network_denied: blocked\n6\n7\n8\n9\n10\n");
    regex_t re;
    assert_int_equal(regcomp(&re, "^[0-9]$", REG_EXTENDED | REG_NOSUB), 0);
    expect_body(&(output_query_t){.max_chars = 20000, .grep = &re, .tail = 2}, "~ network_denied: blocked\n8\n9\n");
    regfree(&re);
}

/* A log's own events through event_at, from an index (last_event_id): the same answer as the hand-made array. */
static const event_t *log_at(const void *src, size_t i)
{
    const event_log_t *lg = src;
    return events_at(lg, 3 + i);
}

static void test_view_over_a_log(void **state)
{
    event_log_t lg;
    events_init(&lg, 8, 1 << 20); /* a ring that wrapped: 12 lines, 8 held */
    char d[16];
    for (int i = 1; i <= 12; i++) {
        int n = snprintf(d, sizeof(d), "%d\n", i);
        events_feed(&lg, 0, d, (size_t)n, NULL, NULL);
    }
    output_view_t v = {.execution_id = "x", .status = "completed", .exit_code_json = "0", .event_at = log_at, .src = &lg,
                       .n_events = lg.count - 3, .dropped_events = lg.dropped, .last_event_id = "12"};
    output_query_t q = {.max_chars = 20000, .head = 2};
    strbuf_t st = {0}, text = {0};
    output_render(&v, &q, &st, &text);
    assert_string_equal(body(&text), "8\n9\n");
    assert_non_null(strstr(text.data, " lines_shown=2 lines_omitted=0 dropped_events=4"));
    strbuf_free(&st);
    strbuf_free(&text);
    q = (output_query_t){.max_chars = 20000};
    output_render(&v, &q, &st, &text);
    assert_string_equal(body(&text), "8\n9\n10\n11\n12\n");
    strbuf_free(&st);
    strbuf_free(&text);
    events_free(&lg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_markers_and_joined_pieces, teardown),
        cmocka_unit_test_teardown(test_budget_edges, teardown),
        cmocka_unit_test_teardown(test_structured_truncated_figures, teardown),
        cmocka_unit_test_teardown(test_huge_line_cut, teardown),
        cmocka_unit_test_teardown(test_head_tail_grep, teardown),
        cmocka_unit_test_teardown(test_text_json, teardown),
        cmocka_unit_test_teardown(test_workspace_id, teardown),
        cmocka_unit_test_teardown(test_truncated_figures_mixed, teardown),
        cmocka_unit_test_teardown(test_head_tail_keep_other_events, teardown),
        cmocka_unit_test_teardown(test_view_over_a_log, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
