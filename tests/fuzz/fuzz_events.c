/*
 * Fuzz target: the event log (src/events.c).
 *
 * The input is a little program: caps for the log, then operations that
 * append typed events, feed raw stdout/stderr bytes in chunks of chosen sizes
 * (long lines, invalid UTF-8, NUL), flush a stream at EOF, and resume after a
 * chosen event id (a number near the held range, or arbitrary text). After
 * every operation the log's invariants are checked against a model:
 *   - held ids are contiguous, end at next_seq - 1, and held + dropped = all;
 *   - count <= max_events, bytes == sum of lengths, bytes <= max_bytes unless
 *     only one event is held; every event is valid JSON with its own id;
 *   - the data of a stream's line events, re-joined, equals the UTF-8 repair
 *     of every byte fed to that stream (nothing lost, nothing invented);
 *   - each event's info is what its JSON says (events_describe) and its
 *     running totals follow the previous event's by its own share, ending at
 *     the log's totals (the output formatter's prefix sums);
 *   - events_resume_index(id) fails exactly when the id is malformed, in the
 *     future or already dropped, and otherwise the array it gives holds
 *     exactly the events with ids above it, in order.
 */
#include "core/events.h"
#include "core/util.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

/* A reader over the fuzz input; reads past the end give zeros. */
typedef struct in {
    const uint8_t *p;
    size_t n;
} in_t;

static uint8_t in_u8(in_t *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

static uint16_t in_u16(in_t *in)
{
    return (uint16_t)(in_u8(in) | in_u8(in) << 8);
}

/* Up to `max` bytes, as chosen by the next length byte(s). */
static const char *in_bytes(in_t *in, size_t max, size_t *len)
{
    size_t want = in_u16(in) % (max + 1);
    if (want > in->n)
        want = in->n;
    const char *p = (const char *)in->p;
    in->p += want;
    in->n -= want;
    *len = want;
    return p;
}

/* What the model knows about one stream. */
struct stream_model {
    strbuf_t fed;    /* raw bytes fed, plus "\n" for each flushed line */
    strbuf_t joined; /* data of its line events, "\n" after each whole line */
};

static struct stream_model sm[2];

static void on_emit(void *arg, const event_t *ev)
{
    int stream = *(int *)arg;
    cJSON *j = cJSON_ParseWithLength(ev->json, ev->len);
    CHECK(j != NULL);
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(j, "type");
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(j, "data");
    const cJSON *partial = cJSON_GetObjectItemCaseSensitive(j, "partial");
    CHECK(cJSON_IsString(type) && !strcmp(type->valuestring, stream == 0 ? "stdout" : "stderr"));
    CHECK(cJSON_IsString(data));
    CHECK(strlen(data->valuestring) <= 3 * EVENTS_MAX_LINE);
    strbuf_puts(&sm[stream].joined, data->valuestring);
    if (partial == NULL)
        strbuf_puts(&sm[stream].joined, "\n");
    else
        CHECK(cJSON_IsTrue(partial));
    cJSON_Delete(j);
}

/* The invariants of the ring itself. */
static void check_log(const event_log_t *log)
{
    CHECK(log->count <= log->max_events);
    CHECK(log->count <= log->cap);
    CHECK(log->count + log->dropped == log->next_seq - 1);
    CHECK(log->bytes <= log->max_bytes || log->count == 1);
    size_t bytes = 0;
    for (size_t i = 0; i < log->count; i++) {
        const event_t *ev = events_at(log, i);
        CHECK(ev->json != NULL && strlen(ev->json) == ev->len);
        CHECK(ev->seq == log->next_seq - log->count + i);
        bytes += ev->len + EVENTS_EVENT_OVERHEAD; /* what is counted is what is held */
        if (i > 0) { /* the running totals: a chain from event to event */
            events_totals_t prev = events_after(events_at(log, i - 1)), before = events_before(ev);
            CHECK(prev.data == before.data && prev.lines == before.lines && prev.wholes == before.wholes);
        }
    }
    if (log->count > 0) {
        events_totals_t last = events_after(events_at(log, log->count - 1));
        CHECK(last.data == log->totals.data && last.lines == log->totals.lines && last.wholes == log->totals.wholes);
    }
    CHECK(bytes == log->bytes);
    CHECK(log->line[0].buf.len <= EVENTS_MAX_LINE && log->line[1].buf.len <= EVENTS_MAX_LINE);
}

/* Deep check of every held event's JSON (costly: done at the end and now and then). */
static void check_events_json(const event_log_t *log)
{
    for (size_t i = 0; i < log->count; i++) {
        const event_t *ev = events_at(log, i);
        cJSON *j = cJSON_ParseWithLength(ev->json, ev->len);
        CHECK(j != NULL && cJSON_IsObject(j));
        const cJSON *id = cJSON_GetObjectItemCaseSensitive(j, "event_id");
        const cJSON *ts = cJSON_GetObjectItemCaseSensitive(j, "ts");
        CHECK(cJSON_IsString(id) && cJSON_IsString(ts) && strlen(ts->valuestring) == 24);
        char want[24];
        snprintf(want, sizeof(want), "%llu", (unsigned long long)ev->seq);
        CHECK(!strcmp(id->valuestring, want));
        CHECK(events_describe(j) == ev->info);
        cJSON_Delete(j);
    }
}

/* The model's answer to "events after `id`": -1 for refused, else the index. */
static long model_resume(const event_log_t *log, const char *id)
{
    if (id == NULL || *id == '\0')
        return 0;
    unsigned long long v = 0;
    int overflow = 0;
    for (const char *p = id; *p; p++) {
        if (*p < '0' || *p > '9')
            return -1;
        if (v > (UINT64_MAX - 9) / 10)
            overflow = 1;
        else
            v = v * 10 + (unsigned)(*p - '0');
    }
    if (overflow || v >= log->next_seq)
        return -1; /* in the future */
    uint64_t oldest = log->next_seq - log->count;
    if (v + 1 < oldest)
        return -1; /* dropped */
    return (long)(v + 1 - oldest);
}

static void check_resume(const event_log_t *log, const char *id)
{
    char err[300] = "";
    long got = events_resume_index(log, id, err, sizeof(err));
    long want = model_resume(log, id);
    CHECK(got == want);
    if (got < 0) {
        CHECK(err[0] != '\0');
        return;
    }
    CHECK((size_t)got <= log->count);
    strbuf_t out = {0};
    events_write_array(log, (size_t)got, &out);
    cJSON *arr = cJSON_ParseWithLength(out.data, out.len);
    CHECK(cJSON_IsArray(arr));
    CHECK((size_t)cJSON_GetArraySize(arr) == log->count - (size_t)got);
    uint64_t expect = log->next_seq - log->count + (uint64_t)got;
    const cJSON *ev;
    cJSON_ArrayForEach(ev, arr)
    {
        const cJSON *eid = cJSON_GetObjectItemCaseSensitive(ev, "event_id");
        CHECK(cJSON_IsString(eid) && strtoull(eid->valuestring, NULL, 10) == expect);
        expect++;
    }
    CHECK(expect == log->next_seq);
    cJSON_Delete(arr);
    strbuf_free(&out);
}

#define FED_BUDGET (256u << 10) /* raw bytes per input: room for a few 64 KiB line cuts */

static const char *const types[] = {"ready", "timeout", "cancelled", "error", "resource_limit", "exit"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    in_t in = {data, size};
    event_log_t log;
    /* small caps so that eviction happens; the server's minimum is 16 events / 64 KiB */
    size_t max_events = 1 + in_u8(&in) % 64;
    size_t max_bytes = 64 + (size_t)in_u16(&in) * 4;
    events_init(&log, max_events, max_bytes);
    memset(sm, 0, sizeof(sm));
    int streams[2] = {0, 1};
    unsigned ops = 0;
    size_t fed_total = 0;
    while (in.n > 0 && ops++ < 200) {
        uint8_t op = in_u8(&in);
        switch (op % 6) {
        case 0: { /* a typed event, maybe with fields */
            cJSON *f = NULL;
            uint8_t t = in_u8(&in);
            if (t & 0x80) {
                size_t len;
                const char *p = in_bytes(&in, 256, &len);
                char *s = xstrndup(p, len); /* cJSON strings end at NUL */
                f = cJSON_CreateObject();
                cJSON_AddStringToObject(f, "message", s);
                cJSON_AddNumberToObject(f, "code", (double)(int8_t)in_u8(&in));
                free(s);
            }
            uint64_t seq = log.next_seq;
            const event_t *ev = events_append(&log, types[t % 6], f);
            cJSON_Delete(f);
            CHECK(ev != NULL && ev->seq == seq); /* the newest event is never evicted at once */
            break;
        }
        case 1: /* raw bytes to stdout or stderr, possibly repeated into a long line */
        case 2: {
            int s = op % 6 - 1;
            size_t len;
            const char *p = in_bytes(&in, 4096, &len);
            unsigned reps = op & 0x40 ? 1 + in_u8(&in) % 48 : 1;
            for (unsigned r = 0; r < reps && fed_total + len <= FED_BUDGET; r++) {
                fed_total += len;
                strbuf_append(&sm[s].fed, p, len);
                events_feed(&log, s, p, len, on_emit, &streams[s]);
            }
            break;
        }
        case 3: { /* EOF on a stream */
            int s = (op / 6) & 1;
            if (log.line[s].buf.len > 0)
                strbuf_puts(&sm[s].fed, "\n");
            events_flush(&log, s, on_emit, &streams[s]);
            CHECK(log.line[s].buf.len == 0);
            break;
        }
        case 4: { /* resume after an id near the held range */
            int64_t delta = (int8_t)in_u8(&in);
            uint64_t oldest = log.next_seq - log.count;
            int64_t id = (int64_t)oldest + delta;
            char buf[32];
            if (op & 0x80) {
                if (id >= 0)
                    snprintf(buf, sizeof(buf), "%s%lld", op & 0x40 ? "00" : "", (long long)id);
                else
                    snprintf(buf, sizeof(buf), "%lld", (long long)id);
                check_resume(&log, buf);
            } else {
                check_resume(&log, NULL);
            }
            break;
        }
        case 5: { /* resume after arbitrary text */
            size_t len;
            const char *p = in_bytes(&in, 40, &len);
            char *s = xstrndup(p, len);
            check_resume(&log, s);
            free(s);
            break;
        }
        }
        check_log(&log);
        if (ops % 16 == 0)
            check_events_json(&log);
    }
    check_events_json(&log);
    /* the model: re-joined line data == UTF-8 repair of all bytes fed (up to the unfinished line) */
    for (int s = 0; s < 2; s++) {
        /* finish the stream so the last line is emitted too */
        if (log.line[s].buf.len > 0)
            strbuf_puts(&sm[s].fed, "\n");
        events_flush(&log, s, on_emit, &streams[s]);
        strbuf_t clean = {0};
        if (sm[s].fed.len > 0)
            events_utf8_sanitize(sm[s].fed.data, sm[s].fed.len, &clean);
        CHECK(clean.len == sm[s].joined.len);
        CHECK(clean.len == 0 || memcmp(clean.data, sm[s].joined.data, clean.len) == 0);
        strbuf_free(&clean);
        strbuf_free(&sm[s].fed);
        strbuf_free(&sm[s].joined);
    }
    check_log(&log);
    events_free(&log);
    return 0;
}
