#!/usr/bin/env bash
# Decode attention at depth on the Moonlight-shaped 2-layer model (issue 14's target: decode at depth 8000 at least
# 90% of decode at depth 128), in CPU time per call (bench/attn_depth.c), for each cache type, depth 128 and 8000,
# rounds alternating. SRC=DIR builds the program against another source tree's build/libk2c.a (a before/after
# pair: `git archive COMMIT | tar -x -C DIR && make -C DIR build/libk2c.a`). ROUNDS=N (default 2). CHUNK=N also
# times one layer's prefill of an N-token chunk at each depth (issue 15); MODEL=DIR another model (e.g. the
# server benchmark's build/bench-server/model); DEPTHS="..." other depths.
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=${SRC:-.}
M=${MODEL:-build/bench/ml2}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
[ -d "$M" ] || [ -n "${MODEL:-}" ] || build/k2c mkmodel --preset moonlight-16b-a3b --layers 2 --experts 8 --vocab 4096 --dtype bf16 --out "$M"
BL=/usr/lib/$(gcc -print-multiarch)/openblas-openmp
gcc -std=c11 -O2 -D_DEFAULT_SOURCE -D_GNU_SOURCE -fopenmp -I"$SRC/include" -I"$SRC/src" bench/attn_depth.c "$SRC/build/libk2c.a" \
    -ljansson -lpcre2-8 -L"$BL" -Wl,-rpath,"$BL" -lopenblas -lm -fopenmp -o "$W/attn_depth"
for round in $(seq "${ROUNDS:-2}"); do
    for ct in ${TYPES:-0 1 2}; do
        for d in ${DEPTHS:-128 8000}; do "$W/attn_depth" "$M" "$d" "$ct" 30 ${CHUNK:-0} || echo "cache $ct depth $d: not supported by this library"; done
    done
done
