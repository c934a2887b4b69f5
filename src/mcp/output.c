/*
 * output: see output.h. The text is written directly (the events are already
 * JSON), one strbuf, no cJSON tree for the local path.
 */
#include "mcp/output.h"

void output_write_fields(strbuf_t *out, const output_view_t *v)
{
    strbuf_puts(out, "\"execution_id\":");
    strbuf_json_cstr(out, v->execution_id);
    strbuf_puts(out, ",\"status\":");
    strbuf_json_cstr(out, v->status);
    strbuf_printf(out, ",\"exit_code\":%s,\"output\":", v->exit_code_json);
    v->write_events(out, v->events_arg);
    strbuf_printf(out, ",\"dropped_events\":%llu", (unsigned long long)v->dropped_events);
    if (v->last_event_id != NULL) {
        strbuf_puts(out, ",\"last_event_id\":");
        strbuf_json_cstr(out, v->last_event_id);
    }
    if (v->source != NULL) {
        strbuf_puts(out, ",\"source\":");
        strbuf_json_cstr(out, v->source);
    }
}
