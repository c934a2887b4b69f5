/*
 * events: one execution's output log.
 *
 * Events are kept pre-serialized (the JSON an agent and Redis both see) in a
 * ring that grows up to max_events and is also capped in bytes; the oldest go
 * first and are counted. Each event's JSON is held in an allocation of exactly
 * its size, and `bytes` counts what is held: the JSON plus EVENTS_EVENT_OVERHEAD
 * per event (its ring slot and the allocator's header), so a log costs about
 * what it counts. A finished log can be compacted (ring shrunk to its events)
 * or released (every event freed; ids stay known, reads are refused). Event ids are decimal sequence numbers, so "events
 * after id N" is an index computation, not a search. Each event also carries
 * its kind, data length and running totals (event_t), so the output
 * formatter's figures over any held range are differences, not a scan. Raw pipe bytes become
 * one event per line; a line longer than EVENTS_MAX_LINE is cut into pieces
 * marked "partial": true; invalid UTF-8 (and NUL) becomes U+FFFD.
 * Loop thread only.
 */
#ifndef MCP_SANDBOXD_EVENTS_H
#define MCP_SANDBOXD_EVENTS_H

#include "core/util.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#define EVENTS_MAX_LINE (64 * 1024)
/** Bytes counted per event besides its JSON: the ring slot and malloc's chunk header. */
#define EVENTS_EVENT_OVERHEAD (sizeof(event_t) + 16)

/** What an event is (event_t.info bits 28-29). */
enum events_kind { EVENTS_STDOUT, EVENTS_STDERR, EVENTS_READY, EVENTS_OTHER };
/** The kind of an event. */
#define EVENTS_KIND(ev) ((int)((ev)->info >> 28) & 3)
/** A line event (stdout or stderr). */
#define EVENTS_IS_LINE(ev) (EVENTS_KIND(ev) <= EVENTS_STDERR)
/** A line event marked "partial": true (a piece of a longer line). */
#define EVENTS_PARTIAL(ev) ((int)((ev)->info >> 30) & 1)
/** A line event whose data starts with '!', '~' or '\\' (the compact text escapes it). */
#define EVENTS_MARKER(ev) ((int)((ev)->info >> 31) & 1)
/** A line event's data bytes (its "data" string as UTF-8; at most EVENTS_DATA_MAX). */
#define EVENTS_DATA_LEN(ev) ((size_t)((ev)->info & EVENTS_DATA_MAX))
/** Largest data length event_t.info holds (a local line is at most EVENTS_MAX_LINE; the reader refuses an element over --max-output-bytes, at most 256M, so a remote one fits too). */
#define EVENTS_DATA_MAX ((1u << 28) - 1)

/**
 * One stored event. Besides its JSON it carries what the output formatter
 * needs without parsing it: its kind and data length (`info`) and running
 * totals from the log's start (dropped events included), so the figures of
 * any held range are differences of two events' totals. The counts wrap at
 * 2^32: a difference is exact for ranges of fewer than 2^32 events (a log
 * holds at most --max-events, at most 10,000,000; a read from Redis at most
 * 256M of JSON, 17 bytes or more per event: under 16 million).
 */
typedef struct event {
    uint64_t seq;        /**< the event_id, as a number */
    char *json;          /**< the event's JSON object */
    uint64_t data_sum;   /**< data bytes of the line events up to this one (inclusive) */
    uint32_t len;        /**< strlen(json) */
    uint32_t line_sum;   /**< line events (each piece of a partial line counts) up to this one, mod 2^32 */
    uint32_t whole_sum;  /**< whole lines (line events not marked partial) up to this one, mod 2^32 */
    uint32_t info;       /**< kind (28-29), partial (30), marker (31), data bytes (0-27): the EVENTS_* macros */
} event_t;

/** Running totals: what event_t's *_sum fields are computed from. */
typedef struct events_totals {
    uint64_t data;
    uint32_t lines, wholes;
} events_totals_t;

/** A stream's unfinished line. */
typedef struct events_line {
    strbuf_t buf;  /**< bytes after the last newline */
} events_line_t;

typedef struct event_log {
    event_t *ring;        /**< circular array, `cap` slots */
    size_t cap, head, count;
    uint64_t next_seq;    /**< id the next event gets (ids start at 1) */
    size_t bytes;         /**< bytes held: JSON + EVENTS_EVENT_OVERHEAD per event */
    uint64_t dropped;     /**< events evicted by the caps */
    events_totals_t totals; /**< of every event appended (the newest event's *_sum) */
    size_t max_events, max_bytes;
    events_line_t line[2];/**< partial stdout [0] and stderr [1] lines */
    int released;         /**< events_release() freed the events */
} event_log_t;

/** Prepares an empty log with the given caps. */
void events_init(event_log_t *log, size_t max_events, size_t max_bytes);
/** Frees every event (the log then holds 0 bytes). */
void events_free(event_log_t *log);
/**
 * Appends an event of `type` with extra `fields` (an object whose members are
 * moved into the event; may be NULL). Returns the stored event (valid until the
 * next append) or NULL if evicted at once.
 */
const event_t *events_append(event_log_t *log, const char *type, cJSON *fields);
/** Callback for each event produced from raw output. */
typedef void (*events_emit_cb)(void *arg, const event_t *ev);
/**
 * Feeds raw bytes of stream 0 (stdout) or 1 (stderr); complete lines become
 * events; `emit` (may be NULL) sees each one.
 */
void events_feed(event_log_t *log, int stream, const char *data, size_t len, events_emit_cb emit, void *arg);
/** Emits what remains of a stream's last line (at EOF). */
void events_flush(event_log_t *log, int stream, events_emit_cb emit, void *arg);
/**
 * Finds where to resume after `last_event_id` (NULL = from the start).
 * Returns the ring offset of the first event to send (== count when none),
 * or -1 with err when the id is malformed, in the future, already dropped, or
 * the log was released.
 */
long events_resume_index(const event_log_t *log, const char *last_event_id, char *err, size_t errlen);
/** Shrinks the ring to the events held (a finished run's log no longer grows). */
void events_compact(event_log_t *log);
/**
 * Frees every event of a finished log (the output cap of the server or the
 * session). Ids stay known: events_resume_index() then refuses with a message
 * saying the output was released. Returns the bytes freed.
 */
size_t events_release(event_log_t *log);
/** The i-th held event (0 = oldest). */
const event_t *events_at(const event_log_t *log, size_t i);
/** Appends the events from index `from` as a JSON array to `out`. */
void events_write_array(const event_log_t *log, size_t from, strbuf_t *out);
/**
 * The `info` of a parsed event object (for events that were not made here,
 * e.g. read from Redis): kind EVENTS_OTHER when it is no event object.
 */
uint32_t events_describe(const cJSON *o);
/**
 * Sets ev's info and its running totals after `t` (advanced): indexes events
 * read back as JSON the way the log indexes its own. Any thread.
 */
void events_index(event_t *ev, uint32_t info, events_totals_t *t);
/** The running totals just before `ev` (its own share taken off). */
events_totals_t events_before(const event_t *ev);
/** The running totals including `ev`. */
events_totals_t events_after(const event_t *ev);
/** Replaces invalid UTF-8 and NUL in `s` with U+FFFD, appending to `out`. */
void events_utf8_sanitize(const char *s, size_t len, strbuf_t *out);

#endif
