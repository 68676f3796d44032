# Runs over MPI ranks (mpirun on this machine, shared memory and loopback only; tests/mpi_env.sh):
#   expert-parallel inference: every golden case at 2 and 3 ranks against one process (tests/mpi_golden.c);
#     the CLI (logits prefill/decode, greedy generate) against one process; per-rank RSS falls with the ranks;
#     ranks that hold different models, or a rank that cannot load, refuse to start; a killed rank ends the job
#     with rank 0's message within seconds; serve under 2 ranks answers the OpenAI end-to-end test
#   data-parallel training: 2 ranks against 1 on the golden training model (MuonClip and AdamW, two steps:
#     losses and every parameter within 1e-5), a 2-rank checkpoint resumed on 1 and on 3 ranks, refusals
# SKIP when OpenMPI is not installed or the build has no MPI.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/mpi_env.sh"
T="${K2C_TESTS:-build/tests}"
if ! why=$(mpi_ready); then skip mpi "$why"; exit 0; fi
G=tests/data/golden

# --- every golden case, 2 and 3 ranks (the program prints its own PASS/FAIL lines on rank 0). Under the
# sanitizers (which look for memory errors, not numbers: the plain run checks those) 2 ranks cover the code
# paths, and the 50-step curves below are left to the plain run: together they kept CI's sanitizer pass long.
NS="2 3"; [ -n "${K2C_SANITIZE:-}" ] && NS=2
for n in $NS; do
  run_checker mpi_golden_n$n timeout 300 $MPIRUN -n $n "$T/mpi_golden"
done
[ -n "${K2C_SANITIZE:-}" ] && skip mpi_golden_n3 "sanitizer run: 2 ranks cover the code (the plain run checks 3)"


# --- the CLI: logits of a prefill and of a token-by-token decode, 2 ranks against one process
C=$G/k2-tiny-fp8
ids=$(python3 tests/st_check.py ids $C/expected.safetensors input_ids)
for mode in prefill decode; do
  flag=""; [ $mode = decode ] && flag=--decode
  $K2C logits --model $C --ids "$ids" $flag --threads 1 --out "$TMP/one_$mode.st" >"$TMP/one.log" 2>&1
  timeout 60 $MPIRUN -n 2 $K2C logits --model $C --ids "$ids" $flag --threads 1 --out "$TMP/ep_$mode.st" >"$TMP/ep.log" 2>&1
  if out=$(python3 tests/st_check.py close "$TMP/one_$mode.st" "$TMP/ep_$mode.st" logits 1e-5 2>&1); then pass mpi_cli_logits_$mode
  else fail mpi_cli_logits_$mode "$out $(tail -3 "$TMP/ep.log")"; fi
done
# greedy generation: rank 0 samples, the others follow; the same ids as one process
$K2C generate --model $G/moonlight-tiny --ids 5,9,200,31 --max-tokens 24 --temperature 0 --threads 1 >"$TMP/g1.txt" 2>/dev/null
timeout 60 $MPIRUN -n 3 $K2C generate --model $G/moonlight-tiny --ids 5,9,200,31 --max-tokens 24 --temperature 0 --threads 1 \
  >"$TMP/g3.txt" 2>"$TMP/g3.log"
if [ -s "$TMP/g1.txt" ] && cmp -s "$TMP/g1.txt" "$TMP/g3.txt"; then pass mpi_cli_generate_n3
else fail mpi_cli_generate_n3 "one: $(head -c 200 "$TMP/g1.txt") three: $(head -c 200 "$TMP/g3.txt") $(tail -3 "$TMP/g3.log")"; fi

# --- memory per rank: a model whose routed experts are ~190 MB (32 experts x 2 layers, BF16); every expert is
# chosen by some token of the prompt, so each rank touches all of its own experts and none of the others'
python3 - "$TMP/rss_cfg.json" <<'PY'
import json, sys
c = json.load(open("tests/data/golden/k2-tiny-f32/config.json"))
c.update(hidden_size=1024, moe_intermediate_size=512, intermediate_size=512, n_routed_experts=32, num_experts_per_tok=8,
         num_hidden_layers=2, first_k_dense_replace=0, vocab_size=512, n_shared_experts=1)
json.dump(c, open(sys.argv[1], "w"))
PY
if $K2C mkmodel --config "$TMP/rss_cfg.json" --dtype bf16 --out "$TMP/rss_model" >"$TMP/mk.log" 2>&1; then
  pids=$(seq -s, 2 2 400)
  /usr/bin/time -f "%M" -o "$TMP/rss1" $K2C logits --model "$TMP/rss_model" --ids "$pids" --load mmap --threads 1 --out "$TMP/r1.st" >/dev/null 2>&1
  for n in 2 3; do
    timeout 120 $MPIRUN -n $n $K2C logits --model "$TMP/rss_model" --ids "$pids" --threads 1 --out "$TMP/r$n.st" >"$TMP/rss$n.log" 2>&1
  done
  python3 - "$TMP" <<'PY' && pass mpi_rss_per_rank || fail mpi_rss_per_rank "$(cat "$TMP/rss.out")"
import re, sys
d = sys.argv[1]
one = int(open(d + "/rss1").read().split()[-1]) / 1e3                  # MB (time reports KiB; close enough)
per = {}
for n in (2, 3):
    m = re.search(r"peak RSS (.*)", open("%s/rss%d.log" % (d, n)).read())
    per[n] = [float(x) for x in re.findall(r"rank \d+ ([0-9.]+) MB", m.group(1))] if m else []
experts = 2 * 32 * 3 * 1024 * 512 * 2 / 1e6                           # routed expert bytes, MB
out = open(d + "/rss.out", "w")
print("  peak RSS MB: 1 process %.0f; 2 ranks %s; 3 ranks %s (routed experts %.0f MB)" % (one, per[2], per[3], experts))
out.write("1: %s 2: %s 3: %s\n" % (one, per[2], per[3]))
ok = len(per[2]) == 2 and len(per[3]) == 3
# a rank > 0 holds its share of the experts: experts/N plus what every process has (libraries, buffers)
ok = ok and per[2][1] < one - 0.35 * experts and per[3][1] < per[2][1] - 0.1 * experts
ok = ok and max(per[3]) < max(per[2]) < one
sys.exit(0 if ok else 1)
PY
  cat "$TMP/rss.out" 2>/dev/null | sed 's/^/  rss /'
else
  fail mpi_rss_per_rank "mkmodel: $(tail -2 "$TMP/mk.log")"
fi

# --- refusals: ranks that open different models (MPMD: rank 1 gets another folder), a rank that cannot load
expect_fail mpi_different_models "holds a different model than rank 0" timeout 60 \
  $MPIRUN -n 1 $K2C logits --model $G/k2-tiny-f32 --ids 1,2,3 --out "$TMP/x.st" : -n 1 $K2C logits --model $G/dsv3-tiny --ids 1,2,3 --out "$TMP/x.st"
expect_fail mpi_rank_cannot_load "rank 1 of 2 cannot load" timeout 60 \
  $MPIRUN -n 1 $K2C logits --model $G/k2-tiny-f32 --ids 1,2,3 --out "$TMP/x.st" : -n 1 $K2C logits --model "$TMP/nowhere" --ids 1,2,3 --out "$TMP/x.st"

# --- a rank killed while the job runs: the job ends within seconds, and rank 0 says why
rank_pid() {  # MPIRUN_PID RANK: the pid of that rank (a child of mpirun whose environment names the rank)
  for p in $(pgrep -P "$1"); do
    if tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2"; then echo "$p"; return; fi
  done
}
free_port() { echo $((20000 + RANDOM % 20000)); }
wait_health() {  # PORT PID: until /health answers (at most ~20 s) or the process is gone
  for i in $(seq 1 200); do
    curl -s -m 1 "http://127.0.0.1:$1/health" 2>/dev/null | grep -q '"ok"' && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}
PORT=$(free_port)
$MPIRUN -n 2 $K2C serve --model models/k2-mini --port $PORT --threads 1 --parallel 2 >"$TMP/kill.log" 2>&1 &
MP=$!
if wait_health $PORT $MP && r1=$(rank_pid $MP 1) && [ -n "$r1" ]; then
  t0=$(date +%s%N)
  kill -9 "$r1"
  for i in $(seq 1 150); do kill -0 $MP 2>/dev/null || break; sleep 0.1; done
  if kill -0 $MP 2>/dev/null; then
    fail mpi_killed_rank_ends_job "mpirun still running 15 s after rank 1 was killed"; kill -9 $MP 2>/dev/null
  else
    wait $MP; rc=$?; dt=$(( ($(date +%s%N) - t0) / 1000000 ))
    if [ $rc != 0 ] && grep -q "k2c: error: the MPI job is being stopped" "$TMP/kill.log"; then
      pass mpi_killed_rank_ends_job; echo "  job ended ${dt} ms after rank 1 was killed (exit $rc)"
    else fail mpi_killed_rank_ends_job "exit $rc: $(tail -5 "$TMP/kill.log")"; fi
  fi
else
  fail mpi_killed_rank_ends_job "server under 2 ranks did not start: $(tail -5 "$TMP/kill.log")"; kill $MP 2>/dev/null
fi
wait 2>/dev/null

# --- data-parallel training on the golden training model (k2-tiny-train, its hyper-parameters), data made of
# the golden steps' ids; a global batch of 4 sequences: 2 per rank at 2 ranks
TG=$G/k2-tiny-train
python3 tests/st_check.py ids $TG/expected_train.safetensors step1.input_ids >"$TMP/tids.txt"
python3 tests/st_check.py ids $TG/expected_train.safetensors step2.input_ids >>"$TMP/tids.txt"
$K2C data prepare --ids-file "$TMP/tids.txt" --out "$TMP/tdata" --val-fraction 0.25 >/dev/null 2>&1
losses() { python3 -c 'import json,sys; print(" ".join("%.17g" % json.loads(l)["loss"] for l in open(sys.argv[1])))' "$1"; }
# max relative difference of the losses of two logs (over the steps both have)
loss_diff() { python3 - "$1" "$2" <<'PY'
import json, sys
a, b = ({json.loads(l)["step"]: json.loads(l)["loss"] for l in open(p)} for p in sys.argv[1:3])
common = sorted(set(a) & set(b))
print("%.3g" % max(abs(a[s] - b[s]) / abs(a[s]) for s in common) if common else "nan")
PY
}
# the same for the evaluation losses (every 10 steps)
eval_diff() { python3 - "$1" "$2" <<'PY'
import json, sys
a, b = ({r["step"]: r["eval_loss"] for r in map(json.loads, open(p)) if "eval_loss" in r} for p in sys.argv[1:3])
print("%.3g" % max(abs(a[s] - b[s]) / abs(a[s]) for s in a) if a and a.keys() == b.keys() else "nan")
PY
}
for opt in muonclip adamw; do
  tc="--init $TG --data $TMP/tdata --steps 2 --batch 4 --seq 16 --lr 0.02 --tau 6.517680286312616 --schedule const --quiet --optimizer $opt"
  $K2C train $tc --threads 1 --out "$TMP/t1_$opt" >"$TMP/t1.log" 2>&1
  $K2C train $tc --threads 2 --out "$TMP/t1b_$opt" >/dev/null 2>&1      # the spread of the order of sums alone
  timeout 120 $MPIRUN -n 2 $K2C train $tc --threads 1 --out "$TMP/t2_$opt" >"$TMP/t2.log" 2>&1
  d=$(loss_diff "$TMP/t1_$opt/train.jsonl" "$TMP/t2_$opt/train.jsonl")
  ck=step_0000002
  if [ "$(wc -l <"$TMP/t2_$opt/train.jsonl" 2>/dev/null)" = 2 ] && python3 -c "import sys; sys.exit(not float('$d') <= 1e-5)" &&
     out=$(python3 tests/st_compare.py "$TMP/t1_$opt/$ck/model.safetensors" "$TMP/t2_$opt/$ck/model.safetensors" 1e-5 \
           "$TMP/t1_$opt/$ck/model.safetensors" "$TMP/t1b_$opt/$ck/model.safetensors" 2>&1) &&
     out2=$(python3 tests/st_compare.py "$TMP/t1_$opt/$ck/optimizer.safetensors" "$TMP/t2_$opt/$ck/optimizer.safetensors" 1e-5 \
           "$TMP/t1_$opt/$ck/optimizer.safetensors" "$TMP/t1b_$opt/$ck/optimizer.safetensors" 2>&1); then
    pass mpi_train_2steps_$opt; echo "  losses: 1 process $(losses "$TMP/t1_$opt/train.jsonl"); 2 ranks: rel diff $d;$out"
  else
    fail mpi_train_2steps_$opt "loss rel diff $d; $out $out2 $(tail -3 "$TMP/t2.log")"
  fi
done
# 50 steps: the loss curve of 2 ranks against one process, within the spread of the order of sums (1 vs 2 threads)
for opt in muonclip adamw; do
  if [ -n "${K2C_SANITIZE:-}" ]; then skip mpi_train_50steps_$opt "sanitizer run: the 2-step checks cover the code"; continue; fi
  lc="--init $TG --data $TMP/tdata --steps 50 --batch 4 --seq 16 --lr 0.005 --schedule const --quiet --optimizer $opt --eval-every 10 --eval-batches 2"
  $K2C train $lc --threads 1 --out "$TMP/c1_$opt" >/dev/null 2>&1
  $K2C train $lc --threads 2 --out "$TMP/c1b_$opt" >/dev/null 2>&1
  timeout 120 $MPIRUN -n 2 $K2C train $lc --threads 1 --out "$TMP/c2_$opt" >"$TMP/c2.log" 2>&1
  sp=$(loss_diff "$TMP/c1_$opt/train.jsonl" "$TMP/c1b_$opt/train.jsonl"); d=$(loss_diff "$TMP/c1_$opt/train.jsonl" "$TMP/c2_$opt/train.jsonl")
  esp=$(eval_diff "$TMP/c1_$opt/train.jsonl" "$TMP/c1b_$opt/train.jsonl"); ed=$(eval_diff "$TMP/c1_$opt/train.jsonl" "$TMP/c2_$opt/train.jsonl")
  if [ "$(wc -l <"$TMP/c2_$opt/train.jsonl" 2>/dev/null)" = 50 ] && python3 -c "import sys; sys.exit(not float('$d') <= max(4 * float('$sp'), 1e-5))" &&
     python3 -c "import sys; sys.exit(not float('$ed') <= max(4 * float('$esp'), 1e-5))"; then
    pass mpi_train_50steps_$opt; echo "  50 steps $opt: 2 ranks vs 1 process rel diff $d (eval $ed), 1 vs 2 threads $sp (eval $esp)"
  else fail mpi_train_50steps_$opt "2 ranks vs 1: $d (eval $ed), threads spread $sp (eval $esp) $(tail -2 "$TMP/c2.log")"; fi
done
# a 2-rank checkpoint (step 2 of 4, the run stopped there) resumed on 1 and on 3 ranks: steps 3-4 as the
# uninterrupted 2-rank run
rc4="--data $TMP/tdata --steps 4 --batch 6 --seq 16 --lr 0.02 --tau 6.517680286312616 --schedule const --quiet --threads 1"
timeout 120 $MPIRUN -n 2 $K2C train --init $TG $rc4 --out "$TMP/rfull" >/dev/null 2>&1
timeout 120 $MPIRUN -n 2 $K2C train --init $TG $rc4 --out "$TMP/rpart" --save-every 2 --stop-after 2 >"$TMP/rp.log" 2>&1
for n in 1 3; do
  rm -rf "$TMP/rres$n"; cp -r "$TMP/rpart" "$TMP/rres$n"
  if [ $n = 1 ]; then $K2C train $rc4 --resume "$TMP/rres$n" >"$TMP/rr.log" 2>&1
  else timeout 120 $MPIRUN -n $n $K2C train $rc4 --resume "$TMP/rres$n" >"$TMP/rr.log" 2>&1; fi
  d=$(loss_diff "$TMP/rfull/train.jsonl" "$TMP/rres$n/train.jsonl")
  if [ "$(wc -l <"$TMP/rres$n/train.jsonl" 2>/dev/null)" = 4 ] && [ "$(cat "$TMP/rres$n/LATEST")" = step_0000004 ] &&
     python3 -c "import sys; sys.exit(not float('$d') <= 1e-5)" &&
     out=$(python3 tests/st_compare.py "$TMP/rfull/step_0000004/model.safetensors" "$TMP/rres$n/step_0000004/model.safetensors" 1e-4 2>&1); then
    pass mpi_train_resume_2_on_$n; echo "  resumed on $n: loss rel diff $d;$out"
  else fail mpi_train_resume_2_on_$n "loss rel diff $d $out $(tail -3 "$TMP/rr.log")"; fi
done
# refusals: ranks started with different options; fewer sequences than ranks
expect_fail mpi_train_different_options "does not run the same training as rank 0" timeout 60 \
  $MPIRUN -n 1 $K2C train --init $TG --data "$TMP/tdata" --steps 1 --batch 2 --seq 8 --lr 0.01 --quiet --out "$TMP/tx" : \
          -n 1 $K2C train --init $TG --data "$TMP/tdata" --steps 1 --batch 2 --seq 8 --lr 0.02 --quiet --out "$TMP/tx"
expect_fail mpi_train_batch_too_small "smaller than the 3 ranks" timeout 60 \
  $MPIRUN -n 3 $K2C train --init $TG --data "$TMP/tdata" --steps 1 --batch 2 --seq 8 --quiet --out "$TMP/ty"

# --- serve under 2 ranks: the OpenAI end-to-end test of tests/test_server.sh
. "$(dirname "$0")/server_lib.sh"
trap - EXIT
need_npm openai ajv      # SKIPs and ends the script when node cannot be had
if true; then
  M="$TMP/srv_model"
  make_model "$M"
  PORT=$(free_port)
  $MPIRUN -n 2 -x OMP_WAIT_POLICY=passive $K2C serve --model "$M" --port $PORT --parallel 8 --ctx 2048 --threads 1 \
    --api-key sekret --max-body 65536 --timeout 60 >"$TMP/serve.log" 2>&1 &
  MP=$!
  if wait_health $PORT $MP; then
    timeout 300 node tests/server_e2e.cjs build/npm "http://127.0.0.1:$PORT" sekret >"$TMP/e2e.out" 2>&1; rc=$?
    sed -E 's/^(PASS|FAIL|SKIP) /\1 mpi_n2_/' "$TMP/e2e.out"      # the names test_server.sh uses, marked
    if [ $rc != 0 ] && ! grep -q '^FAIL ' "$TMP/e2e.out"; then fail mpi_server_e2e "exit $rc: $(tail -3 "$TMP/e2e.out")"; fi
  else
    fail mpi_server_start "$(tail -5 "$TMP/serve.log")"
  fi
  kill $MP 2>/dev/null; wait $MP 2>/dev/null   # stopping mpirun stops the ranks: rank 0 exits 1, saying so
fi
exit 0      # every check above printed its PASS/FAIL line
