/*
 * Property test of src/mcp/output.c against a brute-force reference.
 *
 * Random logs are built through the real event log (stdout / stderr bytes fed
 * in random pieces, lines over EVENTS_MAX_LINE cut into partial pieces, lines
 * starting with '!', '~' or '\', multi-byte and invalid UTF-8, non-line
 * events, evictions by both caps, released logs), then random queries
 * (last_event_id anywhere, dropped ranges included; head, tail, grep;
 * max_output_chars from tiny to huge; text_json). The reference parses every
 * event's JSON the obvious way (no running totals, no binary search, no
 * index ranges), selects and fits the budget position by position, and
 * writes the expected structuredContent figures and text; output_render's
 * answer must be equal. The same range read back as JSON and indexed the way
 * the Redis reader does (events_describe / events_index) must give the log's
 * own info words and the same answer.
 *
 * unit-links: core/util core/config core/log core/events
 */
#include "../../src/mcp/output.c"

#include <inttypes.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static uint64_t rng_state;

/* xorshift64*: a reproducible stream from the case's seed. */
static uint64_t rnd(void)
{
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

/* A number in [0, n). */
static size_t below(size_t n)
{
    return n == 0 ? 0 : (size_t)(rnd() % n);
}

/* ---------------------------------------------------------------- random logs */

/* Appends one random line's bytes (newline included unless `last`) to `b`. */
static void random_line(strbuf_t *b)
{
    static const char *pieces[] = {"a", "b", "x", "0", "42", " ", "!", "~", "\\", "\"", "\t", "\x01", "\xc3\xa9",
                                   "\xe4\xb8\xad", "\xf0\x9f\x98\x80", "\xff", "\xe4\xb8", "\r"};
    static const char *starts[] = {"", "!", "~", "\\", "! ", "~ ", "\\\\", "\xe4\xb8\xad"};
    strbuf_puts(b, starts[below(8)]);
    size_t n = below(100) < 3 ? EVENTS_MAX_LINE - 50 + below(EVENTS_MAX_LINE + 200) : below(30);
    if (n > 1000) { /* a long line: bulk of one byte, random pieces around the cuts */
        for (size_t i = 0; i < n; i++)
            strbuf_append(b, i % 997 < 3 ? "\xe4\xb8\xad" : "y", i % 997 < 3 ? 3 : 1);
    } else {
        for (size_t i = 0; i < n; i++)
            strbuf_puts(b, pieces[below(sizeof(pieces) / sizeof(*pieces))]);
    }
    strbuf_puts(b, "\n");
}

/* Feeds `b` to stream `s` in random pieces (lines may be split across reads). */
static void feed_pieces(event_log_t *log, int s, const strbuf_t *b)
{
    size_t off = 0;
    while (off < b->len) {
        size_t k = 1 + below(b->len - off < 200 ? b->len - off : 200);
        if (below(4) == 0)
            k = b->len - off;
        events_feed(log, s, b->data + off, k, NULL, NULL);
        off += k;
    }
}

/* A non-line event: ready, exit (duration_ms), error (a message with newlines), timeout, resource_limit, cancelled. */
static void random_other(event_log_t *log)
{
    cJSON *f = cJSON_CreateObject();
    switch (below(6)) {
    case 0:
        events_append(log, "ready", NULL);
        break;
    case 1:
        cJSON_AddNumberToObject(f, "exit_code", (double)below(3));
        cJSON_AddNumberToObject(f, "duration_ms", (double)below(100000));
        events_append(log, "exit", f);
        break;
    case 2:
        cJSON_AddStringToObject(f, "message", below(2) ? "spawn failed\nline two\r" : "no");
        events_append(log, "error", f);
        break;
    case 3:
        cJSON_AddNumberToObject(f, "timeout_seconds", (double)(1 + below(60)));
        events_append(log, "timeout", f);
        break;
    case 4:
        cJSON_AddStringToObject(f, "reason", below(2) ? "memory" : "cpu_time");
        events_append(log, "resource_limit", f);
        break;
    default:
        events_append(log, "cancelled", NULL);
        break;
    }
    cJSON_Delete(f);
}

/* A random log: a mix of stdout, stderr (unfinished lines left open across switches) and other events. */
static void random_log(event_log_t *log)
{
    size_t max_events = below(3) == 0 ? 1000000 : 2 + below(300);
    size_t max_bytes = below(3) == 0 ? 64u << 20 : 300 + below(200000);
    events_init(log, max_events, max_bytes);
    size_t steps = below(60);
    for (size_t i = 0; i < steps; i++) {
        size_t what = below(10);
        if (what < 7) {
            strbuf_t b = {0};
            size_t lines = 1 + below(below(5) == 0 ? 400 : 8);
            for (size_t k = 0; k < lines; k++)
                random_line(&b);
            if (below(3) == 0 && b.len > 1)
                b.len -= 1 + below(b.len / 2); /* an unfinished line, continued later */
            feed_pieces(log, what < 5 ? 0 : 1, &b);
            strbuf_free(&b);
        } else {
            random_other(log);
        }
    }
    if (below(2))
        events_flush(log, 0, NULL, NULL);
    if (below(2))
        events_flush(log, 1, NULL, NULL);
    if (below(2))
        random_other(log);
    if (below(2))
        events_compact(log);
}

/* ---------------------------------------------------------------- the reference */

/* One event as the reference sees it: parsed from its JSON alone. */
struct ref_ev {
    const event_t *ev;
    cJSON *o;
    int kind;          /* EVENTS_* */
    int partial;
    const char *data;  /* line events */
    size_t data_len;
};

/* Parses view event `e` the obvious way. */
static void ref_parse(const event_t *e, struct ref_ev *r)
{
    memset(r, 0, sizeof(*r));
    r->ev = e;
    r->o = cJSON_ParseWithLength(e->json, e->len);
    assert_non_null(r->o);
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r->o, "type");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(r->o, "data");
    assert_true(cJSON_IsString(t));
    r->kind = !strcmp(t->valuestring, "stdout") ? EVENTS_STDOUT
              : !strcmp(t->valuestring, "stderr") ? EVENTS_STDERR
              : !strcmp(t->valuestring, "ready")  ? EVENTS_READY
                                                  : EVENTS_OTHER;
    if (r->kind <= EVENTS_STDERR) {
        assert_true(cJSON_IsString(d));
        r->data = d->valuestring;
        r->data_len = strlen(d->valuestring);
        r->partial = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r->o, "partial"));
    }
}

/* The text note of a non-line event, written the obvious way. */
static void ref_note(const struct ref_ev *r, strbuf_t *out)
{
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(r->o, "type");
    if (r->kind != EVENTS_OTHER || !strcmp(t->valuestring, "exit"))
        return;
    strbuf_printf(out, "~ %s", t->valuestring);
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(r->o, "reason");
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(r->o, "timeout_seconds");
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(r->o, "message");
    if (cJSON_IsString(reason))
        strbuf_printf(out, " (%s)", reason->valuestring);
    if (cJSON_IsNumber(secs))
        strbuf_printf(out, " after %d s", secs->valueint);
    if (cJSON_IsString(msg)) {
        strbuf_puts(out, ": ");
        for (const char *c = msg->valuestring; *c; c++)
            strbuf_append(out, *c == '\n' || *c == '\r' ? " " : c, 1);
    }
    strbuf_puts(out, "\n");
}

/* What the reference expects: the selection (view indices) and the figures of one budget. */
struct ref_plan {
    size_t front, back, cut; /* positions [0, front) and [back, n) shown whole; `front` cut to `cut` bytes when cut_on */
    int cut_on;
    size_t omitted_events, omitted_bytes, omitted_lines;
    uint64_t first_omitted, last_omitted;
};

/* The selection of a query, by brute force: indices into `r` in order. */
static size_t ref_select(const struct ref_ev *r, size_t n, const output_query_t *q, size_t *sel)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (r[i].kind == EVENTS_READY && (q->grep != NULL || q->head > 0 || q->tail > 0))
            continue;
        if (q->grep != NULL && r[i].kind <= EVENTS_STDERR && regexec(q->grep, r[i].data, 0, NULL, 0) != 0)
            continue;
        sel[k++] = i;
    }
    if (q->head <= 0 && q->tail <= 0)
        return k;
    size_t lines = 0, seen = 0, m = 0;
    for (size_t j = 0; j < k; j++)
        lines += r[sel[j]].kind <= EVENTS_STDERR;
    for (size_t j = 0; j < k; j++) {
        int line = r[sel[j]].kind <= EVENTS_STDERR;
        int keep = !line || (q->head > 0 ? seen < (size_t)q->head : seen + (size_t)q->tail >= lines);
        seen += line;
        if (keep)
            sel[m++] = sel[j];
    }
    return m;
}

/* An event's cost as the budget counts it (the text's line or the JSON and a comma). */
static size_t ref_cost(const struct ref_ev *r, int structured)
{
    if (structured)
        return r->ev->len + 1;
    if (r->kind == EVENTS_READY)
        return 0;
    if (r->kind == EVENTS_OTHER) {
        strbuf_t n = {0};
        ref_note(r, &n);
        size_t len = n.len;
        strbuf_free(&n);
        return len;
    }
    int esc = r->kind == EVENTS_STDOUT && (r->data[0] == '!' || r->data[0] == '~' || r->data[0] == '\\');
    return r->data_len + 1 + (r->kind == EVENTS_STDERR ? 2 : esc);
}

/* The JSON bytes of the first n bytes of s as a string's content, as cJSON prints it. */
static size_t ref_escaped(const char *s, size_t n)
{
    char *c = xstrndup(s, n);
    cJSON *j = cJSON_CreateString(c);
    char *t = cJSON_PrintUnformatted(j);
    size_t len = strlen(t) - 2;
    free(t);
    cJSON_Delete(j);
    free(c);
    return len;
}

/* The most data bytes of a cut structured event whose escapes, the rest of its JSON and 64 bytes fit `room`. */
static size_t ref_json_cut(const struct ref_ev *e, size_t room)
{
    size_t fixed = e->ev->len - ref_escaped(e->data, e->data_len);
    if (room <= fixed + 64)
        return 0;
    size_t lo = 0, hi = e->data_len; /* the largest n with ref_escaped(n) <= room - fixed - 64 */
    while (lo < hi) {
        size_t mid = lo + (hi - lo + 1) / 2;
        if (ref_escaped(e->data, mid) <= room - fixed - 64)
            lo = mid;
        else
            hi = mid - 1;
    }
    return lo;
}

/* The reference budget: first events up to half, last ones in the rest, a first line too long cut. */
static void ref_fit(const struct ref_ev *r, const size_t *sel, size_t n, size_t budget, int structured,
                    struct ref_plan *p)
{
    memset(p, 0, sizeof(*p));
    size_t total = 0, used = 0, f = 0, b = n;
    for (size_t j = 0; j < n; j++)
        total += ref_cost(&r[sel[j]], structured);
    p->front = p->back = n;
    if (total <= budget)
        return;
    while (f < n && used + ref_cost(&r[sel[f]], structured) <= budget / 2)
        used += ref_cost(&r[sel[f++]], structured);
    size_t front_used = used;
    while (b > f && used + ref_cost(&r[sel[b - 1]], structured) <= budget)
        used += ref_cost(&r[sel[--b]], structured);
    p->front = f;
    p->back = b;
    const struct ref_ev *fo = &r[sel[f]];
    if (f < b && fo->kind <= EVENTS_STDERR && front_used < budget / 4) {
        size_t avail = budget - used < budget / 2 ? budget - used : budget / 2;
        size_t prefix = fo->kind == EVENTS_STDERR ? 2 : ref_cost(fo, 0) - fo->data_len - 1; /* "! " or '\\' */
        size_t cut = structured ? ref_json_cut(fo, avail) : avail > prefix ? avail - prefix : 0;
        if (ref_cost(fo, structured) <= avail) { /* the whole line fits what is left: shown whole */
            p->front = ++f;
        } else {
            if (cut > fo->data_len)
                cut = fo->data_len;
            while (cut > 0 && ((unsigned char)fo->data[cut] & 0xC0) == 0x80)
                cut--;
            p->cut = cut;
            p->cut_on = cut > 0; /* not one byte fits: left out whole */
        }
    }
    for (size_t j = f + (size_t)p->cut_on; j < b; j++) {
        const struct ref_ev *e = &r[sel[j]];
        if (p->omitted_events++ == 0)
            p->first_omitted = e->ev->seq;
        p->last_omitted = e->ev->seq;
        p->omitted_bytes += e->data_len;
        p->omitted_lines += e->kind <= EVENTS_STDERR && !e->partial;
    }
    if (p->cut_on)
        p->omitted_bytes += fo->data_len - p->cut;
}

/* The reference's structured event at selection position j (cut to p->cut bytes when it is the cut one). */
static void ref_event_json(const struct ref_ev *e, int cut, size_t keep, strbuf_t *out)
{
    if (!cut) {
        strbuf_append(out, e->ev->json, e->ev->len);
        return;
    }
    cJSON *o = cJSON_Duplicate(e->o, 1);
    char *s = xstrndup(e->data, keep);
    cJSON_SetValuestring(cJSON_GetObjectItemCaseSensitive(o, "data"), s);
    free(s);
    cJSON_AddNumberToObject(o, "omitted_bytes", (double)(e->data_len - keep));
    char *t = cJSON_PrintUnformatted(o);
    strbuf_puts(out, t);
    free(t);
    cJSON_Delete(o);
}

/* The expected structuredContent. */
static void ref_structured(const output_view_t *v, const output_query_t *q, const struct ref_ev *r, const size_t *sel,
                           size_t n, const struct ref_plan *p, size_t lines, strbuf_t *out)
{
    strbuf_puts(out, "{\"execution_id\":");
    strbuf_json_cstr(out, v->execution_id);
    strbuf_puts(out, ",\"status\":");
    strbuf_json_cstr(out, v->status);
    strbuf_printf(out, ",\"exit_code\":%s,\"output\":[", v->exit_code_json);
    int first = 1;
    for (size_t j = 0; j < n; j++) {
        if (j >= p->front + (size_t)p->cut_on && j < p->back)
            continue;
        if (!first)
            strbuf_puts(out, ",");
        first = 0;
        ref_event_json(&r[sel[j]], p->cut_on && j == p->front, p->cut, out);
    }
    strbuf_printf(out, "],\"dropped_events\":%" PRIu64, v->dropped_events);
    if (v->last_event_id != NULL)
        strbuf_printf(out, ",\"last_event_id\":\"%s\"", v->last_event_id);
    if (v->source != NULL)
        strbuf_printf(out, ",\"source\":\"%s\"", v->source);
    if (v->workspace_id != NULL)
        strbuf_printf(out, ",\"workspace_id\":\"%s\"", v->workspace_id);
    if (v->message != NULL)
        strbuf_printf(out, ",\"message\":\"%s\"", v->message);
    if (p->omitted_events > 0 || p->cut_on)
        strbuf_printf(out,
                      ",\"truncated\":{\"omitted_events\":%zu,\"omitted_bytes\":%zu,\"first_omitted_event_id\":\"%" PRIu64
                      "\",\"last_omitted_event_id\":\"%" PRIu64 "\",\"hint\":\"get_execution_output with last_event_id="
                      "\\\"%" PRIu64 "\\\" and head, tail or grep reads what was left out\"}",
                      p->omitted_events, p->omitted_bytes, p->first_omitted, p->last_omitted, p->first_omitted - 1);
    if (q->grep != NULL || q->head > 0 || q->tail > 0)
        strbuf_printf(out, ",\"selection\":{\"lines\":%zu}", lines);
    strbuf_puts(out, "}");
}

/* Writes line event `e` as text: "! " before stderr, '\' before a stdout line that looks like a marker, pieces joined. */
static void ref_line_text(const struct ref_ev *e, int *open, int cut, size_t keep, strbuf_t *out)
{
    if (*open >= 0 && *open != e->kind) {
        strbuf_puts(out, "\n");
        *open = -1;
    }
    if (*open < 0 && e->kind == EVENTS_STDERR)
        strbuf_puts(out, "! ");
    else if (*open < 0 && (e->data[0] == '!' || e->data[0] == '~' || e->data[0] == '\\'))
        strbuf_puts(out, "\\");
    strbuf_append(out, e->data, cut ? keep : e->data_len);
    if (cut)
        strbuf_printf(out, "\n~ [%zu more bytes of this line omitted]\n", e->data_len - keep);
    else if (!e->partial)
        strbuf_puts(out, "\n");
    *open = !cut && e->partial ? e->kind : -1;
}

/* The last exit event's duration_ms, or -1. */
static double ref_duration(const struct ref_ev *r, size_t n)
{
    double dur = -1;
    for (size_t i = 0; i < n; i++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(r[i].o, "type");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(r[i].o, "duration_ms");
        if (!strcmp(t->valuestring, "exit") && cJSON_IsNumber(d))
            dur = d->valuedouble;
    }
    return dur;
}

/* The expected text: header line, then the shown events and the notice where the omitted ones were. */
static void ref_text(const output_view_t *v, const struct ref_ev *r, size_t nv, const size_t *sel, size_t n,
                     const struct ref_plan *p, size_t lines, strbuf_t *out)
{
    double dur = ref_duration(r, nv);
    char dur_s[48] = "", ws[128] = "", last[48] = "", drop[48] = "", src[32] = "";
    if (dur >= 0)
        snprintf(dur_s, sizeof(dur_s), " duration_ms=%.0f", dur);
    if (v->workspace_id != NULL)
        snprintf(ws, sizeof(ws), " workspace_id=%s", v->workspace_id);
    if (v->last_event_id != NULL)
        snprintf(last, sizeof(last), " last_event_id=%s", v->last_event_id);
    if (v->dropped_events > 0)
        snprintf(drop, sizeof(drop), " dropped_events=%" PRIu64, v->dropped_events);
    if (v->source != NULL)
        snprintf(src, sizeof(src), " source=%s", v->source);
    strbuf_printf(out, "status=%s exit_code=%s%s execution_id=%s%s%s lines_shown=%zu lines_omitted=%zu%s%s\n", v->status,
                  v->exit_code_json, dur_s, v->execution_id, ws, last, lines - p->omitted_lines, p->omitted_lines, drop,
                  src);
    if (v->message != NULL)
        strbuf_printf(out, "~ %s\n", v->message);
    int open = -1;
    for (size_t j = 0; j < n; j++) {
        if (j == p->front + (size_t)p->cut_on && p->omitted_events > 0) {
            if (open >= 0)
                strbuf_puts(out, "\n");
            open = -1;
            strbuf_printf(out,
                          "~ [omitted: %zu events (%zu lines, %zu bytes), event ids %" PRIu64 "..%" PRIu64
                          "; get them with get_execution_output: last_event_id=\"%" PRIu64
                          "\" with head=N, or tail=N, or grep=PATTERN]\n",
                          p->omitted_events, p->omitted_lines, p->omitted_bytes, p->first_omitted, p->last_omitted,
                          p->first_omitted - 1);
            j = p->back;
            if (j >= n)
                break;
        }
        const struct ref_ev *e = &r[sel[j]];
        if (e->kind <= EVENTS_STDERR) {
            ref_line_text(e, &open, p->cut_on && j == p->front, p->cut, out);
        } else {
            strbuf_t note = {0};
            ref_note(e, &note);
            if (open >= 0 && note.len > 0) {
                strbuf_puts(out, "\n");
                open = -1;
            }
            if (note.len > 0)
                strbuf_append(out, note.data, note.len);
            strbuf_free(&note);
        }
    }
    if (open >= 0)
        strbuf_puts(out, "\n");
}

/* ---------------------------------------------------------------- one case */

/* The tools' local view over `log` from index `from` (as reply_local_output builds it). */
struct local_src {
    const event_log_t *log;
    size_t from;
};

static const event_t *local_at(const void *src, size_t i)
{
    const struct local_src *l = src;
    return events_at(l->log, l->from + i);
}

/* Where the reference resumes after `id` (-1: refused): ids are consecutive, the held ones from the oldest. */
static long ref_resume(const event_log_t *log, const char *id)
{
    if (log->released)
        return -1;
    if (id == NULL)
        return 0;
    uint64_t n = 0;
    for (const char *c = id; *c; c++) {
        if (*c < '0' || *c > '9')
            return -1;
        n = n * 10 + (uint64_t)(*c - '0');
    }
    uint64_t oldest = log->count > 0 ? events_at(log, 0)->seq : log->next_seq;
    if (id[0] == '\0' || n >= log->next_seq || n + 1 < oldest)
        return -1;
    return (long)(n + 1 - oldest);
}

/* The events of the view read back as JSON and indexed as the Redis reader does; their info must be the log's. */
static event_t *reindex(const output_view_t *v)
{
    event_t *re = xcalloc(v->n_events + 1, sizeof(*re));
    events_totals_t t = {0, 0, 0};
    for (size_t i = 0; i < v->n_events; i++) {
        const event_t *e = at(v, i);
        cJSON *o = cJSON_ParseWithLength(e->json, e->len);
        re[i] = (event_t){.seq = e->seq, .json = e->json, .len = e->len};
        events_index(&re[i], events_describe(o), &t);
        cJSON_Delete(o);
        assert_int_equal(re[i].info, e->info);
        events_totals_t a = events_after(e), a0 = events_before(at(v, 0));
        assert_int_equal(re[i].data_sum, a.data - a0.data);
        assert_int_equal(re[i].line_sum, a.lines - a0.lines);
        assert_int_equal(re[i].whole_sum, a.wholes - a0.wholes);
    }
    return re;
}

/* A random query: budget from tiny to huge, head / tail / grep, text or JSON. */
static void random_query(output_query_t *q, regex_t *re)
{
    static const char *pats[] = {"a", "^!", "^\\\\", "\xc3\xa9", "[0-9]+", "x$", ".", "^$", "~", "\xe4\xb8\xad", "y{3}"};
    static const size_t scales[] = {400, 2000, 20000, 200000, 3000000};
    memset(q, 0, sizeof(*q));
    q->max_chars = 200 + below(scales[below(5)]);
    q->text_json = below(8) == 0;
    size_t f = below(6);
    if (f == 1 || f == 4) {
        assert_int_equal(regcomp(re, pats[below(sizeof(pats) / sizeof(*pats))], REG_EXTENDED | REG_NOSUB), 0);
        q->grep = re;
    }
    if (f == 2 || f == 4)
        q->head = 1 + (long)below(below(2) ? 5 : 500);
    if (f == 3 || f == 5)
        q->tail = 1 + (long)below(below(2) ? 5 : 500);
}

/* Fails with where two answers first differ (the answers can be megabytes). */
static void same(const char *got, const char *want)
{
    size_t i = 0;
    while (got[i] != '\0' && got[i] == want[i])
        i++;
    if (got[i] == want[i])
        return;
    size_t from = i > 120 ? i - 120 : 0;
    print_error("answers differ at byte %zu (lengths %zu, %zu)\n got: %.240s\nwant: %.240s\n", i, strlen(got),
                strlen(want), got + from, want + from);
    fail();
}

/* Renders view `v` and compares with the reference: structuredContent and text exactly. */
static void check_render(const output_view_t *v, const output_query_t *q, strbuf_t *st, strbuf_t *text)
{
    size_t n = v->n_events;
    struct ref_ev *r = xcalloc(n + 1, sizeof(*r));
    size_t *sel = xcalloc(n + 1, sizeof(*sel));
    for (size_t i = 0; i < n; i++)
        ref_parse(at(v, i), &r[i]);
    size_t k = ref_select(r, n, q, sel), lines = 0;
    if (getenv("OUTPUT_PROP_DUMP") != NULL) /* what the case is made of, to read a failure */
        for (size_t i = 0; i < n; i++)
            print_message("%" PRIu64 " kind %d partial %d data %zu len %u strlen %zu\n", r[i].ev->seq, r[i].kind,
                          r[i].partial, r[i].data_len, r[i].ev->len, strlen(r[i].ev->json));
    for (size_t j = 0; j < k; j++)
        lines += r[sel[j]].kind <= EVENTS_STDERR && !r[sel[j]].partial;
    /* the budget is what the answer's other parts leave (output.c's envelope: checked by the sizes below) */
    struct selection none = {0};
    double dur = ref_duration(r, n);
    size_t env_st = envelope(v, q, &none, dur, 1), env_text = envelope(v, q, &none, dur, 0);
    struct ref_plan ps, pt;
    ref_fit(r, sel, k, budget_of(q->max_chars, env_st), 1, &ps);
    strbuf_t est = {0}, etext = {0};
    ref_structured(v, q, r, sel, k, &ps, lines, &est);
    output_render(v, q, st, text);
    same(st->data, est.data);
    if (q->text_json) {
        assert_string_equal(text->data, st->data);
    } else {
        ref_fit(r, sel, k, budget_of(q->max_chars, env_text), 0, &pt);
        ref_text(v, r, n, sel, k, &pt, lines, &etext);
        same(text->data, etext.data);
    }
    if (getenv("OUTPUT_PROP_SIZES") != NULL && (st->len > q->max_chars || text->len > q->max_chars))
        print_message("over budget: max %zu structured %zu text %zu\n", q->max_chars, st->len, text->len);
    if (getenv("OUTPUT_PROP_DUMP") != NULL) { /* the answer, to read a failure */
        size_t shown = 0;
        for (size_t j = 0; j < k; j++)
            if (j < ps.front + (size_t)ps.cut_on || j >= ps.back)
                shown += ref_cost(&r[sel[j]], 1);
        print_message("env %zu budget %zu front %zu back %zu of %zu shown cost %zu\n", env_st,
                      budget_of(q->max_chars, env_st), ps.front, ps.back, k, shown);
        FILE *f = fopen("/tmp/output_prop.json", "w");
        if (f != NULL) {
            fputs(st->data, f);
            fclose(f);
        }
    }
    /* a budget that holds twice the envelope is kept */
    if (q->max_chars >= 2 * env_st)
        assert_true(st->len <= q->max_chars);
    if (q->max_chars >= 2 * env_text)
        assert_true(text->len <= q->max_chars);
    for (size_t i = 0; i < n; i++)
        cJSON_Delete(r[i].o);
    free(r);
    free(sel);
    strbuf_free(&est);
    strbuf_free(&etext);
}

/* One random case: a log, a resume point, a query; the local view and its Redis read-back answer alike. */
static void one_case(uint64_t seed)
{
    rng_state = seed * 0x9E3779B97F4A7C15ull + 1;
    event_log_t log;
    random_log(&log);
    if (below(10) == 0)
        events_release(&log);
    char id[32], err[256];
    const char *last = NULL;
    if (below(3) != 0) {
        snprintf(id, sizeof(id), "%zu", below((size_t)log.next_seq + 2));
        last = id;
    }
    long from = events_resume_index(&log, last, err, sizeof(err));
    assert_int_equal(from, ref_resume(&log, last));
    if (from >= 0) {
        char lastid[24];
        if (log.count > 0)
            snprintf(lastid, sizeof(lastid), "%" PRIu64, events_at(&log, log.count - 1)->seq);
        struct local_src src = {&log, (size_t)from};
        output_view_t v = {.execution_id = "e1", .status = "completed", .exit_code_json = "0", .event_at = local_at,
                           .src = &src, .n_events = log.count - (size_t)from, .dropped_events = log.dropped,
                           .last_event_id = log.count > 0 ? lastid : NULL};
        /* the longest fields an answer carries: a uuid, a workspace id, the remote read's note */
        static const char *note = "The output list in Redis was not written as this server writes it: "
                                  "18446744073709551615 elements left out (no event, out of order or too long), "
                                  "18446744073709551615 event ids missing";
        if (below(3) == 0) {
            v.execution_id = "6fd64443-a5c5-4b8c-a8cb-8c6f724c9033";
            v.workspace_id = "w-5e7217d7088591455fdb8b89c4db50fe";
            v.source = "redis";
            v.message = note;
            v.status = "timeout";
            v.exit_code_json = "-9";
        }
        output_query_t q;
        regex_t re;
        random_query(&q, &re);
        strbuf_t st = {0}, text = {0}, st2 = {0}, text2 = {0};
        check_render(&v, &q, &st, &text);
        event_t *back = reindex(&v);
        output_view_t v2 = v;
        v2.event_at = NULL;
        v2.events = back;
        output_render(&v2, &q, &st2, &text2);
        same(st2.data, st.data);
        same(text2.data, text.data);
        free(back);
        strbuf_free(&st);
        strbuf_free(&text);
        strbuf_free(&st2);
        strbuf_free(&text2);
        if (q.grep != NULL)
            regfree(q.grep);
    }
    events_free(&log);
}

static void test_random_logs_and_queries(void **state)
{
    (void)state;
    const char *env = getenv("OUTPUT_PROP_CASES"), *first = getenv("OUTPUT_PROP_SEED");
    uint64_t cases = env != NULL ? strtoull(env, NULL, 10) : 500;
    uint64_t s0 = first != NULL ? strtoull(first, NULL, 10) : 1;
    for (uint64_t s = s0; s < s0 + cases; s++) {
        if (getenv("OUTPUT_PROP_VERBOSE") != NULL)
            print_message("seed %" PRIu64 "\n", s);
        one_case(s);
    }
}

/* A random event object as a list in Redis may hold it: odd types, data that is no string, NUL and escapes in it. */
static char *hostile_event(uint64_t id)
{
    static const char *types[] = {"\"stdout\"", "\"stderr\"", "\"exit\"", "\"ready\"", "\"error\"", "5", "null",
                                  "\"timeout\""};
    static const char *datas[] = {"\"a\"", "\"!x\"", "\"a\\u0000b\"", "7", "null", "[1]", "\"\\n\\u0001\"", "\"\\ud83d\\ude00\"",
                                  "\"~\\\\\"", "\"\xe4\xb8\xad\xe4\xb8\xad\""};
    static const char *extras[] = {"", ",\"partial\":true", ",\"partial\":\"yes\"", ",\"message\":\"m\\nn\"",
                                   ",\"reason\":7", ",\"timeout_seconds\":1e300", ",\"duration_ms\":-1", ",\"duration_ms\":\"x\""};
    strbuf_t b = {0};
    strbuf_printf(&b, "{\"event_id\":\"%" PRIu64 "\",\"type\":%s", id, types[below(8)]);
    if (below(4) != 0)
        strbuf_printf(&b, ",\"data\":%s", datas[below(10)]);
    if (below(3) == 0) { /* a long string: a cut on a character boundary */
        strbuf_puts(&b, ",\"data\":\"");
        for (size_t i = 0, n = below(30000); i < n; i++)
            strbuf_puts(&b, below(5) == 0 ? "\xe4\xb8\xad" : below(9) == 0 ? "\\u0002" : "q");
        strbuf_puts(&b, "\"");
    }
    strbuf_printf(&b, "%s}", extras[below(8)]);
    return strbuf_steal(&b, NULL);
}

/* Events no server of ours wrote, indexed as the reader indexes them: any query renders, within the budget. */
static void test_hostile_events(void **state)
{
    (void)state;
    for (uint64_t seed = 1; seed <= 300; seed++) {
        rng_state = seed * 0x9E3779B97F4A7C15ull + 7;
        size_t n = below(60);
        event_t *evs = xcalloc(n + 1, sizeof(*evs));
        events_totals_t t = {0, 0, 0};
        for (size_t i = 0; i < n; i++) {
            evs[i].seq = 10 + i;
            evs[i].json = hostile_event(evs[i].seq);
            evs[i].len = (uint32_t)strlen(evs[i].json);
            cJSON *o = cJSON_Parse(evs[i].json);
            assert_non_null(o);
            events_index(&evs[i], events_describe(o), &t);
            cJSON_Delete(o);
        }
        output_view_t v = {.execution_id = "e", .status = "completed", .exit_code_json = "0", .events = evs,
                           .n_events = n, .source = "redis"};
        output_query_t q;
        regex_t re;
        random_query(&q, &re);
        strbuf_t st = {0}, text = {0};
        output_render(&v, &q, &st, &text);
        cJSON *o = cJSON_Parse(st.data);
        assert_non_null(o); /* structuredContent stays one JSON object */
        cJSON_Delete(o);
        if (q.max_chars >= 2 * envelope(&v, &q, &(struct selection){0}, -1, 1))
            assert_true(st.len <= q.max_chars);
        if (q.grep != NULL)
            regfree(q.grep);
        strbuf_free(&st);
        strbuf_free(&text);
        for (size_t i = 0; i < n; i++)
            free(evs[i].json);
        free(evs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_logs_and_queries),
        cmocka_unit_test(test_hostile_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
