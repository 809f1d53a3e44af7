// zod schemas for agent API requests. The CLI validates the same inputs before
// sending, but the socket is an outside boundary too (any local root process
// can call it), so the server checks again.
import { z } from 'zod';
import { isIPv4 } from 'node:net';

import { DEFAULT_ADDR_POOL } from './defaults.ts';
import { CNI_NETWORK_NAME, CNI_NETWORK_NAME_RULE, CONTAINER_ID, CONTAINER_ID_RULE, INTERFACE_NAME, INTERFACE_NAME_RULE } from '../../lib/names.ts';
import { parsePublishSpecs, PublishSpecError } from '../../lib/publish-spec.ts';
import { bandwidthEntrySchema, limitsOf } from '../../lib/bandwidth.ts';
import { MAX_SERVICE_PUBLICATIONS, parseServicePublications, ServicePublishError } from '../../lib/service-publish-spec.ts';

export { DEFAULT_ADDR_POOL };

export const cidrSchema = z.string().refine((value) => {
  const [ip, prefix, ...rest] = value.split('/');
  return rest.length === 0 && ip !== undefined && isIPv4(ip) && /^\d{1,2}$/.test(prefix ?? '') && Number(prefix) <= 32;
}, 'must be an IPv4 CIDR such as 100.64.0.0/10');

export const addrPoolSchema = cidrSchema.refine((value) => Number(value.split('/')[1]) <= 24, 'the default address pool must be /24 or larger: networks get /24 subnets from it');

export const initRequest = z.object({ defaultAddrPool: z.string().transform((v) => v || DEFAULT_ADDR_POOL).pipe(addrPoolSchema) });

export const joinAddress = z.string().min(1, 'the address of a member is required').transform((value, ctx) => {
  const match = /^([^:]+)(?::(\d{1,5}))?$/.exec(value);
  const port = match?.[2] === undefined ? undefined : Number(match[2]);
  if (!match || !isIPv4(match[1] ?? '') || (port !== undefined && (port < 1 || port > 65535))) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not ADDR[:PORT] with an IPv4 address (for example 198.18.0.1:2377)` });
    return z.NEVER;
  }
  return { host: match[1] ?? '', port };
});

export const joinRequest = z.object({ token: z.string().min(1, 'a join token is required (--token)'), address: joinAddress });
export const tokenRequest = z.object({ rotate: z.boolean() });
export const removeNodeRequest = z.object({ node: z.string().min(1, 'name the node to remove (node ID, ID prefix or name)').max(128) });

const name = z.string().max(63);
export const networkCreateRequest = z.object({
  name: z.string().min(1, 'a network name is required'),
  subnet: z.string().transform((v) => (v === '' ? undefined : v)),
  vni: z.number().int().transform((v) => (v === 0 ? undefined : v)),
  internal: z.boolean(),
});
export const networkRef = z.object({ name: z.string().min(1, 'name the network') });
const optionalContainerId = z.string().default('').refine((v) => v === '' || CONTAINER_ID.test(v), `a container ID is ${CONTAINER_ID_RULE}`)
  .transform((v) => (v === '' ? undefined : v));
const optionalIfname = z.string().default('').refine((v) => v === '' || INTERFACE_NAME.test(v), `an interface name is ${INTERFACE_NAME_RULE}`)
  .transform((v) => (v === '' ? undefined : v));
const containerKey = { containerId: z.string().min(1, 'name the container (containerId)').refine((v) => CONTAINER_ID.test(v), `a container ID is ${CONTAINER_ID_RULE}`), ifname: z.string().min(1, 'name the interface (ifname)').refine((v) => INTERFACE_NAME.test(v), `an interface name is ${INTERFACE_NAME_RULE}`) };
export const containerRef = z.object(containerKey);
const optionalCniNetwork = z.string().default('').refine((v) => v === '' || CNI_NETWORK_NAME.test(v), `a CNI network name is ${CNI_NETWORK_NAME_RULE}`);
export const containerGcRequest = z.object({
  network: z.string().min(1, 'name the weft network'),
  cniNetwork: z.string().refine((v) => CNI_NETWORK_NAME.test(v), `a CNI network name is ${CNI_NETWORK_NAME_RULE}`),
  valid: z.array(z.object(containerKey)).max(100_000).default([]),
});
/** The largest network configuration CniExec takes: a GC's valid-attachments list of ~10 000 containers (~100 bytes each). */
export const MAX_CNI_CONFIG_BYTES = 1024 * 1024;
/** The largest CNI_* value CniExec takes (CNI_ARGS is the only long one); plugin.py refuses a longer one itself, as a bad environment. */
export const MAX_CNI_ENV_VALUE_BYTES = 64 * 1024;
const MAX_CNI_ENV_KEYS = 16;
const CNI_ENV_KEY = /^CNI_[A-Z0-9_]{1,32}$/;
const byteLength = (text: string): number => Buffer.byteLength(text, 'utf8');
/** CniExec: what a runtime gave the CNI plugin, forwarded unread (the plugin sends the six CNI_* variables of the spec). */
export const cniExecRequest = z.object({
  env: z.record(z.string(), z.string().refine((v) => byteLength(v) <= MAX_CNI_ENV_VALUE_BYTES, `an env value is at most ${MAX_CNI_ENV_VALUE_BYTES} bytes`))
    .refine((env) => Object.keys(env).length <= MAX_CNI_ENV_KEYS, `env holds at most ${MAX_CNI_ENV_KEYS} variables`)
    .refine((env) => Object.keys(env).every((key) => CNI_ENV_KEY.test(key)), 'env holds CNI_* variables only (CNI_ and 1-32 of A-Z, 0-9, "_")'),
  config: z.string().refine((text) => byteLength(text) <= MAX_CNI_CONFIG_BYTES, `the network configuration (config) is at most ${MAX_CNI_CONFIG_BYTES} bytes`),
});
export const sandboxCreateRequest = z.object({
  networks: z.array(z.string().min(1)).min(1, 'give at least one --network').max(16),
  name,
  aliases: z.array(z.string().min(1).max(63)).max(32),
  netns: z.string().max(4096).transform((v) => (v === '' ? undefined : v)),
  command: z.array(z.string()).max(4096).transform((v) => (v.length === 0 ? undefined : v)),
  services: z.array(z.string().min(1).max(63)).max(32).default([]),
  containerId: optionalContainerId,
  ifname: optionalIfname,
  publish: z.array(z.string().max(64)).max(64).default([]).transform((specs, ctx) => {
    try {
      return parsePublishSpecs(specs);
    } catch (error) {
      if (!(error instanceof PublishSpecError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
      return z.NEVER;
    }
  }),
  /** Unset (null after agent.proto's codec) or all zero: no limits. */
  bandwidth: bandwidthEntrySchema.nullish().transform((entry) => (entry ? limitsOf(entry) : undefined)),
  cniNetwork: optionalCniNetwork.transform((v) => (v === '' ? undefined : v)),
});
export const servicePortRequest = z.object({
  port: z.number().int().min(1, 'a port is 1-65535').max(65_535, 'a port is 1-65535'),
  protocol: z.enum(['tcp', 'udp'], 'the protocol is tcp or udp'),
});
/** `tcp:PORT` or `http:PORT/PATH`, as the CLI takes it. */
export const healthSpec = z.string().transform((text, ctx) => {
  if (text === '') return { kind: '' as const, port: 0 as const, path: '' as const };
  const match = /^(tcp|http):(\d{1,5})(\/[\x21-\x7e]{0,254})?$/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65_535 || (match[1] === 'tcp' && match[3] !== undefined)) {
    ctx.addIssue({ code: 'custom', message: `health check "${text}" must be tcp:PORT or http:PORT/PATH (for example tcp:80 or http:8080/healthz)` });
    return z.NEVER;
  }
  return match[1] === 'tcp' ? { kind: 'tcp' as const, port, path: '' as const } : { kind: 'http' as const, port, path: match[3] ?? '/' };
});
export const serviceCreateRequest = z.object({
  name: z.string().min(1, 'a service name is required'),
  network: z.string().min(1, 'a service needs --network'),
  ports: z.array(servicePortRequest).max(64),
  mode: z.string().transform((v) => v || 'vip').pipe(z.enum(['vip', 'dnsrr'], '--mode is vip or dnsrr')),
  health: healthSpec,
  publish: z.array(z.string().max(128)).max(MAX_SERVICE_PUBLICATIONS).default([]).transform((specs, ctx) => {
    try {
      return parseServicePublications(specs);
    } catch (error) {
      if (!(error instanceof ServicePublishError)) throw error;
      ctx.addIssue({ code: 'custom', message: error.message });
      return z.NEVER;
    }
  }),
});
export const serviceRef = z.object({ name: z.string().min(1, 'name the service') });
export const sandboxDetachRequest = z.object({
  netns: z.string().min(1, 'name the sandbox (--netns)').max(4096),
  network: z.string().transform((v) => (v === '' ? undefined : v)),
});
export const endpointsRequest = z.object({ network: z.string().transform((v) => (v === '' ? undefined : v)) });
