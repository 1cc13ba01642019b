#!/usr/bin/env bash
# The whole test suite: unit + integration tests (meson), the unit tests again under
# AddressSanitizer + UBSan, and bounded fuzz runs. Ends with one line
# "N passed, N failed, N skipped" and exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
fails=0

count() { # testlog.json -> "passed failed skipped"
	python3 - "$1" <<'PY'
import json, sys
p = f = s = 0
for line in open(sys.argv[1]):
    r = json.loads(line).get("result", "")
    if r in ("OK", "EXPECTEDFAIL"): p += 1
    elif r == "SKIP": s += 1
    else: f += 1
print(p, f, s)
PY
}

total_p=0 total_f=0 total_s=0
add() { read -r p f s <<<"$(count "$1")"; total_p=$((total_p + p)); total_f=$((total_f + f)); total_s=$((total_s + s)); }

echo "== unit + integration tests"
meson test -C build --num-processes "$jobs" --suite unit --suite integration --print-errorlogs || fails=1
add build/meson-logs/testlog.json

# One clang build serves both the sanitizer run of the unit tests and the fuzzers
# (-Dfuzzers=true only adds the libFuzzer harnesses), so CI compiles kiln twice, not three times.
echo "== unit tests under AddressSanitizer + UBSan (clang)"
werror=false
[ "${CI:-}" = true ] && werror=true
san_cc=gcc fuzz=false
if command -v clang >/dev/null; then san_cc=clang fuzz=true; fi
if [ ! -f build-asan/build.ninja ]; then
	CC=$san_cc meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
		-Dfuzzers=$fuzz -Dwerror=$werror >/dev/null
fi
ninja -C build-asan >/dev/null || fails=1
meson test -C build-asan --num-processes "$jobs" --suite unit --print-errorlogs || fails=1
add build-asan/meson-logs/testlog.json

if [ -f tests/integ_fuzz.sh ] && [ "$fuzz" = true ]; then
	echo "== fuzzers (bounded: the PTX parser ${FUZZ_SECONDS:-60} s, the others ${FUZZ_SECONDS_EACH:-20} s each)"
	if FUZZ_BUILD=$PWD/build-asan bash tests/integ_fuzz.sh; then total_p=$((total_p + 1)); else total_f=$((total_f + 1)); fails=1; fi
fi

echo "$total_p passed, $total_f failed, $total_s skipped"
[ "$fails" -eq 0 ] && [ "$total_f" -eq 0 ]
