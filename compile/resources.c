/* compile: the parsers. Kernel names come from the PTX `.entry` directives; resources
 * from nvJitLink's verbose info log: ptxas's per-function report ("Function properties
 * for k", "N bytes stack frame, N bytes spill stores, ...", "Used N registers, ... N
 * bytes smem") then the linker's summary ("used N registers, ..., N bytes cmem[0]").
 * ptxas's numbers win; the linker's fill the gaps (its smem includes the system reserve,
 * so it never sets shared_bytes). */
#include "compile/compile_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

static bool is_ident(char ch)
{
	return isalnum((unsigned char)ch) || ch == '_' || ch == '$' || ch == '.';
}

kiln_err kiln_compile_parse_entries(kiln_compiled *c)
{
	size_t cap = 0;
	for (const char *p = c->ptx; (p = strstr(p, ".entry")) != NULL; p += 6) {
		if (p > c->ptx && is_ident(p[-1]))
			continue;
		const char *s = p + 6;
		if (!isspace((unsigned char)*s))
			continue;
		while (isspace((unsigned char)*s))
			s++;
		size_t n = 0;
		while (is_ident(s[n]))
			n++;
		if (n == 0)
			continue;
		if (c->nkernels == cap) {
			cap = cap ? 2 * cap : 4;
			kiln_kernel_resources *k = kiln_realloc(c->kernels, cap * sizeof(*k));
			if (!k)
				return KILN_ENOMEM;
			c->kernels = k;
		}
		kiln_kernel_resources *k = &c->kernels[c->nkernels];
		*k = (kiln_kernel_resources){NULL, -1, -1, -1, -1, -1, -1, -1};
		if (!(k->name = kiln_strndup(s, n)))
			return KILN_ENOMEM;
		c->nkernels++;
	}
	return KILN_OK;
}

/* The integer that ends (spaces allowed) right before position j of line; -1 if none. */
static int64_t digits_before(const char *line, size_t j)
{
	while (j > 0 && line[j - 1] == ' ')
		j--;
	size_t end = j;
	while (j > 0 && isdigit((unsigned char)line[j - 1]))
		j--;
	if (j == end)
		return -1;
	int64_t v = 0;
	for (size_t k = j; k < end && v < INT64_MAX / 10 - 10; k++)
		v = v * 10 + (line[k] - '0');
	return v;
}

/* The integer right before `what` in line (e.g. "1024" in "1024 bytes stack frame"),
 * or -1 when `what` is absent or not preceded by a number. */
static int64_t number_before(const char *line, size_t len, const char *what)
{
	size_t wl = strlen(what);
	for (size_t i = 0; i + wl <= len; i++) {
		if (strncmp(line + i, what, wl) != 0)
			continue;
		int64_t v = digits_before(line, i);
		if (v >= 0)
			return v;
	}
	return -1;
}

/* Sum of every "N bytes cmem[K]" on the line; -1 when there is none. */
static int64_t cmem_total(const char *line, size_t len)
{
	int64_t total = -1;
	for (size_t i = 0; i + 6 <= len; i++) {
		if (strncmp(line + i, " cmem[", 6) != 0 || i < 5 ||
		    strncmp(line + i - 5, "bytes", 5) != 0)
			continue;
		int64_t v = digits_before(line, i - 5);
		if (v >= 0)
			total = (total < 0 ? 0 : total) + v;
	}
	return total;
}

static kiln_kernel_resources *find_kernel(kiln_compiled *c, const char *name, size_t n)
{
	for (size_t i = 0; i < c->nkernels; i++)
		if (strlen(c->kernels[i].name) == n && strncmp(c->kernels[i].name, name, n) == 0)
			return &c->kernels[i];
	return NULL;
}

static bool contains(const char *line, size_t len, const char *what)
{
	size_t wl = strlen(what);
	for (size_t i = 0; i + wl <= len; i++)
		if (strncmp(line + i, what, wl) == 0)
			return true;
	return false;
}

void kiln_compile_parse_info_log(kiln_compiled *c, const char *log)
{
	kiln_kernel_resources *cur = NULL;
	bool linker = false; /* inside the linker's summary ("info    :" lines) */
	for (const char *line = log; line && *line;) {
		const char *nl = strchr(line, '\n');
		size_t len = nl ? (size_t)(nl - line) : strlen(line);
		const char *fp = NULL;
		for (size_t i = 0; i + 24 <= len; i++)
			if (strncmp(line + i, "Function properties for ", 24) == 0) {
				fp = line + i + 24;
				break;
			}
		if (fp) {
			linker = strncmp(line, "ptxas", 5) != 0;
			const char *s = fp, *end = line + len;
			if (*s == '\'')
				s++;
			size_t n = 0;
			while (s + n < end && s[n] != '\'' && s[n] != ':' && !isspace((unsigned char)s[n]))
				n++;
			cur = find_kernel(c, s, n);
		} else if (contains(line, len, "bytes gmem")) {
			int64_t v = cmem_total(line, len);
			if (v > c->global_const_bytes)
				c->global_const_bytes = v;
			if (c->global_const_bytes < 0)
				c->global_const_bytes = 0;
			cur = NULL;
		} else if (cur) {
			int64_t v;
			if (!linker) {
				if ((v = number_before(line, len, "bytes stack frame")) >= 0)
					cur->stack_bytes = v;
				if ((v = number_before(line, len, "bytes spill stores")) >= 0)
					cur->spill_store_bytes = v;
				if ((v = number_before(line, len, "bytes spill loads")) >= 0)
					cur->spill_load_bytes = v;
			}
			if ((v = number_before(line, len, "registers")) >= 0 && (linker ? cur->registers < 0 : true))
				cur->registers = (int)v;
			if ((v = number_before(line, len, "barriers")) >= 0 && (linker ? cur->barriers < 0 : true))
				cur->barriers = (int)v;
			if (!linker && (v = number_before(line, len, "bytes smem")) >= 0)
				cur->shared_bytes = v;
			if ((v = cmem_total(line, len)) >= 0 && (linker || cur->const_bytes < 0))
				cur->const_bytes = v;
			if (linker && cur->stack_bytes < 0 && (v = number_before(line, len, "stack,")) >= 0)
				cur->stack_bytes = v;
		}
		line = nl ? nl + 1 : NULL;
	}
	/* ptxas omits "N bytes smem" when it is zero */
	for (size_t i = 0; i < c->nkernels; i++) {
		kiln_kernel_resources *k = &c->kernels[i];
		if (k->registers >= 0 && k->shared_bytes < 0)
			k->shared_bytes = 0;
		if (k->registers >= 0 && k->spill_store_bytes < 0)
			k->spill_store_bytes = 0;
		if (k->registers >= 0 && k->spill_load_bytes < 0)
			k->spill_load_bytes = 0;
		if (k->registers >= 0 && k->const_bytes < 0)
			k->const_bytes = 0;
	}
	if (c->global_const_bytes < 0 && c->nkernels && c->kernels[0].registers >= 0)
		c->global_const_bytes = 0;
}

cJSON *kiln_compile_resources_to_cjson(const kiln_compiled *c)
{
	cJSON *j = cJSON_CreateObject(), *ks = NULL;
	if (!j)
		return NULL;
	if (!cJSON_AddStringToObject(j, "arch", c->arch ? c->arch : "") ||
	    !cJSON_AddStringToObject(j, "toolkit", c->toolkit ? c->toolkit : "") ||
	    !cJSON_AddNumberToObject(j, "global_const_bytes", (double)c->global_const_bytes) ||
	    !(ks = cJSON_AddArrayToObject(j, "kernels")))
		goto fail;
	for (size_t i = 0; i < c->nkernels; i++) {
		const kiln_kernel_resources *k = &c->kernels[i];
		cJSON *o = cJSON_CreateObject();
		if (!o || !cJSON_AddItemToArray(ks, o))
			goto fail_item;
		if (!cJSON_AddStringToObject(o, "name", k->name) ||
		    !cJSON_AddNumberToObject(o, "registers", k->registers) ||
		    !cJSON_AddNumberToObject(o, "barriers", k->barriers) ||
		    !cJSON_AddNumberToObject(o, "stack_bytes", (double)k->stack_bytes) ||
		    !cJSON_AddNumberToObject(o, "spill_store_bytes", (double)k->spill_store_bytes) ||
		    !cJSON_AddNumberToObject(o, "spill_load_bytes", (double)k->spill_load_bytes) ||
		    !cJSON_AddNumberToObject(o, "shared_bytes", (double)k->shared_bytes) ||
		    !cJSON_AddNumberToObject(o, "const_bytes", (double)k->const_bytes))
			goto fail;
		continue;
	fail_item:
		cJSON_Delete(o);
		goto fail;
	}
	return j;
fail:
	cJSON_Delete(j);
	return NULL;
}

kiln_err kiln_compile_resources_from_cjson(kiln_compiled *c, const cJSON *obj, const char *where)
{
	const cJSON *ks = NULL, *it;
	const char *arch = NULL, *tk = NULL;
	int64_t gc = -1;
	kiln_err e;
	if ((e = kiln_json_string(&arch, obj, "arch", where)) ||
	    (e = kiln_json_string(&tk, obj, "toolkit", where)) ||
	    (e = kiln_json_int(&gc, obj, "global_const_bytes", where)) ||
	    (e = kiln_json_array(&ks, obj, "kernels", where)))
		return e;
	if (!(c->arch = kiln_strdup(arch)) || !(c->toolkit = kiln_strdup(tk)))
		return KILN_ENOMEM;
	c->global_const_bytes = gc;
	size_t n = (size_t)cJSON_GetArraySize(ks);
	if (n && !(c->kernels = kiln_calloc(n, sizeof(*c->kernels))))
		return KILN_ENOMEM;
	cJSON_ArrayForEach(it, ks) {
		kiln_kernel_resources *k = &c->kernels[c->nkernels];
		const char *name = NULL;
		int64_t v[7];
		static const char *const keys[7] = {"registers", "barriers", "stack_bytes",
			"spill_store_bytes", "spill_load_bytes", "shared_bytes", "const_bytes"};
		if ((e = kiln_json_string(&name, it, "name", where)))
			return e;
		for (int i = 0; i < 7; i++)
			if ((e = kiln_json_int(&v[i], it, keys[i], where)))
				return e;
		if (!(k->name = kiln_strdup(name)))
			return KILN_ENOMEM;
		c->nkernels++;
		k->registers = (int)v[0];
		k->barriers = (int)v[1];
		k->stack_bytes = v[2];
		k->spill_store_bytes = v[3];
		k->spill_load_bytes = v[4];
		k->shared_bytes = v[5];
		k->const_bytes = v[6];
	}
	return KILN_OK;
}

/* Bytes of one PTX type token (".b8", ".f32", ".u64", ".f16x2"...); 0 when not a type. */
static int64_t ptx_type_bytes(const char *t, size_t n)
{
	if (n < 3 || t[0] != '.' || !strchr("bsuf", t[1]) || !isdigit((unsigned char)t[2]))
		return 0;
	int64_t bits = strtoll(t + 2, NULL, 10), lanes = 1;
	if (n > 4 && memchr(t, 'x', n)) /* .f16x2, .bf16x2 */
		lanes = strtoll((const char *)memchr(t, 'x', n) + 1, NULL, 10);
	if (bits < 8 || bits > 512 || lanes < 1 || lanes > 64)
		return 0;
	return bits * lanes / 8;
}

int64_t kiln_compile_ptx_global_bytes(const char *ptx)
{
	const int64_t cap = INT64_MAX / 4;
	int64_t total = 0;
	int depth = 0;
	for (const char *line = ptx; line && *line;) {
		const char *eol = strchr(line, '\n');
		size_t len = eol ? (size_t)(eol - line) : strlen(line);
		if (depth == 0) {
			/* module scope: [.visible|.weak|.common] .global [.align N] [.vN] .type name[d]... */
			const char *p = line, *end = line + len;
			bool global = false, ext = false;
			int64_t elem = 0, vec = 1, count = 1;
			while (p < end) {
				while (p < end && isspace((unsigned char)*p))
					p++;
				const char *w = p;
				while (p < end && !isspace((unsigned char)*p) && *p != '[' && *p != ';' && *p != '=')
					p++;
				size_t wn = (size_t)(p - w);
				if (wn == 7 && strncmp(w, ".global", 7) == 0)
					global = true;
				else if (wn == 7 && strncmp(w, ".extern", 7) == 0)
					ext = true;
				else if (wn == 3 && w[0] == '.' && w[1] == 'v' && isdigit((unsigned char)w[2]))
					vec = w[2] - '0';
				else if (!elem && ptx_type_bytes(w, wn))
					elem = ptx_type_bytes(w, wn);
				while (p < end && *p == '[') { /* dimensions; [] (unsized) counts as 1 */
					int64_t d = strtoll(p + 1, NULL, 10);
					count = d > 0 && count < cap / d ? count * d : d > 0 ? cap : count;
					const char *close = memchr(p, ']', (size_t)(end - p));
					p = close ? close + 1 : end;
				}
				if (p < end && (*p == ';' || *p == '='))
					break;
				if (wn == 0 && p < end)
					p++;
			}
			if (global && !ext && elem) {
				int64_t b = elem * vec;
				b = count < cap / b ? count * b : cap;
				total = total < cap - b ? total + b : cap;
			}
		}
		for (size_t i = 0; i < len; i++)
			depth += line[i] == '{' ? 1 : line[i] == '}' ? -1 : 0;
		if (depth < 0)
			depth = 0;
		line = eol ? eol + 1 : NULL;
	}
	return total;
}
