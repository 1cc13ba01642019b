/* targets: kernel targets as data. A target folder holds target.json (sizes, buffers,
 * scalars, tolerances, traffic, knobs), a float64 CPU reference compiled into kiln,
 * seed.cu and launch.json. This header also owns the pieces every consumer of a
 * target needs: dtypes and their conversions, the checked integer expression
 * evaluator, launch plans, the seeded input generator and running the reference. */
#ifndef KILN_TARGETS_H
#define KILN_TARGETS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* ---- dtypes ---- */
typedef enum kiln_dtype {
	KILN_F32, KILN_F64, KILN_F16, KILN_BF16, KILN_I32, KILN_I64, KILN_U8, KILN_U32, KILN_BOOL,
	KILN_DTYPE_COUNT
} kiln_dtype;
size_t kiln_dtype_size(kiln_dtype t);              /* bytes per element */
const char *kiln_dtype_name(kiln_dtype t);         /* "f32", "bf16", ... */
/* Parses "f32" etc.; unknown names are KILN_EINVAL naming `where` and the known list. */
kiln_err kiln_dtype_parse(kiln_dtype *out, const char *s, const char *where);
bool kiln_dtype_is_float(kiln_dtype t);
/* Element i of an array of dtype t, widened exactly to double. */
double kiln_dtype_load(kiln_dtype t, const void *base, size_t i);
/* Stores v as element i: floats round to nearest even (f16/bf16 included, NaN kept),
 * integers round half-even and saturate, bool is v != 0. */
void kiln_dtype_store(kiln_dtype t, void *base, size_t i, double v);
uint16_t kiln_f64_to_bf16(double v);   /* single rounding, nearest even */
uint16_t kiln_f64_to_f16(double v);
double kiln_bf16_to_f64(uint16_t h);
double kiln_f16_to_f64(uint16_t h);

/* ---- environments: names bound to int64 values (symbols, knobs, sm_count) ---- */
#define KILN_ENV_MAX 48
#define KILN_NAME_MAX 64
typedef struct kiln_env {
	size_t n;
	char names[KILN_ENV_MAX][KILN_NAME_MAX];
	int64_t values[KILN_ENV_MAX];
} kiln_env;
void kiln_env_init(kiln_env *env);
kiln_err kiln_env_set(kiln_env *env, const char *name, int64_t value); /* add or replace */
bool kiln_env_get(const kiln_env *env, const char *name, int64_t *out);

/* ---- the checked integer expression evaluator ----
 * Grammar: integers, names, + - * / % (C precedence, left-assoc), unary -, parentheses,
 * ceil_div(a,b), min(a,b,...), max(a,b,...). int64 arithmetic; overflow, division or
 * modulo by zero, unknown names, unknown functions and trailing garbage are
 * KILN_EINVAL / KILN_EOVERFLOW errors naming `where` and the expression. */
kiln_err kiln_expr_eval(int64_t *out, const char *expr, const kiln_env *env, const char *where);
/* Syntax and name check without values: every name must be in `names` (n of them). */
kiln_err kiln_expr_check(const char *expr, const char *const *names, size_t n, const char *where);

/* ---- target.json ---- */
typedef enum kiln_role { KILN_ROLE_IN, KILN_ROLE_OUT, KILN_ROLE_INOUT } kiln_role;

typedef enum kiln_tol_rule {
	KILN_TOL_PLAIN,     /* |got - ref| <= atol + rtol*|ref| + slack */
	KILN_TOL_ULP,       /* f16/bf16 outputs: within `ulps` units of the dtype's rounding of ref */
	KILN_TOL_EXACT,     /* integers: equal, or within slack */
} kiln_tol_rule;

typedef struct kiln_symbol {
	char *name;
	int64_t *verify;  /* verification sizes (small, odd, edge) */
	size_t nverify;
	int64_t *bench;   /* benchmark sizes (realistic) */
	size_t nbench;
} kiln_symbol;

typedef struct kiln_buffer_spec {
	char *name;
	kiln_dtype dtype;
	char **shape;     /* expressions over symbols; elements = product */
	size_t ndim;
	kiln_role role;
	char *init;       /* "normal(0,1)", "uniform(a,b)", "lognormal(mu,sd)", "logprob(s)", "randint(a,b)",
			   * "mask(f)", "const(v)" (README "Target format"); NULL for out buffers */
	char *masked_by;  /* optional: name of a mask buffer; where it is 0 this buffer holds NaN/Inf garbage */
} kiln_buffer_spec;

typedef struct kiln_scalar_spec {
	char *name;
	kiln_dtype dtype; /* f32, f64, i32, i64, u32 */
	double value;
} kiln_scalar_spec;

typedef struct kiln_tolerance {
	char *buffer;     /* an out or inout buffer */
	kiln_tol_rule rule;
	double rtol, atol;
	double ulps;      /* KILN_TOL_ULP */
} kiln_tolerance;

typedef struct kiln_knob {
	char *name;       /* a -D define of seed.cu and a name in launch expressions */
	int64_t *values;
	size_t n;
} kiln_knob;

/* An input regime (target.json "regimes"): a named set of init and scalar overrides
 * that verification cycles through besides the default draw (zero state, holes in
 * masks, special values, the other reading of a flag scalar, ...). */
typedef struct kiln_regime {
	char *name;
	char *note;       /* why the regime exists; "" when not given */
	char **init;      /* per target buffer: the overriding init string, or NULL */
	double *scalars;  /* per target scalar: its value under this regime (defaults filled in) */
	bool *scalar_set; /* per target scalar: overridden here */
} kiln_regime;

/* Optimizer targets (target.json "multistep"): one input set launches the same module
 * `steps` consecutive times; scalar scalar_index[j] takes values[k*nscalars + j] at step k. */
typedef struct kiln_multistep {
	size_t steps;     /* >= 3; 0 = the target has no multi-step case */
	size_t nscalars;
	size_t *scalar_index;
	double *values;
} kiln_multistep;

typedef struct kiln_ref_io kiln_ref_io;
typedef kiln_err (*kiln_ref_fn)(kiln_ref_io *io);

/* Where a target's reference comes from (target.json "reference"). */
typedef enum kiln_ref_kind {
	KILN_REF_BUILTIN, /* a function compiled into kiln, by name */
	KILN_REF_C,       /* <dir>/reference.c against kiln/reference.h, compiled on first use */
	KILN_REF_PY,      /* <dir>/reference.py, run by python3 with numpy */
} kiln_ref_kind;

typedef struct kiln_target {
	char *name, *family, *summary, *math;
	char *dir;              /* the target folder */
	kiln_symbol *symbols;
	size_t nsymbols;
	size_t nverify_sizes;   /* every symbol's verify list has this length (or 1, broadcast) */
	size_t nbench_sizes;
	kiln_buffer_spec *buffers;
	size_t nbuffers;
	kiln_scalar_spec *scalars;
	size_t nscalars;
	kiln_tolerance *tolerances; /* one per out/inout buffer */
	size_t ntolerances;
	char *traffic_bytes;    /* expression over symbols: the fewest bytes a kernel must move */
	char *reference;        /* name of the float64 reference, or the file "reference.c" / "reference.py" */
	kiln_ref_fn ref_fn;     /* resolved from the built-in registry (KILN_REF_BUILTIN) */
	kiln_ref_kind ref_kind;
	char *ref_path;         /* <dir>/reference.c or .py for external references, else NULL */
	kiln_knob *knobs;
	size_t nknobs;
	char *seed_path;        /* <dir>/seed.cu */
	char *launch_path;      /* <dir>/launch.json */
	char *notes;            /* optional free text for prompts; NULL when absent */
	kiln_regime *regimes;   /* named input regimes besides the default (may be none) */
	size_t nregimes;
	kiln_multistep multistep;
	double *bench_weights;  /* one per bench size (target.json bench_weights, --size @W); NULL = all 1 */
} kiln_target;

#define KILN_TARGET_MAX_BENCH 8 /* bench sizes: every one is timed for every candidate */

/* Loads and validates <dir>/target.json. Every mistake is KILN_EINVAL with one line
 * naming the file, the field path and what was expected. Caller frees. */
kiln_err kiln_target_load(kiln_target **out, const char *dir);
/* Finds a target by name in targets_dir, else each folder of $KILN_TARGETS_DIR (a
 * colon-separated list), else the built-in targets folder. A name containing '/' is
 * taken as a folder path. */
kiln_err kiln_target_find(kiln_target **out, const char *name, const char *targets_dir);
/* Names of the targets in a folder (NULL: the built-in one), sorted; caller frees
 * each name and the array. */
kiln_err kiln_targets_list(char ***out, size_t *n, const char *targets_dir);
/* The folders kiln_target_find searches, in order (targets_dir, $KILN_TARGETS_DIR's,
 * the built-in one); caller frees each and the array. */
kiln_err kiln_targets_search_path(char ***out, size_t *n, const char *targets_dir);
/* The built-in targets: <binary>/../share/kiln/targets when installed, else the source
 * tree's targets/. */
const char *kiln_targets_builtin_dir(void);
void kiln_target_free(kiln_target *t);
/* Writes a new target folder <parent>/<name> (parent NULL: ".") holding target.json,
 * launch.json, seed.cu and reference.c (py: reference.py). from_cu (or NULL) is a
 * kernel whose first __global__ function gives the launch, buffers, scalars and symbols.
 * Never overwrites; *out_dir (caller frees) is the folder made. */
kiln_err kiln_target_scaffold(char **out_dir, const char *name, const char *parent, const char *from_cu, bool py);
/* The idx-th verification (bench=false) or benchmark size as an environment. */
kiln_err kiln_target_sizes(kiln_env *out, const kiln_target *t, bool bench, size_t idx);
/* The weight of bench size idx in the objective (1 without bench_weights). */
double kiln_target_bench_weight(const kiln_target *t, size_t idx);
/* `kiln run/bench --size`: each spec is "SYM=V,SYM=V[@WEIGHT]" giving every symbol (values
 * 1..2^40, weight default 1); a spec starting with '+' adds its size to the target's
 * list, and when any spec lacks the '+' the given sizes replace the list. A size given
 * twice keeps the later weight. At most KILN_TARGET_MAX_BENCH sizes in all. Errors are
 * one line naming the spec (KILN_EINVAL); on error t is unchanged. */
kiln_err kiln_target_set_bench_sizes(kiln_target *t, const char *const *specs, size_t n);
/* Bench size idx as a --size spec, "B=64,T=4096@1" (what kiln run stores so --resume
 * times the same sizes); KILN_EINVAL when it does not fit in n bytes. */
kiln_err kiln_target_bench_spec(char *out, size_t n, const kiln_target *t, size_t idx);
/* Elements of buffer b at these sizes. */
kiln_err kiln_target_count(size_t *out, const kiln_target *t, const kiln_buffer_spec *b,
			   const kiln_env *sizes);
const kiln_buffer_spec *kiln_target_buffer(const kiln_target *t, const char *name);
const kiln_scalar_spec *kiln_target_scalar(const kiln_target *t, const char *name);
const kiln_tolerance *kiln_target_tolerance(const kiln_target *t, const char *buffer);
/* Index of the named regime, or -1 ("default" and NULL are -1 too: the default draw). */
long kiln_target_regime_index(const kiln_target *t, const char *name);
/* The name of regime index r (-1: "default"). */
const char *kiln_target_regime_name(const kiln_target *t, long r);

/* ---- the float64 reference ----
 * A reference sees every buffer as a double array (in: inputs; inout: initial values
 * that it overwrites with final values; out: zeros it fills), the scalars and the
 * symbols. For each out/inout buffer it may also set a per-element slack (extra
 * absolute tolerance, zero by default) where the math allows two answers: a clip
 * boundary, a sign tie, a quantization midpoint. Lookups of unknown names return
 * NULL / NaN / -1 and the reference returns KILN_EINVAL. */
double *kiln_ref_buf(kiln_ref_io *io, const char *name);
double *kiln_ref_slack(kiln_ref_io *io, const char *name);
size_t kiln_ref_count(const kiln_ref_io *io, const char *name);
/* Rounded to its dtype, as the kernel sees it; the input set's value (regime, step). */
double kiln_ref_scalar(const kiln_ref_io *io, const char *name);
int64_t kiln_ref_symbol(const kiln_ref_io *io, const char *name);
kiln_ref_fn kiln_reference_lookup(const char *name);
/* External references: where compiled reference.c objects are cached (NULL: the
 * default, $KILN_REF_CACHE, else $XDG_CACHE_HOME/kiln/references, else
 * ~/.cache/kiln/references); the deadline of one run ($KILN_REF_TIMEOUT seconds, else
 * 300); the folder holding kiln/reference.h (NULL when not found). */
void kiln_reference_cache_set(const char *dir);
double kiln_reference_timeout_s(void);
const char *kiln_reference_include_dir(void);

/* ---- inputs: one seeded draw of every buffer at one size ---- */
typedef struct kiln_hostbuf {
	const kiln_buffer_spec *spec; /* borrowed from the target */
	void *data;       /* owned; count elements of spec->dtype */
	size_t count;     /* elements */
	size_t bytes;
} kiln_hostbuf;

typedef struct kiln_inputs {
	kiln_env sizes;
	uint64_t seed;
	kiln_hostbuf *bufs; /* one per target buffer, same order; out buffers zero-filled */
	size_t n;
	long regime;        /* index into t->regimes, -1 = the default */
	double *scalars;    /* one per target scalar: the values this set runs with (regime and
			     * multi-step step applied); the reference and the plan runner read these */
	size_t nscalars;
} kiln_inputs;

/* Same (target, sizes, seed) -> same bytes on every machine. Caller frees. */
kiln_err kiln_inputs_generate(kiln_inputs **out, const kiln_target *t, const kiln_env *sizes,
			      uint64_t seed);
/* The same under regime index `regime` (-1 = default): its inits replace the buffers'
 * and its scalars the target's. */
kiln_err kiln_inputs_generate_regime(kiln_inputs **out, const kiln_target *t, const kiln_env *sizes,
				     uint64_t seed, long regime);
/* Multi-step: sets in->scalars to step k's values (k < t->multistep.steps) over the
 * regime's, and redraws every `in` buffer (the gradients) from seed + k; inout buffers
 * are left for the caller to carry over. k = 0 only sets the scalars. */
kiln_err kiln_inputs_step(kiln_inputs *in, const kiln_target *t, size_t k);
void kiln_inputs_free(kiln_inputs *in);
/* The bytes a correct kernel must move at `sizes`: `declared` (the target's traffic_bytes
 * there) less the masked-out elements of every buffer that is masked_by a mask (a correct
 * kernel need not load them; inout ones count twice), counted on the mask drawn from
 * `seed` exactly as kiln_inputs_generate draws it (only the masks are generated). Equal to
 * declared for targets without masks. */
/* Memoized per (target folder, sizes, seed, declared) in this process, so a parent that
 * computes it before forking (kiln_target_floors_warm: every bench size) spares its
 * children the mask draws. */
kiln_err kiln_target_floors_warm(const kiln_target *t, uint64_t seed);
kiln_err kiln_target_traffic_floor(double *out, const kiln_target *t, const kiln_env *sizes, uint64_t seed,
				   double declared);

/* The reference's answer for one input set: final values and slack of every buffer
 * (index = target buffer index; slack is NULL for `in` buffers). */
typedef struct kiln_refdata {
	double **values;
	double **slack;
	size_t *count;
	size_t n;
} kiln_refdata;
kiln_err kiln_reference_run(kiln_refdata **out, const kiln_target *t, const kiln_inputs *in);
void kiln_refdata_free(kiln_refdata *r);

/* ---- launch.json: the launch plan of a candidate ---- */
typedef struct kiln_launch {
	char *kernel;        /* extern "C" name */
	char *grid[3];       /* expressions; missing dims are "1" */
	char *block[3];
	char *shared_bytes;  /* dynamic shared memory, expression */
	char **args;         /* buffer, scalar, symbol, knob or scratch names */
	size_t nargs;
} kiln_launch;

typedef struct kiln_scratch {
	char *name;
	kiln_dtype dtype;
	char *count;         /* elements, expression */
} kiln_scratch;

typedef struct kiln_plan {
	kiln_launch *launches;
	size_t nlaunches;
	kiln_scratch *scratch;
	size_t nscratch;
	char **nvrtc_flags;  /* from a short allow-list */
	size_t nflags;
	bool graph;          /* "graph": true: the launches run as one CUDA graph when timed
			      * (shorter gaps between them; docs/targets.md) */
} kiln_plan;

/* Parses and validates a launch plan against a target: names in args and expressions
 * must be the target's buffers/scalars/symbols/knobs, scratch names, or sm_count;
 * flags must be allowed. `where` names the source (a path or "candidate 12"). */
kiln_err kiln_plan_parse(kiln_plan **out, const char *json, size_t len, const kiln_target *t,
			 const char *where);
kiln_err kiln_plan_load(kiln_plan **out, const char *path, const kiln_target *t);
/* Canonical JSON text of a plan (caller frees). */
char *kiln_plan_to_json(const kiln_plan *p);
void kiln_plan_free(kiln_plan *p);

typedef struct kiln_dims {
	uint32_t grid[3], block[3];
	uint32_t shared_bytes;
} kiln_dims;
/* Evaluates launch i's grid, block and shared memory in env (sizes + knobs + sm_count).
 * Non-positive or > 2^31-1 dimensions are KILN_EINVAL naming the launch. */
kiln_err kiln_plan_dims(kiln_dims *out, const kiln_plan *p, size_t i, const kiln_env *env);

#endif
