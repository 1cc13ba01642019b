/* cli: `kiln llm ping` makes one small call (or --repeat N) with the client the search uses
 * and prints model, status, attempts, latency, tokens and cost: how a user checks their
 * set-up before leaving a search running overnight. Also the LLM lines of `kiln doctor`.
 * Exit 0 every call ok, 1 a call was made and failed, 2 usage, 3 no usable configuration. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "agent/llm/llm.h"
#include "cli/cli.h"

static const char usage[] =
	"kiln llm ping [--llm provider:model] [--base-url URL] [--key-env VAR] [--stream] "
	"[--max-tokens N] [--timeout S] [--retries N] [--repeat N] [--max-reply BYTES] [--prices FILE] [--record] "
	"[--workdir DIR] [--json]";
static const char help[] =
	"Sends one short prompt to the configured LLM and reports what came back.\n"
	"  --llm SPEC          provider:model[@base_url] (default: $KILN_LLM, else by the key set)\n"
	"                      providers: openai, anthropic, openai-compatible (vllm, sglang,\n"
	"                      llamacpp, ollama, openrouter)\n"
	"  --base-url URL      API base, e.g. http://127.0.0.1:8000/v1 (else $KILN_<PROVIDER>_BASE_URL)\n"
	"  --key-env VAR       read the API key from VAR instead of OPENAI_API_KEY / ANTHROPIC_API_KEY\n"
	"  --stream            use SSE streaming\n"
	"  --max-tokens N      output-token cap (default 512)\n"
	"  --timeout S         one attempt's time limit in seconds (default 120)\n"
	"  --retries N         retries after the first attempt (default 4)\n"
	"  --backoff S         first backoff ceiling in seconds (default 1; full jitter, doubling)\n"
	"  --breaker N         consecutive failed calls that pause the client (default 5)\n"
	"  --breaker-pause S   that pause in seconds (default 300)\n"
	"  --repeat N          make N calls with one client (default 1; stops at a fatal error)\n"
	"  --max-reply BYTES   cap on a reply (default 8 MiB): a larger one is an error\n"
	"  --prices FILE       prices merged over data/prices.json (also $KILN_PRICES)\n"
	"  --prompt TEXT       the task text (default: reply with the single word pong)\n"
	"  --record            record the calls in <workdir>/history.db (a run with policy \"ping\")\n"
	"  --workdir DIR       work directory for --record (default $KILN_WORKDIR or ./.kiln)\n"
	"  --json              one JSON object per call\n"
	"Exit status: 0 every call ok, 1 a call failed (status printed), 3 not configured.\n";

typedef struct ping_opts {
	const char *spec, *base_url, *key_env, *max_tokens, *timeout, *retries, *backoff, *breaker;
	const char *breaker_pause, *repeat, *max_reply, *prices, *prompt, *workdir;
	bool stream, json, record;
} ping_opts;

static bool num_arg(double *out, const char *s, const char *name, double lo, double hi)
{
	if (!s)
		return true;
	char *end = NULL;
	double v = strtod(s, &end);
	if (!*s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "kiln llm: --%s '%s': expected a number in [%g, %g]\nusage: %s\n", name, s, lo, hi, usage);
		return false;
	}
	*out = v;
	return true;
}

/* null for unknown: a negative count, a NaN cost, a missing string */
static void json_num(cJSON *o, const char *k, double v)
{
	if (v < 0 || isnan(v))
		cJSON_AddNullToObject(o, k);
	else
		cJSON_AddNumberToObject(o, k, v);
}

static void json_str(cJSON *o, const char *k, const char *v)
{
	if (v)
		cJSON_AddStringToObject(o, k, v);
	else
		cJSON_AddNullToObject(o, k);
}

static void print_json(const kiln_llm *c, const kiln_llm_reply *r)
{
	cJSON *o = cJSON_CreateObject();
	json_str(o, "provider", kiln_llm_provider(c));
	json_str(o, "model", kiln_llm_model(c));
	json_str(o, "base_url", kiln_llm_base_url(c));
	json_str(o, "status", r->status);
	json_num(o, "attempts", r->attempts);
	json_num(o, "http_status", r->http_status);
	json_num(o, "latency_s", r->latency_s);
	json_num(o, "paused_s", r->paused_s);
	json_str(o, "request_id", r->request_id);
	json_num(o, "prompt_tokens", (double)r->prompt_tokens);
	json_num(o, "cached_tokens", (double)r->cached_tokens);
	json_num(o, "cache_write_tokens", (double)r->cache_write_tokens);
	json_num(o, "completion_tokens", (double)r->completion_tokens);
	json_num(o, "reasoning_tokens", (double)r->reasoning_tokens);
	json_num(o, "cost_usd", r->cost_usd);
	cJSON_AddBoolToObject(o, "fatal", r->fatal);
	json_str(o, "error", r->error);
	json_str(o, "text", r->text ? r->text : "");
	char *s = cJSON_PrintUnformatted(o);
	if (s)
		printf("%s\n", s);
	free(s);
	cJSON_Delete(o);
}

static void tokens_text(char *out, size_t n, int64_t v)
{
	if (v < 0)
		snprintf(out, n, "?");
	else
		snprintf(out, n, "%lld", (long long)v);
}

static void print_human(const kiln_llm *c, const kiln_llm_reply *r)
{
	char p[24], ca[24], w[24], co[24], re[24];
	tokens_text(p, sizeof p, r->prompt_tokens);
	tokens_text(ca, sizeof ca, r->cached_tokens);
	tokens_text(w, sizeof w, r->cache_write_tokens);
	tokens_text(co, sizeof co, r->completion_tokens);
	tokens_text(re, sizeof re, r->reasoning_tokens);
	printf("model:    %s:%s at %s\n", kiln_llm_provider(c), kiln_llm_model(c), kiln_llm_base_url(c));
	printf("status:   %s, %d attempt(s), %.2f s%s", r->status, r->attempts, r->latency_s,
	       r->request_id ? ", request id " : "");
	kiln_text_print(stdout, r->request_id, KILN_TEXT_LINE); /* the server's */
	printf("\n");
	if (r->paused_s > 0)
		printf("breaker:  paused %.1f s before this call\n", r->paused_s);
	if (r->error) {
		printf("error:    "); /* the server's words: escaped */
		kiln_text_print(stdout, r->error, KILN_TEXT_LINE);
		printf("%s\n", r->fatal ? " (fatal: a search would stop here)" : "");
	}
	char reply[201];
	snprintf(reply, sizeof reply, "%s", r->text && *r->text ? r->text : "(none)");
	printf("reply:    ");
	kiln_text_print(stdout, reply, KILN_TEXT_LINE);
	printf("\n");
	printf("tokens:   prompt %s (cached %s, cache write %s), completion %s (reasoning %s)\n", p, ca, w, co, re);
	if (isnan(r->cost_usd))
		printf("cost:     unknown (no price for this model: add it with --prices or KILN_PRICES)\n");
	else
		printf("cost:     $%.6f\n", r->cost_usd);
}

/* Opens <workdir>/history.db and a run to hang the calls on. */
static kiln_err record_open(kiln_db **db, int64_t *run_id, const char *workdir, const char *spec)
{
	const char *wd = kiln_cli_workdir(workdir);
	kiln_err e = kiln_mkdir_p(wd);
	char *path = e ? NULL : kiln_path_join(wd, "history.db");
	if (!e && !path)
		e = KILN_ENOMEM;
	if (!e)
		e = kiln_db_open(db, path, 0);
	free(path);
	if (e)
		return e;
	kiln_run_rec rr = {.target = "(llm ping)", .policy = "ping", .llm_model = spec, .device = "none",
			   .arch = "none", .pid = (int64_t)getpid()};
	return kiln_db_run_begin(*db, run_id, &rr);
}

static int ping(const ping_opts *po)
{
	double max_tokens = 512, timeout = 120, retries = 4, backoff = 0, breaker = 0, pause = 0, repeat = 1;
	double max_reply = 0;
	if (!num_arg(&max_tokens, po->max_tokens, "max-tokens", 1, 1e6) ||
	    !num_arg(&timeout, po->timeout, "timeout", 0.001, 86400) || !num_arg(&retries, po->retries, "retries", 0, 100) ||
	    !num_arg(&backoff, po->backoff, "backoff", 0, 3600) || !num_arg(&breaker, po->breaker, "breaker", 1, 1000) ||
	    !num_arg(&pause, po->breaker_pause, "breaker-pause", 0, 86400) || !num_arg(&repeat, po->repeat, "repeat", 1, 1000) ||
	    !num_arg(&max_reply, po->max_reply, "max-reply", 1, 1e9))
		return KILN_EXIT_USAGE;
	kiln_llm_config cfg = {
		.spec = po->spec, .base_url = po->base_url, .key_env = po->key_env, .stream = po->stream,
		.max_output_tokens = (int)max_tokens, .timeout_s = timeout, .max_retries = retries > 0 ? (int)retries : -1,
		.prices_path = po->prices, .backoff_base_s = backoff, .breaker_threshold = (int)breaker,
		.breaker_pause_s = pause, .idle_timeout_s = timeout, .max_reply_bytes = (size_t)max_reply, .deadline_s = timeout * (retries + 1) + 600,
	};
	kiln_llm *c = NULL;
	kiln_db *db = NULL;
	int64_t run_id = 0;
	int rc = KILN_EXIT_OK;
	kiln_err e = kiln_llm_new(&c, &cfg);
	if (e)
		return kiln_cli_fail("llm ping", e);
	char spec[256];
	snprintf(spec, sizeof spec, "%s:%s", kiln_llm_provider(c), kiln_llm_model(c));
	if (po->record && (e = record_open(&db, &run_id, po->workdir, spec))) {
		rc = kiln_cli_fail("llm ping", e);
		goto done;
	}
	kiln_llm_request req = {
		.system = "You are a connectivity check for kiln, a CUDA kernel search tool. Answer tersely.",
		.prefix = NULL, .task = po->prompt ? po->prompt : "Reply with the single word: pong",
		.purpose = "ping",
	};
	for (int i = 0; i < (int)repeat; i++) {
		kiln_llm_reply r;
		if ((e = kiln_llm_complete(c, &req, &r))) {
			rc = kiln_cli_fail("llm ping", e);
			break;
		}
		if (po->json)
			print_json(c, &r);
		else
			print_human(c, &r);
		fflush(stdout);
		if (db && (e = kiln_llm_record(db, run_id, c, &req, &r, NULL)))
			rc = kiln_cli_fail("llm ping", e);
		if (strcmp(r.status, "ok") != 0 && rc == KILN_EXIT_OK)
			rc = KILN_EXIT_FAIL;
		bool stop = r.fatal;
		kiln_llm_reply_free(&r);
		if (stop)
			break;
	}
	if (db)
		kiln_db_run_end(db, run_id, rc == KILN_EXIT_OK ? "finished" : "failed", NULL);
done:
	kiln_db_close(db);
	kiln_llm_free(c);
	return rc;
}

int kiln_cmd_llm(int argc, char **argv)
{
	ping_opts po = {0};
	const char *pos[1];
	int npos = 0, rc = 0;
	kiln_cli_opt opts[] = {
		{"llm", 1, &po.spec, NULL}, {"base-url", 1, &po.base_url, NULL}, {"key-env", 1, &po.key_env, NULL},
		{"stream", 0, NULL, &po.stream}, {"max-tokens", 1, &po.max_tokens, NULL},
		{"timeout", 1, &po.timeout, NULL}, {"retries", 1, &po.retries, NULL},
		{"backoff", 1, &po.backoff, NULL}, {"breaker", 1, &po.breaker, NULL},
		{"breaker-pause", 1, &po.breaker_pause, NULL}, {"repeat", 1, &po.repeat, NULL},
		{"max-reply", 1, &po.max_reply, NULL},
		{"prices", 1, &po.prices, NULL}, {"prompt", 1, &po.prompt, NULL}, {"record", 0, NULL, &po.record},
		{"workdir", 1, &po.workdir, NULL}, {"json", 0, NULL, &po.json}, {0},
	};
	if (!kiln_cli_parse(argc, argv, opts, pos, 1, &npos, usage, help, &rc))
		return rc;
	if (npos != 1 || strcmp(pos[0], "ping") != 0) {
		fprintf(stderr, "kiln llm: expected the subcommand 'ping'\nusage: %s\n", usage);
		return KILN_EXIT_USAGE;
	}
	return ping(&po);
}

void kiln_cli_llm_doctor(void)
{
	char why[400];
	bool ok = kiln_llm_configured(NULL, why, sizeof why);
	if (!ok) {
		printf("llm:         %s: `kiln run` uses the tuner policy\n", why);
		return;
	}
	kiln_llm *c = NULL;
	kiln_llm_config cfg = {0};
	if (kiln_llm_new(&c, &cfg)) {
		printf("llm:         %s, but unusable: %s\n", why, kiln_error_last());
		return;
	}
	printf("llm:         %s (KILN_LLM or the key set picks it; --llm overrides)\n", why);
	printf("llm api:     %s%s\n", kiln_llm_base_url(c),
	       kiln_llm_priced(c) ? "" : "; no price for this model: costs are recorded as unknown");
	printf("llm check:   `kiln llm ping` makes one small call\n");
	kiln_llm_free(c);
}
