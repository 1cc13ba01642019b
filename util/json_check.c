/* The one JSON rule kiln applies to every JSON text it reads from a file, an LLM or a
 * child: RFC 8259 exactly. One value with optional whitespace around it and nothing after
 * it, no comments, no trailing commas, strings of valid UTF-8 without raw control
 * characters, numbers without leading zeros, '+', '.5' or hex. Linear time, no recursion
 * (nesting is capped), so a hostile text costs one pass; SQLite's json_valid() accepts
 * everything that passes here. */
#include "util/util.h"

#include <string.h>

#define JSON_MAX_DEPTH 512

typedef struct jscan {
	const unsigned char *s;
	size_t len, i;
	const char *why; /* first failure */
} jscan;

static bool fail(jscan *j, const char *why)
{
	if (!j->why)
		j->why = why;
	return false;
}

static void skip_ws(jscan *j)
{
	while (j->i < j->len && (j->s[j->i] == ' ' || j->s[j->i] == '\t' || j->s[j->i] == '\n' ||
				 j->s[j->i] == '\r'))
		j->i++;
}

/* Length of the UTF-8 sequence starting at s[0] (>= 0x80), 0 when invalid (overlong,
 * surrogate, above U+10FFFF, truncated). */
size_t kiln_utf8_seq_len(const unsigned char *s, size_t avail)
{
	unsigned c = s[0];
	size_t n;
	unsigned lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		n = 2;
	else if (c >= 0xE0 && c <= 0xEF) {
		n = 3;
		if (c == 0xE0)
			lo = 0xA0;
		if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		n = 4;
		if (c == 0xF0)
			lo = 0x90;
		if (c == 0xF4)
			hi = 0x8F;
	} else
		return 0;
	if (avail < n || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t k = 2; k < n; k++)
		if (s[k] < 0x80 || s[k] > 0xBF)
			return 0;
	return n;
}

static bool is_hex(unsigned char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* The value of the four hex digits after "\\u" at j->s[at]; -1 when they are not there. */
static long hex4(const jscan *j, size_t at)
{
	long v = 0;
	for (size_t k = 2; k < 6; k++) {
		if (at + k >= j->len || !is_hex(j->s[at + k]))
			return -1;
		unsigned char c = j->s[at + k];
		v = v * 16 + (c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
	}
	return v;
}

static bool scan_string(jscan *j)
{
	j->i++; /* the opening quote */
	while (j->i < j->len) {
		unsigned char c = j->s[j->i];
		if (c == '"') {
			j->i++;
			return true;
		}
		if (c < 0x20)
			return fail(j, "a raw control character in a string (escape it)");
		if (c == '\\') {
			if (j->i + 1 >= j->len)
				break;
			unsigned char e = j->s[j->i + 1];
			if (e == 'u') {
				long u = hex4(j, j->i);
				if (u < 0)
					return fail(j, "a \\u escape needs four hex digits");
				if (u >= 0xDC00 && u <= 0xDFFF)
					return fail(j, "a \\u escape is a lone low surrogate");
				j->i += 6;
				if (u >= 0xD800 && u <= 0xDBFF) { /* UTF-16: a low surrogate escape must follow */
					long lo = j->i + 1 < j->len && j->s[j->i] == '\\' && j->s[j->i + 1] == 'u' ? hex4(j, j->i) : -1;
					if (lo < 0xDC00 || lo > 0xDFFF)
						return fail(j, "a \\u escape is a high surrogate without its low half");
					j->i += 6;
				}
			} else if (strchr("\"\\/bfnrt", e) && e) {
				j->i += 2;
			} else
				return fail(j, "an invalid escape in a string");
			continue;
		}
		if (c >= 0x80) {
			size_t n = kiln_utf8_seq_len(j->s + j->i, j->len - j->i);
			if (!n)
				return fail(j, "invalid UTF-8 in a string");
			j->i += n;
			continue;
		}
		j->i++;
	}
	return fail(j, "an unterminated string");
}

static bool digits(jscan *j)
{
	size_t start = j->i;
	while (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9')
		j->i++;
	return j->i > start;
}

static bool scan_number(jscan *j)
{
	if (j->s[j->i] == '-')
		j->i++;
	if (j->i < j->len && j->s[j->i] == '0') {
		j->i++;
		if (j->i < j->len && j->s[j->i] >= '0' && j->s[j->i] <= '9')
			return fail(j, "a number with a leading zero");
	} else if (!digits(j))
		return fail(j, "a malformed number");
	if (j->i < j->len && j->s[j->i] == '.') {
		j->i++;
		if (!digits(j))
			return fail(j, "a number needs digits after '.'");
	}
	if (j->i < j->len && (j->s[j->i] == 'e' || j->s[j->i] == 'E')) {
		j->i++;
		if (j->i < j->len && (j->s[j->i] == '+' || j->s[j->i] == '-'))
			j->i++;
		if (!digits(j))
			return fail(j, "a number needs digits in its exponent");
	}
	return true;
}

static bool scan_word(jscan *j, const char *w)
{
	size_t n = strlen(w);
	if (j->len - j->i < n || memcmp(j->s + j->i, w, n) != 0)
		return fail(j, "an unexpected character (not a JSON value)");
	j->i += n;
	return true;
}

/* One scalar value, or the opening bracket of a container (pushed on stack). */
static bool scan_value_start(jscan *j, char *stack, size_t *depth)
{
	if (j->i >= j->len)
		return fail(j, "a value is missing");
	unsigned char c = j->s[j->i];
	switch (c) {
	case '{':
	case '[':
		if (*depth >= JSON_MAX_DEPTH)
			return fail(j, "nested too deeply");
		stack[(*depth)++] = (char)c;
		j->i++;
		return true;
	case '"': return scan_string(j);
	case 't': return scan_word(j, "true");
	case 'f': return scan_word(j, "false");
	case 'n': return scan_word(j, "null");
	default:
		if (c == '-' || (c >= '0' && c <= '9'))
			return scan_number(j);
		if (c == '/')
			return fail(j, "a comment (JSON has none)");
		return fail(j, "an unexpected character (not a JSON value)");
	}
}

static bool scan(jscan *j)
{
	char stack[JSON_MAX_DEPTH];
	size_t depth = 0;
	bool want_value = true; /* after '[', ',' or ':' (or at the start) */
	bool want_key = false;  /* after '{' or ',' in an object */
	bool empty_ok = false;  /* right after '{' or '[' */
	for (;;) {
		skip_ws(j);
		if (want_key) {
			if (empty_ok && j->i < j->len && j->s[j->i] == '}')
				goto close;
			if (j->i >= j->len || j->s[j->i] != '"')
				return fail(j, empty_ok ? "expected a key or '}'" : "expected a key after ',' (no trailing commas)");
			if (!scan_string(j))
				return false;
			skip_ws(j);
			if (j->i >= j->len || j->s[j->i] != ':')
				return fail(j, "expected ':' after a key");
			j->i++;
			want_key = false;
			want_value = true;
			empty_ok = false;
			continue;
		}
		if (want_value) {
			if (empty_ok && j->i < j->len && j->s[j->i] == ']')
				goto close;
			size_t before = depth;
			if (!scan_value_start(j, stack, &depth))
				return false;
			if (depth > before) {
				want_key = stack[depth - 1] == '{';
				want_value = !want_key;
				empty_ok = true;
				continue;
			}
			want_value = false;
		}
		/* after a complete value */
		empty_ok = false;
		skip_ws(j);
		if (depth == 0) {
			if (j->i < j->len)
				return fail(j, j->s[j->i] == '/' ? "a comment after the value (JSON has none)"
								: "text after the JSON value");
			return true;
		}
		if (j->i >= j->len)
			return fail(j, "the text ends inside an object or array");
		if (j->s[j->i] == ',') {
			j->i++;
			want_key = stack[depth - 1] == '{';
			want_value = !want_key;
			continue;
		}
close:
		if ((j->s[j->i] == '}' && stack[depth - 1] == '{') || (j->s[j->i] == ']' && stack[depth - 1] == '[')) {
			j->i++;
			depth--;
			want_key = want_value = empty_ok = false;
			continue;
		}
		if (j->s[j->i] == '/')
			return fail(j, "a comment (JSON has none)");
		return fail(j, stack[depth - 1] == '{' ? "expected ',' or '}'" : "expected ',' or ']'");
	}
}

kiln_err kiln_json_check(const char *text, size_t len, const char *where)
{
	jscan j = {(const unsigned char *)text, len, 0, NULL};
	/* a byte-order mark is refused too: cJSON and SQLite's json_valid() do not skip it */
	if (scan(&j))
		return KILN_OK;
	size_t line = 1, col = 1;
	for (size_t k = 0; k < j.i && k < len; k++) {
		col = text[k] == '\n' ? 1 : col + 1;
		line += text[k] == '\n';
	}
	return kiln_error_set(KILN_EINVAL, "%s: invalid JSON near line %zu, column %zu: %s", where, line, col,
			      j.why ? j.why : "malformed");
}
