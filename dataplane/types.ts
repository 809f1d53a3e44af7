// The desired state the data plane is given. It decides nothing: the agent says
// what should exist, these types say how.

/** One overlay network on this host. */
export interface NetworkSpec {
  /** The network's name; used in messages only. */
  name: string;
  vni: number;
  /** The network's subnet, e.g. 100.64.1.0/24. */
  subnet: string;
  /** Gateway address, put on the bridge of every host (same IP and MAC everywhere). */
  gateway: string;
  /** This host's underlay address: the VXLAN source (VTEP). Must be configured on an interface of this host. */
  vtep: string;
  /** Bind the VXLAN device to this underlay device (`dev`); default none. */
  underlayDevice?: string;
  /** Overlay MTU; default the MTU of the underlay device (or of the device holding `vtep`) minus 50. */
  mtu?: number;
  /** VXLAN UDP port; default 4789. */
  dstPort?: number;
}

/** A network as realised on this host (what ensureNetwork returns). */
export interface Network {
  spec: NetworkSpec;
  vni: number;
  /** Name of the network namespace: `${nsPrefix}-n${vni}`. */
  netns: string;
  bridge: string;
  vxlan: string;
  mtu: number;
  prefixLength: number;
  dstPort: number;
  /** The bridge's MAC, macFromIp(gateway): stable across restarts and hosts. */
  gatewayMac: string;
}

/** An endpoint on another host, to be reached through its VTEP. */
export interface RemoteEndpoint {
  ip: string;
  mac: string;
  /** Underlay address of the host the endpoint lives on. */
  vtep: string;
}

/** All remote endpoints that should be programmed in one network on this host. */
export interface NetworkEndpoints {
  vni: number;
  endpoints: readonly RemoteEndpoint[];
}

/** How a sandbox is attached to a network. */
export interface AttachmentSpec {
  /** Address of the sandbox in the network (within the network's subnet). */
  ip: string;
  /** Interface name inside the sandbox; default the first free ethN. */
  ifname?: string;
  /** Route the sandbox's default traffic through this network's gateway (the agent sets it for the first network). */
  defaultRoute: boolean;
  /** Default macFromIp(ip). */
  mac?: string;
}

export interface Counts {
  added: number;
  removed: number;
  replaced: number;
}
