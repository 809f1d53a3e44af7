// This host's sandboxes as the cluster sees them: each local attachment is an
// entry in its network's endpoint table, naming the sandbox's published ports
// and the services whose health check it fails. Written when an attachment is
// made, when its health or ports change and after a restart; withdrawn with
// the attachment. An own entry that a peer hands back or the saved tables hold
// is settled against the local sandboxes (own-endpoints.ts).
import type { Logger } from 'pino';
import { macFromIp } from '../../dataplane/index.ts';
import { endpointsTable } from '../../controlplane/node/topics.ts';
import type { Entry } from '../../controlplane/tables/index.ts';
import type { TableService } from '../cluster/table-service.ts';
import { encodeEndpoint, type EndpointObject, type NetworkObject } from '../wire/objects-codec.ts';
import type { EndpointHealth } from './endpoint-health.ts';
import type { HostNetworks } from './host-networks.ts';
import type { LocalAttachment, LocalSandbox, LocalState } from './local-state.ts';
import type { Networks } from './networks.ts';
import { settleOwnEndpoints } from './own-endpoints.ts';
import { Publisher } from './publisher.ts';

export interface LocalEndpointsOptions {
  tables: TableService;
  selfId: string;
  vtep: string;
  local: LocalState;
  networks: Networks;
  hostNetworks: HostNetworks;
  health: EndpointHealth;
  logger: Logger;
}

export class LocalEndpoints {
  readonly #o: LocalEndpointsOptions;

  constructor(options: LocalEndpointsOptions) {
    this.#o = options;
  }

  publish(network: NetworkObject, sandbox: LocalSandbox, attachment: LocalAttachment): void {
    const endpoint = this.endpointOf(sandbox, attachment);
    this.#o.hostNetworks.announce(network.id);
    this.#o.tables.set(endpointsTable(network.id), endpoint.id, encodeEndpoint(endpoint));
    // Its time is where propagation starts (bench/lab-convergence.ts reads it).
    this.#o.logger.info({ network: network.id, endpoint: endpoint.id, ip: endpoint.ip }, 'endpoint published');
  }

  /** Publishes every attachment of a sandbox again (its ports changed). */
  republish(record: LocalSandbox): void {
    for (const attachment of record.attachments) {
      const network = this.#o.networks.byId(attachment.networkId);
      if (network) this.publish(network, record, attachment);
    }
  }

  /** Publishes the local endpoint `endpointId` again (its health changed); nothing when it is not local. */
  republishEndpoint(endpointId: string): void {
    for (const sandbox of this.#o.local.sandboxes.values()) {
      const attachment = sandbox.attachments.find((a) => a.endpointId === endpointId);
      const network = attachment && this.#o.networks.byId(attachment.networkId);
      if (attachment && network) this.publish(network, sandbox, attachment);
    }
  }

  /** Deletes an attachment's entry and its health bookkeeping. */
  withdraw(attachment: LocalAttachment): void {
    this.#o.tables.delete(endpointsTable(attachment.networkId), attachment.endpointId);
    this.#o.health.forget(attachment.endpointId);
  }

  /** Own endpoint entries that a peer handed back or the saved tables held: the local sandboxes decide (own-endpoints.ts). */
  settle(entries: Entry[], republishLocal = true): void {
    const { stale, republish } = settleOwnEndpoints(entries, (networkId, endpointId) => this.#find(networkId, endpointId) !== undefined);
    for (const { table, key } of stale) this.#o.tables.delete(table, key);
    for (const { networkId, endpointId } of republishLocal ? republish : []) {
      const found = this.#find(networkId, endpointId);
      const network = this.#o.networks.byId(networkId);
      if (found && network) this.publish(network, found.sandbox, found.attachment);
    }
    if (stale.length > 0) this.#o.logger.info({ endpoints: stale.map((s) => s.key) }, 'deleted own endpoint entries that no local sandbox backs');
  }

  /** A local attachment as the cluster sees it in the endpoint tables. */
  endpointOf(sandbox: LocalSandbox, attachment: LocalAttachment): EndpointObject {
    return {
      id: attachment.endpointId,
      networkId: attachment.networkId,
      name: attachment.name,
      ip: attachment.ip,
      mac: attachment.mac || macFromIp(attachment.ip),
      nodeId: this.#o.selfId,
      vtep: this.#o.vtep,
      sandbox: sandbox.netns,
      aliases: attachment.aliases,
      services: attachment.services,
      unhealthyServices: this.#o.health.failing(attachment.endpointId),
      published: Publisher.describe(sandbox),
    };
  }

  #find(networkId: string, endpointId: string): { sandbox: LocalSandbox; attachment: LocalAttachment } | undefined {
    for (const sandbox of this.#o.local.sandboxes.values()) {
      const attachment = sandbox.attachments.find((a) => a.networkId === networkId && a.endpointId === endpointId);
      if (attachment) return { sandbox, attachment };
    }
    return undefined;
  }
}
