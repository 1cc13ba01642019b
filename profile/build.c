/* profile: a kernel source to build, the part verification and timing share. Resolves
 * the -D defines against the target's knobs (a knob not given takes its first listed
 * value, and its define is added so the kernel compiles with the value launch
 * expressions see) and fills the compile options from the source, plan and defines. */
#include <stdlib.h>
#include <string.h>

#include "profile/profile_int.h"

/* Sets the knob named by define d ("NAME=V", eq at its '=') when NAME is one of t's. */
static kiln_err knob_from_define(kiln_env *knobs, const kiln_target *t, const char *d, const char *eq)
{
	size_t len = (size_t)(eq - d);
	for (size_t k = 0; k < t->nknobs; k++) {
		const char *name = t->knobs[k].name;
		char *end = NULL;
		if (strlen(name) != len || strncmp(d, name, len) != 0)
			continue;
		long long val = strtoll(eq + 1, &end, 0);
		if (!eq[1] || *end)
			return kiln_error_set(KILN_EINVAL, "define %s: knob %s needs an integer value", d, name);
		kiln_err e = kiln_env_set(knobs, name, val);
		if (e)
			return e;
	}
	return 0;
}

kiln_err kiln_knobs_resolve(kiln_knob_defs *out, const kiln_target *t, const char *const *defines,
			    size_t ndefines, const char *who)
{
	kiln_err e = 0;
	memset(out, 0, sizeof(*out));
	kiln_env_init(&out->knobs);
	if (ndefines + t->nknobs > KILN_KNOBS_MAX_DEFINES)
		return kiln_error_set(KILN_EINVAL, "%s: at most %d defines", who, KILN_KNOBS_MAX_DEFINES);
	for (size_t i = 0; i < ndefines; i++) {
		const char *d = defines[i], *eq = strchr(d, '=');
		if (!(out->defs[out->ndefs++] = kiln_strdup(d)))
			return KILN_ENOMEM;
		if (eq && (e = knob_from_define(&out->knobs, t, d, eq)))
			return e;
	}
	for (size_t k = 0; k < t->nknobs; k++) {
		const kiln_knob *kn = &t->knobs[k];
		int64_t have;
		if (kiln_env_get(&out->knobs, kn->name, &have) || !kn->n)
			continue;
		if ((e = kiln_env_set(&out->knobs, kn->name, kn->values[0])))
			return e;
		if (!(out->defs[out->ndefs++] = kiln_asprintf("%s=%lld", kn->name, (long long)kn->values[0])))
			return KILN_ENOMEM;
	}
	return 0;
}

void kiln_knob_defs_free(kiln_knob_defs *k)
{
	for (size_t i = 0; k && i < k->ndefs; i++)
		free(k->defs[i]);
	if (k)
		k->ndefs = 0;
}

void kiln_build_src_compile_options(kiln_compile_options *out, const kiln_build_src *s, const kiln_knob_defs *k,
				    const char *arch, bool want_cubin)
{
	kiln_compile_options co = KILN_COMPILE_OPTIONS_INIT;
	co.source = s->source;
	co.name = s->source_name ? s->source_name : "kernel.cu";
	co.arch = arch;
	co.flags = (const char *const *)s->plan->nvrtc_flags;
	co.nflags = s->plan->nflags;
	co.defines = (const char *const *)k->defs;
	co.ndefines = k->ndefs;
	co.want_cubin = want_cubin;
	co.cache_dir = s->cache_dir;
	*out = co;
}
