/* profile: the device interface (one vtable, backends "emu" = the PTX emulator and, later,
 * "cuda" via dlopen), the launch-plan runner that marshals a target's buffers, scalars,
 * symbols and knobs into kernel arguments, and verification: a candidate run on K seeded
 * input sets at the target's verification sizes and judged against the float64 reference
 * by named checks (compile, launch, bounds, initcheck, race, written, inputs-unchanged,
 * values, nontrivial). The verdict serializes to JSON for history.db and --json. */
#ifndef KILN_PROFILE_H
#define KILN_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compile/compile.h"
#include "profile/emu/emu.h"
#include "targets/targets.h"
#include "util/util.h"

/* ---- devices ---- */
typedef enum kiln_device_kind { KILN_DEVICE_EMU, KILN_DEVICE_CUDA } kiln_device_kind;

typedef struct kiln_device_options {
	uint64_t instruction_budget; /* emu: thread-instructions per launch; 0 = the default (2e8) */
	bool no_initcheck;           /* emu: do not fault on reads of never-written memory */
	bool no_racecheck;           /* emu: do not fault on shared-memory races */
} kiln_device_options;

typedef struct kiln_device_info {
	kiln_device_kind kind;
	char name[96];           /* "kiln PTX emulator (H100-shaped)" */
	char arch[16];           /* "sm_90": what kiln compiles for */
	uint32_t sm_count;
	uint32_t max_threads_per_block;
	uint32_t max_shared_per_block; /* bytes, with opt-in */
	bool modeled;            /* true: timings come from a model, not a clock */
} kiln_device_info;

typedef enum kiln_fault_kind {
	KILN_FAULT_NONE = 0, KILN_FAULT_OOB, KILN_FAULT_MISALIGNED, KILN_FAULT_UNINIT,
	KILN_FAULT_RACE, KILN_FAULT_BUDGET, KILN_FAULT_UNSUPPORTED, KILN_FAULT_LIMIT,
	KILN_FAULT_TRAP, KILN_FAULT_DEVICE,
} kiln_fault_kind;

typedef struct kiln_device_fault {
	kiln_fault_kind kind;
	char text[400];          /* one line; "" when none */
} kiln_device_fault;

/* The emulator's counters; the cuda backend leaves them zero. */
typedef kiln_emu_counters kiln_device_counters;

typedef struct kiln_device kiln_device;
typedef struct kiln_module kiln_module;

/* kind: "emu", "cuda" or "auto" (cuda when a driver and GPU are there, else emu).
 * "cuda" is KILN_EUNSUPPORTED until that backend exists; unknown kinds KILN_EINVAL.
 * o may be NULL. Caller frees. */
kiln_err kiln_device_open(kiln_device **out, const char *kind, const kiln_device_options *o);
void kiln_device_free(kiln_device *dev);
const kiln_device_info *kiln_device_info_get(const kiln_device *dev);

kiln_err kiln_device_alloc(kiln_device *dev, uint64_t *out_addr, size_t bytes);
kiln_err kiln_device_mem_free(kiln_device *dev, uint64_t addr);
kiln_err kiln_device_write(kiln_device *dev, uint64_t addr, const void *src, size_t n);
kiln_err kiln_device_read(kiln_device *dev, void *dst, uint64_t addr, size_t n);
/* Fills with the 32-bit pattern (little endian from the allocation start); on emu the
 * bytes also become "never written" for initcheck. */
kiln_err kiln_device_poison(kiln_device *dev, uint64_t addr, size_t n, uint32_t pattern32);

/* Loads a successful compile (PTX for emu, cubin for cuda). Caller frees with
 * kiln_module_free before the device. */
kiln_err kiln_device_module_load(kiln_device *dev, kiln_module **out, const kiln_compiled *c);
void kiln_module_free(kiln_module *mod);
/* Byte sizes of kernel `kernel`'s parameters in order (at most max); KILN_ENOTFOUND when
 * the module has no such kernel. */
kiln_err kiln_module_params(const kiln_module *mod, const char *kernel, size_t *n,
			    uint32_t *sizes, size_t max);

/* Launches (args[i] points at parameter i's value, as cuLaunchKernel). counters may be
 * NULL; emu ADDS into them. KILN_EFAULT when the kernel faulted: kiln_device_last_fault. */
kiln_err kiln_device_launch(kiln_device *dev, const kiln_module *mod, const char *kernel,
			    const kiln_dims *dims, const void *const *args,
			    kiln_device_counters *counters);
kiln_err kiln_device_sync(kiln_device *dev);
const kiln_device_fault *kiln_device_last_fault(const kiln_device *dev);
const char *kiln_fault_kind_name(kiln_fault_kind k); /* "out-of-bounds", ... */

/* ---- the plan runner ----
 * Runs plan p of target t with the module loaded: buf_addr[i] is the device address of
 * target buffer i (already allocated and filled); scratch buffers are allocated,
 * poisoned with scratch_poison, and freed here. env holds the sizes and knobs; sm_count
 * is added from the device. Every launch's arguments are checked against the kernel's
 * parameter sizes first. On a fault or a bad argument, *failed_launch (may be NULL) is
 * the launch index and the error message names it. counters may be NULL. */
kiln_err kiln_plan_run(kiln_device *dev, const kiln_module *mod, const kiln_target *t,
		       const kiln_plan *p, const kiln_env *env, const uint64_t *buf_addr,
		       uint32_t scratch_poison, kiln_device_counters *counters,
		       size_t *failed_launch);

/* ---- verification ---- */
#define KILN_VERIFY_MAX_SEEDS 32
#define KILN_VERIFY_MAX_CHECKS 12

typedef struct kiln_verify_options {
	const kiln_target *target;     /* required */
	const char *source;            /* kernel source (required) */
	const char *source_name;       /* for messages; NULL: "kernel.cu" */
	const kiln_plan *plan;         /* required, parsed against target */
	const char *const *defines;    /* "NAME=VALUE": knobs (also set in launch expressions) */
	size_t ndefines;
	kiln_device *device;           /* required */
	size_t nseeds;                 /* fresh seeds to draw; 0 = 3 (ignored when seeds given) */
	const uint64_t *seeds;         /* explicit seeds (replay), or NULL */
	size_t nseeds_given;
	const size_t *sizes;           /* verification size indexes, or NULL = all */
	size_t nsizes;
	const char *cache_dir;         /* compile cache, or NULL */
	bool skip_inputs_unchanged, skip_written, skip_nontrivial; /* check toggles */
} kiln_verify_options;

typedef struct kiln_mismatch {
	char buffer[KILN_NAME_MAX];
	size_t index;
	double got, expected;
} kiln_mismatch;

typedef struct kiln_verdict {
	bool pass;
	bool unverifiable;      /* the emulator cannot run it (unsupported): not a wrong kernel */
	bool target_weak;       /* "nontrivial" failed: the target/inputs are too weak */
	char check[24];         /* the failed check, "" on pass */
	char message[640];
	/* the worst error over every run (on fail: of the failing run) */
	double worst_abs, worst_rel;
	char worst_buffer[KILN_NAME_MAX];
	size_t worst_index;
	int64_t worst_row, worst_col; /* 2-D buffers; -1 otherwise */
	/* the input set of the failure (or of the worst error on pass) */
	kiln_env input_sizes;
	uint64_t input_seed;
	bool have_input;
	uint64_t seeds[KILN_VERIFY_MAX_SEEDS];
	size_t nseeds;
	char checks_run[KILN_VERIFY_MAX_CHECKS][24];
	size_t nchecks_run;
	size_t runs;            /* (size, seed) runs done */
	size_t mismatches;      /* elements out of tolerance in the failing run */
	kiln_mismatch first[5];
	size_t nfirst;
	double seconds;
	kiln_device_counters counters; /* the last run's plan (emu) */
} kiln_verdict;

/* Verifies a candidate. Returns 0 with *out filled whether it passed or failed (a failed
 * verification is a verdict, not an error); a kiln_err only when verification could not
 * run (bad options, out of memory, the toolkit or reference failed). */
kiln_err kiln_verify(kiln_verdict *out, const kiln_verify_options *o);
/* The verdict as a JSON object text (caller frees); NULL when out of memory. */
char *kiln_verdict_to_json(const kiln_verdict *v);

#endif
