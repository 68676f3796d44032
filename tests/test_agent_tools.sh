# `k2c agent` with the built-in groups, from the command line: the write gate (--allow-write needs a named
# --workdir; write_file is not declared without it), bad --tools names, and the transcript (valid JSON with
# tools, messages, turns, finish and the environment's state; rewritten as the run goes), and every call the
# constrained decoder produced validates against its tool's schema (enums, lengths, integer ranges). A random-weight
# model is used: this checks the mechanics, not the answers.
source "$(dirname "$0")/lib.sh"
M=models/k2-mini
[ -f "$M/model.safetensors" ] || { skip agent_tools_cli "no models/k2-mini"; exit 0; }
WD="$TMP/work"; mkdir -p "$WD"
expect_fail agent_allow_write_needs_workdir "needs --workdir" "$K2C" agent --model "$M" --allow-write "hi"
expect_fail agent_bad_tool_group "unknown group 'bogus'" "$K2C" agent --model "$M" --tools calculator,bogus "hi"
expect_fail agent_missing_workdir "working directory $TMP/nope" "$K2C" agent --model "$M" --workdir "$TMP/nope" --allow-write "hi"
run_agent() {  # NAME TRANSCRIPT ARGS...
  local name="$1" tr="$2"; shift 2
  if timeout 240 "$K2C" agent --model "$M" --threads 1 --max-turns 2 --max-tokens 48 --tool-choice required --seed 3 \
       --transcript "$tr" "$@" >"$TMP/$name.out" 2>"$TMP/$name.err"; then pass "$name"
  else fail "$name" "exit $?: $(tail -3 "$TMP/$name.err")"; fi
}
run_agent agent_travel_runs "$TMP/t1.json" --tools travel "Book a flight from HAN to DAD on 2026-06-12 for two"
if command -v python3 >/dev/null; then
  python3 - "$TMP/t1.json" 2>"$TMP/py.err" <<'PY' && pass agent_transcript_shape || fail agent_transcript_shape "$(cat "$TMP/py.err" 2>/dev/null)"
import json, sys
t = json.load(open(sys.argv[1]))
names = [d["function"]["name"] for d in t["tools"]]
assert names == ["search_flights", "book_flight", "search_hotels", "book_hotel"], names
assert t["finish"] == "max_turns" and t["turns"] == 2, (t["finish"], t["turns"])
roles = [m["role"] for m in t["messages"]]
assert roles[0] == "user" and roles.count("assistant") == 2 and "tool" in roles, roles
decl = {d["function"]["name"]: d["function"]["parameters"] for d in t["tools"]}
def valid(v, s, where):   # the subset of JSON Schema the declarations use
    ty = s.get("type")
    if ty == "object":
        assert isinstance(v, dict), where
        for k in s.get("required", []): assert k in v, f"{where}: missing {k}"
        for k, x in v.items():
            assert k in s["properties"], f"{where}: unknown {k}"
            valid(x, s["properties"][k], f"{where}.{k}")
    elif ty == "string":
        assert isinstance(v, str), where
        assert len(v) >= s.get("minLength", 0) and len(v) <= s.get("maxLength", 1 << 30), f"{where}: length {len(v)}"
        if "enum" in s: assert v in s["enum"], f"{where}: {v} not in enum"
    elif ty == "integer":
        assert isinstance(v, int) and not isinstance(v, bool), where
        assert s.get("minimum", -1e300) <= v <= s.get("maximum", 1e300), f"{where}: {v} out of range"
    elif ty == "number": assert isinstance(v, (int, float)) and not isinstance(v, bool), where
    elif ty == "boolean": assert isinstance(v, bool), where
calls = 0
for m in t["messages"]:
    for c in m.get("tool_calls", []):
        valid(json.loads(c["function"]["arguments"]), decl[c["function"]["name"]], c["function"]["name"])
        calls += 1
assert calls >= 2, calls                                  # tool_choice required: a call every turn
assert "bookings" in t["state"] and "spent" in t["state"], t["state"]
PY
else skip agent_transcript_shape "no python3"; fi
# without --allow-write the file tools are read-only: write_file is not even declared
run_agent agent_readonly_runs "$TMP/t2.json" --tools builtin --workdir "$WD" "Write hello to a.txt"
if grep -q '"read_file"' "$TMP/t2.json" && ! grep -q '"write_file"' "$TMP/t2.json"; then pass agent_write_not_declared
else fail agent_write_not_declared "$(head -c 400 "$TMP/t2.json")"; fi
run_agent agent_allow_write_runs "$TMP/t3.json" --tools files --workdir "$WD" --allow-write "Write hello to a.txt"
grep -q '"write_file"' "$TMP/t3.json" && pass agent_write_declared || fail agent_write_declared "$(head -c 400 "$TMP/t3.json")"
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP"/*.err; then fail agent_tools_sanitizer "$(grep -m3 'ERROR\|runtime error' "$TMP"/*.err)"; fi
