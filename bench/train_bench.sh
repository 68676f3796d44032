#!/usr/bin/env bash
# Training throughput of k2c train next to PyTorch (Debian python3-torch, CPU) on the same ~10M-parameter
# K2-shaped model (bench/model10m.json: MLA with q_lora, 1 dense + 4 MoE layers of 16 experts top-4 + 1 shared,
# vocab 4096), same batch, sequence length and threads, random tokens. Also the share of the machine's
# measured fp32 peak (best OpenBLAS sgemm n=2048 at the same thread count).
#   THREADS=2 BATCH=8 SEQ=128 STEPS=10 REPEAT=2 bash bench/train_bench.sh
# AdamW on both sides, then MuonClip against the same Muon written in PyTorch (train_torch.py --optimizer muon).
set -euo pipefail
cd "$(dirname "$0")/.."
TH=${THREADS:-2}; B=${BATCH:-8}; T=${SEQ:-128}; STEPS=${STEPS:-10}
W=build/bench-train; mkdir -p "$W"
make -s all >/dev/null
if ! /usr/bin/python3 -c 'import torch' 2>/dev/null; then   # the PyTorch side: Debian's python3-torch
  SUDO=; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  echo "installing python3-torch (apt)..."
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-torch >/dev/null
fi
BL=/usr/lib/x86_64-linux-gnu/openblas-openmp
gcc -O2 -I/usr/include/x86_64-linux-gnu/openblas-openmp bench/sgemm_peak.c -L$BL -Wl,-rpath,$BL -lopenblas -o "$W/sgemm_peak"
PEAK=$("$W/sgemm_peak" "$TH")
awk 'BEGIN { srand(1); for (i = 0; i < 400000; i++) printf "%d ", int(rand() * 4096) }' >"$W/ids.txt"
build/k2c data prepare --ids-file "$W/ids.txt" --out "$W/data" --val-fraction 0 >/dev/null
# training FLOPs per token: 3 x forward (2 x active matmul weights + causal attention scores/values)
FLOPS=$(python3 - "$T" <<'PY'
import json, sys
c = json.load(open("bench/model10m.json")); T = int(sys.argv[1])
D, H, dn, dr, dv = c["hidden_size"], c["num_attention_heads"], c["qk_nope_head_dim"], c["qk_rope_head_dim"], c["v_head_dim"]
r, ql, V, L = c["kv_lora_rank"], c["q_lora_rank"], c["vocab_size"], c["num_hidden_layers"]
I, E, K = c["moe_intermediate_size"], c["n_routed_experts"], c["num_experts_per_tok"]
attn = D * ql + ql * H * (dn + dr) + D * (r + dr) + r * H * (dn + dv) + H * dv * D
w = V * D
for l in range(L):
    w += attn
    w += 3 * D * c["intermediate_size"] if l < c["first_k_dense_replace"] else D * E + (K + c["n_shared_experts"]) * 3 * D * I
score = L * 2 * H * (dn + dr + dv) * (T + 1) / 2
print(3 * (2 * w + score))
PY
)
rate() {  # tokens/s over the steps after the first two (warm-up), from the JSONL log
  python3 - "$1" <<'PY'
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
a, b = r[1], r[-1]
print(f"{(b['tokens'] - a['tokens']) / (b['time'] - a['time']):.0f}")
PY
}
bash bench/machine.sh
echo "machine: $(nproc) cores, $TH threads; sgemm peak $PEAK GFLOP/s; model bench/model10m.json; batch $B x $T"
best() { printf '%s\n' "$@" | sort -g | tail -1; }
k2c_rate() {  # $1 optimizer, $2 run name
  build/k2c train --config bench/model10m.json --data "$W/data" --out "$W/run-$2" --steps $((STEPS + 2)) --batch "$B" \
    --seq "$T" --threads "$TH" --optimizer "$1" --lr 1e-3 --quiet 2>/dev/null
  rate "$W/run-$2/train.jsonl"
}
torch_rate() {  # $1 optimizer
  /usr/bin/python3 bench/train_torch.py bench/model10m.json --batch "$B" --seq "$T" --threads "$TH" --steps "$STEPS" \
    --warmup 2 --optimizer "$1" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/'
}
# Each side runs REPEAT times (default 2), alternating, and keeps its best: a VM's speed drifts between runs.
REPEAT=${REPEAT:-2}
KA=(); KM=(); TA=(); TM=()
for ((i = 0; i < REPEAT; i++)); do
  KA+=("$(k2c_rate adamw adamw)"); TA+=("$(torch_rate adamw)")
  KM+=("$(k2c_rate muonclip muonclip)"); TM+=("$(torch_rate muon)")
done
R_adamw=$(best "${KA[@]}"); R_muonclip=$(best "${KM[@]}"); T_adamw=$(best "${TA[@]}"); T_muon=$(best "${TM[@]}")
pct() { python3 -c "print(f'{100 * $1 * $FLOPS / ($PEAK * 1e9):.1f}')"; }
echo "k2c train (adamw):    $R_adamw tokens/s (runs: ${KA[*]}), $(pct "$R_adamw")% of peak"
echo "k2c train (muonclip): $R_muonclip tokens/s (runs: ${KM[*]})"
echo "PyTorch (AdamW):      $T_adamw tokens/s (runs: ${TA[*]})"
echo "PyTorch (Muon):       $T_muon tokens/s (runs: ${TM[*]})"
printf 'k2c / PyTorch, AdamW: %.2fx;  k2c MuonClip / PyTorch Muon: %.2fx;  k2c MuonClip / PyTorch AdamW: %.2fx\n' \
  "$(python3 -c "print($R_adamw / $T_adamw)")" "$(python3 -c "print($R_muonclip / $T_muon)")" \
  "$(python3 -c "print($R_muonclip / $T_adamw)")"
echo "training FLOPs per token (forward + backward, without the optimizer): $FLOPS"
