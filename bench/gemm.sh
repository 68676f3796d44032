#!/usr/bin/env bash
# GFLOP/s of k2c_matmul on a 1408 x 2048 weight per format and kernel table (bench/gemm.c).
#   bench/gemm.sh [THREADS [TABLES [FORMATS [TS]]]]
#   e.g. bench/gemm.sh 1 avx512,avx2 Q4_K,Q8_0 48,128,512
# Builds against build/libk2c.a (run `make` first). Timings on a shared machine are noisy: run A/B alternately.
set -e
cd "$(dirname "$0")/.."
B=${BUILD:-build}
MA=$(${CC:-gcc} -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
${CC:-gcc} -std=c11 -O2 -fopenmp -D_GNU_SOURCE -Iinclude -Isrc -I/usr/include/$MA/openblas-openmp bench/gemm.c $B/libk2c.a \
  -L/usr/lib/$MA/openblas-openmp -Wl,-rpath,/usr/lib/$MA/openblas-openmp -lopenblas -ljansson -lpcre2-8 -lm -o $B/bench_gemm
OMP_NUM_THREADS=${1:-1} OPENBLAS_NUM_THREADS=1 $B/bench_gemm "${1:-1}" "${2:-avx512,avx2,scalar}" \
  "${3:-BF16,Q8_0,Q4_0,Q4_K,Q5_K,Q6_K,Q2_K,Q3_K,IQ4_XS,IQ4_NL}" "${4:-48,128,512}"
