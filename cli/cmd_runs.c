/* kiln runs: every run in <workdir>/history.db, newest first — target, policy, model,
 * device, start, duration, iterations, best speedup, cost, how it ended. Also the helpers
 * the review commands share (runs, log, show, diff, tree, report, promote): the history is
 * always opened read-only, so they work while a run writes (WAL). */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#include "agent/agent.h"
#include "archive/archive.h"
#include "cli/cli.h"
#include "targets/targets.h"

int kiln_cli_history_open(kiln_db **out, const char *cmd, const char *workdir)
{
	char *path = kiln_path_join(kiln_cli_workdir(workdir), "history.db");
	kiln_err e = path ? kiln_db_open(out, path, KILN_DB_READONLY) : KILN_ENOMEM;
	free(path);
	return e ? kiln_cli_fail(cmd, e) : KILN_EXIT_OK;
}

/* Levenshtein distance of two names (the first 63 characters). */
static size_t edit_distance(const char *a, const char *b)
{
	size_t la = strnlen(a, 63), lb = strnlen(b, 63), row[64];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
			best = best < up + 1 ? best : up + 1;
			best = best < row[j - 1] + 1 ? best : row[j - 1] + 1;
			diag = up;
			row[j] = best;
		}
	}
	return row[lb];
}

static void consider(char *out, size_t n, size_t *best, const char *name, const char *ref)
{
	size_t d = name ? edit_distance(name, ref) : SIZE_MAX;
	if (d < *best && d > 0) {
		*best = d;
		snprintf(out, n, "%s", name);
	}
}

/* The target name closest to ref among the history's runs and the built-in targets, when
 * it is close (a typo: at most 2 edits, or a third of the name); "" otherwise. */
static void closest_target(char *out, size_t n, kiln_db *db, const char *ref)
{
	size_t best = SIZE_MAX;
	char **names = NULL;
	size_t nn = 0;
	*out = 0;
	if (kiln_db_run_targets(db, &names, &nn) == 0)
		for (size_t i = 0; i < nn; i++)
			consider(out, n, &best, names[i], ref);
	kiln_db_run_targets_free(names, nn);
	names = NULL;
	nn = 0;
	if (kiln_targets_list(&names, &nn, NULL) == 0)
		for (size_t i = 0; i < nn; i++)
			consider(out, n, &best, names[i], ref);
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	size_t len = strlen(ref), limit = len / 3 > 2 ? len / 3 : 2;
	if (best > limit)
		*out = 0;
}

int kiln_cli_run_resolve(int64_t *out, kiln_db *db, const char *cmd, const char *ref)
{
	size_t n = strlen(ref);
	bool digits = n > 0 && n < 19 && strspn(ref, "0123456789") == n;
	kiln_err e = kiln_db_run_find(db, out, ref);
	if (e != KILN_ENOTFOUND)
		return e ? kiln_cli_fail(cmd, e) : KILN_EXIT_OK;
	char near[96] = "";
	if (!digits)
		closest_target(near, sizeof(near), db, ref);
	fprintf(stderr, "kiln %s: %s '", cmd, digits ? "no run" : "no run of target");
	kiln_text_print(stderr, ref, KILN_TEXT_LINE);
	fprintf(stderr, "' in the history (%s", *near ? "did you mean '" : "");
	kiln_text_print(stderr, near, KILN_TEXT_LINE);
	fprintf(stderr, "%ssee `kiln runs`)\n", *near ? "'? " : "");
	return KILN_EXIT_ERROR;
}

int kiln_cli_fill_tree(kiln_db *db, cJSON *row, const char *id_key)
{
	cJSON *tree = cJSON_GetObjectItemCaseSensitive(row, "tree");
	if (!row || (tree && !cJSON_IsNull(tree)))
		return KILN_OK;
	char *text = NULL;
	kiln_err e = kiln_db_wm_tree(db, &text, (int64_t)kiln_cli_jnum(row, id_key));
	cJSON *parsed = e ? NULL : cJSON_Parse(text);
	free(text);
	if (!e && !parsed)
		e = kiln_error_set(KILN_ECORRUPT, "world-model revision %.0f: the rebuilt tree is not JSON",
				   kiln_cli_jnum(row, id_key));
	if (e)
		return e;
	if (tree)
		cJSON_ReplaceItemInObjectCaseSensitive(row, "tree", parsed);
	else
		cJSON_AddItemToObject(row, "tree", parsed);
	return KILN_OK;
}

int kiln_cli_print_json(const cJSON *j)
{
	char *text = cJSON_Print(j);
	if (!text) {
		fprintf(stderr, "kiln: out of memory\n");
		return KILN_EXIT_ERROR;
	}
	printf("%s\n", text);
	cJSON_free(text);
	return KILN_EXIT_OK;
}

double kiln_cli_jnum(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

const char *kiln_cli_jstr(const cJSON *o, const char *key, const char *if_null)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : if_null;
}

/* Keys whose values are multi-line texts (sources, logs, prompts, replies, diffs): they
 * keep \n and \t; every other string is one line. */
static bool multiline_key(const char *k)
{
	static const char *const keys[] = {"source", "log", "prompt", "reply", "body", "source_diff", "launch_diff",
					   "knobs_diff", NULL};
	for (const char *const *p = keys; k && *p; p++)
		if (strcmp(k, *p) == 0)
			return true;
	return false;
}

void kiln_cli_escape_doc(cJSON *j)
{
	cJSON *c;
	cJSON_ArrayForEach(c, j) {
		if (cJSON_IsString(c) && c->valuestring) {
			char *t = kiln_text_escape(c->valuestring, multiline_key(c->string) ? KILN_TEXT_MULTILINE
											  : KILN_TEXT_LINE);
			if (t && strcmp(t, c->valuestring) != 0)
				cJSON_SetValuestring(c, t);
			free(t);
		} else if (cJSON_IsObject(c) || cJSON_IsArray(c)) {
			kiln_cli_escape_doc(c);
		}
	}
}

/* Bytes under path (files; links not followed), depth-capped. */
static unsigned long long tree_bytes(const char *path, int depth)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return 0;
	if (!S_ISDIR(st.st_mode))
		return S_ISREG(st.st_mode) ? (unsigned long long)st.st_blocks * 512 : 0;
	unsigned long long sum = (unsigned long long)st.st_blocks * 512;
	DIR *d = depth < 32 ? opendir(path) : NULL;
	struct dirent *de;
	while (d && (de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		char *sub = kiln_path_join(path, de->d_name);
		sum += sub ? tree_bytes(sub, depth + 1) : 0;
		free(sub);
	}
	if (d)
		closedir(d);
	return sum;
}

static void human_bytes(char *out, size_t n, unsigned long long b)
{
	if (b >= 10ull << 30)
		snprintf(out, n, "%.0f GB", b / 1073741824.0);
	else if (b >= 1ull << 20)
		snprintf(out, n, "%.1f MB", b / 1048576.0);
	else
		snprintf(out, n, "%.0f KB", b / 1024.0);
}

void kiln_cli_print_workdir_size(const char *workdir)
{
	static const char *const files[] = {"history.db", "history.db-wal", "archive", "cache"};
	unsigned long long sz[4], total = 0;
	char t[4][32], all[32];
	for (size_t i = 0; i < 4; i++) {
		char *p = kiln_path_join(workdir, files[i]);
		total += sz[i] = p ? tree_bytes(p, 0) : 0;
		free(p);
	}
	human_bytes(t[0], sizeof(t[0]), sz[0] + sz[1]); /* the WAL counts with the database */
	human_bytes(t[2], sizeof(t[2]), sz[2]);
	human_bytes(t[3], sizeof(t[3]), sz[3]);
	human_bytes(all, sizeof(all), total);
	printf("work directory %s: %s (history.db %s, archive %s, compile cache %s)\n", workdir, all, t[0], t[2], t[3]);
}

/* "2h05m" / "7m" / "41s" into out. */
static void duration(char *out, size_t n, double s)
{
	if (!isfinite(s) || s < 0)
		snprintf(out, n, "-");
	else if (s >= 3600)
		snprintf(out, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
	else if (s >= 60)
		snprintf(out, n, "%dm", (int)(s / 60));
	else
		snprintf(out, n, "%ds", (int)s);
}

/* A "running" run whose process is gone was killed (kill -9, a crash, a reboot). */
static bool pid_gone(const cJSON *run)
{
	double pid = kiln_cli_jnum(run, "pid");
	const char *status = kiln_cli_jstr(run, "status", "");
	return strcmp(status, "running") == 0 && isfinite(pid) && pid > 0 && kill((pid_t)pid, 0) != 0 &&
	       errno == ESRCH;
}

/* s cut to `width` bytes ("..." at the end when cut, never inside a UTF-8 sequence), so
 * a long model or device name cannot push the columns after it out of line. */
static const char *fit(char *out, size_t n, const char *s, size_t width)
{
	size_t len = strlen(s);
	if (len <= width || width < 4 || width >= n) {
		snprintf(out, n, "%s", s);
		return out;
	}
	size_t cut = width - 3;
	while (cut > 0 && ((unsigned char)s[cut] & 0xC0) == 0x80)
		cut--;
	snprintf(out, n, "%.*s...", (int)cut, s);
	return out;
}

static void print_runs(const cJSON *rows)
{
	const cJSON *r;
	printf("%4s  %-16s %-6s %-18s %-12s %-20s %8s %6s %8s %8s  %s\n", "RUN", "TARGET", "POLICY", "MODEL", "DEVICE",
	       "STARTED", "DURATION", "ITERS", "BEST", "COST", "STATUS");
	cJSON_ArrayForEach(r, rows) {
		char dur[24], best[24], cost[24], dev[40], tgt[24], model[24], devc[24];
		double sx = kiln_cli_jnum(r, "best_speedup"), c = kiln_cli_jnum(r, "cost_usd");
		duration(dur, sizeof(dur), kiln_cli_jnum(r, "duration_s"));
		snprintf(best, sizeof(best), isfinite(sx) ? "%.2fx" : "-", sx);
		kiln_cost_text(cost, sizeof(cost), c, isfinite(c), (int64_t)kiln_cli_jnum(r, "unpriced_calls"), 2);
		snprintf(dev, sizeof(dev), "%s%s%s", kiln_cli_jstr(r, "device", "?"), kiln_cli_jstr(r, "gpu", NULL) ? "/" : "",
			 kiln_cli_jstr(r, "gpu", ""));
		printf("%4.0f  %-16s %-6s %-18s %-12s %-20s %8s %6.0f %8s %8s  %s%s\n", kiln_cli_jnum(r, "id"),
		       fit(tgt, sizeof tgt, kiln_cli_jstr(r, "target", "?"), 16), kiln_cli_jstr(r, "policy", "?"),
		       fit(model, sizeof model, kiln_cli_jstr(r, "llm_model", "-"), 18), fit(devc, sizeof devc, dev, 12),
		       kiln_cli_jstr(r, "started", "?"), dur, kiln_cli_jnum(r, "candidates"), best, cost,
		       kiln_cli_jstr(r, "status", "?"), pid_gone(r) ? " (process gone: killed? `kiln run --resume`)" : "");
	}
}

int kiln_cmd_runs(int argc, char **argv)
{
	static const char usage[] = "kiln runs [--target NAME] [--json] [--workdir DIR]";
	static const char help[] = "Lists every run in <workdir>/history.db, newest first (read-only: works while a run writes).\n"
				   "  --target NAME   only this target's runs\n"
				   "  --json          an array of objects (docs/review.md)\n"
				   "  --workdir DIR   default $KILN_WORKDIR or ./.kiln\n";
	const char *target = NULL, *workdir = NULL, *pos[1];
	bool json = false;
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_cli_opt opts[] = {{"target", 1, &target, NULL}, {"json", 0, NULL, &json}, {"workdir", 1, &workdir, NULL}, {0}};
	kiln_db *db = NULL;
	cJSON *rows = NULL;
	if (!kiln_cli_parse(argc, argv, opts, pos, 0, &npos, usage, help, &rc))
		return rc;
	if ((rc = kiln_cli_history_open(&db, "runs", workdir)))
		return rc;
	kiln_err e = kiln_db_review_runs(db, &rows, target);
	if (e) {
		rc = kiln_cli_fail("runs", e);
		goto done;
	}
	const cJSON *r;
	cJSON_ArrayForEach(r, rows)
		cJSON_AddBoolToObject((cJSON *)r, "process_gone", pid_gone(r));
	if (json)
		rc = kiln_cli_print_json(rows);
	else if (cJSON_GetArraySize(rows) == 0)
		printf("no runs%s%s yet (start one with `kiln run TARGET`)\n", target ? " of " : "", target ? target : "");
	else {
		kiln_cli_escape_doc(rows);
		print_runs(rows);
		kiln_cli_print_workdir_size(kiln_cli_workdir(workdir));
	}
done:
	cJSON_Delete(rows);
	kiln_db_close(db);
	return rc;
}
