/* cost: the emulator's deterministic cost model. From per-launch counters (what the PTX
 * emulator counted) and the compile resource report it models the time of a launch plan
 * on a named GPU spec (data/gpus.json). Its purpose is ranking candidates on a machine
 * without a GPU; results are labelled "modeled", never passed off as measured.
 * docs/cost-model.md explains every term, its source and its blind spots. */
#ifndef KILN_COST_H
#define KILN_COST_H

#include <stdbool.h>
#include <stdint.h>

#include "util/util.h"

typedef struct kiln_gpu_spec {
	char key[32];                 /* "h100_sxm" */
	char name[96];
	char arch[16];                /* "sm_90" */
	double sm_count, clock_mhz;
	double dram_bw_gbps;          /* peak, GB/s (1e9 bytes) */
	double dram_efficiency;       /* achievable fraction of peak, read-only stream */
	double dram_efficiency_write; /* write-only stream */
	double dram_efficiency_rw;    /* one read per write (copy-like); 2R1W interpolates */
	double dram_latency_cycles, l2_latency_cycles, shared_latency_cycles;
	double l2_bytes, l2_bw_gbps;
	double max_threads_per_sm, max_warps_per_sm, max_blocks_per_sm, max_threads_per_block;
	double regs_per_sm, regs_per_block, max_regs_per_thread;
	double smem_per_sm, smem_per_block, smem_per_block_optin, smem_reserved_per_block; /* bytes */
	double issue_per_sm_per_clk;  /* warp-instructions per clock per SM */
	double fp32_per_sm_per_clk, int32_per_sm_per_clk, mufu_per_sm_per_clk, cvt_per_sm_per_clk;
	double shfl_per_sm_per_clk, fp64_per_sm_per_clk, half2_per_sm_per_clk; /* thread results */
	double smem_bytes_per_sm_per_clk;
	double barrier_cycles;        /* cost of one __syncthreads per block (model parameter) */
	double atomic_same_addr_cycles; /* L2 cycles per atomic on one address (they serialize) */
	double launch_overhead_us;    /* launch period of back-to-back dependent small kernels */
	double graph_launch_us;       /* the same from a CUDA graph */
	double launch_gap_min_us;     /* least gap between dependent kernels however long */
	double dram_loaded_latency_factor; /* latency at the bandwidth knee / unloaded latency */
	/* Little's law: bytes in flight per SM to saturate DRAM. Derived, not read: the
	 * read bandwidth per SM x the unloaded DRAM latency x the loaded-latency factor. */
	double bytes_in_flight_per_sm_for_peak;
} kiln_gpu_spec;

/* Loads spec `key` (NULL or "": the file's default) from a gpus.json file (NULL: the
 * built-in data/gpus.json). Unknown keys list the known ones. */
kiln_err kiln_cost_spec_load(kiln_gpu_spec *out, const char *key, const char *path);

/* Counters of one launch (sums over the whole grid). Doubles, so that counters
 * extrapolated to a benchmark size need no integer overflow care. */
typedef struct kiln_cost_counters {
	double warp_fp32, warp_int, warp_mufu, warp_cvt, warp_fp64, warp_half2;
	double warp_shfl, warp_mem, warp_ctrl, warp_barrier, warp_other; /* warp-instructions */
	double gld_requests, gld_sectors;   /* global loads: warp requests, 32-byte sectors */
	double gst_requests, gst_sectors;   /* global stores */
	double dram_sectors;                /* unique sectors touched (first touch): DRAM traffic */
	double shared_requests, shared_wavefronts; /* wavefronts - requests = bank-conflict replays */
	double local_bytes;                 /* spills and local arrays */
	double atomics;                     /* global atomic warp-requests */
	double atomic_same_addr;            /* thread-level atomics at the most contended address */
	double loop_iterations;             /* taken backward branches, summed over warps (0: unknown) */
	double warps;                       /* warps launched */
} kiln_cost_counters;

typedef struct kiln_cost_launch {
	double blocks;          /* grid size (product) */
	double threads_per_block;
	double dyn_shared, static_shared; /* bytes per block */
	double regs_per_thread; /* from the compile report; 0 = unknown (32 assumed) */
	int graph;              /* nonzero: launched from a CUDA graph (shorter launch gap) */
	kiln_cost_counters c;
} kiln_cost_launch;

typedef struct kiln_cost_breakdown {
	double time_us;          /* kernel_us + overhead_us */
	double kernel_us;        /* the kernel's own duration (what CUPTI reports) */
	double dram_us, l2_us, issue_us, pipe_us, smem_us, latency_us, barrier_us, atomic_us;
	double overhead_us;      /* the launch gap before this kernel (0 for a plan's first) */
	const char *bound;       /* the term that decided: "dram", "issue", "latency", ... */
	double occupancy;        /* resident warps / max warps per SM */
	double blocks_per_sm;
	double waves;            /* blocks / (blocks_per_sm * sm_count) */
	double tail_efficiency;  /* waves / ceil(waves) */
	double achieved_bw_fraction; /* memory-parallelism limit on bandwidth (Little's law), 0-1 */
} kiln_cost_breakdown;

typedef struct kiln_cost_result {
	double time_us;          /* whole plan: kernel_us + gap_us */
	double kernel_us;        /* sum of the kernels' durations */
	double gap_us;           /* sum of the gaps between dependent launches */
	double dram_bytes;       /* modeled DRAM traffic */
	size_t nlaunches;
	kiln_cost_breakdown launch[8]; /* first 8 launches in detail */
} kiln_cost_result;

/* Models a launch plan's time: the kernels' durations plus the gaps between dependent
 * launches (the first launch's own launch latency is not counted, as a CUPTI kernel
 * duration does not count it). A launch that cannot fit on an SM (registers, shared
 * memory, block size) is KILN_EINVAL naming the limit, as the GPU would refuse it. */
kiln_err kiln_cost_model(kiln_cost_result *out, const kiln_gpu_spec *spec,
			 const kiln_cost_launch *launches, size_t n);

/* Extrapolates counters measured at two problem scales (sa < sb, e.g. the target's
 * traffic bytes at two verification sizes) to scale s, each counter linear in scale
 * (c = a + b*s) and clamped at zero. */
void kiln_cost_extrapolate(kiln_cost_counters *out, const kiln_cost_counters *a, double sa,
			   const kiln_cost_counters *b, double sb, double s);

/* Roofline fraction: the target's minimum traffic at peak bandwidth over the time. */
double kiln_cost_roofline(const kiln_gpu_spec *spec, double traffic_bytes, double time_us);

#endif
