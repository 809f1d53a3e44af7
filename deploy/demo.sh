#!/usr/bin/env bash
# The demo: installs what is missing, brings up a 3-host lab on this machine,
# creates an overlay network, starts a sandbox on each host and shows them
# talking across hosts over VXLAN. The lab keeps running afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
bash deploy/install-deps.sh
W=bin/weft
$W lab up --hosts 3
echo
echo "== weft network create demo (on h1)"
$W lab exec h1 -- weft network create demo
for h in h1 h2 h3; do
  echo "== weft run --detach --network demo --name web-$h -- sleep infinity (on $h)"
  $W lab exec "$h" -- weft run --detach --network demo --name "web-$h" -- sleep infinity
done
echo
echo "== endpoints as seen from h1"
$W lab exec h1 -- weft endpoints --network demo
ip_of() { $W lab exec "$1" -- weft endpoints --network demo --json | python3 -c "import json,sys; print([e['$2'] for e in json.load(sys.stdin) if e['name']=='$3'][0])"; }
SRC_NETNS=$(ip_of h1 netns web-h1)
for target in web-h2 web-h3; do
  TARGET_IP=$(ip_of h1 ip "$target")
  echo
  echo "== ping from web-h1 (h1) to $target ($TARGET_IP) across hosts"
  ip netns exec "$SRC_NETNS" ping -c 3 -W 1 "$TARGET_IP"
done
echo
echo "== weft doctor on every host"
for h in h1 h2 h3; do echo -n "$h: "; $W lab exec "$h" -- weft doctor; done
echo
echo "The lab keeps running. Try: bin/weft lab exec h2 -- weft members"
echo "Remove it with: bin/weft lab down"
