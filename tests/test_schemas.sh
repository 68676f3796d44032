# JSON Schema coverage, checked by an independent validator (ajv + ajv-formats, "full" format checks):
#  1. random walks through the compiled grammar of every schema in tests/data/schemas (81 tool schemas
#     of the official MCP servers, collected by scripts/collect-mcp-schemas.cjs, and keyword schemas in
#     the pydantic / zod / draft-07 styles), closed early at random points: every text validates;
#  2. `k2c serve` with a random-weight model: forced tool calls and response_format answers for every
#     schema, temperature 1, several seeds and budgets: every answer validates; warnings and 400s.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"
need_npm openai ajv ajv-formats
T="${K2C_TESTS:-build/tests}"
for suite in mcp keywords; do
  : >"$TMP/walk_$suite.jsonl"
  for seed in 1 2 3; do "$T/test_grammar" --walk "tests/data/schemas/$suite.json" 40 "$seed" >>"$TMP/walk_$suite.jsonl" || fail "schema_walks_$suite" "walker exit $?"; done
  if node tests/schema_check.cjs "$NPM" "tests/data/schemas/$suite.json" "$TMP/walk_$suite.jsonl" >"$TMP/check_$suite.txt" 2>&1; then
    pass "schema_walks_$suite"; tail -1 "$TMP/check_$suite.txt" | sed 's/^/  /'
  else fail "schema_walks_$suite" "$(grep -m5 FAIL "$TMP/check_$suite.txt"; tail -1 "$TMP/check_$suite.txt")"; fi
done
M="$TMP/model"
make_model "$M"
start_server "$TMP/server.log" --model "$M" --parallel 8 --ctx 2048 --threads 2 --api-key sekret --max-body 1048576 --timeout 60
# 5 seeds per schema; 2 under the sanitizers (the same code paths, at a tenth of the speed)
run_checker schema_e2e timeout 600 node tests/schema_e2e.cjs "$NPM" "http://127.0.0.1:$PORT" sekret "$([ -n "${K2C_SANITIZE:-}" ] && echo 2 || echo 5)" tests/data/schemas/mcp.json tests/data/schemas/keywords.json
grep -q "schema keywords not enforced exactly" "$TMP/server.log" && pass schema_warning_logged || fail schema_warning_logged "no warning in the server log"
kill -0 "$SERVER_PID" 2>/dev/null && pass schema_server_alive || fail schema_server_alive "$(tail -5 "$TMP/server.log")"
stop_server
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP/server.log"; then fail schema_server_clean_exit "$(grep -m3 'ERROR\|runtime error\|Leak' "$TMP/server.log")"; else pass schema_server_clean_exit; fi
