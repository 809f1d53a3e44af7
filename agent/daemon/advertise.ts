// Which underlay address other members should use to reach this host. An
// explicit --advertise-addr wins; otherwise a concrete listen IP; otherwise
// the host's only non-loopback IPv4 address. With several candidates we refuse
// to guess: picking the wrong interface silently breaks the overlay.
import { networkInterfaces } from 'node:os';

export function resolveAdvertiseAddr(advertise: string | undefined, listenIp: string): string {
  if (advertise) return advertise;
  if (listenIp !== '0.0.0.0') return listenIp;
  const candidates = Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
    .map((a) => a!.address);
  const unique = [...new Set(candidates)];
  if (unique.length === 1 && unique[0]) return unique[0];
  if (unique.length === 0) throw new Error('this host has no non-loopback IPv4 address; set --advertise-addr');
  throw new Error(`this host has several IPv4 addresses (${unique.join(', ')}); choose one with --advertise-addr`);
}
