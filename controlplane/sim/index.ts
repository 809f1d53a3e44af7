// Public surface of the deterministic simulator.
export { Simulator } from './simulator.ts';
export type { Envelope, SimNode, SimStats, SimulatorOptions } from './simulator.ts';
export { SimNetwork, DEFAULT_NETWORK } from './network.ts';
export type { NetworkConfig } from './network.ts';
export { EventQueue } from './event-queue.ts';
export { MembershipNode } from './membership-node.ts';
export { MembershipCluster } from './membership-cluster.ts';
export type { ChangeRecord, ClusterOptions } from './membership-cluster.ts';
export { runCrash, runQuiet } from './failure-detection.ts';
export type { CrashRunOptions, CrashRunResult, QuietRunOptions, QuietRunResult } from './failure-detection.ts';
