/* Unit tests for agent/llm/: model specs, the SSE parser against the WHATWG rules (CRLF/CR/
 * LF, comments, event names, multi-line data, BOM, every split point), error bodies of every
 * shape seen in the wild, retry classification, retry-after, usage and cost for both APIs
 * (Anthropic cache read/write), price lookup and overrides, request bodies, and recording a
 * call into a real history.db without the key. The HTTP paths are in tests/integ_llm.py. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/llm/llm_int.h"

/* ---------------- specs ---------------- */

static void test_llm__spec_parse(void **state)
{
	(void)state;
	kiln_llm_spec s;
	assert_int_equal(kiln_llm_spec_parse(&s, "openai:gpt-5"), 0);
	assert_string_equal(s.provider, "openai");
	assert_string_equal(s.model, "gpt-5");
	assert_string_equal(s.base_url, "");
	assert_int_equal(s.api, KILN_LLM_API_OPENAI);
	assert_string_equal(kiln_llm_spec_default_url(&s), "https://api.openai.com/v1");

	assert_int_equal(kiln_llm_spec_parse(&s, "anthropic:claude-sonnet-4-5"), 0);
	assert_int_equal(s.api, KILN_LLM_API_ANTHROPIC);
	assert_string_equal(kiln_llm_spec_url_env(&s), "KILN_ANTHROPIC_BASE_URL");

	assert_int_equal(kiln_llm_spec_parse(&s, "openai-compatible:qwen2.5-coder-32b@http://127.0.0.1:8000/v1"), 0);
	assert_string_equal(s.provider, "openai-compatible");
	assert_string_equal(s.model, "qwen2.5-coder-32b");
	assert_string_equal(s.base_url, "http://127.0.0.1:8000/v1");
	bool required = true;
	assert_string_equal(kiln_llm_spec_key_env(&s, NULL, &required), "KILN_OPENAI_COMPATIBLE_API_KEY");
	assert_false(required);
	assert_string_equal(kiln_llm_spec_key_env(&s, "MY_KEY", &required), "MY_KEY");
	assert_true(required);

	/* Ollama tags have a colon; a '@' not followed by a URL belongs to the model */
	assert_int_equal(kiln_llm_spec_parse(&s, "ollama:qwen2.5-coder:32b@https://h/v1"), 0);
	assert_string_equal(s.model, "qwen2.5-coder:32b");
	assert_string_equal(s.base_url, "https://h/v1");
	assert_int_equal(kiln_llm_spec_parse(&s, "vllm:org/model@v2"), 0);
	assert_string_equal(s.model, "org/model@v2");

	/* every row of the provider table parses and is named by the unknown-provider error */
	size_t n_rows;
	const kiln_llm_provider_row *rows = kiln_llm_providers(&n_rows);
	assert_true(n_rows >= 10);
	assert_int_equal(kiln_llm_spec_parse(&s, "google:gemini"), KILN_EINVAL);
	char err[512];
	snprintf(err, sizeof err, "%s", kiln_error_last());
	for (size_t i = 0; i < n_rows; i++) {
		char spec[96];
		snprintf(spec, sizeof spec, "%s:m", rows[i].name);
		assert_int_equal(kiln_llm_spec_parse(&s, spec), 0);
		assert_string_equal(s.provider, rows[i].canonical);
		assert_ptr_equal(s.row, &rows[i]);
		char quoted[64];
		snprintf(quoted, sizeof quoted, "%s%s", rows[i].name, i + 1 < n_rows ? "," : ")");
		assert_non_null(strstr(err, quoted));
	}
	/* the wire row decides the token field, the path and how the key travels */
	assert_int_equal(kiln_llm_spec_parse(&s, "openai:gpt-5"), 0);
	assert_string_equal(s.row->token_field, "max_completion_tokens");
	assert_string_equal(kiln_llm_wire_of(s.api)->path, "chat/completions");
	assert_int_equal(kiln_llm_spec_parse(&s, "llama.cpp:q@http://h/v1"), 0);
	assert_string_equal(s.row->token_field, "max_tokens");
	assert_int_equal(kiln_llm_spec_parse(&s, "anthropic:c"), 0);
	assert_string_equal(kiln_llm_wire_of(s.api)->auth_prefix, "x-api-key: ");

	const char *bad[] = {"", "gpt-5", "openai:", ":gpt-5", "google:gemini", "openai:gpt 5", "openai:\"x"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		assert_int_equal(kiln_llm_spec_parse(&s, bad[i]), KILN_EINVAL);
		assert_true(strlen(kiln_error_last()) > 10);
	}
}

static void test_llm__configured_and_missing_key(void **state)
{
	(void)state;
	char why[300];
	unsetenv("KILN_LLM");
	unsetenv("OPENAI_API_KEY");
	unsetenv("ANTHROPIC_API_KEY");
	assert_null(kiln_llm_default_spec());
	assert_false(kiln_llm_configured(NULL, why, sizeof why));
	assert_non_null(strstr(why, "OPENAI_API_KEY"));
	assert_false(kiln_llm_configured("anthropic:claude-haiku-4-5", why, sizeof why));
	assert_non_null(strstr(why, "ANTHROPIC_API_KEY"));

	kiln_llm *c = NULL;
	kiln_llm_config cfg = {.spec = "openai:gpt-5"};
	assert_int_equal(kiln_llm_new(&c, &cfg), KILN_EINVAL);
	assert_null(c);
	assert_non_null(strstr(kiln_error_last(), "OPENAI_API_KEY"));

	setenv("ANTHROPIC_API_KEY", "sk-ant-unit-SECRET-0001", 1);
	assert_string_equal(kiln_llm_default_spec(), "anthropic:claude-sonnet-4-5");
	assert_true(kiln_llm_configured(NULL, why, sizeof why));
	assert_null(strstr(why, "SECRET"));
	setenv("KILN_LLM", "openai-compatible:local@http://127.0.0.1:9/v1", 1);
	assert_true(kiln_llm_configured(NULL, why, sizeof why));
	assert_non_null(strstr(why, "no key"));
	unsetenv("KILN_LLM");
	unsetenv("ANTHROPIC_API_KEY");
}

/* ---------------- SSE ---------------- */

typedef struct events {
	char log[4096]; /* "event|data;" per event */
	int n;
} events;

static kiln_err collect(void *arg, const char *event, const char *data, size_t len)
{
	events *ev = arg;
	assert_int_equal(strlen(data), len);
	size_t o = strlen(ev->log);
	snprintf(ev->log + o, sizeof ev->log - o, "%s|%s;", event, data);
	ev->n++;
	return KILN_OK;
}

static void feed_all(events *ev, const char *text, size_t len, size_t split)
{
	kiln_sse p;
	kiln_sse_init(&p, 0);
	memset(ev, 0, sizeof *ev);
	if (split == 0 || split >= len) {
		assert_int_equal(kiln_sse_feed(&p, text, len, collect, ev), 0);
	} else {
		assert_int_equal(kiln_sse_feed(&p, text, split, collect, ev), 0);
		assert_int_equal(kiln_sse_feed(&p, text + split, len - split, collect, ev), 0);
	}
	kiln_sse_free(&p);
}

static void test_llm__sse_spec(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
		{"data: a\n\n", "message|a;"},
		{"data:a\r\n\r\n", "message|a;"},                         /* no space, CRLF */
		{"data:  two spaces\r\r", "message| two spaces;"},        /* only one space dropped, CR */
		{": comment\ndata: x\n: another\n\n", "message|x;"},
		{"event: message_start\ndata: {}\n\n", "message_start|{};"},
		{"data: l1\ndata: l2\ndata\n\n", "message|l1\nl2\n;"},   /* "data" alone adds an empty line */
		{"data:\n\n", "message|;"},                              /* empty data still dispatches */
		{"event: ping\n\n", ""},                                 /* no data: nothing dispatched */
		{"data: a\n\ndata: b\n", "message|a;"},                  /* incomplete last event dropped */
		{"\xEF\xBB\xBF" "data: bom\n\n", "message|bom;"},
		{"id: 7\nretry: 1500\nfoo: bar\ndata: z\n\n", "message|z;"},
		{"event: a\nevent: b\ndata: q\n\ndata: r\n\n", "b|q;message|r;"}, /* type resets per event */
		{"data: x:y: z\n\n", "message|x:y: z;"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		size_t len = strlen(cases[i].in);
		for (size_t split = 0; split < len; split++) { /* every split point, incl. inside CRLF / BOM */
			events ev;
			feed_all(&ev, cases[i].in, len, split);
			if (strcmp(ev.log, cases[i].want) != 0)
				fail_msg("case %zu split %zu: got \"%s\" want \"%s\"", i, split, ev.log, cases[i].want);
		}
	}
	/* byte-at-a-time equals all at once for a realistic Anthropic stream */
	const char *stream = "event: message_start\r\ndata: {\"type\":\"message_start\"}\r\n\r\n: keep-alive\r\n\r\n"
			     "event: content_block_delta\r\ndata: {\"t\":1}\r\n\r\nevent: message_stop\r\ndata: {}\r\n\r\n";
	kiln_sse p;
	events one, all;
	memset(&one, 0, sizeof one);
	kiln_sse_init(&p, 0);
	for (size_t i = 0; stream[i]; i++)
		assert_int_equal(kiln_sse_feed(&p, stream + i, 1, collect, &one), 0);
	kiln_sse_free(&p);
	feed_all(&all, stream, strlen(stream), 0);
	assert_string_equal(one.log, all.log);
	assert_int_equal(all.n, 3);
	/* id and retry fields are kept */
	kiln_sse_init(&p, 0);
	memset(&one, 0, sizeof one);
	assert_int_equal(kiln_sse_feed(&p, "id: 42\nretry: 250\n\n", 19, collect, &one), 0);
	assert_string_equal(p.id, "42");
	assert_int_equal(p.retry_ms, 250);
	kiln_sse_free(&p);
}

static void test_llm__sse_caps(void **state)
{
	(void)state;
	kiln_sse p;
	events ev;
	memset(&ev, 0, sizeof ev);
	kiln_sse_init(&p, 16);
	assert_int_equal(kiln_sse_feed(&p, "data: 0123456789abcdef0123\n", 27, collect, &ev), KILN_EOVERFLOW);
	kiln_sse_free(&p);
	kiln_sse_init(&p, 16);
	const char *three = "data: 0123456\ndata: 0123456\ndata: 0\n\n"; /* 8 + 8 + 2 data bytes > 16 */
	assert_int_equal(kiln_sse_feed(&p, three, strlen(three), collect, &ev), KILN_EOVERFLOW);
	kiln_sse_free(&p);
	assert_int_equal(ev.n, 0);
}

/* ---------------- error bodies ---------------- */

static void err_case(int http, const char *body, const char *want_sub, const char *want_type, bool quota,
		     kiln_llm_verdict v)
{
	kiln_llm_errinfo e;
	kiln_llm_error_parse(&e, http, body, body ? strlen(body) : 0);
	if (!strstr(e.line, want_sub))
		fail_msg("body %s: line \"%s\" lacks \"%s\"", body ? body : "(null)", e.line, want_sub);
	assert_string_equal(e.type, want_type);
	assert_int_equal(e.quota, quota);
	assert_null(strchr(e.line, '\n'));
	if (kiln_llm_classify(http, &e) != v)
		fail_msg("body %s: verdict %d, want %d", body ? body : "(null)", kiln_llm_classify(http, &e), v);
}

static void test_llm__error_bodies(void **state)
{
	(void)state;
	/* OpenAI */
	err_case(429, "{\"error\":{\"message\":\"Rate limit reached for gpt-5\",\"type\":\"requests\",\"param\":null,"
		      "\"code\":\"rate_limit_exceeded\"}}", "HTTP 429 rate_limit_exceeded: Rate limit reached for gpt-5",
		 "rate_limit_exceeded", false, KILN_LLM_RETRY);
	err_case(429, "{\"error\":{\"message\":\"You exceeded your current quota, please check your plan and billing "
		      "details.\",\"type\":\"insufficient_quota\",\"code\":\"insufficient_quota\"}}",
		 "exceeded your current quota", "insufficient_quota", true, KILN_LLM_FATAL);
	err_case(401, "{\"error\":{\"message\":\"Incorrect API key provided\",\"type\":\"invalid_request_error\","
		      "\"code\":\"invalid_api_key\"}}", "HTTP 401 invalid_api_key: Incorrect API key", "invalid_api_key",
		 false, KILN_LLM_FATAL);
	err_case(400, "{\"error\":{\"message\":\"This model's maximum context length is 128000 tokens\","
		      "\"type\":\"invalid_request_error\",\"code\":\"context_length_exceeded\"}}",
		 "maximum context length", "context_length_exceeded", false, KILN_LLM_FAIL);
	/* Anthropic */
	err_case(529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
		 "HTTP 529 overloaded_error: Overloaded", "overloaded_error", false, KILN_LLM_RETRY);
	err_case(400, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"Your credit "
		      "balance is too low to access the Anthropic API.\"}}", "credit balance", "invalid_request_error",
		 true, KILN_LLM_FATAL);
	err_case(0, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}",
		 "error in the stream overloaded_error: Overloaded", "overloaded_error", false, KILN_LLM_RETRY);
	err_case(0, "{\"type\":\"error\",\"error\":{\"type\":\"invalid_request_error\",\"message\":\"bad\"}}",
		 "bad", "invalid_request_error", false, KILN_LLM_FATAL);
	/* OpenRouter: numeric code, upstream error in metadata.raw */
	err_case(502, "{\"error\":{\"code\":502,\"message\":\"Provider returned error\",\"metadata\":{\"raw\":"
		      "\"upstream timeout\",\"provider_name\":\"Fireworks\"}}}",
		 "HTTP 502 502: Provider returned error (provider Fireworks: upstream timeout)", "502", false,
		 KILN_LLM_RETRY);
	err_case(402, "{\"error\":{\"code\":402,\"message\":\"Insufficient credits\",\"metadata\":{\"raw\":{\"x\":1}}}}",
		 "Insufficient credits ({\"x\":1})", "402", true, KILN_LLM_FATAL);
	/* llama.cpp server: numeric code + type */
	err_case(500, "{\"error\":{\"code\":500,\"message\":\"slot unavailable\",\"type\":\"server_error\"}}",
		 "HTTP 500 server_error: slot unavailable", "server_error", false, KILN_LLM_RETRY);
	/* vLLM: top-level fields */
	err_case(404, "{\"object\":\"error\",\"message\":\"The model `x` does not exist.\",\"type\":\"NotFoundError\","
		      "\"param\":null,\"code\":404}", "does not exist", "NotFoundError", false, KILN_LLM_FATAL);
	/* Ollama: error as a string */
	err_case(404, "{\"error\":\"model 'qwen' not found\"}", "HTTP 404: model 'qwen' not found", "", false,
		 KILN_LLM_FATAL);
	/* FastAPI */
	err_case(422, "{\"detail\":[{\"loc\":[\"body\"],\"msg\":\"field required\"}]}", "HTTP 422: field required", "",
		 false, KILN_LLM_FATAL);
	err_case(404, "{\"detail\":\"Not Found\"}", "HTTP 404: Not Found", "", false, KILN_LLM_FATAL);
	/* HTML from a proxy, plain text, nothing */
	err_case(503, "<html><head><title>503 Service Unavailable</title></head>\n<body>busy</body></html>",
		 "HTTP 503: 503 Service Unavailable busy", "", false, KILN_LLM_RETRY);
	err_case(504, "upstream request timeout\r\n", "HTTP 504: upstream request timeout", "", false, KILN_LLM_RETRY);
	err_case(500, "", "HTTP 500: (empty body)", "", false, KILN_LLM_RETRY);
	err_case(500, NULL, "HTTP 500: (empty body)", "", false, KILN_LLM_RETRY);
	err_case(413, "{}", "HTTP 413: (no message in the error body)", "", false, KILN_LLM_FATAL);
	/* a huge message is cut to one bounded line */
	char big[4000];
	memset(big, 'x', sizeof big);
	memcpy(big, "{\"error\":{\"message\":\"", 21);
	memcpy(big + sizeof big - 4, "\"}}", 4);
	kiln_llm_errinfo e;
	kiln_llm_error_parse(&e, 500, big, strlen(big));
	assert_true(strlen(e.line) < sizeof e.line);
	assert_non_null(strstr(e.line, "..."));
}

static void test_llm__classify_statuses(void **state)
{
	(void)state;
	kiln_llm_errinfo none;
	memset(&none, 0, sizeof none);
	int retry[] = {408, 409, 429, 500, 502, 503, 504, 529};
	int fatal[] = {400, 401, 403, 404, 413, 422};
	for (size_t i = 0; i < KILN_ARRAY_LEN(retry); i++)
		assert_int_equal(kiln_llm_classify(retry[i], &none), KILN_LLM_RETRY);
	for (size_t i = 0; i < KILN_ARRAY_LEN(fatal); i++)
		assert_int_equal(kiln_llm_classify(fatal[i], &none), KILN_LLM_FATAL);
	assert_int_equal(kiln_llm_classify(501, &none), KILN_LLM_FAIL);
	assert_int_equal(kiln_llm_classify(0, &none), KILN_LLM_RETRY);
}

static void test_llm__retry_after(void **state)
{
	(void)state;
	assert_true(fabs(kiln_llm_retry_after("2", NULL, 0) - 2) < 1e-9);
	assert_true(fabs(kiln_llm_retry_after("1.5", NULL, 0) - 1.5) < 1e-9);
	assert_true(fabs(kiln_llm_retry_after("30", "250", 0) - 0.25) < 1e-9); /* ms wins */
	assert_true(kiln_llm_retry_after(NULL, NULL, 0) < 0);
	assert_true(kiln_llm_retry_after("soon", NULL, 0) < 0);
	assert_true(kiln_llm_retry_after("-3", NULL, 0) < 0);
	/* HTTP date: Sun, 06 Nov 1994 08:49:37 GMT = 784111777 */
	assert_true(fabs(kiln_llm_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NULL, 784111770.0) - 7) < 1e-9);
	assert_true(kiln_llm_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NULL, 784111999.0) == 0);
}

/* ---------------- usage, cost, prices ---------------- */

static kiln_llm_prices *shipped(void)
{
	kiln_llm_prices *p = NULL;
	assert_int_equal(kiln_llm_prices_load(&p, KILN_SOURCE_ROOT "/data/prices.json", NULL), 0);
	return p;
}

/* A fresh result with body parsed as a complete reply of api (must succeed). */
static void parse_ok(kiln_llm_result *r, kiln_llm_api api, const char *body)
{
	kiln_llm_result_init(r, 1 << 20);
	assert_int_equal(kiln_llm_parse_reply(r, api, body, strlen(body)), 0);
}

static void test_llm__usage_cost_openai(void **state)
{
	(void)state;
	kiln_llm_result r;
	const char *body = "{\"id\":\"chatcmpl-1\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
			   "\"content\":\"hi\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":2000,"
			   "\"completion_tokens\":300,\"prompt_tokens_details\":{\"cached_tokens\":1536},"
			   "\"completion_tokens_details\":{\"reasoning_tokens\":256}}}";
	parse_ok(&r, KILN_LLM_API_OPENAI, body);
	assert_string_equal(r.text.data, "hi");
	assert_string_equal(r.id, "chatcmpl-1");
	assert_string_equal(kiln_llm_result_status(&r), "ok");
	assert_true(r.usage.known);
	assert_int_equal(r.usage.prompt, 2000);
	assert_int_equal(r.usage.cached, 1536);
	assert_int_equal(r.usage.completion, 300);
	assert_int_equal(r.usage.reasoning, 256);
	kiln_llm_prices *p = shipped();
	kiln_llm_price pr;
	assert_true(kiln_llm_prices_find(p, &pr, "openai", "gpt-5"));
	/* 464 fresh x 1.25 + 1536 cached x 0.125 + 300 out x 10, per million */
	assert_true(fabs(kiln_llm_cost(&pr, &r.usage) - (464 * 1.25 + 1536 * 0.125 + 300 * 10.0) / 1e6) < 1e-12);
	kiln_llm_result_free(&r);

	/* streamed: usage only in the last chunk (choices: []) */
	kiln_llm_result_init(&r, 1 << 20);
	const char *ev[] = {
		"{\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}",
		"{\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"he\"}}]}",
		"{\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo\"},\"finish_reason\":null}],\"usage\":null}",
		"{\"id\":\"c2\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"length\"}]}",
		"{\"id\":\"c2\",\"choices\":[],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":4}}",
		"[DONE]",
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(ev); i++)
		assert_int_equal(kiln_llm_stream_event(&r, KILN_LLM_API_OPENAI, "message", ev[i], strlen(ev[i])), 0);
	assert_true(r.done);
	assert_string_equal(r.text.data, "hello");
	assert_string_equal(kiln_llm_result_status(&r), "truncated");
	assert_int_equal(r.usage.prompt, 10);
	assert_int_equal(r.usage.cached, 0);
	assert_int_equal(r.usage.reasoning, -1);
	assert_int_equal(kiln_llm_stream_event(&r, KILN_LLM_API_OPENAI, "message", "{\"x\"", 4), KILN_EINVAL);
	kiln_llm_result_free(&r);
	kiln_llm_prices_free(p);
}

static void test_llm__usage_cost_anthropic(void **state)
{
	(void)state;
	kiln_llm_prices *p = shipped();
	kiln_llm_price pr;
	assert_true(kiln_llm_prices_find(p, &pr, "anthropic", "claude-sonnet-4-5"));
	/* non-stream: input_tokens excludes cache reads and writes */
	kiln_llm_result r;
	const char *body = "{\"id\":\"msg_1\",\"type\":\"message\",\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\"},"
			   "{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}],\"stop_reason\":\"end_turn\","
			   "\"usage\":{\"input_tokens\":50,\"cache_creation_input_tokens\":1000,\"cache_read_input_tokens\":3000,"
			   "\"output_tokens\":200}}";
	parse_ok(&r, KILN_LLM_API_ANTHROPIC, body);
	assert_string_equal(r.text.data, "ab");
	assert_int_equal(r.usage.prompt, 4050);
	assert_int_equal(r.usage.cached, 3000);
	assert_int_equal(r.usage.cache_write, 1000);
	assert_int_equal(r.usage.completion, 200);
	double want = (50 * 3.0 + 3000 * 0.30 + 1000 * 3.75 + 200 * 15.0) / 1e6;
	assert_true(fabs(kiln_llm_cost(&pr, &r.usage) - want) < 1e-12);
	kiln_llm_result_free(&r);

	/* stream: message_start has the input side, message_delta the final output count */
	kiln_llm_result_init(&r, 1 << 20);
	const char *ev[][2] = {
		{"message_start", "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_2\",\"usage\":{\"input_tokens\":7,"
				  "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":900,\"output_tokens\":1}}}"},
		{"content_block_start", "{\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"}}"},
		{"ping", "{\"type\":\"ping\"}"},
		{"content_block_delta", "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"po\"}}"},
		{"content_block_delta", "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":\"z\"}}"},
		{"content_block_delta", "{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"ng\"}}"},
		{"message_delta", "{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"max_tokens\"},\"usage\":{\"output_tokens\":64}}"},
		{"message_stop", "{\"type\":\"message_stop\"}"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(ev); i++)
		assert_int_equal(kiln_llm_stream_event(&r, KILN_LLM_API_ANTHROPIC, ev[i][0], ev[i][1], strlen(ev[i][1])), 0);
	assert_true(r.done);
	assert_string_equal(r.id, "msg_2");
	assert_string_equal(r.text.data, "pong");
	assert_string_equal(kiln_llm_result_status(&r), "truncated");
	assert_int_equal(r.usage.prompt, 907);
	assert_int_equal(r.usage.cached, 900);
	assert_int_equal(r.usage.completion, 64);
	/* an error event after 200 */
	const char *err = "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}";
	assert_int_equal(kiln_llm_stream_event(&r, KILN_LLM_API_ANTHROPIC, "error", err, strlen(err)), 0);
	assert_true(r.stream_error);
	assert_string_equal(r.err.type, "overloaded_error");
	kiln_llm_result_free(&r);

	/* refusal */
	parse_ok(&r, KILN_LLM_API_ANTHROPIC, "{\"content\":[],\"stop_reason\":\"refusal\",\"usage\":{\"input_tokens\":1}}");
	assert_string_equal(kiln_llm_result_status(&r), "refused");
	kiln_llm_result_free(&r);
	kiln_llm_prices_free(p);
}

static void test_llm__reply_garbage_and_caps(void **state)
{
	(void)state;
	kiln_llm_result r;
	const char *bad[] = {"", "not json", "[]", "{\"choices\":[]}", "{\"choices\":\"x\"}",
			     "{\"choices\":[{\"message\":\"str\"}]}"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		kiln_llm_result_init(&r, 1 << 20);
		assert_int_equal(kiln_llm_parse_reply(&r, KILN_LLM_API_OPENAI, bad[i], strlen(bad[i])), KILN_EINVAL);
		kiln_llm_result_free(&r);
	}
	kiln_llm_result_init(&r, 1 << 20);
	assert_int_equal(kiln_llm_parse_reply(&r, KILN_LLM_API_ANTHROPIC, "{\"id\":1}", 8), KILN_EINVAL);
	kiln_llm_result_free(&r);
	/* a 200 carrying an error object (OpenRouter) */
	kiln_llm_result_init(&r, 1 << 20);
	const char *e200 = "{\"error\":{\"code\":429,\"message\":\"Rate limited upstream\"}}";
	assert_int_equal(kiln_llm_parse_reply(&r, KILN_LLM_API_OPENAI, e200, strlen(e200)), 0);
	assert_true(r.stream_error);
	assert_non_null(strstr(r.err.line, "Rate limited upstream"));
	kiln_llm_result_free(&r);
	/* the text cap */
	kiln_llm_result_init(&r, 4);
	const char *longer = "{\"choices\":[{\"message\":{\"content\":\"0123456789\"},\"finish_reason\":\"stop\"}]}";
	assert_int_equal(kiln_llm_parse_reply(&r, KILN_LLM_API_OPENAI, longer, strlen(longer)), KILN_EOVERFLOW);
	kiln_llm_result_free(&r);
	/* content filter / refusal field */
	kiln_llm_result_init(&r, 1 << 20);
	const char *refusal = "{\"choices\":[{\"message\":{\"content\":null,\"refusal\":\"I can't\"},\"finish_reason\":\"stop\"}]}";
	assert_int_equal(kiln_llm_parse_reply(&r, KILN_LLM_API_OPENAI, refusal, strlen(refusal)), 0);
	assert_string_equal(kiln_llm_result_status(&r), "refused");
	kiln_llm_result_free(&r);
}

static void test_llm__prices_lookup_and_override(void **state)
{
	(void)state;
	kiln_llm_prices *p = shipped();
	kiln_llm_price pr;
	assert_true(kiln_llm_prices_find(p, &pr, "anthropic", "claude-sonnet-4-5-20250929")); /* snapshot */
	assert_true(pr.input == 3.0 && pr.cache_write == 3.75);
	assert_true(kiln_llm_prices_find(p, &pr, "openai", "gpt-4o-2024-08-06"));
	assert_true(pr.input == 2.5);
	assert_true(kiln_llm_prices_find(p, &pr, "openai", "gpt-5-nano"));
	assert_true(pr.input == 0.05);
	/* "gpt-5-turbo-x" is not a snapshot of gpt-5: unknown, not gpt-5's price */
	assert_false(kiln_llm_prices_find(p, &pr, "openai", "gpt-5-turbo-x"));
	assert_true(kiln_llm_prices_find(p, &pr, "openai-compatible", "openai/gpt-5")); /* OpenRouter */
	assert_false(kiln_llm_prices_find(p, &pr, "openai-compatible", "qwen2.5-coder-32b"));
	kiln_llm_usage u = {.prompt = 10, .completion = 5, .reasoning = -1, .known = false};
	assert_true(isnan(kiln_llm_cost(&pr, &u)));
	kiln_llm_prices_free(p);

	char path[] = "/tmp/kiln-test-prices-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	const char *over = "{\"models\":{\"openai-compatible:qwen2.5-coder-32b\":{\"input\":0,\"output\":0},"
			   "\"openai:gpt-5\":{\"input\":2,\"cached_input\":0.2,\"output\":20}}}";
	assert_int_equal(write(fd, over, strlen(over)), (ssize_t)strlen(over));
	close(fd);
	assert_int_equal(kiln_llm_prices_load(&p, KILN_SOURCE_ROOT "/data/prices.json", path), 0);
	assert_true(kiln_llm_prices_find(p, &pr, "openai-compatible", "qwen2.5-coder-32b"));
	assert_true(pr.input == 0 && pr.output == 0);
	assert_true(kiln_llm_prices_find(p, &pr, "openai", "gpt-5"));
	assert_true(pr.input == 2 && pr.cached_input == 0.2 && pr.cache_write == 2); /* write defaults to input */
	assert_true(kiln_llm_prices_find(p, &pr, "anthropic", "claude-haiku-4-5"));   /* base kept */
	kiln_llm_prices_free(p);
	const char *bad[] = {"{\"models\":{\"m\":{\"input\":1}}}", "{\"models\":{\"m\":{\"input\":1,\"output\":-2}}}",
			     "{\"models\":{\"m\":{\"input\":1,\"output\":2,\"typo\":3}}}", "{\"modls\":{}}", "[1"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		FILE *f = fopen(path, "w");
		fputs(bad[i], f);
		fclose(f);
		p = NULL;
		assert_int_not_equal(kiln_llm_prices_load(&p, NULL, path), 0);
		assert_null(p);
		assert_non_null(strstr(kiln_error_last(), path));
	}
	unlink(path);
}

/* ---------------- request bodies ---------------- */

static cJSON *body_of(const char *spec, bool stream, const kiln_llm_request *rq)
{
	kiln_llm_spec s;
	assert_int_equal(kiln_llm_spec_parse(&s, spec), 0);
	char *b = kiln_llm_body_build(&s, rq, 321, stream);
	assert_non_null(b);
	cJSON *j = cJSON_Parse(b);
	free(b);
	assert_non_null(j);
	return j;
}

static void test_llm__request_bodies(void **state)
{
	(void)state;
	kiln_llm_request rq = {.system = "SYS", .prefix = "PREFIX", .task = "TASK"};
	cJSON *j = body_of("openai:gpt-5", true, &rq);
	assert_int_equal(cJSON_GetObjectItem(j, "max_completion_tokens")->valueint, 321);
	assert_null(cJSON_GetObjectItem(j, "max_tokens"));
	assert_true(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "stream_options"), "include_usage")));
	cJSON *msgs = cJSON_GetObjectItem(j, "messages");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 0), "role")->valuestring, "system");
	const char *user = cJSON_GetObjectItem(cJSON_GetArrayItem(msgs, 1), "content")->valuestring;
	assert_string_equal(user, "PREFIX\n\nTASK"); /* stable prefix first: OpenAI's prefix cache */
	cJSON_Delete(j);

	j = body_of("vllm:m@http://h/v1", false, &rq);
	assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 321);
	assert_null(cJSON_GetObjectItem(j, "stream"));
	cJSON_Delete(j);

	j = body_of("anthropic:claude-sonnet-4-5", true, &rq);
	assert_int_equal(cJSON_GetObjectItem(j, "max_tokens")->valueint, 321);
	assert_null(cJSON_GetObjectItem(j, "stream_options"));
	cJSON *sys = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "system"), 0);
	assert_string_equal(cJSON_GetObjectItem(sys, "text")->valuestring, "SYS");
	cJSON *content = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(j, "messages"), 0), "content");
	assert_int_equal(cJSON_GetArraySize(content), 2);
	cJSON *b0 = cJSON_GetArrayItem(content, 0), *b1 = cJSON_GetArrayItem(content, 1);
	assert_string_equal(cJSON_GetObjectItem(b0, "text")->valuestring, "PREFIX");
	assert_string_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(b0, "cache_control"), "type")->valuestring, "ephemeral");
	assert_null(cJSON_GetObjectItem(b1, "cache_control"));
	cJSON_Delete(j);
}

/* ---------------- scrubbing and recording ---------------- */

static void test_llm__scrub(void **state)
{
	(void)state;
	char *s = kiln_llm_scrub(kiln_strdup("key sk-abcdefgh12 and sk-abcdefgh12!"), "sk-abcdefgh12");
	assert_string_equal(s, "key [redacted] and [redacted]!");
	free(s);
	s = kiln_llm_scrub(kiln_strdup("short ab"), "ab"); /* too short to be a key: untouched */
	assert_string_equal(s, "short ab");
	free(s);
}

static void test_llm__record_without_key(void **state)
{
	(void)state;
	const char *key = "sk-unit-PLANTED-9f8e7d6c5b4a";
	char dir[] = "/tmp/kiln-test-llm-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char *path = kiln_path_join(dir, "history.db");
	setenv("OPENAI_API_KEY", key, 1);
	kiln_llm *c = NULL;
	kiln_llm_config cfg = {.spec = "openai:gpt-5", .base_url = "http://127.0.0.1:9/v1"};
	assert_int_equal(kiln_llm_new(&c, &cfg), 0);
	assert_string_equal(kiln_llm_key_env(c), "OPENAI_API_KEY");
	assert_string_equal(kiln_llm_base_url(c), "http://127.0.0.1:9/v1");
	kiln_db *db = NULL;
	assert_int_equal(kiln_db_open(&db, path, 0), 0);
	kiln_run_rec rr = {.target = "adamw", .policy = "llm", .device = "emu", .arch = "sm_90"};
	int64_t run = 0, call = 0;
	assert_int_equal(kiln_db_run_begin(db, &run, &rr), 0);
	char text[128], error[128];
	snprintf(text, sizeof text, "echoed %s", key); /* as if a server echoed the key back */
	snprintf(error, sizeof error, "HTTP 401: Incorrect API key provided: %s", key);
	kiln_llm_reply r = {.text = text, .status = "error", .error = error, .attempts = 1, .latency_s = 0.5,
			    .prompt_tokens = 0, .cached_tokens = 0, .completion_tokens = 0, .reasoning_tokens = -1,
			    .cost_usd = NAN};
	kiln_llm_request rq = {.system = "S", .prefix = "P", .task = "T", .purpose = "init"};
	assert_int_equal(kiln_llm_record(db, run, c, &rq, &r, &call), 0);
	assert_true(call > 0);
	kiln_db_close(db);
	char *bytes = NULL;
	size_t n = 0;
	assert_int_equal(kiln_file_read(&bytes, &n, path, 0), 0);
	assert_null(memmem(bytes, n, key, strlen(key)));
	free(bytes);
	char *wal = kiln_asprintf("%s-wal", path);
	if (kiln_file_read(&bytes, &n, wal, 0) == 0) {
		assert_null(memmem(bytes, n, key, strlen(key)));
		free(bytes);
	}
	free(wal);
	kiln_llm_free(c);
	unsetenv("OPENAI_API_KEY");
	char *cmd = kiln_asprintf("rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_llm__spec_parse),
		cmocka_unit_test(test_llm__configured_and_missing_key),
		cmocka_unit_test(test_llm__sse_spec),
		cmocka_unit_test(test_llm__sse_caps),
		cmocka_unit_test(test_llm__error_bodies),
		cmocka_unit_test(test_llm__classify_statuses),
		cmocka_unit_test(test_llm__retry_after),
		cmocka_unit_test(test_llm__usage_cost_openai),
		cmocka_unit_test(test_llm__usage_cost_anthropic),
		cmocka_unit_test(test_llm__reply_garbage_and_caps),
		cmocka_unit_test(test_llm__prices_lookup_and_override),
		cmocka_unit_test(test_llm__request_bodies),
		cmocka_unit_test(test_llm__scrub),
		cmocka_unit_test(test_llm__record_without_key),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
