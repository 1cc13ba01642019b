/* Per-thread error message (libgit2 error-handling model). Messages are one line;
 * kiln_error_wrap prefixes context and keeps the lower-level explanation. */
#include "util/util.h"

#include <stdio.h>
#include <string.h>

#define MSG_MAX 2048

static _Thread_local char msg[MSG_MAX];
static _Thread_local kiln_err last_code;

static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

kiln_err kiln_error_set(kiln_err code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	one_line(msg);
	last_code = code;
	return code;
}

kiln_err kiln_error_wrap(kiln_err code, const char *fmt, ...)
{
	char prefix[MSG_MAX / 2 - 8], old[MSG_MAX / 2 - 8];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	size_t n = strnlen(msg, sizeof old - 1);
	memcpy(old, msg, n);
	old[n] = 0;
	if (old[0])
		snprintf(msg, sizeof msg, "%s: %s", prefix, old);
	else
		snprintf(msg, sizeof msg, "%s: %s", prefix, kiln_err_name(code));
	one_line(msg);
	last_code = code;
	return code;
}

const char *kiln_error_last(void) { return msg; }
kiln_err kiln_error_code(void) { return last_code; }
void kiln_error_clear(void) { msg[0] = 0; last_code = 0; }

const char *kiln_err_name(kiln_err code)
{
	switch (code) {
	case KILN_OK: return "ok";
	case KILN_ENOMEM: return "out of memory";
	case KILN_EIO: return "i/o error";
	case KILN_EINVAL: return "invalid input";
	case KILN_ENOTFOUND: return "not found";
	case KILN_EUNSUPPORTED: return "not supported";
	case KILN_ECOMPILE: return "compile error";
	case KILN_ETIMEOUT: return "timed out";
	case KILN_EDEVICE: return "device error";
	case KILN_EFAULT: return "kernel fault";
	case KILN_ELLM: return "llm error";
	case KILN_EBUDGET: return "budget exhausted";
	case KILN_EINTR: return "interrupted";
	case KILN_ELOCKED: return "locked";
	case KILN_EDB: return "database error";
	case KILN_EGIT: return "git error";
	case KILN_EOVERFLOW: return "overflow";
	case KILN_ENET: return "network error";
	case KILN_ECORRUPT: return "corrupt data";
	case KILN_EVERIFY: return "verification failed";
	default: return "error";
	}
}
