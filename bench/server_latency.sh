#!/usr/bin/env bash
# Latency under load (docs/BENCHMARKS.md "Server latency under a long prompt"; issue 15 point 4): time to first
# token and inter-token latency (p50, p99) of 1, 4 and 16 streaming clients with mixed prompt lengths, then the
# same while a ~4,000-token prompt arrives (bench/server_latency.cjs), against a server that batches 16-token
# prompt chunks with its decode steps (--prefill-chunk 16, the default), one with 64-token chunks and one that
# prefills whole prompts (--prefill-chunk -1) (CHUNKS="..." picks others). 17 slots: the long prompt
# never waits for a free one. Model: bench/server_model.sh's. Loopback only; the servers are always killed.
#   bash bench/server_latency.sh           (THREADS=N pins the model's threads; default: all cores)
set -e
cd "$(dirname "$0")/.."
K2C="${K2C:-build/k2c}"
W="${BENCH_DIR:-build/bench-server}"
THREADS="${THREADS:-0}"
LONG_WORDS="${LONG_WORDS:-1500}"      # 1,500 words of the script's vocabulary: 4,0xx tokens of this model's BPE
W="$W" K2C="$K2C" bash bench/server_model.sh
bash bench/machine.sh
echo "long prompt: $(node -e 'const w=(n,s)=>Array.from({length:n},(_,i)=>"w"+((i*7+s)%101)).join(" ");process.stdout.write(w(+process.argv[1],999))' "$LONG_WORDS" | "$K2C" encode --tokenizer "$W/model" | wc -w) tokens"
PID=
trap '[ -n "$PID" ] && kill $PID 2>/dev/null; wait 2>/dev/null' EXIT
for chunk in ${CHUNKS:-16 64 -1}; do
  PORT=$((20000 + RANDOM % 20000))
  "$K2C" serve --model "$W/model" --host 127.0.0.1 --port "$PORT" --parallel 17 --ctx 4096 --threads "$THREADS" \
    --prefill-chunk "$chunk" --api-key bench >"$W/latency-$chunk.log" 2>&1 &
  PID=$!
  for i in $(seq 1 100); do curl -s -m 1 "http://127.0.0.1:$PORT/health" | grep -q ok && break; sleep 0.1; done
  echo "== --prefill-chunk $chunk"
  for c in 1 4 16; do timeout 600 node bench/server_latency.cjs "http://127.0.0.1:$PORT" bench "$c" "$LONG_WORDS"; done
  kill $PID; wait $PID 2>/dev/null || true
  PID=
done
