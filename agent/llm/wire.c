/* llm: the wire APIs, one table row each (at the end). Request bodies (stable prefix first
 * so OpenAI's automatic prefix cache hits; Anthropic gets cache_control on it), complete
 * replies, stream events of both APIs and their usage objects. Every field is read defensively: a reply is text
 * from the network, so a missing or mistyped field is an error, never a crash. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm/llm_int.h"

/* ---------------- request bodies ---------------- */

static cJSON *text_block(const char *text, bool cache)
{
	cJSON *b = cJSON_CreateObject();
	if (!b)
		return NULL;
	cJSON_AddStringToObject(b, "type", "text");
	cJSON_AddStringToObject(b, "text", text);
	if (cache) {
		cJSON *cc = cJSON_AddObjectToObject(b, "cache_control");
		if (cc)
			cJSON_AddStringToObject(cc, "type", "ephemeral");
	}
	return b;
}

static bool has(const char *s)
{
	return s && *s;
}

static void add_anthropic(cJSON *root, const kiln_llm_spec *s, const kiln_llm_request *req, int max_tokens)
{
	(void)s;
	cJSON_AddNumberToObject(root, "max_tokens", max_tokens);
	if (has(req->system)) {
		cJSON *sys = cJSON_AddArrayToObject(root, "system");
		/* without a prefix the system text is the stable part worth caching */
		cJSON_AddItemToArray(sys, text_block(req->system, !has(req->prefix)));
	}
	cJSON *msgs = cJSON_AddArrayToObject(root, "messages");
	cJSON *m = cJSON_CreateObject();
	cJSON_AddItemToArray(msgs, m);
	cJSON_AddStringToObject(m, "role", "user");
	cJSON *content = cJSON_AddArrayToObject(m, "content");
	if (has(req->prefix))
		cJSON_AddItemToArray(content, text_block(req->prefix, true));
	cJSON_AddItemToArray(content, text_block(req->task, false));
}

static void add_openai(cJSON *root, const kiln_llm_spec *s, const kiln_llm_request *req, int max_tokens)
{
	cJSON_AddNumberToObject(root, s->row->token_field, max_tokens);
	cJSON *msgs = cJSON_AddArrayToObject(root, "messages");
	if (has(req->system)) {
		cJSON *m = cJSON_CreateObject();
		cJSON_AddItemToArray(msgs, m);
		cJSON_AddStringToObject(m, "role", "system");
		cJSON_AddStringToObject(m, "content", req->system);
	}
	cJSON *m = cJSON_CreateObject();
	cJSON_AddItemToArray(msgs, m);
	cJSON_AddStringToObject(m, "role", "user");
	char *user = has(req->prefix) ? kiln_asprintf("%s\n\n%s", req->prefix, req->task) : NULL;
	cJSON_AddStringToObject(m, "content", user ? user : req->task);
	free(user);
}

/* ---------------- usage ---------------- */

static bool get_count(int64_t *out, const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 1e15)
		return false;
	*out = (int64_t)v->valuedouble;
	return true;
}

void kiln_llm_usage_openai(kiln_llm_usage *u, const cJSON *usage)
{
	if (!cJSON_IsObject(usage))
		return;
	bool any = get_count(&u->prompt, usage, "prompt_tokens");
	any |= get_count(&u->completion, usage, "completion_tokens");
	get_count(&u->cached, cJSON_GetObjectItemCaseSensitive(usage, "prompt_tokens_details"), "cached_tokens");
	get_count(&u->reasoning, cJSON_GetObjectItemCaseSensitive(usage, "completion_tokens_details"),
		  "reasoning_tokens");
	if (u->cached > u->prompt)
		u->cached = u->prompt;
	u->known |= any;
}

void kiln_llm_usage_anthropic(kiln_llm_usage *u, const cJSON *usage)
{
	if (!cJSON_IsObject(usage))
		return;
	/* input_tokens counts only what was neither read from nor written to the cache */
	int64_t uncached = u->prompt - u->cached - u->cache_write;
	if (uncached < 0)
		uncached = 0;
	bool any = get_count(&uncached, usage, "input_tokens");
	any |= get_count(&u->cached, usage, "cache_read_input_tokens");
	any |= get_count(&u->cache_write, usage, "cache_creation_input_tokens");
	any |= get_count(&u->completion, usage, "output_tokens");
	u->prompt = uncached + u->cached + u->cache_write;
	u->known |= any;
}

/* ---------------- results ---------------- */

void kiln_llm_result_init(kiln_llm_result *r, size_t max_text)
{
	memset(r, 0, sizeof *r);
	kiln_buf_init(&r->text, max_text);
	r->usage.reasoning = -1;
}

void kiln_llm_result_free(kiln_llm_result *r)
{
	kiln_buf_free(&r->text);
}

static void copy_str(char *dst, size_t n, const cJSON *v)
{
	if (cJSON_IsString(v) && v->valuestring)
		snprintf(dst, n, "%s", v->valuestring);
}

static kiln_err append_text(kiln_llm_result *r, const cJSON *v)
{
	if (!cJSON_IsString(v) || !v->valuestring)
		return KILN_OK;
	if (kiln_buf_puts(&r->text, v->valuestring))
		return kiln_error_set(KILN_EOVERFLOW, "reply text larger than the %zu-byte cap", r->text.max);
	return KILN_OK;
}

/* A 200 that carries an error object instead of an answer (OpenRouter, proxies). */
static bool body_error(kiln_llm_result *r, const cJSON *root, const char *data, size_t len)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
	if (!err && !(cJSON_IsString(type) && strcmp(type->valuestring, "error") == 0))
		return false;
	kiln_llm_error_parse(&r->err, 0, data, len);
	r->stream_error = true;
	return true;
}

static kiln_err openai_choice(kiln_llm_result *r, const cJSON *choice, const char *msg_key)
{
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(choice, msg_key);
	if (msg && !cJSON_IsObject(msg))
		return kiln_error_set(KILN_EINVAL, "reply: choices[0].%s is not an object", msg_key);
	kiln_err e = append_text(r, cJSON_GetObjectItemCaseSensitive(msg, "content"));
	if (e)
		return e;
	const cJSON *refusal = cJSON_GetObjectItemCaseSensitive(msg, "refusal");
	if (cJSON_IsString(refusal) && refusal->valuestring[0]) {
		r->refused = true;
		if ((e = append_text(r, refusal)))
			return e;
	}
	copy_str(r->finish, sizeof r->finish, cJSON_GetObjectItemCaseSensitive(choice, "finish_reason"));
	return KILN_OK;
}

static kiln_err parse_openai(kiln_llm_result *r, const cJSON *root)
{
	copy_str(r->id, sizeof r->id, cJSON_GetObjectItemCaseSensitive(root, "id"));
	const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
	if (!cJSON_IsArray(choices) || !cJSON_IsObject(cJSON_GetArrayItem(choices, 0)))
		return kiln_error_set(KILN_EINVAL, "reply has no choices[0] object");
	kiln_err e = openai_choice(r, cJSON_GetArrayItem(choices, 0), "message");
	kiln_llm_usage_openai(&r->usage, cJSON_GetObjectItemCaseSensitive(root, "usage"));
	return e;
}

static kiln_err anthropic_content(kiln_llm_result *r, const cJSON *content)
{
	if (!cJSON_IsArray(content))
		return kiln_error_set(KILN_EINVAL, "reply has no content array");
	const cJSON *b;
	cJSON_ArrayForEach(b, content) {
		const cJSON *type = cJSON_GetObjectItemCaseSensitive(b, "type");
		if (cJSON_IsString(type) && strcmp(type->valuestring, "text") == 0) {
			kiln_err e = append_text(r, cJSON_GetObjectItemCaseSensitive(b, "text"));
			if (e)
				return e;
		}
	}
	return KILN_OK;
}

static kiln_err parse_anthropic(kiln_llm_result *r, const cJSON *root)
{
	copy_str(r->id, sizeof r->id, cJSON_GetObjectItemCaseSensitive(root, "id"));
	kiln_err e = anthropic_content(r, cJSON_GetObjectItemCaseSensitive(root, "content"));
	if (e)
		return e;
	copy_str(r->finish, sizeof r->finish, cJSON_GetObjectItemCaseSensitive(root, "stop_reason"));
	kiln_llm_usage_anthropic(&r->usage, cJSON_GetObjectItemCaseSensitive(root, "usage"));
	return KILN_OK;
}

static kiln_err stream_openai(kiln_llm_result *r, const cJSON *root)
{
	if (!r->id[0])
		copy_str(r->id, sizeof r->id, cJSON_GetObjectItemCaseSensitive(root, "id"));
	kiln_llm_usage_openai(&r->usage, cJSON_GetObjectItemCaseSensitive(root, "usage"));
	const cJSON *choices = cJSON_GetObjectItemCaseSensitive(root, "choices");
	const cJSON *c0 = cJSON_GetArrayItem(choices, 0);
	if (!cJSON_IsObject(c0)) /* the usage chunk has choices: [] */
		return KILN_OK;
	return openai_choice(r, c0, "delta");
}

static kiln_err stream_anthropic(kiln_llm_result *r, const cJSON *root)
{
	const cJSON *type = cJSON_GetObjectItemCaseSensitive(root, "type");
	const char *t = cJSON_IsString(type) ? type->valuestring : "";
	if (strcmp(t, "message_start") == 0) {
		const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "message");
		copy_str(r->id, sizeof r->id, cJSON_GetObjectItemCaseSensitive(m, "id"));
		kiln_llm_usage_anthropic(&r->usage, cJSON_GetObjectItemCaseSensitive(m, "usage"));
	} else if (strcmp(t, "content_block_delta") == 0) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "delta");
		const cJSON *dt = cJSON_GetObjectItemCaseSensitive(d, "type");
		if (cJSON_IsString(dt) && strcmp(dt->valuestring, "text_delta") == 0)
			return append_text(r, cJSON_GetObjectItemCaseSensitive(d, "text"));
	} else if (strcmp(t, "message_delta") == 0) {
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "delta");
		copy_str(r->finish, sizeof r->finish, cJSON_GetObjectItemCaseSensitive(d, "stop_reason"));
		kiln_llm_usage_anthropic(&r->usage, cJSON_GetObjectItemCaseSensitive(root, "usage"));
	} else if (strcmp(t, "message_stop") == 0) {
		r->done = true;
	}
	return KILN_OK; /* ping, content_block_start/stop and future types */
}

const char *kiln_llm_result_status(const kiln_llm_result *r)
{
	const char *f = r->finish;
	if (r->refused || strcmp(f, "content_filter") == 0 || strcmp(f, "refusal") == 0)
		return "refused";
	if (strcmp(f, "length") == 0 || strcmp(f, "max_tokens") == 0 ||
	    strcmp(f, "model_context_window_exceeded") == 0)
		return "truncated";
	return "ok";
}

/* ---------------- the wire APIs ---------------- */

#define ANTHROPIC_VERSION "2023-06-01"

static const kiln_llm_wire wires[] = {
	[KILN_LLM_API_OPENAI] = {.path = "chat/completions", .auth_prefix = "Authorization: Bearer ",
				 .stream_usage_option = true, .stream_done = "[DONE]", .add_body = add_openai,
				 .parse = parse_openai, .stream = stream_openai},
	[KILN_LLM_API_ANTHROPIC] = {.path = "messages", .auth_prefix = "x-api-key: ",
				    .extra_header = "anthropic-version: " ANTHROPIC_VERSION,
				    .add_body = add_anthropic, .parse = parse_anthropic, .stream = stream_anthropic},
};

const kiln_llm_wire *kiln_llm_wire_of(kiln_llm_api api)
{
	return &wires[api == KILN_LLM_API_ANTHROPIC ? KILN_LLM_API_ANTHROPIC : KILN_LLM_API_OPENAI];
}

char *kiln_llm_body_build(const kiln_llm_spec *s, const kiln_llm_request *req, int max_tokens, bool stream)
{
	cJSON *root = cJSON_CreateObject();
	if (!root) {
		kiln_error_set(KILN_ENOMEM, "out of memory building an LLM request");
		return NULL;
	}
	cJSON_AddStringToObject(root, "model", s->model);
	const kiln_llm_wire *w = kiln_llm_wire_of(s->api);
	w->add_body(root, s, req, max_tokens);
	if (stream) {
		cJSON_AddBoolToObject(root, "stream", true);
		if (w->stream_usage_option) {
			cJSON *so = cJSON_AddObjectToObject(root, "stream_options");
			if (so)
				cJSON_AddBoolToObject(so, "include_usage", true);
		}
	}
	char *body = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!body)
		kiln_error_set(KILN_ENOMEM, "out of memory building an LLM request");
	return body;
}

kiln_err kiln_llm_parse_reply(kiln_llm_result *r, kiln_llm_api api, const char *body, size_t len)
{
	cJSON *root = cJSON_ParseWithLength(body, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return kiln_error_set(KILN_EINVAL, "reply is not a JSON object (%zu bytes)", len);
	}
	kiln_err e = KILN_OK;
	if (!body_error(r, root, body, len))
		e = kiln_llm_wire_of(api)->parse(r, root);
	r->done = true;
	cJSON_Delete(root);
	return e;
}

kiln_err kiln_llm_stream_event(kiln_llm_result *r, kiln_llm_api api, const char *event, const char *data,
			       size_t len)
{
	const kiln_llm_wire *w = kiln_llm_wire_of(api);
	if (w->stream_done && len == strlen(w->stream_done) && memcmp(data, w->stream_done, len) == 0) {
		r->done = true;
		return KILN_OK;
	}
	cJSON *root = cJSON_ParseWithLength(data, len);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return kiln_error_set(KILN_EINVAL, "stream event \"%.32s\" is not a JSON object", event);
	}
	kiln_err e = KILN_OK;
	if (!body_error(r, root, data, len))
		e = w->stream(r, root);
	cJSON_Delete(root);
	return e;
}
