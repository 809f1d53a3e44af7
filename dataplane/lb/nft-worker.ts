// The TypeScript side of nft-worker.py: one long-lived worker process that
// applies nftables scripts in many namespaces (see the .py file for why).
// If the worker dies, the next request starts a new one and `generation`
// changes: the caller re-applies everything (../python-worker.ts).
import { fileURLToPath } from 'node:url';
import { PYTHON, PythonWorker, type WorkerProcessOptions } from '../python-worker.ts';

const WORKER = fileURLToPath(new URL('./nft-worker.py', import.meta.url));

export type WorkerChange = { script: string } | { table: string; chains: [string, readonly string[]][] };
/** Conntrack entries to delete after the change: [VIP, protocol, backend] (see conntrack_netlink.py). */
export type WorkerFlows = { flows: readonly (readonly [string, 'tcp' | 'udp', string])[] };
export type WorkerItem =
  | ({ netns: string } & WorkerChange & Partial<WorkerFlows>)
  | ({ netns: string } & WorkerFlows)
  | { netns: string; forget: true }
  | { netns: string; list: string };
/** `output`: for a list item, the table as nft JSON, or null when there is no such table. */
export type WorkerResult = { ok: true; output?: string | null } | { ok: false; error: string };

export type NftWorkerOptions = WorkerProcessOptions;

export class NftWorker extends PythonWorker<WorkerItem, WorkerResult> {
  constructor(options: NftWorkerOptions = {}) {
    super({ command: options.command ?? [PYTHON, WORKER], label: 'the nftables worker', hint: 'is python3-nftables installed?', replyTimeoutMs: options.replyTimeoutMs });
  }
}
