// Services that hold from a workload's first instruction to the loss of a
// backend, on a 2-host lab: a detached workload resolves and reaches a service
// as the very first thing it does, and a UDP client that keeps one source port
// moves to a live backend when the one it was mapped to leaves.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labUp, labDown, callAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('r');
const scratch = mkdtempSync(join(tmpdir(), `${prefix}-`));
let lab: LabState;

interface SandboxInfo { id: string; netns: string; pid: number; endpoints: { ip: string; name: string }[] }

function inSandbox(netns: string, command: string[], timeout = 30_000) {
  return execa('ip', ['netns', 'exec', netns, ...command], { reject: false, timeout });
}

async function dig(netns: string, name: string): Promise<string[]> {
  const r = await inSandbox(netns, ['dig', '+short', '+time=3', '+tries=1', name]);
  return String(r.stdout).split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith(';'));
}

function sandbox(host: LabHost, network: string, name: string, command: string[], services: string[] = []): Promise<SandboxInfo> {
  return callAgent<SandboxInfo>(host, 'SandboxCreate', { networks: [network], name, aliases: [], netns: '', services, command });
}

async function createService(host: LabHost, args: string[]): Promise<string> {
  const created = await weftOn(host, ['service', 'create', ...args]);
  if (created.exitCode !== 0) throw new Error(created.stderr);
  const vip = /VIP (\S+)\)/.exec(created.stdout)?.[1];
  if (!vip) throw new Error(`no VIP in: ${created.stdout}`);
  return vip;
}

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix });
  const [h1] = lab.hosts as [LabHost, LabHost];
  const made = await weftOn(h1, ['network', 'create', 'app']);
  if (made.exitCode !== 0) throw new Error(made.stderr);
});

test.after.always(async () => {
  rmSync(scratch, { recursive: true, force: true });
  if (process.env['WEFT_KEEP_LAB'] === '1') return;
  await labDown(prefix);
});

test.serial('a detached workload resolves and reaches a service with its very first instruction', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const vip = await createService(h1, ['web', '--network', 'app', '--port', '80/tcp']);
  await sandbox(h2, 'app', 'web-1', ['socat', 'TCP-LISTEN:80,fork,reuseaddr', 'SYSTEM:echo web-1'], ['web']);
  // h1 knows the backend (a probe sandbox there reaches it) before the workload starts.
  const probe = await sandbox(h1, 'app', 'probe', ['sleep', '3600']);
  await eventually('the probe to reach web through its VIP', async () => {
    const r = await inSandbox(probe.netns, ['socat', '-T', '2', '-', 'TCP:web:80,connect-timeout=2']);
    return String(r.stdout).trim() === 'web-1';
  }, 60_000);

  // The name lookup and the connection are the workload's first instructions: no retry, no wait.
  const resolved = join(scratch, 'getent');
  const reached = join(scratch, 'connect');
  const script = `getent hosts web > ${resolved} 2>&1; echo "exit $?" >> ${resolved}; socat -T 2 - TCP:${vip}:80,connect-timeout=2 > ${reached} 2>&1; echo "exit $?" >> ${reached}`;
  const run = await weftOn(h1, ['run', '--detach', '--network', 'app', '--name', 'first', '--', 'sh', '-c', script]);
  t.is(run.exitCode, 0, run.stderr);
  const lookup = await eventually('the workload to write its lookup', async () => {
    const text = existsSync(resolved) ? readFileSync(resolved, 'utf8') : '';
    return text.includes('exit ') ? text : undefined;
  }, 60_000);
  t.log(`getent: ${lookup.trim()}`);
  t.regex(lookup, new RegExp(`^${vip.replaceAll('.', '\\.')}\\s+web\\b`, 'm'), 'getent hosts web gave the VIP');
  t.regex(lookup, /exit 0/);
  const connect = await eventually('the workload to write its connection', async () => {
    const text = existsSync(reached) ? readFileSync(reached, 'utf8') : '';
    return text.includes('exit ') ? text : undefined;
  }, 60_000);
  t.is(connect.trim(), 'web-1\nexit 0', 'the VIP answered the first connection');
});

test.serial('a foreground run sees the same from its first instruction', async (t) => {
  const [h1] = lab.hosts as [LabHost, LabHost];
  const r = await weftOn(h1, ['run', '--network', 'app', '--', 'sh', '-c', 'getent hosts web && socat -T 2 - TCP:web:80,connect-timeout=2']);
  t.is(r.exitCode, 0, r.stderr);
  const lines = r.stdout.trim().split('\n');
  t.regex(lines[0] ?? '', /^\S+\s+web\b/);
  t.is(lines[1], 'web-1');
});


