/* emu_math: PTX arithmetic semantics on raw bits. Round-to-nearest results come from
 * the C operators (IEEE, no contraction); directed rounding (.rz .rm .rp) is computed
 * exactly in software from an error-free pair (s, e) with s + e the exact result
 * (TwoSum / fma-based residuals), so the host FPU state is never touched. Approximate
 * instructions return the correctly rounded value of the exact function, which lies
 * within every documented .approx error bound. */
/* No contraction of a*b+c into fma: clang honours the standard pragma; GCC in ISO C
 * mode (c_std=c11) already defaults to -ffp-contract=off. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif
#include "profile/emu/emu_math.h"

#include <float.h>
#include <math.h>
#include <string.h>

#define F32_QNAN 0x7FFFFFFFu
#define F64_QNAN 0x7FFFFFFFFFFFFFFFull
#define H_QNAN 0x7FFFu
#define F32_MIN_NORMAL 1.1754943508222875e-38
#define F64_MIN_NORMAL 2.2250738585072014e-308
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;

/* ---------------------------------------------------------------- bits */
static float f32(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }
static uint32_t b32(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static double f64(uint64_t u) { double d; memcpy(&d, &u, 8); return d; }
static uint64_t b64(double d) { uint64_t u; memcpy(&u, &d, 8); return u; }

static float ftz32(float x, bool ftz)
{
	return ftz && x != 0 && fabsf(x) < (float)F32_MIN_NORMAL ? copysignf(0.0f, x) : x;
}
static uint32_t out32(float r, bool ftz, bool sat)
{
	r = ftz32(r, ftz);
	if (sat)
		r = isnan(r) ? 0.0f : r < 0 ? 0.0f : r > 1 ? 1.0f : r;
	return isnan(r) ? F32_QNAN : b32(r);
}
static uint64_t out64(double r) { return isnan(r) ? F64_QNAN : b64(r); }

static bool is_rn(emu_rnd r) { return r == EMU_RND_NONE || r == EMU_RN || r == EMU_RNI; }

/* ---------------------------------------------------------------- rounding
 * fmt: a binary format with p significand bits and normal exponents [emin, emax]. */
typedef struct fmt { int p, emin, emax; } fmt;
static const fmt FMT_F64 = { 53, -1022, 1023 }, FMT_F32 = { 24, -126, 127 }, FMT_F16 = { 11, -14, 15 }, FMT_BF16 = { 8, -126, 127 };

/* x * 2^k: one IEEE multiplication by an exact power of two where 2^k is a normal double
 * (the correctly rounded product, which is what ldexp returns); ldexp otherwise. */
static inline double ldexp2(double x, int k)
{
	if (k < -1022 || k > 1023)
		return ldexp(x, k);
	uint64_t b = (uint64_t)(k + 1023) << 52;
	double t;
	memcpy(&t, &b, 8);
	return x * t;
}
/* ilogb from the exponent bits of a normal double; ilogb for the rest */
static inline int ilogb2(double x)
{
	uint64_t b;
	memcpy(&b, &x, 8);
	int ex = (int)(b >> 52 & 0x7FF);
	return ex && ex != 0x7FF ? ex - 1023 : ilogb(x);
}

static double fmt_max(fmt f) { return ldexp2(2.0 - ldexp2(1.0, 1 - f.p), f.emax); }

static inline void two_sum(double a, double b, double *s, double *e)
{
	double x = a + b, bb = x - a;
	*s = x;
	*e = (a - (x - bb)) + (b - bb);
}

/* The exact value (s + e) * 2^scale (|e| at most half an ulp of s in double, as TwoSum
 * leaves it; only its sign matters) rounded to format f in mode r; returns the result as
 * a double (or +-inf on overflow per the mode). scale lets f64 results that are
 * subnormal or out of range be rounded once from an in-range pair. */
static double round_pair(double s, double e, fmt f, emu_rnd r, int scale)
{
	if (s == 0 || !isfinite(s))
		return s; /* keeps the sign of a zero */
	bool neg = s < 0;
	int E = ilogb2(s) + scale;
	if (fabs(s) == ldexp2(1.0, ilogb2(s)) && e != 0 && ((e < 0) != neg))
		E--; /* the exact value lies just inside the binade below */
	if (E < f.emin)
		E = f.emin;
	int sh = f.p - 1 - E + scale;
	double y = sh < -1000 ? copysign(0x1p-100, s) : ldexp2(s, sh); /* exact unless far below the grid */
	double lo = floor(y), frac = y - lo;
	int half; /* where the exact value lies between lo and lo+1: -1 below half, 0 at, 1 above */
	bool inexact = true;
	if (frac == 0) {
		if (e == 0) {
			inexact = false;
			half = -1;
		} else if (e > 0) {
			half = -1;
		} else {
			lo -= 1;
			half = 1;
		}
	} else {
		half = frac < 0.5 ? -1 : frac > 0.5 ? 1 : e > 0 ? 1 : e < 0 ? -1 : 0;
	}
	double k = lo;
	if (inexact) {
		switch (r) {
		case EMU_RZ: case EMU_RZI: k = neg ? lo + 1 : lo; break;
		case EMU_RM: case EMU_RMI: k = lo; break;
		case EMU_RP: case EMU_RPI: k = lo + 1; break;
		default:
			k = half < 0 ? lo : half > 0 ? lo + 1 : (fmod(lo, 2.0) == 0 ? lo : lo + 1);
			break;
		}
	}
	double res = ldexp2(k, E - (f.p - 1));
	double mx = fmt_max(f);
	if (fabs(res) > mx) {
		switch (r) {
		case EMU_RZ: case EMU_RZI: res = neg ? -mx : mx; break;
		case EMU_RM: case EMU_RMI: res = neg ? -INFINITY : mx; break;
		case EMU_RP: case EMU_RPI: res = neg ? -mx : INFINITY; break;
		default: res = neg ? -INFINITY : INFINITY; break;
		}
	}
	if (res == 0)
		res = neg ? -0.0 : 0.0;
	return res;
}

/* f64: s is the round-to-nearest result, e the sign-carrying residual. */
static double round64(double s, double e, emu_rnd r)
{
	if (e == 0 || !isfinite(s) || is_rn(r))
		return s;
	if ((r == EMU_RZ || r == EMU_RZI) && s != 0 && ((e < 0) != (s < 0)))
		return nextafter(s, 0.0);
	if ((r == EMU_RM || r == EMU_RMI) && e < 0)
		return nextafter(s, -INFINITY);
	if ((r == EMU_RP || r == EMU_RPI) && e > 0)
		return nextafter(s, INFINITY);
	return s;
}

/* An f64 result that overflowed to inf under round-to-nearest, fixed for mode r. */
static double overflow64(double s, emu_rnd r)
{
	bool neg = s < 0;
	if ((r == EMU_RZ) || (r == EMU_RM && !neg) || (r == EMU_RP && neg))
		return neg ? -DBL_MAX : DBL_MAX;
	return s;
}

/* Sign of the exact sum of n doubles (Shewchuk's grow-expansion; no overflow assumed). */
static int exact_sign(const double *x, int n)
{
	double ex[16];
	int m = 0;
	for (int i = 0; i < n; i++) {
		double q = x[i];
		int k = 0;
		for (int j = 0; j < m; j++) {
			double s, e;
			two_sum(q, ex[j], &s, &e);
			q = s;
			if (e != 0)
				ex[k++] = e;
		}
		if (q != 0)
			ex[k++] = q;
		m = k;
	}
	return m == 0 ? 0 : ex[m - 1] > 0 ? 1 : -1;
}

/* ---------------------------------------------------------------- f32 */
static uint32_t f32_addsub(uint32_t ua, uint32_t ub, bool sub, emu_rnd r, bool ftz, bool sat)
{
	float a = ftz32(f32(ua), ftz), b = ftz32(f32(ub), ftz);
	if (sub)
		b = -b;
	if (is_rn(r))
		return out32(a + b, ftz, sat);
	double s, e;
	two_sum(a, b, &s, &e);
	if (s == 0 && e == 0) /* exact zero: +0 except -0 + -0, and -0 for x - x under .rm */
		return out32(signbit(a) && signbit(b) ? -0.0f : r == EMU_RM ? -0.0f : 0.0f, ftz, sat);
	return out32((float)round_pair(s, e, FMT_F32, r, 0), ftz, sat);
}
uint32_t emu_f32_add(uint32_t a, uint32_t b, emu_rnd r, bool ftz, bool sat) { return f32_addsub(a, b, false, r, ftz, sat); }
uint32_t emu_f32_sub(uint32_t a, uint32_t b, emu_rnd r, bool ftz, bool sat) { return f32_addsub(a, b, true, r, ftz, sat); }

uint32_t emu_f32_mul(uint32_t ua, uint32_t ub, emu_rnd r, bool ftz, bool sat)
{
	float a = ftz32(f32(ua), ftz), b = ftz32(f32(ub), ftz);
	if (is_rn(r))
		return out32(a * b, ftz, sat);
	return out32((float)round_pair((double)a * b, 0, FMT_F32, r, 0), ftz, sat); /* product exact in double */
}

uint32_t emu_f32_fma(uint32_t ua, uint32_t ub, uint32_t uc, emu_rnd r, bool ftz, bool sat)
{
	float a = ftz32(f32(ua), ftz), b = ftz32(f32(ub), ftz), c = ftz32(f32(uc), ftz);
	if (is_rn(r))
		return out32(fmaf(a, b, c), ftz, sat);
	double p = (double)a * b, s, e;
	if (!isfinite(p) || !isfinite(c))
		return out32((float)(p + c), ftz, sat);
	two_sum(p, c, &s, &e);
	if (s == 0 && e == 0)
		return out32(signbit(p) && signbit(c) ? -0.0f : r == EMU_RM ? -0.0f : 0.0f, ftz, sat);
	return out32((float)round_pair(s, e, FMT_F32, r, 0), ftz, sat);
}

uint32_t emu_f32_div(uint32_t ua, uint32_t ub, emu_rnd r, bool ftz)
{
	float a = ftz32(f32(ua), ftz), b = ftz32(f32(ub), ftz);
	if (is_rn(r))
		return out32(a / b, ftz, false);
	double q = (double)a / b;
	if (!isfinite(q) || q == 0)
		return out32((float)q, ftz, false);
	double rem = fma(-q, b, a); /* exact remainder: a - q*b */
	double e = (rem == 0) ? 0 : ((rem > 0) == (b > 0) ? 1 : -1) * fabs(q) * 0x1p-60;
	return out32((float)round_pair(q, e, FMT_F32, r, 0), ftz, false);
}
/* div.approx.f32: a * (1/b), max error 2 ulp (PTX ISA); for |b| in [2^126, 2^128] it
 * returns 0 as the ISA states. Modeled as the correctly rounded quotient. */
uint32_t emu_f32_div_approx(uint32_t ua, uint32_t ub, bool ftz)
{
	float a = ftz32(f32(ua), ftz), b = ftz32(f32(ub), ftz);
	if (isfinite(a) && isfinite(b) && fabsf(b) >= 0x1p126f) /* all finite floats are < 2^128 */
		return out32(0.0f * a * b, ftz, false);
	return out32((float)((double)a / b), ftz, false);
}
/* div.full.f32: max error 2 ulp over the full range (PTX ISA). */
uint32_t emu_f32_div_full(uint32_t ua, uint32_t ub, bool ftz)
{
	float a = ftz32(f32(ua), ftz), b = ftz32(f32(ub), ftz);
	return out32((float)((double)a / b), ftz, false);
}

uint32_t emu_f32_sqrt(uint32_t ua, emu_rnd r, bool ftz)
{
	float a = ftz32(f32(ua), ftz);
	if (r == EMU_RND_NONE || r == EMU_RN || !(a > 0) || !isfinite(a))
		return out32(sqrtf(a), ftz, false); /* .approx: the correctly rounded root */
	double s = sqrt((double)a);
	double rem = fma(-s, s, a);
	return out32((float)round_pair(s, rem == 0 ? 0 : rem > 0 ? s * 0x1p-60 : -s * 0x1p-60, FMT_F32, r, 0),
		     ftz, false);
}
uint32_t emu_f32_rcp(uint32_t ua, emu_rnd r, bool ftz)
{
	return emu_f32_div(b32(1.0f), ua, r == EMU_RND_NONE ? EMU_RN : r, ftz);
}
/* rsqrt.approx.f32: max relative error 2^-22.9 (PTX ISA); correctly rounded here. */
uint32_t emu_f32_rsqrt_approx(uint32_t ua, bool ftz)
{
	float a = ftz32(f32(ua), ftz);
	return out32((float)(1.0 / sqrt((double)a)), ftz, false);
}
/* ex2.approx.f32: max 2 ulp across the full range (PTX ISA); -inf -> +0, +inf -> +inf,
 * NaN -> NaN, all of which exp2 gives. */
uint32_t emu_f32_ex2_approx(uint32_t ua, bool ftz)
{
	return out32((float)exp2((double)ftz32(f32(ua), ftz)), ftz, false);
}
/* lg2.approx.f32: max absolute error 2^-22.6 for x in (0.5, 2), else 2 ulp (PTX ISA);
 * +-0 -> -inf, negative -> NaN, +inf -> +inf. */
uint32_t emu_f32_lg2_approx(uint32_t ua, bool ftz)
{
	return out32((float)log2((double)ftz32(f32(ua), ftz)), ftz, false);
}
/* sin/cos.approx.f32: max absolute error 2^-20.9 in [-pi, pi] (PTX ISA); +-inf -> NaN. */
uint32_t emu_f32_sin_approx(uint32_t ua, bool ftz)
{
	return out32((float)sin((double)ftz32(f32(ua), ftz)), ftz, false);
}
uint32_t emu_f32_cos_approx(uint32_t ua, bool ftz)
{
	return out32((float)cos((double)ftz32(f32(ua), ftz)), ftz, false);
}
/* tanh.approx.f32: max relative error 2^-11 (PTX ISA). Subnormal inputs are kept. */
uint32_t emu_f32_tanh_approx(uint32_t ua)
{
	return out32((float)tanh((double)f32(ua)), false, false);
}

static uint32_t f32_minmax(uint32_t ua, uint32_t ub, bool ftz, bool nan, bool max)
{
	float a = ftz32(f32(ua), ftz), b = ftz32(f32(ub), ftz);
	if (isnan(a) || isnan(b)) {
		if (nan || (isnan(a) && isnan(b)))
			return F32_QNAN;
		return out32(isnan(a) ? b : a, false, false);
	}
	if (a == b) /* -0 is less than +0 */
		return out32(max ? (signbit(a) ? b : a) : (signbit(a) ? a : b), false, false);
	return out32(max ? (a > b ? a : b) : (a < b ? a : b), false, false);
}
uint32_t emu_f32_min(uint32_t a, uint32_t b, bool ftz, bool nan) { return f32_minmax(a, b, ftz, nan, false); }
uint32_t emu_f32_max(uint32_t a, uint32_t b, bool ftz, bool nan) { return f32_minmax(a, b, ftz, nan, true); }
uint32_t emu_f32_abs(uint32_t a, bool ftz) { return b32(ftz32(f32(a), ftz)) & 0x7FFFFFFFu; }
uint32_t emu_f32_neg(uint32_t a, bool ftz) { return b32(ftz32(f32(a), ftz)) ^ 0x80000000u; }
uint32_t emu_f32_copysign(uint32_t a, uint32_t b) { return (b & 0x7FFFFFFFu) | (a & 0x80000000u); }

/* ---------------------------------------------------------------- f64 */
static uint64_t f64_fin(double s, double a, double b, double e, emu_rnd r)
{
	if (isinf(s) && isfinite(a) && isfinite(b))
		return out64(overflow64(s, r));
	return out64(round64(s, e, r));
}
static uint64_t f64_addsub(uint64_t ua, uint64_t ub, bool sub, emu_rnd r)
{
	double a = f64(ua), b = sub ? -f64(ub) : f64(ub), s, e;
	two_sum(a, b, &s, &e);
	if (!isfinite(s))
		e = 0;
	if (s == 0 && e == 0 && !(signbit(a) && signbit(b)) && r == EMU_RM)
		return b64(-0.0);
	return f64_fin(s, a, b, e, r);
}
uint64_t emu_f64_add(uint64_t a, uint64_t b, emu_rnd r) { return f64_addsub(a, b, false, r); }
uint64_t emu_f64_sub(uint64_t a, uint64_t b, emu_rnd r) { return f64_addsub(a, b, true, r); }
uint64_t emu_f64_mul(uint64_t ua, uint64_t ub, emu_rnd r)
{
	double a = f64(ua), b = f64(ub), p = a * b;
	if (is_rn(r) || !isfinite(a) || !isfinite(b) || a == 0 || b == 0)
		return out64(p);
	/* exact product of the mantissas (in [0.5, 1): no underflow), rounded once */
	int ea, eb;
	double ma = frexp(a, &ea), mb = frexp(b, &eb), pm = ma * mb, pe = fma(ma, mb, -pm);
	return out64(round_pair(pm, pe, FMT_F64, r, ea + eb));
}
uint64_t emu_f64_fma(uint64_t ua, uint64_t ub, uint64_t uc, emu_rnd r)
{
	double a = f64(ua), b = f64(ub), c = f64(uc), s = fma(a, b, c);
	if (isinf(s) && isfinite(a) && isfinite(b) && isfinite(c))
		return out64(overflow64(s, r));
	if (is_rn(r) || !isfinite(s) || !isfinite(a * b))
		return f64_fin(s, a * b, c, 0, is_rn(r) ? EMU_RN : r);
	double ph = a * b, pl = fma(a, b, -ph);
	double parts[4] = { ph, pl, c, -s };
	int sg = exact_sign(parts, 4);
	if (s == 0 && sg == 0 && r == EMU_RM && !(signbit(ph) && signbit(c)))
		return b64(-0.0);
	return f64_fin(s, a, b, sg, r);
}
uint64_t emu_f64_div(uint64_t ua, uint64_t ub, emu_rnd r)
{
	double a = f64(ua), b = f64(ub), q = a / b;
	if (is_rn(r) || !isfinite(a) || !isfinite(b) || a == 0 || b == 0)
		return out64(q);
	int ea, eb;
	double ma = frexp(a, &ea), mb = frexp(b, &eb), qm = ma / mb;
	double rem = fma(-qm, mb, ma); /* exact: mantissas are normal */
	double e = rem == 0 ? 0 : ((rem > 0) == (mb > 0) ? 1 : -1) * fabs(qm) * 0x1p-60;
	return out64(round_pair(qm, e, FMT_F64, r, ea - eb));
}
uint64_t emu_f64_sqrt(uint64_t ua, emu_rnd r)
{
	double a = f64(ua), s = sqrt(a);
	if (is_rn(r) || !isfinite(s) || !(a > 0))
		return out64(s);
	int ea;
	double m = frexp(a, &ea);
	if (ea & 1) {
		m *= 2;
		ea--;
	}
	double sm = sqrt(m), rem = fma(-sm, sm, m);
	return out64(round_pair(sm, rem == 0 ? 0 : rem > 0 ? sm * 0x1p-60 : -sm * 0x1p-60, FMT_F64, r, ea / 2));
}
/* r = NONE: rcp.approx.ftz.f64 (max relative error 2^-51 per the ISA's description of a
 * fast reciprocal); modeled as the correctly rounded value with subnormals flushed. */
uint64_t emu_f64_rcp(uint64_t ua, emu_rnd r)
{
	if (r == EMU_RND_NONE) {
		double a = f64(ua);
		if (fabs(a) < F64_MIN_NORMAL)
			a = copysign(0.0, a);
		double q = 1.0 / a;
		return out64(fabs(q) < F64_MIN_NORMAL ? copysign(0.0, q) : q);
	}
	return emu_f64_div(b64(1.0), ua, r);
}
uint64_t emu_f64_rsqrt_approx(uint64_t ua) { return out64(1.0 / sqrt(f64(ua))); }
static uint64_t f64_minmax(uint64_t ua, uint64_t ub, bool nan, bool max)
{
	double a = f64(ua), b = f64(ub);
	if (isnan(a) || isnan(b))
		return nan || (isnan(a) && isnan(b)) ? F64_QNAN : isnan(a) ? ub : ua;
	if (a == b)
		return max ? (signbit(a) ? ub : ua) : (signbit(a) ? ua : ub);
	return max ? (a > b ? ua : ub) : (a < b ? ua : ub);
}
uint64_t emu_f64_min(uint64_t a, uint64_t b, bool nan) { return f64_minmax(a, b, nan, false); }
uint64_t emu_f64_max(uint64_t a, uint64_t b, bool nan) { return f64_minmax(a, b, nan, true); }
uint64_t emu_f64_abs(uint64_t a) { return a & ~(1ull << 63); }
uint64_t emu_f64_neg(uint64_t a) { return a ^ (1ull << 63); }
uint64_t emu_f64_copysign(uint64_t a, uint64_t b) { return (b & ~(1ull << 63)) | (a & (1ull << 63)); }

/* ---------------------------------------------------------------- testp / setp */
bool emu_testp_eval(emu_testp op, uint64_t a, bool is64)
{
	double x = is64 ? f64(a) : f32((uint32_t)a);
	double mn = is64 ? F64_MIN_NORMAL : F32_MIN_NORMAL;
	switch (op) {
	case EMU_TESTP_FINITE: return isfinite(x);
	case EMU_TESTP_INFINITE: return isinf(x);
	case EMU_TESTP_NUMBER: return !isnan(x);
	case EMU_TESTP_NOTANUMBER: return isnan(x);
	case EMU_TESTP_NORMAL: return isfinite(x) && fabs(x) >= mn;
	case EMU_TESTP_SUBNORMAL: return x != 0 && fabs(x) < mn;
	}
	return false;
}

float emu_f16_to_f32(uint16_t h)
{
	uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 31, m = h & 1023;
	if (e == 31)
		return f32(s | 0x7F800000u | (m << 13));
	if (e == 0)
		return (s ? -1.0f : 1.0f) * ldexpf((float)m, -24);
	return f32(s | ((e + 112) << 23) | (m << 13));
}
float emu_bf16_to_f32(uint16_t h) { return f32((uint32_t)h << 16); }

static double to_double(uint64_t v, emu_type t, bool ftz)
{
	switch (t) {
	case EMU_F64: return f64(v);
	case EMU_F16: return emu_f16_to_f32((uint16_t)v);
	case EMU_BF16: return emu_bf16_to_f32((uint16_t)v);
	default: return ftz32(f32((uint32_t)v), ftz);
	}
}

static bool cmp_ordered(emu_cmp op, double a, double b)
{
	switch (op) {
	case EMU_CMP_EQ: case EMU_CMP_EQU: return a == b;
	case EMU_CMP_NE: case EMU_CMP_NEU: return a != b;
	case EMU_CMP_LT: case EMU_CMP_LTU: case EMU_CMP_LO: return a < b;
	case EMU_CMP_LE: case EMU_CMP_LEU: case EMU_CMP_LS: return a <= b;
	case EMU_CMP_GT: case EMU_CMP_GTU: case EMU_CMP_HI: return a > b;
	case EMU_CMP_GE: case EMU_CMP_GEU: case EMU_CMP_HS: return a >= b;
	case EMU_CMP_NUM: return true;
	case EMU_CMP_NAN: return false;
	}
	return false;
}
bool emu_fcmp(emu_cmp op, uint64_t ua, uint64_t ub, emu_type t, bool ftz)
{
	double a = to_double(ua, t, ftz), b = to_double(ub, t, ftz);
	if (isnan(a) || isnan(b))
		return op == EMU_CMP_NAN || (op >= EMU_CMP_EQU && op <= EMU_CMP_GEU);
	return cmp_ordered(op, a, b);
}

static int type_bits(emu_type t)
{
	switch (t) {
	case EMU_B8: case EMU_U8: case EMU_S8: return 8;
	case EMU_B16: case EMU_U16: case EMU_S16: case EMU_F16: case EMU_BF16: return 16;
	case EMU_B64: case EMU_U64: case EMU_S64: case EMU_F64: return 64;
	case EMU_PRED: return 1;
	default: return 32;
	}
}
static bool type_signed(emu_type t) { return t == EMU_S8 || t == EMU_S16 || t == EMU_S32 || t == EMU_S64; }
static uint64_t zx(uint64_t v, int bits) { return bits >= 64 ? v : v & ((1ull << bits) - 1); }
static int64_t sx(uint64_t v, int bits)
{
	if (bits >= 64)
		return (int64_t)v;
	uint64_t sb = 1ull << (bits - 1);
	return (int64_t)((zx(v, bits) ^ sb) - sb);
}
bool emu_icmp(emu_cmp op, uint64_t a, uint64_t b, emu_type t)
{
	int n = type_bits(t);
	bool lt, eq;
	if (type_signed(t) && op != EMU_CMP_LO && op != EMU_CMP_LS && op != EMU_CMP_HI && op != EMU_CMP_HS) {
		lt = sx(a, n) < sx(b, n);
		eq = sx(a, n) == sx(b, n);
	} else {
		lt = zx(a, n) < zx(b, n);
		eq = zx(a, n) == zx(b, n);
	}
	switch (op) {
	case EMU_CMP_EQ: return eq;
	case EMU_CMP_NE: return !eq;
	case EMU_CMP_LT: case EMU_CMP_LO: return lt;
	case EMU_CMP_LE: case EMU_CMP_LS: return lt || eq;
	case EMU_CMP_GT: case EMU_CMP_HI: return !lt && !eq;
	case EMU_CMP_GE: case EMU_CMP_HS: return !lt;
	default: return false;
	}
}

/* ---------------------------------------------------------------- f16 / bf16 */
static bool is_bf(emu_type t) { return t == EMU_BF16 || t == EMU_BF16X2; }
static bool is_x2(emu_type t) { return t == EMU_F16X2 || t == EMU_BF16X2; }

/* Encode a value already representable in the format (or +-inf, NaN) into 16 bits. */
static uint16_t enc16(double x, bool bf)
{
	if (isnan(x))
		return H_QNAN;
	if (bf)
		return (uint16_t)(b32((float)x) >> 16);
	uint16_t s = signbit(x) ? 0x8000 : 0;
	double a = fabs(x);
	if (isinf(a))
		return s | 0x7C00;
	if (a < 0x1p-14)
		return s | (uint16_t)(a * 0x1p24);
	int E = ilogb(a);
	return s | (uint16_t)((E + 15) << 10) | (uint16_t)(ldexp(a, 10 - E) - 1024);
}
static double dec16(uint32_t h, bool bf, bool ftz)
{
	double x = bf ? emu_bf16_to_f32((uint16_t)h) : emu_f16_to_f32((uint16_t)h);
	double mn = bf ? F32_MIN_NORMAL : 0x1p-14;
	return ftz && x != 0 && fabs(x) < mn ? copysign(0.0, x) : x;
}
/* Round s + e to f16/bf16, then .ftz / .sat, and encode. */
static uint16_t put16(double s, double e, bool bf, emu_rnd r, bool ftz, bool sat)
{
	if (isnan(s))
		return H_QNAN;
	double x = round_pair(s, e, bf ? FMT_BF16 : FMT_F16, r, 0);
	double mn = bf ? F32_MIN_NORMAL : 0x1p-14;
	if (ftz && x != 0 && fabs(x) < mn)
		x = copysign(0.0, x);
	if (sat)
		x = x < 0 ? 0.0 : x > 1 ? 1.0 : x;
	return enc16(x, bf);
}

enum { H_ADD, H_SUB, H_MUL, H_FMA };
static uint16_t h1(int op, uint32_t ua, uint32_t ub, uint32_t uc, bool bf, bool ftz, bool sat)
{
	double a = dec16(ua, bf, ftz), b = dec16(ub, bf, ftz), c = dec16(uc, bf, ftz), s, e;
	switch (op) {
	case H_ADD: two_sum(a, b, &s, &e); break;
	case H_SUB: two_sum(a, -b, &s, &e); break;
	case H_MUL: s = a * b; e = 0; break; /* exact: 22 significant bits at most */
	default:
		if (!isfinite(a * b) || !isfinite(c)) {
			s = a * b + c;
			e = 0;
		} else {
			two_sum(a * b, c, &s, &e);
		}
		break;
	}
	if (!isfinite(s))
		e = 0;
	if (isnan(s))
		return H_QNAN;
	return put16(s, e, bf, EMU_RN, ftz, sat);
}
static uint32_t hmap(int op, uint32_t a, uint32_t b, uint32_t c, emu_type t, bool ftz, bool sat)
{
	bool bf = is_bf(t);
	uint32_t lo = h1(op, a & 0xFFFF, b & 0xFFFF, c & 0xFFFF, bf, ftz, sat);
	if (!is_x2(t))
		return lo;
	return lo | (uint32_t)h1(op, a >> 16, b >> 16, c >> 16, bf, ftz, sat) << 16;
}
uint32_t emu_h_add(uint32_t a, uint32_t b, emu_type t, bool ftz, bool sat) { return hmap(H_ADD, a, b, 0, t, ftz, sat); }
uint32_t emu_h_sub(uint32_t a, uint32_t b, emu_type t, bool ftz, bool sat) { return hmap(H_SUB, a, b, 0, t, ftz, sat); }
uint32_t emu_h_mul(uint32_t a, uint32_t b, emu_type t, bool ftz, bool sat) { return hmap(H_MUL, a, b, 0, t, ftz, sat); }
uint32_t emu_h_fma(uint32_t a, uint32_t b, uint32_t c, emu_type t, bool ftz, bool sat) { return hmap(H_FMA, a, b, c, t, ftz, sat); }

static uint16_t hmm1(uint32_t ua, uint32_t ub, bool bf, bool ftz, bool nan, bool max)
{
	double a = dec16(ua, bf, ftz), b = dec16(ub, bf, ftz);
	if (isnan(a) || isnan(b)) {
		if (nan || (isnan(a) && isnan(b)))
			return H_QNAN;
		return enc16(isnan(a) ? b : a, bf);
	}
	if (a == b)
		return enc16(max ? (signbit(a) ? b : a) : (signbit(a) ? a : b), bf);
	return enc16(max ? fmax(a, b) : fmin(a, b), bf);
}
static uint32_t hmm(uint32_t a, uint32_t b, emu_type t, bool ftz, bool nan, bool max)
{
	bool bf = is_bf(t);
	uint32_t lo = hmm1(a & 0xFFFF, b & 0xFFFF, bf, ftz, nan, max);
	return is_x2(t) ? lo | (uint32_t)hmm1(a >> 16, b >> 16, bf, ftz, nan, max) << 16 : lo;
}
uint32_t emu_h_min(uint32_t a, uint32_t b, emu_type t, bool ftz, bool nan) { return hmm(a, b, t, ftz, nan, false); }
uint32_t emu_h_max(uint32_t a, uint32_t b, emu_type t, bool ftz, bool nan) { return hmm(a, b, t, ftz, nan, true); }
uint32_t emu_h_neg(uint32_t a, emu_type t) { return a ^ (is_x2(t) ? 0x80008000u : 0x8000u); }
uint32_t emu_h_abs(uint32_t a, emu_type t) { return a & (is_x2(t) ? 0x7FFF7FFFu : 0x7FFFu); }

/* ---------------------------------------------------------------- cvt */
static bool type_float(emu_type t) { return t == EMU_F16 || t == EMU_BF16 || t == EMU_F32 || t == EMU_F64; }

static emu_rnd int_rnd(emu_rnd r)
{
	switch (r) {
	case EMU_RN: case EMU_RNI: return EMU_RNI;
	case EMU_RM: case EMU_RMI: return EMU_RMI;
	case EMU_RP: case EMU_RPI: return EMU_RPI;
	default: return EMU_RZI;
	}
}
static double round_int(double x, emu_rnd r)
{
	switch (int_rnd(r)) {
	case EMU_RNI: { double y = nearbyint(x); /* default host mode is nearest-even */
		double fl = floor(x);
		if (x - fl == 0.5)
			y = fmod(fl, 2.0) == 0 ? fl : fl + 1;
		return y; }
	case EMU_RMI: return floor(x);
	case EMU_RPI: return ceil(x);
	default: return trunc(x);
	}
}

/* The source as an exact (s, e) double pair, with the integer value when integral. */
static void src_value(uint64_t v, emu_type src, bool ftz, double *s, double *e)
{
	*e = 0;
	if (type_float(src)) {
		*s = to_double(v, src, ftz && src == EMU_F32);
		return;
	}
	int n = type_bits(src);
	if (type_signed(src)) {
		int64_t x = sx(v, n);
		*s = (double)x;
		i128 d = (i128)x - (i128)*s; /* exact residual of the int -> double rounding */
		*e = d == 0 ? 0 : d > 0 ? 1 : -1;
	} else {
		uint64_t x = zx(v, n);
		*s = (double)x;
		u128 sv = (u128)*s;
		*e = (u128)x == sv ? 0 : (u128)x > sv ? 1 : -1;
	}
}

static uint64_t put_float(double s, double e, emu_type dst, emu_rnd r, bool ftz, bool sat)
{
	if (isnan(s) && sat) /* .sat flushes NaN to +0 */
		return 0;
	if (isnan(s))
		return dst == EMU_F64 ? F64_QNAN : dst == EMU_F32 ? F32_QNAN : H_QNAN;
	if (!isfinite(s))
		e = 0;
	switch (dst) {
	case EMU_F64: {
		double x = round64(s, e, r);
		if (sat)
			x = x < 0 ? 0.0 : x > 1 ? 1.0 : x;
		return out64(x); }
	case EMU_F32:
		return out32((float)round_pair(s, e, FMT_F32, r == EMU_RND_NONE ? EMU_RN : r, 0), ftz, sat);
	default:
		return put16(s, e, dst == EMU_BF16, r == EMU_RND_NONE ? EMU_RN : r, false, sat);
	}
}

uint64_t emu_cvt(uint64_t v, emu_type dst, emu_type src, emu_rnd r, bool ftz, bool sat)
{
	int dn = type_bits(dst), sn = type_bits(src);
	if (!type_float(dst) && !type_float(src)) {
		/* integer to integer */
		if (!sat)
			return type_signed(src) ? zx((uint64_t)sx(v, sn), dn) : zx(zx(v, sn), dn);
		i128 x = type_signed(src) ? (i128)sx(v, sn) : (i128)zx(v, sn);
		i128 lo, hi;
		if (type_signed(dst)) {
			lo = -((i128)1 << (dn - 1));
			hi = ((i128)1 << (dn - 1)) - 1;
		} else {
			lo = 0;
			hi = ((i128)1 << dn) - 1;
		}
		x = x < lo ? lo : x > hi ? hi : x;
		return zx((uint64_t)x, dn);
	}
	double s, e;
	src_value(v, src, ftz, &s, &e);
	if (type_float(dst)) {
		/* same-type float with an integer rounding: round to an integral value */
		if (type_float(src) && (r == EMU_RNI || r == EMU_RZI || r == EMU_RMI || r == EMU_RPI))
			s = round_int(s, r);
		return put_float(s, e, dst, r, ftz && dst == EMU_F32, sat);
	}
	/* float to integer: saturate, NaN -> 0 */
	if (isnan(s))
		return 0;
	double y = round_int(s, r);
	if (type_signed(dst)) {
		double lo = -ldexp(1.0, dn - 1), hi = ldexp(1.0, dn - 1);
		if (y < lo)
			return zx((uint64_t)(0 - ((u128)1 << (dn - 1))), dn);
		if (y >= hi)
			return zx((uint64_t)(((i128)1 << (dn - 1)) - 1), dn);
		return zx((uint64_t)(int64_t)y, dn);
	}
	if (y <= 0)
		return 0;
	if (y >= ldexp(1.0, dn))
		return zx(~0ull, dn);
	return (uint64_t)y;
}

uint64_t emu_cvt_satfinite(uint64_t v, emu_type dst, emu_type src, emu_rnd r, bool relu)
{
	double s, e;
	src_value(v, src, false, &s, &e);
	if (isnan(s))
		return dst == EMU_F32 ? F32_QNAN : H_QNAN;
	if (relu && s < 0)
		s = 0, e = 0;
	fmt f = dst == EMU_F32 ? FMT_F32 : dst == EMU_BF16 ? FMT_BF16 : FMT_F16;
	double x = round_pair(s, isfinite(s) ? e : 0, f, r == EMU_RND_NONE ? EMU_RN : r, 0);
	double mx = fmt_max(f);
	if (x > mx)
		x = mx;
	if (x < -mx)
		x = -mx;
	return put_float(x, 0, dst, EMU_RN, false, false);
}

uint32_t emu_cvt_pack_x2(uint32_t a, uint32_t b, emu_type dst, emu_rnd r, bool satfinite, bool relu)
{
	emu_type h = dst == EMU_BF16X2 ? EMU_BF16 : EMU_F16;
	uint64_t hi, lo;
	if (satfinite || relu) {
		hi = emu_cvt_satfinite(a, h, EMU_F32, r, relu);
		lo = emu_cvt_satfinite(b, h, EMU_F32, r, relu);
		if (!satfinite) { /* relu alone: overflow stays inf */
			hi = emu_cvt(f32(a) < 0 ? 0 : a, h, EMU_F32, r, false, false);
			lo = emu_cvt(f32(b) < 0 ? 0 : b, h, EMU_F32, r, false, false);
		}
	} else {
		hi = emu_cvt(a, h, EMU_F32, r, false, false);
		lo = emu_cvt(b, h, EMU_F32, r, false, false);
	}
	return (uint32_t)(hi << 16 | (lo & 0xFFFF));
}

/* ---------------------------------------------------------------- integers */
static uint64_t wrap(uint64_t v, emu_type t) { return zx(v, type_bits(t)); }

uint64_t emu_int_mul_lo(uint64_t a, uint64_t b, emu_type t) { return wrap(a * b, t); }
uint64_t emu_int_mul_hi(uint64_t a, uint64_t b, emu_type t)
{
	int n = type_bits(t);
	if (type_signed(t)) {
		i128 p = (i128)sx(a, n) * (i128)sx(b, n);
		return wrap((uint64_t)(p >> n), t);
	}
	u128 p = (u128)zx(a, n) * (u128)zx(b, n);
	return wrap((uint64_t)(p >> n), t);
}
uint64_t emu_int_mul_wide(uint64_t a, uint64_t b, emu_type t)
{
	int n = type_bits(t); /* 16 or 32: the result is 2n bits */
	if (type_signed(t))
		return zx((uint64_t)(sx(a, n) * sx(b, n)), 2 * n);
	return zx(zx(a, n) * zx(b, n), 2 * n);
}
/* mul24: the low 24 bits of each operand (sign-extended for .s32), 48-bit product;
 * .lo its low 32 bits, .hi bits 16..47. */
uint64_t emu_int_mul24(uint64_t a, uint64_t b, emu_type t, bool hi)
{
	int64_t x = type_signed(t) ? sx(a, 24) : (int64_t)zx(a, 24);
	int64_t y = type_signed(t) ? sx(b, 24) : (int64_t)zx(b, 24);
	uint64_t p = (uint64_t)(x * y);
	return zx(hi ? p >> 16 : p, 32);
}
uint64_t emu_int_sad(uint64_t a, uint64_t b, uint64_t c, emu_type t)
{
	int n = type_bits(t);
	uint64_t d;
	if (type_signed(t))
		d = sx(a, n) < sx(b, n) ? (uint64_t)sx(b, n) - (uint64_t)sx(a, n) : (uint64_t)sx(a, n) - (uint64_t)sx(b, n);
	else
		d = zx(a, n) < zx(b, n) ? zx(b, n) - zx(a, n) : zx(a, n) - zx(b, n);
	return wrap(c + d, t);
}
uint64_t emu_int_div(uint64_t a, uint64_t b, emu_type t)
{
	int n = type_bits(t);
	if (type_signed(t)) {
		int64_t x = sx(a, n), y = sx(b, n);
		if (y == 0)
			return wrap(~0ull, t);
		if (y == -1)
			return wrap(0 - (uint64_t)x, t); /* MIN / -1 wraps to MIN */
		return wrap((uint64_t)(x / y), t);
	}
	return zx(b, n) == 0 ? wrap(~0ull, t) : zx(a, n) / zx(b, n);
}
uint64_t emu_int_rem(uint64_t a, uint64_t b, emu_type t)
{
	int n = type_bits(t);
	if (type_signed(t)) {
		int64_t x = sx(a, n), y = sx(b, n);
		if (y == 0)
			return wrap((uint64_t)x, t);
		if (y == -1)
			return 0;
		return wrap((uint64_t)(x % y), t);
	}
	return zx(b, n) == 0 ? zx(a, n) : zx(a, n) % zx(b, n);
}
uint64_t emu_int_min(uint64_t a, uint64_t b, emu_type t)
{
	int n = type_bits(t);
	if (type_signed(t))
		return wrap(sx(a, n) < sx(b, n) ? a : b, t);
	return zx(a, n) < zx(b, n) ? zx(a, n) : zx(b, n);
}
uint64_t emu_int_max(uint64_t a, uint64_t b, emu_type t)
{
	int n = type_bits(t);
	if (type_signed(t))
		return wrap(sx(a, n) > sx(b, n) ? a : b, t);
	return zx(a, n) > zx(b, n) ? zx(a, n) : zx(b, n);
}
uint64_t emu_int_abs(uint64_t a, emu_type t)
{
	int64_t x = sx(a, type_bits(t));
	return wrap(x < 0 ? 0 - (uint64_t)x : (uint64_t)x, t);
}
uint64_t emu_int_neg(uint64_t a, emu_type t) { return wrap(0 - a, t); }
uint64_t emu_int_shl(uint64_t a, uint32_t n, emu_type t)
{
	int w = type_bits(t);
	return (int)n >= w || n >= 64 ? 0 : wrap(a << n, t);
}
uint64_t emu_int_shr(uint64_t a, uint32_t n, emu_type t)
{
	int w = type_bits(t);
	if (type_signed(t)) {
		int64_t x = sx(a, w);
		return wrap((uint64_t)(x >> (n >= (uint32_t)w ? w - 1 : (int)n)), t);
	}
	return n >= (uint32_t)w ? 0 : zx(a, w) >> n;
}
/* bfe.{u,s}{32,64} d, a, b, c: pos = b & 0xff, len = c & 0xff (PTX ISA); bits at or past
 * the msb read as the sign bit of a (signed) or 0; len 0 gives 0. */
uint64_t emu_int_bfe(uint64_t a, uint32_t pos, uint32_t len, emu_type t)
{
	int w = type_bits(t);
	pos &= 0xFF;
	len &= 0xFF;
	if (len == 0)
		return 0;
	uint64_t x = zx(a, w);
	bool sbit;
	if (type_signed(t))
		sbit = (pos + len - 1 >= (uint32_t)w) ? (x >> (w - 1)) & 1 : (x >> (pos + len - 1)) & 1;
	else
		sbit = false;
	uint64_t d = 0;
	for (uint32_t i = 0; i < (uint32_t)w; i++) {
		uint64_t bit;
		if (i < len && pos + i < (uint32_t)w)
			bit = (x >> (pos + i)) & 1;
		else if (i < len)
			bit = type_signed(t) ? (x >> (w - 1)) & 1 : 0;
		else
			bit = sbit;
		d |= bit << i;
	}
	return d;
}
/* bfi d, a, b, c, e: pos = c & 0xff, len = e & 0xff; insert a's low bits into b. */
uint64_t emu_int_bfi(uint64_t a, uint64_t b, uint32_t pos, uint32_t len, emu_type t)
{
	int w = type_bits(t);
	pos &= 0xFF;
	len &= 0xFF;
	uint64_t d = zx(b, w);
	for (uint32_t i = 0; i < len && pos + i < (uint32_t)w; i++)
		d = (d & ~(1ull << (pos + i))) | (((a >> i) & 1) << (pos + i));
	return d;
}
uint64_t emu_int_brev(uint64_t a, emu_type t)
{
	int w = type_bits(t);
	uint64_t d = 0;
	for (int i = 0; i < w; i++)
		d |= ((a >> i) & 1) << (w - 1 - i);
	return d;
}
uint32_t emu_int_clz(uint64_t a, emu_type t)
{
	int w = type_bits(t);
	uint64_t x = zx(a, w);
	uint32_t n = 0;
	for (int i = w - 1; i >= 0 && !((x >> i) & 1); i--)
		n++;
	return n;
}
uint32_t emu_int_popc(uint64_t a, emu_type t)
{
	uint64_t x = zx(a, type_bits(t));
	uint32_t n = 0;
	for (; x; x &= x - 1)
		n++;
	return n;
}
uint32_t emu_int_bfind(uint64_t a, emu_type t, bool shiftamt)
{
	int w = type_bits(t);
	uint64_t x = zx(a, w);
	if (type_signed(t) && ((x >> (w - 1)) & 1))
		x = zx(~x, w); /* most significant non-sign bit */
	if (x == 0)
		return 0xFFFFFFFFu;
	int i = w - 1;
	while (!((x >> i) & 1))
		i--;
	return shiftamt ? (uint32_t)(w - 1 - i) : (uint32_t)i;
}
/* prmt.b32: bytes of {b, a} numbered 0..7 (a = 0..3). */
uint32_t emu_prmt(uint32_t a, uint32_t b, uint32_t c, emu_prmt_mode m)
{
	uint64_t x = (uint64_t)b << 32 | a;
	uint8_t byte[8];
	for (int i = 0; i < 8; i++)
		byte[i] = (uint8_t)(x >> (8 * i));
	uint32_t sel[4];
	unsigned k = c & 3;
	switch (m) {
	case EMU_PRMT_F4E: for (int i = 0; i < 4; i++) sel[i] = (k + (unsigned)i) & 7; break;
	case EMU_PRMT_B4E: for (int i = 0; i < 4; i++) sel[i] = (k + 8 - (unsigned)i) & 7; break;
	case EMU_PRMT_RC8: for (int i = 0; i < 4; i++) sel[i] = k; break;
	case EMU_PRMT_ECL: for (int i = 0; i < 4; i++) sel[i] = (unsigned)i <= k ? k : (unsigned)i; break;
	case EMU_PRMT_ECR: for (int i = 0; i < 4; i++) sel[i] = (unsigned)i >= k ? k : (unsigned)i; break;
	case EMU_PRMT_RC16:
		for (int i = 0; i < 4; i++)
			sel[i] = (2 * (k & 1)) + ((unsigned)i & 1);
		break;
	default: {
		uint32_t d = 0;
		for (int i = 0; i < 4; i++) {
			uint32_t s = (c >> (4 * i)) & 0xF;
			uint8_t v = byte[s & 7];
			if (s & 8) /* sign replicate the msb of the selected byte */
				v = (v & 0x80) ? 0xFF : 0;
			d |= (uint32_t)v << (8 * i);
		}
		return d; }
	}
	uint32_t d = 0;
	for (int i = 0; i < 4; i++)
		d |= (uint32_t)byte[sel[i]] << (8 * i);
	return d;
}
uint32_t emu_lop3(uint32_t a, uint32_t b, uint32_t c, uint8_t lut)
{
	uint32_t d = 0;
	for (int i = 0; i < 8; i++) {
		if (!((lut >> i) & 1))
			continue;
		uint32_t ta = (i & 4) ? a : ~a, tb = (i & 2) ? b : ~b, tc = (i & 1) ? c : ~c;
		d |= ta & tb & tc;
	}
	return d;
}
/* shf.l d, a, b, c: the upper 32 bits of ({b:a} << n); shf.r: the lower 32 of >> n. */
uint32_t emu_shf_l(uint32_t a, uint32_t b, uint32_t n, bool clamp)
{
	n = clamp ? (n > 32 ? 32 : n) : n & 31;
	uint64_t x = (uint64_t)b << 32 | a;
	return (uint32_t)((x << n) >> 32);
}
uint32_t emu_shf_r(uint32_t a, uint32_t b, uint32_t n, bool clamp)
{
	n = clamp ? (n > 32 ? 32 : n) : n & 31;
	uint64_t x = (uint64_t)b << 32 | a;
	return (uint32_t)(x >> n);
}
static int32_t part(uint32_t v, int i, int bits, bool sgn)
{
	uint32_t x = (v >> (i * bits)) & ((1u << bits) - 1);
	return sgn ? (int32_t)sx(x, bits) : (int32_t)x;
}
uint32_t emu_dp4a(uint32_t a, uint32_t b, uint32_t c, bool as, bool bs)
{
	uint32_t d = c;
	for (int i = 0; i < 4; i++)
		d += (uint32_t)(part(a, i, 8, as) * part(b, i, 8, bs));
	return d;
}
uint32_t emu_dp2a(uint32_t a, uint32_t b, uint32_t c, bool as, bool bs, bool hi)
{
	uint32_t d = c;
	for (int i = 0; i < 2; i++)
		d += (uint32_t)(part(a, i, 16, as) * part(b, i + (hi ? 2 : 0), 8, bs));
	return d;
}
