/* profile: the device front end. kiln_device_open picks a backend by name and every
 * public call dispatches through its vtable; the last fault is kept here so callers see
 * one shape whichever backend ran. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_int.h"

kiln_err kiln_device_open(kiln_device **out, const char *kind, const kiln_device_options *o)
{
	kiln_err e = 0;
	kiln_device *dev = NULL;
	*out = NULL;
	if (!kind || !*kind)
		kind = "auto";
	if (strcmp(kind, "emu") != 0 && strcmp(kind, "auto") != 0 && strcmp(kind, "cuda") != 0)
		return kiln_error_set(KILN_EINVAL, "device \"%s\": unknown kind (expected emu, cuda or auto)", kind);
	if (!(dev = kiln_calloc(1, sizeof(*dev))))
		return kiln_error_set(KILN_ENOMEM, "device: out of memory");
	if (strcmp(kind, "emu") != 0) {
		/* cuda, or auto: cuda when a driver and GPU are usable, else the emulator */
		e = kiln_device_cuda_init(dev, o);
		if (!e || strcmp(kind, "cuda") == 0 || e == KILN_ENOMEM)
			goto opened;
		char why[200];
		snprintf(why, sizeof(why), "%s", kiln_error_last());
		kiln_error_clear();
		memset(dev, 0, sizeof(*dev));
		if ((e = kiln_device_emu_init(dev, o)))
			goto done;
		snprintf(dev->info.note, sizeof(dev->info.note), "no usable GPU (%.160s): using the PTX emulator, timings are modeled", why);
		goto opened;
	}
	e = kiln_device_emu_init(dev, o);
opened:
	if (e)
		goto done;
	if (o)
		dev->opts = *o;
	*out = dev;
	dev = NULL;
done:
	free(dev);
	return e;
}

kiln_err kiln_device_emu_sibling(kiln_device **out, const kiln_device *dev)
{
	return kiln_device_open(out, "emu", &dev->opts);
}

void kiln_device_free(kiln_device *dev)
{
	if (!dev)
		return;
	if (dev->ops && dev->impl)
		dev->ops->destroy(dev->impl);
	free(dev);
}

const kiln_device_info *kiln_device_info_get(const kiln_device *dev)
{
	return &dev->info;
}

kiln_err kiln_device_alloc(kiln_device *dev, uint64_t *out_addr, size_t bytes)
{
	return dev->ops->alloc(dev->impl, out_addr, bytes);
}

kiln_err kiln_device_mem_free(kiln_device *dev, uint64_t addr)
{
	return dev->ops->mem_free(dev->impl, addr);
}

kiln_err kiln_device_write(kiln_device *dev, uint64_t addr, const void *src, size_t n)
{
	return dev->ops->write(dev->impl, addr, src, n);
}

kiln_err kiln_device_read(kiln_device *dev, void *dst, uint64_t addr, size_t n)
{
	return dev->ops->read(dev->impl, dst, addr, n);
}

kiln_err kiln_device_poison(kiln_device *dev, uint64_t addr, size_t n, uint32_t pattern32)
{
	return dev->ops->poison(dev->impl, addr, n, pattern32);
}

kiln_err kiln_device_module_load(kiln_device *dev, kiln_module **out, const kiln_compiled *c)
{
	kiln_err e = 0;
	kiln_module *m = NULL;
	*out = NULL;
	if (!c || !c->ok)
		return kiln_error_set(KILN_EINVAL, "module load: the compile did not succeed");
	if (!(m = kiln_calloc(1, sizeof(*m))))
		return kiln_error_set(KILN_ENOMEM, "module load: out of memory");
	m->dev = dev;
	if ((e = dev->ops->module_load(dev->impl, &m->impl, c)))
		goto done;
	*out = m;
	m = NULL;
done:
	free(m);
	return e;
}

void kiln_module_free(kiln_module *mod)
{
	if (!mod)
		return;
	if (mod->impl)
		mod->dev->ops->module_free(mod->impl);
	free(mod);
}

kiln_err kiln_module_params(const kiln_module *mod, const char *kernel, size_t *n,
			    uint32_t *sizes, size_t max)
{
	return mod->dev->ops->params(mod->impl, kernel, n, sizes, max);
}

kiln_err kiln_device_launch(kiln_device *dev, const kiln_module *mod, const char *kernel,
			    const kiln_dims *dims, const void *const *args,
			    kiln_device_counters *counters)
{
	memset(&dev->fault, 0, sizeof(dev->fault));
	kiln_err e = dev->ops->launch(dev->impl, mod->impl, kernel, dims, args, counters, &dev->fault);
	if (e == KILN_EFAULT && dev->fault.kind == KILN_FAULT_NONE) {
		dev->fault.kind = KILN_FAULT_DEVICE;
		snprintf(dev->fault.text, sizeof(dev->fault.text), "%s", kiln_error_last());
	}
	return e;
}

kiln_err kiln_device_sync(kiln_device *dev)
{
	return dev->ops->sync(dev->impl);
}

const kiln_device_fault *kiln_device_last_fault(const kiln_device *dev)
{
	return &dev->fault;
}

const char *kiln_fault_kind_name(kiln_fault_kind k)
{
	static const char *const names[] = {"none", "out-of-bounds", "misaligned", "uninitialized-read",
		"race", "budget", "unsupported", "limit", "trap", "device"};
	return (unsigned)k < sizeof(names) / sizeof(names[0]) ? names[k] : "unknown";
}
