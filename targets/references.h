/* targets: the built-in float64 references, one per target folder (targets/<name>/
 * reference.c), and the helpers they share. Private to targets/: the registry generated
 * from the folders maps a target.json "reference" name to its function. Each reference
 * reads its buffers, scalars and symbols through kiln_ref_io (targets_int.h) and
 * returns KILN_EINVAL naming the missing name when the target does not match it. */
#ifndef KILN_TARGETS_REFERENCES_H
#define KILN_TARGETS_REFERENCES_H

#include "targets/targets_int.h"

/* The built-in references, one per folder targets/<name>/ with a target.json: its
 * reference.c defines kiln_err kiln_ref_<name>(kiln_ref_io *io), and this table, generated
 * from the folders (scripts/builtin_targets.py, the build's builtin_registry.c), maps
 * target.json's "reference": "<name>" to it. Sorted by name, ended by {NULL, NULL}. */
typedef struct kiln_ref_builtin {
	const char *name;
	kiln_ref_fn fn;
} kiln_ref_builtin;
extern const kiln_ref_builtin kiln_ref_builtins[];

/* AdamW hyper-parameters as the kernel sees them, read from the scalars lr, beta1,
 * beta2, eps, weight_decay and step (>= 1), and one element's update in place
 * (returns the lr-scaled Adam step that was subtracted from p). The weight's slack is
 * KILN_REF_ADAMW_STEP_RTOL times |step| (TARGETS.md numerical notes). */
#define KILN_REF_ADAMW_STEP_RTOL 1e-5
typedef struct kiln_ref_adamw_params {
	double lr, beta1, beta2, eps, wd;
	double bc1, sqrt_bc2; /* 1 - beta1^t, sqrt(1 - beta2^t) */
} kiln_ref_adamw_params;
kiln_err kiln_ref_adamw_hp(kiln_ref_adamw_params *hp, const kiln_ref_io *io, const char *ref);
double kiln_ref_adamw_elem(const kiln_ref_adamw_params *hp, double *p, double g, double *m, double *v);

/* The slack of an f16/bf16 output that is the float64 x rounded to nearest even: one ulp
 * of dt where x lies closer than err (the fp32 error of the kernel's value before rounding) of
 * a midpoint between two dt values, else 0: an exact midpoint (err 0) rounds to even
 * (targets/adamw_bf16/reference.c). */
double kiln_ref_half_tie_slack(kiln_dtype dt, double x, double err);

/* bitsandbytes create_dynamic_map(signed, max_exponent_bits=7, total_bits=8), sorted
 * ascending, with torch's float32 arithmetic emulated (targets/adam8bit/reference.c). */
void kiln_ref_dynamic_map(float out[256], bool is_signed);

/* The inputs every ratio_* target shares: symbols B, T and the [B, T] buffers logp_new,
 * logp_old (garbage where masked) and mask (targets/ratio_token/reference.c). */
typedef struct kiln_ref_ratio {
	int64_t B, T;
	double *logp_new, *logp_old, *mask;
} kiln_ref_ratio;
kiln_err kiln_ref_ratio_inputs(kiln_ref_ratio *r, kiln_ref_io *io, const char *ref);
double kiln_ref_clamp(double x, double lo, double hi);

/* Fetches buffer `name` with exactly `count` elements (and its slack when want_slack);
 * a missing buffer or a count mismatch is KILN_EINVAL naming the reference. */
kiln_err kiln_ref_need_buf(double **out, double **slack, kiln_ref_io *io, const char *ref,
			   const char *name, size_t count);
/* Fetches scalar `name` (as the kernel sees it); a missing one is KILN_EINVAL. */
kiln_err kiln_ref_need_scalar(double *out, const kiln_ref_io *io, const char *ref, const char *name);
/* Fetches symbol `name` (>= 0); a missing one is KILN_EINVAL. */
kiln_err kiln_ref_need_symbol(int64_t *out, const kiln_ref_io *io, const char *ref, const char *name);

#endif
