/* Unit tests for the cost model (profile/cost): orderings every GPU engineer expects on a
 * memory-bound kernel, built from counters shaped like the emulator's for a copy of N
 * floats. The end-to-end orderings on real kernels run through the emulator in
 * tests/integ_bench.sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "profile/cost/cost.h"

static kiln_gpu_spec h100;

static int setup(void **state)
{
	(void)state;
	return kiln_cost_spec_load(&h100, NULL, NULL);
}

/* A copy of n floats: each thread moves `vec` floats per request, `stride` floats apart. */
static kiln_cost_launch copy(double n, double vec, double stride, double tpb)
{
	kiln_cost_launch l;
	memset(&l, 0, sizeof l);
	double threads = n / vec;
	l.threads_per_block = tpb;
	l.blocks = threads / tpb;
	l.regs_per_thread = 16;
	l.c.warps = threads / 32;
	double reqs = threads / 32;
	double sectors_per_req = stride > 1 ? 32 : 32 * 4 * vec / 32;
	l.c.gld_requests = l.c.gst_requests = reqs;
	l.c.gld_sectors = l.c.gst_sectors = reqs * sectors_per_req;
	l.c.dram_sectors = 2 * n * 4 / 32 * (stride > 1 ? 1.0 : 1.0);
	l.c.warp_mem = 2 * reqs;
	l.c.warp_int = 6 * reqs;
	l.c.warp_ctrl = 2 * reqs;
	return l;
}

static double model(const kiln_cost_launch *l, size_t n)
{
	kiln_cost_result r;
	assert_int_equal(kiln_cost_model(&r, &h100, l, n), 0);
	return r.time_us;
}

static void test_cost__spec_loads_and_rejects_unknown(void **state)
{
	(void)state;
	assert_true(h100.sm_count == 132);
	assert_string_equal(h100.arch, "sm_90");
	kiln_gpu_spec s;
	assert_int_equal(kiln_cost_spec_load(&s, "a100_sxm", NULL), 0);
	assert_true(s.sm_count == 108);
	assert_int_equal(kiln_cost_spec_load(&s, "rtx9999", NULL), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "unknown GPU spec \"rtx9999\""));
	assert_non_null(strstr(kiln_error_last(), "h100_sxm"));
}

static void test_cost__vector_coalesced_strided_order(void **state)
{
	(void)state;
	double n = 1 << 26;
	kiln_cost_launch v4 = copy(n, 4, 1, 256), v1 = copy(n, 1, 1, 256), st = copy(n, 1, 32, 256);
	double t4 = model(&v4, 1), t1 = model(&v1, 1), ts = model(&st, 1);
	assert_true(t4 < t1);
	assert_true(t1 < ts);
	/* a streaming copy is DRAM bound and can't beat the roofline */
	double r = kiln_cost_roofline(&h100, 8 * n, t4);
	assert_true(r > 0.5 && r < 1.0);
}

static void test_cost__small_grid_is_slower(void **state)
{
	(void)state;
	double n = 1 << 24;
	kiln_cost_launch full = copy(n, 4, 1, 256);
	kiln_cost_launch small = full;
	small.blocks = 32; /* a grid far smaller than 132 SMs, same total work */
	small.c.loop_iterations = small.c.warps * 511; /* grid-stride: each warp loops */
	assert_true(model(&small, 1) > 1.5 * model(&full, 1));
}

static void test_cost__bank_conflicts_cost(void **state)
{
	(void)state;
	kiln_cost_launch a = copy(1 << 22, 1, 1, 256), b;
	a.c.shared_requests = a.c.shared_wavefronts = 40 * a.c.gld_requests;
	b = a;
	b.c.shared_wavefronts = 32 * a.c.shared_requests; /* 32-way conflicts */
	assert_true(model(&b, 1) > model(&a, 1));
}

static void test_cost__two_launches_cost_more_than_one_fused(void **state)
{
	(void)state;
	double n = 1 << 20;
	kiln_cost_launch fused = copy(n, 1, 1, 256);
	kiln_cost_launch split[2] = {copy(n / 2, 1, 1, 256), copy(n / 2, 1, 1, 256)};
	assert_true(model(split, 2) > model(&fused, 1));
}

static void test_cost__more_bytes_more_time(void **state)
{
	(void)state;
	kiln_cost_launch a = copy(1 << 24, 4, 1, 256), b = copy(1 << 25, 4, 1, 256);
	assert_true(model(&b, 1) > model(&a, 1));
}

static void test_cost__low_occupancy_from_registers_and_limits(void **state)
{
	(void)state;
	kiln_cost_launch a = copy(1 << 26, 1, 1, 1024), b;
	b = a;
	b.regs_per_thread = 255; /* 1024 x 255 regs can't fit in 64K */
	kiln_cost_result r;
	assert_int_equal(kiln_cost_model(&r, &h100, &b, 1), KILN_EINVAL);
	assert_non_null(strstr(kiln_error_last(), "registers per block"));
	b.threads_per_block = 2048;
	assert_int_equal(kiln_cost_model(&r, &h100, &b, 1), KILN_EINVAL);
	b = a;
	b.dyn_shared = 300 * 1024;
	assert_int_equal(kiln_cost_model(&r, &h100, &b, 1), KILN_EINVAL);
	b = a;
	b.threads_per_block = 64;
	b.blocks = a.blocks * 16;
	b.regs_per_thread = 128;       /* 8 blocks x 2 warps = 16 warps: 25% occupancy */
	b.dyn_shared = 24 * 1024;      /* 9 blocks fit by shared memory */
	assert_int_equal(kiln_cost_model(&r, &h100, &b, 1), 0);
	assert_true(r.launch[0].occupancy < 0.3);
	assert_true(model(&b, 1) > model(&a, 1));
}

/* An in-place update (read, then write the same sectors) moves its sectors twice, like
 * a copy to another buffer: the emulator's first-touch count alone would halve it. */
static void test_cost__read_modify_write_counts_write_back(void **state)
{
	(void)state;
	double n = 1 << 24;
	kiln_cost_launch copy_l = copy(n, 4, 1, 256), inplace = copy_l;
	inplace.c.dram_sectors = n * 4 / 32; /* one array, touched first by the loads */
	kiln_cost_result a, b;
	assert_int_equal(kiln_cost_model(&a, &h100, &copy_l, 1), 0);
	assert_int_equal(kiln_cost_model(&b, &h100, &inplace, 1), 0);
	assert_true(a.dram_bytes == 8 * n);
	assert_true(b.dram_bytes == 8 * n);
	/* a read-only pass over the same array moves half */
	inplace.c.gst_requests = inplace.c.gst_sectors = 0;
	assert_int_equal(kiln_cost_model(&b, &h100, &inplace, 1), 0);
	assert_true(b.dram_bytes == 4 * n);
}

static void test_cost__extrapolation_is_linear(void **state)
{
	(void)state;
	kiln_cost_counters a, b, o;
	memset(&a, 0, sizeof a);
	memset(&b, 0, sizeof b);
	a.gld_sectors = 100 + 10;   /* 100 fixed + 1 per unit at scale 10 */
	b.gld_sectors = 100 + 1000; /* scale 1000 */
	a.warp_int = 50;
	b.warp_int = 10;            /* decreasing: extrapolation clamps at zero */
	kiln_cost_extrapolate(&o, &a, 10, &b, 1000, 1e6);
	assert_true(o.gld_sectors > 1e6 + 99 && o.gld_sectors < 1e6 + 101);
	assert_true(o.warp_int == 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cost__spec_loads_and_rejects_unknown),
		cmocka_unit_test(test_cost__vector_coalesced_strided_order),
		cmocka_unit_test(test_cost__small_grid_is_slower),
		cmocka_unit_test(test_cost__bank_conflicts_cost),
		cmocka_unit_test(test_cost__two_launches_cost_more_than_one_fused),
		cmocka_unit_test(test_cost__read_modify_write_counts_write_back),
		cmocka_unit_test(test_cost__more_bytes_more_time),
		cmocka_unit_test(test_cost__low_occupancy_from_registers_and_limits),
		cmocka_unit_test(test_cost__extrapolation_is_linear),
	};
	return cmocka_run_group_tests(tests, setup, NULL);
}
