// The overlay's Publisher over a model of the host instead of the kernel: the
// listening sockets and addresses the test gives, and every table it would
// write recorded in `applied`. Shared by the publishing and ingress tests.
import pino from 'pino';
import { Publisher, type IngressPort } from '../../agent/overlay/publisher.ts';
import type { LocalSandbox } from '../../agent/overlay/local-state.ts';
import type { HostListener, PublishPlane, PublishRule } from '../../dataplane/publish.ts';

export interface HostModel {
  /** The local sandboxes the publisher reads (the array is read on each call, so a test may change it). */
  sandboxes?: LocalSandbox[];
  /** Sockets host processes listen on. */
  listeners?: HostListener[];
  /** The host's addresses (the underlay's and loopback by default). */
  addresses?: string[];
  /** Ports the ingress routing mesh takes on this host. */
  ingress?: IngressPort[];
  /** What the free-port choice draws, in [0, 1): fixed, so the port chosen is known. */
  random?: number;
}

export function testPublisher(host: HostModel = {}): { p: Publisher; applied: PublishRule[][] } {
  const applied: PublishRule[][] = [];
  const plane: PublishPlane = {
    apply: async (rules) => {
      applied.push([...rules]);
    },
    inspect: async () => [],
    listeners: async () => host.listeners ?? [],
    addresses: async () => host.addresses ?? ['127.0.0.1', '198.18.0.1'],
  };
  const p = new Publisher({
    plane,
    subnet: '198.19.255.0/24',
    sandboxes: () => host.sandboxes ?? [],
    reserved: [{ protocol: 'udp', port: 4789 }],
    logger: pino({ level: 'silent' }),
    random: () => host.random ?? 0,
    ingress: () => host.ingress ?? [],
  });
  return { p, applied };
}

/** A local sandbox plugged into the gateway bridge at `egressIp` ('' when it is not). */
export function localSandbox(egressIp: string, published: LocalSandbox['published']): LocalSandbox {
  return { id: egressIp, netns: `s-${egressIp}`, owned: true, pid: 0, egressIp, attachments: [], published };
}
