#!/usr/bin/env bash
# Integration: the adversarial kernel corpus (tests/adversarial/manifest.json), kernels
# that try to pass verification or win timing without doing the work. Each entry runs
# through the kiln binary on the emulator:
#   via verify, expect fail: `kiln verify --json` must fail with the named check (and, with
#     "at": "extra" / "reverse", at the unlisted extra size / with blocks in reverse order);
#   via verify, expect pass: the honest baseline must pass;
#   via bench, expect fail: `kiln bench --json` must refuse to time it, naming the check;
#   via bench, expect no-win: it may pass, but its modeled time must not beat the
#     baseline's by more than the 1% tie band;
#   expect gap: a known hole (the manifest says why): reported, never failed.
# The test prints which check caught each kernel. 77 when nothing could run.
set -u
: "${KILN_BIN:?KILN_BIN not set}" "${KILN_SOURCE_ROOT:?KILN_SOURCE_ROOT not set}"
root=$KILN_SOURCE_ROOT
adv=$root/tests/adversarial
fail=0 ran=0

entries=$(python3 - "$adv/manifest.json" <<'EOF'
import json, sys
for e in json.load(open(sys.argv[1])):
    print("\t".join([e["file"], e["launch"], e["target"], e["via"], e["expect"], e.get("check", "-"),
                     e.get("at", "-"), e.get("targets_dir", "-"), e.get("baseline", "-")]))
EOF
) || { echo "FAIL manifest: cannot read $adv/manifest.json"; exit 1; }

# field of a kiln --json document: verify prints the verdict, bench {"candidates": [...]}
jget() {
	python3 -c 'import json, sys
d = json.loads(sys.stdin.read())
c = d["candidates"][0] if "candidates" in d else None
v = c["verdict"] if c else d
t = (c or {}).get("timing") or {}
print({"pass": "pass" if v and v.get("pass") else "fail", "check": (v or {}).get("check") or "-",
       "message": (v or {}).get("message") or "", "time": t.get("time_us", "-"),
       "timed": "yes" if c and c.get("timed") else "no"}[sys.argv[1]])' "$1" 2>/dev/null
}

while IFS=$'\t' read -r file launch target via expect check at tdir baseline; do
	targs=()
	[ "$tdir" != "-" ] && targs=(--targets-dir "$root/$tdir")
	k=(--kernel "$adv/$file" --launch "$adv/$launch" --device emu --json "${targs[@]}")
	ran=$((ran + 1))
	js=$("$KILN_BIN" "$via" "$target" "${k[@]}" 2>&1)
	got=$(printf '%s' "$js" | jget pass) check_got=$(printf '%s' "$js" | jget check)
	msg=$(printf '%s' "$js" | jget message)
	if [ -z "$got" ]; then
		echo "FAIL $file ($via): no JSON verdict: $(printf '%s' "$js" | head -c 300)"; fail=1; continue
	fi
	case $expect in
	pass)
		if [ "$got" != pass ]; then echo "FAIL $file: expected to pass, failed [$check_got] $msg"; fail=1
		else echo "ok   $file: passes (baseline)"; fi ;;
	fail)
		# "race|initcheck": either check may see it first on the schedule this run drew
		if [ "$got" != fail ] || [[ "|$check|" != *"|$check_got|"* ]]; then
			echo "FAIL $file ($via): expected fail [$check], got $got [$check_got] $msg"; fail=1; continue
		fi
		case $at in
		extra) echo "$msg" | grep -q "unlisted size" || { echo "FAIL $file: not caught at the extra size: $msg"; fail=1; continue; } ;;
		reverse) echo "$msg" | grep -q "reverse order" || { echo "FAIL $file: not caught in reverse block order: $msg"; fail=1; continue; } ;;
		esac
		[ "$via" = bench ] && [ "$(printf '%s' "$js" | jget timed)" = yes ] && { echo "FAIL $file: timed after failing"; fail=1; continue; }
		note=""
		[ "$at" = extra ] && note=" at the unlisted extra size"
		[ "$at" = reverse ] && note=" with blocks in reverse order"
		echo "ok   $file ($via): caught by [$check]$note" ;;
	no-win)
		base=$("$KILN_BIN" bench "$target" --kernel "$adv/$baseline" --launch "$adv/$launch" --device emu --json "${targs[@]}" 2>&1)
		tc=$(printf '%s' "$js" | jget time) tb=$(printf '%s' "$base" | jget time)
		if [ "$got" = fail ]; then echo "ok   $file (bench): rejected [$check_got]"; continue; fi
		if ! python3 -c "import sys; sys.exit(0 if float('$tc') >= 0.99 * float('$tb') else 1)" 2>/dev/null; then
			echo "FAIL $file (bench): modeled $tc us beats the honest $tb us"; fail=1
		else echo "ok   $file (bench): no win (modeled $tc us vs honest $tb us)"; fi ;;
	gap) # a known hole, written down in the manifest: reported, not failed
		if [ "$got" = pass ]; then echo "gap  $file: not caught (known; see the manifest)"
		else echo "ok   $file: now caught by [$check_got]: mark it expect fail in the manifest"; fi ;;
	*) echo "FAIL $file: unknown expect '$expect'"; fail=1 ;;
	esac
done <<<"$entries"

[ $ran -eq 0 ] && exit 77
[ $fail -eq 0 ] && echo "integ_adversarial: all $ran entries behaved"
exit $fail
