/* cli: `kiln targets new NAME` scaffolds a target folder (targets/scaffold.c) and
 * `kiln targets check DIR` tells a user what to fix before a search: the target loads,
 * nothing says FILL IN, the launch plan parses, the reference runs and gives the same
 * bits twice on the same small inputs (default draw and every regime), and the seed
 * passes verification including "nontrivial". One line per problem; exit 0 ready,
 * 1 something to fix, 2 usage. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "profile/profile.h"

static const char new_usage[] = "kiln targets new NAME [--from KERNEL.cu] [--dir DIR] [--ref c|py]";
static const char new_help[] =
	"Writes DIR/NAME/ (DIR default .): target.json, launch.json, seed.cu and a starting reference.\n"
	"  --from KERNEL.cu  guess buffers (pointers), scalars and size symbols (long long) from\n"
	"                    the first __global__ function; it becomes seed.cu\n"
	"  --ref c|py        reference.c (float64 C against kiln/reference.h) or reference.py\n"
	"                    (numpy); default c\n"
	"Then fill in what says FILL IN and run `kiln targets check DIR/NAME`.\n";

static const char check_usage[] = "kiln targets check DIR [--device emu|cuda|auto] [--threads N] [--workdir DIR]";
static const char check_help[] =
	"Checks a target folder before a search and prints one line per thing to fix:\n"
	"target.json loads and says no FILL IN, launch.json parses, the reference runs and is\n"
	"deterministic on small inputs (the default draw and every regime, twice each), and the\n"
	"seed passes `kiln verify` (which includes the nontrivial check).\n"
	"Exit: 0 ready, 1 something to fix, 2 usage.\n";

int kiln_cmd_targets_new(int argc, char **argv)
{
	const char *from = NULL, *dir = NULL, *ref = "c", *pos[1];
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_cli_opt opts[] = {{"from", 1, &from, NULL}, {"dir", 1, &dir, NULL}, {"ref", 1, &ref, NULL}, {0}};
	if (!kiln_cli_parse(argc, argv, opts, pos, 1, &npos, new_usage, new_help, &rc))
		return rc;
	if (npos != 1 || (strcmp(ref, "c") != 0 && strcmp(ref, "py") != 0)) {
		fprintf(stderr, "kiln targets new: %s\nusage: %s\n", npos != 1 ? "expected one NAME" : "--ref is c or py",
			new_usage);
		return KILN_EXIT_USAGE;
	}
	char *made = NULL;
	kiln_err e = kiln_target_scaffold(&made, pos[0], dir, from, strcmp(ref, "py") == 0);
	if (e)
		return kiln_cli_fail("targets new", e);
	printf("wrote %s/: target.json, launch.json, seed.cu, %s\n", made, strcmp(ref, "py") == 0 ? "reference.py" : "reference.c");
	printf("next: fill in what says FILL IN, then `kiln targets check %s`\n", made);
	free(made);
	return KILN_EXIT_OK;
}

typedef struct checker {
	int problems;
} checker;

static void fix(checker *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fix(checker *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("fix: ");
	vprintf(fmt, ap);
	printf("\n");
	va_end(ap);
	c->problems++;
}

/* An error line; for a C reference that does not compile, the compiler's log too. */
static void fix_error(checker *c, const char *what)
{
	const char *msg = kiln_error_last();
	fix(c, "%s: %s", what, msg);
	const char *lp = strstr(msg, "(the whole log: ");
	if (lp) {
		char path[4096];
		snprintf(path, sizeof path, "%s", lp + 16);
		char *end = strrchr(path, ')');
		if (end)
			*end = 0;
		char *log = NULL;
		size_t n;
		if (!kiln_file_read(&log, &n, path, 1u << 16)) {
			printf("  the compiler said:\n");
			for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
				printf("    %s\n", line);
		}
		free(log);
	}
}

static void check_fill_in(checker *c, const kiln_target *t)
{
	const char *fields[] = {"family", t->family, "summary", t->summary, "math", t->math, "notes", t->notes};
	for (size_t i = 0; i < 8; i += 2)
		if (fields[i + 1] && strstr(fields[i + 1], "FILL IN"))
			fix(c, "%s/target.json: \"%s\" still says FILL IN", t->dir, fields[i]);
	const char *files[] = {t->seed_path, t->ref_path};
	for (size_t i = 0; i < 2; i++) {
		char *text = NULL;
		size_t n;
		if (files[i] && !kiln_file_read(&text, &n, files[i], 4u << 20) && strstr(text, "FILL IN"))
			fix(c, "%s still says FILL IN", files[i]);
		free(text);
	}
}

/* The first element where two reference answers differ in their bits, or -1. */
static long differs(const kiln_refdata *a, const kiln_refdata *b, size_t *buf)
{
	for (size_t i = 0; i < a->n; i++)
		for (size_t j = 0; j < a->count[i]; j++)
			if (memcmp(&a->values[i][j], &b->values[i][j], sizeof(double)) ||
			    (a->slack[i] && memcmp(&a->slack[i][j], &b->slack[i][j], sizeof(double)))) {
				*buf = i;
				return (long)j;
			}
	return -1;
}

/* The reference twice on each small input set (the two smallest verification sizes with
 * the default draw, the smallest with each regime). */
static void check_reference(checker *c, const kiln_target *t)
{
	size_t nsz = t->nverify_sizes < 2 ? t->nverify_sizes : 2;
	for (long r = -1; r < (long)t->nregimes; r++) {
		for (size_t s = 0; s < (r < 0 ? nsz : 1); s++) {
			kiln_env env;
			kiln_inputs *in = NULL;
			kiln_refdata *a = NULL, *b = NULL;
			const char *rn = kiln_target_regime_name(t, r);
			if (kiln_target_sizes(&env, t, false, s) || kiln_inputs_generate_regime(&in, t, &env, 1000 + s, r)) {
				fix_error(c, "inputs");
				return;
			}
			if (kiln_reference_run(&a, t, in) || kiln_reference_run(&b, t, in)) {
				char what[128];
				snprintf(what, sizeof what, "the reference (regime %s)", rn);
				fix_error(c, what);
				kiln_refdata_free(a);
				kiln_inputs_free(in);
				return;
			}
			size_t bi = 0;
			long j = differs(a, b, &bi);
			if (j >= 0)
				fix(c, "the reference is not deterministic: %s[%ld] differs between two runs on the same inputs "
				       "(regime %s; %.17g vs %.17g): no clocks, random numbers or uninitialised memory",
				    t->buffers[bi].name, j, rn, a->values[bi][j], b->values[bi][j]);
			kiln_refdata_free(a);
			kiln_refdata_free(b);
			kiln_inputs_free(in);
			if (j >= 0)
				return;
		}
	}
}

static void check_seed(checker *c, const kiln_target *t, const kiln_plan *plan, const char *device, size_t threads,
		       const char *workdir)
{
	char *src = NULL, *cache = NULL;
	size_t n;
	kiln_device *dev = NULL;
	if (kiln_file_read(&src, &n, t->seed_path, 4u << 20) || kiln_device_open(&dev, device, NULL) ||
	    !(cache = kiln_cli_cache_dir(workdir))) {
		fix_error(c, "the seed");
		goto done;
	}
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src.target = t;
	vo.src.source = src;
	vo.src.source_name = t->seed_path;
	vo.src.plan = plan;
	vo.src.device = dev;
	vo.threads = threads;
	vo.src.cache_dir = cache;
	kiln_verdict v;
	if (kiln_verify(&v, &vo)) {
		fix_error(c, "verifying the seed");
		goto done;
	}
	if (v.target_weak)
		fix(c, "nontrivial: %s (outputs equal to doing nothing pass: make the inits or the math such that a "
		       "kernel must write something)", v.message);
	else if (v.unverifiable)
		fix(c, "the seed cannot be verified on this device: %s", v.message);
	else if (!v.pass)
		fix(c, "the seed fails verification [%s]: %s (replay: kiln verify %s)", v.check, v.message, t->dir);
	else
		printf("ok: the seed passes verification (%zu input sets, worst rel error %.3g)\n", v.sets, v.worst_rel);
done:
	kiln_device_free(dev);
	free(src);
	free(cache);
}

int kiln_cmd_targets_check(int argc, char **argv)
{
	const char *device = "auto", *threads_s = NULL, *workdir = NULL, *pos[1];
	int npos = 0, rc = KILN_EXIT_OK;
	size_t threads = 1;
	kiln_cli_opt opts[] = {{"device", 1, &device, NULL}, {"threads", 1, &threads_s, NULL},
			       {"workdir", 1, &workdir, NULL}, {0}};
	if (!kiln_cli_parse(argc, argv, opts, pos, 1, &npos, check_usage, check_help, &rc))
		return rc;
	if (npos != 1) {
		fprintf(stderr, "kiln targets check: expected one DIR\nusage: %s\n", check_usage);
		return KILN_EXIT_USAGE;
	}
	if (!kiln_cli_threads(&threads, "targets check", threads_s))
		return KILN_EXIT_USAGE;
	checker c = {0};
	kiln_target *t = NULL;
	kiln_plan *plan = NULL;
	if (kiln_target_load(&t, pos[0])) {
		fix(&c, "%s", kiln_error_last());
		goto done;
	}
	printf("target %s (%s reference %s)\n", t->name,
	       t->ref_kind == KILN_REF_C ? "C" : t->ref_kind == KILN_REF_PY ? "Python" : "built-in", t->reference);
	if (t->ref_kind == KILN_REF_C)
		printf("reference.c builds against %s/kiln/reference.h with %s\n",
		       kiln_reference_include_dir() ? kiln_reference_include_dir() : "(not found)",
		       getenv("CC") && *getenv("CC") ? getenv("CC") : "cc");
	check_fill_in(&c, t);
	if (kiln_plan_load(&plan, t->launch_path, t))
		fix(&c, "%s", kiln_error_last());
	int before = c.problems;
	check_reference(&c, t);
	if (c.problems == before)
		printf("ok: the reference runs and is deterministic\n");
	if (plan && c.problems == before)
		check_seed(&c, t, plan, device, threads, workdir);
done:
	if (c.problems)
		printf("%d thing%s to fix in %s\n", c.problems, c.problems == 1 ? "" : "s", pos[0]);
	else
		printf("ready: kiln run %s%s --policy tune (or --targets-dir with its parent folder)\n",
		       strchr(pos[0], '/') ? "" : "./", pos[0]);
	kiln_plan_free(plan);
	kiln_target_free(t);
	return c.problems ? KILN_EXIT_FAIL : KILN_EXIT_OK;
}
