/* worldmodel internals shared by its .c files: the node record and the tree (a vector of
 * nodes kept sorted by id, so lookups are binary searches and iteration is in id order).
 * Every string field is an owned heap string, never NULL. Helpers shared between the
 * files are named wmi_* (internal to this folder, never declared in worldmodel.h). */
#ifndef KILN_WM_INT_H
#define KILN_WM_INT_H

#include "worldmodel/worldmodel.h"

#define WM_TITLE_MAX 200  /* bytes */
#define WM_TEXT_MAX 4000  /* description, rationale, notes (bytes) */
#define WM_MAX_OPS 64     /* ops per script */
#define WM_SCRIPT_MAX (256u << 10)
#define WM_REFLECTION_MAX 8000

typedef struct wm_node {
	int64_t id, parent;
	char *title, *description, *rationale, *notes;
	int difficulty;
	double score, expected_speedup;
	kiln_wm_status status;
	int64_t attempts, passed, stale;
	int64_t best_candidate;
	double best_us, best_spread_us, best_speedup;
	int64_t split_from;
	int64_t created_rev, updated_rev;
} wm_node;

struct kiln_wm {
	wm_node *nodes; /* sorted by id; nodes[0] is the root */
	size_t n, cap;
	int64_t next_id; /* the id the next new node gets; ids are never reused */
	int64_t revision;
	kiln_wm_options opt;
};

wm_node *wmi_find(const kiln_wm *wm, int64_t id);
int wmi_depth(const kiln_wm *wm, int64_t id);           /* -1 when unknown */
size_t wmi_child_count(const kiln_wm *wm, int64_t id);
/* Appends a node with the next id (strings copied; NULL = ""); returns it or NULL on ENOMEM. */
wm_node *wmi_append(kiln_wm *wm, int64_t parent, const kiln_wm_node_spec *s);
/* Removes one node (its children must be gone or re-parented first). */
void wmi_remove(kiln_wm *wm, int64_t id);
void wmi_node_clear(wm_node *n);
kiln_err wmi_set_str(char **dst, const char *src);
void wmi_touch(kiln_wm *wm, wm_node *n); /* updated_rev = the revision being built */
/* Validates a spec as an insert would; on failure writes a one-line reason into why. */
bool wmi_spec_valid(const kiln_wm_node_spec *s, char *why, size_t n);
void wmi_fill_options(kiln_wm_options *dst, const kiln_wm_options *src);
/* Swaps the contents of two trees (used to commit a script applied to a clone). */
void wmi_swap(kiln_wm *a, kiln_wm *b);
/* Ends a change: the revision grows and, in debug builds, the invariants are asserted
 * (kiln_wm_check; a broken one aborts with its reason, as SQLite asserts its btree). */
kiln_err wmi_changed(kiln_wm *wm);
/* Returns e after asserting the invariants in debug builds. */
kiln_err wmi_checked(const kiln_wm *wm, kiln_err e);

#endif
