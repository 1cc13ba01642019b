/* launch.json: parsing and validating a candidate's launch plan against its target,
 * canonical JSON out, and evaluating launch dimensions. Expressions may use the target's
 * symbols, knobs and sm_count (never scratch names); args name buffers, scalars,
 * symbols, knobs, sm_count or scratch buffers; NVRTC flags come from a short allow-list so a plan
 * cannot smuggle in include paths, output files or host compilation. */
#include "targets/targets_int.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WHERE_MAX 1024
#define MAX_LAUNCHES 16
#define MAX_ARGS 64
#define MAX_SCRATCH 16
#define MAX_FLAGS 32
#define KERNEL_NAME_MAX 256

void kiln_plan_free(kiln_plan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nlaunches; i++) {
		kiln_launch *l = &p->launches[i];
		free(l->kernel);
		for (int d = 0; d < 3; d++) {
			free(l->grid[d]);
			free(l->block[d]);
		}
		free(l->shared_bytes);
		for (size_t a = 0; a < l->nargs; a++)
			free(l->args[a]);
		free(l->args);
	}
	free(p->launches);
	for (size_t i = 0; i < p->nscratch; i++) {
		free(p->scratch[i].name);
		free(p->scratch[i].count);
	}
	free(p->scratch);
	for (size_t i = 0; i < p->nflags; i++)
		free(p->nvrtc_flags[i]);
	free(p->nvrtc_flags);
	free(p);
}

/* Names usable in expressions (symbols, knobs, sm_count) and as args (those plus
 * buffers, scalars, scratch). */
typedef struct plan_names {
	const char *expr[KILN_ENV_MAX + 1];
	size_t nexpr;
	const char **args;
	size_t nargs;
} plan_names;

static bool is_target_name(const kiln_target *t, const char *s)
{
	for (size_t i = 0; i < t->nsymbols; i++)
		if (strcmp(t->symbols[i].name, s) == 0)
			return true;
	for (size_t i = 0; i < t->nknobs; i++)
		if (strcmp(t->knobs[i].name, s) == 0)
			return true;
	return kiln_target_buffer(t, s) || kiln_target_scalar(t, s);
}

static bool is_knob(const kiln_target *t, const char *s, size_t n)
{
	for (size_t i = 0; i < t->nknobs; i++)
		if (strlen(t->knobs[i].name) == n && strncmp(t->knobs[i].name, s, n) == 0)
			return true;
	return false;
}

/* A flag from the allow-list; -DNAME=VALUE with a C identifier NAME that is not a knob
 * (knob values are passed by the tuner and must match launch expressions). */
static kiln_err check_flag(const char *f, const kiln_target *t, const char *where)
{
	static const char *const exact[] = {
		"-use_fast_math", "--use_fast_math", "-lineinfo", "--generate-line-info",
		"-default-device", "--device-as-default-execution-space", "--extra-device-vectorization",
		"-extra-device-vectorization", NULL};
	static const char *const boolean[] = {"ftz", "prec-div", "prec-sqrt", "fmad", NULL};
	for (const char *const *x = exact; *x; x++)
		if (strcmp(f, *x) == 0)
			return KILN_OK;
	const char *body = f[0] == '-' ? (f[1] == '-' ? f + 2 : f + 1) : NULL;
	if (body) {
		for (const char *const *b = boolean; *b; b++) {
			size_t n = strlen(*b);
			if (strncmp(body, *b, n) == 0 && body[n] == '=' &&
			    (strcmp(body + n + 1, "true") == 0 || strcmp(body + n + 1, "false") == 0))
				return KILN_OK;
		}
		if (strncmp(body, "maxrregcount=", 13) == 0) {
			char *end = NULL;
			const char *num = body + 13;
			long v = isdigit((unsigned char)*num) ? strtol(num, &end, 10) : 0;
			if (v >= 16 && v <= 255 && !*end)
				return KILN_OK;
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\": maxrregcount must be an integer in 16..255", where, f);
		}
	}
	if (f[0] == '-' && f[1] == 'D') {
		const char *name = f + 2, *eq = strchr(name, '=');
		size_t n = eq ? (size_t)(eq - name) : 0;
		bool ok = eq && n > 0 && n < KILN_NAME_MAX && (isalpha((unsigned char)name[0]) || name[0] == '_');
		for (size_t i = 0; ok && i < n; i++)
			ok = isalnum((unsigned char)name[i]) || name[i] == '_';
		for (const char *v = eq ? eq + 1 : ""; ok && *v; v++)
			ok = isalnum((unsigned char)*v) || strchr("_.+-", *v);
		if (!ok || !eq[1])
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\": a define must be -DNAME=VALUE (NAME a C identifier, "
					      "VALUE of letters, digits, _ . + -)", where, f);
		if (name[0] == '_' && (name[1] == '_' || isupper((unsigned char)name[1])))
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\": names starting with __ or _X are reserved for the toolkit "
					      "(its headers read some of them as file names)", where, f);
		if (is_knob(t, name, n))
			return kiln_error_set(KILN_EINVAL, "%s: \"%s\" redefines knob %.*s (knob values come from the tuner)",
					      where, f, (int)n, name);
		return KILN_OK;
	}
	return kiln_error_set(KILN_EINVAL,
			      "%s: flag \"%s\" is not allowed (allowed: -use_fast_math, -ftz=true|false, "
			      "-prec-div=true|false, -prec-sqrt=true|false, -fmad=true|false, -maxrregcount=N, "
			      "-lineinfo, -default-device, --extra-device-vectorization, -DNAME=VALUE)", where, f);
}

static kiln_err dims(char *out[3], const cJSON *obj, const char *key, const plan_names *pn,
		     const char *where)
{
	const cJSON *arr;
	char sub[WHERE_MAX + 32];
	kiln_err e = kiln_json_array(&arr, obj, key, where);
	if (e)
		return e;
	int n = cJSON_GetArraySize(arr);
	if (n < 1 || n > 3)
		return kiln_error_set(KILN_EINVAL, "%s.%s: expected 1 to 3 dimensions, got %d", where, key, n);
	int d = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, arr) {
		snprintf(sub, sizeof(sub), "%s.%s[%d]", where, key, d);
		if ((e = kiln_json_expr(&out[d], it, sub)) || (e = kiln_expr_check(out[d], pn->expr, pn->nexpr, sub)))
			return e;
		d++;
	}
	for (; d < 3; d++)
		if (!(out[d] = kiln_strdup("1")))
			return KILN_ENOMEM;
	return KILN_OK;
}

static kiln_err parse_scratch(kiln_plan *p, const cJSON *root, const kiln_target *t, plan_names *pn,
			      const char *where)
{
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(root, "scratch"), *it;
	char w[WHERE_MAX];
	static const char *const keys[] = {"name", "dtype", "count", NULL};
	kiln_err e;
	if (!arr)
		return KILN_OK;
	if (!cJSON_IsArray(arr))
		return kiln_error_set(KILN_EINVAL, "%s: scratch: expected an array", where);
	size_t cnt = (size_t)cJSON_GetArraySize(arr);
	if (cnt > MAX_SCRATCH)
		return kiln_error_set(KILN_EINVAL, "%s: scratch: at most %d buffers", where, MAX_SCRATCH);
	if (cnt && !(p->scratch = kiln_calloc(cnt, sizeof(*p->scratch))))
		return KILN_ENOMEM;
	cJSON_ArrayForEach(it, arr) {
		kiln_scratch *s = &p->scratch[p->nscratch];
		const char *str;
		snprintf(w, sizeof(w), "%s: scratch[%zu]", where, p->nscratch);
		p->nscratch++;
		if (!cJSON_IsObject(it))
			return kiln_error_set(KILN_EINVAL, "%s: expected {\"name\", \"dtype\", \"count\"}", w);
		if ((e = kiln_json_only_keys(it, keys, w)) || (e = kiln_json_string(&str, it, "name", w)))
			return e;
		if (!kiln_name_ok(str) || kiln_name_reserved(str))
			return kiln_error_set(KILN_EINVAL, "%s.name: \"%s\" is not a usable C identifier", w, str);
		if (is_target_name(t, str))
			return kiln_error_set(KILN_EINVAL, "%s.name: \"%s\" is already a name of target %s", w, str, t->name);
		for (size_t j = 0; j + 1 < p->nscratch; j++)
			if (strcmp(p->scratch[j].name, str) == 0)
				return kiln_error_set(KILN_EINVAL, "%s.name: duplicate scratch name \"%s\"", w, str);
		if (!(s->name = kiln_strdup(str)))
			return KILN_ENOMEM;
		pn->args[pn->nargs++] = s->name;
		char sub[WHERE_MAX + 16];
		snprintf(sub, sizeof(sub), "%s.dtype", w);
		if ((e = kiln_json_string(&str, it, "dtype", w)) || (e = kiln_dtype_parse(&s->dtype, str, sub)))
			return e;
		snprintf(sub, sizeof(sub), "%s.count", w);
		const cJSON *c = cJSON_GetObjectItemCaseSensitive(it, "count");
		if (!c)
			return kiln_error_set(KILN_EINVAL, "%s: missing field \"count\" (elements, an expression)", w);
		if ((e = kiln_json_expr(&s->count, c, sub)) || (e = kiln_expr_check(s->count, pn->expr, pn->nexpr, sub)))
			return e;
	}
	return KILN_OK;
}

static kiln_err parse_launch(kiln_launch *l, const cJSON *it, const plan_names *pn, const char *w)
{
	static const char *const keys[] = {"kernel", "grid", "block", "shared_bytes", "args", NULL};
	const char *str;
	char sub[WHERE_MAX + 32];
	kiln_err e;
	if (!cJSON_IsObject(it))
		return kiln_error_set(KILN_EINVAL, "%s: expected an object {kernel, grid, block, shared_bytes, args}", w);
	if ((e = kiln_json_only_keys(it, keys, w)) || (e = kiln_json_string(&str, it, "kernel", w)))
		return e;
	bool ok = (isalpha((unsigned char)str[0]) || str[0] == '_') && strlen(str) < KERNEL_NAME_MAX;
	for (const char *c = str; ok && *c; c++)
		ok = isalnum((unsigned char)*c) || *c == '_';
	if (!ok)
		return kiln_error_set(KILN_EINVAL, "%s.kernel: \"%s\" is not a C identifier (an extern \"C\" kernel name)",
				      w, str);
	if (!(l->kernel = kiln_strdup(str)))
		return KILN_ENOMEM;
	if ((e = dims(l->grid, it, "grid", pn, w)) || (e = dims(l->block, it, "block", pn, w)))
		return e;
	const cJSON *sh = cJSON_GetObjectItemCaseSensitive(it, "shared_bytes");
	snprintf(sub, sizeof(sub), "%s.shared_bytes", w);
	if (!sh)
		l->shared_bytes = kiln_strdup("0");
	else if ((e = kiln_json_expr(&l->shared_bytes, sh, sub)))
		return e;
	if (!l->shared_bytes)
		return KILN_ENOMEM;
	if ((e = kiln_expr_check(l->shared_bytes, pn->expr, pn->nexpr, sub)))
		return e;
	const cJSON *args, *a;
	if ((e = kiln_json_array(&args, it, "args", w)))
		return e;
	size_t cnt = (size_t)cJSON_GetArraySize(args);
	if (cnt > MAX_ARGS)
		return kiln_error_set(KILN_EINVAL, "%s.args: at most %d arguments", w, MAX_ARGS);
	if (cnt && !(l->args = kiln_calloc(cnt, sizeof(char *))))
		return KILN_ENOMEM;
	cJSON_ArrayForEach(a, args) {
		snprintf(sub, sizeof(sub), "%s.args[%zu]", w, l->nargs);
		if (!cJSON_IsString(a))
			return kiln_error_set(KILN_EINVAL, "%s: expected a name (string)", sub);
		bool known = false;
		for (size_t i = 0; i < pn->nargs && !known; i++)
			known = strcmp(pn->args[i], a->valuestring) == 0;
		if (!known) {
			kiln_buf b;
			kiln_buf_init(&b, 600);
			for (size_t i = 0; i < pn->nargs; i++)
				kiln_buf_printf(&b, "%s%s", i ? ", " : "", pn->args[i]);
			e = kiln_error_set(KILN_EINVAL, "%s: unknown name \"%s\" (known: %s)", sub, a->valuestring,
					   b.data ? b.data : "");
			kiln_buf_free(&b);
			return e;
		}
		if (!(l->args[l->nargs] = kiln_strdup(a->valuestring)))
			return KILN_ENOMEM;
		l->nargs++;
	}
	return KILN_OK;
}

kiln_err kiln_plan_parse(kiln_plan **out, const char *json, size_t len, const kiln_target *t,
			 const char *where)
{
	static const char *const keys[] = {"launches", "scratch", "nvrtc_flags", "graph", NULL};
	kiln_plan *p = NULL;
	cJSON *root = NULL;
	plan_names pn = {{0}, 0, NULL, 0};
	char w[WHERE_MAX];
	const cJSON *arr, *it;
	kiln_err e = KILN_ENOMEM;
	*out = NULL;
	where = where ? where : "launch plan";
	size_t nargs_max = t->nsymbols + t->nknobs + t->nbuffers + t->nscalars + MAX_SCRATCH + 1;
	if (!(p = kiln_calloc(1, sizeof(*p))) || !(pn.args = kiln_calloc(nargs_max, sizeof(char *))))
		goto done;
	for (size_t i = 0; i < t->nsymbols && pn.nexpr < KILN_ENV_MAX; i++)
		pn.expr[pn.nexpr++] = t->symbols[i].name;
	for (size_t i = 0; i < t->nknobs && pn.nexpr < KILN_ENV_MAX; i++)
		pn.expr[pn.nexpr++] = t->knobs[i].name;
	pn.expr[pn.nexpr++] = "sm_count";
	for (size_t i = 0; i < t->nbuffers; i++)
		pn.args[pn.nargs++] = t->buffers[i].name;
	for (size_t i = 0; i < t->nscalars; i++)
		pn.args[pn.nargs++] = t->scalars[i].name;
	for (size_t i = 0; i < pn.nexpr; i++) /* sm_count too: a long long argument (README) */
		pn.args[pn.nargs++] = pn.expr[i];
	if ((e = kiln_json_parse(&root, json, len, where)))
		goto done;
	if (!cJSON_IsObject(root)) {
		e = kiln_error_set(KILN_EINVAL, "%s: expected a JSON object {\"launches\": [...], ...}", where);
		goto done;
	}
	if ((e = kiln_json_only_keys(root, keys, where)) || (e = kiln_json_opt_bool(&p->graph, root, "graph", where)) ||
	    (e = parse_scratch(p, root, t, &pn, where)))
		goto done;
	if ((e = kiln_json_array(&arr, root, "launches", where)))
		goto done;
	size_t cnt = (size_t)cJSON_GetArraySize(arr);
	if (cnt == 0 || cnt > MAX_LAUNCHES) {
		e = kiln_error_set(KILN_EINVAL, "%s: launches: expected 1 to %d launches, got %zu", where, MAX_LAUNCHES, cnt);
		goto done;
	}
	e = KILN_ENOMEM;
	if (!(p->launches = kiln_calloc(cnt, sizeof(*p->launches))))
		goto done;
	cJSON_ArrayForEach(it, arr) {
		snprintf(w, sizeof(w), "%s: launches[%zu]", where, p->nlaunches);
		kiln_launch *l = &p->launches[p->nlaunches++];
		if ((e = parse_launch(l, it, &pn, w)))
			goto done;
	}
	arr = cJSON_GetObjectItemCaseSensitive(root, "nvrtc_flags");
	if (arr) {
		if (!cJSON_IsArray(arr)) {
			e = kiln_error_set(KILN_EINVAL, "%s: nvrtc_flags: expected an array of strings", where);
			goto done;
		}
		cnt = (size_t)cJSON_GetArraySize(arr);
		if (cnt > MAX_FLAGS) {
			e = kiln_error_set(KILN_EINVAL, "%s: nvrtc_flags: at most %d flags", where, MAX_FLAGS);
			goto done;
		}
		e = KILN_ENOMEM;
		if (cnt && !(p->nvrtc_flags = kiln_calloc(cnt, sizeof(char *))))
			goto done;
		cJSON_ArrayForEach(it, arr) {
			snprintf(w, sizeof(w), "%s: nvrtc_flags[%zu]", where, p->nflags);
			if (!cJSON_IsString(it)) {
				e = kiln_error_set(KILN_EINVAL, "%s: expected a string", w);
				goto done;
			}
			if ((e = check_flag(it->valuestring, t, w)))
				goto done;
			if (!(p->nvrtc_flags[p->nflags] = kiln_strdup(it->valuestring))) {
				e = KILN_ENOMEM;
				goto done;
			}
			p->nflags++;
		}
	}
	*out = p;
	p = NULL;
	e = KILN_OK;
done:
	if (e == KILN_ENOMEM)
		kiln_error_set(KILN_ENOMEM, "%s: out of memory", where);
	free(pn.args);
	cJSON_Delete(root);
	kiln_plan_free(p);
	return e;
}

kiln_err kiln_plan_load(kiln_plan **out, const char *path, const kiln_target *t)
{
	char *text = NULL;
	size_t len = 0;
	*out = NULL;
	kiln_err e = kiln_file_read(&text, &len, path, 1u << 20);
	if (e)
		return e;
	e = kiln_plan_parse(out, text, len, t, path);
	free(text);
	return e;
}

/* grid/block as JSON, trailing "1" dimensions dropped (at least one kept). */
static cJSON *dims_json(char *const d[3])
{
	int n = 3;
	while (n > 1 && strcmp(d[n - 1], "1") == 0)
		n--;
	cJSON *a = cJSON_CreateArray();
	for (int i = 0; a && i < n; i++)
		if (!cJSON_AddItemToArray(a, cJSON_CreateString(d[i]))) {
			cJSON_Delete(a);
			return NULL;
		}
	return a;
}

char *kiln_plan_to_json(const kiln_plan *p)
{
	cJSON *root = cJSON_CreateObject(), *launches = NULL, *scratch = NULL, *flags = NULL;
	char *text = NULL, *copy = NULL;
	bool ok = root && (launches = cJSON_AddArrayToObject(root, "launches"));
	for (size_t i = 0; ok && i < p->nlaunches; i++) {
		const kiln_launch *l = &p->launches[i];
		cJSON *o = cJSON_CreateObject(), *args = NULL;
		ok = o && cJSON_AddItemToArray(launches, o) && cJSON_AddStringToObject(o, "kernel", l->kernel) &&
		     cJSON_AddItemToObject(o, "grid", dims_json(l->grid)) &&
		     cJSON_AddItemToObject(o, "block", dims_json(l->block)) &&
		     cJSON_AddStringToObject(o, "shared_bytes", l->shared_bytes) &&
		     (args = cJSON_AddArrayToObject(o, "args"));
		for (size_t a = 0; ok && a < l->nargs; a++)
			ok = cJSON_AddItemToArray(args, cJSON_CreateString(l->args[a]));
	}
	ok = ok && (scratch = cJSON_AddArrayToObject(root, "scratch"));
	for (size_t i = 0; ok && i < p->nscratch; i++) {
		cJSON *o = cJSON_CreateObject();
		ok = o && cJSON_AddItemToArray(scratch, o) && cJSON_AddStringToObject(o, "name", p->scratch[i].name) &&
		     cJSON_AddStringToObject(o, "dtype", kiln_dtype_name(p->scratch[i].dtype)) &&
		     cJSON_AddStringToObject(o, "count", p->scratch[i].count);
	}
	if (ok && p->graph) /* absent when false: the canonical text of older plans is unchanged */
		ok = cJSON_AddBoolToObject(root, "graph", true) != NULL;
	ok = ok && (flags = cJSON_AddArrayToObject(root, "nvrtc_flags"));
	for (size_t i = 0; ok && i < p->nflags; i++)
		ok = cJSON_AddItemToArray(flags, cJSON_CreateString(p->nvrtc_flags[i]));
	if (ok && (text = cJSON_PrintUnformatted(root)))
		copy = kiln_strdup(text);
	cJSON_free(text);
	cJSON_Delete(root);
	return copy;
}

static kiln_err eval_dim(int64_t *out, const char *expr, const kiln_env *env, const char *what,
			 int64_t lo, int64_t hi, size_t i, const kiln_launch *l)
{
	char where[KERNEL_NAME_MAX + 64];
	snprintf(where, sizeof(where), "launch %zu (%s): %s", i, l->kernel, what);
	kiln_err e = kiln_expr_eval(out, expr, env, where);
	if (e)
		return e;
	if (*out < lo || *out > hi)
		return kiln_error_set(KILN_EINVAL, "%s: \"%s\" = %lld, expected %lld..%lld", where, expr, (long long)*out,
				      (long long)lo, (long long)hi);
	return KILN_OK;
}

kiln_err kiln_plan_dims(kiln_dims *out, const kiln_plan *p, size_t i, const kiln_env *env)
{
	static const char *const gname[3] = {"grid[0]", "grid[1]", "grid[2]"};
	static const char *const bname[3] = {"block[0]", "block[1]", "block[2]"};
	static const int64_t ghi[3] = {INT32_MAX, 65535, 65535}, bhi[3] = {1024, 1024, 64};
	memset(out, 0, sizeof(*out));
	if (i >= p->nlaunches)
		return kiln_error_set(KILN_EINVAL, "launch plan: no launch %zu (it has %zu)", i, p->nlaunches);
	const kiln_launch *l = &p->launches[i];
	int64_t v, threads = 1;
	kiln_err e;
	for (int d = 0; d < 3; d++) {
		if ((e = eval_dim(&v, l->grid[d], env, gname[d], 1, ghi[d], i, l)))
			return e;
		out->grid[d] = (uint32_t)v;
		if ((e = eval_dim(&v, l->block[d], env, bname[d], 1, bhi[d], i, l)))
			return e;
		out->block[d] = (uint32_t)v;
		threads *= v;
	}
	if (threads > 1024)
		return kiln_error_set(KILN_EINVAL, "launch %zu (%s): block %ux%ux%u = %lld threads, at most 1024", i,
				      l->kernel, out->block[0], out->block[1], out->block[2], (long long)threads);
	if ((e = eval_dim(&v, l->shared_bytes, env, "shared_bytes", 0, INT32_MAX, i, l)))
		return e;
	out->shared_bytes = (uint32_t)v;
	return KILN_OK;
}
