// Services that hold from a workload's first instruction to the loss of a
// backend, on a 2-host lab: a detached workload resolves and reaches a service
// as the very first thing it does, and a UDP client that keeps one source port
// moves to a live backend when the one it was mapped to leaves.
import test from 'ava';
import { execa } from 'execa';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labUp, labDown, callAgent, restartAgent, waitForAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { isProcessAlive } from '../../lib/process-alive.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';
import { fixedPortUdpClient } from '../helpers/udp-client.ts';

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
  // Backends are made on every host next: each must have heard of the service first.
  const name = args[0]!;
  await eventually(`every host to know service ${name}`, async () => (await Promise.all(lab.hosts.map((h) => weftOn(h, ['service', 'inspect', name])))).every((r) => r.exitCode === 0), 60_000);
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

test.serial('removing a detached workload\'s sandbox stops it: SIGTERM, then SIGKILL for what ignores it; a refused attach stops nothing', async (t) => {
  const [h1] = lab.hosts as [LabHost, LabHost];
  const polite = await sandbox(h1, 'app', 'polite', ['sh', '-c', 'trap "echo got-term; exit 0" TERM; while :; do sleep 1; done']);
  // An ignored signal stays ignored across fork and exec: the background sleep ignores SIGTERM too.
  const stubborn = await sandbox(h1, 'app', 'stubborn', ['sh', '-c', 'trap "" TERM; sleep 600 & while :; do sleep 1; done']);
  t.teardown(() => {
    for (const pid of [polite.pid, stubborn.pid]) {
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        // stopped as it should be
      }
    }
  });
  t.true(isProcessAlive(polite.pid) && isProcessAlive(stubborn.pid), 'control: both run');

  // Attaching a network the sandbox already has is refused, and undoes nothing it had.
  const again = await weftOn(h1, ['attach', '--netns', polite.netns, '--network', 'app']);
  t.not(again.exitCode, 0);
  t.regex(again.stderr, /already attached to network "app"/);
  t.true(isProcessAlive(polite.pid), 'the workload still runs');
  t.true((await weftOn(h1, ['endpoints', '--network', 'app', '--json'])).stdout.includes('"polite"'), 'and is still on app');

  for (const s of [polite, stubborn]) {
    const r = await weftOn(h1, ['detach', '--netns', s.netns]);
    t.is(r.exitCode, 0, r.stderr);
  }
  // Before, both kept running in a namespace nobody could name any more, unwatched.
  const groupGone = async (pid: number) => (await execa('pgrep', ['-g', String(pid)], { reject: false })).exitCode === 1;
  await eventually('both workloads and their children to be gone', async () => (await groupGone(polite.pid)) && (await groupGone(stubborn.pid)), 30_000);
  t.regex(readFileSync(join(h1.dataDir, 'sandboxes', `${polite.id}.log`), 'utf8'), /got-term/, 'SIGTERM came first');
});

/** A UDP echo backend of `service` that says its name, with a TCP port 80 for the health check. */
function udpBackend(host: LabHost, name: string, service: string): Promise<SandboxInfo> {
  const script = `socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:true & exec socat UDP-RECVFROM:5300,fork SYSTEM:"echo ${name}"`;
  return sandbox(host, 'app', name, ['sh', '-c', script], [service]);
}

const failCheck = 'table ip wtest {\n  chain input {\n    type filter hook input priority 0;\n    iifname "egress0" tcp dport 80 reject with tcp reset\n  }\n}\n';

test.serial('a UDP client on one source port moves to a live backend when its backend fails its check, then when it is gone', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const vip = await createService(h1, ['udpecho', '--network', 'app', '--port', '5300/udp', '--health', 'tcp:80']);
  const backends = new Map([['u-1', await udpBackend(h1, 'u-1', 'udpecho')], ['u-2', await udpBackend(h2, 'u-2', 'udpecho')]]);
  const client = await sandbox(h1, 'app', 'udp-client', ['sleep', '3600']);
  const tasks = async () => (await dig(client.netns, 'tasks.udpecho')).sort();
  await eventually('both backends to be live', async () => (await tasks()).length === 2, 60_000);
  const udp = fixedPortUdpClient(client.netns, vip, 5300);
  /** The last five replies, once they all come from one backend other than `not`. */
  const settledOn = (not: string) => async () => {
    const last = udp.answers.slice(-5);
    return last.length === 5 && new Set(last).size === 1 && last[0] !== not && last[0] !== '-' ? last[0] : undefined;
  };
  try {
    const first = await eventually('the client to get answers', settledOn(''), 30_000);
    const other = first === 'u-1' ? 'u-2' : 'u-1';
    const firstIp = backends.get(first)!.endpoints[0]!.ip;

    // Its backend fails the health check but keeps answering: only a deleted conntrack entry moves the flow.
    const block = await execa('ip', ['netns', 'exec', backends.get(first)!.netns, '/usr/sbin/nft', '-f', '-'], { input: failCheck, reject: false });
    t.is(block.exitCode, 0, String(block.stderr));
    await eventually(`${first} to leave tasks.udpecho`, async () => !(await tasks()).includes(firstIp), 60_000);
    t.is(await eventually(`the flow to move off ${first}`, settledOn(first), 20_000), other);

    await inSandbox(backends.get(first)!.netns, ['/usr/sbin/nft', 'delete table ip wtest']);
    await eventually(`${first} to come back`, async () => (await tasks()).length === 2, 60_000);

    // The backend it moved to goes away (its task exits; the agent removes the sandbox).
    const gone = backends.get(other)!;
    await execa('sh', ['-c', `ip netns pids ${gone.netns} | xargs -r kill -9`], { reject: false });
    await eventually(`${other} to leave tasks.udpecho`, async () => !(await tasks()).includes(gone.endpoints[0]!.ip), 60_000);
    t.is(await eventually(`the flow to move off ${other}`, settledOn(other), 20_000), first);
  } finally {
    await udp.stop();
  }
});

test.serial('a UDP client on one source port moves off a backend removed while its host\'s agent was down', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const vip = await createService(h1, ['udprestart', '--network', 'app', '--port', '5300/udp', '--health', 'tcp:80']);
  const local = await udpBackend(h1, 'a-1', 'udprestart');
  const remote = await udpBackend(h2, 'a-2', 'udprestart');
  const client = await sandbox(h1, 'app', 'restart-client', ['sleep', '3600']);
  const tasks = async () => (await dig(client.netns, 'tasks.udprestart')).sort();
  // Only h2's backend is live while the client starts, so the flow is mapped to the one removed later.
  const block = await execa('ip', ['netns', 'exec', local.netns, '/usr/sbin/nft', '-f', '-'], { input: failCheck, reject: false });
  t.is(block.exitCode, 0, String(block.stderr));
  await eventually('only a-2 to be live', async () => (await tasks()).join() === remote.endpoints[0]!.ip, 60_000);
  const udp = fixedPortUdpClient(client.netns, vip, 5300);
  const settledOn = (name: string) => async () => {
    const last = udp.answers.slice(-5);
    return last.length === 5 && last.every((a) => a === name);
  };
  try {
    await eventually('the client to be answered by a-2', settledOn('a-2'), 30_000);
    await inSandbox(local.netns, ['/usr/sbin/nft', 'delete table ip wtest']);
    await eventually('both backends to be live', async () => (await tasks()).length === 2, 60_000);

    // h1's agent dies; its sandboxes, their tables and conntrack stay. Meanwhile a-2 goes.
    process.kill(h1.pid, 'SIGKILL');
    await eventually('h1\'s agent to exit', async () => !isProcessAlive(h1.pid), 15_000);
    await callAgent(h2, 'SandboxDetach', { netns: remote.netns, network: '' });
    const restarted = restartAgent(prefix, h1.name);
    lab.hosts[0] = restarted;
    await waitForAgent(restarted);
    await eventually('tasks.udprestart to be a-1 alone', async () => (await tasks()).join() === local.endpoints[0]!.ip, 60_000);
    // Without the old table read back from the kernel, the restarted agent never learns the flow was a-2's.
    t.true(await eventually('the flow to move to a-1', settledOn('a-1'), 20_000).catch(() => false), `last answers: ${udp.answers.slice(-5).join(',')}`);
  } finally {
    await udp.stop();
  }
});

test.serial('a UDP client on one source port moves to a live backend when its backend\'s host dies', async (t) => {
  const [h1, h2] = lab.hosts as [LabHost, LabHost];
  const vip = await createService(h1, ['udpkill', '--network', 'app', '--port', '5300/udp', '--health', 'tcp:80']);
  const local = await udpBackend(h1, 'k-1', 'udpkill');
  const remote = await udpBackend(h2, 'k-2', 'udpkill');
  const client = await sandbox(h1, 'app', 'kill-client', ['sleep', '3600']);
  const tasks = async () => (await dig(client.netns, 'tasks.udpkill')).sort();
  // Only h2's backend is live while the client starts, so the flow is mapped to the host that dies.
  const block = await execa('ip', ['netns', 'exec', local.netns, '/usr/sbin/nft', '-f', '-'], { input: failCheck, reject: false });
  t.is(block.exitCode, 0, String(block.stderr));
  await eventually('only k-2 to be live', async () => (await tasks()).join() === remote.endpoints[0]!.ip, 60_000);
  const udp = fixedPortUdpClient(client.netns, vip, 5300);
  const settledOn = (name: string) => async () => {
    const last = udp.answers.slice(-5);
    return last.length === 5 && last.every((a) => a === name);
  };
  try {
    await eventually('the client to be answered by k-2', settledOn('k-2'), 30_000);
    const sinceSettled = udp.answers.length;
    await inSandbox(local.netns, ['/usr/sbin/nft', 'delete table ip wtest']);
    await eventually('both backends to be live', async () => (await tasks()).length === 2, 60_000);
    // A lost datagram on a busy machine shows as '-'; what must never happen is an answer from k-1.
    await eventually('the client to be answered by k-2 with both live', settledOn('k-2'), 30_000);
    const meanwhile = udp.answers.slice(sinceSettled);
    t.false(meanwhile.includes('k-1'), `the flow stays on its backend while that one lives (answers meanwhile: ${meanwhile.join(',')})`);

    process.kill(h2.pid, 'SIGKILL');
    await execa('ip', ['-n', h2.netns, 'link', 'set', 'eth0', 'down']);
    await eventually('h2\'s backend to leave tasks.udpkill', async () => !(await tasks()).includes(remote.endpoints[0]!.ip), 90_000);
    t.true(await eventually('the flow to move to k-1', settledOn('k-1'), 20_000));
  } finally {
    await udp.stop();
  }
});
