#!/usr/bin/env bash
# Installs patchmoi for the action into $RUNNER_TEMP/patchmoi/bin: action.yml's
# install step. By default it downloads the release this commit of the action
# names in dist/VERSION and checks it against dist/SHA256SUMS, both committed
# by the release workflow (scripts/release.sh), so the hashes come from the
# action's own repository, never from the server that serves the binary.
#
# Inputs (environment): PATCHMOI_VERSION (the `version` input: empty = the
# pinned release, `source` = build the action's source, vX.Y.Z = that
# release, checked against its own SHA256SUMS), RUNNER_OS, RUNNER_ARCH,
# RUNNER_TEMP, GITHUB_ACTION_PATH, GITHUB_SERVER_URL, PATCHMOI_ACTION_REPOSITORY
# (else GITHUB_ACTION_REPOSITORY, else peezy-tech/patchmoi).
# PATCHMOI_DOWNLOAD_BASE replaces "<server>/<repo>/releases/download" (tests).
#
# Only a platform without an asset, or an asset the release lacks (HTTP 404),
# falls back to building from source; a checksum mismatch or a download that
# still fails after curl's retries fails the step.
set -euo pipefail

action_path="${GITHUB_ACTION_PATH:-$(cd "$(dirname "$0")/.." && pwd)}"
dest="${RUNNER_TEMP:?RUNNER_TEMP is not set}/patchmoi"
requested="${PATCHMOI_VERSION:-}"
# github.action_repository reaches a composite action's env: but not its run:
# (actions/runner#2473), so action.yml passes it as PATCHMOI_ACTION_REPOSITORY.
repository="${PATCHMOI_ACTION_REPOSITORY:-${GITHUB_ACTION_REPOSITORY:-}}"
repository="${repository:-peezy-tech/patchmoi}"
download_base="${PATCHMOI_DOWNLOAD_BASE:-${GITHUB_SERVER_URL:-https://github.com}/$repository/releases/download}"
mkdir -p "$dest/bin"

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

# The expected hash of an asset in a SHA256SUMS file (`<hex>  <name>` or `<hex> *<name>`).
expected_hash() {
  awk -v name="$2" '$2 == name || $2 == "*" name { print $1; exit }' "$1"
}

# Downloads $1 to $2. Prints the HTTP status; curl retries transient
# failures (timeouts, 408, 429, 5xx) itself and a 404 is not retried.
fetch() {
  curl --proto '=https' --tlsv1.2 --silent --show-error --location \
    --retry 4 --retry-connrefused --connect-timeout 10 --max-time 300 \
    --output "$2" --write-out '%{http_code}' "$1"
}

build_from_source() {
  local pin
  if command -v cargo >/dev/null; then
    cargo install --locked --path "$action_path" --root "$dest"
    return
  fi
  # No cargo: install the toolchain the source declares (rust-version in Cargo.toml).
  pin="$(sed -n 's/^rust-version *= *"\([^"]*\)".*/\1/p' "$action_path/Cargo.toml" | head -n 1)"
  pin="${pin:?no rust-version in $action_path/Cargo.toml}"
  if ! command -v rustup >/dev/null; then
    echo "::notice::cargo and rustup are missing: installing Rust $pin with rustup-init"
    export CARGO_HOME="$dest/rust/cargo" RUSTUP_HOME="$dest/rust/rustup"
    fetch https://sh.rustup.rs "$dest/rustup-init.sh" >/dev/null
    sh "$dest/rustup-init.sh" -y --quiet --no-modify-path --profile minimal --default-toolchain "$pin"
    export PATH="$CARGO_HOME/bin:$PATH"
  else
    echo "::notice::cargo is missing: installing Rust $pin with rustup"
  fi
  rustup toolchain install --profile minimal "$pin"
  rustup run "$pin" cargo install --locked --path "$action_path" --root "$dest"
}

source_build() {
  echo "::notice::$1; building patchmoi from the action's source"
  build_from_source
  "$dest/bin/patchmoi" --version
  exit 0
}

pinned="$(tr -d '[:space:]' < "$action_path/dist/VERSION" 2>/dev/null || true)"
case "$requested" in
  source) source_build "version: source" ;;
  "") version="$pinned" ;;
  *) version="$requested" ;;
esac
[ -n "$version" ] || source_build "this commit of the action names no release (dist/VERSION is empty)"

case "${RUNNER_OS:-}-${RUNNER_ARCH:-}" in
  Linux-X64) target=x86_64-unknown-linux-musl ;;
  Linux-ARM64) target=aarch64-unknown-linux-musl ;;
  macOS-ARM64) target=aarch64-apple-darwin ;;
  macOS-X64) target=x86_64-apple-darwin ;;
  *) source_build "no prebuilt patchmoi for ${RUNNER_OS:-?}-${RUNNER_ARCH:-?}" ;;
esac
asset="patchmoi-$target.tar.gz"
work="$(mktemp -d "$dest/download.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if [ "$version" = "$pinned" ]; then
  sums="$action_path/dist/SHA256SUMS"
  origin="dist/SHA256SUMS of the action"
else
  # Another release: its hashes are not in this commit, only in its own SHA256SUMS.
  sums="$work/SHA256SUMS"
  origin="SHA256SUMS of release $version"
  status="$(fetch "$download_base/$version/SHA256SUMS" "$sums")" ||
    { echo "::error::could not download SHA256SUMS of patchmoi $version from $download_base"; exit 1; }
  [ "$status" = 200 ] || source_build "patchmoi $version has no SHA256SUMS (HTTP $status)"
fi
expected="$(expected_hash "$sums" "$asset")"
[ -n "$expected" ] || source_build "patchmoi $version has no $asset (not in the $origin)"

status="$(fetch "$download_base/$version/$asset" "$work/$asset")" ||
  { echo "::error::could not download $asset of patchmoi $version from $download_base"; exit 1; }
case "$status" in
  200) ;;
  404) source_build "patchmoi $version has no $asset (HTTP 404)" ;;
  *) echo "::error::could not download $asset of patchmoi $version: HTTP $status"; exit 1 ;;
esac
actual="$(sha256 "$work/$asset")"
if [ "$actual" != "$expected" ]; then
  echo "::error::$asset of patchmoi $version does not match the $origin: expected SHA-256 $expected, got $actual"
  exit 1
fi
tar -xzf "$work/$asset" -C "$dest/bin" patchmoi
echo "installed patchmoi $version ($target, SHA-256 $actual)"
"$dest/bin/patchmoi" --version
