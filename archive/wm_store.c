/* archive: world-model revisions stored as reverse deltas (as RCS stores files), so
 * history.db grows with the edits, not with the square of the iterations. The newest
 * revision of a run always holds the whole tree (`tree`); when a new one arrives, the one
 * before becomes a delta (`delta`) against its successor, unless the deltas since the last
 * older whole tree already add up to a tree's size or CHAIN_ROWS rows (then it stays whole:
 * rebuilding any revision reads at most CHAIN_ROWS rows and about two trees' bytes). A delta
 * is written only when applying it reproduces the old text byte for byte; else the row keeps
 * its tree. Delta: {"next": successor row id, "top": the old tree with "nodes": null,
 * "patch": [{"id", changed fields...}] for nodes both have, "nodes": [old nodes the
 * successor lacks], "drop": [ids only the successor has], "order": [ids] (only when the old
 * order is not the successor's)}. */
#include "archive/archive_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_ROWS 64 /* rows between whole trees, at most */
#define CHAIN_MAX 100000 /* rows followed before a chain counts as damaged */

/* Every number as the shortest text that reads back as the same double (as wm_json.c
 * writes them), so parse + print is lossless. */
static bool exact_numbers(cJSON *j)
{
	cJSON *c;
	cJSON_ArrayForEach(c, j) {
		if (cJSON_IsNumber(c)) {
			char text[40];
			for (int digits = 15; digits <= 17; digits++) {
				snprintf(text, sizeof(text), "%.*g", digits, c->valuedouble);
				if (strtod(text, NULL) == c->valuedouble)
					break;
			}
			if (!isfinite(c->valuedouble))
				return false;
			char *raw = cJSON_malloc(strlen(text) + 1);
			if (!raw)
				return false;
			memcpy(raw, text, strlen(text) + 1);
			c->type = cJSON_Raw;
			c->valuestring = raw;
		} else if ((cJSON_IsObject(c) || cJSON_IsArray(c)) && !exact_numbers(c)) {
			return false;
		}
	}
	return true;
}

static cJSON *parse_exact(const char *text)
{
	cJSON *j = text ? cJSON_Parse(text) : NULL;
	if (j && (!cJSON_IsObject(j) || !exact_numbers(j))) {
		cJSON_Delete(j);
		return NULL;
	}
	return j;
}

static double node_id(const cJSON *n)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(n, "id");
	if (cJSON_IsRaw(id))
		return strtod(id->valuestring, NULL);
	return cJSON_IsNumber(id) ? id->valuedouble : NAN;
}

static const cJSON *node_by_id(const cJSON *nodes, double id)
{
	const cJSON *n;
	cJSON_ArrayForEach(n, nodes)
		if (node_id(n) == id)
			return n;
	return NULL;
}

static bool same_node(const cJSON *a, const cJSON *b)
{
	char *ta = cJSON_PrintUnformatted(a), *tb = cJSON_PrintUnformatted(b);
	bool same = ta && tb && strcmp(ta, tb) == 0;
	cJSON_free(ta);
	cJSON_free(tb);
	return same;
}

static bool in_list(const cJSON *list, double id)
{
	const cJSON *x;
	cJSON_ArrayForEach(x, list)
		if ((cJSON_IsRaw(x) ? strtod(x->valuestring, NULL) : x->valuedouble) == id)
			return true;
	return false;
}

/* The older tree from its successor and the delta; NULL when the delta does not fit. */
static cJSON *apply_parsed(const cJSON *newer, const cJSON *delta)
{
	const cJSON *top = cJSON_GetObjectItemCaseSensitive(delta, "top"),
		    *changed = cJSON_GetObjectItemCaseSensitive(delta, "nodes"),
		    *patch = cJSON_GetObjectItemCaseSensitive(delta, "patch"),
		    *drop = cJSON_GetObjectItemCaseSensitive(delta, "drop"),
		    *order = cJSON_GetObjectItemCaseSensitive(delta, "order"),
		    *cur = cJSON_GetObjectItemCaseSensitive(newer, "nodes"), *n;
	if (!cJSON_IsObject(top) || !cJSON_IsArray(changed) || !cJSON_IsArray(cur) ||
	    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(top, "nodes")))
		return NULL;
	cJSON *out = cJSON_Duplicate(top, true), *nodes = cJSON_CreateArray();
	bool ok = out && nodes;
	cJSON_ArrayForEach(n, cur) { /* the successor's order, changed nodes in place */
		if (!ok || in_list(drop, node_id(n)))
			continue;
		const cJSON *c = node_by_id(changed, node_id(n)), *pt = node_by_id(patch, node_id(n)), *f;
		cJSON *copy = cJSON_Duplicate(c ? c : n, true);
		ok = copy && cJSON_AddItemToArray(nodes, copy);
		const cJSON *fields = c ? NULL : pt;
		cJSON_ArrayForEach(f, fields) /* fields the old node had otherwise */
			ok = ok && f->string && cJSON_GetObjectItemCaseSensitive(copy, f->string) &&
			     cJSON_ReplaceItemInObjectCaseSensitive(copy, f->string, cJSON_Duplicate(f, true));
	}
	cJSON_ArrayForEach(n, changed) /* then the nodes the successor no longer has */
		if (ok && !node_by_id(cur, node_id(n)))
			ok = cJSON_AddItemToArray(nodes, cJSON_Duplicate(n, true));
	if (ok && cJSON_IsArray(order)) {
		cJSON *sorted = cJSON_CreateArray();
		const cJSON *x;
		ok = sorted && cJSON_GetArraySize(order) == cJSON_GetArraySize(nodes);
		cJSON_ArrayForEach(x, order) {
			const cJSON *m = ok ? node_by_id(nodes, cJSON_IsRaw(x) ? strtod(x->valuestring, NULL) : NAN) : NULL;
			ok = m && cJSON_AddItemToArray(sorted, cJSON_Duplicate(m, true));
		}
		cJSON_Delete(nodes);
		nodes = sorted;
	}
	if (ok)
		ok = cJSON_ReplaceItemInObjectCaseSensitive(out, "nodes", nodes);
	if (!ok) {
		cJSON_Delete(nodes);
		cJSON_Delete(out);
		return NULL;
	}
	return out;
}

/* {"id", fields of old that differ from new}: both nodes must have the same keys, else
 * the self-check in delta_make fails and the row stays whole. */
static bool add_patch(cJSON *patch, const cJSON *old, const cJSON *new_node)
{
	cJSON *p = cJSON_CreateObject(), *f;
	bool ok = p && cJSON_AddItemToArray(patch, p) &&
		  cJSON_AddItemToObject(p, "id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(old, "id"), true));
	cJSON_ArrayForEach(f, (cJSON *)old) {
		const cJSON *g = cJSON_GetObjectItemCaseSensitive(new_node, f->string);
		if (ok && strcmp(f->string, "id") != 0 && (!g || !same_node(f, g)))
			ok = cJSON_AddItemToObject(p, f->string, cJSON_Duplicate(f, true));
	}
	return ok;
}

static cJSON *id_item(double id)
{
	char text[40];
	snprintf(text, sizeof(text), "%.17g", id);
	return cJSON_CreateRaw(text);
}

/* The reverse delta taking newer back to older (the texts stored), or NULL when the
 * trees are not shaped for one or the delta would not reproduce older exactly. */
static char *delta_make(const char *older, const char *newer, int64_t next_id)
{
	cJSON *o = parse_exact(older), *nw = parse_exact(newer), *d = cJSON_CreateObject(), *back = NULL;
	char *text = NULL, *check = NULL;
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(o, "nodes"), *nn = cJSON_GetObjectItemCaseSensitive(nw, "nodes"), *n;
	bool ok = o && nw && d && cJSON_IsArray(on) && cJSON_IsArray(nn);
	cJSON *top = ok ? cJSON_Duplicate(o, true) : NULL, *changed = cJSON_CreateArray(), *drop = cJSON_CreateArray();
	ok = ok && top && changed && drop && cJSON_ReplaceItemInObjectCaseSensitive(top, "nodes", cJSON_CreateNull());
	if (ok) {
		cJSON_AddNumberToObject(d, "next", (double)next_id);
		cJSON_AddItemToObject(d, "top", top);
		cJSON_AddItemToObject(d, "nodes", changed);
		cJSON_AddItemToObject(d, "drop", drop);
		top = changed = drop = NULL;
	}
	cJSON *patch = ok ? cJSON_AddArrayToObject(d, "patch") : NULL;
	cJSON_ArrayForEach(n, on) {
		const cJSON *m = ok ? node_by_id(nn, node_id(n)) : NULL;
		if (ok && !m)
			ok = cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(d, "nodes"), cJSON_Duplicate(n, true));
		else if (ok && !same_node(n, m))
			ok = patch && add_patch(patch, n, m);
	}
	cJSON_ArrayForEach(n, nn)
		if (ok && !node_by_id(on, node_id(n)))
			ok = cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(d, "drop"), id_item(node_id(n)));
	/* the order only when the default (successor's order, gone nodes last) differs */
	if (ok && (back = apply_parsed(nw, d)) && !same_node(back, o)) {
		cJSON *order = cJSON_AddArrayToObject(d, "order");
		cJSON_ArrayForEach(n, on)
			ok = ok && order && cJSON_AddItemToArray(order, id_item(node_id(n)));
	}
	cJSON_Delete(back);
	back = ok ? apply_parsed(nw, d) : NULL;
	check = back ? cJSON_PrintUnformatted(back) : NULL;
	if (check && strcmp(check, older) == 0)
		text = cJSON_PrintUnformatted(d);
	cJSON_free(check);
	cJSON_Delete(back);
	cJSON_Delete(top);
	cJSON_Delete(changed);
	cJSON_Delete(drop);
	cJSON_Delete(d);
	cJSON_Delete(o);
	cJSON_Delete(nw);
	return text;
}

static char *delta_apply(const char *newer, const char *delta)
{
	cJSON *nw = parse_exact(newer), *d = parse_exact(delta);
	cJSON *old = nw && d ? apply_parsed(nw, d) : NULL;
	char *text = old ? cJSON_PrintUnformatted(old) : NULL;
	cJSON_Delete(old);
	cJSON_Delete(nw);
	cJSON_Delete(d);
	return text;
}

/* Steps st (one row wanted); KILN_ENOTFOUND on none. */
static kiln_err step_row(kiln_db *db, sqlite3_stmt *st, const char *what)
{
	int rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return KILN_OK;
	if (rc == SQLITE_DONE)
		return kiln_error_set(KILN_ENOTFOUND, "%s: %s: no such row", db->path, what);
	return kiln_db_err(db, rc, what);
}

/* Turns row prev_id of run (whole tree prev) into a delta against its successor next_id
 * (whole tree next), unless the chain since the last older whole tree is already long
 * (CHAIN_ROWS rows, or deltas adding up to this tree's size) or the delta saves nothing. */
static kiln_err compact_row(kiln_db *db, int64_t run, int64_t prev_id, const char *prev, int64_t next_id,
			    const char *next)
{
	sqlite3_stmt *st = NULL;
	int64_t rows = 0, bytes = 0;
	kiln_err e = kiln_db_prepare(db, &st, "SELECT count(*), coalesce(sum(length(delta)), 0) FROM wm_revisions"
					      " WHERE run_id = ?1 AND id < ?2 AND id > (SELECT coalesce(max(id), 0) FROM"
					      " wm_revisions WHERE run_id = ?1 AND id < ?2 AND tree IS NOT NULL)");
	if (e)
		return e;
	sqlite3_bind_int64(st, 1, run);
	sqlite3_bind_int64(st, 2, prev_id);
	if (!(e = step_row(db, st, "measuring a world-model delta chain"))) {
		rows = sqlite3_column_int64(st, 0);
		bytes = sqlite3_column_int64(st, 1);
	}
	sqlite3_finalize(st);
	char *delta = e || rows + 1 >= CHAIN_ROWS ? NULL : delta_make(prev, next, next_id);
	if (e || !delta || (size_t)bytes + strlen(delta) >= strlen(prev)) {
		free(delta);
		return e; /* keeps its tree: nothing is lost */
	}
	e = kiln_db_prepare(db, &st, "UPDATE wm_revisions SET tree = NULL, delta = ?1 WHERE id = ?2");
	if (!e) {
		kiln_db_bind_text(st, 1, delta);
		sqlite3_bind_int64(st, 2, prev_id);
		int rc = sqlite3_step(st);
		e = rc == SQLITE_DONE ? KILN_OK : kiln_db_err(db, rc, "storing a world-model revision as a delta");
		sqlite3_finalize(st);
	}
	free(delta);
	return e;
}

kiln_err kiln_db_wm_revision_add(kiln_db *db, int64_t *out_id, const kiln_wm_revision_rec *r)
{
	sqlite3_stmt *st = NULL;
	char now[32], *prev = NULL;
	int64_t prev_id = 0, id = 0;
	const char *what = "recording a world-model revision";
	kiln_err e;
	if (!r->tree_json)
		return kiln_error_set(KILN_EINVAL, "%s: tree is required", what);
	if ((e = kiln_db_tx_begin(db)))
		return e;
	/* the run's newest row (it holds the whole tree) and its position in the run */
	if (!(e = kiln_db_prepare(db, &st, "SELECT id, tree FROM wm_revisions WHERE run_id = ?1"
					   " ORDER BY id DESC LIMIT 1"))) {
		sqlite3_bind_int64(st, 1, r->run_id);
		if (!(e = step_row(db, st, what))) {
			prev_id = sqlite3_column_int64(st, 0);
			prev = kiln_db_col_dup(st, 1);
		} else if (e == KILN_ENOTFOUND) {
			e = KILN_OK;
			kiln_error_clear();
		}
		sqlite3_finalize(st);
	}
	if (!e && !(e = kiln_db_prepare(db, &st, "INSERT INTO wm_revisions (run_id, iteration, tree, edits, rejected,"
						  " llm_call_id, created) VALUES (?,?,?,?,?,?,?)"))) {
		kiln_iso8601(now, sizeof(now), kiln_wall_s());
		sqlite3_bind_int64(st, 1, r->run_id);
		sqlite3_bind_int64(st, 2, r->iteration);
		kiln_db_bind_text(st, 3, r->tree_json);
		kiln_db_bind_text(st, 4, r->edits_json ? r->edits_json : "[]");
		kiln_db_bind_text(st, 5, r->rejected_json ? r->rejected_json : "[]");
		kiln_db_bind_id(st, 6, r->llm_call_id);
		kiln_db_bind_text(st, 7, now);
		int rc = sqlite3_step(st);
		e = rc == SQLITE_DONE ? KILN_OK : kiln_db_err(db, rc, what);
		sqlite3_finalize(st);
		id = sqlite3_last_insert_rowid(db->h);
	}
	if (!e && prev)
		e = compact_row(db, r->run_id, prev_id, prev, id, r->tree_json);
	free(prev);
	if (!e)
		e = kiln_db_tx_commit(db);
	if (e) {
		kiln_db_tx_rollback(db);
		return e;
	}
	if (out_id)
		*out_id = id;
	return KILN_OK;
}

/* tree (whole, or NULL) and delta of row id. */
static kiln_err load_row(kiln_db *db, int64_t id, char **tree, char **delta, bool has_delta)
{
	sqlite3_stmt *st = NULL;
	*tree = *delta = NULL;
	kiln_err e = kiln_db_prepare(db, &st, has_delta ? "SELECT tree, delta FROM wm_revisions WHERE id = ?1"
							: "SELECT tree, NULL FROM wm_revisions WHERE id = ?1");
	if (e)
		return e;
	sqlite3_bind_int64(st, 1, id);
	if (!(e = step_row(db, st, "reading a world-model revision"))) {
		*tree = kiln_db_col_dup(st, 0);
		*delta = kiln_db_col_dup(st, 1);
		if (!*tree && !*delta)
			e = kiln_error_set(KILN_ECORRUPT, "%s: world-model revision %lld has neither a tree nor a delta",
					   db->path, (long long)id);
	}
	sqlite3_finalize(st);
	return e;
}

kiln_err kiln_db_wm_tree(kiln_db *db, char **out, int64_t revision_id)
{
	*out = NULL;
	bool has_delta = kiln_db_schema_version(db) >= 2;
	char **deltas = NULL, *tree = NULL, *delta = NULL;
	size_t n = 0;
	int64_t id = revision_id;
	kiln_err e = KILN_OK;
	while (!e && !tree) {
		if ((e = load_row(db, id, &tree, &delta, has_delta)) || tree)
			break;
		cJSON *d = cJSON_Parse(delta);
		const cJSON *next = cJSON_GetObjectItemCaseSensitive(d, "next");
		int64_t next_id = cJSON_IsNumber(next) ? (int64_t)next->valuedouble : 0;
		cJSON_Delete(d);
		char **grown = n < CHAIN_MAX && next_id > id ? kiln_realloc(deltas, (n + 1) * sizeof(*deltas)) : NULL;
		if (!grown) {
			e = kiln_error_set(KILN_ECORRUPT, "%s: world-model revision %lld: its delta does not lead to a "
					   "stored tree", db->path, (long long)id);
			free(delta);
			break;
		}
		deltas = grown;
		deltas[n++] = delta;
		id = next_id;
	}
	free(e ? NULL : delta);
	while (!e && n > 0) { /* newest first, back to the revision asked for */
		char *older = delta_apply(tree, deltas[n - 1]);
		if (!older)
			e = kiln_error_set(KILN_ECORRUPT, "%s: world-model revision %lld: a delta does not apply",
					   db->path, (long long)revision_id);
		free(tree);
		tree = older;
		free(deltas[--n]);
	}
	while (n > 0)
		free(deltas[--n]);
	free(deltas);
	if (e) {
		free(tree);
		return e;
	}
	*out = tree;
	return KILN_OK;
}

kiln_err kiln_db_wm_revision_latest(kiln_db *db, char **tree_json, int64_t *iteration, int64_t run_id)
{
	sqlite3_stmt *st = NULL;
	*tree_json = NULL;
	kiln_err e = kiln_db_prepare(db, &st, "SELECT id, iteration FROM wm_revisions WHERE run_id = ?1"
					      " ORDER BY id DESC LIMIT 1");
	if (e)
		return e;
	sqlite3_bind_int64(st, 1, run_id);
	int rc = sqlite3_step(st);
	int64_t id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	if (rc == SQLITE_ROW && iteration)
		*iteration = sqlite3_column_int64(st, 1);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return kiln_error_set(KILN_ENOTFOUND, "run %lld has no world-model revision", (long long)run_id);
	if (rc != SQLITE_ROW)
		return kiln_db_err(db, rc, "reading the world model");
	return kiln_db_wm_tree(db, tree_json, id);
}

/* Schema v2 (migration): wm_revisions gains `delta` and `tree` may be NULL; every run's
 * stored trees are compacted into deltas as new ones would be. */
kiln_err kiln_db_migrate_wm_deltas(kiln_db *db)
{
	static const char *const sql[] = {
		("CREATE TABLE wm_revisions_v2 ("
		" id INTEGER PRIMARY KEY,"
		" run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,"
		" iteration INTEGER NOT NULL,"
		" tree TEXT CHECK (tree IS NULL OR json_valid(tree)),"
		" delta TEXT CHECK (delta IS NULL OR json_valid(delta)),"
		" edits TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(edits)),"
		" rejected TEXT NOT NULL DEFAULT '[]' CHECK (json_valid(rejected)),"
		" llm_call_id INTEGER REFERENCES llm_calls(id),"
		" created TEXT NOT NULL,"
		" CHECK ((tree IS NULL) <> (delta IS NULL)));"),
		("INSERT INTO wm_revisions_v2 (id, run_id, iteration, tree, delta, edits, rejected, llm_call_id, created)"
		 " SELECT id, run_id, iteration, tree, NULL, edits, rejected, llm_call_id, created FROM wm_revisions;"),
		"DROP TABLE wm_revisions;",
		"ALTER TABLE wm_revisions_v2 RENAME TO wm_revisions;",
		"CREATE INDEX wm_revisions_run ON wm_revisions(run_id, id);",
	};
	kiln_err e = KILN_OK;
	for (size_t i = 0; i < KILN_ARRAY_LEN(sql) && !e; i++)
		e = kiln_db_exec(db, sql[i], "moving world-model revisions to schema v2");
	/* ids first (small), then oldest first per run: each row becomes a delta against the
	 * one after it (still whole), so the chain policy sees the older rows as converted */
	sqlite3_stmt *st = NULL;
	int64_t (*rows)[2] = NULL;
	size_t n = 0, cap = 0;
	int rc = SQLITE_DONE;
	if (e || (e = kiln_db_prepare(db, &st, "SELECT id, run_id FROM wm_revisions ORDER BY run_id, id")))
		return e;
	while (!e && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (n == cap) {
			void *g = kiln_realloc(rows, (cap = cap ? 2 * cap : 256) * sizeof(*rows));
			if (!g) {
				e = KILN_ENOMEM;
				break;
			}
			rows = g;
		}
		rows[n][0] = sqlite3_column_int64(st, 0);
		rows[n++][1] = sqlite3_column_int64(st, 1);
	}
	if (!e && rc != SQLITE_DONE)
		e = kiln_db_err(db, rc, "listing world-model revisions");
	sqlite3_finalize(st);
	char *next = NULL;
	for (size_t i = 0; !e && i + 1 < n; i++) {
		char *tree = NULL, *delta = NULL;
		if (rows[i + 1][1] != rows[i][1])
			continue; /* a run's newest row stays whole */
		free(next);
		next = NULL;
		if (!(e = load_row(db, rows[i][0], &tree, &delta, true))) {
			free(delta);
			e = load_row(db, rows[i + 1][0], &next, &delta, true);
		}
		if (!e && tree && next)
			e = compact_row(db, rows[i][1], rows[i][0], tree, rows[i + 1][0], next);
		free(delta);
		free(tree);
	}
	free(next);
	free(rows);
	return e;
}
