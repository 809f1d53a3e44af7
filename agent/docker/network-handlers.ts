// Docker's IPAM pools and networks mapped onto weft networks. Docker sends no
// network name with RequestPool or CreateNetwork (checked against Docker
// 20.10: the bodies carry only the pool, the -o options and the network ID),
// so the subnet is what names the weft network: `--subnet` must be the subnet
// of an existing weft network, and the pool ID is that network's ID. The
// gateway address is the weft network's (reserved by weft, never allocated).
// Endpoint addresses come from weft's allocator and are recorded (DockerState)
// before Docker hears of them, so each is freed exactly once.
import { z } from 'zod';
import type { Overlay } from '../overlay/overlay.ts';
import type { NetworkObject } from '../wire/objects-codec.ts';
import { PluginError, type PluginHandler } from './plugin-server.ts';
import { ADDRESS_SPACE } from './plugin-handlers.ts';
import { DockerState } from './docker-state.ts';
import { releaseHeldAddress } from './held-addresses.ts';

const GATEWAY_REQUEST = 'com.docker.network.gateway';
const GENERIC = 'com.docker.network.generic';
const INTERNAL = 'com.docker.network.internal';

const options = z.record(z.string(), z.string()).nullish().transform((o) => o ?? {});
const requestPool = z.object({ AddressSpace: z.string().max(64), Pool: z.string().max(64), SubPool: z.string().max(64), Options: options, V6: z.boolean() });
const requestAddress = z.object({ PoolID: z.string().max(128), Address: z.string().max(64), Options: options });
const releaseAddress = z.object({ PoolID: z.string().max(128), Address: z.string().max(64) });
const releasePool = z.object({ PoolID: z.string().max(128) });
const ipamData = z.object({ AddressSpace: z.string().max(64), Pool: z.string().max(64), Gateway: z.string().max(64).optional() });
const createNetwork = z.object({
  NetworkID: z.string().regex(/^[0-9a-f]{64}$/, 'must be a 64-hex-digit Docker network ID'),
  Options: z.record(z.string(), z.unknown()).nullish().transform((o) => o ?? {}),
  IPv4Data: z.array(ipamData).max(8).nullish().transform((d) => d ?? []),
  IPv6Data: z.array(ipamData).max(8).nullish().transform((d) => d ?? []),
});
const deleteNetwork = z.object({ NetworkID: z.string().max(128) });

/** Parses a request body or says, naming the method and field, what is wrong with it. */
export function parse<T extends z.ZodType>(method: string, schema: T, body: unknown): z.infer<T> {
  const r = schema.safeParse(body);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  throw new PluginError(`${method}: invalid request (${issue?.path.join('.') || 'body'}: ${issue?.message ?? 'malformed'})`);
}

function byPoolId(overlay: Overlay, poolId: string): NetworkObject {
  const network = overlay.networks.byId(poolId);
  if (!network) throw new PluginError(`pool ${poolId} is not a weft network (removed with \`weft network rm\`?)`);
  return network;
}

function prefixOf(network: NetworkObject): string {
  return network.subnet.split('/')[1] ?? '';
}

function bySubnet(overlay: Overlay, subnet: string): NetworkObject | undefined {
  return overlay.networks.list().find((n) => n.subnet === subnet);
}

/** The -o options weft understands; anything else is refused, not ignored. */
function checkOptions(network: NetworkObject, generic: unknown, internal: unknown): void {
  const given = z.record(z.string(), z.string()).safeParse(generic ?? {});
  if (!given.success) throw new PluginError('CreateNetwork: -o options must be strings');
  for (const [key, value] of Object.entries(given.data)) {
    if (key === 'vni') {
      if (value !== String(network.vni)) throw new PluginError(`-o vni=${value} conflicts with weft network "${network.name}", which has VNI ${network.vni}`);
    } else {
      throw new PluginError(`unknown -o option "${key}" (weft understands vni)`);
    }
  }
  const wantInternal = internal === true || internal === 'true';
  if (wantInternal !== network.internal) {
    throw new PluginError(`weft network "${network.name}" is ${network.internal ? '' : 'not '}internal: ${network.internal ? 'add' : 'drop'} --internal`);
  }
}

export function networkHandlers(overlay: () => Overlay, state: DockerState): Record<string, PluginHandler> {
  return {
    'IpamDriver.RequestPool': (body) => {
      const r = parse('RequestPool', requestPool, body);
      if (r.V6) throw new PluginError('weft networks are IPv4 only: drop --ipv6');
      if (r.AddressSpace !== ADDRESS_SPACE) throw new PluginError(`address space "${r.AddressSpace}" is not weft's ("${ADDRESS_SPACE}")`);
      if (r.SubPool !== '') throw new PluginError('--ip-range is not supported: weft hands out addresses from the whole subnet');
      if (r.Pool === '') {
        throw new PluginError('give the weft network\'s subnet with --subnet (see `weft network inspect NAME`): Docker does not tell the plugin the network\'s name');
      }
      const network = bySubnet(overlay(), r.Pool);
      if (!network) throw new PluginError(`no weft network has subnet ${r.Pool}; create it first (\`weft network create NAME --subnet ${r.Pool}\`)`);
      return { PoolID: network.id, Pool: network.subnet, Data: {} };
    },
    'IpamDriver.RequestAddress': async (body, call) => {
      // Docker's plugin client resends a call whose attempt failed with the body it already consumed.
      if (body === undefined) throw new PluginError('RequestAddress: empty request (Docker retried a call that had timed out; its first attempt\'s address is released); run the command again');
      const r = parse('RequestAddress', requestAddress, body);
      const network = byPoolId(overlay(), r.PoolID);
      if (r.Options['RequestAddressType'] !== GATEWAY_REQUEST) {
        if (r.Address !== '') throw new PluginError(`--ip ${r.Address} is not supported: weft's allocator chooses container addresses (drop --ip)`);
        const ip = await overlay().containerLinks.allocateAddress(network.id);
        state.addresses.add(DockerState.addressKey(network.id, ip));
        state.save();
        // Docker gave up waiting: it will never use (nor release) this address.
        call.onUndelivered(async () => void (await releaseHeldAddress(overlay(), state, network.id, ip)));
        return { Address: `${ip}/${prefixOf(network)}`, Data: {} };
      }
      if (r.Address !== '' && r.Address !== network.gateway) throw new PluginError(`--gateway ${r.Address} conflicts with weft network "${network.name}", whose gateway is ${network.gateway}`);
      return { Address: `${network.gateway}/${prefixOf(network)}`, Data: {} };
    },
    'IpamDriver.ReleaseAddress': async (body) => {
      const r = parse('ReleaseAddress', releaseAddress, body);
      // The gateway stays the network's; an address not recorded was released already (a repeated
      // call, or the agent released it for a container that died while it was down, or as an orphan).
      await releaseHeldAddress(overlay(), state, r.PoolID, r.Address);
      return {};
    },
    'IpamDriver.ReleasePool': (body) => {
      parse('ReleasePool', releasePool, body);
      return {}; // a pool is a view of a weft network; the network outlives Docker's use of it
    },
    'NetworkDriver.CreateNetwork': (body) => {
      const r = parse('CreateNetwork', createNetwork, body);
      if (r.IPv6Data.length > 0) throw new PluginError('weft networks are IPv4 only: drop --ipv6');
      const pool = r.IPv4Data[0];
      if (!pool || r.IPv4Data.length !== 1) throw new PluginError('give exactly one --subnet (a weft network\'s) and --ipam-driver weft');
      const network = pool.AddressSpace === ADDRESS_SPACE ? bySubnet(overlay(), pool.Pool) : undefined;
      if (!network) throw new PluginError('use --ipam-driver weft with the weft network\'s --subnet: the driver needs weft\'s addresses');
      checkOptions(network, r.Options[GENERIC], r.Options[INTERNAL]);
      state.networks.set(r.NetworkID, network.id);
      state.save();
      return {};
    },
    'NetworkDriver.DeleteNetwork': (body) => {
      const r = parse('DeleteNetwork', deleteNetwork, body);
      if (state.networks.delete(r.NetworkID)) state.save();
      return {}; // the weft network stays (remove it with `weft network rm`)
    },
  };
}
