/*
 * log: lines are formatted into a stack buffer and appended to one process
 * buffer under a mutex; the loop flushes it once per iteration (and any line
 * at warn or above is flushed at once), so a busy server costs one write()
 * per loop turn rather than one per request.
 */
#include "core/log.h"

#include <bsd/string.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_fd = 2;
static int log_level = LOG_INFO;
static char log_path[1024];
static char log_buf[1 << 16];
static size_t log_used;

static void flush_locked(void)
{
    size_t off = 0;
    while (off < log_used) {
        ssize_t n = write(log_fd, log_buf + off, log_used - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break; /* nowhere to report a failing log; drop */
        off += (size_t)n;
    }
    log_used = 0;
}

int log_open(const char *path, int level)
{
    log_level = level;
    if (path == NULL || *path == '\0')
        return 0;
    strlcpy(log_path, path, sizeof(log_path));
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    log_fd = fd;
    return 0;
}

int log_reopen(void)
{
    if (log_path[0] == '\0')
        return 0;
    int fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return -1;
    pthread_mutex_lock(&log_lock);
    flush_locked();
    int old = log_fd;
    log_fd = fd;
    pthread_mutex_unlock(&log_lock);
    if (old > 2)
        close(old);
    return 0;
}

void log_flush(void)
{
    pthread_mutex_lock(&log_lock);
    if (log_used > 0)
        flush_locked();
    pthread_mutex_unlock(&log_lock);
}

void log_close(void)
{
    log_flush();
    if (log_fd > 2)
        close(log_fd);
    log_fd = 2;
}

int log_enabled(int level)
{
    return level <= log_level;
}

int log_level_parse(const char *s)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (!strcasecmp(s, names[i]))
            return i;
    if (!strcasecmp(s, "warning"))
        return LOG_WARN;
    return -1;
}

void log_msg(int level, const char *fmt, ...)
{
    static const char *names[] = {"ERROR", "WARN", "INFO", "DEBUG"};
    if (!log_enabled(level))
        return;
    char line[4096];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s ", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000), names[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    /* one event per line: a newline inside a message would forge a line */
    for (size_t i = (size_t)n; i < len; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    line[len++] = '\n';
    pthread_mutex_lock(&log_lock);
    if (log_used + len > sizeof(log_buf))
        flush_locked();
    memcpy(log_buf + log_used, line, len);
    log_used += len;
    if (level <= LOG_WARN)
        flush_locked();
    pthread_mutex_unlock(&log_lock);
}
