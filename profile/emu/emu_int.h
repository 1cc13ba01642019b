/* emu_int: private structures of the PTX emulator. A parsed module holds functions as
 * decoded instruction arrays; each .entry is flattened (device functions inlined) into
 * one emu_kernel whose operands are indices into a per-warp register file laid out
 * [reg][32 lanes] of uint64_t; immediates and special registers are registers too, filled
 * before a warp runs, so the interpreter never branches on an operand's kind. */
#ifndef KILN_EMU_INT_H
#define KILN_EMU_INT_H

#include "profile/emu/emu.h"
#include "profile/emu/emu_math.h"

#define EMU_NOREG 0xFFFFFFFFu
#define EMU_NOPRED 0xFFFFu
#define EMU_LINE_MAX 512

/* Opcodes after decoding. Arithmetic ops carry their emu_type in emu_inst.type. */
typedef enum emu_op {
	OP_NOP = 0,
	/* data movement */
	OP_MOV, OP_MOV_PRED, OP_PACK, OP_UNPACK, OP_CLOCK, OP_SELP, OP_SLCT,
	/* integer / bit */
	OP_ADD, OP_SUB, OP_MUL_LO, OP_MUL_HI, OP_MUL_WIDE, OP_MAD_LO, OP_MAD_HI, OP_MAD_WIDE,
	OP_MUL24_LO, OP_MUL24_HI, OP_MAD24_LO, OP_SAD,
	OP_DIV, OP_REM, OP_ABS, OP_NEG, OP_MIN, OP_MAX,
	OP_AND, OP_OR, OP_XOR, OP_NOT, OP_CNOT, OP_SHL, OP_SHR, OP_SHF_L, OP_SHF_R,
	OP_POPC, OP_CLZ, OP_BREV, OP_BFIND, OP_BFE, OP_BFI, OP_PRMT, OP_LOP3, OP_FNS, OP_DP4A, OP_DP2A,
	OP_AND_PRED, OP_OR_PRED, OP_XOR_PRED, OP_NOT_PRED,
	OP_SETP, OP_SET,
	/* float */
	OP_FADD, OP_FSUB, OP_FMUL, OP_FFMA, OP_FDIV, OP_FABS, OP_FNEG, OP_FMIN, OP_FMAX,
	OP_RCP, OP_SQRT, OP_RSQRT, OP_EX2, OP_LG2, OP_SIN, OP_COS, OP_TANH, OP_COPYSIGN,
	OP_TESTP,
	/* half / packed half arithmetic (type F16, F16X2, BF16, BF16X2) */
	OP_HADD, OP_HSUB, OP_HMUL, OP_HFMA, OP_HMIN, OP_HMAX, OP_HNEG, OP_HABS,
	/* conversions */
	OP_CVT, OP_CVT_PACK, OP_CVTA,
	/* memory */
	OP_LD, OP_ST, OP_LD_KPARAM, OP_ATOM, OP_RED, OP_CP_ASYNC, OP_PCOPY,
	/* warp */
	OP_SHFL, OP_VOTE, OP_MATCH, OP_REDUX, OP_ACTIVEMASK,
	/* control */
	OP_BRA, OP_EXIT, OP_BAR, OP_TRAP, OP_WARPSYNC, OP_CALL, OP_RET, OP_FENCE, OP_NANOSLEEP,
	OP_COUNT
} emu_op;

/* Counter classes (emu_inst.cls). */
enum { CLS_INT, CLS_FP32, CLS_FP64, CLS_MUFU, CLS_CVT, CLS_MEM, CLS_CTRL, CLS_SHFL,
       CLS_BAR, CLS_HALF2, CLS_OTHER, CLS_COUNT };

/* emu_inst.flags */
enum {
	F_FTZ = 1, F_SAT = 2, F_APPROX = 4, F_CC = 8, F_NC = 16, F_D64 = 32, /* dest is a 64-bit register */
	F_CLAMP = 64, F_VOLATILE = 128,
};

/* Memory order of ld/st/atom/red (emu_inst.mode2): not plain, acquire, release, .cta scope */
enum { MO_SYNC = 1, MO_ACQ = 2, MO_REL = 4, MO_CTA = 8 };

/* OP_BAR modes (emu_inst.mode): bar.sync, bar.red.popc/.and/.or, bar.arrive */
enum { BAR_SYNC, BAR_POPC, BAR_AND, BAR_OR, BAR_ARRIVE };

/* Comparison operators of setp/set (emu_inst.mode low bits); boolean combine in mode2. */
enum { CMP_EQ, CMP_NE, CMP_LT, CMP_LE, CMP_GT, CMP_GE, CMP_LO, CMP_LS, CMP_HI, CMP_HS,
       CMP_EQU, CMP_NEU, CMP_LTU, CMP_LEU, CMP_GTU, CMP_GEU, CMP_NUM, CMP_NAN };
enum { BOOL_NONE, BOOL_AND, BOOL_OR, BOOL_XOR };
enum { SHFL_UP, SHFL_DOWN, SHFL_BFLY, SHFL_IDX };
enum { VOTE_ALL, VOTE_ANY, VOTE_UNI, VOTE_BALLOT };
enum { ATOM_ADD, ATOM_MIN, ATOM_MAX, ATOM_EXCH, ATOM_CAS, ATOM_AND, ATOM_OR, ATOM_XOR,
       ATOM_INC, ATOM_DEC };
enum { TESTP_FINITE, TESTP_INFINITE, TESTP_NUMBER, TESTP_NOTANUMBER, TESTP_NORMAL,
       TESTP_SUBNORMAL };

typedef struct emu_inst {
	uint16_t op;       /* emu_op */
	uint8_t type;      /* emu_type of the operation (destination type for cvt) */
	uint8_t type2;     /* source type (cvt, mul.wide result etc.) */
	uint8_t rnd;       /* emu_rnd */
	uint8_t flags;     /* F_* */
	uint8_t mode;      /* CMP_*, SHFL_*, VOTE_*, ATOM_*, TESTP_*, shf/bfind modifiers */
	uint8_t mode2;     /* BOOL_* for setp, */
	uint8_t space;     /* kiln_emu_space of a memory op */
	uint8_t vec;       /* vector width of ld/st (1, 2, 4) */
	uint8_t size;      /* bytes per element of a memory access */
	uint8_t cls;       /* counter class */
	uint8_t gneg;      /* guard is negated (@!%p) */
	uint8_t nops;      /* source operands actually present */
	uint16_t guard;    /* predicate register index or EMU_NOPRED */
	uint32_t d, d2;    /* destination registers (d2: the predicate of setp |q, shfl |p) */
	uint32_t a, b, c, e; /* sources; predicate operands index the predicate file */
	uint32_t v[4];     /* vector elements of ld/st/pack/unpack */
	int32_t sym;       /* address symbol (parse time; -1 none) */
	int64_t imm;       /* address offset in bytes */
	uint32_t target;   /* branch target (instruction index) */
	uint32_t line;     /* PTX source line */
} emu_inst;

/* A register that holds a value before the warp runs. */
enum { CONST_IMM, CONST_SYM, CONST_SREG };
typedef struct emu_const {
	uint32_t reg;
	uint8_t kind;      /* CONST_* */
	uint8_t pad[3];
	int32_t sym;       /* CONST_SYM: module symbol; CONST_SREG: sreg id */
	uint64_t value;    /* CONST_IMM: the value; CONST_SYM: byte offset added */
} emu_const;

/* Special registers (CONST_SREG ids). */
enum { SREG_TID_X, SREG_TID_Y, SREG_TID_Z, SREG_NTID_X, SREG_NTID_Y, SREG_NTID_Z,
       SREG_CTAID_X, SREG_CTAID_Y, SREG_CTAID_Z, SREG_NCTAID_X, SREG_NCTAID_Y, SREG_NCTAID_Z,
       SREG_LANEID, SREG_WARPID, SREG_NWARPID, SREG_SMID, SREG_NSMID, SREG_GRIDID,
       SREG_LANEMASK_EQ, SREG_LANEMASK_LE, SREG_LANEMASK_LT, SREG_LANEMASK_GE,
       SREG_LANEMASK_GT, SREG_DYN_SMEM, SREG_TOTAL_SMEM, SREG_WARPSZ, SREG_CLUSTER_ZERO,
       SREG_CLUSTER_ONE, SREG_COUNT };

/* Module-level or function-level variables and parameters. */
typedef struct emu_sym {
	char *name;
	uint8_t space;       /* kiln_emu_space */
	uint8_t is_kparam;   /* a parameter of a kernel (launch parameter block) */
	uint8_t is_fparam;   /* a .param of a device function or a call site */
	uint8_t is_extern;   /* extern .shared [] = dynamic shared memory */
	uint32_t align, size; /* bytes */
	int32_t func;        /* owning function index; -1 = module scope */
	uint32_t offset;     /* kparam: offset in the param block; fparam/local: offset in the
	                        function's frame/local area */
	uint8_t *init;       /* initializer bytes (size) or NULL */
} emu_sym;

/* A call site inside a function's code: OP_NOP placeholder expanded when flattening. */
typedef struct emu_call {
	uint32_t at;         /* instruction index of the placeholder */
	int32_t callee;      /* function index */
	int32_t ret[8];      /* caller symbols for return values (-1 none) */
	uint32_t nret;
	int32_t args[32];    /* caller symbols for arguments */
	uint32_t nargs;
} emu_call;

typedef struct emu_func {
	char *name;
	bool is_entry, has_body;
	emu_inst *code;
	uint32_t ncode, capcode;
	uint32_t nregs, npreds;
	emu_const *consts;
	uint32_t nconsts, capconsts;
	emu_call *calls;
	uint32_t ncalls, capcalls;
	int32_t *params;     /* symbol indices of formal params (entry: kernel params) */
	uint32_t nparams;
	int32_t *rets;       /* symbol indices of formal return params */
	uint32_t nrets;
	uint32_t frame_bytes;  /* .param storage of this function (formals + call-site decls) */
	uint32_t local_bytes;  /* .local variables */
	uint32_t maxntid[3], reqntid[3], minnctapersm;
	uint32_t line;
} emu_func;

/* A flattened, launchable kernel. */
typedef struct emu_kernel {
	char *name;
	emu_inst *code;
	uint32_t ncode;
	uint32_t nregs, npreds;
	emu_const *consts;
	uint32_t nconsts;
	kiln_emu_param *params;
	uint32_t nparams, param_bytes;
	uint32_t static_shared;   /* bytes incl. alignment */
	uint32_t dyn_align;       /* alignment of the extern shared array */
	uint32_t local_bytes;     /* user-visible .local bytes per thread */
	uint32_t frame_bytes;     /* call frames after the locals */
	int32_t *gsyms;           /* module global/const symbols used (addresses set at launch) */
	uint32_t ngsyms;
	uint32_t maxntid[3], reqntid[3], minnctapersm;
} emu_kernel;

struct kiln_emu_module {
	char *name;
	uint64_t id;              /* unique per parsed module (device caches key on it) */
	emu_sym *syms;
	uint32_t nsyms, capsyms;
	emu_func *funcs;
	uint32_t nfuncs, capfuncs;
	emu_kernel *kernels;
	uint32_t nkernels;
	uint32_t nregs, npreds;   /* module-wide register numbering */
	const char **kernel_names;
};

/* ---- device memory (mem.c) ---- */
#define EMU_GLOBAL_BASE 0x0000700000000000ull
#define EMU_SHARED_WINDOW 0x0000010000000000ull /* generic shared = window + offset */
#define EMU_LOCAL_WINDOW 0x0000020000000000ull  /* generic local = window + offset */
#define EMU_WINDOW_SIZE 0x0000010000000000ull

typedef struct emu_alloc {
	uint64_t base, size;
	uint8_t *data;        /* size bytes */
	uint8_t *init;        /* one byte per data byte: 1 = written (initcheck) */
	uint64_t *touched;    /* one bit per 32-byte sector: touched in this launch */
	uint64_t touch_epoch; /* launch number the bitmap belongs to */
	bool readonly;        /* module .const */
	struct emu_gshadow *shadow; /* global racecheck, per 4-byte word (exec.c); NULL until used */
} emu_alloc;

typedef struct emu_modvars {
	uint64_t module_id;
	uint32_t nsyms;
	uint64_t *addr;       /* per module symbol: device address (0 when not global/const) */
} emu_modvars;

struct kiln_emu {
	kiln_emu_options opt;
	emu_alloc *allocs;    /* sorted by base */
	size_t nallocs, capallocs;
	uint64_t next_base;
	uint64_t launch_no;
	uint32_t regs_hint;
	kiln_emu_sched sched; /* kiln_emu_set_schedule */
	uint64_t sched_seed;
	uint32_t now;         /* happens-before time (racecheck), continues across launches */
	uint64_t clk, gtime;  /* modeled clocks (cycles, ns) at the next launch's start */
	uint64_t budget_override; /* kiln_emu_set_budget; 0 = the options' budget */
	emu_modvars *modvars;
	size_t nmodvars;
	kiln_emu_fault fault;
};

emu_alloc *emu_mem_find(kiln_emu *emu, uint64_t addr);
void emu_time_wrap(kiln_emu *emu);
/* The allocation nearest to addr (for fault messages), or NULL. */
const emu_alloc *emu_mem_nearest(const kiln_emu *emu, uint64_t addr);
kiln_err emu_mem_alloc(kiln_emu *emu, uint64_t *out, size_t bytes, bool readonly);

/* ---- parse.c helpers shared with exec.c ---- */
const emu_kernel *emu_module_kernel(const kiln_emu_module *mod, const char *name);
uint32_t emu_type_size(emu_type t);
bool emu_type_is_signed(emu_type t);
bool emu_type_is_float(emu_type t);

#endif
