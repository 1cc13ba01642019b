/* targets: the bench sizes a candidate is ranked on and their weights. target.json's
 * optional "bench_weights" (one positive number per bench size) weighs each size in the
 * objective, the weighted geometric mean of the per-size speedups; `--size` specs
 * ("B=1024,T=4096", "+B=...", an optional "@W" weight) replace or extend the list in
 * memory. Invariant after either: every symbol's bench list has nbench_sizes entries
 * (or 1, broadcast) and bench_weights is NULL or has nbench_sizes positive entries. */
#include "targets/targets_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SPEC_MAX 256

kiln_err kiln_target_load_bench_weights(kiln_target *t, const cJSON *root, const char *file)
{
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(root, "bench_weights"), *it;
	if (t->nbench_sizes > KILN_TARGET_MAX_BENCH)
		return kiln_error_set(KILN_EINVAL, "%s: symbols: %zu bench sizes, at most %d (each is timed for every "
				      "candidate)", file, t->nbench_sizes, KILN_TARGET_MAX_BENCH);
	if (!w)
		return KILN_OK;
	if (!cJSON_IsArray(w))
		return kiln_error_set(KILN_EINVAL, "%s: bench_weights: expected an array of positive numbers, one per "
				      "bench size", file);
	size_t n = (size_t)cJSON_GetArraySize(w), i = 0;
	if (n != t->nbench_sizes)
		return kiln_error_set(KILN_EINVAL, "%s: bench_weights: has %zu weights but the symbols give %zu bench "
				      "sizes (one weight per size)", file, n, t->nbench_sizes);
	if (!(t->bench_weights = kiln_calloc(n, sizeof(double))))
		return KILN_ENOMEM;
	cJSON_ArrayForEach(it, w) {
		if (!cJSON_IsNumber(it) || !isfinite(it->valuedouble) || it->valuedouble <= 0 || it->valuedouble > 1e6)
			return kiln_error_set(KILN_EINVAL, "%s: bench_weights[%zu]: expected a positive number (at most "
					      "1e6)", file, i);
		t->bench_weights[i++] = it->valuedouble;
	}
	return KILN_OK;
}

double kiln_target_bench_weight(const kiln_target *t, size_t idx)
{
	return t->bench_weights && idx < t->nbench_sizes ? t->bench_weights[idx] : 1.0;
}

/* One parsed --size spec: a value for every symbol, its weight, added or replacing. */
typedef struct size_spec {
	int64_t v[KILN_ENV_MAX];
	double weight;
	bool add;
} size_spec;

static long symbol_index(const kiln_target *t, const char *name, size_t len)
{
	for (size_t i = 0; i < t->nsymbols; i++)
		if (strlen(t->symbols[i].name) == len && strncmp(t->symbols[i].name, name, len) == 0)
			return (long)i;
	return -1;
}

static kiln_err symbol_names(char *out, size_t n, const kiln_target *t)
{
	size_t at = 0;
	out[0] = 0;
	for (size_t i = 0; i < t->nsymbols && at < n; i++)
		at += (size_t)snprintf(out + at, n - at, "%s%s", i ? ", " : "", t->symbols[i].name);
	return KILN_OK;
}

static kiln_err parse_weight(size_spec *sp, const char *w, const char *spec)
{
	char *end = NULL;
	double v = strtod(w, &end);
	if (!*w || *end || !isfinite(v) || v <= 0 || v > 1e6)
		return kiln_error_set(KILN_EINVAL, "--size %s: the weight after '@' must be a positive number (at most 1e6)",
				      spec);
	sp->weight = v;
	return KILN_OK;
}

/* "B=1024,T=4096[@W]" or "+B=...": every symbol exactly once, values 1..2^40. */
static kiln_err parse_spec(size_spec *sp, const kiln_target *t, const char *spec)
{
	char buf[SPEC_MAX], names[KILN_ENV_MAX * (KILN_NAME_MAX + 2)];
	bool seen[KILN_ENV_MAX] = {false};
	symbol_names(names, sizeof(names), t);
	if (strlen(spec) >= sizeof(buf))
		return kiln_error_set(KILN_EINVAL, "--size: a spec is at most %d characters", SPEC_MAX - 1);
	memset(sp, 0, sizeof(*sp));
	sp->weight = 1.0;
	const char *p = spec;
	if ((sp->add = *p == '+'))
		p++;
	snprintf(buf, sizeof(buf), "%s", p);
	char *at = strchr(buf, '@');
	kiln_err e;
	if (at) {
		*at = 0;
		if ((e = parse_weight(sp, at + 1, spec)))
			return e;
	}
	for (char *tok = buf, *next; tok; tok = next) {
		if ((next = strchr(tok, ',')))
			*next++ = 0;
		char *eq = strchr(tok, '='), *end = NULL;
		long s = eq ? symbol_index(t, tok, (size_t)(eq - tok)) : -1;
		if (!eq || eq == tok)
			return kiln_error_set(KILN_EINVAL, "--size %s: expected SYMBOL=VALUE[,SYMBOL=VALUE...][@WEIGHT] "
					      "(target %s has %s)", spec, t->name, names);
		if (s < 0)
			return kiln_error_set(KILN_EINVAL, "--size %s: target %s has no symbol '%.*s' (it has %s)", spec,
					      t->name, (int)(eq - tok), tok, names);
		if (seen[s])
			return kiln_error_set(KILN_EINVAL, "--size %s: symbol %s given twice", spec, t->symbols[s].name);
		long long v = strtoll(eq + 1, &end, 10);
		if (!eq[1] || *end || v < 1 || v > (1LL << 40))
			return kiln_error_set(KILN_EINVAL, "--size %s: %s must be an integer in [1, 2^40]", spec,
					      t->symbols[s].name);
		seen[s] = true;
		sp->v[s] = v;
	}
	for (size_t i = 0; i < t->nsymbols; i++)
		if (!seen[i])
			return kiln_error_set(KILN_EINVAL, "--size %s: symbol %s is missing (every size gives all of %s)",
					      spec, t->symbols[i].name, names);
	return KILN_OK;
}

/* Replaces the symbols' bench lists and the weights with n sizes (v[k][s], w[k]). */
static kiln_err install(kiln_target *t, const size_spec *sp, size_t n)
{
	int64_t **lists = kiln_calloc(t->nsymbols, sizeof(*lists));
	double *w = kiln_calloc(n, sizeof(double));
	kiln_err e = lists && w ? KILN_OK : KILN_ENOMEM;
	for (size_t s = 0; !e && s < t->nsymbols; s++) {
		if (!(lists[s] = kiln_calloc(n, sizeof(int64_t))))
			e = KILN_ENOMEM;
		for (size_t k = 0; !e && k < n; k++)
			lists[s][k] = sp[k].v[s];
	}
	if (e) {
		for (size_t s = 0; lists && s < t->nsymbols; s++)
			free(lists[s]);
		free(lists);
		free(w);
		return kiln_error_set(KILN_ENOMEM, "target %s: out of memory", t->name);
	}
	for (size_t s = 0; s < t->nsymbols; s++) {
		free(t->symbols[s].bench);
		t->symbols[s].bench = lists[s];
		t->symbols[s].nbench = n;
	}
	for (size_t k = 0; k < n; k++)
		w[k] = sp[k].weight;
	free(lists);
	free(t->bench_weights);
	t->bench_weights = w;
	t->nbench_sizes = n;
	return KILN_OK;
}

kiln_err kiln_target_set_bench_sizes(kiln_target *t, const char *const *specs, size_t n)
{
	size_spec *sp = NULL;
	size_t cnt = 0;
	bool replace = false;
	kiln_err e = KILN_OK;
	if (!n)
		return KILN_OK;
	for (size_t i = 0; i < n; i++)
		replace |= specs[i][0] != '+';
	size_t cap = (replace ? 0 : t->nbench_sizes) + n;
	if (cap > KILN_TARGET_MAX_BENCH)
		return kiln_error_set(KILN_EINVAL, "--size: %zu bench sizes, at most %d", cap, KILN_TARGET_MAX_BENCH);
	if (!(sp = kiln_calloc(cap, sizeof(*sp))))
		return kiln_error_set(KILN_ENOMEM, "target %s: out of memory", t->name);
	for (size_t k = 0; !replace && k < t->nbench_sizes; k++, cnt++) {
		kiln_env env;
		if ((e = kiln_target_sizes(&env, t, true, k)))
			goto done;
		for (size_t s = 0; s < t->nsymbols; s++)
			sp[cnt].v[s] = env.values[s];
		sp[cnt].weight = kiln_target_bench_weight(t, k);
	}
	for (size_t i = 0; i < n; i++) {
		size_spec one;
		if ((e = parse_spec(&one, t, specs[i])))
			goto done;
		size_t k = 0; /* a size given again replaces its weight */
		while (k < cnt && memcmp(sp[k].v, one.v, t->nsymbols * sizeof(int64_t)) != 0)
			k++;
		sp[k] = one;
		cnt += k == cnt;
	}
	e = install(t, sp, cnt);
done:
	free(sp);
	return e;
}

kiln_err kiln_target_bench_spec(char *out, size_t n, const kiln_target *t, size_t idx)
{
	kiln_env env;
	kiln_err e = kiln_target_sizes(&env, t, true, idx);
	size_t at = 0;
	if (n)
		out[0] = 0;
	for (size_t i = 0; !e && i < env.n && at < n; i++)
		at += (size_t)snprintf(out + at, n - at, "%s%s=%lld", i ? "," : "", env.names[i], (long long)env.values[i]);
	if (!e && at < n)
		at += (size_t)snprintf(out + at, n - at, "@%.17g", kiln_target_bench_weight(t, idx));
	if (!e && at >= n)
		e = kiln_error_set(KILN_EINVAL, "target %s: bench size %zu does not fit in %zu characters", t->name, idx, n);
	return e;
}
