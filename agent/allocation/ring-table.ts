// The gossip side of allocation: each node publishes its view of every ring
// in the `allocations` table under its own key (ring-keys.ts) and reads the
// others' views from there. Entries come from peers, so each is checked: the
// key must name the node that wrote the entry and the space the ring is for,
// and the ring must decode; anything else is ignored with a warning.
import type { Logger } from 'pino';
import type { RingState } from '../../controlplane/allocation/index.ts';
import type { TableService } from '../cluster/table-service.ts';
import { decodeRing, encodeRing } from '../wire/allocation-codec.ts';
import { ALLOCATIONS_TABLE, parseRingKey, ringKey } from './ring-keys.ts';

/** A ring as a node published it. */
export interface PublishedRing {
  from: string;
  ring: RingState;
}

export type RingTables = Pick<TableService, 'set' | 'delete' | 'subscribe' | 'tables'>;

export class RingTable {
  readonly #selfId: string;
  readonly #tables: RingTables;
  readonly #log: Logger;

  constructor(selfId: string, tables: RingTables, log: Logger) {
    this.#selfId = selfId;
    this.#tables = tables;
    this.#log = log;
  }

  /** Publishes this node's view of a ring. */
  publish(ring: RingState): void {
    this.#tables.set(ALLOCATIONS_TABLE, ringKey(ring.space, this.#selfId), encodeRing(ring));
  }

  /** Withdraws this node's view of a space's ring (the space is gone). */
  withdraw(space: string): void {
    this.#tables.delete(ALLOCATIONS_TABLE, ringKey(space, this.#selfId));
  }

  /** Calls `onRing` with every ring another node publishes from now on. */
  subscribe(onRing: (published: PublishedRing) => void): () => void {
    return this.#tables.subscribe(
      (changes) => {
        for (const change of changes) {
          if (change.op === 'remove') continue; // a withdrawn or hidden view: what we merged stays true
          const published = this.#read(change.key, change.entry.owner, change.entry.value);
          if (published && published.from !== this.#selfId) onRing(published);
        }
      },
      (table) => table === ALLOCATIONS_TABLE,
    );
  }

  /** Every node's visible view of a space's ring, this node's own included. */
  ofSpace(space: string): PublishedRing[] {
    const rings = [];
    for (const entry of this.#tables.tables.list(ALLOCATIONS_TABLE)) {
      if (!entry.key.startsWith(space + '|')) continue;
      const published = this.#read(entry.key, entry.owner, entry.value);
      if (published && published.ring.space === space) rings.push(published);
    }
    return rings;
  }

  /** The rings gone nodes last published (hidden entries too: they died with their ranges). */
  ofGone(gone: ReadonlySet<string>): RingState[] {
    const rings = [];
    for (const entry of this.#tables.tables.stored(ALLOCATIONS_TABLE)) {
      if (entry.deleted || !gone.has(entry.owner)) continue;
      const published = this.#read(entry.key, entry.owner, entry.value);
      if (published) rings.push(published.ring);
    }
    return rings;
  }

  /** The ring under a table key, if the key is well-formed and written by the node it names. */
  #read(key: string, owner: string, value: Uint8Array): PublishedRing | undefined {
    const parsed = parseRingKey(key);
    if (!parsed || parsed.nodeId !== owner) {
      this.#log.warn({ key, owner }, 'ignored an allocations entry not written by the node its key names');
      return undefined;
    }
    try {
      const ring = decodeRing(value);
      if (ring.space !== parsed.space) throw new Error(`the key names space ${parsed.space} but the ring is for ${ring.space}`);
      return { from: owner, ring };
    } catch (error) {
      this.#log.warn({ key, err: (error as Error).message }, 'ignored a malformed allocation ring');
      return undefined;
    }
  }
}
