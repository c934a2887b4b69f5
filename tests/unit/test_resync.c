/*
 * Unit tests for src/cluster/resync.c: the resync operation built in bounded
 * steps resumed by seq (events and bytes budgets), copied to the log's end
 * on the last step, events evicted between steps skipped (the operation
 * emptied when all it holds was evicted), and the operation's last `count`
 * events (what LTRIM keeps) equal to the log, in order, whatever happened.
 *
 * unit-links: core/util core/events core/log cluster/queue
 */
#include "../../src/cluster/resync.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

static event_log_t lg;

static int setup(void **state)
{
    events_init(&lg, 1000, 16u << 20);
    return 0;
}

static int teardown(void **state)
{
    events_free(&lg);
    return 0;
}

/* Appends n events whose data is their running number from *k on. */
static void append(size_t n, int *k)
{
    for (size_t i = 0; i < n; i++) {
        cJSON *f = cJSON_CreateObject();
        char d[32];
        snprintf(d, sizeof(d), "%d", (*k)++);
        cJSON_AddStringToObject(f, "data", d);
        events_append(&lg, "stdout", f);
        cJSON_Delete(f);
    }
}

/* The operation's last lg.count events (what LTRIM keeps) are the log's, in order. */
static void assert_tail_is_log(const op_t *o)
{
    assert_true(o->n_events >= lg.count);
    size_t skip = o->n_events - lg.count;
    for (size_t i = 0; i < lg.count; i++) {
        size_t len;
        const char *s = mirror_op_event(o, skip + i, &len);
        const event_t *ev = events_at(&lg, i);
        assert_int_equal(len, ev->len);
        assert_memory_equal(s, ev->json, len);
    }
}

static resync_build_t *new_build(void)
{
    op_t *o = xcalloc(1, sizeof(*o));
    o->kind = OP_RESYNC;
    o->bytes = OP_OVERHEAD;
    return resync_build_new("x", o, &lg);
}

static void test_steps_bounded_by_events_then_to_end(void **state)
{
    int k = 1;
    append(250, &k);
    resync_build_t *b = new_build();
    resync_budget_t bud = {100, 1 << 20};
    assert_int_equal(resync_build_step(b, &lg, &bud, 0), 0);
    assert_int_equal(b->op->n_events, 100);
    assert_int_equal(bud.events, 0);
    append(10, &k); /* output during the build */
    bud = (resync_budget_t){100, 1 << 20};
    assert_int_equal(resync_build_step(b, &lg, &bud, 0), 0);
    assert_int_equal(b->op->n_events, 200);
    resync_budget_t none = {0, 0};
    assert_int_equal(resync_build_step(b, &lg, &none, 1), 1); /* the last step: to the end whatever the budget */
    assert_int_equal(b->op->n_events, 260);
    assert_int_equal(b->next_seq, lg.next_seq);
    assert_int_equal(b->steps, 3);
    assert_tail_is_log(b->op);
    size_t bytes = OP_OVERHEAD;
    for (size_t i = 0; i < lg.count; i++)
        bytes += events_at(&lg, i)->len + sizeof(size_t);
    assert_int_equal(b->op->bytes, bytes); /* accounted like a one-shot copy */
    resync_build_free(b);
}

static void test_byte_budget(void **state)
{
    int k = 1;
    append(50, &k);
    resync_build_t *b = new_build();
    size_t one = events_at(&lg, 0)->len;
    resync_budget_t bud = {1000, one * 3};
    assert_int_equal(resync_build_step(b, &lg, &bud, 0), 0);
    assert_true(b->op->n_events >= 2 && b->op->n_events <= 3);
    assert_int_equal(bud.bytes, 0);
    while (!resync_build_step(b, &lg, &(resync_budget_t){1000, one * 3}, 0))
        ;
    assert_int_equal(b->op->n_events, 50);
    assert_tail_is_log(b->op);
    resync_build_free(b);
}

static void test_everything_evicted_between_steps(void **state)
{
    int k = 1;
    append(1000, &k); /* full: max_events 1000 */
    resync_build_t *b = new_build();
    assert_int_equal(resync_build_step(b, &lg, &(resync_budget_t){300, 1 << 20}, 0), 0);
    append(1500, &k); /* the ring evicts past what was copied: the op's events are all gone */
    assert_int_equal(resync_build_step(b, &lg, &(resync_budget_t){300, 1 << 20}, 0), 0);
    assert_int_equal(b->op->n_events, 300); /* emptied, then refilled from the oldest held */
    assert_int_equal(b->op->bytes - OP_OVERHEAD, b->op->blob_len + 300 * sizeof(size_t));
    size_t len;
    const char *s = mirror_op_event(b->op, 0, &len);
    assert_int_equal(len, events_at(&lg, 0)->len);
    assert_memory_equal(s, events_at(&lg, 0)->json, len);
    assert_int_equal(resync_build_step(b, &lg, &(resync_budget_t){0, 0}, 1), 1);
    assert_int_equal(b->op->n_events, 1000);
    assert_tail_is_log(b->op);
    resync_build_free(b);
}

static void test_partly_evicted_trimmed_by_count(void **state)
{
    int k = 1;
    append(1000, &k);
    resync_build_t *b = new_build();
    assert_int_equal(resync_build_step(b, &lg, &(resync_budget_t){600, 1 << 20}, 0), 0);
    append(200, &k); /* the 200 oldest (copied) go; seq 601.. are still held */
    assert_int_equal(resync_build_step(b, &lg, &(resync_budget_t){0, 0}, 1), 1);
    assert_int_equal(b->op->n_events, 1200); /* 200 older ones LTRIM to the count drops */
    assert_tail_is_log(b->op);
    resync_build_free(b);
}

/* A run that outpaces the steps: past max_steps the step copies to the end. */
static void test_chase_ends_after_max_steps(void **state)
{
    int k = 1;
    append(10, &k);
    resync_build_t *b = new_build();
    assert_int_equal(b->max_steps, 1 + RESYNC_EXTRA_STEPS);
    int done = 0;
    unsigned steps = 0;
    while (!done) {
        append(5, &k); /* more output than a step of 2 copies */
        done = resync_build_step(b, &lg, &(resync_budget_t){2, 1 << 20}, 0);
        steps++;
        assert_true(steps <= b->max_steps);
    }
    assert_int_equal(steps, b->max_steps);
    assert_tail_is_log(b->op);
    resync_build_free(b);
}

static void test_empty_log(void **state)
{
    resync_build_t *b = new_build();
    assert_int_equal(resync_build_step(b, &lg, &(resync_budget_t){10, 10}, 0), 1);
    assert_int_equal(b->op->n_events, 0);
    resync_build_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_steps_bounded_by_events_then_to_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_byte_budget, setup, teardown),
        cmocka_unit_test_setup_teardown(test_everything_evicted_between_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_partly_evicted_trimmed_by_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chase_ends_after_max_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_log, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
