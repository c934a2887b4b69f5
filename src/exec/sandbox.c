/*
 * sandbox: bubblewrap command lines, seccomp, the sandbox identity (uids).
 *
 * Mount order in the bwrap argv matters (later mounts cover earlier ones):
 * the host read-only, fresh /dev and /proc, then the caller's allow_write and
 * deny_write binds, THEN a fresh /tmp, the default secret paths and the
 * workspace root hidden (so no caller bind can re-expose them), this
 * session's workspace bound writable, deny_write inside it, and deny_read
 * last, so a deny always wins. bwrap itself is exec'd with an environment of PATH only: the
 * sandbox's variables travel as --setenv arguments, so nothing a caller puts
 * in `environment` (LD_PRELOAD, say) can act on bwrap outside the sandbox.
 *
 * Nothing of a run is in the host's process list: bwrap's own argv is just
 * `bwrap --args N`, its arguments (paths, --setenv values) are read from a
 * memfd, and the shell runs a script file bwrap copies in from another memfd
 * (--ro-bind-data), so its argv does not hold the command either. Every tmpfs
 * bwrap creates has a --size; the ones that hide paths are empty and
 * remounted read-only once every mount under them is in place.
 */
#include "exec/sandbox.h"
#include "exec/sandbox_internal.h"
#include "exec/egress.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"

#include <bsd/string.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netlink.h>
#include <linux/openat2.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

static char bwrap_path[512];
static char error_msg[512];
static uid_t run_uid = (uid_t)-1; /* --sandbox-user (the fallback), or the first uid of --uid-range (probe) */
static gid_t run_gid = (gid_t)-1;
static uid_t fs_uid = (uid_t)-1;  /* the identity caller paths are looked at with (the run being built) */
static gid_t fs_gid = (gid_t)-1;

/* --uid-range: one bit per uid, set while a session holds it; handed out round-robin so a freed uid is
 * reused as late as possible (files it left in a write root stay with it until then) */
static unsigned char *uid_used;
static long uid_next;
static const char *ulimit_nproc_flag = "-p"; /* dash; bash spells it -u */

const char *sandbox_error(void)
{
    return error_msg[0] ? error_msg : NULL;
}

int sandbox_uid_acquire(uid_t *uid, gid_t *gid, char *err, size_t errlen)
{
    if (config.uid_count == 0) {
        *uid = run_uid; /* the shared fallback (or this server's own uid when not root) */
        *gid = run_gid;
        return 0;
    }
    for (long k = 0; k < config.uid_count; k++) {
        long i = (uid_next + k) % config.uid_count;
        if (!(uid_used[i / 8] & (1u << (i % 8)))) {
            uid_used[i / 8] |= (unsigned char)(1u << (i % 8));
            uid_next = (i + 1) % config.uid_count;
            *uid = (uid_t)(config.uid_start + i);
            *gid = (gid_t)(config.uid_start + i);
            return 0;
        }
    }
    snprintf(err, errlen, "No free host uid for this session: all %ld uids of --uid-range are held by live sessions; "
                          "end a session or widen the range", config.uid_count);
    return -1;
}

void sandbox_uid_release(uid_t uid)
{
    if (config.uid_count == 0 || uid == (uid_t)-1 || (long)uid < config.uid_start ||
        (long)uid >= config.uid_start + config.uid_count)
        return;
    long i = (long)uid - config.uid_start;
    uid_used[i / 8] &= (unsigned char)~(1u << (i % 8));
}

/* ---------------------------------------------------------------- argv */

static void argv_push(sandbox_argv_t *a, const char *s)
{
    if (a->n + 2 > a->cap) {
        a->cap = a->cap ? a->cap * 2 : 64;
        a->v = realloc(a->v, a->cap * sizeof(char *));
        if (a->v == NULL)
            util_oom();
    }
    a->v[a->n++] = xstrdup(s);
    a->v[a->n] = NULL;
}

static void argv_push2(sandbox_argv_t *a, const char *x, const char *y)
{
    argv_push(a, x);
    argv_push(a, y);
}

static void argv_push3(sandbox_argv_t *a, const char *x, const char *y, const char *z)
{
    argv_push(a, x);
    argv_push(a, y);
    argv_push(a, z);
}

void sandbox_argv_free(sandbox_argv_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    for (size_t i = 0; i < a->n_args; i++)
        free(a->args[i]);
    free(a->args);
    for (int i = 0; i < a->n_fds; i++)
        close(a->fds[i]);
    memset(a, 0, sizeof(*a));
}

/*
 * Caller-supplied paths are looked at with the sandbox user's file-system
 * identity (setfsuid/setfsgid are per thread), so whether a root-only path
 * exists never shows in the outcome of a run.
 */
static void fs_as_sandbox_user(int on)
{
    if (fs_uid == (uid_t)-1)
        return;
    syscall(SYS_setfsgid, on ? fs_gid : 0);
    syscall(SYS_setfsuid, on ? fs_uid : 0);
}

/* Opens `path` as O_PATH without following any symlink in it; -1 with errno (ELOOP for a symlink). */
int sandbox_open_nofollow(const char *path)
{
    struct open_how how;
    memset(&how, 0, sizeof(how));
    how.flags = O_PATH | O_CLOEXEC;
    how.resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
    fs_as_sandbox_user(1);
    int fd = (int)syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
    int e = errno;
    fs_as_sandbox_user(0);
    errno = e;
    return fd;
}

static void hide_path(sandbox_argv_t *a, const char *path, int once);
static int seal_args(sandbox_argv_t *a, int bridge_seccomp);

/* Bytes of each tmpfs that hides a directory: it only ever holds mount points. */
#define HIDE_TMPFS_BYTES "65536"

/*
 * An empty directory over `path`: a small tmpfs (r-x, so mount points made
 * under it stay reachable) that sandbox_build remounts read-only at the end,
 * after every mount beneath it exists. Nothing a run writes can land in it.
 */
static void hide_dir(sandbox_argv_t *a, const char *path)
{
    argv_push2(a, "--size", HIDE_TMPFS_BYTES);
    argv_push2(a, "--perms", "0555");
    argv_push2(a, "--tmpfs", path);
}

/* --remount-ro for every hiding tmpfs (and /dev), in the order they were mounted. */
static void remount_hidden_ro(sandbox_argv_t *a)
{
    size_t n = a->n;
    for (size_t i = 1; i + 1 < n; i++)
        if (!strcmp(a->v[i], "--tmpfs") && i >= 2 && !strcmp(a->v[i - 2], "0555"))
            argv_push2(a, "--remount-ro", a->v[i + 1]);
    argv_push2(a, "--remount-ro", "/dev");
}

/* Writes argv[1..] NUL-separated into a memfd (bwrap --args); -1 on failure. */
static int args_memfd(const sandbox_argv_t *a)
{
    int fd = memfd_create("bwrap-args", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    for (size_t i = 1; i < a->n; i++) {
        size_t len = strlen(a->v[i]) + 1;
        if (write(fd, a->v[i], len) != (ssize_t)len) {
            close(fd);
            return -1;
        }
    }
    if (lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* A memfd holding `text` (the run's script, read by bwrap --ro-bind-data); -1 on failure. */
static int text_memfd(const char *text, size_t len)
{
    int fd = memfd_create("run-script", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (write(fd, text, len) != (ssize_t)len || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/*
 * A caller's bind: the source is opened here, without following symlinks, and
 * handed to bwrap as an fd (--bind-fd), so a symlink planted by a run (in its
 * workspace or anywhere it may write) can neither redirect the source at
 * mount time nor smuggle in /proc or a hidden path. When the path turned into
 * a symlink since the policy was checked, an allow_write is dropped and a
 * deny_write hides the path instead: the safe side either way.
 */
static void caller_bind(sandbox_argv_t *a, const char *path, int writable)
{
    int fd = a->n_fds < SANDBOX_MAX_FDS - 2 ? sandbox_open_nofollow(path) : (errno = EMFILE, -1);
    if (fd < 0) {
        if (errno == ENOENT)
            return; /* nothing there to bind */
        /* any other failure fails closed: no extra write access, and a deny_write hides the path */
        log_warn("sandbox: cannot open %s for a %s bind (%s): %s", path, writable ? "writable" : "read-only",
                 strerror(errno), writable ? "not bound" : "hidden instead");
        if (!writable)
            hide_path(a, path, 0);
        return;
    }
    char num[16];
    snprintf(num, sizeof(num), "%d", SANDBOX_FIRST_BIND_FD + a->n_fds);
    a->fds[a->n_fds++] = fd;
    argv_push3(a, writable ? "--bind-fd" : "--ro-bind-fd", num, path);
}

/* Hides `path` from the run: an empty tmpfs over a directory, /dev/null over a file. */
static void hide_path(sandbox_argv_t *a, const char *path, int once)
{
    struct stat st;
    char real[4096];
    /* what the sandbox user cannot see needs no hiding, and must not be probed as root */
    fs_as_sandbox_user(!once);
    int found = lstat(path, &st) == 0;
    if (found && S_ISLNK(st.st_mode)) {
        found = realpath(path, real) != NULL && stat(real, &st) == 0;
        path = real;
    }
    fs_as_sandbox_user(0);
    if (!found)
        return; /* nothing there to read */
    /* defaults: /var/run -> /run and the like need one mount per target (a deny always mounts) */
    for (size_t i = 1; once && i + 1 < a->n; i++)
        if (!strcmp(a->v[i + 1], path) && (!strcmp(a->v[i], "--tmpfs") || !strcmp(a->v[i], "/dev/null")))
            return;
    if (S_ISDIR(st.st_mode))
        hide_dir(a, path);
    else
        argv_push3(a, "--ro-bind", "/dev/null", path);
}

static const char *const default_hidden[] = {"/root", "/home", "/run", "/var/run", "/etc/shadow", "/etc/gshadow",
                                             "/etc/shadow-", "/etc/gshadow-", "/etc/mcp-sandboxd", NULL};

/* Is `path` `dir` or below it? */
int sandbox_path_under(const char *path, const char *dir)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    return !strncmp(path, dir, n) && (path[n] == '/' || path[n] == '\0' || (n == 1 && dir[0] == '/'));
}

/* The mounts: host read-only, fresh /dev and /proc, caller binds, then everything hidden over them. */
static void build_mounts(const sandbox_policy_t *p, const char *workspace, sandbox_argv_t *argv)
{
    char num[32];
    argv_push3(argv, "--ro-bind", "/", "/");
    argv_push2(argv, "--dev", "/dev");
    /* bwrap's /dev is an unbounded tmpfs: its shm gets a size, the rest is remounted read-only */
    snprintf(num, sizeof(num), "%ld", p->fsize_mb * 1024L * 1024L);
    argv_push2(argv, "--size", num);
    argv_push2(argv, "--tmpfs", "/dev/shm");
    argv_push2(argv, "--proc", "/proc");
    /* the sandbox's init has no say over the run but can be ptraced by it (it is dumpable): its
     * memory is not writable through /proc, and seccomp refuses attaching to it (PDEATHSIG) */
    argv_push3(argv, "--ro-bind", "/dev/null", "/proc/1/mem");
    argv_push3(argv, "--ro-bind", "/dev/null", "/proc/1/task/1/mem");
    /* the caller's binds first: everything hidden below is mounted over them; paths in the
     * workspace root outside this session's workspace would be hidden anyway: not even opened */
    for (int i = 0; i < p->n_allow_write; i++)
        if (!sandbox_path_under(p->allow_write[i], config.workspace_root) || sandbox_path_under(p->allow_write[i], workspace))
            caller_bind(argv, p->allow_write[i], 1);
    for (int i = 0; i < p->n_deny_write; i++)
        if (!sandbox_path_under(p->deny_write[i], config.workspace_root) || sandbox_path_under(p->deny_write[i], workspace))
            caller_bind(argv, p->deny_write[i], 0);
    argv_push2(argv, "--size", num);
    argv_push2(argv, "--tmpfs", "/tmp");
    for (int i = 0; default_hidden[i] != NULL; i++)
        hide_path(argv, default_hidden[i], 1);
    if (config.log_file[0])
        hide_path(argv, config.log_file, 0);
    hide_dir(argv, config.workspace_root); /* other sessions' workspaces */
    argv_push3(argv, "--bind", workspace, workspace);
    /* deny_write inside the workspace must cover the workspace bind */
    for (int i = 0; i < p->n_deny_write; i++)
        if (sandbox_path_under(p->deny_write[i], workspace))
            caller_bind(argv, p->deny_write[i], 0);
    for (int i = 0; i < config.n_deny_read; i++)
        hide_path(argv, config.deny_read[i], 0);
    for (int i = 0; i < p->n_deny_read; i++)
        hide_path(argv, p->deny_read[i], 0);
}

/* ---------------------------------------------------------------- egress (issue 14) */

/* The fd number (in the child) of the run's proxy channel, for the bridge's argv. */
static char egress_chan[16];

/*
 * The bridge program bound read-only into the sandbox and the run's proxy
 * channel passed as a child fd (both among argv->fds). 0, or -1 (errno).
 */
static int egress_mounts(const sandbox_policy_t *p, sandbox_argv_t *argv)
{
    const char *bridge = egress_bridge_path();
    if (bridge == NULL || argv->n_fds + 4 > SANDBOX_MAX_FDS) {
        errno = ENOENT;
        return -1;
    }
    int bfd = open(bridge, O_PATH | O_CLOEXEC);
    int cfd = bfd >= 0 ? fcntl(p->egress_fd, F_DUPFD_CLOEXEC, 0) : -1;
    if (cfd < 0) {
        if (bfd >= 0)
            close(bfd);
        return -1;
    }
    char num[16];
    snprintf(num, sizeof(num), "%d", SANDBOX_FIRST_BIND_FD + argv->n_fds);
    argv->fds[argv->n_fds++] = bfd;
    argv_push3(argv, "--ro-bind-fd", num, EGRESS_BRIDGE_SANDBOX_PATH);
    snprintf(egress_chan, sizeof(egress_chan), "%d", SANDBOX_FIRST_BIND_FD + argv->n_fds);
    argv->fds[argv->n_fds++] = cfd;
    return 0;
}

/* The proxy variables every HTTP client, pip, npm and git understand. */
static void egress_env(sandbox_argv_t *argv)
{
    static const char *const vars[][2] = {
        {"HTTP_PROXY", "http://127.0.0.1:3128"}, {"HTTPS_PROXY", "http://127.0.0.1:3128"},
        {"http_proxy", "http://127.0.0.1:3128"}, {"https_proxy", "http://127.0.0.1:3128"},
        {"ALL_PROXY", "socks5h://127.0.0.1:1080"}, {"all_proxy", "socks5h://127.0.0.1:1080"},
        {"NO_PROXY", "localhost,127.0.0.1,::1"}, {"no_proxy", "localhost,127.0.0.1,::1"}};
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        argv_push3(argv, "--setenv", vars[i][0], vars[i][1]);
}

/* The run's seccomp filter: bwrap installs it; with egress the bridge does, after handing over its listeners. */
static void filter_args(const sandbox_policy_t *p, int seccomp_fd, sandbox_argv_t *argv)
{
    char num[16];
    if (p->egress != NULL) {
        egress_env(argv);
    } else if (seccomp_fd >= 0) {
        snprintf(num, sizeof(num), "%d", seccomp_fd);
        argv_push2(argv, "--seccomp", num);
    }
}

/* Where the run's script appears inside the sandbox (a read-only file in bwrap's /dev). */
#define SCRIPT_PATH "/dev/.mcp-sandboxd-run"

int sandbox_build(const sandbox_policy_t *p, const char *workspace, const char *cwd, const char *command,
                  char *const *env, size_t n_env, int status_fd, int seccomp_fd, sandbox_argv_t *argv,
                  sandbox_argv_t *envp)
{
    char num[32];
    memset(argv, 0, sizeof(*argv));
    memset(envp, 0, sizeof(*envp));
    argv_push(envp, "PATH=/usr/local/bin:/usr/bin:/bin");
    if (config.isolation_none) {
        /* development only: the shell runs on the host with a clean environment */
        char home[1100];
        snprintf(home, sizeof(home), "HOME=%s", workspace);
        argv_push(envp, home);
        argv_push(envp, "LANG=C.UTF-8");
        argv_push(envp, "TERM=dumb");
        for (size_t i = 0; i < n_env; i++)
            argv_push(envp, env[i]);
        argv_push3(argv, "/bin/sh", "-c", command);
        return 0;
    }
    fs_uid = p->uid;
    fs_gid = p->gid;
    argv_push(argv, bwrap_path);
    argv_push(argv, "--unshare-user");
    argv_push(argv, "--unshare-pid");
    argv_push(argv, "--unshare-ipc");
    argv_push(argv, "--unshare-uts");
    argv_push(argv, "--unshare-cgroup-try");
    if (!p->network_host)
        argv_push(argv, "--unshare-net");
    argv_push(argv, "--disable-userns");
    argv_push(argv, "--die-with-parent");
    argv_push(argv, "--new-session");
    argv_push2(argv, "--hostname", "sandbox");
    argv_push2(argv, "--cap-drop", "ALL");
    build_mounts(p, workspace, argv);
    if (p->egress != NULL && egress_mounts(p, argv) != 0)
        return -1; /* errno set */
    /*
     * max_processes is set inside the sandbox, not on bwrap: RLIMIT_NPROC
     * counts every process of the sandbox user on the host, but inside the
     * run's own user namespace it counts only the run's processes. The limit
     * line and the command run in ONE shell (no second exec); a syntax error
     * in the command is then reported on line 2. The start marker (proc.c) is
     * the fd after the bind sources, the script and the args memfds.
     */
    int marker = SANDBOX_FIRST_BIND_FD + argv->n_fds + 2;
    strbuf_t script = {0};
    strbuf_printf(&script,
                  "printf . >&%d; exec %d>&-; ulimit %s %ld || { echo 'sandbox: cannot set max_processes' >&2; exit 126; }\n",
                  marker, marker, ulimit_nproc_flag, p->nproc);
    strbuf_puts(&script, command);
    int sfd = argv->n_fds + 2 <= SANDBOX_MAX_FDS ? text_memfd(script.data, script.len) : -1;
    strbuf_free(&script);
    if (sfd < 0)
        return -1;
    snprintf(num, sizeof(num), "%d", SANDBOX_FIRST_BIND_FD + argv->n_fds);
    argv->fds[argv->n_fds++] = sfd;
    argv_push2(argv, "--perms", "0444");
    argv_push3(argv, "--ro-bind-data", num, SCRIPT_PATH);
    remount_hidden_ro(argv);
    argv_push2(argv, "--chdir", cwd);
    argv_push3(argv, "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin");
    argv_push3(argv, "--setenv", "HOME", workspace);
    argv_push3(argv, "--setenv", "LANG", "C.UTF-8");
    argv_push3(argv, "--setenv", "TERM", "dumb");
    for (size_t i = 0; i < n_env; i++) {
        const char *eq = strchr(env[i], '=');
        char key[256];
        size_t kl = (size_t)(eq - env[i]) < sizeof(key) ? (size_t)(eq - env[i]) : sizeof(key) - 1;
        memcpy(key, env[i], kl);
        key[kl] = '\0';
        argv_push3(argv, "--setenv", key, eq + 1);
    }
    filter_args(p, seccomp_fd, argv);
    snprintf(num, sizeof(num), "%d", status_fd);
    argv_push2(argv, "--json-status-fd", num);
    return seal_args(argv, p->egress != NULL ? seccomp_fd : -1);
}

/*
 * Moves the built bwrap options into a memfd read by `bwrap --args N`: the
 * argv the host sees is `bwrap --args N -- /bin/sh SCRIPT_PATH` (bwrap takes
 * the command from its real argv only). The full list stays in `args` for tests.
 */
static int seal_args(sandbox_argv_t *a, int bridge_seccomp)
{
    int fd = args_memfd(a);
    if (fd < 0)
        return -1;
    a->args = a->v;
    a->n_args = a->n;
    a->v = NULL;
    a->n = a->cap = 0;
    char num[16];
    snprintf(num, sizeof(num), "%d", SANDBOX_FIRST_BIND_FD + a->n_fds);
    a->fds[a->n_fds++] = fd;
    argv_push(a, bwrap_path);
    argv_push2(a, "--args", num);
    argv_push(a, "--");
    if (bridge_seccomp >= 0) { /* egress: the bridge runs first (listeners, then seccomp, then exec) */
        snprintf(num, sizeof(num), "%d", bridge_seccomp);
        argv_push3(a, EGRESS_BRIDGE_SANDBOX_PATH, egress_chan, num);
    }
    argv_push2(a, "/bin/sh", SCRIPT_PATH);
    return 0;
}

/* ---------------------------------------------------------------- seccomp */

/* The compiled filters: [0] for runs without a network, [1] for host-network runs. */
static unsigned char *bpf[2];
static size_t bpf_len[2];

#ifndef AF_MAX
#define AF_MAX 46
#endif

/*
 * Socket families by allow-list: AF_NETLINK with NETLINK_ROUTE only (ip,
 * getaddrinfo's interface query), AF_INET/AF_INET6 only with a network;
 * AF_UNIX refused with EACCES (no reaching a host daemon through a socket
 * file), every other family (vsock, packet, ...) with EAFNOSUPPORT.
 */
static int seccomp_sockets(scmp_filter_ctx ctx, int network)
{
    int rc = 0;
    for (int af = 0; af < AF_MAX; af++) {
        if (af == AF_NETLINK || (network && (af == AF_INET || af == AF_INET6)))
            continue;
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(af == AF_UNIX ? EACCES : EAFNOSUPPORT), SCMP_SYS(socket), 1,
                               SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)af));
    }
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_GE, AF_MAX));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 2, SCMP_A0(SCMP_CMP_EQ, AF_NETLINK),
                           SCMP_A2(SCMP_CMP_NE, NETLINK_ROUTE));
    /*
     * socketpair: only AF_UNIX exists, and a datagram pair can sendto() or
     * connect() any socket path (the attack), so SOCK_DGRAM (and SOCK_RAW, the
     * same for AF_UNIX) are refused. Stream and seqpacket pairs are born
     * connected and ignore or refuse an address (EISCONN), so they stay:
     * Python's asyncio and libuv's child pipes are stream socketpairs.
     */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socketpair), 1, SCMP_A0(SCMP_CMP_NE, AF_UNIX));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socketpair), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_DGRAM));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), SCMP_SYS(socketpair), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xf, SOCK_RAW));
    return rc;
}

/*
 * The filter every run gets: the socket rules above; no kernel keyrings
 * (shared by every run of a uid), no bpf, perf events, userfaultfd, io_uring,
 * no TIOCSTI; and no ptrace attach (nor process_vm_*) to PID 1, the sandbox's
 * init: it is dumpable, and a run that clears its PR_SET_PDEATHSIG outlives
 * the server. Other processes of the run can still be traced (strace, gdb).
 * Other architectures' syscalls are killed (libseccomp default).
 */
static int seccomp_build(int network)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL)
        return -1;
    int rc = seccomp_sockets(ctx, network);
    static const int blocked[] = {SCMP_SYS(keyctl), SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(bpf),
                                  SCMP_SYS(perf_event_open), SCMP_SYS(userfaultfd), SCMP_SYS(io_uring_setup)};
    for (size_t i = 0; i < sizeof(blocked) / sizeof(blocked[0]); i++)
        rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), blocked[i], 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_MASKED_EQ, 0xFFFFFFFFu, TIOCSTI));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ptrace), 1, SCMP_A1(SCMP_CMP_EQ, 1));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(process_vm_writev), 1, SCMP_A0(SCMP_CMP_EQ, 1));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(process_vm_readv), 1, SCMP_A0(SCMP_CMP_EQ, 1));
    int fd = memfd_create("seccomp", MFD_CLOEXEC);
    if (rc != 0 || fd < 0 || seccomp_export_bpf(ctx, fd) != 0) {
        if (fd >= 0)
            close(fd);
        seccomp_release(ctx);
        return -1;
    }
    seccomp_release(ctx);
    off_t len = lseek(fd, 0, SEEK_END);
    bpf[network] = xmalloc((size_t)len);
    bpf_len[network] = (size_t)pread(fd, bpf[network], (size_t)len, 0);
    close(fd);
    return bpf_len[network] == (size_t)len ? 0 : -1;
}

int sandbox_seccomp_fd(int network_host)
{
    int k = network_host ? 1 : 0;
    int fd = memfd_create("seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return -1;
    if (write(fd, bpf[k], bpf_len[k]) != (ssize_t)bpf_len[k] || lseek(fd, 0, SEEK_SET) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ---------------------------------------------------------------- init */

static int find_bwrap(void)
{
    const char *dirs[] = {"/usr/bin", "/usr/local/bin", "/bin", NULL};
    for (int i = 0; dirs[i] != NULL; i++) {
        snprintf(bwrap_path, sizeof(bwrap_path), "%s/bwrap", dirs[i]);
        if (access(bwrap_path, X_OK) == 0)
            return 0;
    }
    bwrap_path[0] = '\0';
    return -1;
}

/*
 * Runs `bwrap ... /bin/true` once, synchronously, as the sandbox user, before
 * the server takes requests: a host without user namespaces is reported at
 * startup and in /health rather than on the first call.
 */
static int probe(void)
{
    sandbox_policy_t p;
    char err[256];
    sandbox_policy_parse(NULL, &p, err, sizeof(err));
    p.uid = run_uid;
    p.gid = run_gid;
    sandbox_argv_t argv, envp;
    int built = sandbox_build(&p, config.workspace_root, "/", "true", NULL, 0, 4, 3, &argv, &envp);
    int sfd = sandbox_seccomp_fd(0), errp[2];
    if (built != 0 || sfd < 0 || pipe2(errp, O_CLOEXEC) != 0) {
        snprintf(error_msg, sizeof(error_msg), "cannot prepare the sandbox probe (%s): %s",
                 built != 0 ? "bwrap arguments" : sfd < 0 ? "seccomp filter" : "pipe", strerror(errno));
        if (sfd >= 0)
            close(sfd);
        if (built == 0) {
            sandbox_argv_free(&argv);
            sandbox_argv_free(&envp);
        }
        sandbox_policy_free(&p);
        return -1;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(sfd, 3);
        int devnull = open("/dev/null", O_RDWR);
        dup2(devnull, 4);
        dup2(devnull, 0);
        dup2(devnull, 1);
        dup2(errp[1], 2);
        for (int i = 0; i < argv.n_fds; i++) /* script and args memfds: 5, 6 (no bind sources here) */
            dup2(argv.fds[i], SANDBOX_FIRST_BIND_FD + i);
        if (run_gid != (gid_t)-1 && (setgroups(0, NULL) != 0 || setresgid(run_gid, run_gid, run_gid) != 0))
            _exit(126);
        if (run_uid != (uid_t)-1 && setresuid(run_uid, run_uid, run_uid) != 0)
            _exit(126);
        execve(argv.v[0], argv.v, envp.v);
        _exit(127);
    }
    close(errp[1]);
    close(sfd);
    char buf[400] = {0};
    ssize_t n = pid > 0 ? read(errp[0], buf, sizeof(buf) - 1) : 0;
    close(errp[0]);
    int status = 0;
    if (pid > 0)
        waitpid(pid, &status, 0);
    sandbox_argv_free(&argv);
    sandbox_argv_free(&envp);
    sandbox_policy_free(&p);
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        if (n > 0 && buf[n - 1] == '\n')
            buf[n - 1] = '\0';
        snprintf(error_msg, sizeof(error_msg),
                 "bubblewrap cannot create a sandbox here: %s (check that user namespaces are enabled and that user '%s' "
                 "can reach --workspace-root %s)",
                 n > 0 ? buf : "probe failed", config.sandbox_user, config.workspace_root);
        return -1;
    }
    return 0;
}

/*
 * Who runs run: with --uid-range (root only) each session gets a uid of its
 * own (gid = uid, no supplementary groups), none of which may belong to an
 * account; otherwise every run shares --sandbox-user (root) or this server's
 * uid, which lets sessions meet in write roots and through /proc: warned.
 */
static int identity_init(void)
{
    if (config.uid_count > 0) {
        if (geteuid() != 0) {
            snprintf(error_msg, sizeof(error_msg), "--uid-range needs the server to run as root (to switch to and "
                                                   "chown for each session's uid)");
            return -1;
        }
        struct passwd *pw;
        setpwent();
        while ((pw = getpwent()) != NULL)
            if ((long)pw->pw_uid >= config.uid_start && (long)pw->pw_uid < config.uid_start + config.uid_count) {
                snprintf(error_msg, sizeof(error_msg), "--uid-range %ld:%ld holds uid %ld of account '%s': pick a "
                         "range no account uses", config.uid_start, config.uid_count, (long)pw->pw_uid, pw->pw_name);
                endpwent();
                return -1;
            }
        endpwent();
        free(uid_used);
        uid_used = xcalloc((size_t)(config.uid_count + 7) / 8, 1);
        run_uid = (uid_t)config.uid_start;
        run_gid = (gid_t)config.uid_start;
        log_info("each session's runs execute as their own host uid from --uid-range %ld:%ld", config.uid_start,
                 config.uid_count);
        return 0;
    }
    if (geteuid() == 0) {
        struct passwd *pw = getpwnam(config.sandbox_user);
        if (pw == NULL || pw->pw_uid == 0) {
            snprintf(error_msg, sizeof(error_msg), "--sandbox-user '%s' is unknown or is root", config.sandbox_user);
            return -1;
        }
        run_uid = pw->pw_uid;
        run_gid = pw->pw_gid;
        log_warn("no --uid-range: every session's runs share the host uid of --sandbox-user '%s' (%ld), so tenants can "
                 "reach each other's files in write roots; set --uid-range START:COUNT", config.sandbox_user, (long)run_uid);
    } else {
        log_warn("not root: every run executes as this server's own uid (%ld), shared by all sessions; --uid-range "
                 "needs root", (long)geteuid());
    }
    return 0;
}

int sandbox_init(void)
{
    error_msg[0] = '\0';
    if (identity_init() != 0)
        return -1;
    if (mkdir(config.workspace_root, 0711) != 0 && errno != EEXIST) {
        snprintf(error_msg, sizeof(error_msg), "cannot create --workspace-root %s: %s", config.workspace_root, strerror(errno));
        return -1;
    }
    /* workspaces are created, chowned and removed by path: nobody else may own or write the root */
    struct stat st;
    if (lstat(config.workspace_root, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
        (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        snprintf(error_msg, sizeof(error_msg),
                 "--workspace-root %s must be a real directory (not a symlink) owned by this server's user and "
                 "writable by it alone",
                 config.workspace_root);
        return -1;
    }
    chmod(config.workspace_root, 0711);
    if (config.isolation_none) {
        log_warn("--isolation none: commands run WITHOUT a sandbox, on the host, as this server's user. Development only.");
        return 0;
    }
    if (system("/bin/sh -c 'ulimit -p 1' >/dev/null 2>&1") != 0) /* dash has -p; bash and others -u */
        ulimit_nproc_flag = "-u";
    if (find_bwrap() != 0) {
        snprintf(error_msg, sizeof(error_msg), "bubblewrap (bwrap) is not installed: install the 'bubblewrap' package");
        return -1;
    }
    if (seccomp_build(0) != 0 || seccomp_build(1) != 0) {
        snprintf(error_msg, sizeof(error_msg), "cannot build the seccomp filter with libseccomp");
        return -1;
    }
    return probe();
}

void sandbox_cleanup(void)
{
    for (int k = 0; k < 2; k++) {
        free(bpf[k]);
        bpf[k] = NULL;
    }
    free(uid_used);
    uid_used = NULL;
}
