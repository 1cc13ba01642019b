/* profile: timing, the glue from a verified candidate to a number. emu: the plan runs
 * through kiln_verify (so the very runs whose counters are used are checked against the
 * reference) at the two verification sizes with the most traffic, per-launch counters
 * are extrapolated linearly in the target's traffic to each bench size and modeled on a
 * GPU spec (profile/cost) — deterministic, bit for bit, for the same input; one emulator
 * run serves every bench size. cuda: the plan runs at each bench size on rotated input
 * copies and the backend's time_plan hook (device_cuda.c) measures it. With every_size
 * the time is the objective: the weighted geometric mean of the per-size times. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_int.h"

#define TIE_BAND 0.01          /* modeled: differences under 1% are ties */
#define MAX_COPIES 8
#define DEFAULT_MAX_SECONDS 3.0

/* The cost counters in struct order, for JSON and the emu mapping. */
static const char *const counter_names[] = {
	"warp_fp32", "warp_int", "warp_mufu", "warp_cvt", "warp_fp64", "warp_half2", "warp_shfl",
	"warp_mem", "warp_ctrl", "warp_barrier", "warp_other", "gld_requests", "gld_sectors",
	"gst_requests", "gst_sectors", "dram_sectors", "shared_requests", "shared_wavefronts",
	"local_bytes", "atomics", "atomic_same_addr", "loop_iterations", "warps",
};
_Static_assert(sizeof(kiln_cost_counters) == sizeof(counter_names) / sizeof(counter_names[0]) * sizeof(double),
	       "counter_names must list every kiln_cost_counters field");

typedef struct tctx {
	const kiln_time_options *o;
	const kiln_target *t;
	kiln_knob_defs kd;             /* knob values for launch expressions and the defines as
					* compiled: given + knob defaults */
	kiln_compiled *comp;
} tctx;

/* ---- shared pieces ---- */

/* Resolves the knobs (-D NAME=V; knobs not given take their first listed value), then
 * compiles with them for arch. */
static kiln_err compile_for(tctx *c, const char *arch)
{
	kiln_compile_options co;
	kiln_err e = kiln_knobs_resolve(&c->kd, c->t, c->o->src.defines, c->o->src.ndefines, "timing");
	if (e)
		return e;
	kiln_build_src_compile_options(&co, &c->o->src, &c->kd, arch, true); /* registers come from nvJitLink's report */
	if ((e = kiln_compile(&c->comp, &co)))
		return e;
	if (!c->comp->ok)
		return kiln_error_set(KILN_ECOMPILE, "timing: %s does not compile: %.300s", co.name,
				      c->comp->log ? c->comp->log : "");
	return 0;
}

static kiln_err keep_resources(kiln_timing *out, const tctx *c)
{
	if (c->comp && c->comp->ok && !(out->resources_json = kiln_compile_resources_json(c->comp)))
		return KILN_ENOMEM;
	return 0;
}

/* Sizes (+ knobs, + sm_count when given) of verification or bench size idx. */
static kiln_err size_env(kiln_env *out, const tctx *c, bool bench, size_t idx, int64_t sm_count)
{
	kiln_err e = kiln_target_sizes(out, c->t, bench, idx);
	for (size_t k = 0; !e && k < c->kd.knobs.n; k++)
		e = kiln_env_set(out, c->kd.knobs.names[k], c->kd.knobs.values[k]);
	if (!e && sm_count > 0)
		e = kiln_env_set(out, "sm_count", sm_count);
	return e;
}

static kiln_err traffic_at(double *out, const kiln_target *t, const kiln_env *env)
{
	int64_t v;
	kiln_err e = kiln_expr_eval(&v, t->traffic_bytes, env, "traffic_bytes");
	*out = (double)v;
	return e;
}

static void add_raw(cJSON *o, const char *key, const char *text);

static char *print_free(cJSON *j)
{
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	return s;
}

static cJSON *counters_json(const kiln_cost_counters *cc)
{
	cJSON *j = cJSON_CreateObject();
	const double *v = (const double *)cc;
	for (size_t i = 0; j && i < KILN_ARRAY_LEN(counter_names); i++)
		cJSON_AddNumberToObject(j, counter_names[i], v[i]);
	return j;
}

/* ---- emu: the cost model ---- */

static void map_counters(kiln_cost_counters *o, const kiln_device_counters *c)
{
	memset(o, 0, sizeof(*o));
	o->warp_fp32 = (double)c->warp_fp32;
	o->warp_int = (double)c->warp_int;
	o->warp_mufu = (double)c->warp_mufu;
	o->warp_cvt = (double)c->warp_cvt;
	o->warp_fp64 = (double)c->warp_fp64;
	o->warp_half2 = (double)c->warp_half2;
	o->warp_shfl = (double)c->warp_shfl;
	o->warp_mem = (double)c->warp_mem;
	o->warp_ctrl = (double)c->warp_ctrl;
	o->warp_barrier = (double)c->warp_barrier;
	o->warp_other = (double)c->warp_other;
	o->gld_requests = (double)c->gld_requests;
	o->gld_sectors = (double)c->gld_sectors;
	o->gst_requests = (double)c->gst_requests;
	o->gst_sectors = (double)c->gst_sectors;
	o->dram_sectors = (double)c->dram_sectors;
	o->shared_requests = (double)c->shared_requests;
	o->shared_wavefronts = (double)c->shared_wavefronts;
	o->local_bytes = (double)c->local_bytes;
	o->atomics = (double)c->atomics;
	o->atomic_same_addr = (double)c->atomic_same_addr;
	o->loop_iterations = (double)c->loop_iterations;
	o->warps = (double)c->warps;
}

/* The two verification sizes with the most traffic (distinct values), largest first:
 * idx[0] the bench fit's far point, idx[1] its near point; with one distinct size
 * idx[1] = idx[0] (counters proportional to traffic). */
static kiln_err pick_sizes(const tctx *c, size_t idx[2], double scale[2])
{
	size_t n = 0;
	for (size_t i = 0; i < c->t->nverify_sizes; i++) {
		kiln_env env;
		double tr;
		kiln_err e = size_env(&env, c, false, i, 0);
		if (e || (e = traffic_at(&tr, c->t, &env)))
			return e;
		size_t k = 0;
		while (k < n && scale[k] > tr)
			k++;
		if ((k < n && scale[k] == tr) || k >= 2)
			continue;
		for (size_t j = (n < 2 ? n : 1); j > k; j--) {
			scale[j] = scale[j - 1];
			idx[j] = idx[j - 1];
		}
		scale[k] = tr;
		idx[k] = i;
		n = n < 2 ? n + 1 : 2;
	}
	if (!n)
		return kiln_error_set(KILN_EINVAL, "timing: target %s has no verification size", c->t->name);
	if (n == 1) {
		scale[1] = scale[0];
		idx[1] = idx[0];
	}
	return 0;
}

static const kiln_plan_record *find_record(const kiln_plan_record *recs, size_t n, const kiln_target *t,
					   const kiln_env *sizes)
{
	for (size_t r = 0; r < n; r++) {
		bool same = recs[r].ok;
		for (size_t s = 0; same && s < t->nsymbols; s++) {
			int64_t a = 0, b = -1;
			kiln_env_get(&recs[r].env, t->symbols[s].name, &a);
			kiln_env_get(sizes, t->symbols[s].name, &b);
			same = a == b;
		}
		if (same)
			return &recs[r];
	}
	return NULL;
}

/* kiln_verify on the seed's one input set (sizes: the given indexes, or NULL = every
 * verification size and the extra one); a failed verdict is KILN_EVERIFY "not timed:
 * <when> failed verification [check]: message". */
static kiln_err verify_once(const tctx *c, const size_t *sizes, size_t nsizes, const char *when)
{
	const kiln_time_options *o = c->o;
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	kiln_verdict *v = kiln_calloc(1, sizeof(*v));
	if (!v)
		return KILN_ENOMEM;
	vo.src = o->src;
	vo.seeds = &o->seed;
	vo.nseeds_given = 1;
	vo.sizes = sizes;
	vo.nsizes = nsizes;
	vo.skip_nontrivial = true; /* a property of the target, judged by kiln verify */
	kiln_err e = kiln_verify(v, &vo);
	if (!e && !v->pass)
		e = kiln_error_set(KILN_EVERIFY, "not timed: %s failed verification [%s]: %s", when, v->check, v->message);
	free(v);
	return e;
}

/* Runs verification at the (distinct) sizes with one seed and records each plan run. */
static kiln_err emu_runs(tctx *c, const size_t idx[2], kiln_plan_record *recs, size_t maxrec, size_t *nrec)
{
	*nrec = 0;
	kiln_device_record_plans(c->o->src.device, recs, maxrec, nrec);
	kiln_err e = verify_once(c, idx, idx[0] == idx[1] ? 1 : 2, "the timing runs");
	kiln_device_record_plans(c->o->src.device, NULL, 0, NULL);
	return e;
}

/* Backward branches whose count per warp does not change with the problem size, while
 * the warps do, are code layout (NVRTC puts cold paths such as powf's special cases after
 * the body and jumps back), not loop rounds that serialize memory requests. */
static bool static_branches(const kiln_cost_counters *a, const kiln_cost_counters *b)
{
	if (!(a->warps > 0 && b->warps > a->warps && b->loop_iterations > 0))
		return false;
	double pa = a->loop_iterations / a->warps, pb = b->loop_iterations / b->warps;
	return fabs(pa - pb) <= 0.01 * fmax(pa, pb);
}

#define FLOOR_SLACK 1e-3 /* modeled DRAM bytes may fall this fraction under the floor */

/* The evidence of how far the counters can be trusted at the bench size. */
typedef struct fit_check {
	double floor_bytes;           /* the traffic floor at the bench size */
	double fit_dram_bytes;        /* the model's DRAM bytes from the counters as fitted */
	bool raised;                  /* DRAM sectors raised to the floor: the fit undercounts */
} fit_check;

/* The two runs a launch's counters come from (far, near) and their traffic scales. */
typedef struct fit_runs {
	const kiln_plan_record *r[2];
	double s[2];
} fit_runs;

/* One launch's inputs to the cost model at the bench size. */
static kiln_err bench_launch(kiln_cost_launch *out, const tctx *c, size_t li, const fit_runs *fr, const kiln_env *bench,
			     double s)
{
	kiln_cost_counters far, near;
	double snear = fr->s[1];
	kiln_dims d;
	kiln_err e = kiln_plan_dims(&d, c->o->src.plan, li, bench);
	if (e)
		return e;
	memset(out, 0, sizeof(*out));
	map_counters(&far, &fr->r[0]->launch[li]);
	map_counters(&near, &fr->r[1]->launch[li]);
	if (snear == fr->s[0]) { /* one size: counters proportional to traffic */
		memset(&near, 0, sizeof(near));
		snear = 0;
	}
	kiln_cost_extrapolate(&out->c, &near, snear, &far, fr->s[0], s);
	if (static_branches(&near, &far))
		out->c.loop_iterations = 0;
	out->blocks = (double)d.grid[0] * d.grid[1] * d.grid[2];
	out->threads_per_block = (double)d.block[0] * d.block[1] * d.block[2];
	out->c.warps = out->blocks * ceil(out->threads_per_block / 32.0); /* exact at the bench size */
	out->dyn_shared = d.shared_bytes;
	out->static_shared = fr->r[0]->launch[li].static_shared;
	const kiln_kernel_resources *kr = kiln_compile_kernel(c->comp, c->o->src.plan->launches[li].kernel);
	out->regs_per_thread = kr && kr->registers > 0 ? kr->registers : 0;
	out->graph = c->o->src.plan->graph;
	return 0;
}

/* Counters that cannot undercount through a fit's intercept: each the larger of its line
 * and the far size's per-byte rate times s (no intercept), warps and rounds kept. */
static void conservative(kiln_cost_launch *ls, size_t n, const fit_runs *fr, double s)
{
	for (size_t li = 0; li < n; li++) {
		kiln_cost_counters far;
		map_counters(&far, &fr->r[0]->launch[li]);
		double *po = (double *)&ls[li].c, warps = ls[li].c.warps, rounds = ls[li].c.loop_iterations;
		const double *pf = (const double *)&far;
		for (size_t i = 0; fr->s[0] > 0 && i < sizeof(far) / sizeof(double); i++)
			po[i] = fmax(po[i], pf[i] * s / fr->s[0]);
		ls[li].c.warps = warps;
		if (rounds == 0)
			ls[li].c.loop_iterations = 0;
	}
}

/* Models the plan. When its DRAM bytes fall under the traffic floor (what any correct
 * kernel moves at the bench size) the fit does not hold: the counters are taken
 * conservatively and, if still under, every launch's sectors are scaled up to the floor. */
static kiln_err model_with_floor(kiln_cost_result *out, fit_check *fc, const kiln_gpu_spec *spec,
				 kiln_cost_launch *ls, size_t n, const fit_runs *fr, double s)
{
	kiln_err e = kiln_cost_model(out, spec, ls, n);
	fc->fit_dram_bytes = out->dram_bytes;
	if (e || out->dram_bytes >= fc->floor_bytes * (1 - FLOOR_SLACK))
		return e;
	fc->raised = true;
	conservative(ls, n, fr, s);
	e = kiln_cost_model(out, spec, ls, n);
	for (int round = 0; !e && round < 4 && out->dram_bytes < fc->floor_bytes * (1 - FLOOR_SLACK); round++) {
		double f = out->dram_bytes > 0 ? fc->floor_bytes / out->dram_bytes : 0;
		for (size_t i = 0; i < n; i++) {
			kiln_cost_counters *cc = &ls[i].c;
			if (f > 0) {
				cc->dram_sectors *= f;
				cc->gld_sectors *= f;
				cc->gst_sectors *= f;
			} else if (i == 0) { /* nothing modeled at all: the floor as loads */
				cc->dram_sectors = cc->gld_sectors = fc->floor_bytes / 32.0;
			}
		}
		e = kiln_cost_model(out, spec, ls, n);
	}
	return e;
}

static cJSON *fit_json(const fit_check *fc)
{
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	cJSON_AddBoolToObject(j, "holds", !fc->raised);
	cJSON_AddNumberToObject(j, "floor_bytes", fc->floor_bytes);
	cJSON_AddNumberToObject(j, "fit_dram_bytes", fc->fit_dram_bytes);
	cJSON_AddBoolToObject(j, "raised_to_floor", fc->raised);
	return j;
}

typedef struct named_num {
	const char *key;
	double v;
} named_num;

/* {"name": .., "arch": .., numbers...}; NULL when out of memory. */
static cJSON *named_json(const char *name, const char *arch, const named_num *f, size_t n)
{
	cJSON *j = cJSON_CreateObject();
	if (j && name)
		cJSON_AddStringToObject(j, "name", name);
	if (j && arch)
		cJSON_AddStringToObject(j, "arch", arch);
	for (size_t k = 0; j && k < n; k++)
		cJSON_AddNumberToObject(j, f[k].key, f[k].v);
	return j;
}

static cJSON *spec_to_json(const kiln_gpu_spec *g)
{
	const named_num f[] = {
		{"sm_count", g->sm_count}, {"clock_mhz", g->clock_mhz}, {"dram_bw_gbps", g->dram_bw_gbps},
		{"dram_efficiency", g->dram_efficiency}, {"dram_efficiency_write", g->dram_efficiency_write},
		{"dram_efficiency_rw", g->dram_efficiency_rw}, {"dram_latency_cycles", g->dram_latency_cycles},
		{"l2_bytes", g->l2_bytes}, {"launch_overhead_us", g->launch_overhead_us},
		{"launch_gap_min_us", g->launch_gap_min_us},
		{"bytes_in_flight_per_sm_for_peak", g->bytes_in_flight_per_sm_for_peak},
	};
	cJSON *j = named_json(g->name, g->arch, f, KILN_ARRAY_LEN(f));
	if (j)
		cJSON_AddStringToObject(j, "key", g->key);
	return j;
}

static cJSON *breakdown_to_json(const kiln_cost_result *r)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < r->nlaunches && i < KILN_ARRAY_LEN(r->launch); i++) {
		const kiln_cost_breakdown *b = &r->launch[i];
		const named_num f[] = {
			{"time_us", b->time_us}, {"kernel_us", b->kernel_us}, {"dram_us", b->dram_us}, {"l2_us", b->l2_us}, {"issue_us", b->issue_us},
			{"pipe_us", b->pipe_us}, {"smem_us", b->smem_us}, {"latency_us", b->latency_us},
			{"barrier_us", b->barrier_us}, {"atomic_us", b->atomic_us}, {"overhead_us", b->overhead_us},
			{"occupancy", b->occupancy}, {"blocks_per_sm", b->blocks_per_sm}, {"waves", b->waves},
			{"tail_efficiency", b->tail_efficiency}, {"achieved_bw_fraction", b->achieved_bw_fraction},
		};
		cJSON *j = named_json(NULL, NULL, f, KILN_ARRAY_LEN(f));
		if (!j)
			break;
		cJSON_AddStringToObject(j, "bound", b->bound ? b->bound : "");
		cJSON_AddItemToArray(a, j);
	}
	return a;
}

static cJSON *launch_json(const kiln_plan *p, size_t li, const kiln_cost_launch *l, const kiln_plan_record *const rs[2])
{
	cJSON *j = cJSON_CreateObject();
	if (!j)
		return NULL;
	cJSON_AddStringToObject(j, "kernel", p->launches[li].kernel);
	cJSON_AddNumberToObject(j, "blocks", l->blocks);
	cJSON_AddNumberToObject(j, "threads_per_block", l->threads_per_block);
	cJSON_AddNumberToObject(j, "dyn_shared", l->dyn_shared);
	cJSON_AddNumberToObject(j, "static_shared", l->static_shared);
	cJSON_AddNumberToObject(j, "regs_per_thread", l->regs_per_thread);
	cJSON_AddItemToObject(j, "at_bench", counters_json(&l->c));
	cJSON *m = cJSON_AddArrayToObject(j, "measured"); /* smallest size first */
	for (size_t k = 2; m && k-- > 0;) {
		kiln_cost_counters cc;
		if (k == 0 && rs[0] == rs[1])
			continue;
		map_counters(&cc, &rs[k]->launch[li]);
		cJSON *x = counters_json(&cc);
		if (x) {
			cJSON *sz = cJSON_AddObjectToObject(x, "sizes");
			if (sz)
				for (size_t s = 0; s < rs[k]->env.n; s++)
					cJSON_AddNumberToObject(sz, rs[k]->env.names[s], (double)rs[k]->env.values[s]);
			cJSON_AddItemToArray(m, x);
		}
	}
	return j;
}

/* The bench sizes timed, in bench order: every one, or only o->bench_size. */
static size_t sizes_timed(size_t *idx, const tctx *c)
{
	if (!c->o->every_size) {
		idx[0] = c->o->bench_size;
		return 1;
	}
	size_t n = c->t->nbench_sizes < KILN_TIME_MAX_SIZES ? c->t->nbench_sizes : KILN_TIME_MAX_SIZES;
	for (size_t i = 0; i < n; i++)
		idx[i] = i;
	return n;
}

/* The size with the most traffic (the later one on a tie): what users run at scale. */
static kiln_err primary_size(size_t *out, const tctx *c, const size_t *idx, size_t n)
{
	double best = -1;
	for (size_t k = 0; k < n; k++) {
		kiln_env env;
		double tr;
		kiln_err e = size_env(&env, c, true, idx[k], 0);
		if (e || (e = traffic_at(&tr, c->t, &env)))
			return e;
		if (tr >= best) {
			best = tr;
			*out = k;
		}
	}
	return 0;
}

/* The achieved bandwidth the roofline is read from: the traffic floor (the bytes a kernel
 * must move) over the time, in GB/s (1e9 bytes/s); 0 without a time. */
static double floor_gbs(double floor_bytes, double time_us)
{
	return time_us > 0 ? floor_bytes / time_us / 1e3 : 0;
}

static void size_record(kiln_size_timing *st, const tctx *c, size_t bi, double time_us, double traffic, double floor_b,
			double peak_gbs)
{
	kiln_target_sizes(&st->sizes, c->t, true, bi);
	st->weight = kiln_target_bench_weight(c->t, bi);
	st->time_us = st->min_us = time_us;
	st->traffic_bytes = traffic;
	st->traffic_floor_bytes = floor_b;
	st->bandwidth_gbs = floor_gbs(floor_b, time_us);
	st->roofline = peak_gbs > 0 ? st->bandwidth_gbs / peak_gbs : 0;
}

static void add_sizes_obj(cJSON *o, const kiln_env *env)
{
	cJSON *sz = cJSON_AddObjectToObject(o, "sizes");
	for (size_t i = 0; sz && i < env->n; i++)
		cJSON_AddNumberToObject(sz, env->names[i], (double)env->values[i]);
}

/* One size's record as JSON (breakdown: the cost model's per-launch terms, or NULL). */
static cJSON *size_json(const kiln_size_timing *st, cJSON *breakdown)
{
	const named_num f[] = {
		{"weight", st->weight}, {"time_us", st->time_us}, {"min_us", st->min_us}, {"spread", st->spread},
		{"reps", (double)st->reps}, {"traffic_bytes", st->traffic_bytes},
		{"traffic_floor_bytes", st->traffic_floor_bytes}, {"bandwidth_gbs", st->bandwidth_gbs},
		{"roofline", st->roofline},
	};
	cJSON *j = named_json(NULL, NULL, f, KILN_ARRAY_LEN(f));
	if (!j) {
		cJSON_Delete(breakdown);
		return NULL;
	}
	add_sizes_obj(j, &st->sizes);
	if (st->bound[0])
		cJSON_AddStringToObject(j, "bound", st->bound);
	cJSON_AddBoolToObject(j, "fit_raised_to_floor", st->fit_raised);
	cJSON_AddItemToObject(j, "breakdown", breakdown ? breakdown : cJSON_CreateArray());
	return j;
}

/* "B=64,T=4096" */
static void env_text(char *out, size_t n, const kiln_env *env)
{
	size_t at = 0;
	out[0] = 0;
	for (size_t i = 0; i < env->n && at < n; i++)
		at += (size_t)snprintf(out + at, n - at, "%s%s=%lld", i ? "," : "", env->names[i], (long long)env->values[i]);
}

/* The top-level numbers from one size (one size timed, or the primary before combining). */
static void take_size(kiln_timing *out, const kiln_size_timing *st)
{
	out->time_us = st->time_us;
	out->min_us = st->min_us;
	out->traffic_bytes = st->traffic_bytes;
	out->traffic_floor_bytes = st->traffic_floor_bytes;
	out->bandwidth_gbs = st->bandwidth_gbs;
	out->roofline = st->roofline;
}

/* Combines the sizes into the objective and the top-level fields: time, min, traffic,
 * floor and roofline as weighted geometric means (so bandwidth and roofline stay
 * floor / time), spread as the weighted mean (measured; modeled keeps the tie band). */
static void combine_sizes(kiln_timing *out)
{
	double w = 0, lm = 0, ltr = 0, lf = 0, sp = 0;
	int64_t reps = -1;
	if (out->nsizes < 2)
		return; /* one size: its own numbers, exactly */
	for (size_t k = 0; k < out->nsizes; k++) {
		const kiln_size_timing *st = &out->size[k];
		double wk = st->weight > 0 ? st->weight : 1;
		w += wk;
		lm += wk * log(st->min_us > 0 ? st->min_us : st->time_us);
		ltr += wk * log(st->traffic_bytes > 0 ? st->traffic_bytes : 1);
		lf += wk * log(st->traffic_floor_bytes > 0 ? st->traffic_floor_bytes : 1);
		sp += wk * st->spread;
		reps = reps < 0 || st->reps < reps ? st->reps : reps;
	}
	if (!(w > 0))
		return;
	double rl = out->time_us > 0 && out->bandwidth_gbs > 0 ? out->roofline / out->bandwidth_gbs : 0; /* 1 / peak */
	out->time_us = kiln_time_objective(out->size, out->nsizes);
	out->min_us = exp(lm / w);
	out->traffic_bytes = exp(ltr / w);
	out->traffic_floor_bytes = exp(lf / w);
	if (!out->modeled) {
		out->spread = sp / w;
		out->reps = reps;
	}
	out->bandwidth_gbs = floor_gbs(out->traffic_floor_bytes, out->time_us);
	out->roofline = out->bandwidth_gbs * rl;
}

double kiln_time_objective(const kiln_size_timing *s, size_t n)
{
	double w = 0, l = 0;
	if (n == 1)
		return s[0].time_us > 0 ? s[0].time_us : 0;
	for (size_t k = 0; k < n; k++) {
		double wk = s[k].weight > 0 ? s[k].weight : 1;
		if (!(s[k].time_us > 0))
			return 0;
		w += wk;
		l += wk * log(s[k].time_us);
	}
	return w > 0 ? exp(l / w) : 0;
}

/* One bench size modeled from the fit runs: st filled; for the primary size (cj non-NULL)
 * the launches' counters at that size go into cj and the model result into out. */
static kiln_err emu_model_size(kiln_timing *out, kiln_size_timing *st, cJSON **bd, tctx *c, const kiln_gpu_spec *spec,
			       const fit_runs *fr, size_t bi, cJSON *cj)
{
	const kiln_plan *p = c->o->src.plan;
	kiln_env bench;
	double s;
	fit_check fc = {0};
	kiln_cost_result res;
	kiln_cost_launch *ls = kiln_calloc(p->nlaunches ? p->nlaunches : 1, sizeof(*ls));
	kiln_err e = ls ? 0 : KILN_ENOMEM;
	if (e || (e = size_env(&bench, c, true, bi, (int64_t)spec->sm_count)) || (e = traffic_at(&s, c->t, &bench)) ||
	    (e = kiln_target_traffic_floor(&fc.floor_bytes, c->t, &bench, c->o->seed, s)))
		goto done;
	for (size_t li = 0; li < p->nlaunches; li++)
		if ((e = bench_launch(&ls[li], c, li, fr, &bench, s)))
			goto done;
	if ((e = model_with_floor(&res, &fc, spec, ls, p->nlaunches, fr, s)))
		goto done;
	double ranked = c->o->rank == KILN_RANK_KERNELS ? res.kernel_us : res.time_us; /* what time means */
	size_record(st, c, bi, ranked, s, fc.floor_bytes, 0);
	st->roofline = kiln_cost_roofline(spec, fc.floor_bytes, ranked);
	st->spread = TIE_BAND;
	st->kernel_us = res.kernel_us;
	st->gap_us = res.gap_us;
	st->fit_raised = fc.raised;
	snprintf(st->bound, sizeof(st->bound), "%s", res.nlaunches && res.launch[0].bound ? res.launch[0].bound : "");
	*bd = breakdown_to_json(&res);
	if (!cj)
		goto done;
	cJSON *arr = cJSON_AddArrayToObject(cj, "launches");
	for (size_t li = 0; arr && li < p->nlaunches; li++)
		cJSON_AddItemToArray(arr, launch_json(p, li, &ls[li], fr->r));
	cJSON *sc = cJSON_AddArrayToObject(cj, "traffic_scales");
	for (size_t k = 2; sc && k-- > 0;)
		cJSON_AddItemToArray(sc, cJSON_CreateNumber(fr->s[k]));
	cJSON_AddItemToArray(sc, cJSON_CreateNumber(s));
	cJSON_AddItemToObject(cj, "fit", fit_json(&fc));
	cJSON_AddItemToObject(cj, "breakdown", breakdown_to_json(&res));
	out->model = res;
	out->fit_raised = fc.raised;
	if (fc.raised)
		snprintf(out->fit_note, sizeof(out->fit_note),
			 "the counter fit undercounts: %.4g DRAM bytes modeled, under the %.4g bytes any correct kernel "
			 "moves at the bench size; counters taken conservatively (the largest size's rate per byte, no "
			 "intercept) and DRAM at least that floor", fc.fit_dram_bytes, fc.floor_bytes);
	out->bench_env = bench;
	snprintf(out->bound, sizeof(out->bound), "%s", st->bound);
done:
	free(ls);
	return e;
}

/* "modeled on <gpu> by the cost model: counters measured on the emulator at B=4,T=4099
 * and B=3,T=513 (verification sizes), extrapolated linearly in traffic to each bench size
 * B=64,T=4096 and B=512,T=8192; ..." */
static void emu_how(kiln_timing *out, const tctx *c, const fit_runs *fr, const kiln_gpu_spec *spec)
{
	char a[256], b[256], sz[KILN_TIME_MAX_SIZES * 80] = "";
	kiln_env ea, eb;
	kiln_env_init(&ea);
	kiln_env_init(&eb);
	for (size_t i = 0; i < c->t->nsymbols; i++) { /* symbols only */
		int64_t va = 0, vb = 0;
		kiln_env_get(&fr->r[0]->env, c->t->symbols[i].name, &va);
		kiln_env_get(&fr->r[1]->env, c->t->symbols[i].name, &vb);
		kiln_env_set(&ea, c->t->symbols[i].name, va);
		kiln_env_set(&eb, c->t->symbols[i].name, vb);
	}
	env_text(a, sizeof(a), &ea);
	env_text(b, sizeof(b), &eb);
	size_t at = 0;
	for (size_t k = 0; k < out->nsizes && at < sizeof(sz); k++) {
		char one[160];
		env_text(one, sizeof(one), &out->size[k].sizes);
		at += (size_t)snprintf(sz + at, sizeof(sz) - at, "%s%s", k ? (k + 1 == out->nsizes ? " and " : ", ") : "", one);
	}
	char *how = kiln_asprintf("modeled, not measured: the emulator ran the plan at the verification size%s %s%s%s for "
				  "counters; they are extrapolated linearly in traffic to the bench size%s %s and modeled on %s",
				  fr->r[0] == fr->r[1] ? "" : "s", a, fr->r[0] == fr->r[1] ? "" : " and ",
				  fr->r[0] == fr->r[1] ? "" : b, out->nsizes > 1 ? "s" : "", sz, spec->name);
	snprintf(out->how, sizeof(out->how), "%s", how ? how : "modeled");
	free(how);
}

static kiln_err time_emu(kiln_timing *out, tctx *c)
{
	const kiln_time_options *o = c->o;
	const kiln_plan *p = o->src.plan;
	kiln_gpu_spec spec;
	kiln_plan_record *recs = NULL;
	size_t nrec = 0, idx[2], bidx[KILN_TIME_MAX_SIZES], nb, prim = 0;
	fit_runs fr;
	cJSON *cj = NULL, *sj = NULL;
	kiln_err e;
	if (p->nlaunches > KILN_PLAN_MAX_LAUNCHES)
		return kiln_error_set(KILN_EUNSUPPORTED, "timing: the cost model takes plans of at most %d launches", KILN_PLAN_MAX_LAUNCHES);
	nb = sizes_timed(bidx, c);
	if ((e = kiln_cost_spec_load(&spec, o->gpu, NULL)) || (e = compile_for(c, spec.arch)) ||
	    (e = pick_sizes(c, idx, fr.s)) || (e = primary_size(&prim, c, bidx, nb)))
		return e;
	/* a verify run at each size, maybe re-run for the "written" check */
	if (!(recs = kiln_calloc(8, sizeof(*recs)))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((e = emu_runs(c, idx, recs, 8, &nrec)))
		goto done;
	for (size_t k = 0; k < 2; k++) {
		kiln_env env;
		if ((e = size_env(&env, c, false, idx[k], 0)))
			goto done;
		if (!(fr.r[k] = find_record(recs, nrec, c->t, &env))) {
			e = kiln_error_set(KILN_ERR, "timing: the verification runs left no counters (device %s)",
					   kiln_device_info_get(o->src.device)->name);
			goto done;
		}
	}
	cj = cJSON_CreateObject();
	sj = cJSON_CreateArray();
	for (size_t k = 0; k < nb; k++) {
		cJSON *bd = NULL;
		if ((e = emu_model_size(out, &out->size[k], &bd, c, &spec, &fr, bidx[k], k == prim ? cj : NULL)))
			goto done;
		out->nsizes = k + 1;
		cJSON_AddItemToArray(sj, size_json(&out->size[k], bd));
	}
	out->modeled = true;
	out->kernel_us = out->model.kernel_us; /* the primary size's split */
	out->gap_us = out->model.gap_us;
	out->graph = p->graph;
	out->spread = TIE_BAND;
	out->reps = 0;
	take_size(out, &out->size[prim]);
	combine_sizes(out);
	emu_how(out, c, &fr, &spec);
	snprintf(out->device, sizeof(out->device), "%s", spec.name);
	out->counters_json = print_free(cj);
	cj = NULL;
	out->sizes_json = print_free(sj);
	sj = NULL;
	out->spec_json = print_free(spec_to_json(&spec));
	out->breakdown_json = print_free(breakdown_to_json(&out->model));
	if (!out->counters_json || !out->spec_json || !out->breakdown_json || !out->sizes_json)
		e = kiln_error_set(KILN_ENOMEM, "timing: out of memory");
done:
	cJSON_Delete(cj);
	cJSON_Delete(sj);
	free(recs);
	return e;
}

/* ---- cuda: measured ---- */

typedef struct cuda_run {
	const tctx *c;
	kiln_module *mod;
	kiln_env env;
	uint64_t *addr;                /* ncopies x nbuffers */
	size_t ncopies, nbuf;
} cuda_run;

static kiln_err cuda_run_once(void *ctx, size_t rep)
{
	cuda_run *r = ctx;
	const tctx *c = r->c;
	size_t failed;
	return kiln_plan_run(c->o->src.device, r->mod, c->t, c->o->src.plan, &r->env, NULL, r->addr + (rep % r->ncopies) * r->nbuf,
			     0xffc00000u, NULL, &failed);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double quantile(const double *sorted, size_t n, double q)
{
	double pos = q * (double)(n - 1);
	size_t lo = (size_t)floor(pos), hi = lo + 1 < n ? lo + 1 : lo;
	return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - (double)lo);
}

static cJSON *device_json(const kiln_device_info *di)
{
	const named_num f[] = {
		{"cc_major", di->cc_major}, {"cc_minor", di->cc_minor}, {"sm_count", di->sm_count},
		{"l2_bytes", (double)di->l2_bytes}, {"total_mem", (double)di->total_mem},
		{"smem_per_sm", di->smem_per_sm}, {"smem_per_block_optin", di->max_shared_per_block},
		{"clock_khz", di->clock_khz}, {"mem_clock_khz", di->mem_clock_khz},
		{"bus_width_bits", di->bus_width_bits}, {"peak_bw_gbs", di->peak_bw_gbs},
		{"driver_version", di->driver_version}, {"gpu_index", di->gpu_index},
	};
	cJSON *o = named_json(di->name, di->arch, f, KILN_ARRAY_LEN(f));
	if (o && di->uuid[0])
		cJSON_AddStringToObject(o, "uuid", di->uuid);
	return o;
}

/* Copies of the inputs so consecutive reps do not find them in L2: enough to cover 4x
 * the L2 (at least 2, at most MAX_COPIES), within half of the device memory. */
static size_t copies_for(const kiln_device_info *di, size_t ws)
{
	size_t n = ws ? (size_t)ceil(4.0 * (double)di->l2_bytes / (double)ws) : 1;
	n = n < 2 ? 2 : n > MAX_COPIES ? MAX_COPIES : n;
	while (n > 1 && di->total_mem && (double)n * (double)ws > 0.5 * (double)di->total_mem)
		n--;
	return n;
}

/* The median of v[0..n) over its known (non-NAN) values; NAN when none. Reorders v. */
static double median_known(double *v, size_t n)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (!isnan(v[i]))
			v[k++] = v[i];
	if (!k)
		return NAN;
	qsort(v, k, sizeof(double), cmp_double);
	return quantile(v, k, 0.5);
}

static kiln_err cuda_measure(kiln_timing *out, tctx *c, cuda_run *r, const kiln_device_info *di)
{
	kiln_time_samples sm;
	memset(&sm, 0, sizeof(sm));
	sm.rank = c->o->rank;
	sm.graph = c->o->src.plan->graph;
	double cap = c->o->max_seconds > 0 ? c->o->max_seconds : DEFAULT_MAX_SECONDS;
	kiln_device *dev = c->o->src.device;
	kiln_err e = dev->time_plan(dev->impl, cuda_run_once, r, c->o->src.plan->nlaunches, cap, &sm);
	if (!e && !sm.n)
		e = kiln_error_set(KILN_EDEVICE, "timing: no repetition completed");
	if (e)
		goto done;
	cJSON *sj = cJSON_CreateArray();
	for (size_t i = 0; sj && i < sm.n; i++)
		cJSON_AddItemToArray(sj, cJSON_CreateNumber(sm.us[i]));
	out->samples_json = print_free(sj);
	qsort(sm.us, sm.n, sizeof(double), cmp_double);
	out->time_us = quantile(sm.us, sm.n, 0.5);
	out->min_us = sm.us[0];
	out->spread = out->time_us > 0 ? (quantile(sm.us, sm.n, 0.75) - quantile(sm.us, sm.n, 0.25)) / out->time_us : 0;
	out->reps = (int64_t)sm.n;
	out->kernel_us = median_known(sm.kernel_us, sm.n);
	out->gap_us = median_known(sm.gap_us, sm.n);
	out->graph = sm.graph;
	out->cupti = sm.cupti;
	snprintf(out->source_why, sizeof(out->source_why), "%s", sm.why);
	out->sm_mhz[0] = sm.sm_mhz[0];
	out->sm_mhz[1] = sm.sm_mhz[1];
	out->warmup_s = sm.warmup_s;
	out->invalid_reps = (int64_t)sm.invalid;
	out->cupti_dropped = (int64_t)sm.dropped;
	out->bandwidth_gbs = floor_gbs(out->traffic_floor_bytes, out->time_us);
	out->roofline = out->time_us > 0 && di->peak_bw_gbs > 0 ? out->bandwidth_gbs / di->peak_bw_gbs : 0;
	snprintf(out->device, sizeof(out->device), "%s", di->name);
done:
	free(sm.us);
	free(sm.kernel_us);
	free(sm.gap_us);
	return e;
}

/* What the timed module computes at the bench size, after all its repetitions: copy 0's
 * inputs are uploaded again to the very addresses the reps used (out buffers poisoned),
 * the plan runs once, and the outputs are judged against the float64 reference. A kernel
 * that skips work it has "seen" before (a __device__ cache keyed by size or address, an
 * early exit after N launches) is refused instead of being timed as nearly empty. */
static kiln_err check_timed_outputs(const tctx *c, cuda_run *r)
{
	kiln_device *dev = c->o->src.device;
	kiln_inputs *in = NULL;
	kiln_refdata *ref = NULL;
	uint8_t **got = NULL;
	kiln_err e = kiln_inputs_generate(&in, c->t, &r->env, c->o->seed);
	if (!e)
		e = kiln_reference_run(&ref, c->t, in);
	if (!e && !(got = kiln_calloc(in->n, sizeof(*got))))
		e = KILN_ENOMEM;
	for (size_t b = 0; !e && b < in->n; b++) {
		const kiln_hostbuf *hb = &in->bufs[b];
		if (!hb->bytes)
			continue;
		e = hb->spec->role == KILN_ROLE_OUT ? kiln_device_poison(dev, r->addr[b], hb->bytes, 0xffc00000u)
						    : kiln_device_write(dev, r->addr[b], hb->data, hb->bytes);
	}
	if (!e)
		e = cuda_run_once(r, 0);
	if (!e)
		e = kiln_device_sync(dev);
	for (size_t b = 0; !e && b < in->n; b++) {
		const kiln_hostbuf *hb = &in->bufs[b];
		if (!(got[b] = kiln_malloc(hb->bytes ? hb->bytes : 1)))
			e = KILN_ENOMEM;
		else if (hb->bytes)
			e = kiln_device_read(dev, got[b], r->addr[b], hb->bytes);
	}
	kiln_verdict v;
	if (!e && !(e = kiln_verify_outputs(&v, c->t, in, ref, got, "the timed module after its repetitions, at the bench size")) &&
	    !v.pass)
		e = kiln_error_set(KILN_EVERIFY, "not timed: %s", v.message);
	for (size_t b = 0; got && b < in->n; b++)
		free(got[b]);
	free(got);
	kiln_refdata_free(ref);
	kiln_inputs_free(in);
	return e;
}

/* After the timed reps, verification on the same device while the timed module is still
 * loaded: the backend hands verify that very module (same image), so a kernel that stops
 * working after its first launches, or leans on __device__ state the reps left behind,
 * fails here instead of being reported as fast. */
static kiln_err verify_after(const tctx *c)
{
	return verify_once(c, NULL, 0, "after the timed reps the same module");
}

/* One bench size measured on rotated input copies, its outputs checked after the reps:
 * st filled, the measurement's source fields in out, its samples (owned) in *samples. */
static kiln_err cuda_size(kiln_size_timing *st, char **samples, kiln_timing *out, tctx *c, kiln_module *mod, size_t bi)
{
	const kiln_time_options *o = c->o;
	const kiln_device_info *di = kiln_device_info_get(o->src.device);
	kiln_inputs *in = NULL;
	kiln_timing one;
	cuda_run r;
	kiln_err e;
	memset(&r, 0, sizeof(r));
	memset(&one, 0, sizeof(one));
	r.c = c;
	r.mod = mod;
	if ((e = size_env(&r.env, c, true, bi, 0)) || (e = traffic_at(&one.traffic_bytes, c->t, &r.env)) ||
	    (e = kiln_target_traffic_floor(&one.traffic_floor_bytes, c->t, &r.env, o->seed, one.traffic_bytes)) ||
	    (e = kiln_inputs_generate(&in, c->t, &r.env, o->seed)))
		goto done;
	size_t ws = 0;
	for (size_t b = 0; b < in->n; b++)
		ws += in->bufs[b].bytes;
	r.nbuf = in->n;
	r.ncopies = copies_for(di, ws);
	if (!(r.addr = kiln_calloc(r.ncopies * r.nbuf, sizeof(uint64_t)))) {
		e = KILN_ENOMEM;
		goto done;
	}
	/* each copy its own draw (seed, seed+1, ...): realistic data per rep, and a kernel
	 * replaying a result cached from an earlier rep replays the wrong one */
	for (size_t k = 0; k < r.ncopies; k++) {
		if (k) {
			kiln_inputs_free(in);
			in = NULL;
			if ((e = kiln_inputs_generate(&in, c->t, &r.env, o->seed + k)))
				goto done;
		}
		for (size_t b = 0; b < in->n; b++) {
			const kiln_hostbuf *hb = &in->bufs[b];
			uint64_t *a = &r.addr[k * r.nbuf + b];
			if ((e = kiln_device_alloc(o->src.device, a, hb->bytes ? hb->bytes : 1)) ||
			    (hb->bytes && (e = kiln_device_write(o->src.device, *a, hb->data, hb->bytes))))
				goto done;
		}
	}
	kiln_inputs_free(in);
	in = NULL;
	if ((e = cuda_measure(&one, c, &r, di)) || (e = check_timed_outputs(c, &r)))
		goto done;
	size_record(st, c, bi, one.time_us, one.traffic_bytes, one.traffic_floor_bytes, di->peak_bw_gbs);
	st->min_us = one.min_us;
	st->spread = one.spread;
	st->reps = one.reps;
	st->kernel_us = one.kernel_us;
	st->gap_us = one.gap_us;
	out->graph = one.graph;
	out->cupti = one.cupti;
	memcpy(out->source_why, one.source_why, sizeof(out->source_why));
	if (!out->sm_mhz[0])
		out->sm_mhz[0] = one.sm_mhz[0];
	out->sm_mhz[1] = one.sm_mhz[1];
	out->warmup_s += one.warmup_s;
	out->invalid_reps += one.invalid_reps;
	out->cupti_dropped += one.cupti_dropped;
	memcpy(out->device, one.device, sizeof(out->device));
	*samples = one.samples_json;
	one.samples_json = NULL;
done:
	for (size_t i = 0; r.addr && i < r.ncopies * r.nbuf; i++)
		if (r.addr[i])
			kiln_device_mem_free(o->src.device, r.addr[i]);
	free(r.addr);
	kiln_inputs_free(in);
	kiln_timing_free(&one);
	return e;
}

static void cuda_how(kiln_timing *out)
{
	size_t at = (size_t)snprintf(out->how, sizeof(out->how), "measured on %s (%s): every bench size run on the GPU:",
				     out->device, out->cupti ? "CUPTI kernel records" : "CUDA events");
	for (size_t k = 0; k < out->nsizes && at < sizeof(out->how); k++) {
		char one[160];
		env_text(one, sizeof(one), &out->size[k].sizes);
		at += (size_t)snprintf(out->how + at, sizeof(out->how) - at, "%s %s (median of %lld reps)", k ? "," : "",
				       one, (long long)out->size[k].reps);
	}
}

static kiln_err time_cuda(kiln_timing *out, tctx *c)
{
	const kiln_time_options *o = c->o;
	const kiln_device_info *di = kiln_device_info_get(o->src.device);
	kiln_module *mod = NULL;
	size_t bidx[KILN_TIME_MAX_SIZES], nb = sizes_timed(bidx, c), prim = 0;
	cJSON *sj = cJSON_CreateArray();
	kiln_err e = sj ? 0 : KILN_ENOMEM;
	if (!e && !o->src.device->time_plan)
		e = kiln_error_set(KILN_EUNSUPPORTED, "timing: device %s cannot time", di->name);
	if (e || (e = compile_for(c, di->arch)) ||
	    (e = kiln_device_module_load(o->src.device, &mod, c->comp)) || (e = primary_size(&prim, c, bidx, nb)))
		goto done;
	for (size_t k = 0; k < nb; k++) {
		char *samples = NULL;
		if ((e = cuda_size(&out->size[k], &samples, out, c, mod, bidx[k])))
			goto done;
		out->nsizes = k + 1;
		cJSON *j = size_json(&out->size[k], NULL);
		add_raw(j, "samples", samples);
		cJSON_AddItemToArray(sj, j);
		if (k == prim) {
			out->samples_json = samples;
			out->bench_env = out->size[k].sizes;
		} else {
			free(samples);
		}
	}
	if ((e = verify_after(c)))
		goto done;
	take_size(out, &out->size[prim]);
	out->spread = out->size[prim].spread;
	out->reps = out->size[prim].reps;
	out->kernel_us = out->size[prim].kernel_us;
	out->gap_us = out->size[prim].gap_us;
	combine_sizes(out);
	cuda_how(out);
	out->spec_json = print_free(device_json(di));
	out->sizes_json = print_free(sj);
	sj = NULL;
	if (!out->spec_json || !out->sizes_json)
		e = kiln_error_set(KILN_ENOMEM, "timing: out of memory");
done:
	cJSON_Delete(sj);
	kiln_module_free(mod);
	return e;
}

/* ---- public ---- */

kiln_err kiln_rank_time_parse(kiln_rank_time *out, const char *s)
{
	if (!s || !*s || strcmp(s, "launches") == 0)
		*out = KILN_RANK_LAUNCHES;
	else if (strcmp(s, "kernels") == 0)
		*out = KILN_RANK_KERNELS;
	else
		return kiln_error_set(KILN_EINVAL, "rank time \"%.40s\": expected \"launches\" (kernel times + the gaps "
				      "between dependent launches, the default) or \"kernels\" (kernel times alone)", s);
	return KILN_OK;
}

const char *kiln_rank_time_name(kiln_rank_time r)
{
	return r == KILN_RANK_KERNELS ? "kernels" : "launches";
}

void kiln_rank_time_text(char *out, size_t n, kiln_rank_time r, size_t nlaunches, bool graph)
{
	size_t gaps = nlaunches > 1 ? nlaunches - 1 : 0;
	if (r == KILN_RANK_KERNELS || !gaps)
		snprintf(out, n, "sum of kernel times%s", r == KILN_RANK_KERNELS && gaps ? " (launch gaps not counted)" : "");
	else
		snprintf(out, n, "sum of kernel times + %zu %slaunch gap%s", gaps, graph ? "CUDA-graph " : "", gaps > 1 ? "s" : "");
}

kiln_err kiln_time(kiln_timing *out, const kiln_time_options *o)
{
	tctx c;
	kiln_err e;
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	if (!o || !o->src.target || !o->src.source || !o->src.plan || !o->src.device)
		return kiln_error_set(KILN_EINVAL, "timing: target, source, plan and device are required");
	if (o->every_size && o->src.target->nbench_sizes > KILN_TIME_MAX_SIZES)
		return kiln_error_set(KILN_EINVAL, "timing: target %s has %zu bench sizes, at most %d are timed",
				      o->src.target->name, o->src.target->nbench_sizes, KILN_TIME_MAX_SIZES);
	if (o->bench_size >= o->src.target->nbench_sizes)
		return kiln_error_set(KILN_EINVAL, "timing: bench size %zu is out of range (target %s has %zu)", o->bench_size,
				      o->src.target->name, o->src.target->nbench_sizes);
	c.o = o;
	c.t = o->src.target;
	out->rank = o->rank;
	kiln_rank_time_text(out->time_def, sizeof(out->time_def), o->rank, o->src.plan->nlaunches, o->src.plan->graph);
	if (kiln_device_info_get(o->src.device)->kind == KILN_DEVICE_CUDA)
		e = time_cuda(out, &c);
	else
		e = time_emu(out, &c);
	if (!e)
		e = keep_resources(out, &c);
	kiln_knob_defs_free(&c.kd);
	kiln_compiled_free(c.comp);
	if (e == KILN_ENOMEM)
		kiln_error_set(e, "timing: out of memory");
	return e;
}

void kiln_timing_free(kiln_timing *t)
{
	if (!t)
		return;
	free(t->samples_json);
	free(t->counters_json);
	free(t->spec_json);
	free(t->breakdown_json);
	free(t->resources_json);
	free(t->sizes_json);
	t->samples_json = t->counters_json = t->spec_json = t->breakdown_json = t->resources_json = NULL;
	t->sizes_json = NULL;
}

static void add_raw(cJSON *o, const char *key, const char *text)
{
	cJSON *v = text ? cJSON_Parse(text) : NULL;
	cJSON_AddItemToObject(o, key, v ? v : cJSON_CreateNull());
}

static void add_num(cJSON *o, const char *key, double v)
{
	cJSON_AddItemToObject(o, key, isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
}

/* cuda: the one source of the samples and why, what the SM clock was, reps left out. */
static void add_measured(cJSON *o, const kiln_timing *t)
{
	cJSON_AddStringToObject(o, "source", t->cupti ? "cupti" : "cuda-events");
	cJSON_AddStringToObject(o, "source_why", t->source_why);
	cJSON *clk = cJSON_AddObjectToObject(o, "sm_clock_mhz");
	if (clk) {
		add_num(clk, "after_warmup", t->sm_mhz[0] > 0 ? t->sm_mhz[0] : NAN);
		add_num(clk, "at_end", t->sm_mhz[1] > 0 ? t->sm_mhz[1] : NAN);
	}
	add_num(o, "warmup_s", t->warmup_s);
	cJSON_AddNumberToObject(o, "invalid_reps", (double)t->invalid_reps);
	cJSON_AddNumberToObject(o, "cupti_dropped", (double)t->cupti_dropped);
}

char *kiln_timing_to_json(const kiln_timing *t)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddBoolToObject(o, "modeled", t->modeled);
	cJSON_AddStringToObject(o, "label", t->modeled ? "modeled" : "measured");
	add_num(o, "time_us", t->time_us);
	cJSON_AddStringToObject(o, "rank_time", kiln_rank_time_name(t->rank));
	cJSON_AddStringToObject(o, "time_def", t->time_def);
	add_num(o, "kernel_us", t->kernel_us);
	add_num(o, "gap_us", t->gap_us);
	cJSON_AddBoolToObject(o, "graph", t->graph);
	add_num(o, "min_us", t->min_us);
	add_num(o, "spread", t->spread);
	cJSON_AddNumberToObject(o, "reps", (double)t->reps);
	add_num(o, "traffic_bytes", t->traffic_bytes);
	add_num(o, "traffic_floor_bytes", t->traffic_floor_bytes);
	cJSON_AddStringToObject(o, "traffic_note", t->traffic_floor_bytes < t->traffic_bytes
				? "traffic_bytes is the target's declared traffic, masked positions included; the roofline "
				  "and bandwidth use traffic_floor_bytes: masked-out elements of masked buffers left out, "
				  "counted on this seed's drawn mask"
				: "traffic_bytes is the target's declared traffic; roofline and bandwidth use it");
	if (t->modeled) {
		cJSON_AddBoolToObject(o, "fit_raised_to_floor", t->fit_raised);
		cJSON_AddStringToObject(o, "fit_note", t->fit_note);
	}
	add_num(o, "bandwidth_gbs", t->bandwidth_gbs);
	add_num(o, "roofline", t->roofline);
	cJSON_AddStringToObject(o, "device", t->device);
	if (t->modeled)
		cJSON_AddStringToObject(o, "bound", t->bound);
	else
		add_measured(o, t);
	cJSON *sz = cJSON_AddObjectToObject(o, "sizes");
	if (sz)
		for (size_t i = 0; i < t->bench_env.n; i++)
			cJSON_AddNumberToObject(sz, t->bench_env.names[i], (double)t->bench_env.values[i]);
	cJSON_AddNumberToObject(o, "nsizes", (double)t->nsizes);
	cJSON_AddStringToObject(o, "objective", t->nsizes > 1 ? "the weighted geometric mean of the per-size times (time_us, "
				"min_us, traffic and roofline combine the sizes; sizes is the primary size, the one with "
				"the most traffic, which bound, breakdown and counters describe)" : "the one size's time");
	cJSON_AddStringToObject(o, "how", t->how);
	add_raw(o, "per_size", t->sizes_json);
	add_raw(o, "samples", t->samples_json);
	add_raw(o, "counters", t->counters_json);
	add_raw(o, "spec", t->spec_json);
	add_raw(o, "breakdown", t->breakdown_json);
	add_raw(o, "resources", t->resources_json);
	return print_free(o);
}
