// The DNS query path without sockets (dataplane/dns/query.ts): inputs the
// fuzzer (bench/fuzz.ts) found mishandled, each minimized, plus the rule they
// broke: a reply echoes the question exactly as asked (RFC 1035 §4.1.2;
// stub resolvers drop a reply whose question differs, so the client times out).
import test from 'ava';
import * as dnsPacket from 'dns-packet';
import { createQueryHandler, type DnsClient } from '../../dataplane/dns/query.ts';
import { Forwarder } from '../../dataplane/dns/forwarder.ts';
import { answerQuestion } from '../../controlplane/services/dns-answers.ts';
import { questionEnd } from '../../dataplane/dns/wire.ts';
import { AnswerCache } from '../../dataplane/dns/answer-cache.ts';
import { VIEW } from '../helpers/fuzz/targets-dns.ts';

const client: DnsClient = { address: '172.31.255.2', port: 40_000, transport: 'udp' };

function handler() {
  const forwarder = new Forwarder({ upstreams: () => [], timeoutMs: 100, maxInFlight: 4 });
  return createQueryHandler((_c, question) => answerQuestion(VIEW, question, { ttl: 5, random: Math.random }), forwarder, 100);
}

async function ask(hex: string): Promise<{ query: Buffer; reply: Buffer }> {
  const query = Buffer.from(hex, 'hex');
  const reply = await handler().handle(query, client);
  if (!reply) throw new Error('no reply');
  return { query, reply };
}

const question = (message: Buffer): string => message.subarray(12, questionEnd(message)).toString('hex');

test('a label that is not UTF-8 is echoed byte for byte, not as U+FFFD (fuzz: dns.query)', async (t) => {
  // AAAA for the one label ff 62: dns-packet decodes it to "\ufffdb" and re-encoded it as ef bf bd 62.
  const { query, reply } = await ask('001b0100000100000000000002ff6200001c0001');
  t.is(question(reply), question(query));
  t.is(dnsPacket.decode(reply).id, 0x1b);
});

test('a label of 63 non-UTF-8 bytes does not become an undecodable reply (fuzz: dns.query)', async (t) => {
  // Re-encoded, each byte became three: a 189-byte "label" whose length octet reads as a reserved label type.
  const { query, reply } = await ask(`0002010000010000000000003f${'ff'.repeat(63)}0000010001`);
  t.notThrows(() => dnsPacket.decode(reply));
  t.is(question(reply), question(query));
});

test('a label holding a dot is echoed as one label (fuzz: dns.tcp-stream)', async (t) => {
  // The single label "a.b" decodes to the name a.b, which re-encodes as two labels.
  const { query, reply } = await ask('00030100000100000000000003612e620000010001');
  t.is(question(reply), question(query));
});

test('a question of an unknown class is echoed with that class, not class 0', async (t) => {
  const { query, reply } = await ask('000401000001000000000000037765620000010009');
  t.is(question(reply), question(query));
});

test('a question that uses a compression pointer gets FORMERR without a question', async (t) => {
  // "web" then a pointer into the header (offset 5: a one-byte label, then the root).
  const { reply } = await ask('00050100000100000000000003776562c00500010001');
  const decoded = dnsPacket.decode(reply);
  t.is((decoded.flags ?? 0) & 0x0f, 1); // FORMERR
  t.deepEqual(decoded.questions, []);
});

test('the answer cache is bounded in bytes, not only in entries: 10,000 large TCP answers do not stay cached', (t) => {
  // A sandbox can ask for one big answer (a service with many backends, over
  // TCP: up to 64 KB) under thousands of spellings (case), each its own entry.
  const cache = new AnswerCache(10_000);
  const answer = Buffer.alloc(60_000);
  answer.writeUInt16BE(1, 4); // QDCOUNT, so answerBounds reads it as a reply
  for (let i = 0; i < 10_000; i++) cache.set(`tcp|172.31.255.2|${i}`, answer);
  const cached = cache.size * answer.length;
  t.true(cached <= 32 * 1024 * 1024, `${cache.size} answers, ${cached} bytes cached`);
});
