/* agent: kiln's search — the loop that sequences propose -> compile -> verify -> time ->
 * archive -> world-model update, its two policies (llm = K-Search, tune = the no-LLM
 * autotuner), prompt building and strict parsing of LLM replies. */
#ifndef KILN_AGENT_H
#define KILN_AGENT_H

#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdint.h>

#include "targets/targets.h"
#include "util/util.h"

/* ---- LLM reply parsing ---- */
enum { KILN_REPLY_KERNEL = 1, KILN_REPLY_LAUNCH = 2, KILN_REPLY_EDITS = 4 };
typedef struct kiln_reply_parts {
	char *kernel;      /* owned; ```cuda block (a whole kernel) */
	char *edit;        /* owned; ```edit block: search/replace blocks against the task's kernel */
	char *diff;        /* owned; ```diff (or ```patch) block: a unified diff of kernel.cu */
	char *launch_json; /* owned; ```json block with "launches" */
	char *edits_json;  /* owned; ```json block with "ops" (the world model's edit script) */
	char *changed;     /* owned; the reply's "CHANGED: ..." line outside code blocks, one line,
			    * at most KILN_CHANGED_MAX bytes, cut after a word; NULL = none */
} kiln_reply_parts;
#define KILN_CHANGED_MAX 200
/* Splits a reply into its fenced parts. `want` lists the parts that must be present;
 * KILN_REPLY_KERNEL is met by exactly one of a whole kernel, an ```edit block or a ```diff
 * block, and KILN_REPLY_LAUNCH is required only with a whole kernel (edits keep the task's
 * plan unless a plan is sent). A missing required part, a duplicate, an unclosed fence,
 * invalid JSON or host code in the kernel is KILN_EINVAL with a message meant for the
 * LLM's retry prompt. */
kiln_err kiln_reply_parse(kiln_reply_parts *out, const char *text, size_t len, unsigned want);
/* The checks a whole kernel gets, for a kernel built from edits: a __global__ kernel, no
 * host code. KILN_EINVAL with the reason. */
kiln_err kiln_reply_check_kernel(const char *source, const char *what);
void kiln_reply_parts_free(kiln_reply_parts *p);

/* ---- edit replies (edit_apply.c) ----
 * Search/replace blocks or a unified diff against `base`, the kernel the task quoted:
 * each edit's old text must occur exactly once in base, at a line start, with exact bytes
 * (CR before LF in the edits is dropped when base has no CR; trailing spaces count, and a
 * miss that only they explain says so); a diff hunk placed by its old text, its stated
 * line deciding between several matches; edits never overlap and all match base as it
 * was; at most KILN_EDIT_MAX_BLOCKS; the result at most the compiler's source cap. *out
 * (caller frees) is the new kernel; KILN_EINVAL with one line naming the block or hunk. */
#define KILN_EDIT_MAX_BLOCKS 64
typedef enum kiln_edit_kind { KILN_EDIT_BLOCKS, KILN_EDIT_DIFF } kiln_edit_kind;
kiln_err kiln_edit_apply(char **out, const char *base, const char *edits, size_t len, kiln_edit_kind kind);

/* ---- what changed, per candidate (changed.c) ----
 * kiln's own one-line account of a candidate against the kernel it started from, for
 * when the model gave no CHANGED line: "+12 -3 lines in adamw_step; launch plan changed"
 * (both may be NULL: "" then). Caller frees; NULL on no memory. */
char *kiln_changed_summary(const char *before, const char *after, const char *launch_before,
			   const char *launch_after);

/* ---- the tune policy's knob search ---- */
typedef enum kiln_tune_phase { KILN_TUNE_SEED, KILN_TUNE_RANDOM, KILN_TUNE_LOCAL } kiln_tune_phase;
typedef struct kiln_tuner kiln_tuner;
/* seed_source: seed.cu text, whose `#define KNOB v` lines give the first configuration. */
kiln_err kiln_tuner_new(kiln_tuner **out, const kiln_target *t, const char *seed_source,
			uint64_t seed, size_t random_samples);
/* Next configuration (one value per target knob, in target order). *exhausted when
 * every configuration has been proposed. */
kiln_err kiln_tuner_next(kiln_tuner *tu, int64_t *values, kiln_tune_phase *phase, bool *exhausted);
/* The configuration the next kiln_tuner_next will propose, when it does not depend on a
 * result still to be reported (a random draw); false otherwise. Changes nothing, so the
 * caller may compile it while the current one is evaluated. */
bool kiln_tuner_peek(kiln_tuner *tu, int64_t *values);
/* Feeds back a result so local search centres on the best passing configuration. */
kiln_err kiln_tuner_report(kiln_tuner *tu, const int64_t *values, bool passed, double time_us);
bool kiln_tuner_seed_values(const kiln_tuner *tu, int64_t *values);
void kiln_tuner_free(kiln_tuner *tu);

/* ---- isolation: a function run in a forked child with a deadline ---- */
/* The child calls fn(&text, arg); text (heap, JSON by convention) comes back to the parent. */
typedef kiln_err (*kiln_child_fn)(char **text, void *arg);
typedef struct kiln_child_result {
	char *text;      /* owned; what the child sent ("" if nothing) */
	bool timed_out;  /* killed at the deadline */
	int signal;      /* the signal that ended it (0 = none) */
	int exit_code;   /* -1 when killed */
	bool too_large;  /* its answer passed the cap (killed): the candidate's failure */
	double wall_s;
} kiln_child_result;
/* Returns 0 whenever the child was run, whatever happened to it (see the result);
 * errors are only for fork/pipe failures. The child runs under kiln_limits: memory
 * (--max-memory), CPU (timeout_s x the CPUs) and a file-size limit; its answer is capped
 * (KILN_CHILD_ANSWER_MAX). */
#define KILN_CHILD_ANSWER_MAX ((size_t)64 << 20)
kiln_err kiln_child_run(kiln_child_result *out, kiln_child_fn fn, void *arg, double timeout_s);
void kiln_child_result_free(kiln_child_result *r);

/* ---- prompts ---- */
typedef enum kiln_prompt_kind {
	KILN_PROMPT_INIT,      /* analyse the target, propose >= 3 families */
	KILN_PROMPT_IMPLEMENT, /* implement an action on the parent's best kernel */
	KILN_PROMPT_DEBUG,     /* fix a failed attempt (compile log or verdict) */
	KILN_PROMPT_IMPROVE,   /* make a passing attempt faster (timing, counters) */
	KILN_PROMPT_REFLECT,   /* close an action: re-score, notes, new children */
} kiln_prompt_kind;     /* a retry is the same kind again with retry_reason set */

typedef struct kiln_prompt_input {
	kiln_prompt_kind kind;
	const kiln_target *target;
	const char *seed_source, *seed_launch;     /* stable prefix */
	const char *world_model;                   /* rendered tree */
	const char *rejected_ops;                  /* from the last edit script, or NULL */
	int64_t node_id;                           /* the action being worked on */
	const char *action;                        /* its title and description */
	const char *parent_source, *parent_launch; /* the parent's best candidate */
	const char *best_source, *best_launch;     /* a new family (parent: the seed): the run's
						    * current best, for reference; NULL = none */
	double best_us;                            /* its time */
	bool best_modeled;
	const char *last_source;                   /* the last attempt */
	const char *last_launch;                   /* its launch plan; NULL = not shown */
	const char *attempts;                      /* the action's earlier attempts, a table
						    * (one row each: iteration, verdict, time,
						    * what changed); NULL = none */
	const char *evidence;                      /* compile log, verdict, timing... */
	const char *seed_knobs;                    /* stable prefix: "BLOCK=256 ITEMS=4", the knob
						    * values every candidate is compiled with */
	const char *search_state;                  /* iteration, budget, the closing rules */
	const char *retry_reason;                  /* the last reply could not be used: the
						    * same task again with this reason; NULL = none */
} kiln_prompt_input;

typedef struct kiln_prompt {
	char *prefix; /* owned; stable across the run (cacheable) */
	char *task;   /* owned; this turn's part */
} kiln_prompt;
kiln_err kiln_prompt_build(kiln_prompt *out, const kiln_prompt_input *in);
void kiln_prompt_free(kiln_prompt *p);

/* ---- the search: `kiln run` ---- */
typedef struct kiln_run_options {
	const char *target;        /* name or folder (ignored when resuming) */
	const char *targets_dir;   /* NULL: $KILN_TARGETS_DIR or the built-in targets */
	const char *workdir;       /* required: history.db, archive/, cache/ */
	const char *policy;        /* "auto" (llm when one is configured, else tune), "llm", "tune" */
	const char *llm;           /* "provider:model"; NULL: $KILN_LLM */
	const char *base_url;      /* NULL: the provider's or $KILN_*_BASE_URL */
	bool stream;
	double llm_timeout_s;      /* one HTTP attempt; 0 = the client's default (600) */
	const char *device;        /* "auto" | "emu" | "cuda"; NULL = auto */
	const char *gpu;           /* the cost model's GPU spec (emu); NULL = default */
	const char *rank_time;     /* what a candidate's time is: "launches" (kernels + the gaps
				    * between dependent launches) or "kernels"; NULL = launches,
				    * or the resumed run's */
	int64_t iterations;        /* candidates to evaluate; 0 = no limit */
	double hours;              /* wall-clock; 0 = no limit */
	double max_cost;           /* USD; 0 = no limit */
	int64_t max_tokens;        /* LLM tokens; 0 = no limit */
	int64_t resume_run;        /* 0 new run; > 0 resume that run; -1 resume the latest */
	uint64_t seed;             /* tuner / selection seed; 0 = fresh */
	size_t verify_seeds;       /* input sets per verification size; 0 = 3 */
	size_t verify_threads;     /* input sets verified in parallel (emulator); 0 = 1 */
	double eval_timeout_s;     /* per candidate; 0 = 600 */
	double grace_s;            /* after SIGINT/SIGTERM the candidate in flight may finish
				    * for this long; 0 = 30 */
	int stagnation;            /* llm: attempts without improvement that end an action; 0 = 3 */
	int max_attempts;          /* llm: attempts per action; 0 = 6 */
	size_t parallel;           /* actions in flight; 0 = the number of GPUs (1 on the
				    * emulator); verify_threads is shared among them */
	FILE *log;                 /* progress output; NULL = stderr */
	const char *const *bench_sizes; /* --size specs (kiln_target_set_bench_sizes); a new run
				    * stores the sizes it ranks on and --resume reuses them */
	size_t nbench_sizes;
} kiln_run_options;

typedef struct kiln_run_summary {
	int64_t run_id;
	char policy[8];
	char status[16];           /* "finished" | "interrupted" | "failed" */
	char stop_reason[160];
	int64_t iterations, passed, failed; /* this run, all sessions */
	int64_t seed_candidate, best_candidate;
	double seed_us, best_us, speedup;
	bool modeled;
	double cost_usd;           /* priced calls only */
	int64_t unpriced_calls;    /* answered calls of a model kiln has no price for */
	int64_t tokens;
	char best_commit[41];      /* archive commit of the best, "" if none */
	char bench_check[480];     /* the best verified at the bench size on the emulator: "passed
				    * at n=...", "FAILED ...", "skipped ..." or "" (no best) */
	bool bench_failed;         /* the best fails at the bench size: do not use it */
} kiln_run_summary;

/* LLM spend as people read it: "$0.1234" (digits decimals) from priced calls, "unknown"
 * when there are only unpriced ones (answered calls of a model kiln has no price for),
 * "$0.1234 + unknown" with both, "-" (digits <= 2) or "$0.0000" with neither. Returns out. */
char *kiln_cost_text(char *out, size_t n, double usd, bool any_priced, int64_t unpriced, int digits);

/* Runs (or resumes) a search until a budget runs out, the tuner's space is exhausted or
 * SIGINT/SIGTERM arrives (then the candidate in flight finishes, the checkpoint is
 * written and the status is "interrupted": not an error). */
kiln_err kiln_run(kiln_run_summary *out, const kiln_run_options *o);

/* ---- scale-out: `mpirun -n K kiln run ...` (agent/mpi.c) ----
 * Starts MPI when the process was launched by mpirun/srun (and kiln was built with it):
 * *rank, *size of MPI_COMM_WORLD; rank 0 and size 1 otherwise. A launch with several ranks
 * of a kiln built without MPI is KILN_EINVAL on every rank but 0. */
kiln_err kiln_mpi_start(int *rank, int *size);
/* A worker rank's life: takes evaluation jobs from rank 0 until it says stop. */
kiln_err kiln_mpi_worker(void);
/* Rank 0: tells the workers to stop and finalises MPI (a no-op when not started). */
void kiln_mpi_finish(void);

/* While set (non-zero), kiln_child_run gives a running child at most grace_s more. */
void kiln_child_set_stop(volatile sig_atomic_t *flag, double grace_s);

#endif
