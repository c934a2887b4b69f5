/*
 * Unit tests for src/session.c: the session table (create / find / touch /
 * end), the cap, the end hook, and idle expiry driven by a real event loop
 * through deadline.c's timerfd.
 */
#include "../../src/mcp/session.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <time.h>

/* ---------------------------------------------------------------- end hook recorder */

#define MAX_ENDED 64

static struct {
    int n;
    char ids[MAX_ENDED][SESSION_ID_LEN + 1];
    enum session_end_reason why[MAX_ENDED];
    size_t count_at_hook[MAX_ENDED]; /* session_count() seen inside the hook */
    int findable_at_hook[MAX_ENDED]; /* session_find(id) still returned it */
} ended;

static void record_end(session_t *s, enum session_end_reason why)
{
    if (ended.n < MAX_ENDED) {
        memcpy(ended.ids[ended.n], s->id, sizeof(s->id));
        ended.why[ended.n] = why;
        ended.count_at_hook[ended.n] = session_count();
        ended.findable_at_hook[ended.n] = session_find(s->id) == s;
    }
    ended.n++;
}

static h2o_evloop_t *loop;

static int group_setup(void **state)
{
    log_open(NULL, LOG_ERROR); /* keep "session created" lines out of the test output */
    loop = h2o_evloop_create();
    return deadline_init(loop);
}

static int group_teardown(void **state)
{
    deadline_close();
    h2o_evloop_destroy(loop);
    return 0;
}

static int setup(void **state)
{
    memset(&ended, 0, sizeof(ended));
    session_setup(3600 * 1000, 10000, record_end);
    return 0;
}

static int teardown(void **state)
{
    session_end_all();
    assert_int_equal(session_count(), 0);
    assert_int_equal(deadline_count(), 0);
    session_setup(3600 * 1000, 10000, NULL);
    return 0;
}

static int is_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!isdigit((unsigned char)s[i]) && !(s[i] >= 'a' && s[i] <= 'f'))
            return 0;
    return 1;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---------------------------------------------------------------- tests */

static void test_create(void **state)
{
    uint64_t before = util_now_ms();
    session_t *s = session_create("2025-06-18", "claude-code", NULL, 0);
    uint64_t after = util_now_ms();
    assert_non_null(s);
    assert_int_equal(strlen(s->id), SESSION_ID_LEN);
    assert_true(is_lower_hex(s->id, SESSION_ID_LEN));
    assert_string_equal(s->protocol, "2025-06-18");
    assert_string_equal(s->client, "claude-code");
    assert_true(s->created_ms >= before && s->created_ms <= after);
    assert_int_equal(s->last_used_ms, s->created_ms);
    assert_non_null(s->ws);
    assert_null(s->ws->exec.state);
    assert_ptr_equal(s->ws->exec.id, s->ws->id);
    assert_int_equal(strlen(s->ws->id), WORKSPACE_ID_LEN);
    assert_true(s->ws->pinned);
    assert_int_equal(session_count(), 1);
    assert_true(s->expiry.armed);
    assert_int_equal(deadline_count(), 1);
}

static void test_create_null_client_and_long_strings(void **state)
{
    session_t *s = session_create("2025-03-26", NULL, NULL, 0);
    assert_non_null(s);
    assert_string_equal(s->client, "");

    char long_client[300];
    memset(long_client, 'c', sizeof(long_client) - 1);
    long_client[sizeof(long_client) - 1] = '\0';
    session_t *t = session_create("a-protocol-version-that-is-too-long", long_client, NULL, 0);
    assert_non_null(t);
    assert_int_equal(strlen(t->protocol), sizeof(t->protocol) - 1);
    assert_int_equal(strlen(t->client), sizeof(t->client) - 1);
    assert_memory_equal(t->protocol, "a-protocol-vers", sizeof(t->protocol) - 1);
    assert_int_equal(session_count(), 2);
}

static void test_ids_unique(void **state)
{
    enum { N = 2000 };
    static session_t *all[N];
    for (int i = 0; i < N; i++) {
        all[i] = session_create("2025-06-18", "c", NULL, 0);
        assert_non_null(all[i]);
        assert_int_equal(strlen(all[i]->id), SESSION_ID_LEN);
        assert_true(is_lower_hex(all[i]->id, SESSION_ID_LEN));
    }
    assert_int_equal(session_count(), N);
    /* every id finds its own session, so no two are equal */
    for (int i = 0; i < N; i++)
        assert_ptr_equal(session_find(all[i]->id), all[i]);
    /* and consecutive ids share no long prefix (they are random, not counters) */
    int same_prefix = 0;
    for (int i = 1; i < N; i++)
        same_prefix += memcmp(all[i]->id, all[i - 1]->id, 8) == 0;
    assert_int_equal(same_prefix, 0);
}

static void test_find(void **state)
{
    session_t *a = session_create("p", "a", NULL, 0);
    session_t *b = session_create("p", "b", NULL, 0);
    assert_ptr_equal(session_find(a->id), a);
    assert_ptr_equal(session_find(b->id), b);

    /* a copy of the id (not the same pointer) finds it too */
    char copy[SESSION_ID_LEN + 1];
    memcpy(copy, a->id, sizeof(copy));
    assert_ptr_equal(session_find(copy), a);

    /* wrong lengths */
    assert_null(session_find(NULL));
    assert_null(session_find(""));
    char shorter[SESSION_ID_LEN];
    memcpy(shorter, a->id, SESSION_ID_LEN - 1);
    shorter[SESSION_ID_LEN - 1] = '\0';
    assert_null(session_find(shorter));
    char longer[SESSION_ID_LEN + 2];
    memcpy(longer, a->id, SESSION_ID_LEN);
    longer[SESSION_ID_LEN] = '0';
    longer[SESSION_ID_LEN + 1] = '\0';
    assert_null(session_find(longer));

    /* right length, unknown */
    char unknown[SESSION_ID_LEN + 1];
    memcpy(unknown, a->id, sizeof(unknown));
    unknown[SESSION_ID_LEN - 1] = unknown[SESSION_ID_LEN - 1] == '0' ? '1' : '0';
    if (strcmp(unknown, b->id) != 0)
        assert_null(session_find(unknown));
    assert_null(session_find("00000000000000000000000000000000"));
    assert_null(session_find("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz"));

    /* ids are case-sensitive: the upper-case spelling is another id */
    char upper[SESSION_ID_LEN + 1];
    int has_letter = 0;
    for (int i = 0; i <= SESSION_ID_LEN; i++) {
        upper[i] = (char)toupper((unsigned char)a->id[i]);
        has_letter |= isalpha((unsigned char)a->id[i]);
    }
    if (has_letter)
        assert_null(session_find(upper));

    /* a 32-byte prefix of a longer string is not the id */
    char with_suffix[64];
    snprintf(with_suffix, sizeof(with_suffix), "%s\r\n", a->id);
    assert_null(session_find(with_suffix));
}

static void test_touch(void **state)
{
    session_t *s = session_create("p", "c", NULL, 0);
    uint64_t created = s->created_ms;
    sleep_ms(20);
    session_touch(s);
    assert_true(s->last_used_ms >= created + 15);
    assert_int_equal(s->created_ms, created);
    /* a second touch stamps the time of that touch (between lo and hi), later than the first one */
    uint64_t first = s->last_used_ms;
    sleep_ms(5);
    uint64_t lo = util_now_ms();
    assert_true(lo > first);
    session_touch(s);
    uint64_t hi = util_now_ms();
    assert_true(s->last_used_ms >= lo && s->last_used_ms <= hi);
}

static void test_end(void **state)
{
    session_t *a = session_create("p", "a", NULL, 0);
    session_t *b = session_create("p", "b", NULL, 0);
    char ida[SESSION_ID_LEN + 1], idb[SESSION_ID_LEN + 1];
    memcpy(ida, a->id, sizeof(ida));
    memcpy(idb, b->id, sizeof(idb));
    assert_int_equal(deadline_count(), 2);

    session_end(a, SESSION_DELETED);
    assert_int_equal(ended.n, 1);
    assert_string_equal(ended.ids[0], ida);
    assert_int_equal(ended.why[0], SESSION_DELETED);
    /* the hook runs after the session left the table */
    assert_int_equal(ended.count_at_hook[0], 1);
    assert_false(ended.findable_at_hook[0]);
    assert_null(session_find(ida));
    assert_ptr_equal(session_find(idb), b);
    assert_int_equal(session_count(), 1);
    assert_int_equal(deadline_count(), 1); /* its expiry was cancelled */

    session_end(b, SESSION_EXPIRED);
    assert_int_equal(ended.n, 2);
    assert_string_equal(ended.ids[1], idb);
    assert_int_equal(ended.why[1], SESSION_EXPIRED);
    assert_int_equal(session_count(), 0);
    assert_int_equal(deadline_count(), 0);
}

static void test_end_without_hook(void **state)
{
    session_setup(3600 * 1000, 10000, NULL);
    session_t *s = session_create("p", "c", NULL, 0);
    session_end(s, SESSION_DELETED);
    assert_int_equal(session_count(), 0);
    assert_int_equal(ended.n, 0);
}

static void hook_sees_exec(session_t *s, enum session_end_reason why)
{
    /* the execution manager's state is still attached when the hook runs */
    assert_ptr_equal(s->ws->exec.state, (void *)&ended);
    s->ws->exec.state = NULL; /* not exec's: the workspace's end must not free it */
    record_end(s, why);
}

static void test_end_hook_sees_exec_state(void **state)
{
    session_setup(3600 * 1000, 10000, hook_sees_exec);
    session_t *s = session_create("p", "c", NULL, 0);
    s->ws->exec.state = (struct exec_session *)&ended;
    session_end(s, SESSION_DELETED);
    assert_int_equal(ended.n, 1);
}

static void test_id_valid(void **state)
{
    assert_true(session_id_valid("0123456789abcdef0123456789abcdef"));
    session_t *s = session_create("p", "c", NULL, 0);
    assert_true(session_id_valid(s->id));
    assert_false(session_id_valid(""));
    assert_false(session_id_valid("0123456789abcdef0123456789abcde"));   /* 31 */
    assert_false(session_id_valid("0123456789abcdef0123456789abcdef0")); /* 33 */
    assert_false(session_id_valid("0123456789ABCDEF0123456789abcdef"));  /* upper case is not ours */
    assert_false(session_id_valid("0123456789abcdef0123456789abcde*"));
    assert_false(session_id_valid("../../../../etc/passwd-0123456789a"));
}

/* What the observer (the cluster) saw, in order: 'c'reate, 't'ouch, 'e'nd (with the reason's digit). */
static char seen[32];
static void seen_add(char c)
{
    size_t n = strlen(seen);
    if (n + 1 < sizeof(seen))
        seen[n] = c;
}
static void hook_create(session_t *s) { seen_add('c'); }
static void hook_touch(session_t *s) { seen_add('t'); }
static void hook_end(session_t *s, enum session_end_reason why)
{
    assert_null(session_find(s->id)); /* out of the table already, not yet freed */
    seen_add('e');
    seen_add((char)('0' + why));
}

/* The observer's hooks fire on create, adopt, touch and end, in that order; without hooks nothing is called. */
static void test_observer_hooks(void **state)
{
    static const session_hooks_t hooks = {hook_create, hook_touch, hook_end};
    memset(seen, 0, sizeof(seen));
    session_set_hooks(&hooks);
    session_t *s = session_create("2025-06-18", "c", NULL, 0);
    session_touch(s);
    session_end(s, SESSION_EXPIRED);
    s = session_adopt("00112233445566778899aabbccddeeff", "2025-06-18", NULL, NULL);
    session_end(s, SESSION_SHUTDOWN);
    session_set_hooks(NULL);
    s = session_create("2025-06-18", "c", NULL, 0);
    session_touch(s);
    session_end(s, SESSION_DELETED);
    assert_string_equal(seen, "cte1ce2");
}

static void test_adopt(void **state)
{
    const char *id = "00112233445566778899aabbccddeeff";
    session_t *s = session_adopt(id, "2025-06-18", "other-replica-client", NULL);
    assert_non_null(s);
    assert_string_equal(s->id, id);
    assert_string_equal(s->protocol, "2025-06-18");
    assert_string_equal(s->client, "other-replica-client");
    assert_ptr_equal(session_find(id), s);
    assert_int_equal(session_count(), 1);
    assert_int_equal(deadline_count(), 1); /* it expires like any other */
    /* held already, malformed, or over the cap: refused */
    assert_null(session_adopt(id, "2025-06-18", NULL, NULL));
    assert_null(session_adopt("nope", "2025-06-18", NULL, NULL));
    session_setup(3600 * 1000, 1, record_end);
    assert_null(session_adopt("ffeeddccbbaa99887766554433221100", "2025-06-18", NULL, NULL));
    session_end(s, SESSION_DELETED);
    assert_int_equal(ended.n, 1);
    assert_string_equal(ended.ids[0], id);
    s = session_adopt("ffeeddccbbaa99887766554433221100", "2025-03-26", NULL, NULL);
    assert_non_null(s);
    assert_string_equal(s->client, "");
}

static void test_max_sessions(void **state)
{
    session_setup(3600 * 1000, 3, record_end);
    session_t *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = session_create("p", "c", NULL, 0);
        assert_non_null(s[i]);
    }
    assert_null(session_create("p", "c", NULL, 0));
    assert_null(session_create("p", "c", NULL, 0));
    assert_int_equal(session_count(), 3);
    assert_int_equal(deadline_count(), 3);

    /* ending one makes room for one */
    session_end(s[1], SESSION_DELETED);
    session_t *again = session_create("p", "c", NULL, 0);
    assert_non_null(again);
    assert_null(session_create("p", "c", NULL, 0));
    assert_int_equal(session_count(), 3);

    /* a cap of zero refuses everything */
    session_end_all();
    session_setup(3600 * 1000, 0, record_end);
    assert_null(session_create("p", "c", NULL, 0));
    assert_int_equal(session_count(), 0);
}

/* --max-sessions-per-principal: one principal's cap leaves the others (and the anonymous) their room. */
static void test_max_sessions_per_principal(void **state)
{
    session_setup(3600 * 1000, 10, record_end);
    session_t *a1 = session_create("p", "c", "alice", 2), *a2 = session_create("p", "c", "alice", 2);
    assert_non_null(a1);
    assert_non_null(a2);
    assert_null(session_create("p", "c", "alice", 2));
    assert_non_null(session_create("p", "c", "bob", 2));
    assert_non_null(session_create("p", "c", NULL, 2));
    assert_int_equal(session_count_principal("alice"), 2);
    assert_int_equal(session_count_principal("bob"), 1);
    assert_true(session_usable(a1, "alice"));
    assert_false(session_usable(a1, "bob"));
    assert_false(session_usable(a1, NULL));
    assert_string_equal(a1->tenant, "alice");
    assert_string_equal(a1->ws->tenant, "alice");
    assert_ptr_equal(workspace_find("alice", a1->ws->id), a1->ws);
    assert_null(workspace_find("bob", a1->ws->id)); /* another tenant's: as unknown */
    session_end(a1, SESSION_DELETED);
    assert_non_null(session_create("p", "c", "alice", 2));
}

static void test_end_all(void **state)
{
    char ids[5][SESSION_ID_LEN + 1];
    for (int i = 0; i < 5; i++)
        memcpy(ids[i], session_create("p", "c", NULL, 0)->id, SESSION_ID_LEN + 1);
    assert_int_equal(session_count(), 5);
    session_end_all();
    assert_int_equal(session_count(), 0);
    assert_int_equal(deadline_count(), 0);
    assert_int_equal(ended.n, 5);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(ended.why[i], SESSION_SHUTDOWN);
        assert_null(session_find(ids[i]));
        int seen = 0;
        for (int k = 0; k < 5; k++)
            seen += strcmp(ended.ids[k], ids[i]) == 0;
        assert_int_equal(seen, 1);
    }
    /* idempotent on an empty table */
    session_end_all();
    assert_int_equal(ended.n, 5);
}

/* Runs the loop until `pred` holds or `ms` pass; returns the predicate. */
static int run_loop_until(int (*pred)(void), uint64_t ms)
{
    uint64_t until = util_now_ms() + ms;
    while (!pred() && util_now_ms() < until)
        h2o_evloop_run(loop, 10);
    return pred();
}

static int one_ended(void)
{
    return ended.n >= 1;
}

static int two_ended(void)
{
    return ended.n >= 2;
}

static void test_idle_expiry(void **state)
{
    session_setup(60, 100, record_end);
    session_t *s = session_create("p", "c", NULL, 0);
    char id[SESSION_ID_LEN + 1];
    memcpy(id, s->id, sizeof(id));
    uint64_t start = util_now_ms();
    assert_true(run_loop_until(one_ended, 3000));
    assert_true(util_now_ms() - start >= 55);
    assert_int_equal(ended.why[0], SESSION_EXPIRED);
    assert_string_equal(ended.ids[0], id);
    assert_null(session_find(id));
    assert_int_equal(session_count(), 0);
    assert_int_equal(deadline_count(), 0);
}

static int no_workspace_left(void)
{
    return workspace_count() == 0;
}

/* Workspace handles: the per-tenant cap on unpinned ones, and their idle expiry (--workspace-ttl). */
static void test_workspace_cap_and_expiry(void **state)
{
    char err[200];
    workspace_setup(60, 2);
    workspace_t *a = workspace_create("alice", "alice", 0, err, sizeof(err));
    workspace_t *b = workspace_create("alice", "alice", 0, err, sizeof(err));
    assert_non_null(a);
    assert_non_null(b);
    assert_string_not_equal(a->id, b->id);
    assert_memory_equal(a->id, "w-", 2);
    assert_null(workspace_create("alice", "alice", 0, err, sizeof(err)));
    assert_non_null(strstr(err, "--max-workspaces-per-principal"));
    assert_non_null(workspace_create("alice", "alice", 1, err, sizeof(err))); /* pinned ones are not counted */
    assert_int_equal(workspace_count_tenant("alice"), 2);
    workspace_end_all();
    a = workspace_create("bob", "bob", 0, err, sizeof(err));
    uint64_t start = util_now_ms();
    assert_true(run_loop_until(no_workspace_left, 3000));
    assert_true(util_now_ms() - start >= 55);
    assert_int_equal(deadline_count(), 0);
    workspace_setup(3600 * 1000, 0);
}

/* Issue 13: a session no request used since initialize expires after the init TTL; one that served a request does not. */
static void test_init_ttl(void **state)
{
    session_setup(3600 * 1000, 100, record_end);
    session_set_init_ttl(80);
    session_t *idle = session_create("p", "idle", NULL, 0);
    session_t *used = session_create("p", "used", NULL, 0);
    session_t *notified = session_create("p", "notified", NULL, 0);
    char idle_id[SESSION_ID_LEN + 1], used_id[SESSION_ID_LEN + 1], notified_id[SESSION_ID_LEN + 1];
    memcpy(idle_id, idle->id, sizeof(idle_id));
    memcpy(used_id, used->id, sizeof(used_id));
    memcpy(notified_id, notified->id, sizeof(notified_id));
    session_touch(used);
    session_note_request(used);
    session_touch(notified); /* a notification touches, but is no request */
    assert_true(run_loop_until(two_ended, 5000));
    session_set_init_ttl(60 * 1000);
    assert_int_equal(ended.why[0], SESSION_EXPIRED);
    assert_true(!strcmp(ended.ids[0], idle_id) || !strcmp(ended.ids[0], notified_id));
    assert_true(!strcmp(ended.ids[1], idle_id) || !strcmp(ended.ids[1], notified_id));
    assert_ptr_equal(session_find(used_id), used);
    session_end_all();
}

static void test_touch_postpones_expiry(void **state)
{
    session_setup(250, 100, record_end);
    session_t *busy = session_create("p", "busy", NULL, 0);
    session_t *idle = session_create("p", "idle", NULL, 0);
    char busy_id[SESSION_ID_LEN + 1], idle_id[SESSION_ID_LEN + 1];
    memcpy(busy_id, busy->id, sizeof(busy_id));
    memcpy(idle_id, idle->id, sizeof(idle_id));

    /* keep `busy` used for longer than one TTL */
    uint64_t until = util_now_ms() + 600;
    while (util_now_ms() < until) {
        h2o_evloop_run(loop, 10);
        if (session_find(busy_id) != NULL)
            session_touch(busy);
    }
    assert_int_equal(ended.n, 1);
    assert_string_equal(ended.ids[0], idle_id);
    assert_ptr_equal(session_find(busy_id), busy);

    /* left alone, it expires too */
    assert_true(run_loop_until(two_ended, 3000));
    assert_string_equal(ended.ids[1], busy_id);
    assert_int_equal(ended.why[1], SESSION_EXPIRED);
    assert_int_equal(session_count(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_create, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_null_client_and_long_strings, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ids_unique, setup, teardown),
        cmocka_unit_test_setup_teardown(test_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_without_hook, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_hook_sees_exec_state, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_adopt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_observer_hooks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_sessions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_sessions_per_principal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workspace_cap_and_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_end_all, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_touch_postpones_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_ttl, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
