/* kiln tree RUN|TARGET [--at ITERATION]: the world model of a run as an indented tree —
 * each node's id, title, status, score, attempts (passed) and best speedup — as it stood
 * after the newest revision recorded at or before ITERATION (default: the newest), with
 * the edits and rejections of that revision. Read-only: works while a run writes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "archive/archive.h"
#include "cli/cli.h"

static const char usage[] = "kiln tree RUN|TARGET [--at ITERATION] [--json] [--workdir DIR]";
static const char help[] =
	"Prints a run's world model (TARGET: its newest run) as an indented tree.\n"
	"  --at ITERATION   the tree as it was after that iteration (default: the newest revision)\n"
	"  --json           {\"run\",\"revision_id\",\"iteration\",\"revision_index\",\"revisions\",\"created\",\"edits\",\"rejected\",\"tree\"}\n";

static void print_node(const cJSON *nodes, const cJSON *n, int depth, int64_t best)
{
	double sx = kiln_cli_jnum(n, "best_speedup"), bc = kiln_cli_jnum(n, "best_candidate");
	printf("%*s#%.0f %s [%s] score %.2f, %.0f attempts (%.0f passed)", depth * 2, "", kiln_cli_jnum(n, "id"),
	       kiln_cli_jstr(n, "title", "?"), kiln_cli_jstr(n, "status", "?"), kiln_cli_jnum(n, "score"),
	       kiln_cli_jnum(n, "attempts"), kiln_cli_jnum(n, "passed"));
	if (isfinite(sx) && sx > 0)
		printf(", best %.2fx", sx);
	if (isfinite(bc) && bc > 0)
		printf(" (candidate %.0f%s)", bc, (int64_t)bc == best ? ", the run's best" : "");
	printf("\n");
	const cJSON *c;
	cJSON_ArrayForEach(c, nodes)
		if (kiln_cli_jnum(c, "parent") == kiln_cli_jnum(n, "id") && depth < 64)
			print_node(nodes, c, depth + 1, best);
}

int kiln_cmd_tree(int argc, char **argv)
{
	const char *workdir = NULL, *at = NULL, *pos[1];
	bool json = false;
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_cli_opt opts[] = {{"at", 1, &at, NULL}, {"json", 0, NULL, &json}, {"workdir", 1, &workdir, NULL}, {0}};
	kiln_db *db = NULL;
	cJSON *rev = NULL;
	int64_t run = 0;
	if (!kiln_cli_parse(argc, argv, opts, pos, 1, &npos, usage, help, &rc))
		return rc;
	if (npos != 1 || (at && (!*at || strspn(at, "0123456789") != strlen(at)))) {
		fprintf(stderr, "kiln tree: %s\nusage: %s\n", npos != 1 ? "expected one RUN or TARGET"
			: "--at: expected an iteration number", usage);
		return KILN_EXIT_USAGE;
	}
	if ((rc = kiln_cli_history_open(&db, "tree", workdir)) || (rc = kiln_cli_run_resolve(&run, db, "tree", pos[0])))
		goto done;
	kiln_err e = kiln_db_review_wm(db, &rev, run, at ? strtoll(at, NULL, 10) : -1);
	if (e) {
		rc = kiln_cli_fail("tree", e);
		goto done;
	}
	if (rev && (e = kiln_cli_fill_tree(db, rev, "revision_id"))) {
		rc = kiln_cli_fail("tree", e);
		goto done;
	}
	if (!rev) {
		fprintf(stderr, "kiln tree: run %lld has no world-model revision%s%s yet\n", (long long)run,
			at ? " at or before iteration " : "", at ? at : "");
		rc = KILN_EXIT_ERROR;
		goto done;
	}
	if (json) {
		rc = kiln_cli_print_json(rev);
		goto done;
	}
	kiln_cli_escape_doc(rev);
	const cJSON *tree = cJSON_GetObjectItemCaseSensitive(rev, "tree"),
		    *nodes = cJSON_GetObjectItemCaseSensitive(tree, "nodes"), *n;
	printf("run %lld, world model after iteration %.0f (revision %.0f of the run's %.0f, tree revision %.0f)\n",
	       (long long)run, kiln_cli_jnum(rev, "iteration"), kiln_cli_jnum(rev, "revision_index"),
	       kiln_cli_jnum(rev, "revisions"), kiln_cli_jnum(tree, "revision"));
	cJSON_ArrayForEach(n, nodes)
		if (kiln_cli_jnum(n, "parent") < 0)
			print_node(nodes, n, 0, isfinite(kiln_cli_jnum(rev, "best_candidate"))
							? (int64_t)kiln_cli_jnum(rev, "best_candidate") : 0);
	const cJSON *rej = cJSON_GetObjectItemCaseSensitive(rev, "rejected"), *r;
	cJSON_ArrayForEach(r, rej)
		printf("rejected edit: op %.0f (%s): %s\n", kiln_cli_jnum(r, "index"), kiln_cli_jstr(r, "op", "?"),
		       kiln_cli_jstr(r, "reason", "?"));
done:
	cJSON_Delete(rev);
	kiln_db_close(db);
	return rc;
}
