/* llm: the HTTP client kiln's search talks to LLMs with (libcurl + cJSON). OpenAI Chat
 * Completions (also vLLM, SGLang, llama-server, Ollama /v1, OpenRouter via a base URL) and
 * Anthropic Messages; optional SSE streaming; retries with full-jitter backoff honouring
 * retry-after; a circuit breaker; token and dollar accounting from data/prices.json.
 * Keys come only from the environment and never leave the request headers: replies, errors
 * and records are scrubbed of them. A kiln_llm belongs to one thread at a time. */
#ifndef KILN_LLM_H
#define KILN_LLM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "archive/archive.h"
#include "util/util.h"

typedef struct kiln_llm kiln_llm;

typedef struct kiln_llm_config {
	const char *spec;          /* "provider:model[@base_url]"; NULL = kiln_llm_default_spec() */
	const char *base_url;      /* overrides the spec's and $KILN_<PROVIDER>_BASE_URL; NULL = none */
	const char *key_env;       /* variable holding the key; NULL = OPENAI_API_KEY / ANTHROPIC_API_KEY */
	bool stream;               /* SSE streaming */
	int max_output_tokens;     /* per call unless the request says; 0 = 8192 */
	double timeout_s;          /* one HTTP attempt, start to last byte; 0 = 600 */
	int max_retries;           /* retries after the first attempt; 0 = 4, < 0 = none */
	const char *prices_path;   /* merged over data/prices.json (also $KILN_PRICES); NULL = none */
	/* fields below: 0 = default (or the environment variable named) */
	double connect_timeout_s;  /* 0 = 15 */
	double idle_timeout_s;     /* streams: no byte for this long ends an attempt; 0 = 300 */
	double deadline_s;         /* whole call incl. retries and backoff; 0 = 4 x timeout_s */
	double backoff_base_s;     /* first backoff ceiling, doubling per retry; 0 = $KILN_LLM_BACKOFF_S or 1 */
	double backoff_max_s;      /* 0 = 60 */
	double retry_after_max_s;  /* cap on an honoured retry-after; 0 = 120 */
	int breaker_threshold;     /* consecutive failed calls that open the breaker; 0 = 5 */
	double breaker_pause_s;    /* pause before the next call while open; 0 = $KILN_LLM_BREAKER_PAUSE_S or 300 */
	size_t max_reply_bytes;    /* cap on a response body / reply text; 0 = 8 MiB */
	volatile sig_atomic_t *stop; /* non-zero ends backoff/breaker sleeps early (status error,
				      * "interrupted"); NULL = never */
} kiln_llm_config;

/* Builds a client. Resolves the key from the environment (missing key for openai/anthropic:
 * KILN_EINVAL saying which variable to set; openai-compatible servers may run without one),
 * the base URL and the price table (a bad override file is an error). Caller frees. */
kiln_err kiln_llm_new(kiln_llm **out, const kiln_llm_config *cfg);
void kiln_llm_free(kiln_llm *c);
/* A second client with from's configuration, key and price, and its own connection, retry
 * state and circuit breaker: one per thread (a client is not shared between threads). */
kiln_err kiln_llm_clone(kiln_llm **out, const kiln_llm *from);

/* $KILN_LLM, else "openai:gpt-5" when OPENAI_API_KEY is set, else
 * "anthropic:claude-sonnet-4-5" when ANTHROPIC_API_KEY is set, else NULL. Borrowed. */
const char *kiln_llm_default_spec(void);
/* Whether the environment makes an LLM usable: spec (NULL = kiln_llm_default_spec()) parses
 * and its key is present (or not needed). why (may be NULL) gets one line either way
 * ("openai:gpt-5 with OPENAI_API_KEY" / "no KILN_LLM, OPENAI_API_KEY or ..."). Never
 * includes a key. */
bool kiln_llm_configured(const char *spec_or_null, char *why, size_t why_size);

typedef struct kiln_llm_request {
	const char *system;        /* may be NULL */
	const char *prefix;        /* stable across calls (target, rules, world model): sent first and
				    * marked cacheable (Anthropic cache_control); may be NULL */
	const char *task;          /* this turn (required) */
	const char *purpose;       /* "init" | "propose" | ... (recorded); NULL = "call" */
	int max_output_tokens;     /* 0 = the client's */
} kiln_llm_request;

typedef struct kiln_llm_reply {
	char *text;                /* owned; the answer ("" when none) */
	char *request_id;          /* owned; provider request id or NULL */
	char *status;              /* owned; "ok" | "error" | "timeout" | "truncated" | "refused" */
	char *error;               /* owned; one line when status != ok, else NULL */
	int attempts;              /* HTTP attempts made */
	double latency_s;          /* wall time over all attempts and backoff (not breaker pauses) */
	int64_t prompt_tokens;     /* all input tokens billed (Anthropic: input + cache read + write); -1 unknown */
	int64_t cached_tokens;     /* of those, read from the prompt cache; -1 unknown */
	int64_t completion_tokens; /* output incl. reasoning; -1 unknown */
	int64_t reasoning_tokens;  /* of those, hidden reasoning; -1 unknown */
	int64_t cache_write_tokens;/* of prompt_tokens, written to the cache (Anthropic); -1 unknown */
	double cost_usd;           /* NaN unknown (model without a price or usage missing) */
	bool fatal;                /* stop the run: auth, quota exhausted, 4xx that will not get better */
	int http_status;           /* of the last attempt; 0 = no HTTP response */
	double paused_s;           /* circuit-breaker pause spent before this call */
} kiln_llm_reply;

/* One completion with retries. Returns 0 whenever a call was made, whatever its outcome
 * (see out->status, out->fatal); an error only for bad arguments or out of memory. Records
 * nothing. out is owned by the caller (kiln_llm_reply_free). */
kiln_err kiln_llm_complete(kiln_llm *c, const kiln_llm_request *req, kiln_llm_reply *out);
void kiln_llm_reply_free(kiln_llm_reply *r);

/* One llm_calls row for the call (prompt = system + prefix + task as sent); the key is never
 * stored. out_call_id may be NULL. */
kiln_err kiln_llm_record(kiln_db *db, int64_t run_id, const kiln_llm *c, const kiln_llm_request *req,
			 const kiln_llm_reply *r, int64_t *out_call_id);

/* Borrowed, live as long as c: "openai" | "anthropic" | "openai-compatible", the model name,
 * the base URL in use, and the key variable ("" when none is used). */
const char *kiln_llm_provider(const kiln_llm *c);
const char *kiln_llm_model(const kiln_llm *c);
const char *kiln_llm_base_url(const kiln_llm *c);
const char *kiln_llm_key_env(const kiln_llm *c);
/* Whether the model has a price (costs are NaN otherwise). */
bool kiln_llm_priced(const kiln_llm *c);
/* Circuit breaker: consecutive failed calls so far and pauses taken in this client's life. */
void kiln_llm_breaker(const kiln_llm *c, int *consecutive_failures, int *pauses);

#endif
