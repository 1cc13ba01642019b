/* Unit tests for agent/: strict LLM reply parsing and the tune policy's knob search. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>
#include <math.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agent/agent.h"
#include "agent/agent_int.h"

static kiln_err parse(kiln_reply_parts *p, const char *text, unsigned want)
{
	return kiln_reply_parse(p, text, strlen(text), want);
}

static const char good[] =
	"Here is the kernel.\n\n```cuda\nextern \"C\" __global__ void k(float *x) { x[0] = 1; }\n```\n"
	"And the plan:\n```json\n{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"1\"], \"block\": [\"32\"], \"args\": [\"x\"]}]}\n```\n"
	"```json\n{\"ops\": [{\"op\": \"update\", \"id\": 3, \"score\": 0.4}]}\n```\n";

static void test_agent__reply_all_parts(void **state)
{
	(void)state;
	kiln_reply_parts p;
	assert_int_equal(parse(&p, good, KILN_REPLY_KERNEL | KILN_REPLY_LAUNCH | KILN_REPLY_EDITS), 0);
	assert_non_null(strstr(p.kernel, "__global__ void k"));
	assert_non_null(strstr(p.launch_json, "\"launches\""));
	assert_non_null(strstr(p.edits_json, "\"ops\""));
	assert_null(strstr(p.kernel, "```"));
	kiln_reply_parts_free(&p);
}

static void test_agent__reply_errors_are_explained(void **state)
{
	(void)state;
	kiln_reply_parts p;
	assert_int_equal(parse(&p, "no code at all", KILN_REPLY_KERNEL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "no kernel: send a whole kernel in a ```cuda block"));
	assert_int_equal(parse(&p, "```cuda\n__global__ void k(){}\n", KILN_REPLY_KERNEL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "line 1"));
	assert_non_null(strstr(kiln_error_last(), "never closed"));
	assert_int_equal(parse(&p, "```cuda\n__global__ void a(){}\n```\n```cu\n__global__ void b(){}\n```\n",
			       KILN_REPLY_KERNEL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "second kernel"));
	assert_int_equal(parse(&p, "```cuda\n__global__ void a(){}\n```\n```json\n{\"launches\": [\n```\n",
			       KILN_REPLY_KERNEL | KILN_REPLY_LAUNCH), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "invalid JSON"));
	/* the one strict rule: text after the plan (a comment), a raw tab, a leading zero */
	static const char *const bad_plans[] = {"{\"launches\": []} // the plan", "{\"launches\": [\"a\tb\"]}",
						"{\"launches\": [01]}"};
	for (size_t i = 0; i < 3; i++) {
		char *r = kiln_asprintf("```cuda\n__global__ void a(){}\n```\n```json\n%s\n```\n", bad_plans[i]);
		assert_int_equal(parse(&p, r, KILN_REPLY_KERNEL | KILN_REPLY_LAUNCH), KILN_EINVAL);
		assert_non_null(strstr(kiln_error_last(), "reply line 4: the ```json block: invalid JSON near line 1"));
		free(r);
	}
	assert_int_equal(parse(&p, "```cuda\n__global__ void a(){}\nint main(){ a<<<1,1>>>(); }\n```\n",
			       KILN_REPLY_KERNEL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "host code"));
	assert_int_equal(parse(&p, "```cuda\n__global__ void a(){}\n```\n", KILN_REPLY_KERNEL | KILN_REPLY_LAUNCH),
			 KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "launch plan"));
	/* other fenced languages are commentary */
	assert_int_equal(parse(&p, "```text\nhello\n```\n```cuda\n__global__ void a(){}\n```\n", KILN_REPLY_KERNEL), 0);
	kiln_reply_parts_free(&p);
}

static const char parent[] =
	"extern \"C\" __global__ void k(float *x, long long n)\n"
	"{\n"
	"    long long i = blockIdx.x * 256 + threadIdx.x;\n"
	"    if (i >= n)\n"
	"        return;\n"
	"    x[i] = 1.0f;\n"
	"}\n";

static kiln_err apply(char **out, const char *edits, kiln_edit_kind kind)
{
	return kiln_edit_apply(out, parent, edits, strlen(edits), kind);
}

/* Search/replace blocks and a diff that apply: all against the parent as it was, in
 * position order, whatever order they come in; CRLF replies; a last line without '\n'. */
static void test_agent__edit_applies(void **state)
{
	(void)state;
	char *out = NULL;
	assert_int_equal(apply(&out,
			       "<<<<<<< SEARCH\n    x[i] = 1.0f;\n=======\n    x[i] = 2.0f;\n>>>>>>> REPLACE\n\n"
			       "<<<<<<< SEARCH\n    long long i = blockIdx.x * 256 + threadIdx.x;\n=======\n"
			       "    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n>>>>>>> REPLACE\n",
			       KILN_EDIT_BLOCKS), 0);
	assert_non_null(strstr(out, "x[i] = 2.0f;"));
	assert_non_null(strstr(out, "(long long)blockIdx.x * blockDim.x"));
	assert_null(strstr(out, "1.0f"));
	assert_true(strstr(out, "blockDim.x") < strstr(out, "2.0f"));
	free(out);
	/* a deletion (empty REPLACE), CRLF line ends in the reply */
	assert_int_equal(apply(&out, "<<<<<<< SEARCH\r\n    if (i >= n)\r\n        return;\r\n=======\r\n>>>>>>> REPLACE\r\n",
			       KILN_EDIT_BLOCKS), 0);
	assert_null(strstr(out, "return;"));
	assert_int_equal(strlen(out), strlen(parent) - strlen("    if (i >= n)\n        return;\n"));
	free(out);
	/* the same change as a unified diff; its stated line picks between equal contexts */
	assert_int_equal(apply(&out, "--- a/kernel.cu\n+++ b/kernel.cu\n@@ -5,3 +5,3 @@\n         return;\n"
				     "-    x[i] = 1.0f;\n+    x[i] = 3.0f;\n }\n", KILN_EDIT_DIFF), 0);
	assert_non_null(strstr(out, "x[i] = 3.0f;\n}\n"));
	free(out);
	/* a base whose last line has no newline still matches its last line */
	const char *nonl = "__global__ void k() {\n}";
	assert_int_equal(kiln_edit_apply(&out, nonl, "<<<<<<< SEARCH\n}\n=======\n  return;\n}\n>>>>>>> REPLACE\n", 53,
					 KILN_EDIT_BLOCKS), 0);
	assert_string_equal(out, "__global__ void k() {\n  return;\n}\n");
	free(out);
}

/* Every way an edit can fail is refused with one line naming the block and why: the
 * reason the retry prompt repeats. Nothing is returned on failure. */
static void test_agent__edit_refused_with_reason(void **state)
{
	(void)state;
	static const struct { const char *edits; kiln_edit_kind kind; const char *why; } cases[] = {
		{"<<<<<<< SEARCH\n    x[i] = 5.0f;\n=======\n    x[i] = 2.0f;\n>>>>>>> REPLACE\n", KILN_EDIT_BLOCKS,
		 "block 1: the old text is not in the parent kernel (its first line '    x[i] = 5.0f;' is not a line of it)"},
		{"<<<<<<< SEARCH\n    if (i >= n)\n        return 0;\n=======\n>>>>>>> REPLACE\n", KILN_EDIT_BLOCKS,
		 "its first 1 line(s) match at line 4, then it has '        return 0;' where the kernel has '        return;'"},
		{"<<<<<<< SEARCH\n    x[i] = 1.0f;   \n=======\n    x[i] = 2.0f;\n>>>>>>> REPLACE\n", KILN_EDIT_BLOCKS,
		 "matches only when trailing spaces are ignored"},
		{"<<<<<<< SEARCH\n=======\nint y;\n>>>>>>> REPLACE\n", KILN_EDIT_BLOCKS, "block 1: the SEARCH text is empty"},
		{"<<<<<<< SEARCH\n{\n=======\n{ // a\n>>>>>>> REPLACE\n<<<<<<< SEARCH\n}\n=======\n}\n\n>>>>>>> REPLACE\n"
		 "<<<<<<< SEARCH\n    x[i] = 1.0f;\n}\n=======\n>>>>>>> REPLACE\n", KILN_EDIT_BLOCKS,
		 "block 2 and block 3 change the same lines (from line 7)"},
		{"<<<<<<< SEARCH\n    x[i] = 1.0f;\n=======\n    x[i] = 1.0f;\n>>>>>>> REPLACE\n", KILN_EDIT_BLOCKS,
		 "block 1 changes nothing"},
		{"<<<<<<< SEARCH\n    x[i] = 1.0f;\n=======\n    x[i] = 2.0f;\n", KILN_EDIT_BLOCKS,
		 "block 1 is not closed with >>>>>>> REPLACE"},
		{"kernel.cu\n<<<<<<< SEARCH\n}\n=======\n}\n>>>>>>> REPLACE\n", KILN_EDIT_BLOCKS,
		 "edit line 1: text outside a <<<<<<< SEARCH"},
		{"--- a/other.cu\n+++ b/other.cu\n@@ -1,1 +1,1 @@\n-{\n+{ \n", KILN_EDIT_DIFF,
		 "the diff names other.cu; it may only change kernel.cu"},
		{"--- a/kernel.cu\n+++ b/kernel.cu\n@@ -6,1 +6,1 @@\n-    x[i] = 1.0f;\n+    x[i] = 2.0f;\n"
		 "--- a/kernel.cu\n+++ b/kernel.cu\n", KILN_EDIT_DIFF, "a second file header"},
		{"--- a/kernel.cu\n+++ b/kernel.cu\n@@ -6,2 +6,1 @@\n-    x[i] = 1.0f;\n+    x[i] = 2.0f;\n", KILN_EDIT_DIFF,
		 "hunk 1: the diff ends after 1 old and 1 new lines, but its header says 2 and 1"},
		{"--- a/kernel.cu\n+++ b/kernel.cu\n@@ -6,0 +6,1 @@\n+    x[i] = 2.0f;\n", KILN_EDIT_DIFF,
		 "hunk 1 has neither context nor removed lines"},
		{"--- /dev/null\n+++ b/kernel.cu\n", KILN_EDIT_DIFF, "the diff names /dev/null"},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		char *out = (char *)1;
		assert_int_equal(apply(&out, cases[i].edits, cases[i].kind), KILN_EINVAL);
		assert_null(out);
		if (!strstr(kiln_error_last(), cases[i].why))
			fail_msg("case %zu: %s", i, kiln_error_last());
		assert_null(strchr(kiln_error_last(), '\n'));
	}
	/* a SEARCH that occurs three times, at line starts */
	const char *three = "__global__ void k() {\n  a();\n  a();\n  a();\n}\n";
	char *out = NULL;
	const char *e3 = "<<<<<<< SEARCH\n  a();\n=======\n  b();\n>>>>>>> REPLACE\n";
	assert_int_equal(kiln_edit_apply(&out, three, e3, strlen(e3), KILN_EDIT_BLOCKS), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "block 1: the old text matches 3 times in the parent kernel (lines 2, ...); "
					   "add lines around it"));
	/* too many blocks, a NUL byte, a result over the 1 MiB source cap */
	kiln_buf b;
	kiln_buf_init(&b, 0);
	for (int i = 0; i <= KILN_EDIT_MAX_BLOCKS; i++)
		kiln_buf_puts(&b, "<<<<<<< SEARCH\n}\n=======\n}\n>>>>>>> REPLACE\n");
	assert_int_equal(apply(&out, b.data, KILN_EDIT_BLOCKS), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "more than 64 edit blocks"));
	kiln_buf_free(&b);
	assert_int_equal(kiln_edit_apply(&out, parent, "<<<<<<< SEARCH\n}\0\n", 18, KILN_EDIT_BLOCKS), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "NUL byte"));
	kiln_buf_init(&b, 0);
	kiln_buf_puts(&b, "<<<<<<< SEARCH\n    x[i] = 1.0f;\n=======\n");
	for (int i = 0; i < 40000; i++)
		kiln_buf_puts(&b, "    x[i] = 1.0f; // padding\n");
	kiln_buf_puts(&b, ">>>>>>> REPLACE\n");
	assert_int_equal(apply(&out, b.data, KILN_EDIT_BLOCKS), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "over 1048576 bytes (1 MiB)"));
	kiln_buf_free(&b);
}

/* A reply with edits: the ```edit or ```diff block, the CHANGED line (escaped, cut after a
 * word), no launch plan needed; a kernel and edits together, or loose markers, refused. */
static void test_agent__reply_edits_and_changed_line(void **state)
{
	(void)state;
	kiln_reply_parts p;
	const char *r1 = "**CHANGED:** vectorised the loads \x1b[31mnow\n\n```edit\n<<<<<<< SEARCH\n}\n=======\n}\n>>>>>>> REPLACE\n```\n";
	assert_int_equal(parse(&p, r1, KILN_REPLY_KERNEL | KILN_REPLY_LAUNCH), 0);
	assert_non_null(p.edit);
	assert_null(p.kernel);
	assert_null(p.launch_json);
	assert_string_equal(p.changed, "vectorised the loads \\x1b[31mnow");
	kiln_reply_parts_free(&p);
	kiln_buf b;
	kiln_buf_init(&b, 0);
	kiln_buf_puts(&b, "CHANGED: ");
	for (int i = 0; i < 100; i++)
		kiln_buf_puts(&b, "word ");
	kiln_buf_puts(&b, "\n```diff\n--- a/kernel.cu\n+++ b/kernel.cu\n```\n```cuda\n// CHANGED: not this\n```\n");
	assert_int_equal(parse(&p, b.data, KILN_REPLY_KERNEL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "a ```cuda kernel and a ```diff block; send exactly one"));
	b.data[b.len - strlen("```cuda\n// CHANGED: not this\n```\n")] = '\0';
	assert_int_equal(parse(&p, b.data, KILN_REPLY_KERNEL), 0);
	assert_non_null(p.diff);
	assert_true(strlen(p.changed) <= KILN_CHANGED_MAX);
	assert_int_equal(strncmp(p.changed + strlen(p.changed) - 4, "word", 4), 0);
	kiln_reply_parts_free(&p);
	kiln_buf_free(&b);
	assert_int_equal(parse(&p, "<<<<<<< SEARCH\n}\n=======\n}\n>>>>>>> REPLACE\n", KILN_REPLY_KERNEL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "put them in one ```edit block"));
	assert_int_equal(parse(&p, "```cuda\n<<<<<<< SEARCH\n__global__ void k(){}\n```\n```json\n{\"launches\": []}\n```\n",
			       KILN_REPLY_KERNEL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "search/replace markers"));
	/* kiln's own account when the model gives none */
	char *sum = kiln_changed_summary(parent, "extern \"C\" __global__ void k(float *x, long long n)\n{\n#define ITEMS 8\n"
					 "    x[0] = 2.0f;\n}\n", "{\"a\":1}", "{\"a\":2}");
	assert_non_null(sum);
	assert_non_null(strstr(sum, "+2 -4 lines in k"));
	assert_non_null(strstr(sum, "; launch plan changed"));
	free(sum);
	sum = kiln_changed_summary("#define ITEMS 4\n__global__ void k() {}\n", "#define ITEMS 8\n__global__ void k() {}\n",
				   NULL, NULL);
	assert_string_equal(sum, "+1 -1 lines; ITEMS 4->8");
	free(sum);
	/* the function is named past an attribute's parentheses, on the next line */
	sum = kiln_changed_summary("extern \"C\" __global__ void __launch_bounds__(256)\nk2(float *x)\n{\n  x[0] = 1;\n}\n",
				   "extern \"C\" __global__ void __launch_bounds__(256)\nk2(float *x)\n{\n  x[0] = 2;\n}\n",
				   "{}", "{}");
	assert_string_equal(sum, "+1 -1 lines in k2: -x[0] = 1; / +x[0] = 2;");
	free(sum);
}

static kiln_target *two_knob_target(void)
{
	static int64_t block[] = {64, 128, 256, 512};
	static int64_t items[] = {1, 2, 4};
	static kiln_knob knobs[2];
	static kiln_target t;
	knobs[0] = (kiln_knob){"BLOCK", block, 4};
	knobs[1] = (kiln_knob){"ITEMS", items, 3};
	t.name = "toy";
	t.knobs = knobs;
	t.nknobs = 2;
	return &t;
}

static void test_agent__tuner_starts_at_seed_and_never_repeats(void **state)
{
	(void)state;
	kiln_target *t = two_knob_target();
	kiln_tuner *tu;
	assert_int_equal(kiln_tuner_new(&tu, t, "#define BLOCK 256\n#define ITEMS 2\n", 1, 3), 0);
	int64_t v[2], seen[12][2];
	kiln_tune_phase ph;
	bool done;
	size_t n = 0;
	assert_int_equal(kiln_tuner_next(tu, v, &ph, &done), 0);
	assert_false(done);
	assert_int_equal(ph, KILN_TUNE_SEED);
	assert_int_equal(v[0], 256);
	assert_int_equal(v[1], 2);
	memcpy(seen[n++], v, sizeof v);
	/* pretend BLOCK=128 ITEMS=4 is fastest: local search must probe its neighbours */
	for (;;) {
		double us = 100.0 - (v[0] == 128 ? 50 : 0) - (v[1] == 4 ? 20 : 0);
		assert_int_equal(kiln_tuner_report(tu, v, true, us), 0);
		assert_int_equal(kiln_tuner_next(tu, v, &ph, &done), 0);
		if (done)
			break;
		for (size_t i = 0; i < n; i++)
			assert_false(seen[i][0] == v[0] && seen[i][1] == v[1]);
		assert_true(n < 12);
		memcpy(seen[n++], v, sizeof v);
	}
	assert_int_equal(n, 12); /* the whole 4x3 space, each once */
	kiln_tuner_free(tu);
}

static kiln_err child_ok(char **text, void *arg)
{
	*text = kiln_asprintf("{\"answer\": %d}", *(int *)arg);
	return KILN_OK;
}

static kiln_err child_hangs(char **text, void *arg)
{
	(void)text;
	(void)arg;
	volatile int forever = 1;
	while (forever)
		pause();
	return KILN_OK;
}

static kiln_err child_crashes(char **text, void *arg)
{
	(void)text;
	(void)arg;
	raise(SIGSEGV);
	return KILN_OK;
}

/* A flood: an answer past the cap (like 1024 #pragma message remarks quoted back). */
static kiln_err child_floods(char **text, void *arg)
{
	(void)arg;
	size_t n = KILN_CHILD_ANSWER_MAX + 4096;
	*text = malloc(n + 1);
	memset(*text, 'x', n);
	(*text)[n] = '\0';
	return 0;
}

/* Grabs memory until the child's limit says no. */
static kiln_err child_hogs(char **text, void *arg)
{
	(void)arg;
	for (int i = 0; i < 1024; i++) {
		char *p = malloc((size_t)256 << 20);
		if (!p)
			return kiln_error_set(KILN_ENOMEM, "out of memory after %d x 256 MiB", i);
		memset(p, 1, (size_t)256 << 20);
	}
	*text = strdup("{}");
	return 0;
}

/* The parent reads the child's answer through the record fields: a good answer passes, a
 * misspelt or hostile field fails the candidate with check "evaluate" naming it. */
static void test_agent__child_answer_fields_checked(void **state)
{
	(void)state;
	kiln_compile_rec cr = {0};
	cr.ok = true;
	cr.log = "";
	cr.toolkit = "NVRTC";
	cr.cache_key = "k";
	cr.registers = 32;
	cr.wall_s = 0.1;
	kiln_timing_rec tr = {0};
	tr.device = "emu";
	tr.modeled = true;
	tr.time_us = 12.5;
	tr.min_us = 12.5;
	tr.roofline = 0.4;
	tr.bandwidth_gbs = 800;
	tr.sizes_json = "[{\"roofline\": 0.5}]";
	cJSON *o = cJSON_CreateObject(), *c = cJSON_AddObjectToObject(o, "compile"), *t = cJSON_AddObjectToObject(o, "timing");
	assert_int_equal(kiln_record_to_json(c, &kiln_compile_desc, &cr), 0);
	cJSON_AddBoolToObject(c, "resource_limit", false);
	assert_int_equal(kiln_record_to_json(t, &kiln_timing_desc, &tr), 0);
	cJSON_AddItemToObject(o, "verdict", cJSON_Parse("{\"pass\": true, \"message\": \"ok\", \"worst\": {\"abs\": 0}}"));
	char *good = cJSON_PrintUnformatted(o);
	static const struct { const char *from, *to, *check, *msg; } cases[] = {
		{NULL, NULL, NULL, NULL},
		{"\"bandwidth_gbs\"", "\"bandwith_gbs \"", "evaluate", "timing.bandwidth_gbs is missing"},
		{"\"registers\":32", "\"registers\":1e300", "evaluate", "compile.registers is out of range"},
		{"\"time_us\":12.5", "\"time_us\":-1e-9", "evaluate", "timing.time_us is negative"},
		{"\"modeled\":true", "\"modeled\":\"yes\"", "evaluate", "timing.modeled is not true or false"},
	};
	kiln_eval_job job = {0};
	job.timeout_s = 10;
	for (size_t i = 0; i < KILN_ARRAY_LEN(cases); i++) {
		char *text = kiln_strdup(good), *at = cases[i].from ? strstr(text, cases[i].from) : NULL;
		if (cases[i].from) {
			assert_non_null(at);
			char *patched = kiln_asprintf("%.*s%s%s", (int)(at - text), text, cases[i].to, at + strlen(cases[i].from));
			free(text);
			text = patched;
		}
		kiln_child_result r = {0};
		r.text = text;
		kiln_eval ev;
		memset(&ev, 0, sizeof ev);
		kiln_eval_take_answer(&ev, &r, &job);
		if (!cases[i].check) {
			assert_int_equal(ev.outcome, KILN_OUT_PASSED);
			assert_true(ev.timing.bandwidth_gbs == 800 && ev.compile.registers == 32 && ev.timing.modeled);
			assert_true(ev.roofline_max == 0.5 && ev.nsizes == 1);
			assert_string_equal(ev.device, "emu");
		} else {
			assert_int_equal(ev.outcome, KILN_OUT_FAILED);
			assert_string_equal(ev.failed_check, cases[i].check);
			assert_non_null(strstr(ev.message, cases[i].msg));
		}
		kiln_eval_free(&ev);
		free(text);
	}
	free(good);
	cJSON_Delete(o);
}

static void test_agent__child_result_timeout_and_crash(void **state)
{
	(void)state;
	kiln_child_result r;
	int v = 42;
	assert_int_equal(kiln_child_run(&r, child_ok, &v, 10), 0);
	assert_string_equal(r.text, "{\"answer\": 42}");
	assert_false(r.timed_out);
	assert_int_equal(r.exit_code, 0);
	kiln_child_result_free(&r);
	assert_int_equal(kiln_child_run(&r, child_hangs, NULL, 0.3), 0);
	assert_true(r.timed_out);
	assert_true(r.wall_s < 5);
	kiln_child_result_free(&r);
	assert_int_equal(kiln_child_run(&r, child_crashes, NULL, 10), 0);
	assert_int_equal(r.signal, SIGSEGV);
	assert_false(r.timed_out);
	kiln_child_result_free(&r);
	/* an answer over the cap is the candidate's failure, never an error of the run */
	assert_int_equal(kiln_child_run(&r, child_floods, NULL, 20), 0);
	assert_true(r.too_large);
	assert_string_equal(r.text, "");
	assert_int_equal(r.signal, 0);
	kiln_child_result_free(&r);
	/* --max-memory bounds the child: malloc fails there, the parent lives on */
	if (!kiln_limits_memory_enforced())
		return; /* a sanitizer build cannot limit address space */
	kiln_limits saved = *kiln_limits_get(), l = saved;
	l.max_memory = (int64_t)1 << 30;
	kiln_limits_set(&l);
	assert_int_equal(kiln_child_run(&r, child_hogs, NULL, 60), 0);
	kiln_limits_set(&saved);
	assert_non_null(strstr(r.text, "out of memory after"));
	assert_non_null(strstr(r.text, "\"code\":"));
	assert_int_equal(r.exit_code, 1);
	kiln_child_result_free(&r);
}

static void test_agent__beyond_the_physical_limit_never_wins(void **state)
{
	(void)state;
	kiln_eval ev;
	memset(&ev, 0, sizeof ev);
	ev.outcome = KILN_OUT_PASSED;
	ev.has_timing = true;
	ev.timing.time_us = 40;
	ev.timing.roofline = 0.97;
	kiln_eval_check_physical(&ev);
	assert_int_equal(ev.outcome, KILN_OUT_PASSED);
	ev.timing.roofline = 1.25; /* 25% faster than the bytes allow at peak bandwidth */
	kiln_eval_check_physical(&ev);
	assert_int_equal(ev.outcome, KILN_OUT_FAILED);
	assert_string_equal(ev.failed_check, "physical-limit");
	assert_non_null(strstr(ev.message, "physically impossible"));
	kiln_eval_free(&ev);
	/* over several bench sizes: one size past the limit fails, however the mean looks */
	memset(&ev, 0, sizeof ev);
	ev.outcome = KILN_OUT_PASSED;
	ev.has_timing = true;
	ev.timing.time_us = 40;
	ev.timing.roofline = 0.8;
	ev.roofline_max = 1.1;
	kiln_eval_check_physical(&ev);
	assert_int_equal(ev.outcome, KILN_OUT_FAILED);
	assert_non_null(strstr(ev.message, "at one of the bench sizes"));
	kiln_eval_free(&ev);
}

/* An unpriced model's spend is "unknown" in the progress line and kiln runs, never $0. */
static void test_agent__cost_text_unknown_when_unpriced(void **state)
{
	(void)state;
	char b[48];
	assert_string_equal(kiln_cost_text(b, sizeof b, 0.0, false, 3, 4), "unknown");
	assert_string_equal(kiln_cost_text(b, sizeof b, NAN, true, 2, 2), "unknown");
	assert_string_equal(kiln_cost_text(b, sizeof b, 0.25, true, 1, 4), "$0.2500 + unknown");
	assert_string_equal(kiln_cost_text(b, sizeof b, 0.25, true, 0, 2), "$0.25");
	assert_string_equal(kiln_cost_text(b, sizeof b, 0.0, false, 0, 4), "$0.0000");
	assert_string_equal(kiln_cost_text(b, sizeof b, NAN, false, 0, 2), "-");
}

/* A new family starts from the seed, and its prompt shows the run's current best too. */
static void test_agent__new_family_prompt_shows_the_best(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	assert_int_equal(kiln_target_find(&t, "lion", NULL), 0);
	kiln_prompt_input in = {0};
	in.kind = KILN_PROMPT_IMPLEMENT;
	in.target = t;
	in.node_id = 3;
	in.action = "Grid-stride persistent";
	in.parent_source = "// the seed\n";
	kiln_prompt p;
	assert_int_equal(kiln_prompt_build(&p, &in), 0);
	assert_null(strstr(p.task, "current best"));
	assert_non_null(strstr(p.prefix, "Minimum traffic: 20*n bytes")); /* lion has no mask */
	kiln_prompt_free(&p);
	in.best_source = "// the float4 winner\n";
	in.best_launch = "{\"launches\": []}";
	in.best_us = 1.25;
	in.best_modeled = true;
	assert_int_equal(kiln_prompt_build(&p, &in), 0);
	assert_non_null(strstr(p.task, "The run's current best (1.250 us modeled), for reference"));
	assert_non_null(strstr(p.task, "// the float4 winner"));
	assert_true(strstr(p.task, "// the seed") < strstr(p.task, "// the float4 winner"));
	kiln_prompt_free(&p);
	kiln_target_free(t);
	/* a masked target says what its declared traffic is and what the roofline uses */
	assert_int_equal(kiln_target_find(&t, "ratio_seq", NULL), 0);
	in.target = t;
	assert_int_equal(kiln_prompt_build(&p, &in), 0);
	assert_non_null(strstr(p.prefix, "Declared traffic: 9*B*T + 4*B bytes, masked positions included"));
	assert_non_null(strstr(p.prefix, "masked elements of logp_new logp_old, so the roofline"));
	/* the bench sizes as whole sizes (no "64 512 / 4096 8192" to read across), weights, objective */
	assert_non_null(strstr(p.prefix, "timed at each of these 2 sizes: B=256, T=4096 (weight 1); B=512, T=8192 (weight 1)."));
	assert_non_null(strstr(p.prefix, "weighted geometric mean of the per-size speedups over the seed"));
	assert_null(strstr(p.prefix, "benchmarked at"));
	kiln_prompt_free(&p);
	const char *sz[] = {"B=512,T=8192@3"};
	assert_int_equal(kiln_target_set_bench_sizes(t, sz, 1), 0);
	assert_int_equal(kiln_prompt_build(&p, &in), 0);
	assert_non_null(strstr(p.prefix, "Bench size: every candidate is timed at this size: B=512, T=8192 (weight 3). The objective is the time at this size."));
	kiln_prompt_free(&p);
	kiln_target_free(t);
}

/* A prompt over its 1 MiB cap fails the call with the reason; it is never sent with a
 * hole where an append did not fit. */
static void test_agent__prompt_over_cap_fails(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	assert_int_equal(kiln_target_find(&t, "adamw", NULL), 0);
	size_t n = (1u << 20) + 10;
	char *huge = malloc(n + 1);
	memset(huge, 'w', n);
	huge[n] = 0;
	kiln_prompt_input in = {0};
	in.target = t;
	in.kind = KILN_PROMPT_INIT;
	in.world_model = huge;
	in.search_state = "the state after the world model";
	kiln_prompt p;
	assert_int_equal(kiln_prompt_build(&p, &in), KILN_EOVERFLOW);
	assert_non_null(strstr(kiln_error_last(), "the prompt's task exceeds the 1048576-byte cap"));
	assert_null(p.prefix);
	assert_null(p.task);
	in.world_model = "a small tree";
	assert_int_equal(kiln_prompt_build(&p, &in), 0);
	assert_non_null(strstr(p.task, "the state after the world model"));
	kiln_prompt_free(&p);
	free(huge);
	kiln_target_free(t);
}

/* Every prompt kind: the rules match the task (init and reflect ask only for an edit
 * script), the ABI's fine print and the seed's knob values are in the stable prefix, the
 * search state is in every prompt, and a retry repeats the task, the kernel and the reason. */
static void test_agent__prompt_content_by_kind(void **state)
{
	(void)state;
	kiln_target *t = NULL;
	assert_int_equal(kiln_target_find(&t, "ratio_minprefix", NULL), 0);
	kiln_prompt_input in = {0};
	in.target = t;
	in.seed_source = "// the seed\n";
	in.seed_launch = "{}";
	in.seed_knobs = "BLOCK=256 ITEMS=4";
	in.search_state = "Iteration 7 (candidates evaluated so far, the seed included), 3 of the 10-iteration budget "
			  "left. An action closes after 3 attempts in a row without a new best, or after 6 attempts. "
			  "A new best must be faster by more than 1%. An edit script may add at most 4 new nodes";
	in.node_id = 4;
	in.action = "#4 Two-pass scan";
	in.parent_source = "// parent kernel\n";
	in.last_source = "// last kernel\n";
	in.last_launch = "{\"launches\": \"last plan\"}";
	in.evidence = "time 19.260 us (modeled)";
	in.attempts = "iteration | verdict | time | what changed\n5 | passed | 19.26 us modeled | BLOCK 256->512\n";
	static const kiln_prompt_kind kinds[] = {KILN_PROMPT_INIT, KILN_PROMPT_IMPLEMENT, KILN_PROMPT_DEBUG,
						 KILN_PROMPT_IMPROVE, KILN_PROMPT_REFLECT};
	static const char *const heads[] = {"## Task: analyse the target", "## Task: implement action 4",
					    "## Task: fix your last attempt at action 4", "## Task: make action 4 faster",
					    "## Task: reflect on action 4"};
	char *prefix0 = NULL;
	for (size_t k = 0; k < KILN_ARRAY_LEN(kinds); k++) {
		kiln_prompt p;
		in.kind = kinds[k];
		in.retry_reason = NULL;
		assert_int_equal(kiln_prompt_build(&p, &in), 0);
		/* the prefix: one for every kind (cacheable), with the fine print */
		if (!prefix0)
			prefix0 = kiln_strdup(p.prefix);
		assert_string_equal(p.prefix, prefix0);
		assert_non_null(strstr(p.prefix, "an analyse or reflect task is answered with exactly one ```json edit script"));
		assert_non_null(strstr(p.prefix, "NOT zeroed"));
		assert_non_null(strstr(p.prefix, "i64 -> long long*"));
		assert_non_null(strstr(p.prefix, "at the seed's values, BLOCK=256 ITEMS=4,"));
		assert_null(strstr(p.prefix, "## Task"));
		/* the reply formats: a whole kernel, search/replace edits, a diff, the CHANGED line */
		assert_non_null(strstr(p.prefix, "(a) the whole kernel: one ```cuda block"));
		assert_non_null(strstr(p.prefix, "(b) edits of kernel.cu, the kernel the task quotes"));
		assert_non_null(strstr(p.prefix, "<<<<<<< SEARCH\nlines copied exactly from kernel.cu\n=======\n"));
		assert_non_null(strstr(p.prefix, "must occur exactly once in kernel.cu"));
		assert_non_null(strstr(p.prefix, "(c) a unified diff of kernel.cu in one ```diff block"));
		assert_non_null(strstr(p.prefix, "`CHANGED: <what this candidate changes and why, one line>`"));
		assert_non_null(strstr(p.prefix, "the task's launch plan is kept unless you also send"));
		/* the task and the search state */
		assert_non_null(strstr(p.task, heads[k]));
		assert_non_null(strstr(p.task, "## Search state\nIteration 7"));
		assert_non_null(strstr(p.task, "3 of the 10-iteration budget left"));
		assert_non_null(strstr(p.task, "closes after 3 attempts"));
		assert_non_null(strstr(p.task, "more than 1%"));
		assert_non_null(strstr(p.task, "at most 4 new nodes"));
		bool edits = kinds[k] == KILN_PROMPT_INIT || kinds[k] == KILN_PROMPT_REFLECT;
		assert_true((strstr(p.task, "```json edit script") != NULL) == edits);
		assert_true((strstr(p.task, "```cuda") != NULL) == !edits);
		/* a kernel task offers edits of the kernel it quotes and asks for the CHANGED line */
		assert_true((strstr(p.task, "```edit / ```diff edits of") != NULL) == !edits);
		assert_true((strstr(p.task, "a CHANGED: line") != NULL) == !edits);
		/* the action's earlier attempts: fixing, improving and reflecting see them */
		bool later = kinds[k] == KILN_PROMPT_DEBUG || kinds[k] == KILN_PROMPT_IMPROVE || kinds[k] == KILN_PROMPT_REFLECT;
		assert_true((strstr(p.task, "### This action's earlier attempts (oldest first)\niteration | verdict | time | "
					   "what changed\n5 | passed | 19.26 us modeled | BLOCK 256->512") != NULL) == later);
		/* the kernel edits apply to, named kernel.cu, with its launch plan */
		if (kinds[k] == KILN_PROMPT_IMPLEMENT)
			assert_non_null(strstr(p.task, "### Parent's best kernel: kernel.cu (start from this; edits apply to it)"));
		if (kinds[k] == KILN_PROMPT_DEBUG || kinds[k] == KILN_PROMPT_IMPROVE) {
			assert_non_null(strstr(p.task, "kernel.cu (edits apply to it)\n// last kernel"));
			assert_non_null(strstr(p.task, "### Its launch plan (kept with edits unless you send a plan)\n{\"launches\": \"last plan\"}"));
		}
		if (kinds[k] == KILN_PROMPT_IMPROVE)
			assert_non_null(strstr(p.task, "Do not repeat an experiment the table of earlier attempts already shows"));
		kiln_prompt_free(&p);
		/* a retry: the same task, its kernel and evidence, and the exact reason */
		in.retry_reason = "reply: no ```cuda block found";
		assert_int_equal(kiln_prompt_build(&p, &in), 0);
		assert_non_null(strstr(p.task, heads[k]));
		assert_non_null(strstr(p.task, "### Your last reply to this task could not be used\nreply: no ```cuda block found"));
		assert_true(strstr(p.task, heads[k]) < strstr(p.task, "could not be used"));
		if (kinds[k] == KILN_PROMPT_IMPLEMENT)
			assert_non_null(strstr(p.task, "// parent kernel"));
		if (kinds[k] == KILN_PROMPT_DEBUG || kinds[k] == KILN_PROMPT_IMPROVE) {
			assert_non_null(strstr(p.task, "// last kernel"));
			assert_non_null(strstr(p.task, "time 19.260 us"));
		}
		assert_string_equal(p.prefix, prefix0);
		kiln_prompt_free(&p);
		/* a retry after edits that did not apply: the task, its kernel and the applier's reason */
		if (!edits) {
			in.retry_reason = "block 2: the old text matches 3 times in the parent kernel (lines 4, ...); add lines "
					  "around it until it matches once";
			assert_int_equal(kiln_prompt_build(&p, &in), 0);
			assert_non_null(strstr(p.task, heads[k]));
			assert_non_null(strstr(p.task, kinds[k] == KILN_PROMPT_IMPLEMENT ? "// parent kernel" : "// last kernel"));
			assert_non_null(strstr(p.task, "could not be used\nblock 2: the old text matches 3 times in the parent kernel"));
			kiln_prompt_free(&p);
		}
	}
	free(prefix0);
	kiln_target_free(t);
}

/* A failure's text in the progress line is cut after a whole word, never inside one. */
static void test_agent__summary_cuts_at_a_word(void **state)
{
	(void)state;
	kiln_eval ev;
	memset(&ev, 0, sizeof ev);
	ev.outcome = KILN_OUT_FAILED;
	ev.failed_check = kiln_strdup("values");
	char msg[700] = "";
	for (int i = 0; i < 60; i++)
		strcat(msg, "mismatch ");
	strcat(msg, "incomprehensibilities");
	ev.message = kiln_strdup(msg);
	char *s = kiln_eval_summary(&ev);
	assert_non_null(s);
	size_t n = strlen(s);
	assert_true(n < 340);
	assert_string_equal(s + n - 12, "mismatch ...");
	free(s);
	free(ev.message);
	ev.message = kiln_strdup("short failure");
	s = kiln_eval_summary(&ev);
	assert_string_equal(s, "failed values: short failure");
	free(s);
	kiln_eval_free(&ev);
}

/* Iterations in flight: holes left by a killed session go first, reservations hold the
 * iteration budget until dispatch, and LLM calls in flight hold the cost budget. */
static void test_agent__dispatch_holes_and_budgets(void **state)
{
	(void)state;
	kiln_run_options o;
	memset(&o, 0, sizeof o);
	o.iterations = 8;
	o.max_cost = 1.0;
	kiln_search s;
	memset(&s, 0, sizeof s);
	s.o = &o;
	snprintf(s.device, sizeof s.device, "emu");
	s.iteration = 6; /* 0..5 dispatched, 2 and 4 never recorded */
	int64_t rec[] = {0, 1, 3, 5};
	assert_int_equal(kiln_search_find_holes(&s, rec, 4), 0);
	assert_int_equal(s.nholes, 2);
	assert_true(kiln_search_reserve(&s)); /* 4 dispatched + 1 held < 8 */
	assert_int_equal(kiln_search_dispatch(&s, true), 2);
	assert_int_equal(s.reserved, 0);
	assert_true(kiln_search_take_hole(&s, 4));
	assert_false(kiln_search_take_hole(&s, 4));
	assert_int_equal(kiln_search_dispatch(&s, false), 6);
	assert_true(kiln_search_reserve(&s)); /* 7 dispatched + 1 held = 8: the last one */
	assert_false(kiln_search_reserve(&s));
	kiln_search_unreserve(&s); /* its reply was unusable */
	assert_true(kiln_search_reserve(&s));
	assert_int_equal(kiln_search_dispatch(&s, true), 7);
	assert_true(kiln_search_should_stop(&s));
	/* cost: a call starts while spent + held < budget; each holds the mean call so far */
	s.stop_reason[0] = 0;
	o.iterations = 0;
	s.cost_usd = 0.6;
	s.calls = 2;
	double h1, h2, h3;
	int64_t t1, t2, t3;
	assert_true(kiln_search_call_begin(&s, &h1, &t1));
	assert_true(fabs(h1 - 0.3) < 1e-12);
	assert_true(kiln_search_call_begin(&s, &h2, &t2)); /* 0.9 < 1.0 */
	assert_false(kiln_search_call_begin(&s, &h3, &t3)); /* 1.2 >= 1.0 */
	kiln_search_call_end(&s, h1, t1);
	s.cost_usd += 0.05; /* it cost less than held: room for another */
	assert_true(kiln_search_call_begin(&s, &h3, &t3));
	assert_int_equal(kiln_search_width(&s), 1); /* the emulator's default */
	o.parallel = 3;
	assert_int_equal(kiln_search_width(&s), 3);
	free(s.holes);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent__reply_all_parts),
		cmocka_unit_test(test_agent__reply_errors_are_explained),
		cmocka_unit_test(test_agent__edit_applies),
		cmocka_unit_test(test_agent__edit_refused_with_reason),
		cmocka_unit_test(test_agent__reply_edits_and_changed_line),
		cmocka_unit_test(test_agent__tuner_starts_at_seed_and_never_repeats),
		cmocka_unit_test(test_agent__child_result_timeout_and_crash),
		cmocka_unit_test(test_agent__child_answer_fields_checked),
		cmocka_unit_test(test_agent__beyond_the_physical_limit_never_wins),
		cmocka_unit_test(test_agent__cost_text_unknown_when_unpriced),
		cmocka_unit_test(test_agent__new_family_prompt_shows_the_best),
		cmocka_unit_test(test_agent__prompt_content_by_kind),
		cmocka_unit_test(test_agent__prompt_over_cap_fails),
		cmocka_unit_test(test_agent__summary_cuts_at_a_word),
		cmocka_unit_test(test_agent__dispatch_holes_and_budgets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
