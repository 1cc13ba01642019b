/* The seeded input generator: one kiln_rng seeded with the seed draws every buffer in
 * a fixed order (mask buffers that others are masked_by first, then the rest, each pass
 * in declaration order; out buffers draw nothing and stay zero), values drawn in double
 * and stored with kiln_dtype_store. Same (target, sizes, seed) -> same bytes on every
 * machine: only the RNG's integer stream, IEEE arithmetic, and for normal/logprob/
 * lognormal libm's log, cos and exp enter. A regime replaces some buffers' inits and
 * the scalars; multi-step cases redraw the `in` buffers per step (kiln_inputs_step). */
#include "targets/targets_int.h"

#include <ctype.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char grammar[] =
	"expected normal(mu,sd), uniform(lo,hi), lognormal(mu,sd), logprob(scale), "
	"randint(lo,hi), mask(minfrac), mask_holes(pvalid), const(v) or special(BASE, kind=p, ...)";

static const struct {
	const char *name;
	kiln_init_kind kind;
	int nargs;
} kinds[] = {
	{"normal", KILN_INIT_NORMAL, 2},   {"uniform", KILN_INIT_UNIFORM, 2},
	{"lognormal", KILN_INIT_LOGNORMAL, 2}, {"logprob", KILN_INIT_LOGPROB, 1},
	{"randint", KILN_INIT_RANDINT, 2}, {"mask", KILN_INIT_MASK, 1},
	{"const", KILN_INIT_CONST, 1},     {"mask_holes", KILN_INIT_MASK_HOLES, 1},
};

static const char *const special_names[KILN_SPECIAL_COUNT] = {
	"zero", "negzero", "denorm", "negtiny", "posinf", "neginf", "nan", "huge",
};

static const char *skip_space(const char *p)
{
	while (isspace((unsigned char)*p))
		p++;
	return p;
}

/* A function or kind name: letters, digits and '_' after a letter. */
static const char *read_name(char *fn, size_t cap, const char *p)
{
	size_t n = 0;
	while ((isalnum((unsigned char)p[n]) || p[n] == '_') && n + 1 < cap)
		n++;
	memcpy(fn, p, n);
	fn[n] = 0;
	return p + n;
}

static const char *check_args(const kiln_init *in)
{
	switch (in->kind) {
	case KILN_INIT_NORMAL:
	case KILN_INIT_LOGNORMAL:
		return in->b < 0 ? "sd must be >= 0" : NULL;
	case KILN_INIT_UNIFORM:
		return in->a > in->b ? "lo must be <= hi" : NULL;
	case KILN_INIT_LOGPROB:
		return in->a < 0 ? "scale must be >= 0" : NULL;
	case KILN_INIT_RANDINT:
		return in->a != floor(in->a) || in->b != floor(in->b) ? "lo and hi must be integers"
		     : in->a > in->b ? "lo must be <= hi"
		     : fabs(in->a) > 4503599627370496.0 || fabs(in->b) > 4503599627370496.0 ? "lo and hi must be within 2^52"
		     : NULL;
	case KILN_INIT_MASK:
		return in->a < 0 || in->a > 1 ? "minfrac must be in [0, 1]" : NULL;
	case KILN_INIT_MASK_HOLES:
		return in->a < 0 || in->a > 1 ? "pvalid must be in [0, 1]" : NULL;
	case KILN_INIT_CONST:
		return NULL;
	}
	return NULL;
}

/* One plain distribution "fn(a, b)" at *pp; advances *pp past ')'. */
static kiln_err parse_plain(kiln_init *out, const char **pp, const char *s, const char *where)
{
	const char *p = skip_space(*pp);
	char fn[16];
	double args[3];
	int nargs = 0;
	p = read_name(fn, sizeof(fn), p);
	int k = -1;
	for (size_t i = 0; i < KILN_ARRAY_LEN(kinds); i++)
		if (strcmp(fn, kinds[i].name) == 0)
			k = (int)i;
	if (k < 0)
		return kiln_error_set(KILN_EINVAL, "%s: unknown distribution in \"%s\" (%s)", where, s, grammar);
	p = skip_space(p);
	if (*p++ != '(')
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected '(' after %s", where, s, fn);
	for (;;) {
		char *end;
		p = skip_space(p);
		double v = strtod(p, &end);
		if (end == p || !isfinite(v))
			return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected a finite number at \"%s\"", where,
					      s, p);
		if (nargs == (int)KILN_ARRAY_LEN(args))
			return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": too many arguments", where, s);
		args[nargs++] = v;
		p = skip_space(end);
		if (*p == ',') {
			p++;
			continue;
		}
		break;
	}
	if (*p++ != ')')
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected ',' or ')'", where, s);
	if (nargs != kinds[k].nargs)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": %s takes %d argument%s, got %d", where, s, fn,
				      kinds[k].nargs, kinds[k].nargs == 1 ? "" : "s", nargs);
	memset(out, 0, sizeof(*out));
	out->kind = kinds[k].kind;
	out->a = args[0];
	out->b = nargs > 1 ? args[1] : 0.0;
	const char *bad = check_args(out);
	if (bad)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": %s", where, s, bad);
	*pp = p;
	return KILN_OK;
}

/* special(BASE, kind=p, ...) after "special": the base then the kinds. */
static kiln_err parse_special(kiln_init *out, const char **pp, const char *s, const char *where)
{
	const char *p = skip_space(*pp);
	if (*p++ != '(')
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected '(' after special", where, s);
	char fn[16];
	read_name(fn, sizeof(fn), skip_space(p));
	if (strcmp(fn, "special") == 0)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": special(...) cannot wrap another special(...)",
				      where, s);
	kiln_err e = parse_plain(out, &p, s, where);
	if (e)
		return e;
	if (out->kind == KILN_INIT_MASK || out->kind == KILN_INIT_MASK_HOLES)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": special(...) takes a value distribution, not a mask",
				      where, s);
	out->special = true;
	double total = 0;
	int nkinds = 0;
	for (p = skip_space(p); *p == ','; p = skip_space(p)) {
		p = read_name(fn, sizeof(fn), skip_space(p + 1));
		int k = -1;
		for (int i = 0; i < KILN_SPECIAL_COUNT; i++)
			if (strcmp(fn, special_names[i]) == 0)
				k = i;
		if (k < 0)
			return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": unknown special kind \"%s\" (expected zero, "
					      "negzero, denorm, negtiny, posinf, neginf, nan or huge)", where, s, fn);
		p = skip_space(p);
		char *end;
		double v = *p == '=' ? strtod(p + 1, &end) : NAN;
		if (*p != '=' || end == p + 1 || !(v >= 0 && v <= 1))
			return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected %s=P with P in [0, 1]", where, s,
					      fn);
		out->p[k] = v;
		total += v;
		nkinds++;
		p = end;
	}
	if (*p++ != ')')
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected ', kind=p' or ')'", where, s);
	if (!nkinds || total > 1)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": special needs at least one kind=p and the "
				      "probabilities must sum to at most 1", where, s);
	*pp = p;
	return KILN_OK;
}

kiln_err kiln_init_parse(kiln_init *out, const char *s, const char *where)
{
	const char *p = skip_space(s);
	char fn[16];
	kiln_init in;
	const char *after = read_name(fn, sizeof(fn), p);
	kiln_err e = strcmp(fn, "special") == 0 ? parse_special(&in, &after, s, where) : parse_plain(&in, &p, s, where);
	if (e)
		return e;
	if (in.special)
		p = after;
	if (*skip_space(p))
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": unexpected text after ')'", where, s);
	*out = in;
	return KILN_OK;
}

bool kiln_init_is_mask(const kiln_init *in)
{
	if (in->special)
		return false;
	return in->kind == KILN_INIT_MASK || in->kind == KILN_INIT_MASK_HOLES ||
	       (in->kind == KILN_INIT_CONST && (in->a == 0 || in->a == 1)) ||
	       (in->kind == KILN_INIT_RANDINT && in->a >= 0 && in->b <= 1);
}

void kiln_inputs_free(kiln_inputs *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n; i++)
		free(in->bufs[i].data);
	free(in->bufs);
	free(in->scalars);
	free(in);
}

/* mask(minfrac): rows of `cols` elements, each a prefix of ones of random length in
 * [max(1, ceil(minfrac*cols)), cols], then zeros. */
static void fill_mask(kiln_hostbuf *hb, size_t cols, double minfrac, kiln_rng *rng)
{
	if (cols == 0)
		return;
	size_t rows = hb->count / cols;
	double lo_d = ceil(minfrac * (double)cols);
	size_t lo = lo_d < 1 ? 1 : lo_d > (double)cols ? cols : (size_t)lo_d;
	for (size_t r = 0; r < rows; r++) {
		size_t len = lo + (size_t)kiln_rng_below(rng, (uint64_t)(cols - lo + 1));
		for (size_t j = 0; j < cols; j++)
			kiln_dtype_store(hb->spec->dtype, hb->data, r * cols + j, j < len ? 1.0 : 0.0);
	}
}

/* mask_holes(pvalid): every element valid with probability pvalid, holes anywhere. With
 * at least 4 rows, four distinct rows drawn at random are forced: all masked, all
 * valid, a single valid element, and left padding (zeros, then ones to the end). */
static void fill_mask_holes(kiln_hostbuf *hb, size_t cols, double pvalid, kiln_rng *rng)
{
	kiln_dtype dt = hb->spec->dtype;
	for (size_t i = 0; i < hb->count; i++)
		kiln_dtype_store(dt, hb->data, i, kiln_rng_uniform(rng) < pvalid ? 1.0 : 0.0);
	size_t rows = cols ? hb->count / cols : 0;
	if (rows < 4)
		return;
	size_t pick[4];
	for (size_t k = 0; k < 4; k++) {
		bool dup;
		do {
			pick[k] = (size_t)kiln_rng_below(rng, rows);
			dup = false;
			for (size_t j = 0; j < k; j++)
				dup = dup || pick[j] == pick[k];
		} while (dup);
	}
	size_t one = (size_t)kiln_rng_below(rng, cols);
	size_t pad = cols > 1 ? 1 + (size_t)kiln_rng_below(rng, cols - 1) : 0;
	for (size_t j = 0; j < cols; j++) {
		kiln_dtype_store(dt, hb->data, pick[0] * cols + j, 0.0);
		kiln_dtype_store(dt, hb->data, pick[1] * cols + j, 1.0);
		kiln_dtype_store(dt, hb->data, pick[2] * cols + j, j == one ? 1.0 : 0.0);
		kiln_dtype_store(dt, hb->data, pick[3] * cols + j, j >= pad ? 1.0 : 0.0);
	}
}

static double draw(const kiln_init *in, kiln_rng *rng)
{
	switch (in->kind) {
	case KILN_INIT_NORMAL: return in->a + in->b * kiln_rng_normal(rng);
	case KILN_INIT_UNIFORM: return in->a + (in->b - in->a) * kiln_rng_uniform(rng);
	case KILN_INIT_LOGNORMAL: return exp(in->a + in->b * kiln_rng_normal(rng));
	case KILN_INIT_LOGPROB: return -in->a * fabs(kiln_rng_normal(rng));
	case KILN_INIT_RANDINT: return in->a + (double)kiln_rng_below(rng, (uint64_t)(in->b - in->a) + 1);
	case KILN_INIT_CONST: return in->a;
	case KILN_INIT_MASK:
	case KILN_INIT_MASK_HOLES: break;
	}
	return 0.0;
}

/* The dtype's smallest normal exponent, smallest denormal exponent and mantissa bits. */
static void float_shape(kiln_dtype dt, int *emin, int *dmin, int *mant)
{
	switch (dt) {
	case KILN_F16: *emin = -14; *dmin = -24; *mant = 10; return;
	case KILN_BF16: *emin = -126; *dmin = -133; *mant = 7; return;
	case KILN_F64: *emin = -1022; *dmin = -1074; *mant = 52; return;
	default: *emin = -126; *dmin = -149; *mant = 23; return;
	}
}

/* One special value of kind k, in dtype dt's ranges. */
static double special_value(int k, kiln_dtype dt, kiln_rng *rng)
{
	int emin, dmin, mant;
	float_shape(dt, &emin, &dmin, &mant);
	double sign = kiln_rng_below(rng, 2) ? -1.0 : 1.0;
	uint64_t m = 1 + kiln_rng_below(rng, (UINT64_C(1) << (mant > 40 ? 40 : mant)) - 1);
	switch (k) {
	case KILN_SPECIAL_ZERO: return 0.0;
	case KILN_SPECIAL_NEGZERO: return -0.0;
	case KILN_SPECIAL_DENORM: return sign * ldexp((double)m, dmin);
	case KILN_SPECIAL_NEGTINY: /* half denormal, half a normal within 2^8 of the smallest */
		if (sign < 0)
			return -ldexp((double)m, dmin);
		return -ldexp(1.0 + kiln_rng_uniform(rng), emin + (int)kiln_rng_below(rng, 8));
	case KILN_SPECIAL_POSINF: return INFINITY;
	case KILN_SPECIAL_NEGINF: return -INFINITY;
	case KILN_SPECIAL_NAN: return NAN;
	default: return sign * 1e30;
	}
}

/* A draw of init `in` for an element of dtype dt: special kinds replace the base value
 * with their probabilities. */
static double draw_value(const kiln_init *in, kiln_dtype dt, kiln_rng *rng)
{
	double v = draw(in, rng);
	if (!in->special)
		return v;
	double u = kiln_rng_uniform(rng), acc = 0;
	for (int k = 0; k < KILN_SPECIAL_COUNT; k++) {
		acc += in->p[k];
		if (in->p[k] > 0 && u < acc)
			return special_value(k, dt, rng);
	}
	return v;
}

/* Where the mask is 0, garbage a kernel must never let through: NaN, +Inf, -Inf or
 * +-1e38 (finite in f32 and bf16, Inf in f16), one draw each. */
static void apply_garbage(kiln_hostbuf *hb, const kiln_hostbuf *mask, kiln_rng *rng)
{
	for (size_t i = 0; i < hb->count; i++) {
		if (kiln_dtype_load(mask->spec->dtype, mask->data, i) != 0.0)
			continue;
		double g;
		switch (kiln_rng_below(rng, 4)) {
		case 0: g = NAN; break;
		case 1: g = INFINITY; break;
		case 2: g = -INFINITY; break;
		default: g = kiln_rng_below(rng, 2) ? 1e38 : -1e38; break;
		}
		kiln_dtype_store(hb->spec->dtype, hb->data, i, g);
	}
}

/* The init string of buffer i under regime r (-1 = the buffer's own). */
static const char *init_of(const kiln_target *t, size_t i, long r)
{
	if (r >= 0 && (size_t)r < t->nregimes && t->regimes[r].init && t->regimes[r].init[i])
		return t->regimes[r].init[i];
	return t->buffers[i].init;
}

static kiln_err generate_one(kiln_inputs *in, const kiln_target *t, size_t i, kiln_rng *rng)
{
	const kiln_buffer_spec *b = &t->buffers[i];
	kiln_hostbuf *hb = &in->bufs[i];
	const char *text = init_of(t, i, in->regime);
	kiln_init init;
	char where[512];
	kiln_err e;
	if (b->role == KILN_ROLE_OUT || !text)
		return KILN_OK;
	snprintf(where, sizeof(where), "target %s: buffer %s: init", t->name, b->name);
	if ((e = kiln_init_parse(&init, text, where)))
		return e;
	if (init.kind == KILN_INIT_MASK || init.kind == KILN_INIT_MASK_HOLES) {
		int64_t cols;
		snprintf(where, sizeof(where), "target %s: buffer %s: shape[%zu]", t->name, b->name, b->ndim - 1);
		if ((e = kiln_expr_eval(&cols, b->shape[b->ndim - 1], &in->sizes, where)))
			return e;
		if (init.kind == KILN_INIT_MASK)
			fill_mask(hb, (size_t)cols, init.a, rng);
		else
			fill_mask_holes(hb, (size_t)cols, init.a, rng);
	} else {
		for (size_t j = 0; j < hb->count; j++)
			kiln_dtype_store(b->dtype, hb->data, j, draw_value(&init, b->dtype, rng));
	}
	if (b->masked_by) {
		long m = kiln_target_buffer_index(t, b->masked_by);
		if (m < 0 || in->bufs[m].count != hb->count)
			return kiln_error_set(KILN_EINVAL, "target %s: buffer %s: masked_by \"%s\" is not a buffer of the same size",
					      t->name, b->name, b->masked_by);
		apply_garbage(hb, &in->bufs[m], rng);
	}
	return KILN_OK;
}

typedef enum draw_what { DRAW_ALL, DRAW_IN, DRAW_MASKS } draw_what;

/* is_mask[i]: buffer i is the mask some buffer is masked_by. */
static kiln_err mask_flags(bool *is_mask, size_t cap, const kiln_target *t)
{
	if (t->nbuffers > cap)
		return kiln_error_set(KILN_EINVAL, "target %s: at most %zu buffers", t->name, cap);
	memset(is_mask, 0, cap * sizeof(*is_mask));
	for (size_t i = 0; i < t->nbuffers; i++) {
		long m = t->buffers[i].masked_by ? kiln_target_buffer_index(t, t->buffers[i].masked_by) : -1;
		if (m >= 0)
			is_mask[m] = true;
	}
	return KILN_OK;
}

/* Draws buffers from seed: the masks that others are masked_by first, then the rest, in
 * declaration order (DRAW_IN: in buffers only; DRAW_MASKS: the masks only, with the
 * bytes the full draw gives them). */
static kiln_err draw_all(kiln_inputs *in, const kiln_target *t, uint64_t seed, draw_what what)
{
	bool is_mask[256];
	kiln_rng rng;
	kiln_err e;
	if ((e = mask_flags(is_mask, KILN_ARRAY_LEN(is_mask), t)))
		return e;
	kiln_rng_seed(&rng, seed);
	for (int pass = 0; pass < (what == DRAW_MASKS ? 1 : 2); pass++)
		for (size_t i = 0; i < t->nbuffers; i++)
			if (is_mask[i] == (pass == 0) && (what != DRAW_IN || t->buffers[i].role == KILN_ROLE_IN) &&
			    (e = generate_one(in, t, i, &rng)))
				return e;
	return KILN_OK;
}

/* in->scalars = the regime's values (the target's for the default). */
static void regime_scalars(kiln_inputs *in, const kiln_target *t)
{
	for (size_t s = 0; s < t->nscalars; s++)
		in->scalars[s] = in->regime >= 0 ? t->regimes[in->regime].scalars[s] : t->scalars[s].value;
}

/* masks_only: only the masks are allocated and drawn; the rest keep count and bytes with
 * no data (the traffic floor needs nothing else). */
static kiln_err generate(kiln_inputs **out, const kiln_target *t, const kiln_env *sizes, uint64_t seed,
			 long regime, bool masks_only)
{
	kiln_inputs *in = NULL;
	kiln_err e = KILN_ENOMEM;
	*out = NULL;
	if (regime < -1 || regime >= (long)t->nregimes)
		return kiln_error_set(KILN_EINVAL, "target %s: regime %ld does not exist (it has %zu)", t->name, regime,
				      t->nregimes);
	if (!(in = kiln_calloc(1, sizeof(*in))) || !(in->bufs = kiln_calloc(t->nbuffers, sizeof(*in->bufs))) ||
	    !(in->scalars = kiln_calloc(t->nscalars + 1, sizeof(double))))
		goto done;
	in->sizes = *sizes;
	in->seed = seed;
	in->regime = regime;
	in->nscalars = t->nscalars;
	regime_scalars(in, t);
	for (size_t i = 0; i < t->nbuffers; i++) {
		kiln_hostbuf *hb = &in->bufs[i];
		hb->spec = &t->buffers[i];
		in->n = i + 1;
		if ((e = kiln_target_count(&hb->count, t, hb->spec, sizes)))
			goto done;
		hb->bytes = hb->count * kiln_dtype_size(hb->spec->dtype);
		if (masks_only)
			continue;
		if (!(hb->data = kiln_calloc(hb->bytes ? hb->bytes : 1, 1))) {
			e = kiln_error_set(KILN_ENOMEM, "target %s: buffer %s: cannot allocate %zu bytes", t->name,
					   hb->spec->name, hb->bytes);
			goto done;
		}
	}
	if (masks_only) {
		bool is_mask[256];
		if ((e = mask_flags(is_mask, KILN_ARRAY_LEN(is_mask), t)))
			goto done;
		for (size_t i = 0; i < in->n; i++)
			if (is_mask[i] && !(in->bufs[i].data = kiln_calloc(in->bufs[i].bytes ? in->bufs[i].bytes : 1, 1))) {
				e = kiln_error_set(KILN_ENOMEM, "target %s: buffer %s: cannot allocate %zu bytes", t->name,
						   in->bufs[i].spec->name, in->bufs[i].bytes);
				goto done;
			}
	}
	if ((e = draw_all(in, t, seed, masks_only ? DRAW_MASKS : DRAW_ALL)))
		goto done;
	*out = in;
	in = NULL;
	e = KILN_OK;
done:
	kiln_inputs_free(in);
	return e;
}

kiln_err kiln_inputs_generate(kiln_inputs **out, const kiln_target *t, const kiln_env *sizes,
			      uint64_t seed)
{
	return generate(out, t, sizes, seed, -1, false);
}

kiln_err kiln_inputs_generate_regime(kiln_inputs **out, const kiln_target *t, const kiln_env *sizes,
				     uint64_t seed, long regime)
{
	return generate(out, t, sizes, seed, regime, false);
}

kiln_err kiln_inputs_step(kiln_inputs *in, const kiln_target *t, size_t k)
{
	const kiln_multistep *ms = &t->multistep;
	if (k >= ms->steps)
		return kiln_error_set(KILN_EINVAL, "target %s: multi-step step %zu does not exist (it has %zu)", t->name, k,
				      ms->steps);
	regime_scalars(in, t);
	for (size_t j = 0; j < ms->nscalars; j++)
		in->scalars[ms->scalar_index[j]] = ms->values[k * ms->nscalars + j];
	if (k == 0)
		return KILN_OK;
	/* fresh gradients: every `in` buffer from its own stream per step */
	return draw_all(in, t, in->seed + 0x9e3779b97f4a7c15ull * k, DRAW_IN);
}

/* The floor is the same for every candidate of a run (one seed, the bench sizes) and
 * drawing the masks of a 4M-token size costs more than modeling it: floors are memoized
 * per (target folder, sizes, seed, declared bytes), and kiln run warms the memo before it
 * forks its evaluation children (kiln_target_floors_warm), which inherit it. */
#define FLOOR_MEMO 16
typedef struct floor_memo {
	char dir[256];
	kiln_env sizes;
	uint64_t seed;
	double declared, floor;
} floor_memo;
static floor_memo floor_memo_v[FLOOR_MEMO];
static size_t floor_memo_n;
static pthread_mutex_t floor_memo_lock = PTHREAD_MUTEX_INITIALIZER;

static bool floor_memo_get(double *out, const kiln_target *t, const kiln_env *sizes, uint64_t seed, double declared)
{
	bool hit = false;
	pthread_mutex_lock(&floor_memo_lock);
	for (size_t i = 0; !hit && i < floor_memo_n; i++) {
		const floor_memo *m = &floor_memo_v[i];
		hit = m->seed == seed && m->declared == declared && strcmp(m->dir, t->dir ? t->dir : "") == 0 &&
		      m->sizes.n == sizes->n && memcmp(m->sizes.values, sizes->values, sizes->n * sizeof(int64_t)) == 0;
		if (hit)
			*out = m->floor;
	}
	pthread_mutex_unlock(&floor_memo_lock);
	return hit;
}

static void floor_memo_put(const kiln_target *t, const kiln_env *sizes, uint64_t seed, double declared, double floor)
{
	if (t->dir && strlen(t->dir) >= sizeof(floor_memo_v[0].dir))
		return;
	pthread_mutex_lock(&floor_memo_lock);
	floor_memo *m = &floor_memo_v[floor_memo_n < FLOOR_MEMO ? floor_memo_n++ : (size_t)(seed % FLOOR_MEMO)];
	snprintf(m->dir, sizeof(m->dir), "%s", t->dir ? t->dir : "");
	m->sizes = *sizes;
	m->seed = seed;
	m->declared = declared;
	m->floor = floor;
	pthread_mutex_unlock(&floor_memo_lock);
}

kiln_err kiln_target_floors_warm(const kiln_target *t, uint64_t seed)
{
	for (size_t k = 0; k < t->nbench_sizes; k++) {
		kiln_env env;
		int64_t declared;
		double floor;
		kiln_err e = kiln_target_sizes(&env, t, true, k);
		if (e || (e = kiln_expr_eval(&declared, t->traffic_bytes, &env, "traffic_bytes")) ||
		    (e = kiln_target_traffic_floor(&floor, t, &env, seed, (double)declared)))
			return e;
	}
	return KILN_OK;
}

kiln_err kiln_target_traffic_floor(double *out, const kiln_target *t, const kiln_env *sizes, uint64_t seed,
				   double declared)
{
	kiln_inputs *in = NULL;
	*out = declared;
	if (floor_memo_get(out, t, sizes, seed, declared))
		return KILN_OK;
	kiln_err e = generate(&in, t, sizes, seed, -1, true);
	for (size_t i = 0; !e && i < in->n; i++) {
		const kiln_buffer_spec *b = in->bufs[i].spec;
		long m = b->masked_by ? kiln_target_buffer_index(t, b->masked_by) : -1;
		if (m < 0 || !in->bufs[m].data || in->bufs[m].count != in->bufs[i].count)
			continue;
		size_t off = 0;
		for (size_t j = 0; j < in->bufs[m].count; j++)
			off += kiln_dtype_load(in->bufs[m].spec->dtype, in->bufs[m].data, j) == 0.0;
		/* an inout buffer is read and written: both may be skipped where masked */
		*out -= (double)off * (double)kiln_dtype_size(b->dtype) * (b->role == KILN_ROLE_INOUT ? 2.0 : 1.0);
	}
	if (!e && *out < 0)
		*out = 0;
	if (!e)
		floor_memo_put(t, sizes, seed, declared, *out);
	kiln_inputs_free(in);
	return e;
}
