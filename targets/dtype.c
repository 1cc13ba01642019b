/* dtypes: names, sizes and exact conversions between double and every element type.
 * f16/bf16 are rounded from double in ONE step (no detour through float, which would
 * double-round), nearest-even, with subnormals, overflow to Inf and quiet NaNs.
 * Integers round half-even and saturate; NaN stores as 0; bool stores v != 0. */
#include "targets/targets_int.h"

#include <float.h>
#include <math.h>
#include <string.h>

static const struct {
	const char *name;
	size_t size;
	bool is_float;
} dtypes[KILN_DTYPE_COUNT] = {
	[KILN_F32] = {"f32", 4, true},   [KILN_F64] = {"f64", 8, true},
	[KILN_F16] = {"f16", 2, true},   [KILN_BF16] = {"bf16", 2, true},
	[KILN_I32] = {"i32", 4, false},  [KILN_I64] = {"i64", 8, false},
	[KILN_U8] = {"u8", 1, false},    [KILN_U32] = {"u32", 4, false},
	[KILN_BOOL] = {"bool", 1, false},
};

size_t kiln_dtype_size(kiln_dtype t)
{
	return (unsigned)t < KILN_DTYPE_COUNT ? dtypes[t].size : 0;
}

const char *kiln_dtype_name(kiln_dtype t)
{
	return (unsigned)t < KILN_DTYPE_COUNT ? dtypes[t].name : "?";
}

bool kiln_dtype_is_float(kiln_dtype t)
{
	return (unsigned)t < KILN_DTYPE_COUNT && dtypes[t].is_float;
}

kiln_err kiln_dtype_parse(kiln_dtype *out, const char *s, const char *where)
{
	for (int i = 0; i < KILN_DTYPE_COUNT; i++)
		if (s && strcmp(s, dtypes[i].name) == 0) {
			*out = (kiln_dtype)i;
			return KILN_OK;
		}
	return kiln_error_set(KILN_EINVAL,
			      "%s: unknown dtype \"%s\" (known: f32, f64, f16, bf16, i32, i64, u8, u32, bool)",
			      where, s ? s : "");
}

/* Round-half-even of a double holding at most 2^53 in magnitude (exact arithmetic). */
static double round_even(double x)
{
	double f = floor(x), d = x - f;
	if (d > 0.5 || (d == 0.5 && fmod(f, 2.0) != 0.0))
		f += 1.0;
	return f;
}

/* Encodes v in a binary format with `prec` significand bits (implicit bit included),
 * `ebits` exponent bits, as its sign/exponent/mantissa bit pattern. */
static uint16_t encode_small(double v, int prec, int ebits)
{
	const int bias = (1 << (ebits - 1)) - 1, emin = 1 - bias, emax = bias;
	const uint16_t inf = (uint16_t)(((1u << ebits) - 1) << (prec - 1));
	uint16_t sign = signbit(v) ? (uint16_t)(1u << (ebits + prec - 1)) : 0;
	if (isnan(v))
		return (uint16_t)(sign | inf | (1u << (prec - 2))); /* quiet NaN */
	double a = fabs(v);
	if (isinf(a))
		return sign | inf;
	if (a == 0.0)
		return sign;
	int e2;
	frexp(a, &e2);
	int e = e2 - 1; /* a = 1.f * 2^e */
	if (e > emax)
		return sign | inf;
	int q = (e < emin ? emin : e) - (prec - 1); /* exponent of one unit in the last place */
	/* a * 2^-q < 2^prec: exact in double; a below the smallest subnormal scales to < 1. */
	double n = round_even(ldexp(a, -q));
	uint32_t bits;
	if (e < emin)
		bits = (uint32_t)n; /* subnormal; n == 2^(prec-1) is the smallest normal */
	else
		bits = ((uint32_t)(e - emin + 1) << (prec - 1)) + ((uint32_t)n - (1u << (prec - 1)));
	/* n == 2^prec carries into the exponent; past emax that is exactly the Inf pattern. */
	if (bits > inf)
		bits = inf;
	return (uint16_t)(sign | bits);
}

static double decode_small(uint16_t h, int prec, int ebits)
{
	const int bias = (1 << (ebits - 1)) - 1;
	const uint32_t mmask = (1u << (prec - 1)) - 1, emask = (1u << ebits) - 1;
	uint32_t m = h & mmask, ex = (h >> (prec - 1)) & emask;
	double s = (h >> (ebits + prec - 1)) & 1 ? -1.0 : 1.0;
	if (ex == emask)
		return m ? NAN : s * INFINITY;
	if (ex == 0)
		return s * ldexp((double)m, 1 - bias - (prec - 1));
	return s * ldexp((double)(m | (1u << (prec - 1))), (int)ex - bias - (prec - 1));
}

uint16_t kiln_f64_to_bf16(double v) { return encode_small(v, 8, 8); }
uint16_t kiln_f64_to_f16(double v) { return encode_small(v, 11, 5); }
double kiln_bf16_to_f64(uint16_t h) { return decode_small(h, 8, 8); }
double kiln_f16_to_f64(uint16_t h) { return decode_small(h, 11, 5); }

/* Round half-even and saturate into [lo, hi]; NaN -> 0. lo/hi are exact in double. */
static double to_int_range(double v, double lo, double hi)
{
	if (isnan(v))
		return 0.0;
	if (v <= lo)
		return lo;
	if (v >= hi)
		return hi;
	return round_even(v);
}

/* double -> float without the undefined behaviour of an out-of-range cast: values at or
 * past FLT_MAX + half an ulp round to Inf, the rest of the overflow range to FLT_MAX. */
static float to_f32(double v)
{
	if (fabs(v) > (double)FLT_MAX && !isinf(v) && !isnan(v)) {
		double a = fabs(v) >= 0x1.ffffffp127 ? INFINITY : (double)FLT_MAX;
		return (float)(v < 0 ? -a : a);
	}
	return (float)v;
}

double kiln_dtype_load(kiln_dtype t, const void *base, size_t i)
{
	switch (t) {
	case KILN_F32: { float x; memcpy(&x, (const char *)base + 4 * i, 4); return x; }
	case KILN_F64: { double x; memcpy(&x, (const char *)base + 8 * i, 8); return x; }
	case KILN_F16: { uint16_t x; memcpy(&x, (const char *)base + 2 * i, 2); return kiln_f16_to_f64(x); }
	case KILN_BF16: { uint16_t x; memcpy(&x, (const char *)base + 2 * i, 2); return kiln_bf16_to_f64(x); }
	case KILN_I32: { int32_t x; memcpy(&x, (const char *)base + 4 * i, 4); return x; }
	case KILN_I64: { int64_t x; memcpy(&x, (const char *)base + 8 * i, 8); return (double)x; }
	case KILN_U8: return ((const uint8_t *)base)[i];
	case KILN_U32: { uint32_t x; memcpy(&x, (const char *)base + 4 * i, 4); return x; }
	case KILN_BOOL: return ((const uint8_t *)base)[i] != 0;
	default: return NAN;
	}
}

void kiln_dtype_store(kiln_dtype t, void *base, size_t i, double v)
{
	char *p = base;
	switch (t) {
	case KILN_F32: { float x = to_f32(v); memcpy(p + 4 * i, &x, 4); break; }
	case KILN_F64: memcpy(p + 8 * i, &v, 8); break;
	case KILN_F16: { uint16_t x = kiln_f64_to_f16(v); memcpy(p + 2 * i, &x, 2); break; }
	case KILN_BF16: { uint16_t x = kiln_f64_to_bf16(v); memcpy(p + 2 * i, &x, 2); break; }
	case KILN_I32: { int32_t x = (int32_t)to_int_range(v, -2147483648.0, 2147483647.0); memcpy(p + 4 * i, &x, 4); break; }
	case KILN_I64: {
		/* 2^63 is not an int64: saturate before converting. */
		int64_t x;
		if (isnan(v))
			x = 0;
		else if (v >= 9223372036854775808.0)
			x = INT64_MAX;
		else if (v <= -9223372036854775808.0)
			x = INT64_MIN;
		else
			x = (int64_t)round_even(v);
		memcpy(p + 8 * i, &x, 8);
		break;
	}
	case KILN_U8: ((uint8_t *)base)[i] = (uint8_t)to_int_range(v, 0.0, 255.0); break;
	case KILN_U32: { uint32_t x = (uint32_t)to_int_range(v, 0.0, 4294967295.0); memcpy(p + 4 * i, &x, 4); break; }
	case KILN_BOOL: ((uint8_t *)base)[i] = v != 0.0; break;
	default: break;
	}
}
