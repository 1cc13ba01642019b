/* profile: private. The device vtable every backend fills (emu in device_emu.c; cuda,
 * loaded with dlopen, later), and the device/module structs the public functions in
 * device.c dispatch through. */
#ifndef KILN_PROFILE_INT_H
#define KILN_PROFILE_INT_H

#include "profile/profile.h"

typedef struct kiln_device_ops {
	void (*destroy)(void *impl);
	kiln_err (*alloc)(void *impl, uint64_t *out, size_t bytes);
	kiln_err (*mem_free)(void *impl, uint64_t addr);
	kiln_err (*write)(void *impl, uint64_t addr, const void *src, size_t n);
	kiln_err (*read)(void *impl, void *dst, uint64_t addr, size_t n);
	kiln_err (*poison)(void *impl, uint64_t addr, size_t n, uint32_t pattern);
	kiln_err (*module_load)(void *impl, void **out, const kiln_compiled *c);
	void (*module_free)(void *mod);
	kiln_err (*params)(const void *mod, const char *kernel, size_t *n, uint32_t *sizes, size_t max);
	/* On KILN_EFAULT the backend fills *fault. */
	kiln_err (*launch)(void *impl, const void *mod, const char *kernel, const kiln_dims *d,
			   const void *const *args, kiln_device_counters *c, kiln_device_fault *fault);
	kiln_err (*sync)(void *impl);
} kiln_device_ops;

/* Per-rep durations of a timed plan (cuda). */
typedef struct kiln_time_samples {
	double *us;          /* owned; n plan times in microseconds */
	size_t n, cap;
	bool cupti;          /* from CUPTI kernel records (false: CUDA events) */
	double seconds;      /* wall time spent timing */
} kiln_time_samples;

struct kiln_device {
	const kiln_device_ops *ops;
	void *impl;
	kiln_device_info info;
	kiln_device_fault fault;
	kiln_plan_record *rec;   /* kiln_device_record_plans: borrowed, NULL when off */
	size_t rec_max, *rec_n;
	/* cuda only (NULL elsewhere): times run(ctx, rep) — one whole plan per call — with
	 * warm-up, an L2 flush before every rep and CUPTI/event durations (time.c). */
	kiln_err (*time_plan)(void *impl, kiln_err (*run)(void *ctx, size_t rep), void *ctx,
			      size_t kernels_per_rep, double max_seconds, kiln_time_samples *out);
};

struct kiln_module {
	kiln_device *dev;
	void *impl;
};

/* Backends: fill dev->ops, dev->impl and dev->info. */
kiln_err kiln_device_emu_init(kiln_device *dev, const kiln_device_options *o);
/* emu: run later launches' blocks in reverse blockIdx order (verify.c); other devices: no-op. */
void kiln_device_emu_reverse_blocks(kiln_device *dev, bool reverse);
/* emu: the following launches run in reverse blockIdx order (reverse) or on the
 * interleaved schedule drawn from seed (0 = the device's default seed). */
void kiln_device_emu_schedule(kiln_device *dev, bool reverse, uint64_t seed);
/* emu: the instruction budget of the following launches; 0 = the device's own. */
void kiln_device_emu_budget(kiln_device *dev, uint64_t budget);
/* cuda (device_cuda.c): KILN_EUNSUPPORTED with one line when no driver/GPU is usable. */
kiln_err kiln_device_cuda_init(kiln_device *dev, const kiln_device_options *o);

#endif
