// The embedded DNS server on loopback, with real dig and raw sockets: local
// answers, TCP and truncation, EDNS, forwarding with failover, caps, and
// hostile input followed by a flood, after which it still answers. Counts and
// eventual states only: no timing is asserted.
import test from 'ava';
import type { Answer } from 'dns-packet';
import { execa } from 'execa';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, connect, type Server, type Socket as TcpSocket } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { startDnsServer, type DnsServer } from '../../dataplane/dns/server.ts';
import { readUpstreams } from '../../dataplane/dns/upstreams.ts';
import { answerQuestion, type DnsClientView } from '../../controlplane/services/dns-answers.ts';
import { frame, TcpFrames } from '../../dataplane/dns/tcp-frames.ts';

/** A record's data (the OPT pseudo-record has none). */
const rdata = (a: Answer): unknown => (a as { data?: unknown }).data;

const many = Array.from({ length: 60 }, (_, i) => ({ ip: `100.64.1.${10 + i}`, name: `big-${i}` }));
const view: DnsClientView = {
  networks: [{
    name: 'app',
    subnet: '100.64.1.0/24',
    services: [
      { name: 'web', mode: 'vip', vip: '100.64.1.2', ports: [{ port: 80, protocol: 'tcp' }], backends: [{ ip: '100.64.1.5', name: 'web-1' }, { ip: '100.64.1.6', name: 'web-2' }] },
      { name: 'big', mode: 'dnsrr', vip: '', ports: [], backends: many },
      { name: 'db', mode: 'dnsrr', vip: '', ports: [{ port: 5432, protocol: 'tcp' }], backends: [{ ip: '100.64.1.7', name: 'db-1' }] },
    ],
    endpoints: [{ name: 'web-1', aliases: ['front'], ip: '100.64.1.5' }, { name: 'web-2', aliases: [], ip: '100.64.1.6' }, { name: 'db-1', aliases: [], ip: '100.64.1.7' }],
  }],
};
const resolveLocal = (client: { address: string }, question: { name: string; type: string }) =>
  (client.address === '127.0.0.1' ? answerQuestion(view, question, { ttl: 5, random: Math.random }) : undefined);

type Behaviour = 'answer' | 'servfail' | 'spoof' | 'wrong-question';
interface Upstream { udp: Socket; tcp: Server; port: number; queries: number; tcpQueries: number; sourcePorts: number[]; close(): void }

const BIG_OUTSIDE = Array.from({ length: 40 }, (_, i) => `198.18.8.${i + 1}`);

/**
 * A tiny upstream on 127.0.0.1 (UDP and TCP on one port): names under outside.test
 * are 198.18.7.7; big.outside.test has 40 records and is truncated over UDP.
 * 'servfail' answers SERVFAIL; 'spoof' answers from another port; 'wrong-question'
 * answers with the right ID but another name.
 */
async function startUpstream(behaviour: Behaviour = 'answer'): Promise<Upstream> {
  const answer = (query: Buffer, transport: 'udp' | 'tcp'): Buffer => {
    const q = dnsPacket.decode(query);
    const question = q.questions![0]!;
    const name = question.name.toLowerCase();
    if (behaviour === 'servfail') return dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE | 2, questions: [question] });
    if (behaviour === 'wrong-question') return dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: [{ ...question, name: 'evil.test' }], answers: [{ type: 'A', name: 'evil.test', data: '6.6.6.6' }] });
    const flags = dnsPacket.RECURSION_AVAILABLE | (q.flags! & dnsPacket.RECURSION_DESIRED);
    if (name === 'big.outside.test' && question.type === 'A') {
      if (transport === 'udp') return dnsPacket.encode({ type: 'response', id: q.id, flags: flags | dnsPacket.TRUNCATED_RESPONSE, questions: [question] });
      return dnsPacket.encode({ type: 'response', id: q.id, flags, questions: [question], answers: BIG_OUTSIDE.map((ip) => ({ type: 'A', name: question.name, ttl: 60, data: ip })) });
    }
    const inside = name.endsWith('outside.test');
    return dnsPacket.encode({ type: 'response', id: q.id, flags: flags | (inside ? 0 : 3), questions: [question], answers: inside && question.type === 'A' ? [{ type: 'A', name: question.name, ttl: 60, data: '198.18.7.7' }] : [] });
  };
  const state = { queries: 0, tcpQueries: 0, sourcePorts: [] as number[] };
  const udp = createSocket('udp4');
  const other = createSocket('udp4');
  udp.on('message', (m, r) => {
    state.queries++;
    state.sourcePorts.push(r.port);
    (behaviour === 'spoof' ? other : udp).send(answer(m, 'udp'), r.port, r.address);
  });
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => other.bind(0, '127.0.0.1', resolve));
  const port = udp.address().port;
  const tcp = createServer((socket) => {
    const frames = new TcpFrames();
    socket.on('data', (chunk) => frames.push(chunk).forEach((m) => {
      state.tcpQueries++;
      socket.write(frame(answer(m, 'tcp')));
    }));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => tcp.listen(port, '127.0.0.1', resolve));
  return Object.assign(state, { udp, tcp, port, close: () => { udp.close(); other.close(); tcp.close(); } });
}

let server: DnsServer;
let upstream: Upstream;
let silent: Socket;
const servers: DnsServer[] = [];
const upstreams: Upstream[] = [];

/** A server for one test, closed at the end. */
async function extraServer(options: Partial<Parameters<typeof startDnsServer>[0]>): Promise<DnsServer> {
  const s = await startDnsServer({ address: '127.0.0.1', port: 0, resolve: resolveLocal, upstreams: () => [], upstreamTimeoutMs: 300, ...options });
  servers.push(s);
  return s;
}

async function extraUpstream(behaviour: Behaviour): Promise<Upstream> {
  const u = await startUpstream(behaviour);
  upstreams.push(u);
  return u;
}

test.before(async () => {
  upstream = await startUpstream();
  silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  server = await startDnsServer({
    address: '127.0.0.1',
    port: 0,
    resolve: resolveLocal,
    upstreams: () => [`127.0.0.1:${silent.address().port}`, `127.0.0.1:${upstream.port}`],
    upstreamTimeoutMs: 300,
  });
});

test.after.always(async () => {
  await server?.close();
  for (const s of servers) await s.close();
  upstream?.close();
  for (const u of upstreams) u.close();
  silent?.close();
});

async function dig(...args: string[]): Promise<{ out: string; lines: string[] }> {
  return digAt(server.port, ...args);
}

async function digAt(port: number, ...args: string[]): Promise<{ out: string; lines: string[] }> {
  const r = await execa('dig', ['@127.0.0.1', '-p', String(port), '+time=3', '+tries=1', ...args], { reject: false });
  const out = String(r.stdout);
  return { out, lines: out.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';')) };
}

test.serial('answers cluster names over UDP (A, AAAA, PTR, SRV), case-insensitively, shuffled', async (t) => {
  t.deepEqual((await dig('+short', 'web')).lines, ['100.64.1.2']);
  const upper = await dig('WeB.App');
  t.regex(upper.out, /^WeB\.App\.\s+5\s+IN\s+A\s+100\.64\.1\.2$/m, 'the name echoed as asked, TTL 5');
  t.regex(upper.out, /flags: qr aa rd ra;/);
  const orders = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const lines = (await dig('+short', '+nocookie', 'tasks.web')).lines;
    t.deepEqual([...lines].sort(), ['100.64.1.5', '100.64.1.6']);
    orders.add(lines.join(','));
  }
  t.is(orders.size, 2, 'both orders show up in 8 tries, also from the cache (a 1-in-128 chance to fail by bad luck)');
  t.regex((await dig('nosuch')).out, /status: NXDOMAIN/);
  t.regex((await dig('AAAA', 'web')).out, /status: NOERROR.*\n.*ANSWER: 0/);
  t.deepEqual((await dig('+short', '-x', '100.64.1.5')).lines, ['web-1.app.']);
  t.deepEqual((await dig('+short', '-x', '100.64.1.2')).lines, ['web.app.']);
  t.regex((await dig('-x', '100.64.1.99')).out, /status: NXDOMAIN/);
  t.deepEqual((await dig('+short', 'SRV', '_tcp.web')).lines, ['0 10 80 web.app.']);
  const rr = await dig('SRV', '_5432._tcp.db');
  t.regex(rr.out, /_5432\._tcp\.db\.\s+5\s+IN\s+SRV\s+0 10 5432 100-64-1-7\.tasks\.db\.app\./);
  t.regex(rr.out, /ADDITIONAL SECTION:\n100-64-1-7\.tasks\.db\.app\.\s+5\s+IN\s+A\s+100\.64\.1\.7/);
  t.deepEqual((await dig('+short', '100-64-1-7.tasks.db.app')).lines, ['100.64.1.7']);
});

test.serial('a large answer is truncated over UDP and dig gets all of it over TCP; EDNS raises the UDP limit', async (t) => {
  const plain = await dig('+noedns', '+ignore', 'big');
  t.regex(plain.out, /flags:[^;]* tc[ ;]/);
  t.regex(plain.out, /ANSWER: 0/);
  const retried = await dig('+noedns', '+short', 'big');
  t.is(retried.lines.length, 60, 'dig retried over TCP');
  const small = await dig('+bufsize=600', '+ignore', 'big');
  t.regex(small.out, /flags:[^;]* tc[ ;]/, 'a 600-byte EDNS limit is honoured');
  t.regex(small.out, /OPT PSEUDOSECTION/);
  const edns = await dig('+bufsize=1232', 'big');
  t.notRegex(edns.out, /flags:[^;]* tc[ ;]/);
  t.regex(edns.out, /OPT PSEUDOSECTION:\n; EDNS: version: 0, flags:; udp: 4096/);
  t.regex(edns.out, /ANSWER: 60/);
  t.notRegex((await dig('+noedns', 'web')).out, /OPT PSEUDOSECTION/, 'no OPT in the answer to a query without one');
  t.regex((await dig('+edns=1', '+noednsneg', 'web')).out, /status: BADVERS/);
  t.deepEqual((await dig('+tcp', '+short', 'web')).lines, ['100.64.1.2']);
});

test.serial('other names go upstream, past an upstream that never answers, over UDP and TCP', async (t) => {
  t.deepEqual((await dig('+short', 'www.outside.test')).lines, ['198.18.7.7']);
  t.deepEqual((await dig('+short', '+tcp', 'api.outside.test')).lines, ['198.18.7.7']);
  t.regex((await dig('nosuch.example')).out, /status: NXDOMAIN/, 'the upstream\'s NXDOMAIN is relayed');
  const tcpBefore = upstream.tcpQueries;
  const big = await dig('+short', 'big.outside.test');
  t.deepEqual([...big.lines].sort(), [...BIG_OUTSIDE].sort(), 'a truncated upstream answer: dig retried over TCP, and so did the forwarder');
  t.true(upstream.tcpQueries > tcpBefore);
});

test.serial('failover past SERVFAIL and past spoofed or mismatched replies; SERVFAIL when none answer; REFUSED for a client it does not serve', async (t) => {
  const failing = await extraUpstream('servfail');
  const spoofing = await extraUpstream('spoof');
  const lying = await extraUpstream('wrong-question');
  const askedBefore = upstream.queries;
  const chain = await extraServer({ upstreams: () => [`127.0.0.1:${failing.port}`, `127.0.0.1:${spoofing.port}`, `127.0.0.1:${lying.port}`, `127.0.0.1:${upstream.port}`] });
  t.deepEqual((await digAt(chain.port, '+short', 'a.outside.test')).lines, ['198.18.7.7']);
  t.true(failing.queries >= 1 && spoofing.queries >= 1 && lying.queries >= 1, 'each upstream was asked in turn');
  t.true(upstream.queries > askedBefore, 'the spoofed reply was not taken for an answer');
  const none = await extraServer({ upstreams: () => [`127.0.0.1:${silent.address().port}`, `127.0.0.1:${spoofing.port}`, `127.0.0.1:${failing.port}`], upstreamTimeoutMs: 200 });
  t.regex((await digAt(none.port, 'example.org')).out, /status: SERVFAIL/);
  const noneTcp = await extraServer({ upstreams: () => [`127.0.0.1:${silent.address().port}`, `127.0.0.1:${failing.port}`], upstreamTimeoutMs: 200 });
  t.regex((await digAt(noneTcp.port, '+tcp', 'example.org')).out, /status: SERVFAIL/);
  t.regex((await digAt(none.port, 'web')).out, /status: NOERROR/, 'the cluster\'s names do not need an upstream');
  const stranger = await dig('-b', '127.0.0.2', 'web');
  t.regex(stranger.out, /status: REFUSED/);
});

/** Collects UDP replies to `packets` (all sent at once), resending unanswered ones up to `rounds` times. */
async function udpExchange(port: number, packets: Buffer[], options: { waitMs?: number; rounds?: number } = {}): Promise<Map<number, Buffer>> {
  const socket = createSocket({ type: 'udp4', recvBufferSize: 4 * 1024 * 1024 });
  const replies = new Map<number, Buffer>();
  // Garbage shorter than an ID is keyed by its index (and answered by nothing).
  const byId = new Map(packets.map((p, i) => [p.length >= 2 ? p.readUInt16BE(0) : -1 - i, p]));
  socket.on('message', (m) => {
    if (m.length >= 2 && !replies.has(m.readUInt16BE(0))) replies.set(m.readUInt16BE(0), m);
  });
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  try {
    for (let round = 0; round < (options.rounds ?? 1); round++) {
      const missing = [...byId].filter(([id]) => !replies.has(id)).map(([, p]) => p);
      if (missing.length === 0) break;
      for (const p of missing) socket.send(p, port, '127.0.0.1');
      const deadline = Date.now() + (options.waitMs ?? 500);
      while (Date.now() < deadline && replies.size < byId.size) await new Promise((r) => setTimeout(r, 20));
    }
  } finally {
    socket.close();
  }
  return replies;
}

const query = (name: string, id: number, type: dnsPacket.RecordType = 'A'): Buffer => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type, name }] });

/** Sends frames on one TCP connection and collects `expected` replies (or what came before it closed). */
function tcpExchange(port: number, frames: Buffer[], expected: number, localAddress = '127.0.0.1'): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const replies: Buffer[] = [];
    const parser = new TcpFrames();
    const socket = connect({ port, host: '127.0.0.1', localAddress }, () => socket.write(Buffer.concat(frames)));
    const done = (): void => {
      socket.destroy();
      resolve(replies);
    };
    socket.on('data', (chunk) => {
      replies.push(...parser.push(chunk));
      if (replies.length >= expected) done();
    });
    socket.on('error', done);
    socket.on('close', done);
    setTimeout(done, 10_000);
  });
}

test.serial('garbage, truncated, oversized and response packets never break it', async (t) => {
  const good = query('web', 4242);
  const twoOpts = dnsPacket.encode({ type: 'query', id: 9, questions: [{ type: 'A', name: 'web' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as Answer, { type: 'OPT', name: '.', udpPayloadSize: 1232 } as unknown as Answer] });
  const garbage = [
    Buffer.alloc(0),
    Buffer.from([1, 2, 3]),
    good.subarray(0, good.length - 3),
    Buffer.concat([query('web', 4243).subarray(0, 12), Buffer.alloc(200, 0xff)]),
    Buffer.alloc(10_000, 0x41),
    dnsPacket.encode({ type: 'response', id: 7, questions: [{ type: 'A', name: 'web' }], answers: [] }),
    dnsPacket.encode({ type: 'query', id: 8, questions: [{ type: 'A', name: 'web' }, { type: 'A', name: 'web-1' }] }),
    dnsPacket.encode({ type: 'query', id: 10, questions: [] }),
    twoOpts,
    Buffer.from(good.map((b, i) => (i === 2 ? b | 0x28 : i === 1 ? 11 : b))), // opcode 5 (UPDATE), ID 4107
  ];
  const before = server.stats();
  const replies = [...(await udpExchange(server.port, garbage)).values()];
  for (const reply of replies) t.true(reply.length >= 12);
  const rcodes = replies.map((r) => r[3]! & 0x0f).sort();
  t.true(rcodes.every((c) => c === 1 || c === 4), `only FORMERR/NOTIMP replies, got ${rcodes.join(',')}`);
  t.true(rcodes.includes(4), 'NOTIMP for the UPDATE');
  const after = server.stats();
  t.is(after.dropped - before.dropped, 3, 'empty, 3-byte and QR=1 packets dropped');
  t.is(after.formerr - before.formerr, 5, 'truncated, undecodable, two questions, none, two OPT records');
  t.is(after.notimp - before.notimp, 2, 'UPDATE, and the 10 KB of 0x41 (opcode 8)');
  // TCP: a 65535-byte frame of garbage after a query's header, then a good query on the same connection, then a half frame.
  const oversized = Buffer.concat([query('web', 77).subarray(0, 12), Buffer.alloc(65_535 - 12, 0xff)]);
  const tcpReplies = await tcpExchange(server.port, [frame(oversized), frame(good), Buffer.from([0x00])], 2);
  t.is(tcpReplies.length, 2);
  t.is(tcpReplies[0]![3]! & 0x0f, 1, 'FORMERR for the garbage frame');
  t.is(rdata(dnsPacket.decode(tcpReplies[1]!).answers![0]!), '100.64.1.2', 'and the connection still serves');
  const again = await udpExchange(server.port, [good]);
  t.is(again.size, 1);
  t.is(rdata(dnsPacket.decode(again.get(4242)!).answers![0]!), '100.64.1.2');
});

test.serial('TCP: many queries on one connection, answered as each is ready', async (t) => {
  const names = [...Array.from({ length: 10 }, () => 'web'), ...Array.from({ length: 10 }, (_, i) => `p${i}.outside.test`), ...Array.from({ length: 10 }, () => 'tasks.web')];
  const replies = await tcpExchange(server.port, names.map((name, id) => frame(query(name, id))), names.length);
  t.is(replies.length, 30);
  const decoded = replies.map((r) => dnsPacket.decode(r));
  t.deepEqual(decoded.map((d) => d.id).sort((a, b) => a! - b!), names.map((_, id) => id));
  for (const d of decoded) t.is(d.questions![0]!.name, names[d.id ?? -1] ?? '');
  t.true(decoded.slice(0, 20).every((d) => !d.questions![0]!.name.endsWith('outside.test')), 'local answers did not wait behind forwards');
});

test.serial('a flood of 2000 concurrent queries (local and forwarded) is answered, and then it still answers', async (t) => {
  const names = Array.from({ length: 2000 }, (_, i) => (i % 4 === 0 ? `n${i}.outside.test` : i % 4 === 1 ? 'web' : i % 4 === 2 ? 'tasks.web' : `nosuch${i}`));
  const packets = names.map((name, id) => query(name, id));
  // All 2000 at once; a client resends what went unanswered, as a stub resolver would.
  const replies = await udpExchange(server.port, packets, { waitMs: 3_000, rounds: 5 });
  t.is(replies.size, 2000);
  for (const [id, reply] of replies) {
    const d = dnsPacket.decode(reply);
    const name = names[id]!;
    t.is(d.questions![0]!.name, name);
    const ips = (d.answers ?? []).map((a) => String(rdata(a))).sort().join(',');
    const expected = name.endsWith('outside.test') ? '198.18.7.7' : name === 'web' ? '100.64.1.2' : name === 'tasks.web' ? '100.64.1.5,100.64.1.6' : '';
    const status = (d as { rcode?: string }).rcode;
    if (ips !== expected || (name.startsWith('nosuch') && status !== 'NXDOMAIN')) t.fail(`${name}: ${status} ${ips}`);
  }
  t.deepEqual((await dig('+short', 'web')).lines, ['100.64.1.2']);
  t.deepEqual((await dig('+short', 'x.outside.test')).lines, ['198.18.7.7']);
  const stats = server.stats();
  t.true(stats.queries >= 2000);
  t.is(stats.forwardsInFlight, 0);
});

test.serial('every forwarded query leaves from a fresh random source port, and its socket is closed after', async (t) => {
  const counting = await extraUpstream('answer');
  const fresh = await extraServer({ upstreams: () => [`127.0.0.1:${counting.port}`] });
  const names = Array.from({ length: 60 }, (_, i) => `port${i}.outside.test`);
  // One at a time, so that a pool of sockets reused round the clock would show.
  for (const [id, name] of names.entries()) {
    const replies = await udpExchange(fresh.port, [query(name, id)], { waitMs: 2_000, rounds: 3 });
    t.is(replies.size, 1, name);
  }
  const ports = new Set(counting.sourcePorts);
  t.is(counting.sourcePorts.length, 60);
  // The kernel picks each port at random from ~28,000: 60 draws collide rarely (p of 5+ repeats is negligible).
  t.true(ports.size >= 55, `${ports.size} distinct source ports for 60 queries`);
  t.false([...ports].some((p) => p === fresh.port), 'never the server port');
  t.is(fresh.stats().forwardSockets, 0, 'no socket left open');
});

test.serial('forwards in flight are capped: beyond the cap, REFUSED at once; one socket each', async (t) => {
  const capped = await extraServer({ upstreams: () => [`127.0.0.1:${silent.address().port}`], upstreamTimeoutMs: 2_000, maxInFlight: 10 });
  let mostSockets = 0;
  const watch = setInterval(() => (mostSockets = Math.max(mostSockets, capped.stats().forwardSockets)), 5);
  const replies = await udpExchange(capped.port, Array.from({ length: 50 }, (_, i) => query(`q${i}.outside.test`, i)), { waitMs: 6_000 });
  clearInterval(watch);
  t.true(mostSockets >= 1 && mostSockets <= 10, `${mostSockets} forward sockets open at most`);
  t.is(capped.stats().forwardSockets, 0);
  const rcodes = [...replies.values()].map((r) => r[3]! & 0x0f);
  t.is(rcodes.filter((c) => c === 5).length, 40, 'REFUSED beyond the cap');
  t.is(rcodes.filter((c) => c === 2).length, 10, 'SERVFAIL for the ten that timed out');
  t.is(capped.stats().forwardsInFlight, 0);
});

test.serial('TCP connections are capped; close() ends open connections', async (t) => {
  const capped = await extraServer({ maxTcpConnections: 3 });
  const sockets: TcpSocket[] = [];
  const closed: Promise<void>[] = [];
  for (let i = 0; i < 6; i++) {
    const socket = connect(capped.port, '127.0.0.1');
    socket.on('error', () => undefined);
    closed.push(new Promise((resolve) => socket.once('close', () => resolve())));
    await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
    sockets.push(socket);
  }
  await Promise.race([Promise.all(closed.slice(3)), new Promise((r) => setTimeout(r, 5_000))]);
  t.is(capped.stats().tcpRejected, 3);
  t.is(capped.stats().tcpConnections, 3);
  const answered = await tcpExchange(capped.port, [frame(query('web', 1))], 1);
  t.is(answered.length, 0, 'a fourth connection is refused while three are open');
  await capped.close();
  await Promise.all(closed.slice(0, 3));
  t.pass('the open connections were closed');
});

test.serial('TCP connections are capped per client: one client holding many does not starve another', async (t) => {
  const anyClient = (_client: { address: string }, question: { name: string; type: string }) => answerQuestion(view, question, { ttl: 5, random: Math.random });
  const shared = await extraServer({ resolve: anyClient, maxTcpConnections: 8, maxTcpPerClient: 4 });
  const hog: TcpSocket[] = [];
  const hogClosed: Promise<void>[] = [];
  for (let i = 0; i < 12; i++) {
    const socket = connect({ port: shared.port, host: '127.0.0.1', localAddress: '127.0.0.1' });
    socket.on('error', () => undefined);
    hogClosed.push(new Promise((resolve) => socket.once('close', () => resolve())));
    await new Promise((resolve) => socket.once('connect', resolve).once('close', resolve));
    hog.push(socket);
  }
  // The hog's connections beyond its four are closed by the server; wait for it (eventual, not timed).
  await Promise.race([Promise.all(hogClosed.slice(4)), new Promise((r) => setTimeout(r, 5_000))]);
  t.is(shared.stats().tcpConnections, 4, 'the hog keeps only its own four');
  t.is(shared.stats().tcpRejected, 8);
  const other = await tcpExchange(shared.port, [frame(query('web', 7))], 1, '127.0.0.2');
  t.is(other.length, 1, 'another client still gets an answer');
  t.deepEqual(dnsPacket.decode(other[0]!).answers!.map((a) => rdata(a)), ['100.64.1.2']);
  const hogAgain = await tcpExchange(shared.port, [frame(query('web', 8))], 1, '127.0.0.1');
  t.is(hogAgain.length, 0, 'the hog gets no fifth connection');
  for (const socket of hog) socket.destroy();
  await Promise.all(hogClosed);
  const afterwards = await eventuallyAnswered(shared.port, '127.0.0.1');
  t.true(afterwards, 'once it closes them, the hog is served again');
});

async function eventuallyAnswered(port: number, localAddress: string): Promise<boolean> {
  for (let i = 0; i < 50; i++) {
    if ((await tcpExchange(port, [frame(query('web', 9))], 1, localAddress)).length === 1) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

test.serial('cached answers last until invalidate()', async (t) => {
  let vip = '100.64.1.2';
  const mutable = await extraServer({
    resolve: (client, question) => answerQuestion({ networks: [{ ...view.networks[0]!, services: [{ name: 'web', mode: 'vip', vip, ports: [], backends: [] }] }] }, question, { ttl: 5, random: Math.random }),
  });
  // +nocookie: dig's random client cookie would make every query's bytes (the cache key) new.
  t.deepEqual((await digAt(mutable.port, '+short', '+nocookie', 'web')).lines, ['100.64.1.2']);
  vip = '100.64.1.3';
  t.deepEqual((await digAt(mutable.port, '+short', '+nocookie', 'web')).lines, ['100.64.1.2'], 'served from the cache');
  t.is(mutable.stats().cached, 1);
  mutable.invalidate();
  t.deepEqual((await digAt(mutable.port, '+short', '+nocookie', 'web')).lines, ['100.64.1.3']);
});

test.serial('queries are counted by question type, cache hits included, and every reply is timed', async (t) => {
  const counted = await extraServer({});
  for (const args of [['web'], ['web'], ['AAAA', 'web'], ['SRV', '_tcp.web'], ['-x', '100.64.1.5'], ['TXT', 'web'], ['web.outside.test']]) {
    await digAt(counted.port, '+short', '+nocookie', ...args);
  }
  await udpExchange(counted.port, [Buffer.from([1, 2, 3])]); // dropped: no question, so no type
  const stats = counted.stats();
  t.deepEqual(stats.byType, { A: 3, AAAA: 1, SRV: 1, PTR: 1, other: 1 });
  t.is(stats.cached, 1, 'the second `web` came from the cache and was still counted as A');
  t.is(stats.latency.count, stats.queries, 'one latency observation per query, forwarded and dropped included');
  t.is(stats.latency.cumulative.at(-1), stats.queries, 'the +Inf bucket holds them all');
  t.is(stats.latency.cumulative.length, stats.latencyBounds.length + 1);
  t.true(stats.latency.sum > 0);
});

test('upstreams from resolv.conf: only well-formed IPv4 nameserver lines, own addresses excluded, at most three', (t) => {
  const text = 'search example\nnameserver 10.0.0.2\nnameserver  10.0.0.3 # comment\r\nnameserver ::1\nnameserver 999.1.1.1\nnameserver 010.1.1.1\nnameserverx 1.1.1.1\n# nameserver 9.9.9.9\nnameserver 172.31.255.1\nnameserver 10.0.0.2\nnameserver 10.0.0.4 extra\n';
  t.deepEqual(readUpstreams(text, ['172.31.255.1']), ['10.0.0.2', '10.0.0.3']);
  t.deepEqual(readUpstreams('\u0000\u0001garbage\nnameserver\nnameserver \n'), []);
  t.deepEqual(readUpstreams('nameserver 1.1.1.1\nnameserver 1.1.1.2\nnameserver 1.1.1.3\nnameserver 1.1.1.4\n'), ['1.1.1.1', '1.1.1.2', '1.1.1.3']);
});
