/* profile: the "emu" device backend, a thin adapter from the device vtable to the PTX
 * emulator (profile/emu/emu.h): modules are parsed PTX, faults map onto kiln_fault_kind,
 * and the emulator's counters pass straight through. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_int.h"

#define EMU_DEFAULT_BUDGET 200000000ull  /* the floor; launches get threads x EMU_BUDGET_PER_THREAD when more */
#define EMU_BUDGET_PER_THREAD 4096ull

static void emu_destroy(void *impl) { kiln_emu_free(impl); }
static kiln_err emu_alloc(void *impl, uint64_t *out, size_t n) { return kiln_emu_alloc(impl, out, n); }
static kiln_err emu_mem_free(void *impl, uint64_t a) { return kiln_emu_mem_free(impl, a); }
static kiln_err emu_write(void *impl, uint64_t a, const void *s, size_t n) { return kiln_emu_write(impl, a, s, n); }
static kiln_err emu_read(void *impl, void *d, uint64_t a, size_t n) { return kiln_emu_read(impl, d, a, n); }
static kiln_err emu_poison(void *impl, uint64_t a, size_t n, uint32_t p) { return kiln_emu_poison(impl, a, n, p); }

static kiln_err emu_module_load(void *impl, void **out, const kiln_compiled *c)
{
	(void)impl;
	if (!c->ptx)
		return kiln_error_set(KILN_EINVAL, "module load: the compile has no PTX");
	return kiln_emu_module_parse((kiln_emu_module **)out, c->ptx, c->ptx_len, "kernel.ptx");
}

static void emu_module_free(void *mod) { kiln_emu_module_free(mod); }

static kiln_err emu_params(const void *mod, const char *kernel, size_t *n, uint32_t *sizes, size_t max)
{
	const kiln_emu_param *ps = NULL;
	size_t np = 0;
	kiln_err e = kiln_emu_kernel_params(mod, kernel, &np, &ps);
	if (e)
		return e;
	*n = np;
	for (size_t i = 0; i < np && i < max; i++)
		sizes[i] = ps[i].size;
	return 0;
}

static kiln_fault_kind map_kind(kiln_emu_fault_kind k)
{
	switch (k) {
	case KILN_EMU_FAULT_NONE: return KILN_FAULT_NONE;
	case KILN_EMU_FAULT_OOB: return KILN_FAULT_OOB;
	case KILN_EMU_FAULT_MISALIGNED: return KILN_FAULT_MISALIGNED;
	case KILN_EMU_FAULT_UNINIT_READ: return KILN_FAULT_UNINIT;
	case KILN_EMU_FAULT_RACE: return KILN_FAULT_RACE;
	case KILN_EMU_FAULT_BUDGET: return KILN_FAULT_BUDGET;
	case KILN_EMU_FAULT_UNSUPPORTED: return KILN_FAULT_UNSUPPORTED;
	case KILN_EMU_FAULT_LIMIT: return KILN_FAULT_LIMIT;
	case KILN_EMU_FAULT_TRAP: return KILN_FAULT_TRAP;
	case KILN_EMU_FAULT_DEADLOCK: return KILN_FAULT_DEADLOCK;
	}
	return KILN_FAULT_DEVICE;
}

static kiln_err emu_launch(void *impl, const void *mod, const char *kernel, const kiln_dims *d,
			   const void *const *args, kiln_device_counters *c, kiln_device_fault *fault)
{
	kiln_err e = kiln_emu_launch(impl, mod, kernel, d->grid, d->block, d->shared_bytes, args, c);
	if (e == KILN_EFAULT) {
		const kiln_emu_fault *f = kiln_emu_last_fault(impl);
		fault->kind = map_kind(f->kind);
		snprintf(fault->text, sizeof(fault->text), "%s", f->message[0] ? f->message : kiln_error_last());
	}
	return e;
}

static kiln_err emu_sync(void *impl) { (void)impl; return 0; }

static const kiln_device_ops emu_ops = {
	emu_destroy, emu_alloc, emu_mem_free, emu_write, emu_read, emu_poison,
	emu_module_load, emu_module_free, emu_params, emu_launch, emu_sync,
};

kiln_err kiln_device_emu_init(kiln_device *dev, const kiln_device_options *o)
{
	kiln_emu_options eo = KILN_EMU_OPTIONS_INIT;
	eo.instruction_budget = o && o->instruction_budget ? o->instruction_budget : EMU_DEFAULT_BUDGET;
	eo.budget_per_thread = o && o->instruction_budget ? 0 : EMU_BUDGET_PER_THREAD;
	eo.initcheck = !(o && o->no_initcheck);
	eo.racecheck = !(o && o->no_racecheck);
	kiln_emu *emu = NULL;
	kiln_err e = kiln_emu_new(&emu, &eo);
	if (e)
		return e;
	kiln_emu_set_schedule(emu, KILN_EMU_SCHED_SEEDED, o && o->schedule_seed ? o->schedule_seed : 1);
	dev->ops = &emu_ops;
	dev->impl = emu;
	dev->info.kind = KILN_DEVICE_EMU;
	snprintf(dev->info.name, sizeof(dev->info.name), "kiln PTX emulator (H100-shaped)");
	snprintf(dev->info.arch, sizeof(dev->info.arch), "sm_90");
	dev->info.sm_count = eo.sm_count;
	dev->info.max_threads_per_block = eo.max_threads_per_block;
	dev->info.max_shared_per_block = eo.max_shared_per_block_optin;
	dev->info.modeled = true;
	return 0;
}

void kiln_device_emu_budget(kiln_device *dev, uint64_t budget)
{
	if (dev && dev->info.kind == KILN_DEVICE_EMU)
		kiln_emu_set_budget(dev->impl, budget);
}

void kiln_device_emu_reverse_blocks(kiln_device *dev, bool reverse)
{
	if (dev && dev->info.kind == KILN_DEVICE_EMU)
		kiln_emu_set_reverse_blocks(dev->impl, reverse);
}

void kiln_device_emu_schedule(kiln_device *dev, bool reverse, uint64_t seed)
{
	if (dev && dev->info.kind == KILN_DEVICE_EMU)
		kiln_emu_set_schedule(dev->impl, reverse ? KILN_EMU_SCHED_REVERSE : KILN_EMU_SCHED_SEEDED, seed ? seed : 1);
}
