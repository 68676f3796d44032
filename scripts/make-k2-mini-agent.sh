#!/usr/bin/env bash
# Post-trains models/k2-mini into an agent: synthetic tool tasks (k2c synth), SFT with a loss mask on their
# reference trajectories mixed with plain text (k2c data sft + k2c train), RL with verifiable rewards
# (k2c rl), and the held-out evaluation of the base, SFT and RL models (k2c eval-agent). Prints each stage's
# time. Sizes come from the environment so a short run and a full one are the same script:
#   K2C_AGENT_TASKS (training tasks, default 6000), K2C_AGENT_HELDOUT (400), K2C_AGENT_CATEGORIES (all),
#   K2C_AGENT_SFT_STEPS (3000), K2C_AGENT_SEQ (2048), K2C_AGENT_BATCH (4), K2C_AGENT_RL_STEPS (200),
#   K2C_AGENT_OUT (build/k2-mini-agent/final; `make k2-mini-agent` ships it as models/k2-mini-agent).
set -euo pipefail
cd "$(dirname "$0")/.."
K2C=${K2C:-build/k2c}
W=build/k2-mini-agent
BASE=${K2C_AGENT_BASE:-models/k2-mini}
NT=${K2C_AGENT_TASKS:-6000}; NH=${K2C_AGENT_HELDOUT:-400}; CATS=${K2C_AGENT_CATEGORIES:-}
SFT_STEPS=${K2C_AGENT_SFT_STEPS:-3000}; SEQ=${K2C_AGENT_SEQ:-2048}; BATCH=${K2C_AGENT_BATCH:-4}
RL_STEPS=${K2C_AGENT_RL_STEPS:-200}; OUT=${K2C_AGENT_OUT:-$W/final}
t0=$(date +%s)
stage() { echo "== $1 ($(( $(date +%s) - t0 )) s so far)" >&2; }
cat_arg=(); [ -n "$CATS" ] && cat_arg=(--categories "$CATS")
mkdir -p "$W"

stage "synth: $NT training tasks, $NH held-out tasks (templates never used in training)"
$K2C synth --n "$NT" --seed 1 --split train "${cat_arg[@]}" --out "$W/train.jsonl"
$K2C synth --n "$NH" --seed 2 --split heldout "${cat_arg[@]}" --out "$W/heldout.jsonl"

stage "sft data: assistant tokens carry loss; plain text keeps the English"
text=README.md; [ -f build/k2-mini/plain.txt ] && text=build/k2-mini/plain.txt
$K2C data sft --tokenizer "$BASE" --out "$W/sft" --val-fraction 0.02 "$W/train.jsonl" --text "$text"

stage "sft: $SFT_STEPS steps from $BASE"
rm -rf "$W/sft-run"
$K2C train --init "$BASE" --data "$W/sft" --out "$W/sft-run" --steps "$SFT_STEPS" --batch "$BATCH" --seq "$SEQ" \
  --optimizer muonclip --lr 0.003 --schedule wsd --warmup 20 --decay-frac 0.3 --wd 0.0 --tau 100 --save-every 100 \
  --eval-every 100 --eval-batches 4 --dtype bf16 --log "$W/sft-run/log.jsonl"
SFT="$W/sft-run/$(cat "$W/sft-run/LATEST")"
cp "$BASE/tiktoken.model" "$BASE/tokenizer_config.json" "$SFT/"

stage "rl: $RL_STEPS steps, K=4, PTX on the SFT mixture"
rm -rf "$W/rl-run"
$K2C rl --init "$SFT" --tasks "$W/train.jsonl" --out "$W/rl-run" --steps "$RL_STEPS" --tasks-per-step 4 --k 4 \
  --tau 0.1 --lr 3e-4 --temp-start 1.0 --temp-end 0.3 --ptx-data "$W/sft" --ptx-weight 0.1 --ptx-seq 512 \
  --max-turns 5 --max-tokens 128 --ctx 2048 --save-every 20 --dtype bf16
RL="$W/rl-run/$(cat "$W/rl-run/LATEST")"

for m in base sft rl; do
  dir=$BASE; [ $m = sft ] && dir=$SFT; [ $m = rl ] && dir=$RL
  stage "eval-agent: $m on the held-out split"
  $K2C eval-agent --model "$dir" --tasks "$W/heldout.jsonl" --split heldout --out "$W/eval-$m.jsonl" | tee "$W/eval-$m.txt"
done

stage "package: $OUT"
mkdir -p "$OUT"
cp "$RL/config.json" "$RL/model.safetensors" "$RL/tiktoken.model" "$RL/tokenizer_config.json" "$OUT/"
cp "$W/sft-run/log.jsonl" "$OUT/sft_log.jsonl"; cp "$W/rl-run/rl.jsonl" "$OUT/rl_log.jsonl"
du -sh "$OUT"
stage "done"
