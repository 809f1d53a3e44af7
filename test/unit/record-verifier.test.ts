// The record verifier's cache: verdicts on certificates that arrive in gossip
// and sync are kept, but never more than MAX_CACHED_VERDICTS of them.
import test from 'ava';
import { MAX_CACHED_VERDICTS, RecordVerifier } from '../../agent/cluster/record-verifier.ts';
import type { MemberRecord } from '../../controlplane/cluster/roster.ts';

const record = (i: number): MemberRecord => ({
  nodeId: i.toString(16).padStart(32, '0'), name: `h${i}`, peerId: `peer-${i}`, address: '198.18.0.9', gossipPort: 7946, admissionPort: 2377,
  certificate: new Uint8Array([0x30, i & 0xff, (i >> 8) & 0xff]), version: 1, status: 'active', changedBy: 'x',
});

test('certificates that fail are refused with a reason, and the verdict cache stays bounded', async (t) => {
  const verifier = new RecordVerifier(new Uint8Array([0x30, 0x00]));
  for (let i = 0; i < MAX_CACHED_VERDICTS + 500; i++) t.truthy(await verifier.verify(record(i)));
  t.true(verifier.cached <= MAX_CACHED_VERDICTS, `cached ${verifier.cached}`);
  // A verdict still cached is answered the same way.
  t.truthy(await verifier.verify(record(MAX_CACHED_VERDICTS + 499)));
});
