/*
 * session: RB tree keyed by id. Expiry is lazy: each session's deadline is set
 * once for last_used + ttl; when it fires and the session was used since, it
 * is re-armed for the remainder instead of being moved on every request.
 */
#include "mcp/session.h"
#include "core/log.h"
#include "core/util.h"

#include <bsd/string.h>
#include <stdlib.h>
#include <string.h>

UTIL_ID_TREE(session_tree, session)

static struct session_tree sessions = RB_INITIALIZER(&sessions);
static size_t n_sessions;
static uint64_t ttl_ms = 3600 * 1000;
static uint64_t init_ttl_ms = 60 * 1000; /* a session no request used since initialize */
static size_t max_sessions = 10000;
static session_end_hook end_hook;
static session_hooks_t hooks; /* an observer (the cluster), or all NULL */

void session_setup(uint64_t ttl, size_t max, session_end_hook hook)
{
    ttl_ms = ttl;
    max_sessions = max;
    end_hook = hook;
}

void session_set_init_ttl(uint64_t ms)
{
    init_ttl_ms = ms;
}

/* The idle time after which `s` expires: the TTL once a request used it, the shorter init TTL before. */
static uint64_t idle_limit(const session_t *s)
{
    return s->requested || init_ttl_ms >= ttl_ms ? ttl_ms : init_ttl_ms;
}

void session_note_request(session_t *s)
{
    s->requested = 1;
}

void session_set_hooks(const session_hooks_t *h)
{
    hooks = h != NULL ? *h : (session_hooks_t){0};
}

static void on_expiry(deadline_t *d)
{
    session_t *s = (session_t *)((char *)d - offsetof(session_t, expiry));
    if (!deadline_idle_rearm(&s->expiry, s->last_used_ms, idle_limit(s), on_expiry))
        session_end(s, SESSION_EXPIRED);
}

/* Fills in a new session (its id set) and puts it in the table with its expiry armed. */
static void session_insert(session_t *s, const char *protocol, const char *client, const char *principal)
{
    _Static_assert(SESSION_ID_LEN <= EXEC_OWNER_ID_MAX, "exec stores the whole session id as a tenant");
    _Static_assert(PRINCIPAL_NAME_MAX <= EXEC_OWNER_ID_MAX, "exec stores the whole principal name");
    strlcpy(s->principal, principal != NULL ? principal : "", sizeof(s->principal));
    s->tenant = s->principal[0] != '\0' ? s->principal : s->id;
    char err[200];
    s->ws = workspace_create(s->tenant, s->principal[0] ? s->principal : NULL, 1, err, sizeof(err)); /* pinned: never refused */
    strlcpy(s->protocol, protocol, sizeof(s->protocol));
    strlcpy(s->client, client != NULL ? client : "", sizeof(s->client));
    s->created_ms = s->last_used_ms = util_now_ms();
    RB_INSERT(session_tree, &sessions, s);
    n_sessions++;
    deadline_arm(&s->expiry, idle_limit(s), on_expiry);
}

size_t session_count_principal(const char *principal)
{
    size_t n = 0;
    session_t *s;
    RB_FOREACH(s, session_tree, &sessions)
    n += !strcmp(s->principal, principal != NULL ? principal : "");
    return n;
}

int session_usable(const session_t *s, const char *principal)
{
    return !strcmp(s->principal, principal != NULL ? principal : "");
}

session_t *session_create(const char *protocol, const char *client, const char *principal, size_t per_principal)
{
    if (n_sessions >= max_sessions || (per_principal > 0 && session_count_principal(principal) >= per_principal))
        return NULL;
    session_t *s = xcalloc(1, sizeof(*s));
    do
        util_random_hex(s->id, SESSION_ID_LEN / 2);
    while (RB_FIND(session_tree, &sessions, s) != NULL);
    session_insert(s, protocol, client, principal);
    log_info("session %.8s created (client %s, protocol %s, principal %s)", s->id, s->client[0] ? s->client : "-",
             s->protocol, s->principal[0] ? s->principal : "-");
    if (hooks.on_create != NULL)
        hooks.on_create(s);
    return s;
}

int session_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++)
        if (n >= SESSION_ID_LEN || !((id[n] >= '0' && id[n] <= '9') || (id[n] >= 'a' && id[n] <= 'f')))
            return 0;
    return n == SESSION_ID_LEN;
}

session_t *session_adopt(const char *id, const char *protocol, const char *client, const char *principal)
{
    if (!session_id_valid(id) || n_sessions >= max_sessions || session_find(id) != NULL)
        return NULL;
    session_t *s = xcalloc(1, sizeof(*s));
    memcpy(s->id, id, SESSION_ID_LEN + 1);
    s->requested = 1; /* it served requests on the replica that opened it */
    session_insert(s, protocol, client, principal);
    if (hooks.on_create != NULL)
        hooks.on_create(s); /* the record now names this replica */
    return s;
}

session_t *session_find(const char *id)
{
    if (id == NULL || strlen(id) != SESSION_ID_LEN)
        return NULL;
    session_t key;
    memcpy(key.id, id, SESSION_ID_LEN + 1);
    return RB_FIND(session_tree, &sessions, &key);
}

void session_touch(session_t *s)
{
    s->last_used_ms = util_now_ms();
    if (hooks.on_touch != NULL)
        hooks.on_touch(s);
}

void session_end(session_t *s, enum session_end_reason why)
{
    static const char *names[] = {"deleted", "expired", "ended by shutdown"};
    log_info("session %.8s %s", s->id, names[why]);
    deadline_cancel(&s->expiry);
    RB_REMOVE(session_tree, &sessions, s);
    n_sessions--;
    if (end_hook != NULL)
        end_hook(s, why);
    /* a workspace used by handle since the session's last request (a client that opens a
     * session per call, polling its runs) outlives the expiry; otherwise it ends with the session */
    if (why == SESSION_EXPIRED && s->ws->last_used_ms > s->last_used_ms)
        workspace_release(s->ws);
    else
        workspace_end(s->ws);
    if (hooks.on_end != NULL)
        hooks.on_end(s, why);
    free(s);
}

void session_end_all(void)
{
    session_t *s;
    while ((s = RB_MIN(session_tree, &sessions)) != NULL)
        session_end(s, SESSION_SHUTDOWN);
}

size_t session_count(void)
{
    return n_sessions;
}
