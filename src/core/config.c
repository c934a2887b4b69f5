/*
 * config: table-driven parsing of flags and environment variables.
 *
 * Each setting appears once in `options`, with its flag, its environment
 * variable, its type and its accepted range; defaults, environment and flags
 * are applied in that order so flags win. Every rejection names the setting
 * and what it accepts, and the caller exits with status 2.
 */
#include "core/config.h"
#include "core/log.h"

#include <bsd/string.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

config_t config;

enum opt_type { OPT_INT, OPT_SIZE, OPT_STR, OPT_SECRET, OPT_BOOL, OPT_LIST, OPT_LEVEL, OPT_ISOLATION, OPT_TEXT_FORMAT, OPT_HELP, OPT_VERSION };

struct option_def {
    const char *flag;     /* "--port" */
    const char *env;      /* "SANDBOX_PORT" or NULL */
    enum opt_type type;
    size_t off;           /* offset into config_t */
    size_t cap;           /* buffer size for strings */
    int64_t min, max;     /* range for numbers */
    const char *def;      /* default, as text */
    const char *help;
};

#define OFF(f) offsetof(config_t, f)
#define STR(f) OFF(f), sizeof(((config_t *)0)->f)

static const struct option_def options[] = {
#define OPTION(...) {__VA_ARGS__},
#include "options.def"
#undef OPTION
};
#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* Characters a replica id may hold: it becomes part of Redis keys (replica:{id}). */
static int replica_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
           c == ':' || c == '-';
}

/* Parses a decimal integer with an optional K/M/G suffix (sizes only). */
static int parse_number(const char *s, int with_suffix, int64_t *out)
{
    if (*s == '\0' || isspace((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s)
        return -1;
    if (with_suffix && *end != '\0') {
        int shift = 0;
        switch (toupper((unsigned char)*end)) {
        case 'K': shift = 10; break;
        case 'M': shift = 20; break;
        case 'G': shift = 30; break;
        default: return -1;
        }
        end++;
        if (toupper((unsigned char)*end) == 'B' || toupper((unsigned char)*end) == 'I')
            end++;
        if (v < 0 || v > (INT64_MAX >> shift))
            return -1; /* also keeps the shift defined */
        v <<= shift;
    }
    if (*end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* The list options in order: their index (for the flags that replace a list) and count field. */
static const size_t list_offsets[] = {OFF(allowed_origins), OFF(deny_read), OFF(allow_write_root),
                                      OFF(egress_domains), OFF(egress_allow_cidr), OFF(egress_resolve)};
#define N_LISTS ((int)(sizeof(list_offsets) / sizeof(list_offsets[0])))

/* The index of the list option at `off`. */
static int list_index(size_t off)
{
    for (int i = 0; i < N_LISTS; i++)
        if (list_offsets[i] == off)
            return i;
    return 0;
}

/* The count field of the list option at `off`. */
static int *list_count(config_t *cfg, size_t off)
{
    int *counts[] = {&cfg->n_allowed_origins, &cfg->n_deny_read, &cfg->n_allow_write_root,
                     &cfg->n_egress_domains, &cfg->n_egress_allow_cidr, &cfg->n_egress_resolve};
    return counts[list_index(off)];
}

static void list_free(char **list, int *n)
{
    for (int i = 0; i < *n; i++) {
        free(list[i]);
        list[i] = NULL;
    }
    *n = 0;
}

/* Appends comma-separated items; an empty value clears the list. -1: too many, -2: out of memory. */
static int list_add(char **list, int *n, const char *value)
{
    if (*value == '\0') {
        list_free(list, n);
        return 0;
    }
    char *copy = strdup(value), *save = NULL;
    if (copy == NULL)
        return -2;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
        while (isspace((unsigned char)*tok))
            tok++;
        size_t l = strlen(tok);
        while (l > 0 && isspace((unsigned char)tok[l - 1]))
            tok[--l] = '\0';
        if (l == 0)
            continue;
        if (*n >= CONFIG_MAX_LIST - 1) {
            free(copy);
            return -1;
        }
        if ((list[*n] = strdup(tok)) == NULL) {
            free(copy);
            return -2;
        }
        (*n)++;
    }
    free(copy);
    return 0;
}

/* Applies one textual value to the setting `o`; on error fills err. */
static int apply(config_t *cfg, const struct option_def *o, const char *value, const char *source, char *err, size_t errlen)
{
    char *base = (char *)cfg + o->off;
    int64_t v;
    switch (o->type) {
    case OPT_INT:
    case OPT_SIZE:
        if (parse_number(value, o->type == OPT_SIZE, &v) != 0 || v < o->min || v > o->max) {
            snprintf(err, errlen, "%s: expected %s in %lld..%lld, got '%.64s'", source,
                     o->type == OPT_SIZE ? "a byte size (K/M/G suffix allowed)" : "an integer", (long long)o->min,
                     (long long)o->max, value);
            return -1;
        }
        if (o->type == OPT_INT)
            *(int *)base = (int)v;
        else
            *(int64_t *)base = v;
        return 0;
    case OPT_STR:
    case OPT_SECRET:
        if (strlcpy(base, value, o->cap) >= o->cap) {
            snprintf(err, errlen, "%s: longer than %zu characters", source, o->cap - 1);
            return -1;
        }
        return 0;
    case OPT_BOOL:
        if (!strcmp(value, "1") || !strcasecmp(value, "true") || !strcasecmp(value, "yes") || !strcasecmp(value, "on"))
            *(int *)base = 1;
        else if (!strcmp(value, "0") || !strcasecmp(value, "false") || !strcasecmp(value, "no") || !strcasecmp(value, "off") || !*value)
            *(int *)base = 0;
        else {
            snprintf(err, errlen, "%s: expected true or false, got '%.64s'", source, value);
            return -1;
        }
        return 0;
    case OPT_LEVEL:
        if ((*(int *)base = log_level_parse(value)) < 0) {
            snprintf(err, errlen, "%s: expected one of error, warn, info, debug, got '%.64s'", source, value);
            return -1;
        }
        return 0;
    case OPT_ISOLATION:
        if (!strcmp(value, "bwrap"))
            *(int *)base = 0;
        else if (!strcmp(value, "none"))
            *(int *)base = 1;
        else {
            snprintf(err, errlen, "%s: expected bwrap or none, got '%.64s'", source, value);
            return -1;
        }
        return 0;
    case OPT_TEXT_FORMAT:
        if (!strcmp(value, "compact") || !strcmp(value, "json"))
            *(int *)base = !strcmp(value, "json");
        else {
            snprintf(err, errlen, "%s: expected compact or json, got '%.64s'", source, value);
            return -1;
        }
        return 0;
    case OPT_LIST: {
        int *n = list_count(cfg, o->off);
        int r = list_add((char **)base, n, value);
        if (r != 0) {
            if (r == -2)
                snprintf(err, errlen, "%s: out of memory", source);
            else
                snprintf(err, errlen, "%s: at most %d entries", source, CONFIG_MAX_LIST - 1);
            return -1;
        }
        return 0;
    }
    default:
        return 0;
    }
}

static void print_help(char *out, size_t outlen)
{
    size_t used = (size_t)snprintf(out, outlen,
                                   "usage: mcp-sandboxd [options]\n"
                                   "MCP server (Streamable HTTP at /mcp) running commands in a bubblewrap sandbox.\n\n");
    for (size_t i = 0; i < N_OPTIONS && used < outlen; i++) {
        const struct option_def *o = &options[i];
        char left[64];
        snprintf(left, sizeof(left), "%s%s", o->flag,
                 o->type == OPT_HELP || o->type == OPT_VERSION || o->type == OPT_BOOL ? "" : " VALUE");
        used += (size_t)snprintf(out + used, outlen - used, "  %-26s %s", left, o->help);
        if (used < outlen && o->def != NULL && *o->def != '\0' && o->type != OPT_SECRET)
            used += (size_t)snprintf(out + used, outlen - used, " [%s]", o->def);
        if (used < outlen && o->env != NULL)
            used += (size_t)snprintf(out + used, outlen - used, " (env %s)", o->env);
        if (used < outlen)
            used += (size_t)snprintf(out + used, outlen - used, "\n");
    }
}

static const char *env_get(char **envp, const char *name)
{
    size_t l = strlen(name);
    for (char **e = envp; e != NULL && *e != NULL; e++)
        if (strncmp(*e, name, l) == 0 && (*e)[l] == '=')
            return *e + l + 1;
    return NULL;
}

/* --uid-range START:COUNT -> uid_start, uid_count (0 when unset). 0, or -1 with err. */
static int parse_uid_range(config_t *cfg, char *err, size_t errlen)
{
    cfg->uid_start = cfg->uid_count = 0;
    if (cfg->uid_range[0] == '\0')
        return 0;
    char *end;
    errno = 0;
    long a = strtol(cfg->uid_range, &end, 10), b = -1;
    if (errno == 0 && end != cfg->uid_range && *end == ':' && isdigit((unsigned char)end[1]))
        b = strtol(end + 1, &end, 10);
    if (errno != 0 || *end != '\0' || a < 1000 || b < 1 || b > 1048576 || a + b - 1 > 2147483646L) {
        snprintf(err, errlen, "--uid-range: expected START:COUNT with START >= 1000, COUNT in 1..1048576 and "
                              "START+COUNT-1 <= 2147483646, got '%.64s'", cfg->uid_range);
        return -1;
    }
    cfg->uid_start = a;
    cfg->uid_count = b;
    return 0;
}

/* Defaults, then the environment (a list from it replaces the default list). CONFIG_OK / CONFIG_ERROR. */
static int apply_defaults_and_env(config_t *cfg, char **envp, char *err, size_t errlen)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].def != NULL && apply(cfg, &options[i], options[i].def, options[i].flag, err, errlen) != 0)
            return CONFIG_ERROR;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const char *v;
        if (options[i].env != NULL && (v = env_get(envp, options[i].env)) != NULL) {
            if (options[i].type == OPT_LIST) /* the environment replaces the default list */
                apply(cfg, &options[i], "", options[i].env, err, errlen);
            if (apply(cfg, &options[i], v, options[i].env, err, errlen) != 0)
                return CONFIG_ERROR;
        }
    }
    return CONFIG_OK;
}

/* The option a command-line argument names ("--flag" or "--flag=value"; *value set for the latter); NULL if none. */
static const struct option_def *find_flag(const char *arg, const char **value)
{
    char name[64];
    const char *eq = strchr(arg, '=');
    *value = NULL;
    if (eq != NULL && (size_t)(eq - arg) < sizeof(name)) {
        memcpy(name, arg, (size_t)(eq - arg));
        name[eq - arg] = '\0';
        *value = eq + 1;
    } else {
        strlcpy(name, arg, sizeof(name));
    }
    const struct option_def *o = NULL;
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (!strcmp(options[i].flag, name))
            o = &options[i];
    return o;
}

/*
 * The command line over the environment: --help and --version answer in
 * `out` (CONFIG_EXIT); the first list flag of a kind replaces the list the
 * environment gave. CONFIG_OK / CONFIG_ERROR / CONFIG_EXIT.
 */
static int apply_flags(config_t *cfg, int argc, char **argv, char *err, size_t errlen, char *out, size_t outlen)
{
    int lists_from_flags[N_LISTS] = {0};
    for (int a = 1; a < argc; a++) {
        const char *value;
        const struct option_def *o = find_flag(argv[a], &value);
        if (o == NULL) {
            snprintf(err, errlen, "unknown option '%.64s' (see --help)", argv[a]);
            return CONFIG_ERROR;
        }
        if (o->type == OPT_HELP) {
            print_help(out, outlen);
            return CONFIG_EXIT;
        }
        if (o->type == OPT_VERSION) {
            snprintf(out, outlen, "mcp-sandboxd %s\n", MCP_SANDBOXD_VERSION);
            return CONFIG_EXIT;
        }
        if (value == NULL && o->type == OPT_BOOL) {
            value = "1";
        } else if (value == NULL) {
            if (a + 1 >= argc) {
                snprintf(err, errlen, "%s: needs a value", o->flag);
                return CONFIG_ERROR;
            }
            value = argv[++a];
        }
        if (o->type == OPT_LIST) {
            int k = list_index(o->off);
            if (!lists_from_flags[k]) /* flags replace what the environment said */
                apply(cfg, o, "", o->flag, err, errlen);
            lists_from_flags[k] = 1;
        }
        if (apply(cfg, o, value, o->flag, err, errlen) != 0)
            return CONFIG_ERROR;
    }
    return CONFIG_OK;
}

/* The replica id: given, or hostname:port with characters a key part cannot hold replaced. CONFIG_OK / CONFIG_ERROR. */
static int settle_replica(config_t *cfg, char *err, size_t errlen)
{
    if (cfg->replica[0] == '\0') {
        char hn[256] = "localhost";
        if (gethostname(hn, sizeof(hn) - 1) != 0 || hn[0] == '\0')
            strlcpy(hn, "localhost", sizeof(hn));
        hn[sizeof(hn) - 1] = '\0';
        for (char *c = hn; *c; c++) /* keep the id usable as a key part */
            if (!replica_char_ok(*c))
                *c = '-';
        snprintf(cfg->replica, sizeof(cfg->replica), "%.120s:%d", hn, cfg->port);
    }
    for (const char *c = cfg->replica; *c; c++)
        if (!replica_char_ok(*c) || c - cfg->replica >= 128) {
            snprintf(err, errlen, "--replica-id: expected 1 to 128 of A-Z a-z 0-9 . _ : -, got '%.64s'", cfg->replica);
            return CONFIG_ERROR;
        }
    return CONFIG_OK;
}

/* What must hold between options once all are read. CONFIG_OK / CONFIG_ERROR. */
static int check_consistency(config_t *cfg, char *err, size_t errlen)
{
    if (cfg->timeout > cfg->max_timeout) {
        snprintf(err, errlen, "--timeout: %d is above --max-timeout %d", cfg->timeout, cfg->max_timeout);
        return CONFIG_ERROR;
    }
    if (cfg->mem_default_mb > cfg->mem_max_mb || cfg->cpu_default_s > cfg->cpu_max_s ||
        cfg->fsize_default_mb > cfg->fsize_max_mb || cfg->nproc_default > cfg->nproc_max) {
        snprintf(err, errlen, "resource limits: each default (--memory-mb, --cpu-seconds, --file-size-mb, --processes) must not exceed its --max-* cap");
        return CONFIG_ERROR;
    }
    if (cfg->workspace_root[0] != '/') {
        snprintf(err, errlen, "--workspace-root: expected an absolute path, got '%.64s'", cfg->workspace_root);
        return CONFIG_ERROR;
    }
    if (parse_uid_range(cfg, err, errlen) != 0)
        return CONFIG_ERROR;
    for (int i = 0; i < cfg->n_allow_write_root; i++)
        if (cfg->allow_write_root[i][0] != '/' || strstr(cfg->allow_write_root[i], "/..") != NULL) {
            snprintf(err, errlen, "--allow-write-root: expected an absolute path without '..', got '%.64s'", cfg->allow_write_root[i]);
            return CONFIG_ERROR;
        }
    for (const char *c = cfg->redis_prefix; *c; c++)
        if (!replica_char_ok(*c)) {
            snprintf(err, errlen, "--redis-prefix: expected A-Z a-z 0-9 . _ : -, got '%.64s'", cfg->redis_prefix);
            return CONFIG_ERROR;
        }
    return settle_replica(cfg, err, errlen);
}

int config_parse(config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen, char *out, size_t outlen)
{
    char dummy[1];
    if (out == NULL) {
        out = dummy;
        outlen = sizeof(dummy);
    }
    memset(cfg, 0, sizeof(*cfg));
    int rc = apply_defaults_and_env(cfg, envp, err, errlen);
    if (rc == CONFIG_OK)
        rc = apply_flags(cfg, argc, argv, err, errlen, out, outlen);
    if (rc == CONFIG_OK)
        rc = check_consistency(cfg, err, errlen);
    return rc;
}

void config_free(config_t *cfg)
{
    list_free(cfg->allowed_origins, &cfg->n_allowed_origins);
    list_free(cfg->deny_read, &cfg->n_deny_read);
    list_free(cfg->allow_write_root, &cfg->n_allow_write_root);
    list_free(cfg->egress_domains, &cfg->n_egress_domains);
    list_free(cfg->egress_allow_cidr, &cfg->n_egress_allow_cidr);
    list_free(cfg->egress_resolve, &cfg->n_egress_resolve);
}

void config_redacted_redis_url(const char *url, char *buf, size_t len)
{
    const char *scheme_end = strstr(url, "://");
    /* the password may itself contain '@': the host starts after the last one */
    const char *at = scheme_end != NULL ? strrchr(scheme_end + 3, '@') : NULL;
    if (at == NULL) {
        strlcpy(buf, url, len);
        return;
    }
    snprintf(buf, len, "%.*s***%s", (int)(scheme_end + 3 - url), url, at);
}
