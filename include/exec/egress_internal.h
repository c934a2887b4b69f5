/*
 * egress_internal: what egress.c (decisions) and egress_proxy.c (the proxy)
 * share. Loop thread only.
 */
#ifndef MCP_SANDBOXD_EGRESS_INTERNAL_H
#define MCP_SANDBOXD_EGRESS_INTERNAL_H

#include <stdint.h>
#include <sys/socket.h>
#include "exec/egress.h"

#define EGRESS_NOT_ALLOWED "not allowed" /**< the run's allow list does not name it */
#define EGRESS_DENIED "denied"           /**< the run's deny list names it */
#define EGRESS_PRIVATE "private address" /**< resolved into a refused range, the server or Redis */
#define EGRESS_CEILING "ceiling"         /**< outside the operator's --egress-domains */
#define EGRESS_LIMIT "limit"             /**< --egress-max-connections reached */
#define EGRESS_N_OUTCOMES 6              /**< allowed + the five reasons */

/** Counters for /metrics (loop thread). */
typedef struct egress_state {
    uint64_t decisions[EGRESS_N_OUTCOMES]; /**< [0] allowed, then by reason */
    uint64_t bytes;                        /**< relayed, both directions */
    long endpoints;                        /**< runs with an open proxy endpoint */
    long connections;                      /**< open client connections of every run */
} egress_state_t;
/** The counters. */
extern egress_state_t egress_state;

/** Counts a decision (reason NULL: allowed). */
void egress_count(const char *reason);
/** A deep copy of a policy. */
egress_policy_t *egress_policy_copy(const egress_policy_t *p);
/** A numeric address (IPv4 or IPv6 text) with port into ss; 0 / -1. */
int egress_numeric_addr(const char *host, int port, struct sockaddr_storage *ss);
/** The --egress-resolve pin for host with port into ss; 0, or -1 when not pinned. */
int egress_pinned(const char *host, int port, struct sockaddr_storage *ss);
/** A name lookup in flight (egress_dns.c, c-ares). */
typedef struct egress_lookup egress_lookup_t;
/** Addresses one answer passes on at most. */
#define EGRESS_DNS_MAX_ADDRS 16
/** Outcomes of a lookup. */
enum { EGRESS_DNS_OK, EGRESS_DNS_FAILED, EGRESS_DNS_TIMEOUT };
/** A lookup's answer: status EGRESS_DNS_*, the addresses (port set) when OK. Called once, on the loop. */
typedef void (*egress_dns_cb)(void *arg, int status, const struct sockaddr_storage *addrs, int n);
/** Creates the c-ares channel watched on `loop`. 0, or -1 with err. */
int egress_dns_init(h2o_loop_t *loop, int max_lookups, int timeout_s, char *err, size_t errlen);
/** Destroys the channel (pending answers are dropped). */
void egress_dns_cleanup(void);
/**
 * Looks host up (A and AAAA, /etc/hosts first) for port; cb answers, possibly
 * before this returns. NULL when --egress-max-lookups are in flight (cb never called).
 */
egress_lookup_t *egress_dns_lookup(const char *host, int port, egress_dns_cb cb, void *arg);
/** The callback of `l` will not be called (NULL is fine); the lookup ends on its own. */
void egress_dns_cancel(egress_lookup_t *l);
/** Lookups c-ares holds, cancelled ones included (tests, metrics). */
int egress_dns_in_flight(void);
/** Sets up the proxy's loop state (idle timeouts, the c-ares resolver). 0 / -1 with err. */
int egress_proxy_init(h2o_loop_t *loop, int max_connections, int max_lookups, int resolve_timeout, char *err,
                      size_t errlen);
/** Frees the proxy's loop state. */
void egress_proxy_cleanup(void);

#endif
