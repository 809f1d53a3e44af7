// Bandwidth limits on a container's attachment (CNI `bandwidth`): applied on
// the network-side veth once the attachment exists (dataplane/bandwidth.ts),
// recorded with the attachment so CHECK can compare the kernel with them, and
// removed with it. The agent does not re-apply them on its own: the kernel
// keeps them as long as the veth lives (an agent restart does not touch it),
// and they go with the veth; only the ifb outlives it, which detach and the
// start-up sweep remove.
import type { Dataplane, Sandbox } from '../../dataplane/index.ts';
import { shapingProblems } from '../../dataplane/index.ts';
import { burstTooSmall, type BandwidthLimits } from '../../lib/bandwidth.ts';
import { badRequest } from '../api/errors.ts';
import type { LocalAttachment } from './local-state.ts';

export class ContainerShaping {
  readonly #dataplane: Dataplane;

  constructor(dataplane: Dataplane) {
    this.#dataplane = dataplane;
  }

  /**
   * Records and applies `limits` on the attachment. Records first: if applying
   * fails (or the agent dies half-way), detaching the attachment removes what was made.
   */
  async apply(sandbox: Sandbox, attachment: LocalAttachment, limits: BandwidthLimits, mtu: number, save: () => void): Promise<void> {
    const tooSmall = burstTooSmall(limits, mtu);
    if (tooSmall !== undefined) throw badRequest(tooSmall);
    attachment.bandwidth = limits;
    save();
    await this.#dataplane.shape(sandbox, attachment.vni, limits, mtu);
  }

  /** After the attachment's veth is gone: its ifb, if it had limits. */
  async remove(sandbox: Sandbox, attachment: LocalAttachment): Promise<void> {
    if (attachment.bandwidth) await this.#dataplane.unshape(sandbox, attachment.vni);
  }

  /** How the kernel differs from the attachment's limits (CNI CHECK); nothing when it has none. */
  async problems(sandbox: Sandbox, attachment: LocalAttachment): Promise<string[]> {
    if (!attachment.bandwidth) return [];
    try {
      return shapingProblems(attachment.bandwidth, await this.#dataplane.readShaping(sandbox, attachment.vni));
    } catch (error) {
      return [`cannot read the bandwidth limits: ${(error as Error).message}`];
    }
  }

  /** A repeated ADD must ask for the limits the attachment has. */
  static same(a: BandwidthLimits | undefined, b: BandwidthLimits | undefined): boolean {
    const key = (l: BandwidthLimits | undefined) => JSON.stringify([l?.ingress?.rateBits, l?.ingress?.burstBits, l?.egress?.rateBits, l?.egress?.burstBits]);
    return key(a) === key(b);
  }
}
