/* Allocation helpers and the capped growable buffer. Allocation failures set
 * KILN_ENOMEM and return NULL / the code; nothing here aborts. */
#include "util/util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local long alloc_budget = -1; /* -1: no injection */

void kiln_alloc_fail_after(long n)
{
	alloc_budget = n < 0 ? -1 : n;
}

bool kiln_alloc_should_fail(void)
{
	if (alloc_budget < 0)
		return false;
	if (alloc_budget == 0)
		return true;
	alloc_budget--;
	return false;
}

void *kiln_malloc(size_t n)
{
	void *p = kiln_alloc_should_fail() ? NULL : malloc(n ? n : 1);
	if (!p)
		kiln_error_set(KILN_ENOMEM, "out of memory allocating %zu bytes", n);
	return p;
}

void *kiln_calloc(size_t n, size_t size)
{
	void *p = kiln_alloc_should_fail() ? NULL : calloc(n ? n : 1, size ? size : 1);
	if (!p)
		kiln_error_set(KILN_ENOMEM, "out of memory allocating %zu x %zu bytes", n, size);
	return p;
}

void *kiln_realloc(void *p, size_t n)
{
	void *q = kiln_alloc_should_fail() ? NULL : realloc(p, n ? n : 1);
	if (!q)
		kiln_error_set(KILN_ENOMEM, "out of memory allocating %zu bytes", n);
	return q;
}

char *kiln_strndup(const char *s, size_t n)
{
	char *d = kiln_malloc(n + 1);
	if (!d)
		return NULL;
	memcpy(d, s, n);
	d[n] = 0;
	return d;
}

char *kiln_strdup(const char *s)
{
	return s ? kiln_strndup(s, strlen(s)) : NULL;
}

char *kiln_asprintf(const char *fmt, ...)
{
	kiln_buf b;
	va_list ap;
	kiln_buf_init(&b, 0);
	va_start(ap, fmt);
	kiln_err e = kiln_buf_vprintf(&b, fmt, ap);
	va_end(ap);
	if (e) {
		kiln_buf_free(&b);
		return NULL;
	}
	return kiln_buf_detach(&b);
}

void kiln_buf_init(kiln_buf *b, size_t max)
{
	b->data = NULL;
	b->len = b->cap = 0;
	b->max = max;
	b->err = KILN_OK;
}

/* Records the first failure: the buffer refuses every later append. */
static kiln_err buf_fail(kiln_buf *b, kiln_err e)
{
	b->err = e;
	return e;
}

static kiln_err buf_grow(kiln_buf *b, size_t extra)
{
	if (b->err)
		return b->err;
	if (b->max && (extra > b->max || b->len > b->max - extra))
		return buf_fail(b, kiln_error_set(KILN_EOVERFLOW, "text exceeds the %zu-byte cap", b->max));
	if (extra >= SIZE_MAX / 2 - b->len)
		return buf_fail(b, kiln_error_set(KILN_ENOMEM, "text of %zu bytes is too large", extra));
	size_t need = b->len + extra + 1;
	if (need <= b->cap)
		return KILN_OK;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < need)
		cap *= 2;
	char *d = kiln_realloc(b->data, cap);
	if (!d)
		return buf_fail(b, KILN_ENOMEM);
	b->data = d;
	b->cap = cap;
	return KILN_OK;
}

kiln_err kiln_buf_append(kiln_buf *b, const void *data, size_t n)
{
	kiln_err e = buf_grow(b, n);
	if (e)
		return e;
	if (n)
		memcpy(b->data + b->len, data, n);
	b->len += n;
	b->data[b->len] = 0;
	return KILN_OK;
}

kiln_err kiln_buf_puts(kiln_buf *b, const char *s)
{
	return kiln_buf_append(b, s, strlen(s));
}

kiln_err kiln_buf_vprintf(kiln_buf *b, const char *fmt, va_list ap)
{
	if (b->err)
		return b->err;
	va_list ap2;
	va_copy(ap2, ap);
	int n = vsnprintf(NULL, 0, fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return buf_fail(b, kiln_error_set(KILN_EINVAL, "bad format string"));
	kiln_err e = buf_grow(b, (size_t)n);
	if (e)
		return e;
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return KILN_OK;
}

kiln_err kiln_buf_printf(kiln_buf *b, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	kiln_err e = kiln_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return e;
}

kiln_err kiln_buf_check(const kiln_buf *b, const char *what)
{
	if (b->err == KILN_EOVERFLOW)
		return kiln_error_set(KILN_EOVERFLOW, "%s exceeds the %zu-byte cap", what, b->max);
	if (b->err)
		return kiln_error_set(b->err, "%s: %s", what, b->err == KILN_ENOMEM ? "out of memory" : "cannot be built");
	return KILN_OK;
}

char *kiln_buf_detach(kiln_buf *b)
{
	char *d = b->data;
	if (!d)
		d = kiln_strdup("");
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = KILN_OK;
	return d;
}

void kiln_buf_reset(kiln_buf *b)
{
	b->len = 0;
	b->err = KILN_OK;
	if (b->data)
		b->data[0] = 0;
}

void kiln_buf_free(kiln_buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
	b->err = KILN_OK;
}

/* Back to the start of the UTF-8 character holding s[i]. */
static size_t char_start(const char *s, size_t i)
{
	while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80)
		i--;
	return i;
}

char *kiln_text_cap(char *s, size_t max)
{
	size_t n = s ? strlen(s) : 0;
	if (n <= max || max < 256)
		return s;
	char marker[96];
	int ml = snprintf(marker, sizeof marker, "\n[... %zu bytes cut by kiln: head and tail kept ...]\n", n);
	size_t keep = max - (size_t)ml;
	size_t head = char_start(s, keep / 2);
	size_t tail = char_start(s, n - (keep - keep / 2));
	if (tail < head)
		tail = head;
	char *r = kiln_malloc(head + (size_t)ml + (n - tail) + 1);
	if (!r) { /* no memory for a copy: keep the head only */
		s[char_start(s, max)] = '\0';
		return s;
	}
	memcpy(r, s, head);
	memcpy(r + head, marker, (size_t)ml);
	memcpy(r + head + (size_t)ml, s + tail, n - tail + 1);
	free(s);
	return r;
}
