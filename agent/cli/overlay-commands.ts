// Overlay commands: network create/ls/inspect/rm, run, attach, detach,
// endpoints, doctor.
import type { Command } from 'commander';
import { printJson, printTable } from './output.ts';
import { chosenFormat, printInspect, printListing, withFormatOptions, type FormatFlags } from './list-format.ts';
import { examples, withExamples } from './help-examples.ts';
import { UsageError } from './usage.ts';
import { collect, withClient } from './client-helpers.ts';
import type { AgentClient } from '../api/client.ts';
import { checkServiceName } from './service-commands.ts';
import { OBJECT_NAME, OBJECT_NAME_RULE } from '../../lib/names.ts';
import { parsePublishSpecs, PublishSpecError } from '../../lib/publish-spec.ts';
// (a builtin taken with process.getBuiltinModule, not `import`: docs/cli.md, "Startup")
const { spawn } = process.getBuiltinModule('node:child_process');
const { constants } = process.getBuiltinModule('node:os');

interface EndpointInfo {
  id: string; name: string; network: string; ip: string; mac: string; node: string; nodeId: string; sandbox: string;
  aliases: string[]; services: string[]; unhealthyServices: string[]; published: string[];
}
interface NetworkInfo { id: string; name: string; vni: number; subnet: string; gateway: string; internal: boolean; hosts: string[]; endpoints: EndpointInfo[] }
interface SandboxInfo { id: string; netns: string; pid: number; endpoints: EndpointInfo[] }
interface Finding { subject: string; problem: string; hint: string }

function checkName(value: string, what: string): void {
  if (!OBJECT_NAME.test(value)) throw new UsageError(`${what} "${value}" must be ${OBJECT_NAME_RULE}`);
}

function vniOption(value: string | undefined): number {
  if (value === undefined) return 0;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n < 1 || n > 16_777_215) throw new UsageError(`--vni must be an integer from 1 to 16777215, got "${value}"`);
  return n;
}

const EXAMPLES = {
  run: examples(['weft run --network app --name web -- python3 -m http.server 80', 'weft run --network app --name web -p 8080:80 --detach -- python3 -m http.server 80', 'weft run --network app --name web --service web --detach -- python3 -m http.server 80', 'weft run --network app -- ping -c 3 web']),
  attach: examples(['ip netns add c1 && weft attach --netns c1 --network app --name c1', 'weft attach --netns /proc/4242/ns/net --network app --alias db']),
  networkCreate: examples(['weft network create app', 'weft network create backend --subnet 100.64.10.0/24 --internal']),
};

export function registerOverlayCommands(program: Command): void {
  registerNetworkCommands(program);

  program
    .command('run')
    .description('run a command in a new sandbox attached to overlay networks')
    .option('--network <net>', 'network to attach to (repeatable; the first one carries the default route)', collect, [])
    .option('--name <name>', 'endpoint name (resolvable by DNS on its networks)', '')
    .option('--alias <alias>', 'extra DNS name (repeatable)', collect, [])
    .option('--service <service>', 'back this service (repeatable; it must be on one of the networks)', collect, [])
    .option(PUBLISH_FLAG, PUBLISH_HELP, collect, [])
    .option('--detach', 'let the agent run and watch the command; the sandbox goes when it exits')
    .argument('<command...>', 'command and arguments (after --)')
    .addHelpText('after', EXAMPLES.run)
    .action(async (command: string[], opts: { network: string[]; name: string; alias: string[]; service: string[]; publish: string[]; detach?: boolean }, cmd: Command) => {
      checkSandboxOptions(opts.network, opts.name, opts.alias, opts.service, opts.publish);
      const request = { networks: opts.network, name: opts.name, aliases: opts.alias, netns: '', command: opts.detach ? command : [], services: opts.service, publish: opts.publish };
      await withClient(cmd, async (client) => {
        const sandbox = await client.call<SandboxInfo>('SandboxCreate', request);
        if (opts.detach) return printSandbox(sandbox);
        process.exitCode = await runAttached(client, sandbox, command);
      });
    });

  program
    .command('attach')
    .description('attach an existing network namespace (a container) to overlay networks')
    .requiredOption('--netns <name|path>', 'namespace name (under /run/netns) or path (/proc/PID/ns/net)')
    .option('--network <net>', 'network to attach to (repeatable)', collect, [])
    .option('--name <name>', 'endpoint name', '')
    .option('--alias <alias>', 'extra DNS name (repeatable)', collect, [])
    .option('--service <service>', 'back this service (repeatable; it must be on one of the networks)', collect, [])
    .option(PUBLISH_FLAG, PUBLISH_HELP, collect, [])
    .addHelpText('after', EXAMPLES.attach)
    .action(async (opts: { netns: string; network: string[]; name: string; alias: string[]; service: string[]; publish: string[] }, cmd: Command) => {
      checkSandboxOptions(opts.network, opts.name, opts.alias, opts.service, opts.publish);
      const request = { networks: opts.network, name: opts.name, aliases: opts.alias, netns: opts.netns, command: [], services: opts.service, publish: opts.publish };
      const sandbox = await withClient(cmd, (c) => c.call<SandboxInfo>('SandboxCreate', request));
      printSandbox(sandbox);
    });

  program
    .command('detach')
    .description('detach a sandbox from one network (--network) or from all; a `weft run` sandbox left on none is removed and its workload stopped')
    .requiredOption('--netns <name|path>', 'the sandbox namespace')
    .option('--network <net>', 'only this network')
    .action(async (opts: { netns: string; network?: string }, cmd: Command) => {
      await withClient(cmd, (c) => c.call('SandboxDetach', { netns: opts.netns, network: opts.network ?? '' }));
      process.stdout.write(`Detached ${opts.netns}${opts.network ? ` from ${opts.network}` : ''}.\n`);
    });

  const endpoints = withFormatOptions(program.command('endpoints').description('list endpoints (of the networks this host has endpoints on)'), { quiet: 'endpoint IDs' })
    .option('--network <net>', 'only this network');
  withExamples(endpoints, ['weft endpoints', 'weft endpoints --network app --format json']);
  endpoints.action(async (opts: FormatFlags & { network?: string }, cmd: Command) => {
    chosenFormat(opts);
    const reply = await withClient(cmd, (c) => c.call<{ endpoints: EndpointInfo[] }>('Endpoints', { network: opts.network ?? '' }));
    const sorted = reply.endpoints.sort((a, b) => a.network.localeCompare(b.network) || a.ip.localeCompare(b.ip, 'en', { numeric: true }));
    printListing(opts, { items: sorted, id: (e) => e.id, json: endpointJson, headers: ENDPOINT_HEADERS, row: endpointRow });
  });

  withFormatOptions(program.command('doctor').description("compare this host's kernel state with what weft wants; exit 1 on any difference"))
    .action(async (opts: FormatFlags, cmd: Command) => {
      const format = chosenFormat(opts);
      const reply = await withClient(cmd, (c) => c.call<{ findings: Finding[] }>('Doctor'));
      if (format === 'json') printJson(reply.findings);
      else if (reply.findings.length === 0) process.stdout.write('No problems found.\n');
      else for (const f of reply.findings) process.stdout.write(`${f.subject}: ${f.problem}\n  hint: ${f.hint}\n`);
      if (reply.findings.length > 0) process.exitCode = 1;
    });
}

function registerNetworkCommands(program: Command): void {
  const network = program.command('network').description('manage overlay networks');
  network
    .command('create')
    .description('create an overlay network (cluster-wide)')
    .argument('<name>', 'network name, unique in the cluster')
    .option('--subnet <cidr>', 'IPv4 subnet (default: a /24 from the default address pool)')
    .option('--vni <n>', 'VXLAN network identifier (default: allocated)')
    .option('--internal', 'no egress to the outside')
    .addHelpText('after', EXAMPLES.networkCreate)
    .action(async (name: string, opts: { subnet?: string; vni?: string; internal?: boolean }, cmd: Command) => {
      checkName(name, 'network name');
      const vni = vniOption(opts.vni);
      const reply = await withClient(cmd, (c) => c.call<NetworkInfo>('NetworkCreate', { name, subnet: opts.subnet ?? '', vni, internal: opts.internal === true }));
      process.stdout.write(`Created network ${reply.name} (ID ${reply.id}, VNI ${reply.vni}, subnet ${reply.subnet}, gateway ${reply.gateway}).\n`);
    });
  withFormatOptions(network.command('ls').description('list networks'), { quiet: 'network names' })
    .action(async (opts: FormatFlags, cmd: Command) => {
      chosenFormat(opts);
      const reply = await withClient(cmd, (c) => c.call<{ networks: NetworkInfo[] }>('NetworkList'));
      printListing(opts, {
        items: reply.networks,
        id: (n) => n.name,
        json: ({ endpoints: _e, ...n }) => n,
        headers: ['ID', 'NAME', 'VNI', 'SUBNET', 'GATEWAY', 'INTERNAL', 'HOSTS'],
        row: (n) => [n.id, n.name, String(n.vni), n.subnet, n.gateway, n.internal ? 'yes' : 'no', String(n.hosts.length)],
      });
    });
  withFormatOptions(network.command('inspect').description('show a network, with the endpoints this host knows'), { defaultFormat: 'json' })
    .argument('<name>')
    .action(async (name: string, opts: FormatFlags, cmd: Command) => {
      chosenFormat(opts, 'json');
      const reply = await withClient(cmd, (c) => c.call<NetworkInfo>('NetworkInspect', { name }));
      printInspect(opts, { ...reply, endpoints: reply.endpoints.map(endpointJson) }, 'json');
    });
  network
    .command('rm')
    .description('remove a network (refused while any host has endpoints on it)')
    .argument('<name>')
    .action(async (name: string, _opts: object, cmd: Command) => {
      const reply = await withClient(cmd, (c) => c.call<NetworkInfo>('NetworkRemove', { name }));
      process.stdout.write(`Removed network ${reply.name}.\n`);
    });
}

const PUBLISH_FLAG = '-p, --publish <[ip:][hostport:]port[/proto]>';
const PUBLISH_HELP = 'publish a sandbox port on this host (repeatable; ranges 8000-8001:80-81; no host port: a free one)';

function checkSandboxOptions(networks: string[], name: string, aliases: string[], services: string[], publish: string[]): void {
  if (networks.length === 0) throw new UsageError('give at least one --network');
  try {
    parsePublishSpecs(publish);
  } catch (error) {
    if (error instanceof PublishSpecError) throw new UsageError(error.message);
    throw error;
  }
  for (const n of networks) checkName(n, 'network');
  if (name !== '') checkName(name, '--name');
  for (const a of aliases) checkName(a, '--alias');
  for (const s of services) checkServiceName(s, '--service');
}

/** Stable JSON for `endpoints --json`: name, network, IP, MAC, node and the sandbox's namespace at least. */
function endpointJson(e: EndpointInfo): Record<string, unknown> {
  return {
    id: e.id, name: e.name, network: e.network, ip: e.ip, mac: e.mac, node: e.node, nodeId: e.nodeId, netns: e.sandbox, aliases: e.aliases,
    services: e.services, healthy: e.unhealthyServices.length === 0, unhealthyServices: e.unhealthyServices, published: e.published,
  };
}

const ENDPOINT_HEADERS = ['NAME', 'NETWORK', 'IP', 'MAC', 'NODE', 'NETNS', 'PORTS'];
/** Docker shows ranges compactly; a sandbox may publish hundreds of ports, so the table shows a count past a few. */
const portsCell = (published: string[]): string => (published.length === 0 ? '-' : published.length <= 4 ? published.join(', ') : `${published.slice(0, 3).join(', ')} and ${published.length - 3} more`);
const endpointRow = (e: EndpointInfo): string[] => [e.name || '-', e.network, e.ip, e.mac, e.node, e.sandbox, portsCell(e.published)];

function printEndpoints(endpoints: EndpointInfo[]): void {
  printTable(ENDPOINT_HEADERS, endpoints.map(endpointRow));
}

function printSandbox(sandbox: SandboxInfo): void {
  process.stdout.write(`Sandbox ${sandbox.id} (netns ${sandbox.netns}${sandbox.pid ? `, pid ${sandbox.pid}` : ''})\n`);
  printEndpoints(sandbox.endpoints);
}

/** Runs the command in the sandbox in the foreground, then removes the sandbox; returns the exit code. */
async function runAttached(client: AgentClient, sandbox: SandboxInfo, command: string[]): Promise<number> {
  const child = spawn('ip', ['netns', 'exec', sandbox.netns, ...command], { stdio: 'inherit' });
  const forward = (signal: NodeJS.Signals): void => {
    child.kill(signal);
  };
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  const code = await new Promise<number>((resolve) => {
    child.once('error', (error) => {
      process.stderr.write(`weft: cannot run ${command[0]}: ${error.message}\n`);
      resolve(127);
    });
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? 128 + (signal ? constants.signals[signal] : 0)));
  });
  process.off('SIGINT', forward);
  process.off('SIGTERM', forward);
  await client.call('SandboxDetach', { netns: sandbox.netns, network: '' }).catch((error: Error) => {
    process.stderr.write(`weft: the sandbox ${sandbox.netns} could not be removed: ${error.message}\n`);
  });
  return code;
}
