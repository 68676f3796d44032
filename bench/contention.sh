#!/usr/bin/env bash
# Decode on a busy machine (issue 12: k2-mini's decode with another CPU-bound process running is no worse than 2x
# slower than on a quiet machine). For each thread count and tuner setting (ADAPT="1 0": the decode thread tuner
# of model/tune.c on, and off with K2C_ADAPT_THREADS=0), rounds alternate quiet and busy runs of `k2c bench`
# (wall-clock decode tok/s); "busy" runs BUSY (default 1) CPU-bound processes beside it (sha256sum of /dev/zero:
# pure integer work, no I/O). Prints one line per run and a median per case.
#   bash bench/contention.sh [MODEL]     THREADS="1 2" ADAPT="1 0" ROUNDS=5 GEN=2000 BUSY=1 K2C=build/k2c
set -euo pipefail
cd "$(dirname "$0")/.."
M=${1:-models/k2-mini}
K2C=${K2C:-build/k2c}
[ -x "$K2C" ] || make -s build/k2c
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
run() { K2C_ADAPT_THREADS=$2 "$K2C" bench --model "$M" --prompt 16 --gen "${GEN:-2000}" --threads "$1" --json 2>/dev/null |
        sed -n 's/.*"decode_tok_s":\([0-9.]*\).*/\1/p'; }
echo "cpu: $(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cores; model $M; busy = ${BUSY:-1} x sha256sum /dev/zero"
for t in ${THREADS:-1 2}; do
  for ad in ${ADAPT:-1 0}; do
    [ "$t" = 1 ] && [ "$ad" = 0 ] && continue          # one thread: nothing to tune
    q=(); b=()
    for r in $(seq "${ROUNDS:-5}"); do
        q+=("$(run "$t" "$ad")")
        pids=()
        for _ in $(seq "${BUSY:-1}"); do sha256sum /dev/zero > /dev/null & pids+=($!); done
        sleep 0.3
        b+=("$(run "$t" "$ad")")
        kill "${pids[@]}" 2>/dev/null; wait "${pids[@]}" 2>/dev/null || true
        echo "threads $t tuner $ad round $r: quiet ${q[-1]} tok/s, busy ${b[-1]} tok/s"
    done
    mq=$(printf '%s\n' "${q[@]}" | median); mb=$(printf '%s\n' "${b[@]}" | median)
    echo "threads $t tuner $ad: median quiet $mq tok/s, busy $mb tok/s -> busy is $(awk -v a="$mq" -v b="$mb" 'BEGIN {printf "%.2f", a / b}')x slower"
  done
done
