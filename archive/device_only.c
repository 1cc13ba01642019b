/* archive: the device-only rule of `kiln promote`. kiln verified the candidate as NVRTC
 * sees it (device code, __CUDACC_RTC__ and __CUDA_ARCH__ defined); a user builds the exported
 * .cu with nvcc, whose host pass sees it without __CUDA_ARCH__ and compiles every host
 * construct. So a promoted source must read the same in every view and hold no host code
 * that can run: an allow-list, checked on tokens (comments, strings and line splices
 * handled), refusing what it cannot prove:
 *  - no conditional compilation except the knob default `#ifndef KNOB / #define KNOB v /
 *    #endif` for the target's own knobs; no configuration macro (__CUDA*, __CUDACC*, __NVCC*)
 *    anywhere; no #define/#undef of a reserved name (__x, _X); macro bodies without ; { } #;
 *    #pragma only unroll, nounroll, once; no _Pragma, digraphs, backslashes outside literals;
 *  - at namespace scope only __global__/__device__ functions and __device__/__constant__/
 *    __managed__ variables (plus typedef, using, static_assert, constexpr, templates and type
 *    definitions without declarators); no asm, __attribute__, __declspec or [[...]] outside
 *    function bodies; no static data member unless constexpr or __device__.
 * Host member functions and __host__ __device__ helpers may remain: with no host variable,
 * initializer, constructor attribute or top-level asm, nothing on the host calls them. */
#include "archive/archive_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 256
#define STMT_MAX 4096 /* tokens remembered per namespace-scope statement */

enum scope { SC_NS, SC_CLASS, SC_FUNC, SC_OTHER };

typedef struct tok {
	const char *p;
	size_t n;
	int line;
} tok;

typedef struct scan {
	const char *s; /* spliced source */
	size_t i, n;
	int line;
	const char *const *knobs;
	size_t nknobs;
	enum scope stack[MAX_DEPTH];
	int depth;
	tok stmt[STMT_MAX]; /* the current statement at namespace or class scope */
	size_t nstmt;
	int class_close;    /* index in stmt after a type definition's closing brace, or -1 */
	int ifndef;         /* knob-default state: 0 none, 1 after #ifndef, 2 after its #define */
	size_t *splices;    /* offsets in s where a backslash-newline was removed (line numbers) */
	size_t nsplices, splices_seen;
	char ifndef_name[64];
} scan;

static kiln_err refuse(const scan *sc, int line, const char *what)
{
	(void)sc;
	return kiln_error_set(KILN_EVERIFY, "line %d: %s (a promoted kernel must read the same to nvcc's host "
			      "and device passes as to NVRTC)", line, what);
}

static bool is(const tok *t, const char *w)
{
	return t->n == strlen(w) && memcmp(t->p, w, t->n) == 0;
}

static bool ident_start(int c)
{
	return isalpha(c) || c == '_' || c >= 0x80;
}

static bool ident_char(int c)
{
	return isalnum(c) || c == '_' || c >= 0x80;
}

static bool config_macro(const tok *t)
{
	static const char *const pre[] = {"__CUDA", "__NVCC", "__NVRTC", "__CUDACC"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(pre); i++)
		if (t->n >= strlen(pre[i]) && memcmp(t->p, pre[i], strlen(pre[i])) == 0)
			return true;
	return false;
}

static bool reserved(const tok *t)
{
	return t->n >= 2 && t->p[0] == '_' && (t->p[1] == '_' || isupper((unsigned char)t->p[1]));
}

/* The next token of line-limited (directive) or free text; false at the end. Comments are
 * skipped; strings and character literals are one token. */
static bool next_tok(scan *sc, tok *t, bool in_directive, kiln_err *e)
{
	const char *s = sc->s;
	for (; sc->splices_seen < sc->nsplices && sc->splices[sc->splices_seen] <= sc->i; sc->splices_seen++)
		sc->line++;
	for (;;) {
		while (sc->i < sc->n && (s[sc->i] == ' ' || s[sc->i] == '\t' || s[sc->i] == '\r' || s[sc->i] == '\f' ||
					 s[sc->i] == '\v' || (!in_directive && s[sc->i] == '\n'))) {
			if (s[sc->i] == '\n')
				sc->line++;
			sc->i++;
		}
		if (sc->i + 1 < sc->n && s[sc->i] == '/' && s[sc->i + 1] == '/') {
			while (sc->i < sc->n && s[sc->i] != '\n')
				sc->i++;
			continue;
		}
		if (sc->i + 1 < sc->n && s[sc->i] == '/' && s[sc->i + 1] == '*') {
			const char *end = strstr(s + sc->i + 2, "*/");
			size_t stop = end ? (size_t)(end - s) + 2 : sc->n;
			for (size_t k = sc->i; k < stop; k++)
				sc->line += s[k] == '\n';
			sc->i = stop;
			continue;
		}
		break;
	}
	if (sc->i >= sc->n || (in_directive && s[sc->i] == '\n'))
		return false;
	size_t b = sc->i;
	int c = (unsigned char)s[b];
	t->p = s + b;
	t->line = sc->line;
	if (ident_start(c)) {
		while (sc->i < sc->n && ident_char((unsigned char)s[sc->i]))
			sc->i++;
		/* an encoding prefix glued to a literal (u8"", L'x'); raw strings are refused */
		if (sc->i < sc->n && (s[sc->i] == '"' || s[sc->i] == '\'')) {
			if (s[sc->i - 1] == 'R') {
				*e = refuse(sc, sc->line, "a raw string literal");
				return false;
			}
			c = (unsigned char)s[sc->i];
		} else {
			t->n = sc->i - b;
			return true;
		}
	}
	if (c == '"' || c == '\'') {
		size_t k = s[sc->i] == c ? sc->i + 1 : b + 1;
		while (k < sc->n && s[k] != c && s[k] != '\n')
			k += s[k] == '\\' && k + 1 < sc->n ? 2 : 1;
		if (k >= sc->n || s[k] != c) {
			*e = refuse(sc, sc->line, "an unterminated literal");
			return false;
		}
		sc->i = k + 1;
		t->n = sc->i - b;
		return true;
	}
	if (isdigit(c) || (c == '.' && sc->i + 1 < sc->n && isdigit((unsigned char)s[sc->i + 1]))) {
		while (sc->i < sc->n && (isalnum((unsigned char)s[sc->i]) || s[sc->i] == '.' || s[sc->i] == '\'' ||
					 ((s[sc->i] == '+' || s[sc->i] == '-') && strchr("eEpP", s[sc->i - 1]))))
			sc->i++;
		t->n = sc->i - b;
		return true;
	}
	static const char *const two[] = {"##", "[[", "<%", "%>", "%:", "<:", ":>", "::", "->", "??"};
	for (size_t k = 0; k < KILN_ARRAY_LEN(two); k++)
		if (sc->i + 1 < sc->n && s[sc->i] == two[k][0] && s[sc->i + 1] == two[k][1]) {
			sc->i += 2;
			t->n = 2;
			return true;
		}
	sc->i++;
	t->n = 1;
	return true;
}

/* Tokens no view may contain, wherever they are. */
static kiln_err check_token(scan *sc, const tok *t)
{
	char what[96];
	if (config_macro(t)) {
		snprintf(what, sizeof(what), "the configuration macro %.*s", (int)(t->n > 40 ? 40 : t->n), t->p);
		return refuse(sc, t->line, what);
	}
	static const char *const banned[] = {"_Pragma", "__attribute__", "__attribute", "__declspec", "[[", "<%", "%>",
					     "%:", "<:", ":>", "??", "\\", "__has_include", "__has_include_next"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(banned); i++)
		if (is(t, banned[i])) {
			snprintf(what, sizeof(what), "'%s'", banned[i]);
			return refuse(sc, t->line, what);
		}
	return KILN_OK;
}

static bool is_knob(const scan *sc, const tok *t)
{
	for (size_t i = 0; i < sc->nknobs; i++)
		if (is(t, sc->knobs[i]))
			return true;
	return false;
}

/* One preprocessor line (sc->i just past the '#'). */
static kiln_err directive(scan *sc)
{
	tok name, a, t;
	kiln_err e = KILN_OK;
	int line = sc->line;
	if (!next_tok(sc, &name, true, &e))
		return e; /* the null directive */
	bool has_a = next_tok(sc, &a, true, &e);
	if (e)
		return e;
	if (sc->ifndef == 1 && !(is(&name, "define") && has_a && a.n < sizeof(sc->ifndef_name) &&
				 strlen(sc->ifndef_name) == a.n && memcmp(a.p, sc->ifndef_name, a.n) == 0))
		return refuse(sc, line, "#ifndef KNOB must be followed by #define KNOB");
	if (sc->ifndef == 2 && !is(&name, "endif"))
		return refuse(sc, line, "#ifndef KNOB / #define KNOB must end with #endif");
	if (is(&name, "ifndef")) {
		if (!has_a || !is_knob(sc, &a) || sc->ifndef)
			return refuse(sc, line, "a preprocessor conditional other than a knob default "
						"(#ifndef KNOB / #define KNOB value / #endif)");
		snprintf(sc->ifndef_name, sizeof(sc->ifndef_name), "%.*s", (int)a.n, a.p);
		sc->ifndef = 1;
	} else if (is(&name, "endif")) {
		if (sc->ifndef != 2)
			return refuse(sc, line, "#endif without a knob default");
		sc->ifndef = 0;
	} else if (is(&name, "define") || is(&name, "undef")) {
		if (!has_a || reserved(&a))
			return refuse(sc, line, "#define or #undef of a reserved name");
		if (sc->ifndef == 1)
			sc->ifndef = 2;
		if ((e = check_token(sc, &a)))
			return e;
		while (!e && next_tok(sc, &t, true, &e)) {
			if (t.n == 1 && strchr(";{}#", t.p[0]))
				return refuse(sc, line, "a macro whose body holds ; { } or #");
			if (is(&t, "##") || is(&t, "asm") || is(&t, "__asm__") || is(&t, "__asm"))
				return refuse(sc, line, "a macro that pastes tokens or holds asm");
			e = check_token(sc, &t);
		}
	} else if (is(&name, "pragma")) {
		if (!has_a || !(is(&a, "unroll") || is(&a, "nounroll") || is(&a, "once")))
			return refuse(sc, line, "a #pragma other than unroll, nounroll or once");
	} else if (is(&name, "if") || is(&name, "ifdef") || is(&name, "elif") || is(&name, "else") ||
		   is(&name, "elifdef") || is(&name, "elifndef")) {
		return refuse(sc, line, "a preprocessor conditional other than a knob default "
					"(#ifndef KNOB / #define KNOB value / #endif)");
	} else if (!is(&name, "include") && !is(&name, "error") && !is(&name, "warning") && !is(&name, "line")) {
		return refuse(sc, line, "an unknown preprocessor directive");
	}
	while (!e && next_tok(sc, &t, true, &e))
		e = check_token(sc, &t);
	return e;
}

static bool stmt_has(const scan *sc, const char *w, size_t from)
{
	for (size_t i = from; i < sc->nstmt; i++)
		if (is(&sc->stmt[i], w))
			return true;
	return false;
}

static bool device_decl(const scan *sc)
{
	return stmt_has(sc, "__global__", 0) || stmt_has(sc, "__device__", 0) || stmt_has(sc, "__constant__", 0) ||
	       stmt_has(sc, "__managed__", 0);
}

/* A namespace-scope or class-scope statement ended with ';'. */
static kiln_err end_statement(scan *sc, int line)
{
	enum scope s = sc->stack[sc->depth];
	const tok *first = sc->nstmt ? &sc->stmt[0] : NULL;
	kiln_err e = KILN_OK;
	if (!first) {
		/* an empty statement */
	} else if (sc->class_close >= 0) {
		if ((size_t)sc->class_close != sc->nstmt)
			e = refuse(sc, line, "a variable declared with a type definition");
	} else if (s == SC_CLASS) {
		if (stmt_has(sc, "static", 0) && !stmt_has(sc, "constexpr", 0) && !stmt_has(sc, "__device__", 0))
			e = refuse(sc, line, "a static data member that is not constexpr");
	} else if (!(device_decl(sc) || is(first, "typedef") || is(first, "using") || is(first, "static_assert") ||
		     stmt_has(sc, "constexpr", 0) ||
		     ((is(first, "struct") || is(first, "class") || is(first, "union") || is(first, "enum")) && sc->nstmt <= 3))) {
		e = refuse(sc, line, "a host declaration at namespace scope (only __global__/__device__ functions and "
				     "__device__/__constant__ variables)");
	}
	sc->nstmt = 0;
	sc->class_close = -1;
	return e;
}

static kiln_err open_brace(scan *sc, int line)
{
	enum scope s = sc->stack[sc->depth], push = SC_OTHER;
	if (sc->depth + 1 >= MAX_DEPTH)
		return refuse(sc, line, "braces nested too deep");
	if (s == SC_NS || s == SC_CLASS) {
		bool type = stmt_has(sc, "struct", 0) || stmt_has(sc, "class", 0) || stmt_has(sc, "union", 0) ||
			    stmt_has(sc, "enum", 0);
		size_t first_paren = sc->nstmt, first_eq = sc->nstmt;
		for (size_t i = sc->nstmt; i-- > 0;) {
			first_paren = is(&sc->stmt[i], "(") ? i : first_paren;
			first_eq = is(&sc->stmt[i], "=") ? i : first_eq;
		}
		/* f(int a = 1) { is a function; T x = f(1) { ... is not */
		bool paren = first_paren < sc->nstmt, eq = first_eq < first_paren;
		if (s == SC_NS && sc->nstmt > 0 && is(&sc->stmt[0], "namespace")) {
			push = SC_NS;
		} else if (s == SC_NS && sc->nstmt == 2 && is(&sc->stmt[0], "extern") && sc->stmt[1].p[0] == '"') {
			push = SC_NS;
		} else if (type && !paren && !eq) {
			push = stmt_has(sc, "enum", 0) ? SC_OTHER : SC_CLASS;
		} else if (paren && !eq) { /* a function body */
			if (s == SC_NS && !device_decl(sc))
				return refuse(sc, line, "a host function definition (only __global__ and __device__ "
							"functions)");
			push = SC_FUNC;
		} else if (s == SC_NS && !device_decl(sc) && !stmt_has(sc, "constexpr", 0)) {
			return refuse(sc, line, "a host variable with an initializer");
		}
	}
	sc->stack[++sc->depth] = push;
	if (push != SC_OTHER) /* members and bodies are statements of their own */
		sc->nstmt = 0;
	sc->class_close = -1;
	return KILN_OK;
}

kiln_err kiln_promote_check_device_only(const char *source, const char *const *knobs, size_t nknobs)
{
	kiln_err e = KILN_OK;
	scan *sc = kiln_calloc(1, sizeof(*sc));
	kiln_buf b = KILN_BUF_INIT;
	if (!sc)
		return KILN_ENOMEM;
	/* line splices first (as translation phase 2), keeping the line count */
	size_t cap = 0;
	for (const char *p = source ? source : ""; *p && !e; p++) {
		if (p[0] == '\\' && p[1] == '\n') {
			p++;
			if (sc->nsplices == cap) {
				size_t *g = kiln_realloc(sc->splices, (cap = cap ? 2 * cap : 16) * sizeof(*g));
				if (!g) {
					e = KILN_ENOMEM;
					break;
				}
				sc->splices = g;
			}
			sc->splices[sc->nsplices++] = b.len;
			continue;
		}
		e = kiln_buf_append(&b, p, 1);
	}
	sc->s = b.data ? b.data : "";
	sc->n = b.len;
	sc->line = 1;
	sc->knobs = knobs;
	sc->nknobs = nknobs;
	sc->class_close = -1;
	while (!e) {
		tok t;
		if (!next_tok(sc, &t, false, &e))
			break;
		/* '#' is only valid C++ as a directive's first token (inside macro bodies the
		 * directive reader sees it): every '#' starts a directive */
		if (is(&t, "#")) {
			e = directive(sc);
			continue;
		}
		if ((e = check_token(sc, &t)))
			break;
		enum scope s = sc->stack[sc->depth];
		if ((is(&t, "asm") || is(&t, "__asm__") || is(&t, "__asm")) && s != SC_FUNC && s != SC_OTHER) {
			e = refuse(sc, t.line, "asm outside a function body");
			break;
		}
		if (is(&t, "{")) {
			e = open_brace(sc, t.line);
		} else if (is(&t, "}")) {
			if (sc->depth == 0) {
				e = refuse(sc, t.line, "an unbalanced '}'");
				break;
			}
			enum scope closing = sc->stack[sc->depth--];
			enum scope now = sc->stack[sc->depth];
			if (closing == SC_CLASS || (closing == SC_OTHER && (now == SC_NS || now == SC_CLASS) &&
						    stmt_has(sc, "enum", 0))) {
				sc->class_close = (int)sc->nstmt; /* declarators may follow until ';' */
			} else if ((now == SC_NS || now == SC_CLASS) && closing != SC_OTHER) {
				sc->nstmt = 0; /* a function or namespace ended */
				sc->class_close = -1;
			}
		} else if (is(&t, ";") && (s == SC_NS || s == SC_CLASS)) {
			e = end_statement(sc, t.line);
		} else if (s == SC_NS || s == SC_CLASS) {
			if (sc->nstmt < STMT_MAX)
				sc->stmt[sc->nstmt++] = t;
			else
				e = refuse(sc, t.line, "a declaration too long to check");
		}
	}
	if (!e && sc->ifndef)
		e = refuse(sc, sc->line, "an unterminated knob default");
	if (!e && (sc->depth != 0 || sc->nstmt != 0))
		e = refuse(sc, sc->line, "the source ends inside a declaration or a block");
	kiln_buf_free(&b);
	free(sc->splices);
	free(sc);
	return e;
}
