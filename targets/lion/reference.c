/* lion reference: one Lion step (google/automl lion_pytorch.py): decoupled weight decay
 * p *= 1 - lr*wd, update direction sign(beta1*m + (1-beta1)*g), then the momentum
 * m = beta2*m + (1-beta2)*g. float64 on the f32 values the kernel sees. Where the
 * interpolation c is so small that fp32 evaluation can flip its sign or make it 0, p may
 * move by up to 2*lr either way: that element gets slack 2*lr (a sign tie). The tie rule:
 * c is not exactly 0 with both terms 0, and |c| <= 4*eps32*(|a| + |b|) + 2*FLT_MIN, the
 * relative rounding of the two products and the sum plus what the subnormal range loses:
 * a product below FLT_MIN rounds to a multiple of 2^-149 (m = 0, g = 1.4e-45 gives c = 0 in
 * fp32) or, under -ftz=true / --use_fast_math, is flushed to 0. Kernels with or without
 * flush-to-zero therefore pass alike; any c of both-zero terms is exactly 0 in every mode
 * and must give sign 0. */
#include "targets/references.h"

#include <float.h>
#include <math.h>

kiln_err kiln_ref_lion(kiln_ref_io *io)
{
	static const char *ref = "lion";
	int64_t n;
	double lr, beta1, beta2, wd, *p, *p_slack, *g, *m;
	kiln_err e;
	if ((e = kiln_ref_need_symbol(&n, io, ref, "n")) || (e = kiln_ref_need_scalar(&lr, io, ref, "lr")) ||
	    (e = kiln_ref_need_scalar(&beta1, io, ref, "beta1")) || (e = kiln_ref_need_scalar(&beta2, io, ref, "beta2")) ||
	    (e = kiln_ref_need_scalar(&wd, io, ref, "weight_decay")) ||
	    (e = kiln_ref_need_buf(&p, &p_slack, io, ref, "p", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&g, NULL, io, ref, "g", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&m, NULL, io, ref, "m", (size_t)n)))
		return e;
	for (int64_t i = 0; i < n; i++) {
		double a = beta1 * m[i], b = (1.0 - beta1) * g[i];
		double c = a + b;
		double sign = c > 0 ? 1.0 : c < 0 ? -1.0 : 0.0; /* torch.sign: sign(0) = 0 */
		p[i] = p[i] * (1.0 - lr * wd) - lr * sign;
		/* fp32 evaluates c with a few half-ulp errors of its terms, and loses up to
		 * FLT_MIN per term in the subnormal range (rounding or flush-to-zero) */
		if ((a != 0 || b != 0) && fabs(c) <= 4.0 * FLT_EPSILON * (fabs(a) + fabs(b)) + 2.0 * FLT_MIN)
			p_slack[i] = 2.0 * lr;
		m[i] = beta2 * m[i] + (1.0 - beta2) * g[i];
	}
	return KILN_OK;
}
