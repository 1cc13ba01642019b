#!/usr/bin/env bash
# kiln set-up: installs the missing Debian packages, configures and builds, then either
# runs a real search (`run`, the default) or the whole test suite (`test`).
#   bash scripts/setup.sh run  [TARGET ...] # build + a real search (no GPU/key: the tuner on every
#                                         # built-in target on the emulator, then a result table)
#   bash scripts/setup.sh test            # build + unit, integration, sanitizer and fuzz tests
# The CUDA toolkit must already be installed (CUDA_PATH or /usr/local/cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-run}
root=$PWD

need=(meson ninja-build pkg-config gcc libcurl4-openssl-dev libcjson-dev libsqlite3-dev
      libgit2-dev libcmocka-dev python3 git)
if [ "$mode" = test ]; then
	# numpy: reference.py tests; Open MPI: kiln is built with -Dmpi=auto, so the MPI integration test runs
	need+=(clang libclang-rt-14-dev chromium chromium-driver python3-numpy libopenmpi-dev openmpi-bin)
fi
missing=()
for p in "${need[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "kiln setup: installing ${missing[*]}"
	sudo_cmd=""
	[ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
	$sudo_cmd apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
fi

werror=false
[ "${CI:-}" = true ] && werror=true
if [ ! -f build/build.ninja ]; then
	meson setup build -Dwerror=$werror >/dev/null
fi
ninja -C build >/dev/null

case "$mode" in
run)
	if [ $# -gt 0 ]; then shift; fi
	exec bash scripts/main-job.sh "$@"
	;;
test)
	exec bash scripts/test.sh
	;;
*)
	echo "usage: bash scripts/setup.sh run [TARGET ...] | test" >&2
	exit 2
	;;
esac
