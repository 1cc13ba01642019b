/* ratio_seq reference: GSPO's sequence-level importance ratio (Group Sequence Policy
 * Optimization, Zheng et al. 2025): per sequence the exponentiated length-normalized sum
 * of valid log-ratios, s_i = exp(sum_t m_t*Delta_t / max(sum_t m_t, 1)). Masked tokens
 * hold NaN/Inf garbage and are skipped by selection. float64 throughout. */
#include "targets/references.h"

#include <math.h>

kiln_err kiln_ref_ratio_seq(kiln_ref_io *io)
{
	static const char *ref = "ratio_seq";
	kiln_ref_ratio r;
	double *out;
	kiln_err e;
	if ((e = kiln_ref_ratio_inputs(&r, io, ref)) || (e = kiln_ref_need_buf(&out, NULL, io, ref, "ratio", (size_t)r.B)))
		return e;
	for (int64_t b = 0; b < r.B; b++) {
		double sum = 0, count = 0;
		for (int64_t t = 0; t < r.T; t++) {
			int64_t i = b * r.T + t;
			if (r.mask[i] != 0) {
				sum += r.logp_new[i] - r.logp_old[i];
				count += 1;
			}
		}
		out[b] = exp(sum / fmax(count, 1.0));
	}
	return KILN_OK;
}
