/* Recording what a search does: every candidate in one history.db transaction, each new
 * best as a commit in the git archive, world-model revisions, budgets and the progress
 * line. The shared evaluate -> record path of both policies lives here. */
#include "agent/agent_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char *knobs_json(const kiln_cand *c)
{
	cJSON *o = cJSON_CreateObject();
	for (size_t i = 0; o && i < c->ndefines; i++) {
		const char *d = c->defines[i], *eq = strchr(d, '=');
		if (!eq)
			continue;
		char name[64];
		snprintf(name, sizeof name, "%.*s", (int)(eq - d), d);
		cJSON_AddNumberToObject(o, name, strtod(eq + 1, NULL));
	}
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

static const char *outcome_check(const kiln_eval *ev)
{
	return ev->outcome == KILN_OUT_PASSED ? NULL : ev->failed_check ? ev->failed_check : "failed";
}

static void fill_compile(kiln_compile_rec *cr, const kiln_search *s, const kiln_eval *ev)
{
	*cr = ev->compile;
	cr->log = ev->compile.log ? ev->compile.log : ev->message;
	cr->arch = s->arch;
}

static void fill_verify(kiln_verify_rec *vr, const kiln_eval *ev)
{
	memset(vr, 0, sizeof *vr);
	vr->passed = ev->outcome == KILN_OUT_PASSED;
	vr->failed_check = outcome_check(ev);
	vr->message = ev->message ? ev->message : "";
	vr->worst_error = ev->worst_error;
	vr->worst_index = ev->worst_index;
	vr->worst_buffer = ev->worst_buffer;
	vr->worst_set = -1;
	vr->seeds_json = ev->seeds_json;
	vr->checks_json = ev->checks_json;
	vr->device = ev->device ? ev->device : "emu";
	vr->wall_s = ev->verify_s;
	vr->details_json = ev->verdict_json;
}

static void fill_timing(kiln_timing_rec *tr, const kiln_search *s, const kiln_eval *ev)
{
	*tr = ev->timing;
	tr->device = ev->device ? ev->device : s->device;
	tr->speedup = s->seed_us > 0 ? s->seed_us / ev->timing.time_us : 1.0;
}

/* The noise margin: measured timings must beat the old best by their spread, modeled
 * ones by the world model's tie band. */
static bool beats_best(const kiln_search *s, const kiln_eval *ev)
{
	if (ev->outcome != KILN_OUT_PASSED || !(ev->timing.time_us > 0))
		return false;
	if (s->best_id == 0)
		return true;
	kiln_wm_options wo;
	kiln_wm_get_options(&wo, s->wm);
	return kiln_wm_is_new_best(s->best_us, s->best_spread_us, ev->timing.time_us,
				   ev->timing.modeled ? 0 : ev->timing.spread * ev->timing.time_us, ev->timing.modeled, wo.tie_band);
}

static char *result_json(const kiln_search *s, const kiln_cand *c, const kiln_eval *ev, int64_t id,
			 int64_t iteration)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "target", s->t->name);
	cJSON_AddStringToObject(o, "arch", s->arch);
	cJSON_AddNumberToObject(o, "run", (double)s->run_id);
	cJSON_AddNumberToObject(o, "candidate", (double)id);
	cJSON_AddNumberToObject(o, "iteration", (double)iteration);
	cJSON_AddStringToObject(o, "policy", s->llm ? "llm" : "tune");
	if (s->o->llm)
		cJSON_AddStringToObject(o, "llm_model", s->o->llm);
	/* the action is what the search set out to do; "changed" is what this kernel does (a
	 * model may change method inside an action, so the title need not describe it) */
	char *path = NULL;
	if (c->node > 0 && kiln_wm_path(&path, s->wm, c->node) == 0)
		cJSON_AddStringToObject(o, "node", path);
	free(path);
	if (c->changed)
		cJSON_AddStringToObject(o, "changed", c->changed);
	char *knobs = knobs_json(c);
	cJSON_AddItemToObject(o, "knobs", knobs ? cJSON_Parse(knobs) : cJSON_CreateObject());
	free(knobs);
	cJSON_AddNumberToObject(o, "time_us", ev->timing.time_us);
	cJSON_AddNumberToObject(o, "speedup", s->seed_us > 0 ? s->seed_us / ev->timing.time_us : 1.0);
	cJSON_AddBoolToObject(o, "modeled", ev->timing.modeled);
	cJSON_AddStringToObject(o, "device", ev->device ? ev->device : s->device);
	cJSON_AddStringToObject(o, "toolkit", ev->compile.toolkit ? ev->compile.toolkit : "");
	cJSON_AddItemToObject(o, "verdict", ev->verdict_json ? cJSON_Parse(ev->verdict_json) : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "timing", ev->timing_json ? cJSON_Parse(ev->timing_json) : cJSON_CreateNull());
	cJSON_AddItemToObject(o, "samples_us", ev->timing.samples_json ? cJSON_Parse(ev->timing.samples_json) : cJSON_CreateNull());
	char *text = cJSON_Print(o);
	cJSON_Delete(o);
	return text;
}

/* iteration: the candidate's own, as history.db records it (kiln show, kiln log, the report). */
static kiln_err commit_git(kiln_search *s, const kiln_cand *c, const kiln_eval *ev, int64_t id, int64_t iteration)
{
	char *res = result_json(s, c, ev, id, iteration);
	if (!res)
		return KILN_ENOMEM;
	char *raw_path = NULL, *path = NULL;
	if (c->node > 0 && kiln_wm_path(&raw_path, s->wm, c->node) == KILN_OK)
		path = kiln_text_escape(raw_path, KILN_TEXT_LINE); /* titles are the model's */
	free(raw_path);
	char *changed = c->changed ? kiln_text_escape(c->changed, KILN_TEXT_LINE) : NULL;
	char *body = kiln_asprintf("run %lld, iteration %lld, policy %s%s%s%s%s%s%s",
				   (long long)s->run_id, (long long)iteration, s->llm ? "llm" : "tune",
				   s->o->llm ? ", model " : "", s->o->llm ? s->o->llm : "",
				   changed ? "\nchanged: " : "", changed ? changed : "",
				   path ? "\naction: " : "", path ? path : "");
	free(changed);
	kiln_git_best b = {0};
	b.target = s->t->name;
	b.arch = s->arch;
	b.kernel_cu = c->source;
	b.launch_json = c->launch_json;
	b.result_json = res;
	b.speedup = s->seed_us > 0 ? s->seed_us / ev->timing.time_us : 1.0;
	b.time_us = ev->timing.time_us;
	b.modeled = ev->timing.modeled;
	b.candidate_id = id;
	b.run_id = s->run_id;
	b.body = body;
	char oid[41];
	kiln_err e = kiln_git_commit_best(s->git, oid, &b);
	free(res);
	free(path);
	free(body);
	return e;
}

kiln_err kiln_search_record(kiln_search *s, const kiln_cand *c, const kiln_eval *ev,
			    int64_t *out_id, bool *new_best)
{
	bool best = beats_best(s, ev);
	char node[24];
	snprintf(node, sizeof node, "%lld", (long long)c->node);
	char *knobs = knobs_json(c);
	kiln_candidate_rec cr = {0};
	cr.run_id = s->run_id;
	cr.iteration = c->dispatched ? c->iteration : kiln_search_dispatch(s, false);
	cr.node_id = c->node >= 0 ? node : NULL;
	cr.parent_id = c->parent_id;
	cr.source = c->source;
	cr.launch_json = c->launch_json;
	cr.knobs_json = knobs;
	cr.llm_call_id = c->llm_call_id;
	cr.is_seed = c->is_seed;
	cr.new_best = best;
	cr.changed = c->changed;
	kiln_compile_rec comp;
	kiln_verify_rec ver;
	kiln_timing_rec tim;
	fill_compile(&comp, s, ev);
	fill_verify(&ver, ev);
	fill_timing(&tim, s, ev);
	bool verified = ev->has_verify || ev->outcome == KILN_OUT_FAILED;
	int64_t id = 0;
	kiln_err e = kiln_db_candidate_commit(s->db, &id, &cr, ev->has_compile ? &comp : NULL,
					      verified ? &ver : NULL, ev->has_timing ? &tim : NULL);
	free(knobs);
	if (e)
		return e;
	if (cr.iteration >= s->iteration)
		s->iteration = cr.iteration + 1;
	s->last_iteration = cr.iteration;
	if (ev->outcome == KILN_OUT_PASSED)
		s->passed++;
	else
		s->failed++;
	if (c->is_seed && ev->outcome == KILN_OUT_PASSED) {
		s->seed_id = id;
		s->seed_us = ev->timing.time_us;
	}
	if (best) {
		s->best_id = id;
		s->best_us = ev->timing.time_us;
		s->best_spread_us = ev->timing.modeled ? 0 : ev->timing.spread * ev->timing.time_us;
		s->modeled = ev->timing.modeled;
		if ((e = commit_git(s, c, ev, id, cr.iteration)))
			return kiln_error_wrap(e, "candidate %lld is recorded as the new best, but the git archive commit failed (kiln run --resume repairs it)",
					       (long long)id);
	}
	if (out_id)
		*out_id = id;
	if (new_best)
		*new_best = best;
	return 0;
}

kiln_err kiln_search_wm_save(kiln_search *s, const char *edits_json, const char *rejected_json,
			     int64_t llm_call_id)
{
	char *tree = NULL;
	kiln_err e = kiln_wm_to_json(&tree, s->wm);
	if (e)
		return e;
	kiln_wm_revision_rec r = {s->run_id, s->iteration, tree, edits_json, rejected_json, llm_call_id};
	e = kiln_db_wm_revision_add(s->db, NULL, &r);
	free(tree);
	return e;
}

/* The candidate's id in result.json at the branch tip; 0 when there is no branch. */
static kiln_err tip_candidate(kiln_search *s, int64_t *out)
{
	kiln_git_branch *br = NULL;
	size_t n = 0;
	*out = 0;
	kiln_err e = kiln_git_verify_refs(s->git, &br, &n);
	if (e)
		return e;
	char name[160];
	snprintf(name, sizeof name, "%s/%s", s->t->name, s->arch);
	for (size_t i = 0; i < n; i++)
		if (strcmp(br[i].name, name) == 0)
			*out = br[i].candidate_id;
	kiln_git_branches_free(br, n);
	return 0;
}

/* Commits a recorded candidate to the archive as its branch's tip (a best the archive
 * missed, or one restored after a demotion). */
static kiln_err commit_candidate(kiln_search *s, const kiln_candidate_info *ci)
{
	kiln_eval ev;
	memset(&ev, 0, sizeof ev);
	ev.outcome = KILN_OUT_PASSED;
	ev.timing.time_us = ci->time_us;
	ev.timing.modeled = ci->modeled;
	kiln_cand c = {ci->source, ci->launch_json, NULL, 0, -1, ci->parent_id, ci->llm_call_id, false, ci->changed,
		       ci->iteration, true};
	return commit_git(s, &c, &ev, ci->id, ci->iteration);
}

kiln_err kiln_search_restore_best(kiln_search *s, int64_t id)
{
	kiln_candidate_info *ci = NULL;
	kiln_err e;
	if ((e = kiln_db_candidate_get(s->db, &ci, id)) || (e = kiln_db_run_set_best(s->db, s->run_id, id)))
		goto done;
	s->best_id = id;
	s->best_us = ci->time_us;
	s->best_spread_us = 0;
	e = commit_candidate(s, ci);
done:
	kiln_candidate_infos_free(ci, 1);
	return e;
}

kiln_err kiln_search_reconcile_archive(kiln_search *s)
{
	if (s->best_id == 0)
		return 0;
	int64_t tip = 0;
	kiln_err e = tip_candidate(s, &tip);
	if (e)
		return e;
	if (tip == s->best_id)
		return 0;
	kiln_candidate_info *ci = NULL;
	if ((e = kiln_db_candidate_get(s->db, &ci, s->best_id)))
		return e;
	/* Only a best recorded after the tip can be missing from the archive. */
	if (tip > s->best_id) {
		kiln_candidate_infos_free(ci, 1);
		return 0;
	}
	e = commit_candidate(s, ci);
	if (!e)
		kiln_db_event_add(s->db, s->run_id, "warn", "archive-repaired",
				  "the best candidate was missing from the git archive (the run was killed between the two writes); committed it now",
				  NULL);
	kiln_candidate_infos_free(ci, 1);
	return e;
}

static void fill_job(kiln_eval_job *job, const kiln_search *s, const kiln_cand *c)
{
	memset(job, 0, sizeof *job);
	job->target = s->t;
	job->source = c->source;
	job->launch_json = c->launch_json;
	job->defines = c->defines;
	job->ndefines = c->ndefines;
	job->device = s->device;
	job->gpu = s->o->gpu;
	kiln_rank_time_parse(&job->rank, s->o->rank_time); /* checked when the run started */
	job->arch = s->arch;
	job->cache_dir = s->cache_dir;
	job->nseeds = s->o->verify_seeds;
	job->threads = s->o->verify_threads;
	job->timing_seed = s->seed;
	kiln_target_floors_warm(s->t, s->seed); /* memoized: the evaluation children inherit it */
	job->timeout_s = s->o->eval_timeout_s > 0 ? s->o->eval_timeout_s : 600;
	job->gpu_index = kiln_search_gpu_of_slot(s);
	job->mpi_rank = kiln_search_worker_rank();
	size_t width = kiln_search_width(s);
	if (width > 1 && strcmp(s->device, "emu") == 0) /* the workers share the cores */
		job->threads = job->threads / width > 0 ? job->threads / width : 1;
}

pid_t kiln_search_precompile(kiln_search *s, const kiln_cand *c)
{
	kiln_eval_job job;
	fill_job(&job, s, c);
	return kiln_eval_precompile(&job);
}

kiln_err kiln_search_evaluate(kiln_search *s, const kiln_cand *c, kiln_eval *ev, int64_t *out_id,
			      bool *new_best)
{
	kiln_eval_job job;
	fill_job(&job, s, c);
	if (out_id)
		*out_id = 0;
	if (new_best)
		*new_best = false;
	s->evaluating++;
	kiln_search_unlock(s); /* other slots run while this one waits for its child */
	kiln_err e = kiln_eval_run(ev, &job);
	kiln_search_lock(s);
	s->evaluating--;
	if (e || ev->abandoned)
		return e;
	return kiln_search_record(s, c, ev, out_id, new_best);
}

/* ---- budgets and progress ---- */

static double elapsed(const kiln_search *s)
{
	return s->elapsed_before + (kiln_now_s() - s->started);
}

bool kiln_search_should_stop(kiln_search *s)
{
	const kiln_run_options *o = s->o;
	if (s->stop_reason[0])
		return true;
	if (kiln_search_stop)
		snprintf(s->stop_reason, sizeof s->stop_reason, "interrupted by a signal");
	else if (o->iterations > 0 && s->iteration - (int64_t)s->nholes >= o->iterations)
		snprintf(s->stop_reason, sizeof s->stop_reason, "iteration budget reached (%lld)", (long long)o->iterations);
	else if (o->hours > 0 && elapsed(s) >= o->hours * 3600)
		snprintf(s->stop_reason, sizeof s->stop_reason, "time budget reached (%.2f h)", o->hours);
	else if (o->max_cost > 0 && s->cost_usd >= o->max_cost)
		snprintf(s->stop_reason, sizeof s->stop_reason, "cost budget reached ($%.2f of $%.2f)", s->cost_usd, o->max_cost);
	else if (o->max_tokens > 0 && s->tokens >= o->max_tokens)
		snprintf(s->stop_reason, sizeof s->stop_reason, "token budget reached (%lld)", (long long)o->max_tokens);
	return s->stop_reason[0] != 0;
}

static char *spent_json(const kiln_search *s)
{
	return kiln_asprintf("{\"iterations\": %lld, \"seconds\": %.1f, \"cost_usd\": %.6f, \"unpriced_calls\": %lld, \"tokens\": %lld, \"passed\": %lld, \"failed\": %lld}",
			     (long long)s->iteration, elapsed(s), s->cost_usd, (long long)s->unpriced_calls,
			     (long long)s->tokens, (long long)s->passed, (long long)s->failed);
}

kiln_err kiln_search_checkpoint(kiln_search *s, const char *policy_state_json)
{
	char *spent = spent_json(s);
	if (!spent)
		return KILN_ENOMEM;
	kiln_err e = kiln_db_run_spent(s->db, s->run_id, spent);
	if (!e) {
		if (policy_state_json && policy_state_json != s->policy_state) { /* the last one is kept */
			free(s->policy_state);
			s->policy_state = kiln_strdup(policy_state_json);
		}
		char *state = kiln_asprintf("{\"spent\": %s, \"policy\": %s}", spent,
					    s->policy_state ? s->policy_state : "null");
		e = state ? kiln_db_checkpoint_put(s->db, s->run_id, s->iteration, state) : KILN_ENOMEM;
		free(state);
	}
	free(spent);
	return e;
}

void kiln_search_progress(kiln_search *s, const char *what)
{
	char budget[64] = "";
	const kiln_run_options *o = s->o;
	if (o->hours > 0)
		snprintf(budget, sizeof budget, ", %.0f min left", (o->hours * 3600 - elapsed(s)) / 60);
	else if (o->iterations > 0)
		snprintf(budget, sizeof budget, ", %lld left", (long long)(o->iterations - s->iteration + (int64_t)s->nholes));
	char best[96] = "no passing kernel yet";
	if (s->best_id)
		snprintf(best, sizeof best, "best %.3f us%s (%.2fx)", s->best_us, s->modeled ? " modeled" : "",
			 s->seed_us > 0 ? s->seed_us / s->best_us : 1.0);
	char money[96] = "", cost[48];
	if (s->llm)
		snprintf(money, sizeof money, ", %lld tokens %s", (long long)s->tokens,
			 kiln_cost_text(cost, sizeof cost, s->cost_usd, s->cost_usd > 0, s->unpriced_calls, 4));
	/* what quotes replies and compile logs: redacted (a boundary: the terminal and its logs)
	 * and escaped, so the model cannot set the window title, write the clipboard (OSC 52)
	 * or forge a line with \r */
	char *red = kiln_redact_dup(what), *safe = kiln_text_escape(red ? red : what, KILN_TEXT_LINE);
	/* [N]: the iteration of the last recorded candidate, as history.db, result.json, the
	 * commit, kiln show, kiln log and the report number it (the seed is 0) */
	char flight[96] = "";
	if (s->par)
		snprintf(flight, sizeof flight, " | %zu-wide: %lld asking, %lld evaluating", kiln_search_width(s),
			 (long long)s->asking, (long long)s->evaluating);
	fprintf(s->log, "%s[%lld] %s | %s | %lld passed %lld failed%s%s%s%s", s->tty ? "\r\033[K" : "",
		(long long)s->last_iteration, safe ? safe : "?", best, (long long)s->passed, (long long)s->failed, money,
		budget, flight, s->tty ? "" : "\n");
	free(safe);
	fflush(s->log);
	free(red);
}

char *kiln_cost_text(char *out, size_t n, double usd, bool any_priced, int64_t unpriced, int digits)
{
	any_priced = any_priced && isfinite(usd);
	if (!any_priced && unpriced <= 0)
		snprintf(out, n, "%s", digits > 2 ? "$0.0000" : "-");
	else if (!any_priced)
		snprintf(out, n, "unknown");
	else if (unpriced > 0)
		snprintf(out, n, "$%.*f + unknown", digits, isfinite(usd) ? usd : 0.0);
	else
		snprintf(out, n, "$%.*f", digits, isfinite(usd) ? usd : 0.0);
	return out;
}
