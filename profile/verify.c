/* profile: verification of a candidate. Compile, load, then run the input sets that
 * vplan.c plans (listed sizes x seeds with the regimes cycled, the unlisted size, the
 * size rules that break caps, the multi-step case) on a pool of threads, each with its
 * own emulator device: per set generate inputs, run the float64 reference, poison
 * outputs with a per-run random pattern, run the plan and judge by named checks in order
 * (launch faults map to bounds / initcheck / race / launch, then written,
 * inputs-unchanged, values); "nontrivial" runs last over every input set. The first
 * failing set in plan order decides the verdict, whichever thread finished first. */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "profile/profile_int.h"

/* One input set being run by one thread. */
typedef struct vctx {
	const kiln_verify_options *o;
	const kiln_target *t;
	kiln_verdict *v;           /* this set's own verdict */
	kiln_device *dev;          /* this thread's device and module */
	kiln_module *mod;
	kiln_env knobs;            /* knob values (launch expressions) */
	const kiln_vset *set;
	const double *scalars;     /* the current input set's scalar values */
	bool nontrivial;           /* some reference output differs from "did nothing" */
	bool reverse;              /* emu: this input set runs its blocks in reverse order */
	uint64_t fwd_instr;        /* emu: thread-instructions of the partner's forward run */
	double fwd_bytes;          /* and the bytes of its buffers (to scale to another size) */
	uint64_t instr;            /* this set's forward run: thread-instructions, bytes */
	double bytes;
	double best_ratio;         /* worst error / allowed over this set */
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

/* ---- tolerance ---- */

static double half_back(kiln_dtype dt, uint16_t h)
{
	return dt == KILN_BF16 ? kiln_bf16_to_f64(h) : kiln_f16_to_f64(h);
}

/* ref rounded to the output dtype: f16/bf16 to nearest even, f32 to float; other
 * dtypes as they are. An f32/f16/bf16 value past the dtype's range becomes +-Inf. */
static double round_to(kiln_dtype dt, double ref)
{
	switch (dt) {
	case KILN_BF16:
	case KILN_F16: return half_back(dt, dt == KILN_BF16 ? kiln_f64_to_bf16(ref) : kiln_f64_to_f16(ref));
	case KILN_F32: return (double)(float)ref;
	default: return ref;
	}
}

/* The half value at position `ord` of the dtype's number line (-max .. +max finite;
 * +0 and -0 are one point, 0), clamped to the finite values. */
static double half_at(kiln_dtype dt, long ord)
{
	long top = (dt == KILN_BF16 ? 0x7f80 : 0x7c00) - 1; /* the largest finite magnitude */
	long m = ord < 0 ? -ord : ord;
	m = m > top ? top : m;
	return half_back(dt, (uint16_t)(ord < 0 ? 0x8000 | m : m));
}

/* What rule "ulp" allows between the half value r (already rounded to the dtype) and a
 * result on the side of `toward`: the distance to the value `ulps` representable steps
 * from r on that side, counted on the number line (so a step across a power of two or
 * through zero is one step, whatever its size); a fractional ulps takes that fraction of
 * the next step. Steps past the largest finite value are the size of the last one. */
static double half_ulps_away(kiln_dtype dt, double r, double toward, double ulps)
{
	uint16_t h = dt == KILN_BF16 ? kiln_f64_to_bf16(r) : kiln_f64_to_f16(r);
	long top = (dt == KILN_BF16 ? 0x7f80 : 0x7c00) - 1, dir = toward < r ? -1 : 1;
	long ord = h & 0x8000 ? -(long)(h & 0x7fff) : (long)h;
	double n = floor(ulps < 2.0 * top ? ulps : 2.0 * top), frac = ulps - n;
	long to = ord + dir * (long)n, past = labs(to) > top ? labs(to) - top : 0;
	double last = fabs(half_at(dt, top) - half_at(dt, top - 1));
	double at = half_at(dt, to), next = labs(to + dir) > top ? last : fabs(half_at(dt, to + dir) - at);
	return fabs(at - r) + (double)past * last + frac * next;
}

/* err: |got - expected| as judged; allowed: what the tolerance permits. The reference is
 * compared after rounding to the output dtype where that overflows (a float64 1e40 is
 * +Inf in an f32 output). f16/bf16 outputs under rule "exact" (the default) or "ulp" must
 * equal the reference's round-to-nearest-even, or lie within `ulps` units of it (rule
 * ulp), or within the reference's slack of the float64 value itself (one ulp where that
 * value lies within fp32 error of a rounding midpoint: either neighbour, nothing
 * further). NaN rules: a NaN passes only where the reference is NaN; infinities must
 * match exactly, except that an Inf of the right sign passes where the tolerance band
 * itself reaches past the dtype's largest finite value. */
static bool within(const kiln_tolerance *tol, kiln_dtype dt, double got, double ref, double slack,
		   double *err, double *allowed)
{
	kiln_tol_rule rule = tol ? tol->rule : KILN_TOL_EXACT;
	bool half = (dt == KILN_BF16 || dt == KILN_F16) && rule != KILN_TOL_PLAIN;
	double exact = ref; /* the float64 value before any rounding */
	*allowed = slack;
	if (isfinite(ref)) {
		double r = round_to(dt, ref);
		if (isinf(r) || half)
			ref = r;
	}
	if (!isnan(ref) && !isinf(ref)) {
		if (half)
			*allowed = rule == KILN_TOL_ULP ? half_ulps_away(dt, ref, got, tol->ulps) : 0;
		else if (rule == KILN_TOL_PLAIN || rule == KILN_TOL_ULP)
			*allowed = tol->atol + tol->rtol * fabs(ref) + slack;
	}
	if (isnan(ref) || isnan(got) || isinf(ref) || isinf(got)) {
		bool ok = (isnan(ref) && isnan(got)) || (!isnan(ref) && got == ref) ||
			  (isinf(got) && isfinite(ref) && signbit(got) == signbit(ref) &&
			   isinf(round_to(dt, ref + copysign(half ? *allowed + slack : *allowed, ref))));
		*err = ok ? 0 : INFINITY;
		return ok;
	}
	*err = fabs(got - ref);
	if (half && *err > *allowed && slack > 0) {
		*err = fabs(got - exact);
		*allowed = slack;
	}
	return *err <= *allowed;
}

/* ---- one run ---- */

/* What running and judging one input set came to; a negative value is a kiln_err. */
typedef enum set_outcome {
	SET_PASSED = 0, /* ran, every check held */
	SET_FAILED = 1, /* a check failed: the verdict says which */
	SET_SPUN = 2,   /* a reverse-order set ran out of budget waiting: judge it forward */
} set_outcome;

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

/* Runs the plan once: SET_PASSED when it ran, SET_FAILED (verdict set), SET_SPUN, or a
 * kiln_err. */
static int run_plan(vctx *c, const kiln_env *env, const uint64_t *addr, uint32_t pat, const char *set)
{
	kiln_verdict *v = c->v;
	size_t failed = (size_t)-1;
	kiln_device_counters cnt;
	memset(&cnt, 0, sizeof(cnt));
	kiln_err e = kiln_plan_run(c->dev, c->mod, c->t, c->o->src.plan, env, c->scalars, addr, pat, &cnt, &failed);
	v->counters = cnt;
	v->thread_instructions += cnt.thread_instructions;
	if (!e)
		return SET_PASSED;
	if (e == KILN_EFAULT) {
		const kiln_device_fault *f = kiln_device_last_fault(c->dev);
		if (c->reverse && f->kind == KILN_FAULT_BUDGET)
			return SET_SPUN; /* waits on earlier blocks: judged on the forward order instead */
		const char *check = f->kind == KILN_FAULT_OOB || f->kind == KILN_FAULT_MISALIGNED ? "bounds"
				  : f->kind == KILN_FAULT_UNINIT ? "initcheck"
				  : f->kind == KILN_FAULT_RACE ? "race"
				  : f->kind == KILN_FAULT_DEADLOCK ? "deadlock" : "launch";
		fail(v, check, "%s: %s (input set %s)", kiln_fault_kind_name(f->kind), kiln_error_last(), set);
		v->unverifiable = f->kind == KILN_FAULT_UNSUPPORTED;
		return SET_FAILED;
	}
	if (e == KILN_EBUDGET) { /* scratch over the device-memory budget */
		fail(v, "resource-limit", "%s (input set %s)", kiln_error_last(), set);
		return SET_FAILED;
	}
	if (e == KILN_EINVAL || e == KILN_EOVERFLOW || e == KILN_ENOTFOUND || e == KILN_EUNSUPPORTED) {
		fail(v, "launch", "%s (input set %s)", kiln_error_last(), set);
		v->unverifiable = e == KILN_EUNSUPPORTED;
		return SET_FAILED;
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

/* Checks after a clean run: written, inputs-unchanged, values: SET_FAILED or SET_PASSED. */
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
				return SET_FAILED;
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
			return SET_FAILED;
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
				/* a passing element reports the error as judged (an Inf that is the
				 * reference's overflow is 0 off) */
				w_abs = ok ? err : isnan(g) != isnan(rv[i]) ? INFINITY : fabs(g - rv[i]);
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
		return SET_FAILED;
	}
	return 0;
}

kiln_err kiln_verify_outputs(kiln_verdict *out, const kiln_target *t, const kiln_inputs *in,
			     const kiln_refdata *ref, uint8_t **got, const char *where)
{
	kiln_verify_options o = KILN_VERIFY_OPTIONS_INIT;
	vctx c;
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	out->pass = true;
	out->worst_row = out->worst_col = -1;
	o.src.target = t;
	o.skip_written = true; /* outputs were not poisoned by verify: "written" cannot be told */
	c.o = &o;
	c.t = t;
	c.v = out;
	c.best_ratio = -1;
	int rc = judge(&c, in, ref, got, NULL, where ? where : "outside verification");
	return rc < 0 ? rc : 0;
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

/* ---- one input set ---- */

typedef struct setbufs {
	kiln_inputs *in;
	kiln_refdata *ref;
	uint64_t *addr;
	uint8_t **got, **unwritten;
} setbufs;

static void setbufs_free(vctx *c, setbufs *sb)
{
	for (size_t b = 0; sb->in && b < sb->in->n; b++) {
		if (sb->addr && sb->addr[b])
			kiln_device_mem_free(c->dev, sb->addr[b]);
		if (sb->got)
			free(sb->got[b]);
		if (sb->unwritten)
			free(sb->unwritten[b]);
	}
	free(sb->addr);
	free(sb->got);
	free(sb->unwritten);
	kiln_refdata_free(sb->ref);
	kiln_inputs_free(sb->in);
}

static int setbufs_alloc(vctx *c, setbufs *sb)
{
	kiln_inputs *in = sb->in;
	if (!(sb->addr = kiln_calloc(in->n, sizeof(*sb->addr))) || !(sb->got = kiln_calloc(in->n, sizeof(*sb->got))) ||
	    !(sb->unwritten = kiln_calloc(in->n, sizeof(*sb->unwritten))))
		return KILN_ENOMEM;
	for (size_t b = 0; b < in->n; b++) {
		int rc;
		if (!(sb->got[b] = kiln_malloc(in->bufs[b].bytes ? in->bufs[b].bytes : 1)))
			return KILN_ENOMEM;
		if ((rc = kiln_device_alloc(c->dev, &sb->addr[b], in->bufs[b].bytes ? in->bufs[b].bytes : 1)))
			return rc;
	}
	return 0;
}

/* written: elements still equal to the poison; a second run with the complement
 * pattern tells a legal value that happens to match from a never-written one. */
static int mark_unwritten(vctx *c, setbufs *sb, const kiln_env *env, uint32_t pat, const char *set)
{
	const kiln_inputs *in = sb->in;
	bool suspicious = false;
	int rc = 0;
	for (size_t b = 0; b < in->n; b++) {
		const kiln_hostbuf *hb = &in->bufs[b];
		free(sb->unwritten[b]);
		sb->unwritten[b] = NULL;
		if (hb->spec->role != KILN_ROLE_OUT || !hb->count)
			continue;
		size_t es = kiln_dtype_size(hb->spec->dtype);
		for (size_t i = 0; i < hb->count; i++)
			if (poison_like(sb->got[b], i * es, es, pat)) {
				if (!sb->unwritten[b] && !(sb->unwritten[b] = kiln_calloc(hb->count, 1)))
					return KILN_ENOMEM;
				sb->unwritten[b][i] = 1;
				suspicious = true;
			}
	}
	if (!suspicious || c->o->skip_written)
		return 0;
	uint32_t pat2 = ~pat;
	if ((rc = upload(c, in, sb->addr, pat2)) || (rc = run_plan(c, env, sb->addr, pat2, set)))
		return rc;
	for (size_t b = 0; b < in->n && !rc; b++) {
		if (!sb->unwritten[b])
			continue;
		size_t es = kiln_dtype_size(in->bufs[b].spec->dtype);
		uint8_t *tmp = kiln_malloc(in->bufs[b].bytes);
		if (!tmp)
			return KILN_ENOMEM;
		rc = kiln_device_read(c->dev, tmp, sb->addr[b], in->bufs[b].bytes);
		for (size_t i = 0; i < in->bufs[b].count && !rc; i++)
			if (sb->unwritten[b][i] && !poison_like(tmp, i * es, es, pat2))
				sb->unwritten[b][i] = 0;
		free(tmp);
	}
	return rc;
}

/* One run of the plan on the set as it stands: reference, upload, run, download,
 * written marks, judge: a set_outcome or a kiln_err. */
static int run_once(vctx *c, setbufs *sb, const kiln_env *env, const char *set, kiln_rng *prng)
{
	kiln_inputs *in = sb->in;
	int rc;
	kiln_refdata_free(sb->ref);
	sb->ref = NULL;
	c->scalars = in->scalars;
	if ((rc = kiln_reference_run(&sb->ref, c->t, in)))
		return rc;
	uint32_t pat = (uint32_t)kiln_rng_u64(prng);
	double bytes = 0;
	for (size_t b = 0; b < in->n; b++)
		bytes += (double)in->bufs[b].bytes;
	size_t elems = kiln_vplan_elems(c->t, &in->sizes);
	if (c->reverse && c->fwd_instr) /* a spinning block shows in a multiple of the work */
		kiln_device_emu_budget(c->dev, (uint64_t)(4.0 * (double)c->fwd_instr *
							  (bytes > c->fwd_bytes ? bytes / c->fwd_bytes : 1.0)) + 1000000);
	else if (elems != SIZE_MAX && elems > 100000) /* the big sets: room for ~1000 per element */
		kiln_device_emu_budget(c->dev, (uint64_t)elems * 1000 + 200000000ull);
	if ((rc = upload(c, in, sb->addr, pat)) || (rc = run_plan(c, env, sb->addr, pat, set)) ||
	    (rc = download(c, in, sb->addr, sb->got)) || (rc = mark_unwritten(c, sb, env, pat, set)))
		return rc;
	if (!c->reverse) {
		c->instr = c->v->counters.thread_instructions;
		c->bytes = bytes > 0 ? bytes : 1;
	}
	return judge(c, in, sb->ref, sb->got, sb->unwritten, set);
}

/* " (step=3, lr=0.001)" for multi-step step k. */
static void step_text(char *out, size_t n, const kiln_target *t, const kiln_inputs *in)
{
	size_t len = 0;
	out[0] = 0;
	for (size_t j = 0; j < t->multistep.nscalars && len + 1 < n; j++) {
		size_t s = t->multistep.scalar_index[j];
		int w = snprintf(out + len, n - len, "%s%s=%g", j ? ", " : "", t->scalars[s].name, in->scalars[s]);
		len += w > 0 ? (size_t)w : 0;
	}
}

/* One input set (every step of a multi-step one). Same return values as run_once. */
static int run_set(vctx *c, kiln_rng *prng)
{
	const kiln_vset *vs = c->set;
	const kiln_target *t = c->t;
	kiln_verdict *v = c->v;
	kiln_env env = vs->sizes;
	setbufs sb = {0};
	char set[512], base[400], sz[200];
	int rc = 0;
	for (size_t k = 0; k < c->knobs.n; k++)
		if ((rc = kiln_env_set(&env, c->knobs.names[k], c->knobs.values[k])))
			return rc;
	if (vs->sm_count > 0 && (rc = kiln_env_set(&env, "sm_count", vs->sm_count)))
		return rc;
	kiln_vplan_sizes_text(sz, sizeof(sz), &vs->sizes);
	snprintf(base, sizeof(base), "%s seed %llu%s%s%s%s", sz, (unsigned long long)vs->seed,
		 vs->regime >= 0 ? ", regime " : "", vs->regime >= 0 ? kiln_target_regime_name(t, vs->regime) : "",
		 vs->sm_count > 0 ? ", small sm_count" : "", c->reverse ? ", blocks in reverse order" : "");
	snprintf(set, sizeof(set), "%s", base);
	kiln_device_emu_schedule(c->dev, c->reverse, vs->seed); /* forward sets: interleaved, from the seed */
	if ((rc = kiln_inputs_generate_regime(&sb.in, t, &vs->sizes, vs->seed, vs->regime)) ||
	    (rc = setbufs_alloc(c, &sb)))
		goto done;
	size_t steps = vs->kind == KILN_VSET_MULTISTEP ? t->multistep.steps : 1;
	for (size_t k = 0; k < steps && !rc; k++) {
		if (vs->kind == KILN_VSET_MULTISTEP) {
			/* the kernel's state carries over: inout buffers start where it left them */
			for (size_t b = 0; k && b < sb.in->n; b++)
				if (sb.in->bufs[b].spec->role == KILN_ROLE_INOUT)
					memcpy(sb.in->bufs[b].data, sb.got[b], sb.in->bufs[b].bytes);
			if ((rc = kiln_inputs_step(sb.in, t, k)))
				break;
			char st[200];
			step_text(st, sizeof(st), t, sb.in);
			snprintf(set, sizeof(set), "%s, step %zu of %zu (%s)", base, k + 1, steps, st);
			v->input_step = (int)k + 1;
		}
		rc = run_once(c, &sb, &env, set, prng);
	}
done:
	kiln_device_emu_budget(c->dev, 0);
	if (rc < 0)
		kiln_error_wrap(rc, "verify %s (input set %s)", t->name, set);
	v->input_sizes = vs->sizes;
	v->input_seed = vs->seed;
	v->have_input = true;
	snprintf(v->input_regime, sizeof(v->input_regime), "%s", kiln_target_regime_name(t, vs->regime));
	snprintf(v->input_kind, sizeof(v->input_kind), "%s", kiln_vset_kind_name(vs->kind));
	v->input_sm_count = vs->sm_count;
	if (rc == SET_PASSED)
		v->input_step = 0;
	kiln_device_emu_printf(c->dev, v->device_printf, sizeof(v->device_printf));
	setbufs_free(c, &sb);
	return rc;
}

/* Reverse block order finds blocks that race through memory. A kernel whose blocks wait
 * for earlier ones (a decoupled look-back scan) spins that way, yet is correct on a GPU,
 * which starts blocks in order: such a set (out of its budget) is judged forward. */
static int verify_set(vctx *c, kiln_rng *prng)
{
	c->reverse = c->set->reverse;
	int rc = run_set(c, prng);
	if (rc == SET_SPUN) {
		c->reverse = false;
		memset(c->v, 0, sizeof(*c->v));
		c->v->pass = true;
		c->best_ratio = -1;
		rc = run_set(c, prng);
	}
	return rc;
}

/* ---- the pool: input sets in parallel, one device per thread ---- */

#define RC_PENDING 100
#define RC_RUNNING 101
#define RC_SKIPPED 102

typedef struct vpool {
	const kiln_verify_options *o;
	const kiln_target *t;
	const kiln_compiled *comp;
	const kiln_env *knobs;
	const kiln_vset *sets;
	size_t n;
	kiln_verdict *res;       /* per set */
	int *rc;                 /* per set: RC_* or the set's result */
	bool *nontrivial;
	double *ratio;
	uint64_t *instr;
	double *bytes;
	char (*err)[512];
	size_t *order;           /* execution order (pool_order) */
	size_t next;
	long stop;               /* lowest set index that failed or errored, -1 */
	uint64_t pattern_seed;
	pthread_mutex_t mu;
	pthread_cond_t cv;
} vpool;

typedef struct vworker {
	vpool *p;
	kiln_device *dev;        /* borrowed for worker 0, else owned */
	kiln_module *mod;
	bool own;
	kiln_err open_err;
} vworker;

static void run_one(vworker *w, size_t j, uint64_t fwd_instr, double fwd_bytes)
{
	vpool *p = w->p;
	vctx c;
	memset(&c, 0, sizeof(c));
	c.o = p->o;
	c.t = p->t;
	c.v = &p->res[j];
	c.dev = w->dev;
	c.mod = w->mod;
	c.knobs = *p->knobs;
	c.set = &p->sets[j];
	c.best_ratio = -1;
	c.fwd_instr = fwd_instr;
	c.fwd_bytes = fwd_bytes;
	c.v->pass = true;
	c.v->worst_row = c.v->worst_col = -1;
	kiln_rng prng;
	kiln_rng_seed(&prng, p->pattern_seed + 0x9e3779b97f4a7c15ull * (j + 1));
	int rc = verify_set(&c, &prng);
	pthread_mutex_lock(&p->mu);
	p->rc[j] = rc;
	p->nontrivial[j] = c.nontrivial;
	p->ratio[j] = c.best_ratio;
	p->instr[j] = c.instr;
	p->bytes[j] = c.bytes;
	if (rc < 0)
		snprintf(p->err[j], sizeof(p->err[j]), "%s", kiln_error_last());
	if (rc != 0 && (p->stop < 0 || (long)j < p->stop))
		p->stop = (long)j;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *arg)
{
	vworker *w = arg;
	vpool *p = w->p;
	if (w->own && ((w->open_err = kiln_device_emu_sibling(&w->dev, p->o->src.device)) ||
		       (w->open_err = kiln_device_module_load(w->dev, &w->mod, p->comp))))
		return NULL; /* the other threads take its sets */
	pthread_mutex_lock(&p->mu);
	while (p->next < p->n) {
		size_t j = p->order[p->next++];
		if (p->stop >= 0 && (long)j > p->stop) {
			p->rc[j] = RC_SKIPPED;
			continue;
		}
		long partner = p->sets[j].reverse ? p->sets[j].partner : -1;
		while (partner >= 0 && (p->rc[partner] == RC_PENDING || p->rc[partner] == RC_RUNNING))
			pthread_cond_wait(&p->cv, &p->mu);
		if (p->stop >= 0 && (long)j > p->stop) {
			p->rc[j] = RC_SKIPPED;
			continue;
		}
		uint64_t fi = partner >= 0 && p->rc[partner] == 0 ? p->instr[partner] : 0;
		double fb = partner >= 0 ? p->bytes[partner] : 0;
		p->rc[j] = RC_RUNNING;
		pthread_mutex_unlock(&p->mu);
		run_one(w, j, fi, fb);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

static size_t thread_count(const kiln_verify_options *o, size_t nsets)
{
	size_t n = o->threads ? o->threads : 1;
	const kiln_device *dev = o->src.device;
	if (kiln_device_info_get(dev)->kind != KILN_DEVICE_EMU || dev->rec) /* timing records one device */
		n = 1;
	return n < nsets ? n : nsets ? nsets : 1;
}

/* The order the workers take the sets in. Small sets (under 1/16 of the largest set's
 * elements) come first in plan order, forward before reverse, so a kernel wrong at a small
 * size fails before the large sets run. The large ones follow largest first, forward
 * before reverse (a reverse set waits on its forward partner), so the threads end
 * together instead of one running the last large set alone. The verdict does not depend
 * on this order: pool_merge reads the sets in plan order. */
static void pool_order(vpool *p)
{
	size_t *elems = kiln_calloc(p->n + 1, sizeof(size_t)), max = 0, k = 0;
	for (size_t j = 0; elems && j < p->n; j++) {
		elems[j] = kiln_vplan_elems(p->t, &p->sets[j].sizes);
		max = elems[j] > max ? elems[j] : max;
	}
	for (int big = 0; big < 2; big++)
		for (int rev = 0; rev < 2; rev++) {
			size_t from = k;
			for (size_t j = 0; j < p->n; j++)
				if (p->sets[j].reverse == (rev == 1) && (elems && elems[j] > max / 16) == (big == 1))
					p->order[k++] = j;
			for (size_t i = from + 1; big && i < k; i++) /* stable, largest first */
				for (size_t m = i; m > from && elems[p->order[m]] > elems[p->order[m - 1]]; m--) {
					size_t t = p->order[m];
					p->order[m] = p->order[m - 1];
					p->order[m - 1] = t;
				}
		}
	free(elems);
}

static kiln_err pool_run(vpool *p, kiln_module *mod)
{
	size_t nt = thread_count(p->o, p->n);
	vworker *w = kiln_calloc(nt, sizeof(*w));
	pthread_t *th = kiln_calloc(nt, sizeof(*th));
	bool *started = kiln_calloc(nt, sizeof(bool));
	kiln_err e = 0;
	if (!w || !th || !started) {
		e = KILN_ENOMEM;
		goto done;
	}
	pool_order(p);
	for (size_t i = 0; i < nt; i++) {
		w[i].p = p;
		w[i].own = i > 0;
	}
	w[0].dev = (kiln_device *)p->o->src.device;
	w[0].mod = mod;
	for (size_t i = 1; i < nt; i++)
		started[i] = pthread_create(&th[i], NULL, worker_main, &w[i]) == 0;
	worker_main(&w[0]);
	for (size_t i = 1; i < nt; i++)
		if (started[i])
			pthread_join(th[i], NULL);
done:
	for (size_t i = 1; w && i < nt; i++) {
		kiln_module_free(w[i].mod);
		kiln_device_free(w[i].dev);
	}
	free(w);
	free(th);
	free(started);
	return e;
}

/* Folds the per-set verdicts into out: the first set in plan order that failed decides;
 * on a pass, the worst error over every set (the first set in plan order on ties). */
static kiln_err pool_merge(kiln_verdict *out, const vpool *p, bool *nontrivial)
{
	long best = -1, last = -1;
	double best_ratio = -1;
	for (size_t j = 0; j < p->n; j++) {
		int rc = p->rc[j];
		if (rc == RC_SKIPPED || rc == RC_PENDING || rc == RC_RUNNING)
			continue;
		const kiln_verdict *r = &p->res[j];
		last = (long)j;
		out->sets++;
		out->runs += p->sets[j].kind == KILN_VSET_LISTED;
		out->thread_instructions += r->thread_instructions;
		for (size_t i = 0; i < r->nchecks_run; i++)
			add_check(out, r->checks_run[i]);
		if (rc != 0)
			continue;
		*nontrivial = *nontrivial || p->nontrivial[j];
		if (p->ratio[j] > best_ratio) {
			best_ratio = p->ratio[j];
			best = (long)j;
		}
	}
	long from = p->stop >= 0 ? p->stop : best >= 0 ? best : last;
	if (p->stop >= 0 && p->rc[p->stop] < 0)
		return kiln_error_set(p->rc[p->stop], "%s", p->err[p->stop]);
	if (from < 0)
		return 0;
	const kiln_verdict *r = &p->res[from];
	out->worst_abs = r->worst_abs;
	out->worst_rel = r->worst_rel;
	memcpy(out->worst_buffer, r->worst_buffer, sizeof(out->worst_buffer));
	out->worst_index = r->worst_index;
	out->worst_row = r->worst_row;
	out->worst_col = r->worst_col;
	out->input_sizes = r->input_sizes;
	out->input_seed = r->input_seed;
	out->have_input = r->have_input;
	memcpy(out->input_regime, r->input_regime, sizeof(out->input_regime));
	memcpy(out->input_kind, r->input_kind, sizeof(out->input_kind));
	out->input_step = r->input_step;
	out->input_sm_count = r->input_sm_count;
	memcpy(out->device_printf, r->device_printf, sizeof(out->device_printf));
	out->counters = p->res[p->stop >= 0 ? p->stop : last].counters;
	if (p->stop < 0)
		return 0;
	out->pass = false;
	out->unverifiable = r->unverifiable;
	memcpy(out->check, r->check, sizeof(out->check));
	snprintf(out->message, sizeof(out->message), "%.*s%s", (int)(sizeof(out->message) - 1 - strlen(p->sets[from].why)),
		 r->message, p->sets[from].why);
	out->mismatches = r->mismatches;
	memcpy(out->first, r->first, sizeof(out->first));
	out->nfirst = r->nfirst;
	return 0;
}

static kiln_err verify_sets(kiln_verdict *out, const kiln_verify_options *o, const kiln_env *knobs,
			    const kiln_compiled *comp, kiln_module *mod, bool *nontrivial)
{
	vpool p;
	kiln_err e = 0;
	memset(&p, 0, sizeof(p));
	p.o = o;
	p.t = o->src.target;
	p.comp = comp;
	p.knobs = knobs;
	p.stop = -1;
	p.pattern_seed = kiln_seed_fresh();
	kiln_vset *sets = NULL;
	if ((e = kiln_vplan_build(&sets, &p.n, o, o->src.target, o->src.plan, knobs, out->seeds, out->nseeds,
				  &out->extra_sizes)))
		return e;
	p.sets = sets;
	if (!(p.res = kiln_calloc(p.n + 1, sizeof(*p.res))) || !(p.rc = kiln_calloc(p.n + 1, sizeof(int))) ||
	    !(p.nontrivial = kiln_calloc(p.n + 1, sizeof(bool))) || !(p.ratio = kiln_calloc(p.n + 1, sizeof(double))) ||
	    !(p.instr = kiln_calloc(p.n + 1, sizeof(uint64_t))) || !(p.bytes = kiln_calloc(p.n + 1, sizeof(double))) ||
	    !(p.err = kiln_calloc(p.n + 1, sizeof(*p.err))) || !(p.order = kiln_calloc(p.n + 1, sizeof(size_t)))) {
		e = KILN_ENOMEM;
		goto done;
	}
	for (size_t j = 0; j < p.n; j++)
		p.rc[j] = RC_PENDING;
	pthread_mutex_init(&p.mu, NULL);
	pthread_cond_init(&p.cv, NULL);
	if (o->bench_size && o->progress && p.n) {
		char sz[200];
		kiln_vplan_sizes_text(sz, sizeof(sz), &sets[0].sizes);
		fprintf(o->progress, "verify: %s at the bench size %s on the emulator (this can take minutes)...\n",
			o->src.target->name, sz);
		fflush(o->progress);
	}
	if (!(e = pool_run(&p, mod)))
		e = pool_merge(out, &p, nontrivial);
	pthread_mutex_destroy(&p.mu);
	pthread_cond_destroy(&p.cv);
done:
	free(sets);
	free(p.res);
	free(p.rc);
	free(p.nontrivial);
	free(p.ratio);
	free(p.instr);
	free(p.bytes);
	free(p.err);
	free(p.order);
	return e;
}

static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

kiln_err kiln_verify(kiln_verdict *out, const kiln_verify_options *o)
{
	kiln_err e = 0;
	vctx c;
	kiln_knob_defs kd = {0};
	kiln_compiled *comp = NULL;
	double t0 = kiln_now_s(), cpu0 = cpu_now();
	memset(out, 0, sizeof(*out));
	memset(&c, 0, sizeof(c));
	out->worst_row = out->worst_col = -1;
	out->pass = true;
	if (!o || !o->src.target || !o->src.source || !o->src.plan || !o->src.device)
		return kiln_error_set(KILN_EINVAL, "verify: target, source, plan and device are required");
	c.o = o;
	c.t = o->src.target;
	c.v = out;
	c.dev = o->src.device;
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
	if (o->regime && *o->regime && strcmp(o->regime, "default") != 0 && kiln_target_regime_index(c.t, o->regime) < 0)
		return kiln_error_set(KILN_EINVAL, "verify: target %s has no regime \"%s\"", c.t->name, o->regime);
	if ((e = kiln_knobs_resolve(&kd, c.t, o->src.defines, o->src.ndefines, "verify")))
		goto done;
	/* compile */
	add_check(out, "compile");
	kiln_compile_options co;
	kiln_build_src_compile_options(&co, &o->src, &kd, o->arch ? o->arch : kiln_device_info_get(c.dev)->arch,
				       kiln_device_info_get(c.dev)->kind == KILN_DEVICE_CUDA);
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
	bool nontrivial = false;
	if ((e = verify_sets(out, o, &kd.knobs, comp, c.mod, &nontrivial)) || !out->pass)
		goto done;
	if (!o->skip_nontrivial && !o->bench_size) {
		add_check(out, "nontrivial");
		if (!nontrivial) {
			fail(out, "nontrivial", "target %s: every reference output is within tolerance of zeros / the unchanged inputs at every input set, so the inputs cannot tell a kernel that does nothing from a correct one (a target problem, not the kernel's)",
			     c.t->name);
			out->target_weak = true;
		}
	}
done:
	kiln_device_emu_reverse_blocks(c.dev, false);
	out->seconds = kiln_now_s() - t0;
	out->cpu_seconds = cpu_now() - cpu0;
	if (o->bench_size && o->progress && !e)
		fprintf(o->progress, "verify: %s at the bench size: %s in %.1f s\n", c.t->name,
			out->pass ? "PASS" : "FAIL", out->seconds);
	kiln_module_free(c.mod);
	kiln_compiled_free(comp);
	kiln_knob_defs_free(&kd);
	if (e == KILN_ENOMEM)
		kiln_error_set(e, "verify: out of memory");
	return e;
}

bool kiln_verify_bench_check_wanted(void)
{
	const char *v = getenv("KILN_BENCH_CHECK");
	return !(v && strcmp(v, "0") == 0);
}
