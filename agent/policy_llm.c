/* The `llm` policy: K-Search (arXiv 2602.19128) over kiln's world model.
 *   init    one call analyses the target and proposes >= 3 families (an edit script)
 *   select  kiln picks the frontier action (score + exploration - stale penalty)
 *   attempt the first attempt implements the action on its parent's best kernel; a failed
 *           one gets a debug prompt (compile log / verdict), a passing one an improve
 *           prompt (timing, counters)
 *   close   after `stagnation` attempts without improvement (or `max_attempts`) the
 *           action closes: solved with its best (the LLM reflects, re-scores and adds
 *           children; a solved node always gets an open child) or too hard
 * A reply that cannot be parsed is sent back once with the parse error, then counted as
 * a failed attempt. Every call is an llm_calls row; every tree change a revision. */
#include "agent/agent_int.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/llm/llm.h"

#define PARSE_TRIES 2 /* the reply, then one repair */
#define CALL_TRIES 2  /* a call that failed after the client's own retries is tried again once */
#define MAX_DRY 8     /* attempts in a row without a usable reply stop the run */

/* One slot: an action carried from selection to closing. `--parallel N` runs N of them
 * (par.c); the defines and knob text are slot 0's, shared. */
typedef struct llm_state {
	kiln_search *s;
	kiln_llm *llm;      /* this slot's client (s->llm for slot 0): one HTTP call at a time */
	int slot;
	struct llm_state *all; /* every slot (the actions in flight, the checkpoint) */
	size_t nall;
	char **defines;     /* the seed's knob values, "KNOB=V" */
	size_t nk;
	char *rejected;     /* the last edit script's rejected ops, for the next prompt */
	char *knobs;        /* the defines as one line, for the prompt's prefix */
	char *state;        /* the last search-state text */
	/* the candidate sent to evaluation and not yet recorded (the checkpoint keeps it, so
	 * --resume evaluates it again instead of asking the LLM again) */
	bool flying;
	int64_t fly_iteration, fly_node, fly_parent, fly_call;
	char *fly_source, *fly_launch, *fly_changed;
	/* the action in progress */
	int64_t node;       /* -1: none */
	int attempts, since_improve;
	int dry;            /* consecutive attempts with no usable reply */
	int64_t last_id;    /* last recorded candidate of the action; 0 = none */
	bool last_passed;
	char *last_source, *last_launch, *evidence;
} llm_state;

/* ---- one LLM call, recorded and accounted ---- */

static kiln_err ask(llm_state *st, const kiln_prompt_input *in, const char *purpose, char **text,
		    int64_t *call_id)
{
	kiln_search *s = st->s;
	kiln_prompt p;
	*text = NULL;
	*call_id = 0;
	kiln_err e = kiln_prompt_build(&p, in);
	if (e)
		return e;
	for (int tries = 0; !e && tries < CALL_TRIES && !*text; tries++) {
		if (kiln_search_should_stop(s))
			break;
		double held_usd;
		int64_t held_tok;
		if (!kiln_search_call_begin(s, &held_usd, &held_tok)) {
			snprintf(s->stop_reason, sizeof s->stop_reason, "budget reached: what is spent and the LLM calls in flight leave no room for another call");
			break;
		}
		kiln_llm_request rq = {NULL, p.prefix, p.task, purpose, 0};
		kiln_llm_reply r;
		s->asking++;
		kiln_search_unlock(s); /* other slots run while this one waits for the model */
		e = kiln_llm_complete(st->llm, &rq, &r);
		kiln_search_lock(s);
		s->asking--;
		kiln_search_call_end(s, held_usd, held_tok);
		if (e)
			break;
		e = kiln_llm_record(s->db, s->run_id, st->llm, &rq, &r, call_id);
		s->tokens += (r.prompt_tokens > 0 ? r.prompt_tokens : 0) + (r.completion_tokens > 0 ? r.completion_tokens : 0);
		if (isfinite(r.cost_usd))
			s->cost_usd += r.cost_usd;
		else if (!strcmp(r.status, "ok"))
			s->unpriced_calls++;
		if (!e && r.fatal)
			e = kiln_error_set(KILN_ELLM, "the LLM refused the call (%s): %s", r.status,
					   r.error ? r.error : "no detail");
		else if (!e && strcmp(r.status, "ok") == 0)
			*text = kiln_strdup(r.text ? r.text : "");
		else if (!e)
			kiln_db_event_add(s->db, s->run_id, "warn", "llm-call-failed", r.error ? r.error : r.status, NULL);
		kiln_llm_reply_free(&r);
	}
	kiln_prompt_free(&p);
	return e;
}

/* A prompt section's text; one that hit its cap ends with a mark saying so (its appends
 * stopped at the first that did not fit: a kiln_buf's error is sticky). NULL only when
 * out of memory. */
static char *section_text(kiln_buf *b)
{
	bool cut = kiln_buf_error(b) == KILN_EOVERFLOW;
	size_t max = b->max;
	char *out = kiln_buf_detach(b);
	if (out && cut) {
		char *marked = kiln_asprintf("%s\n[... cut at the section's %zu-byte cap]\n", out, max);
		free(out);
		out = marked;
		kiln_error_clear(); /* the cap is this section's, not the call's failure */
	}
	return out;
}

/* The seed's knob values as the prompt's prefix gives them: "BLOCK=256 ITEMS=4". */
static char *knob_text(const llm_state *st)
{
	kiln_buf b;
	kiln_buf_init(&b, 4096);
	for (size_t i = 0; i < st->nk; i++)
		kiln_buf_printf(&b, "%s%s", i ? " " : "", st->defines[i]);
	char *out = section_text(&b);
	return out ? out : kiln_strdup("");
}

/* Where the search stands and the rules that close an action or count a new best. */
static char *search_state(const llm_state *st)
{
	const kiln_search *s = st->s;
	const kiln_run_options *o = s->o;
	kiln_wm_options wo;
	kiln_wm_get_options(&wo, s->wm);
	int max = o->max_attempts > 0 ? o->max_attempts : 6;
	int stag = o->stagnation > 0 ? o->stagnation : 3;
	char budget[160] = "";
	size_t k = 0;
	if (o->iterations > 0)
		k += (size_t)snprintf(budget + k, sizeof budget - k, ", %lld of the %lld-iteration budget left",
				      (long long)(o->iterations - s->iteration), (long long)o->iterations);
	if (o->hours > 0)
		k += (size_t)snprintf(budget + k, sizeof budget - k, ", %.0f min of wall-clock budget left",
				      (o->hours * 3600 - s->elapsed_before - (kiln_now_s() - s->started)) / 60);
	if (o->max_cost > 0 && k < sizeof budget)
		snprintf(budget + k, sizeof budget - k, ", $%.2f of $%.2f spent", s->cost_usd, o->max_cost);
	char action[200] = "";
	if (st->node > 0)
		snprintf(action, sizeof action, "This action (#%lld): %d attempt(s) so far, %d since its best last improved. ",
			 (long long)st->node, st->attempts, st->since_improve);
	return kiln_asprintf("Iteration %lld (candidates evaluated so far, the seed included)%s. %s"
			     "An action closes after %d attempts in a row without a new best, or after %d attempts. "
			     "A new best must be faster by more than %.0f%% (modeled times; measured: more than the timing "
			     "spread): within that band it is a tie and does not count. An edit script may add at most %d "
			     "new nodes (%d in the initial one); more are rejected.",
			     (long long)s->iteration, budget, action, stag, max, wo.tie_band * 100,
			     wo.max_new_per_script, wo.init_max_new);
}

static void base_input(llm_state *st, kiln_prompt_input *in, kiln_prompt_kind kind, char **tree)
{
	kiln_search *s = st->s;
	memset(in, 0, sizeof *in);
	in->kind = kind;
	in->target = s->t;
	in->seed_source = s->seed_source;
	in->seed_launch = s->seed_launch;
	kiln_wm_render_options ro = KILN_WM_RENDER_OPTIONS_INIT;
	ro.highlight = st->node;
	*tree = NULL;
	if (kiln_wm_render(tree, s->wm, &ro) == 0)
		in->world_model = *tree;
	in->rejected_ops = st->rejected;
	in->node_id = st->node;
	in->seed_knobs = st->knobs;
	free(st->state);
	in->search_state = st->state = search_state(st);
}

/* A kernel reply made whole: edits (```edit / ```diff) applied to base, the kernel the
 * task quoted, and the launch plan kept from base_launch when the reply sends none. */
static kiln_err make_whole(kiln_reply_parts *parts, const char *base, const char *base_launch)
{
	if (parts->edit || parts->diff) {
		const char *ed = parts->edit ? parts->edit : parts->diff;
		char *src = NULL;
		kiln_err e = base ? kiln_edit_apply(&src, base, ed, strlen(ed), parts->edit ? KILN_EDIT_BLOCKS : KILN_EDIT_DIFF)
				  : kiln_error_set(KILN_EINVAL, "this task quotes no kernel to edit: send the whole kernel");
		if (!e && (e = kiln_reply_check_kernel(src, "the edited kernel")))
			free(src);
		if (e)
			return e;
		parts->kernel = src;
	}
	if (parts->kernel && !parts->launch_json) {
		if (!base_launch)
			return kiln_error_set(KILN_EINVAL, "reply has no ```json block with the launch plan (\"launches\")");
		if (!(parts->launch_json = kiln_strdup(base_launch)))
			return KILN_ENOMEM;
	}
	return KILN_OK;
}

/* Asks and parses; a reply that does not parse (or whose edits do not apply to base) is
 * sent back once with the reason. On success *parts holds the reply, its kernel whole;
 * *got false when no usable reply came. */
static kiln_err ask_parsed(llm_state *st, kiln_prompt_input *in, const char *purpose, unsigned want,
			   const char *base, const char *base_launch, kiln_reply_parts *parts, int64_t *call_id,
			   bool *got)
{
	*got = false;
	memset(parts, 0, sizeof *parts);
	char *why = NULL;
	kiln_err e = 0;
	for (int t = 0; !e && t < PARSE_TRIES && !*got; t++) {
		char *text = NULL;
		if (t > 0)
			in->retry_reason = why; /* the same task again, with the reason */
		if ((e = ask(st, in, t ? "repair" : purpose, &text, call_id)) || !text)
			break;
		kiln_err pe = kiln_reply_parse(parts, text, strlen(text), want);
		if (!pe && (want & KILN_REPLY_KERNEL) && (pe = make_whole(parts, base, base_launch)) != 0)
			kiln_reply_parts_free(parts);
		if (pe == KILN_ENOMEM) {
			e = pe;
		} else if (!pe) {
			*got = true;
		} else {
			free(why);
			why = kiln_asprintf("%s", kiln_error_last());
			kiln_db_event_add(st->s->db, st->s->run_id, "warn", "reply-unparsable", why, NULL);
		}
		free(text);
	}
	free(why);
	return e;
}

/* ---- the world model's edit scripts ---- */

static kiln_err take_edits(llm_state *st, kiln_wm_edit_result *r, const char *edits, int64_t call_id)
{
	char *rej = NULL;
	free(st->rejected);
	st->rejected = NULL;
	kiln_err e = kiln_wm_rejections_render(&st->rejected, r, 0);
	if (!e)
		e = kiln_wm_rejections_to_json(&rej, r);
	cJSON *ops = edits ? cJSON_Parse(edits) : NULL;
	char *ops_text = ops ? cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(ops, "ops")) : NULL;
	if (!e)
		e = kiln_search_wm_save(st->s, ops_text, rej, call_id);
	free(ops_text);
	cJSON_Delete(ops);
	free(rej);
	return e;
}

/* The seed's evaluation is on the root of the tree kiln started with; a tree built from
 * the first reply gets it again, so the root keeps its attempt and best and every later
 * node's speedup is over the seed's time. */
static kiln_err carry_seed(kiln_wm *to, const kiln_wm *from)
{
	kiln_wm_node r;
	kiln_err e = kiln_wm_node_get(&r, from, KILN_WM_ROOT);
	if (e || r.best_candidate <= 0)
		return e;
	kiln_wm_attempt a = {true, r.best_candidate, r.best_us, r.best_spread_us, r.best_spread_us <= 0};
	return kiln_wm_record_attempt(to, NULL, KILN_WM_ROOT, &a);
}

static kiln_err init_tree(llm_state *st)
{
	kiln_search *s = st->s;
	if (kiln_wm_count(s->wm) > 1)
		return 0; /* resumed with a tree */
	char *why = NULL;
	kiln_err e = 0;
	for (int t = 0; !e && t < PARSE_TRIES + 1; t++) {
		kiln_prompt_input in;
		char *tree;
		base_input(st, &in, KILN_PROMPT_INIT, &tree);
		in.retry_reason = why;
		kiln_reply_parts parts;
		int64_t call = 0;
		bool got = false;
		e = ask_parsed(st, &in, "init", KILN_REPLY_EDITS, NULL, NULL, &parts, &call, &got);
		free(tree);
		if (e || !got) {
			kiln_reply_parts_free(&parts);
			if (!e && kiln_search_should_stop(s))
				return 0;
			continue;
		}
		kiln_wm *wm = NULL;
		kiln_wm_edit_result *r = NULL;
		e = kiln_wm_init_from_script(&wm, &r, s->t->name, s->t->summary, parts.edits_json,
					     strlen(parts.edits_json), NULL);
		if (e == KILN_EINVAL) { /* too few families: tell the LLM */
			free(why);
			why = kiln_asprintf("%s", kiln_error_last());
			e = 0;
		} else if (!e && (e = carry_seed(wm, s->wm))) {
			kiln_wm_free(wm);
		} else if (!e) {
			kiln_wm_free(s->wm);
			s->wm = wm;
			e = take_edits(st, r, parts.edits_json, call);
			kiln_wm_edit_result_free(r);
			kiln_reply_parts_free(&parts);
			free(why);
			return e;
		}
		kiln_wm_edit_result_free(r);
		kiln_reply_parts_free(&parts);
	}
	free(why);
	return e ? e : kiln_error_set(KILN_ELLM, "the LLM did not produce a usable initial world model in %d tries",
				      PARSE_TRIES + 1);
}

/* ---- an action ---- */

static char *node_text(const kiln_search *s, int64_t id)
{
	kiln_wm_node n;
	if (kiln_wm_node_get(&n, s->wm, id))
		return kiln_strdup("");
	return kiln_asprintf("#%lld %s: %s\nRationale: %s\nNotes: %s", (long long)n.id, n.title,
			     n.description, n.rationale, n.notes);
}

/* The best candidate of the node's parent (the seed for a family): what an action refines. */
static int64_t parent_best(const kiln_search *s, int64_t id)
{
	kiln_wm_node n, p;
	if (kiln_wm_node_get(&n, s->wm, id) || n.parent <= 0 || kiln_wm_node_get(&p, s->wm, n.parent))
		return s->seed_id;
	return p.best_candidate ? p.best_candidate : s->seed_id;
}

static void reset_action(llm_state *st, int64_t node)
{
	st->node = node;
	st->attempts = st->since_improve = 0;
	st->last_id = 0;
	st->last_passed = false;
	free(st->last_source);
	free(st->last_launch);
	free(st->evidence);
	st->last_source = st->last_launch = st->evidence = NULL;
}

/* One size's per-launch breakdown (the cost model's terms), one line per launch. */
static void launch_lines(kiln_buf *b, const cJSON *breakdown)
{
	static const char *const k[9] = {"time_us", "occupancy", "waves", "dram_us", "l2_us", "issue_us",
					 "latency_us", "atomic_us", "overhead_us"};
	const cJSON *l;
	int li = 0;
	cJSON_ArrayForEach(l, breakdown) {
		double v[9];
		for (size_t i = 0; i < 9; i++)
			v[i] = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(l, k[i]));
		const char *bound = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(l, "bound"));
		kiln_buf_printf(b, "  launch %d: %s-bound, %.3f us; occupancy %.2f, %.2f waves; dram %.3g, l2 %.3g, issue %.3g, "
				   "latency %.3g, atomics %.3g, launch gap %.3g us\n", li++, bound ? bound : "?", v[0], v[1],
				v[2], v[3], v[4], v[5], v[6], v[7], v[8]);
	}
}

/* Per bench size: the time, the roofline, the bound term and the per-launch breakdown;
 * then how the time was obtained and the fit note ("" if no timing detail). */
static char *breakdown_lines(const kiln_eval *ev)
{
	cJSON *t = ev->timing_json ? cJSON_Parse(ev->timing_json) : NULL;
	kiln_buf b;
	kiln_buf_init(&b, 16384);
	const cJSON *sz, *per = cJSON_GetObjectItemCaseSensitive(t, "per_size");
	bool launches = false;
	cJSON_ArrayForEach(sz, per) {
		const cJSON *env = cJSON_GetObjectItemCaseSensitive(sz, "sizes"), *v;
		const char *bound = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(sz, "bound"));
		kiln_buf_puts(&b, "size");
		cJSON_ArrayForEach(v, env)
			kiln_buf_printf(&b, " %s=%.0f", v->string, v->valuedouble);
		kiln_buf_printf(&b, " (weight %g): %.3f us, roofline %.1f%%%s%s\n",
				cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(sz, "weight")),
				cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(sz, "time_us")),
				100 * cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(sz, "roofline")),
				bound && *bound ? ", bound by " : "", bound && *bound ? bound : "");
		const cJSON *bd = cJSON_GetObjectItemCaseSensitive(sz, "breakdown");
		launches |= cJSON_GetArraySize(bd) > 0;
		launch_lines(&b, bd);
	}
	if (!cJSON_GetArraySize(per)) { /* a timing from before per-size records */
		launch_lines(&b, cJSON_GetObjectItemCaseSensitive(t, "breakdown"));
		launches = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(t, "breakdown")) > 0;
	}
	const char *rank = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "rank_time"));
	bool kernels = rank && strcmp(rank, "kernels") == 0;
	if (launches && kernels)
		kiln_buf_printf(&b, "(this run ranks on the kernels' durations alone: launch gaps are shown but not counted; "
				    "measured times are defined the same way)\n");
	else if (launches)
		kiln_buf_printf(&b, "(a plan's time = its kernels' durations + the gaps between dependent launches; "
				    "a plan's first launch has no gap; \"graph\": true in the launch plan makes the gaps "
				    "those of a CUDA graph; measured times are defined the same way)\n");
	const char *how = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "how"));
	if (how && *how)
		kiln_buf_printf(&b, "how the time was obtained: %s\n", how);
	const char *note = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "fit_note"));
	if (note && *note)
		kiln_buf_printf(&b, "%s\n", note);
	cJSON_Delete(t);
	char *out = section_text(&b);
	return out ? out : kiln_strdup("");
}

/* The timing's definition in words ("sum of kernel times + 1 launch gap"), or "". */
static char *time_def_of(const kiln_eval *ev)
{
	cJSON *t = ev->timing_json ? cJSON_Parse(ev->timing_json) : NULL;
	const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "time_def"));
	char *out = kiln_asprintf("%s%s", d && *d ? ", " : "", d && *d ? d : "");
	cJSON_Delete(t);
	return out;
}

static char *evidence_of(const kiln_eval *ev)
{
	if (ev->outcome == KILN_OUT_PASSED) {
		char *bd = breakdown_lines(ev), *def = time_def_of(ev);
		char *text = kiln_asprintf("time %.3f us (%s%s%s), roofline %.1f%%, %.0f GB/s; registers %d, spills %lld/%lld bytes, static shared %lld bytes\n%scounters (at the bench size with the most traffic): %s%s%s",
				     ev->timing.time_us, ev->timing.modeled ? "modeled on the emulator's cost model" : "measured",
				     def ? def : "", ev->nsizes > 1 ? "; the weighted geometric mean over the bench sizes below" : "",
				     ev->timing.roofline * 100, ev->timing.bandwidth_gbs, ev->compile.registers, (long long)ev->compile.spill_store_bytes,
				     (long long)ev->compile.spill_load_bytes, (long long)ev->compile.shared_bytes, bd ? bd : "",
				     ev->timing.counters_json ? ev->timing.counters_json : "{}", ev->message && *ev->message ? "\n" : "",
				     ev->message ? ev->message : "");
		free(bd);
		free(def);
		return text;
	}
	return kiln_asprintf("check '%s' failed: %s%s%s", ev->failed_check ? ev->failed_check : "?",
			     ev->message ? ev->message : "",
			     ev->compile.log && *ev->compile.log ? "\ncompile log:\n" : "",
			     ev->compile.log ? ev->compile.log : "");
}

static kiln_err note_failed_reply(llm_state *st)
{
	kiln_wm_attempt a = {false, 0, 0, 0, true};
	st->attempts++;
	st->since_improve++;
	kiln_err e = kiln_wm_record_attempt(st->s->wm, NULL, st->node, &a);
	return e ? e : kiln_search_wm_save(st->s, NULL, NULL, 0);
}

/* The time of a recorded attempt for the attempts table. The one place that formats it,
 * so per-size times slot in here. */
/* "21.72 us modeled (B=256,T=4096: 14.76; B=512,T=8192: 31.96)": the objective, then
 * each bench size's time when there are several. */
static void attempt_time(kiln_buf *b, const kiln_candidate_info *c)
{
	if (!c->has_timing || !(c->time_us > 0)) {
		kiln_buf_puts(b, "-");
		return;
	}
	kiln_buf_printf(b, "%.4g us %s", c->time_us, c->modeled ? "modeled" : "measured");
	cJSON *sizes = c->sizes_json ? cJSON_Parse(c->sizes_json) : NULL;
	const cJSON *sz;
	int k = 0;
	if (cJSON_GetArraySize(sizes) > 1)
		cJSON_ArrayForEach(sz, sizes) {
			const cJSON *v;
			kiln_buf_puts(b, k++ ? "; " : " (");
			int i = 0;
			cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(sz, "sizes"))
				kiln_buf_printf(b, "%s%s=%.0f", i++ ? "," : "", v->string, v->valuedouble);
			kiln_buf_printf(b, ": %.4g", cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(sz, "time_us")));
		}
	if (k)
		kiln_buf_puts(b, ")");
	cJSON_Delete(sizes);
}

static void attempt_verdict(char *out, size_t n, const kiln_candidate_info *c)
{
	if (!c->outcome || !strcmp(c->outcome, "passed"))
		snprintf(out, n, "passed");
	else if (!strcmp(c->outcome, "compile_error"))
		snprintf(out, n, "compile error");
	else
		snprintf(out, n, "FAIL %s", c->failed_check ? c->failed_check : c->outcome);
}

/* This action's recorded attempts as a table: iteration | verdict | time | what changed. */
static char *attempts_table(const llm_state *st)
{
	kiln_search *s = st->s;
	kiln_candidate_info *cs = NULL;
	size_t n = 0, rows = 0;
	if (st->node <= 0 || kiln_db_candidates_list(s->db, &cs, &n, s->run_id))
		return NULL;
	kiln_buf b;
	kiln_buf_init(&b, 64u << 10);
	kiln_buf_puts(&b, "iteration | verdict | time | what changed\n");
	for (size_t i = 0; i < n; i++) {
		const kiln_candidate_info *c = &cs[i];
		if (!c->node_id || strtoll(c->node_id, NULL, 10) != st->node)
			continue;
		char verdict[80];
		attempt_verdict(verdict, sizeof verdict, c);
		kiln_buf_printf(&b, "%lld | %s | ", (long long)c->iteration, verdict);
		attempt_time(&b, c);
		kiln_buf_printf(&b, " | %s\n", c->changed ? c->changed : "-");
		rows++;
	}
	if (st->attempts > (int)rows)
		kiln_buf_printf(&b, "(and %d repl%s that could not be used)\n", st->attempts - (int)rows,
				st->attempts - (int)rows == 1 ? "y" : "ies");
	kiln_candidate_infos_free(cs, n);
	if (rows == 0 && st->attempts == 0) {
		kiln_buf_free(&b);
		return NULL;
	}
	return section_text(&b);
}

static kiln_err checkpoint(llm_state *st);

static void fly_clear(llm_state *st)
{
	st->flying = false;
	free(st->fly_source);
	free(st->fly_launch);
	free(st->fly_changed);
	st->fly_source = st->fly_launch = st->fly_changed = NULL;
}

/* The candidate leaves for evaluation: its iteration is fixed now, and the checkpoint
 * keeps it until its result is recorded. */
static kiln_err fly(llm_state *st, kiln_cand *c, bool reserved)
{
	c->iteration = kiln_search_dispatch(st->s, reserved);
	c->dispatched = true;
	if (!st->flying || st->fly_source != c->source) {
		char *src = kiln_strdup(c->source), *launch = kiln_strdup(c->launch_json);
		char *changed = c->changed ? kiln_strdup(c->changed) : NULL;
		fly_clear(st);
		st->fly_source = src;
		st->fly_launch = launch;
		st->fly_changed = changed;
		if (!src || !launch || (c->changed && !changed))
			return KILN_ENOMEM;
	}
	st->flying = true;
	st->fly_iteration = c->iteration;
	st->fly_node = c->node;
	st->fly_parent = c->parent_id;
	st->fly_call = c->llm_call_id;
	return checkpoint(st);
}

static bool node_open(const kiln_search *s, int64_t id)
{
	kiln_wm_node n;
	return id > 0 && kiln_wm_node_get(&n, s->wm, id) == 0 && n.status == KILN_WM_OPEN;
}

/* Evaluates a candidate of the current action and records what it taught: the attempt on
 * the node (unless another slot's edit script closed or deleted it meanwhile), the next
 * prompt's evidence, the progress line. */
static kiln_err evaluate_attempt(llm_state *st, kiln_cand *c)
{
	kiln_search *s = st->s;
	kiln_eval ev;
	int64_t id = 0;
	bool best = false, improved = false;
	kiln_err e = kiln_search_evaluate(s, c, &ev, &id, &best);
	if (!e && !ev.abandoned) {
		bool passed = ev.outcome == KILN_OUT_PASSED;
		kiln_wm_attempt a = {passed, passed ? id : 0, passed ? ev.timing.time_us : 0,
				     passed && !ev.timing.modeled ? ev.timing.spread * ev.timing.time_us : 0, ev.timing.modeled};
		bool open = node_open(s, st->node);
		if (open)
			e = kiln_wm_record_attempt(s->wm, &improved, st->node, &a);
		if (!e)
			e = kiln_search_wm_save(s, NULL, NULL, 0);
		st->attempts++;
		st->since_improve = improved ? 0 : st->since_improve + 1;
		st->last_id = id;
		st->last_passed = passed;
		free(st->last_source);
		free(st->last_launch);
		free(st->evidence);
		st->last_source = kiln_strdup(c->source);
		st->last_launch = kiln_strdup(c->launch_json);
		st->evidence = evidence_of(&ev);
		char *sum = kiln_eval_summary(&ev);
		char what[640];
		snprintf(what, sizeof what, "#%lld attempt %d: %s%s [%s]", (long long)st->node, st->attempts,
			 sum ? sum : "", best ? " NEW BEST" : "", c->changed ? c->changed : "");
		fly_clear(st); /* recorded (c->changed may be the flight's copy: used above); an abandoned one
				* stays in the checkpoint */
		free(sum);
		kiln_search_progress(s, what);
		if (!open) /* the action left the tree while this attempt was out */
			reset_action(st, -1);
	}
	kiln_eval_free(&ev);
	return e;
}

/* A candidate that was in flight when an earlier session stopped: evaluated again (a new
 * iteration if its own was never recorded), without asking the LLM again. */
static kiln_err reissue(llm_state *st, bool *done)
{
	kiln_search *s = st->s;
	if (!kiln_search_reserve(s)) {
		fly_clear(st);
		*done = true;
		return 0;
	}
	kiln_cand c = {st->fly_source, st->fly_launch, (const char *const *)st->defines, st->nk,
		       node_open(s, st->fly_node) ? st->fly_node : -1, st->fly_parent, st->fly_call, false, st->fly_changed,
		       0, false};
	kiln_err e = fly(st, &c, true);
	if (!e)
		e = evaluate_attempt(st, &c);
	return e;
}

/* One attempt at the current action: prompt, parse, evaluate, record. *done: the
 * iteration budget is held by what is recorded and in flight. */
static kiln_err attempt(llm_state *st, bool *done)
{
	kiln_search *s = st->s;
	if (!kiln_search_reserve(s)) {
		*done = true;
		return 0;
	}
	kiln_prompt_input in;
	char *tree, *action = node_text(s, st->node), *table = attempts_table(st);
	int64_t parent = parent_best(s, st->node);
	kiln_candidate_info *pc = NULL, *bc = NULL;
	base_input(st, &in, KILN_PROMPT_IMPLEMENT, &tree);
	in.action = action;
	in.attempts = table;
	const char *base, *base_launch; /* the kernel the task quotes: edits apply to it */
	if (st->attempts == 0 || !st->last_source) {
		if (parent && kiln_db_candidate_get(s->db, &pc, parent) == 0) {
			in.parent_source = pc->source;
			in.parent_launch = pc->launch_json;
		} else {
			in.parent_source = s->seed_source;
			in.parent_launch = s->seed_launch;
		}
		/* a new family starts from the seed; the run's best (another family) is shown too */
		if ((!parent || parent == s->seed_id) && s->best_id && s->best_id != s->seed_id &&
		    kiln_db_candidate_get(s->db, &bc, s->best_id) == 0) {
			in.best_source = bc->source;
			in.best_launch = bc->launch_json;
			in.best_us = s->best_us;
			in.best_modeled = s->modeled;
		}
		base = in.parent_source;
		base_launch = in.parent_launch;
	} else {
		in.kind = st->last_passed ? KILN_PROMPT_IMPROVE : KILN_PROMPT_DEBUG;
		in.last_source = st->last_source;
		in.last_launch = st->last_launch;
		in.evidence = st->evidence;
		base = st->last_source;
		base_launch = st->last_launch;
	}
	const char *purpose = in.kind == KILN_PROMPT_IMPLEMENT ? "implement" : in.kind == KILN_PROMPT_DEBUG ? "debug" : "improve";
	kiln_reply_parts parts;
	int64_t call = 0;
	bool got = false;
	kiln_err e = ask_parsed(st, &in, purpose, KILN_REPLY_KERNEL | KILN_REPLY_LAUNCH, base, base_launch, &parts,
				&call, &got);
	/* what changed: the model's own line, else kiln's account of the diff */
	char *changed = !got ? NULL : parts.changed ? kiln_strdup(parts.changed)
				: kiln_changed_summary(base, parts.kernel, base_launch, parts.launch_json);
	free(tree);
	free(action);
	free(table);
	kiln_candidate_infos_free(pc, pc ? 1 : 0);
	kiln_candidate_infos_free(bc, bc ? 1 : 0);
	if (e || !got) {
		kiln_search_unreserve(s);
		kiln_reply_parts_free(&parts);
		if (!e && !kiln_search_should_stop(s) && node_open(s, st->node)) {
			kiln_search_progress(s, "the LLM's reply could not be used (counted as a failed attempt)");
			e = note_failed_reply(st);
			if (!e && ++st->dry >= MAX_DRY)
				e = kiln_error_set(KILN_ELLM, "%d LLM calls in a row gave no usable reply (see kiln log / the events); stopping so the budget is not burnt",
						   MAX_DRY);
		}
		return e;
	}
	st->dry = 0;
	kiln_cand c = {parts.kernel, parts.launch_json, (const char *const *)st->defines, st->nk,
		       st->node, parent, call, false, changed, 0, false};
	e = fly(st, &c, true);
	if (!e)
		e = evaluate_attempt(st, &c);
	kiln_reply_parts_free(&parts);
	free(changed);
	return e;
}

/* A solved node must keep the search going below it. */
static kiln_err ensure_open_child(kiln_search *s, int64_t id)
{
	int64_t *kids = NULL;
	size_t n = 0;
	kiln_err e = kiln_wm_children(&kids, &n, s->wm, id);
	bool open = false;
	for (size_t i = 0; !e && i < n; i++) {
		kiln_wm_node k;
		if (kiln_wm_node_get(&k, s->wm, kids[i]) == 0 && k.status == KILN_WM_OPEN)
			open = true;
	}
	free(kids);
	if (e || open)
		return e;
	kiln_wm_node_spec sp = KILN_WM_NODE_SPEC_INIT;
	sp.title = "Refine further";
	sp.description = "Profile the solved kernel's remaining gap to the roofline and remove its largest cost.";
	sp.score = 0.3;
	return kiln_wm_add_node(s->wm, NULL, id, &sp);
}

static kiln_err close_action(llm_state *st)
{
	kiln_search *s = st->s;
	kiln_wm_node n;
	kiln_err e = kiln_wm_node_get(&n, s->wm, st->node);
	if (e)
		return e;
	bool solved = n.best_candidate != 0;
	e = solved ? kiln_wm_solve(s->wm, n.id, 0, 0) : kiln_wm_mark_too_hard(s->wm, n.id);
	if (!e)
		e = kiln_search_wm_save(s, NULL, NULL, 0);
	char *outcome = solved
		? kiln_asprintf("Action #%lld is closed as solved after %lld attempts: best %.3f us, %.2fx over the seed. Last evidence:\n%s",
				(long long)n.id, (long long)n.attempts, n.best_us, n.best_speedup, st->evidence ? st->evidence : "")
		: kiln_asprintf("Action #%lld is marked too hard: %lld attempts never produced a passing kernel. Last failure:\n%s\n"
				"Downscore it, rewrite it into something feasible, or delete it.",
				(long long)n.id, (long long)n.attempts, st->evidence ? st->evidence : "");
	kiln_prompt_input in;
	char *tree, *table = attempts_table(st);
	base_input(st, &in, KILN_PROMPT_REFLECT, &tree);
	in.evidence = outcome;
	in.attempts = table;
	kiln_reply_parts parts;
	int64_t call = 0;
	bool got = false;
	if (!e)
		e = ask_parsed(st, &in, "reflect", KILN_REPLY_EDITS, NULL, NULL, &parts, &call, &got);
	free(tree);
	free(outcome);
	free(table);
	if (!e && got) {
		kiln_wm_edit_result *r = NULL;
		kiln_err ae = kiln_wm_apply(s->wm, &r, parts.edits_json, strlen(parts.edits_json));
		if (ae == KILN_EINVAL) {
			free(st->rejected);
			st->rejected = kiln_asprintf("the whole edit script was rejected: %s", kiln_error_last());
		} else if (ae) {
			e = ae;
		} else {
			e = take_edits(st, r, parts.edits_json, call);
		}
		kiln_wm_edit_result_free(r);
	}
	if (got)
		kiln_reply_parts_free(&parts);
	if (!e && solved && !(e = ensure_open_child(s, n.id)))
		e = kiln_search_wm_save(s, NULL, NULL, 0);
	reset_action(st, -1);
	return e;
}

static bool action_over(const llm_state *st)
{
	const kiln_run_options *o = st->s->o;
	int max = o->max_attempts > 0 ? o->max_attempts : 6;
	int stag = o->stagnation > 0 ? o->stagnation : 3;
	return st->attempts >= max || st->since_improve >= stag;
}

/* ---- checkpoint: the actions in progress and the candidates in flight, so --resume
 * continues them: {"node", "attempts", ... of slot 0, "slots": [{...}, ...]} ---- */

static cJSON *slot_json(const llm_state *st)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "node", (double)st->node);
	cJSON_AddNumberToObject(o, "attempts", st->attempts);
	cJSON_AddNumberToObject(o, "since_improve", st->since_improve);
	cJSON_AddNumberToObject(o, "last_id", (double)st->last_id);
	cJSON_AddBoolToObject(o, "last_passed", st->last_passed);
	if (st->flying) {
		cJSON *f = cJSON_AddObjectToObject(o, "in_flight");
		cJSON_AddNumberToObject(f, "iteration", (double)st->fly_iteration);
		cJSON_AddNumberToObject(f, "node", (double)st->fly_node);
		cJSON_AddNumberToObject(f, "parent", (double)st->fly_parent);
		cJSON_AddNumberToObject(f, "llm_call", (double)st->fly_call);
		cJSON_AddStringToObject(f, "source", st->fly_source);
		cJSON_AddStringToObject(f, "launch", st->fly_launch);
		if (st->fly_changed)
			cJSON_AddStringToObject(f, "changed", st->fly_changed);
	}
	return o;
}

static kiln_err checkpoint(llm_state *st)
{
	cJSON *o = slot_json(&st->all[0]);
	cJSON *arr = cJSON_AddArrayToObject(o, "slots");
	for (size_t i = 0; arr && i < st->nall; i++)
		cJSON_AddItemToArray(arr, slot_json(&st->all[i]));
	char *js = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	kiln_err e = js ? kiln_search_checkpoint(st->s, js) : KILN_ENOMEM;
	free(js);
	return e;
}

static int64_t num_of(const cJSON *o, const char *key)
{
	return (int64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* An in-flight candidate comes back only if its iteration was never recorded. */
static void restore_flight(llm_state *st, const cJSON *f)
{
	kiln_search *s = st->s;
	const char *src = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "source"));
	const char *launch = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "launch"));
	int64_t it = num_of(f, "iteration");
	bool unrecorded = it >= s->iteration;
	for (size_t i = 0; !unrecorded && i < s->nholes; i++)
		unrecorded = s->holes[i] == it;
	if (!src || !launch || !unrecorded)
		return;
	const char *changed = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(f, "changed"));
	st->fly_source = kiln_strdup(src);
	st->fly_launch = kiln_strdup(launch);
	st->fly_changed = changed ? kiln_strdup(changed) : NULL;
	st->flying = st->fly_source && st->fly_launch;
	st->fly_iteration = it;
	st->fly_node = num_of(f, "node");
	st->fly_parent = num_of(f, "parent");
	st->fly_call = num_of(f, "llm_call");
}

static void restore_slot(llm_state *st, const cJSON *p)
{
	kiln_search *s = st->s;
	const cJSON *v;
	kiln_wm_node n;
	if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(p, "node")) && v->valuedouble > 0 &&
	    kiln_wm_node_get(&n, s->wm, (int64_t)v->valuedouble) == 0 && n.status == KILN_WM_OPEN) {
		st->node = n.id;
		st->attempts = (int)num_of(p, "attempts");
		st->since_improve = (int)num_of(p, "since_improve");
		st->last_id = num_of(p, "last_id");
		st->last_passed = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "last_passed"));
		kiln_candidate_info *c = NULL;
		if (st->last_id > 0 && kiln_db_candidate_get(s->db, &c, st->last_id) == 0) {
			st->last_source = kiln_strdup(c->source);
			st->last_launch = kiln_strdup(c->launch_json);
			st->evidence = kiln_asprintf("%s", c->verify_message ? c->verify_message : "");
			kiln_candidate_infos_free(c, 1);
		}
	}
	restore_flight(st, cJSON_GetObjectItemCaseSensitive(p, "in_flight"));
}

/* Slot i gets the stored slot i; a session narrower than the last one drops the extra
 * actions (their in-flight iterations are filled by new work). */
static void restore(llm_state *all, size_t n)
{
	kiln_search *s = all[0].s;
	char *state = NULL;
	int64_t it;
	if (kiln_db_checkpoint_get(s->db, &state, &it, s->run_id))
		return;
	cJSON *o = cJSON_Parse(state);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(o, "policy");
	const cJSON *slots = cJSON_GetObjectItemCaseSensitive(p, "slots");
	if (cJSON_IsArray(slots)) {
		for (size_t i = 0; i < n && i < (size_t)cJSON_GetArraySize(slots); i++)
			restore_slot(&all[i], cJSON_GetArrayItem(slots, (int)i));
	} else if (cJSON_IsObject(p)) {
		restore_slot(&all[0], p);
	}
	for (size_t i = 0; i < n; i++) /* two slots on one action: the first keeps it */
		for (size_t j = 0; j < i; j++)
			if (all[i].node > 0 && all[i].node == all[j].node)
				all[i].node = -1;
	cJSON_Delete(o);
	free(state);
}

/* ---- the loop ---- */

static kiln_err seed_defines(llm_state *st)
{
	kiln_search *s = st->s;
	st->nk = s->t->nknobs;
	st->defines = kiln_calloc(st->nk ? st->nk : 1, sizeof(char *));
	kiln_tuner *tu = NULL;
	int64_t values[KILN_ENV_MAX];
	kiln_err e = st->defines ? kiln_tuner_new(&tu, s->t, s->seed_source, 1, 0) : KILN_ENOMEM;
	if (!e && st->nk > KILN_ENV_MAX)
		e = kiln_error_set(KILN_EINVAL, "target %s has too many knobs", s->t->name);
	if (!e)
		kiln_tuner_seed_values(tu, values);
	for (size_t i = 0; !e && i < st->nk; i++)
		if (!(st->defines[i] = kiln_asprintf("%s=%lld", s->t->knobs[i].name, (long long)values[i])))
			e = KILN_ENOMEM;
	kiln_tuner_free(tu);
	return e;
}

/* The seed is candidate 0: the baseline every speedup is measured against. */
static kiln_err evaluate_seed(llm_state *st)
{
	kiln_search *s = st->s;
	if (s->iteration > 0)
		return 0;
	kiln_cand c = {s->seed_source, s->seed_launch, (const char *const *)st->defines, st->nk,
		       KILN_WM_ROOT, 0, 0, true, "the seed (the baseline)", 0, false};
	kiln_eval ev;
	int64_t id = 0;
	kiln_err e = kiln_search_evaluate(s, &c, &ev, &id, NULL);
	if (!e && !ev.abandoned) {
		bool passed = ev.outcome == KILN_OUT_PASSED;
		kiln_wm_attempt a = {passed, passed ? id : 0, passed ? ev.timing.time_us : 0, 0, ev.timing.modeled};
		if (passed)
			e = kiln_wm_record_attempt(s->wm, NULL, KILN_WM_ROOT, &a);
		char *sum = kiln_eval_summary(&ev);
		char what[400];
		snprintf(what, sizeof what, "seed: %s", sum ? sum : "");
		free(sum);
		kiln_search_progress(s, what);
	}
	kiln_eval_free(&ev);
	return e;
}

/* The actions other slots carry: in flight, so selection hands out a different one. */
static size_t pending_of(const llm_state *st, int64_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < st->nall; i++)
		if (&st->all[i] != st && st->all[i].node > 0)
			out[n++] = st->all[i].node;
	return n;
}

static kiln_err step(llm_state *st, bool *idle, bool *done)
{
	kiln_search *s = st->s;
	if (st->flying)
		return reissue(st, done);
	if (st->node > 0 && !node_open(s, st->node)) /* another slot's edit script closed it */
		reset_action(st, -1);
	if (st->node < 0) {
		int64_t pend[64];
		kiln_wm_select_options so = KILN_WM_SELECT_OPTIONS_INIT;
		so.seed = s->seed;
		so.pending = pend;
		so.npending = pending_of(st, pend);
		kiln_wm_choice ch;
		kiln_err e = kiln_wm_select(&ch, s->wm, &so);
		if (e == KILN_ENOTFOUND && so.npending > 0) { /* wait: other slots may open some */
			kiln_error_clear();
			*idle = true;
			return 0;
		}
		if (e == KILN_ENOTFOUND) {
			snprintf(s->stop_reason, sizeof s->stop_reason, "the world model has no open action left");
			return 0;
		}
		if (e)
			return e;
		reset_action(st, ch.id);
		char *why = NULL;
		if (kiln_wm_choice_explain(&why, &ch) == 0) {
			kiln_db_event_add(s->db, s->run_id, "info", "select", why, NULL);
			free(why);
		}
	}
	kiln_err e = attempt(st, done);
	if (!e && !*done && st->node >= 0 && action_over(st) && !kiln_search_should_stop(s))
		e = close_action(st);
	if (!e)
		e = checkpoint(st);
	return e;
}

static kiln_err slot_step(void *arg, bool *idle, bool *done)
{
	return step(arg, idle, done);
}

static void slot_free(llm_state *st)
{
	reset_action(st, -1);
	fly_clear(st);
	free(st->rejected);
	free(st->state);
	if (st->slot > 0)
		kiln_llm_free(st->llm);
}

/* Slots 1..n-1: their own LLM clients (one HTTP call each at a time), slot 0's defines. */
static kiln_err open_slots(llm_state *all, size_t n)
{
	kiln_search *s = all[0].s;
	for (size_t i = 1; i < n; i++) {
		llm_state *st = &all[i];
		st->s = s;
		st->slot = (int)i;
		st->node = -1;
		st->defines = all[0].defines;
		st->nk = all[0].nk;
		st->knobs = all[0].knobs;
		kiln_err e = kiln_llm_clone(&st->llm, s->llm);
		if (e)
			return e;
	}
	return 0;
}

kiln_err kiln_policy_llm(kiln_search *s)
{
	size_t n = kiln_search_width(s);
	if (n > 64)
		return kiln_error_set(KILN_EINVAL, "--parallel %zu: at most 64 actions in flight", n);
	llm_state *all = kiln_calloc(n, sizeof *all);
	void **slots = kiln_calloc(n, sizeof *slots);
	if (!all || !slots) {
		free(all);
		free(slots);
		return KILN_ENOMEM;
	}
	llm_state *st = &all[0];
	st->s = s;
	st->llm = s->llm;
	st->node = -1;
	for (size_t i = 0; i < n; i++) {
		all[i].all = all;
		all[i].nall = n;
		slots[i] = &all[i];
	}
	kiln_err e = seed_defines(st);
	if (!e && !(st->knobs = knob_text(st)))
		e = KILN_ENOMEM;
	if (!e)
		e = open_slots(all, n);
	if (!e)
		e = evaluate_seed(st);
	if (!e && !kiln_search_should_stop(s))
		e = init_tree(st);
	if (!e && s->resumed)
		restore(all, n);
	if (!e && n > 1 && !kiln_search_should_stop(s)) {
		e = kiln_search_run_slots(s, slots, n, slot_step);
		if (!e && !s->stop_reason[0] && !kiln_search_stop)
			snprintf(s->stop_reason, sizeof s->stop_reason, "the world model has no open action left");
	}
	bool idle = false, done = false;
	while (!e && n == 1 && !done && !kiln_search_should_stop(s))
		e = step(st, &idle, &done);
	if (!e) /* the actions and any candidate still in flight (interrupted) */
		e = checkpoint(st);
	for (size_t i = 0; i < n; i++)
		slot_free(&all[i]);
	for (size_t i = 0; st->defines && i < st->nk; i++)
		free(st->defines[i]);
	free(st->defines);
	free(st->knobs);
	free(all);
	free(slots);
	return e;
}
