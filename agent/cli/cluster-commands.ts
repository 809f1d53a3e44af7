// Cluster commands: init, join, leave, token, members (node ls), node rm, status.
// Inputs are checked here first so that a typo fails fast with exit 2, without
// needing an agent; the agent validates again on its side. zod (the request
// schemas) is imported by the commands that check input with it, so listing
// commands do not pay for loading it.
import type { Command } from 'commander';
import { checked, withClient } from './client-helpers.ts';
import { DEFAULT_ADDR_POOL } from '../api/defaults.ts';
import { chosenFormat, printInspect, printListing, withFormatOptions, type FormatFlags } from './list-format.ts';
import { examples, withExamples } from './help-examples.ts';
import { joinCommand, type JoinTarget } from './join-command.ts';
import { UsageError } from './usage.ts';
import { readTokenText, type TokenSources } from './token-input.ts';

interface MemberJson {
  nodeId: string;
  name: string;
  peerId: string;
  address: string;
  state: string;
  incarnation: number;
  self: boolean;
  connected: boolean;
}

export function registerClusterCommands(program: Command): void {
  program
    .command('init')
    .description('create a new cluster with this node as its first member; prints a join token')
    .option('--default-addr-pool <cidr>', `pool that network subnets are taken from (default ${DEFAULT_ADDR_POOL})`)
    .addHelpText('after', examples(['weft init', 'weft init --default-addr-pool 100.80.0.0/12']))
    .action(async (opts: { defaultAddrPool?: string }, command: Command) => {
      const { addrPoolSchema } = await import('../api/schemas.ts');
      const pool = checked(addrPoolSchema, opts.defaultAddrPool ?? DEFAULT_ADDR_POOL, '--default-addr-pool');
      const join = await withClient(command, async (c) => {
        const reply = await c.call<{ token: string }>('Init', { defaultAddrPool: pool });
        return joinCommand(reply.token, await c.call<JoinTarget>('Status'));
      });
      process.stdout.write(`Cluster created. Join other hosts with:\n\n  ${join}\n\n`);
    });

  program
    .command('join')
    .description('join an existing cluster through any of its members')
    .option('--token <token>', 'join token from `weft init` or `weft token` (WEFT-1-...); "-" reads it from standard input')
    .option('--token-file <path>', 'read the join token from a file (keeps it out of `ps`)')
    .argument('<addr>', 'address of any member, ADDR[:PORT] (default port 2377)')
    .addHelpText('after', examples(['weft join --token WEFT-1-... 198.18.0.1', 'weft join --token-file /root/weft-token 198.18.0.1:2377', 'ssh h1 weft token | weft join --token - 198.18.0.1']))
    .action(async (addr: string, opts: TokenSources, command: Command) => {
      const token = await readTokenText(opts);
      // Loaded here: the token code brings node:crypto (~1.5 MB) that no other client command needs.
      const { parseToken, TokenError } = await import('../../controlplane/security/token.ts');
      try {
        parseToken(token);
      } catch (error) {
        if (error instanceof TokenError) throw new UsageError(error.message);
        throw error;
      }
      const { joinAddress } = await import('../api/schemas.ts');
      checked(joinAddress, addr, 'member address');
      const reply = await withClient(command, (c) => c.call<{ nodeId: string; members: number }>('Join', { token, address: addr }));
      process.stdout.write(`Joined as node ${reply.nodeId} (${reply.members} members).\n`);
    });

  program
    .command('leave')
    .description('leave the cluster gracefully; other members mark this node "left"')
    .action(async (_opts: object, command: Command) => {
      await withClient(command, (c) => c.call('Leave'));
      process.stdout.write('Left the cluster.\n');
    });

  program
    .command('token')
    .description('print the current join token')
    .option('--rotate', 'replace the secret: old tokens stop working, joined nodes are unaffected')
    .action(async (opts: { rotate?: boolean }, command: Command) => {
      const reply = await withClient(command, (c) => c.call<{ token: string }>('Token', { rotate: opts.rotate === true }));
      process.stdout.write(reply.token + '\n');
    });

  defineMemberList(program.command('members'));

  const node = program.command('node').description('manage cluster nodes');
  defineMemberList(node.command('ls'));
  node
    .command('rm')
    .description('remove (revoke) a node cluster-wide: it can no longer connect or publish; rotates the join token and prints the new one')
    .argument('<node>', 'node ID, unique ID prefix, or name')
    .action(async (reference: string, _opts: object, command: Command) => {
      const reply = await withClient(command, (c) => c.call<{ nodeId: string; token: string }>('RemoveNode', { node: reference }));
      process.stdout.write(`Removed node ${reply.nodeId}.\nThe join token it knew no longer works. New join token:\n\n  ${reply.token}\n\n`);
    });

  withFormatOptions(program.command('status').description("show this agent's identity and cluster state"))
    .action(async (opts: FormatFlags, command: Command) => {
      chosenFormat(opts);
      const reply = await withClient(command, (c) => c.call<Record<string, unknown>>('Status'));
      printInspect(opts, reply, 'table');
    });
}

/** `weft members` and `weft node ls`: one definition, two names (the second as Docker's). */
function defineMemberList(command: Command): void {
  withFormatOptions(command.description('list cluster members (this node is marked *)'), { quiet: 'node IDs' });
  withExamples(command, ['weft node ls', 'weft node ls -q', 'weft members --format json']);
  command.action(async (opts: FormatFlags, cmd: Command) => {
    chosenFormat(opts);
    const reply = await withClient(cmd, (c) => c.call<{ members: MemberJson[] }>('Members'));
    const members = [...reply.members].sort((a, b) => a.name.localeCompare(b.name) || a.nodeId.localeCompare(b.nodeId));
    printListing(opts, {
      items: members,
      id: (m) => m.nodeId,
      json: (m) => m,
      headers: ['NODE ID', 'NAME', 'ADDRESS', 'STATE', 'INCARNATION', 'CONNECTED', 'PEER ID'],
      row: (m) => [m.nodeId.slice(0, 12) + (m.self ? ' *' : ''), m.name, m.address, m.state, String(m.incarnation), m.self ? 'self' : m.connected ? 'yes' : 'no', m.peerId],
    });
  });
}
