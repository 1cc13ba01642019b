#!/usr/bin/env bash
# The main job on a fresh machine: list the targets, then compile and verify every seed.
# (Replaced by a real `kiln run` as soon as the search lands.)
set -euo pipefail
cd "$(dirname "$0")/.."
kiln=build/cli/kiln
$kiln doctor
$kiln targets
