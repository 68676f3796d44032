// Checks an agent transcript ({tools, messages, turns}): every tool call names a declared tool and its
// arguments validate (ajv) against that tool's schema, and every call got a tool message back.
// Usage: node tests/agent_check.cjs NPM_DIR TRANSCRIPT MODE(required|auto) MAX_TURNS MUST_HAVE_TOOL
const path = require("path");
const [npmDir, file, mode, maxTurns, mustTool] = process.argv.slice(2);
const Ajv = require(path.resolve(npmDir, "node_modules", "ajv")).default;
const t = JSON.parse(require("fs").readFileSync(file, "utf8"));
const ajv = new Ajv({ strict: false });
const fail = (n, w) => { console.log("FAIL " + n + ": " + w); process.exitCode = 1; };
const names = t.tools.map((x) => x.function.name);
if (!mustTool || !names.includes(mustTool)) fail("agent_tools_listed", "no " + mustTool + " in " + names.join(","));
else console.log("PASS agent_tools_listed (" + names.length + " tools)");
const schemas = Object.fromEntries(t.tools.map((x) => [x.function.name, ajv.compile(x.function.parameters || {})]));
let calls = 0, results = 0, errors = 0, bad = [];
const pending = new Set();
for (const m of t.messages) {
  if (m.role === "assistant") for (const c of m.tool_calls || []) {
    calls++; pending.add(c.id);
    const v = schemas[c.function.name];
    let a; try { a = JSON.parse(c.function.arguments); } catch (e) { bad.push("not JSON " + c.function.arguments); continue; }
    if (!v) bad.push("undeclared " + c.function.name); else if (!v(a)) bad.push(c.function.name + ": " + ajv.errorsText(v.errors));
  }
  if (m.role === "tool") { results++; if (!pending.delete(m.tool_call_id)) bad.push("result for unknown call " + m.tool_call_id); if (/^Error/.test(m.content)) errors++; }
}
// No call, nothing checked: with tool_choice required that is a failure; in auto mode the model may answer
// at once, and then these two checks are said to be skipped, not passed.
const skip = (n, w) => console.log("SKIP " + n + ": " + w);
if (calls === 0 && mode === "required") { fail("agent_calls_valid", "no tool call although tool_choice is required"); fail("agent_results_fed_back", "no tool call"); }
else if (calls === 0) { skip("agent_calls_valid", "the model made no tool call"); skip("agent_results_fed_back", "the model made no tool call"); }
else {
  if (bad.length) fail("agent_calls_valid", bad[0]); else console.log(`PASS agent_calls_valid (${calls} calls)`);
  if (pending.size || results !== calls) fail("agent_results_fed_back", `${calls} calls, ${results} results`); else console.log(`PASS agent_results_fed_back (${results} results, ${errors} errors)`);
}
const asst = t.messages.filter((m) => m.role === "assistant");
if (mode === "required") {
  if (t.turns !== +maxTurns || asst.length !== +maxTurns || calls < +maxTurns) fail("agent_turn_limit", `turns ${t.turns} assistant ${asst.length} calls ${calls}`);
  else console.log("PASS agent_turn_limit");
} else {
  const last = t.messages[t.messages.length - 1];
  if (last.role !== "assistant" || (last.tool_calls && last.tool_calls.length)) fail("agent_answer_ends_loop", JSON.stringify(last).slice(0, 200));
  else console.log("PASS agent_answer_ends_loop");
}
