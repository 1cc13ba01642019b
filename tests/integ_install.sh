#!/usr/bin/env bash
# Integration: `meson install --destdir` puts kiln, kiln/reference.h, the built-in targets,
# the examples and the docs under the prefix, and the installed kiln finds its built-in
# targets and its header relative to itself (README "Installing kiln"): it lists and
# verifies a built-in target from share/kiln/targets and checks a C-reference example
# against include/kiln/reference.h of the install.
set -u
fail=0
check() { local what=$1; shift; if "$@"; then echo "ok   $what"; else echo "FAIL $what"; fail=1; fi; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
meson install -C "$KILN_BUILD_ROOT" --no-rebuild --quiet --destdir "$tmp/dest" >"$tmp/install.log" 2>&1
check "meson install --destdir" test $? -eq 0
prefix=$(find "$tmp/dest" -type f -name kiln -path '*/bin/*' | head -1)
prefix=${prefix%/bin/kiln}
check "kiln installed" test -x "$prefix/bin/kiln"
check "kiln/reference.h installed" test -f "$prefix/include/kiln/reference.h"
check "built-in targets installed" test -f "$prefix/share/kiln/targets/adamw/target.json"
# every folder of targets/ with a target.json (README "Adding a built-in target"), each
# with its target.json, launch.json and seed.cu and nothing else
for d in "$KILN_SOURCE_ROOT"/targets/*/target.json; do
	name=$(basename "$(dirname "$d")")
	check "built-in target $name installed" \
		test "$(ls "$prefix/share/kiln/targets/$name" | tr '\n' ' ')" = "launch.json seed.cu target.json "
done
check "no other target installed" test "$(ls "$prefix/share/kiln/targets" | wc -l)" -eq \
	"$(ls "$KILN_SOURCE_ROOT"/targets/*/target.json | wc -l)"
check "examples installed" test -f "$prefix/share/kiln/examples/targets/sinkgd/reference.c"
check "docs installed" test -f "$prefix/share/doc/kiln/README.md"
unset KILN_TARGETS_DIR
cd "$tmp"
"$prefix/bin/kiln" targets --json >"$tmp/list.json"
check "installed kiln lists its built-in targets from share/kiln/targets" \
	grep -q "\"dir\":.*$tmp/dest.*share/kiln/targets/adamw\"" "$tmp/list.json"
"$prefix/bin/kiln" verify lion --seeds 1 --workdir "$tmp/wd" >"$tmp/verify.txt" 2>&1
check "installed kiln verifies a built-in target" grep -q "^PASS lion" "$tmp/verify.txt"
cp -r "$prefix/share/kiln/examples/targets/sinkgd" "$tmp/sinkgd"
KILN_REF_CACHE="$tmp/refcache" "$prefix/bin/kiln" targets check "$tmp/sinkgd" --workdir "$tmp/wd" >"$tmp/check.txt" 2>&1
check "installed kiln checks a C-reference target" grep -q "^ready:" "$tmp/check.txt"
check "... against the installed kiln/reference.h" grep -q "builds against $tmp/dest.*/include/kiln/reference.h" "$tmp/check.txt"
"$prefix/bin/kiln" --help >/dev/null 2>&1
check "installed kiln --help" test $? -eq 0
[ $fail -eq 0 ] || { cat "$tmp/install.log" "$tmp/check.txt" "$tmp/verify.txt" | tail -40; }
exit $fail
