/* compile: private helpers shared by compile.c (the toolkit calls), resources.c (the
 * resource-report and PTX parsers) and cache.c (the content-addressed disk cache).
 * Nothing here crosses the folder boundary. */
#ifndef KILN_COMPILE_INT_H
#define KILN_COMPILE_INT_H

#include "compile/compile.h"

struct cJSON;

/* Fills c->kernels from the PTX .entry lines (resources set to -1). */
kiln_err kiln_compile_parse_entries(kiln_compiled *c);
/* Parses nvJitLink's verbose info log into c->kernels and c->global_const_bytes. */
void kiln_compile_parse_info_log(kiln_compiled *c, const char *log);
/* Resources JSON <-> struct (the cache stores it). */
struct cJSON *kiln_compile_resources_to_cjson(const kiln_compiled *c);
kiln_err kiln_compile_resources_from_cjson(kiln_compiled *c, const struct cJSON *obj,
					   const char *where);

/* Cache: returns true and fills *out on a valid hit (counting corrupt entries it skips);
 * false on a miss. name replaces the recorded name in the log. */
bool kiln_compile_cache_get(kiln_compiled **out, const char *dir, const char *key,
			    const char *name, bool want_cubin);
/* Stores c under key; failures are returned but callers may treat them as non-fatal. */
kiln_err kiln_compile_cache_put(const char *dir, const kiln_compiled *c, const char *name);

void kiln_compile_count_corrupt(void);
/* LRU (compile/evict.c): a hit marks its entry used; eviction keeps the cache <= max. */
void kiln_compile_cache_touch(const char *dir, const char *key);
void kiln_compile_count_calls(uint32_t nvrtc, uint32_t jitlink);

/* NVRTC (+ nvJitLink) in this process: fills c (ok, log, ptx, cubin, resources). */
kiln_err kiln_compile_fresh(kiln_compiled *c, const kiln_compile_options *o, const char *arch,
			    const char *name);
/* kiln_compile_fresh in a forked child (compile/sandbox.c): empty environment, empty
 * temporary working directory, --compile-timeout, memory/CPU/file limits. A deadline, a
 * kill or NVRTC out of memory is a failed compile (c->ok false, one log line) with
 * *no_cache set; kiln_err only for kiln's own failures (fork, pipe, memory). */
kiln_err kiln_compile_isolated(kiln_compiled *c, const kiln_compile_options *o, const char *arch,
			       const char *name, bool *no_cache);

#endif
