// The OpenAI request parameters, checked with the official openai npm client: logprobs / top_logprobs
// (non-streaming and streaming), n, stop, seed, presence / frequency penalties, max_completion_tokens,
// stream_options.include_usage, parallel_tool_calls, and a 400 naming the field for anything unsupported.
//   node tests/params_e2e.cjs NPM_DIR BASE_URL API_KEY
const path = require("path");
const [npmDir, base, key] = process.argv.slice(2);
const req = (m) => require(path.resolve(npmDir, "node_modules", m));
const OpenAI = req("openai").default || req("openai");
const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, timeout: 60000, maxRetries: 0 });
const pass = (n) => console.log("PASS " + n), fail = (n, why) => console.log("FAIL " + n + ": " + why);
const msgs = (t) => [{ role: "user", content: t }];
const bytesOf = (entries) => Buffer.from(entries.flatMap((e) => e.bytes));

async function logprobs() {
  const r = await client.chat.completions.create({ model: "k2c", messages: msgs("logprobs please"), max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 3 });
  const c = r.choices[0], lp = c.logprobs && c.logprobs.content;
  if (!lp || !lp.length) return fail("logprobs", "no logprobs.content: " + JSON.stringify(c).slice(0, 300));
  for (const e of lp) {
    if (!(e.logprob <= 0) || e.top_logprobs.length !== 3) return fail("logprobs", "entry " + JSON.stringify(e));
    const t = e.top_logprobs;
    if (!(t[0].logprob >= t[1].logprob && t[1].logprob >= t[2].logprob)) return fail("logprobs", "top not sorted " + JSON.stringify(t));
    /* the model's distribution: nothing above the top entry; the chosen token, if listed, with the same value
     * (greedy picks the most likely token the turn allows; a special token may rank above it) */
    if (e.logprob > t[0].logprob + 1e-6) return fail("logprobs", "chosen above top-1: " + JSON.stringify(e));
    const same = t.find((x) => x.token === e.token && Buffer.from(x.bytes).equals(Buffer.from(e.bytes)));
    if (same && Math.abs(same.logprob - e.logprob) > 1e-5) return fail("logprobs", "chosen token listed with another logprob: " + JSON.stringify(e));
    if (t.some((x) => !x.token.startsWith("<|")) && !same && t.filter((x) => !x.token.startsWith("<|"))[0].logprob > e.logprob + 1e-6)
      return fail("logprobs", "greedy skipped a likelier ordinary token: " + JSON.stringify(e));
  }
  /* the tokens' bytes spell the content (invalid UTF-8 the model wrote shows as U+FFFD in both) */
  if (!c.message.content.startsWith(bytesOf(lp).toString("utf8"))) return fail("logprobs", "token bytes do not spell the content");
  pass("logprobs");
  // streaming: the chunks' entries spell the streamed content
  const s = await client.chat.completions.create({ model: "k2c", messages: msgs("logprobs please"), max_tokens: 24, temperature: 0, logprobs: true, top_logprobs: 2, stream: true });
  let text = "", entries = [];
  for await (const ch of s) {
    const d = ch.choices[0];
    if (!d) continue;
    if (d.delta && d.delta.content) text += d.delta.content;
    if (d.logprobs && d.logprobs.content) entries.push(...d.logprobs.content);
  }
  if (!entries.length || !text.startsWith(bytesOf(entries).toString("utf8")) || text !== c.message.content)
    return fail("logprobs_stream", `${entries.length} entries, text ${JSON.stringify(text)} vs ${JSON.stringify(c.message.content)}`);
  pass("logprobs_stream");
}

async function nChoices() {
  const r = await client.chat.completions.create({ model: "k2c", messages: msgs("three answers"), max_tokens: 12, temperature: 1, seed: 5, n: 3 });
  if (r.choices.length !== 3 || r.choices.some((c, i) => c.index !== i)) return fail("n_choices", JSON.stringify(r.choices.map((c) => c.index)));
  const texts = new Set(r.choices.map((c) => c.message.content));
  if (texts.size < 2) return fail("n_choices", "all choices equal: " + [...texts]);
  const single = await client.chat.completions.create({ model: "k2c", messages: msgs("three answers"), max_tokens: 12, temperature: 1, seed: 5 });
  if (single.choices[0].message.content !== r.choices[0].message.content) return fail("n_choices", "choice 0 differs from n=1 with the same seed");
  if (r.usage.completion_tokens < 3 || r.usage.total_tokens !== r.usage.prompt_tokens + r.usage.completion_tokens) return fail("n_choices", "usage " + JSON.stringify(r.usage));
  pass("n_choices");
}

async function penalties() {
  const run = (extra) => client.chat.completions.create({ model: "k2c", messages: msgs("repeat repeat repeat"), max_tokens: 40, temperature: 0, logprobs: true, ...extra });
  const repeats = (r) => { const ids = r.choices[0].logprobs.content.map((e) => e.token); return ids.length - new Set(ids).size; };
  const a = await run({}), b = await run({ frequency_penalty: 2 }), c = await run({ presence_penalty: 2 });
  const ra = repeats(a), rb = repeats(b), rc = repeats(c);
  if (rb > ra || rc > ra) return fail("penalties", `repeated tokens: none ${ra}, frequency ${rb}, presence ${rc}`);
  if (ra > 0 && (a.choices[0].message.content === b.choices[0].message.content || a.choices[0].message.content === c.choices[0].message.content))
    return fail("penalties", "a penalty changed nothing although tokens repeat");
  pass(`penalties (repeated tokens: none ${ra}, frequency 2: ${rb}, presence 2: ${rc})`.replace(/ /g, "_").replace(/[(),:]/g, ""));
}

async function usageAndBudget() {
  const count = async (opts) => {
    let usage = 0;
    for await (const ch of await client.chat.completions.create({ model: "k2c", messages: msgs("usage"), max_completion_tokens: 5, stream: true, ...opts })) if (ch.usage) usage++;
    return usage;
  };
  const withU = await count({ stream_options: { include_usage: true } }), without = await count({});
  if (withU !== 1 || without !== 0) return fail("stream_options_include_usage", `usage chunks: with ${withU}, without ${without}`);
  pass("stream_options_include_usage");
  const r = await client.chat.completions.create({ model: "k2c", messages: msgs("budget"), max_completion_tokens: 3, temperature: 1, seed: 2 });
  if (r.usage.completion_tokens > 3 || r.choices[0].finish_reason !== "length") return fail("max_completion_tokens", JSON.stringify(r.usage) + " " + r.choices[0].finish_reason);
  pass("max_completion_tokens");
}

async function stopAndTools() {
  const r = await client.chat.completions.create({ model: "k2c", messages: msgs("stop test"), max_tokens: 40, temperature: 1, seed: 9, stop: "e" });
  if (r.choices[0].message.content.includes("e")) return fail("stop_string", r.choices[0].message.content);
  pass("stop_string");
  const tools = [{ type: "function", function: { name: "f", parameters: { type: "object", properties: { x: { type: "integer" } }, required: ["x"] } } }];
  for (let seed = 1; seed <= 6; seed++) {
    const t = await client.chat.completions.create({ model: "k2c", messages: msgs("call"), tools, tool_choice: "required", parallel_tool_calls: false, max_tokens: 60, temperature: 1, seed });
    if ((t.choices[0].message.tool_calls || []).length !== 1) return fail("parallel_tool_calls_false", JSON.stringify(t.choices[0].message));
  }
  pass("parallel_tool_calls_false");
}

async function unsupported() {
  const cases = [
    [{ logit_bias: { "1": 5 } }, "logit_bias"], [{ functions: [{ name: "f" }] }, "functions"], [{ audio: { voice: "x" } }, "audio"],
    [{ modalities: ["text", "audio"] }, "modalities"], [{ top_logprobs: 2 }, "top_logprobs"], [{ logprobs: true, top_logprobs: 21 }, "top_logprobs"],
    [{ n: 2, stream: true }, "n"], [{ n: 9 }, "n"], [{ presence_penalty: 3 }, "presence_penalty"], [{ frequency_penalty: "x" }, "frequency_penalty"],
    [{ stream_options: { include_usage: true } }, "stream_options"], [{ stream: true, stream_options: { foo: 1 } }, "stream_options"],
    [{ reasoning_effort: "high" }, "reasoning_effort"],
  ];
  let bad = 0;
  for (const [extra, param] of cases) {
    try {
      const r = await client.chat.completions.create({ model: "k2c", messages: msgs("x"), max_tokens: 2, ...extra });
      if (r && typeof r[Symbol.asyncIterator] === "function") for await (const _ of r) { /* drain */ }
      bad++; console.log(`  ${JSON.stringify(extra)}: accepted`);
    } catch (e) {
      if (e.status !== 400 || e.param !== param || !String(e.message).includes(param)) { bad++; console.log(`  ${JSON.stringify(extra)}: ${e.status} ${e.param} ${e.message}`); }
    }
  }
  // the harmless spellings of "off" pass
  try { await client.chat.completions.create({ model: "k2c", messages: msgs("x"), max_tokens: 2, logit_bias: {}, user: "u1", store: false }); }
  catch (e) { bad++; console.log("  harmless fields refused: " + e.message); }
  try { await client.completions.create({ model: "k2c", prompt: "x", max_tokens: 2, logprobs: 2 }); bad++; console.log("  completions logprobs accepted"); }
  catch (e) { if (e.status !== 400 || e.param !== "logprobs") { bad++; console.log("  completions logprobs: " + e.message); } }
  bad ? fail("unsupported_fields_400", `${bad} of ${cases.length + 2}`) : pass("unsupported_fields_400");
}

(async () => {
  for (const t of [logprobs, nChoices, penalties, usageAndBudget, stopAndTools, unsupported]) {
    try { await t(); } catch (e) { fail(t.name, String(e && e.stack || e).slice(0, 500)); }
  }
})();
