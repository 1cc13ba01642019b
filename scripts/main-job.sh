#!/usr/bin/env bash
# The main job: a real search. `kiln run TARGET` with the LLM policy when an LLM is
# configured (KILN_LLM or an API key), else the knob tuner; on the GPU when there is one,
# else the PTX emulator with the H100 cost model. Then the result: the run summary, the
# candidates in order and the git archive's history of new bests.
#   bash scripts/main-job.sh [TARGET] [extra kiln run options]
set -euo pipefail
cd "$(dirname "$0")/.."
kiln=${KILN_BIN:-build/cli/kiln}
target=${1:-adamw}
shift || true
workdir=${KILN_WORKDIR:-.kiln}
$kiln doctor || true
budget=(--iterations 24)
[ -n "${KILN_LLM:-}${OPENAI_API_KEY:-}${ANTHROPIC_API_KEY:-}" ] && budget=(--iterations 40 --max-cost 2)
$kiln run "$target" --workdir "$workdir" "${budget[@]}" "$@"
echo
echo "== git archive ($workdir/archive): one commit per new best"
git -C "$workdir/archive" log --all --format='%h %s' | head -20
if $kiln log --help >/dev/null 2>&1; then
	echo
	$kiln log "$target" --workdir "$workdir" | tail -30
fi
