#!/usr/bin/env bash
# Long context beside ik_llama.cpp in one run (issue 14's second "done when"; docs/BENCHMARKS.md): on one GGUF file
# of the Moonlight-shaped model (bench/ik.sh writes them; default the BF16 one), decode tok/s after 128, 1k, 4k
# and 8k cached positions and prefill tok/s of a 4k and an 8k prompt, k2c next to ik_llama.cpp.
#   IK=/path/to/ik_llama.cpp/build/bin bash bench/ik_depth.sh [GGUF]
# ik: `llama-bench -gp D,32` (32 tokens generated after a prompt of D, the rate of the 32) and `-p 4096,8192 -n 0`;
# k2c: `k2c bench --depth D --fill F` (F=repeat by default: the cache filled by repeating a prompt's rows, the
# same bytes and arithmetic per decode step as D real tokens, in seconds; FILL=prefill runs a real prefill of
# random ids) and `--prefill-list 4096,8192`. THREADS (default 2), DEPTHS (default "128 1024 4096 8000"),
# PROMPTS (default "4096,8192"), CACHE (k2c's --cache-type, default bf16; ik's cache is its f16 default),
# IK_FLAGS (default "-fa 1 -mla 3 -fmoe 1 -thp 1 -mmp 0"), REPS (default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
K2C=${K2C:-build/k2c}
IK=${IK:?set IK to an ik_llama.cpp build bin/ folder}
IK_FLAGS=${IK_FLAGS:--fa 1 -mla 3 -fmoe 1 -thp 1 -mmp 0}
G=${1:-build/bench/gguf/ml-bf16.gguf}
T=${THREADS:-2}
DEPTHS=${DEPTHS:-128 1024 4096 8000}
PROMPTS=${PROMPTS:-4096,8192}
CACHE=${CACHE:-bf16}
FILL=${FILL:-repeat}
REPS=${REPS:-1}
[ -f "$G" ] || { echo "no $G (bash bench/ik.sh PREPARE_ONLY=1 writes it)" >&2; exit 2; }
[ -x "$K2C" ] || make -j"$T" build/k2c
bash bench/machine.sh
echo "file: $G; ik_llama.cpp: $IK, commit ${IK_COMMIT:-$(git -C "$IK/../.." rev-parse HEAD 2>/dev/null || echo unknown)}, flags: $IK_FLAGS; threads $T; k2c cache $CACHE, fill $FILL"
printf '%-22s | %12s | %12s | %s\n' "" k2c ik "k2c / ik"
row() { python3 -c "import sys; a,b=float(sys.argv[2]),float(sys.argv[3]); print('%-22s | %12.2f | %12.2f | %.2fx' % (sys.argv[1], a, b, a / b if b else 0))" "$@"; }
declare -A kd
for d in $DEPTHS; do
  kd[$d]=$("$K2C" bench --model "$G" --threads "$T" --cache-type "$CACHE" --prompt 16 --gen $((32 * REPS)) --depth "$d" --fill "$FILL" \
           --load copy --json 2>/dev/null | python3 -c 'import json,sys; print("%.3f" % json.loads(sys.stdin.read().strip().splitlines()[-1])["decode_tok_s"])')
  ik=$("$IK/llama-bench" -m "$G" -t "$T" -gp "$d,32" -r "$REPS" $IK_FLAGS -o csv 2>/dev/null | python3 -c 'import csv,sys
rows=list(csv.DictReader(sys.stdin)); print("%.3f" % float(rows[-1]["avg_ts"]))')
  row "decode at depth $d" "${kd[$d]}" "$ik"
done
kp=$("$K2C" bench --model "$G" --threads "$T" --cache-type "$CACHE" --prefill-list "$PROMPTS" --reps "$REPS" --prompt 16 --gen 2 \
     --load copy --json 2>/dev/null | python3 -c 'import json,sys
r=json.loads(sys.stdin.read().strip().splitlines()[-1]); print(" ".join("%d:%.3f" % (x["tokens"], x["tok_s"]) for x in r["prefill_list"]))')
ikp=$("$IK/llama-bench" -m "$G" -t "$T" -p "$PROMPTS" -n 0 -r "$REPS" $IK_FLAGS -o csv 2>/dev/null | python3 -c 'import csv,sys
print(" ".join("%s:%.3f" % (r["n_prompt"], float(r["avg_ts"])) for r in csv.DictReader(sys.stdin)))')
for p in ${PROMPTS//,/ }; do
  a=$(tr ' ' '\n' <<<"$kp" | sed -n "s/^$p://p"); b=$(tr ' ' '\n' <<<"$ikp" | sed -n "s/^$p://p")
  row "prefill of $p" "${a:-0}" "${b:-0}"
done
first=${DEPTHS%% *}; last=${DEPTHS##* }
python3 -c "import sys; print('k2c decode at depth %s / at depth %s: %.0f%%' % (sys.argv[1], sys.argv[2], 100 * float(sys.argv[4]) / float(sys.argv[3])))" \
  "$first" "$last" "${kd[$first]}" "${kd[$last]}"
