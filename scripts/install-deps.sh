#!/usr/bin/env bash
# Installs the Debian packages k2c builds against, skipping the ones already present.
# Called by the Makefile before the first build; safe to run any number of times.
set -e
need=""
for p in gcc make pkg-config libjansson-dev libpcre2-dev libopenblas-openmp-dev libmicrohttpd-dev librsvg2-bin libopenmpi-dev openmpi-bin; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
if [ -n "${K2C_NEED_NODE:-}" ]; then
  command -v node >/dev/null 2>&1 || need="$need nodejs"
  command -v npm >/dev/null 2>&1 || need="$need npm"
fi
if [ -n "${K2C_NEED_CHROMIUM:-}" ]; then   # the chat page test (tests/test_chat_page.sh): headless Chromium
  command -v chromium >/dev/null 2>&1 || need="$need chromium"
fi
[ -z "$need" ] && exit 0
echo "install-deps: installing$need" >&2
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
