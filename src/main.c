/*
 * main: configuration, startup, the loop, signals and orderly shutdown.
 *
 * Signals are blocked before any thread starts and read from a signalfd on
 * the loop: SIGHUP reopens the log, SIGINT/SIGTERM start the shutdown: stop
 * accepting, cancel every run (their final events are recorded), answer
 * parked requests, end sessions, flush the Redis mirror, exit 0.
 */
#include "exec/cgroup.h"
#include "core/config.h"
#include "core/deadline.h"
#include "exec/egress.h"
#include "exec/exec.h"
#include "http/server.h"
#include "core/health.h"
#include "core/log.h"
#include "mcp/transport.h"
#include "core/metrics.h"
#include "cluster/mirror.h"
#include "exec/proc.h"
#include "exec/quota.h"
#include "exec/sandbox.h"
#include "mcp/principal.h"
#include "mcp/session.h"
#include "mcp/workspace.h"
#include "mcp/tools.h"
#include "mcp/catalog.h"
#include "core/util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <linux/close_range.h>
#include <unistd.h>

extern char **environ;

static h2o_multithread_queue_t *queue; /* see main */
static int shutting_down;
static uint64_t shutdown_started;
static int forced_kill;

/* SIGHUP: rereads the tokens file; a bad file keeps the principals in force. */
static void reload_principals(void)
{
    char err[512];
    if (config.tokens_file[0] == '\0')
        return;
    if (principal_reload(err, sizeof(err)) != 0)
        log_error("tokens file not reloaded, the previous principals stay: %s", err);
    else
        log_info("tokens file reloaded: %zu principals", principal_count());
}

static void on_signal(h2o_socket_t *sock, const char *err)
{
    struct signalfd_siginfo si;
    int fd = h2o_socket_get_fd(sock);
    while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
        if (si.ssi_signo == SIGCHLD) {
            proc_reap_children();
        } else if (si.ssi_signo == SIGHUP) {
            if (log_reopen() != 0)
                log_error("cannot reopen the log file: %s", strerror(errno));
            else
                log_info("log file reopened");
            reload_principals();
        } else if (!shutting_down) {
            log_info("%s received: shutting down (grace %d s)", si.ssi_signo == SIGINT ? "SIGINT" : "SIGTERM", config.shutdown_grace);
            shutting_down = 1;
            shutdown_started = util_now_ms();
            http_stop_accepting();
            exec_shutdown(0);
        } else {
            log_warn("second signal: stopping now");
            exec_shutdown(1);
            forced_kill = 1;
            shutdown_started = 0;
        }
    }
}

/* Called after each loop turn during shutdown: 1 when we may leave the loop. */
static int shutdown_done(void)
{
    uint64_t elapsed = util_now_ms() - shutdown_started;
    uint64_t grace = (uint64_t)config.shutdown_grace * 1000;
    if (!forced_kill && elapsed >= grace / 2 && exec_running() > 0) {
        log_warn("%zu runs still alive after %llu ms: SIGKILL", exec_running(), (unsigned long long)elapsed);
        exec_shutdown(1);
        forced_kill = 1;
    }
    if (exec_running() == 0 && mcp_inflight() == 0)
        return 1;
    if (elapsed >= grace) {
        log_warn("shutdown deadline reached with %zu runs and %zu requests in flight", exec_running(), mcp_inflight());
        return 1;
    }
    return 0;
}

/* What is left of --shutdown-grace (0 after a second signal): the last steps share it, so the exit binds. */
static int grace_left_ms(void)
{
    uint64_t spent = util_now_ms() - shutdown_started, grace = (uint64_t)config.shutdown_grace * 1000;
    return spent < grace ? (int)(grace - spent) : 0;
}

/* REDIS_URL parses, and host-network runs cannot reach a Redis without a password. -1 to go on, or 2. */
static int redis_url_check(char *err, size_t errlen)
{
    mirror_url_t url;
    if (config.redis_url[0] == '\0')
        return -1;
    if (mirror_url_parse(config.redis_url, &url, err, errlen) != 0) {
        fprintf(stderr, "mcp-sandboxd: REDIS_URL: %s\n", err);
        return 2;
    }
    /* host-network runs reach every service on this host's loopback and network, Redis included */
    if (config.allow_network && !url.unix_socket && url.password[0] == '\0') {
        fprintf(stderr, "mcp-sandboxd: --allow-network with REDIS_URL at %s:%d without a password: runs with network mode "
                        "'host' could connect to that Redis, read every execution and session record and take sessions "
                        "over. Set a password (redis://:PASSWORD@host:port) or use a unix socket (unix:///path), which "
                        "runs cannot reach\n", url.host, url.port);
        return 2;
    }
    return -1;
}

/* Is --host a loopback address (127.0.0.0/8, ::1, ::ffff:127.x, localhost)? */
static int host_is_loopback(const char *host)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!strcasecmp(host, "localhost"))
        return 1;
    if (inet_pton(AF_INET, host, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    if (inet_pton(AF_INET6, host, &a6) == 1)
        return IN6_IS_ADDR_LOOPBACK(&a6) || (IN6_IS_ADDR_V4MAPPED(&a6) && a6.s6_addr[12] == 127);
    return 0;
}

/* Is any token configured, --token or --tokens-file (a request without one is refused)? After principal_load. */
static int auth_configured(void)
{
    return principal_enabled();
}

/* Fail closed: a non-loopback --host with no token refuses to start unless --insecure-no-auth. -1 to go on, or 2. */
static int auth_check(void)
{
    if (auth_configured() || host_is_loopback(config.host))
        return -1;
    if (config.insecure_no_auth) {
        log_warn("listening on %s with no token (--insecure-no-auth): anyone who can reach this port can run commands",
                 config.host);
        return -1;
    }
    fprintf(stderr, "mcp-sandboxd: refusing to start: --host %s is not a loopback address and no token is configured; "
                    "set --token (SANDBOX_AUTH_TOKEN) or --tokens-file, or --insecure-no-auth to serve without authentication\n",
            config.host);
    log_error("refusing to start: --host %s without a token (fail closed; --insecure-no-auth overrides)", config.host);
    log_flush();
    return 2;
}

/*
 * Reads the configuration and checks what must hold before anything starts:
 * the log, pid_max against the limits, the cgroup mode (before any thread: on
 * cgroup v2 the server moves itself into a leaf), REDIS_URL. Returns -1 to go
 * on, or the exit status (0 after --help/--version).
 */
static int startup_checks(int argc, char **argv, char *err, size_t errlen)
{
    char *out = xmalloc(16384); /* --help text */
    int rc = config_parse(&config, argc, argv, environ, err, errlen, out, 16384);
    if (rc == CONFIG_EXIT)
        fputs(out, stdout);
    free(out);
    if (rc == CONFIG_EXIT)
        return 0;
    if (rc == CONFIG_ERROR) {
        fprintf(stderr, "mcp-sandboxd: %s\n", err);
        return 2;
    }
    if (log_open(config.log_file, config.log_level) != 0) {
        fprintf(stderr, "mcp-sandboxd: --log-file %s: %s\n", config.log_file, strerror(errno));
        return 2;
    }
    if (principal_load(config.token, config.tokens_file, err, errlen) != 0) {
        fprintf(stderr, "mcp-sandboxd: --tokens-file: %s\n", err);
        return 2;
    }
    if (auth_check() == 2)
        return 2;
    if (cgroup_check_pid_max(config.max_concurrent, config.nproc_max, "/proc/sys/kernel/pid_max", err, errlen) != 0) {
        fprintf(stderr, "mcp-sandboxd: %s\n", err);
        log_error("%s", err);
        log_flush();
        return 2;
    }
    if (cgroup_setup(config.cgroup_root, "/proc/self/cgroup", config.replica, !config.cgroups, err, errlen) ==
        CGROUP_NONE)
        log_warn("cgroups: none (%s): per-run limits fall back to rlimits (memory and CPU per process, no tmpfs "
                 "accounting, no atomic kill)", err);
    else
        log_info("cgroups: %s, a cgroup per run under the server's own", cgroup_mode_name());
    return redis_url_check(err, errlen);
}

/*
 * Process-wide setup: signals arrive through a signalfd (blocked here), as
 * many descriptors as the hard limit allows, orphaned sandbox inits come back
 * to be reaped, inherited descriptors become close-on-exec.
 */
static void process_setup(sigset_t *sigs)
{
    sigemptyset(sigs);
    sigaddset(sigs, SIGINT);
    sigaddset(sigs, SIGTERM);
    sigaddset(sigs, SIGHUP);
    sigaddset(sigs, SIGCHLD);
    pthread_sigmask(SIG_BLOCK, sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct rlimit nofile;
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
        nofile.rlim_cur = nofile.rlim_max;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    /* orphaned sandbox inits come back to us to be reaped (proc_reap_children) */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    /* descriptors inherited from whoever started us are ours to keep, not to pass on: every fd
     * the server holds is close-on-exec (runs also close everything above their own fds) */
    if (syscall(SYS_close_range, 3, ~0U, CLOSE_RANGE_CLOEXEC) != 0)
        log_warn("cannot mark inherited descriptors close-on-exec: %s", strerror(errno));
}

/*
 * egress (issue 14): the proxy's settings; the server's own listener and the
 * Redis address are never reachable through it. 0, or -1 (logged).
 */
static int egress_setup(h2o_evloop_t *loop)
{
    char err[512];
    mirror_url_t url = {0};
    if (config.redis_url[0] && mirror_url_parse(config.redis_url, &url, err, sizeof(err)) != 0)
        url.host[0] = '\0'; /* refused earlier by redis_url_check */
    egress_settings_t s = {config.egress_domains, config.n_egress_domains, config.egress_allow_cidr,
                           config.n_egress_allow_cidr, config.egress_resolve, config.n_egress_resolve,
                           config.egress_max_connections, config.egress_max_lookups,
                           config.egress_resolve_timeout, config.host, config.port,
                           config.redis_url[0] && !url.unix_socket ? url.host : NULL, url.port};
    if (egress_init(loop, &s, err, sizeof(err)) != 0) {
        log_error("%s", err);
        return -1;
    }
    if (egress_bridge_path() == NULL)
        log_warn("egress: mcp-sandboxd-bridge not found next to the server binary: runs asking for allowed_domains "
                 "will be refused");
    return 0;
}

/*
 * The composition: every module gets the loop (or the queue worker threads
 * answer through) and the interfaces of the others: tools answer through the
 * transport, /health and /metrics take each module's figures, and with
 * REDIS_URL the cluster plugs into exec, sessions and tools. 0, or the exit status.
 */
static int start_services(h2o_evloop_t *loop, char *err, size_t errlen)
{
    /* worker threads (quota, Redis) -> loop; kept for the process' life, as h2o's own context queue was */
    queue = h2o_multithread_create_queue(loop);
    proc_init(loop);
    cgroup_set_loop(loop);
    tools_set_reply(&mcp_tools_reply);
    if (deadline_init(loop) != 0 || catalog_init() != 0) {
        log_error("startup failed: %s", strerror(errno));
        return 1;
    }
    session_setup((uint64_t)config.session_ttl * 1000, (size_t)config.max_sessions, NULL);
    workspace_setup((uint64_t)config.workspace_ttl * 1000, (size_t)config.max_workspaces_principal);
    session_set_init_ttl((uint64_t)config.session_init_ttl * 1000);
    /* /health and /metrics: each module's figures, in this order */
    health_register(exec_health_status, 0);
    health_register(mcp_health, 0);
    health_register(exec_health, 1);
    health_register(cgroup_health, 1);
    health_register(cluster_health, 1);
    metrics_register_provider(exec_metrics);
    metrics_register_provider(cgroup_metrics);
    metrics_register_provider(mcp_metrics);
    metrics_register_provider(cluster_metrics);
    if (http_start(loop, err, errlen) != 0) {
        log_error("%s", err);
        return 1;
    }
    cgroup_sweep_leftovers(); /* runs an earlier instance left (after a SIGKILL of the server) */
    if (egress_setup(loop) != 0) /* egress (issue 14); registers its /metrics provider */
        return 2;
    if (sandbox_init() != 0)
        log_error("sandbox unavailable, every run will fail until this is fixed: %s", sandbox_error());
    if (quota_start(queue) != 0)
        log_error("cannot start the workspace quota thread: --workspace-quota-mb is NOT enforced");
    if (config.redis_url[0])
        cluster_attach();
    if (cluster_start(queue, err, errlen) != 0) {
        log_error("%s", err);
        return 2;
    }
    return 0;
}

/* The startup line (a non-loopback address without a token was refused or warned about in auth_check). */
static void log_listening(void)
{
    log_info("mcp-sandboxd %s listening on http://%s:%d/mcp (auth %s, isolation %s, replica %s)", MCP_SANDBOXD_VERSION,
             config.host, config.port, config.token[0] ? "bearer token" : "none (loopback use only)",
             config.isolation_none ? "NONE" : "bwrap", config.replica);
    log_flush();
}

/* After the loop: ends what is left within what remains of the shutdown grace, then frees. */
static void shutdown_rest(h2o_evloop_t *loop, h2o_socket_t *sigsock)
{
    if (exec_running() > 0)
        exec_abandon_all();
    session_end_all();
    workspace_end_all();
    int drain_ms = grace_left_ms() < 2000 ? grace_left_ms() : 2000; /* the shutdown deadline binds */
    if (cgroup_drain(drain_ms, proc_reap_children) > 0)
        log_warn("%zu run cgroups still busy at exit: the next start removes them", cgroup_pending_removals());
    int left = sandbox_workspace_wait(grace_left_ms() / 2);
    if (left > 0)
        log_warn("%d workspace removals still running at exit: their directories stay under %s", left,
                 config.workspace_root);
    quota_stop();
    cluster_stop(grace_left_ms());
    egress_cleanup(); /* the c-ares channel: its watched sockets close before the loop's last pass */
    h2o_socket_close(sigsock);
    deadline_close();
    h2o_evloop_run(loop, 0); /* lets h2o free the closed sockets */
    log_info("shutdown complete");
    log_close();
    catalog_free();
    principal_free();
    sandbox_cleanup();
    config_free(&config);
}

int main(int argc, char **argv)
{
    char err[512];
    int rc = startup_checks(argc, argv, err, sizeof(err));
    if (rc >= 0)
        return rc;
    sigset_t sigs;
    process_setup(&sigs);
    metrics_init();
    h2o_evloop_t *loop = h2o_evloop_create();
    if ((rc = start_services(loop, err, sizeof(err))) != 0) {
        log_flush();
        return rc;
    }
    int sfd = signalfd(-1, &sigs, SFD_NONBLOCK | SFD_CLOEXEC);
    if (sfd < 0) { /* without it no child is reaped and SIGTERM is ignored: do not serve */
        log_error("signalfd: %s", strerror(errno));
        log_flush();
        return 1;
    }
    h2o_socket_t *sigsock = h2o_evloop_socket_create(loop, sfd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(sigsock, on_signal);
    log_listening();
    while (1) {
        h2o_evloop_run(loop, shutting_down ? 50 : INT32_MAX);
        cluster_flush();
        log_flush();
        if (shutting_down && shutdown_done())
            break;
    }
    shutdown_rest(loop, sigsock);
    return 0;
}
