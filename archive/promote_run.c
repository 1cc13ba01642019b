/* archive: the promote workflow (kiln_promote): choose the candidate (the fastest best of
 * the target's runs, or a given one), refuse one that did not pass when recorded or breaks
 * the device-only rule, build the fatbin, re-verify on the emulator with fresh seeds (once
 * per distinct PTX, then at the bench size), then commit/tag the archive and write
 * NAME.{cu,h,fatbin,json[,py]}. A refusal is an outcome in the result, not an error; the
 * files are written only for a candidate that passed every check. */
#include "archive/archive_int.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* ---- choosing the candidate ---- */

static const char cand_sql[] =
	"SELECT c.id, c.hash, c.run_id, c.iteration, c.node_id, c.outcome, c.source, c.launch, c.knobs,"
	" r.target, r.policy, r.llm_model, r.device, r.gpu, r.arch, r.started, v.failed_check, v.message,"
	" v.seeds, v.device AS verify_device, t.kind, t.device AS timing_device, t.time_us, t.min_us, t.spread,"
	" t.reps, t.samples, t.speedup, t.roofline, t.spec, cr.toolkit"
	" FROM candidates c JOIN runs r ON r.id = c.run_id LEFT JOIN verifications v ON v.candidate_id = c.id"
	" LEFT JOIN timings t ON t.candidate_id = c.id LEFT JOIN compile_results cr ON cr.candidate_id = c.id"
	" WHERE c.id = ?1";

static kiln_err choose(kiln_promotion *pr, const char *target, const char *ref)
{
	cJSON *rows = NULL;
	char id[24];
	kiln_err e;
	if (ref) {
		kiln_candidate_info *ci = NULL;
		if ((e = kiln_db_candidate_find(pr->db, &ci, ref)))
			return e;
		snprintf(id, sizeof(id), "%lld", (long long)ci->id);
		kiln_candidate_infos_free(ci, 1);
	} else {
		const char *p[1] = {target};
		if ((e = kiln_db_query_json(pr->db, &rows,
					    "SELECT r.best_candidate AS id FROM runs r JOIN timings t ON t.candidate_id ="
					    " r.best_candidate WHERE r.target = ?1 ORDER BY t.kind = 'measured' DESC,"
					    " t.time_us, r.id DESC LIMIT 1", p, 1, "finding the best candidate")))
			return e;
		double v = promote_jnum(cJSON_GetArrayItem(rows, 0), "id");
		cJSON_Delete(rows);
		rows = NULL;
		if (!isfinite(v))
			return kiln_error_set(KILN_ENOTFOUND, "target %s has no run with a best candidate", target);
		snprintf(id, sizeof(id), "%.0f", v);
	}
	const char *p[1] = {id};
	if ((e = kiln_db_query_json(pr->db, &rows, cand_sql, p, 1, "reading the candidate")))
		return e;
	pr->cand = cJSON_DetachItemFromArray(rows, 0);
	cJSON_Delete(rows);
	if (!pr->cand)
		return kiln_error_set(KILN_ENOTFOUND, "candidate %s not found", id);
	if (strcmp(promote_jstr(pr->cand, "target", ""), target) != 0)
		return kiln_error_set(KILN_EINVAL, "candidate %s belongs to target %s, not %s", id,
				      promote_jstr(pr->cand, "target", "?"), target);
	return KILN_OK;
}

/* ---- verification and compile ---- */

/* The knob value of name: the candidate's knobs, else the target's first listed value. */
bool kiln_promotion_knob(const kiln_promotion *pr, const char *name, long long *out)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(pr->cand, "knobs"), name);
	if (cJSON_IsNumber(k)) {
		*out = (long long)k->valuedouble;
		return true;
	}
	for (size_t i = 0; i < pr->t->nknobs; i++)
		if (strcmp(pr->t->knobs[i].name, name) == 0 && pr->t->knobs[i].n > 0) {
			*out = (long long)pr->t->knobs[i].values[0];
			return true;
		}
	return false;
}

static kiln_err add_define(kiln_promotion *pr, char *d)
{
	if (!d)
		return KILN_ENOMEM;
	if (pr->ndefines >= KILN_PROMOTE_MAX_DEFINES) {
		free(d);
		return kiln_error_set(KILN_EINVAL, "candidate has more than %d knobs", KILN_PROMOTE_MAX_DEFINES);
	}
	pr->defines[pr->ndefines++] = d;
	return KILN_OK;
}

/* Every knob of the target (the candidate's value, else the first listed: what the search
 * compiled and what the header's launch expressions assume), then any other the candidate
 * set. */
static kiln_err make_defines(kiln_promotion *pr)
{
	const cJSON *k, *knobs = cJSON_GetObjectItemCaseSensitive(pr->cand, "knobs");
	kiln_err e = KILN_OK;
	long long v;
	for (size_t i = 0; !e && i < pr->t->nknobs; i++)
		if (kiln_promotion_knob(pr, pr->t->knobs[i].name, &v))
			e = add_define(pr, kiln_asprintf("%s=%lld", pr->t->knobs[i].name, v));
	cJSON_ArrayForEach(k, knobs) {
		bool known = false;
		for (size_t i = 0; i < pr->t->nknobs; i++)
			known = known || strcmp(pr->t->knobs[i].name, k->string) == 0;
		if (!e && !known)
			e = add_define(pr, cJSON_IsNumber(k) ? kiln_asprintf("%s=%lld", k->string, (long long)k->valuedouble)
					   : kiln_asprintf("%s=%s", k->string, cJSON_IsString(k) ? k->valuestring : "1"));
	}
	return e;
}

/* The launch plan and the knob defines (before compiling and verifying). */
static kiln_err prepare(kiln_promotion *pr)
{
	char *launch = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(pr->cand, "launch"));
	kiln_err e = launch ? kiln_plan_parse(&pr->plan, launch, strlen(launch), pr->t, "the candidate's launch.json")
			    : KILN_ENOMEM;
	if (!e)
		e = make_defines(pr);
	cJSON_free(launch);
	return e;
}

/* PTX without its header (.version, .target, comments): archs whose PTX is the same
 * compute the same thing, so one re-verification covers them. */
static bool same_ptx(const kiln_compiled *a, const kiln_compiled *b)
{
	const char *p = a->ptx, *q = b->ptx, *pe = p + a->ptx_len, *qe = q + b->ptx_len;
	for (;;) {
		while (p < pe && (*p == '\n' || strncmp(p, "//", 2) == 0 || strncmp(p, ".target", 7) == 0 ||
				  strncmp(p, ".version", 8) == 0)) {
			const char *nl = memchr(p, '\n', (size_t)(pe - p));
			p = nl ? nl + 1 : pe;
		}
		while (q < qe && (*q == '\n' || strncmp(q, "//", 2) == 0 || strncmp(q, ".target", 7) == 0 ||
				  strncmp(q, ".version", 8) == 0)) {
			const char *nl = memchr(q, '\n', (size_t)(qe - q));
			q = nl ? nl + 1 : qe;
		}
		const char *pn = memchr(p, '\n', (size_t)(pe - p)), *qn = memchr(q, '\n', (size_t)(qe - q));
		size_t pl = (size_t)((pn ? pn : pe) - p), ql = (size_t)((qn ? qn : qe) - q);
		if (pl != ql || memcmp(p, q, pl) != 0)
			return false;
		if (p + pl >= pe)
			return q + ql >= qe;
		p += pl + 1;
		q += ql + 1;
	}
}

/* The index of an earlier arch whose PTX equals arch i's, else i. */
static size_t ptx_twin(const kiln_promotion *pr, size_t i)
{
	for (size_t j = 0; pr->fatbin && j < i && j < pr->fatbin->nparts && i < pr->fatbin->nparts; j++)
		if (pr->fatbin->parts[i]->ptx && pr->fatbin->parts[j]->ptx && same_ptx(pr->fatbin->parts[i], pr->fatbin->parts[j]))
			return j;
	return i;
}

static kiln_err reverify(kiln_promotion *pr, size_t nseeds)
{
	kiln_device *dev = NULL;
	char *cache = kiln_path_join(pr->workdir, "cache");
	kiln_err e = !cache ? KILN_ENOMEM : KILN_OK;
	if (!e)
		e = kiln_device_open(&dev, "emu", NULL);
	if (!e) {
		kiln_verify_options vo = KILN_VERIFY_OPTIONS_INIT;
		vo.src.target = pr->t;
		vo.src.source = pr->cu;
		vo.src.source_name = "kernel.cu";
		vo.src.plan = pr->plan;
		vo.src.defines = (const char *const *)pr->defines;
		vo.src.ndefines = pr->ndefines;
		vo.src.device = dev;
		vo.nseeds = nseeds;
		vo.threads = pr->threads;
		vo.src.cache_dir = kiln_path_exists(cache) ? cache : NULL;
		/* every exported architecture: code under __CUDA_ARCH__ differs per arch, so each
		 * arch's PTX runs on the emulator (the device-only rule already refused that, this
		 * also catches codegen that differs) */
		for (size_t i = 0; !e && i < pr->narchs && (i == 0 || pr->verdict->pass); i++) {
			if (ptx_twin(pr, i) != i) /* the same PTX as an arch verified already */
				continue;
			vo.arch = pr->verdict_arch = pr->archs[i];
			e = kiln_verify(pr->verdict, &vo);
		}
		/* then once at the bench size, where a grid capped inside the code or a branch
		 * on large sizes shows (KILN_BENCH_CHECK=0 skips it) */
		if (!e && pr->verdict->pass && kiln_verify_bench_check_wanted()) {
			vo.bench_size = true;
			vo.progress = stderr;
			e = kiln_verify(pr->bench, &vo);
			if (!e && !pr->bench->pass)
				*pr->verdict = *pr->bench;
		}
	}
	kiln_device_free(dev);
	free(cache);
	return e;
}

static kiln_err compile_fatbin(kiln_promotion *pr)
{
	kiln_compile_options o = KILN_COMPILE_OPTIONS_INIT;
	char *cache = kiln_path_join(pr->workdir, "cache");
	o.source = pr->cu;
	o.name = "kernel.cu";
	o.flags = (const char *const *)pr->plan->nvrtc_flags;
	o.nflags = pr->plan->nflags;
	o.defines = (const char *const *)pr->defines;
	o.ndefines = pr->ndefines;
	o.cache_dir = cache && kiln_path_exists(cache) ? cache : NULL;
	kiln_err e = cache ? kiln_compile_fatbin(&pr->fatbin, &o, pr->archs, pr->narchs) : KILN_ENOMEM;
	free(cache);
	if (e)
		return kiln_error_wrap(e, "building the fatbin");
	for (size_t i = 0; !pr->fatbin->ok && i < pr->fatbin->nparts; i++)
		if (pr->fatbin->parts[i] && !pr->fatbin->parts[i]->ok)
			return kiln_error_set(KILN_ECOMPILE, "compiling for %s failed:\n%s", pr->archs[i],
					      pr->fatbin->parts[i]->log);
	return pr->fatbin->ok ? KILN_OK : kiln_error_set(KILN_ECOMPILE, "the fatbin could not be built");
}

/* ---- archive and files ---- */

static kiln_err archive_commit(kiln_promotion *pr)
{
	char *dir = kiln_path_join(pr->workdir, "archive");
	const char *target = pr->t->name, *arch = promote_jstr(pr->cand, "arch", "sm_90");
	int64_t id = (int64_t)promote_jnum(pr->cand, "id");
	kiln_err e = dir ? kiln_git_find_candidate(pr->res->oid, dir, target, arch, id) : KILN_ENOMEM;
	if (e == KILN_ENOTFOUND && kiln_path_exists(dir)) {
		char *launch = cJSON_Print(cJSON_GetObjectItemCaseSensitive(pr->cand, "launch"));
		char *result = kiln_verdict_to_json(pr->verdict);
		kiln_git_best b = {target, arch, promote_jstr(pr->cand, "source", ""), launch, result,
				   promote_jnum(pr->cand, "speedup"), promote_jnum(pr->cand, "time_us"),
				   strcmp(promote_jstr(pr->cand, "kind", ""), "modeled") == 0, id,
				   (int64_t)promote_jnum(pr->cand, "run_id"), NULL};
		e = launch && result ? kiln_git_commit_detached(pr->res->oid, dir, &b) : KILN_ENOMEM;
		pr->res->detached = true;
		cJSON_free(launch);
		free(result);
	}
	free(dir);
	return e;
}

static kiln_err tag_all(kiln_promotion *pr)
{
	char *dir = kiln_path_join(pr->workdir, "archive"), name[256];
	kiln_git *g = NULL;
	kiln_err e = dir ? kiln_git_open(&g, dir) : KILN_ENOMEM;
	char *msg = kiln_asprintf("kiln promote: candidate %.0f to %s", promote_jnum(pr->cand, "id"), pr->out_dir);
	for (size_t i = 0; !e && i < pr->narchs; i++) {
		if (!msg)
			e = KILN_ENOMEM;
		else if (!(e = kiln_git_tag(g, name, sizeof(name), pr->t->name, pr->archs[i], pr->res->oid, msg)))
			cJSON_AddItemToArray(pr->tags, cJSON_CreateString(name));
	}
	kiln_git_close(g);
	free(dir);
	free(msg);
	return e;
}

static cJSON *file_entry(const char *data, size_t len)
{
	char hex[65];
	cJSON *o = cJSON_CreateObject();
	kiln_sha256_hex(hex, data, len);
	cJSON_AddStringToObject(o, "sha256", hex);
	cJSON_AddNumberToObject(o, "bytes", (double)len);
	return o;
}

/* Moves key from the candidate row into obj (keeps the manifest's groups tidy). */
static void move(cJSON *obj, const char *as, cJSON *from, const char *key)
{
	cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(from, key);
	cJSON_AddItemToObject(obj, as, v ? v : cJSON_CreateNull());
}

static cJSON *manifest(kiln_promotion *pr, cJSON *files)
{
	cJSON *m = cJSON_CreateObject(), *c = pr->cand;
	cJSON *cand = cJSON_CreateObject(), *run = cJSON_CreateObject(),
	      *ar = cJSON_CreateObject(), *ver = cJSON_CreateObject(), *tim = cJSON_CreateObject();
	char date[32], *vj = kiln_verdict_to_json(pr->verdict), *branch = kiln_asprintf("%s/%s", pr->t->name,
		promote_jstr(c, "arch", "?"));
	kiln_iso8601(date, sizeof(date), kiln_wall_s());
	cJSON_AddStringToObject(m, "name", pr->name);
	cJSON_AddStringToObject(m, "target", pr->t->name);
	cJSON_AddItemToObject(m, "candidate", cand);
	static const char *const ck[] = {"id", "hash", "run_id", "iteration", "node_id", "knobs", "launch"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(ck); i++)
		move(cand, ck[i], c, ck[i]);
	cJSON *defs = cJSON_AddArrayToObject(cand, "defines");
	for (size_t i = 0; i < pr->ndefines; i++)
		cJSON_AddItemToArray(defs, cJSON_CreateString(pr->defines[i]));
	static const char *const rk[] = {"policy", "llm_model", "device", "gpu", "arch", "started"};
	cJSON_AddItemToObject(run, "id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(cand, "run_id"), true));
	for (size_t i = 0; i < KILN_ARRAY_LEN(rk); i++)
		move(run, rk[i], c, rk[i]);
	cJSON_AddItemToObject(m, "run", run);
	cJSON_AddStringToObject(ar, "commit", pr->res->oid);
	cJSON_AddItemToObject(ar, "branch", pr->res->detached ? cJSON_CreateNull() : cJSON_CreateString(branch ? branch : ""));
	cJSON_AddItemToObject(ar, "tags", pr->tags);
	pr->tags = NULL;
	cJSON_AddItemToObject(m, "archive", ar);
	cJSON *recorded = cJSON_CreateObject();
	static const char *const vk[] = {"outcome", "failed_check", "message", "seeds", "verify_device"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(vk); i++)
		move(recorded, vk[i], c, vk[i]);
	cJSON_AddItemToObject(ver, "recorded", recorded);
	cJSON *fresh = vj ? cJSON_Parse(vj) : NULL;
	cJSON_AddItemToObject(ver, "promote", fresh ? fresh : cJSON_CreateNull());
	cJSON *varchs = cJSON_AddArrayToObject(ver, "archs"); /* each re-verified on the emulator */
	cJSON *twins = cJSON_AddObjectToObject(ver, "same_ptx_as"); /* covered by an arch with the same PTX */
	for (size_t i = 0; varchs && twins && i < pr->narchs; i++) {
		size_t j = ptx_twin(pr, i);
		if (j == i)
			cJSON_AddItemToArray(varchs, cJSON_CreateString(pr->archs[i]));
		else
			cJSON_AddStringToObject(twins, pr->archs[i], pr->archs[j]);
	}
	cJSON_AddStringToObject(ver, "device_only", "host and device views are the same (no conditional code)");
	char sha[65];
	kiln_sha256_hex(sha, pr->cu, strlen(pr->cu));
	/* NAME.cu byte for byte: what the fatbin was built from and re-verified */
	cJSON_AddStringToObject(ver, "source_sha256", sha);
	char *bj = pr->bench->sets ? kiln_verdict_to_json(pr->bench) : NULL;
	cJSON *bench = bj ? cJSON_Parse(bj) : NULL;
	free(bj);
	if (bench) /* verified at the bench size on the emulator, input_set.sizes says which */
		cJSON_AddItemToObject(ver, "bench_size", bench);
	else
		cJSON_AddItemToObject(ver, "bench_size", cJSON_CreateString("skipped (KILN_BENCH_CHECK=0)"));
	cJSON_AddItemToObject(m, "verification", ver);
	static const char *const tk[] = {"kind", "timing_device", "time_us", "min_us", "spread", "reps", "samples",
					 "speedup", "roofline", "spec"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(tk); i++)
		move(tim, strcmp(tk[i], "timing_device") ? tk[i] : "device", c, tk[i]);
	cJSON_AddItemToObject(m, "timing", tim);
	cJSON *archs = cJSON_AddArrayToObject(m, "archs");
	for (size_t i = 0; i < pr->narchs; i++)
		cJSON_AddItemToArray(archs, cJSON_CreateString(pr->archs[i]));
	cJSON_AddStringToObject(m, "toolkit", pr->fatbin->nparts ? pr->fatbin->parts[0]->toolkit : "");
	cJSON_AddStringToObject(m, "kiln", KILN_VERSION);
	cJSON_AddStringToObject(m, "date", date);
	cJSON_AddItemToObject(m, "files", files);
	free(vj);
	free(branch);
	return m;
}

static kiln_err write_file(cJSON *files, const kiln_promotion *pr, const char *ext, const void *data, size_t len)
{
	char *base = kiln_asprintf("%s.%s", pr->name, ext), *path = base ? kiln_path_join(pr->out_dir, base) : NULL;
	kiln_err e = path ? kiln_file_write_atomic(path, data, len) : KILN_ENOMEM;
	if (!e && files)
		cJSON_AddItemToObject(files, base, file_entry(data, len));
	free(base);
	free(path);
	return e;
}

/* NAME.cu: the candidate's source after the knob values it was verified and timed with
 * (each under #ifndef, so a build can still override one on purpose), so a plain nvcc
 * build computes what the header's grid assumes. */
static kiln_err write_python(cJSON *files, const kiln_promotion *pr)
{
	char *spec = kiln_promotion_python_spec(pr), *py = NULL;
	char *prov = kiln_asprintf("candidate %.0f of target %s, run %.0f, archive commit %s", promote_jnum(pr->cand, "id"),
				   pr->t->name, promote_jnum(pr->cand, "run_id"), pr->res->oid);
	kiln_err e = spec && prov ? kiln_promote_python(&py, pr->name, spec, pr->t->summary, prov) : KILN_ENOMEM;
	if (!e)
		e = write_file(files, pr, "py", py, strlen(py));
	cJSON_free(spec);
	free(prov);
	free(py);
	return e;
}

static kiln_err write_outputs(kiln_promotion *pr, cJSON **out_manifest)
{
	char *header = NULL, *text = NULL;
	cJSON *files = cJSON_CreateObject(), *m = NULL;
	kiln_err e = files ? archive_commit(pr) : KILN_ENOMEM;
	if (!e)
		e = kiln_mkdir_p(pr->out_dir);
	if (!e)
		e = kiln_promotion_header(&header, pr);
	if (!e)
		e = write_file(files, pr, "cu", pr->cu, strlen(pr->cu));
	if (!e)
		e = write_file(files, pr, "h", header, strlen(header));
	if (!e)
		e = write_file(files, pr, "fatbin", pr->fatbin->data, pr->fatbin->len);
	if (!e && pr->python)
		e = write_python(files, pr);
	if (!e)
		e = tag_all(pr);
	if (!e) {
		m = manifest(pr, files);
		files = NULL;
		text = cJSON_Print(m);
		e = text ? write_file(NULL, pr, "json", text, strlen(text)) : KILN_ENOMEM;
	}
	cJSON_Delete(files);
	free(header);
	cJSON_free(text);
	*out_manifest = m;
	return e;
}


/* ---- the workflow ---- */

/* o->archs, else every toolkit arch from sm_80 up, into res->archs / pr->archs. */
static kiln_err set_archs(kiln_promotion *pr, const kiln_promote_options *o)
{
	kiln_promote_result *res = pr->res;
	char all[200], *save = NULL;
	kiln_err e = KILN_OK;
	if (o->narchs > KILN_PROMOTE_MAX_ARCHS)
		return kiln_error_set(KILN_EINVAL, "more than %d architectures", KILN_PROMOTE_MAX_ARCHS);
	for (size_t i = 0; i < o->narchs; i++) {
		if (strlen(o->archs[i]) >= sizeof(res->archs[0]))
			return kiln_error_set(KILN_EINVAL, "architecture name too long: %.32s", o->archs[i]);
		snprintf(res->archs[res->narchs++], sizeof(res->archs[0]), "%s", o->archs[i]);
	}
	if (!o->narchs && !(e = kiln_compile_default_archs(all, sizeof(all))))
		for (char *a = strtok_r(all, ",", &save); a && res->narchs < KILN_PROMOTE_MAX_ARCHS; a = strtok_r(NULL, ",", &save))
			snprintf(res->archs[res->narchs++], sizeof(res->archs[0]), "%s", a);
	for (size_t i = 0; i < res->narchs; i++)
		pr->archs[pr->narchs++] = res->archs[i];
	return e;
}

/* The refusals before anything is built: not passed when recorded, the device-only rule. */
static kiln_err check_recorded(kiln_promotion *pr)
{
	kiln_promote_result *res = pr->res;
	const char *knob_names[64];
	size_t nknobs = 0;
	if (!(res->recorded_outcome = strdup(promote_jstr(pr->cand, "outcome", "?"))))
		return KILN_ENOMEM;
	if (strcmp(res->recorded_outcome, "passed") != 0) {
		res->outcome = KILN_PROMOTE_REFUSED_RECORDED;
		res->reason = strdup(promote_jstr(pr->cand, "failed_check", promote_jstr(pr->cand, "message", "")));
		return res->reason ? KILN_OK : KILN_ENOMEM;
	}
	for (size_t i = 0; i < pr->t->nknobs && nknobs < KILN_ARRAY_LEN(knob_names); i++)
		knob_names[nknobs++] = pr->t->knobs[i].name;
	if (kiln_promote_check_device_only(promote_jstr(pr->cand, "source", ""), knob_names, nknobs)) {
		res->outcome = KILN_PROMOTE_REFUSED_DEVICE_ONLY;
		res->reason = strdup(kiln_error_last());
		return res->reason ? KILN_OK : KILN_ENOMEM;
	}
	return KILN_OK;
}

static kiln_err result_new(kiln_promote_result **out)
{
	kiln_promote_result *r = calloc(1, sizeof(*r));
	if (r && (!(r->verdict = calloc(1, sizeof(kiln_verdict))) || !(r->bench = calloc(1, sizeof(kiln_verdict))))) {
		kiln_promote_result_free(r);
		r = NULL;
	}
	*out = r;
	return r ? KILN_OK : KILN_ENOMEM;
}

void kiln_promote_result_free(kiln_promote_result *r)
{
	if (!r)
		return;
	free(r->target);
	free(r->recorded_outcome);
	free(r->reason);
	free(r->verdict);
	free(r->bench);
	cJSON_Delete(r->manifest);
	free(r);
}

kiln_err kiln_promote(kiln_promote_result **out, const kiln_promote_options *o)
{
	kiln_promotion pr = {0};
	kiln_promote_result *res = NULL;
	kiln_err e;
	*out = NULL;
	if (!o->db || !o->workdir || !o->target || !o->out_dir || o->nseeds < 1)
		return kiln_error_set(KILN_EINVAL, "promote: db, workdir, target, out_dir and nseeds >= 1 are required");
	if ((e = result_new(&res)))
		return e;
	pr.res = res;
	pr.verdict = res->verdict;
	pr.bench = res->bench;
	pr.workdir = o->workdir;
	pr.out_dir = o->out_dir;
	pr.name = o->name ? o->name : o->target;
	pr.db = o->db;
	pr.threads = o->threads;
	pr.python = o->python;
	if (!(pr.tags = cJSON_CreateArray())) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((e = kiln_target_find(&pr.t, o->target, o->targets_dir)) || (e = choose(&pr, pr.t->name, o->candidate)))
		goto done;
	res->candidate_id = (int64_t)promote_jnum(pr.cand, "id");
	if (!(res->target = strdup(pr.t->name))) {
		e = KILN_ENOMEM;
		goto done;
	}
	if ((e = set_archs(&pr, o)) || (e = check_recorded(&pr)) || res->outcome != KILN_PROMOTE_DONE)
		goto done;
	/* the fatbin first: archs with the same PTX are verified once */
	if ((e = prepare(&pr)) || (e = kiln_promotion_cu(&pr.cu, &pr)) || (e = compile_fatbin(&pr)) ||
	    (e = reverify(&pr, o->nseeds)))
		goto done;
	snprintf(res->verdict_arch, sizeof(res->verdict_arch), "%s", pr.verdict_arch ? pr.verdict_arch : "");
	if (!pr.verdict->pass) {
		res->outcome = KILN_PROMOTE_REFUSED_VERIFY;
		goto done;
	}
	e = write_outputs(&pr, &res->manifest);
done:
	cJSON_Delete(pr.cand);
	cJSON_Delete(pr.tags);
	for (size_t i = 0; i < pr.ndefines; i++)
		free(pr.defines[i]);
	kiln_fatbin_free(pr.fatbin);
	free(pr.cu);
	kiln_plan_free(pr.plan);
	kiln_target_free(pr.t);
	if (e) {
		kiln_promote_result_free(res);
		return e;
	}
	*out = res;
	return KILN_OK;
}
