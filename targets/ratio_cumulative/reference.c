/* ratio_cumulative reference: CTPO's cumulative token ratio (horizon-llm/CTPO, verl
 * core_algos.py): L_t = sum over valid s <= t of clamp(Delta_s, -20, 20); ratio_t =
 * exp(min(L_t, 10)); k_t = number of valid tokens up to t (not the raw index); clipped_t
 * = exp(clamp(min(L_t, 10), -c_lo*k_t^power, c_hi*k_t^power)). Masked positions -> 0 and
 * never enter L. Slack (log space, times the value): the error of an fp32 scan that adds
 * in a tree (a blocked, Hillis-Steele, Blelloch or look-back scan): its ~log2(k) levels
 * round partial sums whose squares add up to about sum d^2 per level, so the error is
 * about u*sqrt(log2(k)*sum d^2); the slack is eps32*(|L_t| + 4*sqrt((1 + log2 k_t)*sum
 * d_s^2)) + 1e-6 (the last add, 8 standard deviations of the tree, exp and pow). A
 * serial fp32 sum over thousands of tokens errs by ~u*k*sigma and does not fit: scan in a
 * tree or accumulate in fp64. A 1e-4 relative bias late in long rows does not fit either. */
#include "targets/references.h"

#include <float.h>
#include <math.h>

kiln_err kiln_ref_ratio_cumulative(kiln_ref_io *io)
{
	static const char *ref = "ratio_cumulative";
	kiln_ref_ratio r;
	double c_lo, c_hi, power, *ratio, *ratio_slack, *clipped, *clipped_slack;
	kiln_err e;
	if ((e = kiln_ref_ratio_inputs(&r, io, ref)) || (e = kiln_ref_need_scalar(&c_lo, io, ref, "c_lo")) ||
	    (e = kiln_ref_need_scalar(&c_hi, io, ref, "c_hi")) || (e = kiln_ref_need_scalar(&power, io, ref, "power")) ||
	    (e = kiln_ref_need_buf(&ratio, &ratio_slack, io, ref, "ratio", (size_t)(r.B * r.T))) ||
	    (e = kiln_ref_need_buf(&clipped, &clipped_slack, io, ref, "clipped", (size_t)(r.B * r.T))))
		return e;
	for (int64_t b = 0; b < r.B; b++) {
		double L = 0, sq_sum = 0, k = 0;
		for (int64_t t = 0; t < r.T; t++) {
			int64_t i = b * r.T + t;
			if (r.mask[i] == 0) {
				ratio[i] = clipped[i] = 0; /* select, never multiply: garbage stays out */
				continue;
			}
			double d = kiln_ref_clamp(r.logp_new[i] - r.logp_old[i], -20, 20);
			L += d;
			sq_sum += d * d;
			k += 1;
			double capped = fmin(L, 10.0), kp = pow(k, power);
			/* clamp and min are 1-Lipschitz: the log-space error carries over */
			double log_err = FLT_EPSILON * (fabs(L) + 4.0 * sqrt((1.0 + log2(k)) * sq_sum)) + 1e-6;
			ratio[i] = exp(capped);
			clipped[i] = exp(kiln_ref_clamp(capped, -c_lo * kp, c_hi * kp));
			ratio_slack[i] = ratio[i] * log_err;
			clipped_slack[i] = clipped[i] * log_err;
		}
	}
	return KILN_OK;
}
