// Oracle for the tokenizer tests and benchmark: the official tiktoken core (Rust, as WASM, npm
// package `tiktoken`) with the o200k rank set it ships, Kimi's pre-tokenizer pattern and Kimi's special
// block, driven exactly like Kimi's tokenization_kimi.py (400,000-character chunks, 25,000-character
// whitespace / non-whitespace run cuts, allowed_special="all").
//
//   node tests/tokenizer_oracle.cjs NPM_PREFIX build OUT_DIR        writes tiktoken.model + tokenizer_config.json
//   node tests/tokenizer_oracle.cjs NPM_PREFIX encode TEXT_FILE     prints the ids on one line
//   node tests/tokenizer_oracle.cjs NPM_PREFIX bench TEXT_FILE REPS prints "MB/s seconds ntokens"
"use strict";
const fs = require("fs");
const path = require("path");
const { createRequire } = require("module");

const [prefix, cmd, arg, arg2] = process.argv.slice(2);
const req = createRequire(path.resolve(prefix, "node_modules") + "/");
const { Tiktoken } = req("tiktoken/lite");
const o200k = JSON.parse(fs.readFileSync(req.resolve("tiktoken/encoders/o200k_base.json"), "utf8"));

// Kimi's pattern as tokenization_kimi.py writes it (Rust regex syntax, && is class intersection).
const KIMI_PAT = [
  "[\\p{Han}]+",
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}&&[^\\p{Han}]]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?",
  "\\p{N}{1,3}",
  " ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*",
  "\\s*[\\r\\n]+",
  "\\s+(?!\\S)",
  "\\s+",
].join("|");

// The rank set: bpe_ranks is lines of either "BASE64 RANK" or "! FIRST_RANK TOK TOK ..." (consecutive ranks).
function ranks() {
  const out = [];
  for (const line of o200k.bpe_ranks.split("\n")) {
    if (!line) continue;
    const f = line.split(" ");
    if (f[0] === "!") {
      let r = parseInt(f[1], 10);
      for (let i = 2; i < f.length; i++) if (f[i]) out.push([f[i], r++]);
    } else out.push([f[0], parseInt(f[1], 10)]);
  }
  return out;
}

const NAMED = { 0: "[BOS]", 1: "[EOS]", 2: "<|im_end|>", 3: "<|im_user|>", 4: "<|im_assistant|>",
  6: "<|start_header_id|>", 7: "<|end_header_id|>", 9: "[EOT]", 10: "<|im_system|>",
  11: "<|tool_calls_section_begin|>", 12: "<|tool_calls_section_end|>", 13: "<|tool_call_begin|>",
  14: "<|tool_call_argument_begin|>", 15: "<|tool_call_end|>", 17: "<|im_middle|>", 254: "[UNK]", 255: "[PAD]" };

function specials(first) {
  const s = {};
  for (let i = 0; i < 256; i++) s[NAMED[i] || `<|reserved_token_${first + i}|>`] = first + i;
  return s;
}

function firstSpecial(r) {
  let max = -1;
  for (const [, rank] of r) if (rank > max) max = rank;
  return max + 1;
}

// Python str.isspace()
function isspace(cp) {
  return (cp >= 9 && cp <= 13) || (cp >= 0x1c && cp <= 0x20) || cp === 0x85 || cp === 0xa0 || cp === 0x1680 ||
    (cp >= 0x2000 && cp <= 0x200a) || cp === 0x2028 || cp === 0x2029 || cp === 0x202f || cp === 0x205f || cp === 0x3000;
}

// tokenization_kimi.py: chunks of 400,000 characters, then _split_whitespaces_or_nonwhitespaces(25,000).
// Characters are code points (Python str), not UTF-16 units; indices below are UTF-16 offsets.
function kimiParts(text) {
  const parts = [];
  let i = 0;
  while (i < text.length || parts.length === 0) {
    // one chunk: up to 400,000 code points from i
    let end = i, n = 0;
    while (end < text.length && n < 400000) { end += text.codePointAt(end) > 0xffff ? 2 : 1; n++; }
    let start = i, runLen = 0, runSpace = null;
    for (let k = i; k < end;) {
      const cp = text.codePointAt(k), sp = isspace(cp);
      if (runSpace === null) runSpace = sp;
      if (runSpace !== sp) { runLen = 1; runSpace = sp; }
      else if (++runLen > 25000) { parts.push(text.slice(start, k)); start = k; runLen = 1; }
      k += cp > 0xffff ? 2 : 1;
    }
    parts.push(text.slice(start, end));
    i = end;
    if (end >= text.length) break;
  }
  return parts;
}

function encoder() {
  const first = firstSpecial(ranks());
  return new Tiktoken(o200k.bpe_ranks, specials(first), KIMI_PAT);
}

function encodeKimi(enc, text) {
  const ids = [];
  for (const p of kimiParts(text)) for (const id of enc.encode(p, "all")) ids.push(id);
  return ids;
}

if (cmd === "build") {
  const r = ranks();
  const first = firstSpecial(r);
  fs.mkdirSync(arg, { recursive: true });
  fs.writeFileSync(path.join(arg, "tiktoken.model"), r.map(([b, k]) => `${b} ${k}\n`).join(""));
  const dec = {};
  for (const [name, id] of Object.entries(specials(first)))
    dec[id] = { content: name, lstrip: false, normalized: false, rstrip: false, single_word: false, special: true };
  fs.writeFileSync(path.join(arg, "tokenizer_config.json"), JSON.stringify({
    added_tokens_decoder: dec, bos_token: "[BOS]", eos_token: "[EOS]",
    chat_template: "{# k2c: kimi-k2 chat format #}",
  }, null, 1));
} else if (cmd === "encode") {
  const enc = encoder();
  process.stdout.write(encodeKimi(enc, fs.readFileSync(arg, "utf8")).join(" ") + "\n");
  enc.free();
} else if (cmd === "bench") {
  const enc = encoder();
  const text = fs.readFileSync(arg, "utf8");
  const bytes = Buffer.byteLength(text, "utf8");
  const reps = parseInt(arg2 || "3", 10);
  // Timed: tiktoken's encode calls only (the part cutting, done in Python by the reference, is not).
  const parts = kimiParts(text);
  let best = Infinity, n = 0;
  for (let i = 0; i < reps; i++) {
    const t0 = process.hrtime.bigint();
    n = 0;
    for (const p of parts) n += enc.encode(p, "all").length;
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt < best) best = dt;
  }
  console.log(`${(bytes / 1e6 / best).toFixed(2)} ${best.toFixed(3)} ${n}`);
  enc.free();
} else {
  console.error("usage: tokenizer_oracle.cjs NPM_PREFIX build DIR | encode FILE | bench FILE [REPS]");
  process.exit(2);
}
