/* libFuzzer harness for the PTX emulator's parser: every input is parsed as PTX; what
 * parses is also launched briefly (one block of 32 threads, a small instruction budget,
 * pointer parameters aimed at small zeroed buffers) so the decoder and interpreter see
 * fuzzed programs too. Errors and emulator faults are expected outcomes; only crashes,
 * hangs and sanitizer reports are findings. Built with -Dfuzzers=true (clang). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "profile/emu/emu.h"

#define BUF_BYTES 4096
#define MAX_PARAMS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void run_kernel(kiln_emu *emu, const kiln_emu_module *mod, const char *name)
{
	size_t np = 0;
	const kiln_emu_param *params = NULL;
	if (kiln_emu_kernel_params(mod, name, &np, &params) != 0 || np > MAX_PARAMS)
		return;
	uint64_t vals[MAX_PARAMS][4];
	const void *args[MAX_PARAMS];
	static const uint8_t zeros[BUF_BYTES];
	for (size_t i = 0; i < np; i++) {
		memset(vals[i], 0, sizeof vals[i]);
		if (params[i].size == 8) { /* most likely a pointer: give it a buffer */
			uint64_t addr = 0;
			if (kiln_emu_alloc(emu, &addr, BUF_BYTES) == 0)
				kiln_emu_write(emu, addr, zeros, BUF_BYTES);
			vals[i][0] = addr;
		} else {
			vals[i][0] = 64; /* sizes and counts */
		}
		args[i] = vals[i];
	}
	const uint32_t grid[3] = { 1, 1, 1 }, block[3] = { 32, 1, 1 };
	kiln_emu_launch(emu, mod, name, grid, block, 256, args, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_emu_module *mod = NULL;
	if (kiln_emu_module_parse(&mod, (const char *)data, size, "fuzz.ptx") != 0)
		return 0;
	kiln_emu_options o = KILN_EMU_OPTIONS_INIT;
	o.instruction_budget = 200000; /* thread-instructions: keeps loops short */
	kiln_emu *emu = NULL;
	if (kiln_emu_new(&emu, &o) == 0) {
		size_t nk = 0;
		const char *const *names = kiln_emu_module_kernels(mod, &nk);
		for (size_t k = 0; k < nk && k < 4; k++)
			run_kernel(emu, mod, names[k]);
		kiln_emu_free(emu);
	}
	kiln_emu_module_free(mod);
	return 0;
}
