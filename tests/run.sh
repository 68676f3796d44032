#!/usr/bin/env bash
# Runs every test program (build/tests/test_*) and every shell test (tests/test_*.sh).
# Each prints one "PASS name" or "FAIL name" line per test; a program that dies without
# reporting counts as one failure. Ends with "N passed, N failed"; exit status 1 on any failure.
cd "$(dirname "$0")/.."
export K2C="${K2C:-build/k2c}"
K2C_TESTS="${K2C_TESTS:-build/tests}"
export K2C_TMP="$(mktemp -d)"
trap 'rm -rf "$K2C_TMP"' EXIT
mkdir -p build/tests
pass=0; fail=0
report() {  # $1 = name, $2 = captured output file, $3 = exit code
  local p f
  p=$(grep -c '^PASS ' "$2"); f=$(grep -c '^FAIL ' "$2")
  grep -E '^(FAIL|SKIP) ' "$2" | sed 's/^/  /'
  if [ "$3" != 0 ] && [ "$f" = 0 ]; then f=1; echo "  FAIL $1 (exit $3)"; tail -20 "$2" | sed 's/^/    | /'; fi
  pass=$((pass + p)); fail=$((fail + f))
  printf '%-40s %3d passed, %d failed\n' "$1" "$p" "$f"
}
for t in "$K2C_TESTS"/test_*; do
  [ -x "$t" ] || continue
  out="$K2C_TMP/out.txt"
  "$t" >"$out" 2>&1; rc=$?
  report "$(basename "$t")" "$out" "$rc"
done
for t in tests/test_*.sh; do
  [ -f "$t" ] || continue
  out="$K2C_TMP/out.txt"
  bash "$t" >"$out" 2>&1; rc=$?
  report "$(basename "$t")" "$out" "$rc"
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
