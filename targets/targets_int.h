/* targets: private structures shared by the files of this folder and by the built-in
 * references (targets/<name>/reference.c): the reference's view of one input set
 * (kiln_ref_io), the parsed form of a buffer's "init" string and small name helpers.
 * Nothing outside targets/ includes this header. */
#ifndef KILN_TARGETS_INT_H
#define KILN_TARGETS_INT_H

#include "targets/targets.h"

/* What a reference sees: every buffer as doubles, per-element slack for out/inout
 * buffers (NULL for in), the target (for scalars) and the sizes (for symbols). */
struct kiln_ref_io {
	const kiln_target *t;   /* borrowed */
	const kiln_env *sizes;  /* borrowed */
	double **bufs;          /* one per target buffer, index = buffer index */
	double **slack;         /* NULL entries for `in` buffers */
	size_t *count;          /* elements of each buffer */
	size_t n;               /* = t->nbuffers */
	const double *scalars;  /* the input set's scalar values (t->nscalars), or NULL: the target's */
	char *fail_msg;         /* external C references: kiln_ref_fail's message (512 bytes), or NULL */
};

/* ---- external references (extref.c: reference.c, extref_py.c: reference.py) ----
 * Each computes io's out/inout buffers (and slack) in a child process with the
 * deadline kiln_reference_timeout_s(); a crash, hang, compile or protocol error is a
 * one-line error naming the target. */
kiln_err kiln_extref_run_c(const kiln_target *t, kiln_ref_io *io);
kiln_err kiln_extref_run_py(const kiln_target *t, kiln_ref_io *io);
/* Waits for child pid until the deadline (then kills it, its process group too when
 * group): KILN_ETIMEOUT for a hang, KILN_EFAULT for a crash, naming `what`. */
kiln_err kiln_extref_wait(int *status, int pid, bool group, const kiln_target *t, const char *what);
/* Finds an installed data folder: <binary>/../<installed_rel> when it holds `probe`, else
 * KILN_SOURCE_ROOT/<source_rel> when it does; false when neither. */
bool kiln_targets_data_find(char *out, size_t cap, const char *installed_rel, const char *source_rel,
			    const char *probe);

/* A parsed init string, e.g. "normal(0, 0.01)" -> {KILN_INIT_NORMAL, {0, 0.01}, 2}. */
typedef enum kiln_init_kind {
	KILN_INIT_NORMAL,    /* normal(mu, sd) */
	KILN_INIT_UNIFORM,   /* uniform(lo, hi): [lo, hi) */
	KILN_INIT_LOGNORMAL, /* lognormal(mu, sd): exp(normal), strictly positive */
	KILN_INIT_LOGPROB,   /* logprob(scale): -scale*|N(0,1)|, like log-probabilities */
	KILN_INIT_RANDINT,   /* randint(lo, hi): integers, both ends inclusive */
	KILN_INIT_MASK,      /* mask(minfrac): per row a prefix of ones, then zeros */
	KILN_INIT_CONST,     /* const(v) */
	KILN_INIT_MASK_HOLES, /* mask_holes(pvalid): ones with probability pvalid anywhere, plus
			       * forced all-masked, all-valid, single-valid and left-padded rows */
} kiln_init_kind;

/* special(BASE, kind=p, ...): the kinds of value it mixes into BASE's draw. */
typedef enum kiln_special_kind {
	KILN_SPECIAL_ZERO, KILN_SPECIAL_NEGZERO, KILN_SPECIAL_DENORM, KILN_SPECIAL_NEGTINY,
	KILN_SPECIAL_POSINF, KILN_SPECIAL_NEGINF, KILN_SPECIAL_NAN, KILN_SPECIAL_HUGE,
	KILN_SPECIAL_COUNT
} kiln_special_kind;

typedef struct kiln_init {
	kiln_init_kind kind;
	double a, b;         /* the arguments (b unused for one-argument kinds) */
	bool special;        /* wrapped in special(...): p[k] is each kind's probability */
	double p[KILN_SPECIAL_COUNT];
} kiln_init;

/* Parses an init string; errors are KILN_EINVAL naming `where` and the grammar. */
kiln_err kiln_init_parse(kiln_init *out, const char *s, const char *where);
/* True for inits whose values are 0/1 masks (mask, mask_holes, const(0|1), randint(0,1)):
 * what masked_by may name. */
bool kiln_init_is_mask(const kiln_init *in);

/* True when s is a C identifier (letter or _ then letters, digits, _) shorter than
 * KILN_NAME_MAX. */
bool kiln_name_ok(const char *s);
/* Names the expression evaluator treats as functions or built-ins; not usable as
 * target names. */
bool kiln_name_reserved(const char *s);

/* An expression given in JSON as a string or an integer (shape: ["n", 256]) as a fresh
 * string (caller frees); anything else is KILN_EINVAL naming where. */
struct cJSON;
kiln_err kiln_json_expr(char **out, const struct cJSON *it, const char *where);

/* target.json's optional bench_weights (after the symbols): one positive number per bench
 * size; also caps the bench sizes at KILN_TARGET_MAX_BENCH. */
kiln_err kiln_target_load_bench_weights(kiln_target *t, const struct cJSON *root, const char *file);

/* Index of the named buffer in t->buffers, or -1. */
long kiln_target_buffer_index(const kiln_target *t, const char *name);

#endif
