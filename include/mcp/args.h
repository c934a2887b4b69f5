/*
 * args: the checks of the tools' arguments (mcp/args.c): unknown arguments,
 * types, bounds, and execute_code's request built from its arguments. Pure
 * functions, callable from any thread; every error is returned with a
 * message in `err`, never aborted on.
 */
#ifndef MCP_SANDBOXD_ARGS_H
#define MCP_SANDBOXD_ARGS_H

#include "exec/exec.h"

#include <cjson/cJSON.h>
#include <stddef.h>

/** Longest command or environment value: MAX_ARG_STRLEN, less the sandbox's own prefix. */
#define ARGS_MAX_ARG (128 * 1024 - 256)
/** Largest environment in all: well inside ARG_MAX with the bwrap arguments. */
#define ARGS_MAX_ENV (1024 * 1024)

/** Refuses arguments not in `allowed` (NULL-terminated): 0, or -1 with err. */
int args_check_known(const cJSON *args, const char *const *allowed, char *err, size_t errlen);
/** Reads optional boolean `name` (`def` when absent or null): 0, or -1 with err when not a boolean. */
int args_get_bool(const cJSON *args, const char *name, int def, int *out, char *err, size_t errlen);
/** Reads string `name` (*out NULL when absent and not `required`): 0, or -1 with err. */
int args_get_string(const cJSON *args, const char *name, int required, const char **out, char *err, size_t errlen);
/**
 * Checks execute_code's (with_wait) or execute_code_async's arguments into
 * `rq` (and `wait`): 0, or -1 with err. Free `rq` with args_free_run either way.
 */
int args_parse_run(const cJSON *args, int with_wait, exec_request_t *rq, int *wait, char *err, size_t errlen);
/** Frees what args_parse_run allocated in `rq`. */
void args_free_run(exec_request_t *rq);
/**
 * get_execution_output's last_event_id (a string, or a whole number written
 * into `buf`): 0 with *last set (NULL when absent), or -1 with err.
 */
int args_last_event_id(const cJSON *args, const char **last, char *buf, size_t buflen, char *err, size_t errlen);

#endif
