/*
 * output: see output.h. Every event carries its kind, data length and running
 * totals (core/events.h), so the selection is a list of index ranges (head and
 * tail cut where the running line count says; non-line events found by binary
 * search on it), the budget is spent walking from the front and from the back,
 * and what is left out is a difference of totals. Only the events shown are
 * parsed, to be written (non-line events also for their note's length); grep
 * alone parses the lines it tests.
 */
#include "mcp/output.h"
#include "core/config.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { K_OUT = EVENTS_STDOUT, K_ERR = EVENTS_STDERR, K_READY = EVENTS_READY, K_OTHER = EVENTS_OTHER };


/* One event, as the formatter sees it. */
struct item {
    const event_t *ev;
    unsigned char kind, partial, esc; /* esc: a stdout line written with a leading '\' */
    size_t data_len; /* line events: the data's bytes */
    size_t note_len; /* other events: the text note's bytes */
};

/* A run of selected events: view indices [a, b). */
struct seg {
    size_t a, b;
};

/* The selection: which events head / tail / grep keep, as ascending runs; n events in all. */
struct selection {
    struct seg *segs;
    size_t nseg, cap, n;
    uint64_t grep_stopped_at; /* the first event grep did not scan (OUTPUT_GREP_MAX_SCAN), 0 = all scanned */
    size_t matched;
};

/* What one budget keeps of the selection: positions [0..front) and [back..n), position front cut to `cut` bytes when cut_on. */
struct plan {
    size_t front, back, cut;
    int cut_on;
    size_t omitted_events, omitted_bytes, omitted_lines;
    uint64_t first_omitted, last_omitted;
};

/* The i-th event of the view. */
static const event_t *at(const output_view_t *v, size_t i)
{
    return v->event_at != NULL ? v->event_at(v->src, i) : &v->events[i];
}

/* Data bytes, line events and whole lines of view events [a, b): a difference of running totals. */
static events_totals_t range_totals(const output_view_t *v, size_t a, size_t b)
{
    if (a >= b)
        return (events_totals_t){0, 0, 0};
    events_totals_t x = events_before(at(v, a)), y = events_after(at(v, b - 1));
    return (events_totals_t){y.data - x.data, y.lines - x.lines, y.wholes - x.wholes};
}

/* The first non-line event in [a, b), or b: a binary search on the running line count. */
static size_t next_other(const output_view_t *v, size_t a, size_t b)
{
    if (a >= b || range_totals(v, a, b).lines == b - a)
        return b;
    size_t lo = a, hi = b - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (range_totals(v, a, mid + 1).lines < mid + 1 - a)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

/* The index just after the k-th line event of [a, b) (1 <= k <= the line events there). */
static size_t after_kth_line(const output_view_t *v, size_t a, size_t b, uint64_t k)
{
    size_t lo = a, hi = b - 1;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (range_totals(v, a, mid + 1).lines >= k)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo + 1;
}

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

/* View event `i` as an item: line events from their info word; a non-line event is parsed for its note. */
static void load_item(const output_view_t *v, size_t i, struct item *it)
{
    const event_t *ev = at(v, i);
    memset(it, 0, sizeof(*it));
    it->ev = ev;
    it->kind = (unsigned char)EVENTS_KIND(ev);
    if (it->kind <= K_ERR) {
        it->data_len = EVENTS_DATA_LEN(ev);
        it->partial = (unsigned char)EVENTS_PARTIAL(ev);
        it->esc = it->kind == K_OUT && EVENTS_MARKER(ev);
    } else if (it->kind == K_OTHER) {
        cJSON *o = cJSON_ParseWithLength(ev->json, ev->len);
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
        strbuf_t n = {0};
        if (cJSON_IsString(type))
            note_text(o, type->valuestring, &n);
        it->note_len = n.len;
        strbuf_free(&n);
        cJSON_Delete(o);
    }
}

/* The exit event's duration_ms (the last exit event's), or -1: only the non-line events are looked at. */
static double exit_duration(const output_view_t *v)
{
    double dur = -1;
    for (size_t i = next_other(v, 0, v->n_events); i < v->n_events; i = next_other(v, i + 1, v->n_events)) {
        const event_t *ev = at(v, i);
        if (EVENTS_KIND(ev) != K_OTHER)
            continue;
        cJSON *o = cJSON_ParseWithLength(ev->json, ev->len);
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "type");
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "duration_ms");
        if (cJSON_IsString(t) && !strcmp(t->valuestring, "exit") && cJSON_IsNumber(d))
            dur = d->valuedouble;
        cJSON_Delete(o);
    }
    return dur;
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
    /* every piece counted as a line of its own (prefix and newline): an upper bound of what is written */
    return it->data_len + 1 + (it->kind == K_ERR ? 2 : it->esc);
}

/* ---------------------------------------------------------------- the selection */

/* Appends view events [a, b) to the selection (joined to the last run when they follow it). */
static void sel_add(struct selection *s, size_t a, size_t b)
{
    if (a >= b)
        return;
    s->n += b - a;
    if (s->nseg > 0 && s->segs[s->nseg - 1].b == a) {
        s->segs[s->nseg - 1].b = b;
        return;
    }
    if (s->nseg == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 8;
        struct seg *n = xcalloc(s->cap, sizeof(*n));
        if (s->nseg > 0)
            memcpy(n, s->segs, s->nseg * sizeof(*n));
        free(s->segs);
        s->segs = n;
    }
    s->segs[s->nseg++] = (struct seg){a, b};
}

/* Appends the non-line events of [a, b) but ready ones: what a filter keeps wherever it is. */
static void sel_add_others(const output_view_t *v, struct selection *s, size_t a, size_t b)
{
    for (size_t i = next_other(v, a, b); i < b; i = next_other(v, i + 1, b))
        if (EVENTS_KIND(at(v, i)) != K_READY)
            sel_add(s, i, i + 1);
}

/* Appends [a, b) without its ready events. */
static void sel_add_but_ready(const output_view_t *v, struct selection *s, size_t a, size_t b)
{
    size_t from = a;
    for (size_t i = next_other(v, a, b); i < b; i = next_other(v, i + 1, b))
        if (EVENTS_KIND(at(v, i)) == K_READY) {
            sel_add(s, from, i);
            from = i + 1;
        }
    sel_add(s, from, b);
}

/* The view index of selection position `pos`. */
static size_t pos_index(const struct selection *s, size_t pos)
{
    for (size_t k = 0; k < s->nseg; k++) {
        size_t len = s->segs[k].b - s->segs[k].a;
        if (pos < len)
            return s->segs[k].a + pos;
        pos -= len;
    }
    return SIZE_MAX;
}

/* Totals of selection positions [p0, p1). */
static events_totals_t sel_totals(const output_view_t *v, const struct selection *s, size_t p0, size_t p1)
{
    events_totals_t t = {0, 0, 0};
    size_t base = 0;
    for (size_t k = 0; k < s->nseg && base < p1; k++) {
        size_t len = s->segs[k].b - s->segs[k].a;
        size_t lo = p0 > base ? p0 : base, hi = p1 < base + len ? p1 : base + len;
        if (lo < hi) {
            events_totals_t r = range_totals(v, s->segs[k].a + lo - base, s->segs[k].a + hi - base);
            t.data += r.data;
            t.lines += r.lines;
            t.wholes += r.wholes;
        }
        base += len;
    }
    return t;
}

/* grep over the line events: each matching line is kept (pieces of a partial line each tested on their own). */
static void select_grep(const output_view_t *v, const regex_t *re, struct selection *s)
{
    size_t scanned = 0, n = v->n_events;
    for (size_t i = 0; i < n; i++) {
        const event_t *ev = at(v, i);
        if (!EVENTS_IS_LINE(ev)) {
            if (EVENTS_KIND(ev) != K_READY)
                sel_add(s, i, i + 1);
            continue;
        }
        if (scanned + EVENTS_DATA_LEN(ev) > OUTPUT_GREP_MAX_SCAN) {
            s->grep_stopped_at = ev->seq;
            sel_add_others(v, s, i + 1, n);
            return;
        }
        scanned += EVENTS_DATA_LEN(ev);
        cJSON *o = cJSON_ParseWithLength(ev->json, ev->len);
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "data");
        if (cJSON_IsString(d) && regexec(re, d->valuestring, 0, NULL, 0) == 0) {
            sel_add(s, i, i + 1);
            s->matched++;
        }
        cJSON_Delete(o);
    }
}

/*
 * Keeps the first `head` or the last `tail` line events of the selection (its
 * other events all stay): each run is kept whole, cut where the running line
 * count reaches the number, or reduced to its non-line events.
 */
static void select_ends(const output_view_t *v, struct selection *s, long head, long tail)
{
    uint64_t total = 0;
    for (size_t k = 0; k < s->nseg; k++)
        total += range_totals(v, s->segs[k].a, s->segs[k].b).lines;
    uint64_t keep = head > 0 ? (uint64_t)head : 0, skip = tail > 0 && total > (uint64_t)tail ? total - (uint64_t)tail : 0;
    struct selection out = {.grep_stopped_at = s->grep_stopped_at, .matched = s->matched};
    for (size_t k = 0; k < s->nseg; k++) {
        size_t a = s->segs[k].a, b = s->segs[k].b;
        uint64_t lines = range_totals(v, a, b).lines;
        uint64_t *left = head > 0 ? &keep : &skip;
        size_t c = *left >= lines ? b : *left > 0 ? after_kth_line(v, a, b, *left) : a;
        *left -= *left >= lines ? lines : *left;
        if (head > 0) { /* [a, c) kept, then only the non-line events */
            sel_add(&out, a, c);
            sel_add_others(v, &out, c, b);
        } else { /* the non-line events of [a, c), then [c, b) kept */
            sel_add_others(v, &out, a, c);
            sel_add(&out, c, b);
        }
    }
    free(s->segs);
    *s = out;
}

/* Builds the selection of query `q`: all events, or (filtered) the line events kept and the others but ready. */
static void select_events(const output_view_t *v, const output_query_t *q, struct selection *s)
{
    if (q->grep != NULL)
        select_grep(v, q->grep, s);
    else if (q->head > 0 || q->tail > 0)
        sel_add_but_ready(v, s, 0, v->n_events);
    else
        sel_add(s, 0, v->n_events);
    if (q->head > 0 || q->tail > 0)
        select_ends(v, s, q->head, q->tail);
}

/* ---------------------------------------------------------------- the budget */

/* A walk over selection positions, forwards or backwards. */
struct walk {
    const struct selection *s;
    size_t k, i; /* run and view index of the next event */
};

/* The view index of the next event forwards, or SIZE_MAX at the end. */
static size_t walk_next(struct walk *w)
{
    while (w->k < w->s->nseg && w->i >= w->s->segs[w->k].b)
        if (++w->k < w->s->nseg)
            w->i = w->s->segs[w->k].a;
    return w->k < w->s->nseg ? w->i++ : SIZE_MAX;
}

/* A walk from selection position `pos` forwards. */
static struct walk walk_at(const struct selection *s, size_t pos)
{
    struct walk w = {s, 0, s->nseg > 0 ? s->segs[0].a : 0};
    for (; w.k < s->nseg && pos >= s->segs[w.k].b - s->segs[w.k].a; w.k++)
        pos -= s->segs[w.k].b - s->segs[w.k].a;
    if (w.k < s->nseg)
        w.i = s->segs[w.k].a + pos;
    return w;
}

/* The first `n` bytes of `s` (n <= its length), shortened to a UTF-8 character boundary. */
static size_t utf8_cut(const char *s, size_t n)
{
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

/* The bytes JSON takes for data byte `c` (cJSON's escapes: \" \\ \n ... and \u00XX for other controls). */
static size_t json_width(unsigned char c)
{
    return c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' || c == '\t' ? 2 : c < 0x20 ? 6 : 1;
}

/*
 * The bytes a cut line keeps of its data: as many as take at most `room` in
 * the text with the line's prefix (`structured` = 0), or whose JSON escapes,
 * with the rest of the event's JSON and its "omitted_bytes" member, take at
 * most `room` (structured); never more than it has, ending on a character
 * boundary; 0 when not one byte fits (the line is then left out whole).
 * The cut is decided here, once, so that what is shown and what `truncated`
 * counts as omitted are the same bytes.
 */
static size_t cut_bytes(const struct item *it, size_t room, int structured)
{
    cJSON *o = cJSON_ParseWithLength(it->ev->json, it->ev->len);
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "data");
    const char *s = cJSON_IsString(d) && strlen(d->valuestring) == it->data_len ? d->valuestring : NULL;
    size_t prefix = it->kind == K_ERR ? 2 : it->esc, text_room = room > prefix ? room - prefix : 0;
    size_t n = text_room < it->data_len ? text_room : it->data_len;
    if (structured && s != NULL) {
        size_t whole = 0, w = 0;
        for (size_t i = 0; i < it->data_len; i++)
            whole += json_width((unsigned char)s[i]);
        size_t fixed = it->ev->len > whole ? it->ev->len - whole : 0;
        size_t left = room > fixed + 64 ? room - fixed - 64 : 0; /* 64: ,"omitted_bytes":N and a reprint's slack */
        for (n = 0; n < it->data_len && w + json_width((unsigned char)s[n]) <= left; n++)
            w += json_width((unsigned char)s[n]);
    }
    size_t keep = s != NULL ? utf8_cut(s, n) : n;
    cJSON_Delete(o);
    return keep;
}

/* Counts what a plan leaves out (positions [front + cut_on, back)) and what the cut took: differences of totals. */
static void plan_count(const output_view_t *v, const struct selection *s, struct plan *p, size_t front_data_len)
{
    size_t from = p->front + (size_t)p->cut_on;
    if (from < p->back) {
        events_totals_t t = sel_totals(v, s, from, p->back);
        p->omitted_events = p->back - from;
        p->omitted_bytes = (size_t)t.data;
        p->omitted_lines = t.wholes;
        p->first_omitted = at(v, pos_index(s, from))->seq;
        p->last_omitted = at(v, pos_index(s, p->back - 1))->seq;
    }
    if (p->cut_on)
        p->omitted_bytes += front_data_len - p->cut;
}

/*
 * The back of a plan: from the last event backwards while it fits in what
 * `used` leaves of `budget`, down to position f at most. Returns the back.
 */
static size_t plan_back(const output_view_t *v, const struct selection *s, size_t f, size_t budget, int structured,
                        size_t *used)
{
    size_t b = s->n;
    struct item it;
    for (size_t k = s->nseg; k-- > 0 && b > f;)
        for (size_t i = s->segs[k].b; i-- > s->segs[k].a && b > f;) {
            load_item(v, i, &it);
            if (*used + cost(&it, structured) > budget)
                return b;
            *used += cost(&it, structured);
            b--;
        }
    return b;
}

/*
 * Fits the selection into `budget`: everything when it fits; otherwise the
 * first events up to half of it, the last ones in what is left, and a first
 * line too long for half of it cut (a huge single line still shows its start).
 * The walk from the front stops once the budget is spent: the cost follows
 * the result.
 */
static void plan_fit(const output_view_t *v, const struct selection *s, size_t budget, int structured, struct plan *p)
{
    memset(p, 0, sizeof(*p));
    p->front = p->back = s->n;
    size_t total = 0, used = 0, f = 0, idx;
    int growing = 1;
    struct item it, first_out = {0};
    struct walk w = walk_at(s, 0);
    while ((idx = walk_next(&w)) != SIZE_MAX) {
        load_item(v, idx, &it);
        size_t c = cost(&it, structured);
        if (growing && used + c <= budget / 2) {
            used += c;
            f++;
        } else if (growing) {
            growing = 0;
            first_out = it;
        }
        total += c;
        if (total > budget)
            break;
    }
    if (total <= budget)
        return;
    size_t front_used = used;
    size_t b = plan_back(v, s, f, budget, structured, &used);
    p->front = f;
    p->back = b;
    if (f < b && first_out.kind <= K_ERR && front_used < budget / 4) { /* a line too long for half the budget */
        size_t avail = budget > used ? budget - used : 0;
        if (avail > budget / 2)
            avail = budget / 2;
        if (cost(&first_out, structured) <= avail) { /* what the back left is enough for it whole */
            p->front = f + 1;
        } else {
            p->cut = cut_bytes(&first_out, avail, structured);
            p->cut_on = p->cut > 0;
        }
    }
    plan_count(v, s, p, first_out.data_len);
}

/* ---------------------------------------------------------------- writing */

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
    if (ts->open >= 0 && ts->open != it->kind && (it->kind <= K_ERR || it->note_len > 0)) {
        /* another stream or a note interrupts an unfinished line (ready and exit write nothing: the pieces stay joined) */
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
static void write_text(const output_view_t *v, const struct selection *s, const struct plan *p, strbuf_t *out)
{
    struct text_state ts = {out, -1};
    size_t from = p->front + (size_t)p->cut_on, idx;
    struct walk w = walk_at(s, 0);
    struct item it;
    for (size_t pos = 0; (idx = walk_next(&w)) != SIZE_MAX; pos++) {
        if (pos == from && p->omitted_events > 0) {
            if (ts.open >= 0)
                strbuf_puts(out, "\n");
            ts.open = -1;
            write_omitted_text(out, p);
            pos = p->back;
            w = walk_at(s, pos);
            if ((idx = walk_next(&w)) == SIZE_MAX)
                break;
        }
        load_item(v, idx, &it);
        write_event_text(&ts, &it, p->cut_on && pos == p->front, p->cut);
    }
    if (ts.open >= 0)
        strbuf_puts(out, "\n");
}

/* The output array of structuredContent under plan `p`. */
static void write_array(const output_view_t *v, const struct selection *s, const struct plan *p, strbuf_t *out)
{
    size_t from = p->front + (size_t)p->cut_on, idx;
    struct walk w = walk_at(s, 0);
    struct item it;
    int first = 1;
    strbuf_puts(out, "[");
    for (size_t pos = 0; (idx = walk_next(&w)) != SIZE_MAX; pos++) {
        if (pos == from && from < p->back) {
            pos = p->back;
            w = walk_at(s, pos);
            if ((idx = walk_next(&w)) == SIZE_MAX)
                break;
        }
        if (!first)
            strbuf_puts(out, ",");
        first = 0;
        load_item(v, idx, &it);
        write_event_json(out, &it, p->cut_on && pos == p->front, p->cut);
    }
    strbuf_puts(out, "]");
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
static void write_structured(const output_view_t *v, const output_query_t *q, const struct selection *s,
                             const struct plan *p, size_t lines, strbuf_t *out)
{
    strbuf_puts(out, "{\"execution_id\":");
    strbuf_json_cstr(out, v->execution_id);
    strbuf_puts(out, ",\"status\":");
    strbuf_json_cstr(out, v->status);
    strbuf_printf(out, ",\"exit_code\":%s,\"output\":", v->exit_code_json);
    write_array(v, s, p, out);
    strbuf_printf(out, ",\"dropped_events\":%llu", (unsigned long long)v->dropped_events);
    put_optional(out, "last_event_id", v->last_event_id);
    put_optional(out, "source", v->source);
    put_optional(out, "workspace_id", v->workspace_id);
    put_optional(out, "message", v->message);
    if (p->omitted_events > 0 || p->cut_on)
        write_truncated_json(out, p);
    if (q->grep != NULL || q->head > 0 || q->tail > 0) {
        strbuf_printf(out, ",\"selection\":{\"lines\":%zu", lines);
        if (s->grep_stopped_at != 0)
            strbuf_printf(out, ",\"grep_stopped_at_event_id\":\"%llu\"", (unsigned long long)s->grep_stopped_at);
        strbuf_puts(out, "}");
    }
    strbuf_puts(out, "}");
}

/* The compact text's header line (and the message and grep notes under it); `lines`: whole lines selected. */
static void write_header(const output_view_t *v, const struct selection *s, const struct plan *p, size_t lines, double dur,
                         strbuf_t *out)
{
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

/* The widest "~ [N more bytes of this line omitted]" note of a cut line, and the newline before it. */
#define OUTPUT_CUT_NOTE_MAX 64

/* What the answer's other parts are given at least: the same budget for answers that differ only in their fields. */
#define OUTPUT_ENVELOPE 600

/*
 * What the answer's other parts take of max_output_chars: its structured
 * fields or its text's header, message and notices, written with the
 * omitted figures at their widest, and at least OUTPUT_ENVELOPE (so a local
 * and a remote read of the same events, whose fields differ by a few
 * characters, leave out the same ones). What is left is the output's budget.
 */
static size_t envelope(const output_view_t *v, const output_query_t *q, const struct selection *s, double dur,
                       int structured)
{
    struct plan wide = {.omitted_events = SIZE_MAX, .omitted_bytes = SIZE_MAX, .omitted_lines = SIZE_MAX / 16,
                        .first_omitted = UINT64_MAX, .last_omitted = UINT64_MAX};
    struct selection none = {.grep_stopped_at = s->grep_stopped_at};
    strbuf_t b = {0};
    if (structured) {
        write_structured(v, q, &none, &wide, SIZE_MAX, &b);
    } else {
        write_header(v, s, &wide, SIZE_MAX, dur, &b);
        write_omitted_text(&b, &wide);
    }
    size_t n = b.len + (structured ? 0 : OUTPUT_CUT_NOTE_MAX);
    strbuf_free(&b);
    return n > OUTPUT_ENVELOPE ? n : OUTPUT_ENVELOPE;
}

/* The output's budget in max_chars once the envelope is taken; a budget too small for it gives half to the output. */
static size_t budget_of(size_t max_chars, size_t env)
{
    return max_chars >= 2 * env ? max_chars - env : max_chars / 2;
}

void output_render(const output_view_t *v, const output_query_t *q, strbuf_t *structured, strbuf_t *text)
{
    struct selection s = {0};
    select_events(v, q, &s);
    size_t lines = sel_totals(v, &s, 0, s.n).wholes;
    double dur = q->text_json ? -1 : exit_duration(v);
    struct plan ps, pt;
    plan_fit(v, &s, budget_of(q->max_chars, envelope(v, q, &s, dur, 1)), 1, &ps);
    write_structured(v, q, &s, &ps, lines, structured);
    if (q->text_json) {
        strbuf_append(text, structured->data, structured->len);
    } else {
        plan_fit(v, &s, budget_of(q->max_chars, envelope(v, q, &s, dur, 0)), 0, &pt);
        write_header(v, &s, &pt, lines, dur, text);
        write_text(v, &s, &pt, text);
    }
    free(s.segs);
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
