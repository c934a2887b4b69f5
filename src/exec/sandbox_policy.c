/*
 * sandbox_policy: a call's `sandbox_config` parsed into a sandbox_policy_t
 * (network, filesystem paths and write roots, resource limits), checked
 * against the server's caps; every refusal names the field.
 */
#include "exec/sandbox_policy.h"
#include "exec/sandbox_internal.h"
#include "exec/egress.h"
#include "core/config.h"
#include "core/util.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* "maxMemoryMB" -> "max_memory_mb"; snake_case passes through. */
static void to_snake(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 2 < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (isupper(c)) {
            if (i > 0 && (islower((unsigned char)in[i - 1]) || isdigit((unsigned char)in[i - 1])))
                out[o++] = '_';
            out[o++] = (char)tolower(c);
        } else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

static int check_path(const char *field, const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    if (path[0] != '/') {
        snprintf(err, errlen, "sandbox_config.%s: '%.200s' must be an absolute path", field, path);
        return -1;
    }
    if (n >= 4096) {
        snprintf(err, errlen, "sandbox_config.%s: a path is %zu characters long; the limit is 4095", field, n);
        return -1;
    }
    if (strstr(path, "/../") != NULL || (n >= 3 && !strcmp(path + n - 3, "/.."))) {
        snprintf(err, errlen, "sandbox_config.%s: '%.200s' must not contain '..'", field, path);
        return -1;
    }
    if (strpbrk(path, "\n\r") != NULL) {
        snprintf(err, errlen, "sandbox_config.%s: paths must not contain line breaks", field);
        return -1;
    }
    return 0;
}

/* allow_write / deny_write may not name the root or the kernel's pseudo filesystems. */
static int check_write_path(const char *field, const char *path, char *err, size_t errlen)
{
    static const char *const refused[] = {"/proc", "/sys", "/dev", NULL};
    /* "//", "/./" and a trailing "/." would spell "/" or /proc another way */
    size_t n = strlen(path);
    if (strstr(path, "//") != NULL || strstr(path, "/./") != NULL || (n >= 2 && !strcmp(path + n - 2, "/."))) {
        snprintf(err, errlen, "sandbox_config.%s: '%.200s' must be a normalized path (no '//' or '.' components)", field, path);
        return -1;
    }
    if (!strcmp(path, "/") || path[1] == '\0') {
        snprintf(err, errlen, "sandbox_config.%s: '/' is not allowed", field);
        return -1;
    }
    for (int i = 0; refused[i] != NULL; i++) {
        size_t l = strlen(refused[i]);
        if (!strncmp(path, refused[i], l) && (path[l] == '\0' || path[l] == '/')) {
            snprintf(err, errlen, "sandbox_config.%s: '%.200s' is under %s, which cannot be bound", field, path, refused[i]);
            return -1;
        }
    }
    return 0;
}

static int parse_paths(const char *field, const cJSON *v, char **out, int *n, char *err, size_t errlen)
{
    if (!cJSON_IsArray(v)) {
        snprintf(err, errlen, "sandbox_config.%s must be an array of absolute paths", field);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "sandbox_config.%s must contain only strings", field);
            return -1;
        }
        if (check_path(field, it->valuestring, err, errlen) != 0)
            return -1;
        if (strstr(field, "write") != NULL && check_write_path(field, it->valuestring, err, errlen) != 0)
            return -1;
        if (strstr(field, "write") != NULL) {
            int fd = sandbox_open_nofollow(it->valuestring);
            if (fd < 0 && errno == ELOOP) {
                snprintf(err, errlen, "sandbox_config.%s: '%.200s' goes through a symbolic link; give the real path", field,
                         it->valuestring);
                return -1;
            }
            if (fd >= 0)
                close(fd);
        }
        if (*n >= SANDBOX_MAX_PATHS) {
            snprintf(err, errlen, "sandbox_config.%s: at most %d paths", field, SANDBOX_MAX_PATHS);
            return -1;
        }
        out[(*n)++] = xstrdup(it->valuestring);
    }
    return 0;
}

static int parse_limit(const char *field, const cJSON *v, long cap, long *out, char *err, size_t errlen)
{
    if (cJSON_IsNumber(v) && v->valuedouble > (double)cap) {
        snprintf(err, errlen, "sandbox_config.resource_limits.%s = %.15g exceeds the server's cap of %ld", field,
                 v->valuedouble, cap);
        return -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble != (double)(long)v->valuedouble) {
        snprintf(err, errlen, "sandbox_config.resource_limits.%s must be a positive integer", field);
        return -1;
    }
    if (v->valuedouble > (double)cap) {
        snprintf(err, errlen, "sandbox_config.resource_limits.%s = %.15g exceeds the server's cap of %ld", field,
                 v->valuedouble, cap);
        return -1;
    }
    *out = (long)v->valuedouble;
    return 0;
}

/*
 * Caller write paths must lie under a root the operator opened
 * (--allow-write-root) or in the workspace root (where only the session's own
 * workspace is ever bound): tenants never get a host path of their choosing.
 */
static int check_write_roots(const char *field, char **paths, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        int ok = sandbox_path_under(paths[i], config.workspace_root);
        for (int r = 0; !ok && r < config.n_allow_write_root; r++)
            ok = sandbox_path_under(paths[i], config.allow_write_root[r]);
        if (!ok) {
            snprintf(err, errlen,
                     "sandbox_config.filesystem.%s: '%.200s' is not under a directory the operator opened for writing "
                     "(--allow-write-root%s)",
                     field, paths[i], config.n_allow_write_root == 0 ? "; none is configured" : "");
            return -1;
        }
    }
    return 0;
}

/* sandbox_config.network.mode: 'none', or 'host' where --allow-network allows it. 0 / -1 with err. */
static int parse_network_mode(const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen)
{
    if (cJSON_IsString(it) && !strcmp(it->valuestring, "none")) {
        p->network_host = 0;
        return 0;
    }
    if (!cJSON_IsString(it) || strcmp(it->valuestring, "host") != 0) {
        snprintf(err, errlen, "sandbox_config.network.mode must be 'none' or 'host'");
        return -1;
    }
    if (!config.allow_network) {
        snprintf(err, errlen, "sandbox_config.network.mode 'host' is not allowed on this server (start it with --allow-network)");
        return -1;
    }
    p->network_host = 1;
    return 0;
}

/* egress (issue 14): allowed_domains / denied_domains, an array of patterns, into p->egress. 0 / -1. */
static int parse_domains(const cJSON *it, int deny, sandbox_policy_t *p, char *err, size_t errlen)
{
    const cJSON *d;
    char why[300];
    if (!cJSON_IsArray(it)) {
        snprintf(err, errlen, "sandbox_config.network.%.40s must be an array of domain names", it->string);
        return -1;
    }
    cJSON_ArrayForEach(d, it)
    {
        if (!cJSON_IsString(d) || egress_policy_add(&p->egress, deny, d->valuestring, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "sandbox_config.network.%.40s: %s", it->string,
                     cJSON_IsString(d) ? why : "entries must be strings");
            return -1;
        }
    }
    return 0;
}

/* egress (issue 14): lists only mean something without a mode; no allowed name means no network. 0 / -1. */
static int network_domains_check(const cJSON *net, sandbox_policy_t *p, char *err, size_t errlen)
{
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(net, "mode");
    if (egress_policy_any_allowed(p->egress) && mode != NULL) {
        snprintf(err, errlen, "sandbox_config.network: allowed_domains cannot be combined with mode '%s' "
                              "(leave mode out to reach only the allowed domains)",
                 p->network_host ? "host" : "none");
        return -1;
    }
    if (!egress_policy_any_allowed(p->egress)) { /* only denials, or empty lists: no network, as before */
        egress_policy_free(p->egress);
        p->egress = NULL;
    }
    return 0;
}

/* sandbox_config.network: mode, or allowed_domains / denied_domains (issue 14). 0 / -1 with err. */
static int parse_network(const cJSON *sec, sandbox_policy_t *p, char *err, size_t errlen)
{
    const cJSON *it;
    if (cJSON_IsNull(sec))
        return 0;
    if (!cJSON_IsObject(sec)) {
        snprintf(err, errlen, "sandbox_config.network must be an object like {\"mode\": \"none\"}");
        return -1;
    }
    cJSON_ArrayForEach(it, sec)
    {
        char k[64];
        to_snake(it->string, k, sizeof(k));
        if (!strcmp(k, "mode")) {
            if (parse_network_mode(it, p, err, errlen) != 0)
                return -1;
        } else if (!strcmp(k, "allowed_domains") || !strcmp(k, "denied_domains")) {
            if (parse_domains(it, k[0] == 'd', p, err, errlen) != 0)
                return -1;
        } else {
            snprintf(err, errlen, "sandbox_config.network: unknown field '%.60s'", it->string);
            return -1;
        }
    }
    return network_domains_check(sec, p, err, errlen);
}

/* One field of a section: 0, -1 with err, or 1 when the field is unknown. */
typedef int (*section_field_fn)(const char *k, const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen);

/* Walks sandbox_config.<name> (an object), field by field. 0 / -1 with err. */
static int parse_section(const char *name, const cJSON *sec, section_field_fn field, sandbox_policy_t *p, char *err,
                         size_t errlen)
{
    const cJSON *it;
    if (!cJSON_IsObject(sec)) {
        snprintf(err, errlen, "sandbox_config.%s must be an object", name);
        return -1;
    }
    cJSON_ArrayForEach(it, sec)
    {
        char k[64];
        to_snake(it->string, k, sizeof(k));
        int rc = field(k, it, p, err, errlen);
        if (rc > 0)
            snprintf(err, errlen, "sandbox_config.%s: unknown field '%.60s'", name, it->string);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* filesystem: deny_read, allow_write, deny_write path lists (the write ones under --allow-write-root). */
static int filesystem_field(const char *k, const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen)
{
    if (!strcmp(k, "deny_read"))
        return parse_paths("filesystem.deny_read", it, p->deny_read, &p->n_deny_read, err, errlen) ? -1 : 0;
    if (!strcmp(k, "allow_write"))
        return parse_paths("filesystem.allow_write", it, p->allow_write, &p->n_allow_write, err, errlen) ||
                       check_write_roots("allow_write", p->allow_write, p->n_allow_write, err, errlen)
                   ? -1
                   : 0;
    if (!strcmp(k, "deny_write"))
        return parse_paths("filesystem.deny_write", it, p->deny_write, &p->n_deny_write, err, errlen) ||
                       check_write_roots("deny_write", p->deny_write, p->n_deny_write, err, errlen)
                   ? -1
                   : 0;
    return 1;
}

/* resource_limits: each under the server's maximum. */
static int limits_field(const char *k, const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen)
{
    if (!strcmp(k, "max_memory_mb"))
        return parse_limit(k, it, config.mem_max_mb, &p->mem_mb, err, errlen) ? -1 : 0;
    if (!strcmp(k, "max_cpu_seconds"))
        return parse_limit(k, it, config.cpu_max_s, &p->cpu_s, err, errlen) ? -1 : 0;
    if (!strcmp(k, "max_file_size_mb"))
        return parse_limit(k, it, config.fsize_max_mb, &p->fsize_mb, err, errlen) ? -1 : 0;
    if (!strcmp(k, "max_processes"))
        return parse_limit(k, it, config.nproc_max, &p->nproc, err, errlen) ? -1 : 0;
    return 1;
}

int sandbox_policy_parse(const cJSON *cfg, sandbox_policy_t *p, char *err, size_t errlen)
{
    char key[64];
    const cJSON *sec;
    memset(p, 0, sizeof(*p));
    p->mem_mb = config.mem_default_mb;
    p->cpu_s = config.cpu_default_s;
    p->fsize_mb = config.fsize_default_mb;
    p->nproc = config.nproc_default;
    if (cfg == NULL || cJSON_IsNull(cfg))
        return 0;
    if (!cJSON_IsObject(cfg)) {
        snprintf(err, errlen, "sandbox_config must be an object");
        return -1;
    }
    cJSON_ArrayForEach(sec, cfg)
    {
        to_snake(sec->string, key, sizeof(key));
        int rc;
        if (!strcmp(key, "network"))
            rc = parse_network(sec, p, err, errlen);
        else if (!strcmp(key, "filesystem"))
            rc = parse_section("filesystem", sec, filesystem_field, p, err, errlen);
        else if (!strcmp(key, "resource_limits"))
            rc = parse_section("resource_limits", sec, limits_field, p, err, errlen);
        else {
            snprintf(err, errlen, "sandbox_config: unknown field '%.60s' (known: network, filesystem, resource_limits)",
                     sec->string);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

void sandbox_policy_free(sandbox_policy_t *p)
{
    egress_policy_free(p->egress);
    for (int i = 0; i < p->n_deny_read; i++)
        free(p->deny_read[i]);
    for (int i = 0; i < p->n_allow_write; i++)
        free(p->allow_write[i]);
    for (int i = 0; i < p->n_deny_write; i++)
        free(p->deny_write[i]);
    memset(p, 0, sizeof(*p));
}
