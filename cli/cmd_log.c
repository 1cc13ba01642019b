/* kiln log TARGET|RUN: the candidates in order — id, hash prefix, node, verdict (and the
 * failed check), time, speedup over the run's seed, roofline fraction, '*' on each new
 * best, what it changed (one line, cut to the terminal's taste) — filtered by --passed / --failed / --node N / --since T. A TARGET means all of its
 * runs; a RUN (digits) one run. Read-only, so it works while a run writes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "archive/archive.h"
#include "cli/cli.h"

static const char usage[] =
	"kiln log TARGET|RUN [--passed | --failed] [--node N] [--since T] [--json] [--workdir DIR]";
static const char help[] =
	"Lists candidates in order: id, hash, node, verdict, time, speedup, roofline ('*' = new best)\n"
	"and what each changed (the model's CHANGED line, else kiln's diff summary; --json: whole).\n"
	"  TARGET          every run of the target; RUN (a number) one run\n"
	"  --passed        only candidates that passed verification; --failed only the others\n"
	"  --node N        only those implementing world-model node N\n"
	"  --since T       only those recorded at or after T: an ISO-8601 UTC time or prefix\n"
	"                  (2026-11-29, 2026-11-29T23:30) or a duration ago (45m, 2h, 1d)\n"
	"  --json          an array of objects (docs/review.md)\n";

/* --since: an ISO-8601 prefix kept as is (text comparison orders ISO times), or N[smhd] ago. */
static bool since_time(char *out, size_t n, const char *s)
{
	char *end = NULL;
	double v = strtod(s, &end);
	if (end != s && end && strlen(end) == 1 && strchr("smhd", *end) && v >= 0) {
		double mult = *end == 's' ? 1 : *end == 'm' ? 60 : *end == 'h' ? 3600 : 86400;
		kiln_iso8601(out, n, kiln_wall_s() - v * mult);
		return true;
	}
	size_t len = strlen(s);
	if (len < 4 || len >= n || strspn(s, "0123456789-:TZ ") != len)
		return false;
	snprintf(out, n, "%s", s);
	if (len > 10 && out[10] == ' ')
		out[10] = 'T';
	return true;
}

/* new_best from the search's own verdict where the archive knows it: the candidates
 * committed on <target>/<arch> (a new best past the noise margin). The SQL's fallback counts
 * any strict improvement. */
static void mark_archived_bests(cJSON *rows, const char *workdir)
{
	char *dir = kiln_path_join(kiln_cli_workdir(workdir), "archive");
	const char *target = NULL, *arch = NULL;
	int64_t *ids = NULL;
	size_t n = 0;
	bool have = false;
	cJSON *c;
	cJSON_ArrayForEach(c, rows) {
		const char *t = kiln_cli_jstr(c, "target", ""), *a = kiln_cli_jstr(c, "arch", "");
		if (!dir || !kiln_path_exists(dir))
			break;
		if (!target || strcmp(t, target) || strcmp(a, arch)) {
			free(ids);
			target = t;
			arch = a;
			have = kiln_git_best_candidates(&ids, &n, dir, t, a) == KILN_OK;
		}
		bool in = false;
		for (size_t i = 0; have && i < n; i++)
			in = in || ids[i] == (int64_t)kiln_cli_jnum(c, "id");
		if (have)
			cJSON_ReplaceItemInObjectCaseSensitive(c, "new_best",
							       cJSON_CreateNumber(in && kiln_cli_jnum(c, "time_us") > 0));
	}
	free(ids);
	free(dir);
}

/* "14.87/33.33": each bench size's time in bench order ("" for one size or none). */
static void per_size_text(char *out, size_t n, const cJSON *sizes)
{
	const cJSON *sz;
	size_t at = 0;
	out[0] = 0;
	if (cJSON_GetArraySize(sizes) < 2)
		return;
	cJSON_ArrayForEach(sz, sizes)
		if (at < n)
			at += (size_t)snprintf(out + at, n - at, "%s%.4g", at ? "/" : "", kiln_cli_jnum(sz, "time_us"));
}

static void print_log(const cJSON *rows)
{
	const cJSON *c;
	bool star = false, tilde = false;
	int per = 0; /* the per-size column's width; 0 = no row has several sizes */
	cJSON_ArrayForEach(c, rows) {
		char sizes[160];
		per_size_text(sizes, sizeof(sizes), cJSON_GetObjectItemCaseSensitive(c, "sizes"));
		if (cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(c, "sizes")) > 1 && (int)strlen(sizes) > per)
			per = (int)strlen(sizes);
	}
	per = per && per < 13 ? 13 : per;
	printf("%6s  %-10s %4s %5s %-6s %-22s %12s %8s %8s%s%-*s  %s\n", "ID", "HASH", "RUN", "ITER", "NODE", "VERDICT",
	       "TIME (us)", "SPEEDUP", "ROOFLINE", per ? "  " : "", per, per ? "PER SIZE (us)" : "", "WHAT CHANGED");
	cJSON_ArrayForEach(c, rows) {
		char verdict[40], t[24], sx[24], roof[24], sizes[160];
		const char *outcome = kiln_cli_jstr(c, "outcome", "?");
		double us = kiln_cli_jnum(c, "time_us"), x = kiln_cli_jnum(c, "speedup"), rf = kiln_cli_jnum(c, "roofline");
		if (strcmp(outcome, "failed") == 0)
			snprintf(verdict, sizeof(verdict), "FAIL %s", kiln_cli_jstr(c, "failed_check", "?"));
		else if (strcmp(outcome, "compile_error") == 0)
			snprintf(verdict, sizeof(verdict), "compile error");
		else
			snprintf(verdict, sizeof(verdict), "%s", outcome);
		snprintf(t, sizeof(t), isfinite(us) ? "%.4g%s" : "-", us,
			 strcmp(kiln_cli_jstr(c, "kind", ""), "modeled") == 0 ? "~" : "");
		snprintf(sx, sizeof(sx), isfinite(x) ? "%.2fx" : "-", x);
		snprintf(roof, sizeof(roof), isfinite(rf) ? "%.2f" : "-", rf);
		per_size_text(sizes, sizeof(sizes), cJSON_GetObjectItemCaseSensitive(c, "sizes"));
		const char *what = kiln_cli_jstr(c, "changed", "-");
		size_t cut = kiln_text_word_cut(what, 72);
		printf("%6.0f%c %-10.10s %4.0f %5.0f %-6s %-22s %12s %8s %8s%s%-*s  %.*s%s\n", kiln_cli_jnum(c, "id"),
		       kiln_cli_jnum(c, "new_best") == 1 ? '*' : ' ', kiln_cli_jstr(c, "hash", ""), kiln_cli_jnum(c, "run_id"),
		       kiln_cli_jnum(c, "iteration"), kiln_cli_jstr(c, "node_id", "seed"), verdict, t, sx, roof,
		       per ? "  " : "", per, per ? sizes : "", (int)cut, what, what[cut] ? " ..." : "");
		star = star || kiln_cli_jnum(c, "new_best") == 1;
		tilde = tilde || (isfinite(us) && strcmp(kiln_cli_jstr(c, "kind", ""), "modeled") == 0);
	}
	if (star || tilde)
		printf("\n%s%s%s\n", star ? "* a new best when it ran (the archive's best-so-far commits)" : "",
		       star && tilde ? "; " : "", tilde ? "~ modeled time (the emulator's cost model), not measured on a GPU" : "");
	if (per)
		printf("TIME is the weighted geometric mean of the per-size times (the objective); PER SIZE lists each "
		       "bench size's time in bench order\n");
}

int kiln_cmd_log(int argc, char **argv)
{
	const char *workdir = NULL, *node = NULL, *since = NULL, *pos[1];
	bool json = false, passed = false, failed = false;
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_cli_opt opts[] = {{"passed", 0, NULL, &passed}, {"failed", 0, NULL, &failed}, {"node", 1, &node, NULL},
			       {"since", 1, &since, NULL}, {"json", 0, NULL, &json}, {"workdir", 1, &workdir, NULL}, {0}};
	kiln_db *db = NULL;
	cJSON *rows = NULL;
	char since_buf[40];
	if (!kiln_cli_parse(argc, argv, opts, pos, 1, &npos, usage, help, &rc))
		return rc;
	if (npos != 1 || (passed && failed) || (since && !since_time(since_buf, sizeof(since_buf), since))) {
		fprintf(stderr, "kiln log: %s\nusage: %s\n",
			npos != 1 ? "expected one TARGET or RUN" : passed && failed ? "--passed and --failed exclude each other"
			: "--since: expected an ISO-8601 time (2026-11-29T23:30) or a duration (45m, 2h, 1d)", usage);
		return KILN_EXIT_USAGE;
	}
	if ((rc = kiln_cli_history_open(&db, "log", workdir)))
		return rc;
	bool is_run = strspn(pos[0], "0123456789") == strlen(pos[0]);
	int64_t run = 0;
	if (is_run && (rc = kiln_cli_run_resolve(&run, db, "log", pos[0])))
		goto done;
	if (node && node[0] == '#')
		node++;
	kiln_log_filter f = {run, is_run ? NULL : pos[0], passed ? 1 : failed ? 0 : -1, node, since ? since_buf : NULL};
	kiln_err e = kiln_db_log_rows(db, &rows, &f);
	if (e) {
		rc = kiln_cli_fail("log", e);
		goto done;
	}
	if (!is_run && cJSON_GetArraySize(rows) == 0 && !passed && !failed && !node && !since)
		rc = kiln_cli_run_resolve(&run, db, "log", pos[0]); /* says "no run of target" when so */
	if (rc)
		goto done;
	mark_archived_bests(rows, workdir);
	if (json)
		rc = kiln_cli_print_json(rows);
	else {
		kiln_cli_escape_doc(rows);
		print_log(rows);
	}
done:
	cJSON_Delete(rows);
	kiln_db_close(db);
	return rc;
}
