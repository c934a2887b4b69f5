/*
 * Unit tests for the control channel's loop side (src/cluster/control.c)
 * without Redis: what a popped command or reply must look like before it is
 * taken (anything else is dropped and counted, never run), the reply-list
 * check under --redis-prefix, a reply without a waiting call (late), and a
 * well-formed command run for an execution this process does not hold (the
 * unknown-id answer; with the mirror off, no reply can be pushed).
 */
#include "../../src/cluster/control.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

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
    control_on_popped(0, m, strlen(m));
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
        control_on_popped(1, bad[i], strlen(bad[i]));
    const char *ok = "{\"nonce\":\"0123456789abcdef0123456789abcdef\",\"from\":\"a\",\"is_error\":false,\"result\":{\"success\":true}}";
    control_on_popped(1, ok, strlen(ok));
    assert_int_equal(atomic_load(&stats.dropped), dropped + sizeof(bad) / sizeof(bad[0]));
    assert_int_equal(atomic_load(&stats.late), late + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_malformed_commands_dropped),
        cmocka_unit_test(test_wellformed_command_taken),
        cmocka_unit_test(test_reply_key),
        cmocka_unit_test(test_replies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
