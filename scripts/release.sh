#!/usr/bin/env bash
# The release's local half, shared by .github/workflows/release.yml and a dry
# run on any machine.
#
#   scripts/release.sh check --version vX.Y.Z
#       fails unless the version is vX.Y.Z, equals Cargo.toml's and is not a tag yet.
#   scripts/release.sh package --target TARGET --out DIR [--binary PATH]
#       builds patchmoi for TARGET (static on *-linux-musl), strips it and
#       writes DIR/patchmoi-TARGET.tar.gz; --binary packages an existing
#       build instead of compiling.
#   scripts/release.sh pin --version vX.Y.Z --assets DIR
#       writes DIR/SHA256SUMS, then commits it as dist/SHA256SUMS with
#       dist/VERSION on top of HEAD (the commit C′ that action.yml reads
#       its hashes from) and tags C′ vX.Y.Z. Nothing is pushed.
#   scripts/release.sh --dry-run [--version vX.Y.Z] [--target TARGET] [--binary PATH]
#       package (host target) and pin in a scratch clone of HEAD, then show
#       C′ and what the workflow would push. Nothing is pushed.
#
# A commit cannot hold the hashes of binaries built from itself, hence C′:
# the release builds C, commits the hashes as C′, tags C′ and moves the
# major tag (v1) there.
set -euo pipefail

repo="$(git -C "$(dirname "$0")/.." rev-parse --show-toplevel)"

die() { echo "release: $*" >&2; exit 1; }

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

cargo_version() {
  sed -n 's/^version *= *"\([^"]*\)".*/\1/p' "$1/Cargo.toml" | head -n 1
}

# A full version, vX.Y.Z, equal to the Cargo.toml version of the checkout $2.
check_version() {
  [[ "$1" =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "version must be vX.Y.Z, not '$1'"
  [ "$1" = "v$(cargo_version "$2")" ] || die "version $1 is not Cargo.toml's version (v$(cargo_version "$2")): bump it first"
}

cmd_check() {
  if [ "${1:-}" != --version ] || [ $# -ne 2 ]; then die "usage: release.sh check --version vX.Y.Z"; fi
  check_version "$2" "$repo"
  if git -C "$repo" rev-parse -q --verify "refs/tags/$2" >/dev/null; then die "tag $2 exists already"; fi
  echo "releasing $2 from $(git -C "$repo" rev-parse HEAD)"
}

cmd_package() {
  local target="" out="" binary="" stage
  while [ $# -gt 0 ]; do
    case "$1" in
      --target) target="$2"; shift 2 ;;
      --out) out="$2"; shift 2 ;;
      --binary) binary="$2"; shift 2 ;;
      *) die "package: unknown argument $1" ;;
    esac
  done
  if [ -z "$target" ] || [ -z "$out" ]; then die "package needs --target and --out"; fi
  mkdir -p "$out"
  stage="$(mktemp -d)"
  if [ -z "$binary" ]; then
    case "$target" in
      # ring and SQLite compile C: musl-gcc (Debian/Ubuntu musl-tools) for the native musl target.
      *-linux-musl) export "CC_${target//-/_}=${CC_MUSL:-musl-gcc}" ;;
    esac
    # The profile's line tables are for local builds; a release carries no debug info.
    (cd "$repo" && CARGO_PROFILE_RELEASE_DEBUG=false CARGO_PROFILE_RELEASE_STRIP=symbols \
      cargo build --release --locked --target "$target")
    binary="${CARGO_TARGET_DIR:-$repo/target}/$target/release/patchmoi"
  fi
  cp "$binary" "$stage/patchmoi"
  chmod 0755 "$stage/patchmoi"
  # Also for --binary; strip(1) of the host handles the host's binaries.
  strip "$stage/patchmoi" 2>/dev/null || echo "release: warning: could not strip $binary" >&2
  case "$target" in
    *-linux-musl)
      if command -v file >/dev/null && ! file "$stage/patchmoi" | grep -q 'statically linked\|static-pie linked'; then
        die "$binary is not statically linked"
      fi ;;
  esac
  tar -czf "$out/patchmoi-$target.tar.gz" -C "$stage" patchmoi
  rm -rf "$stage"
  echo "$out/patchmoi-$target.tar.gz $(sha256 "$out/patchmoi-$target.tar.gz")"
}

cmd_pin() {
  local version="" assets="" checkout="$repo" asset
  while [ $# -gt 0 ]; do
    case "$1" in
      --version) version="$2"; shift 2 ;;
      --assets) assets="$2"; shift 2 ;;
      --checkout) checkout="$2"; shift 2 ;;
      *) die "pin: unknown argument $1" ;;
    esac
  done
  if [ -z "$version" ] || [ -z "$assets" ]; then die "pin needs --version and --assets"; fi
  check_version "$version" "$checkout"
  git -C "$checkout" diff --quiet HEAD -- || die "$checkout has uncommitted changes"
  if git -C "$checkout" rev-parse -q --verify "refs/tags/$version" >/dev/null; then
    die "tag $version exists already"
  fi
  : > "$assets/SHA256SUMS.tmp"
  for asset in "$assets"/patchmoi-*.tar.gz; do
    [ -e "$asset" ] || die "no patchmoi-*.tar.gz in $assets"
    printf '%s  %s\n' "$(sha256 "$asset")" "$(basename "$asset")" >> "$assets/SHA256SUMS.tmp"
  done
  mv "$assets/SHA256SUMS.tmp" "$assets/SHA256SUMS"
  mkdir -p "$checkout/dist"
  cp "$assets/SHA256SUMS" "$checkout/dist/SHA256SUMS"
  printf '%s\n' "$version" > "$checkout/dist/VERSION"
  git -C "$checkout" add dist/VERSION dist/SHA256SUMS
  git -C "$checkout" \
    -c user.name="${RELEASE_GIT_NAME:-github-actions[bot]}" \
    -c user.email="${RELEASE_GIT_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
    commit --quiet -m "Release $version: pin its assets' SHA-256s" \
    -m "action.yml downloads $version and checks it against dist/SHA256SUMS."
  git -C "$checkout" \
    -c user.name="${RELEASE_GIT_NAME:-github-actions[bot]}" \
    -c user.email="${RELEASE_GIT_EMAIL:-41898282+github-actions[bot]@users.noreply.github.com}" \
    tag -a "$version" -m "patchmoi $version"
  echo "pinned $version in $(git -C "$checkout" rev-parse HEAD), tagged $version"
}

cmd_dry_run() {
  local version="" target="" binary="" scratch head
  while [ $# -gt 0 ]; do
    case "$1" in
      --version) version="$2"; shift 2 ;;
      --target) target="$2"; shift 2 ;;
      --binary) binary="$2"; shift 2 ;;
      *) die "--dry-run: unknown argument $1" ;;
    esac
  done
  version="${version:-v$(cargo_version "$repo")}"
  target="${target:-$(rustc -vV | sed -n 's/^host: //p')}"
  check_version "$version" "$repo"
  git -C "$repo" diff --quiet HEAD -- || echo "release: note: uncommitted changes are built but not in C" >&2
  scratch="$(mktemp -d "${TMPDIR:-/tmp}/patchmoi-release.XXXXXX")"
  head="$(git -C "$repo" rev-parse HEAD)"
  echo "== package $target (C = $head)"
  cmd_package --target "$target" --out "$scratch/assets" ${binary:+--binary "$binary"}
  echo "== C′ in a scratch clone: $scratch/clone"
  git clone --quiet --no-checkout "$(git -C "$repo" rev-parse --path-format=absolute --git-common-dir)" "$scratch/clone"
  git -C "$scratch/clone" checkout --quiet --detach "$head"
  cmd_pin --version "$version" --assets "$scratch/assets" --checkout "$scratch/clone"
  git -C "$scratch/clone" --no-pager log --format='%H %s' -2
  git -C "$scratch/clone" --no-pager show --format= "$version^{commit}"
  local parent
  parent="$(git -C "$scratch/clone" rev-parse "$version^{commit}^")"
  [ "$parent" = "$head" ] || die "C′ is not a child of C"
  [ "$(git -C "$scratch/clone" diff --name-only "$head" "$version")" = "$(printf 'dist/SHA256SUMS\ndist/VERSION')" ] ||
    die "C′ changes more than dist/"
  echo "== would push (dry run: nothing pushed)"
  echo "refs/tags/$version -> $(git -C "$scratch/clone" rev-parse "$version^{commit}")"
  echo "release $version: $(cd "$scratch/assets" && echo patchmoi-*.tar.gz SHA256SUMS)"
  echo "default branch -> C′ (or dist/ of C′ on top of it if it moved since C)"
  echo "refs/tags/${version%%.*} -> C′ (when $version is the newest ${version%%.*}.x)"
}

case "${1:-}" in
  check) shift; cmd_check "$@" ;;
  package) shift; cmd_package "$@" ;;
  pin) shift; cmd_pin "$@" ;;
  --dry-run) shift; cmd_dry_run "$@" ;;
  *) die "usage: release.sh check|package|pin|--dry-run … (see the header)" ;;
esac
