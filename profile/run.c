/* profile: the launch-plan runner. It evaluates each launch's dims, marshals arguments
 * in kiln's ABI (buffers and scratch as device pointers, scalars by value in their
 * dtype, symbols/knobs/sm_count as int64), checks them against the kernel's parameter
 * sizes, and launches in order with scratch allocated and poisoned. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_int.h"

#define RUN_MAX_ARGS 64
#define RUN_MAX_SCRATCH 16

typedef union arg_val {
	uint64_t ptr;
	float f32;
	double f64;
	int32_t i32;
	int64_t i64;
	uint32_t u32;
} arg_val;

/* The value and size of one named argument. */
static kiln_err marshal(arg_val *v, uint32_t *size, const char *name, const kiln_target *t,
			const kiln_plan *p, const kiln_env *env, const double *scalars, const uint64_t *buf_addr,
			const uint64_t *scratch_addr, size_t li, size_t ai)
{
	for (size_t b = 0; b < t->nbuffers; b++)
		if (strcmp(t->buffers[b].name, name) == 0) {
			v->ptr = buf_addr[b];
			*size = 8;
			return 0;
		}
	for (size_t s = 0; s < p->nscratch; s++)
		if (strcmp(p->scratch[s].name, name) == 0) {
			v->ptr = scratch_addr[s];
			*size = 8;
			return 0;
		}
	const kiln_scalar_spec *sc = kiln_target_scalar(t, name);
	if (sc) {
		double x = scalars ? scalars[sc - t->scalars] : sc->value;
		switch (sc->dtype) {
		case KILN_F32: v->f32 = (float)x; *size = 4; return 0;
		case KILN_F64: v->f64 = x; *size = 8; return 0;
		case KILN_I32: v->i32 = (int32_t)x; *size = 4; return 0;
		case KILN_I64: v->i64 = (int64_t)x; *size = 8; return 0;
		case KILN_U32: v->u32 = (uint32_t)x; *size = 4; return 0;
		default:
			return kiln_error_set(KILN_EINVAL, "launch %zu (%s): argument %zu '%s': scalar dtype %s cannot be passed",
					      li, p->launches[li].kernel, ai, name, kiln_dtype_name(sc->dtype));
		}
	}
	int64_t iv;
	if (kiln_env_get(env, name, &iv)) {
		v->i64 = iv;
		*size = 8;
		return 0;
	}
	return kiln_error_set(KILN_EINVAL, "launch %zu (%s): argument %zu '%s' is not a buffer, scalar, symbol, knob or scratch name",
			      li, p->launches[li].kernel, ai, name);
}

/* dst += src for the summed counters; the "last launch" fields are copied. */
static void counters_add(kiln_device_counters *dst, const kiln_device_counters *src)
{
	uint64_t *d = (uint64_t *)dst;
	const uint64_t *s = (const uint64_t *)src;
	for (size_t i = 0; i < offsetof(kiln_device_counters, threads_per_block) / sizeof(uint64_t); i++)
		d[i] += s[i];
	dst->threads_per_block = src->threads_per_block;
	dst->dyn_shared = src->dyn_shared;
	dst->static_shared = src->static_shared;
	if (src->regs)
		dst->regs = src->regs;
}

void kiln_device_record_plans(kiln_device *dev, kiln_plan_record *recs, size_t max, size_t *n)
{
	dev->rec = recs && n ? recs : NULL;
	dev->rec_max = dev->rec ? max : 0;
	dev->rec_n = dev->rec ? n : NULL;
}

kiln_err kiln_plan_run(kiln_device *dev, const kiln_module *mod, const kiln_target *t,
		       const kiln_plan *p, const kiln_env *env_in, const double *scalars, const uint64_t *buf_addr,
		       uint32_t scratch_poison, kiln_device_counters *counters,
		       size_t *failed_launch)
{
	kiln_err e = 0;
	kiln_env env = *env_in;
	uint64_t scratch[RUN_MAX_SCRATCH] = {0};
	size_t nscratch = 0;
	if (failed_launch)
		*failed_launch = (size_t)-1;
	if (p->nscratch > RUN_MAX_SCRATCH)
		return kiln_error_set(KILN_EINVAL, "plan: at most %d scratch buffers", RUN_MAX_SCRATCH);
	int64_t sm;
	/* verification's cap-breaking set passes a small sm_count of its own */
	if (!kiln_env_get(&env, "sm_count", &sm) && (e = kiln_env_set(&env, "sm_count", (int64_t)dev->info.sm_count)))
		return e;
	kiln_plan_record *rec = NULL;
	if (dev->rec && *dev->rec_n < dev->rec_max) {
		rec = &dev->rec[(*dev->rec_n)++];
		memset(rec, 0, sizeof(*rec));
		rec->env = env;
	}
	for (; nscratch < p->nscratch; nscratch++) {
		const kiln_scratch *s = &p->scratch[nscratch];
		int64_t count;
		char where[160];
		snprintf(where, sizeof(where), "scratch '%s' count", s->name);
		if ((e = kiln_expr_eval(&count, s->count, &env, where)))
			goto done;
		size_t es = kiln_dtype_size(s->dtype);
		if (count < 0 || (uint64_t)count > ((uint64_t)1 << 34) / es) {
			e = kiln_error_set(KILN_EINVAL, "scratch '%s': count %lld is out of range", s->name, (long long)count);
			goto done;
		}
		size_t bytes = (size_t)count * es;
		if ((e = kiln_device_alloc(dev, &scratch[nscratch], bytes ? bytes : 1)) ||
		    (bytes && (e = kiln_device_poison(dev, scratch[nscratch], bytes, scratch_poison))))
			goto done;
	}
	for (size_t li = 0; li < p->nlaunches; li++) {
		const kiln_launch *l = &p->launches[li];
		kiln_dims d;
		arg_val vals[RUN_MAX_ARGS];
		const void *ptrs[RUN_MAX_ARGS];
		uint32_t psizes[RUN_MAX_ARGS];
		size_t np = 0;
		if (failed_launch)
			*failed_launch = li;
		if ((e = kiln_plan_dims(&d, p, li, &env)))
			goto done;
		if (l->nargs > RUN_MAX_ARGS) {
			e = kiln_error_set(KILN_EINVAL, "launch %zu (%s): at most %d arguments", li, l->kernel, RUN_MAX_ARGS);
			goto done;
		}
		e = kiln_module_params(mod, l->kernel, &np, psizes, RUN_MAX_ARGS);
		if (e == KILN_ENOTFOUND) {
			e = kiln_error_set(KILN_EINVAL, "launch %zu (%s): the module has no kernel named '%s' (is it extern \"C\" __global__?)",
					   li, l->kernel, l->kernel);
			goto done;
		}
		if (e)
			goto done;
		if (np != l->nargs) {
			e = kiln_error_set(KILN_EINVAL, "launch %zu (%s): the plan passes %zu arguments but the kernel takes %zu",
					   li, l->kernel, l->nargs, np);
			goto done;
		}
		for (size_t ai = 0; ai < l->nargs; ai++) {
			uint32_t sz = 0;
			memset(&vals[ai], 0, sizeof(vals[ai]));
			if ((e = marshal(&vals[ai], &sz, l->args[ai], t, p, &env, scalars, buf_addr, scratch, li, ai)))
				goto done;
			if (sz != psizes[ai]) {
				e = kiln_error_set(KILN_EINVAL, "launch %zu (%s): argument %zu '%s' is %u bytes but the kernel's param %zu is %u bytes",
						   li, l->kernel, ai, l->args[ai], sz, ai, psizes[ai]);
				goto done;
			}
			ptrs[ai] = &vals[ai];
		}
		kiln_device_counters one;
		memset(&one, 0, sizeof(one));
		e = kiln_device_launch(dev, mod, l->kernel, &d, ptrs, counters || rec ? &one : NULL);
		if (counters)
			counters_add(counters, &one);
		if (rec && li < KILN_PLAN_MAX_LAUNCHES) {
			rec->launch[li] = one;
			rec->dims[li] = d;
			rec->nlaunches = li + 1;
		}
		if (e) {
			if (e == KILN_EFAULT)
				kiln_error_set(e, "launch %zu (%s): %s", li, l->kernel, dev->fault.text);
			goto done;
		}
	}
	if ((e = kiln_device_sync(dev)))
		goto done;
	if (rec)
		rec->ok = p->nlaunches <= KILN_PLAN_MAX_LAUNCHES;
	if (failed_launch)
		*failed_launch = (size_t)-1;
done:
	for (size_t s = 0; s < nscratch; s++)
		if (scratch[s])
			kiln_device_mem_free(dev, scratch[s]);
	return e;
}
