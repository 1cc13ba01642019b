/* The checked integer expression evaluator of shapes, traffic and launch plans, and the
 * name environments it reads. Recursive descent over int64 with C precedence; / and %
 * truncate toward zero as in C; every overflow (__builtin_*_overflow), division by zero,
 * unknown name or function, wrong arity, trailing text and nesting past 64 levels is an
 * error naming `where` and the expression, never undefined behaviour. */
#include "targets/targets_int.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define MAX_DEPTH 64

void kiln_env_init(kiln_env *env)
{
	memset(env, 0, sizeof(*env));
}

kiln_err kiln_env_set(kiln_env *env, const char *name, int64_t value)
{
	size_t len = strlen(name);
	if (len == 0 || len >= KILN_NAME_MAX)
		return kiln_error_set(KILN_EINVAL, "environment: bad name \"%s\"", name);
	for (size_t i = 0; i < env->n; i++)
		if (strcmp(env->names[i], name) == 0) {
			env->values[i] = value;
			return KILN_OK;
		}
	if (env->n >= KILN_ENV_MAX)
		return kiln_error_set(KILN_EINVAL, "environment: more than %d names (adding \"%s\")",
				      KILN_ENV_MAX, name);
	memcpy(env->names[env->n], name, len + 1);
	env->values[env->n++] = value;
	return KILN_OK;
}

bool kiln_env_get(const kiln_env *env, const char *name, int64_t *out)
{
	for (size_t i = 0; i < env->n; i++)
		if (strcmp(env->names[i], name) == 0) {
			if (out)
				*out = env->values[i];
			return true;
		}
	return false;
}

typedef struct parser {
	const char *src, *p;
	const kiln_env *env;       /* eval mode */
	const char *const *names;  /* check mode */
	size_t nnames;
	bool check;                /* names only, no arithmetic */
	const char *where;
	int depth;
} parser;

static kiln_err fail(parser *ps, kiln_err code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static kiln_err fail(parser *ps, kiln_err code, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	return kiln_error_set(code, "%s: expression \"%s\": %s", ps->where, ps->src, what);
}

static kiln_err fail_at(parser *ps, const char *what)
{
	char col[96];
	snprintf(col, sizeof(col), "%s at column %d", what, (int)(ps->p - ps->src) + 1);
	return fail(ps, KILN_EINVAL, "%s", col);
}

static void skip_ws(parser *ps)
{
	while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')
		ps->p++;
}

static kiln_err parse_expr(parser *ps, int64_t *out);

static kiln_err overflow(parser *ps, const char *op)
{
	return fail(ps, KILN_EOVERFLOW, "int64 overflow in '%s'", op);
}

static kiln_err apply(parser *ps, char op, int64_t a, int64_t b, int64_t *out)
{
	char ops[2] = {op, 0};
	if (ps->check) {
		*out = 0;
		return KILN_OK;
	}
	switch (op) {
	case '+':
		return __builtin_add_overflow(a, b, out) ? overflow(ps, ops) : KILN_OK;
	case '-':
		return __builtin_sub_overflow(a, b, out) ? overflow(ps, ops) : KILN_OK;
	case '*':
		return __builtin_mul_overflow(a, b, out) ? overflow(ps, ops) : KILN_OK;
	case '/':
	case '%':
		if (b == 0)
			return fail(ps, KILN_EINVAL, "%s by zero", op == '/' ? "division" : "modulo");
		if (a == INT64_MIN && b == -1)
			return overflow(ps, ops);
		*out = op == '/' ? a / b : a % b;
		return KILN_OK;
	default:
		return fail(ps, KILN_ERR, "internal: operator '%s'", ops);
	}
}

static bool name_known(parser *ps, const char *name, int64_t *value)
{
	if (!ps->check)
		return kiln_env_get(ps->env, name, value);
	for (size_t i = 0; i < ps->nnames; i++)
		if (ps->names[i] && strcmp(ps->names[i], name) == 0) {
			*value = 0;
			return true;
		}
	return false;
}

/* "(known: a, b, c)" for an unknown-name message. */
static void known_list(parser *ps, char *out, size_t cap)
{
	size_t n = ps->check ? ps->nnames : ps->env->n, used = 0;
	out[0] = 0;
	for (size_t i = 0; i < n && used + 1 < cap; i++) {
		const char *nm = ps->check ? ps->names[i] : ps->env->names[i];
		int w = snprintf(out + used, cap - used, "%s%s", i ? ", " : "", nm ? nm : "");
		if (w < 0)
			break;
		used += (size_t)w;
	}
	if (used >= cap && cap > 4)
		memcpy(out + cap - 4, "...", 4);
}

static kiln_err call(parser *ps, const char *fn, int64_t *out)
{
	int64_t args[16];
	int n = 0;
	kiln_err e;
	bool is_ceil = strcmp(fn, "ceil_div") == 0, is_min = strcmp(fn, "min") == 0,
	     is_max = strcmp(fn, "max") == 0;
	if (!is_ceil && !is_min && !is_max)
		return fail(ps, KILN_EINVAL, "unknown function \"%s\" (known: ceil_div, min, max)", fn);
	ps->p++; /* '(' */
	skip_ws(ps);
	if (*ps->p != ')') {
		for (;;) {
			int64_t v;
			if ((e = parse_expr(ps, &v)))
				return e;
			if (n >= (int)KILN_ARRAY_LEN(args))
				return fail(ps, KILN_EINVAL, "too many arguments to %s (at most 16)", fn);
			args[n++] = v;
			skip_ws(ps);
			if (*ps->p == ',') {
				ps->p++;
				continue;
			}
			break;
		}
	}
	if (*ps->p != ')')
		return fail_at(ps, "expected ',' or ')'");
	ps->p++;
	if (is_ceil && n != 2)
		return fail(ps, KILN_EINVAL, "wrong number of arguments: %s takes 2", fn);
	if (!is_ceil && n < 2)
		return fail(ps, KILN_EINVAL, "wrong number of arguments: %s takes 2 or more", fn);
	if (ps->check) {
		*out = 0;
		return KILN_OK;
	}
	if (is_ceil) {
		int64_t a = args[0], b = args[1];
		if (b <= 0)
			return fail(ps, KILN_EINVAL, "ceil_div by a non-positive divisor (%lld)", (long long)b);
		/* b > 0: C truncation rounds toward zero, so only a positive remainder rounds up;
		 * no intermediate can overflow. */
		*out = a / b + (a % b > 0);
		return KILN_OK;
	}
	*out = args[0];
	for (int i = 1; i < n; i++)
		if (is_min ? args[i] < *out : args[i] > *out)
			*out = args[i];
	return KILN_OK;
}

static kiln_err parse_unary(parser *ps, int64_t *out);

static kiln_err parse_primary(parser *ps, int64_t *out)
{
	kiln_err e;
	skip_ws(ps);
	const char *p = ps->p;
	if (isdigit((unsigned char)*p)) {
		int64_t v = 0;
		while (isdigit((unsigned char)*p)) {
			if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *p - '0', &v))
				return fail(ps, KILN_EOVERFLOW, "integer literal does not fit in int64");
			p++;
		}
		if (isalpha((unsigned char)*p) || *p == '_' || *p == '.') {
			ps->p = p;
			return fail_at(ps, "unexpected character after a number");
		}
		ps->p = p;
		*out = v;
		return KILN_OK;
	}
	if (isalpha((unsigned char)*p) || *p == '_') {
		char name[KILN_NAME_MAX];
		size_t n = 0;
		while (isalnum((unsigned char)p[n]) || p[n] == '_')
			n++;
		if (n >= sizeof(name))
			return fail_at(ps, "name too long");
		memcpy(name, p, n);
		name[n] = 0;
		ps->p = p + n;
		skip_ws(ps);
		if (*ps->p == '(') {
			if (++ps->depth > MAX_DEPTH)
				return fail(ps, KILN_EINVAL, "nested deeper than %d levels", MAX_DEPTH);
			e = call(ps, name, out);
			ps->depth--;
			return e;
		}
		if (!name_known(ps, name, out)) {
			char known[200];
			known_list(ps, known, sizeof(known));
			return fail(ps, KILN_EINVAL, "unknown name \"%s\" (known: %s)", name, known);
		}
		return KILN_OK;
	}
	if (*p == '(') {
		if (++ps->depth > MAX_DEPTH)
			return fail(ps, KILN_EINVAL, "nested deeper than %d levels", MAX_DEPTH);
		ps->p++;
		if ((e = parse_expr(ps, out)))
			return e;
		skip_ws(ps);
		if (*ps->p != ')')
			return fail_at(ps, "expected ')'");
		ps->p++;
		ps->depth--;
		return KILN_OK;
	}
	if (*p == 0)
		return fail(ps, KILN_EINVAL, "unexpected end of expression");
	return fail_at(ps, "expected a number, a name or '('");
}

static kiln_err parse_unary(parser *ps, int64_t *out)
{
	skip_ws(ps);
	if (*ps->p == '-' || *ps->p == '+') {
		char op = *ps->p++;
		int64_t v;
		if (++ps->depth > MAX_DEPTH)
			return fail(ps, KILN_EINVAL, "nested deeper than %d levels", MAX_DEPTH);
		kiln_err e = parse_unary(ps, &v);
		ps->depth--;
		if (e)
			return e;
		return op == '-' ? apply(ps, '-', 0, v, out) : (*out = v, KILN_OK);
	}
	return parse_primary(ps, out);
}

static kiln_err parse_term(parser *ps, int64_t *out)
{
	kiln_err e = parse_unary(ps, out);
	for (;;) {
		if (e)
			return e;
		skip_ws(ps);
		char op = *ps->p;
		if (op != '*' && op != '/' && op != '%')
			return KILN_OK;
		ps->p++;
		int64_t rhs;
		if ((e = parse_unary(ps, &rhs)))
			return e;
		e = apply(ps, op, *out, rhs, out);
	}
}

static kiln_err parse_expr(parser *ps, int64_t *out)
{
	kiln_err e = parse_term(ps, out);
	for (;;) {
		if (e)
			return e;
		skip_ws(ps);
		char op = *ps->p;
		if (op != '+' && op != '-')
			return KILN_OK;
		ps->p++;
		int64_t rhs;
		if ((e = parse_term(ps, &rhs)))
			return e;
		e = apply(ps, op, *out, rhs, out);
	}
}

static kiln_err run(parser *ps, int64_t *out)
{
	int64_t v = 0;
	if (!ps->src)
		return kiln_error_set(KILN_EINVAL, "%s: missing expression", ps->where);
	skip_ws(ps);
	if (!*ps->p)
		return fail(ps, KILN_EINVAL, "empty expression");
	kiln_err e = parse_expr(ps, &v);
	if (e)
		return e;
	skip_ws(ps);
	if (*ps->p)
		return fail_at(ps, "unexpected text");
	if (out)
		*out = v;
	return KILN_OK;
}

kiln_err kiln_expr_eval(int64_t *out, const char *expr, const kiln_env *env, const char *where)
{
	static const kiln_env empty;
	parser ps = {expr, expr, env ? env : &empty, NULL, 0, false, where ? where : "expression", 0};
	return run(&ps, out);
}

kiln_err kiln_expr_check(const char *expr, const char *const *names, size_t n, const char *where)
{
	parser ps = {expr, expr, NULL, names, n, true, where ? where : "expression", 0};
	return run(&ps, NULL);
}

bool kiln_name_ok(const char *s)
{
	if (!s || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	size_t n = 0;
	for (; s[n]; n++)
		if (!(isalnum((unsigned char)s[n]) || s[n] == '_'))
			return false;
	return n < KILN_NAME_MAX;
}

bool kiln_name_reserved(const char *s)
{
	static const char *const reserved[] = {"ceil_div", "min", "max", "sm_count"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(reserved); i++)
		if (strcmp(s, reserved[i]) == 0)
			return true;
	return false;
}
