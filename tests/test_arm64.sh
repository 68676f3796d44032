#!/usr/bin/env bash
# The NEON kernels on AArch64: cross-built with Debian's aarch64-linux-gnu-gcc against the :arm64 -dev packages
# (scripts/install-cross.sh installs them; CI does), then the golden, GGUF, GEMM and vector-kernel tests run under
# qemu-aarch64 on the neon level. Each test line comes back prefixed "arm64_"; a missing toolchain is a SKIP.
# One thread: qemu-user 7.2 here hangs in pthread_create, and one thread is all emulation needs.
. "$(dirname "$0")/lib.sh"
TESTS="test_golden test_gguf test_gemm test_qgemm test_int4_q8 test_vecmath"
if [ -n "${K2C_SANITIZE:-}" ]; then
  for t in $TESTS; do skip "arm64_$t" "sanitizer run (the emulated AArch64 tests run in make test)"; done; exit 0
fi
missing=""
command -v aarch64-linux-gnu-gcc >/dev/null || missing="$missing gcc-aarch64-linux-gnu"
command -v qemu-aarch64 >/dev/null || missing="$missing qemu-user"
[ -e /usr/include/aarch64-linux-gnu/openblas-openmp/cblas.h ] || missing="$missing libopenblas-openmp-dev:arm64"
[ -e /usr/lib/aarch64-linux-gnu/libjansson.so ] || missing="$missing libjansson-dev:arm64"
if [ -n "$missing" ]; then
  for t in $TESTS; do skip "arm64_$t" "not installed:$missing (bash scripts/install-cross.sh)"; done; exit 0
fi
B=build-arm64
if ! make -s -j2 CC=aarch64-linux-gnu-gcc BUILD=$B $(for t in $TESTS; do echo $B/tests/$t; done) >"$TMP/build.log" 2>&1; then
  fail arm64_build "$(grep -m3 'error' "$TMP/build.log")"; exit 0
fi
pass arm64_build
# Two lanes, one per core (qemu-user runs one thread): test_golden (80% of the time) split in halves by
# K2C_TEST_SHARD, the other programs after them.
run_one() {  # $1 = program, $2 = shard, $3 = output file
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 K2C_TEST_LEVELS=neon K2C_TEST_SHARD=$2 K2C_TEST_EMULATED=1 \
    timeout 900 qemu-aarch64 $B/tests/$1 >"$3" 2>&1; echo $? >"$3.rc"
}
lane() { for job in "$@"; do sh=${job#*:}; run_one ${job%%:*} $sh "$TMP/${job%%:*}.s${sh%/*}.out"; done; }
lane test_golden:0/2 test_gguf:0/1 test_int4_q8:0/1 & la=$!
lane test_golden:1/2 test_qgemm:0/1 test_gemm:0/1 test_vecmath:0/1 & lb=$!
wait $la $lb
for f in "$TMP"/test_*.s*.out; do
  t=$(basename "${f%%.*}"); rc=$(cat "$f.rc")
  grep -E '^(PASS|FAIL|SKIP) ' "$f" | grep -v ': not in K2C_TEST_LEVELS' | sed 's/^\(PASS\|FAIL\|SKIP\) /\1 arm64_/'
  if [ "$rc" -ne 0 ] && ! grep -q '^FAIL ' "$f"; then fail "arm64_$t" "exit $rc: $(tail -3 "$f")"; fi
done
