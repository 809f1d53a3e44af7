// The weft agent: owns the data dir, the node identity and, once the host is
// in a cluster, the ClusterNode and the admission server. The API server calls
// the methods below; each either succeeds or throws an AgentError that says
// what to do.
import type { Logger } from 'pino';
import { randomBytes } from 'node:crypto';
import { peerIdFromPrivateKey } from '@libp2p/peer-id';
import { type AgentConfig, admissionPortOf, listenIpOf } from '../config.ts';
import { DataDir, type ClusterMaterial, type NodeKeys } from './data-dir.ts';
import { lockDataDir, type DataDirLock } from './lock.ts';
import { resolveAdvertiseAddr } from './advertise.ts';
import { ClusterNode, type MemberView } from '../cluster/cluster-node.ts';
import { startAdmissionServer, type AdmissionServer } from '../cluster/admission-server.ts';
import { joinCluster } from '../cluster/admission-client.ts';
import { newPsk } from '../cluster/psk.ts';
import { createClusterCa, issueNodeCertificate } from '../../controlplane/security/certificates.ts';
import { newTokenSecret, parseToken, TokenError } from '../../controlplane/security/token.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';
import type { Snapshot } from '../wire/cluster-codec.ts';
import { AgentError, NOT_IN_CLUSTER, badRequest, precondition } from '../api/errors.ts';
import { status as grpcStatus } from '@grpc/grpc-js';
import { join } from 'node:path';
import { createDataplane } from '../../dataplane/index.ts';
import { processRunner } from '../../dataplane/exec.ts';
import { LinkWorker, linkWorkerRunner } from '../../dataplane/link-worker.ts';
import { Overlay } from '../overlay/overlay.ts';
import { subnetSpace, VNI_SPACE } from '../overlay/spaces.ts';
import { AllocationService } from '../allocation/allocation-service.ts';
import { FileAllocationStore } from '../allocation/store.ts';
import { ServicePlane } from '../services/service-plane.ts';
import { LoadBalancer, NftWorkerPool } from '../../dataplane/lb/index.ts';
import { IngressMesh } from '../ingress/ingress-mesh.ts';
import { startResolver } from '../services/resolver.ts';
import type { DnsServer } from '../../dataplane/dns/server.ts';
import { egressGateway, type EgressSpec } from '../../dataplane/egress.ts';
import { HostGuard } from '../overlay/host-guard.ts';
import { Serializer } from '../../lib/serial.ts';
import { countGossipTraffic, type GossipTraffic } from '../cluster/gossip-traffic.ts';
import { readingOf } from '../metrics/reading.ts';
import type { MetricsReading } from '../metrics/snapshot.ts';

export { WEFT_VERSION } from '../version.ts';

export class Agent {
  readonly config: AgentConfig;
  readonly advertiseAddr: string;
  readonly #log: Logger;
  readonly #dataDir: DataDir;
  readonly #lock: DataDirLock;
  #keys!: NodeKeys;
  #cluster: ClusterNode | undefined;
  #admission: AdmissionServer | undefined;
  #allocations: AllocationService | undefined;
  #overlay: Overlay | undefined;
  #services: ServicePlane | undefined;
  #ingress: IngressMesh | undefined;
  #dns: DnsServer | undefined;
  #guard: HostGuard | undefined;
  /** nft without a process per change: the load balancer's tables and the host guard's. */
  #nftWorkers: NftWorkerPool | undefined;
  #linkWorker: LinkWorker | undefined;
  #traffic: GossipTraffic | undefined;
  /** Cluster-changing operations run one at a time: init, join and leave must not interleave. */
  readonly #exclusive = new Serializer();

  private constructor(config: AgentConfig, logger: Logger, lock: DataDirLock) {
    this.config = config;
    this.#log = logger;
    this.#lock = lock;
    this.#dataDir = new DataDir(config.dataDir);
    this.advertiseAddr = resolveAdvertiseAddr(config.advertiseAddr, listenIpOf(config));
  }

  static async start(config: AgentConfig, logger: Logger): Promise<Agent> {
    const lock = lockDataDir(config.dataDir);
    try {
      const agent = new Agent(config, logger, lock);
      agent.#keys = await agent.#dataDir.loadOrCreateKeys();
      await agent.#resumeCluster();
      return agent;
    } catch (error) {
      lock.release();
      throw error;
    }
  }

  get cluster(): ClusterNode | undefined {
    return this.#cluster;
  }

  /** The allocator service of the cluster this node is in (tests, benchmarks). */
  get allocations(): AllocationService | undefined {
    return this.#allocations;
  }

  /** What /metrics and /readyz report now (agent/metrics). */
  reading(): MetricsReading {
    return readingOf({ cluster: this.#cluster, traffic: this.#traffic, overlay: this.#overlay, services: this.#services, dns: this.#dns, allocations: this.#allocations });
  }

  get peerId(): string {
    return peerIdFromPrivateKey(this.#keys.libp2pKey).toString();
  }

  async #resumeCluster(): Promise<void> {
    const material = this.#dataDir.loadCluster();
    if (!material) {
      this.#log.info('not in a cluster yet: run `weft init` or `weft join`');
      return;
    }
    const state = this.#dataDir.loadState();
    if (!state) throw new Error(`cluster state missing from ${this.config.dataDir}/cluster; run \`weft leave\` and join again`);
    await this.#startCluster(material, state);
  }

  /** The overlay of the cluster this node is in; an API error when it is in none. */
  overlay(): Overlay {
    if (!this.#overlay) throw precondition(NOT_IN_CLUSTER);
    return this.#overlay;
  }

  async #startCluster(material: ClusterMaterial, state: Snapshot, initialise = false): Promise<void> {
    const cluster = await ClusterNode.start({
      keys: this.#keys,
      material,
      state,
      dataDir: this.#dataDir,
      logger: this.#log,
      listenIp: listenIpOf(this.config),
      gossipPort: this.config.gossipPort,
      tableReapMs: this.config.tableReapSeconds * 1000,
      onRevoked: () => void this.#exclusive.run(() => this.#forgetCluster()),
    });
    this.#traffic = countGossipTraffic(cluster.libp2p.services.pubsub);
    try {
      this.#admission = await startAdmissionServer(cluster, this.#keys, this.config.listenAddr, this.#log);
    } catch (error) {
      await cluster.stop();
      throw error;
    }
    this.#cluster = cluster;
    cluster.ensureSelf({ name: this.config.name, address: this.advertiseAddr, gossipPort: this.config.gossipPort, admissionPort: admissionPortOf(this.config) });
    cluster.persist();
    await this.#startOverlay(cluster, initialise);
    this.#log.info({ nodeId: material.nodeId, cluster: cluster.clusterId.slice(0, 16), members: cluster.roster.all().length }, 'cluster member running');
  }

  async #startOverlay(cluster: ClusterNode, initialise: boolean): Promise<void> {
    const pool = cluster.settings.defaultAddrPool || '100.64.0.0/10';
    const allocations = await AllocationService.start({
      cluster,
      store: new FileAllocationStore(join(this.config.dataDir, 'cluster', 'alloc')),
      logger: this.#log,
    });
    // The cluster's creator owns the VNI and subnet spaces at first; others get shares on demand.
    allocations.define(VNI_SPACE, initialise);
    allocations.define(subnetSpace(pool), initialise);
    const egress: EgressSpec = { subnet: this.config.egressSubnet, blocked: [pool] };
    const nftWorkers = new NftWorkerPool();
    this.#nftWorkers = nftWorkers;
    const linkWorker = new LinkWorker();
    this.#linkWorker = linkWorker;
    const dataplane = createDataplane({
      nsPrefix: this.config.nsPrefix, runner: linkWorkerRunner(processRunner(), linkWorker), nftScript: (script) => nftWorkers.applyHere(script),
    });
    const overlay = new Overlay({
      dataplane,
      tables: cluster.tables,
      allocations,
      selfId: cluster.nodeId,
      vtep: this.advertiseAddr,
      vtepOf: (nodeId) => cluster.roster.get(nodeId)?.address,
      pool,
      dataDir: this.config.dataDir,
      logger: this.#log,
      syncNetwork: (networkId) => cluster.syncNetwork(networkId),
      egress,
      dnsPort: () => this.#dns?.port,
      onLocalChange: (netns) => this.#services?.refresh(netns) ?? Promise.resolve(undefined),
      onGatewayChange: async () => this.#guard?.pinsChanged(),
      ingressPorts: () => this.#ingress?.ports() ?? [],
      moreFindings: async () => [...((await this.#services?.doctor()) ?? []), ...((await this.#ingress?.doctor()) ?? []), ...((await this.#guard?.doctor()) ?? []), ...allocations.findings()],
    });
    // A reclaim keeps what cluster objects still use; endpoints of removed or departed hosts are gone with them.
    allocations.setInUse((space) => overlay.allocationValuesInUse(space, (id) => cluster.roster.get(id)?.status === 'active'));
    this.#allocations = allocations;
    this.#overlay = overlay;
    // Before any sandbox is touched: the guard holds from the first moment, also after a restart.
    const guard = new HostGuard({ context: dataplane.context, roster: cluster.roster, selfId: cluster.nodeId, gateway: egressGateway(egress), pins: () => overlay.gatewayPins(), logger: this.#log });
    this.#guard = guard;
    await guard.start();
    await overlay.start(); // also brings up the gateway bridge the resolver binds to
    const ingress = new IngressMesh({ overlay, dataplane, tables: cluster.tables, logger: this.#log, onChange: () => this.#services?.trigger() });
    this.#ingress = ingress;
    const services = new ServicePlane({
      overlay, tables: cluster.tables, logger: this.#log, onViewsChanged: () => this.#dns?.invalidate(), ingress, loadBalancer: new LoadBalancer({ pool: nftWorkers }),
    });
    this.#services = services;
    this.#dns = await startResolver({ plane: services, address: egressGateway(egress), upstreams: this.config.dnsUpstreams, ttl: this.config.dnsTtl, logger: this.#log });
    await overlay.syncGateway(); // now with the port 53 redirect
    services.start();
    ingress.start();
  }

  #selfRecord(nodeId: string, certificate: Uint8Array, changedBy: string): MemberRecord {
    return {
      nodeId,
      name: this.config.name,
      peerId: this.peerId,
      address: this.advertiseAddr,
      gossipPort: this.config.gossipPort,
      admissionPort: admissionPortOf(this.config),
      certificate,
      version: 1,
      status: 'active',
      changedBy,
    };
  }

  init(defaultAddrPool: string): Promise<string> {
    return this.#exclusive.run(async () => {
      this.#requireNotInCluster();
      const ca = await createClusterCa(new Date());
      const nodeId = randomBytes(16).toString('hex');
      const certificate = await issueNodeCertificate(ca, { nodeId, peerId: this.peerId, publicKeySpki: this.#keys.tls.publicKeySpki, ip: this.advertiseAddr }, new Date());
      const material: ClusterMaterial = { nodeId, caCertificate: ca.certificate, caPrivateKey: ca.privateKey, nodeCertificate: certificate, psk: newPsk() };
      const state: Snapshot = {
        members: [this.#selfRecord(nodeId, certificate, nodeId)],
        token: { secret: newTokenSecret(), version: 1, changedBy: nodeId },
        settings: { defaultAddrPool },
      };
      this.#dataDir.saveCluster(material);
      this.#dataDir.saveState(state);
      await this.#startCluster(material, state, true);
      this.#log.info('created a new cluster');
      return this.#cluster!.joinToken();
    });
  }

  join(tokenText: string, host: string, port: number): Promise<{ nodeId: string; members: number }> {
    return this.#exclusive.run(async () => {
      this.#requireNotInCluster();
      let token;
      try {
        token = parseToken(tokenText);
      } catch (error) {
        if (error instanceof TokenError) throw badRequest(error.message);
        throw error;
      }
      const result = await joinCluster({ host, port }, token, this.#keys, {
        name: this.config.name,
        advertiseAddr: this.advertiseAddr,
        gossipPort: this.config.gossipPort,
        admissionPort: admissionPortOf(this.config),
      }).catch((error: Error) => {
        throw new AgentError(grpcStatus.ABORTED, error.message);
      });
      this.#dataDir.saveCluster(result.material);
      this.#dataDir.saveState(result.snapshot);
      await this.#startCluster(result.material, result.snapshot);
      this.#log.info({ via: `${host}:${port}` }, 'joined the cluster');
      return { nodeId: result.material.nodeId, members: result.snapshot.members.filter((m) => m.status === 'active').length };
    });
  }

  leave(): Promise<void> {
    return this.#exclusive.run(async () => {
      const cluster = this.#requireCluster();
      const sandboxes = this.#overlay?.localSandboxes().length ?? 0;
      if (sandboxes > 0) throw precondition(`this host still has ${sandboxes} sandbox(es) on overlay networks; stop or detach them first (see \`weft endpoints\`)`);
      const handover = await this.#allocations?.leave();
      if (handover) this.#log.info({ handedOver: handover.handedOver, kept: handover.kept }, 'allocation ranges handed over before leaving');
      await cluster.announceLeave();
      await this.#forgetCluster();
      this.#log.info('left the cluster');
    });
  }

  /** Stops cluster participation and deletes the identity: the next join is a new node. */
  async #forgetCluster(): Promise<void> {
    await this.#stopCluster();
    this.#dataDir.wipeCluster();
    this.#keys = await this.#dataDir.loadOrCreateKeys();
  }

  token(rotate: boolean): string {
    const cluster = this.#requireCluster();
    return rotate ? cluster.rotateToken() : cluster.joinToken();
  }

  members(): MemberView[] {
    return this.#requireCluster().members();
  }

  /** Revokes a node and rotates the join token it knew; returns the new token for the operator. */
  async removeNode(reference: string): Promise<{ nodeId: string; token: string }> {
    const cluster = this.#requireCluster();
    try {
      const { record, token } = await cluster.revoke(reference);
      // Its ranges come back to the pool now if this node is the reclaimer (else the reclaimer's timer does it).
      void this.#allocations?.reclaim();
      return { nodeId: record.nodeId, token };
    } catch (error) {
      throw precondition((error as Error).message);
    }
  }

  #requireCluster(): ClusterNode {
    if (!this.#cluster) throw precondition(NOT_IN_CLUSTER);
    return this.#cluster;
  }

  #requireNotInCluster(): void {
    if (this.#cluster) {
      throw precondition(`this node is already a member of cluster ${this.#cluster.clusterId.slice(0, 16)}; run \`weft leave\` first`);
    }
  }

  async #stopCluster(): Promise<void> {
    this.#ingress?.stop();
    this.#ingress = undefined;
    await this.#stopping('services', () => this.#services?.stop());
    this.#services = undefined;
    await this.#stopping('dns', () => this.#dns?.close());
    this.#dns = undefined;
    await this.#stopping('host guard', () => this.#guard?.stop());
    this.#guard = undefined;
    await this.#stopping('nft workers', () => this.#nftWorkers?.close());
    this.#nftWorkers = undefined;
    this.#overlay?.stop();
    this.#overlay = undefined;
    await this.#stopping('link worker', () => this.#linkWorker?.close());
    this.#linkWorker = undefined;
    this.#allocations?.stop();
    this.#allocations = undefined;
    const admission = this.#admission;
    this.#admission = undefined;
    await this.#stopping('admission', () => admission?.close());
    const cluster = this.#cluster;
    this.#cluster = undefined;
    this.#traffic = undefined;
    await this.#stopping('cluster', () => cluster?.stop());
    this.stopStep = 'done';
  }

  /** The part of stop() under way: what the log names when a stop overruns its deadline (run-agent.ts). */
  stopStep = '';

  async #stopping(step: string, stop: () => unknown): Promise<void> {
    this.stopStep = step;
    await stop();
  }

  async stop(): Promise<void> {
    await this.#stopCluster();
    this.#lock.release();
  }
}
