/*
 * log: leveled, line-oriented logging to stderr or a file.
 *
 * Any thread may log (lines are written whole under a mutex). The loop thread
 * calls log_flush() once per iteration; the file is reopened by log_reopen()
 * on SIGHUP so logrotate can move it away. Never pass a token, a password or a
 * request body at info level.
 */
#ifndef MCP_SANDBOXD_LOG_H
#define MCP_SANDBOXD_LOG_H

enum { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/** Opens `path` (NULL or "" = stderr) and sets the level. 0 / -1 with errno. */
int log_open(const char *path, int level);
/** Reopens the log file (SIGHUP). 0 / -1. */
int log_reopen(void);
/** Writes buffered lines out. */
void log_flush(void);
/** Closes the file. */
void log_close(void);
/** True when `level` would be written. */
int log_enabled(int level);
/** Formats one line at `level`. */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Parses "error"/"warn"/"info"/"debug"; -1 when unknown. */
int log_level_parse(const char *s);

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) do { if (log_enabled(LOG_INFO)) log_msg(LOG_INFO, __VA_ARGS__); } while (0)
#define log_debug(...) do { if (log_enabled(LOG_DEBUG)) log_msg(LOG_DEBUG, __VA_ARGS__); } while (0)

#endif
