/*
 * Unit tests for the control channel's loop side (src/cluster/control.c)
 * without Redis: what a popped command or reply must look like before it is
 * taken (anything else is dropped and counted, never run), the reply-list
 * check under --redis-prefix, a reply without a waiting call (late), and a
 * well-formed command run for an execution this process does not hold (the
 * unknown-id answer; with the mirror off, no reply can be pushed); the bound
 * on what the control thread hands to the loop; a command write that failed
 * after it may have landed (the call waits for the answer); nothing taken
 * once stopping.
 */
#include "../../src/cluster/control.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <sched.h>

static char cmd[4096];

/* A command with `field` set to `value` (raw JSON), the other fields well-formed. */
static const char *command_with(const char *field, const char *value)
{
    char deadline[32];
    snprintf(deadline, sizeof(deadline), "%llu", (unsigned long long)util_wall_ms() + 60000);
    const char *names[] = {"nonce", "op", "tenant", "args", "reply_to", "from", "deadline_ms"};
    const char *values[] = {"\"0123456789abcdef0123456789abcdef\"", "\"send_stdin\"",
                            "\"2bd806c97f0e00af1a1fc3328fa763a9269723c8db8fac4f93af71db186d6e90\"",
                            "{\"execution_id\":\"0f0f\",\"input_data\":\"x\"}", "\"replica:b:replies\"", "\"b\"", deadline};
    strbuf_t b = {0};
    strbuf_puts(&b, "{");
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *v = field != NULL && !strcmp(field, names[i]) ? value : values[i];
        if (v == NULL)
            continue; /* the field left out */
        strbuf_printf(&b, "%s\"%s\":%s", i > 0 && b.len > 1 ? "," : "", names[i], v);
    }
    strbuf_puts(&b, "}");
    snprintf(cmd, sizeof(cmd), "%s", b.data);
    strbuf_free(&b);
    return cmd;
}

static void pop_command(const char *m)
{
    take_popped(0, m, strlen(m));
}

/* Each field wrong or missing in turn: dropped and counted, never run (received stays). */
static void test_malformed_commands_dropped(void **state)
{
    static const char *const bad[][2] = {
        {"nonce", NULL}, {"nonce", "7"}, {"nonce", "\"0123\""}, {"nonce", "\"0123456789ABCDEF0123456789ABCDEF\""},
        {"op", "\"execute_code\""}, {"op", "1"}, {"tenant", "\"alice\""}, {"args", "\"x\""}, {"args", "[]"},
        {"reply_to", "\"elsewhere\""}, {"reply_to", "\"replica:b c:replies\""}, {"reply_to", "\"replica::replies\""},
        {"from", "\"a b\""}, {"deadline_ms", "\"soon\""}, {"deadline_ms", "1"},
    };
    unsigned long long dropped = atomic_load(&stats.dropped), received = atomic_load(&stats.received);
    pop_command("not json");
    pop_command("[1,2]");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        pop_command(command_with(bad[i][0], bad[i][1]));
    assert_int_equal(atomic_load(&stats.dropped), dropped + 2 + sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(atomic_load(&stats.received), received);
}

/* A well-formed command is taken (here: no such execution, and no Redis to answer through). */
static void test_wellformed_command_taken(void **state)
{
    unsigned long long dropped = atomic_load(&stats.dropped), received = atomic_load(&stats.received);
    pop_command(command_with(NULL, NULL));
    assert_int_equal(atomic_load(&stats.received), received + 1);
    assert_int_equal(atomic_load(&stats.dropped), dropped);
}

/* Reply lists: "{prefix}replica:{id}:replies" with a valid id, under this server's prefix only. */
static void test_reply_key(void **state)
{
    assert_true(is_reply_key("replica:host-a:8081:replies"));
    assert_false(is_reply_key("replica::replies"));
    assert_false(is_reply_key("replica:a:control"));
    assert_false(is_reply_key("prod:replica:a:replies"));
    snprintf(config.redis_prefix, sizeof(config.redis_prefix), "prod:");
    assert_true(is_reply_key("prod:replica:a:replies"));
    assert_false(is_reply_key("replica:a:replies"));
    config.redis_prefix[0] = '\0';
}

/* A reply: malformed ones dropped; a well-formed one nobody waits for counted late. */
static void test_replies(void **state)
{
    unsigned long long dropped = atomic_load(&stats.dropped), late = atomic_load(&stats.late);
    static const char *const bad[] = {"{}", "{\"nonce\":\"0123456789abcdef0123456789abcdef\",\"is_error\":false}",
                                      "{\"nonce\":\"0123456789abcdef0123456789abcdef\",\"is_error\":1,\"result\":{}}",
                                      "{\"nonce\":\"xyz\",\"is_error\":false,\"result\":{}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        take_popped(1, bad[i], strlen(bad[i]));
    const char *ok = "{\"nonce\":\"0123456789abcdef0123456789abcdef\",\"from\":\"a\",\"is_error\":false,\"result\":{\"success\":true}}";
    take_popped(1, ok, strlen(ok));
    assert_int_equal(atomic_load(&stats.dropped), dropped + sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(atomic_load(&stats.late), late + 1);
}

/* The control thread's side of the gate, in a thread: 1 once gate_wait_room returned (its value in `stopped`). */
struct popper {
    pthread_t t;
    _Atomic int passed, stopped;
};

static void *popper_main(void *arg)
{
    struct popper *p = arg;
    atomic_store(&p->stopped, gate_wait_room());
    atomic_store(&p->passed, 1);
    return NULL;
}

/*
 * Starts the thread and waits until it counted a delay (it is then blocked,
 * or about to be, on a full gate) or got through (the gate did not hold it).
 */
static void popper_start_blocked(struct popper *p)
{
    unsigned long long delayed = atomic_load(&stats.delayed);
    atomic_store(&p->passed, 0);
    assert_int_equal(pthread_create(&p->t, NULL, popper_main, p), 0);
    while (atomic_load(&stats.delayed) == delayed && !atomic_load(&p->passed))
        sched_yield();
    assert_int_equal(atomic_load(&p->passed), 0);
}

/*
 * The hand-over is bounded: with CONTROL_INFLIGHT_MAX messages posted and not
 * taken the thread does not pop (it waits, counted) until the loop takes one;
 * the same with CONTROL_INFLIGHT_BYTES nearly reached by a few large ones.
 */
static void test_gate_bounds_what_waits_for_the_loop(void **state)
{
    struct popper p;
    for (int i = 0; i < CONTROL_INFLIGHT_MAX; i++) {
        assert_int_equal(gate_wait_room(), 0);
        gate_add(10);
    }
    popper_start_blocked(&p);
    assert_int_equal(gate_take(10), 0);
    pthread_join(p.t, NULL);
    assert_int_equal(atomic_load(&p.passed), 1);
    assert_int_equal(atomic_load(&p.stopped), 0);
    for (int i = 1; i < CONTROL_INFLIGHT_MAX; i++)
        gate_take(10);
    assert_int_equal(gate.n, 0);
    assert_int_equal(gate.peak_n, CONTROL_INFLIGHT_MAX);
    /* by bytes: room for one more largest message is needed */
    for (unsigned i = 0; i < CONTROL_INFLIGHT_BYTES / CONTROL_MESSAGE_MAX - 1; i++) {
        assert_int_equal(gate_wait_room(), 0);
        gate_add(CONTROL_MESSAGE_MAX);
    }
    gate_add(1);
    popper_start_blocked(&p);
    gate_take(1);
    pthread_join(p.t, NULL);
    assert_int_equal(atomic_load(&p.passed), 1);
    assert_true(gate.peak_bytes <= CONTROL_INFLIGHT_BYTES);
    for (unsigned i = 0; i < CONTROL_INFLIGHT_BYTES / CONTROL_MESSAGE_MAX - 1; i++)
        gate_take(CONTROL_MESSAGE_MAX);
    assert_int_equal(gate.bytes, 0);
}

/* What a waiting call was answered with (remote_control_cb). */
static struct {
    int calls, is_error;
    char result[256], err[400];
} answered;

static void on_answer(void *arg, const char *result, size_t len, int is_error, const char *err)
{
    (void)arg;
    answered.calls++;
    answered.is_error = is_error;
    snprintf(answered.result, sizeof(answered.result), "%.*s", result != NULL ? (int)len : 0, result != NULL ? result : "");
    snprintf(answered.err, sizeof(answered.err), "%s", err != NULL ? err : "");
}

/* A waiting call as control_forward leaves it once its command is queued. */
static struct pending *pending_add(const char *nonce)
{
    struct pending *p = xcalloc(1, sizeof(*p));
    snprintf(p->nonce, sizeof(p->nonce), "%s", nonce);
    snprintf(p->replica, sizeof(p->replica), "owner");
    p->cb = on_answer;
    p->next = pending_head;
    pending_head = p;
    n_pending++;
    deadline_arm(&p->timer, CONTROL_TIMEOUT_MS, on_timeout);
    return p;
}

/*
 * A command whose write failed after it went out (a timeout, found = -1) may
 * be run by the owner: the call keeps waiting and the owner's answer is
 * relayed. One that surely did not go out (found = 0, or a refusal) is
 * answered at once.
 */
static void test_unsure_push_waits_for_the_answer(void **state)
{
    static const char nonce[] = "00112233445566778899aabbccddeeff";
    memset(&answered, 0, sizeof(answered));
    struct pending *p = pending_add(nonce);
    on_command_pushed(xstrdup(nonce), -1, NULL, 0, NULL, "Resource temporarily unavailable");
    assert_int_equal(answered.calls, 0);
    assert_ptr_equal(pending_find(nonce), p);
    assert_string_equal(p->push_err, "Resource temporarily unavailable");
    const char *reply = "{\"nonce\":\"00112233445566778899aabbccddeeff\",\"from\":\"owner\",\"is_error\":false,"
                        "\"result\":{\"success\":true}}";
    take_popped(1, reply, strlen(reply));
    assert_int_equal(answered.calls, 1);
    assert_string_equal(answered.result, "{\"success\":true}");
    assert_string_equal(answered.err, "");
    assert_null(pending_find(nonce));
    /* surely not written: answered at once */
    pending_add(nonce);
    on_command_pushed(xstrdup(nonce), 0, NULL, 0, NULL, "Connection refused");
    assert_int_equal(answered.calls, 2);
    assert_non_null(strstr(answered.err, "could not be written to Redis (Connection refused)"));
    /* unsure, then no answer: the timeout says both */
    p = pending_add(nonce);
    on_command_pushed(xstrdup(nonce), -1, NULL, 0, NULL, "Resource temporarily unavailable");
    on_timeout(&p->timer);
    assert_int_equal(answered.calls, 3);
    assert_string_equal(answered.err, "replica owner did not answer within 5 s (writing the command to Redis failed: "
                                      "Resource temporarily unavailable)");
    assert_int_equal(n_pending, 0);
}

/* Once stopping, a message the loop takes is dropped, not run; the thread no longer waits for room. */
static void test_nothing_taken_once_stopping(void **state)
{
    for (int i = 0; i < CONTROL_INFLIGHT_MAX; i++)
        gate_add(1);
    control_signal_stop();
    assert_int_equal(gate_wait_room(), 1);
    unsigned long long dropped = atomic_load(&stats.dropped), received = atomic_load(&stats.received);
    const char *m = command_with(NULL, NULL);
    gate_add(strlen(m));
    control_on_popped(0, m, strlen(m));
    assert_int_equal(atomic_load(&stats.received), received);
    assert_int_equal(atomic_load(&stats.dropped), dropped + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_commands_dropped),
        cmocka_unit_test(test_wellformed_command_taken),
        cmocka_unit_test(test_reply_key),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_gate_bounds_what_waits_for_the_loop),
        cmocka_unit_test(test_unsure_push_waits_for_the_answer),
        cmocka_unit_test(test_nothing_taken_once_stopping), /* last: the stop stays */
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
