/* archive: what a search leaves behind. history.db (SQLite, WAL, versioned schema with
 * PRAGMA user_version migrations; every table documented in docs/schema.md) through a
 * small typed insert/query API, and the git archive (libgit2): one commit per new best
 * on branch <target>/<arch>, promote tags promoted/<target>/<arch>/vN.
 * Record structs are plain data; their const char* fields are borrowed for the call. */
#ifndef KILN_ARCHIVE_H
#define KILN_ARCHIVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

/* ======================= history.db ======================= */

#define KILN_DB_SCHEMA_VERSION 4

typedef struct kiln_db kiln_db;

enum {
	KILN_DB_READONLY = 1, /* open an existing file for reading; never creates or migrates */
};

/* Opens (creating with the current schema when new, migrating an older one) the database
 * at path. WAL journal, 5 s busy timeout, foreign keys on. Errors: KILN_EINVAL when the
 * file's schema is newer than this kiln, KILN_ECORRUPT when it is not a database or is
 * damaged (the message says how to recover), KILN_ENOTFOUND for a read-only open of a
 * missing file, KILN_EDB for other SQLite failures. Caller frees with kiln_db_close.
 * A kiln_db belongs to one thread at a time and must not cross a fork(): a child opens its
 * own. synchronous = NORMAL under WAL: a killed process loses nothing committed (a power
 * cut may lose the last transactions, never consistency). */
kiln_err kiln_db_open(kiln_db **out, const char *path, int flags);
void kiln_db_close(kiln_db *db);
/* PRAGMA user_version of the open file. */
int kiln_db_schema_version(kiln_db *db);
/* Whether timings has the per-size column `sizes` (schema v3 on): an older file opened
 * read-only is read as it is, without it. */
bool kiln_db_has_size_times(kiln_db *db);
/* PRAGMA integrity_check + foreign_key_check; KILN_ECORRUPT naming the first problem. */
kiln_err kiln_db_integrity_check(kiln_db *db);
/* The raw handle, for read-only ad-hoc queries (reports); borrowed from db. */
struct sqlite3 *kiln_db_sqlite(kiln_db *db);

/* Groups several writes into one transaction (nests: inner calls use savepoints). */
kiln_err kiln_db_tx_begin(kiln_db *db);
kiln_err kiln_db_tx_commit(kiln_db *db);
void kiln_db_tx_rollback(kiln_db *db);

/* ---- runs ---- */
typedef struct kiln_run_rec {
	const char *target;       /* required */
	const char *policy;       /* "llm" | "tune" (required) */
	const char *llm_model;    /* "openai:gpt-5", NULL for tune */
	const char *device;       /* "cuda" | "emu" (required) */
	const char *gpu;          /* GPU name or modeled spec ("H100-SXM"), may be NULL */
	const char *arch;         /* "sm_90" (required) */
	const char *budgets_json; /* {"iterations":..,"hours":..,"max_cost":..}; NULL = {} */
	const char *config_json;  /* everything else needed to resume; NULL = {} */
	int64_t pid;              /* process running it; 0 = unknown */
} kiln_run_rec;

/* Inserts a run with status "running" and started = now. */
kiln_err kiln_db_run_begin(kiln_db *db, int64_t *out_id, const kiln_run_rec *r);
/* Sets status ("finished" | "interrupted" | "failed"), ended = now and spent (JSON, NULL
 * keeps the old value). */
kiln_err kiln_db_run_end(kiln_db *db, int64_t run_id, const char *status, const char *spent_json);
/* A resumed run: status back to "running", ended cleared, pid updated. */
kiln_err kiln_db_run_resume(kiln_db *db, int64_t run_id, int64_t pid);
/* Updates the spent JSON (budgets used so far) of a running run. */
kiln_err kiln_db_run_spent(kiln_db *db, int64_t run_id, const char *spent_json);

typedef struct kiln_run_info {
	int64_t id;
	char *target, *policy, *llm_model, *device, *gpu, *arch; /* llm_model, gpu may be NULL */
	char *started, *ended;        /* ISO-8601 UTC; ended NULL while running */
	char *status;
	char *budgets_json, *spent_json, *config_json;
	int64_t seed_candidate;       /* 0 = none yet */
	int64_t best_candidate;       /* 0 = none yet */
	int64_t pid;
	int64_t ncandidates;          /* rows in candidates for this run */
} kiln_run_info;

/* Runs, newest first; target NULL = all. *out is an array of *n (kiln_run_infos_free). */
kiln_err kiln_db_runs_list(kiln_db *db, kiln_run_info **out, size_t *n, const char *target);
/* One run; KILN_ENOTFOUND when there is none. Free with kiln_run_infos_free(p, 1). */
kiln_err kiln_db_run_get(kiln_db *db, kiln_run_info **out, int64_t run_id);
void kiln_run_infos_free(kiln_run_info *runs, size_t n);

/* ---- candidates, with their compile result, verification and timing ---- */
typedef struct kiln_candidate_rec {
	int64_t run_id;           /* required */
	int64_t iteration;        /* unique within the run: a resumed run never records twice */
	const char *node_id;      /* world-model node that produced it; NULL for none */
	int64_t parent_id;        /* candidate it was derived from; 0 = none */
	const char *source;       /* kernel.cu text (required) */
	const char *launch_json;  /* launch plan (required) */
	const char *knobs_json;   /* -D defines / knob values as a JSON object; NULL = {} */
	int64_t llm_call_id;      /* the call that wrote it; 0 = none (seed, tuner) */
	bool is_seed;             /* sets runs.seed_candidate */
	bool new_best;            /* sets runs.best_candidate (same transaction) */
	const char *changed;      /* one line: what it changed (the model's CHANGED line or kiln's
				   * diff summary); NULL = not recorded */
} kiln_candidate_rec;

typedef struct kiln_compile_rec {
	bool ok;
	const char *log;            /* NVRTC log */
	const char *arch;           /* "sm_90" */
	const char *toolkit;        /* "NVRTC 13.0, nvJitLink 13.0" */
	const char *cache_key;      /* compile cache key, may be NULL */
	int registers;              /* max over kernels; -1 unknown */
	int64_t spill_store_bytes;  /* sum over kernels; -1 unknown */
	int64_t spill_load_bytes;   /* sum over kernels; -1 unknown */
	int64_t shared_bytes;       /* static shared, max over kernels; -1 unknown */
	double wall_s;
	bool cache_hit;
	const char *resources_json; /* per-kernel report (kiln_compile_resources_json) */
} kiln_compile_rec;

typedef struct kiln_verify_rec {
	bool passed;
	const char *failed_check; /* NULL when passed: "mismatch", "unwritten", "oob", "race", ... */
	const char *message;      /* one line for people and prompts */
	double worst_error;       /* worst |error| / tolerance seen; NaN = not measured */
	int64_t worst_index;      /* flat element index of the worst error; -1 = none */
	const char *worst_buffer; /* output buffer it occurred in */
	int64_t worst_set;        /* input set index of the worst error; -1 = none */
	const char *seeds_json;   /* [seed, ...] of the input sets */
	const char *checks_json;  /* ["values", "written", "inputs_unchanged", "oob", ...] */
	const char *device;       /* "emu" | "cuda:NVIDIA H100 ..." */
	double wall_s;
	const char *details_json; /* anything else (per-set sizes, first mismatches) */
} kiln_verify_rec;

typedef struct kiln_timing_rec {
	const char *device;        /* required */
	bool modeled;              /* true: cost model on the emulator, never "measured" */
	double time_us;            /* median, microseconds, > 0 */
	double min_us;             /* fastest repetition; NaN = unknown */
	double spread;             /* relative spread (p90-p10)/median; NaN = unknown */
	int64_t reps;              /* repetitions behind the median; 1 for modeled */
	double roofline;           /* target traffic / time / peak bandwidth, 0..1; NaN = unknown */
	double bandwidth_gbs;      /* achieved GB/s (1e9 bytes/s); NaN = unknown */
	double speedup;            /* seed time / this time; NaN = unknown */
	const char *samples_json;  /* [us, ...] every repetition */
	const char *counters_json; /* emulator / CUPTI counters */
	const char *spec_json;     /* the GPU spec used (modeled) or the device properties */
	const char *sizes_json;    /* [{"sizes", "weight", "time_us", ...}] every bench size (schema v3); may be NULL */
} kiln_timing_rec;

/* ---- the record fields, described once (archive/fields.c) ----
 * One row per field of kiln_compile_rec, kiln_verify_rec and kiln_timing_rec: its C type and
 * offset, the key the evaluation child sends it under, its history.db column, its unit and
 * how `kiln show` prints it. The child's JSON (kiln_record_to_json), the parent's parse
 * (kiln_record_from_json), the INSERT of kiln_db_candidate_commit and the review output all
 * walk these rows, so a field is added, renamed or given a unit in one place. */
struct cJSON;

typedef enum kiln_field_type {
	KILN_FIELD_BOOL,  /* bool */
	KILN_FIELD_INT,   /* int */
	KILN_FIELD_INT64, /* int64_t */
	KILN_FIELD_REAL,  /* double; NaN = unknown (JSON null, SQL NULL) */
	KILN_FIELD_TEXT,  /* const char *; NULL = JSON null, SQL NULL */
	KILN_FIELD_JSON,  /* const char * holding JSON text; sent as the JSON value itself */
} kiln_field_type;

enum {
	KILN_FIELD_REQUIRED = 1, /* the INSERT refuses a NULL text ("timing device is required") */
	KILN_FIELD_COUNT = 2,    /* a negative number means unknown: stored as NULL */
	KILN_FIELD_NONNEG = 4,   /* a negative number from the child is an error */
	KILN_FIELD_AT_LEAST_1 = 8, /* stored as 1 when below (reps: modeled timings have none) */
};

typedef struct kiln_field {
	const char *name;         /* the C member */
	kiln_field_type type;
	size_t offset;            /* offsetof into the record */
	const char *key;          /* key in the evaluation child's answer; NULL = the parent fills it */
	const char *column;       /* history.db column */
	const char *unit;         /* "us", "GB/s", "bytes", "s"; NULL = none */
	unsigned flags;           /* KILN_FIELD_REQUIRED ... */
	const char *if_null;      /* TEXT/JSON stored instead of NULL ("[]"); NULL = NULL */
	size_t cap;               /* TEXT: bytes stored (head and tail, kiln_text_cap); 0 = all */
	const char *words[2];     /* BOOL stored as a word {false, true}; NULL = 0/1 */
	const char *label, *fmt;  /* kiln show: "bandwidth GB/s", "%.0f"; NULL = not printed */
} kiln_field;

typedef struct kiln_record_desc {
	const char *table;        /* "timings" */
	const char *part;         /* "timing": the child answer's object, and messages */
	const char *noun;         /* "timing" ("compile result"): messages */
	const kiln_field *fields;
	size_t nfields;
} kiln_record_desc;

/* The three parts of a candidate: kiln_compile_rec, kiln_verify_rec, kiln_timing_rec. */
extern const kiln_record_desc kiln_compile_desc, kiln_verify_desc, kiln_timing_desc;

/* Adds every field of rec that has a key to obj (numbers that are not finite as null, JSON
 * texts parsed; one that does not parse goes as null). KILN_ENOMEM. */
kiln_err kiln_record_to_json(struct cJSON *obj, const kiln_record_desc *d, const void *rec);
/* Reads every keyed field of d from obj into rec, allocating its texts (kiln_record_free).
 * Each key must be there with its type: a missing or misspelt key, a wrong type, a number that
 * is not integral or out of range for an integer field, or negative for a KILN_FIELD_NONNEG
 * one is KILN_EINVAL naming "<part>.<key>" (rec then holds what was read: free it). Null is
 * accepted for REAL (NaN), TEXT and JSON (NULL). */
kiln_err kiln_record_from_json(void *rec, const kiln_record_desc *d, const struct cJSON *obj);
/* Frees the texts kiln_record_from_json allocated in rec and sets them NULL. */
void kiln_record_free(void *rec, const kiln_record_desc *d);

/* Writes a candidate and those of its parts that are non-NULL in ONE transaction: after a
 * crash either all of it is in history.db or none of it is. On any failure nothing is
 * visible and the error names the part and the candidate's run/iteration. */
kiln_err kiln_db_candidate_commit(kiln_db *db, int64_t *out_id, const kiln_candidate_rec *c,
				  const kiln_compile_rec *compile, const kiln_verify_rec *verify,
				  const kiln_timing_rec *timing);

typedef struct kiln_candidate_info {
	int64_t id, run_id, iteration, parent_id, llm_call_id; /* 0 = none for the last two */
	char *node_id;                     /* may be NULL */
	char *source, *launch_json, *knobs_json;
	char *source_hash;                 /* SHA-256 of source */
	char *hash;                        /* SHA-256 of source + launch + knobs: the identity */
	char *created;
	char *outcome;                     /* "compile_error" | "failed" | "passed" | "unverified" */
	char *changed;                     /* one line, what it changed; NULL = not recorded */
	/* compile (has_compile false: none recorded) */
	bool has_compile, compile_ok;
	char *compile_log;
	int registers;
	int64_t spill_store_bytes, spill_load_bytes, shared_bytes;
	/* verification */
	bool has_verify, passed;
	char *failed_check, *verify_message; /* may be NULL */
	double worst_error;                  /* NaN when none */
	/* timing */
	bool has_timing, modeled;
	double time_us, speedup, roofline;   /* NaN when unknown */
	char *sizes_json;                    /* timings.sizes: every bench size's record, or NULL */
} kiln_candidate_info;

/* Candidates of a run in iteration order (kiln_candidate_infos_free). */
kiln_err kiln_db_candidates_list(kiln_db *db, kiln_candidate_info **out, size_t *n, int64_t run_id);
/* By row id; KILN_ENOTFOUND when none. Free with kiln_candidate_infos_free(p, 1). */
kiln_err kiln_db_candidate_get(kiln_db *db, kiln_candidate_info **out, int64_t id);
/* By reference: a row id (all digits, < 7 of them), else a hex prefix (>= 4 digits) of
 * the candidate hash.
 * An ambiguous prefix is KILN_EINVAL listing how many match; none is KILN_ENOTFOUND. */
kiln_err kiln_db_candidate_find(kiln_db *db, kiln_candidate_info **out, const char *ref);
/* The run's best (runs.best_candidate); KILN_ENOTFOUND when it has none. */
kiln_err kiln_db_candidate_best(kiln_db *db, kiln_candidate_info **out, int64_t run_id);
/* Makes candidate_id the run's best (a winner demoted by the bench-size check). */
kiln_err kiln_db_run_set_best(kiln_db *db, int64_t run_id, int64_t candidate_id);
void kiln_candidate_infos_free(kiln_candidate_info *c, size_t n);

/* ---- LLM calls, world-model revisions, events, checkpoints ---- */
typedef struct kiln_llm_call_rec {
	int64_t run_id;                 /* required */
	const char *provider, *model;   /* "openai", "gpt-5" */
	const char *request_id;         /* the provider's id, may be NULL */
	const char *status;             /* "ok" | "error" | "timeout" | "truncated" | "refused" */
	int attempts;                   /* HTTP attempts including retries */
	double latency_s;               /* wall time over all attempts */
	int64_t prompt_tokens, cached_tokens, completion_tokens, reasoning_tokens; /* -1 unknown */
	double cost_usd;                /* NaN = unknown (stored as NULL) */
	const char *purpose;            /* "init" | "propose" | "debug" | "improve" | "reflect" ... */
	const char *prompt, *reply;     /* full texts; never an API key */
	const char *error;              /* NULL when ok */
} kiln_llm_call_rec;
kiln_err kiln_db_llm_call_add(kiln_db *db, int64_t *out_id, const kiln_llm_call_rec *r);

typedef struct kiln_wm_revision_rec {
	int64_t run_id;
	int64_t iteration;
	const char *tree_json;     /* the whole tree after the edits (required) */
	const char *edits_json;    /* the edit script applied; NULL = [] */
	const char *rejected_json; /* ops rejected, with reasons; NULL = [] */
	int64_t llm_call_id;       /* 0 = none */
} kiln_wm_revision_rec;
kiln_err kiln_db_wm_revision_add(kiln_db *db, int64_t *out_id, const kiln_wm_revision_rec *r);
/* The whole tree of one wm_revisions row (caller frees *out). The newest row of a run holds
 * its tree; older rows are reverse deltas rebuilt here (archive/wm_store.c); KILN_ECORRUPT
 * when a chain is broken. */
kiln_err kiln_db_wm_tree(kiln_db *db, char **out, int64_t revision_id);
/* The newest tree of a run (caller frees *tree_json); KILN_ENOTFOUND when none. */
kiln_err kiln_db_wm_revision_latest(kiln_db *db, char **tree_json, int64_t *iteration, int64_t run_id);

/* level: "debug" | "info" | "warn" | "error". run_id 0 = not tied to a run. */
kiln_err kiln_db_event_add(kiln_db *db, int64_t run_id, const char *level, const char *kind,
			   const char *message, const char *data_json);

/* The resume state of a run (one row per run, replaced on each put). */
kiln_err kiln_db_checkpoint_put(kiln_db *db, int64_t run_id, int64_t iteration, const char *state_json);
/* Caller frees *state_json; KILN_ENOTFOUND when the run has no checkpoint. */
kiln_err kiln_db_checkpoint_get(kiln_db *db, char **state_json, int64_t *iteration, int64_t run_id);

/* ======================= work-directory lock ======================= */

/* One `kiln run` per work directory: <workdir>/lock holds the owner's pid under an
 * flock that dies with the process. */
typedef struct kiln_lock kiln_lock;
/* Creates workdir when missing and takes its lock. KILN_ELOCKED "work directory DIR is in
 * use by kiln run (pid N)" while a live process holds it. A stale lock (its pid dead,
 * e.g. after kill -9) is taken over with a warning line on stderr. Caller releases. */
kiln_err kiln_lock_acquire(kiln_lock **out, const char *workdir);
/* Drops the lock (NULL: no-op). A forked child must not call it: it would drop the
 * parent's lock. */
void kiln_lock_release(kiln_lock *l);

/* ======================= git archive ======================= */

typedef struct kiln_git kiln_git;

/* Opens the archive at dir, creating a bare repository when missing (bare: no working
 * tree to drift; `git -C dir log adamw/sm_90`, `git log --all` and
 * `git show adamw/sm_90:kernel.cu` work; HEAD follows the branch last committed, so a
 * plain `git log` shows the latest search). Caller frees with kiln_git_close. */
kiln_err kiln_git_open(kiln_git **out, const char *dir);
void kiln_git_close(kiln_git *g);

typedef struct kiln_git_best {
	const char *target, *arch;  /* branch <target>/<arch> (required) */
	const char *kernel_cu;      /* required */
	const char *launch_json;    /* required */
	const char *result_json;    /* verdict, seeds, timing, device, toolkit, node, model */
	double speedup;             /* over the seed */
	double time_us;             /* median */
	bool modeled;
	int64_t candidate_id;       /* recorded as a "Kiln-Candidate:" trailer */
	int64_t run_id;             /* recorded as a "Kiln-Run:" trailer */
	const char *body;           /* optional extra paragraph (node path, model) */
} kiln_git_best;

/* Commits kernel.cu, launch.json and result.json on branch <target>/<arch> (created on
 * first use; parent = the branch tip) with the message
 * "adamw sm_90: 1.42x over seed (31.2 us, modeled) — candidate 17". out_oid: hex. */
kiln_err kiln_git_commit_best(kiln_git *g, char out_oid[41], const kiln_git_best *b);

/* Tip of <target>/<arch> into out_oid; KILN_ENOTFOUND when the branch does not exist. */
kiln_err kiln_git_branch_tip(kiln_git *g, char out_oid[41], const char *target, const char *arch);

/* Annotated tag promoted/<target>/<arch>/vN (N = 1 + the highest existing) on rev (an
 * oid or ref; NULL = the branch tip). out_name receives the tag name. */
kiln_err kiln_git_tag(kiln_git *g, char *out_name, size_t name_size, const char *target,
		      const char *arch, const char *rev, const char *message);

/* The bytes of path in the commit rev (oid, branch or tag). Caller frees *out (NUL-
 * terminated); KILN_ENOTFOUND when rev or path does not exist. */
kiln_err kiln_git_read_file(kiln_git *g, char **out, size_t *len, const char *rev, const char *path);

typedef struct kiln_git_branch {
	char *name;            /* "adamw/sm_90" */
	char oid[41];          /* tip */
	size_t commits;        /* length of its history */
	int64_t candidate_id;  /* tip's Kiln-Candidate trailer; 0 = none */
	int64_t run_id;        /* tip's Kiln-Run trailer; 0 = none */
} kiln_git_branch;

/* Walks every branch and every commit on it: each must have kernel.cu, launch.json and a
 * result.json that parses. KILN_ECORRUPT naming the branch and commit otherwise. On
 * success *out lists the branches (kiln_git_branches_free) for cross-checks with
 * history.db (runs.best_candidate == tip candidate). */
kiln_err kiln_git_verify_refs(kiln_git *g, kiln_git_branch **out, size_t *n);
void kiln_git_branches_free(kiln_git_branch *b, size_t n);

/* ======================= review, report, promote (report.c, promote.c) ======================= */

struct cJSON;

/* Runs one read-only SELECT and returns its rows as a JSON array of objects keyed by column
 * name (caller frees *out with cJSON_Delete). params[i] binds ?i+1: an all-digit text binds as
 * an integer, anything else as text, NULL as NULL. Columns named like the schema's JSON
 * columns (launch, knobs, budgets, spent, config, resources, seeds, checks_run, details,
 * samples, counters, spec, tree, edits, rejected, state, data) are parsed into JSON; NULL
 * is null, integers and reals are numbers. KILN_EDB naming `what` on failure. */
kiln_err kiln_db_query_json(kiln_db *db, struct cJSON **out, const char *sql,
			    const char *const *params, size_t nparams, const char *what);

/* ---- review queries of the CLI (archive/review.c) ---- */

/* Every run (target NULL) or one target's, newest first, as the JSON array `kiln runs
 * --json` prints (docs/review.md: run columns plus duration_s, candidates, passed,
 * last_iteration, best_us, best_speedup, best_kind, llm_calls, cost_usd, unpriced_calls,
 * tokens). Caller frees *out with cJSON_Delete. */
kiln_err kiln_db_review_runs(kiln_db *db, struct cJSON **out, const char *target);
/* RUN (all digits, < 19 of them: that run id) or TARGET (its newest run) into *out;
 * KILN_ENOTFOUND when the history has none. */
kiln_err kiln_db_run_find(kiln_db *db, int64_t *out, const char *ref);
/* The distinct target names of the history's runs, sorted (kiln_db_run_targets_free). */
kiln_err kiln_db_run_targets(kiln_db *db, char ***out, size_t *n);
void kiln_db_run_targets_free(char **names, size_t n);
/* The world-model revision of run_id recorded at or before iteration `at` (< 0: the
 * newest) as `kiln tree --json` prints it: run, revision_id, iteration, revision_index,
 * revisions, created, llm_call_id, edits, rejected, tree (null for an older revision stored
 * as a delta: kiln_db_wm_tree rebuilds it), best_candidate. *out is NULL when the run has
 * none; caller frees it with cJSON_Delete. */
kiln_err kiln_db_review_wm(kiln_db *db, struct cJSON **out, int64_t run_id, int64_t at);

/* ---- review reads of candidates (archive/review_cand.c); caller frees *out (cJSON_Delete) ---- */
/* Everything about one candidate (ref as kiln_db_candidate_find) for `kiln show`:
 * {"candidate","compile","verification","timing","node","ancestry","llm_call"} (docs/review.md);
 * the call's prompt and reply only with with_prompt. */
kiln_err kiln_db_candidate_doc(kiln_db *db, struct cJSON **out, const char *ref, bool with_prompt);
/* One side of `kiln diff`: id, hash, run, iteration, node, outcome, failed check, kind, time,
 * speedup, roofline, registers, spills, changed, knobs, launch and source. */
kiln_err kiln_db_candidate_metrics(kiln_db *db, struct cJSON **out, const char *ref);

typedef struct kiln_log_filter {
	int64_t run_id;           /* 0 = every run */
	const char *target;       /* NULL = every target */
	int passed;               /* 1 passed only, 0 the others, -1 all */
	const char *node_id;      /* world-model node ("12"); NULL = all */
	const char *since;        /* ISO-8601 UTC time or prefix: recorded at or after; NULL = all */
} kiln_log_filter;
/* The rows of `kiln log` in run and iteration order: the candidate, its verdict and timing
 * (sizes: the per-size times, null in a file before schema v3), new_best (a strict
 * improvement on the run's earlier passing times) and is_best. */
kiln_err kiln_db_log_rows(kiln_db *db, struct cJSON **out, const kiln_log_filter *f);

/* A unified diff (3 lines of context) of two texts through libgit2, with "--- a_name" /
 * "+++ b_name" headers; "" when they are equal. Caller frees *out. */
kiln_err kiln_diff_text(char **out, const char *a, const char *a_name, const char *b, const char *b_name);

/* The self-contained HTML report of one run (no network, no scripts): inline SVG charts of
 * best time and speedup over iterations, wall-clock and cost; every candidate as a point
 * (passed, failed by check); roofline fraction; the world-model tree with the path to the
 * winner; the best candidates with their sources; the winner's source and diff to the
 * seed; the budget spent. archive_dir (may be NULL) adds the archive commit of each best.
 * Caller frees *out. */
kiln_err kiln_report_html(char **out, kiln_db *db, const char *archive_dir, int64_t run_id);

/* These two open the git archive at archive_dir themselves (never creating it).
 * The archive commit of candidate_id: the newest commit on <target>/<arch> whose
 * Kiln-Candidate trailer names it (out_oid hex); KILN_ENOTFOUND when it was never a best. */
kiln_err kiln_git_find_candidate(char out_oid[41], const char *archive_dir, const char *target,
				 const char *arch, int64_t candidate_id);
/* The Kiln-Candidate ids of every commit on <target>/<arch>, newest first: the candidates
 * a search counted as new bests (past its noise margin). Caller frees *out. */
kiln_err kiln_git_best_candidates(int64_t **out, size_t *n, const char *archive_dir, const char *target,
				  const char *arch);
/* A commit of b's files (message and trailers as kiln_git_commit_best) that no branch
 * points at, parent the branch tip when there is one: for promoting a candidate that was
 * never a new best (the promote tag keeps it reachable). */
kiln_err kiln_git_commit_detached(char out_oid[41], const char *archive_dir, const kiln_git_best *b);

/* ---- the promote workflow (archive/promote_run.c) ---- */

struct kiln_verdict;
#define KILN_PROMOTE_MAX_ARCHS 24

typedef struct kiln_promote_options {
	kiln_db *db;              /* the history, read only (required) */
	const char *workdir;      /* its cache/ and archive/ are used (required) */
	const char *target;       /* name or folder (kiln_target_find; required) */
	const char *targets_dir;  /* NULL: the default search */
	const char *candidate;    /* row id or hash prefix; NULL: the fastest best of the target's runs */
	const char *const *archs; /* "sm_90a", ... (at most KILN_PROMOTE_MAX_ARCHS, each < 16 bytes);
				   * narchs 0: every toolkit arch from sm_80 up */
	size_t narchs;
	const char *out_dir;      /* created (required) */
	const char *name;         /* file and function prefix; NULL: the target's name */
	size_t nseeds;            /* fresh input sets per size for the re-verification */
	size_t threads;           /* verification threads; 0: every core */
	bool python;              /* also NAME.py (kiln_promote_python) */
} kiln_promote_options;
#define KILN_PROMOTE_OPTIONS_INIT {NULL, NULL, NULL, NULL, NULL, NULL, 0, NULL, NULL, 5, 0, false}

typedef enum kiln_promote_outcome {
	KILN_PROMOTE_DONE,                /* files written, archive tagged */
	KILN_PROMOTE_REFUSED_RECORDED,    /* the candidate did not pass when it was recorded */
	KILN_PROMOTE_REFUSED_DEVICE_ONLY, /* the device-only rule (kiln_promote_check_device_only) */
	KILN_PROMOTE_REFUSED_VERIFY,      /* the fresh re-verification failed (verdict, verdict_arch) */
} kiln_promote_outcome;

typedef struct kiln_promote_result {
	kiln_promote_outcome outcome;
	int64_t candidate_id;
	char *target;                 /* the target's name */
	char *recorded_outcome;       /* the candidate's recorded outcome ("passed", "failed", ...) */
	char *reason;                 /* REFUSED_RECORDED: the failed check, else the message ("" for
				       * none); REFUSED_DEVICE_ONLY: the rule's "line N: what"; else NULL */
	struct kiln_verdict *verdict; /* the re-verification: the first failing arch's, else the last's */
	char verdict_arch[16];        /* the arch of verdict; "" before any ran */
	struct kiln_verdict *bench;   /* at the bench size; bench->sets == 0: not run */
	char archs[KILN_PROMOTE_MAX_ARCHS][16]; /* the fatbin's architectures */
	size_t narchs;
	char oid[41];                 /* the archive commit tagged (DONE) */
	bool detached;                /* the commit is a detached one: the candidate was never a new best */
	struct cJSON *manifest;       /* DONE: NAME.json's content (archive.tags: the tags made) */
} kiln_promote_result;

/* `kiln promote`: chooses the candidate, refuses it (an outcome, with *out filled) when it
 * did not pass when recorded or breaks the device-only rule, builds the fatbin (every arch
 * of o->archs), re-verifies it on the emulator with o->nseeds fresh seeds per size once per
 * distinct PTX and then at the bench size (kiln_verify_bench_check_wanted), refuses a
 * failing one, else commits the archive (a detached commit for a candidate that was never
 * a new best), writes out_dir/NAME.{cu,h,fatbin,json[,py]} and tags the commit
 * promoted/<target>/<arch>/vN per arch. Errors (no such target or candidate, a candidate of
 * another target, compile failure, I/O, git) are kiln_err with *out NULL; on success the
 * caller frees *out with kiln_promote_result_free. */
kiln_err kiln_promote(kiln_promote_result **out, const kiln_promote_options *o);
void kiln_promote_result_free(kiln_promote_result *r);

/* The device-only rule of promote (archive/device_only.c): KILN_OK when source reads the
 * same to NVRTC and to nvcc's host and device passes and holds no host code that can run
 * (only knob defaults as conditionals; only __global__/__device__ functions and device
 * variables at namespace scope; no configuration macros, asm or attributes outside bodies).
 * knobs: the names a knob default may test. Else KILN_EVERIFY "line N: what". */
kiln_err kiln_promote_check_device_only(const char *source, const char *const *knobs, size_t nknobs);

/* NAME.py of `kiln promote --python` (archive/promote_py.c): a PyTorch module loading
 * NAME.fatbin with ctypes on libcuda. spec_json: {"buffers": [{name, dtype, shape, role}],
 * "scalars": [{name, dtype, value}], "symbols": [names], "knobs": {name: int},
 * "launches": [{kernel, grid[3], block[3], shared, args}], "scratch": [{name, dtype, count}]}
 * (kiln expressions as strings). summary and provenance go into docstrings. Names that
 * are not Python identifiers or are keywords are KILN_EINVAL. Caller frees *out. */
kiln_err kiln_promote_python(char **out, const char *name, const char *spec_json, const char *summary,
			     const char *provenance);

/* Translates a launch expression (the targets' grammar) into a C expression of type long
 * long: names go through map (the C text for a name, or NULL for an unknown name ->
 * KILN_EINVAL), ceil_div/min/max become calls of <prefix>ceil_div / <prefix>min /
 * <prefix>max with two arguments (n-ary min/max nest). Caller frees *out. */
kiln_err kiln_promote_c_expr(char **out, const char *expr, const char *prefix,
			     const char *(*map)(void *ctx, const char *name), void *ctx);

#endif
