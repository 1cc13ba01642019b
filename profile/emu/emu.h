/* emu: kiln's functional PTX emulator. It parses the PTX that NVRTC emits into a compact
 * pre-decoded instruction array (kiln_emu_module), and runs kernels on an emulated device
 * (kiln_emu) with its own address space: warps of 32 lanes in lockstep, warps of several
 * resident blocks interleaved in a schedule drawn from a seed, named barriers, every
 * global/shared/local access bounds-checked, optional initcheck and racecheck (shared
 * and global memory, happens-before), an instruction budget, and per-launch counters for
 * the cost model. Re-entrant: no global state; one kiln_emu per thread. */
#ifndef KILN_EMU_H
#define KILN_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* ---- modules: parsed PTX ---- */
typedef struct kiln_emu_module kiln_emu_module;

typedef struct kiln_emu_param {
	const char *name;   /* borrowed from the module */
	uint32_t size;      /* bytes */
	uint32_t align;     /* bytes */
	uint32_t offset;    /* bytes from the start of the kernel's parameter block */
} kiln_emu_param;

/* Parses PTX text (len bytes; need not be NUL-terminated). `name` labels messages
 * ("cand12.ptx"). Errors: KILN_EINVAL "name:LINE: message" for malformed PTX,
 * KILN_EUNSUPPORTED "not supported by the emulator: <opcode> (line N)" for valid PTX the
 * emulator cannot run, KILN_ENOMEM. The caller owns *out. */
kiln_err kiln_emu_module_parse(kiln_emu_module **out, const char *ptx, size_t len,
			       const char *name);
void kiln_emu_module_free(kiln_emu_module *mod);
/* Names of the module's .entry kernels; the array and strings are borrowed from mod. */
const char *const *kiln_emu_module_kernels(const kiln_emu_module *mod, size_t *n);
/* Parameters of kernel `name` in declaration order (borrowed from mod).
 * KILN_ENOTFOUND when the module has no such entry. */
kiln_err kiln_emu_kernel_params(const kiln_emu_module *mod, const char *name, size_t *n,
				const kiln_emu_param **out);
/* Bytes of static .shared memory kernel `name` declares (0 when unknown kernel). */
uint32_t kiln_emu_kernel_static_shared(const kiln_emu_module *mod, const char *name);

/* ---- the emulated device ---- */
typedef struct kiln_emu kiln_emu;

typedef struct kiln_emu_options {
	uint32_t max_threads_per_block;      /* 1024 */
	uint32_t max_block_dim[3];           /* 1024, 1024, 64 */
	uint32_t max_grid_dim[3];            /* 2^31-1, 65535, 65535 */
	uint32_t max_shared_per_block;       /* bytes, static + dynamic without opt-in: 48 KiB */
	uint32_t max_shared_per_block_optin; /* bytes, with cudaFuncAttributeMaxDynamicSharedMemorySize: 227 KiB */
	bool shared_optin;                   /* launches may use up to the opt-in limit (kiln's cuda backend opts in) */
	uint32_t regs_per_block;             /* 65536; checked when kiln_emu_set_regs gave a count */
	uint32_t sm_count;                   /* 132 (H100 SXM); %nsmid */
	uint32_t warps_per_sm;               /* 64; %nwarpid */
	uint64_t instruction_budget;         /* thread-instructions per launch; 0 = unlimited */
	bool initcheck;                      /* fault on reads of global/shared bytes never written */
	bool racecheck;                      /* fault on shared- and global-memory races */
	uint64_t budget_per_thread;          /* the budget grows to threads launched x this (0: fixed) */
} kiln_emu_options;

#define KILN_EMU_OPTIONS_INIT {1024, {1024, 1024, 64}, {2147483647u, 65535, 65535}, \
	48u * 1024, 227u * 1024, true, 65536, 132, 64, 2000000000ull, true, true, 4096}

/* Creates a device; o may be NULL for the defaults. Caller owns *out. */
kiln_err kiln_emu_new(kiln_emu **out, const kiln_emu_options *o);
void kiln_emu_free(kiln_emu *emu);
/* Registers per thread of the kernel(s) launched next (from the compile report), so a
 * launch that needs more registers than a block may have fails with LIMIT as on the GPU.
 * 0 (the default) = unknown, not checked. */
void kiln_emu_set_regs(kiln_emu *emu, uint32_t regs_per_thread);
/* Schedules. SEEDED (the default, seed 1): blocks start in blockIdx order, several are
 * resident at once (per simulated SM, bounded by occupancy) and their warps run
 * interleaved, round robin with short quanta and preemption points drawn from the seed;
 * the same seed gives the same schedule and the same result. FORWARD / REVERSE: one block
 * at a time in blockIdx order / reversed, each warp running to its next barrier. Any
 * schedule: a warp that spins on a flag (re-reads it unchanged) or sleeps yields. */
typedef enum kiln_emu_sched {
	KILN_EMU_SCHED_SEEDED = 0, KILN_EMU_SCHED_FORWARD, KILN_EMU_SCHED_REVERSE,
} kiln_emu_sched;
void kiln_emu_set_schedule(kiln_emu *emu, kiln_emu_sched sched, uint64_t seed);
/* kiln_emu_set_schedule(REVERSE) when reverse, else FORWARD. */
void kiln_emu_set_reverse_blocks(kiln_emu *emu, bool reverse);
/* The instruction budget of the following launches (thread-instructions per launch);
 * 0 restores the options': instruction_budget, or threads launched x budget_per_thread
 * when that is larger. */
void kiln_emu_set_budget(kiln_emu *emu, uint64_t budget);

/* ---- device memory ----
 * Addresses are distinct, 256-byte aligned and separated by unmapped gaps, so an
 * overflow of one allocation never lands in another. Fresh allocations hold a NaN
 * pattern and are uninitialized (for initcheck) until written. */
kiln_err kiln_emu_alloc(kiln_emu *emu, uint64_t *out_addr, size_t bytes);
/* Frees an allocation by its base address; KILN_EINVAL when addr is not one. */
kiln_err kiln_emu_mem_free(kiln_emu *emu, uint64_t addr);
/* Host -> device copy; marks the bytes initialized. KILN_EINVAL when [addr, addr+n) is
 * not inside one live allocation. */
kiln_err kiln_emu_write(kiln_emu *emu, uint64_t addr, const void *src, size_t n);
kiln_err kiln_emu_read(kiln_emu *emu, void *dst, uint64_t addr, size_t n);
/* Fills [addr, addr+n) with the 32-bit pattern (little endian, aligned to the allocation
 * start) and marks the bytes NOT initialized, so initcheck catches reads of them. */
kiln_err kiln_emu_poison(kiln_emu *emu, uint64_t addr, size_t n, uint32_t pattern32);

/* ---- launches ---- */
typedef enum kiln_emu_fault_kind {
	KILN_EMU_FAULT_NONE = 0,
	KILN_EMU_FAULT_OOB,         /* access outside any allocation / declared size */
	KILN_EMU_FAULT_MISALIGNED,  /* address not a multiple of the access size */
	KILN_EMU_FAULT_UNINIT_READ, /* initcheck: read of bytes never written */
	KILN_EMU_FAULT_RACE,        /* racecheck: unordered conflicting shared/global accesses */
	KILN_EMU_FAULT_BUDGET,      /* the instruction budget ran out (infinite loop?) */
	KILN_EMU_FAULT_UNSUPPORTED, /* an instruction the emulator cannot execute */
	KILN_EMU_FAULT_LIMIT,       /* launch exceeds the device's limits */
	KILN_EMU_FAULT_TRAP,        /* trap / brkpt / a bad barrier id or count */
	KILN_EMU_FAULT_DEADLOCK,    /* every live warp of a block waits at barriers that cannot complete */
} kiln_emu_fault_kind;

typedef enum kiln_emu_space {
	KILN_EMU_SPACE_NONE = 0, KILN_EMU_SPACE_GLOBAL, KILN_EMU_SPACE_SHARED,
	KILN_EMU_SPACE_LOCAL, KILN_EMU_SPACE_CONST, KILN_EMU_SPACE_PARAM,
} kiln_emu_space;

typedef struct kiln_emu_fault {
	kiln_emu_fault_kind kind;
	uint32_t block[3];        /* blockIdx of the faulting thread */
	uint32_t thread[3];       /* threadIdx */
	uint32_t line;            /* PTX source line of the faulting instruction (0: none) */
	uint32_t other_line;      /* races: the line of the other access */
	uint32_t other_thread[3]; /* races: threadIdx of the other thread */
	kiln_emu_space space;
	uint64_t addr;            /* faulting address (space-relative for shared/local) */
	uint32_t size;            /* access size in bytes */
	uint64_t alloc_base;      /* nearest allocation (global) or 0 */
	uint64_t alloc_size;      /* its size in bytes (shared: the block's shared size) */
	char message[320];        /* one line, the same text kiln_error_last() holds */
} kiln_emu_fault;

/* Per-launch counters; kiln_emu_launch ADDS into them (zero the struct first). Warp
 * instructions are counted once per issue, whatever the active mask. */
typedef struct kiln_emu_counters {
	uint64_t warp_int, warp_fp32, warp_fp64, warp_mufu, warp_cvt, warp_mem;
	uint64_t warp_ctrl, warp_shfl, warp_barrier, warp_half2, warp_other; /* warp-instructions by class */
	uint64_t warp_instructions;      /* sum of the classes above */
	uint64_t thread_instructions;    /* active lanes summed over issued instructions */
	uint64_t gld_requests, gld_sectors; /* global (and const) loads: warp requests, 32-byte sectors */
	uint64_t gst_requests, gst_sectors; /* global stores */
	uint64_t dram_sectors;           /* first touch of each 32-byte global sector in a launch */
	uint64_t shared_requests, shared_wavefronts; /* bank conflicts = wavefronts - requests */
	uint64_t local_bytes;            /* bytes of local-memory traffic (spills, local arrays) */
	uint64_t atomics;                /* atomic / reduction warp-requests (global and shared) */
	uint64_t atomic_same_addr;       /* thread-level global atomics at the launch's most
					  * contended address (summed over launches) */
	uint64_t divergent_branches;     /* branches whose active lanes disagreed */
	uint64_t loop_iterations;        /* taken backward branches (warp level) */
	uint64_t barriers;               /* bar.sync / bar.arrive executed, per warp */
	uint64_t launches, blocks, warps;
	uint32_t threads_per_block;      /* of the last launch */
	uint32_t dyn_shared, static_shared; /* bytes per block, last launch */
	uint32_t regs;                   /* per thread; filled by the caller from the compile report */
} kiln_emu_counters;

/* Runs kernel `kernel` of mod over grid x block with dyn_shared bytes of dynamic shared
 * memory. args[i] points at the value of parameter i (as cuLaunchKernel). counters may be
 * NULL. Returns 0; KILN_EFAULT when the kernel faulted (kiln_error_last() = one line,
 * details in kiln_emu_last_fault); KILN_EINVAL / KILN_ENOTFOUND for bad arguments.
 * Memory written before a fault stays written. */
kiln_err kiln_emu_launch(kiln_emu *emu, const kiln_emu_module *mod, const char *kernel,
			 const uint32_t grid[3], const uint32_t block[3], uint32_t dyn_shared,
			 const void *const *args, kiln_emu_counters *counters);
/* Device printf: the text the launches printed since the last call (at most 4 KiB, lanes
 * in order, then "[output truncated]"), copied NUL-terminated into buf (up to cap bytes);
 * the device's buffer is emptied. Returns the length copied. */
size_t kiln_emu_printf_take(kiln_emu *emu, char *buf, size_t cap);
/* The fault of the last launch (kind NONE after a clean launch); borrowed from emu. */
const kiln_emu_fault *kiln_emu_last_fault(const kiln_emu *emu);
const char *kiln_emu_fault_name(kiln_emu_fault_kind kind); /* "out-of-bounds", ... */

#endif
