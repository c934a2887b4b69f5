#!/usr/bin/env bash
# Installs every Debian package mcp-sandboxd needs to build, run, test and
# benchmark. Idempotent: packages already present are not reinstalled.
set -euo pipefail
PKGS=(build-essential pkg-config libh2o-evloop-dev libhiredis-dev libcjson-dev
      libbsd-dev libssl-dev libseccomp-dev libcmocka-dev libc-ares-dev bubblewrap
      redis-server redis-tools nginx wrk nodejs npm curl procps util-linux
      systemd # systemd: systemd-analyze/systemd-sysusers check systemd/ (not run as init)
      clang libclang-rt-dev) # clang: the libFuzzer targets (tests/fuzz)
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# node/npm may come from outside Debian (nodesource, nvm): accept a working one.
if command -v node >/dev/null && command -v npm >/dev/null; then
    tmp=(); for p in "${missing[@]}"; do [[ "$p" == nodejs || "$p" == npm ]] || tmp+=("$p"); done
    missing=("${tmp[@]+"${tmp[@]}"}")
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# promtool (Prometheus' own linter) checks /metrics in the tests. Debian ships it
# inside the prometheus server package; only the binary is extracted, so no
# server is installed or started.
TOOLS="$(cd "$(dirname "$0")/.." && pwd)/.tools"
if [ ! -x "$TOOLS/promtool" ]; then
    tmp=$(mktemp -d)
    (cd "$tmp" && { apt-get download prometheus >/dev/null 2>&1 || { $SUDO apt-get update -qq && apt-get download prometheus >/dev/null; }; })
    dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/x"
    mkdir -p "$TOOLS"
    install -m 0755 "$tmp/x/usr/bin/promtool" "$TOOLS/promtool"
    rm -rf "$tmp"
    echo "deps: promtool extracted to $TOOLS"
fi
# Debian enables redis-server/nginx services on install; tests start their own.
echo "deps: ok"
