// Fuzz targets for the embedded DNS server, fed bytes directly (no sockets):
//   dns.query           one datagram through the whole query path (header
//                       checks, decode, cache, the cluster's answers, reply
//                       encoding); the forward path ends in SERVFAIL here
//   dns.tcp-stream      a TCP byte stream cut into chunks, split into messages
//                       and answered as the TCP server does
//   dns.upstream-reply  what the forwarder reads of an upstream's reply
// The query path promises never to throw, so every exception is a finding;
// its replies must also be well-formed (oracle): they decode, carry the
// query's ID and question as asked, and fit the client's UDP size.
import * as dnsPacket from 'dns-packet';
import { answerQuestion, type DnsClientView } from '../../../controlplane/services/dns-answers.ts';
import { createQueryHandler, MIN_UDP_PAYLOAD, MAX_UDP_PAYLOAD, type DnsClient, type QueryHandler } from '../../../dataplane/dns/query.ts';
import { Forwarder } from '../../../dataplane/dns/forwarder.ts';
import { TcpFrames, frame } from '../../../dataplane/dns/tcp-frames.ts';
import { answerBounds, isResponse, questionEnd, rcode, sameQuestion, truncatedCopy } from '../../../dataplane/dns/wire.ts';
import { OracleError, type FuzzTarget } from './target.ts';
import { concat, mutateBytes } from './mutate.ts';
import type { Random } from './random.ts';

export const VIEW: DnsClientView = {
  networks: [
    {
      name: 'app',
      subnet: '100.64.1.0/24',
      services: [
        { name: 'web', mode: 'vip', vip: '100.64.1.2', ports: [{ port: 80, protocol: 'tcp' }, { port: 53, protocol: 'udp' }], backends: [{ ip: '100.64.1.10', name: 'web-1' }, { ip: '100.64.1.11', name: 'web-2' }] },
        { name: 'db', mode: 'dnsrr', vip: '', ports: [{ port: 5432, protocol: 'tcp' }], backends: Array.from({ length: 40 }, (_, i) => ({ ip: `100.64.1.${20 + i}`, name: `db-${i}` })) },
      ],
      endpoints: [
        { name: 'web-1', aliases: ['front', 'Shop.Example'], ip: '100.64.1.10' },
        { name: 'web-2', aliases: [], ip: '100.64.1.11' },
        ...Array.from({ length: 40 }, (_, i) => ({ name: `db-${i}`, aliases: [], ip: `100.64.1.${20 + i}` })),
      ],
    },
    { name: 'other', subnet: '100.64.2.0/24', services: [], endpoints: [{ name: 'web-1', aliases: [], ip: '100.64.2.5' }] },
  ],
};

const NAMES = [
  'web', 'WEB', 'web.app', 'tasks.web', 'tasks.db', 'db', '100-64-1-20.tasks.db', '_http._tcp.web', '_80._tcp.web', '_5432._tcp.tasks.db',
  'web-1', 'front.app', 'shop.example', 'nothing.app', 'example.com', '10.1.64.100.in-addr.arpa', '2.1.64.100.in-addr.arpa', '.', 'app', 'web.other',
];
const TYPES = ['A', 'AAAA', 'SRV', 'PTR', 'ANY', 'TXT', 'MX', 'CNAME', 'NS', 'SOA'] as const;

function query(name: string, type: string, id: number, options: { edns?: number; version?: number; flags?: number; extra?: boolean } = {}): Uint8Array {
  const additionals = options.edns === undefined ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: options.edns, extendedRcode: 0, ednsVersion: options.version ?? 0, flags: 0, options: [] }];
  const questions = [{ type, name, class: 'IN' }, ...(options.extra ? [{ type: 'A', name: 'web', class: 'IN' }] : [])];
  return dnsPacket.encode({ type: 'query', id, flags: options.flags ?? dnsPacket.RECURSION_DESIRED, questions, additionals } as unknown as dnsPacket.Packet);
}

function querySeeds(): Uint8Array[] {
  const seeds: Uint8Array[] = [];
  let id = 1;
  for (const name of NAMES) for (const type of TYPES.slice(0, 5)) seeds.push(query(name, type, id++, id % 3 === 0 ? { edns: 1232 } : {}));
  seeds.push(query('web', 'A', 7, { edns: 4096, version: 1 }), query('web', 'A', 8, { extra: true }), query('db', 'A', 9, { edns: 100 }), query('tasks.db', 'SRV', 10, { edns: 65_535 }));
  return seeds;
}

const HOSTILE_NAMES = [
  'a'.repeat(63), `${'a'.repeat(63)}.${'b'.repeat(63)}.${'c'.repeat(63)}.${'d'.repeat(61)}`, Array.from({ length: 127 }, () => 'x').join('.'),
  '\u00e9t\u00e9.app', 'web\\.app', '*.app', '-.tasks.web', '999-999-999-999.tasks.db', '1-2-3.tasks.db', '_.web', '_99999._tcp.web', '_http._sctp.web',
  '1.1.1.1.1.1.in-addr.arpa', '256.1.64.100.in-addr.arpa', 'in-addr.arpa', 'tasks.', 'tasks', 'TASKS.WEB', 'web..app', ' .web',
];

/** One field of a decodable query changed (names, types, classes, flags, EDNS), else bytes. */
export function mutateDnsQuery(seed: Uint8Array, random: Random): Uint8Array {
  let packet: dnsPacket.DecodedPacket;
  try {
    packet = dnsPacket.decode(Buffer.from(seed));
  } catch {
    return mutateBytes(seed, random);
  }
  const q = packet.questions?.[0] ?? { name: 'web', type: 'A' as const };
  const questions: dnsPacket.Question[] = [...(packet.questions ?? [])];
  const additionals = [...(packet.additionals ?? [])];
  switch (random.int(9)) {
    case 0:
      questions[0] = { ...q, name: random.pick(HOSTILE_NAMES) };
      break;
    case 1:
      questions[0] = { ...q, type: `UNKNOWN_${random.int(65_536)}` as dnsPacket.RecordType };
      break;
    case 2:
      questions[0] = { ...q, class: random.pick(['CH', 'HS', 'ANY', 'CS']) as dnsPacket.RecordClass };
      break;
    case 3:
      packet = { ...packet, flags: random.int(65_536) & ~0x8000 };
      break;
    case 4:
      questions.push(...Array.from({ length: 1 + random.int(3) }, () => ({ ...q })));
      break;
    case 5:
      additionals.push({ type: 'OPT', name: '.', udpPayloadSize: random.pick([0, 1, 511, 512, 4096, 65_535]), extendedRcode: 0, ednsVersion: random.pick([0, 0, 1, 255]), flags: 0, options: [] } as unknown as dnsPacket.Answer);
      break;
    case 6:
      (packet as { answers?: dnsPacket.Answer[] }).answers = [{ type: 'A', name: q.name, ttl: 5, data: '192.0.2.1' }];
      break;
    case 7:
      additionals.push({ type: 'TXT', name: 'x', ttl: 1, data: 'y'.repeat(random.int(300)) } as dnsPacket.Answer);
      break;
    default:
      return rawHeaderMutation(seed, random);
  }
  try {
    return dnsPacket.encode({ ...packet, type: 'query', questions, additionals } as dnsPacket.Packet);
  } catch {
    return mutateBytes(seed, random);
  }
}

/** Counts that lie, compression pointers into the header or at themselves, odd label bytes. */
function rawHeaderMutation(seed: Uint8Array, random: Random): Uint8Array {
  const out = Uint8Array.from(seed);
  if (out.length < 12) return out;
  switch (random.int(4)) {
    case 0: {
      const at = random.pick([4, 6, 8, 10]);
      const value = random.pick([0, 1, 2, 0xffff, 0x7fff]);
      out[at] = value >> 8;
      out[at + 1] = value & 0xff;
      return out;
    }
    case 1:
      return concat(out.subarray(0, 12), new Uint8Array([0xc0, random.pick([0, 2, 4, 11, 12])]), out.subarray(out.length - 4));
    case 2:
      if (out.length > 13) out[13 + random.int(Math.max(1, Math.min(out[12]!, out.length - 13)))] = random.pick([0x2e, 0x00, 0xff, 0xc3, 0x5c, 0x20]);
      return out;
    default:
      return concat(out.subarray(0, 12), new Uint8Array([0x40 | random.int(0x40)]), out.subarray(13));
  }
}

/** The reply must be one a stub resolver accepts as the answer to this query. */
export function checkReply(queryBytes: Uint8Array, reply: unknown, transport: 'udp' | 'tcp'): void {
  if (reply === undefined) return;
  if (!Buffer.isBuffer(reply)) throw new OracleError(`reply is ${typeof reply}, not a Buffer`);
  let decoded: dnsPacket.DecodedPacket;
  try {
    decoded = dnsPacket.decode(reply);
  } catch (error) {
    throw new OracleError(`reply does not decode: ${(error as Error).message}`);
  }
  if (decoded.id !== ((queryBytes[0]! << 8) | queryBytes[1]!)) throw new OracleError('reply ID differs from the query ID');
  if (!isResponse(reply)) throw new OracleError('reply lacks QR');
  const end = questionEnd(queryBytes);
  if (end > 0 && (decoded.questions?.length ?? 0) > 0 && !Buffer.from(queryBytes.subarray(12, end)).equals(reply.subarray(12, end))) {
    throw new OracleError('reply does not echo the question as asked');
  }
  if (transport === 'udp') {
    let limit = MIN_UDP_PAYLOAD;
    try {
      const opt = dnsPacket.decode(Buffer.from(queryBytes)).additionals?.filter((r) => r.type === 'OPT') ?? [];
      if (opt.length === 1) limit = MAX_UDP_PAYLOAD;
    } catch {
      // an undecodable query gets a bare header
    }
    if (reply.length > limit) throw new OracleError(`UDP reply of ${reply.length} bytes exceeds the client's ${limit}`);
  }
}

function handler(): QueryHandler {
  const forwarder = new Forwarder({ upstreams: () => [], timeoutMs: 100, maxInFlight: 16 });
  return createQueryHandler((_client, question) => answerQuestion(VIEW, question, { ttl: 5, random: Math.random }), forwarder, 10_000);
}

const never = (): boolean => false;

export function dnsTargets(): FuzzTarget[] {
  const udp = handler();
  const tcp = handler();
  const seeds = querySeeds();
  const udpClient: DnsClient = { address: '172.31.255.2', port: 40_000, transport: 'udp' };
  const tcpClient: DnsClient = { address: '172.31.255.3', port: 40_001, transport: 'tcp' };
  const upstreamQuery = Buffer.from(query('example.com', 'A', 0x1234, { edns: 1232 }));
  const upstreamReplies = [
    { answers: [{ type: 'A', name: 'example.com', ttl: 60, data: '192.0.2.1' }] },
    { answers: [{ type: 'CNAME', name: 'example.com', ttl: 60, data: 'x.example.net' }, { type: 'A', name: 'x.example.net', ttl: 60, data: '192.0.2.2' }], additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, options: [] }] },
    { rcode: 'NXDOMAIN', answers: [] },
  ].map((r) => dnsPacket.encode({ type: 'response', id: 0x1234, flags: dnsPacket.RECURSION_DESIRED | dnsPacket.RECURSION_AVAILABLE, questions: [{ type: 'A', name: 'example.com', class: 'IN' }], ...r } as dnsPacket.Packet));

  return [
    {
      name: 'dns.query', group: 'dns', rejects: 'none: every input gets a well-formed reply or none',
      seeds, mutate: mutateDnsQuery, maxRandom: 600,
      run: async (input) => checkReply(input, await udp.handle(Buffer.from(input), udpClient), 'udp'),
      isClean: never,
    },
    {
      name: 'dns.tcp-stream', group: 'dns', rejects: 'none',
      seeds: [concat(...seeds.slice(0, 8).map((s) => frame(s))), frame(seeds[3]!), concat(frame(seeds[9]!), frame(seeds[10]!))],
      mutate: (seed, random) => (random.chance(0.5) ? mutateBytes(seed, random) : concat(...splitFrames(seed).map((m) => frame(mutateDnsQuery(m, random))))),
      maxRandom: 4096,
      run: async (input) => {
        const frames = new TcpFrames();
        for (let at = 0, step = 1; at < input.length; at += step, step = 1 + ((input[at] ?? 0) % 97)) {
          for (const message of frames.push(Buffer.from(input.subarray(at, at + step)))) checkReply(message, await tcp.handle(message, tcpClient), 'tcp');
          if (frames.pendingBytes > 65_537) throw new OracleError(`TCP framer holds ${frames.pendingBytes} bytes, more than one message`);
        }
      },
      isClean: never,
    },
    {
      name: 'dns.upstream-reply', group: 'dns', rejects: 'none: a reply that does not match is ignored',
      seeds: upstreamReplies,
      mutate: mutateBytes,
      maxRandom: 600,
      run: (input) => {
        const reply = Buffer.from(input);
        const matches = isResponse(reply) && sameQuestion(upstreamQuery, reply);
        const code = reply.length >= 4 ? rcode(reply) : -1;
        const bounds = answerBounds(reply);
        if (bounds && bounds.some((b) => b > reply.length)) throw new OracleError('answer bounds run past the reply');
        const truncated = truncatedCopy(reply);
        if (truncated && questionEnd(truncated) !== truncated.length) throw new OracleError('a truncated copy is not header + question');
        return [matches, code];
      },
      isClean: never,
    },
  ];
}

function splitFrames(stream: Uint8Array): Uint8Array[] {
  return new TcpFrames().push(Buffer.from(stream));
}
