/* llm: an incremental server-sent-events parser following the WHATWG HTML specification
 * (9.2.6 "Interpreting an event stream"). Bytes may arrive split anywhere, including
 * between the CR and LF of a CRLF and inside the UTF-8 BOM; lines and events are capped. */
#include <string.h>

#include "agent/llm/llm_int.h"

#define SSE_DEFAULT_MAX (8u << 20)

static const unsigned char bom[3] = {0xEF, 0xBB, 0xBF};

void kiln_sse_init(kiln_sse *p, size_t max)
{
	memset(p, 0, sizeof *p);
	if (max == 0)
		max = SSE_DEFAULT_MAX;
	kiln_buf_init(&p->line, max);
	kiln_buf_init(&p->data, max);
	p->retry_ms = -1;
}

void kiln_sse_free(kiln_sse *p)
{
	kiln_buf_free(&p->line);
	kiln_buf_free(&p->data);
}

static kiln_err dispatch(kiln_sse *p, kiln_sse_fn fn, void *arg)
{
	kiln_err e = KILN_OK;
	if (p->have_data) {
		size_t len = p->data.len;
		if (len > 0 && p->data.data[len - 1] == '\n') /* drop the last data line's LF */
			len--;
		const char *d = p->data.data ? p->data.data : "";
		if (p->data.data)
			p->data.data[len] = '\0';
		e = fn(arg, p->event[0] ? p->event : "message", d, len);
	}
	kiln_buf_reset(&p->data);
	p->event[0] = '\0';
	p->have_data = false;
	return e;
}

static kiln_err field(kiln_sse *p, const char *name, size_t nlen, const char *val, size_t vlen)
{
	if (nlen == 5 && memcmp(name, "event", 5) == 0) {
		size_t n = vlen < sizeof p->event - 1 ? vlen : sizeof p->event - 1;
		memcpy(p->event, val, n);
		p->event[n] = '\0';
	} else if (nlen == 4 && memcmp(name, "data", 4) == 0) {
		kiln_err e;
		if ((e = kiln_buf_append(&p->data, val, vlen)) || (e = kiln_buf_append(&p->data, "\n", 1)))
			return kiln_error_set(KILN_EOVERFLOW, "event stream: event data over %zu bytes", p->data.max);
		p->have_data = true;
	} else if (nlen == 2 && memcmp(name, "id", 2) == 0) {
		if (!memchr(val, '\0', vlen)) {
			size_t n = vlen < sizeof p->id - 1 ? vlen : sizeof p->id - 1;
			memcpy(p->id, val, n);
			p->id[n] = '\0';
		}
	} else if (nlen == 5 && memcmp(name, "retry", 5) == 0) {
		long v = 0;
		size_t i = 0;
		for (; i < vlen && val[i] >= '0' && val[i] <= '9' && v < 100000000; i++)
			v = v * 10 + (val[i] - '0');
		if (vlen > 0 && i == vlen)
			p->retry_ms = v;
	}
	return KILN_OK; /* other fields are ignored, as the spec says */
}

static kiln_err line_done(kiln_sse *p, kiln_sse_fn fn, void *arg)
{
	const char *l = p->line.data ? p->line.data : "";
	size_t n = p->line.len;
	kiln_err e = KILN_OK;
	if (n == 0)
		e = dispatch(p, fn, arg);
	else if (l[0] != ':') {
		const char *colon = memchr(l, ':', n);
		if (!colon) {
			e = field(p, l, n, "", 0);
		} else {
			size_t nlen = (size_t)(colon - l);
			const char *v = colon + 1;
			size_t vlen = n - nlen - 1;
			if (vlen > 0 && *v == ' ') {
				v++;
				vlen--;
			}
			e = field(p, l, nlen, v, vlen);
		}
	}
	kiln_buf_reset(&p->line);
	return e;
}

kiln_err kiln_sse_feed(kiln_sse *p, const char *buf, size_t n, kiln_sse_fn fn, void *arg)
{
	size_t i = 0;
	while (!p->bom_checked && i < n) { /* a BOM may itself arrive split */
		if ((unsigned char)buf[i] == bom[p->nbom]) {
			p->nbom++;
			i++;
			if (p->nbom == 3)
				p->bom_checked = true;
			continue;
		}
		p->bom_checked = true;
		if (p->nbom > 0 && kiln_buf_append(&p->line, bom, p->nbom)) /* not a BOM after all */
			return kiln_error_set(KILN_EOVERFLOW, "event stream: line over %zu bytes", p->line.max);
	}
	while (i < n) {
		char ch = buf[i];
		if (p->cr) {
			p->cr = false;
			if (ch == '\n') {
				i++;
				continue;
			}
		}
		if (ch == '\r' || ch == '\n') {
			p->cr = ch == '\r';
			i++;
			kiln_err e = line_done(p, fn, arg);
			if (e)
				return e;
			continue;
		}
		/* copy the run up to the next line end in one append */
		size_t j = i;
		while (j < n && buf[j] != '\r' && buf[j] != '\n')
			j++;
		if (kiln_buf_append(&p->line, buf + i, j - i))
			return kiln_error_set(KILN_EOVERFLOW, "event stream: line over %zu bytes", p->line.max);
		i = j;
	}
	return KILN_OK;
}
