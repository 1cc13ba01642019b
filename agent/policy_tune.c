/* The `tune` policy: no LLM. The seed's knob space (target.json "knobs", passed to the
 * seed as -D defines and to launch.json expressions) is searched by the tuner (seed ->
 * random sample -> local search) through the same evaluate / record path as the LLM
 * policy. The world model gets one family per region of the first knob ("BLOCK=256"), so
 * a tuner run's history reads like any other. A resumed run replays its recorded
 * candidates through the tuner, which is deterministic for a given seed. With --parallel N,
 * N configurations are evaluated at once (the tuner proposes the next before the last
 * results are in; the seed goes first, alone, as the baseline). */
#include "agent/agent_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TUNE_RANDOM_SAMPLES 6

typedef struct tune_state {
	kiln_search *s;
	kiln_tuner *tu;
	char **defines;  /* one "KNOB=V" per knob */
	size_t nk;
} tune_state;

static kiln_err set_defines(tune_state *ts, char **defines, const int64_t *values)
{
	for (size_t i = 0; i < ts->nk; i++) {
		free(defines[i]);
		defines[i] = kiln_asprintf("%s=%lld", ts->s->t->knobs[i].name, (long long)values[i]);
		if (!defines[i])
			return KILN_ENOMEM;
	}
	return 0;
}

/* The family node of a configuration: the one titled "<knob0>=<value>"; root when the
 * target has no knobs. */
static int64_t family_of(const tune_state *ts, const int64_t *values)
{
	if (ts->nk == 0)
		return KILN_WM_ROOT;
	char title[96];
	snprintf(title, sizeof title, "%s=%lld", ts->s->t->knobs[0].name, (long long)values[0]);
	kiln_wm_node n;
	for (size_t i = 1; kiln_wm_node_at(&n, ts->s->wm, i) == 0; i++)
		if (n.depth == 1 && strcmp(n.title, title) == 0)
			return n.id;
	return KILN_WM_ROOT;
}

static kiln_err add_families(kiln_search *s)
{
	if (s->t->nknobs == 0 || kiln_wm_count(s->wm) > 1)
		return 0;
	const kiln_knob *k = &s->t->knobs[0];
	for (size_t i = 0; i < k->n; i++) {
		char title[96], desc[256];
		snprintf(title, sizeof title, "%s=%lld", k->name, (long long)k->values[i]);
		snprintf(desc, sizeof desc, "the seed kernel with %s = %lld and the other knobs tuned",
			 k->name, (long long)k->values[i]);
		kiln_err e = kiln_wm_add_family(s->wm, NULL, title, desc);
		if (e)
			return e;
	}
	return kiln_search_wm_save(s, NULL, NULL, 0);
}

static kiln_err note_attempt(tune_state *ts, const int64_t *values, const kiln_eval *ev, int64_t id)
{
	kiln_search *s = ts->s;
	bool passed = ev->outcome == KILN_OUT_PASSED;
	kiln_wm_attempt a = {passed, passed ? id : 0, passed ? ev->timing.time_us : 0,
			     passed && !ev->timing.modeled ? ev->timing.spread * ev->timing.time_us : 0, ev->timing.modeled};
	kiln_err e = kiln_tuner_report(ts->tu, values, passed, ev->timing.time_us);
	if (!e)
		e = kiln_wm_record_attempt(s->wm, NULL, family_of(ts, values), &a);
	return e;
}

/* Values of the knobs recorded for a candidate (its knobs JSON). */
static bool recorded_values(const tune_state *ts, const char *knobs, int64_t *values)
{
	cJSON *o = knobs ? cJSON_Parse(knobs) : NULL;
	bool ok = o != NULL;
	for (size_t i = 0; ok && i < ts->nk; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, ts->s->t->knobs[i].name);
		ok = cJSON_IsNumber(v);
		if (ok)
			values[i] = (int64_t)v->valuedouble;
	}
	cJSON_Delete(o);
	return ok;
}

/* Replays a resumed run's candidates through the tuner so it proposes what comes next. */
static kiln_err replay(tune_state *ts)
{
	kiln_candidate_info *c = NULL;
	size_t n = 0;
	kiln_err e = kiln_db_candidates_list(ts->s->db, &c, &n, ts->s->run_id);
	for (size_t i = 0; !e && i < n; i++) {
		int64_t want[KILN_ENV_MAX], got[KILN_ENV_MAX];
		kiln_tune_phase ph;
		bool done = false;
		if (!recorded_values(ts, c[i].knobs_json, got))
			continue;
		if ((e = kiln_tuner_next(ts->tu, want, &ph, &done)) || done)
			break;
		if (memcmp(want, got, ts->nk * sizeof *want) != 0)
			fprintf(ts->s->log, "kiln run: resume: candidate %lld has a configuration the tuner would not have proposed now; continuing\n",
				(long long)c[i].id);
		bool passed = c[i].has_timing && c[i].passed;
		e = kiln_tuner_report(ts->tu, got, passed, c[i].time_us);
	}
	kiln_candidate_infos_free(c, n);
	return e;
}

/* Overlap: while one configuration is evaluated, the next (when it is already known: a
 * random draw) is compiled into the cache by another process. */
static pid_t precompile_next(tune_state *ts)
{
	int64_t next[KILN_ENV_MAX];
	if (!kiln_tuner_peek(ts->tu, next))
		return -1;
	char *defs[KILN_ENV_MAX];
	size_t n = 0;
	for (; n < ts->nk; n++)
		if (!(defs[n] = kiln_asprintf("%s=%lld", ts->s->t->knobs[n].name, (long long)next[n])))
			break;
	pid_t pid = -1;
	if (n == ts->nk) {
		kiln_cand c = {ts->s->seed_source, ts->s->seed_launch, (const char *const *)defs, n, -1, 0, 0, false, NULL, 0, false};
		pid = kiln_search_precompile(ts->s, &c);
	}
	for (size_t i = 0; i < n; i++)
		free(defs[i]);
	return pid;
}

static const char *phase_name(kiln_tune_phase p)
{
	return p == KILN_TUNE_SEED ? "seed" : p == KILN_TUNE_RANDOM ? "random" : "local";
}

/* One configuration: proposed under the search lock, numbered at dispatch, evaluated with
 * the lock released (other slots run meanwhile), recorded. `defines` is the slot's own. */
static kiln_err tune_step(tune_state *ts, char **defines, bool *exhausted)
{
	kiln_search *s = ts->s;
	int64_t values[KILN_ENV_MAX];
	kiln_tune_phase ph;
	kiln_err e = kiln_tuner_next(ts->tu, values, &ph, exhausted);
	if (e || *exhausted)
		return e;
	if ((e = set_defines(ts, defines, values)))
		return e;
	bool is_seed = ph == KILN_TUNE_SEED && s->iteration == 0;
	kiln_buf what; /* what changed: the knob values (the kernel is the seed's) */
	kiln_buf_init(&what, 4096);
	kiln_buf_puts(&what, is_seed ? "the seed at its knob values" : "knobs");
	for (size_t i = 0; !is_seed && i < ts->nk; i++)
		kiln_buf_printf(&what, " %s", defines[i]);
	char *changed = kiln_buf_detach(&what);
	kiln_cand c = {s->seed_source, s->seed_launch, (const char *const *)defines, ts->nk,
		       family_of(ts, values), s->seed_id, 0, is_seed, changed, 0, false};
	if (s->par) {
		c.iteration = kiln_search_dispatch(s, false);
		c.dispatched = true;
	}
	pid_t pre = s->par ? -1 : precompile_next(ts); /* in parallel the slots overlap instead */
	kiln_eval ev;
	int64_t id = 0;
	bool best = false;
	e = kiln_search_evaluate(s, &c, &ev, &id, &best);
	kiln_eval_precompile_wait(pre);
	if (!e && !ev.abandoned) {
		e = note_attempt(ts, values, &ev, id);
		if (!e && c.is_seed && ev.outcome == KILN_OUT_PASSED) { /* the baseline of speedups */
			kiln_wm_attempt a = {true, id, ev.timing.time_us, 0, ev.timing.modeled};
			e = kiln_wm_record_attempt(s->wm, NULL, KILN_WM_ROOT, &a);
		}
		if (!e)
			e = kiln_search_wm_save(s, NULL, NULL, 0);
		if (!e)
			e = kiln_search_checkpoint(s, NULL);
		char what[640] = "";
		char *sum = kiln_eval_summary(&ev);
		size_t off = 0;
		for (size_t i = 0; i < ts->nk && off < 200; i++)
			off += (size_t)snprintf(what + off, sizeof what - off, "%s%s", i ? " " : "", defines[i]);
		snprintf(what + off, sizeof what - off, " (%s): %s%s", phase_name(ph), sum ? sum : "",
			 best ? " NEW BEST" : "");
		free(sum);
		kiln_search_progress(s, what);
	}
	kiln_eval_free(&ev);
	free(changed);
	return e;
}

static void stop_exhausted(kiln_search *s)
{
	snprintf(s->stop_reason, sizeof s->stop_reason, "the tuner tried every configuration");
}

typedef struct tune_slot {
	tune_state *ts;
	char **defines;
} tune_slot;

static kiln_err tune_slot_step(void *arg, bool *idle, bool *done)
{
	tune_slot *sl = arg;
	(void)idle;
	kiln_err e = tune_step(sl->ts, sl->defines, done);
	if (!e && *done)
		stop_exhausted(sl->ts->s);
	return e;
}

/* N configurations at once; the seed (the baseline) is evaluated alone first. */
static kiln_err tune_parallel(tune_state *ts, size_t width)
{
	kiln_search *s = ts->s;
	bool exhausted = false;
	kiln_err e = 0;
	if (s->iteration == 0 && (e = tune_step(ts, ts->defines, &exhausted)))
		return e;
	if (exhausted) {
		stop_exhausted(s);
		return 0;
	}
	tune_slot *sl = kiln_calloc(width, sizeof *sl);
	void **slots = kiln_calloc(width, sizeof *slots);
	for (size_t i = 0; !e && sl && slots && i < width; i++) {
		sl[i].ts = ts;
		slots[i] = &sl[i];
		if (!(sl[i].defines = kiln_calloc(ts->nk ? ts->nk : 1, sizeof(char *))))
			e = KILN_ENOMEM;
	}
	if (!sl || !slots)
		e = KILN_ENOMEM;
	if (!e && !kiln_search_should_stop(s))
		e = kiln_search_run_slots(s, slots, width, tune_slot_step);
	for (size_t i = 0; sl && i < width; i++) {
		for (size_t k = 0; sl[i].defines && k < ts->nk; k++)
			free(sl[i].defines[k]);
		free(sl[i].defines);
	}
	free(sl);
	free(slots);
	return e;
}

/* Closes every family that has a passing configuration, so the final tree shows what
 * each region achieved. */
static kiln_err close_families(kiln_search *s)
{
	kiln_wm_node n;
	bool changed = false;
	for (size_t i = 1; kiln_wm_node_at(&n, s->wm, i) == 0; i++) {
		if (n.depth != 1 || n.status != KILN_WM_OPEN || n.best_candidate == 0)
			continue;
		kiln_err e = kiln_wm_solve(s->wm, n.id, 0, 0);
		if (e)
			return e;
		changed = true;
	}
	return changed ? kiln_search_wm_save(s, NULL, NULL, 0) : 0;
}

kiln_err kiln_policy_tune(kiln_search *s)
{
	tune_state ts = {s, NULL, NULL, s->t->nknobs};
	kiln_err e = kiln_tuner_new(&ts.tu, s->t, s->seed_source, s->seed, TUNE_RANDOM_SAMPLES);
	if (!e && !(ts.defines = kiln_calloc(ts.nk ? ts.nk : 1, sizeof(char *))))
		e = KILN_ENOMEM;
	if (!e)
		e = add_families(s);
	if (!e && s->resumed)
		e = replay(&ts);
	bool exhausted = false;
	size_t width = kiln_search_width(s);
	if (!e && width > 1)
		e = tune_parallel(&ts, width);
	while (!e && width <= 1 && !kiln_search_should_stop(s)) {
		if ((e = tune_step(&ts, ts.defines, &exhausted)))
			break;
		if (exhausted) {
			stop_exhausted(s);
			break;
		}
	}
	if (!e && !kiln_search_stop)
		e = close_families(s);
	for (size_t i = 0; ts.defines && i < ts.nk; i++)
		free(ts.defines[i]);
	free(ts.defines);
	kiln_tuner_free(ts.tu);
	return e;
}
