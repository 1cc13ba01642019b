/* exec: the interpreter. Blocks run in blockIdx order (x fastest); inside a block each
 * warp runs in lockstep until it reaches a barrier or exits, then the next warp runs.
 * Divergence: the lanes at the lowest PC run first (others are parked with their own
 * PC), which reconverges structured control flow without a CFG analysis. Registers are
 * [reg][32 lanes] of uint64_t; predicates are 32-bit lane masks. Arithmetic follows PTX
 * semantics without touching the host FPU state (no fesetround, no FTZ/DAZ). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/emu/emu_int.h"

#define FULL 0xFFFFFFFFu
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;
#define LANES(mask, ...) do { uint32_t m_ = (mask); \
	if (m_ == FULL) { for (int l = 0; l < 32; l++) { __VA_ARGS__; } } \
	else { for (int l = 0; l < 32; l++) if (m_ >> l & 1) { __VA_ARGS__; } } } while (0)

/* ---------------------------------------------------------------- bits */
static inline float F(uint64_t v) { uint32_t u = (uint32_t)v; float f; memcpy(&f, &u, 4); return f; }
static inline uint64_t FB(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline double DD(uint64_t v) { double d; memcpy(&d, &v, 8); return d; }
static inline uint64_t DB(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }
static inline float ftzf(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7F800000u) == 0)
		u &= 0x80000000u;
	memcpy(&f, &u, 4);
	return f;
}
static inline double ftzd(double d) { return fabs(d) < 2.2250738585072014e-308 ? copysign(0.0, d) : d; }
static inline uint64_t sext(uint64_t v, uint32_t bytes)
{
	if (bytes >= 8)
		return v;
	uint64_t sb = 1ull << (bytes * 8 - 1);
	v &= (sb << 1) - 1;
	return (v ^ sb) - sb;
}
static inline uint64_t zext(uint64_t v, uint32_t bytes)
{
	return bytes >= 8 ? v : v & ((1ull << (bytes * 8)) - 1);
}

static const uint8_t tsize[EMU_TYPE_COUNT] = {
	[EMU_PRED] = 1, [EMU_B8] = 1, [EMU_B16] = 2, [EMU_B32] = 4, [EMU_B64] = 8, [EMU_B128] = 16,
	[EMU_U8] = 1, [EMU_U16] = 2, [EMU_U32] = 4, [EMU_U64] = 8, [EMU_S8] = 1, [EMU_S16] = 2,
	[EMU_S32] = 4, [EMU_S64] = 8, [EMU_F16] = 2, [EMU_F16X2] = 4, [EMU_BF16] = 2,
	[EMU_BF16X2] = 4, [EMU_F32] = 4, [EMU_F64] = 8,
};
static inline bool tsigned(uint8_t t) { return t == EMU_S8 || t == EMU_S16 || t == EMU_S32 || t == EMU_S64; }
static inline bool tfloat(uint8_t t) { return t >= EMU_F16 && t <= EMU_F64; }

/* ---------------------------------------------------------------- rounding
 * round_fmt: x rounded to a binary format with p significand bits and normal exponents
 * [emin, emax] (subnormals included), in mode rnd; exact scaling by powers of two plus
 * rint/trunc/floor/ceil, so it is correct for any double input. */
static double round_fmt(double x, int p, int emin, int emax, int rnd)
{
	if (x == 0 || !isfinite(x))
		return x;
	int e;
	frexp(x, &e);
	int E = e - 1;
	if (E < emin)
		E = emin;
	double q = ldexp(1.0, E - (p - 1));
	double y = x / q;
	switch (rnd) {
	case EMU_RZ: case EMU_RZI: y = trunc(y); break;
	case EMU_RM: case EMU_RMI: y = floor(y); break;
	case EMU_RP: case EMU_RPI: y = ceil(y); break;
	default: y = nearbyint(y); break;
	}
	double r = y * q;
	double maxf = (2.0 - ldexp(1.0, 1 - p)) * ldexp(1.0, emax);
	if (fabs(r) > maxf) {
		bool pos = x > 0;
		switch (rnd) {
		case EMU_RZ: case EMU_RZI: r = pos ? maxf : -maxf; break;
		case EMU_RM: case EMU_RMI: r = pos ? maxf : -INFINITY; break;
		case EMU_RP: case EMU_RPI: r = pos ? INFINITY : -maxf; break;
		default: r = pos ? INFINITY : -INFINITY; break;
		}
	}
	return r;
}

/* Directed rounding of an exact value s + err (|err| tiny against s) to f32. */
static float round_f32(double s, double err, int rnd)
{
	if (rnd == EMU_RN || rnd == EMU_RND_NONE)
		return (float)s; /* s is already the double-rounded sum; innocuous for RN */
	double r = round_fmt(s, 24, -126, 127, rnd);
	float f = (float)r;
	if (r == s && err != 0 && isfinite(f)) {
		if ((rnd == EMU_RZ && ((err < 0) != (s < 0)) && s != 0) )
			f = nextafterf(f, 0.0f);
		else if (rnd == EMU_RM && err < 0)
			f = nextafterf(f, -INFINITY);
		else if (rnd == EMU_RP && err > 0)
			f = nextafterf(f, INFINITY);
	}
	return f;
}

static inline void two_sum(double a, double b, double *s, double *e)
{
	double x = a + b, bb = x - a;
	*s = x;
	*e = (a - (x - bb)) + (b - bb);
}

static double round_f64_dir(double r, double err, int rnd)
{
	if (err == 0 || !isfinite(r))
		return r;
	if (rnd == EMU_RZ && ((err < 0) != (r < 0)))
		return nextafter(r, 0.0);
	if (rnd == EMU_RM && err < 0)
		return nextafter(r, -INFINITY);
	if (rnd == EMU_RP && err > 0)
		return nextafter(r, INFINITY);
	return r;
}

/* ---- f16 / bf16 encode/decode ---- */
static float h2f(uint16_t h)
{
	uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
	if (e == 31)
		return F(s | 0x7F800000u | (m << 13));
	if (e == 0)
		return (s ? -1.0f : 1.0f) * ldexpf((float)m, -24);
	return F(s | ((e + 112) << 23) | (m << 13));
}
static uint16_t d2h_exact(double r)
{
	/* r is representable in f16 (or +-inf / NaN) */
	if (isnan(r))
		return 0x7FFF;
	uint16_t s = signbit(r) ? 0x8000 : 0;
	double a = fabs(r);
	if (isinf(a))
		return s | 0x7C00;
	if (a == 0)
		return s;
	int e;
	frexp(a, &e);
	int E = e - 1;
	if (E < -14)
		return s | (uint16_t)(a * 16777216.0); /* subnormal: a / 2^-24 */
	uint32_t mant = (uint32_t)(ldexp(a, 10 - E)) - 1024;
	return s | (uint16_t)((E + 15) << 10) | (uint16_t)mant;
}
static uint16_t d2h(double x, int rnd, bool ftz, bool sat)
{
	if (isnan(x))
		return 0x7FFF;
	if (sat)
		x = x < 0 ? 0 : x > 1 ? 1 : x;
	double r = round_fmt(x, 11, -14, 15, rnd);
	if (ftz && r != 0 && fabs(r) < 6.103515625e-05)
		r = copysign(0.0, r);
	return d2h_exact(r);
}
static float b2f(uint16_t b) { return F((uint32_t)b << 16); }
static uint16_t d2b(double x, int rnd, bool ftz, bool sat)
{
	if (isnan(x))
		return 0x7FFF;
	if (sat)
		x = x < 0 ? 0 : x > 1 ? 1 : x;
	double r = round_fmt(x, 8, -126, 127, rnd);
	if (ftz && r != 0 && fabs(r) < 1.1754943508222875e-38)
		r = copysign(0.0, r);
	return (uint16_t)(FB((float)r) >> 16);
}
static double half_get(uint32_t bits, bool bf) { return bf ? b2f((uint16_t)bits) : h2f((uint16_t)bits); }
static uint32_t half_put(double x, bool bf, int rnd, bool ftz, bool sat)
{
	return bf ? d2b(x, rnd, ftz, sat) : d2h(x, rnd, ftz, sat);
}

/* ---- f32 arithmetic with modifiers (the non-fast paths) ---- */
static inline float fin(float x, bool ftz) { return ftz ? ftzf(x) : x; }
static inline float fout(float r, uint8_t flags)
{
	if (flags & F_FTZ)
		r = ftzf(r);
	if (flags & F_SAT)
		r = isnan(r) ? 0.0f : r < 0 ? 0.0f : r > 1 ? 1.0f : r;
	if (isnan(r))
		r = F(0x7FFFFFFFu);
	return r;
}
static float f32_add(float a, float b, int rnd)
{
	if (rnd == EMU_RN || rnd == EMU_RND_NONE)
		return a + b;
	double s, e;
	two_sum(a, b, &s, &e);
	return round_f32(s, e, rnd);
}
static float f32_mul(float a, float b, int rnd)
{
	if (rnd == EMU_RN || rnd == EMU_RND_NONE)
		return a * b;
	return round_f32((double)a * (double)b, 0, rnd); /* exact in double */
}
static float f32_fma(float a, float b, float c, int rnd)
{
	if (rnd == EMU_RN || rnd == EMU_RND_NONE)
		return fmaf(a, b, c);
	double p = (double)a * (double)b, s, e;
	two_sum(p, c, &s, &e);
	return round_f32(s, e, rnd);
}
static float f32_div(float a, float b, int rnd)
{
	if (rnd == EMU_RN || rnd == EMU_RND_NONE)
		return a / b;
	double q = (double)a / (double)b; /* RN in double; residual sign from fma */
	double err = -fma(q, (double)b, -(double)a);
	return round_f32(q, b < 0 ? -err : err, rnd);
}
static double f64_add(double a, double b, int rnd)
{
	double s, e;
	two_sum(a, b, &s, &e);
	return (rnd == EMU_RN || rnd == EMU_RND_NONE) ? s : round_f64_dir(s, e, rnd);
}
static double f64_mul(double a, double b, int rnd)
{
	double p = a * b;
	if (rnd == EMU_RN || rnd == EMU_RND_NONE)
		return p;
	return round_f64_dir(p, fma(a, b, -p), rnd);
}
static double f64_fma(double a, double b, double c, int rnd)
{
	double r = fma(a, b, c);
	(void)rnd; /* directed f64 fma: the residual is not cheaply exact; RN result used */
	return r;
}

static float fminmax32(float a, float b, bool mx, bool nanprop)
{
	if (isnan(a) || isnan(b)) {
		if (nanprop || (isnan(a) && isnan(b)))
			return F(0x7FFFFFFFu);
		return isnan(a) ? b : a;
	}
	if (a == b && a == 0)
		return (signbit(a) != mx) ? a : b; /* -0 < +0 */
	return mx ? (a > b ? a : b) : (a < b ? a : b);
}
static double fminmax64(double a, double b, bool mx, bool nanprop)
{
	if (isnan(a) || isnan(b)) {
		if (nanprop || (isnan(a) && isnan(b)))
			return DD(0x7FFFFFFFFFFFFFFFull);
		return isnan(a) ? b : a;
	}
	if (a == b && a == 0)
		return (signbit(a) != mx) ? a : b;
	return mx ? (a > b ? a : b) : (a < b ? a : b);
}

/* ---- float -> int with saturation, NaN -> 0 ---- */
static uint64_t f2i(double x, int rnd, uint8_t t)
{
	if (isnan(x))
		return 0;
	switch (rnd) {
	case EMU_RZI: case EMU_RZ: case EMU_RND_NONE: x = trunc(x); break;
	case EMU_RMI: case EMU_RM: x = floor(x); break;
	case EMU_RPI: case EMU_RP: x = ceil(x); break;
	default: x = nearbyint(x); break;
	}
	uint32_t sz = tsize[t];
	if (tsigned(t)) {
		double lo = -ldexp(1.0, (int)sz * 8 - 1), hi = ldexp(1.0, (int)sz * 8 - 1);
		if (x <= lo)
			return zext((uint64_t)(int64_t)(sz == 8 ? INT64_MIN : (int64_t)lo), sz);
		if (x >= hi)
			return zext(sz == 8 ? (uint64_t)INT64_MAX : (uint64_t)(int64_t)(hi - 1), sz);
		return zext((uint64_t)(int64_t)x, sz);
	}
	double hi = ldexp(1.0, (int)sz * 8);
	if (x <= 0)
		return 0;
	if (x >= hi)
		return sz == 8 ? UINT64_MAX : (uint64_t)(hi - 1);
	return (uint64_t)x;
}

/* ---- int -> float with rounding ---- */
static double i2d(uint64_t v, uint8_t st) { return tsigned(st) ? (double)(int64_t)sext(v, tsize[st]) : (double)zext(v, tsize[st]); }
static float i2f(uint64_t v, uint8_t st, int rnd)
{
	uint32_t sz = tsize[st];
	bool sg = tsigned(st);
	if (rnd == EMU_RN || rnd == EMU_RND_NONE || sz <= 4) {
		double d = sg ? (double)(int64_t)sext(v, sz) : (double)zext(v, sz); /* exact for <= 32 bits */
		return sz <= 4 ? round_f32(d, 0, rnd) : (sg ? (float)(int64_t)v : (float)v);
	}
	long double ld = sg ? (long double)(int64_t)v : (long double)v;
	double d = (double)ld;
	double err = (double)(ld - (long double)d);
	return round_f32(d, err, rnd);
}
static double i2dr(uint64_t v, uint8_t st, int rnd)
{
	uint32_t sz = tsize[st];
	bool sg = tsigned(st);
	if (sz <= 4)
		return i2d(v, st);
	long double ld = sg ? (long double)(int64_t)v : (long double)v;
	double d = (double)ld;
	if (rnd == EMU_RN || rnd == EMU_RND_NONE)
		return d;
	return round_f64_dir(d, (double)(ld - (long double)d), rnd);
}

/* Value of a float-typed register as double (f16/bf16/f32/f64). */
static double fget(uint64_t v, uint8_t t)
{
	switch (t) {
	case EMU_F16: return h2f((uint16_t)v);
	case EMU_BF16: return b2f((uint16_t)v);
	case EMU_F32: return F(v);
	default: return DD(v);
	}
}

/* cvt d(dt) <- a(st) with rounding / ftz / sat. */
static uint64_t cvt1(uint64_t a, uint8_t dt, uint8_t st, int rnd, uint8_t flags)
{
	bool ftz = flags & F_FTZ, sat = flags & F_SAT;
	bool df = tfloat(dt), sf = tfloat(st);
	if (!df && !sf) {
		uint32_t ds = tsize[dt], ss = tsize[st];
		uint64_t v = tsigned(st) ? sext(a, ss) : zext(a, ss);
		if (sat) {
			/* clamp to the destination range */
			if (tsigned(st)) {
				int64_t x = (int64_t)v;
				if (tsigned(dt)) {
					int64_t lo = ds == 8 ? INT64_MIN : -(1ll << (ds * 8 - 1));
					int64_t hi = ds == 8 ? INT64_MAX : (1ll << (ds * 8 - 1)) - 1;
					x = x < lo ? lo : x > hi ? hi : x;
				} else {
					uint64_t hi = ds == 8 ? UINT64_MAX : (1ull << (ds * 8)) - 1;
					x = x < 0 ? 0 : (uint64_t)x > hi ? (int64_t)hi : x;
				}
				v = (uint64_t)x;
			} else {
				uint64_t hi = tsigned(dt) ? (ds == 8 ? (uint64_t)INT64_MAX : (1ull << (ds * 8 - 1)) - 1)
							  : (ds == 8 ? UINT64_MAX : (1ull << (ds * 8)) - 1);
				v = v > hi ? hi : v;
			}
		}
		return tsigned(dt) ? zext(v, ds) : zext(v, ds);
	}
	if (sf && !df) {
		double x = fget(a, st);
		if (ftz && st == EMU_F32)
			x = ftzf((float)x);
		return f2i(x, rnd, dt);
	}
	if (!sf && df) {
		switch (dt) {
		case EMU_F32: return FB(fout(i2f(a, st, rnd), flags));
		case EMU_F64: { double d = i2dr(a, st, rnd); if (sat) d = d < 0 ? 0 : d > 1 ? 1 : d; return DB(d); }
		case EMU_F16: return d2h(i2d(a, st), rnd, ftz, sat);
		default: return d2b(i2d(a, st), rnd, ftz, sat);
		}
	}
	/* float -> float */
	double x = fget(a, st);
	if (ftz && (st == EMU_F32))
		x = ftzf((float)x);
	switch (dt) {
	case EMU_F32: {
		float f;
		if (rnd >= EMU_RNI) {
			double r = x;
			switch (rnd) {
			case EMU_RZI: r = trunc(x); break;
			case EMU_RMI: r = floor(x); break;
			case EMU_RPI: r = ceil(x); break;
			default: r = nearbyint(x); break;
			}
			f = (float)r;
		} else if (st == EMU_F64) {
			f = round_f32(x, 0, rnd);
			if (rnd == EMU_RN || rnd == EMU_RND_NONE)
				f = (float)x;
		} else {
			f = (float)x;
		}
		return FB(fout(f, flags));
	}
	case EMU_F64: {
		double r = x;
		switch (rnd) {
		case EMU_RZI: r = trunc(x); break;
		case EMU_RMI: r = floor(x); break;
		case EMU_RPI: r = ceil(x); break;
		case EMU_RNI: r = nearbyint(x); break;
		default: break;
		}
		if (ftz)
			r = ftzd(r);
		if (sat)
			r = isnan(r) ? 0 : r < 0 ? 0 : r > 1 ? 1 : r;
		return DB(r);
	}
	case EMU_F16: return d2h(x, rnd, ftz, sat);
	default: return d2b(x, rnd, ftz, sat);
	}
}

/* ---------------------------------------------------------------- execution state */
enum { W_RUN, W_BAR, W_DONE };

typedef struct warp {
	uint64_t *r;          /* [nregs][32] */
	uint32_t *p;          /* [npreds] lane masks */
	uint32_t pc, act, live, parked, min_parked;
	uint32_t lpc[32];     /* PCs of parked lanes */
	uint8_t state;
	uint32_t id;
	uint32_t bar_d, bar_in; /* bar.red: destination register, input lanes */
	uint8_t bar_mode;
} warp;

typedef struct race_ent {
	uint32_t wepoch, repoch;
	uint16_t wtid, rtid;
	uint32_t wline, rline;
	uint8_t rmulti;
} race_ent;

typedef struct ctx {
	kiln_emu *emu;
	const emu_kernel *k;
	uint64_t cls[CLS_COUNT];
	kiln_emu_counters c;
	uint32_t grid[3], block[3], ctaid[3];
	uint32_t nthreads, nwarps, dyn_shared, shared_size;
	uint8_t *shared, *sh_init;
	race_ent *race;
	uint32_t epoch;
	uint8_t *local;       /* [thread][local_stride] */
	uint32_t local_stride;
	const uint8_t *params;
	uint64_t budget, ti;
	uint64_t clock;
	uint64_t *symaddr;    /* module symbol -> device address */
	emu_alloc *last;
	warp *warps;
	uint64_t *regs;
	uint32_t *preds;
	int faulted;
} ctx;

static void tid_of(const ctx *x, uint32_t lin, uint32_t t[3])
{
	t[0] = lin % x->block[0];
	t[1] = (lin / x->block[0]) % x->block[1];
	t[2] = lin / (x->block[0] * x->block[1]);
}

/* Records a fault for thread (warp w, lane l) at instruction in; returns KILN_EFAULT. */
static kiln_err fault(ctx *x, kiln_emu_fault_kind kind, const warp *w, int lane, const emu_inst *in,
		      const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static kiln_err fault(ctx *x, kiln_emu_fault_kind kind, const warp *w, int lane, const emu_inst *in,
		      const char *fmt, ...)
{
	kiln_emu_fault *f = &x->emu->fault;
	char msg[256];
	va_list ap;
	if (x->faulted)
		return KILN_EFAULT;
	x->faulted = 1;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	f->kind = kind;
	memcpy(f->block, x->ctaid, sizeof f->block);
	if (w && lane >= 0)
		tid_of(x, w->id * 32 + (uint32_t)lane, f->thread);
	f->line = in ? in->line : 0;
	if (w && lane >= 0)
		snprintf(f->message, sizeof f->message, "%s: %.160s in %.60s, block (%u,%u,%u) thread (%u,%u,%u), PTX line %u",
			 kiln_emu_fault_name(kind), msg, x->k->name, f->block[0], f->block[1], f->block[2],
			 f->thread[0], f->thread[1], f->thread[2], f->line);
	else
		snprintf(f->message, sizeof f->message, "%s: %.200s in %.60s", kiln_emu_fault_name(kind), msg, x->k->name);
	return kiln_error_set(KILN_EFAULT, "%s", f->message);
}

const char *kiln_emu_fault_name(kiln_emu_fault_kind kind)
{
	switch (kind) {
	case KILN_EMU_FAULT_NONE: return "no fault";
	case KILN_EMU_FAULT_OOB: return "out-of-bounds access";
	case KILN_EMU_FAULT_MISALIGNED: return "misaligned access";
	case KILN_EMU_FAULT_UNINIT_READ: return "uninitialized read";
	case KILN_EMU_FAULT_RACE: return "shared-memory race";
	case KILN_EMU_FAULT_BUDGET: return "instruction budget exhausted";
	case KILN_EMU_FAULT_UNSUPPORTED: return "unsupported";
	case KILN_EMU_FAULT_LIMIT: return "launch exceeds device limits";
	case KILN_EMU_FAULT_TRAP: return "trap";
	}
	return "fault";
}

/* ---------------------------------------------------------------- memory */
static const char *space_name(int sp)
{
	switch (sp) {
	case KILN_EMU_SPACE_GLOBAL: return "global";
	case KILN_EMU_SPACE_SHARED: return "shared";
	case KILN_EMU_SPACE_LOCAL: return "local";
	case KILN_EMU_SPACE_CONST: return "const";
	case KILN_EMU_SPACE_PARAM: return "param";
	default: return "generic";
	}
}

static kiln_err oob_global(ctx *x, const warp *w, int l, const emu_inst *in, uint64_t addr, uint32_t n,
			   bool write, bool ro)
{
	const emu_alloc *a = emu_mem_nearest(x->emu, addr);
	kiln_emu_fault *f = &x->emu->fault;
	f->space = KILN_EMU_SPACE_GLOBAL;
	f->addr = addr;
	f->size = n;
	f->alloc_base = a ? a->base : 0;
	f->alloc_size = a ? a->size : 0;
	if (ro)
		return fault(x, KILN_EMU_FAULT_OOB, w, l, in, "%u-byte write to read-only .const memory at 0x%llx", n,
			     (unsigned long long)addr);
	if (!a)
		return fault(x, KILN_EMU_FAULT_OOB, w, l, in, "%u-byte %s at 0x%llx (no allocations)", n,
			     write ? "write" : "read", (unsigned long long)addr);
	long long rel = addr >= a->base ? (long long)(addr - a->base) : -(long long)(a->base - addr);
	return fault(x, KILN_EMU_FAULT_OOB, w, l, in,
		     "%u-byte %s at 0x%llx, %lld bytes from the start of the %llu-byte allocation at 0x%llx", n,
		     write ? "write" : "read", (unsigned long long)addr, rel, (unsigned long long)a->size,
		     (unsigned long long)a->base);
}

static kiln_err misaligned(ctx *x, const warp *w, int l, const emu_inst *in, int sp, uint64_t addr, uint32_t n)
{
	kiln_emu_fault *f = &x->emu->fault;
	f->space = (kiln_emu_space)sp;
	f->addr = addr;
	f->size = n;
	return fault(x, KILN_EMU_FAULT_MISALIGNED, w, l, in, "%u-byte %s access at 0x%llx is not %u-byte aligned", n,
		     space_name(sp), (unsigned long long)addr, n);
}

/* Counts distinct 32-byte sectors touched by the lanes (and first touches for DRAM). */
static void count_sectors(ctx *x, const uint64_t *addr, uint32_t m, uint32_t n, bool store, emu_alloc *single)
{
	uint64_t secs[64];
	uint32_t ns = 0;
	uint64_t last = UINT64_MAX;
	bool sorted = true;
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		uint64_t s0 = addr[l] >> 5, s1 = (addr[l] + n - 1) >> 5;
		for (uint64_t s = s0; s <= s1 && ns < 64; s++) {
			if (last != UINT64_MAX && s < last)
				sorted = false;
			if (s != last || !sorted)
				secs[ns++] = s;
			last = s;
		}
	}
	if (!sorted) {
		/* dedupe: small n, insertion sort */
		for (uint32_t i = 1; i < ns; i++) {
			uint64_t v = secs[i];
			uint32_t j = i;
			while (j > 0 && secs[j - 1] > v) {
				secs[j] = secs[j - 1];
				j--;
			}
			secs[j] = v;
		}
	}
	uint32_t distinct = 0;
	for (uint32_t i = 0; i < ns; i++) {
		if (i && secs[i] == secs[i - 1])
			continue;
		distinct++;
		emu_alloc *a = single;
		uint64_t ad = secs[i] << 5;
		if (!a || ad + 31 < a->base || ad >= a->base + a->size)
			a = emu_mem_find(x->emu, ad);
		if (!a)
			continue;
		if (a->touch_epoch != x->emu->launch_no) {
			memset(a->touched, 0, ((a->size + 32 * 64 - 1) / (32 * 64) + (a->size == 0)) * sizeof(uint64_t));
			a->touch_epoch = x->emu->launch_no;
		}
		uint64_t bit = (ad >= a->base ? ad - a->base : 0) >> 5;
		if (!(a->touched[bit >> 6] >> (bit & 63) & 1)) {
			a->touched[bit >> 6] |= 1ull << (bit & 63);
			x->c.dram_sectors++;
		}
	}
	if (store) {
		x->c.gst_requests++;
		x->c.gst_sectors += distinct;
	} else {
		x->c.gld_requests++;
		x->c.gld_sectors += distinct;
	}
}

/* Shared-memory wavefronts of one warp request (bank conflicts). */
static void count_wavefronts(ctx *x, const uint64_t *addr, uint32_t m, uint32_t n)
{
	uint32_t per_phase = n <= 4 ? 32 : n == 8 ? 16 : 8;
	uint32_t total = 0;
	for (uint32_t ph = 0; ph < 32; ph += per_phase) {
		uint32_t pm = (uint32_t)(((1ull << per_phase) - 1) << ph) & m;
		if (!pm)
			continue;
		uint64_t words[32][8];
		uint8_t cnt[32] = {0};
		uint32_t worst = 1;
		for (uint32_t l = ph; l < ph + per_phase; l++) {
			if (!(pm >> l & 1))
				continue;
			uint32_t nw = n < 4 ? 1 : n / 4;
			for (uint32_t k = 0; k < nw; k++) {
				uint64_t wd = (addr[l] >> 2) + k;
				uint32_t b = (uint32_t)(wd & 31);
				bool seen = false;
				for (uint32_t j = 0; j < cnt[b] && j < 8; j++)
					if (words[b][j] == wd)
						seen = true;
				if (seen)
					continue;
				if (cnt[b] < 8)
					words[b][cnt[b]] = wd;
				cnt[b]++;
				if (cnt[b] > worst)
					worst = cnt[b];
			}
		}
		total += worst;
	}
	x->c.shared_requests++;
	x->c.shared_wavefronts += total;
}

static inline uint64_t load_val(const uint8_t *p, uint32_t n, bool sg)
{
	switch (n) {
	case 1: return sg ? (uint64_t)(int64_t)(int8_t)p[0] : p[0];
	case 2: { uint16_t v; memcpy(&v, p, 2); return sg ? (uint64_t)(int64_t)(int16_t)v : v; }
	case 4: { uint32_t v; memcpy(&v, p, 4); return sg ? (uint64_t)(int64_t)(int32_t)v : v; }
	default: { uint64_t v; memcpy(&v, p, 8); return v; }
	}
}
static inline void store_val(uint8_t *p, uint64_t v, uint32_t n) { memcpy(p, &v, n); }

/* racecheck on [off, off+n) of shared memory by thread tid (warp wid). */
static kiln_err race_check(ctx *x, const warp *w, int l, const emu_inst *in, uint32_t off, uint32_t n, bool write)
{
	uint16_t tid = (uint16_t)(w->id * 32 + (uint32_t)l);
	for (uint32_t i = 0; i < n; i++) {
		race_ent *e = &x->race[off + i];
		bool other = false;
		uint32_t oline = 0, otid = 0;
		if (e->wepoch == x->epoch && e->wtid / 32 != w->id) {
			other = true;
			oline = e->wline;
			otid = e->wtid;
		} else if (write && e->repoch == x->epoch && (e->rmulti || e->rtid / 32 != w->id)) {
			other = true;
			oline = e->rline;
			otid = e->rtid;
		}
		if (other) {
			kiln_emu_fault *f = &x->emu->fault;
			f->space = KILN_EMU_SPACE_SHARED;
			f->addr = off + i;
			f->size = n;
			f->other_line = oline;
			f->alloc_base = 0;
			f->alloc_size = x->shared_size;
			tid_of(x, otid, f->other_thread);
			return fault(x, KILN_EMU_FAULT_RACE, w, l, in,
				     "%s of shared byte %u conflicts with thread (%u,%u,%u) at PTX line %u with no barrier between",
				     write ? "write" : "read", off + i, f->other_thread[0], f->other_thread[1],
				     f->other_thread[2], oline);
		}
		if (write) {
			e->wepoch = x->epoch;
			e->wtid = tid;
			e->wline = in->line;
		} else if (e->repoch != x->epoch) {
			e->repoch = x->epoch;
			e->rtid = tid;
			e->rline = in->line;
			e->rmulti = 0;
		} else if (e->rtid / 32 != w->id) {
			e->rmulti = 1;
		}
	}
	return 0;
}

/* Resolves generic addresses of the active lanes to one space; mixed spaces in one
 * warp access are split by the caller lane by lane. */
static int generic_space(uint64_t a)
{
	if (a >= EMU_SHARED_WINDOW && a < EMU_SHARED_WINDOW + EMU_WINDOW_SIZE)
		return KILN_EMU_SPACE_SHARED;
	if (a >= EMU_LOCAL_WINDOW && a < EMU_LOCAL_WINDOW + EMU_WINDOW_SIZE)
		return KILN_EMU_SPACE_LOCAL;
	return KILN_EMU_SPACE_GLOBAL;
}

/* Performs a (vector) load or store, or computes the host pointers of an atomic.
 * kind: 0 load, 1 store, 2 atomic (ptrs filled, no data moved). */
static kiln_err mem_access(ctx *x, warp *w, const emu_inst *in, uint32_t m, int kind, uint8_t **ptrs,
			   int space, const uint64_t *base, int64_t imm)
{
	uint32_t n = (uint32_t)in->size * in->vec;
	uint64_t addr[32];
	uint64_t *R = w->r;
	bool sg = tsigned(in->type);
	if (!m)
		return 0;
	uint64_t orv = 0;
	for (int l = 0; l < 32; l++) {
		addr[l] = base[l] + (uint64_t)imm;
		orv |= (m >> l & 1) ? addr[l] : 0;
	}
	if (space == KILN_EMU_SPACE_NONE) {
		/* generic: split by window */
		uint32_t ms = 0, ml = 0, mg = 0;
		for (int l = 0; l < 32; l++) {
			if (!(m >> l & 1))
				continue;
			int s = generic_space(addr[l]);
			if (s == KILN_EMU_SPACE_SHARED) {
				ms |= 1u << l;
				addr[l] -= EMU_SHARED_WINDOW;
			} else if (s == KILN_EMU_SPACE_LOCAL) {
				ml |= 1u << l;
				addr[l] -= EMU_LOCAL_WINDOW;
			} else {
				mg |= 1u << l;
			}
		}
		kiln_err err = 0;
		if (mg)
			err = mem_access(x, w, in, mg, kind, ptrs, KILN_EMU_SPACE_GLOBAL, addr, 0);
		if (!err && ms)
			err = mem_access(x, w, in, ms, kind, ptrs, KILN_EMU_SPACE_SHARED, addr, 0);
		if (!err && ml)
			err = mem_access(x, w, in, ml, kind, ptrs, KILN_EMU_SPACE_LOCAL, addr, 0);
		return err;
	}
	uint32_t al = kind == 2 ? in->size : n;
	if (orv & (al - 1)) {
		for (int l = 0; l < 32; l++)
			if ((m >> l & 1) && (addr[l] & (al - 1)))
				return misaligned(x, w, l, in, space, addr[l], al);
	}
	uint8_t *hp[32];
	if (space == KILN_EMU_SPACE_GLOBAL || space == KILN_EMU_SPACE_CONST) {
		uint64_t lo = UINT64_MAX, hi = 0;
		for (int l = 0; l < 32; l++)
			if (m >> l & 1) {
				lo = addr[l] < lo ? addr[l] : lo;
				hi = addr[l] > hi ? addr[l] : hi;
			}
		emu_alloc *a = x->last;
		if (!a || lo < a->base || hi + n > a->base + a->size || hi + n < hi)
			a = emu_mem_find(x->emu, lo);
		emu_alloc *single = NULL;
		if (a && hi + n <= a->base + a->size && hi + n >= hi) {
			single = a;
			x->last = a;
			if (kind != 0 && a->readonly)
				return oob_global(x, w, __builtin_ctz(m), in, lo, n, true, true);
			for (int l = 0; l < 32; l++)
				if (m >> l & 1)
					hp[l] = a->data + (addr[l] - a->base);
		} else {
			for (int l = 0; l < 32; l++) {
				if (!(m >> l & 1))
					continue;
				emu_alloc *b = emu_mem_find(x->emu, addr[l]);
				if (!b || addr[l] + n > b->base + b->size)
					return oob_global(x, w, l, in, addr[l], n, kind != 0, false);
				if (kind != 0 && b->readonly)
					return oob_global(x, w, l, in, addr[l], n, true, true);
				hp[l] = b->data + (addr[l] - b->base);
			}
		}
		if (x->emu->opt.initcheck) {
			for (int l = 0; l < 32; l++) {
				if (!(m >> l & 1))
					continue;
				emu_alloc *b = single ? single : emu_mem_find(x->emu, addr[l]);
				uint8_t *ip = b->init + (addr[l] - b->base);
				if (kind == 1) {
					memset(ip, 1, n);
				} else {
					for (uint32_t i = 0; i < n; i++)
						if (!ip[i]) {
							kiln_emu_fault *f = &x->emu->fault;
							f->space = KILN_EMU_SPACE_GLOBAL;
							f->addr = addr[l] + i;
							f->size = n;
							f->alloc_base = b->base;
							f->alloc_size = b->size;
							return fault(x, KILN_EMU_FAULT_UNINIT_READ, w, l, in,
								     "read of global byte 0x%llx (offset %llu of the %llu-byte allocation at 0x%llx) that was never written",
								     (unsigned long long)(addr[l] + i),
								     (unsigned long long)(addr[l] + i - b->base),
								     (unsigned long long)b->size, (unsigned long long)b->base);
						}
					if (kind == 2)
						memset(ip, 1, n);
				}
			}
		}
		if (kind == 2)
			x->c.atomics++;
		else
			count_sectors(x, addr, m, n, kind == 1, single);
	} else if (space == KILN_EMU_SPACE_SHARED) {
		for (int l = 0; l < 32; l++) {
			if (!(m >> l & 1))
				continue;
			if (addr[l] >= x->shared_size || addr[l] + n > x->shared_size) {
				kiln_emu_fault *f = &x->emu->fault;
				f->space = KILN_EMU_SPACE_SHARED;
				f->addr = addr[l];
				f->size = n;
				f->alloc_size = x->shared_size;
				return fault(x, KILN_EMU_FAULT_OOB, w, l, in,
					     "%u-byte shared %s at offset %lld, outside the block's %u bytes of shared memory",
					     n, kind == 1 ? "write" : "read", (long long)addr[l], x->shared_size);
			}
			hp[l] = x->shared + addr[l];
			uint32_t off = (uint32_t)addr[l];
			if (x->emu->opt.initcheck) {
				if (kind == 1) {
					memset(x->sh_init + off, 1, n);
				} else {
					for (uint32_t i = 0; i < n; i++)
						if (!x->sh_init[off + i]) {
							kiln_emu_fault *f = &x->emu->fault;
							f->space = KILN_EMU_SPACE_SHARED;
							f->addr = off + i;
							f->size = n;
							f->alloc_size = x->shared_size;
							return fault(x, KILN_EMU_FAULT_UNINIT_READ, w, l, in,
								     "read of shared byte %u that was never written in this block",
								     off + i);
						}
					if (kind == 2)
						memset(x->sh_init + off, 1, n);
				}
			}
			if (x->race && kind != 2 && race_check(x, w, l, in, off, n, kind == 1))
				return KILN_EFAULT;
		}
		if (kind == 2)
			x->c.atomics++;
		else
			count_wavefronts(x, addr, m, n);
	} else { /* local, param frame */
		uint32_t lo = space == KILN_EMU_SPACE_LOCAL ? 0 : 0;
		uint32_t lim = space == KILN_EMU_SPACE_LOCAL ? x->k->local_bytes : x->local_stride;
		for (int l = 0; l < 32; l++) {
			if (!(m >> l & 1))
				continue;
			if (addr[l] < lo || addr[l] >= lim || addr[l] + n > lim) {
				kiln_emu_fault *f = &x->emu->fault;
				f->space = (kiln_emu_space)space;
				f->addr = addr[l];
				f->size = n;
				f->alloc_size = lim;
				return fault(x, KILN_EMU_FAULT_OOB, w, l, in,
					     "%u-byte %s %s at offset %lld, outside the thread's %u bytes", n,
					     space_name(space), kind == 1 ? "write" : "read", (long long)addr[l], lim);
			}
			hp[l] = x->local + (size_t)(w->id * 32 + (uint32_t)l) * x->local_stride + addr[l];
		}
		if (space == KILN_EMU_SPACE_LOCAL)
			x->c.local_bytes += (uint64_t)__builtin_popcount(m) * n;
	}
	if (kind == 2) {
		for (int l = 0; l < 32; l++)
			if (m >> l & 1)
				ptrs[l] = hp[l];
		return 0;
	}
	uint32_t es = in->size;
	for (uint32_t v = 0; v < in->vec; v++) {
		uint64_t *Rv = R + (size_t)in->v[v] * 32;
		if (kind == 0) {
			for (int l = 0; l < 32; l++)
				if (m >> l & 1)
					Rv[l] = load_val(hp[l] + v * es, es, sg);
		} else {
			for (int l = 0; l < 32; l++)
				if (m >> l & 1)
					store_val(hp[l] + v * es, Rv[l], es);
		}
	}
	return 0;
}

/* ---------------------------------------------------------------- warps */
static void reconverge(warp *w)
{
	uint32_t all = w->parked | w->act;
	for (int l = 0; l < 32; l++)
		if (w->act >> l & 1)
			w->lpc[l] = w->pc;
	if (!all) {
		w->act = 0;
		w->parked = 0;
		w->min_parked = UINT32_MAX;
		w->state = W_DONE;
		return;
	}
	uint32_t mn = UINT32_MAX, mn2 = UINT32_MAX, g = 0;
	for (int l = 0; l < 32; l++)
		if ((all >> l & 1) && w->lpc[l] < mn)
			mn = w->lpc[l];
	for (int l = 0; l < 32; l++) {
		if (!(all >> l & 1))
			continue;
		if (w->lpc[l] == mn)
			g |= 1u << l;
		else if (w->lpc[l] < mn2)
			mn2 = w->lpc[l];
	}
	w->pc = mn;
	w->act = g;
	w->parked = all & ~g;
	w->min_parked = mn2;
}

static int cmp_s(int64_t a, int64_t b, int c)
{
	switch (c) {
	case CMP_EQ: return a == b;
	case CMP_NE: return a != b;
	case CMP_LT: case CMP_LO: return a < b;
	case CMP_LE: case CMP_LS: return a <= b;
	case CMP_GT: case CMP_HI: return a > b;
	default: return a >= b;
	}
}
static int cmp_u(uint64_t a, uint64_t b, int c)
{
	switch (c) {
	case CMP_EQ: return a == b;
	case CMP_NE: return a != b;
	case CMP_LT: case CMP_LO: return a < b;
	case CMP_LE: case CMP_LS: return a <= b;
	case CMP_GT: case CMP_HI: return a > b;
	default: return a >= b;
	}
}
static int cmp_f(double a, double b, int c)
{
	bool un = isnan(a) || isnan(b);
	switch (c) {
	case CMP_EQ: return !un && a == b;
	case CMP_NE: return !un && a != b;
	case CMP_LT: return !un && a < b;
	case CMP_LE: return !un && a <= b;
	case CMP_GT: return !un && a > b;
	case CMP_GE: return !un && a >= b;
	case CMP_EQU: return un || a == b;
	case CMP_NEU: return un || a != b;
	case CMP_LTU: return un || a < b;
	case CMP_LEU: return un || a <= b;
	case CMP_GTU: return un || a > b;
	case CMP_GEU: return un || a >= b;
	case CMP_NUM: return !un;
	case CMP_NAN: return un;
	default: return 0;
	}
}

/* Comparison of lanes -> mask. For packed half types, sel picks the half (0 low, 1 high). */
static uint32_t compare(const emu_inst *in, const uint64_t *A, const uint64_t *B, uint32_t m, int sel)
{
	uint32_t r = 0;
	uint8_t t = in->type2;
	uint32_t sz = tsize[t];
	int c = in->mode;
	bool ftz = in->flags & F_FTZ;
	if (t == EMU_F32 && !ftz && (c == CMP_LT || c == CMP_GT || c == CMP_GE || c == CMP_LE)) {
		for (int l = 0; l < 32; l++) {
			float a = F(A[l]), b = F(B[l]);
			int v = c == CMP_LT ? a < b : c == CMP_GT ? a > b : c == CMP_GE ? a >= b : a <= b;
			r |= (uint32_t)v << l;
		}
		return r & m;
	}
	if (t == EMU_S32 && c <= CMP_GE) {
		for (int l = 0; l < 32; l++)
			r |= (uint32_t)cmp_s((int32_t)A[l], (int32_t)B[l], c) << l;
		return r & m;
	}
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		int v;
		if (t == EMU_F32) {
			float a = F(A[l]), b = F(B[l]);
			if (ftz) {
				a = ftzf(a);
				b = ftzf(b);
			}
			v = cmp_f(a, b, c);
		} else if (t == EMU_F64) {
			v = cmp_f(DD(A[l]), DD(B[l]), c);
		} else if (t == EMU_F16 || t == EMU_BF16 || t == EMU_F16X2 || t == EMU_BF16X2) {
			bool bf = t == EMU_BF16 || t == EMU_BF16X2;
			uint32_t sh = sel ? 16 : 0;
			v = cmp_f(half_get((uint32_t)(A[l] >> sh) & 0xFFFF, bf), half_get((uint32_t)(B[l] >> sh) & 0xFFFF, bf), c);
		} else if (tsigned(t) && c != CMP_LO && c != CMP_LS && c != CMP_HI && c != CMP_HS) {
			v = cmp_s((int64_t)sext(A[l], sz), (int64_t)sext(B[l], sz), c);
		} else {
			v = cmp_u(zext(A[l], sz), zext(B[l], sz), c);
		}
		r |= (uint32_t)v << l;
	}
	return r;
}

static inline uint32_t prmt1(uint32_t a, uint32_t b, uint32_t c, int mode)
{
	uint64_t x = ((uint64_t)b << 32) | a;
	uint8_t by[8];
	for (int i = 0; i < 8; i++)
		by[i] = (uint8_t)(x >> (8 * i));
	uint32_t d = 0;
	if (mode == 0) {
		for (int i = 0; i < 4; i++) {
			uint32_t s = (c >> (4 * i)) & 15;
			uint8_t v = by[s & 7];
			if (s & 8)
				v = (v & 0x80) ? 0xFF : 0;
			d |= (uint32_t)v << (8 * i);
		}
		return d;
	}
	uint32_t n = c & 3;
	static const uint8_t f4e[4][4] = {{0, 1, 2, 3}, {1, 2, 3, 4}, {2, 3, 4, 5}, {3, 4, 5, 6}};
	static const uint8_t b4e[4][4] = {{0, 7, 6, 5}, {1, 0, 7, 6}, {2, 1, 0, 7}, {3, 2, 1, 0}};
	static const uint8_t rc8[4][4] = {{0, 0, 0, 0}, {1, 1, 1, 1}, {2, 2, 2, 2}, {3, 3, 3, 3}};
	static const uint8_t ecl[4][4] = {{0, 1, 2, 3}, {1, 1, 2, 3}, {2, 2, 2, 3}, {3, 3, 3, 3}};
	static const uint8_t ecr[4][4] = {{0, 0, 0, 0}, {0, 1, 1, 1}, {0, 1, 2, 2}, {0, 1, 2, 3}};
	static const uint8_t rc16[4][4] = {{0, 1, 0, 1}, {2, 3, 2, 3}, {0, 1, 0, 1}, {2, 3, 2, 3}};
	const uint8_t (*t)[4] = mode == 1 ? f4e : mode == 2 ? b4e : mode == 3 ? rc8 : mode == 4 ? ecl : mode == 5 ? ecr : rc16;
	for (int i = 0; i < 4; i++)
		d |= (uint32_t)by[t[n][i]] << (8 * i);
	return d;
}

static uint64_t atom_op(int op, uint8_t t, uint64_t old, uint64_t b, uint64_t c)
{
	uint32_t sz = tsize[t];
	switch (op) {
	case ATOM_ADD:
		if (t == EMU_F32)
			return FB(F(old) + F(b));
		if (t == EMU_F64)
			return DB(DD(old) + DD(b));
		return zext(old + b, sz);
	case ATOM_MIN: case ATOM_MAX: {
		bool mx = op == ATOM_MAX;
		if (t == EMU_F32)
			return FB(fminmax32(F(old), F(b), mx, false));
		if (t == EMU_F64)
			return DB(fminmax64(DD(old), DD(b), mx, false));
		if (tsigned(t)) {
			int64_t x = (int64_t)sext(old, sz), y = (int64_t)sext(b, sz);
			return zext((uint64_t)(mx ? (x > y ? x : y) : (x < y ? x : y)), sz);
		}
		uint64_t x = zext(old, sz), y = zext(b, sz);
		return mx ? (x > y ? x : y) : (x < y ? x : y);
	}
	case ATOM_EXCH: return b;
	case ATOM_CAS: return zext(old, sz) == zext(b, sz) ? c : old;
	case ATOM_AND: return old & b;
	case ATOM_OR: return old | b;
	case ATOM_XOR: return old ^ b;
	case ATOM_INC: { uint32_t o = (uint32_t)old, v = (uint32_t)b; return o >= v ? 0 : o + 1; }
	case ATOM_DEC: { uint32_t o = (uint32_t)old, v = (uint32_t)b; return (o == 0 || o > v) ? v : o - 1; }
	default: return old;
	}
}

static uint64_t half_op(const emu_inst *in, uint64_t a, uint64_t b, uint64_t c)
{
	bool bf = in->type == EMU_BF16 || in->type == EMU_BF16X2;
	int nh = (in->type == EMU_F16X2 || in->type == EMU_BF16X2) ? 2 : 1;
	bool ftz = in->flags & F_FTZ, sat = in->flags & F_SAT;
	int rnd = in->rnd ? in->rnd : EMU_RN;
	uint64_t d = 0;
	for (int h = 0; h < nh; h++) {
		uint32_t sh = 16 * (uint32_t)h;
		uint32_t ab = (uint32_t)(a >> sh) & 0xFFFF, bb = (uint32_t)(b >> sh) & 0xFFFF, cb = (uint32_t)(c >> sh) & 0xFFFF;
		double x = half_get(ab, bf), y = half_get(bb, bf), z = half_get(cb, bf);
		if (ftz && !bf) {
			if (fabs(x) < 6.103515625e-05) x = copysign(0.0, x);
			if (fabs(y) < 6.103515625e-05) y = copysign(0.0, y);
			if (fabs(z) < 6.103515625e-05) z = copysign(0.0, z);
		}
		uint32_t r;
		switch (in->op) {
		case OP_HADD: r = half_put(x + y, bf, rnd, ftz, sat); break;
		case OP_HSUB: r = half_put(x - y, bf, rnd, ftz, sat); break;
		case OP_HMUL: r = half_put(x * y, bf, rnd, ftz, sat); break;
		case OP_HFMA: r = half_put(fma(x, y, z), bf, rnd, ftz, sat); break;
		case OP_HNEG: r = ab ^ 0x8000; break;
		case OP_HABS: r = ab & 0x7FFF; break;
		case OP_HMIN: case OP_HMAX:
			r = half_put(fminmax64(x, y, in->op == OP_HMAX, in->mode == 1), bf, EMU_RN, false, false);
			if (!isnan(x) && !isnan(y) && !(x == 0 && y == 0))
				r = ((in->op == OP_HMAX) ? (x > y) : (x < y)) ? ab : bb;
			break;
		default: r = 0; break;
		}
		d |= (uint64_t)(r & 0xFFFF) << sh;
	}
	return d;
}

#define REG(i) (R + (size_t)(i) * 32)
#define REGQ(i) ((i) == EMU_NOREG ? R : REG(i))

static kiln_err unsupported_at(ctx *x, warp *w, const emu_inst *in, const char *what)
{
	return fault(x, KILN_EMU_FAULT_UNSUPPORTED, w, __builtin_ctz(w->act ? w->act : 1), in,
		     "not supported by the emulator: %s", what);
}

/* Float ops on f32/f64 (the modifier-aware path). */
static kiln_err float_op(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint64_t *D = REG(in->d), *A = REG(in->a);
	uint64_t *B = in->b != EMU_NOREG ? REG(in->b) : A, *C = in->c != EMU_NOREG ? REG(in->c) : A;
	bool ftz = in->flags & F_FTZ;
	int rnd = in->rnd;
	(void)x;
	if (in->type == EMU_F64) {
		for (int l = 0; l < 32; l++) {
			if (!(m >> l & 1))
				continue;
			double a = DD(A[l]), b = DD(B[l]), c = DD(C[l]), r;
			if (ftz) {
				a = ftzd(a);
				b = ftzd(b);
				c = ftzd(c);
			}
			switch (in->op) {
			case OP_FADD: r = f64_add(a, b, rnd); break;
			case OP_FSUB: r = f64_add(a, -b, rnd); break;
			case OP_FMUL: r = f64_mul(a, b, rnd); break;
			case OP_FFMA: r = f64_fma(a, b, c, rnd); break;
			case OP_FDIV: r = a / b; break;
			case OP_FABS: r = fabs(a); break;
			case OP_FNEG: r = -a; break;
			case OP_FMIN: r = fminmax64(a, b, false, in->mode == 1); break;
			case OP_FMAX: r = fminmax64(a, b, true, in->mode == 1); break;
			case OP_RCP: r = 1.0 / a; break;
			case OP_SQRT: r = sqrt(a); break;
			case OP_RSQRT: r = 1.0 / sqrt(a); break;
			case OP_COPYSIGN: r = copysign(b, a); break;
			default: return unsupported_at(x, w, in, "this f64 operation");
			}
			if (in->flags & F_SAT)
				r = isnan(r) ? 0 : r < 0 ? 0 : r > 1 ? 1 : r;
			D[l] = DB(r);
		}
		return 0;
	}
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		float a = fin(F(A[l]), ftz), b = fin(F(B[l]), ftz), c = fin(F(C[l]), ftz), r;
		switch (in->op) {
		case OP_FADD: r = f32_add(a, b, rnd); break;
		case OP_FSUB: r = f32_add(a, -b, rnd); break;
		case OP_FMUL: r = f32_mul(a, b, rnd); break;
		case OP_FFMA: r = f32_fma(a, b, c, rnd); break;
		case OP_FDIV: r = (in->flags & F_APPROX) ? (float)((double)a / (double)b) : f32_div(a, b, rnd); break;
		case OP_FABS: r = fabsf(a); break;
		case OP_FNEG: r = -a; break;
		case OP_FMIN: r = fminmax32(a, b, false, in->mode == 1); break;
		case OP_FMAX: r = fminmax32(a, b, true, in->mode == 1); break;
		case OP_RCP: r = (in->flags & F_APPROX) ? (float)(1.0 / (double)a) : f32_div(1.0f, a, rnd); break;
		case OP_SQRT:
			if ((in->flags & F_APPROX) || rnd == EMU_RN)
				r = sqrtf(a);
			else {
				double s = sqrt((double)a); /* exact residual sign from s*s - a */
				double err = (double)a - s * s;
				r = round_f32(s, err, rnd);
			}
			break;
		case OP_RSQRT: r = (float)(1.0 / sqrt((double)a)); break;
		case OP_EX2: r = exp2f(a); break;
		case OP_LG2: r = log2f(a); break;
		case OP_SIN: r = sinf(a); break;
		case OP_COS: r = cosf(a); break;
		case OP_TANH: r = tanhf(a); break;
		case OP_COPYSIGN: r = copysignf(b, a); break;
		default: return unsupported_at(x, w, in, "this f32 operation");
		}
		if (in->op == OP_FABS || in->op == OP_FNEG || in->op == OP_COPYSIGN) {
			D[l] = FB(ftz ? ftzf(r) : r);
			continue;
		}
		D[l] = FB(fout(r, in->flags));
	}
	return 0;
}

/* Integer ops that are not on the fast path. */
static kiln_err int_op(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint64_t *D = REG(in->d), *A = REG(in->a);
	uint64_t *B = in->b != EMU_NOREG ? REG(in->b) : A, *C = in->c != EMU_NOREG ? REG(in->c) : A;
	uint64_t *E = in->e != EMU_NOREG ? REG(in->e) : A;
	uint8_t t = in->type;
	uint32_t sz = tsize[t], bits = sz * 8;
	bool sg = tsigned(t);
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		uint64_t a = A[l], b = B[l], c = C[l], r = 0;
		uint64_t ua = zext(a, sz), ub = zext(b, sz);
		int64_t sa = (int64_t)sext(a, sz), sb = (int64_t)sext(b, sz);
		switch (in->op) {
		case OP_ADD: case OP_SUB:
			if ((in->flags & F_SAT) && sg) {
				i128 v = in->op == OP_ADD ? (i128)sa + sb : (i128)sa - sb;
				i128 lo = -((i128)1 << (bits - 1)), hi = ((i128)1 << (bits - 1)) - 1;
				r = zext((uint64_t)(int64_t)(v < lo ? lo : v > hi ? hi : v), sz);
			} else {
				r = zext(in->op == OP_ADD ? a + b : a - b, sz);
			}
			break;
		case OP_MUL_LO: r = zext(a * b, sz); break;
		case OP_MUL_HI:
			if (sz == 8)
				r = sg ? (uint64_t)(((i128)sa * sb) >> 64) : (uint64_t)(((u128)ua * ub) >> 64);
			else
				r = zext(sg ? (uint64_t)((sa * sb) >> bits) : (ua * ub) >> bits, sz);
			break;
		case OP_MUL_WIDE: r = sg ? (uint64_t)(sa * sb) : ua * ub; r = zext(r, sz * 2); break;
		case OP_MAD_LO: r = zext(a * b + c, sz); break;
		case OP_MAD_HI: {
			uint64_t h;
			if (sz == 8)
				h = sg ? (uint64_t)(((i128)sa * sb) >> 64) : (uint64_t)(((u128)ua * ub) >> 64);
			else
				h = sg ? (uint64_t)((sa * sb) >> bits) : (ua * ub) >> bits;
			r = zext(h + c, sz);
			break;
		}
		case OP_MAD_WIDE: r = zext((sg ? (uint64_t)(sa * sb) : ua * ub) + c, sz * 2); break;
		case OP_MUL24_LO: case OP_MUL24_HI: case OP_MAD24_LO: {
			int64_t p = sg ? (int64_t)sext(a, 3) * (int64_t)sext(b, 3) : (int64_t)(zext(a, 3) * zext(b, 3));
			r = in->op == OP_MUL24_HI ? zext((uint64_t)p >> 16, 4) : zext((uint64_t)p, 4);
			if (in->op == OP_MAD24_LO)
				r = zext(r + c, 4);
			break;
		}
		case OP_SAD: r = zext(c + (sg ? (uint64_t)(sa > sb ? sa - sb : sb - sa) : (ua > ub ? ua - ub : ub - ua)), sz); break;
		case OP_DIV:
			if (sg)
				r = sb == 0 ? zext(~0ull, sz) : (sb == -1 ? zext((uint64_t)0 - (uint64_t)sa, sz) : zext((uint64_t)(sa / sb), sz));
			else
				r = ub == 0 ? zext(~0ull, sz) : ua / ub;
			break;
		case OP_REM:
			if (sg)
				r = sb == 0 ? zext(a, sz) : (sb == -1 ? 0 : zext((uint64_t)(sa % sb), sz));
			else
				r = ub == 0 ? ua : ua % ub;
			break;
		case OP_ABS: r = zext(sa < 0 ? (uint64_t)0 - (uint64_t)sa : (uint64_t)sa, sz); break;
		case OP_NEG: r = zext((uint64_t)0 - a, sz); break;
		case OP_MIN: r = sg ? zext((uint64_t)(sa < sb ? sa : sb), sz) : (ua < ub ? ua : ub); break;
		case OP_MAX: r = sg ? zext((uint64_t)(sa > sb ? sa : sb), sz) : (ua > ub ? ua : ub); break;
		case OP_NOT: r = zext(~a, sz); break;
		case OP_CNOT: r = ua == 0; break;
		case OP_SHL: { uint32_t s = (uint32_t)b; r = s >= bits ? 0 : zext(a << s, sz); break; }
		case OP_SHR: {
			uint32_t s = (uint32_t)b;
			if (sg)
				r = zext((uint64_t)(sa >> (s >= bits ? bits - 1 : s)), sz);
			else
				r = s >= bits ? 0 : ua >> s;
			break;
		}
		case OP_SHF_L: case OP_SHF_R: {
			uint32_t n = (uint32_t)c;
			n = (in->flags & F_CLAMP) ? (n > 32 ? 32 : n) : (n & 31);
			uint64_t v = ((uint64_t)(uint32_t)b << 32) | (uint32_t)a;
			r = in->op == OP_SHF_L ? (uint32_t)((v << n) >> 32) : (uint32_t)(v >> n);
			break;
		}
		case OP_POPC: r = (uint64_t)__builtin_popcountll(ua); break;
		case OP_CLZ: r = ua ? (uint64_t)(__builtin_clzll(ua) - (64 - (int)bits)) : bits; break;
		case OP_BREV: {
			uint64_t v = 0;
			for (uint32_t i = 0; i < bits; i++)
				v |= ((ua >> i) & 1) << (bits - 1 - i);
			r = v;
			break;
		}
		case OP_BFIND: {
			uint64_t v = sg && sa < 0 ? zext(~a, sz) : ua;
			if (!v)
				r = 0xFFFFFFFFu;
			else {
				uint32_t pos = 63 - (uint32_t)__builtin_clzll(v);
				r = in->mode ? bits - 1 - pos : pos;
			}
			break;
		}
		case OP_BFE: {
			uint32_t pos = (uint32_t)b & 0xFF, len = (uint32_t)c & 0xFF;
			uint64_t v = 0;
			bool sbit = false;
			if (sg)
				sbit = len == 0 ? false : ((pos + len - 1 >= bits) ? (ua >> (bits - 1)) & 1 : (ua >> (pos + len - 1)) & 1);
			for (uint32_t i = 0; i < bits; i++) {
				bool bit = i < len && pos + i < bits ? (ua >> (pos + i)) & 1 : sbit;
				v |= (uint64_t)bit << i;
			}
			r = v;
			break;
		}
		case OP_BFI: {
			uint32_t pos = (uint32_t)c & 0xFF, len = (uint32_t)E[l] & 0xFF;
			uint64_t v = ub;
			for (uint32_t i = 0; i < len && pos + i < bits; i++)
				v = (v & ~(1ull << (pos + i))) | (((ua >> i) & 1) << (pos + i));
			r = v;
			break;
		}
		case OP_PRMT: r = prmt1((uint32_t)a, (uint32_t)b, (uint32_t)c, in->mode); break;
		case OP_LOP3: {
			uint32_t A3 = (uint32_t)a, B3 = (uint32_t)b, C3 = (uint32_t)c, v = 0;
			for (int i = 0; i < 8; i++)
				if (in->mode >> i & 1) {
					uint32_t ta = (i & 4) ? A3 : ~A3, tb = (i & 2) ? B3 : ~B3, tc = (i & 1) ? C3 : ~C3;
					v |= ta & tb & tc;
				}
			r = v;
			break;
		}
		default:
			return unsupported_at(x, w, in, "this integer operation");
		}
		D[l] = r;
	}
	return 0;
}

static kiln_err warp_op(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint32_t *P = w->p;
	uint64_t *D = in->d != EMU_NOREG && in->op != OP_VOTE ? REG(in->d) : NULL;
	uint64_t *A = in->a != EMU_NOREG ? REG(in->a) : NULL;
	uint64_t *E = in->e != EMU_NOREG ? REG(in->e) : NULL;
	uint32_t mem = E ? (uint32_t)E[__builtin_ctz(m)] : FULL;
	uint32_t mm = m & mem;
	switch (in->op) {
	case OP_SHFL: {
		uint64_t src[32];
		uint64_t *B = REG(in->b), *C = REG(in->c);
		uint32_t pv = 0;
		memcpy(src, A, sizeof src);
		for (int l = 0; l < 32; l++) {
			if (!(m >> l & 1))
				continue;
			uint32_t bval = (uint32_t)B[l] & 31, cval = (uint32_t)C[l] & 31, seg = ((uint32_t)C[l] >> 8) & 31;
			int lane = l;
			int maxl = (lane & (int)seg) | (int)(cval & ~seg), minl = lane & (int)seg;
			int j;
			bool p;
			switch (in->mode) {
			case SHFL_UP: j = lane - (int)bval; p = j >= maxl; break;
			case SHFL_DOWN: j = lane + (int)bval; p = j <= maxl; break;
			case SHFL_BFLY: j = lane ^ (int)bval; p = j <= maxl; break;
			default: j = minl | (int)(bval & ~seg); p = j <= maxl; break;
			}
			if (!p || j < 0 || j > 31)
				j = lane;
			D[l] = (uint32_t)src[j];
			pv |= (uint32_t)p << l;
		}
		if (in->d2 != EMU_NOREG)
			P[in->d2] = (P[in->d2] & ~m) | (pv & m);
		return 0;
	}
	case OP_VOTE: {
		uint32_t a = (in->mode2 ? ~P[in->a] : P[in->a]) & mm;
		if (in->mode == VOTE_BALLOT) {
			uint64_t *Dv = REG(in->d);
			LANES(m, Dv[l] = a);
			return 0;
		}
		bool r = in->mode == VOTE_ALL ? a == mm : in->mode == VOTE_ANY ? a != 0 : (a == mm || a == 0);
		P[in->d] = (P[in->d] & ~m) | (r ? m : 0);
		return 0;
	}
	case OP_MATCH: {
		uint32_t sz = tsize[in->type];
		bool all = true;
		uint32_t first = __builtin_ctz(mm ? mm : m);
		for (int l = 0; l < 32; l++)
			if ((mm >> l & 1) && zext(A[l], sz) != zext(A[first], sz))
				all = false;
		uint32_t pv = 0;
		for (int l = 0; l < 32; l++) {
			if (!(m >> l & 1))
				continue;
			if (in->mode) {
				D[l] = all ? mm : 0;
				pv |= (uint32_t)all << l;
			} else {
				uint32_t s = 0;
				for (int j = 0; j < 32; j++)
					if ((mm >> j & 1) && zext(A[j], sz) == zext(A[l], sz))
						s |= 1u << j;
				D[l] = s;
			}
		}
		if (in->d2 != EMU_NOREG)
			P[in->d2] = (P[in->d2] & ~m) | (pv & m);
		return 0;
	}
	case OP_REDUX: {
		bool sg = tsigned(in->type);
		uint64_t acc = 0;
		bool any = false;
		for (int l = 0; l < 32; l++) {
			if (!(mm >> l & 1))
				continue;
			uint32_t v = (uint32_t)A[l];
			if (!any) {
				acc = v;
				any = true;
				continue;
			}
			switch (in->mode) {
			case ATOM_ADD: acc = (uint32_t)(acc + v); break;
			case ATOM_MIN: acc = sg ? (uint32_t)((int32_t)acc < (int32_t)v ? (int32_t)acc : (int32_t)v) : (acc < v ? acc : v); break;
			case ATOM_MAX: acc = sg ? (uint32_t)((int32_t)acc > (int32_t)v ? (int32_t)acc : (int32_t)v) : (acc > v ? acc : v); break;
			case ATOM_AND: acc &= v; break;
			case ATOM_OR: acc |= v; break;
			default: acc ^= v; break;
			}
		}
		LANES(m, D[l] = acc);
		return 0;
	}
	default:
		return unsupported_at(x, w, in, "this warp operation");
	}
}

static kiln_err atomic_op(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint8_t *ptr[32];
	if (mem_access(x, w, in, m, 2, ptr, in->space, REG(in->a), in->imm))
		return KILN_EFAULT;
	uint64_t *B = REG(in->b), *C = in->c != EMU_NOREG ? REG(in->c) : B;
	uint64_t *D = in->op == OP_ATOM ? REG(in->d) : NULL;
	uint32_t sz = in->size;
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		uint64_t old = load_val(ptr[l], sz, false);
		store_val(ptr[l], atom_op(in->mode, in->type, old, B[l], C[l]), sz);
		if (D)
			D[l] = old;
	}
	return 0;
}

static kiln_err cp_async(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint64_t *A = REG(in->a), *B = REG(in->b);
	uint64_t *E = in->e != EMU_NOREG ? REG(in->e) : NULL;
	uint32_t n = in->size;
	uint64_t saddr[32], gaddr[32];
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		saddr[l] = A[l] + (uint64_t)in->imm;
		gaddr[l] = B[l] + (uint64_t)(int64_t)(int32_t)in->c;
		uint32_t cnt = E ? (uint32_t)E[l] : n;
		if (cnt > n)
			cnt = n;
		if ((saddr[l] | gaddr[l]) & (n - 1))
			return misaligned(x, w, l, in, KILN_EMU_SPACE_SHARED, (saddr[l] & (n - 1)) ? saddr[l] : gaddr[l], n);
		if (saddr[l] + n > x->shared_size) {
			kiln_emu_fault *f = &x->emu->fault;
			f->space = KILN_EMU_SPACE_SHARED;
			f->addr = saddr[l];
			f->size = n;
			return fault(x, KILN_EMU_FAULT_OOB, w, l, in, "cp.async to shared offset %llu outside %u bytes",
				     (unsigned long long)saddr[l], x->shared_size);
		}
		uint8_t tmp[16] = {0};
		if (cnt) {
			emu_alloc *a = emu_mem_find(x->emu, gaddr[l]);
			if (!a || gaddr[l] + cnt > a->base + a->size)
				return oob_global(x, w, l, in, gaddr[l], cnt, false, false);
			if (x->emu->opt.initcheck)
				for (uint32_t i = 0; i < cnt; i++)
					if (!a->init[gaddr[l] - a->base + i]) {
						x->emu->fault.space = KILN_EMU_SPACE_GLOBAL;
						x->emu->fault.addr = gaddr[l] + i;
						return fault(x, KILN_EMU_FAULT_UNINIT_READ, w, l, in,
							     "cp.async reads global byte 0x%llx that was never written",
							     (unsigned long long)(gaddr[l] + i));
					}
			memcpy(tmp, a->data + (gaddr[l] - a->base), cnt);
		}
		if (x->race && race_check(x, w, l, in, (uint32_t)saddr[l], n, true))
			return KILN_EFAULT;
		memcpy(x->shared + saddr[l], tmp, n);
		if (x->sh_init)
			memset(x->sh_init + saddr[l], 1, n);
	}
	count_sectors(x, gaddr, m, n, false, NULL);
	count_wavefronts(x, saddr, m, n);
	return 0;
}

/* Runs warp w until it exits, reaches a barrier, or faults. */
static kiln_err run_warp(ctx *x, warp *w)
{
	const emu_inst *code = x->k->code;
	uint64_t *R = w->r;
	uint32_t *P = w->p;
	uint32_t pc = w->pc, act = w->act;
	uint64_t *cls = x->cls;
	uint64_t ti = x->ti;
	kiln_err err = 0;
	for (;;) {
		const emu_inst *in = &code[pc];
		uint32_t m = act;
		if (in->guard != EMU_NOPRED)
			m &= in->gneg ? ~P[in->guard] : P[in->guard];
		cls[in->cls]++;
		ti += (uint64_t)__builtin_popcount(m);
		uint32_t npc = pc + 1;
		if (!m && in->op != OP_BRA)
			goto next;
		uint64_t *D = REGQ(in->d), *A = REGQ(in->a), *B = REGQ(in->b), *C = REGQ(in->c);
		switch ((emu_op)in->op) {
		case OP_NOP: case OP_WARPSYNC:
			break;
		case OP_MOV:
			LANES(m, D[l] = A[l]);
			break;
		case OP_MOV_PRED: {
			uint32_t v = in->mode2 ? ~P[in->a] : P[in->a];
			P[in->d] = (P[in->d] & ~m) | (v & m);
			break;
		}
		case OP_PACK: {
			uint32_t es = in->size * 8u;
			uint64_t mk = es >= 64 ? ~0ull : (1ull << es) - 1;
			LANES(m, {
				uint64_t v = 0;
				for (uint32_t i = 0; i < in->vec; i++)
					v |= (REG(in->v[i])[l] & mk) << (i * es);
				D[l] = v;
			});
			break;
		}
		case OP_UNPACK: {
			uint32_t es = in->size * 8u;
			uint64_t mk = es >= 64 ? ~0ull : (1ull << es) - 1;
			for (uint32_t i = 0; i < in->vec; i++) {
				uint64_t *V = REG(in->v[i]);
				LANES(m, V[l] = (A[l] >> (i * es)) & mk);
			}
			break;
		}
		case OP_CLOCK: {
			uint64_t v = x->clock + ti;
			if (in->mode == 0 || in->mode == 3)
				v = (uint32_t)v;
			else if (in->mode == 4)
				v >>= 32;
			LANES(m, D[l] = v);
			break;
		}
		case OP_SELP: {
			uint32_t p = P[in->c];
			LANES(m, D[l] = (p >> l & 1) ? A[l] : B[l]);
			break;
		}
		case OP_SLCT:
			if (in->type2 == EMU_F32)
				LANES(m, D[l] = (in->flags & F_FTZ ? ftzf(F(C[l])) : F(C[l])) >= 0.0f ? A[l] : B[l]);
			else
				LANES(m, D[l] = (int32_t)C[l] >= 0 ? A[l] : B[l]);
			break;
		case OP_ADD:
			if (in->flags & F_SAT)
				err = int_op(x, w, in, m);
			else if (tsize[in->type] == 4)
				LANES(m, D[l] = (uint32_t)(A[l] + B[l]));
			else if (tsize[in->type] == 8)
				LANES(m, D[l] = A[l] + B[l]);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_SUB:
			if (!(in->flags & F_SAT) && tsize[in->type] == 4)
				LANES(m, D[l] = (uint32_t)(A[l] - B[l]));
			else if (!(in->flags & F_SAT) && tsize[in->type] == 8)
				LANES(m, D[l] = A[l] - B[l]);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_MUL_LO:
			if (tsize[in->type] == 4)
				LANES(m, D[l] = (uint32_t)(A[l] * B[l]));
			else if (tsize[in->type] == 8)
				LANES(m, D[l] = A[l] * B[l]);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_MAD_LO:
			if (tsize[in->type] == 4)
				LANES(m, D[l] = (uint32_t)(A[l] * B[l] + C[l]));
			else if (tsize[in->type] == 8)
				LANES(m, D[l] = A[l] * B[l] + C[l]);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_MUL_WIDE:
			if (in->type == EMU_S32)
				LANES(m, D[l] = (uint64_t)((int64_t)(int32_t)A[l] * (int64_t)(int32_t)B[l]));
			else if (in->type == EMU_U32)
				LANES(m, D[l] = (uint64_t)(uint32_t)A[l] * (uint32_t)B[l]);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_AND:
			LANES(m, D[l] = A[l] & B[l]);
			break;
		case OP_OR:
			LANES(m, D[l] = A[l] | B[l]);
			break;
		case OP_XOR:
			LANES(m, D[l] = A[l] ^ B[l]);
			break;
		case OP_SHL:
			if (tsize[in->type] == 4)
				LANES(m, D[l] = (uint32_t)B[l] >= 32 ? 0 : (uint32_t)((uint32_t)A[l] << (uint32_t)B[l]));
			else
				err = int_op(x, w, in, m);
			break;
		case OP_SHR:
			if (tsize[in->type] == 4 && !tsigned(in->type))
				LANES(m, D[l] = (uint32_t)B[l] >= 32 ? 0 : (uint32_t)A[l] >> (uint32_t)B[l]);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_MUL_HI: case OP_MAD_HI: case OP_MAD_WIDE: case OP_MUL24_LO: case OP_MUL24_HI:
		case OP_MAD24_LO: case OP_SAD: case OP_DIV: case OP_REM: case OP_ABS: case OP_NEG:
		case OP_MIN: case OP_MAX: case OP_NOT: case OP_CNOT: case OP_SHF_L: case OP_SHF_R:
		case OP_POPC: case OP_CLZ: case OP_BREV: case OP_BFIND: case OP_BFE: case OP_BFI:
		case OP_PRMT: case OP_LOP3:
			err = int_op(x, w, in, m);
			break;
		case OP_FNS:
			err = unsupported_at(x, w, in, "fns");
			break;
		case OP_DP4A: {
			bool sa = tsigned(in->type), sb = tsigned(in->type2);
			LANES(m, {
				int64_t acc = sa || sb ? (int64_t)(int32_t)C[l] : (int64_t)(uint32_t)C[l];
				for (int k = 0; k < 4; k++) {
					uint32_t ab = (uint32_t)(A[l] >> (8 * k)) & 0xFF, bb = (uint32_t)(B[l] >> (8 * k)) & 0xFF;
					int64_t av = sa ? (int64_t)(int8_t)ab : (int64_t)ab, bv = sb ? (int64_t)(int8_t)bb : (int64_t)bb;
					acc += av * bv;
				}
				D[l] = (uint32_t)acc;
			});
			break;
		}
		case OP_AND_PRED: case OP_OR_PRED: case OP_XOR_PRED: case OP_NOT_PRED: {
			uint32_t a = (in->mode2 & 1) ? ~P[in->a] : P[in->a];
			uint32_t b = in->b != EMU_NOREG ? ((in->mode2 & 2) ? ~P[in->b] : P[in->b]) : 0;
			uint32_t r = in->op == OP_AND_PRED ? a & b : in->op == OP_OR_PRED ? a | b : in->op == OP_XOR_PRED ? a ^ b : ~a;
			P[in->d] = (P[in->d] & ~m) | (r & m);
			break;
		}
		case OP_SETP: case OP_SET: {
			uint32_t r = compare(in, A, B, m, 0);
			uint32_t nr = ~r & m;
			if (in->mode2 & 0x7F) {
				uint32_t c = (in->mode2 & 0x80) ? ~P[in->c] : P[in->c];
				switch (in->mode2 & 0x7F) {
				case BOOL_AND: r &= c; nr &= c; break;
				case BOOL_OR: r |= c; nr |= c; break;
				default: r ^= c; nr ^= c; break;
				}
			}
			if (in->op == OP_SETP) {
				if (in->type2 == EMU_F16X2 || in->type2 == EMU_BF16X2) {
					/* d gets the low halves' result, d2 the high halves' */
					uint32_t hi = compare(in, A, B, m, 1);
					P[in->d] = (P[in->d] & ~m) | (r & m);
					if (in->d2 != EMU_NOREG)
						P[in->d2] = (P[in->d2] & ~m) | (hi & m);
					break;
				}
				P[in->d] = (P[in->d] & ~m) | (r & m);
				if (in->d2 != EMU_NOREG)
					P[in->d2] = (P[in->d2] & ~m) | (nr & m);
			} else {
				uint64_t one = in->type == EMU_F32 ? FB(1.0f) : in->type == EMU_S32 || in->type == EMU_U32 ?
					       (in->type == EMU_S32 ? 0xFFFFFFFFu : 0xFFFFFFFFu) : 1;
				LANES(m, D[l] = (r >> l & 1) ? one : 0);
			}
			break;
		}
		case OP_FADD:
			if (in->type == EMU_F32 && !in->flags && in->rnd <= EMU_RN)
				LANES(m, D[l] = FB(F(A[l]) + F(B[l])));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FSUB:
			if (in->type == EMU_F32 && !in->flags && in->rnd <= EMU_RN)
				LANES(m, D[l] = FB(F(A[l]) - F(B[l])));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FMUL:
			if (in->type == EMU_F32 && !in->flags && in->rnd <= EMU_RN)
				LANES(m, D[l] = FB(F(A[l]) * F(B[l])));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FFMA:
			if (in->type == EMU_F32 && !in->flags && in->rnd <= EMU_RN)
				LANES(m, D[l] = FB(fmaf(F(A[l]), F(B[l]), F(C[l]))));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FDIV: case OP_FABS: case OP_FNEG: case OP_FMIN: case OP_FMAX: case OP_RCP:
		case OP_SQRT: case OP_RSQRT: case OP_EX2: case OP_LG2: case OP_SIN: case OP_COS:
		case OP_TANH: case OP_COPYSIGN:
			err = float_op(x, w, in, m);
			break;
		case OP_TESTP: {
			uint32_t r = 0;
			for (int l = 0; l < 32; l++) {
				if (!(m >> l & 1))
					continue;
				double v = in->type == EMU_F32 ? (double)F(A[l]) : DD(A[l]);
				int c = fpclassify(v);
				if (in->type == EMU_F32 && v != 0 && fabs(v) < 1.1754943508222875e-38)
					c = FP_SUBNORMAL;
				bool t;
				switch (in->mode) {
				case TESTP_FINITE: t = isfinite(v); break;
				case TESTP_INFINITE: t = isinf(v); break;
				case TESTP_NUMBER: t = !isnan(v); break;
				case TESTP_NOTANUMBER: t = isnan(v); break;
				case TESTP_NORMAL: t = c == FP_NORMAL; break;
				default: t = c == FP_SUBNORMAL; break;
				}
				r |= (uint32_t)t << l;
			}
			P[in->d] = (P[in->d] & ~m) | r;
			break;
		}
		case OP_HADD: case OP_HSUB: case OP_HMUL: case OP_HFMA: case OP_HMIN: case OP_HMAX:
		case OP_HNEG: case OP_HABS: {
			uint64_t *Bh = in->b != EMU_NOREG ? B : A, *Ch = in->c != EMU_NOREG ? C : A;
			LANES(m, D[l] = half_op(in, A[l], Bh[l], Ch[l]));
			break;
		}
		case OP_CVT:
			if (in->type == EMU_F32 && in->type2 == EMU_S32 && in->rnd <= EMU_RN && !in->flags)
				LANES(m, D[l] = FB((float)(int32_t)A[l]));
			else if (in->type == EMU_F32 && in->type2 == EMU_U32 && in->rnd <= EMU_RN && !in->flags)
				LANES(m, D[l] = FB((float)(uint32_t)A[l]));
			else if (in->type == EMU_U64 && in->type2 == EMU_U32)
				LANES(m, D[l] = (uint32_t)A[l]);
			else if (in->type == EMU_S64 && in->type2 == EMU_S32)
				LANES(m, D[l] = (uint64_t)(int64_t)(int32_t)A[l]);
			else
				LANES(m, D[l] = cvt1(A[l], in->type, in->type2, in->rnd, in->flags));
			break;
		case OP_CVT_PACK: {
			bool bf = in->type == EMU_BF16X2;
			bool ftz = in->flags & F_FTZ, sat = in->flags & F_SAT;
			int rnd = in->rnd ? in->rnd : EMU_RN;
			LANES(m, D[l] = ((uint64_t)half_put(fget(A[l], in->type2), bf, rnd, ftz, sat) << 16) |
					 half_put(fget(B[l], in->type2), bf, rnd, ftz, sat));
			break;
		}
		case OP_CVTA: {
			uint64_t win = in->space == KILN_EMU_SPACE_SHARED ? EMU_SHARED_WINDOW :
				       in->space == KILN_EMU_SPACE_LOCAL ? EMU_LOCAL_WINDOW : 0;
			if (in->mode)
				LANES(m, D[l] = A[l] - win);
			else
				LANES(m, D[l] = A[l] + win);
			break;
		}
		case OP_LD: case OP_ST:
			if (in->space == KILN_EMU_SPACE_PARAM) {
				uint32_t n = in->size;
				for (uint32_t v = 0; v < in->vec; v++) {
					uint64_t *V = REG(in->v[v]);
					for (int l = 0; l < 32; l++) {
						if (!(m >> l & 1))
							continue;
						uint8_t *p = x->local + (size_t)(w->id * 32 + (uint32_t)l) * x->local_stride +
							     (uint64_t)in->imm + v * n;
						if (in->op == OP_LD)
							V[l] = load_val(p, n, tsigned(in->type));
						else
							store_val(p, V[l], n);
					}
				}
				break;
			}
			err = mem_access(x, w, in, m, in->op == OP_ST, NULL, in->space, A, in->imm);
			break;
		case OP_LD_KPARAM: {
			uint32_t n = in->size;
			if ((uint64_t)in->imm + (uint64_t)n * in->vec > x->k->param_bytes) {
				x->emu->fault.space = KILN_EMU_SPACE_PARAM;
				x->emu->fault.addr = (uint64_t)in->imm;
				err = fault(x, KILN_EMU_FAULT_OOB, w, __builtin_ctz(m), in, "ld.param outside the %u-byte parameter block",
					    x->k->param_bytes);
				break;
			}
			for (uint32_t v = 0; v < in->vec; v++) {
				uint64_t val = load_val(x->params + in->imm + v * n, n, tsigned(in->type));
				uint64_t *V = REG(in->v[v]);
				LANES(m, V[l] = val);
			}
			break;
		}
		case OP_PCOPY:
			for (int l = 0; l < 32; l++) {
				if (!(m >> l & 1))
					continue;
				uint8_t *b = x->local + (size_t)(w->id * 32 + (uint32_t)l) * x->local_stride;
				memmove(b + in->imm, b + in->target, in->e);
			}
			break;
		case OP_ATOM: case OP_RED:
			err = atomic_op(x, w, in, m);
			break;
		case OP_CP_ASYNC:
			err = cp_async(x, w, in, m);
			break;
		case OP_SHFL: case OP_VOTE: case OP_MATCH: case OP_REDUX:
			err = warp_op(x, w, in, m);
			break;
		case OP_ACTIVEMASK:
			LANES(m, D[l] = act);
			break;
		case OP_BRA:
			if (m == act) {
				npc = in->target;
			} else if (m) {
				uint32_t nt = act & ~m;
				x->c.divergent_branches++;
				for (int l = 0; l < 32; l++)
					if (nt >> l & 1)
						w->lpc[l] = pc + 1;
				w->parked |= nt;
				if (pc + 1 < w->min_parked)
					w->min_parked = pc + 1;
				act = m;
				npc = in->target;
			}
			if (m && in->target <= pc) {
				x->c.loop_iterations++;
				if (x->budget && ti > x->budget) {
					x->ti = ti;
					return fault(x, KILN_EMU_FAULT_BUDGET, w, __builtin_ctz(m), in,
						     "did not finish within %llu thread-instructions (infinite loop?)",
						     (unsigned long long)x->budget);
				}
			}
			break;
		case OP_EXIT:
			w->live &= ~m;
			act &= ~m;
			if (!act) {
				w->pc = npc;
				w->act = 0;
				reconverge(w);
				if (w->state == W_DONE) {
					x->ti = ti;
					return 0;
				}
				pc = w->pc;
				act = w->act;
				continue;
			}
			break;
		case OP_BAR:
			x->c.barriers++;
			w->bar_mode = in->mode;
			if (in->mode) {
				uint32_t p = in->mode2 ? ~P[in->c] : P[in->c];
				w->bar_in = p & m;
				w->bar_d = in->d;
			}
			w->pc = npc;
			w->act = act;
			if (npc >= w->min_parked)
				reconverge(w);
			w->state = W_BAR;
			x->ti = ti;
			return 0;
		case OP_TRAP:
			x->ti = ti;
			return fault(x, KILN_EMU_FAULT_TRAP, w, __builtin_ctz(m), in, "trap instruction executed");
		case OP_CALL: case OP_RET: case OP_COUNT:
			err = unsupported_at(x, w, in, "call");
			break;
		}
		if (err) {
			x->ti = ti;
			return err;
		}
	next:
		pc = npc;
		if (pc >= w->min_parked) {
			w->pc = pc;
			w->act = act;
			reconverge(w);
			pc = w->pc;
			act = w->act;
		}
	}
}

/* ---------------------------------------------------------------- launches */
static kiln_err limit(kiln_emu *emu, const char *kname, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static kiln_err limit(kiln_emu *emu, const char *kname, const char *fmt, ...)
{
	char msg[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	emu->fault.kind = KILN_EMU_FAULT_LIMIT;
	snprintf(emu->fault.message, sizeof emu->fault.message, "%s: %.200s for %.60s",
		 kiln_emu_fault_name(KILN_EMU_FAULT_LIMIT), msg, kname);
	return kiln_error_set(KILN_EFAULT, "%s", emu->fault.message);
}

/* Device addresses of the module's .global/.const variables (allocated on first use). */
static kiln_err module_vars(kiln_emu *emu, const kiln_emu_module *mod, uint64_t **out)
{
	for (size_t i = 0; i < emu->nmodvars; i++)
		if (emu->modvars[i].module_id == mod->id) {
			*out = emu->modvars[i].addr;
			return 0;
		}
	emu_modvars *q = kiln_realloc(emu->modvars, (emu->nmodvars + 1) * sizeof *q);
	if (!q)
		return KILN_ENOMEM;
	emu->modvars = q;
	emu_modvars *mv = &q[emu->nmodvars];
	mv->module_id = mod->id;
	mv->nsyms = mod->nsyms;
	mv->addr = kiln_calloc(mod->nsyms + 1, sizeof *mv->addr);
	if (!mv->addr)
		return KILN_ENOMEM;
	emu->nmodvars++;
	for (uint32_t i = 0; i < mod->nsyms; i++) {
		const emu_sym *s = &mod->syms[i];
		if (s->space != KILN_EMU_SPACE_GLOBAL && s->space != KILN_EMU_SPACE_CONST)
			continue;
		uint64_t a;
		kiln_err err = emu_mem_alloc(emu, &a, s->size, false);
		if (err)
			return err;
		emu_alloc *al = emu_mem_find(emu, a);
		if (al && s->size) {
			if (s->init)
				memcpy(al->data, s->init, s->size);
			else
				memset(al->data, 0, s->size); /* module variables are zero-initialized */
			memset(al->init, 1, s->size);
			al->readonly = s->space == KILN_EMU_SPACE_CONST;
		}
		mv->addr[i] = a;
	}
	*out = mv->addr;
	return 0;
}

static uint64_t sreg_value(const ctx *x, int id, uint32_t warp_id, int lane)
{
	uint32_t lin = warp_id * 32 + (uint32_t)lane;
	uint32_t t[3];
	tid_of(x, lin, t);
	switch (id) {
	case SREG_TID_X: return t[0];
	case SREG_TID_Y: return t[1];
	case SREG_TID_Z: return t[2];
	case SREG_NTID_X: return x->block[0];
	case SREG_NTID_Y: return x->block[1];
	case SREG_NTID_Z: return x->block[2];
	case SREG_CTAID_X: return x->ctaid[0];
	case SREG_CTAID_Y: return x->ctaid[1];
	case SREG_CTAID_Z: return x->ctaid[2];
	case SREG_NCTAID_X: return x->grid[0];
	case SREG_NCTAID_Y: return x->grid[1];
	case SREG_NCTAID_Z: return x->grid[2];
	case SREG_LANEID: return (uint64_t)lane;
	case SREG_WARPID: return warp_id;
	case SREG_NWARPID: return x->emu->opt.warps_per_sm;
	case SREG_SMID: {
		uint64_t b = x->ctaid[0] + (uint64_t)x->grid[0] * (x->ctaid[1] + (uint64_t)x->grid[1] * x->ctaid[2]);
		return b % (x->emu->opt.sm_count ? x->emu->opt.sm_count : 1);
	}
	case SREG_NSMID: return x->emu->opt.sm_count;
	case SREG_GRIDID: return 1;
	case SREG_LANEMASK_EQ: return 1u << lane;
	case SREG_LANEMASK_LE: return (uint32_t)((2ull << lane) - 1);
	case SREG_LANEMASK_LT: return (1u << lane) - 1;
	case SREG_LANEMASK_GE: return ~((1u << lane) - 1);
	case SREG_LANEMASK_GT: return (uint32_t)~((2ull << lane) - 1);
	case SREG_DYN_SMEM: return x->dyn_shared;
	case SREG_TOTAL_SMEM: return x->shared_size;
	case SREG_WARPSZ: return 32;
	case SREG_CLUSTER_ONE: return 1;
	default: return 0;
	}
}

static kiln_err run_block(ctx *x)
{
	const emu_kernel *k = x->k;
	if (x->shared_size) {
		memset(x->shared, 0xFF, x->shared_size);
		if (x->sh_init)
			memset(x->sh_init, 0, x->shared_size);
	}
	x->epoch++;
	for (uint32_t wi = 0; wi < x->nwarps; wi++) {
		warp *w = &x->warps[wi];
		uint32_t nl = x->nthreads - wi * 32;
		w->live = nl >= 32 ? FULL : (1u << nl) - 1;
		w->act = w->live;
		w->pc = 0;
		w->parked = 0;
		w->min_parked = UINT32_MAX;
		w->state = W_RUN;
		w->p[0] = 0;
		w->p[1] = FULL;
		for (uint32_t i = 0; i < k->nconsts; i++) {
			const emu_const *c = &k->consts[i];
			if (c->kind != CONST_SREG)
				continue;
			uint64_t *Rr = w->r + (size_t)c->reg * 32;
			for (int l = 0; l < 32; l++)
				Rr[l] = sreg_value(x, c->sym, wi, l);
		}
	}
	for (;;) {
		for (uint32_t wi = 0; wi < x->nwarps; wi++) {
			warp *w = &x->warps[wi];
			if (w->state != W_RUN)
				continue;
			if (run_warp(x, w))
				return KILN_EFAULT;
		}
		uint32_t done = 0, popc = 0, any = 0, all = 1;
		for (uint32_t wi = 0; wi < x->nwarps; wi++) {
			warp *w = &x->warps[wi];
			if (w->state == W_DONE) {
				done++;
				continue;
			}
			popc += (uint32_t)__builtin_popcount(w->bar_in);
			any |= w->bar_in != 0;
			all &= w->bar_in == w->act;
		}
		if (done == x->nwarps)
			return 0;
		/* every live warp waits at a barrier: release them */
		x->epoch++;
		for (uint32_t wi = 0; wi < x->nwarps; wi++) {
			warp *w = &x->warps[wi];
			if (w->state != W_BAR)
				continue;
			if (w->bar_mode) {
				if (w->bar_mode == 1) {
					uint64_t *D = w->r + (size_t)w->bar_d * 32;
					for (int l = 0; l < 32; l++)
						if (w->act >> l & 1)
							D[l] = popc;
				} else {
					bool v = w->bar_mode == 2 ? all : any;
					w->p[w->bar_d] = (w->p[w->bar_d] & ~w->act) | (v ? w->act : 0);
				}
			}
			w->bar_in = 0;
			w->bar_mode = 0;
			w->state = w->act ? W_RUN : W_DONE;
		}
	}
}

kiln_err kiln_emu_launch(kiln_emu *emu, const kiln_emu_module *mod, const char *kernel,
			 const uint32_t grid[3], const uint32_t block[3], uint32_t dyn_shared,
			 const void *const *args, kiln_emu_counters *counters)
{
	ctx x;
	kiln_err err = 0;
	memset(&x, 0, sizeof x);
	if (!emu || !mod || !kernel || !grid || !block)
		return kiln_error_set(KILN_EINVAL, "kiln_emu_launch: NULL argument");
	memset(&emu->fault, 0, sizeof emu->fault);
	const emu_kernel *k = emu_module_kernel(mod, kernel);
	if (!k)
		return kiln_error_set(KILN_ENOTFOUND, "%s: no kernel named '%s'", mod->name, kernel);
	if (k->nparams && !args)
		return kiln_error_set(KILN_EINVAL, "launch of %s: %u parameters but no arguments", kernel, k->nparams);
	const kiln_emu_options *o = &emu->opt;
	uint64_t nthreads = (uint64_t)block[0] * block[1] * block[2];
	for (int i = 0; i < 3; i++) {
		if (!grid[i] || !block[i])
			return limit(emu, kernel, "grid (%u,%u,%u) block (%u,%u,%u) has a zero dimension", grid[0], grid[1],
				     grid[2], block[0], block[1], block[2]);
		if (block[i] > o->max_block_dim[i])
			return limit(emu, kernel, "block dimension %c = %u exceeds the maximum %u", "xyz"[i], block[i],
				     o->max_block_dim[i]);
		if (grid[i] > o->max_grid_dim[i])
			return limit(emu, kernel, "grid dimension %c = %u exceeds the maximum %u", "xyz"[i], grid[i],
				     o->max_grid_dim[i]);
	}
	if (nthreads > o->max_threads_per_block)
		return limit(emu, kernel, "block of %llu threads exceeds the maximum %u threads per block",
			     (unsigned long long)nthreads, o->max_threads_per_block);
	if (k->maxntid[0] && nthreads > (uint64_t)k->maxntid[0] * (k->maxntid[1] ? k->maxntid[1] : 1) *
						(k->maxntid[2] ? k->maxntid[2] : 1))
		return limit(emu, kernel, "block of %llu threads exceeds the kernel's .maxntid",
			     (unsigned long long)nthreads);
	if (k->reqntid[0] && (block[0] != k->reqntid[0] || block[1] != (k->reqntid[1] ? k->reqntid[1] : 1) ||
			      block[2] != (k->reqntid[2] ? k->reqntid[2] : 1)))
		return limit(emu, kernel, "block (%u,%u,%u) differs from the kernel's .reqntid", block[0], block[1], block[2]);
	uint64_t sh = (uint64_t)((k->static_shared + k->dyn_align - 1) & ~(k->dyn_align - 1)) + dyn_shared;
	uint32_t shlim = o->shared_optin ? o->max_shared_per_block_optin : o->max_shared_per_block;
	if (k->static_shared > o->max_shared_per_block)
		return limit(emu, kernel, "%u bytes of static shared memory exceed %u", k->static_shared, o->max_shared_per_block);
	if (sh > shlim)
		return limit(emu, kernel, "%llu bytes of shared memory per block exceed the %u-byte limit",
			     (unsigned long long)sh, shlim);
	if (emu->regs_hint && (uint64_t)emu->regs_hint * ((nthreads + 31) / 32 * 32) > o->regs_per_block)
		return limit(emu, kernel, "%u registers x %llu threads exceed %u registers per block", emu->regs_hint,
			     (unsigned long long)nthreads, o->regs_per_block);
	if ((uint64_t)k->nregs * 32 * 8 * ((nthreads + 31) / 32) > (1ull << 31))
		return kiln_error_set(KILN_EUNSUPPORTED, "not supported by the emulator: %s needs too many registers", kernel);

	x.emu = emu;
	x.k = k;
	memcpy(x.grid, grid, sizeof x.grid);
	memcpy(x.block, block, sizeof x.block);
	x.nthreads = (uint32_t)nthreads;
	x.nwarps = (x.nthreads + 31) / 32;
	x.dyn_shared = dyn_shared;
	x.shared_size = (uint32_t)sh;
	x.budget = o->instruction_budget;
	emu->launch_no++;
	x.clock = emu->launch_no << 32;
	uint8_t *params = NULL;
	if ((err = module_vars(emu, mod, &x.symaddr)))
		goto done;
	params = kiln_calloc(k->param_bytes + 8, 1);
	x.regs = kiln_malloc((size_t)k->nregs * 32 * 8 * x.nwarps);
	x.preds = kiln_calloc((size_t)k->npreds * x.nwarps + 1, sizeof *x.preds);
	x.warps = kiln_calloc(x.nwarps, sizeof *x.warps);
	x.local_stride = (k->local_bytes + k->frame_bytes + 15) & ~15u;
	x.local = x.local_stride ? kiln_calloc((size_t)x.local_stride * x.nwarps * 32, 1) : NULL;
	x.shared = kiln_malloc(x.shared_size + 16);
	x.sh_init = o->initcheck ? kiln_malloc(x.shared_size + 16) : NULL;
	x.race = o->racecheck && x.shared_size ? kiln_calloc(x.shared_size, sizeof *x.race) : NULL;
	if (!params || !x.regs || !x.preds || !x.warps || (x.local_stride && !x.local) || !x.shared ||
	    (o->initcheck && !x.sh_init) || (o->racecheck && x.shared_size && !x.race)) {
		err = kiln_error_set(KILN_ENOMEM, "emulator: out of memory launching %s", kernel);
		goto done;
	}
	for (uint32_t i = 0; i < k->nparams; i++) {
		if (!args[i]) {
			err = kiln_error_set(KILN_EINVAL, "launch of %s: argument %u (%s) is NULL", kernel, i, k->params[i].name);
			goto done;
		}
		memcpy(params + k->params[i].offset, args[i], k->params[i].size);
	}
	x.params = params;
	memset(x.regs, 0, (size_t)k->nregs * 32 * 8 * x.nwarps);
	for (uint32_t wi = 0; wi < x.nwarps; wi++) {
		warp *w = &x.warps[wi];
		w->id = wi;
		w->r = x.regs + (size_t)wi * k->nregs * 32;
		w->p = x.preds + (size_t)wi * k->npreds;
		for (uint32_t i = 0; i < k->nconsts; i++) {
			const emu_const *c = &k->consts[i];
			uint64_t v;
			if (c->kind == CONST_SREG)
				continue;
			v = c->kind == CONST_IMM ? c->value : x.symaddr[c->sym] + c->value;
			uint64_t *Rr = w->r + (size_t)c->reg * 32;
			for (int l = 0; l < 32; l++)
				Rr[l] = v;
		}
	}
	for (uint32_t bz = 0; bz < grid[2] && !err; bz++)
		for (uint32_t by = 0; by < grid[1] && !err; by++)
			for (uint32_t bx = 0; bx < grid[0]; bx++) {
				x.ctaid[0] = bx;
				x.ctaid[1] = by;
				x.ctaid[2] = bz;
				if ((err = run_block(&x)))
					break;
				x.c.blocks++;
			}
done:
	if (counters) {
		kiln_emu_counters *c = counters;
		c->warp_int += x.cls[CLS_INT];
		c->warp_fp32 += x.cls[CLS_FP32];
		c->warp_fp64 += x.cls[CLS_FP64];
		c->warp_mufu += x.cls[CLS_MUFU];
		c->warp_cvt += x.cls[CLS_CVT];
		c->warp_mem += x.cls[CLS_MEM];
		c->warp_ctrl += x.cls[CLS_CTRL];
		c->warp_shfl += x.cls[CLS_SHFL];
		c->warp_barrier += x.cls[CLS_BAR];
		c->warp_half2 += x.cls[CLS_HALF2];
		c->warp_other += x.cls[CLS_OTHER];
		for (int i = 0; i < CLS_COUNT; i++)
			c->warp_instructions += x.cls[i];
		c->thread_instructions += x.ti;
		c->gld_requests += x.c.gld_requests;
		c->gld_sectors += x.c.gld_sectors;
		c->gst_requests += x.c.gst_requests;
		c->gst_sectors += x.c.gst_sectors;
		c->dram_sectors += x.c.dram_sectors;
		c->shared_requests += x.c.shared_requests;
		c->shared_wavefronts += x.c.shared_wavefronts;
		c->local_bytes += x.c.local_bytes;
		c->atomics += x.c.atomics;
		c->divergent_branches += x.c.divergent_branches;
		c->loop_iterations += x.c.loop_iterations;
		c->barriers += x.c.barriers;
		c->launches++;
		c->blocks += x.c.blocks;
		c->warps += x.c.blocks * x.nwarps;
		c->threads_per_block = x.nthreads;
		c->dyn_shared = dyn_shared;
		c->static_shared = k->static_shared;
	}
	free(params);
	free(x.regs);
	free(x.preds);
	free(x.warps);
	free(x.local);
	free(x.shared);
	free(x.sh_init);
	free(x.race);
	return err;
}

const kiln_emu_fault *kiln_emu_last_fault(const kiln_emu *emu)
{
	return &emu->fault;
}

kiln_err kiln_emu_new(kiln_emu **out, const kiln_emu_options *o)
{
	static const kiln_emu_options def = KILN_EMU_OPTIONS_INIT;
	kiln_emu *e = kiln_calloc(1, sizeof *e);
	*out = NULL;
	if (!e)
		return KILN_ENOMEM;
	e->opt = o ? *o : def;
	e->next_base = EMU_GLOBAL_BASE;
	*out = e;
	return 0;
}

void kiln_emu_free(kiln_emu *emu)
{
	if (!emu)
		return;
	for (size_t i = 0; i < emu->nallocs; i++) {
		free(emu->allocs[i].data);
		free(emu->allocs[i].init);
		free(emu->allocs[i].touched);
	}
	free(emu->allocs);
	for (size_t i = 0; i < emu->nmodvars; i++)
		free(emu->modvars[i].addr);
	free(emu->modvars);
	free(emu);
}

void kiln_emu_set_regs(kiln_emu *emu, uint32_t regs_per_thread)
{
	if (emu)
		emu->regs_hint = regs_per_thread;
}
