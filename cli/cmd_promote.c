/* kiln promote TARGET [CANDIDATE] --to DIR: takes a candidate (default: the fastest best
 * of the target's runs) into a user's build. It compiles a fatbin (default: SASS for every
 * toolkit arch from sm_80 up, PTX of the newest), re-verifies the candidate on the emulator
 * with fresh seeds and every check once per distinct PTX, then once at the bench size, and
 * refuses a failing one with the reason; then writes <name>.cu (knob values baked in),
 * <name>.h (a C/C++ launch function: grid/block from launch.json as C expressions, the
 * shared-memory opt-in when needed), <name>.fatbin and the <name>.json manifest, and tags
 * the archive commit promoted/<target>/<arch>/vN (detached commit for a non-best). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "archive/archive.h"
#include "cli/cli.h"
#include "compile/compile.h"
#include "profile/profile.h"

#define MAX_ARCHS 24
#define MAX_DEFINES 48

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

typedef struct promote {
	const char *workdir, *out_dir, *name;
	kiln_db *db;
	kiln_target *t;
	kiln_plan *plan;
	cJSON *cand;            /* candidate + run + verification + timing columns */
	char *cu;               /* NAME.cu: the exact bytes compiled, re-verified and written */
	const char *archs[MAX_ARCHS];
	size_t narchs;
	char arch_buf[256];
	char *defines[MAX_DEFINES];
	size_t ndefines;
	kiln_verdict verdict;   /* the first failing arch's verdict, else the last arch's */
	const char *verdict_arch;
	kiln_verdict bench;     /* at the bench size (bench.sets == 0: not run) */
	size_t threads;
	kiln_fatbin *fatbin;
	char oid[41];
	bool detached;
	bool python;            /* --python: also NAME.py */
	cJSON *tags;
} promote;

/* ---- choosing the candidate ---- */

static const char cand_sql[] =
	"SELECT c.id, c.hash, c.run_id, c.iteration, c.node_id, c.outcome, c.source, c.launch, c.knobs,"
	" r.target, r.policy, r.llm_model, r.device, r.gpu, r.arch, r.started, v.failed_check, v.message,"
	" v.seeds, v.device AS verify_device, t.kind, t.device AS timing_device, t.time_us, t.min_us, t.spread,"
	" t.reps, t.samples, t.speedup, t.roofline, t.spec, cr.toolkit"
	" FROM candidates c JOIN runs r ON r.id = c.run_id LEFT JOIN verifications v ON v.candidate_id = c.id"
	" LEFT JOIN timings t ON t.candidate_id = c.id LEFT JOIN compile_results cr ON cr.candidate_id = c.id"
	" WHERE c.id = ?1";

static kiln_err choose(promote *pr, const char *target, const char *ref)
{
	cJSON *rows = NULL;
	char id[24];
	kiln_err e;
	if (ref) {
		kiln_candidate_info *ci = NULL;
		if ((e = kiln_db_candidate_find(pr->db, &ci, ref)))
			return e;
		snprintf(id, sizeof(id), "%lld", (long long)ci->id);
		kiln_candidate_infos_free(ci, 1);
	} else {
		const char *p[1] = {target};
		if ((e = kiln_db_query_json(pr->db, &rows,
					    "SELECT r.best_candidate AS id FROM runs r JOIN timings t ON t.candidate_id ="
					    " r.best_candidate WHERE r.target = ?1 ORDER BY t.kind = 'measured' DESC,"
					    " t.time_us, r.id DESC LIMIT 1", p, 1, "finding the best candidate")))
			return e;
		double v = kiln_cli_jnum(cJSON_GetArrayItem(rows, 0), "id");
		cJSON_Delete(rows);
		rows = NULL;
		if (!isfinite(v))
			return kiln_error_set(KILN_ENOTFOUND, "target %s has no run with a best candidate", target);
		snprintf(id, sizeof(id), "%.0f", v);
	}
	const char *p[1] = {id};
	if ((e = kiln_db_query_json(pr->db, &rows, cand_sql, p, 1, "reading the candidate")))
		return e;
	pr->cand = cJSON_DetachItemFromArray(rows, 0);
	cJSON_Delete(rows);
	if (!pr->cand)
		return kiln_error_set(KILN_ENOTFOUND, "candidate %s not found", id);
	if (strcmp(kiln_cli_jstr(pr->cand, "target", ""), target) != 0)
		return kiln_error_set(KILN_EINVAL, "candidate %s belongs to target %s, not %s", id,
				      kiln_cli_jstr(pr->cand, "target", "?"), target);
	return KILN_OK;
}

/* ---- verification and compile ---- */

/* The knob value of name: the candidate's knobs, else the target's first listed value. */
static bool knob_value(const promote *pr, const char *name, long long *out)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pr->cand, "knobs"), name);
	if (cJSON_IsNumber(k)) {
		*out = (long long)k->valuedouble;
		return true;
	}
	for (size_t i = 0; i < pr->t->nknobs; i++)
		if (strcmp(pr->t->knobs[i].name, name) == 0 && pr->t->knobs[i].n > 0) {
			*out = (long long)pr->t->knobs[i].values[0];
			return true;
		}
	return false;
}

static kiln_err add_define(promote *pr, char *d)
{
	if (!d)
		return KILN_ENOMEM;
	if (pr->ndefines >= MAX_DEFINES) {
		free(d);
		return kiln_error_set(KILN_EINVAL, "candidate has more than %d knobs", MAX_DEFINES);
	}
	pr->defines[pr->ndefines++] = d;
	return KILN_OK;
}

/* Every knob of the target (the candidate's value, else the first listed: what the search
 * compiled and what the header's launch expressions assume), then any other the candidate
 * set. */
static kiln_err make_defines(promote *pr)
{
	const cJSON *k, *knobs = cJSON_GetObjectItemCaseSensitive(pr->cand, "knobs");
	kiln_err e = KILN_OK;
	long long v;
	for (size_t i = 0; !e && i < pr->t->nknobs; i++)
		if (knob_value(pr, pr->t->knobs[i].name, &v))
			e = add_define(pr, kiln_asprintf("%s=%lld", pr->t->knobs[i].name, v));
	cJSON_ArrayForEach(k, knobs) {
		bool known = false;
		for (size_t i = 0; i < pr->t->nknobs; i++)
			known = known || strcmp(pr->t->knobs[i].name, k->string) == 0;
		if (!e && !known)
			e = add_define(pr, cJSON_IsNumber(k) ? kiln_asprintf("%s=%lld", k->string, (long long)k->valuedouble)
					   : kiln_asprintf("%s=%s", k->string, cJSON_IsString(k) ? k->valuestring : "1"));
	}
	return e;
}

/* The launch plan and the knob defines (before compiling and verifying). */
static kiln_err prepare(promote *pr)
{
	char *launch = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(pr->cand, "launch"));
	kiln_err e = launch ? kiln_plan_parse(&pr->plan, launch, strlen(launch), pr->t, "the candidate's launch.json")
			    : KILN_ENOMEM;
	if (!e)
		e = make_defines(pr);
	cJSON_free(launch);
	return e;
}

/* PTX without its header (.version, .target, comments): archs whose PTX is the same
 * compute the same thing, so one re-verification covers them. */
static bool same_ptx(const kiln_compiled *a, const kiln_compiled *b)
{
	const char *p = a->ptx, *q = b->ptx, *pe = p + a->ptx_len, *qe = q + b->ptx_len;
	for (;;) {
		while (p < pe && (*p == '\n' || strncmp(p, "//", 2) == 0 || strncmp(p, ".target", 7) == 0 ||
				  strncmp(p, ".version", 8) == 0)) {
			const char *nl = memchr(p, '\n', (size_t)(pe - p));
			p = nl ? nl + 1 : pe;
		}
		while (q < qe && (*q == '\n' || strncmp(q, "//", 2) == 0 || strncmp(q, ".target", 7) == 0 ||
				  strncmp(q, ".version", 8) == 0)) {
			const char *nl = memchr(q, '\n', (size_t)(qe - q));
			q = nl ? nl + 1 : qe;
		}
		const char *pn = memchr(p, '\n', (size_t)(pe - p)), *qn = memchr(q, '\n', (size_t)(qe - q));
		size_t pl = (size_t)((pn ? pn : pe) - p), ql = (size_t)((qn ? qn : qe) - q);
		if (pl != ql || memcmp(p, q, pl) != 0)
			return false;
		if (p + pl >= pe)
			return q + ql >= qe;
		p += pl + 1;
		q += ql + 1;
	}
}

/* The index of an earlier arch whose PTX equals arch i's, else i. */
static size_t ptx_twin(const promote *pr, size_t i)
{
	for (size_t j = 0; pr->fatbin && j < i && j < pr->fatbin->nparts && i < pr->fatbin->nparts; j++)
		if (pr->fatbin->parts[i]->ptx && pr->fatbin->parts[j]->ptx && same_ptx(pr->fatbin->parts[i], pr->fatbin->parts[j]))
			return j;
	return i;
}

static kiln_err reverify(promote *pr, size_t nseeds)
{
	kiln_device *dev = NULL;
	char *cache = kiln_path_join(pr->workdir, "cache");
	kiln_err e = !cache ? KILN_ENOMEM : KILN_OK;
	if (!e)
		e = kiln_device_open(&dev, "emu", NULL);
	if (!e) {
		kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
		vo.src.target = pr->t;
		vo.src.source = pr->cu;
		vo.src.source_name = "kernel.cu";
		vo.src.plan = pr->plan;
		vo.src.defines = (const char *const *)pr->defines;
		vo.src.ndefines = pr->ndefines;
		vo.src.device = dev;
		vo.nseeds = nseeds;
		vo.threads = pr->threads;
		vo.src.cache_dir = kiln_path_exists(cache) ? cache : NULL;
		/* every exported architecture: code under __CUDA_ARCH__ differs per arch, so each
		 * arch's PTX runs on the emulator (the device-only rule already refused that, this
		 * also catches codegen that differs) */
		for (size_t i = 0; !e && i < pr->narchs && (i == 0 || pr->verdict.pass); i++) {
			if (ptx_twin(pr, i) != i) /* the same PTX as an arch verified already */
				continue;
			vo.arch = pr->verdict_arch = pr->archs[i];
			e = kiln_verify(&pr->verdict, &vo);
		}
		/* then once at the bench size, where a grid capped inside the code or a branch
		 * on large sizes shows (KILN_BENCH_CHECK=0 skips it) */
		if (!e && pr->verdict.pass && kiln_verify_bench_check_wanted()) {
			vo.bench_size = true;
			vo.progress = stderr;
			e = kiln_verify(&pr->bench, &vo);
			if (!e && !pr->bench.pass)
				pr->verdict = pr->bench;
		}
	}
	kiln_device_free(dev);
	free(cache);
	return e;
}

static kiln_err compile_fatbin(promote *pr)
{
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	char *cache = kiln_path_join(pr->workdir, "cache");
	o.source = pr->cu;
	o.name = "kernel.cu";
	o.flags = (const char *const *)pr->plan->nvrtc_flags;
	o.nflags = pr->plan->nflags;
	o.defines = (const char *const *)pr->defines;
	o.ndefines = pr->ndefines;
	o.cache_dir = cache && kiln_path_exists(cache) ? cache : NULL;
	kiln_err e = cache ? kiln_compile_fatbin(&pr->fatbin, &o, pr->archs, pr->narchs) : KILN_ENOMEM;
	free(cache);
	if (e)
		return kiln_error_wrap(e, "building the fatbin");
	for (size_t i = 0; !pr->fatbin->ok && i < pr->fatbin->nparts; i++)
		if (pr->fatbin->parts[i] && !pr->fatbin->parts[i]->ok)
			return kiln_error_set(KILN_ECOMPILE, "compiling for %s failed:\n%s", pr->archs[i],
					      pr->fatbin->parts[i]->log);
	return pr->fatbin->ok ? KILN_OK : kiln_error_set(KILN_ECOMPILE, "the fatbin could not be built");
}

/* ---- the header ---- */

typedef struct name_map {
	const promote *pr;
	char buf[64];
} name_map;

static const char *map_name(void *ctx, const char *name)
{
	name_map *m = ctx;
	long long v;
	if (strcmp(name, "sm_count") == 0)
		return "kiln_sm_count";
	for (size_t i = 0; i < m->pr->t->nsymbols; i++)
		if (strcmp(m->pr->t->symbols[i].name, name) == 0)
			return name;
	if (knob_value(m->pr, name, &v)) {
		snprintf(m->buf, sizeof(m->buf), "%lld", v);
		return m->buf;
	}
	return NULL;
}

static const char *scalar_ctype(kiln_dtype d)
{
	switch (d) {
	case KILN_F32: return "float";
	case KILN_F64: return "double";
	case KILN_I32: return "int";
	case KILN_I64: return "long long";
	case KILN_U32: return "unsigned int";
	default: return "unsigned char";
	}
}

static kiln_err put_expr(kiln_buf *h, const promote *pr, const char *expr)
{
	name_map m = {pr, ""};
	char *c = NULL, *prefix = kiln_asprintf("%s_", pr->name);
	kiln_err e = prefix ? kiln_promote_c_expr(&c, expr, prefix, map_name, &m) : KILN_ENOMEM;
	if (!e)
		e = kiln_buf_puts(h, c);
	free(c);
	free(prefix);
	return e;
}

/* The parameters after (module, stream): buffers, scalars, symbols, then scratch. */
static kiln_err put_params(kiln_buf *h, const promote *pr)
{
	const kiln_target *t = pr->t;
	kiln_err e = KILN_OK;
	for (size_t i = 0; !e && i < t->nbuffers; i++)
		e = kiln_buf_printf(h, ",\n\tCUdeviceptr %s /* %s %s */", t->buffers[i].name, kiln_dtype_name(t->buffers[i].dtype),
				    t->buffers[i].role == KILN_ROLE_IN ? "in" : t->buffers[i].role == KILN_ROLE_OUT ? "out" : "inout");
	for (size_t i = 0; !e && i < t->nscalars; i++)
		e = kiln_buf_printf(h, ",\n\t%s %s /* default %g */", scalar_ctype(t->scalars[i].dtype), t->scalars[i].name,
				    t->scalars[i].value);
	for (size_t i = 0; !e && i < t->nsymbols; i++)
		e = kiln_buf_printf(h, ",\n\tlong long %s", t->symbols[i].name);
	if (!e && pr->plan->nscratch)
		e = kiln_buf_printf(h, ",\n\tCUdeviceptr kiln_scratch /* %s_scratch_bytes() bytes */", pr->name);
	return e;
}

/* Offsets of the scratch buffers inside one allocation, each 256-byte aligned. */
static kiln_err put_scratch(kiln_buf *h, const promote *pr, bool bytes_fn)
{
	kiln_err e = kiln_buf_puts(h, "\tunsigned long long kiln_off = 0;\n");
	for (size_t i = 0; !e && i < pr->plan->nscratch; i++) {
		const kiln_scratch *s = &pr->plan->scratch[i];
		if (!bytes_fn)
			e = kiln_buf_printf(h, "\tCUdeviceptr kiln_s_%s = kiln_scratch + kiln_off;\n", s->name);
		if (!e)
			e = kiln_buf_puts(h, "\tkiln_off += ((unsigned long long)(");
		if (!e)
			e = put_expr(h, pr, s->count);
		if (!e)
			e = kiln_buf_printf(h, ") * %zu + 255) / 256 * 256;\n", kiln_dtype_size(s->dtype));
	}
	return e;
}

static bool is_name_in(const char *name, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(list[i], name) == 0)
			return true;
	return false;
}

/* Static + dynamic shared memory above 48 KiB needs the opt-in attribute before launch. */
static const char *shared_opt_in_text(const kiln_launch *l)
{
	if (!l->shared_bytes || strcmp(l->shared_bytes, "0") == 0)
		return "";
	return "\t\tif (kiln_shared > 0) {\n\t\t\tint kiln_static = 0;\n"
	       "\t\t\tkiln_rc = cuFuncGetAttribute(&kiln_static, CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES, kiln_fn);\n"
	       "\t\t\tif (kiln_rc == CUDA_SUCCESS && (unsigned int)kiln_static + kiln_shared > 48u * 1024u)\n"
	       "\t\t\t\tkiln_rc = cuFuncSetAttribute(kiln_fn, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, (int)kiln_shared);\n"
	       "\t\t\tif (kiln_rc != CUDA_SUCCESS)\n\t\t\t\treturn kiln_rc;\n\t\t}\n";
}

static kiln_err put_launch(kiln_buf *h, const promote *pr, size_t li)
{
	const kiln_launch *l = &pr->plan->launches[li];
	const kiln_target *t = pr->t;
	kiln_err e = kiln_buf_printf(h, "\t{ /* launch %zu: %s */\n\t\tunsigned int kiln_dims[6] = {", li, l->kernel);
	for (int d = 0; !e && d < 6; d++) {
		e = kiln_buf_puts(h, d ? ", (unsigned int)(" : "(unsigned int)(");
		if (!e)
			e = put_expr(h, pr, d < 3 ? l->grid[d] : l->block[d - 3]);
		if (!e)
			e = kiln_buf_puts(h, ")");
	}
	if (!e)
		e = kiln_buf_puts(h, "};\n\t\tunsigned int kiln_shared = (unsigned int)(");
	if (!e)
		e = put_expr(h, pr, l->shared_bytes ? l->shared_bytes : "0");
	if (!e)
		e = kiln_buf_puts(h, ");\n");
	/* knobs passed as arguments need an lvalue */
	for (size_t a = 0; !e && a < l->nargs; a++) {
		long long v;
		bool symbol = false;
		for (size_t s = 0; s < t->nsymbols; s++)
			symbol = symbol || strcmp(t->symbols[s].name, l->args[a]) == 0;
		if (!symbol && !kiln_target_buffer(t, l->args[a]) && !kiln_target_scalar(t, l->args[a]) &&
		    strcmp(l->args[a], "sm_count") && knob_value(pr, l->args[a], &v))
			e = kiln_buf_printf(h, "\t\tlong long kiln_k%zu = %lldLL;\n", a, v);
	}
	if (!e)
		e = kiln_buf_puts(h, "\t\tvoid *kiln_args[] = {");
	for (size_t a = 0; !e && a < l->nargs; a++) {
		const char *n = l->args[a];
		const char *sep = a ? ", " : "";
		bool scratch = false;
		for (size_t s = 0; s < pr->plan->nscratch; s++)
			scratch = scratch || strcmp(pr->plan->scratch[s].name, n) == 0;
		long long v;
		bool symbol = false;
		for (size_t s = 0; s < t->nsymbols; s++)
			symbol = symbol || strcmp(t->symbols[s].name, n) == 0;
		if (scratch)
			e = kiln_buf_printf(h, "%s&kiln_s_%s", sep, n);
		else if (strcmp(n, "sm_count") == 0)
			e = kiln_buf_printf(h, "%s&kiln_sm_count", sep);
		else if (symbol || kiln_target_buffer(t, n) || kiln_target_scalar(t, n) || !knob_value(pr, n, &v))
			e = kiln_buf_printf(h, "%s&%s", sep, n);
		else
			e = kiln_buf_printf(h, "%s&kiln_k%zu", sep, a);
	}
	if (!e)
		e = kiln_buf_printf(h, "%s};\n\t\tkiln_rc = cuModuleGetFunction(&kiln_fn, kiln_module, \"%s\");\n"
				    "\t\tif (kiln_rc != CUDA_SUCCESS)\n\t\t\treturn kiln_rc;\n%s"
				    "\t\tkiln_rc = cuLaunchKernel(kiln_fn, kiln_dims[0], kiln_dims[1], kiln_dims[2], kiln_dims[3],"
				    " kiln_dims[4], kiln_dims[5],\n\t\t\t\t\t kiln_shared, kiln_stream, kiln_args, NULL);\n"
				    "\t\tif (kiln_rc != CUDA_SUCCESS)\n\t\t\treturn kiln_rc;\n\t}\n",
				    l->nargs ? "" : "NULL", l->kernel, shared_opt_in_text(l));
	return e;
}

static bool scratch_uses_sm_count(const kiln_plan *p)
{
	for (size_t i = 0; i < p->nscratch; i++)
		if (strstr(p->scratch[i].count, "sm_count"))
			return true;
	return false;
}

/* Whether any expression or argument of the plan uses sm_count (queried at launch). */
static bool uses_sm_count(const kiln_plan *p)
{
	for (size_t i = 0; i < p->nlaunches; i++) {
		const kiln_launch *l = &p->launches[i];
		const char *const exprs[7] = {l->grid[0], l->grid[1], l->grid[2], l->block[0], l->block[1], l->block[2],
					      l->shared_bytes ? l->shared_bytes : ""};
		for (int k = 0; k < 7; k++)
			if (exprs[k] && strstr(exprs[k], "sm_count"))
				return true;
		if (is_name_in("sm_count", (const char *const *)l->args, l->nargs))
			return true;
	}
	return scratch_uses_sm_count(p);
}

static kiln_err header_text(char **out, const promote *pr)
{
	kiln_buf h = KILN_BUF_INIT;
	const char *n = pr->name;
	char guard[96];
	size_t gi = 0;
	for (const char *p = n; *p && gi + 1 < sizeof(guard) - 20; p++)
		guard[gi++] = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
	guard[gi] = '\0';
	kiln_err e = kiln_buf_printf(&h,
		"/* %s.h: generated by `kiln promote` from candidate %.0f (run %.0f, target %s, archive commit %.12s).\n"
		" * Load %s.fatbin (built for", n, kiln_cli_jnum(pr->cand, "id"), kiln_cli_jnum(pr->cand, "run_id"),
		pr->t->name, pr->oid, n);
	for (size_t i = 0; !e && i < pr->narchs; i++)
		e = kiln_buf_printf(&h, " %s", pr->archs[i]);
	if (!e)
		e = kiln_buf_printf(&h, ") with %s_load, then call %s_launch\n"
			" * with device buffers, scalars and sizes; grid and block follow its launch.json.\n * Knobs built in:",
			n, n);
	for (size_t i = 0; !e && i < pr->ndefines; i++)
		e = kiln_buf_printf(&h, " %s", pr->defines[i]);
	if (!e)
		e = kiln_buf_printf(&h, "%s\n * Provenance: %s.json. Returns the first CUresult that is not CUDA_SUCCESS. */\n"
			"#ifndef KILN_PROMOTED_%s_H\n#define KILN_PROMOTED_%s_H\n\n#include <stddef.h>\n#include <cuda.h>\n\n"
			"#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
			"static inline long long %s_ceil_div(long long a, long long b) { return (a + b - 1) / b; }\n"
			"static inline long long %s_min(long long a, long long b) { return a < b ? a : b; }\n"
			"static inline long long %s_max(long long a, long long b) { return a > b ? a : b; }\n\n"
			"/* Loads the bytes of %s.fatbin into the current context. */\n"
			"static inline CUresult %s_load(CUmodule *module, const void *fatbin)\n{\n"
			"\treturn cuModuleLoadData(module, fatbin);\n}\n\n", pr->ndefines ? "" : " none", n, guard, guard, n, n,
			n, n, n);
	if (!e && pr->plan->nscratch) {
		e = kiln_buf_printf(&h, "/* Bytes of the scratch buffer %s_launch needs. */\nstatic inline size_t %s_scratch_bytes(",
				    n, n);
		for (size_t i = 0; !e && i < pr->t->nsymbols; i++)
			e = kiln_buf_printf(&h, "%slong long %s", i ? ", " : "", pr->t->symbols[i].name);
		if (!e)
			e = kiln_buf_printf(&h, "%s)\n{\n%s", pr->t->nsymbols ? "" : "void",
					    scratch_uses_sm_count(pr->plan) ? "\tlong long kiln_sm_count = 256; /* an upper bound */\n" : "");
		if (!e)
			e = put_scratch(&h, pr, true);
		if (!e)
			e = kiln_buf_puts(&h, "\treturn (size_t)kiln_off;\n}\n\n");
	}
	if (!e && pr->plan->graph) /* the header keeps plain launches; say how the timing ran */
		e = kiln_buf_printf(&h, "/* The plan was timed as one CUDA graph (launch.json \"graph\": true): for the same\n"
				    " * launch gaps, capture %s_launch on a non-default stream (cuStreamBeginCapture,\n"
				    " * cuStreamEndCapture, cuGraphInstantiate) and replay it with cuGraphLaunch. */\n", n);
	if (!e)
		e = kiln_buf_printf(&h, "static inline CUresult %s_launch(CUmodule kiln_module, CUstream kiln_stream", n);
	if (!e)
		e = put_params(&h, pr);
	if (!e)
		e = kiln_buf_puts(&h, ")\n{\n\tCUresult kiln_rc;\n\tCUfunction kiln_fn;\n");
	if (!e && uses_sm_count(pr->plan))
		e = kiln_buf_puts(&h, "\tCUdevice kiln_dev;\n\tint kiln_sms = 0;\n\tkiln_rc = cuCtxGetDevice(&kiln_dev);\n"
				      "\tif (kiln_rc == CUDA_SUCCESS)\n\t\tkiln_rc = cuDeviceGetAttribute(&kiln_sms, "
				      "CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, kiln_dev);\n"
				      "\tif (kiln_rc != CUDA_SUCCESS)\n\t\treturn kiln_rc;\n"
				      "\tlong long kiln_sm_count = kiln_sms;\n");
	if (!e && pr->plan->nscratch)
		e = put_scratch(&h, pr, false);
	for (size_t i = 0; !e && i < pr->plan->nlaunches; i++)
		e = put_launch(&h, pr, i);
	if (!e)
		e = kiln_buf_printf(&h, "\treturn CUDA_SUCCESS;\n}\n\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* KILN_PROMOTED_%s_H */\n",
				    guard);
	if (e) {
		kiln_buf_free(&h);
		return e;
	}
	*out = kiln_buf_detach(&h);
	return KILN_OK;
}

/* ---- archive and files ---- */

static kiln_err archive_commit(promote *pr)
{
	char *dir = kiln_path_join(pr->workdir, "archive");
	const char *target = pr->t->name, *arch = kiln_cli_jstr(pr->cand, "arch", "sm_90");
	int64_t id = (int64_t)kiln_cli_jnum(pr->cand, "id");
	kiln_err e = dir ? kiln_git_find_candidate(pr->oid, dir, target, arch, id) : KILN_ENOMEM;
	if (e == KILN_ENOTFOUND && kiln_path_exists(dir)) {
		char *launch = cJSON_Print(cJSON_GetObjectItemCaseSensitive(pr->cand, "launch"));
		char *result = kiln_verdict_to_json(&pr->verdict);
		kiln_git_best b = {target, arch, kiln_cli_jstr(pr->cand, "source", ""), launch, result,
				   kiln_cli_jnum(pr->cand, "speedup"), kiln_cli_jnum(pr->cand, "time_us"),
				   strcmp(kiln_cli_jstr(pr->cand, "kind", ""), "modeled") == 0, id,
				   (int64_t)kiln_cli_jnum(pr->cand, "run_id"), NULL};
		e = launch && result ? kiln_git_commit_detached(pr->oid, dir, &b) : KILN_ENOMEM;
		pr->detached = true;
		cJSON_free(launch);
		free(result);
	}
	free(dir);
	return e;
}

static kiln_err tag_all(promote *pr)
{
	char *dir = kiln_path_join(pr->workdir, "archive"), name[256];
	kiln_git *g = NULL;
	kiln_err e = dir ? kiln_git_open(&g, dir) : KILN_ENOMEM;
	char *msg = kiln_asprintf("kiln promote: candidate %.0f to %s", kiln_cli_jnum(pr->cand, "id"), pr->out_dir);
	for (size_t i = 0; !e && i < pr->narchs; i++) {
		if (!msg)
			e = KILN_ENOMEM;
		else if (!(e = kiln_git_tag(g, name, sizeof(name), pr->t->name, pr->archs[i], pr->oid, msg)))
			cJSON_AddItemToArray(pr->tags, cJSON_CreateString(name));
	}
	kiln_git_close(g);
	free(dir);
	free(msg);
	return e;
}

static cJSON *file_entry(const char *data, size_t len)
{
	char hex[65];
	cJSON *o = cJSON_CreateObject();
	kiln_sha256_hex(hex, data, len);
	cJSON_AddStringToObject(o, "sha256", hex);
	cJSON_AddNumberToObject(o, "bytes", (double)len);
	return o;
}

/* Moves key from the candidate row into obj (keeps the manifest's groups tidy). */
static void move(cJSON *obj, const char *as, cJSON *from, const char *key)
{
	cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(from, key);
	cJSON_AddItemToObject(obj, as, v ? v : cJSON_CreateNull());
}

static cJSON *manifest(promote *pr, cJSON *files)
{
	cJSON *m = cJSON_CreateObject(), *c = pr->cand;
	cJSON *cand = cJSON_CreateObject(), *run = cJSON_CreateObject(),
	      *ar = cJSON_CreateObject(), *ver = cJSON_CreateObject(), *tim = cJSON_CreateObject();
	char date[32], *vj = kiln_verdict_to_json(&pr->verdict), *branch = kiln_asprintf("%s/%s", pr->t->name,
		kiln_cli_jstr(c, "arch", "?"));
	kiln_iso8601(date, sizeof(date), kiln_wall_s());
	cJSON_AddStringToObject(m, "name", pr->name);
	cJSON_AddStringToObject(m, "target", pr->t->name);
	cJSON_AddItemToObject(m, "candidate", cand);
	static const char *const ck[] = {"id", "hash", "run_id", "iteration", "node_id", "knobs", "launch"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(ck); i++)
		move(cand, ck[i], c, ck[i]);
	cJSON *defs = cJSON_AddArrayToObject(cand, "defines");
	for (size_t i = 0; i < pr->ndefines; i++)
		cJSON_AddItemToArray(defs, cJSON_CreateString(pr->defines[i]));
	static const char *const rk[] = {"policy", "llm_model", "device", "gpu", "arch", "started"};
	cJSON_AddItemToObject(run, "id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cand, "run_id"), true));
	for (size_t i = 0; i < KILN_ARRAY_LEN(rk); i++)
		move(run, rk[i], c, rk[i]);
	cJSON_AddItemToObject(m, "run", run);
	cJSON_AddStringToObject(ar, "commit", pr->oid);
	cJSON_AddItemToObject(ar, "branch", pr->detached ? cJSON_CreateNull() : cJSON_CreateString(branch ? branch : ""));
	cJSON_AddItemToObject(ar, "tags", pr->tags);
	pr->tags = NULL;
	cJSON_AddItemToObject(m, "archive", ar);
	cJSON *recorded = cJSON_CreateObject();
	static const char *const vk[] = {"outcome", "failed_check", "message", "seeds", "verify_device"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(vk); i++)
		move(recorded, vk[i], c, vk[i]);
	cJSON_AddItemToObject(ver, "recorded", recorded);
	cJSON *fresh = vj ? cJSON_Parse(vj) : NULL;
	cJSON_AddItemToObject(ver, "promote", fresh ? fresh : cJSON_CreateNull());
	cJSON *varchs = cJSON_AddArrayToObject(ver, "archs"); /* each re-verified on the emulator */
	cJSON *twins = cJSON_AddObjectToObject(ver, "same_ptx_as"); /* covered by an arch with the same PTX */
	for (size_t i = 0; varchs && twins && i < pr->narchs; i++) {
		size_t j = ptx_twin(pr, i);
		if (j == i)
			cJSON_AddItemToArray(varchs, cJSON_CreateString(pr->archs[i]));
		else
			cJSON_AddStringToObject(twins, pr->archs[i], pr->archs[j]);
	}
	cJSON_AddStringToObject(ver, "device_only", "host and device views are the same (no conditional code)");
	char sha[65];
	kiln_sha256_hex(sha, pr->cu, strlen(pr->cu));
	/* NAME.cu byte for byte: what the fatbin was built from and re-verified */
	cJSON_AddStringToObject(ver, "source_sha256", sha);
	char *bj = pr->bench.sets ? kiln_verdict_to_json(&pr->bench) : NULL;
	cJSON *bench = bj ? cJSON_Parse(bj) : NULL;
	free(bj);
	if (bench) /* verified at the bench size on the emulator, input_set.sizes says which */
		cJSON_AddItemToObject(ver, "bench_size", bench);
	else
		cJSON_AddItemToObject(ver, "bench_size", cJSON_CreateString("skipped (KILN_BENCH_CHECK=0)"));
	cJSON_AddItemToObject(m, "verification", ver);
	static const char *const tk[] = {"kind", "timing_device", "time_us", "min_us", "spread", "reps", "samples",
					 "speedup", "roofline", "spec"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(tk); i++)
		move(tim, strcmp(tk[i], "timing_device") ? tk[i] : "device", c, tk[i]);
	cJSON_AddItemToObject(m, "timing", tim);
	cJSON *archs = cJSON_AddArrayToObject(m, "archs");
	for (size_t i = 0; i < pr->narchs; i++)
		cJSON_AddItemToArray(archs, cJSON_CreateString(pr->archs[i]));
	cJSON_AddStringToObject(m, "toolkit", pr->fatbin->nparts ? pr->fatbin->parts[0]->toolkit : "");
	cJSON_AddStringToObject(m, "kiln", KILN_VERSION);
	cJSON_AddStringToObject(m, "date", date);
	cJSON_AddItemToObject(m, "files", files);
	free(vj);
	free(branch);
	return m;
}

static kiln_err write_file(cJSON *files, const promote *pr, const char *ext, const void *data, size_t len)
{
	char *base = kiln_asprintf("%s.%s", pr->name, ext), *path = base ? kiln_path_join(pr->out_dir, base) : NULL;
	kiln_err e = path ? kiln_file_write_atomic(path, data, len) : KILN_ENOMEM;
	if (!e && files)
		cJSON_AddItemToObject(files, base, file_entry(data, len));
	free(base);
	free(path);
	return e;
}

/* NAME.cu: the candidate's source after the knob values it was verified and timed with
 * (each under #ifndef, so a build can still override one on purpose), so a plain nvcc
 * build computes what the header's grid assumes. */
static kiln_err cu_text(char **out, const promote *pr)
{
	kiln_buf b = KILN_BUF_INIT;
	kiln_err e = kiln_buf_printf(&b, "/* %s.cu: promoted by kiln with its knob values baked in (%s.h's launch "
				     "grid assumes them). */\n", pr->name, pr->name);
	for (size_t i = 0; !e && i < pr->ndefines; i++) {
		const char *d = pr->defines[i], *eq = strchr(d, '=');
		int len = eq ? (int)(eq - d) : (int)strlen(d);
		e = kiln_buf_printf(&b, "#ifndef %.*s\n#define %.*s %s\n#endif\n", len, d, len, d, eq ? eq + 1 : "1");
	}
	if (!e)
		e = kiln_buf_printf(&b, "\n%s", kiln_cli_jstr(pr->cand, "source", ""));
	if (e) {
		kiln_buf_free(&b);
		return e;
	}
	*out = kiln_buf_detach(&b);
	return KILN_OK;
}

static cJSON *str_array(char *const *v, size_t n)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v[i] ? v[i] : "1"));
	return a;
}

/* The launch spec NAME.py embeds: buffers, scalars, symbols, knob values, launches and
 * scratch, expressions as kiln writes them. */
static char *python_spec(const promote *pr)
{
	const kiln_target *t = pr->t;
	cJSON *s = cJSON_CreateObject(), *bufs = cJSON_AddArrayToObject(s, "buffers");
	cJSON *scs = cJSON_AddArrayToObject(s, "scalars"), *syms = cJSON_AddArrayToObject(s, "symbols");
	cJSON *knobs = cJSON_AddObjectToObject(s, "knobs"), *ls = cJSON_AddArrayToObject(s, "launches");
	cJSON *scr = cJSON_AddArrayToObject(s, "scratch");
	for (size_t i = 0; i < t->nbuffers; i++) {
		const kiln_buffer_spec *b = &t->buffers[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", b->name);
		cJSON_AddStringToObject(o, "dtype", kiln_dtype_name(b->dtype));
		cJSON_AddItemToObject(o, "shape", str_array(b->shape, b->ndim));
		cJSON_AddStringToObject(o, "role", b->role == KILN_ROLE_IN ? "in" : b->role == KILN_ROLE_OUT ? "out" : "inout");
		cJSON_AddItemToArray(bufs, o);
	}
	for (size_t i = 0; i < t->nscalars; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", t->scalars[i].name);
		cJSON_AddStringToObject(o, "dtype", kiln_dtype_name(t->scalars[i].dtype));
		cJSON_AddNumberToObject(o, "value", t->scalars[i].value);
		cJSON_AddItemToArray(scs, o);
	}
	for (size_t i = 0; i < t->nsymbols; i++)
		cJSON_AddItemToArray(syms, cJSON_CreateString(t->symbols[i].name));
	for (size_t i = 0; i < t->nknobs; i++) {
		long long v;
		if (knob_value(pr, t->knobs[i].name, &v))
			cJSON_AddNumberToObject(knobs, t->knobs[i].name, (double)v);
	}
	for (size_t i = 0; i < pr->plan->nlaunches; i++) {
		const kiln_launch *l = &pr->plan->launches[i];
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "kernel", l->kernel);
		cJSON_AddItemToObject(o, "grid", str_array(l->grid, 3));
		cJSON_AddItemToObject(o, "block", str_array(l->block, 3));
		cJSON_AddStringToObject(o, "shared", l->shared_bytes ? l->shared_bytes : "0");
		cJSON_AddItemToObject(o, "args", str_array(l->args, l->nargs));
		cJSON_AddItemToArray(ls, o);
	}
	for (size_t i = 0; i < pr->plan->nscratch; i++) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", pr->plan->scratch[i].name);
		cJSON_AddStringToObject(o, "dtype", kiln_dtype_name(pr->plan->scratch[i].dtype));
		cJSON_AddStringToObject(o, "count", pr->plan->scratch[i].count);
		cJSON_AddItemToArray(scr, o);
	}
	char *text = cJSON_PrintUnformatted(s);
	cJSON_Delete(s);
	return text;
}

static kiln_err write_python(cJSON *files, const promote *pr)
{
	char *spec = python_spec(pr), *py = NULL;
	char *prov = kiln_asprintf("candidate %.0f of target %s, run %.0f, archive commit %s", kiln_cli_jnum(pr->cand, "id"),
				   pr->t->name, kiln_cli_jnum(pr->cand, "run_id"), pr->oid);
	kiln_err e = spec && prov ? kiln_promote_python(&py, pr->name, spec, pr->t->summary, prov) : KILN_ENOMEM;
	if (!e)
		e = write_file(files, pr, "py", py, strlen(py));
	cJSON_free(spec);
	free(prov);
	free(py);
	return e;
}

static kiln_err write_outputs(promote *pr, cJSON **out_manifest)
{
	char *header = NULL, *text = NULL;
	cJSON *files = cJSON_CreateObject(), *m = NULL;
	kiln_err e = files ? archive_commit(pr) : KILN_ENOMEM;
	if (!e)
		e = kiln_mkdir_p(pr->out_dir);
	if (!e)
		e = header_text(&header, pr);
	if (!e)
		e = write_file(files, pr, "cu", pr->cu, strlen(pr->cu));
	if (!e)
		e = write_file(files, pr, "h", header, strlen(header));
	if (!e)
		e = write_file(files, pr, "fatbin", pr->fatbin->data, pr->fatbin->len);
	if (!e && pr->python)
		e = write_python(files, pr);
	if (!e)
		e = tag_all(pr);
	if (!e) {
		m = manifest(pr, files);
		files = NULL;
		text = cJSON_Print(m);
		e = text ? write_file(NULL, pr, "json", text, strlen(text)) : KILN_ENOMEM;
	}
	cJSON_Delete(files);
	free(header);
	cJSON_free(text);
	*out_manifest = m;
	return e;
}

/* ---- the command ---- */

static int parse_archs(promote *pr, const char *list)
{
	snprintf(pr->arch_buf, sizeof(pr->arch_buf), "%s", list);
	for (char *save = NULL, *a = strtok_r(pr->arch_buf, ",", &save); a; a = strtok_r(NULL, ",", &save)) {
		size_t digits = strspn(a + 3, "0123456789");
		const char *suffix = a + 3 + digits;
		if (pr->narchs >= MAX_ARCHS || strncmp(a, "sm_", 3) != 0 || digits < 2 || digits > 3 ||
		    !(suffix[0] == 0 || ((suffix[0] == 'a' || suffix[0] == 'f') && suffix[1] == 0))) {
			fprintf(stderr, "kiln promote: --arch '%s': expected a list like sm_80,sm_90a,sm_100f\nusage: %s\n", list, usage);
			return KILN_EXIT_USAGE;
		}
		pr->archs[pr->narchs++] = a;
	}
	return KILN_EXIT_OK;
}

static void print_summary(const promote *pr, const cJSON *m)
{
	const cJSON *tag;
	printf("promoted candidate %.0f of %s: re-verified (%zu input sets, seeds", kiln_cli_jnum(cJSON_GetObjectItemCaseSensitive(m, "candidate"), "id"),
	       pr->t->name, pr->verdict.runs);
	for (size_t i = 0; i < pr->verdict.nseeds; i++)
		printf(" %llu", (unsigned long long)pr->verdict.seeds[i]);
	printf(")");
	if (pr->bench.sets) {
		printf(", and at the bench size");
		for (size_t i = 0; i < pr->bench.input_sizes.n; i++)
			printf("%s%s=%lld", i ? "," : " ", pr->bench.input_sizes.names[i],
			       (long long)pr->bench.input_sizes.values[i]);
	}
	printf(", fatbin for");
	for (size_t i = 0; i < pr->narchs; i++)
		printf(" %s", pr->archs[i]);
	printf("\n  %s/%s.{cu,h,fatbin,json%s}\n  archive commit %s%s\n", pr->out_dir, pr->name, pr->python ? ",py" : "", pr->oid,
	       pr->detached ? " (detached: the candidate was never a new best)" : "");
	cJSON_ArrayForEach(tag, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(m, "archive"), "tags"))
		printf("  tag %s\n", tag->valuestring);
}

int kiln_cmd_promote(int argc, char **argv)
{
	const char *workdir = NULL, *arch = NULL, *seeds = NULL, *tdir = NULL, *threads_s = NULL, *pos[2];
	bool json = false;
	int npos = 0, rc = KILN_EXIT_OK;
	promote pr = {0};
	cJSON *m = NULL;
	kiln_cli_opt opts[] = {{"to", 1, &pr.out_dir, NULL}, {"arch", 1, &arch, NULL}, {"name", 1, &pr.name, NULL},
			       {"seeds", 1, &seeds, NULL}, {"json", 0, NULL, &json}, {"workdir", 1, &workdir, NULL},
			       {"targets-dir", 1, &tdir, NULL}, {"threads", 1, &threads_s, NULL},
			       {"python", 0, NULL, &pr.python}, {0}};
	if (!kiln_cli_parse(argc, argv, opts, pos, 2, &npos, usage, help, &rc))
		return rc;
	long nseeds = seeds ? strtol(seeds, NULL, 10) : 5;
	if (!kiln_cli_threads(&pr.threads, "promote", threads_s))
		return KILN_EXIT_USAGE;
	if (npos < 1 || !pr.out_dir || nseeds < 1 || nseeds > KILN_VERIFY_MAX_SEEDS) {
		fprintf(stderr, "kiln promote: %s\nusage: %s\n", npos < 1 ? "expected TARGET [CANDIDATE]"
			: !pr.out_dir ? "--to DIR is required" : "--seeds: expected 1..32", usage);
		return KILN_EXIT_USAGE;
	}
	pr.workdir = kiln_cli_workdir(workdir);
	pr.name = pr.name ? pr.name : pos[0];
	if (!(pr.tags = cJSON_CreateArray()))
		return kiln_cli_fail("promote", KILN_ENOMEM);
	kiln_err e = KILN_OK;
	if ((rc = kiln_cli_history_open(&pr.db, "promote", workdir)))
		goto done;
	if ((e = kiln_target_find(&pr.t, pos[0], tdir)) || (e = choose(&pr, pr.t->name, npos > 1 ? pos[1] : NULL)))
		goto fail;
	char all_archs[200];
	if (!arch && (e = kiln_compile_default_archs(all_archs, sizeof(all_archs))))
		goto fail;
	if ((rc = parse_archs(&pr, arch ? arch : all_archs)))
		goto done;
	if (strcmp(kiln_cli_jstr(pr.cand, "outcome", ""), "passed") != 0) {
		fprintf(stderr, "kiln promote: refused: candidate %.0f did not pass when it was recorded (%s: ",
			kiln_cli_jnum(pr.cand, "id"), kiln_cli_jstr(pr.cand, "outcome", "?"));
		kiln_text_print(stderr, kiln_cli_jstr(pr.cand, "failed_check", kiln_cli_jstr(pr.cand, "message", "")),
				KILN_TEXT_LINE);
		fputs(")\n", stderr);
		rc = KILN_EXIT_FAIL;
		goto done;
	}
	const char *const *knobs = NULL;
	const char *knob_names[64];
	size_t nknobs = 0;
	for (size_t i = 0; i < pr.t->nknobs && nknobs < KILN_ARRAY_LEN(knob_names); i++)
		knob_names[nknobs++] = pr.t->knobs[i].name;
	knobs = knob_names;
	if ((e = kiln_promote_check_device_only(kiln_cli_jstr(pr.cand, "source", ""), knobs, nknobs))) {
		fprintf(stderr, "kiln promote: refused: candidate %.0f: ", kiln_cli_jnum(pr.cand, "id"));
		kiln_text_print(stderr, kiln_error_last(), KILN_TEXT_LINE);
		fputc('\n', stderr);
		rc = KILN_EXIT_FAIL;
		goto done;
	}
	/* the fatbin first: archs with the same PTX are verified once */
	if ((e = prepare(&pr)) || (e = cu_text(&pr.cu, &pr)) || (e = compile_fatbin(&pr)) ||
	    (e = reverify(&pr, (size_t)nseeds)))
		goto fail;
	if (!pr.verdict.pass) {
		fprintf(stderr, "kiln promote: refused: candidate %.0f fails re-verification for %s with fresh seeds%s: [%s] ",
			kiln_cli_jnum(pr.cand, "id"), pr.verdict_arch ? pr.verdict_arch : "?",
			pr.verdict.unverifiable ? " (the emulator cannot run it)" : "", pr.verdict.check);
		kiln_text_print(stderr, pr.verdict.message, KILN_TEXT_LINE);
		fputc('\n', stderr);
		rc = KILN_EXIT_FAIL;
		goto done;
	}
	if ((e = write_outputs(&pr, &m)))
		goto fail;
	if (json)
		rc = kiln_cli_print_json(m);
	else
		print_summary(&pr, m);
	goto done;
fail:
	rc = kiln_cli_fail("promote", e);
done:
	cJSON_Delete(m);
	cJSON_Delete(pr.cand);
	cJSON_Delete(pr.tags);
	for (size_t i = 0; i < pr.ndefines; i++)
		free(pr.defines[i]);
	kiln_fatbin_free(pr.fatbin);
	free(pr.cu);
	kiln_plan_free(pr.plan);
	kiln_target_free(pr.t);
	kiln_db_close(pr.db);
	return rc;
}
