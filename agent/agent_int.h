/* agent: private parts of the search loop shared by run.c, eval.c, record.c and the
 * two policies. Not installed; only the agent folder includes it. */
#ifndef KILN_AGENT_INT_H
#define KILN_AGENT_INT_H

#include <signal.h>
#include <stdio.h>
#include <sys/types.h>

#include "agent/agent.h"
#include "archive/archive.h"
#include "profile/profile.h"
#include "worldmodel/worldmodel.h"

struct cJSON;
typedef struct kiln_llm kiln_llm;

/* ---- evaluation of one candidate (eval.c) ----
 * compile -> verify -> time, run in a forked child with a deadline. The result is plain
 * data the parent records; the child's JSON is kept for result.json and the database. */
typedef struct kiln_eval_job {
	const kiln_target *target;
	const char *source;
	const char *launch_json;
	const char *const *defines; /* "KNOB=V", every knob of the target */
	size_t ndefines;
	const char *device;         /* "emu" | "cuda" (resolved, never "auto") */
	const char *gpu;            /* cost-model spec or NULL */
	kiln_rank_time rank;        /* what the timing's time_us is */
	const char *arch;
	const char *cache_dir;
	size_t nseeds;
	size_t threads;             /* verification threads */
	uint64_t timing_seed;       /* the timing input set: fixed for a run, so candidates are
				     * compared on the same inputs (masks move modeled times) */
	double timeout_s;
} kiln_eval_job;

typedef enum kiln_outcome {
	KILN_OUT_COMPILE_ERROR, /* NVRTC said no, or the launch plan is invalid */
	KILN_OUT_FAILED,        /* verification failed (or the child died) */
	KILN_OUT_UNVERIFIABLE,  /* the emulator cannot run it */
	KILN_OUT_PASSED,        /* verified and timed */
} kiln_outcome;

typedef struct kiln_eval {
	kiln_outcome outcome;
	bool abandoned;         /* interrupted by the user: not a verdict, record nothing */
	/* compile */
	bool has_compile, compile_ok;
	char *compile_log, *toolkit, *cache_key, *resources_json;
	int registers;
	int64_t spill_store, spill_load, shared_bytes;
	double compile_s;
	bool cache_hit;
	/* verification */
	bool has_verify;
	char *failed_check;     /* NULL on pass */
	char *message;          /* one line */
	double worst_error;
	int64_t worst_index;
	char *worst_buffer;
	char *seeds_json, *checks_json, *verdict_json;
	double verify_s;
	/* timing */
	bool has_timing, modeled;
	double time_us, min_us, spread, roofline, bandwidth_gbs; /* over several bench sizes: the
				 * weighted geometric mean (the objective) */
	double roofline_max;    /* the highest roofline of any bench size */
	int64_t reps;
	char *samples_json, *counters_json, *spec_json, *timing_json;
	char *sizes_json;       /* the timing's per_size array (kiln_timing sizes_json) */
	size_t nsizes;          /* its entries: the bench sizes timed */
	char *device;
	double wall_s;
} kiln_eval;

kiln_err kiln_eval_run(kiln_eval *out, const kiln_eval_job *job);
/* Compiles a candidate into the compile cache in a forked process while another one is
 * evaluated (the overlap of compile and evaluation); returns its pid or -1. */
pid_t kiln_eval_precompile(const kiln_eval_job *job);
void kiln_eval_precompile_wait(pid_t pid);
void kiln_eval_free(kiln_eval *ev);
/* A passing time under the physical limit (roofline > 1) becomes a failure. */
void kiln_eval_check_physical(kiln_eval *ev);
/* One line for prompts and logs: "compile error: ...", "failed values: ...", "3.21 us". */
char *kiln_eval_summary(const kiln_eval *ev);

/* ---- the state of a run (run.c) ---- */
typedef struct kiln_search {
	const kiln_run_options *o;
	kiln_target *t;
	char *seed_source, *seed_launch;
	kiln_lock *lock;        /* one kiln run per work directory */
	kiln_db *db;
	kiln_git *git;
	char *cache_dir;
	char device[16];        /* resolved: "emu" | "cuda" */
	char arch[16];
	int64_t run_id;
	int64_t iteration;      /* the next iteration to record */
	uint64_t seed;          /* tuner and selection seed (stored with the run) */
	kiln_wm *wm;
	kiln_llm *llm;          /* NULL for tune */
	/* the best so far */
	int64_t best_id, seed_id;
	double seed_us, best_us, best_spread_us;
	bool modeled;
	/* spent */
	int64_t passed, failed;
	double cost_usd;
	int64_t unpriced_calls; /* answered calls without a price: the spend is not known */
	int64_t tokens;
	double elapsed_before;  /* seconds spent by earlier sessions of a resumed run */
	double started;         /* kiln_now_s() at this session's start */
	bool resumed;
	char stop_reason[160];
	FILE *log;
	bool tty;
	char bench_check[480];  /* the final winner's bench-size check (run.c) */
	bool bench_failed;
} kiln_search;

/* Verifies the run's best at the bench size on the emulator (final.c): result in
 * s->bench_check, s->bench_failed, the log and an event. */
void kiln_search_bench_check(kiln_search *s);

/* The stop flag the signal handlers set (run.c). */
extern volatile sig_atomic_t kiln_search_stop;

/* ---- recording (record.c) ---- */
typedef struct kiln_cand {
	const char *source, *launch_json;
	const char *const *defines;
	size_t ndefines;
	int64_t node;           /* world-model node; -1 = none */
	int64_t parent_id;      /* candidate derived from; 0 = none */
	int64_t llm_call_id;
	bool is_seed;
	const char *changed;    /* one line: what it changed; NULL = not recorded */
} kiln_cand;

/* Records an evaluated candidate in one transaction and, when it is the run's new best,
 * commits it to the git archive. *new_best and *out_id may be NULL. */
kiln_err kiln_search_record(kiln_search *s, const kiln_cand *c, const kiln_eval *ev,
			    int64_t *out_id, bool *new_best);
/* Stores the current tree as a revision. edits/rejected may be NULL. */
kiln_err kiln_search_wm_save(kiln_search *s, const char *edits_json, const char *rejected_json,
			     int64_t llm_call_id);
/* Makes the git archive agree with history.db after a crash between the two. */
kiln_err kiln_search_reconcile_archive(kiln_search *s);
/* Makes recorded candidate id the run's best again (history.db and a new archive commit),
 * after the bench-size check demoted the winner. */
kiln_err kiln_search_restore_best(kiln_search *s, int64_t id);
/* Evaluates and records one candidate; the shared path of both policies. */
kiln_err kiln_search_evaluate(kiln_search *s, const kiln_cand *c, kiln_eval *ev, int64_t *out_id,
			      bool *new_best);
/* Starts compiling a candidate that will be evaluated next (kiln_eval_precompile). */
pid_t kiln_search_precompile(kiln_search *s, const kiln_cand *c);
/* Budgets: true (with s->stop_reason set) when the run must stop before the next step. */
bool kiln_search_should_stop(kiln_search *s);
void kiln_search_progress(kiln_search *s, const char *what);
kiln_err kiln_search_checkpoint(kiln_search *s, const char *policy_state_json);

/* ---- policies ---- */
kiln_err kiln_policy_tune(kiln_search *s);
kiln_err kiln_policy_llm(kiln_search *s);

#endif
