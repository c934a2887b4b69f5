/*
 * catalog: the tool catalogue: each tool's name, title, description, input
 * and output schemas and annotations, built once into the tools/list result
 * (and kept parsed, for the transport's Mcp-Param-* header checks). The
 * handlers are tools.c's. Loop thread only.
 */
#include "mcp/catalog.h"
#include "exec/exec.h"
#include "core/log.h"

#include <stdlib.h>
#include <string.h>

#define EVENT_SCHEMA                                                                                                  \
    "{\"type\":\"object\",\"properties\":{\"event_id\":{\"type\":\"string\"},\"type\":{\"type\":\"string\",\"enum\":"   \
    "[\"ready\",\"stdout\",\"stderr\",\"exit\",\"timeout\",\"cancelled\",\"error\",\"resource_limit\"]},"              \
    "\"ts\":{\"type\":\"string\"},\"data\":{\"type\":\"string\"},\"partial\":{\"type\":\"boolean\"},"                   \
    "\"code\":{\"type\":\"integer\"},\"duration_ms\":{\"type\":\"number\"},\"timeout_seconds\":{\"type\":\"integer\"},"  \
    "\"cpu_ms\":{\"type\":\"number\"},\"peak_memory_bytes\":{\"type\":[\"number\",\"null\"]},"                     \
    "\"oom_killed\":{\"type\":\"boolean\"},"                                                                           \
    "\"message\":{\"type\":\"string\"},\"reason\":{\"type\":\"string\"}},\"required\":[\"event_id\",\"type\",\"ts\"]}"

/* The status enum: catalog_init fills it from exec's one status table (exec_status_name). */
#define STATUS_ENUM "{\"type\":\"string\",\"enum\":\"exec-statuses\"}"

#define RUN_PROPS                                                                                                     \
    "\"command\":{\"type\":\"string\",\"minLength\":1,\"description\":\"Shell command, run with /bin/sh -c\"},"          \
    "\"timeout_seconds\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"Kill the run after this many seconds\"},"  \
    "\"interactive\":{\"type\":\"boolean\",\"default\":false,\"description\":\"Keep stdin open for send_stdin\"},"       \
    "\"working_directory\":{\"type\":\"string\",\"description\":\"Relative to the session workspace, or absolute\"},"   \
    "\"environment\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},"                             \
    "\"description\":\"Extra environment variables\"},"                                                               \
    "\"sandbox_config\":{\"type\":\"object\",\"description\":\"network {mode}, filesystem {deny_read, allow_write, "     \
    "deny_write}, resource_limits {max_memory_mb, max_cpu_seconds, max_file_size_mb, max_processes}\"}," WS_PROP

#define ERR_PROPS "\"error\":{\"type\":\"string\"}"
#define WS_PROP                                                                                                       \
    "\"workspace_id\":{\"type\":\"string\",\"description\":\"A workspace handle (w-...) from an earlier result; "        \
    "default: the session's workspace\"}"

#define BUDGET_PROP                                                                                                   \
    "\"max_output_chars\":{\"type\":\"integer\",\"minimum\":200,\"default\":20000,\"description\":\"Budget of the "      \
    "result: the first and last lines are kept, what is left out is named in truncated\"}"

#define OUTPUT_PROPS                                                                                                  \
    "\"truncated\":{\"type\":\"object\",\"properties\":{\"omitted_events\":{\"type\":\"integer\"},"                   \
    "\"omitted_bytes\":{\"type\":\"integer\"},\"first_omitted_event_id\":{\"type\":\"string\"},"                       \
    "\"last_omitted_event_id\":{\"type\":\"string\"},\"hint\":{\"type\":\"string\"}}},"                                 \
    "\"selection\":{\"type\":\"object\",\"properties\":{\"lines\":{\"type\":\"integer\"},"                           \
    "\"grep_stopped_at_event_id\":{\"type\":\"string\"}}}"

/* What tools/list says of one tool. */
struct catalog_tool {
    const char *name;
    const char *title;
    const char *description;
    const char *input_schema;
    const char *output_schema;
    int read_only;
};

static const struct catalog_tool tools[] = {
    {"execute_code", "Run a command in the sandbox",
     "Run a shell command inside an isolated bubblewrap sandbox (no network, read-only host, writable session workspace). "
     "Waits for it to finish (up to the server's wait limit) unless wait_for_completion is false, and returns its exit code "
     "and output events.",
     "{\"type\":\"object\",\"properties\":{" RUN_PROPS ",\"wait_for_completion\":{\"type\":\"boolean\",\"default\":true},"
     BUDGET_PROP "},"
     "\"required\":[\"command\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"execution_id\":{\"type\":\"string\"},\"status\":" STATUS_ENUM ","
     "\"exit_code\":{\"type\":[\"integer\",\"null\"]},\"output\":{\"type\":\"array\",\"items\":" EVENT_SCHEMA "},"
     "\"dropped_events\":{\"type\":\"integer\"},\"last_event_id\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},"
     "\"workspace_id\":{\"type\":\"string\"}," ERR_PROPS "," OUTPUT_PROPS "},\"required\":[\"status\"]}",
     0},
    {"execute_code_async", "Start a command in the sandbox",
     "Start a shell command inside the sandbox and return its execution_id at once; follow it with get_execution_output, "
     "feed it with send_stdin (interactive runs) and stop it with cancel_execution.",
     "{\"type\":\"object\",\"properties\":{" RUN_PROPS "},\"required\":[\"command\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"execution_id\":{\"type\":\"string\"},\"status\":" STATUS_ENUM ","
     "\"workspace_id\":{\"type\":\"string\"}," ERR_PROPS "},\"required\":[\"status\"]}",
     0},
    {"send_stdin", "Send input to a run",
     "Write input_data to the stdin of a running interactive execution (a newline is appended when missing).",
     "{\"type\":\"object\",\"properties\":{\"execution_id\":{\"type\":\"string\"}," WS_PROP ",\"input_data\":{\"type\":\"string\"}},"
     "\"required\":[\"execution_id\",\"input_data\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"success\":{\"type\":\"boolean\"}," ERR_PROPS "},\"required\":[\"success\"]}", 0},
    {"cancel_execution", "Cancel a run",
     "Stop a running execution and everything it started: SIGTERM, then SIGKILL after a grace period (at once with force).",
     "{\"type\":\"object\",\"properties\":{\"execution_id\":{\"type\":\"string\"}," WS_PROP ",\"force\":{\"type\":\"boolean\",\"default\":false}},"
     "\"required\":[\"execution_id\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"success\":{\"type\":\"boolean\"},\"was_running\":{\"type\":\"boolean\"}," ERR_PROPS
     "},\"required\":[\"success\"]}",
     0},
    {"list_executions", "List your runs", "List the executions started with your token (without auth: by this MCP session).",
     "{\"type\":\"object\",\"properties\":{" WS_PROP "},\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"executions\":{\"type\":\"array\",\"items\":{\"type\":\"object\",\"properties\":{"
     "\"id\":{\"type\":\"string\"},\"status\":" STATUS_ENUM ",\"command\":{\"type\":\"string\"},\"interactive\":{\"type\":\"boolean\"},"
     "\"started_at\":{\"type\":\"string\"},\"completed_at\":{\"type\":[\"string\",\"null\"]}}}}," ERR_PROPS "}}",
     1},
    {"get_execution_status", "Status of a run", "Status, exit code and timestamps of an execution.",
     "{\"type\":\"object\",\"properties\":{\"execution_id\":{\"type\":\"string\"}," WS_PROP "},\"required\":[\"execution_id\"],"
     "\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"status\":" STATUS_ENUM ",\"command\":{\"type\":\"string\"},"
     "\"interactive\":{\"type\":\"boolean\"},\"started_at\":{\"type\":\"string\"},\"completed_at\":{\"type\":[\"string\",\"null\"]},"
     "\"exit_code\":{\"type\":[\"integer\",\"null\"]},\"error_message\":{\"type\":[\"string\",\"null\"]}," ERR_PROPS
     "},\"required\":[\"status\"]}",
     1},
    {"get_execution_output", "Output of a run",
     "Output events of an execution; with last_event_id only the events after it; head, tail and grep select lines; "
     "with wait, first wait for the run to end (up to the server's wait limit). The result keeps to max_output_chars.",
     "{\"type\":\"object\",\"properties\":{\"execution_id\":{\"type\":\"string\"}," WS_PROP ",\"wait\":{\"type\":\"boolean\",\"default\":false},"
     "\"last_event_id\":{\"type\":\"string\"}," BUDGET_PROP ",\"head\":{\"type\":\"integer\",\"minimum\":1,\"description\":"
     "\"Only the first N lines\"},\"tail\":{\"type\":\"integer\",\"minimum\":1,\"description\":\"Only the last N lines\"},"
     "\"grep\":{\"type\":\"string\",\"description\":\"Only the lines matching this POSIX extended regular expression\"}},"
     "\"required\":[\"execution_id\"],\"additionalProperties\":false}",
     "{\"type\":\"object\",\"properties\":{\"execution_id\":{\"type\":\"string\"},\"status\":" STATUS_ENUM ","
     "\"exit_code\":{\"type\":[\"integer\",\"null\"]},\"output\":{\"type\":\"array\",\"items\":" EVENT_SCHEMA "},"
     "\"dropped_events\":{\"type\":\"integer\"},\"last_event_id\":{\"type\":\"string\"},\"message\":{\"type\":\"string\"},"
     "\"source\":{\"type\":\"string\"}," ERR_PROPS "," OUTPUT_PROPS "},\"required\":[\"status\"]}",
     1},
};
#define N_TOOLS (sizeof(tools) / sizeof(tools[0]))

static char *list_json;
static size_t list_len;
static cJSON *list_obj; /* the same, parsed */

/* Replaces every "enum": "exec-statuses" under `node` by the status names, in exec's order. */
static void fill_status_enums(cJSON *node)
{
    for (cJSON *it = node != NULL ? node->child : NULL, *next; it != NULL; it = next) {
        next = it->next; /* `it` may be replaced (and freed) below */
        if (it->string != NULL && !strcmp(it->string, "enum") && cJSON_IsString(it) &&
            !strcmp(it->valuestring, "exec-statuses")) {
            cJSON *names = cJSON_CreateArray();
            for (int st = 0; st < EXEC_N_STATUSES; st++)
                cJSON_AddItemToArray(names, cJSON_CreateString(exec_status_name((exec_status_t)st)));
            cJSON_ReplaceItemInObjectCaseSensitive(node, "enum", names); /* keeps the key */
            continue;
        }
        fill_status_enums(it);
    }
}

/* Parameters mirrored into Mcp-Param-* headers (2026-07-28 x-mcp-header), wherever a tool takes them. */
static const struct {
    const char *param, *header;
} header_params[] = {{"execution_id", "Execution-Id"}, {"workspace_id", "Workspace-Id"}};

/* Marks the routing handles of an input schema with x-mcp-header, so nginx can route on them. */
static void add_header_params(cJSON *in)
{
    cJSON *props = cJSON_GetObjectItemCaseSensitive(in, "properties");
    for (size_t i = 0; i < sizeof(header_params) / sizeof(header_params[0]); i++) {
        cJSON *p = cJSON_GetObjectItemCaseSensitive(props, header_params[i].param);
        if (cJSON_IsObject(p))
            cJSON_AddStringToObject(p, "x-mcp-header", header_params[i].header);
    }
}

/* Builds the tools/list result from the table, with the status enums and x-mcp-header marks filled in. */
int catalog_init(void)
{
    cJSON *res = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(res, "tools");
    for (size_t i = 0; i < N_TOOLS; i++) {
        cJSON *t = cJSON_CreateObject();
        cJSON_AddStringToObject(t, "name", tools[i].name);
        cJSON_AddStringToObject(t, "title", tools[i].title);
        cJSON_AddStringToObject(t, "description", tools[i].description);
        cJSON *in = cJSON_Parse(tools[i].input_schema), *out = cJSON_Parse(tools[i].output_schema);
        if (in == NULL || out == NULL) {
            log_error("tool %s: schema is not valid JSON", tools[i].name);
            cJSON_Delete(in);
            cJSON_Delete(out);
            cJSON_Delete(t);
            cJSON_Delete(res);
            return -1;
        }
        fill_status_enums(in);
        fill_status_enums(out);
        add_header_params(in);
        cJSON_AddItemToObject(t, "inputSchema", in);
        cJSON_AddItemToObject(t, "outputSchema", out);
        cJSON *ann = cJSON_AddObjectToObject(t, "annotations");
        cJSON_AddBoolToObject(ann, "readOnlyHint", tools[i].read_only);
        cJSON_AddBoolToObject(ann, "destructiveHint", 0);
        cJSON_AddBoolToObject(ann, "openWorldHint", 0);
        cJSON_AddItemToArray(arr, t);
    }
    list_json = cJSON_PrintUnformatted(res);
    list_obj = res; /* kept: the transport checks Mcp-Param-* headers against the input schemas */
    if (list_json == NULL)
        return -1;
    list_len = strlen(list_json);
    return 0;
}

const cJSON *catalog_input_schema(const char *name)
{
    const cJSON *t;
    cJSON_ArrayForEach(t, cJSON_GetObjectItemCaseSensitive(list_obj, "tools"))
    {
        const cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name))
            return cJSON_GetObjectItemCaseSensitive(t, "inputSchema");
    }
    return NULL;
}

void catalog_free(void)
{
    cJSON_Delete(list_obj);
    list_obj = NULL;
    free(list_json);
    list_json = NULL;
}

const char *catalog_list_json(size_t *len)
{
    *len = list_len;
    return list_json;
}
