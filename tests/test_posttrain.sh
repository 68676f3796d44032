# The post-training pipeline from the command line, at toy size: k2c synth (train and held-out splits with
# disjoint templates), k2c data sft (masked shards, version 2), a few SFT steps from models/k2-mini, and
# k2c eval-agent (per-category table, a JSONL line per task; a rollout past the context and a malformed
# task file are a scored failure and a clear error, not crashes).
source "$(dirname "$0")/lib.sh"
M=models/k2-mini
[ -f "$M/model.safetensors" ] || { skip posttrain_cli "no models/k2-mini"; exit 0; }
if "$K2C" synth --n 40 --seed 2 --out "$TMP/train.jsonl" >"$TMP/s1.out" 2>&1 &&
   "$K2C" synth --n 40 --seed 3 --split heldout --out "$TMP/heldout.jsonl" >"$TMP/s2.out" 2>&1 &&
   [ "$(wc -l <"$TMP/train.jsonl")" = 40 ] && [ "$(wc -l <"$TMP/heldout.jsonl")" = 40 ]; then pass synth_writes_tasks
else fail synth_writes_tasks "$(cat "$TMP/s1.out" "$TMP/s2.out")"; fi
tpl() { grep -o '"template":"[^"]*"' "$1" | sort -u; }
if [ -z "$(comm -12 <(tpl "$TMP/train.jsonl") <(tpl "$TMP/heldout.jsonl"))" ]; then pass synth_heldout_templates_disjoint
else fail synth_heldout_templates_disjoint "$(comm -12 <(tpl "$TMP/train.jsonl") <(tpl "$TMP/heldout.jsonl") | head -3)"; fi
expect_fail synth_bad_split "split is train, heldout or all" "$K2C" synth --n 2 --split test --out "$TMP/x.jsonl"
# SFT shards: version 2 (a loss mask), fewer loss tokens than tokens
if "$K2C" data sft --tokenizer "$M" --out "$TMP/sft" "$TMP/train.jsonl" --text README.md >"$TMP/d.out" 2>&1 &&
   [ "$(od -An -tu4 -j8 -N4 "$TMP/sft/train_000.bin" | tr -d ' ')" = 2 ]; then pass sft_shards_version2
else fail sft_shards_version2 "$(cat "$TMP/d.out")"; fi
grep -q "with loss" "$TMP/d.out" && pass sft_reports_loss_tokens || fail sft_reports_loss_tokens "$(cat "$TMP/d.out")"
echo '{"messages": 3}' >"$TMP/badconv.jsonl"
expect_fail sft_bad_conversation "badconv.jsonl:1" "$K2C" data sft --tokenizer "$M" --out "$TMP/sft2" "$TMP/badconv.jsonl"
if timeout 300 "$K2C" train --init "$M" --data "$TMP/sft" --out "$TMP/run" --steps 2 --batch 2 --seq 128 --lr 1e-3 --threads 1 \
     --log "$TMP/sft.jsonl" --quiet >"$TMP/t.out" 2>&1 && grep -q '"step":2' "$TMP/sft.jsonl" && ! grep -q 'nan' "$TMP/sft.jsonl"; then
  pass sft_trains_on_masked_shards
else fail sft_trains_on_masked_shards "$(tail -3 "$TMP/t.out")"; fi
# eval-agent: a table and one JSONL line per task
if timeout 300 "$K2C" eval-agent --model "$M" --tasks "$TMP/heldout.jsonl" --limit 4 --max-turns 2 --max-tokens 24 --threads 1 \
     --out "$TMP/res.jsonl" >"$TMP/e.out" 2>"$TMP/e.err" && grep -q "^overall  *4 " "$TMP/e.out" && [ "$(wc -l <"$TMP/res.jsonl")" = 4 ] &&
   grep -q '"success":' "$TMP/res.jsonl" && grep -q '"transcript":{' "$TMP/res.jsonl"; then pass eval_agent_table_and_jsonl
else fail eval_agent_table_and_jsonl "$(tail -3 "$TMP/e.out" "$TMP/e.err")"; fi
# a context too small for the prompt: every task a scored failure with finish "context"
if timeout 300 "$K2C" eval-agent --model "$M" --tasks "$TMP/heldout.jsonl" --limit 2 --ctx 64 --threads 1 --out "$TMP/ctx.jsonl" \
     >"$TMP/c.out" 2>"$TMP/c.err" && [ "$(grep -c '"finish":"context"' "$TMP/ctx.jsonl")" = 2 ] && grep -q '"success":false' "$TMP/ctx.jsonl"; then
  pass eval_agent_past_context_is_scored
else fail eval_agent_past_context_is_scored "$(tail -3 "$TMP/c.out" "$TMP/c.err")"; fi
echo '{"id":"x","task":"hi","tools":"calculator"}' >"$TMP/bad.jsonl"
expect_fail eval_agent_bad_task_file "bad.jsonl:1: field 'verify'" "$K2C" eval-agent --model "$M" --tasks "$TMP/bad.jsonl"
# RL on a random tiny model: tasks any text can pass some of the time (so rewards vary within a group and the
# gradient is not zero), K rollouts each, PTX on plain-text shards; the log has reward, success, length and KL; a
# run stopped after step 2 and resumed logs step 3 exactly as the uninterrupted run.
source "$(dirname "$0")/server_lib.sh"
TM="$TMP/tiny"
make_model "$TM"
sed -i 's/"max_position_embeddings": [0-9]*/"max_position_embeddings": 4096/' "$TM/config.json"
cat >"$TMP/letters.jsonl" <<'JSON'
{"id":"e1","category":"letters","task":"Say something with the letter e.","tools":"calculator","split":"train","budget":10,"verify":{"answer":["e"]}}
{"id":"e2","category":"letters","task":"Write a word with an a.","tools":"calculator","split":"train","budget":10,"verify":{"answer":["a"]}}
JSON
"$K2C" data prepare --tokenizer "$TM" --out "$TMP/tsft" README.md >"$TMP/ts.out" 2>&1 || fail rl_ptx_shards "$(cat "$TMP/ts.out")"
RL=("$K2C" rl --init "$TM" --tasks "$TMP/letters.jsonl" --tasks-per-step 2 --k 4 --max-turns 1 --max-tokens 12 --threads 1
    --save-every 1 --lr 1e-3 --steps 3 --ptx-data "$TMP/tsft" --ptx-seq 64)
if timeout 300 "${RL[@]}" --out "$TMP/rlA" >"$TMP/rlA.out" 2>&1 && [ "$(wc -l <"$TMP/rlA/rl.jsonl")" = 3 ]; then pass rl_runs
else fail rl_runs "$(tail -3 "$TMP/rlA.out")"; fi
if grep -q '"reward":' "$TMP/rlA/rl.jsonl" && grep -q '"success":' "$TMP/rlA/rl.jsonl" && grep -q '"length":' "$TMP/rlA/rl.jsonl" &&
   grep -q '"kl":' "$TMP/rlA/rl.jsonl" && ! grep -q '"ptx_loss":0,' "$TMP/rlA/rl.jsonl" && grep -q '"grad_norm":[1-9]' "$TMP/rlA/rl.jsonl"; then
  pass rl_log_fields
else fail rl_log_fields "$(head -2 "$TMP/rlA/rl.jsonl")"; fi
L=$(cat "$TMP/rlA/LATEST" 2>/dev/null)
[ "$L" = step_0000003 ] && [ -f "$TMP/rlA/$L/optimizer.safetensors" ] && [ -f "$TMP/rlA/$L/tiktoken.model" ] &&
  [ ! -d "$TMP/rlA/step_0000002" ] && pass rl_checkpoint_latest || fail rl_checkpoint_latest "LATEST '$L': $(ls "$TMP/rlA")"
timeout 300 "${RL[@]}" --out "$TMP/rlB" --stop-after 2 >"$TMP/rlB1.out" 2>&1
timeout 300 "${RL[@]}" --out "$TMP/rlB" --resume "$TMP/rlB" >"$TMP/rlB2.out" 2>&1
strip() { sed 's/,"time":[0-9.]*}//' "$1"; }
if grep -q "resumed at step 2" "$TMP/rlB2.out" && [ "$(strip "$TMP/rlA/rl.jsonl")" = "$(strip "$TMP/rlB/rl.jsonl")" ]; then pass rl_resume_identical
else fail rl_resume_identical "$(diff <(strip "$TMP/rlA/rl.jsonl") <(strip "$TMP/rlB/rl.jsonl") | head -4; tail -2 "$TMP/rlB2.out")"; fi
# the evaluated checkpoint is a model folder the agent loads
if timeout 120 "$K2C" eval-agent --model "$TMP/rlA/$L" --tasks "$TMP/letters.jsonl" --max-turns 1 --max-tokens 8 --threads 1 >"$TMP/re.out" 2>&1 &&
   grep -q "^overall" "$TMP/re.out"; then pass rl_checkpoint_evaluates
else fail rl_checkpoint_evaluates "$(tail -3 "$TMP/re.out")"; fi
expect_fail rl_needs_init "give --init" "$K2C" rl --tasks "$TMP/letters.jsonl" --out "$TMP/rlC"
expect_fail rl_bad_task_file "bad.jsonl:1" "$K2C" rl --init "$TM" --tasks "$TMP/bad.jsonl" --out "$TMP/rlD"
if "$K2C" plot "$TMP/rlA/rl.jsonl" --out "$TMP/rl.svg" >"$TMP/p.out" 2>&1 && [ "$(grep -c '<polyline' "$TMP/rl.svg")" = 4 ] &&
   grep -q "KL to the SFT policy" "$TMP/rl.svg" && grep -q "success rate" "$TMP/rl.svg"; then pass rl_plot_panels
else fail rl_plot_panels "$(cat "$TMP/p.out")"; fi
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP"/*.err "$TMP"/*.out 2>/dev/null; then fail posttrain_sanitizer "$(grep -m3 'ERROR\|runtime error' "$TMP"/*.err "$TMP"/*.out)"; fi
# several updates on the same rollouts: the objective falls below its value at pi = pi_old
if timeout 300 "$K2C" rl --init "$TM" --tasks "$TMP/letters.jsonl" --tasks-per-step 2 --k 4 --max-turns 1 --max-tokens 12 --threads 1 \
     --lr 1e-3 --steps 1 --updates 3 --out "$TMP/rlU" >"$TMP/rlU.out" 2>&1 &&
   python3 -c "import json,sys; d=json.loads(open(sys.argv[1]).readline()); sys.exit(0 if d['loss'] > 0 and d['loss_last_update'] < d['loss'] else 1)" "$TMP/rlU/rl.jsonl"; then
  pass rl_updates_lower_the_objective
else fail rl_updates_lower_the_objective "$(head -c 300 "$TMP/rlU/rl.jsonl"; tail -2 "$TMP/rlU.out")"; fi
