#!/usr/bin/env bash
# Installs every Debian package mcp-sandboxd needs to build, run, test and
# benchmark. Idempotent: packages already present are not reinstalled.
set -euo pipefail
PKGS=(build-essential pkg-config libh2o-evloop-dev libhiredis-dev libcjson-dev
      libbsd-dev libssl-dev libseccomp-dev libcmocka-dev bubblewrap
      redis-server redis-tools nginx wrk nodejs npm curl procps util-linux
      clang libclang-rt-dev)
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
# Debian enables redis-server/nginx services on install; tests start their own.
echo "deps: ok"
