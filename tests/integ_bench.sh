#!/usr/bin/env bash
# Integration: `kiln bench` through the binary on the emulator. (1) every built-in
# target's seed verifies and gets a modeled time with a roofline fraction in (0, 1];
# (2) --json is deterministic for the same --seed; (3) --compare ranks real kernels
# (float4 < scalar < strided) with launch plans found beside the .cu files; (4) a kernel
# that fails verification is never timed (exit 1); (5) --gpu picks another spec;
# (6) usage errors (a bad --rank-time too) exit 2 and --device cuda without a GPU exits 3; (7) the cuda path on the
# fake driver (tests/gpu_fake_libcuda.c); (8) --compare on a GPU, one child per candidate,
# and --gpu-index; (9) knobs: the seed runs at its own #ifndef defaults (kiln run's seed),
# -D NAME=V overrides, a bad -D is a usage error, and only knobs the kernel or plan uses
# are printed.
set -u
: "${KILN_BIN:?KILN_BIN not set}" "${KILN_SOURCE_ROOT:?KILN_SOURCE_ROOT not set}"
fx="$KILN_SOURCE_ROOT/tests/fixtures/verify"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0

# json_get FILE EXPR: evaluates a python expression over the parsed JSON `j`
json_get() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

# (6) usage
"$KILN_BIN" bench >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL no TARGET exited $rc, want 2"; fail=1; }
"$KILN_BIN" bench lion --kernel x.cu >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL --kernel without --launch exited $rc, want 2"; fail=1; }
"$KILN_BIN" bench lion --compare >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL --compare without files exited $rc, want 2"; fail=1; }
out=$("$KILN_BIN" bench lion --rank-time fast 2>&1); rc=$?
[ $rc -eq 2 ] && echo "$out" | grep -q 'rank time "fast": expected "launches"' ||
	{ echo "FAIL --rank-time fast: exit $rc, $out"; fail=1; }
"$KILN_BIN" bench no_such_target_xyz --device emu >/dev/null 2>&1; rc=$?
[ $rc -eq 3 ] || { echo "FAIL unknown target exited $rc, want 3"; fail=1; }
if ! "$KILN_BIN" doctor 2>/dev/null | grep -q "kernels run on the GPU"; then
	out=$("$KILN_BIN" bench lion --device cuda 2>&1); rc=$?
	[ $rc -eq 3 ] && echo "$out" | grep -q "device cuda" || { echo "FAIL --device cuda without a GPU: exit $rc: $out"; fail=1; }
	out=$("$KILN_BIN" bench lion 2>&1 >/dev/null); rc=$?
	echo "$out" | grep -q "using the PTX emulator" || { echo "FAIL auto without a GPU did not say it fell back: $out"; fail=1; }
fi

# (1) every seed, modeled, at its own knob defaults. KNOWN: the emulator's racecheck
# reports a race in the block-scan seeds at BLOCK >= 128 although a bar.sync separates
# the accesses (emulator bug, reported to the lead; `kiln verify ratio_minprefix -D
# BLOCK=256`); until it is fixed these two run at BLOCK=64 here and say so.
known_emu_race="ratio_minprefix ratio_cumulative"
for t in $("$KILN_BIN" targets 2>/dev/null | awk '{print $1}'); do
	extra=()
	case " $known_emu_race " in *" $t "*) extra=(-D BLOCK=64); echo "note bench $t at BLOCK=64 (known emulator racecheck false positive)";; esac
	"$KILN_BIN" bench "$t" --device emu --json "${extra[@]}" >"$tmp/$t.json" 2>"$tmp/$t.err"; rc=$?
	if [ $rc -ne 0 ]; then echo "FAIL bench $t: exit $rc"; cat "$tmp/$t.err"; fail=1; continue; fi
	ok=$(json_get "$tmp/$t.json" 'all([c["timed"], c["timing"]["modeled"], 0 < c["timing"]["roofline"] <= 1, c["timing"]["time_us"] > 0] == [True]*4 for c in j["candidates"])')
	line=$(json_get "$tmp/$t.json" '"%.2f us modeled, roofline %.3f, bound %s" % (j["candidates"][0]["timing"]["time_us"], j["candidates"][0]["timing"]["roofline"], j["candidates"][0]["timing"]["bound"])')
	if [ "$ok" = True ]; then echo "ok   bench $t: $line"; else echo "FAIL bench $t: $line"; fail=1; fi
done
out=$("$KILN_BIN" bench lion --device emu 2>&1); rc=$?
echo "$out" | grep -q "us modeled (sum of kernel times" && echo "$out" | grep -q "roofline" && echo "$out" | grep -q "resources" ||
	{ echo "FAIL human output lacks time/roofline/resources: $out"; fail=1; }

# masked targets: the roofline is over the floor from the drawn mask; --workdir holds the cache
"$KILN_BIN" bench ratio_seq --device emu --json --workdir "$tmp/wd" >"$tmp/rs.json" 2>/dev/null
ok=$(json_get "$tmp/rs.json" 'j["candidates"][0]["timing"]["traffic_floor_bytes"] < 0.85 * j["candidates"][0]["timing"]["traffic_bytes"]')
[ "$ok" = True ] && echo "ok   masked floor below the declared traffic" || { echo "FAIL masked floor: $ok"; fail=1; }
[ -n "$(ls -A "$tmp/wd/cache" 2>/dev/null)" ] && echo "ok   bench --workdir caches in DIR/cache" ||
	{ echo "FAIL bench --workdir left no cache"; fail=1; }
"$KILN_BIN" verify lion --device emu --seeds 1 --workdir "$tmp/wd2" >/dev/null 2>&1
[ -n "$(ls -A "$tmp/wd2/cache" 2>/dev/null)" ] && echo "ok   verify --workdir caches in DIR/cache" ||
	{ echo "FAIL verify --workdir left no cache"; fail=1; }

# (2) deterministic
"$KILN_BIN" bench lion --device emu --json --seed 5 >"$tmp/a.json" 2>/dev/null
"$KILN_BIN" bench lion --device emu --json --seed 5 >"$tmp/b.json" 2>/dev/null
ta=$(json_get "$tmp/a.json" 'repr(j["candidates"][0]["timing"]["time_us"])')
tb=$(json_get "$tmp/b.json" 'repr(j["candidates"][0]["timing"]["time_us"])')
[ "$ta" = "$tb" ] && echo "ok   deterministic: $ta us" || { echo "FAIL two runs differ: $ta vs $tb"; fail=1; }

# (3) --compare on real kernels: plans beside the .cu files
args='"args": ["p", "g", "m", "lr", "beta1", "beta2", "weight_decay", "n"]'
lion='#define LION(i) { const float gi = g[i], mi = m[i]; const float c = beta1 * mi + (1.0f - beta1) * gi; const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f); p[i] = p[i] * (1.0f - lr * weight_decay) - lr * s; m[i] = beta2 * mi + (1.0f - beta2) * gi; }'
params='(float *p, const float *g, float *m, float lr, float beta1, float beta2, float weight_decay, long long n)'
cat >"$tmp/scalar.cu" <<EOF
$lion
extern "C" __global__ void k$params { long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; if (i < n) LION(i) }
EOF
echo "{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"ceil_div(n, 256)\"], \"block\": [256], $args}]}" >"$tmp/scalar.json"
cat >"$tmp/strided.cu" <<EOF
$lion
extern "C" __global__ void k$params {
  long long b = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 16;
#pragma unroll
  for (int k = 0; k < 16; k++) { long long i = b + k; if (i < n) LION(i) } }
EOF
echo "{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"ceil_div(n, 4096)\"], \"block\": [256], $args}]}" >"$tmp/strided.json"
cat >"$tmp/vec4.cu" <<EOF
$lion
extern "C" __global__ void k$params {
  long long i = ((long long)blockIdx.x * blockDim.x + threadIdx.x) * 4;
  if (i + 3 < n) {
    float4 pv = *(const float4 *)(p + i), gv = *(const float4 *)(g + i), mv = *(const float4 *)(m + i);
    float pa[4] = {pv.x, pv.y, pv.z, pv.w}, ga[4] = {gv.x, gv.y, gv.z, gv.w}, ma[4] = {mv.x, mv.y, mv.z, mv.w};
    for (int k = 0; k < 4; k++) { const float gi = ga[k], mi = ma[k];
      const float c = beta1 * mi + (1.0f - beta1) * gi;
      const float s = c > 0.0f ? 1.0f : (c < 0.0f ? -1.0f : 0.0f);
      pa[k] = pa[k] * (1.0f - lr * weight_decay) - lr * s; ma[k] = beta2 * mi + (1.0f - beta2) * gi; }
    *(float4 *)(p + i) = make_float4(pa[0], pa[1], pa[2], pa[3]);
    *(float4 *)(m + i) = make_float4(ma[0], ma[1], ma[2], ma[3]);
  } else { for (long long j = i; j < n; j++) LION(j) } }
EOF
echo "{\"launches\": [{\"kernel\": \"k\", \"grid\": [\"ceil_div(n, 1024)\"], \"block\": [256], $args}]}" >"$tmp/vec4.json"
"$KILN_BIN" bench lion --device emu --compare "$tmp/strided.cu" "$tmp/scalar.cu" "$tmp/vec4.cu" --json >"$tmp/cmp.json" 2>"$tmp/cmp.err"; rc=$?
order=$(json_get "$tmp/cmp.json" '" ".join(k.rsplit("/", 1)[-1] for k in j["ranking"])' 2>/dev/null)
if [ $rc -eq 0 ] && [ "$order" = "vec4.cu scalar.cu strided.cu" ]; then echo "ok   compare: $order"
else echo "FAIL compare: exit $rc, ranking '$order'"; cat "$tmp/cmp.err"; fail=1; fi
out=$("$KILN_BIN" bench lion --device emu --compare "$tmp/strided.cu" "$tmp/vec4.cu" 2>&1)
echo "$out" | grep -q "^  1\. .*vec4.cu" || { echo "FAIL compare text lacks the ranking: $out"; fail=1; }

# (4) a failing kernel is not timed
out=$("$KILN_BIN" bench adamw --device emu --kernel "$fx/adamw_zeros.cu" --launch "$fx/adamw_zeros.json" 2>&1); rc=$?
[ $rc -eq 1 ] && echo "$out" | grep -q "not timed" && echo "ok   failing kernel not timed" ||
	{ echo "FAIL failing kernel: exit $rc: $out"; fail=1; }
cat >"$tmp/zeros.cu" <<EOF
extern "C" __global__ void k$params { long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; if (i < n) { p[i] = 0.0f; m[i] = 0.0f; } }
EOF
cp "$tmp/scalar.json" "$tmp/zeros.json"
"$KILN_BIN" bench lion --device emu --compare "$tmp/vec4.cu" "$tmp/zeros.cu" --json >"$tmp/mixed.json" 2>/dev/null; rc=$?
n=$(json_get "$tmp/mixed.json" 'len(j["ranking"])' 2>/dev/null)
[ $rc -eq 1 ] && [ "$n" = 1 ] || { echo "FAIL compare with a failing kernel: exit $rc, ranked $n"; fail=1; }

# (5) another GPU spec
"$KILN_BIN" bench lion --device emu --gpu a100_sxm --json >"$tmp/a100.json" 2>/dev/null; rc=$?
ok=$(json_get "$tmp/a100.json" '"A100" in j["candidates"][0]["timing"]["device"] and j["candidates"][0]["timing"]["time_us"] > float('"$ta"')' 2>/dev/null)
[ $rc -eq 0 ] && [ "$ok" = True ] && echo "ok   --gpu a100_sxm" || { echo "FAIL --gpu a100_sxm: exit $rc ok=$ok"; fail=1; }
"$KILN_BIN" bench lion --device emu --gpu rtx9999 >"$tmp/bad.out" 2>&1; rc=$?
[ $rc -eq 3 ] && grep -q "unknown GPU spec" "$tmp/bad.out" || { echo "FAIL unknown --gpu: exit $rc"; cat "$tmp/bad.out"; fail=1; }

# (7) the cuda path through the CLI on the fake driver (tests/gpu_fake_libcuda.c): it runs
# no kernel, so verification fails and nothing is timed
fake="${KILN_BUILD_ROOT:-}/tests/libcuda.so.1"
if [ -f "$fake" ]; then
	out=$(KILN_LIBCUDA="$fake" KILN_NO_CUPTI=1 "$KILN_BIN" bench ratio_token --device cuda 2>&1); rc=$?
	[ $rc -eq 1 ] && echo "$out" | grep -q "not timed" && echo "ok   cuda path (fake driver): not timed" ||
		{ echo "FAIL cuda path on the fake driver: exit $rc: $out"; fail=1; }
	# (8) --compare on a GPU: each candidate in its own process, so a kernel that faults
	# (sticky: the context is gone) costs its row, not the candidates after it
	seed="$KILN_SOURCE_ROOT/targets/ratio_token/seed.cu"
	sed 's/ratio_token(/ratio_bad(/' "$seed" >"$tmp/bad.cu"
	sed 's/"ratio_token"/"ratio_bad"/' "$KILN_SOURCE_ROOT/targets/ratio_token/launch.json" >"$tmp/bad.json"
	cp "$seed" "$tmp/good.cu"
	KILN_LIBCUDA="$fake" KILN_NO_CUPTI=1 FAKE_CUDA_RATIO_TOKEN=1 FAKE_CUDA_FAULT_KERNEL=ratio_bad \
		"$KILN_BIN" bench ratio_token --device cuda --compare "$tmp/bad.cu" "$tmp/good.cu" --json >"$tmp/cc.json" 2>"$tmp/cc.err"; rc=$?
	ok=$(json_get "$tmp/cc.json" 'j["ranking"] == ["'"$tmp/good.cu"'"] and j["candidates"][0]["verdict"]["check"] == "bounds" and "Fake H100" in j["device"]' 2>&1)
	[ $rc -eq 1 ] && [ "$ok" = True ] && echo "ok   --compare on a GPU: one child per candidate" ||
		{ echo "FAIL --compare on the fake GPU: exit $rc ok=$ok"; cat "$tmp/cc.err"; fail=1; }
	# kiln doctor names the timing source and why
	out=$(KILN_LIBCUDA="$fake" KILN_LIBCUPTI="$fake" "$KILN_BIN" doctor 2>&1)
	echo "$out" | grep -q "timing:      measured, CUPTI kernel records from $fake" && echo "$out" | grep -q "gpu:         Fake H100" &&
		echo "ok   doctor: CUPTI from \$KILN_LIBCUPTI" || { echo "FAIL doctor with CUPTI: $out"; fail=1; }
	out=$(KILN_LIBCUDA="$fake" KILN_LIBCUPTI=/nonexistent/libcupti.so "$KILN_BIN" doctor 2>&1)
	echo "$out" | grep -q "timing:      measured, KILN_LIBCUPTI=/nonexistent/libcupti.so does not load as libcupti; CUDA events" &&
		echo "ok   doctor: CUDA events and why" || { echo "FAIL doctor without CUPTI: $out"; fail=1; }
	# --gpu-index: the ordinal among the visible GPUs, name recorded
	out=$(KILN_LIBCUDA="$fake" KILN_NO_CUPTI=1 FAKE_CUDA_DEVICES=2 FAKE_CUDA_RATIO_TOKEN=1 "$KILN_BIN" bench ratio_token \
		--device cuda --gpu-index 1 2>&1); rc=$?
	[ $rc -eq 0 ] && echo "$out" | grep -q "Fake H100 #1" && echo "ok   --gpu-index 1" ||
		{ echo "FAIL --gpu-index 1: exit $rc: $out"; fail=1; }
fi

# (9) knobs: the seed's own defaults (adamw: BLOCK 256, ITEMS 1 — not the first values
# 64 and 1), -D overrides, bad -D refused, only used knobs printed
out=$("$KILN_BIN" bench adamw --device emu 2>/dev/null)
echo "$out" | grep -q "^  knobs     BLOCK=256 ITEMS=1$" && echo "ok   bench adamw at the seed's knob values" ||
	{ echo "FAIL bench adamw knobs: $out"; fail=1; }
out=$("$KILN_BIN" bench adamw --device emu -D BLOCK=128 -DITEMS=2 --json 2>/dev/null)
[ "$(echo "$out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["candidates"][0]["knobs"])')" = "BLOCK=128 ITEMS=2" ] &&
	echo "ok   bench -D overrides the knobs" || { echo "FAIL bench -D: $out"; fail=1; }
for bad in "-D BLOCK=x" "-D 9X=1" "-D"; do
	# shellcheck disable=SC2086
	"$KILN_BIN" bench adamw --device emu $bad >/dev/null 2>&1; rc=$?
	[ $rc -ne 0 ] && [ $rc -ne 1 ] || { echo "FAIL bench $bad exited $rc"; fail=1; }
done
python3 - "$KILN_SOURCE_ROOT/targets/adamw" "$tmp" <<'PY'
import re, sys
src = open(sys.argv[1] + "/seed.cu").read()
src = re.sub(r"#ifndef ITEMS\n#define ITEMS \d+\n#endif\n", "", src).replace("ITEMS", "1")
open(sys.argv[2] + "/noitems.cu", "w").write(src)
open(sys.argv[2] + "/noitems.json", "w").write(open(sys.argv[1] + "/launch.json").read().replace("BLOCK*ITEMS", "BLOCK"))
PY
out=$("$KILN_BIN" bench adamw --device emu --kernel "$tmp/noitems.cu" --launch "$tmp/noitems.json" 2>&1)
echo "$out" | grep -q "^  knobs     BLOCK=256$" && echo "ok   bench prints only the knobs the kernel uses" ||
	{ echo "FAIL bench unused knob printed: $out"; fail=1; }

exit $fail
