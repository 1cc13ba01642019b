/* kiln's own one-line "what changed" for a candidate whose reply had no CHANGED line: the
 * line counts of a unified diff against the kernel it started from, the functions the
 * changed lines fall in, #define values that moved ("ITEMS 4->8") or, for a change of one
 * or two lines, the lines themselves, and whether the launch plan changed. Capped at KILN_CHANGED_MAX bytes, cut after a word. */
#include "agent/agent.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "archive/archive.h"

#define MAX_NAMES 4   /* functions named; more are "..." */
#define MAX_DEFINES 3 /* #define values named */

/* The function a line of src (1-based) falls in: the nearest __global__/__device__ line at
 * or above it, then the first identifier before a '(' that is not an attribute
 * (__launch_bounds__(...) and the like), within a few lines; "" when none. */
static void function_at(char *out, size_t size, const char *src, size_t line)
{
	static const char *const attrs[] = {"__launch_bounds__", "__align__", "__attribute__", "__declspec",
					    "__maxnreg__", "__cluster_dims__", NULL};
	const char *p = src, *hit = NULL;
	out[0] = '\0';
	for (size_t k = 1; p && *p && k <= line; k++) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (memmem(p, n, "__global__", 10) || memmem(p, n, "__device__", 10))
			hit = p;
		p = nl ? nl + 1 : NULL;
	}
	for (const char *q = hit; q && *q && q - hit < 400 && *q != '{' && *q != ';'; q++) {
		if (*q != '(')
			continue;
		const char *e = q;
		while (e > hit && isspace((unsigned char)e[-1]))
			e--;
		const char *b = e;
		while (b > hit && (isalnum((unsigned char)b[-1]) || b[-1] == '_'))
			b--;
		bool attr = false;
		for (const char *const *a = attrs; *a; a++)
			attr = attr || ((size_t)(e - b) == strlen(*a) && !strncmp(b, *a, (size_t)(e - b)));
		if (attr) { /* skip its parenthesised arguments */
			int depth = 0;
			for (; *q && q - hit < 400; q++)
				if ((depth += (*q == '(') - (*q == ')')) == 0)
					break;
			if (!*q)
				break;
			continue;
		}
		if (e > b)
			snprintf(out, size, "%.*s", (int)(e - b), b);
		return;
	}
}

/* "#define NAME VALUE" -> name and value (pointers into l, lengths); false otherwise. */
static bool define_of(const char *l, size_t n, const char **name, size_t *nl, const char **val, size_t *vl)
{
	size_t k = 0;
	while (k < n && (l[k] == ' ' || l[k] == '\t'))
		k++;
	if (n - k < 8 || strncmp(l + k, "#define", 7) || !isspace((unsigned char)l[k + 7]))
		return false;
	k += 7;
	while (k < n && isspace((unsigned char)l[k]))
		k++;
	*name = l + k;
	while (k < n && (isalnum((unsigned char)l[k]) || l[k] == '_'))
		k++;
	*nl = (size_t)(l + k - *name);
	while (k < n && isspace((unsigned char)l[k]))
		k++;
	*val = l + k;
	*vl = n - k;
	while (*vl > 0 && isspace((unsigned char)(*val)[*vl - 1]))
		(*vl)--;
	return *nl > 0 && *vl > 0 && *vl < 24;
}

typedef struct tally {
	size_t plus, minus;
	char names[MAX_NAMES][64];
	size_t nnames;
	bool more_names;
	const char *removed[64]; /* "-#define" lines, to pair with "+#define" ones */
	size_t nremoved;
	kiln_buf defines;
	size_t ndefines;
	kiln_buf lines;          /* the changed lines themselves, trimmed: quoted when few */
} tally;

static void note_function(tally *t, const char *name)
{
	if (!*name)
		return;
	for (size_t i = 0; i < t->nnames; i++)
		if (!strcmp(t->names[i], name))
			return;
	if (t->nnames == MAX_NAMES) {
		t->more_names = true;
		return;
	}
	snprintf(t->names[t->nnames++], sizeof t->names[0], "%s", name);
}

/* A "+#define N V2" line whose "-#define N V1" was seen: "N V1->V2". */
static void note_define(tally *t, const char *l, size_t n)
{
	const char *an, *av;
	size_t anl, avl;
	if (t->ndefines >= MAX_DEFINES || !define_of(l, n, &an, &anl, &av, &avl))
		return;
	for (size_t i = 0; i < t->nremoved; i++) {
		const char *r = t->removed[i], *bn, *bv;
		const char *nl = strchr(r, '\n');
		size_t bnl, bvl;
		if (define_of(r, nl ? (size_t)(nl - r) : strlen(r), &bn, &bnl, &bv, &bvl) && bnl == anl &&
		    !memcmp(an, bn, anl)) {
			kiln_buf_printf(&t->defines, "; %.*s %.*s->%.*s", (int)anl, an, (int)bvl, bv, (int)avl, av);
			t->ndefines++;
			return;
		}
	}
}

static void count(tally *t, const char *diff, const char *after)
{
	size_t newline = 0;
	bool fn_noted = false;
	for (const char *p = diff; p && *p;) {
		const char *nl = strchr(p, '\n');
		size_t n = nl ? (size_t)(nl - p) : strlen(p);
		if (n >= 4 && !strncmp(p, "@@ -", 4)) {
			const char *plus = memchr(p, '+', n);
			newline = plus ? strtoul(plus + 1, NULL, 10) : 0;
			fn_noted = false;
		} else if (n >= 3 && (!strncmp(p, "+++", 3) || !strncmp(p, "---", 3)) && newline == 0) {
			/* file headers */
		} else if (*p == '+' || *p == '-') {
			if (!fn_noted) {
				char name[64];
				function_at(name, sizeof name, after, newline ? newline : 1);
				note_function(t, name);
				fn_noted = true;
			}
			if (t->plus + t->minus < 2) {
				size_t k = 1;
				while (k < n && (p[k] == ' ' || p[k] == '\t'))
					k++;
				kiln_buf_printf(&t->lines, "%s%c%.*s", t->lines.len ? " / " : "", *p, (int)(n - k), p + k);
			}
			if (*p == '+') {
				t->plus++;
				note_define(t, p + 1, n - 1);
				newline++;
			} else {
				t->minus++;
				if (t->nremoved < KILN_ARRAY_LEN(t->removed))
					t->removed[t->nremoved++] = p + 1;
			}
		} else if (*p == ' ') {
			newline++;
		}
		p = nl ? nl + 1 : NULL;
	}
}

char *kiln_changed_summary(const char *before, const char *after, const char *launch_before,
			   const char *launch_after)
{
	char *diff = NULL;
	tally t;
	memset(&t, 0, sizeof t);
	kiln_buf_init(&t.defines, 1024);
	kiln_buf_init(&t.lines, 1024);
	if (kiln_diff_text(&diff, before ? before : "", "a", after ? after : "", "b")) {
		kiln_buf_free(&t.defines);
		kiln_buf_free(&t.lines);
		return kiln_strdup("(no diff: the diff failed)");
	}
	count(&t, diff, after ? after : "");
	kiln_buf b;
	kiln_buf_init(&b, 4096);
	if (t.plus || t.minus) {
		kiln_buf_printf(&b, "+%zu -%zu lines", t.plus, t.minus);
		for (size_t i = 0; i < t.nnames; i++)
			kiln_buf_printf(&b, "%s%s", i ? ", " : " in ", t.names[i]);
		if (t.more_names)
			kiln_buf_puts(&b, ", ...");
		if (t.defines.len)
			kiln_buf_puts(&b, t.defines.data);
		else if (t.plus + t.minus <= 2 && t.lines.len) /* a small change says itself */
			kiln_buf_printf(&b, ": %s", t.lines.data);
	} else {
		kiln_buf_puts(&b, "kernel unchanged");
	}
	bool plan = launch_before && launch_after && strcmp(launch_before, launch_after) != 0;
	if (plan)
		kiln_buf_puts(&b, "; launch plan changed");
	free(diff);
	kiln_buf_free(&t.defines);
	kiln_buf_free(&t.lines);
	char *raw = kiln_buf_detach(&b), *out = raw ? kiln_text_escape(raw, KILN_TEXT_LINE) : NULL;
	free(raw);
	if (out)
		out[kiln_text_word_cut(out, KILN_CHANGED_MAX)] = '\0';
	return out;
}
