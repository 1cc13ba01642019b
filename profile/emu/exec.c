/* exec: the interpreter and its scheduler. Blocks start in blockIdx order (x fastest;
 * reversed on the REVERSE schedule) into resident slots; warps of the resident blocks run
 * interleaved in quanta drawn from the schedule's seed (see run_grid), barriers are
 * named and counted (bar_join / bar_try), and the racecheck orders accesses by
 * happens-before (race_check for shared, grace_check for global memory). Divergence: the lanes at the lowest PC run first (others are parked with their own
 * PC); warp-synchronous ops wait for every live lane of their membermask (see
 * reconverge). Registers are [reg][32 lanes] of uint64_t; predicates are 32-bit lane
 * masks. Plain f32 add/sub/mul/fma and common integer ops run inline (C operators are
 * IEEE round-to-nearest; NaN results canonicalised to 0x7FFFFFFF); everything with
 * modifiers goes through emu_math. The host FPU state is never touched. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile/emu/emu_int.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define FULL 0xFFFFFFFFu
__extension__ typedef __int128 i128;
__extension__ typedef unsigned __int128 u128;
#define LANES(mask, ...) do { uint32_t m_ = (mask); \
	if (m_ == FULL) { for (int l = 0; l < 32; l++) { __VA_ARGS__; } } \
	else { for (int l = 0; l < 32; l++) if (m_ >> l & 1) { __VA_ARGS__; } } } while (0)

/* ---------------------------------------------------------------- bits */
static inline float F(uint64_t v) { uint32_t u = (uint32_t)v; float f; memcpy(&f, &u, 4); return f; }
static inline uint64_t FB(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
/* lanes in a mask; inline (without -mpopcnt __builtin_popcount is a libgcc call) */
static inline uint32_t popc32(uint32_t m)
{
	if (m == 0xFFFFFFFFu)
		return 32;
	m = m - ((m >> 1) & 0x55555555u);
	m = (m & 0x33333333u) + ((m >> 2) & 0x33333333u);
	return (((m + (m >> 4)) & 0x0F0F0F0Fu) * 0x01010101u) >> 24;
}
/* f32 result bits with PTX's canonical NaN */
static inline uint64_t FBN(float f) { return f != f ? 0x7FFFFFFFu : FB(f); }
static inline float ftzf(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	if ((u & 0x7F800000u) == 0)
		u &= 0x80000000u;
	memcpy(&f, &u, 4);
	return f;
}
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

/* cvt d(type) <- a(type2) with rounding / ftz / sat (mode bit 0 .satfinite, bit 1 .relu). */
static uint64_t cvt1(const emu_inst *in, uint64_t a)
{
	emu_type dt = (emu_type)in->type, st = (emu_type)in->type2;
	emu_rnd r = (emu_rnd)in->rnd;
	if (in->mode & 1)
		return emu_cvt_satfinite(a, dt, st, r, in->mode & 2);
	if ((in->mode & 2) && emu_fcmp(EMU_CMP_LT, a, 0, st, false))
		a = 0; /* .relu alone: negative -> +0 (NaN stays NaN) */
	return emu_cvt(a, dt, st, r, in->flags & F_FTZ, in->flags & F_SAT);
}

/* ---------------------------------------------------------------- execution state */
enum { W_RUN, W_BAR, W_DONE };
#define NBAR 16

typedef struct blk blk;

typedef struct warp {
	uint64_t *r;          /* [nregs][32] */
	uint32_t *p;          /* [npreds] lane masks */
	uint32_t pc, act, live, parked;
	uint32_t min_parked;  /* lowest PC above pc of a parked lane: reaching it reconverges */
	uint32_t syncwait;    /* parked lanes waiting at a warp-synchronous op for their membermask */
	uint32_t barwait;     /* lanes waiting at a block barrier (not in parked) */
	uint32_t forced_pc;   /* a deadlocked warp-synchronous op at this PC runs with the lanes present */
	uint32_t wsync;       /* warp-synchronous ops executed: lanes' shared accesses between two
			       * of them are unordered (racecheck inside a warp) */
	uint32_t cc;          /* carry flag CC.CF per lane (add.cc / addc ...) */
	uint32_t lpc[32];     /* PCs of parked and barrier-waiting lanes */
	uint8_t state;
	uint8_t bar_mode;     /* BAR_* of the barrier the lanes wait at */
	uint8_t bar_id;       /* its id (0-15) */
	uint8_t arrived;      /* the warp's arrival at it is counted */
	uint32_t bar_warps;   /* its warp count (0: every live warp of the block) */
	uint32_t id;
	uint32_t bar_d, bar_in; /* bar.red: destination register, input lanes */
	blk *b;               /* the block the warp belongs to */
	uint32_t qleft;       /* scheduling events left in this quantum */
	uint32_t fx;          /* happens-before: accesses (any block) at times <= fx are visible */
	uint32_t fence_t;     /* time of the warp's last fence (0 none): what a release store publishes */
	uint8_t fence_cta;    /* that fence was .cta scope */
	uint32_t vmin;        /* min over the other warps j of vc[this][j] */
	const uint32_t *vcrow; /* vc[this]: this warp's row of its block's clocks */
	uint32_t full_t;      /* the last block-wide barrier this warp passed: every access
			       * by any warp of the block up to it is ordered before its next ones */
	uint32_t spin_pc;     /* spin detection: pc and value hash of the last flag read */
	uint64_t spin_h;
	uint8_t spun;         /* the last quantum ended spinning (or sleeping) */
	uint8_t arr_id;       /* bar.arrive: the barrier and the lanes that executed it so far */
	uint32_t arr_lanes;
	uint32_t deprio;      /* lanes that spun: other lanes of the warp run before them */
} warp;

typedef struct race_ent {
	uint32_t wepoch, repoch; /* times of the write / first read */
	uint32_t wsync_w, wsync_r; /* the accessing warp's wsync at the write / first read */
	uint32_t bepoch;      /* word entry: time of the last sub-word access to its bytes */
	uint16_t wtid, rtid;
	uint32_t wline, rline;
	uint8_t rmulti;
	uint8_t mwarp;        /* rmulti: the warp of the read at mepoch */
	uint8_t owarp;        /* rmulti: the warp of the read at oepoch (fault messages) */
	uint32_t mepoch;      /* rmulti: latest time of the reads by warps other than rtid's */
	uint32_t oepoch;      /* rmulti: latest time of the reads by warps other than mwarp's */
	uint8_t wsy, rsy;     /* the write / read was volatile (a flag): flags never conflict */
	uint32_t rel;         /* a flag write's release: accesses up to it are visible to its readers */
} race_ent;

/* A barrier of a block: warps arrived, the count they expect, bar.red inputs and the
 * happens-before knowledge the arrivals bring (max of their clocks). */
typedef struct bar_state {
	uint32_t arrived, expect; /* warps; expect 0 = every live warp */
	uint32_t popc;
	uint8_t all, any;
	uint32_t fx;
	uint32_t arr_t;       /* the earliest bar.arrive (UINT32_MAX none): that warp ran on */
	uint32_t *vc;         /* [nwarps] */
} bar_state;

/* A resident block (one scheduler slot). */
struct blk {
	uint32_t ctaid[3];
	uint32_t gid;         /* linear block index (truncated to 32 bits) */
	uint32_t smid;
	uint32_t live;        /* warps not done */
	bool busy;
	uint8_t *shared, *sh_init;
	race_ent *race, *race_b;
	uint8_t *local;
	warp *warps;
	uint32_t *vc;         /* [nwarps][nwarps]: accesses of warp j at times <= vc[i][j] are visible to i */
	bar_state bar[NBAR];
};

/* Global racecheck shadow: the last write and the last read of a 4-byte word. tag =
 * pc << 12 | atomic << 11 | warp << 6 | byte mask << 2 | cta-scope release << 1 | plain.
 * An allocation's shadow is gsec_count() sector records, then one record per word: a
 * 32-byte sector whose 8 words have identical records (what a warp's coalesced plain
 * access leaves) keeps that one record (split = 0); any other access splits it into its
 * word records (split = 1), and a whole-sector access that leaves them identical merges
 * them again. Word records are calloc'd and touched only for split sectors. */
struct emu_gshadow {
	uint32_t wt, wgid, wtag, rel;
	uint32_t rt, rgid, rtag, split;
};
#define TAG_PLAIN 1u
#define TAG_CTAREL 2u
#define TAG_MASK(t) (((t) >> 2) & 15u)
#define TAG_WARP(t) (((t) >> 6) & 31u)
#define TAG_PC(t) ((t) >> 12)
#define TAG_ATOMIC (1u << 11)

typedef struct ctx {
	kiln_emu *emu;
	const emu_kernel *k;
	uint64_t cls[CLS_COUNT];
	kiln_emu_counters c;
	uint32_t grid[3], block[3], ctaid[3];
	uint32_t nthreads, nwarps, dyn_shared, shared_size;
	blk *cur;             /* the block of the running warp; the fields below mirror it */
	uint8_t *shared, *sh_init;
	race_ent *race;       /* per 4-byte word of shared memory */
	race_ent *race_b;     /* per byte, for sub-word accesses */
	uint8_t *local;       /* [thread][local_stride] */
	uint32_t local_stride;
	const uint8_t *params;
	uint64_t budget, ti;
	uint64_t *symaddr;    /* module symbol -> device address */
	emu_alloc *last;
	blk *slots;           /* resident blocks */
	uint32_t nslots;
	uint64_t nblocks, dispatched;
	uint32_t occ;         /* blocks per SM (occupancy) */
	uint32_t *sm_of_slot;
	uint32_t now;         /* happens-before time: advances at every quantum and sync event */
	uint32_t t0;          /* time at the launch's start: earlier accesses are ordered */
	uint64_t rng;         /* the schedule's random stream */
	uint32_t quantum;     /* mean scheduling events per quantum (0: run to a barrier) */
	bool grace;           /* global racecheck */
	uint64_t progress;    /* stores, changing atomics, barriers, exits: a spin can end */
	uint64_t clk0, gt0;   /* modeled clocks at launch start (cycles, ns) */
	int faulted;
	uint64_t *atom_addr;  /* global atomic addresses seen (open addressing, ATOM_SLOTS) */
	uint32_t *atom_cnt;   /* thread-level atomics at each */
	uint32_t atom_n;      /* slots used */
	uint64_t atom_max;    /* the most at one address */
	uint64_t **rfree;     /* register files not held by a warp (last released first) */
	uint64_t **rall;      /* every register file of this launch */
	uint32_t nfree, nall;
} ctx;

#define ATOM_SLOTS 4096u /* contention is tracked for the first 4096 distinct addresses */

/* Counts one lane's global atomic at addr: same-address atomics serialize at L2, so the
 * cost model needs the most contended address (kiln_emu_counters.atomic_same_addr). */
static void count_atomic_addr(ctx *x, uint64_t addr)
{
	if (!x->atom_cnt) {
		free(x->atom_addr);
		x->atom_addr = kiln_calloc(ATOM_SLOTS, sizeof(uint64_t));
		x->atom_cnt = x->atom_addr ? kiln_calloc(ATOM_SLOTS, sizeof(uint32_t)) : NULL;
		if (!x->atom_cnt)
			return; /* out of memory: contention unknown, counted as none */
	}
	uint32_t h = (uint32_t)((addr * 0x9E3779B97F4A7C15ull) >> 52) & (ATOM_SLOTS - 1);
	for (uint32_t probe = 0; probe < ATOM_SLOTS; probe++, h = (h + 1) & (ATOM_SLOTS - 1)) {
		if (x->atom_cnt[h] && x->atom_addr[h] != addr)
			continue;
		if (!x->atom_cnt[h]) {
			if (x->atom_n >= ATOM_SLOTS / 2)
				return; /* full enough: new addresses are not the contended ones */
			x->atom_n++;
			x->atom_addr[h] = addr;
		}
		if (++x->atom_cnt[h] > x->atom_max)
			x->atom_max = x->atom_cnt[h];
		return;
	}
}

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

/* Makes b the current block (the mirrors in ctx used by memory accesses and faults). */
static void enter_block(ctx *x, blk *b)
{
	x->cur = b;
	x->shared = b->shared;
	x->sh_init = b->sh_init;
	x->race = b->race;
	x->race_b = b->race_b;
	x->local = b->local;
	memcpy(x->ctaid, b->ctaid, sizeof x->ctaid);
}

/* Accesses of warp `other` of w's block at time t happened before w's next access. */
static inline bool hb_local(const ctx *x, const warp *w, uint32_t other, uint32_t t)
{
	(void)x;
	return t <= w->vcrow[other] || t <= w->fx;
}

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
		snprintf(f->message, sizeof f->message, "%s: %.190s in %.50s, block (%u,%u,%u) thread (%u,%u,%u), PTX line %u",
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
	case KILN_EMU_FAULT_RACE: return "data race";
	case KILN_EMU_FAULT_DEADLOCK: return "deadlock";
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
static void count_sectors(ctx *x, const uint64_t *addr, uint32_t m, uint32_t n, bool store, emu_alloc *single,
			  bool contig)
{
	uint64_t secs[64];
	uint32_t ns = 0;
	uint64_t last = UINT64_MAX;
	bool sorted = true;
	if (contig) { /* ascending without gaps: the sectors from the first byte's to the last's */
		for (uint64_t s = addr[0] >> 5; s <= (addr[31] + n - 1) >> 5 && ns < 64; s++)
			secs[ns++] = s;
		m = 0;
	}
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

/* initcheck bytes: index of the first never-written byte of p[0..n) (n when none), and
 * marking n bytes written; word-sized fast paths (n is 1..16 here). */
static inline uint32_t first_unset(const uint8_t *p, uint32_t n)
{
	uint64_t v = 0;
	if (n == 4)
		memcpy(&v, p, 4);
	else if (n >= 8)
		memcpy(&v, p, 8);
	if ((n == 4 && v == 0x01010101u) || (n == 8 && v == 0x0101010101010101ull))
		return n;
	for (uint32_t i = 0; i < n; i++)
		if (!p[i])
			return i;
	return n;
}
/* every one of n bytes (a multiple of 4) written */
static inline bool all_set(const uint8_t *p, uint32_t n)
{
	uint32_t acc = 0;
	for (uint32_t i = 0; i < n; i += 4) {
		uint32_t v;
		memcpy(&v, p + i, 4);
		acc |= v ^ 0x01010101u;
	}
	return acc == 0;
}
static inline void set_init(uint8_t *p, uint32_t n)
{
	static const uint8_t ones[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
	switch (n) {
	case 4: memcpy(p, ones, 4); break;
	case 8: memcpy(p, ones, 8); break;
	case 16: memcpy(p, ones, 16); break;
	default: memset(p, 1, n); break;
	}
}

/* Shared-memory wavefronts of one warp request (bank conflicts). */
static void count_wavefronts(ctx *x, const uint64_t *addr, uint32_t m, uint32_t n)
{
	uint32_t per_phase = n <= 4 ? 32 : n == 8 ? 16 : 8;
	uint32_t total = 0;
	if (n == 4) { /* common case: every lane a different bank -> one wavefront */
		uint32_t banks = 0;
		for (int l = 0; l < 32; l++)
			banks |= (m >> l & 1) ? 1u << ((addr[l] >> 2) & 31) : 0;
		if (popc32(banks) == popc32(m)) {
			x->c.shared_requests++;
			x->c.shared_wavefronts++;
			return;
		}
	}
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

/* racecheck. Entries per 4-byte word (x->race) for aligned word accesses, per byte
 * (x->race_b) for sub-word ones; a word whose bytes were accessed singly in this epoch
 * (bepoch) is also checked byte by byte, and a byte access checks its word's entry, so
 * two warps touching different bytes of one word never conflict. Inside a warp, two lanes
 * conflict when another instruction of the other lane touched the word with no
 * warp-synchronous op (__syncwarp, shfl.sync, ...) between: since Volta the lanes of a
 * warp are not in lockstep, so such an exchange works on one schedule only. */
static bool same_warp_conflict(const warp *w, uint16_t tid, uint32_t line, uint16_t otid,
			       uint32_t oline, uint32_t osync)
{
	return otid / 32 == w->id && otid != tid && oline != line && osync == w->wsync;
}

/* The reads before the last one (several warps): the latest, by mwarp, must be ordered
 * before this write unless it was this warp's own (program order); the older ones, by any
 * other warps, are checked against the least this warp knows of any other warp (vmin). */
static bool multi_unordered(const ctx *x, const race_ent *e, const warp *w)
{
	if (e->mwarp != w->id && e->mepoch > w->fx && !hb_local(x, w, e->mwarp, e->mepoch))
		return true;
	return e->oepoch > w->vmin && e->oepoch > w->fx && e->oepoch > w->full_t;
}

static inline __attribute__((always_inline)) bool race_conflict(const ctx *x, const race_ent *e, const warp *w, bool write, uint16_t tid,
			  uint32_t line, uint32_t *oline, uint32_t *otid, bool sync)
{
	if (!(sync && e->wsy) && !hb_local(x, w, e->wtid / 32u, e->wepoch) &&
	    (e->wtid / 32 != w->id || same_warp_conflict(w, tid, line, e->wtid, e->wline, e->wsync_w))) {
		*oline = e->wline;
		*otid = e->wtid;
		return true;
	}
	if (!write || (sync && e->rsy))
		return false;
	if (!hb_local(x, w, e->rtid / 32u, e->repoch) &&
	    (e->rtid / 32 != w->id || same_warp_conflict(w, tid, line, e->rtid, e->rline, e->wsync_r))) {
		*oline = e->rline;
		*otid = e->rtid;
		return true;
	}
	if (e->rmulti && multi_unordered(x, e, w)) {
		/* an older read by another warp: line 0, the warp when it is the one known */
		*oline = 0;
		*otid = (e->mwarp != w->id && e->mepoch > w->fx && !hb_local(x, w, e->mwarp, e->mepoch) ? e->mwarp : e->owarp) *
			32u;
		return true;
	}
	return false;
}

static inline __attribute__((always_inline)) void race_note(const ctx *x, race_ent *e, warp *w, uint16_t tid,
							     const emu_inst *in, bool write, bool sync)
{
	uint32_t line = in->line;
	if (write) {
		e->wepoch = x->now;
		e->wtid = tid;
		e->wline = line;
		e->wsync_w = w->wsync;
		e->wsy = sync;
		e->rel = !sync ? 0 : (in->mode2 & MO_REL) ? x->now : w->fence_t;
		return;
	}
	if (sync && e->wsy && e->rel > w->fx) /* acquire: reading a flag sees its release */
		w->fx = e->rel;
	/* the last read is ordered before this one: the record restarts with it, unless older
	 * reads by several warps are not (a read ordered after the latest reader through a
	 * named barrier knows nothing of a third warp's read: it stays recorded) */
	if (hb_local(x, w, e->rtid / 32u, e->repoch) && !(e->rmulti && multi_unordered(x, e, w))) {
		e->rsy = sync;
		e->repoch = x->now;
		e->rtid = tid;
		e->rline = line;
		e->wsync_r = w->wsync;
		e->rmulti = 0;
	} else if (e->rtid / 32 != w->id) {
		/* reads by several warps: a write must follow them all */
		uint8_t pw = (uint8_t)(e->rtid / 32u);
		if (!e->rmulti) {
			e->mepoch = e->repoch;
			e->mwarp = pw;
			e->oepoch = 0;
			e->owarp = pw;
		} else if (pw == e->mwarp) {
			e->mepoch = e->repoch > e->mepoch ? e->repoch : e->mepoch;
		} else {
			if (e->mepoch > e->oepoch) {
				e->oepoch = e->mepoch;
				e->owarp = e->mwarp;
			}
			if (e->repoch >= e->mepoch) {
				e->mepoch = e->repoch;
				e->mwarp = pw;
			} else if (e->repoch > e->oepoch) {
				e->oepoch = e->repoch;
				e->owarp = pw;
			}
		}
		e->rmulti = 1;
		e->rsy = e->rsy && sync;
		e->repoch = x->now;
		e->rtid = tid;
		e->rline = line;
		e->wsync_r = w->wsync;
	} else {
		/* this warp read it last: a writer must follow its latest read (the lane and
		 * line of the first one stay for the checks inside the warp) */
		e->repoch = x->now;
	}
}

static kiln_err race_fault(ctx *x, const warp *w, int l, const emu_inst *in, uint32_t byte, uint32_t n, bool write,
			   uint32_t oline, uint32_t otid)
{
	kiln_emu_fault *f = &x->emu->fault;
	f->space = KILN_EMU_SPACE_SHARED;
	f->addr = byte;
	f->size = n;
	f->other_line = oline;
	f->alloc_base = 0;
	f->alloc_size = x->shared_size;
	tid_of(x, otid, f->other_thread);
	if (!oline) /* reads by several warps */
		return fault(x, KILN_EMU_FAULT_RACE, w, l, in,
			     "write of shared byte %u: the read by warp %u is not ordered before it (no block-wide barrier; one with the last reader orders no other)",
			     byte, otid / 32);
	return fault(x, KILN_EMU_FAULT_RACE, w, l, in,
		     "%s of shared byte %u conflicts with thread (%u,%u,%u) at PTX line %u with no barrier (or __syncwarp, for lanes of one warp) between",
		     write ? "write" : "read", byte, f->other_thread[0], f->other_thread[1], f->other_thread[2], oline);
}

/* racecheck on [off, off+n) of shared memory by lane l of warp w. */
static inline __attribute__((always_inline)) kiln_err race_check(ctx *x, warp *w, int l, const emu_inst *in, uint32_t off,
								    uint32_t n, bool write)
{
	uint16_t tid = (uint16_t)(w->id * 32 + (uint32_t)l);
	uint32_t oline = 0, otid = 0;
	bool sync = in->op != OP_CP_ASYNC && (in->mode2 & MO_SYNC);
	if (n >= 4 && !(off & 3) && !(n & 3)) {
		for (uint32_t wd = off / 4; wd < (off + n) / 4; wd++) {
			race_ent *e = &x->race[wd];
			if (race_conflict(x, e, w, write, tid, in->line, &oline, &otid, sync))
				return race_fault(x, w, l, in, wd * 4, n, write, oline, otid);
			if (e->bepoch > w->vmin)
				for (uint32_t b = wd * 4; b < wd * 4 + 4; b++)
					if (race_conflict(x, &x->race_b[b], w, write, tid, in->line, &oline, &otid, sync))
						return race_fault(x, w, l, in, b, n, write, oline, otid);
			race_note(x, e, w, tid, in, write, sync);
		}
		return 0;
	}
	for (uint32_t b = off; b < off + n; b++) {
		race_ent *e = &x->race_b[b], *we = &x->race[b / 4];
		if (race_conflict(x, e, w, write, tid, in->line, &oline, &otid, sync) ||
		    race_conflict(x, we, w, write, tid, in->line, &oline, &otid, sync))
			return race_fault(x, w, l, in, b, n, write, oline, otid);
		race_note(x, e, w, tid, in, write, sync);
		we->bepoch = x->now;
	}
	return 0;
}

/* ---- global racecheck ----
 * Happens-before, not epochs: every access carries the time x->now (advanced at each
 * quantum and sync event). Inside a block, warp i sees warp j's accesses up to
 * vc[i][j] (barriers merge these clocks); across blocks (and across warps, through
 * flags) a warp sees everything up to its frontier fx, which grows when it reads (with
 * an atomic or a volatile/relaxed/acquire load) a word whose last write was a release:
 * st.release / atom.release, or a non-plain store or atomic after a fence of the
 * writing warp (the release publishes everything up to that fence: a scalar frontier,
 * so it over-approximates what one release orders). Conflicting accesses (at least one
 * write, at least one plain, overlapping bytes) by different warps without that order
 * are a race. Accesses before the launch are ordered (t <= t0). */
static bool hb_global(const ctx *x, const warp *w, uint32_t gid, uint32_t wid, uint32_t t)
{
	if (t <= w->fx)
		return true;
	return gid == x->cur->gid && t <= w->vcrow[wid];
}

static kiln_err grace_fault(ctx *x, const warp *w, int l, const emu_inst *in, const emu_alloc *a, uint64_t addr,
			    bool write, uint32_t ogid, uint32_t otag, bool owrite)
{
	kiln_emu_fault *f = &x->emu->fault;
	uint32_t ob[3], opc = TAG_PC(otag), oline = opc < x->k->ncode ? x->k->code[opc].line : 0;
	ob[0] = ogid % x->grid[0];
	ob[1] = (ogid / x->grid[0]) % x->grid[1];
	ob[2] = ogid / (x->grid[0] * x->grid[1]);
	f->space = KILN_EMU_SPACE_GLOBAL;
	f->addr = addr;
	f->size = in->size * in->vec;
	f->other_line = oline;
	f->alloc_base = a->base;
	f->alloc_size = a->size;
	tid_of(x, TAG_WARP(otag) * 32, f->other_thread);
	return fault(x, KILN_EMU_FAULT_RACE, w, l, in,
		     "%s of global offset %llu of 0x%llx conflicts with a %s by block (%u,%u,%u) warp %u at PTX line %u (no barrier, atomic or fenced flag between)",
		     write ? "write" : "read", (unsigned long long)(addr - a->base), (unsigned long long)a->base,
		     !owrite ? "read" : (otag & TAG_ATOMIC) ? "atomic" : (otag & TAG_PLAIN) ? "write" : "flag write", ob[0], ob[1], ob[2], TAG_WARP(otag), oline);
}

/* One 4-byte word (bytes `mask`) accessed by warp w: kind 0 load, 1 store, 2 atomic. */
static kiln_err grace_word(ctx *x, warp *w, int l, const emu_inst *in, const emu_alloc *a, struct emu_gshadow *e,
			   uint32_t mask, int kind, uint32_t pc, uint64_t addr)
{
	bool plain = kind != 2 && !(in->mode2 & MO_SYNC);
	uint32_t gid = x->cur->gid;
	/* a plain read racing with an atomic is the guess of a CAS loop (atomicMax on floats):
	 * the atomic validates it, so only plain and flag writes conflict with plain reads */
	if (e->wt > x->t0 && (e->wgid != gid || TAG_WARP(e->wtag) != w->id) && (plain || (e->wtag & TAG_PLAIN)) &&
	    !(kind == 0 && (e->wtag & TAG_ATOMIC)) &&
	    (TAG_MASK(e->wtag) & mask) && !hb_global(x, w, e->wgid, TAG_WARP(e->wtag), e->wt))
		return grace_fault(x, w, l, in, a, addr, kind != 0, e->wgid, e->wtag, true);
	if (kind == 1 && e->rt > x->t0 && (e->rgid != gid || TAG_WARP(e->rtag) != w->id) &&
	    (plain || (e->rtag & TAG_PLAIN)) && (TAG_MASK(e->rtag) & mask) &&
	    !hb_global(x, w, e->rgid, TAG_WARP(e->rtag), e->rt))
		return grace_fault(x, w, l, in, a, addr, true, e->rgid, e->rtag, false);
	/* acquire: a flag read sees the release of the write it reads */
	if (kind != 1 && !plain && e->rel > w->fx && (!(e->wtag & TAG_CTAREL) || e->wgid == gid))
		w->fx = e->rel;
	uint32_t tag = pc << 12 | (kind == 2 ? TAG_ATOMIC : 0) | w->id << 6 | mask << 2 | (plain ? TAG_PLAIN : 0);
	if (kind != 0) {
		uint32_t rel = 0, cta = 0;
		if (!plain) {
			rel = (in->mode2 & MO_REL) ? x->now : w->fence_t;
			cta = (in->mode2 & MO_REL) ? (in->mode2 & MO_CTA) != 0 : w->fence_cta;
		}
		if (kind == 2 && e->rel > rel && e->wt > x->t0) /* a release sequence of atomics keeps earlier releases */
			rel = e->rel;
		e->wt = x->now;
		e->wgid = gid;
		e->wtag = tag | (cta ? TAG_CTAREL : 0);
		e->rel = rel;
	} else {
		e->rt = x->now;
		e->rgid = gid;
		e->rtag = tag;
	}
	return 0;
}

static uint64_t gsec_count(const emu_alloc *a)
{
	return a->size / 32 + 2;
}

/* The word records of sector s, filled from its summary when it is not split yet. */
static struct emu_gshadow *gsec_words(emu_alloc *a, uint64_t s)
{
	struct emu_gshadow *sec = &a->shadow[s], *wd = a->shadow + gsec_count(a) + s * 8;
	if (!sec->split) {
		for (int i = 0; i < 8; i++) {
			wd[i] = *sec;
			wd[i].split = 0;
		}
		sec->split = 1;
	}
	return wd;
}

/* Lanes l.. of a plain access of n bytes each cover the 32-byte sector at addr[l] with
 * consecutive addresses: the sector's 8 words see the same accesses in the same order. */
static uint32_t gsec_group(uint32_t m, const uint64_t *addr, int l, uint32_t n, uint64_t off)
{
	if (n < 4 || n > 32 || (32 % n) || (off & 31))
		return 0;
	uint32_t per = 32 / n;
	if ((uint32_t)l + per > 32 || ((m >> l) & ((1u << per) - 1u)) != (1u << per) - 1u) /* per <= 8 */
		return 0;
	for (uint32_t j = 1; j < per; j++)
		if (addr[l + (int)j] != addr[l] + j * n)
			return 0;
	return per;
}

static kiln_err grace_check(ctx *x, warp *w, const emu_inst *in, uint32_t m, const uint64_t *addr, uint32_t n,
			    int kind, emu_alloc *single)
{
	uint32_t pc = (uint32_t)(in - x->k->code);
	bool plain = kind != 2 && !(in->mode2 & MO_SYNC);
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		emu_alloc *a = single ? single : emu_mem_find(x->emu, addr[l]);
		if (!a->shadow && !(a->shadow = kiln_calloc(gsec_count(a) * 9, sizeof *a->shadow)))
			return kiln_error_set(KILN_ENOMEM, "emulator: out of memory for the global racecheck");
		uint64_t off = addr[l] - a->base;
		uint32_t per = plain ? gsec_group(m, addr, l, n, off) : 0;
		if (per) {
			/* a plain access (it moves no frontier) of a whole sector: one record in
			 * summary; else word by word, merged again when they end up identical */
			struct emu_gshadow *sec = &a->shadow[off / 32];
			if (!sec->split) {
				if (grace_word(x, w, l, in, a, sec, 15u, kind, pc, addr[l]))
					return KILN_EFAULT;
			} else {
				struct emu_gshadow *wd = gsec_words(a, off / 32);
				for (uint32_t i = 0; i < 8; i++)
					if (grace_word(x, w, l + (int)(4 * i / n), in, a, wd + i, 15u, kind, pc, addr[l] + 4 * i))
						return KILN_EFAULT;
				uint32_t i = 1;
				while (i < 8 && !memcmp(&wd[i], &wd[0], sizeof *wd))
					i++;
				if (i == 8) {
					*sec = wd[0];
					sec->split = 0;
				}
			}
			l += (int)per - 1;
			continue;
		}
		uint32_t nw = n < 4 ? 1 : n / 4;
		for (uint32_t i = 0; i < nw; i++) {
			uint64_t wi = off / 4 + i;
			struct emu_gshadow *e = gsec_words(a, wi / 8) + wi % 8;
			uint32_t mask = n < 4 ? ((1u << n) - 1) << (off & 3) : 15u;
			if (grace_word(x, w, l, in, a, e, mask, kind, pc, addr[l] + 4 * i))
				return KILN_EFAULT;
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
	uint64_t orv = 0, gap = 0;
	for (int l = 0; l < 32; l++) {
		addr[l] = base[l] + (uint64_t)imm;
		orv |= (m >> l & 1) ? addr[l] : 0;
		gap |= addr[l] ^ (addr[0] + (uint64_t)l * n);
	}
	/* every lane, consecutive n-byte elements (a coalesced access): the fast paths below */
	bool contig = m == FULL && !gap && addr[0] + 32ull * n > addr[0];
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
		bool init_done = false;
		if (x->emu->opt.initcheck && contig && single && kind != 2) {
			uint8_t *ip = single->init + (addr[0] - single->base);
			if (kind == 1)
				memset(ip, 1, 32ull * n);
			else
				init_done = all_set(ip, 32u * n); /* else the lanes below find the byte */
			init_done = init_done || kind == 1;
		}
		if (x->emu->opt.initcheck && !init_done) {
			for (int l = 0; l < 32; l++) {
				if (!(m >> l & 1))
					continue;
				emu_alloc *b = single ? single : emu_mem_find(x->emu, addr[l]);
				uint8_t *ip = b->init + (addr[l] - b->base);
				uint32_t i;
				if (kind == 1) {
					set_init(ip, n);
				} else {
					if ((i = first_unset(ip, n)) < n) {
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
		if (x->grace && space == KILN_EMU_SPACE_GLOBAL) {
			kiln_err ge = grace_check(x, w, in, m, addr, kind == 2 ? in->size : n, kind, single);
			if (ge)
				return ge;
		}
		if (kind == 2) {
			x->c.atomics++;
			for (int l = 0; l < 32; l++)
				if (m >> l & 1)
					count_atomic_addr(x, addr[l]);
		} else {
			count_sectors(x, addr, m, n, kind == 1, single, contig);
		}
	} else if (space == KILN_EMU_SPACE_SHARED) {
		bool fast = false;
		if (contig && kind != 2 && addr[0] + 32ull * n <= x->shared_size &&
		    (!x->emu->opt.initcheck || kind == 1 || all_set(x->sh_init + addr[0], 32u * n))) {
			/* in bounds and (loads) initialised as one range; else the lanes below fault */
			if (x->emu->opt.initcheck && kind == 1)
				memset(x->sh_init + addr[0], 1, 32ull * n);
			for (int l = 0; l < 32; l++)
				hp[l] = x->shared + addr[l];
			for (int l = 0; l < 32 && x->race; l++)
				if (race_check(x, w, l, in, (uint32_t)addr[l], n, kind == 1))
					return KILN_EFAULT;
			/* 32 consecutive words per 128 bytes: one wavefront each */
			x->c.shared_requests++;
			x->c.shared_wavefronts += n <= 4 ? 1 : n / 4;
			fast = true;
		}
		for (int l = 0; l < 32 && !fast; l++) {
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
				uint32_t i;
				if (kind == 1) {
					set_init(x->sh_init + off, n);
				} else {
					if ((i = first_unset(x->sh_init + off, n)) < n) {
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
		else if (!fast)
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

/* ---------------------------------------------------------------- warps
 * Scheduling inside a warp (independent thread scheduling, as on sm_70+): the active
 * lanes (act, at pc) run until they diverge, exit, reach a barrier, reach the PC of a
 * parked lane (then they merge: min-PC reconvergence) or reach a warp-synchronous op
 * (shfl/vote/match/redux/bar.warp.sync) whose membermask names a live lane that is not
 * with them; then they wait there (syncwait) and the lowest-PC runnable lanes run, until
 * the missing lanes arrive at the same PC. When only waiting lanes are left (a kernel
 * whose lanes meet at different sync ops), the lowest one runs with the lanes present. */
static void reconverge(warp *w)
{
	for (int l = 0; l < 32; l++)
		if (w->act >> l & 1)
			w->lpc[l] = w->pc;
	uint32_t all = w->parked | w->act;
	uint32_t cand = all & ~w->syncwait;
	bool force = false;
	if (cand & w->deprio) { /* lanes that spun wait while other lanes can run (forward progress) */
		uint32_t pref = cand & ~w->deprio;
		if (pref)
			cand = pref;
		else
			w->deprio = 0;
	}
	if (!cand && w->syncwait) {
		cand = w->syncwait;
		force = true;
	}
	if (!cand) {
		w->act = 0;
		w->parked = 0;
		w->min_parked = UINT32_MAX;
		w->state = w->barwait ? W_BAR : W_DONE;
		return;
	}
	uint32_t mn = UINT32_MAX, mn2 = UINT32_MAX, g = 0;
	for (int l = 0; l < 32; l++)
		if ((cand >> l & 1) && w->lpc[l] < mn)
			mn = w->lpc[l];
	for (int l = 0; l < 32; l++) {
		if (!(all >> l & 1))
			continue;
		if (w->lpc[l] == mn)
			g |= 1u << l;
		else if (w->lpc[l] > mn && w->lpc[l] < mn2)
			mn2 = w->lpc[l];
	}
	if (force)
		w->forced_pc = mn;
	w->syncwait &= ~g;
	w->deprio &= ~g;
	w->pc = mn;
	w->act = g;
	w->parked = all & ~g;
	w->min_parked = mn2;
	w->state = W_RUN;
}

/* True when the lanes act at pc must wait at warp-synchronous op `in` for live lanes of
 * its membermask (mask operand in register `mreg`, read from lane `l0`). */
static bool sync_must_wait(warp *w, const emu_inst *in, uint32_t pc, uint32_t act, uint32_t mreg, int l0)
{
	if (w->forced_pc == pc) {
		w->forced_pc = UINT32_MAX;
		return false;
	}
	uint32_t mem = mreg != EMU_NOREG ? (uint32_t)w->r[(size_t)mreg * 32 + (uint32_t)l0] : FULL;
	(void)in;
	return (mem & w->live & ~act) != 0;
}

/* Comparison of lanes -> mask. For packed half types, sel picks the half (0 low, 1 high). */
#ifdef __SSE2__
/* setp.f32 without .ftz: the comparison c of the 32 lanes' low halves, four at a time (the
 * SSE predicates are IEEE's: the ordered ones false on NaN, the negated ones true) */
static uint32_t fcmp_sse(int c, const uint64_t *A, const uint64_t *B)
{
	uint32_t r = 0;
#define FCMPV(expr) do { for (int l = 0; l < 32; l += 4) { \
		__m128 a = _mm_shuffle_ps(_mm_loadu_ps((const float *)(A + l)), _mm_loadu_ps((const float *)(A + l + 2)), 0x88); \
		__m128 b = _mm_shuffle_ps(_mm_loadu_ps((const float *)(B + l)), _mm_loadu_ps((const float *)(B + l + 2)), 0x88); \
		r |= (uint32_t)_mm_movemask_ps(expr) << l; } } while (0)
	switch (c) {
	case CMP_EQ: FCMPV(_mm_cmpeq_ps(a, b)); break;
	case CMP_NE: FCMPV(_mm_and_ps(_mm_cmpneq_ps(a, b), _mm_cmpord_ps(a, b))); break;
	case CMP_LT: FCMPV(_mm_cmplt_ps(a, b)); break;
	case CMP_LE: FCMPV(_mm_cmple_ps(a, b)); break;
	case CMP_GT: FCMPV(_mm_cmpgt_ps(a, b)); break;
	case CMP_GE: FCMPV(_mm_cmpge_ps(a, b)); break;
	case CMP_EQU: FCMPV(_mm_or_ps(_mm_cmpeq_ps(a, b), _mm_cmpunord_ps(a, b))); break;
	case CMP_NEU: FCMPV(_mm_cmpneq_ps(a, b)); break;
	case CMP_LTU: FCMPV(_mm_cmpnge_ps(a, b)); break;
	case CMP_LEU: FCMPV(_mm_cmpngt_ps(a, b)); break;
	case CMP_GTU: FCMPV(_mm_cmpnle_ps(a, b)); break;
	default: FCMPV(_mm_cmpnlt_ps(a, b)); break; /* CMP_GEU */
	}
#undef FCMPV
	return r;
}
#endif

static uint32_t compare(const emu_inst *in, const uint64_t *A, const uint64_t *B, uint32_t m, int sel)
{
	uint32_t r = 0;
	uint8_t t = in->type2;
	int c = in->mode;
	bool ftz = in->flags & F_FTZ;
	if (t == EMU_F32 && !ftz && (c <= CMP_GE || (c >= CMP_EQU && c <= CMP_GEU))) {
#ifdef __SSE2__
		return fcmp_sse(c, A, B) & m;
#endif
		/* C comparisons are the ordered ones (false on NaN); negations are unordered */
#define FCMP(expr) do { for (int l = 0; l < 32; l++) { float a = F(A[l]), b = F(B[l]); r |= (uint32_t)(expr) << l; } } while (0)
		switch (c) {
		case CMP_EQ: FCMP(a == b); return r & m;
		case CMP_NE: FCMP(a < b || a > b); return r & m;
		case CMP_LT: FCMP(a < b); return r & m;
		case CMP_LE: FCMP(a <= b); return r & m;
		case CMP_GT: FCMP(a > b); return r & m;
		case CMP_GE: FCMP(a >= b); return r & m;
		case CMP_EQU: FCMP(!(a < b || a > b)); return r & m;
		case CMP_NEU: FCMP(a != b); return r & m;
		case CMP_LTU: FCMP(!(a >= b)); return r & m;
		case CMP_LEU: FCMP(!(a > b)); return r & m;
		case CMP_GTU: FCMP(!(a <= b)); return r & m;
		case CMP_GEU: FCMP(!(a < b)); return r & m;
		default: break;
		}
#undef FCMP
	}
	if ((t == EMU_S32 || t == EMU_S64) && c <= CMP_GE) {
		bool w64 = t == EMU_S64;
		for (int l = 0; l < 32; l++) {
			int64_t a = w64 ? (int64_t)A[l] : (int32_t)A[l], b = w64 ? (int64_t)B[l] : (int32_t)B[l];
			int v = c == CMP_EQ ? a == b : c == CMP_NE ? a != b : c == CMP_LT ? a < b : c == CMP_LE ? a <= b :
				c == CMP_GT ? a > b : a >= b;
			r |= (uint32_t)v << l;
		}
		return r & m;
	}
	if ((t == EMU_U32 || t == EMU_B32 || t == EMU_U64 || t == EMU_B64) && c <= CMP_HS) {
		uint64_t mk = tsize[t] == 8 ? ~0ull : 0xFFFFFFFFull;
		for (int l = 0; l < 32; l++) {
			uint64_t a = A[l] & mk, b = B[l] & mk;
			int v = c == CMP_EQ ? a == b : c == CMP_NE ? a != b : (c == CMP_LT || c == CMP_LO) ? a < b :
				(c == CMP_LE || c == CMP_LS) ? a <= b : (c == CMP_GT || c == CMP_HI) ? a > b : a >= b;
			r |= (uint32_t)v << l;
		}
		return r & m;
	}
	if (t == EMU_F16X2 || t == EMU_BF16X2) {
		emu_type h = t == EMU_F16X2 ? EMU_F16 : EMU_BF16;
		uint32_t sh = sel ? 16 : 0;
		LANES(m, r |= (uint32_t)emu_fcmp((emu_cmp)c, (A[l] >> sh) & 0xFFFF, (B[l] >> sh) & 0xFFFF, h, ftz) << l);
	} else if (tfloat(t)) {
		LANES(m, r |= (uint32_t)emu_fcmp((emu_cmp)c, A[l], B[l], (emu_type)t, ftz) << l);
	} else {
		LANES(m, r |= (uint32_t)emu_icmp((emu_cmp)c, A[l], B[l], (emu_type)t) << l);
	}
	return r;
}

static uint64_t atom_op(int op, uint8_t t, uint64_t old, uint64_t b, uint64_t c)
{
	uint32_t sz = tsize[t];
	switch (op) {
	case ATOM_ADD:
		if (t == EMU_F32) /* atom.add.f32: round to nearest, subnormals flushed (PTX ISA) */
			return emu_f32_add((uint32_t)old, (uint32_t)b, EMU_RN, true, false);
		if (t == EMU_F64)
			return emu_f64_add(old, b, EMU_RN);
		if (t == EMU_F16 || t == EMU_F16X2 || t == EMU_BF16 || t == EMU_BF16X2) /* .noftz */
			return emu_h_add((uint32_t)old, (uint32_t)b, (emu_type)t, false, false);
		return zext(old + b, sz);
	case ATOM_MIN: case ATOM_MAX: {
		bool mx = op == ATOM_MAX;
		if (t == EMU_F32)
			return mx ? emu_f32_max((uint32_t)old, (uint32_t)b, false, false) : emu_f32_min((uint32_t)old, (uint32_t)b, false, false);
		if (t == EMU_F64)
			return mx ? emu_f64_max(old, b, false) : emu_f64_min(old, b, false);
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
	emu_type t = (emu_type)in->type;
	bool ftz = in->flags & F_FTZ, sat = in->flags & F_SAT;
	uint32_t A = (uint32_t)a, B = (uint32_t)b, C = (uint32_t)c;
	switch (in->op) {
	case OP_HADD: return emu_h_add(A, B, t, ftz, sat);
	case OP_HSUB: return emu_h_sub(A, B, t, ftz, sat);
	case OP_HMUL: return emu_h_mul(A, B, t, ftz, sat);
	case OP_HFMA: return emu_h_fma(A, B, C, t, ftz, sat);
	case OP_HNEG: return emu_h_neg(A, t);
	case OP_HABS: return emu_h_abs(A, t);
	case OP_HMIN: return emu_h_min(A, B, t, ftz, in->mode == 1);
	default: return emu_h_max(A, B, t, ftz, in->mode == 1);
	}
}

#define REG(i) (R + (size_t)(i) * 32)
#define REGQ(i) ((i) == EMU_NOREG ? R : REG(i))
/* an f32 op with round-to-nearest and exactly the flags f (the inline fast paths) */
#define F32_RN(in, f) ((in)->type == EMU_F32 && (in)->flags == (f) && (in)->rnd <= EMU_RN)

/* f32 bits with a subnormal flushed to a zero of its sign when ftz (emu_math's ftz32) */
static inline uint32_t ftzb(uint32_t u, bool ftz)
{
	return ftz && !(u & 0x7F800000u) ? u & 0x80000000u : u;
}

static inline float ftzb_f(float f, bool ftz) { return ftz ? ftzf(f) : f; }

/* fma.rn.f32 [.ftz] over the lanes of m. The host's fused multiply-add where the CPU has
 * one (a libm call otherwise): the same correctly rounded result either way. */
#define FFMA_LOOP(ftz) LANES(m, D[l] = ftz ? FBN(ftzf(fmaf(ftzf(F(A[l])), ftzf(F(B[l])), ftzf(F(C[l]))))) : \
			     FBN(fmaf(F(A[l]), F(B[l]), F(C[l]))))
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
__attribute__((target("fma"))) static void ffma_hw(uint64_t *D, const uint64_t *A, const uint64_t *B,
						    const uint64_t *C, uint32_t m, bool ftz)
{
	FFMA_LOOP(ftz);
}
#define HAVE_FMA() __builtin_cpu_supports("fma")
#else
#define ffma_hw ffma_sw
#define HAVE_FMA() 0
#endif
static void ffma_sw(uint64_t *D, const uint64_t *A, const uint64_t *B, const uint64_t *C, uint32_t m, bool ftz)
{
	FFMA_LOOP(ftz);
}
static inline void ffma_lanes(uint64_t *D, const uint64_t *A, const uint64_t *B, const uint64_t *C, uint32_t m,
			      bool ftz)
{
	if (HAVE_FMA())
		ffma_hw(D, A, B, C, m, ftz);
	else
		ffma_sw(D, A, B, C, m, ftz);
}

static kiln_err unsupported_at(ctx *x, warp *w, const emu_inst *in, const char *what)
{
	return fault(x, KILN_EMU_FAULT_UNSUPPORTED, w, __builtin_ctz(w->act ? w->act : 1), in,
		     "not supported by the emulator: %s", what);
}

/* Float ops on f32/f64 with modifiers (the slow path): emu_math, host-verified. */
static uint64_t f64_op1(const emu_inst *in, uint64_t a, uint64_t b, uint64_t c, bool *ok)
{
	emu_rnd r = (emu_rnd)in->rnd;
	bool nan = in->mode == 1;
	switch (in->op) {
	case OP_FADD: return emu_f64_add(a, b, r);
	case OP_FSUB: return emu_f64_sub(a, b, r);
	case OP_FMUL: return emu_f64_mul(a, b, r);
	case OP_FFMA: return emu_f64_fma(a, b, c, r);
	case OP_FDIV: return emu_f64_div(a, b, (in->flags & F_APPROX) ? EMU_RN : r);
	case OP_FABS: return emu_f64_abs(a);
	case OP_FNEG: return emu_f64_neg(a);
	case OP_FMIN: return emu_f64_min(a, b, nan);
	case OP_FMAX: return emu_f64_max(a, b, nan);
	case OP_RCP: return emu_f64_rcp(a, (in->flags & F_APPROX) ? EMU_RND_NONE : r);
	case OP_SQRT: return emu_f64_sqrt(a, (in->flags & F_APPROX) ? EMU_RN : r);
	case OP_RSQRT: return emu_f64_rsqrt_approx(a);
	case OP_COPYSIGN: return emu_f64_copysign(a, b);
	default: *ok = false; return 0;
	}
}

static uint32_t f32_op1(const emu_inst *in, uint32_t a, uint32_t b, uint32_t c, bool *ok)
{
	emu_rnd r = (emu_rnd)in->rnd;
	bool ftz = in->flags & F_FTZ, sat = in->flags & F_SAT, apx = in->flags & F_APPROX;
	uint32_t v;
	switch (in->op) {
	case OP_FADD: return emu_f32_add(a, b, r, ftz, sat);
	case OP_FSUB: return emu_f32_sub(a, b, r, ftz, sat);
	case OP_FMUL: return emu_f32_mul(a, b, r, ftz, sat);
	case OP_FFMA: return emu_f32_fma(a, b, c, r, ftz, sat);
	case OP_FABS: return emu_f32_abs(a, ftz);
	case OP_FNEG: return emu_f32_neg(a, ftz);
	case OP_FMIN: return emu_f32_min(a, b, ftz, in->mode == 1);
	case OP_FMAX: return emu_f32_max(a, b, ftz, in->mode == 1);
	case OP_COPYSIGN: return emu_f32_copysign(a, b);
	case OP_FDIV: v = apx ? (in->mode == 2 ? emu_f32_div_full(a, b, ftz) : emu_f32_div_approx(a, b, ftz)) : emu_f32_div(a, b, r, ftz); break;
	case OP_RCP: v = emu_f32_rcp(a, apx ? EMU_RND_NONE : r, ftz); break;
	case OP_SQRT: v = emu_f32_sqrt(a, apx ? EMU_RND_NONE : r, ftz); break;
	case OP_RSQRT: v = emu_f32_rsqrt_approx(a, ftz); break;
	case OP_EX2: v = emu_f32_ex2_approx(a, ftz); break;
	case OP_LG2: v = emu_f32_lg2_approx(a, ftz); break;
	case OP_SIN: v = emu_f32_sin_approx(a, ftz); break;
	case OP_COS: v = emu_f32_cos_approx(a, ftz); break;
	case OP_TANH: v = emu_f32_tanh_approx(a); break;
	default: *ok = false; return 0;
	}
	/* .sat on the ops whose emu_math function takes none */
	return sat ? emu_f32_add(v, 0, EMU_RN, false, true) : v;
}

/* ex2 / tanh .approx on f16, bf16 (x2: each half): the f32 approximation, rounded once. */
static uint32_t half_mufu(const emu_inst *in, uint32_t a)
{
	emu_type t = (emu_type)in->type;
	bool bf = t == EMU_BF16 || t == EMU_BF16X2, x2 = t == EMU_F16X2 || t == EMU_BF16X2;
	emu_type h = bf ? EMU_BF16 : EMU_F16;
	uint32_t d = 0;
	for (int i = 0; i < (x2 ? 2 : 1); i++) {
		uint32_t hb = (a >> (16 * i)) & 0xFFFF;
		uint32_t f = (uint32_t)emu_cvt(hb, EMU_F32, h, EMU_RND_NONE, false, false);
		f = in->op == OP_EX2 ? emu_f32_ex2_approx(f, in->flags & F_FTZ) : emu_f32_tanh_approx(f);
		d |= (uint32_t)(emu_cvt(f, h, EMU_F32, EMU_RN, false, false) & 0xFFFF) << (16 * i);
	}
	return d;
}

static kiln_err float_op(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint64_t *D = REG(in->d), *A = REG(in->a);
	uint64_t *B = in->b != EMU_NOREG ? REG(in->b) : A, *C = in->c != EMU_NOREG ? REG(in->c) : A;
	bool ok = true;
	if (in->type != EMU_F32 && in->type != EMU_F64) {
		LANES(m, D[l] = half_mufu(in, (uint32_t)A[l]));
		return 0;
	}
	if (in->type == EMU_F64) {
		LANES(m, D[l] = f64_op1(in, A[l], B[l], C[l], &ok));
	} else {
		LANES(m, D[l] = f32_op1(in, (uint32_t)A[l], (uint32_t)B[l], (uint32_t)C[l], &ok));
	}
	return ok ? 0 : unsupported_at(x, w, in, in->type == EMU_F64 ? "this f64 operation" : "this f32 operation");
}

/* fns.b32: the position of the offset-th set bit of mask counting from bit base upwards
 * (offset > 0) or downwards (offset < 0), base itself included; offset 0: base when
 * that bit is set. 0xFFFFFFFF when there is none. */
static uint32_t fns1(uint32_t mask, uint32_t base, int32_t offset)
{
	base &= 31;
	if (offset == 0)
		return (mask >> base & 1) ? base : 0xFFFFFFFFu;
	int step = offset > 0 ? 1 : -1;
	uint32_t left = offset > 0 ? (uint32_t)offset : 0u - (uint32_t)offset;
	for (int i = (int)base; i >= 0 && i < 32; i += step)
		if ((mask >> i & 1) && --left == 0)
			return (uint32_t)i;
	return 0xFFFFFFFFu;
}

/* Integer ops that are not on the fast path: emu_math, host-verified. */
static uint64_t int_op1(const emu_inst *in, uint64_t a, uint64_t b, uint64_t c, uint64_t e, bool *ok)
{
	emu_type t = (emu_type)in->type;
	uint32_t sz = tsize[t];
	switch (in->op) {
	case OP_ADD: case OP_SUB:
		if ((in->flags & F_SAT) && tsigned(t)) {
			uint32_t bits = sz * 8;
			int64_t sa = (int64_t)sext(a, sz), sb = (int64_t)sext(b, sz);
			i128 v = in->op == OP_ADD ? (i128)sa + sb : (i128)sa - sb;
			i128 lo = -((i128)1 << (bits - 1)), hi = ((i128)1 << (bits - 1)) - 1;
			return zext((uint64_t)(int64_t)(v < lo ? lo : v > hi ? hi : v), sz);
		}
		return zext(in->op == OP_ADD ? a + b : a - b, sz);
	case OP_MUL_LO: return emu_int_mul_lo(a, b, t);
	case OP_MUL_HI: return emu_int_mul_hi(a, b, t);
	case OP_MUL_WIDE: return zext(emu_int_mul_wide(a, b, t), sz * 2);
	case OP_MAD_LO: return zext(emu_int_mul_lo(a, b, t) + c, sz);
	case OP_MAD_HI: return zext(emu_int_mul_hi(a, b, t) + c, sz);
	case OP_MAD_WIDE: return zext(emu_int_mul_wide(a, b, t) + c, sz * 2);
	case OP_MUL24_LO: return emu_int_mul24(a, b, t, false);
	case OP_MUL24_HI: return emu_int_mul24(a, b, t, true);
	case OP_MAD24_LO: return zext(emu_int_mul24(a, b, t, in->mode) + c, 4);
	case OP_SAD: return emu_int_sad(a, b, c, t);
	case OP_DIV: return emu_int_div(a, b, t);
	case OP_REM: return emu_int_rem(a, b, t);
	case OP_ABS: return emu_int_abs(a, t);
	case OP_NEG: return emu_int_neg(a, t);
	case OP_MIN: return emu_int_min(a, b, t);
	case OP_MAX: return emu_int_max(a, b, t);
	case OP_NOT: return zext(~a, sz);
	case OP_CNOT: return zext(a, sz) == 0;
	case OP_SHL: return emu_int_shl(a, (uint32_t)b, t);
	case OP_SHR: return emu_int_shr(a, (uint32_t)b, t);
	case OP_SHF_L: return emu_shf_l((uint32_t)a, (uint32_t)b, (uint32_t)c, in->flags & F_CLAMP);
	case OP_SHF_R: return emu_shf_r((uint32_t)a, (uint32_t)b, (uint32_t)c, in->flags & F_CLAMP);
	case OP_POPC: return emu_int_popc(a, t);
	case OP_CLZ: return emu_int_clz(a, t);
	case OP_BREV: return emu_int_brev(a, t);
	case OP_BFIND: return emu_int_bfind(a, t, in->mode);
	case OP_BFE: return emu_int_bfe(a, (uint32_t)b, (uint32_t)c, t);
	case OP_BFI: return emu_int_bfi(a, b, (uint32_t)c, (uint32_t)e, t);
	case OP_PRMT: return emu_prmt((uint32_t)a, (uint32_t)b, (uint32_t)c, (emu_prmt_mode)in->mode);
	case OP_LOP3: return emu_lop3((uint32_t)a, (uint32_t)b, (uint32_t)c, in->mode);
	case OP_FNS: return fns1((uint32_t)a, (uint32_t)b, (int32_t)c);
	case OP_DP4A: return emu_dp4a((uint32_t)a, (uint32_t)b, (uint32_t)c, tsigned(in->type), tsigned(in->type2));
	case OP_DP2A: return emu_dp2a((uint32_t)a, (uint32_t)b, (uint32_t)c, tsigned(in->type), tsigned(in->type2), in->mode);
	default: *ok = false; return 0;
	}
}

static kiln_err int_op(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint64_t *D = REG(in->d), *A = REG(in->a);
	uint64_t *B = in->b != EMU_NOREG ? REG(in->b) : A, *C = in->c != EMU_NOREG ? REG(in->c) : A;
	uint64_t *E = in->e != EMU_NOREG ? REG(in->e) : A;
	bool ok = true;
	LANES(m, D[l] = int_op1(in, A[l], B[l], C[l], E[l], &ok));
	return ok ? 0 : unsupported_at(x, w, in, "this integer operation");
}

/* Extended-precision integer arithmetic (add.cc, addc, sub.cc, subc, mad.cc, madc): the
 * carry flag CC.CF is one bit per lane (w->cc); subtraction's flag is the borrow. */
static void carry_op(warp *w, const emu_inst *in, uint32_t m)
{
	uint64_t *R = w->r;
	uint64_t *D = REG(in->d), *A = REG(in->a), *B = REG(in->b);
	uint64_t *C = in->c != EMU_NOREG ? REG(in->c) : A;
	uint32_t sz = tsize[in->type], bits = sz * 8, cout = 0;
	bool cin = in->mode2 & 1, cset = in->flags & F_CC;
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		u128 ci = cin ? (w->cc >> l & 1) : 0, a = zext(A[l], sz), b = zext(B[l], sz), r;
		if (in->op == OP_SUB) {
			r = a - b - ci; /* wraps: bit `bits` set on borrow */
		} else if (in->op == OP_ADD) {
			r = a + b + ci;
		} else {
			uint64_t prod = in->op == OP_MAD_HI ? emu_int_mul_hi(A[l], B[l], (emu_type)in->type)
							    : emu_int_mul_lo(A[l], B[l], (emu_type)in->type);
			r = (u128)zext(prod, sz) + zext(C[l], sz) + ci;
		}
		D[l] = zext((uint64_t)r, sz);
		cout |= (uint32_t)((r >> bits) & 1) << l;
	}
	if (cset)
		w->cc = (w->cc & ~m) | cout;
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
		uint64_t nv = atom_op(in->mode, in->type, old, B[l], C[l]);
		x->progress += zext(nv, sz) != zext(old, sz);
		store_val(ptr[l], nv, sz);
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
	count_sectors(x, gaddr, m, n, false, NULL, false);
	count_wavefronts(x, saddr, m, n);
	return 0;
}

/* ---------------------------------------------------------------- clocks, spins, barriers */
/* %clock/%clock64/%globaltimer(_lo/_hi) (mode 0-4): modeled time of the schedule. Cycles
 * advance with the warp-instructions issued so far (2 cycles each, the resident blocks
 * in parallel), from a per-device base plus a per-SM offset; the timer is nanoseconds at
 * 1.755 GHz with a 32 ns update granularity, continuing across launches. */
static uint64_t modeled_cycles(const ctx *x)
{
	uint64_t wi = 0;
	for (int i = 0; i < CLS_COUNT; i++)
		wi += x->cls[i];
	return wi * 2 / (x->nslots ? x->nslots : 1); /* the resident blocks issue in parallel */
}

static uint64_t clock_value(const ctx *x, const warp *w, uint8_t mode)
{
	uint64_t cyc = modeled_cycles(x);
	if (mode <= 1) {
		uint64_t v = x->clk0 + (uint64_t)w->b->smid * 104729u + cyc;
		return mode == 0 ? (uint32_t)v : v;
	}
	uint64_t ns = (x->gt0 + cyc * 1000 / 1755) & ~31ull;
	return mode == 3 ? (uint32_t)ns : mode == 4 ? ns >> 32 : ns;
}

/* A warp that reads a flag (volatile/relaxed/acquire load or atomic) at the same PC and
 * gets the same values as last time is spinning: it yields to the other warps. */
static bool spinning(warp *w, const emu_inst *in, uint32_t pc, uint32_t m)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const uint64_t *R = w->r;
	uint32_t nv = in->op == OP_LD ? in->vec : 1;
	for (uint32_t v = 0; v < nv; v++) {
		uint32_t reg = in->op == OP_LD ? in->v[v] : in->d;
		if (reg == EMU_NOREG)
			continue;
		for (int l = 0; l < 32; l++)
			if (m >> l & 1)
				h = (h ^ R[(size_t)reg * 32 + (uint32_t)l]) * 0x100000001b3ull;
	}
	bool spin = w->spin_pc == pc && w->spin_h == h;
	w->spin_pc = pc;
	w->spin_h = h;
	return spin;
}

static void bar_reset(const ctx *x, bar_state *bs, uint32_t expect)
{
	bs->expect = expect;
	bs->popc = 0;
	bs->all = 1;
	bs->any = 0;
	bs->fx = 0;
	bs->arr_t = UINT32_MAX;
	if (x->grace)
		memset(bs->vc, 0, x->nwarps * sizeof *bs->vc);
}

/* Warp w arrives at barrier id of its block, which expects nw warps (0: all live). */
static void bar_join(ctx *x, warp *w, uint32_t id, uint32_t nw)
{
	blk *b = w->b;
	bar_state *bs = &b->bar[id];
	const uint32_t *row = b->vc + (size_t)w->id * x->nwarps;
	if (!bs->arrived)
		bar_reset(x, bs, nw);
	bs->arrived++;
	for (uint32_t j = 0; x->grace && j < x->nwarps; j++) /* the clocks only serve the racecheck */
		bs->vc[j] = row[j] > bs->vc[j] ? row[j] : bs->vc[j];
	bs->vc[w->id] = x->now;
	bs->fx = w->fx > bs->fx ? w->fx : bs->fx;
	x->now++;
}

/* Completes barrier id of block b when enough warps arrived: its waiting warps run on
 * (bar.red results written), knowing what every arrival knew. */
static void bar_try(ctx *x, blk *b, uint32_t id)
{
	bar_state *bs = &b->bar[id];
	uint32_t expect = bs->expect ? bs->expect : b->live;
	if (!bs->arrived || bs->arrived < expect)
		return;
	/* a block-wide barrier: it waits for every warp of the block (a warp that exited
	 * counts as arrived). A named barrier whose count only happens to match the warps
	 * still live orders nothing about the ones that exited. */
	bool full = !bs->expect || bs->expect >= x->nwarps;
	bs->arrived = 0;
	x->progress++;
	for (uint32_t wi = 0; wi < x->nwarps; wi++) {
		warp *w = &b->warps[wi];
		if (w->state != W_BAR || !w->arrived || w->bar_id != id)
			continue;
		uint32_t bw = w->barwait;
		if (w->bar_mode == BAR_POPC) {
			uint64_t *D = w->r + (size_t)w->bar_d * 32;
			for (int l = 0; l < 32; l++)
				if (bw >> l & 1)
					D[l] = bs->popc;
		} else if (w->bar_mode == BAR_AND || w->bar_mode == BAR_OR) {
			bool v = w->bar_mode == BAR_AND ? bs->all : bs->any;
			w->p[w->bar_d] = (w->p[w->bar_d] & ~bw) | (v ? bw : 0);
		}
		uint32_t *row = b->vc + (size_t)wi * x->nwarps, mn = UINT32_MAX, mx = 0;
		for (uint32_t j = 0; x->grace && j < x->nwarps; j++) {
			row[j] = bs->vc[j] > row[j] ? bs->vc[j] : row[j];
			mn = row[j] < mn && j != wi ? row[j] : mn;
			mx = bs->vc[j] > mx ? bs->vc[j] : mx;
		}
		w->vmin = mn;
		mx = bs->arr_t < mx ? bs->arr_t : mx; /* a warp that only arrived may access after it */
		if (full && mx > w->full_t)
			w->full_t = mx;
		w->fx = bs->fx > w->fx ? bs->fx : w->fx;
		w->arrived = 0;
		w->bar_in = 0;
		w->bar_mode = 0;
		w->parked |= bw;
		w->barwait = 0;
		w->act = 0;
		reconverge(w);
	}
	x->now++;
}

/* A warp stopped with all its lanes at a barrier: count its arrival. */
static void bar_wait(ctx *x, warp *w)
{
	bar_state *bs = &w->b->bar[w->bar_id];
	bar_join(x, w, w->bar_id, w->bar_warps);
	bs->popc += (uint32_t)__builtin_popcount(w->bar_in);
	bs->any |= w->bar_in != 0;
	bs->all &= w->bar_in == w->barwait;
	w->arrived = 1;
	bar_try(x, w->b, w->bar_id);
}

/* bar.arrive: counts without waiting. */
static void bar_arrive(ctx *x, warp *w, uint32_t id, uint32_t nw)
{
	bar_join(x, w, id, nw);
	bar_state *bs = &w->b->bar[id];
	if (bs->vc[w->id] < bs->arr_t)
		bs->arr_t = bs->vc[w->id];
	bar_try(x, w->b, id);
}

/* ---------------------------------------------------------------- device printf */
static const char *printf_str(void *c, uint64_t addr, size_t *max)
{
	emu_alloc *a = emu_mem_find(c, addr);
	if (!a)
		return NULL;
	*max = a->base + a->size - addr;
	return (const char *)a->data + (addr - a->base);
}

/* vprintf(format, args) of each active lane in lane order, into the device's buffer. */
static void device_printf(ctx *x, warp *w, const emu_inst *in, uint32_t m)
{
	kiln_emu *emu = x->emu;
	for (int l = 0; l < 32; l++) {
		if (!(m >> l & 1))
			continue;
		uint8_t *frame = x->local + (size_t)(w->id * 32 + (uint32_t)l) * x->local_stride;
		uint64_t fa, aa;
		memcpy(&fa, frame + in->imm, 8);
		memcpy(&aa, frame + in->target, 8);
		size_t fmax = 0, amax = 0;
		const char *fmt = printf_str(emu, fa, &fmax);
		const uint8_t *args = NULL;
		if (aa >= EMU_LOCAL_WINDOW && aa - EMU_LOCAL_WINDOW < x->local_stride) {
			args = frame + (aa - EMU_LOCAL_WINDOW);
			amax = x->local_stride - (aa - EMU_LOCAL_WINDOW);
		} else if (aa) {
			args = (const uint8_t *)printf_str(emu, aa, &amax);
		}
		char line[1024];
		size_t n = fmt ? emu_format(line, sizeof line, fmt, fmax, args, amax, printf_str, emu) : 0;
		if (!fmt)
			n = (size_t)snprintf(line, sizeof line, "<printf: bad format pointer 0x%llx>\n", (unsigned long long)fa);
		if (in->e != EMU_NOREG) {
			int32_t rv = (int32_t)n;
			memcpy(frame + in->e, &rv, 4);
		}
		if (emu->printf_len + n + 1 > EMU_PRINTF_MAX) {
			emu->printf_cut = true;
			continue;
		}
		memcpy(emu->printf_buf + emu->printf_len, line, n);
		emu->printf_len += n;
	}
}

size_t kiln_emu_printf_take(kiln_emu *emu, char *buf, size_t cap)
{
	if (!emu || !buf || !cap)
		return 0;
	size_t n = emu->printf_len < cap - 1 ? emu->printf_len : cap - 1;
	memcpy(buf, emu->printf_buf, n);
	buf[n] = 0;
	if (emu->printf_cut)
		n += (size_t)snprintf(buf + n, cap - n, "%s", "[output truncated]");
	emu->printf_len = 0;
	emu->printf_cut = false;
	return n < cap ? n : cap - 1;
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
	int yield = 0;
	/* hands lanes a at PC p to the scheduler; runs on with the group it picks, or yields */
#define RESCHEDULE(p, a) do { w->pc = (p); w->act = (a); reconverge(w); \
	if (w->state != W_RUN) { x->ti = ti; return 0; } pc = w->pc; act = w->act; } while (0)
	for (;;) {
		const emu_inst *in = &code[pc];
		uint32_t m = act;
		if (in->guard != EMU_NOPRED)
			m &= in->gneg ? ~P[in->guard] : P[in->guard];
		cls[in->cls]++;
		ti += popc32(m);
		uint32_t npc = pc + 1;
		if (!m && in->op != OP_BRA)
			goto next;
		uint64_t *D = REGQ(in->d), *A = REGQ(in->a), *B = REGQ(in->b), *C = REGQ(in->c);
		if (in->cls == CLS_SHFL && w->parked && in->op != OP_ACTIVEMASK &&
		    sync_must_wait(w, in, pc, act, in->op == OP_WARPSYNC ? in->a : in->e, __builtin_ctz(m))) {
			/* not executed: wait here for the rest of the membermask */
			cls[in->cls]--;
			ti -= popc32(m);
			w->syncwait |= act;
			RESCHEDULE(pc, act);
			continue;
		}
		if ((in->cls == CLS_SHFL && in->op != OP_ACTIVEMASK) || in->op == OP_WARPSYNC)
			w->wsync++; /* orders the lanes' shared-memory accesses (racecheck) */
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
			uint64_t v = clock_value(x, w, in->mode);
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
			if ((in->flags & F_CC) || in->mode2)
				carry_op(w, in, m);
			else if (in->flags & F_SAT)
				err = int_op(x, w, in, m);
			else if (tsize[in->type] == 4)
				LANES(m, D[l] = (uint32_t)(A[l] + B[l]));
			else if (tsize[in->type] == 8)
				LANES(m, D[l] = A[l] + B[l]);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_SUB:
			if ((in->flags & F_CC) || in->mode2)
				carry_op(w, in, m);
			else if (!(in->flags & F_SAT) && tsize[in->type] == 4)
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
			if ((in->flags & F_CC) || in->mode2)
				carry_op(w, in, m);
			else if (tsize[in->type] == 4)
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
		case OP_MAD_HI:
			if ((in->flags & F_CC) || in->mode2)
				carry_op(w, in, m);
			else
				err = int_op(x, w, in, m);
			break;
		case OP_MUL_HI: case OP_MAD_WIDE: case OP_MUL24_LO: case OP_MUL24_HI:
		case OP_MAD24_LO: case OP_SAD: case OP_DIV: case OP_REM: case OP_ABS: case OP_NEG:
		case OP_MIN: case OP_MAX: case OP_NOT: case OP_CNOT: case OP_SHF_L: case OP_SHF_R:
		case OP_POPC: case OP_CLZ: case OP_BREV: case OP_BFIND: case OP_BFE: case OP_BFI:
		case OP_PRMT: case OP_LOP3: case OP_DP4A: case OP_DP2A: case OP_FNS:
			err = int_op(x, w, in, m);
			break;
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
			if (F32_RN(in, 0))
				LANES(m, D[l] = FBN(F(A[l]) + F(B[l])));
			else if (F32_RN(in, F_FTZ))
				LANES(m, D[l] = FBN(ftzf(ftzf(F(A[l])) + ftzf(F(B[l])))));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FSUB:
			if (F32_RN(in, 0))
				LANES(m, D[l] = FBN(F(A[l]) - F(B[l])));
			else if (F32_RN(in, F_FTZ))
				LANES(m, D[l] = FBN(ftzf(ftzf(F(A[l])) - ftzf(F(B[l])))));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FMUL:
			if (F32_RN(in, 0))
				LANES(m, D[l] = FBN(F(A[l]) * F(B[l])));
			else if (F32_RN(in, F_FTZ))
				LANES(m, D[l] = FBN(ftzf(ftzf(F(A[l])) * ftzf(F(B[l])))));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FFMA:
			if (F32_RN(in, 0) || F32_RN(in, F_FTZ))
				ffma_lanes(D, A, B, C, m, in->flags & F_FTZ);
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FABS:
			if (in->type == EMU_F32) /* bits: NaN payloads kept; .ftz keeps a subnormal's sign */
				LANES(m, D[l] = ftzb((uint32_t)A[l], in->flags & F_FTZ) & 0x7FFFFFFFu);
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FNEG:
			if (in->type == EMU_F32)
				LANES(m, D[l] = ftzb((uint32_t)A[l], in->flags & F_FTZ) ^ 0x80000000u);
			else
				err = float_op(x, w, in, m);
			break;
		case OP_RCP: /* rcp.rn and rcp.approx: the correctly rounded 1/a (emu_f32_rcp) */
			if (in->type == EMU_F32 && !(in->flags & ~(F_FTZ | F_APPROX)) && ((in->flags & F_APPROX) || in->rnd <= EMU_RN)) {
				if (in->flags & F_FTZ)
					LANES(m, D[l] = FBN(ftzf(1.0f / ftzf(F(A[l])))));
				else
					LANES(m, D[l] = FBN(1.0f / F(A[l])));
			} else {
				err = float_op(x, w, in, m);
			}
			break;
		case OP_FDIV:
			if (in->type == EMU_F32 && !in->flags && in->rnd == EMU_RN)
				LANES(m, D[l] = FBN(F(A[l]) / F(B[l])));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_SQRT:
			if (in->type == EMU_F32 && !in->flags && in->rnd == EMU_RN)
				LANES(m, D[l] = FBN(sqrtf(F(A[l]))));
			else
				err = float_op(x, w, in, m);
			break;
		case OP_FMIN: case OP_FMAX: case OP_RSQRT: case OP_EX2: case OP_LG2: case OP_SIN: case OP_COS:
		case OP_TANH: case OP_COPYSIGN:
			err = float_op(x, w, in, m);
			break;
		case OP_TESTP: {
			uint32_t r = 0;
			LANES(m, r |= (uint32_t)emu_testp_eval((emu_testp)in->mode, A[l], in->type == EMU_F64) << l);
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
			else if (in->type == EMU_S32 && in->type2 == EMU_F32 && in->rnd == EMU_RZI && !(in->flags & ~F_FTZ) && !in->mode)
				/* saturating, NaN -> 0 (emu_cvt); .ftz cannot change a truncation */
				LANES(m, { float a = F(A[l]); D[l] = a != a ? 0 : a <= -2147483648.0f ? 0x80000000u :
							       a >= 2147483648.0f ? 0x7FFFFFFFu : (uint32_t)(int32_t)a; });
			else if (in->type == EMU_F32 && in->type2 == EMU_F32 && !(in->flags & ~(F_FTZ | F_SAT)) && !in->mode &&
				 in->rnd <= EMU_RN)
				/* cvt[.ftz][.sat].f32.f32: a float is its own rounding; .sat clamps to [0, 1],
				 * NaN -> +0, -0 kept (emu_cvt) */
				LANES(m, { float a = ftzb_f(F(A[l]), in->flags & F_FTZ);
					   D[l] = a != a ? ((in->flags & F_SAT) ? 0 : 0x7FFFFFFFu) :
						  FB((in->flags & F_SAT) ? (a < 0 ? 0.0f : a > 1 ? 1.0f : a) : a); });
			else if (in->type == EMU_U64 && in->type2 == EMU_U32)
				LANES(m, D[l] = (uint32_t)A[l]);
			else if (in->type == EMU_S64 && in->type2 == EMU_S32)
				LANES(m, D[l] = (uint64_t)(int64_t)(int32_t)A[l]);
			else if (in->type == EMU_F32 && in->type2 == EMU_F32 && !in->flags && !in->mode && in->rnd >= EMU_RNI)
				/* integral rounding: the C functions are exact; rintf is half-even (the host
				 * rounding mode is never changed) */
				LANES(m, { float a = F(A[l]); D[l] = FBN(in->rnd == EMU_RZI ? truncf(a) : in->rnd == EMU_RMI ? floorf(a) :
								   in->rnd == EMU_RPI ? ceilf(a) : rintf(a)); });
			else
				LANES(m, D[l] = cvt1(in, A[l]));
			break;
		case OP_CVT_PACK:
			LANES(m, D[l] = emu_cvt_pack_x2((uint32_t)A[l], (uint32_t)B[l], (emu_type)in->type, (emu_rnd)in->rnd,
							in->mode & 1, in->mode & 2));
			break;
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
			if (in->space != KILN_EMU_SPACE_LOCAL && in->space != KILN_EMU_SPACE_CONST) {
				if (in->op == OP_ST)
					x->progress++;
				else if ((in->mode2 & MO_SYNC) && spinning(w, in, pc, m))
					yield = w->spun = 1;
				else if (--w->qleft == 0)
					yield = 1;
			}
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
			if (in->op == OP_ATOM && spinning(w, in, pc, m))
				yield = w->spun = 1;
			else if (--w->qleft == 0)
				yield = 1;
			break;
		case OP_FENCE:
			w->fence_t = x->now++;
			w->fence_cta = in->mode;
			break;
		case OP_NANOSLEEP: /* yields (a sleep loop's flag read is what proves a spin) */
			yield = 1;
			break;
		case OP_PRINTF:
			device_printf(x, w, in, m);
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
				if (--w->qleft == 0)
					yield = 1;
				if (w->parked) { /* a backward jump may pass parked lanes: choose again */
					RESCHEDULE(npc, act);
					if (yield)
						goto out;
					continue;
				}
			}
			break;
		case OP_EXIT:
			w->live &= ~m;
			act &= ~m;
			if (!act) {
				RESCHEDULE(npc, 0);
				continue;
			}
			break;
		case OP_BAR: {
			/* lanes m wait at the barrier; the warp yields once no lane can run */
			uint32_t id = (uint32_t)A[__builtin_ctz(m)], cnt = in->b != EMU_NOREG ? (uint32_t)B[__builtin_ctz(m)] : 0;
			x->c.barriers++;
			if (id >= NBAR || (in->b != EMU_NOREG && (cnt == 0 || cnt % 32))) {
				x->ti = ti;
				return fault(x, KILN_EMU_FAULT_TRAP, w, __builtin_ctz(m), in,
					     "barrier id %u / thread count %u invalid (id 0-15, count a non-zero multiple of 32)", id, cnt);
			}
			if (in->mode == BAR_ARRIVE) {
				/* .aligned: the warp arrives once, when all its live lanes have */
				w->arr_lanes = (w->arr_id == id ? w->arr_lanes : 0) | m;
				w->arr_id = (uint8_t)id;
				if ((w->arr_lanes & w->live) != w->live)
					break;
				w->arr_lanes = 0;
				bar_arrive(x, w, id, cnt / 32);
				if (x->faulted) {
					x->ti = ti;
					return KILN_EFAULT;
				}
				break;
			}
			w->bar_mode = in->mode;
			w->bar_id = (uint8_t)id;
			w->bar_warps = cnt / 32;
			w->arrived = 0;
			if (in->mode) {
				uint32_t p = in->mode2 ? ~P[in->c] : P[in->c];
				w->bar_in |= p & m;
				w->bar_d = in->d;
			}
			for (int l = 0; l < 32; l++)
				if (m >> l & 1)
					w->lpc[l] = npc;
			w->barwait |= m;
			RESCHEDULE(npc, act & ~m);
			continue;
		}
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
		if (pc >= w->min_parked) /* reached a parked lane's PC: merge or switch */
			RESCHEDULE(pc, act);
		if (__builtin_expect(yield, 0))
			goto out;
	}
out: /* preempted: the scheduler runs another warp */
	w->pc = pc;
	w->act = act;
	x->ti = ti;
	if (w->spun && w->parked) { /* spinning lanes let the warp's other lanes run first */
		w->deprio |= act;
		reconverge(w);
	}
	return 0;
#undef RESCHEDULE
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

static uint64_t sreg_value(const ctx *x, const blk *b, int id, uint32_t warp_id, int lane)
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
	case SREG_CTAID_X: return b->ctaid[0];
	case SREG_CTAID_Y: return b->ctaid[1];
	case SREG_CTAID_Z: return b->ctaid[2];
	case SREG_NCTAID_X: return x->grid[0];
	case SREG_NCTAID_Y: return x->grid[1];
	case SREG_NCTAID_Z: return x->grid[2];
	case SREG_LANEID: return (uint64_t)lane;
	case SREG_WARPID: return warp_id;
	case SREG_NWARPID: return x->emu->opt.warps_per_sm;
	case SREG_SMID: return b->smid;
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

/* ---------------------------------------------------------------- the scheduler
 * Blocks are dispatched in order (blockIdx order, or reversed) into nslots resident
 * slots; a GPU places the first wave round-robin over its SMs (%smid = dispatch index
 * mod sm_count, co-resident blocks share an SM) and a later block takes the SM of the
 * block it replaces. Warps of every resident block run interleaved: round robin, each
 * for a quantum of scheduling events (global/shared accesses, backward branches) drawn
 * from the schedule's seed, with random restarts; a warp that spins on a flag or sleeps
 * yields at once. The forward and reverse schedules keep one block resident and run each
 * warp to its next barrier (or spin). */
static void start_block(ctx *x, blk *b, uint64_t lin, uint32_t slot)
{
	uint64_t g = x->emu->sched == KILN_EMU_SCHED_REVERSE ? x->nblocks - 1 - lin : lin;
	b->ctaid[0] = (uint32_t)(g % x->grid[0]);
	b->ctaid[1] = (uint32_t)(g / x->grid[0] % x->grid[1]);
	b->ctaid[2] = (uint32_t)(g / ((uint64_t)x->grid[0] * x->grid[1]));
	b->gid = (uint32_t)g;
	uint32_t nsm = x->emu->opt.sm_count ? x->emu->opt.sm_count : 1;
	if (lin < (uint64_t)nsm * x->occ)
		b->smid = (uint32_t)(lin % nsm);
	else
		b->smid = x->sm_of_slot[slot];
	x->sm_of_slot[slot] = b->smid;
	b->busy = true;
	b->live = x->nwarps;
	if (x->shared_size) {
		memset(b->shared, 0xFF, x->shared_size);
		if (b->sh_init)
			memset(b->sh_init, 0, x->shared_size);
	}
	uint32_t t = ++x->now;
	for (size_t i = 0; x->grace && i < (size_t)x->nwarps * x->nwarps; i++)
		b->vc[i] = t;
	for (uint32_t i = 0; i < NBAR; i++)
		b->bar[i].arrived = 0;
	for (uint32_t wi = 0; wi < x->nwarps; wi++) {
		warp *w = &b->warps[wi];
		uint32_t nl = x->nthreads - wi * 32;
		w->live = nl >= 32 ? FULL : (1u << nl) - 1;
		w->act = w->live;
		w->pc = 0;
		w->parked = 0;
		w->min_parked = UINT32_MAX;
		w->syncwait = 0;
		w->barwait = 0;
		w->forced_pc = UINT32_MAX;
		w->bar_in = 0;
		w->bar_mode = 0;
		w->arrived = 0;
		w->arr_lanes = 0;
		w->deprio = 0;
		w->state = W_RUN;
		w->fx = x->t0;
		w->fence_t = 0;
		w->vmin = t;
		w->full_t = t;
		w->spin_pc = UINT32_MAX;
		w->b = b;
		w->r = NULL; /* a register file when it first runs (regs_acquire) */
		w->p[0] = 0;
		w->p[1] = FULL;
	}
}

/* A warp about to run for the first time takes a register file: the one released last
 * (still in cache) or a new one with the immediates and symbol addresses filled; its
 * special registers are filled here. Files go back when a warp exits (regs_release), so
 * warps that run to completion in turn share a few files instead of one per resident
 * warp. Other registers keep what the file held (a PTX register read before it is
 * written is undefined). */
static kiln_err regs_acquire(ctx *x, warp *w)
{
	const emu_kernel *k = x->k;
	if (x->nfree) {
		w->r = x->rfree[--x->nfree];
	} else {
		uint64_t *r = kiln_calloc((size_t)k->nregs * 32 + 1, 8);
		if (!r)
			return kiln_error_set(KILN_ENOMEM, "emulator: out of memory launching %s", k->name);
		for (uint32_t i = 0; i < k->nconsts; i++) {
			const emu_const *c = &k->consts[i];
			if (c->kind == CONST_SREG)
				continue;
			uint64_t v = c->kind == CONST_IMM ? c->value : x->symaddr[c->sym] + c->value;
			for (int l = 0; l < 32; l++)
				r[(size_t)c->reg * 32 + (uint32_t)l] = v;
		}
		x->rall[x->nall++] = r;
		w->r = r;
	}
	for (uint32_t i = 0; i < k->nconsts; i++) {
		const emu_const *c = &k->consts[i];
		if (c->kind != CONST_SREG)
			continue;
		uint64_t *Rr = w->r + (size_t)c->reg * 32;
		for (int l = 0; l < 32; l++)
			Rr[l] = sreg_value(x, w->b, c->sym, w->id, l);
	}
	return 0;
}

static void regs_release(ctx *x, warp *w)
{
	x->rfree[x->nfree++] = w->r;
	w->r = NULL;
}

static kiln_err deadlock(ctx *x, blk *b)
{
	char msg[200];
	size_t o = 0;
	enter_block(x, b);
	for (uint32_t id = 0; id < NBAR && o < sizeof msg - 40; id++) {
		bar_state *bs = &b->bar[id];
		if (!bs->arrived)
			continue;
		o += (size_t)snprintf(msg + o, sizeof msg - o, "%sbarrier %u has %u of %u warps (waiting:", o ? "; " : "", id,
				      bs->arrived, bs->expect ? bs->expect : b->live);
		for (uint32_t wi = 0; wi < x->nwarps && o < sizeof msg - 12; wi++)
			if (b->warps[wi].state == W_BAR && b->warps[wi].bar_id == id)
				o += (size_t)snprintf(msg + o, sizeof msg - o, " warp %u", wi);
		o += (size_t)snprintf(msg + o, sizeof msg - o, ")");
	}
	x->emu->fault.space = KILN_EMU_SPACE_NONE;
	return fault(x, KILN_EMU_FAULT_DEADLOCK, NULL, -1, NULL,
		     "every live warp of block (%u,%u,%u) waits at a barrier that cannot complete: %s", b->ctaid[0],
		     b->ctaid[1], b->ctaid[2], o ? msg : "no arrivals");
}

/* After warp w of block b stopped: count a barrier arrival or an exit; frees the slot
 * of a finished block. */
static kiln_err after_warp(ctx *x, blk *b, warp *w)
{
	if (w->state == W_BAR && !w->arrived) {
		bar_wait(x, w);
	} else if (w->state == W_DONE) {
		regs_release(x, w);
		b->live--;
		x->progress++;
		for (uint32_t id = 0; id < NBAR; id++)
			if (b->bar[id].arrived && !b->bar[id].expect)
				bar_try(x, b, id);
	}
	if (!b->live) {
		b->busy = false;
		x->c.blocks++;
		return 0;
	}
	if (w->state == W_RUN)
		return 0;
	for (uint32_t wi = 0; wi < x->nwarps; wi++)
		if (b->warps[wi].state == W_RUN)
			return 0;
	return deadlock(x, b);
}

/* Every runnable warp spun through a whole round and nothing changed memory: nothing can
 * end the spins (a GPU hangs). A BUDGET fault, as if the budget ran out. */
static kiln_err livelock(ctx *x, blk *b, warp *w)
{
	enter_block(x, b);
	return fault(x, KILN_EMU_FAULT_BUDGET, w, __builtin_ctz(w->act ? w->act : 1), &x->k->code[w->pc],
		     "did not finish: every runnable warp spins on a flag no running warp changes (infinite loop?)");
}

static kiln_err run_grid(ctx *x)
{
	uint32_t total = x->nslots * x->nwarps, cursor = 0, spins = 0;
	uint64_t progress = 0;
	bool seeded = x->emu->sched == KILN_EMU_SCHED_SEEDED;
	for (uint32_t s = 0; s < x->nslots && x->dispatched < x->nblocks; s++)
		start_block(x, &x->slots[s], x->dispatched++, s);
	for (;;) {
		warp *w = NULL;
		blk *b = NULL;
		if (seeded && (rng_next(&x->rng) & 7) == 0)
			cursor = (uint32_t)(rng_next(&x->rng) % total);
		for (uint32_t i = 0; i < total; i++) {
			uint32_t pos = (cursor + i) % total;
			blk *cb = &x->slots[pos / x->nwarps];
			if (cb->busy && cb->warps[pos % x->nwarps].state == W_RUN) {
				b = cb;
				w = &cb->warps[pos % x->nwarps];
				cursor = seeded ? pos + 1 : pos;
				break;
			}
		}
		if (!w) {
			for (uint32_t s = 0; s < x->nslots; s++)
				if (x->slots[s].busy)
					return deadlock(x, &x->slots[s]);
			return 0;
		}
		enter_block(x, b);
		if (!w->r && regs_acquire(x, w))
			return KILN_ENOMEM;
		w->qleft = seeded ? 1 + (uint32_t)(rng_next(&x->rng) % (2 * x->quantum)) : UINT32_MAX;
		x->now++;
		w->spun = 0;
		if (run_warp(x, w))
			return KILN_EFAULT;
		if (!w->spun || x->progress != progress) {
			spins = 0;
			progress = x->progress;
		} else if (++spins > 2 * total + 8) {
			return livelock(x, b, w);
		}
		if (w->state == W_RUN && !seeded)
			cursor = (cursor + 1) % total; /* a spinning warp yields to the next */
		kiln_err err = after_warp(x, b, w);
		if (err)
			return err;
		if (!b->busy && x->dispatched < x->nblocks)
			start_block(x, b, x->dispatched++, (uint32_t)(b - x->slots));
	}
}

/* Blocks of this launch one SM holds at once (threads, shared memory, registers, 32). */
static uint32_t occupancy(const ctx *x)
{
	const kiln_emu_options *o = &x->emu->opt;
	uint32_t tpb = x->nwarps * 32, occ = 2048 / (tpb ? tpb : 1);
	if (occ > 32)
		occ = 32;
	if (x->shared_size) {
		uint32_t per = x->shared_size + 1024, sm = 233472;
		occ = sm / per < occ ? sm / per : occ;
	}
	if (x->emu->regs_hint) {
		uint64_t per = (uint64_t)x->emu->regs_hint * tpb;
		uint64_t r = per ? o->regs_per_block / per : occ;
		occ = r < occ ? (uint32_t)r : occ;
	}
	return occ ? occ : 1;
}

static void slot_free(blk *b)
{
	if (b->warps)
		free(b->warps[0].p);
	free(b->warps);
	free(b->local);
	free(b->shared);
	free(b->sh_init);
	free(b->race);
	free(b->race_b);
	free(b->vc);
	free(b->bar[0].vc);
}

/* Memory of one resident block; registers holding immediates and symbols filled once. */
static kiln_err slot_alloc(ctx *x, blk *b)
{
	const emu_kernel *k = x->k;
	const kiln_emu_options *o = &x->emu->opt;
	uint32_t *preds = kiln_calloc((size_t)k->npreds * x->nwarps + 1, sizeof *preds);
	b->warps = kiln_calloc(x->nwarps, sizeof *b->warps);
	if (b->warps)
		b->warps[0].p = preds;
	else
		free(preds);
	b->local = x->local_stride ? kiln_calloc((size_t)x->local_stride * x->nwarps * 32, 1) : NULL;
	b->shared = kiln_malloc(x->shared_size + 16);
	b->sh_init = o->initcheck ? kiln_malloc(x->shared_size + 16) : NULL;
	b->race = o->racecheck && x->shared_size ? kiln_calloc(x->shared_size / 4 + 1, sizeof *b->race) : NULL;
	b->race_b = b->race ? kiln_calloc(x->shared_size, sizeof *b->race_b) : NULL;
	b->vc = kiln_calloc((size_t)x->nwarps * x->nwarps, sizeof *b->vc);
	b->bar[0].vc = kiln_calloc((size_t)x->nwarps * NBAR, sizeof *b->vc);
	if (!preds || !b->warps || (x->local_stride && !b->local) || !b->shared || (o->initcheck && !b->sh_init) ||
	    (o->racecheck && x->shared_size && (!b->race || !b->race_b)) || !b->vc || !b->bar[0].vc)
		return KILN_ENOMEM;
	for (uint32_t i = 1; i < NBAR; i++)
		b->bar[i].vc = b->bar[0].vc + (size_t)i * x->nwarps;
	for (uint32_t wi = 0; wi < x->nwarps; wi++) {
		warp *w = &b->warps[wi];
		w->id = wi;
		w->b = b;
		w->p = preds + (size_t)wi * k->npreds;
		w->vcrow = b->vc + (size_t)wi * x->nwarps;
	}
	return 0;
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
	x.nblocks = (uint64_t)grid[0] * grid[1] * grid[2];
	uint8_t *params = NULL;
	x.budget = emu->budget_override ? emu->budget_override : o->instruction_budget;
	if (!emu->budget_override && o->budget_per_thread && x.budget &&
	    x.nblocks * nthreads * o->budget_per_thread > x.budget)
		x.budget = x.nblocks * nthreads * o->budget_per_thread;
	emu->launch_no++;
	if ((err = module_vars(emu, mod, &x.symaddr)))
		goto done;
	x.occ = occupancy(&x);
	x.nslots = 1;
	if (emu->sched == KILN_EMU_SCHED_SEEDED)
		x.nslots = (uint32_t)(x.nblocks < 2ull * (x.occ < 4 ? x.occ : 4) ? x.nblocks : 2ull * (x.occ < 4 ? x.occ : 4));
	x.rng = emu->sched_seed ^ (++emu->sched_launch * 0x9E3779B97F4A7C15ull); /* seed, nth launch since */
	x.quantum = 32; /* mean events per quantum: long enough to keep a warp's registers in cache */
	x.grace = o->racecheck;
	if (emu->now > 0xF0000000u)
		emu_time_wrap(emu);
	x.now = emu->now;
	x.t0 = ++x.now;
	x.clk0 = emu->clk;
	x.gt0 = emu->gtime;
	x.local_stride = (k->local_bytes + k->frame_bytes + 15) & ~15u;
	params = kiln_calloc(k->param_bytes + 8, 1);
	x.slots = kiln_calloc(x.nslots, sizeof *x.slots);
	x.sm_of_slot = kiln_calloc(x.nslots, sizeof *x.sm_of_slot);
	x.rfree = kiln_calloc((size_t)x.nslots * x.nwarps, sizeof *x.rfree);
	x.rall = kiln_calloc((size_t)x.nslots * x.nwarps, sizeof *x.rall);
	if (!params || !x.slots || !x.sm_of_slot || !x.rfree || !x.rall) {
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
	for (uint32_t s = 0; s < x.nslots; s++)
		if ((err = slot_alloc(&x, &x.slots[s]))) {
			err = kiln_error_set(KILN_ENOMEM, "emulator: out of memory launching %s", kernel);
			goto done;
		}
	err = run_grid(&x);
	emu->now = x.now;
	emu->clk += modeled_cycles(&x) + 4000;
	emu->gtime += (modeled_cycles(&x) + 4000) * 1000 / 1755;
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
		c->atomic_same_addr += x.atom_max;
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
	for (uint32_t s = 0; x.slots && s < x.nslots; s++)
		slot_free(&x.slots[s]);
	free(x.slots);
	free(x.sm_of_slot);
	for (uint32_t i = 0; i < x.nall; i++)
		free(x.rall[i]);
	free(x.rfree);
	free(x.rall);
	free(x.atom_addr);
	free(x.atom_cnt);
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
	e->sched = KILN_EMU_SCHED_SEEDED;
	e->sched_seed = 1;
	e->now = 1;
	e->clk = 0x2f3a5c1d7ull << 8;       /* an SM that has been up for a while */
	e->gtime = 1764547200000000000ull;  /* ns since the epoch, like the GPU's timer */
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
		free(emu->allocs[i].shadow);
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

void kiln_emu_set_budget(kiln_emu *emu, uint64_t budget)
{
	if (emu)
		emu->budget_override = budget;
}

void kiln_emu_set_reverse_blocks(kiln_emu *emu, bool reverse)
{
	if (emu)
		kiln_emu_set_schedule(emu, reverse ? KILN_EMU_SCHED_REVERSE : KILN_EMU_SCHED_FORWARD, 0);
}

void kiln_emu_set_schedule(kiln_emu *emu, kiln_emu_sched sched, uint64_t seed)
{
	if (!emu)
		return;
	emu->sched = sched;
	emu->sched_seed = seed;
	emu->sched_launch = 0;
	/* the clocks' base depends on the schedule too: a kernel cannot recognise a run */
	emu->clk ^= (seed * 0x9E3779B97F4A7C15ull) & 0xFFFFFFull;
}

/* The happens-before time nears its 32-bit end: forget every access recorded so far. */
void emu_time_wrap(kiln_emu *emu)
{
	for (size_t i = 0; i < emu->nallocs; i++) {
		free(emu->allocs[i].shadow);
		emu->allocs[i].shadow = NULL;
	}
	emu->now = 1;
}
