# Trainer end to end through the CLI: data prepare (byte tokenizer and --ids-file), k2c train with a
# killed-and-resumed run whose loss sequence must equal the uninterrupted one bit for bit, k2c grad on
# the golden train case, k2c plot, and errors for bad input.
. "$(dirname "$0")/lib.sh"
G=tests/data/golden/k2-tiny-train

# --- data
$K2C data prepare --tokenizer bytes --out "$TMP/data" --val-fraction 0.1 src/*/*.c include/k2c.h >"$TMP/prep.txt" 2>&1 \
  && [ -f "$TMP/data/train_000.bin" ] && [ -f "$TMP/data/val_000.bin" ] && pass data_prepare_bytes \
  || fail data_prepare_bytes "$(cat "$TMP/prep.txt")"
# a tiny tiktoken BPE (256 bytes + 3 merges): "the" is one token, documents end without EOS (none defined)
mkdir -p "$TMP/tok"
python3 -c 'import base64,sys
t=[bytes([i]) for i in range(256)]+[b"th",b"the",b" the"]
sys.stdout.write("".join(base64.b64encode(x).decode()+" "+str(i)+"\n" for i,x in enumerate(t)))' >"$TMP/tok/tiktoken.model"
printf 'the cat and the hat' >"$TMP/doc.txt"
$K2C data prepare --tokenizer "$TMP/tok" --out "$TMP/bpe" --val-fraction 0 "$TMP/doc.txt" >"$TMP/bpe.txt" 2>&1 \
  && grep -q "^14 tokens" "$TMP/bpe.txt" && [ "$(od -A n -t u4 -j 24 -N 4 "$TMP/bpe/train_000.bin" | tr -d ' ')" = 257 ] \
  && pass data_prepare_tokenizer || fail data_prepare_tokenizer "$(cat "$TMP/bpe.txt")"
printf '1 2 3 4 5 6 7 8 9 10, 11,12\n13 14 15 16 17 18 19 20' >"$TMP/ids.txt"
$K2C data prepare --ids-file "$TMP/ids.txt" --out "$TMP/ids" --val-fraction 0.25 >/dev/null 2>&1 \
  && [ "$(stat -c %s "$TMP/ids/train_000.bin")" = $((24 + 15 * 4)) ] && [ "$(stat -c %s "$TMP/ids/val_000.bin")" = $((24 + 5 * 4)) ] \
  && pass data_prepare_ids_file || fail data_prepare_ids_file
printf 'garbage-not-a-shard-file-at-all' >"$TMP/ids/train_001.bin"
expect_fail data_bad_shard "not a k2c token shard" $K2C train --preset k2-tiny --data "$TMP/ids" --out "$TMP/bad" --steps 1 --batch 1 --seq 4 --quiet

# --- resume: a run stopped after step 5 (checkpoint at 4) and resumed equals the uninterrupted run
common="--data $TMP/data --steps 8 --batch 2 --seq 16 --lr 3e-3 --warmup 2 --threads 1 --quiet --tau 0.05 --eval-every 4 --eval-batches 2"
$K2C train --preset k2-tiny $common --out "$TMP/full" >"$TMP/full.txt" 2>&1 || fail train_full "$(tail -3 "$TMP/full.txt")"
$K2C train --preset k2-tiny $common --out "$TMP/part" --save-every 4 --stop-after 5 >"$TMP/part.txt" 2>&1 || fail train_part "$(tail -3 "$TMP/part.txt")"
[ "$(cat "$TMP/part/LATEST")" = step_0000004 ] && [ "$(wc -l <"$TMP/part/train.jsonl")" = 5 ] && pass train_checkpoint_latest \
  || fail train_checkpoint_latest "LATEST=$(cat "$TMP/part/LATEST" 2>/dev/null)"
$K2C train $common --resume "$TMP/part" >"$TMP/res.txt" 2>&1 || fail train_resume "$(tail -3 "$TMP/res.txt")"
strip() { sed 's/,"time":[0-9.]*}$/}/' "$1"; }
if [ "$(strip "$TMP/full/train.jsonl")" = "$(strip "$TMP/part/train.jsonl")" ] && [ "$(wc -l <"$TMP/full/train.jsonl")" = 8 ]; then
  pass train_resume_bit_identical
else
  fail train_resume_bit_identical "$(diff <(strip "$TMP/full/train.jsonl") <(strip "$TMP/part/train.jsonl") | head -4)"
fi
grep -q '"eval_loss"' "$TMP/full/train.jsonl" && grep -q '"maxvio":\[' "$TMP/full/train.jsonl" \
  && grep -q '"clipped":[1-9]' "$TMP/full/train.jsonl" && pass train_log_fields || fail train_log_fields "$(head -2 "$TMP/full/train.jsonl")"
# the resumed run's checkpoint replaced the one it resumed from: exactly one left, the one LATEST names
ck=$(ls -d "$TMP"/part/step_* 2>/dev/null)
if [ "$(echo "$ck" | grep -c .)" = 1 ] && [ ! -d "$TMP/part/step_0000004" ] && [ "$ck" = "$TMP/part/$(cat "$TMP/part/LATEST" 2>/dev/null)" ]; then
  pass train_old_checkpoints_removed
else fail train_old_checkpoints_removed "checkpoints: $(echo $ck), LATEST $(cat "$TMP/part/LATEST" 2>/dev/null)"; fi

# --- QK-Clip from the updated weights: the max logit each step leaves (measured) is at or under tau
clipc="--preset k2-tiny --data $TMP/data --steps 6 --batch 2 --seq 16 --lr 3e-2 --warmup 1 --threads 1 --quiet --tau 0.05 --measure-after-step"
$K2C train $clipc --clip-logits updated --out "$TMP/cu" >"$TMP/cu.txt" 2>&1 || fail train_clip_updated "$(tail -3 "$TMP/cu.txt")"
python3 - "$TMP/cu/train.jsonl" 0.05 >"$TMP/cu.check" 2>&1 <<'PY' && pass train_clip_updated_at_tau || fail train_clip_updated_at_tau "$(cat "$TMP/cu.check")"
import json, sys
r = [json.loads(l) for l in open(sys.argv[1])]
tau = float(sys.argv[2])
assert len(r) == 6 and all(x["tau"] == tau for x in r), r[0]
assert sum(x["clipped"] for x in r) > 0, "no head was clipped"
assert all(x["max_logit_after_step"] <= tau * (1 + 1e-5) for x in r), [x["max_logit_after_step"] for x in r]
PY
$K2C train $clipc --out "$TMP/ck" >"$TMP/ck.txt" 2>&1 && grep -q '"max_logit_after_step":' "$TMP/ck/train.jsonl" \
  && pass train_measure_after_step || fail train_measure_after_step "$(tail -3 "$TMP/ck.txt")"
expect_fail train_bad_clip_logits "clip-logits must be" $K2C train $clipc --clip-logits sometimes --out "$TMP/cx"

# --- grad on the golden train case
ids=$(python3 tests/st_check.py ids $G/expected_train.safetensors step1.input_ids 2>"$TMP/ids.err")
if [ -z "$ids" ]; then fail grad_cli_golden "no step1.input_ids: $(tail -1 "$TMP/ids.err")"; else
  $K2C grad --model $G --ids "$ids" --out "$TMP/grad.safetensors" >"$TMP/grad.txt" 2>&1 \
    && grep -q "loss 6.7652" "$TMP/grad.txt" && grep -q "137 gradients" "$TMP/grad.txt" && pass grad_cli_golden \
    || fail grad_cli_golden "$(cat "$TMP/grad.txt")"
fi
expect_fail grad_bad_id "out of range" $K2C grad --model $G --ids 1,2,99999 --out "$TMP/g2.safetensors"

# --- plot
$K2C plot "$TMP/full/train.jsonl" "$TMP/part/train.jsonl" --out "$TMP/p.svg" 2>"$TMP/plot.txt" && grep -q "<polyline" "$TMP/p.svg" \
  && grep -q "max attention logit" "$TMP/p.svg" && pass plot_svg || fail plot_svg "$(cat "$TMP/plot.txt")"
$K2C plot "$TMP/ck/train.jsonl" --out "$TMP/pc.svg" >/dev/null 2>&1 && grep -q "stroke-dasharray='6,3'" "$TMP/pc.svg" \
  && grep -q ">tau 0.05<" "$TMP/pc.svg" && pass plot_after_step_and_tau || fail plot_after_step_and_tau
$K2C plot "$TMP/full/train.jsonl" --out "$TMP/p.png" >"$TMP/png.txt" 2>&1 && [ "$(head -c 4 "$TMP/p.png" | tail -c 3)" = PNG ] \
  && [ ! -e "$TMP/p.png.svg" ] && [ ! -e "$TMP/p.png.tmp" ] && pass plot_png || fail plot_png "$(cat "$TMP/png.txt")"
echo 'not json' >"$TMP/bad.jsonl"
expect_fail plot_bad_log "not JSON" $K2C plot "$TMP/bad.jsonl" --out "$TMP/q.svg"
expect_fail train_no_model "exactly one of" $K2C train --data "$TMP/data" --out "$TMP/x"
expect_fail train_bad_optimizer "optimizer must be" $K2C train --preset k2-tiny --data "$TMP/data" --out "$TMP/x" --optimizer sgd
# --allow-special: formatted conversations keep their markers as special ids; by default they stay text
$K2C tokenizer train --vocab 400 --out "$TMP/ktok" tests/data/tokenizer_corpus.txt >/dev/null 2>&1
printf '<|im_user|>user<|im_middle|>hi<|im_end|>' >"$TMP/conv.txt"
$K2C data prepare --tokenizer "$TMP/ktok" --out "$TMP/sp1" --val-fraction 0 --allow-special "$TMP/conv.txt" >"$TMP/sp1.txt" 2>&1
$K2C data prepare --tokenizer "$TMP/ktok" --out "$TMP/sp0" --val-fraction 0 "$TMP/conv.txt" >"$TMP/sp0.txt" 2>&1
first=$(od -A n -t u4 -j 24 -N 4 "$TMP/sp1/train_000.bin" | tr -d ' ')
n1=$(grep -o '^[0-9]* tokens' "$TMP/sp1.txt" | cut -d' ' -f1); n0=$(grep -o '^[0-9]* tokens' "$TMP/sp0.txt" | cut -d' ' -f1)
if [ "$first" = 403 ] && [ -n "$n1" ] && [ -n "$n0" ] && [ "$n1" -lt "$n0" ]; then pass data_prepare_allow_special; else fail data_prepare_allow_special "first $first, $n1 vs $n0 tokens"; fi
