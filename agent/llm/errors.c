/* llm: what went wrong, in one line. Error bodies of every shape seen in the wild become a
 * readable line plus the facts retries need (type, quota exhausted, prompt too long);
 * statuses are classified retry / fail / fatal; retry-after is read; keys are scrubbed. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/llm/llm_int.h"

/* Appends text to out (size n) as one line: control characters and runs of blanks become
 * one space; an overflow ends in "...". */
static void put_line(char *out, size_t n, const char *text, size_t len)
{
	size_t o = strlen(out);
	bool space = o > 0 && out[o - 1] == ' ';
	for (size_t i = 0; i < len && text[i]; i++) {
		unsigned char ch = (unsigned char)text[i];
		bool blank = ch < 0x20 || ch == 0x7f || ch == ' ';
		if (blank && (space || o == 0))
			continue;
		if (o + 4 >= n) {
			if (n >= 4)
				memcpy(out + n - 4, "...", 4);
			return;
		}
		out[o++] = blank ? ' ' : (char)ch;
		space = blank;
	}
	out[o] = '\0';
}

static void put(char *out, size_t n, const char *s)
{
	put_line(out, n, s, strlen(s));
}

static const char *str_of(const cJSON *obj, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	return cJSON_IsString(v) && v->valuestring[0] ? v->valuestring : NULL;
}

/* code may be a string ("rate_limit_exceeded") or a number (429, llama.cpp's 500). */
static void code_of(char *out, size_t n, const cJSON *obj)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "code");
	if (cJSON_IsString(v) && v->valuestring[0])
		snprintf(out, n, "%s", v->valuestring);
	else if (cJSON_IsNumber(v))
		snprintf(out, n, "%d", v->valueint);
}

static bool contains_ci(const char *hay, const char *needle)
{
	size_t nl = strlen(needle);
	for (const char *p = hay; *p; p++)
		if (strncasecmp(p, needle, nl) == 0)
			return true;
	return false;
}

/* The message of a FastAPI-style {"detail": "..." | [{"msg": ...}]}. */
static const char *detail_of(const cJSON *root)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(root, "detail");
	if (cJSON_IsString(d))
		return d->valuestring;
	return str_of(cJSON_GetArrayItem(d, 0), "msg");
}

static void from_json(kiln_llm_errinfo *out, const cJSON *root, const char **msg, char *code,
		      size_t code_n, char *extra, size_t extra_n)
{
	const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (cJSON_IsString(err)) { /* Ollama, some proxies */
		*msg = err->valuestring;
		return;
	}
	const cJSON *src = cJSON_IsObject(err) ? err : root; /* vLLM: the fields are top level */
	*msg = str_of(src, "message");
	if (!*msg)
		*msg = detail_of(root);
	const char *type = str_of(src, "type");
	code_of(code, code_n, src);
	snprintf(out->type, sizeof out->type, "%s", type ? type : code);
	if (type && code[0] && strcmp(type, code) != 0 && !isdigit((unsigned char)code[0]))
		snprintf(out->type, sizeof out->type, "%s", code); /* OpenAI: code is the precise one */
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(src, "metadata");
	if (cJSON_IsObject(meta)) { /* OpenRouter: the upstream provider's own error */
		const char *prov = str_of(meta, "provider_name");
		const cJSON *raw = cJSON_GetObjectItemCaseSensitive(meta, "raw");
		char *raw_s = cJSON_IsString(raw) ? NULL : (raw ? cJSON_PrintUnformatted(raw) : NULL);
		const char *r = cJSON_IsString(raw) ? raw->valuestring : raw_s;
		snprintf(extra, extra_n, "%s%s%s%s", prov ? "provider " : "", prov ? prov : "",
			 prov && r ? ": " : "", r ? r : "");
		free(raw_s);
	}
}

/* Visible text of a non-JSON body: tags dropped, first 200 bytes. */
static void from_text(char *out, size_t n, const char *body, size_t len)
{
	char tmp[256];
	size_t o = 0;
	bool tag = false;
	for (size_t i = 0; i < len && o + 1 < sizeof tmp && o < 200; i++) {
		char ch = body[i];
		if (ch == '<')
			tag = true;
		else if (ch == '>' && tag)
			tag = false, ch = ' ';
		if (!tag && ch != '>')
			tmp[o++] = ch;
	}
	tmp[o] = '\0';
	put(out, n, tmp);
}

void kiln_llm_error_parse(kiln_llm_errinfo *out, int http, const char *body, size_t len)
{
	memset(out, 0, sizeof *out);
	char head[32], code[64] = "", extra[240] = "";
	const char *msg = NULL;
	if (http > 0)
		snprintf(head, sizeof head, "HTTP %d", http);
	else
		snprintf(head, sizeof head, "error in the stream");
	cJSON *root = body && len ? cJSON_ParseWithLength(body, len) : NULL;
	if (cJSON_IsObject(root))
		from_json(out, root, &msg, code, sizeof code, extra, sizeof extra);
	put(out->line, sizeof out->line, head);
	if (out->type[0]) {
		put(out->line, sizeof out->line, " ");
		put(out->line, sizeof out->line, out->type);
	}
	put(out->line, sizeof out->line, ": ");
	if (msg)
		put(out->line, sizeof out->line, msg);
	else if (body && len && !cJSON_IsObject(root))
		from_text(out->line, sizeof out->line, body, len);
	else
		put(out->line, sizeof out->line, len ? "(no message in the error body)" : "(empty body)");
	if (extra[0]) {
		put(out->line, sizeof out->line, " (");
		put(out->line, sizeof out->line, extra);
		put(out->line, sizeof out->line, ")");
	}
	cJSON_Delete(root);
	for (size_t o = strlen(out->line); o > 0 && out->line[o - 1] == ' '; o--)
		out->line[o - 1] = '\0';
	const char *hay = out->line;
	out->quota = strcmp(out->type, "insufficient_quota") == 0 ||
		     strcmp(out->type, "billing_hard_limit_reached") == 0 || contains_ci(hay, "exceeded your current quota") ||
		     contains_ci(hay, "credit balance") || contains_ci(hay, "insufficient credits") ||
		     contains_ci(hay, "spend limit") || contains_ci(hay, "spending limit") ||
		     contains_ci(hay, "billing");
	out->context_length = strcmp(out->type, "context_length_exceeded") == 0 ||
			      contains_ci(hay, "context length") || contains_ci(hay, "context window") ||
			      contains_ci(hay, "prompt is too long") || contains_ci(hay, "maximum context");
}

static bool in(const char *s, const char *const *list)
{
	for (; *list; list++)
		if (strcmp(s, *list) == 0)
			return true;
	return false;
}

kiln_llm_verdict kiln_llm_classify(int http, const kiln_llm_errinfo *e)
{
	static const char *const fatal_types[] = {"invalid_request_error", "authentication_error",
						  "permission_error", "not_found_error", "invalid_api_key",
						  "request_too_large", NULL};
	if (e->quota)
		return KILN_LLM_FATAL;
	if (e->context_length)
		return KILN_LLM_FAIL; /* this prompt is too long; the next may not be */
	if (http == 0) /* an error event after 200: overloaded, api_error, ... are transient */
		return in(e->type, fatal_types) ? KILN_LLM_FATAL : KILN_LLM_RETRY;
	switch (http) {
	case 408: case 409: case 429: case 500: case 502: case 503: case 504: case 529:
	case 520: case 521: case 522: case 523: case 524: /* Cloudflare in front of the API */
		return KILN_LLM_RETRY;
	default:
		break;
	}
	if (http >= 400 && http < 500)
		return KILN_LLM_FATAL;
	return KILN_LLM_FAIL;
}

double kiln_llm_retry_after(const char *retry_after, const char *retry_after_ms, double now_epoch)
{
	char *end = NULL;
	if (retry_after_ms && *retry_after_ms) {
		double ms = strtod(retry_after_ms, &end);
		if (end != retry_after_ms && ms >= 0 && ms < 1e12)
			return ms / 1000.0;
	}
	if (!retry_after || !*retry_after)
		return -1;
	double s = strtod(retry_after, &end);
	if (end != retry_after && (*end == '\0' || isspace((unsigned char)*end)))
		return s >= 0 && s < 1e9 ? s : -1;
	struct tm tm;
	memset(&tm, 0, sizeof tm);
	const char *rest = strptime(retry_after, "%a, %d %b %Y %H:%M:%S GMT", &tm);
	if (!rest)
		return -1;
	double d = (double)timegm(&tm) - now_epoch;
	return d > 0 ? d : 0;
}

char *kiln_llm_scrub(char *s, const char *key)
{
	/* the key first (a client may hold one not registered), then every registered secret */
	return kiln_redact(kiln_redact_one(s, key));
}
