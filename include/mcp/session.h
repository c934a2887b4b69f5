/*
 * session: the table of live MCP sessions (Mcp-Session-Id -> session).
 *
 * A session is created by `initialize`, touched by every request that names
 * it, and ends on DELETE, on idle expiry (config.session_ttl; the shorter
 * session_set_init_ttl until its first request after initialize) or at
 * shutdown. Ending a session runs the end hook, then ends its default
 * workspace (its runs are stopped, its files removed). Loop thread only.
 */
#ifndef MCP_SANDBOXD_SESSION_H
#define MCP_SANDBOXD_SESSION_H

#include "core/deadline.h"
#include "mcp/principal.h"
#include "mcp/workspace.h"

#include <bsd/sys/tree.h>
#include <stdint.h>

#define SESSION_ID_LEN 32 /**< hex characters: 128 random bits */

typedef struct session session_t;

struct session {
    RB_ENTRY(session) node;          /**< table link (private) */
    char id[SESSION_ID_LEN + 1];     /**< the Mcp-Session-Id value */
    char protocol[16];               /**< negotiated protocol version */
    char client[64];                 /**< clientInfo.name, for logs */
    char principal[PRINCIPAL_NAME_MAX + 1]; /**< the principal that opened it ("" without auth); only it may use it */
    uint64_t created_ms;             /**< util_now_ms() at initialize */
    uint64_t last_used_ms;           /**< util_now_ms() at the last request */
    deadline_t expiry;               /**< idle expiry (private) */
    int requested;                   /**< a request used it since initialize (else the init TTL applies) */
    uint64_t mirrored_ms;            /**< util_now_ms() when the Redis record was last written (mirror) */
    const char *tenant;              /**< who owns what it creates: `principal`, or `id` without auth */
    workspace_t *ws;                 /**< its default workspace (pinned: ends with the session) */
};

/** Why a session ended (passed to the end hook and logged). */
enum session_end_reason { SESSION_DELETED, SESSION_EXPIRED, SESSION_SHUTDOWN };

/** Called when a session ends, before it is freed. */
typedef void (*session_end_hook)(session_t *s, enum session_end_reason why);

/**
 * What an observer (the cluster) learns of sessions, on the loop thread:
 * on_create after a session is created or adopted here, on_touch when a
 * request used it, on_end after the end hook, before it is freed.
 */
typedef struct session_hooks {
    void (*on_create)(session_t *s);
    void (*on_touch)(session_t *s);
    void (*on_end)(session_t *s, enum session_end_reason why);
} session_hooks_t;

/** Sets the observer's hooks (NULL: none). One observer; startup only. */
void session_set_hooks(const session_hooks_t *h);
/** Sets the idle TTL, the cap on live sessions and the end hook. */
void session_setup(uint64_t ttl_ms, size_t max_sessions, session_end_hook hook);
/** Sets the shorter idle TTL of a session no request has used since initialize (default 60 s). */
void session_set_init_ttl(uint64_t ms);
/** Records that a JSON-RPC request (not a notification) used the session: the full idle TTL applies from now on. */
void session_note_request(session_t *s);
/**
 * Creates a session of `principal` (NULL: none) with a fresh random id; NULL
 * when the server's cap or the principal's (`per_principal`, 0: none) is reached.
 */
session_t *session_create(const char *protocol, const char *client, const char *principal, size_t per_principal);
/** Live sessions of `principal`. */
size_t session_count_principal(const char *principal);
/** 1 when a request of `principal` (NULL: none) may use `s`. */
int session_usable(const session_t *s, const char *principal);
/** 1 when `id` has the shape of a session id (32 lowercase hex characters). */
int session_id_valid(const char *id);
/**
 * Takes over a session another replica opened (its record was found in Redis):
 * same id, protocol and client. NULL when the id is malformed, already held
 * here, or the cap is reached.
 */
session_t *session_adopt(const char *id, const char *protocol, const char *client, const char *principal);
/** Finds a live session by id (any string; NULL when unknown). */
session_t *session_find(const char *id);
/** Marks the session as used now (postpones expiry) and tells the observer. */
void session_touch(session_t *s);
/** Ends and frees the session. */
void session_end(session_t *s, enum session_end_reason why);
/** Ends every session (shutdown). */
void session_end_all(void);
/** Number of live sessions. */
size_t session_count(void);

#endif
