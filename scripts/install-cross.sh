#!/usr/bin/env bash
# The AArch64 cross toolchain, the :arm64 -dev packages k2c links and qemu-user, for tests/test_arm64.sh (CI runs
# this before `make test`; without it the emulated NEON tests print SKIP). Safe to run any number of times.
set -e
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
dpkg --print-foreign-architectures | grep -qx arm64 || { $SUDO dpkg --add-architecture arm64; $SUDO apt-get update -qq; }
need=""
for p in gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user libjansson-dev:arm64 libpcre2-dev:arm64 \
         libopenblas-openmp-dev:arm64 libmicrohttpd-dev:arm64 libgomp1:arm64; do
  dpkg -s "$p" >/dev/null 2>&1 || need="$need $p"
done
[ -z "$need" ] && exit 0
echo "install-cross: installing$need" >&2
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $need >/dev/null
