/*
 * Unit tests for src/jsonrpc.c: message classification, id serialization and
 * the result / error writers (checked by parsing their output back with cJSON).
 */
#include "../../src/core/jsonrpc.c"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>

/* Parses `text` and classifies it; the tree is returned so borrowed pointers stay valid. */
static cJSON *classify(const char *text, jsonrpc_msg_t *m)
{
    cJSON *j = cJSON_Parse(text);
    assert_non_null(j);
    jsonrpc_classify(j, m);
    return j;
}

static void assert_invalid(const char *text, const char *why_part)
{
    jsonrpc_msg_t m;
    cJSON *j = classify(text, &m);
    if (m.kind != JSONRPC_INVALID)
        fail_msg("expected INVALID for %s, got kind %d", text, (int)m.kind);
    assert_non_null(m.why);
    if (why_part != NULL && strstr(m.why, why_part) == NULL)
        fail_msg("why '%s' for %s does not mention '%s'", m.why, text, why_part);
    cJSON_Delete(j);
}

/* ---------------------------------------------------------------- classify */

static void test_request_number_id(void **state)
{
    jsonrpc_msg_t m;
    cJSON *j = classify("{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/list\"}", &m);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_string_equal(m.method, "tools/list");
    assert_non_null(m.id);
    assert_true(cJSON_IsNumber(m.id));
    assert_int_equal(m.id->valueint, 7);
    assert_null(m.params);
    assert_null(m.why);
    cJSON_Delete(j);
}

static void test_request_string_id_and_params(void **state)
{
    jsonrpc_msg_t m;
    cJSON *j = classify("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"tools/call\",\"params\":{\"name\":\"x\"}}", &m);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_string_equal(m.method, "tools/call");
    assert_true(cJSON_IsString(m.id));
    assert_string_equal(m.id->valuestring, "abc");
    assert_non_null(m.params);
    assert_true(cJSON_IsObject(m.params));
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(m.params, "name")->valuestring, "x");
    cJSON_Delete(j);

    /* params may also be an array */
    j = classify("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"m\",\"params\":[1,2]}", &m);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_true(cJSON_IsArray(m.params));
    assert_int_equal(m.id->valueint, 0);
    cJSON_Delete(j);

    /* an empty string id is still a string id */
    j = classify("{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"m\"}", &m);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    assert_string_equal(m.id->valuestring, "");
    cJSON_Delete(j);
}

static void test_notification(void **state)
{
    jsonrpc_msg_t m;
    cJSON *j = classify("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}", &m);
    assert_int_equal(m.kind, JSONRPC_NOTIFICATION);
    assert_string_equal(m.method, "notifications/initialized");
    assert_null(m.id);
    assert_null(m.params);
    cJSON_Delete(j);

    j = classify("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\",\"params\":{\"requestId\":3}}", &m);
    assert_int_equal(m.kind, JSONRPC_NOTIFICATION);
    assert_non_null(m.params);
    cJSON_Delete(j);
}

static void test_response(void **state)
{
    jsonrpc_msg_t m;
    cJSON *j = classify("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", &m);
    assert_int_equal(m.kind, JSONRPC_RESPONSE);
    assert_non_null(m.id);
    assert_null(m.method);
    cJSON_Delete(j);

    j = classify("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"error\":{\"code\":-1,\"message\":\"no\"}}", &m);
    assert_int_equal(m.kind, JSONRPC_RESPONSE);
    assert_string_equal(m.id->valuestring, "x");
    cJSON_Delete(j);

    /* an error response to an unparsable request carries id null */
    j = classify("{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-32700,\"message\":\"x\"}}", &m);
    assert_int_equal(m.kind, JSONRPC_RESPONSE);
    assert_null(m.id);
    cJSON_Delete(j);

    /* a falsy result is still a result */
    j = classify("{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":null}", &m);
    assert_int_equal(m.kind, JSONRPC_RESPONSE);
    cJSON_Delete(j);
}

static void test_response_shapes_invalid(void **state)
{
    /* both result and error */
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},\"error\":{}}", "\"method\"");
    /* result without id */
    assert_invalid("{\"jsonrpc\":\"2.0\",\"result\":{}}", "\"method\"");
    /* neither method nor result/error */
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1}", "\"method\"");
    assert_invalid("{\"jsonrpc\":\"2.0\"}", "\"method\"");
}

static void test_not_an_object(void **state)
{
    assert_invalid("[]", "object");
    assert_invalid("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}]", "object");
    assert_invalid("\"hello\"", "object");
    assert_invalid("42", "object");
    assert_invalid("null", "object");
    assert_invalid("true", "object");

    jsonrpc_msg_t m;
    jsonrpc_classify(NULL, &m);
    assert_int_equal(m.kind, JSONRPC_INVALID);
    assert_non_null(m.why);
    assert_null(m.id);
}

static void test_bad_version(void **state)
{
    assert_invalid("{\"id\":1,\"method\":\"m\"}", "\"jsonrpc\"");
    assert_invalid("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"m\"}", "\"jsonrpc\"");
    assert_invalid("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"m\"}", "\"jsonrpc\"");
    assert_invalid("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"m\"}", "\"jsonrpc\"");
    assert_invalid("{\"jsonrpc\":null,\"id\":1,\"method\":\"m\"}", "\"jsonrpc\"");
}

static void test_invalid_keeps_usable_id(void **state)
{
    /* the error response can still echo the id of an otherwise invalid request */
    jsonrpc_msg_t m;
    cJSON *j = classify("{\"jsonrpc\":\"1.0\",\"id\":99,\"method\":\"m\"}", &m);
    assert_int_equal(m.kind, JSONRPC_INVALID);
    assert_non_null(m.id);
    assert_int_equal(m.id->valueint, 99);
    cJSON_Delete(j);

    j = classify("{\"jsonrpc\":\"2.0\",\"id\":\"r1\",\"method\":\"m\",\"params\":\"str\"}", &m);
    assert_int_equal(m.kind, JSONRPC_INVALID);
    assert_non_null(m.id);
    assert_string_equal(m.id->valuestring, "r1");
    cJSON_Delete(j);
}

static void test_bad_method(void **state)
{
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", "\"method\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", "\"method\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}", "\"method\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":[\"m\"]}", "\"method\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"method\":{}}", "\"method\"");
}

static void test_bad_id(void **state)
{
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}", "\"id\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":{\"a\":1},\"method\":\"m\"}", "\"id\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"m\"}", "\"id\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"m\"}", "\"id\"");

    /* an object id is not usable for a reply either */
    jsonrpc_msg_t m;
    cJSON *j = classify("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"m\"}", &m);
    assert_null(m.id);
    cJSON_Delete(j);

    /* a non-finite number (only constructible programmatically) is not usable */
    j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "jsonrpc", "2.0");
    cJSON_AddStringToObject(j, "method", "m");
    cJSON_AddItemToObject(j, "id", cJSON_CreateNumber(INFINITY));
    jsonrpc_classify(j, &m);
    assert_int_equal(m.kind, JSONRPC_INVALID);
    assert_null(m.id);
    cJSON_Delete(j);
}

static void test_bad_params(void **state)
{
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":\"x\"}", "\"params\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":3}", "\"params\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":true}", "\"params\"");
    assert_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":null}", "\"params\"");
    /* a notification with bad params is invalid too */
    assert_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"m\",\"params\":\"x\"}", "\"params\"");
}

/* ---------------------------------------------------------------- jsonrpc_id_json */

static void check_id_json(const cJSON *id, const char *expect)
{
    char *s = jsonrpc_id_json(id);
    assert_string_equal(s, expect);
    free(s);
}

/* Serializes `id` and checks it parses back to an equal value. */
static void check_id_roundtrip(const cJSON *id)
{
    char *s = jsonrpc_id_json(id);
    cJSON *back = cJSON_Parse(s);
    if (back == NULL)
        fail_msg("id json '%s' does not parse", s);
    assert_true(cJSON_Compare(id, back, 1));
    cJSON_Delete(back);
    free(s);
}

static void test_id_json(void **state)
{
    check_id_json(NULL, "null");

    cJSON *n = cJSON_CreateNumber(1);
    check_id_json(n, "1");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(-42);
    check_id_json(n, "-42");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(0);
    check_id_json(n, "0");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(1.5);
    check_id_json(n, "1.5");
    cJSON_Delete(n);
    n = cJSON_CreateNumber(9007199254740991.0); /* 2^53 - 1: printed exactly */
    check_id_json(n, "9007199254740991");
    cJSON_Delete(n);

    static const double nums[] = {0.1, 1e20, -1e-7, 9007199254740992.0, 123456789012.0, -3.25};
    for (size_t i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
        n = cJSON_CreateNumber(nums[i]);
        check_id_roundtrip(n);
        cJSON_Delete(n);
    }

    cJSON *s = cJSON_CreateString("abc");
    check_id_json(s, "\"abc\"");
    cJSON_Delete(s);

    static const char *strs[] = {"a\"b", "back\\slash", "line\nbreak\ttab", "x\x01\x1f", "caf\xc3\xa9 \xe2\x82\xac",
                                 "</script>"};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        s = cJSON_CreateString(strs[i]);
        check_id_roundtrip(s);
        cJSON_Delete(s);
    }
}

static void test_id_json_from_classify(void **state)
{
    /* what classify hands out is what the writer echoes */
    jsonrpc_msg_t m;
    cJSON *j = classify("{\"jsonrpc\":\"2.0\",\"id\":\"q\\\"1\",\"method\":\"m\"}", &m);
    char *s = jsonrpc_id_json(m.id);
    assert_string_equal(s, "\"q\\\"1\"");
    free(s);
    cJSON_Delete(j);
}

/* ---------------------------------------------------------------- writers */

static cJSON *parse_buf(strbuf_t *b)
{
    assert_non_null(b->data);
    assert_int_equal(strlen(b->data), b->len);
    cJSON *j = cJSON_ParseWithOpts(b->data, NULL, 1);
    if (j == NULL)
        fail_msg("not valid JSON: %s", b->data);
    return j;
}

static void test_write_result(void **state)
{
    strbuf_t b = {0};
    const char *result = "{\"tools\":[{\"name\":\"run\"}],\"n\":1}";
    jsonrpc_write_result(&b, "5", result, strlen(result));
    cJSON *j = parse_buf(&b);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "jsonrpc")->valuestring, "2.0");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valueint, 5);
    cJSON *r = cJSON_GetObjectItemCaseSensitive(j, "result");
    cJSON *expect = cJSON_Parse(result);
    assert_true(cJSON_Compare(r, expect, 1));
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "error"));
    assert_int_equal(cJSON_GetArraySize(j), 3);
    cJSON_Delete(expect);
    cJSON_Delete(j);
    strbuf_free(&b);

    /* a string id, a length shorter than the string: only `len` bytes are used */
    char *id = jsonrpc_id_json(NULL);
    const char *r2 = "{}garbage";
    jsonrpc_write_result(&b, id, r2, 2);
    free(id);
    j = parse_buf(&b);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "id")));
    assert_true(cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(j, "result")));
    cJSON_Delete(j);
    strbuf_free(&b);
}

static void test_write_result_appends(void **state)
{
    strbuf_t b = {0};
    strbuf_puts(&b, "data: ");
    jsonrpc_write_result(&b, "\"x\"", "true", 4);
    assert_memory_equal(b.data, "data: ", 6);
    cJSON *j = cJSON_Parse(b.data + 6);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, "x");
    assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "result")));
    cJSON_Delete(j);
    strbuf_free(&b);
}

static void test_write_error(void **state)
{
    strbuf_t b = {0};
    jsonrpc_write_error(&b, "\"req-1\"", JSONRPC_METHOD_NOT_FOUND, "Method not found: foo");
    cJSON *j = parse_buf(&b);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "jsonrpc")->valuestring, "2.0");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valuestring, "req-1");
    assert_null(cJSON_GetObjectItemCaseSensitive(j, "result"));
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_true(cJSON_IsObject(e));
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "code")->valueint, -32601);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring, "Method not found: foo");
    cJSON_Delete(j);
    strbuf_free(&b);
}

static void test_write_error_escapes_message(void **state)
{
    const char *msg = "bad \"quote\" \\ back\nnew\tline \x01 caf\xc3\xa9 \xf0\x9f\x98\x80";
    strbuf_t b = {0};
    jsonrpc_write_error(&b, "null", JSONRPC_PARSE_ERROR, msg);
    cJSON *j = parse_buf(&b);
    assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(j, "id")));
    cJSON *e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(e, "code")->valueint, JSONRPC_PARSE_ERROR);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring, msg);
    cJSON_Delete(j);
    strbuf_free(&b);

    /* a long message (longer than strbuf_printf's stack buffer) */
    char big[5000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    jsonrpc_write_error(&b, "123", JSONRPC_INTERNAL_ERROR, big);
    j = parse_buf(&b);
    assert_int_equal(cJSON_GetObjectItemCaseSensitive(j, "id")->valueint, 123);
    e = cJSON_GetObjectItemCaseSensitive(j, "error");
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "message")->valuestring, big);
    cJSON_Delete(j);
    strbuf_free(&b);
}

static void test_classify_then_reply(void **state)
{
    /* the full path: classify a request, echo its id into a result and an error */
    jsonrpc_msg_t m;
    cJSON *req = classify("{\"jsonrpc\":\"2.0\",\"id\":\"\\u00e9\\n\",\"method\":\"ping\"}", &m);
    assert_int_equal(m.kind, JSONRPC_REQUEST);
    char *id = jsonrpc_id_json(m.id);
    strbuf_t b = {0};
    jsonrpc_write_result(&b, id, "{}", 2);
    cJSON *j = parse_buf(&b);
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(j, "id"), m.id, 1));
    cJSON_Delete(j);
    strbuf_free(&b);
    jsonrpc_write_error(&b, id, JSONRPC_INVALID_PARAMS, "x");
    j = parse_buf(&b);
    assert_true(cJSON_Compare(cJSON_GetObjectItemCaseSensitive(j, "id"), m.id, 1));
    cJSON_Delete(j);
    strbuf_free(&b);
    free(id);
    cJSON_Delete(req);
}

/*
 * Kept last: these abort the whole binary if strbuf_json_string() under-sizes
 * its buffer, so every other test still reports first.
 */
static void test_id_json_empty_and_control_strings(void **state)
{
    /* "id": "" is a valid string id; its echo must be "" */
    cJSON *s = cJSON_CreateString("");
    check_id_json(s, "\"\"");
    cJSON_Delete(s);

    /* strings made only of \u-escaped control characters (worst-case growth) */
    static const char *strs[] = {"\x01", "\x01\x1f", "\x1b\x1b\x1b\x1b"};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
        s = cJSON_CreateString(strs[i]);
        check_id_roundtrip(s);
        cJSON_Delete(s);
    }

    /* an empty error message */
    strbuf_t b = {0};
    jsonrpc_write_error(&b, "1", JSONRPC_INTERNAL_ERROR, "");
    cJSON *j = parse_buf(&b);
    assert_string_equal(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(j, "error"), "message")->valuestring,
                        "");
    cJSON_Delete(j);
    strbuf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_number_id),
        cmocka_unit_test(test_request_string_id_and_params),
        cmocka_unit_test(test_notification),
        cmocka_unit_test(test_response),
        cmocka_unit_test(test_response_shapes_invalid),
        cmocka_unit_test(test_not_an_object),
        cmocka_unit_test(test_bad_version),
        cmocka_unit_test(test_invalid_keeps_usable_id),
        cmocka_unit_test(test_bad_method),
        cmocka_unit_test(test_bad_id),
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_id_json),
        cmocka_unit_test(test_id_json_from_classify),
        cmocka_unit_test(test_write_result),
        cmocka_unit_test(test_write_result_appends),
        cmocka_unit_test(test_write_error),
        cmocka_unit_test(test_write_error_escapes_message),
        cmocka_unit_test(test_classify_then_reply),
        cmocka_unit_test(test_id_json_empty_and_control_strings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
