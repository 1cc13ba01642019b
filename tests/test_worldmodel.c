/* Unit tests for worldmodel/: every edit op valid and rejected (one case per reason),
 * refs, frontier, selection order and determinism, the noise margin, JSON round trips,
 * bounded rendering, revision counting, and seeded random scripts checked for invariants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worldmodel/worldmodel.h"

/* ---------------- helpers ---------------- */

static kiln_wm *tree(void)
{
	kiln_wm *wm = NULL;
	assert_int_equal(kiln_wm_new(&wm, "adamw", "fused AdamW step", NULL), 0);
	return wm;
}

static kiln_wm_edit_result *apply(kiln_wm *wm, const char *json)
{
	kiln_wm_edit_result *r = NULL;
	kiln_err e = kiln_wm_apply(wm, &r, json, strlen(json));
	if (e)
		fail_msg("apply failed: %s", kiln_error_last());
	assert_non_null(r);
	assert_int_equal(kiln_wm_check(wm), 0);
	return r;
}

/* Applies a one-op script that must be rejected with a reason containing `why`, and
 * leaves the tree unchanged. */
static void rejected(kiln_wm *wm, const char *json, const char *why)
{
	kiln_wm *before = NULL;
	assert_int_equal(kiln_wm_clone(&before, wm), 0);
	kiln_wm_edit_result *r = apply(wm, json);
	if (r->n_rejected != 1 || r->n_applied != 0)
		fail_msg("%s: %zu applied, %zu rejected", json, r->n_applied, r->n_rejected);
	if (!strstr(r->rejected[0].reason, why))
		fail_msg("%s: reason \"%s\" lacks \"%s\"", json, r->rejected[0].reason, why);
	assert_null(strchr(r->rejected[0].reason, '\n'));
	assert_true(kiln_wm_equal(before, wm));
	kiln_wm_edit_result_free(r);
	kiln_wm_free(before);
}

static void applied(kiln_wm *wm, const char *json, size_t n)
{
	kiln_wm_edit_result *r = apply(wm, json);
	if (r->n_applied != n || r->n_rejected)
		fail_msg("%s: %zu applied (want %zu), first rejection: %s", json, r->n_applied, n,
			 r->n_rejected ? r->rejected[0].reason : "-");
	kiln_wm_edit_result_free(r);
}

static kiln_wm_node node(const kiln_wm *wm, int64_t id)
{
	kiln_wm_node n;
	assert_int_equal(kiln_wm_node_get(&n, wm, id), 0);
	return n;
}

static bool exists(const kiln_wm *wm, int64_t id)
{
	kiln_wm_node n;
	return kiln_wm_node_get(&n, wm, id) == 0;
}

/* three families #1 #2 #3 */
static kiln_wm *three(void)
{
	kiln_wm *wm = tree();
	applied(wm, "{\"ops\":["
		    "{\"op\":\"insert\",\"parent\":0,\"title\":\"Vectorized loads\",\"score\":0.8,\"difficulty\":2},"
		    "{\"op\":\"insert\",\"parent\":0,\"title\":\"Grid-stride loop\",\"score\":0.6,\"difficulty\":1},"
		    "{\"op\":\"insert\",\"parent\":0,\"title\":\"Persistent kernel\",\"score\":0.4,\"difficulty\":4}]}", 3);
	return wm;
}

static void pass(kiln_wm *wm, int64_t id, int64_t cand, double us)
{
	kiln_wm_attempt a = {true, cand, us, 0, true};
	assert_int_equal(kiln_wm_record_attempt(wm, NULL, id, &a), 0);
}

static void fail_attempt(kiln_wm *wm, int64_t id)
{
	kiln_wm_attempt a = {false, 0, 0, 0, true};
	assert_int_equal(kiln_wm_record_attempt(wm, NULL, id, &a), 0);
}

static bool contains(const int64_t *ids, size_t n, int64_t id)
{
	for (size_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/* ---------------- insert ---------------- */

static void test_worldmodel__insert_valid(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	assert_int_equal(kiln_wm_revision(wm), 0);
	kiln_wm_edit_result *r = apply(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"Vectorized loads\","
					   "\"description\":\"float4 loads and stores\",\"rationale\":\"memory bound\","
					   "\"difficulty\":2,\"score\":0.75,\"expected_speedup\":1.8,\"notes\":\"try first\"}],"
					   "\"reflection\":\"start simple\"}");
	assert_int_equal(r->n_ops, 1);
	assert_int_equal(r->n_applied, 1);
	assert_int_equal(r->n_created, 1);
	assert_int_equal(r->created[0], 1);
	assert_string_equal(r->reflection, "start simple");
	assert_int_equal(r->revision, 1);
	kiln_wm_edit_result_free(r);
	kiln_wm_node n = node(wm, 1);
	assert_int_equal(n.parent, 0);
	assert_int_equal(n.depth, 1);
	assert_string_equal(n.title, "Vectorized loads");
	assert_string_equal(n.description, "float4 loads and stores");
	assert_string_equal(n.rationale, "memory bound");
	assert_string_equal(n.notes, "try first");
	assert_int_equal(n.difficulty, 2);
	assert_true(n.score == 0.75 && n.expected_speedup == 1.8);
	assert_int_equal(n.status, KILN_WM_OPEN);
	assert_int_equal(n.created_rev, 1);
	assert_int_equal(kiln_wm_revision(wm), 1);
	/* defaults when estimates are left out; "#1" and "1" name node 1 */
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":\"#1\",\"title\":\"a\"},"
		    "{\"op\":\"insert\",\"parent\":\"1\",\"title\":\"b\"}]}", 2);
	n = node(wm, 2);
	assert_int_equal(n.parent, 1);
	assert_int_equal(n.difficulty, 3);
	assert_true(n.score == 0.5 && n.expected_speedup == 0);
	assert_int_equal(node(wm, 3).parent, 1);
	kiln_wm_free(wm);
}

static void test_worldmodel__insert_rejections(void **state)
{
	(void)state;
	kiln_wm_options o = KILN_WM_OPTIONS_INIT;
	o.max_depth = 2;
	kiln_wm *wm = NULL;
	assert_int_equal(kiln_wm_new(&wm, "adamw", NULL, &o), 0);
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"f\"},"
		    "{\"op\":\"insert\",\"parent\":1,\"title\":\"g\"}]}", 2);
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":42,\"title\":\"x\"}]}", "no node #42");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"title\":\"x\"}]}", "missing \"parent\"");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0.5,\"title\":\"x\"}]}", "must be a node id");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0}]}", "missing title");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"\"}]}", "missing title");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":7}]}", "\"title\" must be a string");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"difficulty\":0}]}", "difficulty 0 out of range 1-5");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"difficulty\":6}]}", "out of range 1-5");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"difficulty\":2.5}]}", "out of range 1-5");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"score\":1.5}]}", "score 1.5 out of range [0,1]");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"score\":-0.1}]}", "out of range [0,1]");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"score\":\"high\"}]}", "\"score\" must be a number");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"expected_speedup\":-2}]}", "expected_speedup");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"colour\":\"red\"}]}", "unknown field \"colour\"");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"status\":\"solved\"}]}", "unknown field \"status\"");
	/* LLM text quoted in a reason stays on one line (rejected() checks for '\n') */
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"diff\\nculty\":2}]}", "unknown field \"diff culty\"");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":2,\"title\":\"too deep\"}]}", "depth limit");
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"x\",\"ref\":\"12\"}]}", "not a number");
	char big[600];
	memset(big, 'x', 300);
	big[300] = 0;
	char json[800];
	snprintf(json, sizeof(json), "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"%s\"}]}", big);
	rejected(wm, json, "title longer than");
	assert_int_equal(kiln_wm_prune(wm, 2), 0);
	rejected(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":2,\"title\":\"x\"}]}", "parent #2 is pruned");
	kiln_wm_free(wm);
}

static void test_worldmodel__insert_cap_per_script(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	kiln_wm_edit_result *r = apply(wm, "{\"ops\":["
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"a\"},{\"op\":\"insert\",\"parent\":0,\"title\":\"b\"},"
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"c\"},{\"op\":\"insert\",\"parent\":0,\"title\":\"\"},"
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"d\"},{\"op\":\"insert\",\"parent\":0,\"title\":\"e\"}]}");
	/* the invalid op does not use up the cap; the sixth is over it */
	assert_int_equal(r->n_applied, 4);
	assert_int_equal(r->n_rejected, 2);
	assert_int_equal(r->rejected[0].index, 3);
	assert_non_null(strstr(r->rejected[0].reason, "missing title"));
	assert_int_equal(r->rejected[1].index, 5);
	assert_non_null(strstr(r->rejected[1].reason, "too many new nodes"));
	assert_non_null(strstr(r->rejected[1].op, "insert \"e\""));
	assert_false(exists(wm, 5));
	assert_string_equal(node(wm, 4).title, "d");
	kiln_wm_edit_result_free(r);
	/* the cap is configurable */
	kiln_wm_options o = KILN_WM_OPTIONS_INIT;
	o.max_new_per_script = 1;
	assert_int_equal(kiln_wm_set_options(wm, &o), 0);
	r = apply(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"a\"},{\"op\":\"insert\",\"parent\":0,\"title\":\"b\"}]}");
	assert_int_equal(r->n_applied, 1);
	assert_int_equal(r->n_rejected, 1);
	kiln_wm_edit_result_free(r);
	kiln_wm_free(wm);
}

/* ---------------- refs ---------------- */

static void test_worldmodel__refs_inside_a_script(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	kiln_wm_edit_result *r = apply(wm, "{\"ops\":["
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"fam\",\"ref\":\"f\"},"
		"{\"op\":\"insert\",\"parent\":\"f\",\"title\":\"child\",\"ref\":\"c\"},"
		"{\"op\":\"update\",\"id\":\"c\",\"score\":0.9},"
		"{\"op\":\"insert\",\"parent\":\"nope\",\"title\":\"x\"},"
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"\",\"ref\":\"bad\"},"
		"{\"op\":\"insert\",\"parent\":\"bad\",\"title\":\"y\"},"
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"dup\",\"ref\":\"f\"}]}");
	assert_int_equal(r->n_applied, 3);
	assert_int_equal(r->n_rejected, 4);
	assert_non_null(strstr(r->rejected[0].reason, "unknown ref \"nope\""));
	assert_non_null(strstr(r->rejected[1].reason, "missing title"));
	assert_non_null(strstr(r->rejected[2].reason, "ref \"bad\" names an op that was rejected"));
	assert_non_null(strstr(r->rejected[3].reason, "already used"));
	assert_int_equal(node(wm, 2).parent, 1);
	assert_true(node(wm, 2).score == 0.9);
	kiln_wm_edit_result_free(r);
	/* refs do not outlive their script */
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":\"c\",\"score\":0.1}]}", "unknown ref \"c\"");
	/* a split child's ref works like an insert's */
	applied(wm, "{\"ops\":[{\"op\":\"split\",\"id\":2,\"into\":[{\"title\":\"p\",\"ref\":\"p\"},{\"title\":\"q\"}]},"
		    "{\"op\":\"update\",\"id\":\"p\",\"notes\":\"from split\"}]}", 2);
	assert_string_equal(node(wm, 3).notes, "from split");
	kiln_wm_free(wm);
}

/* ---------------- update ---------------- */

static void test_worldmodel__update_valid_and_rejected(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	applied(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"score\":0.95,\"difficulty\":5,\"notes\":\"bandwidth bound\","
		    "\"title\":\"Grid-stride, 4 items\",\"expected_speedup\":1.3}]}", 1);
	kiln_wm_node n = node(wm, 2);
	assert_true(n.score == 0.95 && n.expected_speedup == 1.3);
	assert_int_equal(n.difficulty, 5);
	assert_string_equal(n.notes, "bandwidth bound");
	assert_string_equal(n.title, "Grid-stride, 4 items");
	assert_string_equal(n.description, "");
	assert_int_equal(n.updated_rev, 2);
	assert_int_equal(n.created_rev, 1);
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":0,\"notes\":\"x\"}]}", "root (#0) cannot be edited");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":9,\"notes\":\"x\"}]}", "no node #9");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2}]}", "nothing to update");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"score\":2}]}", "out of range [0,1]");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"difficulty\":9}]}", "out of range 1-5");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"title\":\"\"}]}", "missing title");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"parent\":1}]}", "unknown field \"parent\"");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"status\":\"solved\"}]}", "cannot be set by an edit");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"status\":\"too_hard\"}]}", "kiln decides");
	/* status: the LLM may prune, and reopen too-hard or pruned nodes, never a solved one */
	applied(wm, "{\"ops\":[{\"op\":\"update\",\"id\":3,\"status\":\"pruned\"}]}", 1);
	assert_int_equal(node(wm, 3).status, KILN_WM_PRUNED);
	applied(wm, "{\"ops\":[{\"op\":\"update\",\"id\":3,\"status\":\"open\"}]}", 1);
	assert_int_equal(node(wm, 3).status, KILN_WM_OPEN);
	assert_int_equal(kiln_wm_mark_too_hard(wm, 3), 0);
	applied(wm, "{\"ops\":[{\"op\":\"update\",\"id\":3,\"status\":\"open\",\"score\":0.2,"
		    "\"description\":\"simpler: one block per SM\"}]}", 1);
	assert_int_equal(node(wm, 3).status, KILN_WM_OPEN);
	pass(wm, 1, 11, 90);
	assert_int_equal(kiln_wm_solve(wm, 1, 0, 0), 0);
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":1,\"status\":\"open\"}]}", "cannot be reopened");
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":1,\"status\":\"pruned\"}]}", "prune its children");
	/* a solved node can still be re-scored and annotated */
	applied(wm, "{\"ops\":[{\"op\":\"update\",\"id\":1,\"score\":0.3,\"notes\":\"71% of peak\"}]}", 1);
	assert_int_equal(node(wm, 1).status, KILN_WM_SOLVED);
	kiln_wm_free(wm);
}

/* ---------------- split ---------------- */

static void test_worldmodel__split_replaces_a_leaf(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	fail_attempt(wm, 2);
	kiln_wm_edit_result *r = apply(wm, "{\"ops\":[{\"op\":\"split\",\"id\":2,\"into\":["
		"{\"title\":\"Grid-stride, 2 items\",\"score\":0.7},{\"title\":\"Grid-stride, 8 items\"}]}]}");
	assert_int_equal(r->n_applied, 1);
	assert_int_equal(r->n_created, 2);
	assert_int_equal(r->created[0], 4);
	assert_int_equal(r->created[1], 5);
	kiln_wm_edit_result_free(r);
	assert_false(exists(wm, 2));
	kiln_wm_node a = node(wm, 4), b = node(wm, 5);
	assert_int_equal(a.parent, 0);
	assert_int_equal(a.split_from, 2);
	assert_int_equal(b.split_from, 2);
	assert_true(a.score == 0.7);
	assert_true(b.score == 0.6); /* inherited */
	assert_int_equal(b.difficulty, 1);
	assert_int_equal(a.attempts, 0);
	assert_true(kiln_wm_is_frontier(wm, 4) && kiln_wm_is_frontier(wm, 5));
	/* a later reference to the split node explains where it went */
	rejected(wm, "{\"ops\":[{\"op\":\"update\",\"id\":2,\"score\":0.1}]}", "split into #4, #5");
	/* rejections */
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":1,\"title\":\"c\"}]}", 1);
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":1,\"into\":[{\"title\":\"x\"},{\"title\":\"y\"}]}]}", "only a leaf can be split");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":0,\"into\":[{\"title\":\"x\"},{\"title\":\"y\"}]}]}", "root (#0) cannot be split");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"x\"}]}]}", "at least 2");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3}]}", "at least 2");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"x\"},{\"score\":0.5}]}]}", "into[1]: missing title");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"x\"},{\"title\":\"y\",\"parent\":1}]}]}", "into[1]: unknown field \"parent\"");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"x\"},7]}]}", "into[1]: expected an object");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"x\",\"ref\":\"r\"},{\"title\":\"y\",\"ref\":\"r\"}]}]}", "used twice");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"a\"},{\"title\":\"b\"},"
		     "{\"title\":\"c\"},{\"title\":\"d\"},{\"title\":\"e\"}]}]}", "too many new nodes");
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"x\"},{\"title\":\"y\"}],\"why\":1}]}", "unknown field \"why\"");
	pass(wm, 6, 3, 50);
	assert_int_equal(kiln_wm_solve(wm, 6, 0, 0), 0);
	rejected(wm, "{\"ops\":[{\"op\":\"split\",\"id\":6,\"into\":[{\"title\":\"x\"},{\"title\":\"y\"}]}]}", "only an open or too-hard leaf");
	/* a too-hard leaf can be split into easier pieces */
	assert_int_equal(kiln_wm_mark_too_hard(wm, 3), 0);
	applied(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"x\"},{\"title\":\"y\"}]}]}", 1);
	kiln_wm_free(wm);
}

/* ---------------- delete ---------------- */

static void test_worldmodel__delete_only_unsolved_leaves(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":1,\"title\":\"c\"}]}", 1);
	rejected(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":1}]}", "has 1 children; only a leaf can be deleted");
	rejected(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":0}]}", "root (#0) cannot be deleted");
	rejected(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":77}]}", "no node #77");
	rejected(wm, "{\"ops\":[{\"op\":\"delete\"}]}", "missing \"id\"");
	rejected(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":3,\"force\":true}]}", "unknown field \"force\"");
	pass(wm, 3, 5, 10);
	assert_int_equal(kiln_wm_solve(wm, 3, 0, 0), 0);
	rejected(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":3}]}", "solved");
	applied(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":4},{\"op\":\"delete\",\"id\":1}]}", 2);
	assert_false(exists(wm, 4));
	assert_false(exists(wm, 1));
	rejected(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":4}]}", "deleted; ids are never reused");
	/* ids are never reused */
	kiln_wm_edit_result *r = apply(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"new\"}]}");
	assert_int_equal(r->created[0], 5);
	kiln_wm_edit_result_free(r);
	/* too-hard and pruned leaves may be deleted */
	assert_int_equal(kiln_wm_mark_too_hard(wm, 2), 0);
	assert_int_equal(kiln_wm_prune(wm, 5), 0);
	applied(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":2},{\"op\":\"delete\",\"id\":5}]}", 2);
	kiln_wm_free(wm);
}

/* ---------------- whole-script problems ---------------- */

static void test_worldmodel__unknown_and_malformed_ops(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	rejected(wm, "{\"ops\":[{\"op\":\"move\",\"id\":1}]}", "unknown op \"move\"");
	rejected(wm, "{\"ops\":[{\"id\":1}]}", "missing \"op\"");
	rejected(wm, "{\"ops\":[3]}", "expected an object");
	rejected(wm, "{\"ops\":[{\"op\":7}]}", "missing \"op\"");
	kiln_wm_edit_result *r = apply(wm, "{\"ops\":[]}");
	assert_int_equal(r->n_ops, 0);
	assert_int_equal(r->revision, 1); /* nothing applied: no new revision */
	kiln_wm_edit_result_free(r);
	kiln_wm_free(wm);
}

static void test_worldmodel__malformed_script_is_an_error(void **state)
{
	(void)state;
	kiln_wm *wm = three(), *before = NULL;
	assert_int_equal(kiln_wm_clone(&before, wm), 0);
	const char *bad[] = {
		"{\"ops\":[{\"op\":\"insert\",", "[1,2]", "{\"reflection\":\"x\"}", "{\"ops\":{}}",
		"{\"ops\":[],\"plan\":\"x\"}", "{\"ops\":[],\"reflection\":3}", "", "null",
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(bad); i++) {
		kiln_wm_edit_result *r = (kiln_wm_edit_result *)1;
		kiln_err e = kiln_wm_apply(wm, &r, bad[i], strlen(bad[i]));
		if (e != KILN_EINVAL)
			fail_msg("script %zu \"%s\" gave %d", i, bad[i], e);
		assert_null(r);
		assert_non_null(strstr(kiln_error_last(), "edit script"));
		assert_true(kiln_wm_equal(before, wm));
	}
	/* more than 64 ops */
	kiln_buf b;
	kiln_buf_init(&b, 0);
	kiln_buf_puts(&b, "{\"ops\":[");
	for (int i = 0; i < 65; i++)
		kiln_buf_printf(&b, "%s{\"op\":\"delete\",\"id\":99}", i ? "," : "");
	kiln_buf_puts(&b, "]}");
	kiln_wm_edit_result *r = NULL;
	assert_int_equal(kiln_wm_apply(wm, &r, b.data, b.len), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "at most 64"));
	kiln_buf_free(&b);
	assert_true(kiln_wm_equal(before, wm));
	kiln_wm_free(before);
	kiln_wm_free(wm);
}

static void test_worldmodel__rejections_render(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	kiln_wm_edit_result *r = apply(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":8},"
		"{\"op\":\"update\",\"id\":1,\"score\":0.1},{\"op\":\"insert\",\"parent\":0,\"title\":\"T\",\"score\":3}]}");
	char *text = NULL;
	assert_int_equal(kiln_wm_rejections_render(&text, r, 0), 0);
	assert_non_null(strstr(text, "1 of 3 ops applied, 2 rejected"));
	assert_non_null(strstr(text, "- op 0 (delete #8): no node #8"));
	assert_non_null(strstr(text, "- op 2 (insert \"T\" under #0): score 3 out of range [0,1]"));
	free(text);
	assert_int_equal(kiln_wm_rejections_to_json(&text, r), 0);
	assert_string_equal(text, "[{\"index\":0,\"op\":\"delete #8\",\"reason\":\"no node #8\"},"
				  "{\"index\":2,\"op\":\"insert \\\"T\\\" under #0\",\"reason\":\"score 3 out of range [0,1]\"}]");
	free(text);
	kiln_wm_edit_result_free(r);
	/* nothing rejected: nothing to say */
	r = apply(wm, "{\"ops\":[{\"op\":\"update\",\"id\":1,\"score\":0.2}]}");
	assert_int_equal(kiln_wm_rejections_render(&text, r, 0), 0);
	assert_string_equal(text, "");
	free(text);
	assert_int_equal(kiln_wm_rejections_to_json(&text, r), 0);
	assert_string_equal(text, "[]");
	free(text);
	kiln_wm_edit_result_free(r);
	/* bounded */
	kiln_buf b;
	kiln_buf_init(&b, 0);
	kiln_buf_puts(&b, "{\"ops\":[");
	for (int i = 0; i < 60; i++)
		kiln_buf_printf(&b, "%s{\"op\":\"delete\",\"id\":%d}", i ? "," : "", 100 + i);
	kiln_buf_puts(&b, "]}");
	r = apply(wm, b.data);
	kiln_buf_free(&b);
	assert_int_equal(r->n_rejected, 60);
	assert_int_equal(kiln_wm_rejections_render(&text, r, 600), 0);
	assert_true(strlen(text) <= 600);
	assert_non_null(strstr(text, "more"));
	free(text);
	kiln_wm_edit_result_free(r);
	/* an overlong reflection is kept truncated and said so */
	char *big = malloc(9100);
	memset(big, 'r', 9000);
	big[9000] = 0;
	char *json = kiln_asprintf("{\"ops\":[],\"reflection\":\"%s\"}", big);
	r = apply(wm, json);
	assert_int_equal(strlen(r->reflection), 8000);
	assert_int_equal(r->n_rejected, 1);
	assert_int_equal(r->rejected[0].index, -1);
	assert_int_equal(kiln_wm_rejections_render(&text, r, 0), 0);
	assert_non_null(strstr(text, "reflection truncated"));
	free(text);
	kiln_wm_edit_result_free(r);
	free(json);
	free(big);
	kiln_wm_free(wm);
}

/* ---------------- frontier ---------------- */

static void test_worldmodel__frontier(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":1,\"title\":\"unroll\"},"
		    "{\"op\":\"insert\",\"parent\":4,\"title\":\"unroll more\"}]}", 2);
	int64_t *ids = NULL;
	size_t n = 0;
	assert_int_equal(kiln_wm_frontier(&ids, &n, wm), 0);
	assert_int_equal(n, 3); /* families only: #4 waits for #1 to be solved */
	assert_true(contains(ids, n, 1) && contains(ids, n, 2) && contains(ids, n, 3));
	free(ids);
	pass(wm, 1, 7, 80);
	assert_int_equal(kiln_wm_solve(wm, 1, 0, 0), 0);
	assert_int_equal(kiln_wm_mark_too_hard(wm, 2), 0);
	assert_int_equal(kiln_wm_prune(wm, 3), 0);
	assert_int_equal(kiln_wm_frontier(&ids, &n, wm), 0);
	assert_int_equal(n, 1);
	assert_int_equal(ids[0], 4);
	free(ids);
	assert_false(kiln_wm_is_frontier(wm, 5));
	assert_false(kiln_wm_is_frontier(wm, 0));
	assert_int_equal(kiln_wm_family_of(wm, 5), 1);
	assert_int_equal(kiln_wm_family_of(wm, 1), 1);
	char *path = NULL;
	assert_int_equal(kiln_wm_path(&path, wm, 5), 0);
	assert_string_equal(path, "#1 Vectorized loads > #4 unroll > #5 unroll more");
	free(path);
	int64_t *kids = NULL;
	assert_int_equal(kiln_wm_children(&kids, &n, wm, 1), 0);
	assert_int_equal(n, 1);
	assert_int_equal(kids[0], 4);
	free(kids);
	/* an empty frontier is ENOTFOUND for select */
	assert_int_equal(kiln_wm_prune(wm, 4), 0);
	kiln_wm_choice c;
	assert_int_equal(kiln_wm_select(&c, wm, NULL), KILN_ENOTFOUND);
	kiln_wm_free(wm);
}

/* ---------------- kiln-side evidence ---------------- */

static void test_worldmodel__attempts_and_solve(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	bool improved = false;
	kiln_wm_attempt seed = {true, 1, 100.0, 2.0, false};
	assert_int_equal(kiln_wm_record_attempt(wm, &improved, KILN_WM_ROOT, &seed), 0);
	assert_true(improved);
	kiln_wm_attempt a = {true, 2, 80.0, 1.0, false};
	assert_int_equal(kiln_wm_record_attempt(wm, &improved, 1, &a), 0);
	assert_true(improved);
	kiln_wm_node n = node(wm, 1);
	assert_int_equal(n.best_candidate, 2);
	assert_true(fabs(n.best_speedup - 1.25) < 1e-12);
	/* within the spread: not a new best, and it counts as stale */
	kiln_wm_attempt b = {true, 3, 79.5, 1.0, false};
	assert_int_equal(kiln_wm_record_attempt(wm, &improved, 1, &b), 0);
	assert_false(improved);
	kiln_wm_attempt f = {false, 4, 0, 0, false};
	assert_int_equal(kiln_wm_record_attempt(wm, &improved, 1, &f), 0);
	n = node(wm, 1);
	assert_int_equal(n.best_candidate, 2);
	assert_int_equal(n.attempts, 3);
	assert_int_equal(n.passed, 2);
	assert_int_equal(n.stale, 2);
	kiln_wm_attempt c = {true, 5, 50.0, 1.0, false};
	assert_int_equal(kiln_wm_record_attempt(wm, &improved, 1, &c), 0);
	assert_true(improved);
	assert_int_equal(node(wm, 1).stale, 0);
	/* bad attempts are errors, not silently counted */
	kiln_wm_attempt bad = {true, 0, 10, 0, false};
	assert_int_equal(kiln_wm_record_attempt(wm, NULL, 1, &bad), KILN_EINVAL);
	assert_int_equal(kiln_wm_record_attempt(wm, NULL, 42, &c), KILN_ENOTFOUND);
	/* solve: with the recorded best, or an explicit one; never without a candidate */
	assert_int_equal(kiln_wm_solve(wm, 2, 0, 0), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "#2"));
	assert_int_equal(kiln_wm_solve(wm, 1, 0, 0), 0);
	n = node(wm, 1);
	assert_int_equal(n.status, KILN_WM_SOLVED);
	assert_int_equal(n.best_candidate, 5);
	assert_true(fabs(n.best_speedup - 2.0) < 1e-12);
	assert_int_equal(kiln_wm_solve(wm, 1, 0, 0), KILN_EINVAL); /* already solved */
	assert_int_equal(kiln_wm_solve(wm, 2, 9, 25.0), 0);
	assert_true(fabs(node(wm, 2).best_speedup - 4.0) < 1e-12);
	assert_int_equal(kiln_wm_solve(wm, KILN_WM_ROOT, 9, 25.0), KILN_EINVAL);
	assert_int_equal(kiln_wm_mark_too_hard(wm, 2), KILN_EINVAL); /* solved, not open */
	assert_int_equal(kiln_wm_prune(wm, KILN_WM_ROOT), KILN_EINVAL);
	assert_int_equal(kiln_wm_set_notes(wm, 3, "spills 40 registers"), 0);
	assert_string_equal(node(wm, 3).notes, "spills 40 registers");
	assert_int_equal(kiln_wm_check(wm), 0);
	kiln_wm_free(wm);
}

static void test_worldmodel__tuner_families(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	int64_t ids[3];
	const char *regions[] = {"BLOCK 64-128", "BLOCK 256-512", "BLOCK 1024"};
	for (int i = 0; i < 3; i++)
		assert_int_equal(kiln_wm_add_family(wm, &ids[i], regions[i], "knob region"), 0);
	assert_int_equal(ids[0], 1);
	assert_int_equal(ids[2], 3);
	assert_int_equal(kiln_wm_revision(wm), 3);
	assert_int_equal(node(wm, 2).depth, 1);
	assert_string_equal(node(wm, 2).title, "BLOCK 256-512");
	int64_t child;
	kiln_wm_node_spec s = KILN_WM_NODE_SPEC_INIT;
	s.title = "BLOCK=256 VEC=4";
	s.score = 0.9;
	assert_int_equal(kiln_wm_add_node(wm, &child, 2, &s), 0);
	assert_int_equal(node(wm, child).parent, 2);
	s.score = 7;
	assert_int_equal(kiln_wm_add_node(wm, NULL, 2, &s), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "score"));
	assert_int_equal(kiln_wm_add_family(wm, NULL, "", NULL), KILN_EINVAL);
	assert_int_equal(kiln_wm_add_node(wm, NULL, 99, &s), KILN_ENOTFOUND);
	assert_int_equal(kiln_wm_revision(wm), 4);
	kiln_wm_free(wm);
}

/* ---------------- initialisation ---------------- */

static void test_worldmodel__init_needs_three_families(void **state)
{
	(void)state;
	kiln_wm *wm = NULL;
	kiln_wm_edit_result *r = NULL;
	const char *two = "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"a\"},"
			  "{\"op\":\"insert\",\"parent\":0,\"title\":\"b\"},{\"op\":\"insert\",\"parent\":0,\"score\":9,\"title\":\"c\"}]}";
	assert_int_equal(kiln_wm_init_from_script(&wm, &r, "adamw", NULL, two, strlen(two), NULL), KILN_EINVAL);
	assert_null(wm);
	assert_non_null(strstr(kiln_error_last(), "created 2 kernel families"));
	assert_non_null(r);
	assert_int_equal(r->n_rejected, 1); /* still reported */
	kiln_wm_edit_result_free(r);
	const char *five = "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"a\",\"ref\":\"a\"},"
			   "{\"op\":\"insert\",\"parent\":0,\"title\":\"b\"},{\"op\":\"insert\",\"parent\":0,\"title\":\"c\"},"
			   "{\"op\":\"insert\",\"parent\":0,\"title\":\"d\"},{\"op\":\"insert\",\"parent\":\"a\",\"title\":\"a1\"}],"
			   "\"reflection\":\"memory bound: 28 bytes per element\"}";
	assert_int_equal(kiln_wm_init_from_script(&wm, &r, "adamw", "AdamW", five, strlen(five), NULL), 0);
	assert_int_equal(r->n_applied, 5); /* the initial cap (8) is larger than the usual 4 */
	assert_int_equal(kiln_wm_count(wm), 6);
	assert_string_equal(node(wm, 0).title, "adamw");
	assert_string_equal(node(wm, 0).description, "AdamW");
	kiln_wm_options o;
	kiln_wm_get_options(&o, wm);
	assert_int_equal(o.max_new_per_script, 4);
	kiln_wm_edit_result_free(r);
	kiln_wm_free(wm);
	const char *junk = "not json";
	assert_int_equal(kiln_wm_init_from_script(&wm, &r, "adamw", NULL, junk, strlen(junk), NULL), KILN_EINVAL);
	assert_null(r);
	assert_null(wm);
}

/* ---------------- selection ---------------- */

static void test_worldmodel__selection_follows_score(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	kiln_wm_choice *all = NULL;
	size_t n = 0;
	assert_int_equal(kiln_wm_rank(&all, &n, wm, NULL), 0);
	assert_int_equal(n, 3);
	/* no attempts yet: ln(1) = 0, so the score alone orders them */
	assert_int_equal(all[0].id, 1);
	assert_int_equal(all[1].id, 2);
	assert_int_equal(all[2].id, 3);
	assert_true(all[0].explore == 0 && all[0].family_bonus == 0 && all[0].penalty == 0);
	free(all);
	kiln_wm_choice c;
	assert_int_equal(kiln_wm_select(&c, wm, NULL), 0);
	assert_int_equal(c.id, 1);
	char *why = NULL;
	assert_int_equal(kiln_wm_choice_explain(&why, &c), 0);
	assert_non_null(strstr(why, "#1: score 0.80"));
	free(why);
	kiln_wm_free(wm);
}

static void test_worldmodel__exploration_lifts_untried_node(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"tried\",\"score\":0.62},"
		    "{\"op\":\"insert\",\"parent\":0,\"title\":\"untried\",\"score\":0.55}]}", 2);
	/* two passing attempts that each improved: no stale penalty, only exploration */
	pass(wm, 1, 1, 100);
	pass(wm, 1, 2, 90);
	kiln_wm_choice *all = NULL;
	size_t n = 0;
	assert_int_equal(kiln_wm_rank(&all, &n, wm, NULL), 0);
	assert_int_equal(n, 2);
	assert_int_equal(all[0].id, 2);
	assert_true(all[0].explore > all[1].explore);
	assert_true(all[0].family_bonus > all[1].family_bonus);
	assert_true(all[1].penalty == 0);
	assert_int_equal(all[1].attempts, 2);
	assert_int_equal(all[0].total_attempts, 2);
	double want = 0.55 + 0.2 * sqrt(log(3.0)) + 0.1 * sqrt(log(3.0));
	assert_true(fabs(all[0].total - want) < 1e-12);
	free(all);
	/* without the exploration terms the higher score wins */
	kiln_wm_select_options o = KILN_WM_SELECT_OPTIONS_INIT;
	o.c_explore = o.c_family = 0;
	kiln_wm_choice c;
	assert_int_equal(kiln_wm_select(&c, wm, &o), 0);
	assert_int_equal(c.id, 1);
	kiln_wm_free(wm);
}

static void test_worldmodel__stale_attempts_are_penalised(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"a\",\"score\":0.7},"
		    "{\"op\":\"insert\",\"parent\":0,\"title\":\"b\",\"score\":0.7}]}", 2);
	pass(wm, 1, 1, 100);
	pass(wm, 2, 2, 100);
	kiln_wm_select_options o = KILN_WM_SELECT_OPTIONS_INIT;
	for (int i = 0; i < 3; i++)
		fail_attempt(wm, 2);
	kiln_wm_choice *all = NULL;
	size_t n = 0;
	assert_int_equal(kiln_wm_rank(&all, &n, wm, &o), 0);
	assert_int_equal(all[0].id, 1);
	assert_int_equal(all[1].stale, 3);
	assert_true(fabs(all[1].penalty - 0.15) < 1e-12);
	free(all);
	kiln_wm_free(wm);
}

/* Actions in flight count as visits and are never handed out twice. */
static void test_worldmodel__pending_actions_count_as_visited(void **state)
{
	(void)state;
	kiln_wm *wm = three();
	kiln_wm_select_options o = KILN_WM_SELECT_OPTIONS_INIT;
	int64_t pend[2] = {1, 1};
	o.pending = pend;
	o.npending = 2;
	kiln_wm_choice *all = NULL;
	size_t n = 0;
	assert_int_equal(kiln_wm_rank(&all, &n, wm, &o), 0);
	assert_int_equal(n, 3);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(all[i].total_attempts, 2);
		if (all[i].id == 1) {
			assert_int_equal(all[i].pending, 2);
			assert_int_equal(all[i].attempts, 2);
		} else {
			assert_int_equal(all[i].pending, 0);
			assert_true(all[i].explore > 0.2 * sqrt(log(3.0) / 3) + 1e-12);
		}
	}
	free(all);
	kiln_wm_choice c;
	assert_int_equal(kiln_wm_select(&c, wm, &o), 0);
	assert_int_equal(c.id, 2); /* the best score is in flight: the next one */
	int64_t every[3] = {1, 2, 3};
	o.pending = every;
	o.npending = 3;
	assert_int_equal(kiln_wm_select(&c, wm, &o), KILN_ENOTFOUND);
	assert_non_null(strstr(kiln_error_last(), "in flight"));
	kiln_wm_free(wm);
}

static void test_worldmodel__selection_is_deterministic(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	for (int i = 0; i < 4; i++)
		applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"t\",\"score\":0.5},"
			    "{\"op\":\"insert\",\"parent\":0,\"title\":\"t\",\"score\":0.5}]}", 2);
	kiln_wm_select_options o = KILN_WM_SELECT_OPTIONS_INIT;
	int64_t first[8];
	bool differs = false;
	for (uint64_t seed = 0; seed < 16; seed++) {
		o.seed = seed;
		kiln_wm_choice *a = NULL, *b = NULL;
		size_t na, nb;
		assert_int_equal(kiln_wm_rank(&a, &na, wm, &o), 0);
		assert_int_equal(kiln_wm_rank(&b, &nb, wm, &o), 0);
		assert_int_equal(na, 8);
		for (size_t i = 0; i < na; i++)
			assert_int_equal(a[i].id, b[i].id);
		if (seed == 0)
			for (size_t i = 0; i < na; i++)
				first[i] = a[i].id;
		else
			for (size_t i = 0; i < na; i++)
				differs |= first[i] != a[i].id;
		free(a);
		free(b);
	}
	assert_true(differs); /* the seed really breaks the ties */
	kiln_wm_free(wm);
}

/* ---------------- noise margin ---------------- */

static void test_worldmodel__noise_margin(void **state)
{
	(void)state;
	/* measured: must beat by more than the larger spread */
	assert_false(kiln_wm_is_new_best(100, 3, 98, 1, false, 0.01));
	assert_false(kiln_wm_is_new_best(100, 1, 98, 2, false, 0.01));
	assert_true(kiln_wm_is_new_best(100, 1, 97, 2, false, 0.01));
	assert_true(kiln_wm_is_new_best(100, 0, 99.99, 0, false, 0.01));
	assert_false(kiln_wm_is_new_best(100, 0, 100, 0, false, 0.01));
	/* modeled: the tie band (relative to the old time) */
	assert_false(kiln_wm_is_new_best(100, 0, 99.5, 0, true, KILN_WM_TIE_BAND_DEFAULT));
	assert_false(kiln_wm_is_new_best(100, 0, 99.0, 0, true, KILN_WM_TIE_BAND_DEFAULT));
	assert_true(kiln_wm_is_new_best(100, 0, 98.9, 0, true, KILN_WM_TIE_BAND_DEFAULT));
	assert_true(kiln_wm_is_new_best(100, 0, 99.5, 0, true, 0.001));
	assert_true(kiln_wm_is_new_best(100, 50, 99.5, 50, true, 0.001));   /* spreads ignored when modeled */
	assert_false(kiln_wm_is_new_best(100, 50, 99.5, 50, false, 0.001)); /* the band when measured */
	/* no old best; bad new times */
	assert_true(kiln_wm_is_new_best(0, 0, 5, 1, false, 0.01));
	assert_false(kiln_wm_is_new_best(0, 0, 0, 0, false, 0.01));
	assert_false(kiln_wm_is_new_best(100, 0, NAN, 0, false, 0.01));
	assert_false(kiln_wm_is_new_best(100, 0, -1, 0, true, 0.01));
	assert_false(kiln_wm_is_new_best(100, 0, INFINITY, 0, true, 0.01));
	/* the tree uses its tie band when recording attempts */
	kiln_wm *wm = three();
	bool improved;
	kiln_wm_attempt a = {true, 1, 100, 0, true};
	assert_int_equal(kiln_wm_record_attempt(wm, &improved, 1, &a), 0);
	a.candidate_id = 2, a.time_us = 99.5;
	assert_int_equal(kiln_wm_record_attempt(wm, &improved, 1, &a), 0);
	assert_false(improved);
	assert_int_equal(node(wm, 1).best_candidate, 1);
	kiln_wm_free(wm);
}

/* ---------------- JSON ---------------- */

static kiln_wm *busy_tree(void)
{
	kiln_wm *wm = three();
	kiln_wm_attempt seed = {true, 1, 812.4375, 3.25, false};
	assert_int_equal(kiln_wm_record_attempt(wm, NULL, 0, &seed), 0);
	applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":1,\"title\":\"Unroll \\\"x4\\\"\\n\",\"description\":"
		    "\"ünïcödé ✓\",\"score\":0.123456789012345678,\"expected_speedup\":1.1}]}", 1);
	kiln_wm_attempt a = {true, 1234567890123LL, 0.1 + 0.2, 0.0001, false};
	assert_int_equal(kiln_wm_record_attempt(wm, NULL, 1, &a), 0);
	assert_int_equal(kiln_wm_solve(wm, 1, 0, 0), 0);
	fail_attempt(wm, 4);
	assert_int_equal(kiln_wm_mark_too_hard(wm, 2), 0);
	applied(wm, "{\"ops\":[{\"op\":\"split\",\"id\":3,\"into\":[{\"title\":\"p\"},{\"title\":\"q\"}]}]}", 1);
	assert_int_equal(kiln_wm_prune(wm, 6), 0);
	return wm;
}

static void test_worldmodel__json_round_trip(void **state)
{
	(void)state;
	kiln_wm *wm = busy_tree(), *back = NULL;
	char *j1 = NULL, *j2 = NULL;
	assert_int_equal(kiln_wm_to_json(&j1, wm), 0);
	assert_int_equal(kiln_wm_from_json(&back, j1, strlen(j1), NULL), 0);
	assert_true(kiln_wm_equal(wm, back));
	assert_int_equal(kiln_wm_to_json(&j2, back), 0);
	assert_string_equal(j1, j2);
	kiln_wm_node n = node(back, 1);
	assert_int_equal(n.best_candidate, 1234567890123LL);
	assert_true(n.best_us == 0.1 + 0.2);
	assert_string_equal(node(back, 4).description, "ünïcödé ✓");
	/* the copy behaves like the original: same next id */
	kiln_wm_edit_result *r = apply(back, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"z\"}]}");
	assert_int_equal(r->created[0], 7);
	kiln_wm_edit_result_free(r);
	free(j1);
	free(j2);
	kiln_wm_free(back);
	kiln_wm_free(wm);
}

static void test_worldmodel__json_strict_loading(void **state)
{
	(void)state;
	kiln_wm *wm = NULL;
	const char *node0 = "{\"id\":0,\"parent\":-1,\"title\":\"adamw\",\"description\":\"\",\"rationale\":\"\","
			    "\"notes\":\"\",\"difficulty\":3,\"score\":0.5,\"expected_speedup\":0,\"status\":\"solved\","
			    "\"attempts\":0,\"passed\":0,\"stale\":0,\"best_candidate\":0,\"best_us\":0,"
			    "\"best_spread_us\":0,\"best_speedup\":0,\"split_from\":0,\"created_rev\":0,\"updated_rev\":0}";
	struct { const char *node1; const char *why; } cases[] = {
		{"\"parent\":7,\"status\":\"open\",\"best_candidate\":0,\"best_us\":0", "orphan"},
		{"\"parent\":0,\"status\":\"solved\",\"best_candidate\":0,\"best_us\":0", "solved without a best candidate"},
		{"\"parent\":0,\"status\":\"done\",\"best_candidate\":0,\"best_us\":0", "unknown status \"done\""},
		{"\"parent\":0,\"status\":\"open\",\"best_candidate\":3,\"best_us\":0", "inconsistent"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		char *json = kiln_asprintf("{\"version\":1,\"revision\":1,\"next_id\":2,\"nodes\":[%s,"
					   "{\"id\":1,%s,\"title\":\"f\",\"description\":\"\",\"rationale\":\"\",\"notes\":\"\","
					   "\"difficulty\":3,\"score\":0.5,\"expected_speedup\":0,\"attempts\":0,\"passed\":0,"
					   "\"stale\":0,\"best_spread_us\":0,\"best_speedup\":0,\"split_from\":0,"
					   "\"created_rev\":1,\"updated_rev\":1}]}", node0, cases[i].node1);
		kiln_err e = kiln_wm_from_json(&wm, json, strlen(json), NULL);
		if (e != KILN_EINVAL || !strstr(kiln_error_last(), cases[i].why))
			fail_msg("case %zu: %d \"%s\"", i, e, kiln_error_last());
		assert_null(wm);
		free(json);
	}
	/* a good tree, then damaged one field at a time */
	kiln_wm *good = busy_tree();
	char *j = NULL;
	assert_int_equal(kiln_wm_to_json(&j, good), 0);
	struct { const char *from, *to, *why; } edits[] = {
		{"\"score\":0.8", "\"score\":1.8", "out of range"},
		{"\"difficulty\":2", "\"difficulty\":0", "difficulty"},
		{"\"version\":1", "\"version\":9", "version 9"},
		{"\"next_id\":7", "\"next_id\":3", "next_id"},
		{"\"title\":\"Vectorized loads\"", "\"title\":\"Vectorized loads\",\"colour\":1", "unknown field \"colour\""},
		{"\"attempts\":1,\"passed\":1", "\"attempts\":1,\"passed\":2", "attempt counts"},
		{"\"revision\":", "\"revision\":\"x\",\"r\":", "revision"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(edits); i++) {
		char *at = strstr(j, edits[i].from);
		if (!at)
			fail_msg("edit %zu: \"%s\" not in %s", i, edits[i].from, j);
		char *bad = kiln_asprintf("%.*s%s%s", (int)(at - j), j, edits[i].to, at + strlen(edits[i].from));
		kiln_err e = kiln_wm_from_json(&wm, bad, strlen(bad), NULL);
		if (e != KILN_EINVAL || !strstr(kiln_error_last(), edits[i].why))
			fail_msg("edit %zu: %d \"%s\"", i, e, kiln_error_last());
		assert_null(wm);
		free(bad);
	}
	assert_int_equal(kiln_wm_from_json(&wm, "[]", 2, NULL), KILN_EINVAL);
	assert_int_equal(kiln_wm_from_json(&wm, "{", 1, NULL), KILN_EINVAL);
	free(j);
	kiln_wm_free(good);
}

/* ---------------- rendering ---------------- */

static void test_worldmodel__render_content(void **state)
{
	(void)state;
	kiln_wm *wm = busy_tree();
	assert_int_equal(kiln_wm_set_notes(wm, 1, "memory bound,\n71% of peak"), 0);
	kiln_wm_render_options o = KILN_WM_RENDER_OPTIONS_INIT;
	o.highlight = 4;
	char *t = NULL;
	assert_int_equal(kiln_wm_render(&t, wm, &o), 0);
	assert_non_null(strstr(t, "Frontier: #4, #5\n"));
	assert_non_null(strstr(t, "#0 adamw [target] | seed 812.4us"));
	assert_non_null(strstr(t, "  #1 [solved] Vectorized loads | s0.80 d2 | 1 tries, 1 passed | best 0.3us = 2.71e+03x (cand 1234567890123)"));
	assert_non_null(strstr(t, "notes: memory bound, 71% of peak")); /* one line */
	assert_non_null(strstr(t, "    > #4 [open] Unroll \"x4\"  | s0.12 d3 exp 1.1x | 1 tries, 0 passed  <- chosen"));
	assert_non_null(strstr(t, "what: ünïcödé ✓"));
	assert_non_null(strstr(t, "  #2 [too_hard] Grid-stride loop"));
	assert_non_null(strstr(t, "  #6 [pruned] q"));
	free(t);
	/* an already solved action (the reflection prompt) is not "chosen" */
	o.highlight = 1;
	assert_int_equal(kiln_wm_render(&t, wm, &o), 0);
	assert_null(strstr(t, "<- chosen"));
	assert_non_null(strstr(t, "(cand 1234567890123)  <- just closed"));
	free(t);
	kiln_wm_free(wm);
}

static void test_worldmodel__render_is_bounded(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	/* a wide and deep tree: 30 families, a chain of 7 under the first, a pruned subtree */
	int64_t id = 0, fam1 = 0, pruned = 0;
	for (int i = 0; i < 30; i++) {
		char title[64];
		snprintf(title, sizeof(title), "family %d with a fairly long descriptive title", i);
		assert_int_equal(kiln_wm_add_family(wm, &id, title, "a description that goes on"), 0);
		if (i == 0)
			fam1 = id;
		if (i == 1)
			pruned = id;
	}
	kiln_wm_node_spec s = KILN_WM_NODE_SPEC_INIT;
	s.title = "deeper";
	int64_t parent = fam1;
	/* the depth limit (8) holds for direct construction too */
	for (int i = 0; i < 7; i++) {
		assert_int_equal(kiln_wm_add_node(wm, &id, parent, &s), 0);
		parent = id;
	}
	assert_int_equal(kiln_wm_add_node(wm, NULL, parent, &s), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "deeper than 8 levels"));
	for (int i = 0; i < 5; i++)
		assert_int_equal(kiln_wm_add_node(wm, NULL, pruned, &s), 0);
	assert_int_equal(kiln_wm_prune(wm, pruned), 0);
	char *t = NULL;
	kiln_wm_render_options o = KILN_WM_RENDER_OPTIONS_INIT;
	o.max_bytes = 1500;
	o.max_depth = 4;
	assert_int_equal(kiln_wm_render(&t, wm, &o), 0);
	assert_true(strlen(t) <= 1500);
	assert_non_null(strstr(t, "more nodes not shown)\n"));
	assert_non_null(strstr(t, "(+5 below, pruned hidden)"));
	assert_non_null(strstr(t, "(+4 deeper hidden)"));
	assert_non_null(strstr(t, "\n        #"));   /* depth 4 is shown... */
	assert_null(strstr(t, "\n          #")); /* ...nothing deeper */
	free(t);
	/* with a large budget everything is accounted for and nothing is cut */
	o.max_bytes = 100000;
	assert_int_equal(kiln_wm_render(&t, wm, &o), 0);
	assert_null(strstr(t, "not shown"));
	free(t);
	/* every budget is honoured */
	for (size_t cap = 100; cap < 4000; cap += 97) {
		o.max_bytes = cap;
		assert_int_equal(kiln_wm_render(&t, wm, &o), 0);
		assert_true(strlen(t) <= (cap < 400 ? 400 : cap));
		free(t);
	}
	kiln_wm_free(wm);
}

/* ---------------- revisions ---------------- */

static void test_worldmodel__revision_counting(void **state)
{
	(void)state;
	kiln_wm *wm = tree();
	int64_t rev = 0;
#define REV(expr, delta)                                      \
	do {                                                  \
		expr;                                         \
		rev += (delta);                               \
		assert_int_equal(kiln_wm_revision(wm), rev);  \
	} while (0)
	REV(applied(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"a\"},"
			"{\"op\":\"insert\",\"parent\":0,\"title\":\"b\"}]}", 2), 1);
	REV(rejected(wm, "{\"ops\":[{\"op\":\"delete\",\"id\":9}]}", "no node"), 0);
	REV(pass(wm, 1, 3, 10), 1);
	REV(fail_attempt(wm, 2), 1);
	REV(assert_int_equal(kiln_wm_solve(wm, 1, 0, 0), 0), 1);
	REV(assert_int_equal(kiln_wm_mark_too_hard(wm, 2), 0), 1);
	REV(assert_int_equal(kiln_wm_prune(wm, 2), 0), 1);
	REV(assert_int_equal(kiln_wm_set_notes(wm, 1, "n"), 0), 1);
	REV(assert_int_equal(kiln_wm_add_family(wm, NULL, "c", NULL), 0), 1);
	/* failures change nothing */
	REV(assert_int_equal(kiln_wm_solve(wm, 99, 1, 1), KILN_ENOTFOUND), 0);
	REV(assert_int_equal(kiln_wm_add_family(wm, NULL, NULL, NULL), KILN_EINVAL), 0);
	kiln_wm_edit_result *r = NULL;
	REV(assert_int_equal(kiln_wm_apply(wm, &r, "{", 1), KILN_EINVAL), 0);
#undef REV
	assert_int_equal(node(wm, 1).updated_rev, 7);
	assert_int_equal(node(wm, 2).updated_rev, 6);
	kiln_wm_free(wm);
}


/* ---------------- allocation failures ---------------- */

static void *failing_malloc(size_t n)
{
	return kiln_alloc_should_fail() ? NULL : malloc(n);
}

/* Every allocation of a change is made to fail in turn (kiln's and cJSON's): the call
 * fails with a clean error and the tree is exactly as it was, as worldmodel.h promises;
 * with enough allocations it succeeds. */
static void test_worldmodel__allocation_failures_leave_the_tree(void **state)
{
	(void)state;
	cJSON_Hooks hooks = {failing_malloc, free};
	cJSON_InitHooks(&hooks);
	const char *script =
		"{\"ops\":[{\"op\":\"insert\",\"ref\":\"f\",\"parent\":0,\"title\":\"vectorize\","
		"\"description\":\"float4 loads\",\"score\":0.6,\"difficulty\":2},"
		"{\"op\":\"insert\",\"parent\":\"f\",\"title\":\"unroll by 4\",\"score\":0.4},"
		"{\"op\":\"update\",\"id\":1,\"notes\":\"memory bound\"}],\"reflection\":\"try wide loads\"}";
	int failures = 0;
	bool done = false;
	for (long n = 0; n < 10000 && !done; n++) {
		kiln_wm *wm = tree(), *before = NULL;
		kiln_wm_edit_result *r = apply(wm, "{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"tiles\"}]}");
		kiln_wm_edit_result_free(r);
		r = NULL;
		assert_int_equal(kiln_wm_clone(&before, wm), 0);
		kiln_alloc_fail_after(n);
		kiln_err e = kiln_wm_apply(wm, &r, script, strlen(script));
		kiln_alloc_fail_after(-1);
		if (e == KILN_OK) {
			assert_int_equal(r->n_applied, 3);
			done = true;
		} else {
			assert_true(e == KILN_ENOMEM || e == KILN_EINVAL); /* cJSON reports OOM as unparsable */
			assert_null(r);
			assert_true(strlen(kiln_error_last()) > 0);
			assert_true(kiln_wm_equal(wm, before));
			failures++;
		}
		assert_int_equal(kiln_wm_check(wm), 0);
		kiln_wm_edit_result_free(r);
		kiln_wm_free(before);
		kiln_wm_free(wm);
	}
	assert_true(done);
	assert_true(failures >= 10);

	/* the direct mutators: an out-of-memory note or node changes nothing */
	for (long n = 0; n < 8; n++) {
		kiln_wm *wm = tree(), *before = NULL;
		assert_int_equal(kiln_wm_clone(&before, wm), 0);
		kiln_alloc_fail_after(n);
		kiln_err e1 = kiln_wm_set_notes(wm, KILN_WM_ROOT, "a long note about the bound");
		kiln_alloc_fail_after(-1);
		if (e1)
			assert_true(kiln_wm_equal(wm, before));
		kiln_wm_free(before);
		assert_int_equal(kiln_wm_clone(&before, wm), 0);
		int64_t id = 0;
		kiln_alloc_fail_after(n);
		kiln_err e2 = kiln_wm_add_family(wm, &id, "a family", "with a description");
		kiln_alloc_fail_after(-1);
		if (e2) {
			assert_int_equal(e2, KILN_ENOMEM);
			assert_true(kiln_wm_equal(wm, before));
		}
		assert_int_equal(kiln_wm_check(wm), 0);
		kiln_wm_free(before);
		kiln_wm_free(wm);
	}
	cJSON_InitHooks(NULL);
}

/* ---------------- property: random scripts keep every invariant ---------------- */

static void random_field(kiln_buf *b, kiln_rng *g)
{
	switch (kiln_rng_below(g, 9)) {
	case 0: kiln_buf_printf(b, ",\"score\":%.3f", kiln_rng_uniform(g) * 1.3 - 0.1); break;
	case 1: kiln_buf_printf(b, ",\"difficulty\":%d", (int)kiln_rng_below(g, 7)); break;
	case 2: kiln_buf_printf(b, ",\"notes\":\"n%d\"", (int)kiln_rng_below(g, 100)); break;
	case 3: kiln_buf_printf(b, ",\"expected_speedup\":%.2f", kiln_rng_uniform(g) * 3 - 0.5); break;
	case 4: kiln_buf_puts(b, kiln_rng_below(g, 2) ? ",\"status\":\"pruned\"" : ",\"status\":\"open\""); break;
	case 5: kiln_buf_puts(b, ",\"bogus\":1"); break;
	case 6: kiln_buf_puts(b, ",\"description\":\"d\""); break;
	default: break;
	}
}

static void random_id(kiln_buf *b, kiln_rng *g, const char *key, int64_t next_id, int nrefs)
{
	if (nrefs && kiln_rng_below(g, 4) == 0)
		kiln_buf_printf(b, "\"%s\":\"r%d\"", key, (int)kiln_rng_below(g, (uint64_t)nrefs + 1));
	else
		kiln_buf_printf(b, "\"%s\":%lld", key, (long long)kiln_rng_below(g, (uint64_t)next_id + 2));
}

static char *random_script(kiln_rng *g, int64_t next_id)
{
	kiln_buf b;
	kiln_buf_init(&b, 0);
	kiln_buf_puts(&b, "{\"ops\":[");
	int nops = (int)kiln_rng_below(g, 7), nrefs = 0;
	for (int i = 0; i < nops; i++) {
		kiln_buf_puts(&b, i ? ",{" : "{");
		switch (kiln_rng_below(g, 10)) {
		case 0: case 1: case 2: case 3:
			kiln_buf_puts(&b, "\"op\":\"insert\",");
			random_id(&b, g, "parent", next_id, nrefs);
			if (kiln_rng_below(g, 8))
				kiln_buf_printf(&b, ",\"title\":\"t%d\"", i);
			if (kiln_rng_below(g, 2))
				kiln_buf_printf(&b, ",\"ref\":\"r%d\"", nrefs++);
			random_field(&b, g);
			break;
		case 4: case 5:
			kiln_buf_puts(&b, "\"op\":\"update\",");
			random_id(&b, g, "id", next_id, nrefs);
			random_field(&b, g);
			random_field(&b, g);
			break;
		case 6: case 7:
			kiln_buf_puts(&b, "\"op\":\"split\",");
			random_id(&b, g, "id", next_id, nrefs);
			kiln_buf_puts(&b, ",\"into\":[");
			for (int k = 0, nk = (int)kiln_rng_below(g, 4); k < nk; k++) {
				kiln_buf_printf(&b, "%s{\"title\":\"s%d\"", k ? "," : "", k);
				if (kiln_rng_below(g, 3) == 0)
					kiln_buf_printf(&b, ",\"ref\":\"r%d\"", nrefs++);
				random_field(&b, g);
				kiln_buf_puts(&b, "}");
			}
			kiln_buf_puts(&b, "]");
			break;
		case 8:
			kiln_buf_puts(&b, "\"op\":\"delete\",");
			random_id(&b, g, "id", next_id, nrefs);
			break;
		default:
			kiln_buf_puts(&b, "\"op\":\"frobnicate\"");
			break;
		}
		kiln_buf_puts(&b, "}");
	}
	kiln_buf_puts(&b, "]}");
	return kiln_buf_detach(&b);
}

static void random_kiln_update(kiln_wm *wm, kiln_rng *g, int64_t *cand)
{
	size_t n = kiln_wm_count(wm);
	kiln_wm_node x;
	assert_int_equal(kiln_wm_node_at(&x, wm, kiln_rng_below(g, n)), 0);
	kiln_wm_attempt a = {kiln_rng_below(g, 2) == 1, ++*cand, 10 + kiln_rng_uniform(g) * 100, 0, true};
	switch (kiln_rng_below(g, 5)) {
	case 0: case 1: (void)kiln_wm_record_attempt(wm, NULL, x.id, &a); break;
	case 2: (void)kiln_wm_solve(wm, x.id, kiln_rng_below(g, 2) ? 0 : ++*cand, 50); break;
	case 3: (void)kiln_wm_mark_too_hard(wm, x.id); break;
	default: if (kiln_rng_below(g, 4) == 0) (void)kiln_wm_prune(wm, x.id); break;
	}
}

static void test_worldmodel__random_scripts_keep_invariants(void **state)
{
	(void)state;
	kiln_rng g;
	kiln_rng_seed(&g, 20260223);
	int64_t cand = 0;
	size_t total_applied = 0, total_rejected = 0;
	for (int run = 0; run < 20; run++) {
		kiln_wm *wm = tree();
		int64_t max_seen = 0;
		for (int step = 0; step < 60; step++) {
			kiln_wm_node root;
			assert_int_equal(kiln_wm_node_at(&root, wm, kiln_wm_count(wm) - 1), 0);
			int64_t next = root.id + 1;
			char *s = random_script(&g, next);
			int64_t rev = kiln_wm_revision(wm);
			kiln_wm_edit_result *r = NULL;
			assert_int_equal(kiln_wm_apply(wm, &r, s, strlen(s)), 0);
			assert_int_equal(r->n_applied + (r->n_rejected), r->n_ops);
			assert_int_equal(kiln_wm_revision(wm), rev + (r->n_applied > 0));
			for (size_t i = 0; i < r->n_created; i++) {
				assert_true(r->created[i] > max_seen); /* never reused */
				max_seen = r->created[i];
			}
			total_applied += r->n_applied;
			total_rejected += r->n_rejected;
			kiln_wm_edit_result_free(r);
			free(s);
			random_kiln_update(wm, &g, &cand);
			if (kiln_wm_check(wm))
				fail_msg("run %d step %d: %s", run, step, kiln_error_last());
			/* parents exist and are earlier; solved nodes have a candidate */
			for (size_t i = 1; i < kiln_wm_count(wm); i++) {
				kiln_wm_node x, p;
				assert_int_equal(kiln_wm_node_at(&x, wm, i), 0);
				assert_int_equal(kiln_wm_node_get(&p, wm, x.parent), 0);
				assert_true(p.id < x.id);
				assert_true(x.depth >= 1 && x.depth <= 8);
				if (x.status == KILN_WM_SOLVED)
					assert_true(x.best_candidate > 0);
			}
			if (step % 10 == 9) {
				char *j = NULL, *t = NULL;
				kiln_wm *back = NULL;
				assert_int_equal(kiln_wm_to_json(&j, wm), 0);
				assert_int_equal(kiln_wm_from_json(&back, j, strlen(j), NULL), 0);
				assert_true(kiln_wm_equal(wm, back));
				kiln_wm_render_options o = KILN_WM_RENDER_OPTIONS_INIT;
				o.max_bytes = 2000;
				assert_int_equal(kiln_wm_render(&t, wm, &o), 0);
				assert_true(strlen(t) <= 2000);
				kiln_wm_choice c;
				kiln_err e = kiln_wm_select(&c, wm, NULL);
				assert_true(e == 0 || e == KILN_ENOTFOUND);
				if (!e)
					assert_true(kiln_wm_is_frontier(wm, c.id));
				free(t);
				free(j);
				kiln_wm_free(back);
			}
		}
		kiln_wm_free(wm);
	}
	/* the generator exercises both outcomes */
	assert_true(total_applied > 300);
	assert_true(total_rejected > 300);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_worldmodel__insert_valid),
		cmocka_unit_test(test_worldmodel__insert_rejections),
		cmocka_unit_test(test_worldmodel__insert_cap_per_script),
		cmocka_unit_test(test_worldmodel__refs_inside_a_script),
		cmocka_unit_test(test_worldmodel__update_valid_and_rejected),
		cmocka_unit_test(test_worldmodel__split_replaces_a_leaf),
		cmocka_unit_test(test_worldmodel__delete_only_unsolved_leaves),
		cmocka_unit_test(test_worldmodel__unknown_and_malformed_ops),
		cmocka_unit_test(test_worldmodel__malformed_script_is_an_error),
		cmocka_unit_test(test_worldmodel__rejections_render),
		cmocka_unit_test(test_worldmodel__frontier),
		cmocka_unit_test(test_worldmodel__attempts_and_solve),
		cmocka_unit_test(test_worldmodel__tuner_families),
		cmocka_unit_test(test_worldmodel__init_needs_three_families),
		cmocka_unit_test(test_worldmodel__selection_follows_score),
		cmocka_unit_test(test_worldmodel__exploration_lifts_untried_node),
		cmocka_unit_test(test_worldmodel__stale_attempts_are_penalised),
		cmocka_unit_test(test_worldmodel__pending_actions_count_as_visited),
		cmocka_unit_test(test_worldmodel__selection_is_deterministic),
		cmocka_unit_test(test_worldmodel__noise_margin),
		cmocka_unit_test(test_worldmodel__json_round_trip),
		cmocka_unit_test(test_worldmodel__json_strict_loading),
		cmocka_unit_test(test_worldmodel__render_content),
		cmocka_unit_test(test_worldmodel__render_is_bounded),
		cmocka_unit_test(test_worldmodel__revision_counting),
		cmocka_unit_test(test_worldmodel__random_scripts_keep_invariants),
		cmocka_unit_test(test_worldmodel__allocation_failures_leave_the_tree),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
