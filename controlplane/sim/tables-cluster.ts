// A cluster of TablesSimNodes on the simulator, and the host duties a
// scenario needs: writes, crash and restart (tables and roster persisted,
// membership fresh, as the agent does), partitions with connections that
// close and re-open (tables-dialer.ts: both ends redial), revocation,
// hand-driven anti-entropy exchanges, and the checks (stored and visible
// state equal everywhere).

import type { MembershipConfig } from '../membership/config.ts';
import type { MemberView } from '../membership/member-table.ts';
import type { MemberState } from '../membership/messages.ts';
import type { Rng } from '../membership/rng.ts';
import { deriveSeed, mulberry32, randomInt } from '../membership/rng.ts';
import type { MemberRecord } from '../cluster/roster.ts';
import type { Change } from '../tables/change.ts';
import type { Entry } from '../tables/entry.ts';
import { GOSSIPSUB_DEFAULTS } from './dissemination-gossipsub.ts';
import type { GossipsubParams } from './dissemination-gossipsub.ts';
import type { NetworkConfig } from './network.ts';
import { Simulator } from './simulator.ts';
import { ConnectionGraph, DEFAULT_CONNECTIONS } from './tables-connections.ts';
import type { ConnectionParams } from './tables-connections.ts';
import { SimDialer } from './tables-dialer.ts';
import { settledRecord } from './sim-roster.ts';
import type { Sizer, TablesWire, TrafficTotals } from './tables-messages.ts';
import { DEFAULT_HOST_TIMING, TablesSimNode } from './tables-node.ts';
import type { HostTiming, PersistedTables } from './tables-node.ts';

export interface TablesClusterOptions {
  n: number;
  seed: number;
  membership?: Partial<MembershipConfig>;
  network?: Partial<NetworkConfig>;
  gossipsub?: Partial<GossipsubParams>;
  timing?: Partial<HostTiming>;
  connections?: Partial<ConnectionParams>;
  /** Networks node `index` has endpoints on. Default: every node on net1. */
  networksOf?: (index: number) => readonly string[];
  /**
   * short: IDs n0..n{N-1}, addresses sim://nK (readable tests).
   * realistic: 32-hex node IDs and /ip4/.../tcp/7946/p2p/12D3KooW... SWIM
   * addresses, the agent's formats, so message sizes are the real ones.
   */
  naming?: 'short' | 'realistic';
  sizer?: Sizer;
}

export type MemberChangeListener = (change: { at: number; observer: string; member: MemberView; previous: MemberState | null }) => void;
export type TableChangeListener = (change: { at: number; node: string; changes: readonly Change[] }) => void;

/** An entry reduced to what must agree across replicas (value as hex). */
export interface EntryState {
  key: string;
  owner: string;
  lamport: number;
  deleted: boolean;
  value: string;
}

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

export class TablesCluster {
  readonly sim: Simulator<TablesWire, TablesSimNode>;
  readonly ids: readonly string[];
  readonly graph: ConnectionGraph;
  readonly connectionParams: ConnectionParams;
  readonly dialer: SimDialer;
  readonly #options: TablesClusterOptions;
  readonly #gossipsub: GossipsubParams;
  readonly #timing: HostTiming;
  readonly #rng: Rng;
  readonly #addresses = new Map<string, string>();
  readonly #index = new Map<string, number>();
  readonly #lives = new Map<string, number>();
  readonly #persisted = new Map<string, PersistedTables>();
  readonly #persistedRoster = new Map<string, MemberRecord[]>();
  readonly #retiredTraffic = new Map<string, TrafficTotals>();
  readonly #memberListeners: MemberChangeListener[] = [];
  readonly #tableListeners: TableChangeListener[] = [];

  constructor(options: TablesClusterOptions) {
    this.#options = options;
    this.#gossipsub = { ...GOSSIPSUB_DEFAULTS, ...options.gossipsub };
    this.#timing = { ...DEFAULT_HOST_TIMING, ...options.timing };
    this.connectionParams = { ...DEFAULT_CONNECTIONS, ...options.connections };
    this.sim = new Simulator({ seed: options.seed, network: options.network ?? {} });
    // Scenario randomness has its own stream, apart from the network's and the nodes'.
    this.#rng = mulberry32(deriveSeed(options.seed, 0xfffffffe));
    const realistic = options.naming === 'realistic';
    this.ids = Array.from({ length: options.n }, (_, i) => (realistic ? this.#hexId(i) : `n${i}`));
    this.ids.forEach((id, i) => {
      this.#index.set(id, i);
      this.#addresses.set(id, realistic ? this.#multiaddr(i) : `sim://${id}`);
    });
    this.graph = new ConnectionGraph(this.ids, this.connectionParams.dial, this.#rng);
    // Redial phases: a stream of their own, so connection handling does not shift what scenarios draw.
    this.dialer = new SimDialer(this.sim, this.graph, this.connectionParams, mulberry32(deriveSeed(options.seed, 0xfffffffd)));
    this.#bootstrap();
  }

  get rng(): Rng {
    return this.#rng;
  }

  node(id: string): TablesSimNode {
    const node = this.sim.node(id);
    if (node === undefined) throw new Error(`tables cluster: no node ${id}`);
    return node;
  }

  upIds(): string[] {
    return this.ids.filter((id) => this.sim.isUp(id));
  }

  networksOf(id: string): readonly string[] {
    return this.#options.networksOf?.(this.#index.get(id) ?? 0) ?? ['net1'];
  }

  onMemberChange(listener: MemberChangeListener): void {
    this.#memberListeners.push(listener);
  }

  onTableChange(listener: TableChangeListener): void {
    this.#tableListeners.push(listener);
  }

  // ---- writes and anti-entropy --------------------------------------------

  write(id: string, table: string, key: string, value: Uint8Array): void {
    this.sim.invoke(id, (node, now) => node.write(now, table, key, value));
  }

  remove(id: string, table: string, key: string): void {
    this.sim.invoke(id, (node, now) => node.remove(now, table, key));
  }

  /** `a` opens one /weft/sync/1 exchange with `b` now (both directions converge when it completes). */
  exchange(a: string, b: string): void {
    this.sim.invoke(a, (node, now) => node.startSync(now, b));
  }

  setPeriodicSync(on: boolean): void {
    for (const node of this.sim.nodes()) node.periodicSync = on;
  }

  // ---- failures -----------------------------------------------------------

  /** The process stops; what it had persisted survives for restart(). Connections close after dropAfterMs. */
  crash(id: string): void {
    const now = this.sim.now;
    const node = this.node(id);
    this.#persisted.set(id, node.persisted(now));
    this.#persistedRoster.set(id, node.members.roster.all());
    this.#retire(node);
    this.sim.crash(id);
    for (const edge of this.graph.edgesOf(id)) this.dialer.closeLater(edge, () => true);
  }

  /** Same node ID, tables and roster restored from disk, membership from scratch; it dials all its peers at once. */
  restart(id: string): void {
    const now = this.sim.now;
    this.sim.restart(this.#createNode(id, now, this.#persisted.get(id)));
    for (const edge of this.graph.edgesOf(id)) {
      const wasUp = edge.up;
      this.dialer.close(edge); // a connection of its previous life, not closed yet: both ends redial
      this.dialer.open(edge, id);
      // The peer is down or cut off: keep dialling, as the agent does (close() started that already).
      if (!edge.up && !wasUp) this.dialer.redial(edge, id);
    }
  }

  /** `weft node rm <target>` run on `by`: the revocation spreads by gossip; the revoked node leaves when it learns of it. */
  revoke(by: string, target: string): void {
    this.sim.invoke(by, (node, now) => node.revoke(now, target));
  }

  partition(groups: readonly (readonly string[])[]): void {
    this.sim.network.partition(groups);
    for (const edge of this.graph.edges()) {
      if (edge.up && !this.sim.network.canReach(edge.dialer, edge.listener)) {
        this.dialer.closeLater(edge, () => !this.sim.network.canReach(edge.dialer, edge.listener));
      }
    }
  }

  /** The network heals; the dialers' next attempts (within redialWithinMs) open what was closed. */
  heal(): void {
    this.sim.network.heal();
  }

  // ---- checks -------------------------------------------------------------

  /** Stored entries (tombstones and hidden ones included), sorted by key. */
  stored(id: string, table: string): EntryState[] {
    return this.node(id).tables.stored(table).map(entryState).sort(byKey);
  }

  /** What consumers see, sorted by key. */
  visible(id: string, table: string): EntryState[] {
    return this.node(id).tables.list(table).map(entryState).sort(byKey);
  }

  /**
   * Every up node (or `ids`) holds the same stored versions of `tables`,
   * compared by count and XOR of entry fingerprints (a 64-bit set hash; use
   * stored() for an exact comparison).
   */
  storedConverged(tables: readonly string[], ids: readonly string[] = this.upIds()): boolean {
    return allEqual(ids.map((id) => this.#bucketSignature(id, tables)));
  }

  visibleConverged(tables: readonly string[], ids: readonly string[] = this.upIds()): boolean {
    return allEqual(ids.map((id) => JSON.stringify(tables.map((t) => this.visible(id, t)))));
  }

  /** Every up node sees every up node alive and every down node not alive. */
  membershipConverged(): boolean {
    const up = this.upIds();
    for (const observer of up) {
      const m = this.node(observer).membership;
      for (const target of this.ids) {
        if (target === observer) continue;
        const state = m.member(target)?.state;
        if (this.sim.isUp(target) ? state !== 'alive' : state === 'alive' || state === 'suspect') return false;
      }
    }
    return true;
  }

  /** Traffic of every node life so far, summed per class. */
  trafficTotals(): Map<string, TrafficTotals> {
    const totals = new Map<string, TrafficTotals>();
    const add = (cls: string, t: TrafficTotals) => {
      const sum = totals.get(cls) ?? { messages: 0, payload: 0, wire: 0 };
      totals.set(cls, { messages: sum.messages + t.messages, payload: sum.payload + t.payload, wire: sum.wire + t.wire });
    };
    for (const [cls, t] of this.#retiredTraffic) add(cls, t);
    for (const node of this.sim.nodes()) {
      if (!this.sim.isUp(node.id)) continue;
      for (const [cls, t] of node.traffic.byClass) add(cls, t);
    }
    return totals;
  }

  // ---- internals ----------------------------------------------------------

  #bootstrap(): void {
    // A settled cluster: everyone knows everyone and the connections exist
    // already, so no on-connect sync storm at t = 0.
    const records = this.ids.map((id) => settledRecord(id, this.#addresses.get(id) as string));
    for (const id of this.ids) this.#persistedRoster.set(id, records);
    const nodes = this.ids.map((id) => this.#createNode(id, 0, undefined));
    for (const node of nodes) {
      for (const id of this.ids) {
        if (id === node.id) continue;
        node.membership.addMember(0, { id, address: this.#addresses.get(id) as string, incarnation: 0 });
      }
    }
    const byId = new Map(nodes.map((node) => [node.id, node]));
    for (const edge of this.graph.edges()) {
      edge.up = true;
      edge.generation += 1;
      const dialer = byId.get(edge.dialer) as TablesSimNode;
      const listener = byId.get(edge.listener) as TablesSimNode;
      listener.connect(0, edge.dialer, dialer.router.topics(), false, false);
      dialer.connect(0, edge.listener, listener.router.topics(), true, false);
    }
    for (const node of nodes) this.sim.add(node);
  }

  #createNode(id: string, now: number, restored: PersistedTables | undefined): TablesSimNode {
    const life = (this.#lives.get(id) ?? 0) + 1;
    this.#lives.set(id, life);
    const index = this.#index.get(id) as number;
    const node = new TablesSimNode({
      id,
      address: this.#addresses.get(id) as string,
      now,
      seed: deriveSeed(deriveSeed(this.#options.seed, index), life),
      networks: this.networksOf(id),
      ...(this.#options.membership === undefined ? {} : { membership: this.#options.membership }),
      gossipsub: this.#gossipsub,
      timing: this.#timing,
      records: this.#persistedRoster.get(id) ?? [],
      ...(restored === undefined ? {} : { restored }),
      ...(this.#options.sizer === undefined ? {} : { sizer: this.#options.sizer }),
      onMemberChanged: (at, observer, member, previous) => {
        for (const listener of this.#memberListeners) listener({ at, observer, member, previous });
      },
      onDropConnections: (peer) => this.dialer.hangUp(id, peer),
      onMemberInactive: (peer) => this.dialer.hangUp(id, peer),
      onRevoked: () => this.sim.at(this.sim.now, () => this.#leave(id)),
    });
    node.tables.subscribe((changes) => {
      for (const listener of this.#tableListeners) listener({ at: this.sim.now, node: id, changes });
    });
    return node;
  }

  /**
   * A revoked node forgets the cluster (the agent's onRevoked): it stops, and
   * its connections close at once (libp2p stops); no one dials it again.
   */
  #leave(id: string): void {
    if (!this.sim.isUp(id)) return;
    this.#retire(this.node(id));
    this.sim.crash(id);
    for (const edge of this.graph.edgesOf(id)) this.dialer.close(edge);
  }

  #retire(node: TablesSimNode): void {
    for (const [cls, t] of node.traffic.byClass) {
      const sum = this.#retiredTraffic.get(cls) ?? { messages: 0, payload: 0, wire: 0 };
      this.#retiredTraffic.set(cls, { messages: sum.messages + t.messages, payload: sum.payload + t.payload, wire: sum.wire + t.wire });
    }
  }

  /** Per table: entry count and the XOR of all bucket fingerprints (= of all entry fingerprints). */
  #bucketSignature(id: string, tables: readonly string[]): string {
    const node = this.node(id);
    let signature = '';
    for (const table of tables) {
      let count = 0;
      let hi = 0;
      let lo = 0;
      for (const b of node.tables.buckets(table)) {
        count += b.count;
        hi ^= b.fingerprint.hi;
        lo ^= b.fingerprint.lo;
      }
      signature += `${table}=${count}:${hi >>> 0}.${lo >>> 0}|`;
    }
    return signature;
  }

  #hexId(i: number): string {
    let id = '';
    for (let k = 0; k < 4; k++) id += deriveSeed(deriveSeed(this.#options.seed ^ 0x5eed, i), k).toString(16).padStart(8, '0');
    return id;
  }

  /** The agent's SWIM address format (swim-transport.ts swimAddress): underlay IP, port, peer ID. */
  #multiaddr(i: number): string {
    const rng = mulberry32(deriveSeed(this.#options.seed ^ 0xadd5, i));
    let peer = '12D3KooW';
    while (peer.length < 52) peer += BASE58[randomInt(rng, BASE58.length)];
    return `/ip4/198.18.${(i >> 8) & 255}.${i & 255}/tcp/7946/p2p/${peer}`;
  }
}

function entryState(e: Entry): EntryState {
  return { key: e.key, owner: e.owner, lamport: e.lamport, deleted: e.deleted, value: hex(e.value) };
}

function hex(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += byte.toString(16).padStart(2, '0');
  return out;
}

function byKey(a: EntryState, b: EntryState): number {
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
}

function allEqual(values: readonly string[]): boolean {
  return values.every((v) => v === values[0]);
}
