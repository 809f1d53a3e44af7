// Several nft workers side by side: most of a backend change's cost is the
// kernel committing one transaction per namespace, and namespaces commit
// independently, so two workers on two cores nearly halve the time. Each
// namespace always goes to the same worker (a hash of its path), where its
// sockets are cached. Same interface as one NftWorker.
import { availableParallelism } from 'node:os';
import { NftWorker, type WorkerItem, type WorkerResult } from './nft-worker.ts';

const MAX_WORKERS = 4;

export class NftWorkerPool {
  readonly #workers: NftWorker[];

  constructor(size = Math.min(MAX_WORKERS, availableParallelism())) {
    this.#workers = Array.from({ length: Math.max(1, size) }, () => new NftWorker());
  }

  async run(items: readonly WorkerItem[]): Promise<WorkerResult[]> {
    const shares = this.#workers.map(() => ({ items: [] as WorkerItem[], positions: [] as number[] }));
    items.forEach((item, position) => {
      const share = shares[shardOf(item.netns, shares.length)]!;
      share.items.push(item);
      share.positions.push(position);
    });
    const results: WorkerResult[] = new Array(items.length);
    await Promise.all(shares.map(async (share, i) => {
      const replies = await this.#workers[i]!.run(share.items);
      share.positions.forEach((position, j) => {
        results[position] = replies[j]!;
      });
    }));
    return results;
  }

  /**
   * Applies an nft script in the workers' own network namespace: the agent's,
   * whose children they are (DataplaneContext.nftScript).
   */
  async applyHere(script: string): Promise<void> {
    const [result] = await this.run([{ netns: '/proc/self/ns/net', script }]);
    if (!result?.ok) throw new Error(result?.error ?? 'the nft worker gave no answer');
  }

  /** Changes whenever any worker was replaced (its namespaces hold whatever the old one left). */
  get generation(): number {
    return this.#workers.reduce((sum, w) => sum + w.generation, 0);
  }

  /** The workers' pids (tests kill one to check recovery). */
  get pids(): (number | undefined)[] {
    return this.#workers.map((w) => w.pid);
  }

  async close(): Promise<void> {
    await Promise.all(this.#workers.map((w) => w.close()));
  }
}

function shardOf(path: string, count: number): number {
  let hash = 0;
  for (let i = 0; i < path.length; i++) hash = (hash * 31 + path.charCodeAt(i)) >>> 0;
  return hash % count;
}
