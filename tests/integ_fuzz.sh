#!/usr/bin/env bash
# Fuzzes the PTX emulator's parser (and a short run of what parses) with libFuzzer under
# ASan+UBSan for ${FUZZ_SECONDS:-60} seconds over tests/fuzz/corpus_ptx. Not a meson
# test: CI calls it. Configures its own clang build dir (${FUZZ_BUILD:-build-fuzz}).
# Exit 0: no crash / sanitizer report; non-zero: a finding (crash-* file kept in $FUZZ_ART).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-60}
art=${FUZZ_ART:-$build/fuzz-artifacts}
if ! command -v clang >/dev/null; then
	echo "integ_fuzz: clang not found (libFuzzer needs clang)" >&2
	exit 2
fi
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$root" -Dfuzzers=true -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null
fi
ninja -C "$build" -j2 tests/fuzz/fuzz_ptx >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root"/tests/fuzz/corpus_ptx/*.ptx "$work"/
mkdir -p "$art"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
set +e
"$build/tests/fuzz/fuzz_ptx" "$work" -max_total_time="$secs" -max_len=65536 -timeout=10 -dict="$root/tests/fuzz/ptx.dict" \
	-rss_limit_mb=2048 -artifact_prefix="$art/" -print_final_stats=1 2>"$build/fuzz.log"
rc=$?
set -e
tail -n 15 "$build/fuzz.log"
if [ $rc -ne 0 ]; then
	echo "integ_fuzz: FAILED (exit $rc); artifacts in $art, log $build/fuzz.log" >&2
	exit 1
fi
echo "integ_fuzz: clean after ${secs}s"
