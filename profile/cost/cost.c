/* The cost model: occupancy from the resource report, then the slowest of DRAM (with a
 * Little's-law memory-parallelism limit and an L2 reuse estimate), L2, instruction issue,
 * functional-unit pipes, shared-memory wavefronts and exposed latency, per SM and with
 * the last wave's tail, plus barriers, atomics and a fixed cost per launch.
 * Deterministic: the same counters and spec give the same time everywhere. */
#include "profile/cost/cost.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_REGS 32.0
#define REG_ALLOC_UNIT 256.0 /* registers are allocated per warp in units of 256 */
#define MAX_ILP 8.0          /* independent loads per warp a scheduler can keep in flight */
/* Stores are acknowledged by L2, so far fewer store bytes in flight saturate DRAM
 * (gpu-stream init reaches 0.83 of its peak at 25% occupancy on H100 PCIe). */
#define STORE_INFLIGHT_SHARE (1.0 / 3.0)
/* Stores hide in the DRAM time that loads limited by their parallelism leave idle: at
 * most this share of the store time is hidden, scaled by the loads' idle fraction
 * (fit to gpu-stream scale at 25 / 50 / 100% occupancy on H100 PCIe and A100). */
#define STORE_HIDDEN_MAX 0.7

static kiln_err spec_field(double *out, const cJSON *g, const char *key, const char *where)
{
	return kiln_json_number(out, g, key, where);
}

kiln_err kiln_cost_spec_load(kiln_gpu_spec *out, const char *key, const char *path)
{
	char *dflt = NULL;
	if (!path) {
		dflt = kiln_path_join(KILN_SOURCE_ROOT, "data/gpus.json");
		if (!dflt)
			return KILN_ENOMEM;
		path = dflt;
	}
	cJSON *root = NULL;
	kiln_err e = kiln_json_parse_file(&root, path, 1u << 20);
	if (e)
		goto done;
	const cJSON *gpus;
	if ((e = kiln_json_object(&gpus, root, "gpus", path)))
		goto done;
	if (!key || !*key) {
		if ((e = kiln_json_string(&key, root, "default", path)))
			goto done;
	}
	const cJSON *g = cJSON_GetObjectItemCaseSensitive(gpus, key);
	if (!cJSON_IsObject(g)) {
		kiln_buf known;
		kiln_buf_init(&known, 4096);
		const cJSON *it;
		cJSON_ArrayForEach(it, gpus) kiln_buf_printf(&known, "%s%s", known.len ? ", " : "", it->string);
		e = kiln_error_set(KILN_EINVAL, "%s: unknown GPU spec \"%s\" (known: %s)", path, key,
				   known.data ? known.data : "");
		kiln_buf_free(&known);
		goto done;
	}
	memset(out, 0, sizeof *out);
	snprintf(out->key, sizeof out->key, "%s", key);
	char where[512];
	snprintf(where, sizeof where, "%s: gpus.%s", path, key);
	const char *s;
	if ((e = kiln_json_string(&s, g, "name", where)))
		goto done;
	snprintf(out->name, sizeof out->name, "%s", s);
	if ((e = kiln_json_string(&s, g, "arch", where)))
		goto done;
	snprintf(out->arch, sizeof out->arch, "%s", s);
	struct { const char *k; double *v; } f[] = {
		{"sm_count", &out->sm_count}, {"clock_mhz", &out->clock_mhz},
		{"dram_bw_gbps", &out->dram_bw_gbps}, {"dram_efficiency", &out->dram_efficiency},
		{"dram_efficiency_write", &out->dram_efficiency_write}, {"dram_efficiency_rw", &out->dram_efficiency_rw},
		{"dram_latency_cycles", &out->dram_latency_cycles}, {"l2_latency_cycles", &out->l2_latency_cycles},
		{"shared_latency_cycles", &out->shared_latency_cycles}, {"l2_bytes", &out->l2_bytes},
		{"l2_bw_gbps", &out->l2_bw_gbps}, {"max_threads_per_sm", &out->max_threads_per_sm},
		{"max_warps_per_sm", &out->max_warps_per_sm}, {"max_blocks_per_sm", &out->max_blocks_per_sm},
		{"max_threads_per_block", &out->max_threads_per_block}, {"regs_per_sm", &out->regs_per_sm},
		{"regs_per_block", &out->regs_per_block}, {"max_regs_per_thread", &out->max_regs_per_thread},
		{"smem_per_sm", &out->smem_per_sm}, {"smem_per_block", &out->smem_per_block},
		{"smem_per_block_optin", &out->smem_per_block_optin},
		{"smem_reserved_per_block", &out->smem_reserved_per_block},
		{"issue_per_sm_per_clk", &out->issue_per_sm_per_clk},
		{"fp32_per_sm_per_clk", &out->fp32_per_sm_per_clk}, {"int32_per_sm_per_clk", &out->int32_per_sm_per_clk},
		{"mufu_per_sm_per_clk", &out->mufu_per_sm_per_clk}, {"cvt_per_sm_per_clk", &out->cvt_per_sm_per_clk},
		{"shfl_per_sm_per_clk", &out->shfl_per_sm_per_clk}, {"fp64_per_sm_per_clk", &out->fp64_per_sm_per_clk},
		{"half2_per_sm_per_clk", &out->half2_per_sm_per_clk},
		{"smem_bytes_per_sm_per_clk", &out->smem_bytes_per_sm_per_clk},
		{"barrier_cycles", &out->barrier_cycles}, {"launch_overhead_us", &out->launch_overhead_us},
		{"atomic_same_addr_cycles", &out->atomic_same_addr_cycles},
		{"graph_launch_us", &out->graph_launch_us}, {"launch_gap_min_us", &out->launch_gap_min_us},
		{"dram_loaded_latency_factor", &out->dram_loaded_latency_factor},
	};
	for (size_t i = 0; i < KILN_ARRAY_LEN(f); i++) {
		if ((e = spec_field(f[i].v, g, f[i].k, where)))
			goto done;
		if (!(*f[i].v >= 0) || (*f[i].v == 0 && strstr(f[i].k, "launch") == NULL)) {
			e = kiln_error_set(KILN_EINVAL, "%s: field \"%s\": expected a positive number", where, f[i].k);
			goto done;
		}
	}
	/* Little's law: the bytes one SM must keep in flight to draw its share of the read
	 * bandwidth over the loaded latency. */
	double lat_us = out->dram_latency_cycles / out->clock_mhz;
	out->bytes_in_flight_per_sm_for_peak = out->dram_bw_gbps * 1e3 * out->dram_efficiency / out->sm_count *
					       lat_us * out->dram_loaded_latency_factor;
done:
	cJSON_Delete(root);
	free(dflt);
	return e;
}

/* Resident blocks per SM, or 0 with the error set when the launch cannot run. */
static double occupancy(const kiln_gpu_spec *g, const kiln_cost_launch *l, size_t idx)
{
	double tpb = l->threads_per_block, warps = ceil(tpb / 32.0);
	double regs = l->regs_per_thread > 0 ? l->regs_per_thread : DEFAULT_REGS;
	double smem = l->dyn_shared + l->static_shared;
	if (tpb < 1 || tpb > g->max_threads_per_block) {
		kiln_error_set(KILN_EINVAL, "launch %zu: %g threads per block exceeds the %s limit of %g", idx, tpb,
			       g->key, g->max_threads_per_block);
		return 0;
	}
	if (regs > g->max_regs_per_thread) {
		kiln_error_set(KILN_EINVAL, "launch %zu: %g registers per thread exceeds %g", idx, regs,
			       g->max_regs_per_thread);
		return 0;
	}
	double regs_block = ceil(regs * 32.0 / REG_ALLOC_UNIT) * REG_ALLOC_UNIT * warps;
	if (regs_block > g->regs_per_block) {
		kiln_error_set(KILN_EINVAL, "launch %zu: %g registers per block exceeds %g (too many resources requested)",
			       idx, regs_block, g->regs_per_block);
		return 0;
	}
	if (smem > g->smem_per_block_optin) {
		kiln_error_set(KILN_EINVAL, "launch %zu: %g bytes of shared memory per block exceeds %g", idx, smem,
			       g->smem_per_block_optin);
		return 0;
	}
	double by_warps = floor(g->max_warps_per_sm / warps);
	double by_regs = floor(g->regs_per_sm / regs_block);
	double by_smem = smem > 0 ? floor(g->smem_per_sm / (smem + g->smem_reserved_per_block)) : INFINITY;
	double b = fmin(fmin(g->max_blocks_per_sm, by_warps), fmin(by_regs, by_smem));
	return b;
}

static double us(double cycles, const kiln_gpu_spec *g) { return cycles / g->clock_mhz; }

/* Fraction of the achievable DRAM bandwidth with x = bytes in flight / bytes needed
 * (Little's law). Linear well below saturation, bending smoothly near it as queueing
 * latency grows under load: x = 1 gives 0.84, x = 2 gives 0.97. A sharper knee (8th
 * power) fits gpu-stream's read sweep at 100% a few percent better but makes scalar
 * and float4 loads tie at 24 KB in flight per SM; kept soft. */
static double little(double x)
{
	if (!(x > 0))
		return 0;
	return x / pow(1.0 + x * x * x * x, 0.25);
}

/* Achievable fraction of peak DRAM bandwidth for a stream whose bytes are a fraction w
 * writes: linear between the read-only and write-only efficiencies, less a read/write
 * turnaround penalty that peaks at one read per write (dram_efficiency_rw) and falls
 * linearly to zero toward pure reads or pure writes (2 reads per write: 2/3 of it). */
static double dram_efficiency(const kiln_gpu_spec *g, double w)
{
	double r = g->dram_efficiency, wr = g->dram_efficiency_write;
	double mixed = 2.0 * fmin(w, 1.0 - w);
	return r + (wr - r) * w - ((r + wr) / 2.0 - g->dram_efficiency_rw) * mixed;
}

static void model_launch(kiln_cost_breakdown *o, const kiln_gpu_spec *g, const kiln_cost_launch *l,
			 double blocks_per_sm, double *dram_bytes)
{
	const kiln_cost_counters *c = &l->c;
	double blocks = fmax(l->blocks, 1), warps_per_block = ceil(l->threads_per_block / 32.0);
	double concurrent = blocks_per_sm * g->sm_count;
	double sm_active = fmin(g->sm_count, blocks);
	double blocks_max = ceil(blocks / sm_active);            /* on the busiest SM */
	double resident = fmin(blocks_per_sm, blocks_max);       /* blocks resident on it at once */
	double block_rounds = ceil(blocks_max / blocks_per_sm);  /* successive rounds on it */
	double waves = blocks / concurrent;
	o->blocks_per_sm = blocks_per_sm;
	o->waves = waves;
	o->tail_efficiency = waves >= 1 ? waves / ceil(waves) : 1.0;
	o->occupancy = resident * warps_per_block / g->max_warps_per_sm;

	/* Per-block shares of the counters; the busiest SM runs blocks_max of them. */
	double per_block = 1.0 / blocks;
	double share = blocks_max * per_block; /* fraction of the grid's work on the busiest SM */

	/* Instruction issue: 4 schedulers, one warp-instruction per clock each. */
	double winstr = c->warp_fp32 + c->warp_int + c->warp_mufu + c->warp_cvt + c->warp_fp64 +
			c->warp_half2 + c->warp_shfl + c->warp_mem + c->warp_ctrl + c->warp_barrier + c->warp_other;
	o->issue_us = us(winstr * share / g->issue_per_sm_per_clk, g);
	/* Functional-unit pipes run in parallel; the busiest decides. */
	double pipes[] = {c->warp_fp32 * 32 / g->fp32_per_sm_per_clk, c->warp_int * 32 / g->int32_per_sm_per_clk,
			  c->warp_mufu * 32 / g->mufu_per_sm_per_clk, c->warp_cvt * 32 / g->cvt_per_sm_per_clk,
			  c->warp_fp64 * 32 / g->fp64_per_sm_per_clk, c->warp_half2 * 32 / g->half2_per_sm_per_clk,
			  c->warp_shfl * 32 / g->shfl_per_sm_per_clk};
	double pipe = 0;
	for (size_t i = 0; i < KILN_ARRAY_LEN(pipes); i++)
		pipe = fmax(pipe, pipes[i]);
	o->pipe_us = us(pipe * share, g);
	/* Shared memory: one wavefront per clock per SM; bank conflicts add wavefronts. */
	o->smem_us = us(c->shared_wavefronts * share, g);

	/* DRAM: unique sectors, plus re-touched sectors that miss in L2 once the working
	 * set exceeds it. Loads are limited by memory parallelism (Little's law); stores
	 * are fire-and-forget and saturate early. */
	double touched = c->gld_sectors + c->gst_sectors + c->local_bytes / 32.0;
	double unique = fmin(c->dram_sectors, touched);
	/* A sector both read and written crosses DRAM twice (fetch, then dirty write-back);
	 * the emulator counts first touches only, so estimate the overlap of the reads' and
	 * the stores' unique sectors. */
	double rw = fmax(0.0, fmin(c->gld_sectors, unique) + fmin(c->gst_sectors, unique) - unique);
	double working_set = unique * 32.0;
	double miss = working_set > g->l2_bytes ? (working_set - g->l2_bytes) / working_set : 0.0;
	double dram = (unique + rw + fmax(0.0, touched - unique - rw) * miss) * 32.0;
	*dram_bytes += dram;
	double load_frac = touched > 0 ? (c->gld_sectors + c->local_bytes / 64.0) / touched : 0;
	double warps = fmax(c->warps, blocks * warps_per_block);
	double bytes_per_req = c->gld_requests > 0 ? c->gld_sectors * 32.0 / c->gld_requests : 0;
	double rounds = 1.0 + (c->loop_iterations > 0 ? c->loop_iterations / warps : 0);
	double ilp = c->gld_requests > 0 ? fmin(MAX_ILP, fmax(1.0, c->gld_requests / warps / rounds)) : 1.0;
	double per_block_inflight = warps_per_block * ilp * bytes_per_req;
	double active_frac = sm_active / g->sm_count;
	double peak = g->dram_bw_gbps * 1e3 * dram_efficiency(g, 1.0 - load_frac); /* bytes per us */
	/* Full waves keep every SM at its resident limit; the last partial wave spreads its
	 * blocks over the SMs and streams at the rate its own memory parallelism allows. */
	double full_waves = waves >= 1 ? floor(waves) : 0;
	double tail_blocks = blocks - full_waves * concurrent;
	double full_share = full_waves * concurrent / blocks, tail_share = tail_blocks / blocks;
	double mlp_full = little(blocks_per_sm * per_block_inflight / g->bytes_in_flight_per_sm_for_peak);
	double tail_active = fmin(g->sm_count, tail_blocks) / g->sm_count;
	double tail_resident = fmin(blocks_per_sm, ceil(tail_blocks / g->sm_count));
	double mlp_tail = little(tail_resident * per_block_inflight / g->bytes_in_flight_per_sm_for_peak);
	double load_s = full_share / fmax(mlp_full, 1e-6) + tail_share / fmax(mlp_tail * tail_active, 1e-6);
	/* Stores: the same Little's law against a third of the bytes in flight. */
	double st_bytes = c->gst_requests > 0 ? c->gst_sectors * 32.0 / c->gst_requests : 0;
	double st_ilp = c->gst_requests > 0 ? fmin(MAX_ILP, fmax(1.0, c->gst_requests / warps / rounds)) : 1.0;
	double st_need = g->bytes_in_flight_per_sm_for_peak * STORE_INFLIGHT_SHARE;
	double st_block = warps_per_block * st_ilp * st_bytes;
	double st_full = little(blocks_per_sm * st_block / st_need), st_tail = little(tail_resident * st_block / st_need);
	double store_s = full_share / fmax(st_full, 1e-6) +
			 tail_share / fmax(fmin(1.0, 2.0 * tail_active) * st_tail, 1e-6);
	if (!(c->gst_requests > 0))
		store_s = full_share + tail_share / fmax(fmin(1.0, 2.0 * tail_active), 1e-6);
	/* Loads and stores overlap in part (more as the loads leave the bus idle); all of
	 * the bytes at the mix's efficiency bound it. */
	double t_load = dram * load_frac * load_s / peak, t_store = dram * (1 - load_frac) * store_s / peak;
	double hidden = STORE_HIDDEN_MAX * (1.0 - 1.0 / fmax(load_s, 1.0));
	o->dram_us = fmax(dram / peak, fmax(t_load + (1.0 - hidden) * t_store, t_store));
	o->achieved_bw_fraction = load_s > 0 ? 1.0 / load_s : 0;
	o->l2_us = touched * 32.0 / (g->l2_bw_gbps * 1e3 * fmax(active_frac, 1e-6));

	/* Exposed latency: each warp waits a memory round trip per loop round (DRAM for the
	 * share of load sectors that reach DRAM, L2 for re-reads that hit); resident blocks
	 * overlap, successive block rounds on an SM do not. */
	double load_sectors = c->gld_sectors + c->local_bytes / 64.0;
	double from_dram = load_sectors > 0 ? fmin(1.0, dram * load_frac / 32.0 / load_sectors) : 1.0;
	double lat = g->l2_latency_cycles + (g->dram_latency_cycles - g->l2_latency_cycles) * from_dram;
	o->latency_us = c->gld_requests > 0 ? us(rounds * lat * block_rounds, g) : 0;
	double barriers_per_block = c->warp_barrier * per_block / fmax(warps_per_block, 1);
	o->barrier_us = us(barriers_per_block * g->barrier_cycles * block_rounds, g);
	/* Atomics: one warp-request per SM per clock, but those to one address serialize at
	 * its L2 slice (one per atomic_same_addr_cycles), whichever is slower. */
	o->atomic_us = us(fmax(c->atomics / g->sm_count, c->atomic_same_addr * g->atomic_same_addr_cycles), g);

	struct { const char *name; double v; } terms[] = {
		{"dram", o->dram_us}, {"l2", o->l2_us}, {"issue", o->issue_us}, {"pipe", o->pipe_us},
		{"shared", o->smem_us}, {"latency", o->latency_us},
	};
	double body = 0;
	o->bound = "launch";
	for (size_t i = 0; i < KILN_ARRAY_LEN(terms); i++)
		if (terms[i].v > body) {
			body = terms[i].v;
			o->bound = terms[i].name;
		}
	/* Issue and DRAM do not overlap perfectly: schedulers issuing on most cycles leave
	 * little slack to cover memory stalls. A soft maximum (4th-power blend) charges a
	 * kernel whose issue term nears its DRAM term (the AdamW seeds: 82-88%) ~10% and a
	 * streaming kernel (issue well under DRAM) nothing measurable. */
	if (body == o->dram_us || body == o->issue_us)
		body = fmax(body, pow(pow(o->dram_us, 4) + pow(o->issue_us, 4), 0.25));
	o->kernel_us = body + o->barrier_us + o->atomic_us;
}

/* The gap before a dependent launch: a launch period (stream or graph) is at least the
 * measured period of back-to-back small kernels, whose duration it contains; a longer
 * previous kernel leaves the least gap. */
static double launch_gap(const kiln_gpu_spec *g, const kiln_cost_launch *l, double prev_kernel_us)
{
	double period = l->graph ? g->graph_launch_us : g->launch_overhead_us;
	return fmax(period - prev_kernel_us, g->launch_gap_min_us);
}

kiln_err kiln_cost_model(kiln_cost_result *out, const kiln_gpu_spec *spec, const kiln_cost_launch *launches,
			 size_t n)
{
	memset(out, 0, sizeof *out);
	out->nlaunches = n;
	double prev_kernel_us = 0;
	for (size_t i = 0; i < n; i++) {
		double bps = occupancy(spec, &launches[i], i);
		if (bps < 1)
			return KILN_EINVAL;
		kiln_cost_breakdown b;
		memset(&b, 0, sizeof b);
		model_launch(&b, spec, &launches[i], bps, &out->dram_bytes);
		b.overhead_us = i > 0 ? launch_gap(spec, &launches[i], prev_kernel_us) : 0;
		b.time_us = b.kernel_us + b.overhead_us;
		prev_kernel_us = b.kernel_us;
		if (i < KILN_ARRAY_LEN(out->launch))
			out->launch[i] = b;
		out->kernel_us += b.kernel_us;
		out->gap_us += b.overhead_us;
		out->time_us += b.time_us;
	}
	return KILN_OK;
}

void kiln_cost_extrapolate(kiln_cost_counters *out, const kiln_cost_counters *a, double sa,
			   const kiln_cost_counters *b, double sb, double s)
{
	const double *pa = (const double *)a, *pb = (const double *)b;
	double *po = (double *)out;
	size_t nf = sizeof *out / sizeof(double);
	for (size_t i = 0; i < nf; i++) {
		double slope = sb != sa ? (pb[i] - pa[i]) / (sb - sa) : 0;
		double v = pb[i] + slope * (s - sb);
		po[i] = v > 0 ? v : 0;
	}
}

double kiln_cost_roofline(const kiln_gpu_spec *spec, double traffic_bytes, double time_us)
{
	if (!(time_us > 0))
		return 0;
	double ideal_us = traffic_bytes / (spec->dram_bw_gbps * 1e3);
	return ideal_us / time_us;
}
