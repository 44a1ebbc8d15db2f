#!/usr/bin/env bash
# Installs the pinned Bun from npm into target/tools/ (once) and prints the
# binary's absolute path, for the tests' run of a real Bun flow step
# (tests/it/packs/real_bun.rs reads it from PATCHMOI_TEST_BUN):
#   PATCHMOI_TEST_BUN="$(scripts/test-bun.sh)" cargo test --test it real_bun
# The `bun` package's postinstall links the binary of its platform's
# optional dependency (@oven/bun-linux-x64, ...); the tests then run it
# offline.
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.4.5
dir="$PWD/target/tools/bun-$version"
bun="$dir/node_modules/.bin/bun"
if [ ! -x "$bun" ]; then
  command -v npm >/dev/null || { echo "test-bun: npm is not installed (it comes with Node.js)" >&2; exit 2; }
  npm install --prefix "$dir" --no-save --no-package-lock --no-audit --no-fund --loglevel=error "bun@$version" >&2
fi
# It must run here, and be the version pinned.
got="$("$bun" --version)"
[ "$got" = "$version" ] || { echo "test-bun: $bun is $got, not $version" >&2; exit 1; }
echo "$bun"
