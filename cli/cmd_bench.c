/* cli: `kiln bench TARGET` verifies a kernel (the target's seed unless --kernel/--launch)
 * and, only when it passes, times it: modeled on the emulator or measured on a GPU, with
 * the achieved bandwidth, the roofline fraction, the resource report and the main
 * counters. `--compare A.cu B.cu ...` ranks several candidates in one run (each with
 * A.json next to it, else the target's launch.json); on a GPU each candidate runs in its
 * own child process (a fault ends a CUDA context for good: it costs one row, not the
 * comparison). Knobs take the kernel's own #ifndef defaults (the seed's configuration, as
 * `kiln run` evaluates it) unless -D sets them.
 * Exit 0 all timed, 1 some candidate failed verification, 3 could not run. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "cli/cli.h"
#include "profile/profile.h"

#define MAX_CANDS 32
#define MAX_DEFS 32

static const char usage[] =
	"kiln bench TARGET [--kernel F.cu --launch F.json | --compare A.cu B.cu ...] "
	"[-D NAME=V ...] [--device cuda|emu|auto] [--gpu SPEC] [--gpu-index N] [--seed S] [--max-seconds X] "
	"[--rank-time launches|kernels] [--threads N] [--size SPEC ...] [--json] [--targets-dir DIR] [--workdir DIR]";
static const char help[] =
	"Verifies, then times a kernel (the target's seed.cu unless --kernel/--launch).\n"
	"  --kernel F.cu       the candidate\n"
	"  --launch F.json     its launch plan\n"
	"  --compare A.cu ...  rank several candidates (launch plan: A.json beside A.cu, else\n"
	"                      the target's launch.json); on a GPU each in its own process\n"
	"  -D NAME=V           a knob value or define (repeatable); knobs not given take the\n"
	"                      kernel's own #ifndef default (for the seed: `kiln run`'s seed)\n"
	"  --device KIND       emu, cuda or auto (default auto: cuda when a GPU is usable)\n"
	"  --gpu SPEC          emu: GPU spec to model (data/gpus.json; default h100_sxm)\n"
	"  --seed S            input set for the modeled timing runs (default 1)\n"
	"  --max-seconds X     cuda: time cap per candidate (default 3)\n"
	KILN_CLI_RANK_TIME_HELP
	"  --gpu-index N       cuda: the GPU ordinal among CUDA_VISIBLE_DEVICES (sets KILN_GPU_INDEX)\n"
	"  --threads N         verification threads (default $KILN_THREADS, else all cores)\n"
	"  --size SPEC         bench sizes (repeatable), as kiln run: B=1024,T=4096 replaces the target's\n"
	"                      list, +B=1024,T=4096 adds a size, @W weighs it; every size is timed and the\n"
	"                      time is their weighted geometric mean\n"
	"  --json              print the results as JSON\n"
	"  --targets-dir DIR   where to find TARGET\n"
	"  --workdir DIR       compile cache in DIR/cache (default $KILN_WORKDIR or ./.kiln)\n"
	"Times are labelled modeled (cost model on emulator counters) or measured (GPU).\n"
	"Exit status: 0 timed, 1 a candidate failed verification, 3 could not run.\n";

typedef struct cand {
	const char *kernel, *launch;
	char *launch_owned;
	bool verified, timed;
	kiln_verdict verdict;
	kiln_timing timing;
	char error[400];
	char *defs[KILN_ENV_MAX + MAX_DEFS]; /* "NAME=V" compiled with */
	size_t ndefs;
	char knobs[400];                     /* the knobs the source or plan uses, "A=1 B=2" */
} cand;

typedef struct bench_cfg {
	const kiln_target *t;
	kiln_device *dev;
	const char *gpu;
	uint64_t seed;
	double max_seconds;
	size_t threads;      /* verification threads */
	const char *const *user_defs;  /* -D, as given */
	size_t nuser;
	char *cache_dir;               /* <workdir>/cache */
	kiln_rank_time rank;           /* what the times are */
} bench_cfg;

/* A.cu -> A.json when that file exists, else the target's plan. */
static const char *plan_for(cand *c, const kiln_target *t)
{
	size_t n = strlen(c->kernel);
	if (n > 3 && strcmp(c->kernel + n - 3, ".cu") == 0 &&
	    (c->launch_owned = kiln_asprintf("%.*s.json", (int)(n - 3), c->kernel)) &&
	    kiln_path_exists(c->launch_owned))
		return c->launch_owned;
	return t->launch_path;
}

/* NAME as a whole word in text (a knob the source or the plan refers to). */
static bool uses_name(const char *text, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = text ? strstr(text, name) : NULL; p; p = strstr(p + 1, name)) {
		char a = p == text ? ' ' : p[-1], z = p[n];
		bool wa = a == '_' || (a >= '0' && a <= '9') || (a >= 'A' && a <= 'Z') || (a >= 'a' && a <= 'z');
		bool wz = z == '_' || (z >= '0' && z <= '9') || (z >= 'A' && z <= 'Z') || (z >= 'a' && z <= 'z');
		if (!wa && !wz)
			return true;
	}
	return false;
}

/* The -D value given for name, or NULL. */
static const char *user_value(const bench_cfg *b, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < b->nuser; i++)
		if (strncmp(b->user_defs[i], name, n) == 0 && (b->user_defs[i][n] == '=' || !b->user_defs[i][n]))
			return b->user_defs[i][n] ? b->user_defs[i] + n + 1 : "1";
	return NULL;
}

/* A knob set with -D takes an integer (it is also a launch-expression value). */
static kiln_err check_knob_values(const bench_cfg *b, const kiln_target *t)
{
	for (size_t k = 0; k < t->nknobs; k++) {
		const char *v = user_value(b, t->knobs[k].name);
		char *end = NULL;
		if (v && (strtoll(v, &end, 0), !*v || *end))
			return kiln_error_set(KILN_EINVAL, "-D %s=%s: knob %s takes an integer", t->knobs[k].name, v,
					      t->knobs[k].name);
	}
	return KILN_OK;
}

/* Every knob at its -D value, else the kernel's #ifndef default (the tuner's seed
 * configuration: what `kiln run` evaluates the seed with), then the other -D defines. */
static kiln_err knob_defines(cand *c, const bench_cfg *b, const char *src, const char *plan_text)
{
	const kiln_target *t = b->t;
	kiln_tuner *tu = NULL;
	int64_t values[KILN_ENV_MAX];
	if (t->nknobs > KILN_ENV_MAX)
		return kiln_error_set(KILN_EINVAL, "target %s has too many knobs", t->name);
	kiln_err e = kiln_tuner_new(&tu, t, src, 1, 0);
	if (e)
		return e;
	kiln_tuner_seed_values(tu, values);
	kiln_tuner_free(tu);
	size_t off = 0;
	for (size_t i = 0; i < t->nknobs; i++) {
		const char *uv = user_value(b, t->knobs[i].name);
		char *d = uv ? kiln_asprintf("%s=%s", t->knobs[i].name, uv)
			     : kiln_asprintf("%s=%lld", t->knobs[i].name, (long long)values[i]);
		if (!d)
			return KILN_ENOMEM;
		c->defs[c->ndefs++] = d;
		if ((uses_name(src, t->knobs[i].name) || uses_name(plan_text, t->knobs[i].name)) && off < sizeof c->knobs)
			off += (size_t)snprintf(c->knobs + off, sizeof c->knobs - off, "%s%s", off ? " " : "", d);
	}
	for (size_t i = 0; i < b->nuser; i++) {
		size_t n = strcspn(b->user_defs[i], "=");
		bool knob = false;
		for (size_t k = 0; k < t->nknobs; k++)
			knob = knob || (strlen(t->knobs[k].name) == n && strncmp(b->user_defs[i], t->knobs[k].name, n) == 0);
		if (!knob && !(c->defs[c->ndefs++] = kiln_strdup(b->user_defs[i])))
			return KILN_ENOMEM;
	}
	return KILN_OK;
}

/* Verify, then time. Returns a kiln_err only for what stops the whole run. */
static kiln_err run_one(cand *c, const bench_cfg *b)
{
	char *src = NULL, *plan_text = NULL;
	size_t len = 0, plen = 0;
	kiln_plan *plan = NULL;
	kiln_err e;
	if ((e = kiln_file_read(&src, &len, c->kernel, 4u << 20)) ||
	    (memchr(src, '\0', len) && (e = kiln_error_set(KILN_EINVAL, "%s: refused: the source contains a NUL byte", c->kernel))) || (e = kiln_plan_load(&plan, c->launch, b->t)) ||
	    (e = kiln_file_read(&plan_text, &plen, c->launch, 4u << 20))) {
		if (e == KILN_EINVAL || e == KILN_EIO || e == KILN_ENOTFOUND) { /* this candidate's files: report, go on */
			snprintf(c->error, sizeof(c->error), "%s", kiln_error_last());
			e = 0;
		}
		goto done;
	}
	if ((e = knob_defines(c, b, src, plan_text)))
		goto done;
	kiln_build_src bs = KILN_BUILD_SRC_INIT;
	bs.target = b->t;
	bs.source = src;
	bs.source_name = c->kernel;
	bs.plan = plan;
	bs.defines = (const char *const *)c->defs;
	bs.ndefines = c->ndefs;
	bs.device = b->dev;
	bs.cache_dir = b->cache_dir;
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src = bs;
	vo.threads = b->threads;
	if ((e = kiln_verify(&c->verdict, &vo)))
		goto done;
	c->verified = c->verdict.pass;
	if (!c->verified)
		goto done;
	kiln_time_options to = KILN_TIME_OPTIONS_INIT;
	to.src = bs;
	to.gpu = b->gpu;
	to.max_seconds = b->max_seconds;
	to.rank = b->rank;
	to.seed = b->seed;
	to.every_size = true;
	e = kiln_time(&c->timing, &to);
	c->timed = !e;
	if (e == KILN_EVERIFY || e == KILN_EUNSUPPORTED || e == KILN_EINVAL || e == KILN_EFAULT) {
		snprintf(c->error, sizeof(c->error), "%s", kiln_error_last());
		e = 0;
	}
done:
	kiln_plan_free(plan);
	free(src);
	free(plan_text);
	return e;
}

/* ---- --compare on a GPU: one child per candidate ---- */

typedef struct child_arg {
	cand *c;
	const bench_cfg *b;
} child_arg;

/* What comes back from a child: these fields as hex, then each owned string of the timing. */
typedef struct wire {
	bool verified, timed;
	kiln_verdict verdict;
	kiln_timing timing;
	char error[400];
} wire;

static char **wire_strings(kiln_timing *t, size_t i)
{
	char **s[] = {&t->samples_json, &t->counters_json, &t->spec_json, &t->breakdown_json, &t->resources_json,
		      &t->sizes_json};
	return i < KILN_ARRAY_LEN(s) ? s[i] : NULL;
}

static kiln_err put_hex(kiln_buf *o, const void *p, size_t n)
{
	kiln_err e = kiln_buf_puts(o, "|");
	for (size_t i = 0; !e && i < n; i++)
		e = kiln_buf_printf(o, "%02x", ((const unsigned char *)p)[i]);
	return e;
}

static const char *get_hex(const char *at, void *p, size_t n)
{
	if (!at || *at != '|')
		return NULL;
	at++;
	for (size_t i = 0; i < n; i++, at += 2) {
		unsigned v;
		if (sscanf(at, "%2x", &v) != 1)
			return NULL;
		((unsigned char *)p)[i] = (unsigned char)v;
	}
	return at;
}

static kiln_err bench_child(char **text, void *arg)
{
	child_arg *a = arg;
	bench_cfg b = *a->b;
	kiln_device *dev = NULL;
	kiln_buf o = KILN_BUF_INIT;
	kiln_err e = kiln_device_open(&dev, "cuda", NULL);
	if (!e) {
		b.dev = dev;
		e = run_one(a->c, &b);
	}
	if (e && !a->c->error[0])
		snprintf(a->c->error, sizeof(a->c->error), "%s", kiln_error_last());
	wire w = {a->c->verified, a->c->timed, a->c->verdict, a->c->timing, ""};
	snprintf(w.error, sizeof(w.error), "%s", a->c->error);
	for (size_t i = 0; wire_strings(&w.timing, i); i++)
		*wire_strings(&w.timing, i) = NULL;
	e = put_hex(&o, &w, sizeof(w));
	for (size_t i = 0; !e && wire_strings(&a->c->timing, i); i++) {
		const char *str = *wire_strings(&a->c->timing, i);
		e = put_hex(&o, str ? str : "", str ? strlen(str) : 0);
	}
	kiln_device_free(dev);
	*text = e ? NULL : kiln_buf_detach(&o);
	kiln_buf_free(&o);
	return *text ? 0 : KILN_ENOMEM;
}

/* Runs c in a child that opens the GPU itself; what went wrong there is c's error. */
static void run_in_child(cand *c, const bench_cfg *b)
{
	child_arg a = {c, b};
	kiln_child_result r;
	wire w;
	if (kiln_child_run(&r, bench_child, &a, 1800)) {
		snprintf(c->error, sizeof(c->error), "%s", kiln_error_last());
		return;
	}
	const char *at = get_hex(r.text, &w, sizeof(w));
	for (size_t i = 0; at && wire_strings(&w.timing, i); i++) {
		const char *end = strchr(at + 1, '|');
		size_t len = (size_t)((end ? end : at + strlen(at)) - at - 1) / 2;
		char **dst = wire_strings(&w.timing, i);
		*dst = kiln_calloc(1, len + 1);
		at = *dst ? get_hex(at, *dst, len) : NULL;
	}
	if (at) {
		c->verified = w.verified;
		c->timed = w.timed;
		c->verdict = w.verdict;
		c->timing = w.timing;
		snprintf(c->error, sizeof(c->error), "%s", w.error);
	} else {
		kiln_timing_free(&w.timing);
		if (r.timed_out)
			snprintf(c->error, sizeof(c->error), "its evaluation did not finish within 1800 s (killed)");
		else
			snprintf(c->error, sizeof(c->error), "its evaluation process died (signal %d, exit %d)", r.signal, r.exit_code);
	}
	kiln_child_result_free(&r);
}

static double counter(const cJSON *launch, const char *name)
{
	const cJSON *at = cJSON_GetObjectItemCaseSensitive(launch, "at_bench");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(at, name);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

static void print_counters(const kiln_timing *tm, const kiln_target *t)
{
	cJSON *j = tm->counters_json ? cJSON_Parse(tm->counters_json) : NULL;
	const cJSON *l;
	char at[160] = "";
	size_t n = 0;
	for (size_t i = 0; i < tm->bench_env.n; i++)
		for (size_t s = 0; s < t->nsymbols && n < sizeof at; s++)
			if (strcmp(tm->bench_env.names[i], t->symbols[s].name) == 0)
				n += (size_t)snprintf(at + n, sizeof at - n, "%s%s=%lld", n ? "," : "", tm->bench_env.names[i],
						      (long long)tm->bench_env.values[i]);
	cJSON_ArrayForEach(l, cJSON_GetObjectItemCaseSensitive(j, "launches"))
	{
		const cJSON *k = cJSON_GetObjectItemCaseSensitive(l, "kernel");
		double wi = 0;
		static const char *const cls[] = {"warp_fp32", "warp_int", "warp_mufu", "warp_cvt", "warp_fp64", "warp_half2",
						  "warp_shfl", "warp_mem", "warp_ctrl", "warp_barrier", "warp_other"};
		for (size_t i = 0; i < KILN_ARRAY_LEN(cls); i++)
			wi += counter(l, cls[i]);
		double gr = counter(l, "gld_requests"), gs = counter(l, "gld_sectors");
		double sr = counter(l, "gst_requests"), ss = counter(l, "gst_sectors");
		double shr = counter(l, "shared_requests"), shw = counter(l, "shared_wavefronts");
		printf("  counters  %s (at %s%s): %.4g warp-instr (fp32 %.3g, mem %.3g), loads %.3g sectors/req, "
		       "stores %.3g sectors/req, DRAM %.4g MB, shared %.3g wavefronts/req, %.4g loop rounds\n",
		       cJSON_IsString(k) ? k->valuestring : "?", at, tm->nsizes > 1 ? ", the size with the most traffic" : "", wi, counter(l, "warp_fp32"), counter(l, "warp_mem"),
		       gr > 0 ? gs / gr : 0, sr > 0 ? ss / sr : 0, counter(l, "dram_sectors") * 32 / 1e6,
		       shr > 0 ? shw / shr : 0, counter(l, "loop_iterations"));
	}
	cJSON_Delete(j);
}

static void print_resources(const kiln_timing *tm)
{
	cJSON *j = tm->resources_json ? cJSON_Parse(tm->resources_json) : NULL;
	const cJSON *k;
	cJSON_ArrayForEach(k, cJSON_GetObjectItemCaseSensitive(j, "kernels"))
	{
		char *txt = cJSON_PrintUnformatted(k);
		printf("  resources %s\n", txt ? txt : "?");
		free(txt);
	}
	cJSON_Delete(j);
}

/* One line per bench size: its sizes, weight, time, roofline and (modeled) bound. */
static void print_sizes(const kiln_timing *tm)
{
	if (tm->nsizes > 1)
		printf("  objective the weighted geometric mean of %zu bench sizes' times\n", tm->nsizes);
	for (size_t k = 0; k < tm->nsizes; k++) {
		const kiln_size_timing *st = &tm->size[k];
		printf("  size     ");
		for (size_t i = 0; i < st->sizes.n; i++)
			printf(" %s=%lld", st->sizes.names[i], (long long)st->sizes.values[i]);
		printf(" (weight %g): %.2f us, roofline %.3f", st->weight, st->time_us, st->roofline);
		if (st->bound[0])
			printf(", %s-bound", st->bound);
		printf("\n");
	}
}

static void print_one(const cand *c, const kiln_target *t)
{
	const kiln_timing *tm = &c->timing;
	if (c->error[0] && !c->verdict.nchecks_run) {
		printf("ERROR %s (%s): %s\n", t->name, c->kernel, c->error);
		return;
	}
	printf("%s %s (%s): ", c->verified ? "PASS" : "FAIL", t->name, c->kernel);
	if (!c->verified) {
		printf("[%s] ", c->verdict.check);
		kiln_text_print(stdout, c->verdict.message, KILN_TEXT_LINE);
		printf(" — not timed\n");
		return;
	}
	if (!c->timed) {
		printf("verified, not timed: %s\n", c->error);
		return;
	}
	printf("%.2f us %s (%s%s)\n", tm->time_us, tm->modeled ? "modeled" : "measured", tm->time_def,
	       tm->nsizes > 1 ? "; geometric mean over the bench sizes" : "");
	if (isfinite(tm->kernel_us) && isfinite(tm->gap_us) && tm->gap_us > 0)
		printf("  split     kernels %.2f us + launch gaps %.2f us%s\n", tm->kernel_us, tm->gap_us,
		       tm->graph ? " (CUDA graph)" : "");
	printf("  device    %s", tm->device);
	if (tm->modeled)
		printf(" (bound: %s; differences under %.0f%% are ties)\n", tm->bound, tm->spread * 100);
	else
		printf(" (%s; median of %lld reps, min %.2f us, spread %.1f%%)\n", tm->cupti ? "CUPTI" : "CUDA events",
		       (long long)tm->reps, tm->min_us, tm->spread * 100);
	print_sizes(tm);
	printf("  how       %s", tm->how);
	if (c->knobs[0])
		printf("\n  knobs     %s", c->knobs);
	if (tm->traffic_floor_bytes < tm->traffic_bytes)
		printf("\n  traffic   %.4g MB declared (masked positions included), floor %.4g MB on this draw's mask "
		       "-> %.0f GB/s, roofline %.3f (of the floor)%s\n", tm->traffic_bytes / 1e6, tm->traffic_floor_bytes / 1e6,
		       tm->bandwidth_gbs, tm->roofline, tm->nsizes > 1 ? " (geometric means over the sizes)" : "");
	else
		printf("\n  traffic   %.4g MB -> %.0f GB/s, roofline %.3f%s\n", tm->traffic_bytes / 1e6, tm->bandwidth_gbs,
		       tm->roofline, tm->nsizes > 1 ? " (geometric means over the sizes)" : "");
	if (tm->fit_note[0])
		printf("  fit       %s\n", tm->fit_note);
	print_resources(tm);
	if (tm->modeled)
		print_counters(tm, t);
}

static cJSON *cand_json(const cand *c)
{
	cJSON *o = cJSON_CreateObject();
	char *v = kiln_verdict_to_json(&c->verdict), *t = c->timed ? kiln_timing_to_json(&c->timing) : NULL;
	cJSON_AddStringToObject(o, "kernel", c->kernel);
	cJSON_AddStringToObject(o, "launch", c->launch);
	cJSON_AddBoolToObject(o, "verified", c->verified);
	cJSON_AddBoolToObject(o, "timed", c->timed);
	cJSON *vj = v ? cJSON_Parse(v) : NULL, *tj = t ? cJSON_Parse(t) : NULL;
	cJSON_AddItemToObject(o, "verdict", vj ? vj : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "timing", tj ? tj : cJSON_CreateNull());
	if (c->error[0])
		cJSON_AddStringToObject(o, "error", c->error);
	cJSON_AddStringToObject(o, "knobs", c->knobs); /* the ones the kernel or plan uses, "NAME=V ..." */
	free(v);
	free(t);
	return o;
}

/* Indexes of the timed candidates, fastest first (stable for equal times). */
static size_t rank(size_t *order, const cand *cs, size_t n)
{
	size_t m = 0;
	for (size_t i = 0; i < n; i++)
		if (cs[i].timed)
			order[m++] = i;
	for (size_t i = 1; i < m; i++)
		for (size_t j = i; j > 0 && cs[order[j]].timing.time_us < cs[order[j - 1]].timing.time_us; j--) {
			size_t x = order[j];
			order[j] = order[j - 1];
			order[j - 1] = x;
		}
	return m;
}

static void print_ranking(const cand *cs, const size_t *order, size_t m)
{
	printf("\nranking (fastest first):\n");
	for (size_t r = 0; r < m; r++) {
		const kiln_timing *tm = &cs[order[r]].timing, *best = &cs[order[0]].timing;
		double rel = best->time_us > 0 ? tm->time_us / best->time_us : 0;
		bool tie = r > 0 && rel - 1.0 <= fmax(best->spread, tm->spread);
		printf("  %zu. %-40s %10.2f us %s  x%.3f  roofline %.3f%s\n", r + 1, cs[order[r]].kernel, tm->time_us,
		       tm->modeled ? "modeled" : "measured", rel, tm->roofline, tie ? "  (tie with #1)" : "");
	}
}

static void print_json(const kiln_target *t, const char *device, const cand *cs, size_t n, const size_t *order,
		       size_t m)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "target", t->name);
	cJSON_AddStringToObject(o, "device", device);
	cJSON *a = cJSON_AddArrayToObject(o, "candidates"), *r = cJSON_AddArrayToObject(o, "ranking");
	for (size_t i = 0; i < n; i++)
		cJSON_AddItemToArray(a, cand_json(&cs[i]));
	for (size_t i = 0; i < m; i++)
		cJSON_AddItemToArray(r, cJSON_CreateString(cs[order[i]].kernel));
	char *s = cJSON_PrintUnformatted(o);
	printf("%s\n", s ? s : "{}");
	free(s);
	cJSON_Delete(o);
}

static int parse_numbers(const char *seed_s, const char *max_s, bench_cfg *b)
{
	char *end = NULL;
	if (seed_s) {
		b->seed = strtoull(seed_s, &end, 0);
		if (!*seed_s || *end || *seed_s == '-') {
			fprintf(stderr, "kiln bench: --seed '%s': expected a non-negative integer\n", seed_s);
			return KILN_EXIT_USAGE;
		}
	}
	if (max_s) {
		b->max_seconds = strtod(max_s, &end);
		if (!*max_s || *end || !(b->max_seconds > 0)) {
			fprintf(stderr, "kiln bench: --max-seconds '%s': expected a positive number\n", max_s);
			return KILN_EXIT_USAGE;
		}
	}
	return -1;
}

int kiln_cmd_bench(int argc, char **argv)
{
	const char *kernel = NULL, *launch = NULL, *device = "auto", *tdir = NULL, *seed_s = NULL, *max_s = NULL;
	const char *threads_s = NULL, *gpu_index = NULL, *rank_time = NULL;
	bool json = false, compare = false;
	const char *pos[MAX_CANDS + 1];
	int npos = 0, exit_now = KILN_EXIT_OK, rc = KILN_EXIT_ERROR;
	kiln_target *t = NULL;
	kiln_device *dev = NULL;
	cand *cs = NULL;
	size_t n = 0, order[MAX_CANDS], m = 0;
	kiln_err e = 0;
	const char *workdir = NULL;
	bench_cfg b = {NULL, NULL, NULL, 1, 0, 1, NULL, 0, NULL, KILN_RANK_LAUNCHES};
	const char *defs[MAX_DEFS], *sizes[KILN_TARGET_MAX_BENCH];
	size_t nsizes = 0;
	char **rest = kiln_calloc((size_t)argc + 1, sizeof(char *));
	char **rest2 = kiln_calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0, nrest2 = 0;
	const kiln_cli_opt opts[] = {
		{"kernel", 1, &kernel, NULL}, {"launch", 1, &launch, NULL}, {"device", 1, &device, NULL},
		{"gpu", 1, &b.gpu, NULL}, {"seed", 1, &seed_s, NULL}, {"max-seconds", 1, &max_s, NULL},
		{"json", 0, NULL, &json}, {"compare", 0, NULL, &compare}, {"targets-dir", 1, &tdir, NULL},
		{"threads", 1, &threads_s, NULL}, {"workdir", 1, &workdir, NULL}, {"gpu-index", 1, &gpu_index, NULL},
		{"rank-time", 1, &rank_time, NULL}, {0, 0, 0, 0},
	};
	if (!rest || !rest2 || !kiln_cli_take_defines(argc, argv, defs, MAX_DEFS, &b.nuser, rest, &nrest, "bench") ||
	    !kiln_cli_take_repeated(nrest, rest, "size", sizes, KILN_TARGET_MAX_BENCH, &nsizes, rest2, &nrest2, "bench")) {
		rc = rest && rest2 ? KILN_EXIT_USAGE : KILN_EXIT_ERROR;
		free(rest);
		free(rest2);
		return rc;
	}
	b.user_defs = defs;
	bool parsed = kiln_cli_parse(nrest2, rest2, opts, pos, MAX_CANDS + 1, &npos, usage, help, &exit_now);
	free(rest);
	free(rest2);
	if (!parsed)
		return exit_now;
	const char *bad = npos < 1 ? "expected a TARGET"
			: compare && (kernel || launch) ? "--compare takes kernel files, not --kernel/--launch"
			: compare && npos < 2 ? "--compare needs at least one kernel file"
			: !compare && npos != 1 ? "expected one TARGET (use --compare to rank several kernels)"
			: (!kernel) != (!launch) ? "--kernel and --launch go together" : NULL;
	if (bad) {
		fprintf(stderr, "kiln bench: %s\nusage: %s\n", bad, usage);
		return KILN_EXIT_USAGE;
	}
	if ((rc = parse_numbers(seed_s, max_s, &b)) >= 0)
		return rc;
	if (!kiln_cli_threads(&b.threads, "bench", threads_s))
		return KILN_EXIT_USAGE;
	if (!kiln_cli_gpu_index("bench", gpu_index) || !kiln_cli_rank_time(&b.rank, "bench", rank_time))
		return KILN_EXIT_USAGE;
	rc = KILN_EXIT_ERROR;
	if (!(b.cache_dir = kiln_cli_cache_dir(workdir))) {
		e = KILN_ENOMEM;
		goto fail;
	}
	if ((e = kiln_target_find(&t, pos[0], tdir)) || (e = kiln_target_set_bench_sizes(t, sizes, nsizes)) ||
	    (e = check_knob_values(&b, t)))
		goto fail;
	n = compare ? (size_t)npos - 1 : 1;
	if (!(cs = kiln_calloc(n, sizeof(*cs)))) {
		e = KILN_ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		cs[i].kernel = compare ? pos[i + 1] : kernel ? kernel : t->seed_path;
		cs[i].launch = compare ? plan_for(&cs[i], t) : launch ? launch : t->launch_path;
	}
	b.t = t;
	/* comparing on a GPU: never touch CUDA here, each candidate opens it in its child */
	char gpu_name[240] = "";
	bool children = compare && strcmp(device, "emu") != 0 &&
			(strcmp(device, "cuda") == 0 || kiln_device_cuda_probe(gpu_name, sizeof(gpu_name)));
	if (children) {
		for (size_t i = 0; i < n; i++)
			run_in_child(&cs[i], &b);
		for (size_t i = 0; i < n && !gpu_name[0]; i++)
			snprintf(gpu_name, sizeof(gpu_name), "%s", cs[i].timing.device);
	} else {
		if ((e = kiln_device_open(&dev, device, NULL)))
			goto fail;
		if (kiln_device_info_get(dev)->note[0])
			fprintf(stderr, "kiln bench: %s\n", kiln_device_info_get(dev)->note);
		snprintf(gpu_name, sizeof(gpu_name), "%s", kiln_device_info_get(dev)->name);
		b.dev = dev;
		for (size_t i = 0; i < n; i++)
			if ((e = run_one(&cs[i], &b)))
				goto fail;
	}
	m = rank(order, cs, n);
	if (json) {
		print_json(t, gpu_name, cs, n, order, m);
	} else {
		for (size_t i = 0; i < n; i++)
			print_one(&cs[i], t);
		if (compare)
			print_ranking(cs, order, m);
	}
	rc = KILN_EXIT_OK;
	for (size_t i = 0; i < n; i++) /* could not run beats failed beats ok */
		if (cs[i].error[0] && !cs[i].timed)
			rc = KILN_EXIT_ERROR;
		else if (!cs[i].verified && rc == KILN_EXIT_OK)
			rc = KILN_EXIT_FAIL;
	goto done;
fail:
	rc = kiln_cli_fail("bench", e);
done:
	for (size_t i = 0; cs && i < n; i++) {
		kiln_timing_free(&cs[i].timing);
		free(cs[i].launch_owned);
		for (size_t d = 0; d < cs[i].ndefs; d++)
			free(cs[i].defs[d]);
	}
	free(cs);
	free(b.cache_dir);
	kiln_device_free(dev);
	kiln_target_free(t);
	return rc;
}
