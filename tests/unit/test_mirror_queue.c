/*
 * Unit tests for src/cluster/queue.c: the writer queue's cap, the stage
 * handed over in order (what does not fit is dropped, in order), batches
 * taken by the writer, the dirty set and the resync pass. No Redis, no loop.
 *
 * unit-links: core/util
 */
#include "../../src/cluster/queue.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static mirror_queue_t q;

static int setup(void **state)
{
    memset(&q, 0, sizeof(q));
    pthread_mutex_init(&q.lock, NULL);
    pthread_cond_init(&q.cond, NULL);
    return 0;
}

/* Frees what is left in the queue. */
static int teardown(void **state)
{
    while (q.head != NULL) {
        op_t *n = q.head->next;
        mirror_op_free(q.head);
        q.head = n;
    }
    return 0;
}

/* An event op for execution `id` accounting `bytes` in all. */
static op_t *op(const char *id, size_t bytes)
{
    op_t *o = xcalloc(1, sizeof(*o));
    o->kind = OP_EVENT;
    strlcpy(o->id, id, sizeof(o->id));
    mirror_op_add_event(o, "{}", 2);
    o->bytes = bytes;
    return o;
}

static void free_list(op_t *o)
{
    while (o != NULL) {
        op_t *n = o->next;
        mirror_op_free(o);
        o = n;
    }
}

/* Under the cap an op goes; past it it is refused while others wait; an empty queue takes even a huge one. */
static void test_push_respects_the_cap(void **state)
{
    assert_int_equal(mirror_queue_push(&q, op("a", 600), 1000), 0);
    op_t *big = op("b", 600);
    assert_int_equal(mirror_queue_push(&q, big, 1000), -1); /* 1200 > 1000 with "a" waiting */
    assert_int_equal(q.ops, 1);
    assert_int_equal(q.bytes, 600);
    size_t n;
    op_t *batch = mirror_queue_take_batch_locked(&q, 10, 1 << 20, &n);
    assert_int_equal(n, 1);
    free_list(batch);
    assert_int_equal(mirror_queue_push(&q, big, 1000), 0); /* the queue is empty again */
    op_t *refused = op("c", 5000);
    assert_int_equal(mirror_queue_push(&q, refused, 1000), -1);
    mirror_op_free(refused);
    mirror_queue_take_batch_locked(&q, 10, 1 << 20, &n);
    free_list(big);
    op_t *huge = op("d", 5000);
    assert_int_equal(mirror_queue_push(&q, huge, 1000), 0); /* larger than the whole cap, into an empty queue */
}

/* Stopping: nothing more is accepted. */
static void test_stopping_refuses(void **state)
{
    q.stopping = 1;
    op_t *o = op("a", 10);
    assert_int_equal(mirror_queue_push(&q, o, 1000), -1);
    mirror_op_free(o);
    mirror_stage_t st = {0};
    mirror_stage_add(&st, op("a", 10));
    op_t *dropped = mirror_queue_push_stage(&q, &st, 1000);
    assert_non_null(dropped);
    assert_null(q.head);
    assert_null(st.head);
    free_list(dropped);
}

/* The stage goes in order; past the cap, what fits goes and the rest comes back, in order. */
static void test_stage_takes_what_fits_in_order(void **state)
{
    assert_int_equal(mirror_queue_push(&q, op("w", 400), 1000), 0);
    mirror_stage_t st = {0};
    mirror_stage_add(&st, op("a", 300));
    mirror_stage_add(&st, op("b", 200));
    mirror_stage_add(&st, op("c", 300)); /* 400+300+200 = 900 fits; +300 does not */
    mirror_stage_add(&st, op("d", 50));  /* would fit alone, but order is kept: dropped too */
    assert_int_equal(st.ops, 4);
    op_t *dropped = mirror_queue_push_stage(&q, &st, 1000);
    assert_int_equal(q.ops, 3);
    assert_int_equal(q.bytes, 900);
    assert_string_equal(q.head->next->id, "a");
    assert_string_equal(q.tail->id, "b");
    assert_non_null(dropped);
    assert_string_equal(dropped->id, "c");
    assert_string_equal(dropped->next->id, "d");
    assert_null(dropped->next->next);
    assert_null(st.head);
    assert_int_equal(st.bytes, 0);
    free_list(dropped);
    assert_null(mirror_queue_push_stage(&q, &st, 1000)); /* an empty stage: nothing */
}

/* Under the cap the whole stage goes, and the writer waiting is woken (flag cleared). */
static void test_stage_all_fits(void **state)
{
    q.writer_waiting = 1;
    mirror_stage_t st = {0};
    mirror_stage_add(&st, op("a", 100));
    mirror_stage_add(&st, op("a", 100));
    assert_null(mirror_queue_push_stage(&q, &st, 1000));
    assert_int_equal(q.ops, 2);
    assert_int_equal(q.events, 2);
    assert_int_equal(q.writer_waiting, 0);
}

/* The writer takes batches from the head by count and by bytes, and the totals follow. */
static void test_take_batch(void **state)
{
    for (int i = 0; i < 5; i++)
        assert_int_equal(mirror_queue_push(&q, op("x", 100), 1 << 20), 0);
    size_t n;
    op_t *b = mirror_queue_take_batch_locked(&q, 2, 1 << 20, &n);
    assert_int_equal(n, 2);
    free_list(b);
    b = mirror_queue_take_batch_locked(&q, 10, 150, &n); /* stops once 150 bytes are reached */
    assert_int_equal(n, 2);
    free_list(b);
    assert_int_equal(q.ops, 1);
    assert_int_equal(q.bytes, 100);
    b = mirror_queue_take_batch_locked(&q, 10, 1 << 20, &n);
    assert_int_equal(n, 1);
    assert_null(q.head);
    assert_null(q.tail);
    free_list(b);
}

/* The dirty set: marking twice counts once; take says whether it was there. */
static void test_dirty_set(void **state)
{
    dirty_set_t ds = {RB_INITIALIZER(&ds.tree), 0};
    dirty_mark(&ds, "b");
    dirty_mark(&ds, "a");
    dirty_mark(&ds, "b");
    assert_int_equal(ds.count, 2);
    assert_int_equal(dirty_take(&ds, "b"), 1);
    assert_int_equal(dirty_take(&ds, "b"), 0);
    assert_int_equal(ds.count, 1);
    dirty_clear(&ds);
    assert_int_equal(ds.count, 0);
}

/* A fake resync: a script of answers per call, and the ids seen. */
static struct {
    int answers[8], n_calls, room_left;
    char seen[8][40];
} rs;

static int fake_room(void *arg)
{
    return rs.room_left-- > 0;
}

static int fake_resync(const char *id, void *arg)
{
    strlcpy(rs.seen[rs.n_calls], id, sizeof(rs.seen[0]));
    return rs.answers[rs.n_calls++];
}

/* In id order; a vanished execution is skipped; a refused one stays dirty and ends the pass; no room, no pass. */
static void test_resync_pass(void **state)
{
    dirty_set_t ds = {RB_INITIALIZER(&ds.tree), 0};
    dirty_mark(&ds, "c");
    dirty_mark(&ds, "a");
    dirty_mark(&ds, "b");
    dirty_mark(&ds, "d");
    memset(&rs, 0, sizeof(rs));
    rs.room_left = 100;
    rs.answers[0] = 1;  /* a: queued */
    rs.answers[1] = 0;  /* b: no longer held */
    rs.answers[2] = -1; /* c: queue full */
    assert_int_equal(dirty_resync_pass(&ds, fake_room, fake_resync, NULL), 1);
    assert_int_equal(rs.n_calls, 3);
    assert_string_equal(rs.seen[0], "a");
    assert_string_equal(rs.seen[1], "b");
    assert_string_equal(rs.seen[2], "c");
    assert_int_equal(ds.count, 2); /* c again, and d not reached */
    assert_int_equal(dirty_take(&ds, "c"), 1);
    assert_int_equal(dirty_take(&ds, "d"), 1);
    /* no room: nothing is taken out */
    dirty_mark(&ds, "e");
    memset(&rs, 0, sizeof(rs));
    assert_int_equal(dirty_resync_pass(&ds, fake_room, fake_resync, NULL), 0);
    assert_int_equal(rs.n_calls, 0);
    assert_int_equal(ds.count, 1);
    dirty_clear(&ds);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_push_respects_the_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stopping_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_takes_what_fits_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stage_all_fits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_take_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dirty_set, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resync_pass, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
