/* Text from the model made safe for a terminal or a commit message: every control
 * character (C0, DEL, C1 as UTF-8 or as a raw byte), every invalid UTF-8 byte and the
 * bidirectional overrides (Trojan Source) are written in a visible form (\x1b, \r,
 * \u202e). Multi-line text may keep \n and \t. One pass, linear in the input. */
#include "util/util.h"

#include <stdio.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 when invalid. */
static size_t utf8_len(const unsigned char *s, size_t n, uint32_t *cp)
{
	size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
	if (s[0] < 0xc2 || s[0] > 0xf4 || len > n)
		return 0;
	uint32_t c = s[0] & (0x7f >> len);
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = c << 6 | (s[i] & 0x3f);
	}
	if ((len == 3 && (c < 0x800 || (c >= 0xd800 && c <= 0xdfff))) || (len == 4 && (c < 0x10000 || c > 0x10ffff)))
		return 0;
	*cp = c;
	return len;
}

/* Code points a terminal or an editor acts on: C1 controls, bidi embeddings, overrides
 * and isolates, line and paragraph separators. */
static bool dangerous_cp(uint32_t c)
{
	return (c >= 0x80 && c <= 0x9f) || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069) ||
	       c == 0x200e || c == 0x200f || c == 0x061c || c == 0x2028 || c == 0x2029;
}

static kiln_err put_byte_escape(kiln_buf *b, unsigned char c)
{
	static const char named[] = "\a" "a" "\b" "b" "\f" "f" "\n" "n" "\r" "r" "\t" "t" "\v" "v";
	for (size_t i = 0; i + 1 < sizeof named; i += 2)
		if (named[i] == (char)c) {
			char t[3] = {'\\', named[i + 1], 0};
			return kiln_buf_append(b, t, 2);
		}
	char t[5];
	snprintf(t, sizeof t, "\\x%02x", c);
	return kiln_buf_append(b, t, 4);
}

kiln_err kiln_text_escape_to(kiln_buf *b, const char *text, size_t n, unsigned flags)
{
	const unsigned char *s = (const unsigned char *)(text ? text : "");
	size_t run = 0; /* bytes copied verbatim, pending */
	kiln_err e = KILN_OK;
	for (size_t i = 0; i < n && !e;) {
		unsigned char c = s[i];
		size_t len = 1;
		uint32_t cp = c;
		bool bad;
		if (c < 0x80)
			bad = (c < 0x20 || c == 0x7f) && !((flags & KILN_TEXT_MULTILINE) && (c == '\n' || c == '\t'));
		else
			bad = (len = utf8_len(s + i, n - i, &cp)) == 0 || dangerous_cp(cp);
		if (!bad) {
			run += len;
			i += len;
			continue;
		}
		if (run)
			e = kiln_buf_append(b, s + i - run, run);
		run = 0;
		if (e)
			break;
		if (len == 0 || cp < 0x80)
			e = put_byte_escape(b, c);
		else
			e = kiln_buf_printf(b, "\\u%04x", (unsigned)cp);
		i += len ? len : 1;
	}
	if (!e && run)
		e = kiln_buf_append(b, s + n - run, run);
	return e;
}

char *kiln_text_escape(const char *text, unsigned flags)
{
	kiln_buf b = KILN_BUF_INIT;
	if (kiln_text_escape_to(&b, text, text ? strlen(text) : 0, flags)) {
		kiln_buf_free(&b);
		return NULL;
	}
	return kiln_buf_detach(&b);
}

void kiln_text_print(FILE *f, const char *text, unsigned flags)
{
	kiln_buf b = KILN_BUF_INIT;
	const char *s = text ? text : "";
	size_t n = strlen(s);
	/* in slices, so a 8 MiB reply does not need a second 8 MiB (plus escapes) at once;
	 * a slice ends on a byte that is not inside a UTF-8 sequence */
	for (size_t i = 0; i < n;) {
		size_t k = n - i < 65536 ? n - i : 65536, back = 0;
		while (i + k < n && back < 3 && ((unsigned char)s[i + k] & 0xc0) == 0x80)
			k--, back++;
		b.len = 0;
		if (kiln_text_escape_to(&b, s + i, k, flags) == KILN_OK && b.len)
			fwrite(b.data, 1, b.len, f);
		i += k;
	}
	kiln_buf_free(&b);
}

size_t kiln_text_word_cut(const char *m, size_t max)
{
	size_t n = strlen(m);
	if (n <= max)
		return n;
	size_t cut = max;
	while (cut > 0 && m[cut] != ' ')
		cut--;
	if (cut == 0) /* one huge word: cut on a character boundary */
		for (cut = max; cut > 0 && ((unsigned char)m[cut] & 0xC0) == 0x80; cut--)
			;
	while (cut > 0 && strchr(" ,;:", m[cut - 1]))
		cut--;
	return cut;
}
