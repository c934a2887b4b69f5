/*
 * principal: see principal.h. The table is an array rebuilt whole on each
 * load, so a reload either replaces it or leaves it as it was.
 */
#include "mcp/principal.h"
#include "core/util.h"

#include <bsd/string.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct principal {
    char name[PRINCIPAL_NAME_MAX + 1];
    char token[PRINCIPAL_TOKEN_MAX + 1]; /* NUL-padded: compared over the whole buffer */
    size_t len;
};

static struct principal *table;
static size_t n_table;
static char default_token[PRINCIPAL_TOKEN_MAX + 1];
static char tokens_path[1024];

static int valid_name(const char *s, size_t n)
{
    if (n == 0 || n > PRINCIPAL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* Adds name:token to `t` (n entries), refusing duplicates of either. 0, or -1 with err. */
static int add_entry(struct principal **t, size_t *n, const char *name, size_t nlen, const char *tok, size_t tlen,
                     char *err, size_t errlen)
{
    for (size_t i = 0; i < *n; i++) {
        if (strlen((*t)[i].name) == nlen && !memcmp((*t)[i].name, name, nlen)) {
            snprintf(err, errlen, "principal '%.*s' is defined twice", (int)nlen, name);
            return -1;
        }
        if ((*t)[i].len == tlen && !memcmp((*t)[i].token, tok, tlen)) {
            snprintf(err, errlen, "principal '%.*s' has the same token as '%s'", (int)nlen, name, (*t)[i].name);
            return -1;
        }
    }
    *t = realloc(*t, (*n + 1) * sizeof(**t));
    if (*t == NULL)
        util_oom();
    struct principal *p = &(*t)[(*n)++];
    memset(p, 0, sizeof(*p));
    memcpy(p->name, name, nlen);
    memcpy(p->token, tok, tlen);
    p->len = tlen;
    return 0;
}

/* One line of the tokens file (`lineno` for errors): blank, comment or name:token. */
static int parse_line(struct principal **t, size_t *n, char *line, int lineno, char *err, size_t errlen)
{
    size_t len = strcspn(line, "\r\n");
    line[len] = '\0';
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    char *s = line + strspn(line, " \t");
    if (*s == '\0' || *s == '#')
        return 0;
    char *colon = strchr(s, ':');
    if (colon == NULL || !valid_name(s, (size_t)(colon - s))) {
        snprintf(err, errlen, "line %d: expected name:token, the name of 1 to %d of [A-Za-z0-9._-]", lineno,
                 PRINCIPAL_NAME_MAX);
        return -1;
    }
    const char *tok = colon + 1;
    size_t tlen = strlen(tok);
    if (tlen < PRINCIPAL_TOKEN_MIN || tlen > PRINCIPAL_TOKEN_MAX || strpbrk(tok, " \t") != NULL) {
        snprintf(err, errlen, "line %d: the token of '%.*s' must be %d to %d characters without blanks", lineno,
                 (int)(colon - s), s, PRINCIPAL_TOKEN_MIN, PRINCIPAL_TOKEN_MAX);
        return -1;
    }
    return add_entry(t, n, s, (size_t)(colon - s), tok, tlen, err, errlen);
}

/* Builds a table from the default token and the file; replaces the current one on success. */
static int build(char *err, size_t errlen)
{
    struct principal *t = NULL;
    size_t n = 0;
    int rc = 0;
    if (default_token[0] != '\0')
        rc = add_entry(&t, &n, "default", 7, default_token, strlen(default_token), err, errlen);
    FILE *f = rc == 0 && tokens_path[0] != '\0' ? fopen(tokens_path, "re") : NULL;
    if (rc == 0 && tokens_path[0] != '\0' && f == NULL) {
        snprintf(err, errlen, "cannot read the tokens file %s: %s", tokens_path, strerror(errno));
        rc = -1;
    }
    char line[1024];
    for (int lineno = 1; rc == 0 && f != NULL && fgets(line, sizeof(line), f) != NULL; lineno++)
        rc = parse_line(&t, &n, line, lineno, err, errlen);
    if (f != NULL)
        fclose(f);
    if (rc == 0 && n == 0 && tokens_path[0] != '\0') { /* fail closed: an empty file must not turn auth off */
        snprintf(err, errlen, "the tokens file %s names no principal", tokens_path);
        rc = -1;
    }
    if (rc != 0) {
        if (t != NULL)
            explicit_bzero(t, n * sizeof(*t));
        free(t);
        return -1;
    }
    principal_free();
    table = t;
    n_table = n;
    return 0;
}

int principal_load(const char *token, const char *path, char *err, size_t errlen)
{
    strlcpy(default_token, token, sizeof(default_token));
    strlcpy(tokens_path, path, sizeof(tokens_path));
    return build(err, errlen);
}

int principal_reload(char *err, size_t errlen)
{
    return tokens_path[0] != '\0' ? build(err, errlen) : 0;
}

int principal_enabled(void)
{
    return n_table > 0;
}

size_t principal_count(void)
{
    return n_table;
}

int principal_authenticate(const char *tok, size_t len, char name[PRINCIPAL_NAME_MAX + 1])
{
    char given[PRINCIPAL_TOKEN_MAX + 1] = {0};
    int too_long = len > PRINCIPAL_TOKEN_MAX;
    memcpy(given, tok, too_long ? 0 : len);
    size_t hit = n_table;
    for (size_t i = 0; i < n_table; i++) { /* no early exit: every entry costs the same */
        int diff = (table[i].len != len) | too_long;
        diff |= CRYPTO_memcmp(given, table[i].token, sizeof(given)) != 0;
        hit = diff ? hit : i;
    }
    explicit_bzero(given, sizeof(given));
    if (hit == n_table)
        return -1;
    strlcpy(name, table[hit].name, PRINCIPAL_NAME_MAX + 1);
    return 0;
}

void principal_free(void)
{
    if (table != NULL)
        explicit_bzero(table, n_table * sizeof(*table));
    free(table);
    table = NULL;
    n_table = 0;
}
