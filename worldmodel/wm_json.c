/* The whole tree as JSON and back: what history.db stores per revision. Every field is
 * written (doubles by cJSON, which prints 17 digits when 15 do not round-trip), so
 * from_json(to_json(t)) equals t; reading is strict and re-checks every invariant. */
#include "worldmodel/wm_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WM_JSON_VERSION 1

static const char *const node_keys[] = {"id", "parent", "title", "description", "rationale",
	"notes", "difficulty", "score", "expected_speedup", "status", "attempts", "passed", "stale",
	"best_candidate", "best_us", "best_spread_us", "best_speedup", "split_from", "created_rev",
	"updated_rev", NULL};
static const char *const top_keys[] = {"version", "revision", "next_id", "nodes", NULL};

/* cJSON's own printer treats nearly-equal as equal (0.1+0.2 prints as 0.3), so doubles are
 * written as raw text with the fewest digits that strtod reads back exactly. */
static cJSON *add_num(cJSON *o, const char *key, double v)
{
	char text[40];
	for (int digits = 15; digits <= 17; digits++) {
		snprintf(text, sizeof(text), "%.*g", digits, v);
		if (strtod(text, NULL) == v)
			break;
	}
	return cJSON_AddRawToObject(o, key, text);
}

kiln_err kiln_wm_to_json(char **out, const kiln_wm *wm)
{
	*out = NULL;
	cJSON *root = cJSON_CreateObject(), *nodes = NULL;
	bool ok = root && cJSON_AddNumberToObject(root, "version", WM_JSON_VERSION) &&
		  cJSON_AddNumberToObject(root, "revision", (double)wm->revision) &&
		  cJSON_AddNumberToObject(root, "next_id", (double)wm->next_id) &&
		  (nodes = cJSON_AddArrayToObject(root, "nodes"));
	for (size_t i = 0; ok && i < wm->n; i++) {
		const wm_node *n = &wm->nodes[i];
		cJSON *o = cJSON_CreateObject();
		ok = o && cJSON_AddItemToArray(nodes, o);
		if (!ok) {
			cJSON_Delete(o);
			break;
		}
		ok = cJSON_AddNumberToObject(o, "id", (double)n->id) &&
		     cJSON_AddNumberToObject(o, "parent", (double)n->parent) &&
		     cJSON_AddStringToObject(o, "title", n->title) &&
		     cJSON_AddStringToObject(o, "description", n->description) &&
		     cJSON_AddStringToObject(o, "rationale", n->rationale) &&
		     cJSON_AddStringToObject(o, "notes", n->notes) &&
		     cJSON_AddNumberToObject(o, "difficulty", n->difficulty) &&
		     add_num(o, "score", n->score) &&
		     add_num(o, "expected_speedup", n->expected_speedup) &&
		     cJSON_AddStringToObject(o, "status", kiln_wm_status_name(n->status)) &&
		     cJSON_AddNumberToObject(o, "attempts", (double)n->attempts) &&
		     cJSON_AddNumberToObject(o, "passed", (double)n->passed) &&
		     cJSON_AddNumberToObject(o, "stale", (double)n->stale) &&
		     cJSON_AddNumberToObject(o, "best_candidate", (double)n->best_candidate) &&
		     add_num(o, "best_us", n->best_us) &&
		     add_num(o, "best_spread_us", n->best_spread_us) &&
		     add_num(o, "best_speedup", n->best_speedup) &&
		     cJSON_AddNumberToObject(o, "split_from", (double)n->split_from) &&
		     cJSON_AddNumberToObject(o, "created_rev", (double)n->created_rev) &&
		     cJSON_AddNumberToObject(o, "updated_rev", (double)n->updated_rev);
	}
	char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
	cJSON_Delete(root);
	if (!text)
		return kiln_error_set(KILN_ENOMEM, "world model: out of memory writing JSON");
	/* cJSON allocates with malloc, as kiln does, so the caller's free() matches */
	*out = text;
	return KILN_OK;
}

static kiln_err read_text(char **dst, const cJSON *o, const char *key, const char *where, size_t max)
{
	const char *s;
	kiln_err e = kiln_json_string(&s, o, key, where);
	if (e)
		return e;
	if (strlen(s) > max)
		return kiln_error_set(KILN_EINVAL, "%s: field \"%s\": longer than %zu bytes", where, key, max);
	return wmi_set_str(dst, s);
}

static kiln_err read_node(wm_node *n, const cJSON *o, const char *where)
{
	int64_t diff = 0;
	const char *status = NULL;
	kiln_err e;
	if ((e = kiln_json_only_keys(o, node_keys, where)) ||
	    (e = kiln_json_int(&n->id, o, "id", where)) ||
	    (e = kiln_json_int(&n->parent, o, "parent", where)) ||
	    (e = read_text(&n->title, o, "title", where, WM_TITLE_MAX)) ||
	    (e = read_text(&n->description, o, "description", where, WM_TEXT_MAX)) ||
	    (e = read_text(&n->rationale, o, "rationale", where, WM_TEXT_MAX)) ||
	    (e = read_text(&n->notes, o, "notes", where, WM_TEXT_MAX)) ||
	    (e = kiln_json_int(&diff, o, "difficulty", where)) ||
	    (e = kiln_json_number(&n->score, o, "score", where)) ||
	    (e = kiln_json_number(&n->expected_speedup, o, "expected_speedup", where)) ||
	    (e = kiln_json_string(&status, o, "status", where)) ||
	    (e = kiln_json_int(&n->attempts, o, "attempts", where)) ||
	    (e = kiln_json_int(&n->passed, o, "passed", where)) ||
	    (e = kiln_json_int(&n->stale, o, "stale", where)) ||
	    (e = kiln_json_int(&n->best_candidate, o, "best_candidate", where)) ||
	    (e = kiln_json_number(&n->best_us, o, "best_us", where)) ||
	    (e = kiln_json_number(&n->best_spread_us, o, "best_spread_us", where)) ||
	    (e = kiln_json_number(&n->best_speedup, o, "best_speedup", where)) ||
	    (e = kiln_json_int(&n->split_from, o, "split_from", where)) ||
	    (e = kiln_json_int(&n->created_rev, o, "created_rev", where)) ||
	    (e = kiln_json_int(&n->updated_rev, o, "updated_rev", where)))
		return e;
	if (diff < 1 || diff > 5)
		return kiln_error_set(KILN_EINVAL, "%s: field \"difficulty\": %lld out of range 1-5", where,
				      (long long)diff);
	n->difficulty = (int)diff;
	int s = 0;
	while (s <= KILN_WM_PRUNED && strcmp(kiln_wm_status_name((kiln_wm_status)s), status) != 0)
		s++;
	if (s > KILN_WM_PRUNED)
		return kiln_error_set(KILN_EINVAL, "%s: field \"status\": unknown status \"%.20s\" (open, "
				      "solved, too_hard, pruned)", where, status);
	n->status = (kiln_wm_status)s;
	return KILN_OK;
}

kiln_err kiln_wm_from_json(kiln_wm **out, const char *json, size_t len, const kiln_wm_options *opt)
{
	cJSON *root = NULL;
	kiln_wm *wm = NULL;
	const cJSON *nodes;
	int64_t version = 0;
	kiln_err e;
	*out = NULL;
	if ((e = kiln_json_parse(&root, json, len, "world model")))
		goto done;
	if (!cJSON_IsObject(root)) {
		e = kiln_error_set(KILN_EINVAL, "world model: expected a JSON object");
		goto done;
	}
	if (!(wm = kiln_calloc(1, sizeof(*wm)))) {
		e = KILN_ENOMEM;
		goto done;
	}
	wmi_fill_options(&wm->opt, opt);
	if ((e = kiln_json_only_keys(root, top_keys, "world model")) ||
	    (e = kiln_json_int(&version, root, "version", "world model")) ||
	    (e = kiln_json_int(&wm->revision, root, "revision", "world model")) ||
	    (e = kiln_json_int(&wm->next_id, root, "next_id", "world model")) ||
	    (e = kiln_json_array(&nodes, root, "nodes", "world model")))
		goto done;
	if (version != WM_JSON_VERSION) {
		e = kiln_error_set(KILN_EINVAL, "world model: version %lld is not supported (this kiln reads %d)",
				   (long long)version, WM_JSON_VERSION);
		goto done;
	}
	size_t count = (size_t)cJSON_GetArraySize(nodes);
	if (!(wm->nodes = kiln_calloc(count ? count : 1, sizeof(wm_node)))) {
		e = KILN_ENOMEM;
		goto done;
	}
	wm->cap = count ? count : 1;
	const cJSON *o;
	cJSON_ArrayForEach(o, nodes) {
		char where[64];
		snprintf(where, sizeof(where), "world model: nodes[%zu]", wm->n);
		wm_node *n = &wm->nodes[wm->n++];
		if (!cJSON_IsObject(o)) {
			e = kiln_error_set(KILN_EINVAL, "%s: expected an object", where);
			goto done;
		}
		if ((e = read_node(n, o, where)))
			goto done;
	}
	if ((e = kiln_wm_check(wm))) {
		char msg[256];
		snprintf(msg, sizeof(msg), "%s", kiln_error_last());
		e = kiln_error_set(KILN_EINVAL, "%s", msg);
		goto done;
	}
	*out = wm;
	wm = NULL;
done:
	kiln_wm_free(wm);
	cJSON_Delete(root);
	return e;
}
