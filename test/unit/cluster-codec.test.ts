import test from 'ava';
import fc from 'fast-check';
import { decodeEnvelope, decodeSnapshot, encodeEnvelope, encodeSnapshot, FrameError, isDigestOnly, MAX_FRAME_BYTES } from '../../agent/wire/cluster-codec.ts';

const id = 'f'.repeat(32);
const member = {
  nodeId: id, name: 'h1', peerId: '12D3KooW', address: '198.18.0.1', gossipPort: 7946, admissionPort: 2377,
  certificate: new Uint8Array([1, 2, 3]), version: 4, status: 'active' as const, changedBy: id,
};

test('an envelope round-trips', (t) => {
  const decoded = decodeEnvelope(encodeEnvelope({ members: [member] }));
  t.deepEqual(decoded.members[0], member);
});

test('random bytes never crash the decoder: they decode or raise FrameError', (t) => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 512 }), (bytes) => {
      try {
        decodeSnapshot(bytes);
      } catch (error) {
        t.true(error instanceof FrameError, String(error));
      }
    }),
    { numRuns: 2000 },
  );
});

test('a record with a bad field is refused and the field is named', (t) => {
  const bad = encodeEnvelope({ members: [{ ...member, address: 'not-an-ip' }] });
  t.throws(() => decodeEnvelope(bad), { instanceOf: FrameError, message: /address/ });
  const badStatus = encodeEnvelope({ members: [{ ...member, status: 'zombie' as never }] });
  t.throws(() => decodeEnvelope(badStatus), { instanceOf: FrameError, message: /status/ });
});

test('oversized frames are refused before decoding', (t) => {
  t.throws(() => decodeEnvelope(new Uint8Array(MAX_FRAME_BYTES + 1)), { instanceOf: FrameError, message: /exceeds/ });
});

test('a digest round snapshot carries its two digests and no summary', (t) => {
  const rosterDigest = new Uint8Array(16).fill(7);
  const membershipDigest = new Uint8Array(16).fill(9);
  const decoded = decodeSnapshot(encodeSnapshot({ members: [], rosterDigest, membershipDigest }));
  t.deepEqual(decoded.rosterDigest, rosterDigest);
  t.deepEqual(decoded.membershipDigest, membershipDigest);
  t.is(decoded.summary, undefined);
  t.true(isDigestOnly(decoded));
  const full = decodeSnapshot(encodeSnapshot({ members: [], summary: [{ nodeId: id, version: 1, status: 'active', changedBy: id }] }));
  t.is(full.rosterDigest, undefined);
  t.false(isDigestOnly(full));
});

test('a digest of the wrong length is refused and named', (t) => {
  t.throws(() => decodeSnapshot(encodeSnapshot({ members: [], rosterDigest: new Uint8Array(15).fill(1) })), { instanceOf: FrameError, message: /roster digest/ });
  t.throws(() => decodeSnapshot(encodeSnapshot({ members: [], rosterDigest: new Uint8Array(16), membershipDigest: new Uint8Array(300).fill(1) })), { instanceOf: FrameError, message: /membership digest/ });
});
