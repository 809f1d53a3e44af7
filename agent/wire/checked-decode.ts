// One way to read a protobuf frame from outside: size limit, protobuf decode,
// then zod. Any failure is a FrameError naming what was being read and why,
// so a hostile or broken peer's frame is refused whole, never half-applied.
import type { z } from 'zod';
import { prettifyError } from 'zod';
import type protobuf from 'protobufjs';
import { decodePlain } from './protos.ts';

export class FrameError extends Error {
  override name = 'FrameError';
}

export function checkedDecode<T>(schema: z.ZodType<T>, type: protobuf.Type, data: Uint8Array, what: string, maxBytes: number): T {
  if (data.length > maxBytes) throw new FrameError(`${what} of ${data.length} bytes exceeds the ${maxBytes}-byte limit`);
  let plain: unknown;
  try {
    plain = normalise(decodePlain(type, data));
  } catch (error) {
    throw new FrameError(`${what} is not valid protobuf: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(plain);
  if (!parsed.success) throw new FrameError(`${what} rejected: ${prettifyError(parsed.error)}`);
  return parsed.data;
}

/** protobufjs hands out Buffers (views on its read buffer); make every byte field a plain, owned Uint8Array. */
function normalise(value: unknown): unknown {
  if (value instanceof Uint8Array) return new Uint8Array(value);
  if (Array.isArray(value)) return value.map(normalise);
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalise(v)]));
  return value;
}
