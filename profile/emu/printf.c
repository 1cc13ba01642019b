/* printf: device printf (vprintf) for the emulator. CUDA passes the format string and a
 * buffer holding the arguments, each at its natural alignment (ints 4 bytes, long long,
 * double (floats are promoted), pointers 8); this formats one thread's call with the
 * host's snprintf, one conversion at a time, so a malformed format cannot read past the
 * buffer: a missing argument prints as "<?>", an unknown conversion verbatim. */
#include <stdio.h>
#include <string.h>

#include "profile/emu/emu_int.h"

static bool take(const uint8_t *args, size_t len, size_t *off, size_t sz, uint64_t *v)
{
	size_t o = (*off + sz - 1) & ~(sz - 1);
	if (!args || o + sz > len)
		return false;
	*v = 0;
	memcpy(v, args + o, sz);
	*off = o + sz;
	return true;
}

static size_t put(char *out, size_t cap, size_t n, const char *s, size_t len)
{
	for (size_t i = 0; i < len && n + 1 < cap; i++)
		out[n++] = s[i];
	if (cap)
		out[n < cap ? n : cap - 1] = 0;
	return n;
}

size_t emu_format(char *out, size_t cap, const char *fmt, size_t fmtlen, const uint8_t *args, size_t arglen,
		  emu_str_fn str, void *ctx)
{
	size_t n = 0, off = 0, i = 0;
	char spec[32], tmp[512];
	while (i < fmtlen && fmt[i]) {
		if (fmt[i] != '%') {
			n = put(out, cap, n, fmt + i, 1);
			i++;
			continue;
		}
		size_t s0 = i++, sl = 0;
		spec[sl++] = '%';
		while (i < fmtlen && fmt[i] && strchr("-+ #0", fmt[i]) && sl < 8)
			spec[sl++] = fmt[i++];
		while (i < fmtlen && fmt[i] >= '0' && fmt[i] <= '9' && sl < 14)
			spec[sl++] = fmt[i++];
		if (i < fmtlen && fmt[i] == '.') {
			spec[sl++] = fmt[i++];
			while (i < fmtlen && fmt[i] >= '0' && fmt[i] <= '9' && sl < 20)
				spec[sl++] = fmt[i++];
		}
		int lng = 0;
		while (i < fmtlen && fmt[i] && strchr("hlLzjt", fmt[i]))
			lng += fmt[i++] != 'h'; /* l, ll, z, j, t: 8-byte integers */
		if (i >= fmtlen || !fmt[i]) {
			n = put(out, cap, n, fmt + s0, i - s0);
			break;
		}
		char cv = fmt[i++];
		uint64_t v = 0;
		int len = -1;
		if (cv == '%') {
			n = put(out, cap, n, "%", 1);
			continue;
		}
		if (strchr("diouxXc", cv)) {
			bool wide = lng > 0;
			if (!take(args, arglen, &off, wide ? 8 : 4, &v))
				goto missing;
			if (wide) {
				spec[sl++] = 'l';
				spec[sl++] = 'l';
			}
			spec[sl++] = cv;
			spec[sl] = 0;
			if (cv == 'd' || cv == 'i')
				len = wide ? snprintf(tmp, sizeof tmp, spec, (long long)v) : snprintf(tmp, sizeof tmp, spec, (int)(uint32_t)v);
			else if (cv == 'c')
				len = snprintf(tmp, sizeof tmp, spec, (int)(uint32_t)v);
			else
				len = wide ? snprintf(tmp, sizeof tmp, spec, (unsigned long long)v) : snprintf(tmp, sizeof tmp, spec, (unsigned)v);
		} else if (strchr("fFeEgGaA", cv)) {
			double d;
			if (!take(args, arglen, &off, 8, &v))
				goto missing;
			memcpy(&d, &v, 8);
			spec[sl++] = cv;
			spec[sl] = 0;
			len = snprintf(tmp, sizeof tmp, spec, d);
		} else if (cv == 'p') {
			if (!take(args, arglen, &off, 8, &v))
				goto missing;
			len = snprintf(tmp, sizeof tmp, "0x%llx", (unsigned long long)v);
		} else if (cv == 's') {
			if (!take(args, arglen, &off, 8, &v))
				goto missing;
			size_t smax = 0;
			const char *sp = str(ctx, v, &smax);
			spec[sl++] = '.';
			spec[sl++] = '*';
			spec[sl++] = 's';
			spec[sl] = 0;
			size_t k = 0;
			while (sp && k < smax && sp[k])
				k++;
			len = sp ? snprintf(tmp, sizeof tmp, spec, (int)(k < 400 ? k : 400), sp) : snprintf(tmp, sizeof tmp, "(null)");
		} else {
			n = put(out, cap, n, fmt + s0, i - s0);
			continue;
		}
		if (len > 0)
			n = put(out, cap, n, tmp, (size_t)len < sizeof tmp ? (size_t)len : sizeof tmp - 1);
		continue;
	missing:
		n = put(out, cap, n, "<?>", 3);
	}
	return n;
}
