#!/usr/bin/env bash
# The server benchmarks' model (bench/server.sh, bench/server_latency.sh), made once under $W/model: a random-weight
# checkpoint bigger than k2-tiny (hidden 768, 4 layers: 1 dense + 3 MoE, 8 heads, MLA with q_lora 384 / kv_lora 128,
# 16 routed experts top 4 + 1 shared, 4,096-token BPE + Kimi's 256 specials, BF16, 4,096 positions).
#   W=DIR K2C=build/k2c bash bench/server_model.sh
set -e
cd "$(dirname "$0")/.."
K2C="${K2C:-build/k2c}"
W="${W:-build/bench-server}"
mkdir -p "$W"
[ -f "$W/model/model.safetensors" ] && exit 0
mkdir -p "$W/model"
"$K2C" tokenizer train --vocab 4096 --out "$W/model" tests/data/tokenizer_corpus.txt >/dev/null
"$K2C" mkmodel --preset k2-tiny --vocab 4352 --out "$W/tiny" >/dev/null
node -e '
  const fs = require("fs"); const c = JSON.parse(fs.readFileSync(process.argv[1] + "/config.json"));
  Object.assign(c, { hidden_size: 768, intermediate_size: 2048, moe_intermediate_size: 512, num_hidden_layers: 4,
    num_attention_heads: 8, num_key_value_heads: 8, q_lora_rank: 384, kv_lora_rank: 128, qk_nope_head_dim: 64,
    qk_rope_head_dim: 32, v_head_dim: 64, max_position_embeddings: 4096, vocab_size: 4352 });
  c.rope_scaling.original_max_position_embeddings = 4096; c.rope_scaling.factor = 1.0;
  fs.writeFileSync(process.argv[2], JSON.stringify(c, null, 2));' "$W/tiny" "$W/bench-config.json"
"$K2C" mkmodel --config "$W/bench-config.json" --dtype bf16 --out "$W/model" >/dev/null
