#!/usr/bin/env bash
# Integration: wrong kernels that only the input regimes catch (tests/adversarial/regimes/
# manifest.json, issue "Trust I"). Each is a built-in seed with one ordinary bug (a mask
# read as a length, t+1 as the count, a hard-coded hyper-parameter, a missing eps or
# clamp, bf16 rounding, a sign rule, ...). `kiln verify --json` on the emulator must fail
# it with the named check, and the failing input set must be one of the regimes the
# manifest names ("multi-step" = the multi-step case; "default" = the default draw may
# catch it too). A kernel whose manifest does not list "default" but fails there is a
# test failure: it would not need its regime. Entries "expect": "pass" are correct
# kernels the regimes must not reject (flush-to-zero Lion, bitsandbytes' padding-lane
# absmax, another scan for ratio_cumulative); "launch" names their own plan in the
# folder (default: the target's launch.json); the fast-math entries run the seed itself.
# 77 when nothing could run.
set -u
: "${KILN_BIN:?KILN_BIN not set}" "${KILN_SOURCE_ROOT:?KILN_SOURCE_ROOT not set}"
root=$KILN_SOURCE_ROOT
dir=$root/tests/adversarial/regimes
fail=0 ran=0

entries=$(python3 - "$dir/manifest.json" <<'PY'
import json, sys
for e in json.load(open(sys.argv[1])):
    print("\t".join([e["file"], e["target"], e["expect"], e.get("check", "-"), ",".join(e.get("regimes", [])) or "-",
                     e.get("launch", "-")]))
PY
) || { echo "FAIL manifest: cannot read $dir/manifest.json"; exit 1; }

# verdict -> "pass|fail CHECK REGIME" where REGIME is the failing input set's regime, or
# "multi-step" for the multi-step case (from the JSON input set, else from the message)
verdict() {
	python3 -c 'import json, re, sys
try:
    v = json.loads(sys.stdin.read())
except Exception:
    print("error - -"); sys.exit()
s = v.get("input_set") or {}
kind = s.get("kind") or v.get("input_kind") or ""
reg = s.get("regime") or v.get("input_regime") or ""
msg = v.get("message") or ""
if not reg:
    m = re.search(r"regime ([A-Za-z0-9_]+)", msg)
    reg = m.group(1) if m else "default"
if "multi" in kind or re.search(r"step [0-9]+ of [0-9]+", msg):
    reg = "multi-step"
print(("pass" if v.get("pass") else "fail"), v.get("check") or "-", reg)'
}

while IFS=$'\t' read -r file target expect check regimes launch; do
	ran=$((ran + 1))
	plan=$root/targets/$target/launch.json
	[ "$launch" != "-" ] && plan=$dir/$launch
	js=$("$KILN_BIN" verify "$target" --kernel "$dir/$file" --launch "$plan" --device emu --json 2>&1)
	read -r got check_got regime_got <<<"$(printf '%s' "$js" | verdict)"
	case $expect in
	pass)
		if [ "$got" != pass ]; then echo "FAIL $file: expected to pass, got $got [$check_got] at $regime_got"; fail=1
		else echo "ok   $file: passes"; fi ;;
	fail)
		if [ "$got" != fail ] || [ "$check_got" != "$check" ]; then
			echo "FAIL $file: expected fail [$check] in {$regimes}, got $got [$check_got] at $regime_got"
			printf '%s\n' "$js" | head -c 600; echo; fail=1; continue
		fi
		case ",$regimes," in
		*",$regime_got,"*) echo "ok   $file: caught by [$check_got] in regime $regime_got" ;;
		*) echo "FAIL $file: caught by [$check_got] in regime $regime_got, expected one of {$regimes}"; fail=1 ;;
		esac ;;
	*) echo "FAIL $file: unknown expect '$expect'"; fail=1 ;;
	esac
done <<<"$entries"

[ $ran -eq 0 ] && exit 77
[ $fail -eq 0 ] && echo "integ_regimes: all $ran kernels behaved"
exit $fail
