/* llm: the provider table, model specs ("provider:model[@base_url]"), which key and base
 * URL a provider uses, and what the environment configures. Nothing here reads a key's value except to test
 * that it is set; no key is ever copied into a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm/llm_int.h"

#define OPENAI_COMPATIBLE(name)                                                                          \
	{name, "openai-compatible", KILN_LLM_API_OPENAI, "KILN_OPENAI_COMPATIBLE_API_KEY", false,         \
	 "KILN_OPENAI_COMPATIBLE_BASE_URL", "", "max_tokens"}

/* Every provider a spec may name. A new alias or provider is one row here (and a price
 * entry in data/prices.json when it bills). OpenAI's own API wants max_completion_tokens
 * (its reasoning models reject max_tokens); compatible servers know max_tokens. */
static const kiln_llm_provider_row providers[] = {
	{"openai", "openai", KILN_LLM_API_OPENAI, "OPENAI_API_KEY", true, "KILN_OPENAI_BASE_URL",
	 "https://api.openai.com/v1", "max_completion_tokens"},
	{"anthropic", "anthropic", KILN_LLM_API_ANTHROPIC, "ANTHROPIC_API_KEY", true, "KILN_ANTHROPIC_BASE_URL",
	 "https://api.anthropic.com/v1", "max_tokens"},
	OPENAI_COMPATIBLE("openai-compatible"),
	OPENAI_COMPATIBLE("vllm"),
	OPENAI_COMPATIBLE("sglang"),
	OPENAI_COMPATIBLE("llamacpp"),
	OPENAI_COMPATIBLE("llama.cpp"),
	OPENAI_COMPATIBLE("ollama"),
	OPENAI_COMPATIBLE("openrouter"),
	OPENAI_COMPATIBLE("local"),
};

const kiln_llm_provider_row *kiln_llm_providers(size_t *n)
{
	*n = KILN_ARRAY_LEN(providers);
	return providers;
}

static const kiln_llm_provider_row *provider_find(const char *name, size_t len)
{
	for (size_t i = 0; i < KILN_ARRAY_LEN(providers); i++)
		if (strlen(providers[i].name) == len && strncmp(name, providers[i].name, len) == 0)
			return &providers[i];
	return NULL;
}

/* "openai, anthropic, ..." from the table */
static void known_names(char *out, size_t size)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; i < KILN_ARRAY_LEN(providers) && used < size; i++) {
		int k = snprintf(out + used, size - used, "%s%s", i ? ", " : "", providers[i].name);
		used += k > 0 ? (size_t)k : 0;
	}
}

static bool is_url(const char *s)
{
	return strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0;
}

kiln_err kiln_llm_spec_parse(kiln_llm_spec *out, const char *spec)
{
	memset(out, 0, sizeof *out);
	if (!spec || !*spec)
		return kiln_error_set(KILN_EINVAL, "empty LLM spec: expected provider:model (e.g. openai:gpt-5)");
	const char *colon = strchr(spec, ':');
	if (!colon || colon == spec || !colon[1])
		return kiln_error_set(KILN_EINVAL, "LLM spec \"%.80s\": expected provider:model[@base_url] "
				      "(e.g. openai:gpt-5, anthropic:claude-sonnet-4-5)", spec);
	size_t plen = (size_t)(colon - spec);
	const kiln_llm_provider_row *row = provider_find(spec, plen);
	if (!row) {
		char known[256];
		known_names(known, sizeof known);
		return kiln_error_set(KILN_EINVAL, "LLM spec \"%.80s\": unknown provider \"%.*s\" (known: %s)", spec,
				      (int)(plen > 32 ? 32 : plen), spec, known);
	}
	const char *model = colon + 1, *at = NULL;
	for (const char *p = strchr(model, '@'); p; p = strchr(p + 1, '@'))
		if (is_url(p + 1)) {
			at = p;
			break;
		}
	size_t mlen = at ? (size_t)(at - model) : strlen(model);
	if (mlen == 0 || mlen >= sizeof out->model)
		return kiln_error_set(KILN_EINVAL, "LLM spec \"%.80s\": model name empty or longer than %zu bytes",
				      spec, sizeof out->model - 1);
	for (size_t i = 0; i < mlen; i++)
		if ((unsigned char)model[i] <= ' ' || model[i] == '"' || model[i] == '\\')
			return kiln_error_set(KILN_EINVAL, "LLM spec \"%.80s\": model name has a space, quote or "
					      "control character", spec);
	if (at && strlen(at + 1) >= sizeof out->base_url)
		return kiln_error_set(KILN_EINVAL, "LLM spec: base URL longer than %zu bytes", sizeof out->base_url - 1);
	snprintf(out->provider, sizeof out->provider, "%s", row->canonical);
	memcpy(out->model, model, mlen);
	if (at)
		snprintf(out->base_url, sizeof out->base_url, "%s", at + 1);
	out->api = row->api;
	out->row = row;
	return KILN_OK;
}

const char *kiln_llm_spec_default_url(const kiln_llm_spec *s)
{
	return s->row->default_url;
}

const char *kiln_llm_spec_url_env(const kiln_llm_spec *s)
{
	return s->row->url_env;
}

const char *kiln_llm_spec_key_env(const kiln_llm_spec *s, const char *key_env, bool *required)
{
	bool named = key_env && *key_env;
	*required = s->row->key_required || named;
	return named ? key_env : s->row->key_env;
}

static bool env_set(const char *name)
{
	const char *v = getenv(name);
	return v && *v;
}

const char *kiln_llm_default_spec(void)
{
	const char *v = getenv("KILN_LLM");
	if (v && *v)
		return v;
	if (env_set("OPENAI_API_KEY"))
		return "openai:gpt-5";
	if (env_set("ANTHROPIC_API_KEY"))
		return "anthropic:claude-sonnet-4-5";
	return NULL;
}

bool kiln_llm_configured(const char *spec_or_null, char *why, size_t why_size)
{
	char scratch[8];
	if (!why || why_size == 0) {
		why = scratch;
		why_size = sizeof scratch;
	}
	const char *spec = spec_or_null && *spec_or_null ? spec_or_null : kiln_llm_default_spec();
	if (!spec) {
		snprintf(why, why_size, "no KILN_LLM, OPENAI_API_KEY or ANTHROPIC_API_KEY set");
		return false;
	}
	kiln_llm_spec s;
	if (kiln_llm_spec_parse(&s, spec)) {
		snprintf(why, why_size, "%s", kiln_error_last());
		return false;
	}
	bool required;
	const char *var = kiln_llm_spec_key_env(&s, NULL, &required);
	if (env_set(var)) {
		snprintf(why, why_size, "%s:%s with %s", s.provider, s.model, var);
		return true;
	}
	if (required) {
		snprintf(why, why_size, "%s:%s needs %s, which is not set", s.provider, s.model, var);
		return false;
	}
	const char *url = s.base_url[0] ? s.base_url : getenv(kiln_llm_spec_url_env(&s));
	if (!url || !*url) {
		snprintf(why, why_size, "%s:%s needs a base URL (spec @URL, --base-url or %s)", s.provider,
			 s.model, kiln_llm_spec_url_env(&s));
		return false;
	}
	snprintf(why, why_size, "%s:%s at %s (no key)", s.provider, s.model, url);
	return true;
}
