/* parse: PTX text -> kiln_emu_module. A line-aware lexer feeds a recursive-descent
 * parser that decodes each instruction once, by its row of the opcode table (optab), into
 * an emu_inst with register-index operands (immediates, symbols and special registers
 * become pre-filled registers), then each .entry is flattened with its device functions
 * inlined. Every error names the line; opcodes or modifiers the emulator cannot run are
 * KILN_EUNSUPPORTED, never silently skipped. */
#include <assert.h>
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
	uint32_t nscope, capscope;
	struct label_ent *labels;
	uint32_t nlabels, caplabels;
	struct fixup *fixups;
	uint32_t nfixups, capfixups;
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
	if (grow((void **)&p->scope, &p->capscope, p->nscope, sizeof *p->scope))
		return KILN_ENOMEM;
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

/* A destination register: a value register, or a predicate when pred; '_' is a new one. */
static kiln_err dst_of(parser *p, const opnd *o, bool pred, uint32_t *out)
{
	if (o->kind == (pred ? O_PRED : O_REG)) {
		*out = o->reg;
		return 0;
	}
	if (o->kind == O_SINK) {
		*out = pred ? p->npreds++ : p->nregs++;
		return 0;
	}
	if (pred)
		return perr(p, o->line, "expected a predicate destination");
	if (o->kind == O_PRED)
		return perr(p, o->line, "predicate register where a value register is expected");
	return perr(p, o->line, "destination must be a register");
}

static kiln_err dst(parser *p, const opnd *o, uint32_t *out)
{
	return dst_of(p, o, false, out);
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
	return dst_of(p, o, true, out);
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
	if (grow((void **)&p->fixups, &p->capfixups, p->nfixups, sizeof *p->fixups))
		return KILN_ENOMEM;
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

/* ---------------------------------------------------------------- the opcode table */
/* Every PTX base opcode is one row of optab (sorted by name, looked up with bsearch): its
 * emu_op (and the float and half variants of arithmetic), operand count, counter class,
 * destination and sources in operand order (emu_inst field, type of a literal). decode()
 * checks the count and type, runs the row's handler, which reads the modifiers, and then
 * decodes the operands the row names, unless the handler (an irregular opcode: mov, setp,
 * ld/st, atom, bar, cvt ...) decoded them itself and returned DEC_DONE. */
typedef struct op_row op_row;

typedef struct dec {
	parser *p;
	mods *m;
	opnd *o;           /* the n operands */
	int n;
	emu_inst *in;
	emu_type t0, t1;   /* first and second type modifier (b32, then t0, when absent) */
	const op_row *row;
} dec;

#define DEC_DONE 1 /* a handler's "operands decoded": decode() does not read the row's */
typedef kiln_err (*dec_fn)(dec *x, parser *p, mods *m, emu_inst *in);

/* Operand 0 as destination: none, a value register, a predicate, a value register with an
 * optional predicate "d|p". */
enum { DK_NONE, DK_REG, DK_PRED, DK_PAIR };
/* Where a source goes: emu_inst.a/b/c/e; SF_PC a predicate into c; SF_MASK into e, all
 * lanes when the operand is absent (the member mask of shfl.sync). SF_END ends the list. */
enum { SF_END, SF_A, SF_B, SF_C, SF_E, SF_PC, SF_MASK };
/* How a source's literal is typed: the first or second type modifier, a fixed type, or
 * TY_MADC (the addend of mad: t0, 64-bit for mad.wide). */
enum { TY_T0, TY_T1, TY_B32, TY_U32, TY_S32, TY_U64, TY_MADC };
enum {
	R_TYPE = 1,       /* a type modifier is required (checked after the operand count) */
	R_TYPE_FIRST = 2, /* ... checked before the operand count */
	R_FCLS = 4,       /* counter class from the float type (fclass) */
	R_CARRY = 8,      /* addc/subc/madc: reads the carry flag */
	R_UNSUP = 16,     /* valid PTX the emulator cannot run: refused before its operands */
};

struct op_row {
	const char *name;
	uint16_t op, op_f, op_h; /* emu_op; for float and half types (0: none; and/or/xor/not:
	                            op_f is the .pred form) */
	uint8_t lo, hi;          /* operand count */
	uint8_t flags;           /* R_* */
	uint8_t cls;             /* counter class */
	uint8_t dst;             /* DK_* of operand 0 */
	uint8_t src[4][2];       /* SF_*, TY_* of the operands after the destination */
	dec_fn fn;               /* reads modifiers or decodes an irregular opcode; NULL: none */
};

static kiln_err need_type(const dec *x)
{
	if (x->m->ntypes < 1)
		return perr(x->p, x->m->line, "%.*s: missing type", (int)x->m->oplen, x->m->op);
	return 0;
}

/* A register pair's predicate "d|p" (shfl, match, setp): d2, a fresh one for "|_". */
static void dst_pair(parser *p, const opnd *o, emu_inst *in)
{
	in->d2 = EMU_NOREG;
	if (o->has_pair)
		in->d2 = o->pair == EMU_NOPRED ? p->npreds++ : o->pair;
}

/* The member mask of shfl/vote.sync: operand i, or all lanes when it is absent. */
static kiln_err src_mask(dec *x, int i, uint32_t *out)
{
	if (i < x->n)
		return src(x->p, &x->o[i], EMU_U32, out);
	opnd full;
	memset(&full, 0, sizeof full);
	full.kind = O_INT;
	full.imm = 0xFFFFFFFFu;
	return src(x->p, &full, EMU_U32, out);
}

static emu_type slot_type(const dec *x, int ty)
{
	static const emu_type fixed[] = {[TY_B32] = EMU_B32, [TY_U32] = EMU_U32, [TY_S32] = EMU_S32,
					 [TY_U64] = EMU_U64};
	if (ty == TY_T0)
		return x->t0;
	if (ty == TY_T1)
		return x->t1;
	if (ty == TY_MADC && x->in->op == OP_MAD_WIDE)
		return emu_type_is_signed(x->t0) ? EMU_S64 : EMU_U64;
	return ty == TY_MADC ? x->t0 : fixed[ty];
}

/* The operands a row describes, in order: the destination, then each source. */
static kiln_err dec_operands(dec *x)
{
	const op_row *r = x->row;
	parser *p = x->p;
	emu_inst *in = x->in;
	kiln_err e = 0;
	if (r->dst == DK_PRED)
		e = pdst(p, &x->o[0], &in->d);
	else if (r->dst != DK_NONE)
		e = dst(p, &x->o[0], &in->d);
	if (e)
		return e;
	if (r->dst == DK_PAIR)
		dst_pair(p, &x->o[0], in);
	int i = r->dst != DK_NONE;
	for (int s = 0; s < 4 && r->src[s][0] != SF_END; s++, i++) {
		uint8_t f = r->src[s][0];
		uint32_t *out = f == SF_A ? &in->a : f == SF_B ? &in->b : f == SF_E || f == SF_MASK ? &in->e : &in->c;
		if (f == SF_PC)
			e = psrc(p, &x->o[i], out);
		else if (f == SF_MASK)
			e = src_mask(x, i, out);
		else
			e = src(p, &x->o[i], slot_type(x, r->src[s][1]), out);
		if (e)
			return e;
	}
	return 0;
}

/* Operand helpers of the handlers below (they name their parser p, operands o, inst in). */
#define SRC(i, field, ty) do { kiln_err e_ = src(p, &o[i], ty, &in->field); if (e_) return e_; } while (0)
#define DST(i) do { if (dst(p, &o[i], &in->d)) return p->err; } while (0)
#define NEED(lo, hi) do { if (need_ops(p, m, x->n, lo, hi)) return p->err; } while (0)

/* The elements of a vector operand "{a, b, ...}" as destinations or sources of type ty. */
static kiln_err vec_elems(dec *x, const opnd *v, bool out, emu_type ty)
{
	for (uint32_t i = 0; i < v->nvec; i++) {
		opnd tmp;
		memset(&tmp, 0, sizeof tmp);
		tmp.kind = v->vec[i].kind;
		tmp.reg = v->vec[i].reg;
		tmp.imm = v->vec[i].imm;
		tmp.dval = v->vec[i].dval;
		tmp.line = x->m->line;
		kiln_err e = out ? dst(x->p, &tmp, &x->in->v[i]) : src(x->p, &tmp, ty, &x->in->v[i]);
		if (e)
			return e;
	}
	return 0;
}

/* mov: predicates, vector pack/unpack, %clock, or a plain copy. */
static kiln_err dec_mov(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	if (x->t0 == EMU_PRED) {
		in->op = OP_MOV_PRED;
		if (pdst(p, &o[0], &in->d) || psrc(p, &o[1], &in->a))
			return p->err;
		in->mode2 = o[1].neg;
		return DEC_DONE;
	}
	if (o[0].kind == O_VEC || o[1].kind == O_VEC) {
		opnd *v = o[0].kind == O_VEC ? &o[0] : &o[1];
		if (o[0].kind == O_VEC && o[1].kind == O_VEC)
			return perr(p, m->line, "mov: both operands are vectors");
		uint32_t tot = emu_type_size(x->t0);
		if (v->nvec < 2 || v->nvec > 4 || tot % v->nvec)
			return perr(p, m->line, "mov: vector of %u elements does not fit .%s", v->nvec, "type");
		in->size = (uint8_t)(tot / v->nvec);
		in->vec = (uint8_t)v->nvec;
		emu_type et = in->size == 1 ? EMU_B8 : in->size == 2 ? EMU_B16 : in->size == 4 ? EMU_B32 : EMU_B64;
		kiln_err e = vec_elems(x, v, o[0].kind == O_VEC, et);
		if (e)
			return e;
		if (o[0].kind == O_VEC) {
			in->op = OP_UNPACK;
			SRC(1, a, x->t0);
		} else {
			in->op = OP_PACK;
			DST(0);
		}
		return DEC_DONE;
	}
	if (o[1].kind == O_SREG && o[1].sreg >= 1000) {
		in->op = OP_CLOCK;
		in->mode = (uint8_t)(o[1].sreg - 1000);
		DST(0);
		return DEC_DONE;
	}
	return 0; /* OP_MOV d, a */
}

/* setp (to a predicate, optionally |q) and set (to a value): comparison, optional combine. */
static kiln_err dec_setp(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	bool isset = in->op == OP_SET;
	int cmp = mods_cmp(m);
	if (cmp < 0)
		return perr(p, m->line, "%.*s: missing comparison", (int)m->oplen, m->op);
	in->mode = (uint8_t)cmp;
	in->mode2 = has(m, "and") ? BOOL_AND : has(m, "or") ? BOOL_OR : has(m, "xor") ? BOOL_XOR : BOOL_NONE;
	if (need_type(x))
		return p->err;
	emu_type st = isset ? x->t1 : x->t0;
	if (isset && m->ntypes < 2)
		return perr(p, m->line, "set: needs a destination and a source type");
	in->type2 = (uint8_t)st;
	in->cls = (uint8_t)(emu_type_is_float(st) ? fclass(st) : CLS_INT);
	NEED(in->mode2 ? 4 : 3, in->mode2 ? 4 : 3);
	if (isset) {
		DST(0);
	} else {
		if (pdst(p, &o[0], &in->d))
			return p->err;
		dst_pair(p, &o[0], in);
	}
	SRC(1, a, st);
	SRC(2, b, st);
	if (in->mode2) {
		if (psrc(p, &o[3], &in->c))
			return p->err;
		if (o[3].neg)
			in->mode2 |= 0x80;
	}
	return DEC_DONE;
}

/* and/or/xor/not/cnot: on predicates (operands may be negated) or as bitwise ops. */
static kiln_err dec_logic(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	if (x->t0 != EMU_PRED)
		return 0;
	in->op = x->row->op_f;
	if (!in->op) /* cnot */
		return punsup(p, m->line, m->op, m->oplen);
	if (pdst(p, &o[0], &in->d) || psrc(p, &o[1], &in->a))
		return p->err;
	if (o[1].neg)
		in->mode2 |= 1;
	if (x->n == 3) {
		if (psrc(p, &o[2], &in->b))
			return p->err;
		if (o[2].neg)
			in->mode2 |= 2;
	}
	return DEC_DONE;
}

/* Integer arithmetic: .hi/.wide forms, .cc and the carry-reading addc/subc/madc. */
static kiln_err arith_int(dec *x, bool carry)
{
	mods *m = x->m;
	emu_inst *in = x->in;
	if (!x->row->op)
		return perr(x->p, m->line, "%.*s: needs a float type", (int)m->oplen, m->op);
	in->op = x->row->op;
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
	if (carry && in->op != OP_ADD && in->op != OP_SUB && in->op != OP_MAD_LO && in->op != OP_MAD_HI)
		return punsup(x->p, m->line, m->op, m->oplen);
	return 0;
}

/* Float arithmetic: div needs .approx, .full or a rounding. */
static kiln_err arith_float(dec *x)
{
	mods *m = x->m;
	emu_inst *in = x->in;
	if (!x->row->op_f)
		return punsup(x->p, m->line, m->op, m->oplen);
	in->op = x->row->op_f;
	in->cls = (uint8_t)fclass(x->t0);
	if (in->op == OP_FDIV && !(in->flags & F_APPROX) && !in->rnd && !has(m, "full"))
		return perr(x->p, m->line, "div.%s needs .approx, .full or a rounding modifier",
			    x->t0 == EMU_F64 ? "f64" : "f32");
	if (has(m, "full")) {
		in->flags |= F_APPROX;
		in->mode = 2; /* div.full: exec tells it from div.approx */
	}
	return 0;
}

/* add sub mul mad fma div rem abs neg min max addc subc madc: int, float or half op. */
static kiln_err dec_arith(dec *x, parser *p, mods *m, emu_inst *in)
{
	emu_type t0 = x->t0;
	/* extended precision: .cc writes the carry flag, addc/subc/madc read it */
	bool carry_out = has(m, "cc"), carry_in = x->row->flags & R_CARRY;
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
		if (!x->row->op_h)
			return punsup(p, m->line, m->op, m->oplen);
		in->op = x->row->op_h;
		in->cls = CLS_HALF2;
		return 0;
	}
	return emu_type_is_float(t0) ? arith_float(x) : arith_int(x, carry_out || carry_in);
}

/* mul24 / mad24: .hi takes the high half of the 48-bit product. */
static kiln_err dec_mul24(dec *x, parser *p, mods *m, emu_inst *in)
{
	bool hi = has(m, "hi");
	has(m, "lo");
	if (hi && in->op == OP_MAD24_LO)
		in->mode = 1; /* mad24.hi: OP_MAD24_LO with the high half of the product */
	else if (hi)
		in->op = OP_MUL24_HI;
	return 0;
}

/* One of two modifiers the opcode needs: 1 for `first` (looked for first), 0 for `second`,
 * neither is the error `missing`. */
static kiln_err mods_either(parser *p, mods *m, const char *first, const char *second, const char *missing)
{
	if (has(m, first))
		return 1;
	if (has(m, second))
		return 0;
	return perr(p, m->line, "%s", missing);
}

static kiln_err dec_shf(dec *x, parser *p, mods *m, emu_inst *in)
{
	kiln_err l = mods_either(p, m, "l", "r", "shf: needs .l or .r");
	kiln_err clamp = l < 0 ? l : mods_either(p, m, "clamp", "wrap", "shf: needs .wrap or .clamp");
	if (clamp < 0)
		return clamp;
	in->flags |= clamp ? F_CLAMP : 0;
	in->op = l ? OP_SHF_L : OP_SHF_R;
	return 0;
}

static kiln_err dec_bfind(dec *x, parser *p, mods *m, emu_inst *in)
{
	if (has(m, "shiftamt"))
		in->mode = 1;
	return 0;
}

/* The index of the last of names[0..n) present as a modifier, or -1. */
static int mods_pick(mods *m, const char *const *names, int n)
{
	int k = -1;
	for (int i = 0; i < n; i++)
		if (has(m, names[i]))
			k = i;
	return k;
}

/* in->mode: the index of the last of names[0..n) present; none is the error `missing`. */
static kiln_err mods_mode(dec *x, const char *const *names, int n, const char *missing)
{
	int k = mods_pick(x->m, names, n);
	if (k < 0)
		return perr(x->p, x->m->line, "%s", missing);
	x->in->mode = (uint8_t)k;
	return 0;
}

static kiln_err dec_prmt(dec *x, parser *p, mods *m, emu_inst *in)
{
	static const char *const pm[] = {"f4e", "b4e", "rc8", "ecl", "ecr", "rc16"};
	in->mode = (uint8_t)(mods_pick(m, pm, 6) + 1);
	return 0;
}

static kiln_err dec_lop3(dec *x, parser *p, mods *m, emu_inst *in)
{
	if (x->o[4].kind != O_INT || x->o[4].imm > 255)
		return perr(p, m->line, "lop3: the lookup table must be an immediate 0-255");
	in->mode = (uint8_t)x->o[4].imm;
	return 0;
}

/* dp4a / dp2a.lo / dp2a.hi with two source types */
static kiln_err dec_dp(dec *x, parser *p, mods *m, emu_inst *in)
{
	if (m->ntypes != 2)
		return perr(p, m->line, "%.*s: needs two source types", (int)m->oplen, m->op);
	kiln_err hi = in->op == OP_DP2A ? mods_either(p, m, "hi", "lo", "dp2a: needs .lo or .hi") : 0;
	in->mode = (uint8_t)hi;
	return hi < 0 ? hi : 0;
}

/* rcp sqrt rsqrt ex2 lg2 sin cos tanh: f32/f64 (.approx or a rounding), ex2/tanh also half. */
static kiln_err dec_mufu(dec *x, parser *p, mods *m, emu_inst *in)
{
	emu_type t0 = x->t0;
	if (!emu_type_is_float(t0))
		return perr(p, m->line, "%.*s: needs a float type", (int)m->oplen, m->op);
	/* ex2 / tanh also exist for f16, bf16 and their x2 packings (.approx only) */
	if (t0 != EMU_F32 && t0 != EMU_F64 &&
	    ((in->op != OP_EX2 && in->op != OP_TANH) || !is_half(t0) || !(in->flags & F_APPROX)))
		return punsup(p, m->line, m->op, m->oplen);
	if (!(in->flags & F_APPROX) && !in->rnd)
		return perr(p, m->line, "%.*s: needs .approx or a rounding modifier", (int)m->oplen, m->op);
	in->cls = t0 == EMU_F64 ? CLS_FP64 : CLS_MUFU;
	return 0;
}

static kiln_err dec_testp(dec *x, parser *p, mods *m, emu_inst *in)
{
	static const char *const tn[] = {"finite", "infinite", "number", "notanumber", "normal", "subnormal"};
	return mods_mode(x, tn, 6, "testp: missing test");
}

/* cvt: two types; .satfinite/.relu narrowing; f32 pairs packed into f16x2/bf16x2. */
static kiln_err dec_cvt(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	emu_type t0 = x->t0, t1 = x->t1;
	if (m->ntypes < 2) /* NVRTC's cvt always has two: a type we do not know (fp8, tf32 ...) */
		return punsup(p, m->line, m->op, m->oplen);
	bool satf = has(m, "satfinite"), relu = has(m, "relu");
	if (t0 == EMU_B128)
		return punsup(p, m->line, m->op, m->oplen);
	if (satf || relu) {
		/* .satfinite / .relu: only float narrowing to f16, bf16 (and their x2) here */
		if (t1 != EMU_F32 || (t0 != EMU_F16 && t0 != EMU_BF16 && t0 != EMU_F16X2 && t0 != EMU_BF16X2))
			return punsup(p, m->line, m->op, m->oplen);
		in->mode = (uint8_t)((satf ? 1 : 0) | (relu ? 2 : 0));
	}
	bool pack = t0 == EMU_F16X2 || t0 == EMU_BF16X2;
	if (pack && t1 != EMU_F32)
		return punsup(p, m->line, m->op, m->oplen);
	NEED(2 + pack, 2 + pack);
	in->op = pack ? OP_CVT_PACK : OP_CVT;
	DST(0);
	SRC(1, a, t1);
	if (pack)
		SRC(2, b, t1);
	return DEC_DONE;
}

static kiln_err dec_cvta(dec *x, parser *p, mods *m, emu_inst *in)
{
	bool to = has(m, "to");
	int sp = mods_space(m);
	if (sp == KILN_EMU_SPACE_NONE || sp == KILN_EMU_SPACE_PARAM)
		return punsup(p, m->line, m->op, m->oplen);
	in->space = (uint8_t)sp;
	in->mode = to;
	return 0;
}

/* ld / ldu / st: space, vector width, memory order, then address and value(s). */
static kiln_err dec_ldst(dec *x, parser *p, mods *m, emu_inst *in)
{
	emu_type t0 = x->t0;
	bool st = in->op == OP_ST;
	bool hint = has(m, "L2::cache_hint");
	NEED(2, hint ? 3 : 2);
	if (need_type(x))
		return p->err;
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
	opnd *ad = st ? &x->o[0] : &x->o[1];
	opnd *val = st ? &x->o[1] : &x->o[0];
	if (addr_op(p, ad, in))
		return p->err;
	if (in->vec > 1) {
		if (val->kind != O_VEC || val->nvec != in->vec)
			return perr(p, m->line, "%.*s: expected a %u-element vector", (int)m->oplen, m->op, in->vec);
		kiln_err e = vec_elems(x, val, !st, t0);
		if (e)
			return e;
	} else {
		kiln_err e = st ? src(p, val, t0, &in->v[0]) : dst(p, val, &in->v[0]);
		if (e)
			return e;
	}
	if (sp == KILN_EMU_SPACE_PARAM && in->sym < 0)
		return punsup(p, m->line, "ld.param through a register address", 36);
	return DEC_DONE;
}

/* atom / red: operation, order, space; atom returns the old value, cas has two sources. */
static kiln_err dec_atom(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	emu_type t0 = x->t0;
	bool red = in->op == OP_RED;
	if (need_type(x))
		return p->err;
	static const char *const an[] = {"add", "min", "max", "exch", "cas", "and", "or", "xor", "inc", "dec"};
	int k = mods_pick(m, an, 10);
	if (k < 0)
		return perr(p, m->line, "%.*s: missing operation", (int)m->oplen, m->op);
	if (has(m, "v2") || has(m, "v4") || has(m, "v8"))
		return punsup(p, m->line, m->op, m->oplen);
	in->mode = (uint8_t)k;
	in->mode2 = mods_order(m, true);
	in->space = (uint8_t)mods_space(m);
	in->size = (uint8_t)emu_type_size(t0);
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
	return DEC_DONE;
}

static kiln_err dec_shfl(dec *x, parser *p, mods *m, emu_inst *in)
{
	static const char *const sn[] = {"up", "down", "bfly", "idx"};
	return mods_mode(x, sn, 4, "shfl: missing mode");
}

/* vote.all/any/uni to a predicate, vote.ballot to a value; optional member mask. */
static kiln_err dec_vote(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	static const char *const vn[] = {"all", "any", "uni", "ballot"};
	if (mods_mode(x, vn, 4, "vote: missing mode"))
		return p->err;
	if (in->mode == VOTE_BALLOT)
		DST(0);
	else if (pdst(p, &o[0], &in->d))
		return p->err;
	if (psrc(p, &o[1], &in->a))
		return p->err;
	in->mode2 = o[1].neg;
	kiln_err e = src_mask(x, 2, &in->e);
	return e ? e : DEC_DONE;
}

static kiln_err dec_match(dec *x, parser *p, mods *m, emu_inst *in)
{
	kiln_err all = mods_either(p, m, "all", "any", "match: needs .any or .all");
	in->mode = (uint8_t)all;
	return all < 0 ? all : 0;
}

static kiln_err dec_redux(dec *x, parser *p, mods *m, emu_inst *in)
{
	static const char *const rn[] = {"add", "min", "max", "and", "or", "xor"};
	static const int rk[] = {ATOM_ADD, ATOM_MIN, ATOM_MAX, ATOM_AND, ATOM_OR, ATOM_XOR};
	int k = mods_pick(m, rn, 6);
	if (k < 0 || emu_type_is_float(x->t0))
		return punsup(p, m->line, m->op, m->oplen);
	in->mode = (uint8_t)rk[k];
	return 0;
}

/* bar / barrier: .warp.sync, .arrive, .red.{popc,and,or}, or .sync with an optional count. */
static kiln_err dec_bar(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	int n = x->n;
	if (has(m, "warp")) {
		NEED(1, 1);
		in->op = OP_WARPSYNC;
		SRC(0, a, EMU_U32);
		return DEC_DONE;
	}
	if (has(m, "arrive")) { /* bar.arrive a, b: counts, does not wait */
		NEED(2, 2);
		in->mode = BAR_ARRIVE;
		SRC(0, a, EMU_U32);
		SRC(1, b, EMU_U32);
		return DEC_DONE;
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
		return DEC_DONE;
	}
	NEED(1, 2);
	SRC(0, a, EMU_U32);
	if (n == 2)
		SRC(1, b, EMU_U32);
	return DEC_DONE;
}

/* Instructions with no effect here (hints, prefetches): every modifier is accepted, but a
 * proxy fence of tensor maps or the async proxy is not supported. */
static kiln_err dec_nop(dec *x, parser *p, mods *m, emu_inst *in)
{
	m->used = 0xFFFFFFFFu;
	if (has(m, "proxy") && (has(m, "tensormap") || has(m, "async")))
		return punsup(p, m->line, m->op, m->oplen);
	return DEC_DONE;
}

/* membar / fence order this warp's memory accesses: a release for the global racecheck */
static kiln_err dec_fence(dec *x, parser *p, mods *m, emu_inst *in)
{
	kiln_err e = dec_nop(x, p, m, in);
	if (e == DEC_DONE) {
		in->op = OP_FENCE;
		in->mode = has(m, "cta") ? 1 : 0;
	}
	return e;
}

/* nanosleep: the warp yields to the scheduler */
static kiln_err dec_nanosleep(dec *x, parser *p, mods *m, emu_inst *in)
{
	m->used = 0xFFFFFFFFu;
	return DEC_DONE;
}

/* createpolicy: the policy is a 64-bit zero (cache hints have no effect here) */
static kiln_err dec_createpolicy(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	m->used = 0xFFFFFFFFu;
	DST(0);
	opnd z;
	memset(&z, 0, sizeof z);
	z.kind = O_INT;
	kiln_err e = src(p, &z, EMU_U64, &in->a);
	return e ? e : DEC_DONE;
}

/* cp.async (4, 8 or 16 bytes global to shared, optional source size) and its groups. */
static kiln_err dec_cp(dec *x, parser *p, mods *m, emu_inst *in)
{
	opnd *o = x->o;
	if (has(m, "bulk") || has(m, "tensor") || has(m, "mbarrier"))
		return punsup(p, m->line, m->op, m->oplen);
	if (!has(m, "async"))
		return punsup(p, m->line, m->op, m->oplen);
	if (has(m, "commit_group") || has(m, "wait_group") || has(m, "wait_all")) {
		m->used = 0xFFFFFFFFu;
		in->op = OP_NOP;
		in->cls = CLS_OTHER;
		return DEC_DONE;
	}
	has(m, "ca");
	has(m, "cg");
	NEED(3, 4);
	if (o[2].kind != O_INT || (o[2].imm != 4 && o[2].imm != 8 && o[2].imm != 16))
		return perr(p, m->line, "cp.async: copy size must be 4, 8 or 16");
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
	if (x->n == 4)
		SRC(3, e, EMU_U32);
	return DEC_DONE;
}

static kiln_err dec_bra(dec *x, parser *p, mods *m, emu_inst *in)
{
	kiln_err e = add_fixup(p, &x->o[0], cur(p)->ncode - 1);
	return e ? e : DEC_DONE;
}
#undef SRC
#undef DST
#undef NEED

#define S(f, t) {SF_##f, TY_##t}
#define NO_SRC {{SF_END, TY_T0}}
#define ANY 0, 8 /* any operand count (the handler checks it) */
#define UNSUP(name) {name, 0, 0, 0, ANY, R_UNSUP, CLS_INT, DK_NONE, NO_SRC, NULL}
/* name, op, op_f, op_h, lo, hi, flags, cls, dst, sources, handler; sorted by name */
static const op_row optab[] = {
	{"abs", OP_ABS, OP_FABS, OP_HABS, 2, 2, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0)}, dec_arith},
	{"activemask", OP_ACTIVEMASK, 0, 0, 1, 1, 0, CLS_SHFL, DK_REG, NO_SRC, NULL},
	{"add", OP_ADD, OP_FADD, OP_HADD, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	{"addc", OP_ADD, 0, 0, 3, 3, R_TYPE_FIRST | R_CARRY, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	UNSUP("alloca"),
	{"and", OP_AND, OP_AND_PRED, 0, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_logic},
	{"applypriority", OP_NOP, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_nop},
	{"atom", OP_ATOM, 0, 0, ANY, 0, CLS_MEM, DK_NONE, NO_SRC, dec_atom},
	{"bar", OP_BAR, 0, 0, ANY, 0, CLS_BAR, DK_NONE, NO_SRC, dec_bar},
	{"barrier", OP_BAR, 0, 0, ANY, 0, CLS_BAR, DK_NONE, NO_SRC, dec_bar},
	{"bfe", OP_BFE, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, T0), S(B, U32), S(C, U32)}, NULL},
	{"bfi", OP_BFI, 0, 0, 5, 5, 0, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(C, U32), S(E, U32)}, NULL},
	{"bfind", OP_BFIND, 0, 0, 2, 2, 0, CLS_INT, DK_REG, {S(A, T0)}, dec_bfind},
	UNSUP("bmsk"),
	{"bra", OP_BRA, 0, 0, 1, 1, 0, CLS_CTRL, DK_NONE, NO_SRC, dec_bra},
	{"brev", OP_BREV, 0, 0, 2, 2, 0, CLS_INT, DK_REG, {S(A, T0)}, NULL},
	{"brkpt", OP_TRAP, 0, 0, ANY, 0, CLS_CTRL, DK_NONE, NO_SRC, NULL},
	UNSUP("brx"),
	UNSUP("clusterlaunchcontrol"),
	{"clz", OP_CLZ, 0, 0, 2, 2, 0, CLS_INT, DK_REG, {S(A, T0)}, NULL},
	{"cnot", OP_CNOT, 0, 0, 2, 2, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0)}, dec_logic},
	{"copysign", OP_COPYSIGN, 0, 0, 3, 3, R_FCLS, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, NULL},
	{"cos", OP_COS, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	{"cp", OP_CP_ASYNC, 0, 0, ANY, 0, CLS_MEM, DK_NONE, NO_SRC, dec_cp},
	{"createpolicy", OP_MOV, 0, 0, 1, 8, 0, CLS_INT, DK_NONE, NO_SRC, dec_createpolicy},
	{"cvt", OP_CVT, 0, 0, ANY, 0, CLS_CVT, DK_NONE, NO_SRC, dec_cvt},
	{"cvta", OP_CVTA, 0, 0, 2, 2, 0, CLS_INT, DK_REG, {S(A, U64)}, dec_cvta},
	{"discard", OP_NOP, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_nop},
	{"div", OP_DIV, OP_FDIV, 0, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	{"dp2a", OP_DP2A, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, B32), S(B, B32), S(C, B32)}, dec_dp},
	{"dp4a", OP_DP4A, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, B32), S(B, B32), S(C, B32)}, dec_dp},
	UNSUP("elect"),
	{"ex2", OP_EX2, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	{"exit", OP_EXIT, 0, 0, 0, 0, 0, CLS_CTRL, DK_NONE, NO_SRC, NULL},
	{"fence", OP_FENCE, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_fence},
	{"fma", 0, OP_FFMA, OP_HFMA, 4, 4, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(C, MADC)}, dec_arith},
	{"fns", OP_FNS, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, B32), S(B, U32), S(C, S32)}, NULL},
	UNSUP("getctarank"),
	UNSUP("griddepcontrol"),
	UNSUP("istypep"),
	{"ld", OP_LD, 0, 0, ANY, 0, CLS_MEM, DK_NONE, NO_SRC, dec_ldst},
	UNSUP("ldmatrix"),
	{"ldu", OP_LD, 0, 0, ANY, 0, CLS_MEM, DK_NONE, NO_SRC, dec_ldst},
	{"lg2", OP_LG2, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	{"lop3", OP_LOP3, 0, 0, 5, 5, 0, CLS_INT, DK_REG, {S(A, B32), S(B, B32), S(C, B32)}, dec_lop3},
	{"mad", OP_MAD_LO, OP_FFMA, OP_HFMA, 4, 4, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(C, MADC)}, dec_arith},
	{"mad24", OP_MAD24_LO, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(C, T0)}, dec_mul24},
	{"madc", OP_MAD_LO, 0, 0, 4, 4, R_TYPE_FIRST | R_CARRY, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(C, MADC)}, dec_arith},
	{"match", OP_MATCH, 0, 0, 3, 3, 0, CLS_SHFL, DK_PAIR, {S(A, T0), S(E, U32)}, dec_match},
	{"max", OP_MAX, OP_FMAX, OP_HMAX, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	UNSUP("mbarrier"),
	{"membar", OP_FENCE, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_fence},
	{"min", OP_MIN, OP_FMIN, OP_HMIN, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	UNSUP("mma"),
	{"mov", OP_MOV, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mov},
	{"mul", OP_MUL_LO, OP_FMUL, OP_HMUL, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	{"mul24", OP_MUL24_LO, 0, 0, 3, 3, 0, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_mul24},
	UNSUP("multimem"),
	{"nanosleep", OP_NANOSLEEP, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_nanosleep},
	{"neg", OP_NEG, OP_FNEG, OP_HNEG, 2, 2, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0)}, dec_arith},
	{"not", OP_NOT, OP_NOT_PRED, 0, 2, 2, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0)}, dec_logic},
	{"or", OP_OR, OP_OR_PRED, 0, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_logic},
	{"pmevent", OP_NOP, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_nop},
	{"popc", OP_POPC, 0, 0, 2, 2, 0, CLS_INT, DK_REG, {S(A, T0)}, NULL},
	{"prefetch", OP_NOP, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_nop},
	{"prefetchu", OP_NOP, 0, 0, ANY, 0, CLS_OTHER, DK_NONE, NO_SRC, dec_nop},
	{"prmt", OP_PRMT, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, B32), S(B, B32), S(C, B32)}, dec_prmt},
	{"rcp", OP_RCP, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	{"red", OP_RED, 0, 0, ANY, 0, CLS_MEM, DK_NONE, NO_SRC, dec_atom},
	{"redux", OP_REDUX, 0, 0, 3, 3, 0, CLS_SHFL, DK_REG, {S(A, T0), S(E, U32)}, dec_redux},
	{"rem", OP_REM, 0, 0, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	{"ret", OP_RET, 0, 0, 0, 0, 0, CLS_CTRL, DK_NONE, NO_SRC, NULL},
	{"rsqrt", OP_RSQRT, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	{"sad", OP_SAD, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(C, T0)}, NULL},
	{"selp", OP_SELP, 0, 0, 4, 4, R_TYPE, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(PC, T0)}, NULL},
	{"set", OP_SET, 0, 0, ANY, 0, CLS_INT, DK_NONE, NO_SRC, dec_setp},
	UNSUP("setmaxnreg"),
	{"setp", OP_SETP, 0, 0, ANY, 0, CLS_INT, DK_NONE, NO_SRC, dec_setp},
	{"shf", OP_SHF_L, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, B32), S(B, B32), S(C, U32)}, dec_shf},
	{"shfl", OP_SHFL, 0, 0, 4, 5, 0, CLS_SHFL, DK_PAIR, {S(A, B32), S(B, U32), S(C, U32), S(MASK, U32)}, dec_shfl},
	{"shl", OP_SHL, 0, 0, 3, 3, 0, CLS_INT, DK_REG, {S(A, T0), S(B, U32)}, NULL},
	{"shr", OP_SHR, 0, 0, 3, 3, 0, CLS_INT, DK_REG, {S(A, T0), S(B, U32)}, NULL},
	{"sin", OP_SIN, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	{"slct", OP_SLCT, 0, 0, 4, 4, 0, CLS_INT, DK_REG, {S(A, T0), S(B, T0), S(C, T1)}, NULL},
	{"sqrt", OP_SQRT, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	{"st", OP_ST, 0, 0, ANY, 0, CLS_MEM, DK_NONE, NO_SRC, dec_ldst},
	UNSUP("stackrestore"),
	UNSUP("stacksave"),
	UNSUP("stmatrix"),
	{"sub", OP_SUB, OP_FSUB, OP_HSUB, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	{"subc", OP_SUB, 0, 0, 3, 3, R_TYPE_FIRST | R_CARRY, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_arith},
	UNSUP("suld"),
	UNSUP("suq"),
	UNSUP("sured"),
	UNSUP("sust"),
	UNSUP("szext"),
	{"tanh", OP_TANH, 0, 0, 2, 2, R_TYPE, CLS_INT, DK_REG, {S(A, T0)}, dec_mufu},
	UNSUP("tcgen05"),
	{"testp", OP_TESTP, 0, 0, 2, 2, R_FCLS, CLS_INT, DK_PRED, {S(A, T0)}, dec_testp},
	UNSUP("tex"),
	UNSUP("tld4"),
	{"trap", OP_TRAP, 0, 0, ANY, 0, CLS_CTRL, DK_NONE, NO_SRC, NULL},
	UNSUP("txq"),
	{"vote", OP_VOTE, 0, 0, 2, 3, 0, CLS_SHFL, DK_NONE, NO_SRC, dec_vote},
	UNSUP("wgmma"),
	UNSUP("wmma"),
	{"xor", OP_XOR, OP_XOR_PRED, 0, 3, 3, R_TYPE_FIRST, CLS_INT, DK_REG, {S(A, T0), S(B, T0)}, dec_logic},
};
#undef S
#undef NO_SRC
#undef ANY
#undef UNSUP

/* optab's order, which op_find's bsearch needs (asserted by kiln_emu_module_parse) */
static bool optab_sorted(void)
{
	for (size_t i = 1; i < KILN_ARRAY_LEN(optab); i++)
		if (strcmp(optab[i - 1].name, optab[i].name) >= 0)
			return false;
	return true;
}

struct op_key { const char *s; size_t n; };

static int op_cmp(const void *key, const void *row)
{
	const struct op_key *k = key;
	const char *name = ((const op_row *)row)->name;
	int c = strncmp(k->s, name, k->n);
	return c ? c : name[k->n] ? -1 : 0;
}

/* The row of an instruction's base opcode (the text before its first '.'), or NULL. */
static const op_row *op_find(const mods *m)
{
	struct op_key k = {m->op, 0};
	while (k.n < m->oplen && m->op[k.n] != '.')
		k.n++;
	return bsearch(&k, optab, KILN_ARRAY_LEN(optab), sizeof optab[0], op_cmp);
}

/* One instruction from its row: the modifiers every opcode takes (.ftz .sat .approx and a
 * rounding), the operand count and type checks, the row's handler, then its operands. */
static kiln_err decode(parser *p, mods *m, const op_row *r, opnd *o, int n, emu_inst *in)
{
	dec x = {p, m, o, n, in, EMU_B32, EMU_B32, r};
	x.t0 = m->ntypes > 0 ? (emu_type)m->types[0] : EMU_B32;
	x.t1 = m->ntypes > 1 ? (emu_type)m->types[1] : x.t0;
	in->type = (uint8_t)x.t0;
	in->type2 = (uint8_t)x.t1;
	in->cls = CLS_INT;
	if (has(m, "ftz"))
		in->flags |= F_FTZ;
	if (has(m, "sat"))
		in->flags |= F_SAT;
	if (has(m, "approx"))
		in->flags |= F_APPROX;
	in->rnd = (uint8_t)mods_rnd(m);
	in->nops = (uint8_t)n;
	if (!r || (r->flags & R_UNSUP))
		return punsup(p, m->line, m->op, m->oplen);
	if ((r->flags & R_TYPE_FIRST) && need_type(&x))
		return p->err;
	if (need_ops(p, m, n, r->lo, r->hi) || ((r->flags & R_TYPE) && need_type(&x)))
		return p->err;
	in->op = r->op;
	in->cls = (uint8_t)((r->flags & R_FCLS) ? fclass(x.t0) : r->cls);
	kiln_err e = r->fn ? r->fn(&x, p, m, in) : 0;
	if (e)
		return e == DEC_DONE ? 0 : e;
	return dec_operands(&x);
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
	if (grow((void **)&p->labels, &p->caplabels, p->nlabels, sizeof *p->labels))
		return KILN_ENOMEM;
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
	const op_row *row = op_find(&m);
	if (row && (row->flags & R_UNSUP))
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
	if (decode(p, &m, row, ops, n, in))
		return p->err;
	in = &cur(p)->code[at];
	in->guard = (uint16_t)guard;
	in->gneg = gneg;
	return check_mods(p, &m);
}

/* The messages and capacity of a call's return or argument list. */
struct call_list { const char *bad, *nonparam, *many; uint32_t cap; };

/* The .param symbols of a call's return or argument list, up to its ')' (not consumed). */
static kiln_err call_syms(parser *p, uint32_t line, const struct call_list *l, int32_t *out, uint32_t *n)
{
	while (!is_punct(peek(p), ')')) {
		tok *t = next(p);
		opnd o;
		memset(&o, 0, sizeof o);
		if (t->kind != T_WORD || parse_name_operand(p, t, &o))
			return p->err ? p->err : perr(p, t->line, "%s", l->bad);
		if (o.kind != O_SYM || !p->mod->syms[o.sym].is_fparam)
			return punsup(p, line, l->nonparam, strlen(l->nonparam));
		if (*n == l->cap)
			return perr(p, line, "%s", l->many);
		out[(*n)++] = o.sym;
		if (!accept(p, ','))
			break;
	}
	return 0;
}

static kiln_err decode_call(parser *p, mods *m, uint32_t guard, bool gneg, uint32_t line)
{
	has(m, "uni");
	if (check_mods(p, m))
		return p->err;
	emu_call c;
	memset(&c, 0, sizeof c);
	static const struct call_list rets = {"bad call return operand", "call with non-.param return operands",
					      "too many call return values", 8};
	static const struct call_list args = {"bad call argument", "call with non-.param arguments",
					      "too many call arguments", 32};
	if (accept(p, '(')) {
		if (call_syms(p, line, &rets, c.ret, &c.nret))
			return p->err;
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
		if (expect(p, '(') || call_syms(p, line, &args, c.args, &c.nargs))
			return p->err;
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
	uint32_t marks[64];
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

/* An instruction the flattening adds (a device printf, a parameter copy): unguarded. */
static void flat_inst(emu_inst *in, uint16_t op, uint32_t line)
{
	memset(in, 0, sizeof *in);
	in->op = op;
	in->cls = CLS_OTHER;
	in->guard = EMU_NOPRED;
	in->line = line;
	in->d = in->d2 = in->a = in->b = in->c = in->e = EMU_NOREG;
	in->sym = -1;
}

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
		return 0; /* device printf: a builtin (OP_PRINTF) */
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

/* A call's parameter copies (cp, an OP_PCOPY) of n .param symbols from[k] to to[k]. */
static kiln_err flat_copies(flat *fl, emu_inst *cp, const int32_t *from, const int32_t *to, uint32_t n)
{
	for (uint32_t k = 0; k < n; k++) {
		const emu_sym *f = &fl->p->mod->syms[from[k]];
		const emu_sym *t = &fl->p->mod->syms[to[k]];
		cp->imm = frame_addr(fl, t);
		cp->target = frame_addr(fl, f);
		cp->e = f->size < t->size ? f->size : t->size;
		kiln_err err = flat_emit(fl, cp, NULL);
		if (err)
			return err;
	}
	return 0;
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
			if (!g->has_body && strcmp(g->name, "vprintf") == 0 && c->nargs == 2) {
				/* vprintf(format, argument buffer): both pointers in the call frame */
				emu_inst pf;
				flat_inst(&pf, OP_PRINTF, in.line);
				pf.imm = frame_addr(fl, &p->mod->syms[c->args[0]]);
				pf.target = frame_addr(fl, &p->mod->syms[c->args[1]]);
				pf.e = c->nret ? frame_addr(fl, &p->mod->syms[c->ret[0]]) : EMU_NOREG;
				if ((err = flat_emit(fl, &pf, NULL)))
					goto done;
				if (guarded)
					fl->code[skip_at].target = fl->n | 0x80000000u; /* absolute */
				continue;
			}
			emu_inst cp;
			flat_inst(&cp, OP_PCOPY, in.line);
			if ((err = flat_copies(fl, &cp, c->args, g->params, c->nargs)))
				goto done;
			fl->stack[fl->depth++] = c->callee;
			err = flat_func(fl, c->callee);
			fl->depth--;
			if (err)
				goto done;
			f = &p->mod->funcs[fi];
			if ((err = flat_copies(fl, &cp, g->rets, c->ret, c->nret)))
				goto done;
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
	assert(optab_sorted());
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
