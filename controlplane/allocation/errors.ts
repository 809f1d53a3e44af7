// Allocation failures as data: a code for programs and a sentence for
// people that says what is wrong and what to do.

export type AllocErrorCode =
  | 'no-ring'
  | 'unreachable'
  | 'exhausted'
  | 'in-use'
  | 'out-of-space'
  | 'awaiting-handover'
  | 'not-allocated';

export interface AllocError {
  code: AllocErrorCode;
  message: string;
  /** Nodes that own the space this node would need, when relevant. */
  owners?: string[];
}

export const allocErrors = {
  noRing: (space: string): AllocError => ({
    code: 'no-ring',
    message: `this node has not received the ${space} allocation ring yet; retry after it has synced with a cluster member`,
  }),
  unreachable: (space: string, owners: string[]): AllocError => ({
    code: 'unreachable',
    message: `no free ${space} space owned by this node and no reachable owner to ask (space is held by ${owners.join(', ')}); retry when the cluster is healed`,
    owners,
  }),
  valueUnreachable: (space: string, value: number, owner: string): AllocError => ({
    code: 'unreachable',
    message: `${space} value ${value} belongs to node ${owner}, which is not reachable; retry when the cluster is healed`,
    owners: [owner],
  }),
  exhausted: (space: string): AllocError => ({
    code: 'exhausted',
    message: `the ${space} space is full: no node has a free value; free some or use a larger space`,
  }),
  inUse: (space: string, value: number): AllocError => ({ code: 'in-use', message: `${space} value ${value} is already in use` }),
  outOfSpace: (space: string, value: number, start: number, end: number): AllocError => ({
    code: 'out-of-space',
    message: `${value} is outside the ${space} space [${start}, ${end})`,
  }),
  rangesAwaitingHandover: (space: string): AllocError => ({
    code: 'awaiting-handover',
    message: `this node's ${space} ranges were handed to it but their in-use list has not arrived yet, and no other node has free space; retry shortly`,
  }),
  awaitingHandover: (space: string, value: number): AllocError => ({
    code: 'awaiting-handover',
    message: `${space} value ${value} lies in a range handed to this node whose in-use list has not arrived yet; retry shortly`,
  }),
  notAllocated: (space: string, value: number): AllocError => ({ code: 'not-allocated', message: `${space} value ${value} is not allocated` }),
};
