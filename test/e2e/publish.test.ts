// Host port publishing (`weft run -p`), with real clients: an "outside"
// machine on the lab's underlay (its own namespace, not a cluster member)
// reaches a published port on the host's address and sees its own address
// arrive at the sandbox; the host reaches it on localhost and its own address;
// another sandbox on the same host reaches it through the host (hairpin); UDP
// works; a port already published or held by a host process is refused; a
// free port is chosen when none is named; the rules leave with the sandbox and
// come back as they were after the agent is killed and restarted.
import test from 'ava';
import { execa } from 'execa';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { labUp, labDown, restartAgent, waitForAgent, type LabState, type LabHost } from '../../deploy/lab/lab.ts';
import { addUnderlayHost } from '../../dataplane/testing/underlay.ts';
import { weftOn, uniquePrefix, eventually } from '../helpers/weft-cli.ts';

const prefix = uniquePrefix('p');
let lab: LabState;
let outside: string; // the outside client's namespace
const OUTSIDE_IP = '198.18.3.200';
/** The system's nft: node_modules/.bin (first on PATH under npm) has another program of that name. */
const NFT = '/usr/sbin/nft';

interface Endpoint { name: string; ip: string; netns: string; published: string[] }

/** An HTTP server in the sandbox that answers every request with the client's address as the server saw it. */
const WHO_AM_I = 'import http.server as h\nclass H(h.BaseHTTPRequestHandler):\n  def do_GET(s):\n    b=(s.client_address[0]+"\\n").encode(); s.send_response(200); s.send_header("Content-Length",str(len(b))); s.end_headers(); s.wfile.write(b)\n  def log_message(s,*a): pass\nh.ThreadingHTTPServer(("0.0.0.0",80),H).serve_forever()\n';

async function ok(h: LabHost, args: string[]): Promise<string> {
  const r = await weftOn(h, args);
  if (r.exitCode !== 0) throw new Error(`weft ${args.join(' ')} failed (${r.exitCode}): ${r.stderr}`);
  return r.stdout;
}

async function endpoint(h: LabHost, name: string): Promise<Endpoint> {
  return (JSON.parse(await ok(h, ['endpoints', '--json'])) as Endpoint[]).find((e) => e.name === name)!;
}

/** curl from a namespace; the body (the client address the server saw) or undefined. */
async function curl(netns: string, url: string): Promise<string | undefined> {
  const r = await execa('ip', ['netns', 'exec', netns, 'curl', '-s', '--max-time', '3', url], { reject: false });
  return r.exitCode === 0 ? String(r.stdout).trim() : undefined;
}

const curlUntil = (netns: string, url: string) => eventually(`${url} to answer from ${netns}`, () => curl(netns, url), 20_000);

const nftTable = (h: LabHost) => execa('ip', ['netns', 'exec', h.netns, NFT, 'list', 'table', 'ip', 'weft_publish'], { reject: false });

test.before(async () => {
  lab = await labUp({ hosts: 2, prefix });
  outside = await addUnderlayHost(prefix, 'out', OUTSIDE_IP, lab.mtu);
  await ok(lab.hosts[0]!, ['network', 'create', 'pub']);
  await ok(lab.hosts[0]!, ['network', 'create', 'priv', '--internal']);
});

test.after.always(async () => {
  if (process.env['WEFT_KEEP_LAB'] !== '1') await labDown(prefix);
});

test.serial('a published TCP port answers outside clients with their own address, the host itself, and same-host sandboxes', async (t) => {
  const [h1] = lab.hosts as [LabHost];
  await ok(h1, ['run', '--detach', '--network', 'pub', '--name', 'web', '-p', '8080:80', '--', 'python3', '-c', WHO_AM_I]);
  t.deepEqual((await endpoint(h1, 'web')).published, ['0.0.0.0:8080->80/tcp'], 'weft endpoints shows the publication');
  t.is(await curlUntil(outside, `http://${h1.ip}:8080/`), OUTSIDE_IP, 'the outside client\'s address reaches the sandbox unchanged');
  t.is(await curl(h1.netns, `http://${h1.ip}:8080/`), h1.ip, 'the host on its own address');
  t.truthy(await curl(h1.netns, 'http://127.0.0.1:8080/'), 'the host on localhost');
  await ok(h1, ['run', '--detach', '--network', 'pub', '--name', 'peer', '--', 'sleep', '600']);
  const peer = await endpoint(h1, 'peer');
  t.truthy(await curlUntil(peer.netns, `http://${h1.ip}:8080/`), 'another sandbox on the same host, through the host (hairpin)');
  const web = await endpoint(h1, 'web');
  t.truthy(await curlUntil(web.netns, `http://${h1.ip}:8080/`), 'the publisher itself, through the host');
  // The gateway bridge still carries nothing else between sandboxes (the publisher's leg address is 198.19.255.2).
  t.is(await curl(peer.netns, 'http://198.19.255.2:80/'), undefined, 'no sandbox reaches a publisher on the bridge but through a published port');
  t.is(await curl(outside, `http://${lab.hosts[1]!.ip}:8080/`), undefined, 'a host that publishes nothing does not answer');
  const doctor = await weftOn(h1, ['doctor']);
  t.is(doctor.exitCode, 0, doctor.stdout);
});

test.serial('conflicts are refused: a published port, a port a host process listens on, the VXLAN port, an address the host lacks; internal-only sandboxes cannot publish', async (t) => {
  const [h1] = lab.hosts as [LabHost];
  const again = await weftOn(h1, ['run', '--detach', '--network', 'pub', '-p', '8080:81', '--', 'sleep', '600']);
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /8080\/tcp: 0\.0\.0\.0:8080->80\/tcp is already published on this host/);
  const listener = execa('ip', ['netns', 'exec', h1.netns, 'socat', 'TCP-LISTEN:9099,reuseaddr,fork', 'SYSTEM:true'], { reject: false });
  t.teardown(() => listener.kill('SIGKILL'));
  const held = await eventually('a host process to hold 9099', async () => {
    const r = await weftOn(h1, ['run', '--detach', '--network', 'pub', '-p', '9099:80', '--', 'sleep', '600']);
    return r.exitCode !== 0 && /listens on \*:9099\/tcp/.test(r.stderr) ? r : undefined;
  }, 10_000);
  t.regex(held.stderr, /choose another host port/);
  const vxlan = await weftOn(h1, ['run', '--detach', '--network', 'pub', '-p', '4789:80/udp', '--', 'sleep', '600']);
  t.regex(vxlan.stderr, /VXLAN/);
  const foreign = await weftOn(h1, ['run', '--detach', '--network', 'pub', '-p', '192.0.2.1:8181:80', '--', 'sleep', '600']);
  t.regex(foreign.stderr, /192\.0\.2\.1: it is not an address of this host/);
  const internal = await weftOn(h1, ['run', '--detach', '--network', 'priv', '-p', '8181:80', '--', 'sleep', '600']);
  t.regex(internal.stderr, /not --internal/);
  const bad = await weftOn(h1, ['run', '--detach', '--network', 'pub', '-p', '80:8080:1', '--', 'sleep', '600']);
  t.is(bad.exitCode, 2, bad.stderr);
  t.regex(bad.stderr, /is not a port publication/);
  t.is((JSON.parse(await ok(h1, ['endpoints', '--json'])) as Endpoint[]).filter((e) => e.published.length > 0).length, 1, 'nothing of the refused requests was made');
});

test.serial('UDP, ranges and a free host port; the rules leave with the sandbox', async (t) => {
  const [h1] = lab.hosts as [LabHost];
  const echo = ['socat', 'UDP-RECVFROM:53,fork', 'SYSTEM:echo pong'];
  await ok(h1, ['run', '--detach', '--network', 'pub', '--name', 'dns', '-p', '5353:53/udp', '-p', '7000-7001:80-81', '-p', '9000', '--', ...echo]);
  const published = (await endpoint(h1, 'dns')).published;
  t.deepEqual(published.slice(0, 3), ['0.0.0.0:5353->53/udp', '0.0.0.0:7000->80/tcp', '0.0.0.0:7001->81/tcp']);
  const free = /^0\.0\.0\.0:(\d+)->9000\/tcp$/.exec(published[3] ?? '');
  t.truthy(free, `a free host port was chosen: ${published.join(', ')}`);
  t.true(Number(free![1]) >= 49_153 && Number(free![1]) <= 60_999);
  const answer = await eventually('the UDP port to answer', async () => {
    const r = await execa('ip', ['netns', 'exec', outside, 'socat', '-T', '2', '-', `UDP:${h1.ip}:5353`], { input: 'ping\n', reject: false });
    return String(r.stdout).includes('pong') ? String(r.stdout) : undefined;
  }, 20_000);
  t.regex(answer, /pong/);
  const dns = await endpoint(h1, 'dns');
  await ok(h1, ['detach', '--netns', dns.netns]);
  const listed = await nftTable(h1);
  const table = `${String(listed.stdout)}${String(listed.stderr)}`;
  t.notRegex(table, /5353|7000|7001/, 'the removed sandbox\'s ports are gone from the table');
  t.regex(table, /tcp \. 8080/, 'the other sandbox\'s port stays');
});

test.serial('after kill -9 the rules stay (traffic keeps flowing) and a restarted agent repairs drift and forgets a sandbox gone meanwhile', async (t) => {
  const [h1] = lab.hosts as [LabHost];
  await ok(h1, ['run', '--detach', '--network', 'pub', '--name', 'brief', '-p', '8282:80', '--', 'python3', '-c', WHO_AM_I]);
  await curlUntil(outside, `http://${h1.ip}:8282/`);
  process.kill(h1.pid, 'SIGKILL');
  t.is(await curl(outside, `http://${h1.ip}:8080/`), OUTSIDE_IP, 'published ports keep working without the agent');
  // While the agent is down: someone deletes an element by hand, and the sandbox `brief` disappears.
  await execa('ip', ['netns', 'exec', h1.netns, NFT, 'delete', 'element', 'ip', 'weft_publish', 'any_address', '{ tcp . 8080 }']);
  const saved = JSON.parse(readFileSync(join(h1.dataDir, 'cluster', 'sandboxes.json'), 'utf8')) as { sandboxes: { pid: number; published: { hostPort: number }[] }[] };
  const brief = saved.sandboxes.find((s) => s.published.some((p) => p.hostPort === 8282))!;
  t.true(brief.pid > 0);
  process.kill(brief.pid, 'SIGKILL');
  const restarted = restartAgent(prefix, 'h1');
  lab.hosts[0] = restarted;
  await waitForAgent(restarted);
  t.is(await curlUntil(outside, `http://${h1.ip}:8080/`), OUTSIDE_IP, 'the restarted agent wrote the missing element back');
  await eventually('the vanished sandbox\'s port to leave the table', async () => !/8282/.test(String((await nftTable(restarted)).stdout)), 30_000);
  const doctor = await eventually('doctor to be clean', async () => {
    const r = await weftOn(restarted, ['doctor']);
    return r.exitCode === 0 ? r : undefined;
  }, 30_000);
  t.is(doctor.exitCode, 0);
});

test.serial('weft doctor reports a published port missing from the kernel', async (t) => {
  const h1 = lab.hosts[0]!;
  // Take the element out again if the agent rewrote the table (a sandbox change) before doctor read it.
  const doctor = await eventually('doctor to see the missing element', async () => {
    await execa('ip', ['netns', 'exec', h1.netns, NFT, 'delete', 'element', 'ip', 'weft_publish', 'any_address', '{ tcp . 8080 }'], { reject: false });
    const r = await weftOn(h1, ['doctor']);
    return r.exitCode === 1 ? r : undefined;
  }, 30_000);
  t.regex(doctor.stdout, /published ports: published port tcp \. 8080 : \S+ \. 80 is missing from map any_address/);
});
