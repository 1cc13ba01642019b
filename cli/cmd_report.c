/* kiln report RUN|TARGET -o FILE: one self-contained HTML page about a run (TARGET: its
 * newest run) — charts, every candidate, the world-model tree, the best candidates, the
 * winner and its diff to the seed, the budget spent (kiln_report_html). Read-only. */
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"
#include "cli/cli.h"

int kiln_cmd_report(int argc, char **argv)
{
	static const char usage[] = "kiln report RUN|TARGET -o FILE.html [--workdir DIR]";
	static const char help[] = "Writes one self-contained HTML file (inline SVG, no scripts or network) about a run:\n"
				   "best time and speedup over iterations, wall-clock and cost; every candidate by\n"
				   "outcome; roofline fraction; the world-model tree with the path to the winner; the\n"
				   "best candidates with their sources; the winner's diff to the seed; the budget spent.\n"
				   "  -o, --output FILE   where to write it (required)\n";
	const char *workdir = NULL, *output = NULL, *pos[1];
	int npos = 0, rc = KILN_EXIT_OK;
	char **args = kiln_calloc((size_t)argc + 1, sizeof(char *));
	kiln_cli_opt opts[] = {{"output", 1, &output, NULL}, {"workdir", 1, &workdir, NULL}, {0}};
	kiln_db *db = NULL;
	char *html = NULL, *archive = NULL;
	int64_t run = 0;
	if (!args)
		return kiln_cli_fail("report", KILN_ENOMEM);
	for (int i = 0; i < argc; i++) /* -o is the one short option */
		args[i] = strcmp(argv[i], "-o") == 0 && i > 0 ? (char *)"--output" : argv[i];
	if (!kiln_cli_parse(argc, args, opts, pos, 1, &npos, usage, help, &rc))
		goto done;
	if (npos != 1 || !output) {
		fprintf(stderr, "kiln report: %s\nusage: %s\n", npos != 1 ? "expected one RUN or TARGET" : "-o FILE is required",
			usage);
		rc = KILN_EXIT_USAGE;
		goto done;
	}
	if ((rc = kiln_cli_history_open(&db, "report", workdir)) || (rc = kiln_cli_run_resolve(&run, db, "report", pos[0])))
		goto done;
	if (!(archive = kiln_path_join(kiln_cli_workdir(workdir), "archive"))) {
		rc = kiln_cli_fail("report", KILN_ENOMEM);
		goto done;
	}
	kiln_err e = kiln_report_html(&html, db, kiln_path_exists(archive) ? archive : NULL, run);
	if (!e)
		e = kiln_file_write_atomic(output, html, strlen(html));
	if (e) {
		rc = kiln_cli_fail("report", e);
		goto done;
	}
	printf("wrote %s (%zu KB): run %lld\n", output, (strlen(html) + 1023) / 1024, (long long)run);
done:
	free(html);
	free(archive);
	free(args);
	kiln_db_close(db);
	return rc;
}
