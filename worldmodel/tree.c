/* The world-model tree: life cycle, lookups, invariant checks, direct construction (the
 * tuner's families) and kiln-side evidence (attempts, solve, too hard, prune, notes).
 * Nodes live in a vector sorted by id; every change bumps the revision by exactly one and
 * stamps the nodes it touched with that revision. */
#include "worldmodel/wm_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *kiln_wm_status_name(kiln_wm_status s)
{
	switch (s) {
	case KILN_WM_OPEN: return "open";
	case KILN_WM_SOLVED: return "solved";
	case KILN_WM_TOO_HARD: return "too_hard";
	case KILN_WM_PRUNED: return "pruned";
	}
	return NULL;
}

void wmi_fill_options(kiln_wm_options *dst, const kiln_wm_options *src)
{
	kiln_wm_options def = KILN_WM_OPTIONS_INIT;
	*dst = src ? *src : def;
	if (dst->max_new_per_script <= 0)
		dst->max_new_per_script = def.max_new_per_script;
	if (dst->init_max_new <= 0)
		dst->init_max_new = def.init_max_new;
	if (dst->min_families <= 0)
		dst->min_families = def.min_families;
	if (dst->max_depth <= 0)
		dst->max_depth = def.max_depth;
	if (!(dst->tie_band >= 0) || !isfinite(dst->tie_band))
		dst->tie_band = def.tie_band;
}

kiln_err wmi_set_str(char **dst, const char *src)
{
	char *s = kiln_strdup(src ? src : "");
	if (!s)
		return KILN_ENOMEM;
	free(*dst);
	*dst = s;
	return KILN_OK;
}

void wmi_node_clear(wm_node *n)
{
	free(n->title);
	free(n->description);
	free(n->rationale);
	free(n->notes);
	memset(n, 0, sizeof(*n));
}

wm_node *wmi_find(const kiln_wm *wm, int64_t id)
{
	size_t lo = 0, hi = wm->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (wm->nodes[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < wm->n && wm->nodes[lo].id == id ? &wm->nodes[lo] : NULL;
}

int wmi_depth(const kiln_wm *wm, int64_t id)
{
	int d = 0;
	const wm_node *n = wmi_find(wm, id);
	/* parent ids strictly decrease, so this ends within n steps */
	while (n && n->id != KILN_WM_ROOT) {
		n = wmi_find(wm, n->parent);
		d++;
	}
	return n ? d : -1;
}

size_t wmi_child_count(const kiln_wm *wm, int64_t id)
{
	size_t c = 0;
	for (size_t i = 0; i < wm->n; i++)
		c += wm->nodes[i].parent == id && wm->nodes[i].id != KILN_WM_ROOT;
	return c;
}

void wmi_touch(kiln_wm *wm, wm_node *n)
{
	n->updated_rev = wm->revision + 1;
}

wm_node *wmi_append(kiln_wm *wm, int64_t parent, const kiln_wm_node_spec *s)
{
	if (wm->n == wm->cap) {
		size_t cap = wm->cap ? wm->cap * 2 : 16;
		wm_node *p = kiln_realloc(wm->nodes, cap * sizeof(*p));
		if (!p)
			return NULL;
		wm->nodes = p;
		wm->cap = cap;
	}
	wm_node n = {0};
	n.id = wm->next_id;
	n.parent = parent;
	if (wmi_set_str(&n.title, s->title) || wmi_set_str(&n.description, s->description) ||
	    wmi_set_str(&n.rationale, s->rationale) || wmi_set_str(&n.notes, s->notes)) {
		wmi_node_clear(&n);
		return NULL;
	}
	n.difficulty = s->difficulty;
	n.score = s->score;
	n.expected_speedup = s->expected_speedup;
	n.status = KILN_WM_OPEN;
	n.created_rev = n.updated_rev = wm->revision + 1;
	wm->nodes[wm->n++] = n; /* next_id exceeds every id, so order is kept */
	wm->next_id++;
	return &wm->nodes[wm->n - 1];
}

void wmi_remove(kiln_wm *wm, int64_t id)
{
	wm_node *n = wmi_find(wm, id);
	if (!n)
		return;
	size_t i = (size_t)(n - wm->nodes);
	wmi_node_clear(n);
	memmove(&wm->nodes[i], &wm->nodes[i + 1], (wm->n - i - 1) * sizeof(*n));
	wm->n--;
}

void wmi_swap(kiln_wm *a, kiln_wm *b)
{
	kiln_wm t = *a;
	*a = *b;
	*b = t;
}

bool wmi_spec_valid(const kiln_wm_node_spec *s, char *why, size_t n)
{
	if (!s->title || !s->title[0]) {
		snprintf(why, n, "missing title");
		return false;
	}
	if (strlen(s->title) > WM_TITLE_MAX) {
		snprintf(why, n, "title longer than %d bytes", WM_TITLE_MAX);
		return false;
	}
	const char *texts[] = {s->description, s->rationale, s->notes};
	const char *names[] = {"description", "rationale", "notes"};
	for (size_t i = 0; i < 3; i++)
		if (texts[i] && strlen(texts[i]) > WM_TEXT_MAX) {
			snprintf(why, n, "%s longer than %d bytes", names[i], WM_TEXT_MAX);
			return false;
		}
	if (s->difficulty < 1 || s->difficulty > 5) {
		snprintf(why, n, "difficulty %d out of range 1-5", s->difficulty);
		return false;
	}
	if (!(s->score >= 0 && s->score <= 1)) {
		snprintf(why, n, "score %g out of range [0,1]", s->score);
		return false;
	}
	if (!isfinite(s->expected_speedup) || s->expected_speedup < 0 ||
	    s->expected_speedup > 1e6) {
		snprintf(why, n, "expected_speedup %g must be a positive number", s->expected_speedup);
		return false;
	}
	return true;
}

/* ---------------- life cycle ---------------- */

kiln_err kiln_wm_new(kiln_wm **out, const char *title, const char *description,
		     const kiln_wm_options *opt)
{
	*out = NULL;
	if (!title || !title[0])
		return kiln_error_set(KILN_EINVAL, "world model: the root needs a title (the target's name)");
	if (strlen(title) > WM_TITLE_MAX || (description && strlen(description) > WM_TEXT_MAX))
		return kiln_error_set(KILN_EINVAL, "world model: the root's title or description is too long");
	kiln_wm *wm = kiln_calloc(1, sizeof(*wm));
	if (!wm)
		return KILN_ENOMEM;
	wmi_fill_options(&wm->opt, opt);
	kiln_wm_node_spec s = KILN_WM_NODE_SPEC_INIT;
	s.title = title;
	s.description = description;
	wm->next_id = KILN_WM_ROOT;
	wm_node *root = wmi_append(wm, -1, &s);
	if (!root) {
		kiln_wm_free(wm);
		return KILN_ENOMEM;
	}
	root->status = KILN_WM_SOLVED;
	root->created_rev = root->updated_rev = 0;
	*out = wm;
	return KILN_OK;
}

void kiln_wm_free(kiln_wm *wm)
{
	if (!wm)
		return;
	for (size_t i = 0; i < wm->n; i++)
		wmi_node_clear(&wm->nodes[i]);
	free(wm->nodes);
	free(wm);
}

kiln_err kiln_wm_clone(kiln_wm **out, const kiln_wm *wm)
{
	*out = NULL;
	kiln_wm *c = kiln_calloc(1, sizeof(*c));
	if (!c)
		return KILN_ENOMEM;
	*c = *wm;
	c->nodes = kiln_calloc(wm->cap ? wm->cap : 1, sizeof(wm_node));
	c->n = 0;
	if (!c->nodes) {
		free(c);
		return KILN_ENOMEM;
	}
	for (size_t i = 0; i < wm->n; i++) {
		wm_node *d = &c->nodes[i];
		const wm_node *s = &wm->nodes[i];
		*d = *s;
		d->title = d->description = d->rationale = d->notes = NULL;
		c->n = i + 1;
		if (wmi_set_str(&d->title, s->title) || wmi_set_str(&d->description, s->description) ||
		    wmi_set_str(&d->rationale, s->rationale) || wmi_set_str(&d->notes, s->notes)) {
			kiln_wm_free(c);
			return KILN_ENOMEM;
		}
	}
	*out = c;
	return KILN_OK;
}

kiln_err kiln_wm_set_options(kiln_wm *wm, const kiln_wm_options *opt)
{
	wmi_fill_options(&wm->opt, opt);
	return wmi_checked(wm, KILN_OK);
}

void kiln_wm_get_options(kiln_wm_options *out, const kiln_wm *wm)
{
	*out = wm->opt;
}

/* ---------------- reading ---------------- */

int64_t kiln_wm_revision(const kiln_wm *wm) { return wm->revision; }
size_t kiln_wm_count(const kiln_wm *wm) { return wm->n; }

static void view(kiln_wm_node *out, const kiln_wm *wm, const wm_node *n)
{
	out->id = n->id;
	out->parent = n->parent;
	out->depth = wmi_depth(wm, n->id);
	out->title = n->title;
	out->description = n->description;
	out->rationale = n->rationale;
	out->notes = n->notes;
	out->difficulty = n->difficulty;
	out->score = n->score;
	out->expected_speedup = n->expected_speedup;
	out->status = n->status;
	out->attempts = n->attempts;
	out->passed = n->passed;
	out->stale = n->stale;
	out->best_candidate = n->best_candidate;
	out->best_us = n->best_us;
	out->best_spread_us = n->best_spread_us;
	out->best_speedup = n->best_speedup;
	out->split_from = n->split_from;
	out->created_rev = n->created_rev;
	out->updated_rev = n->updated_rev;
}

kiln_err kiln_wm_node_at(kiln_wm_node *out, const kiln_wm *wm, size_t index)
{
	if (index >= wm->n)
		return kiln_error_set(KILN_ENOTFOUND, "world model: node index %zu past the end (%zu nodes)",
				      index, wm->n);
	view(out, wm, &wm->nodes[index]);
	return KILN_OK;
}

static kiln_err no_node(int64_t id)
{
	return kiln_error_set(KILN_ENOTFOUND, "world model: no node #%lld", (long long)id);
}

kiln_err kiln_wm_node_get(kiln_wm_node *out, const kiln_wm *wm, int64_t id)
{
	const wm_node *n = wmi_find(wm, id);
	if (!n)
		return no_node(id);
	view(out, wm, n);
	return KILN_OK;
}

kiln_err kiln_wm_children(int64_t **out, size_t *n, const kiln_wm *wm, int64_t id)
{
	*out = NULL;
	*n = 0;
	if (!wmi_find(wm, id))
		return no_node(id);
	size_t c = wmi_child_count(wm, id);
	if (!c)
		return KILN_OK;
	int64_t *ids = kiln_malloc(c * sizeof(*ids));
	if (!ids)
		return KILN_ENOMEM;
	for (size_t i = 0; i < wm->n; i++)
		if (wm->nodes[i].parent == id && wm->nodes[i].id != KILN_WM_ROOT)
			ids[(*n)++] = wm->nodes[i].id;
	*out = ids;
	return KILN_OK;
}

bool kiln_wm_is_frontier(const kiln_wm *wm, int64_t id)
{
	const wm_node *n = wmi_find(wm, id);
	if (!n || n->id == KILN_WM_ROOT || n->status != KILN_WM_OPEN)
		return false;
	const wm_node *p = wmi_find(wm, n->parent);
	return p && p->status == KILN_WM_SOLVED;
}

kiln_err kiln_wm_frontier(int64_t **out, size_t *n, const kiln_wm *wm)
{
	*out = NULL;
	*n = 0;
	size_t c = 0;
	for (size_t i = 0; i < wm->n; i++)
		c += kiln_wm_is_frontier(wm, wm->nodes[i].id);
	if (!c)
		return KILN_OK;
	int64_t *ids = kiln_malloc(c * sizeof(*ids));
	if (!ids)
		return KILN_ENOMEM;
	for (size_t i = 0; i < wm->n; i++)
		if (kiln_wm_is_frontier(wm, wm->nodes[i].id))
			ids[(*n)++] = wm->nodes[i].id;
	*out = ids;
	return KILN_OK;
}

int64_t kiln_wm_family_of(const kiln_wm *wm, int64_t id)
{
	const wm_node *n = wmi_find(wm, id);
	if (!n)
		return -1;
	if (n->id == KILN_WM_ROOT)
		return KILN_WM_ROOT;
	while (n && n->parent != KILN_WM_ROOT)
		n = wmi_find(wm, n->parent);
	return n ? n->id : -1;
}

kiln_err kiln_wm_path(char **out, const kiln_wm *wm, int64_t id)
{
	*out = NULL;
	int d = wmi_depth(wm, id);
	if (d < 0)
		return no_node(id);
	const wm_node **chain = kiln_calloc((size_t)d + 1, sizeof(*chain));
	if (!chain)
		return KILN_ENOMEM;
	const wm_node *n = wmi_find(wm, id);
	for (int i = d; i > 0; i--) {
		chain[i] = n;
		n = wmi_find(wm, n->parent);
	}
	kiln_buf b;
	kiln_buf_init(&b, 0);
	kiln_err e = KILN_OK;
	for (int i = 1; i <= d && !e; i++)
		e = kiln_buf_printf(&b, "%s#%lld %s", i > 1 ? " > " : "", (long long)chain[i]->id,
				    chain[i]->title);
	free(chain);
	if (e) {
		kiln_buf_free(&b);
		return e;
	}
	*out = kiln_buf_detach(&b);
	return KILN_OK;
}

static kiln_err corrupt(const char *fmt, long long id)
{
	char msg[160];
	snprintf(msg, sizeof(msg), fmt, id);
	return kiln_error_set(KILN_ECORRUPT, "world model: %s", msg);
}

kiln_err wmi_checked(const kiln_wm *wm, kiln_err e)
{
#ifndef NDEBUG
	if (kiln_wm_check(wm)) {
		fprintf(stderr, "kiln: world model invariant broken: %s\n", kiln_error_last());
		abort();
	}
#else
	(void)wm;
#endif
	return e;
}

kiln_err wmi_changed(kiln_wm *wm)
{
	wm->revision++;
	return wmi_checked(wm, KILN_OK);
}

kiln_err kiln_wm_check(const kiln_wm *wm)
{
	if (wm->n == 0 || wm->nodes[0].id != KILN_WM_ROOT || wm->nodes[0].parent != -1)
		return corrupt("the root (#%lld) is missing", KILN_WM_ROOT);
	if (wm->nodes[0].status != KILN_WM_SOLVED)
		return corrupt("the root (#%lld) must be solved", KILN_WM_ROOT);
	for (size_t i = 0; i < wm->n; i++) {
		const wm_node *n = &wm->nodes[i];
		long long id = (long long)n->id;
		if (i > 0 && n->id <= wm->nodes[i - 1].id)
			return corrupt("node #%lld: ids out of order or repeated", id);
		if (n->id >= wm->next_id)
			return corrupt("node #%lld: id not below next_id", id);
		if (!n->title || !n->title[0] || !n->description || !n->rationale || !n->notes)
			return corrupt("node #%lld: missing text field", id);
		if (i > 0) {
			if (n->parent < 0 || n->parent >= n->id || !wmi_find(wm, n->parent))
				return corrupt("node #%lld: parent missing (orphan)", id);
			if (n->status == KILN_WM_SOLVED && n->best_candidate <= 0)
				return corrupt("node #%lld: solved without a best candidate", id);
		}
		if (!kiln_wm_status_name(n->status))
			return corrupt("node #%lld: unknown status", id);
		if (n->difficulty < 1 || n->difficulty > 5 || !(n->score >= 0 && n->score <= 1) ||
		    !(n->expected_speedup >= 0) || !isfinite(n->expected_speedup))
			return corrupt("node #%lld: difficulty, score or expected speedup out of range", id);
		if (n->attempts < 0 || n->passed < 0 || n->passed > n->attempts || n->stale < 0 ||
		    n->stale > n->attempts)
			return corrupt("node #%lld: attempt counts inconsistent", id);
		if (n->best_candidate < 0 || !(n->best_us >= 0) || !(n->best_spread_us >= 0) ||
		    !(n->best_speedup >= 0) || !isfinite(n->best_us) || !isfinite(n->best_spread_us) ||
		    !isfinite(n->best_speedup) || (n->best_candidate > 0) != (n->best_us > 0))
			return corrupt("node #%lld: best candidate and time inconsistent", id);
		if (n->split_from < 0 || (n->split_from > 0 && n->split_from >= n->id))
			return corrupt("node #%lld: split_from is not an earlier id", id);
		if (n->created_rev < 0 || n->updated_rev < n->created_rev || n->updated_rev > wm->revision)
			return corrupt("node #%lld: revision stamps out of order", id);
	}
	return KILN_OK;
}

static bool str_eq(const char *a, const char *b) { return strcmp(a, b) == 0; }

bool kiln_wm_equal(const kiln_wm *a, const kiln_wm *b)
{
	if (a->n != b->n || a->next_id != b->next_id || a->revision != b->revision)
		return false;
	for (size_t i = 0; i < a->n; i++) {
		const wm_node *x = &a->nodes[i], *y = &b->nodes[i];
		if (x->id != y->id || x->parent != y->parent || !str_eq(x->title, y->title) ||
		    !str_eq(x->description, y->description) || !str_eq(x->rationale, y->rationale) ||
		    !str_eq(x->notes, y->notes) || x->difficulty != y->difficulty ||
		    x->score != y->score || x->expected_speedup != y->expected_speedup ||
		    x->status != y->status || x->attempts != y->attempts || x->passed != y->passed ||
		    x->stale != y->stale || x->best_candidate != y->best_candidate ||
		    x->best_us != y->best_us || x->best_spread_us != y->best_spread_us ||
		    x->best_speedup != y->best_speedup || x->split_from != y->split_from ||
		    x->created_rev != y->created_rev || x->updated_rev != y->updated_rev)
			return false;
	}
	return true;
}

/* ---------------- direct construction ---------------- */

kiln_err kiln_wm_add_node(kiln_wm *wm, int64_t *out_id, int64_t parent, const kiln_wm_node_spec *spec)
{
	char why[160];
	const wm_node *p = wmi_find(wm, parent);
	if (!p)
		return kiln_error_set(KILN_ENOTFOUND, "world model: adding a node: no parent #%lld",
				      (long long)parent);
	if (p->status == KILN_WM_PRUNED)
		return kiln_error_set(KILN_EINVAL, "world model: adding a node: parent #%lld is pruned",
				      (long long)parent);
	if (wmi_depth(wm, parent) + 1 > wm->opt.max_depth)
		return kiln_error_set(KILN_EINVAL, "world model: adding a node under #%lld: deeper than %d levels",
				      (long long)parent, wm->opt.max_depth);
	if (!wmi_spec_valid(spec, why, sizeof(why)))
		return kiln_error_set(KILN_EINVAL, "world model: adding a node: %s", why);
	wm_node *n = wmi_append(wm, parent, spec);
	if (!n)
		return KILN_ENOMEM;
	if (out_id)
		*out_id = n->id;
	return wmi_changed(wm);
}

kiln_err kiln_wm_add_family(kiln_wm *wm, int64_t *out_id, const char *title, const char *description)
{
	kiln_wm_node_spec s = KILN_WM_NODE_SPEC_INIT;
	s.title = title;
	s.description = description;
	return kiln_wm_add_node(wm, out_id, KILN_WM_ROOT, &s);
}

/* ---------------- kiln-side evidence ---------------- */

static kiln_err get_mut(wm_node **out, kiln_wm *wm, int64_t id, const char *what)
{
	*out = wmi_find(wm, id);
	if (!*out)
		return kiln_error_set(KILN_ENOTFOUND, "world model: %s: no node #%lld", what, (long long)id);
	return KILN_OK;
}

static double speedup_of(const kiln_wm *wm, double us)
{
	const wm_node *root = &wm->nodes[0];
	return root->best_us > 0 && us > 0 ? root->best_us / us : 0;
}

kiln_err kiln_wm_record_attempt(kiln_wm *wm, bool *improved, int64_t id, const kiln_wm_attempt *a)
{
	wm_node *n;
	kiln_err e = get_mut(&n, wm, id, "recording an attempt");
	if (improved)
		*improved = false;
	if (e)
		return e;
	if (a->passed && (a->candidate_id <= 0 || !(a->time_us > 0) || !isfinite(a->time_us) ||
			  !(a->spread_us >= 0) || !isfinite(a->spread_us)))
		return kiln_error_set(KILN_EINVAL, "world model: attempt on #%lld: a passing attempt needs a "
				      "candidate id > 0, a time > 0 and a spread >= 0", (long long)id);
	bool better = a->passed && kiln_wm_is_new_best(n->best_us, n->best_spread_us, a->time_us,
							a->spread_us, a->modeled, wm->opt.tie_band);
	n->attempts++;
	n->passed += a->passed;
	if (better) {
		n->best_candidate = a->candidate_id;
		n->best_us = a->time_us;
		n->best_spread_us = a->modeled ? 0 : a->spread_us;
		n->stale = 0;
		if (n->id == KILN_WM_ROOT) {
			/* a new baseline: every recorded speedup is relative to it */
			for (size_t i = 0; i < wm->n; i++)
				wm->nodes[i].best_speedup = speedup_of(wm, wm->nodes[i].best_us);
		} else {
			n->best_speedup = speedup_of(wm, n->best_us);
		}
	} else {
		n->stale++;
	}
	wmi_touch(wm, n);
	if (improved)
		*improved = better;
	return wmi_changed(wm);
}

kiln_err kiln_wm_solve(kiln_wm *wm, int64_t id, int64_t candidate_id, double time_us)
{
	wm_node *n;
	kiln_err e = get_mut(&n, wm, id, "solving a node");
	if (e)
		return e;
	if (id == KILN_WM_ROOT)
		return kiln_error_set(KILN_EINVAL, "world model: the root is solved by recording the seed "
				      "as an attempt on it");
	if (n->status != KILN_WM_OPEN && n->status != KILN_WM_TOO_HARD)
		return kiln_error_set(KILN_EINVAL, "world model: node #%lld is %s; only an open or too-hard "
				      "node can be solved", (long long)id, kiln_wm_status_name(n->status));
	if (candidate_id < 0 || (candidate_id > 0 && (!(time_us > 0) || !isfinite(time_us))))
		return kiln_error_set(KILN_EINVAL, "world model: solving #%lld: candidate %lld needs a time > 0",
				      (long long)id, (long long)candidate_id);
	if (candidate_id == 0 && n->best_candidate <= 0)
		return kiln_error_set(KILN_EINVAL, "world model: solving #%lld: no passing attempt recorded "
				      "and no candidate given", (long long)id);
	if (candidate_id > 0 && candidate_id != n->best_candidate) {
		n->best_candidate = candidate_id;
		n->best_us = time_us;
		n->best_spread_us = 0;
		n->best_speedup = speedup_of(wm, time_us);
	}
	n->status = KILN_WM_SOLVED;
	wmi_touch(wm, n);
	return wmi_changed(wm);
}

static kiln_err set_status(kiln_wm *wm, int64_t id, kiln_wm_status to, const char *what)
{
	wm_node *n;
	kiln_err e = get_mut(&n, wm, id, what);
	if (e)
		return e;
	if (id == KILN_WM_ROOT)
		return kiln_error_set(KILN_EINVAL, "world model: %s: the root cannot change status", what);
	if (to == KILN_WM_TOO_HARD && n->status != KILN_WM_OPEN)
		return kiln_error_set(KILN_EINVAL, "world model: %s: node #%lld is %s, not open", what,
				      (long long)id, kiln_wm_status_name(n->status));
	n->status = to;
	wmi_touch(wm, n);
	return wmi_changed(wm);
}

kiln_err kiln_wm_mark_too_hard(kiln_wm *wm, int64_t id)
{
	return set_status(wm, id, KILN_WM_TOO_HARD, "marking a node too hard");
}

kiln_err kiln_wm_prune(kiln_wm *wm, int64_t id)
{
	return set_status(wm, id, KILN_WM_PRUNED, "pruning a node");
}

kiln_err kiln_wm_set_notes(kiln_wm *wm, int64_t id, const char *notes)
{
	wm_node *n;
	kiln_err e = get_mut(&n, wm, id, "setting notes");
	if (e)
		return e;
	if (notes && strlen(notes) > WM_TEXT_MAX)
		return kiln_error_set(KILN_EINVAL, "world model: notes for #%lld longer than %d bytes",
				      (long long)id, WM_TEXT_MAX);
	if ((e = wmi_set_str(&n->notes, notes)))
		return e;
	wmi_touch(wm, n);
	return wmi_changed(wm);
}
