#!/usr/bin/env bash
# Integration: `kiln verify` through the binary. (1) every built-in target's seed verifies
# at every verification size on the emulator; (2) each kernel of the fixture corpus
# tests/fixtures/verify/manifest.json fails with its named check (and is "unverifiable"
# exactly when the manifest says so: unsupported PTX is not a wrong kernel), or passes when
# it is a correct-but-unusual kernel, at the kind of input set the manifest names ("kind":
# cap-breaking, row-length, tile, multi-step, bench; "args" adds kiln verify options); (3) a replayed --seed gives the same verdict; (4) usage and
# bad input exit 2 / 3. Corpus targets that do not exist yet are skipped (77 if nothing ran).
set -u
: "${KILN_BIN:?KILN_BIN not set}" "${KILN_SOURCE_ROOT:?KILN_SOURCE_ROOT not set}"
fx="$KILN_SOURCE_ROOT/tests/fixtures/verify"
tdir=()
[ -n "${KILN_VERIFY_TARGETS_DIR:-}" ] && tdir=(--targets-dir "$KILN_VERIFY_TARGETS_DIR")
fail=0 ran=0

# (4) usage and input errors
"$KILN_BIN" verify >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL usage: no TARGET exited $rc, want 2"; fail=1; }
"$KILN_BIN" verify no_such_target_xyz "${tdir[@]}" >/dev/null 2>&1; rc=$?
[ $rc -eq 3 ] || { echo "FAIL unknown target exited $rc, want 3"; fail=1; }
"$KILN_BIN" verify adamw --kernel "$fx/adamw_zeros.cu" "${tdir[@]}" >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] || { echo "FAIL --kernel without --launch exited $rc, want 2"; fail=1; }
"$KILN_BIN" verify adamw --device tpu "${tdir[@]}" >/dev/null 2>&1; rc=$?
[ $rc -eq 3 ] || [ $rc -eq 2 ] || { echo "FAIL --device tpu exited $rc, want 2/3"; fail=1; }

# (1) every built-in seed
names=$("$KILN_BIN" targets "${tdir[@]}" 2>/dev/null | awk '{print $1}')
for t in $names; do
	ran=$((ran + 1))
	out=$("$KILN_BIN" verify "$t" "${tdir[@]}" 2>&1); rc=$?
	if [ $rc -ne 0 ]; then echo "FAIL seed $t: exit $rc"; echo "$out"; fail=1
	else echo "ok   seed $t: $(echo "$out" | head -1)"; fi
	# and at the largest BLOCK its knobs allow: many warps meeting at block barriers (a
	# shared-memory scan's happens-before must not report the seed's own exchanges)
	big=$(python3 -c 'import json,sys; k=json.load(open(sys.argv[1])).get("knobs", {}).get("BLOCK"); print(max(k) if k else "")' \
		"$KILN_SOURCE_ROOT/targets/$t/target.json" 2>/dev/null)
	[ -n "$big" ] || continue
	ran=$((ran + 1))
	out=$("$KILN_BIN" verify "$t" -D "BLOCK=$big" "${tdir[@]}" 2>&1); rc=$?
	if [ $rc -ne 0 ]; then echo "FAIL seed $t at BLOCK=$big: exit $rc"; echo "$out"; fail=1
	else echo "ok   seed $t at BLOCK=$big"; fi
done

# the corpus' own fixture targets (built on the built-in references) verify their seeds
for d in "$fx"/targets/*/; do
	[ -f "$d/target.json" ] || continue
	t=$(basename "$d")
	out=$("$KILN_BIN" verify "$t" --targets-dir "$fx/targets" 2>&1); rc=$?
	if [ $rc -eq 3 ] && echo "$out" | grep -q "no built-in reference"; then echo "skip seed $t: reference not built in yet"; continue; fi
	ran=$((ran + 1))
	if [ $rc -ne 0 ]; then echo "FAIL fixture seed $t: exit $rc"; echo "$out"; fail=1
	else echo "ok   fixture seed $t"; fi
done

# (2) the corpus
have=" $(echo $names) "
while IFS=$'\t' read -r file launch target expect check unver tsub kind xargs; do
	targs=("${tdir[@]}")
	[ "$tsub" = - ] && tsub=""
	[ "$xargs" = - ] && xargs=""
	if [ -n "$tsub" ]; then
		targs=(--targets-dir "$fx/$tsub")
	else
		case "$have" in *" $target "*) ;; *) echo "skip $file: no target $target"; continue ;; esac
	fi
	ran=$((ran + 1))
	extra=(); [ -n "$xargs" ] && read -r -a extra <<<"$xargs"
	js=$("$KILN_BIN" verify "$target" --kernel "$fx/$file" --launch "$fx/$launch" --json "${targs[@]}" "${extra[@]}" 2>&1); rc=$?
	if [ $rc -eq 3 ] && printf '%s' "$js" | grep -q "no built-in reference"; then
		ran=$((ran - 1)); echo "skip $file: reference of $target not built in yet"; continue
	fi
	got=$(printf '%s' "$js" | python3 -c 'import json,sys
try:
    v = json.load(sys.stdin)
    k = sys.argv[1]
    at = "" if v["pass"] or k == "-" or v.get("input_set", {}).get("kind") == k else " at " + v.get("input_set", {}).get("kind", "?")
    print(("pass" if v["pass"] else "fail") + " " + (v["check"] or "-") + (" unverifiable" if v["unverifiable"] else "") + at)
except Exception:
    print("error -")' "$kind")
	want="$expect $check"
	[ "$expect" = pass ] && want="pass -"
	[ "$unver" = 1 ] && want="$want unverifiable"
	want_rc=1; [ "$expect" = pass ] && want_rc=0; [ "$unver" = 1 ] && want_rc=3
	# a check may name alternatives ("race|initcheck"): a wrong kernel that two checks can
	# catch is caught by whichever fails first on the input sets this run drew
	ok_check=0
	for alt in ${check//|/ }; do
		w="$expect $alt"; [ "$expect" = pass ] && w="pass -"; [ "$unver" = 1 ] && w="$w unverifiable"
		[ "$got" = "$w" ] && ok_check=1
	done
	if [ $ok_check -eq 0 ] || [ $rc -ne $want_rc ]; then
		echo "FAIL $file: got '$got' (exit $rc), want '$want' (exit $want_rc)"; echo "$js" | head -c 1500; echo; fail=1
	else
		echo "ok   $file: $got"
	fi
done < <(python3 -c 'import json,sys
for e in json.load(open(sys.argv[1])):
    print("\t".join([e["file"], e["launch"], e["target"], e["expect"], e.get("check") or "-",
                     "1" if e.get("unverifiable") else "0", e.get("targets_dir") or "-", e.get("kind", "-"),
                     " ".join(e.get("args", [])) or "-"]))' "$fx/manifest.json")

# (3) replay: the seeds of a failing verdict reproduce its worst error
case "$have" in *" adamw "*)
	ran=$((ran + 1))
	a=$("$KILN_BIN" verify adamw --kernel "$fx/adamw_wrong_bias.cu" --launch "$fx/adamw_wrong_bias.json" --json "${tdir[@]}")
	seeds=$(printf '%s' "$a" | python3 -c 'import json,sys; print(" ".join("--seed " + s for s in json.load(sys.stdin)["seeds"]))')
	b=$("$KILN_BIN" verify adamw --kernel "$fx/adamw_wrong_bias.cu" --launch "$fx/adamw_wrong_bias.json" --json $seeds "${tdir[@]}")
	key='import json,sys; v=json.load(sys.stdin); print(v["input_set"]["seed"], v["worst"]["index"], v["worst"]["abs"], v["mismatches"])'
	ka=$(printf '%s' "$a" | python3 -c "$key"); kb=$(printf '%s' "$b" | python3 -c "$key")
	if [ "$ka" != "$kb" ]; then echo "FAIL replay: '$ka' vs '$kb'"; fail=1; else echo "ok   replay: $ka"; fi
	;;
esac

[ $ran -eq 0 ] && { echo "skip: no targets yet"; exit 77; }
exit $fail
