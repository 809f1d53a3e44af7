// The replicated tables as the rest of the agent sees them (the overlay,
// the allocator, the service plane): reads, local writes, change streams,
// the networks this host replicates, and the anti-entropy calls state sync
// makes. Every write and every received entry goes through the node core
// (node-runner.ts), which coalesces and publishes, applies the topic and
// scope rules, hides dead owners' entries and asks for the tables to be saved.
import type { ReplicatedTables, Change, ChangeListener, Digest, SyncReply, WireEntry, TableFilter } from '../../controlplane/tables/index.ts';
import type { NodeRunner, OwnEntriesListener } from './node-runner.ts';

export type { TableStore, OwnEntriesListener } from './node-runner.ts';

export class TableService {
  readonly #runner: NodeRunner;

  constructor(runner: NodeRunner) {
    this.#runner = runner;
  }

  get tables(): ReplicatedTables {
    return this.#runner.core.tables;
  }

  subscribe(listener: ChangeListener, filter?: TableFilter): () => void {
    return this.tables.subscribe(listener, filter);
  }

  /**
   * Called with this node's own entries that a peer handed back in a version
   * this node did not hold: typically an entry this node deleted while that
   * peer was away for longer than the reap time, so the tombstone is gone.
   * The tables adopt them (only the owner could have signed them); the
   * consumer that knows the truth for the table (the overlay for endpoints)
   * writes the current value again or deletes the key anew.
   */
  ownEntriesAdopted(listener: OwnEntriesListener): () => void {
    return this.#runner.onOwnEntriesAdopted(listener);
  }

  set(table: string, key: string, value: Uint8Array): Change[] {
    return this.#runner.step({ kind: 'write', table, key, value }).changes;
  }

  delete(table: string, key: string): Change[] {
    return this.#runner.step({ kind: 'delete', table, key }).changes;
  }

  // ---- per-network topics ----

  /** Called when the first local endpoint appears on a network. */
  joinNetwork(networkId: string): void {
    this.#runner.step({ kind: 'join-network', network: networkId });
  }

  /** Called when the last local endpoint leaves: stop receiving that network's traffic. */
  leaveNetwork(networkId: string): void {
    this.#runner.step({ kind: 'leave-network', network: networkId });
  }

  networks(): string[] {
    return this.#runner.core.networks();
  }

  /** Tables this node replicates (NodeCore.scope). */
  scope(): string[] {
    return this.#runner.core.scope();
  }

  // ---- anti-entropy (the three messages of /weft/sync/1) ----

  digest(): Digest {
    return this.#runner.core.digest();
  }

  answer(digest: Digest): SyncReply {
    return this.#runner.core.answer(Date.now(), digest);
  }

  complete(peerNodeId: string, digest: Digest, reply: SyncReply & { dropped?: number }): WireEntry[] {
    const ready = this.#runner.step({ kind: 'sync-reply', from: peerNodeId, digest, reply, dropped: reply.dropped ?? 0 }, 'sync');
    return ready.syncClose;
  }

  finish(peerNodeId: string, entries: WireEntry[], dropped = 0): void {
    this.#runner.step({ kind: 'sync-finish', from: peerNodeId, entries, dropped }, 'sync');
  }

  persist(): void {
    this.#runner.persist();
  }
}
