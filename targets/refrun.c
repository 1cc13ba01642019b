/* Running a target's float64 reference on one input set: every buffer widened to a
 * double array (in: the inputs; inout: initial values the reference overwrites; out:
 * zeros), zeroed slack arrays for out/inout buffers, and the accessors a reference
 * uses. Scalars are seen as the kernel sees them: rounded to their dtype. */
#include "targets/targets_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static long index_of(const kiln_ref_io *io, const char *name)
{
	return io && name ? kiln_target_buffer_index(io->t, name) : -1;
}

double *kiln_ref_buf(kiln_ref_io *io, const char *name)
{
	long i = index_of(io, name);
	return i < 0 ? NULL : io->bufs[i];
}

double *kiln_ref_slack(kiln_ref_io *io, const char *name)
{
	long i = index_of(io, name);
	return i < 0 ? NULL : io->slack[i];
}

size_t kiln_ref_count(const kiln_ref_io *io, const char *name)
{
	long i = index_of(io, name);
	return i < 0 ? 0 : io->count[i];
}

double kiln_ref_scalar(const kiln_ref_io *io, const char *name)
{
	const kiln_scalar_spec *s = io && name ? kiln_target_scalar(io->t, name) : NULL;
	if (!s)
		return NAN;
	unsigned char tmp[8];
	kiln_dtype_store(s->dtype, tmp, 0, io->scalars ? io->scalars[s - io->t->scalars] : s->value);
	return kiln_dtype_load(s->dtype, tmp, 0);
}

int64_t kiln_ref_symbol(const kiln_ref_io *io, const char *name)
{
	int64_t v;
	return io && name && kiln_env_get(io->sizes, name, &v) ? v : -1;
}

/* True when no in/inout buffer holds a NaN or an Inf: then an external reference's
 * NaN output is a bug in the reference, not a value a kernel must reproduce. */
static bool inputs_finite(const kiln_target *t, const kiln_refdata *r)
{
	for (size_t i = 0; i < r->n; i++)
		for (size_t j = 0; t->buffers[i].role != KILN_ROLE_OUT && j < r->count[i]; j++)
			if (!isfinite(r->values[i][j]))
				return false;
	return true;
}

/* An external reference's answer: NaN only where some input was not finite, slack
 * finite and >= 0. Built-in references are trusted and not checked. */
static kiln_err check_external(const kiln_target *t, const kiln_refdata *r, bool finite_in)
{
	const char *file = t->ref_kind == KILN_REF_C ? "reference.c" : "reference.py";
	for (size_t i = 0; i < r->n; i++) {
		if (t->buffers[i].role == KILN_ROLE_IN)
			continue;
		for (size_t j = 0; j < r->count[i]; j++) {
			if (finite_in && isnan(r->values[i][j]))
				return kiln_error_set(KILN_EINVAL, "target %s: %s gave NaN for %s[%zu] although every input is "
						      "finite (a kernel must not produce NaN there: fix the reference)",
						      t->name, file, t->buffers[i].name, j);
			if (!(r->slack[i][j] >= 0) || isinf(r->slack[i][j]))
				return kiln_error_set(KILN_EINVAL, "target %s: %s gave slack %g for %s[%zu] (slack must be "
						      "finite and >= 0)", t->name, file, r->slack[i][j], t->buffers[i].name, j);
		}
	}
	return KILN_OK;
}

void kiln_refdata_free(kiln_refdata *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n; i++) {
		free(r->values ? r->values[i] : NULL);
		free(r->slack ? r->slack[i] : NULL);
	}
	free(r->values);
	free(r->slack);
	free(r->count);
	free(r);
}

kiln_err kiln_reference_run(kiln_refdata **out, const kiln_target *t, const kiln_inputs *in)
{
	kiln_refdata *r = NULL;
	kiln_err e = KILN_ENOMEM;
	*out = NULL;
	if (!t->ref_fn && t->ref_kind == KILN_REF_BUILTIN)
		return kiln_error_set(KILN_EINVAL, "target %s: reference \"%s\" is not resolved", t->name,
				      t->reference ? t->reference : "");
	if (in->n != t->nbuffers)
		return kiln_error_set(KILN_EINVAL, "target %s: input set has %zu buffers, the target %zu", t->name,
				      in->n, t->nbuffers);
	size_t n = t->nbuffers;
	if (!(r = kiln_calloc(1, sizeof(*r))) || !(r->values = kiln_calloc(n, sizeof(double *))) ||
	    !(r->slack = kiln_calloc(n, sizeof(double *))) || !(r->count = kiln_calloc(n, sizeof(size_t))))
		goto done;
	r->n = n;
	for (size_t i = 0; i < n; i++) {
		const kiln_hostbuf *hb = &in->bufs[i];
		size_t c = hb->count;
		r->count[i] = c;
		if (!(r->values[i] = kiln_calloc(c ? c : 1, sizeof(double))))
			goto done;
		if (t->buffers[i].role != KILN_ROLE_OUT)
			for (size_t j = 0; j < c; j++)
				r->values[i][j] = kiln_dtype_load(t->buffers[i].dtype, hb->data, j);
		if (t->buffers[i].role != KILN_ROLE_IN && !(r->slack[i] = kiln_calloc(c ? c : 1, sizeof(double))))
			goto done;
	}
	kiln_ref_io io = {t, &in->sizes, r->values, r->slack, r->count, n,
			  in->scalars && in->nscalars == t->nscalars ? in->scalars : NULL, NULL};
	kiln_error_clear();
	if (t->ref_fn == NULL) {
		bool finite_in = inputs_finite(t, r);
		if ((e = t->ref_kind == KILN_REF_C ? kiln_extref_run_c(t, &io) : kiln_extref_run_py(t, &io)) ||
		    (e = check_external(t, r, finite_in)))
			goto done;
	} else if ((e = t->ref_fn(&io))) {
		if (kiln_error_last()[0])
			kiln_error_wrap(e, "target %s: reference %s", t->name, t->reference);
		else
			kiln_error_set(e, "target %s: reference %s failed (%s)", t->name, t->reference, kiln_err_name(e));
		goto done;
	}
	*out = r;
	r = NULL;
	e = KILN_OK;
done:
	if (e == KILN_ENOMEM)
		kiln_error_set(KILN_ENOMEM, "target %s: out of memory for the reference's arrays", t->name);
	kiln_refdata_free(r);
	return e;
}
