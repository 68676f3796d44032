// Independent check of the grammar: every text a random walk through a compiled schema produced
// (tests/test_grammar --walk, JSON lines {"name", "text"}) must parse and validate with ajv (+ ajv-formats,
// "full" format checks) against the schema it came from. Draft-07 schemas go to Ajv, the others to Ajv2020.
//   node tests/schema_check.cjs NPM_DIR SCHEMAS.json WALKS.jsonl
// Prints one line per failure and a summary; exit 1 if any text fails or a schema did not compile.
const fs = require("fs");
const path = require("path");
const [npmDir, schemaFile, walkFile] = process.argv.slice(2);
const req = (m) => require(path.resolve(npmDir, "node_modules", m));
const Ajv07 = req("ajv").default, Ajv2020 = req("ajv/dist/2020").default, addFormats = req("ajv-formats").default;
const mk = (A) => { const a = new A({ strict: false, allErrors: false, validateFormats: true }); addFormats(a); return a; };
const ajv07 = mk(Ajv07), ajv20 = mk(Ajv2020);
const schemas = new Map(JSON.parse(fs.readFileSync(schemaFile, "utf8")).map((t) => [t.name, t.schema]));
const validators = new Map();
const validator = (name) => {
  if (!validators.has(name)) {
    const s = JSON.parse(JSON.stringify(schemas.get(name)));
    const draft07 = typeof s.$schema === "string" && /draft-0[4-7]/.test(s.$schema);
    delete s.$schema;
    delete s.$id;
    validators.set(name, (draft07 ? ajv07 : ajv20).compile(s));
  }
  return validators.get(name);
};
let total = 0, bad = 0, errors = 0, warned = new Set();
for (const line of fs.readFileSync(walkFile, "utf8").split("\n")) {
  if (!line) continue;
  const r = JSON.parse(line);
  if (r.error !== undefined) { errors++; console.log(`FAIL-COMPILE ${r.name}: ${r.error}`); continue; }
  if (r.warnings) warned.add(`${r.name}: ${r.warnings}`);
  total++;
  if (r.text === null) { bad++; console.log(`FAIL ${r.name}: the walk broke (no byte allowed or no close)`); continue; }
  let v;
  try { v = JSON.parse(r.text); } catch (e) { bad++; console.log(`FAIL ${r.name}: not JSON: ${r.text}`); continue; }
  const f = validator(r.name);
  if (!f(v)) { bad++; if (bad < 40) console.log(`FAIL ${r.name}: ${JSON.stringify(f.errors[0])} text=${r.text}`); }
}
for (const w of warned) console.log(`warning ${w}`);
console.log(`${total - bad} of ${total} texts valid, ${bad} invalid, ${errors} schemas failed to compile, ${schemas.size} schemas`);
process.exit(bad || errors ? 1 : 0);
