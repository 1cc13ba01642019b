/* kiln targets: lists the targets of a folder (name, family, summary), or with `show
 * NAME` prints everything a target declares: math, sizes, buffers with their bench-size
 * footprint, scalars, tolerances, traffic and the ideal time at the H100's 3.35 TB/s,
 * knobs and the seed launch plan. A target that fails to load is reported with its
 * one-line error and makes the exit code 3; the others are still listed. */
#include "cli/cli.h"

#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "targets/targets.h"

#define PEAK_BYTES_PER_S 3.35e12 /* H100 SXM HBM3 */

static const char usage_line[] = "kiln targets [--json] [--targets-dir DIR] | kiln targets show NAME [--json] [--targets-dir DIR] | "
				 "kiln targets new NAME [--from KERNEL.cu] [--dir DIR] [--ref c|py] | kiln targets check DIR";

static const char help_text[] =
	"Lists the kernel targets (name, family, summary), or shows one target in full.\n"
	"  show NAME          everything target.json declares, with sizes in bytes and the\n"
	"                     ideal time of the traffic at 3.35 TB/s (H100 HBM3)\n"
	"  --json             print JSON (an array for the list, an object for show)\n"
	"  new NAME           scaffold a target folder of your own (kiln targets new --help)\n"
	"  check DIR          what to fix before searching a target folder (kiln targets check --help)\n"
	"  --targets-dir DIR  look in DIR first, then in $KILN_TARGETS_DIR's folders (colon-separated),\n"
	"                     then in the built-in targets\n"
	"Exit: 0 ok, 2 usage, 3 a target could not be loaded.\n";

/* True when an earlier folder of the search path already listed `name`. */
static bool shadowed(char **seen, size_t nseen, const char *name)
{
	for (size_t i = 0; i < nseen; i++)
		if (strcmp(seen[i], name) == 0)
			return true;
	return false;
}

/* Lists one folder of the search path; names listed already are skipped (the earlier
 * folder wins, as in kiln_target_find) and the new ones appended to *seen. */
static int list_folder(const char *base, cJSON *arr, char ***seen, size_t *nseen)
{
	char **names = NULL;
	size_t n = 0;
	int rc = KILN_EXIT_OK;
	kiln_err e = kiln_targets_list(&names, &n, base);
	if (e)
		return kiln_cli_fail("targets", e);
	for (size_t i = 0; i < n; i++) {
		kiln_target *t = NULL;
		if (shadowed(*seen, *nseen, names[i]))
			continue;
		char **ns = kiln_realloc(*seen, (*nseen + 1) * sizeof(char *));
		if (!ns || !(ns[*nseen] = kiln_strdup(names[i]))) {
			*seen = ns ? ns : *seen;
			rc = kiln_cli_fail("targets", kiln_error_set(KILN_ENOMEM, "out of memory"));
			break;
		}
		*seen = ns;
		(*nseen)++;
		char *path = kiln_path_join(base, names[i]);
		e = path ? kiln_target_load(&t, path) : KILN_ENOMEM;
		free(path);
		if (e) {
			rc = kiln_cli_fail("targets", e);
			if (arr) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "name", names[i]);
				cJSON_AddStringToObject(o, "error", kiln_error_last());
				cJSON_AddItemToArray(arr, o);
			}
			continue;
		}
		if (arr) {
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "name", t->name);
			cJSON_AddStringToObject(o, "family", t->family);
			cJSON_AddStringToObject(o, "summary", t->summary);
			cJSON_AddStringToObject(o, "dir", t->dir);
			cJSON_AddItemToArray(arr, o);
		} else {
			printf("%-18s %-12s %s\n", t->name, t->family, t->summary);
		}
		kiln_target_free(t);
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return rc;
}

/* Every folder of the search path (--targets-dir, $KILN_TARGETS_DIR, the built-ins). */
static int list_targets(const char *dir, bool json)
{
	char **dirs = NULL, **seen = NULL;
	size_t nd = 0, nseen = 0;
	int rc = KILN_EXIT_OK;
	kiln_err e = kiln_targets_search_path(&dirs, &nd, dir);
	if (e)
		return kiln_cli_fail("targets", e);
	cJSON *arr = json ? cJSON_CreateArray() : NULL;
	for (size_t i = 0; i < nd; i++) {
		int r = list_folder(dirs[i], arr, &seen, &nseen);
		rc = rc ? rc : r;
	}
	if (nseen == 0 && !json)
		fprintf(stderr, "kiln targets: no targets found (a target is a folder with target.json)\n");
	if (arr) {
		char *text = cJSON_Print(arr);
		if (text)
			printf("%s\n", text);
		else
			rc = KILN_EXIT_ERROR;
		cJSON_free(text);
		cJSON_Delete(arr);
	}
	for (size_t i = 0; i < nseen; i++)
		free(seen[i]);
	free(seen);
	for (size_t i = 0; i < nd; i++)
		free(dirs[i]);
	free(dirs);
	return rc;
}

static const char *role_name(kiln_role r)
{
	return r == KILN_ROLE_IN ? "in" : r == KILN_ROLE_OUT ? "out" : "inout";
}

static void human_bytes(char *out, size_t cap, double b)
{
	static const char *const unit[] = {"B", "KB", "MB", "GB", "TB"};
	int u = 0;
	while (b >= 1000.0 && u < 4) {
		b /= 1000.0;
		u++;
	}
	snprintf(out, cap, u ? "%.2f %s" : "%.0f %s", b, unit[u]);
}

static cJSON *int_array(const int64_t *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)v[i]));
	return a;
}

/* Everything about t as one JSON object (caller deletes). Size-dependent numbers are
 * evaluated at every bench size; errors there are reported as strings, not fatal. */
static cJSON *target_json(const kiln_target *t)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "family", t->family);
	cJSON_AddStringToObject(o, "summary", t->summary);
	cJSON_AddStringToObject(o, "math", t->math);
	if (t->notes)
		cJSON_AddStringToObject(o, "notes", t->notes);
	cJSON_AddStringToObject(o, "dir", t->dir);
	cJSON_AddStringToObject(o, "reference", t->reference);
	cJSON *syms = cJSON_AddArrayToObject(o, "symbols");
	for (size_t i = 0; i < t->nsymbols; i++) {
		cJSON *s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "name", t->symbols[i].name);
		cJSON_AddItemToObject(s, "verify", int_array(t->symbols[i].verify, t->symbols[i].nverify));
		cJSON_AddItemToObject(s, "bench", int_array(t->symbols[i].bench, t->symbols[i].nbench));
		cJSON_AddItemToArray(syms, s);
	}
	kiln_env bench;
	bool have_bench = kiln_target_sizes(&bench, t, true, 0) == KILN_OK;
	cJSON *bufs = cJSON_AddArrayToObject(o, "buffers");
	for (size_t i = 0; i < t->nbuffers; i++) {
		const kiln_buffer_spec *b = &t->buffers[i];
		cJSON *j = cJSON_CreateObject(), *shape = cJSON_CreateArray();
		cJSON_AddStringToObject(j, "name", b->name);
		cJSON_AddStringToObject(j, "dtype", kiln_dtype_name(b->dtype));
		for (size_t d = 0; d < b->ndim; d++)
			cJSON_AddItemToArray(shape, cJSON_CreateString(b->shape[d]));
		cJSON_AddItemToObject(j, "shape", shape);
		cJSON_AddStringToObject(j, "role", role_name(b->role));
		if (b->init)
			cJSON_AddStringToObject(j, "init", b->init);
		if (b->masked_by)
			cJSON_AddStringToObject(j, "masked_by", b->masked_by);
		size_t count;
		if (have_bench && kiln_target_count(&count, t, b, &bench) == KILN_OK) {
			cJSON_AddNumberToObject(j, "bench_elements", (double)count);
			cJSON_AddNumberToObject(j, "bench_bytes", (double)count * (double)kiln_dtype_size(b->dtype));
		}
		cJSON_AddItemToArray(bufs, j);
	}
	cJSON *scal = cJSON_AddArrayToObject(o, "scalars");
	for (size_t i = 0; i < t->nscalars; i++) {
		cJSON *s = cJSON_CreateObject();
		cJSON_AddStringToObject(s, "name", t->scalars[i].name);
		cJSON_AddStringToObject(s, "dtype", kiln_dtype_name(t->scalars[i].dtype));
		cJSON_AddNumberToObject(s, "value", t->scalars[i].value);
		cJSON_AddItemToArray(scal, s);
	}
	cJSON *tol = cJSON_AddObjectToObject(o, "tolerance");
	for (size_t i = 0; i < t->ntolerances; i++) {
		const kiln_tolerance *x = &t->tolerances[i];
		cJSON *j = cJSON_CreateObject();
		if (x->rule == KILN_TOL_PLAIN) {
			cJSON_AddNumberToObject(j, "rtol", x->rtol);
			cJSON_AddNumberToObject(j, "atol", x->atol);
		} else if (x->rule == KILN_TOL_ULP) {
			cJSON_AddStringToObject(j, "rule", "ulp");
			cJSON_AddNumberToObject(j, "ulps", x->ulps);
			if (x->atol > 0)
				cJSON_AddNumberToObject(j, "atol", x->atol);
		} else {
			cJSON_AddStringToObject(j, "rule", "exact");
		}
		cJSON_AddItemToObject(tol, x->buffer, j);
	}
	cJSON_AddStringToObject(o, "traffic_bytes", t->traffic_bytes);
	cJSON *traffic = cJSON_AddArrayToObject(o, "traffic");
	for (size_t k = 0; k < t->nbench_sizes; k++) {
		kiln_env env;
		int64_t bytes;
		cJSON *j = cJSON_CreateObject(), *sizes = cJSON_CreateObject();
		if (kiln_target_sizes(&env, t, true, k) == KILN_OK) {
			for (size_t s = 0; s < env.n; s++)
				cJSON_AddNumberToObject(sizes, env.names[s], (double)env.values[s]);
			cJSON_AddItemToObject(j, "sizes", sizes);
			sizes = NULL;
			if (kiln_expr_eval(&bytes, t->traffic_bytes, &env, "traffic_bytes") == KILN_OK) {
				cJSON_AddNumberToObject(j, "bytes", (double)bytes);
				cJSON_AddNumberToObject(j, "ideal_us", (double)bytes / PEAK_BYTES_PER_S * 1e6);
			} else {
				cJSON_AddStringToObject(j, "error", kiln_error_last());
			}
		}
		cJSON_Delete(sizes);
		cJSON_AddItemToArray(traffic, j);
	}
	cJSON_AddNumberToObject(o, "peak_bytes_per_s", PEAK_BYTES_PER_S);
	cJSON *knobs = cJSON_AddObjectToObject(o, "knobs");
	for (size_t i = 0; i < t->nknobs; i++)
		cJSON_AddItemToObject(knobs, t->knobs[i].name, int_array(t->knobs[i].values, t->knobs[i].n));
	cJSON *regs = cJSON_AddObjectToObject(o, "regimes");
	for (size_t r = 0; r < t->nregimes; r++) {
		const kiln_regime *g = &t->regimes[r];
		cJSON *x = cJSON_AddObjectToObject(regs, g->name), *init = cJSON_AddObjectToObject(x, "init"),
		      *sc = cJSON_AddObjectToObject(x, "scalars");
		cJSON_AddStringToObject(x, "note", g->note ? g->note : "");
		for (size_t b = 0; b < t->nbuffers; b++)
			if (g->init[b])
				cJSON_AddStringToObject(init, t->buffers[b].name, g->init[b]);
		for (size_t i = 0; i < t->nscalars; i++)
			if (g->scalar_set[i])
				cJSON_AddNumberToObject(sc, t->scalars[i].name, g->scalars[i]);
	}
	if (t->multistep.steps) {
		cJSON *ms = cJSON_AddObjectToObject(o, "multistep"), *sc;
		cJSON_AddNumberToObject(ms, "steps", (double)t->multistep.steps);
		sc = cJSON_AddObjectToObject(ms, "scalars");
		for (size_t j = 0; j < t->multistep.nscalars; j++) {
			cJSON *a = cJSON_AddArrayToObject(sc, t->scalars[t->multistep.scalar_index[j]].name);
			for (size_t k = 0; k < t->multistep.steps; k++)
				cJSON_AddItemToArray(a, cJSON_CreateNumber(t->multistep.values[k * t->multistep.nscalars + j]));
		}
	}
	cJSON_AddStringToObject(o, "seed", t->seed_path);
	kiln_plan *p = NULL;
	if (kiln_plan_load(&p, t->launch_path, t) == KILN_OK) {
		char *pj = kiln_plan_to_json(p);
		cJSON *plan = pj ? cJSON_Parse(pj) : NULL;
		if (plan)
			cJSON_AddItemToObject(o, "launch", plan);
		free(pj);
	} else {
		cJSON_AddStringToObject(o, "launch_error", kiln_error_last());
	}
	kiln_plan_free(p);
	return o;
}

static void print_list(const char *label, const cJSON *arr)
{
	const cJSON *it;
	printf("%s", label);
	cJSON_ArrayForEach(it, arr)
		printf("%s%lld", it == arr->child ? "" : ", ", (long long)it->valuedouble);
}

static void print_text(const cJSON *o)
{
	const cJSON *it, *arr;
#define S(obj, k) (cJSON_GetObjectItemCaseSensitive(obj, k) ? cJSON_GetObjectItemCaseSensitive(obj, k)->valuestring : NULL)
#define N(obj, k) cJSON_GetObjectItemCaseSensitive(obj, k)
	printf("%s (%s)\n  %s\n\nmath:\n  %s\n", S(o, "name"), S(o, "family"), S(o, "summary"), S(o, "math"));
	if (S(o, "notes"))
		printf("\nnotes:\n  %s\n", S(o, "notes"));
	printf("\nreference: %s   folder: %s\n\nsymbols:\n", S(o, "reference"), S(o, "dir"));
	cJSON_ArrayForEach(it, N(o, "symbols")) {
		printf("  %-12s", S(it, "name"));
		print_list("verify: ", N(it, "verify"));
		print_list("   bench: ", N(it, "bench"));
		printf("\n");
	}
	printf("\nbuffers (bytes at bench size 0):\n");
	cJSON_ArrayForEach(it, N(o, "buffers")) {
		char shape[256] = "", bytes[32] = "?";
		const cJSON *d;
		cJSON_ArrayForEach(d, N(it, "shape")) {
			size_t len = strlen(shape);
			snprintf(shape + len, sizeof(shape) - len, "%s%s", len ? ", " : "", d->valuestring);
		}
		if (N(it, "bench_bytes"))
			human_bytes(bytes, sizeof(bytes), N(it, "bench_bytes")->valuedouble);
		char init[160];
		snprintf(init, sizeof(init), "%s%s%s", S(it, "init") ? S(it, "init") : "zeros",
			 S(it, "masked_by") ? ", garbage where !" : "", S(it, "masked_by") ? S(it, "masked_by") : "");
		printf("  %-12s %-5s %-6s [%s]  %s  (%s)\n", S(it, "name"), S(it, "dtype"), S(it, "role"), shape, init,
		       bytes);
	}
	if (cJSON_GetArraySize(N(o, "scalars"))) {
		printf("\nscalars:\n");
		cJSON_ArrayForEach(it, N(o, "scalars"))
			printf("  %-12s %-5s = %.10g\n", S(it, "name"), S(it, "dtype"), N(it, "value")->valuedouble);
	}
	printf("\ntolerance:\n");
	cJSON_ArrayForEach(it, N(o, "tolerance")) {
		if (!S(it, "rule"))
			printf("  %-12s rtol %g, atol %g\n", it->string, N(it, "rtol")->valuedouble, N(it, "atol")->valuedouble);
		else if (N(it, "ulps"))
			printf("  %-12s within %g ulp%s\n", it->string, N(it, "ulps")->valuedouble,
			       N(it, "atol") ? " (or atol)" : "");
		else
			printf("  %-12s exact\n", it->string);
	}
	printf("\ntraffic: %s bytes\n", S(o, "traffic_bytes"));
	cJSON_ArrayForEach(it, N(o, "traffic")) {
		const cJSON *s;
		printf("  at");
		cJSON_ArrayForEach(s, N(it, "sizes"))
			printf(" %s=%lld", s->string, (long long)s->valuedouble);
		if (N(it, "bytes")) {
			char h[32];
			human_bytes(h, sizeof(h), N(it, "bytes")->valuedouble);
			printf(": %.0f bytes (%s), ideal %.2f us at 3.35 TB/s\n", N(it, "bytes")->valuedouble, h,
			       N(it, "ideal_us")->valuedouble);
		} else {
			printf(": %s\n", S(it, "error"));
		}
	}
	arr = N(o, "knobs");
	if (cJSON_GetArraySize(arr)) {
		printf("\nknobs:\n");
		cJSON_ArrayForEach(it, arr) {
			printf("  %-12s", it->string);
			print_list("", it);
			printf("\n");
		}
	}
	if (cJSON_GetArraySize(N(o, "regimes"))) {
		printf("\nregimes (cycled across the input sets of every verification):\n");
		cJSON_ArrayForEach(it, N(o, "regimes")) {
			const cJSON *x;
			printf("  %-12s", it->string);
			cJSON_ArrayForEach(x, N(it, "init"))
				printf(" %s=%s", x->string, x->valuestring);
			cJSON_ArrayForEach(x, N(it, "scalars"))
				printf(" %s=%g", x->string, x->valuedouble);
			if (S(it, "note") && *S(it, "note"))
				printf("  (%s)", S(it, "note"));
			printf("\n");
		}
	}
	if (N(o, "multistep")) {
		const cJSON *x;
		printf("\nmulti-step case: %lld launches of one module,", (long long)N(N(o, "multistep"), "steps")->valuedouble);
		cJSON_ArrayForEach(x, N(N(o, "multistep"), "scalars")) {
			const cJSON *v;
			printf(" %s =", x->string);
			cJSON_ArrayForEach(v, x)
				printf(" %g", v->valuedouble);
			printf(";");
		}
		printf("\n");
	}
	printf("\nseed: %s\n", S(o, "seed"));
	if (S(o, "launch_error")) {
		printf("launch plan: INVALID: %s\n", S(o, "launch_error"));
	} else {
		cJSON_ArrayForEach(it, N(N(o, "launch"), "launches")) {
			const cJSON *a;
			printf("launch %s<<<(", S(it, "kernel"));
			cJSON_ArrayForEach(a, N(it, "grid"))
				printf("%s%s", a == N(it, "grid")->child ? "" : ", ", a->valuestring);
			printf("), (");
			cJSON_ArrayForEach(a, N(it, "block"))
				printf("%s%s", a == N(it, "block")->child ? "" : ", ", a->valuestring);
			printf("), %s>>>(", S(it, "shared_bytes"));
			cJSON_ArrayForEach(a, N(it, "args"))
				printf("%s%s", a == N(it, "args")->child ? "" : ", ", a->valuestring);
			printf(")\n");
		}
		cJSON_ArrayForEach(it, N(N(o, "launch"), "scratch"))
			printf("scratch %s: %s x %s\n", S(it, "name"), S(it, "count"), S(it, "dtype"));
		arr = N(N(o, "launch"), "nvrtc_flags");
		if (cJSON_GetArraySize(arr)) {
			printf("nvrtc flags:");
			cJSON_ArrayForEach(it, arr)
				printf(" %s", it->valuestring);
			printf("\n");
		}
	}
#undef S
#undef N
}

static int show_target(const char *name, const char *dir, bool json)
{
	kiln_target *t = NULL;
	kiln_err e = kiln_target_find(&t, name, dir);
	if (e)
		return kiln_cli_fail("targets", e);
	cJSON *o = target_json(t);
	int rc = KILN_EXIT_OK;
	if (!o) {
		rc = kiln_cli_fail("targets", kiln_error_set(KILN_ENOMEM, "out of memory"));
	} else if (json) {
		char *text = cJSON_Print(o);
		if (text)
			printf("%s\n", text);
		else
			rc = kiln_cli_fail("targets", kiln_error_set(KILN_ENOMEM, "out of memory"));
		cJSON_free(text);
	} else {
		print_text(o);
	}
	if (o && cJSON_GetObjectItemCaseSensitive(o, "launch_error"))
		rc = KILN_EXIT_ERROR;
	cJSON_Delete(o);
	kiln_target_free(t);
	return rc;
}

int kiln_cmd_targets(int argc, char **argv)
{
	const char *dir = NULL, *pos[2];
	bool json = false;
	int npos = 0, rc = KILN_EXIT_OK;
	kiln_cli_opt opts[] = {{"json", 0, NULL, &json}, {"targets-dir", 1, &dir, NULL}, {0}};
	if (argc > 1 && strcmp(argv[1], "new") == 0)
		return kiln_cmd_targets_new(argc - 1, argv + 1);
	if (argc > 1 && strcmp(argv[1], "check") == 0)
		return kiln_cmd_targets_check(argc - 1, argv + 1);
	if (!kiln_cli_parse(argc, argv, opts, pos, 2, &npos, usage_line, help_text, &rc))
		return rc;
	if (npos == 0)
		return list_targets(dir, json);
	if (strcmp(pos[0], "show") != 0 || npos != 2) {
		fprintf(stderr, "kiln targets: expected no argument or `show NAME`\nusage: %s\n", usage_line);
		return KILN_EXIT_USAGE;
	}
	return show_target(pos[1], dir, json);
}
