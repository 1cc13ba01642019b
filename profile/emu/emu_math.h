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

/* ---- declarations below are filled in by emu_math.c's owner ---- */

#endif
