/* ratio_minprefix reference: MinPRO's prefix importance weight (arXiv 2601.22718, "A
 * Step Back: Prefix Importance Ratio Stabilizes Policy Optimization"), best-supported
 * reading: rho_t = exp(clamp(Delta_t, -20, 20)); rhomin_t = min of rho_s over valid s < t
 * (s <= t when the scalar `inclusive` is 1; an empty prefix gives 1); weight_t =
 * clip(rhomin_t*rho_t, 1-eps_lo, 1+eps_hi). Computed in log space; masked -> 0. Values
 * within 1e-5 (relative) of a clip boundary get that much slack. */
#include "targets/references.h"

#include <math.h>

kiln_err kiln_ref_ratio_minprefix(kiln_ref_io *io)
{
	static const char *ref = "ratio_minprefix";
	kiln_ref_ratio r;
	double inclusive, eps_lo, eps_hi, *out, *slack;
	kiln_err e;
	if ((e = kiln_ref_ratio_inputs(&r, io, ref)) || (e = kiln_ref_need_scalar(&inclusive, io, ref, "inclusive")) ||
	    (e = kiln_ref_need_scalar(&eps_lo, io, ref, "eps_lo")) ||
	    (e = kiln_ref_need_scalar(&eps_hi, io, ref, "eps_hi")) ||
	    (e = kiln_ref_need_buf(&out, &slack, io, ref, "weight", (size_t)(r.B * r.T))))
		return e;
	if (inclusive != 0 && inclusive != 1)
		return kiln_error_set(KILN_EINVAL, "reference %s: scalar inclusive must be 0 or 1, got %g", ref, inclusive);
	const double lo = 1.0 - eps_lo, hi = 1.0 + eps_hi;
	for (int64_t b = 0; b < r.B; b++) {
		double min_log = INFINITY; /* running min of the clamped log-ratios seen so far */
		for (int64_t t = 0; t < r.T; t++) {
			int64_t i = b * r.T + t;
			if (r.mask[i] == 0) {
				out[i] = 0;
				continue;
			}
			double d = kiln_ref_clamp(r.logp_new[i] - r.logp_old[i], -20, 20);
			if (inclusive != 0)
				min_log = fmin(min_log, d);
			double w = exp((isinf(min_log) ? 0.0 : min_log) + d);
			if (inclusive == 0)
				min_log = fmin(min_log, d);
			out[i] = kiln_ref_clamp(w, lo, hi);
			if (fabs(w - lo) <= 1e-5 * lo)
				slack[i] = 1e-5 * lo;
			else if (fabs(w - hi) <= 1e-5 * hi)
				slack[i] = 1e-5 * hi;
		}
	}
	return KILN_OK;
}
