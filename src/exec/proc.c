/*
 * proc: fork/exec of one run and everything the loop does with it.
 *
 * The child is vfork()ed (not posix_spawn) because it must set rlimits, drop
 * to the sandbox user and arm PR_SET_PDEATHSIG between fork and exec; it only
 * makes raw or thin system calls. All pipes are CLOEXEC in the server and are
 * moved to 0..4 (and bind sources to 5..) in the child; close_range() drops
 * everything else.
 */
#include "exec/proc.h"
#include "core/log.h"

#include <bsd/string.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define STDIN_QUEUE_MAX (1 << 20)
#define LINGER_MS 2000 /* after exit, how long output pipes may stay open */
#define KILL_DEFER_MS 250 /* how long a kill may wait for bwrap to report the sandbox init's pid */

static h2o_evloop_t *proc_loop; /* where runs' sockets live (proc_init) */
static void check_done(proc_t *p);
static void kill_now(proc_t *p, int may_defer);
static void kill_strays(const proc_t *p);

/* ---------------------------------------------------------------- child side */

static void child_fail(const char *what)
{
    char msg[128];
    int e = errno;
    size_t n = strlcpy(msg, "mcp-sandboxd: cannot start the run: ", sizeof(msg));
    n += strlcpy(msg + n, what, sizeof(msg) - n);
    if (n < sizeof(msg) - 16) {
        msg[n++] = ' ';
        msg[n++] = '(';
        msg[n++] = 'e';
        msg[n++] = 'r';
        msg[n++] = 'r';
        msg[n++] = 'n';
        msg[n++] = 'o';
        msg[n++] = ' ';
        if (e >= 100)
            msg[n++] = (char)('0' + e / 100 % 10);
        if (e >= 10)
            msg[n++] = (char)('0' + e / 10 % 10);
        msg[n++] = (char)('0' + e % 10);
        msg[n++] = ')';
    }
    msg[n++] = '\n';
    ssize_t r = write(2, msg, n);
    (void)r;
    _exit(127);
}

/*
 * Runs in the vfork()ed child, on the parent's memory until execve: only
 * thin system-call wrappers, no allocation, never returns.
 */
static void child_exec(const proc_spec_t *s, int fds[5], int marker_fd, pid_t parent)
{
    /* first of all, join the run's cgroup(s): not one instruction of the command runs outside
     * them; a failure is reported once stderr is the run's own (below) */
    int join_errno = 0;
    if (s->cgroup != NULL && s->cgroup->n_procs_fd > 0) {
        char pid[16];
        int n = 0;
        for (long v = syscall(SYS_getpid); v > 0; v /= 10)
            pid[n++] = (char)('0' + v % 10);
        for (int i = 0; i < n / 2; i++) {
            char t = pid[i];
            pid[i] = pid[n - 1 - i];
            pid[n - 1 - i] = t;
        }
        for (int i = 0; i < s->cgroup->n_procs_fd && join_errno == 0; i++)
            if (write(s->cgroup->procs_fd[i], pid, (size_t)n) != n)
                join_errno = errno != 0 ? errno : EIO;
    }
    sigset_t none;
    sigemptyset(&none);
    struct sigaction dfl;
    memset(&dfl, 0, sizeof(dfl));
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            sigaction(sig, &dfl, NULL);
    sigprocmask(SIG_SETMASK, &none, NULL);
    setpgid(0, 0);
    /* move every source above the targets first so no dup2 clobbers another source */
    /* 0..4 fixed, then the bind sources, then the start marker (see sandbox_build) */
    int n = 5 + s->n_extra_fds + (marker_fd >= 0), floor = n;
#define SRC(i) ((i) < 5 ? fds[i] : (i) < 5 + s->n_extra_fds ? s->extra_fds[(i) - 5] : marker_fd)
    for (int i = 0; i < n; i++)
        if (SRC(i) >= floor)
            floor = SRC(i) + 1; /* above every source and every target */
    for (int i = 0; i < n; i++)
        if (SRC(i) >= 0 && dup3(SRC(i), floor + i, O_CLOEXEC) < 0)
            child_fail("dup3");
    for (int i = 0; i < n; i++)
        if (SRC(i) >= 0 && dup2(floor + i, i) < 0)
            child_fail("dup2");
#undef SRC
    if (join_errno != 0) {
        errno = join_errno;
        child_fail("cannot join the run's cgroup");
    }
    if (syscall(SYS_close_range, n, ~0U, 0) != 0)
        child_fail("close_range"); /* never run a command with the server's descriptors */
    struct rlimit core = {0, 0};
    setrlimit(RLIMIT_CORE, &core);
    if (setrlimit(RLIMIT_AS, &s->rl_as) != 0 || setrlimit(RLIMIT_CPU, &s->rl_cpu) != 0 ||
        setrlimit(RLIMIT_FSIZE, &s->rl_fsize) != 0 || setrlimit(RLIMIT_NPROC, &s->rl_nproc) != 0 ||
        (s->rl_nofile.rlim_max > 0 && setrlimit(RLIMIT_NOFILE, &s->rl_nofile) != 0))
        child_fail("setrlimit");
    /* raw syscalls: glibc's wrappers would broadcast the change to the parent's threads */
    if (s->gid != (gid_t)-1 && (syscall(SYS_setgroups, 0, NULL) != 0 || syscall(SYS_setresgid, s->gid, s->gid, s->gid) != 0))
        child_fail("setresgid");
    if (s->uid != (uid_t)-1 && syscall(SYS_setresuid, s->uid, s->uid, s->uid) != 0)
        child_fail("setresuid");
    if (s->cwd != NULL && chdir(s->cwd) != 0)
        child_fail("chdir to working_directory");
    /* after the credential change, which clears it */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    execve(s->argv[0], s->argv, s->envp);
    child_fail("execve");
}

/*
 * vfork: the loop pauses only until the child's execve, without copying our
 * page tables. Kept in its own frame so no caller variable lives across it.
 */
static __attribute__((noinline)) pid_t spawn_child(const proc_spec_t *spec, int *fds, int marker_fd)
{
    pid_t parent = getpid();
    pid_t pid = vfork();
    if (pid == 0)
        child_exec(spec, fds, marker_fd, parent);
    return pid;
}

/* ---------------------------------------------------------------- loop side */

static void close_sock(h2o_socket_t **s)
{
    if (*s != NULL) {
        h2o_socket_close(*s);
        *s = NULL;
    }
}

/*
 * How much of `buf` one turn takes: at most PROC_OUTPUT_TURN_BUDGET bytes and
 * PROC_OUTPUT_TURN_LINES lines (each line becomes an event: with `yes`, 64 KiB
 * are 32768 events, so bytes alone do not bound the work).
 */
static size_t turn_share(const char *buf, size_t size)
{
    size_t n = size < PROC_OUTPUT_TURN_BUDGET ? size : PROC_OUTPUT_TURN_BUDGET, lines = 0;
    const char *at = buf, *end = buf + n, *nl;
    while (at < end && (nl = memchr(at, '\n', (size_t)(end - at))) != NULL) {
        at = nl + 1;
        if (++lines == PROC_OUTPUT_TURN_LINES)
            return (size_t)(at - buf);
    }
    return n;
}

/*
 * Hands the owner one turn's share of a pipe's buffered output (the owner
 * splits lines and builds events: the costly part of a flood). Returns 1 when
 * bytes remain for a later turn.
 */
static int deliver_output(proc_t *p, int stream)
{
    h2o_socket_t *sock = p->out[stream];
    size_t n = turn_share(sock->input->bytes, sock->input->size);
    if (n > 0) {
        if (stream == 1 && p->setup_err.len < 255)
            strbuf_append(&p->setup_err, sock->input->bytes, n < 255 - p->setup_err.len ? n : 255 - p->setup_err.len);
        p->cb.on_output(p->arg, stream, sock->input->bytes, n);
        h2o_buffer_consume(&sock->input, n);
    }
    return sock->input->size > 0;
}

static void on_stdout(h2o_socket_t *sock, const char *err);
static void on_stderr(h2o_socket_t *sock, const char *err);

/*
 * Next loop turn after a pipe went over its budget: another budget's worth of
 * what was read, then reading resumes (or the EOF seen meanwhile is handled).
 * check_done runs last: it may end the run, and the owner may free `p`.
 */
static void on_output_resume(deadline_t *d)
{
    proc_t *p = (proc_t *)((char *)d - offsetof(proc_t, output_resume));
    int again = 0, eof_now = 0;
    for (int i = 0; i < 2; i++) {
        if (!p->output_paused[i] || p->out[i] == NULL)
            continue;
        if (deliver_output(p, i)) {
            again = 1;
            continue;
        }
        p->output_paused[i] = 0;
        if (p->output_eof_pending[i]) {
            close_sock(&p->out[i]);
            p->eof[i] = 1;
            eof_now = 1;
        } else {
            h2o_socket_read_start(p->out[i], i == 0 ? on_stdout : on_stderr);
        }
    }
    if (again)
        deadline_arm(&p->output_resume, 0, on_output_resume);
    if (eof_now)
        check_done(p);
}

/*
 * Output ingestion is bounded per run per loop turn: beyond the budget the
 * pipe is no longer read until the next turn, so a flooding run blocks on its
 * own full pipe while other sessions' requests are served in between.
 */
static void on_output(h2o_socket_t *sock, const char *err, int stream)
{
    proc_t *p = sock->data;
    if (deliver_output(p, stream)) {
        h2o_socket_read_stop(sock);
        p->output_paused[stream] = 1;
        p->output_eof_pending[stream] = err != NULL;
        deadline_arm(&p->output_resume, 0, on_output_resume);
        return;
    }
    if (err != NULL) {
        log_debug("run pid %d: %s EOF", (int)p->pid, stream ? "stderr" : "stdout");
        close_sock(&p->out[stream]);
        p->eof[stream] = 1;
        check_done(p);
    }
}

static void on_stdout(h2o_socket_t *sock, const char *err)
{
    on_output(sock, err, 0);
}

static void on_stderr(h2o_socket_t *sock, const char *err)
{
    on_output(sock, err, 1);
}

/*
 * Parses the complete lines of bwrap's --json-status-fd output held in
 * status_buf: {"child-pid": N, "pid-namespace": I, ...} then {"exit-code": N}.
 */
static void status_parse(proc_t *p)
{
    char *nl;
    while (p->status_buf.len > 0 && (nl = memchr(p->status_buf.data, '\n', p->status_buf.len)) != NULL) {
        *nl = '\0';
        cJSON *j = cJSON_Parse(p->status_buf.data);
        const cJSON *v;
        if ((v = cJSON_GetObjectItemCaseSensitive(j, "child-pid")) != NULL && cJSON_IsNumber(v) && p->inner_pid == 0) {
            p->inner_pid = (pid_t)v->valuedouble;
            p->inner_pidfd = (int)syscall(SYS_pidfd_open, p->inner_pid, 0);
            if (p->kill_deferred) /* a kill was waiting to know the sandbox's init */
                kill_now(p, 0);
        }
        if ((v = cJSON_GetObjectItemCaseSensitive(j, "pid-namespace")) != NULL && cJSON_IsNumber(v))
            p->pidns = (uint64_t)v->valuedouble;
        if ((v = cJSON_GetObjectItemCaseSensitive(j, "exit-code")) != NULL && cJSON_IsNumber(v))
            p->status_exit_code = (int)v->valuedouble;
        cJSON_Delete(j);
        size_t used = (size_t)(nl - p->status_buf.data) + 1;
        memmove(p->status_buf.data, nl + 1, p->status_buf.len - used);
        p->status_buf.len -= used;
    }
    if (p->status_buf.len > 65536)
        p->status_buf.len = 0; /* not bwrap talking: ignore */
}

/* Reads bwrap's status pipe as it arrives; its EOF is one of the things check_done waits for. */
static void on_status(h2o_socket_t *sock, const char *err)
{
    proc_t *p = sock->data;
    if (sock->input->size > 0) {
        strbuf_append(&p->status_buf, sock->input->bytes, sock->input->size);
        h2o_buffer_consume(&sock->input, sock->input->size);
        status_parse(p);
    }
    if (err != NULL) {
        close_sock(&p->status);
        check_done(p);
    }
}

/*
 * Reads what bwrap has written to the status pipe right now, so the sandbox's
 * init pid is known before a SIGCHLD for that init is matched (both can be
 * ready in the same loop turn). h2o still sees EOF on its next read.
 */
static void status_drain(proc_t *p)
{
    if (p->status == NULL || p->inner_pid != 0)
        return;
    char buf[1024];
    ssize_t n;
    while ((n = read(h2o_socket_get_fd(p->status), buf, sizeof(buf))) > 0)
        strbuf_append(&p->status_buf, buf, (size_t)n);
    status_parse(p);
}

/* The sandbox's first shell line writes one byte here: the command really started. */
static void on_marker(h2o_socket_t *sock, const char *err)
{
    proc_t *p = sock->data;
    if (sock->input->size > 0) {
        p->marker_seen = 1;
        h2o_buffer_consume(&sock->input, sock->input->size);
    }
    if (err != NULL) {
        close_sock(&p->marker);
        check_done(p);
    }
}

static void on_linger(deadline_t *d)
{
    proc_t *p = (proc_t *)((char *)d - offsetof(proc_t, linger_timer));
    /* the process is gone but something still holds the pipes: stop waiting (a pipe that
     * reached EOF while its output waits for its turns is not held: it finishes on its own) */
    int held[2] = {!p->eof[0] && !p->output_eof_pending[0], !p->eof[1] && !p->output_eof_pending[1]};
    if (held[0] || held[1]) {
        log_warn("run pid %d exited but its output pipes stayed open for %d ms; closing them", (int)p->pid, LINGER_MS);
        if (p->cgroup != NULL)
            cgroup_run_kill(p->cgroup); /* whatever holds them is in the run's cgroup */
        else if (p->sandboxed)
            kill_strays(p); /* only a sandbox that outlived its bwrap can hold them; rare, so the
                             * /proc walk stays off the normal path */
    }
    for (int i = 0; i < 2; i++)
        if (held[i]) {
            close_sock(&p->out[i]);
            p->output_paused[i] = 0;
            p->eof[i] = 1;
        }
    close_sock(&p->status);
    close_sock(&p->marker);
    p->lingered = 1; /* and stop waiting for the sandbox's init to be reaped */
    check_done(p);
}

/* Live procs by outer pid, for proc_reap_children(). */
static LIST_HEAD(, proc) live = LIST_HEAD_INITIALIZER(live);

static void on_pidfd(h2o_socket_t *sock, const char *err)
{
    proc_t *p = sock->data;
    if (p->exited)
        return;
    int st;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    /* wait4: the rusage covers bwrap and every process of the sandbox it reaped */
    pid_t r = wait4(p->pid, &st, WNOHANG, &ru);
    if (r == 0)
        return;
    p->exited = 1;
    log_debug("run pid %d exited", (int)p->pid);
    p->wstatus = r == p->pid ? st : 0;
    p->cpu_ms = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
    close_sock(&p->pidsock);
    /* without a PID namespace, background jobs would keep the pipes open: end the group */
    if (!p->sandboxed)
        kill(-p->pid, SIGKILL);
    deadline_arm(&p->linger_timer, LINGER_MS, on_linger);
    check_done(p);
}

static void check_done(proc_t *p)
{
    /* also bwrap's status pipe and the start marker (their last bytes may still be unread when
     * the output pipes hit EOF), and the sandbox's init, whose rusage holds the run's CPU time */
    if (p->done || !p->exited || !p->eof[0] || !p->eof[1] || p->status != NULL || p->marker != NULL)
        return;
    /* exit code 152 may be SIGXCPU: then the run's CPU time decides, and it is in the rusage of
     * the sandbox's init, reaped a little after bwrap (not waited for otherwise: the namespace
     * teardown takes tens of milliseconds) */
    if (p->status_exit_code == 128 + SIGXCPU && p->inner_pid != 0 && !p->inner_reaped && !p->lingered)
        return;
    p->done = 1;
    LIST_REMOVE(p, live_link);
    deadline_cancel(&p->kill_timer);
    deadline_cancel(&p->linger_timer);
    deadline_cancel(&p->output_resume);
    proc_exit_t x;
    memset(&x, 0, sizeof(x));
    if (p->status_exit_code >= 0)
        x.exit_code = p->status_exit_code;
    else if (WIFEXITED(p->wstatus))
        x.exit_code = WEXITSTATUS(p->wstatus);
    else if (WIFSIGNALED(p->wstatus))
        x.exit_code = 128 + WTERMSIG(p->wstatus);
    if (x.exit_code > 128 && x.exit_code < 128 + 65)
        x.signal = x.exit_code - 128;
    x.started = !p->sandboxed || p->marker_seen;
    x.cpu_ms = p->cpu_ms;
    if (!x.started) {
        size_t n = p->setup_err.len < sizeof(x.setup_error) - 1 ? p->setup_err.len : sizeof(x.setup_error) - 1;
        if (n > 0)
            memcpy(x.setup_error, p->setup_err.data, n);
        char *nl = memchr(x.setup_error, '\n', n);
        if (nl != NULL)
            *nl = '\0';
    }
    p->cb.on_exit(p->arg, &x);
}

/* The loop thread's evloop, set once at startup by the composition root. */
void proc_init(h2o_evloop_t *loop)
{
    proc_loop = loop;
}

/* The parent's ends of a run's pipes, and what the child gets (closed here once it runs). */
struct spawn_fds {
    int out[2], errp[2], in[2], st[2], mk[2], devnull;
};

/* Closes every descriptor still open in `f`. */
static void spawn_fds_close(struct spawn_fds *f)
{
    int *all[] = {f->out, f->errp, f->in, f->st, f->mk};
    for (size_t k = 0; k < sizeof(all) / sizeof(all[0]); k++)
        for (int i = 0; i < 2; i++)
            if (all[k][i] >= 0) {
                close(all[k][i]);
                all[k][i] = -1;
            }
    if (f->devnull >= 0)
        close(f->devnull);
    f->devnull = -1;
}

/* stdout, stderr; stdin when interactive (else /dev/null); the status and marker pipes when sandboxed. 0 / -1. */
static int spawn_fds_open(struct spawn_fds *f, const proc_spec_t *spec)
{
    *f = (struct spawn_fds){{-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}, {-1, -1}, -1};
    if (pipe2(f->out, O_CLOEXEC) != 0 || pipe2(f->errp, O_CLOEXEC) != 0 ||
        (spec->interactive && pipe2(f->in, O_CLOEXEC) != 0) ||
        (spec->sandboxed && (pipe2(f->st, O_CLOEXEC) != 0 || pipe2(f->mk, O_CLOEXEC) != 0)) ||
        (!spec->interactive && (f->devnull = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0))
        return -1;
    return 0;
}

/* A socket on the loop for `fd`, reading into `cb` (NULL: not read; stdin). */
static h2o_socket_t *watch_fd(proc_t *p, int fd, h2o_socket_cb cb)
{
    h2o_socket_t *sock = h2o_evloop_socket_create(proc_loop, fd, cb != NULL ? 0 : H2O_SOCKET_FLAG_DONT_READ);
    sock->data = p;
    if (cb != NULL)
        h2o_socket_read_start(sock, cb);
    return sock;
}

/* The child runs: its ends are closed here, the parent's are watched on the loop. */
static void watch_child_pipes(proc_t *p, struct spawn_fds *f)
{
    int keep[4] = {f->out[0], f->errp[0], f->in[1], f->st[0]}, mk = f->mk[0];
    f->out[0] = f->errp[0] = f->in[1] = f->st[0] = f->mk[0] = -1;
    spawn_fds_close(f); /* the child's ends */
    p->out[0] = watch_fd(p, keep[0], on_stdout);
    p->out[1] = watch_fd(p, keep[1], on_stderr);
    if (keep[2] >= 0)
        p->in = watch_fd(p, keep[2], NULL);
    if (keep[3] >= 0)
        p->status = watch_fd(p, keep[3], on_status);
    if (mk >= 0)
        p->marker = watch_fd(p, mk, on_marker);
}

/* pidfd_open failed (out of fds): give the run up rather than lose track of it. */
static void abandon_spawned(proc_t *p, pid_t pid)
{
    kill(-pid, SIGKILL); /* bwrap's sandbox child is still in its process group */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    for (int i = 0; i < 2; i++)
        close_sock(&p->out[i]);
    close_sock(&p->in);
    close_sock(&p->status);
    close_sock(&p->marker);
}

int proc_spawn(proc_t *p, const proc_spec_t *spec, const proc_callbacks_t *cb, void *arg, char *err, size_t errlen)
{
    memset(p, 0, sizeof(*p));
    p->inner_pidfd = -1;
    p->status_exit_code = -1;
    p->cb = *cb;
    p->arg = arg;
    p->sandboxed = spec->sandboxed;
    p->cgroup = spec->cgroup != NULL && spec->cgroup->active ? spec->cgroup : NULL;
    struct spawn_fds f;
    if (spawn_fds_open(&f, spec) != 0) {
        snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
        spawn_fds_close(&f);
        return -1;
    }
    int fds[5] = {spec->interactive ? f.in[0] : f.devnull, f.out[1], f.errp[1], spec->seccomp_fd,
                  spec->sandboxed ? f.st[1] : -1};
    pid_t pid = spawn_child(spec, fds, f.mk[1]);
    if (pid < 0) {
        snprintf(err, errlen, "vfork failed: %s", strerror(errno));
        spawn_fds_close(&f);
        return -1;
    }
    p->pid = pid;
    watch_child_pipes(p, &f);
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
        snprintf(err, errlen, "pidfd_open failed: %s", strerror(errno));
        abandon_spawned(p, pid);
        return -1;
    }
    LIST_INSERT_HEAD(&live, p, live_link);
    p->pidsock = h2o_evloop_socket_create(proc_loop, pidfd, H2O_SOCKET_FLAG_DONT_READ);
    p->pidsock->data = p;
    h2o_socket_read_start(p->pidsock, on_pidfd);
    return 0;
}

/* ---------------------------------------------------------------- stdin */

static void stdin_pump(proc_t *p);

static void on_stdin_written(h2o_socket_t *sock, const char *err)
{
    proc_t *p = sock->data;
    free(p->stdin_writing);
    p->stdin_writing = NULL;
    p->stdin_inflight = 0;
    if (err != NULL) {
        /* the run closed its stdin: later writes fail with a clear error */
        p->stdin_queue.len = 0;
        close_sock(&p->in);
        return;
    }
    stdin_pump(p);
}

static void stdin_pump(proc_t *p)
{
    if (p->in == NULL || p->stdin_writing != NULL)
        return;
    if (p->stdin_queue.len == 0) {
        if (p->stdin_close_after)
            close_sock(&p->in);
        return;
    }
    size_t len;
    p->stdin_writing = strbuf_steal(&p->stdin_queue, &len);
    p->stdin_inflight = len;
    h2o_iovec_t buf = h2o_iovec_init(p->stdin_writing, len);
    h2o_socket_write(p->in, &buf, 1, on_stdin_written);
}

int proc_write_stdin(proc_t *p, const char *data, size_t len, char *err, size_t errlen)
{
    if (p->in == NULL || p->stdin_close_after) {
        snprintf(err, errlen, "stdin of this execution is closed (the process closed it or exited)");
        return -1;
    }
    if (p->stdin_queue.len + p->stdin_inflight + len > STDIN_QUEUE_MAX) {
        snprintf(err, errlen, "stdin buffer full: the process is not reading (%d bytes queued at most)", STDIN_QUEUE_MAX);
        return -1;
    }
    strbuf_append(&p->stdin_queue, data, len);
    stdin_pump(p);
    return 0;
}

void proc_close_stdin(proc_t *p)
{
    p->stdin_close_after = 1;
    stdin_pump(p);
}

size_t proc_stdin_queued(const proc_t *p)
{
    return p->stdin_queue.len + p->stdin_inflight;
}

/* ---------------------------------------------------------------- kill */

/* SIGTERM to every process in the sandbox's PID namespace (its init ignores it). */
static void term_namespace(proc_t *p)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    struct dirent *de;
    char path[64];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        struct stat st;
        snprintf(path, sizeof(path), "/proc/%d/ns/pid", (int)pid);
        if (stat(path, &st) != 0 || (uint64_t)st.st_ino != p->pidns)
            continue;
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        if (fd < 0)
            continue;
        /* re-check after pinning: if the pid was reused before pidfd_open, the new holder must be in the namespace too */
        if (stat(path, &st) == 0 && (uint64_t)st.st_ino == p->pidns)
            syscall(SYS_pidfd_send_signal, fd, SIGTERM, NULL, 0);
        close(fd);
    }
    closedir(d);
}

static void on_kill_timer(deadline_t *d);

/*
 * SIGKILL to the sandbox's init (which ends its whole PID namespace), then to
 * bwrap. While bwrap is still setting up, the init's pid may not be known yet;
 * killing bwrap then could orphan an init that has not yet asked to die with
 * its parent (bwrap's PR_SET_PDEATHSIG comes after clone), so with may_defer
 * the kill waits up to KILL_DEFER_MS for bwrap to report the pid.
 */
static void kill_now(proc_t *p, int may_defer)
{
    if (p->cgroup != NULL) {
        /* bwrap, its init and every process under them, at once: no pid to wait for */
        p->kill_deferred = 0;
        cgroup_run_kill(p->cgroup);
        return;
    }
    status_drain(p); /* the init's pid may already be in the status pipe */
    if (p->sandboxed && p->inner_pidfd < 0 && !p->exited && may_defer) {
        if (!p->kill_deferred) {
            p->kill_deferred = 1;
            deadline_arm(&p->kill_timer, KILL_DEFER_MS, on_kill_timer);
        }
        return;
    }
    p->kill_deferred = 0;
    if (p->inner_pidfd >= 0)
        syscall(SYS_pidfd_send_signal, p->inner_pidfd, SIGKILL, NULL, 0);
    if (!p->exited) {
        kill(p->pid, SIGKILL);
        kill(-p->pid, SIGKILL);
    }
}

static void on_kill_timer(deadline_t *d)
{
    proc_t *p = (proc_t *)((char *)d - offsetof(proc_t, kill_timer));
    kill_now(p, 0); /* the grace (or the wait for the init's pid) is over */
}

/* The parent pid in /proc/PID/stat ("pid (comm) state ppid ..."; comm may hold spaces and parentheses). */
static pid_t parent_of(pid_t pid)
{
    char path[64], buf[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    char *close_paren = strrchr(buf, ')');
    int ppid;
    if (close_paren == NULL || sscanf(close_paren + 1, " %*c %d", &ppid) != 1)
        return -1;
    return (pid_t)ppid;
}

/*
 * SIGKILL to every child of the server that is no live run's bwrap nor another
 * run's sandbox init: a sandbox init orphaned by its bwrap (adopted by us as
 * subreaper) before anyone learnt its pid. It is PID 1 of its namespace, so
 * the whole sandbox goes with it. `p`'s own init is killed too.
 */
static void kill_strays(const proc_t *p)
{
    DIR *d = opendir("/proc");
    if (d == NULL)
        return;
    pid_t self = getpid();
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] < '1' || de->d_name[0] > '9')
            continue;
        pid_t pid = (pid_t)atoi(de->d_name);
        if (parent_of(pid) != self)
            continue;
        int known = 0;
        const proc_t *q;
        LIST_FOREACH(q, &live, live_link)
        if ((q->pid == pid && !q->exited) || (q != p && q->inner_pid == pid))
            known = 1;
        if (known)
            continue;
        int fd = (int)syscall(SYS_pidfd_open, pid, 0);
        /* re-check once pinned: the pid may have been reused in between */
        if (fd >= 0 && parent_of(pid) == self) {
            syscall(SYS_pidfd_send_signal, fd, SIGKILL, NULL, 0);
            log_warn("killed pid %d: a sandbox that outlived its bwrap (run pid %d)", (int)pid, (int)p->pid);
        }
        if (fd >= 0)
            close(fd);
    }
    closedir(d);
}

void proc_terminate(proc_t *p, int force, int grace_ms)
{
    if (p->done)
        return;
    if (force || grace_ms <= 0) {
        kill_now(p, 1);
        return;
    }
    if (p->killing)
        return;
    p->killing = 1;
    if (p->cgroup != NULL)
        /* every process of the run but bwrap itself (its death would SIGKILL the sandbox at once) */
        cgroup_run_signal(p->cgroup, SIGTERM, p->sandboxed ? p->pid : 0);
    else if (p->pidns != 0)
        term_namespace(p); /* fallback without cgroups: walks /proc */
    else if (!p->sandboxed)
        kill(-p->pid, SIGTERM); /* no sandbox: the process group */
    else {
        kill_now(p, 1); /* bwrap is still setting up: nothing to be graceful with */
        return;
    }
    deadline_arm(&p->kill_timer, (uint64_t)grace_ms, on_kill_timer);
}

void proc_release(proc_t *p)
{
    if (!p->done) {
        if (!p->exited)
            kill_now(p, 0); /* released now: no waiting for the init's pid */
        LIST_REMOVE(p, live_link);
        p->exited = p->done = 1;
    }
    deadline_cancel(&p->kill_timer);
    deadline_cancel(&p->linger_timer);
    deadline_cancel(&p->output_resume);
    close_sock(&p->out[0]);
    close_sock(&p->out[1]);
    close_sock(&p->in);
    close_sock(&p->status);
    close_sock(&p->marker);
    close_sock(&p->pidsock);
    if (p->inner_pidfd >= 0)
        close(p->inner_pidfd);
    p->inner_pidfd = -1;
    free(p->stdin_writing);
    p->stdin_writing = NULL;
    strbuf_free(&p->stdin_queue);
    strbuf_free(&p->status_buf);
    strbuf_free(&p->setup_err);
}

/*
 * The server is a child subreaper (main.c): bwrap's outer process exits
 * before the sandbox's init, which is then re-parented to us instead of the
 * host's PID 1 (which may reap late, or never when we are PID 1 in a
 * container). On SIGCHLD, every zombie child is collected: our own runs go
 * through their normal exit path, anything else is just reaped.
 */
void proc_reap_children(void)
{
    for (;;) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        if (waitid(P_ALL, 0, &si, WEXITED | WNOHANG | WNOWAIT) != 0 || si.si_pid == 0)
            return;
        proc_t *p;
        LIST_FOREACH(p, &live, live_link)
        {
            status_drain(p);
            if ((p->pid == si.si_pid && !p->exited) || (p->inner_pid == si.si_pid && !p->inner_reaped))
                break;
        }
        if (p != NULL && p->pid == si.si_pid) {
            on_pidfd(p->pidsock, NULL);
        } else if (p != NULL) {
            /* the sandbox's init, orphaned by bwrap: its rusage covers every process it reaped */
            struct rusage ru;
            memset(&ru, 0, sizeof(ru));
            wait4(si.si_pid, NULL, WNOHANG, &ru);
            p->cpu_ms += (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000 +
                         (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000;
            p->inner_reaped = 1;
            log_debug("run pid %d: sandbox init %d reaped", (int)p->pid, (int)si.si_pid);
            check_done(p);
        } else {
            waitpid(si.si_pid, NULL, WNOHANG);
        }
    }
}
