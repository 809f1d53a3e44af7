// MAC addresses. A sandbox's MAC is a pure function of its IP, as in Docker
// (02:42 + the four IPv4 bytes): every host can compute a remote endpoint's MAC
// without asking, and a restarted sandbox keeps the MAC its peers have cached.
import { parseIPv4 } from '../lib/ipv4.ts';

/** 02 sets the locally administered bit and clears the multicast bit, so these never clash with vendor MACs. */
export function macFromIp(ip: string): string {
  const value = parseIPv4(ip);
  const bytes = [0x02, 0x42, ...[24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256)];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

const MAC = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** Lower-case colon form, as iproute2 prints it, so kernel and desired MACs compare as strings. */
export function normalizeMac(text: string): string {
  const mac = text.trim().toLowerCase();
  if (!MAC.test(mac)) throw new Error(`"${text}" is not a MAC address like 02:42:64:40:00:05`);
  return mac;
}

export function isUnicastMac(mac: string): boolean {
  // The I/G bit is the lowest bit of the first octet.
  return (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== '00:00:00:00:00:00';
}
