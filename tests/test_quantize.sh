# k2c quantize end to end from the command line: a Hugging Face folder and a GGUF to GGUF, the file read back by
# k2c (info, logits) and by the independent Python reader (tests/gguf_ref.py), progress and fallback lines on
# stderr, the tokenizer files copied alongside, info --as-type against the file, and clear errors with no
# output file left behind.
. tests/lib.sh
G=tests/data/golden
O="$TMP/out"; mkdir -p "$O"
if $K2C quantize --model $G/k2-tiny-f32 --type Q4_K_M --out "$O/a.gguf" 2>"$TMP/q.err" \
   && grep -q "quantize: \[55/55\]" "$TMP/q.err" && grep -q "attn_k_b.weight: rows of 16 are not a multiple of the Q8_0 block (32): F16 instead" "$TMP/q.err"; then
  pass quantize_cli_progress_fallback; else fail quantize_cli_progress_fallback "$(tail -3 "$TMP/q.err")"; fi
if python3 tests/gguf_ref.py dump "$O/a.gguf" >"$TMP/dump" 2>&1 && grep -q "general.architecture = 'deepseek2'" "$TMP/dump" \
   && grep -q "blk.1.ffn_down_exps.weight  *Q5_0 *ne=\[32, 64, 16\]" "$TMP/dump" && grep -q "general.file_type = 15" "$TMP/dump"; then
  pass quantize_cli_python_reader; else fail quantize_cli_python_reader "$(tail -3 "$TMP/dump")"; fi
if $K2C info --model "$O/a.gguf" >"$TMP/info" && grep -q "GGUF file" "$TMP/info" \
   && $K2C logits --model "$O/a.gguf" --ids 1,2,3 --exact --out "$TMP/l.safetensors" 2>/dev/null; then
  pass quantize_cli_loads; else fail quantize_cli_loads "$(cat "$TMP/info" | head -3)"; fi
# the size k2c info --as-type predicts is the tensor data of the file
pred=$($K2C info --model $G/k2-tiny-f32 --as-type Q4_K_M | sed -n 's/.* \([0-9.]* [KMG]B\) of tensor data.*/\1/p')
if [ -n "$pred" ] && grep -q "weights:      $pred" "$TMP/info"; then pass info_as_type_matches; else fail info_as_type_matches "predicted '$pred': $(grep weights "$TMP/info")"; fi
if $K2C info --preset kimi-k2 --as-type Q4_K_M >"$TMP/k2" && grep -q "of tensor data" "$TMP/k2"; then pass info_as_type_preset; else fail info_as_type_preset; fi
# a GGUF input keeps its tokenizer metadata
if $K2C quantize --model $G/gguf/gguf-Q8_0/model.gguf --type Q2_K --out "$O/b.gguf" 2>"$TMP/b.err" \
   && python3 tests/gguf_ref.py dump "$O/b.gguf" >"$TMP/bdump" 2>&1 && grep -q "tokenizer.ggml.tokens" "$TMP/bdump" \
   && grep -q "blk.1.ffn_gate_exps.weight  *Q2_K" "$TMP/bdump"; then
  pass quantize_cli_gguf_input; else fail quantize_cli_gguf_input "$(tail -2 "$TMP/b.err")"; fi
# a folder with tokenizer files: copied next to OUT
mkdir -p "$TMP/withtok" "$O/tok"; cp $G/k2-tiny-f32/* "$TMP/withtok/"; echo "dGVzdA== 0" > "$TMP/withtok/tiktoken.model"
if $K2C quantize --model "$TMP/withtok" --type Q8_0 --out "$O/tok/m.gguf" 2>"$TMP/t.err" && [ -f "$O/tok/tiktoken.model" ] \
   && grep -q "copied tiktoken.model" "$TMP/t.err"; then pass quantize_cli_tokenizer_files; else fail quantize_cli_tokenizer_files "$(tail -2 "$TMP/t.err")"; fi
# errors: each names the problem, and no OUT (nor a temporary file) is left
expect_fail quantize_unknown_type "unknown type 'Q9'" $K2C quantize --model $G/k2-tiny-f32 --type Q9 --out "$O/e.gguf"
expect_fail quantize_unknown_type_attn "type-attn: unknown type" $K2C quantize --model $G/k2-tiny-f32 --type Q4_K --type-attn X --out "$O/e.gguf"
expect_fail quantize_missing_model "no-such" $K2C quantize --model "$TMP/no-such" --type Q4_K --out "$O/e.gguf"
expect_fail quantize_missing_type "missing --type" $K2C quantize --model $G/k2-tiny-f32 --out "$O/e.gguf"
expect_fail quantize_unwritable "cannot create" $K2C quantize --model $G/k2-tiny-f32 --type Q8_0 --out "$TMP/no/dir/e.gguf"
chmod 555 "$O/tok"
if [ "$(id -u)" != 0 ]; then expect_fail quantize_readonly_dir "Permission denied" $K2C quantize --model $G/k2-tiny-f32 --type Q8_0 --out "$O/tok/e.gguf"
else skip quantize_readonly_dir "running as root (permissions are not enforced)"; fi
chmod 755 "$O/tok"
if ls "$O" | grep -q "e.gguf"; then fail quantize_no_partial_output "$(ls "$O")"; else pass quantize_no_partial_output; fi
# the bundled model's tiktoken vocabulary as tokenizer.ggml.*: GPT-2 byte mapping (checked against an independent
# table), every merge joins two tokens into a token, one merge per non-byte token
if [ -f models/k2-mini/tiktoken.model ]; then
  if $K2C quantize --model models/k2-mini --type Q8_0 --out "$O/mini.gguf" 2>"$TMP/mini.err" && python3 - "$O/mini.gguf" >"$TMP/vocab.out" 2>&1 <<'PY'
import sys
sys.path.insert(0, "tests")
import gguf_ref
r = gguf_ref.Reader(sys.argv[1])
toks, tt, merges = r.kv["tokenizer.ggml.tokens"], r.kv["tokenizer.ggml.token_type"], r.kv["tokenizer.ggml.merges"]
assert r.kv["tokenizer.ggml.model"] == "gpt2" and r.kv["tokenizer.ggml.pre"] == "kimi-k2", "model/pre"
assert len(toks) == len(tt) == r.kv["deepseek2.vocab_size"], "counts"
keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
extra = [b for b in range(256) if b not in keep]
uni = {b: chr(b) for b in keep}
uni.update({b: chr(256 + i) for i, b in enumerate(extra)})
assert [toks[i] for i in range(256)] == [uni[b] for b in range(256)], "byte tokens are not the GPT-2 mapping"
ts = set(toks)
assert all(len(m.split(" ")) == 2 and m.replace(" ", "") in ts for m in merges), "a merge does not make a token"
normal = sum(1 for i, t in enumerate(tt) if t == 1)
assert len(merges) == normal - 256, "merges %d, non-byte normal tokens %d" % (len(merges), normal - 256)
assert sum(1 for t in tt if t == 3) > 0, "no control tokens"
print("vocab %d, merges %d" % (len(toks), len(merges)))
PY
  then pass quantize_cli_tokenizer_metadata; else fail quantize_cli_tokenizer_metadata "$(tail -2 "$TMP/vocab.out" "$TMP/mini.err")"; fi
else skip quantize_cli_tokenizer_metadata "models/k2-mini is not here"; fi
