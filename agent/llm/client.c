/* llm: the client. One libcurl easy handle per kiln_llm (connections are reused), one HTTP
 * attempt at a time (a parallel search clones one client per thread): connect timeout, idle (low-speed) timeout, per-attempt and whole-call
 * deadlines, TCP keep-alive. Retries with full-jitter backoff or the server's retry-after;
 * a circuit breaker pauses after N consecutive failed calls. The key lives only here and in
 * the request headers; every string handed out is scrubbed of it. */
#include <curl/curl.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "agent/llm/llm_int.h"

#define DEFAULT_MAX_TOKENS 8192
#define DEFAULT_MAX_REPLY (8u << 20)

struct kiln_llm {
	kiln_llm_spec spec;
	char *base_url, *endpoint;  /* owned */
	char *key;                  /* owned; NULL when none is used */
	char key_env[64];
	bool stream;
	int max_tokens, max_retries, breaker_threshold;
	double timeout_s, connect_s, idle_s, deadline_s, backoff_base_s, backoff_max_s, ra_max_s;
	double breaker_pause_s;
	size_t max_reply;
	volatile sig_atomic_t *stop;
	kiln_llm_prices *prices;
	kiln_llm_price price;
	bool priced;
	CURL *curl;
	kiln_rng rng;               /* backoff jitter */
	int consecutive_failures, pauses;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static double env_double(const char *name, double dflt)
{
	const char *v = getenv(name);
	char *end = NULL;
	double d = v && *v ? strtod(v, &end) : NAN;
	return v && *v && end && !*end && d >= 0 ? d : dflt;
}

static double pick(double v, double dflt)
{
	return v > 0 ? v : dflt;
}

static kiln_err resolve_url(kiln_llm *c, const kiln_llm_config *cfg)
{
	const char *env = getenv(kiln_llm_spec_url_env(&c->spec));
	const char *url = cfg->base_url && *cfg->base_url ? cfg->base_url
			  : c->spec.base_url[0]             ? c->spec.base_url
			  : env && *env                     ? env
							    : kiln_llm_spec_default_url(&c->spec);
	if (!*url)
		return kiln_error_set(KILN_EINVAL, "%s:%s needs a base URL: add @http://HOST:PORT/v1 to the spec, "
				      "--base-url or %s", c->spec.provider, c->spec.model,
				      kiln_llm_spec_url_env(&c->spec));
	if (strncmp(url, "http://", 7) != 0 && strncmp(url, "https://", 8) != 0)
		return kiln_error_set(KILN_EINVAL, "LLM base URL \"%.100s\": expected http:// or https://", url);
	size_t n = strlen(url);
	while (n > 0 && url[n - 1] == '/')
		n--;
	c->base_url = kiln_strndup(url, n);
	c->endpoint = kiln_asprintf("%.*s/%s", (int)n, url, kiln_llm_wire_of(c->spec.api)->path);
	return c->base_url && c->endpoint ? KILN_OK : KILN_ENOMEM;
}

static kiln_err resolve_key(kiln_llm *c, const kiln_llm_config *cfg)
{
	bool required;
	const char *var = kiln_llm_spec_key_env(&c->spec, cfg->key_env, &required);
	const char *v = getenv(var);
	if (v && *v) {
		snprintf(c->key_env, sizeof c->key_env, "%s", var);
		c->key = kiln_strdup(v);
		if (!c->key)
			return KILN_ENOMEM;
		kiln_err e = kiln_redact_add(c->key); /* everything kiln stores, prints or sends */
		if (e == KILN_EOVERFLOW) /* the client still scrubs its own key from each call */
			kiln_error_clear();
		return e == KILN_EOVERFLOW ? KILN_OK : e;
	}
	if (required)
		return kiln_error_set(KILN_EINVAL, "no API key for %s:%s: set %s (or name another variable with "
				      "--key-env)", c->spec.provider, c->spec.model, var);
	return KILN_OK;
}

static kiln_err load_prices(kiln_llm *c, const kiln_llm_config *cfg)
{
	char *base = kiln_path_join(KILN_SOURCE_ROOT, "data/prices.json");
	if (!base)
		return KILN_ENOMEM;
	const char *over = cfg->prices_path && *cfg->prices_path ? cfg->prices_path : getenv("KILN_PRICES");
	kiln_err e = kiln_llm_prices_load(&c->prices, kiln_path_exists(base) ? base : NULL, over);
	free(base);
	if (e)
		return kiln_error_wrap(e, "loading LLM prices");
	c->priced = kiln_llm_prices_find(c->prices, &c->price, c->spec.provider, c->spec.model);
	return KILN_OK;
}

kiln_err kiln_llm_new(kiln_llm **out, const kiln_llm_config *cfg)
{
	*out = NULL;
	static const kiln_llm_config none;
	if (!cfg)
		cfg = &none;
	const char *spec = cfg->spec && *cfg->spec ? cfg->spec : kiln_llm_default_spec();
	if (!spec)
		return kiln_error_set(KILN_EINVAL, "no LLM configured: pass --llm provider:model or set KILN_LLM, "
				      "OPENAI_API_KEY or ANTHROPIC_API_KEY");
	kiln_llm *c = kiln_calloc(1, sizeof *c);
	if (!c)
		return KILN_ENOMEM;
	kiln_err e;
	if ((e = kiln_llm_spec_parse(&c->spec, spec)) || (e = resolve_url(c, cfg)) || (e = resolve_key(c, cfg)) ||
	    (e = load_prices(c, cfg)))
		goto fail;
	c->stream = cfg->stream;
	c->max_tokens = cfg->max_output_tokens > 0 ? cfg->max_output_tokens : DEFAULT_MAX_TOKENS;
	c->max_retries = cfg->max_retries > 0 ? cfg->max_retries : cfg->max_retries < 0 ? 0 : 4;
	c->timeout_s = pick(cfg->timeout_s, 600);
	c->connect_s = pick(cfg->connect_timeout_s, 15);
	c->idle_s = pick(cfg->idle_timeout_s, 300);
	c->deadline_s = pick(cfg->deadline_s, 4 * c->timeout_s);
	c->backoff_base_s = pick(cfg->backoff_base_s, env_double("KILN_LLM_BACKOFF_S", 1));
	c->backoff_max_s = pick(cfg->backoff_max_s, 60);
	c->ra_max_s = pick(cfg->retry_after_max_s, 120);
	c->breaker_threshold = cfg->breaker_threshold > 0 ? cfg->breaker_threshold : 5;
	c->breaker_pause_s = pick(cfg->breaker_pause_s, env_double("KILN_LLM_BREAKER_PAUSE_S", 300));
	c->max_reply = cfg->max_reply_bytes ? cfg->max_reply_bytes : DEFAULT_MAX_REPLY;
	c->stop = cfg->stop;
	kiln_rng_seed(&c->rng, kiln_seed_fresh());
	pthread_once(&curl_once, curl_init_once);
	if (!(c->curl = curl_easy_init())) {
		e = kiln_error_set(KILN_ENET, "libcurl could not create a handle");
		goto fail;
	}
	*out = c;
	return KILN_OK;
fail:
	kiln_llm_free(c);
	return e;
}

kiln_err kiln_llm_clone(kiln_llm **out, const kiln_llm *from)
{
	*out = NULL;
	kiln_llm *c = kiln_calloc(1, sizeof *c);
	if (!c)
		return KILN_ENOMEM;
	*c = *from;
	c->base_url = kiln_strdup(from->base_url);
	c->endpoint = kiln_strdup(from->endpoint);
	c->key = from->key ? kiln_strdup(from->key) : NULL;
	c->prices = NULL; /* the price was looked up once; the table stays with `from` */
	c->curl = curl_easy_init();
	c->consecutive_failures = c->pauses = 0;
	kiln_rng_seed(&c->rng, kiln_seed_fresh());
	if (!c->base_url || !c->endpoint || (from->key && !c->key) || !c->curl) {
		kiln_llm_free(c);
		return kiln_error_set(KILN_ENOMEM, "out of memory (or no libcurl handle) cloning the LLM client");
	}
	*out = c;
	return KILN_OK;
}

void kiln_llm_free(kiln_llm *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	if (c->key) {
		memset(c->key, 0, strlen(c->key));
		free(c->key);
	}
	free(c->base_url);
	free(c->endpoint);
	kiln_llm_prices_free(c->prices);
	free(c);
}

const char *kiln_llm_provider(const kiln_llm *c) { return c->spec.provider; }
const char *kiln_llm_model(const kiln_llm *c) { return c->spec.model; }
const char *kiln_llm_base_url(const kiln_llm *c) { return c->base_url; }
const char *kiln_llm_key_env(const kiln_llm *c) { return c->key ? c->key_env : ""; }
bool kiln_llm_priced(const kiln_llm *c) { return c->priced; }

void kiln_llm_breaker(const kiln_llm *c, int *consecutive_failures, int *pauses)
{
	if (consecutive_failures)
		*consecutive_failures = c->consecutive_failures;
	if (pauses)
		*pauses = c->pauses;
}

/* ---------------- one HTTP attempt ---------------- */

typedef enum cb_fault { CB_NONE, CB_TOO_BIG, CB_BAD_EVENT } cb_fault;

typedef struct attempt {
	kiln_llm *c;
	long http;                 /* status of the current response */
	bool mode_set, sse;        /* body is an event stream */
	kiln_buf body;             /* non-stream body (replies and error bodies) */
	kiln_sse parser;
	kiln_llm_result res;
	char retry_after[64], retry_after_ms[32], request_id[128], ctype[96];
	cb_fault fault;
	char fault_msg[200];
} attempt;

static void header_value(char *dst, size_t n, const char *v, size_t len)
{
	while (len > 0 && (*v == ' ' || *v == '\t'))
		v++, len--;
	while (len > 0 && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
		len--;
	snprintf(dst, n, "%.*s", (int)(len < n ? len : n - 1), v);
}

static size_t on_header(char *buf, size_t size, size_t n, void *arg)
{
	attempt *a = arg;
	size_t len = size * n;
	if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) { /* a new response (after 100 Continue) */
		a->retry_after[0] = a->retry_after_ms[0] = a->request_id[0] = a->ctype[0] = '\0';
		return len;
	}
	static const struct {
		const char *name;
		size_t off, size;
	} want[] = {
		{"retry-after", offsetof(attempt, retry_after), 64},
		{"retry-after-ms", offsetof(attempt, retry_after_ms), 32},
		{"x-request-id", offsetof(attempt, request_id), 128},
		{"request-id", offsetof(attempt, request_id), 128},
		{"content-type", offsetof(attempt, ctype), 96},
	};
	const char *colon = memchr(buf, ':', len);
	if (!colon)
		return len;
	size_t nl = (size_t)(colon - buf);
	for (size_t i = 0; i < KILN_ARRAY_LEN(want); i++)
		if (strlen(want[i].name) == nl && strncasecmp(buf, want[i].name, nl) == 0)
			header_value((char *)a + want[i].off, want[i].size, colon + 1, len - nl - 1);
	return len;
}

static kiln_err on_event(void *arg, const char *event, const char *data, size_t len)
{
	attempt *a = arg;
	return kiln_llm_stream_event(&a->res, a->c->spec.api, event, data, len);
}

static size_t on_body(char *buf, size_t size, size_t n, void *arg)
{
	attempt *a = arg;
	size_t len = size * n;
	if (!a->mode_set) {
		curl_easy_getinfo(a->c->curl, CURLINFO_RESPONSE_CODE, &a->http);
		a->sse = a->http == 200 && strncasecmp(a->ctype, "text/event-stream", 17) == 0;
		a->mode_set = true;
	}
	if (!a->sse) {
		if (kiln_buf_append(&a->body, buf, len) == KILN_OK)
			return len;
		a->fault = CB_TOO_BIG;
		snprintf(a->fault_msg, sizeof a->fault_msg, "reply larger than the %zu-byte cap", a->c->max_reply);
		return 0;
	}
	kiln_err e = kiln_sse_feed(&a->parser, buf, len, on_event, a);
	if (e) {
		a->fault = e == KILN_EOVERFLOW ? CB_TOO_BIG : CB_BAD_EVENT;
		if (e == KILN_EOVERFLOW)
			snprintf(a->fault_msg, sizeof a->fault_msg, "reply larger than the %zu-byte cap (%.120s)",
				 a->c->max_reply, kiln_error_last());
		else
			snprintf(a->fault_msg, sizeof a->fault_msg, "%s", kiln_error_last());
		return 0;
	}
	return a->res.stream_error ? 0 : len; /* an error event ends the attempt */
}

static struct curl_slist *headers_for(const kiln_llm *c)
{
	struct curl_slist *h = NULL, *t;
	char line[4200];
	const char *fixed[] = {"Content-Type: application/json",
			       c->stream ? "Accept: text/event-stream" : "Accept: application/json",
			       "Expect:", "User-Agent: kiln/" KILN_VERSION, NULL};
	for (const char **f = fixed; *f; f++)
		if ((t = curl_slist_append(h, *f)))
			h = t;
	const kiln_llm_wire *w = kiln_llm_wire_of(c->spec.api);
	if (w->extra_header && (t = curl_slist_append(h, w->extra_header)))
		h = t;
	if (c->key) {
		snprintf(line, sizeof line, "%s%s", w->auth_prefix, c->key);
		if ((t = curl_slist_append(h, line)))
			h = t;
		memset(line, 0, sizeof line);
	}
	return h;
}

/* What one attempt came to. */
typedef struct outcome {
	kiln_llm_verdict v;        /* RETRY / FAIL / FATAL; success is ok = true */
	bool ok;                   /* an answer arrived (status may still be truncated/refused) */
	const char *status;        /* "ok" | "truncated" | "refused" | "error" | "timeout" */
	char error[512];
	bool got_200;
	double retry_after_s;      /* -1 none */
} outcome;

/* Always 0, so judge() can `return fail_with(...)`. */
static int fail_with(outcome *o, kiln_llm_verdict v, const char *status, const char *msg)
{
	o->v = v;
	o->ok = false;
	o->status = status;
	snprintf(o->error, sizeof o->error, "%s", msg);
	return 0;
}

static void judge_transport(outcome *o, attempt *a, CURLcode rc, const char *errbuf)
{
	char msg[400];
	snprintf(msg, sizeof msg, "%s%s%s", curl_easy_strerror(rc), errbuf[0] ? ": " : "", errbuf);
	switch (rc) {
	case CURLE_OPERATION_TIMEDOUT:
		fail_with(o, KILN_LLM_RETRY, "timeout", msg);
		break;
	case CURLE_COULDNT_RESOLVE_HOST: case CURLE_COULDNT_CONNECT: case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR: case CURLE_PARTIAL_FILE: case CURLE_GOT_NOTHING: case CURLE_SSL_CONNECT_ERROR:
	case CURLE_HTTP2: case CURLE_HTTP2_STREAM: case CURLE_COULDNT_RESOLVE_PROXY: case CURLE_BAD_CONTENT_ENCODING:
		fail_with(o, KILN_LLM_RETRY, "error", msg);
		break;
	default: /* malformed URL, unsupported protocol, TLS certificate problems: no retry helps */
		fail_with(o, KILN_LLM_FATAL, "error", msg);
		break;
	}
	(void)a;
}

static int judge(outcome *o, attempt *a, CURLcode rc, const char *errbuf)
{
	kiln_llm_errinfo ei;
	o->retry_after_s = kiln_llm_retry_after(a->retry_after, a->retry_after_ms, kiln_wall_s());
	if (!a->mode_set)
		curl_easy_getinfo(a->c->curl, CURLINFO_RESPONSE_CODE, &a->http);
	o->got_200 = a->http >= 200 && a->http < 300;
	if (a->fault == CB_TOO_BIG)
		return fail_with(o, KILN_LLM_FAIL, "error", a->fault_msg);
	if (a->res.stream_error) {
		kiln_llm_verdict v = kiln_llm_classify(0, &a->res.err);
		return fail_with(o, v, "error", a->res.err.line);
	}
	if (a->fault == CB_BAD_EVENT) {
		char m[300];
		snprintf(m, sizeof m, "garbage in the event stream: %s", a->fault_msg);
		return fail_with(o, KILN_LLM_RETRY, "error", m);
	}
	if (a->http != 0 && !o->got_200) {
		kiln_llm_error_parse(&ei, (int)a->http, a->body.data, a->body.len);
		kiln_llm_verdict v = kiln_llm_classify((int)a->http, &ei);
		return fail_with(o, v, rc == CURLE_OPERATION_TIMEDOUT ? "timeout" : "error", ei.line);
	}
	if (rc != CURLE_OK) {
		fail_with(o, KILN_LLM_RETRY, "error", "");
		judge_transport(o, a, rc, errbuf);
		if (a->sse && o->v == KILN_LLM_RETRY) {
			char m[600];
			snprintf(m, sizeof m, "stream cut after %zu bytes of answer: %s", a->res.text.len, o->error);
			snprintf(o->error, sizeof o->error, "%.500s", m);
		}
		return 0;
	}
	if (a->sse) {
		if (!a->res.done)
			return fail_with(o, KILN_LLM_RETRY, "error", "stream ended before its end marker (connection dropped)");
	} else if (kiln_llm_parse_reply(&a->res, a->c->spec.api, a->body.data ? a->body.data : "", a->body.len)) {
		char m[300];
		snprintf(m, sizeof m, "garbage reply: %s", kiln_error_last());
		return fail_with(o, KILN_LLM_RETRY, "error", m);
	} else if (a->res.stream_error) {
		return fail_with(o, kiln_llm_classify(0, &a->res.err), "error", a->res.err.line);
	}
	o->ok = true;
	o->status = kiln_llm_result_status(&a->res);
	if (strcmp(o->status, "truncated") == 0)
		snprintf(o->error, sizeof o->error, "answer truncated at the output-token limit (finish reason %s)",
			 a->res.finish);
	else if (strcmp(o->status, "refused") == 0)
		snprintf(o->error, sizeof o->error, "the model refused (finish reason %s)",
			 a->res.finish[0] ? a->res.finish : "refusal");
	return 0;
}

static void attempt_run(attempt *a, outcome *o, const char *body, double limit_s)
{
	kiln_llm *c = a->c;
	CURL *h = c->curl;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *hdr = headers_for(c);
	curl_easy_reset(h);
	curl_easy_setopt(h, CURLOPT_URL, c->endpoint);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(body));
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)(c->connect_s * 1000));
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)(limit_s * 1000) > 0 ? (long)(limit_s * 1000) : 1L);
	if (c->stream) { /* a plain request is silent while the model thinks: only the overall limit */
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
		curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, (long)ceil(c->idle_s));
	}
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, 30L);
	curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, 15L);
	curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(h, CURLOPT_HEADERDATA, a);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, a);
	CURLcode rc = curl_easy_perform(h);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
	curl_slist_free_all(hdr);
	(void)judge(o, a, rc, errbuf);
}

/* ---------------- the call ---------------- */

/* Sleeps s seconds in short steps; false when the stop flag cut it short. */
static bool nap(const kiln_llm *c, double s)
{
	double end = kiln_now_s() + s;
	for (;;) {
		if (c->stop && *c->stop)
			return false;
		double left = end - kiln_now_s();
		if (left <= 0)
			return true;
		double step = left < 0.05 ? left : 0.05;
		struct timespec ts = {(time_t)step, (long)((step - (double)(time_t)step) * 1e9)};
		nanosleep(&ts, NULL);
	}
}

static double backoff_s(kiln_llm *c, int retry, double retry_after_s)
{
	if (retry_after_s >= 0)
		return retry_after_s < c->ra_max_s ? retry_after_s : c->ra_max_s;
	double ceiling = c->backoff_base_s * pow(2, retry < 30 ? retry : 30);
	if (ceiling > c->backoff_max_s)
		ceiling = c->backoff_max_s;
	return kiln_rng_uniform(&c->rng) * ceiling; /* full jitter */
}

static void usage_add(kiln_llm_usage *sum, const kiln_llm_usage *u)
{
	if (!u->known)
		return;
	sum->known = true;
	sum->prompt += u->prompt;
	sum->cached += u->cached;
	sum->cache_write += u->cache_write;
	sum->completion += u->completion;
	if (u->reasoning >= 0)
		sum->reasoning = (sum->reasoning > 0 ? sum->reasoning : 0) + u->reasoning;
}

static void reply_usage(kiln_llm_reply *out, const kiln_llm *c, const kiln_llm_usage *u, bool any_200)
{
	if (!u->known && any_200) { /* something may have been billed that nobody reported */
		out->prompt_tokens = out->cached_tokens = out->completion_tokens = -1;
		out->reasoning_tokens = out->cache_write_tokens = -1;
		out->cost_usd = NAN;
		return;
	}
	out->prompt_tokens = u->prompt; /* all zero when every attempt was refused before a 200 */
	out->cached_tokens = u->cached;
	out->completion_tokens = u->completion;
	out->reasoning_tokens = u->reasoning;
	out->cache_write_tokens = u->cache_write; /* always 0 for OpenAI: it bills no writes */
	out->cost_usd = !c->priced ? NAN : u->known ? kiln_llm_cost(&c->price, u) : 0.0;
}

static char *dup_scrubbed(const kiln_llm *c, const char *s)
{
	return kiln_llm_scrub(kiln_strdup(s ? s : ""), c->key);
}

static kiln_err finish_reply(kiln_llm_reply *out, const kiln_llm *c, const outcome *o, attempt *a,
			     const char *request_id)
{
	out->text = a->res.text.data ? dup_scrubbed(c, a->res.text.data) : kiln_strdup("");
	out->status = kiln_strdup(o->status);
	out->error = o->error[0] ? dup_scrubbed(c, o->error) : NULL;
	out->request_id = request_id && *request_id ? dup_scrubbed(c, request_id) : NULL;
	out->fatal = !o->ok && o->v == KILN_LLM_FATAL;
	out->http_status = (int)a->http;
	if (!out->text || !out->status || (o->error[0] && !out->error))
		return kiln_error_set(KILN_ENOMEM, "out of memory finishing an LLM reply");
	return KILN_OK;
}

static void attempt_init(attempt *a, kiln_llm *c)
{
	memset(a, 0, sizeof *a);
	a->c = c;
	kiln_buf_init(&a->body, c->max_reply);
	kiln_sse_init(&a->parser, c->max_reply);
	kiln_llm_result_init(&a->res, c->max_reply);
}

static void attempt_free(attempt *a)
{
	kiln_buf_free(&a->body);
	kiln_sse_free(&a->parser);
	kiln_llm_result_free(&a->res);
}

static bool breaker_wait(kiln_llm *c, kiln_llm_reply *out)
{
	if (c->consecutive_failures < c->breaker_threshold)
		return true;
	double t0 = kiln_now_s();
	bool ok = nap(c, c->breaker_pause_s);
	c->pauses++;
	out->paused_s = kiln_now_s() - t0;
	return ok;
}

kiln_err kiln_llm_complete(kiln_llm *c, const kiln_llm_request *req, kiln_llm_reply *out)
{
	if (!c || !req || !out || !req->task)
		return kiln_error_set(KILN_EINVAL, "kiln_llm_complete: client, request, task and reply are required");
	memset(out, 0, sizeof *out);
	int max_tokens = req->max_output_tokens > 0 ? req->max_output_tokens : c->max_tokens;
	/* a boundary: nothing secret goes to the provider, whatever the prompt quotes */
	char *body = kiln_redact(kiln_redact_one(kiln_llm_body_build(&c->spec, req, max_tokens, c->stream), c->key));
	if (!body)
		return KILN_ENOMEM;
	attempt a;
	attempt_init(&a, c);
	outcome o = {.status = "error"};
	kiln_llm_usage total = {.reasoning = -1};
	bool any_200 = false;
	char request_id[128] = "";
	kiln_err e = KILN_OK;
	double start = 0, deadline = 0;
	if (!breaker_wait(c, out)) {
		fail_with(&o, KILN_LLM_FAIL, "error", "interrupted while the circuit breaker was open");
		goto done;
	}
	start = kiln_now_s();
	deadline = start + c->deadline_s;
	for (int i = 0; i <= c->max_retries; i++) {
		if (i > 0) { /* a fresh attempt: keep nothing of the last one's answer */
			attempt_free(&a);
			attempt_init(&a, c);
		}
		double left = deadline - kiln_now_s();
		memset(&o, 0, sizeof o);
		attempt_run(&a, &o, body, left < c->timeout_s ? left : c->timeout_s);
		out->attempts++;
		usage_add(&total, &a.res.usage);
		any_200 |= o.got_200;
		if (a.request_id[0] || a.res.id[0])
			snprintf(request_id, sizeof request_id, "%s", a.request_id[0] ? a.request_id : a.res.id);
		if (o.ok || o.v != KILN_LLM_RETRY || i == c->max_retries)
			break;
		double wait = backoff_s(c, i, o.retry_after_s);
		if (kiln_now_s() + wait >= deadline) {
			char m[700];
			snprintf(m, sizeof m, "%s (no time left for a retry within the %.0f s deadline)", o.error,
				 c->deadline_s);
			snprintf(o.error, sizeof o.error, "%.500s", m);
			break;
		}
		if (!nap(c, wait)) {
			fail_with(&o, KILN_LLM_FAIL, "error", "interrupted while waiting to retry");
			break;
		}
	}
	out->latency_s = kiln_now_s() - start;
done:
	reply_usage(out, c, &total, any_200);
	e = finish_reply(out, c, &o, &a, request_id);
	if (o.ok)
		c->consecutive_failures = 0;
	else if (out->attempts > 0)
		c->consecutive_failures++;
	attempt_free(&a);
	free(body);
	return e;
}

void kiln_llm_reply_free(kiln_llm_reply *r)
{
	if (!r)
		return;
	free(r->text);
	free(r->request_id);
	free(r->status);
	free(r->error);
	memset(r, 0, sizeof *r);
}

/* ---------------- recording ---------------- */

kiln_err kiln_llm_record(kiln_db *db, int64_t run_id, const kiln_llm *c, const kiln_llm_request *req,
			 const kiln_llm_reply *r, int64_t *out_call_id)
{
	if (!db || !c || !req || !r || !r->status)
		return kiln_error_set(KILN_EINVAL, "kiln_llm_record: database, client, request and reply are required");
	kiln_buf p;
	kiln_buf_init(&p, 0);
	const char *parts[3] = {req->system, req->prefix, req->task};
	kiln_err e = KILN_OK;
	for (int i = 0; i < 3 && !e; i++)
		if (parts[i] && *parts[i])
			e = kiln_buf_printf(&p, "%s%s", p.len ? "\n\n" : "", parts[i]);
	/* a stored prompt is capped like a log (head and tail): the model's texts in it are */
	char *prompt = e ? NULL : kiln_text_cap(kiln_llm_scrub(kiln_buf_detach(&p), c->key), 4 * KILN_LOG_MAX);
	char *reply = r->text ? dup_scrubbed(c, r->text) : NULL;
	char *error = r->error ? dup_scrubbed(c, r->error) : NULL;
	kiln_buf_free(&p);
	if (!prompt || (r->text && !reply) || (r->error && !error)) {
		e = e ? e : kiln_error_set(KILN_ENOMEM, "out of memory recording an LLM call");
		goto done;
	}
	kiln_llm_call_rec rec = {
		.run_id = run_id, .provider = c->spec.provider, .model = c->spec.model,
		.request_id = r->request_id, .status = r->status, .attempts = r->attempts,
		.latency_s = r->latency_s, .prompt_tokens = r->prompt_tokens, .cached_tokens = r->cached_tokens,
		.completion_tokens = r->completion_tokens, .reasoning_tokens = r->reasoning_tokens,
		.cost_usd = r->cost_usd, .purpose = req->purpose && *req->purpose ? req->purpose : "call",
		.prompt = prompt, .reply = reply, .error = error,
	};
	int64_t id = 0;
	e = kiln_db_llm_call_add(db, &id, &rec);
	if (!e && out_call_id)
		*out_call_id = id;
done:
	free(prompt);
	free(reply);
	free(error);
	return e;
}
