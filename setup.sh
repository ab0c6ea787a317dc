#!/usr/bin/env bash
# Cohort set-up: idempotent; safe to run again (a second run is a fast no-op).
#   1. Debian packages: libtorch-dev, libopenblas0-pthread (libtorch's fast BLAS), libgloo-dev (headers of
#      the Gloo backend for data-parallel training) and, for tests and benchmarks only, python3-torch (PyTorch
#      as an oracle and peer). Skipped when present, or when COHORT_SKIP_APT=1 / LIBTORCH is set (your own libtorch).
#   2. npm ci (when node_modules is missing or package-lock.json changed).
#   3. The native addon (node-gyp) and the TypeScript build (tsc), when their sources changed.
set -euo pipefail
cd "$(dirname "$0")"

say() { printf 'setup: %s\n' "$*"; }

need_pkgs=()
if [ "${COHORT_SKIP_APT:-0}" != "1" ] && [ -z "${LIBTORCH:-}" ]; then
  for p in libtorch-dev libopenblas0-pthread libgloo-dev python3-torch chromium; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need_pkgs+=("$p")
  done
fi
if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" != "0" ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO=sudo; else
      say "missing Debian packages: ${need_pkgs[*]}; run this script as root or install them with apt-get"; exit 1
    fi
  else SUDO=""; fi
  say "installing ${need_pkgs[*]} with apt-get"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need_pkgs[@]}"
fi

stamp=.setup-stamp
hash_of() { cat "$@" 2>/dev/null | sha256sum | cut -c1-16; }
lock_hash=$(hash_of package-lock.json package.json)
native_hash=$(hash_of binding.gyp native/*.cc native/*.h scripts/libtorch.mjs)
ts_hash=$(find src -name '*.ts' -type f | sort | xargs cat | sha256sum | cut -c1-16)
old_lock=""; old_native=""; old_ts=""
[ -f "$stamp" ] && . "./$stamp"

if [ ! -d node_modules ] || [ "$lock_hash" != "$old_lock" ]; then
  say "npm ci"
  npm ci --ignore-scripts --no-audit --no-fund
fi
if [ ! -f build/Release/cohort_native.node ] || [ "$native_hash" != "$old_native" ]; then
  say "building the native addon against $(node scripts/libtorch.mjs | node -e 'process.stdin.on("data",d=>console.log(JSON.parse(d).source))')"
  npx node-gyp rebuild -j "$(nproc)"
fi
if [ ! -f dist/index.js ] || [ "$ts_hash" != "$old_ts" ]; then
  say "building TypeScript"
  npx tsc -p tsconfig.build.json
fi
printf 'old_lock=%s\nold_native=%s\nold_ts=%s\n' "$lock_hash" "$native_hash" "$ts_hash" > "$stamp"
say "ready"
