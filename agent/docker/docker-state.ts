// What the Docker plugin must remember across an agent restart (kill -9
// included): which weft network each Docker network maps to, which addresses
// Docker's IPAM holds (so ReleaseAddress frees each exactly once, and a
// second or unknown release is a no-op), and each endpoint's address, name,
// services and namespace (Leave after a restart still finds the link).
// Written before the answer goes back to Docker; validated on load.
import { z } from 'zod';
import { join } from 'node:path';
import { readOptional, writeSecretFile } from '../daemon/files.ts';

const endpointSchema = z.object({
  dockerNetworkId: z.string(),
  networkId: z.string(),
  ip: z.string(),
  mac: z.string(),
  name: z.string(),
  services: z.array(z.string()),
  /** Join's SandboxKey: the container's namespace path ('' before Join, after Leave). */
  sandboxKey: z.string(),
  /** The interface name inside the container once weft adopted it ('' until then). */
  ifname: z.string(),
});

const stateSchema = z.object({
  /** Docker network ID -> weft network ID. */
  networks: z.record(z.string(), z.string()),
  /** Addresses Docker's IPAM holds, as `${weft network ID} ${ip}`. */
  addresses: z.array(z.string()),
  endpoints: z.record(z.string(), endpointSchema),
});

export type DockerEndpoint = z.infer<typeof endpointSchema>;

export class DockerState {
  readonly #path: string;
  readonly networks = new Map<string, string>();
  readonly addresses = new Set<string>();
  readonly endpoints = new Map<string, DockerEndpoint>();

  constructor(dataDir: string) {
    this.#path = join(dataDir, 'cluster', 'docker-plugin.json');
    const raw = readOptional(this.#path);
    if (!raw) return;
    let parsed;
    try {
      parsed = stateSchema.safeParse(JSON.parse(raw.toString('utf8')));
    } catch (error) {
      throw new Error(`${this.#path} is not JSON (${(error as Error).message}); move it away to start with no Docker endpoints`);
    }
    if (!parsed.success) throw new Error(`${this.#path} is corrupt (${parsed.error.issues[0]?.message}); move it away to start with no Docker endpoints`);
    for (const [docker, weft] of Object.entries(parsed.data.networks)) this.networks.set(docker, weft);
    for (const address of parsed.data.addresses) this.addresses.add(address);
    for (const [id, endpoint] of Object.entries(parsed.data.endpoints)) this.endpoints.set(id, endpoint);
  }

  static addressKey(networkId: string, ip: string): string {
    return `${networkId} ${ip}`;
  }

  save(): void {
    writeSecretFile(this.#path, JSON.stringify({
      networks: Object.fromEntries(this.networks),
      addresses: [...this.addresses],
      endpoints: Object.fromEntries(this.endpoints),
    }, null, 1));
  }
}
