/*
 * cgroup: detection of the server's own cgroup (v2 delegated subtree or v1
 * hierarchies), one child cgroup per run with its limits, the atomic kill,
 * usage at the end, removal (retried from a timer while the cgroup is still
 * busy) and the startup sweep of what an earlier instance left.
 *
 * Every path is built from `root` and the memberships read at startup, so the
 * unit tests drive the same code against a fake tree in a temp directory.
 */
#include "exec/cgroup.h"
#include "core/deadline.h"
#include "core/log.h"
#include "core/metrics.h"
#include "core/util.h"

#include <bsd/string.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { HIER_MEMORY, HIER_PIDS, HIER_CPU, HIER_CPUACCT, HIER_FREEZER, HIER_N };
static const char *const hier_ctrl[HIER_N] = {"memory", "pids", "cpu", "cpuacct", "freezer"};

#define REMOVE_RETRY_MS 100
#define REMOVE_TRIES 600 /* a minute; after that the next start's sweep removes it */

static struct {
    cgroup_mode_t mode;
    char why[256];                       /* why CGROUP_NONE */
    char prefix[160];                    /* "mcp-<instance>-run-" */
    char dirs[CGROUP_MAX_DIRS][1024];    /* the server's own cgroup in each distinct hierarchy */
    int n_dirs;
    int idx[HIER_N];                     /* hierarchy -> dirs[] index (v2: all 0) */
} cg = {.mode = CGROUP_NONE};

/* A cgroup whose rmdir failed because it still held processes. */
struct pending {
    struct pending *next;
    char name[192];
    unsigned left; /* bitmask of dirs[] where it still exists */
    int tries;
};
/* mkdir / rmdir of cgroups: the unit tests swap in versions that also create
 * and delete the files the kernel would, in a fake tree */
static int (*cg_mkdir)(const char *path, mode_t mode) = mkdir;
static int (*cg_rmdir)(const char *path) = rmdir;

static struct pending *pending_head;
static size_t n_pending;
static deadline_t pending_timer;
static h2o_evloop_t *cg_loop; /* the loop thread's; NULL in tests without a loop */

/* ---------------------------------------------------------------- small file helpers */

/* Writes `val` to dir/file (no O_CREAT: a cgroup file exists or the write is refused). 0 / -1 with errno. */
static int write_file(const char *dir, const char *file, const char *val)
{
    char path[1400];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, val, strlen(val));
    int e = errno;
    close(fd);
    errno = e;
    return n == (ssize_t)strlen(val) ? 0 : -1;
}

/* Reads `path` into buf (NUL-terminated). Bytes read, or -1. */
static ssize_t read_path(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, len - 1);
    close(fd);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* Reads dir/file into buf (NUL-terminated). Bytes read, or -1. */
static ssize_t read_file(const char *dir, const char *file, char *buf, size_t len)
{
    char path[1400];
    snprintf(path, sizeof(path), "%s/%s", dir, file);
    return read_path(path, buf, len);
}

/* The number after `key ` in a "key value" per line file (memory.events, cpu.stat, oom_control). */
static int read_keyed(const char *dir, const char *file, const char *key, uint64_t *out)
{
    char buf[4096];
    if (read_file(dir, file, buf, sizeof(buf)) < 0)
        return -1;
    size_t kl = strlen(key);
    for (char *line = buf; line != NULL && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL)
        if (!strncmp(line, key, kl) && line[kl] == ' ') {
            *out = strtoull(line + kl + 1, NULL, 10);
            return 0;
        }
    return -1;
}

static int read_u64(const char *dir, const char *file, uint64_t *out)
{
    char buf[64];
    if (read_file(dir, file, buf, sizeof(buf)) <= 0)
        return -1;
    *out = strtoull(buf, NULL, 10);
    return 0;
}

/* dirs[i]/name */
static void run_dir(int i, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s", cg.dirs[i], name);
}

/* ---------------------------------------------------------------- detection */

/* Is controller `c` in the comma- or space-separated list `list`? */
static int has_word(const char *list, const char *c, char sep)
{
    size_t n = strlen(c);
    for (const char *p = list; p != NULL && *p; p = strchr(p, sep) ? strchr(p, sep) + 1 : NULL)
        if (!strncmp(p, c, n) && (p[n] == sep || p[n] == '\0' || p[n] == '\n'))
            return 1;
    return 0;
}

/*
 * v1: for each controller, the line "id:ctrl,...:/path" of self_cgroup gives
 * the hierarchy and our cgroup in it; co-mounted controllers share one dir.
 */
static int detect_v1(const char *root, const char *self, char *why, size_t whylen)
{
    int hid[CGROUP_MAX_DIRS];
    cg.n_dirs = 0;
    for (int h = 0; h < HIER_N; h++) {
        char line[1024];
        int found = 0;
        const char *p = self;
        while (p != NULL && *p && !found) {
            const char *nl = strchr(p, '\n');
            size_t n = nl != NULL ? (size_t)(nl - p) : strlen(p);
            if (n >= sizeof(line))
                n = sizeof(line) - 1;
            memcpy(line, p, n);
            line[n] = '\0';
            p = nl != NULL ? nl + 1 : NULL;
            char *c1 = strchr(line, ':'), *c2 = c1 != NULL ? strchr(c1 + 1, ':') : NULL;
            if (c2 == NULL)
                continue;
            *c1 = *c2 = '\0';
            if (!has_word(c1 + 1, hier_ctrl[h], ','))
                continue;
            found = 1;
            int id = atoi(line), i;
            for (i = 0; i < cg.n_dirs && hid[i] != id; i++)
                ;
            if (i == cg.n_dirs) {
                hid[i] = id;
                snprintf(cg.dirs[i], sizeof(cg.dirs[i]), "%s/%s%s", root, hier_ctrl[h], strcmp(c2 + 1, "/") ? c2 + 1 : "");
                cg.n_dirs++;
            }
            cg.idx[h] = i;
        }
        if (!found) {
            snprintf(why, whylen, "no cgroup v1 %s hierarchy in /proc/self/cgroup", hier_ctrl[h]);
            return -1;
        }
    }
    for (int i = 0; i < cg.n_dirs; i++)
        if (access(cg.dirs[i], W_OK) != 0) {
            snprintf(why, whylen, "cannot write %s: %s", cg.dirs[i], strerror(errno));
            return -1;
        }
    return 0;
}

/*
 * v2: our cgroup (the `0::/path` line) must offer memory, pids and cpu and be
 * writable (delegated). We move into <own>/server, since a cgroup whose
 * children have controllers may hold no process, then enable them.
 */
static int detect_v2(const char *root, const char *self, char *why, size_t whylen)
{
    const char *p = strstr(self, "0::");
    if (p == NULL || (p != self && p[-1] != '\n')) {
        snprintf(why, whylen, "no cgroup v2 membership in /proc/self/cgroup");
        return -1;
    }
    p += 3;
    size_t n = strcspn(p, "\n");
    char own[1024];
    snprintf(own, sizeof(own), "%s%.*s", root, (int)(n == 1 && *p == '/' ? 0 : n), p);
    char ctl[512];
    if (read_file(own, "cgroup.controllers", ctl, sizeof(ctl)) < 0 || !has_word(ctl, "memory", ' ') ||
        !has_word(ctl, "pids", ' ') || !has_word(ctl, "cpu", ' ')) {
        snprintf(why, whylen, "%s does not offer the memory, pids and cpu controllers (not delegated?)", own);
        return -1;
    }
    if (access(own, W_OK) != 0) {
        snprintf(why, whylen, "cannot write %s (not delegated): %s", own, strerror(errno));
        return -1;
    }
    char leaf[1100], pid[32];
    snprintf(leaf, sizeof(leaf), "%s/server", own);
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    if ((cg_mkdir(leaf, 0755) != 0 && errno != EEXIST) || write_file(leaf, "cgroup.procs", pid) != 0) {
        snprintf(why, whylen, "cannot move the server into %s: %s", leaf, strerror(errno));
        return -1;
    }
    if (write_file(own, "cgroup.subtree_control", "+memory +pids +cpu") != 0) {
        snprintf(why, whylen, "cannot enable controllers in %s/cgroup.subtree_control: %s", own, strerror(errno));
        return -1;
    }
    cg.n_dirs = 1;
    strlcpy(cg.dirs[0], own, sizeof(cg.dirs[0]));
    memset(cg.idx, 0, sizeof(cg.idx));
    return 0;
}

cgroup_mode_t cgroup_setup(const char *root, const char *self_cgroup, const char *instance, int disabled, char *why,
                           size_t whylen)
{
    cg.mode = CGROUP_NONE;
    snprintf(cg.prefix, sizeof(cg.prefix), "mcp-%.128s-run-", instance);
    char self[8192], ctl[1100];
    if (disabled) {
        snprintf(why, whylen, "disabled by --cgroups off");
    } else if (read_path(self_cgroup, self, sizeof(self)) < 0) {
        snprintf(why, whylen, "cannot read %s: %s", self_cgroup, strerror(errno));
    } else {
        snprintf(ctl, sizeof(ctl), "%s/cgroup.controllers", root);
        if (access(ctl, F_OK) == 0) {
            if (detect_v2(root, self, why, whylen) == 0)
                cg.mode = CGROUP_V2;
        } else if (detect_v1(root, self, why, whylen) == 0) {
            cg.mode = CGROUP_V1;
        }
    }
    strlcpy(cg.why, cg.mode == CGROUP_NONE ? why : "", sizeof(cg.why));
    return cg.mode;
}

cgroup_mode_t cgroup_mode(void)
{
    return cg.mode;
}

const char *cgroup_mode_name(void)
{
    return cg.mode == CGROUP_V2 ? "v2" : cg.mode == CGROUP_V1 ? "v1" : "none (rlimits)";
}

/* /metrics: how per-run limits are enforced (registered by main.c as a provider). */
void cgroup_metrics(strbuf_t *out)
{
    metrics_family(out, "cgroups_info", "gauge",
                   "How per-run limits are enforced: cgroup v1, v2, or none (rlimits) (always 1).");
    strbuf_printf(out, "mcp_sandboxd_cgroups_info{mode=\"%s\"} 1\n", cgroup_mode_name());
}

void cgroup_health(cJSON *h)
{
    cJSON_AddStringToObject(h, "cgroups", cgroup_mode_name());
    if (cg.mode == CGROUP_NONE && cg.why[0])
        cJSON_AddStringToObject(h, "cgroups_fallback_reason", cg.why);
}

int cgroup_check_pid_max(long max_concurrent, long max_processes, const char *pid_max_path, char *err, size_t errlen)
{
    char buf[64];
    if (read_path(pid_max_path, buf, sizeof(buf)) <= 0)
        return 0; /* unknown: nothing to compare against */
    long long pid_max = strtoll(buf, NULL, 10);
    if (pid_max > 0 && (long long)max_concurrent * max_processes > pid_max) {
        snprintf(err, errlen,
                 "--max-concurrent (%ld) x --max-processes (%ld) = %lld can exceed kernel.pid_max (%lld): "
                 "lower one of them",
                 max_concurrent, max_processes, (long long)max_concurrent * max_processes, pid_max);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- pids, kill, removal */

/* Calls kill(pid, sig) for every pid in dir/cgroup.procs but `except`. Returns how many. */
static int signal_procs_except(const char *dir, int sig, pid_t except)
{
    char path[1400];
    snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
    FILE *f = fopen(path, "re");
    if (f == NULL)
        return 0;
    int n = 0, pid;
    while (fscanf(f, "%d", &pid) == 1)
        if (pid > 0 && pid != except && kill(pid, sig) == 0)
            n++;
    fclose(f);
    return n;
}

static int signal_procs(const char *dir, int sig)
{
    return signal_procs_except(dir, sig, 0);
}

/*
 * SIGKILL to every process of cgroup `name`. v2: cgroup.kill. v1: freeze so
 * nothing forks or reaps (pids stay valid), kill each, thaw (they die).
 */
static void kill_name(const char *name)
{
    char d[1400];
    if (cg.mode == CGROUP_V2) {
        run_dir(0, name, d, sizeof(d));
        if (write_file(d, "cgroup.kill", "1") != 0)
            signal_procs(d, SIGKILL); /* kernels before 5.14 */
        return;
    }
    char fz[1400];
    run_dir(cg.idx[HIER_FREEZER], name, fz, sizeof(fz));
    run_dir(cg.idx[HIER_PIDS], name, d, sizeof(d));
    int frozen = write_file(fz, "freezer.state", "FROZEN") == 0;
    for (int pass = 0; pass < 3 && signal_procs(d, SIGKILL) > 0; pass++)
        ; /* a process that forked while freezing shows up on the next pass */
    /* a leftover may lack its pids cgroup (an earlier instance died while making it): then
     * every hierarchy it has lists its processes */
    for (int i = 0; i < cg.n_dirs && access(d, F_OK) != 0; i++) {
        char o[1400];
        run_dir(i, name, o, sizeof(o));
        signal_procs(o, SIGKILL);
    }
    if (frozen)
        write_file(fz, "freezer.state", "THAWED");
}

/* rmdir of `name` in each dir of mask `left`; returns what is still there. */
static unsigned rmdir_name(const char *name, unsigned left)
{
    char d[1400];
    for (int i = 0; i < cg.n_dirs; i++) {
        if (!(left & (1u << i)))
            continue;
        run_dir(i, name, d, sizeof(d));
        if (cg_rmdir(d) == 0 || errno == ENOENT)
            left &= ~(1u << i);
    }
    return left;
}

static void on_pending_timer(deadline_t *d);

/*
 * Kills `name` and removes it, or queues it for another try. With `later`,
 * the first rmdir waits for the timer too (on the next loop turn at the
 * soonest): a run's end then costs its reply no rmdir.
 */
static void kill_and_remove(const char *name, int later)
{
    kill_name(name);
    unsigned left = (1u << cg.n_dirs) - 1;
    if (!later && (left = rmdir_name(name, left)) == 0)
        return;
    struct pending *p = xcalloc(1, sizeof(*p));
    strlcpy(p->name, name, sizeof(p->name));
    p->left = left;
    p->next = pending_head;
    pending_head = p;
    n_pending++;
    if (!pending_timer.armed && cg_loop != NULL)
        deadline_arm(&pending_timer, later ? 1 : REMOVE_RETRY_MS, on_pending_timer);
}

/* Retries the removal of busy cgroups: their last processes were still exiting. */
static void on_pending_timer(deadline_t *d)
{
    struct pending **pp = &pending_head;
    while (*pp != NULL) {
        struct pending *p = *pp;
        kill_name(p->name);
        p->left = rmdir_name(p->name, p->left);
        if (p->left != 0 && ++p->tries < REMOVE_TRIES) {
            pp = &p->next;
            continue;
        }
        if (p->left != 0)
            log_warn("cgroup %s still busy after %d s: left for the next start to remove", p->name,
                     REMOVE_TRIES * REMOVE_RETRY_MS / 1000);
        *pp = p->next;
        free(p);
        n_pending--;
    }
    if (pending_head != NULL)
        deadline_arm(d, REMOVE_RETRY_MS, on_pending_timer);
}

size_t cgroup_pending_removals(void)
{
    return n_pending;
}

size_t cgroup_drain(int wait_ms, void (*reap)(void))
{
    for (int waited = 0; pending_head != NULL; waited += 10) {
        if (reap != NULL)
            reap();
        deadline_cancel(&pending_timer);
        on_pending_timer(&pending_timer);
        if (pending_head == NULL || waited >= wait_ms)
            break;
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
    }
    deadline_cancel(&pending_timer);
    return n_pending;
}

static int is_pending(const char *name)
{
    for (const struct pending *p = pending_head; p != NULL; p = p->next)
        if (!strcmp(p->name, name))
            return 1;
    return 0;
}

int cgroup_sweep_leftovers(void)
{
    if (cg.mode == CGROUP_NONE)
        return 0;
    int found = 0;
    size_t pl = strlen(cg.prefix);
    for (int i = 0; i < cg.n_dirs; i++) {
        DIR *dir = opendir(cg.dirs[i]);
        if (dir == NULL)
            continue;
        struct dirent *de;
        while ((de = readdir(dir)) != NULL) {
            if (strncmp(de->d_name, cg.prefix, pl) != 0 || strlen(de->d_name) >= sizeof(((struct pending *)0)->name) ||
                is_pending(de->d_name))
                continue; /* not ours, or found in an earlier hierarchy and still being removed */
            found++;
            log_warn("removing run cgroup %s/%s left by an earlier instance (its processes are killed)", cg.dirs[i],
                     de->d_name);
            kill_and_remove(de->d_name, 0);
        }
        closedir(dir);
    }
    return found;
}

/* ---------------------------------------------------------------- a run */

/* v1 OOM notification: the OOM killer ended a process of the run; end the rest. */
static void on_oom_event(h2o_socket_t *sock, const char *err)
{
    cgroup_run_t *r = sock->data;
    if (sock->input->size > 0) {
        h2o_buffer_consume(&sock->input, sock->input->size);
        log_info("run cgroup %s: out of memory, ending the whole run", r->name);
        r->oom_seen = 1;
        kill_name(r->name);
    }
    if (err != NULL) {
        h2o_socket_close(sock);
        r->oom_sock = NULL;
    }
}

/* The loop thread's evloop, set at startup by the composition root. */
void cgroup_set_loop(h2o_evloop_t *loop)
{
    cg_loop = loop;
}

/* v1: an eventfd the kernel signals on every OOM in the run (cgroup.event_control). */
static void watch_oom_v1(cgroup_run_t *r, const char *memdir)
{
    if (cg_loop == NULL)
        return;
    char path[1400], reg[64];
    snprintf(path, sizeof(path), "%s/memory.oom_control", memdir);
    int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), ofd = open(path, O_RDONLY | O_CLOEXEC);
    snprintf(reg, sizeof(reg), "%d %d", efd, ofd);
    if (efd >= 0 && ofd >= 0 && write_file(memdir, "cgroup.event_control", reg) == 0) {
        r->oom_sock = h2o_evloop_socket_create(cg_loop, efd, 0);
        r->oom_sock->data = r;
        h2o_socket_read_start(r->oom_sock, on_oom_event);
        efd = -1;
    }
    if (efd >= 0)
        close(efd);
    if (ofd >= 0)
        close(ofd);
}

/* Writes the limits into the freshly made cgroup(s). 0, or -1 with err. */
static int write_limits(cgroup_run_t *r, const cgroup_limits_t *lim, char *err, size_t errlen)
{
    char d[1400], v[64];
    const char *what = NULL;
    int v2 = cg.mode == CGROUP_V2;
    if (lim->memory_bytes > 0) {
        run_dir(cg.idx[HIER_MEMORY], r->name, d, sizeof(d));
        snprintf(v, sizeof(v), "%" PRIu64, lim->memory_bytes);
        if (write_file(d, v2 ? "memory.max" : "memory.limit_in_bytes", v) != 0)
            what = v2 ? "memory.max" : "memory.limit_in_bytes";
        /* no swap beyond the limit where swap is accounted (absent file: no swap accounting) */
        else if (v2 ? write_file(d, "memory.swap.max", "0") != 0 && errno != ENOENT
                    : write_file(d, "memory.memsw.limit_in_bytes", v) != 0 && errno != ENOENT)
            what = v2 ? "memory.swap.max" : "memory.memsw.limit_in_bytes";
        else if (v2 && write_file(d, "memory.oom.group", "1") != 0 && errno != ENOENT)
            what = "memory.oom.group"; /* an OOM kill ends the whole run */
    }
    if (what == NULL && lim->pids > 0) {
        run_dir(cg.idx[HIER_PIDS], r->name, d, sizeof(d));
        snprintf(v, sizeof(v), "%ld", lim->pids);
        if (write_file(d, "pids.max", v) != 0)
            what = "pids.max";
    }
    if (what == NULL && lim->cpu_percent > 0) {
        run_dir(cg.idx[HIER_CPU], r->name, d, sizeof(d));
        snprintf(v, sizeof(v), v2 ? "%d 100000" : "%d", lim->cpu_percent * 1000);
        if (v2 ? write_file(d, "cpu.max", v) != 0
               : write_file(d, "cpu.cfs_period_us", "100000") != 0 || write_file(d, "cpu.cfs_quota_us", v) != 0)
            what = v2 ? "cpu.max" : "cpu.cfs_quota_us";
    }
    if (what != NULL) {
        snprintf(err, errlen, "cannot set %s of the run's cgroup: %s", what, strerror(errno));
        return -1;
    }
    return 0;
}

int cgroup_run_create(cgroup_run_t *r, const char *exec_id, const cgroup_limits_t *lim, char *err, size_t errlen)
{
    memset(r, 0, sizeof(*r));
    for (int i = 0; i < CGROUP_MAX_DIRS; i++)
        r->procs_fd[i] = -1;
    if (cg.mode == CGROUP_NONE)
        return 0;
    snprintf(r->name, sizeof(r->name), "%s%.40s", cg.prefix, exec_id);
    char d[1400];
    unsigned made = 0;
    for (int i = 0; i < cg.n_dirs; i++) {
        run_dir(i, r->name, d, sizeof(d));
        if (cg_mkdir(d, 0755) != 0) {
            snprintf(err, errlen, "cannot create the run's cgroup %s: %s", d, strerror(errno));
            goto Error;
        }
        made |= 1u << i;
    }
    if (write_limits(r, lim, err, errlen) != 0)
        goto Error;
    for (int i = 0; i < cg.n_dirs; i++) {
        char path[1500];
        run_dir(i, r->name, d, sizeof(d));
        snprintf(path, sizeof(path), "%s/cgroup.procs", d);
        if ((r->procs_fd[i] = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
            snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
            goto Error;
        }
        r->n_procs_fd = i + 1;
    }
    if (cg.mode == CGROUP_V1) {
        run_dir(cg.idx[HIER_MEMORY], r->name, d, sizeof(d));
        watch_oom_v1(r, d);
    }
    r->active = 1;
    return 0;
Error:
    cgroup_run_placed(r);
    rmdir_name(r->name, made);
    return -1;
}

void cgroup_run_placed(cgroup_run_t *r)
{
    for (int i = 0; i < CGROUP_MAX_DIRS; i++)
        if (r->procs_fd[i] >= 0) {
            close(r->procs_fd[i]);
            r->procs_fd[i] = -1;
        }
    r->n_procs_fd = 0;
}

void cgroup_run_signal(cgroup_run_t *r, int sig, pid_t except)
{
    if (!r->active)
        return;
    char d[1400];
    run_dir(cg.idx[HIER_PIDS], r->name, d, sizeof(d));
    if (cg.mode == CGROUP_V2) {
        signal_procs_except(d, sig, except);
        return;
    }
    /* frozen, no process of the run can reap another: every pid read stays the run's own */
    char fz[1400];
    run_dir(cg.idx[HIER_FREEZER], r->name, fz, sizeof(fz));
    int frozen = write_file(fz, "freezer.state", "FROZEN") == 0;
    signal_procs_except(d, sig, except);
    if (frozen)
        write_file(fz, "freezer.state", "THAWED");
}

void cgroup_run_kill(cgroup_run_t *r)
{
    if (r->active)
        kill_name(r->name);
}

uint64_t cgroup_run_cpu_ns(const cgroup_run_t *r)
{
    uint64_t v = 0;
    if (!r->active)
        return 0;
    char d[1400];
    run_dir(cg.idx[HIER_CPUACCT], r->name, d, sizeof(d));
    if (cg.mode == CGROUP_V2) {
        if (read_keyed(d, "cpu.stat", "usage_usec", &v) == 0)
            v *= 1000;
    } else {
        read_u64(d, "cpuacct.usage", &v);
    }
    return v;
}

int cgroup_run_stats(const cgroup_run_t *r, cgroup_stats_t *st)
{
    memset(st, 0, sizeof(*st));
    if (!r->active)
        return -1;
    st->cpu_ns = cgroup_run_cpu_ns(r);
    char d[1400];
    run_dir(cg.idx[HIER_MEMORY], r->name, d, sizeof(d));
    if (cg.mode == CGROUP_V2) {
        read_u64(d, "memory.peak", &st->peak_bytes);
        read_keyed(d, "memory.events", "oom_kill", &st->oom_kills);
        uint64_t ooms = 0; /* out of memory with nothing to kill (tmpfs pages): a write failed instead */
        if (st->oom_kills == 0 && read_keyed(d, "memory.events", "oom", &ooms) == 0 && ooms > 0)
            st->oom_kills = 1;
    } else {
        read_u64(d, "memory.max_usage_in_bytes", &st->peak_bytes);
        read_keyed(d, "memory.oom_control", "oom_kill", &st->oom_kills);
    }
    if (r->oom_seen && st->oom_kills == 0)
        st->oom_kills = 1; /* out of memory with nothing the OOM killer would take (tmpfs): we ended it */
    return 0;
}

void cgroup_run_release(cgroup_run_t *r)
{
    cgroup_run_placed(r);
    if (r->oom_sock != NULL) {
        h2o_socket_close(r->oom_sock);
        r->oom_sock = NULL;
    }
    if (!r->active)
        return;
    r->active = 0;
    kill_and_remove(r->name, 1);
}
