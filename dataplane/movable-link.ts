// A sandbox link whose sandbox end someone else moves into place: Docker's
// remote-driver Join comes before the container's namespace exists (runc makes
// it later and dockerd moves the interface Join named into it). The network end
// is made exactly as attachSandbox makes it (same derived name, enslaved to the
// bridge), the other end waits in the data plane's own namespace under the name
// Docker asked for; once it has moved, attachSandbox finds the pair and finishes
// (address, alias, routes) like for any adopted namespace.
import type { DataplaneContext } from './context.ts';
import type { Network } from './types.ts';
import type { Sandbox } from './sandbox.ts';
import { peerOf } from './sandbox.ts';
import { run, runBatch, runJson } from './exec.ts';
import { BRIDGE, validateIfName, vethNameFor } from './names.ts';
import { findLink, readLinks } from './links.ts';
import { inNetns, netnsByName, netnsExists } from './netns.ts';
import { normalizeMac } from './mac.ts';

/** Makes (or remakes) the pair: network end on the bridge, `localName` in the data plane's namespace. */
export async function prepareMovableLink(ctx: DataplaneContext, sandbox: Sandbox, network: Network, localName: string, macInput: string): Promise<void> {
  validateIfName(localName);
  const mac = normalizeMac(macInput);
  const hostVeth = vethNameFor(sandbox.key, network.netns);
  const netRef = netnsByName(network.netns);
  // A pair left by an earlier Join of the same endpoint (Docker retried): start over.
  if (findLink(await readLinks(ctx.runner, netRef), hostVeth)) {
    const [file, args] = inNetns(netRef, 'ip', ['link', 'del', 'dev', hostVeth]);
    await run(ctx.runner, file, args);
  }
  const mtu = String(network.mtu);
  await run(ctx.runner, 'ip', ['link', 'add', localName, 'mtu', mtu, 'address', mac, 'type', 'veth', 'peer', 'name', hostVeth, 'mtu', mtu, 'netns', network.netns]);
  const [netFile, netArgs] = inNetns(netRef, 'ip', []);
  await runBatch(ctx.runner, netFile, netArgs, [`link set dev ${hostVeth} master ${BRIDGE}`, `link set dev ${hostVeth} up`]);
}

/** The name the sandbox end has inside the sandbox once it was moved there; undefined while it has not been. */
export async function movedLinkName(ctx: DataplaneContext, sandbox: Sandbox, network: Network): Promise<string | undefined> {
  if (!(await netnsExists(ctx.runner, sandbox.ref))) return undefined;
  const host = findLink(await readLinks(ctx.runner, netnsByName(network.netns)), vethNameFor(sandbox.key, network.netns));
  if (!host) return undefined;
  return peerOf(host, await readLinks(ctx.runner, sandbox.ref))?.ifname;
}

/**
 * Which of `localNames` are links in the data plane's own namespace. A
 * runtime that tears a container down moves the interface back out under
 * the name it was joined with (Docker does, after Leave); found there, the
 * container is gone even while its namespace file lingers.
 */
export async function linksBackHome(ctx: DataplaneContext, localNames: readonly string[]): Promise<string[]> {
  if (localNames.length === 0) return [];
  const links = await runJson<Array<{ ifname?: string }>>(ctx.runner, 'ip', ['-j', 'link', 'show']);
  const present = new Set(links.map((l) => l.ifname));
  return localNames.filter((name) => present.has(name));
}
