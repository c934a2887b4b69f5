/*
 * Unit tests of src/cluster/reader.c's output read (read_output / take_chunk)
 * against a real redis-server started by the test (a unix socket in a temp
 * directory). The writer trimming the list's front between two chunk reads
 * is made deterministic by wrapping redisCommand: after the first LRANGE the
 * wrapper LTRIMs the list, exactly as the writer's cap would. Also a list
 * written by another hand: elements that are no event, ids out of order,
 * duplicates, gaps, an element over --max-output-bytes.
 */
#include <hiredis.h>
#include <stdarg.h>

static redisReply *trim_command(redisContext *c, const char *fmt, ...);
#define redisCommand trim_command
#include "../../src/cluster/reader.c"
#undef redisCommand

#include <setjmp.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

static long long trim_after_first; /* LTRIM this many elements off the front after the first LRANGE (0: none) */
static int lranges;

/* redisCommand, and the writer's trim after the read's first chunk. */
static redisReply *trim_command(redisContext *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (!strncmp(fmt, "LRANGE", 6) && lranges++ == 0 && trim_after_first > 0) {
        redisReply *t = redisCommand(c, "LTRIM out %lld -1", trim_after_first);
        assert_non_null(t);
        freeReplyObject(t);
    }
    return r;
}

static char dir[] = "/tmp/test_reader.XXXXXX";
static pid_t server;
static redisContext *rc;

/* Starts redis-server on a unix socket and connects (retrying until it listens). */
static int start(void **state)
{
    (void)state;
    assert_non_null(mkdtemp(dir));
    char sock[64];
    snprintf(sock, sizeof(sock), "%s/s", dir);
    server = fork();
    if (server == 0) {
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
               "--dir", dir, (char *)NULL);
        _exit(127);
    }
    for (int i = 0; i < 2000 && rc == NULL; i++) { /* until it accepts (or has died) */
        redisContext *c = redisConnectUnix(sock);
        if (c != NULL && !c->err)
            rc = c;
        else if (c != NULL)
            redisFree(c);
        if (rc == NULL && waitpid(server, NULL, WNOHANG) == server)
            break;
        if (rc == NULL)
            usleep(5000);
    }
    config.max_output_bytes = 64 << 20;
    return rc != NULL ? 0 : -1;
}

static int stop(void **state)
{
    (void)state;
    redisFree(rc);
    kill(server, SIGTERM);
    waitpid(server, NULL, 0);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* The list `out` holds events with ids first..last. */
static void fill(uint64_t first, uint64_t last)
{
    redisReply *r = redisCommand(rc, "DEL out");
    freeReplyObject(r);
    for (uint64_t id = first; id <= last; id++) {
        r = redisCommand(rc, "RPUSH out {\"event_id\":\"%llu\",\"type\":\"stdout\",\"ts\":\"t\",\"data\":\"%llu\"}",
                         (unsigned long long)id, (unsigned long long)id);
        freeReplyObject(r);
    }
}

/* Pushes one raw element. */
static void push(const char *s)
{
    redisReply *r = redisCommand(rc, "RPUSH out %s", s);
    freeReplyObject(r);
}

/* Reads the list after `after` the way a remote get_execution_output does. */
static remote_events_t *read_list(uint64_t after, long long trim)
{
    mirror_msg_t m = {0};
    trim_after_first = trim;
    lranges = 0;
    assert_int_equal(read_output(rc, "out", after, &m), 0);
    assert_null(m.err);
    return m.events;
}

/* The ids read, in order, must be `want` (n of them). */
static void assert_ids(const remote_events_t *e, const uint64_t *want, size_t n)
{
    assert_int_equal(e->n, n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(e->events[i].seq, want[i]);
}

/* The writer trims 1,500 events off the front after the first 2,000-event chunk: the read follows (rereads) and misses nothing. */
static void test_trim_between_chunks_reread(void **state)
{
    (void)state;
    fill(1, 5000);
    remote_events_t *e = read_list(0, 1500);
    assert_true(lranges >= 3); /* the chunk after the trim, read again from where id 2001 now is */
    assert_int_equal(e->n, 5000);
    for (size_t i = 0; i < e->n; i++)
        assert_int_equal(e->events[i].seq, i + 1);
    assert_int_equal(e->missing, 0);
    assert_int_equal(e->invalid, 0);
    assert_int_equal(e->events[e->n - 1].line_sum - e->events[0].line_sum, 4999);
    remote_events_free(e);
}

/* The trim takes events the read still wanted (2001..2500): it goes back to the list's front, and only those are missing. */
static void test_trim_past_what_was_wanted(void **state)
{
    (void)state;
    fill(1, 5000);
    remote_events_t *e = read_list(0, 2500);
    assert_int_equal(e->n, 4500);
    assert_int_equal(e->events[1999].seq, 2000);
    assert_int_equal(e->events[2000].seq, 2501);
    assert_int_equal(e->events[4499].seq, 5000);
    assert_int_equal(e->missing, 500);
    remote_events_free(e);
}

/* A list written by another hand: each element that is no event, or out of order, or a duplicate, is counted; gaps too. */
static void test_hostile_list(void **state)
{
    (void)state;
    redisReply *r = redisCommand(rc, "DEL out");
    freeReplyObject(r);
    push("not json");                                                   /* the head is no event: read from the start */
    push("{\"event_id\":\"3\",\"type\":\"stdout\",\"data\":\"a\"}");
    push("[1,2]");                                                      /* not an object */
    push("{\"event_id\":\"4\",\"type\":\"stdout\",\"data\":\"b\"} x"); /* something after it */
    push("{\"event_id\":\"3\",\"type\":\"stdout\",\"data\":\"dup\"}");  /* a duplicate */
    push("{\"event_id\":\"9\",\"type\":\"stderr\",\"data\":\"c\"}");    /* ids 4..8 missing */
    push("{\"event_id\":\"7\",\"type\":\"stdout\",\"data\":\"late\"}"); /* out of order */
    push("{\"event_id\":\"-1\",\"type\":\"stdout\",\"data\":\"neg\"}");
    push("{\"event_id\":\"10\",\"type\":\"stdout\",\"data\":\"d\"}");
    remote_events_t *e = read_list(0, 0);
    static const uint64_t ids[] = {3, 9, 10};
    assert_ids(e, ids, 3);
    assert_int_equal(e->first_id, 3);
    assert_int_equal(e->invalid, 6);
    assert_int_equal(e->missing, 5);
    remote_events_free(e);
}

/* An element longer than --max-output-bytes is left out and counted (its data length could not be held exactly). */
static void test_element_over_the_cap(void **state)
{
    (void)state;
    fill(1, 3);
    size_t big = 70000;
    char *s = xmalloc(big + 100);
    int n = snprintf(s, big + 100, "{\"event_id\":\"4\",\"type\":\"stdout\",\"data\":\"");
    memset(s + n, 'z', big);
    strcpy(s + n + big, "\"}");
    push(s);
    free(s);
    push("{\"event_id\":\"5\",\"type\":\"stdout\",\"data\":\"e\"}");
    config.max_output_bytes = 65536;
    remote_events_t *e = read_list(0, 0);
    config.max_output_bytes = 64 << 20;
    static const uint64_t ids[] = {1, 2, 3, 5};
    assert_ids(e, ids, 4);
    assert_int_equal(e->invalid, 1);
    assert_int_equal(e->missing, 1);
    remote_events_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_trim_between_chunks_reread),
        cmocka_unit_test(test_trim_past_what_was_wanted),
        cmocka_unit_test(test_hostile_list),
        cmocka_unit_test(test_element_over_the_cap),
    };
    return cmocka_run_group_tests(tests, start, stop);
}
