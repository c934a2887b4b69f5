/*
 * Fuzz target: the tools' argument checks and sandbox_config policy
 * (src/mcp/tools.c included, args_parse_run linked from src/mcp/args.c; sandbox_policy_parse in
 * src/exec/sandbox_policy.c, sandbox_build in src/exec/sandbox.c). Nothing is spawned: the server's
 * max_concurrent is 0, so execute_code answers its limit error after the
 * arguments passed, and sandbox_init() is never called.
 *
 * Input: one selector byte, then JSON text.
 *   bits 0-2  the tool (0..6, in the catalogue's order) or 7: the JSON is a
 *             bare sandbox_config
 *   bit 3     --allow-network      bit 4  --isolation none (for sandbox_build)
 * For the tools the JSON object is the call's `arguments`. Checked:
 *   - every tool answers the call exactly once, synchronously, with a JSON
 *     object; an error result carries an "error" string;
 *   - args_parse_run accepts exactly what execute_code then refuses only for the
 *     output query (max_output_chars), the workspace_id (not a string, or
 *     not a workspace of the session's tenant) or else the concurrency
 *     limit, and what it accepts respects the documented limits
 *     (command 1..128 KiB, timeout within --max-timeout, at most 256 valid
 *     environment names, policy paths absolute without "..", at most 64 per
 *     list, resource limits within the caps, host network only when allowed);
 *   - a write path never names "/", /proc, /sys or /dev, however it is
 *     spelled ("//", "/./", trailing "/");
 *   - sandbox_build's argv is NULL-terminated, made only of the bwrap
 *     options the server uses with their arguments (nothing a caller sends
 *     becomes an option), keeps --unshare-net unless the host network was
 *     granted, passes each environment variable as one --setenv, ends with "/bin/sh -c <script>" whose last line is the
 *     command, and hands over at most SANDBOX_MAX_FDS descriptors.
 */
#include "../../src/mcp/tools.c"
#include "mcp/catalog.h"

#include "core/deadline.h"
#include "core/log.h"
#include "mcp/session.h"

#include <stdint.h>
#include <unistd.h>

#include "fuzz_check.h"

#define WORKSPACE "/tmp/mcp-sandboxd-fuzz/ws"

/* ---------------------------------------------------------------- the call, answered through a fake tools_reply_t */

static struct answer {
    int count;          /* answers given */
    int is_error;
    int rpc_error;      /* answered through mcp_call_error */
    char error[600];    /* the result's "error" */
} ans;
static int the_call;    /* its address is the opaque mcp_call_t */
#define CALL ((mcp_call_t *)&the_call)

static void fake_result(mcp_call_t *call, const char *structured, size_t len, int is_error)
{
    CHECK(call == CALL);
    CHECK(structured != NULL && strlen(structured) == len);
    cJSON *o = cJSON_ParseWithLength(structured, len);
    CHECK(cJSON_IsObject(o));
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
    if (is_error) {
        CHECK(cJSON_IsString(e) && e->valuestring[0] != '\0');
        snprintf(ans.error, sizeof(ans.error), "%s", e->valuestring);
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "status");
        const cJSON *ok = cJSON_GetObjectItemCaseSensitive(o, "success");
        CHECK((cJSON_IsString(st) && !strcmp(st->valuestring, "failed")) || cJSON_IsFalse(ok));
    }
    cJSON_Delete(o);
    ans.count++;
    ans.is_error = is_error;
}

static void fake_error(mcp_call_t *call, int code, const char *message)
{
    CHECK(call == CALL && message != NULL);
    ans.count++;
    ans.rpc_error = code;
}

static void fake_set_tool(mcp_call_t *call, const char *tool)
{
    CHECK(call == CALL && tool != NULL);
}

static int fake_alive(const mcp_call_t *call)
{
    return 1;
}

/* ---------------------------------------------------------------- checks */

/* Lexically canonical form of an absolute path: no "//", ".", trailing "/" ("/" stays). */
static void canonical(const char *in, char *out, size_t len)
{
    size_t o = 0;
    const char *p = in;
    while (*p && o + 2 < len) {
        while (*p == '/')
            p++;
        const char *start = p;
        while (*p && *p != '/')
            p++;
        size_t n = (size_t)(p - start);
        if (n == 0 || (n == 1 && start[0] == '.'))
            continue;
        if (o + 1 + n >= len)
            break;
        out[o++] = '/';
        memcpy(out + o, start, n);
        o += n;
    }
    if (o == 0)
        out[o++] = '/';
    out[o] = '\0';
}

static int under(const char *path, const char *dir)
{
    size_t l = strlen(dir);
    return !strncmp(path, dir, l) && (path[l] == '\0' || path[l] == '/');
}

static void check_paths(char *const *v, int n, int write)
{
    CHECK(n >= 0 && n <= SANDBOX_MAX_PATHS);
    for (int i = 0; i < n; i++) {
        const char *p = v[i];
        size_t l = strlen(p);
        CHECK(p[0] == '/' && l < 4096 && strpbrk(p, "\r\n") == NULL);
        CHECK(strstr(p, "/../") == NULL && !(l >= 3 && !strcmp(p + l - 3, "/..")));
        if (write) {
            char c[4096];
            canonical(p, c, sizeof(c));
            CHECK(strcmp(c, "/") != 0);
            CHECK(!under(c, "/proc") && !under(c, "/sys") && !under(c, "/dev"));
        }
    }
}

static void check_policy(const sandbox_policy_t *p)
{
    CHECK(!p->network_host || config.allow_network);
    check_paths(p->deny_read, p->n_deny_read, 0);
    check_paths(p->allow_write, p->n_allow_write, 1);
    check_paths(p->deny_write, p->n_deny_write, 1);
    CHECK(p->mem_mb >= 1 && p->mem_mb <= config.mem_max_mb);
    CHECK(p->cpu_s >= 1 && p->cpu_s <= config.cpu_max_s);
    CHECK(p->fsize_mb >= 1 && p->fsize_mb <= config.fsize_max_mb);
    CHECK(p->nproc >= 1 && p->nproc <= config.nproc_max);
}

/* How many arguments a bwrap option the server uses takes; -1 for anything else. */
static int option_arity(const char *o)
{
    static const char *const none[] = {"--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                                       "--unshare-cgroup-try", "--unshare-net", "--disable-userns",
                                       "--die-with-parent", "--new-session", NULL};
    static const char *const one[] = {"--hostname", "--cap-drop", "--dev", "--proc", "--tmpfs", "--size", "--perms",
                                      "--remount-ro", "--chdir", "--seccomp", "--json-status-fd", NULL};
    static const char *const two[] = {"--ro-bind", "--bind", "--bind-fd", "--ro-bind-fd", "--ro-bind-data", "--setenv", NULL};
    for (int i = 0; none[i] != NULL; i++)
        if (!strcmp(o, none[i]))
            return 0;
    for (int i = 0; one[i] != NULL; i++)
        if (!strcmp(o, one[i]))
            return 1;
    for (int i = 0; two[i] != NULL; i++)
        if (!strcmp(o, two[i]))
            return 2;
    return -1;
}

/* The text of the script bwrap copies in with `--ro-bind-data FD path`: the memfd behind FD. */
static void read_script(const sandbox_argv_t *a, const char *fd_arg, strbuf_t *out)
{
    int i = atoi(fd_arg) - SANDBOX_FIRST_BIND_FD;
    CHECK(i >= 0 && i < a->n_fds);
    char buf[4096];
    ssize_t n;
    off_t off = 0;
    while ((n = pread(a->fds[i], buf, sizeof(buf), off)) > 0) {
        strbuf_append(out, buf, (size_t)n);
        off += n;
    }
}

/* Walks bwrap's option list (the --args memfd's content) with each option's arity. */
static void check_options(const sandbox_policy_t *p, const sandbox_argv_t *a, const char *command, size_t n_env)
{
    /* walk the options with their arities: nothing a caller sends may become an option */
    int unshare_net = 0, scripts = 0;
    size_t setenv_n = 0, i = 1;
    while (i < a->n_args) {
        const char *o = a->args[i];
        int arity = option_arity(o);
        CHECK(arity >= 0 && i + (size_t)arity < a->n_args);
        if (!strcmp(o, "--unshare-net"))
            unshare_net = 1;
        if (!strcmp(o, "--setenv"))
            setenv_n++;
        if (!strcmp(o, "--ro-bind-data")) {
            /* the command is the script's second line, whole */
            strbuf_t script = {0};
            read_script(a, a->args[i + 1], &script);
            const char *nl = script.data != NULL ? memchr(script.data, '\n', script.len) : NULL;
            CHECK(nl != NULL && (size_t)(script.data + script.len - nl - 1) == strlen(command) &&
                  !memcmp(nl + 1, command, strlen(command)));
            strbuf_free(&script);
            scripts++;
        }
        i += 1 + (size_t)arity;
    }
    CHECK(scripts == 1);
    CHECK(unshare_net == !p->network_host);
    CHECK(setenv_n == 4 + n_env);
}

static void check_build(const sandbox_policy_t *p, const char *command, char *const *env, size_t n_env)
{
    sandbox_argv_t argv, envp;
    CHECK(sandbox_build(p, WORKSPACE, WORKSPACE, command, env, n_env, 4, 3, &argv, &envp) == 0);
    CHECK(argv.v[argv.n] == NULL && envp.v[envp.n] == NULL);
    CHECK(argv.n_fds >= 0 && argv.n_fds <= SANDBOX_MAX_FDS);
    if (config.isolation_none) {
        CHECK(argv.n == 3 && !strcmp(argv.v[0], "/bin/sh") && !strcmp(argv.v[1], "-c") && !strcmp(argv.v[2], command));
        CHECK(envp.n == 4 + n_env);
    } else {
        /* nothing of the run on the host's command line: bwrap --args N -- /bin/sh SCRIPT */
        CHECK(argv.n == 6 && !strcmp(argv.v[1], "--args") && !strcmp(argv.v[3], "--") && !strcmp(argv.v[4], "/bin/sh"));
        CHECK(envp.n == 1); /* bwrap itself gets PATH only */
        check_options(p, &argv, command, n_env);
    }
    sandbox_argv_free(&argv);
    sandbox_argv_free(&envp);
}

static session_t *session;

static mcp_ctx_t fuzz_ctx_storage;

/* The fuzz session as a tool's request context (legacy era). */
static const mcp_ctx_t *fuzz_session(void)
{
    fuzz_ctx_storage = (mcp_ctx_t){.session = session, .era = MCP_ERA_LEGACY, .tenant = session->tenant, .ws = session->ws};
    return &fuzz_ctx_storage;
}

static int valid_env_entry(const char *kv)
{
    const char *eq = strchr(kv, '=');
    if (eq == NULL || eq == kv || eq - kv >= 256 || !(isalpha((unsigned char)kv[0]) || kv[0] == '_'))
        return 0;
    for (const char *p = kv; p < eq; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return 0;
    return 1;
}

/*
 * What execute_code answers for arguments args_parse_run accepted: the output
 * query's error, the workspace_id's, or (nothing may run) the limit's.
 */
static void expected_after_parse(const cJSON *args, char *err, size_t errlen)
{
    output_query_t q;
    const char *wsid = NULL;
    if (output_query_parse(args, &q, err, errlen) == 0 && get_workspace_id(args, &wsid, err, errlen) == 0) {
        if (wsid != NULL && workspace_find(session->tenant, wsid) == NULL)
            snprintf(err, errlen, "Workspace not found: %.64s", wsid);
        else
            snprintf(err, errlen, "Concurrent execution limit reached");
    }
    output_query_free(&q);
}

/* execute_code / execute_code_async: args_parse_run against the handler, then the argv. */
static void check_run(const cJSON *args, int async)
{
    exec_request_t rq;
    int wait = 1;
    char err[512] = "";
    int rc = args_parse_run(args, !async, &rq, &wait, err, sizeof(err));
    if (rc == 0) {
        size_t cl = strlen(rq.command);
        CHECK(cl >= 1 && cl <= ARGS_MAX_ARG);
        CHECK(rq.timeout_s >= 1 && rq.timeout_s <= config.max_timeout);
        CHECK((rq.interactive == 0 || rq.interactive == 1) && (wait == 0 || wait == 1));
        CHECK(rq.n_env <= 256 && (rq.n_env == 0 || rq.env[rq.n_env] == NULL));
        for (size_t i = 0; i < rq.n_env; i++)
            CHECK(valid_env_entry(rq.env[i]));
        check_policy(&rq.policy);
        check_build(&rq.policy, rq.command, rq.env, rq.n_env);
    } else {
        CHECK(err[0] != '\0');
    }
    args_free_run(&rq);
    if (rc == 0)
        expected_after_parse(args, err, sizeof(err));

    /* the handler must agree: refused for the same reason, or stopped only by the limit */
    memset(&ans, 0, sizeof(ans));
    CHECK(tools_call(CALL, fuzz_session(), async ? "execute_code_async" : "execute_code", args) == 0);
    CHECK(ans.count == 1 && ans.is_error);
    if (rc == 0 && !strcmp(err, "Concurrent execution limit reached"))
        CHECK(strstr(ans.error, err) != NULL);
    else
        CHECK(!strcmp(ans.error, err));
}

static const char *const tool_names[] = {"execute_code", "execute_code_async", "send_stdin", "cancel_execution",
                                         "list_executions", "get_execution_status", "get_execution_output"};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    char *av[] = {"mcp-sandboxd", NULL}, *ev[] = {NULL}, err[512];
    if (config_parse(&config, 1, av, ev, err, sizeof(err), NULL, 0) != CONFIG_OK)
        abort();
    config.max_concurrent = 0; /* nothing may be spawned: execute_code stops at the limit */
    log_open("/dev/null", LOG_DEBUG);
    static const tools_reply_t fake = {fake_result, fake_error, fake_alive, fake_set_tool};
    tools_set_reply(&fake);
    if (deadline_init(h2o_evloop_create()) != 0 || catalog_init() != 0)
        abort();
    session_setup(3600 * 1000, 16, NULL);
    session = session_create("2025-06-18", "fuzz", NULL, 0);
    return session == NULL ? -1 : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    uint8_t sel = data[0];
    config.allow_network = (sel >> 3) & 1;
    config.isolation_none = (sel >> 4) & 1;
    cJSON *j = cJSON_ParseWithLength((const char *)data + 1, size - 1);
    if (j == NULL)
        return 0;
    int tool = sel & 7;
    if (tool == 7) {
        sandbox_policy_t p;
        char err[512] = "";
        if (sandbox_policy_parse(j, &p, err, sizeof(err)) == 0) {
            check_policy(&p);
            check_build(&p, "true", NULL, 0);
        } else {
            CHECK(err[0] != '\0');
        }
        sandbox_policy_free(&p);
    } else if (cJSON_IsObject(j)) { /* mcp.c hands tools objects only */
        if (tool <= 1) {
            check_run(j, tool);
        } else {
            memset(&ans, 0, sizeof(ans));
            CHECK(tools_call(CALL, fuzz_session(), tool_names[tool], j) == 0);
            CHECK(ans.count == 1 && ans.rpc_error == 0);
            /* nothing runs: every lookup fails; list_executions fails only on arguments other than a workspace_id string */
            const cJSON *ws = cJSON_GetObjectItemCaseSensitive(j, "workspace_id"), *m; /* the first one (duplicates) */
            int list_ok = ws == NULL || cJSON_IsString(ws) || cJSON_IsNull(ws);
            cJSON_ArrayForEach(m, j) list_ok &= !strcmp(m->string, "workspace_id");
            CHECK(ans.is_error == (tool != 4 || !list_ok));
        }
    }
    cJSON_Delete(j);
    log_flush();
    return 0;
}
