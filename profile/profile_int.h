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

/* Per-rep durations of a timed plan (cuda). rank and graph are the request (in); the
 * rest is filled by the backend. */
typedef struct kiln_time_samples {
	kiln_rank_time rank; /* in: what us[] holds */
	bool graph;          /* in: the plan asks for a CUDA graph; out: it ran as one */
	double *us;          /* owned; n ranked plan times in microseconds */
	double *kernel_us, *gap_us; /* owned, n each: the kernels' sum and the gaps' sum per rep;
			      * NAN when the source cannot tell */
	size_t n, cap;
	bool cupti;          /* from CUPTI kernel records (false: CUDA events); never mixed */
	char why[320];       /* why this source ("CUPTI from <path>", "KILN_NO_CUPTI=1", ...) */
	double seconds;      /* wall time spent timing, warm-up included */
	double warmup_s;     /* of which warm-up */
	double sm_mhz[2];    /* SM clock seen after warm-up and after the last rep (0: unknown) */
	size_t invalid;      /* reps left out: a CUPTI record missing, zero or inverted */
	size_t dropped;      /* CUPTI records the driver reported dropped */
} kiln_time_samples;

struct kiln_device {
	const kiln_device_ops *ops;
	void *impl;
	kiln_device_info info;
	kiln_device_options opts;  /* as opened (emu siblings for verification threads) */
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

/* A fresh emulator device with dev's options: one per verification thread. */
kiln_err kiln_device_emu_sibling(kiln_device **out, const kiln_device *dev);

/* ---- a kernel source's knobs and compile options (build.c), for verify.c and time.c ---- */
#define KILN_KNOBS_MAX_DEFINES 64
typedef struct kiln_knob_defs {
	kiln_env knobs;                        /* every knob's value: given, else its first listed one */
	char *defs[KILN_KNOBS_MAX_DEFINES];    /* owned: the defines as compiled, the given ones in
						* order, then "NAME=first" for each knob not given */
	size_t ndefs;
} kiln_knob_defs;

/* Resolves the -D defines against t's knobs: "NAME=V" with NAME a knob sets it (V an
 * integer in strtoll base 0, else KILN_EINVAL "define D: knob K needs an integer value");
 * other defines (no '=', or not a knob) pass through as plain defines. who prefixes the
 * "at most 64 defines" error ("verify", "timing"). On error *out may hold defines:
 * kiln_knob_defs_free releases them either way. */
kiln_err kiln_knobs_resolve(kiln_knob_defs *out, const kiln_target *t, const char *const *defines,
			    size_t ndefines, const char *who);
void kiln_knob_defs_free(kiln_knob_defs *k);
/* Compile options for s with the resolved defines (borrowed from k) for arch. */
void kiln_build_src_compile_options(kiln_compile_options *out, const kiln_build_src *s, const kiln_knob_defs *k,
				    const char *arch, bool want_cubin);

/* ---- verification's input sets (vplan.c plans them, verify.c runs them) ---- */
typedef enum kiln_vset_kind {
	KILN_VSET_LISTED,     /* a listed verification size x seed (regimes cycled) */
	KILN_VSET_REGIME,     /* a regime the listed sets did not reach */
	KILN_VSET_EXTRA,      /* the unlisted size */
	KILN_VSET_ROWLEN,     /* a row-length symbol at its largest bench value, the rest small */
	KILN_VSET_TILE,       /* a symbol at 12 or 200: not a multiple of common tiles */
	KILN_VSET_CAP,        /* where the plan's grid stops growing, small sm_count */
	KILN_VSET_MULTISTEP,  /* K launches of the same module, step scalars changing */
	KILN_VSET_BENCH,      /* the bench size on the emulator (final winner, promote) */
} kiln_vset_kind;

typedef struct kiln_vset {
	kiln_vset_kind kind;
	kiln_env sizes;
	uint64_t seed;
	long regime;          /* -1 default */
	bool reverse;         /* emu: blocks in reverse order */
	int64_t sm_count;     /* > 0: what launch expressions see as sm_count */
	long partner;         /* reverse sets: the forward set whose work sets the budget */
	char why[400];        /* appended to a failure's message ("" for listed sets) */
} kiln_vset;

/* Plans the input sets of one verification in plan order (the verdict is the first
 * failing set in this order). knobs: the knob values. Caller frees *out. */
kiln_err kiln_vplan_build(kiln_vset **out, size_t *n, const kiln_verify_options *o, const kiln_target *t,
			  const kiln_plan *plan, const kiln_env *knobs, const uint64_t *seeds, size_t nseeds,
			  kiln_env *extra_sizes);
const char *kiln_vset_kind_name(kiln_vset_kind k);
/* Elements in all of t's buffers at sizes (SIZE_MAX on error). */
size_t kiln_vplan_elems(const kiln_target *t, const kiln_env *sizes);
/* Writes "n=5,T=3" into out. */
void kiln_vplan_sizes_text(char *out, size_t n, const kiln_env *env);

/* Backends: fill dev->ops, dev->impl and dev->info. */
kiln_err kiln_device_emu_init(kiln_device *dev, const kiln_device_options *o);
/* emu: run later launches' blocks in reverse blockIdx order (verify.c); other devices: no-op. */
void kiln_device_emu_reverse_blocks(kiln_device *dev, bool reverse);
/* emu: the following launches run in reverse blockIdx order (reverse) or on the
 * interleaved schedule drawn from seed (0 = the device's default seed). */
void kiln_device_emu_schedule(kiln_device *dev, bool reverse, uint64_t seed);
/* emu: device printf output since the last call into buf (NUL-terminated); 0 elsewhere. */
size_t kiln_device_emu_printf(kiln_device *dev, char *buf, size_t cap);
/* emu: the instruction budget of the following launches; 0 = the device's own. */
void kiln_device_emu_budget(kiln_device *dev, uint64_t budget);
/* cuda (device_cuda.c): KILN_EUNSUPPORTED with one line when no driver/GPU is usable. */
kiln_err kiln_device_cuda_init(kiln_device *dev, const kiln_device_options *o);

#endif
