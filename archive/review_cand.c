/* archive: the review reads of candidates (kiln show, kiln diff, kiln log) as JSON documents
 * built on kiln_db_query_json, so their --json keys are the schema's column names
 * (docs/review.md). The CLI only parses arguments and prints these. Read-only: they work
 * while a run writes. */
#include "archive/archive_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static double jnum(const cJSON *o, const char *key)
{
	return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

static const char *jstr(const cJSON *o, const char *key, const char *if_null)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	return s ? s : if_null;
}

/* One row of sql (parameter: the candidate id) as an object, or JSON null when none. */
static kiln_err one_row(cJSON **out, kiln_db *db, const char *sql, int64_t id, const char *what)
{
	char buf[24];
	const char *p[1] = {buf};
	cJSON *rows = NULL;
	snprintf(buf, sizeof(buf), "%lld", (long long)id);
	kiln_err e = kiln_db_query_json(db, &rows, sql, p, 1, what);
	if (e)
		return e;
	*out = cJSON_GetArraySize(rows) > 0 ? cJSON_DetachItemFromArray(rows, 0) : cJSON_CreateNull();
	cJSON_Delete(rows);
	return *out ? KILN_OK : KILN_ENOMEM;
}

static const cJSON *node_in(const cJSON *tree, int64_t id)
{
	const cJSON *n;
	cJSON_ArrayForEach(n, cJSON_GetObjectItemCaseSensitive(tree, "nodes"))
		if (jnum(n, "id") == (double)id)
			return n;
	return NULL;
}

/* The world-model tree of the first revision sql finds (?1 run, ?2 iteration); *tree NULL
 * when there is none. */
static kiln_err revision_tree(cJSON **tree, kiln_db *db, const char *sql, const char *const p[2])
{
	cJSON *rows = NULL;
	char *text = NULL;
	*tree = NULL;
	kiln_err e = kiln_db_query_json(db, &rows, sql, p, 2, "reading the world model");
	double id = jnum(cJSON_GetArrayItem(rows, 0), "id");
	if (!e && isfinite(id) && !(e = kiln_db_wm_tree(db, &text, (int64_t)id)) && !(*tree = cJSON_Parse(text)))
		e = kiln_error_set(KILN_ECORRUPT, "world-model revision %.0f: the rebuilt tree is not JSON", id);
	free(text);
	cJSON_Delete(rows);
	return e;
}

/* The candidate's node as the newest revision of its run has it (else, when a later edit
 * removed it, as the newest revision at or before the candidate's iteration had it) and its
 * ancestors, root first. */
static kiln_err node_and_ancestry(cJSON *doc, kiln_db *db, const cJSON *cand)
{
	static const char *const sql[2] = {
		"SELECT id FROM wm_revisions WHERE run_id = ?1 ORDER BY iteration DESC, id DESC LIMIT 1",
		"SELECT id FROM wm_revisions WHERE run_id = ?1 AND iteration <= ?2 ORDER BY iteration DESC, id DESC LIMIT 1"};
	const char *node_ref = jstr(cand, "node_id", NULL);
	cJSON *node = cJSON_CreateNull(), *anc = cJSON_CreateArray(), *tree = NULL;
	char run[24], iter[24];
	snprintf(run, sizeof(run), "%.0f", jnum(cand, "run_id"));
	snprintf(iter, sizeof(iter), "%.0f", jnum(cand, "iteration"));
	const char *p[2] = {run, iter};
	int64_t id = node_ref ? strtoll(node_ref[0] == '#' ? node_ref + 1 : node_ref, NULL, 10) : 0;
	const cJSON *n = NULL;
	kiln_err e = !node || !anc ? KILN_ENOMEM : KILN_OK;
	for (int i = 0; !e && !n && i < 2; i++) {
		cJSON_Delete(tree);
		e = revision_tree(&tree, db, sql[i], p);
		n = !e && tree ? node_in(tree, id) : NULL;
	}
	if (n && node_ref) {
		cJSON_Delete(node);
		node = cJSON_Duplicate(n, true);
	}
	for (int guard = 0; n && guard < 256; guard++) {
		cJSON *a = cJSON_CreateObject();
		cJSON_AddNumberToObject(a, "id", jnum(n, "id"));
		cJSON_AddStringToObject(a, "title", jstr(n, "title", ""));
		cJSON_AddStringToObject(a, "status", jstr(n, "status", ""));
		cJSON_InsertItemInArray(anc, 0, a);
		n = jnum(n, "parent") >= 0 ? node_in(tree, (int64_t)jnum(n, "parent")) : NULL;
	}
	cJSON_Delete(tree);
	cJSON_AddItemToObject(doc, "node", node);
	cJSON_AddItemToObject(doc, "ancestry", anc);
	return e;
}

/* The cost model's evidence (stored inside the timing's counters) as timing.breakdown
 * (per launch: bound term, occupancy, waves, terms in us) and timing.fit. */
static void lift_evidence(cJSON *timing)
{
	static const char *const keys[] = {"breakdown", "fit"};
	const cJSON *ctr = cJSON_GetObjectItemCaseSensitive(timing, "counters");
	for (size_t k = 0; cJSON_IsObject(timing) && k < KILN_ARRAY_LEN(keys); k++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(ctr, keys[k]);
		cJSON_AddItemToObject(timing, keys[k], v ? cJSON_Duplicate(v, 1) : cJSON_CreateNull());
	}
}

/* The row id and LLM call of the candidate ref names (kiln_db_candidate_find). */
static kiln_err find_ids(kiln_db *db, const char *ref, int64_t *id, int64_t *call)
{
	kiln_candidate_info *ci = NULL;
	kiln_err e = kiln_db_candidate_find(db, &ci, ref);
	*id = ci ? ci->id : 0;
	*call = ci ? ci->llm_call_id : 0;
	kiln_candidate_infos_free(ci, 1);
	return e;
}

kiln_err kiln_db_candidate_doc(kiln_db *db, cJSON **out, const char *ref, bool with_prompt)
{
	cJSON *doc = cJSON_CreateObject(), *part = NULL;
	int64_t id = 0, call = 0;
	kiln_err e = doc ? find_ids(db, ref, &id, &call) : KILN_ENOMEM;
	static const struct { const char *key, *sql; } parts[] = {
		{"candidate", "SELECT c.id, c.hash, c.run_id, r.target, r.arch, c.iteration, c.node_id, c.parent_id,"
			      " c.created, c.outcome, c.llm_call_id, c.source_hash, c.knobs, c.launch, c.source,"
			      " (c.id = r.best_candidate) AS is_best, (c.id = r.seed_candidate) AS is_seed, c.changed,"
			      " coalesce(json_extract(r.config, '$.rank_time'), 'launches') AS rank_time"
			      " FROM candidates c JOIN runs r ON r.id = c.run_id WHERE c.id = ?1"},
		{"compile", "SELECT * FROM compile_results WHERE candidate_id = ?1"},
		{"verification", "SELECT * FROM verifications WHERE candidate_id = ?1"},
		{"timing", "SELECT * FROM timings WHERE candidate_id = ?1"},
	};
	for (size_t i = 0; !e && i < KILN_ARRAY_LEN(parts); i++)
		if (!(e = one_row(&part, db, parts[i].sql, id, "reading a candidate")))
			cJSON_AddItemToObject(doc, parts[i].key, part);
	if (!e)
		lift_evidence(cJSON_GetObjectItemCaseSensitive(doc, "timing"));
	if (!e)
		e = node_and_ancestry(doc, db, cJSON_GetObjectItemCaseSensitive(doc, "candidate"));
	if (!e)
		e = one_row(&part, db, with_prompt
			    ? "SELECT * FROM llm_calls WHERE id = ?1"
			    : "SELECT id, provider, model, request_id, status, attempts, latency_s, prompt_tokens,"
			      " cached_tokens, completion_tokens, reasoning_tokens, cost_usd, purpose, error, created"
			      " FROM llm_calls WHERE id = ?1", call, "reading the LLM call");
	if (!e)
		cJSON_AddItemToObject(doc, "llm_call", part);
	if (e) {
		cJSON_Delete(doc);
		return e;
	}
	*out = doc;
	return KILN_OK;
}

kiln_err kiln_db_candidate_metrics(kiln_db *db, cJSON **out, const char *ref)
{
	int64_t id = 0, call = 0;
	kiln_err e = find_ids(db, ref, &id, &call);
	if (e)
		return e;
	return one_row(out, db, "SELECT c.id, c.hash, c.run_id, c.iteration, c.node_id, c.outcome, v.failed_check,"
				" t.kind, t.time_us, t.speedup, t.roofline, cr.registers, cr.spill_store_bytes, c.changed, c.knobs,"
				" c.launch, c.source FROM candidates c LEFT JOIN compile_results cr ON cr.candidate_id = c.id"
				" LEFT JOIN verifications v ON v.candidate_id = c.id"
				" LEFT JOIN timings t ON t.candidate_id = c.id WHERE c.id = ?1", id, "reading a candidate");
}

/* SIZES: the per-size times column (timings.sizes), NULL for an older file read as it is */
#define LOG_SQL(SIZES) \
	"SELECT c.id, c.hash, c.run_id, r.target, r.arch, c.iteration, c.node_id, c.parent_id, c.created, c.outcome," \
	" c.changed," \
	" v.failed_check, v.message, t.kind, t.time_us, t.speedup, t.roofline, " SIZES " AS sizes," \
	" (c.outcome = 'passed' AND t.time_us IS NOT NULL AND t.time_us < coalesce((SELECT min(t2.time_us)" \
	"   FROM candidates c2 JOIN timings t2 ON t2.candidate_id = c2.id WHERE c2.run_id = c.run_id" \
	"   AND c2.outcome = 'passed' AND c2.iteration < c.iteration), 1e300)) AS new_best," \
	" (c.id = r.best_candidate) AS is_best" \
	" FROM candidates c JOIN runs r ON r.id = c.run_id" \
	" LEFT JOIN verifications v ON v.candidate_id = c.id LEFT JOIN timings t ON t.candidate_id = c.id" \
	" WHERE (?1 IS NULL OR c.run_id = ?1) AND (?2 IS NULL OR r.target = ?2)" \
	" AND (?3 IS NULL OR (c.outcome = 'passed') = ?3) AND (?4 IS NULL OR c.node_id = ?4)" \
	" AND (?5 IS NULL OR c.created >= ?5) ORDER BY c.run_id, c.iteration, c.id"

kiln_err kiln_db_log_rows(kiln_db *db, cJSON **out, const kiln_log_filter *f)
{
	static const char log_sql[] = LOG_SQL("t.sizes"), log_sql_v2[] = LOG_SQL("NULL");
	char run[24];
	snprintf(run, sizeof(run), "%lld", (long long)f->run_id);
	const char *p[5] = {f->run_id > 0 ? run : NULL, f->target, f->passed < 0 ? NULL : f->passed ? "1" : "0",
			    f->node_id, f->since};
	return kiln_db_query_json(db, out, kiln_db_has_size_times(db) ? log_sql : log_sql_v2, p, 5,
				  "listing candidates");
}
