/* adamw_bf16 reference: AdamW (PyTorch _fused_adamw_ math, targets/adamw) on an fp32
 * master copy with bf16 p (out) and g, fp32 m and v. The update runs on the master; p
 * is the new master rounded once to bf16 (nearest even), as a mixed-precision trainer
 * writes back its bf16 model weights. float64 throughout. */
#include "targets/references.h"

#include <math.h>

kiln_err kiln_ref_adamw_bf16(kiln_ref_io *io)
{
	static const char *ref = "adamw_bf16";
	kiln_ref_adamw_params hp;
	int64_t n;
	double *p, *g, *m, *v, *master, *master_slack;
	kiln_err e;
	if ((e = kiln_ref_need_symbol(&n, io, ref, "n")) || (e = kiln_ref_adamw_hp(&hp, io, ref)) ||
	    (e = kiln_ref_need_buf(&p, NULL, io, ref, "p", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&g, NULL, io, ref, "g", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&m, NULL, io, ref, "m", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&v, NULL, io, ref, "v", (size_t)n)) ||
	    (e = kiln_ref_need_buf(&master, &master_slack, io, ref, "master", (size_t)n)))
		return e;
	for (int64_t i = 0; i < n; i++) {
		double step = kiln_ref_adamw_elem(&hp, &master[i], g[i], &m[i], &v[i]);
		master_slack[i] = KILN_REF_ADAMW_STEP_RTOL * fabs(step);
		p[i] = kiln_bf16_to_f64(kiln_f64_to_bf16(master[i]));
	}
	return KILN_OK;
}
