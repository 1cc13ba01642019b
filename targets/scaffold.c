/* `kiln targets new`: writes a new target folder (target.json, launch.json, seed.cu and
 * a starting reference in C or Python). With a kernel, its buffers and scalars are guessed
 * from the first __global__ function's parameters: pointers are buffers (const: in,
 * else inout), long long parameters are size symbols, other values are scalars. Every
 * guess that a user must look at says FILL IN, which `kiln targets check` reports. */
#include "targets/targets_int.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 32

typedef struct param {
	char name[KILN_NAME_MAX];
	kiln_dtype dtype;
	enum { P_BUFFER, P_SCALAR, P_SYMBOL } kind;
	bool is_const;
} param;

static const struct {
	const char *ctype;
	kiln_dtype dt;
} ctypes[] = {
	{"float", KILN_F32}, {"double", KILN_F64}, {"__half", KILN_F16}, {"half", KILN_F16},
	{"__nv_bfloat16", KILN_BF16}, {"nv_bfloat16", KILN_BF16}, {"int", KILN_I32}, {"int32_t", KILN_I32},
	{"longlong", KILN_I64}, {"int64_t", KILN_I64}, {"unsignedchar", KILN_U8}, {"uint8_t", KILN_U8},
	{"unsignedint", KILN_U32}, {"unsigned", KILN_U32}, {"uint32_t", KILN_U32}, {"bool", KILN_BOOL},
	{"char", KILN_U8}, {"unsignedshort", KILN_BF16}, {"uint16_t", KILN_BF16},
};

/* One parameter's text ("const float *__restrict__ x") into p. */
static kiln_err parse_param(param *p, const char *s, size_t n, const char *where)
{
	char type[256] = "", word[KILN_NAME_MAX];
	size_t tl = 0, i = 0;
	int stars = 0;
	bool is_const = false;
	p->name[0] = 0;
	while (i < n) {
		if (s[i] == '*') {
			stars++;
			i++;
			continue;
		}
		if (!isalnum((unsigned char)s[i]) && s[i] != '_') {
			i++;
			continue;
		}
		size_t w = 0;
		while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_') && w < sizeof word - 1)
			word[w++] = s[i++];
		word[w] = 0;
		if (!strcmp(word, "const"))
			is_const = true;
		else if (strcmp(word, "__restrict__") && strcmp(word, "restrict") && strcmp(word, "volatile") &&
			 strcmp(word, "signed")) {
			if (p->name[0] && tl + strlen(p->name) < sizeof type - 1) { /* the previous word was a type word */
				memcpy(type + tl, p->name, strlen(p->name));
				tl += strlen(p->name);
				type[tl] = 0;
			}
			snprintf(p->name, sizeof p->name, "%s", word);
		}
	}
	if (!p->name[0] || !type[0])
		return kiln_error_set(KILN_EINVAL, "%s: cannot read the kernel parameter \"%.*s\"", where, (int)n, s);
	if (stars > 1)
		return kiln_error_set(KILN_EINVAL, "%s: parameter %s is a pointer to a pointer (kiln passes flat buffers)",
				      where, p->name);
	if (!strcmp(type, "longlong") && !stars) {
		p->kind = P_SYMBOL;
		p->dtype = KILN_I64;
		return KILN_OK;
	}
	for (size_t k = 0; k < KILN_ARRAY_LEN(ctypes); k++)
		if (!strcmp(type, ctypes[k].ctype)) {
			p->dtype = ctypes[k].dt;
			p->kind = stars ? P_BUFFER : P_SCALAR;
			p->is_const = is_const;
			if (p->kind == P_SCALAR && (p->dtype == KILN_F16 || p->dtype == KILN_BF16 || p->dtype == KILN_U8 ||
						     p->dtype == KILN_BOOL))
				break;
			return KILN_OK;
		}
	return kiln_error_set(KILN_EINVAL, "%s: parameter %s has type \"%s\"%s, which kiln cannot pass (buffers: "
			      "float, double, __half, __nv_bfloat16, int, long long, unsigned char, unsigned, bool "
			      "pointers; scalars: float, double, int, unsigned, long long)", where, p->name, type,
			      stars ? " *" : "");
}

/* The first __global__ function of src: its name and parameters. */
static kiln_err parse_kernel(char *name, size_t cap, param *ps, size_t *np, const char *src, const char *where)
{
	const char *g = strstr(src, "__global__");
	*np = 0;
	if (!g)
		return kiln_error_set(KILN_EINVAL, "%s: no __global__ function", where);
	const char *open = g + 10, *b = NULL, *e = NULL;
	for (;;) { /* the first identifier followed by '(' other than __launch_bounds__(...) */
		open = strchr(open, '(');
		if (!open)
			return kiln_error_set(KILN_EINVAL, "%s: the __global__ function has no parameter list", where);
		e = open;
		while (e > g && isspace((unsigned char)e[-1]))
			e--;
		b = e;
		while (b > g && (isalnum((unsigned char)b[-1]) || b[-1] == '_'))
			b--;
		if ((size_t)(e - b) != 17 || strncmp(b, "__launch_bounds__", 17) != 0)
			break;
		open = strchr(open, ')');
		if (!open)
			return kiln_error_set(KILN_EINVAL, "%s: __launch_bounds__ does not end", where);
	}
	if (b == e || (size_t)(e - b) >= cap)
		return kiln_error_set(KILN_EINVAL, "%s: cannot read the kernel's name", where);
	snprintf(name, cap, "%.*s", (int)(e - b), b);
	int depth = 0;
	const char *p = open + 1, *start = p;
	for (; *p; p++) {
		if (*p == '(' || *p == '<')
			depth++;
		else if ((*p == ')' || *p == '>') && depth > 0)
			depth--;
		else if ((*p == ',' || *p == ')') && depth == 0) {
			bool blank = true;
			for (const char *q = start; q < p; q++)
				blank = blank && isspace((unsigned char)*q);
			if (!blank) {
				if (*np >= MAX_PARAMS)
					return kiln_error_set(KILN_EINVAL, "%s: more than %d parameters", where, MAX_PARAMS);
				kiln_err err = parse_param(&ps[*np], start, (size_t)(p - start), where);
				if (err)
					return err;
				(*np)++;
			}
			if (*p == ')')
				return KILN_OK;
			start = p + 1;
		}
	}
	return kiln_error_set(KILN_EINVAL, "%s: the kernel's parameter list does not end", where);
}

static const char default_seed[] =
	"// FILL IN: your kernel. kiln passes launch.json \"args\" in order: a buffer as a device\n"
	"// pointer of its dtype, a scalar by value, a size symbol or knob as long long.\n"
	"// The knob BLOCK (target.json \"knobs\") arrives as a -D define.\n"
	"#ifndef BLOCK\n#define BLOCK 256\n#endif\n\n"
	"extern \"C\" __global__ void __launch_bounds__(BLOCK)\n"
	"%s(float *y, const float *x, float a, long long n)\n"
	"{\n"
	"    long long i = (long long)blockIdx.x * BLOCK + threadIdx.x;\n"
	"    if (i < n)\n"
	"        y[i] = a * x[i] + y[i];\n"
	"}\n";

static const char c_ref_head[] =
	"/* %s reference: FILL IN what it computes, in float64, and cite where the math comes\n"
	" * from. kiln compiles this file with $CC against kiln/reference.h and runs\n"
	" * kiln_reference() for every input set, in a child process with a deadline.\n"
	" * Buffers are row-major double arrays: `in` buffers hold the inputs, `inout` buffers\n"
	" * the initial values you overwrite with the final ones, `out` buffers zeros you fill.\n"
	" * kiln_ref_slack(io, NAME) gives per-element extra tolerance where two answers are\n"
	" * right (a tie, a clip boundary); leave it 0 elsewhere. Be deterministic. */\n"
	"#include <kiln/reference.h>\n#include <math.h>\n\n"
	"int kiln_reference(kiln_ref_io *io)\n{\n";

static const char py_ref_head[] =
	"\"\"\"%s reference: FILL IN what it computes, in float64, and cite where the math comes from.\n\n"
	"kiln calls reference(inputs, scalars, sizes) for every input set in a python3 subprocess:\n"
	"  inputs:  {name: float64 numpy array shaped as in target.json} for every in/inout buffer\n"
	"  scalars: {name: float} as the kernel sees them (rounded to their dtype)\n"
	"  sizes:   {symbol: int}\n"
	"Return {name: array} for every out and inout buffer (their final values), or a pair\n"
	"(outputs, slack) where slack = {name: array or number}: per-element extra tolerance\n"
	"where two answers are right (a tie, a clip boundary). Be deterministic.\n"
	"\"\"\"\nimport numpy as np\n\n\n"
	"def reference(inputs, scalars, sizes):\n";

/* The starting reference.c / reference.py: the default axpy example worked out, or, for
 * --from, the kernel's buffers read in and the computation left to the user. */
static char *starting_reference(const char *name, bool py, const param *ps, size_t np, bool example)
{
	kiln_buf b;
	kiln_buf_init(&b, 1u << 20);
	kiln_err e = kiln_buf_printf(&b, py ? py_ref_head : c_ref_head, name);
	if (example && py)
		e = e ? e : kiln_buf_puts(&b, "    # y = a*x + y\n    return {\"y\": scalars[\"a\"] * inputs[\"x\"] + inputs[\"y\"]}\n");
	else if (example)
		e = e ? e : kiln_buf_puts(&b, "\t/* y = a*x + y */\n\tdouble *y = kiln_ref_buf(io, \"y\"), *x = kiln_ref_buf(io, \"x\");\n"
				   "\tdouble a = kiln_ref_scalar(io, \"a\");\n\tint64_t n = kiln_ref_symbol(io, \"n\");\n"
				   "\tif (!y || !x || n < 0)\n\t\treturn kiln_ref_fail(io, \"target.json lacks y, x or n\");\n"
				   "\tfor (int64_t i = 0; i < n; i++)\n\t\ty[i] = a * x[i] + y[i];\n\treturn 0;\n}\n");
	else if (py) {
		for (size_t i = 0; i < np && !e; i++)
			if (ps[i].kind == P_BUFFER)
				e = kiln_buf_printf(&b, "    %s = inputs[\"%s\"]\n", ps[i].name, ps[i].name);
		e = e ? e : kiln_buf_puts(&b, "    raise NotImplementedError(\"FILL IN the reference\")\n    return {");
		for (size_t i = 0, k = 0; i < np && !e; i++)
			if (ps[i].kind == P_BUFFER && !ps[i].is_const)
				e = kiln_buf_printf(&b, "%s\"%s\": %s", k++ ? ", " : "", ps[i].name, ps[i].name);
		e = e ? e : kiln_buf_puts(&b, "}\n");
	} else {
		for (size_t i = 0; i < np && !e; i++)
			e = ps[i].kind == P_BUFFER   ? kiln_buf_printf(&b, "\tdouble *%s = kiln_ref_buf(io, \"%s\");\n", ps[i].name, ps[i].name)
			    : ps[i].kind == P_SCALAR ? kiln_buf_printf(&b, "\tdouble %s = kiln_ref_scalar(io, \"%s\");\n", ps[i].name, ps[i].name)
						     : kiln_buf_printf(&b, "\tint64_t %s = kiln_ref_symbol(io, \"%s\");\n", ps[i].name, ps[i].name);
		for (size_t i = 0; i < np && !e; i++)
			e = kiln_buf_printf(&b, "\t(void)%s;\n", ps[i].name);
		e = e ? e : kiln_buf_puts(&b, "\treturn kiln_ref_fail(io, \"FILL IN the reference\");\n}\n");
	}
	if (e) {
		kiln_buf_free(&b);
		return NULL;
	}
	return kiln_buf_detach(&b);
}

static const char *default_init(kiln_dtype dt)
{
	return kiln_dtype_is_float(dt) ? "normal(0,1)" : dt == KILN_BOOL || dt == KILN_U8 ? "randint(0,1)" : "randint(0,9)";
}

static cJSON *target_json(const char *name, const param *ps, size_t np, bool py)
{
	cJSON *t = cJSON_CreateObject(), *syms = NULL, *bufs = NULL, *scs = NULL, *tol = NULL, *kn = NULL;
	const char *sym = "n";
	for (size_t i = 0; i < np; i++)
		if (ps[i].kind == P_SYMBOL) {
			sym = ps[i].name;
			break;
		}
	cJSON_AddStringToObject(t, "name", name);
	cJSON_AddStringToObject(t, "family", "FILL IN: optimizer, rl-loss, normalization, ...");
	cJSON_AddStringToObject(t, "summary", "FILL IN: one paragraph a model reads first: what the kernel computes and "
					      "what bounds its speed (bytes per element).");
	cJSON_AddStringToObject(t, "math", "FILL IN: the exact math, with the layout of every buffer ([rows, cols] "
					   "row-major, ...), the edge cases and what the kernel must do there.");
	syms = cJSON_AddObjectToObject(t, "symbols");
	bool have_sym = false;
	for (size_t i = 0; i < np; i++)
		if (ps[i].kind == P_SYMBOL) {
			cJSON *s = cJSON_AddObjectToObject(syms, ps[i].name);
			int v[] = {1, 7, 1000, 65539}, bn[] = {16777216};
			cJSON_AddItemToObject(s, "verify", cJSON_CreateIntArray(v, 4));
			cJSON_AddItemToObject(s, "bench", cJSON_CreateIntArray(bn, 1));
			have_sym = true;
		}
	if (!have_sym) {
		cJSON *s = cJSON_AddObjectToObject(syms, sym);
		int v[] = {1, 7, 1000, 65539}, bn[] = {16777216};
		cJSON_AddItemToObject(s, "verify", cJSON_CreateIntArray(v, 4));
		cJSON_AddItemToObject(s, "bench", cJSON_CreateIntArray(bn, 1));
	}
	bufs = cJSON_AddArrayToObject(t, "buffers");
	scs = cJSON_AddArrayToObject(t, "scalars");
	tol = cJSON_AddObjectToObject(t, "tolerance");
	kiln_buf traffic;
	kiln_buf_init(&traffic, 4096);
	for (size_t i = 0; i < np; i++) {
		const param *p = &ps[i];
		if (p->kind == P_BUFFER) {
			cJSON *b = cJSON_CreateObject();
			cJSON_AddStringToObject(b, "name", p->name);
			cJSON_AddStringToObject(b, "dtype", kiln_dtype_name(p->dtype));
			cJSON_AddItemToObject(b, "shape", cJSON_CreateStringArray(&sym, 1));
			cJSON_AddStringToObject(b, "role", p->is_const ? "in" : "inout");
			cJSON_AddStringToObject(b, "init", default_init(p->dtype));
			cJSON_AddItemToArray(bufs, b);
			size_t bytes = kiln_dtype_size(p->dtype) * (p->is_const ? 1 : 2);
			(void)kiln_buf_printf(&traffic, "%s%zu*%s", traffic.len ? " + " : "", bytes, sym);
			if (!p->is_const) {
				cJSON *o = cJSON_AddObjectToObject(tol, p->name);
				if (kiln_dtype_is_float(p->dtype)) {
					cJSON_AddNumberToObject(o, "rtol", 1e-5);
					cJSON_AddNumberToObject(o, "atol", 1e-6);
				} else {
					cJSON_AddStringToObject(o, "rule", "exact");
				}
			}
		} else if (p->kind == P_SCALAR) {
			cJSON *s = cJSON_CreateObject();
			cJSON_AddStringToObject(s, "name", p->name);
			cJSON_AddStringToObject(s, "dtype", kiln_dtype_name(p->dtype));
			cJSON_AddNumberToObject(s, "value", kiln_dtype_is_float(p->dtype) ? 0.5 : 3);
			cJSON_AddItemToArray(scs, s);
		}
	}
	cJSON_AddStringToObject(t, "traffic_bytes", traffic.data ? traffic.data : "4*n");
	kiln_buf_free(&traffic);
	cJSON_AddStringToObject(t, "reference", py ? "reference.py" : "reference.c");
	kn = cJSON_AddObjectToObject(t, "knobs");
	int blocks[] = {128, 256, 512};
	cJSON_AddItemToObject(kn, "BLOCK", cJSON_CreateIntArray(blocks, 3));
	cJSON_AddStringToObject(t, "notes", "FILL IN (optional): what a fast kernel should know; then add regimes "
					    "(see the README) for the inputs that expose ordinary bugs.");
	return t;
}

static kiln_err write_file(const char *dir, const char *name, const char *text)
{
	char *p = kiln_path_join(dir, name);
	kiln_err e = p && text ? kiln_file_write_atomic(p, text, strlen(text)) : kiln_error_set(KILN_ENOMEM, "out of memory");
	free(p);
	return e;
}

kiln_err kiln_target_scaffold(char **out_dir, const char *name, const char *parent, const char *from_cu, bool py)
{
	param ps[MAX_PARAMS];
	size_t np = 0;
	char kname[KILN_NAME_MAX * 2], *src = NULL, *dir = NULL, *tj = NULL, *launch = NULL, *ref = NULL, *seed = NULL;
	cJSON *t = NULL;
	kiln_buf lb;
	kiln_err e;
	*out_dir = NULL;
	kiln_buf_init(&lb, 1u << 16);
	if (!kiln_name_ok(name) || kiln_name_reserved(name))
		return kiln_error_set(KILN_EINVAL, "target name \"%s\": expected a C identifier (letters, digits, _)", name);
	if (!(dir = kiln_path_join(parent && *parent ? parent : ".", name)))
		return kiln_error_set(KILN_ENOMEM, "out of memory");
	if (kiln_path_exists(dir)) {
		e = kiln_error_set(KILN_EINVAL, "%s: already exists (kiln targets new never overwrites a folder)", dir);
		goto done;
	}
	if (from_cu) {
		size_t len;
		if ((e = kiln_file_read(&src, &len, from_cu, 4u << 20)) ||
		    (e = parse_kernel(kname, sizeof kname, ps, &np, src, from_cu)))
			goto done;
		seed = kiln_strdup(src);
	} else {
		snprintf(kname, sizeof kname, "%s_kernel", name);
		ps[0] = (param){"y", KILN_F32, P_BUFFER, false};
		ps[1] = (param){"x", KILN_F32, P_BUFFER, true};
		ps[2] = (param){"a", KILN_F32, P_SCALAR, false};
		ps[3] = (param){"n", KILN_I64, P_SYMBOL, false};
		np = 4;
		seed = kiln_asprintf(default_seed, kname);
	}
	for (size_t i = 0; i < np; i++)
		if (kiln_name_reserved(ps[i].name) || !strcmp(ps[i].name, "BLOCK")) {
			e = kiln_error_set(KILN_EINVAL, "%s: parameter name \"%s\" is reserved in kiln; rename it", from_cu,
					   ps[i].name);
			goto done;
		}
	const char *sym = "n";
	for (size_t i = 0; i < np; i++)
		if (ps[i].kind == P_SYMBOL) {
			sym = ps[i].name;
			break;
		}
	e = kiln_buf_printf(&lb, "{\n  \"launches\": [\n    { \"kernel\": \"%s\", \"grid\": [\"ceil_div(%s, BLOCK)\"], "
			    "\"block\": [\"BLOCK\"], \"shared_bytes\": \"0\",\n      \"args\": [", kname, sym);
	for (size_t i = 0; i < np && !e; i++)
		e = kiln_buf_printf(&lb, "%s\"%s\"", i ? ", " : "", ps[i].name);
	if (e || (e = kiln_buf_puts(&lb, "] }\n  ],\n  \"scratch\": [],\n  \"nvrtc_flags\": []\n}\n")))
		goto done;
	if (!(t = target_json(name, ps, np, py)) || !(tj = cJSON_Print(t)) || !seed ||
	    !(ref = starting_reference(name, py, ps, np, !from_cu))) {
		e = kiln_error_set(KILN_ENOMEM, "out of memory");
		goto done;
	}
	if ((e = kiln_mkdir_p(dir)) || (e = write_file(dir, "target.json", tj)) ||
	    (e = write_file(dir, "launch.json", lb.data)) || (e = write_file(dir, "seed.cu", seed)) ||
	    (e = write_file(dir, py ? "reference.py" : "reference.c", ref)))
		goto done;
	*out_dir = dir;
	dir = NULL;
done:
	kiln_buf_free(&lb);
	cJSON_Delete(t);
	cJSON_free(tj);
	free(src);
	free(seed);
	free(ref);
	free(launch);
	free(dir);
	return e;
}
