#!/usr/bin/env bash
# Server benchmark (docs/BENCHMARKS.md, "Server"): aggregate streaming decode tokens/s at 1, 4 and 16
# concurrent clients on a random-weight model bigger than k2-tiny (hidden 768, 4 layers, 16 experts top 4,
# MLA with kv_lora 128), plus decode tokens/s with and without constrained decoding (k2c genbench).
# Loopback only; every client run has a fixed request count and a timeout; the server is always killed.
#   bash bench/server.sh            (THREADS=N to pin the model's threads; default: all cores)
set -e
cd "$(dirname "$0")/.."
K2C="${K2C:-build/k2c}"
NPM=build/npm
W="${BENCH_DIR:-build/bench-server}"
THREADS="${THREADS:-0}"
mkdir -p "$W"
[ -f "$NPM/node_modules/openai/package.json" ] || npm install --no-save --no-audit --no-fund --prefix "$NPM" openai ajv @modelcontextprotocol/server-filesystem >/dev/null 2>&1
W="$W" K2C="$K2C" bash bench/server_model.sh
bash bench/machine.sh
"$K2C" info --model "$W/model" | head -5
PORT=$((20000 + RANDOM % 20000))
"$K2C" serve --model "$W/model" --host 127.0.0.1 --port "$PORT" --parallel 16 --ctx 1024 --threads "$THREADS" --api-key bench >"$W/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; wait $PID 2>/dev/null' EXIT
for i in $(seq 1 100); do curl -s -m 1 "http://127.0.0.1:$PORT/health" | grep -q ok && break; sleep 0.1; done
echo "cores: $(nproc), model threads: $THREADS (0 = all)"
for c in 1 4 16; do
  timeout 300 node tests/server_load.cjs bench "http://127.0.0.1:$PORT" bench "$c" $((c * 2)) 128 >/dev/null   # warm-up
  echo -n "clients $c: "
  timeout 300 node tests/server_load.cjs bench "http://127.0.0.1:$PORT" bench "$c" $((c * 4)) 128
done
echo -n "clients 16, json_schema: "
timeout 300 node tests/server_load.cjs bench "http://127.0.0.1:$PORT" bench 16 64 128 schema
kill $PID; wait $PID 2>/dev/null || true
trap - EXIT
echo -n "genbench (1 generation, free vs constrained): "
"$K2C" genbench --model "$W/model" --tokens 512 --threads "$THREADS"
