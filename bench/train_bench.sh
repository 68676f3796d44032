#!/usr/bin/env bash
# Training throughput of k2c train next to PyTorch (Debian python3-torch, CPU) on the same ~10M-parameter
# K2-shaped model (bench/model10m.json: MLA with q_lora, 1 dense + 4 MoE layers of 16 experts top-4 + 1 shared,
# vocab 4096), same batch, sequence length and threads, random tokens. Also the share of the machine's
# measured fp32 peak (best OpenBLAS sgemm n=2048 at the same thread count).
#   THREADS=2 BATCH=8 SEQ=128 STEPS=10 bash bench/train_bench.sh
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
echo "machine: $(nproc) cores, $TH threads; sgemm peak $PEAK GFLOP/s; model $(python3 -c 'print(1)' >/dev/null; echo bench/model10m.json); batch $B x $T"
for opt in adamw muonclip; do
  build/k2c train --config bench/model10m.json --data "$W/data" --out "$W/run-$opt" --steps $((STEPS + 2)) --batch "$B" \
    --seq "$T" --threads "$TH" --optimizer "$opt" --lr 1e-3 --quiet 2>/dev/null
  R=$(rate "$W/run-$opt/train.jsonl")
  printf 'k2c train (%s): %s tokens/s, %.1f%% of peak\n' "$opt" "$R" "$(python3 -c "print(100 * $R * $FLOPS / ($PEAK * 1e9))")"
  eval "R_$opt=$R"
done
# the same AdamW run with OpenMP threads spinning between parallel regions instead of sleeping (a step has
# hundreds of short regions; on a VM each sleep/wake goes through the hypervisor)
OMP_WAIT_POLICY=active build/k2c train --config bench/model10m.json --data "$W/data" --out "$W/run-spin" \
  --steps $((STEPS + 2)) --batch "$B" --seq "$T" --threads "$TH" --optimizer adamw --lr 1e-3 --quiet 2>/dev/null
printf 'k2c train (adamw, OMP_WAIT_POLICY=active): %s tokens/s\n' "$(rate "$W/run-spin/train.jsonl")"
TOUT=$(/usr/bin/python3 bench/train_torch.py bench/model10m.json --batch "$B" --seq "$T" --threads "$TH" --steps "$STEPS" --warmup 2)
TR=$(echo "$TOUT" | sed -E 's/.* ([0-9.]+) tokens\/s/\1/')
echo "PyTorch (AdamW): $TOUT"
printf 'k2c / PyTorch (both AdamW): %.1fx;  k2c MuonClip / PyTorch AdamW: %.1fx;  training FLOPs per token %.3g\n' \
  "$(python3 -c "print($R_adamw / $TR)")" "$(python3 -c "print($R_muonclip / $TR)")" "$FLOPS"
