/* cli: `kiln verify TARGET` judges a kernel (the target's seed.cu/launch.json unless
 * --kernel/--launch) on K seeded input sets at every verification size and prints the
 * verdict: PASS/FAIL, the failed check, the worst error and where, and the seeds to
 * replay it with --seed. Exit 0 pass, 1 fail, 3 could not verify. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "profile/profile.h"

#define MAX_REPEAT 32

static const char usage[] =
	"kiln verify TARGET [--kernel F.cu --launch F.json] [-D NAME=V ...] [--seeds N] "
	"[--seed S ...] [--regime NAME] [--threads N] [--bench-size] [--device emu|cuda|auto] [--json] "
	"[--targets-dir DIR] [--workdir DIR]";
static const char help[] =
	"Verifies a kernel against the target's float64 reference on fresh seeded inputs.\n"
	"  --kernel F.cu       the candidate (default: the target's seed.cu)\n"
	"  --launch F.json     its launch plan (default: the target's launch.json)\n"
	"  -D NAME=V           a define / knob value (repeatable)\n"
	"  --seeds N           fresh input sets per size (default 3)\n"
	"  --seed S            replay this seed (repeatable; replaces fresh seeds)\n"
	"  --regime NAME       every input set under this regime (replays a failure the verdict names)\n"
	"  --threads N         input sets in parallel, one emulator each (default $KILN_THREADS, else all cores)\n"
	"  --bench-size        only one input set at the largest bench size that fits in memory (emulator;\n"
	"                      can take minutes; KILN_VERIFY_BENCH_MEM_GIB, default 16)\n"
	"  --device KIND       emu, cuda or auto (default auto)\n"
	"  --json              print the verdict as JSON\n"
	"  --targets-dir DIR   where to find TARGET\n"
	"  --workdir DIR       compile cache in DIR/cache (default $KILN_WORKDIR or ./.kiln)\n"
	"Exit status: 0 pass, 1 fail, 3 could not verify (also: unverifiable on this device).\n";

/* Takes -D/--define and --seed (repeatable) out of argv; the rest goes to rest. */
static int take_repeats(int argc, char **argv, const char **defs, size_t *ndefs, uint64_t *seeds,
			size_t *nseeds, char **rest, int *nrest)
{
	*ndefs = *nseeds = 0;
	*nrest = 0;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *val = NULL;
		bool is_seed = false;
		if (i > 0 && (strcmp(a, "-D") == 0 || strcmp(a, "--define") == 0 || strcmp(a, "--seed") == 0)) {
			is_seed = a[2] == 's';
			if (i + 1 >= argc) {
				fprintf(stderr, "kiln verify: missing value for '%s'\nusage: %s\n", a, usage);
				return KILN_EXIT_USAGE;
			}
			val = argv[++i];
		} else if (i > 0 && strncmp(a, "-D", 2) == 0) {
			val = a + 2;
		} else if (i > 0 && strncmp(a, "--define=", 9) == 0) {
			val = a + 9;
		} else if (i > 0 && strncmp(a, "--seed=", 7) == 0) {
			val = a + 7;
			is_seed = true;
		} else {
			rest[(*nrest)++] = argv[i];
			continue;
		}
		if (is_seed) {
			char *end = NULL;
			if (*nseeds >= MAX_REPEAT) {
				fprintf(stderr, "kiln verify: at most %d --seed\n", MAX_REPEAT);
				return KILN_EXIT_USAGE;
			}
			seeds[(*nseeds)++] = strtoull(val, &end, 0);
			if (!*val || *end || *val == '-') {
				fprintf(stderr, "kiln verify: --seed '%s': expected a non-negative integer\n", val);
				return KILN_EXIT_USAGE;
			}
		} else {
			if (*ndefs >= MAX_REPEAT || !*val) {
				fprintf(stderr, "kiln verify: bad or too many -D '%s'\n", val);
				return KILN_EXIT_USAGE;
			}
			defs[(*ndefs)++] = val;
		}
	}
	return -1;
}

static void print_human(const kiln_target *t, const kiln_verdict *v)
{
	printf("%s %s", v->pass ? "PASS" : "FAIL", t->name);
	if (!v->pass)
		printf(" [%s]%s%s", v->check, v->unverifiable ? " (unverifiable on this device)" : "",
		       v->target_weak ? " (target too weak)" : "");
	printf(": %zu input set(s) in %.2f s\n", v->sets, v->seconds);
	if (!v->pass) {
		printf("  ");
		kiln_text_print(stdout, v->message, KILN_TEXT_LINE);
		printf("\n");
	}
	if (v->worst_buffer[0]) {
		printf("  worst error: abs %.3g rel %.3g at %s[%zu]", v->worst_abs, v->worst_rel, v->worst_buffer,
		       v->worst_index);
		if (v->worst_row >= 0)
			printf(" [row %lld, col %lld]", (long long)v->worst_row, (long long)v->worst_col);
		printf("\n");
	}
	for (size_t i = 0; i < v->nfirst; i++)
		printf("  mismatch %s[%zu]: got %.9g expected %.9g\n", v->first[i].buffer, v->first[i].index,
		       v->first[i].got, v->first[i].expected);
	if (v->have_input) {
		printf("  input set:");
		for (size_t i = 0; i < v->input_sizes.n; i++)
			printf(" %s=%lld", v->input_sizes.names[i], (long long)v->input_sizes.values[i]);
		printf(" seed %llu, regime %s (%s set%s", (unsigned long long)v->input_seed,
		       v->input_regime[0] ? v->input_regime : "default", v->input_kind[0] ? v->input_kind : "listed",
		       v->input_sm_count ? ", small sm_count" : "");
		if (v->input_step)
			printf(", step %d", v->input_step);
		printf(")\n");
	}
	printf("  seeds:");
	for (size_t i = 0; i < v->nseeds; i++)
		printf(" %llu", (unsigned long long)v->seeds[i]);
	printf("\n  checks:");
	for (size_t i = 0; i < v->nchecks_run; i++)
		printf(" %s", v->checks_run[i]);
	printf("\n");
}

int kiln_cmd_verify(int argc, char **argv)
{
	const char *kernel = NULL, *launch = NULL, *seeds_s = NULL, *device = "auto", *tdir = NULL, *workdir = NULL;
	const char *regime = NULL, *threads_s = NULL;
	char *cache = NULL;
	bool json = false, bench_size = false;
	size_t threads = 1;
	const char *pos[1];
	int npos = 0, exit_now = KILN_EXIT_OK, rc = KILN_EXIT_ERROR;
	const char *defs[MAX_REPEAT];
	uint64_t seeds[MAX_REPEAT];
	size_t ndefs = 0, nseeds = 0;
	char **rest = NULL;
	int nrest = 0;
	kiln_target *t = NULL;
	kiln_plan *plan = NULL;
	kiln_device *dev = NULL;
	char *src = NULL, *vjson = NULL;
	size_t src_len = 0;
	kiln_err e = 0;
	const kiln_cli_opt opts[] = {
		{"kernel", 1, &kernel, NULL}, {"launch", 1, &launch, NULL}, {"seeds", 1, &seeds_s, NULL},
		{"device", 1, &device, NULL}, {"json", 0, NULL, &json}, {"targets-dir", 1, &tdir, NULL},
		{"regime", 1, &regime, NULL}, {"threads", 1, &threads_s, NULL}, {"bench-size", 0, NULL, &bench_size},
		{"workdir", 1, &workdir, NULL}, {0, 0, 0, 0},
	};
	if (!(rest = kiln_calloc((size_t)argc + 1, sizeof(*rest))))
		return kiln_cli_fail("verify", KILN_ENOMEM);
	if ((rc = take_repeats(argc, argv, defs, &ndefs, seeds, &nseeds, rest, &nrest)) >= 0)
		goto done;
	rc = KILN_EXIT_ERROR;
	if (!kiln_cli_parse(nrest, rest, opts, pos, 1, &npos, usage, help, &exit_now)) {
		rc = exit_now;
		goto done;
	}
	if (npos != 1 || (!kernel) != (!launch)) {
		fprintf(stderr, "kiln verify: %s\nusage: %s\n",
			npos != 1 ? "expected one TARGET" : "--kernel and --launch go together", usage);
		rc = KILN_EXIT_USAGE;
		goto done;
	}
	if (!kiln_cli_threads(&threads, "verify", threads_s)) {
		rc = KILN_EXIT_USAGE;
		goto done;
	}
	long long nk = 3;
	if (seeds_s) {
		char *end = NULL;
		nk = strtoll(seeds_s, &end, 10);
		if (!*seeds_s || *end || nk < 1 || nk > KILN_VERIFY_MAX_SEEDS) {
			fprintf(stderr, "kiln verify: --seeds '%s': expected 1..%d\n", seeds_s, KILN_VERIFY_MAX_SEEDS);
			rc = KILN_EXIT_USAGE;
			goto done;
		}
	}
	if ((e = kiln_target_find(&t, pos[0], tdir)))
		goto fail;
	if (!kernel) {
		kernel = t->seed_path;
		launch = t->launch_path;
	}
	if ((e = kiln_file_read(&src, &src_len, kernel, 4u << 20)) ||
	    (memchr(src, '\0', src_len) && (e = kiln_error_set(KILN_EINVAL, "%s: refused: the source contains a NUL byte", kernel))) || (e = kiln_plan_load(&plan, launch, t)) ||
	    (e = kiln_device_open(&dev, device, NULL)))
		goto fail;
	if (kiln_device_info_get(dev)->note[0] && !json)
		fprintf(stderr, "kiln verify: %s\n", kiln_device_info_get(dev)->note);
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src.target = t;
	vo.src.source = src;
	vo.src.source_name = kernel;
	vo.src.plan = plan;
	vo.src.defines = defs;
	vo.src.ndefines = ndefs;
	vo.src.device = dev;
	vo.nseeds = (size_t)nk;
	vo.seeds = nseeds ? seeds : NULL;
	vo.nseeds_given = nseeds;
	vo.regime = regime;
	vo.threads = threads;
	vo.bench_size = bench_size;
	vo.progress = json ? NULL : stderr;
	if (!(cache = kiln_cli_cache_dir(workdir))) {
		e = KILN_ENOMEM;
		goto fail;
	}
	vo.src.cache_dir = cache;
	kiln_verdict v;
	if ((e = kiln_verify(&v, &vo)))
		goto fail;
	if (json) {
		if (!(vjson = kiln_verdict_to_json(&v))) {
			e = kiln_error_set(KILN_ENOMEM, "verify: out of memory");
			goto fail;
		}
		printf("%s\n", vjson);
	} else {
		print_human(t, &v);
	}
	rc = v.pass ? KILN_EXIT_OK : v.unverifiable ? KILN_EXIT_ERROR : KILN_EXIT_FAIL; /* unverifiable: could not verify here */
	goto done;
fail:
	rc = kiln_cli_fail("verify", e);
done:
	free(cache);
	free(vjson);
	free(src);
	kiln_plan_free(plan);
	kiln_device_free(dev);
	kiln_target_free(t);
	free(rest);
	return rc;
}
