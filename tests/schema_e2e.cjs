// `k2c serve` under every schema of the suites (tests/data/schemas: the official MCP servers' tool
// schemas and the keyword schemas): a forced call of the tool by name and a response_format json_schema
// answer, random-weight model at temperature 1, several seeds and budgets (short ones end in the minimal
// close). Every answer must parse and validate with ajv + ajv-formats. Also: a schema with keywords that
// are not enforced gets a Warning header; one that cannot compile is a 400 naming the keyword.
//   node tests/schema_e2e.cjs NPM_DIR BASE_URL KEY SEEDS SCHEMAS.json...
const fs = require("fs");
const path = require("path");
const [npmDir, base, key, nseeds, ...files] = process.argv.slice(2);
const req = (m) => require(path.resolve(npmDir, "node_modules", m));
const Ajv07 = req("ajv").default, Ajv2020 = req("ajv/dist/2020").default, addFormats = req("ajv-formats").default;
const mk = (A) => { const a = new A({ strict: false }); addFormats(a); return a; };
const ajv07 = mk(Ajv07), ajv20 = mk(Ajv2020);
const pass = (n) => console.log("PASS " + n), fail = (n, w) => console.log("FAIL " + n + ": " + w);
const schemas = files.flatMap((f) => JSON.parse(fs.readFileSync(f, "utf8")));
const compile = (s) => {
  const c = JSON.parse(JSON.stringify(s));
  const d7 = typeof c.$schema === "string" && /draft-0[4-7]/.test(c.$schema);
  delete c.$schema; delete c.$id;
  return (d7 ? ajv07 : ajv20).compile(c);
};
async function post(body) {
  const r = await fetch(base + "/v1/chat/completions", { method: "POST", headers: { "Content-Type": "application/json", Authorization: "Bearer " + key }, body: JSON.stringify(body) });
  return { status: r.status, warning: r.headers.get("warning"), body: await r.json() };
}
async function pool(jobs, n) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < jobs.length) await jobs[i++](); }));
}
(async () => {
  const budgets = [6, 24, 96];
  let ok = { tools: 0, rf: 0 }, bad = { tools: 0, rf: 0 }, shown = 0;
  const jobs = [];
  for (const t of schemas) {
    const v = compile(t.schema), fname = t.name.replace(/[^A-Za-z0-9_.-]/g, "_").slice(0, 64);
    for (let seed = 1; seed <= +nseeds; seed++) {
      const max_tokens = budgets[(seed + t.name.length) % budgets.length];
      const check = (kind, text) => {
        let o, why = null;
        try { o = JSON.parse(text); } catch (e) { why = "not JSON"; }
        if (!why && !v(o)) why = JSON.stringify(v.errors[0]);
        if (why) { bad[kind]++; if (shown++ < 20) console.log(`  ${kind} ${t.name} seed ${seed}: ${why}: ${text}`); } else ok[kind]++;
      };
      jobs.push(async () => {
        const r = await post({ model: "k2c", messages: [{ role: "user", content: "call " + fname }], temperature: 1, seed, max_tokens,
          tools: [{ type: "function", function: { name: fname, description: "t", parameters: t.schema } }],
          tool_choice: { type: "function", function: { name: fname } } });
        const tc = r.status === 200 && r.body.choices[0].message.tool_calls;
        if (!tc || !tc.length || tc.some((c) => c.function.name !== fname)) { bad.tools++; if (shown++ < 20) console.log(`  tools ${t.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`); return; }
        for (const c of tc) check("tools", c.function.arguments);
      });
      jobs.push(async () => {
        const r = await post({ model: "k2c", messages: [{ role: "user", content: "json for " + fname }], temperature: 1, seed, max_tokens,
          response_format: { type: "json_schema", json_schema: { name: "x", schema: t.schema } } });
        if (r.status !== 200) { bad.rf++; if (shown++ < 20) console.log(`  rf ${t.name}: ${r.status} ${JSON.stringify(r.body).slice(0, 300)}`); return; }
        check("rf", r.body.choices[0].message.content);
      });
    }
  }
  await pool(jobs, 8);
  console.log(`  ${schemas.length} schemas x ${nseeds} seeds: forced tool calls ${ok.tools} valid / ${bad.tools} invalid, response_format ${ok.rf} valid / ${bad.rf} invalid (ajv)`);
  bad.tools ? fail("schema_suite_forced_tool_calls", `${bad.tools} invalid`) : pass("schema_suite_forced_tool_calls");
  bad.rf ? fail("schema_suite_response_format", `${bad.rf} invalid`) : pass("schema_suite_response_format");

  // not enforced exactly -> a Warning header naming the keyword path
  const w = await post({ model: "k2c", messages: [{ role: "user", content: "x" }], max_tokens: 8,
    response_format: { type: "json_schema", json_schema: { name: "x", schema: { type: "object", properties: { a: { type: "string", format: "ipv5" } }, not: { required: ["a"] } } } } });
  if (w.status === 200 && w.warning && /format 'ipv5'/.test(w.warning) && /'not'/.test(w.warning)) pass("schema_warning_header");
  else fail("schema_warning_header", `${w.status} ${w.warning}`);
  // cannot compile -> 400 naming the keyword
  const cases = [
    [{ type: "string", pattern: "^(?=a)b$" }, /pattern: look-around/, "response_format"],
    [{ type: "object", properties: { p: { $ref: "https://example.com/x.json" } } }, /properties\.p\.\$ref/, "tools"],
    [{ type: "string", minLength: 5, maxLength: 2 }, /maxLength < minLength/, "response_format"],
    [{ allOf: [{ type: "string" }, { type: "integer" }] }, /allOf: no type/, "tools"],
  ];
  let bad400 = 0;
  for (const [schema, re, where] of cases) {
    const body = where === "tools"
      ? { model: "k2c", messages: [{ role: "user", content: "x" }], tools: [{ type: "function", function: { name: "f", parameters: schema } }], tool_choice: "required" }
      : { model: "k2c", messages: [{ role: "user", content: "x" }], response_format: { type: "json_schema", json_schema: { name: "x", schema } } };
    const r = await post(body);
    if (r.status !== 400 || !re.test(r.body.error.message) || r.body.error.param !== where) { bad400++; console.log(`  ${JSON.stringify(schema)}: ${r.status} ${JSON.stringify(r.body)}`); }
  }
  bad400 ? fail("schema_compile_errors_400", `${bad400} of ${cases.length}`) : pass("schema_compile_errors_400");
})().catch((e) => { fail("schema_e2e", String(e && e.stack || e)); process.exit(1); });
