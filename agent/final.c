/* agent: the final winner's bench-size check. After a run finishes, its best kernel is
 * verified once more on the emulator at the largest bench size that fits in memory
 * (kiln_verify bench_size): a kernel that caps its own grid inside the code or branches
 * on large sizes passes every small input set and only shows itself there. The result
 * goes to the log, an event in history.db and the run summary; a winner that fails there
 * is demoted and the next fastest passed candidate that passes becomes the best again. */
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
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src.target = s->t;
	vo.src.source = ci->source;
	vo.src.source_name = "kernel.cu";
	vo.src.plan = plan;
	vo.src.defines = (const char *const *)defs;
	vo.src.ndefines = ndefs;
	vo.src.device = dev;
	vo.src.cache_dir = s->cache_dir;
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

static void sizes_text(char *out, size_t n, const kiln_verdict *v)
{
	out[0] = 0;
	for (size_t i = 0; i < v->input_sizes.n; i++) {
		size_t len = strlen(out);
		snprintf(out + len, n - len, "%s%s=%lld", i ? "," : "", v->input_sizes.names[i],
			 (long long)v->input_sizes.values[i]);
	}
}

/* The fastest passed, timed candidate of the run that is not in `tried` (n of them); 0 when
 * none is left. */
static int64_t next_best(kiln_search *s, const int64_t *tried, size_t n)
{
	kiln_candidate_info *c = NULL;
	size_t nc = 0;
	int64_t id = 0;
	double best = 0;
	if (kiln_db_candidates_list(s->db, &c, &nc, s->run_id))
		return 0;
	for (size_t i = 0; i < nc; i++) {
		bool seen = false;
		for (size_t j = 0; j < n; j++)
			seen = seen || tried[j] == c[i].id;
		if (seen || !c[i].passed || !c[i].has_timing || !(c[i].time_us > 0))
			continue;
		if (!id || c[i].time_us < best) {
			id = c[i].id;
			best = c[i].time_us;
		}
	}
	kiln_candidate_infos_free(c, nc);
	return id;
}

#define MAX_DEMOTIONS 4

/* The final winner is verified at the bench size. One that fails there is demoted: the
 * next fastest passed candidate is checked the same way and, when it passes, becomes the
 * run's best again (history.db and a new archive commit), so no review, report or promote
 * takes a kernel that is wrong at the size it was timed for. */
void kiln_search_bench_check(kiln_search *s)
{
	if (!s->best_id)
		return;
	if (!kiln_verify_bench_check_wanted()) {
		snprintf(s->bench_check, sizeof(s->bench_check), "skipped (KILN_BENCH_CHECK=0)");
		return;
	}
	kiln_verdict *v = kiln_calloc(1, sizeof(*v));
	int64_t tried[MAX_DEMOTIONS + 1];
	size_t ntried = 0;
	char demoted[160] = "", sz[200] = "";
	const char *level = "info";
	kiln_err e = v ? 0 : KILN_ENOMEM;
	int64_t id = s->best_id;
	while (!e && id) {
		tried[ntried++] = id;
		s->best_id = id;
		if ((e = check_best(s, v)))
			break;
		sizes_text(sz, sizeof(sz), v);
		if (v->pass)
			break;
		char msg[700];
		snprintf(msg, sizeof(msg), "candidate %lld FAILED at %s [%s]: %.500s", (long long)id, sz, v->check,
			 v->message);
		kiln_db_event_add(s->db, s->run_id, "error", "bench-check", msg, NULL);
		fprintf(s->log, "kiln run: candidate %lld fails at the bench size (%s): it is not the best\n",
			(long long)id, sz);
		size_t len = strlen(demoted);
		snprintf(demoted + len, sizeof(demoted) - len, "%s%lld", len ? ", " : "", (long long)id);
		id = ntried <= MAX_DEMOTIONS ? next_best(s, tried, ntried) : 0;
		if (id && (e = kiln_search_restore_best(s, id)))
			break;
	}
	char was[240] = "";
	if (*demoted)
		snprintf(was, sizeof(was), "; demoted for failing there: candidate %s; the best is candidate %lld",
			 demoted, (long long)s->best_id);
	if (e) {
		snprintf(s->bench_check, sizeof(s->bench_check), "could not run: %.400s", kiln_error_last());
		level = "warn";
	} else if (v->pass) {
		snprintf(s->bench_check, sizeof(s->bench_check), "passed at %s on the emulator (%.1f s)%s", sz,
			 v->seconds, was);
	} else {
		snprintf(s->bench_check, sizeof(s->bench_check), "FAILED at %s [%s]: %.200s%s", sz, v->check,
			 v->message, was);
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
