#!/usr/bin/env bash
# Builds the release artifact: dist/weft-VERSION-linux-ARCH.tar.gz, a
# self-contained folder (the sources Node runs directly, production
# node_modules, and the Node 24 binary for ARCH) that a host needs no build
# step or registry for. `--stage DIR` only lays the folder out in DIR
# (deploy/install.sh uses it to install from a checkout).
#   scripts/release.sh [--arch x64|arm64] [--out DIR] [--stage DIR]
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "release: $*" >&2; exit 2; }

case "$(uname -m)" in
  x86_64 | amd64) ARCH=x64 ;;
  aarch64 | arm64) ARCH=arm64 ;;
  *) ARCH= ;;
esac
OUT="$ROOT/dist"
STAGE=
while (($#)); do
  case "$1" in
    --arch) [[ $# -ge 2 ]] || die "--arch needs x64 or arm64"; ARCH=$2; shift 2 ;;
    --out) [[ $# -ge 2 && $2 == /* ]] || die "--out needs an absolute directory"; OUT=$2; shift 2 ;;
    --stage) [[ $# -ge 2 && $2 == /* ]] || die "--stage needs an absolute directory"; STAGE=$2; shift 2 ;;
    -h | --help) sed -n '2,8p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
[[ $ARCH == x64 || $ARCH == arm64 ]] || die "--arch must be x64 or arm64, got '${ARCH:-$(uname -m)}'"
VERSION=$(sed -n 's/^  "version": "\([0-9A-Za-z.+-]*\)",$/\1/p' "$ROOT/package.json")
[[ -n $VERSION ]] || die "no version in $ROOT/package.json"
NAME="weft-$VERSION-linux-$ARCH"

# What the installed agent and CLI run or read; tests, benchmarks and dev
# tooling stay out.
PATHS=(bin agent controlplane dataplane lib proto deploy docs README.md package.json package-lock.json)

work=
cleanup() { [[ -z $work ]] || rm -rf "$work"; }
trap cleanup EXIT
if [[ -z $STAGE ]]; then
  work=$(mktemp -d)
  dir="$work/$NAME"
else
  dir=$STAGE
  [[ ! -e $dir || -z $(ls -A "$dir") ]] || die "--stage $dir must be empty or absent"
fi
mkdir -p "$dir"

if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
  # Only tracked files: no local logs, results or editor leftovers.
  git -C "$ROOT" ls-files -z -- "${PATHS[@]}" | tar -C "$ROOT" --null -T - -cf - | tar -C "$dir" -xf -
  COMMIT=$(git -C "$ROOT" rev-parse --short HEAD)
else
  tar -C "$ROOT" -cf - "${PATHS[@]}" | tar -C "$dir" -xf -
  COMMIT=unknown
fi

# Production dependencies only, and the Node package of the target, whatever
# machine builds it (npm's --os/--cpu pick the optional dependency).
(cd "$dir" && npm ci --omit=dev --os=linux --cpu="$ARCH" --ignore-scripts --no-audit --no-fund --prefer-offline --loglevel=error >/dev/null)
NODE_PKG="$dir/node_modules/node-linux-$ARCH"
[[ -x $NODE_PKG/bin/node ]] || die "npm ci did not install node-linux-$ARCH"
rm -rf "$NODE_PKG/include" # C headers for native addons: 67 MB nothing here builds
printf 'version=%s\narch=%s\ncommit=%s\n' "$VERSION" "$ARCH" "$COMMIT" >"$dir/.weft-release"

if [[ -n $STAGE ]]; then
  echo "release: staged $NAME in $dir"
  exit 0
fi
mkdir -p "$OUT"
tar -C "$work" -czf "$OUT/$NAME.tar.gz.tmp" "$NAME"
mv "$OUT/$NAME.tar.gz.tmp" "$OUT/$NAME.tar.gz"
(cd "$OUT" && sha256sum "$NAME.tar.gz" >"$NAME.tar.gz.sha256")
echo "release: $OUT/$NAME.tar.gz ($(du -h "$OUT/$NAME.tar.gz" | cut -f1))"
