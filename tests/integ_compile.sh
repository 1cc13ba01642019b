#!/usr/bin/env bash
# Integration: `kiln compile` on every built-in target's seed.cu for sm_90 must succeed
# and report registers; a second pass must hit the cache; a broken file must exit 1 with
# the line number in the log. Exits 77 (skipped) until targets/*/seed.cu exist.
set -u
: "${KILN_BIN:?KILN_BIN not set}" "${KILN_SOURCE_ROOT:?KILN_SOURCE_ROOT not set}"
work=$(mktemp -d /tmp/kiln-integ-compile-XXXXXX)
trap 'rm -rf "$work"' EXIT
fail=0 n=0

for seed in "$KILN_SOURCE_ROOT"/targets/*/seed.cu; do
	[ -f "$seed" ] || continue
	n=$((n + 1))
	name=$(basename "$(dirname "$seed")")
	out=$("$KILN_BIN" compile "$seed" --arch sm_90 --workdir "$work" 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "FAIL $name: exit $rc"; echo "$out"; fail=1; continue
	fi
	# every kernel row has a positive register count (column 2)
	rows=$(echo "$out" | awk 'f && NF >= 7 { if ($2 + 0 <= 0) bad = 1; n++ } /^kernel/ { f = 1 } END { print (bad ? -1 : n + 0) }')
	if [ "$rows" -le 0 ]; then
		echo "FAIL $name: no kernel with registers reported"; echo "$out"; fail=1; continue
	fi
	again=$("$KILN_BIN" compile "$seed" --arch sm_90 --workdir "$work" --json 2>&1)
	if ! echo "$again" | grep -q '"cache_hit":[[:space:]]*true'; then
		echo "FAIL $name: second compile missed the cache"; fail=1; continue
	fi
	echo "ok   $name: $rows kernel(s)"
done

printf 'extern "C" __global__ void k(float *a)\n{\n\ta[0] = undefined_name;\n}\n' > "$work/bad.cu"
err=$("$KILN_BIN" compile "$work/bad.cu" --workdir "$work" 2>&1)
rc=$?
if [ $rc -ne 1 ] || ! echo "$err" | grep -q 'bad.cu(3)'; then
	echo "FAIL broken file: exit $rc (want 1) and a log naming bad.cu(3)"; echo "$err"; fail=1
fi

if [ $n -eq 0 ]; then
	echo "no targets/*/seed.cu yet: skipped"
	[ $fail -eq 0 ] && exit 77
fi
echo "$n seed(s) compiled"
exit $fail
