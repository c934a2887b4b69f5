/*
 * egress_dns: the egress proxy's name lookups with c-ares, on the loop thread.
 *
 * One c-ares channel. c-ares tells us its sockets through ARES_OPT_SOCK_STATE_CB;
 * each is watched by an h2o socket on a dup of its fd (h2o owns what it
 * watches; c-ares keeps its own fd), readiness only (H2O_SOCKET_FLAG_DONT_READ
 * and h2o_socket_notify_write), and handed to ares_process_fd. c-ares's own
 * retransmission timeouts (ares_timeout) drive one deadline. Lookups in flight
 * are bounded (--egress-max-lookups) and each has its own deadline
 * (--egress-resolve-timeout): when it fires the caller is answered and the
 * lookup is detached, keeping its slot until c-ares gives up on it. Names
 * come from /etc/hosts and the resolv.conf servers (c-ares reads both).
 * Loop thread only.
 */
#include "exec/egress_internal.h"
#include "core/deadline.h"
#include "core/log.h"
#include "core/util.h"

#include <ares.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

/* A socket c-ares uses, watched on the loop. */
typedef struct dns_watch {
    LIST_ENTRY(dns_watch) link;
    ares_socket_t fd;     /* c-ares's descriptor */
    h2o_socket_t *sock;   /* h2o's watch, on a dup of fd */
    int want_write;       /* c-ares waits for the socket to be writable */
    int write_pending;    /* a notify_write is scheduled */
} dns_watch_t;

/* One lookup; freed once c-ares answered and the answer was delivered (cb NULL once cancelled or timed out). */
struct egress_lookup {
    deadline_t timer;     /* first: the lookup's own deadline, then the delivery of an immediate answer */
    egress_dns_cb cb;
    void *arg;
    int in_call;          /* inside ares_getaddrinfo: an answer now is delivered from the loop */
    int status;           /* EGRESS_DNS_* once answered */
    int n;
    struct sockaddr_storage addrs[EGRESS_DNS_MAX_ADDRS];
};

static struct {
    h2o_loop_t *loop;
    ares_channel channel;
    int ready;                   /* the channel exists */
    LIST_HEAD(, dns_watch) watches;
    deadline_t ares_timer;       /* c-ares's next retransmission or timeout */
    int in_flight;               /* lookups not yet freed (c-ares's answer or its delivery pending) */
    int max_lookups;
    int timeout_ms;
} dns;

static void on_dns_writable(h2o_socket_t *sock, const char *err);
static void on_ares_timer(deadline_t *d);

/* After any c-ares call: its next internal timeout becomes our deadline. */
static void dns_rearm(void)
{
    struct timeval tv;
    if (!dns.ready || ares_timeout(dns.channel, NULL, &tv) == NULL) {
        deadline_cancel(&dns.ares_timer);
        return;
    }
    uint64_t ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec + 999) / 1000;
    deadline_arm(&dns.ares_timer, ms, on_ares_timer);
}

/* c-ares's timeout is due: it retransmits or fails what expired. */
static void on_ares_timer(deadline_t *d)
{
    ares_process_fd(dns.channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    dns_rearm();
}

/* A watched socket is readable: c-ares reads it (and may close it: w is not touched afterwards). */
static void on_dns_readable(h2o_socket_t *sock, const char *err)
{
    dns_watch_t *w = sock->data;
    ares_process_fd(dns.channel, w->fd, ARES_SOCKET_BAD);
    dns_rearm();
}

/* Asks h2o for one write-readiness notice when c-ares wants one and none is pending. */
static void dns_want_write(dns_watch_t *w)
{
    if (w->want_write && !w->write_pending) {
        w->write_pending = 1;
        h2o_socket_notify_write(w->sock, on_dns_writable);
    }
}

/* The watch of c-ares's fd, or NULL. */
static dns_watch_t *watch_find(ares_socket_t fd)
{
    dns_watch_t *w;
    LIST_FOREACH(w, &dns.watches, link)
        if (w->fd == fd)
            return w;
    return NULL;
}

/* A watched socket is writable (a TCP connect or query): c-ares writes, then asks again if it must. */
static void on_dns_writable(h2o_socket_t *sock, const char *err)
{
    dns_watch_t *w = sock->data;
    ares_socket_t fd = w->fd;
    w->write_pending = 0;
    if (w->want_write)
        ares_process_fd(dns.channel, ARES_SOCKET_BAD, fd);
    if ((w = watch_find(fd)) != NULL) /* c-ares may have closed it meanwhile */
        dns_want_write(w);
    dns_rearm();
}

/* ARES_OPT_SOCK_STATE_CB: c-ares opened, changed interest on, or is about to close `fd`. */
static void on_sock_state(void *data, ares_socket_t fd, int readable, int writable)
{
    dns_watch_t *w = watch_find(fd);
    if (!readable && !writable) {
        if (w != NULL) {
            LIST_REMOVE(w, link);
            w->sock->data = NULL;
            h2o_socket_close(w->sock); /* closes the dup; c-ares closes fd */
            free(w);
        }
        return;
    }
    if (w == NULL) {
        int dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
        if (dupfd < 0) {
            log_warn("egress: cannot watch a resolver socket: %s", strerror(errno));
            return; /* the lookups on it time out */
        }
        w = xcalloc(1, sizeof(*w));
        w->fd = fd;
        w->sock = h2o_evloop_socket_create(dns.loop, dupfd, H2O_SOCKET_FLAG_DONT_READ);
        w->sock->data = w;
        LIST_INSERT_HEAD(&dns.watches, w, link);
    }
    if (readable)
        h2o_socket_read_start(w->sock, on_dns_readable);
    else
        h2o_socket_read_stop(w->sock);
    w->want_write = writable;
    dns_want_write(w);
}

/* The lookup's own deadline: the caller hears "timed out"; c-ares's answer is dropped later. */
static void on_lookup_timeout(deadline_t *d)
{
    egress_lookup_t *l = (egress_lookup_t *)d;
    egress_dns_cb cb = l->cb;
    l->cb = NULL;
    if (cb != NULL)
        cb(l->arg, EGRESS_DNS_TIMEOUT, NULL, 0);
}

/* Hands the answer to the caller (unless cancelled or timed out) and frees the lookup. */
static void lookup_deliver(egress_lookup_t *l)
{
    if (l->cb != NULL)
        l->cb(l->arg, l->status, l->addrs, l->n);
    dns.in_flight--;
    free(l);
}

/* An answer c-ares gave inside ares_getaddrinfo (the hosts file, an error), delivered from the loop. */
static void on_lookup_deliver(deadline_t *d)
{
    lookup_deliver((egress_lookup_t *)d);
}

/* c-ares answered (or gave up, or the channel is being destroyed): the addresses to the caller. */
static void on_addrinfo(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
    egress_lookup_t *l = arg;
    if (status == ARES_SUCCESS && res != NULL)
        for (struct ares_addrinfo_node *a = res->nodes; a != NULL && l->n < EGRESS_DNS_MAX_ADDRS; a = a->ai_next)
            if (a->ai_addrlen <= sizeof(l->addrs[0]))
                memcpy(&l->addrs[l->n++], a->ai_addr, a->ai_addrlen);
    if (res != NULL)
        ares_freeaddrinfo(res);
    l->status = l->n > 0 ? EGRESS_DNS_OK : EGRESS_DNS_FAILED;
    if (status == ARES_EDESTRUCTION) { /* the server is exiting: nobody waits */
        deadline_cancel(&l->timer);
        dns.in_flight--;
        free(l);
    } else if (l->in_call) { /* the caller does not hold the lookup yet */
        deadline_arm(&l->timer, 0, on_lookup_deliver);
    } else {
        deadline_cancel(&l->timer);
        lookup_deliver(l);
    }
}

egress_lookup_t *egress_dns_lookup(const char *host, int port, egress_dns_cb cb, void *arg)
{
    if (!dns.ready || dns.in_flight >= dns.max_lookups)
        return NULL;
    egress_lookup_t *l = xcalloc(1, sizeof(*l));
    l->cb = cb;
    l->arg = arg;
    char service[8];
    snprintf(service, sizeof(service), "%d", port);
    struct ares_addrinfo_hints hints;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = ARES_AI_NUMERICSERV;
    dns.in_flight++;
    deadline_arm(&l->timer, (uint64_t)dns.timeout_ms, on_lookup_timeout);
    l->in_call = 1;
    ares_getaddrinfo(dns.channel, host, service, &hints, on_addrinfo, l); /* may answer at once (hosts file) */
    l->in_call = 0;
    dns_rearm();
    return l;
}

void egress_dns_cancel(egress_lookup_t *l)
{
    if (l != NULL)
        l->cb = NULL; /* its timer still frees an answered lookup, c-ares's answer an unanswered one */
}

int egress_dns_in_flight(void)
{
    return dns.in_flight;
}

int egress_dns_init(h2o_loop_t *loop, int max_lookups, int timeout_s, char *err, size_t errlen)
{
    if (dns.ready)
        return 0; /* once (unit tests initialise again) */
    dns.loop = loop;
    dns.max_lookups = max_lookups > 0 ? max_lookups : 64;
    dns.timeout_ms = (timeout_s > 0 ? timeout_s : 10) * 1000;
    LIST_INIT(&dns.watches);
    int rc = ares_library_init(ARES_LIB_INIT_ALL);
    struct ares_options o;
    memset(&o, 0, sizeof(o));
    o.sock_state_cb = on_sock_state;
    o.timeout = dns.timeout_ms / 4 > 500 ? dns.timeout_ms / 4 : 500; /* per try, in ms with ARES_OPT_TIMEOUTMS */
    o.tries = 2;
    if (rc == ARES_SUCCESS)
        rc = ares_init_options(&dns.channel, &o, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES);
    if (rc != ARES_SUCCESS) {
        snprintf(err, errlen, "egress: cannot start the c-ares resolver: %s", ares_strerror(rc));
        return -1;
    }
    dns.ready = 1;
    return 0;
}

void egress_dns_cleanup(void)
{
    if (!dns.ready)
        return;
    ares_destroy(dns.channel); /* answers what is pending with ARES_EDESTRUCTION, closes its sockets */
    dns.ready = 0;
    deadline_cancel(&dns.ares_timer);
    ares_library_cleanup();
}
