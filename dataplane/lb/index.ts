// VIP load balancing inside sandboxes (docs/load-balancing.md).
export { LoadBalancer, type SandboxLb, type LbApplyResult, type ConntrackFlow } from './load-balancer.ts';
export { renderLb, fullScript, incrementalScript, backendChanges, validateServices, LbSpecError, LB_TABLE, type LbService, type LbPort, type RenderedLb } from './ruleset.ts';
export { NftWorker } from './nft-worker.ts';
export { NftWorkerPool } from './nft-worker-pool.ts';
