/*
 * Unit tests for egress.c (issue 14): domain patterns, the operator's
 * ceiling, deny over allow, and the address checks after resolution; and
 * egress_dns.c's c-ares lookups on a real loop (/etc/hosts answers, the cap
 * on lookups in flight, cancellation).
 * A fake DNS server on a loopback UDP port (watched by the same loop) answers
 * or stays silent, so the c-ares socket path and the timeouts are exercised
 * without the host's resolver.
 * unit-links: core/util core/log core/config core/clock core/deadline core/metrics exec/egress_proxy
 */
#include "../../src/exec/egress.c"
#include "../../src/exec/egress_dns.c"
#include "core/deadline.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static h2o_loop_t *loop;

/* Sets up the module as main() would, with `ceiling` (NULL: none given) and opened ranges. */
static void setup(const char *ceiling, const char *cidr)
{
    char *c[1] = {(char *)ceiling}, *o[1] = {(char *)cidr}, *pins[1] = {"pinned.test=127.0.0.2"};
    char err[256];
    egress_settings_t s = {c, ceiling != NULL, o, cidr != NULL, pins, 1, 4, 1, 1, "127.0.0.1", 8080, "10.1.2.3", 6379};
    assert_int_equal(egress_init(loop, &s, err, sizeof(err)), 0);
}

/* A policy from comma-free entries; "-name" is a denial. */
static egress_policy_t *policy(const char *const *entries)
{
    egress_policy_t *p = NULL;
    char err[256];
    for (int i = 0; entries[i] != NULL; i++)
        assert_int_equal(egress_policy_add(&p, entries[i][0] == '-', entries[i] + (entries[i][0] == '-'), err, sizeof(err)), 0);
    return p;
}

static void test_patterns(void **state)
{
    setup(NULL, NULL);
    static const char *const e[] = {"pypi.org", "*.pythonhosted.org", "registry.npmjs.org:443", "-evil.pythonhosted.org", NULL};
    egress_policy_t *p = policy(e);
    assert_null(egress_decide_name(p, "pypi.org", 443));
    assert_null(egress_decide_name(p, "PyPI.org.", 80)); /* case and the root dot do not matter */
    assert_null(egress_decide_name(p, "files.pythonhosted.org", 443));
    assert_string_equal(egress_decide_name(p, "pythonhosted.org", 443), "not allowed"); /* the wildcard is below only */
    assert_string_equal(egress_decide_name(p, "xpythonhosted.org", 443), "not allowed");
    assert_string_equal(egress_decide_name(p, "evil.pythonhosted.org", 443), "denied"); /* deny wins */
    assert_null(egress_decide_name(p, "registry.npmjs.org", 443));
    assert_string_equal(egress_decide_name(p, "registry.npmjs.org", 80), "not allowed"); /* port rule */
    assert_string_equal(egress_decide_name(p, "pypi.org.evil.com", 443), "not allowed");
    assert_string_equal(egress_decide_name(p, "", 443), "not allowed");
    egress_policy_free(p);
    char err[256];
    egress_policy_t *q = NULL;
    assert_int_equal(egress_policy_add(&q, 0, "a b", err, sizeof(err)), -1);
    assert_int_equal(egress_policy_add(&q, 0, "x.com:0", err, sizeof(err)), -1);
    assert_int_equal(egress_policy_add(&q, 0, "*.", err, sizeof(err)), -1);
    assert_int_equal(egress_policy_add(&q, 0, "[::1", err, sizeof(err)), -1);
    assert_int_equal(egress_policy_add(&q, 0, "a..b", err, sizeof(err)), -1); /* empty labels never match */
    assert_int_equal(egress_policy_add(&q, 0, ".a", err, sizeof(err)), -1);
    assert_int_equal(egress_policy_add(&q, 0, "root.example.", err, sizeof(err)), 0);
    assert_null(egress_decide_name(q, "root.example", 80)); /* the root dot is dropped on both sides */
    assert_int_equal(egress_policy_add(&q, 0, "[2001:db8::1]:443", err, sizeof(err)), 0);
    assert_null(egress_decide_name(q, "2001:db8::1", 443));
    egress_policy_free(q);
}

static void test_ceiling(void **state)
{
    setup("*.example.com", NULL);
    char err[256];
    egress_policy_t *p = NULL;
    assert_int_equal(egress_policy_add(&p, 0, "a.example.com", err, sizeof(err)), 0);
    assert_int_equal(egress_policy_add(&p, 0, "*.b.example.com", err, sizeof(err)), 0);
    assert_int_equal(egress_policy_add(&p, 0, "*.example.com:443", err, sizeof(err)), 0);
    assert_int_equal(egress_policy_add(&p, 0, "example.org", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--egress-domains"));
    assert_int_equal(egress_policy_add(&p, 0, "*", err, sizeof(err)), -1);
    assert_int_equal(egress_policy_add(&p, 0, "example.com", err, sizeof(err)), -1); /* the wildcard is below only */
    assert_int_equal(egress_policy_add(&p, 1, "anything.org", err, sizeof(err)), 0); /* denials are never too wide */
    egress_policy_free(p);
    setup("example.com:443", NULL);
    p = NULL;
    assert_int_equal(egress_policy_add(&p, 0, "example.com", err, sizeof(err)), -1); /* any port is wider than 443 */
    assert_int_equal(egress_policy_add(&p, 0, "example.com:443", err, sizeof(err)), 0);
    assert_string_equal(egress_decide_name(p, "example.com", 80), "ceiling");
    egress_policy_free(p);
}

/* egress_address_ok() for a numeric address and port. */
static int ok(const char *addr, int port)
{
    struct sockaddr_storage ss;
    assert_int_equal(egress_numeric_addr(addr, port, &ss), 0);
    return egress_address_ok((struct sockaddr *)&ss);
}

static void test_addresses(void **state)
{
    setup(NULL, "127.0.0.2/32");
    assert_true(ok("93.184.216.34", 443));
    assert_true(ok("2606:2800:220:1:248:1893:25c8:1946", 443));
    static const char *const refused[] = {"127.0.0.1", "127.0.0.3", "10.0.0.1", "172.16.5.5", "172.31.255.255",
                                          "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
                                          "::1", "::", "fe80::1", "fc00::1", "fd00:ec2::254", "::ffff:127.0.0.1",
                                          "::ffff:10.0.0.1", NULL};
    for (int i = 0; refused[i] != NULL; i++)
        if (ok(refused[i], 80))
            fail_msg("%s was not refused", refused[i]);
    assert_true(ok("172.32.0.1", 80));
    assert_true(ok("127.0.0.2", 80));        /* opened by --egress-allow-cidr */
    assert_false(ok("10.1.2.3", 6379));      /* Redis, whatever is opened */
    assert_true(ok("8.8.8.8", 8080));
    setup(NULL, "0.0.0.0/0");
    assert_false(ok("127.0.0.1", 8080));     /* the server's own listener stays closed */
    assert_false(ok("10.1.2.3", 6379));
    assert_true(ok("10.1.2.3", 6380));
    struct sockaddr_storage ss;
    assert_int_equal(egress_pinned("PINNED.test", 443, &ss), 0);
    assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 443);
    assert_int_equal(egress_pinned("other.test", 443, &ss), -1);
}

static void test_bad_settings(void **state)
{
    char *bad[1] = {"10.0.0.0/33"}, *pin[1] = {"name=not-an-address"}, err[256];
    egress_settings_t s = {NULL, 0, bad, 1, NULL, 0, 4, 1, 5, NULL, 0, NULL, 0};
    assert_int_equal(egress_init(loop, &s, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--egress-allow-cidr"));
    egress_settings_t t = {NULL, 0, NULL, 0, pin, 1, 4, 1, 5, NULL, 0, NULL, 0};
    assert_int_equal(egress_init(loop, &t, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "--egress-resolve"));
}

/* ---------------------------------------------------------------- egress_dns.c (c-ares) */

static struct {
    int calls, status, n;
    struct sockaddr_storage first;
} answer;

static void on_answer(void *arg, int status, const struct sockaddr_storage *addrs, int n)
{
    answer.calls++;
    answer.status = status;
    answer.n = n;
    if (n > 0)
        answer.first = addrs[0];
}

/* Runs the loop until `done` holds (the answers come from c-ares on the loop). */
static void run_until(const int *done)
{
    for (int i = 0; i < 200 && !*done; i++)
        h2o_evloop_run(loop, 50);
}

static void test_dns_hosts_file(void **state)
{
    setup(NULL, NULL); /* --egress-max-lookups 1 */
    memset(&answer, 0, sizeof(answer));
    egress_lookup_t *l = egress_dns_lookup("localhost", 8080, on_answer, NULL);
    assert_non_null(l);
    assert_int_equal(answer.calls, 0); /* never answered inside the call */
    assert_null(egress_dns_lookup("localhost", 80, on_answer, NULL)); /* the cap: one in flight */
    run_until(&answer.calls);
    assert_int_equal(answer.calls, 1);
    assert_int_equal(answer.status, EGRESS_DNS_OK);
    assert_true(answer.n >= 1);
    assert_int_equal(ntohs(((struct sockaddr_in *)&answer.first)->sin_port), 8080);
    assert_false(egress_address_ok((struct sockaddr *)&answer.first)); /* loopback is refused */
    assert_int_equal(egress_dns_in_flight(), 0);
}

static void test_dns_cancel(void **state)
{
    setup(NULL, NULL);
    memset(&answer, 0, sizeof(answer));
    egress_lookup_t *l = egress_dns_lookup("localhost", 443, on_answer, NULL);
    assert_non_null(l);
    egress_dns_cancel(l);
    for (int i = 0; i < 200 && egress_dns_in_flight() > 0; i++)
        h2o_evloop_run(loop, 50);
    assert_int_equal(answer.calls, 0);
    assert_int_equal(egress_dns_in_flight(), 0);
    assert_non_null(egress_dns_lookup("localhost", 443, on_answer, NULL)); /* the slot came back */
    run_until(&answer.calls);
    assert_int_equal(answer.status, EGRESS_DNS_OK);
}

/* The fake DNS server: A queries get 198.51.100.7 (when answering), others no data. */
static struct {
    int answering;
    int queries;
    int port;
    h2o_socket_t *sock;
} fake_dns;

/* A query arrived at the fake server: answer it from the question (or not). */
static void on_fake_dns(h2o_socket_t *sock, const char *err)
{
    unsigned char q[512], r[600];
    struct sockaddr_storage from;
    socklen_t fl = sizeof(from);
    ssize_t n = recvfrom(h2o_socket_get_fd(sock), q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
    if (n < 17)
        return;
    fake_dns.queries++;
    if (!fake_dns.answering)
        return;
    size_t o = 12;
    while (o < (size_t)n && q[o] != 0)
        o += q[o] + 1;
    size_t qend = o + 5; /* the root label, QTYPE, QCLASS */
    if (qend > (size_t)n)
        return;
    int qtype = q[o + 1] << 8 | q[o + 2];
    memcpy(r, q, qend);
    r[2] = 0x81, r[3] = 0x80;                   /* a response, recursion available, NOERROR */
    r[6] = 0, r[7] = qtype == 1;                /* one answer for A */
    r[8] = r[9] = r[10] = r[11] = 0;
    size_t len = qend;
    if (qtype == 1) {
        static const unsigned char a[] = {0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 198, 51, 100, 7};
        memcpy(r + len, a, sizeof(a));
        len += sizeof(a);
    }
    sendto(h2o_socket_get_fd(sock), r, len, 0, (struct sockaddr *)&from, fl);
}

/* Starts the fake DNS server and makes it c-ares's only server. */
static void fake_dns_start(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sin);
    assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &sl), 0);
    fake_dns.port = ntohs(sin.sin_port);
    h2o_socket_t *sock = h2o_evloop_socket_create((h2o_evloop_t *)loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    h2o_socket_read_start(sock, on_fake_dns);
    fake_dns.sock = sock;
    char csv[64];
    snprintf(csv, sizeof(csv), "127.0.0.1:%d", fake_dns.port);
    assert_int_equal(ares_set_servers_ports_csv(dns.channel, csv), ARES_SUCCESS);
}

static void test_dns_server_answer(void **state)
{
    setup(NULL, NULL);
    fake_dns_start();
    fake_dns.answering = 1;
    memset(&answer, 0, sizeof(answer));
    assert_non_null(egress_dns_lookup("fake.invalid", 443, on_answer, NULL));
    run_until(&answer.calls);
    assert_int_equal(answer.status, EGRESS_DNS_OK);
    assert_int_equal(answer.n, 1);
    struct sockaddr_in *sin = (struct sockaddr_in *)&answer.first;
    assert_int_equal(ntohl(sin->sin_addr.s_addr), 0xc6336407); /* 198.51.100.7 */
    assert_int_equal(ntohs(sin->sin_port), 443);
    assert_true(fake_dns.queries >= 1);
    assert_true(egress_address_ok((struct sockaddr *)sin)); /* a documentation range, not refused */
}

static void test_dns_timeout(void **state)
{
    setup(NULL, NULL); /* --egress-resolve-timeout 1 */
    fake_dns.answering = 0;
    fake_dns.queries = 0;
    memset(&answer, 0, sizeof(answer));
    assert_non_null(egress_dns_lookup("silent.invalid", 80, on_answer, NULL));
    run_until(&answer.calls);
    assert_int_equal(answer.calls, 1);
    assert_int_equal(answer.status, EGRESS_DNS_TIMEOUT);
    assert_true(fake_dns.queries >= 1);
    /* the slot is held until c-ares itself gives up (its tries take longer than our deadline) */
    assert_int_equal(egress_dns_in_flight(), 1);
    assert_null(egress_dns_lookup("other.invalid", 80, on_answer, NULL));
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        h2o_evloop_run(loop, 50);
        gone = egress_dns_in_flight() == 0;
    }
    assert_true(gone);
    assert_int_equal(answer.calls, 1); /* c-ares's late failure reached nobody */
}

int main(void)
{
    loop = h2o_evloop_create();
    deadline_init((h2o_evloop_t *)loop);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patterns),
        cmocka_unit_test(test_ceiling),
        cmocka_unit_test(test_addresses),
        cmocka_unit_test(test_bad_settings),
        cmocka_unit_test(test_dns_hosts_file),
        cmocka_unit_test(test_dns_cancel),
        cmocka_unit_test(test_dns_server_answer),
        cmocka_unit_test(test_dns_timeout),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    if (fake_dns.sock != NULL)
        h2o_socket_close(fake_dns.sock);
    egress_cleanup(); /* the channel and its watches */
    h2o_evloop_run(loop, 0); /* h2o frees the closed sockets */
    return failed;
}
