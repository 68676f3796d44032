#!/usr/bin/env bash
# Runs every test program (build/tests/test_*) and every shell test (tests/test_*.sh).
# Each prints one "PASS name", "FAIL name" or "SKIP name: why" line per test (SKIP: this machine cannot run
# it, e.g. an ISA the CPU lacks or a missing tool); a program that dies without reporting counts as one
# failure. Ends with "N passed, N failed, N skipped"; exit status 1 on any failure.
cd "$(dirname "$0")/.."
export K2C="${K2C:-build/k2c}"
K2C_TESTS="${K2C_TESTS:-build/tests}"
export K2C_TMP="$(mktemp -d)"
trap 'rm -rf "$K2C_TMP"' EXIT
mkdir -p build/tests
pass=0; fail=0; skip=0; nprog=0
report() {  # $1 = name, $2 = captured output file, $3 = exit code, $4 = seconds it took
  local p f s
  p=$(grep -c '^PASS ' "$2"); f=$(grep -c '^FAIL ' "$2"); s=$(grep -c '^SKIP ' "$2")
  grep -E '^(FAIL|SKIP) ' "$2" | sed 's/^/  /'
  if [ "$3" != 0 ] && [ "$f" = 0 ]; then f=1; echo "  FAIL $1 (exit $3)"; tail -20 "$2" | sed 's/^/    | /'; fi
  if [ "$p" = 0 ] && [ "$f" = 0 ] && [ "$s" = 0 ]; then f=1; echo "  FAIL $1 (reported no test)"; tail -20 "$2" | sed 's/^/    | /'; fi
  pass=$((pass + p)); fail=$((fail + f)); skip=$((skip + s))
  printf '%-40s %3d passed, %d failed, %d skipped  (%ss)\n' "$1" "$p" "$f" "$s" "$4"
}
for t in "$K2C_TESTS"/test_*; do
  [ -x "$t" ] || continue
  nprog=$((nprog + 1))
  out="$K2C_TMP/out.txt"
  t0=$SECONDS; "$t" >"$out" 2>&1; rc=$?
  report "$(basename "$t")" "$out" "$rc" $((SECONDS - t0))
done
if [ "$nprog" = 0 ]; then fail=$((fail + 1)); echo "  FAIL no test programs in $K2C_TESTS (build them first)"; fi
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  out="$K2C_TMP/out.txt"
  t0=$SECONDS; bash "$t" >"$out" 2>&1; rc=$?
  report "$(basename "$t")" "$out" "$rc" $((SECONDS - t0))
done
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
