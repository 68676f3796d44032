// Bounded load + fuzz run against `k2c serve` on 127.0.0.1 (fixed request counts, timeouts on every
// request and on the whole run). Usage:
//   node tests/server_load.cjs load BASE KEY            -> PASS/FAIL lines
//   node tests/server_load.cjs bench BASE KEY CLIENTS REQS MAXTOK [schema]  -> one JSON line of numbers
const [mode, base, key, ...rest] = process.argv.slice(2);
let failed = 0;
const pass = (n) => console.log("PASS " + n);
const fail = (n, why) => { failed++; console.log("FAIL " + n + ": " + why); };
const H = { "Content-Type": "application/json", Authorization: "Bearer " + key };
const TOOLS = [{ type: "function", function: { name: "lookup", parameters: { type: "object", properties: { q: { type: "string" }, n: { type: "integer" } }, required: ["q"] } } }];

// One streaming chat request; abortAfter: drop the connection after that many chunks.
async function streamOne(i, maxTok, { abortAfter = 0, tools = false, schema = null } = {}) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), 60000);
  const body = { model: "k2c", stream: true, stream_options: { include_usage: true }, max_tokens: maxTok, temperature: 0.8, seed: i, messages: [{ role: "system", content: "You are a load test." }, { role: "user", content: "request " + i }] };
  if (tools) { body.tools = TOOLS; body.tool_choice = "required"; }
  if (schema) body.response_format = { type: "json_schema", json_schema: { name: "s", schema } };
  let chunks = 0, usage = null, done = false, buf = "";
  try {
    const r = await fetch(base + "/v1/chat/completions", { method: "POST", headers: H, body: JSON.stringify(body), signal: ctl.signal });
    if (r.status !== 200) throw new Error("status " + r.status + " " + (await r.text()));
    const rd = r.body.getReader();
    const dec = new TextDecoder();
    for (;;) {
      const { value, done: end } = await rd.read();
      if (end) break;
      buf += dec.decode(value, { stream: true });
      let k;
      while ((k = buf.indexOf("\n\n")) >= 0) {
        const ev = buf.slice(0, k); buf = buf.slice(k + 2);
        if (!ev.startsWith("data: ")) throw new Error("bad SSE line " + ev.slice(0, 80));
        const d = ev.slice(6);
        if (d === "[DONE]") { done = true; continue; }
        const o = JSON.parse(d);
        if (o.error) throw new Error("error event " + d);
        if (o.usage) usage = o.usage;
        chunks++;
      }
      if (abortAfter && chunks >= abortAfter) { ctl.abort(); clearTimeout(t); return { aborted: true }; }
    }
  } finally { clearTimeout(t); }
  if (!done || !usage) throw new Error("stream ended without usage / [DONE]");
  return { tokens: usage.completion_tokens };
}

async function raw(body, headers = H) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), 20000);
  try {
    const r = await fetch(base + "/v1/chat/completions", { method: "POST", headers, body, signal: ctl.signal });
    const txt = await r.text();
    return { status: r.status, txt };
  } finally { clearTimeout(t); }
}

async function pool(n, total, fn) {
  let next = 0, errs = [];
  await Promise.all(Array.from({ length: n }, async () => {
    while (next < total) { const i = next++; try { await fn(i); } catch (e) { errs.push(String(e).slice(0, 200)); } }
  }));
  return errs;
}

async function health() {
  const r = await fetch(base + "/health"); return r.json();
}

async function load() {
  // 16 concurrent streaming clients, 64 requests (a quarter with forced tool calls)
  let tokens = 0;
  const t0 = Date.now();
  const errs = await pool(16, 64, async (i) => { const r = await streamOne(i, 8 + (i % 5) * 6, { tools: i % 4 === 0 }); tokens += r.tokens; });
  const dt = (Date.now() - t0) / 1000;
  if (errs.length) fail("load_16_streams", `${errs.length} errors: ${errs[0]}`);
  else { console.log(`  64 streams, 16 at a time: ${tokens} tokens in ${dt.toFixed(1)} s`); pass("load_16_streams"); }
  // clients that drop mid-stream: their slots must come back
  const aborted = await pool(8, 8, async (i) => { await streamOne(100 + i, 200, { abortAfter: 2 }); });
  if (aborted.length) fail("disconnects", aborted[0]); else pass("disconnects");
  // fuzz: every malformed request gets a 4xx with an error object, and the server stays up
  const big = "x".repeat(70000);
  const bodies = [
    "", "{", "[]", "null", "123", "\"str\"", "{\"messages\":5}", "{\"messages\":[]}", "{\"messages\":[{}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":5}]}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":-1}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1e300}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1e309}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"top_p\":-3}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stop\":[\"a\",\"b\",\"c\",\"d\",\"e\"]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":{}}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a b\"}}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"a\",\"parameters\":{\"type\":\"object\",\"properties\":{\"p\":{\"type\":\"array\",\"maxItems\":1,\"minItems\":2}}}}}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"tool_choice\":\"required\"}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"response_format\":{\"type\":\"json_schema\"}}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":\"yes\"}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"n\":99}", "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"logit_bias\":{\"5\":1}}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"" + "word ".repeat(12000) + "\"}]}",
    "{\"messages\":[{\"role\":\"user\",\"content\":\"" + big + "\"}]}", "\xff\xfe{garbage", "{\"messages\":[{\"role\":\"user\",\"content\":\"\\ud800\"}]}",
    "{\"a\":" + "[".repeat(5000) + "]".repeat(5000) + "}",
  ];
  let fuzzBad = [];
  for (const b of bodies) {
    const r = await raw(b);
    let ok = r.status >= 400 && r.status < 500;
    try { ok = ok && JSON.parse(r.txt).error.message.length > 0; } catch (e) { ok = false; }
    if (!ok) fuzzBad.push(`${r.status} for ${b.slice(0, 60)}: ${r.txt.slice(0, 100)}`);
  }
  const r404 = await fetch(base + "/nope", { headers: H });
  if (r404.status !== 404) fuzzBad.push("404 path gave " + r404.status);
  const r401 = await raw("{}", { "Content-Type": "application/json" });
  if (r401.status !== 401) fuzzBad.push("no key gave " + r401.status);
  if (fuzzBad.length) fail("fuzz_4xx", `${fuzzBad.length} of ${bodies.length + 2}: ${fuzzBad[0]}`); else pass("fuzz_4xx");
  // no leaked slots: the aborted streams must be freed within a few seconds
  let h;
  for (let i = 0; i < 50; i++) { h = await health(); if (h.slots_busy === 0 && h.queue === 0) break; await new Promise((r) => setTimeout(r, 100)); }
  if (h.slots_busy !== 0 || h.queue !== 0) fail("no_leaked_slots", JSON.stringify(h)); else pass("no_leaked_slots");
  const m = await (await fetch(base + "/metrics", { headers: H })).text();
  if (!/k2c_completion_tokens_total \d+/.test(m) || !/k2c_slots_busy 0/.test(m) || !/k2c_prefix_cache_hit_tokens_total [1-9]/.test(m)) fail("metrics", m.slice(0, 300));
  else pass("metrics");
}

async function bench() {
  const [clients, reqs, maxTok, schemaFlag] = rest;
  const schema = schemaFlag === "schema" ? { type: "object", properties: { text: { type: "string" }, n: { type: "array", items: { type: "integer" } } }, required: ["text", "n"] } : null;
  let tokens = 0;
  const t0 = Date.now();
  const errs = await pool(+clients, +reqs, async (i) => { const r = await streamOne(i, +maxTok, { schema }); tokens += r.tokens; });
  const dt = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ clients: +clients, requests: +reqs, tokens, seconds: dt, tokens_per_s: tokens / dt, errors: errs.length }));
}

(async () => {
  const timer = setTimeout(() => { fail("load_timeout", "over 280 s"); process.exit(1); }, 280000);
  try { await (mode === "bench" ? bench() : load()); } catch (e) { fail(mode, String(e && e.stack || e).slice(0, 300)); }
  clearTimeout(timer);
  process.exit(failed ? 1 : 0);
})();
