"""Integration test of `kiln promote` on a fake night of search (tests/fake_history.c) or,
with KILN_REVIEW_WORKDIR, on a copy of a real run's work directory: the promoted files and
the manifest checked against history.db and the git archive (commit, tags), the header
compiled and linked with gcc against the libcuda stub, the header's launch function run
against a fake driver that records the grid and block, refusals of candidates that fail
re-verification or never passed, and a candidate that was never a new best (detached commit)."""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from integ_review_common import check, cleanup, finish, kiln, kiln_json, workdir  # noqa: E402

CUDA = os.environ.get("CUDA_PATH", "/usr/local/cuda")
STUB = os.path.join(CUDA, "lib64", "stubs")

LINK_MAIN = r"""
#include "%(name)s.h"
int main(int argc, char **argv)
{
	CUmodule mod = NULL;
	(void)argv;
	if (argc > 5) { /* never run: the stub has no driver; this proves the header links */
		if (cuInit(0) != CUDA_SUCCESS || %(name)s_load(&mod, argv[1]) != CUDA_SUCCESS)
			return 1;
		return %(name)s_launch(mod, NULL, %(args)s) == CUDA_SUCCESS ? 0 : 1;
	}
	return 0;
}
"""

# A fake driver: records what the generated launch function asks for.
FAKE_MAIN = r"""
#include <stdio.h>
#include <string.h>
#include "%(name)s.h"
static unsigned dims[6], shared;
static void **params;
static char fn_name[64];
CUresult CUDAAPI cuModuleGetFunction(CUfunction *f, CUmodule m, const char *name)
{
	(void)m;
	snprintf(fn_name, sizeof(fn_name), "%%s", name);
	*f = (CUfunction)0x1;
	return CUDA_SUCCESS;
}
CUresult CUDAAPI cuModuleLoadData(CUmodule *m, const void *image) { (void)image; *m = NULL; return CUDA_SUCCESS; }
CUresult CUDAAPI cuCtxGetDevice(CUdevice *d) { *d = 0; return CUDA_SUCCESS; }
CUresult CUDAAPI cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d) { (void)a; (void)d; *v = 132; return CUDA_SUCCESS; }
CUresult CUDAAPI cuLaunchKernel(CUfunction f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
				unsigned bz, unsigned sh, CUstream s, void **kp, void **extra)
{
	(void)f; (void)s; (void)extra;
	dims[0] = gx; dims[1] = gy; dims[2] = gz; dims[3] = bx; dims[4] = by; dims[5] = bz; shared = sh;
	params = kp;
	return CUDA_SUCCESS;
}
int main(void)
{
	long long sizes[2] = {1000, 268435456};
	for (int i = 0; i < 2; i++) {
		long long n = sizes[i];
		if (%(name)s_launch(NULL, NULL, %(args_n)s) != CUDA_SUCCESS)
			return 1;
		printf("%%s %%lld grid %%u %%u %%u block %%u %%u %%u shared %%u lr %%g n %%lld\n", fn_name, n, dims[0], dims[1],
		       dims[2], dims[3], dims[4], dims[5], shared, *(float *)params[4], *(long long *)params[10]);
	}
	return 0;
}
"""

ADAMW_ARGS = "0, 0, 0, 0, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 10, %s"


def build(tmp, out_dir, name, src, libs, run=False):
    c = os.path.join(tmp, "use_%s.c" % ("fake" if run else "link"))
    exe = c[:-2]
    with open(c, "w") as f:
        f.write(src)
    cmd = ["gcc", "-std=c11", "-Wall", "-Wextra", "-Werror", "-I", out_dir, "-I", os.path.join(CUDA, "include"), c,
           "-o", exe] + libs
    p = subprocess.run(cmd, capture_output=True, text=True)
    check(p.returncode == 0, "gcc %s: %s" % (" ".join(cmd), p.stderr[-3000:]))
    if run and p.returncode == 0:
        return subprocess.run([exe], capture_output=True, text=True).stdout
    return None


def manifest_checks(wd, out_dir, name, m):
    files = sorted(os.listdir(out_dir))
    check(files == sorted(name + e for e in (".cu", ".fatbin", ".h", ".json")), "four files: %s" % files)
    with open(os.path.join(out_dir, name + ".cu")) as f:
        cu = f.read()
    show = kiln_json(wd, "show", m["candidate"]["id"]) or {}
    check(show.get("candidate", {}).get("hash") == m["candidate"]["hash"], "manifest hash = history.db hash")
    src = show.get("candidate", {}).get("source") or "\0"
    check(cu.endswith(src), "NAME.cu ends with the candidate's source")
    for d in m["candidate"]["defines"]:  # every knob value baked in, overridable
        k, v = d.split("=", 1)
        check("#ifndef %s\n#define %s %s\n#endif\n" % (k, k, v) in cu[:len(cu) - len(src)], "NAME.cu bakes " + d)
    arch = os.path.join(wd, "archive")
    p = subprocess.run(["git", "-C", arch, "show", m["archive"]["commit"] + ":kernel.cu"], capture_output=True,
                       text=True)
    check(p.returncode == 0 and p.stdout == src, "the archive commit holds the candidate's source")
    tags = subprocess.run(["git", "-C", arch, "tag", "-l", "promoted/*", "--points-at", m["archive"]["commit"]],
                          capture_output=True, text=True).stdout.split()
    check(set(m["archive"]["tags"]) <= set(tags) and m["archive"]["tags"], "tags point at the commit: %s" % tags)
    for fname, meta in m["files"].items():
        with open(os.path.join(out_dir, fname), "rb") as f:
            data = f.read()
        import hashlib
        check(hashlib.sha256(data).hexdigest() == meta["sha256"] and len(data) == meta["bytes"], "sha256 " + fname)
    v = m["verification"]["promote"]
    check(v["pass"] is True and len(v["seeds"]) >= 3, "fresh verification recorded")
    check(set(v["seeds"]).isdisjoint({str(s) for s in (m["verification"]["recorded"]["seeds"] or [])}),
          "fresh seeds differ from the recorded ones")
    check({"bounds", "initcheck", "race", "values"} <= set(v["checks_run"]), "every emulator check ran")
    for k in ("toolkit", "date", "archs", "timing", "run"):
        check(k in m, "manifest has " + k)
    with open(os.path.join(out_dir, name + ".fatbin"), "rb") as f:
        check(f.read(4) == b"\x50\xed\x55\xba", "fatbin magic")


def fatbin_entries(path):
    """(ELF archs, PTX archs) of a fatbin: cuobjdump --list-elf/--list-ptx when there, else
    the container read directly (16-byte header, then entries: kind 1 = PTX, 2 = ELF, the
    arch at offset 28 of each entry's header)."""
    cuobjdump = shutil.which("cuobjdump") or os.path.join(CUDA, "bin", "cuobjdump")
    if os.path.exists(cuobjdump):
        def listed(flag):
            out = subprocess.run([cuobjdump, flag, path], capture_output=True, text=True).stdout
            return sorted(int(w.split(".sm_")[1].split(".")[0].rstrip("af")) for w in out.split() if ".sm_" in w)
        return listed("--list-elf"), listed("--list-ptx")
    import struct
    with open(path, "rb") as f:
        b = f.read()
    magic, _, hsize, fsize = struct.unpack_from("<IHHQ", b, 0)
    check(magic == 0xBA55ED50, "fatbin magic")
    elfs, ptx, off = [], [], hsize
    while off < hsize + fsize:
        kind, _, esize, psize = struct.unpack_from("<HHIQ", b, off)
        sm = struct.unpack_from("<I", b, off + 28)[0]
        (elfs if kind == 2 else ptx).append(sm)
        off += esize + psize
    return sorted(elfs), sorted(ptx)


def fake_checks(wd, ids, tmp):
    out = os.path.join(tmp, "kernels")
    m = kiln_json(wd, "promote", "adamw", "--to", out, "--arch", "sm_80,sm_90")
    if not m:
        return
    check(m["candidate"]["id"] == ids["winner"], "default: the fastest best")
    check(m["archive"]["branch"] == "adamw/sm_90", "a best's commit is on its branch")
    check(m["archive"]["tags"] == ["promoted/adamw/sm_80/v1", "promoted/adamw/sm_90/v1"], "one tag per arch")
    check(m["archs"] == ["sm_80", "sm_90"], "archs")
    manifest_checks(wd, out, "adamw", m)
    with open(os.path.join(out, "adamw.json")) as f:
        check(json.load(f)["archive"]["commit"] == m["archive"]["commit"], "manifest file = printed manifest")
    if shutil.which("gcc") and os.path.exists(os.path.join(STUB, "libcuda.so")):
        build(tmp, out, "adamw", LINK_MAIN % {"name": "adamw", "args": ADAMW_ARGS % "1000"}, ["-L" + STUB, "-lcuda"])
        got = build(tmp, out, "adamw", FAKE_MAIN % {"name": "adamw", "args_n": ADAMW_ARGS % "n"}, [], run=True)
        check(got is not None and "adamw_step 1000 grid 1 1 1 block 512 1 1 shared 0 lr 0.001 n 1000" in got,
              "launch dims for n=1000 (BLOCK=512, ITEMS=4): %r" % got)
        check(got is not None and "268435456 grid 131072 1 1 block 512 1 1" in got, "launch dims for n=2^28")
    else:
        print("note: gcc or the libcuda stub missing; header build not checked")

    # a record that says passed, a kernel that does not: refused, nothing written
    bad = os.path.join(tmp, "bad")
    p = kiln(wd, "promote", "adamw", ids["bogus"], "--to", bad, rc=1)
    check("fails re-verification" in p.stderr and not os.path.exists(bad), "a failing kernel is refused")
    p = kiln(wd, "promote", "adamw", ids["compile_error"], "--to", bad, rc=1)
    check("did not pass" in p.stderr and not os.path.exists(bad), "a candidate that never passed is refused")
    p = kiln(wd, "promote", "lion", ids["winner"], "--to", bad, rc=3)
    check("belongs to target adamw" in p.stderr, "wrong target refused")
    kiln(wd, "promote", "adamw", rc=2)
    kiln(wd, "promote", "adamw", "--to", bad, "--arch", "90", rc=2)

    # a passing candidate that never was a best: a detached commit, the next tag number
    out2 = os.path.join(tmp, "k2")
    m2 = kiln_json(wd, "promote", "adamw", ids["passed_not_best"], "--to", out2, "--name", "adamw_alt")
    if m2:
        check(m2["archive"]["branch"] is None and "promoted/adamw/sm_90/v2" in m2["archive"]["tags"], "detached")
        # default archs: every toolkit arch from sm_80 up, SASS for each, PTX of the newest
        check(m2["archs"][0] == "sm_80" and "sm_90" in m2["archs"] and len(m2["archs"]) >= 3, "default archs %s" % m2["archs"])
        elfs, ptx = fatbin_entries(os.path.join(out2, "adamw_alt.fatbin"))
        check(elfs == sorted(int(a[3:]) for a in m2["archs"]), "SASS for every arch: %s" % elfs)
        check(ptx == [max(elfs)], "PTX for the newest: %s" % ptx)
        ver = m2["verification"]
        check(sorted(ver["archs"] + list(ver["same_ptx_as"])) == sorted(m2["archs"]), "every arch verified or covered")
        manifest_checks(wd, out2, "adamw_alt", m2)
        tip = subprocess.run(["git", "-C", os.path.join(wd, "archive"), "rev-parse", "adamw/sm_90"],
                             capture_output=True, text=True).stdout.strip()
        check(tip == m["archive"]["commit"], "the branch tip did not move")


BIG_CU = r"""// adamw in two launches: m, v and the update u (scratch) over an sm_count grid, each
// gradient staged through 64 KiB of dynamic shared memory; then p from u, ITEMS per thread.
#ifndef BLOCK
#define BLOCK 256
#endif
#ifndef ITEMS
#define ITEMS 1
#endif
extern "C" __global__ void __launch_bounds__(BLOCK)
adamw_mv(const float *g, float *m, float *v, float *u, float lr, float beta1, float beta2, float eps, int step,
         long long n)
{
    extern __shared__ float stage[];
    const float bc1 = 1.0f - powf(beta1, (float)step);
    const float sqrt_bc2 = sqrtf(1.0f - powf(beta2, (float)step));
    const float step_size = lr / bc1;
    for (long long i = (long long)blockIdx.x * BLOCK + threadIdx.x; i < n; i += (long long)gridDim.x * BLOCK) {
        stage[threadIdx.x] = g[i];
        const float gi = stage[threadIdx.x];
        const float mi = beta1 * m[i] + (1.0f - beta1) * gi;
        const float vi = beta2 * v[i] + (1.0f - beta2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        u[i] = step_size * mi / (sqrtf(vi) / sqrt_bc2 + eps);
    }
}
extern "C" __global__ void __launch_bounds__(BLOCK)
adamw_p(float *p, const float *u, float lr, float weight_decay, long long n)
{
    const long long base = (long long)blockIdx.x * (BLOCK * ITEMS) + threadIdx.x;
    for (int k = 0; k < ITEMS; k++) {
        const long long i = base + (long long)k * BLOCK;
        if (i >= n)
            return;
        float pi = p[i];
        pi -= lr * weight_decay * pi;
        pi -= u[i];
        p[i] = pi;
    }
}
"""

BIG_LAUNCH = {
    "launches": [
        {"kernel": "adamw_mv", "grid": ["sm_count*2"], "block": ["BLOCK"], "shared_bytes": "65536",
         "args": ["g", "m", "v", "u", "lr", "beta1", "beta2", "eps", "step", "n"]},
        {"kernel": "adamw_p", "grid": ["ceil_div(n, BLOCK*ITEMS)"], "block": ["BLOCK"], "shared_bytes": "0",
         "args": ["p", "u", "lr", "weight_decay", "n"]}],
    "scratch": [{"name": "u", "dtype": "f32", "count": "n"}], "nvrtc_flags": []}

# Launches the promoted header against the strict fake driver (tests/gpu_fake_libcuda.c):
# it loads the fatbin's sm_90 ELF, refuses > 48 KiB of dynamic shared memory without the
# opt-in, and checks grid/block limits and kernel names.
BIG_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "adamw_big.h"
int main(int argc, char **argv)
{
	CUdevice dev;
	CUcontext ctx;
	CUmodule mod;
	CUdeviceptr b[4], s;
	long long n = 100000;
	static char fb[1 << 22];
	FILE *f = argc > 1 ? fopen(argv[1], "rb") : NULL;
	if (!f || fread(fb, 1, sizeof(fb), f) == 0)
		return 2;
	fclose(f);
	if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
	    cuDevicePrimaryCtxRetain(&ctx, dev) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS)
		return 3;
	if (adamw_big_load(&mod, fb) != CUDA_SUCCESS)
		return 4;
	for (int i = 0; i < 4; i++)
		if (cuMemAlloc(&b[i], (size_t)n * 4) != CUDA_SUCCESS)
			return 5;
	if (cuMemAlloc(&s, adamw_big_scratch_bytes(n)) != CUDA_SUCCESS)
		return 6;
	CUresult r = adamw_big_launch(mod, NULL, b[0], b[1], b[2], b[3], 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 10, n, s);
	printf("launch %d scratch %zu\n", (int)r, adamw_big_scratch_bytes(n));
	return r == CUDA_SUCCESS ? 0 : 7;
}
"""


def add_candidate(wd, like, source, launch, knobs):
    """A passed candidate in like's run: a copy of row like with another kernel."""
    import hashlib
    import sqlite3
    con = sqlite3.connect(os.path.join(wd, "history.db"))
    cols = [r[1] for r in con.execute("PRAGMA table_info(candidates)")]
    row = dict(zip(cols, con.execute("SELECT * FROM candidates WHERE id = ?", (like,)).fetchone()))
    row.update(id=None, iteration=900, node_id=None, parent_id=None, source=source, launch=json.dumps(launch),
               knobs=json.dumps(knobs), source_hash=hashlib.sha256(source.encode()).hexdigest(),
               hash=hashlib.sha256((source + json.dumps(launch)).encode()).hexdigest(), llm_call_id=None)
    cur = con.execute("INSERT INTO candidates (%s) VALUES (%s)" % (",".join(cols), ",".join("?" * len(cols))),
                      [row[c] for c in cols])
    con.commit()
    con.close()
    return cur.lastrowid


def big_kernel_checks(wd, ids, tmp):
    """Done-when of issue 19: > 48 KiB dynamic shared memory, scratch, two launches and an
    sm_count grid; the header compiles as C and C++ with -Wall -Wextra -Werror and launches
    against the fake driver; the fatbin holds SASS for sm_80..newest."""
    cid = add_candidate(wd, ids["passed_not_best"], BIG_CU, BIG_LAUNCH, {"BLOCK": 256, "ITEMS": 2})
    out = os.path.join(tmp, "big")
    m = kiln_json(wd, "promote", "adamw", str(cid), "--to", out, "--name", "adamw_big", "--seeds", "2")
    if not m:
        return
    with open(os.path.join(out, "adamw_big.cu")) as f:
        check("#define ITEMS 2\n" in f.read(), "the .cu bakes ITEMS=2 (the header's grid assumes it)")
    elfs, ptx = fatbin_entries(os.path.join(out, "adamw_big.fatbin"))
    check(elfs and elfs[0] == 80 and elfs == sorted(int(a[3:]) for a in m["archs"]) and ptx == [elfs[-1]],
          "SASS for sm_80..newest, PTX for the newest: %s %s" % (elfs, ptx))
    with open(os.path.join(out, "adamw_big.h")) as f:
        h = f.read()
    check("CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES" in h, "the header opts in to > 48 KiB shared memory")
    fake = os.path.join(os.environ.get("KILN_BUILD_ROOT", ""), "tests", "libcuda.so.1")
    if not shutil.which("gcc") or not shutil.which("g++") or not os.path.exists(fake):
        print("note: gcc/g++ or the fake driver missing; the big header was not built")
        return
    c = os.path.join(tmp, "use_big.c")
    with open(c, "w") as f:
        f.write(BIG_MAIN)
    for cc, std in (("gcc", "-std=c11"), ("g++", "-std=c++17")):
        exe = os.path.join(tmp, "use_big_" + cc.replace("+", "p"))
        cmd = [cc, std, "-Wall", "-Wextra", "-Werror", "-I", out, "-I", os.path.join(CUDA, "include"),
               "-x", "c" if cc == "gcc" else "c++", c, "-x", "none", "-o", exe, fake]
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
        check(p.returncode == 0, "%s: %s" % (" ".join(cmd), p.stderr[-3000:]))
        if p.returncode:
            continue
        r = subprocess.run([exe, os.path.join(out, "adamw_big.fatbin")], capture_output=True, text=True,
                           env=dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(fake)))
        check(r.returncode == 0 and "launch 0 scratch 400128" in r.stdout,
              "%s: the header launches on the fake driver: exit %d %r" % (cc, r.returncode, r.stdout + r.stderr))


def real_checks(wd, tmp):
    runs = kiln_json(wd, "runs") or []
    best = [r for r in runs if r.get("best_candidate")]
    if not best:
        print("note: no run with a best candidate; nothing to promote")
        return
    target = best[0]["target"]
    out = os.path.join(tmp, "kernels")
    m = kiln_json(wd, "promote", target, "--to", out)
    if m:
        manifest_checks(wd, out, target, m)


def main():
    wd, ids, tmp = workdir()
    own = None
    if ids is None:  # a real history: work on a copy, promote tags the archive
        own = tempfile.mkdtemp(prefix="kiln-promote-")
        shutil.copytree(wd, os.path.join(own, "wd"), ignore=shutil.ignore_patterns("cache"))
        wd, tmp = os.path.join(own, "wd"), own
    try:
        if ids:
            fake_checks(wd, ids, tmp)
            big_kernel_checks(wd, ids, tmp)
        else:
            real_checks(wd, tmp)
    finally:
        cleanup(tmp)
    finish()


main()
