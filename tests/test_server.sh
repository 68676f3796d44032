# `k2c serve` end to end: the official openai npm client (non-streaming, streaming, tools, json_schema,
# completions, errors), 200 forced tool calls validated by ajv, then a bounded load + fuzz run
# (tests/server_load.cjs): 16 concurrent streaming clients, disconnects, malformed bodies; after it no
# slot is busy, the queue is empty, the server is alive and its RSS did not grow. Loopback only.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"
need_npm openai ajv
M="$TMP/model"
make_model "$M"
start_server "$TMP/server.log" --model "$M" --parallel 8 --ctx 2048 --threads 2 --api-key sekret --max-body 65536 --timeout 60
run_checker server_e2e timeout 300 node tests/server_e2e.cjs "$NPM" "http://127.0.0.1:$PORT" sekret
run_checker params_e2e timeout 300 node tests/params_e2e.cjs "$NPM" "http://127.0.0.1:$PORT" sekret
if grep -q "ERROR: AddressSanitizer\|runtime error:" "$TMP/server.log"; then fail server_sanitizer "$(grep -m3 'ERROR\|runtime error' "$TMP/server.log")"; fi
kill -0 "$SERVER_PID" 2>/dev/null && pass server_alive_after_e2e || fail server_alive_after_e2e "$(tail -5 "$TMP/server.log")"
stop_server
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP/server.log"; then fail server_clean_exit "$(grep -m3 'ERROR\|runtime error\|Leak' "$TMP/server.log")"; else pass server_clean_exit; fi

# Load + fuzz on a fresh server (16 slots, so 16 streams decode in one batch).
start_server "$TMP/server2.log" --model "$M" --parallel 16 --ctx 1024 --threads 2 --api-key sekret --max-body 65536 --timeout 60
rss() { awk '/VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
timeout 120 node tests/server_load.cjs bench "http://127.0.0.1:$PORT" sekret 16 16 24 >/dev/null   # warm-up: every slot used once
rss0=$(rss)
run_checker server_load timeout 300 node tests/server_load.cjs load "http://127.0.0.1:$PORT" sekret
timeout 120 node tests/server_load.cjs load "http://127.0.0.1:$PORT" sekret >/dev/null   # a second round: memory must not keep growing
rss1=$(rss)
echo "  server RSS before $rss0 kB, after two load rounds $rss1 kB"
if [ -n "${K2C_SANITIZE:-}" ]; then skip server_rss_flat "sanitizer build: ASan's quarantine grows RSS by design (leaks are checked at exit)"
elif [ -z "$rss0" ] || [ -z "$rss1" ]; then fail server_rss_flat "no RSS reading ('$rss0', '$rss1')"
elif [ "$rss1" -le $((rss0 + rss0 / 5 + 8192)) ]; then pass server_rss_flat; else fail server_rss_flat "RSS $rss0 -> $rss1 kB"; fi
kill -0 "$SERVER_PID" 2>/dev/null && pass server_alive_after_load || fail server_alive_after_load "$(tail -5 "$TMP/server2.log")"
stop_server
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP/server2.log"; then fail server2_clean_exit "$(grep -m3 'ERROR\|runtime error\|Leak' "$TMP/server2.log")"; else pass server2_clean_exit; fi

# Continuous batching: a long prompt is prefilled in chunks between the decode steps of running streams.
start_server "$TMP/server3.log" --model "$M" --parallel 4 --ctx 2048 --threads 2 --api-key sekret --timeout 60 --prefill-chunk 64
run_checker continuous_batching timeout 120 node tests/batching_e2e.cjs "http://127.0.0.1:$PORT" sekret 64
stop_server
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP/server3.log"; then fail server3_clean_exit "$(grep -m3 'ERROR\|runtime error\|Leak' "$TMP/server3.log")"; else pass server3_clean_exit; fi
