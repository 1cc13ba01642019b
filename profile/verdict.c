/* profile: the verdict as JSON, the shape history.db stores and `kiln verify --json`
 * prints: pass, the failed check and message, the worst error and where, the input set,
 * (with its regime, kind, multi-step step), the seeds (as decimal strings: they are 64-bit), the checks that ran and the first
 * mismatches. Non-finite numbers become null. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "profile/profile.h"

static cJSON *num(double d)
{
	return isfinite(d) ? cJSON_CreateNumber(d) : cJSON_CreateNull();
}

static cJSON *u64s(uint64_t x)
{
	char s[32];
	snprintf(s, sizeof(s), "%llu", (unsigned long long)x);
	return cJSON_CreateString(s);
}

/* {"name": value, ...} of a size environment. */
static cJSON *sizes_obj(const kiln_env *env)
{
	cJSON *sz = cJSON_CreateObject();
	for (size_t i = 0; sz && i < env->n; i++)
		cJSON_AddItemToObject(sz, env->names[i], cJSON_CreateNumber((double)env->values[i]));
	return sz;
}

char *kiln_verdict_to_json(const kiln_verdict *v)
{
	char *text = NULL;
	cJSON *o = cJSON_CreateObject(), *a, *x;
	if (!o)
		return NULL;
	cJSON_AddItemToObject(o, "pass", cJSON_CreateBool(v->pass));
	cJSON_AddItemToObject(o, "check", v->pass ? cJSON_CreateNull() : cJSON_CreateString(v->check));
	cJSON_AddItemToObject(o, "message", cJSON_CreateString(v->message));
	cJSON_AddItemToObject(o, "unverifiable", cJSON_CreateBool(v->unverifiable));
	cJSON_AddItemToObject(o, "target_weak", cJSON_CreateBool(v->target_weak));
	if (v->worst_buffer[0]) {
		cJSON *w = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "worst", w);
		cJSON_AddItemToObject(w, "abs", num(v->worst_abs));
		cJSON_AddItemToObject(w, "rel", num(v->worst_rel));
		cJSON_AddItemToObject(w, "buffer", cJSON_CreateString(v->worst_buffer));
		cJSON_AddItemToObject(w, "index", cJSON_CreateNumber((double)v->worst_index));
		if (v->worst_row >= 0) {
			cJSON_AddItemToObject(w, "row", cJSON_CreateNumber((double)v->worst_row));
			cJSON_AddItemToObject(w, "col", cJSON_CreateNumber((double)v->worst_col));
		}
	}
	if (v->have_input) {
		cJSON *in = cJSON_CreateObject();
		cJSON_AddItemToObject(o, "input_set", in);
		cJSON_AddItemToObject(in, "sizes", sizes_obj(&v->input_sizes));
		cJSON_AddItemToObject(in, "seed", u64s(v->input_seed));
		cJSON_AddItemToObject(in, "regime", cJSON_CreateString(v->input_regime[0] ? v->input_regime : "default"));
		cJSON_AddItemToObject(in, "kind", cJSON_CreateString(v->input_kind[0] ? v->input_kind : "listed"));
		if (v->input_step)
			cJSON_AddItemToObject(in, "step", cJSON_CreateNumber(v->input_step));
		if (v->input_sm_count)
			cJSON_AddItemToObject(in, "sm_count", cJSON_CreateNumber((double)v->input_sm_count));
	}
	if (v->extra_sizes.n) /* the unlisted size run after the listed ones */
		cJSON_AddItemToObject(o, "extra_sizes", sizes_obj(&v->extra_sizes));
	cJSON_AddItemToObject(o, "seeds", a = cJSON_CreateArray());
	for (size_t i = 0; i < v->nseeds; i++)
		cJSON_AddItemToArray(a, u64s(v->seeds[i]));
	cJSON_AddItemToObject(o, "checks_run", a = cJSON_CreateArray());
	for (size_t i = 0; i < v->nchecks_run; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(v->checks_run[i]));
	cJSON_AddItemToObject(o, "runs", cJSON_CreateNumber((double)v->runs));
	cJSON_AddItemToObject(o, "sets", cJSON_CreateNumber((double)v->sets));
	cJSON_AddItemToObject(o, "mismatches", cJSON_CreateNumber((double)v->mismatches));
	cJSON_AddItemToObject(o, "first_mismatches", a = cJSON_CreateArray());
	for (size_t i = 0; i < v->nfirst; i++) {
		cJSON_AddItemToArray(a, x = cJSON_CreateObject());
		cJSON_AddItemToObject(x, "buffer", cJSON_CreateString(v->first[i].buffer));
		cJSON_AddItemToObject(x, "index", cJSON_CreateNumber((double)v->first[i].index));
		cJSON_AddItemToObject(x, "got", num(v->first[i].got));
		cJSON_AddItemToObject(x, "expected", num(v->first[i].expected));
	}
	cJSON_AddItemToObject(o, "seconds", num(v->seconds));
	cJSON_AddItemToObject(o, "cpu_seconds", num(v->cpu_seconds));
	cJSON_AddItemToObject(o, "thread_instructions", cJSON_CreateNumber((double)v->counters.thread_instructions));
	text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return text;
}
