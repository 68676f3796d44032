#!/usr/bin/env python3
"""Writes the seed corpora fuzz/corpus/NAME/seed-* from tests/data/golden, models/k2-mini and hand-made
cases. Run from the repository root; regress-* files (crash reproducers) are never touched."""
import json, os, struct, base64, glob

SEP = b"\n#--#\n"
OUT = "fuzz/corpus"
SIZES = {"F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F64": 8, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}

def put(name, fname, data):
    d = os.path.join(OUT, name)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str): data = data.encode()
    open(os.path.join(d, "seed-" + fname), "wb").write(data)

def st_image(tensors, meta=True, pad=True):
    """tensors: [(name, dtype, shape)] -> safetensors bytes (data: a counting pattern)"""
    hdr, off, data = {}, 0, b""
    if meta: hdr["__metadata__"] = {"format": "pt"}
    for name, dt, shape in tensors:
        n = SIZES[dt]
        for s in shape: n *= s
        hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
        data += bytes((off + i) & 255 for i in range(n))
        off += n
    h = json.dumps(hdr, separators=(",", ":")).encode()
    if pad: h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data

def st_header(path):
    b = open(path, "rb").read(8)
    n = struct.unpack("<Q", b)[0]
    return json.loads(open(path, "rb").read(8 + n)[8:])

def shrink(path, limit=60):
    """the golden file's tensor names and dtypes, every dimension cut to 1 or 2"""
    h = st_header(path)
    out = []
    for k, v in h.items():
        if k == "__metadata__": continue
        out.append((k, v["dtype"], [min(s, 2) for s in v["shape"]]))
        if len(out) >= limit: break
    return out

def main():
    g = "tests/data/golden"
    # 1. safetensors
    put("safetensors", "fp8", st_image(shrink(f"{g}/k2-tiny-fp8/model-2-of-2.safetensors")))
    put("safetensors", "int4", st_image(shrink(f"{g}/k2-thinking-tiny-int4/model.safetensors")))
    put("safetensors", "bf16", st_image(shrink(f"{g}/moonlight-tiny/model.safetensors", 30)))
    put("safetensors", "alldtypes", st_image([(f"t.{d}", d, [2, 3]) for d in SIZES] + [("scalar", "F32", []), ("empty", "F32", [0, 4])]))
    put("safetensors", "nometa", st_image([("a", "F32", [1])], meta=False, pad=False))
    # 2. index: the real index of the sharded model, shards shrunk to the tensors they hold
    idx = json.load(open(f"{g}/k2-tiny-bf16-sharded/model.safetensors.index.json"))
    wm = idx["weight_map"]
    shards = {}
    for t, f in wm.items(): shards.setdefault(f, []).append(t)
    full = {}
    for f in shards:
        for k, v in st_header(f"{g}/k2-tiny-bf16-sharded/{f}").items():
            if k != "__metadata__": full[k] = v
    keep = sorted(wm)[:24]
    small_idx = {"metadata": {"total_size": 1234}, "weight_map": {t: wm[t] for t in keep}}
    parts = [json.dumps(small_idx, indent=2).encode()]
    for f in sorted(set(wm[t] for t in keep)):
        ts = [(t, full[t]["dtype"], [min(s, 2) for s in full[t]["shape"]]) for t in keep if wm[t] == f]
        parts.append(f.encode() + b"\n" + st_image(ts))
    put("st_index", "sharded", SEP.join(parts))
    two = {"weight_map": {"a": "model-1-of-2.safetensors", "b": "model-2-of-2.safetensors", "c": "model-2-of-2.safetensors"}}
    put("st_index", "two", SEP.join([json.dumps(two).encode(),
                                     b"model-1-of-2.safetensors\n" + st_image([("a", "BF16", [2, 2])]),
                                     b"model-2-of-2.safetensors\n" + st_image([("b", "F32", [3]), ("c", "F8_E4M3", [4])])]))
    put("st_index", "missing", SEP.join([json.dumps({"weight_map": {"a": "x.safetensors", "z": "x.safetensors"}}).encode(),
                                         b"x.safetensors\n" + st_image([("a", "I32", [1])])]))
    # 3. config.json
    for p in sorted(glob.glob(f"{g}/*/config.json")) + ["models/k2-mini/config.json"]:
        put("config", p.split("/")[-2], open(p, "rb").read())
    # 4. tiktoken.model
    lines = open("models/k2-mini/tiktoken.model", "rb").read().split(b"\n")
    put("tiktoken", "k2mini-head", b"\n".join(lines[:400]) + b"\n")
    put("tiktoken", "small", b"".join(base64.b64encode(bytes([i])) + b" %d\n" % i for i in range(256)) +
        base64.b64encode(b"he") + b" 256\r\n" + base64.b64encode(b"hello") + b" 257\n\n")
    put("tiktoken", "holes", base64.b64encode(b"a") + b" 5\n" + base64.b64encode(b"b") + b" 1000\n")
    # 5. tokenizer.json (HF byte-level BPE, DeepSeek-V3 style)
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs, n = bs[:], 0
    for b in range(256):
        if b not in bs: bs.append(b); cs.append(256 + n); n += 1
    b2u = {b: chr(c) for b, c in zip(bs, cs)}
    vocab = {b2u[b]: b for b in range(256)}
    sp = b2u[32]
    for i, w in enumerate(["ab", "abc", sp + "a", sp + "t", "he", sp + "the"]): vocab[w] = 256 + i
    special = "<\uff5cend\u2581of\u2581sentence\uff5c>"
    vocab[special] = 262
    hf = {"version": "1.0", "normalizer": {"type": "Sequence", "normalizers": []},
          "added_tokens": [{"id": 262, "content": special, "special": True}, {"id": 263, "content": "<|im_end|>", "special": True}],
          "model": {"type": "BPE", "merges": ["a b", "ab c", [sp, "a"], sp + " t", "h e", [sp + "t", "he"]], "vocab": vocab},
          "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
              {"type": "Split", "pattern": {"Regex": "\\p{N}{1,3}"}, "behavior": "Isolated", "invert": False},
              {"type": "Split", "pattern": {"Regex": "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"},
               "behavior": "Isolated", "invert": False},
              {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": False}]},
          "decoder": {"type": "ByteLevel"}}
    put("hf_tokenizer", "dsv3", json.dumps(hf, ensure_ascii=False))
    put("hf_tokenizer", "dsv3-config", json.dumps(hf, ensure_ascii=False).encode() + SEP +
        json.dumps({"bos_token": {"content": special}, "eos_token": "<|im_end|>", "chat_template": "<|im_middle|>"}).encode())
    hf2 = dict(hf); hf2["pre_tokenizer"] = {"type": "Split", "pattern": {"String": " "}, "behavior": "Isolated"}
    put("hf_tokenizer", "string-split", json.dumps(hf2))
    # 6. tokenizer_config.json
    tc = json.load(open("models/k2-mini/tokenizer_config.json"))
    dec = tc["added_tokens_decoder"]
    small = {k: dec[k] for k in list(dec)[:12]}
    # the harness' base vocabulary has 266 ids; move the specials right after it
    small = {str(266 + i): v for i, (k, v) in enumerate(small.items())}
    tc2 = {k: v for k, v in tc.items() if k != "added_tokens_decoder"}
    tc2["added_tokens_decoder"] = small
    put("tokconfig", "k2mini", json.dumps(tc2, indent=2))
    put("tokconfig", "minimal", json.dumps({"added_tokens_decoder": {"300": {"content": "<|im_end|>"}, "301": {"content": "[BOS]"}},
                                            "bos_token": "[BOS]", "eos_token": {"content": "<|im_end|>"}}))
    put("tokconfig", "template", json.dumps({"chat_template": "k2c: kimi", "bos_token": None}))
    # 7. tool-call parser (8 bytes of cut-point seed, then the text)
    calls = ("Let me check.<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
             "<|tool_call_argument_begin|>{\"city\": \"Paris\"}<|tool_call_end|><|tool_call_begin|>functions.search:1"
             "<|tool_call_argument_begin|>{\"q\": \"k2 <|x|>\"}<|tool_call_end|><|tool_calls_section_end|>")
    put("toolparse", "two-calls", b"\x01\x02\x03\x04\x05\x06\x07\x08" + calls.encode())
    put("toolparse", "singular", b"\x00\x00\x00\x00\x00\x00\x00\x01" + b"x<|tool_call_section_begin|><|tool_call_begin|>functions.f:0<|tool_call_argument_begin|>{}<|tool_call_section_end|>tail")
    put("toolparse", "nosection", b"\xff\xff\xff\xff\xff\xff\xff\xfe" + b"<|tool_call_begin|>bad id<|tool_call_argument_begin|>{\"a\":[1,2<|tool_call_end|> <|tool_calls_section_begin|>stray<|tool_call_begin|>functions.g:3<|tool_call_argument_begin|>{\"u\":\"\xe4\xbd\xa0\"}")
    put("toolparse", "plain", b"abcdefgh" + "plain text with < and <| and |> and <|im_end|> 你好".encode())
    # chat template
    msgs = [{"role": "system", "content": "You are Kimi."}, {"role": "user", "content": "weather in Paris?"},
            {"role": "assistant", "content": None, "tool_calls": [{"id": "functions.get_weather:0", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
            {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "22C"},
            {"role": "assistant", "content": [{"type": "text", "text": "It is 22C."}]}, {"role": "user", "content": "thanks", "name": "bob"}]
    tools = [{"type": "function", "function": {"name": "get_weather", "description": "Weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1, "maximum": 7}}, "required": ["city"]}}}]
    put("chat", "tools", json.dumps(msgs).encode() + SEP + json.dumps(tools).encode())
    put("chat", "plain", json.dumps([{"role": "user", "content": "hi"}]))
    put("chat", "floats", json.dumps([{"role": "user", "content": "x"}]).encode() + SEP + json.dumps(
        [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {"x": {"type": "number", "default": 1.5e-7, "enum": [1e300, -0.0, 3]}}}}}]).encode())
    # 8. grammar
    schemas = {
        "object": ({"type": "object", "properties": {"city": {"type": "string", "minLength": 1, "maxLength": 8},
                    "days": {"type": "integer", "minimum": 1, "maximum": 7}, "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
                    "unit": {"enum": ["c", "f", None, 1]}}, "required": ["city", "days"]}, b'{"city":"Paris","days":3,"tags":["a"],"unit":"c"}'),
        "anyfree": ({"type": "object", "additionalProperties": {"type": ["number", "boolean", "null"]}}, b'{"a":1.5e-3,"b":true,"c":null}'),
        "array": ({"type": "array", "items": {"type": "object", "properties": {"x": {"const": {"k": [1, 2]}}}}, "minItems": 1}, b'[{"x":{"k":[1,2]}}]'),
        "string": ({"type": "string"}, b'"a\\u00e9\\n\xe4\xbd\xa0"'),
        "number": ({"type": "number", "exclusiveMinimum": -5, "maximum": 100}, b"-4"),
        "empty": ({}, b'{"a":[1,"x",{"b":null}]}'),
        "closed": ({"type": "object", "additionalProperties": False}, b"{}"),
    }
    for k, (s, t) in schemas.items(): put("grammar", k, json.dumps(s).encode() + SEP + t)
    # every keyword schema of the ajv suite ($ref, anyOf, pattern, formats, ...), with a few bytes to feed
    for t in json.load(open("tests/data/schemas/keywords.json")):
        name = "kw-" + "".join(c if c.isalnum() else "-" for c in t["name"])
        put("grammar", name, json.dumps(t["schema"]).encode() + SEP + b'{"a":"2024-02-28T1')
    # 9. server request
    body = {"model": "k2c", "messages": msgs[:2], "tools": tools, "tool_choice": "auto", "max_tokens": 32,
            "temperature": 0.7, "top_p": 0.9, "seed": 7, "stream": True, "stop": ["\n\n", "END"]}
    hdr = b"POST /v1/chat/completions\nAuthorization: Bearer sekret\nContent-Type: application/json\nContent-Length: %d"
    b = json.dumps(body).encode(); put("server", "chat-tools", hdr % len(b) + SEP + b)
    b = json.dumps({"messages": [{"role": "user", "content": "hi"}], "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": schemas["object"][0]}}}).encode()
    put("server", "chat-schema", hdr % len(b) + SEP + b)
    b = json.dumps({"messages": [{"role": "user", "content": "hi"}], "tools": tools, "tool_choice": {"type": "function", "function": {"name": "get_weather"}}, "parallel_tool_calls": False}).encode()
    put("server", "chat-forced", hdr % len(b) + SEP + b)
    b = json.dumps({"prompt": ["Once upon a time"], "max_tokens": 5, "stop": "."}).encode()
    put("server", "completion", b"POST /v1/completions\nAuthorization: Bearer wrong\nContent-Length: 99999999999999999999" + SEP + b)
    put("server", "json-object", hdr % 10 + SEP + json.dumps({"messages": [{"role": "user", "content": "x"}], "response_format": {"type": "json_object"}, "n": 1}).encode())

if __name__ == "__main__":
    main()
