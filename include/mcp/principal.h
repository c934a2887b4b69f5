/*
 * principal: who a request acts for. A principal is a name bound to a bearer
 * token: `--token` is the principal "default", `--tokens-file` adds one per
 * line (`name:token`, `#` comments, tokens of at least 16 characters). The
 * file is read at startup and again on SIGHUP (principal_reload); a bad file
 * on reload keeps the table in force. Tokens are compared in constant time
 * and never logged. Without any token, requests carry no principal and each
 * legacy session is its own owner (as before principals existed).
 * Loop thread only.
 */
#ifndef MCP_SANDBOXD_PRINCIPAL_H
#define MCP_SANDBOXD_PRINCIPAL_H

#include <stddef.h>

/** Longest principal name: [A-Za-z0-9._-]. */
#define PRINCIPAL_NAME_MAX 63
/** Shortest token a tokens file may hold. */
#define PRINCIPAL_TOKEN_MIN 16
/** Longest token. */
#define PRINCIPAL_TOKEN_MAX 511

/**
 * Loads the principals: `token` ("" = none) as "default", then the file at
 * `path` ("" = none). 0, or -1 with err (the table is then unchanged).
 */
int principal_load(const char *token, const char *path, char *err, size_t errlen);
/** Reads the tokens file again (SIGHUP). 0 (or no file), -1 with err (the old table stays). */
int principal_reload(char *err, size_t errlen);
/** 1 when any token is configured (requests must then authenticate). */
int principal_enabled(void);
/** Number of principals. */
size_t principal_count(void);
/**
 * The principal whose token is `tok` (`len` bytes), copied into `name`;
 * 0 when found, -1 otherwise. Every entry is compared, in constant time.
 */
int principal_authenticate(const char *tok, size_t len, char name[PRINCIPAL_NAME_MAX + 1]);
/** Frees the table. */
void principal_free(void);

#endif
