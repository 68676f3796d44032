# k2c encode / decode / template / tokenizer train from the shell, and their errors (exit 1, a message
# naming the file and field). Needs no network: the tokenizer is trained here.
source "$(dirname "$0")/lib.sh"
TOK="$TMP/tok"
if "$K2C" tokenizer train --vocab 600 --out "$TOK" tests/data/tokenizer_corpus.txt >"$TMP/train.out" 2>&1 \
   && [ -s "$TOK/tiktoken.model" ] && [ -s "$TOK/tokenizer_config.json" ]; then pass cli_train; else fail cli_train "$(tail -3 "$TMP/train.out")"; fi

printf 'Hello <|im_end|> wörld\n' >"$TMP/in.txt"
ids=$("$K2C" encode --tokenizer "$TOK" --text-file "$TMP/in.txt")
ids_stdin=$("$K2C" encode --tokenizer "$TOK" <"$TMP/in.txt")
[ -n "$ids" ] && [ "$ids" = "$ids_stdin" ] && echo "$ids" | grep -qw 602 && pass cli_encode || fail cli_encode "'$ids' vs '$ids_stdin'"
echo "$ids" | "$K2C" decode --tokenizer "$TOK" >"$TMP/out.txt" && cmp -s "$TMP/in.txt" "$TMP/out.txt" && pass cli_decode_roundtrip || fail cli_decode_roundtrip
echo "$ids" | tr ' ' ',' | "$K2C" decode --tokenizer "$TOK" | cmp -s - "$TMP/in.txt" && pass cli_decode_commas || fail cli_decode_commas
# --no-special: the marker is plain text, so its id is absent and there are more ids than with specials
ids_ns=$("$K2C" encode --tokenizer "$TOK" --no-special <"$TMP/in.txt" 2>"$TMP/ns.err")
if [ $? -eq 0 ] && [ -n "$ids_ns" ] && ! echo "$ids_ns" | grep -qw 602 && [ "$(echo $ids_ns | wc -w)" -gt "$(echo $ids | wc -w)" ]; then
  pass cli_encode_no_special; else fail cli_encode_no_special "'$ids_ns' vs '$ids' $(cat "$TMP/ns.err")"; fi

expect_fail cli_decode_bad_id "not in the vocabulary" sh -c "echo '1 2 99999' | $K2C decode --tokenizer $TOK"
expect_fail cli_decode_garbage "bad token id list" sh -c "echo '1 x 2' | $K2C decode --tokenizer $TOK"
expect_fail cli_encode_no_file "nofile.txt" "$K2C" encode --tokenizer "$TOK" --text-file "$TMP/nofile.txt"
expect_fail cli_encode_no_tokenizer "no tiktoken.model or tokenizer.json" "$K2C" encode --tokenizer "$TMP/none" --text-file "$TMP/in.txt"

mkdir -p "$TMP/bad1" "$TMP/bad2"
{ head -5 "$TOK/tiktoken.model"; echo 'not*base64 5'; } >"$TMP/bad1/tiktoken.model"
expect_fail cli_bad_model "tiktoken.model:6: bad base64" "$K2C" encode --tokenizer "$TMP/bad1" --text-file "$TMP/in.txt"
cp "$TOK/tiktoken.model" "$TMP/bad2/"; echo '{"added_tokens_decoder": {"600": ' >"$TMP/bad2/tokenizer_config.json"
expect_fail cli_bad_config "tokenizer_config.json:.*bad JSON" "$K2C" encode --tokenizer "$TMP/bad2" --text-file "$TMP/in.txt"

cat >"$TMP/msgs.json" <<'J'
[{"role": "user", "content": "What is 2+2?"},
 {"role": "assistant", "content": "", "tool_calls": [{"id": "functions.calc:0", "type": "function",
   "function": {"name": "calc", "arguments": "{\"expr\": \"2+2\"}"}}]},
 {"role": "tool", "tool_call_id": "functions.calc:0", "content": "4"}]
J
echo '[{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}}]' >"$TMP/tools.json"
printf '%s' '<|im_system|>tool_declare<|im_middle|>[{"type":"function","function":{"name":"calc","parameters":{"type":"object"}}}]<|im_end|><|im_system|>system<|im_middle|>You are Kimi, an AI assistant created by Moonshot AI.<|im_end|><|im_user|>user<|im_middle|>What is 2+2?<|im_end|><|im_assistant|>assistant<|im_middle|><|tool_calls_section_begin|><|tool_call_begin|>functions.calc:0<|tool_call_argument_begin|>{"expr": "2+2"}<|tool_call_end|><|tool_calls_section_end|><|im_end|><|im_system|>tool<|im_middle|>## Return of functions.calc:0
4<|im_end|><|im_assistant|>assistant<|im_middle|>' >"$TMP/want.txt"
"$K2C" template --tokenizer "$TOK" --messages "$TMP/msgs.json" --tools "$TMP/tools.json" >"$TMP/got.txt" 2>"$TMP/err.txt" \
  && cmp -s "$TMP/got.txt" "$TMP/want.txt" && pass cli_template || fail cli_template "$(cat "$TMP/err.txt"; diff "$TMP/got.txt" "$TMP/want.txt" | head -5)"
echo '{"role": "user"}' >"$TMP/notarray.json"
expect_fail cli_template_not_array "notarray.json: messages: expected a JSON array" "$K2C" template --tokenizer "$TOK" --messages "$TMP/notarray.json"
echo '[{"role": "user", "content": 42}]' >"$TMP/badtype.json"
expect_fail cli_template_bad_type "badtype.json: \[0\].content" "$K2C" template --tokenizer "$TOK" --messages "$TMP/badtype.json"
echo '[{"role": "user", "content": "x"}' >"$TMP/badjson.json"
expect_fail cli_template_bad_json "badjson.json:.*bad JSON" "$K2C" template --tokenizer "$TOK" --messages "$TMP/badjson.json"
expect_fail cli_template_bad_tools "msgs.json: tools: expected\|tools.json\|notarray.json: tools" "$K2C" template --tokenizer "$TOK" --messages "$TMP/msgs.json" --tools "$TMP/notarray.json"
expect_fail cli_train_bad_vocab "vocab" "$K2C" tokenizer train --vocab 10 --out "$TMP/t2" tests/data/tokenizer_corpus.txt
