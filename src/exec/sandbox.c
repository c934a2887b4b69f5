/*
 * sandbox: bubblewrap command lines, policy parsing, seccomp, workspaces.
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
#include "exec/egress.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/log.h"
#include "core/util.h"

#include <bsd/string.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <ftw.h>
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
static int open_nofollow(const char *path)
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
    int fd = a->n_fds < SANDBOX_MAX_FDS - 2 ? open_nofollow(path) : (errno = EMFILE, -1);
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
static int path_under(const char *path, const char *dir)
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
        if (!path_under(p->allow_write[i], config.workspace_root) || path_under(p->allow_write[i], workspace))
            caller_bind(argv, p->allow_write[i], 1);
    for (int i = 0; i < p->n_deny_write; i++)
        if (!path_under(p->deny_write[i], config.workspace_root) || path_under(p->deny_write[i], workspace))
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
        if (path_under(p->deny_write[i], workspace))
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

/* ---------------------------------------------------------------- policy */

/* "maxMemoryMB" -> "max_memory_mb"; snake_case passes through. */
static void to_snake(const char *in, char *out, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; in[i] && o + 2 < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (isupper(c)) {
            if (i > 0 && (islower((unsigned char)in[i - 1]) || isdigit((unsigned char)in[i - 1])))
                out[o++] = '_';
            out[o++] = (char)tolower(c);
        } else
            out[o++] = (char)c;
    }
    out[o] = '\0';
}

static int check_path(const char *field, const char *path, char *err, size_t errlen)
{
    size_t n = strlen(path);
    if (path[0] != '/') {
        snprintf(err, errlen, "sandbox_config.%s: '%.200s' must be an absolute path", field, path);
        return -1;
    }
    if (n >= 4096) {
        snprintf(err, errlen, "sandbox_config.%s: a path is %zu characters long; the limit is 4095", field, n);
        return -1;
    }
    if (strstr(path, "/../") != NULL || (n >= 3 && !strcmp(path + n - 3, "/.."))) {
        snprintf(err, errlen, "sandbox_config.%s: '%.200s' must not contain '..'", field, path);
        return -1;
    }
    if (strpbrk(path, "\n\r") != NULL) {
        snprintf(err, errlen, "sandbox_config.%s: paths must not contain line breaks", field);
        return -1;
    }
    return 0;
}

/* allow_write / deny_write may not name the root or the kernel's pseudo filesystems. */
static int check_write_path(const char *field, const char *path, char *err, size_t errlen)
{
    static const char *const refused[] = {"/proc", "/sys", "/dev", NULL};
    /* "//", "/./" and a trailing "/." would spell "/" or /proc another way */
    size_t n = strlen(path);
    if (strstr(path, "//") != NULL || strstr(path, "/./") != NULL || (n >= 2 && !strcmp(path + n - 2, "/."))) {
        snprintf(err, errlen, "sandbox_config.%s: '%.200s' must be a normalized path (no '//' or '.' components)", field, path);
        return -1;
    }
    if (!strcmp(path, "/") || path[1] == '\0') {
        snprintf(err, errlen, "sandbox_config.%s: '/' is not allowed", field);
        return -1;
    }
    for (int i = 0; refused[i] != NULL; i++) {
        size_t l = strlen(refused[i]);
        if (!strncmp(path, refused[i], l) && (path[l] == '\0' || path[l] == '/')) {
            snprintf(err, errlen, "sandbox_config.%s: '%.200s' is under %s, which cannot be bound", field, path, refused[i]);
            return -1;
        }
    }
    return 0;
}

static int parse_paths(const char *field, const cJSON *v, char **out, int *n, char *err, size_t errlen)
{
    if (!cJSON_IsArray(v)) {
        snprintf(err, errlen, "sandbox_config.%s must be an array of absolute paths", field);
        return -1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, v)
    {
        if (!cJSON_IsString(it)) {
            snprintf(err, errlen, "sandbox_config.%s must contain only strings", field);
            return -1;
        }
        if (check_path(field, it->valuestring, err, errlen) != 0)
            return -1;
        if (strstr(field, "write") != NULL && check_write_path(field, it->valuestring, err, errlen) != 0)
            return -1;
        if (strstr(field, "write") != NULL) {
            int fd = open_nofollow(it->valuestring);
            if (fd < 0 && errno == ELOOP) {
                snprintf(err, errlen, "sandbox_config.%s: '%.200s' goes through a symbolic link; give the real path", field,
                         it->valuestring);
                return -1;
            }
            if (fd >= 0)
                close(fd);
        }
        if (*n >= SANDBOX_MAX_PATHS) {
            snprintf(err, errlen, "sandbox_config.%s: at most %d paths", field, SANDBOX_MAX_PATHS);
            return -1;
        }
        out[(*n)++] = xstrdup(it->valuestring);
    }
    return 0;
}

static int parse_limit(const char *field, const cJSON *v, long cap, long *out, char *err, size_t errlen)
{
    if (cJSON_IsNumber(v) && v->valuedouble > (double)cap) {
        snprintf(err, errlen, "sandbox_config.resource_limits.%s = %.15g exceeds the server's cap of %ld", field,
                 v->valuedouble, cap);
        return -1;
    }
    if (!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble != (double)(long)v->valuedouble) {
        snprintf(err, errlen, "sandbox_config.resource_limits.%s must be a positive integer", field);
        return -1;
    }
    if (v->valuedouble > (double)cap) {
        snprintf(err, errlen, "sandbox_config.resource_limits.%s = %.15g exceeds the server's cap of %ld", field,
                 v->valuedouble, cap);
        return -1;
    }
    *out = (long)v->valuedouble;
    return 0;
}

/*
 * Caller write paths must lie under a root the operator opened
 * (--allow-write-root) or in the workspace root (where only the session's own
 * workspace is ever bound): tenants never get a host path of their choosing.
 */
static int check_write_roots(const char *field, char **paths, int n, char *err, size_t errlen)
{
    for (int i = 0; i < n; i++) {
        int ok = path_under(paths[i], config.workspace_root);
        for (int r = 0; !ok && r < config.n_allow_write_root; r++)
            ok = path_under(paths[i], config.allow_write_root[r]);
        if (!ok) {
            snprintf(err, errlen,
                     "sandbox_config.filesystem.%s: '%.200s' is not under a directory the operator opened for writing "
                     "(--allow-write-root%s)",
                     field, paths[i], config.n_allow_write_root == 0 ? "; none is configured" : "");
            return -1;
        }
    }
    return 0;
}

/* sandbox_config.network.mode: 'none', or 'host' where --allow-network allows it. 0 / -1 with err. */
static int parse_network_mode(const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen)
{
    if (cJSON_IsString(it) && !strcmp(it->valuestring, "none")) {
        p->network_host = 0;
        return 0;
    }
    if (!cJSON_IsString(it) || strcmp(it->valuestring, "host") != 0) {
        snprintf(err, errlen, "sandbox_config.network.mode must be 'none' or 'host'");
        return -1;
    }
    if (!config.allow_network) {
        snprintf(err, errlen, "sandbox_config.network.mode 'host' is not allowed on this server (start it with --allow-network)");
        return -1;
    }
    p->network_host = 1;
    return 0;
}

/* egress (issue 14): allowed_domains / denied_domains, an array of patterns, into p->egress. 0 / -1. */
static int parse_domains(const cJSON *it, int deny, sandbox_policy_t *p, char *err, size_t errlen)
{
    const cJSON *d;
    char why[300];
    if (!cJSON_IsArray(it)) {
        snprintf(err, errlen, "sandbox_config.network.%.40s must be an array of domain names", it->string);
        return -1;
    }
    cJSON_ArrayForEach(d, it)
    {
        if (!cJSON_IsString(d) || egress_policy_add(&p->egress, deny, d->valuestring, why, sizeof(why)) != 0) {
            snprintf(err, errlen, "sandbox_config.network.%.40s: %s", it->string,
                     cJSON_IsString(d) ? why : "entries must be strings");
            return -1;
        }
    }
    return 0;
}

/* egress (issue 14): lists only mean something without a mode; no allowed name means no network. 0 / -1. */
static int network_domains_check(const cJSON *net, sandbox_policy_t *p, char *err, size_t errlen)
{
    const cJSON *mode = cJSON_GetObjectItemCaseSensitive(net, "mode");
    if (egress_policy_any_allowed(p->egress) && mode != NULL) {
        snprintf(err, errlen, "sandbox_config.network: allowed_domains cannot be combined with mode '%s' "
                              "(leave mode out to reach only the allowed domains)",
                 p->network_host ? "host" : "none");
        return -1;
    }
    if (!egress_policy_any_allowed(p->egress)) { /* only denials, or empty lists: no network, as before */
        egress_policy_free(p->egress);
        p->egress = NULL;
    }
    return 0;
}

/* sandbox_config.network: mode, or allowed_domains / denied_domains (issue 14). 0 / -1 with err. */
static int parse_network(const cJSON *sec, sandbox_policy_t *p, char *err, size_t errlen)
{
    const cJSON *it;
    if (cJSON_IsNull(sec))
        return 0;
    if (!cJSON_IsObject(sec)) {
        snprintf(err, errlen, "sandbox_config.network must be an object like {\"mode\": \"none\"}");
        return -1;
    }
    cJSON_ArrayForEach(it, sec)
    {
        char k[64];
        to_snake(it->string, k, sizeof(k));
        if (!strcmp(k, "mode")) {
            if (parse_network_mode(it, p, err, errlen) != 0)
                return -1;
        } else if (!strcmp(k, "allowed_domains") || !strcmp(k, "denied_domains")) {
            if (parse_domains(it, k[0] == 'd', p, err, errlen) != 0)
                return -1;
        } else {
            snprintf(err, errlen, "sandbox_config.network: unknown field '%.60s'", it->string);
            return -1;
        }
    }
    return network_domains_check(sec, p, err, errlen);
}

/* One field of a section: 0, -1 with err, or 1 when the field is unknown. */
typedef int (*section_field_fn)(const char *k, const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen);

/* Walks sandbox_config.<name> (an object), field by field. 0 / -1 with err. */
static int parse_section(const char *name, const cJSON *sec, section_field_fn field, sandbox_policy_t *p, char *err,
                         size_t errlen)
{
    const cJSON *it;
    if (!cJSON_IsObject(sec)) {
        snprintf(err, errlen, "sandbox_config.%s must be an object", name);
        return -1;
    }
    cJSON_ArrayForEach(it, sec)
    {
        char k[64];
        to_snake(it->string, k, sizeof(k));
        int rc = field(k, it, p, err, errlen);
        if (rc > 0)
            snprintf(err, errlen, "sandbox_config.%s: unknown field '%.60s'", name, it->string);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* filesystem: deny_read, allow_write, deny_write path lists (the write ones under --allow-write-root). */
static int filesystem_field(const char *k, const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen)
{
    if (!strcmp(k, "deny_read"))
        return parse_paths("filesystem.deny_read", it, p->deny_read, &p->n_deny_read, err, errlen) ? -1 : 0;
    if (!strcmp(k, "allow_write"))
        return parse_paths("filesystem.allow_write", it, p->allow_write, &p->n_allow_write, err, errlen) ||
                       check_write_roots("allow_write", p->allow_write, p->n_allow_write, err, errlen)
                   ? -1
                   : 0;
    if (!strcmp(k, "deny_write"))
        return parse_paths("filesystem.deny_write", it, p->deny_write, &p->n_deny_write, err, errlen) ||
                       check_write_roots("deny_write", p->deny_write, p->n_deny_write, err, errlen)
                   ? -1
                   : 0;
    return 1;
}

/* resource_limits: each under the server's maximum. */
static int limits_field(const char *k, const cJSON *it, sandbox_policy_t *p, char *err, size_t errlen)
{
    if (!strcmp(k, "max_memory_mb"))
        return parse_limit(k, it, config.mem_max_mb, &p->mem_mb, err, errlen) ? -1 : 0;
    if (!strcmp(k, "max_cpu_seconds"))
        return parse_limit(k, it, config.cpu_max_s, &p->cpu_s, err, errlen) ? -1 : 0;
    if (!strcmp(k, "max_file_size_mb"))
        return parse_limit(k, it, config.fsize_max_mb, &p->fsize_mb, err, errlen) ? -1 : 0;
    if (!strcmp(k, "max_processes"))
        return parse_limit(k, it, config.nproc_max, &p->nproc, err, errlen) ? -1 : 0;
    return 1;
}

int sandbox_policy_parse(const cJSON *cfg, sandbox_policy_t *p, char *err, size_t errlen)
{
    char key[64];
    const cJSON *sec;
    memset(p, 0, sizeof(*p));
    p->mem_mb = config.mem_default_mb;
    p->cpu_s = config.cpu_default_s;
    p->fsize_mb = config.fsize_default_mb;
    p->nproc = config.nproc_default;
    if (cfg == NULL || cJSON_IsNull(cfg))
        return 0;
    if (!cJSON_IsObject(cfg)) {
        snprintf(err, errlen, "sandbox_config must be an object");
        return -1;
    }
    cJSON_ArrayForEach(sec, cfg)
    {
        to_snake(sec->string, key, sizeof(key));
        int rc;
        if (!strcmp(key, "network"))
            rc = parse_network(sec, p, err, errlen);
        else if (!strcmp(key, "filesystem"))
            rc = parse_section("filesystem", sec, filesystem_field, p, err, errlen);
        else if (!strcmp(key, "resource_limits"))
            rc = parse_section("resource_limits", sec, limits_field, p, err, errlen);
        else {
            snprintf(err, errlen, "sandbox_config: unknown field '%.60s' (known: network, filesystem, resource_limits)",
                     sec->string);
            return -1;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

void sandbox_policy_free(sandbox_policy_t *p)
{
    egress_policy_free(p->egress);
    for (int i = 0; i < p->n_deny_read; i++)
        free(p->deny_read[i]);
    for (int i = 0; i < p->n_allow_write; i++)
        free(p->allow_write[i]);
    for (int i = 0; i < p->n_deny_write; i++)
        free(p->deny_write[i]);
    memset(p, 0, sizeof(*p));
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

/* ---------------------------------------------------------------- workspaces */

int sandbox_workspace_create(char *buf, size_t len, uid_t uid, gid_t gid, char *err, size_t errlen)
{
    char name[33];
    util_random_hex(name, 16);
    snprintf(buf, len, "%s/%s", config.workspace_root, name);
    if (mkdir(buf, 0700) != 0) {
        snprintf(err, errlen, "cannot create the session workspace: %s", strerror(errno));
        return -1;
    }
    int fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 || (uid != (uid_t)-1 && fchown(fd, uid, gid) != 0) || fchmod(fd, 0700) != 0) {
        snprintf(err, errlen, "cannot hand the workspace to the sandbox user: %s", strerror(errno));
        if (fd >= 0)
            close(fd);
        rmdir(buf);
        return -1;
    }
    close(fd);
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)ftw;
    if (flag == FTW_DP)
        rmdir(path);
    else
        unlink(path);
    return 0;
}

void sandbox_workspace_remove_now(const char *path)
{
    /* a run may have left directories without write permission: chmod is not followed through symlinks */
    nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/*
 * Background removals: a queue of paths and one worker thread, started at the
 * first removal and kept for the process's life (a mass expiry of sessions
 * queues paths, it starts no threads). `removals` counts the queued and the
 * one in progress, so shutdown can wait for them (sandbox_workspace_wait).
 * All of it under removals_lock; the worker owns the path it took.
 */
struct removal {
    struct removal *next;
    char path[];
};
static pthread_mutex_t removals_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t removals_cond; /* work queued or one done; monotonic (removals_init) */
static pthread_once_t removals_once = PTHREAD_ONCE_INIT;
static struct removal *removals_head, *removals_tail;
static int removals, remover_started;

static void removals_init(void)
{
    if (clock_cond_init(&removals_cond) != 0)
        util_oom(); /* only ENOMEM can fail it */
}

/* The worker: removes queued workspaces one after another, for ever. */
static void *remover_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&removals_lock);
    for (;;) {
        while (removals_head == NULL)
            pthread_cond_wait(&removals_cond, &removals_lock);
        struct removal *r = removals_head;
        removals_head = r->next;
        if (removals_head == NULL)
            removals_tail = NULL;
        pthread_mutex_unlock(&removals_lock);
        sandbox_workspace_remove_now(r->path);
        free(r);
        pthread_mutex_lock(&removals_lock);
        removals--;
        pthread_cond_broadcast(&removals_cond);
    }
    return NULL;
}

/* Queues `path` for the worker (started at the first call); removes it here if no thread can start. */
void sandbox_workspace_remove(const char *path)
{
    size_t len = strlen(path) + 1;
    struct removal *r = malloc(sizeof(*r) + len);
    if (r == NULL)
        util_oom();
    memcpy(r->path, path, len);
    r->next = NULL;
    pthread_once(&removals_once, removals_init);
    pthread_mutex_lock(&removals_lock);
    if (!remover_started) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        remover_started = pthread_create(&t, &attr, remover_main, NULL) == 0;
        pthread_attr_destroy(&attr);
    }
    if (!remover_started) {
        pthread_mutex_unlock(&removals_lock);
        sandbox_workspace_remove_now(r->path);
        free(r);
        return;
    }
    if (removals_tail != NULL)
        removals_tail->next = r;
    else
        removals_head = r;
    removals_tail = r;
    removals++;
    pthread_cond_broadcast(&removals_cond);
    pthread_mutex_unlock(&removals_lock);
}

int sandbox_workspace_wait(int deadline_ms)
{
    pthread_once(&removals_once, removals_init);
    struct timespec until;
    clock_deadline(&until, deadline_ms > 0 ? (uint64_t)deadline_ms : 0);
    pthread_mutex_lock(&removals_lock);
    while (removals > 0 && pthread_cond_timedwait(&removals_cond, &removals_lock, &until) == 0)
        ;
    int left = removals;
    pthread_mutex_unlock(&removals_lock);
    return left;
}
