# The model commands end to end: mkmodel -> info / logits / generate, and clear errors on bad input.
. tests/lib.sh
G=tests/data/golden
M="$TMP/m"
if $K2C mkmodel --preset k2-tiny --dtype fp8 --shards 3 --out "$M" 2>"$TMP/err" && [ -f "$M/model-3-of-3.safetensors" ] \
   && grep -q '"model-2-of-3.safetensors"' "$M/model.safetensors.index.json"; then pass mkmodel_sharded_unpadded; else fail mkmodel_sharded_unpadded "$(cat "$TMP/err")"; fi
if $K2C info --model "$M" >"$TMP/info" && grep -q "active per token" "$TMP/info" && grep -q "KV cache" "$TMP/info"; then pass info; else fail info; fi
# k2c logits on the golden case's ids, prefill and token by token, against its float64 reference logits
E=$G/k2-tiny-f32/expected.safetensors
ids=$(python3 tests/st_check.py ids $E input_ids 2>"$TMP/ids.err")
logits_cli() {  # NAME [--decode]
  local name="$1"; shift
  if ! $K2C logits --model $G/k2-tiny-f32 --ids "$ids" "$@" --out "$TMP/$name.safetensors" 2>"$TMP/$name.err"; then
    fail "$name" "$(tail -3 "$TMP/$name.err")"; return; fi
  if python3 tests/st_check.py close $E "$TMP/$name.safetensors" logits >"$TMP/$name.check" 2>&1; then
    cat "$TMP/$name.check"; pass "$name"; else fail "$name" "$(tail -1 "$TMP/$name.check")"; fi
}
if [ -z "$ids" ]; then fail logits_cli_golden "no input_ids: $(tail -1 "$TMP/ids.err")"
else logits_cli logits_cli_golden; logits_cli logits_cli_golden_decode --decode; logits_cli logits_cli_golden_ubatch --ubatch 5; fi
expect_fail bad_ubatch "ubatch" $K2C logits --model $G/k2-tiny-f32 --ids 3,4 --ubatch -2 --out "$TMP/x"
expect_fail bad_cache_type "cache-type must be f32, bf16 or q8_0" $K2C logits --model $G/k2-tiny-f32 --ids 3,4 --cache-type q4 --out "$TMP/x"
if $K2C info --model $G/k2-tiny-f32 --cache-type bf16 | grep -q "240 bytes per token (latent c + k_pe, bf16"; then pass info_cache_bf16; else fail info_cache_bf16 "$($K2C info --model $G/k2-tiny-f32 --cache-type bf16 | grep KV)"; fi
# q8_0: 3 layers x (40 int8 + 2 fp16 scales); at 1000 tokens whole pages of 256: 4 x 256 x that, for each format
if $K2C info --model $G/k2-tiny-f32 --cache-type q8_0 --ctx 1000 >"$TMP/iq" && grep -q "132 bytes per token (latent c + k_pe, q8_0" "$TMP/iq" &&
   grep -q "cache at 1000: f32 491520 bytes .* bf16 245760 bytes .* q8_0 135168 bytes" "$TMP/iq" && grep -q "^workspace: *[0-9]* bytes" "$TMP/iq"; then
    pass info_cache_q8_0; else fail info_cache_q8_0 "$(cat "$TMP/iq")"; fi
# a GGUF file given to --model (file and folder), and k2c info's bytes per ggml type
GG=$G/gguf/gguf-Q4_K_M
gids=$(python3 tests/st_check.py ids $GG/expected.safetensors input_ids)
if $K2C logits --model $GG/model.gguf --ids "$gids" --decode --exact --out "$TMP/gguf.safetensors" 2>"$TMP/gguf.err" \
   && python3 tests/st_check.py close $GG/expected.safetensors "$TMP/gguf.safetensors" logits >"$TMP/gguf.check" 2>&1; then
  cat "$TMP/gguf.check"; pass logits_cli_gguf; else fail logits_cli_gguf "$(tail -1 "$TMP/gguf.err" "$TMP/gguf.check" 2>/dev/null)"; fi
if $K2C info --model $GG >"$TMP/ginfo" && grep -q "1 GGUF file(s):.*Q8_0 .*Q4_K .*Q5_K .*Q6_K" "$TMP/ginfo"; then pass info_gguf_types
else fail info_gguf_types "$(grep weights "$TMP/ginfo")"; fi
head -c 30000 $GG/model.gguf > "$TMP/trunc.gguf"
expect_fail truncated_gguf "trunc.gguf: tensor" $K2C info --model "$TMP/trunc.gguf"
out=$($K2C generate --model "$M" --ids 1,2,3 --max-tokens 8 --temperature 0 2>/dev/null)
out2=$($K2C generate --model "$M" --ids 1,2,3 --max-tokens 8 --temperature 0 --threads 1 2>/dev/null)
if [ "$(echo $out | wc -w)" -ge 1 ] && [ "$out" = "$out2" ]; then pass generate_greedy_deterministic; else fail generate_greedy_deterministic "'$out' vs '$out2'"; fi
expect_fail missing_model_dir "nonexistent" $K2C info --model "$TMP/nonexistent"
expect_fail unknown_option "unknown option --bogus" $K2C info --model $G/k2-tiny-f32 --bogus 1
expect_fail bad_ids "bad token id" $K2C logits --model $G/k2-tiny-f32 --ids 3,x --out "$TMP/x"
expect_fail id_out_of_range "out of range" $K2C logits --model $G/k2-tiny-f32 --ids 3,512 --out "$TMP/x"
mkdir -p "$TMP/badcfg"; cp $G/k2-tiny-f32/model.safetensors "$TMP/badcfg/"; echo '{"architectures": ["DeepseekV3ForCausalLM"], "model_type": "kimi_k2",' > "$TMP/badcfg/config.json"
expect_fail bad_config_json "config.json" $K2C info --model "$TMP/badcfg"
sed 's/"hidden_size": 64/"hidden_size": 65/' $G/k2-tiny-f32/config.json > "$TMP/badcfg/config.json"
expect_fail config_shape_mismatch "expected" $K2C info --model "$TMP/badcfg"
mkdir -p "$TMP/trunc"; cp $G/k2-tiny-f32/config.json "$TMP/trunc/"; head -c 100000 $G/k2-tiny-f32/model.safetensors > "$TMP/trunc/model.safetensors"
expect_fail truncated_checkpoint "past the end" $K2C logits --model "$TMP/trunc" --ids 1 --out "$TMP/x"
expect_fail mkmodel_bad_dtype "dtype" $K2C mkmodel --preset k2-tiny --dtype int3 --out "$TMP/y"
# text in, text out: a tokenizer trained here plus a random model with the matching vocabulary
$K2C tokenizer train --vocab 600 --out "$TMP/tm" tests/data/tokenizer_corpus.txt 2>/dev/null
$K2C mkmodel --preset k2-tiny --vocab 856 --dtype bf16 --out "$TMP/tm" 2>/dev/null
txt=$($K2C generate --model "$TMP/tm" --prompt "The quick brown fox" --max-tokens 12 --temperature 0 2>"$TMP/gerr")
if [ $? -eq 0 ] && [ -n "$txt" ] && grep -q "prompt 4 tokens\|prompt [0-9]* tokens" "$TMP/gerr"; then pass generate_text; else fail generate_text "$(cat "$TMP/gerr")"; fi
expect_fail generate_ids_and_prompt "exactly one" $K2C generate --model "$TMP/tm" --ids 1 --prompt x
$K2C mkmodel --preset k2-tiny --vocab 512 --dtype bf16 --out "$TMP/small" 2>/dev/null; cp "$TMP/tm/tiktoken.model" "$TMP/tm/tokenizer_config.json" "$TMP/small/"
expect_fail generate_vocab_mismatch "vocab_size" $K2C generate --model "$TMP/small" --prompt "hello"
# k2c bench: a decode after a depth fill and a later turn on top of the cache, in its JSON line; bad sizes refused
if $K2C bench --model $G/k2-tiny-f32 --threads 1 --prompt 8 --depth 300 --turn 5 --gen 3 --json >"$TMP/bench.json" 2>"$TMP/bench.err" &&
   python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).read().strip().splitlines()[-1]); sys.exit(0 if d['depth'] == 305 and d['turn'] == 5 and d['turn_after'] == 300 and d['turn_s'] > 0 and d['decode_tok_s'] > 0 else 1)" "$TMP/bench.json"; then
  pass bench_depth_turn; else fail bench_depth_turn "$(tail -2 "$TMP/bench.err"; cat "$TMP/bench.json")"; fi
expect_fail bench_bad_turn "--turn must be" $K2C bench --model $G/k2-tiny-f32 --turn -1
