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
	int gpu_index;              /* cuda: the worker's GPU ordinal (KILN_GPU_INDEX in the
				     * child); -1 = the default */
	int mpi_rank;               /* 0: evaluate here; > 0: on that MPI worker rank */
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
	/* compile: the child's answer read by the fields of archive/fields.c (its texts owned,
	 * freed by kiln_eval_free; arch is the parent's) */
	bool has_compile;
	kiln_compile_rec compile;
	/* verification */
	bool has_verify;
	char *failed_check;     /* NULL on pass */
	char *message;          /* one line */
	double worst_error;
	int64_t worst_index;
	char *worst_buffer;
	char *seeds_json, *checks_json, *verdict_json;
	double verify_s;
	/* timing: as compile (speedup is the parent's). Over several bench sizes time_us,
	 * roofline and bandwidth_gbs are the weighted geometric mean (the objective) */
	bool has_timing;
	kiln_timing_rec timing;
	double roofline_max;    /* the highest roofline of any bench size */
	char *timing_json;      /* the timing's whole record (kiln_timing_to_json) */
	size_t nsizes;          /* the bench sizes timed (timing.sizes_json's entries) */
	char *device;
	double wall_s;
} kiln_eval;

kiln_err kiln_eval_run(kiln_eval *out, const kiln_eval_job *job);
/* The child's part: compile, verify and time the job (its plan parsed) in a forked child
 * with the job's deadline; r holds the child's JSON answer and how it ended. */
kiln_err kiln_eval_in_child(kiln_child_result *r, const kiln_eval_job *job, const kiln_plan *plan);
/* The parent's part: reads the child's answer r into ev (zeroed, as kiln_eval_run sets it).
 * An answer without a verdict, or with a compile or timing field missing, misspelt or ill-typed
 * (archive/fields.c), is a failure named by how the child ended or by the field. */
void kiln_eval_take_answer(kiln_eval *ev, const kiln_child_result *r, const kiln_eval_job *job);

/* ---- MPI transport (mpi.c) ----
 * Under mpirun, rank 0 coordinates and ranks 1..K-1 evaluate: a job goes to a worker as
 * JSON, the worker runs kiln_eval_in_child and sends back the child's answer. */
/* Worker ranks this coordinator has; 0 when not under MPI (or built without it). */
int kiln_mpi_workers(void);
/* Sends the job to worker `job->rank`, waits for its answer (other threads run meanwhile).
 * Errors only when the worker could not take the job (target missing on its node...). */
kiln_err kiln_mpi_eval(kiln_child_result *r, const kiln_eval_job *job);
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
	/* work in flight (par.c); all of it is read and written under the search lock */
	struct kiln_par *par;   /* NULL: one action at a time, no lock */
	int64_t *holes;         /* iterations below `iteration` dispatched by an earlier session
				 * and never recorded (killed in flight): issued again first */
	size_t nholes;
	int64_t reserved;       /* attempts in flight that have no iteration yet (their LLM call
				 * is out): they count against the iteration budget */
	int64_t asking, evaluating; /* LLM calls and evaluations in flight (the progress line) */
	double cost_inflight;   /* USD reserved for LLM calls in flight (the cost budget) */
	int64_t tokens_inflight;
	int64_t calls;          /* answered LLM calls of this session (the per-call estimate) */
	int64_t last_iteration; /* the iteration of the last recorded candidate */
	char *policy_state;     /* the policy's last checkpoint state (kept by later ones) */
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
	int64_t iteration;      /* assigned at dispatch (kiln_search_dispatch) when dispatched */
	bool dispatched;        /* false: the record takes the next iteration itself */
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

/* ---- work in flight (par.c) ----
 * `--parallel N`: N threads each carry one action (LLM call -> evaluation -> record) under
 * one search lock that is released only while a thread waits for the LLM or for its
 * evaluation child, so the coordinator's state (history.db, the archive, the world model,
 * the budgets) is written by one thread at a time, one transaction per result. With
 * s->par NULL (one action at a time) the lock calls do nothing. */
typedef struct kiln_par kiln_par;
/* Actions in flight: o->parallel, or the number of GPUs (1 on the emulator). */
size_t kiln_search_width(const kiln_search *s);
void kiln_search_lock(kiln_search *s);
void kiln_search_unlock(kiln_search *s);
/* cuda with several slots: the GPU of the calling slot (one per GPU, round robin); -1
 * otherwise (the device's default). */
int kiln_search_gpu_of_slot(const kiln_search *s);
/* Under mpirun: the worker rank of the calling slot (slot i -> rank i+1); 0 otherwise. */
int kiln_search_worker_rank(void);
/* Holds one iteration of the budget for an attempt whose candidate does not exist yet;
 * false (and no hold) when the budget is spent by what is recorded and in flight. */
bool kiln_search_reserve(kiln_search *s);
void kiln_search_unreserve(kiln_search *s);
/* The iteration of a candidate sent to evaluation: an earlier session's hole first, else
 * the next number. Releases a reservation when `reserved`. */
int64_t kiln_search_dispatch(kiln_search *s, bool reserved);
/* Takes iteration `it` out of the holes (a re-issued candidate); false if it is not one. */
bool kiln_search_take_hole(kiln_search *s, int64_t it);
/* Cost and token budgets for one LLM call about to start: false when what is spent plus
 * what calls in flight may cost (an estimate each: the session's mean so far) leaves no
 * room; else the estimate is held in *held until kiln_search_call_end. */
bool kiln_search_call_begin(kiln_search *s, double *held_usd, int64_t *held_tokens);
void kiln_search_call_end(kiln_search *s, double held_usd, int64_t held_tokens);
/* Runs fn(slot[i]) on n threads, each in a loop until the search must stop or fn sets
 * *done; fn runs under the search lock. *idle: nothing to do now (every action in flight),
 * wait for another slot's result. The first error stops every slot and is returned with
 * its message. */
typedef kiln_err (*kiln_slot_fn)(void *slot, bool *idle, bool *done);
kiln_err kiln_search_run_slots(kiln_search *s, void *const *slots, size_t n, kiln_slot_fn fn);
/* Iterations 0..s->iteration-1 not among the recorded ones become s->holes. */
kiln_err kiln_search_find_holes(kiln_search *s, const int64_t *recorded, size_t n);

/* ---- policies ---- */
kiln_err kiln_policy_tune(kiln_search *s);
kiln_err kiln_policy_llm(kiln_search *s);

#endif
