/* libFuzzer harness for the world model's edit-script language: applies the input as an
 * edit script to a small tree with every node status, then checks what must always hold —
 * the invariants, a lossless JSON round trip, bounded rendering, a frontier selection — and
 * also feeds the input to the strict tree loader. Build: clang -fsanitize=fuzzer,address. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "worldmodel/worldmodel.h"

static void must(int ok, const char *what)
{
	if (!ok) {
		fprintf(stderr, "fuzz_editscript: %s: %s\n", what, kiln_error_last());
		abort();
	}
}

static kiln_wm *fixture(void)
{
	static const char init[] =
		"{\"ops\":[{\"op\":\"insert\",\"parent\":0,\"title\":\"vector loads\",\"ref\":\"a\"},"
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"grid stride\"},"
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"persistent\"},"
		"{\"op\":\"insert\",\"parent\":\"a\",\"title\":\"unroll\"},"
		"{\"op\":\"insert\",\"parent\":0,\"title\":\"warp per row\"}]}";
	kiln_wm *wm = NULL;
	kiln_wm_edit_result *r = NULL;
	must(kiln_wm_init_from_script(&wm, &r, "target", NULL, init, sizeof(init) - 1, NULL) == 0, "fixture");
	kiln_wm_edit_result_free(r);
	kiln_wm_attempt seed = {true, 1, 100, 1, false}, a = {true, 2, 80, 1, false};
	must(kiln_wm_record_attempt(wm, NULL, 0, &seed) == 0, "seed");
	must(kiln_wm_record_attempt(wm, NULL, 1, &a) == 0, "attempt");
	must(kiln_wm_solve(wm, 1, 0, 0) == 0, "solve");
	must(kiln_wm_mark_too_hard(wm, 2) == 0, "too hard");
	must(kiln_wm_prune(wm, 5) == 0, "prune");
	return wm;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	kiln_wm *wm = fixture(), *back = NULL, *before = NULL;
	kiln_wm_edit_result *r = NULL;
	char *json = NULL, *text = NULL;
	must(kiln_wm_clone(&before, wm) == 0, "clone");
	int64_t rev = kiln_wm_revision(wm);
	kiln_err e = kiln_wm_apply(wm, &r, (const char *)data, size);
	if (e) {
		must(r == NULL, "error with a result");
		must(kiln_wm_equal(before, wm), "a failed script changed the tree");
	} else {
		must(r->n_applied + r->n_rejected >= r->n_ops, "ops unaccounted for");
		must(kiln_wm_revision(wm) == rev + (r->n_applied > 0), "revision");
		for (size_t i = 0; i < r->n_rejected; i++)
			must(r->rejected[i].reason[0] && !strchr(r->rejected[i].reason, '\n'), "reason");
		must(kiln_wm_rejections_render(&text, r, 1024) == 0 && strlen(text) <= 1024, "rejections");
		free(text);
		text = NULL;
	}
	must(kiln_wm_check(wm) == 0, "invariants");
	must(kiln_wm_to_json(&json, wm) == 0, "to_json");
	must(kiln_wm_from_json(&back, json, strlen(json), NULL) == 0, "from_json");
	must(kiln_wm_equal(wm, back), "round trip");
	kiln_wm_render_options ro = KILN_WM_RENDER_OPTIONS_INIT;
	ro.max_bytes = 1500;
	must(kiln_wm_render(&text, wm, &ro) == 0 && strlen(text) <= 1500, "render");
	kiln_wm_choice c;
	e = kiln_wm_select(&c, wm, NULL);
	must(e == 0 ? kiln_wm_is_frontier(wm, c.id) : e == KILN_ENOTFOUND, "select");
	kiln_wm_free(back);
	back = NULL;
	/* the same bytes as a stored tree: loaded only when every invariant holds */
	if (kiln_wm_from_json(&back, (const char *)data, size, NULL) == 0)
		must(kiln_wm_check(back) == 0, "loaded tree");
	kiln_wm_free(back);
	free(text);
	free(json);
	kiln_wm_edit_result_free(r);
	kiln_wm_free(before);
	kiln_wm_free(wm);
	kiln_error_clear();
	return 0;
}
