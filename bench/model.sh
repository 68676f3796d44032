#!/usr/bin/env bash
# Model-core benchmark of docs/BENCHMARKS.md: a Moonlight-16B-A3B-shaped BF16 checkpoint made by mkmodel
# (27 layers, q_proj, 16 routed experts top-6 + 2 shared, vocab 163840: 5.16B parameters, 9.7 GB),
# decode at 1 and 2 threads, prefill of 128- and 512-token prompts (fp32 inputs; once more with BF16 dot
# products where the CPU has AVX512-BF16).
# Usage: bash bench/model.sh [MODEL_DIR]   (the model is generated there once; about 45 s and 10 GB of disk)
set -euo pipefail
cd "$(dirname "$0")/.."
K2C=${K2C:-build/k2c}
M=${1:-build/bench/moonlight-shape-bf16}
if [ ! -f "$M/config.json" ]; then
  mkdir -p "$(dirname "$M")"
  $K2C mkmodel --preset moonlight-16b-a3b --experts 16 --experts-per-tok 6 --dtype bf16 --shards 4 --out "$M"
fi
bash bench/machine.sh
$K2C info --model "$M"
for t in 1 2; do
  echo "== decode, $t thread(s)"
  $K2C bench --model "$M" --threads $t --prompt 16 --gen 32
done
for p in 128 512; do
  echo "== prefill $p tokens, 2 threads"
  $K2C bench --model "$M" --threads 2 --prompt $p --gen 4
done
echo "== prefill 128 tokens, 2 threads, BF16-rounded inputs (K2C_PROMPT_PRECISION=bf16: AVX512-BF16 dot products)"
K2C_PROMPT_PRECISION=bf16 $K2C bench --model "$M" --threads 2 --prompt 128 --gen 4
echo "== decode with the weights memory-mapped instead of copied to huge pages, 2 threads"
$K2C bench --model "$M" --threads 2 --prompt 16 --gen 32 --load mmap
