// Keys of the `allocations` cluster table. Each node publishes its own view
// of a ring under `${space}|${nodeId}`: the table is last-writer-wins per key,
// so a CRDT under one shared key would lose merges. A key is honoured only
// when the entry's owner is the node the key names.
export const ALLOCATIONS_TABLE = 'allocations';

export function ringKey(space: string, nodeId: string): string {
  return `${space}|${nodeId}`;
}

/** The space and publishing node of a key; undefined for a key that is not `${space}|${nodeId}`. */
export function parseRingKey(key: string): { space: string; nodeId: string } | undefined {
  const bar = key.lastIndexOf('|');
  if (bar <= 0 || bar === key.length - 1) return undefined;
  return { space: key.slice(0, bar), nodeId: key.slice(bar + 1) };
}
