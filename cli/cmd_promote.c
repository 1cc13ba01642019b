/* kiln promote TARGET [CANDIDATE] --to DIR: takes a candidate (default: the fastest best
 * of the target's runs) into a user's build. It compiles a fatbin (default: SASS for every
 * toolkit arch from sm_80 up, PTX of the newest), re-verifies the candidate on the emulator
 * with fresh seeds and every check once per distinct PTX, then once at the bench size, and
 * refuses a failing one with the reason; then writes <name>.cu (knob values baked in),
 * <name>.h (a C/C++ launch function: grid/block from launch.json as C expressions, the
 * shared-memory opt-in when needed), <name>.fatbin and the <name>.json manifest, and tags
 * the archive commit promoted/<target>/<arch>/vN (detached commit for a non-best).
 * The workflow is kiln_promote (archive/promote_run.c); this file parses and prints. */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "archive/archive.h"
#include "cli/cli.h"
#include "profile/profile.h"

static const char usage[] = "kiln promote TARGET [CANDIDATE] --to DIR [--arch sm_80,sm_90] [--name NAME] "
			    "[--seeds N] [--threads N] [--python] [--json] [--workdir DIR] [--targets-dir DIR]";
static const char help[] =
	"Re-verifies a candidate with fresh seeds and every emulator check, then once at the bench size\n"
	"on the emulator (the largest that fits KILN_VERIFY_BENCH_MEM_GIB, default 16; can take minutes;\n"
	"KILN_BENCH_CHECK=0 skips it), then writes DIR/NAME.cu,\n"
	"NAME.h (C launch function), NAME.fatbin and NAME.json (provenance) and tags the archive\n"
	"commit promoted/TARGET/ARCH/vN. A candidate that fails is refused with the reason (exit 1).\n"
	"  CANDIDATE       row id or hash prefix (default: the fastest best over the target's runs)\n"
	"  --to DIR        output folder (created)\n"
	"  --arch LIST     comma-separated architectures for the fatbin, e.g. sm_90a,sm_100f (default: every\n"
	"                  one the toolkit supports from sm_80 up; the fatbin adds PTX of the newest)\n"
	"  --name NAME     file and function prefix (default: TARGET)\n"
	"  --seeds N       fresh input sets per size for the re-verification (default 5)\n"
	"  --threads N     verification threads (default $KILN_THREADS, else all cores)\n"
	"  --python        also NAME.py: a PyTorch module loading NAME.fatbin with ctypes on libcuda,\n"
	"                  NAME(tensors..., scalars...) checks dtype, device, layout and shape and\n"
	"                  launches on torch's current stream\n"
	"  --json          print the manifest\n";


/* --arch LIST into archs (pointers into buf); an exit code. */
static int parse_archs(const char **archs, size_t *narchs, char *buf, size_t n, const char *list)
{
	snprintf(buf, n, "%s", list);
	for (char *save = NULL, *a = strtok_r(buf, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		size_t digits = strspn(a + 3, "0123456789");
		const char *suffix = a + 3 + digits;
		if (*narchs >= KILN_PROMOTE_MAX_ARCHS || strncmp(a, "sm_", 3) != 0 || digits < 2 || digits > 3 ||
		    !(suffix[0] == 0 || ((suffix[0] == 'a' || suffix[0] == 'f') && suffix[1] == 0))) {
			fprintf(stderr, "kiln promote: --arch '%s': expected a list like sm_80,sm_90a,sm_100f\nusage: %s\n", list, usage);
			return KILN_EXIT_USAGE;
		}
		archs[(*narchs)++] = a;
	}
	return KILN_EXIT_OK;
}

/* The reason a candidate was refused, on stderr; KILN_EXIT_FAIL. */
static int print_refusal(const kiln_promote_result *r)
{
	const kiln_verdict *v = r->verdict;
	fprintf(stderr, "kiln promote: refused: candidate %lld", (long long)r->candidate_id);
	if (r->outcome == KILN_PROMOTE_REFUSED_RECORDED) {
		fprintf(stderr, " did not pass when it was recorded (%s: ", r->recorded_outcome);
		kiln_text_print(stderr, r->reason, KILN_TEXT_LINE);
		fputs(")\n", stderr);
	} else if (r->outcome == KILN_PROMOTE_REFUSED_DEVICE_ONLY) {
		fputs(": ", stderr);
		kiln_text_print(stderr, r->reason, KILN_TEXT_LINE);
		fputc('\n', stderr);
	} else {
		fprintf(stderr, " fails re-verification for %s with fresh seeds%s: [%s] ",
			*r->verdict_arch ? r->verdict_arch : "?", v->unverifiable ? " (the emulator cannot run it)" : "",
			v->check);
		kiln_text_print(stderr, v->message, KILN_TEXT_LINE);
		fputc('\n', stderr);
	}
	return KILN_EXIT_FAIL;
}

static void print_summary(const kiln_promote_result *r, const kiln_promote_options *o)
{
	const kiln_verdict *v = r->verdict, *b = r->bench;
	const cJSON *tag, *m = r->manifest;
	printf("promoted candidate %.0f of %s: re-verified (%zu input sets, seeds",
	       kiln_cli_jnum(cJSON_GetObjectItemCaseSensitive(m, "candidate"), "id"), r->target, v->runs);
	for (size_t i = 0; i < v->nseeds; i++)
		printf(" %llu", (unsigned long long)v->seeds[i]);
	printf(")");
	if (b->sets) {
		printf(", and at the bench size");
		for (size_t i = 0; i < b->input_sizes.n; i++)
			printf("%s%s=%lld", i ? "," : " ", b->input_sizes.names[i], (long long)b->input_sizes.values[i]);
	}
	printf(", fatbin for");
	for (size_t i = 0; i < r->narchs; i++)
		printf(" %s", r->archs[i]);
	printf("\n  %s/%s.{cu,h,fatbin,json%s}\n  archive commit %s%s\n", o->out_dir, o->name, o->python ? ",py" : "", r->oid,
	       r->detached ? " (detached: the candidate was never a new best)" : "");
	cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "archive"), "tags"))
		printf("  tag %s\n", tag->valuestring);
}

int kiln_cmd_promote(int argc, char **argv)
{
	const char *workdir = NULL, *arch = NULL, *seeds = NULL, *threads_s = NULL, *pos[2];
	const char *archs[KILN_PROMOTE_MAX_ARCHS];
	char arch_buf[256];
	bool json = false;
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_promote_options o = KILN_PROMOTE_OPTIONS_INIT;
	kiln_promote_result *r = NULL;
	kiln_cli_opt opts[] = {{"to", 1, &o.out_dir, NULL}, {"arch", 1, &arch, NULL}, {"name", 1, &o.name, NULL},
			       {"seeds", 1, &seeds, NULL}, {"json", 0, NULL, &json}, {"workdir", 1, &workdir, NULL},
			       {"targets-dir", 1, &o.targets_dir, NULL}, {"threads", 1, &threads_s, NULL},
			       {"python", 0, NULL, &o.python}, {0}};
	if (!kiln_cli_parse(argc, argv, opts, pos, 2, &npos, usage, help, &rc))
		return rc;
	long nseeds = seeds ? strtol(seeds, NULL, 10) : 5;
	if (!kiln_cli_threads(&o.threads, "promote", threads_s))
		return KILN_EXIT_USAGE;
	if (npos < 1 || !o.out_dir || nseeds < 1 || nseeds > KILN_VERIFY_MAX_SEEDS) {
		fprintf(stderr, "kiln promote: %s\nusage: %s\n", npos < 1 ? "expected TARGET [CANDIDATE]"
			: !o.out_dir ? "--to DIR is required" : "--seeds: expected 1..32", usage);
		return KILN_EXIT_USAGE;
	}
	if (arch && (rc = parse_archs(archs, &o.narchs, arch_buf, sizeof(arch_buf), arch)))
		return rc;
	o.archs = archs;
	o.nseeds = (size_t)nseeds;
	o.workdir = kiln_cli_workdir(workdir);
	o.target = pos[0];
	o.name = o.name ? o.name : pos[0];
	o.candidate = npos > 1 ? pos[1] : NULL;
	if ((rc = kiln_cli_history_open(&o.db, "promote", workdir)))
		return rc;
	kiln_err e = kiln_promote(&r, &o);
	if (e)
		rc = kiln_cli_fail("promote", e);
	else if (r->outcome != KILN_PROMOTE_DONE)
		rc = print_refusal(r);
	else if (json)
		rc = kiln_cli_print_json(r->manifest);
	else
		print_summary(r, &o);
	kiln_promote_result_free(r);
	kiln_db_close(o.db);
	return rc;
}
