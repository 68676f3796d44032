#!/usr/bin/env bash
# Expert-parallel inference and data-parallel training over MPI ranks on one machine (docs/BENCHMARKS.md "Scaling
# out", docs/SCALING.md). Ranks talk over shared memory (tests/mpi_env.sh's settings).
#   inference: the Moonlight-shaped model of bench/model.sh (generated there once): decode and 128-token prefill
#              at 1 process x 2 threads, 1 rank x 1 thread, 2 ranks x 1 thread (rank 0 logs the exchanges' cost)
#   training:  bench/model10m.json, batch 8 x 128, MuonClip: seconds per step at 1 and 2 ranks x 1 thread, and
#              1 process x 2 threads
# Usage: bash bench/mpi.sh [MODEL_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
K2C=${K2C:-build/k2c}
M=${1:-build/bench/moonlight-shape-bf16}
. tests/mpi_env.sh
if [ ! -f "$M/config.json" ]; then
  mkdir -p "$(dirname "$M")"
  $K2C mkmodel --preset moonlight-16b-a3b --experts 16 --experts-per-tok 6 --dtype bf16 --shards 4 --out "$M"
fi
bash bench/machine.sh
export OMP_WAIT_POLICY=passive       # ranks share the cores: spinning OpenMP workers would steal them
# ranks map the weights (--load auto means mmap under expert parallelism: each rank touches only its experts'
# pages); "1 1 mmap" is one process the same way, next to the copied-into-huge-pages default
for run in "1 2 auto" "1 1 auto" "1 1 mmap" "2 1 auto"; do
  set -- $run
  echo "== $1 rank(s) x $2 thread(s), --load $3: bench --prompt 16 --gen 32, --prefill-list 128"
  if [ "$1" = 1 ]; then $K2C bench --model "$M" --threads "$2" --load "$3" --prompt 16 --gen 32 --prefill-list 128
  else $MPIRUN -n "$1" -x OMP_WAIT_POLICY $K2C bench --model "$M" --threads "$2" --load "$3" --prompt 16 --gen 32 --prefill-list 128; fi
done
W=build/bench-mpi; mkdir -p "$W"
awk 'BEGIN { srand(1); for (i = 0; i < 400000; i++) printf "%d ", int(rand() * 4096) }' >"$W/ids.txt"
$K2C data prepare --ids-file "$W/ids.txt" --out "$W/data" --val-fraction 0 >/dev/null
step_s() {  # seconds per step over the steps after the first two (warm-up)
  python3 -c 'import json,sys; r=[json.loads(l) for l in open(sys.argv[1])]; print("%.3f" % ((r[-1]["time"]-r[1]["time"])/(len(r)-2)))' "$1"
}
tr="--config bench/model10m.json --data $W/data --steps 12 --batch 8 --seq 128 --optimizer muonclip --lr 1e-3 --quiet"
rm -rf "$W"/t*
$K2C train $tr --threads 2 --out "$W/t1x2" 2>/dev/null; echo "== train, 1 process x 2 threads: $(step_s "$W/t1x2/train.jsonl") s/step"
$K2C train $tr --threads 1 --out "$W/t1x1" 2>/dev/null; echo "== train, 1 rank x 1 thread: $(step_s "$W/t1x1/train.jsonl") s/step"
$MPIRUN -n 2 -x OMP_WAIT_POLICY $K2C train $tr --threads 1 --out "$W/t2x1" 2>/dev/null
echo "== train, 2 ranks x 1 thread: $(step_s "$W/t2x1/train.jsonl") s/step"
