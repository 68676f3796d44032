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
for t in $TESTS; do
  QEMU_LD_PREFIX=/usr/aarch64-linux-gnu OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 K2C_TEST_LEVELS=neon \
    timeout 900 qemu-aarch64 $B/tests/$t >"$TMP/$t.out" 2>&1; rc=$?
  grep -E '^(PASS|FAIL|SKIP) ' "$TMP/$t.out" | grep -v ': not in K2C_TEST_LEVELS' | sed 's/^\(PASS\|FAIL\|SKIP\) /\1 arm64_/'
  if [ $rc -ne 0 ] && ! grep -q '^FAIL ' "$TMP/$t.out"; then fail "arm64_$t" "exit $rc: $(tail -3 "$TMP/$t.out")"; fi
done
