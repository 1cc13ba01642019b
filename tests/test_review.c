/* Unit tests for the review layer of archive/ (report.c, promote.c) on a realistic fake
 * history (tests/fake_history.c, built through the archive and world-model APIs in a temp
 * dir): rows as JSON, unified diffs, the HTML report's charts/rows/tree, finding a
 * candidate's archive commit, detached commits, launch expressions translated to C, the
 * queries of kiln runs/tree (review.c) and kiln_promote's refusals (promote_run.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>

#define FAKE_HISTORY_NO_MAIN
#include "fake_history.c"

typedef struct fixture {
	char dir[64];
	char *db_path, *git_dir;
	fake_ids ids;
	kiln_db *db;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	strcpy(f->dir, "/tmp/kiln-test-review-XXXXXX");
	if (!f || !mkdtemp(f->dir))
		return -1;
	f->db_path = kiln_path_join(f->dir, "history.db");
	f->git_dir = kiln_path_join(f->dir, "archive");
	if (fake_history_make(f->dir, &f->ids) || kiln_db_open(&f->db, f->db_path, KILN_DB_READONLY)) {
		fprintf(stderr, "setup: %s\n", kiln_error_last());
		return -1;
	}
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	char *cmd = kiln_asprintf("rm -rf '%s'", f->dir);
	int rc = system(cmd);
	kiln_db_close(f->db);
	free(cmd);
	free(f->db_path);
	free(f->git_dir);
	free(f);
	return rc == 0 ? 0 : -1;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
		n++;
	return n;
}

static void test_review__fake_history_shape(void **state)
{
	fixture *f = *state;
	kiln_run_info *runs = NULL;
	size_t n = 0;
	assert_int_equal(kiln_db_runs_list(f->db, &runs, &n, NULL), 0);
	assert_int_equal(n, 2);
	assert_string_equal(runs[1].status, "finished");
	assert_string_equal(runs[0].status, "running");
	assert_int_equal(runs[1].best_candidate, f->ids.winner);
	assert_int_equal(runs[1].ncandidates, 15);
	kiln_run_infos_free(runs, n);
	/* every branch commit is consistent; the tip of adamw is the winner */
	kiln_git *g = NULL;
	kiln_git_branch *b = NULL;
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	assert_int_equal(kiln_git_verify_refs(g, &b, &n), 0);
	for (size_t i = 0; i < n; i++)
		if (strcmp(b[i].name, "adamw/sm_90") == 0)
			assert_int_equal(b[i].candidate_id, f->ids.winner);
	kiln_git_branches_free(b, n);
	kiln_git_close(g);
}

static void test_review__query_json_types(void **state)
{
	fixture *f = *state;
	cJSON *rows = NULL;
	char id[24];
	snprintf(id, sizeof(id), "%lld", (long long)f->ids.winner);
	const char *p[2] = {id, "nothing"};
	assert_int_equal(kiln_db_query_json(f->db, &rows, "SELECT c.id, c.knobs, c.node_id, t.time_us, v.failed_check,"
						       " ?2 AS echo FROM candidates c JOIN timings t ON t.candidate_id = c.id"
						       " JOIN verifications v ON v.candidate_id = c.id WHERE c.id = ?1",
					 p, 2, "test"), 0);
	assert_int_equal(cJSON_GetArraySize(rows), 1);
	cJSON *r = cJSON_GetArrayItem(rows, 0);
	assert_true(cJSON_IsNumber(cJSON_GetObjectItem(r, "id")));
	assert_int_equal(cJSON_GetObjectItem(r, "id")->valueint, f->ids.winner);
	assert_true(cJSON_IsObject(cJSON_GetObjectItem(r, "knobs"))); /* a JSON column is parsed */
	assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "knobs"), "BLOCK")->valueint, 512);
	assert_string_equal(cJSON_GetObjectItem(r, "node_id")->valuestring, "7"); /* text stays text */
	assert_true(cJSON_GetObjectItem(r, "time_us")->valuedouble == 2420.0);
	assert_true(cJSON_IsNull(cJSON_GetObjectItem(r, "failed_check")));
	assert_string_equal(cJSON_GetObjectItem(r, "echo")->valuestring, "nothing");
	cJSON_Delete(rows);
	/* a bad query is an error naming what was being done, never a crash */
	assert_int_equal(kiln_db_query_json(f->db, &rows, "SELECT nope FROM nowhere", NULL, 0, "reading nowhere"),
			 KILN_EDB);
	assert_non_null(strstr(kiln_error_last(), "nowhere"));
	assert_null(rows);
}

static void test_review__diff(void **state)
{
	char *d = NULL;
	assert_int_equal(kiln_diff_text(&d, "a\nb\nc\n", "x.cu", "a\nb\nc\n", "y.cu"), 0);
	assert_string_equal(d, "");
	free(d);
	assert_int_equal(kiln_diff_text(&d, "a\nb\nc\n", "x.cu", "a\nB\nc\nd\n", "y.cu"), 0);
	assert_true(strncmp(d, "--- a/x.cu\n+++ b/y.cu\n@@", 24) == 0);
	assert_non_null(strstr(d, "\n-b\n+B\n"));
	assert_non_null(strstr(d, "\n+d\n"));
	free(d);
	(void)state;
}

static void test_review__report_html(void **state)
{
	fixture *f = *state;
	char *html = NULL;
	assert_int_equal(kiln_report_html(&html, f->db, f->git_dir, f->ids.run_llm), 0);
	/* self-contained: no scripts, no external references */
	assert_null(strstr(html, "<script"));
	assert_null(strstr(html, "src=\"http"));
	assert_null(strstr(html, "href=\"http"));
	static const char *const charts[] = {"chart-time", "chart-speedup", "chart-wallclock", "chart-cost",
					     "chart-roofline", "wm-tree"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(charts); i++) {
		char id[48];
		snprintf(id, sizeof(id), "id=\"%s\"", charts[i]);
		assert_int_equal(count(html, id), 1);
	}
	/* every candidate is a point in the three per-candidate charts: 15 x 3 */
	assert_int_equal(count(html, "<circle class=\"pt"), 45);
	assert_int_equal(count(html, "<circle class=\"pt failed fail-compile_error"), 2 * 3);
	assert_int_equal(count(html, "<span data-outcome=\"fail-race\">"), 1); /* the legend */
	assert_int_equal(count(html, "class=\"best-row"), 5);            /* five new bests */
	assert_int_equal(count(html, "best-row winner"), 1);
	assert_int_equal(count(html, "<details id=\"src-"), 5);
	/* the winner's path in the tree: root, #2, #4, #7 */
	assert_int_equal(count(html, "class=\"node st-solved on-path\""), 4);
	assert_non_null(strstr(html, "data-node=\"7\""));
	assert_non_null(strstr(html, "<span class=\"add\">+#define BLOCK 512</span>"));
	assert_non_null(strstr(html, "id=\"budget-table\""));
	/* the cost model's evidence of every timed candidate (8 passed, one launch each) */
	assert_int_equal(count(html, "id=\"evidence-table\""), 1);
	assert_int_equal(count(html, "<tr data-candidate="), 8);
	assert_non_null(strstr(html, "<td class=\"l\">dram</td><td>2420</td><td>1.00</td><td>3.90</td>"));
	assert_null(strstr(html, "cost unknown")); /* priced calls */
	/* escaping: the source's quotes and angle brackets are entities */
	assert_non_null(strstr(html, "extern &quot;C&quot;"));
	free(html);
	assert_int_equal(kiln_report_html(&html, f->db, NULL, 99), KILN_ENOTFOUND);
	/* the running tuner run renders too (no LLM calls, no cost) */
	assert_int_equal(kiln_report_html(&html, f->db, NULL, f->ids.run_tune), 0);
	assert_int_equal(count(html, "<circle class=\"pt"), 12);
	free(html);
}

/* A run whose model has no price: its cost is "unknown", not a $0 axis. */
static void test_review__report_unpriced_cost_unknown(void **state)
{
	fixture *f = *state;
	char *path = kiln_path_join(f->dir, "unpriced.db"), *html = NULL;
	kiln_db *db = NULL;
	int64_t run = 0, call = 0;
	assert_int_equal(kiln_db_open(&db, path, 0), 0);
	kiln_run_rec rr = {"adamw", "llm", "acme:mystery-1", "emu", NULL, "sm_90", NULL, NULL, 0};
	assert_int_equal(kiln_db_run_begin(db, &run, &rr), 0);
	kiln_llm_call_rec lc = {run, "acme", "mystery-1", NULL, "ok", 1, 3, 1000, 0, 200, 0, NAN,
				"init", "(prompt)", "(reply)", NULL};
	assert_int_equal(kiln_db_llm_call_add(db, &call, &lc), 0);
	assert_int_equal(kiln_report_html(&html, db, NULL, run), 0);
	assert_non_null(strstr(html, "cost unknown"));
	assert_non_null(strstr(html, "<td id=\"cost\">unknown (unpriced model)</td>"));
	assert_null(strstr(html, "<svg id=\"chart-cost\""));
	free(html);
	kiln_db_close(db);
	free(path);
}

static void test_review__find_and_detached_commit(void **state)
{
	fixture *f = *state;
	char oid[41], oid2[41], *text = NULL;
	assert_int_equal(kiln_git_find_candidate(oid, f->git_dir, "adamw", "sm_90", f->ids.winner), 0);
	kiln_git *g = NULL;
	assert_int_equal(kiln_git_open(&g, f->git_dir), 0);
	assert_int_equal(kiln_git_read_file(g, &text, NULL, oid, "kernel.cu"), 0);
	assert_non_null(strstr(text, "#define BLOCK 512"));
	free(text);
	/* an older best, not the tip */
	assert_int_equal(kiln_git_find_candidate(oid2, f->git_dir, "adamw", "sm_90", f->ids.bests[1]), 0);
	assert_string_not_equal(oid, oid2);
	/* the branch's candidates are the run's new bests, newest first */
	int64_t *ids = NULL;
	size_t n = 0;
	assert_int_equal(kiln_git_best_candidates(&ids, &n, f->git_dir, "adamw", "sm_90"), 0);
	assert_int_equal(n, f->ids.nbests);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(ids[i], f->ids.bests[n - 1 - i]);
	free(ids);
	assert_int_equal(kiln_git_best_candidates(&ids, &n, f->git_dir, "adamw", "sm_61"), KILN_ENOTFOUND);
	/* a passing candidate that never was a best has no commit; a detached one can be made */
	assert_int_equal(kiln_git_find_candidate(oid2, f->git_dir, "adamw", "sm_90", f->ids.passed_not_best),
			 KILN_ENOTFOUND);
	kiln_git_best b = {"adamw", "sm_90", "// k\n", "{}", "{}", 1.3, 3000, true, f->ids.passed_not_best, 1, NULL};
	assert_int_equal(kiln_git_commit_detached(oid2, f->git_dir, &b), 0);
	assert_int_equal(kiln_git_read_file(g, &text, NULL, oid2, "kernel.cu"), 0);
	assert_string_equal(text, "// k\n");
	free(text);
	char tip[41];
	assert_int_equal(kiln_git_branch_tip(g, tip, "adamw", "sm_90"), 0);
	assert_string_equal(tip, oid); /* the branch did not move */
	char tag[128];
	assert_int_equal(kiln_git_tag(g, tag, sizeof(tag), "adamw", "sm_90", oid2, "test"), 0);
	assert_string_equal(tag, "promoted/adamw/sm_90/v1");
	kiln_git_close(g);
	assert_int_equal(kiln_git_find_candidate(oid2, "/nonexistent/archive", "adamw", "sm_90", 1), KILN_ENOTFOUND);
}

static const char *map_test(void *ctx, const char *name)
{
	(void)ctx;
	if (strcmp(name, "n") == 0)
		return "n";
	if (strcmp(name, "BLOCK") == 0)
		return "256";
	if (strcmp(name, "sm_count") == 0)
		return "kiln_sm_count";
	return NULL;
}

static void test_review__c_expr(void **state)
{
	char *c = NULL;
	assert_int_equal(kiln_promote_c_expr(&c, "ceil_div(n, BLOCK*4)", "k_", map_test, NULL), 0);
	assert_string_equal(c, "k_ceil_div((long long)(n), (long long)(256) * 4LL)");
	free(c);
	assert_int_equal(kiln_promote_c_expr(&c, "min(n, sm_count*4, 65535) - -1", "k_", map_test, NULL), 0);
	assert_string_equal(c, "k_min(k_min((long long)(n), (long long)(kiln_sm_count) * 4LL), 65535LL) - (-1LL)");
	free(c);
	assert_int_equal(kiln_promote_c_expr(&c, " ( n + 1 ) % 7 ", "", map_test, NULL), 0);
	assert_string_equal(c, "((long long)(n) + 1LL) % 7LL");
	free(c);
	static const char *const bad[] = {"m + 1", "pow(n, 2)", "n +", "n 1", "ceil_div(n)", "max(n)", "", "(n"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		assert_int_equal(kiln_promote_c_expr(&c, bad[i], "", map_test, NULL), KILN_EINVAL);
		assert_null(c);
		assert_non_null(strstr(kiln_error_last(), "launch expression"));
	}
	(void)state;
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

/* The queries of kiln runs / kiln tree and the RUN|TARGET lookup (archive/review.c). */
static void test_review__review_queries(void **state)
{
	fixture *f = *state;
	int64_t id = -1;
	assert_int_equal(kiln_db_run_find(f->db, &id, "1"), 0);
	assert_int_equal(id, 1);
	assert_int_equal(kiln_db_run_find(f->db, &id, "lion"), 0);
	assert_int_equal(id, 2);
	assert_int_equal(kiln_db_run_find(f->db, &id, "99"), KILN_ENOTFOUND);
	assert_int_equal(id, 0);
	assert_int_equal(kiln_db_run_find(f->db, &id, "adamw8bit"), KILN_ENOTFOUND);
	assert_non_null(strstr(kiln_error_last(), "no run of target adamw8bit"));
	char **names = NULL;
	size_t n = 0;
	assert_int_equal(kiln_db_run_targets(f->db, &names, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(names[0], "adamw");
	assert_string_equal(names[1], "lion");
	kiln_db_run_targets_free(names, n);
	cJSON *rows = NULL, *rev = NULL;
	assert_int_equal(kiln_db_review_runs(f->db, &rows, NULL), 0);
	assert_int_equal(cJSON_GetArraySize(rows), 2);
	const cJSON *r = cJSON_GetArrayItem(rows, 1); /* newest first: run 1 is second */
	assert_true(num(r, "id") == 1 && num(r, "candidates") == 15 && num(r, "passed") == 8 &&
		    num(r, "last_iteration") == 14 && num(r, "llm_calls") == 19 && num(r, "best_candidate") == f->ids.winner);
	cJSON_Delete(rows);
	assert_int_equal(kiln_db_review_runs(f->db, &rows, "nope"), 0);
	assert_int_equal(cJSON_GetArraySize(rows), 0);
	cJSON_Delete(rows);
	assert_int_equal(kiln_db_review_wm(f->db, &rev, 1, -1), 0);
	assert_true(num(rev, "iteration") == 14 && num(rev, "revision_index") == 6 && num(rev, "revisions") == 6);
	cJSON_Delete(rev);
	assert_int_equal(kiln_db_review_wm(f->db, &rev, 1, 3), 0);
	assert_true(num(rev, "iteration") == 0 && num(rev, "revision_index") == 1);
	cJSON_Delete(rev);
	assert_int_equal(kiln_db_review_wm(f->db, &rev, 99, -1), 0);
	assert_null(rev);
}

/* kiln_promote's refusals and errors before anything is built: nothing is written. */
static void test_review__promote_refusals(void **state)
{
	fixture *f = *state;
	kiln_promote_options o = KILN_PROMOTE_OPTIONS_INIT;
	kiln_promote_result *r = NULL;
	char *out = kiln_path_join(f->dir, "promoted"), id[24];
	const char *archs[] = {"sm_90"};
	o.db = f->db;
	o.workdir = f->dir;
	o.target = "adamw";
	o.out_dir = out;
	o.archs = archs;
	o.narchs = 1;
	snprintf(id, sizeof(id), "%lld", (long long)f->ids.mismatch);
	o.candidate = id;
	assert_int_equal(kiln_promote(&r, &o), 0);
	assert_int_equal(r->outcome, KILN_PROMOTE_REFUSED_RECORDED);
	assert_int_equal(r->candidate_id, f->ids.mismatch);
	assert_string_equal(r->recorded_outcome, "failed");
	assert_string_equal(r->reason, "mismatch");
	assert_string_equal(r->archs[0], "sm_90");
	assert_null(r->manifest);
	kiln_promote_result_free(r);
	assert_false(kiln_path_exists(out));
	o.target = "lion"; /* a candidate of adamw asked for as lion's */
	assert_int_equal(kiln_promote(&r, &o), KILN_EINVAL);
	assert_null(r);
	assert_non_null(strstr(kiln_error_last(), "belongs to target adamw"));
	o.target = "adamw";
	o.nseeds = 0;
	assert_int_equal(kiln_promote(&r, &o), KILN_EINVAL);
	assert_false(kiln_path_exists(out));
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_review__fake_history_shape),
		cmocka_unit_test(test_review__report_unpriced_cost_unknown),
		cmocka_unit_test(test_review__query_json_types),
		cmocka_unit_test(test_review__diff),
		cmocka_unit_test(test_review__report_html),
		cmocka_unit_test(test_review__find_and_detached_commit),
		cmocka_unit_test(test_review__c_expr),
		cmocka_unit_test(test_review__review_queries),
		cmocka_unit_test(test_review__promote_refusals),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
