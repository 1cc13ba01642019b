/* llm internals shared by the client's files, its unit tests and the SSE fuzzer: model
 * spec parsing, the SSE parser, wire formats (request bodies, replies, usage, error
 * bodies), retry classification, the price table and key scrubbing. */
#ifndef KILN_LLM_INT_H
#define KILN_LLM_INT_H

#include "agent/llm/llm.h"
#include "util/util.h"

struct cJSON;

/* ---- providers and model specs: "provider:model[@base_url]" ---- */
typedef enum kiln_llm_api { KILN_LLM_API_OPENAI, KILN_LLM_API_ANTHROPIC } kiln_llm_api;

/* One row per name a spec may use (spec.c's table is the only list of providers: the
 * "known providers" error and the README's table come from it). */
typedef struct kiln_llm_provider_row {
	const char *name;        /* as written in a spec: "vllm" */
	const char *canonical;   /* recorded and priced under: "openai-compatible" */
	kiln_llm_api api;        /* its wire API */
	const char *key_env;     /* default key variable */
	bool key_required;       /* false: a local server may need no key */
	const char *url_env;     /* variable that overrides the base URL */
	const char *default_url; /* "" = the spec, --base-url or url_env must give one */
	const char *token_field; /* request field for the reply's token cap */
} kiln_llm_provider_row;

typedef struct kiln_llm_spec {
	char provider[32];   /* the row's canonical name */
	char model[128];
	char base_url[512];  /* "" when the spec names none */
	kiln_llm_api api;
	const kiln_llm_provider_row *row;
} kiln_llm_spec;

/* Parses a spec against the provider table. KILN_EINVAL with a one-line reason (listing
 * the known provider names) otherwise. */
kiln_err kiln_llm_spec_parse(kiln_llm_spec *out, const char *spec);
/* The provider's default base URL; "" when it must be given. */
const char *kiln_llm_spec_default_url(const kiln_llm_spec *s);
/* Name of the base-URL variable for the provider ("KILN_OPENAI_BASE_URL", ...). */
const char *kiln_llm_spec_url_env(const kiln_llm_spec *s);
/* Key variable: key_env when given, else the provider's; *required: a missing key is an
 * error (false for openai-compatible servers unless key_env names a variable). */
const char *kiln_llm_spec_key_env(const kiln_llm_spec *s, const char *key_env, bool *required);
/* The provider rows, for listings: *n gets their count. */
const kiln_llm_provider_row *kiln_llm_providers(size_t *n);


/* ---- SSE (WHATWG HTML "server-sent events" parsing), incremental ----
 * Lines end in CRLF, LF or CR (also split across feeds); a leading BOM is dropped; lines
 * starting with ':' are comments; "field: value" loses one leading space; data lines are
 * joined with "\n"; an empty line dispatches the event when it has data; an event left
 * incomplete at the end of the stream is discarded. */
typedef kiln_err (*kiln_sse_fn)(void *arg, const char *event, const char *data, size_t len);
typedef struct kiln_sse {
	kiln_buf line;       /* the line being assembled */
	kiln_buf data;       /* data of the event being assembled */
	char event[64];      /* event type ("" = "message"); longer names are truncated */
	bool have_data;      /* a data field was seen */
	bool cr;             /* the last byte fed was CR: a following LF belongs to it */
	bool bom_checked;
	size_t nbom;         /* bytes of a possible BOM seen so far */
	char id[128];        /* last event id (unused by the APIs, kept for the spec) */
	long retry_ms;       /* last "retry:" value; -1 none */
} kiln_sse;
/* max: cap on one line and on one event's data (bytes); 0 = 8 MiB. */
void kiln_sse_init(kiln_sse *p, size_t max);
/* Feeds bytes; fn is called per event. An event or line over the cap is KILN_EOVERFLOW; fn's
 * error stops the feed and is returned. */
kiln_err kiln_sse_feed(kiln_sse *p, const char *buf, size_t n, kiln_sse_fn fn, void *arg);
void kiln_sse_free(kiln_sse *p);

/* ---- usage and results ---- */
typedef struct kiln_llm_usage {
	int64_t prompt;      /* all input tokens (Anthropic: input + cache read + cache write) */
	int64_t cached;      /* read from the cache */
	int64_t cache_write; /* written to the cache */
	int64_t completion;  /* output incl. reasoning */
	int64_t reasoning;   /* -1 unknown */
	bool known;          /* usage was reported */
} kiln_llm_usage;

/* Reads a usage object of either API into u (fields reported are set; missing ones 0,
 * reasoning -1 unless reported). Anthropic's message_delta carries output and sometimes
 * input counts again: values present overwrite, so feed message_start then message_delta. */
void kiln_llm_usage_openai(kiln_llm_usage *u, const struct cJSON *usage);
void kiln_llm_usage_anthropic(kiln_llm_usage *u, const struct cJSON *usage);

/* ---- prices (USD per million tokens) ---- */
typedef struct kiln_llm_price {
	double input, cached_input, cache_write, output;
} kiln_llm_price;
typedef struct kiln_llm_prices kiln_llm_prices;
/* Loads base (required when non-NULL) then merges override over it (entries replace whole
 * models). Format: {"models": {"provider:model" | "model": {"input", "cached_input",
 * "cache_write", "output"}}}; unknown keys per model are errors. */
kiln_err kiln_llm_prices_load(kiln_llm_prices **out, const char *base, const char *override);
void kiln_llm_prices_free(kiln_llm_prices *p);
/* Exact "provider:model", then "model", then the model without a "vendor/" prefix, then
 * the longest entry the model extends with a snapshot suffix ("-20250929", "-latest"). */
bool kiln_llm_prices_find(const kiln_llm_prices *p, kiln_llm_price *out, const char *provider,
			  const char *model);
/* Cost of a usage; NaN when !u->known. */
double kiln_llm_cost(const kiln_llm_price *p, const kiln_llm_usage *u);

/* ---- error bodies ---- */
typedef struct kiln_llm_errinfo {
	char line[400];      /* "HTTP 429 rate_limit_exceeded: Rate limit reached ..." */
	char type[64];       /* error.type / code as text ("" none) */
	bool quota;          /* says the quota, credit or spend limit is exhausted */
	bool context_length; /* says the prompt is too long for the model */
} kiln_llm_errinfo;
/* One readable line from an error body of any shape seen in the wild: OpenAI and Anthropic
 * {"error": {...}}, code as string or number, OpenRouter metadata (raw, provider_name),
 * llama.cpp / vLLM (top-level message, numeric code), Ollama {"error": "text"}, FastAPI
 * {"detail": ...}, HTML or plain text. http = 0 for an error event inside a 200 stream. */
void kiln_llm_error_parse(kiln_llm_errinfo *out, int http, const char *body, size_t len);

typedef enum kiln_llm_verdict {
	KILN_LLM_RETRY,      /* transient: try again after backoff */
	KILN_LLM_FAIL,       /* this call failed; the run may go on */
	KILN_LLM_FATAL,      /* will not get better: stop the run */
} kiln_llm_verdict;
/* What an HTTP status (0 = an error event after 200) with its parsed body means. */
kiln_llm_verdict kiln_llm_classify(int http, const kiln_llm_errinfo *e);

/* retry-after (delta-seconds or an HTTP date, relative to now_epoch) or retry-after-ms in
 * seconds; -1 when absent or unparsable. */
double kiln_llm_retry_after(const char *retry_after, const char *retry_after_ms, double now_epoch);

/* ---- wire formats ---- */
/* The JSON request body (caller frees). */
char *kiln_llm_body_build(const kiln_llm_spec *s, const kiln_llm_request *req, int max_tokens,
			  bool stream);

/* What one attempt produced, filled by the non-stream parser or the stream events. */
typedef struct kiln_llm_result {
	kiln_buf text;        /* answer text */
	char id[128];         /* response id */
	char finish[32];      /* finish_reason / stop_reason as sent */
	bool refused;         /* a refusal field or content filter */
	bool done;            /* stream saw its terminator ([DONE] / message_stop) */
	kiln_llm_usage usage;
	kiln_llm_errinfo err; /* an error event inside the stream */
	bool stream_error;
} kiln_llm_result;
void kiln_llm_result_init(kiln_llm_result *r, size_t max_text);
void kiln_llm_result_free(kiln_llm_result *r);
/* A complete (non-stream) 200 body. Garbage is KILN_EINVAL naming what was missing. */
kiln_err kiln_llm_parse_reply(kiln_llm_result *r, kiln_llm_api api, const char *body, size_t len);
/* One SSE event of a stream. A malformed event is KILN_EINVAL. */
kiln_err kiln_llm_stream_event(kiln_llm_result *r, kiln_llm_api api, const char *event,
			       const char *data, size_t len);
/* "ok" | "truncated" | "refused" from the finish reason and refusal. */
const char *kiln_llm_result_status(const kiln_llm_result *r);

/* One wire API: where requests go, how the key travels, how bodies, replies and stream
 * events look (wire.c's table; one row per kiln_llm_api). */
typedef struct kiln_llm_wire {
	const char *path;         /* appended to the base URL */
	const char *auth_prefix;  /* the key's header line up to the key */
	const char *extra_header; /* a fixed header line, or NULL */
	bool stream_usage_option; /* ask for usage in the stream (stream_options) */
	const char *stream_done;  /* a data payload that ends the stream, or NULL */
	void (*add_body)(struct cJSON *root, const kiln_llm_spec *s, const kiln_llm_request *req,
			 int max_tokens);
	kiln_err (*parse)(kiln_llm_result *r, const struct cJSON *root);
	kiln_err (*stream)(kiln_llm_result *r, const struct cJSON *root);
} kiln_llm_wire;

const kiln_llm_wire *kiln_llm_wire_of(kiln_llm_api api);

/* Replaces every occurrence of key (when >= 8 bytes) in s by "[redacted]" in place of a
 * heap string (s may be reallocated; returns the string). */
char *kiln_llm_scrub(char *s, const char *key);

#endif
