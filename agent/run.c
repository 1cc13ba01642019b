/* `kiln run`: opens the work directory (history.db, the git archive, the compile cache),
 * starts or resumes a run, hands it to a policy (tune or llm) and closes it with its
 * status. Everything a run needs to continue after a crash is in history.db: the run row
 * (budgets, configuration), the candidates (one transaction each), the world-model
 * revisions and the checkpoint (what was spent). */
#include "agent/agent_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "profile/profile.h"

#include "agent/llm/llm.h"

volatile sig_atomic_t kiln_search_stop;

static void on_signal(int sig)
{
	(void)sig;
	kiln_search_stop = 1;
}

static void install_signals(struct sigaction *old_int, struct sigaction *old_term)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, old_int);
	sigaction(SIGTERM, &sa, old_term);
}

/* ---- the device, probed in a child (a CUDA context must never exist in the parent,
 * which forks one evaluation child per candidate) ---- */

static kiln_err probe_fn(char **text, void *arg)
{
	kiln_device *dev = NULL;
	kiln_err e = kiln_device_open(&dev, (const char *)arg, NULL);
	if (e) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "error", kiln_error_last());
		*text = cJSON_PrintUnformatted(o);
		cJSON_Delete(o);
		return 0;
	}
	const kiln_device_info *in = kiln_device_info_get(dev);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "kind", in->kind == KILN_DEVICE_CUDA ? "cuda" : "emu");
	cJSON_AddStringToObject(o, "arch", in->arch);
	cJSON_AddStringToObject(o, "name", in->name);
	*text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	kiln_device_free(dev);
	return *text ? 0 : KILN_ENOMEM;
}

static kiln_err resolve_device(kiln_search *s, const char *kind)
{
	kiln_child_result r;
	kiln_err e = kiln_child_run(&r, probe_fn, (void *)(kind ? kind : "auto"), 120);
	if (e)
		return e;
	cJSON *o = r.text ? cJSON_Parse(r.text) : NULL;
	const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error"));
	const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind"));
	const char *arch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "arch"));
	if (err)
		e = kiln_error_set(KILN_EDEVICE, "device %s: %s", kind ? kind : "auto", err);
	else if (!k || !arch)
		e = kiln_error_set(KILN_EDEVICE, "device %s: the probe process ended without an answer (signal %d)",
				   kind ? kind : "auto", r.signal);
	else {
		snprintf(s->device, sizeof s->device, "%s", k);
		snprintf(s->arch, sizeof s->arch, "%s", arch);
	}
	cJSON_Delete(o);
	kiln_child_result_free(&r);
	return e;
}

/* ---- the work directory ---- */

static kiln_err open_workdir(kiln_search *s)
{
	const char *wd = s->o->workdir;
	kiln_err e = kiln_lock_acquire(&s->lock, wd);
	if (e)
		return e;
	char *db = kiln_path_join(wd, "history.db");
	char *ar = kiln_path_join(wd, "archive");
	s->cache_dir = kiln_path_join(wd, "cache");
	if (!db || !ar || !s->cache_dir)
		e = KILN_ENOMEM;
	if (!e)
		e = kiln_db_open(&s->db, db, 0);
	if (!e)
		e = kiln_git_open(&s->git, ar);
	free(db);
	free(ar);
	return e;
}

static kiln_err load_target(kiln_search *s, const char *name, const char *targets_dir)
{
	kiln_err e = kiln_target_find(&s->t, name, targets_dir);
	if (e)
		return e;
	size_t n;
	if ((e = kiln_file_read(&s->seed_source, &n, s->t->seed_path, 4u << 20)))
		return e;
	return kiln_file_read(&s->seed_launch, &n, s->t->launch_path, 1u << 20);
}

/* ---- budgets and configuration, stored with the run so --resume needs no flags ---- */

static char *budgets_json(const kiln_run_options *o)
{
	return kiln_asprintf("{\"iterations\": %lld, \"hours\": %.17g, \"max_cost\": %.17g, \"max_tokens\": %lld}",
			     (long long)o->iterations, o->hours, o->max_cost, (long long)o->max_tokens);
}

static char *config_json(const kiln_search *s)
{
	const kiln_run_options *o = s->o;
	cJSON *c = cJSON_CreateObject();
	char seed[24];
	snprintf(seed, sizeof seed, "%llu", (unsigned long long)s->seed);
	cJSON_AddStringToObject(c, "seed", seed);
	cJSON_AddStringToObject(c, "target_dir", s->t->dir);
	if (o->gpu)
		cJSON_AddStringToObject(c, "gpu", o->gpu);
	cJSON_AddStringToObject(c, "rank_time", o->rank_time ? o->rank_time : "launches");
	if (o->base_url)
		cJSON_AddStringToObject(c, "base_url", o->base_url);
	cJSON_AddBoolToObject(c, "stream", o->stream);
	cJSON_AddNumberToObject(c, "llm_timeout_s", o->llm_timeout_s);
	cJSON_AddNumberToObject(c, "verify_seeds", (double)o->verify_seeds);
	cJSON_AddNumberToObject(c, "eval_timeout_s", o->eval_timeout_s);
	cJSON_AddNumberToObject(c, "stagnation", o->stagnation);
	cJSON_AddNumberToObject(c, "max_attempts", o->max_attempts);
	cJSON *bs = cJSON_AddArrayToObject(c, "bench_sizes"); /* what the run ranks on */
	for (size_t i = 0; bs && i < s->t->nbench_sizes; i++) {
		char spec[256];
		if (kiln_target_bench_spec(spec, sizeof spec, s->t, i) == 0)
			cJSON_AddItemToArray(bs, cJSON_CreateString(spec));
	}
	cJSON_AddNumberToObject(c, "parallel", (double)o->parallel);
	char *text = cJSON_PrintUnformatted(c);
	cJSON_Delete(c);
	return text;
}

static bool no_budget(const kiln_run_options *o)
{
	return o->iterations <= 0 && o->hours <= 0 && o->max_cost <= 0 && o->max_tokens <= 0;
}

/* On resume the stored budgets and configuration come back unless the command line set
 * its own budgets. Strings point into `keep` (the parsed JSON), which the caller frees. */
static void restore_options(kiln_run_options *o, const kiln_run_info *ri, cJSON **keep)
{
	cJSON *b = cJSON_Parse(ri->budgets_json ? ri->budgets_json : "{}");
	cJSON *c = cJSON_Parse(ri->config_json ? ri->config_json : "{}");
	if (no_budget(o) && b) {
		const cJSON *v;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(b, "iterations")))
			o->iterations = (int64_t)v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(b, "hours")))
			o->hours = v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(b, "max_cost")))
			o->max_cost = v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(b, "max_tokens")))
			o->max_tokens = (int64_t)v->valuedouble;
	}
	cJSON_Delete(b);
	if (c) {
		const cJSON *v;
		if (!o->gpu)
			o->gpu = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "gpu"));
		if (!o->rank_time)
			o->rank_time = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "rank_time"));
		if (!o->base_url)
			o->base_url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "base_url"));
		o->stream = o->stream || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, "stream"));
		if (!o->verify_seeds && cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(c, "verify_seeds")))
			o->verify_seeds = (size_t)v->valuedouble;
		if (!(o->llm_timeout_s > 0) && cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(c, "llm_timeout_s")))
			o->llm_timeout_s = v->valuedouble;
		if (!(o->eval_timeout_s > 0) && cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(c, "eval_timeout_s")))
			o->eval_timeout_s = v->valuedouble;
		if (!o->stagnation && cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(c, "stagnation")))
			o->stagnation = (int)v->valuedouble;
		if (!o->max_attempts && cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(c, "max_attempts")))
			o->max_attempts = (int)v->valuedouble;
		if (!o->parallel && cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(c, "parallel")) &&
		    v->valuedouble >= 1 && v->valuedouble <= 64)
			o->parallel = (size_t)v->valuedouble;
	}
	*keep = c;
}

static uint64_t stored_seed(const kiln_run_info *ri)
{
	cJSON *c = cJSON_Parse(ri->config_json ? ri->config_json : "{}");
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(c, "seed"));
	uint64_t v = s ? strtoull(s, NULL, 10) : 0;
	cJSON_Delete(c);
	return v;
}

/* The bench sizes a run was started with (config bench_sizes), so a resumed run ranks on
 * the same ones even when target.json changed since. A run from before per-size timing
 * was timed at the first bench size only, and resumes so (with a warning). */
static kiln_err restore_sizes(kiln_search *s, const cJSON *config)
{
	const cJSON *bs = cJSON_GetObjectItemCaseSensitive(config, "bench_sizes"), *it;
	const char *specs[KILN_TARGET_MAX_BENCH];
	char first[256];
	size_t n = 0;
	cJSON_ArrayForEach(it, bs)
		if (cJSON_IsString(it) && n < KILN_TARGET_MAX_BENCH)
			specs[n++] = it->valuestring;
	if (!bs && s->t->nbench_sizes > 1) {
		kiln_err e = kiln_target_bench_spec(first, sizeof first, s->t, 0);
		if (e)
			return e;
		specs[n++] = first;
		fprintf(s->log, "kiln run: warning: run %lld predates per-size timing; it resumes ranking on the first bench "
				"size only (%s); start a new run to rank on all %zu\n", (long long)s->run_id, first,
			s->t->nbench_sizes);
	}
	return n ? kiln_target_set_bench_sizes(s->t, specs, n) : KILN_OK;
}

static const char *stored_target_dir(const kiln_run_info *ri, cJSON *config)
{
	const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "target_dir"));
	return d && kiln_path_exists(d) ? d : ri->target;
}

/* What earlier sessions of a resumed run spent, from the candidates and the spent JSON. */
static kiln_err restore_progress(kiln_search *s, const kiln_run_info *ri)
{
	kiln_candidate_info *c = NULL;
	size_t n = 0;
	kiln_err e = kiln_db_candidates_list(s->db, &c, &n, s->run_id);
	if (e)
		return e;
	int64_t *its = kiln_calloc(n ? n : 1, sizeof *its);
	if (!its) {
		kiln_candidate_infos_free(c, n);
		return KILN_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		its[i] = c[i].iteration;
		if (c[i].iteration + 1 > s->iteration)
			s->iteration = c[i].iteration + 1;
		if (c[i].has_timing && c[i].passed)
			s->passed++;
		else
			s->failed++;
		if (c[i].id == ri->seed_candidate && c[i].has_timing)
			s->seed_us = c[i].time_us;
		if (c[i].id == ri->best_candidate && c[i].has_timing) {
			s->best_us = c[i].time_us;
			s->modeled = c[i].modeled;
		}
	}
	s->seed_id = ri->seed_candidate;
	s->best_id = ri->best_candidate;
	s->last_iteration = s->iteration - 1;
	/* a parallel session killed with work in flight left holes: issued again first */
	e = kiln_search_find_holes(s, its, n);
	free(its);
	kiln_candidate_infos_free(c, n);
	if (e)
		return e;
	cJSON *sp = cJSON_Parse(ri->spent_json ? ri->spent_json : "{}");
	const cJSON *v;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(sp, "seconds")))
		s->elapsed_before = v->valuedouble;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(sp, "cost_usd")))
		s->cost_usd = v->valuedouble;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(sp, "unpriced_calls")))
		s->unpriced_calls = (int64_t)v->valuedouble;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(sp, "tokens")))
		s->tokens = (int64_t)v->valuedouble;
	cJSON_Delete(sp);
	return 0;
}

static kiln_err restore_tree(kiln_search *s)
{
	char *tree = NULL;
	int64_t it = 0;
	kiln_err e = kiln_db_wm_revision_latest(s->db, &tree, &it, s->run_id);
	if (e == KILN_ENOTFOUND)
		return kiln_wm_new(&s->wm, s->t->name, s->t->summary, NULL);
	if (e)
		return e;
	e = kiln_wm_from_json(&s->wm, tree, strlen(tree), NULL);
	free(tree);
	if (e)
		return kiln_error_wrap(e, "run %lld: the stored world model cannot be read", (long long)s->run_id);
	return 0;
}

static kiln_err find_resume_run(kiln_search *s, kiln_run_info **ri)
{
	int64_t id = s->o->resume_run;
	if (id < 0) {
		kiln_run_info *all = NULL;
		size_t n = 0;
		kiln_err e = kiln_db_runs_list(s->db, &all, &n, NULL);
		if (e)
			return e;
		id = n ? all[0].id : 0;
		kiln_run_infos_free(all, n);
		if (!id)
			return kiln_error_set(KILN_ENOTFOUND, "nothing to resume: %s has no runs", s->o->workdir);
	}
	kiln_err e = kiln_db_run_get(s->db, ri, id);
	if (e == KILN_ENOTFOUND)
		return kiln_error_set(e, "no run %lld in %s (kiln runs lists them)", (long long)id, s->o->workdir);
	return e;
}

/* ---- the LLM ---- */

static bool llm_wanted(const kiln_run_options *o)
{
	if (o->policy && strcmp(o->policy, "llm") == 0)
		return true;
	if (o->policy && strcmp(o->policy, "tune") == 0)
		return false;
	char why[256];
	return kiln_llm_configured(o->llm, why, sizeof why);
}

static kiln_err open_llm(kiln_search *s)
{
	kiln_llm_config cfg;
	memset(&cfg, 0, sizeof cfg);
	cfg.spec = s->o->llm ? s->o->llm : kiln_llm_default_spec();
	cfg.base_url = s->o->base_url;
	cfg.stream = s->o->stream;
	cfg.timeout_s = s->o->llm_timeout_s;
	if (!cfg.spec)
		return kiln_error_set(KILN_EINVAL, "policy llm needs a model: --llm provider:model, KILN_LLM, or an OPENAI_API_KEY / ANTHROPIC_API_KEY");
	cfg.stop = &kiln_search_stop;
	return kiln_llm_new(&s->llm, &cfg);
}

/* ---- start, resume, finish ---- */

/* A run ranks all its candidates on one definition of time: resuming with another one
 * would compare times that mean different things. Runs from before the choice ranked on
 * launches (kernels + gaps). */
static kiln_err same_rank_time(int64_t id, const char *asked, const cJSON *config)
{
	const char *stored = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(config, "rank_time"));
	kiln_rank_time a, b;
	if (!asked || kiln_rank_time_parse(&a, asked) || kiln_rank_time_parse(&b, stored))
		return 0;
	if (a != b)
		return kiln_error_set(KILN_EINVAL, "run %lld ranks on %s; --rank-time %s would mix two definitions of "
				      "time: start a new run instead", (long long)id, kiln_rank_time_name(b), asked);
	return 0;
}

static kiln_err start_run(kiln_search *s, kiln_run_options *o, cJSON **keep)
{
	kiln_err e;
	if (o->resume_run) {
		kiln_run_info *ri = NULL;
		if ((e = find_resume_run(s, &ri)))
			return e;
		s->run_id = ri->id;
		s->resumed = true;
		s->seed = stored_seed(ri);
		const char *asked = o->rank_time;
		restore_options(o, ri, keep);
		if ((e = same_rank_time(ri->id, asked, *keep)))
			return e;
		o->policy = strcmp(ri->policy, "llm") == 0 ? "llm" : "tune";
		if (!o->llm && ri->llm_model)
			o->llm = kiln_strdup(ri->llm_model); /* freed with the search */
		e = load_target(s, stored_target_dir(ri, *keep), NULL);
		if (!e)
			e = restore_sizes(s, *keep);
		if (!e)
			e = resolve_device(s, ri->device);
		if (!e && strcmp(s->arch, ri->arch) != 0)
			e = kiln_error_set(KILN_EINVAL, "run %lld was made for %s but this device is %s: start a new run instead",
					   (long long)ri->id, ri->arch, s->arch);
		if (!e)
			e = restore_progress(s, ri);
		kiln_run_infos_free(ri, 1);
		if (!e)
			e = kiln_db_run_resume(s->db, s->run_id, (int64_t)getpid());
		if (!e)
			e = restore_tree(s);
		if (!e)
			e = kiln_search_reconcile_archive(s);
		if (!e)
			fprintf(s->log, "kiln run: resuming run %lld of %s at iteration %lld (%zu in flight when it stopped: issued again first)\n",
				(long long)s->run_id, s->t->name, (long long)s->iteration, s->nholes);
		return e;
	}
	if (!o->target)
		return kiln_error_set(KILN_EINVAL, "kiln run needs a TARGET (or --resume)");
	s->seed = o->seed ? o->seed : kiln_seed_fresh();
	o->policy = llm_wanted(o) ? "llm" : "tune";
	if ((e = load_target(s, o->target, o->targets_dir)) ||
	    (e = kiln_target_set_bench_sizes(s->t, o->bench_sizes, o->nbench_sizes)) || (e = resolve_device(s, o->device)))
		return e;
	if ((e = kiln_wm_new(&s->wm, s->t->name, s->t->summary, NULL)))
		return e;
	char *budgets = budgets_json(o), *config = config_json(s);
	kiln_run_rec rr = {s->t->name, o->policy, strcmp(o->policy, "llm") == 0 ? (o->llm ? o->llm : kiln_llm_default_spec()) : NULL,
			   s->device, o->gpu, s->arch, budgets, config, (int64_t)getpid()};
	e = budgets && config ? kiln_db_run_begin(s->db, &s->run_id, &rr) : KILN_ENOMEM;
	free(budgets);
	free(config);
	if (!e)
		e = kiln_search_wm_save(s, NULL, NULL, 0);
	if (!e)
		fprintf(s->log, "kiln run: run %lld: %s on %s (%s), policy %s, workdir %s\n", (long long)s->run_id,
			s->t->name, s->device, s->arch, o->policy, o->workdir);
	return e;
}

static void summarize(kiln_run_summary *out, const kiln_search *s, const char *status)
{
	memset(out, 0, sizeof *out);
	out->run_id = s->run_id;
	snprintf(out->policy, sizeof out->policy, "%s", s->llm ? "llm" : "tune");
	snprintf(out->status, sizeof out->status, "%s", status);
	snprintf(out->stop_reason, sizeof out->stop_reason, "%s", s->stop_reason);
	out->iterations = s->iteration - (int64_t)s->nholes;
	out->passed = s->passed;
	out->failed = s->failed;
	out->seed_candidate = s->seed_id;
	out->best_candidate = s->best_id;
	out->seed_us = s->seed_us;
	out->best_us = s->best_us;
	out->speedup = s->seed_us > 0 && s->best_us > 0 ? s->seed_us / s->best_us : 0;
	out->modeled = s->modeled;
	out->cost_usd = s->cost_usd;
	out->unpriced_calls = s->unpriced_calls;
	out->tokens = s->tokens;
	snprintf(out->bench_check, sizeof out->bench_check, "%s", s->bench_check);
	out->bench_failed = s->bench_failed;
	if (s->git && s->t && kiln_git_branch_tip(s->git, out->best_commit, s->t->name, s->arch) != 0)
		out->best_commit[0] = 0;
}

static void search_free(kiln_search *s, const char *llm_owned)
{
	kiln_llm_free(s->llm);
	kiln_wm_free(s->wm);
	kiln_git_close(s->git);
	kiln_db_close(s->db);
	kiln_lock_release(s->lock);
	kiln_target_free(s->t);
	free(s->seed_source);
	free(s->seed_launch);
	free(s->cache_dir);
	free(s->holes);
	free(s->policy_state);
	free((char *)llm_owned);
}

kiln_err kiln_run(kiln_run_summary *out, const kiln_run_options *opts)
{
	kiln_run_options o = *opts;
	kiln_search s;
	memset(&s, 0, sizeof s);
	memset(out, 0, sizeof *out);
	s.o = &o;
	s.log = o.log ? o.log : stderr;
	s.tty = isatty(fileno(s.log));
	s.started = kiln_now_s();
	if (!o.workdir)
		return kiln_error_set(KILN_EINVAL, "kiln run: no work directory");
	kiln_rank_time rank;
	if (kiln_rank_time_parse(&rank, o.rank_time))
		return KILN_EINVAL;
	kiln_search_stop = 0;
	struct sigaction old_int, old_term;
	install_signals(&old_int, &old_term);
	/* past a file-size limit a write must fail (EFBIG: a clear "disk full" error and a
	 * clean stop), not kill the run */
	void (*old_xfsz)(int) = signal(SIGXFSZ, SIG_IGN);
	kiln_child_set_stop(&kiln_search_stop, o.grace_s > 0 ? o.grace_s : 30);
	cJSON *keep = NULL;
	const char *llm_before = o.llm;
	kiln_err e = open_workdir(&s);
	if (!e)
		e = start_run(&s, &o, &keep);
	const char *llm_owned = o.llm != llm_before ? o.llm : NULL;
	if (!e && no_budget(&o) && strcmp(o.policy, "llm") == 0) {
		o.iterations = 40;
		fprintf(s.log, "kiln run: no budget given; stopping after %lld iterations (--iterations, --hours, --max-cost, --max-tokens)\n",
			(long long)o.iterations);
	}
	if (!e && strcmp(o.policy, "llm") == 0 && !(e = open_llm(&s)))
		e = kiln_policy_llm(&s);
	else if (!e && strcmp(o.policy, "tune") == 0)
		e = kiln_policy_tune(&s);
	const char *status = e ? "failed" : kiln_search_stop ? "interrupted" : "finished";
	if (!e && !kiln_search_stop)
		kiln_search_bench_check(&s);
	char why[640] = "";
	if (e) /* what stopped the run is what the user must read, whatever fails after it */
		snprintf(why, sizeof why, "%s", kiln_error_last());
	if (s.run_id && s.db) {
		if (e) {
			kiln_db_event_add(s.db, s.run_id, "error", "run-failed", why, NULL);
			snprintf(s.stop_reason, sizeof s.stop_reason, "%.150s", why);
		}
		kiln_err e2 = kiln_search_checkpoint(&s, NULL); /* also writes what was spent */
		if (!e2)
			e2 = kiln_db_run_end(s.db, s.run_id, status, NULL);
		if (!e && e2)
			e = e2;
	}
	if (s.tty)
		fputc('\n', s.log);
	summarize(out, &s, status);
	kiln_child_set_stop(NULL, 0);
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	signal(SIGXFSZ, old_xfsz);
	search_free(&s, llm_owned);
	cJSON_Delete(keep);
	if (why[0]) /* after the summary and clean-up, which may set messages of their own */
		kiln_error_set(e, "%s", why);
	return e;
}
