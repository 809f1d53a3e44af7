// Table values: protobuf-encoded cluster objects. A value that fails these
// checks is ignored by consumers (and logged) rather than programmed into the
// kernel: a peer's bad entry must never break this host's data plane.
import { z } from 'zod';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';
import { isIPv4 } from 'node:net';
import { encodePlain, objectTypes } from './protos.ts';
import { checkedDecode } from './checked-decode.ts';
import { MAX_PUBLISHED_PORTS } from '../../lib/publish-spec.ts';
import { MAX_SERVICE_PUBLICATIONS } from '../../lib/service-publish-spec.ts';

/** Table values are capped at 64 KiB by the tables codec already. */
const MAX_VALUE_BYTES = 64 * 1024;

const id = z.string().regex(/^[0-9a-f]{12}$/, 'IDs are 12 lower-case hex digits');
const nodeId = z.string().regex(/^[0-9a-f]{32}$/);
const ipv4 = z.string().refine((v) => isIPv4(v), 'expected an IPv4 address');
const cidr = z.string().regex(/^\d{1,3}(\.\d{1,3}){3}\/\d{1,2}$/, 'expected an IPv4 CIDR');
const name = z.string().regex(OBJECT_NAME, `names are ${OBJECT_NAME_RULE}`);

export const networkSchema = z.object({
  id,
  name,
  vni: z.number().int().min(1).max(16_777_215),
  subnet: cidr,
  gateway: ipv4,
  internal: z.boolean(),
  createdBy: nodeId,
  poolSubnet: z.boolean(),
});

export const endpointSchema = z.object({
  id,
  networkId: id,
  name: z.union([z.literal(''), name]),
  ip: ipv4,
  mac: z.string().regex(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/),
  nodeId,
  vtep: ipv4,
  sandbox: z.string().min(1).max(4096),
  aliases: z.array(name).max(32),
  services: z.array(name).max(32),
  unhealthyServices: z.array(name).max(32),
  /** Host ports published to the sandbox on its host (weft run -p), as `weft endpoints` shows them. */
  published: z.array(z.string().regex(/^\d{1,3}(\.\d{1,3}){3}:\d{1,5}->\d{1,5}\/(tcp|udp)$/, 'a publication is IP:HOSTPORT->PORT/tcp|udp')).max(MAX_PUBLISHED_PORTS).optional(),
});

export const servicePortSchema = z.object({
  port: z.number().int().min(1).max(65_535),
  protocol: z.enum(['tcp', 'udp']),
});

export const servicePublishSchema = z.object({
  published: z.number().int().min(1).max(65_535),
  target: z.number().int().min(1).max(65_535),
  protocol: z.enum(['tcp', 'udp']),
  mode: z.enum(['', 'ingress', 'host']).transform((m) => (m === '' ? 'ingress' : m)),
});

export const healthCheckSchema = z.union([
  z.object({ kind: z.literal(''), port: z.literal(0), path: z.literal('') }),
  z.object({ kind: z.literal('tcp'), port: z.number().int().min(1).max(65_535), path: z.literal('') }),
  z.object({ kind: z.literal('http'), port: z.number().int().min(1).max(65_535), path: z.string().regex(/^\/[\x21-\x7e]{0,254}$/, 'an HTTP path starts with "/" and has no spaces') }),
]);

export const serviceSchema = z
  .object({
    id,
    name,
    networkId: id,
    mode: z.enum(['vip', 'dnsrr']),
    vip: z.union([z.literal(''), ipv4]),
    ports: z.array(servicePortSchema).max(64),
    health: healthCheckSchema,
    createdBy: nodeId,
    /** Ports every host accepts on and balances over the backends (the ingress routing mesh); absent before it existed. */
    publish: z.array(servicePublishSchema).max(MAX_SERVICE_PUBLICATIONS).default([]),
  })
  .refine((s) => (s.mode === 'vip') === (s.vip !== ''), 'a vip-mode service has a VIP and a dnsrr one has none')
  .refine((s) => s.mode === 'vip' || s.publish.length === 0, 'only a vip-mode service publishes ports (the mesh balances over its live backends)')
  .refine((s) => new Set(s.publish.map((p) => `${p.published}/${p.protocol}`)).size === s.publish.length, 'a published port appears twice');

export type NetworkObject = z.infer<typeof networkSchema>;
export type EndpointObject = z.infer<typeof endpointSchema>;
export type ServiceObject = z.infer<typeof serviceSchema>;
export type ServicePort = z.infer<typeof servicePortSchema>;
export type HealthCheck = z.infer<typeof healthCheckSchema>;
export type ServicePublish = z.infer<typeof servicePublishSchema>;

export const encodeNetwork = (n: NetworkObject): Uint8Array => encodePlain(objectTypes.Network, { ...n });
export const decodeNetwork = (v: Uint8Array): NetworkObject => checkedDecode(networkSchema, objectTypes.Network, v, 'network', MAX_VALUE_BYTES);
export const encodeEndpoint = (e: EndpointObject): Uint8Array => encodePlain(objectTypes.Endpoint, { ...e });
export const decodeEndpoint = (v: Uint8Array): EndpointObject => checkedDecode(endpointSchema, objectTypes.Endpoint, v, 'endpoint', MAX_VALUE_BYTES);
export const encodeService = (s: ServiceObject): Uint8Array => encodePlain(objectTypes.Service, { ...s });
export const decodeService = (v: Uint8Array): ServiceObject => checkedDecode(serviceSchema, objectTypes.Service, v, 'service', MAX_VALUE_BYTES);
