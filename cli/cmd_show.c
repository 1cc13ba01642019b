/* kiln show CANDIDATE: everything history.db knows about one candidate — source, launch
 * plan, knobs, compile report, verdict, timing and counters, its world-model node with the
 * ancestry, and the LLM call that wrote it (prompt and reply with --prompt).
 * kiln diff A B: unified diffs of two candidates' sources, launch plans and knobs with
 * their metrics side by side. Candidates are row ids or hash prefixes (>= 4 hex digits). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "archive/archive.h"
#include "cli/cli.h"

static void print_kv(const char *key, const char *fmt, double v)
{
	if (isfinite(v)) {
		printf("  %-18s ", key);
		printf(fmt, v);
		printf("\n");
	}
}

/* The labelled fields of a compile result, verification or timing row (archive/fields.c),
 * in the table's order; time_label, when set, names time_us. */
static void print_fields(const cJSON *row, const kiln_record_desc *d, const char *time_label)
{
	for (size_t i = 0; i < d->nfields; i++) {
		const kiln_field *f = &d->fields[i];
		if (f->label)
			print_kv(time_label && strcmp(f->column, "time_us") == 0 ? time_label : f->label, f->fmt,
				 kiln_cli_jnum(row, f->column));
	}
}

static void print_json_field(const char *key, const cJSON *v)
{
	char *t = v && !cJSON_IsNull(v) ? cJSON_PrintUnformatted(v) : NULL;
	if (t)
		printf("  %-18s %s\n", key, t);
	cJSON_free(t);
}

/* What the run's times are, for this candidate's plan: "sum of kernel times + 1 launch gap". */
static void print_time_def(const cJSON *c, const cJSON *t)
{
	const cJSON *launch = cJSON_GetObjectItemCaseSensitive(c, "launch");
	kiln_rank_time r = KILN_RANK_LAUNCHES;
	char def[96];
	kiln_rank_time_parse(&r, kiln_cli_jstr(c, "rank_time", "launches"));
	kiln_rank_time_text(def, sizeof def, r, (size_t)cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(launch, "launches")),
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(launch, "graph")));
	printf("  %-18s %s, %s\n", "time", def, kiln_cli_jstr(t, "kind", "?"));
}

/* Per launch: the deciding term, occupancy, waves and every term (modeled timings). */
static void print_launches(const cJSON *breakdown, const char *indent)
{
	static const char *const terms[] = {"kernel_us", "dram_us", "l2_us", "issue_us", "pipe_us", "smem_us",
					    "latency_us", "barrier_us", "atomic_us", "overhead_us"};
	const cJSON *b;
	int li = 0;
	cJSON_ArrayForEach(b, breakdown) {
		printf("%s  launch %d: %s-bound, %.4g us; occupancy %.2f, %.3g blocks/SM, %.3g waves\n%s   ", indent, li++,
		       kiln_cli_jstr(b, "bound", "?"), kiln_cli_jnum(b, "time_us"), kiln_cli_jnum(b, "occupancy"),
		       kiln_cli_jnum(b, "blocks_per_sm"), kiln_cli_jnum(b, "waves"), indent);
		for (size_t k = 0; k < KILN_ARRAY_LEN(terms); k++)
			printf(" %.*s %.3g", (int)(strlen(terms[k]) - 3), terms[k], kiln_cli_jnum(b, terms[k]));
		printf(" (us)\n");
	}
}

/* Every bench size (schema v3: timings.sizes) with its time, roofline, bound and launches;
 * else the one breakdown of the timing. Then the fit note. */
static void print_breakdown(const cJSON *t)
{
	const cJSON *fit = cJSON_GetObjectItemCaseSensitive(t, "fit"), *sizes = cJSON_GetObjectItemCaseSensitive(t, "sizes"), *z;
	bool launches = false;
	if (cJSON_GetArraySize(sizes) > 1)
		printf("  per bench size (the time above is their weighted geometric mean, the objective):\n");
	cJSON_ArrayForEach(z, sizes) {
		launches |= cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(z, "breakdown")) > 0;
		const cJSON *v;
		printf("  size");
		cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(z, "sizes"))
			printf(" %s=%.0f", v->string, v->valuedouble);
		printf(" (weight %g): %.4g us, roofline %.3f%s%s%s\n", kiln_cli_jnum(z, "weight"), kiln_cli_jnum(z, "time_us"),
		       kiln_cli_jnum(z, "roofline"), *kiln_cli_jstr(z, "bound", "") ? ", " : "", kiln_cli_jstr(z, "bound", ""),
		       *kiln_cli_jstr(z, "bound", "") ? "-bound" : "");
		print_launches(cJSON_GetObjectItemCaseSensitive(z, "breakdown"), "  ");
	}
	if (!launches) /* a timing from before schema v3, or sizes recorded without their launches */
		print_launches(cJSON_GetObjectItemCaseSensitive(t, "breakdown"), "");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(fit, "raised_to_floor")))
		printf("  fit                undercounted: %.4g DRAM bytes fitted < %.4g floor; taken conservatively\n",
		       kiln_cli_jnum(fit, "fit_dram_bytes"), kiln_cli_jnum(fit, "floor_bytes"));
}

static void print_show(const cJSON *d, bool with_prompt)
{
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(d, "candidate"),
		    *cr = cJSON_GetObjectItemCaseSensitive(d, "compile"),
		    *v = cJSON_GetObjectItemCaseSensitive(d, "verification"),
		    *t = cJSON_GetObjectItemCaseSensitive(d, "timing"),
		    *l = cJSON_GetObjectItemCaseSensitive(d, "llm_call"), *a;
	printf("candidate %.0f  %s\n  run %.0f (%s %s), iteration %.0f, %s%s%s, recorded %s\n", kiln_cli_jnum(c, "id"),
	       kiln_cli_jstr(c, "hash", ""), kiln_cli_jnum(c, "run_id"), kiln_cli_jstr(c, "target", "?"),
	       kiln_cli_jstr(c, "arch", "?"), kiln_cli_jnum(c, "iteration"), kiln_cli_jstr(c, "outcome", "?"),
	       kiln_cli_jnum(c, "is_best") == 1 ? ", the run's best" : "", kiln_cli_jnum(c, "is_seed") == 1 ? ", the seed" : "",
	       kiln_cli_jstr(c, "created", "?"));
	/* the candidate's own change first: the action's title says what the search set out to
	 * do, and a model may have changed method inside it */
	printf("  what changed: %s\n", kiln_cli_jstr(c, "changed", "(not recorded)"));
	printf("\naction (world-model node):");
	int depth = 0;
	cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(d, "ancestry"))
		printf("%s#%.0f %s [%s]", depth++ ? " > " : " ", kiln_cli_jnum(a, "id"), kiln_cli_jstr(a, "title", ""),
		       kiln_cli_jstr(a, "status", ""));
	printf("%s\n", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "ancestry")) ? "" : " none (seed or tuner)");
	if (cJSON_IsObject(cr)) {
		printf("\ncompile: %s (%s, %s)\n", kiln_cli_jnum(cr, "ok") == 1 ? "ok" : "FAILED", kiln_cli_jstr(cr, "arch", "?"),
		       kiln_cli_jstr(cr, "toolkit", "?"));
		print_fields(cr, &kiln_compile_desc, NULL);
		if (*kiln_cli_jstr(cr, "log", ""))
			printf("  log:\n%s\n", kiln_cli_jstr(cr, "log", ""));
	}
	if (cJSON_IsObject(v)) {
		const char *msg = kiln_cli_jstr(v, "message", "");
		printf("\nverification: %s%s on %s\n%s%s%s", kiln_cli_jnum(v, "passed") == 1 ? "PASS" : "FAIL ",
		       kiln_cli_jnum(v, "passed") == 1 ? "" : kiln_cli_jstr(v, "failed_check", "?"),
		       kiln_cli_jstr(v, "device", "?"), *msg ? "  " : "", msg, *msg ? "\n" : "");
		print_fields(v, &kiln_verify_desc, NULL);
		print_json_field("seeds", cJSON_GetObjectItemCaseSensitive(v, "seeds"));
		print_json_field("checks", cJSON_GetObjectItemCaseSensitive(v, "checks_run"));
	}
	if (cJSON_IsObject(t)) {
		printf("\ntiming (%s on %s):\n", kiln_cli_jstr(t, "kind", "?"), kiln_cli_jstr(t, "device", "?"));
		print_time_def(c, t);
		print_fields(t, &kiln_timing_desc,
			     cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "sizes")) > 1 ? "time us (objective)" : NULL);
		print_breakdown(t);
		print_json_field("counters", cJSON_GetObjectItemCaseSensitive(t, "counters"));
	}
	if (cJSON_IsObject(l)) {
		printf("\nLLM call %.0f: %s:%s, %s, %s\n", kiln_cli_jnum(l, "id"), kiln_cli_jstr(l, "provider", "?"),
		       kiln_cli_jstr(l, "model", "?"), kiln_cli_jstr(l, "purpose", "?"), kiln_cli_jstr(l, "status", "?"));
		print_kv("prompt tokens", "%.0f", kiln_cli_jnum(l, "prompt_tokens"));
		print_kv("cached tokens", "%.0f", kiln_cli_jnum(l, "cached_tokens"));
		print_kv("completion tokens", "%.0f", kiln_cli_jnum(l, "completion_tokens"));
		print_kv("cost $", "%.4f", kiln_cli_jnum(l, "cost_usd"));
		print_kv("latency s", "%.1f", kiln_cli_jnum(l, "latency_s"));
		if (with_prompt)
			printf("\n--- prompt ---\n%s\n--- reply ---\n%s\n", kiln_cli_jstr(l, "prompt", ""),
			       kiln_cli_jstr(l, "reply", "(none)"));
	}
	char *knobs = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(c, "knobs"));
	printf("\nknobs: %s\n", knobs ? knobs : "{}");
	cJSON_free(knobs);
	char *launch = cJSON_Print(cJSON_GetObjectItemCaseSensitive(c, "launch"));
	printf("launch.json:\n%s\n\nkernel.cu:\n%s\n", launch ? launch : "?", kiln_cli_jstr(c, "source", ""));
	cJSON_free(launch);
}

int kiln_cmd_show(int argc, char **argv)
{
	static const char usage[] = "kiln show CANDIDATE [--prompt] [--json] [--workdir DIR]";
	static const char help[] = "Shows one candidate: source, launch plan, compile report, verdict, timing,\n"
				   "counters, its world-model node and ancestry, the LLM call that wrote it.\n"
				   "  CANDIDATE   a row id (17) or a hash prefix of at least 4 hex digits (like git)\n"
				   "  --prompt    also print the LLM prompt and reply\n"
				   "  --json      one object (docs/review.md)\n";
	const char *workdir = NULL, *pos[1];
	bool json = false, prompt = false;
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_cli_opt opts[] = {{"prompt", 0, NULL, &prompt}, {"json", 0, NULL, &json}, {"workdir", 1, &workdir, NULL}, {0}};
	kiln_db *db = NULL;
	cJSON *doc = NULL;
	if (!kiln_cli_parse(argc, argv, opts, pos, 1, &npos, usage, help, &rc))
		return rc;
	if (npos != 1) {
		fprintf(stderr, "kiln show: expected one CANDIDATE\nusage: %s\n", usage);
		return KILN_EXIT_USAGE;
	}
	if ((rc = kiln_cli_history_open(&db, "show", workdir)))
		return rc;
	kiln_err e = kiln_db_candidate_doc(db, &doc, pos[0], prompt);
	if (e)
		rc = kiln_cli_fail("show", e);
	else if (json)
		rc = kiln_cli_print_json(doc);
	else {
		kiln_cli_escape_doc(doc);
		print_show(doc, prompt);
	}
	cJSON_Delete(doc);
	kiln_db_close(db);
	return rc;
}

/* ---- diff ---- */

/* The unified diff of field key (JSON fields pretty-printed first) of two candidates. */
static kiln_err field_diff(char **out, const cJSON *a, const cJSON *b, const char *key, const char *file)
{
	const cJSON *va = cJSON_GetObjectItemCaseSensitive(a, key), *vb = cJSON_GetObjectItemCaseSensitive(b, key);
	char *ta = cJSON_IsString(va) ? NULL : cJSON_Print(va), *tb = cJSON_IsString(vb) ? NULL : cJSON_Print(vb);
	char *na = kiln_asprintf("%s (candidate %.0f)", file, kiln_cli_jnum(a, "id"));
	char *nb = kiln_asprintf("%s (candidate %.0f)", file, kiln_cli_jnum(b, "id"));
	kiln_err e = !na || !nb ? KILN_ENOMEM
		: kiln_diff_text(out, ta ? ta : kiln_cli_jstr(a, key, ""), na, tb ? tb : kiln_cli_jstr(b, key, ""), nb);
	cJSON_free(ta);
	cJSON_free(tb);
	free(na);
	free(nb);
	return e;
}

static const char *const metric_keys[] = {"run_id", "iteration", "node_id", "outcome", "failed_check", "kind",
					  "time_us", "speedup", "roofline", "registers", "spill_store_bytes", "changed",
					  NULL};

static void metric_text(char *out, size_t n, const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (cJSON_IsNumber(v))
		snprintf(out, n, "%.6g", v->valuedouble);
	else
		snprintf(out, n, "%s", cJSON_IsString(v) ? v->valuestring : "-");
}

int kiln_cmd_diff(int argc, char **argv)
{
	static const char usage[] = "kiln diff A B [--json] [--workdir DIR]";
	static const char help[] = "Unified diffs of two candidates' kernel.cu, launch.json and knobs, with their\n"
				   "metrics side by side. A and B: row ids or hash prefixes.\n"
				   "  --json   {\"a\", \"b\", \"source_diff\", \"launch_diff\", \"knobs_diff\"} (docs/review.md)\n";
	const char *workdir = NULL, *pos[2];
	bool json = false;
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_cli_opt opts[] = {{"json", 0, NULL, &json}, {"workdir", 1, &workdir, NULL}, {0}};
	kiln_db *db = NULL;
	cJSON *a = NULL, *b = NULL, *doc = NULL;
	char *diffs[3] = {NULL, NULL, NULL};
	static const char *const fields[3][3] = {{"source", "kernel.cu", "source_diff"},
						 {"launch", "launch.json", "launch_diff"},
						 {"knobs", "knobs.json", "knobs_diff"}};
	if (!kiln_cli_parse(argc, argv, opts, pos, 2, &npos, usage, help, &rc))
		return rc;
	if (npos != 2) {
		fprintf(stderr, "kiln diff: expected two candidates A B\nusage: %s\n", usage);
		return KILN_EXIT_USAGE;
	}
	if ((rc = kiln_cli_history_open(&db, "diff", workdir)))
		return rc;
	kiln_err e = kiln_db_candidate_metrics(db, &a, pos[0]);
	if (!e)
		e = kiln_db_candidate_metrics(db, &b, pos[1]);
	for (int i = 0; !e && i < 3; i++)
		e = field_diff(&diffs[i], a, b, fields[i][0], fields[i][1]);
	if (e) {
		rc = kiln_cli_fail("diff", e);
		goto done;
	}
	if (json) {
		doc = cJSON_CreateObject();
		for (int i = 0; i < 3; i++) {
			cJSON_DeleteItemFromObject(a, fields[i][0]);
			cJSON_DeleteItemFromObject(b, fields[i][0]);
			cJSON_AddStringToObject(doc, fields[i][2], diffs[i]);
		}
		cJSON_AddItemToObject(doc, "a", a);
		cJSON_AddItemToObject(doc, "b", b);
		a = b = NULL;
		rc = kiln_cli_print_json(doc);
		goto done;
	}
	kiln_cli_escape_doc(a);
	kiln_cli_escape_doc(b);
	printf("%-20s %-24.0f %-24.0f\n", "candidate", kiln_cli_jnum(a, "id"), kiln_cli_jnum(b, "id"));
	for (const char *const *k = metric_keys; *k; k++) {
		char ta[64], tb[64];
		metric_text(ta, sizeof(ta), a, *k);
		metric_text(tb, sizeof(tb), b, *k);
		printf("%-20s %-24s %-24s%s\n", *k, ta, tb, strcmp(ta, tb) ? "" : "  (same)");
	}
	for (int i = 0; i < 3; i++) {
		printf("\n");
		kiln_text_print(stdout, diffs[i], KILN_TEXT_MULTILINE);
	}
	if (!diffs[0][0] && !diffs[1][0] && !diffs[2][0])
		printf("(identical source, launch plan and knobs)\n");
done:
	for (int i = 0; i < 3; i++)
		free(diffs[i]);
	cJSON_Delete(a);
	cJSON_Delete(b);
	cJSON_Delete(doc);
	kiln_db_close(db);
	return rc;
}
