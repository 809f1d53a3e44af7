#!/usr/bin/env bash
# Installs weft on this host: the self-contained tree into PREFIX, `weft` into
# BIN_DIR, the systemd unit into UNIT_DIR, and a config file into CONFIG_DIR
# (kept if it exists). From a release tarball (--from), from the release
# folder this script sits in, or from a checkout (built with
# scripts/release.sh --stage, which needs npm). Never starts anything: it
# prints what to run. --root DIR puts every path under DIR (tests, packaging).
#   deploy/install.sh [--from weft-V-linux-ARCH.tar.gz] [--prefix /opt/weft]
#       [--bin-dir /usr/local/bin] [--unit-dir /etc/systemd/system]
#       [--config-dir /etc/weft] [--advertise-addr IP] [--root DIR]
#   deploy/install.sh --uninstall [--purge] [same path options]
# --purge also removes the config dir and the state dir /var/lib/weft.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
die() { echo "install: $*" >&2; exit 2; }
say() { echo "install: $*"; }

PREFIX=/opt/weft BIN_DIR=/usr/local/bin UNIT_DIR=/etc/systemd/system CONFIG_DIR=/etc/weft
ROOT= FROM= ADVERTISE= UNINSTALL=0 PURGE=0
STATE_DIR=/var/lib/weft # the unit's StateDirectory=weft
MARK='Installed by deploy/install.sh'

# Paths end up in rm -rf and in the unit: plain absolute paths only.
path_arg() {
  [[ $2 =~ ^/[A-Za-z0-9._/-]*$ && ! $2 =~ (^|/)\.\.?(/|$) ]] || die "$1 must be an absolute path of letters, digits, '.', '_', '-', '/' (got '$2')"
  [[ $2 != / ]] || die "$1 must not be /"
}
while (($#)); do
  case "$1" in
    --prefix | --bin-dir | --unit-dir | --config-dir | --root | --from | --advertise-addr)
      [[ $# -ge 2 && -n $2 ]] || die "$1 needs a value"
      case "$1" in
        --prefix) path_arg "$1" "$2"; PREFIX=${2%/} ;;
        --bin-dir) path_arg "$1" "$2"; BIN_DIR=${2%/} ;;
        --unit-dir) path_arg "$1" "$2"; UNIT_DIR=${2%/} ;;
        --config-dir) path_arg "$1" "$2"; CONFIG_DIR=${2%/} ;;
        --root) path_arg "$1" "$2"; [[ -d $2 ]] || die "--root $2 is not a directory"; ROOT=${2%/} ;;
        --from) [[ -f $2 && $2 == *.tar.gz ]] || die "--from must be a release tarball (weft-VERSION-linux-ARCH.tar.gz), got '$2'"; FROM=$(readlink -f "$2") ;;
        --advertise-addr) [[ $2 =~ ^([0-9]{1,3}\.){3}[0-9]{1,3}$ ]] || die "--advertise-addr must be an IPv4 address, got '$2'"; ADVERTISE=$2 ;;
      esac
      shift 2 ;;
    --uninstall) UNINSTALL=1; shift ;;
    --purge) PURGE=1; shift ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) die "unknown argument '$1' (try --help)" ;;
  esac
done
((PURGE == 0 || UNINSTALL == 1)) || die "--purge goes with --uninstall"
((UNINSTALL == 0)) || [[ -z $FROM && -z $ADVERTISE ]] || die "--from and --advertise-addr are for installing, not --uninstall"
case "$PREFIX" in /usr | /usr/local | /opt | /etc | /var | /bin | /sbin | /lib | /home | /root | /run | /tmp) die "--prefix $PREFIX would take over a system directory; use a directory of its own such as /opt/weft" ;; esac
DEST="$ROOT$PREFIX"
UNIT="$ROOT$UNIT_DIR/weft.service"
LINK="$ROOT$BIN_DIR/weft"
CONFIG="$ROOT$CONFIG_DIR/config.json"
live_systemd() { [[ -z $ROOT && -d /run/systemd/system ]] && command -v systemctl >/dev/null; }

uninstall() {
  if live_systemd && [[ -f $UNIT ]]; then systemctl disable --now weft.service || true; fi
  if [[ -f $UNIT ]]; then
    grep -q "$MARK" "$UNIT" || die "$UNIT was not written by this script; left alone"
    rm -f "$UNIT"; say "removed $UNIT"
  fi
  if [[ -L $LINK && $(readlink "$LINK") == "$PREFIX/bin/weft" ]]; then rm -f "$LINK"; say "removed $LINK"; fi
  if [[ -e $DEST ]]; then
    [[ -f $DEST/.weft-install ]] || die "$DEST has no .weft-install: not installed by this script; left alone"
    rm -rf "$DEST"; say "removed $DEST"
  fi
  if ((PURGE)); then
    rm -rf "$ROOT$CONFIG_DIR" "$ROOT$STATE_DIR"; say "purged $ROOT$CONFIG_DIR and $ROOT$STATE_DIR"
  else
    say "kept $ROOT$CONFIG_DIR and the state dir $ROOT$STATE_DIR (--purge removes them)"
  fi
  if live_systemd; then systemctl daemon-reload; fi
}

work=
cleanup() { [[ -z $work ]] || rm -rf "$work"; }
trap cleanup EXIT

source_tree() {
  if [[ -n $FROM ]]; then
    work=$(mktemp -d)
    tar -C "$work" -xzf "$FROM"
    local dirs=("$work"/weft-*)
    [[ ${#dirs[@]} -eq 1 && -f ${dirs[0]}/.weft-release ]] || die "$FROM is not a weft release (one weft-* folder with .weft-release)"
    SRC=${dirs[0]}
  elif [[ -f $HERE/.weft-release ]]; then
    SRC=$HERE
  else
    work=$(mktemp -d)
    say "building from the checkout $HERE (scripts/release.sh --stage)"
    bash "$HERE/scripts/release.sh" --stage "$work/weft" >/dev/null
    SRC=$work/weft
  fi
}

check_host_tools() {
  local missing=()
  for tool in ip bridge nft nsenter sysctl python3; do command -v "$tool" >/dev/null || missing+=("$tool"); done
  python3 -c 'import nftables' 2>/dev/null || missing+=("python3 nftables module")
  ((${#missing[@]} == 0)) || say "warning: this host lacks ${missing[*]}; run: apt-get install iproute2 nftables util-linux procps python3-nftables"
}

install_tree() {
  if [[ -e $DEST && ! -f $DEST/.weft-install ]]; then die "$DEST exists and was not installed by this script; choose another --prefix"; fi
  mkdir -p "$(dirname "$DEST")"
  rm -rf "$DEST.new"
  cp -a "$SRC/." "$DEST.new/"
  printf '%s\nprefix=%s\nbin=%s\nunit=%s\nconfig=%s\n' "$MARK" "$PREFIX" "$BIN_DIR/weft" "$UNIT_DIR/weft.service" "$CONFIG_DIR/config.json" >"$DEST.new/.weft-install"
  # Swap whole trees, so an upgrade never mixes two versions' files.
  if [[ -e $DEST ]]; then rm -rf "$DEST.old"; mv "$DEST" "$DEST.old"; fi
  mv "$DEST.new" "$DEST"
  rm -rf "$DEST.old"
  say "installed $(sed -n 's/^version=//p' "$DEST/.weft-release") ($(sed -n 's/^arch=//p' "$DEST/.weft-release")) into $DEST"
}

install_link() {
  mkdir -p "$ROOT$BIN_DIR"
  [[ ! -e $LINK || -L $LINK ]] || die "$LINK exists and is not a link; left alone"
  ln -sfn "$PREFIX/bin/weft" "$LINK"
  say "linked $LINK -> $PREFIX/bin/weft"
}

install_unit() {
  mkdir -p "$ROOT$UNIT_DIR"
  { echo "# $MARK."; sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@CONFIG_DIR@|$CONFIG_DIR|g" "$DEST/deploy/systemd/weft.service"; } >"$UNIT.tmp"
  mv "$UNIT.tmp" "$UNIT"
  say "wrote $UNIT"
}

install_config() {
  mkdir -p "$ROOT$CONFIG_DIR"
  if [[ -f $CONFIG ]]; then
    say "kept $CONFIG"
    [[ -z $ADVERTISE ]] || say "warning: --advertise-addr ignored: $CONFIG exists; edit its advertiseAddr"
    return
  fi
  {
    echo '{'
    [[ -z $ADVERTISE ]] || echo "  \"advertiseAddr\": \"$ADVERTISE\","
    echo "  \"dataDir\": \"$STATE_DIR\","
    echo '  "apiSocket": "/run/weft/weft.sock",'
    echo '  "listenAddr": "0.0.0.0:2377",'
    echo '  "gossipPort": 7946,'
    echo '  "logLevel": "info"'
    echo '}'
  } >"$CONFIG.tmp"
  mv "$CONFIG.tmp" "$CONFIG"
  say "wrote $CONFIG"
}

if ((UNINSTALL)); then uninstall; exit 0; fi
source_tree
if [[ -z $ROOT ]]; then
  "$SRC/bin/weft" --version >/dev/null || die "the release in $SRC does not run on this machine (see the error above)"
  check_host_tools
fi
upgrade=0
[[ -f $DEST/.weft-install ]] && upgrade=1
install_tree
install_link
install_unit
install_config
if [[ -n $ROOT ]]; then
  say "installed under $ROOT; nothing started"
elif ((upgrade)); then
  say "upgrade done; now run: systemctl daemon-reload && systemctl restart weft"
else
  say "now run: systemctl daemon-reload && systemctl enable --now weft"
fi
