/* scale_rownorm reference: the SCALE optimizer's update for one weight matrix ("A
 * Minimalist Optimizer Design for LLM Pretraining", OptimAI-Lab scale_optimizer.py):
 * the gradient's rows normalized by their RMS over the input dimension, floored at 1e-8
 * so an all-zero row gives u = 0, then W <- W*(1 - lr*wd) - lr*u. float64 throughout. */
#include "targets/references.h"

#include <math.h>

kiln_err kiln_ref_scale_rownorm(kiln_ref_io *io)
{
	static const char *ref = "scale_rownorm";
	int64_t rows, cols;
	double lr, wd, *w, *gr;
	kiln_err e;
	if ((e = kiln_ref_need_symbol(&rows, io, ref, "rows")) || (e = kiln_ref_need_symbol(&cols, io, ref, "cols")) ||
	    (e = kiln_ref_need_scalar(&lr, io, ref, "lr")) || (e = kiln_ref_need_scalar(&wd, io, ref, "weight_decay")) ||
	    (e = kiln_ref_need_buf(&w, NULL, io, ref, "W", (size_t)(rows * cols))) ||
	    (e = kiln_ref_need_buf(&gr, NULL, io, ref, "G", (size_t)(rows * cols))))
		return e;
	for (int64_t r = 0; r < rows; r++) {
		const double *g = gr + r * cols;
		double *wr = w + r * cols;
		double ss = 0;
		for (int64_t j = 0; j < cols; j++)
			ss += g[j] * g[j];
		double scale = fmax(sqrt(ss / (double)cols), 1e-8);
		for (int64_t j = 0; j < cols; j++)
			wr[j] = wr[j] * (1.0 - lr * wd) - lr * (g[j] / scale);
	}
	return KILN_OK;
}
