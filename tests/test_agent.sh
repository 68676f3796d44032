# `k2c agent` against the official filesystem MCP server from npm: its tools are listed and declared to
# the model, the model's calls (schema-valid, checked by ajv) reach the server, the results (errors
# included) go back, turn after turn, and the loop ends at the turn limit (tool_choice required) or at
# an answer (auto). A random-weight model cannot solve tasks; this checks the mechanics.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"
need_npm ajv @modelcontextprotocol/server-filesystem
M="$TMP/model"
make_model "$M"
WD="$TMP/work"; mkdir -p "$WD/docs"; echo "hello" >"$WD/docs/a.txt"; echo "1,2,3" >"$WD/data.csv"
FS="node $NPM/node_modules/@modelcontextprotocol/server-filesystem/dist/index.js $WD"
if timeout 240 "$K2C" agent --model "$M" --threads 1 --ctx 8192 --tools none --mcp "$FS" --max-turns 3 --max-tokens 48 \
     --tool-choice required --seed 3 --transcript "$TMP/t1.json" "List the files in the project" >"$TMP/a1.out" 2>"$TMP/a1.err"; then
  grep -q "no answer within 3 turns" "$TMP/a1.out" && pass agent_mcp_runs || fail agent_mcp_runs "$(cat "$TMP/a1.out")"
  run_checker agent_check_required node tests/agent_check.cjs "$NPM" "$TMP/t1.json" required 3 list_directory
else fail agent_mcp_runs "exit $?: $(tail -5 "$TMP/a1.err")"; fi
# built-in tools + MCP together, auto: the loop ends at the model's answer (or the turn limit)
if timeout 240 "$K2C" agent --model "$M" --threads 1 --tools builtin --workdir "$WD" --mcp "$FS" --max-turns 4 --max-tokens 32 \
     --seed 5 --transcript "$TMP/t2.json" "What is 6*7?" >"$TMP/a2.out" 2>"$TMP/a2.err"; then
  pass agent_auto_runs
  run_checker agent_check_auto node tests/agent_check.cjs "$NPM" "$TMP/t2.json" auto 4 calculator
else fail agent_auto_runs "exit $?: $(tail -5 "$TMP/a2.err")"; fi
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP/a1.err" "$TMP/a2.err"; then fail agent_sanitizer "$(grep -m3 'ERROR\|runtime error' "$TMP/a1.err" "$TMP/a2.err")"; fi
