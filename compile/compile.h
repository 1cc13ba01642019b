/* compile: CUDA C++ source -> PTX (NVRTC) -> cubin (nvJitLink) with the resource
 * report parsed per kernel, plus a content-addressed on-disk cache keyed by the source,
 * options, architecture and toolkit versions. A compile error is data (ok = false and
 * the log), never a kiln_err; kiln_err means the toolkit, memory or the disk failed. */
#ifndef KILN_COMPILE_H
#define KILN_COMPILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef struct kiln_compile_options {
	const char *source;              /* CUDA C++ text, NUL-terminated (required) */
	const char *name;                /* file name for messages, e.g. "targets/adamw/seed.cu" */
	const char *arch;                /* "sm_90" when NULL; "sm_XX" or "sm_XXa" */
	const char *const *flags;        /* extra NVRTC flags, already validated by the caller */
	size_t nflags;
	const char *const *defines;      /* "NAME=VALUE" or "NAME", passed as -D */
	size_t ndefines;
	const char *const *include_dirs; /* extra -I dirs (the toolkit's are always added) */
	size_t nincludes;
	bool want_cubin;                 /* run nvJitLink after NVRTC (resources need it) */
	const char *cache_dir;           /* NULL: no cache */
} kiln_compile_options;
#define KILN_COMPILE_OPTIONS_INIT {NULL, NULL, NULL, NULL, 0, NULL, 0, NULL, 0, true, NULL}

/* What ptxas / nvJitLink reported for one kernel. -1 = not reported (no cubin). */
typedef struct kiln_kernel_resources {
	char *name;                /* the extern "C" __global__ name (the PTX .entry) */
	int registers;             /* per thread */
	int barriers;              /* named barriers used */
	int64_t stack_bytes;       /* per-thread stack frame */
	int64_t spill_store_bytes; /* per thread */
	int64_t spill_load_bytes;  /* per thread */
	int64_t shared_bytes;      /* static __shared__ declared by the kernel (no reserve) */
	int64_t const_bytes;       /* constant bank 0 (parameters + driver), bytes */
} kiln_kernel_resources;

typedef struct kiln_compiled {
	bool ok;                     /* false: a compile error; see log */
	char *log;                   /* NVRTC log (+ nvJitLink error log); "" when clean */
	char *info_log;              /* nvJitLink's verbose info log (the raw resource report) */
	char *ptx;                   /* NUL-terminated; NULL when !ok */
	size_t ptx_len;              /* bytes, without the NUL */
	uint8_t *cubin;              /* NULL when !ok or !want_cubin */
	size_t cubin_len;            /* bytes */
	char *arch;                  /* "sm_90" */
	char *toolkit;               /* "NVRTC 13.0, nvJitLink 13.0" */
	char key[65];                /* cache key (hex SHA-256), set with or without a cache */
	double wall_s;               /* seconds this call took (a hit is the read) */
	bool cache_hit;
	int64_t global_const_bytes;  /* user __constant__ data of the module, bytes; -1 unknown */
	int64_t global_bytes;        /* module-scope __device__ data (PTX .global), bytes; 0 when !ok */
	bool resource_limit;         /* !ok because a limit was hit (check resource-limit), not an error */
	kiln_kernel_resources *kernels; /* one per .entry in the PTX, in PTX order */
	size_t nkernels;
} kiln_compiled;

/* A module's __device__ globals above this are refused (resource-limit): they live in
 * device memory (on the emulator, in the evaluation's RAM) for every launch. */
#define KILN_COMPILE_MAX_GLOBALS ((int64_t)64 << 20)
/* Bytes of module-scope .global data a PTX text declares (sizes x dimensions). */
int64_t kiln_compile_ptx_global_bytes(const char *ptx);

/* Sources over this many bytes are refused before NVRTC sees them. */
#define KILN_COMPILE_MAX_SOURCE (1u << 20)

/* The gate every source passes before NVRTC (compile/source.c): at most 1 MiB, no NUL
 * byte, valid UTF-8, no trigraph or ambiguous splice, and only the toolkit's own headers
 * read: #include of an allowed header (resolved inside the toolkit's include directory),
 * no #include through a macro, #include_next, #embed or unknown directive, no
 * __has_include of anything else, no #pragma / _Pragma outside a short allow-list, no
 * __pragma, no token pasting, no raw string literal, no #define of a reserved name.
 * KILN_EINVAL with one line "NAME:LINE: refused: why"; linear in len. kiln_compile runs it
 * and turns a refusal into a failed compile (ok = false, log = that line). */
kiln_err kiln_compile_source_check(const char *text, size_t len, const char *name);
/* The allow-list in words, for prompts and messages. Static. */
const char *kiln_compile_allowed_headers(void);

/* Compiles opts->source. On return 0, *out (caller frees with kiln_compiled_free) holds
 * either a successful compile or ok = false with the log. Returns KILN_EINVAL for bad
 * options (no source, malformed arch), KILN_ECOMPILE only when the toolkit itself fails
 * (out of memory in NVRTC, unsupported arch), KILN_EIO for cache I/O it could not work
 * around. A corrupt cache entry is ignored and rewritten. Thread-safe. */
kiln_err kiln_compile(kiln_compiled **out, const kiln_compile_options *opts);
void kiln_compiled_free(kiln_compiled *c);

/* The kernel named name in c, or NULL. Borrowed from c. */
const kiln_kernel_resources *kiln_compile_kernel(const kiln_compiled *c, const char *name);

/* The cache key kiln_compile would use for opts (hex SHA-256 into out). */
kiln_err kiln_compile_key(char out[65], const kiln_compile_options *opts);

/* "NVRTC 13.0, nvJitLink 13.0" into out (>= 64 bytes). */
kiln_err kiln_compile_toolkit_version(char *out, size_t n);

/* The resources of a compile as a JSON object text (caller frees):
 * {"arch":..,"toolkit":..,"global_const_bytes":..,"kernels":[{"name":..,"registers":..}]} */
char *kiln_compile_resources_json(const kiln_compiled *c);

/* Measures the cache at dir and, when it holds more than max_bytes (> 0), removes the
 * least recently used entries until it is under 90% of max_bytes. *out_bytes (may be
 * NULL) gets the size left. kiln_compile calls it after every store with --cache-max. */
kiln_err kiln_compile_cache_evict(const char *dir, int64_t max_bytes, int64_t *out_bytes);

/* Process-wide counters, for tests and `kiln doctor`: a cache hit must not call NVRTC. */
typedef struct kiln_compile_stats {
	uint64_t nvrtc_calls;      /* nvrtcCompileProgram invocations */
	uint64_t jitlink_calls;    /* nvJitLinkComplete invocations */
	uint64_t cache_hits;
	uint64_t cache_misses;
	uint64_t cache_corrupt;    /* entries found damaged, ignored and rewritten */
} kiln_compile_stats;
void kiln_compile_stats_get(kiln_compile_stats *out);
void kiln_compile_stats_reset(void);

/* Several architectures in one fat binary, for `kiln promote`: one kiln_compile per arch
 * (each cached), then the toolkit's `fatbinary` tool packs every cubin plus the PTX of the
 * highest arch (so newer GPUs can JIT it). */
typedef struct kiln_fatbin {
	bool ok;                   /* false: some arch failed to compile; see parts[i]->log */
	uint8_t *data;             /* the .fatbin bytes; NULL when !ok */
	size_t len;
	kiln_compiled **parts;     /* one per arch, in the order given; owned */
	size_t nparts;
} kiln_fatbin;

/* opts->arch is ignored; archs lists "sm_XX" (at least one). Returns KILN_EUNSUPPORTED
 * when the toolkit has no `fatbinary` tool (the per-arch cubins in parts are still
 * there: *out is set whenever the compiles ran). Caller frees with kiln_fatbin_free. */
kiln_err kiln_compile_fatbin(kiln_fatbin **out, const kiln_compile_options *opts,
			     const char *const *archs, size_t narchs);
void kiln_fatbin_free(kiln_fatbin *f);
/* Every architecture this toolkit's NVRTC compiles for from sm_80 up, as "sm_80,sm_86,..."
 * (promote's default: SASS for each, plus PTX of the newest). */
kiln_err kiln_compile_default_archs(char *out, size_t n);

#endif
