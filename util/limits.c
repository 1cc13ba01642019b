/* Process-wide limits on what model-written code may cost the host: the compile deadline,
 * the memory of each child that compiles or evaluates a candidate, the compile cache's
 * size and the scratch a launch plan may ask for. Set once by cli/main.c (global options)
 * before any child is forked; read everywhere. */
#include "util/util.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

/* ASan (gcc defines __SANITIZE_ADDRESS__, clang answers __has_feature) reserves terabytes
 * of shadow address space: no address-space limit can be set under it. */
#if defined(__SANITIZE_ADDRESS__)
#define NO_AS_LIMIT 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define NO_AS_LIMIT 1
#endif
#endif

bool kiln_limits_memory_enforced(void)
{
#ifdef NO_AS_LIMIT
	return false;
#else
	return true;
#endif
}

static kiln_limits limits = {KILN_COMPILE_TIMEOUT_DEFAULT, 0, KILN_CACHE_MAX_DEFAULT, KILN_SCRATCH_FACTOR_DEFAULT};

const kiln_limits *kiln_limits_get(void)
{
	return &limits;
}

void kiln_limits_set(const kiln_limits *l)
{
	limits = *l;
}

int64_t kiln_limits_memory(void)
{
	if (limits.max_memory > 0)
		return limits.max_memory;
	long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
	int64_t ram = pages > 0 && page > 0 ? (int64_t)pages * page : (int64_t)8 << 30;
	int64_t m = ram / 2; /* a share of RAM: the run, its database and the OS keep the rest */
	return m < ((int64_t)1 << 30) ? (int64_t)1 << 30 : m;
}

kiln_err kiln_parse_size(int64_t *out, const char *s)
{
	char *end = NULL;
	double v = s && isdigit((unsigned char)*s) ? strtod(s, &end) : -1;
	if (v < 0 || !end)
		return kiln_error_set(KILN_EINVAL, "size '%s': expected a number of bytes with an optional K, M, G or T", s ? s : "");
	double mul = 1;
	switch (toupper((unsigned char)*end)) {
	case 'K': mul = 1024.0; end++; break;
	case 'M': mul = 1024.0 * 1024; end++; break;
	case 'G': mul = 1024.0 * 1024 * 1024; end++; break;
	case 'T': mul = 1024.0 * 1024 * 1024 * 1024; end++; break;
	default: break;
	}
	if (toupper((unsigned char)*end) == 'I' && toupper((unsigned char)end[1]) == 'B')
		end += 2;
	else if (toupper((unsigned char)*end) == 'B')
		end++;
	if (*end || v * mul > 9.0e18)
		return kiln_error_set(KILN_EINVAL, "size '%s': expected a number of bytes with an optional K, M, G or T", s);
	*out = (int64_t)(v * mul);
	return KILN_OK;
}

/* clang before 18 says ASan only through __has_feature, not __SANITIZE_ADDRESS__ */
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(KILN_ASAN)
#define KILN_ASAN 1
#endif
#endif

void kiln_limits_apply_child(double cpu_s, int64_t memory, int64_t file_bytes)
{
	struct rlimit r;
	if (cpu_s > 0) {
		r.rlim_cur = (rlim_t)cpu_s + 1;
		r.rlim_max = r.rlim_cur + 5; /* SIGXCPU first, SIGKILL 5 s later */
		setrlimit(RLIMIT_CPU, &r);
	}
#ifndef NO_AS_LIMIT
	if (memory > 0) {
		r.rlim_cur = r.rlim_max = (rlim_t)memory;
		setrlimit(RLIMIT_AS, &r);
	}
#else
	(void)memory;
#endif
	if (file_bytes > 0) {
		r.rlim_cur = r.rlim_max = (rlim_t)file_bytes;
		setrlimit(RLIMIT_FSIZE, &r);
	}
	r.rlim_cur = r.rlim_max = 0; /* no core files of model-written code */
	setrlimit(RLIMIT_CORE, &r);
}
