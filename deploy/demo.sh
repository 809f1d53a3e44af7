#!/usr/bin/env bash
# The demo: installs what is missing, brings up a 3-host lab on this machine,
# creates an overlay network, starts a sandbox on each host and shows them
# talking across hosts over VXLAN; then a service with a backend on each host:
# resolved by name from a client sandbox, requests spread over the three
# backends, a port published on every host answering another machine, a
# service published through the ingress routing mesh answering on every host
# (also those without a backend), and traffic going on after one host is
# killed. The lab keeps running afterwards.
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
echo "== weft service create hello --network demo --port 80/tcp --health tcp:80 (on h1)"
$W lab exec h1 -- weft service create hello --network demo --port 80/tcp --health tcp:80
for h in h1 h2 h3; do
  echo "== backend hello-$h on $h: answers its name on port 80"
  $W lab exec "$h" -- weft run --detach --network demo --name "hello-$h" --service hello -- socat TCP-LISTEN:80,fork,reuseaddr "SYSTEM:echo hello from $h" >/dev/null
done
$W lab exec h1 -- weft run --detach --network demo --name client -- sleep infinity >/dev/null
CLIENT=$(ip_of h1 netns client)
in_client() { ip netns exec "$CLIENT" "$@"; }
echo "== waiting for the three backends to pass their health checks"
for _ in $(seq 60); do [[ $(in_client dig +short tasks.hello | wc -l) == 3 ]] && break; sleep 1; done
echo "== from the client sandbox (its /etc/resolv.conf points at the embedded resolver):"
echo "\$ dig +short hello";        in_client dig +short hello
echo "\$ dig +short tasks.hello";  in_client dig +short tasks.hello
echo "\$ dig +short -x <hello-h2's IP>"; in_client dig +short -x "$(ip_of h2 ip hello-h2)"
spread() {
  in_client sh -c "for i in \$(seq $1); do socat -T 2 - TCP:hello:80,connect-timeout=2 </dev/null || echo FAILED; done" | sort | uniq -c
}
echo "== 90 requests to hello:80 (the VIP), counted by backend"
spread 90
echo
echo "== published ports: a sandbox on each host publishes its port 80 on host port 8080 (weft run -p 8080:80)"
for h in h1 h2 h3; do
  $W lab exec "$h" -- weft run --detach --network demo --name "pub-$h" -p 8080:80 -- socat TCP-LISTEN:80,fork,reuseaddr "SYSTEM:echo published on $h" >/dev/null
done
$W lab exec h1 -- weft endpoints --network demo | grep -E "^NAME|^pub-"
for pair in h2:198.18.0.1 h3:198.18.0.2 h1:198.18.0.3; do
  from=${pair%%:*}; addr=${pair#*:}
  echo "\$ socat - TCP:$addr:8080   (on $from, another machine on the underlay)"
  for _ in $(seq 20); do $W lab exec "$from" -- socat -T 2 - "TCP:$addr:8080,connect-timeout=2" </dev/null 2>/dev/null && break; sleep 1; done
done
echo
echo "== ingress routing mesh: weft service create mesh --network demo --port 80 --publish 9090:80, one backend on h2"
$W lab exec h1 -- weft service create mesh --network demo --port 80 --publish 9090:80
$W lab exec h2 -- weft run --detach --network demo --name mesh-h2 --service mesh -- socat TCP-LISTEN:80,fork,reuseaddr "SYSTEM:echo mesh backend on h2" >/dev/null
for pair in h2:198.18.0.1 h3:198.18.0.2 h1:198.18.0.3; do
  from=${pair%%:*}; addr=${pair#*:}
  echo "\$ socat - TCP:$addr:9090   (on $from; every host answers, also those without a backend)"
  for _ in $(seq 30); do $W lab exec "$from" -- socat -T 2 - "TCP:$addr:9090,connect-timeout=2" </dev/null 2>/dev/null | grep . && break; sleep 1; done
done
echo
echo "== killing host h3 (its agent, and its underlay link)"
H3_PID=$(python3 -c "import json; s=json.load(open('/run/weft-lab/weftlab/state.json')); print([h['pid'] for h in s['hosts'] if h['name']=='h3'][0])")
kill -9 "$H3_PID"
ip -n weftlab-h3 link set eth0 down
echo "== waiting for failure detection to take hello-h3 out (tasks.hello has 2 entries)"
for _ in $(seq 60); do [[ $(in_client dig +short tasks.hello | wc -l) == 2 ]] && break; sleep 1; done
echo "\$ dig +short tasks.hello"; in_client dig +short tasks.hello
echo "== 60 more requests: all answered by h1 and h2"
spread 60
echo "\$ socat - TCP:198.18.0.1:9090   (on h2: the mesh port of h1 still answers)"
$W lab exec h2 -- socat -T 2 - "TCP:198.18.0.1:9090,connect-timeout=2" </dev/null
echo
echo "The lab keeps running (h3 is down). Try: bin/weft lab exec h2 -- weft members"
echo "Remove it with: bin/weft lab down"
