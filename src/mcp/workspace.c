/*
 * workspace: see workspace.h. An RB tree keyed by id; idle expiry is lazy as
 * in session.c (the deadline is re-armed for the remainder when it fires on
 * a workspace used since).
 */
#include "mcp/workspace.h"
#include "core/log.h"
#include "core/util.h"
#include "exec/exec.h"

#include <bsd/string.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

UTIL_ID_TREE(workspace_tree, workspace)

static struct workspace_tree workspaces = RB_INITIALIZER(&workspaces);
static size_t n_workspaces;
static uint64_t ttl_ms = 3600 * 1000;
static size_t max_per_tenant;

void workspace_setup(uint64_t ttl, size_t per_tenant)
{
    ttl_ms = ttl;
    max_per_tenant = per_tenant;
}

static void on_expiry(deadline_t *d)
{
    workspace_t *w = (workspace_t *)((char *)d - offsetof(workspace_t, expiry));
    if (deadline_idle_rearm(&w->expiry, w->last_used_ms, ttl_ms, on_expiry))
        return;
    log_info("workspace %s expired (idle %llu s): its runs are stopped and its files removed", w->id,
             (unsigned long long)(ttl_ms / 1000));
    workspace_end(w);
}

size_t workspace_count_tenant(const char *tenant)
{
    size_t n = 0;
    workspace_t *w;
    RB_FOREACH(w, workspace_tree, &workspaces)
    n += !w->pinned && !strcmp(w->tenant, tenant);
    return n;
}

workspace_t *workspace_create(const char *tenant, const char *principal, int pinned, char *err, size_t errlen)
{
    if (!pinned && max_per_tenant > 0 && workspace_count_tenant(tenant) >= max_per_tenant) {
        snprintf(err, errlen,
                 "Workspace limit reached: you have %zu workspaces (--max-workspaces-per-principal); "
                 "reuse one with workspace_id or let one expire",
                 max_per_tenant);
        return NULL;
    }
    workspace_t *w = xcalloc(1, sizeof(*w));
    do {
        memcpy(w->id, "w-", 2);
        util_random_hex(w->id + 2, (WORKSPACE_ID_LEN - 2) / 2);
    } while (RB_FIND(workspace_tree, &workspaces, w) != NULL);
    strlcpy(w->tenant, tenant, sizeof(w->tenant));
    w->pinned = pinned;
    w->exec.id = w->id;
    w->exec.tenant = w->tenant;
    w->exec.principal = principal != NULL ? w->tenant : NULL; /* with auth the tenant is the principal */
    w->last_used_ms = util_now_ms();
    RB_INSERT(workspace_tree, &workspaces, w);
    n_workspaces++;
    if (!pinned)
        deadline_arm(&w->expiry, ttl_ms, on_expiry);
    log_info("workspace %s created (principal %s%s)", w->id, principal != NULL ? principal : "-",
             pinned ? ", a session's default" : "");
    return w;
}

workspace_t *workspace_find(const char *tenant, const char *id)
{
    if (id == NULL || strlen(id) != WORKSPACE_ID_LEN)
        return NULL;
    workspace_t key;
    memcpy(key.id, id, WORKSPACE_ID_LEN + 1);
    workspace_t *w = RB_FIND(workspace_tree, &workspaces, &key);
    return w != NULL && !strcmp(w->tenant, tenant) ? w : NULL;
}

void workspace_touch(workspace_t *w)
{
    w->last_used_ms = util_now_ms();
}

void workspace_release(workspace_t *w)
{
    w->pinned = 0;
    log_info("workspace %s outlives its session: it is used by handle; it expires %llu s after its last use", w->id,
             (unsigned long long)(ttl_ms / 1000));
    if (!deadline_idle_rearm(&w->expiry, w->last_used_ms, ttl_ms, on_expiry))
        workspace_end(w);
}

void workspace_end(workspace_t *w)
{
    deadline_cancel(&w->expiry);
    RB_REMOVE(workspace_tree, &workspaces, w);
    n_workspaces--;
    exec_session_end(&w->exec);
    free(w);
}

void workspace_end_all(void)
{
    workspace_t *w;
    while ((w = RB_MIN(workspace_tree, &workspaces)) != NULL)
        workspace_end(w);
}

size_t workspace_count(void)
{
    return n_workspaces;
}
