/* parse: PTX text -> kiln_emu_module. A line-aware lexer feeds a recursive-descent
 * parser that decodes each instruction once into an emu_inst with register-index
 * operands (immediates, symbols and special registers become pre-filled registers), then
 * each .entry is flattened with its device functions inlined. Every error names the
 * line; opcodes or modifiers the emulator cannot run are KILN_EUNSUPPORTED, never
 * silently skipped. */
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/emu/emu_int.h"

/* ---------------------------------------------------------------- lexer */
enum { T_EOF, T_WORD, T_INT, T_F32, T_F64, T_FDEC, T_STR, T_PUNCT };

typedef struct tok {
	uint8_t kind;
	char punct;
	uint32_t line;
	uint32_t len;
	const char *s;
	uint64_t ival;   /* T_INT value, T_F32/T_F64 bits */
	double dval;     /* T_FDEC */
} tok;

typedef struct parser {
	const char *name;
	const char *src;
	size_t len;
	tok *toks;
	size_t ntoks, cap, pos;
	kiln_emu_module *mod;
	kiln_err err;
	uint32_t nregs, npreds;  /* module-wide register numbering (no renaming when inlining) */
	/* current function */
	int32_t fidx;
	struct scope_ent *scope;
	size_t nscope, capscope;
	struct label_ent *labels;
	size_t nlabels, caplabels;
	struct fixup *fixups;
	size_t nfixups, capfixups;
} parser;

struct scope_ent {
	const char *name;   /* points into the source */
	uint32_t len;
	uint8_t kind;       /* 0 reg range, 1 pred range, 2 symbol */
	uint8_t ranged;     /* declared with <N> */
	uint32_t count, base;
	int32_t sym;
};
struct label_ent { const char *name; uint32_t len; uint32_t at; };
struct fixup { const char *name; uint32_t len; uint32_t inst; uint32_t line; };

static kiln_err perr(parser *p, uint32_t line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static kiln_err perr(parser *p, uint32_t line, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	p->err = kiln_error_set(KILN_EINVAL, "%s:%u: %s", p->name, line, msg);
	return p->err;
}

static kiln_err punsup(parser *p, uint32_t line, const char *what, size_t n)
{
	p->err = kiln_error_set(KILN_EUNSUPPORTED,
				"not supported by the emulator: %.*s (line %u)", (int)(n > 80 ? 80 : n),
				what, line);
	return p->err;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool word_start(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
	       c == '%' || c == '.';
}

static bool word_char(char c)
{
	return word_start(c) || (c >= '0' && c <= '9');
}

static kiln_err push_tok(parser *p, const tok *t)
{
	if (p->ntoks == p->cap) {
		size_t nc = p->cap ? p->cap * 2 : 1024;
		tok *n = kiln_realloc(p->toks, nc * sizeof *n);
		if (!n)
			return KILN_ENOMEM;
		p->toks = n;
		p->cap = nc;
	}
	p->toks[p->ntoks++] = *t;
	return 0;
}

static kiln_err lex(parser *p)
{
	const char *s = p->src, *e = p->src + p->len;
	uint32_t line = 1;
	while (s < e) {
		char c = *s;
		tok t;
		memset(&t, 0, sizeof t);
		t.line = line;
		if (c == '\n') {
			line++;
			s++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v') {
			s++;
			continue;
		}
		if (c == '/' && s + 1 < e && s[1] == '/') {
			while (s < e && *s != '\n')
				s++;
			continue;
		}
		if (c == '/' && s + 1 < e && s[1] == '*') {
			s += 2;
			while (s + 1 < e && !(s[0] == '*' && s[1] == '/')) {
				if (*s == '\n')
					line++;
				s++;
			}
			if (s + 1 >= e)
				return perr(p, t.line, "unterminated comment");
			s += 2;
			continue;
		}
		if (c == '"') {
			const char *b = ++s;
			while (s < e && *s != '"' && *s != '\n')
				s++;
			if (s >= e || *s != '"')
				return perr(p, line, "unterminated string");
			t.kind = T_STR;
			t.s = b;
			t.len = (uint32_t)(s - b);
			s++;
		} else if (c >= '0' && c <= '9') {
			const char *b = s;
			if (c == '0' && s + 1 < e && (s[1] == 'f' || s[1] == 'F' || s[1] == 'd' || s[1] == 'D')) {
				bool d = s[1] == 'd' || s[1] == 'D';
				int nd = d ? 16 : 8;
				uint64_t v = 0;
				s += 2;
				for (int i = 0; i < nd; i++, s++) {
					if (s >= e || hexval(*s) < 0)
						return perr(p, line, "bad %s literal", d ? "0d" : "0f");
					v = v << 4 | (uint64_t)hexval(*s);
				}
				t.kind = d ? T_F64 : T_F32;
				t.ival = v;
			} else if (c == '0' && s + 1 < e && (s[1] == 'x' || s[1] == 'X')) {
				uint64_t v = 0;
				int nd = 0;
				s += 2;
				while (s < e && hexval(*s) >= 0) {
					if (nd++ >= 16)
						return perr(p, line, "hex literal too long");
					v = v << 4 | (uint64_t)hexval(*s++);
				}
				if (!nd)
					return perr(p, line, "bad hex literal");
				t.kind = T_INT;
				t.ival = v;
			} else {
				const char *q = s;
				bool isf = false;
				while (q < e && ((*q >= '0' && *q <= '9') || *q == '.' || *q == 'e' || *q == 'E' ||
						 ((*q == '-' || *q == '+') && (q[-1] == 'e' || q[-1] == 'E')))) {
					if (*q == '.' || *q == 'e' || *q == 'E')
						isf = true;
					q++;
				}
				char buf[64];
				size_t n = (size_t)(q - s);
				if (n >= sizeof buf)
					return perr(p, line, "numeric literal too long");
				memcpy(buf, s, n);
				buf[n] = 0;
				if (isf) {
					t.kind = T_FDEC;
					t.dval = strtod(buf, NULL);
				} else {
					uint64_t v = 0;
					bool oct = buf[0] == '0' && n > 1;
					for (size_t i = 0; i < n; i++) {
						int dv = buf[i] - '0';
						if (oct && dv > 7)
							return perr(p, line, "bad octal literal");
						uint64_t nv = v * (oct ? 8 : 10) + (uint64_t)dv;
						if (nv / (oct ? 8 : 10) != v)
							return perr(p, line, "integer literal too large");
						v = nv;
					}
					t.kind = T_INT;
					t.ival = v;
				}
				s = q;
			}
			if (s < e && (*s == 'U' || *s == 'u'))
				s++;
			if (s < e && word_char(*s))
				return perr(p, line, "bad numeric literal '%.*s'", (int)(s - b + 1), b);
			t.s = b;
			t.len = (uint32_t)(s - b);
		} else if (word_start(c)) {
			const char *b = s;
			while (s < e && (word_char(*s) || (*s == ':' && s + 1 < e && s[1] == ':'))) {
				if (*s == ':')
					s++;
				s++;
			}
			t.kind = T_WORD;
			t.s = b;
			t.len = (uint32_t)(s - b);
		} else if (strchr(",;:[]{}()+-<>@!|=*", c)) {
			t.kind = T_PUNCT;
			t.punct = c;
			t.s = s;
			t.len = 1;
			s++;
		} else {
			return perr(p, line, "unexpected character 0x%02x", (unsigned char)c);
		}
		if (push_tok(p, &t))
			return KILN_ENOMEM;
	}
	tok t;
	memset(&t, 0, sizeof t);
	t.kind = T_EOF;
	t.line = line;
	return push_tok(p, &t);
}

static tok *peek(parser *p) { return &p->toks[p->pos]; }
static tok *peek2(parser *p)
{
	return p->pos + 1 < p->ntoks ? &p->toks[p->pos + 1] : &p->toks[p->ntoks - 1];
}
static tok *next(parser *p)
{
	tok *t = &p->toks[p->pos];
	if (t->kind != T_EOF)
		p->pos++;
	return t;
}
static bool is_punct(const tok *t, char c) { return t->kind == T_PUNCT && t->punct == c; }
static bool is_word(const tok *t, const char *w)
{
	return t->kind == T_WORD && t->len == strlen(w) && memcmp(t->s, w, t->len) == 0;
}
static bool accept(parser *p, char c)
{
	if (is_punct(peek(p), c)) {
		next(p);
		return true;
	}
	return false;
}
static kiln_err expect(parser *p, char c)
{
	tok *t = peek(p);
	if (!is_punct(t, c)) {
		if (t->kind == T_EOF)
			return perr(p, t->line, "expected '%c', found end of file", c);
		return perr(p, t->line, "expected '%c', found '%.*s'", c, (int)(t->len > 40 ? 40 : t->len), t->s);
	}
	next(p);
	return 0;
}

/* Skips the rest of the current line (directives that end at the newline). */
static void skip_line(parser *p)
{
	uint32_t line = peek(p)->line;
	next(p);
	while (peek(p)->kind != T_EOF && peek(p)->line == line)
		next(p);
}

/* Skips to just after the next ';' (or a balanced {...} block). */
static kiln_err skip_stmt(parser *p)
{
	int depth = 0;
	for (;;) {
		tok *t = next(p);
		if (t->kind == T_EOF)
			return perr(p, t->line, "unexpected end of file");
		if (is_punct(t, '{'))
			depth++;
		else if (is_punct(t, '}')) {
			if (--depth <= 0)
				return 0;
		} else if (is_punct(t, ';') && depth == 0)
			return 0;
	}
}

static kiln_err parse_u32(parser *p, uint32_t *out)
{
	tok *t = next(p);
	if (t->kind != T_INT || t->ival > 0xFFFFFFFFull)
		return perr(p, t->line, "expected an integer");
	*out = (uint32_t)t->ival;
	return 0;
}

/* ---------------------------------------------------------------- types */
static const struct { const char *n; emu_type t; } type_names[] = {
	{"pred", EMU_PRED}, {"b8", EMU_B8}, {"b16", EMU_B16}, {"b32", EMU_B32}, {"b64", EMU_B64},
	{"b128", EMU_B128}, {"u8", EMU_U8}, {"u16", EMU_U16}, {"u32", EMU_U32}, {"u64", EMU_U64},
	{"s8", EMU_S8}, {"s16", EMU_S16}, {"s32", EMU_S32}, {"s64", EMU_S64}, {"f16", EMU_F16},
	{"f16x2", EMU_F16X2}, {"bf16", EMU_BF16}, {"bf16x2", EMU_BF16X2}, {"f32", EMU_F32},
	{"f64", EMU_F64},
};

static int type_of(const char *s, size_t n)
{
	for (size_t i = 0; i < KILN_ARRAY_LEN(type_names); i++)
		if (strlen(type_names[i].n) == n && memcmp(type_names[i].n, s, n) == 0)
			return (int)type_names[i].t;
	return -1;
}

uint32_t emu_type_size(emu_type t)
{
	switch (t) {
	case EMU_PRED: return 1;
	case EMU_B8: case EMU_U8: case EMU_S8: return 1;
	case EMU_B16: case EMU_U16: case EMU_S16: case EMU_F16: case EMU_BF16: return 2;
	case EMU_B32: case EMU_U32: case EMU_S32: case EMU_F32: case EMU_F16X2: case EMU_BF16X2: return 4;
	case EMU_B64: case EMU_U64: case EMU_S64: case EMU_F64: return 8;
	case EMU_B128: return 16;
	default: return 0;
	}
}

bool emu_type_is_signed(emu_type t)
{
	return t == EMU_S8 || t == EMU_S16 || t == EMU_S32 || t == EMU_S64;
}

bool emu_type_is_float(emu_type t)
{
	return t == EMU_F16 || t == EMU_F16X2 || t == EMU_BF16 || t == EMU_BF16X2 || t == EMU_F32 ||
	       t == EMU_F64;
}

/* ---------------------------------------------------------------- module building */
static kiln_err grow(void **arr, uint32_t *cap, uint32_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	uint32_t nc = *cap ? *cap * 2 : 16;
	void *q = kiln_realloc(*arr, (size_t)nc * elem);
	if (!q)
		return KILN_ENOMEM;
	memset((char *)q + (size_t)*cap * elem, 0, (size_t)(nc - *cap) * elem);
	*arr = q;
	*cap = nc;
	return 0;
}

static int32_t add_sym(parser *p, const char *name, size_t n, uint8_t space, int32_t func)
{
	kiln_emu_module *m = p->mod;
	if (grow((void **)&m->syms, &m->capsyms, m->nsyms, sizeof *m->syms))
		return -1;
	emu_sym *s = &m->syms[m->nsyms];
	memset(s, 0, sizeof *s);
	s->name = kiln_strndup(name, n);
	if (!s->name)
		return -1;
	s->space = space;
	s->func = func;
	s->align = 1;
	return (int32_t)m->nsyms++;
}

static int32_t find_module_sym(parser *p, const char *name, size_t n)
{
	for (uint32_t i = 0; i < p->mod->nsyms; i++) {
		emu_sym *s = &p->mod->syms[i];
		if (s->func < 0 && strlen(s->name) == n && memcmp(s->name, name, n) == 0)
			return (int32_t)i;
	}
	return -1;
}

static int32_t find_func(parser *p, const char *name, size_t n)
{
	for (uint32_t i = 0; i < p->mod->nfuncs; i++)
		if (strlen(p->mod->funcs[i].name) == n && memcmp(p->mod->funcs[i].name, name, n) == 0)
			return (int32_t)i;
	return -1;
}

static kiln_err scope_push(parser *p, const struct scope_ent *e)
{
	if (p->nscope == p->capscope) {
		size_t nc = p->capscope ? p->capscope * 2 : 64;
		struct scope_ent *q = kiln_realloc(p->scope, nc * sizeof *q);
		if (!q)
			return KILN_ENOMEM;
		p->scope = q;
		p->capscope = nc;
	}
	p->scope[p->nscope++] = *e;
	return 0;
}

/* Looks a name up in the function scopes: registers (kind 0/1) and symbols (kind 2). */
static const struct scope_ent *scope_find(parser *p, const char *name, size_t n, uint32_t *index)
{
	for (size_t i = p->nscope; i-- > 0;) {
		const struct scope_ent *e = &p->scope[i];
		if (!e->ranged) {
			if (e->len == n && memcmp(e->name, name, n) == 0) {
				*index = e->base;
				return e;
			}
			continue;
		}
		if (n <= e->len || memcmp(e->name, name, e->len) != 0)
			continue;
		uint64_t v = 0;
		size_t k = e->len;
		if (name[k] == '0' && n > k + 1)
			continue;
		for (; k < n; k++) {
			if (name[k] < '0' || name[k] > '9')
				break;
			v = v * 10 + (uint64_t)(name[k] - '0');
			if (v > 0xFFFFFFFFull)
				break;
		}
		if (k == n && v < e->count) {
			*index = e->base + (uint32_t)v;
			return e;
		}
	}
	return NULL;
}

/* Parses `.align N`, `.ptr`, state spaces, vector and the type of a declaration. */
typedef struct decl {
	uint32_t align;
	int type;       /* emu_type or -1 */
	uint32_t vec;
	uint8_t space;
	const tok *name;
	uint64_t count; /* array elements (product of dims); 1 for scalars */
	bool unsized;   /* name[] */
} decl;

static kiln_err parse_decl(parser *p, decl *d, bool allow_unsized)
{
	memset(d, 0, sizeof *d);
	d->type = -1;
	d->vec = 1;
	d->count = 1;
	for (;;) {
		tok *t = peek(p);
		if (t->kind != T_WORD || t->s[0] != '.')
			break;
		next(p);
		const char *w = t->s + 1;
		size_t n = t->len - 1;
		int ty = type_of(w, n);
		if (ty >= 0)
			d->type = ty;
		else if (is_word(t, ".align")) {
			if (parse_u32(p, &d->align))
				return p->err;
			if (d->align == 0 || (d->align & (d->align - 1)))
				return perr(p, t->line, "alignment %u is not a power of two", d->align);
		} else if (is_word(t, ".v2"))
			d->vec = 2;
		else if (is_word(t, ".v4"))
			d->vec = 4;
		else if (is_word(t, ".v8"))
			d->vec = 8;
		else if (is_word(t, ".ptr") || is_word(t, ".global") || is_word(t, ".shared") ||
			 is_word(t, ".const") || is_word(t, ".local") || is_word(t, ".volatile") ||
			 is_word(t, ".restrict") || is_word(t, ".attribute"))
			continue;
		else
			return perr(p, t->line, "unknown declaration attribute '%.*s'", (int)t->len, t->s);
	}
	if (d->type < 0)
		return perr(p, peek(p)->line, "declaration without a type");
	tok *nm = next(p);
	if (nm->kind != T_WORD || nm->s[0] == '.')
		return perr(p, nm->line, "expected a name in declaration");
	d->name = nm;
	while (is_punct(peek(p), '[')) {
		next(p);
		if (is_punct(peek(p), ']')) {
			if (!allow_unsized)
				return perr(p, nm->line, "array '%.*s' without a size", (int)nm->len, nm->s);
			next(p);
			d->unsized = true;
			continue;
		}
		uint32_t dim;
		if (parse_u32(p, &dim) || expect(p, ']'))
			return p->err;
		d->count *= dim;
		if (d->count > (1ull << 32))
			return perr(p, nm->line, "array '%.*s' too large", (int)nm->len, nm->s);
	}
	if (!d->align)
		d->align = emu_type_size((emu_type)d->type) * d->vec;
	if (!d->align)
		d->align = 1;
	return 0;
}

/* Initializer `= value` or `= {v, v, {v}}` into elem-size slots of s->init. */
static kiln_err parse_init_values(parser *p, emu_sym *s, emu_type ty, uint32_t esz, uint64_t *idx)
{
	if (accept(p, '{')) {
		if (!is_punct(peek(p), '}')) {
			for (;;) {
				if (parse_init_values(p, s, ty, esz, idx))
					return p->err;
				if (!accept(p, ','))
					break;
			}
		}
		return expect(p, '}');
	}
	bool neg = accept(p, '-');
	tok *t = next(p);
	uint64_t bits;
	double dv;
	bool isf = false;
	if (t->kind == T_INT) {
		bits = neg ? (uint64_t)0 - t->ival : t->ival;
		dv = neg ? -(double)t->ival : (double)t->ival;
	} else if (t->kind == T_F32) {
		float f;
		uint32_t b = (uint32_t)t->ival;
		memcpy(&f, &b, 4);
		dv = neg ? -(double)f : (double)f;
		bits = b ^ (neg ? 0x80000000u : 0);
		isf = true;
	} else if (t->kind == T_F64) {
		memcpy(&dv, &t->ival, 8);
		if (neg)
			dv = -dv;
		bits = t->ival ^ (neg ? 0x8000000000000000ull : 0);
		isf = true;
	} else if (t->kind == T_FDEC) {
		dv = neg ? -t->dval : t->dval;
		bits = 0;
		isf = true;
	} else if (t->kind == T_WORD && (is_word(t, "generic") || find_module_sym(p, t->s, t->len) >= 0)) {
		return punsup(p, t->line, "address initializers", 20);
	} else {
		return perr(p, t->line, "bad initializer value");
	}
	if (ty == EMU_F32) {
		float f = (float)dv;
		uint32_t b;
		memcpy(&b, &f, 4);
		bits = (t->kind == T_F32) ? bits : b;
	} else if (ty == EMU_F64) {
		if (t->kind != T_F64)
			memcpy(&bits, &dv, 8);
	} else if (isf) {
		return perr(p, t->line, "float initializer for an integer variable");
	}
	if (*idx * esz + esz > s->size)
		return perr(p, t->line, "too many initializer values for '%s'", s->name);
	memcpy(s->init + *idx * esz, &bits, esz);
	(*idx)++;
	return 0;
}

/* A variable declaration in state space `space` (token already consumed). */
static kiln_err parse_var(parser *p, uint8_t space, int32_t func, int32_t *out_sym)
{
	decl d;
	uint32_t line = peek(p)->line;
	if (parse_decl(p, &d, space == KILN_EMU_SPACE_SHARED))
		return p->err;
	uint32_t esz = emu_type_size((emu_type)d.type) * d.vec;
	if (d.type == EMU_PRED)
		return perr(p, line, "a variable cannot have type .pred");
	int32_t si = add_sym(p, d.name->s, d.name->len, space, func);
	if (si < 0)
		return KILN_ENOMEM;
	emu_sym *s = &p->mod->syms[si];
	s->align = d.align;
	s->is_extern = d.unsized;
	uint64_t size = d.unsized ? 0 : d.count * esz;
	if (size > (1ull << 31))
		return perr(p, line, "variable '%s' too large", s->name);
	s->size = (uint32_t)size;
	if (accept(p, '=')) {
		if (space != KILN_EMU_SPACE_GLOBAL && space != KILN_EMU_SPACE_CONST)
			return perr(p, line, "only .global and .const variables take initializers");
		s->init = kiln_calloc(1, s->size ? s->size : 1);
		if (!s->init)
			return KILN_ENOMEM;
		uint64_t idx = 0;
		emu_type et = (emu_type)d.type;
		if (d.vec > 1)
			esz = emu_type_size(et);
		if (parse_init_values(p, s, et, esz, &idx))
			return p->err;
	}
	if (out_sym)
		*out_sym = si;
	return expect(p, ';');
}

static emu_func *cur(parser *p) { return &p->mod->funcs[p->fidx]; }

/* Parameter list "( .param ... name, ... )" of a function or entry. */
static kiln_err parse_params(parser *p, emu_func *f, int32_t fidx, bool entry, bool rets)
{
	if (expect(p, '('))
		return p->err;
	uint32_t off = entry ? 0 : f->frame_bytes;
	while (!is_punct(peek(p), ')')) {
		tok *t = next(p);
		if (!is_word(t, ".param") && !is_word(t, ".reg"))
			return perr(p, t->line, "expected .param in parameter list");
		if (is_word(t, ".reg"))
			return punsup(p, t->line, ".reg parameters", 15);
		decl d;
		if (parse_decl(p, &d, false))
			return p->err;
		int32_t si = add_sym(p, d.name->s, d.name->len, KILN_EMU_SPACE_PARAM, fidx);
		if (si < 0)
			return KILN_ENOMEM;
		/* parameters of a function are referenced through p->mod->funcs, which may move */
		f = &p->mod->funcs[fidx];
		emu_sym *s = &p->mod->syms[si];
		s->align = d.align;
		s->size = (uint32_t)(d.count * emu_type_size((emu_type)d.type) * d.vec);
		off = (off + d.align - 1) & ~(d.align - 1);
		s->offset = off;
		off += s->size;
		s->is_kparam = entry;
		s->is_fparam = !entry;
		int32_t **list = rets ? &f->rets : &f->params;
		uint32_t *nl = rets ? &f->nrets : &f->nparams;
		int32_t *q = kiln_realloc(*list, (*nl + 1) * sizeof *q);
		if (!q)
			return KILN_ENOMEM;
		q[(*nl)++] = si;
		*list = q;
		if (!accept(p, ','))
			break;
	}
	if (!entry)
		p->mod->funcs[fidx].frame_bytes = off;
	return expect(p, ')');
}

static kiln_err parse_body(parser *p);

static kiln_err parse_function(parser *p, bool entry)
{
	uint32_t line = peek(p)->line;
	kiln_emu_module *m = p->mod;
	/* return parameters come before the name */
	bool has_rets = !entry && is_punct(peek(p), '(');
	size_t rets_pos = p->pos;
	if (has_rets) {
		int depth = 0;
		do {
			tok *t = next(p);
			if (t->kind == T_EOF)
				return perr(p, t->line, "unexpected end of file in .func");
			if (is_punct(t, '('))
				depth++;
			if (is_punct(t, ')'))
				depth--;
		} while (depth > 0);
	}
	tok *nm = next(p);
	if (nm->kind != T_WORD || nm->s[0] == '.' || nm->s[0] == '%')
		return perr(p, nm->line, "expected a function name");
	int32_t fi = find_func(p, nm->s, nm->len);
	bool fresh = fi < 0;
	if (fresh) {
		if (grow((void **)&m->funcs, &m->capfuncs, m->nfuncs, sizeof *m->funcs))
			return KILN_ENOMEM;
		fi = (int32_t)m->nfuncs++;
		emu_func *f = &m->funcs[fi];
		memset(f, 0, sizeof *f);
		f->name = kiln_strndup(nm->s, nm->len);
		if (!f->name)
			return KILN_ENOMEM;
		f->is_entry = entry;
		f->line = line;
	} else if (m->funcs[fi].has_body) {
		return perr(p, nm->line, "function '%.*s' defined twice", (int)nm->len, nm->s);
	}
	emu_func *f = &m->funcs[fi];
	if (!fresh) {
		/* a prototype was seen: drop its parameter list, the definition repeats it */
		f->nparams = f->nrets = 0;
		f->frame_bytes = 0;
	}
	if (has_rets) {
		size_t save = p->pos;
		p->pos = rets_pos;
		if (parse_params(p, f, fi, false, true))
			return p->err;
		p->pos = save;
	}
	f = &m->funcs[fi];
	if (is_punct(peek(p), '(')) {
		if (parse_params(p, f, fi, entry, false))
			return p->err;
	}
	f = &m->funcs[fi];
	/* performance directives */
	for (;;) {
		tok *t = peek(p);
		uint32_t *dst = NULL;
		if (is_word(t, ".maxntid"))
			dst = f->maxntid;
		else if (is_word(t, ".reqntid"))
			dst = f->reqntid;
		if (dst) {
			next(p);
			for (int i = 0; i < 3; i++) {
				if (parse_u32(p, &dst[i]))
					return p->err;
				if (!accept(p, ','))
					break;
			}
			continue;
		}
		if (is_word(t, ".minnctapersm")) {
			next(p);
			if (parse_u32(p, &f->minnctapersm))
				return p->err;
			continue;
		}
		if (is_word(t, ".maxnreg") || is_word(t, ".maxclusterrank") || is_word(t, ".maxnctapersm")) {
			uint32_t dummy;
			next(p);
			if (parse_u32(p, &dummy))
				return p->err;
			continue;
		}
		if (is_word(t, ".reqnctapercluster") || is_word(t, ".explicitcluster"))
			return punsup(p, t->line, t->s, t->len);
		if (is_word(t, ".noreturn") || is_word(t, ".abi_preserve") || is_word(t, ".abi_preserve_control")) {
			next(p);
			if (peek(p)->kind == T_INT)
				next(p);
			continue;
		}
		if (is_word(t, ".pragma")) {
			next(p);
			if (skip_stmt(p))
				return p->err;
			continue;
		}
		break;
	}
	if (accept(p, ';'))
		return 0; /* prototype */
	if (!is_punct(peek(p), '{'))
		return perr(p, peek(p)->line, "expected '{' or ';' after function header");
	f->has_body = true;
	p->fidx = fi;
	p->nscope = 0;
	p->nlabels = 0;
	p->nfixups = 0;
	/* parameters are visible by name */
	for (uint32_t i = 0; i < f->nparams + f->nrets; i++) {
		int32_t si = i < f->nparams ? f->params[i] : f->rets[i - f->nparams];
		struct scope_ent e = {0};
		e.name = m->syms[si].name;
		e.len = (uint32_t)strlen(e.name);
		e.kind = 2;
		e.sym = si;
		if (scope_push(p, &e))
			return KILN_ENOMEM;
	}
	next(p); /* { */
	if (parse_body(p))
		return p->err;
	/* resolve branch targets */
	f = cur(p);
	for (size_t i = 0; i < p->nfixups; i++) {
		struct fixup *x = &p->fixups[i];
		size_t k;
		for (k = 0; k < p->nlabels; k++)
			if (p->labels[k].len == x->len && memcmp(p->labels[k].name, x->name, x->len) == 0)
				break;
		if (k == p->nlabels)
			return perr(p, x->line, "unknown label '%.*s'", (int)x->len, x->name);
		f->code[x->inst].target = p->labels[k].at;
	}
	p->fidx = -1;
	return 0;
}

static kiln_err parse_module(parser *p)
{
	while (peek(p)->kind != T_EOF) {
		tok *t = peek(p);
		if (is_word(t, ".version") || is_word(t, ".target") || is_word(t, ".address_size") ||
		    is_word(t, ".file") || is_word(t, ".loc")) {
			skip_line(p);
			continue;
		}
		if (is_word(t, ".section")) {
			next(p);
			while (peek(p)->kind != T_EOF && !is_punct(peek(p), '{'))
				next(p);
			if (skip_stmt(p))
				return p->err;
			continue;
		}
		if (is_word(t, ".pragma")) {
			next(p);
			if (skip_stmt(p))
				return p->err;
			continue;
		}
		if (is_word(t, ".visible") || is_word(t, ".weak") || is_word(t, ".extern") ||
		    is_word(t, ".common")) {
			next(p);
			continue;
		}
		if (is_word(t, ".entry") || is_word(t, ".func")) {
			next(p);
			if (parse_function(p, t->s[1] == 'e'))
				return p->err;
			continue;
		}
		if (is_word(t, ".global") || is_word(t, ".const") || is_word(t, ".shared")) {
			next(p);
			uint8_t sp = t->s[1] == 'g' ? KILN_EMU_SPACE_GLOBAL :
				     t->s[1] == 'c' ? KILN_EMU_SPACE_CONST : KILN_EMU_SPACE_SHARED;
			if (parse_var(p, sp, -1, NULL))
				return p->err;
			continue;
		}
		if (is_word(t, ".tex") || is_word(t, ".texref") || is_word(t, ".samplerref") ||
		    is_word(t, ".surfref") || is_word(t, ".alias"))
			return punsup(p, t->line, t->s, t->len);
		return perr(p, t->line, "unexpected '%.*s' at module scope", (int)(t->len > 40 ? 40 : t->len), t->s);
	}
	return 0;
}


/* ---------------------------------------------------------------- operands */
enum { O_NONE, O_REG, O_PRED, O_INT, O_F32, O_F64, O_FDEC, O_SYM, O_SREG, O_VEC, O_ADDR,
       O_SINK, O_NAME };

typedef struct velem {
	uint8_t kind;      /* O_REG, O_INT, O_F32, O_F64, O_FDEC, O_SINK */
	uint32_t reg;
	uint64_t imm;
	double dval;
} velem;

typedef struct opnd {
	uint8_t kind;
	bool neg;          /* '!' on a predicate, '-' on an immediate */
	uint32_t reg;      /* O_REG/O_PRED; O_ADDR: base register or EMU_NOREG */
	uint64_t imm;      /* O_INT value, O_F32/O_F64 bits */
	double dval;
	int32_t sym;       /* O_SYM; O_ADDR: base symbol or -1 */
	int sreg;
	int64_t off;       /* O_ADDR offset */
	uint32_t nvec;
	velem vec[8];
	bool has_pair;     /* d|p */
	uint32_t pair;     /* predicate index of the pair (EMU_NOPRED for a sink) */
	const char *name;  /* O_NAME */
	uint32_t len;
	uint32_t line;
} opnd;

static const struct { const char *n; int id; } sreg_names[] = {
	{"%tid.x", SREG_TID_X}, {"%tid.y", SREG_TID_Y}, {"%tid.z", SREG_TID_Z},
	{"%ntid.x", SREG_NTID_X}, {"%ntid.y", SREG_NTID_Y}, {"%ntid.z", SREG_NTID_Z},
	{"%ctaid.x", SREG_CTAID_X}, {"%ctaid.y", SREG_CTAID_Y}, {"%ctaid.z", SREG_CTAID_Z},
	{"%nctaid.x", SREG_NCTAID_X}, {"%nctaid.y", SREG_NCTAID_Y}, {"%nctaid.z", SREG_NCTAID_Z},
	{"%laneid", SREG_LANEID}, {"%warpid", SREG_WARPID}, {"%nwarpid", SREG_NWARPID},
	{"%smid", SREG_SMID}, {"%nsmid", SREG_NSMID}, {"%gridid", SREG_GRIDID},
	{"%lanemask_eq", SREG_LANEMASK_EQ}, {"%lanemask_le", SREG_LANEMASK_LE},
	{"%lanemask_lt", SREG_LANEMASK_LT}, {"%lanemask_ge", SREG_LANEMASK_GE},
	{"%lanemask_gt", SREG_LANEMASK_GT}, {"%dynamic_smem_size", SREG_DYN_SMEM},
	{"%total_smem_size", SREG_TOTAL_SMEM}, {"WARP_SZ", SREG_WARPSZ},
	{"%is_explicit_cluster", SREG_CLUSTER_ZERO}, {"%cluster_ctarank", SREG_CLUSTER_ZERO},
	{"%cluster_nctarank", SREG_CLUSTER_ONE},
	{"%clock", 1000}, {"%clock64", 1001}, {"%globaltimer", 1002},
	{"%globaltimer_lo", 1003}, {"%globaltimer_hi", 1004},
};

static kiln_err parse_name_operand(parser *p, tok *t, opnd *o)
{
	uint32_t idx;
	o->line = t->line;
	if (t->len == 1 && t->s[0] == '_') {
		o->kind = O_SINK;
		return 0;
	}
	const struct scope_ent *e = scope_find(p, t->s, t->len, &idx);
	if (e && e->kind != 2) {
		o->kind = e->kind == 1 ? O_PRED : O_REG;
		o->reg = idx;
		return 0;
	}
	if (e) {
		o->kind = O_SYM;
		o->sym = e->sym;
		return 0;
	}
	for (size_t i = 0; i < KILN_ARRAY_LEN(sreg_names); i++)
		if (strlen(sreg_names[i].n) == t->len && memcmp(sreg_names[i].n, t->s, t->len) == 0) {
			o->kind = O_SREG;
			o->sreg = sreg_names[i].id;
			return 0;
		}
	int32_t s = find_module_sym(p, t->s, t->len);
	if (s >= 0) {
		o->kind = O_SYM;
		o->sym = s;
		return 0;
	}
	if (t->s[0] == '%') {
		static const char *const unsupported[] = {"%env", "%pm", "%cluster", "%reserved"};
		for (size_t i = 0; i < KILN_ARRAY_LEN(unsupported); i++) {
			size_t n = strlen(unsupported[i]); /* a prefix of the token, never past its end */
			if (t->len > n && memcmp(t->s, unsupported[i], n) == 0)
				return punsup(p, t->line, t->s, t->len);
		}
		return perr(p, t->line, "undeclared register '%.*s'", (int)t->len, t->s);
	}
	o->kind = O_NAME;
	o->name = t->s;
	o->len = t->len;
	return 0;
}

static kiln_err parse_number(parser *p, opnd *o, bool neg)
{
	tok *t = next(p);
	o->line = t->line;
	o->neg = neg;
	switch (t->kind) {
	case T_INT:
		o->kind = O_INT;
		o->imm = neg ? (uint64_t)0 - t->ival : t->ival;
		return 0;
	case T_F32:
		o->kind = O_F32;
		o->imm = t->ival ^ (neg ? 0x80000000u : 0);
		return 0;
	case T_F64:
		o->kind = O_F64;
		o->imm = t->ival ^ (neg ? 0x8000000000000000ull : 0);
		return 0;
	case T_FDEC:
		o->kind = O_FDEC;
		o->dval = neg ? -t->dval : t->dval;
		return 0;
	default:
		return perr(p, t->line, "expected a number");
	}
}

static kiln_err parse_operand(parser *p, opnd *o)
{
	memset(o, 0, sizeof *o);
	o->sym = -1;
	o->reg = EMU_NOREG;
	tok *t = peek(p);
	o->line = t->line;
	if (accept(p, '[')) {
		o->kind = O_ADDR;
		tok *b = peek(p);
		if (b->kind == T_WORD) {
			opnd inner;
			memset(&inner, 0, sizeof inner);
			next(p);
			if (parse_name_operand(p, b, &inner))
				return p->err;
			if (inner.kind == O_REG)
				o->reg = inner.reg;
			else if (inner.kind == O_SYM)
				o->sym = inner.sym;
			else
				return perr(p, b->line, "bad address base '%.*s'", (int)b->len, b->s);
			if (accept(p, '+')) {
				bool neg = accept(p, '-');
				opnd n;
				memset(&n, 0, sizeof n);
				if (parse_number(p, &n, neg) || n.kind != O_INT)
					return p->err ? p->err : perr(p, b->line, "bad address offset");
				o->off = (int64_t)n.imm;
			} else if (accept(p, '-')) {
				opnd n;
				memset(&n, 0, sizeof n);
				if (parse_number(p, &n, true) || n.kind != O_INT)
					return p->err ? p->err : perr(p, b->line, "bad address offset");
				o->off = (int64_t)n.imm;
			}
		} else {
			opnd n;
			memset(&n, 0, sizeof n);
			if (parse_number(p, &n, accept(p, '-')) || n.kind != O_INT)
				return p->err ? p->err : perr(p, t->line, "bad address");
			o->off = (int64_t)n.imm;
		}
		return expect(p, ']');
	}
	if (accept(p, '{')) {
		o->kind = O_VEC;
		for (;;) {
			if (o->nvec == 8)
				return perr(p, t->line, "vector operand with more than 8 elements");
			velem *v = &o->vec[o->nvec++];
			opnd e;
			memset(&e, 0, sizeof e);
			tok *x = peek(p);
			if (x->kind == T_WORD) {
				next(p);
				if (parse_name_operand(p, x, &e))
					return p->err;
			} else if (parse_number(p, &e, accept(p, '-'))) {
				return p->err;
			}
			if (e.kind != O_REG && e.kind != O_INT && e.kind != O_F32 && e.kind != O_F64 &&
			    e.kind != O_FDEC && e.kind != O_SINK)
				return perr(p, x->line, "bad vector element");
			v->kind = e.kind;
			v->reg = e.reg;
			v->imm = e.imm;
			v->dval = e.dval;
			if (!accept(p, ','))
				break;
		}
		return expect(p, '}');
	}
	if (accept(p, '!')) {
		tok *x = next(p);
		if (x->kind != T_WORD || parse_name_operand(p, x, o))
			return p->err ? p->err : perr(p, x->line, "expected a predicate after '!'");
		if (o->kind != O_PRED)
			return perr(p, x->line, "'!' applies only to predicates");
		o->neg = true;
		return 0;
	}
	if (is_punct(t, '-')) {
		next(p);
		return parse_number(p, o, true);
	}
	if (t->kind == T_WORD) {
		next(p);
		if (parse_name_operand(p, t, o))
			return p->err;
		if (accept(p, '|')) {
			tok *x = next(p);
			opnd q;
			memset(&q, 0, sizeof q);
			if (x->kind != T_WORD || parse_name_operand(p, x, &q))
				return p->err ? p->err : perr(p, x->line, "expected a predicate after '|'");
			if (q.kind != O_PRED && q.kind != O_SINK)
				return perr(p, x->line, "expected a predicate after '|'");
			o->has_pair = true;
			o->pair = q.kind == O_PRED ? q.reg : EMU_NOPRED;
		}
		return 0;
	}
	if (t->kind == T_INT || t->kind == T_F32 || t->kind == T_F64 || t->kind == T_FDEC)
		return parse_number(p, o, false);
	return perr(p, t->line, "unexpected '%.*s' in operands", (int)(t->len > 20 ? 20 : t->len), t->s);
}

/* ---------------------------------------------------------------- constants */
static uint64_t imm_bits(const opnd *o, emu_type ty, double dv_in, uint8_t kind, uint64_t raw)
{
	(void)o;
	double dv = dv_in;
	bool isf = kind == O_F32 || kind == O_F64 || kind == O_FDEC;
	if (kind == O_F32) {
		float f;
		uint32_t b = (uint32_t)raw;
		memcpy(&f, &b, 4);
		dv = f;
	} else if (kind == O_F64) {
		memcpy(&dv, &raw, 8);
	}
	switch (ty) {
	case EMU_F32: {
		if (kind == O_F32)
			return (uint32_t)raw;
		float f = isf ? (float)dv : (float)(int64_t)raw;
		uint32_t b;
		memcpy(&b, &f, 4);
		return b;
	}
	case EMU_F64: {
		if (kind == O_F64)
			return raw;
		double d = isf ? dv : (double)(int64_t)raw;
		uint64_t b;
		memcpy(&b, &d, 8);
		return b;
	}
	default:
		if (kind == O_FDEC) {
			float f = (float)dv;
			uint32_t b;
			memcpy(&b, &f, 4);
			return b;
		}
		return raw;
	}
}

static kiln_err add_const(parser *p, uint8_t kind, int32_t sym, uint64_t value, uint32_t *out)
{
	emu_func *f = cur(p);
	for (uint32_t i = 0; i < f->nconsts; i++)
		if (f->consts[i].kind == kind && f->consts[i].sym == sym && f->consts[i].value == value) {
			*out = f->consts[i].reg;
			return 0;
		}
	if (grow((void **)&f->consts, &f->capconsts, f->nconsts, sizeof *f->consts))
		return KILN_ENOMEM;
	emu_const *c = &f->consts[f->nconsts++];
	memset(c, 0, sizeof *c);
	c->reg = p->nregs++;
	c->kind = kind;
	c->sym = sym;
	c->value = value;
	*out = c->reg;
	return 0;
}

/* A source operand as a register index (immediates, symbols, special registers become
 * pre-filled registers). ty decides how literals are encoded. */
static kiln_err src(parser *p, const opnd *o, emu_type ty, uint32_t *out)
{
	switch (o->kind) {
	case O_REG:
		*out = o->reg;
		return 0;
	case O_INT: case O_F32: case O_F64: case O_FDEC: {
		uint64_t v = imm_bits(o, ty, o->dval, o->kind, o->imm);
		uint32_t sz = emu_type_size(ty);
		if (sz && sz < 8)
			v &= (1ull << (sz * 8)) - 1;
		if (emu_type_is_signed(ty) && sz < 8 && sz) {
			uint64_t sb = 1ull << (sz * 8 - 1);
			v = (v ^ sb) - sb;
		}
		return add_const(p, CONST_IMM, -1, v, out);
	}
	case O_SYM:
		return add_const(p, CONST_SYM, o->sym, 0, out);
	case O_SREG:
		if (o->sreg >= 1000)
			return punsup(p, o->line, "%clock as an operand (use mov)", 29);
		return add_const(p, CONST_SREG, o->sreg, 0, out);
	case O_PRED:
		return perr(p, o->line, "predicate used where a value is expected");
	case O_VEC:
		return perr(p, o->line, "vector operand not allowed here");
	case O_ADDR:
		return perr(p, o->line, "address operand not allowed here");
	default:
		return perr(p, o->line, "bad operand");
	}
}

static kiln_err dst(parser *p, const opnd *o, uint32_t *out)
{
	if (o->kind == O_REG) {
		*out = o->reg;
		return 0;
	}
	if (o->kind == O_SINK) {
		*out = p->nregs++;
		return 0;
	}
	if (o->kind == O_PRED)
		return perr(p, o->line, "predicate register where a value register is expected");
	return perr(p, o->line, "destination must be a register");
}

/* The common shape "d, a, b, c": a destination and three sources of the given types. */
static kiln_err dst_abc(parser *p, const opnd *o, emu_inst *in, emu_type ta, emu_type tb, emu_type tc)
{
	if (dst(p, &o[0], &in->d) || src(p, &o[1], ta, &in->a) || src(p, &o[2], tb, &in->b) ||
	    src(p, &o[3], tc, &in->c))
		return p->err;
	return 0;
}

/* A predicate source; an immediate is a constant predicate and its '-' is not a '!'. */
static kiln_err psrc(parser *p, opnd *o, uint32_t *out)
{
	if (o->kind == O_PRED) {
		*out = o->reg;
		return 0;
	}
	if (o->kind == O_INT) {
		/* any nonzero immediate (1, -1, 0x1) is true: predicate 1 is all-ones, 0 all-zeros */
		*out = o->imm != 0;
		o->neg = false;
		return 0;
	}
	return perr(p, o->line, "expected a predicate operand");
}

static kiln_err pdst(parser *p, const opnd *o, uint32_t *out)
{
	if (o->kind == O_PRED) {
		*out = o->reg;
		return 0;
	}
	if (o->kind == O_SINK) {
		*out = p->npreds++;
		return 0;
	}
	return perr(p, o->line, "expected a predicate destination");
}

/* ---------------------------------------------------------------- instructions */
typedef struct mods {
	const char *s[24];
	uint8_t n[24];
	uint32_t cnt, used;
	int types[4];
	int ntypes;
	uint32_t line;
	const char *op;
	uint32_t oplen;
} mods;

static bool has(mods *m, const char *w)
{
	size_t n = strlen(w);
	for (uint32_t i = 0; i < m->cnt; i++)
		if (m->n[i] == n && memcmp(m->s[i], w, n) == 0) {
			m->used |= 1u << i;
			return true;
		}
	return false;
}

/* modifiers with no effect in this sequential, cache-less model */
static const char *const ignorable[] = {
	"sync", "aligned", "uni", "nc", "ca", "cg", "cs", "lu", "cv", "wb", "wt", "volatile",
	"relaxed", "acquire", "release", "acq_rel", "sc", "weak", "mmio", "gpu", "sys", "cta",
	"cluster", "full", "L2::64B", "L2::128B", "L2::256B", "L1::evict_normal",
	"L1::evict_unchanged", "L1::evict_first", "L1::evict_last", "L1::no_allocate",
	"L2::evict_first", "L2::evict_last", "L2::evict_normal", "noftz", "shared::cta",
	"global", "shared", "local", "param", "const", "generic", "to", "unified", NULL,
};

static kiln_err check_mods(parser *p, mods *m)
{
	for (uint32_t i = 0; i < m->cnt; i++) {
		if (m->used & (1u << i))
			continue;
		if (type_of(m->s[i], m->n[i]) >= 0)
			continue;
		bool ok = false;
		for (const char *const *g = ignorable; *g; g++)
			if (strlen(*g) == m->n[i] && memcmp(*g, m->s[i], m->n[i]) == 0)
				ok = true;
		if (!ok)
			return punsup(p, m->line, m->op, m->oplen);
	}
	return 0;
}

static int mods_rnd(mods *m)
{
	static const char *const names[] = {"", "rn", "rz", "rm", "rp", "rni", "rzi", "rmi", "rpi"};
	for (int i = 1; i < 9; i++)
		if (has(m, names[i]))
			return i;
	return EMU_RND_NONE;
}

static int mods_cmp(mods *m)
{
	static const char *const names[] = {"eq", "ne", "lt", "le", "gt", "ge", "lo", "ls", "hi",
					    "hs", "equ", "neu", "ltu", "leu", "gtu", "geu", "num", "nan"};
	for (int i = 0; i < 18; i++)
		if (has(m, names[i]))
			return i;
	return -1;
}

static int mods_space(mods *m)
{
	if (has(m, "global"))
		return KILN_EMU_SPACE_GLOBAL;
	if (has(m, "shared") || has(m, "shared::cta"))
		return KILN_EMU_SPACE_SHARED;
	if (has(m, "local"))
		return KILN_EMU_SPACE_LOCAL;
	if (has(m, "const"))
		return KILN_EMU_SPACE_CONST;
	if (has(m, "param"))
		return KILN_EMU_SPACE_PARAM;
	return KILN_EMU_SPACE_NONE; /* generic */
}

/* Memory-order bits (emu_inst.mode2 of ld/st/atom/red, MO_*) for the global racecheck:
 * .volatile/.relaxed/.acquire/.release/.acq_rel/.sc accesses and atomics are not plain. */
static uint8_t mods_order(mods *m, bool atomic)
{
	uint8_t o = atomic || has(m, "volatile") || has(m, "relaxed") ? MO_SYNC : 0;
	if (has(m, "acquire"))
		o |= MO_SYNC | MO_ACQ;
	if (has(m, "release"))
		o |= MO_SYNC | MO_REL;
	if (has(m, "acq_rel") || has(m, "sc"))
		o |= MO_SYNC | MO_ACQ | MO_REL;
	if (has(m, "cta"))
		o |= MO_CTA;
	return o;
}

static kiln_err need_ops(parser *p, mods *m, int nops, int lo, int hi)
{
	if (nops < lo || nops > hi)
		return perr(p, m->line, "%.*s: expected %d operand%s, found %d", (int)m->oplen, m->op, lo,
			    lo == 1 ? "" : "s", nops);
	return 0;
}

static bool base_is(const mods *m, const char *b)
{
	size_t n = strlen(b);
	size_t bl = 0;
	while (bl < m->oplen && m->op[bl] != '.')
		bl++;
	return bl == n && memcmp(m->op, b, n) == 0;
}

static int fclass(emu_type t)
{
	if (t == EMU_F64)
		return CLS_FP64;
	if (t == EMU_F16 || t == EMU_F16X2 || t == EMU_BF16 || t == EMU_BF16X2)
		return CLS_HALF2;
	if (t == EMU_F32)
		return CLS_FP32;
	return CLS_INT;
}

static bool is_half(emu_type t)
{
	return t == EMU_F16 || t == EMU_F16X2 || t == EMU_BF16 || t == EMU_BF16X2;
}

static kiln_err add_inst(parser *p, emu_inst **out)
{
	emu_func *f = cur(p);
	if (grow((void **)&f->code, &f->capcode, f->ncode, sizeof *f->code))
		return KILN_ENOMEM;
	emu_inst *in = &f->code[f->ncode++];
	memset(in, 0, sizeof *in);
	in->guard = EMU_NOPRED;
	in->d = in->d2 = in->a = in->b = in->c = in->e = EMU_NOREG;
	for (int i = 0; i < 4; i++)
		in->v[i] = EMU_NOREG;
	in->sym = -1;
	in->vec = 1;
	*out = in;
	return 0;
}

static kiln_err add_fixup(parser *p, const opnd *o, uint32_t inst)
{
	if (o->kind != O_NAME)
		return perr(p, o->line, "branch target must be a label");
	if (p->nfixups == p->capfixups) {
		size_t nc = p->capfixups ? p->capfixups * 2 : 64;
		struct fixup *q = kiln_realloc(p->fixups, nc * sizeof *q);
		if (!q)
			return KILN_ENOMEM;
		p->fixups = q;
		p->capfixups = nc;
	}
	p->fixups[p->nfixups].name = o->name;
	p->fixups[p->nfixups].len = o->len;
	p->fixups[p->nfixups].inst = inst;
	p->fixups[p->nfixups].line = o->line;
	p->nfixups++;
	return 0;
}

/* Memory operand: register base and/or symbol plus offset. */
static kiln_err addr_op(parser *p, const opnd *o, emu_inst *in)
{
	if (o->kind == O_ADDR) {
		in->a = o->reg;
		in->sym = o->sym;
		in->imm = o->off;
		return 0;
	}
	if (o->kind == O_SYM) {
		in->sym = o->sym;
		return 0;
	}
	if (o->kind == O_REG) {
		in->a = o->reg;
		return 0;
	}
	return perr(p, o->line, "expected an address operand [..]");
}

static kiln_err decode_call(parser *p, mods *m, uint32_t guard, bool gneg, uint32_t line);

static kiln_err decode(parser *p, mods *m, opnd *o, int n, emu_inst *in)
{
	emu_type t0 = m->ntypes > 0 ? (emu_type)m->types[0] : EMU_B32;
	emu_type t1 = m->ntypes > 1 ? (emu_type)m->types[1] : t0;
	in->type = (uint8_t)t0;
	in->type2 = (uint8_t)t1;
	in->cls = CLS_INT;
	if (has(m, "ftz"))
		in->flags |= F_FTZ;
	if (has(m, "sat"))
		in->flags |= F_SAT;
	if (has(m, "approx"))
		in->flags |= F_APPROX;
	in->rnd = (uint8_t)mods_rnd(m);
	in->nops = (uint8_t)n;

#define NEED(lo, hi) do { if (need_ops(p, m, n, lo, hi)) return p->err; } while (0)
#define SRC(i, field, ty) do { if (src(p, &o[i], ty, &in->field)) return p->err; } while (0)
#define DST(i) do { if (dst(p, &o[i], &in->d)) return p->err; } while (0)
#define ABC(ta, tb, tc) do { if (dst_abc(p, o, in, ta, tb, tc)) return p->err; } while (0)
#define NEEDTYPE() do { if (m->ntypes < 1) return perr(p, m->line, "%.*s: missing type", (int)m->oplen, m->op); } while (0)

	if (base_is(m, "mov")) {
		NEED(2, 2);
		NEEDTYPE();
		if (t0 == EMU_PRED) {
			in->op = OP_MOV_PRED;
			if (pdst(p, &o[0], &in->d) || psrc(p, &o[1], &in->a))
				return p->err;
			in->mode2 = o[1].neg;
			return 0;
		}
		if (o[0].kind == O_VEC || o[1].kind == O_VEC) {
			opnd *v = o[0].kind == O_VEC ? &o[0] : &o[1];
			if (o[0].kind == O_VEC && o[1].kind == O_VEC)
				return perr(p, m->line, "mov: both operands are vectors");
			uint32_t tot = emu_type_size(t0);
			if (v->nvec < 2 || v->nvec > 4 || tot % v->nvec)
				return perr(p, m->line, "mov: vector of %u elements does not fit .%s", v->nvec, "type");
			in->size = (uint8_t)(tot / v->nvec);
			in->vec = (uint8_t)v->nvec;
			emu_type et = in->size == 1 ? EMU_B8 : in->size == 2 ? EMU_B16 : in->size == 4 ? EMU_B32 : EMU_B64;
			for (uint32_t i = 0; i < v->nvec; i++) {
				velem *e = &v->vec[i];
				opnd tmp;
				memset(&tmp, 0, sizeof tmp);
				tmp.kind = e->kind;
				tmp.reg = e->reg;
				tmp.imm = e->imm;
				tmp.dval = e->dval;
				tmp.line = m->line;
				if (o[0].kind == O_VEC) {
					if (dst(p, &tmp, &in->v[i]))
						return p->err;
				} else if (src(p, &tmp, et, &in->v[i])) {
					return p->err;
				}
			}
			if (o[0].kind == O_VEC) {
				in->op = OP_UNPACK;
				SRC(1, a, t0);
			} else {
				in->op = OP_PACK;
				DST(0);
			}
			return 0;
		}
		if (o[1].kind == O_SREG && o[1].sreg >= 1000) {
			in->op = OP_CLOCK;
			in->mode = (uint8_t)(o[1].sreg - 1000);
			DST(0);
			return 0;
		}
		in->op = OP_MOV;
		DST(0);
		SRC(1, a, t0);
		return 0;
	}
	if (base_is(m, "selp")) {
		NEED(4, 4);
		NEEDTYPE();
		in->op = OP_SELP;
		DST(0);
		SRC(1, a, t0);
		SRC(2, b, t0);
		return psrc(p, &o[3], &in->c);
	}
	if (base_is(m, "slct")) {
		NEED(4, 4);
		in->op = OP_SLCT;
		ABC(t0, t0, t1);
		return 0;
	}
	if (base_is(m, "setp") || base_is(m, "set")) {
		bool isset = base_is(m, "set");
		int cmp = mods_cmp(m);
		if (cmp < 0)
			return perr(p, m->line, "%.*s: missing comparison", (int)m->oplen, m->op);
		in->mode = (uint8_t)cmp;
		in->mode2 = has(m, "and") ? BOOL_AND : has(m, "or") ? BOOL_OR : has(m, "xor") ? BOOL_XOR : BOOL_NONE;
		NEEDTYPE();
		emu_type st = isset ? t1 : t0;
		if (isset && m->ntypes < 2)
			return perr(p, m->line, "set: needs a destination and a source type");
		in->type2 = (uint8_t)st;
		in->cls = (uint8_t)(emu_type_is_float(st) ? fclass(st) : CLS_INT);
		NEED(in->mode2 ? 4 : 3, in->mode2 ? 4 : 3);
		if (isset) {
			in->op = OP_SET;
			DST(0);
		} else {
			in->op = OP_SETP;
			if (pdst(p, &o[0], &in->d))
				return p->err;
			in->d2 = EMU_NOREG;
			if (o[0].has_pair)
				in->d2 = o[0].pair == EMU_NOPRED ? p->npreds++ : o[0].pair;
		}
		SRC(1, a, st);
		SRC(2, b, st);
		if (in->mode2) {
			if (psrc(p, &o[3], &in->c))
				return p->err;
			if (o[3].neg)
				in->mode2 |= 0x80;
		}
		return 0;
	}
	if (base_is(m, "and") || base_is(m, "or") || base_is(m, "xor") || base_is(m, "not") ||
	    base_is(m, "cnot")) {
		NEEDTYPE();
		bool un = base_is(m, "not") || base_is(m, "cnot");
		NEED(un ? 2 : 3, un ? 2 : 3);
		if (t0 == EMU_PRED) {
			in->op = base_is(m, "and") ? OP_AND_PRED : base_is(m, "or") ? OP_OR_PRED :
				 base_is(m, "xor") ? OP_XOR_PRED : OP_NOT_PRED;
			if (base_is(m, "cnot"))
				return punsup(p, m->line, m->op, m->oplen);
			if (pdst(p, &o[0], &in->d) || psrc(p, &o[1], &in->a))
				return p->err;
			if (o[1].neg)
				in->mode2 |= 1;
			if (!un) {
				if (psrc(p, &o[2], &in->b))
					return p->err;
				if (o[2].neg)
					in->mode2 |= 2;
			}
			return 0;
		}
		in->op = base_is(m, "and") ? OP_AND : base_is(m, "or") ? OP_OR : base_is(m, "xor") ? OP_XOR :
			 base_is(m, "not") ? OP_NOT : OP_CNOT;
		DST(0);
		SRC(1, a, t0);
		if (!un)
			SRC(2, b, t0);
		return 0;
	}
	/* arithmetic that exists for int and float types */
	static const struct { const char *n; int iop, fop, hop, nsrc; } arith[] = {
		{"add", OP_ADD, OP_FADD, OP_HADD, 2}, {"sub", OP_SUB, OP_FSUB, OP_HSUB, 2},
		{"mul", OP_MUL_LO, OP_FMUL, OP_HMUL, 2}, {"mad", OP_MAD_LO, OP_FFMA, OP_HFMA, 3},
		{"fma", -1, OP_FFMA, OP_HFMA, 3}, {"div", OP_DIV, OP_FDIV, -1, 2},
		{"rem", OP_REM, -1, -1, 2}, {"abs", OP_ABS, OP_FABS, OP_HABS, 1},
		{"neg", OP_NEG, OP_FNEG, OP_HNEG, 1}, {"min", OP_MIN, OP_FMIN, OP_HMIN, 2},
		{"max", OP_MAX, OP_FMAX, OP_HMAX, 2}, {"addc", OP_ADD, -1, -1, 2},
		{"subc", OP_SUB, -1, -1, 2}, {"madc", OP_MAD_LO, -1, -1, 3},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(arith); i++) {
		if (!base_is(m, arith[i].n))
			continue;
		NEEDTYPE();
		NEED(1 + arith[i].nsrc, 1 + arith[i].nsrc);
		/* extended precision: .cc writes the carry flag, addc/subc/madc read it */
		bool carry_out = has(m, "cc"), carry_in = base_is(m, "addc") || base_is(m, "subc") || base_is(m, "madc");
		if (carry_out || carry_in) {
			if (emu_type_is_float(t0) || is_half(t0) || (emu_type_size(t0) != 4 && emu_type_size(t0) != 8))
				return punsup(p, m->line, m->op, m->oplen);
			in->flags |= carry_out ? F_CC : 0;
			in->mode2 = carry_in;
		}
		if (has(m, "NaN"))
			in->mode = 1;
		if (has(m, "xorsign") || has(m, "abs") || has(m, "relu"))
			return punsup(p, m->line, m->op, m->oplen);
		if (is_half(t0)) {
			if (arith[i].hop < 0)
				return punsup(p, m->line, m->op, m->oplen);
			in->op = (uint16_t)arith[i].hop;
			in->cls = CLS_HALF2;
		} else if (emu_type_is_float(t0)) {
			if (arith[i].fop < 0)
				return punsup(p, m->line, m->op, m->oplen);
			in->op = (uint16_t)arith[i].fop;
			in->cls = (uint8_t)fclass(t0);
			if (in->op == OP_FDIV && !(in->flags & F_APPROX) && !in->rnd && !has(m, "full"))
				return perr(p, m->line, "div.%s needs .approx, .full or a rounding modifier",
					    t0 == EMU_F64 ? "f64" : "f32");
			if (has(m, "full")) {
				in->flags |= F_APPROX;
				in->mode = 2; /* div.full: exec tells it from div.approx */
			}
		} else {
			if (arith[i].iop < 0)
				return perr(p, m->line, "%.*s: needs a float type", (int)m->oplen, m->op);
			in->op = (uint16_t)arith[i].iop;
			bool hi = has(m, "hi"), wide = has(m, "wide");
			has(m, "lo");
			if (in->op == OP_MUL_LO && hi)
				in->op = OP_MUL_HI;
			else if (in->op == OP_MUL_LO && wide)
				in->op = OP_MUL_WIDE;
			else if (in->op == OP_MAD_LO && hi)
				in->op = OP_MAD_HI;
			else if (in->op == OP_MAD_LO && wide)
				in->op = OP_MAD_WIDE;
			if ((carry_out || carry_in) && in->op != OP_ADD && in->op != OP_SUB && in->op != OP_MAD_LO &&
			    in->op != OP_MAD_HI)
				return punsup(p, m->line, m->op, m->oplen);
		}
		DST(0);
		emu_type st = t0;
		SRC(1, a, st);
		if (arith[i].nsrc >= 2)
			SRC(2, b, st);
		if (arith[i].nsrc >= 3) {
			emu_type ct = (in->op == OP_MAD_WIDE) ? (emu_type_is_signed(t0) ? EMU_S64 : EMU_U64) : st;
			SRC(3, c, ct);
		}
		return 0;
	}
	if (base_is(m, "mul24") || base_is(m, "mad24")) {
		bool mad = base_is(m, "mad24");
		NEED(mad ? 4 : 3, mad ? 4 : 3);
		bool hi = has(m, "hi");
		has(m, "lo");
		in->op = mad ? OP_MAD24_LO : hi ? OP_MUL24_HI : OP_MUL24_LO;
		if (mad && hi)
			in->mode = 1; /* mad24.hi: OP_MAD24_LO with the high half of the product */
		DST(0);
		SRC(1, a, t0);
		SRC(2, b, t0);
		if (mad)
			SRC(3, c, t0);
		return 0;
	}
	if (base_is(m, "sad")) {
		NEED(4, 4);
		in->op = OP_SAD;
		ABC(t0, t0, t0);
		return 0;
	}
	if (base_is(m, "shl") || base_is(m, "shr")) {
		NEED(3, 3);
		in->op = base_is(m, "shl") ? OP_SHL : OP_SHR;
		DST(0);
		SRC(1, a, t0);
		SRC(2, b, EMU_U32);
		return 0;
	}
	if (base_is(m, "shf")) {
		NEED(4, 4);
		bool l = has(m, "l");
		if (!l && !has(m, "r"))
			return perr(p, m->line, "shf: needs .l or .r");
		if (has(m, "clamp"))
			in->flags |= F_CLAMP;
		else if (!has(m, "wrap"))
			return perr(p, m->line, "shf: needs .wrap or .clamp");
		in->op = l ? OP_SHF_L : OP_SHF_R;
		ABC(EMU_B32, EMU_B32, EMU_U32);
		return 0;
	}
	if (base_is(m, "popc") || base_is(m, "clz") || base_is(m, "brev") || base_is(m, "bfind")) {
		NEED(2, 2);
		in->op = base_is(m, "popc") ? OP_POPC : base_is(m, "clz") ? OP_CLZ : base_is(m, "brev") ? OP_BREV : OP_BFIND;
		if (in->op == OP_BFIND && has(m, "shiftamt"))
			in->mode = 1;
		DST(0);
		SRC(1, a, t0);
		return 0;
	}
	if (base_is(m, "bfe")) {
		NEED(4, 4);
		in->op = OP_BFE;
		ABC(t0, EMU_U32, EMU_U32);
		return 0;
	}
	if (base_is(m, "bfi")) {
		NEED(5, 5);
		in->op = OP_BFI;
		ABC(t0, t0, EMU_U32);
		SRC(4, e, EMU_U32);
		return 0;
	}
	if (base_is(m, "prmt")) {
		NEED(4, 4);
		static const char *const pm[] = {"f4e", "b4e", "rc8", "ecl", "ecr", "rc16"};
		for (int i = 0; i < 6; i++)
			if (has(m, pm[i]))
				in->mode = (uint8_t)(i + 1);
		in->op = OP_PRMT;
		ABC(EMU_B32, EMU_B32, EMU_B32);
		return 0;
	}
	if (base_is(m, "lop3")) {
		NEED(5, 5);
		if (o[4].kind != O_INT || o[4].imm > 255)
			return perr(p, m->line, "lop3: the lookup table must be an immediate 0-255");
		in->op = OP_LOP3;
		in->mode = (uint8_t)o[4].imm;
		ABC(EMU_B32, EMU_B32, EMU_B32);
		return 0;
	}
	if (base_is(m, "dp4a") || base_is(m, "dp2a")) {
		NEED(4, 4);
		if (m->ntypes != 2)
			return perr(p, m->line, "%.*s: needs two source types", (int)m->oplen, m->op);
		in->op = OP_DP4A;
		if (base_is(m, "dp2a")) {
			bool hi = has(m, "hi");
			if (!hi && !has(m, "lo"))
				return perr(p, m->line, "dp2a: needs .lo or .hi");
			in->op = OP_DP2A;
			in->mode = hi;
		}
		ABC(EMU_B32, EMU_B32, EMU_B32);
		return 0;
	}
	if (base_is(m, "fns")) {
		NEED(4, 4);
		in->op = OP_FNS;
		ABC(EMU_B32, EMU_U32, EMU_S32);
		return 0;
	}
	static const struct { const char *n; int op; } unary_f[] = {
		{"rcp", OP_RCP}, {"sqrt", OP_SQRT}, {"rsqrt", OP_RSQRT}, {"ex2", OP_EX2}, {"lg2", OP_LG2},
		{"sin", OP_SIN}, {"cos", OP_COS}, {"tanh", OP_TANH},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(unary_f); i++) {
		if (!base_is(m, unary_f[i].n))
			continue;
		NEED(2, 2);
		NEEDTYPE();
		in->op = (uint16_t)unary_f[i].op;
		if (!emu_type_is_float(t0))
			return perr(p, m->line, "%.*s: needs a float type", (int)m->oplen, m->op);
		/* ex2 / tanh also exist for f16, bf16 and their x2 packings (.approx only) */
		if (t0 != EMU_F32 && t0 != EMU_F64 &&
		    ((in->op != OP_EX2 && in->op != OP_TANH) || !is_half(t0) || !(in->flags & F_APPROX)))
			return punsup(p, m->line, m->op, m->oplen);
		if (!(in->flags & F_APPROX) && !in->rnd)
			return perr(p, m->line, "%.*s: needs .approx or a rounding modifier", (int)m->oplen, m->op);
		in->cls = t0 == EMU_F64 ? CLS_FP64 : CLS_MUFU;
		DST(0);
		SRC(1, a, t0);
		return 0;
	}
	if (base_is(m, "copysign")) {
		NEED(3, 3);
		in->op = OP_COPYSIGN;
		in->cls = (uint8_t)fclass(t0);
		DST(0);
		SRC(1, a, t0);
		SRC(2, b, t0);
		return 0;
	}
	if (base_is(m, "testp")) {
		NEED(2, 2);
		static const char *const tn[] = {"finite", "infinite", "number", "notanumber", "normal", "subnormal"};
		int k = -1;
		for (int i = 0; i < 6; i++)
			if (has(m, tn[i]))
				k = i;
		if (k < 0)
			return perr(p, m->line, "testp: missing test");
		in->op = OP_TESTP;
		in->mode = (uint8_t)k;
		in->cls = (uint8_t)fclass(t0);
		if (pdst(p, &o[0], &in->d))
			return p->err;
		SRC(1, a, t0);
		return 0;
	}
	if (base_is(m, "cvt")) {
		if (m->ntypes < 2) /* NVRTC's cvt always has two: a type we do not know (fp8, tf32 ...) */
			return punsup(p, m->line, m->op, m->oplen);
		in->cls = CLS_CVT;
		bool satf = has(m, "satfinite"), relu = has(m, "relu");
		if (t0 == EMU_B128)
			return punsup(p, m->line, m->op, m->oplen);
		if (satf || relu) {
			/* .satfinite / .relu: only float narrowing to f16, bf16 (and their x2) here */
			if (t1 != EMU_F32 || (t0 != EMU_F16 && t0 != EMU_BF16 && t0 != EMU_F16X2 && t0 != EMU_BF16X2))
				return punsup(p, m->line, m->op, m->oplen);
			in->mode = (uint8_t)((satf ? 1 : 0) | (relu ? 2 : 0));
		}
		if (t0 == EMU_F16X2 || t0 == EMU_BF16X2) {
			if (t1 != EMU_F32)
				return punsup(p, m->line, m->op, m->oplen);
			NEED(3, 3);
			in->op = OP_CVT_PACK;
			DST(0);
			SRC(1, a, t1);
			SRC(2, b, t1);
			return 0;
		}
		NEED(2, 2);
		in->op = OP_CVT;
		DST(0);
		SRC(1, a, t1);
		return 0;
	}
	if (base_is(m, "cvta")) {
		NEED(2, 2);
		bool to = has(m, "to");
		int sp = mods_space(m);
		if (sp == KILN_EMU_SPACE_NONE || sp == KILN_EMU_SPACE_PARAM)
			return punsup(p, m->line, m->op, m->oplen);
		in->op = OP_CVTA;
		in->space = (uint8_t)sp;
		in->mode = to;
		DST(0);
		SRC(1, a, EMU_U64);
		return 0;
	}
	if (base_is(m, "ld") || base_is(m, "ldu") || base_is(m, "st")) {
		bool st = base_is(m, "st");
		bool hint = has(m, "L2::cache_hint");
		NEED(2, hint ? 3 : 2);
		NEEDTYPE();
		int sp = mods_space(m);
		if (has(m, "v2"))
			in->vec = 2;
		else if (has(m, "v4"))
			in->vec = 4;
		else if (has(m, "v8"))
			return punsup(p, m->line, m->op, m->oplen);
		if (has(m, "nc"))
			in->flags |= F_NC;
		in->mode2 = mods_order(m, false);
		if (in->mode2 & MO_SYNC)
			in->flags |= F_VOLATILE;
		in->size = (uint8_t)emu_type_size(t0);
		if (t0 == EMU_B128 || t0 == EMU_PRED)
			return punsup(p, m->line, m->op, m->oplen);
		in->space = (uint8_t)sp;
		in->cls = CLS_MEM;
		in->op = st ? OP_ST : OP_LD;
		opnd *ad = st ? &o[0] : &o[1];
		opnd *val = st ? &o[1] : &o[0];
		if (addr_op(p, ad, in))
			return p->err;
		if (in->vec > 1) {
			if (val->kind != O_VEC || val->nvec != in->vec)
				return perr(p, m->line, "%.*s: expected a %u-element vector", (int)m->oplen, m->op, in->vec);
			for (uint32_t i = 0; i < in->vec; i++) {
				opnd tmp;
				memset(&tmp, 0, sizeof tmp);
				tmp.kind = val->vec[i].kind;
				tmp.reg = val->vec[i].reg;
				tmp.imm = val->vec[i].imm;
				tmp.dval = val->vec[i].dval;
				tmp.line = m->line;
				if (st ? src(p, &tmp, t0, &in->v[i]) : dst(p, &tmp, &in->v[i]))
					return p->err;
			}
		} else {
			if (st ? src(p, val, t0, &in->v[0]) : dst(p, val, &in->v[0]))
				return p->err;
		}
		if (sp == KILN_EMU_SPACE_PARAM && in->sym < 0)
			return punsup(p, m->line, "ld.param through a register address", 36);
		return 0;
	}
	if (base_is(m, "atom") || base_is(m, "red")) {
		bool red = base_is(m, "red");
		NEEDTYPE();
		static const char *const an[] = {"add", "min", "max", "exch", "cas", "and", "or", "xor", "inc", "dec"};
		int k = -1;
		for (int i = 0; i < 10; i++)
			if (has(m, an[i]))
				k = i;
		if (k < 0)
			return perr(p, m->line, "%.*s: missing operation", (int)m->oplen, m->op);
		if (has(m, "v2") || has(m, "v4") || has(m, "v8"))
			return punsup(p, m->line, m->op, m->oplen);
		in->mode = (uint8_t)k;
		in->mode2 = mods_order(m, true);
		int sp = mods_space(m);
		in->space = (uint8_t)sp;
		in->size = (uint8_t)emu_type_size(t0);
		in->cls = CLS_MEM;
		in->op = red ? OP_RED : OP_ATOM;
		/* half atomics: atom/red.add.noftz.{f16,f16x2,bf16,bf16x2} only */
		if (t0 == EMU_B128 || (is_half(t0) && (k != ATOM_ADD || !has(m, "noftz"))))
			return punsup(p, m->line, m->op, m->oplen);
		int nsrc = k == ATOM_CAS ? 2 : 1;
		int base = red ? 0 : 1;
		NEED(base + 1 + nsrc, base + 1 + nsrc);
		if (!red)
			DST(0);
		if (addr_op(p, &o[base], in))
			return p->err;
		SRC(base + 1, b, t0);
		if (nsrc == 2)
			SRC(base + 2, c, t0);
		return 0;
	}
	if (base_is(m, "shfl")) {
		NEED(4, 5);
		static const char *const sn[] = {"up", "down", "bfly", "idx"};
		int k = -1;
		for (int i = 0; i < 4; i++)
			if (has(m, sn[i]))
				k = i;
		if (k < 0)
			return perr(p, m->line, "shfl: missing mode");
		in->op = OP_SHFL;
		in->mode = (uint8_t)k;
		in->cls = CLS_SHFL;
		DST(0);
		in->d2 = EMU_NOREG;
		if (o[0].has_pair)
			in->d2 = o[0].pair == EMU_NOPRED ? p->npreds++ : o[0].pair;
		SRC(1, a, EMU_B32);
		SRC(2, b, EMU_U32);
		SRC(3, c, EMU_U32);
		if (n == 5)
			SRC(4, e, EMU_U32);
		else {
			opnd full;
			memset(&full, 0, sizeof full);
			full.kind = O_INT;
			full.imm = 0xFFFFFFFFu;
			if (src(p, &full, EMU_U32, &in->e))
				return p->err;
		}
		return 0;
	}
	if (base_is(m, "vote")) {
		NEED(2, 3);
		static const char *const vn[] = {"all", "any", "uni", "ballot"};
		int k = -1;
		for (int i = 0; i < 4; i++)
			if (has(m, vn[i]))
				k = i;
		if (k < 0)
			return perr(p, m->line, "vote: missing mode");
		in->op = OP_VOTE;
		in->mode = (uint8_t)k;
		in->cls = CLS_SHFL;
		if (k == VOTE_BALLOT)
			DST(0);
		else if (pdst(p, &o[0], &in->d))
			return p->err;
		if (psrc(p, &o[1], &in->a))
			return p->err;
		in->mode2 = o[1].neg;
		if (n == 3)
			SRC(2, e, EMU_U32);
		else {
			opnd full;
			memset(&full, 0, sizeof full);
			full.kind = O_INT;
			full.imm = 0xFFFFFFFFu;
			if (src(p, &full, EMU_U32, &in->e))
				return p->err;
		}
		return 0;
	}
	if (base_is(m, "match")) {
		NEED(3, 3);
		bool all = has(m, "all");
		if (!all && !has(m, "any"))
			return perr(p, m->line, "match: needs .any or .all");
		in->op = OP_MATCH;
		in->mode = all;
		in->cls = CLS_SHFL;
		DST(0);
		in->d2 = EMU_NOREG;
		if (o[0].has_pair)
			in->d2 = o[0].pair == EMU_NOPRED ? p->npreds++ : o[0].pair;
		SRC(1, a, t0);
		SRC(2, e, EMU_U32);
		return 0;
	}
	if (base_is(m, "redux")) {
		NEED(3, 3);
		static const char *const rn[] = {"add", "min", "max", "and", "or", "xor"};
		static const int rk[] = {ATOM_ADD, ATOM_MIN, ATOM_MAX, ATOM_AND, ATOM_OR, ATOM_XOR};
		int k = -1;
		for (int i = 0; i < 6; i++)
			if (has(m, rn[i]))
				k = rk[i];
		if (k < 0 || emu_type_is_float(t0))
			return punsup(p, m->line, m->op, m->oplen);
		in->op = OP_REDUX;
		in->mode = (uint8_t)k;
		in->cls = CLS_SHFL;
		DST(0);
		SRC(1, a, t0);
		SRC(2, e, EMU_U32);
		return 0;
	}
	if (base_is(m, "activemask")) {
		NEED(1, 1);
		in->op = OP_ACTIVEMASK;
		in->cls = CLS_SHFL;
		DST(0);
		return 0;
	}
	if (base_is(m, "bar") || base_is(m, "barrier")) {
		if (has(m, "warp")) {
			NEED(1, 1);
			in->op = OP_WARPSYNC;
			in->cls = CLS_BAR;
			SRC(0, a, EMU_U32);
			return 0;
		}
		in->op = OP_BAR;
		in->cls = CLS_BAR;
		in->b = EMU_NOREG;
		if (has(m, "arrive")) { /* bar.arrive a, b: counts, does not wait */
			NEED(2, 2);
			in->mode = BAR_ARRIVE;
			SRC(0, a, EMU_U32);
			SRC(1, b, EMU_U32);
			return 0;
		}
		has(m, "sync");
		if (has(m, "red")) {
			int k = has(m, "popc") ? 1 : has(m, "and") ? 2 : has(m, "or") ? 3 : 0;
			if (!k)
				return perr(p, m->line, "bar.red: needs .popc, .and or .or");
			in->mode = (uint8_t)k;
			NEED(3, 4);
			if (k == 1)
				DST(0);
			else if (pdst(p, &o[0], &in->d))
				return p->err;
			SRC(1, a, EMU_U32);
			if (n == 4)
				SRC(2, b, EMU_U32);
			if (psrc(p, &o[n - 1], &in->c))
				return p->err;
			in->mode2 = o[n - 1].neg;
			return 0;
		}
		NEED(1, 2);
		SRC(0, a, EMU_U32);
		if (n == 2)
			SRC(1, b, EMU_U32);
		return 0;
	}
	if ((base_is(m, "membar") || base_is(m, "fence")) &&
	    !(has(m, "proxy") && (has(m, "tensormap") || has(m, "async")))) {
		/* orders this warp's memory accesses: a release for the global racecheck */
		m->used = 0xFFFFFFFFu;
		in->op = OP_FENCE;
		in->mode = has(m, "cta") ? 1 : 0;
		in->cls = CLS_OTHER;
		return 0;
	}
	if (base_is(m, "nanosleep")) {
		m->used = 0xFFFFFFFFu;
		in->op = OP_NANOSLEEP; /* the warp yields to the scheduler */
		in->cls = CLS_OTHER;
		return 0;
	}
	if (base_is(m, "membar") || base_is(m, "fence") || base_is(m, "prefetch") ||
	    base_is(m, "prefetchu") || base_is(m, "pmevent") ||
	    base_is(m, "discard") || base_is(m, "applypriority")) {
		m->used = 0xFFFFFFFFu;
		if (has(m, "proxy") && (has(m, "tensormap") || has(m, "async")))
			return punsup(p, m->line, m->op, m->oplen);
		in->op = OP_NOP;
		in->cls = CLS_OTHER;
		return 0;
	}
	if (base_is(m, "createpolicy")) {
		m->used = 0xFFFFFFFFu;
		in->op = OP_MOV;
		DST(0);
		opnd z;
		memset(&z, 0, sizeof z);
		z.kind = O_INT;
		return src(p, &z, EMU_U64, &in->a);
	}
	if (base_is(m, "cp")) {
		if (has(m, "bulk") || has(m, "tensor") || has(m, "mbarrier"))
			return punsup(p, m->line, m->op, m->oplen);
		if (!has(m, "async"))
			return punsup(p, m->line, m->op, m->oplen);
		if (has(m, "commit_group") || has(m, "wait_group") || has(m, "wait_all")) {
			m->used = 0xFFFFFFFFu;
			in->op = OP_NOP;
			in->cls = CLS_OTHER;
			return 0;
		}
		has(m, "ca");
		has(m, "cg");
		NEED(3, 4);
		if (o[2].kind != O_INT || (o[2].imm != 4 && o[2].imm != 8 && o[2].imm != 16))
			return perr(p, m->line, "cp.async: copy size must be 4, 8 or 16");
		in->op = OP_CP_ASYNC;
		in->cls = CLS_MEM;
		in->size = (uint8_t)o[2].imm;
		emu_inst dummy;
		memset(&dummy, 0, sizeof dummy);
		dummy.sym = -1;
		if (addr_op(p, &o[0], in) || addr_op(p, &o[1], &dummy))
			return p->err;
		if (dummy.sym >= 0)
			return punsup(p, m->line, "cp.async from a symbol", 22);
		in->b = dummy.a;
		in->c = (uint32_t)dummy.imm; /* source offset (fits: NVRTC emits small offsets) */
		in->e = EMU_NOREG;
		if (n == 4)
			SRC(3, e, EMU_U32);
		return 0;
	}
	if (base_is(m, "bra")) {
		NEED(1, 1);
		in->op = OP_BRA;
		in->cls = CLS_CTRL;
		return add_fixup(p, &o[0], cur(p)->ncode - 1);
	}
	if (base_is(m, "exit")) {
		NEED(0, 0);
		in->op = OP_EXIT;
		in->cls = CLS_CTRL;
		return 0;
	}
	if (base_is(m, "ret")) {
		NEED(0, 0);
		in->op = OP_RET;
		in->cls = CLS_CTRL;
		return 0;
	}
	if (base_is(m, "trap") || base_is(m, "brkpt")) {
		in->op = OP_TRAP;
		in->cls = CLS_CTRL;
		return 0;
	}
	return punsup(p, m->line, m->op, m->oplen);
#undef NEED
#undef SRC
#undef DST
#undef NEEDTYPE
}

/* ---------------------------------------------------------------- function bodies */
/* One .reg attribute ".b32", ".v2" (s points at the dot, len includes it). */
static kiln_err reg_attr(parser *p, const char *s, uint32_t len, uint32_t line, int *ty, uint32_t *vec)
{
	int k = len > 1 ? type_of(s + 1, len - 1) : -1;
	if (k >= 0)
		*ty = k;
	else if (len == 3 && (memcmp(s, ".v2", 3) == 0 || memcmp(s, ".v4", 3) == 0))
		*vec = s[2] == '2' ? 2 : 4;
	else
		return perr(p, line, "unknown .reg attribute '%.*s'", (int)len, s);
	return 0;
}

static kiln_err parse_reg_decl(parser *p)
{
	tok *first = next(p); /* .reg, or .reg.b16 written without a space (inline asm) */
	uint32_t line = first->line;
	int ty = -1;
	uint32_t vec = 1;
	for (uint32_t i = 4; i < first->len;) {
		uint32_t j = i + 1;
		while (j < first->len && first->s[j] != '.')
			j++;
		if (reg_attr(p, first->s + i, j - i, line, &ty, &vec))
			return p->err;
		i = j;
	}
	while (peek(p)->kind == T_WORD && peek(p)->s[0] == '.') {
		tok *t = next(p);
		if (reg_attr(p, t->s, t->len, t->line, &ty, &vec))
			return p->err;
	}
	if (ty < 0)
		return perr(p, line, ".reg without a type");
	if (vec > 1)
		return punsup(p, line, ".reg .v2/.v4", 12);
	for (;;) {
		tok *nm = next(p);
		if (nm->kind != T_WORD || nm->s[0] == '.')
			return perr(p, nm->line, "expected a register name");
		struct scope_ent e = {0};
		e.name = nm->s;
		e.len = nm->len;
		e.kind = ty == EMU_PRED ? 1 : 0;
		e.count = 1;
		if (accept(p, '<')) {
			if (parse_u32(p, &e.count) || expect(p, '>'))
				return p->err;
			e.ranged = 1;
		}
		uint32_t *ctr = ty == EMU_PRED ? &p->npreds : &p->nregs;
		if (e.count > (1u << 20) || *ctr + e.count > (1u << 20) || (ty == EMU_PRED && *ctr + e.count > 60000))
			return perr(p, nm->line, "too many registers");
		e.base = *ctr;
		*ctr += e.count;
		if (scope_push(p, &e))
			return KILN_ENOMEM;
		if (!accept(p, ','))
			break;
	}
	return expect(p, ';');
}

static kiln_err parse_body_var(parser *p, uint8_t space)
{
	next(p);
	int32_t si;
	if (parse_var(p, space, p->fidx, &si))
		return p->err;
	emu_sym *s = &p->mod->syms[si];
	emu_func *f = cur(p);
	if (space == KILN_EMU_SPACE_LOCAL) {
		f->local_bytes = (f->local_bytes + s->align - 1) & ~(s->align - 1);
		s->offset = f->local_bytes;
		f->local_bytes += s->size;
	} else if (space == KILN_EMU_SPACE_PARAM) {
		f->frame_bytes = (f->frame_bytes + s->align - 1) & ~(s->align - 1);
		s->offset = f->frame_bytes;
		f->frame_bytes += s->size;
		s->is_fparam = 1;
	}
	if ((space == KILN_EMU_SPACE_LOCAL || space == KILN_EMU_SPACE_PARAM) &&
	    (f->local_bytes > (1u << 24) || f->frame_bytes > (1u << 24)))
		return perr(p, peek(p)->line, "local variables too large");
	struct scope_ent e = {0};
	e.name = s->name;
	e.len = (uint32_t)strlen(s->name);
	e.kind = 2;
	e.sym = si;
	return scope_push(p, &e);
}

static kiln_err add_label(parser *p, tok *t)
{
	for (size_t i = 0; i < p->nlabels; i++)
		if (p->labels[i].len == t->len && memcmp(p->labels[i].name, t->s, t->len) == 0)
			return perr(p, t->line, "label '%.*s' defined twice", (int)t->len, t->s);
	if (p->nlabels == p->caplabels) {
		size_t nc = p->caplabels ? p->caplabels * 2 : 64;
		struct label_ent *q = kiln_realloc(p->labels, nc * sizeof *q);
		if (!q)
			return KILN_ENOMEM;
		p->labels = q;
		p->caplabels = nc;
	}
	p->labels[p->nlabels].name = t->s;
	p->labels[p->nlabels].len = t->len;
	p->labels[p->nlabels].at = cur(p)->ncode;
	p->nlabels++;
	return 0;
}

static kiln_err parse_instruction(parser *p)
{
	uint32_t guard = EMU_NOPRED;
	bool gneg = false;
	tok *t = peek(p);
	uint32_t line = t->line;
	if (accept(p, '@')) {
		gneg = accept(p, '!');
		tok *g = next(p);
		opnd go;
		memset(&go, 0, sizeof go);
		if (g->kind != T_WORD || parse_name_operand(p, g, &go))
			return p->err ? p->err : perr(p, g->line, "expected a predicate after '@'");
		if (go.kind != O_PRED)
			return perr(p, g->line, "guard '%.*s' is not a predicate", (int)g->len, g->s);
		guard = go.reg;
		t = peek(p);
	}
	if (t->kind != T_WORD || t->s[0] == '.' || t->s[0] == '%')
		return perr(p, t->line, "expected an instruction, found '%.*s'", (int)(t->len > 40 ? 40 : t->len), t->s);
	next(p);
	mods m;
	memset(&m, 0, sizeof m);
	m.line = t->line;
	m.op = t->s;
	m.oplen = t->len;
	{
		const char *s = t->s, *e = t->s + t->len;
		const char *dot = memchr(s, '.', t->len);
		while (dot && dot < e) {
			const char *b = dot + 1;
			const char *nd = memchr(b, '.', (size_t)(e - b));
			const char *end = nd ? nd : e;
			if (m.cnt == 24)
				return perr(p, line, "too many modifiers");
			if (end - b > 255 || end == b)
				return perr(p, line, "bad modifier in '%.*s'", (int)t->len, t->s);
			m.s[m.cnt] = b;
			m.n[m.cnt] = (uint8_t)(end - b);
			int ty = type_of(b, (size_t)(end - b));
			if (ty >= 0 && m.ntypes < 4)
				m.types[m.ntypes++] = ty;
			m.cnt++;
			dot = nd;
		}
	}
	if (base_is(&m, "call"))
		return decode_call(p, &m, guard, gneg, line);
	static const char *const unsup[] = {"wgmma", "mbarrier", "tcgen05", "mma", "wmma", "ldmatrix",
					    "stmatrix", "tex", "tld4", "suld", "sust", "sured", "txq",
					    "suq", "setmaxnreg", "elect", "getctarank", "griddepcontrol",
					    "multimem", "istypep", "alloca", "stacksave", "stackrestore",
					    "brx", "bmsk", "szext", "clusterlaunchcontrol", NULL};
	for (const char *const *u = unsup; *u; u++)
		if (base_is(&m, *u))
			return punsup(p, line, t->s, t->len);
	opnd ops[8];
	int n = 0;
	if (!is_punct(peek(p), ';')) {
		for (;;) {
			if (n == 8)
				return perr(p, line, "too many operands");
			if (parse_operand(p, &ops[n]))
				return p->err;
			n++;
			if (!accept(p, ','))
				break;
		}
	}
	if (expect(p, ';'))
		return p->err;
	emu_inst *in;
	if (add_inst(p, &in))
		return KILN_ENOMEM;
	in->line = line;
	uint32_t at = cur(p)->ncode - 1;
	if (decode(p, &m, ops, n, in))
		return p->err;
	in = &cur(p)->code[at];
	in->guard = (uint16_t)guard;
	in->gneg = gneg;
	return check_mods(p, &m);
}

static kiln_err decode_call(parser *p, mods *m, uint32_t guard, bool gneg, uint32_t line)
{
	has(m, "uni");
	if (check_mods(p, m))
		return p->err;
	emu_call c;
	memset(&c, 0, sizeof c);
	if (accept(p, '(')) {
		while (!is_punct(peek(p), ')')) {
			tok *t = next(p);
			opnd o;
			memset(&o, 0, sizeof o);
			if (t->kind != T_WORD || parse_name_operand(p, t, &o))
				return p->err ? p->err : perr(p, t->line, "bad call return operand");
			if (o.kind != O_SYM || !p->mod->syms[o.sym].is_fparam)
				return punsup(p, line, "call with non-.param return operands", 35);
			if (c.nret == 8)
				return perr(p, line, "too many call return values");
			c.ret[c.nret++] = o.sym;
			if (!accept(p, ','))
				break;
		}
		if (expect(p, ')') || expect(p, ','))
			return p->err;
	}
	tok *fn = next(p);
	if (fn->kind != T_WORD)
		return perr(p, fn->line, "call: expected a function name");
	int32_t callee = find_func(p, fn->s, fn->len);
	if (callee < 0) {
		uint32_t idx;
		if (scope_find(p, fn->s, fn->len, &idx))
			return punsup(p, line, "indirect call", 13);
		return perr(p, fn->line, "call to undeclared function '%.*s'", (int)fn->len, fn->s);
	}
	c.callee = callee;
	if (accept(p, ',')) {
		if (expect(p, '('))
			return p->err;
		while (!is_punct(peek(p), ')')) {
			tok *t = next(p);
			opnd o;
			memset(&o, 0, sizeof o);
			if (t->kind != T_WORD || parse_name_operand(p, t, &o))
				return p->err ? p->err : perr(p, t->line, "bad call argument");
			if (o.kind != O_SYM || !p->mod->syms[o.sym].is_fparam)
				return punsup(p, line, "call with non-.param arguments", 30);
			if (c.nargs == 32)
				return perr(p, line, "too many call arguments");
			c.args[c.nargs++] = o.sym;
			if (!accept(p, ','))
				break;
		}
		if (expect(p, ')'))
			return p->err;
		if (accept(p, ','))
			return punsup(p, line, "call with a prototype", 21);
	}
	if (expect(p, ';'))
		return p->err;
	emu_inst *in;
	if (add_inst(p, &in))
		return KILN_ENOMEM;
	emu_func *f = cur(p);
	in->op = OP_CALL;
	in->cls = CLS_CTRL;
	in->line = line;
	in->guard = (uint16_t)guard;
	in->gneg = gneg;
	in->target = f->ncalls;
	c.at = f->ncode - 1;
	if (grow((void **)&f->calls, &f->capcalls, f->ncalls, sizeof *f->calls))
		return KILN_ENOMEM;
	f->calls[f->ncalls++] = c;
	return 0;
}

static kiln_err parse_body(parser *p)
{
	size_t marks[64];
	int depth = 0;
	marks[depth++] = p->nscope;
	while (depth > 0) {
		tok *t = peek(p);
		if (t->kind == T_EOF)
			return perr(p, t->line, "unterminated function body of '%s'", cur(p)->name);
		if (is_punct(t, '{')) {
			next(p);
			if (depth == 64)
				return perr(p, t->line, "blocks nested too deeply");
			marks[depth++] = p->nscope;
			continue;
		}
		if (is_punct(t, '}')) {
			next(p);
			p->nscope = marks[--depth];
			continue;
		}
		if (is_punct(t, ';')) {
			next(p);
			continue;
		}
		if (t->kind == T_WORD && t->s[0] == '.') {
			if (is_word(t, ".reg") || (t->len > 5 && memcmp(t->s, ".reg.", 5) == 0)) {
				if (parse_reg_decl(p))
					return p->err;
			} else if (is_word(t, ".local")) {
				if (parse_body_var(p, KILN_EMU_SPACE_LOCAL))
					return p->err;
			} else if (is_word(t, ".shared")) {
				if (parse_body_var(p, KILN_EMU_SPACE_SHARED))
					return p->err;
			} else if (is_word(t, ".param")) {
				if (parse_body_var(p, KILN_EMU_SPACE_PARAM))
					return p->err;
			} else if (is_word(t, ".const") || is_word(t, ".global")) {
				if (parse_body_var(p, t->s[1] == 'c' ? KILN_EMU_SPACE_CONST : KILN_EMU_SPACE_GLOBAL))
					return p->err;
			} else if (is_word(t, ".loc") || is_word(t, ".file")) {
				skip_line(p);
			} else if (is_word(t, ".pragma")) {
				next(p);
				if (skip_stmt(p))
					return p->err;
			} else if (is_word(t, ".maxnreg") || is_word(t, ".maxntid") || is_word(t, ".reqntid")) {
				next(p);
				if (skip_stmt(p))
					return p->err;
			} else {
				return punsup(p, t->line, t->s, t->len);
			}
			continue;
		}
		if (t->kind == T_WORD && is_punct(peek2(p), ':')) {
			next(p);
			next(p);
			if (add_label(p, t))
				return p->err;
			continue;
		}
		if (parse_instruction(p))
			return p->err;
	}
	return 0;
}

/* ---------------------------------------------------------------- flattening */
typedef struct flat {
	parser *p;
	emu_kernel *k;
	emu_inst *code;
	uint32_t n, cap;
	int32_t stack[32];
	int depth;
	uint32_t *local_base, *frame_base; /* per function; UINT32_MAX = not reachable */
	uint32_t local_total, frame_total;
	uint32_t *shared_off;              /* per symbol */
	uint32_t dyn_off;
	emu_const *consts;
	uint32_t nconsts, capconsts;
	uint32_t nregs;
} flat;

static kiln_err flat_emit(flat *fl, const emu_inst *in, uint32_t *at)
{
	if (grow((void **)&fl->code, &fl->cap, fl->n, sizeof *fl->code))
		return KILN_ENOMEM;
	if (fl->n >= (1u << 24))
		return kiln_error_set(KILN_EUNSUPPORTED, "not supported by the emulator: kernels over 16M instructions after inlining");
	fl->code[fl->n] = *in;
	if (at)
		*at = fl->n;
	fl->n++;
	return 0;
}

static kiln_err flat_const(flat *fl, const emu_const *c)
{
	if (grow((void **)&fl->consts, &fl->capconsts, fl->nconsts, sizeof *fl->consts))
		return KILN_ENOMEM;
	fl->consts[fl->nconsts++] = *c;
	return 0;
}

static kiln_err reach(flat *fl, int32_t fi)
{
	parser *p = fl->p;
	emu_func *f = &p->mod->funcs[fi];
	for (int i = 0; i < fl->depth; i++)
		if (fl->stack[i] == fi)
			return kiln_error_set(KILN_EUNSUPPORTED,
					      "not supported by the emulator: recursive call of %s (line %u)",
					      f->name, f->line);
	if (!f->has_body && strcmp(f->name, "vprintf") == 0)
		return kiln_error_set(KILN_EUNSUPPORTED, "not supported by the emulator: device printf (vprintf)");
	if (!f->has_body)
		return kiln_error_set(KILN_EINVAL, "%s: function '%s' is declared but never defined",
				      p->name, f->name);
	if (fl->depth == 32)
		return kiln_error_set(KILN_EUNSUPPORTED, "not supported by the emulator: calls nested over 32 deep");
	fl->stack[fl->depth++] = fi;
	if (fl->local_base[fi] == UINT32_MAX) {
		fl->local_total = (fl->local_total + 15) & ~15u;
		fl->local_base[fi] = fl->local_total;
		fl->local_total += f->local_bytes;
		fl->frame_total = (fl->frame_total + 15) & ~15u;
		fl->frame_base[fi] = fl->frame_total;
		fl->frame_total += f->frame_bytes;
	}
	for (uint32_t i = 0; i < f->ncalls; i++)
		if (reach(fl, f->calls[i].callee))
			return kiln_error_code();
	fl->depth--;
	return 0;
}

/* Frame offset (inside the per-thread local buffer) of a .param symbol. */
static uint32_t frame_addr(flat *fl, const emu_sym *s)
{
	return fl->local_total + fl->frame_base[s->func] + s->offset;
}

static kiln_err sym_reg(flat *fl, int32_t sym, uint32_t *out)
{
	for (uint32_t i = 0; i < fl->nconsts; i++)
		if (fl->consts[i].kind == CONST_SYM && fl->consts[i].sym == sym && fl->consts[i].value == 0) {
			*out = fl->consts[i].reg;
			return 0;
		}
	emu_const c = {0};
	c.reg = fl->nregs++;
	c.kind = CONST_SYM;
	c.sym = sym;
	*out = c.reg;
	return flat_const(fl, &c);
}

/* Resolves a symbol-relative memory operand of an instruction of function fi. */
static kiln_err resolve_addr(flat *fl, emu_inst *in, int32_t fi)
{
	parser *p = fl->p;
	if (in->sym < 0) {
		if (in->a == EMU_NOREG)
			in->a = 0;
		return 0;
	}
	const emu_sym *s = &p->mod->syms[in->sym];
	(void)fi;
	switch (s->space) {
	case KILN_EMU_SPACE_SHARED:
		in->imm += s->is_extern ? fl->dyn_off : fl->shared_off[in->sym];
		if (in->space == KILN_EMU_SPACE_NONE)
			in->imm += (int64_t)EMU_SHARED_WINDOW;
		break;
	case KILN_EMU_SPACE_LOCAL:
		in->imm += fl->local_base[s->func] + s->offset;
		if (in->space == KILN_EMU_SPACE_NONE)
			in->imm += (int64_t)EMU_LOCAL_WINDOW;
		break;
	case KILN_EMU_SPACE_PARAM:
		if (s->is_kparam) {
			if (in->op != OP_LD || in->a != EMU_NOREG)
				return kiln_error_set(KILN_EUNSUPPORTED,
						      "not supported by the emulator: kernel parameter access other than ld.param [sym+imm] (line %u)",
						      in->line);
			in->op = OP_LD_KPARAM;
			in->imm += s->offset;
			in->cls = CLS_MEM;
		} else {
			if (in->a != EMU_NOREG)
				return kiln_error_set(KILN_EUNSUPPORTED,
						      "not supported by the emulator: .param access through a register (line %u)",
						      in->line);
			in->space = KILN_EMU_SPACE_PARAM;
			in->imm += frame_addr(fl, s);
		}
		break;
	case KILN_EMU_SPACE_GLOBAL:
	case KILN_EMU_SPACE_CONST: {
		if (in->a != EMU_NOREG)
			return kiln_error_set(KILN_EINVAL, "%s:%u: register and symbol in one address", p->name, in->line);
		uint32_t r;
		if (sym_reg(fl, in->sym, &r))
			return KILN_ENOMEM;
		in->a = r;
		break;
	}
	default:
		break;
	}
	if (in->a == EMU_NOREG)
		in->a = 0;
	in->sym = -1;
	return 0;
}

static kiln_err flat_func(flat *fl, int32_t fi)
{
	parser *p = fl->p;
	emu_func *f = &p->mod->funcs[fi];
	uint32_t *pos = kiln_calloc(f->ncode + 1, sizeof *pos);
	uint32_t *rets = NULL;
	uint32_t nrets = 0;
	uint32_t start = fl->n;
	kiln_err err = 0;
	if (!pos)
		return KILN_ENOMEM;
	rets = kiln_calloc(f->ncode + 1, sizeof *rets);
	if (!rets) {
		err = KILN_ENOMEM;
		goto done;
	}
	for (uint32_t i = 0; i < f->ncode; i++) {
		emu_inst in = f->code[i];
		pos[i] = fl->n;
		if (in.op == OP_CALL) {
			const emu_call *c = &f->calls[in.target];
			const emu_func *g = &p->mod->funcs[c->callee];
			uint32_t skip_at = 0;
			bool guarded = in.guard != EMU_NOPRED;
			if (guarded) {
				emu_inst b = in;
				b.op = OP_BRA;
				b.gneg = !in.gneg;
				if ((err = flat_emit(fl, &b, &skip_at)))
					goto done;
			}
			if (c->nargs != g->nparams || c->nret > g->nrets) {
				err = kiln_error_set(KILN_EINVAL, "%s:%u: call of %s with %u arguments, it takes %u",
						     p->name, in.line, g->name, c->nargs, g->nparams);
				goto done;
			}
			emu_inst cp;
			memset(&cp, 0, sizeof cp);
			cp.op = OP_PCOPY;
			cp.cls = CLS_OTHER;
			cp.guard = EMU_NOPRED;
			cp.line = in.line;
			cp.d = cp.d2 = cp.a = cp.b = cp.c = cp.e = EMU_NOREG;
			cp.sym = -1;
			for (uint32_t k = 0; k < c->nargs; k++) {
				const emu_sym *from = &p->mod->syms[c->args[k]];
				const emu_sym *to = &p->mod->syms[g->params[k]];
				cp.imm = frame_addr(fl, to);
				cp.target = frame_addr(fl, from);
				cp.e = from->size < to->size ? from->size : to->size;
				if ((err = flat_emit(fl, &cp, NULL)))
					goto done;
			}
			fl->stack[fl->depth++] = c->callee;
			err = flat_func(fl, c->callee);
			fl->depth--;
			if (err)
				goto done;
			f = &p->mod->funcs[fi];
			for (uint32_t k = 0; k < c->nret; k++) {
				const emu_sym *from = &p->mod->syms[g->rets[k]];
				const emu_sym *to = &p->mod->syms[c->ret[k]];
				cp.imm = frame_addr(fl, to);
				cp.target = frame_addr(fl, from);
				cp.e = from->size < to->size ? from->size : to->size;
				if ((err = flat_emit(fl, &cp, NULL)))
					goto done;
			}
			if (guarded)
				fl->code[skip_at].target = fl->n | 0x80000000u; /* absolute */
			continue;
		}
		if (in.op == OP_RET) {
			if (f->is_entry) {
				in.op = OP_EXIT;
			} else {
				in.op = OP_BRA;
				rets[nrets++] = fl->n;
			}
		}
		if (in.op == OP_LD || in.op == OP_ST || in.op == OP_ATOM || in.op == OP_RED ||
		    in.op == OP_CP_ASYNC) {
			if ((err = resolve_addr(fl, &in, fi)))
				goto done;
		}
		if ((err = flat_emit(fl, &in, NULL)))
			goto done;
	}
	pos[f->ncode] = fl->n;
	/* branch targets: function-relative -> kernel-absolute */
	for (uint32_t i = 0; i < f->ncode; i++) {
		if (f->code[i].op != OP_BRA)
			continue;
		emu_inst *out = &fl->code[pos[i]];
		out->target = pos[f->code[i].target];
	}
	for (uint32_t i = 0; i < nrets; i++)
		fl->code[rets[i]].target = fl->n;
	/* guarded-call skips were marked absolute */
	for (uint32_t i = start; i < fl->n; i++)
		if (fl->code[i].op == OP_BRA && (fl->code[i].target & 0x80000000u))
			fl->code[i].target &= 0x7FFFFFFFu;
done:
	free(pos);
	free(rets);
	return err;
}

static bool sym_used_by(const kiln_emu_module *m, const flat *fl, int32_t sym)
{
	for (uint32_t fi = 0; fi < m->nfuncs; fi++) {
		if (fl->local_base[fi] == UINT32_MAX)
			continue;
		const emu_func *f = &m->funcs[fi];
		for (uint32_t i = 0; i < f->ncode; i++)
			if (f->code[i].sym == sym)
				return true;
		for (uint32_t i = 0; i < f->nconsts; i++)
			if (f->consts[i].kind == CONST_SYM && f->consts[i].sym == sym)
				return true;
	}
	return false;
}

static kiln_err flatten(parser *p, int32_t entry, emu_kernel *k)
{
	kiln_emu_module *m = p->mod;
	flat fl;
	kiln_err err = 0;
	memset(&fl, 0, sizeof fl);
	fl.p = p;
	fl.k = k;
	fl.nregs = p->nregs;
	fl.local_base = kiln_malloc(m->nfuncs * sizeof *fl.local_base);
	fl.frame_base = kiln_malloc(m->nfuncs * sizeof *fl.frame_base);
	fl.shared_off = kiln_malloc((m->nsyms + 1) * sizeof *fl.shared_off);
	if (!fl.local_base || !fl.frame_base || !fl.shared_off) {
		err = KILN_ENOMEM;
		goto done;
	}
	for (uint32_t i = 0; i < m->nfuncs; i++)
		fl.local_base[i] = fl.frame_base[i] = UINT32_MAX;
	if ((err = reach(&fl, entry)))
		goto done;
	/* shared layout: this kernel's own and those module-scope ones it uses */
	uint32_t soff = 0, dyn_align = 16;
	for (uint32_t i = 0; i < m->nsyms; i++) {
		emu_sym *s = &m->syms[i];
		fl.shared_off[i] = UINT32_MAX;
		if (s->space != KILN_EMU_SPACE_SHARED)
			continue;
		bool mine = s->func >= 0 ? fl.local_base[s->func] != UINT32_MAX : sym_used_by(m, &fl, (int32_t)i);
		if (!mine)
			continue;
		if (s->is_extern) {
			if (s->align > dyn_align)
				dyn_align = s->align;
			continue;
		}
		soff = (soff + s->align - 1) & ~(s->align - 1);
		fl.shared_off[i] = soff;
		soff += s->size;
		if (soff > (1u << 30)) {
			err = kiln_error_set(KILN_EINVAL, "%s: shared memory of %s too large", p->name, m->funcs[entry].name);
			goto done;
		}
	}
	k->static_shared = soff;
	k->dyn_align = dyn_align;
	fl.dyn_off = (soff + dyn_align - 1) & ~(dyn_align - 1);
	/* constants of every reachable function, symbols resolved */
	{
		emu_const zero = {0};
		zero.kind = CONST_IMM;
		zero.reg = 0;
		if ((err = flat_const(&fl, &zero)))
			goto done;
	}
	for (uint32_t fi = 0; fi < m->nfuncs; fi++) {
		if (fl.local_base[fi] == UINT32_MAX)
			continue;
		emu_func *f = &m->funcs[fi];
		for (uint32_t i = 0; i < f->nconsts; i++) {
			emu_const c = f->consts[i];
			if (c.kind == CONST_SYM) {
				emu_sym *s = &m->syms[c.sym];
				switch (s->space) {
				case KILN_EMU_SPACE_SHARED:
					c.kind = CONST_IMM;
					c.value += s->is_extern ? fl.dyn_off : fl.shared_off[c.sym];
					break;
				case KILN_EMU_SPACE_LOCAL:
					c.kind = CONST_IMM;
					c.value += fl.local_base[s->func] + s->offset;
					break;
				case KILN_EMU_SPACE_PARAM:
					if (s->is_kparam) {
						err = kiln_error_set(KILN_EUNSUPPORTED,
								     "not supported by the emulator: address of kernel parameter %s",
								     s->name);
						goto done;
					}
					c.kind = CONST_IMM;
					c.value += frame_addr(&fl, s);
					break;
				default:
					break;
				}
			}
			if ((err = flat_const(&fl, &c)))
				goto done;
		}
	}
	if ((err = flat_func(&fl, entry)))
		goto done;
	{
		emu_inst ex;
		memset(&ex, 0, sizeof ex);
		ex.op = OP_EXIT;
		ex.cls = CLS_CTRL;
		ex.guard = EMU_NOPRED;
		ex.d = ex.d2 = ex.a = ex.b = ex.c = ex.e = EMU_NOREG;
		ex.line = fl.n ? fl.code[fl.n - 1].line : m->funcs[entry].line;
		if ((err = flat_emit(&fl, &ex, NULL)))
			goto done;
	}
	/* global symbols whose addresses the launch must provide */
	for (uint32_t i = 0; i < fl.nconsts; i++) {
		if (fl.consts[i].kind != CONST_SYM)
			continue;
		int32_t *q = kiln_realloc(k->gsyms, (k->ngsyms + 1) * sizeof *q);
		if (!q) {
			err = KILN_ENOMEM;
			goto done;
		}
		k->gsyms = q;
		k->gsyms[k->ngsyms++] = fl.consts[i].sym;
	}
	emu_func *ef = &m->funcs[entry];
	k->code = fl.code;
	k->ncode = fl.n;
	fl.code = NULL;
	k->consts = fl.consts;
	k->nconsts = fl.nconsts;
	fl.consts = NULL;
	k->nregs = fl.nregs;
	k->npreds = p->npreds;
	k->local_bytes = fl.local_total;
	k->frame_bytes = fl.frame_total;
	memcpy(k->maxntid, ef->maxntid, sizeof k->maxntid);
	memcpy(k->reqntid, ef->reqntid, sizeof k->reqntid);
	k->minnctapersm = ef->minnctapersm;
	k->nparams = ef->nparams;
	k->params = kiln_calloc(ef->nparams + 1, sizeof *k->params);
	if (!k->params) {
		err = KILN_ENOMEM;
		goto done;
	}
	for (uint32_t i = 0; i < ef->nparams; i++) {
		emu_sym *s = &m->syms[ef->params[i]];
		k->params[i].name = s->name;
		k->params[i].size = s->size;
		k->params[i].align = s->align;
		k->params[i].offset = s->offset;
		if (s->offset + s->size > k->param_bytes)
			k->param_bytes = s->offset + s->size;
	}
done:
	free(fl.code);
	free(fl.consts);
	free(fl.local_base);
	free(fl.frame_base);
	free(fl.shared_off);
	return err;
}

/* ---------------------------------------------------------------- public API */
static atomic_uint_fast64_t module_ids = 1;

kiln_err kiln_emu_module_parse(kiln_emu_module **out, const char *ptx, size_t len, const char *name)
{
	parser p;
	kiln_err err = 0;
	*out = NULL;
	memset(&p, 0, sizeof p);
	p.name = name ? name : "ptx";
	p.src = ptx;
	p.len = len;
	p.fidx = -1;
	p.nregs = 1;  /* register 0: constant zero */
	p.npreds = 2; /* predicates 0/1: constant false/true */
	p.mod = kiln_calloc(1, sizeof *p.mod);
	if (!p.mod)
		return KILN_ENOMEM;
	p.mod->name = kiln_strdup(p.name);
	p.mod->id = atomic_fetch_add(&module_ids, 1);
	if (!p.mod->name) {
		err = KILN_ENOMEM;
		goto done;
	}
	if ((err = lex(&p)))
		goto done;
	if ((err = parse_module(&p)))
		goto done;
	p.mod->nregs = p.nregs;
	p.mod->npreds = p.npreds;
	uint32_t nk = 0;
	for (uint32_t i = 0; i < p.mod->nfuncs; i++)
		nk += p.mod->funcs[i].is_entry && p.mod->funcs[i].has_body;
	p.mod->kernels = kiln_calloc(nk + 1, sizeof *p.mod->kernels);
	p.mod->kernel_names = kiln_calloc(nk + 1, sizeof *p.mod->kernel_names);
	if (!p.mod->kernels || !p.mod->kernel_names) {
		err = KILN_ENOMEM;
		goto done;
	}
	for (uint32_t i = 0; i < p.mod->nfuncs; i++) {
		if (!p.mod->funcs[i].is_entry || !p.mod->funcs[i].has_body)
			continue;
		emu_kernel *k = &p.mod->kernels[p.mod->nkernels];
		k->name = p.mod->funcs[i].name;
		p.mod->kernel_names[p.mod->nkernels] = k->name;
		p.mod->nkernels++;
		if ((err = flatten(&p, (int32_t)i, k)))
			goto done;
	}
done:
	if (err == KILN_ENOMEM && !kiln_error_last()[0])
		kiln_error_set(KILN_ENOMEM, "%s: out of memory while parsing", p.name);
	free(p.toks);
	free(p.scope);
	free(p.labels);
	free(p.fixups);
	if (err) {
		kiln_emu_module_free(p.mod);
		return err;
	}
	*out = p.mod;
	return 0;
}

void kiln_emu_module_free(kiln_emu_module *m)
{
	if (!m)
		return;
	for (uint32_t i = 0; i < m->nkernels; i++) {
		free(m->kernels[i].code);
		free(m->kernels[i].consts);
		free(m->kernels[i].params);
		free(m->kernels[i].gsyms);
	}
	free(m->kernels);
	free(m->kernel_names);
	for (uint32_t i = 0; i < m->nfuncs; i++) {
		emu_func *f = &m->funcs[i];
		free(f->name);
		free(f->code);
		free(f->consts);
		free(f->calls);
		free(f->params);
		free(f->rets);
	}
	free(m->funcs);
	for (uint32_t i = 0; i < m->nsyms; i++) {
		free(m->syms[i].name);
		free(m->syms[i].init);
	}
	free(m->syms);
	free(m->name);
	free(m);
}

const char *const *kiln_emu_module_kernels(const kiln_emu_module *mod, size_t *n)
{
	*n = mod ? mod->nkernels : 0;
	return mod ? mod->kernel_names : NULL;
}

const emu_kernel *emu_module_kernel(const kiln_emu_module *mod, const char *name)
{
	for (uint32_t i = 0; mod && name && i < mod->nkernels; i++)
		if (strcmp(mod->kernels[i].name, name) == 0)
			return &mod->kernels[i];
	return NULL;
}

kiln_err kiln_emu_kernel_params(const kiln_emu_module *mod, const char *name, size_t *n,
				const kiln_emu_param **out)
{
	const emu_kernel *k = emu_module_kernel(mod, name);
	if (!k)
		return kiln_error_set(KILN_ENOTFOUND, "%s: no kernel named '%s'", mod ? mod->name : "ptx",
				      name ? name : "(null)");
	*n = k->nparams;
	*out = k->params;
	return 0;
}

uint32_t kiln_emu_kernel_static_shared(const kiln_emu_module *mod, const char *name)
{
	const emu_kernel *k = emu_module_kernel(mod, name);
	return k ? k->static_shared : 0;
}
