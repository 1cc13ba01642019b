#!/usr/bin/env bash
# The main job: a real search. With an LLM configured (KILN_LLM or an API key): `kiln run
# TARGET` (default adamw) with the LLM policy. Without one: the knob tuner on every
# built-in target (or the ones named), KILN_MAIN_ITERATIONS candidates each (default 8),
# on the GPU when there is one, else the PTX emulator with the H100 cost model. Either
# way it ends with a table: target, seed time, best time, speedup, roofline, archive
# commit (scripts/results_table.py), and the git archive's history of new bests.
#   bash scripts/main-job.sh [TARGET ...] [-- extra kiln run options]
set -euo pipefail
cd "$(dirname "$0")/.."
kiln=${KILN_BIN:-build/cli/kiln}
workdir=${KILN_WORKDIR:-.kiln}
targets=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
	targets+=("$1")
	shift
done
[ "${1:-}" = "--" ] && shift
$kiln doctor || true
if [ -n "${KILN_LLM:-}${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}" ]; then
	[ ${#targets[@]} -eq 0 ] && targets=(adamw)
	budget=(--iterations 40 --max-cost 2)
else
	if [ ${#targets[@]} -eq 0 ]; then
		mapfile -t targets < <($kiln targets --json | python3 -c 'import json,sys; [print(t["name"]) for t in json.load(sys.stdin)]')
	fi
	budget=(--policy tune --iterations "${KILN_MAIN_ITERATIONS:-8}")
	# the tuner only changes knob values of the built-in seeds, which verify at every
	# verification size and the size rules; the bench-size check of each winner (1-3 min
	# of emulation per target on 2 cores) is left to KILN_BENCH_CHECK=1
	if [ -z "${KILN_BENCH_CHECK:-}" ]; then
		export KILN_BENCH_CHECK=0
		echo "main job: the tuner on ${#targets[@]} target(s); the bench-size check of each winner is skipped (KILN_BENCH_CHECK=1 runs it)"
	fi
fi
start=$SECONDS
for t in "${targets[@]}"; do
	echo
	echo "== kiln run $t ${budget[*]} $*"
	$kiln run "$t" --workdir "$workdir" "${budget[@]}" "$@"
done
echo
echo "== git archive ($workdir/archive): one commit per new best"
git -C "$workdir/archive" log --all --format='%h %s' | head -20
echo
echo "== results ($((SECONDS - start)) s for ${#targets[@]} target(s))"
python3 scripts/results_table.py "$workdir" "${targets[@]}"
