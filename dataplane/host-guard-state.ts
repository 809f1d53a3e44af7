// What the host guard enforces: member VTEPs and cluster ports, and each
// sandbox's pinned port on the egress bridge (rendered by host-guard.ts,
// compared with the kernel by host-guard-inspect.ts).

export interface ClusterPort {
  address: string;
  protocol: 'tcp' | 'udp';
  port: number;
}

/** A sandbox's port on the egress bridge and the only source it may use there. */
export interface GuardPin {
  /** Host-side veth name (egressVethFor). */
  port: string;
  mac: string;
  ip: string;
}

export interface GuardMembers {
  /** Underlay addresses allowed to send VXLAN (UDP 4789) to this host. */
  vteps: readonly string[];
  /** Cluster ports of every member, this host's included: sandboxes may not reach them. */
  clusterPorts: readonly ClusterPort[];
}

export interface HostGuardState extends GuardMembers {
  pins: readonly GuardPin[];
  /** The egress bridge's own address: it serves sandboxes only (DNS), never the underlay. */
  gateway: string;
}
