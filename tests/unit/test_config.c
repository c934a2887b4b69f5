/*
 * Unit tests for src/config.c: defaults, environment, flags (which win), the
 * range and format errors, --help / --version, lists, cross-checks and the
 * redacted Redis URL.
 */
#include "../../src/core/config.c"
#include "core/util.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

/* The default replica id: this host's name and the port. */
static const char *expected_replica(int port)
{
    static char buf[300];
    char hn[256] = "";
    gethostname(hn, sizeof(hn) - 1);
    snprintf(buf, sizeof(buf), "%s:%d", hn, port);
    return buf;
}

static char err[512];
static char out[8192];
static config_t cfg;

static char *no_env[] = {NULL};

/* Runs config_parse on a NULL-terminated argv (argv[0] included). */
static int parse(char **argv, char **envp)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    config_free(&cfg);
    err[0] = out[0] = '\0';
    return config_parse(&cfg, argc, argv, envp, err, sizeof(err), out, sizeof(out));
}

#define PARSE(envp, ...) parse((char *[]){"mcp-sandboxd", __VA_ARGS__, NULL}, envp)
#define PARSE0(envp) parse((char *[]){"mcp-sandboxd", NULL}, envp)

/* Expects CONFIG_ERROR with an error mentioning every given fragment. */
static void expect_error(int rc, const char *a, const char *b, const char *c)
{
    if (rc != CONFIG_ERROR)
        fail_msg("expected CONFIG_ERROR, got %d (err '%s')", rc, err);
    const char *parts[] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (parts[i] != NULL && strstr(err, parts[i]) == NULL)
            fail_msg("error '%s' does not mention '%s'", err, parts[i]);
}

static int teardown(void **state)
{
    config_free(&cfg);
    return 0;
}

/* ---------------------------------------------------------------- defaults and sources */

static void test_defaults(void **state)
{
    assert_int_equal(PARSE0(no_env), CONFIG_OK);
    assert_string_equal(cfg.host, "127.0.0.1");
    assert_int_equal(cfg.port, 8080);
    assert_string_equal(cfg.token, "");
    assert_string_equal(cfg.redis_url, "");
    assert_int_equal(cfg.max_concurrent, 10);
    assert_int_equal(cfg.max_per_session, 5);
    assert_int_equal(cfg.timeout, 300);
    assert_int_equal(cfg.max_timeout, 3600);
    assert_string_equal(cfg.log_file, "");
    assert_int_equal(cfg.log_level, LOG_INFO);
    assert_int_equal(cfg.max_body, 4194304);
    assert_int_equal(cfg.session_ttl, 3600);
    assert_int_equal(cfg.max_sessions, 10000);
    assert_int_equal(cfg.n_allowed_origins, 0);
    assert_null(cfg.allowed_origins[0]);
    assert_string_equal(cfg.workspace_root, "/tmp/mcp-sandboxd");
    assert_int_equal(cfg.allow_network, 0);
    assert_string_equal(cfg.sandbox_user, "nobody");
    assert_int_equal(cfg.n_deny_read, 0);
    assert_int_equal(cfg.isolation_none, 0);
    assert_int_equal(cfg.retention, 3600);
    assert_int_equal(cfg.wait_deadline, 55);
    assert_int_equal(cfg.max_events, 250000);
    assert_int_equal(cfg.max_output_bytes, 64 << 20);
    assert_int_equal(cfg.max_retained_session, 128 << 20);
    assert_int_equal(cfg.max_retained_total, INT64_C(1) << 30);
    assert_int_equal(cfg.kill_grace_ms, 2000);
    assert_int_equal(cfg.shutdown_grace, 10);
    assert_int_equal(cfg.mem_default_mb, 2048);
    assert_int_equal(cfg.mem_max_mb, 8192);
    assert_int_equal(cfg.cpu_default_s, 600);
    assert_int_equal(cfg.cpu_max_s, 3600);
    assert_int_equal(cfg.fsize_default_mb, 1024);
    assert_int_equal(cfg.fsize_max_mb, 4096);
    assert_int_equal(cfg.nproc_default, 512);
    assert_int_equal(cfg.nproc_max, 1024);
    assert_int_equal(cfg.cgroups, 1);
    assert_string_equal(cfg.cgroup_root, "/sys/fs/cgroup");
    assert_int_equal(cfg.cpu_percent, 0);
    assert_int_equal(cfg.redis_ttl, 3600);
    assert_int_equal(cfg.mirror_queue_bytes, 64 << 20);
    assert_string_equal(cfg.replica, expected_replica(8080));
    assert_int_equal(cfg.heartbeat, 2);

    /* a NULL environment is the same as an empty one */
    assert_int_equal(PARSE0(NULL), CONFIG_OK);
    assert_int_equal(cfg.port, 8080);
}

static void test_env_applied(void **state)
{
    char *env[] = {"PATH=/usr/bin",
                   "SANDBOX_HOST=0.0.0.0",
                   "SANDBOX_PORT=9000",
                   "SANDBOX_AUTH_TOKEN=s3cret",
                   "REDIS_URL=redis://:pw@localhost:6379/2",
                   "SANDBOX_MAX_CONCURRENT=3",
                   "SANDBOX_LOG_LEVEL=debug",
                   "SANDBOX_MAX_BODY=64K",
                   "SANDBOX_ALLOW_NETWORK=true",
                   "SANDBOX_DENY_READ=/srv/a, /srv/b",
                   "SANDBOX_ISOLATION=none",
                   "SANDBOX_WORKSPACE_ROOT=/var/tmp/ws",
                   NULL};
    assert_int_equal(PARSE0(env), CONFIG_OK);
    assert_string_equal(cfg.host, "0.0.0.0");
    assert_int_equal(cfg.port, 9000);
    assert_string_equal(cfg.token, "s3cret");
    assert_string_equal(cfg.redis_url, "redis://:pw@localhost:6379/2");
    assert_int_equal(cfg.max_concurrent, 3);
    assert_int_equal(cfg.log_level, LOG_DEBUG);
    assert_int_equal(cfg.max_body, 65536);
    assert_int_equal(cfg.allow_network, 1);
    assert_int_equal(cfg.n_deny_read, 2);
    assert_string_equal(cfg.deny_read[0], "/srv/a");
    assert_string_equal(cfg.deny_read[1], "/srv/b");
    assert_null(cfg.deny_read[2]);
    assert_int_equal(cfg.isolation_none, 1);
    assert_string_equal(cfg.workspace_root, "/var/tmp/ws");
    /* the replica id follows the effective port */
    assert_string_equal(cfg.replica, expected_replica(9000));
}

static void test_env_name_must_match_exactly(void **state)
{
    char *env[] = {"SANDBOX_PORTX=1", "XSANDBOX_PORT=2", "SANDBOX_PORT", "sandbox_port=3", NULL};
    assert_int_equal(PARSE0(env), CONFIG_OK);
    assert_int_equal(cfg.port, 8080);
}

static void test_flags_override_env(void **state)
{
    char *env[] = {"SANDBOX_PORT=9000", "SANDBOX_HOST=0.0.0.0", "SANDBOX_LOG_LEVEL=debug", NULL};
    assert_int_equal(PARSE(env, "--port", "9100", "--log-level", "warn"), CONFIG_OK);
    assert_int_equal(cfg.port, 9100);
    assert_int_equal(cfg.log_level, LOG_WARN);
    assert_string_equal(cfg.host, "0.0.0.0"); /* not overridden */

    /* the last of repeated flags wins */
    assert_int_equal(PARSE(no_env, "--port", "1", "--port", "2"), CONFIG_OK);
    assert_int_equal(cfg.port, 2);
}

static void test_flag_equals_form(void **state)
{
    assert_int_equal(PARSE(no_env, "--port=9001", "--host=::1", "--token=a=b", "--max-body=1M"), CONFIG_OK);
    assert_int_equal(cfg.port, 9001);
    assert_string_equal(cfg.host, "::1");
    assert_string_equal(cfg.token, "a=b"); /* only the first '=' separates */
    assert_int_equal(cfg.max_body, 1 << 20);

    /* an empty value after '=' is a value, not "take the next argument" */
    assert_int_equal(PARSE(no_env, "--token=", "--port", "1234"), CONFIG_OK);
    assert_string_equal(cfg.token, "");
    assert_int_equal(cfg.port, 1234);
    expect_error(PARSE(no_env, "--port="), "--port", "1..65535", NULL);
}

/* ---------------------------------------------------------------- errors */

static void test_port_errors(void **state)
{
    expect_error(PARSE(no_env, "--port", "abc"), "--port", "1..65535", "abc");
    expect_error(PARSE(no_env, "--port", "0"), "--port", "1..65535", NULL);
    expect_error(PARSE(no_env, "--port", "70000"), "--port", "1..65535", "70000");
    expect_error(PARSE(no_env, "--port", "-1"), "--port", "1..65535", NULL);
    expect_error(PARSE(no_env, "--port", "80x"), "--port", NULL, NULL);
    expect_error(PARSE(no_env, "--port", " 80"), "--port", NULL, NULL);
    expect_error(PARSE(no_env, "--port", ""), "--port", NULL, NULL);
    expect_error(PARSE(no_env, "--port", "8k"), "--port", NULL, NULL); /* no suffixes on plain integers */
    expect_error(PARSE(no_env, "--port", "99999999999999999999999"), "--port", NULL, NULL);
    /* edges of the range are fine */
    assert_int_equal(PARSE(no_env, "--port", "1"), CONFIG_OK);
    assert_int_equal(PARSE(no_env, "--port", "65535"), CONFIG_OK);
    assert_int_equal(cfg.port, 65535);
}

static void test_port_missing_value(void **state)
{
    expect_error(PARSE(no_env, "--port"), "--port", "value", NULL);
}

static void test_env_port_error_names_variable(void **state)
{
    char *env[] = {"SANDBOX_PORT=abc", NULL};
    expect_error(PARSE0(env), "SANDBOX_PORT", "1..65535", "abc");
    char *env2[] = {"SANDBOX_PORT=0", NULL};
    expect_error(PARSE0(env2), "SANDBOX_PORT", "1..65535", NULL);
}

static void test_negative_max_concurrent(void **state)
{
    expect_error(PARSE(no_env, "--max-concurrent", "-1"), "--max-concurrent", "1..10000", "-1");
    expect_error(PARSE(no_env, "--max-concurrent=-5"), "--max-concurrent", NULL, NULL);
    expect_error(PARSE(no_env, "--max-concurrent", "0"), "--max-concurrent", NULL, NULL);
    char *env[] = {"SANDBOX_MAX_CONCURRENT=-3", NULL};
    expect_error(PARSE0(env), "SANDBOX_MAX_CONCURRENT", NULL, NULL);
}

static void test_unknown_flag(void **state)
{
    expect_error(PARSE(no_env, "--bogus"), "--bogus", "unknown", NULL);
    expect_error(PARSE(no_env, "--bogus=1"), "--bogus", "unknown", NULL);
    expect_error(PARSE(no_env, "serve"), "serve", "unknown", NULL);
    expect_error(PARSE(no_env, "-p", "80"), "-p", "unknown", NULL);
    /* a prefix of a real flag is not that flag */
    expect_error(PARSE(no_env, "--po", "80"), "--po", "unknown", NULL);
    /* a very long name (longer than the internal name buffer) */
    char longflag[200];
    memset(longflag, 'x', sizeof(longflag) - 1);
    memcpy(longflag, "--", 2);
    longflag[sizeof(longflag) - 1] = '\0';
    expect_error(PARSE(no_env, longflag), "unknown", NULL, NULL);
    char longeq[200];
    snprintf(longeq, sizeof(longeq), "--port%0*d=80", 100, 0);
    expect_error(PARSE(no_env, longeq), "unknown", NULL, NULL);
}

static void test_help_and_version(void **state)
{
    assert_int_equal(PARSE(no_env, "--help"), CONFIG_EXIT);
    assert_non_null(strstr(out, "usage"));
    assert_non_null(strstr(out, "--port"));
    assert_non_null(strstr(out, "SANDBOX_PORT"));
    assert_non_null(strstr(out, "--version"));
    assert_int_equal(PARSE(no_env, "--version"), CONFIG_EXIT);
    assert_non_null(strstr(out, MCP_SANDBOXD_VERSION));
    /* --help wins over later arguments, even bad ones */
    assert_int_equal(PARSE(no_env, "--help", "--port", "abc"), CONFIG_EXIT);
    /* but not over earlier bad ones */
    expect_error(PARSE(no_env, "--port", "abc", "--help"), "--port", NULL, NULL);

    /* a NULL or small output buffer is safe */
    config_free(&cfg);
    assert_int_equal(config_parse(&cfg, 2, (char *[]){"x", "--help", NULL}, no_env, err, sizeof(err), NULL, 0), CONFIG_EXIT);
    char small[40];
    assert_int_equal(config_parse(&cfg, 2, (char *[]){"x", "--help", NULL}, no_env, err, sizeof(err), small, sizeof(small)),
                     CONFIG_EXIT);
    assert_true(strlen(small) < sizeof(small));
    assert_int_equal(config_parse(&cfg, 2, (char *[]){"x", "--version", NULL}, no_env, err, sizeof(err), small, 5),
                     CONFIG_EXIT);
    assert_true(strlen(small) < 5);
}

/* ---------------------------------------------------------------- sizes, bools, enums */

static void test_sizes(void **state)
{
    assert_int_equal(PARSE(no_env, "--max-body", "4M"), CONFIG_OK);
    assert_int_equal(cfg.max_body, 4194304);
    assert_int_equal(PARSE(no_env, "--max-body", "4m"), CONFIG_OK);
    assert_int_equal(cfg.max_body, 4194304);
    assert_int_equal(PARSE(no_env, "--max-body", "4MB"), CONFIG_OK);
    assert_int_equal(cfg.max_body, 4194304);
    assert_int_equal(PARSE(no_env, "--max-body", "4Mi"), CONFIG_OK);
    assert_int_equal(cfg.max_body, 4194304);
    assert_int_equal(PARSE(no_env, "--max-body", "2K"), CONFIG_OK);
    assert_int_equal(cfg.max_body, 2048);
    assert_int_equal(PARSE(no_env, "--max-body", "1G"), CONFIG_OK);
    assert_int_equal(cfg.max_body, INT64_C(1) << 30);
    assert_int_equal(PARSE(no_env, "--max-body", "5000"), CONFIG_OK);
    assert_int_equal(cfg.max_body, 5000);
    assert_int_equal(PARSE(no_env, "--mirror-queue-bytes", "16G"), CONFIG_OK);
    assert_int_equal(cfg.mirror_queue_bytes, INT64_C(16) << 30);

    expect_error(PARSE(no_env, "--max-body", "2G"), "--max-body", "1073741824", NULL);
    expect_error(PARSE(no_env, "--max-body", "512"), "--max-body", "1024", NULL);
    expect_error(PARSE(no_env, "--max-body", "4X"), "--max-body", NULL, NULL);
    expect_error(PARSE(no_env, "--max-body", "4MBB"), "--max-body", NULL, NULL);
    expect_error(PARSE(no_env, "--max-body", "M"), "--max-body", NULL, NULL);
    expect_error(PARSE(no_env, "--max-body", "99999999999G"), "--max-body", NULL, NULL);
}

/* --max-output-bytes is capped at 256M (it used to accept 4G, enough for a result to reach util_oom()) */
static void test_max_output_bytes_cap(void **state)
{
    assert_int_equal(PARSE(no_env, "--max-output-bytes", "256M"), CONFIG_OK);
    assert_int_equal(cfg.max_output_bytes, CONFIG_MAX_OUTPUT_BYTES);
    assert_int_equal(cfg.max_output_bytes, INT64_C(256) << 20);
    expect_error(PARSE(no_env, "--max-output-bytes", "268435457"), "--max-output-bytes", "268435456", "268435457");
    expect_error(PARSE(no_env, "--max-output-bytes", "1G"), "--max-output-bytes", "268435456", "1G");
    expect_error(PARSE(no_env, "--max-output-bytes", "4G"), "--max-output-bytes", "268435456", NULL);
    char *env[] = {"SANDBOX_MAX_OUTPUT_BYTES=512M", NULL};
    expect_error(PARSE0(env), "SANDBOX_MAX_OUTPUT_BYTES", "268435456", NULL);
}

static void test_negative_size_with_suffix(void **state)
{
    /* a negative size is out of range, not undefined behaviour (left shift of a negative value) */
    expect_error(PARSE(no_env, "--max-body", "-1K"), "--max-body", NULL, NULL);
    expect_error(PARSE(no_env, "--max-output-bytes", "-4M"), "--max-output-bytes", NULL, NULL);
}

static void test_bools_levels_isolation(void **state)
{
    assert_int_equal(PARSE(no_env, "--allow-network"), CONFIG_OK);
    assert_int_equal(cfg.allow_network, 1);
    assert_int_equal(PARSE(no_env, "--allow-network=false"), CONFIG_OK);
    assert_int_equal(cfg.allow_network, 0);
    assert_int_equal(PARSE(no_env, "--allow-network=YES"), CONFIG_OK);
    assert_int_equal(cfg.allow_network, 1);
    expect_error(PARSE(no_env, "--allow-network=maybe"), "--allow-network", "maybe", NULL);
    char *env[] = {"SANDBOX_ALLOW_NETWORK=1", NULL};
    assert_int_equal(PARSE(env, "--allow-network=off"), CONFIG_OK);
    assert_int_equal(cfg.allow_network, 0);

    assert_int_equal(PARSE(no_env, "--log-level", "error"), CONFIG_OK);
    assert_int_equal(cfg.log_level, LOG_ERROR);
    expect_error(PARSE(no_env, "--log-level", "verbose"), "--log-level", "verbose", NULL);

    assert_int_equal(PARSE(no_env, "--isolation", "none"), CONFIG_OK);
    assert_int_equal(cfg.isolation_none, 1);
    assert_int_equal(PARSE(no_env, "--isolation", "bwrap"), CONFIG_OK);
    assert_int_equal(cfg.isolation_none, 0);
    expect_error(PARSE(no_env, "--isolation", "docker"), "--isolation", "docker", NULL);
}

static void test_string_too_long(void **state)
{
    char host[400];
    memset(host, 'h', sizeof(host) - 1);
    host[sizeof(host) - 1] = '\0';
    expect_error(PARSE(no_env, "--host", host), "--host", "255", NULL);
    char user[70];
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    expect_error(PARSE(no_env, "--sandbox-user", user), "--sandbox-user", "63", NULL);
    user[63] = '\0';
    assert_int_equal(PARSE(no_env, "--sandbox-user", user), CONFIG_OK);
    assert_string_equal(cfg.sandbox_user, user);
}

/* ---------------------------------------------------------------- lists */

static void test_lists(void **state)
{
    assert_int_equal(PARSE(no_env, "--deny-read", "/a,/b"), CONFIG_OK);
    assert_int_equal(cfg.n_deny_read, 2);
    assert_string_equal(cfg.deny_read[0], "/a");
    assert_string_equal(cfg.deny_read[1], "/b");
    assert_null(cfg.deny_read[2]);

    /* repeated flags accumulate */
    assert_int_equal(PARSE(no_env, "--deny-read", "/a", "--deny-read=/b,/c"), CONFIG_OK);
    assert_int_equal(cfg.n_deny_read, 3);
    assert_string_equal(cfg.deny_read[0], "/a");
    assert_string_equal(cfg.deny_read[1], "/b");
    assert_string_equal(cfg.deny_read[2], "/c");

    /* blanks are trimmed, empty items skipped */
    assert_int_equal(PARSE(no_env, "--deny-read", " /a , ,/b ,"), CONFIG_OK);
    assert_int_equal(cfg.n_deny_read, 2);
    assert_string_equal(cfg.deny_read[0], "/a");
    assert_string_equal(cfg.deny_read[1], "/b");

    /* flags replace the environment's list */
    char *env[] = {"SANDBOX_DENY_READ=/x,/y", "SANDBOX_ALLOWED_ORIGINS=https://a.example", NULL};
    assert_int_equal(PARSE(env, "--deny-read", "/z"), CONFIG_OK);
    assert_int_equal(cfg.n_deny_read, 1);
    assert_string_equal(cfg.deny_read[0], "/z");
    assert_int_equal(cfg.n_allowed_origins, 1); /* the other list keeps its environment value */
    assert_string_equal(cfg.allowed_origins[0], "https://a.example");

    /* the two lists are independent */
    assert_int_equal(PARSE(no_env, "--allowed-origins", "https://x.example,http://localhost:3000", "--deny-read", "/q"),
                     CONFIG_OK);
    assert_int_equal(cfg.n_allowed_origins, 2);
    assert_string_equal(cfg.allowed_origins[1], "http://localhost:3000");
    assert_int_equal(cfg.n_deny_read, 1);

    /* an empty value clears */
    assert_int_equal(PARSE(env, "--deny-read="), CONFIG_OK);
    assert_int_equal(cfg.n_deny_read, 0);
}

static void test_list_cap(void **state)
{
    strbuf_t b = {0};
    for (int i = 0; i < CONFIG_MAX_LIST - 1; i++)
        strbuf_printf(&b, "%s/p%d", i ? "," : "", i);
    assert_int_equal(PARSE(no_env, "--deny-read", b.data), CONFIG_OK);
    assert_int_equal(cfg.n_deny_read, CONFIG_MAX_LIST - 1);
    assert_null(cfg.deny_read[CONFIG_MAX_LIST - 1]); /* still NULL-terminated */
    strbuf_puts(&b, ",/one-too-many");
    expect_error(PARSE(no_env, "--deny-read", b.data), "--deny-read", "31", NULL);
    strbuf_free(&b);
}

/* ---------------------------------------------------------------- cross-checks */

static void test_timeout_above_max(void **state)
{
    expect_error(PARSE(no_env, "--timeout", "4000"), "--timeout", "--max-timeout", NULL);
    expect_error(PARSE(no_env, "--max-timeout", "100"), "--timeout", "--max-timeout", NULL);
    assert_int_equal(PARSE(no_env, "--timeout", "4000", "--max-timeout", "5000"), CONFIG_OK);
    assert_int_equal(cfg.timeout, 4000);
    assert_int_equal(PARSE(no_env, "--timeout", "60", "--max-timeout", "60"), CONFIG_OK);
}

static void test_limit_defaults_above_caps(void **state)
{
    expect_error(PARSE(no_env, "--memory-mb", "9000"), "--memory-mb", "--max-", NULL);
    expect_error(PARSE(no_env, "--max-processes", "100"), "--processes", NULL, NULL);
    assert_int_equal(PARSE(no_env, "--memory-mb", "9000", "--max-memory-mb", "9000"), CONFIG_OK);
}

static void test_workspace_root_absolute(void **state)
{
    expect_error(PARSE(no_env, "--workspace-root", "relative/dir"), "--workspace-root", "absolute", NULL);
    expect_error(PARSE(no_env, "--workspace-root", ""), "--workspace-root", NULL, NULL);
}

static void test_replica(void **state)
{
    assert_int_equal(PARSE(no_env, "--host", "10.0.0.1", "--port", "7000"), CONFIG_OK);
    assert_string_equal(cfg.replica, expected_replica(7000));
    assert_int_equal(PARSE(no_env, "--replica-id", "node-a:8081"), CONFIG_OK);
    assert_string_equal(cfg.replica, "node-a:8081");
    /* it becomes part of Redis keys: no spaces, braces or wildcards */
    expect_error(PARSE(no_env, "--replica-id", "node a"), "--replica-id", "A-Z", NULL);
    expect_error(PARSE(no_env, "--replica-id", "node*"), "--replica-id", NULL, NULL);
    expect_error(PARSE(no_env, "--heartbeat", "0"), "--heartbeat", NULL, NULL);
    expect_error(PARSE(no_env, "--heartbeat", "61"), "--heartbeat", NULL, NULL);
    assert_int_equal(PARSE(no_env, "--heartbeat", "1"), CONFIG_OK);
    assert_int_equal(cfg.heartbeat, 1);
}

static void test_parse_into_global(void **state)
{
    /* what the other unit tests do: fill the global `config` with defaults */
    assert_int_equal(config_parse(&config, 1, (char *[]){"x", NULL}, no_env, err, sizeof(err), NULL, 0), CONFIG_OK);
    assert_int_equal(config.port, 8080);
    config_free(&config);
}

/* ---------------------------------------------------------------- redaction */

static void redact(const char *url, const char *expect)
{
    char buf[256];
    config_redacted_redis_url(url, buf, sizeof(buf));
    assert_string_equal(buf, expect);
}

static void test_redacted_redis_url(void **state)
{
    redact("redis://:s3cret@localhost:6379/0", "redis://***@localhost:6379/0");
    redact("redis://user:s3cret@redis.example:6380", "redis://***@redis.example:6380");
    redact("rediss://default:tok@host", "rediss://***@host");
    redact("redis://localhost:6379", "redis://localhost:6379");
    redact("unix:///run/redis.sock?db=2", "unix:///run/redis.sock?db=2");
    redact("", "");

    /* a short buffer truncates without overflowing */
    char small[12];
    config_redacted_redis_url("redis://:s3cret@localhost:6379/0", small, sizeof(small));
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_null(strstr(small, "s3cret"));
}

static void test_redacted_redis_url_at_in_password(void **state)
{
    /* the userinfo ends at the last '@' before the host: no part of the password may show */
    char buf[256];
    config_redacted_redis_url("redis://:p@ss@localhost:6379", buf, sizeof(buf));
    if (strstr(buf, "ss@") != NULL || strstr(buf, "p@") != NULL)
        fail_msg("password fragment leaked: %s", buf);
    assert_string_equal(buf, "redis://***@localhost:6379");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_defaults, teardown),
        cmocka_unit_test_teardown(test_env_applied, teardown),
        cmocka_unit_test_teardown(test_env_name_must_match_exactly, teardown),
        cmocka_unit_test_teardown(test_flags_override_env, teardown),
        cmocka_unit_test_teardown(test_flag_equals_form, teardown),
        cmocka_unit_test_teardown(test_port_errors, teardown),
        cmocka_unit_test_teardown(test_port_missing_value, teardown),
        cmocka_unit_test_teardown(test_env_port_error_names_variable, teardown),
        cmocka_unit_test_teardown(test_negative_max_concurrent, teardown),
        cmocka_unit_test_teardown(test_unknown_flag, teardown),
        cmocka_unit_test_teardown(test_help_and_version, teardown),
        cmocka_unit_test_teardown(test_sizes, teardown),
        cmocka_unit_test_teardown(test_bools_levels_isolation, teardown),
        cmocka_unit_test_teardown(test_string_too_long, teardown),
        cmocka_unit_test_teardown(test_lists, teardown),
        cmocka_unit_test_teardown(test_list_cap, teardown),
        cmocka_unit_test_teardown(test_timeout_above_max, teardown),
        cmocka_unit_test_teardown(test_limit_defaults_above_caps, teardown),
        cmocka_unit_test_teardown(test_workspace_root_absolute, teardown),
        cmocka_unit_test_teardown(test_replica, teardown),
        cmocka_unit_test_teardown(test_parse_into_global, teardown),
        cmocka_unit_test_teardown(test_redacted_redis_url, teardown),
        cmocka_unit_test_teardown(test_redacted_redis_url_at_in_password, teardown),
        /* last: a sanitizer abort here must not hide the other results */
        cmocka_unit_test_teardown(test_negative_size_with_suffix, teardown),
        cmocka_unit_test_teardown(test_max_output_bytes_cap, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
