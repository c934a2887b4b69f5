/*
 * args: the checks of the tools' arguments. Unknown arguments are refused by
 * name, types and bounds are checked here (and execute_code's whole request
 * built), before any tool handler calls the execution manager. Pure
 * functions; errors are written to `err` and returned, never aborted on.
 */
#include "mcp/args.h"
#include "core/config.h"
#include "core/util.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Refuses arguments not in `allowed` (NULL-terminated). */
int args_check_known(const cJSON *args, const char *const *allowed, char *err, size_t errlen)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, args)
    {
        int ok = 0;
        for (int i = 0; allowed[i] != NULL; i++)
            if (!strcmp(it->string, allowed[i]))
                ok = 1;
        if (!ok) {
            snprintf(err, errlen, "Unknown argument '%.60s'", it->string);
            return -1;
        }
    }
    return 0;
}

/* Reads an optional boolean; -1 with err when present and not a boolean. */
int args_get_bool(const cJSON *args, const char *name, int def, int *out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    if (v == NULL || cJSON_IsNull(v)) {
        *out = def;
        return 0;
    }
    if (!cJSON_IsBool(v)) {
        snprintf(err, errlen, "'%s' must be a boolean", name);
        return -1;
    }
    *out = cJSON_IsTrue(v);
    return 0;
}

/* Reads a required (or optional, when def != NULL) string. */
int args_get_string(const cJSON *args, const char *name, int required, const char **out, char *err, size_t errlen)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(args, name);
    if (v == NULL || cJSON_IsNull(v)) {
        if (required) {
            snprintf(err, errlen, "Missing required argument '%s'", name);
            return -1;
        }
        *out = NULL;
        return 0;
    }
    if (!cJSON_IsString(v)) {
        snprintf(err, errlen, "'%s' must be a string", name);
        return -1;
    }
    *out = v->valuestring;
    return 0;
}

static int valid_env_name(const char *k)
{
    if (!(isalpha((unsigned char)k[0]) || k[0] == '_'))
        return 0;
    for (const char *p = k; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return 0;
    return strlen(k) < 256;
}

/* Checks execute_code's arguments into `rq`. */
int args_parse_run(const cJSON *args, int with_wait, exec_request_t *rq, int *wait, char *err, size_t errlen)
{
    static const char *const known[] = {"command", "timeout_seconds", "interactive", "working_directory",
                                         "environment", "sandbox_config", "wait_for_completion", "max_output_chars",
                                         "workspace_id", NULL};
    memset(rq, 0, sizeof(*rq));
    if (args_check_known(args, known, err, errlen) != 0)
        return -1;
    if (!with_wait && cJSON_GetObjectItemCaseSensitive(args, "wait_for_completion") != NULL) {
        snprintf(err, errlen, "Unknown argument 'wait_for_completion' (execute_code_async never waits)");
        return -1;
    }
    if (!with_wait && cJSON_GetObjectItemCaseSensitive(args, "max_output_chars") != NULL) {
        snprintf(err, errlen, "Unknown argument 'max_output_chars' (execute_code_async answers without output)");
        return -1;
    }
    if (args_get_string(args, "command", 1, &rq->command, err, errlen) != 0)
        return -1;
    if (rq->command[0] == '\0') {
        snprintf(err, errlen, "'command' must not be empty");
        return -1;
    }
    /* the kernel takes at most 128 KiB per argument (MAX_ARG_STRLEN); the command is one */
    if (strlen(rq->command) > ARGS_MAX_ARG) {
        snprintf(err, errlen, "'command' is %zu bytes; the limit is %d (one exec argument): write long scripts to a file first",
                 strlen(rq->command), ARGS_MAX_ARG);
        return -1;
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(args, "timeout_seconds");
    rq->timeout_s = config.timeout;
    if (t != NULL && !cJSON_IsNull(t)) {
        if (!cJSON_IsNumber(t) || t->valuedouble != floor(t->valuedouble) || t->valuedouble < 1 ||
            t->valuedouble > config.max_timeout) {
            snprintf(err, errlen, "'timeout_seconds' must be an integer between 1 and %d (the server's --max-timeout)",
                     config.max_timeout);
            return -1;
        }
        rq->timeout_s = (int)t->valuedouble;
    }
    if (args_get_bool(args, "interactive", 0, &rq->interactive, err, errlen) != 0 ||
        args_get_string(args, "working_directory", 0, &rq->working_directory, err, errlen) != 0 ||
        args_get_bool(args, "wait_for_completion", 1, wait, err, errlen) != 0)
        return -1;
    const cJSON *env = cJSON_GetObjectItemCaseSensitive(args, "environment");
    if (env != NULL && !cJSON_IsNull(env)) {
        if (!cJSON_IsObject(env)) {
            snprintf(err, errlen, "'environment' must be an object of string values");
            return -1;
        }
        int n = cJSON_GetArraySize(env);
        if (n > 256) {
            snprintf(err, errlen, "'environment' may hold at most 256 variables");
            return -1;
        }
        rq->env = xcalloc((size_t)n + 1, sizeof(char *));
        size_t env_bytes = 0;
        const cJSON *it;
        cJSON_ArrayForEach(it, env)
        {
            if (!valid_env_name(it->string)) {
                snprintf(err, errlen, "environment: '%.60s' is not a valid variable name", it->string);
                return -1;
            }
            if (!cJSON_IsString(it)) {
                snprintf(err, errlen, "environment: the value of '%.60s' must be a string", it->string);
                return -1;
            }
            env_bytes += strlen(it->valuestring) + strlen(it->string) + 2;
            if (strlen(it->valuestring) > ARGS_MAX_ARG || env_bytes > ARGS_MAX_ENV) {
                snprintf(err, errlen, "environment: too large ('%.60s'): at most %d bytes per value and %d in all",
                         it->string, ARGS_MAX_ARG, ARGS_MAX_ENV);
                return -1;
            }
            strbuf_t kv = {0};
            strbuf_printf(&kv, "%s=%s", it->string, it->valuestring);
            rq->env[rq->n_env++] = strbuf_steal(&kv, NULL);
        }
    }
    return sandbox_policy_parse(cJSON_GetObjectItemCaseSensitive(args, "sandbox_config"), &rq->policy, err, errlen);
}

/* Frees what args_parse_run allocated in `rq`. */
void args_free_run(exec_request_t *rq)
{
    for (size_t i = 0; i < rq->n_env; i++)
        free(rq->env[i]);
    free(rq->env);
    sandbox_policy_free(&rq->policy);
}

/* get_execution_output's last_event_id (a string, or a whole number): 0 with *last set (NULL: absent), or -1 with err. */
int args_last_event_id(const cJSON *args, const char **last, char *buf, size_t buflen, char *err, size_t errlen)
{
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(args, "last_event_id");
    *last = NULL;
    if (cJSON_IsString(l) && strlen(l->valuestring) >= buflen) {
        snprintf(err, errlen, "'last_event_id' is too long: event ids are decimal numbers of at most 20 digits");
        return -1;
    }
    if (cJSON_IsString(l)) {
        *last = l->valuestring;
    } else if (cJSON_IsNumber(l) && l->valuedouble >= 0 && l->valuedouble == floor(l->valuedouble)) {
        snprintf(buf, buflen, "%.0f", l->valuedouble);
        *last = buf;
    } else if (l != NULL && !cJSON_IsNull(l)) {
        snprintf(err, errlen, "'last_event_id' must be a string (an event_id from an earlier result)");
        return -1;
    }
    return 0;
}
