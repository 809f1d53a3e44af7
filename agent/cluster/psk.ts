// The libp2p private-network key: every connection between members is first
// wrapped in XSalsa20 keyed by this, so a host without it cannot even finish a
// handshake with an agent. Stored and shipped in the standard pnet key format.
import { randomBytes } from 'node:crypto';

const HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n';

export function newPsk(): Uint8Array {
  return new TextEncoder().encode(HEADER + randomBytes(32).toString('hex'));
}

export function isValidPsk(psk: Uint8Array): boolean {
  const text = new TextDecoder().decode(psk);
  return text.startsWith(HEADER) && /^[0-9a-f]{64}\s*$/.test(text.slice(HEADER.length));
}
