/*
 * sandbox_internal: what sandbox.c (the bwrap command line) lends
 * sandbox_policy.c (parsing). Loop thread only.
 */
#ifndef MCP_SANDBOXD_SANDBOX_INTERNAL_H
#define MCP_SANDBOXD_SANDBOX_INTERNAL_H

/** Opens `path` as O_PATH as the sandbox user without following any symlink; -1 with errno (ELOOP for a symlink). */
int sandbox_open_nofollow(const char *path);
/** Is `path` `dir` or below it? */
int sandbox_path_under(const char *path, const char *dir);

#endif
