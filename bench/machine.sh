#!/usr/bin/env bash
# One line naming where a benchmark ran, for docs/BENCHMARKS.md: UTC date, CPU model and family, the SIMD
# flags the kernels care about, cores, load average, and the commit (+dirty if src/ include/ cli/ differ).
cd "$(dirname "$0")/.."
simd=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' |
  grep -xE 'fma|avx2|avx512f|avx512bw|avx512vl|avx512_vnni|avx512_bf16|avx_vnni|amx_bf16|amx_tile' | tr '\n' ' ')
dirty=$(git diff --quiet HEAD -- src include cli 2>/dev/null || echo +dirty)
echo "machine: $(date -u +%Y-%m-%dT%H:%MZ); $(lscpu | sed -n 's/^Model name: *//p') (family" \
  "$(lscpu | sed -n 's/^CPU family: *//p'), model $(lscpu | sed -n 's/^Model: *//p')); ${simd% };" \
  "$(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg); commit $(git rev-parse --short HEAD 2>/dev/null)$dirty"
