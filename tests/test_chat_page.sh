# The chat page served by `k2c serve` at /, in headless Chromium (Debian chromium, npm playwright-core,
# both installed here when missing): tests/chat_page.cjs. SKIP when no browser can be installed.
# K2C_SCREENSHOT=PATH keeps the page's screenshot (docs/chat-page.png comes from here).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/server_lib.sh"
CHROMIUM="$(command -v chromium || true)"
if [ -z "$CHROMIUM" ]; then K2C_NEED_CHROMIUM=1 bash scripts/install-deps.sh >"$TMP/apt.log" 2>&1; CHROMIUM="$(command -v chromium || true)"; fi
if [ -z "$CHROMIUM" ]; then skip chat_page "no Chromium and it could not be installed ($(tail -1 "$TMP/apt.log"))"; exit 0; fi
need_npm playwright-core
M="$TMP/model"
make_model "$M"
start_server "$TMP/server.log" --model "$M" --parallel 4 --ctx 2048 --threads 2 --api-key sekret --timeout 60
run_checker chat_page timeout 240 node tests/chat_page.cjs "$NPM" "http://127.0.0.1:$PORT" sekret "$CHROMIUM" "${K2C_SCREENSHOT:-$TMP/chat-page.png}"
stop_server
if grep -q "ERROR: AddressSanitizer\|runtime error:\|LeakSanitizer" "$TMP/server.log"; then fail chat_page_server_clean "$(grep -m3 'ERROR\|runtime error\|Leak' "$TMP/server.log")"; else pass chat_page_server_clean; fi
