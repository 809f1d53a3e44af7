// What this host has made: its sandboxes and their attachments. Cluster state
// (tables) says what exists everywhere; this file is how a restarted agent
// knows which sandboxes are its own, without touching them (a restart must
// not interrupt traffic). Validated on load like any other input.
import { z } from 'zod';
import { join } from 'node:path';
import { readOptional, writeSecretFile } from '../daemon/files.ts';

const attachmentSchema = z.object({
  networkId: z.string(),
  vni: z.number().int(),
  endpointId: z.string(),
  ip: z.string(),
  mac: z.string(),
  ifname: z.string(),
  name: z.string(),
  aliases: z.array(z.string()),
  /** Services this endpoint backs (weft run/attach --service). */
  services: z.array(z.string()).default([]),
  /** The container runtime's ID (CNI_CONTAINERID) that, with ifname, keys this attachment; '' for weft's own. */
  containerId: z.string().default(''),
  /** The CNI network (configuration name) a CNI attachment was made through; '' otherwise (and for ones made before it was kept). */
  cniNetwork: z.string().default(''),
  /** The address was handed out to a runtime's IPAM (Docker), which frees it: detaching does not. */
  addressHeld: z.boolean().default(false),
  /** Bandwidth limits a container runtime asked for (CNI `bandwidth`), in bits: CHECK compares the kernel with them. */
  bandwidth: z.object({
    ingress: z.object({ rateBits: z.number().int().positive(), burstBits: z.number().int().positive() }).optional(),
    egress: z.object({ rateBits: z.number().int().positive(), burstBits: z.number().int().positive() }).optional(),
  }).optional(),
});

const sandboxSchema = z.object({
  id: z.string(),
  netns: z.string(),
  /** Created by weft (destroyed with its last attachment) or adopted (only detached). */
  owned: z.boolean(),
  /** A detached `weft run` process the agent watches; 0 when none. */
  pid: z.number().int().nonnegative(),
  /** Address on the host's egress bridge; '' while the sandbox has no egress. */
  egressIp: z.string().default(''),
  attachments: z.array(attachmentSchema),
  /** Host ports published to the sandbox's gateway address (weft run -p); hostPort is the one chosen. */
  published: z.array(z.object({
    hostIp: z.string(),
    hostPort: z.number().int().min(1).max(65_535),
    port: z.number().int().min(1).max(65_535),
    protocol: z.enum(['tcp', 'udp']),
  })).default([]),
});

const stateSchema = z.object({ sandboxes: z.array(sandboxSchema) });

export type LocalAttachment = z.infer<typeof attachmentSchema>;
export type LocalSandbox = z.infer<typeof sandboxSchema>;

export class LocalState {
  readonly #path: string;
  readonly sandboxes = new Map<string, LocalSandbox>();

  constructor(dataDir: string) {
    this.#path = join(dataDir, 'cluster', 'sandboxes.json');
    const raw = readOptional(this.#path);
    if (!raw) return;
    const parsed = stateSchema.safeParse(JSON.parse(raw.toString('utf8')));
    if (!parsed.success) throw new Error(`${this.#path} is corrupt (${parsed.error.issues[0]?.message}); move it away to start without local sandboxes`);
    for (const sandbox of parsed.data.sandboxes) this.sandboxes.set(sandbox.id, sandbox);
  }

  byNetns(netns: string): LocalSandbox | undefined {
    return [...this.sandboxes.values()].find((s) => s.netns === netns || s.id === netns);
  }

  /** The sandbox and attachment a container runtime made for (containerId, ifname). */
  byContainer(containerId: string, ifname: string): { sandbox: LocalSandbox; attachment: LocalAttachment } | undefined {
    for (const sandbox of this.sandboxes.values()) {
      const attachment = sandbox.attachments.find((a) => a.containerId === containerId && a.ifname === ifname);
      if (attachment) return { sandbox, attachment };
    }
    return undefined;
  }

  /** Every container attachment made through CNI network `cniNetwork` on weft network `networkId`. */
  cniAttachments(networkId: string, cniNetwork: string): LocalAttachment[] {
    return this.attachmentsOn(networkId).filter((a) => a.containerId !== '' && a.cniNetwork === cniNetwork);
  }

  attachmentsOn(networkId: string): LocalAttachment[] {
    return [...this.sandboxes.values()].flatMap((s) => s.attachments.filter((a) => a.networkId === networkId));
  }

  save(): void {
    writeSecretFile(this.#path, JSON.stringify({ sandboxes: [...this.sandboxes.values()] }, null, 1));
  }
}
