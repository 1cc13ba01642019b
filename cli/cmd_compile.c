/* kiln compile: compiles one .cu file for one architecture through the same path the
 * search uses (NVRTC -> nvJitLink, cached under <workdir>/cache) and prints each
 * kernel's registers, spills, stack, shared and constant memory. A compile error
 * prints the log and exits 1; -D and --flags pass defines and NVRTC flags through. */
#include "cli/cli.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "compile/compile.h"

static const char usage_line[] =
	"kiln compile FILE.cu [--arch sm_90] [-D NAME=V ...] [--flags \"...\"] [--json] "
	"[--ptx OUT] [--cubin OUT] [--no-cache] [--workdir DIR]";

static const char help_text[] =
	"Compiles FILE.cu with NVRTC and nvJitLink and prints the resource report per kernel.\n"
	"  --arch sm_XX      target architecture (default sm_90)\n"
	"  -D NAME[=V]       a preprocessor define (repeatable; also -DNAME=V, --define)\n"
	"  --flags \"...\"     extra NVRTC flags, space separated (e.g. \"--maxrregcount=64\")\n"
	"  --json            print the result as one JSON object\n"
	"  --ptx OUT         write the PTX; --cubin OUT writes the cubin\n"
	"  --no-cache        do not use <workdir>/cache\n"
	"Exit: 0 compiled, 1 compile error (log on stderr), 2 usage, 3 could not run.\n";

typedef struct strlist {
	const char **v;
	size_t n;
} strlist;

static bool push(strlist *l, const char *s)
{
	const char **v = realloc(l->v, (l->n + 1) * sizeof(*v));
	if (!v)
		return false;
	l->v = v;
	l->v[l->n++] = s;
	return true;
}

/* Takes -D NAME=V, -DNAME=V and --define NAME=V out of argv (kiln_cli_parse knows only
 * long options); the rest goes to rest. Returns false on a -D without a value. */
static bool take_defines(int argc, char **argv, strlist *defs, strlist *rest)
{
	push(rest, argv[0]);
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			for (; i < argc; i++)
				push(rest, argv[i]);
			break;
		}
		if (strcmp(a, "-D") == 0 || strcmp(a, "--define") == 0) {
			if (i + 1 >= argc)
				return false;
			push(defs, argv[++i]);
		} else if (strncmp(a, "-D", 2) == 0) {
			push(defs, a + 2);
		} else if (strncmp(a, "--define=", 9) == 0) {
			push(defs, a + 9);
		} else {
			push(rest, a);
		}
	}
	return true;
}

/* A define must be NAME or NAME=VALUE with a C identifier for NAME. */
static bool define_ok(const char *d)
{
	if (!(isalpha((unsigned char)d[0]) || d[0] == '_'))
		return false;
	for (const char *p = d; *p && *p != '='; p++)
		if (!(isalnum((unsigned char)*p) || *p == '_'))
			return false;
	return true;
}

static void print_text(const kiln_compiled *c, const char *file)
{
	printf("%s: %s for %s in %.1f ms (%s), %s\n", file, c->ok ? "compiled" : "FAILED", c->arch,
	       c->wall_s * 1e3, c->cache_hit ? "cache hit" : "cache miss", c->toolkit);
	if (!c->ok)
		return;
	if (c->nkernels == 0) {
		printf("no extern \"C\" __global__ kernels found\n");
		return;
	}
	printf("%-28s %5s %8s %11s %10s %10s %10s\n", "kernel", "regs", "barriers",
	       "spill st/ld", "stack B", "shared B", "const B");
	for (size_t i = 0; i < c->nkernels; i++) {
		const kiln_kernel_resources *k = &c->kernels[i];
		char spill[48];
		snprintf(spill, sizeof(spill), "%lld/%lld", (long long)k->spill_store_bytes,
			 (long long)k->spill_load_bytes);
		printf("%-28s %5d %8d %11s %10lld %10lld %10lld\n", k->name, k->registers, k->barriers,
		       spill, (long long)k->stack_bytes, (long long)k->shared_bytes, (long long)k->const_bytes);
	}
	if (c->global_const_bytes > 0)
		printf("module __constant__ data: %lld bytes\n", (long long)c->global_const_bytes);
	if (c->log[0]) {
		printf("log:\n");
		kiln_text_print(stdout, c->log, KILN_TEXT_MULTILINE);
		printf("\n");
	}
}

static int print_json(const kiln_compiled *c, const char *file)
{
	char *res = kiln_compile_resources_json(c);
	cJSON *j = res ? cJSON_Parse(res) : NULL;
	free(res);
	char *text = NULL;
	if (j && cJSON_AddStringToObject(j, "file", file) && cJSON_AddBoolToObject(j, "ok", c->ok) &&
	    cJSON_AddNumberToObject(j, "wall_s", c->wall_s) &&
	    cJSON_AddBoolToObject(j, "cache_hit", c->cache_hit) &&
	    cJSON_AddStringToObject(j, "key", c->key) && cJSON_AddStringToObject(j, "log", c->log))
		text = cJSON_Print(j);
	cJSON_Delete(j);
	if (!text) {
		fprintf(stderr, "kiln compile: out of memory\n");
		return KILN_EXIT_ERROR;
	}
	printf("%s\n", text);
	cJSON_free(text);
	return KILN_EXIT_OK;
}

int kiln_cmd_compile(int argc, char **argv)
{
	const char *arch = NULL, *flags = NULL, *ptx_out = NULL, *cubin_out = NULL, *workdir = NULL;
	const char *pos[1];
	bool json = false, no_cache = false;
	int npos = 0, rc = KILN_EXIT_OK;
	strlist defs = {0}, rest = {0}, flag_list = {0};
	char *src = NULL, *flag_copy = NULL, *cache = NULL;
	kiln_compiled *c = NULL;
	kiln_err e;
	kiln_cli_opt opts[] = {{"arch", 1, &arch, NULL}, {"flags", 1, &flags, NULL},
			       {"json", 0, NULL, &json}, {"ptx", 1, &ptx_out, NULL},
			       {"cubin", 1, &cubin_out, NULL}, {"no-cache", 0, NULL, &no_cache},
			       {"workdir", 1, &workdir, NULL}, {0}};
	if (!take_defines(argc, argv, &defs, &rest)) {
		fprintf(stderr, "kiln compile: -D needs NAME=VALUE\nusage: %s\n", usage_line);
		rc = KILN_EXIT_USAGE;
		goto done;
	}
	if (!kiln_cli_parse((int)rest.n, (char **)rest.v, opts, pos, 1, &npos, usage_line, help_text, &rc))
		goto done;
	if (npos != 1) {
		fprintf(stderr, "kiln compile: expected one FILE.cu\nusage: %s\n", usage_line);
		rc = KILN_EXIT_USAGE;
		goto done;
	}
	for (size_t i = 0; i < defs.n; i++)
		if (!define_ok(defs.v[i])) {
			fprintf(stderr, "kiln compile: bad define '%s': expected NAME or NAME=VALUE\nusage: %s\n",
				defs.v[i], usage_line);
			rc = KILN_EXIT_USAGE;
			goto done;
		}
	if (flags) {
		if (!(flag_copy = kiln_strdup(flags))) {
			rc = kiln_cli_fail("compile", KILN_ENOMEM);
			goto done;
		}
		for (char *save = NULL, *t = strtok_r(flag_copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save))
			push(&flag_list, t);
	}
	size_t src_len = 0;
	if ((e = kiln_file_read(&src, &src_len, pos[0], 16u << 20)) ||
	    (memchr(src, '\0', src_len) && (e = kiln_error_set(KILN_EINVAL, "%s: refused: the source contains a NUL byte", pos[0])))) { /* NVRTC would stop at it */
		rc = kiln_cli_fail("compile", e);
		goto done;
	}
	if (!no_cache && !(cache = kiln_cli_cache_dir(workdir))) {
		rc = kiln_cli_fail("compile", KILN_ENOMEM);
		goto done;
	}
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	o.source = src;
	o.name = pos[0];
	o.arch = arch;
	o.flags = flag_list.v;
	o.nflags = flag_list.n;
	o.defines = defs.v;
	o.ndefines = defs.n;
	o.cache_dir = cache;
	if ((e = kiln_compile(&c, &o))) {
		rc = kiln_cli_fail("compile", e);
		goto done;
	}
	if (json)
		rc = print_json(c, pos[0]);
	else
		print_text(c, pos[0]);
	if (!c->ok) {
		if (!json)
			kiln_text_print(stderr, c->log, KILN_TEXT_MULTILINE);
		rc = KILN_EXIT_FAIL;
		goto done;
	}
	if (ptx_out && (e = kiln_file_write_atomic(ptx_out, c->ptx, c->ptx_len))) {
		rc = kiln_cli_fail("compile", e);
		goto done;
	}
	if (cubin_out && (e = kiln_file_write_atomic(cubin_out, c->cubin, c->cubin_len)))
		rc = kiln_cli_fail("compile", e);
done:
	kiln_compiled_free(c);
	free(src);
	free(cache);
	free(flag_copy);
	free(defs.v);
	free(rest.v);
	free(flag_list.v);
	return rc;
}
