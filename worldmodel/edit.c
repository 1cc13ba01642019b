/* The edit-script language: parse the LLM's JSON, validate every op against the tree as
 * the earlier ops left it, apply the valid ones in order and collect a one-line reason for
 * each rejected one. The script runs on a clone that replaces the tree only at the end, so
 * a malformed script or an allocation failure leaves the tree exactly as it was. */
#include "worldmodel/wm_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHY 256 /* bytes of a rejection reason */
#define REF_MAX 64

typedef struct ref_entry {
	const char *name; /* borrowed from the parsed script */
	int64_t id;       /* -1: declared by a rejected op */
} ref_entry;

typedef struct script_ctx {
	kiln_wm *wm;               /* the clone being edited */
	kiln_wm_edit_result *res;
	ref_entry refs[WM_MAX_OPS * 8];
	size_t nrefs;
	int new_left;              /* nodes the script may still create */
} script_ctx;

/* the fields an op may carry, with presence flags */
typedef struct fields {
	const char *title, *description, *rationale, *notes, *ref, *status;
	bool has_difficulty, has_score, has_speedup;
	int difficulty;
	double score, speedup;
} fields;

static const char *const insert_keys[] = {"op", "parent", "title", "description", "rationale",
	"difficulty", "score", "expected_speedup", "notes", "ref", NULL};
static const char *const update_keys[] = {"op", "id", "title", "description", "rationale",
	"difficulty", "score", "expected_speedup", "notes", "status", NULL};
static const char *const split_keys[] = {"op", "id", "into", NULL};
static const char *const child_keys[] = {"title", "description", "rationale", "difficulty",
	"score", "expected_speedup", "notes", "ref", NULL};
static const char *const delete_keys[] = {"op", "id", NULL};

static bool unknown_key(const cJSON *o, const char *const *allowed, char *why)
{
	const cJSON *it;
	cJSON_ArrayForEach(it, o) {
		bool ok = false;
		for (const char *const *a = allowed; *a && !ok; a++)
			ok = it->string && strcmp(it->string, *a) == 0;
		if (!ok) {
			snprintf(why, WHY, "unknown field \"%.40s\"", it->string ? it->string : "?");
			return true;
		}
	}
	return false;
}

static bool read_str(const cJSON *o, const char *key, const char **out, char *why)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v)
		return true;
	if (!cJSON_IsString(v)) {
		snprintf(why, WHY, "field \"%s\" must be a string", key);
		return false;
	}
	*out = v->valuestring;
	return true;
}

static bool read_num(const cJSON *o, const char *key, double *out, bool *has, char *why)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v)
		return true;
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) {
		snprintf(why, WHY, "field \"%s\" must be a number", key);
		return false;
	}
	*out = v->valuedouble;
	*has = true;
	return true;
}

/* Reads the node fields of an op (types only; ranges are checked by wm_spec_valid). */
static bool read_fields(const cJSON *o, fields *f, char *why)
{
	memset(f, 0, sizeof(*f));
	double d = 0;
	if (!read_str(o, "title", &f->title, why) || !read_str(o, "description", &f->description, why) ||
	    !read_str(o, "rationale", &f->rationale, why) || !read_str(o, "notes", &f->notes, why) ||
	    !read_str(o, "ref", &f->ref, why) || !read_str(o, "status", &f->status, why) ||
	    !read_num(o, "difficulty", &d, &f->has_difficulty, why) ||
	    !read_num(o, "score", &f->score, &f->has_score, why) ||
	    !read_num(o, "expected_speedup", &f->speedup, &f->has_speedup, why))
		return false;
	if (f->has_difficulty) {
		if (d != floor(d) || d < 1 || d > 5) {
			snprintf(why, WHY, "difficulty %g out of range 1-5 (an integer)", d);
			return false;
		}
		f->difficulty = (int)d;
	}
	if (f->has_speedup && !(f->speedup > 0)) {
		snprintf(why, WHY, "expected_speedup %g must be > 0", f->speedup);
		return false;
	}
	return true;
}

/* spec = base overridden by the fields present */
static void merge(kiln_wm_node_spec *s, const fields *f)
{
	if (f->title)
		s->title = f->title;
	if (f->description)
		s->description = f->description;
	if (f->rationale)
		s->rationale = f->rationale;
	if (f->notes)
		s->notes = f->notes;
	if (f->has_difficulty)
		s->difficulty = f->difficulty;
	if (f->has_score)
		s->score = f->score;
	if (f->has_speedup)
		s->expected_speedup = f->speedup;
}

static bool looks_numeric(const char *s)
{
	if (*s == '#')
		s++;
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static const ref_entry *ref_lookup(const script_ctx *c, const char *name)
{
	for (size_t i = 0; i < c->nrefs; i++)
		if (strcmp(c->refs[i].name, name) == 0)
			return &c->refs[i];
	return NULL;
}

/* A new ref must be a non-numeric name, unused in this script. */
static bool ref_ok(const script_ctx *c, const char *ref, char *why)
{
	if (!ref)
		return true;
	if (!ref[0] || strlen(ref) > REF_MAX || looks_numeric(ref)) {
		snprintf(why, WHY, "ref \"%.40s\" must be a name of 1-%d characters that is not a number",
			 ref, REF_MAX);
		return false;
	}
	if (ref_lookup(c, ref)) {
		snprintf(why, WHY, "ref \"%.40s\" is already used in this script", ref);
		return false;
	}
	return true;
}

static void ref_add(script_ctx *c, const char *ref, int64_t id)
{
	if (ref && ref[0] && c->nrefs < KILN_ARRAY_LEN(c->refs) && !ref_lookup(c, ref))
		c->refs[c->nrefs++] = (ref_entry){ref, id};
}

/* Explains a missing id: split and deleted nodes are gone for good. */
static void missing_node(const kiln_wm *wm, int64_t id, char *why)
{
	int n = snprintf(why, WHY, "no node #%lld", (long long)id);
	size_t k = 0;
	for (size_t i = 0; i < wm->n && n > 0 && n < WHY - 24; i++)
		if (wm->nodes[i].split_from == id)
			n += snprintf(why + n, WHY - (size_t)n, "%s#%lld", k++ ? ", " : " (it was split into ",
				      (long long)wm->nodes[i].id);
	if (k && n > 0 && n < WHY - 2)
		snprintf(why + n, WHY - (size_t)n, ")");
	else if (!k && id < wm->next_id && id > 0 && n > 0)
		snprintf(why + n, WHY - (size_t)n, " (it was deleted; ids are never reused)");
}

/* key's value: an integer id, "#7" / "7", or a ref declared earlier in the script. */
static bool resolve(const script_ctx *c, const cJSON *o, const char *key, int64_t *id, char *why)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!v) {
		snprintf(why, WHY, "missing \"%s\"", key);
		return false;
	}
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;
		if (d != floor(d) || d < 0 || d > 9007199254740992.0) {
			snprintf(why, WHY, "\"%s\" must be a node id or a ref", key);
			return false;
		}
		*id = (int64_t)d;
	} else if (cJSON_IsString(v)) {
		const char *s = v->valuestring;
		if (looks_numeric(s)) {
			const char *digits = s[0] == '#' ? s + 1 : s;
			if (strlen(digits) > 15) {
				snprintf(why, WHY, "no node %.40s", s);
				return false;
			}
			*id = strtoll(digits, NULL, 10);
		} else {
			const ref_entry *r = ref_lookup(c, s);
			if (!r) {
				snprintf(why, WHY, "unknown ref \"%.40s\" (a ref names a node inserted earlier "
					 "in the same script)", s);
				return false;
			}
			if (r->id < 0) {
				snprintf(why, WHY, "ref \"%.40s\" names an op that was rejected", s);
				return false;
			}
			*id = r->id;
		}
	} else {
		snprintf(why, WHY, "\"%s\" must be a node id or a ref", key);
		return false;
	}
	if (!wmi_find(c->wm, *id)) {
		missing_node(c->wm, *id, why);
		return false;
	}
	return true;
}

static bool need_new(const script_ctx *c, int k, char *why)
{
	if (k > c->new_left) {
		snprintf(why, WHY, "too many new nodes in one script (at most %d; %d left)",
			 c->new_left + (int)c->res->n_created, c->new_left);
		return false;
	}
	return true;
}

static kiln_err add_created(script_ctx *c, int64_t id)
{
	int64_t *p = kiln_realloc(c->res->created, (c->res->n_created + 1) * sizeof(*p));
	if (!p)
		return KILN_ENOMEM;
	c->res->created = p;
	p[c->res->n_created++] = id;
	c->new_left--;
	return KILN_OK;
}

/* ---- the four ops: each returns 1 applied, 0 rejected (why set), < 0 a hard error ---- */

static int op_insert(script_ctx *c, const cJSON *o, char *why)
{
	fields f;
	int64_t parent;
	if (unknown_key(o, insert_keys, why) || !resolve(c, o, "parent", &parent, why))
		return 0;
	const wm_node *p = wmi_find(c->wm, parent);
	if (p->status == KILN_WM_PRUNED) {
		snprintf(why, WHY, "parent #%lld is pruned", (long long)parent);
		return 0;
	}
	if (wmi_depth(c->wm, parent) + 1 > c->wm->opt.max_depth) {
		snprintf(why, WHY, "depth limit: a child of #%lld would be deeper than %d levels",
			 (long long)parent, c->wm->opt.max_depth);
		return 0;
	}
	if (!read_fields(o, &f, why))
		return 0;
	if (f.status) {
		snprintf(why, WHY, "unknown field \"status\" (a new node is always open)");
		return 0;
	}
	kiln_wm_node_spec s = KILN_WM_NODE_SPEC_INIT;
	merge(&s, &f);
	if (!wmi_spec_valid(&s, why, WHY) || !ref_ok(c, f.ref, why) || !need_new(c, 1, why))
		return 0;
	wm_node *n = wmi_append(c->wm, parent, &s);
	if (!n)
		return KILN_ENOMEM;
	int64_t id = n->id;
	ref_add(c, f.ref, id);
	return add_created(c, id) ? KILN_ENOMEM : 1;
}

static int op_update(script_ctx *c, const cJSON *o, char *why)
{
	fields f;
	int64_t id;
	if (unknown_key(o, update_keys, why) || !resolve(c, o, "id", &id, why))
		return 0;
	if (id == KILN_WM_ROOT) {
		snprintf(why, WHY, "the root (#0) cannot be edited");
		return 0;
	}
	if (!read_fields(o, &f, why))
		return 0;
	if (!f.title && !f.description && !f.rationale && !f.notes && !f.status &&
	    !f.has_difficulty && !f.has_score && !f.has_speedup) {
		snprintf(why, WHY, "nothing to update");
		return 0;
	}
	wm_node *n = wmi_find(c->wm, id);
	kiln_wm_node_spec s = {n->title, n->description, n->rationale, n->notes, n->difficulty,
			       n->score, n->expected_speedup};
	merge(&s, &f);
	if (!wmi_spec_valid(&s, why, WHY))
		return 0;
	kiln_wm_status to = n->status;
	if (f.status) {
		if (strcmp(f.status, "open") == 0) {
			if (n->status != KILN_WM_OPEN && n->status != KILN_WM_TOO_HARD &&
			    n->status != KILN_WM_PRUNED) {
				snprintf(why, WHY, "node #%lld is solved and cannot be reopened", (long long)id);
				return 0;
			}
			to = KILN_WM_OPEN;
		} else if (strcmp(f.status, "pruned") == 0) {
			if (n->status == KILN_WM_SOLVED) {
				snprintf(why, WHY, "node #%lld is solved; prune its children instead", (long long)id);
				return 0;
			}
			to = KILN_WM_PRUNED;
		} else {
			snprintf(why, WHY, "status \"%.20s\" cannot be set by an edit (only \"open\" or "
				 "\"pruned\"; kiln decides solved and too_hard)", f.status);
			return 0;
		}
	}
	/* copy every new string first, so a failed allocation changes nothing */
	char *t = NULL, *d = NULL, *r = NULL, *no = NULL;
	if (wmi_set_str(&t, s.title) || wmi_set_str(&d, s.description) || wmi_set_str(&r, s.rationale) ||
	    wmi_set_str(&no, s.notes)) {
		free(t), free(d), free(r), free(no);
		return KILN_ENOMEM;
	}
	free(n->title), free(n->description), free(n->rationale), free(n->notes);
	n->title = t, n->description = d, n->rationale = r, n->notes = no;
	n->difficulty = s.difficulty;
	n->score = s.score;
	n->expected_speedup = s.expected_speedup;
	n->status = to;
	wmi_touch(c->wm, n);
	return 1;
}

/* the refs of a rejected split's children resolve to "rejected", not to "unknown" */
static void poison_refs(script_ctx *c, const cJSON *into)
{
	const cJSON *ch;
	cJSON_ArrayForEach(ch, into) {
		const cJSON *r = cJSON_IsObject(ch) ? cJSON_GetObjectItemCaseSensitive(ch, "ref") : NULL;
		if (cJSON_IsString(r))
			ref_add(c, r->valuestring, -1);
	}
}

static int op_split(script_ctx *c, const cJSON *o, char *why)
{
	int64_t id;
	if (unknown_key(o, split_keys, why) || !resolve(c, o, "id", &id, why))
		return 0;
	const wm_node *n = wmi_find(c->wm, id);
	if (id == KILN_WM_ROOT) {
		snprintf(why, WHY, "the root (#0) cannot be split");
		return 0;
	}
	if (n->status != KILN_WM_OPEN && n->status != KILN_WM_TOO_HARD) {
		snprintf(why, WHY, "node #%lld is %s; only an open or too-hard leaf can be split",
			 (long long)id, kiln_wm_status_name(n->status));
		return 0;
	}
	size_t kids = wmi_child_count(c->wm, id);
	if (kids) {
		snprintf(why, WHY, "node #%lld has %zu children; only a leaf can be split", (long long)id, kids);
		return 0;
	}
	const cJSON *into = cJSON_GetObjectItemCaseSensitive(o, "into");
	int k = cJSON_IsArray(into) ? cJSON_GetArraySize(into) : -1;
	if (k < 2) {
		snprintf(why, WHY, "\"into\" must be an array of at least 2 new nodes");
		return 0;
	}
	if (k > 16) {
		snprintf(why, WHY, "too many new nodes in one script (a split into %d)", k);
		return 0;
	}
	kiln_wm_node_spec specs[16];
	const char *refs[16];
	int i = 0;
	const cJSON *ch;
	cJSON_ArrayForEach(ch, into) {
		char sub[WHY];
		fields f;
		bool ok = cJSON_IsObject(ch);
		if (!ok)
			snprintf(sub, WHY, "expected an object");
		ok = ok && !unknown_key(ch, child_keys, sub) && read_fields(ch, &f, sub);
		if (ok) {
			/* children inherit the estimates they do not restate */
			specs[i] = (kiln_wm_node_spec){NULL, NULL, NULL, NULL, n->difficulty, n->score,
						       n->expected_speedup};
			merge(&specs[i], &f);
			refs[i] = f.ref;
			ok = wmi_spec_valid(&specs[i], sub, WHY) && ref_ok(c, f.ref, sub);
			for (int j = 0; ok && j < i; j++)
				if (f.ref && refs[j] && strcmp(refs[j], f.ref) == 0) {
					snprintf(sub, WHY, "ref \"%.40s\" is used twice", f.ref);
					ok = false;
				}
		}
		if (!ok) {
			snprintf(why, WHY, "into[%d]: %.200s", i, sub);
			poison_refs(c, into);
			return 0;
		}
		i++;
	}
	if (!need_new(c, k, why)) {
		poison_refs(c, into);
		return 0;
	}
	int64_t parent = n->parent;
	wmi_remove(c->wm, id);
	for (int j = 0; j < k; j++) {
		wm_node *m = wmi_append(c->wm, parent, &specs[j]);
		if (!m)
			return KILN_ENOMEM;
		m->split_from = id;
		int64_t mid = m->id;
		ref_add(c, refs[j], mid);
		if (add_created(c, mid))
			return KILN_ENOMEM;
	}
	return 1;
}

static int op_delete(script_ctx *c, const cJSON *o, char *why)
{
	int64_t id;
	if (unknown_key(o, delete_keys, why) || !resolve(c, o, "id", &id, why))
		return 0;
	const wm_node *n = wmi_find(c->wm, id);
	if (id == KILN_WM_ROOT) {
		snprintf(why, WHY, "the root (#0) cannot be deleted");
		return 0;
	}
	size_t kids = wmi_child_count(c->wm, id);
	if (kids) {
		snprintf(why, WHY, "node #%lld has %zu children; only a leaf can be deleted", (long long)id, kids);
		return 0;
	}
	if (n->status == KILN_WM_SOLVED) {
		snprintf(why, WHY, "node #%lld is solved; a solved node is evidence and is never deleted",
			 (long long)id);
		return 0;
	}
	wmi_remove(c->wm, id);
	return 1;
}

/* "insert \"Tiled loads\" under #3", "delete #7": how the rejection names the op */
static char *describe(const cJSON *o, const char *op)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, strcmp(op, "insert") == 0 ? "parent" : "id");
	const cJSON *title = cJSON_GetObjectItemCaseSensitive(o, "title");
	char ids[64] = "";
	if (cJSON_IsNumber(id))
		snprintf(ids, sizeof(ids), "#%.0f", id->valuedouble);
	else if (cJSON_IsString(id))
		snprintf(ids, sizeof(ids), "%s%.40s", looks_numeric(id->valuestring) &&
			 id->valuestring[0] != '#' ? "#" : "", id->valuestring);
	if (strcmp(op, "insert") == 0)
		return kiln_asprintf("insert \"%.60s\"%s%s", cJSON_IsString(title) ? title->valuestring : "",
				     ids[0] ? " under " : "", ids);
	return kiln_asprintf("%.20s%s%s", op, ids[0] ? " " : "", ids);
}

static kiln_err reject(kiln_wm_edit_result *r, int index, const char *op, const char *why)
{
	kiln_wm_rejection *p = kiln_realloc(r->rejected, (r->n_rejected + 1) * sizeof(*p));
	if (!p)
		return KILN_ENOMEM;
	r->rejected = p;
	kiln_wm_rejection *x = &p[r->n_rejected];
	x->index = index;
	x->op = kiln_strdup(op);
	x->reason = kiln_strdup(why);
	r->n_rejected++; /* counted before the check so _free releases whatever was copied */
	if (!x->op || !x->reason)
		return KILN_ENOMEM;
	/* names and titles come from the LLM: keep each rejection on one line */
	for (char *s = x->op; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
	for (char *s = x->reason; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			*s = ' ';
	return KILN_OK;
}

static kiln_err run_op(script_ctx *c, const cJSON *o, int index)
{
	char why[WHY] = "";
	char *desc = NULL;
	int rc = 0;
	const cJSON *opv = cJSON_IsObject(o) ? cJSON_GetObjectItemCaseSensitive(o, "op") : NULL;
	const char *op = cJSON_IsString(opv) ? opv->valuestring : NULL;
	if (!cJSON_IsObject(o)) {
		snprintf(why, WHY, "expected an object");
	} else if (!op) {
		snprintf(why, WHY, "missing \"op\" (insert, update, split or delete)");
	} else if (strcmp(op, "insert") == 0) {
		rc = op_insert(c, o, why);
	} else if (strcmp(op, "update") == 0) {
		rc = op_update(c, o, why);
	} else if (strcmp(op, "split") == 0) {
		rc = op_split(c, o, why);
	} else if (strcmp(op, "delete") == 0) {
		rc = op_delete(c, o, why);
	} else {
		snprintf(why, WHY, "unknown op \"%.30s\" (known: insert, update, split, delete)", op);
	}
	if (rc < 0)
		return rc;
	if (rc == 1) {
		c->res->n_applied++;
		return KILN_OK;
	}
	/* a ref declared by a rejected insert must not silently resolve later */
	const cJSON *ref = op && strcmp(op, "insert") == 0 ? cJSON_GetObjectItemCaseSensitive(o, "ref") : NULL;
	if (cJSON_IsString(ref))
		ref_add(c, ref->valuestring, -1);
	desc = op ? describe(o, op) : kiln_asprintf("op %d", index);
	if (!desc)
		return KILN_ENOMEM;
	kiln_err e = reject(c->res, index, desc, why);
	free(desc);
	return e;
}

void kiln_wm_edit_result_free(kiln_wm_edit_result *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->n_rejected; i++) {
		free(r->rejected[i].op);
		free(r->rejected[i].reason);
	}
	free(r->rejected);
	free(r->created);
	free(r->reflection);
	free(r);
}

static kiln_err apply_with_cap(kiln_wm *wm, kiln_wm_edit_result **out, const char *json, size_t len,
			       int cap)
{
	static const char *const top_keys[] = {"ops", "reflection", NULL};
	cJSON *root = NULL;
	kiln_wm *clone = NULL;
	kiln_wm_edit_result *res = NULL;
	script_ctx *c = NULL;
	kiln_err e;
	*out = NULL;
	if (!json || len > WM_SCRIPT_MAX) {
		e = kiln_error_set(KILN_EINVAL, "edit script: larger than %u bytes", WM_SCRIPT_MAX);
		goto done;
	}
	if ((e = kiln_json_parse(&root, json, len, "edit script")))
		goto done;
	const cJSON *ops = NULL;
	const char *reflection = NULL;
	if (!cJSON_IsObject(root)) {
		e = kiln_error_set(KILN_EINVAL, "edit script: expected a JSON object with an \"ops\" array");
		goto done;
	}
	if ((e = kiln_json_only_keys(root, top_keys, "edit script")) ||
	    (e = kiln_json_array(&ops, root, "ops", "edit script")) ||
	    (e = kiln_json_opt_string(&reflection, root, "reflection", "edit script")))
		goto done;
	int nops = cJSON_GetArraySize(ops);
	if (nops > WM_MAX_OPS) {
		e = kiln_error_set(KILN_EINVAL, "edit script: %d ops; at most %d are allowed per script",
				   nops, WM_MAX_OPS);
		goto done;
	}
	e = KILN_ENOMEM;
	if (!(res = kiln_calloc(1, sizeof(*res))) || !(c = kiln_calloc(1, sizeof(*c))))
		goto done;
	if ((e = kiln_wm_clone(&clone, wm)))
		goto done;
	res->n_ops = (size_t)nops;
	if (reflection) {
		size_t rl = strlen(reflection);
		if (!(res->reflection = kiln_strndup(reflection, rl > WM_REFLECTION_MAX ? WM_REFLECTION_MAX : rl))) {
			e = KILN_ENOMEM;
			goto done;
		}
		if (rl > WM_REFLECTION_MAX) {
			char why[WHY];
			snprintf(why, WHY, "reflection truncated from %zu to %d bytes", rl, WM_REFLECTION_MAX);
			if ((e = reject(res, -1, "reflection", why)))
				goto done;
		}
	}
	c->wm = clone;
	c->res = res;
	c->new_left = cap;
	int i = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, ops) {
		if ((e = run_op(c, o, i++)))
			goto done;
	}
	if (res->n_applied > 0)
		clone->revision++;
	res->revision = clone->revision;
	wmi_swap(wm, clone);
	*out = res;
	res = NULL;
	e = KILN_OK;
done:
	if (e == KILN_ENOMEM && !kiln_error_last()[0])
		kiln_error_set(KILN_ENOMEM, "edit script: out of memory");
	kiln_wm_free(clone);
	free(c);
	kiln_wm_edit_result_free(res);
	cJSON_Delete(root);
	return e;
}

kiln_err kiln_wm_apply(kiln_wm *wm, kiln_wm_edit_result **out, const char *json, size_t len)
{
	return wmi_checked(wm, apply_with_cap(wm, out, json, len, wm->opt.max_new_per_script));
}

kiln_err kiln_wm_rejections_render(char **out, const kiln_wm_edit_result *r, size_t max_bytes)
{
	*out = NULL;
	if (!max_bytes)
		max_bytes = 4096;
	kiln_buf b;
	kiln_buf_init(&b, 0);
	kiln_err e = KILN_OK;
	size_t ops_rejected = 0;
	for (size_t i = 0; i < r->n_rejected; i++)
		ops_rejected += r->rejected[i].index >= 0;
	if (r->n_rejected)
		e = kiln_buf_printf(&b, "Your last edit script: %zu of %zu ops applied, %zu rejected "
				    "(fix and resend only these if still wanted):\n",
				    r->n_applied, r->n_ops, ops_rejected);
	for (size_t i = 0; i < r->n_rejected && !e; i++) {
		const kiln_wm_rejection *x = &r->rejected[i];
		char line[WHY + 160];
		if (x->index >= 0)
			snprintf(line, sizeof(line), "- op %d (%s): %s\n", x->index, x->op, x->reason);
		else
			snprintf(line, sizeof(line), "- %s: %s\n", x->op, x->reason);
		const char *more_fmt = "- ... and %zu more\n";
		if (b.len + strlen(line) + 32 > max_bytes) {
			e = kiln_buf_printf(&b, more_fmt, r->n_rejected - i);
			break;
		}
		e = kiln_buf_puts(&b, line);
	}
	if (e) {
		kiln_buf_free(&b);
		return e;
	}
	*out = kiln_buf_detach(&b);
	return KILN_OK;
}

kiln_err kiln_wm_rejections_to_json(char **out, const kiln_wm_edit_result *r)
{
	*out = NULL;
	cJSON *arr = cJSON_CreateArray();
	bool ok = arr != NULL;
	for (size_t i = 0; ok && i < r->n_rejected; i++) {
		cJSON *o = cJSON_CreateObject();
		ok = o && cJSON_AddItemToArray(arr, o);
		if (!ok) {
			cJSON_Delete(o);
			break;
		}
		ok = cJSON_AddNumberToObject(o, "index", r->rejected[i].index) &&
		     cJSON_AddStringToObject(o, "op", r->rejected[i].op) &&
		     cJSON_AddStringToObject(o, "reason", r->rejected[i].reason);
	}
	char *text = ok ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!text)
		return kiln_error_set(KILN_ENOMEM, "edit script: out of memory writing rejections");
	*out = text;
	return KILN_OK;
}

kiln_err kiln_wm_init_from_script(kiln_wm **out, kiln_wm_edit_result **result,
				  const char *title, const char *description,
				  const char *json, size_t len, const kiln_wm_options *opt)
{
	kiln_wm *wm = NULL;
	*out = NULL;
	*result = NULL;
	kiln_err e = kiln_wm_new(&wm, title, description, opt);
	if (e)
		return e;
	if ((e = apply_with_cap(wm, result, json, len, wm->opt.init_max_new))) {
		kiln_wm_free(wm);
		return kiln_error_wrap(e, "initial world model");
	}
	int families = 0;
	for (size_t i = 1; i < wm->n; i++)
		families += wm->nodes[i].parent == KILN_WM_ROOT && wm->nodes[i].status == KILN_WM_OPEN;
	int need = wm->opt.min_families;
	if (families < need) {
		kiln_wm_free(wm);
		return kiln_error_set(KILN_EINVAL, "initial world model: the edit script created %d "
				      "kernel families (open nodes under the root, \"parent\": 0); at "
				      "least %d distinct families are needed", families, need);
	}
	*out = wm;
	return wmi_checked(wm, KILN_OK);
}
