#!/usr/bin/env bash
# k2c beside ik_llama.cpp in one run, on the same files (docs/BENCHMARKS.md "Same run with ik_llama.cpp"):
# the Moonlight-shaped model of bench/model.sh written by `k2c quantize` as GGUF files, which both engines load;
# decode (32 tokens after a 16-token prompt; ik's tg32 starts from an empty cache) and prefill of 128 and 512
# tokens at 1 and 2 threads, with k2c's read-bandwidth probe (`k2c bench`: 1 GB in huge pages, every thread
# streaming its part, best of five passes) in the same run. Both engines copy the weights into memory
# (k2c --load copy; ik -mmp 0) and use transparent huge pages (ik -thp 1).
#   IK=/path/to/ik_llama.cpp/build/bin bash bench/ik.sh [FORMAT...]
# FORMAT: bf16 q8_0 q4_k_m q2_k int4 (default: all). int4 is the K2-Thinking layout (compressed-tensors INT4
# experts with BF16 scales, the rest BF16; `k2c mkmodel --dtype int4`): k2c runs that folder, ik the same
# weights written as Q4_0 experts + BF16 (`k2c quantize --type BF16 --type-experts Q4_0`, the closest ggml type:
# the same 32-element groups, an fp16 instead of a BF16 scale).
# IK_FLAGS (default "-fa 1 -mla 3 -fmoe 1 -thp 1 -mmp 0"), IK_COMMIT names ik's commit when $IK/../.. is no git
# checkout, REPS (default 2) repetitions of every measurement for both engines (means; k2c decodes 32 x REPS tokens).
# PREPARE_ONLY=1 only writes the model and the GGUF files (long, and no timing: run it outside the benchmark
# lock, then the timings under it); THREADS (default "1 2") the thread counts timed. BF16_PROMPT=1 adds k2c's prefill
# with K2C_PROMPT_PRECISION=bf16 (BF16 products, AMX where the CPU has it: the arithmetic ik uses) as two more
# columns; the default k2c columns keep fp32 activations for BF16 weights (int8 for GGUF block formats).
set -euo pipefail
cd "$(dirname "$0")/.."
K2C=${K2C:-build/k2c}
IK=${IK:?set IK to an ik_llama.cpp build bin/ folder}
IK_FLAGS=${IK_FLAGS:--fa 1 -mla 3 -fmoe 1 -thp 1 -mmp 0}
REPS=${REPS:-2}
M=${M:-build/bench/moonlight-shape-bf16}
W=${W:-build/bench/gguf}
FORMATS=${*:-bf16 q8_0 q4_k_m q2_k int4}
mkdir -p "$W"
if [ ! -f "$M/config.json" ]; then
  mkdir -p "$(dirname "$M")"
  $K2C mkmodel --preset moonlight-16b-a3b --experts 16 --experts-per-tok 6 --dtype bf16 --shards 4 --out "$M"
fi
# a vocabulary (mkmodel writes none; ik_llama.cpp refuses a GGUF without one)
[ -f "$M/tokenizer.json" ] || [ -f "$M/tiktoken.model" ] || python3 bench/synth_tokenizer.py 163840 "$M"
gguf_of() {   # FORMAT -> the GGUF file ik runs (made once)
  local f=$1 out
  case $f in
    int4) local I=${M}-int4
          if [ ! -f "$I/config.json" ]; then
            $K2C mkmodel --preset moonlight-16b-a3b --experts 16 --experts-per-tok 6 --dtype int4 --shards 4 --out "$I" >&2
            cp "$M"/tokenizer*.json "$I/"
          fi
          out=$W/ml-int4-as-q4_0.gguf
          [ -f "$out" ] || $K2C quantize --model "$I" --type BF16 --type-experts Q4_0 --out "$out" >&2 ;;
    *)    local T; T=$(echo "$f" | tr a-z A-Z)
          out=$W/ml-$f.gguf
          [ -f "$out" ] || $K2C quantize --model "$M" --type "$T" --out "$out" >&2 ;;
  esac
  echo "$out"
}
if [ "${PREPARE_ONLY:-0}" = 1 ]; then
  for f in $FORMATS; do gguf_of "$f"; done
  exit 0
fi
bash bench/machine.sh
echo "ik_llama.cpp: $IK, commit ${IK_COMMIT:-$(git -C "$IK/../.." rev-parse HEAD 2>/dev/null || echo unknown)}, flags: $IK_FLAGS"
k2c_run() {   # MODEL THREADS -> "pp128 pp512 tg32 bandwidth_gb_s decode_gb_s" (prefill: mean of REPS; decode: 32 x REPS tokens)
  $K2C bench --model "$1" --threads "$2" --prefill-list 128,512 --reps "$REPS" --prompt 16 --gen $((32 * REPS)) --load copy --json 2>/dev/null |
    python3 -c 'import json,sys
r=json.loads(sys.stdin.read()); p={x["tokens"]: x["tok_s"] for x in r["prefill_list"]}
print("%.2f %.2f %.2f %.1f %.1f" % (p[128], p[512], r["decode_tok_s"], r["read_bandwidth_gb_s"], r["decode_gb_s"]))'
}
ik_run() {    # GGUF THREADS -> "pp128 pp512 tg32" tok/s (means over REPS)
  "$IK/llama-bench" -m "$1" -t "$2" -p 128,512 -n 32 -r "$REPS" $IK_FLAGS -o csv 2>/dev/null | python3 -c 'import csv,sys
rows=list(csv.DictReader(sys.stdin)); v={}
for r in rows: v[(int(r["n_prompt"]), int(r["n_gen"]))]=float(r["avg_ts"])
print("%.2f %.2f %.2f" % (v.get((128,0),0), v.get((512,0),0), v.get((0,32),0)))'
}
printf '%-8s %-3s | %-28s | %-28s | %s%s\n' format thr "k2c pp128 / pp512 / tg32" "ik pp128 / pp512 / tg32" "k2c decode GB/s of probe" \
  "$([ "${BF16_PROMPT:-0}" = 1 ] && echo ' | k2c bf16-prompt pp128 / pp512')"
for f in $FORMATS; do
  g=$(gguf_of "$f")
  k=$g; [ "$f" = int4 ] && k=${M}-int4
  for t in ${THREADS:-1 2}; do
    read -r p128 p512 tg bw gbs < <(k2c_run "$k" "$t")
    extra=""
    if [ "${BF16_PROMPT:-0}" = 1 ]; then
      read -r b128 b512 _ _ _ < <(K2C_PROMPT_PRECISION=bf16 k2c_run "$k" "$t")
      extra=" | $b128 $b512"
    fi
    read -r i128 i512 itg < <(ik_run "$g" "$t")
    printf '%-8s %-3s | %8s %8s %8s | %8s %8s %8s | %s of %s (%s%%)%s\n' "$f" "$t" "$p128" "$p512" "$tg" "$i128" "$i512" "$itg" \
      "$gbs" "$bw" "$(python3 -c "print(round(100*$gbs/$bw))")" "$extra"
  done
done
