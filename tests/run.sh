#!/usr/bin/env bash
# tests/run.sh - runs every unit test binary, CLI test script and fuzz replay,
# and ends with the line "N passed, N failed, N skipped".
set -u
BUILD=${BUILD:-build}
export BIN=$(cd "$BUILD/bin" && pwd)
export WENO_TEST_TMP=$(mktemp -d "${TMPDIR:-/tmp}/weno-tests.XXXXXX")
trap 'rm -rf "$WENO_TEST_TMP"' EXIT
pass=0 fail=0 skip=0
failed_names=()

count() { # file-with-output name
	local p f s
	p=$(grep -c '^PASS ' "$1"); f=$(grep -c '^FAIL ' "$1"); s=$(grep -c '^SKIP ' "$1")
	pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
	if [ "$2" != ok ] && [ "$f" = 0 ]; then
		fail=$((fail + 1)); echo "FAIL $3: exited with status $2 outside any case"
	fi
	grep -q '^FAIL ' "$1" && failed_names+=("$3")
}

run_one() { # name command...
	local name=$1; shift
	local out=$WENO_TEST_TMP/out.$$.txt st=ok
	echo "== $name"
	"$@" >"$out" 2>&1 || st=$?
	cat "$out"
	count "$out" "$st" "$name"
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	run_one "$(basename "$t")" "$t"
done
for t in tests/cli/test_*.sh; do
	[ -f "$t" ] || continue
	run_one "$(basename "$t")" bash "$t"
done
for t in "$BUILD"/tests/replay_fuzz_*; do
	[ -x "$t" ] || continue
	n=${t##*/replay_fuzz_}
	run_one "replay $n" "$t" tests/fuzz/corpus/"$n" tests/fuzz/crashes/"$n"
done

echo
[ ${#failed_names[@]} -gt 0 ] && echo "failed in: ${failed_names[*]}"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
