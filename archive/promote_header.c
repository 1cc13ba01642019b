/* archive: the files `kiln promote` writes from a chosen candidate: NAME.h (a C launch
 * function: grid/block from launch.json translated by kiln_promote_c_expr, knob values
 * inlined, scratch offsets 256-byte aligned, the shared-memory opt-in above 48 KiB),
 * NAME.cu (the source with its knob values baked in) and the launch spec NAME.py embeds.
 * Pure text generation from the kiln_promotion state (archive_int.h): no I/O here. */
#include "archive/archive_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

typedef struct name_map {
	const kiln_promotion *pr;
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
	if (kiln_promotion_knob(m->pr, name, &v)) {
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

static kiln_err put_expr(kiln_buf *h, const kiln_promotion *pr, const char *expr)
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
static kiln_err put_params(kiln_buf *h, const kiln_promotion *pr)
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
static kiln_err put_scratch(kiln_buf *h, const kiln_promotion *pr, bool bytes_fn)
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

static kiln_err put_launch(kiln_buf *h, const kiln_promotion *pr, size_t li)
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
		    strcmp(l->args[a], "sm_count") && kiln_promotion_knob(pr, l->args[a], &v))
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
		else if (symbol || kiln_target_buffer(t, n) || kiln_target_scalar(t, n) || !kiln_promotion_knob(pr, n, &v))
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

kiln_err kiln_promotion_header(char **out, const kiln_promotion *pr)
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
		" * Load %s.fatbin (built for", n, promote_jnum(pr->cand, "id"), promote_jnum(pr->cand, "run_id"),
		pr->t->name, pr->res->oid, n);
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

kiln_err kiln_promotion_cu(char **out, const kiln_promotion *pr)
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
		e = kiln_buf_printf(&b, "\n%s", promote_jstr(pr->cand, "source", ""));
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
char *kiln_promotion_python_spec(const kiln_promotion *pr)
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
		if (kiln_promotion_knob(pr, t->knobs[i].name, &v))
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

