// IPv4 addresses and CIDR blocks as integers, so that the generic allocator
// (which only knows integer spaces [start, end)) can hand out endpoint IPs,
// service VIPs and network subnets. Parsing is strict because these strings
// come from users (`--subnet`, `--default-addr-pool`) and a silently
// "corrected" CIDR is a routing bug found weeks later.

const TWO_32 = 0x1_0000_0000;

export class AddressError extends Error {
  readonly input: string;

  constructor(input: string, message: string) {
    super(message);
    this.name = 'AddressError';
    this.input = input;
  }
}

export interface Cidr {
  /** First address (the network address) as an integer. */
  start: number;
  /** One past the last address. */
  end: number;
  prefix: number;
}

/** Parses dotted-quad notation; rejects leading zeros, which some tools read as octal. */
export function parseIPv4(text: string): number {
  const parsed = dottedQuad(text);
  if (typeof parsed === 'string') throw new AddressError(text, `"${text}" is not an IPv4 address: ${parsed}`);
  return parsed;
}

/** The address as an integer, or what is wrong with it. */
function dottedQuad(text: string): number | string {
  const parts = text.split('.');
  if (parts.length !== 4) return 'expected four numbers separated by dots, like 10.0.0.1';
  let value = 0;
  for (const part of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(part) || Number(part) > 255) return `"${part}" must be a number from 0 to 255 without leading zeros`;
    value = value * 256 + Number(part);
  }
  return value;
}

export function formatIPv4(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value >= TWO_32) throw new RangeError(`${value} is not an IPv4 address as an integer`);
  return [value / 0x100_0000, value / 0x1_0000, value / 0x100, value].map((x) => Math.floor(x) % 256).join('.');
}

/** Parses "a.b.c.d/p" and insists the host bits are zero. */
export function parseCidr(text: string): Cidr {
  const slash = text.indexOf('/');
  if (slash < 0) throw new AddressError(text, `"${text}" is not a CIDR block: add a prefix length, like 10.1.0.0/24`);
  const address = dottedQuad(text.slice(0, slash));
  if (typeof address === 'string') throw new AddressError(text, `"${text}" is not a CIDR block: ${address}`);
  const prefixText = text.slice(slash + 1);
  if (!/^(0|[1-9][0-9]?)$/.test(prefixText) || Number(prefixText) > 32) {
    throw new AddressError(text, `"${text}" has a bad prefix length "${prefixText}": it must be a number from 0 to 32`);
  }
  const prefix = Number(prefixText);
  const size = 2 ** (32 - prefix);
  const start = Math.floor(address / size) * size;
  if (start !== address) {
    throw new AddressError(text, `"${text}" has host bits set: the network address of a /${prefix} containing it is ${formatIPv4(start)}/${prefix}`);
  }
  return { start, end: start + size, prefix };
}

export function formatCidr(cidr: Cidr): string {
  return `${formatIPv4(cidr.start)}/${cidr.prefix}`;
}

export function cidrSize(cidr: Cidr): number {
  return cidr.end - cidr.start;
}

export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return outer.start <= inner.start && inner.end <= outer.end;
}

/** Whether the address (as an integer) lies inside the block. */
export function cidrHasAddress(cidr: Cidr, address: number): boolean {
  return cidr.start <= address && address < cidr.end;
}

export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.start < b.end && b.start < a.end;
}

/**
 * Addresses an endpoint may get: without the network and broadcast
 * addresses, except for /31 (RFC 3021 point-to-point) and /32.
 */
export function hostRange(cidr: Cidr): { start: number; end: number } {
  if (cidr.prefix >= 31) return { start: cidr.start, end: cidr.end };
  return { start: cidr.start + 1, end: cidr.end - 1 };
}

/** How many /`prefix` subnets a pool holds (the size of the subnet-index space). */
export function subnetCount(pool: Cidr, prefix: number): number {
  checkSubnetPrefix(pool, prefix);
  return 2 ** (prefix - pool.prefix);
}

/** The index-th /`prefix` subnet of a pool. */
export function subnetAt(pool: Cidr, prefix: number, index: number): Cidr {
  const count = subnetCount(pool, prefix);
  if (!Number.isInteger(index) || index < 0 || index >= count) throw new RangeError(`subnet index ${index} is outside 0..${count - 1} of ${formatCidr(pool)}`);
  const size = 2 ** (32 - prefix);
  return { start: pool.start + index * size, end: pool.start + (index + 1) * size, prefix };
}

/** The index of a user-requested subnet inside the pool, or an error naming the problem. */
export function subnetIndex(pool: Cidr, subnet: Cidr): number {
  checkSubnetPrefix(pool, subnet.prefix);
  if (!cidrContains(pool, subnet)) throw new AddressError(formatCidr(subnet), `${formatCidr(subnet)} is outside the address pool ${formatCidr(pool)}`);
  return (subnet.start - pool.start) / cidrSize(subnet);
}

function checkSubnetPrefix(pool: Cidr, prefix: number): void {
  if (!Number.isInteger(prefix) || prefix < pool.prefix || prefix > 32) {
    throw new AddressError(`/${prefix}`, `a /${prefix} subnet cannot be carved from ${formatCidr(pool)}: the prefix must be between ${pool.prefix} and 32`);
  }
}
