/*
 * Unit tests for src/mcp/reply.c: what a tool result becomes in the JSON-RPC answer,
 * up to one too large to escape.
 */
#include "../../src/mcp/reply.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "big_input.h"

#include <sys/mman.h>

/* A reply with one slot that stays unsent (pending 2), and its call. */
static mcp_call_t *new_call(mcp_reply_t **rp)
{
    mcp_reply_t *r = xcalloc(1, sizeof(*r));
    r->n_slots = 1;
    r->slots = xcalloc(1, sizeof(strbuf_t));
    r->pending = 2;
    mcp_call_t *call = xcalloc(1, sizeof(*call));
    call->reply = r;
    call->slot = 0;
    call->id_json = xstrdup("7");
    *rp = r;
    return call;
}

static void test_tool_result_ok(void **state)
{
    mcp_reply_t *r;
    mcp_call_t *call = new_call(&r);
    mcp_call_tool_result(call, "{\"a\":\"x\\ny\"}", 12, 0);
    assert_int_equal(r->pending, 1);
    cJSON *j = cJSON_Parse(r->slots[0].data);
    assert_non_null(j);
    const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "result");
    const cJSON *text = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(res, "content"), 0);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(text, "text")->valuestring, "{\"a\":\"x\\ny\"}");
    assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(res, "isError")));
    cJSON_Delete(j);
    reply_free(r);
}

/*
 * A result whose text copy would pass STRBUF_JSON_MAX answers with a JSON-RPC
 * error and allocates nothing for it (it used to be escaped into a 6n buffer,
 * and past INT_MAX to abort the server). ~171 MiB of 0x01, mapped from one
 * 1 MiB memfd again and again.
 */
static void test_tool_result_too_large(void **state)
{
    const size_t n = STRBUF_JSON_MAX / 6 + (1 << 20);
    const char *base = big_input(n, 0x01);

    mcp_reply_t *r;
    mcp_call_t *call = new_call(&r);
    mcp_call_tool_result(call, base, n, 0);
    assert_int_equal(r->pending, 1); /* the call is answered */
    assert_true(r->slots[0].len < 4096);
    cJSON *j = cJSON_Parse(r->slots[0].data);
    assert_non_null(j);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valueint, 7);
    const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(err, "code")->valueint, JSONRPC_INTERNAL_ERROR);
    assert_non_null(strstr(cJSON_GetObjectItemCaseSensitive(err, "message")->valuestring, "would exceed 1 GiB"));
    cJSON_Delete(j);
    reply_free(r);
    big_input_free(base, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool_result_ok),
        cmocka_unit_test(test_tool_result_too_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
