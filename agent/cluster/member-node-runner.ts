// The node core (failure detection and the tables, node-runner.ts) as a
// cluster member runs it: on the member's libp2p node and gossip port,
// signing with its node key, and trusting only what the roster admits. Kept
// apart from cluster-node.ts, which owns the roster and its records: this is
// how those records decide who may speak and whose entries count.
import type { Logger } from 'pino';
import type { Roster } from '../../controlplane/cluster/roster.ts';
import type { ClusterMaterial } from '../daemon/data-dir.ts';
import type { WeftLibp2p } from './libp2p-node.ts';
import type { OwnerKeys } from './owner-keys.ts';
import { NodeRunner, type TableStore } from './node-runner.ts';
import { swimAddress } from './swim-transport.ts';

export interface MemberNodeRunnerOptions {
  libp2p: WeftLibp2p;
  roster: Roster;
  ownerKeys: OwnerKeys;
  material: ClusterMaterial;
  listenIp: string;
  gossipPort: number;
  store: TableStore;
  /** How long deletes are remembered (tombstone reap time); the runner's default when absent. */
  reapMs: number | undefined;
  /** The node ID of an active member's peer ID, else undefined. */
  activeNodeIdOf: (peerId: string) => string | undefined;
  logger: Logger;
}

export function createMemberNodeRunner(o: MemberNodeRunnerOptions): NodeRunner {
  const selfId = o.material.nodeId;
  const self = o.roster.get(selfId);
  if (!self) throw new Error('own member record missing from the roster');
  // The key of a member (or entry owner) is the one behind the peer ID its certificate-checked roster record names.
  const verify = (nodeId: string, payload: Uint8Array, signature: Uint8Array): boolean => {
    const peerId = o.roster.get(nodeId)?.peerId;
    return peerId !== undefined && o.ownerKeys.verifyByPeer(peerId, payload, signature);
  };
  const sign = (payload: Uint8Array): Uint8Array => o.ownerKeys.sign(payload);
  return new NodeRunner({
    node: o.libp2p,
    selfId,
    selfAddress: swimAddress(self.address, self.gossipPort, self.peerId),
    logger: o.logger,
    store: o.store,
    ...(o.reapMs === undefined ? {} : { reapMs: o.reapMs }),
    nodeIdOfPeer: o.activeNodeIdOf,
    isAdmittedOwner: (nodeId) => o.roster.admitsEntriesOf(nodeId),
    sign,
    verify,
    claims: { sign, verify },
    datagrams: {
      psk: o.material.psk,
      listenIp: o.listenIp,
      port: o.gossipPort,
      isMemberAddress: (ip) => o.roster.isMemberAddress(ip),
      sign,
      // Only an active member's key speaks on SWIM: a removed node keeps the PSK, not its standing.
      verifyMember: (nodeId, payload, signature) => o.activeNodeIdOf(o.roster.get(nodeId)?.peerId ?? '') === nodeId && verify(nodeId, payload, signature),
    },
  });
}
