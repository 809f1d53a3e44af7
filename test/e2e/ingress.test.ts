// The ingress routing mesh (`weft service create --publish`), with real
// clients: an "outside" machine on the lab's underlay (its own namespace, not
// a cluster member) reaches the published port on every host's address,
// including hosts that run no backend; requests spread over the backends on
// other hosts; a backend that goes leaves the set and the port keeps
// answering from the live one, as does a killed host's; UDP works; the host
// itself reaches the port; clashes with another service, a host process or a
// `weft run -p` are refused naming the holder; a host that joins later
// programs the mesh; removing the service clears every live host.
import test from 'ava';
import { execa } from 'execa';
import { labUp, labDown, setUnderlayLink, waitForFullMesh, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { addUnderlayHost } from '../../dataplane/testing/underlay.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';
import { fixedPortUdpClient, type FixedPortUdpClient } from '../helpers/udp-client.ts';

const prefix = uniquePrefix('i');
let lab: LabState;
let outside: string;
const OUTSIDE_IP = '198.18.3.201';
/** The system's nft: node_modules/.bin (first on PATH under npm) has another program of that name. */
const NFT = '/usr/sbin/nft';

interface Endpoint { name: string; ip: string; netns: string; node: string }

/** HTTP on 80 answering "NAME CLIENT-ADDRESS", and a UDP echo on 53 answering "NAME". */
const BACKEND = (name: string) => `import http.server as h, socket, threading
def udp():
  s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0",53))
  while True:
    d,a=s.recvfrom(512); s.sendto(b"${name}\\n",a)
threading.Thread(target=udp, daemon=True).start()
class H(h.BaseHTTPRequestHandler):
  def do_GET(s):
    b=("${name} "+s.client_address[0]+"\\n").encode(); s.send_response(200); s.send_header("Content-Length",str(len(b))); s.end_headers(); s.wfile.write(b)
  def log_message(s,*a): pass
h.ThreadingHTTPServer(("0.0.0.0",80),H).serve_forever()
`;

const host = (name: string): LabHost => lab.hosts.find((h) => h.name === name)!;

async function ok(h: LabHost, args: string[]): Promise<string> {
  const r = await weftOn(h, args);
  if (r.exitCode !== 0) throw new Error(`weft ${args.join(' ')} on ${h.name} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

async function curl(netns: string, url: string): Promise<string | undefined> {
  const r = await execa('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '3', url], { reject: false });
  return r.exitCode === 0 && String(r.stdout).trim() !== '' ? String(r.stdout).trim() : undefined;
}

/** The backend names answering `count` fresh connections to host:port from outside. */
async function answers(h: LabHost, port: number, count: number): Promise<string[]> {
  const seen: string[] = [];
  for (let i = 0; i < count; i++) seen.push((await curl(outside, `http://${h.ip}:${port}/`))?.split(' ')[0] ?? 'none');
  return seen;
}

const publishTable = async (h: LabHost) => String((await execa('ip', ['netns', 'exec', h.netns, NFT, 'list', 'table', 'ip', 'weft_publish'], { reject: false })).stdout);
const namespaces = async () => String((await execa('ip', ['netns', 'list'])).stdout);

test.before(async () => {
  lab = await labUp({ hosts: 4, members: 3, prefix });
  outside = await addUnderlayHost(prefix, 'out', OUTSIDE_IP, lab.mtu);
  await ok(host('h1'), ['network', 'create', 'mesh']);
});

test.after.always(async () => {
  if (process.env['WEFT_KEEP_LAB'] !== '1') await labDown(prefix);
});

test.serial('every host answers on the published port, also one without a backend, and requests spread over the backends', async (t) => {
  await ok(host('h1'), ['service', 'create', 'web', '--network', 'mesh', '--port', '80', '--publish', '8080:80', '--publish', 'published=5353,target=53,protocol=udp']);
  await ok(host('h2'), ['run', '--detach', '--network', 'mesh', '--name', 'b2', '--service', 'web', '--', 'python3', '-c', BACKEND('b2')]);
  const listing = await ok(host('h3'), ['service', 'ls']);
  t.regex(listing, /8080:80\/tcp,5353:53\/udp/, 'service ls shows the publications');
  for (const h of ['h1', 'h2', 'h3']) {
    const body = await eventually(`${h}:8080 to answer`, () => curl(outside, `http://${host(h).ip}:8080/`), 60_000);
    t.regex(body, /^b2 100\.\d+\.\d+\.\d+$/, `${h} answers from the backend on h2`);
  }
  const b2 = JSON.parse(await ok(host('h2'), ['endpoints', '--json'])) as Endpoint[];
  const seenFromH1 = (await curl(outside, `http://${host('h1').ip}:8080/`))!.split(' ')[1];
  t.not(seenFromH1, OUTSIDE_IP, 'through another host the backend sees that host\'s ingress address (SNAT), as in Swarm');
  t.true(b2.some((e) => e.ip === seenFromH1 && e.node === 'h1' && e.name === ''), `the address the backend saw (${seenFromH1}) is h1's ingress endpoint`);
  await ok(host('h3'), ['run', '--detach', '--network', 'mesh', '--name', 'b3', '--service', 'web', '--', 'python3', '-c', BACKEND('b3')]);
  await eventually('requests through h1 to reach both backends', async () => {
    const seen = await answers(host('h1'), 8080, 12);
    return seen.includes('b2') && seen.includes('b3') ? seen : undefined;
  }, 60_000);
  // b3 may have been balanced to before its server listened (no health check here): count once both answer.
  const spread = await answers(host('h1'), 8080, 12);
  t.false(spread.includes('none'), `every request answered: ${spread.join(' ')}`);
  t.regex((await curl(host('h1').netns, `http://${host('h1').ip}:8080/`)) ?? '', /^b[23] /, 'the host itself, on its own address');
  t.regex((await curl(host('h1').netns, 'http://127.0.0.1:8080/')) ?? '', /^b[23] /, 'the host itself, on localhost');
  const udp = await eventually('the UDP publication to answer on h1', async () => {
    const r = await execa('ip', ['netns', 'exec', outside, 'socat', '-T', '2', '-', `UDP:${host('h1').ip}:5353`], { input: 'ping\n', reject: false });
    return /b[23]/.test(String(r.stdout)) ? String(r.stdout) : undefined;
  }, 30_000);
  t.regex(udp, /b[23]/);
  for (const h of ['h1', 'h2', 'h3']) {
    const doctor = await weftOn(host(h), ['doctor']);
    t.is(doctor.exitCode, 0, `${h}: ${doctor.stdout}`);
  }
});

/** A UDP client from outside through h1's published 5353 whose flow h1's ingress sent to `backend` (source ports are tried until one is). */
async function udpFlowTo(backend: string): Promise<FixedPortUdpClient> {
  for (let sourcePort = 40100; sourcePort < 40140; sourcePort++) {
    const client = fixedPortUdpClient(outside, host('h1').ip, 5353, { sourcePort });
    const first = await eventually(`an answer to source port ${sourcePort}`, async () => client.answers.find((a) => a !== '-'), 30_000).catch(() => undefined);
    if (first === backend) return client;
    await client.stop();
  }
  throw new Error(`no source port's flow went to ${backend}`);
}

test.serial('a backend that goes leaves every host\'s ingress; the port keeps answering from the live one, also to a UDP flow that was on it', async (t) => {
  const b2 = (JSON.parse(await ok(host('h2'), ['endpoints', '--json'])) as Endpoint[]).find((e) => e.name === 'b2')!;
  const udp = await udpFlowTo('b2');
  t.teardown(() => udp.stop());
  await ok(host('h2'), ['detach', '--netns', b2.netns]);
  // The client keeps sending from its port, so conntrack would keep its flow on b2 for good.
  const moved = await eventually('the UDP flow to move to b3', async () => {
    const last = udp.answers.slice(-5);
    return last.length === 5 && last.every((a) => a === 'b3') ? last : undefined;
  }, 30_000).catch(() => undefined);
  t.truthy(moved, `the UDP flow moved off the gone backend; last answers: ${udp.answers.slice(-8).join(',')}`);
  for (const h of ['h1', 'h2', 'h3']) {
    const seen = await eventually(`${h} to answer only from b3`, async () => {
      const got = await answers(host(h), 8080, 8);
      return got.every((g) => g === 'b3') ? got : undefined;
    }, 60_000);
    t.deepEqual(seen, Array.from({ length: 8 }, () => 'b3'), `${h} answers from the live backend only`);
  }
});

test.serial('clashes are refused naming the holder: another service, a host process, a sandbox port', async (t) => {
  const again = await weftOn(host('h2'), ['service', 'create', 'other', '--network', 'mesh', '--port', '81', '--publish', '8080:81']);
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /8080\/tcp: service "web" publishes it already on every host/);
  const listener = execa('ip', ['netns', 'exec', host('h1').netns, 'socat', 'TCP-LISTEN:9099,reuseaddr,fork', 'SYSTEM:true'], { reject: false });
  t.teardown(() => listener.kill('SIGKILL'));
  const held = await eventually('a host process to hold 9099', async () => {
    const r = await weftOn(host('h1'), ['service', 'create', 'other', '--network', 'mesh', '--port', '80', '--publish', '9099:80']);
    return r.exitCode !== 0 && /a process on this host listens on \*:9099\/tcp/.test(r.stderr) ? r : undefined;
  }, 10_000);
  t.regex(held.stderr, /choose another published port/);
  const run = await weftOn(host('h3'), ['run', '--detach', '--network', 'mesh', '-p', '8080:80', '--', 'sleep', '600']);
  t.is(run.exitCode, 1);
  t.regex(run.stderr, /service "web" publishes 8080\/tcp on every host/);
  const dnsrr = await weftOn(host('h1'), ['service', 'create', 'rr', '--network', 'mesh', '--mode', 'dnsrr', '--publish', '8181:80']);
  t.regex(dnsrr.stderr, /--publish needs --mode vip/);
  const badMode = await weftOn(host('h1'), ['service', 'create', 'hm', '--network', 'mesh', '--publish', 'published=8181,target=80,mode=global']);
  t.is(badMode.exitCode, 2);
  t.regex(badMode.stderr, /mode is ingress \(every host\) or host/);
  t.false((await ok(host('h1'), ['service', 'ls', '-q'])).split('\n').some((n) => ['other', 'rr', 'hm'].includes(n)), 'nothing of the refused requests was made');
});

test.serial('mode=host: only a host running a backend accepts, straight to it, and the backend sees the client\'s own address', async (t) => {
  await ok(host('h1'), ['service', 'create', 'direct', '--network', 'mesh', '--port', '80', '--publish', 'published=8181,target=80,mode=host']);
  t.regex(await ok(host('h1'), ['service', 'ls']), /8181:80\/tcp \(mode=host\)/);
  await ok(host('h2'), ['run', '--detach', '--network', 'mesh', '--name', 'd2', '--service', 'direct', '--', 'python3', '-c', BACKEND('d2')]);
  const body = await eventually('h2:8181 to answer', () => curl(outside, `http://${host('h2').ip}:8181/`), 60_000);
  t.is(body, `d2 ${OUTSIDE_IP}`, 'the backend sees the outside client\'s own address');
  t.is(await curl(outside, `http://${host('h1').ip}:8181/`), undefined, 'a host without a backend does not accept');
  t.is(await curl(outside, `http://${host('h3').ip}:8181/`), undefined, 'nor does another one');
  const d2 = (JSON.parse(await ok(host('h2'), ['endpoints', '--json'])) as Endpoint[]).find((e) => e.name === 'd2')!;
  await ok(host('h2'), ['detach', '--netns', d2.netns]);
  await eventually('h2 to stop accepting on 8181 once its backend is gone', async () => !/8181/.test(await publishTable(host('h2'))), 60_000);
  const doctor = await weftOn(host('h2'), ['doctor']);
  t.is(doctor.exitCode, 0, doctor.stdout);
  await ok(host('h1'), ['service', 'rm', 'direct']);
});

test.serial('a host that joins later accepts on the published port', async (t) => {
  const token = (await ok(host('h1'), ['token'])).trim();
  await ok(host('h4'), ['join', '--token', token, host('h1').ip]);
  await waitForFullMesh(lab);
  const body = await eventually('h4:8080 to answer', () => curl(outside, `http://${host('h4').ip}:8080/`), 90_000);
  t.regex(body, /^b3 /);
});

test.serial('a killed host\'s backend stops getting requests; the other hosts keep answering', async (t) => {
  await ok(host('h4'), ['run', '--detach', '--network', 'mesh', '--name', 'b4', '--service', 'web', '--', 'python3', '-c', BACKEND('b4')]);
  await eventually('h1 to answer from b3 and b4', async () => {
    const seen = await answers(host('h1'), 8080, 12);
    return seen.includes('b3') && seen.includes('b4') ? seen : undefined;
  }, 60_000);
  process.kill(host('h3').pid, 'SIGKILL');
  await setUnderlayLink(prefix, 'h3', false);
  for (const h of ['h1', 'h2', 'h4']) {
    const seen = await eventually(`${h} to answer only from b4`, async () => {
      const got = await answers(host(h), 8080, 8);
      return got.every((g) => g === 'b4') ? got : undefined;
    }, 60_000);
    t.deepEqual(seen, Array.from({ length: 8 }, () => 'b4'), `${h} answers from the live host's backend only`);
  }
  lab.hosts = lab.hosts.filter((h) => h.name !== 'h3');
});

test.serial('removing the service clears the rules and ingress sandboxes on every host; doctor is clean', async (t) => {
  await ok(host('h2'), ['service', 'rm', 'web']);
  for (const h of lab.hosts) {
    await eventually(`${h.name}'s publish table to lose 8080 and 5353`, async () => !/8080|5353/.test(await publishTable(h)), 60_000);
    t.is(await curl(outside, `http://${h.ip}:8080/`), undefined, `${h.name} no longer answers`);
  }
  await eventually('every live host\'s ingress sandbox namespace to go', async () => !new RegExp(`${prefix}-h[124]-si`).test(await namespaces()), 60_000);
  for (const h of lab.hosts) {
    const doctor = await eventually(`${h.name}'s doctor to be clean`, async () => {
      const r = await weftOn(h, ['doctor']);
      return r.exitCode === 0 ? r : undefined;
    }, 30_000);
    t.is(doctor.exitCode, 0);
  }
});
