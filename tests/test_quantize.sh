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
# k2c kl: the mean KL and both perplexities against an independent computation from `k2c logits` of each
# chunk (python3 standard library), a model against itself exactly 0, and a text shorter than a chunk refused
python3 bench/synth_tokenizer.py 512 "$TMP" 64 >/dev/null
head -c 4000 tests/data/tokenizer_corpus.txt >"$TMP/kl.txt"
if $K2C kl --base $G/k2-tiny-f32 --model "$O/a.gguf" --tokenizer "$TMP" --text "$TMP/kl.txt" --ctx 16 --chunks 3 --exact \
     >"$TMP/kl.out" 2>"$TMP/kl.err" && $K2C encode --tokenizer "$TMP" --no-special <"$TMP/kl.txt" >"$TMP/kl.ids"; then
  ok=1
  for c in 0 1 2; do
    ids=$(tr ' ' '\n' <"$TMP/kl.ids" | sed -n "$((c * 16 + 1)),$((c * 16 + 16))p" | paste -sd,)
    $K2C logits --model $G/k2-tiny-f32 --ids "$ids" --exact --out "$TMP/klb$c.st" 2>/dev/null &&
      $K2C logits --model "$O/a.gguf" --ids "$ids" --exact --out "$TMP/klq$c.st" 2>/dev/null && echo "$ids" >"$TMP/klids$c" || ok=0
  done
  if [ $ok = 1 ] && python3 - "$TMP" <<'PY' >"$TMP/kl.py" 2>&1; then pass kl_matches_direct; else fail kl_matches_direct "$(tail -3 "$TMP/kl.py" "$TMP/kl.out")"; fi
import array, json, math, re, struct, sys
d = sys.argv[1]
def logits(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; t = json.loads(b[8:8 + n])["logits"]
    a = array.array("f"); o = t["data_offsets"]; a.frombytes(b[8 + n + o[0]:8 + n + o[1]]); V = t["shape"][1]
    return [a[i * V:(i + 1) * V] for i in range(t["shape"][0])]
def lsm(z):
    m = max(z); s = math.log(sum(math.exp(v - m) for v in z)) + m
    return [v - s for v in z]
kl = nb = nq = 0.0; n = 0
for c in range(3):
    ids = [int(x) for x in open("%s/klids%d" % (d, c)).read().split(",")]
    B, Q = logits("%s/klb%d.st" % (d, c)), logits("%s/klq%d.st" % (d, c))
    for j in range(8, 15):
        pb, pq = lsm(B[j]), lsm(Q[j])
        kl += sum(math.exp(a) * (a - b) for a, b in zip(pb, pq)); nb -= pb[ids[j + 1]]; nq -= pq[ids[j + 1]]; n += 1
out = open(d + "/kl.out").read()
mk = float(re.search(r"mean ([0-9.e-]+)", out).group(1))
pp = re.search(r"base ([0-9.]+), model ([0-9.]+)", out)
print("kl", kl / n, mk, "ppl", math.exp(nb / n), math.exp(nq / n), pp.groups())
assert n == 21 and "21 tokens" in out, out
assert kl > 0 and abs(mk - kl / n) <= 2e-6 + 1e-3 * kl / n, (mk, kl / n)
assert abs(float(pp.group(1)) / math.exp(nb / n) - 1) < 1e-3 and abs(float(pp.group(2)) / math.exp(nq / n) - 1) < 1e-3
PY
else fail kl_matches_direct "$(tail -2 "$TMP/kl.err")"; fi
if $K2C kl --base $G/k2-tiny-f32 --model $G/k2-tiny-f32 --tokenizer "$TMP" --text "$TMP/kl.txt" --ctx 16 --chunks 2 >"$TMP/kl0.out" 2>/dev/null \
   && grep -q "mean 0.000000 +- 0.000000" "$TMP/kl0.out" && grep -q "same top token     100.00%" "$TMP/kl0.out"; then
  pass kl_self_zero; else fail kl_self_zero "$(cat "$TMP/kl0.out")"; fi
head -c 20 tests/data/tokenizer_corpus.txt >"$TMP/short.txt"
expect_fail kl_short_text "fewer than one chunk" $K2C kl --base $G/k2-tiny-f32 --model "$O/a.gguf" --tokenizer "$TMP" --text "$TMP/short.txt" --ctx 64
