/* profile: planning the input sets of one verification (README "Verification"): the
 * listed sizes x seeds with the target's regimes cycled across them, the unlisted extra
 * size, the size rules that break caps (row-length symbols at their largest bench value,
 * values off the common tiles, the size where the launch plan's grid stops growing in
 * proportion, run with a small sm_count), the multi-step case of optimizers, or, alone,
 * the bench size. Plan order decides the verdict: the first failing set in it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_int.h"

#define MAX_SETS 128
#define CAP_SM_COUNT 4              /* sm_count seen by launch expressions in the cap set */
#define CAP_MIN_PER_THREAD 16       /* elements per launched thread the cap set reaches */
#define SMALL_SET_ELEMS (8u << 20)  /* the size rules' sets stay below this many elements */

static const char *const kind_names[] = {
	"listed", "regime", "unlisted", "row-length", "tile", "cap-breaking", "multi-step", "bench",
};

const char *kiln_vset_kind_name(kiln_vset_kind k)
{
	return (size_t)k < KILN_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

void kiln_vplan_sizes_text(char *out, size_t n, const kiln_env *env)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t i = 0; i < env->n && len + 1 < n; i++) {
		int w = snprintf(out + len, n - len, "%s%s=%lld", i ? "," : "", env->names[i],
				 (long long)env->values[i]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

size_t kiln_vplan_elems(const kiln_target *t, const kiln_env *sizes)
{
	size_t total = 0, n;
	for (size_t b = 0; b < t->nbuffers; b++) {
		if (kiln_target_count(&n, t, &t->buffers[b], sizes) || __builtin_add_overflow(total, n, &total)) {
			kiln_error_clear();
			return SIZE_MAX;
		}
	}
	return total;
}

typedef struct planner {
	const kiln_target *t;
	const kiln_plan *plan;
	const kiln_env *knobs;
	kiln_vset *sets;
	size_t n;
} planner;

static kiln_vset *add(planner *p, kiln_vset_kind kind, const kiln_env *sizes, uint64_t seed, long regime)
{
	if (p->n >= MAX_SETS)
		return NULL;
	kiln_vset *s = &p->sets[p->n++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->sizes = *sizes;
	s->seed = seed;
	s->regime = regime;
	s->partner = -1;
	return s;
}

/* ---- the unlisted extra size ----
 * target.json publishes its verification sizes, so a kernel can special-case them or do
 * only the work they reach. Each verification therefore also runs one size nobody listed:
 * every symbol that has larger bench sizes goes past its largest verification value (by
 * up to a quarter, at least 1, never past the bench maximum); the others take an
 * unlisted value inside their verification range. The draw keeps the total elements
 * within 1.5x (+1024) of the largest listed size so the run stays cheap. */

static void symbol_range(const kiln_symbol *s, int64_t *lo, int64_t *hi, int64_t *bmax)
{
	*lo = INT64_MAX;
	*hi = *bmax = 0;
	for (size_t i = 0; i < s->nverify; i++) {
		*lo = s->verify[i] < *lo ? s->verify[i] : *lo;
		*hi = s->verify[i] > *hi ? s->verify[i] : *hi;
	}
	for (size_t i = 0; i < s->nbench; i++)
		*bmax = s->bench[i] > *bmax ? s->bench[i] : *bmax;
}

static int64_t draw_symbol(const kiln_symbol *s, kiln_rng *r)
{
	int64_t lo, hi, bmax;
	symbol_range(s, &lo, &hi, &bmax);
	if (bmax > hi) {
		int64_t top = hi + (hi / 4 > 1 ? hi / 4 : 1);
		top = top < bmax ? top : bmax;
		return hi + 1 + (int64_t)kiln_rng_below(r, (uint64_t)(top - hi));
	}
	int64_t x = lo;
	for (int tries = 0; tries < 16; tries++) {
		x = lo + (int64_t)kiln_rng_below(r, (uint64_t)(hi - lo + 1));
		bool listed = false;
		for (size_t i = 0; i < s->nverify; i++)
			listed = listed || s->verify[i] == x;
		if (!listed)
			break;
	}
	return x;
}

/* The listed size with the most elements (its index), and that count. */
static size_t largest_listed(const kiln_target *t, size_t *idx)
{
	size_t most = 0;
	kiln_env env;
	*idx = 0;
	for (size_t i = 0; i < t->nverify_sizes; i++) {
		size_t n = kiln_target_sizes(&env, t, false, i) ? SIZE_MAX : kiln_vplan_elems(t, &env);
		if (n == SIZE_MAX)
			return SIZE_MAX;
		if (n > most) {
			most = n;
			*idx = i;
		}
	}
	return most;
}

static bool extra_size(kiln_env *out, const kiln_target *t, uint64_t seed)
{
	size_t idx, most = largest_listed(t, &idx);
	kiln_rng r;
	if (most == SIZE_MAX)
		return false;
	kiln_rng_seed(&r, seed ^ 0x6b696c6e65787472ull); /* "kilnextr": its own stream */
	for (int tries = 0; tries < 64; tries++) {
		kiln_env_init(out);
		for (size_t i = 0; i < t->nsymbols; i++)
			if (kiln_env_set(out, t->symbols[i].name, draw_symbol(&t->symbols[i], &r)))
				return false;
		size_t n = kiln_vplan_elems(t, out);
		if (n != SIZE_MAX && n <= most + most / 2 + 1024)
			return true;
	}
	kiln_error_clear();
	kiln_env_init(out);
	return false;
}

/* ---- sizes that break caps ---- */

/* A row-length symbol is the whole last dimension of some buffer with >= 2 dimensions. */
static bool is_row_length(const kiln_target *t, const char *sym)
{
	for (size_t b = 0; b < t->nbuffers; b++) {
		const kiln_buffer_spec *bs = &t->buffers[b];
		if (bs->ndim >= 2 && strcmp(bs->shape[bs->ndim - 1], sym) == 0)
			return true;
	}
	return false;
}

static int64_t clamp_to(const kiln_symbol *s, int64_t v)
{
	int64_t lo, hi, bmax;
	symbol_range(s, &lo, &hi, &bmax);
	bmax = bmax > hi ? bmax : hi;
	return v < lo ? lo : v > bmax ? bmax : v;
}

/* Every symbol at `small` (clamped to its range) except symbol `except` at value v. */
static bool sizes_with(kiln_env *out, const kiln_target *t, size_t except, int64_t v, int64_t small)
{
	kiln_env_init(out);
	for (size_t i = 0; i < t->nsymbols; i++) {
		const kiln_symbol *s = &t->symbols[i];
		if (kiln_env_set(out, s->name, i == except ? v : clamp_to(s, small)))
			return false;
	}
	return kiln_vplan_elems(t, out) <= SMALL_SET_ELEMS;
}

/* (a) every row-length symbol at its largest bench value, the other symbols at 2. */
static void plan_rowlen(planner *p, uint64_t seed, long regime)
{
	const kiln_target *t = p->t;
	for (size_t i = 0; i < t->nsymbols; i++) {
		int64_t lo, hi, bmax;
		kiln_env env;
		symbol_range(&t->symbols[i], &lo, &hi, &bmax);
		if (!is_row_length(t, t->symbols[i].name) || bmax <= hi || !sizes_with(&env, t, i, bmax, 2))
			continue;
		kiln_vset *s = add(p, KILN_VSET_ROWLEN, &env, seed, regime);
		if (s)
			snprintf(s->why, sizeof(s->why), " [row-length size: %s at its largest bench value %lld with the other "
				 "symbols small; a row staged whole in shared memory or a kernel correct only for short rows "
				 "fails here]", t->symbols[i].name, (long long)bmax);
	}
}

/* (b) every other symbol at 12 and at 200 (not multiples of 8, 16 or 32), row lengths at
 * a small unaligned value. */
static void plan_tiles(planner *p, uint64_t seed, long regime)
{
	static const int64_t values[] = {12, 200};
	const kiln_target *t = p->t;
	for (size_t i = 0; i < t->nsymbols; i++) {
		if (is_row_length(t, t->symbols[i].name))
			continue;
		for (size_t k = 0; k < KILN_ARRAY_LEN(values); k++) {
			int64_t lo, hi, bmax;
			kiln_env env;
			symbol_range(&t->symbols[i], &lo, &hi, &bmax);
			if (values[k] > (bmax > hi ? bmax : hi) || !sizes_with(&env, t, i, values[k], 37))
				continue;
			kiln_vset *s = add(p, KILN_VSET_TILE, &env, seed, regime);
			if (s)
				snprintf(s->why, sizeof(s->why), " [tile size: %s = %lld is not a multiple of the common tiles "
					 "(8, 16, 32, 64)]", t->symbols[i].name, (long long)values[k]);
		}
	}
}

/* Elements per launched thread of launch li at these sizes (sm_count small); < 0 when
 * the plan cannot be evaluated there. */
static double per_thread(const planner *p, size_t li, const kiln_env *sizes, size_t *elems)
{
	kiln_env env = *sizes;
	kiln_dims d;
	for (size_t k = 0; k < p->knobs->n; k++)
		if (kiln_env_set(&env, p->knobs->names[k], p->knobs->values[k]))
			return -1;
	if (kiln_env_set(&env, "sm_count", CAP_SM_COUNT) || kiln_plan_dims(&d, p->plan, li, &env)) {
		kiln_error_clear();
		return -1;
	}
	size_t most = 0, n;
	for (size_t b = 0; b < p->t->nbuffers; b++) {
		if (kiln_target_count(&n, p->t, &p->t->buffers[b], sizes)) {
			kiln_error_clear();
			return -1;
		}
		most = n > most ? n : most;
	}
	double threads = (double)d.grid[0] * d.grid[1] * d.grid[2] * d.block[0] * d.block[1] * d.block[2];
	*elems = most;
	return (double)most / threads;
}

/* (c) grows each non-row-length symbol from the largest listed size by doubling (to its
 * largest bench value) and evaluates every launch's grid with sm_count = 4. Where the
 * elements per launched thread grow by more than half over the start (the grid stopped
 * growing in proportion: a min(...) or an sm_count term), the first size reaching 16 per
 * thread is verified, else the largest capped size within the set budget. */
static void plan_cap(planner *p, const kiln_env *base, uint64_t seed, long regime)
{
	const kiln_target *t = p->t;
	kiln_env best;
	double best_ept = 0;
	size_t best_li = 0, best_elems = 0;
	bool found = false;
	for (size_t li = 0; li < p->plan->nlaunches && !found; li++) {
		size_t e0;
		double ept0 = per_thread(p, li, base, &e0);
		if (ept0 <= 0)
			continue;
		for (size_t i = 0; i < t->nsymbols && !found; i++) {
			int64_t lo, hi, bmax, v0;
			if (is_row_length(t, t->symbols[i].name) || !kiln_env_get(base, t->symbols[i].name, &v0))
				continue;
			symbol_range(&t->symbols[i], &lo, &hi, &bmax);
			for (int64_t v = v0 * 2; v0 > 0 && v0 < bmax; v = v * 2) {
				kiln_env env = *base;
				size_t elems;
				v = v < bmax ? v : bmax;
				if (kiln_env_set(&env, t->symbols[i].name, v) || kiln_vplan_elems(t, &env) > SMALL_SET_ELEMS)
					break;
				double ept = per_thread(p, li, &env, &elems);
				if (ept > 1.5 * ept0 && ept > 1) {
					best = env;
					best_ept = ept;
					best_li = li;
					best_elems = elems;
					found = ept >= CAP_MIN_PER_THREAD;
					if (found)
						break;
				}
				if (v >= bmax)
					break;
			}
			if (best_ept > 0)
				found = true;
		}
	}
	if (!found)
		return;
	kiln_vset *s = add(p, KILN_VSET_CAP, &best, seed, regime);
	if (!s)
		return;
	char sz[160];
	kiln_vplan_sizes_text(sz, sizeof(sz), &best);
	s->sm_count = CAP_SM_COUNT;
	snprintf(s->why, sizeof(s->why), " [cap-breaking size %.150s with sm_count = %d: launch %zu (%s) stops growing its "
		 "grid with the problem, %.0f elements per launched thread; a capped grid needs a grid-stride loop]",
		 sz, CAP_SM_COUNT, best_li, p->plan->launches[best_li].kernel, best_ept);
	(void)best_elems;
}

/* ---- the plan ---- */

/* Bytes verification needs at these sizes: per element of each buffer the host input,
 * the device copy, the download, the float64 reference value, and for out/inout
 * buffers the slack and the written-check marks. */
static double bench_bytes(const kiln_target *t, const kiln_env *sz)
{
	double bytes = 0;
	size_t n;
	for (size_t b = 0; b < t->nbuffers; b++) {
		if (kiln_target_count(&n, t, &t->buffers[b], sz)) {
			kiln_error_clear();
			return 1e30;
		}
		double es = (double)kiln_dtype_size(t->buffers[b].dtype);
		bytes += (double)n * (3 * es + 8 + (t->buffers[b].role != KILN_ROLE_IN ? 9 : 0));
	}
	return bytes;
}

/* The bench size with the most elements whose estimate fits the memory allowed. */
static kiln_err plan_bench(planner *p, const kiln_verify_options *o, uint64_t seed, long regime)
{
	const kiln_target *t = p->t;
	double gib = o->bench_mem_gib;
	const char *env = getenv("KILN_VERIFY_BENCH_MEM_GIB");
	if (!(gib > 0))
		gib = env && atof(env) > 0 ? atof(env) : 16;
	kiln_env pick, sz;
	size_t pick_elems = 0;
	double need = 0, need_top = 0;
	for (size_t i = 0; i < t->nbench_sizes; i++) {
		if (kiln_target_sizes(&sz, t, true, i))
			return KILN_EINVAL;
		double bytes = bench_bytes(t, &sz);
		size_t elems = kiln_vplan_elems(t, &sz);
		need_top = bytes > need_top ? bytes : need_top;
		if (bytes <= gib * 1073741824.0 && elems != SIZE_MAX && elems > pick_elems) {
			pick = sz;
			pick_elems = elems;
			need = bytes;
		}
	}
	if (!pick_elems)
		return kiln_error_set(KILN_EINVAL, "verify %s at the bench size: every bench size needs more than %.0f GiB "
				      "(set KILN_VERIFY_BENCH_MEM_GIB)", t->name, gib);
	kiln_vset *s = add(p, KILN_VSET_BENCH, &pick, seed, regime);
	char text[160];
	kiln_vplan_sizes_text(text, sizeof(text), &pick);
	int w = snprintf(s->why, sizeof(s->why), " [at the bench size %.150s on the emulator", text);
	if (need_top > need)
		snprintf(s->why + w, sizeof(s->why) - (size_t)w, "; the largest bench size needs ~%.0f GiB, over the %.0f "
			 "GiB allowed]", need_top / 1073741824.0, gib);
	else
		snprintf(s->why + w, sizeof(s->why) - (size_t)w, "]");
	return 0;
}

kiln_err kiln_vplan_build(kiln_vset **out, size_t *n, const kiln_verify_options *o, const kiln_target *t,
			  const kiln_plan *plan, const kiln_env *knobs, const uint64_t *seeds, size_t nseeds,
			  kiln_env *extra_sizes)
{
	planner p = {t, plan, knobs, NULL, 0};
	long forced = -1;
	kiln_err e = 0;
	*out = NULL;
	*n = 0;
	kiln_env_init(extra_sizes);
	if (o->regime && *o->regime && strcmp(o->regime, "default") != 0) {
		forced = kiln_target_regime_index(t, o->regime);
		if (forced < 0)
			return kiln_error_set(KILN_EINVAL, "verify: target %s has no regime \"%s\"", t->name, o->regime);
	}
	if (!(p.sets = kiln_calloc(MAX_SETS, sizeof(*p.sets))))
		return KILN_ENOMEM;
	if (o->bench_size) {
		if ((e = plan_bench(&p, o, seeds[0], forced)))
			goto done;
		goto planned;
	}
	bool full = !o->nsizes;
	bool cycle = full && !(o->regime && *o->regime) && t->nregimes > 0; /* --regime: that one only */
	size_t nsz = o->nsizes ? o->nsizes : t->nverify_sizes, j = 0;
	bool *seen = kiln_calloc(t->nregimes + 1, sizeof(bool));
	if (!seen) {
		e = KILN_ENOMEM;
		goto done;
	}
	kiln_env sizes, last;
	kiln_env_init(&last);
	for (size_t si = 0; si < nsz; si++) {
		if ((e = kiln_target_sizes(&sizes, t, false, o->nsizes ? o->sizes[si] : si)))
			break;
		last = sizes;
		for (size_t k = 0; k < nseeds; k++, j++) {
			/* the default first, then each regime in turn */
			long r = cycle ? (long)(j % (t->nregimes + 1)) - 1 : forced;
			kiln_vset *s = add(&p, KILN_VSET_LISTED, &sizes, seeds[k], r);
			if (!s)
				break;
			seen[r + 1] = true;
			/* every other input set runs the blocks in reverse (emu): a kernel whose
			 * blocks wait on each other through memory passes one order only */
			s->reverse = k % 2 == 1;
			s->partner = s->reverse ? (long)p.n - 2 : -1;
		}
	}
	for (size_t r = 0; cycle && !e && r < t->nregimes; r++)
		if (!seen[r + 1])
			add(&p, KILN_VSET_REGIME, &last, seeds[r % nseeds], (long)r);
	free(seen);
	if (e || !full)
		goto planned;
	if (!o->no_extra_size && extra_size(extra_sizes, t, seeds[0])) {
		kiln_vset *s = add(&p, KILN_VSET_EXTRA, extra_sizes, seeds[0], forced);
		if (s) {
			char sz[160];
			kiln_vplan_sizes_text(sz, sizeof(sz), extra_sizes);
			s->reverse = true;
			s->partner = (long)p.n - 2; /* budget from the last listed forward set, scaled */
			while (s->partner >= 0 && p.sets[s->partner].reverse)
				s->partner--;
			snprintf(s->why, sizeof(s->why), " [at the unlisted size %.150s: the kernel handles the listed "
				 "verification sizes only]", sz);
		}
	}
	uint64_t seed2 = seeds[nseeds > 1 ? 1 : 0];
	plan_rowlen(&p, seed2, forced);
	plan_tiles(&p, seed2, forced);
	size_t idx;
	if (largest_listed(t, &idx) != SIZE_MAX && !kiln_target_sizes(&sizes, t, false, idx))
		plan_cap(&p, &sizes, seed2, forced);
	if (t->multistep.steps && !kiln_target_sizes(&sizes, t, false, t->nverify_sizes / 2)) {
		kiln_vset *s = add(&p, KILN_VSET_MULTISTEP, &sizes, seeds[0] ^ 0x6d756c7469ull, forced);
		if (s)
			snprintf(s->why, sizeof(s->why), " [multi-step case: the same module launched %zu times with the step "
				 "scalars changing; state carried over, gradients fresh]", t->multistep.steps);
	}
planned:
	if (e)
		goto done;
	kiln_error_clear();
	*out = p.sets;
	*n = p.n;
	p.sets = NULL;
done:
	free(p.sets);
	return e;
}
