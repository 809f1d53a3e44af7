// The embedded DNS server on loopback, with real dig and raw sockets: local
// answers, TCP and truncation, EDNS, forwarding with failover, and hostile
// input followed by a flood, after which it still answers.
import test from 'ava';
import type { Answer } from 'dns-packet';
import { execa } from 'execa';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, connect, type Server } from 'node:net';
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
    ],
    endpoints: [{ name: 'web-1', aliases: [], ip: '100.64.1.5' }, { name: 'web-2', aliases: [], ip: '100.64.1.6' }],
  }],
};

let server: DnsServer;
let upstream: { udp: Socket; tcp: Server; port: number; queries: number };
let silent: Socket;

/** A tiny upstream: every name under outside.test is 198.18.7.7. */
async function startUpstream(): Promise<typeof upstream> {
  const answer = (query: Buffer): Buffer => {
    const q = dnsPacket.decode(query);
    const question = q.questions![0]!;
    return dnsPacket.encode({ type: 'response', id: q.id, flags: dnsPacket.RECURSION_AVAILABLE, questions: [question], answers: question.name.endsWith('outside.test') && question.type === 'A' ? [{ type: 'A', name: question.name, ttl: 60, data: '198.18.7.7' }] : [] });
  };
  const state = { queries: 0 };
  const udp = createSocket('udp4');
  udp.on('message', (m, r) => {
    state.queries++;
    udp.send(answer(m), r.port, r.address);
  });
  await new Promise<void>((resolve) => udp.bind(0, '127.0.0.1', resolve));
  const port = udp.address().port;
  const tcp = createServer((socket) => {
    const frames = new TcpFrames();
    socket.on('data', (chunk) => frames.push(chunk).forEach((m) => socket.write(frame(answer(m)))));
    socket.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => tcp.listen(port, '127.0.0.1', resolve));
  return Object.assign(state, { udp, tcp, port });
}

test.before(async () => {
  upstream = await startUpstream();
  silent = createSocket('udp4');
  await new Promise<void>((resolve) => silent.bind(0, '127.0.0.1', resolve));
  server = await startDnsServer({
    address: '127.0.0.1',
    port: 0,
    resolve: (client, question) => (client.address === '127.0.0.1' ? answerQuestion(view, question, { ttl: 5, random: Math.random }) : undefined),
    upstreams: () => [`127.0.0.1:${silent.address().port}`, `127.0.0.1:${upstream.port}`],
    upstreamTimeoutMs: 300,
  });
});

test.after.always(async () => {
  await server?.close();
  upstream?.udp.close();
  upstream?.tcp.close();
  silent?.close();
});

async function dig(...args: string[]): Promise<{ out: string; lines: string[] }> {
  const r = await execa('dig', ['@127.0.0.1', '-p', String(server.port), '+time=3', '+tries=1', ...args], { reject: false });
  const out = String(r.stdout);
  return { out, lines: out.split('\n').filter((l) => l.trim() !== '' && !l.startsWith(';')) };
}

test.serial('answers cluster names over UDP, case-insensitively, shuffled', async (t) => {
  t.deepEqual((await dig('+short', 'web')).lines, ['100.64.1.2']);
  t.deepEqual((await dig('+short', 'WeB')).lines, ['100.64.1.2']);
  const orders = new Set<string>();
  for (let i = 0; i < 8; i++) {
    const lines = (await dig('+short', 'tasks.web')).lines;
    t.deepEqual([...lines].sort(), ['100.64.1.5', '100.64.1.6']);
    orders.add(lines.join(','));
  }
  t.is(orders.size, 2, 'both orders show up in 8 tries (a 1-in-128 chance to fail by bad luck)');
  t.regex((await dig('nosuch')).out, /status: NXDOMAIN/);
  t.regex((await dig('AAAA', 'web')).out, /status: NOERROR.*\n.*ANSWER: 0/);
});

test.serial('a large answer is truncated over UDP and dig gets all of it over TCP; EDNS raises the UDP limit', async (t) => {
  const plain = await dig('+noedns', '+ignore', 'big');
  t.regex(plain.out, /flags:[^;]* tc[ ;]/);
  const retried = await dig('+noedns', '+short', 'big');
  t.is(retried.lines.length, 60, 'dig retried over TCP');
  const edns = await dig('+bufsize=4096', 'big');
  t.notRegex(edns.out, /flags:[^;]* tc[ ;]/);
  t.regex(edns.out, /OPT PSEUDOSECTION/);
  t.regex(edns.out, /ANSWER: 60/);
  t.deepEqual((await dig('+tcp', '+short', 'web')).lines, ['100.64.1.2']);
});

test.serial('other names go upstream, past an upstream that never answers, over UDP and TCP', async (t) => {
  t.deepEqual((await dig('+short', 'www.outside.test')).lines, ['198.18.7.7']);
  t.deepEqual((await dig('+short', '+tcp', 'api.outside.test')).lines, ['198.18.7.7']);
});

test.serial('SERVFAIL when no upstream answers; REFUSED for a client it does not serve', async (t) => {
  const lonely = await startDnsServer({ address: '127.0.0.1', port: 0, resolve: (c, q) => (c.address === '127.0.0.1' ? { kind: 'forward' } : undefined), upstreams: () => [`127.0.0.1:${silent.address().port}`], upstreamTimeoutMs: 200 });
  t.teardown(() => lonely.close());
  const r = await execa('dig', ['@127.0.0.1', '-p', String(lonely.port), '+time=3', '+tries=1', 'example.org'], { reject: false });
  t.regex(String(r.stdout), /status: SERVFAIL/);
  const stranger = await execa('dig', ['@127.0.0.1', '-p', String(server.port), '-b', '127.0.0.2', '+time=3', '+tries=1', 'web'], { reject: false });
  t.regex(String(stranger.stdout), /status: REFUSED/);
});

/** Sends the packets in bursts of `burst` (all in flight together within a few tens of ms), collects replies for waitMs. */
function udpExchange(packets: Buffer[], waitMs = 300, burst = packets.length): Promise<Buffer[]> {
  return new Promise((resolve) => {
    const socket = createSocket('udp4');
    const replies: Buffer[] = [];
    socket.on('message', (m) => replies.push(m));
    socket.bind(0, '127.0.0.1', () => {
      setTimeout(() => {
        socket.close();
        resolve(replies);
      }, waitMs);
      void (async () => {
        for (let i = 0; i < packets.length; i += burst) {
          for (const p of packets.slice(i, i + burst)) socket.send(p, server.port, '127.0.0.1', () => undefined);
          if (i + burst < packets.length) await new Promise((r) => setTimeout(r, 10));
        }
      })();
    });
  });
}

const query = (name: string, id: number): Buffer => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name }] });

test.serial('garbage, truncated, oversized and response packets never break it', async (t) => {
  const good = query('web', 4242);
  const garbage = [
    Buffer.alloc(0),
    Buffer.from([1, 2, 3]),
    good.subarray(0, good.length - 3),
    Buffer.concat([good.subarray(0, 12), Buffer.alloc(200, 0xff)]),
    Buffer.alloc(10_000, 0x41),
    dnsPacket.encode({ type: 'response', id: 7, questions: [{ type: 'A', name: 'web' }], answers: [] }),
    dnsPacket.encode({ type: 'query', id: 8, questions: [{ type: 'A', name: 'web' }, { type: 'A', name: 'web-1' }] }),
    Buffer.from(good.map((b, i) => (i === 2 ? b | 0x28 : b))), // opcode 5 (UPDATE)
  ];
  const replies = await udpExchange(garbage);
  for (const reply of replies) t.true(reply.length >= 12);
  const rcodes = replies.map((r) => r[3]! & 0x0f);
  t.true(rcodes.every((c) => c === 1 || c === 4), `only FORMERR/NOTIMP replies, got ${rcodes.join(',')}`);
  // TCP: a 65535-byte garbage frame, a half frame, then a good query on a new connection.
  await new Promise<void>((resolve) => {
    const socket = connect(server.port, '127.0.0.1', () => {
      socket.write(frame(Buffer.alloc(65_535, 0x42)));
      socket.write(Buffer.from([0x00]));
      socket.end();
    });
    socket.resume(); // read (and drop) the FORMERR reply, so the server's FIN is seen and the socket closes
    socket.on('error', () => resolve());
    socket.on('close', () => resolve());
  });
  const after = await udpExchange([good]);
  t.is(after.length, 1);
  t.is(rdata(dnsPacket.decode(after[0]!).answers![0]!), '100.64.1.2');
});

test.serial('a flood of 2000 concurrent queries (local and forwarded) leaves it answering', async (t) => {
  const packets = Array.from({ length: 2000 }, (_, i) => query(i % 4 === 0 ? `n${i}.outside.test` : i % 2 === 0 ? 'web' : 'tasks.web', i));
  // Bursts of 100: one socket's receive buffer (rmem_max, ~212 KB) holds ~256 datagrams, so a
  // single 2000-packet burst from one sender measures the kernel, not the resolver.
  const replies = await udpExchange(packets, 4_000, 100);
  t.true(replies.length >= 1900, `answered ${replies.length} of 2000`);
  const ids = new Set(replies.map((r) => r.readUInt16BE(0)));
  t.is(ids.size, replies.length, 'one reply per query, each with its own ID');
  t.deepEqual((await dig('+short', 'web')).lines, ['100.64.1.2']);
  t.deepEqual((await dig('+short', 'x.outside.test')).lines, ['198.18.7.7']);
  const stats = server.stats();
  t.true(stats.queries >= 2000);
});

test('upstreams from resolv.conf: only well-formed IPv4 nameserver lines, own addresses excluded', (t) => {
  const text = 'search example\nnameserver 10.0.0.2\nnameserver  10.0.0.3 # comment\nnameserver ::1\nnameserver 999.1.1.1\nnameserverx 1.1.1.1\n# nameserver 9.9.9.9\nnameserver 172.31.255.1\nnameserver 10.0.0.2\n';
  t.deepEqual(readUpstreams(text, ['172.31.255.1']), ['10.0.0.2', '10.0.0.3']);
  t.deepEqual(readUpstreams('\u0000\u0001garbage'), []);
});
