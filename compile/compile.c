/* compile: the toolkit boundary. NVRTC turns source into PTX for compute_XX, nvJitLink
 * turns PTX into a cubin for sm_XX and prints the resource report we parse. nvrtcResult
 * and nvJitLinkResult are translated here and nowhere else; a rejected source is data
 * (ok = false + log), a failing toolkit is a kiln_err. */
#include "compile/compile_int.h"

#include <ctype.h>
#include <nvJitLink.h>
#include <nvrtc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* nvJitLink's resource report is parsed, not shown: a larger cap, still a cap */
#define INFO_LOG_MAX ((size_t)4 << 20)

static _Atomic uint64_t n_nvrtc, n_jitlink, n_hits, n_misses, n_corrupt;

void kiln_compile_stats_get(kiln_compile_stats *out)
{
	out->nvrtc_calls = atomic_load(&n_nvrtc);
	out->jitlink_calls = atomic_load(&n_jitlink);
	out->cache_hits = atomic_load(&n_hits);
	out->cache_misses = atomic_load(&n_misses);
	out->cache_corrupt = atomic_load(&n_corrupt);
}

void kiln_compile_stats_reset(void)
{
	atomic_store(&n_nvrtc, 0);
	atomic_store(&n_jitlink, 0);
	atomic_store(&n_hits, 0);
	atomic_store(&n_misses, 0);
	atomic_store(&n_corrupt, 0);
}

void kiln_compile_count_calls(uint32_t nvrtc, uint32_t jitlink)
{
	atomic_fetch_add(&n_nvrtc, nvrtc);
	atomic_fetch_add(&n_jitlink, jitlink);
}

void kiln_compile_count_corrupt(void)
{
	atomic_fetch_add(&n_corrupt, 1);
}

kiln_err kiln_compile_toolkit_version(char *out, size_t n)
{
	int rmaj = 0, rmin = 0;
	unsigned jmaj = 0, jmin = 0;
	nvrtcResult r = nvrtcVersion(&rmaj, &rmin);
	if (r != NVRTC_SUCCESS)
		return kiln_error_set(KILN_ECOMPILE, "nvrtcVersion: %s", nvrtcGetErrorString(r));
	if (nvJitLinkVersion(&jmaj, &jmin) != NVJITLINK_SUCCESS)
		return kiln_error_set(KILN_ECOMPILE, "nvJitLinkVersion failed");
	snprintf(out, n, "NVRTC %d.%d, nvJitLink %u.%u", rmaj, rmin, jmaj, jmin);
	return KILN_OK;
}

/* "sm_90", "sm_90a", "sm_100f": digits after sm_, one optional letter. */
static kiln_err check_arch(const char *arch)
{
	const char *p = arch + 3;
	size_t digits = 0;
	if (strncmp(arch, "sm_", 3) != 0)
		goto bad;
	while (isdigit((unsigned char)p[digits]))
		digits++;
	if (digits < 2 || digits > 3)
		goto bad;
	p += digits;
	if (*p == 'a' || *p == 'f')
		p++;
	if (*p == '\0')
		return KILN_OK;
bad:
	return kiln_error_set(KILN_EINVAL, "architecture '%s': expected sm_XX (e.g. sm_90)", arch);
}

/* Options as NVRTC sees them: arch, language, toolkit includes, then the caller's. */
typedef struct optlist {
	char **v;
	size_t n, cap;
} optlist;

static kiln_err opt_add(optlist *l, char *s)
{
	if (!s)
		return KILN_ENOMEM;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 16;
		char **v = kiln_realloc(l->v, cap * sizeof(*v));
		if (!v) {
			free(s);
			return KILN_ENOMEM;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = s;
	return KILN_OK;
}

static void opt_free(optlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

/* A flag NVRTC takes that also matters to the PTX -> SASS step gets passed on. */
static kiln_err jitlink_flag(optlist *jl, const char *f)
{
	const char *s = f;
	while (*s == '-')
		s++;
	if (strncmp(s, "maxrregcount=", 13) == 0)
		return opt_add(jl, kiln_asprintf("-maxrregcount=%s", s + 13));
	if (strcmp(s, "lineinfo") == 0 || strcmp(s, "generate-line-info") == 0)
		return opt_add(jl, kiln_strdup("-lineinfo"));
	return KILN_OK;
}

static kiln_err nvrtc_fail(nvrtcResult r, const char *what, const char *name)
{
	return kiln_error_set(r == NVRTC_ERROR_OUT_OF_MEMORY ? KILN_ENOMEM : KILN_ECOMPILE,
			      "%s: %s: %s", name, what, nvrtcGetErrorString(r));
}

static const char *jitlink_str(nvJitLinkResult r)
{
	switch (r) {
	case NVJITLINK_SUCCESS: return "success";
	case NVJITLINK_ERROR_UNRECOGNIZED_OPTION: return "unrecognized option";
	case NVJITLINK_ERROR_MISSING_ARCH: return "missing -arch";
	case NVJITLINK_ERROR_INVALID_INPUT: return "invalid input";
	case NVJITLINK_ERROR_PTX_COMPILE: return "PTX compile failed";
	case NVJITLINK_ERROR_NVVM_COMPILE: return "NVVM compile failed";
	case NVJITLINK_ERROR_INTERNAL: return "internal error";
	case NVJITLINK_ERROR_FINALIZE: return "finalizer error";
	case NVJITLINK_ERROR_UNRECOGNIZED_ARCH: return "unrecognized -arch";
	case NVJITLINK_ERROR_UNSUPPORTED_ARCH: return "unsupported -arch";
	default: return "error";
	}
}

static char *nvrtc_log(nvrtcProgram prog)
{
	size_t n = 0;
	if (nvrtcGetProgramLogSize(prog, &n) != NVRTC_SUCCESS || n == 0)
		return kiln_strdup("");
	char *log = kiln_malloc(n + 1);
	if (!log)
		return NULL;
	if (nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS)
		log[0] = '\0';
	log[n] = '\0';
	return log;
}

static char *jitlink_log(nvJitLinkHandle h, bool info)
{
	size_t n = 0;
	nvJitLinkResult r = info ? nvJitLinkGetInfoLogSize(h, &n) : nvJitLinkGetErrorLogSize(h, &n);
	if (r != NVJITLINK_SUCCESS || n == 0)
		return kiln_strdup("");
	char *log = kiln_malloc(n + 1);
	if (!log)
		return NULL;
	r = info ? nvJitLinkGetInfoLog(h, log) : nvJitLinkGetErrorLog(h, log);
	if (r != NVJITLINK_SUCCESS)
		log[0] = '\0';
	log[n] = '\0';
	return log;
}

static kiln_err append_log(kiln_compiled *c, const char *more)
{
	if (!more || !*more)
		return KILN_OK;
	char *s = kiln_asprintf("%s%s%s", c->log, c->log[0] ? "\n" : "", more);
	if (!s)
		return KILN_ENOMEM;
	free(c->log);
	c->log = kiln_text_cap(s, KILN_LOG_MAX);
	return KILN_OK;
}

/* Whether a failed link is the candidate's doing. nvJitLink 13 reports ptxas rejecting
 * the PTX (e.g. "Entry function 'k' uses too much shared data") as an internal error, so
 * a ptxas-style "error   :" diagnostic in the error log counts too. */
static bool source_fault(nvJitLinkResult r, const char *elog)
{
	if (r == NVJITLINK_ERROR_PTX_COMPILE || r == NVJITLINK_ERROR_INVALID_INPUT ||
	    r == NVJITLINK_ERROR_FINALIZE)
		return true;
	if (r != NVJITLINK_ERROR_INTERNAL || !elog)
		return false;
	for (const char *p = strstr(elog, "error"); p; p = strstr(p + 5, "error")) {
		const char *q = p + 5;
		while (*q == ' ')
			q++;
		if (*q == ':')
			return true;
	}
	return false;
}

/* PTX -> cubin with the verbose resource report. */
static kiln_err run_jitlink(kiln_compiled *c, const optlist *jl, const char *name)
{
	nvJitLinkHandle h = NULL;
	kiln_err e = KILN_OK;
	char *elog = NULL;
	nvJitLinkResult r = nvJitLinkCreate(&h, (uint32_t)jl->n, (const char **)jl->v);
	if (r != NVJITLINK_SUCCESS) {
		h = NULL;
		e = kiln_error_set(r == NVJITLINK_ERROR_UNRECOGNIZED_OPTION ? KILN_EINVAL : KILN_ECOMPILE,
				   "%s: nvJitLinkCreate: %s", name, jitlink_str(r));
		goto done;
	}
	atomic_fetch_add(&n_jitlink, 1);
	r = nvJitLinkAddData(h, NVJITLINK_INPUT_PTX, c->ptx, c->ptx_len, "kernel.ptx");
	if (r == NVJITLINK_SUCCESS)
		r = nvJitLinkComplete(h);
	free(c->info_log);
	c->info_log = kiln_text_cap(jitlink_log(h, true), INFO_LOG_MAX);
	if (!c->info_log) {
		e = KILN_ENOMEM;
		goto done;
	}
	if (r != NVJITLINK_SUCCESS && !(elog = jitlink_log(h, false))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if (source_fault(r, elog)) {
		/* ptxas said no (too much shared memory, bad inline asm...): the source's fault */
		c->ok = false;
		e = append_log(c, elog[0] ? elog : jitlink_str(r));
		goto done;
	}
	if (r != NVJITLINK_SUCCESS) {
		e = kiln_error_set(r == NVJITLINK_ERROR_UNRECOGNIZED_ARCH || r == NVJITLINK_ERROR_UNSUPPORTED_ARCH
				   ? KILN_EINVAL : KILN_ECOMPILE, "%s: nvJitLink: %s%s%s", name, jitlink_str(r),
				   elog && elog[0] ? ": " : "", elog ? elog : "");
		goto done;
	}
	size_t n = 0;
	r = nvJitLinkGetLinkedCubinSize(h, &n);
	if (r == NVJITLINK_SUCCESS) {
		c->cubin = kiln_malloc(n ? n : 1);
		if (!c->cubin) {
			e = KILN_ENOMEM;
			goto done;
		}
		r = nvJitLinkGetLinkedCubin(h, c->cubin);
		c->cubin_len = n;
	}
	if (r != NVJITLINK_SUCCESS) {
		e = kiln_error_set(KILN_ECOMPILE, "%s: nvJitLinkGetLinkedCubin: %s", name, jitlink_str(r));
		goto done;
	}
	kiln_compile_parse_info_log(c, c->info_log);
done:
	free(elog);
	if (h)
		nvJitLinkDestroy(&h);
	return e;
}

/* No flag may add a file for NVRTC to read: include paths, pre-includes, option files.
 * (Plans only reach here through targets/plan.c's allow-list; this is the last line.) */
static kiln_err check_flag(const char *f)
{
	static const char *const reads[] = {"-I", "--include-path", "-include", "--pre-include",
					    "-optf", "--options-file", "-isystem", "--system-include", NULL};
	for (const char *const *r = reads; *r; r++)
		if (strncmp(f, *r, strlen(*r)) == 0)
			return kiln_error_set(KILN_EINVAL, "NVRTC flag \"%.60s\" is not allowed: it makes NVRTC read files", f);
	return KILN_OK;
}

static kiln_err build_options(optlist *nv, optlist *jl, const kiln_compile_options *o,
			      const char *arch)
{
	kiln_err e;
	const char *num = arch + 3;
	if ((e = opt_add(nv, kiln_asprintf("-arch=compute_%s", num))) ||
	    (e = opt_add(nv, kiln_strdup("-std=c++17"))) ||
	    (e = opt_add(nv, kiln_strdup("-I" KILN_CUDA_ROOT "/include"))))
		return e;
	if (kiln_path_exists(KILN_CUDA_ROOT "/include/cccl") &&
	    (e = opt_add(nv, kiln_strdup("-I" KILN_CUDA_ROOT "/include/cccl"))))
		return e;
	for (size_t i = 0; i < o->nincludes; i++)
		if ((e = opt_add(nv, kiln_asprintf("-I%s", o->include_dirs[i]))))
			return e;
	for (size_t i = 0; i < o->ndefines; i++)
		if ((e = opt_add(nv, kiln_asprintf("-D%s", o->defines[i]))))
			return e;
	if ((e = opt_add(jl, kiln_asprintf("-arch=%s", arch))) ||
	    (e = opt_add(jl, kiln_strdup("-verbose"))))
		return e;
	for (size_t i = 0; i < o->nflags; i++)
		if ((e = check_flag(o->flags[i])) || (e = opt_add(nv, kiln_strdup(o->flags[i]))) ||
		    (e = jitlink_flag(jl, o->flags[i])))
			return e;
	return KILN_OK;
}

kiln_err kiln_compile_fresh(kiln_compiled *c, const kiln_compile_options *o, const char *arch,
			   const char *name)
{
	optlist nv = {0}, jl = {0};
	nvrtcProgram prog = NULL;
	kiln_err e = build_options(&nv, &jl, o, arch);
	if (e)
		goto done;
	nvrtcResult r = nvrtcCreateProgram(&prog, o->source, name, 0, NULL, NULL);
	if (r != NVRTC_SUCCESS) {
		prog = NULL;
		e = nvrtc_fail(r, "nvrtcCreateProgram", name);
		goto done;
	}
	atomic_fetch_add(&n_nvrtc, 1);
	r = nvrtcCompileProgram(prog, (int)nv.n, (const char *const *)nv.v);
	free(c->log);
	if (!(c->log = kiln_text_cap(nvrtc_log(prog), KILN_LOG_MAX))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if (r == NVRTC_ERROR_COMPILATION) {
		c->ok = false;
		goto done;
	}
	if (r == NVRTC_ERROR_INVALID_OPTION) {
		const char *msg = c->log[0] ? c->log : nvrtcGetErrorString(r);
		e = kiln_error_set(KILN_EINVAL, "%s: NVRTC rejected an option: %.*s", name,
				   (int)strcspn(msg, "\n"), msg);
		goto done;
	}
	if (r != NVRTC_SUCCESS) {
		e = nvrtc_fail(r, "nvrtcCompileProgram", name);
		goto done;
	}
	size_t n = 0;
	if ((r = nvrtcGetPTXSize(prog, &n)) != NVRTC_SUCCESS) {
		e = nvrtc_fail(r, "nvrtcGetPTXSize", name);
		goto done;
	}
	if (!(c->ptx = kiln_malloc(n + 1))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((r = nvrtcGetPTX(prog, c->ptx)) != NVRTC_SUCCESS) {
		e = nvrtc_fail(r, "nvrtcGetPTX", name);
		goto done;
	}
	c->ptx[n] = '\0';
	c->ptx_len = strlen(c->ptx); /* n counts NVRTC's own NUL */
	c->ok = true;
	if ((e = kiln_compile_parse_entries(c)))
		goto done;
	if (o->want_cubin)
		e = run_jitlink(c, &jl, name);
done:
	if (prog)
		nvrtcDestroyProgram(&prog);
	opt_free(&nv);
	opt_free(&jl);
	return e;
}

/* A source the gate refused: a failed compile whose log is the one-line reason. */
static kiln_err refused(kiln_compiled **out, const char *arch, const char key[65], double t0)
{
	kiln_compiled *c = kiln_calloc(1, sizeof(*c));
	char tk[64];
	if (!c || kiln_compile_toolkit_version(tk, sizeof(tk)) || !(c->arch = kiln_strdup(arch)) ||
	    !(c->toolkit = kiln_strdup(tk)) || !(c->log = kiln_asprintf("%s\n", kiln_error_last())) ||
	    !(c->info_log = kiln_strdup(""))) {
		kiln_compiled_free(c);
		return kiln_error_set(KILN_ENOMEM, "out of memory");
	}
	c->global_const_bytes = -1;
	memcpy(c->key, key, 65);
	c->wall_s = kiln_now_s() - t0;
	kiln_error_clear();
	*out = c;
	return KILN_OK;
}

/* Device globals count against the device-memory budget: a 1 GB __device__ array is a
 * failed candidate (resource-limit), not 4 GB of RSS in the evaluation. */
static void check_globals(kiln_compiled *c, const char *name)
{
	c->global_bytes = c->ok && c->ptx ? kiln_compile_ptx_global_bytes(c->ptx) : 0;
	if (c->global_bytes <= KILN_COMPILE_MAX_GLOBALS)
		return;
	char *log = kiln_asprintf("%s: refused: resource-limit: the module's __device__ globals take %lld MiB; "
				  "at most %lld MiB of device memory may be static (use a scratch buffer)\n",
				  name, (long long)(c->global_bytes >> 20), (long long)(KILN_COMPILE_MAX_GLOBALS >> 20));
	if (!log)
		return; /* keeps ok: the check runs again at the next compile */
	free(c->log);
	c->log = log;
	c->ok = false;
	c->resource_limit = true;
	free(c->ptx);
	free(c->cubin);
	c->ptx = NULL;
	c->cubin = NULL;
	c->ptx_len = c->cubin_len = 0;
}

kiln_err kiln_compile(kiln_compiled **out, const kiln_compile_options *opts)
{
	*out = NULL;
	double t0 = kiln_now_s();
	const char *arch = opts->arch ? opts->arch : "sm_90";
	const char *name = opts->name ? opts->name : "kernel.cu";
	kiln_compiled *c = NULL;
	char key[65];
	kiln_err e;
	if (!opts->source)
		return kiln_error_set(KILN_EINVAL, "%s: no source to compile", name);
	if ((e = check_arch(arch)) || (e = kiln_compile_key(key, opts)))
		return e;
	if (kiln_compile_source_check(opts->source, strlen(opts->source), name))
		return refused(out, arch, key, t0); /* before the cache: a gate, whatever was stored */
	if (opts->cache_dir && kiln_compile_cache_get(&c, opts->cache_dir, key, name, opts->want_cubin)) {
		atomic_fetch_add(&n_hits, 1);
		c->cache_hit = true;
		kiln_compile_cache_touch(opts->cache_dir, key);
		check_globals(c, name);
		c->wall_s = kiln_now_s() - t0;
		*out = c;
		return KILN_OK;
	}
	if (opts->cache_dir)
		atomic_fetch_add(&n_misses, 1);
	if (!(c = kiln_calloc(1, sizeof(*c))))
		return KILN_ENOMEM;
	c->global_const_bytes = -1;
	memcpy(c->key, key, sizeof(key));
	char tk[64];
	if ((e = kiln_compile_toolkit_version(tk, sizeof(tk))))
		goto done;
	if (!(c->arch = kiln_strdup(arch)) || !(c->toolkit = kiln_strdup(tk)) ||
	    !(c->log = kiln_strdup("")) || !(c->info_log = kiln_strdup(""))) {
		e = KILN_ENOMEM;
		goto done;
	}
	bool no_cache = false;
	if ((e = kiln_compile_isolated(c, opts, arch, name, &no_cache)))
		goto done;
	if (!c->ok) { /* a failed compile keeps no half-made artifacts */
		free(c->ptx);
		free(c->cubin);
		c->ptx = NULL;
		c->cubin = NULL;
		c->ptx_len = c->cubin_len = 0;
	}
	if (opts->cache_dir && !no_cache && kiln_compile_cache_put(opts->cache_dir, c, name))
		kiln_error_clear(); /* a cache that cannot be written only costs speed */
	if (opts->cache_dir && !no_cache && kiln_limits_get()->cache_max > 0 &&
	    kiln_compile_cache_evict(opts->cache_dir, kiln_limits_get()->cache_max, NULL))
		kiln_error_clear(); /* nor can a cache that cannot be trimmed stop a compile */
	check_globals(c, name);
	c->wall_s = kiln_now_s() - t0;
done:
	if (e) {
		kiln_compiled_free(c);
		return e;
	}
	*out = c;
	return KILN_OK;
}

void kiln_compiled_free(kiln_compiled *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->nkernels; i++)
		free(c->kernels[i].name);
	free(c->kernels);
	free(c->log);
	free(c->info_log);
	free(c->ptx);
	free(c->cubin);
	free(c->arch);
	free(c->toolkit);
	free(c);
}

const kiln_kernel_resources *kiln_compile_kernel(const kiln_compiled *c, const char *name)
{
	for (size_t i = 0; c && i < c->nkernels; i++)
		if (strcmp(c->kernels[i].name, name) == 0)
			return &c->kernels[i];
	return NULL;
}

char *kiln_compile_resources_json(const kiln_compiled *c)
{
	cJSON *j = kiln_compile_resources_to_cjson(c);
	char *s = j ? cJSON_PrintUnformatted(j) : NULL;
	cJSON_Delete(j);
	if (!s) {
		kiln_error_set(KILN_ENOMEM, "out of memory");
		return NULL;
	}
	char *r = kiln_strdup(s); /* callers free with free(); cJSON may use its own hooks */
	cJSON_free(s);
	return r;
}
