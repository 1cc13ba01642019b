/* profile: verification of a candidate. Compile, load, then for each verification size x
 * seed: generate inputs, run the float64 reference, poison outputs with a per-run random
 * pattern, run the plan and judge by named checks in order (launch faults map to bounds /
 * initcheck / race / launch, then written, inputs-unchanged, values); "nontrivial" runs
 * last over every input set. The first failing run decides the verdict. After the listed
 * sizes, one unlisted size drawn from the first seed (extra_size) catches kernels that
 * special-case the published verification sizes. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/profile_int.h"

#define MAX_DEFINES 64

typedef struct vctx {
	const kiln_verify_options *o;
	const kiln_target *t;
	kiln_verdict *v;
	kiln_device *dev;
	kiln_module *mod;
	kiln_env knobs;            /* knob values (launch expressions) */
	bool nontrivial;           /* some reference output differs from "did nothing" */
	bool reverse;              /* emu: this input set runs its blocks in reverse order */
	uint64_t fwd_instr;        /* emu: thread-instructions of the last forward-order run */
	double fwd_bytes;          /* and the bytes of its buffers (to scale to another size) */
	size_t forward_retries;    /* reverse-order sets that spun and were judged forward */
	double best_ratio;         /* worst error / allowed over passing runs */
} vctx;

static void add_check(kiln_verdict *v, const char *name)
{
	for (size_t i = 0; i < v->nchecks_run; i++)
		if (strcmp(v->checks_run[i], name) == 0)
			return;
	if (v->nchecks_run < KILN_VERIFY_MAX_CHECKS)
		snprintf(v->checks_run[v->nchecks_run++], sizeof(v->checks_run[0]), "%s", name);
}

static void fail(kiln_verdict *v, const char *check, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void fail(kiln_verdict *v, const char *check, const char *fmt, ...)
{
	va_list ap;
	v->pass = false;
	snprintf(v->check, sizeof(v->check), "%s", check);
	va_start(ap, fmt);
	vsnprintf(v->message, sizeof(v->message), fmt, ap);
	va_end(ap);
}

static void sizes_text(char *out, size_t n, const kiln_env *env)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t i = 0; i < env->n && len + 1 < n; i++) {
		int w = snprintf(out + len, n - len, "%s%s=%lld", i ? "," : "", env->names[i],
				 (long long)env->values[i]);
		if (w < 0)
			break;
		len += (size_t)w;
	}
}

/* ---- tolerance ---- */

static double half_back(kiln_dtype dt, uint16_t h)
{
	return dt == KILN_BF16 ? kiln_bf16_to_f64(h) : kiln_f16_to_f64(h);
}

/* err: |got - expected| as judged; allowed: what the tolerance permits. NaN rules:
 * a NaN passes only where the reference is NaN; infinities must match exactly. */
static bool within(const kiln_tolerance *tol, kiln_dtype dt, double got, double ref, double slack,
		   double *err, double *allowed)
{
	*allowed = slack;
	if (isnan(ref) || isnan(got) || isinf(ref) || isinf(got)) {
		bool ok = (isnan(ref) && isnan(got)) || (!isnan(ref) && got == ref);
		*err = ok ? 0 : INFINITY;
		return ok;
	}
	*err = fabs(got - ref);
	kiln_tol_rule rule = tol ? tol->rule : KILN_TOL_EXACT;
	if (rule == KILN_TOL_ULP && (dt == KILN_BF16 || dt == KILN_F16)) {
		uint16_t h = dt == KILN_BF16 ? kiln_f64_to_bf16(ref) : kiln_f64_to_f16(ref);
		double r = half_back(dt, h);
		uint16_t mag = (uint16_t)(h & 0x7fff);
		double ulp = isinf(r) ? 0 : fabs(half_back(dt, (uint16_t)(mag + 1)) - half_back(dt, mag));
		if (isinf(ulp) || ulp == 0)
			ulp = fabs(half_back(dt, mag) - half_back(dt, (uint16_t)(mag - 1)));
		double e2 = isinf(r) ? INFINITY : fabs(got - r);
		*allowed = tol->ulps * ulp + slack;
		if (e2 <= *allowed)
			return true;
		return *err <= slack;
	}
	if (rule == KILN_TOL_PLAIN || rule == KILN_TOL_ULP)
		*allowed = tol->atol + tol->rtol * fabs(ref) + slack;
	return *err <= *allowed;
}

/* ---- one run ---- */

static bool poison_like(const uint8_t *p, size_t off, size_t es, uint32_t pat)
{
	for (size_t k = 0; k < es; k++)
		if (p[off + k] != (uint8_t)(pat >> (8 * ((off + k) % 4))))
			return false;
	return true;
}

static kiln_err upload(vctx *c, const kiln_inputs *in, const uint64_t *addr, uint32_t pat)
{
	kiln_err e = 0;
	for (size_t b = 0; b < in->n && !e; b++) {
		const kiln_hostbuf *hb = &in->bufs[b];
		if (!hb->bytes)
			continue;
		if (hb->spec->role == KILN_ROLE_OUT)
			e = kiln_device_poison(c->dev, addr[b], hb->bytes, pat);
		else
			e = kiln_device_write(c->dev, addr[b], hb->data, hb->bytes);
	}
	return e;
}

static kiln_err download(vctx *c, const kiln_inputs *in, const uint64_t *addr, uint8_t **got)
{
	kiln_err e = 0;
	for (size_t b = 0; b < in->n && !e; b++)
		if (in->bufs[b].bytes)
			e = kiln_device_read(c->dev, got[b], addr[b], in->bufs[b].bytes);
	return e;
}

/* Runs the plan once. Returns 0 when it ran; 1 when it failed the verdict (set); <0 error. */
static int run_plan(vctx *c, const kiln_env *env, const uint64_t *addr, uint32_t pat, const char *set)
{
	kiln_verdict *v = c->v;
	size_t failed = (size_t)-1;
	kiln_device_counters cnt;
	memset(&cnt, 0, sizeof(cnt));
	kiln_err e = kiln_plan_run(c->dev, c->mod, c->t, c->o->plan, env, addr, pat, &cnt, &failed);
	v->counters = cnt;
	v->thread_instructions += cnt.thread_instructions;
	if (!e)
		return 0;
	if (e == KILN_EFAULT) {
		const kiln_device_fault *f = kiln_device_last_fault(c->dev);
		if (c->reverse && f->kind == KILN_FAULT_BUDGET)
			return 2; /* waits on earlier blocks: judged on the forward order instead */
		const char *check = f->kind == KILN_FAULT_OOB || f->kind == KILN_FAULT_MISALIGNED ? "bounds"
				  : f->kind == KILN_FAULT_UNINIT ? "initcheck"
				  : f->kind == KILN_FAULT_RACE ? "race"
				  : f->kind == KILN_FAULT_DEADLOCK ? "deadlock" : "launch";
		fail(v, check, "%s: %s (input set %s)", kiln_fault_kind_name(f->kind), kiln_error_last(), set);
		v->unverifiable = f->kind == KILN_FAULT_UNSUPPORTED;
		return 1;
	}
	if (e == KILN_EINVAL || e == KILN_EOVERFLOW || e == KILN_ENOTFOUND || e == KILN_EUNSUPPORTED) {
		fail(v, "launch", "%s (input set %s)", kiln_error_last(), set);
		v->unverifiable = e == KILN_EUNSUPPORTED;
		return 1;
	}
	return e;
}

static void locate(vctx *c, const kiln_buffer_spec *bs, const kiln_env *env, size_t idx)
{
	kiln_verdict *v = c->v;
	v->worst_row = v->worst_col = -1;
	int64_t cols;
	if (bs->ndim == 2 && !kiln_expr_eval(&cols, bs->shape[1], env, "shape") && cols > 0) {
		v->worst_row = (int64_t)idx / cols;
		v->worst_col = (int64_t)idx % cols;
	}
	kiln_error_clear();
}

/* Checks after a clean run: written, inputs-unchanged, values. 1 = failed, 0 = ok. */
static int judge(vctx *c, const kiln_inputs *in, const kiln_refdata *ref, uint8_t **got,
		 uint8_t **unwritten, const char *set)
{
	kiln_verdict *v = c->v;
	const kiln_target *t = c->t;
	if (!c->o->skip_written) {
		add_check(v, "written");
		for (size_t b = 0; b < in->n; b++) {
			if (!unwritten[b])
				continue;
			size_t es = kiln_dtype_size(in->bufs[b].spec->dtype), cnt = 0, first = 0;
			for (size_t i = 0; i < in->bufs[b].count; i++)
				if (unwritten[b][i] && !cnt++)
					first = i;
			if (cnt) {
				(void)es;
				snprintf(v->worst_buffer, sizeof(v->worst_buffer), "%s", in->bufs[b].spec->name);
				v->worst_index = first;
				v->mismatches = cnt;
				locate(c, in->bufs[b].spec, &in->sizes, first);
				fail(v, "written", "output '%s': %zu of %zu elements never written (first at index %zu; input set %s)",
				     in->bufs[b].spec->name, cnt, in->bufs[b].count, first, set);
				return 1;
			}
		}
	}
	if (!c->o->skip_inputs_unchanged) {
		add_check(v, "inputs-unchanged");
		for (size_t b = 0; b < in->n; b++) {
			const kiln_hostbuf *hb = &in->bufs[b];
			if (hb->spec->role != KILN_ROLE_IN || !hb->bytes || memcmp(hb->data, got[b], hb->bytes) == 0)
				continue;
			size_t es = kiln_dtype_size(hb->spec->dtype), cnt = 0, first = 0;
			for (size_t i = 0; i < hb->count; i++)
				if (memcmp((const uint8_t *)hb->data + i * es, got[b] + i * es, es) && !cnt++)
					first = i;
			snprintf(v->worst_buffer, sizeof(v->worst_buffer), "%s", hb->spec->name);
			v->worst_index = first;
			v->mismatches = cnt;
			locate(c, hb->spec, &in->sizes, first);
			fail(v, "inputs-unchanged", "input '%s' was modified at %zu of %zu elements (first at index %zu: was %g, now %g; input set %s)",
			     hb->spec->name, cnt, hb->count, first, kiln_dtype_load(hb->spec->dtype, hb->data, first),
			     kiln_dtype_load(hb->spec->dtype, got[b], first), set);
			return 1;
		}
	}
	add_check(v, "values");
	double worst_ratio = -1, w_abs = 0, w_rel = 0;
	size_t w_buf = 0, w_idx = 0, bad = 0, bad_buf = 0;
	v->nfirst = 0;
	for (size_t b = 0; b < in->n; b++) {
		const kiln_hostbuf *hb = &in->bufs[b];
		if (hb->spec->role == KILN_ROLE_IN)
			continue;
		const kiln_tolerance *tol = kiln_target_tolerance(t, hb->spec->name);
		const double *rv = ref->values[b], *sl = ref->slack[b];
		size_t bad_here = 0;
		for (size_t i = 0; i < hb->count; i++) {
			double g = kiln_dtype_load(hb->spec->dtype, got[b], i), err, allowed;
			double s = sl ? sl[i] : 0;
			bool ok = within(tol, hb->spec->dtype, g, rv[i], s, &err, &allowed);
			double ratio = ok ? (allowed > 0 ? err / allowed : 0) : (allowed > 0 ? err / allowed : INFINITY);
			if (!ok) {
				bad++;
				bad_here++;
				if (v->nfirst < 5) {
					kiln_mismatch *m = &v->first[v->nfirst++];
					snprintf(m->buffer, sizeof(m->buffer), "%s", hb->spec->name);
					m->index = i;
					m->got = g;
					m->expected = rv[i];
				}
			}
			if (ratio > worst_ratio || (isnan(ratio) && worst_ratio < INFINITY)) {
				worst_ratio = isnan(ratio) ? INFINITY : ratio;
				w_abs = isnan(g) != isnan(rv[i]) ? INFINITY : fabs(g - rv[i]);
				if (isnan(w_abs))
					w_abs = 0;
				w_rel = rv[i] != 0 ? w_abs / fabs(rv[i]) : w_abs;
				w_buf = b;
				w_idx = i;
			}
		}
		if (bad_here && bad == bad_here)
			bad_buf = b;
		/* nontrivial: would "did nothing" (zeros / the initial values) pass here? */
		for (size_t i = 0; i < hb->count && !c->nontrivial; i++) {
			double base = hb->spec->role == KILN_ROLE_OUT ? 0 : kiln_dtype_load(hb->spec->dtype, hb->data, i);
			double err, allowed;
			if (!within(tol, hb->spec->dtype, base, rv[i], sl ? sl[i] : 0, &err, &allowed))
				c->nontrivial = true;
		}
	}
	if (bad || worst_ratio > c->best_ratio) {
		c->best_ratio = worst_ratio;
		v->worst_abs = w_abs;
		v->worst_rel = w_rel;
		snprintf(v->worst_buffer, sizeof(v->worst_buffer), "%s", in->bufs[w_buf].spec->name);
		v->worst_index = w_idx;
		locate(c, in->bufs[w_buf].spec, &in->sizes, w_idx);
		v->input_sizes = in->sizes;
		v->input_seed = in->seed;
		v->have_input = true;
	}
	if (bad) {
		const kiln_hostbuf *hb = &in->bufs[bad_buf];
		v->mismatches = bad;
		fail(v, "values", "%zu output element(s) out of tolerance (first in '%s'); worst '%s'[%zu] got %.9g expected %.9g (abs %.3g, rel %.3g; input set %s)",
		     bad, hb->spec->name, v->worst_buffer, v->worst_index,
		     kiln_dtype_load(in->bufs[w_buf].spec->dtype, got[w_buf], w_idx), ref->values[w_buf][w_idx],
		     v->worst_abs, v->worst_rel, set);
		return 1;
	}
	return 0;
}

kiln_err kiln_verify_outputs(kiln_verdict *out, const kiln_target *t, const kiln_inputs *in,
			     const kiln_refdata *ref, uint8_t **got, const char *where)
{
	kiln_verify_options o = {0};
	vctx c;
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	out->pass = true;
	out->worst_row = out->worst_col = -1;
	o.target = t;
	o.skip_written = true; /* outputs were not poisoned by verify: "written" cannot be told */
	c.o = &o;
	c.t = t;
	c.v = out;
	c.best_ratio = -1;
	int rc = judge(&c, in, ref, got, NULL, where ? where : "outside verification");
	return rc < 0 ? rc : 0;
}

/* One (sizes, seed) input set. 1 = the verdict failed, 0 = passed, <0 error. */
static int verify_one(vctx *c, const kiln_env *size_env, uint64_t seed, kiln_rng *prng)
{
	kiln_verdict *v = c->v;
	const kiln_target *t = c->t;
	kiln_env sizes = *size_env, env;
	kiln_inputs *in = NULL;
	kiln_refdata *ref = NULL;
	uint64_t *addr = NULL;
	uint8_t **got = NULL, **unwritten = NULL;
	char set[256], sz[200];
	int rc = 0;
	kiln_err e;
	env = sizes;
	for (size_t k = 0; k < c->knobs.n; k++)
		if ((e = kiln_env_set(&env, c->knobs.names[k], c->knobs.values[k])))
			return e;
	sizes_text(sz, sizeof(sz), &sizes);
	snprintf(set, sizeof(set), "%s seed %llu%s", sz, (unsigned long long)seed,
		 c->reverse ? ", blocks in reverse order" : "");
	kiln_device_emu_schedule(c->dev, c->reverse, seed); /* forward sets: interleaved, from the seed */
	if ((e = kiln_inputs_generate(&in, t, &sizes, seed)) || (e = kiln_reference_run(&ref, t, in))) {
		rc = e;
		goto done;
	}
	rc = KILN_ENOMEM;
	if (!(addr = kiln_calloc(in->n, sizeof(*addr))) || !(got = kiln_calloc(in->n, sizeof(*got))) ||
	    !(unwritten = kiln_calloc(in->n, sizeof(*unwritten))))
		goto done;
	for (size_t b = 0; b < in->n; b++) {
		if (!(got[b] = kiln_malloc(in->bufs[b].bytes ? in->bufs[b].bytes : 1)))
			goto done;
		if ((rc = kiln_device_alloc(c->dev, &addr[b], in->bufs[b].bytes ? in->bufs[b].bytes : 1)))
			goto done;
	}
	uint32_t pat = (uint32_t)kiln_rng_u64(prng);
	double bytes = 0;
	for (size_t b = 0; b < in->n; b++)
		bytes += (double)in->bufs[b].bytes;
	if (c->reverse && c->fwd_instr) /* a spinning block shows in a multiple of the work */
		kiln_device_emu_budget(c->dev, (uint64_t)(4.0 * (double)c->fwd_instr *
							  (bytes > c->fwd_bytes ? bytes / c->fwd_bytes : 1.0)) + 1000000);
	if ((rc = upload(c, in, addr, pat)) || (rc = run_plan(c, &env, addr, pat, set)) ||
	    (rc = download(c, in, addr, got)))
		goto done;
	/* written: elements still equal to the poison; a second run with the complement
	 * pattern tells a legal value that happens to match from a never-written one. */
	bool suspicious = false;
	for (size_t b = 0; b < in->n; b++) {
		const kiln_hostbuf *hb = &in->bufs[b];
		if (hb->spec->role != KILN_ROLE_OUT || !hb->count)
			continue;
		size_t es = kiln_dtype_size(hb->spec->dtype);
		for (size_t i = 0; i < hb->count; i++)
			if (poison_like(got[b], i * es, es, pat)) {
				if (!unwritten[b] && !(unwritten[b] = kiln_calloc(hb->count, 1))) {
					rc = KILN_ENOMEM;
					goto done;
				}
				unwritten[b][i] = 1;
				suspicious = true;
			}
	}
	if (suspicious && !c->o->skip_written) {
		uint32_t pat2 = ~pat;
		uint8_t *tmp = NULL;
		if ((rc = upload(c, in, addr, pat2)) || (rc = run_plan(c, &env, addr, pat2, set)))
			goto done;
		for (size_t b = 0; b < in->n && !rc; b++) {
			if (!unwritten[b])
				continue;
			size_t es = kiln_dtype_size(in->bufs[b].spec->dtype);
			if (!(tmp = kiln_malloc(in->bufs[b].bytes))) {
				rc = KILN_ENOMEM;
				goto done;
			}
			rc = kiln_device_read(c->dev, tmp, addr[b], in->bufs[b].bytes);
			for (size_t i = 0; i < in->bufs[b].count && !rc; i++)
				if (unwritten[b][i] && !poison_like(tmp, i * es, es, pat2))
					unwritten[b][i] = 0;
			free(tmp);
		}
		if (rc)
			goto done;
	}
	if (!c->reverse) {
		c->fwd_instr = v->counters.thread_instructions;
		c->fwd_bytes = bytes > 0 ? bytes : 1;
	}
	rc = judge(c, in, ref, got, unwritten, set);
	if (rc == 1) {
		v->input_sizes = in->sizes;
		v->input_seed = seed;
		v->have_input = true;
	}
done:
	kiln_device_emu_budget(c->dev, 0);
	if (rc < 0)
		kiln_error_wrap(rc, "verify %s (input set %s)", t->name, set);
	for (size_t b = 0; in && b < in->n; b++) {
		if (addr && addr[b])
			kiln_device_mem_free(c->dev, addr[b]);
		if (got)
			free(got[b]);
		if (unwritten)
			free(unwritten[b]);
	}
	free(addr);
	free(got);
	free(unwritten);
	kiln_refdata_free(ref);
	kiln_inputs_free(in);
	return rc;
}

/* Reverse block order finds blocks that race through memory. A kernel whose blocks wait
 * for earlier ones (a decoupled look-back scan) spins that way, yet is correct on a GPU,
 * which starts blocks in order: such a set (out of its budget) is judged forward. */
static int verify_set(vctx *c, const kiln_env *sizes, uint64_t seed, kiln_rng *prng, bool reverse)
{
	c->reverse = reverse;
	int rc = verify_one(c, sizes, seed, prng);
	if (rc == 2) {
		c->reverse = false;
		c->forward_retries++;
		rc = verify_one(c, sizes, seed, prng);
	}
	return rc;
}

/* A kernel that reads the clocks can behave differently on every run and GPU: a
 * warning the search shows, whatever the verdict. */
static void clock_warnings(kiln_verdict *v, const kiln_compiled *comp)
{
	const char *p = comp->ptx;
	bool timer = p && strstr(p, "%globaltimer"), clk = p && strstr(p, "%clock");
	v->warnings[0] = 0;
	if (timer || clk)
		snprintf(v->warnings, sizeof(v->warnings),
			 "reads %s: results must not depend on timing (the emulator models time, a GPU varies it)",
			 timer && clk ? "%clock and %globaltimer" : timer ? "%globaltimer" : "%clock");
}

/* ---- the unlisted extra size ----
 * target.json publishes its verification sizes, so a kernel can special-case them or do
 * only the work they reach. Each verification therefore also runs one size nobody listed:
 * every symbol that has larger bench sizes goes past its largest verification value (by
 * up to a quarter, at least 1, never past the bench maximum); the others take an
 * unlisted value inside their verification range. The draw keeps the total elements
 * within 1.5x (+1024) of the largest listed size so the run stays cheap. */

static size_t total_elems(const kiln_target *t, const kiln_env *sizes)
{
	size_t total = 0, n;
	for (size_t b = 0; b < t->nbuffers; b++) {
		if (kiln_target_count(&n, t, &t->buffers[b], sizes))
			return SIZE_MAX;
		total += n;
	}
	return total;
}

static int64_t draw_symbol(const kiln_symbol *s, kiln_rng *r)
{
	int64_t lo = INT64_MAX, hi = 0, bmax = 0;
	for (size_t i = 0; i < s->nverify; i++) {
		lo = s->verify[i] < lo ? s->verify[i] : lo;
		hi = s->verify[i] > hi ? s->verify[i] : hi;
	}
	for (size_t i = 0; i < s->nbench; i++)
		bmax = s->bench[i] > bmax ? s->bench[i] : bmax;
	if (bmax > hi) {
		int64_t top = hi + (hi / 4 > 1 ? hi / 4 : 1);
		top = top < bmax ? top : bmax;
		return hi + 1 + (int64_t)kiln_rng_below(r, (uint64_t)(top - hi));
	}
	int64_t x = lo;
	for (int tries = 0; tries < 16; tries++) {
		x = lo + (int64_t)kiln_rng_below(r, (uint64_t)(hi - lo + 1));
		bool listed = false;
		for (size_t i = 0; i < s->nverify; i++)
			listed = listed || s->verify[i] == x;
		if (!listed)
			break;
	}
	return x;
}

/* Fills out with the extra size drawn from seed; false when none fits the budget. */
static bool extra_size(kiln_env *out, const kiln_target *t, uint64_t seed)
{
	size_t most = 0;
	kiln_env env;
	kiln_rng r;
	for (size_t i = 0; i < t->nverify_sizes; i++) {
		size_t n = kiln_target_sizes(&env, t, false, i) ? SIZE_MAX : total_elems(t, &env);
		if (n == SIZE_MAX)
			return false;
		most = n > most ? n : most;
	}
	kiln_rng_seed(&r, seed ^ 0x6b696c6e65787472ull); /* "kilnextr": its own stream */
	for (int tries = 0; tries < 64; tries++) {
		kiln_env_init(out);
		for (size_t i = 0; i < t->nsymbols; i++)
			if (kiln_env_set(out, t->symbols[i].name, draw_symbol(&t->symbols[i], &r)))
				return false;
		size_t n = total_elems(t, out);
		if (n != SIZE_MAX && n <= most + most / 2 + 1024)
			return true;
	}
	kiln_error_clear();
	kiln_env_init(out);
	return false;
}

/* Knob values: -D NAME=V for knobs; knobs not given take their first listed value. */
static kiln_err knob_env(vctx *c, char **defs, size_t *ndefs)
{
	const kiln_verify_options *o = c->o;
	kiln_err e = 0;
	kiln_env_init(&c->knobs);
	*ndefs = 0;
	if (o->ndefines + c->t->nknobs > MAX_DEFINES)
		return kiln_error_set(KILN_EINVAL, "verify: at most %d defines", MAX_DEFINES);
	for (size_t i = 0; i < o->ndefines; i++) {
		const char *d = o->defines[i], *eq = strchr(d, '=');
		if (!(defs[(*ndefs)++] = kiln_strdup(d)))
			return KILN_ENOMEM;
		if (!eq)
			continue;
		char name[KILN_NAME_MAX];
		snprintf(name, sizeof(name), "%.*s", (int)(eq - d), d);
		for (size_t k = 0; k < c->t->nknobs; k++)
			if (strcmp(c->t->knobs[k].name, name) == 0) {
				char *end = NULL;
				long long val = strtoll(eq + 1, &end, 0);
				if (!eq[1] || *end)
					return kiln_error_set(KILN_EINVAL, "define %s: knob %s needs an integer value", d, name);
				if ((e = kiln_env_set(&c->knobs, name, val)))
					return e;
			}
	}
	for (size_t k = 0; k < c->t->nknobs; k++) {
		int64_t dummy;
		const kiln_knob *kn = &c->t->knobs[k];
		if (kiln_env_get(&c->knobs, kn->name, &dummy) || !kn->n)
			continue;
		if ((e = kiln_env_set(&c->knobs, kn->name, kn->values[0])))
			return e;
		if (!(defs[(*ndefs)++] = kiln_asprintf("%s=%lld", kn->name, (long long)kn->values[0])))
			return KILN_ENOMEM;
	}
	return 0;
}

kiln_err kiln_verify(kiln_verdict *out, const kiln_verify_options *o)
{
	kiln_err e = 0;
	vctx c;
	char *defs[MAX_DEFINES] = {0};
	size_t ndefs = 0;
	kiln_compiled *comp = NULL;
	double t0 = kiln_now_s();
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	out->worst_row = out->worst_col = -1;
	out->pass = true;
	if (!o || !o->target || !o->source || !o->plan || !o->device)
		return kiln_error_set(KILN_EINVAL, "verify: target, source, plan and device are required");
	c.o = o;
	c.t = o->target;
	c.v = out;
	c.dev = o->device;
	c.best_ratio = -1;
	/* seeds */
	if (o->seeds && o->nseeds_given) {
		if (o->nseeds_given > KILN_VERIFY_MAX_SEEDS)
			return kiln_error_set(KILN_EINVAL, "verify: at most %d seeds", KILN_VERIFY_MAX_SEEDS);
		memcpy(out->seeds, o->seeds, o->nseeds_given * sizeof(uint64_t));
		out->nseeds = o->nseeds_given;
	} else {
		size_t k = o->nseeds ? o->nseeds : 3;
		if (k > KILN_VERIFY_MAX_SEEDS)
			return kiln_error_set(KILN_EINVAL, "verify: at most %d seeds", KILN_VERIFY_MAX_SEEDS);
		for (size_t i = 0; i < k; i++)
			out->seeds[i] = kiln_seed_fresh();
		out->nseeds = k;
	}
	for (size_t i = 0; i < o->nsizes; i++)
		if (!o->sizes || o->sizes[i] >= c.t->nverify_sizes)
			return kiln_error_set(KILN_EINVAL, "verify: size index %zu is out of range (target %s has %zu verification sizes)",
					      o->sizes ? o->sizes[i] : 0, c.t->name, c.t->nverify_sizes);
	if ((e = knob_env(&c, defs, &ndefs)))
		goto done;
	/* compile */
	add_check(out, "compile");
	kiln_compile_options co = KILN_COMPILE_OPTIONS_INIT;
	co.source = o->source;
	co.name = o->source_name ? o->source_name : "kernel.cu";
	co.arch = kiln_device_info_get(c.dev)->arch;
	co.flags = (const char *const *)o->plan->nvrtc_flags;
	co.nflags = o->plan->nflags;
	co.defines = (const char *const *)defs;
	co.ndefines = ndefs;
	co.want_cubin = kiln_device_info_get(c.dev)->kind == KILN_DEVICE_CUDA;
	co.cache_dir = o->cache_dir;
	if ((e = kiln_compile(&comp, &co)))
		goto done;
	if (!comp->ok) {
		const char *log = comp->log ? comp->log : "";
		fail(out, "compile", "compile error: %.500s", log);
		for (char *p = out->message; *p; p++)
			if (*p == '\n')
				*p = ' ';
		goto done;
	}
	add_check(out, "launch");
	clock_warnings(out, comp);
	e = kiln_device_module_load(c.dev, &c.mod, comp);
	if (e == KILN_EUNSUPPORTED) {
		fail(out, "launch", "%s", kiln_error_last());
		out->unverifiable = true;
		e = 0;
		goto done;
	}
	if (e)
		goto done;
	if (kiln_device_info_get(c.dev)->kind == KILN_DEVICE_EMU) {
		add_check(out, "bounds");
		add_check(out, "initcheck");
		add_check(out, "race");
	}
	kiln_rng prng;
	kiln_rng_seed(&prng, kiln_seed_fresh());
	size_t nsz = o->nsizes ? o->nsizes : c.t->nverify_sizes;
	for (size_t si = 0; si < nsz; si++) {
		kiln_env sizes;
		if ((e = kiln_target_sizes(&sizes, c.t, false, o->nsizes ? o->sizes[si] : si)))
			goto done;
		for (size_t k = 0; k < out->nseeds; k++) {
			/* every other input set runs the blocks in reverse (emu): a kernel whose
			 * blocks wait on each other through memory passes one order only */
			int rc = verify_set(&c, &sizes, out->seeds[k], &prng, k % 2 == 1);
			out->runs++;
			if (rc < 0) {
				e = rc;
				goto done;
			}
			if (rc == 1)
				goto done;
		}
	}
	/* after the listed sizes pass: one unlisted size (not counted in runs) */
	if (!o->nsizes && !o->no_extra_size && extra_size(&out->extra_sizes, c.t, out->seeds[0])) {
		int rc = verify_set(&c, &out->extra_sizes, out->seeds[0], &prng, true);
		if (rc < 0) {
			e = rc;
			goto done;
		}
		if (rc == 1) {
			char sz[200];
			sizes_text(sz, sizeof(sz), &out->extra_sizes);
			size_t n = strlen(out->message);
			snprintf(out->message + n, sizeof(out->message) - n,
				 " [at the unlisted size %s: the kernel handles the listed verification sizes only]", sz);
			goto done;
		}
	}
	if (!o->skip_nontrivial) {
		add_check(out, "nontrivial");
		if (!c.nontrivial) {
			fail(out, "nontrivial", "target %s: every reference output is within tolerance of zeros / the unchanged inputs at every input set, so the inputs cannot tell a kernel that does nothing from a correct one (a target problem, not the kernel's)",
			     c.t->name);
			out->target_weak = true;
		}
	}
done:
	kiln_device_emu_reverse_blocks(c.dev, false);
	out->seconds = kiln_now_s() - t0;
	kiln_module_free(c.mod);
	kiln_compiled_free(comp);
	for (size_t i = 0; i < ndefs; i++)
		free(defs[i]);
	if (e == KILN_ENOMEM)
		kiln_error_set(e, "verify: out of memory");
	return e;
}
