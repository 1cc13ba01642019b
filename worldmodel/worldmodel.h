/* worldmodel: the K-Search world model — a tree of optimization hypotheses the LLM keeps
 * revising through a JSON edit script, plus kiln's own evidence (attempts, best candidates),
 * kiln's selection of the next action, rendering to prompt text and lossless JSON I/O.
 * Invariants: node ids are unique, never reused and larger than their parent's id; every
 * node but the root (id 0) has an existing parent; a solved node (root aside) has a best
 * candidate. Functions that change a tree take it first; pure producers take `out` first. */
#ifndef KILN_WORLDMODEL_H
#define KILN_WORLDMODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

typedef struct kiln_wm kiln_wm;

#define KILN_WM_ROOT 0 /* the root's id; it stands for the target and its seed kernel */

typedef enum kiln_wm_status {
	KILN_WM_OPEN = 0,  /* an action with no solution yet */
	KILN_WM_SOLVED,    /* closed with a best candidate (the root is always "solved") */
	KILN_WM_TOO_HARD,  /* attempts never produced a passing kernel; the LLM may reopen */
	KILN_WM_PRUNED,    /* abandoned; its subtree is out of the search */
} kiln_wm_status;
/* "open", "solved", "too_hard", "pruned"; NULL for an unknown value. */
const char *kiln_wm_status_name(kiln_wm_status s);

/* A read-only view of one node. Strings are borrowed from the tree and live until the
 * next change to it. */
typedef struct kiln_wm_node {
	int64_t id;
	int64_t parent;           /* -1 for the root */
	int depth;                /* root 0, families 1, actions 2+ */
	const char *title;        /* never NULL */
	const char *description;  /* "" when none */
	const char *rationale;    /* "" when none */
	const char *notes;        /* current belief, performance gap; "" when none */
	int difficulty;           /* 1 (easy) .. 5 (hard) */
	double score;             /* 0..1: the LLM's estimate of the action's value */
	double expected_speedup;  /* the LLM's guess (x over the parent); 0 = not given */
	kiln_wm_status status;
	int64_t attempts;         /* candidates evaluated for this node */
	int64_t passed;           /* of which passed verification */
	int64_t stale;            /* attempts since the node's best last improved */
	int64_t best_candidate;   /* archive candidate id; 0 = none */
	double best_us;           /* its time (us); 0 = none */
	double best_spread_us;    /* its timing spread (us); 0 = none or modeled */
	double best_speedup;      /* over the seed (root's best); 0 = unknown */
	int64_t split_from;       /* id of the node a split replaced; 0 = none */
	int64_t created_rev;      /* tree revision that created the node */
	int64_t updated_rev;      /* tree revision that last changed it */
} kiln_wm_node;

/* Limits applied to edit scripts (see docs/worldmodel.md). */
typedef struct kiln_wm_options {
	int max_new_per_script; /* new nodes (inserts + split children) per script */
	int init_max_new;       /* the same for the initial script */
	int min_families;       /* families the initial script must create */
	int max_depth;          /* deepest node allowed (families are depth 1) */
	double tie_band;        /* modeled timings: relative margin for a new best */
} kiln_wm_options;
#define KILN_WM_TIE_BAND_DEFAULT 0.01
#define KILN_WM_OPTIONS_INIT {4, 8, 3, 8, KILN_WM_TIE_BAND_DEFAULT}

/* ---- life cycle ---- */
/* A tree with only its root. title: the target's name; description: its summary (may be
 * NULL). opt NULL = defaults. Caller owns *out. */
kiln_err kiln_wm_new(kiln_wm **out, const char *title, const char *description,
		     const kiln_wm_options *opt);
void kiln_wm_free(kiln_wm *wm);
/* A deep copy (caller owns *out). */
kiln_err kiln_wm_clone(kiln_wm **out, const kiln_wm *wm);
kiln_err kiln_wm_set_options(kiln_wm *wm, const kiln_wm_options *opt);
void kiln_wm_get_options(kiln_wm_options *out, const kiln_wm *wm);

/* ---- reading ---- */
int64_t kiln_wm_revision(const kiln_wm *wm); /* 0 for a fresh tree; +1 per change */
size_t kiln_wm_count(const kiln_wm *wm);     /* nodes, root included */
/* The index-th node in id order (index 0 is the root). KILN_ENOTFOUND past the end. */
kiln_err kiln_wm_node_at(kiln_wm_node *out, const kiln_wm *wm, size_t index);
/* KILN_ENOTFOUND (with a message naming the id) when no such node. */
kiln_err kiln_wm_node_get(kiln_wm_node *out, const kiln_wm *wm, int64_t id);
/* Ids of the node's children in id order (caller frees *out; NULL when none). */
kiln_err kiln_wm_children(int64_t **out, size_t *n, const kiln_wm *wm, int64_t id);
/* Open nodes whose parent is solved (the root counts as solved), in id order. */
kiln_err kiln_wm_frontier(int64_t **out, size_t *n, const kiln_wm *wm);
bool kiln_wm_is_frontier(const kiln_wm *wm, int64_t id);
/* The depth-1 ancestor of a node (itself for a family); 0 for the root; -1 unknown. */
int64_t kiln_wm_family_of(const kiln_wm *wm, int64_t id);
/* "#1 Vectorized loads > #4 Unroll by 4" (root excluded); caller frees *out. */
kiln_err kiln_wm_path(char **out, const kiln_wm *wm, int64_t id);
/* Checks every invariant; KILN_ECORRUPT naming the first broken one. */
kiln_err kiln_wm_check(const kiln_wm *wm);
/* Same nodes, fields, revision and next id (options are not compared). */
bool kiln_wm_equal(const kiln_wm *a, const kiln_wm *b);

/* ---- the LLM's edit script ----
 * {"ops": [{"op":"insert","parent":ID|"ref",...}, {"op":"update","id":ID,...},
 *          {"op":"split","id":ID,"into":[{...},{...}]}, {"op":"delete","id":ID}],
 *  "reflection": "..."}  — the full language is in docs/worldmodel.md. */
typedef struct kiln_wm_rejection {
	int index;    /* position in "ops" (0-based); -1 for the script as a whole */
	char *op;     /* owned; what it was, e.g. "delete #7" */
	char *reason; /* owned; one line */
} kiln_wm_rejection;

typedef struct kiln_wm_edit_result {
	size_t n_ops;                /* ops in the script */
	size_t n_applied;
	kiln_wm_rejection *rejected; /* owned; n_rejected entries, in op order */
	size_t n_rejected;
	int64_t *created;            /* owned; ids of new nodes in creation order */
	size_t n_created;
	char *reflection;            /* owned; NULL when the script had none */
	int64_t revision;            /* the tree's revision after the script */
} kiln_wm_edit_result;

/* Validates each op against the tree as left by the ops before it and applies the valid
 * ones in order; rejected ops are listed in *out with a reason. The revision grows by one
 * when at least one op was applied. A script that is not a JSON object with an "ops"
 * array (or has more than 64 ops, or unknown top-level fields) is KILN_EINVAL and leaves
 * the tree unchanged; so does running out of memory. Caller owns *out (also on success
 * with rejections; NULL on error). */
kiln_err kiln_wm_apply(kiln_wm *wm, kiln_wm_edit_result **out, const char *json, size_t len);
void kiln_wm_edit_result_free(kiln_wm_edit_result *r);
/* The rejected ops as text for the next prompt, at most max_bytes (0 = 4096); "" when
 * nothing was rejected. Caller frees *out. */
kiln_err kiln_wm_rejections_render(char **out, const kiln_wm_edit_result *r, size_t max_bytes);

/* The rejections as a JSON array for history.db (wm_revisions.rejected):
 * [{"index":2,"op":"delete #7","reason":"..."}]; "[]" when none. Caller frees *out. */
kiln_err kiln_wm_rejections_to_json(char **out, const kiln_wm_edit_result *r);

/* The first LLM reply: builds a tree from an edit script that must create at least
 * opt->min_families families under the root (0 = 3), with opt->init_max_new as the cap.
 * On success caller owns *out and *result. Too few families is KILN_EINVAL with a message
 * for the LLM; *result is then still set (caller frees) so rejections can be reported. */
kiln_err kiln_wm_init_from_script(kiln_wm **out, kiln_wm_edit_result **result,
				  const char *title, const char *description,
				  const char *json, size_t len, const kiln_wm_options *opt);

/* ---- direct construction (the no-LLM tuner, tests) ---- */
typedef struct kiln_wm_node_spec {
	const char *title;        /* required */
	const char *description;  /* NULL = "" */
	const char *rationale;    /* NULL = "" */
	const char *notes;        /* NULL = "" */
	int difficulty;           /* 1..5 */
	double score;             /* 0..1 */
	double expected_speedup;  /* 0 = not given */
} kiln_wm_node_spec;
#define KILN_WM_NODE_SPEC_INIT {NULL, NULL, NULL, NULL, 3, 0.5, 0}
/* Adds an open node under parent with the same checks as an insert op, except the
 * per-script cap. *out_id: the new id (may be NULL). */
kiln_err kiln_wm_add_node(kiln_wm *wm, int64_t *out_id, int64_t parent, const kiln_wm_node_spec *spec);
/* A family: an open node under the root, e.g. one per knob region for the tuner. */
kiln_err kiln_wm_add_family(kiln_wm *wm, int64_t *out_id, const char *title, const char *description);

/* ---- kiln-side evidence and status changes (each one is a new revision) ---- */
typedef struct kiln_wm_attempt {
	bool passed;          /* verification verdict */
	int64_t candidate_id; /* archive id; > 0 when passed */
	double time_us;       /* passed only: median time (measured) or modeled time */
	double spread_us;     /* passed only: timing spread (measured); 0 for modeled */
	bool modeled;         /* time from the cost model (tie band) vs measured (spread) */
} kiln_wm_attempt;
/* Counts an attempt on a node; a passing one becomes the node's best when it beats the old
 * best by the noise margin (kiln_wm_is_new_best). On the root it records the seed, whose
 * time is the baseline for speedups. *improved (may be NULL): the node's best moved. */
kiln_err kiln_wm_record_attempt(kiln_wm *wm, bool *improved, int64_t id, const kiln_wm_attempt *a);
/* Closes an open (or too-hard) node as solved with its best candidate: candidate_id > 0
 * sets it with its time; 0 uses the best recorded by kiln_wm_record_attempt (an error if
 * there is none). */
kiln_err kiln_wm_solve(kiln_wm *wm, int64_t id, int64_t candidate_id, double time_us);
/* An open node whose attempts never passed: out of the frontier until the LLM reopens it. */
kiln_err kiln_wm_mark_too_hard(kiln_wm *wm, int64_t id);
/* Any node but the root; its subtree leaves the search. */
kiln_err kiln_wm_prune(kiln_wm *wm, int64_t id);
/* Replaces a node's notes (kiln's evidence: performance gap, counters). */
kiln_err kiln_wm_set_notes(kiln_wm *wm, int64_t id, const char *notes);

/* ---- selection: kiln's choice of the next frontier node ----
 * total = score + c_explore*sqrt(ln(N+1)/(n+1)) + c_family*sqrt(ln(N+1)/(F+1))
 *         - stale_penalty*stale
 * N: attempts over the tree (root aside), n: the node's attempts, F: its family's,
 * stale: the node's attempts since its best last improved. Ties (within 1e-12) are broken
 * by a hash of (seed, id), so a seed fixes the order. Actions in flight (a parallel search)
 * count as attempts of their node and family (and of N), so the exploration term moves
 * away from them before their results are in; kiln_wm_select never picks one. */
typedef struct kiln_wm_select_options {
	double c_explore;
	double c_family;
	double stale_penalty; /* per stale attempt */
	uint64_t seed;
	const int64_t *pending; /* node ids of actions in flight (may repeat); NULL = none */
	size_t npending;
} kiln_wm_select_options;
#define KILN_WM_SELECT_OPTIONS_INIT {0.2, 0.1, 0.05, 0, NULL, 0}

typedef struct kiln_wm_choice {
	int64_t id;
	int64_t family;           /* depth-1 ancestor */
	double score;             /* the LLM's score */
	double explore;           /* UCB term for the node */
	double family_bonus;      /* UCB term for its family */
	double penalty;           /* stale attempts */
	double total;
	int64_t attempts, family_attempts, total_attempts, stale; /* in-flight ones included */
	int64_t pending;          /* actions in flight on this node */
} kiln_wm_choice;
/* Every frontier node, best first (caller frees *out; *n may be 0). opt NULL = defaults. */
kiln_err kiln_wm_rank(kiln_wm_choice **out, size_t *n, const kiln_wm *wm,
		      const kiln_wm_select_options *opt);
/* The best frontier node not in flight; KILN_ENOTFOUND when the frontier is empty or every
 * frontier node is in flight (the message says which). */
kiln_err kiln_wm_select(kiln_wm_choice *out, const kiln_wm *wm, const kiln_wm_select_options *opt);
/* "#4: score 0.60 + explore 0.25 + family 0.08 - stale 0.10 = 0.83 (attempts: node 2,
 * family #1 3, all 9; 2 since its last improvement)"; caller frees *out. */
kiln_err kiln_wm_choice_explain(char **out, const kiln_wm_choice *c);

/* The noise margin: true when new beats old by more than the timing spread (measured:
 * old - new > max(old_spread, new_spread)) or the tie band (modeled: old - new >
 * tie_band*old). No old best (old_us <= 0) makes any positive new time a new best;
 * non-finite or non-positive new times never are. */
bool kiln_wm_is_new_best(double old_us, double old_spread_us, double new_us, double new_spread_us,
			 bool modeled, double tie_band);

/* ---- rendering to prompt text ---- */
typedef struct kiln_wm_render_options {
	size_t max_bytes;     /* hard cap on the text (0 = 6000) */
	int max_depth;        /* deeper nodes are summarised as a count (0 = 6) */
	bool show_pruned;     /* false: a pruned subtree is one line with its size */
	int64_t highlight;    /* a node to mark as chosen; -1 = none */
} kiln_wm_render_options;
#define KILN_WM_RENDER_OPTIONS_INIT {0, 0, false, -1}
/* A compact indented tree: id, status, score, difficulty, attempts, best speedup, notes;
 * frontier nodes are marked '>' and listed first. Caller frees *out. */
kiln_err kiln_wm_render(char **out, const kiln_wm *wm, const kiln_wm_render_options *opt);

/* ---- JSON I/O (what history.db stores per revision) ---- */
/* The whole tree; from_json(to_json(t)) is kiln_wm_equal to t. Caller frees *out. */
kiln_err kiln_wm_to_json(char **out, const kiln_wm *wm);
/* Strict: any invariant broken or field out of range is KILN_EINVAL naming the field.
 * opt NULL = defaults. Caller owns *out. */
kiln_err kiln_wm_from_json(kiln_wm **out, const char *json, size_t len, const kiln_wm_options *opt);

#endif
