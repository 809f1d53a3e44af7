// What conflict-free allocation costs, in one process (pure logic, no
// network): allocations per second on one node, and how a cluster of N
// nodes spreads a network's addresses (space requests, ring tokens, ring
// size on the wire). Prints a table and writes bench/results/allocation.json.
// Usage: node bench/allocation.ts [nodes] [ipsPerNode] [singleNodeAllocations]
import { mkdirSync, writeFileSync } from 'node:fs';
import { Allocator, hostRange, parseCidr } from '../controlplane/allocation/index.ts';
import type { AllocResult } from '../controlplane/allocation/index.ts';

const nodes = Number(process.argv[2] ?? 100);
const ipsPerNode = Number(process.argv[3] ?? 300);

function singleNode(count: number): { perSecond: number; tokens: number } {
  const a = Allocator.init('a', 'vni', 1, 16_777_216);
  const started = performance.now();
  for (let i = 0; i < count; i++) a.allocate([]);
  for (let i = 1; i <= count; i += 2) a.free(i, []);
  const seconds = (performance.now() - started) / 1000;
  return { perSecond: (count * 1.5) / seconds, tokens: a.ring.tokens.length };
}

/** Every node allocates `perNode` IPs of one /16, asking peers for space as needed; all are reachable. */
function cluster(n: number, perNode: number) {
  const subnet = hostRange(parseCidr('100.64.0.0/16'));
  const all = Array.from({ length: n }, (_, i) => (i === 0 ? Allocator.init('n0', 'ips', subnet.start, subnet.end) : Allocator.join(`n${i}`, 'ips', subnet.start, subnet.end)));
  const byId = new Map(all.map((a) => [a.self, a]));
  const ids = all.map((a) => a.self);
  let requests = 0;
  const started = performance.now();
  for (let round = 0; round < perNode; round++) {
    for (const node of all) {
      if (node.ring.tokens.length === 0) node.merge((all[0] as Allocator).ring);
      let result: AllocResult = node.allocate(ids);
      while (result.kind === 'request') {
        requests += 1;
        const owner = byId.get(result.request.to) as Allocator;
        node.receiveReply(owner.handleSpaceRequest(result.request));
        // Gossip the owner's ring onward so hints stay fresh, as the agent would.
        for (const other of all) if (other !== owner) other.merge(owner.ring);
        result = node.allocate(ids);
      }
      if (result.kind === 'failed') throw new Error(result.error.message);
    }
  }
  const seconds = (performance.now() - started) / 1000;
  for (const a of all) for (const b of all) a.merge(b.ring);
  const ring = (all[0] as Allocator).ring;
  return { nodes: n, perNode, requests, tokens: ring.tokens.length, ringJsonBytes: JSON.stringify(ring).length, seconds };
}

const single = singleNode(Number(process.argv[4] ?? 100_000));
const spread = cluster(nodes, ipsPerNode);
const result = { single, spread, node: process.version, date: new Date().toISOString() };

console.log('allocation (pure logic, one process)');
console.log('figure                                         value');
console.log(`allocate+free on one node (ops/s)              ${single.perSecond.toFixed(0)}`);
console.log(`${spread.nodes} nodes x ${spread.perNode} IPs of a /16: space requests   ${spread.requests}`);
console.log(`  ring tokens afterwards                       ${spread.tokens}`);
console.log(`  ring size as JSON (bytes)                    ${spread.ringJsonBytes}`);
console.log(`  wall time for all allocations (s)            ${spread.seconds.toFixed(2)}`);
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/allocation.json', JSON.stringify(result, null, 2) + '\n');
