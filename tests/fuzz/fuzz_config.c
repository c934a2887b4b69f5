/*
 * Fuzz target: the configuration parser (config_parse in src/config.c).
 *
 * The input is NUL-separated tokens. The first byte says how many of them
 * (mod 16) are environment entries ("NAME=value"); the rest are argv after
 * argv[0]. The byte after it picks the size of the --help output buffer.
 * Checked on every input:
 *   - CONFIG_ERROR always names a setting in a NUL-terminated `err`;
 *   - CONFIG_EXIT writes NUL-terminated text that fits the given buffer;
 *   - CONFIG_OK gives a configuration main() may trust: every number in its
 *     documented range, defaults within their caps, timeout <= max_timeout,
 *     strings NUL-terminated in their fields, an absolute workspace root, a
 *     replica id of 1..128 of [A-Za-z0-9._:-], lists NULL-terminated with
 *     non-empty, trimmed entries;
 *   - config_free releases every list (LeakSanitizer checks it).
 */
#include "core/config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

#define MAX_TOKENS 64
#define TERMINATED(f) (memchr((f), '\0', sizeof(f)) != NULL)

static void check_list(char **list, int n)
{
    CHECK(n >= 0 && n < CONFIG_MAX_LIST);
    CHECK(list[n] == NULL);
    for (int i = 0; i < n; i++) {
        size_t l = strlen(list[i]);
        CHECK(l > 0 && !isspace((unsigned char)list[i][0]) && !isspace((unsigned char)list[i][l - 1]));
        CHECK(strchr(list[i], ',') == NULL);
    }
}

static void check_ok(const config_t *c)
{
    CHECK(TERMINATED(c->host) && TERMINATED(c->token) && TERMINATED(c->redis_url) && TERMINATED(c->log_file));
    CHECK(TERMINATED(c->workspace_root) && TERMINATED(c->sandbox_user) && TERMINATED(c->replica));
    CHECK(c->port >= 1 && c->port <= 65535);
    CHECK(c->max_concurrent >= 1 && c->max_per_session >= 1);
    CHECK(c->timeout >= 1 && c->timeout <= c->max_timeout && c->max_timeout <= 86400);
    CHECK(c->log_level >= 0 && c->log_level <= 3);
    CHECK(c->max_body >= 1024 && c->max_body <= (INT64_C(1) << 30));
    CHECK(c->session_ttl >= 1 && c->max_sessions >= 1);
    CHECK(c->allow_network == 0 || c->allow_network == 1);
    CHECK(c->isolation_none == 0 || c->isolation_none == 1);
    CHECK(c->retention >= 0 && c->wait_deadline >= 1 && c->max_events >= 16);
    CHECK(c->max_output_bytes >= 65536 && c->kill_grace_ms >= 0 && c->shutdown_grace >= 0);
    CHECK(c->mem_default_mb >= 16 && c->mem_default_mb <= c->mem_max_mb);
    CHECK(c->cpu_default_s >= 1 && c->cpu_default_s <= c->cpu_max_s);
    CHECK(c->fsize_default_mb >= 1 && c->fsize_default_mb <= c->fsize_max_mb);
    CHECK(c->nproc_default >= 8 && c->nproc_default <= c->nproc_max);
    CHECK(c->redis_ttl >= 1 && c->mirror_queue_bytes >= 65536);
    CHECK(c->workspace_root[0] == '/');
    size_t rl = strlen(c->replica); /* part of Redis keys: replica:{id} */
    CHECK(rl >= 1 && rl <= 128);
    for (size_t i = 0; i < rl; i++)
        CHECK(isalnum((unsigned char)c->replica[i]) || strchr("._:-", c->replica[i]) != NULL);
    CHECK(c->heartbeat >= 1 && c->heartbeat <= 60);
    check_list((char **)c->allowed_origins, c->n_allowed_origins);
    check_list((char **)c->deny_read, c->n_deny_read);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t n_env = data[0] % 16;
    size_t outlen = 1 + (size_t)data[1] * 64;
    data += 2;
    size -= 2;

    /* split into NUL-terminated tokens (a copy, so each ends in a NUL) */
    char *buf = malloc(size + 1);
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *tok[MAX_TOKENS];
    size_t n = 0;
    for (char *p = buf; p <= buf + size && n < MAX_TOKENS; p += strlen(p) + 1)
        tok[n++] = p;

    char *envp[MAX_TOKENS + 1], *argv[MAX_TOKENS + 2];
    size_t ne = n_env < n ? n_env : n;
    for (size_t i = 0; i < ne; i++)
        envp[i] = tok[i];
    envp[ne] = NULL;
    int argc = 0;
    argv[argc++] = "mcp-sandboxd";
    for (size_t i = ne; i < n; i++)
        argv[argc++] = tok[i];
    argv[argc] = NULL;

    static config_t cfg;
    char err[512], *out = malloc(outlen);
    memset(err, 0x55, sizeof(err));
    memset(out, 0x55, outlen);
    int rc = config_parse(&cfg, argc, argv, envp, err, sizeof(err), out, outlen);
    switch (rc) {
    case CONFIG_OK:
        check_ok(&cfg);
        break;
    case CONFIG_EXIT:
        CHECK(memchr(out, '\0', outlen) != NULL);
        break;
    case CONFIG_ERROR:
        CHECK(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
        break;
    default:
        CHECK(!"config_parse returned an unknown value");
    }
    config_free(&cfg);
    CHECK(cfg.n_allowed_origins == 0 && cfg.n_deny_read == 0);
    free(out);
    free(buf);
    return 0;
}
