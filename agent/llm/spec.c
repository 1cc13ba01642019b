/* llm: model specs ("provider:model[@base_url]"), which key and base URL a provider uses,
 * and what the environment configures. Nothing here reads a key's value except to test
 * that it is set; no key is ever copied into a message. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm/llm_int.h"

static const struct {
	const char *name, *canonical;
} providers[] = {
	{"openai", "openai"},
	{"anthropic", "anthropic"},
	{"openai-compatible", "openai-compatible"},
	{"vllm", "openai-compatible"},
	{"sglang", "openai-compatible"},
	{"llamacpp", "openai-compatible"},
	{"llama.cpp", "openai-compatible"},
	{"ollama", "openai-compatible"},
	{"openrouter", "openai-compatible"},
	{"local", "openai-compatible"},
};

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
	const char *canonical = NULL;
	for (size_t i = 0; i < KILN_ARRAY_LEN(providers); i++)
		if (strlen(providers[i].name) == plen && strncmp(spec, providers[i].name, plen) == 0)
			canonical = providers[i].canonical;
	if (!canonical)
		return kiln_error_set(KILN_EINVAL, "LLM spec \"%.80s\": unknown provider \"%.*s\" (known: openai, "
				      "anthropic, openai-compatible, vllm, sglang, llamacpp, ollama, openrouter)",
				      spec, (int)(plen > 32 ? 32 : plen), spec);
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
	snprintf(out->provider, sizeof out->provider, "%s", canonical);
	memcpy(out->model, model, mlen);
	if (at)
		snprintf(out->base_url, sizeof out->base_url, "%s", at + 1);
	out->api = strcmp(canonical, "anthropic") == 0 ? KILN_LLM_API_ANTHROPIC : KILN_LLM_API_OPENAI;
	return KILN_OK;
}

const char *kiln_llm_spec_default_url(const kiln_llm_spec *s)
{
	if (strcmp(s->provider, "openai") == 0)
		return "https://api.openai.com/v1";
	if (strcmp(s->provider, "anthropic") == 0)
		return "https://api.anthropic.com/v1";
	return "";
}

const char *kiln_llm_spec_url_env(const kiln_llm_spec *s)
{
	if (strcmp(s->provider, "anthropic") == 0)
		return "KILN_ANTHROPIC_BASE_URL";
	if (strcmp(s->provider, "openai") == 0)
		return "KILN_OPENAI_BASE_URL";
	return "KILN_OPENAI_COMPATIBLE_BASE_URL";
}

const char *kiln_llm_spec_key_env(const kiln_llm_spec *s, const char *key_env, bool *required)
{
	*required = strcmp(s->provider, "openai-compatible") != 0 || (key_env && *key_env);
	if (key_env && *key_env)
		return key_env;
	if (s->api == KILN_LLM_API_ANTHROPIC)
		return "ANTHROPIC_API_KEY";
	if (strcmp(s->provider, "openai") == 0)
		return "OPENAI_API_KEY";
	return "KILN_OPENAI_COMPATIBLE_API_KEY";
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
