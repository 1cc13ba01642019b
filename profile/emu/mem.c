/* mem: the emulated device's global address space. Allocations live at distinct,
 * 256-byte aligned addresses with at least 64 KiB unmapped between them (so an overflow
 * faults instead of landing in a neighbour), sorted by base for binary search. Each byte
 * has an init flag for initcheck; each 32-byte sector a "touched in this launch" bit. */
#include <stdlib.h>
#include <string.h>

#include "profile/emu/emu_int.h"

#define GAP (64u * 1024u)

emu_alloc *emu_mem_find(kiln_emu *emu, uint64_t addr)
{
	size_t lo = 0, hi = emu->nallocs;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		emu_alloc *a = &emu->allocs[mid];
		if (addr < a->base)
			hi = mid;
		else if (addr >= a->base + a->size)
			lo = mid + 1;
		else
			return a;
	}
	return NULL;
}

const emu_alloc *emu_mem_nearest(const kiln_emu *emu, uint64_t addr)
{
	const emu_alloc *best = NULL;
	uint64_t bd = UINT64_MAX;
	for (size_t i = 0; i < emu->nallocs; i++) {
		const emu_alloc *a = &emu->allocs[i];
		uint64_t d = addr < a->base ? a->base - addr : addr >= a->base + a->size ? addr - (a->base + a->size) + 1 : 0;
		if (d < bd) {
			bd = d;
			best = a;
		}
	}
	return best;
}

kiln_err emu_mem_alloc(kiln_emu *emu, uint64_t *out, size_t bytes, bool readonly)
{
	if (bytes > (1ull << 36))
		return kiln_error_set(KILN_EINVAL, "emulator: allocation of %zu bytes is too large", bytes);
	if (emu->nallocs == emu->capallocs) {
		size_t nc = emu->capallocs ? emu->capallocs * 2 : 16;
		emu_alloc *q = kiln_realloc(emu->allocs, nc * sizeof *q);
		if (!q)
			return KILN_ENOMEM;
		emu->allocs = q;
		emu->capallocs = nc;
	}
	size_t sz = bytes ? bytes : 1;
	emu_alloc a;
	memset(&a, 0, sizeof a);
	a.base = emu->next_base;
	a.size = bytes;
	a.readonly = readonly;
	a.data = kiln_malloc(sz);
	a.init = kiln_calloc(1, sz);
	a.touched = kiln_calloc((sz + 32 * 64 - 1) / (32 * 64), sizeof(uint64_t));
	if (!a.data || !a.init || !a.touched) {
		free(a.data);
		free(a.init);
		free(a.touched);
		return KILN_ENOMEM;
	}
	/* a quiet-NaN pattern, so an unwritten float reads as NaN */
	uint32_t pat = 0x7FFFFFFFu;
	for (size_t i = 0; i + 4 <= sz; i += 4)
		memcpy(a.data + i, &pat, 4);
	for (size_t i = sz & ~(size_t)3; i < sz; i++)
		a.data[i] = 0xFF;
	emu->next_base = (a.base + sz + GAP + 255) & ~255ull;
	emu->allocs[emu->nallocs++] = a; /* bases grow monotonically: stays sorted */
	*out = a.base;
	return 0;
}

kiln_err kiln_emu_alloc(kiln_emu *emu, uint64_t *out_addr, size_t bytes)
{
	if (!emu || !out_addr)
		return kiln_error_set(KILN_EINVAL, "kiln_emu_alloc: NULL argument");
	return emu_mem_alloc(emu, out_addr, bytes, false);
}

kiln_err kiln_emu_mem_free(kiln_emu *emu, uint64_t addr)
{
	for (size_t i = 0; emu && i < emu->nallocs; i++) {
		if (emu->allocs[i].base != addr)
			continue;
		free(emu->allocs[i].data);
		free(emu->allocs[i].init);
		free(emu->allocs[i].touched);
		free(emu->allocs[i].shadow);
		memmove(&emu->allocs[i], &emu->allocs[i + 1], (emu->nallocs - i - 1) * sizeof *emu->allocs);
		emu->nallocs--;
		return 0;
	}
	return kiln_error_set(KILN_EINVAL, "emulator: 0x%llx is not the base of a live allocation",
			      (unsigned long long)addr);
}

static kiln_err range(kiln_emu *emu, emu_alloc **out, uint64_t addr, size_t n, const char *what)
{
	emu_alloc *a = emu ? emu_mem_find(emu, addr) : NULL;
	if (!a || n > a->size || addr - a->base > a->size - n)
		return kiln_error_set(KILN_EINVAL, "emulator: %s of %zu bytes at 0x%llx is outside every allocation",
				      what, n, (unsigned long long)addr);
	*out = a;
	return 0;
}

kiln_err kiln_emu_write(kiln_emu *emu, uint64_t addr, const void *src, size_t n)
{
	emu_alloc *a;
	if (n == 0)
		return 0;
	if (range(emu, &a, addr, n, "write"))
		return KILN_EINVAL;
	memcpy(a->data + (addr - a->base), src, n);
	memset(a->init + (addr - a->base), 1, n);
	return 0;
}

kiln_err kiln_emu_read(kiln_emu *emu, void *dst, uint64_t addr, size_t n)
{
	emu_alloc *a;
	if (n == 0)
		return 0;
	if (range(emu, &a, addr, n, "read"))
		return KILN_EINVAL;
	memcpy(dst, a->data + (addr - a->base), n);
	return 0;
}

kiln_err kiln_emu_poison(kiln_emu *emu, uint64_t addr, size_t n, uint32_t pattern32)
{
	emu_alloc *a;
	if (n == 0)
		return 0;
	if (range(emu, &a, addr, n, "poison"))
		return KILN_EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint64_t off = addr - a->base + i;
		a->data[off] = (uint8_t)(pattern32 >> (8 * (off & 3)));
	}
	memset(a->init + (addr - a->base), 0, n);
	return 0;
}
