/* profile: measured timing on the cuda backend. Per rep: the plan's scratch is poisoned
 * (kiln_plan_run), then the L2 is flushed without leaving dirty lines behind (write a 2x L2
 * buffer, then read it all with kiln_l2_read), then the plan's launches run. Warm-up reps
 * bracket each launch by two events and synchronize it, so a fault names its rep and
 * launch; measured reps queue the plan's launches back to back (or, for a plan with
 * "graph": true, as one CUDA graph) and synchronize once, so the gaps between dependent
 * launches are the GPU's own. One source per measurement, never mixed: CUPTI kernel
 * records matched to the reps by correlation id (an external id pushed around each launch:
 * rep << 16 | launch), giving each rep's kernel time (durations summed) and gaps (a
 * kernel's start less its predecessor's end), a rep with a missing, zero, inverted or
 * overlapping record left out and counted; or, without CUPTI, events around the whole plan
 * (kernels + gaps + the first launch's start latency, not separable), or around each launch
 * when the ranking asks for kernels alone. Warm-up runs for >= 200 ms and until two SM
 * clock readings (kiln_clock_probe: clock64 against %globaltimer) agree within 2%; the
 * clock after warm-up and at the end is reported. Environment: KILN_NO_CUPTI=1 = CUDA
 * events only, KILN_LIBCUPTI = the libcupti to load. */
#include <dlfcn.h>
#include <glob.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cupti.h>

#include "profile/cuda_int.h"

/* ---- CUPTI (process-wide, as CUPTI's buffers are) ---- */

typedef struct krec {
	uint32_t corr;
	uint64_t start, end;      /* ns */
} krec;

typedef struct xrec {
	uint32_t corr;
	uint64_t ext;             /* rep << 16 | launch */
} xrec;

static struct {
	bool tried, ok;
	char path[512], why[320];
	CUptiResult (CUPTIAPI *Enable)(CUpti_ActivityKind);
	CUptiResult (CUPTIAPI *Disable)(CUpti_ActivityKind);
	CUptiResult (CUPTIAPI *Register)(CUpti_BuffersCallbackRequestFunc, CUpti_BuffersCallbackCompleteFunc);
	CUptiResult (CUPTIAPI *FlushAll)(uint32_t);
	CUptiResult (CUPTIAPI *Next)(uint8_t *, size_t, CUpti_Activity **);
	CUptiResult (CUPTIAPI *Dropped)(CUcontext, uint32_t, size_t *);
	CUptiResult (CUPTIAPI *Push)(CUpti_ExternalCorrelationKind, uint64_t);
	CUptiResult (CUPTIAPI *Pop)(CUpti_ExternalCorrelationKind, uint64_t *);
	krec *k;
	size_t nk, capk;
	xrec *x;
	size_t nx, capx;
	bool overflow;            /* out of memory for records: the batch is invalid */
} cupti;

#define CUPTI_BUF (1u << 20)
#define BATCH 10
#define MIN_REPS 10
#define MAX_REPS 5000
#define WARMUP_MIN_S 0.2
#define WARMUP_PROBE_EVERY_S 0.05
#define CLOCK_SETTLED 0.02

static void CUPTIAPI cupti_requested(uint8_t **buffer, size_t *size, size_t *max_records)
{
	*buffer = aligned_alloc(8, CUPTI_BUF);
	*size = *buffer ? CUPTI_BUF : 0;
	*max_records = 0;
}

static bool grow(void **p, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return true;
	size_t nc = *cap ? 2 * *cap : 4096;
	void *q = realloc(*p, nc * elem);
	if (!q)
		return false;
	*p = q;
	*cap = nc;
	return true;
}

/* Only the leading fields of the kernel record are read (start, end, correlationId):
 * their offsets are the same in every CUpti_ActivityKernelN a libcupti may deliver. */
static void CUPTIAPI cupti_completed(CUcontext ctx, uint32_t stream, uint8_t *buffer, size_t size, size_t valid)
{
	CUpti_Activity *rec = NULL;
	(void)ctx;
	(void)stream;
	(void)size;
	while (buffer && cupti.Next(buffer, valid, &rec) == CUPTI_SUCCESS) {
		if (rec->kind == CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || rec->kind == CUPTI_ACTIVITY_KIND_KERNEL) {
			const CUpti_ActivityKernel10 *k = (const CUpti_ActivityKernel10 *)rec;
			if (!grow((void **)&cupti.k, &cupti.capk, cupti.nk, sizeof(krec))) {
				cupti.overflow = true;
				continue;
			}
			cupti.k[cupti.nk++] = (krec){k->correlationId, k->start, k->end};
		} else if (rec->kind == CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) {
			const CUpti_ActivityExternalCorrelation *x = (const CUpti_ActivityExternalCorrelation *)rec;
			if (x->externalKind != CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0)
				continue;
			if (!grow((void **)&cupti.x, &cupti.capx, cupti.nx, sizeof(xrec))) {
				cupti.overflow = true;
				continue;
			}
			cupti.x[cupti.nx++] = (xrec){x->correlationId, x->externalId};
		}
	}
	free(buffer);
}

static void *try_open(const char *path, char *out, size_t n)
{
	void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (h && !dlsym(h, "cuptiActivityRegisterCallbacks")) {
		dlclose(h);
		h = NULL;
	}
	if (h && out)
		snprintf(out, n, "%s", path);
	return h;
}

/* The first match of pattern (a glob) that opens. */
static void *try_glob(const char *pattern, char *out, size_t n)
{
	glob_t g;
	void *h = NULL;
	if (glob(pattern, 0, NULL, &g) != 0)
		return NULL;
	for (size_t i = g.gl_pathc; !h && i > 0; i--) /* highest version first */
		h = try_open(g.gl_pathv[i - 1], out, n);
	globfree(&g);
	return h;
}

/* Where NVIDIA installs libcupti: the loader's path, the toolkit (and $CUDA_HOME), pip. */
static void *open_cupti(char *path, size_t n, char *why, size_t nwhy)
{
	const char *env = getenv("KILN_LIBCUPTI");
	if (env && *env) {
		void *h = try_open(env, path, n);
		if (!h)
			snprintf(why, nwhy, "KILN_LIBCUPTI=%.250s does not load as libcupti; CUDA events", env);
		return h;
	}
	static const char *const sonames[] = {"libcupti.so.13", "libcupti.so.12", "libcupti.so"};
	for (size_t i = 0; i < KILN_ARRAY_LEN(sonames); i++) {
		void *h = try_open(sonames[i], path, n);
		if (h) {
			Dl_info info; /* the file the loader picked */
			void *sym = dlsym(h, "cuptiActivityRegisterCallbacks");
			if (sym && dladdr(sym, &info) && info.dli_fname)
				snprintf(path, n, "%s", info.dli_fname);
			return h;
		}
	}
	const char *roots[] = {KILN_CUDA_ROOT, getenv("CUDA_HOME"), getenv("CUDA_PATH")};
	static const char *const subs[] = {"extras/CUPTI/lib64", "lib64", "lib", "targets/x86_64-linux/lib",
					   "targets/sbsa-linux/lib"};
	char pat[600];
	for (size_t r = 0; r < KILN_ARRAY_LEN(roots); r++)
		for (size_t s = 0; roots[r] && *roots[r] && s < KILN_ARRAY_LEN(subs); s++) {
			snprintf(pat, sizeof(pat), "%s/%s/libcupti.so*", roots[r], subs[s]);
			void *h = try_glob(pat, path, n);
			if (h)
				return h;
		}
	/* pip wheels: nvidia-cuda-cupti-cu12 (nvidia/cuda_cupti/lib), the CUDA 13 ones (nvidia/cu13/lib) */
	const char *venv = getenv("VIRTUAL_ENV"), *home = getenv("HOME");
	const char *bases[] = {venv, home ? home : NULL, "/usr/local", "/usr"};
	static const char *const mid[] = {"lib/python3*/site-packages", ".local/lib/python3*/site-packages",
					  "lib/python3*/dist-packages", "lib/python3/dist-packages"};
	static const char *const wheels[] = {"nvidia/cu13/lib", "nvidia/cuda_cupti/lib"};
	for (size_t b = 0; b < KILN_ARRAY_LEN(bases); b++)
		for (size_t m = 0; bases[b] && m < KILN_ARRAY_LEN(mid); m++)
			for (size_t w = 0; w < KILN_ARRAY_LEN(wheels); w++) {
				snprintf(pat, sizeof(pat), "%s/%s/%s/libcupti.so*", bases[b], mid[m], wheels[w]);
				void *h = try_glob(pat, path, n);
				if (h)
					return h;
			}
	snprintf(why, nwhy, "no libcupti found (libcupti.so.13/.12, %s/extras/CUPTI/lib64, pip nvidia/cu13/lib; "
		 "set KILN_LIBCUPTI); CUDA events", KILN_CUDA_ROOT);
	return NULL;
}

static bool cupti_off(char *why, size_t n)
{
	const char *off = getenv("KILN_NO_CUPTI");
	if (off && *off == '1') {
		snprintf(why, n, "KILN_NO_CUPTI=1; CUDA events");
		return true;
	}
	return false;
}

bool kiln_device_cupti_find(char *path, size_t npath, char *why, size_t nwhy)
{
	char p[512] = "", w[320] = "";
	bool ok = !cupti_off(w, sizeof(w)) && open_cupti(p, sizeof(p), w, sizeof(w));
	if (ok)
		snprintf(w, sizeof(w), "CUPTI kernel records from %.250s", p);
	if (path && npath)
		snprintf(path, npath, "%s", p);
	if (why && nwhy)
		snprintf(why, nwhy, "%s", w);
	return ok;
}

/* Loads CUPTI once; false with the reason in cupti.why (events are used then). */
static bool cupti_load(void)
{
	if (cupti_off(cupti.why, sizeof(cupti.why)))
		return false;
	if (cupti.tried)
		return cupti.ok;
	cupti.tried = true;
	void *h = open_cupti(cupti.path, sizeof(cupti.path), cupti.why, sizeof(cupti.why));
	if (!h)
		return false;
	*(void **)&cupti.Enable = dlsym(h, "cuptiActivityEnable");
	*(void **)&cupti.Disable = dlsym(h, "cuptiActivityDisable");
	*(void **)&cupti.Register = dlsym(h, "cuptiActivityRegisterCallbacks");
	*(void **)&cupti.FlushAll = dlsym(h, "cuptiActivityFlushAll");
	*(void **)&cupti.Next = dlsym(h, "cuptiActivityGetNextRecord");
	*(void **)&cupti.Dropped = dlsym(h, "cuptiActivityGetNumDroppedRecords");
	*(void **)&cupti.Push = dlsym(h, "cuptiActivityPushExternalCorrelationId");
	*(void **)&cupti.Pop = dlsym(h, "cuptiActivityPopExternalCorrelationId");
	if (!cupti.Enable || !cupti.Disable || !cupti.Register || !cupti.FlushAll || !cupti.Next || !cupti.Dropped ||
	    !cupti.Push || !cupti.Pop) {
		snprintf(cupti.why, sizeof(cupti.why), "%.250s lacks the activity API kiln needs; CUDA events", cupti.path);
		return false;
	}
	if (cupti.Register(cupti_requested, cupti_completed) != CUPTI_SUCCESS) {
		snprintf(cupti.why, sizeof(cupti.why), "%.250s: cuptiActivityRegisterCallbacks failed; CUDA events", cupti.path);
		return false;
	}
	cupti.ok = true;
	return true;
}

static void cupti_clear(void)
{
	cupti.nk = cupti.nx = 0;
	cupti.overflow = false;
}

static size_t cupti_dropped(const cuda_dev *d)
{
	size_t a = 0, b = 0;
	if (cupti.Dropped(d->ctx, 0, &a) != CUPTI_SUCCESS)
		a = 0;
	if (cupti.Dropped(NULL, 0, &b) != CUPTI_SUCCESS)
		b = 0;
	return a + b;
}

static bool cupti_start(cuda_dev *d, char *why, size_t n)
{
	if (!cupti_load()) {
		snprintf(why, n, "%s", cupti.why);
		return false;
	}
	if (cupti.Enable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL) != CUPTI_SUCCESS ||
	    cupti.Enable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION) != CUPTI_SUCCESS) {
		cupti.Disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
		snprintf(why, n, "%.200s: kernel or external-correlation records cannot be enabled; CUDA events", cupti.path);
		return false;
	}
	cupti.FlushAll(1);
	cupti_dropped(d); /* resets the counts */
	cupti_clear();
	snprintf(why, n, "CUPTI kernel records from %.250s, matched by correlation id", cupti.path);
	return true;
}

static void cupti_stop(void)
{
	cupti.Disable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL);
	cupti.Disable(CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION);
	cupti.FlushAll(1);
	cupti_clear();
}

static int cmp_x(const void *a, const void *b)
{
	uint32_t x = ((const xrec *)a)->corr, y = ((const xrec *)b)->corr;
	return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return (x > y) - (x < y);
}

/* One rep's records sorted by start (one stream: launch order): the kernels' durations
 * and the gaps before each but the first. false when a record is zero, inverted or starts
 * before its predecessor ended. */
static bool rep_times(uint64_t (*se)[2], size_t kpr, double *kern, double *gap)
{
	uint64_t k = 0, g = 0;
	qsort(se, kpr, sizeof(se[0]), cmp_u64);
	for (size_t i = 0; i < kpr; i++) {
		if (se[i][0] == 0 || se[i][1] <= se[i][0] || (i > 0 && se[i][0] < se[i - 1][1]))
			return false;
		k += se[i][1] - se[i][0];
		if (i > 0)
			g += se[i][0] - se[i - 1][1];
	}
	*kern = (double)k / 1e3;
	*gap = (double)g / 1e3;
	return true;
}

/* The kernel time and the gaps of reps first..first+n-1 (n <= BATCH) from the records, by
 * correlation id: valid[i] only when the rep has exactly kpr good records. */
static void cupti_batch(const cuda_dev *d, size_t first, size_t n, size_t kpr, double *kern, double *gap,
			bool *valid, size_t *dropped)
{
	uint64_t se[BATCH][KILN_CUDA_MAX_KPR][2];
	size_t cnt[BATCH] = {0};
	cupti.FlushAll(1);
	*dropped += cupti_dropped(d);
	if (cupti.nx)
		qsort(cupti.x, cupti.nx, sizeof(xrec), cmp_x);
	for (size_t i = 0; i < cupti.nk; i++) {
		xrec key = {cupti.k[i].corr, 0};
		const xrec *x = cupti.nx ? bsearch(&key, cupti.x, cupti.nx, sizeof(xrec), cmp_x) : NULL;
		if (!x || x->ext >> 16 < first || x->ext >> 16 >= first + n)
			continue; /* kiln's own kernels, or a rep outside this batch */
		size_t r = (size_t)(x->ext >> 16) - first;
		if (cnt[r] < kpr) {
			se[r][cnt[r]][0] = cupti.k[i].start;
			se[r][cnt[r]][1] = cupti.k[i].end;
		}
		cnt[r]++;
	}
	for (size_t i = 0; i < n; i++)
		valid[i] = !cupti.overflow && cnt[i] == kpr && rep_times(se[i], kpr, &kern[i], &gap[i]);
	cupti_clear();
}

/* ---- kiln's own kernels: the L2 flush read and the SM clock probe ---- */

static const char probe_ptx[] =
	".version 7.0\n.target sm_75\n.address_size 64\n"
	".visible .entry kiln_clock_probe(.param .u64 out, .param .u64 spins)\n{\n"
	"\t.reg .pred %p<2>;\n\t.reg .b64 %rd<12>;\n"
	"\tld.param.u64 %rd1, [out];\n\tld.param.u64 %rd2, [spins];\n\tcvta.to.global.u64 %rd1, %rd1;\n"
	"\tmov.u64 %rd3, %globaltimer;\n\tmov.u64 %rd4, %clock64;\n\tmov.u64 %rd5, 0;\n"
	"$L_spin:\n\tadd.u64 %rd5, %rd5, 1;\n\tsetp.lt.u64 %p1, %rd5, %rd2;\n\t@%p1 bra $L_spin;\n"
	"\tmov.u64 %rd6, %clock64;\n\tmov.u64 %rd7, %globaltimer;\n\tsub.u64 %rd8, %rd6, %rd4;\n"
	"\tsub.u64 %rd9, %rd7, %rd3;\n\tst.global.u64 [%rd1], %rd8;\n\tst.global.u64 [%rd1+8], %rd9;\n\tret;\n}\n"
	".visible .entry kiln_l2_read(.param .u64 buf, .param .u64 n, .param .u64 out)\n{\n"
	"\t.reg .pred %p<3>;\n\t.reg .b32 %r<8>;\n\t.reg .b64 %rd<12>;\n"
	"\tld.param.u64 %rd1, [buf];\n\tld.param.u64 %rd2, [n];\n\tld.param.u64 %rd3, [out];\n"
	"\tcvta.to.global.u64 %rd1, %rd1;\n\tcvta.to.global.u64 %rd3, %rd3;\n"
	"\tmov.u32 %r1, %ctaid.x;\n\tmov.u32 %r2, %ntid.x;\n\tmov.u32 %r3, %tid.x;\n\tmov.u32 %r4, %nctaid.x;\n"
	"\tmul.wide.u32 %rd4, %r1, %r2;\n\tcvt.u64.u32 %rd5, %r3;\n\tadd.u64 %rd4, %rd4, %rd5;\n"
	"\tmul.wide.u32 %rd6, %r4, %r2;\n\tmov.u32 %r5, 0;\n"
	"$L_read:\n\tsetp.ge.u64 %p1, %rd4, %rd2;\n\t@%p1 bra $L_done;\n\tshl.b64 %rd7, %rd4, 2;\n"
	"\tadd.u64 %rd7, %rd1, %rd7;\n\tld.global.cg.u32 %r6, [%rd7];\n\txor.b32 %r5, %r5, %r6;\n"
	"\tadd.u64 %rd4, %rd4, %rd6;\n\tbra $L_read;\n"
	"$L_done:\n\tsetp.ne.u32 %p2, %r5, 0x9e3779b9;\n\t@%p2 bra $L_end;\n\tst.global.u32 [%rd3], %r5;\n"
	"$L_end:\n\tret;\n}\n";

#define CLOCK_SPINS 200000ull

/* Loads the probe module once per device; without it (no JIT) the flush only writes and
 * the clock stays unknown. */
static void probe_load(cuda_dev *d)
{
	if (d->probe)
		return;
	if (d->api.ModuleLoadData(&d->probe, probe_ptx) != CUDA_SUCCESS) {
		d->probe = NULL;
		return;
	}
	if (d->api.ModuleGetFunction(&d->l2_read, d->probe, "kiln_l2_read") != CUDA_SUCCESS ||
	    d->api.ModuleGetFunction(&d->clock_probe, d->probe, "kiln_clock_probe") != CUDA_SUCCESS)
		d->l2_read = d->clock_probe = NULL;
}

void kiln_cuda_probe_free(cuda_dev *d)
{
	if (d->probe)
		d->api.ModuleUnload(d->probe);
	d->probe = NULL;
}

/* The SM clock in MHz: clock64 cycles over %globaltimer ns of one spinning thread. */
static kiln_err clock_mhz(cuda_dev *d, double *mhz)
{
	uint64_t v[2] = {0, 0}, spins = CLOCK_SPINS;
	void *args[] = {&d->flush_out, &spins};
	*mhz = 0;
	if (!d->clock_probe)
		return 0;
	CUresult r = d->api.LaunchKernel(d->clock_probe, 1, 1, 1, 1, 1, 1, 0, NULL, args, NULL);
	if (r == CUDA_SUCCESS)
		r = d->api.CtxSynchronize();
	if (r == CUDA_SUCCESS)
		r = d->api.MemcpyDtoH(v, d->flush_out, sizeof(v));
	if (r != CUDA_SUCCESS)
		return kiln_cuda_err(d, r, "the SM clock probe");
	*mhz = v[1] ? (double)v[0] * 1e3 / (double)v[1] : 0;
	return 0;
}

/* Write 2x L2, then read it all back: the L2 ends full of clean lines of this buffer, so
 * the timed kernel neither hits its own data nor pays for write-backs of the flush. */
static kiln_err flush_l2(cuda_dev *d)
{
	CUresult r = d->api.MemsetD32Async(d->flush, (unsigned)d->rep, d->flush_words, NULL);
	if (r == CUDA_SUCCESS && d->l2_read) {
		unsigned long long words = d->flush_words;
		void *args[] = {&d->flush, &words, &d->flush_out};
		r = d->api.LaunchKernel(d->l2_read, 1024, 1, 1, 256, 1, 1, 0, NULL, args, NULL);
	}
	return r == CUDA_SUCCESS ? 0 : kiln_cuda_err(d, r, "L2 flush");
}

/* ---- the timed launch ---- */

static bool cupti_push(const cuda_dev *d)
{
	return d->cupti_on &&
	       cupti.Push(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, (uint64_t)d->rep << 16 | d->rep_launch) == CUPTI_SUCCESS;
}

static void cupti_pop(bool pushed)
{
	if (pushed)
		cupti.Pop(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, NULL);
}

/* Warm-up (and events ranking kernels): the launch between two events, synchronized, so
 * a fault shows here, at its launch, not at some later call. */
static CUresult launch_synced(cuda_dev *d, CUfunction f, const kiln_dims *dm, const void *const *args)
{
	float ms = 0;
	CUresult r = d->api.EventRecord(d->ev[0], NULL);
	if (r == CUDA_SUCCESS) {
		bool pushed = cupti_push(d);
		r = d->api.LaunchKernel(f, dm->grid[0], dm->grid[1], dm->grid[2], dm->block[0], dm->block[1], dm->block[2],
					dm->shared_bytes, NULL, (void **)args, NULL);
		cupti_pop(pushed);
	}
	if (r == CUDA_SUCCESS && (r = d->api.EventRecord(d->ev[1], NULL)) == CUDA_SUCCESS)
		r = d->api.EventSynchronize(d->ev[1]);
	if (r == CUDA_SUCCESS)
		r = d->api.EventElapsedTime(&ms, d->ev[0], d->ev[1]);
	if (r == CUDA_SUCCESS)
		d->rep_event_us += (double)ms * 1e3;
	return r;
}

/* A graph rep: the launch becomes a kernel node after the rep's previous one (the driver
 * copies the argument values now). */
static CUresult graph_add(cuda_dev *d, CUfunction f, const kiln_dims *dm, const void *const *args)
{
	CUDA_KERNEL_NODE_PARAMS np;
	memset(&np, 0, sizeof(np));
	np.func = f;
	np.gridDimX = dm->grid[0], np.gridDimY = dm->grid[1], np.gridDimZ = dm->grid[2];
	np.blockDimX = dm->block[0], np.blockDimY = dm->block[1], np.blockDimZ = dm->block[2];
	np.sharedMemBytes = dm->shared_bytes;
	np.kernelParams = (void **)args;
	CUresult r = d->graph ? CUDA_SUCCESS : d->api.GraphCreate(&d->graph, 0);
	CUgraphNode node = NULL;
	if (r == CUDA_SUCCESS)
		r = d->api.GraphAddKernelNode(&node, d->graph, d->graph_last ? &d->graph_last : NULL, d->graph_last ? 1 : 0, &np);
	if (r == CUDA_SUCCESS)
		d->graph_last = node;
	return r;
}

kiln_err kiln_cuda_timed_launch(cuda_dev *d, CUfunction f, const char *kernel, const kiln_dims *dm,
				const void *const *args, kiln_device_fault *fault)
{
	char what[96];
	kiln_err e;
	CUresult r = CUDA_SUCCESS;
	snprintf(what, sizeof(what), "timing rep %zu, launch %zu: kernel", d->rep, d->rep_launch);
	if (!d->rep_started) {
		if ((e = flush_l2(d)))
			return e;
		d->rep_started = true;
		if (!d->sync_each && !d->graph_on) /* the plan's events: after the flush */
			r = d->api.EventRecord(d->ev[0], NULL);
	}
	if (r == CUDA_SUCCESS && d->sync_each) {
		r = launch_synced(d, f, dm, args);
	} else if (r == CUDA_SUCCESS && d->graph_on) {
		r = graph_add(d, f, dm, args);
	} else if (r == CUDA_SUCCESS) {
		bool pushed = cupti_push(d);
		r = d->api.LaunchKernel(f, dm->grid[0], dm->grid[1], dm->grid[2], dm->block[0], dm->block[1], dm->block[2],
					dm->shared_bytes, NULL, (void **)args, NULL);
		cupti_pop(pushed);
	}
	if (r != CUDA_SUCCESS)
		return kiln_cuda_launch_fault(d, r, what, kernel, fault);
	d->rep_kernel = kernel;
	d->rep_fault = fault;
	d->rep_launch++;
	return 0;
}

static void graph_drop(cuda_dev *d)
{
	if (d->graph && !d->poisoned)
		d->api.GraphDestroy(d->graph);
	d->graph = NULL;
	d->graph_last = NULL;
}

/* The end of a measured rep: a graph rep instantiates and launches its graph between the
 * plan's events; then the plan's end event is synchronized (a fault of any of the rep's
 * launches shows here). *event_us: the events' time. */
static kiln_err rep_finish(cuda_dev *d, double *event_us)
{
	kiln_device_fault spare;
	char what[160];
	float ms = 0;
	CUresult r = CUDA_SUCCESS;
	CUgraphExec exec = NULL;
	if (d->sync_each || !d->rep_started) {
		*event_us = d->rep_event_us;
		return 0;
	}
	snprintf(what, sizeof(what), "timing rep %zu (%zu launches %s, synchronized at its end; the fault may be any "
		 "of them): last kernel", d->rep, d->rep_launch, d->graph_on ? "in one CUDA graph" : "queued back to back");
	if (d->graph_on) {
		size_t launches = d->rep_launch;
		r = d->api.GraphInstantiate(&exec, d->graph, 0);
		if (r == CUDA_SUCCESS)
			r = d->api.EventRecord(d->ev[0], NULL);
		if (r == CUDA_SUCCESS) {
			d->rep_launch = 0; /* every kernel of the graph carries the rep's id */
			bool pushed = cupti_push(d);
			r = d->api.GraphLaunch(exec, NULL);
			cupti_pop(pushed);
			d->rep_launch = launches;
		}
	}
	if (r == CUDA_SUCCESS && (r = d->api.EventRecord(d->ev[1], NULL)) == CUDA_SUCCESS)
		r = d->api.EventSynchronize(d->ev[1]);
	if (r == CUDA_SUCCESS)
		r = d->api.EventElapsedTime(&ms, d->ev[0], d->ev[1]);
	if (exec && !d->poisoned && r == CUDA_SUCCESS)
		r = d->api.GraphExecDestroy(exec);
	graph_drop(d);
	if (r != CUDA_SUCCESS)
		return kiln_cuda_launch_fault(d, r, what, d->rep_kernel ? d->rep_kernel : "?",
					      d->rep_fault ? d->rep_fault : &spare);
	*event_us = (double)ms * 1e3;
	return 0;
}

/* ---- the loop ---- */


static double rel_se_of_median(const double *v, size_t n)
{
	double mean = 0, var = 0;
	for (size_t i = 0; i < n; i++)
		mean += v[i];
	mean /= (double)n;
	for (size_t i = 0; i < n; i++)
		var += (v[i] - mean) * (v[i] - mean);
	var /= (double)(n > 1 ? n - 1 : 1);
	double *s = malloc(n * sizeof(double));
	if (!s)
		return INFINITY;
	memcpy(s, v, n * sizeof(double));
	for (size_t i = 1; i < n; i++) /* insertion sort: n is small per check */
		for (size_t j = i; j > 0 && s[j] < s[j - 1]; j--) {
			double x = s[j];
			s[j] = s[j - 1];
			s[j - 1] = x;
		}
	double med = n % 2 ? s[n / 2] : 0.5 * (s[n / 2 - 1] + s[n / 2]);
	free(s);
	/* SE(median) ~ sqrt(pi/2) * sd / sqrt(n) for near-normal samples */
	return med > 0 ? 1.2533 * sqrt(var) / sqrt((double)n) / med : INFINITY;
}

static kiln_err samples_push(kiln_time_samples *out, double v, double kern, double gap)
{
	if (out->n == out->cap) {
		size_t nc = out->cap ? 2 * out->cap : 64;
		double *p[3] = {kiln_realloc(out->us, nc * sizeof(double)), NULL, NULL};
		if (p[0])
			out->us = p[0];
		if (p[0] && (p[1] = kiln_realloc(out->kernel_us, nc * sizeof(double))))
			out->kernel_us = p[1];
		if (p[1] && (p[2] = kiln_realloc(out->gap_us, nc * sizeof(double))))
			out->gap_us = p[2];
		if (!p[2])
			return KILN_ENOMEM;
		out->cap = nc;
	}
	out->kernel_us[out->n] = kern;
	out->gap_us[out->n] = gap;
	out->us[out->n++] = v;
	return 0;
}

static kiln_err one_rep(cuda_dev *d, kiln_err (*run)(void *, size_t), void *ctx, size_t rep, double *event_us)
{
	d->rep = rep;
	d->rep_launch = 0;
	d->rep_event_us = 0;
	d->rep_started = false;
	d->rep_kernel = NULL;
	kiln_err e = run(ctx, rep);
	if (!e)
		e = rep_finish(d, event_us);
	graph_drop(d); /* a rep that failed half way */
	return e;
}

/* >= 200 ms of reps, then until two clock readings 50 ms apart agree (at most a third of
 * the time cap, and never less than the 200 ms). Launches synchronized one by one. */
static kiln_err warm_up(cuda_dev *d, kiln_err (*run)(void *, size_t), void *ctx, size_t *rep, double max_seconds,
			kiln_time_samples *out)
{
	double t0 = kiln_now_s(), last_probe = 0, prev = 0, mhz = 0, us;
	double cap = fmax(WARMUP_MIN_S, max_seconds / 3);
	kiln_err e = 0;
	d->sync_each = true;
	d->graph_on = false;
	for (;;) {
		if ((e = one_rep(d, run, ctx, (*rep)++, &us)))
			return e;
		double el = kiln_now_s() - t0;
		if (el < WARMUP_MIN_S || el - last_probe < WARMUP_PROBE_EVERY_S)
			continue;
		last_probe = el;
		if ((e = clock_mhz(d, &mhz)))
			return e;
		if (mhz <= 0 || (prev > 0 && fabs(mhz - prev) <= CLOCK_SETTLED * prev) || el >= cap)
			break;
		prev = mhz;
	}
	out->sm_mhz[0] = mhz;
	out->warmup_s = kiln_now_s() - t0;
	return 0;
}

static bool graph_api(const cuda_dev *d)
{
	return d->api.GraphCreate && d->api.GraphAddKernelNode && d->api.GraphInstantiate && d->api.GraphLaunch &&
	       d->api.GraphExecDestroy && d->api.GraphDestroy;
}

/* How the measured reps launch, once the source is known (the reasons appended to why):
 * CUPTI tells kernels from gaps with the launches back to back or in a graph; events
 * bracket the whole plan, or each launch synchronized when the ranking is kernels alone. */
static void launch_mode(cuda_dev *d, kiln_time_samples *out, bool use_cupti, bool want_graph)
{
	size_t len = strlen(out->why);
	char *w = out->why + len;
	size_t n = sizeof(out->why) - len;
	d->sync_each = !use_cupti && out->rank == KILN_RANK_KERNELS;
	d->graph_on = want_graph && !d->sync_each && graph_api(d);
	out->graph = d->graph_on;
	if (!use_cupti)
		snprintf(w, n, d->sync_each ? "; each launch between its own events (kernel times with each launch's start "
					      "latency; gaps unknown)"
					    : "; events around the whole plan (kernels + gaps + the first launch's start "
					      "latency; kernel time and gaps unknown)");
	len = strlen(out->why);
	if (want_graph && !d->graph_on)
		snprintf(out->why + len, sizeof(out->why) - len, d->sync_each ? "; not as a CUDA graph (launches synchronized "
										"one by one)"
									      : "; not as a CUDA graph: the driver lacks "
										"cuGraphCreate/AddKernelNode_v2/InstantiateWithFlags/Launch");
	else if (d->graph_on)
		snprintf(out->why + len, sizeof(out->why) - len, "; the plan as one CUDA graph");
}

/* The rep's ranked time from its kernel time and gaps (NAN: unknown; then the events). */
static double ranked(const kiln_time_samples *out, double kern, double gap, double ev)
{
	if (isnan(kern))
		return ev;
	return out->rank == KILN_RANK_KERNELS ? kern : kern + gap;
}

static kiln_err time_loop(cuda_dev *d, kiln_err (*run)(void *, size_t), void *ctx, size_t kpr, double max_seconds,
			  kiln_time_samples *out)
{
	double t0 = kiln_now_s(), ev_us[BATCH], cu_k[BATCH], cu_g[BATCH];
	bool valid[BATCH];
	size_t rep = 0;
	kiln_err e = warm_up(d, run, ctx, &rep, max_seconds, out);
	if (e)
		return e;
	bool use_cupti = cupti_start(d, out->why, sizeof(out->why)), first = true, graph_asked = out->graph;
	d->cupti_on = use_cupti;
	out->cupti = use_cupti;
	launch_mode(d, out, use_cupti, graph_asked);
	while (out->n < MAX_REPS) {
		size_t first_rep = rep;
		for (size_t b = 0; b < BATCH; b++)
			if ((e = one_rep(d, run, ctx, rep++, &ev_us[b])))
				goto done;
		if (use_cupti)
			cupti_batch(d, first_rep, BATCH, kpr, cu_k, cu_g, valid, &out->dropped);
		bool any = false;
		for (size_t b = 0; use_cupti && b < BATCH; b++)
			any = any || valid[b];
		if (use_cupti && first && !any) { /* CUPTI gives nothing usable: this measurement is events only */
			snprintf(out->why, sizeof(out->why), "CUPTI delivered no usable kernel record (%zu dropped); CUDA events",
				 out->dropped);
			cupti_stop();
			use_cupti = d->cupti_on = out->cupti = false;
			launch_mode(d, out, false, graph_asked);
			continue; /* this batch's events bracketed the CUPTI mode's launches: not kept */
		}
		first = false;
		for (size_t b = 0; b < BATCH; b++) {
			if (use_cupti && !valid[b]) {
				out->invalid++;
				continue;
			}
			double k = use_cupti ? cu_k[b] : d->sync_each ? ev_us[b] : NAN, g = use_cupti ? cu_g[b] : NAN;
			if ((e = samples_push(out, ranked(out, k, g, ev_us[b]), k, g)))
				goto done;
		}
		double el = kiln_now_s() - t0;
		if ((out->n >= MIN_REPS && rel_se_of_median(out->us, out->n) < 0.01) || el > max_seconds)
			break;
	}
done:
	if (use_cupti)
		cupti_stop();
	d->cupti_on = d->sync_each = d->graph_on = false;
	if (!e)
		e = clock_mhz(d, &out->sm_mhz[1]);
	out->seconds = kiln_now_s() - t0;
	return e;
}

kiln_err kiln_cuda_time_plan(void *impl, kiln_err (*run)(void *ctx, size_t rep), void *ctx, size_t kpr,
			     double max_seconds, kiln_time_samples *out)
{
	cuda_dev *d = impl;
	int l2 = 0;
	if (d->poisoned)
		return kiln_cuda_err(d, CUDA_SUCCESS, "timing");
	if (kpr > KILN_CUDA_MAX_KPR)
		return kiln_error_set(KILN_EUNSUPPORTED, "timing: plans of at most %d launches", KILN_CUDA_MAX_KPR);
	probe_load(d);
	d->api.DeviceGetAttribute(&l2, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, d->dev);
	size_t flush_bytes = 2 * (size_t)(l2 > 0 ? l2 : 64 << 20);
	CUresult r = d->api.MemAlloc(&d->flush, flush_bytes);
	if (r == CUDA_SUCCESS && (r = d->api.MemAlloc(&d->flush_out, 16)) != CUDA_SUCCESS)
		d->api.MemFree(d->flush);
	if (r != CUDA_SUCCESS)
		return kiln_cuda_err(d, r, "cuMemAlloc (L2 flush buffer)");
	d->flush_words = flush_bytes / 4;
	d->timing = true;
	kiln_err e = time_loop(d, run, ctx, kpr ? kpr : 1, max_seconds, out);
	d->timing = false;
	if (!d->poisoned) {
		d->api.MemFree(d->flush);
		d->api.MemFree(d->flush_out);
	}
	d->flush = d->flush_out = 0;
	return e;
}
