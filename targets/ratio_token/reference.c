/* Importance-ratio references for RL post-training of LLMs over padded [B, T] fp32
 * log-probs with a response mask (verl / TRL / OpenRLHF layout). Masked positions hold
 * NaN/Inf garbage in the log-prob inputs: every reference selects on the mask and never
 * multiplies by it, so garbage cannot leak, and writes 0 at masked positions. This file:
 * ratio_token (PPO/GRPO), r_t = exp(clamp(logp_new - logp_old, -20, 20)); and the
 * shared input checks of the ratio_* references. */
#include "targets/references.h"

#include <math.h>

kiln_err kiln_ref_ratio_inputs(kiln_ref_ratio *r, kiln_ref_io *io, const char *ref)
{
	kiln_err e;
	if ((e = kiln_ref_need_symbol(&r->B, io, ref, "B")) || (e = kiln_ref_need_symbol(&r->T, io, ref, "T")))
		return e;
	size_t n = (size_t)(r->B * r->T);
	if ((e = kiln_ref_need_buf(&r->logp_new, NULL, io, ref, "logp_new", n)) ||
	    (e = kiln_ref_need_buf(&r->logp_old, NULL, io, ref, "logp_old", n)) ||
	    (e = kiln_ref_need_buf(&r->mask, NULL, io, ref, "mask", n)))
		return e;
	return KILN_OK;
}

double kiln_ref_clamp(double x, double lo, double hi)
{
	return x < lo ? lo : x > hi ? hi : x;
}

kiln_err kiln_ref_ratio_token(kiln_ref_io *io)
{
	static const char *ref = "ratio_token";
	kiln_ref_ratio r;
	double *out;
	kiln_err e;
	if ((e = kiln_ref_ratio_inputs(&r, io, ref)) ||
	    (e = kiln_ref_need_buf(&out, NULL, io, ref, "ratio", (size_t)(r.B * r.T))))
		return e;
	for (int64_t i = 0; i < r.B * r.T; i++)
		out[i] = r.mask[i] != 0 ? exp(kiln_ref_clamp(r.logp_new[i] - r.logp_old[i], -20, 20)) : 0.0;
	return KILN_OK;
}
