/* The seeded input generator: one kiln_rng seeded with the seed draws every buffer in
 * a fixed order (mask buffers that others are masked_by first, then the rest, each pass
 * in declaration order; out buffers draw nothing and stay zero), values drawn in double
 * and stored with kiln_dtype_store. Same (target, sizes, seed) -> same bytes on every
 * machine: only the RNG's integer stream, IEEE arithmetic, and for normal/logprob/
 * lognormal libm's log, cos and exp enter. */
#include "targets/targets_int.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char grammar[] =
	"expected normal(mu,sd), uniform(lo,hi), lognormal(mu,sd), logprob(scale), "
	"randint(lo,hi), mask(minfrac) or const(v)";

static const struct {
	const char *name;
	kiln_init_kind kind;
	int nargs;
} kinds[] = {
	{"normal", KILN_INIT_NORMAL, 2},   {"uniform", KILN_INIT_UNIFORM, 2},
	{"lognormal", KILN_INIT_LOGNORMAL, 2}, {"logprob", KILN_INIT_LOGPROB, 1},
	{"randint", KILN_INIT_RANDINT, 2}, {"mask", KILN_INIT_MASK, 1},
	{"const", KILN_INIT_CONST, 1},
};

kiln_err kiln_init_parse(kiln_init *out, const char *s, const char *where)
{
	const char *p = s;
	char fn[16];
	size_t n = 0;
	double args[3];
	int nargs = 0;
	while (isspace((unsigned char)*p))
		p++;
	while (isalpha((unsigned char)p[n]) && n + 1 < sizeof(fn))
		n++;
	memcpy(fn, p, n);
	fn[n] = 0;
	p += n;
	int k = -1;
	for (size_t i = 0; i < KILN_ARRAY_LEN(kinds); i++)
		if (strcmp(fn, kinds[i].name) == 0)
			k = (int)i;
	if (k < 0)
		return kiln_error_set(KILN_EINVAL, "%s: unknown distribution in \"%s\" (%s)", where, s, grammar);
	while (isspace((unsigned char)*p))
		p++;
	if (*p++ != '(')
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected '(' after %s", where, s, fn);
	for (;;) {
		char *end;
		while (isspace((unsigned char)*p))
			p++;
		double v = strtod(p, &end);
		if (end == p || !isfinite(v))
			return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected a finite number at \"%s\"", where,
					      s, p);
		if (nargs == (int)KILN_ARRAY_LEN(args))
			return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": too many arguments", where, s);
		args[nargs++] = v;
		p = end;
		while (isspace((unsigned char)*p))
			p++;
		if (*p == ',') {
			p++;
			continue;
		}
		break;
	}
	if (*p++ != ')')
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": expected ',' or ')'", where, s);
	while (isspace((unsigned char)*p))
		p++;
	if (*p)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": unexpected text after ')'", where, s);
	if (nargs != kinds[k].nargs)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": %s takes %d argument%s, got %d", where, s, fn,
				      kinds[k].nargs, kinds[k].nargs == 1 ? "" : "s", nargs);
	kiln_init in = {kinds[k].kind, args[0], nargs > 1 ? args[1] : 0.0};
	const char *bad = NULL;
	switch (in.kind) {
	case KILN_INIT_NORMAL:
	case KILN_INIT_LOGNORMAL:
		bad = in.b < 0 ? "sd must be >= 0" : NULL;
		break;
	case KILN_INIT_UNIFORM:
		bad = in.a > in.b ? "lo must be <= hi" : NULL;
		break;
	case KILN_INIT_LOGPROB:
		bad = in.a < 0 ? "scale must be >= 0" : NULL;
		break;
	case KILN_INIT_RANDINT:
		bad = in.a != floor(in.a) || in.b != floor(in.b) ? "lo and hi must be integers"
		    : in.a > in.b ? "lo must be <= hi"
		    : fabs(in.a) > 4503599627370496.0 || fabs(in.b) > 4503599627370496.0 ? "lo and hi must be within 2^52"
		    : NULL;
		break;
	case KILN_INIT_MASK:
		bad = in.a < 0 || in.a > 1 ? "minfrac must be in [0, 1]" : NULL;
		break;
	case KILN_INIT_CONST:
		break;
	}
	if (bad)
		return kiln_error_set(KILN_EINVAL, "%s: bad init \"%s\": %s", where, s, bad);
	*out = in;
	return KILN_OK;
}

void kiln_inputs_free(kiln_inputs *in)
{
	if (!in)
		return;
	for (size_t i = 0; i < in->n; i++)
		free(in->bufs[i].data);
	free(in->bufs);
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

static double draw(const kiln_init *in, kiln_rng *rng)
{
	switch (in->kind) {
	case KILN_INIT_NORMAL: return in->a + in->b * kiln_rng_normal(rng);
	case KILN_INIT_UNIFORM: return in->a + (in->b - in->a) * kiln_rng_uniform(rng);
	case KILN_INIT_LOGNORMAL: return exp(in->a + in->b * kiln_rng_normal(rng));
	case KILN_INIT_LOGPROB: return -in->a * fabs(kiln_rng_normal(rng));
	case KILN_INIT_RANDINT: return in->a + (double)kiln_rng_below(rng, (uint64_t)(in->b - in->a) + 1);
	case KILN_INIT_CONST: return in->a;
	case KILN_INIT_MASK: break;
	}
	return 0.0;
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

static kiln_err generate_one(kiln_inputs *in, const kiln_target *t, size_t i, kiln_rng *rng)
{
	const kiln_buffer_spec *b = &t->buffers[i];
	kiln_hostbuf *hb = &in->bufs[i];
	kiln_init init;
	char where[512];
	kiln_err e;
	if (b->role == KILN_ROLE_OUT || !b->init)
		return KILN_OK;
	snprintf(where, sizeof(where), "target %s: buffer %s: init", t->name, b->name);
	if ((e = kiln_init_parse(&init, b->init, where)))
		return e;
	if (init.kind == KILN_INIT_MASK) {
		int64_t cols;
		snprintf(where, sizeof(where), "target %s: buffer %s: shape[%zu]", t->name, b->name, b->ndim - 1);
		if ((e = kiln_expr_eval(&cols, b->shape[b->ndim - 1], &in->sizes, where)))
			return e;
		fill_mask(hb, (size_t)cols, init.a, rng);
	} else {
		for (size_t j = 0; j < hb->count; j++)
			kiln_dtype_store(b->dtype, hb->data, j, draw(&init, rng));
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

/* masks_only: only the buffers others are masked_by are allocated and drawn (they are
 * drawn first, so their bytes are those of the full draw); the rest keep count and bytes
 * with no data. */
static kiln_err generate(kiln_inputs **out, const kiln_target *t, const kiln_env *sizes, uint64_t seed,
			 bool masks_only)
{
	kiln_inputs *in = NULL;
	bool *is_mask = NULL;
	kiln_err e = KILN_ENOMEM;
	*out = NULL;
	if (!(in = kiln_calloc(1, sizeof(*in))) || !(in->bufs = kiln_calloc(t->nbuffers, sizeof(*in->bufs))) ||
	    !(is_mask = kiln_calloc(t->nbuffers, sizeof(bool))))
		goto done;
	in->sizes = *sizes;
	in->seed = seed;
	for (size_t i = 0; i < t->nbuffers; i++) {
		kiln_hostbuf *hb = &in->bufs[i];
		hb->spec = &t->buffers[i];
		in->n = i + 1;
		if ((e = kiln_target_count(&hb->count, t, hb->spec, sizes)))
			goto done;
		hb->bytes = hb->count * kiln_dtype_size(hb->spec->dtype);
		long m = t->buffers[i].masked_by ? kiln_target_buffer_index(t, t->buffers[i].masked_by) : -1;
		if (m >= 0)
			is_mask[m] = true;
	}
	for (size_t i = 0; i < in->n; i++) {
		kiln_hostbuf *hb = &in->bufs[i];
		if ((masks_only && !is_mask[i]) || (hb->data = kiln_calloc(hb->bytes ? hb->bytes : 1, 1)))
			continue;
		e = kiln_error_set(KILN_ENOMEM, "target %s: buffer %s: cannot allocate %zu bytes", t->name,
				   hb->spec->name, hb->bytes);
		goto done;
	}
	kiln_rng rng;
	kiln_rng_seed(&rng, seed);
	for (int pass = 0; pass < (masks_only ? 1 : 2); pass++)
		for (size_t i = 0; i < t->nbuffers; i++)
			if (is_mask[i] == (pass == 0) && (e = generate_one(in, t, i, &rng)))
				goto done;
	*out = in;
	in = NULL;
	e = KILN_OK;
done:
	free(is_mask);
	kiln_inputs_free(in);
	return e;
}

kiln_err kiln_inputs_generate(kiln_inputs **out, const kiln_target *t, const kiln_env *sizes,
			      uint64_t seed)
{
	return generate(out, t, sizes, seed, false);
}

kiln_err kiln_target_traffic_floor(double *out, const kiln_target *t, const kiln_env *sizes, uint64_t seed,
				   double declared)
{
	kiln_inputs *in = NULL;
	*out = declared;
	kiln_err e = generate(&in, t, sizes, seed, true);
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
	kiln_inputs_free(in);
	return e;
}
