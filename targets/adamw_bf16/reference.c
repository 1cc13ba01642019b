/* adamw_bf16 reference: AdamW (PyTorch _fused_adamw_ math, targets/adamw) on an fp32
 * master copy with bf16 p (out) and g, fp32 m and v. The update runs on the master; p
 * is the new master rounded once to bf16 (nearest even), as a mixed-precision trainer
 * writes back its bf16 model weights. float64 throughout. p is judged exactly against
 * that rounding (profile/verify.c within()); it gets one bf16 ulp of slack only where the
 * float64 master lies within the fp32 error of the kernel's master of a bf16 midpoint. */
#include "targets/references.h"

#include <float.h>
#include <math.h>

double kiln_ref_half_tie_slack(kiln_dtype dt, double x, double err)
{
	double ax = fabs(x);
	uint16_t h = dt == KILN_BF16 ? kiln_f64_to_bf16(ax) : kiln_f64_to_f16(ax);
	double r = dt == KILN_BF16 ? kiln_bf16_to_f64(h) : kiln_f16_to_f64(h);
	if (isinf(r) || isnan(r))
		return 0;
	uint16_t o = ax >= r ? (uint16_t)(h + 1) : (uint16_t)(h - 1);
	double other = dt == KILN_BF16 ? kiln_bf16_to_f64(o) : kiln_f16_to_f64(o);
	if (isinf(other))
		return 0;
	return fabs(ax - (r + other) / 2) < err ? fabs(other - r) : 0; /* err 0: exact, no tie */
}

kiln_err kiln_ref_adamw_bf16(kiln_ref_io *io)
{
	static const char *ref = "adamw_bf16";
	kiln_ref_adamw_params hp;
	int64_t n;
	double *p, *p_slack, *g, *m, *v, *master, *master_slack;
	kiln_err e;
	if ((e = kiln_ref_need_symbol(&n, io, ref, "n")) || (e = kiln_ref_adamw_hp(&hp, io, ref)) ||
	    (e = kiln_ref_need_buf(&p, &p_slack, io, ref, "p", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&g, NULL, io, ref, "g", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&m, NULL, io, ref, "m", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&v, NULL, io, ref, "v", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&master, &master_slack, io, ref, "master", (size_t)n)))
		return e;
	const double u = FLT_EPSILON / 2; /* fp32 unit roundoff */
	for (int64_t i = 0; i < n; i++) {
		double old = master[i];
		double step = kiln_ref_adamw_elem(&hp, &master[i], g[i], &m[i], &v[i]);
		double change = hp.lr * hp.wd * fabs(old) + fabs(step);
		master_slack[i] = KILN_REF_ADAMW_STEP_RTOL * fabs(step);
		/* the kernel's fp32 master: each of up to 3 roundings of a master-sized value
		 * (decay, step, a factor 1 - lr*wd) moves it by at most min(u*|master|, the
		 * change) (old is an fp32 value: no change, no rounding), the fp32 arithmetic of
		 * the change by a few u*change, the fp32 bias corrections by the step slack */
		double err = 3 * fmin(u * fabs(master[i]), change) + 16 * u * change + master_slack[i];
		p_slack[i] = kiln_ref_half_tie_slack(KILN_BF16, master[i], err);
		p[i] = kiln_bf16_to_f64(kiln_f64_to_bf16(master[i]));
	}
	return KILN_OK;
}
