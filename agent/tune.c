/* The `tune` policy's search over a target's knob space (no LLM): the seed's own
 * configuration first, then a short random sample, then local search around the best
 * (neighbours one step away in one knob), never proposing a configuration twice. */
#include "agent/agent.h"

#include <stdlib.h>
#include <string.h>

struct kiln_tuner {
	const kiln_target *t; /* borrowed */
	size_t nk;            /* knobs */
	kiln_rng rng;
	size_t random_left;   /* random samples still to draw */
	int64_t *tried;       /* ntried x nk value indices */
	size_t ntried, cap;
	int64_t *best;        /* value indices of the best passing config, or NULL */
	double best_us;
	int64_t *seed_cfg;    /* the seed's own configuration (indices) */
	bool seed_proposed;
	size_t space;         /* number of configurations (saturates) */
};

static size_t knob_index(const kiln_knob *k, int64_t v)
{
	for (size_t i = 0; i < k->n; i++)
		if (k->values[i] == v)
			return i;
	return (size_t)-1;
}

/* The seed's default value of a knob: `#define NAME <int>` in seed.cu. */
static bool seed_default(const char *src, const char *name, int64_t *out)
{
	size_t n = strlen(name);
	for (const char *p = strstr(src, "#define"); p; p = strstr(p + 1, "#define")) {
		const char *q = p + 7;
		while (*q == ' ' || *q == '\t')
			q++;
		if (strncmp(q, name, n) == 0 && (q[n] == ' ' || q[n] == '\t')) {
			char *end;
			long long v = strtoll(q + n, &end, 0);
			if (end != q + n) {
				*out = v;
				return true;
			}
		}
	}
	return false;
}

kiln_err kiln_tuner_new(kiln_tuner **out, const kiln_target *t, const char *seed_source,
			uint64_t seed, size_t random_samples)
{
	*out = NULL;
	kiln_tuner *tu = kiln_calloc(1, sizeof *tu);
	if (!tu)
		return KILN_ENOMEM;
	tu->t = t;
	tu->nk = t->nknobs;
	tu->random_left = random_samples;
	kiln_rng_seed(&tu->rng, seed);
	tu->seed_cfg = kiln_calloc(tu->nk ? tu->nk : 1, sizeof(int64_t));
	if (!tu->seed_cfg) {
		kiln_tuner_free(tu);
		return KILN_ENOMEM;
	}
	tu->space = 1;
	for (size_t i = 0; i < tu->nk; i++) {
		const kiln_knob *k = &t->knobs[i];
		int64_t v;
		size_t idx = 0;
		if (seed_source && seed_default(seed_source, k->name, &v) && knob_index(k, v) != (size_t)-1)
			idx = knob_index(k, v);
		tu->seed_cfg[i] = (int64_t)idx;
		tu->space = tu->space > SIZE_MAX / (k->n ? k->n : 1) ? SIZE_MAX : tu->space * k->n;
	}
	*out = tu;
	return KILN_OK;
}

void kiln_tuner_free(kiln_tuner *tu)
{
	if (!tu)
		return;
	free(tu->tried);
	free(tu->best);
	free(tu->seed_cfg);
	free(tu);
}

static bool was_tried(const kiln_tuner *tu, const int64_t *idx)
{
	for (size_t i = 0; i < tu->ntried; i++)
		if (memcmp(tu->tried + i * tu->nk, idx, tu->nk * sizeof(int64_t)) == 0)
			return true;
	return false;
}

static kiln_err remember(kiln_tuner *tu, const int64_t *idx)
{
	if (tu->ntried == tu->cap) {
		size_t cap = tu->cap ? tu->cap * 2 : 32;
		int64_t *t = kiln_realloc(tu->tried, cap * (tu->nk ? tu->nk : 1) * sizeof(int64_t));
		if (!t)
			return KILN_ENOMEM;
		tu->tried = t;
		tu->cap = cap;
	}
	memcpy(tu->tried + tu->ntried * tu->nk, idx, tu->nk * sizeof(int64_t));
	tu->ntried++;
	return KILN_OK;
}

static void to_values(const kiln_tuner *tu, const int64_t *idx, int64_t *values)
{
	for (size_t i = 0; i < tu->nk; i++)
		values[i] = tu->t->knobs[i].values[idx[i]];
}

/* A neighbour of the best not tried yet: one knob moved one step, knobs in random order. */
static bool neighbour(kiln_tuner *tu, int64_t *idx)
{
	if (!tu->best)
		return false;
	size_t start = tu->nk ? (size_t)kiln_rng_below(&tu->rng, tu->nk) : 0;
	for (size_t d = 0; d < tu->nk; d++) {
		size_t k = (start + d) % tu->nk;
		for (int step = -1; step <= 1; step += 2) {
			int64_t v = tu->best[k] + step;
			if (v < 0 || v >= (int64_t)tu->t->knobs[k].n)
				continue;
			memcpy(idx, tu->best, tu->nk * sizeof(int64_t));
			idx[k] = v;
			if (!was_tried(tu, idx))
				return true;
		}
	}
	return false;
}

/* The first untried configuration in odometer order from a random start (so a nearly
 * exhausted space is still covered completely). */
static bool scan_untried(kiln_tuner *tu, int64_t *idx)
{
	for (size_t i = 0; i < tu->nk; i++)
		idx[i] = (int64_t)kiln_rng_below(&tu->rng, tu->t->knobs[i].n);
	for (size_t n = 0; n < tu->space; n++) {
		if (!was_tried(tu, idx))
			return true;
		for (size_t i = 0; i < tu->nk; i++) { /* next in odometer order, wrapping */
			if (++idx[i] < (int64_t)tu->t->knobs[i].n)
				break;
			idx[i] = 0;
		}
	}
	return false;
}

static bool random_untried(kiln_tuner *tu, int64_t *idx)
{
	for (int attempt = 0; attempt < 64; attempt++) {
		for (size_t i = 0; i < tu->nk; i++)
			idx[i] = (int64_t)kiln_rng_below(&tu->rng, tu->t->knobs[i].n);
		if (!was_tried(tu, idx))
			return true;
	}
	return tu->space <= (1u << 16) && scan_untried(tu, idx);
}

kiln_err kiln_tuner_next(kiln_tuner *tu, int64_t *values, kiln_tune_phase *phase, bool *exhausted)
{
	int64_t idx[KILN_ENV_MAX];
	*exhausted = false;
	if (tu->nk > KILN_ENV_MAX)
		return kiln_error_set(KILN_EINVAL, "target %s has more than %d knobs", tu->t->name, KILN_ENV_MAX);
	if (!tu->seed_proposed) {
		tu->seed_proposed = true;
		memcpy(idx, tu->seed_cfg, tu->nk * sizeof(int64_t));
		*phase = KILN_TUNE_SEED;
	} else if (tu->ntried >= tu->space) {
		*exhausted = true;
		return KILN_OK;
	} else if (tu->random_left > 0 && random_untried(tu, idx)) {
		tu->random_left--;
		*phase = KILN_TUNE_RANDOM;
	} else if (neighbour(tu, idx)) {
		*phase = KILN_TUNE_LOCAL;
	} else if (random_untried(tu, idx)) {
		/* local optimum: restart from a random point */
		*phase = KILN_TUNE_RANDOM;
	} else {
		*exhausted = true;
		return KILN_OK;
	}
	kiln_err e = remember(tu, idx);
	if (e)
		return e;
	to_values(tu, idx, values);
	return KILN_OK;
}

bool kiln_tuner_peek(kiln_tuner *tu, int64_t *values)
{
	int64_t idx[KILN_ENV_MAX];
	if (tu->nk > KILN_ENV_MAX || !tu->seed_proposed || tu->random_left == 0 || tu->ntried >= tu->space)
		return false;
	kiln_rng saved = tu->rng;
	bool ok = random_untried(tu, idx);
	tu->rng = saved;
	if (ok)
		to_values(tu, idx, values);
	return ok;
}

kiln_err kiln_tuner_report(kiln_tuner *tu, const int64_t *values, bool passed, double time_us)
{
	if (!passed)
		return KILN_OK;
	if (tu->best && time_us >= tu->best_us)
		return KILN_OK;
	if (!tu->best && !(tu->best = kiln_calloc(tu->nk ? tu->nk : 1, sizeof(int64_t))))
		return KILN_ENOMEM;
	for (size_t i = 0; i < tu->nk; i++) {
		size_t j = knob_index(&tu->t->knobs[i], values[i]);
		if (j == (size_t)-1)
			return kiln_error_set(KILN_EINVAL, "knob %s has no value %lld", tu->t->knobs[i].name,
					      (long long)values[i]);
		tu->best[i] = (int64_t)j;
	}
	tu->best_us = time_us;
	return KILN_OK;
}

bool kiln_tuner_seed_values(const kiln_tuner *tu, int64_t *values)
{
	to_values(tu, tu->seed_cfg, values);
	return true;
}
