#!/usr/bin/env python3
"""A synthetic byte-level BPE tokenizer.json of exactly VOCAB entries, for checkpoints made by `k2c mkmodel`
(random weights, no tokenizer): with it `k2c quantize` writes a complete GGUF vocabulary, which other engines
(llama.cpp, ik_llama.cpp) need before they load a file. The merges are seeded random concatenations of earlier
tokens, so every token is reachable and the BPE is well formed; the last SPECIALS ids are special tokens
(the first two are BOS and EOS). Deterministic: the same arguments give the same file.
  python3 bench/synth_tokenizer.py VOCAB OUT_DIR [SPECIALS]"""
import json, random, sys

def byte_unicode():
    bs = [b for b in range(256) if ord('!') <= b <= ord('~') or 0xA1 <= b <= 0xAC or b >= 0xAE]
    cs, n = list(bs), 0
    for b in range(256):
        if b not in bs:
            bs.append(b); cs.append(256 + n); n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}

def main():
    vocab_n, out = int(sys.argv[1]), sys.argv[2]
    nspec = int(sys.argv[3]) if len(sys.argv) > 3 else 256
    bu = byte_unicode()
    toks = [bu[b] for b in range(256)]
    seen, merges = set(toks), []
    rnd = random.Random(1)
    printable = [bu[b] for b in range(32, 127)]
    while len(toks) < vocab_n - nspec:
        a = toks[rnd.randrange(len(toks))] if rnd.random() < 0.7 else rnd.choice(printable)
        b = rnd.choice(printable) if rnd.random() < 0.8 else toks[rnd.randrange(len(toks))]
        s = a + b
        if s in seen or len(s) > 16:
            continue
        seen.add(s); toks.append(s); merges.append(a + " " + b)
    base = len(toks)
    specials = ["[BOS]", "[EOS]"] + ["<|reserved_token_%d|>" % i for i in range(nspec - 2)]
    tj = {
        "version": "1.0",
        "added_tokens": [{"id": base + i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(specials)],
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "vocab": {s: i for i, s in enumerate(toks)}, "merges": merges},
    }
    with open(out + "/tokenizer.json", "w") as f:
        json.dump(tj, f, ensure_ascii=False)
    with open(out + "/tokenizer_config.json", "w") as f:
        json.dump({"bos_token": "[BOS]", "eos_token": "[EOS]", "tokenizer_class": "PreTrainedTokenizerFast"}, f)
    print("tokenizer: %d tokens (%d merges, %d specials; BOS %d, EOS %d) in %s/tokenizer.json"
          % (base + nspec, len(merges), nspec, base, base + 1, out))

main()
