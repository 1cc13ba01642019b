/* compile: the gate a candidate's source passes before NVRTC sees it. The model writes the
 * source, and NVRTC quotes whatever it includes in its log (which goes to history.db, the
 * terminal and the next prompt), so only the toolkit's own headers may be read. A small
 * preprocessing tokenizer (splices, comments, literals, digraphs) finds every directive,
 * _Pragma and __has_include; anything it cannot read unambiguously is refused. */
#include "compile/compile_int.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- whole-text checks and line splicing ---- */

typedef struct src {
	char *t;        /* spliced text: backslash-newlines removed, CRLF -> LF, NUL-terminated */
	uint32_t *line; /* original line of each byte of t */
	size_t n;
	const char *name;
} src;

static kiln_err refuse(const src *s, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static kiln_err refuse(const src *s, size_t at, const char *fmt, ...)
{
	char msg[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return kiln_error_set(KILN_EINVAL, "%s:%u: refused: %s", s->name,
			      s->line && at < s->n ? s->line[at] : (unsigned)(at + 1), msg);
}

static kiln_err raw_checks(const char *text, size_t len, const char *name)
{
	size_t line = 1;
	if (len > KILN_COMPILE_MAX_SOURCE)
		return kiln_error_set(KILN_EINVAL, "%s: refused: the source is %zu bytes; at most %u (1 MiB)", name,
				      len, KILN_COMPILE_MAX_SOURCE);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)text[i];
		const char *why = NULL;
		if (c == '\n')
			line++;
		else if (c == '\0')
			why = "a NUL byte";
		else if (c >= 0x80) {
			size_t k = kiln_utf8_seq_len((const unsigned char *)text + i, len - i);
			if (!k)
				why = "invalid UTF-8";
			else
				i += k - 1;
		} else if (c == '\r' && (i + 1 >= len || text[i + 1] != '\n'))
			why = "a carriage return that does not end a line";
		else if (c == '?' && i + 2 < len && text[i + 1] == '?' && strchr("=/'()!<>-", text[i + 2]))
			why = "a trigraph (??x); write the character itself";
		else if (c == '\\') {
			size_t j = i + 1;
			while (j < len && (text[j] == ' ' || text[j] == '\t' || text[j] == '\f' || text[j] == '\v'))
				j++;
			if (j > i + 1 && (j == len || text[j] == '\n' || text[j] == '\r'))
				why = "a backslash followed by spaces before the line end (ambiguous line splice)";
		}
		if (why)
			return kiln_error_set(KILN_EINVAL, "%s:%zu: refused: the source contains %s", name, line, why);
	}
	return KILN_OK;
}

/* Translation phases 1-2: drop backslash-newline, fold CRLF, keep a line map. */
static kiln_err splice(src *s, const char *text, size_t len)
{
	s->t = kiln_malloc(len + 1);
	s->line = kiln_malloc((len + 1) * sizeof(uint32_t));
	if (!s->t || !s->line)
		return KILN_ENOMEM;
	uint32_t line = 1;
	size_t o = 0;
	for (size_t i = 0; i < len; i++) {
		if (text[i] == '\\' && i + 1 < len && text[i + 1] == '\n') {
			i++;
			line++;
			continue;
		}
		if (text[i] == '\\' && i + 2 < len && text[i + 1] == '\r' && text[i + 2] == '\n') {
			i += 2;
			line++;
			continue;
		}
		if (text[i] == '\r')
			continue; /* raw_checks made sure an LF follows */
		s->line[o] = line;
		s->t[o++] = text[i];
		if (text[i] == '\n')
			line++;
	}
	s->t[o] = '\0';
	s->line[o] = line;
	s->n = o;
	return KILN_OK;
}

/* ---- the tokenizer ---- */

enum { T_END, T_NL, T_IDENT, T_NUM, T_STR, T_CHAR, T_HEADER, T_HASH, T_PASTE, T_PUNCT };

typedef struct tok {
	int kind;
	size_t at, len; /* in s->t */
	bool bol;       /* first token of a logical line (only spaces or comments before it) */
} tok;

typedef struct lexer {
	const src *s;
	size_t i;
	bool bol;
	bool header_ok; /* the next '<' or '"' starts a header-name */
} lexer;

static bool ident_start(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$';
}

static bool ident_char(unsigned char c)
{
	return ident_start(c) || (c >= '0' && c <= '9');
}

/* Skips spaces and comments, never a newline. Returns KILN_EINVAL on an unterminated
 * block comment. */
static kiln_err skip_space(lexer *L)
{
	const char *t = L->s->t;
	for (;;) {
		char c = t[L->i];
		if (c == ' ' || c == '\t' || c == '\f' || c == '\v') {
			L->i++;
		} else if (c == '/' && t[L->i + 1] == '/') {
			while (t[L->i] && t[L->i] != '\n')
				L->i++;
		} else if (c == '/' && t[L->i + 1] == '*') {
			const char *end = strstr(t + L->i + 2, "*/");
			if (!end)
				return refuse(L->s, L->i, "a /* comment is never closed");
			L->i = (size_t)(end - t) + 2;
		} else
			return KILN_OK;
	}
}

static kiln_err lex_quoted(lexer *L, tok *k, char q)
{
	const char *t = L->s->t;
	size_t i = k->at + 1;
	while (t[i] && t[i] != q && t[i] != '\n')
		i += t[i] == '\\' && t[i + 1] && t[i + 1] != '\n' ? 2 : 1;
	if (t[i] != q)
		return refuse(L->s, k->at, "an unterminated %s literal", q == '"' ? "string" : "character");
	L->i = i + 1;
	k->kind = q == '"' ? T_STR : T_CHAR;
	return KILN_OK;
}

/* pp-number: digit or .digit, then [0-9A-Za-z_.], e+ E- p+ P-, and ' before an
 * identifier character (C++14 digit separators). */
static void lex_number(lexer *L)
{
	const char *t = L->s->t;
	size_t i = L->i + 1;
	for (;;) {
		unsigned char c = (unsigned char)t[i];
		if ((c == '+' || c == '-') && strchr("eEpP", t[i - 1]))
			i++;
		else if (c == '\'' && ident_char((unsigned char)t[i + 1]))
			i += 2;
		else if (ident_char(c) || c == '.')
			i++;
		else
			break;
	}
	L->i = i;
}

static kiln_err lex(lexer *L, tok *k)
{
	kiln_err e = skip_space(L);
	if (e)
		return e;
	const char *t = L->s->t;
	bool header_ok = L->header_ok;
	L->header_ok = false;
	k->at = L->i;
	k->bol = L->bol;
	L->bol = false;
	unsigned char c = (unsigned char)t[L->i];
	if (!c) {
		k->kind = T_END;
	} else if (c == '\n') {
		k->kind = T_NL;
		L->i++;
		L->bol = true;
	} else if (header_ok && (c == '<' || c == '"')) {
		size_t i = L->i + 1;
		char close = c == '<' ? '>' : '"';
		while (t[i] && t[i] != close && t[i] != '\n')
			i++;
		if (t[i] != close)
			return refuse(L->s, k->at, "an unterminated header name");
		k->kind = T_HEADER;
		L->i = i + 1;
	} else if (c == '"' || c == '\'') {
		if ((e = lex_quoted(L, k, (char)c)))
			return e;
	} else if (ident_start(c)) {
		size_t i = L->i;
		while (ident_char((unsigned char)t[i]))
			i++;
		size_t n = i - L->i;
		/* R"d(...)d" keeps splices and spans lines: refused rather than half-understood */
		if (t[i] == '"' && t[i - 1] == 'R' &&
		    (n == 1 || (n == 2 && strchr("uUL", t[L->i])) || (n == 3 && strncmp(t + L->i, "u8", 2) == 0)))
			return refuse(L->s, k->at, "a raw string literal (R\"...\")");
		k->kind = T_IDENT;
		bool prefix = (n == 1 && strchr("uUL", t[L->i])) || (n == 2 && strncmp(t + L->i, "u8", 2) == 0);
		L->i = i;
		if (prefix && (t[i] == '"' || t[i] == '\'')) { /* u8"x", L'x': one literal */
			k->at = i;
			if ((e = lex_quoted(L, k, t[i])))
				return e;
		}
	} else if ((c >= '0' && c <= '9') || (c == '.' && t[L->i + 1] >= '0' && t[L->i + 1] <= '9')) {
		k->kind = T_NUM;
		lex_number(L);
	} else if (c == '#' || (c == '%' && t[L->i + 1] == ':')) {
		L->i += c == '#' ? 1 : 2;
		k->kind = T_HASH;
		if (t[L->i] == '#' || (t[L->i] == '%' && t[L->i + 1] == ':')) {
			L->i += t[L->i] == '#' ? 1 : 2;
			k->kind = T_PASTE;
		}
	} else if (c >= 0x80) {
		/* a byte-order mark or a Unicode space may be blank to the compiler and would hide
		 * a directive from this tokenizer: code is ASCII (comments and literals need not be) */
		return refuse(L->s, k->at, "a non-ASCII character outside comments and literals");
	} else if (c == '\\') {
		return refuse(L->s, k->at, "a backslash outside a literal (universal character names are not allowed in code)");
	} else {
		k->kind = T_PUNCT;
		L->i++;
	}
	k->len = L->i - k->at;
	return KILN_OK;
}

static bool tok_is(const src *s, const tok *k, const char *word)
{
	size_t n = strlen(word);
	return k->len == n && memcmp(s->t + k->at, word, n) == 0;
}

/* ---- what may be read: the toolkit's headers ---- */

static const char *const allowed_headers[] = {
	"cuda_fp16.h", "cuda_fp16.hpp", "cuda_bf16.h", "cuda_bf16.hpp", "cuda_fp8.h", "cuda_fp8.hpp",
	"cuda_fp6.h", "cuda_fp6.hpp", "cuda_fp4.h", "cuda_fp4.hpp", "cooperative_groups.h",
	"cuda_pipeline.h", "cuda_pipeline_primitives.h", "cuda_awbarrier.h",
	"cuda_awbarrier_primitives.h", "mma.h", "math_constants.h", "vector_types.h",
	"vector_functions.h", NULL};
static const char *const allowed_dirs[] = {"cub/", "cuda/", "cooperative_groups/", "nv/", NULL};

const char *kiln_compile_allowed_headers(void)
{
	return "cuda_fp16.h, cuda_bf16.h, cuda_fp8.h, cooperative_groups.h, cuda_pipeline.h, "
	       "cuda_awbarrier.h, mma.h, math_constants.h, vector_types.h, cub/..., cuda/..., "
	       "cooperative_groups/..., nv/...";
}

/* A relative path of plain components, on the allow-list, that resolves (symlinks
 * followed) to a file inside the toolkit's include directory. */
static bool header_allowed(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n > 200 || name[0] == '/')
		return false;
	for (const char *p = name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		      strchr("_.+-/", *p)))
			return false;
	for (const char *c = name; c; c = strchr(c, '/') ? strchr(c, '/') + 1 : NULL) {
		size_t len = strcspn(c, "/");
		if (len == 0 || (len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return false;
	}
	bool listed = false;
	for (const char *const *a = allowed_headers; *a && !listed; a++)
		listed = strcmp(name, *a) == 0;
	for (const char *const *d = allowed_dirs; *d && !listed; d++)
		listed = strncmp(name, *d, strlen(*d)) == 0;
	if (!listed)
		return false;
	char root[PATH_MAX], real[PATH_MAX], path[PATH_MAX + 256];
	if (!realpath(KILN_CUDA_ROOT "/include", root))
		return false;
	static const char *const dirs[] = {KILN_CUDA_ROOT "/include", KILN_CUDA_ROOT "/include/cccl"};
	size_t rl = strlen(root);
	for (size_t i = 0; i < KILN_ARRAY_LEN(dirs); i++) {
		snprintf(path, sizeof path, "%s/%s", dirs[i], name);
		if (realpath(path, real) && strncmp(real, root, rl) == 0 && real[rl] == '/')
			return true;
	}
	return false;
}

/* ---- the checks ---- */

static const char *const allowed_pragmas[] = {
	"unroll", "nounroll", "once", "pack", "message", "push_macro", "pop_macro", "STDC",
	"nv_diag_suppress", "nv_diag_warning", "nv_diag_error", "nv_diag_default", "nv_diag_once",
	"diag_suppress", "diag_warning", "diag_error", "diag_default", "nv_abi", NULL};

/* The first word of a pragma's text (after `#pragma` or inside _Pragma("...")). */
static kiln_err check_pragma_word(const src *s, size_t at, const char *w, size_t n)
{
	if (n == 0)
		return KILN_OK;
	for (const char *const *p = allowed_pragmas; *p; p++)
		if (strlen(*p) == n && memcmp(*p, w, n) == 0)
			return KILN_OK;
	return refuse(s, at, "#pragma %.*s is not allowed (allowed: unroll, nounroll, once, pack, message, "
		      "push_macro, pop_macro, STDC, nv_diag_*)", (int)(n > 40 ? 40 : n), w);
}

static kiln_err check_header(const src *s, const tok *h)
{
	char name[256];
	size_t n = h->len - 2;
	if (n >= sizeof name)
		n = sizeof name - 1;
	memcpy(name, s->t + h->at + 1, n);
	name[n] = '\0';
	if (header_allowed(name))
		return KILN_OK;
	return refuse(s, h->at, "%.*s: only the toolkit's own headers may be included (%s)",
		      (int)(h->len > 80 ? 80 : h->len), s->t + h->at, kiln_compile_allowed_headers());
}

/* Next significant token, newlines skipped unless in_directive. */
static kiln_err next(lexer *L, tok *k, bool in_directive)
{
	kiln_err e;
	do {
		if ((e = lex(L, k)))
			return e;
	} while (!in_directive && k->kind == T_NL);
	return KILN_OK;
}

/* _Pragma ( "text" ): the literal must be right there, so the text is known. */
static kiln_err check_pragma_op(lexer *L, size_t at, bool in_directive)
{
	tok a, b, c;
	kiln_err e;
	if ((e = next(L, &a, in_directive)) || (e = next(L, &b, in_directive)) || (e = next(L, &c, in_directive)))
		return e;
	if (!(a.kind == T_PUNCT && L->s->t[a.at] == '(') || b.kind != T_STR || L->s->t[b.at] != '"' ||
	    !(c.kind == T_PUNCT && L->s->t[c.at] == ')'))
		return refuse(L->s, at, "_Pragma must take a plain string literal: _Pragma(\"unroll\")");
	const char *p = L->s->t + b.at + 1, *end = L->s->t + b.at + b.len - 1;
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	const char *w = p;
	while (p < end && ident_char((unsigned char)*p))
		p++;
	if (p == w && p < end)
		return refuse(L->s, at, "_Pragma(\"%.*s\") is not allowed", (int)(end - w > 40 ? 40 : end - w), w);
	return check_pragma_word(L->s, at, w, (size_t)(p - w));
}

/* __has_include ( header ): the operand must be an allowed header written out. */
static kiln_err check_has_include(lexer *L, size_t at, bool in_directive)
{
	tok a, h, c;
	kiln_err e = next(L, &a, in_directive);
	if (e)
		return e;
	if (a.kind != T_PUNCT || L->s->t[a.at] != '(')
		return refuse(L->s, at, "__has_include must be followed by (<header>)");
	L->header_ok = true;
	if ((e = next(L, &h, in_directive)) || (e = next(L, &c, in_directive)))
		return e;
	if (h.kind != T_HEADER || c.kind != T_PUNCT || L->s->t[c.at] != ')')
		return refuse(L->s, at, "__has_include must name a header directly: __has_include(<cuda_fp16.h>)");
	return check_header(L->s, &h);
}

static bool reserved(const src *s, const tok *k)
{
	const char *n = s->t + k->at;
	return k->len >= 2 && n[0] == '_' && (n[1] == '_' || (n[1] >= 'A' && n[1] <= 'Z'));
}

static kiln_err check_ident(lexer *L, const tok *k, bool in_directive)
{
	const src *s = L->s;
	if (tok_is(s, k, "_Pragma"))
		return check_pragma_op(L, k->at, in_directive);
	if (tok_is(s, k, "__has_include"))
		return check_has_include(L, k->at, in_directive);
	if (tok_is(s, k, "__pragma") || tok_is(s, k, "__has_include_next") || tok_is(s, k, "__has_embed"))
		return refuse(s, k->at, "%.*s is not allowed", (int)k->len, s->t + k->at);
	return KILN_OK;
}

static const char *const allowed_directives[] = {
	"define", "undef", "if", "ifdef", "ifndef", "elif", "elifdef", "elifndef", "else", "endif",
	"include", "pragma", "error", "warning", "line", NULL};

/* A directive: `#` was the first token of a logical line. */
static kiln_err directive(lexer *L, const tok *hash_tok, tok *k)
{
	const src *s = L->s;
	const tok hash_copy = *hash_tok, *hash = &hash_copy;
	kiln_err e = lex(L, k);
	if (e || k->kind == T_NL || k->kind == T_END)
		return e; /* the null directive */
	bool known = false;
	for (const char *const *d = allowed_directives; k->kind == T_IDENT && *d && !known; d++)
		known = tok_is(s, k, *d);
	if (!known)
		return refuse(s, hash->at, "the directive #%.*s is not allowed", (int)(k->len > 40 ? 40 : k->len),
			      s->t + k->at);
	if (tok_is(s, k, "include")) {
		tok h, end;
		L->header_ok = true;
		if ((e = lex(L, &h)))
			return e;
		if (h.kind != T_HEADER)
			return refuse(s, hash->at, "#include must name a header directly (<cuda_fp16.h>), not through a macro");
		if ((e = check_header(s, &h)) || (e = lex(L, &end)))
			return e;
		if (end.kind != T_NL && end.kind != T_END)
			return refuse(s, end.at, "text after the header name of an #include");
		*k = end;
		return KILN_OK;
	}
	if (tok_is(s, k, "pragma")) {
		tok w;
		if ((e = lex(L, &w)))
			return e;
		if (w.kind == T_NL || w.kind == T_END) {
			*k = w;
			return KILN_OK;
		}
		if (w.kind != T_IDENT)
			return refuse(s, hash->at, "a #pragma must start with a name");
		if ((e = check_pragma_word(s, hash->at, s->t + w.at, w.len)))
			return e;
	}
	if (tok_is(s, k, "define") || tok_is(s, k, "undef")) {
		tok m;
		if ((e = lex(L, &m)))
			return e;
		if (m.kind == T_IDENT && reserved(s, &m))
			return refuse(s, m.at, "#%.*s of the reserved name %.*s (names starting with __ or _X belong to the toolkit)",
				      (int)k->len, s->t + k->at, (int)(m.len > 60 ? 60 : m.len), s->t + m.at);
		if (m.kind == T_IDENT && (e = check_ident(L, &m, true)))
			return e;
	}
	/* the rest of the line goes through the ordinary token checks */
	for (;;) {
		if ((e = lex(L, k)))
			return e;
		if (k->kind == T_NL || k->kind == T_END)
			return KILN_OK;
		if (k->kind == T_PASTE)
			return refuse(s, k->at, "token pasting (##) is not allowed (it can spell _Pragma or __has_include)");
		if (k->kind == T_IDENT && (e = check_ident(L, k, true)))
			return e;
	}
}

kiln_err kiln_compile_source_check(const char *text, size_t len, const char *name)
{
	src s = {NULL, NULL, 0, name ? name : "kernel.cu"};
	kiln_err e = raw_checks(text, len, s.name);
	if (e || (e = splice(&s, text, len)))
		goto done;
	lexer L = {&s, 0, true, false};
	tok k;
	for (;;) {
		if ((e = lex(&L, &k)))
			goto done;
		if (k.kind == T_END)
			break;
		if (k.kind == T_HASH && k.bol) {
			if ((e = directive(&L, &k, &k)))
				goto done;
			if (k.kind == T_END)
				break;
		} else if (k.kind == T_PASTE) {
			e = refuse(&s, k.at, "token pasting (##) is not allowed (it can spell _Pragma or __has_include)");
			goto done;
		} else if (k.kind == T_IDENT && (e = check_ident(&L, &k, false)))
			goto done;
	}
done:
	free(s.t);
	free(s.line);
	return e;
}
