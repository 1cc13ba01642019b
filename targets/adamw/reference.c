/* adamw reference: one fused AdamW step over a flat fp32 tensor with PyTorch
 * _fused_adamw_ semantics (aten/src/ATen/native/cuda/fused_adam_utils.cuh, adam_math,
 * ADAMW mode): decoupled weight decay first, then the moments, then the bias-corrected
 * step. float64 throughout, on the f32 values the kernel sees (scalars are rounded to f32
 * before use, so beta1 is f32(0.9), not 0.9). The per-element step is shared with
 * adamw_bf16 (kiln_ref_adamw_hp / kiln_ref_adamw_elem in references.h). */
#include "targets/references.h"

#include <math.h>

kiln_err kiln_ref_adamw_hp(kiln_ref_adamw_params *hp, const kiln_ref_io *io, const char *ref)
{
	double step;
	kiln_err e;
	if ((e = kiln_ref_need_scalar(&hp->lr, io, ref, "lr")) || (e = kiln_ref_need_scalar(&hp->beta1, io, ref, "beta1")) ||
	    (e = kiln_ref_need_scalar(&hp->beta2, io, ref, "beta2")) || (e = kiln_ref_need_scalar(&hp->eps, io, ref, "eps")) ||
	    (e = kiln_ref_need_scalar(&hp->wd, io, ref, "weight_decay")) ||
	    (e = kiln_ref_need_scalar(&step, io, ref, "step")))
		return e;
	if (!(step >= 1))
		return kiln_error_set(KILN_EINVAL, "reference %s: scalar step must be >= 1, got %g", ref, step);
	hp->bc1 = 1.0 - pow(hp->beta1, step);
	hp->sqrt_bc2 = sqrt(1.0 - pow(hp->beta2, step));
	return KILN_OK;
}

double kiln_ref_adamw_elem(const kiln_ref_adamw_params *hp, double *p, double g, double *m, double *v)
{
	*p -= hp->lr * hp->wd * *p;
	*m = hp->beta1 * *m + (1.0 - hp->beta1) * g;
	*v = hp->beta2 * *v + (1.0 - hp->beta2) * g * g;
	double denom = sqrt(*v) / hp->sqrt_bc2 + hp->eps;
	double step = (hp->lr / hp->bc1) * *m / denom;
	*p -= step;
	return step;
}

kiln_err kiln_ref_adamw(kiln_ref_io *io)
{
	static const char *ref = "adamw";
	kiln_ref_adamw_params hp;
	int64_t n;
	double *p, *p_slack, *g, *m, *v;
	kiln_err e;
	if ((e = kiln_ref_need_symbol(&n, io, ref, "n")) || (e = kiln_ref_adamw_hp(&hp, io, ref)) ||
	    (e = kiln_ref_need_buf(&p, &p_slack, io, ref, "p", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&g, NULL, io, ref, "g", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&m, NULL, io, ref, "m", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&v, NULL, io, ref, "v", (size_t)n)))
		return e;
	/* TARGETS.md: the p update is good to 1e-5 relative to the lr-scaled step (fp32 bias
	 * corrections lose digits to cancellation in 1 - beta2^t). */
	for (int64_t i = 0; i < n; i++)
		p_slack[i] = KILN_REF_ADAMW_STEP_RTOL * fabs(kiln_ref_adamw_elem(&hp, &p[i], g[i], &m[i], &v[i]));
	return KILN_OK;
}
