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

struct kiln_device {
	const kiln_device_ops *ops;
	void *impl;
	kiln_device_info info;
	kiln_device_fault fault;
};

struct kiln_module {
	kiln_device *dev;
	void *impl;
};

/* Backends: fill dev->ops, dev->impl and dev->info. */
kiln_err kiln_device_emu_init(kiln_device *dev, const kiln_device_options *o);

#endif
