#!/usr/bin/env bash
# The GGUF decode kernels' speed per type and ISA table (bench/quant_dot.c): bash bench/quant_dot.sh [TYPES]
set -e
cd "$(dirname "$0")/.."
make -s build/libk2c.a >/dev/null
BL=/usr/lib/$(gcc -print-multiarch)/openblas-openmp
gcc -std=c11 -O2 -D_DEFAULT_SOURCE -D_GNU_SOURCE -fopenmp -Iinclude -Isrc bench/quant_dot.c build/libk2c.a \
  -ljansson -lpcre2-8 -L$BL -Wl,-rpath,$BL -lopenblas -lm -o build/quant_dot
exec build/quant_dot "$@"
