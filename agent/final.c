/* agent: the final winner's bench-size check. After a run finishes, its best kernel is
 * verified once more on the emulator at the largest bench size that fits in memory
 * (kiln_verify bench_size): a kernel that caps its own grid inside the code or branches
 * on large sizes passes every small input set and only shows itself there. The result
 * goes to the log, an event in history.db and the run summary. */
#include "agent/agent_int.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile.h"

#define MAX_KNOBS 64

/* "NAME=V" defines from the candidate's knobs JSON ({"BLOCK": 256}). */
static size_t knob_defines(char **defs, const char *knobs_json)
{
	cJSON *o = knobs_json ? cJSON_Parse(knobs_json) : NULL, *k;
	size_t n = 0;
	cJSON_ArrayForEach(k, o) {
		if (n < MAX_KNOBS && cJSON_IsNumber(k) && (defs[n] = kiln_asprintf("%s=%lld", k->string, (long long)k->valuedouble)))
			n++;
	}
	cJSON_Delete(o);
	return n;
}

static kiln_err check_best(kiln_search *s, kiln_verdict *v)
{
	kiln_candidate_info *ci = NULL;
	kiln_plan *plan = NULL;
	kiln_device *dev = NULL;
	char *defs[MAX_KNOBS] = {0};
	size_t ndefs = 0;
	kiln_err e;
	if ((e = kiln_db_candidate_get(s->db, &ci, s->best_id)) ||
	    (e = kiln_plan_parse(&plan, ci->launch_json, strlen(ci->launch_json), s->t, "the best candidate's launch.json")) ||
	    (e = kiln_device_open(&dev, "emu", NULL)))
		goto done;
	ndefs = knob_defines(defs, ci->knobs_json);
	kiln_verify_options vo = {0};
	vo.target = s->t;
	vo.source = ci->source;
	vo.source_name = "kernel.cu";
	vo.plan = plan;
	vo.defines = (const char *const *)defs;
	vo.ndefines = ndefs;
	vo.device = dev;
	vo.cache_dir = s->cache_dir;
	vo.bench_size = true;
	vo.progress = s->log;
	e = kiln_verify(v, &vo);
done:
	for (size_t i = 0; i < ndefs; i++)
		free(defs[i]);
	kiln_device_free(dev);
	kiln_plan_free(plan);
	kiln_candidate_infos_free(ci, 1);
	return e;
}

void kiln_search_bench_check(kiln_search *s)
{
	if (!s->best_id)
		return;
	if (!kiln_verify_bench_check_wanted()) {
		snprintf(s->bench_check, sizeof(s->bench_check), "skipped (KILN_BENCH_CHECK=0)");
		return;
	}
	kiln_verdict *v = kiln_calloc(1, sizeof(*v));
	kiln_err e = v ? check_best(s, v) : KILN_ENOMEM;
	char sz[200] = "";
	for (size_t i = 0; v && i < v->input_sizes.n; i++) {
		size_t len = strlen(sz);
		snprintf(sz + len, sizeof(sz) - len, "%s%s=%lld", i ? "," : "", v->input_sizes.names[i],
			 (long long)v->input_sizes.values[i]);
	}
	const char *level = "info";
	if (e) {
		snprintf(s->bench_check, sizeof(s->bench_check), "could not run: %.400s", kiln_error_last());
		level = "warn";
	} else if (v->pass) {
		snprintf(s->bench_check, sizeof(s->bench_check), "passed at %s on the emulator (%.1f s)", sz, v->seconds);
	} else {
		snprintf(s->bench_check, sizeof(s->bench_check), "FAILED at %s [%s]: %.380s", sz, v->check, v->message);
		s->bench_failed = true;
		level = "error";
		fprintf(s->log, "kiln run: the best kernel (candidate %lld) fails at the bench size: do not use it\n",
			(long long)s->best_id);
	}
	if (s->db && s->run_id)
		kiln_db_event_add(s->db, s->run_id, level, "bench-check", s->bench_check, NULL);
	kiln_error_clear();
	free(v);
}
