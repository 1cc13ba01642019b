/* adam8bit reference: bitsandbytes' blockwise 8-bit Adam (Dettmers et al. 2021; csrc
 * kernels.cu kOptimizerStatic8bit2StateBlockwise, ADAM) with blocks of 256 elements. The
 * states m, v are u8 indices into the dynamic code maps of functional.create_dynamic_map
 * (signed for m, unsigned for v) scaled by one fp32 absmax per block. The reference
 * emulates the quantization exactly (nearest code, sign-preserving nudge for m) and gives
 * a code slack where fp32 rounding can move the value across a midpoint between codes.
 * A partial last block: bitsandbytes loads its padding lanes as g = 0, m code 128 and v
 * code 0 (cub BlockLoad defaults in kOptimizerStatic8bit2StateBlockwise), so they take part
 * in the block max: m_absmax = max(|m| of the real lanes, code1[128]*old m_absmax*beta1).
 * That only shows when every real |m| is below it (all-non-finite or zero gradients with
 * zero moments). The reference gives bitsandbytes' value, with slack down to the max over
 * the real elements (the target's math), and codes that either absmax gives. A negative
 * m below FLT_MIN may be nudged off +0 or not (flush-to-zero makes it -0): slack 1. */
#include "targets/references.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

#define QBLOCK 256

/* torch.linspace(0.1, 1, steps) in float32 as the scalar CPU kernel computes it:
 * step = (end - start) / (steps - 1), start + step*i below the halfway index, end -
 * step*(steps-1-i) from there on (vectorized CPU paths may differ in the last ulp). */
static float linspace_at(int steps, int i)
{
	const float start = 0.1f, end = 1.0f;
	const float step = (end - start) / (float)(steps - 1);
	return i < steps / 2 ? start + step * (float)i : end - step * (float)(steps - i - 1);
}

static int cmp_float(const void *a, const void *b)
{
	float x = *(const float *)a, y = *(const float *)b;
	return (x > y) - (x < y);
}

/* create_dynamic_map(signed, max_exponent_bits=7, total_bits=8): for exponent i = 0..6
 * the means of adjacent points of linspace(0.1, 1, k) scaled by 10^(i-6), where k is
 * 2^i+1 (signed: both signs) or 2^(i+1)+1 (unsigned); then 0 and 1.0; sorted. The
 * python float 10^(i-6) meets a float32 tensor, so the product is float32 of floats. */
void kiln_ref_dynamic_map(float out[256], bool is_signed)
{
	size_t n = 0;
	for (int i = 0; i < 7; i++) {
		int k = is_signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
		const float scale = (float)pow(10.0, i - 6);
		for (int j = 0; j + 1 < k; j++) {
			const float mean = (linspace_at(k, j) + linspace_at(k, j + 1)) / 2.0f;
			out[n++] = scale * mean;
			if (is_signed)
				out[n++] = -scale * mean;
		}
	}
	out[n++] = 0.0f;
	out[n++] = 1.0f;
	/* n == 256 for both maps: 2*127 + 2 signed, 254 + 2 unsigned */
	qsort(out, n, sizeof(float), cmp_float);
}

/* Index of the code nearest to x (the lower one on an exact tie); codes ascending. */
static int nearest_code(const float code[256], double x)
{
	int lo = 0, hi = 255;
	if (x <= code[0])
		return 0;
	if (x >= code[255])
		return 255;
	while (hi - lo > 1) { /* invariant: code[lo] < x < code[hi] or on an end */
		int mid = (lo + hi) / 2;
		if (x < code[mid])
			hi = mid;
		else
			lo = mid;
	}
	return x - code[lo] <= code[hi] - x ? lo : hi;
}

/* bitsandbytes' quantize: the nearest code, and for the signed map of m a nudge one code
 * down when a negative value lands on +0 (signbit of code and value must agree). */
static int quantize(const float code[256], bool is_signed, double x)
{
	int q = nearest_code(code, x);
	if (is_signed && x < 0 && code[q] >= 0)
		q--;
	return q;
}

/* Quantizes x = s/absmax into codes[i] with slack: the codes that x +- w could give,
 * w covering fp32's relative error in s/absmax and the rounding of s's terms (`terms`:
 * |beta*s_old| + |(1-beta)*g...|). A zero absmax means every code dequantizes to 0. */
static void requantize(double *codes, double *slack, size_t i, const float code[256], bool is_signed,
		       double s, double absmax, double terms)
{
	if (absmax == 0) {
		codes[i] = quantize(code, is_signed, 0.0);
		slack[i] = 255;
		return;
	}
	double x = s / absmax;
	double w = 1e-5 * fabs(x) + 4.0 * FLT_EPSILON * terms / absmax;
	int q = quantize(code, is_signed, x);
	int lo = quantize(code, is_signed, x - w), hi = quantize(code, is_signed, x + w);
	codes[i] = q;
	slack[i] = q - lo > hi - q ? q - lo : hi - q;
}

kiln_err kiln_ref_adam8bit(kiln_ref_io *io)
{
	static const char *ref = "adam8bit";
	float code1[256], code2[256];
	int64_t n;
	double lr, beta1, beta2, eps, wd, step;
	double *p, *p_slack, *g, *mq, *mq_slack, *m_absmax, *m_absmax_slack, *vq, *vq_slack, *v_absmax, *unused;
	double s1[QBLOCK], s2[QBLOCK]; /* the new fp32 moments of one block */
	double t1[QBLOCK], t2[QBLOCK]; /* magnitudes of their terms (rounding scale) */
	kiln_err e;
	if ((e = kiln_ref_need_symbol(&n, io, ref, "n")) || (e = kiln_ref_need_scalar(&lr, io, ref, "lr")) ||
	    (e = kiln_ref_need_scalar(&beta1, io, ref, "beta1")) || (e = kiln_ref_need_scalar(&beta2, io, ref, "beta2")) ||
	    (e = kiln_ref_need_scalar(&eps, io, ref, "eps")) || (e = kiln_ref_need_scalar(&wd, io, ref, "weight_decay")) ||
	    (e = kiln_ref_need_scalar(&step, io, ref, "step")))
		return e;
	size_t nblocks = ((size_t)n + QBLOCK - 1) / QBLOCK;
	if ((e = kiln_ref_need_buf(&p, &p_slack, io, ref, "p", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&g, NULL, io, ref, "g", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&mq, &mq_slack, io, ref, "m_code", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&m_absmax, &m_absmax_slack, io, ref, "m_absmax", nblocks)) ||
	    (e = kiln_ref_need_buf(&vq, &vq_slack, io, ref, "v_code", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&v_absmax, &unused, io, ref, "v_absmax", nblocks)))
		return e;
	if (!(step >= 1))
		return kiln_error_set(KILN_EINVAL, "reference %s: scalar step must be >= 1, got %g", ref, step);
	kiln_ref_dynamic_map(code1, true);
	kiln_ref_dynamic_map(code2, false);
	const double correction1 = 1.0 - pow(beta1, step);
	const double correction2 = sqrt(1.0 - pow(beta2, step));
	const double step_size = -lr * correction2 / correction1;
	for (size_t b = 0; b < nblocks; b++) {
		size_t base = b * QBLOCK, len = (size_t)n - base < QBLOCK ? (size_t)n - base : QBLOCK;
		double amax1 = 0, amax2 = 0, fp32_err = 0;
		for (size_t j = 0; j < len; j++) {
			size_t i = base + j;
			int c1 = (int)mq[i], c2 = (int)vq[i];
			if (c1 < 0 || c1 > 255 || c2 < 0 || c2 > 255) {
				return kiln_error_set(KILN_EINVAL, "reference %s: element %zu: code out of range", ref, i);
			}
			if (isfinite(g[i])) {
				/* dequantize with the old absmax, then the fp32 Adam moments */
				double a2 = beta2 * ((double)code2[c2] * v_absmax[b]), b2 = (1.0 - beta2) * g[i] * g[i];
				double a1 = beta1 * ((double)code1[c1] * m_absmax[b]), b1 = (1.0 - beta1) * g[i];
				s2[j] = a2 + b2;
				s1[j] = a1 + b1;
				t1[j] = fabs(a1) + fabs(b1);
				t2[j] = fabs(a2) + fabs(b2);
			} else {
				/* a NaN/Inf gradient zeroes both states and leaves p alone */
				s1[j] = s2[j] = t1[j] = t2[j] = 0;
			}
			amax1 = fmax(amax1, fabs(s1[j]));
			amax2 = fmax(amax2, fabs(s2[j]));
			/* m = beta1*m_old + (1-beta1)*g in fp32: when the terms nearly cancel, its
			 * rounding is relative to the terms, not to m (it decides the block max) */
			fp32_err = fmax(fp32_err, 4.0 * FLT_EPSILON * t1[j]);
		}
		/* bitsandbytes' padding lanes (g = 0, m code 128, v code 0: v's is 0) */
		double real1 = amax1;
		if (len < QBLOCK)
			amax1 = fmax(amax1, fabs((double)code1[128] * m_absmax[b] * beta1));
		for (size_t j = 0; j < len; j++) {
			size_t i = base + j;
			if (isfinite(g[i])) {
				double update = step_size * (s1[j] / (sqrt(s2[j]) + correction2 * eps));
				p[i] += update;
				/* as adamw: good to 1e-5 of the lr-scaled step (fp32 corrections) */
				p_slack[i] = KILN_REF_ADAMW_STEP_RTOL * fabs(update);
				if (wd > 0) /* weight decay after the step, as bitsandbytes does */
					p[i] *= 1.0 - lr * wd;
			}
			requantize(mq, mq_slack, i, code1, true, s1[j], amax1, t1[j]);
			/* a negative m below FLT_MIN is -0 under flush-to-zero: `m < 0` then keeps
			 * the +0 code (bitsandbytes tests the sign bit and nudges); either passes */
			if (s1[j] < 0 && -s1[j] < FLT_MIN && code1[(int)mq[i]] < 0 && code1[(int)mq[i] + 1] == 0)
				mq_slack[i] = fmax(mq_slack[i], 1);
			if (real1 != amax1) { /* the code the real-lanes-only absmax gives passes too */
				double alt, alt_slack;
				requantize(&alt, &alt_slack, 0, code1, true, s1[j], real1, t1[j]);
				mq_slack[i] = fmax(mq_slack[i], fabs(alt - mq[i]) + alt_slack);
			}
			requantize(vq, vq_slack, i, code2, false, s2[j], amax2, t2[j]);
		}
		m_absmax[b] = amax1;
		m_absmax_slack[b] = amax1 - real1 + fp32_err;
		v_absmax[b] = amax2;
	}
	return KILN_OK;
}
