/* Unit tests of the built-in float64 references (targets/<name>/reference.c): each one
 * run through kiln_reference_run on tiny hand-made inputs of its real target and checked
 * against values worked out by hand (pinned to 1e-12) or by an independent formula:
 * AdamW one step, Lion's sign and tie slack, the bitsandbytes code maps and one 8-bit
 * block round trip, SCALE's zero-row floor, and the masked ratio kernels with garbage. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "targets/references.h"

/* ---- helpers ---- */

/* One buffer's values for make_inputs. */
typedef struct fill {
	const char *name;
	const double *v; /* count values, stored in the buffer's dtype */
} fill;

/* An input set of target t at the given sizes (names/values pairs) filled from `fills`;
 * buffers not named stay zero. */
static kiln_inputs *make_inputs(const kiln_target *t, const char *const *sym, const int64_t *val, size_t nsym,
				const fill *fills, size_t nfills)
{
	kiln_inputs *in = kiln_calloc(1, sizeof(*in));
	assert_non_null(in);
	kiln_env_init(&in->sizes);
	for (size_t i = 0; i < nsym; i++)
		assert_int_equal(kiln_env_set(&in->sizes, sym[i], val[i]), KILN_OK);
	in->bufs = kiln_calloc(t->nbuffers, sizeof(kiln_hostbuf));
	assert_non_null(in->bufs);
	in->n = t->nbuffers;
	for (size_t i = 0; i < t->nbuffers; i++) {
		kiln_hostbuf *hb = &in->bufs[i];
		hb->spec = &t->buffers[i];
		assert_int_equal(kiln_target_count(&hb->count, t, hb->spec, &in->sizes), KILN_OK);
		hb->bytes = hb->count * kiln_dtype_size(hb->spec->dtype);
		hb->data = kiln_calloc(hb->count ? hb->count : 1, kiln_dtype_size(hb->spec->dtype));
		assert_non_null(hb->data);
		for (size_t f = 0; f < nfills; f++)
			if (strcmp(fills[f].name, hb->spec->name) == 0)
				for (size_t j = 0; j < hb->count; j++)
					kiln_dtype_store(hb->spec->dtype, hb->data, j, fills[f].v[j]);
	}
	return in;
}

static kiln_target *load(const char *name)
{
	kiln_target *t = NULL;
	kiln_err e = kiln_target_find(&t, name, NULL);
	if (e)
		fail_msg("loading target %s: %s", name, kiln_error_last());
	return t;
}

static kiln_refdata *run(const kiln_target *t, const kiln_inputs *in)
{
	kiln_refdata *r = NULL;
	if (kiln_reference_run(&r, t, in))
		fail_msg("reference %s: %s", t->name, kiln_error_last());
	return r;
}

static const double *vals(const kiln_refdata *r, const kiln_target *t, const char *name)
{
	long i = kiln_target_buffer_index(t, name);
	assert_true(i >= 0);
	return r->values[i];
}

static const double *slack(const kiln_refdata *r, const kiln_target *t, const char *name)
{
	long i = kiln_target_buffer_index(t, name);
	assert_true(i >= 0);
	assert_non_null(r->slack[i]);
	return r->slack[i];
}

static void near(double got, double want, double rtol, const char *what, size_t i)
{
	if (!(fabs(got - want) <= rtol * fabs(want) + 1e-300) && !(isnan(got) && isnan(want)))
		fail_msg("%s[%zu]: got %.17g, want %.17g", what, i, got, want);
}

static float f32(double x)
{
	return (float)x;
}

static void set_scalar(kiln_target *t, const char *name, double v)
{
	for (size_t i = 0; i < t->nscalars; i++)
		if (strcmp(t->scalars[i].name, name) == 0) {
			t->scalars[i].value = v;
			return;
		}
	fail_msg("no scalar %s", name);
}

/* ---- registry ---- */

/* A built-in target is its folder (README "Adding a built-in target"): the folders of
 * targets/ with a target.json (the list `kiln targets` prints) are exactly the registry's
 * names, in order, and each loads with the registry's function as its reference. */
static void test_references__lookup(void **state)
{
	(void)state;
	const char *root = getenv("KILN_SOURCE_ROOT");
	char *dir = kiln_asprintf("%s/targets", root ? root : ".");
	char **names = NULL;
	size_t n = 0, i = 0;
	assert_int_equal(kiln_targets_list(&names, &n, dir), KILN_OK);
	assert_true(n >= 9);
	for (; i < n && kiln_ref_builtins[i].name; i++) {
		if (strcmp(names[i], kiln_ref_builtins[i].name) != 0)
			fail_msg("folder targets/%s vs registry entry %s", names[i], kiln_ref_builtins[i].name);
		assert_non_null(kiln_ref_builtins[i].fn);
		assert_ptr_equal(kiln_reference_lookup(names[i]), kiln_ref_builtins[i].fn);
		kiln_target *t = load(names[i]);
		assert_ptr_equal(t->ref_fn, kiln_ref_builtins[i].fn);
		kiln_target_free(t);
	}
	if (i < n)
		fail_msg("targets/%s has a target.json but no registered reference", names[i]);
	if (kiln_ref_builtins[i].name)
		fail_msg("reference %s is registered but targets/ has no such folder", kiln_ref_builtins[i].name);
	for (i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(dir);
	assert_null(kiln_reference_lookup("adamw2"));
	assert_null(kiln_reference_lookup(""));
	assert_null(kiln_reference_lookup(NULL));
}

/* A reference run against a target that lacks its names is an error naming the name. */
static void test_references__wrong_target(void **state)
{
	(void)state;
	kiln_target *t = load("adamw");
	static const char *sym[] = {"n"};
	static const int64_t val[] = {2};
	kiln_inputs *in = make_inputs(t, sym, val, 1, NULL, 0);
	t->ref_fn = kiln_reference_lookup("ratio_token");
	kiln_refdata *r = NULL;
	assert_int_equal(kiln_reference_run(&r, t, in), KILN_EINVAL);
	assert_null(r);
	assert_non_null(strstr(kiln_error_last(), "symbol \"B\""));
	t->ref_fn = kiln_reference_lookup("adamw_bf16");
	assert_int_equal(kiln_reference_run(&r, t, in), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "buffer \"master\""));
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* ---- optimizers ---- */

/* Two elements, worked out by hand with f32-rounded lr 1e-3, beta1 0.9, beta2 0.999,
 * eps 1e-8, wd 0.01, step 10 (see the comment for element 1). */
static void test_references__adamw_one_step(void **state)
{
	(void)state;
	kiln_target *t = load("adamw");
	static const char *sym[] = {"n"};
	static const int64_t val[] = {2};
	const double p[] = {1.0, -0.5}, g[] = {0.125, -0.25}, m[] = {0.0078125, 0}, v[] = {0.0009765625, 0};
	const fill fills[] = {{"p", p}, {"g", g}, {"m", m}, {"v", v}};
	kiln_inputs *in = make_inputs(t, sym, val, 1, fills, 4);
	kiln_refdata *r = run(t, in);
	/* element 1: p = -0.5 + 5e-6; m = 0.1*-0.25; v = 0.001*0.0625; denom = sqrt(6.25e-5)/
	 * sqrt(1-0.999^10) = 0.07926; p -= 1e-3/(1-0.9^10) * m/denom -> -0.49951057 */
	const double want_p[] = {0.9998949675220025, -0.49951057359084794};
	const double want_m[] = {0.019531252793967724, -0.025000005960464478};
	const double want_v[] = {0.0009912107489071786, 6.249919533729553e-05};
	for (size_t i = 0; i < 2; i++) {
		near(vals(r, t, "p")[i], want_p[i], 1e-12, "p", i);
		near(vals(r, t, "m")[i], want_m[i], 1e-12, "m", i);
		near(vals(r, t, "v")[i], want_v[i], 1e-12, "v", i);
		/* slack: 1e-5 of the step that was taken (p_old*(1-lr*wd) - p_new) */
		double p_old = i == 0 ? 1.0 : -0.5;
		double stepped = p_old - (double)f32(1e-3) * (double)f32(0.01) * p_old - want_p[i];
		near(slack(r, t, "p")[i], 1e-5 * fabs(stepped), 1e-9, "p slack", i);
	}
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* adamw_bf16 moves the fp32 master exactly as adamw moves p and writes p = bf16(master). */
static void test_references__adamw_bf16_master(void **state)
{
	(void)state;
	kiln_target *t = load("adamw_bf16");
	static const char *sym[] = {"n"};
	static const int64_t val[] = {2};
	const double master[] = {1.0, -0.5}, g[] = {0.125, -0.25}, m[] = {0.0078125, 0}, v[] = {0.0009765625, 0};
	const fill fills[] = {{"master", master}, {"g", g}, {"m", m}, {"v", v}};
	kiln_inputs *in = make_inputs(t, sym, val, 1, fills, 4);
	kiln_refdata *r = run(t, in);
	const double want[] = {0.9998949675220025, -0.49951057359084794};
	/* bf16 has 8 significant bits: 0.99989... rounds to 1.0, -0.49951 to -0.5 (ulp 2^-9 = 0.00195) */
	const double want_p[] = {1.0, -0.5};
	for (size_t i = 0; i < 2; i++) {
		near(vals(r, t, "master")[i], want[i], 1e-12, "master", i);
		near(vals(r, t, "p")[i], want_p[i], 0, "p", i);
	}
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* Lion: c > 0 moves p down by lr, c < 0 up; a c that cancels to ~0 gets slack 2*lr. */
static void test_references__lion_sign(void **state)
{
	(void)state;
	kiln_target *t = load("lion");
	static const char *sym[] = {"n"};
	static const int64_t val[] = {3};
	/* element 2: beta1*m = -(1-beta1)*g up to f32 rounding of the inputs: c ~ 0 */
	double b1 = f32(0.9);
	const double p[] = {1.0, 1.0, 1.0}, g[] = {0.5, -0.25, 0.1 * 0.5};
	double m[] = {0.5, 0.5, 0};
	m[2] = -(1.0 - b1) * (double)f32(g[2]) / b1;
	const fill fills[] = {{"p", p}, {"g", g}, {"m", m}};
	kiln_inputs *in = make_inputs(t, sym, val, 1, fills, 3);
	kiln_refdata *r = run(t, in);
	double lr = f32(1e-4);
	/* element 1: c = 0.9*0.5 + 0.1*-0.25 = 0.425 > 0, as element 0 */
	near(vals(r, t, "p")[0], 0.9998900000026298, 1e-12, "p", 0);
	near(vals(r, t, "p")[1], 0.9998900000026298, 1e-12, "p", 1);
	near(vals(r, t, "m")[1], 0.4925000071525574, 1e-12, "m", 1);
	assert_true(slack(r, t, "p")[0] == 0 && slack(r, t, "p")[1] == 0);
	near(slack(r, t, "p")[2], 2 * lr, 1e-12, "p slack", 2);
	kiln_refdata_free(r);
	kiln_inputs_free(in);

	const double p2[] = {2.0, 0, 0}, g2[] = {-1.0, 0, 0}, m2[] = {0.0, 0, 0};
	const fill fills2[] = {{"p", p2}, {"g", g2}, {"m", m2}};
	in = make_inputs(t, sym, val, 1, fills2, 3);
	r = run(t, in);
	/* c = 0.1*-1 < 0: p = 2*(1 - lr*wd) + lr; sign(0) = 0 for the all-zero elements */
	near(vals(r, t, "p")[0], 2.0 * (1.0 - lr * (double)f32(0.1)) + lr, 1e-12, "p", 0);
	near(vals(r, t, "p")[1], 0.0, 0, "p", 1);
	assert_true(slack(r, t, "p")[1] == 0); /* both terms 0: c = 0 in every mode, no tie */
	kiln_refdata_free(r);
	kiln_inputs_free(in);

	/* c underflows in fp32: m = 0, g = 2^-149 gives (1-beta1)*g = 0 (or a flushed 0):
	 * a tie by the absolute subnormal term; g = -1e-30 gives a normal c: no tie */
	const double p3[] = {1.0, 1.0, 1.0}, g3[] = {0x1p-149, -1e-30, 1e-37}, m3[] = {0, 0, 0};
	const fill fills3[] = {{"p", p3}, {"g", g3}, {"m", m3}};
	in = make_inputs(t, sym, val, 1, fills3, 3);
	r = run(t, in);
	near(slack(r, t, "p")[0], 2 * lr, 1e-12, "p slack", 0);
	assert_true(slack(r, t, "p")[1] == 0);
	near(slack(r, t, "p")[2], 2 * lr, 1e-12, "p slack", 2); /* 1e-38 < 2*FLT_MIN: flushed by -ftz */
	near(vals(r, t, "p")[1], 1.0 * (1.0 - lr * (double)f32(0.1)) + lr, 1e-12, "p", 1);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* bf16 outputs: one ulp of slack only within err of a rounding midpoint. */
static void test_references__half_tie_slack(void **state)
{
	(void)state;
	/* 257 is the midpoint of the bf16 values 256 and 258 */
	near(kiln_ref_half_tie_slack(KILN_BF16, 257.0, 0), 0.0, 0, "tie slack", 0); /* exact: to even */
	near(kiln_ref_half_tie_slack(KILN_BF16, 257.0, 1e-6), 2.0, 0, "tie slack", 6);
	near(kiln_ref_half_tie_slack(KILN_BF16, 257.0 + 1e-3, 2e-3), 2.0, 0, "tie slack", 1);
	near(kiln_ref_half_tie_slack(KILN_BF16, 257.0 + 1e-3, 1e-4), 0.0, 0, "tie slack", 2);
	near(kiln_ref_half_tie_slack(KILN_BF16, -257.0, 1e-6), 2.0, 0, "tie slack", 3);
	near(kiln_ref_half_tie_slack(KILN_BF16, 256.0, 0.5), 0.0, 0, "tie slack", 4);
	near(kiln_ref_half_tie_slack(KILN_F16, 2049.0, 1e-6), 2.0, 0, "tie slack", 5);
}

/* adamw_bf16: with lr = 0 the master is unchanged, so a master on a bf16 midpoint gets p
 * = its nearest-even rounding with no slack (round-half-away must fail there). */
static void test_references__adamw_bf16_ties(void **state)
{
	(void)state;
	kiln_target *t = load("adamw_bf16");
	static const char *sym[] = {"n"};
	static const int64_t val[] = {3};
	const double master[] = {257.0, 259.0, 1.0 + 0x1p-9}, g[] = {0.01, -0.02, 0.5};
	const double m[] = {0.001, 0, 0}, v[] = {1e-5, 0, 0};
	const fill fills[] = {{"master", master}, {"g", g}, {"m", m}, {"v", v}};
	kiln_inputs *in = make_inputs(t, sym, val, 1, fills, 4);
	in->nscalars = t->nscalars;
	in->scalars = kiln_calloc(t->nscalars, sizeof(double));
	assert_non_null(in->scalars);
	for (size_t k = 0; k < t->nscalars; k++)
		in->scalars[k] = strcmp(t->scalars[k].name, "lr") == 0 ? 0 : t->scalars[k].value;
	kiln_refdata *r = run(t, in);
	near(vals(r, t, "p")[0], 256.0, 0, "p", 0);
	near(vals(r, t, "p")[1], 260.0, 0, "p", 1);
	assert_true(slack(r, t, "p")[0] == 0 && slack(r, t, "p")[1] == 0);
	near(vals(r, t, "master")[0], 257.0, 0, "master", 0);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* create_dynamic_map: a few entries worked out by hand, and the shape of both maps. */
static void test_references__adam8bit_code_map(void **state)
{
	(void)state;
	float s[256], u[256];
	kiln_ref_dynamic_map(s, true);
	kiln_ref_dynamic_map(u, false);
	/* signed: 127 negatives, 0 at 127, 127 positives, 1.0 at 255; the smallest magnitude is
	 * 1e-6 * mean(0.1, 1) = 5.5e-7, the largest below 1 is mean of the last step of
	 * linspace(0.1, 1, 65) = 1 - 0.9/64/2 = 0.99296875 */
	assert_true(s[127] == 0.0f && s[255] == 1.0f);
	assert_true(s[128] == f32(1e-6) * 0.55f && s[126] == -s[128]);
	assert_true(fabs(s[254] - 0.99296875) < 1e-7 && s[0] == -s[254]);
	/* exponent 10^-5 has 2 means: 0.325 and 0.775 */
	assert_true(fabs(s[129] - 3.25e-6) < 1e-12 && fabs(s[130] - 7.75e-6) < 1e-12);
	/* unsigned: 0 first, 1.0 last, then 2, 4, ..., 128 means per decade: 3.25e-7 first */
	assert_true(u[0] == 0.0f && u[255] == 1.0f);
	assert_true(fabs(u[1] - 3.25e-7) < 1e-13 && fabs(u[2] - 7.75e-7) < 1e-13);
	assert_true(fabs(u[254] - (1.0 - 0.9 / 128 / 2)) < 1e-7);
	for (int i = 1; i < 256; i++) {
		assert_true(s[i - 1] < s[i]);
		assert_true(u[i - 1] < u[i]);
	}
}

/* Independent nearest-code search: a linear scan. */
static int nearest_linear(const float *code, double x)
{
	int best = 0;
	for (int i = 1; i < 256; i++)
		if (fabs(x - code[i]) < fabs(x - code[best]))
			best = i;
	return best;
}

/* One partial block of 5: dequantize, Adam, new absmax, requantize; a NaN gradient
 * zeroes the states and keeps p; a tiny negative m is nudged off the +0 code. */
static void test_references__adam8bit_block(void **state)
{
	(void)state;
	kiln_target *t = load("adam8bit");
	float s[256], u[256];
	kiln_ref_dynamic_map(s, true);
	kiln_ref_dynamic_map(u, false);
	static const char *sym[] = {"n"};
	static const int64_t val[] = {5};
	const double p[] = {1.0, 2.0, 3.0, 4.0, 5.0};
	const double g[] = {0.01, -0.01, NAN, -1e-9, INFINITY};
	const double mq[] = {255, 127, 200, 127, 3}, vq[] = {255, 0, 100, 0, 7};
	const double mabs[] = {0.02}, vabs[] = {1e-4};
	const fill fills[] = {{"p", p}, {"g", g}, {"m_code", mq}, {"v_code", vq}, {"m_absmax", mabs}, {"v_absmax", vabs}};
	kiln_inputs *in = make_inputs(t, sym, val, 1, fills, 6);
	kiln_refdata *r = run(t, in);
	double b1 = f32(0.9), b2 = f32(0.999), lr = f32(1e-3), eps = f32(1e-8), wd = f32(0.01);
	double am = f32(0.02), av = f32(1e-4), g0 = f32(0.01);
	/* element 0: m = 0.9*1.0*0.02 + 0.1*0.01 = 0.019 is the block max; element 1: m = -0.001 */
	double m0 = b1 * am + (1 - b1) * g0, m1 = -(1 - b1) * g0, m3 = -(1 - b1) * (double)f32(1e-9);
	double v0 = b2 * av + (1 - b2) * g0 * g0, v1 = (1 - b2) * g0 * g0, v3 = (1 - b2) * (double)f32(1e-9) * f32(1e-9);
	near(vals(r, t, "m_absmax")[0], m0, 1e-12, "m_absmax", 0);
	near(vals(r, t, "v_absmax")[0], v0, 1e-12, "v_absmax", 0);
	const double *mc = vals(r, t, "m_code"), *vc = vals(r, t, "v_code");
	assert_int_equal((int)mc[0], 255);
	assert_int_equal((int)vc[0], 255);
	assert_int_equal((int)mc[1], nearest_linear(s, m1 / m0));
	assert_true(s[(int)mc[1]] < 0);
	assert_int_equal((int)vc[1], nearest_linear(u, v1 / v0));
	/* NaN / Inf gradient: states 0 -> codes of 0 (127 signed, 0 unsigned), p unchanged */
	assert_int_equal((int)mc[2], 127);
	assert_int_equal((int)vc[2], 0);
	assert_int_equal((int)mc[4], 127);
	near(vals(r, t, "p")[2], 3.0, 0, "p", 2);
	near(vals(r, t, "p")[4], 5.0, 0, "p", 4);
	/* element 3: m = -1e-10, nearest code is +0 (index 127): nudged to 126 */
	assert_int_equal(nearest_linear(s, m3 / m0), 127);
	assert_int_equal((int)mc[3], 126);
	assert_int_equal((int)vc[3], nearest_linear(u, v3 / v0));
	/* p: bitsandbytes order, step then weight decay */
	double c1 = 1 - pow(b1, 10), c2 = sqrt(1 - pow(b2, 10));
	double want_p0 = (1.0 - lr * c2 / c1 * (m0 / (sqrt(v0) + c2 * eps))) * (1 - lr * wd);
	near(vals(r, t, "p")[0], want_p0, 1e-12, "p", 0);
	/* exactly representable codes far from a midpoint get no slack */
	assert_true(slack(r, t, "m_code")[0] == 0 && slack(r, t, "v_code")[0] == 0);
	kiln_refdata_free(r);
	kiln_inputs_free(in);

	/* a partial block of only NaN gradients: the real lanes give absmax 0 (any code
	 * dequantizes to 0 -> slack 255); bitsandbytes' padding lanes (m code 128, g = 0)
	 * give code1[128]*old absmax*beta1: that is the reference, with slack down to 0 */
	const double gn[] = {NAN, NAN, NAN, NAN, NAN};
	const fill fills2[] = {{"p", p}, {"g", gn}, {"m_code", mq}, {"v_code", vq}, {"m_absmax", mabs}, {"v_absmax", vabs}};
	in = make_inputs(t, sym, val, 1, fills2, 6);
	r = run(t, in);
	double pad = (double)s[128] * am * b1;
	near(vals(r, t, "m_absmax")[0], pad, 1e-20, "m_absmax", 0);
	near(slack(r, t, "m_absmax")[0], pad, 1e-20, "m_absmax slack", 0);
	near(vals(r, t, "v_absmax")[0], 0, 0, "v_absmax", 0); /* v's padding code is 0 */
	assert_int_equal((int)vals(r, t, "m_code")[1], 127);
	near(slack(r, t, "m_code")[1], 255, 0, "m_code slack", 1);
	kiln_refdata_free(r);
	kiln_inputs_free(in);

	/* tiny negative moments from zero codes: a normal m = 0.1*-1e-30 is nudged to 126
	 * with no slack; a subnormal one (0.1*-1e-37) may be -0 under flush-to-zero: slack 1 */
	const double gt[] = {0.01, -1e-30, -1e-37, 0, 0}, mz[] = {255, 127, 127, 127, 127};
	const fill fills3[] = {{"p", p}, {"g", gt}, {"m_code", mz}, {"v_code", vq}, {"m_absmax", mabs}, {"v_absmax", vabs}};
	in = make_inputs(t, sym, val, 1, fills3, 6);
	r = run(t, in);
	assert_int_equal((int)vals(r, t, "m_code")[1], 126);
	assert_true(slack(r, t, "m_code")[1] == 0);
	assert_int_equal((int)vals(r, t, "m_code")[2], 126);
	near(slack(r, t, "m_code")[2], 1, 0, "m_code slack", 2);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* A value on the midpoint of two codes gets slack 1, one on a code gets none. */
static void test_references__adam8bit_midpoint(void **state)
{
	(void)state;
	kiln_target *t = load("adam8bit");
	float u[256];
	kiln_ref_dynamic_map(u, false);
	static const char *sym[] = {"n"};
	static const int64_t val[] = {3};
	/* element 0: v = beta2*1.0*A is the block max (g = 0); element 1 starts on code 200 and
	 * g^2 lifts v/max to the midpoint of codes 200 and 201; element 2 stays on code 100 */
	double b2 = f32(0.999), A = 1e-3;
	double mid = 0.5 * ((double)u[200] + (double)u[201]);
	double g1 = sqrt((mid - (double)u[200]) * b2 * (double)f32(A) / (1.0 - b2));
	const double p[] = {0, 0, 0}, g[] = {0, g1, 0}, mq[] = {255, 255, 255}, vq[] = {255, 200, 100};
	const double mabs[] = {1}, vabs[] = {A};
	const fill fills[] = {{"p", p}, {"g", g}, {"m_code", mq}, {"v_code", vq}, {"m_absmax", mabs}, {"v_absmax", vabs}};
	kiln_inputs *in = make_inputs(t, sym, val, 1, fills, 6);
	kiln_refdata *r = run(t, in);
	const double *vc = vals(r, t, "v_code"), *vs = slack(r, t, "v_code");
	assert_int_equal((int)vc[0], 255);
	assert_true(vs[0] == 0);
	assert_true((int)vc[1] == 200 || (int)vc[1] == 201);
	near(vs[1], 1, 0, "v_code slack", 1);
	assert_int_equal((int)vc[2], 100);
	assert_true(vs[2] == 0);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* SCALE: an all-zero row gives u = 0 (only weight decay), the 1e-8 floor caps tiny rows,
 * a normal row is divided by its RMS. */
static void test_references__scale_zero_row(void **state)
{
	(void)state;
	kiln_target *t = load("scale_rownorm");
	static const char *sym[] = {"rows", "cols"};
	static const int64_t val[] = {3, 3};
	const double w[] = {1, -2, 0.5, 1, 1, 1, 1, 1, 1};
	const double g[] = {0, 0, 0, 3, 4, 0, 1e-10, -1e-10, 0};
	const fill fills[] = {{"W", w}, {"G", g}};
	kiln_inputs *in = make_inputs(t, sym, val, 2, fills, 2);
	kiln_refdata *r = run(t, in);
	double lr = f32(1e-3), decay = 1 - lr * (double)f32(0.1);
	const double *W = vals(r, t, "W");
	near(W[0], 1 * decay, 1e-15, "W", 0);
	near(W[1], -2 * decay, 1e-15, "W", 1);
	near(W[2], 0.5 * decay, 1e-15, "W", 2);
	/* row 1: rms = sqrt((9 + 16 + 0)/3) = 2.8867513459481287 */
	near(W[3], decay - lr * 3 / 2.8867513459481287, 1e-12, "W", 3);
	near(W[4], decay - lr * 4 / 2.8867513459481287, 1e-12, "W", 4);
	near(W[5], decay, 1e-15, "W", 5);
	/* row 2: rms = 8.2e-11 < 1e-8: u = g / 1e-8 = +-0.01 */
	near(W[6], decay - lr * (double)f32(1e-10) / 1e-8, 1e-12, "W", 6);
	near(W[7], decay + lr * (double)f32(1e-10) / 1e-8, 1e-12, "W", 7);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* ---- ratios ---- */

static const char *const bt[] = {"B", "T"};

/* Masked positions are 0 even where the inputs hold NaN/Inf; the clamp caps at e^+-20. */
static void test_references__ratio_token_masked(void **state)
{
	(void)state;
	kiln_target *t = load("ratio_token");
	static const int64_t val[] = {2, 3};
	const double lnew[] = {-1.0, -30.0, NAN, 0.0, INFINITY, -INFINITY};
	const double lold[] = {-1.5, -2.0, -1.0, -25.0, 1.0, NAN};
	const double mask[] = {1, 1, 0, 1, 0, 0};
	const fill fills[] = {{"logp_new", lnew}, {"logp_old", lold}, {"mask", mask}};
	kiln_inputs *in = make_inputs(t, bt, val, 2, fills, 3);
	kiln_refdata *r = run(t, in);
	const double *o = vals(r, t, "ratio");
	near(o[0], exp(0.5), 1e-15, "ratio", 0);
	near(o[1], exp(-20.0), 1e-15, "ratio", 1); /* Delta = -28 clamps */
	near(o[3], exp(20.0), 1e-15, "ratio", 3);  /* Delta = 25 clamps */
	for (size_t i = 2; i < 6; i += (i == 2 ? 2 : 1))
		assert_true(o[i] == 0.0);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

static void test_references__ratio_seq_mean(void **state)
{
	(void)state;
	kiln_target *t = load("ratio_seq");
	static const int64_t val[] = {3, 3};
	const double lnew[] = {-1.0, -1.0, NAN, -2.0, NAN, -INFINITY, INFINITY, NAN, 0.0};
	const double lold[] = {-1.25, -1.5, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, NAN};
	const double mask[] = {1, 1, 0, 1, 0, 0, 0, 0, 0};
	const fill fills[] = {{"logp_new", lnew}, {"logp_old", lold}, {"mask", mask}};
	kiln_inputs *in = make_inputs(t, bt, val, 2, fills, 3);
	kiln_refdata *r = run(t, in);
	/* row 0: (0.25 + 0.5)/2; row 1: one valid token, -1/1; row 2: none -> exp(0/1) = 1 */
	near(vals(r, t, "ratio")[0], exp(0.375), 1e-15, "ratio", 0);
	near(vals(r, t, "ratio")[1], exp(-1.0), 1e-15, "ratio", 1);
	near(vals(r, t, "ratio")[2], 1.0, 0, "ratio", 2);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* CTPO: k_t counts valid tokens only (a hole at t=1 makes k = 1, -, 2, 3), garbage in the
 * hole does not poison later positions, L is capped at 10 for ratio. */
static void test_references__ratio_cumulative_valid_count(void **state)
{
	(void)state;
	kiln_target *t = load("ratio_cumulative");
	static const int64_t val[] = {1, 5};
	const double lnew[] = {1.0, NAN, 1.0, 1.0, 30.0};
	const double lold[] = {0.0, 0.0, 0.0, 0.0, 0.0};
	const double mask[] = {1, 0, 1, 1, 1};
	const fill fills[] = {{"logp_new", lnew}, {"logp_old", lold}, {"mask", mask}};
	kiln_inputs *in = make_inputs(t, bt, val, 2, fills, 3);
	kiln_refdata *r = run(t, in);
	const double *ratio = vals(r, t, "ratio"), *clipped = vals(r, t, "clipped");
	double c_hi = f32(0.05);
	near(ratio[0], exp(1.0), 1e-15, "ratio", 0);
	near(ratio[2], exp(2.0), 1e-15, "ratio", 2);
	near(ratio[3], exp(3.0), 1e-15, "ratio", 3);
	near(ratio[4], exp(10.0), 1e-15, "ratio", 4); /* L = 3 + clamp(30) = 23, capped at 10 */
	assert_true(ratio[1] == 0.0 && clipped[1] == 0.0);
	/* clipped at c_hi*k^0.5 with k = 1, 2, 3, 4 (the raw index would give 1, 3, 4, 5) */
	near(clipped[0], exp(c_hi * 1.0), 1e-12, "clipped", 0);
	near(clipped[2], exp(c_hi * sqrt(2.0)), 1e-12, "clipped", 2);
	near(clipped[3], exp(c_hi * sqrt(3.0)), 1e-12, "clipped", 3);
	near(clipped[4], exp(c_hi * 2.0), 1e-12, "clipped", 4);
	/* slack: value * (eps32*(|L| + 4*sqrt((1 + log2 k)*sum d^2)) + 1e-6), at t = 3: L = 3,
	 * k = 3, sum d^2 = 3 */
	near(slack(r, t, "ratio")[3], exp(3.0) * (0x1p-23 * (3.0 + 4.0 * sqrt((1 + log2(3.0)) * 3.0)) + 1e-6), 1e-12,
	     "ratio slack", 3);
	assert_true(slack(r, t, "ratio")[1] == 0.0);
	kiln_refdata_free(r);
	kiln_inputs_free(in);

	/* the lower bound: L = -1 at k = 1 clips to -c_lo */
	const double lnew2[] = {-1.0, 0, 0, 0, 0}, mask2[] = {1, 0, 0, 0, 0};
	const fill fills2[] = {{"logp_new", lnew2}, {"logp_old", lold}, {"mask", mask2}};
	in = make_inputs(t, bt, val, 2, fills2, 3);
	r = run(t, in);
	near(vals(r, t, "clipped")[0], exp(-(double)f32(0.025)), 1e-12, "clipped", 0);
	near(vals(r, t, "ratio")[0], exp(-1.0), 1e-15, "ratio", 0);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

/* MinPRO: the exclusive and inclusive prefix minimum differ exactly where the current
 * token is a new minimum; masked garbage (-Inf) never enters the minimum. */
static void test_references__ratio_minprefix_inclusive(void **state)
{
	(void)state;
	kiln_target *t = load("ratio_minprefix");
	static const int64_t val[] = {1, 5};
	const double lnew[] = {-0.1, -INFINITY, 0.05, -0.3, 0.2};
	const double lold[] = {0, 0, 0, 0, 0};
	const double mask[] = {1, 0, 1, 1, 1};
	const fill fills[] = {{"logp_new", lnew}, {"logp_old", lold}, {"mask", mask}};
	kiln_inputs *in = make_inputs(t, bt, val, 2, fills, 3);
	double d0 = f32(-0.1), d2 = f32(0.05), d3 = f32(-0.3), d4 = f32(0.2);
	double lo = 1 - (double)f32(0.2), hi = 1 + (double)f32(0.28);
	set_scalar(t, "inclusive", 0);
	kiln_refdata *r = run(t, in);
	const double *w = vals(r, t, "weight");
	near(w[0], exp(d0), 1e-15, "exclusive", 0);        /* empty prefix: rho_0 */
	assert_true(w[1] == 0.0);
	near(w[2], exp(d0 + d2), 1e-15, "exclusive", 2);   /* min so far d0 */
	near(w[3], lo, 1e-15, "exclusive", 3);             /* exp(d0 + d3) = 0.67 clips */
	near(w[4], exp(d3 + d4), 1e-15, "exclusive", 4);   /* min is now d3 */
	kiln_refdata_free(r);

	set_scalar(t, "inclusive", 1);
	r = run(t, in);
	w = vals(r, t, "weight");
	near(w[0], exp(2 * d0), 1e-15, "inclusive", 0);    /* rho_0^2 = 0.819 */
	near(w[2], exp(d0 + d2), 1e-15, "inclusive", 2);
	near(w[3], lo, 1e-15, "inclusive", 3);              /* exp(2*d3) clips */
	near(w[4], exp(d3 + d4), 1e-15, "inclusive", 4);
	kiln_refdata_free(r);
	kiln_inputs_free(in);

	/* at a clip boundary: w = exp(f32(log 1.28)) is within 1e-5 of 1 + eps_hi */
	const double lnew2[] = {log(1.28), 0, 0, 0, 0}, mask2[] = {1, 0, 0, 0, 0};
	const fill fills2[] = {{"logp_new", lnew2}, {"logp_old", lold}, {"mask", mask2}};
	set_scalar(t, "inclusive", 0);
	in = make_inputs(t, bt, val, 2, fills2, 3);
	r = run(t, in);
	near(slack(r, t, "weight")[0], 1e-5 * hi, 1e-12, "slack", 0);
	assert_true(slack(r, t, "weight")[1] == 0.0);
	kiln_refdata_free(r);
	kiln_inputs_free(in);
	kiln_target_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_references__lookup),
		cmocka_unit_test(test_references__wrong_target),
		cmocka_unit_test(test_references__adamw_one_step),
		cmocka_unit_test(test_references__adamw_bf16_master),
		cmocka_unit_test(test_references__lion_sign),
		cmocka_unit_test(test_references__half_tie_slack),
		cmocka_unit_test(test_references__adamw_bf16_ties),
		cmocka_unit_test(test_references__adam8bit_code_map),
		cmocka_unit_test(test_references__adam8bit_block),
		cmocka_unit_test(test_references__adam8bit_midpoint),
		cmocka_unit_test(test_references__scale_zero_row),
		cmocka_unit_test(test_references__ratio_token_masked),
		cmocka_unit_test(test_references__ratio_seq_mean),
		cmocka_unit_test(test_references__ratio_cumulative_valid_count),
		cmocka_unit_test(test_references__ratio_minprefix_inclusive),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
