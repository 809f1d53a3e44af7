// Wire codec for /weft/swim/1 packets and membership snapshots. The oneof
// field name of a SwimPacket is the message's `kind`; after protobuf decoding
// zod checks every field, so a hostile frame is refused whole.
import { z } from 'zod';
import type { SwimMessage, Snapshot as SwimSnapshot } from '../../controlplane/membership/index.ts';
import { SwimPacketType, SwimSnapshotType, decodePlain, encodePlain } from './protos.ts';
import { checkedDecode, FrameError } from './checked-decode.ts';

const MAX_SWIM_BYTES = 64 * 1024;
const MAX_SNAPSHOT_BYTES = 4 * 1024 * 1024;
const nodeId = z.string().regex(/^[0-9a-f]{32}$/, 'node IDs are 32 lower-case hex characters');
const address = z.string().max(200);
const seq = z.number().int().nonnegative().max(2 ** 32 - 1);
const state = z.enum(['alive', 'suspect', 'dead', 'left']);
const bytes = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'expected bytes');
// Empty means unsigned: such a claim cannot raise an incarnation (claim-signing.ts).
const signature = bytes.refine((b) => b.length <= 128, 'signatures are at most 128 bytes').optional();
const dropEmpty = <T extends { signature?: Uint8Array | undefined }>({ signature, ...rest }: T): Omit<T, 'signature'> & { signature?: Uint8Array } =>
  signature !== undefined && signature.length > 0 ? { ...rest, signature } : rest;
const update = z.object({ node: nodeId, address, incarnation: seq, state, from: nodeId, signature }).transform(dropEmpty);
const updates = z.array(update).max(512);

const packetSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('ping'), seq, target: nodeId, sourceAddress: address, updates }),
  z.object({ kind: z.literal('ack'), seq, updates }),
  z.object({ kind: z.literal('pingReq'), seq, target: nodeId, targetAddress: address, sourceAddress: address, nack: z.boolean(), updates }),
  z.object({ kind: z.literal('nack'), seq, updates }),
  z.object({ kind: z.literal('gossip'), updates }),
]);

const snapshotSchema = z.object({
  from: nodeId,
  members: z.array(z.object({ node: nodeId, address, incarnation: seq, state, signature }).transform(dropEmpty)).max(100_000),
});

export function encodeSwim(message: SwimMessage): Uint8Array {
  const { kind, ...body } = message;
  return encodePlain(SwimPacketType, { [kind]: body });
}

export function decodeSwim(data: Uint8Array): SwimMessage {
  if (data.length > MAX_SWIM_BYTES) throw new FrameError(`SWIM packet of ${data.length} bytes exceeds ${MAX_SWIM_BYTES}`);
  let plain: Record<string, unknown>;
  try {
    plain = decodePlain(SwimPacketType, data) as Record<string, unknown>;
  } catch (error) {
    throw new FrameError(`SWIM packet is not valid protobuf: ${(error as Error).message}`);
  }
  const kind = plain['kind'];
  if (typeof kind !== 'string') throw new FrameError('SWIM packet carries no message');
  const parsed = packetSchema.safeParse({ kind, ...(plain[kind] as object) });
  if (!parsed.success) throw new FrameError(`SWIM packet rejected: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

export function encodeSwimSnapshot(snapshot: SwimSnapshot): Uint8Array {
  return encodePlain(SwimSnapshotType, { ...snapshot });
}

export function decodeSwimSnapshot(data: Uint8Array): SwimSnapshot {
  return checkedDecode(snapshotSchema, SwimSnapshotType, data, 'membership snapshot', MAX_SNAPSHOT_BYTES);
}
