/* fake_history: writes a realistic night of search into a fresh work directory through the
 * archive and world-model APIs, for the review tests (`kiln runs/log/show/diff/tree/report/
 * promote`) until the real loop fills one. Run 1: adamw, llm policy, finished, 15 candidates
 * (seed, compile errors, mismatch/race/oob/unwritten/timeout failures, passing kernels, five
 * new bests committed to the git archive, one "passed" record whose kernel is really wrong),
 * LLM calls with tokens and cost (one timed out), five world-model revisions (one edit
 * rejected). Run 2: lion, tune policy, still running. The passing kernels are the targets'
 * real seeds with other knob values, so they verify on the emulator.
 * `fake_history WORKDIR` prints the ids the tests need as one JSON object; test_review.c
 * includes this file with FAKE_HISTORY_NO_MAIN and calls fake_history_make. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "archive/archive.h"
#include "targets/targets.h"
#include "worldmodel/worldmodel.h"

typedef struct fake_ids {
	int64_t run_llm, run_tune;
	int64_t seed, winner, bogus, compile_error, mismatch, race, passed_not_best;
	int64_t bests[8];
	size_t nbests;
	int64_t ncand_llm, ncand_tune;
} fake_ids;

typedef struct fake_ctx {
	kiln_db *db;
	kiln_git *git;
	kiln_wm *wm;
	fake_ids *ids;
	int64_t run;
	const char *target, *arch, *launch, *seed_src;
	double seed_us, ideal_us;
	double best_us;
	int64_t prev_best;
} fake_ctx;

typedef enum { F_PASS, F_COMPILE, F_FAIL, F_LIE } fake_kind;

typedef struct fake_step {
	int iteration;
	int64_t node;       /* -1: the seed (root) */
	fake_kind kind;
	const char *check;  /* F_FAIL: the failed check */
	int block, items;   /* knob values */
	double time_us;     /* F_PASS / F_LIE */
	const char *purpose;
} fake_step;

#define FAKE_TRY(x)                                                                      \
	do {                                                                             \
		kiln_err e_ = (x);                                                       \
		if (e_) {                                                                \
			fprintf(stderr, "fake_history: %s: %s\n", #x, kiln_error_last()); \
			return e_;                                                       \
		}                                                                        \
	} while (0)

/* The target's seed with other default knob values and a comment naming the variant. */
static char *variant(const char *seed, int block, int items, const char *comment, const char *edit_from,
		     const char *edit_to)
{
	kiln_buf b = KILN_BUF_INIT;
	char from[64], to[64];
	const char *p = seed;
	kiln_buf_printf(&b, "// %s\n", comment);
	while (*p) {
		size_t n = strcspn(p, "\n");
		snprintf(from, sizeof(from), "%.*s", (int)(n < 63 ? n : 63), p);
		if (strcmp(from, "#define BLOCK 256") == 0)
			snprintf(to, sizeof(to), "#define BLOCK %d", block);
		else if (strcmp(from, "#define ITEMS 1") == 0)
			snprintf(to, sizeof(to), "#define ITEMS %d", items);
		else
			to[0] = '\0';
		if (to[0])
			kiln_buf_printf(&b, "%s\n", to);
		else if (edit_from && strstr(from, edit_from) && n < 63) {
			char *line = kiln_strndup(p, n), *at = strstr(line, edit_from);
			kiln_buf_printf(&b, "%.*s%s%s\n", (int)(at - line), line, edit_to, at + strlen(edit_from));
			free(line);
		} else
			kiln_buf_printf(&b, "%.*s\n", (int)n, p);
		p += n + (p[n] == '\n');
	}
	return kiln_buf_detach(&b);
}

static kiln_err llm_call(fake_ctx *f, int64_t *out, const char *purpose, int i, const char *reply)
{
	kiln_llm_call_rec r = {0};
	char prompt[256];
	snprintf(prompt, sizeof(prompt), "You are optimizing %s. World model:\n...\nIteration %d: %s the chosen action.",
		 f->target, i, purpose);
	r.run_id = f->run;
	r.provider = "openai";
	r.model = "gpt-5";
	r.request_id = "req_fake";
	r.status = "ok";
	r.attempts = 1;
	r.latency_s = 20 + i % 7;
	r.prompt_tokens = 6000 + 150 * i;
	r.cached_tokens = 2048;
	r.completion_tokens = 1400 + 37 * i;
	r.reasoning_tokens = 700;
	r.cost_usd = 0.012 + 0.0009 * i;
	r.purpose = purpose;
	r.prompt = prompt;
	r.reply = reply;
	return kiln_db_llm_call_add(f->db, out, &r);
}

static kiln_err revision(fake_ctx *f, int iteration, const char *edits, const kiln_wm_edit_result *res,
			 int64_t call)
{
	char *tree = NULL, *rejected = NULL;
	kiln_wm_revision_rec r = {f->run, iteration, NULL, edits, NULL, call};
	FAKE_TRY(kiln_wm_to_json(&tree, f->wm));
	kiln_err e = res ? kiln_wm_rejections_to_json(&rejected, res) : KILN_OK;
	r.tree_json = tree;
	r.rejected_json = rejected;
	if (!e)
		e = kiln_db_wm_revision_add(f->db, NULL, &r);
	free(tree);
	free(rejected);
	return e;
}

/* An LLM edit script applied to the tree and recorded as a revision. */
static kiln_err edit(fake_ctx *f, int iteration, const char *script)
{
	kiln_wm_edit_result *res = NULL;
	int64_t call = 0;
	FAKE_TRY(llm_call(f, &call, "reflect", iteration, script));
	FAKE_TRY(kiln_wm_apply(f->wm, &res, script, strlen(script)));
	kiln_err e = revision(f, iteration, script, res, call);
	kiln_wm_edit_result_free(res);
	return e;
}

static kiln_err commit_best(fake_ctx *f, int64_t id, const char *src, const char *knobs, double t,
			    const char *node)
{
	char oid[41], result[512];
	snprintf(result, sizeof(result),
		 "{\"candidate\":%lld,\"run\":%lld,\"node\":\"%s\",\"knobs\":%s,\"verdict\":{\"pass\":true,"
		 "\"seeds\":[11,22,33]},\"timing\":{\"time_us\":%.1f,\"kind\":\"modeled\",\"device\":\"emu\"},"
		 "\"toolkit\":\"NVRTC 13.0, nvJitLink 13.0\"}", (long long)id, (long long)f->run, node ? node : "",
		 knobs, t);
	kiln_git_best b = {f->target, f->arch, src, f->launch, result, f->seed_us / t, t, true, id, f->run, NULL};
	return kiln_git_commit_best(f->git, oid, &b);
}

static kiln_err candidate(fake_ctx *f, const fake_step *s, int64_t call)
{
	char knobs[64], node[24], comment[96], fail_msg[160];
	snprintf(knobs, sizeof(knobs), "{\"BLOCK\":%d,\"ITEMS\":%d}", s->block, s->items);
	snprintf(node, sizeof(node), "%lld", (long long)s->node);
	snprintf(comment, sizeof(comment), "iteration %d: node #%lld, BLOCK=%d ITEMS=%d", s->iteration,
		 (long long)s->node, s->block, s->items);
	const char *edit_from = s->kind == F_LIE ? "if (i >= n)" : s->kind == F_COMPILE ? "const float gi = g[i];"
		: s->kind == F_FAIL ? "pi -= step_size" : NULL;
	const char *edit_to = s->kind == F_LIE ? "if (i >= n - 1)" : s->kind == F_COMPILE ? "const float4 gi = g[i];"
		: "pi += step_size";
	char *src = s->node < 0 ? kiln_strdup(f->seed_src)
				: variant(f->seed_src, s->block, s->items, comment, edit_from, edit_to);
	bool pass = s->kind == F_PASS || s->kind == F_LIE;
	bool best = pass && s->time_us < f->best_us;
	kiln_candidate_rec c = {f->run, s->iteration, s->node < 0 ? NULL : node, f->prev_best, src, f->launch, knobs,
				call, s->node < 0, best, s->node < 0 ? "the seed (the baseline)" : comment};
	kiln_compile_rec cr = {s->kind != F_COMPILE,
			       s->kind == F_COMPILE ? "kernel.cu(23): error: no suitable conversion function from "
						      "\"const float\" to \"const float4\" exists\n1 error detected"
						    : "",
			       f->arch, "NVRTC 13.0, nvJitLink 13.0", "c0ffee", s->kind == F_COMPILE ? -1 : 24 + s->items * 4,
			       0, 0, 0,
			       0.35 + 0.01 * s->iteration, s->iteration % 3 == 0,
			       "{\"kernels\":[{\"name\":\"step\",\"registers\":32,\"barriers\":0,\"stack_bytes\":0}]}"};
	snprintf(fail_msg, sizeof(fail_msg), "%s failed on input set 1 (n=1000, seed 22): p[%d] off by %.1f tolerances",
		 s->check ? s->check : "", 17 + s->iteration, 3.5 * s->iteration);
	kiln_verify_rec v = {pass, pass ? NULL : s->check, pass ? "passed 3 seeds at 4 sizes" : fail_msg,
			     pass ? 0.31 : 3.5 * s->iteration, pass ? -1 : 17 + s->iteration, pass ? NULL : "p",
			     pass ? -1 : 1, "[11,22,33]",
			     "[\"compile\",\"launch\",\"bounds\",\"initcheck\",\"race\",\"written\",\"inputs-unchanged\","
			     "\"values\",\"nontrivial\"]", "emu", 2.0 + 0.1 * s->iteration, "{\"sizes\":[1,7,1000,65539]}"};
	char samples[32], counters[512];
	snprintf(samples, sizeof(samples), "[%.1f]", s->time_us);
	snprintf(counters, sizeof(counters), "{\"dram_sectors\":%lld,\"warp_instructions\":%lld,\"divergent_branches\":0,"
		 "\"breakdown\":[{\"bound\":\"dram\",\"time_us\":%.1f,\"dram_us\":%.1f,\"l2_us\":1,\"issue_us\":2,"
		 "\"latency_us\":3,\"atomic_us\":0,\"occupancy\":1,\"waves\":3.9,\"blocks_per_sm\":8}],"
		 "\"fit\":{\"holds\":true,\"raised_to_floor\":false}}",
		 (long long)(234881024.0 * f->ideal_us / (s->time_us > 0 ? s->time_us : 1) * 1.0),
		 (long long)(1000000 / s->items), s->time_us, s->time_us - 2.5);
	double t = s->time_us;
	/* the two bench sizes: n = 2^24 at 1/16 of the time plus the launch, n = 2^28; their
	 * weighted geometric mean is not t, but the report only shows them */
	char *sizes = kiln_asprintf("[{\"sizes\":{\"n\":16777216},\"weight\":1,\"time_us\":%.6g,\"roofline\":%.4g,"
				    "\"bound\":\"dram\",\"breakdown\":[]},{\"sizes\":{\"n\":268435456},\"weight\":1,"
				    "\"time_us\":%.6g,\"roofline\":%.4g,\"bound\":\"dram\",\"breakdown\":[]}]",
				    t / 16 + 2.5, f->ideal_us / 16 / (t / 16 + 2.5), t, f->ideal_us / t);
	kiln_timing_rec tm = {"emu", true, t, t, NAN, 1, f->ideal_us / t, f->ideal_us / t * 3350.0, f->seed_us / t,
			      samples, counters, "{\"name\":\"H100-SXM\",\"dram_gbs\":3350}", sizes};
	int64_t id = 0;
	kiln_err e = kiln_db_candidate_commit(f->db, &id, &c, &cr, s->kind == F_COMPILE ? NULL : &v, pass ? &tm : NULL);
	if (!e && best) {
		e = commit_best(f, id, src, knobs, t, s->node < 0 ? NULL : node);
		f->best_us = t;
		f->prev_best = id;
		if (f->run == f->ids->run_llm && f->ids->nbests < KILN_ARRAY_LEN(f->ids->bests))
			f->ids->bests[f->ids->nbests++] = id;
	}
	/* the world model's evidence */
	int64_t wm_node = s->node < 0 ? KILN_WM_ROOT : s->node;
	kiln_wm_attempt a = {pass, pass ? id : 0, pass ? t : 0, 0, true};
	bool improved = false;
	kiln_wm_node nd;
	if (!e)
		e = kiln_wm_record_attempt(f->wm, &improved, wm_node, &a);
	if (!e && pass && wm_node != KILN_WM_ROOT && !kiln_wm_node_get(&nd, f->wm, wm_node) && nd.status == KILN_WM_OPEN)
		e = kiln_wm_solve(f->wm, wm_node, 0, 0);
	free(src);
	free(sizes);
	if (e)
		return kiln_error_wrap(e, "fake candidate at iteration %d", s->iteration);
	if (s->node < 0)
		f->ids->seed = f->ids->seed ? f->ids->seed : id;
	if (best && f->run == f->ids->run_llm)
		f->ids->winner = id;
	if (s->kind == F_LIE)
		f->ids->bogus = id;
	if (s->kind == F_COMPILE && !f->ids->compile_error)
		f->ids->compile_error = id;
	if (s->kind == F_FAIL && s->check && strcmp(s->check, "mismatch") == 0)
		f->ids->mismatch = id;
	if (s->kind == F_FAIL && s->check && strcmp(s->check, "race") == 0)
		f->ids->race = id;
	if (s->kind == F_PASS && !best && !f->ids->passed_not_best)
		f->ids->passed_not_best = id;
	return KILN_OK;
}

static const char init_script[] =
	"{\"ops\":["
	"{\"op\":\"insert\",\"parent\":0,\"title\":\"Block size and per-thread work\",\"score\":0.7,\"difficulty\":1,\"ref\":\"blk\"},"
	"{\"op\":\"insert\",\"parent\":0,\"title\":\"Vectorized float4 loads\",\"score\":0.8,\"difficulty\":2,"
	"\"expected_speedup\":1.3,\"ref\":\"vec\",\"rationale\":\"28 bytes per element: memory bound\"},"
	"{\"op\":\"insert\",\"parent\":0,\"title\":\"Persistent grid-stride CTAs\",\"score\":0.4,\"difficulty\":3},"
	"{\"op\":\"insert\",\"parent\":\"vec\",\"title\":\"Unroll x4 on top of float4\",\"score\":0.6},"
	"{\"op\":\"insert\",\"parent\":\"blk\",\"title\":\"Larger blocks, 4 items per thread\",\"score\":0.5}],"
	"\"reflection\":\"memory bound: fewer instructions per byte first\"}";

static const fake_step llm_steps[] = {
	{0, -1, F_PASS, NULL, 256, 1, 4100, NULL},
	{1, 1, F_PASS, NULL, 512, 1, 3900, "propose"},
	{2, 2, F_COMPILE, NULL, 256, 4, 0, "propose"},
	{3, 2, F_FAIL, "mismatch", 256, 4, 0, "debug"},
	{4, 2, F_PASS, NULL, 256, 4, 2900, "debug"},
	{5, 3, F_FAIL, "race", 128, 2, 0, "propose"},
	{6, 3, F_FAIL, "oob", 128, 2, 0, "debug"},
	{7, 6, F_PASS, NULL, 128, 8, 3000, "propose"},
	{8, 4, F_PASS, NULL, 1024, 2, 2650, "propose"},
	{9, 5, F_FAIL, "unwritten", 512, 4, 0, "propose"},
	{10, 5, F_LIE, NULL, 512, 4, 2700, "debug"},
	{11, 3, F_FAIL, "timeout", 64, 8, 0, "propose"},
	{12, 7, F_PASS, NULL, 512, 4, 2420, "propose"},
	{13, 8, F_COMPILE, NULL, 256, 8, 0, "propose"},
	{14, 8, F_PASS, NULL, 256, 8, 2500, "debug"},
};

static kiln_err read_target(fake_ctx *f, char **seed, char **launch, const char *target)
{
	char *dir = kiln_path_join(kiln_targets_builtin_dir(), target);
	char *sp = dir ? kiln_path_join(dir, "seed.cu") : NULL, *lp = dir ? kiln_path_join(dir, "launch.json") : NULL;
	kiln_err e = !sp || !lp ? KILN_ENOMEM : kiln_file_read(seed, NULL, sp, 0);
	if (!e)
		e = kiln_file_read(launch, NULL, lp, 0);
	free(dir);
	free(sp);
	free(lp);
	f->seed_src = *seed;
	f->launch = *launch;
	f->target = target;
	return e;
}

/* Reads the target's seed and plan and records the run; the modeled times use n = 2^28 and
 * bytes_per_n bytes per element at 3.35 TB/s for the roofline. */
static kiln_err start_run(fake_ctx *f, const kiln_run_rec *rr, double seed_us, double bytes_per_n, char **seed,
			  char **launch)
{
	kiln_err e = read_target(f, seed, launch, rr->target);
	f->arch = rr->arch;
	f->seed_us = seed_us;
	f->ideal_us = bytes_per_n * 268435456 / 3.35e12 * 1e6;
	f->best_us = INFINITY;
	f->prev_best = 0;
	return e ? e : kiln_db_run_begin(f->db, &f->run, rr);
}

/* Backdates the run so its timeline spans a night: the APIs stamp "now". */
static kiln_err backdate(fake_ctx *f, double hours_ago, double minutes_per_iter, bool ended)
{
	char sql[1400];
	snprintf(sql, sizeof(sql),
		 "UPDATE runs SET started = strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now', '-%d minutes')%s WHERE id = %lld;"
		 "UPDATE candidates SET created = strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now', '-%d minutes',"
		 " '+' || CAST(iteration * %g + 2 AS INTEGER) || ' minutes') WHERE run_id = %lld;"
		 "UPDATE llm_calls SET created = coalesce((SELECT c.created FROM candidates c WHERE c.llm_call_id ="
		 " llm_calls.id), strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now', '-%d minutes', '+' || id || ' minutes'))"
		 " WHERE run_id = %lld;"
		 "UPDATE wm_revisions SET created = strftime('%%Y-%%m-%%dT%%H:%%M:%%SZ', 'now', '-%d minutes',"
		 " '+' || CAST(iteration * %g + 3 AS INTEGER) || ' minutes') WHERE run_id = %lld;",
		 (int)(hours_ago * 60), ended ? ", ended = strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-20 minutes')" : "",
		 (long long)f->run, (int)(hours_ago * 60), minutes_per_iter, (long long)f->run, (int)(hours_ago * 60),
		 (long long)f->run, (int)(hours_ago * 60), minutes_per_iter, (long long)f->run);
	char *err = NULL;
	if (sqlite3_exec(kiln_db_sqlite(f->db), sql, NULL, NULL, &err) != SQLITE_OK) {
		kiln_err e = kiln_error_set(KILN_EDB, "backdating run %lld: %s", (long long)f->run, err ? err : "?");
		sqlite3_free(err);
		return e;
	}
	return KILN_OK;
}

static kiln_err run_llm(fake_ctx *f)
{
	char *seed = NULL, *launch = NULL;
	kiln_wm_edit_result *res = NULL;
	int64_t call = 0;
	kiln_run_rec rr = {"adamw", "llm", "openai:gpt-5", "emu", "H100-SXM", "sm_90",
			   "{\"iterations\":15,\"hours\":8,\"max_cost\":5}", "{\"seeds\":3}", (int64_t)getpid()};
	kiln_err e = start_run(f, &rr, 4100, 28, &seed, &launch);
	f->ids->run_llm = f->run;
	if (!e)
		e = llm_call(f, &call, "init", 0, init_script);
	if (!e)
		e = kiln_wm_init_from_script(&f->wm, &res, "adamw", "Fused AdamW step", init_script,
					     strlen(init_script), NULL);
	if (!e)
		e = revision(f, 0, init_script, res, call);
	kiln_wm_edit_result_free(res);
	for (size_t i = 0; !e && i < KILN_ARRAY_LEN(llm_steps); i++) {
		const fake_step *s = &llm_steps[i];
		call = 0;
		if (s->iteration == 6) { /* a call that timed out: no candidate, unknown cost */
			kiln_llm_call_rec t = {f->run, "openai", "gpt-5", NULL, "timeout", 3, 600, -1, -1, -1, -1, NAN,
					       "propose", "(prompt)", NULL, "no reply within 600 s"};
			e = kiln_db_llm_call_add(f->db, &call, &t);
		}
		if (!e && s->purpose)
			e = llm_call(f, &call, s->purpose, s->iteration, "```cuda\n...\n```\n```json\n{...}\n```");
		if (!e)
			e = candidate(f, s, call);
		if (!e && s->iteration == 4)
			e = edit(f, 4, "{\"ops\":[{\"op\":\"update\",\"id\":3,\"score\":0.3,\"notes\":\"gamble\"},"
				       "{\"op\":\"insert\",\"parent\":2,\"title\":\"float4 with 8 items per thread\",\"score\":0.6},"
				       "{\"op\":\"delete\",\"id\":99}],\"reflection\":\"float4 pays; try more work per thread\"}");
		if (!e && s->iteration == 8)
			e = edit(f, 8, "{\"ops\":[{\"op\":\"insert\",\"parent\":4,\"title\":\"float4 x4 with 512 threads\","
				       "\"score\":0.7,\"expected_speedup\":1.1}]}");
		if (!e && s->iteration == 11) {
			e = kiln_wm_mark_too_hard(f->wm, 3);
			if (!e)
				e = revision(f, 11, NULL, NULL, 0);
		}
		if (!e && s->iteration == 12)
			e = edit(f, 12, "{\"ops\":[{\"op\":\"insert\",\"parent\":7,\"title\":\"Streaming stores\",\"score\":0.5}]}");
	}
	if (!e)
		e = revision(f, 14, NULL, NULL, 0);
	if (!e)
		e = kiln_db_event_add(f->db, f->run, "info", "budget", "iteration budget spent (15)", NULL);
	if (!e)
		e = kiln_db_run_end(f->db, f->run, "finished",
				    "{\"iterations\":15,\"hours\":7.6,\"cost_usd\":0.37,\"tokens\":140000}");
	if (!e)
		e = backdate(f, 8, 28, true);
	f->ids->ncand_llm = (int64_t)KILN_ARRAY_LEN(llm_steps);
	kiln_wm_free(f->wm);
	f->wm = NULL;
	free(seed);
	free(launch);
	return e;
}

static const fake_step tune_steps[] = {
	{0, -1, F_PASS, NULL, 256, 1, 2900, NULL},
	{1, 1, F_PASS, NULL, 512, 2, 2500, NULL},
	{2, 1, F_FAIL, "launch", 1024, 8, 0, NULL},
	{3, 2, F_PASS, NULL, 128, 4, 2700, NULL},
};

static kiln_err run_tune(fake_ctx *f)
{
	char *seed = NULL, *launch = NULL;
	kiln_run_rec rr = {"lion", "tune", NULL, "emu", "H100-SXM", "sm_90", "{\"iterations\":40}", NULL,
			   (int64_t)getpid()};
	kiln_err e = start_run(f, &rr, 2900, 20, &seed, &launch);
	f->ids->run_tune = f->run;
	if (!e)
		e = kiln_wm_new(&f->wm, "lion", "Lion step", NULL);
	if (!e)
		e = kiln_wm_add_family(f->wm, NULL, "BLOCK 256-1024, ITEMS 1-2", NULL);
	if (!e)
		e = kiln_wm_add_family(f->wm, NULL, "BLOCK 64-128, ITEMS 4-8", NULL);
	for (size_t i = 0; !e && i < KILN_ARRAY_LEN(tune_steps); i++)
		e = candidate(f, &tune_steps[i], 0);
	if (!e)
		e = revision(f, 3, NULL, NULL, 0);
	if (!e)
		e = kiln_db_run_spent(f->db, f->run, "{\"iterations\":4,\"hours\":0.3}");
	if (!e)
		e = kiln_db_checkpoint_put(f->db, f->run, 3, "{\"next\":4}");
	if (!e)
		e = backdate(f, 0.4, 5, false);
	f->ids->ncand_tune = (int64_t)KILN_ARRAY_LEN(tune_steps);
	kiln_wm_free(f->wm);
	f->wm = NULL;
	free(seed);
	free(launch);
	return e;
}

/* Creates <workdir>/history.db and <workdir>/archive with the two runs. */
static kiln_err fake_history_make(const char *workdir, fake_ids *ids)
{
	fake_ctx f = {0};
	char *db_path = kiln_path_join(workdir, "history.db"), *git_dir = kiln_path_join(workdir, "archive");
	kiln_err e = !db_path || !git_dir ? KILN_ENOMEM : kiln_mkdir_p(workdir);
	memset(ids, 0, sizeof(*ids));
	f.ids = ids;
	if (!e && kiln_path_exists(db_path))
		e = kiln_error_set(KILN_EINVAL, "%s already exists: fake_history wants a fresh work directory", db_path);
	if (!e)
		e = kiln_db_open(&f.db, db_path, 0);
	if (!e)
		e = kiln_git_open(&f.git, git_dir);
	if (!e)
		e = run_llm(&f);
	if (!e)
		e = run_tune(&f);
	kiln_git_close(f.git);
	kiln_db_close(f.db);
	free(db_path);
	free(git_dir);
	return e;
}

#ifndef FAKE_HISTORY_NO_MAIN
int main(int argc, char **argv)
{
	fake_ids ids;
	if (argc != 2) {
		fprintf(stderr, "usage: fake_history WORKDIR   (writes WORKDIR/history.db and WORKDIR/archive)\n");
		return 2;
	}
	if (fake_history_make(argv[1], &ids)) {
		fprintf(stderr, "fake_history: %s\n", kiln_error_last());
		return 3;
	}
	printf("{\"run_llm\": %lld, \"run_tune\": %lld, \"seed\": %lld, \"winner\": %lld, \"bogus\": %lld,"
	       " \"compile_error\": %lld, \"mismatch\": %lld, \"race\": %lld, \"passed_not_best\": %lld,"
	       " \"ncand_llm\": %lld, \"ncand_tune\": %lld, \"bests\": [",
	       (long long)ids.run_llm, (long long)ids.run_tune, (long long)ids.seed, (long long)ids.winner,
	       (long long)ids.bogus, (long long)ids.compile_error, (long long)ids.mismatch, (long long)ids.race,
	       (long long)ids.passed_not_best, (long long)ids.ncand_llm, (long long)ids.ncand_tune);
	for (size_t i = 0; i < ids.nbests; i++)
		printf("%s%lld", i ? ", " : "", (long long)ids.bests[i]);
	printf("]}\n");
	return 0;
}
#endif
