/*
 * Unit tests for the sandbox: src/exec/sandbox_policy.c (linked) parsing (sandbox_policy_parse): the
 * server defaults, snake_case and camelCase keys, unknown fields, limits
 * against the caps, path checks and the network rules.
 */
#include "../../src/exec/sandbox.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

static sandbox_policy_t pol;
static char err[512];

static int group_setup(void **state)
{
    char *argv[] = {"mcp-sandboxd", NULL};
    char *envp[] = {NULL};
    if (config_parse(&config, 1, argv, envp, err, sizeof(err), NULL, 0) != CONFIG_OK)
        return -1;
    /* the parsing tests use write paths anywhere: the operator opened all of / here */
    config.allow_write_root[config.n_allow_write_root++] = strdup("/");
    return 0;
}

static int group_teardown(void **state)
{
    config_free(&config);
    return 0;
}

static int teardown(void **state)
{
    sandbox_policy_free(&pol);
    config.allow_network = 0;
    return 0;
}

/* Parses the JSON text `text` (NULL = no sandbox_config) into `pol`. */
static int parse(const char *text)
{
    sandbox_policy_free(&pol);
    err[0] = '\0';
    cJSON *j = NULL;
    if (text != NULL) {
        j = cJSON_Parse(text);
        if (j == NULL)
            fail_msg("test JSON does not parse: %s", text);
    }
    int rc = sandbox_policy_parse(j, &pol, err, sizeof(err));
    cJSON_Delete(j);
    if (rc == 0 && err[0] != '\0')
        fail_msg("success with an error message: %s", err);
    return rc;
}

/* Expects a refusal whose message mentions both fragments. */
static void refused(const char *text, const char *a, const char *b)
{
    if (parse(text) != -1)
        fail_msg("accepted: %s", text);
    if (a != NULL && strstr(err, a) == NULL)
        fail_msg("error '%s' for %s does not mention '%s'", err, text, a);
    if (b != NULL && strstr(err, b) == NULL)
        fail_msg("error '%s' for %s does not mention '%s'", err, text, b);
}

static void assert_defaults(void)
{
    assert_int_equal(pol.network_host, 0);
    assert_int_equal(pol.n_deny_read, 0);
    assert_int_equal(pol.n_allow_write, 0);
    assert_int_equal(pol.n_deny_write, 0);
    assert_int_equal(pol.mem_mb, config.mem_default_mb);
    assert_int_equal(pol.cpu_s, config.cpu_default_s);
    assert_int_equal(pol.fsize_mb, config.fsize_default_mb);
    assert_int_equal(pol.nproc, config.nproc_default);
}

/* ---------------------------------------------------------------- defaults */

static void test_defaults_from_config(void **state)
{
    assert_int_equal(parse(NULL), 0);
    assert_defaults();
    assert_int_equal(pol.mem_mb, 2048);
    assert_int_equal(pol.cpu_s, 600);
    assert_int_equal(pol.fsize_mb, 1024);
    assert_int_equal(pol.nproc, 512);
    assert_int_equal(parse("null"), 0);
    assert_defaults();
    assert_int_equal(parse("{}"), 0);
    assert_defaults();
    assert_int_equal(parse("{\"network\":null}"), 0);
    assert_defaults();
    assert_int_equal(parse("{\"network\":{},\"filesystem\":{},\"resource_limits\":{}}"), 0);
    assert_defaults();

    /* the defaults follow the configuration */
    int saved = config.mem_default_mb;
    config.mem_default_mb = 100;
    assert_int_equal(parse(NULL), 0);
    assert_int_equal(pol.mem_mb, 100);
    config.mem_default_mb = saved;
}

static void test_not_an_object(void **state)
{
    refused("[]", "sandbox_config", "object");
    refused("\"none\"", "sandbox_config", "object");
    refused("1", "sandbox_config", "object");
}

/* ---------------------------------------------------------------- keys */

static void test_snake_case(void **state)
{
    assert_int_equal(parse("{\"network\":{\"mode\":\"none\"},"
                           "\"filesystem\":{\"deny_read\":[\"/etc/secret\",\"/srv/keys\"],"
                           "\"allow_write\":[\"/data\"],\"deny_write\":[\"/data/ro\"]},"
                           "\"resource_limits\":{\"max_memory_mb\":512,\"max_cpu_seconds\":10,"
                           "\"max_file_size_mb\":5,\"max_processes\":20}}"),
                     0);
    assert_int_equal(pol.network_host, 0);
    assert_int_equal(pol.n_deny_read, 2);
    assert_string_equal(pol.deny_read[0], "/etc/secret");
    assert_string_equal(pol.deny_read[1], "/srv/keys");
    assert_int_equal(pol.n_allow_write, 1);
    assert_string_equal(pol.allow_write[0], "/data");
    assert_int_equal(pol.n_deny_write, 1);
    assert_string_equal(pol.deny_write[0], "/data/ro");
    assert_int_equal(pol.mem_mb, 512);
    assert_int_equal(pol.cpu_s, 10);
    assert_int_equal(pol.fsize_mb, 5);
    assert_int_equal(pol.nproc, 20);
}

static void test_camel_case(void **state)
{
    assert_int_equal(parse("{\"network\":{\"mode\":\"none\"},"
                           "\"filesystem\":{\"denyRead\":[\"/etc/secret\"],"
                           "\"allowWrite\":[\"/data\"],\"denyWrite\":[\"/data/ro\"]},"
                           "\"resourceLimits\":{\"maxMemoryMb\":256,\"maxCpuSeconds\":11,"
                           "\"maxFileSizeMb\":6,\"maxProcesses\":21}}"),
                     0);
    assert_int_equal(pol.n_deny_read, 1);
    assert_string_equal(pol.deny_read[0], "/etc/secret");
    assert_int_equal(pol.n_allow_write, 1);
    assert_int_equal(pol.n_deny_write, 1);
    assert_int_equal(pol.mem_mb, 256);
    assert_int_equal(pol.cpu_s, 11);
    assert_int_equal(pol.fsize_mb, 6);
    assert_int_equal(pol.nproc, 21);

    /* "MB" spelled upper-case */
    assert_int_equal(parse("{\"resourceLimits\":{\"maxMemoryMB\":300,\"maxFileSizeMB\":7}}"), 0);
    assert_int_equal(pol.mem_mb, 300);
    assert_int_equal(pol.fsize_mb, 7);

    /* mixed within one object */
    assert_int_equal(parse("{\"resource_limits\":{\"maxMemoryMb\":64,\"max_processes\":9}}"), 0);
    assert_int_equal(pol.mem_mb, 64);
    assert_int_equal(pol.nproc, 9);
    assert_int_equal(pol.cpu_s, config.cpu_default_s);
}

static void test_unknown_fields_named(void **state)
{
    refused("{\"sandbox\":{}}", "'sandbox'", "known:");
    refused("{\"network\":{\"proxy\":\"http://x\"}}", "network", "'proxy'");
    refused("{\"filesystem\":{\"readOnly\":[\"/x\"]}}", "filesystem", "'readOnly'");
    refused("{\"resource_limits\":{\"max_gpus\":1}}", "resource_limits", "'max_gpus'");
    refused("{\"resourceLimits\":{\"maxThreads\":1}}", "resource_limits", "'maxThreads'");
    /* an unknown field is refused even after valid ones */
    refused("{\"network\":{\"mode\":\"none\"},\"timeout\":5}", "'timeout'", NULL);
}

static void test_section_types(void **state)
{
    refused("{\"network\":\"host\"}", "sandbox_config.network", "object");
    refused("{\"filesystem\":[]}", "sandbox_config.filesystem", "object");
    refused("{\"resource_limits\":5}", "sandbox_config.resource_limits", "object");
    refused("{\"filesystem\":{\"deny_read\":\"/etc\"}}", "filesystem.deny_read", "array");
    refused("{\"filesystem\":{\"allow_write\":[1]}}", "filesystem.allow_write", "strings");
    refused("{\"filesystem\":{\"deny_write\":[null]}}", "filesystem.deny_write", "strings");
}

/* ---------------------------------------------------------------- limits */

static void test_limits_above_caps(void **state)
{
    refused("{\"resource_limits\":{\"max_memory_mb\":8193}}", "max_memory_mb", "8192");
    refused("{\"resource_limits\":{\"max_cpu_seconds\":3601}}", "max_cpu_seconds", "3600");
    refused("{\"resource_limits\":{\"max_file_size_mb\":4097}}", "max_file_size_mb", "4096");
    refused("{\"resource_limits\":{\"max_processes\":1025}}", "max_processes", "1024");
    refused("{\"resourceLimits\":{\"maxMemoryMb\":100000}}", "max_memory_mb", "8192");

    /* the caps themselves are allowed */
    assert_int_equal(parse("{\"resource_limits\":{\"max_memory_mb\":8192,\"max_cpu_seconds\":3600,"
                           "\"max_file_size_mb\":4096,\"max_processes\":1024}}"),
                     0);
    assert_int_equal(pol.mem_mb, 8192);
    assert_int_equal(pol.cpu_s, 3600);
    assert_int_equal(pol.fsize_mb, 4096);
    assert_int_equal(pol.nproc, 1024);

    /* the caps follow the configuration */
    int saved = config.cpu_max_s;
    config.cpu_max_s = 30;
    refused("{\"resource_limits\":{\"max_cpu_seconds\":31}}", "max_cpu_seconds", "30");
    config.cpu_max_s = saved;
}

static void test_limits_not_positive_integers(void **state)
{
    refused("{\"resource_limits\":{\"max_memory_mb\":0}}", "max_memory_mb", "positive integer");
    refused("{\"resource_limits\":{\"max_memory_mb\":-1}}", "max_memory_mb", "positive integer");
    refused("{\"resource_limits\":{\"max_memory_mb\":1.5}}", "max_memory_mb", "positive integer");
    refused("{\"resource_limits\":{\"max_memory_mb\":\"512\"}}", "max_memory_mb", "positive integer");
    refused("{\"resource_limits\":{\"max_processes\":null}}", "max_processes", "positive integer");
    refused("{\"resource_limits\":{\"max_processes\":true}}", "max_processes", "positive integer");
    /* 512.0 is an integer */
    assert_int_equal(parse("{\"resource_limits\":{\"max_memory_mb\":512.0}}"), 0);
    assert_int_equal(pol.mem_mb, 512);
}

static void test_huge_limit_mentions_cap(void **state)
{
    /* far beyond `long`: still a positive integer above the cap, and must say so */
    refused("{\"resource_limits\":{\"max_memory_mb\":1e30}}", "max_memory_mb", "8192");
    refused("{\"resource_limits\":{\"max_processes\":1e19}}", "max_processes", "1024");
}

/* ---------------------------------------------------------------- paths */

static void test_paths_refused(void **state)
{
    refused("{\"filesystem\":{\"deny_read\":[\"etc/secret\"]}}", "filesystem.deny_read", "'etc/secret'");
    refused("{\"filesystem\":{\"allow_write\":[\"./data\"]}}", "filesystem.allow_write", "absolute");
    refused("{\"filesystem\":{\"allow_write\":[\"\"]}}", "filesystem.allow_write", "absolute");
    refused("{\"filesystem\":{\"allow_write\":[\"/data/../etc\"]}}", "filesystem.allow_write", "'..'");
    refused("{\"filesystem\":{\"deny_write\":[\"/data/..\"]}}", "filesystem.deny_write", "'..'");
    refused("{\"filesystem\":{\"deny_read\":[\"/..\"]}}", "filesystem.deny_read", "'..'");
    refused("{\"filesystem\":{\"deny_read\":[\"..\"]}}", "filesystem.deny_read", NULL);
    refused("{\"filesystem\":{\"deny_read\":[\"/a\\nb\"]}}", "filesystem.deny_read", NULL);
    refused("{\"filesystem\":{\"allowWrite\":[\"/ok\",\"rel\"]}}", "filesystem.allow_write", "'rel'");
    /* "/" and the pseudo filesystems spelled another way (found by tests/fuzz/fuzz_tool_args) */
    refused("{\"filesystem\":{\"allow_write\":[\"//\"]}}", "filesystem.allow_write", "normalized");
    refused("{\"filesystem\":{\"allow_write\":[\"/.\"]}}", "filesystem.allow_write", "normalized");
    refused("{\"filesystem\":{\"allow_write\":[\"/./proc\"]}}", "filesystem.allow_write", "normalized");
    refused("{\"filesystem\":{\"deny_write\":[\"//sys/kernel\"]}}", "filesystem.deny_write", "normalized");
    refused("{\"filesystem\":{\"deny_write\":[\"/srv/out/.\"]}}", "filesystem.deny_write", "normalized");
}

static void test_paths_accepted(void **state)
{
    assert_int_equal(parse("{\"filesystem\":{\"deny_read\":[\"/\",\"/a/..b\",\"/a/b..\",\"/a/./b\",\"/a b/c\"]}}"), 0);
    assert_int_equal(pol.n_deny_read, 5);
    assert_string_equal(pol.deny_read[1], "/a/..b");
    assert_string_equal(pol.deny_read[4], "/a b/c");
    assert_int_equal(parse("{\"filesystem\":{\"deny_read\":[]}}"), 0);
    assert_int_equal(pol.n_deny_read, 0);
}

static void test_path_count_cap(void **state)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "{\"filesystem\":{\"deny_read\":[");
    for (int i = 0; i < SANDBOX_MAX_PATHS; i++)
        strbuf_printf(&b, "%s\"/p%d\"", i ? "," : "", i);
    strbuf_puts(&b, "]}}");
    assert_int_equal(parse(b.data), 0);
    assert_int_equal(pol.n_deny_read, SANDBOX_MAX_PATHS);
    strbuf_free(&b);

    strbuf_puts(&b, "{\"filesystem\":{\"deny_read\":[");
    for (int i = 0; i <= SANDBOX_MAX_PATHS; i++)
        strbuf_printf(&b, "%s\"/p%d\"", i ? "," : "", i);
    strbuf_puts(&b, "]}}");
    refused(b.data, "filesystem.deny_read", "64");
    strbuf_free(&b);
}

static void test_failed_parse_is_freeable(void **state)
{
    /* paths parsed before the error are released by sandbox_policy_free (ASan checks the leak) */
    refused("{\"filesystem\":{\"deny_read\":[\"/a\",\"/b\"],\"allow_write\":[\"/c\",\"rel\"]}}", "allow_write", NULL);
    sandbox_policy_free(&pol);
    assert_int_equal(pol.n_deny_read, 0);
    assert_int_equal(pol.n_allow_write, 0);
}

/* ---------------------------------------------------------------- network */

static void test_network_host(void **state)
{
    config.allow_network = 0;
    refused("{\"network\":{\"mode\":\"host\"}}", "network.mode", "--allow-network");
    config.allow_network = 1;
    assert_int_equal(parse("{\"network\":{\"mode\":\"host\"}}"), 0);
    assert_int_equal(pol.network_host, 1);
    assert_int_equal(parse("{\"network\":{\"mode\":\"none\"}}"), 0);
    assert_int_equal(pol.network_host, 0);
    assert_int_equal(parse("{}"), 0);
    assert_int_equal(pol.network_host, 0); /* allowed is not the default */
    config.allow_network = 0;
}

static void test_network_mode_values(void **state)
{
    refused("{\"network\":{\"mode\":\"bridge\"}}", "network.mode", "'none' or 'host'");
    refused("{\"network\":{\"mode\":\"HOST\"}}", "network.mode", NULL);
    refused("{\"network\":{\"mode\":1}}", "network.mode", NULL);
    refused("{\"network\":{\"mode\":null}}", "network.mode", NULL);
}

static void test_allowed_domains(void **state)
{
    /* issue 14: snake_case and camelCase lists become the run's egress policy */
    assert_int_equal(parse("{\"network\":{\"allowed_domains\":[\"example.com\",\"*.pypi.org:443\"]}}"), 0);
    assert_non_null(pol.egress);
    assert_null(egress_decide_name(pol.egress, "files.pypi.org", 443));
    assert_int_equal(parse("{\"network\":{\"allowedDomains\":[\"example.com\"],\"deniedDomains\":[\"x.example.com\"]}}"), 0);
    assert_non_null(pol.egress);
    assert_string_equal(egress_decide_name(pol.egress, "x.example.com", 80), "denied");
    assert_string_equal(egress_decide_name(pol.egress, "example.org", 80), "not allowed");
    /* denials alone, or empty lists, ask for no network (as before) */
    assert_int_equal(parse("{\"network\":{\"mode\":\"none\",\"denied_domains\":[\"evil.example\"]}}"), 0);
    assert_null(pol.egress);
    assert_int_equal(parse("{\"network\":{\"mode\":\"none\",\"allowed_domains\":[]}}"), 0);
    assert_null(pol.egress);
    refused("{\"network\":{\"allowed_domains\":\"example.com\"}}", "allowed_domains", "array");
    refused("{\"network\":{\"allowed_domains\":[1]}}", "allowed_domains", "strings");
    refused("{\"network\":{\"allowed_domains\":[\"exa mple.com\"]}}", "allowed_domains", "not a domain pattern");
    refused("{\"network\":{\"allowed_domains\":[\"example.com:99999\"]}}", "allowed_domains", NULL);
    refused("{\"network\":{\"mode\":\"none\",\"allowed_domains\":[\"example.com\"]}}", "mode 'none'", NULL);
    config.allow_network = 1;
    refused("{\"network\":{\"mode\":\"host\",\"allowed_domains\":[\"example.com\"]}}", "mode 'host'", NULL);
    config.allow_network = 0;
}

/* ---------------------------------------------------------------- policy -> bwrap mounts */

/*
 * Beyond policy parsing: what a parsed policy turns into. In the bwrap argv a
 * later mount covers an earlier one, so for any path the mount that decides
 * what the run sees is the last one whose target is that path or an ancestor.
 */
static int covers(const char *target, const char *path)
{
    size_t n = strlen(target);
    if (n == 1 && target[0] == '/')
        return 1;
    return strncmp(target, path, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The option ("--tmpfs", "--bind", ...) of the last mount covering `path`, and its source (in the --args list). */
static const char *deciding_mount(const sandbox_argv_t *a, const char *path, const char **src)
{
    const char *op = NULL;
    *src = NULL;
    for (size_t i = 1; i < a->n_args; i++) {
        const char *o = a->args[i];
        if (!strcmp(o, "--"))
            break;
        if ((!strcmp(o, "--bind") || !strcmp(o, "--ro-bind") || !strcmp(o, "--dev-bind") || !strcmp(o, "--bind-fd") ||
             !strcmp(o, "--ro-bind-fd")) && i + 2 < a->n_args) {
            if (covers(a->args[i + 2], path))
                op = o, *src = a->args[i + 1];
            i += 2;
        } else if ((!strcmp(o, "--tmpfs") || !strcmp(o, "--dev") || !strcmp(o, "--proc")) && i + 1 < a->n_args) {
            if (covers(a->args[i + 1], path))
                op = o, *src = NULL;
            i += 1;
        } else if (!strcmp(o, "--setenv") || !strcmp(o, "--ro-bind-try") || !strcmp(o, "--bind-try") ||
                   !strcmp(o, "--ro-bind-data")) {
            i += 2;
        } else if (!strcmp(o, "--hostname") || !strcmp(o, "--cap-drop") || !strcmp(o, "--size") ||
                   !strcmp(o, "--chdir") || !strcmp(o, "--seccomp") || !strcmp(o, "--json-status-fd") ||
                   !strcmp(o, "--perms") || !strcmp(o, "--remount-ro")) {
            i += 1;
        }
    }
    return op;
}

/* True when the run would see an empty tmpfs or /dev/null at `path`. */
static int hidden(const sandbox_argv_t *a, const char *path)
{
    const char *src;
    const char *op = deciding_mount(a, path, &src);
    return op != NULL && (!strcmp(op, "--tmpfs") || (!strcmp(op, "--ro-bind") && !strcmp(src, "/dev/null")));
}

static void test_build_policy_cannot_reexpose_hidden_paths(void **state)
{
    /* a real workspace root with this session's workspace and another session's */
    char root[] = "/tmp/unit-sandbox-XXXXXX";
    assert_non_null(mkdtemp(root));
    char own[256], other[256], saved_root[sizeof(config.workspace_root)];
    snprintf(own, sizeof(own), "%s/own", root);
    snprintf(other, sizeof(other), "%s/other", root);
    assert_int_equal(mkdir(own, 0700), 0);
    assert_int_equal(mkdir(other, 0700), 0);
    memcpy(saved_root, config.workspace_root, sizeof(saved_root));
    strlcpy(config.workspace_root, root, sizeof(config.workspace_root));

    /* what must stay hidden: the other session's workspace, and the default secret paths that exist here */
    const char *secrets[16];
    int n_secrets = 0;
    secrets[n_secrets++] = other;
    struct stat st;
    for (int i = 0; default_hidden[i] != NULL && n_secrets < 16; i++)
        if (lstat(default_hidden[i], &st) == 0 && S_ISDIR(st.st_mode))
            secrets[n_secrets++] = default_hidden[i];

    /* the baseline: with no policy, all of them are hidden and the own workspace is not */
    sandbox_argv_t av, ev;
    assert_int_equal(parse(NULL), 0);
    sandbox_build(&pol, own, own, "true", NULL, 0, 4, 3, &av, &ev);
    for (int k = 0; k < n_secrets; k++)
        if (!hidden(&av, secrets[k]))
            fail_msg("baseline: %s is not hidden", secrets[k]);
    assert_false(hidden(&av, own));
    sandbox_argv_free(&av);
    sandbox_argv_free(&ev);

    /* a policy may be refused, or accepted; if accepted, it must not undo the hiding */
    strbuf_t problems = {0};
    const char *fields[] = {"allow_write", "deny_write"};
    for (int f = 0; f < 2; f++) {
        const char *paths[20];
        int n_paths = 0;
        paths[n_paths++] = "/";
        paths[n_paths++] = "/tmp";
        paths[n_paths++] = root;
        for (int k = 0; k < n_secrets; k++)
            paths[n_paths++] = secrets[k];
        for (int i = 0; i < n_paths; i++) {
            char json[512];
            snprintf(json, sizeof(json), "{\"filesystem\":{\"%s\":[\"%s\"]}}", fields[f], paths[i]);
            if (parse(json) != 0)
                continue; /* refused: fine */
            sandbox_build(&pol, own, own, "true", NULL, 0, 4, 3, &av, &ev);
            for (int k = 0; k < n_secrets; k++)
                if (!hidden(&av, secrets[k]))
                    strbuf_printf(&problems, "\n  %s [\"%s\"] exposes %s", fields[f], paths[i], secrets[k]);
            sandbox_argv_free(&av);
            sandbox_argv_free(&ev);
        }
    }

    strlcpy(config.workspace_root, saved_root, sizeof(config.workspace_root));
    rmdir(own);
    rmdir(other);
    rmdir(root);
    if (problems.len > 0) {
        fprintf(stderr, "accepted policies that re-expose hidden paths:%s\n", problems.data);
        strbuf_free(&problems);
        fail();
    }
}

/* Write paths outside the operator's roots are refused, naming --allow-write-root; inside them accepted. */
static void test_write_roots(void **state)
{
    char *saved = config.allow_write_root[0];
    config.allow_write_root[0] = "/srv/shared";
    refused("{\"filesystem\":{\"allow_write\":[\"/var/tmp\"]}}", "allow_write", "--allow-write-root");
    refused("{\"filesystem\":{\"deny_write\":[\"/srv/sharedx\"]}}", "deny_write", "--allow-write-root");
    assert_int_equal(parse("{\"filesystem\":{\"allow_write\":[\"/srv/shared/a\"],\"deny_write\":[\"/srv/shared\"]}}"), 0);
    char ws[1200];
    snprintf(ws, sizeof(ws), "{\"filesystem\":{\"deny_write\":[\"%s/abc/keep\"]}}", config.workspace_root);
    assert_int_equal(parse(ws), 0); /* the workspace root: only the session's own workspace is ever bound */
    config.n_allow_write_root = 0;
    refused("{\"filesystem\":{\"allow_write\":[\"/srv/shared/a\"]}}", "none is configured", "--allow-write-root");
    config.n_allow_write_root = 1;
    config.allow_write_root[0] = saved;
}

int main(void)
{
    log_open(NULL, LOG_ERROR);
#define T(f) cmocka_unit_test_teardown(f, teardown)
    const struct CMUnitTest tests[] = {
        T(test_defaults_from_config),
        T(test_not_an_object),
        T(test_snake_case),
        T(test_camel_case),
        T(test_unknown_fields_named),
        T(test_section_types),
        T(test_limits_above_caps),
        T(test_limits_not_positive_integers),
        T(test_huge_limit_mentions_cap),
        T(test_paths_refused),
        T(test_paths_accepted),
        T(test_path_count_cap),
        T(test_failed_parse_is_freeable),
        T(test_network_host),
        T(test_network_mode_values),
        T(test_allowed_domains),
        T(test_build_policy_cannot_reexpose_hidden_paths),
        T(test_write_roots),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
