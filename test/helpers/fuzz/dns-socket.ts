// The DNS server's real sockets under fuzzed traffic: a real server on
// loopback gets the dns.query inputs as UDP datagrams and the dns.tcp-stream
// inputs as TCP connections (each stream written in one go, then closed).
// Every reply must pass the same oracle as the socket-free targets; a probe
// for a cluster name must still be answered over UDP and TCP after every
// batch, within the hang limit. No reply for an input is fine (dropped
// packets, closed connections): silence is a valid answer to garbage.
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import * as dnsPacket from 'dns-packet';
import { startDnsServer } from '../../../dataplane/dns/server.ts';
import { answerQuestion } from '../../../controlplane/services/dns-answers.ts';
import { TcpFrames, frame } from '../../../dataplane/dns/tcp-frames.ts';
import { checkReply, VIEW } from './targets-dns.ts';
import { describe, hex, HANG_MS, type TargetStats } from './run.ts';
import { makeInput, type FuzzTarget } from './target.ts';

const BATCH = 200;
const PROBE = Buffer.from(dnsPacket.encode({ type: 'query', id: 0xbeef, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: 'web', class: 'IN' }] }));

export async function fuzzDnsSockets(udpTarget: FuzzTarget, tcpTarget: FuzzTarget, inputs: number, seed: number): Promise<TargetStats> {
  const server = await startDnsServer({
    address: '127.0.0.1', port: 0, upstreams: () => [], upstreamTimeoutMs: 200,
    resolve: (_client, question) => answerQuestion(VIEW, question, { ttl: 5, random: Math.random }),
  });
  const stats: TargetStats = {
    target: 'dns.sockets', group: 'dns', rejects: 'none: replies well-formed, server keeps answering', inputs: 0, accepted: 0, rejected: 0,
    crashes: 0, hangs: 0, slowestMs: 0, seconds: 0, maxRssMb: 0, heapMb: [], findings: [],
  };
  const began = performance.now();
  const client = createSocket('udp4');
  await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve));
  const sent = new Map<number, Uint8Array>();
  client.on('message', (reply) => {
    const query = sent.get(reply.readUInt16BE(0));
    if (reply.readUInt16BE(0) === 0xbeef || !query) return;
    try {
      checkReply(query, reply, 'udp');
    } catch (error) {
      record(stats, 'crash', describe(error), -1, query);
    }
  });
  try {
    const tcpShare = Math.floor(inputs / 10);
    for (let index = 0; index < inputs - tcpShare; index += BATCH) {
      sent.clear();
      for (let i = index; i < Math.min(inputs - tcpShare, index + BATCH); i++) {
        // Unique IDs within a batch, so each reply is checked against its own query.
        const input = Uint8Array.from(makeInput(udpTarget, seed, i));
        if (input.length >= 2) {
          const id = (i % BATCH) + 1;
          input[0] = id >> 8;
          input[1] = id & 0xff;
          sent.set(id, input);
        }
        client.send(input, server.port, '127.0.0.1');
        stats.inputs++;
      }
      await probe(server.port, stats, index);
    }
    for (let index = 0; index < tcpShare; index++) {
      await tcpStream(server.port, makeInput(tcpTarget, seed, index), stats, index);
      stats.inputs++;
      if (index % BATCH === BATCH - 1) await probe(server.port, stats, index);
    }
    await probe(server.port, stats, inputs);
  } finally {
    client.close();
    await server.close();
  }
  stats.accepted = stats.inputs - stats.crashes;
  stats.seconds = Math.round((performance.now() - began) / 100) / 10;
  stats.maxRssMb = Math.round(process.memoryUsage().rss / 1024 / 1024);
  return stats;
}

function record(stats: TargetStats, kind: 'crash' | 'hang', message: string, index: number, input: Uint8Array): void {
  stats[kind === 'crash' ? 'crashes' : 'hangs']++;
  if (stats.findings.length < 5) stats.findings.push({ index, kind, message, input: hex(input), bytes: input.length, ms: 0 });
}

/** The server must still answer a cluster name, over UDP and over TCP, within the hang limit. */
async function probe(port: number, stats: TargetStats, index: number): Promise<void> {
  const t0 = performance.now();
  const udp = await udpAsk(port, PROBE).catch((error: Error) => error);
  const tcp = await tcpAsk(port, PROBE).catch((error: Error) => error);
  const ms = performance.now() - t0;
  stats.slowestMs = Math.max(stats.slowestMs, ms);
  for (const [transport, reply] of [['udp', udp], ['tcp', tcp]] as const) {
    if (reply instanceof Error) record(stats, 'crash', `server stopped answering over ${transport} after input ${index}: ${reply.message}`, index, PROBE);
    else if ((dnsPacket.decode(reply).answers?.[0] as { data?: string } | undefined)?.data !== '100.64.1.2') record(stats, 'crash', `wrong answer over ${transport} after input ${index}`, index, reply);
  }
  if (ms <= HANG_MS * 2) return;
  // Slow once may be the machine (other processes on the cores); a server that is slow is slow again.
  const t1 = performance.now();
  await udpAsk(port, PROBE).catch(() => undefined);
  await tcpAsk(port, PROBE).catch(() => undefined);
  const again = performance.now() - t1;
  if (again > HANG_MS * 2) record(stats, 'hang', `probe took ${ms.toFixed(0)} ms after input ${index}, then ${again.toFixed(0)} ms again`, index, PROBE);
}

function udpAsk(port: number, query: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    const timer = setTimeout(() => done(new Error('no UDP answer within 5 s')), 5_000);
    const done = (result: Buffer | Error): void => {
      clearTimeout(timer);
      socket.close();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.on('message', (reply) => done(reply));
    socket.send(query, port, '127.0.0.1');
  });
}

function tcpAsk(port: number, query: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port });
    const frames = new TcpFrames();
    const timer = setTimeout(() => done(new Error('no TCP answer within 5 s')), 5_000);
    const done = (result: Buffer | Error): void => {
      clearTimeout(timer);
      socket.destroy();
      if (result instanceof Error) reject(result);
      else resolve(result);
    };
    socket.once('connect', () => socket.write(frame(query)));
    socket.on('data', (chunk) => {
      const [reply] = frames.push(chunk);
      if (reply) done(reply);
    });
    socket.once('error', (error) => done(error));
  });
}

/** One fuzzed stream on its own connection; every reply it gets must pass the oracle. */
function tcpStream(port: number, input: Uint8Array, stats: TargetStats, index: number): Promise<void> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const frames = new TcpFrames();
    const queries = new TcpFrames().push(Buffer.from(input));
    const timer = setTimeout(() => socket.destroy(), 300);
    socket.once('connect', () => socket.end(input));
    socket.on('data', (chunk) => {
      for (const reply of frames.push(chunk)) {
        // IDs may repeat within a fuzzed stream: the reply must fit one of the queries with its ID.
        const candidates = queries.filter((q) => q.length >= 2 && q.readUInt16BE(0) === reply.readUInt16BE(0));
        const errors = candidates.map((query) => {
          try {
            checkReply(query, reply, 'tcp');
            return undefined;
          } catch (error) {
            return describe(error);
          }
        });
        if (candidates.length === 0) record(stats, 'crash', 'TCP reply with an ID no query had', index, input);
        else if (errors.every((e) => e !== undefined)) record(stats, 'crash', errors[0]!, index, input);
      }
    });
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}
