#!/usr/bin/env bash
# Every benchmark of docs/BENCHMARKS.md, in order (make bench). Needs a quiet machine for meaningful numbers;
# the model benchmark generates a 10 GB checkpoint under build/bench/ the first time, and the optimizer study
# takes about 15 minutes (skip it with SKIP_STUDY=1).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "### model core";   bash bench/model.sh
echo "### tokenizer";    bash bench/tokenizer.sh
echo "### training";     bash bench/train_bench.sh
[ -n "${SKIP_STUDY:-}" ] || { echo "### optimizer study"; bash bench/optim_study.sh; }
echo "### server";       bash bench/server.sh
