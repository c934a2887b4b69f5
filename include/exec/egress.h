/*
 * egress: a run's way out, decided outside the sandbox (issue 14).
 *
 * A run with `sandbox_config.network.allowed_domains` keeps its own network
 * namespace (loopback only). The bridge (bridge/mcp-sandboxd-bridge.c) opens
 * two listeners in that namespace, 127.0.0.1:3128 (HTTP proxy: plain
 * forwarding and CONNECT) and 127.0.0.1:1080 (SOCKS5), passes them to the
 * server over the run's private socketpair, applies the run's seccomp filter
 * and execs the command. The server accepts on them (egress_proxy.c): each
 * connection's name is checked against the run's allow/deny lists and the
 * operator's ceiling (--egress-domains), resolved with c-ares on the loop
 * (or pinned with --egress-resolve: no DNS then), and every address checked against the refused
 * ranges minus --egress-allow-cidr. Refusals are reported through the run's
 * callback (the run turns them into `network_denied` events).
 *
 * This module knows nothing of executions, MCP, HTTP or Redis: it gets the
 * loop and the settings from main() and reports through callbacks.
 * Policies are plain data (any thread); everything else: loop thread only.
 */
#ifndef MCP_SANDBOXD_EGRESS_H
#define MCP_SANDBOXD_EGRESS_H

#include <h2o.h>
#include <stddef.h>
#include "core/util.h"

/** Where the run's HTTP proxy listens inside its sandbox. */
#define EGRESS_HTTP_PORT 3128
/** Where the run's SOCKS5 proxy listens inside its sandbox. */
#define EGRESS_SOCKS_PORT 1080
/** Path of the bridge program inside the sandbox. */
#define EGRESS_BRIDGE_SANDBOX_PATH "/dev/.mcp-sandboxd-bridge"

/** A run's allow/deny lists (opaque). */
typedef struct egress_policy egress_policy_t;
/** A run's proxy endpoint (opaque). */
typedef struct egress_run egress_run_t;

/** The operator's settings, given once to egress_init(). */
typedef struct egress_settings {
    char *const *ceiling;      /**< --egress-domains patterns (NULL/0: "*") */
    int n_ceiling;
    char *const *allow_cidr;   /**< --egress-allow-cidr exceptions */
    int n_allow_cidr;
    char *const *resolve;      /**< --egress-resolve NAME=ADDR pins */
    int n_resolve;
    int max_connections;       /**< open connections per run */
    int max_lookups;           /**< DNS lookups in flight, all runs (--egress-max-lookups) */
    int resolve_timeout;       /**< seconds one lookup may take (--egress-resolve-timeout) */
    const char *listen_host;   /**< the server's own listener (always refused) */
    int listen_port;
    const char *redis_host;    /**< the Redis address (always refused); NULL: none */
    int redis_port;
} egress_settings_t;

/** A refused connection: reason is "not allowed", "denied", "private address", "ceiling" or "limit". */
typedef void (*egress_denied_cb)(void *arg, const char *host, int port, const char *reason);

/** Parses the settings and finds the bridge next to the server binary. 0, or -1 with err naming the flag. */
int egress_init(h2o_loop_t *loop, const egress_settings_t *s, char *err, size_t errlen);
/** Frees what egress_init() built. */
void egress_cleanup(void);
/** Host path of the bridge program, NULL when it was not found (egress runs then fail with egress_error()). */
const char *egress_bridge_path(void);

/**
 * Adds one entry ("name", "*.name", either with ":port") to the allow list
 * (deny 0) or the deny list (deny 1), creating the policy. An allowed entry
 * wider than the operator's ceiling is refused with a message naming
 * --egress-domains. 0, or -1 with err.
 */
int egress_policy_add(egress_policy_t **p, int deny, const char *entry, char *err, size_t errlen);
/** 1 when the policy allows at least one name (else the run has no network at all). */
int egress_policy_any_allowed(const egress_policy_t *p);
/** Frees a policy (NULL is fine). */
void egress_policy_free(egress_policy_t *p);

/**
 * Decides a name and port by the policy and the ceiling (before resolution):
 * NULL when allowed, else the refusal reason.
 */
const char *egress_decide_name(const egress_policy_t *p, const char *host, int port);
/** 1 when the address may be connected to (not in a refused range unless opened, never the server or Redis). */
int egress_address_ok(const struct sockaddr *sa);

/**
 * Starts a run's proxy endpoint: a copy of `p`; `*child_fd` receives the
 * bridge's end of the run's socketpair (the caller passes it to the child
 * and closes it). NULL with err on failure.
 */
egress_run_t *egress_run_start(const egress_policy_t *p, egress_denied_cb cb, void *arg, int *child_fd, char *err,
                               size_t errlen);
/** Closes the endpoint and every connection it relays; no callback afterwards. NULL is fine. */
void egress_run_close(egress_run_t *r);

/** Appends the egress counters (decisions by outcome, bytes) in Prometheus text format (a metrics provider). */
void egress_metrics_render(strbuf_t *out);

#endif
