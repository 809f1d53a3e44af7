// The gossip side of allocation: each node publishes its view of every ring
// in the `allocations` table under its own key (ring-keys.ts) and reads the
// others' views from there. Entries come from peers, so each is checked: the
// key must name the node that wrote the entry and the space the ring is for,
// and the ring must decode; anything else is ignored with a warning.
import type { Logger } from 'pino';
import type { RingState } from '../../controlplane/allocation/index.ts';
import { decodeEntries, type Entry } from '../../controlplane/tables/index.ts';
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
        // A withdrawn or hidden view ('remove') is not un-merged: what we merged stays true.
        const published = this.#decode(changes.filter((c) => c.op !== 'remove').map((c) => c.entry));
        for (const view of published) if (view.from !== this.#selfId) onRing(view);
      },
      (table) => table === ALLOCATIONS_TABLE,
    );
  }

  /** Every node's visible view of a space's ring, this node's own included. */
  ofSpace(space: string): PublishedRing[] {
    const entries = this.#tables.tables.list(ALLOCATIONS_TABLE).filter((e) => e.key.startsWith(space + '|'));
    return this.#decode(entries).filter((view) => view.ring.space === space);
  }

  /** The rings gone nodes last published (hidden entries too: they died with their ranges). */
  ofGone(gone: ReadonlySet<string>): RingState[] {
    const entries = this.#tables.tables.stored(ALLOCATIONS_TABLE).filter((e) => !e.deleted && gone.has(e.owner));
    return this.#decode(entries).map((view) => view.ring);
  }

  #decode(entries: Entry[]): PublishedRing[] {
    const { decoded, undecodable } = decodeEntries(entries, readRing);
    for (const { entry, problem } of undecodable) this.#log.warn({ key: entry.key, owner: entry.owner, err: problem }, 'ignored an allocations entry');
    return decoded.map((d) => d.value);
  }
}

/** The ring under a table key, if the key is well-formed and written by the node it names. */
function readRing(entry: Entry): PublishedRing {
  const parsed = parseRingKey(entry.key);
  if (!parsed || parsed.nodeId !== entry.owner) throw new Error('the entry was not written by the node its key names');
  const ring = decodeRing(entry.value);
  if (ring.space !== parsed.space) throw new Error(`the key names space ${parsed.space} but the ring is for ${ring.space}`);
  return { from: entry.owner, ring };
}
