/*
 * output: see output.h. Each event is parsed once to learn its kind and the
 * length of its data (and to match grep), then the selection is cut to the
 * budget twice, once for the text (cost: the line as shown) and once for
 * structuredContent (cost: the event's JSON), keeping the first and the last
 * events; only the events shown are parsed again to be written.
 */
#include "mcp/output.h"
#include "core/config.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_OUT, K_ERR, K_READY, K_OTHER };

/* What the answer's other parts may take of max_output_chars: the header, the notices, the structured fields. */
#define OUTPUT_ENVELOPE 600

/* One event, as the formatter sees it. */
struct item {
    const output_event_t *ev;
    unsigned char kind, partial, esc; /* esc: a stdout line written with a leading '\' */
    size_t data_len; /* line events: the data's bytes */
    size_t note_len; /* other events: the text note's bytes */
};

/* What one budget keeps of the selection: sel[0..front) and sel[back..n), sel[front] cut to `cut` bytes when cut_on. */
struct plan {
    size_t front, back, cut;
    int cut_on;
    size_t omitted_events, omitted_bytes, omitted_lines;
    uint64_t first_omitted, last_omitted;
};

/* The text note of a non-line event (timeout, cancelled, error, resource_limit); "" for ready and exit. */
static void note_text(const cJSON *o, const char *type, strbuf_t *out)
{
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(o, "message");
    const cJSON *reason = cJSON_GetObjectItemCaseSensitive(o, "reason");
    const cJSON *secs = cJSON_GetObjectItemCaseSensitive(o, "timeout_seconds");
    if (!strcmp(type, "ready") || !strcmp(type, "exit"))
        return;
    strbuf_printf(out, "~ %s", type);
    if (cJSON_IsString(reason))
        strbuf_printf(out, " (%s)", reason->valuestring);
    if (cJSON_IsNumber(secs))
        strbuf_printf(out, " after %d s", secs->valueint);
    if (cJSON_IsString(msg)) { /* one line: a message's own newlines must not pass for output lines */
        strbuf_puts(out, ": ");
        for (const char *c = msg->valuestring; *c; c++)
            strbuf_append(out, *c == '\n' || *c == '\r' ? " " : c, 1);
    }
    strbuf_puts(out, "\n");
}

/* A stdout line whose first byte could pass for a marker gets a '\' before it. */
static int needs_escape(const char *data)
{
    return data[0] == '!' || data[0] == '~' || data[0] == '\\';
}

/* Parses one event into `it`; `dur` gets the exit event's duration_ms. */
static void scan_item(const output_event_t *ev, struct item *it, double *dur)
{
    cJSON *o = cJSON_ParseWithLength(ev->json, ev->len);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    const char *t = cJSON_IsString(type) ? type->valuestring : "";
    it->ev = ev;
    it->kind = !strcmp(t, "stdout") ? K_OUT : !strcmp(t, "stderr") ? K_ERR : !strcmp(t, "ready") ? K_READY : K_OTHER;
    if (it->kind <= K_ERR && cJSON_IsString(data)) {
        it->data_len = strlen(data->valuestring);
        it->partial = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "partial"));
        it->esc = it->kind == K_OUT && needs_escape(data->valuestring);
    } else if (it->kind == K_OTHER) {
        strbuf_t n = {0};
        note_text(o, t, &n);
        it->note_len = n.len;
        strbuf_free(&n);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "duration_ms");
        if (!strcmp(t, "exit") && cJSON_IsNumber(d))
            *dur = d->valuedouble;
    }
    cJSON_Delete(o);
}

/* What an event costs in the text (its line as written) or in structuredContent (its JSON and a comma). */
static size_t cost(const struct item *it, int structured)
{
    if (structured)
        return it->ev->len + 1;
    if (it->kind == K_OTHER)
        return it->note_len;
    if (it->kind == K_READY)
        return 0;
    return it->data_len + (it->partial ? 0 : 1) + (it->kind == K_ERR ? 2 : it->esc); /* continuation pieces counted as new lines: an upper bound */
}

/* Counts what a plan leaves out (sel[front + cut_on .. back)) and what the cut took. */
static void plan_count(const struct item *items, const size_t *sel, struct plan *p)
{
    size_t from = p->front + (size_t)p->cut_on;
    for (size_t i = from; i < p->back; i++) {
        const struct item *it = &items[sel[i]];
        p->omitted_events++;
        p->omitted_bytes += it->data_len;
        p->omitted_lines += it->kind <= K_ERR && !it->partial;
        if (i == from)
            p->first_omitted = it->ev->id;
        p->last_omitted = it->ev->id;
    }
    if (p->cut_on)
        p->omitted_bytes += items[sel[p->front]].data_len - p->cut;
}

/*
 * Fits the selection into `budget`: everything when it fits; otherwise the
 * first events up to half of it, the last ones in what is left, and a first
 * line too long for half of it cut (a huge single line still shows its start).
 */
static void plan_fit(const struct item *items, const size_t *sel, size_t n, size_t budget, int structured, struct plan *p)
{
    memset(p, 0, sizeof(*p));
    size_t total = 0, used = 0;
    for (size_t i = 0; i < n; i++)
        total += cost(&items[sel[i]], structured);
    p->front = p->back = n;
    if (total <= budget)
        return;
    size_t f = 0, b = n;
    while (f < n && used + cost(&items[sel[f]], structured) <= budget / 2)
        used += cost(&items[sel[f++]], structured);
    size_t front_used = used;
    while (b > f && used + cost(&items[sel[b - 1]], structured) <= budget)
        used += cost(&items[sel[--b]], structured);
    p->front = f;
    p->back = b;
    if (f < b && items[sel[f]].kind <= K_ERR && front_used < budget / 4) { /* a line too long for half the budget */
        size_t avail = budget > used ? budget - used : 0;
        if (avail > budget / 2)
            avail = budget / 2;
        p->cut = structured ? avail / 2 : avail; /* JSON escapes may grow the data */
        p->cut_on = 1;
    }
    plan_count(items, sel, p);
}

/* The first `n` bytes of `s`, shortened to a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* Appends event `it` (JSON) to the output array, its data cut to `cut` bytes when cut_on. */
static void write_event_json(strbuf_t *out, const struct item *it, int cut_on, size_t cut)
{
    if (!cut_on) {
        strbuf_append(out, it->ev->json, it->ev->len);
        return;
    }
    cJSON *o = cJSON_ParseWithLength(it->ev->json, it->ev->len);
    cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    if (cJSON_IsString(data)) {
        size_t keep = utf8_cut(data->valuestring, cut);
        char *s = xstrndup(data->valuestring, keep);
        cJSON_SetValuestring(data, s);
        free(s);
        cJSON_AddNumberToObject(o, "omitted_bytes", (double)(it->data_len - keep));
    }
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (text == NULL)
        util_oom();
    strbuf_puts(out, text);
    free(text);
}

/* State of the text while lines are written: which stream's line is still open (a partial event). */
struct text_state {
    strbuf_t *out;
    int open; /* -1 none, else K_OUT / K_ERR */
};

/* Writes event `it` as text: a line ("! " before stderr, '\' before a stdout line that looks like a marker). */
static void write_event_text(struct text_state *ts, const struct item *it, int cut_on, size_t cut)
{
    cJSON *o = cJSON_ParseWithLength(it->ev->json, it->ev->len);
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    if (ts->open >= 0 && ts->open != it->kind) { /* another stream interrupts an unfinished line */
        strbuf_puts(ts->out, "\n");
        ts->open = -1;
    }
    if (it->kind <= K_ERR && cJSON_IsString(data)) {
        const char *d = data->valuestring;
        if (ts->open < 0 && it->kind == K_ERR)
            strbuf_puts(ts->out, "! ");
        else if (ts->open < 0 && needs_escape(d))
            strbuf_puts(ts->out, "\\");
        size_t n = cut_on ? utf8_cut(d, cut) : it->data_len;
        strbuf_append(ts->out, d, n);
        if (cut_on)
            strbuf_printf(ts->out, "\n~ [%zu more bytes of this line omitted]\n", it->data_len - n);
        else if (!it->partial)
            strbuf_puts(ts->out, "\n");
        ts->open = !cut_on && it->partial ? it->kind : -1;
    } else if (it->kind == K_OTHER && cJSON_IsString(type)) {
        note_text(o, type->valuestring, ts->out);
    }
    cJSON_Delete(o);
}

/* The text's notice of what a plan left out, and how to get it. */
static void write_omitted_text(strbuf_t *out, const struct plan *p)
{
    strbuf_printf(out,
                  "~ [omitted: %zu events (%zu lines, %zu bytes), event ids %llu..%llu; get them with "
                  "get_execution_output: last_event_id=\"%llu\" with head=N, or tail=N, or grep=PATTERN]\n",
                  p->omitted_events, p->omitted_lines, p->omitted_bytes, (unsigned long long)p->first_omitted,
                  (unsigned long long)p->last_omitted, (unsigned long long)(p->first_omitted - 1));
}

/* The shown events of plan `p` as text, the notice of what was left out where it was. */
static void write_text(const struct item *items, const size_t *sel, size_t n, const struct plan *p, strbuf_t *out)
{
    struct text_state ts = {out, -1};
    for (size_t i = 0; i < n; i++) {
        if (i == p->front + (size_t)p->cut_on && p->omitted_events > 0) {
            if (ts.open >= 0)
                strbuf_puts(out, "\n");
            ts.open = -1;
            write_omitted_text(out, p);
            i = p->back - 1;
            continue;
        }
        write_event_text(&ts, &items[sel[i]], p->cut_on && i == p->front, p->cut);
    }
    if (ts.open >= 0)
        strbuf_puts(out, "\n");
}

/* The output array of structuredContent under plan `p`. */
static void write_array(const struct item *items, const size_t *sel, size_t n, const struct plan *p, strbuf_t *out)
{
    int first = 1;
    strbuf_puts(out, "[");
    for (size_t i = 0; i < n; i++) {
        if (i >= p->front + (size_t)p->cut_on && i < p->back)
            continue;
        if (!first)
            strbuf_puts(out, ",");
        write_event_json(out, &items[sel[i]], p->cut_on && i == p->front, p->cut);
        first = 0;
    }
    strbuf_puts(out, "]");
}

/* Counts the line events (whole lines: a partial piece is counted with the piece that ends it). */
static size_t count_lines(const struct item *items, const size_t *sel, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += items[sel[i]].kind <= K_ERR && !items[sel[i]].partial;
    return c;
}

/* The selection: which events head / tail / grep keep (line events only; other events, but ready, always). */
struct selection {
    size_t *sel, n;
    uint64_t grep_stopped_at; /* the first event grep did not scan (OUTPUT_GREP_MAX_SCAN), 0 = all scanned */
    size_t matched;
};

/* grep over the line events: each matching line is kept (pieces of a partial line each tested on their own). */
static void select_grep(const struct item *items, size_t n, const regex_t *re, struct selection *s)
{
    size_t scanned = 0;
    for (size_t i = 0; i < n; i++) {
        const struct item *it = &items[i];
        if (it->kind == K_READY)
            continue;
        if (it->kind == K_OTHER) {
            s->sel[s->n++] = i;
            continue;
        }
        if (s->grep_stopped_at != 0)
            continue;
        if (scanned + it->data_len > OUTPUT_GREP_MAX_SCAN) {
            s->grep_stopped_at = it->ev->id;
            continue;
        }
        scanned += it->data_len;
        cJSON *o = cJSON_ParseWithLength(it->ev->json, it->ev->len);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "data");
        if (cJSON_IsString(d) && regexec(re, d->valuestring, 0, NULL, 0) == 0) {
            s->sel[s->n++] = i;
            s->matched++;
        }
        cJSON_Delete(o);
    }
}

/* Keeps the first `head` or the last `tail` line events of the selection (others stay). */
static void select_ends(const struct item *items, struct selection *s, long head, long tail)
{
    size_t lines = 0, total = 0, k = 0;
    for (size_t i = 0; i < s->n; i++)
        total += items[s->sel[i]].kind <= K_ERR;
    for (size_t i = 0; i < s->n; i++) {
        int line = items[s->sel[i]].kind <= K_ERR;
        int keep = !line || (head > 0 && lines < (size_t)head) || (tail > 0 && lines + (size_t)tail >= total);
        lines += line;
        if (keep)
            s->sel[k++] = s->sel[i];
    }
    s->n = k;
}

/* Builds the selection of query `q` over `items`. */
static void select_events(const struct item *items, size_t n, const output_query_t *q, struct selection *s)
{
    s->sel = xcalloc(n + 1, sizeof(size_t));
    if (q->grep != NULL) {
        select_grep(items, n, q->grep, s);
    } else {
        int filtered = q->head > 0 || q->tail > 0;
        for (size_t i = 0; i < n; i++)
            if (!filtered || items[i].kind != K_READY)
                s->sel[s->n++] = i;
    }
    if (q->head > 0 || q->tail > 0)
        select_ends(items, s, q->head, q->tail);
}

/* structuredContent's `truncated` object for plan `p`. */
static void write_truncated_json(strbuf_t *out, const struct plan *p)
{
    strbuf_printf(out,
                  ",\"truncated\":{\"omitted_events\":%zu,\"omitted_bytes\":%zu,\"first_omitted_event_id\":\"%llu\","
                  "\"last_omitted_event_id\":\"%llu\",\"hint\":\"get_execution_output with last_event_id=\\\"%llu\\\" "
                  "and head, tail or grep reads what was left out\"}",
                  p->omitted_events, p->omitted_bytes, (unsigned long long)p->first_omitted,
                  (unsigned long long)p->last_omitted, (unsigned long long)(p->first_omitted - 1));
}

/* Appends `,"key":"value"` when `value` is not NULL. */
static void put_optional(strbuf_t *out, const char *key, const char *value)
{
    if (value != NULL) {
        strbuf_printf(out, ",\"%s\":", key);
        strbuf_json_cstr(out, value);
    }
}

/* structuredContent: the fields in 0.4.0's order, then what is new (only when there is something to say). */
static void write_structured(const output_view_t *v, const output_query_t *q, const struct item *items,
                             const struct selection *s, const struct plan *p, strbuf_t *out)
{
    strbuf_puts(out, "{\"execution_id\":");
    strbuf_json_cstr(out, v->execution_id);
    strbuf_puts(out, ",\"status\":");
    strbuf_json_cstr(out, v->status);
    strbuf_printf(out, ",\"exit_code\":%s,\"output\":", v->exit_code_json);
    write_array(items, s->sel, s->n, p, out);
    strbuf_printf(out, ",\"dropped_events\":%llu", (unsigned long long)v->dropped_events);
    put_optional(out, "last_event_id", v->last_event_id);
    put_optional(out, "source", v->source);
    put_optional(out, "workspace_id", v->workspace_id);
    put_optional(out, "message", v->message);
    if (p->omitted_events > 0 || p->cut_on)
        write_truncated_json(out, p);
    if (q->grep != NULL || q->head > 0 || q->tail > 0) {
        strbuf_printf(out, ",\"selection\":{\"lines\":%zu", count_lines(items, s->sel, s->n));
        if (s->grep_stopped_at != 0)
            strbuf_printf(out, ",\"grep_stopped_at_event_id\":\"%llu\"", (unsigned long long)s->grep_stopped_at);
        strbuf_puts(out, "}");
    }
    strbuf_puts(out, "}");
}

/* The compact text's header line (and the message and grep notes under it). */
static void write_header(const output_view_t *v, const struct item *items, const struct selection *s,
                         const struct plan *p, double dur, strbuf_t *out)
{
    size_t lines = count_lines(items, s->sel, s->n);
    strbuf_printf(out, "status=%s exit_code=%s", v->status, v->exit_code_json);
    if (dur >= 0)
        strbuf_printf(out, " duration_ms=%.0f", dur);
    strbuf_printf(out, " execution_id=%s", v->execution_id);
    if (v->workspace_id != NULL)
        strbuf_printf(out, " workspace_id=%s", v->workspace_id);
    if (v->last_event_id != NULL)
        strbuf_printf(out, " last_event_id=%s", v->last_event_id);
    strbuf_printf(out, " lines_shown=%zu lines_omitted=%zu", lines - p->omitted_lines, p->omitted_lines);
    if (v->dropped_events > 0)
        strbuf_printf(out, " dropped_events=%llu", (unsigned long long)v->dropped_events);
    if (v->source != NULL)
        strbuf_printf(out, " source=%s", v->source);
    strbuf_puts(out, "\n");
    if (v->message != NULL)
        strbuf_printf(out, "~ %s\n", v->message);
    if (s->grep_stopped_at != 0)
        strbuf_printf(out, "~ [grep scanned %u bytes and stopped before event %llu: continue with last_event_id=\"%llu\"]\n",
                      OUTPUT_GREP_MAX_SCAN, (unsigned long long)s->grep_stopped_at,
                      (unsigned long long)(s->grep_stopped_at - 1));
}

void output_render(const output_view_t *v, const output_query_t *q, strbuf_t *structured, strbuf_t *text)
{
    struct item *items = xcalloc(v->n_events + 1, sizeof(*items));
    double dur = -1;
    for (size_t i = 0; i < v->n_events; i++)
        scan_item(&v->events[i], &items[i], &dur);
    struct selection s = {0};
    select_events(items, v->n_events, q, &s);
    struct plan ps, pt;
    size_t budget = q->max_chars > 2 * OUTPUT_ENVELOPE ? q->max_chars - OUTPUT_ENVELOPE : q->max_chars / 2;
    plan_fit(items, s.sel, s.n, budget, 1, &ps);
    write_structured(v, q, items, &s, &ps, structured);
    if (q->text_json) {
        strbuf_append(text, structured->data, structured->len);
    } else {
        plan_fit(items, s.sel, s.n, budget, 0, &pt);
        write_header(v, items, &s, &pt, dur, text);
        write_text(items, s.sel, s.n, &pt, text);
    }
    free(s.sel);
    free(items);
}

/* An optional line count argument: a whole number from 1 to 10,000,000; 0 when absent. */
static int get_count(const cJSON *args, const char *name, long *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    *out = 0;
    if (v == NULL || cJSON_IsNull(v))
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long)v->valuedouble || v->valuedouble < 1 ||
        v->valuedouble > 10000000) {
        snprintf(err, errlen, "'%s' must be an integer between 1 and 10000000", name);
        return -1;
    }
    *out = (long)v->valuedouble;
    return 0;
}

/* grep's pattern, compiled as a POSIX extended regex (no subexpression reports: matching only). */
static int get_grep(const cJSON *args, output_query_t *q, char *err, size_t errlen)
{
    const cJSON *g = cJSON_GetObjectItemCaseSensitive(args, "grep");
    if (g == NULL || cJSON_IsNull(g))
        return 0;
    if (!cJSON_IsString(g) || g->valuestring[0] == '\0' || strlen(g->valuestring) > OUTPUT_GREP_MAX_PATTERN) {
        snprintf(err, errlen, "'grep' must be a non-empty POSIX extended regular expression of at most %d characters",
                 OUTPUT_GREP_MAX_PATTERN);
        return -1;
    }
    regex_t *re = xcalloc(1, sizeof(*re));
    int rc = regcomp(re, g->valuestring, REG_EXTENDED | REG_NOSUB);
    if (rc != 0) {
        char why[160];
        regerror(rc, re, why, sizeof(why));
        snprintf(err, errlen, "'grep' is not a valid POSIX extended regular expression: %s", why);
        free(re);
        return -1;
    }
    q->grep = re;
    return 0;
}

int output_query_parse(const void *argsv, output_query_t *q, char *err, size_t errlen)
{
    const cJSON *args = argsv;
    const cJSON *m = cJSON_GetObjectItemCaseSensitive(args, "max_output_chars");
    memset(q, 0, sizeof(*q));
    q->max_chars = OUTPUT_DEFAULT_CHARS < config.max_result_chars ? OUTPUT_DEFAULT_CHARS : (size_t)config.max_result_chars;
    q->text_json = config.text_json;
    if (m != NULL && !cJSON_IsNull(m)) {
        if (!cJSON_IsNumber(m) || m->valuedouble != (double)(long)m->valuedouble || m->valuedouble < 200 ||
            m->valuedouble > config.max_result_chars) {
            snprintf(err, errlen, "'max_output_chars' must be an integer between 200 and %d (the server's --max-result-chars)",
                     config.max_result_chars);
            return -1;
        }
        q->max_chars = (size_t)m->valuedouble;
    }
    if (get_count(args, "head", &q->head, err, errlen) != 0 || get_count(args, "tail", &q->tail, err, errlen) != 0)
        return -1;
    if (q->head > 0 && q->tail > 0) {
        snprintf(err, errlen, "give 'head' or 'tail', not both");
        return -1;
    }
    return get_grep(args, q, err, errlen);
}

void output_query_free(output_query_t *q)
{
    if (q->grep != NULL) {
        regfree(q->grep);
        free(q->grep);
    }
    q->grep = NULL;
}
