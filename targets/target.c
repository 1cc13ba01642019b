/* target.json: loading, validation and lookups. Validation is strict and complete before
 * a kiln_target is handed out: unknown keys, bad dtypes, shapes over unknown symbols,
 * missing tolerances, unresolvable references and name clashes are all one-line
 * KILN_EINVAL errors of the form "<file>: <field path>: <what was expected>".
 * Also finding targets by name and listing the targets of a folder. */
#include "targets/targets_int.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define WHERE_MAX 1024
#define MAX_DIMS 8
#define MAX_SIZES 64

void kiln_target_free(kiln_target *t)
{
	if (!t)
		return;
	for (size_t i = 0; i < t->nsymbols; i++) {
		free(t->symbols[i].name);
		free(t->symbols[i].verify);
		free(t->symbols[i].bench);
	}
	free(t->symbols);
	free(t->bench_weights);
	for (size_t i = 0; i < t->nbuffers; i++) {
		kiln_buffer_spec *b = &t->buffers[i];
		free(b->name);
		for (size_t d = 0; d < b->ndim; d++)
			free(b->shape[d]);
		free(b->shape);
		free(b->init);
		free(b->masked_by);
	}
	free(t->buffers);
	for (size_t i = 0; i < t->nscalars; i++)
		free(t->scalars[i].name);
	free(t->scalars);
	for (size_t i = 0; i < t->ntolerances; i++)
		free(t->tolerances[i].buffer);
	free(t->tolerances);
	for (size_t i = 0; i < t->nknobs; i++) {
		free(t->knobs[i].name);
		free(t->knobs[i].values);
	}
	free(t->knobs);
	free(t->name);
	free(t->family);
	free(t->summary);
	free(t->math);
	free(t->dir);
	free(t->traffic_bytes);
	free(t->reference);
	free(t->ref_path);
	free(t->seed_path);
	free(t->launch_path);
	free(t->notes);
	for (size_t r = 0; r < t->nregimes; r++) {
		kiln_regime *g = &t->regimes[r];
		for (size_t i = 0; g->init && i < t->nbuffers; i++)
			free(g->init[i]);
		free(g->init);
		free(g->name);
		free(g->note);
		free(g->scalars);
		free(g->scalar_set);
	}
	free(t->regimes);
	free(t->multistep.scalar_index);
	free(t->multistep.values);
	free(t);
}

/* Every name a target defines, for uniqueness and for expression checks. */
typedef struct names {
	const char *v[4 * KILN_ENV_MAX + 256];
	const char *kind[4 * KILN_ENV_MAX + 256];
	size_t n;
	size_t nexpr; /* the first nexpr names (symbols) may appear in shapes and traffic */
} names;

static kiln_err add_name(names *ns, const char *name, const char *kind, const char *where)
{
	if (!kiln_name_ok(name))
		return kiln_error_set(KILN_EINVAL,
				      "%s: \"%s\" is not a C identifier (letters, digits, _; at most %d chars)",
				      where, name, KILN_NAME_MAX - 1);
	if (kiln_name_reserved(name))
		return kiln_error_set(KILN_EINVAL, "%s: \"%s\" is reserved (ceil_div, min, max, sm_count)",
				      where, name);
	for (size_t i = 0; i < ns->n; i++)
		if (strcmp(ns->v[i], name) == 0)
			return kiln_error_set(KILN_EINVAL, "%s: duplicate name \"%s\" (already a %s)", where,
					      name, ns->kind[i]);
	if (ns->n >= KILN_ARRAY_LEN(ns->v))
		return kiln_error_set(KILN_EINVAL, "%s: too many names", where);
	ns->v[ns->n] = name;
	ns->kind[ns->n++] = kind;
	return KILN_OK;
}

static kiln_err dup_into(char **out, const char *s)
{
	*out = kiln_strdup(s);
	return *out ? KILN_OK : KILN_ENOMEM;
}

/* A required non-empty string field. */
static kiln_err need_string(char **out, const cJSON *obj, const char *key, const char *where)
{
	const char *s;
	kiln_err e = kiln_json_string(&s, obj, key, where);
	if (e)
		return e;
	if (!*s)
		return kiln_error_set(KILN_EINVAL, "%s: field \"%s\": expected a non-empty string", where, key);
	return dup_into(out, s);
}

kiln_err kiln_json_expr(char **out, const cJSON *it, const char *where)
{
	if (cJSON_IsString(it))
		return dup_into(out, it->valuestring);
	if (cJSON_IsNumber(it) && it->valuedouble == floor(it->valuedouble) &&
	    fabs(it->valuedouble) < 9007199254740992.0) {
		*out = kiln_asprintf("%lld", (long long)it->valuedouble);
		return *out ? KILN_OK : KILN_ENOMEM;
	}
	return kiln_error_set(KILN_EINVAL, "%s: expected an expression (a string such as \"ceil_div(n, 256)\" or an integer)",
			      where);
}

/* A non-empty array of integers in [lo, hi]. */
static kiln_err int_list(int64_t **out, size_t *n, const cJSON *arr, int64_t lo, int64_t hi,
			 const char *where)
{
	if (!cJSON_IsArray(arr) || cJSON_GetArraySize(arr) == 0)
		return kiln_error_set(KILN_EINVAL, "%s: expected a non-empty array of integers", where);
	size_t cnt = (size_t)cJSON_GetArraySize(arr);
	if (cnt > MAX_SIZES)
		return kiln_error_set(KILN_EINVAL, "%s: at most %d values", where, MAX_SIZES);
	if (!(*out = kiln_calloc(cnt, sizeof(int64_t))))
		return KILN_ENOMEM;
	*n = cnt;
	size_t i = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr) {
		double d = it->valuedouble;
		if (!cJSON_IsNumber(it) || d != floor(d) || fabs(d) > 9007199254740992.0)
			return kiln_error_set(KILN_EINVAL, "%s[%zu]: expected an integer", where, i);
		if (d < (double)lo || d > (double)hi)
			return kiln_error_set(KILN_EINVAL, "%s[%zu]: %lld is out of range [%lld, %lld]", where, i,
					      (long long)d, (long long)lo, (long long)hi);
		(*out)[i++] = (int64_t)d;
	}
	return KILN_OK;
}

static kiln_err load_symbols(kiln_target *t, const cJSON *root, names *ns, const char *file)
{
	const cJSON *obj, *it;
	char where[WHERE_MAX];
	kiln_err e;
	snprintf(where, sizeof(where), "%s", file);
	if ((e = kiln_json_object(&obj, root, "symbols", where)))
		return e;
	size_t cnt = (size_t)cJSON_GetArraySize(obj);
	if (cnt == 0)
		return kiln_error_set(KILN_EINVAL, "%s: symbols: expected at least one symbol", file);
	if (!(t->symbols = kiln_calloc(cnt, sizeof(*t->symbols))))
		return KILN_ENOMEM;
	static const char *const keys[] = {"verify", "bench", NULL};
	cJSON_ArrayForEach(it, obj) {
		kiln_symbol *s = &t->symbols[t->nsymbols];
		snprintf(where, sizeof(where), "%s: symbols.%s", file, it->string);
		if ((e = add_name(ns, it->string, "symbol", where)))
			return e;
		if ((e = dup_into(&s->name, it->string)))
			return e;
		t->nsymbols++;
		if (!cJSON_IsObject(it))
			return kiln_error_set(KILN_EINVAL, "%s: expected an object {\"verify\": [...], \"bench\": [...]}",
					      where);
		if ((e = kiln_json_only_keys(it, keys, where)))
			return e;
		char sub[WHERE_MAX + 16];
		snprintf(sub, sizeof(sub), "%s.verify", where);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(it, "verify");
		if (!v)
			return kiln_error_set(KILN_EINVAL, "%s: missing (the verification sizes)", sub);
		if ((e = int_list(&s->verify, &s->nverify, v, 1, INT32_MAX, sub)))
			return e;
		snprintf(sub, sizeof(sub), "%s.bench", where);
		const cJSON *b = cJSON_GetObjectItemCaseSensitive(it, "bench");
		if (!b)
			return kiln_error_set(KILN_EINVAL, "%s: missing (the benchmark sizes)", sub);
		if ((e = int_list(&s->bench, &s->nbench, b, 1, INT64_C(1) << 40, sub)))
			return e;
	}
	ns->nexpr = ns->n;
	/* All lists of a kind have one length, or length 1 (the same value for every size). */
	for (int pass = 0; pass < 2; pass++) {
		size_t want = 1, at = 0;
		for (size_t i = 0; i < t->nsymbols; i++) {
			size_t n = pass ? t->symbols[i].nbench : t->symbols[i].nverify;
			if (n == 1)
				continue;
			if (want == 1) {
				want = n;
				at = i;
			} else if (n != want) {
				const char *k = pass ? "bench" : "verify";
				return kiln_error_set(KILN_EINVAL,
						      "%s: symbols.%s.%s: has %zu sizes but symbols.%s.%s has %zu "
						      "(all %s lists must have one length, or length 1 to broadcast)",
						      file, t->symbols[i].name, k, n, t->symbols[at].name, k, want, k);
			}
		}
		if (pass)
			t->nbench_sizes = want;
		else
			t->nverify_sizes = want;
	}
	return KILN_OK;
}

/* An init string for buffer b: it parses, special(...) is for float buffers only. */
static kiln_err check_init(const kiln_buffer_spec *b, const char *s, const char *where)
{
	kiln_init init;
	kiln_err e = kiln_init_parse(&init, s, where);
	if (e)
		return e;
	if (init.special && !kiln_dtype_is_float(b->dtype))
		return kiln_error_set(KILN_EINVAL, "%s: special(...) needs a float buffer (\"%s\" is %s)", where, b->name,
				      kiln_dtype_name(b->dtype));
	return KILN_OK;
}

static kiln_err load_buffers(kiln_target *t, const cJSON *root, names *ns, const char *file)
{
	const cJSON *arr, *it;
	char where[WHERE_MAX];
	kiln_err e;
	if ((e = kiln_json_array(&arr, root, "buffers", file)))
		return e;
	size_t cnt = (size_t)cJSON_GetArraySize(arr);
	if (cnt == 0)
		return kiln_error_set(KILN_EINVAL, "%s: buffers: expected at least one buffer", file);
	if (!(t->buffers = kiln_calloc(cnt, sizeof(*t->buffers))))
		return KILN_ENOMEM;
	static const char *const keys[] = {"name", "dtype", "shape", "role", "init", "masked_by", NULL};
	size_t idx = 0;
	cJSON_ArrayForEach(it, arr) {
		kiln_buffer_spec *b = &t->buffers[idx];
		const char *s;
		snprintf(where, sizeof(where), "%s: buffers[%zu]", file, idx);
		t->nbuffers = ++idx;
		if (!cJSON_IsObject(it))
			return kiln_error_set(KILN_EINVAL, "%s: expected an object", where);
		if ((e = kiln_json_only_keys(it, keys, where)) || (e = kiln_json_string(&s, it, "name", where)))
			return e;
		char sub[WHERE_MAX + 64];
		snprintf(sub, sizeof(sub), "%s.name", where);
		if ((e = add_name(ns, s, "buffer", sub)) || (e = dup_into(&b->name, s)))
			return e;
		if ((e = kiln_json_string(&s, it, "dtype", where)))
			return e;
		snprintf(sub, sizeof(sub), "%s.dtype", where);
		if ((e = kiln_dtype_parse(&b->dtype, s, sub)))
			return e;
		if ((e = kiln_json_string(&s, it, "role", where)))
			return e;
		if (strcmp(s, "in") == 0)
			b->role = KILN_ROLE_IN;
		else if (strcmp(s, "out") == 0)
			b->role = KILN_ROLE_OUT;
		else if (strcmp(s, "inout") == 0)
			b->role = KILN_ROLE_INOUT;
		else
			return kiln_error_set(KILN_EINVAL, "%s.role: unknown role \"%s\" (expected in, out or inout)",
					      where, s);
		const cJSON *shape;
		if ((e = kiln_json_array(&shape, it, "shape", where)))
			return e;
		size_t nd = (size_t)cJSON_GetArraySize(shape);
		if (nd == 0 || nd > MAX_DIMS)
			return kiln_error_set(KILN_EINVAL, "%s.shape: expected 1 to %d dimensions, got %zu", where,
					      MAX_DIMS, nd);
		if (!(b->shape = kiln_calloc(nd, sizeof(char *))))
			return KILN_ENOMEM;
		const cJSON *d;
		cJSON_ArrayForEach(d, shape) {
			snprintf(sub, sizeof(sub), "%s.shape[%zu]", where, b->ndim);
			if ((e = kiln_json_expr(&b->shape[b->ndim], d, sub)))
				return e;
			b->ndim++;
			if ((e = kiln_expr_check(b->shape[b->ndim - 1], ns->v, ns->nexpr, sub)))
				return e;
		}
		s = NULL;
		if ((e = kiln_json_opt_string(&s, it, "init", where)))
			return e;
		if (!s && b->role != KILN_ROLE_OUT)
			return kiln_error_set(KILN_EINVAL,
					      "%s: missing field \"init\" (an in/inout buffer needs a distribution, "
					      "e.g. \"normal(0,1)\")", where);
		if (s && b->role == KILN_ROLE_OUT)
			return kiln_error_set(KILN_EINVAL, "%s.init: an out buffer is zero-filled; remove \"init\"", where);
		if (s) {
			snprintf(sub, sizeof(sub), "%s.init", where);
			if ((e = check_init(b, s, sub)) || (e = dup_into(&b->init, s)))
				return e;
		}
		s = NULL;
		if ((e = kiln_json_opt_string(&s, it, "masked_by", where)))
			return e;
		if (s && (e = dup_into(&b->masked_by, s)))
			return e;
	}
	/* masked_by names a mask buffer of the same shape, declared anywhere. */
	for (size_t i = 0; i < t->nbuffers; i++) {
		kiln_buffer_spec *b = &t->buffers[i];
		if (!b->masked_by)
			continue;
		snprintf(where, sizeof(where), "%s: buffers[%zu].masked_by", file, i);
		long m = kiln_target_buffer_index(t, b->masked_by);
		kiln_init init;
		if (m < 0 || (size_t)m == i)
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\" is not another buffer of this target", where,
					      b->masked_by);
		const kiln_buffer_spec *mb = &t->buffers[m];
		if (!mb->init || kiln_init_parse(&init, mb->init, where) || !kiln_init_is_mask(&init))
			return kiln_error_set(KILN_EINVAL, "%s: buffer \"%s\" is not a mask (its init must be mask(f), "
					      "mask_holes(p), const(0|1) or randint(0,1))", where, b->masked_by);
		bool same = mb->ndim == b->ndim;
		for (size_t d = 0; same && d < b->ndim; d++)
			same = strcmp(mb->shape[d], b->shape[d]) == 0;
		if (!same)
			return kiln_error_set(KILN_EINVAL, "%s: buffer \"%s\" must have the same shape as \"%s\"", where,
					      b->masked_by, b->name);
		if (b->role == KILN_ROLE_OUT)
			return kiln_error_set(KILN_EINVAL, "%s: an out buffer is zero-filled and cannot be masked",
					      where);
	}
	return KILN_OK;
}

/* A scalar's value from JSON (a number, or a bool), checked against its dtype. */
static kiln_err scalar_value(double *out, const cJSON *v, kiln_dtype dt, const char *where)
{
	if (cJSON_IsBool(v))
		*out = cJSON_IsTrue(v);
	else if (cJSON_IsNumber(v))
		*out = v->valuedouble;
	else
		return kiln_error_set(KILN_EINVAL, "%s: expected a number", where);
	if (!kiln_dtype_is_float(dt)) {
		double lo = dt == KILN_I32 ? -2147483648.0 : dt == KILN_I64 ? -9007199254740992.0 : 0;
		double hi = dt == KILN_I32 ? 2147483647.0 : dt == KILN_U32 ? 4294967295.0
			  : dt == KILN_U8 ? 255.0 : dt == KILN_BOOL ? 1.0 : 9007199254740992.0;
		if (*out != floor(*out) || *out < lo || *out > hi)
			return kiln_error_set(KILN_EINVAL, "%s: %g is not a %s value", where, *out, kiln_dtype_name(dt));
	} else if (!isfinite(*out)) {
		return kiln_error_set(KILN_EINVAL, "%s: expected a finite number", where);
	}
	return KILN_OK;
}

static kiln_err load_scalars(kiln_target *t, const cJSON *root, names *ns, const char *file)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "scalars"), *it;
	char where[WHERE_MAX], sub[WHERE_MAX + 16];
	kiln_err e;
	if (!arr)
		return KILN_OK;
	if (!cJSON_IsArray(arr))
		return kiln_error_set(KILN_EINVAL, "%s: scalars: expected an array", file);
	size_t cnt = (size_t)cJSON_GetArraySize(arr);
	if (cnt && !(t->scalars = kiln_calloc(cnt, sizeof(*t->scalars))))
		return KILN_ENOMEM;
	static const char *const keys[] = {"name", "dtype", "value", NULL};
	cJSON_ArrayForEach(it, arr) {
		kiln_scalar_spec *s = &t->scalars[t->nscalars];
		const char *str;
		snprintf(where, sizeof(where), "%s: scalars[%zu]", file, t->nscalars);
		t->nscalars++;
		if (!cJSON_IsObject(it))
			return kiln_error_set(KILN_EINVAL, "%s: expected an object", where);
		if ((e = kiln_json_only_keys(it, keys, where)) || (e = kiln_json_string(&str, it, "name", where)))
			return e;
		snprintf(sub, sizeof(sub), "%s.name", where);
		if ((e = add_name(ns, str, "scalar", sub)) || (e = dup_into(&s->name, str)))
			return e;
		if ((e = kiln_json_string(&str, it, "dtype", where)))
			return e;
		snprintf(sub, sizeof(sub), "%s.dtype", where);
		if ((e = kiln_dtype_parse(&s->dtype, str, sub)))
			return e;
		if (s->dtype == KILN_F16 || s->dtype == KILN_BF16)
			return kiln_error_set(KILN_EINVAL,
					      "%s: scalars are f32, f64, i32, i64, u32, u8 or bool, not %s", sub, str);
		snprintf(sub, sizeof(sub), "%s.value", where);
		if ((e = scalar_value(&s->value, cJSON_GetObjectItemCaseSensitive(it, "value"), s->dtype, sub)))
			return e;
	}
	return KILN_OK;
}

static kiln_err load_tolerances(kiln_target *t, const cJSON *root, const char *file)
{
	const cJSON *obj, *it;
	char where[WHERE_MAX];
	kiln_err e;
	if ((e = kiln_json_object(&obj, root, "tolerance", file)))
		return e;
	size_t cnt = (size_t)cJSON_GetArraySize(obj);
	if (cnt && !(t->tolerances = kiln_calloc(cnt, sizeof(*t->tolerances))))
		return KILN_ENOMEM;
	static const char *const keys[] = {"rule", "rtol", "atol", "ulps", NULL};
	cJSON_ArrayForEach(it, obj) {
		kiln_tolerance *tol = &t->tolerances[t->ntolerances];
		snprintf(where, sizeof(where), "%s: tolerance.%s", file, it->string);
		const kiln_buffer_spec *b = kiln_target_buffer(t, it->string);
		if (!b)
			return kiln_error_set(KILN_EINVAL, "%s: no buffer named \"%s\"", where, it->string);
		if (b->role == KILN_ROLE_IN)
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\" is an in buffer; tolerances are for out/inout buffers",
					      where, it->string);
		if ((e = dup_into(&tol->buffer, it->string)))
			return e;
		t->ntolerances++;
		if (!cJSON_IsObject(it))
			return kiln_error_set(KILN_EINVAL, "%s: expected {\"rtol\": x, \"atol\": y}, {\"rule\": \"ulp\", "
					      "\"ulps\": n} or {\"rule\": \"exact\"}", where);
		if ((e = kiln_json_only_keys(it, keys, where)))
			return e;
		const char *rule = "plain";
		if ((e = kiln_json_opt_string(&rule, it, "rule", where)))
			return e;
		bool has_rtol = cJSON_GetObjectItemCaseSensitive(it, "rtol") != NULL,
		     has_atol = cJSON_GetObjectItemCaseSensitive(it, "atol") != NULL,
		     has_ulps = cJSON_GetObjectItemCaseSensitive(it, "ulps") != NULL;
		if ((e = kiln_json_opt_number(&tol->rtol, it, "rtol", where)) ||
		    (e = kiln_json_opt_number(&tol->atol, it, "atol", where)) ||
		    (e = kiln_json_opt_number(&tol->ulps, it, "ulps", where)))
			return e;
		if (strcmp(rule, "plain") == 0) {
			tol->rule = KILN_TOL_PLAIN;
			if (!has_rtol || !has_atol || has_ulps)
				return kiln_error_set(KILN_EINVAL, "%s: expected both \"rtol\" and \"atol\" (and no \"ulps\")",
						      where);
		} else if (strcmp(rule, "ulp") == 0) {
			tol->rule = KILN_TOL_ULP;
			if (!has_ulps || has_rtol)
				return kiln_error_set(KILN_EINVAL, "%s: rule \"ulp\" takes \"ulps\" (and an optional \"atol\")",
						      where);
			if (!(tol->ulps > 0))
				return kiln_error_set(KILN_EINVAL, "%s.ulps: expected a positive number", where);
		} else if (strcmp(rule, "exact") == 0) {
			tol->rule = KILN_TOL_EXACT;
			if (has_rtol || has_atol || has_ulps)
				return kiln_error_set(KILN_EINVAL, "%s: rule \"exact\" takes no rtol, atol or ulps", where);
		} else {
			return kiln_error_set(KILN_EINVAL, "%s.rule: unknown rule \"%s\" (expected plain, ulp or exact)",
					      where, rule);
		}
		if (!(tol->rtol >= 0) || !(tol->atol >= 0) || !isfinite(tol->rtol) || !isfinite(tol->atol))
			return kiln_error_set(KILN_EINVAL, "%s: rtol and atol must be finite and >= 0", where);
	}
	for (size_t i = 0; i < t->nbuffers; i++)
		if (t->buffers[i].role != KILN_ROLE_IN && !kiln_target_tolerance(t, t->buffers[i].name))
			return kiln_error_set(KILN_EINVAL, "%s: tolerance: missing for output buffer \"%s\" (every out/inout "
					      "buffer needs one)", file, t->buffers[i].name);
	return KILN_OK;
}

static kiln_err load_knobs(kiln_target *t, const cJSON *root, names *ns, const char *file)
{
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "knobs"), *it;
	char where[WHERE_MAX];
	kiln_err e;
	if (!obj)
		return KILN_OK;
	if (!cJSON_IsObject(obj))
		return kiln_error_set(KILN_EINVAL, "%s: knobs: expected an object {\"NAME\": [values...]}", file);
	size_t cnt = (size_t)cJSON_GetArraySize(obj);
	if (cnt && !(t->knobs = kiln_calloc(cnt, sizeof(*t->knobs))))
		return KILN_ENOMEM;
	cJSON_ArrayForEach(it, obj) {
		kiln_knob *k = &t->knobs[t->nknobs];
		snprintf(where, sizeof(where), "%s: knobs.%s", file, it->string);
		if ((e = add_name(ns, it->string, "knob", where)) || (e = dup_into(&k->name, it->string)))
			return e;
		t->nknobs++;
		if ((e = int_list(&k->values, &k->n, it, INT32_MIN, INT32_MAX, where)))
			return e;
	}
	return KILN_OK;
}

#define MAX_REGIMES 32
#define MAX_STEPS 16

/* regimes.NAME.init: per-buffer overrides, checked like buffers' own inits; a buffer
 * that masks others must stay a mask. */
static kiln_err regime_inits(kiln_target *t, kiln_regime *g, const cJSON *obj, const char *where)
{
	const cJSON *it;
	char sub[WHERE_MAX + 128];
	kiln_err e;
	if (!cJSON_IsObject(obj))
		return kiln_error_set(KILN_EINVAL, "%s: expected an object {\"BUFFER\": \"INIT\", ...}", where);
	cJSON_ArrayForEach(it, obj) {
		snprintf(sub, sizeof(sub), "%s.%s", where, it->string);
		long b = kiln_target_buffer_index(t, it->string);
		if (b < 0)
			return kiln_error_set(KILN_EINVAL, "%s: no buffer named \"%s\"", sub, it->string);
		const kiln_buffer_spec *bs = &t->buffers[b];
		if (bs->role == KILN_ROLE_OUT)
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\" is an out buffer (zero-filled; nothing to draw)", sub,
					      it->string);
		if (!cJSON_IsString(it))
			return kiln_error_set(KILN_EINVAL, "%s: expected an init string such as \"const(0)\"", sub);
		if (g->init[b])
			return kiln_error_set(KILN_EINVAL, "%s: given twice", sub);
		if ((e = check_init(bs, it->valuestring, sub)))
			return e;
		bool masks = false;
		for (size_t i = 0; i < t->nbuffers; i++)
			masks = masks || (t->buffers[i].masked_by && strcmp(t->buffers[i].masked_by, bs->name) == 0);
		kiln_init init;
		if (masks && (kiln_init_parse(&init, it->valuestring, sub) || !kiln_init_is_mask(&init)))
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\" masks other buffers; its init must stay a mask "
					      "(mask(f), mask_holes(p), const(0|1) or randint(0,1))", sub, bs->name);
		if ((e = dup_into(&g->init[b], it->valuestring)))
			return e;
	}
	return KILN_OK;
}

static kiln_err regime_scalars(kiln_target *t, kiln_regime *g, const cJSON *obj, const char *where)
{
	const cJSON *it;
	char sub[WHERE_MAX + 128];
	kiln_err e;
	if (!cJSON_IsObject(obj))
		return kiln_error_set(KILN_EINVAL, "%s: expected an object {\"SCALAR\": value, ...}", where);
	cJSON_ArrayForEach(it, obj) {
		snprintf(sub, sizeof(sub), "%s.%s", where, it->string);
		const kiln_scalar_spec *sc = kiln_target_scalar(t, it->string);
		if (!sc)
			return kiln_error_set(KILN_EINVAL, "%s: no scalar named \"%s\"", sub, it->string);
		size_t i = (size_t)(sc - t->scalars);
		if (g->scalar_set[i])
			return kiln_error_set(KILN_EINVAL, "%s: given twice", sub);
		if ((e = scalar_value(&g->scalars[i], it, sc->dtype, sub)))
			return e;
		g->scalar_set[i] = true;
	}
	return KILN_OK;
}

static kiln_err load_regimes(kiln_target *t, const cJSON *root, const char *file)
{
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "regimes"), *it;
	char where[WHERE_MAX];
	kiln_err e;
	if (!obj)
		return KILN_OK;
	if (!cJSON_IsObject(obj))
		return kiln_error_set(KILN_EINVAL, "%s: regimes: expected an object {\"NAME\": {\"note\": ..., \"init\": "
				      "{...}, \"scalars\": {...}}}", file);
	size_t cnt = (size_t)cJSON_GetArraySize(obj);
	if (cnt > MAX_REGIMES)
		return kiln_error_set(KILN_EINVAL, "%s: regimes: at most %d regimes", file, MAX_REGIMES);
	if (cnt && !(t->regimes = kiln_calloc(cnt, sizeof(*t->regimes))))
		return KILN_ENOMEM;
	static const char *const keys[] = {"note", "init", "scalars", NULL};
	cJSON_ArrayForEach(it, obj) {
		kiln_regime *g = &t->regimes[t->nregimes];
		snprintf(where, sizeof(where), "%s: regimes.%s", file, it->string);
		if (!kiln_name_ok(it->string) || strcmp(it->string, "default") == 0)
			return kiln_error_set(KILN_EINVAL, "%s: a regime name is a C identifier other than \"default\"",
					      where);
		if (kiln_target_regime_index(t, it->string) >= 0)
			return kiln_error_set(KILN_EINVAL, "%s: duplicate regime", where);
		if ((e = dup_into(&g->name, it->string)))
			return e;
		t->nregimes++;
		if (!(g->init = kiln_calloc(t->nbuffers, sizeof(char *))) ||
		    !(g->scalars = kiln_calloc(t->nscalars + 1, sizeof(double))) ||
		    !(g->scalar_set = kiln_calloc(t->nscalars + 1, sizeof(bool))))
			return KILN_ENOMEM;
		for (size_t i = 0; i < t->nscalars; i++)
			g->scalars[i] = t->scalars[i].value;
		if (!cJSON_IsObject(it))
			return kiln_error_set(KILN_EINVAL, "%s: expected an object {\"note\": ..., \"init\": {...}, "
					      "\"scalars\": {...}}", where);
		const char *note = "";
		char sub[WHERE_MAX + 16];
		if ((e = kiln_json_only_keys(it, keys, where)) || (e = kiln_json_opt_string(&note, it, "note", where)) ||
		    (e = dup_into(&g->note, note)))
			return e;
		const cJSON *init = cJSON_GetObjectItemCaseSensitive(it, "init"),
			    *sc = cJSON_GetObjectItemCaseSensitive(it, "scalars");
		snprintf(sub, sizeof(sub), "%s.init", where);
		if (init && (e = regime_inits(t, g, init, sub)))
			return e;
		snprintf(sub, sizeof(sub), "%s.scalars", where);
		if (sc && (e = regime_scalars(t, g, sc, sub)))
			return e;
		if (cJSON_GetArraySize(init) + cJSON_GetArraySize(sc) == 0)
			return kiln_error_set(KILN_EINVAL, "%s: overrides nothing (give \"init\" and/or \"scalars\")",
					      where);
	}
	return KILN_OK;
}

static kiln_err load_multistep(kiln_target *t, const cJSON *root, const char *file)
{
	const cJSON *obj = cJSON_GetObjectItemCaseSensitive(root, "multistep"), *sc, *it;
	kiln_multistep *ms = &t->multistep;
	char where[WHERE_MAX], sub[WHERE_MAX + 128];
	int64_t steps;
	kiln_err e;
	if (!obj)
		return KILN_OK;
	snprintf(where, sizeof(where), "%s: multistep", file);
	static const char *const keys[] = {"steps", "scalars", NULL};
	if (!cJSON_IsObject(obj))
		return kiln_error_set(KILN_EINVAL, "%s: expected {\"steps\": K, \"scalars\": {\"step\": [...]}}", where);
	if ((e = kiln_json_only_keys(obj, keys, where)) || (e = kiln_json_int(&steps, obj, "steps", where)))
		return e;
	if (steps < 3 || steps > MAX_STEPS)
		return kiln_error_set(KILN_EINVAL, "%s.steps: expected 3 to %d launches, got %lld", where, MAX_STEPS,
				      (long long)steps);
	if ((e = kiln_json_object(&sc, obj, "scalars", where)))
		return e;
	size_t cnt = (size_t)cJSON_GetArraySize(sc);
	if (!cnt)
		return kiln_error_set(KILN_EINVAL, "%s.scalars: expected at least one scalar that changes per step", where);
	ms->steps = (size_t)steps;
	if (!(ms->scalar_index = kiln_calloc(cnt, sizeof(size_t))) ||
	    !(ms->values = kiln_calloc(cnt * ms->steps, sizeof(double))))
		return KILN_ENOMEM;
	cJSON_ArrayForEach(it, sc) {
		snprintf(sub, sizeof(sub), "%s.scalars.%s", where, it->string);
		const kiln_scalar_spec *s = kiln_target_scalar(t, it->string);
		if (!s)
			return kiln_error_set(KILN_EINVAL, "%s: no scalar named \"%s\"", sub, it->string);
		if (!cJSON_IsArray(it) || (size_t)cJSON_GetArraySize(it) != ms->steps)
			return kiln_error_set(KILN_EINVAL, "%s: expected an array of %zu values (one per step)", sub, ms->steps);
		size_t j = ms->nscalars;
		for (size_t q = 0; q < j; q++)
			if (ms->scalar_index[q] == (size_t)(s - t->scalars))
				return kiln_error_set(KILN_EINVAL, "%s: given twice", sub);
		ms->scalar_index[j] = (size_t)(s - t->scalars);
		ms->nscalars++;
		for (size_t k = 0; k < ms->steps; k++) {
			char el[WHERE_MAX + 160];
			snprintf(el, sizeof(el), "%s[%zu]", sub, k);
			if ((e = scalar_value(&ms->values[k * cnt + j], cJSON_GetArrayItem(it, (int)k), s->dtype, el)))
				return e;
		}
	}
	return KILN_OK;
}

long kiln_target_regime_index(const kiln_target *t, const char *name)
{
	for (size_t r = 0; name && r < t->nregimes; r++)
		if (t->regimes[r].name && strcmp(t->regimes[r].name, name) == 0)
			return (long)r;
	return -1;
}

const char *kiln_target_regime_name(const kiln_target *t, long r)
{
	return r >= 0 && (size_t)r < t->nregimes ? t->regimes[r].name : "default";
}

/* Name of the last path component of dir (trailing slashes ignored) into out. */
static void base_name(char *out, size_t cap, const char *dir)
{
	size_t len = strlen(dir);
	while (len > 1 && dir[len - 1] == '/')
		len--;
	size_t start = len;
	while (start > 0 && dir[start - 1] != '/')
		start--;
	size_t n = len - start < cap - 1 ? len - start : cap - 1;
	memcpy(out, dir + start, n);
	out[n] = 0;
}

/* "reference": a built-in's name, or "reference.c" / "reference.py" in the target
 * folder; absent: the folder's reference.c or reference.py (exactly one of them). */
static kiln_err resolve_reference(kiln_target *t, const cJSON *root, const char *file)
{
	static const char *const files[2] = {"reference.c", "reference.py"};
	const char *s = NULL;
	kiln_err e;
	if ((e = kiln_json_opt_string(&s, root, "reference", file)))
		return e;
	if (!s) {
		bool have[2];
		for (int i = 0; i < 2; i++) {
			char *p = kiln_path_join(t->dir, files[i]);
			have[i] = p && kiln_path_exists(p);
			free(p);
		}
		if (have[0] == have[1])
			return kiln_error_set(KILN_EINVAL, "%s: reference: %s (name a built-in, \"reference.c\" or "
					      "\"reference.py\")", file,
					      have[0] ? "the folder has both reference.c and reference.py; say which"
						      : "missing, and the folder has no reference.c or reference.py");
		s = files[have[0] ? 0 : 1];
	}
	if ((e = dup_into(&t->reference, s)))
		return e;
	for (int i = 0; i < 2; i++) {
		if (strcmp(s, files[i]) != 0)
			continue;
		t->ref_kind = i == 0 ? KILN_REF_C : KILN_REF_PY;
		if (!(t->ref_path = kiln_path_join(t->dir, s)))
			return KILN_ENOMEM;
		if (!kiln_path_exists(t->ref_path))
			return kiln_error_set(KILN_EINVAL, "%s: reference: %s: no such file", file, t->ref_path);
		return KILN_OK;
	}
	if (!(t->ref_fn = kiln_reference_lookup(s)))
		return kiln_error_set(KILN_EINVAL, "%s: reference: no built-in reference named \"%s\" (or give "
				      "\"reference.c\" / \"reference.py\" in the target folder)", file, s);
	return KILN_OK;
}

kiln_err kiln_target_load(kiln_target **out, const char *dir)
{
	static const char *const keys[] = {"name", "family", "summary", "math", "symbols", "buffers",
					   "scalars", "tolerance", "traffic_bytes", "reference", "knobs",
					   "notes", "regimes", "multistep", "bench_weights", NULL};
	kiln_target *t = NULL;
	cJSON *root = NULL;
	char *file = NULL;
	names *ns = NULL;
	const char *s;
	kiln_err e = KILN_ENOMEM;
	*out = NULL;
	if (!(file = kiln_path_join(dir, "target.json")) || !(t = kiln_calloc(1, sizeof(*t))) ||
	    !(ns = kiln_calloc(1, sizeof(*ns))) || !(t->dir = kiln_strdup(dir)))
		goto done;
	if (!kiln_path_exists(file)) {
		e = kiln_error_set(KILN_ENOTFOUND, "%s: no such file (a target folder holds target.json, seed.cu, "
				   "launch.json)", file);
		goto done;
	}
	if ((e = kiln_json_parse_file(&root, file, 1u << 20)))
		goto done;
	if (!cJSON_IsObject(root)) {
		e = kiln_error_set(KILN_EINVAL, "%s: expected a JSON object at the top level", file);
		goto done;
	}
	if ((e = kiln_json_only_keys(root, keys, file)) || (e = need_string(&t->name, root, "name", file)))
		goto done;
	if (!kiln_name_ok(t->name)) {
		e = kiln_error_set(KILN_EINVAL, "%s: name: \"%s\" is not a C identifier", file, t->name);
		goto done;
	}
	char base[KILN_NAME_MAX * 4];
	base_name(base, sizeof(base), dir);
	if (strcmp(base, t->name) != 0) {
		e = kiln_error_set(KILN_EINVAL, "%s: name: \"%s\" must match its folder name \"%s\"", file, t->name, base);
		goto done;
	}
	if ((e = need_string(&t->family, root, "family", file)) ||
	    (e = need_string(&t->summary, root, "summary", file)) ||
	    (e = need_string(&t->math, root, "math", file)))
		goto done;
	if ((e = load_symbols(t, root, ns, file)) || (e = kiln_target_load_bench_weights(t, root, file)) ||
	    (e = load_buffers(t, root, ns, file)) ||
	    (e = load_scalars(t, root, ns, file)) || (e = load_knobs(t, root, ns, file)) ||
	    (e = load_tolerances(t, root, file)) || (e = load_regimes(t, root, file)) ||
	    (e = load_multistep(t, root, file)))
		goto done;
	if (t->nsymbols + t->nknobs + 1 > KILN_ENV_MAX) {
		e = kiln_error_set(KILN_EINVAL, "%s: symbols + knobs: at most %d names in all", file, KILN_ENV_MAX - 1);
		goto done;
	}
	const cJSON *traffic = cJSON_GetObjectItemCaseSensitive(root, "traffic_bytes");
	char where[WHERE_MAX];
	snprintf(where, sizeof(where), "%s: traffic_bytes", file);
	if (!traffic) {
		e = kiln_error_set(KILN_EINVAL, "%s: missing (the fewest bytes a kernel must move, e.g. \"28*n\")", where);
		goto done;
	}
	if ((e = kiln_json_expr(&t->traffic_bytes, traffic, where)) ||
	    (e = kiln_expr_check(t->traffic_bytes, ns->v, ns->nexpr, where)))
		goto done;
	if ((e = resolve_reference(t, root, file)))
		goto done;
	s = NULL;
	if ((e = kiln_json_opt_string(&s, root, "notes", file)) || (s && (e = dup_into(&t->notes, s))))
		goto done;
	e = KILN_ENOMEM;
	if (!(t->seed_path = kiln_path_join(dir, "seed.cu")) || !(t->launch_path = kiln_path_join(dir, "launch.json")))
		goto done;
	const char *missing = !kiln_path_exists(t->seed_path) ? t->seed_path
			    : !kiln_path_exists(t->launch_path) ? t->launch_path : NULL;
	if (missing) {
		e = kiln_error_set(KILN_EINVAL, "%s: missing (every target has a seed kernel and its launch plan)", missing);
		goto done;
	}
	*out = t;
	t = NULL;
	e = KILN_OK;
done:
	if (e == KILN_ENOMEM)
		kiln_error_set(KILN_ENOMEM, "%s: out of memory", file ? file : dir);
	cJSON_Delete(root);
	kiln_target_free(t);
	free(ns);
	free(file);
	return e;
}

bool kiln_targets_data_find(char *out, size_t cap, const char *installed_rel, const char *source_rel,
			    const char *probe)
{
	char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0) {
			if (n <= 0)
				continue;
			exe[n] = 0;
			char *slash = strrchr(exe, '/');
			if (!slash)
				continue;
			*slash = 0;
			snprintf(out, cap, "%s/../%s", exe, installed_rel);
		} else {
			snprintf(out, cap, "%s/%s", KILN_SOURCE_ROOT, source_rel);
		}
		char *p = kiln_path_join(out, probe);
		bool yes = p && kiln_path_exists(p);
		free(p);
		if (yes) {
			char real[4096];
			if (realpath(out, real))
				snprintf(out, cap, "%s", real);
			return true;
		}
	}
	return false;
}

static char dir_builtin[4096];

static void find_builtin(void)
{
	if (!kiln_targets_data_find(dir_builtin, sizeof dir_builtin, "share/kiln/targets", "targets", "adamw/target.json"))
		snprintf(dir_builtin, sizeof dir_builtin, "%s/targets", KILN_SOURCE_ROOT);
}

const char *kiln_targets_builtin_dir(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, find_builtin);
	return dir_builtin;
}

kiln_err kiln_targets_search_path(char ***out, size_t *n, const char *targets_dir)
{
	const char *env = getenv("KILN_TARGETS_DIR");
	char **v = kiln_calloc(2 + (env ? strlen(env) : 0) + 1, sizeof(char *));
	size_t k = 0;
	*out = NULL;
	*n = 0;
	if (!v)
		return kiln_error_set(KILN_ENOMEM, "out of memory");
	if (targets_dir && *targets_dir && !(v[k++] = kiln_strdup(targets_dir)))
		goto oom;
	for (const char *p = env; p && *p;) {
		size_t len = strcspn(p, ":");
		if (len && !(v[k++] = kiln_strndup(p, len)))
			goto oom;
		p += len + (p[len] == ':');
	}
	if (!(v[k++] = kiln_strdup(kiln_targets_builtin_dir())))
		goto oom;
	*out = v;
	*n = k;
	return KILN_OK;
oom:
	for (size_t i = 0; i < k; i++)
		free(v[i]);
	free(v);
	return kiln_error_set(KILN_ENOMEM, "out of memory");
}

kiln_err kiln_target_find(kiln_target **out, const char *name, const char *targets_dir)
{
	char **dirs = NULL;
	size_t nd = 0;
	kiln_err e;
	*out = NULL;
	if (!name || !*name)
		return kiln_error_set(KILN_EINVAL, "no target name given");
	if (strchr(name, '/'))
		return kiln_target_load(out, name);
	if ((e = kiln_targets_search_path(&dirs, &nd, targets_dir)))
		return e;
	e = KILN_ENOTFOUND;
	for (size_t i = 0; i < nd && e == KILN_ENOTFOUND; i++) {
		char *dir = kiln_path_join(dirs[i], name);
		char *file = dir ? kiln_path_join(dir, "target.json") : NULL;
		if (!file)
			e = kiln_error_set(KILN_ENOMEM, "out of memory");
		else if (kiln_path_exists(file))
			e = kiln_target_load(out, dir);
		free(file);
		free(dir);
	}
	if (e == KILN_ENOTFOUND) {
		kiln_buf b;
		kiln_buf_init(&b, 8192);
		for (size_t i = 0; i < nd; i++)
			(void)kiln_buf_printf(&b, "%s%s", i ? ", " : "", dirs[i]);
		kiln_error_set(KILN_ENOTFOUND, "no target named \"%s\" in %s (see `kiln targets`)", name,
			       b.data ? b.data : "");
		kiln_buf_free(&b);
	}
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	return e;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

kiln_err kiln_targets_list(char ***out, size_t *n, const char *targets_dir)
{
	const char *dir = targets_dir && *targets_dir ? targets_dir : kiln_targets_builtin_dir();
	char **v = NULL;
	size_t cnt = 0;
	kiln_err e = KILN_OK;
	*out = NULL;
	*n = 0;
	DIR *d = opendir(dir);
	if (!d)
		return kiln_error_set(KILN_EIO, "%s: cannot open the targets folder", dir);
	struct dirent *de;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char *sub = kiln_path_join(dir, de->d_name);
		char *file = sub ? kiln_path_join(sub, "target.json") : NULL;
		bool yes = file && kiln_path_exists(file);
		free(file);
		free(sub);
		if (!yes)
			continue;
		char **nv = kiln_realloc(v, (cnt + 1) * sizeof(*v));
		if (!nv || !(nv[cnt] = kiln_strdup(de->d_name))) {
			v = nv ? nv : v;
			e = kiln_error_set(KILN_ENOMEM, "out of memory listing %s", dir);
			break;
		}
		v = nv;
		cnt++;
	}
	closedir(d);
	if (e) {
		for (size_t i = 0; i < cnt; i++)
			free(v[i]);
		free(v);
		return e;
	}
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_str);
	*out = v;
	*n = cnt;
	return KILN_OK;
}

kiln_err kiln_target_sizes(kiln_env *out, const kiln_target *t, bool bench, size_t idx)
{
	size_t total = bench ? t->nbench_sizes : t->nverify_sizes;
	kiln_env_init(out);
	if (idx >= total)
		return kiln_error_set(KILN_EINVAL, "target %s: %s size %zu does not exist (it has %zu)", t->name,
				      bench ? "bench" : "verify", idx, total);
	for (size_t i = 0; i < t->nsymbols; i++) {
		const kiln_symbol *s = &t->symbols[i];
		const int64_t *v = bench ? s->bench : s->verify;
		size_t n = bench ? s->nbench : s->nverify;
		kiln_err e = kiln_env_set(out, s->name, v[n == 1 ? 0 : idx]);
		if (e)
			return e;
	}
	return KILN_OK;
}

kiln_err kiln_target_count(size_t *out, const kiln_target *t, const kiln_buffer_spec *b,
			   const kiln_env *sizes)
{
	char where[WHERE_MAX];
	size_t count = 1;
	*out = 0;
	for (size_t d = 0; d < b->ndim; d++) {
		int64_t v;
		snprintf(where, sizeof(where), "target %s: buffer %s: shape[%zu]", t->name, b->name, d);
		kiln_err e = kiln_expr_eval(&v, b->shape[d], sizes, where);
		if (e)
			return e;
		if (v < 0)
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\" is negative (%lld)", where, b->shape[d], (long long)v);
		if (__builtin_mul_overflow(count, (size_t)v, &count))
			return kiln_error_set(KILN_EOVERFLOW, "%s: element count overflows", where);
	}
	size_t bytes;
	if (__builtin_mul_overflow(count, kiln_dtype_size(b->dtype), &bytes))
		return kiln_error_set(KILN_EOVERFLOW, "target %s: buffer %s: byte size overflows", t->name, b->name);
	*out = count;
	return KILN_OK;
}

long kiln_target_buffer_index(const kiln_target *t, const char *name)
{
	for (size_t i = 0; name && i < t->nbuffers; i++)
		if (t->buffers[i].name && strcmp(t->buffers[i].name, name) == 0)
			return (long)i;
	return -1;
}

const kiln_buffer_spec *kiln_target_buffer(const kiln_target *t, const char *name)
{
	long i = kiln_target_buffer_index(t, name);
	return i < 0 ? NULL : &t->buffers[i];
}

const kiln_scalar_spec *kiln_target_scalar(const kiln_target *t, const char *name)
{
	for (size_t i = 0; name && i < t->nscalars; i++)
		if (strcmp(t->scalars[i].name, name) == 0)
			return &t->scalars[i];
	return NULL;
}

const kiln_tolerance *kiln_target_tolerance(const kiln_target *t, const char *buffer)
{
	for (size_t i = 0; buffer && i < t->ntolerances; i++)
		if (strcmp(t->tolerances[i].buffer, buffer) == 0)
			return &t->tolerances[i];
	return NULL;
}
