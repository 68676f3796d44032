#!/usr/bin/env bash
# Long context on a Kimi-K2-shaped model (issue 14, third "done when"): the first 3 layers of Kimi-K2 at full width
# (layer 0 dense, layers 1-2 MoE with 384 experts, the real vocabulary of 163840), routed experts INT4 and the rest
# BF16 as Kimi-K2-Thinking stores them. Per layer and token: attention time at each depth with the cache bytes it
# reads, next to its bandwidth bound (attention weights + cache at that depth, over the measured read bandwidth);
# prefill tok/s of a long prompt with the peak RSS; and the projected decode of the whole 61-layer model at each
# depth next to a bandwidth model (active weight bytes + cache bytes over the measured bandwidth).
#
# Sizes (why these choices): the 3-layer model is about 24 GB on disk (two MoE layers of 384 INT4 experts, 9 GB
# each, and 4.7 GB of embedding + head); it is opened with --load mmap, so a decode step touches only its chosen
# experts and RSS stays near the active bytes plus the cache (BF16: 151 MB per layer at 128k, 3 layers 0.45 GB).
# INT4 experts rather than BF16 (34 GB a layer) keep it on a 60 GB disk. The full run takes a few minutes of disk
# writes and, for the 32k prefill, on the order of 10 minutes on 2 cores.
#
# Every size is a variable, so a reduced run fits a busy machine: e.g.
#   EXPERTS=8 VOCAB=4096 DEPTHS="1024 4096" PROMPT=1024 bench/long.sh
# (the report prints what it ran with). Output: a table on stdout and the raw JSON lines in $OUT/long.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
EXPERTS=${EXPERTS:-384}
VOCAB=${VOCAB:-163840}
DEPTHS=${DEPTHS:-"1024 32768 131072"}
PROMPT=${PROMPT:-32768}
GEN=${GEN:-8}
THREADS=${THREADS:-2}
CACHE=${CACHE:-bf16}
MODEL=${MODEL:-build/bench/k2l3_e${EXPERTS}_v${VOCAB}}
K2C=${K2C:-build/k2c}
[ -x "$K2C" ] || make -j"$THREADS" build/k2c
mkdir -p "$(dirname "$MODEL")"
if [ ! -f "$MODEL/config.json" ]; then
    echo "writing $MODEL (Kimi-K2 shape, 3 layers, $EXPERTS experts, vocab $VOCAB, INT4 experts)" >&2
    "$K2C" mkmodel --preset kimi-k2 --layers 3 --experts "$EXPERTS" --vocab "$VOCAB" --dtype int4 --out "$MODEL"
fi
J="$MODEL/long.jsonl"
: >"$J"
maxd=0
for d in $DEPTHS; do [ "$d" -gt "$maxd" ] && maxd=$d; done
for d in $DEPTHS; do
    echo "decode at depth $d..." >&2
    "$K2C" bench --model "$MODEL" --load mmap --threads "$THREADS" --cache-type "$CACHE" --prompt 64 --gen "$GEN" --depth "$d" --json \
        | sed "s/^{/{\"kind\":\"decode\",/" >>"$J"
done
echo "prefill of $PROMPT tokens..." >&2
/usr/bin/time -f '{"kind":"rss","max_rss_kb":%M}' -o "$MODEL/rss.json" \
    "$K2C" bench --model "$MODEL" --load mmap --threads "$THREADS" --cache-type "$CACHE" --prompt "$PROMPT" --gen 1 --json \
    | sed "s/^{/{\"kind\":\"prefill\",/" >>"$J"
cat "$MODEL/rss.json" >>"$J"
python3 - "$MODEL/config.json" "$J" "$EXPERTS" "$VOCAB" "$CACHE" "$THREADS" <<'EOF'
import json, sys
cfg = json.load(open(sys.argv[1]))
rows = [json.loads(l) for l in open(sys.argv[2]) if l.strip()]
E, V, cache, threads = int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
D, H = cfg["hidden_size"], cfg["num_attention_heads"]
ql, r, dr = cfg["q_lora_rank"], cfg["kv_lora_rank"], cfg["qk_rope_head_dim"]
dn, dv, I, k = cfg["qk_nope_head_dim"], cfg["v_head_dim"], cfg["moe_intermediate_size"], cfg["num_experts_per_tok"]
ns = cfg.get("n_shared_experts", 1)
# bytes one decode step reads per layer: attention weights (BF16), one MoE FFN's chosen + shared experts (INT4 with a
# BF16 scale per 32 for the routed ones, BF16 shared), the router (BF16); the cache row (per format)
attn_w = 2 * (D * ql + ql * H * (dn + dr) + D * (r + dr) + r * H * (dn + dv) + H * dv * D)
moe_w = k * 3 * D * I * (0.5 + 2 / 32) + ns * 3 * D * I * 2 + E * D * 2
row = {"f32": 4 * (r + dr), "bf16": 2 * (r + dr), "q8_0": (r + dr) + 2 * -(-(r + dr) // 32)}[cache]
L_full = 61
dec = [x for x in rows if x["kind"] == "decode"]
pre = [x for x in rows if x["kind"] == "prefill"]
rss = [x for x in rows if x["kind"] == "rss"]
print(f"Kimi-K2 shape, 3 layers, {E} experts, vocab {V}, cache {cache}, {threads} threads")
print("| depth | attention ms / layer / token | cache MB read / layer | bandwidth bound ms | measured / bound | 3-layer decode tok/s | projected 61-layer tok/s | bandwidth model 61-layer tok/s |")
print("|---|---|---|---|---|---|---|---|")
for x in dec:
    d, bw = x["depth"], x["read_bandwidth_gb_s"] * 1e9
    a = x["attn_ms_per_layer_token"] / 1e3
    cmb = x["cache_mb_per_layer_token"]
    bound = (attn_w + cmb * 1e6) / bw
    t3 = 1 / x["decode_tok_s"]
    w3 = x["decode_gb_per_token"] * 1e9           # the 3-layer model's weight bytes per step (head included)
    other = max(t3 - 3 * a, 0)                     # FFNs, head, embedding: bandwidth-bound, scale by their bytes
    w_other3 = w3 - 3 * attn_w
    w_other61 = w_other3 + (L_full - 3) * moe_w
    t61 = L_full * a + other * w_other61 / w_other3
    bw61 = (w3 + (L_full - 3) * (attn_w + moe_w) + L_full * cmb * 1e6) / bw
    print(f"| {d} | {a * 1e3:.3f} | {cmb:.2f} | {bound * 1e3:.3f} | {a / bound:.2f} | {1 / t3:.3f} | {1 / t61:.4f} | {1 / bw61:.4f} |")
for x in pre:
    print(f"prefill {x['prompt']} tokens: {x['prefill_tok_s']:.2f} tok/s", end="")
    if rss: print(f", peak RSS {rss[0]['max_rss_kb'] / 1e6:.2f} GB")
    else: print()
print(f"read bandwidth measured: {dec[0]['read_bandwidth_gb_s'] if dec else float('nan'):.1f} GB/s; attention weights "
      f"{attn_w / 1e6:.1f} MB per layer, active MoE FFN {moe_w / 1e6:.1f} MB per layer")
EOF
