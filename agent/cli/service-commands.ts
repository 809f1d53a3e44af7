// Service commands: service create/ls/inspect/rm. Backends join with
// `weft run|attach --service NAME`.
import type { Command } from 'commander';
import { chosenFormat, printInspect, printListing, withFormatOptions, type FormatFlags } from './list-format.ts';
import { examples } from './help-examples.ts';
import { UsageError } from './usage.ts';
import { checked, collect, withClient } from './client-helpers.ts';
import { SERVICE_NAME, SERVICE_NAME_RULE } from '../../lib/names.ts';
import { formatServicePublication, parseServicePublications, ServicePublishError } from '../../lib/service-publish-spec.ts';

interface PortInfo { port: number; protocol: string }
interface BackendInfo { endpointId: string; name: string; ip: string; nodeId: string; node: string; healthy: boolean }
interface PublishInfo { published: number; target: number; protocol: 'tcp' | 'udp'; mode: 'ingress' | 'host' }
interface ServiceInfo { id: string; name: string; network: string; networkId: string; mode: string; vip: string; ports: PortInfo[]; health: string; backends: BackendInfo[]; publish?: PublishInfo[] }

/** `80`, `80/tcp`, `53/udp`. */
export function parsePort(text: string): PortInfo {
  const match = /^(\d{1,5})(?:\/(tcp|udp))?$/.exec(text);
  const port = Number(match?.[1]);
  if (!match || port < 1 || port > 65_535) throw new UsageError(`--port "${text}" must be PORT[/tcp|/udp] with a port from 1 to 65535 (for example 80/tcp)`);
  return { port, protocol: match[2] ?? 'tcp' };
}

export function checkServiceName(value: string, what = 'service name'): void {
  if (!SERVICE_NAME.test(value)) throw new UsageError(`${what} "${value}" must be ${SERVICE_NAME_RULE}`);
}

export function registerServiceCommands(program: Command): void {
  const service = program.command('service').description('manage services (a VIP or DNS round robin over sandboxes)');
  service
    .command('create')
    .description('create a service on a network (cluster-wide)')
    .argument('<name>', 'service name, unique in the cluster; resolvable by DNS on its network')
    .requiredOption('--network <net>', 'the network the service lives on')
    .option('--port <port/proto>', 'port the VIP serves, e.g. 80/tcp (repeatable)', collect, [])
    .option('--mode <mode>', 'vip (a virtual IP, load balanced) or dnsrr (DNS returns the task IPs)', 'vip')
    .option('--health <check>', 'backend health check: tcp:PORT or http:PORT/PATH')
    .option('--publish <spec>', 'accept on PUBLISHED on every host, balanced over the backends\' TARGET: PUBLISHED:TARGET[/udp] or published=P,target=T[,protocol=udp] (repeatable)', collect, [])
    .addHelpText('after', examples(['weft service create web --network app --port 80/tcp --health http:80/healthz', 'weft service create web --network app --port 80 --publish 8080:80', 'weft service create db --network app --mode dnsrr', 'weft run --network app --service web --detach -- python3 -m http.server 80']))
    .action(async (name: string, opts: { network: string; port: string[]; mode: string; health?: string; publish: string[] }, cmd: Command) => {
      checkServiceName(name);
      if (opts.mode !== 'vip' && opts.mode !== 'dnsrr') throw new UsageError(`--mode must be vip or dnsrr, got "${opts.mode}"`);
      const ports = opts.port.map(parsePort);
      try {
        parseServicePublications(opts.publish);
      } catch (error) {
        if (error instanceof ServicePublishError) throw new UsageError(error.message);
        throw error;
      }
      if (opts.health !== undefined) {
        const { healthSpec } = await import('../api/schemas.ts');
        checked(healthSpec, opts.health, '--health');
      }
      const request = { name, network: opts.network, ports, mode: opts.mode, health: opts.health ?? '', publish: opts.publish };
      const reply = await withClient(cmd, (c) => c.call<ServiceInfo>('ServiceCreate', request));
      const published = (reply.publish ?? []).map(formatServicePublication);
      process.stdout.write(`Created service ${reply.name} on ${reply.network} (ID ${reply.id}, ${reply.mode === 'vip' ? `VIP ${reply.vip}` : 'DNS round robin'}${published.length > 0 ? `, published on every host: ${published.join(', ')}` : ''}).\n`);
    });
  withFormatOptions(service.command('ls').description('list services'), { quiet: 'service names' })
    .action(async (opts: FormatFlags, cmd: Command) => {
      chosenFormat(opts);
      const reply = await withClient(cmd, (c) => c.call<{ services: ServiceInfo[] }>('ServiceList'));
      printListing(opts, {
        items: reply.services,
        id: (s) => s.name,
        json: serviceJson,
        headers: ['ID', 'NAME', 'NETWORK', 'MODE', 'VIP', 'PORTS', 'PUBLISHED', 'HEALTH', 'BACKENDS'],
        row: (s) => [s.id, s.name, s.network, s.mode, s.vip || '-', formatPorts(s.ports) || '-', (s.publish ?? []).map(formatServicePublication).join(',') || '-', s.health || '-', `${s.backends.filter((b) => b.healthy).length}/${s.backends.length}`],
      });
    });
  withFormatOptions(service.command('inspect').description('show a service, with the backends this host knows'), { defaultFormat: 'json' })
    .argument('<name>')
    .action(async (name: string, opts: FormatFlags, cmd: Command) => {
      chosenFormat(opts, 'json');
      printInspect(opts, serviceJson(await withClient(cmd, (c) => c.call<ServiceInfo>('ServiceInspect', { name }))), 'json');
    });
  service
    .command('rm')
    .description('remove a service and release its VIP')
    .argument('<name>')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const reply = await withClient(cmd, (c) => c.call<ServiceInfo>('ServiceRemove', { name }));
      process.stdout.write(`Removed service ${reply.name}.\n`);
    });
}

function formatPorts(ports: PortInfo[]): string {
  return ports.map((p) => `${p.port}/${p.protocol}`).join(',');
}

/** Stable JSON for `service ls --json` and `inspect`. */
function serviceJson(s: ServiceInfo): Record<string, unknown> {
  return {
    id: s.id,
    name: s.name,
    network: s.network,
    networkId: s.networkId,
    mode: s.mode,
    vip: s.vip,
    ports: s.ports.map((p) => `${p.port}/${p.protocol}`),
    health: s.health,
    publish: (s.publish ?? []).map(formatServicePublication),
    backends: s.backends.map((b) => ({ endpointId: b.endpointId, name: b.name, ip: b.ip, node: b.node, nodeId: b.nodeId, healthy: b.healthy })),
  };
}
