/* emu_math: PTX arithmetic semantics as pure functions on raw bits (private to the
 * emulator). The interpreter decodes an instruction's type, rounding, .ftz and .sat
 * modifiers once and calls these; they never touch the host FPU's global state
 * (no fesetround, no FTZ/DAZ), so results are identical everywhere. */
#ifndef KILN_EMU_MATH_H
#define KILN_EMU_MATH_H

#include <stdbool.h>
#include <stdint.h>

/* PTX fundamental types (.b16 etc. are bit types of that width). */
typedef enum emu_type {
	EMU_PRED,
	EMU_B8, EMU_B16, EMU_B32, EMU_B64, EMU_B128,
	EMU_U8, EMU_U16, EMU_U32, EMU_U64,
	EMU_S8, EMU_S16, EMU_S32, EMU_S64,
	EMU_F16, EMU_F16X2, EMU_BF16, EMU_BF16X2, EMU_F32, EMU_F64,
	EMU_TYPE_COUNT
} emu_type;

/* Rounding modifiers: .rn .rz .rm .rp for float results, .rni .rzi .rmi .rpi for
 * float-to-integer-valued results; EMU_RND_NONE when the instruction has none. */
typedef enum emu_rnd {
	EMU_RND_NONE, EMU_RN, EMU_RZ, EMU_RM, EMU_RP, EMU_RNI, EMU_RZI, EMU_RMI, EMU_RPI
} emu_rnd;

/* ---- floating point: raw bits in, raw bits out ----
 * r: EMU_RN/RZ/RM/RP (EMU_RND_NONE means .rn); ftz flushes subnormal inputs and the
 * result to a zero of the same sign; sat clamps the result to [0,1] with NaN -> +0.
 * NaN results are the canonical NaN (0x7FFFFFFF f32, 0x7FFFFFFFFFFFFFFF f64, 0x7FFF f16). */
uint32_t emu_f32_add(uint32_t a, uint32_t b, emu_rnd r, bool ftz, bool sat);
uint32_t emu_f32_sub(uint32_t a, uint32_t b, emu_rnd r, bool ftz, bool sat);
uint32_t emu_f32_mul(uint32_t a, uint32_t b, emu_rnd r, bool ftz, bool sat);
uint32_t emu_f32_fma(uint32_t a, uint32_t b, uint32_t c, emu_rnd r, bool ftz, bool sat);
uint32_t emu_f32_div(uint32_t a, uint32_t b, emu_rnd r, bool ftz);     /* IEEE div.rn etc. */
uint32_t emu_f32_div_approx(uint32_t a, uint32_t b, bool ftz);         /* div.approx */
uint32_t emu_f32_div_full(uint32_t a, uint32_t b, bool ftz);           /* div.full */
uint32_t emu_f32_sqrt(uint32_t a, emu_rnd r, bool ftz);                /* .approx: r=NONE */
uint32_t emu_f32_rcp(uint32_t a, emu_rnd r, bool ftz);                 /* .approx: r=NONE */
uint32_t emu_f32_rsqrt_approx(uint32_t a, bool ftz);
uint32_t emu_f32_ex2_approx(uint32_t a, bool ftz);
uint32_t emu_f32_lg2_approx(uint32_t a, bool ftz);
uint32_t emu_f32_sin_approx(uint32_t a, bool ftz);
uint32_t emu_f32_cos_approx(uint32_t a, bool ftz);
uint32_t emu_f32_tanh_approx(uint32_t a);
/* min/max: a NaN operand yields the other operand (both NaN: canonical NaN); with nan
 * true (.NaN) any NaN operand yields the canonical NaN. -0 < +0. */
uint32_t emu_f32_min(uint32_t a, uint32_t b, bool ftz, bool nan);
uint32_t emu_f32_max(uint32_t a, uint32_t b, bool ftz, bool nan);
uint32_t emu_f32_abs(uint32_t a, bool ftz);
uint32_t emu_f32_neg(uint32_t a, bool ftz);
/* PTX copysign d, a, b: the magnitude of b with the sign of a (C's copysignf(b, a)). */
uint32_t emu_f32_copysign(uint32_t a, uint32_t b);

uint64_t emu_f64_add(uint64_t a, uint64_t b, emu_rnd r);
uint64_t emu_f64_sub(uint64_t a, uint64_t b, emu_rnd r);
uint64_t emu_f64_mul(uint64_t a, uint64_t b, emu_rnd r);
/* fma.rz/rm/rp.f64 is exact except when |a*b| < 2^-969 (its low part is then not
 * representable): the rounding direction may be off by one ulp there. */
uint64_t emu_f64_fma(uint64_t a, uint64_t b, uint64_t c, emu_rnd r);
uint64_t emu_f64_div(uint64_t a, uint64_t b, emu_rnd r);
uint64_t emu_f64_sqrt(uint64_t a, emu_rnd r);
uint64_t emu_f64_rcp(uint64_t a, emu_rnd r);               /* r=NONE: rcp.approx.ftz.f64 */
uint64_t emu_f64_rsqrt_approx(uint64_t a);
uint64_t emu_f64_min(uint64_t a, uint64_t b, bool nan);
uint64_t emu_f64_max(uint64_t a, uint64_t b, bool nan);
uint64_t emu_f64_abs(uint64_t a);
uint64_t emu_f64_neg(uint64_t a);
uint64_t emu_f64_copysign(uint64_t a, uint64_t b);

/* testp: EMU_TESTP_* on an f32 (f64 false) or f64 (f64 true) value. */
typedef enum emu_testp {
	EMU_TESTP_FINITE, EMU_TESTP_INFINITE, EMU_TESTP_NUMBER, EMU_TESTP_NOTANUMBER,
	EMU_TESTP_NORMAL, EMU_TESTP_SUBNORMAL
} emu_testp;
bool emu_testp_eval(emu_testp op, uint64_t a, bool f64);

/* setp/set comparison operators. Ordered ones (eq ne lt le gt ge) are false when either
 * float operand is NaN; the unordered ones (..u) are true then; num/nan test for NaN.
 * lo ls hi hs are the unsigned-integer spellings. */
typedef enum emu_cmp {
	EMU_CMP_EQ, EMU_CMP_NE, EMU_CMP_LT, EMU_CMP_LE, EMU_CMP_GT, EMU_CMP_GE,
	EMU_CMP_LO, EMU_CMP_LS, EMU_CMP_HI, EMU_CMP_HS,
	EMU_CMP_EQU, EMU_CMP_NEU, EMU_CMP_LTU, EMU_CMP_LEU, EMU_CMP_GTU, EMU_CMP_GEU,
	EMU_CMP_NUM, EMU_CMP_NAN
} emu_cmp;
/* Float compare: t is EMU_F32, EMU_F64, EMU_F16 or EMU_BF16 (bits in the low end). */
bool emu_fcmp(emu_cmp op, uint64_t a, uint64_t b, emu_type t, bool ftz);
/* Integer compare: t is any integer/bit type; values are truncated to its width. */
bool emu_icmp(emu_cmp op, uint64_t a, uint64_t b, emu_type t);

/* ---- half precision (f16 / bf16 scalars, raw 16 bits) and x2 packings ----
 * Results are computed exactly (in double) and rounded once to nearest-even. */
float emu_f16_to_f32(uint16_t h);
float emu_bf16_to_f32(uint16_t h);
/* t: EMU_F16, EMU_BF16, EMU_F16X2 or EMU_BF16X2 (x2: each 16-bit half independently). */
uint32_t emu_h_add(uint32_t a, uint32_t b, emu_type t, bool ftz, bool sat);
uint32_t emu_h_sub(uint32_t a, uint32_t b, emu_type t, bool ftz, bool sat);
uint32_t emu_h_mul(uint32_t a, uint32_t b, emu_type t, bool ftz, bool sat);
uint32_t emu_h_fma(uint32_t a, uint32_t b, uint32_t c, emu_type t, bool ftz, bool sat);
uint32_t emu_h_min(uint32_t a, uint32_t b, emu_type t, bool ftz, bool nan);
uint32_t emu_h_max(uint32_t a, uint32_t b, emu_type t, bool ftz, bool nan);
uint32_t emu_h_neg(uint32_t a, emu_type t);
uint32_t emu_h_abs(uint32_t a, emu_type t);

/* ---- conversions ----
 * cvt.<r><ftz><sat>.dst.src on raw bits (low bits of src_bits hold the source). Integer
 * to integer: sign/zero extension or truncation, .sat clamps to dst's range. Float to
 * integer: r is RNI/RZI/RMI/RPI (NONE/RN/RZ.. accepted as their integer twin), result
 * saturates to dst's range and NaN gives 0. Float to float: narrowing rounds with r
 * (NONE = rn), widening is exact; same-size f32->f32 / f64->f64 with RNI.. rounds to an
 * integral value. satfinite: overflow gives the largest finite value, NaN stays NaN. */
uint64_t emu_cvt(uint64_t src_bits, emu_type dst, emu_type src, emu_rnd r, bool ftz, bool sat);
uint64_t emu_cvt_satfinite(uint64_t src_bits, emu_type dst, emu_type src, emu_rnd r, bool relu);
/* cvt.rn[.satfinite][.relu].{f16x2,bf16x2}.f32 d, a, b: a goes to the UPPER half. */
uint32_t emu_cvt_pack_x2(uint32_t a, uint32_t b, emu_type dst, emu_rnd r, bool satfinite, bool relu);

/* ---- integers (values on the low bits; t gives width and signedness) ---- */
uint64_t emu_int_mul_lo(uint64_t a, uint64_t b, emu_type t);
uint64_t emu_int_mul_hi(uint64_t a, uint64_t b, emu_type t);
uint64_t emu_int_mul_wide(uint64_t a, uint64_t b, emu_type t); /* t: the source type */
uint64_t emu_int_mul24(uint64_t a, uint64_t b, emu_type t, bool hi);
uint64_t emu_int_sad(uint64_t a, uint64_t b, uint64_t c, emu_type t);
/* Division by zero is undefined in PTX; here unsigned x/0 = all ones, x%0 = x, signed
 * x/0 = -1, x%0 = x. Signed MIN/-1 = MIN, MIN%-1 = 0. */
uint64_t emu_int_div(uint64_t a, uint64_t b, emu_type t);
uint64_t emu_int_rem(uint64_t a, uint64_t b, emu_type t);
uint64_t emu_int_min(uint64_t a, uint64_t b, emu_type t);
uint64_t emu_int_max(uint64_t a, uint64_t b, emu_type t);
uint64_t emu_int_abs(uint64_t a, emu_type t);
uint64_t emu_int_neg(uint64_t a, emu_type t);
/* shl/shr: the shift amount is unsigned; >= width gives 0 (shr.s: sign fill). */
uint64_t emu_int_shl(uint64_t a, uint32_t n, emu_type t);
uint64_t emu_int_shr(uint64_t a, uint32_t n, emu_type t);
/* bfe: pos and len are taken mod 256; bits past the msb read as the sign (s) or 0 (u);
 * len 0 gives 0. bfi: inserts the low len bits of a into b at pos. */
uint64_t emu_int_bfe(uint64_t a, uint32_t pos, uint32_t len, emu_type t);
uint64_t emu_int_bfi(uint64_t a, uint64_t b, uint32_t pos, uint32_t len, emu_type t);
uint64_t emu_int_brev(uint64_t a, emu_type t);
uint32_t emu_int_clz(uint64_t a, emu_type t);
uint32_t emu_int_popc(uint64_t a, emu_type t);
/* bfind: bit index of the most significant non-sign bit, 0xFFFFFFFF if none;
 * shiftamt: width-1-index instead. */
uint32_t emu_int_bfind(uint64_t a, emu_type t, bool shiftamt);
/* prmt.b32 mode: 0 default (4 selector nibbles with sign replication bit), 1 .f4e,
 * 2 .b4e, 3 .rc8, 4 .ecl, 5 .ecr, 6 .rc16. */
typedef enum emu_prmt_mode {
	EMU_PRMT_DEFAULT, EMU_PRMT_F4E, EMU_PRMT_B4E, EMU_PRMT_RC8, EMU_PRMT_ECL,
	EMU_PRMT_ECR, EMU_PRMT_RC16
} emu_prmt_mode;
uint32_t emu_prmt(uint32_t a, uint32_t b, uint32_t c, emu_prmt_mode m);
uint32_t emu_lop3(uint32_t a, uint32_t b, uint32_t c, uint8_t lut);
/* shf.l / shf.r .b32 on the 64-bit pair {b:a}; clamp: n = min(n, 32), else n mod 32. */
uint32_t emu_shf_l(uint32_t a, uint32_t b, uint32_t n, bool clamp);
uint32_t emu_shf_r(uint32_t a, uint32_t b, uint32_t n, bool clamp);
/* dp4a / dp2a: as and bs say whether a / b bytes (halves) are signed. dp2a hi selects
 * the upper two bytes of b. */
uint32_t emu_dp4a(uint32_t a, uint32_t b, uint32_t c, bool as, bool bs);
uint32_t emu_dp2a(uint32_t a, uint32_t b, uint32_t c, bool as, bool bs, bool hi);

#endif
