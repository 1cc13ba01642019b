"""Integration: `kiln promote --python` (README "Using a promoted kernel from PyTorch").
The example target sinkgd (six launches, a scratch buffer, a scalar) is searched outside
the source tree and promoted with --python. torch is not needed: NAME.py is imported with
a fake `torch` module (a Tensor type with dtype, device, shape, contiguity and data_ptr).
Checked: the module parses and imports; the function's signature comes from target.json;
wrong dtype, device, layout, shape, a mixed device, a non-tensor and a non-integer
integer scalar are refused with one message each before anything launches; the launch
grid matches launch.json at the promoted knob values; without a driver the call fails
with one line naming libcuda; with the fake libcuda (tests/gpu_fake_libcuda.c, which
parses the fatbin and checks each kernel's parameter sizes) every launch of the plan
goes through."""
import ctypes
import importlib.util
import inspect
import json
import os
import shutil
import subprocess
import sys
import tempfile
import types

KILN = os.environ["KILN_BIN"]
SRC = os.environ["KILN_SOURCE_ROOT"]
BUILD = os.environ.get("KILN_BUILD_ROOT", "")
fails = 0


def check(ok, what, detail=""):
    global fails
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        fails += 1
        if detail:
            print(str(detail)[-4000:])


def fake_torch():
    t = types.ModuleType("torch")

    class dtype:
        def __init__(self, name):
            self.name = name

        def __repr__(self):
            return "torch." + self.name

    for n in ("float32", "float64", "float16", "bfloat16", "int32", "int64", "uint8", "uint32", "bool"):
        setattr(t, n, dtype(n))

    class device:
        def __init__(self, type_, index=None):
            self.type, self.index = type_, index

        def __eq__(self, o):
            return isinstance(o, device) and (self.type, self.index) == (o.type, o.index)

        def __repr__(self):
            return "%s:%s" % (self.type, self.index)

    class Tensor:
        _next = [0x10000]

        def __init__(self, shape, dt, dev=None, contiguous=True):
            self.shape, self.dtype = tuple(shape), dt
            self.device = dev or device("cuda", 0)
            self._contig = contiguous
            self._ptr = Tensor._next[0]
            Tensor._next[0] += 1 << 24

        def is_contiguous(self):
            return self._contig

        def data_ptr(self):
            return self._ptr

        def record_stream(self, s):
            pass

    class Stream:
        cuda_stream = 0

    t.Tensor, t.device = Tensor, device
    t.empty = lambda n, dtype=None, device=None: Tensor((n,), dtype, device)
    t.cuda = types.SimpleNamespace(current_stream=lambda dev=None: Stream())
    return t


def load_module(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def expect(exc, what, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except exc as e:
        check(True, "%s: %s" % (what, e))
        return str(e)
    except Exception as e:
        check(False, "%s: raised %s %s, expected %s" % (what, type(e).__name__, e, exc.__name__))
        return ""
    check(False, "%s: nothing raised" % what)
    return ""


def main():
    tmp = tempfile.mkdtemp(prefix="kiln-promote-py-")
    tdir = os.path.join(tmp, "targets")
    shutil.copytree(os.path.join(SRC, "examples", "targets", "sinkgd"), os.path.join(tdir, "sinkgd"))
    env = dict(os.environ, KILN_REF_CACHE=os.path.join(tmp, "refcache"), KILN_THREADS="2", KILN_BENCH_CHECK="0")
    wd, out = os.path.join(tmp, "wd"), os.path.join(tmp, "out")
    try:
        p = subprocess.run([KILN, "run", "sinkgd", "--targets-dir", tdir, "--workdir", wd, "--policy", "tune",
                            "--iterations", "2", "--seed", "4", "--json"], capture_output=True, text=True, env=env,
                           timeout=600)
        check(p.returncode == 0, "kiln run sinkgd", p.stdout + p.stderr)
        p = subprocess.run([KILN, "promote", "sinkgd", "--targets-dir", tdir, "--workdir", wd, "--to", out,
                            "--seeds", "1", "--arch", "sm_90", "--python", "--json"], capture_output=True, text=True,
                           env=env, timeout=600)
        m = json.loads(p.stdout) if p.returncode == 0 else {}
        check(p.returncode == 0 and "sinkgd.py" in m.get("files", {}), "promote --python writes sinkgd.py",
              p.stdout[-1500:] + p.stderr)
        if p.returncode != 0:
            return
        knobs = m["candidate"].get("knobs") or {}
        block = int(knobs.get("BLOCK", 256)) if isinstance(knobs, dict) else 256
        sys.modules["torch"] = torch = fake_torch()
        mod = load_module(os.path.join(out, "sinkgd.py"), "sinkgd")
        f = mod.sinkgd
        params = list(inspect.signature(f).parameters)
        check(params == ["W", "G", "lr"] and inspect.signature(f).parameters["lr"].default == 0.001,
              "sinkgd(W, G, lr=0.001): %s" % inspect.signature(f))
        F32 = torch.float32
        W, G = torch.Tensor((33, 130), F32), torch.Tensor((33, 130), F32)
        sizes = mod.check_args([W, G], [0.01])
        check(sizes == {"rows": 33, "cols": 130}, "check_args reads the sizes from the shapes: %s" % sizes)
        dims = mod.launch_dims(sizes)
        want_cols = (130 + block - 1) // block
        check(len(dims) == 6 and dims[0] == ("sinkgd_rows", (33, 1, 1), (block, 1, 1), 0) and
              dims[1] == ("sinkgd_cols", (want_cols, 1, 1), (block, 1, 1), 0) and dims[5][0] == "sinkgd_cols_update",
              "launch_dims follows launch.json at BLOCK=%d: %s" % (block, dims[:2]))
        expect(TypeError, "wrong dtype", f, torch.Tensor((33, 130), torch.float16), G)
        expect(ValueError, "on the CPU", f, torch.Tensor((33, 130), F32, torch.device("cpu")), G)
        expect(ValueError, "not contiguous", f, W, torch.Tensor((33, 130), F32, contiguous=False))
        msg = expect(ValueError, "wrong shape", f, W, torch.Tensor((33, 131), F32))
        check("[33, 130]" in msg, "the shape message says what was expected")
        expect(ValueError, "two devices", f, W, torch.Tensor((33, 130), F32, torch.device("cuda", 1)))
        expect(TypeError, "not a tensor", f, W, [[0.0] * 130] * 33)
        expect(TypeError, "a tensor as the scalar", f, W, G, lr=torch.Tensor((1,), F32))
        env_lib = os.environ.get("KILN_LIBCUDA")
        os.environ["KILN_LIBCUDA"] = os.path.join(tmp, "no-libcuda.so.1")
        msg = expect(RuntimeError, "no CUDA driver", f, W, G)
        check("libcuda" in msg and "\n" not in msg, "the message names libcuda in one line")
        fake = os.path.join(BUILD, "tests", "libcuda.so.1")
        if os.path.exists(fake):
            os.environ["KILN_LIBCUDA"] = fake
            mod._cuda = None
            lib = ctypes.CDLL(fake)
            lib.fake_cuda_stat.restype = ctypes.c_long
            before = lib.fake_cuda_stat(b"launches")
            try:
                f(W, G, 0.01)
                ok, err = True, ""
            except Exception as e:
                ok, err = False, "%s: %s" % (type(e).__name__, e)
            n = lib.fake_cuda_stat(b"launches") - before
            check(ok and n == 6, "the fake driver loads sinkgd.fatbin and takes all 6 launches (%d) %s" % (n, err))
        else:
            print("skip the fake-driver launch: %s not built" % fake)
        if env_lib is None:
            os.environ.pop("KILN_LIBCUDA", None)
        p = subprocess.run([sys.executable, "-c", "import ast,sys; ast.parse(open(sys.argv[1]).read())",
                            os.path.join(out, "sinkgd.py")], capture_output=True, text=True)
        check(p.returncode == 0, "sinkgd.py parses as Python", p.stderr)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    sys.exit(1 if fails else 0)


main()
