#!/usr/bin/env bash
# Integration test of `kiln targets`: the built-in targets are listed (text and JSON),
# `targets show adamw --json` is valid JSON with the traffic at the bench size, a user
# folder given with --targets-dir is found, and a broken target.json is reported as one
# line naming the file and the field, with exit code 3; the built-in targets are their
# folders (scripts/builtin_targets.py: one registered reference per folder, a half-made or
# newly added folder is a configure or build error). Skips (77) until the built-in
# targets exist.
set -u
: "${KILN_BIN:?KILN_BIN must point at the kiln binary}"
: "${KILN_SOURCE_ROOT:?KILN_SOURCE_ROOT must point at the source tree}"
unset KILN_TARGETS_DIR
src="$KILN_SOURCE_ROOT/targets"
if [ ! -f "$src/adamw/target.json" ]; then
	echo "skip: $src/adamw/target.json does not exist yet"
	exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
check() { # check DESCRIPTION COMMAND...
	local what=$1
	shift
	if "$@"; then echo "ok: $what"; else echo "FAIL: $what"; fail=1; fi
}

# 1. the list names every built-in target folder, one line each
"$KILN_BIN" targets >"$tmp/list.txt" 2>"$tmp/list.err"
rc=$?
check "kiln targets exits 0 (stderr: $(head -c 300 "$tmp/list.err"))" test "$rc" -eq 0
for d in "$src"/*/; do
	name=$(basename "$d")
	[ -f "$d/target.json" ] || continue
	check "list has $name" grep -q "^$name " "$tmp/list.txt"
done
want=$(find "$src" -mindepth 2 -maxdepth 2 -name target.json | wc -l)
check "list has $want lines" test "$(wc -l <"$tmp/list.txt")" -eq "$want"

# 2. --json list parses and has the same names
"$KILN_BIN" targets --json >"$tmp/list.json"
check "list --json parses with name/family/summary" python3 -c '
import json, sys
a = json.load(open(sys.argv[1]))
assert isinstance(a, list) and len(a) == int(sys.argv[2]), a
for t in a:
    assert t["name"] and t["family"] and t["summary"], t
' "$tmp/list.json" "$want"

# 3. show adamw --json: everything, with traffic evaluated at the bench size
"$KILN_BIN" targets show adamw --json >"$tmp/adamw.json"
check "show adamw --json exits 0" test $? -eq 0
check "show adamw --json has the declared fields" python3 -c '
import json, sys
t = json.load(open(sys.argv[1]))
assert t["name"] == "adamw", t["name"]
for k in ("family", "summary", "math", "symbols", "buffers", "scalars", "tolerance", "traffic_bytes", "knobs", "launch"):
    assert k in t, k
assert t["traffic"] and t["traffic"][0]["bytes"] > 0 and t["traffic"][0]["ideal_us"] > 0, t["traffic"]
assert all("bench_bytes" in b for b in t["buffers"]), t["buffers"]
assert t["launch"]["launches"], t["launch"]
' "$tmp/adamw.json"
"$KILN_BIN" targets show adamw >"$tmp/adamw.txt"
check "show adamw (text) prints traffic and the ideal time" grep -q "ideal .* us at 3.35 TB/s" "$tmp/adamw.txt"

# 4. a user folder: a copy of adamw, found by --targets-dir and by path
mkdir -p "$tmp/mine"
cp -r "$src/adamw" "$tmp/mine/adamw"
"$KILN_BIN" targets show adamw --targets-dir "$tmp/mine" --json >"$tmp/mine.json"
check "show via --targets-dir reads that folder" grep -q "\"dir\":.*mine/adamw" "$tmp/mine.json"
"$KILN_BIN" targets show "$tmp/mine/adamw" >/dev/null
check "show via a path" test $? -eq 0

# 5. a broken target.json: one line naming the file and the field, exit 3
python3 - "$tmp/mine/adamw/target.json" <<'EOF'
import json, sys
p = sys.argv[1]
t = json.load(open(p))
t["buffers"][0]["dtype"] = "f33"
json.dump(t, open(p, "w"), indent=1)
EOF
"$KILN_BIN" targets --targets-dir "$tmp/mine" >/dev/null 2>"$tmp/bad.err"
rc=$?
check "broken target exits 3" test "$rc" -eq 3
check "error names the file and the field" grep -q "mine/adamw/target.json: buffers\[0\].dtype: unknown dtype \"f33\"" "$tmp/bad.err"
check "error is one line" test "$(wc -l <"$tmp/bad.err")" -eq 1

# 6. usage errors
"$KILN_BIN" targets frobnicate >/dev/null 2>&1
check "unknown argument exits 2" test $? -eq 2
"$KILN_BIN" targets show no_such_target >/dev/null 2>"$tmp/nf.err"
check "unknown target exits 3" test $? -eq 3
check "unknown target is named" grep -q 'no target named "no_such_target"' "$tmp/nf.err"

# 7. a built-in target is its folder (README "Adding a built-in target"): the build
# registers one reference per folder with a target.json, and a folder that is not a whole
# target, or one added since meson configured, stops the configure or the build with a line
# saying what to do
gen="$KILN_SOURCE_ROOT/scripts/builtin_targets.py"
python3 "$gen" list "$src" >"$tmp/builtin.txt"
check "builtin_targets.py lists what kiln targets lists" \
	test "$(cat "$tmp/builtin.txt")" = "$(cut -d' ' -f1 "$tmp/list.txt")"
reg="${KILN_BUILD_ROOT:-}/targets/builtin_registry.c"
if [ -f "$reg" ]; then
	check "the build's registry has one row per folder" \
		test "$(grep -c '^	{"[a-z0-9_]*", kiln_ref_[a-z0-9_]*},$' "$reg")" -eq "$want"
	for name in $(cat "$tmp/builtin.txt"); do
		check "registry row for $name" grep -qF "{\"$name\", kiln_ref_$name}," "$reg"
	done
fi
mkdir -p "$tmp/bt"
cp -r "$src/adamw" "$src/lion" "$tmp/bt/"
python3 "$gen" registry "$tmp/bt.c" "$tmp/bt" adamw lion
check "registry of a scratch folder" grep -qF '{"lion", kiln_ref_lion},' "$tmp/bt.c"
python3 "$gen" registry "$tmp/bt.c" "$tmp/bt" adamw 2>"$tmp/bt.err"
check "a folder added since configure fails the build" test $? -eq 1
check "... saying to reconfigure" grep -q "new: lion; gone: -): run .meson setup --reconfigure" "$tmp/bt.err"
rm "$tmp/bt/lion/reference.c"
python3 "$gen" list "$tmp/bt" >/dev/null 2>"$tmp/bt.err"
check "a folder without reference.c fails the configure" test $? -eq 1
check "... naming the folder and the file" grep -q "targets/lion has a target.json but no reference.c" "$tmp/bt.err"
rm -r "$tmp/bt/lion"
cp -r "$src/adamw" "$tmp/bt/my-kernel"
python3 "$gen" list "$tmp/bt" >/dev/null 2>"$tmp/bt.err"
check "a folder name that is no C name fails the configure" grep -q "targets/my-kernel: a built-in target's folder name is its C name" "$tmp/bt.err"

exit $fail
