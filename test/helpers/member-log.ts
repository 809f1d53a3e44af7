// Reads the "member state changed" lines an agent logs (node-runner.ts) back
// out of its JSON log: tests and benches judge failure detection by what each
// agent decided, and when, rather than by polling a moment's state.
import { readFileSync } from 'node:fs';

export interface MemberStateChange {
  /** Epoch milliseconds of the log line. */
  time: number;
  /** Node ID of the member whose state changed. */
  node: string;
  state: string;
  previous: string | null;
}

/** Every member state change in `logFile` logged at or after `since` (epoch ms), in log order. */
export function memberStateChanges(logFile: string, since = 0): MemberStateChange[] {
  const changes: MemberStateChange[] = [];
  for (const line of readFileSync(logFile, 'utf8').split('\n')) {
    if (!line.includes('member state changed')) continue;
    try {
      const entry = JSON.parse(line) as MemberStateChange;
      if (entry.time >= since) changes.push({ time: entry.time, node: entry.node, state: entry.state, previous: entry.previous ?? null });
    } catch {
      // a line cut short by a killed agent, or not one of ours
    }
  }
  return changes;
}
