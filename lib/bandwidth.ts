// Bandwidth limits for a container's attachment, in the CNI bandwidth
// plugin's terms (containernetworking/plugins meta/bandwidth and the CNI
// conventions' `bandwidth` capability): rates in bits per second, bursts in
// bits, 0 or absent for "no limit"; a rate needs its burst and a burst its
// rate. Shared by the CNI plugin (which must not load the agent's code) and the
// agent's API, which checks again: the socket is an outside boundary too.
import { z } from 'zod';

/** One direction's token bucket. */
export interface TokenBucket {
  rateBits: number;
  burstBits: number;
}

/** `ingress` is traffic into the container, `egress` traffic out of it (the plugin's sense). */
export interface BandwidthLimits {
  ingress?: TokenBucket | undefined;
  egress?: TokenBucket | undefined;
}

/** tc works in bytes: a rate under one byte per second would be no rate at all. */
export const MIN_RATE_BITS = 8;
/** 100 Gbit/s: above anything a veth carries here, and far inside a safe integer. */
export const MAX_RATE_BITS = 100_000_000_000;
/** The stock plugin's bound: the burst in bytes must fit 32 bits (the kernel's tbf limit is a u32). */
export const MAX_BURST_BITS = 4_294_967_294 * 8;

const bits = (field: string, max: number) => z.number({ error: `${field} must be a number` })
  .int(`${field} must be a whole number`)
  .nonnegative(`${field} must not be negative`)
  .max(max, `${field} must be at most ${max}`);

/** The four fields as the stock plugin and the `bandwidth` capability carry them. */
export const bandwidthEntrySchema = z.object({
  ingressRate: bits('ingressRate (bits per second)', MAX_RATE_BITS).optional(),
  ingressBurst: bits('ingressBurst (bits)', MAX_BURST_BITS).optional(),
  egressRate: bits('egressRate (bits per second)', MAX_RATE_BITS).optional(),
  egressBurst: bits('egressBurst (bits)', MAX_BURST_BITS).optional(),
}).superRefine((entry, ctx) => {
  for (const dir of ['ingress', 'egress'] as const) {
    const rate = entry[`${dir}Rate`] ?? 0;
    const burst = entry[`${dir}Burst`] ?? 0;
    if (rate !== 0 && burst === 0) ctx.addIssue({ code: 'custom', path: [`${dir}Burst`], message: `${dir}Rate is set, so ${dir}Burst must be set too (bits, at least the largest packet)` });
    if (burst !== 0 && rate === 0) ctx.addIssue({ code: 'custom', path: [`${dir}Rate`], message: `${dir}Burst is set, so ${dir}Rate must be set too (bits per second)` });
    if (rate !== 0 && rate < MIN_RATE_BITS) ctx.addIssue({ code: 'custom', path: [`${dir}Rate`], message: `${dir}Rate must be at least ${MIN_RATE_BITS} bits per second (one byte)` });
  }
});

export type BandwidthEntry = z.infer<typeof bandwidthEntrySchema>;

/** The limits an entry sets; undefined when it sets none (all zero or absent). */
export function limitsOf(entry: BandwidthEntry): BandwidthLimits | undefined {
  const bucket = (rate: number | undefined, burst: number | undefined): TokenBucket | undefined =>
    rate === undefined || rate === 0 || burst === undefined || burst === 0 ? undefined : { rateBits: rate, burstBits: burst };
  const ingress = bucket(entry.ingressRate, entry.ingressBurst);
  const egress = bucket(entry.egressRate, entry.egressBurst);
  if (!ingress && !egress) return undefined;
  return { ...(ingress ? { ingress } : {}), ...(egress ? { egress } : {}) };
}

/** The entry for limits (what goes on the agent's socket). */
export function entryOf(limits: BandwidthLimits): Required<BandwidthEntry> {
  return {
    ingressRate: limits.ingress?.rateBits ?? 0,
    ingressBurst: limits.ingress?.burstBits ?? 0,
    egressRate: limits.egress?.rateBits ?? 0,
    egressBurst: limits.egress?.burstBits ?? 0,
  };
}

/** Ethernet header bytes the kernel counts in a packet's length when tbf compares it with the bucket. */
const ETHERNET_HEADER = 14;

/**
 * Why a bucket cannot pass a full-size packet on a link of this MTU, if it cannot:
 * tbf drops every packet larger than its burst, so such a limit would black-hole
 * the container instead of slowing it.
 */
export function burstTooSmall(limits: BandwidthLimits, mtu: number): string | undefined {
  const need = (mtu + ETHERNET_HEADER) * 8;
  for (const [dir, bucket] of [['ingress', limits.ingress], ['egress', limits.egress]] as const) {
    if (bucket && bucket.burstBits < need) {
      return `${dir}Burst ${bucket.burstBits} bits is smaller than one full-size packet on this network (MTU ${mtu} + ${ETHERNET_HEADER} header bytes = ${need} bits): every larger packet would be dropped; give at least ${need}`;
    }
  }
  return undefined;
}
