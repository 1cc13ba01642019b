/* sinkgd reference: the SinkGD update of Scetbon et al. 2025, "Gradient
 * Multi-Normalization for Stateless and Scalable LLM Training" (Algorithm SinkGD):
 * X = G, then L times a row l2 normalization to norm sqrt(cols) followed by a column
 * normalization to norm sqrt(rows), then W -= lr*X. The paper divides by the norm; we
 * floor it at 1e-12 so that a zero row or column stays zero instead of 0/0. L is an input
 * of the paper's algorithm; this target fixes L = 3. float64. Each W element gets a slack
 * of 64 fp32 roundings of lr*|X|: an fp32 kernel rounds X in every pass.
 * Written against the public kiln/reference.h, as any user's reference.c. */
#include <kiln/reference.h>

#include <math.h>
#include <stdlib.h>

#define ITERS 3
#define EPS32 1.1920928955078125e-07

/* Scales each of `lines` lines of x (line l: len elements from l * line_step, step apart)
 * to l2 norm sqrt(len); a norm under 1e-12 is taken as 1e-12. */
static void scale_lines(double *x, int64_t lines, int64_t len, int64_t line_step, int64_t step)
{
	for (int64_t l = 0; l < lines; l++) {
		double *v = x + l * line_step, ss = 0;
		for (int64_t k = 0; k < len; k++)
			ss += v[k * step] * v[k * step];
		double s = sqrt((double)len) / fmax(sqrt(ss), 1e-12);
		for (int64_t k = 0; k < len; k++)
			v[k * step] *= s;
	}
}

int kiln_reference(kiln_ref_io *io)
{
	int64_t rows = kiln_ref_symbol(io, "rows"), cols = kiln_ref_symbol(io, "cols");
	double lr = kiln_ref_scalar(io, "lr");
	double *w = kiln_ref_buf(io, "W"), *g = kiln_ref_buf(io, "G"), *slack = kiln_ref_slack(io, "W");
	if (rows < 0 || cols < 0 || !w || !g || !slack || isnan(lr))
		return kiln_ref_fail(io, "sinkgd needs symbols rows, cols, buffers W, G and scalar lr");
	size_t n = (size_t)(rows * cols);
	if (kiln_ref_count(io, "W") != n || kiln_ref_count(io, "G") != n)
		return kiln_ref_fail(io, "W and G must be [rows, cols]");
	double *x = malloc((n ? n : 1) * sizeof(double));
	if (!x)
		return kiln_ref_fail(io, "out of memory");
	for (size_t i = 0; i < n; i++)
		x[i] = g[i];
	for (int it = 0; it < ITERS; it++) {
		scale_lines(x, rows, cols, cols, 1); /* rows to norm sqrt(cols) */
		scale_lines(x, cols, rows, 1, cols); /* columns to norm sqrt(rows) */
	}
	for (size_t i = 0; i < n; i++) {
		w[i] -= lr * x[i];
		slack[i] = 64 * EPS32 * fabs(lr * x[i]);
	}
	free(x);
	return 0;
}
