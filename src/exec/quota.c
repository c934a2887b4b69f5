/*
 * quota: one worker thread measures workspaces (see quota.h).
 *
 * A scan is owned by the loop until handed to the worker, then by the worker
 * until its result is posted back; a cancelled scan (its owner went away)
 * is freed when it comes back, without calling anyone.
 */
#include "exec/quota.h"
#include "core/config.h"
#include "core/log.h"
#include "core/message.h"
#include "core/util.h"

#include <ftw.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define QUOTA_MIN_ENTRY 4096 /* every file or directory costs at least one block */

struct quota_scan {
    h2o_multithread_message_t super; /* must be first */
    quota_scan_t *next;             /* worker queue */
    char *path;
    quota_cb cb;                    /* NULL once cancelled */
    void *arg;
    int64_t bytes;
};

static struct {
    int running, stopping;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    quota_scan_t *head, *tail;
    h2o_multithread_receiver_t receiver;
    h2o_multithread_queue_t *queue; /* the loop's, given to quota_start */
} q = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

/* nftw's callback has no argument: the sum lives in the worker's thread-local. */
static __thread int64_t walk_sum;

static int add_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)path;
    (void)flag;
    (void)ftw;
    int64_t b = (int64_t)st->st_blocks * 512;
    walk_sum += b > QUOTA_MIN_ENTRY ? b : QUOTA_MIN_ENTRY;
    return 0;
}

int64_t quota_measure(const char *path)
{
    walk_sum = 0;
    if (nftw(path, add_entry, 16, FTW_PHYS | FTW_MOUNT) != 0)
        return -1;
    return walk_sum;
}

static void *worker_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q.lock);
    while (!q.stopping) {
        quota_scan_t *s = q.head;
        if (s == NULL) {
            pthread_cond_wait(&q.cond, &q.lock);
            continue;
        }
        q.head = s->next;
        if (q.head == NULL)
            q.tail = NULL;
        pthread_mutex_unlock(&q.lock);
        s->bytes = quota_measure(s->path);
        h2o_multithread_send_message(&q.receiver, &s->super);
        pthread_mutex_lock(&q.lock);
    }
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void scan_free(quota_scan_t *s)
{
    free(s->path);
    free(s);
}

/* Results, on the loop. */
static void on_results(h2o_multithread_receiver_t *r, h2o_linklist_t *messages)
{
    MESSAGE_FOREACH(msg, messages) {
        quota_scan_t *s = H2O_STRUCT_FROM_MEMBER(quota_scan_t, super, msg);
        if (s->cb != NULL)
            s->cb(s->arg, s->bytes);
        scan_free(s);
    }
}

int quota_start(h2o_multithread_queue_t *queue)
{
    if (config.workspace_quota_mb <= 0)
        return 0;
    h2o_multithread_register_receiver(queue, &q.receiver, on_results);
    if (pthread_create(&q.thread, NULL, worker_main, NULL) != 0) {
        h2o_multithread_unregister_receiver(queue, &q.receiver);
        return -1;
    }
    q.queue = queue;
    q.running = 1;
    return 0;
}

void quota_stop(void)
{
    if (!q.running)
        return;
    pthread_mutex_lock(&q.lock);
    q.stopping = 1;
    pthread_cond_signal(&q.cond);
    pthread_mutex_unlock(&q.lock);
    pthread_join(q.thread, NULL);
    q.running = 0;
    for (quota_scan_t *s = q.head, *n; s != NULL; s = n) {
        n = s->next;
        scan_free(s);
    }
    q.head = q.tail = NULL;
    /* results posted but not yet delivered (the worker is gone: nobody else touches the list) */
    MESSAGE_FOREACH(msg, &q.receiver._messages)
        scan_free(H2O_STRUCT_FROM_MEMBER(quota_scan_t, super, msg));
    h2o_multithread_unregister_receiver(q.queue, &q.receiver);
}

int quota_enabled(void)
{
    return q.running;
}

quota_scan_t *quota_scan(const char *path, quota_cb cb, void *arg)
{
    if (!q.running)
        return NULL;
    quota_scan_t *s = xcalloc(1, sizeof(*s));
    s->path = xstrdup(path);
    s->cb = cb;
    s->arg = arg;
    pthread_mutex_lock(&q.lock);
    if (q.tail != NULL)
        q.tail->next = s;
    else
        q.head = s;
    q.tail = s;
    pthread_cond_signal(&q.cond);
    pthread_mutex_unlock(&q.lock);
    return s;
}

void quota_cancel(quota_scan_t *s)
{
    if (s != NULL)
        s->cb = NULL; /* loop-owned field: the worker never reads it */
}
