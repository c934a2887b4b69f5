/*
 * config: the server's settings, from flags and environment (flags win).
 *
 * Parsed once in main() before any thread starts; read-only afterwards, so
 * every thread may read the global `config` without locking.
 */
#ifndef MCP_SANDBOXD_CONFIG_H
#define MCP_SANDBOXD_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_MAX_LIST 32
/**
 * Cap on --max-output-bytes: 256 MiB. The output is kept as event JSON; a
 * result carries it as structuredContent and again escaped as text (at most
 * two bytes per byte of JSON), which this keeps well below STRBUF_JSON_MAX
 * (1 GiB) and cJSON's INT_MAX. Past that bound a result is an error, not an abort.
 */
#define CONFIG_MAX_OUTPUT_BYTES (INT64_C(256) << 20)

/** Everything the server can be told at startup. */
typedef struct config {
    char host[256];               /**< address to bind (SANDBOX_HOST / --host) */
    int port;                     /**< TCP port (SANDBOX_PORT / --port) */
    char token[512];              /**< bearer token, "" = no auth; never logged */
    char tokens_file[1024];       /**< principals file (--tokens-file), "" = none */
    int max_concurrent_principal; /**< running executions per principal, 0 = no per-principal cap */
    int max_sessions_principal;   /**< live sessions per principal, 0 = no per-principal cap */
    int workspace_ttl;            /**< idle seconds before an unpinned workspace expires */
    int max_workspaces_principal; /**< unpinned workspaces per principal, 0 = no cap */
    char redis_prefix[64];        /**< put before every Redis key ("" = none) */
    char redis_url[1024];         /**< REDIS_URL, "" = memory only; never logged as-is */
    int max_concurrent;           /**< running executions in the whole server */
    int max_per_session;          /**< running executions per MCP session */
    int timeout;                  /**< default timeout_seconds of a run */
    int max_timeout;              /**< largest timeout_seconds a client may ask for */
    char log_file[1024];          /**< "" = stderr */
    int log_level;                /**< LOG_ERROR..LOG_DEBUG */
    int64_t max_body;             /**< request body cap in bytes */
    int session_ttl;              /**< idle seconds before a session expires */
    int session_init_ttl;         /**< the same for a session no request used since initialize */
    int max_sessions;             /**< live sessions cap */
    char *allowed_origins[CONFIG_MAX_LIST]; /**< NULL-terminated; NULL list = loopback default */
    int n_allowed_origins;
    char workspace_root[1024];    /**< per-session workspaces live under here */
    int allow_network;            /**< may sandbox_config ask for {"mode":"host"} */
    int insecure_no_auth;         /**< serve a non-loopback address without a token (fail-closed otherwise) */
    char sandbox_user[64];        /**< user the sandboxes run as when we are root */
    char *deny_read[CONFIG_MAX_LIST]; /**< extra paths no sandbox may read */
    int n_deny_read;
    char *allow_write_root[CONFIG_MAX_LIST]; /**< directories under which callers may allow_write / deny_write */
    int n_allow_write_root;
    char uid_range[64];           /**< --uid-range START:COUNT as given ("" = none) */
    long uid_start, uid_count;    /**< parsed --uid-range; count 0 = shared --sandbox-user */
    int workspace_quota_mb;       /**< disk quota per workspace (measured, quota.c); 0 = none */
    int isolation_none;           /**< --isolation none: development only */
    int retention;                /**< seconds a finished execution is kept */
    int wait_deadline;            /**< seconds a parked wait may last */
    int max_events;               /**< events kept per execution */
    int max_result_chars;         /**< ceiling on max_output_chars (--max-result-chars) */
    int text_json;                /**< --text-format json: output results' text is their JSON (0.4.0) */
    int64_t max_output_bytes;     /**< event bytes kept per execution */
    int64_t max_retained_session; /**< output bytes a session's runs may retain (finished runs released first) */
    int64_t max_retained_total;   /**< output bytes all runs may retain (finished runs released first) */
    int kill_grace_ms;            /**< SIGTERM -> SIGKILL grace */
    int shutdown_grace;           /**< seconds in-flight work gets at shutdown */
    int mem_default_mb, mem_max_mb;     /**< RLIMIT_AS default and cap */
    int cpu_default_s, cpu_max_s;       /**< RLIMIT_CPU default and cap */
    int fsize_default_mb, fsize_max_mb; /**< RLIMIT_FSIZE default and cap */
    int nproc_default, nproc_max;       /**< max_processes default and cap (pids.max; RLIMIT_NPROC) */
    int cgroups;                  /**< a cgroup per run when available (--cgroups=off: rlimits only) */
    char cgroup_root[1024];       /**< cgroupfs mount point (--cgroup-root) */
    int cpu_percent;              /**< CPU share per run in percent of one core, 0 = no cap */
    int redis_ttl;                /**< TTL of mirrored keys, seconds */
    int64_t mirror_queue_bytes;   /**< mirror queue cap */
    char replica[320];            /**< replica id (--replica-id) recorded in Redis, default hostname:port */
    int heartbeat;                /**< seconds between heartbeats (replica:{id} lives 3 of them) */
    /* egress (issue 14) */
    char *egress_domains[CONFIG_MAX_LIST];    /**< --egress-domains: the ceiling of allowed_domains (empty: "*") */
    int n_egress_domains;
    char *egress_allow_cidr[CONFIG_MAX_LIST]; /**< --egress-allow-cidr: refused ranges opened */
    int n_egress_allow_cidr;
    char *egress_resolve[CONFIG_MAX_LIST];    /**< --egress-resolve NAME=ADDR pins */
    int n_egress_resolve;
    int egress_max_connections;   /**< open proxy connections per run */
    int egress_max_lookups;       /**< DNS lookups in flight (all runs) */
    int egress_resolve_timeout;   /**< seconds one lookup may take */
} config_t;

/** The process-wide configuration, filled by config_parse(). */
extern config_t config;

/** Result of config_parse(). */
enum config_result {
    CONFIG_OK = 0,   /**< run the server */
    CONFIG_EXIT = 1, /**< --help / --version printed: exit 0 */
    CONFIG_ERROR = 2 /**< bad setting: `err` says which; exit 2 */
};

/**
 * Fills `cfg` from defaults, then the environment `envp`, then `argv` (flags win).
 * On CONFIG_ERROR writes one line naming the setting and its accepted range into err.
 * `out` receives --help / --version text (may be NULL to discard).
 */
int config_parse(config_t *cfg, int argc, char **argv, char **envp, char *err, size_t errlen, char *out, size_t outlen);

/** Releases the lists config_parse() allocated. */
void config_free(config_t *cfg);

/** Writes the Redis URL with any password replaced by "***" (for logs). */
void config_redacted_redis_url(const char *url, char *buf, size_t len);

#endif
