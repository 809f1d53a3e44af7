// A MODEL of libp2p gossipsub's dissemination, for the simulator only. It is
// not production code and not a port of @libp2p/gossipsub: production uses
// the real library (agent/cluster/table-service.ts). What is modelled, with
// js-gossipsub's defaults (node_modules/@libp2p/gossipsub/dist/src/constants.js):
//
// - per topic, a mesh of degree D (kept within [Dlo, Dhi] at every
//   heartbeat) over the node's connected peers that subscribe to the topic;
//   GRAFT and PRUNE are messages; a GRAFT from an inbound peer is refused
//   when the mesh is already at Dhi (gossipsub v1.1's defence);
// - publish: floodPublish sends to every connected topic peer, otherwise to
//   the mesh (topped up to D with random topic peers);
// - eager push: the first copy of a message is forwarded to every mesh peer
//   except the one it came from; later copies are dropped (seen cache by
//   message id = publisher + seqno);
// - lazy push: at each heartbeat, IHAVE with the ids of the last
//   historyGossip heartbeats to max(Dlazy, gossipFactor x candidates) topic
//   peers outside the mesh; IHAVE for unseen ids is answered with IWANT and
//   IWANT with the message, from a cache of historyLength heartbeats, at most
//   gossipRetransmission times per peer and message.
//
// Not modelled: peer scoring, peer exchange (PX), prune backoff,
// opportunistic grafting, the Dout quota, fanout (publishers here are always
// subscribed), IDONTWANT (only for messages >= 512 bytes), flood-protection
// limits on IHAVE/IWANT counts, and the subscription exchange on connect,
// which the host performs out of band (addPeer carries the peer's topics).
// Validation time is the host's business: handle() returns first copies,
// and the host calls accept() once it has validated them.

import type { Rng } from '../membership/rng.ts';
import { randomInt, shuffle } from '../membership/rng.ts';

export interface GossipsubParams {
  /** Mesh degree target, low and high watermarks. */
  D: number;
  Dlo: number;
  Dhi: number;
  /** Minimum number of non-mesh peers that get IHAVE per heartbeat. */
  Dlazy: number;
  /** IHAVE goes to max(Dlazy, gossipFactor x non-mesh topic peers). */
  gossipFactor: number;
  heartbeatMs: number;
  /** Heartbeats a message stays in the cache that serves IWANT. */
  historyLength: number;
  /** Heartbeats whose message ids are announced in IHAVE. */
  historyGossip: number;
  /** How many times one peer may fetch one message by IWANT. */
  gossipRetransmission: number;
  /** Publishers send their own messages to every connected topic peer. */
  floodPublish: boolean;
  /** How long a message id is remembered for de-duplication. */
  seenTtlMs: number;
}

/** js-gossipsub defaults, and weft's floodPublish: true (agent/cluster/libp2p-node.ts). */
export const GOSSIPSUB_DEFAULTS: Readonly<GossipsubParams> = Object.freeze({
  D: 6,
  Dlo: 4,
  Dhi: 12,
  Dlazy: 6,
  gossipFactor: 0.25,
  heartbeatMs: 1000,
  historyLength: 5,
  historyGossip: 3,
  gossipRetransmission: 3,
  floodPublish: true,
  seenTtlMs: 120_000,
});

/** One published message. `from` is the publisher (signed in production), not the forwarder. */
export interface GossipMessage<P> {
  id: string;
  from: string;
  seqno: number;
  topic: string;
  data: P;
}

export interface IHave {
  topic: string;
  ids: string[];
}

/** One gossipsub RPC frame: messages and control, any part may be empty. */
export interface GossipRpc<P> {
  messages: GossipMessage<P>[];
  ihave: IHave[];
  iwant: string[];
  graft: string[];
  prune: string[];
}

export interface RouterSend<P> {
  to: string;
  rpc: GossipRpc<P>;
}

export interface RouterCounters {
  published: number;
  /** First copies received (before validation). */
  firstCopies: number;
  /** First copies that came in answer to our IWANT. */
  firstCopiesViaIwant: number;
  duplicates: number;
  /** Message copies sent: publish, forward and IWANT answers. */
  messagesSent: number;
  ihaveSent: number;
  iwantSent: number;
  grafts: number;
  prunes: number;
}

function emptyRpc<P>(): GossipRpc<P> {
  return { messages: [], ihave: [], iwant: [], graft: [], prune: [] };
}

function isEmpty<P>(rpc: GossipRpc<P>): boolean {
  return rpc.messages.length === 0 && rpc.ihave.length === 0 && rpc.iwant.length === 0 && rpc.graft.length === 0 && rpc.prune.length === 0;
}

interface PeerState {
  topics: ReadonlySet<string>;
  /** We dialled it (matters for the GRAFT-at-Dhi rule). */
  outbound: boolean;
}

interface Cached<P> {
  message: GossipMessage<P>;
  /** IWANT answers per peer. */
  served: Map<string, number>;
}

export class GossipRouter<P> {
  readonly self: string;
  readonly params: GossipsubParams;
  readonly counters: RouterCounters = { published: 0, firstCopies: 0, firstCopiesViaIwant: 0, duplicates: 0, messagesSent: 0, ihaveSent: 0, iwantSent: 0, grafts: 0, prunes: 0 };
  nextHeartbeatAt: number;
  readonly #rng: Rng;
  readonly #topics = new Set<string>();
  readonly #peers = new Map<string, PeerState>();
  readonly #mesh = new Map<string, Set<string>>();
  /** Message id -> expiry; insertion order is expiry order (constant TTL). */
  readonly #seen = new Map<string, number>();
  readonly #cache = new Map<string, Cached<P>>();
  /** Newest first: ids added in each of the last historyLength heartbeats. */
  readonly #windows: { id: string; topic: string }[][] = [[]];
  /** Ids we asked for by IWANT and have not received yet -> whom we asked, until when. */
  readonly #asked = new Map<string, { peer: string; until: number }>();
  #seqno = 0;

  constructor(self: string, rng: Rng, params: GossipsubParams, now: number) {
    this.self = self;
    this.#rng = rng;
    this.params = params;
    // Nodes start at different moments, so their heartbeats are out of phase.
    this.nextHeartbeatAt = now + randomInt(rng, params.heartbeatMs) + 1;
    // js-gossipsub seeds its seqno counter from the clock (in ns), so a
    // restarted publisher never reuses a message id that peers still hold
    // in their seen cache; a counter from 0 would have its first messages
    // after a restart dropped as duplicates for seenTtlMs.
    this.#seqno = Math.round(now * 1_000_000);
  }

  subscribe(topic: string): void {
    this.#topics.add(topic);
    if (!this.#mesh.has(topic)) this.#mesh.set(topic, new Set());
  }

  topics(): string[] {
    return [...this.#topics];
  }

  mesh(topic: string): ReadonlySet<string> {
    return this.#mesh.get(topic) ?? new Set();
  }

  peers(): string[] {
    return [...this.#peers.keys()];
  }

  /** A connection opened; `topics` is what the peer told us it subscribes to. */
  addPeer(peer: string, topics: Iterable<string>, outbound: boolean): void {
    this.#peers.set(peer, { topics: new Set(topics), outbound });
  }

  /** A connection closed: the peer leaves every mesh at once. */
  removePeer(peer: string): void {
    this.#peers.delete(peer);
    for (const mesh of this.#mesh.values()) mesh.delete(peer);
  }

  /** Our own message: remembered as seen and cached, sent to topic peers. */
  publish(now: number, topic: string, data: P): { message: GossipMessage<P>; sends: RouterSend<P>[] } {
    this.#seqno += 1;
    const message: GossipMessage<P> = { id: `${this.self}:${this.#seqno}`, from: this.self, seqno: this.#seqno, topic, data };
    this.counters.published += 1;
    this.#markSeen(now, message.id);
    this.#store(message);
    const targets = this.params.floodPublish ? this.#topicPeers(topic) : this.#meshOrFill(topic);
    const sends = targets.map((to) => this.#messageTo(to, message));
    return { message, sends };
  }

  /**
   * An RPC from a connected peer. Control is answered at once; first copies
   * of messages are returned for validation, after which the host calls
   * accept(). Duplicates are dropped here.
   */
  handle(now: number, from: string, rpc: GossipRpc<P>): { sends: RouterSend<P>[]; fresh: GossipMessage<P>[] } {
    const fresh: GossipMessage<P>[] = [];
    if (!this.#peers.has(from)) return { sends: [], fresh };
    const reply = emptyRpc<P>();
    for (const message of rpc.messages) {
      if (this.#seen.has(message.id)) {
        this.counters.duplicates += 1;
        continue;
      }
      this.#markSeen(now, message.id);
      this.counters.firstCopies += 1;
      // The asked peer does not push to us eagerly (we are outside its mesh), so its copy answers our IWANT.
      if (this.#asked.get(message.id)?.peer === from) this.counters.firstCopiesViaIwant += 1;
      this.#asked.delete(message.id);
      fresh.push(message);
    }
    for (const topic of rpc.graft) this.#onGraft(from, topic, reply);
    for (const topic of rpc.prune) this.#mesh.get(topic)?.delete(from);
    for (const have of rpc.ihave) {
      if (!this.#topics.has(have.topic)) continue;
      for (const id of have.ids) {
        if (this.#seen.has(id)) continue;
        reply.iwant.push(id);
        this.#asked.set(id, { peer: from, until: now + this.params.heartbeatMs * this.params.historyLength });
      }
    }
    if (reply.iwant.length > 0) this.counters.iwantSent += 1;
    const sends: RouterSend<P>[] = [];
    for (const id of rpc.iwant) {
      const cached = this.#cache.get(id);
      if (cached === undefined) continue;
      const served = cached.served.get(from) ?? 0;
      if (served >= this.params.gossipRetransmission) continue;
      cached.served.set(from, served + 1);
      reply.messages.push(cached.message);
      this.counters.messagesSent += 1;
    }
    if (!isEmpty(reply)) sends.push({ to: from, rpc: reply });
    return { sends, fresh };
  }

  /** A first copy passed validation: cache it for IWANT and forward it to the mesh. */
  accept(message: GossipMessage<P>, propagationSource: string): RouterSend<P>[] {
    this.#store(message);
    const mesh = this.#mesh.get(message.topic);
    if (mesh === undefined) return [];
    const sends: RouterSend<P>[] = [];
    for (const peer of mesh) {
      if (peer === propagationSource || !this.#peers.has(peer)) continue;
      sends.push(this.#messageTo(peer, message));
    }
    return sends;
  }

  /** Mesh maintenance, IHAVE gossip, cache shift. Call at nextHeartbeatAt. */
  heartbeat(now: number): RouterSend<P>[] {
    this.nextHeartbeatAt = now + this.params.heartbeatMs;
    const out = new Map<string, GossipRpc<P>>();
    const rpcFor = (peer: string): GossipRpc<P> => {
      let rpc = out.get(peer);
      if (rpc === undefined) out.set(peer, (rpc = emptyRpc<P>()));
      return rpc;
    };
    for (const topic of this.#topics) {
      this.#maintainMesh(topic, rpcFor);
      this.#emitGossip(topic, rpcFor);
    }
    this.#shiftCache();
    this.#expireSeen(now);
    const sends: RouterSend<P>[] = [];
    for (const [to, rpc] of out) if (!isEmpty(rpc)) sends.push({ to, rpc });
    return sends;
  }

  #maintainMesh(topic: string, rpcFor: (peer: string) => GossipRpc<P>): void {
    const p = this.params;
    const mesh = this.#mesh.get(topic) as Set<string>;
    if (mesh.size < p.Dlo) {
      const candidates = shuffle(
        this.#rng,
        this.#topicPeers(topic).filter((peer) => !mesh.has(peer)),
      ).slice(0, p.D - mesh.size);
      for (const peer of candidates) {
        mesh.add(peer);
        rpcFor(peer).graft.push(topic);
        this.counters.grafts += 1;
      }
    } else if (mesh.size > p.Dhi) {
      const excess = shuffle(this.#rng, [...mesh]).slice(p.D);
      for (const peer of excess) {
        mesh.delete(peer);
        rpcFor(peer).prune.push(topic);
        this.counters.prunes += 1;
      }
    }
  }

  #emitGossip(topic: string, rpcFor: (peer: string) => GossipRpc<P>): void {
    const ids: string[] = [];
    for (const window of this.#windows.slice(0, this.params.historyGossip)) {
      for (const item of window) if (item.topic === topic) ids.push(item.id);
    }
    if (ids.length === 0) return;
    const mesh = this.#mesh.get(topic) as Set<string>;
    const candidates = this.#topicPeers(topic).filter((peer) => !mesh.has(peer));
    const target = Math.min(candidates.length, Math.max(this.params.Dlazy, Math.floor(this.params.gossipFactor * candidates.length)));
    for (const peer of shuffle(this.#rng, candidates).slice(0, target)) {
      rpcFor(peer).ihave.push({ topic, ids });
      this.counters.ihaveSent += 1;
    }
  }

  #onGraft(from: string, topic: string, reply: GossipRpc<P>): void {
    const mesh = this.#mesh.get(topic);
    if (mesh === undefined) {
      reply.prune.push(topic);
      return;
    }
    if (mesh.has(from)) return;
    // Gossipsub v1.1: at Dhi, only peers we dialled may graft (mesh takeover defence).
    if (mesh.size >= this.params.Dhi && this.#peers.get(from)?.outbound !== true) {
      reply.prune.push(topic);
      this.counters.prunes += 1;
      return;
    }
    mesh.add(from);
  }

  #topicPeers(topic: string): string[] {
    const peers: string[] = [];
    for (const [peer, state] of this.#peers) if (state.topics.has(topic)) peers.push(peer);
    return peers;
  }

  #meshOrFill(topic: string): string[] {
    const mesh = [...(this.#mesh.get(topic) ?? [])];
    if (mesh.length >= this.params.D) return mesh;
    const extra = shuffle(this.#rng, this.#topicPeers(topic).filter((peer) => !mesh.includes(peer)));
    return [...mesh, ...extra.slice(0, this.params.D - mesh.length)];
  }

  #messageTo(to: string, message: GossipMessage<P>): RouterSend<P> {
    this.counters.messagesSent += 1;
    const rpc = emptyRpc<P>();
    rpc.messages.push(message);
    return { to, rpc };
  }

  #store(message: GossipMessage<P>): void {
    if (this.#cache.has(message.id)) return;
    this.#cache.set(message.id, { message, served: new Map() });
    (this.#windows[0] as { id: string; topic: string }[]).push({ id: message.id, topic: message.topic });
  }

  #shiftCache(): void {
    this.#windows.unshift([]);
    while (this.#windows.length > this.params.historyLength) {
      for (const { id } of this.#windows.pop() ?? []) this.#cache.delete(id);
    }
  }

  #markSeen(now: number, id: string): void {
    this.#seen.set(id, now + this.params.seenTtlMs);
  }

  #expireSeen(now: number): void {
    for (const [id, expiry] of this.#seen) {
      if (expiry > now) break;
      this.#seen.delete(id);
    }
    for (const [id, { until }] of this.#asked) if (until <= now) this.#asked.delete(id);
  }
}
