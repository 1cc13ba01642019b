/* Evaluation of one candidate: compile -> verify -> time, in a forked child with a
 * deadline (a kernel that hangs, crashes the emulator or poisons a CUDA context costs one
 * candidate, never the run). The child answers with one JSON object that the parent turns
 * into a kiln_eval:
 *   {"compile": {...}, "verdict": {kiln_verdict_to_json}, "timing": {...}, "error": "..."} */
#include "agent/agent_int.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "compile/compile.h"
#include "profile/profile.h"

/* ---- the child ---- */

static kiln_err add_raw_json(cJSON *o, const char *key, const char *text)
{
	cJSON *v = text ? cJSON_Parse(text) : NULL;
	if (!v)
		v = cJSON_CreateNull();
	return cJSON_AddItemToObject(o, key, v) ? 0 : KILN_ENOMEM;
}

/* Keys of the child's answer beyond the record fields (archive/fields.c has those). */
static const char key_limit[] = "resource_limit", key_detail[] = "detail";

static kiln_err add_compile(cJSON *o, const kiln_compiled *c)
{
	cJSON *j = cJSON_AddObjectToObject(o, "compile");
	kiln_compile_rec r = {0};
	r.registers = -1;
	r.shared_bytes = -1;
	for (size_t i = 0; i < c->nkernels; i++) {
		const kiln_kernel_resources *k = &c->kernels[i];
		r.registers = k->registers > r.registers ? k->registers : r.registers;
		r.spill_store_bytes += k->spill_store_bytes > 0 ? k->spill_store_bytes : 0;
		r.spill_load_bytes += k->spill_load_bytes > 0 ? k->spill_load_bytes : 0;
		r.shared_bytes = k->shared_bytes > r.shared_bytes ? k->shared_bytes : r.shared_bytes;
	}
	r.ok = c->ok;
	r.log = c->log ? c->log : "";
	r.toolkit = c->toolkit ? c->toolkit : "";
	r.cache_key = c->key;
	r.wall_s = c->wall_s;
	r.cache_hit = c->cache_hit;
	char *res = c->ok ? kiln_compile_resources_json(c) : NULL;
	r.resources_json = res;
	kiln_err e = j ? kiln_record_to_json(j, &kiln_compile_desc, &r) : KILN_ENOMEM;
	if (!e && !cJSON_AddBoolToObject(j, key_limit, c->resource_limit))
		e = KILN_ENOMEM;
	free(res);
	return e;
}

static kiln_err add_timing(cJSON *o, const kiln_timing *tm)
{
	cJSON *j = cJSON_AddObjectToObject(o, "timing");
	kiln_timing_rec r = {0};
	r.device = tm->device;
	r.modeled = tm->modeled;
	r.time_us = tm->time_us;
	r.min_us = isfinite(tm->min_us) ? tm->min_us : tm->time_us;
	r.spread = isfinite(tm->spread) ? tm->spread : 0;
	r.reps = tm->reps;
	r.roofline = tm->roofline;
	r.bandwidth_gbs = tm->bandwidth_gbs;
	r.speedup = NAN; /* the parent's: it knows the seed */
	r.samples_json = tm->samples_json;
	r.counters_json = tm->counters_json;
	r.spec_json = tm->spec_json;
	r.sizes_json = tm->sizes_json;
	char *all = kiln_timing_to_json(tm);
	kiln_err e = j ? kiln_record_to_json(j, &kiln_timing_desc, &r) : KILN_ENOMEM;
	if (!e)
		e = add_raw_json(j, key_detail, all);
	free(all);
	return e;
}

typedef struct child_ctx {
	const kiln_eval_job *job;
	const kiln_plan *plan;
} child_ctx;

/* Compile once with the same options verification uses, so its compile is a cache hit
 * and the record carries the resource report. */
static void compile_options(kiln_compile_options *co, const kiln_eval_job *j, const kiln_plan *plan)
{
	kiln_compile_options init = KILN_COMPILE_OPTIONS_INIT;
	*co = init;
	co->source = j->source;
	co->name = "kernel.cu";
	co->arch = j->arch;
	co->flags = (const char *const *)plan->nvrtc_flags;
	co->nflags = plan->nflags;
	co->defines = j->defines;
	co->ndefines = j->ndefines;
	co->want_cubin = true; /* the resource report (registers, spills) needs nvJitLink */
	co->cache_dir = j->cache_dir;
}

static kiln_err child_compile(cJSON *o, const child_ctx *cc, bool *ok)
{
	kiln_compile_options co;
	compile_options(&co, cc->job, cc->plan);
	kiln_compiled *c = NULL;
	kiln_err e = kiln_compile(&c, &co);
	if (e)
		return e;
	e = add_compile(o, c);
	*ok = c->ok;
	kiln_compiled_free(c);
	return e;
}

/* A kernel that faults only when timed (at the bench size, after many reps) fails with
 * the fault as its verdict: the kernel's fault, not "could not run". */
static kiln_err timing_fault(cJSON *o, kiln_verdict *v, const kiln_device *dev)
{
	const kiln_device_fault *f = kiln_device_last_fault(dev);
	v->pass = false;
	snprintf(v->check, sizeof(v->check), "%s",
		 f->kind == KILN_FAULT_OOB || f->kind == KILN_FAULT_MISALIGNED ? "bounds" : "launch");
	snprintf(v->message, sizeof(v->message), "%s: %s (while timed at the bench size)", kiln_fault_kind_name(f->kind),
		 kiln_error_last());
	char *vj = kiln_verdict_to_json(v);
	if (!vj)
		return KILN_ENOMEM;
	cJSON_DeleteItemFromObjectCaseSensitive(o, "verdict");
	add_raw_json(o, "verdict", vj);
	free(vj);
	return 0;
}

static kiln_err child_verify_and_time(cJSON *o, const child_ctx *cc, kiln_device *dev)
{
	const kiln_eval_job *j = cc->job;
	kiln_build_src src = KILN_BUILD_SRC_INIT;
	src.target = j->target;
	src.source = j->source;
	src.source_name = "kernel.cu";
	src.plan = cc->plan;
	src.defines = j->defines;
	src.ndefines = j->ndefines;
	src.device = dev;
	src.cache_dir = j->cache_dir;
	kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
	vo.src = src;
	vo.nseeds = j->nseeds;
	vo.threads = j->threads;
	kiln_verdict v;
	kiln_err e = kiln_verify(&v, &vo);
	if (e)
		return e;
	char *vj = kiln_verdict_to_json(&v);
	if (!vj)
		return KILN_ENOMEM;
	add_raw_json(o, "verdict", vj);
	free(vj);
	if (!v.pass)
		return 0;
	kiln_time_options to = KILN_TIME_OPTIONS_INIT;
	to.src = src;
	to.gpu = j->gpu;
	to.rank = j->rank;
	to.seed = j->timing_seed;
	to.every_size = true; /* ranked on the weighted geometric mean over the bench sizes */
	kiln_timing tm;
	memset(&tm, 0, sizeof tm);
	if ((e = kiln_time(&tm, &to)) == KILN_EFAULT)
		e = timing_fault(o, &v, dev);
	if (e) {
		kiln_timing_free(&tm);
		return e;
	}
	if (!v.pass) /* it faulted while timed: the kernel's failure, recorded as its verdict */
		return 0;
	e = add_timing(o, &tm);
	kiln_timing_free(&tm);
	return e;
}

static kiln_err child_fn(char **text, void *arg)
{
	const child_ctx *cc = arg;
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return KILN_ENOMEM;
	bool ok = false;
	kiln_device *dev = NULL;
	if (cc->job->gpu_index >= 0) { /* this worker's GPU (a forked child: the env is its own) */
		char ix[16];
		snprintf(ix, sizeof ix, "%d", cc->job->gpu_index);
		setenv("KILN_GPU_INDEX", ix, 1);
	}
	kiln_err e = child_compile(o, cc, &ok);
	if (!e && ok && !(e = kiln_device_open(&dev, cc->job->device, NULL)))
		e = child_verify_and_time(o, cc, dev);
	kiln_device_free(dev);
	if (e) {
		cJSON_AddStringToObject(o, "error", kiln_error_last());
		cJSON_AddNumberToObject(o, "code", e);
	}
	*text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return *text ? 0 : KILN_ENOMEM;
}

/* ---- the parent: JSON back to a kiln_eval ---- */

static char *dup_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? kiln_strdup(v->valuestring) : NULL;
}

static double num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

static char *dup_json(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return v && !cJSON_IsNull(v) ? cJSON_PrintUnformatted(v) : NULL;
}

static kiln_err take_compile(kiln_eval *ev, const cJSON *c)
{
	kiln_err e = kiln_record_from_json(&ev->compile, &kiln_compile_desc, c);
	if (e)
		return e;
	ev->has_compile = true;
	if (!ev->compile.ok) {
		ev->outcome = KILN_OUT_COMPILE_ERROR;
		bool limit = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(c, key_limit));
		ev->failed_check = kiln_strdup(limit ? "resource-limit" : "compile");
		ev->message = kiln_asprintf("%s: %.400s", limit ? "resource limit" : "compile error",
					    ev->compile.log ? ev->compile.log : "");
		for (size_t n = ev->message ? strlen(ev->message) : 0; n && ev->message[n - 1] == '\n'; n--)
			ev->message[n - 1] = '\0';
	}
	return 0;
}

static void take_verdict(kiln_eval *ev, const cJSON *v)
{
	ev->has_verify = true;
	ev->verdict_json = cJSON_PrintUnformatted(v);
	ev->message = dup_str(v, "message");
	bool pass = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "pass"));
	const cJSON *w = cJSON_GetObjectItemCaseSensitive(v, "worst");
	ev->worst_error = num(w, "abs", NAN);
	ev->worst_index = (int64_t)num(w, "index", -1);
	ev->worst_buffer = dup_str(w, "buffer");
	ev->seeds_json = dup_json(v, "seeds");
	ev->checks_json = dup_json(v, "checks_run");
	ev->verify_s = num(v, "seconds", 0);
	const cJSON *wn = cJSON_GetObjectItemCaseSensitive(v, "warnings");
	if (pass && cJSON_IsString(wn) && *wn->valuestring) { /* shown with the evidence */
		free(ev->message);
		ev->message = kiln_asprintf("warning: %s", wn->valuestring);
	}
	if (!pass) {
		ev->failed_check = dup_str(v, "check");
		ev->outcome = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(v, "unverifiable"))
				      ? KILN_OUT_UNVERIFIABLE : KILN_OUT_FAILED;
	}
}

static kiln_err take_timing(kiln_eval *ev, const cJSON *t)
{
	kiln_err e = kiln_record_from_json(&ev->timing, &kiln_timing_desc, t);
	if (e)
		return e;
	ev->has_timing = true;
	ev->outcome = KILN_OUT_PASSED;
	ev->timing_json = dup_json(t, key_detail);
	cJSON *sizes = ev->timing.sizes_json ? cJSON_Parse(ev->timing.sizes_json) : NULL;
	const cJSON *sz;
	ev->roofline_max = ev->timing.roofline;
	cJSON_ArrayForEach(sz, sizes)
		ev->roofline_max = fmax(ev->roofline_max, num(sz, "roofline", -1));
	ev->nsizes = (size_t)cJSON_GetArraySize(sizes);
	cJSON_Delete(sizes);
	free(ev->device);
	ev->device = ev->timing.device ? kiln_strdup(ev->timing.device) : NULL;
	return 0;
}

static void set_failure(kiln_eval *ev, const char *check, char *message)
{
	ev->outcome = KILN_OUT_FAILED;
	free(ev->failed_check);
	free(ev->message);
	ev->failed_check = kiln_strdup(check);
	ev->message = message;
}

void kiln_eval_take_answer(kiln_eval *ev, const kiln_child_result *r, const kiln_eval_job *job)
{
	cJSON *o = r->text && *r->text ? cJSON_Parse(r->text) : NULL;
	const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "compile");
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "verdict");
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "timing");
	kiln_err bad = c ? take_compile(ev, c) : 0; /* a malformed answer: the child's failure */
	if (!bad && cJSON_IsObject(v))
		take_verdict(ev, v);
	if (!bad && t && ev->outcome != KILN_OUT_FAILED)
		bad = take_timing(ev, t);
	char *bad_msg = bad ? kiln_strdup(kiln_error_last()) : NULL;
	const char *err = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error"));
	int code = (int)num(o, "code", 0);
	bool complete = ev->outcome == KILN_OUT_COMPILE_ERROR || ev->outcome == KILN_OUT_UNVERIFIABLE ||
			(ev->has_verify && (ev->outcome == KILN_OUT_FAILED || ev->has_timing));
	long long mib = (long long)(kiln_limits_memory() >> 20);
	if (r->too_large)
		set_failure(ev, "resource-limit", kiln_asprintf("the evaluation's answer is over %zu MiB (a flood of compiler remarks?)",
								KILN_CHILD_ANSWER_MAX >> 20));
	else if (r->timed_out)
		set_failure(ev, "timeout", kiln_asprintf("evaluation did not finish within %.0f s (killed)", job->timeout_s));
	else if (r->signal == SIGXCPU || r->signal == SIGKILL)
		set_failure(ev, "resource-limit", kiln_asprintf("the evaluation was killed by signal %d (%s): its CPU limit (%.0f s of CPU per CPU) or memory limit (%lld MiB, --max-memory)",
								r->signal, strsignal(r->signal), job->timeout_s, mib));
	else if (err && code == KILN_ENOMEM)
		set_failure(ev, "resource-limit", kiln_asprintf("the evaluation ran out of its memory limit of %lld MiB (--max-memory): %s", mib, err));
	else if (r->signal)
		set_failure(ev, "crash", kiln_asprintf("the evaluation process died with signal %d (%s)", r->signal, strsignal(r->signal)));
	else if (bad) {
		set_failure(ev, "evaluate", bad_msg);
		bad_msg = NULL;
	}
	else if (err)
		set_failure(ev, ev->has_verify ? "timing" : "evaluate", kiln_asprintf("%s", err));
	else if (!complete)
		set_failure(ev, "evaluate", kiln_asprintf("the evaluation process exited %d without a verdict", r->exit_code));
	else
		kiln_eval_check_physical(ev);
	free(bad_msg);
	cJSON_Delete(o);
}

void kiln_eval_check_physical(kiln_eval *ev)
{
	/* faster than the target's minimum traffic at peak bandwidth: a cheat or a broken
	 * measurement, never a winner */
	double r = fmax(ev->timing.roofline, ev->roofline_max); /* at any bench size */
	if (ev->outcome == KILN_OUT_PASSED && ev->has_timing && r > 1.0)
		set_failure(ev, "physical-limit",
			    kiln_asprintf("%.3f us is %.0f%% of the time the traffic floor (the bytes any correct kernel moves, masked positions left out) needs at peak bandwidth%s: physically impossible, so the kernel skips work the timing cannot see or the timing is wrong",
					  ev->timing.time_us, 100.0 / r, r > ev->timing.roofline ? " at one of the bench sizes" : ""));
}

kiln_err kiln_eval_in_child(kiln_child_result *r, const kiln_eval_job *job, const kiln_plan *plan)
{
	child_ctx cc = {job, plan};
	return kiln_child_run(r, child_fn, &cc, job->timeout_s);
}

kiln_err kiln_eval_run(kiln_eval *out, const kiln_eval_job *job)
{
	memset(out, 0, sizeof *out);
	out->worst_error = NAN;
	out->worst_index = -1;
	out->timing.time_us = NAN;
	out->device = kiln_strdup(job->device);
	double t0 = kiln_now_s();
	kiln_plan *plan = NULL;
	kiln_err e = kiln_plan_parse(&plan, job->launch_json, strlen(job->launch_json), job->target,
				     "launch.json");
	if (e == KILN_EINVAL) { /* a bad plan is the candidate's fault: a verdict, not an error */
		out->outcome = KILN_OUT_COMPILE_ERROR;
		out->failed_check = kiln_strdup("launch-plan");
		out->message = kiln_asprintf("invalid launch.json: %s", kiln_error_last());
		out->wall_s = kiln_now_s() - t0;
		return 0;
	}
	if (e)
		return e;
	kiln_child_result r;
	/* here in a forked child, or on an MPI worker rank (which runs the same child there and
	 * sends back its answer): the same result JSON either way */
	e = job->mpi_rank > 0 ? kiln_mpi_eval(&r, job) : kiln_eval_in_child(&r, job, plan);
	kiln_plan_free(plan);
	if (e)
		return e;
	out->abandoned = r.timed_out && kiln_search_stop;
	kiln_eval_take_answer(out, &r, job);
	kiln_child_result_free(&r);
	out->wall_s = kiln_now_s() - t0;
	return 0;
}

pid_t kiln_eval_precompile(const kiln_eval_job *job)
{
	if (!job->cache_dir)
		return -1;
	fflush(NULL);
	pid_t pid = fork();
	if (pid != 0)
		return pid; /* the parent (or -1: no overlap, the evaluation compiles it) */
	signal(SIGINT, SIG_IGN);
	kiln_plan *plan = NULL;
	kiln_compiled *c = NULL;
	if (kiln_plan_parse(&plan, job->launch_json, strlen(job->launch_json), job->target, "launch.json") == 0) {
		kiln_compile_options co;
		compile_options(&co, job, plan);
		kiln_compile(&c, &co);
	}
	_exit(c && c->ok ? 0 : 1);
}

void kiln_eval_precompile_wait(pid_t pid)
{
	int status;
	if (pid > 0)
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
}

void kiln_eval_free(kiln_eval *ev)
{
	if (!ev)
		return;
	char **strs[] = {&ev->failed_check, &ev->message, &ev->worst_buffer, &ev->seeds_json, &ev->checks_json,
			 &ev->verdict_json, &ev->timing_json, &ev->device};
	kiln_record_free(&ev->compile, &kiln_compile_desc);
	kiln_record_free(&ev->timing, &kiln_timing_desc);
	for (size_t i = 0; i < KILN_ARRAY_LEN(strs); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

char *kiln_eval_summary(const kiln_eval *ev)
{
	if (ev->outcome == KILN_OUT_PASSED)
		return kiln_asprintf("passed, %.3f us %s (roofline %.0f%%)", ev->timing.time_us,
				     ev->timing.modeled ? "modeled" : "measured",
				     ev->timing.roofline >= 0 ? ev->timing.roofline * 100 : 0.0);
	const char *m = ev->message ? ev->message : "";
	size_t cut = kiln_text_word_cut(m, 300); /* cut after a word, marked "..." */
	return kiln_asprintf("%s %s: %.*s%s", ev->outcome == KILN_OUT_UNVERIFIABLE ? "unverifiable" : "failed",
			     ev->failed_check ? ev->failed_check : "?", (int)cut, m, m[cut] ? " ..." : "");
}
