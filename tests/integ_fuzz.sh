#!/usr/bin/env bash
# Runs every libFuzzer harness of tests/fuzz under ASan+UBSan — the PTX parser for
# ${FUZZ_SECONDS:-60} seconds, the others for ${FUZZ_SECONDS_EACH:-20} seconds each — starting from its corpus tests/fuzz/corpus_<name>/ (copied: the repository
# corpus only grows by hand): ptx (the emulator's parser + a short run), editscript (the
# world model's edit scripts), target (target.json), launch (launch.json), expr (the
# expression evaluator), reply (the LLM reply parser), edit (edit replies: search/replace
# blocks and diffs applied to a kernel), sse (the LLM client's event-stream
# parser and stream events), source (the gate before NVRTC: compile/source.c), json (the one
# strict JSON rule: util/json_check.c). FUZZ_ONLY="ptx expr" picks some.
# Not a meson test: CI calls it. Configures its own clang build dir (${FUZZ_BUILD:-build-fuzz}).
# Exit 0: no crash / sanitizer report; non-zero: a finding (crash-* file kept in $FUZZ_ART).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
secs=${FUZZ_SECONDS:-60}
art=${FUZZ_ART:-$build/fuzz-artifacts}
only=${FUZZ_ONLY:-ptx editscript target launch expr reply edit sse source json}
if ! command -v clang >/dev/null; then
	echo "integ_fuzz: clang not found (libFuzzer needs clang)" >&2
	exit 2
fi
if [ ! -f "$build/build.ninja" ]; then
	CC=clang meson setup "$build" "$root" -Dfuzzers=true -Db_sanitize=address,undefined \
		-Db_lundef=false >/dev/null
fi
targets=""
for h in $only; do targets="$targets tests/fuzz/fuzz_$h"; done
# shellcheck disable=SC2086
ninja -C "$build" -j2 $targets >/dev/null
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$art"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
failed=""
for h in $only; do
	mkdir -p "$work/$h"
	if [ -d "$root/tests/fuzz/corpus_$h" ]; then
		cp "$root/tests/fuzz/corpus_$h"/* "$work/$h"/
	fi
	extra=()
	case $h in
	ptx) extra=(-max_len=65536 -dict="$root/tests/fuzz/ptx.dict") ;;
	target | launch) extra=(-max_len=16384) ;;
	reply | source) extra=(-max_len=65536) ;;
	esac
	t=$secs
	[ "$h" = ptx ] || t=${FUZZ_SECONDS_EACH:-20}
	set +e
	"$build/tests/fuzz/fuzz_$h" "$work/$h" -max_total_time="$t" -timeout=10 "${extra[@]}" \
		-rss_limit_mb=2048 -artifact_prefix="$art/${h}-" -print_final_stats=1 2>"$build/fuzz_$h.log"
	rc=$?
	set -e
	echo "== fuzz_$h: $(grep -E '^stat::number_of_executed_units' "$build/fuzz_$h.log" | awk '{print $2}') runs, exit $rc"
	if [ $rc -ne 0 ]; then
		tail -n 30 "$build/fuzz_$h.log"
		failed="$failed $h"
	fi
done
if [ -n "$failed" ]; then
	echo "integ_fuzz: FAILED:$failed; artifacts in $art, logs $build/fuzz_<name>.log" >&2
	exit 1
fi
echo "integ_fuzz: clean ($only; ptx ${secs}s, the others ${FUZZ_SECONDS_EACH:-20}s each)"
