/*
 * Fuzz target: the REDIS_URL parser (mirror_url_parse in src/mirror.c) and
 * the redaction used when the URL is logged (config_redacted_redis_url).
 *
 * The input (up to its first NUL) is the URL. Checked on every input:
 *   - a refusal always says why; an acceptance gives NUL-terminated fields
 *     within their buffers, a port in 1..65535, a db in 0..1000000, a
 *     non-empty host (TCP) or an absolute socket path (unix);
 *   - the redacted form is the URL with everything between "://" and the
 *     last '@' (the credentials, which may hold '@') replaced by "***", and a
 *     smaller buffer gets a NUL-terminated prefix of it.
 */
#include "core/config.h"
#include "cluster/mirror.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"

static int terminated(const char *buf, size_t len)
{
    return memchr(buf, '\0', len) != NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *url = malloc(size + 1);
    memcpy(url, data, size);
    url[size] = '\0';

    mirror_url_t u;
    char err[256];
    err[0] = '\0';
    int rc = mirror_url_parse(url, &u, err, sizeof(err));
    CHECK(rc == 0 || rc == -1);
    if (rc != 0) {
        CHECK(err[0] != '\0' && terminated(err, sizeof(err)));
    } else {
        CHECK(terminated(u.host, sizeof(u.host)) && terminated(u.path, sizeof(u.path)));
        CHECK(terminated(u.user, sizeof(u.user)) && terminated(u.password, sizeof(u.password)));
        CHECK(u.db >= 0 && u.db <= 1000000);
        if (u.unix_socket) {
            CHECK(u.path[0] == '/');
        } else {
            CHECK(u.host[0] != '\0');
            CHECK(u.port >= 1 && u.port <= 65535);
        }
    }

    /* redacted: scheme, "***", then from the last '@' on; a small buffer gets a prefix of that */
    const char *scheme_end = strstr(url, "://");
    const char *at = scheme_end != NULL ? strrchr(scheme_end + 3, '@') : NULL;
    size_t full_len = strlen(url) + 8;
    char *full = malloc(full_len);
    config_redacted_redis_url(url, full, full_len);
    CHECK(terminated(full, full_len));
    if (at != NULL) {
        size_t pre = (size_t)(scheme_end + 3 - url);
        CHECK(strncmp(full, url, pre) == 0 && strncmp(full + pre, "***", 3) == 0 && strcmp(full + pre + 3, at) == 0);
    } else {
        CHECK(strcmp(full, url) == 0);
    }
    size_t sizes[] = {1, 2, 16, 64};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *red = malloc(sizes[i]);
        config_redacted_redis_url(url, red, sizes[i]);
        CHECK(terminated(red, sizes[i]) && strncmp(red, full, strlen(red)) == 0);
        CHECK(strlen(red) == (strlen(full) < sizes[i] ? strlen(full) : sizes[i] - 1));
        free(red);
    }
    free(full);
    free(url);
    return 0;
}
