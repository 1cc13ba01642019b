/* targets: the lookup of built-in float64 references (name -> function, in the table
 * generated from the target folders) and the checked accessors they share. Kernel
 * argument ABI, the contract every seed.cu and candidate follows: launch.json "args" are
 * passed in order; a buffer (or scratch) is a device pointer of its dtype (f32 float*,
 * bf16 __nv_bfloat16* or unsigned short*, u8 unsigned char*, bool const bool* / const
 * unsigned char*); a scalar is passed by value in its dtype (f32 float, i32 int, ...); a
 * symbol, knob or sm_count is a long long. */
#include "targets/references.h"

#include <string.h>

kiln_ref_fn kiln_reference_lookup(const char *name)
{
	for (size_t i = 0; name && kiln_ref_builtins[i].name; i++)
		if (strcmp(kiln_ref_builtins[i].name, name) == 0)
			return kiln_ref_builtins[i].fn;
	return NULL;
}

kiln_err kiln_ref_need_buf(double **out, double **slack, kiln_ref_io *io, const char *ref,
			   const char *name, size_t count)
{
	double *b = kiln_ref_buf(io, name);
	if (!b)
		return kiln_error_set(KILN_EINVAL, "reference %s: the target has no buffer \"%s\"", ref, name);
	size_t have = kiln_ref_count(io, name);
	if (have != count)
		return kiln_error_set(KILN_EINVAL, "reference %s: buffer \"%s\" has %zu elements, expected %zu", ref,
				      name, have, count);
	if (slack && !(*slack = kiln_ref_slack(io, name)))
		return kiln_error_set(KILN_EINVAL, "reference %s: buffer \"%s\" must be out or inout", ref, name);
	*out = b;
	return KILN_OK;
}

kiln_err kiln_ref_need_scalar(double *out, const kiln_ref_io *io, const char *ref, const char *name)
{
	if (!kiln_target_scalar(io->t, name))
		return kiln_error_set(KILN_EINVAL, "reference %s: the target has no scalar \"%s\"", ref, name);
	*out = kiln_ref_scalar(io, name);
	return KILN_OK;
}

kiln_err kiln_ref_need_symbol(int64_t *out, const kiln_ref_io *io, const char *ref, const char *name)
{
	int64_t v = kiln_ref_symbol(io, name);
	if (v < 0)
		return kiln_error_set(KILN_EINVAL, "reference %s: no size for symbol \"%s\"", ref, name);
	*out = v;
	return KILN_OK;
}
