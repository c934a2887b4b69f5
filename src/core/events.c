/*
 * events: the per-execution event ring, line splitting and UTF-8 repair.
 */
#include "core/events.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void events_init(event_log_t *log, size_t max_events, size_t max_bytes)
{
    memset(log, 0, sizeof(*log));
    log->next_seq = 1;
    log->max_events = max_events;
    log->max_bytes = max_bytes;
}

void events_free(event_log_t *log)
{
    for (size_t i = 0; i < log->count; i++)
        free(log->ring[(log->head + i) % log->cap].json);
    free(log->ring);
    strbuf_free(&log->line[0].buf);
    strbuf_free(&log->line[1].buf);
    log->ring = NULL;
    log->count = log->cap = 0;
    log->bytes = 0;
}

static void drop_oldest(event_log_t *log)
{
    event_t *ev = &log->ring[log->head];
    log->bytes -= ev->len + EVENTS_EVENT_OVERHEAD;
    free(ev->json);
    ev->json = NULL;
    log->head = (log->head + 1) % log->cap;
    log->count--;
    log->dropped++;
}

/* Grows the ring (doubling, up to max_events) when full. */
static void ring_make_room(event_log_t *log)
{
    if (log->count < log->cap)
        return;
    if (log->cap >= log->max_events) {
        drop_oldest(log);
        return;
    }
    size_t ncap = log->cap == 0 ? 16 : log->cap * 2;
    if (ncap > log->max_events)
        ncap = log->max_events;
    event_t *n = xcalloc(ncap, sizeof(*n));
    for (size_t i = 0; i < log->count; i++)
        n[i] = log->ring[(log->head + i) % log->cap];
    free(log->ring);
    log->ring = n;
    log->cap = ncap;
    log->head = 0;
}

/* An event's info word (see event_t): kind, partial, marker and data bytes. */
static uint32_t make_info(int kind, int partial, const char *data, size_t data_len)
{
    uint32_t info = (uint32_t)kind << 28;
    if (kind > EVENTS_STDERR)
        return info;
    info |= (uint32_t)(data_len < EVENTS_DATA_MAX ? data_len : EVENTS_DATA_MAX);
    info |= partial ? 1u << 30 : 0;
    info |= data_len > 0 && (data[0] == '!' || data[0] == '~' || data[0] == '\\') ? 1u << 31 : 0;
    return info;
}

events_totals_t events_after(const event_t *ev)
{
    return (events_totals_t){ev->data_sum, ev->line_sum, ev->whole_sum};
}

events_totals_t events_before(const event_t *ev)
{
    int line = EVENTS_IS_LINE(ev);
    return (events_totals_t){ev->data_sum - (line ? EVENTS_DATA_LEN(ev) : 0), ev->line_sum - (uint32_t)line,
                             ev->whole_sum - (uint32_t)(line && !EVENTS_PARTIAL(ev))};
}

/* Advances running totals `t` by event `ev` (its info set) and stores them in it. */
static void add_totals(event_t *ev, events_totals_t *t)
{
    if (EVENTS_IS_LINE(ev)) {
        t->data += EVENTS_DATA_LEN(ev);
        t->lines++;
        t->wholes += !EVENTS_PARTIAL(ev);
    }
    ev->data_sum = t->data;
    ev->line_sum = t->lines;
    ev->whole_sum = t->wholes;
}

void events_index(event_t *ev, uint32_t info, events_totals_t *t)
{
    ev->info = info;
    add_totals(ev, t);
}

/* Classifies a type name. */
static int kind_of(const char *type)
{
    return !strcmp(type, "stdout") ? EVENTS_STDOUT
           : !strcmp(type, "stderr") ? EVENTS_STDERR
           : !strcmp(type, "ready")  ? EVENTS_READY
                                     : EVENTS_OTHER;
}

/* The info word of an event object (no event object: an OTHER event). */
uint32_t events_describe(const cJSON *o)
{
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(o, "type");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data");
    int kind = cJSON_IsString(type) ? kind_of(type->valuestring) : EVENTS_OTHER;
    if (kind <= EVENTS_STDERR && cJSON_IsString(data))
        return make_info(kind, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "partial")), data->valuestring,
                         strlen(data->valuestring));
    return make_info(kind, 0, "", 0);
}

/*
 * Stores an event's serialized JSON (taken over) under `seq`, applying the caps.
 * The buffer is first cut to its length: an escape buffer is reserved for the
 * worst case (6 bytes per input byte), and what is counted must be what is held.
 */
static const event_t *store(event_log_t *log, uint64_t seq, char *json, size_t len, uint32_t info)
{
    char *exact = realloc(json, len + 1);
    if (exact != NULL)
        json = exact;
    ring_make_room(log);
    event_t *ev = &log->ring[(log->head + log->count) % log->cap];
    ev->seq = seq;
    ev->json = json;
    ev->len = (uint32_t)len;
    ev->info = info;
    add_totals(ev, &log->totals);
    log->count++;
    log->bytes += len + EVENTS_EVENT_OVERHEAD;
    while (log->bytes > log->max_bytes && log->count > 1)
        drop_oldest(log);
    return log->count > 0 && log->ring[(log->head + log->count - 1) % log->cap].seq == seq
               ? &log->ring[(log->head + log->count - 1) % log->cap]
               : NULL;
}

/* The event timestamp; the formatted second is cached (a flood shares it). */
static void timestamp(char *buf, size_t len)
{
    static uint64_t cached_sec = UINT64_MAX;
    static char cached[32];
    uint64_t ms = util_wall_ms();
    if (ms / 1000 != cached_sec) {
        cached_sec = ms / 1000;
        util_iso8601(cached_sec * 1000, cached, sizeof(cached));
        cached[19] = '\0'; /* "YYYY-MM-DDTHH:MM:SS" */
    }
    snprintf(buf, len, "%s.%03dZ", cached, (int)(ms % 1000));
}

const event_t *events_append(event_log_t *log, const char *type, cJSON *fields)
{
    char id[24], ts[32];
    uint64_t seq = log->next_seq++;
    snprintf(id, sizeof(id), "%" PRIu64, seq);
    timestamp(ts, sizeof(ts));
    cJSON *o = cJSON_CreateObject();
    cJSON_AddItemToObject(o, "event_id", cJSON_CreateString(id));
    cJSON_AddItemToObject(o, "type", cJSON_CreateString(type));
    cJSON_AddItemToObject(o, "ts", cJSON_CreateString(ts));
    if (fields != NULL) {
        cJSON *f;
        while ((f = fields->child) != NULL) {
            cJSON_DetachItemViaPointer(fields, f);
            cJSON_AddItemToObject(o, f->string, f); /* keeps f->string (cJSON re-sets the key) */
        }
    }
    uint32_t info = events_describe(o);
    char *json = util_json_print(o);
    return store(log, seq, json, strlen(json), info);
}

void events_utf8_sanitize(const char *s, size_t len, strbuf_t *out)
{
    util_utf8_sanitize(s, len, out);
}

/*
 * One output line becomes one event. This is the hot path of a flood, so the
 * JSON is written directly (same shape as events_append: event_id, type, ts,
 * data[, partial]); only the string escaping goes through cJSON. It is built
 * in scratch buffers reused from line to line (loop thread only) and stored as
 * an exact-size copy: an escape buffer shrunk in place would leave a hole of
 * up to 5 bytes per data byte between held events.
 */
static void emit_line(event_log_t *log, int stream, const char *data, size_t len, int partial, events_emit_cb emit, void *arg)
{
    static strbuf_t clean, json;
    clean.len = json.len = 0;
    events_utf8_sanitize(data, len, &clean);
    strbuf_reserve(&clean, 0);
    clean.data[clean.len] = '\0';
    char ts[32];
    timestamp(ts, sizeof(ts));
    uint64_t seq = log->next_seq++;
    strbuf_printf(&json, "{\"event_id\":\"%" PRIu64 "\",\"type\":\"%s\",\"ts\":\"%s\",\"data\":", seq,
                  stream == 0 ? "stdout" : "stderr", ts);
    strbuf_json_cstr(&json, clean.data);
    strbuf_puts(&json, partial ? ",\"partial\":true}" : "}");
    char *j = xmalloc(json.len + 1);
    memcpy(j, json.data, json.len + 1);
    const event_t *ev = store(log, seq, j, json.len, make_info(stream, partial, clean.data, clean.len));
    if (ev != NULL && emit != NULL)
        emit(arg, ev);
    /* a scratch buffer grown by one huge line is not kept */
    if (clean.cap > 2 * EVENTS_MAX_LINE)
        strbuf_free(&clean);
    if (json.cap > 8 * EVENTS_MAX_LINE)
        strbuf_free(&json);
}

/*
 * Where to cut a too-long line: at `len`, unless s[len] continues a UTF-8
 * sequence; then just before that sequence's lead byte. s has > len bytes.
 */
static size_t cut_point(const char *s, size_t len)
{
    size_t i = len;
    while (i > 0 && len - i < 3 && ((unsigned char)s[i] & 0xC0) == 0x80)
        i--;
    return i == 0 || ((unsigned char)s[i] & 0xC0) == 0x80 ? len : i;
}

void events_feed(event_log_t *log, int stream, const char *data, size_t len, events_emit_cb emit, void *arg)
{
    strbuf_t *pend = &log->line[stream].buf;
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t take = nl != NULL ? (size_t)(nl - data) : len;
        if (pend->len == 0 && nl != NULL && take <= EVENTS_MAX_LINE) {
            emit_line(log, stream, data, take, 0, emit, arg); /* fast path: a whole line in place */
        } else {
            strbuf_append(pend, data, take);
            while (pend->len > EVENTS_MAX_LINE) {
                size_t cut = cut_point(pend->data, EVENTS_MAX_LINE);
                emit_line(log, stream, pend->data, cut, 1, emit, arg);
                memmove(pend->data, pend->data + cut, pend->len - cut);
                pend->len -= cut;
            }
            if (nl != NULL) {
                emit_line(log, stream, pend->data, pend->len, 0, emit, arg);
                pend->len = 0;
            }
        }
        if (nl == NULL)
            break;
        data += take + 1;
        len -= take + 1;
    }
}

void events_flush(event_log_t *log, int stream, events_emit_cb emit, void *arg)
{
    strbuf_t *pend = &log->line[stream].buf;
    if (pend->len > 0)
        emit_line(log, stream, pend->data, pend->len, 0, emit, arg);
    strbuf_free(pend);
}

long events_resume_index(const event_log_t *log, const char *last_event_id, char *err, size_t errlen)
{
    if (log->released) {
        snprintf(err, errlen,
                 "The output of this execution was released to keep the server's retained output under "
                 "--max-retained-bytes (oldest finished runs first); its status is still held");
        return -1;
    }
    if (last_event_id == NULL || *last_event_id == '\0')
        return 0;
    char *end;
    unsigned long long id = strtoull(last_event_id, &end, 10);
    if (*end != '\0' || last_event_id[0] < '0' || last_event_id[0] > '9') {
        snprintf(err, errlen, "Invalid last_event_id '%.40s': event ids are decimal numbers", last_event_id);
        return -1;
    }
    if (id >= log->next_seq) {
        snprintf(err, errlen, "Invalid last_event_id '%.40s': the newest event id is %" PRIu64, last_event_id,
                 log->next_seq - 1);
        return -1;
    }
    uint64_t oldest = log->count > 0 ? log->ring[log->head].seq : log->next_seq;
    if (id + 1 < oldest) {
        snprintf(err, errlen,
                 "last_event_id %.40s was dropped by the output cap; the oldest event still held is %" PRIu64
                 " (%" PRIu64 " events dropped)",
                 last_event_id, oldest, log->dropped);
        return -1;
    }
    return (long)(id + 1 - oldest);
}

/* A finished log no longer grows: its ring keeps only the slots in use. */
void events_compact(event_log_t *log)
{
    if (log->count == log->cap)
        return;
    event_t *n = log->count > 0 ? xcalloc(log->count, sizeof(*n)) : NULL;
    for (size_t i = 0; i < log->count; i++)
        n[i] = log->ring[(log->head + i) % log->cap];
    free(log->ring);
    log->ring = n;
    log->cap = log->count;
    log->head = 0;
}

size_t events_release(event_log_t *log)
{
    size_t freed = log->bytes;
    uint64_t next = log->next_seq, dropped = log->dropped;
    events_totals_t totals = log->totals;
    size_t max_events = log->max_events, max_bytes = log->max_bytes;
    events_free(log);
    events_init(log, max_events, max_bytes);
    log->next_seq = next;
    log->dropped = dropped;
    log->totals = totals;
    log->released = 1;
    return freed;
}

const event_t *events_at(const event_log_t *log, size_t i)
{
    return &log->ring[(log->head + i) % log->cap];
}

void events_write_array(const event_log_t *log, size_t from, strbuf_t *out)
{
    size_t total = 0;
    for (size_t i = from; i < log->count; i++)
        total += events_at(log, i)->len + 1;
    strbuf_reserve(out, total + 2);
    strbuf_puts(out, "[");
    for (size_t i = from; i < log->count; i++) {
        const event_t *ev = events_at(log, i);
        if (i > from)
            strbuf_puts(out, ",");
        strbuf_append(out, ev->json, ev->len);
    }
    strbuf_puts(out, "]");
}
