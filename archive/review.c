/* archive: the history queries of the review commands (kiln runs, kiln tree, and the run
 * lookups every review command shares), so cli/ only parses and prints. Documents come
 * back as JSON keyed by the schema's column names (kiln_db_query_json): their --json
 * output is documented in docs/review.md. Everything here only reads the database. */
#include "archive/archive_int.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static const char runs_sql[] =
	"SELECT r.id, r.target, r.policy, r.llm_model, r.device, r.gpu, r.arch, r.started, r.ended, r.status,"
	" r.pid, (julianday(coalesce(r.ended, strftime('%Y-%m-%dT%H:%M:%SZ','now'))) - julianday(r.started))"
	" * 86400.0 AS duration_s,"
	" (SELECT count(*) FROM candidates c WHERE c.run_id = r.id) AS candidates,"
	" (SELECT count(*) FROM candidates c WHERE c.run_id = r.id AND c.outcome = 'passed') AS passed,"
	" (SELECT max(iteration) FROM candidates c WHERE c.run_id = r.id) AS last_iteration,"
	" r.seed_candidate, r.best_candidate,"
	" (SELECT t.time_us FROM timings t WHERE t.candidate_id = r.best_candidate) AS best_us,"
	" (SELECT t.speedup FROM timings t WHERE t.candidate_id = r.best_candidate) AS best_speedup,"
	" (SELECT t.kind FROM timings t WHERE t.candidate_id = r.best_candidate) AS best_kind,"
	" (SELECT count(*) FROM llm_calls l WHERE l.run_id = r.id) AS llm_calls,"
	" (SELECT sum(l.cost_usd) FROM llm_calls l WHERE l.run_id = r.id) AS cost_usd,"
	" (SELECT count(*) FROM llm_calls l WHERE l.run_id = r.id AND l.status = 'ok' AND l.cost_usd IS NULL)"
	"  AS unpriced_calls,"
	" (SELECT sum(coalesce(l.prompt_tokens, 0) + coalesce(l.completion_tokens, 0)) FROM llm_calls l"
	"  WHERE l.run_id = r.id) AS tokens,"
	" r.budgets, r.spent"
	" FROM runs r WHERE ?1 IS NULL OR r.target = ?1 ORDER BY r.id DESC";

kiln_err kiln_db_review_runs(kiln_db *db, cJSON **out, const char *target)
{
	const char *p[1] = {target};
	return kiln_db_query_json(db, out, runs_sql, p, 1, "listing runs");
}

/* The first row's integer column key, or 0 when there is no row. */
static int64_t first_id(const cJSON *rows, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(rows, 0), key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

kiln_err kiln_db_run_find(kiln_db *db, int64_t *out, const char *ref)
{
	size_t n = strlen(ref);
	bool digits = n > 0 && n < 19 && strspn(ref, "0123456789") == n;
	cJSON *rows = NULL;
	const char *p[1] = {ref};
	kiln_err e = kiln_db_query_json(db, &rows, digits ? "SELECT id FROM runs WHERE id = ?1"
							 : "SELECT id FROM runs WHERE target = ?1 ORDER BY id DESC LIMIT 1",
					p, 1, "finding the run");
	*out = e ? 0 : first_id(rows, "id");
	cJSON_Delete(rows);
	if (!e && !*out)
		e = kiln_error_set(KILN_ENOTFOUND, digits ? "no run %s in the history" : "no run of target %s in the history",
				   ref);
	return e;
}

kiln_err kiln_db_run_targets(kiln_db *db, char ***out, size_t *n)
{
	cJSON *rows = NULL;
	const cJSON *r;
	char **names = NULL;
	size_t k = 0;
	*out = NULL;
	*n = 0;
	kiln_err e = kiln_db_query_json(db, &rows, "SELECT DISTINCT target FROM runs ORDER BY target", NULL, 0,
					"listing targets");
	if (!e && !(names = calloc((size_t)cJSON_GetArraySize(rows) + 1, sizeof(char *))))
		e = KILN_ENOMEM;
	for (r = e ? NULL : rows->child; r; r = r->next) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(r, "target");
		if (!cJSON_IsString(t))
			continue;
		if (!(names[k] = strdup(t->valuestring))) {
			e = KILN_ENOMEM;
			break;
		}
		k++;
	}
	cJSON_Delete(rows);
	if (e) {
		kiln_db_run_targets_free(names, k);
		return e;
	}
	*out = names;
	*n = k;
	return KILN_OK;
}

void kiln_db_run_targets_free(char **names, size_t n)
{
	for (size_t i = 0; names && i < n; i++)
		free(names[i]);
	free(names);
}

kiln_err kiln_db_review_wm(kiln_db *db, cJSON **out, int64_t run_id, int64_t at)
{
	char run_buf[24], at_buf[24];
	cJSON *rows = NULL;
	snprintf(run_buf, sizeof(run_buf), "%" PRId64, run_id);
	snprintf(at_buf, sizeof(at_buf), "%" PRId64, at);
	const char *p[2] = {run_buf, at < 0 ? NULL : at_buf};
	*out = NULL;
	kiln_err e = kiln_db_query_json(db, &rows,
		"SELECT w.run_id AS run, w.id AS revision_id, w.iteration,"
		" (SELECT count(*) FROM wm_revisions w2 WHERE w2.run_id = w.run_id AND w2.id <= w.id) AS revision_index,"
		" (SELECT count(*) FROM wm_revisions w2 WHERE w2.run_id = w.run_id) AS revisions, w.created,"
		" w.llm_call_id, w.edits, w.rejected, w.tree,"
		" (SELECT best_candidate FROM runs WHERE id = w.run_id) AS best_candidate"
		" FROM wm_revisions w WHERE w.run_id = ?1 AND (?2 IS NULL OR w.iteration <= ?2)"
		" ORDER BY w.iteration DESC, w.id DESC LIMIT 1", p, 2, "reading the world model");
	if (!e)
		*out = cJSON_DetachItemFromArray(rows, 0);
	cJSON_Delete(rows);
	return e;
}
