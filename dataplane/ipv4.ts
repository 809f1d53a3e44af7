// Small IPv4 helpers. The data plane validates every address it is given
// before it goes into a batch line: a malformed one would otherwise surface as
// a cryptic iproute2 error, or worse, as a different command.

export function parseIPv4(text: string): number {
  const parts = text.split('.');
  if (parts.length !== 4) throw new Error(`"${text}" is not an IPv4 address`);
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) throw new Error(`"${text}" is not an IPv4 address`);
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIPv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

export function isIPv4(text: string): boolean {
  try {
    parseIPv4(text);
    return true;
  } catch {
    return false;
  }
}

export interface Cidr {
  /** The network address (host bits cleared), e.g. 100.64.1.0 */
  network: string;
  prefixLength: number;
}

export function parseCidr(text: string): Cidr {
  const [address, length, extra] = text.split('/');
  if (address === undefined || length === undefined || extra !== undefined || !/^[0-9]{1,2}$/.test(length) || Number(length) > 32) {
    throw new Error(`"${text}" is not an IPv4 CIDR like 100.64.1.0/24`);
  }
  const prefixLength = Number(length);
  const size = 2 ** (32 - prefixLength);
  const base = Math.floor(parseIPv4(address) / size) * size;
  return { network: formatIPv4(base), prefixLength };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const size = 2 ** (32 - cidr.prefixLength);
  return Math.floor(parseIPv4(ip) / size) === Math.floor(parseIPv4(cidr.network) / size);
}
