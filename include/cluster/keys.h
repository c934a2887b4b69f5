/*
 * keys: every Redis key name the cluster uses, in one place, and the hash
 * that stands for an owner (principal or session id) in them (Redis never holds a raw session id:
 * it is a bearer capability; whoever reads Redis learns only its SHA-256).
 *
 *   execution:{id}              the execution's record (JSON)
 *   execution:{id}:output       its events, oldest first (a list)
 *   session:{key}:executions    the set of an owner's execution ids (key: SHA-256 of the
 *                               principal's name, or of the session id without auth)
 *   workspace:{id}:executions   the set of a workspace's execution ids
 *   mcp:session:{key}           the session record (adoption)
 *   replica:{id}                a replica's heartbeat
 *   replica:{id}:running        its running executions (id -> process instance)
 *   replica:{id}:control        control commands other replicas send it (a list; control.c)
 *   replica:{id}:replies        the answers to the commands it sent (a list)
 *   replicas                    the set of replica ids
 *
 * With --redis-prefix P, every key is P followed by the name above
 * (P"execution:{id}", P"replicas"...); without it the names are as listed.
 * Each writer fills a caller's buffer (strlcpy semantics: cut, never overrun).
 */
#ifndef MCP_SANDBOXD_KEYS_H
#define MCP_SANDBOXD_KEYS_H

#include "cluster/queue.h"

#include <stddef.h>

/** The prefix of an execution's keys (the replica sweep's Lua script builds them from it). */
#define KEYS_EXECUTION_PREFIX "execution:"
/** The set of replica ids. */
#define KEYS_REPLICAS "replicas"

/** The session key: SHA-256 of the session id, in hex. */
void keys_session_hash(const char *session_id, char out[MIRROR_SESSION_KEY_LEN + 1]);
/** execution:{id} (`id_len` bytes of `id`). */
void keys_execution(char *buf, size_t len, const char *id, size_t id_len);
/** execution:{id}:output. */
void keys_execution_output(char *buf, size_t len, const char *id, size_t id_len);
/** session:{key}:executions. */
void keys_session_executions(char *buf, size_t len, const char *session_key);
/** workspace:{id}:executions. */
void keys_workspace_executions(char *buf, size_t len, const char *workspace_id);
/** mcp:session:{key}. */
void keys_session_record(char *buf, size_t len, const char *session_key);
/** The set of replica ids, prefixed. */
void keys_replicas(char *buf, size_t len);
/** The prefix of an execution's keys, prefixed (for the replica sweep's script). */
void keys_execution_prefix(char *buf, size_t len);
/** replica:{id}. */
void keys_replica(char *buf, size_t len, const char *replica_id);
/** replica:{id}:running. */
void keys_replica_running(char *buf, size_t len, const char *replica_id);
/** replica:{id}:control. */
void keys_replica_control(char *buf, size_t len, const char *replica_id);
/** replica:{id}:replies. */
void keys_replica_replies(char *buf, size_t len, const char *replica_id);

#endif
