/*
 * sandbox_workspace: creates the session workspaces under --workspace-root
 * and removes them, in the background by one remover thread.
 */
#include "exec/sandbox_workspace.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/util.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
