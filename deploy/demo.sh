#!/usr/bin/env bash
# The demo: installs what is missing, then brings up a 3-host lab on this
# machine that forms a cluster, and shows the members from each host.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
bin/weft lab up --hosts 3
for h in h2 h3; do
  echo; echo "Members as seen from $h (weft lab exec $h -- weft members):"
  bin/weft lab exec "$h" -- weft members
done
echo
echo "The lab keeps running. Remove it with: bin/weft lab down"
