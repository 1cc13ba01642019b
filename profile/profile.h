/* profile: the device interface (one vtable, backends "emu" = the PTX emulator and
 * "cuda" = libcuda/libcupti via dlopen), the launch-plan runner that marshals a target's buffers, scalars,
 * symbols and knobs into kernel arguments, and verification: a candidate run on K seeded
 * input sets at the target's verification sizes and judged against the float64 reference
 * by named checks (compile, launch, bounds, initcheck, race, written, inputs-unchanged,
 * values, nontrivial). The verdict serializes to JSON for history.db and --json. */
#ifndef KILN_PROFILE_H
#define KILN_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "compile/compile.h"
#include "profile/cost/cost.h"
#include "profile/emu/emu.h"
#include "targets/targets.h"
#include "util/util.h"

/* ---- devices ---- */
typedef enum kiln_device_kind { KILN_DEVICE_EMU, KILN_DEVICE_CUDA } kiln_device_kind;

typedef struct kiln_device_options {
	uint64_t instruction_budget; /* emu: thread-instructions per launch; 0 = the default (2e8) */
	bool no_initcheck;           /* emu: do not fault on reads of never-written memory */
	bool no_racecheck;           /* emu: do not fault on shared- / global-memory races */
	uint64_t schedule_seed;      /* emu: seed of the interleaved schedule; 0 = 1 (verification
				      * sets it per input set, see kiln_device_emu_schedule) */
} kiln_device_options;

typedef struct kiln_device_info {
	kiln_device_kind kind;
	char name[96];           /* "kiln PTX emulator (H100-shaped)" */
	char arch[16];           /* "sm_90": what kiln compiles for */
	uint32_t sm_count;
	uint32_t max_threads_per_block;
	uint32_t max_shared_per_block; /* bytes, with opt-in */
	bool modeled;            /* true: timings come from a model, not a clock */
	/* cuda: read from the driver and recorded with every timing (emu: 0) */
	uint32_t cc_major, cc_minor;
	uint64_t l2_bytes, total_mem;  /* bytes */
	uint32_t smem_per_sm;          /* bytes */
	uint32_t mem_clock_khz, bus_width_bits, clock_khz;
	double peak_bw_gbs;            /* 2 x memory clock x bus width / 8, GB/s */
	int driver_version;            /* 13000 = CUDA 13.0 */
	int gpu_index;                 /* cuda: ordinal among the visible GPUs ($KILN_GPU_INDEX, after
					* CUDA_VISIBLE_DEVICES, which the driver applies) */
	char uuid[48];                 /* cuda: "GPU-xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", else "" */
	char note[240];                /* "auto" fell back to the emulator: why (one line), else "" */
} kiln_device_info;

typedef enum kiln_fault_kind {
	KILN_FAULT_NONE = 0, KILN_FAULT_OOB, KILN_FAULT_MISALIGNED, KILN_FAULT_UNINIT,
	KILN_FAULT_RACE, KILN_FAULT_BUDGET, KILN_FAULT_UNSUPPORTED, KILN_FAULT_LIMIT,
	KILN_FAULT_TRAP, KILN_FAULT_DEVICE, KILN_FAULT_DEADLOCK,
} kiln_fault_kind;

typedef struct kiln_device_fault {
	kiln_fault_kind kind;
	char text[400];          /* one line; "" when none */
} kiln_device_fault;

/* The emulator's counters; the cuda backend leaves them zero. */
typedef kiln_emu_counters kiln_device_counters;

typedef struct kiln_device kiln_device;
typedef struct kiln_module kiln_module;

/* kind: "emu", "cuda" or "auto" (cuda when a driver and GPU are there, else emu, with
 * the reason in info->note). "cuda" without a usable driver/GPU is KILN_EUNSUPPORTED
 * naming why; unknown kinds KILN_EINVAL. o may be NULL. Caller frees.
 * Fork safety: opening "cuda" (or "auto" on a GPU machine) calls cuInit, and a CUDA
 * context does not survive fork(). A process that forks evaluation children must open
 * the cuda device in each child, never in the parent before forking; to ask whether a
 * GPU is there without touching CUDA in the caller, use kiln_device_cuda_probe. */
kiln_err kiln_device_open(kiln_device **out, const char *kind, const kiln_device_options *o);
void kiln_device_free(kiln_device *dev);
const kiln_device_info *kiln_device_info_get(const kiln_device *dev);
/* Whether a CUDA driver and at least one GPU are usable, asked in a short-lived forked
 * child so the caller never initializes CUDA (safe before forking). false with the
 * reason (one line) in why. */
bool kiln_device_cuda_probe(char *why, size_t n);
/* Which timing source the cuda backend will use and why (one line in why): true with the
 * libcupti path it loads ($KILN_LIBCUPTI, libcupti.so.13/.12, the toolkit's lib64, lib and
 * extras/CUPTI/lib64, pip's nvidia/cu13/lib and nvidia/cuda_cupti/lib), false when timing
 * falls back to CUDA events (KILN_NO_CUPTI=1, or no libcupti found). Loads no driver. */
bool kiln_device_cupti_find(char *path, size_t npath, char *why, size_t nwhy);

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
 * target buffer i (already allocated and filled); scalars[j] is scalar j's value for
 * this run (kiln_inputs.scalars: regime, multi-step step; NULL = the target's values); scratch buffers are allocated,
 * poisoned with scratch_poison, and freed here. env holds the sizes and knobs; sm_count
 * is added from the device unless env has one. Every launch's arguments are checked against the kernel's
 * parameter sizes first. On a fault or a bad argument, *failed_launch (may be NULL) is
 * the launch index and the error message names it. counters may be NULL. */
kiln_err kiln_plan_run(kiln_device *dev, const kiln_module *mod, const kiln_target *t,
		       const kiln_plan *p, const kiln_env *env, const double *scalars, const uint64_t *buf_addr,
		       uint32_t scratch_poison, kiln_device_counters *counters,
		       size_t *failed_launch);

/* Per-launch counters of whole plan runs, for timing: while a recorder is attached to
 * dev, every kiln_plan_run on it stores one record (the env it ran with and each
 * launch's own counters and dims) until max records are stored. Detach with recs NULL.
 * The records and *n stay owned by the caller and must outlive the attachment. */
#define KILN_PLAN_MAX_LAUNCHES 8
typedef struct kiln_plan_record {
	kiln_env env;                  /* sizes + knobs + sm_count of the run */
	size_t nlaunches;              /* launches that ran (all of them when ok) */
	bool ok;                       /* the whole plan ran without error */
	kiln_dims dims[KILN_PLAN_MAX_LAUNCHES];
	kiln_device_counters launch[KILN_PLAN_MAX_LAUNCHES];
} kiln_plan_record;
void kiln_device_record_plans(kiln_device *dev, kiln_plan_record *recs, size_t max, size_t *n);

/* ---- a kernel source to build ----
 * What verification and timing share: kiln_verify_options and kiln_time_options embed
 * one as `src`, so a caller that verifies then times fills it once. Both resolve the
 * defines the same way (profile/build.c). */
typedef struct kiln_build_src {
	const kiln_target *target;     /* required */
	const char *source;            /* kernel source (required) */
	const char *source_name;       /* for messages; NULL: "kernel.cu" */
	const kiln_plan *plan;         /* required, parsed against target */
	const char *const *defines;    /* "NAME=VALUE" with NAME a knob: an integer, also set in launch
					* expressions (a knob not given takes its first listed value);
					* any other define passes to NVRTC as is; at most 64 with the
					* knobs not given */
	size_t ndefines;
	kiln_device *device;           /* required */
	const char *cache_dir;         /* compile cache, or NULL */
} kiln_build_src;
#define KILN_BUILD_SRC_INIT {NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL}

/* ---- verification ---- */
#define KILN_VERIFY_MAX_SEEDS 32
#define KILN_VERIFY_MAX_CHECKS 12

typedef struct kiln_verify_options {
	kiln_build_src src;            /* what to verify (required parts: see kiln_build_src) */
	size_t nseeds;                 /* fresh seeds to draw; 0 = 3 (ignored when seeds given) */
	const uint64_t *seeds;         /* explicit seeds (replay), or NULL */
	size_t nseeds_given;
	const size_t *sizes;           /* verification size indexes, or NULL = all */
	size_t nsizes;
	const char *arch;              /* compile for this arch ("sm_80"; promote verifies each
					* exported one), NULL = the device's */
	bool skip_inputs_unchanged, skip_written, skip_nontrivial; /* check toggles */
	bool no_extra_size;            /* skip the unlisted extra size (only runs when sizes is NULL) */
	const char *regime;            /* every input set under this regime (replay); NULL = default
					* plus the target's regimes cycled across the sets */
	size_t threads;                /* emu: input sets run in parallel on this many devices; 0 = 1 */
	bool bench_size;               /* instead of everything above: one input set at the largest
					* bench size whose estimate fits bench_mem_gib (the final
					* winner of a run, promote); progress lines on `progress` */
	double bench_mem_gib;          /* 0 = KILN_VERIFY_BENCH_MEM_GIB or 16 */
	FILE *progress;                /* NULL = quiet */
} kiln_verify_options;
/* Every field zero / NULL / false: the defaults above. */
#define KILN_VERIFY_OPTIONS_INIT {.src = KILN_BUILD_SRC_INIT}

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
	char message[1024];
	/* the worst error over every run (on fail: of the failing run) */
	double worst_abs, worst_rel;
	char worst_buffer[KILN_NAME_MAX];
	size_t worst_index;
	int64_t worst_row, worst_col; /* 2-D buffers; -1 otherwise */
	/* the input set of the failure (or of the worst error on pass) */
	kiln_env input_sizes;
	uint64_t input_seed;
	bool have_input;
	char input_regime[KILN_NAME_MAX]; /* "default" or the regime's name */
	char input_kind[16];    /* the set's kind: "listed", "unlisted", "row-length", "tile",
				 * "cap-breaking", "multi-step", "bench", "regime" */
	int input_step;         /* multi-step: the failing step (1-based), else 0 */
	int64_t input_sm_count; /* > 0: the sm_count launch expressions saw (cap-breaking) */
	size_t sets;            /* input sets run, of every kind */
	double cpu_seconds;     /* CPU time of the sets over all threads */
	uint64_t seeds[KILN_VERIFY_MAX_SEEDS];
	size_t nseeds;
	char checks_run[KILN_VERIFY_MAX_CHECKS][24];
	size_t nchecks_run;
	size_t runs;            /* (size, seed) runs done at the listed sizes */
	kiln_env extra_sizes;   /* the unlisted size also run (with seeds[0]) after them; n = 0: none */
	size_t mismatches;      /* elements out of tolerance in the failing run */
	kiln_mismatch first[5];
	size_t nfirst;
	double seconds;
	kiln_device_counters counters; /* the last run's plan (emu) */
	uint64_t thread_instructions;  /* emu: summed over every plan run of the verification */
	char warnings[200];     /* pass or fail: things a GPU would punish that no check can
				 * (reads of %clock / %globaltimer); "" when none */
	char device_printf[512]; /* emu: what the kernel printed (device printf), capped */
} kiln_verdict;

/* Verifies a candidate. Returns 0 with *out filled whether it passed or failed (a failed
 * verification is a verdict, not an error); a kiln_err only when verification could not
 * run (bad options, out of memory, the toolkit or reference failed). */
kiln_err kiln_verify(kiln_verdict *out, const kiln_verify_options *o);
/* Whether the bench-size check of a run's final winner and of promote runs: false when
 * $KILN_BENCH_CHECK is "0" (CI and tests that cannot spend minutes on it). */
bool kiln_verify_bench_check_wanted(void);
/* The verdict as a JSON object text (caller frees); NULL when out of memory. */
char *kiln_verdict_to_json(const kiln_verdict *v);
/* Judges outputs computed outside kiln_verify (cuda timing checks what its timed module
 * computes at the bench size) by the same checks: inputs unchanged, values within the
 * target's tolerance of the reference. got[b] holds buffer b as the device left it.
 * Returns 0 with out->pass set either way; an error only when judging could not run. */
kiln_err kiln_verify_outputs(kiln_verdict *out, const kiln_target *t, const kiln_inputs *in,
			     const kiln_refdata *ref, uint8_t **got, const char *where);

/* ---- timing (profile/time.c) ----
 * emu: the plan runs through kiln_verify at the target's two largest verification sizes
 * on one input set drawn from `seed` (so the runs whose counters are used are also
 * checked against the reference), each launch's counters are extrapolated by the
 * target's traffic expression to the bench size (every_size: to each one, from the same
 * runs) and modeled on GPU spec `gpu` (profile/cost): deterministic, labelled modeled.
 * cuda: compiled to a cubin for the device's sm, run at the bench size (every_size: at
 * each in turn, outputs checked after each) with >= 200 ms of warm-up (until the SM clock
 * settles; each warm-up launch synchronized), a write-then-read 2x L2 flush before every
 * rep, rotated input copies, the measured reps' launches queued back to back (or as one
 * CUDA graph when the plan says "graph": true); one source per measurement (CUPTI records
 * matched by correlation id: kernel time and gaps apart; else CUDA events, which cannot
 * tell them apart: timing.source_why says which and what), repeated until the relative
 * standard error of the median is < 1% or max_seconds. A fault while timed is KILN_EFAULT
 * (kiln_device_last_fault names the rep and launch, or the rep when it shows only at a
 * measured rep's end; the device is then unusable). time_us is the ranked time (o->rank). cuda
 * does not verify: call kiln_verify first (kiln bench and the search loop do). */
/* What a plan's time is (docs/cost-model.md, "Measured and modeled time"), the same for
 * measured and modeled timings: LAUNCHES (the default) = the sum of its kernels' durations
 * plus the gaps between its dependent launches (a plan's first launch's own launch
 * latency excluded on both sides); KERNELS = the kernels' durations alone. */
typedef enum kiln_rank_time { KILN_RANK_LAUNCHES = 0, KILN_RANK_KERNELS } kiln_rank_time;
/* "launches" or "kernels" (NULL or "" = launches); anything else KILN_EINVAL, one line. */
kiln_err kiln_rank_time_parse(kiln_rank_time *out, const char *s);
const char *kiln_rank_time_name(kiln_rank_time r);
/* The definition in words for a plan of n launches: "sum of kernel times + 1 launch gap"
 * ("... CUDA-graph launch gaps" when graph), "sum of kernel times" for KERNELS. */
void kiln_rank_time_text(char *out, size_t n, kiln_rank_time r, size_t nlaunches, bool graph);

typedef struct kiln_time_options {
	kiln_build_src src;            /* what to time (required parts: see kiln_build_src) */
	const char *gpu;               /* emu: spec name from data/gpus.json, NULL = default */
	double max_seconds;            /* cuda time cap, 0 = default (3 s) */
	uint64_t seed;                 /* input set (cuda: copy k draws seed + k); keep it fixed
					* across the candidates of a target: data-dependent kernels
					* (masks) model a few % apart on different draws */
	size_t bench_size;             /* index into the target's bench sizes (default 0), timed
					* alone unless every_size */
	bool every_size;               /* time every bench size (kiln run, kiln bench): time_us is
					* then the objective, their weighted geometric mean */
	kiln_rank_time rank;           /* what a size's time means (default: kernels + launch gaps) */
} kiln_time_options;
/* Every field zero / NULL / false: the defaults above. */
#define KILN_TIME_OPTIONS_INIT {.src = KILN_BUILD_SRC_INIT}

/* One bench size's time. The objective over several is their weighted geometric mean
 * (kiln_time_objective), so a candidate's speedup over the seed is the weighted
 * geometric mean of its per-size speedups. */
#define KILN_TIME_MAX_SIZES 8
typedef struct kiln_size_timing {
	kiln_env sizes;                /* the bench size: symbols only */
	double weight;                 /* its weight in the objective (target.json bench_weights, else 1) */
	double time_us, min_us, spread; /* as kiln_timing's, at this size */
	double kernel_us, gap_us;      /* as kiln_timing's, at this size (NAN when unknown) */
	int64_t reps;                  /* measured repetitions (modeled: 0) */
	double traffic_bytes, traffic_floor_bytes, bandwidth_gbs, roofline; /* at this size */
	bool fit_raised;               /* modeled: the counter fit was raised to the floor here */
	char bound[16];                /* modeled: the first launch's deciding term here */
} kiln_size_timing;

/* The weighted geometric mean of the sizes' times (weights <= 0 count as 1); 0 when n is
 * 0 or a time is not positive. Ranking candidates by it ranks them by the weighted
 * geometric mean of their speedups over any fixed baseline. */
double kiln_time_objective(const kiln_size_timing *s, size_t n);

typedef struct kiln_timing {
	bool modeled;                  /* true: from the cost model, never measured */
	double time_us, min_us, spread; /* median; min; relative (p75-p25)/median; modeled: the tie band;
					 * of the ranked time (rank below). Several sizes (every_size): the
					 * objective, each the weighted geometric mean of the sizes' (spread:
					 * their weighted mean) */
	kiln_rank_time rank;           /* what time_us is */
	char time_def[96];             /* rank in words for this plan: "sum of kernel times + 1 launch gap" */
	double kernel_us, gap_us;      /* the medians of the kernels' sum and of the gaps' sum (modeled:
					* the model's; several sizes: at the primary size); NAN when the
					* source cannot tell (CUDA events) */
	bool graph;                    /* the plan opted into a CUDA graph (cuda: and ran as one) */
	int64_t reps;                  /* measured repetitions (modeled: 0) */
	double traffic_bytes;          /* the target's declared traffic at the bench size (several:
					* traffic, floor, bandwidth and roofline combine as time does) */
	double traffic_floor_bytes;    /* what any correct kernel moves there: declared less the
					* masked-out elements of masked buffers (this seed's mask) */
	double bandwidth_gbs;          /* traffic_floor_bytes / time */
	double roofline;               /* floor / time / peak bandwidth, (0, 1] for sane times */
	bool fit_raised;               /* modeled: the counter fit modeled fewer DRAM bytes than
					* the floor, so DRAM sectors were raised to it */
	char fit_note[320];            /* modeled: one line when fit_raised, else "" */
	char device[160];              /* "NVIDIA H100 SXM5 80GB" / the GPU's name */
	char *samples_json, *counters_json, *spec_json, *breakdown_json; /* owned; may be NULL */
	char *resources_json;          /* owned: kiln_compile_resources_json of what was timed */
	kiln_cost_result model;        /* modeled: the cost model's result */
	kiln_env bench_env;            /* the primary size: the timed size with the most traffic;
					* bound, breakdown, counters and fit_note describe it */
	char bound[16];                /* modeled: the first launch's deciding term */
	kiln_size_timing size[KILN_TIME_MAX_SIZES]; /* every size timed, in bench order; time_us,
					* min_us, spread, roofline and bandwidth above combine them */
	size_t nsizes;
	char *sizes_json;              /* owned: [{"sizes", "weight", "time_us", ..., "breakdown"}] */
	char how[640];                 /* how the time was obtained, one line: measured or modeled,
					* the sizes run for counters, the bench sizes extrapolated to */
	bool cupti;                    /* cuda: durations from CUPTI (false: CUDA events); one source */
	char source_why[320];          /* cuda: why that source */
	double sm_mhz[2];              /* cuda: SM clock seen after warm-up and at the end (0: unknown) */
	double warmup_s;               /* cuda: seconds of warm-up launches */
	int64_t invalid_reps;          /* cuda: reps left out (CUPTI record missing, zero or inverted) */
	int64_t cupti_dropped;         /* cuda: CUPTI records the driver dropped */
} kiln_timing;

/* Times a candidate (see above). On error *out holds nothing to free beyond what
 * kiln_timing_free releases; KILN_EVERIFY when the emu runs failed their checks (the
 * message names the check). */
kiln_err kiln_time(kiln_timing *out, const kiln_time_options *o);
void kiln_timing_free(kiln_timing *t);
/* Everything in t as one JSON object text (caller frees); NULL when out of memory. */
char *kiln_timing_to_json(const kiln_timing *t);

#endif
