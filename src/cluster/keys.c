/*
 * keys: see keys.h.
 */
#include "cluster/keys.h"
#include "core/config.h"
#include "core/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

void keys_session_hash(const char *sid, char out[MIRROR_SESSION_KEY_LEN + 1])
{
    unsigned char md[32];
    unsigned int n = 0;
    if (EVP_Digest(sid, strlen(sid), md, &n, EVP_sha256(), NULL) != 1 || n != sizeof(md))
        util_oom(); /* no digest: nothing sensible to store */
    static const char hex[] = "0123456789abcdef";
    for (unsigned int i = 0; i < n; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[2 * n] = '\0';
}

void keys_execution(char *buf, size_t len, const char *id, size_t id_len)
{
    snprintf(buf, len, "%s" KEYS_EXECUTION_PREFIX "%.*s", config.redis_prefix, (int)id_len, id);
}

void keys_execution_output(char *buf, size_t len, const char *id, size_t id_len)
{
    snprintf(buf, len, "%s" KEYS_EXECUTION_PREFIX "%.*s:output", config.redis_prefix, (int)id_len, id);
}

void keys_session_executions(char *buf, size_t len, const char *session_key)
{
    snprintf(buf, len, "%ssession:%s:executions", config.redis_prefix, session_key);
}

void keys_session_record(char *buf, size_t len, const char *session_key)
{
    snprintf(buf, len, "%smcp:session:%s", config.redis_prefix, session_key);
}

void keys_replica(char *buf, size_t len, const char *replica_id)
{
    snprintf(buf, len, "%sreplica:%s", config.redis_prefix, replica_id);
}

void keys_replica_running(char *buf, size_t len, const char *replica_id)
{
    snprintf(buf, len, "%sreplica:%s:running", config.redis_prefix, replica_id);
}

void keys_replica_control(char *buf, size_t len, const char *replica_id)
{
    snprintf(buf, len, "%sreplica:%s:control", config.redis_prefix, replica_id);
}

void keys_replica_replies(char *buf, size_t len, const char *replica_id)
{
    snprintf(buf, len, "%sreplica:%s:replies", config.redis_prefix, replica_id);
}

void keys_workspace_executions(char *buf, size_t len, const char *workspace_id)
{
    snprintf(buf, len, "%sworkspace:%s:executions", config.redis_prefix, workspace_id);
}

void keys_replicas(char *buf, size_t len)
{
    snprintf(buf, len, "%s" KEYS_REPLICAS, config.redis_prefix);
}

void keys_execution_prefix(char *buf, size_t len)
{
    snprintf(buf, len, "%s" KEYS_EXECUTION_PREFIX, config.redis_prefix);
}
