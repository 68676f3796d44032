# Helpers for shell tests: pass/fail/skip print the lines tests/run.sh counts.
K2C="${K2C:-build/k2c}"
TMP="${K2C_TMP:-$(mktemp -d)}/$(basename "$0" .sh)"; mkdir -p "$TMP"
pass() { echo "PASS $1"; }
fail() { echo "FAIL $1${2:+: $2}"; }
# expect_fail NAME PATTERN CMD...: CMD must exit non-zero (not by a signal) and print PATTERN on stderr
expect_fail() {
  local name="$1" pat="$2"; shift 2
  "$@" >"$TMP/stdout" 2>"$TMP/stderr"; local rc=$?
  if [ $rc -eq 0 ]; then fail "$name" "exit 0"; return; fi
  if [ $rc -ge 128 ]; then fail "$name" "crashed (exit $rc): $(tail -3 "$TMP/stderr")"; return; fi
  if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/stderr"; then fail "$name" "sanitizer: $(grep -m1 'runtime error\|ERROR:' "$TMP/stderr")"; return; fi
  if ! grep -q -- "$pat" "$TMP/stderr"; then fail "$name" "stderr lacks '$pat': $(head -c 300 "$TMP/stderr")"; return; fi
  pass "$name"
}
# skip NAME WHY: a test this machine cannot run (a missing tool, an ISA the CPU lacks, a sanitizer build)
skip() { echo "SKIP $1: $2"; }
# run_checker NAME CMD...: a checker that prints its own PASS/FAIL/SKIP lines; a non-zero exit it did not
# explain with a FAIL line (a crash, a missing module) is reported as FAIL NAME
run_checker() {
  local name="$1"; shift
  "$@" >"$TMP/checker.out" 2>&1; local rc=$?
  cat "$TMP/checker.out"
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$TMP/checker.out"; then fail "$name" "exit $rc: $(tail -3 "$TMP/checker.out")"; fi
}
