/**
 * IPv6 text and bytes for key addresses: the /64 prefix a server owns, the
 * 64-bit interface identifiers (IIDs) the generator ORs into it, and the IIDs
 * no generator may produce because the prefix reserves them.
 *
 * Text out is canonical (RFC 5952 §4: lower case, leading zeros dropped, the
 * first longest run of two or more zero groups as `::`), which is also what
 * Node's `URL` and `net` print for such an address, so listeners, resolvers
 * and logs can compare strings.
 */
import { KeyAddressError } from '../errors/index.js';

/**
 * Length of an IPv6 address in bytes.
 * @public
 */
export const IPV6_BYTES = 16;

/**
 * A parsed /64 prefix: the canonical text (`2001:db8:1:2::/64`) and its 16 bytes (low 8 zero).
 * @public
 */
export interface KeyAddressPrefix {
  /** Canonical text with `/64`, e.g. `2001:db8:1:2::/64`. */
  readonly text: string;
  /** The prefix as an address: 16 bytes whose low 8 bytes are zero. A fresh copy per parse. */
  readonly bytes: Uint8Array;
}

/**
 * Parse IPv6 text (no zone, no prefix length) into 16 bytes, or return
 * `undefined`. Uses the WHATWG URL host parser, so exactly the forms Node
 * itself accepts (including an embedded dotted IPv4 tail) parse.
 * @public
 */
export function parseIpv6(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64 || /[^0-9a-fA-F:.]/.test(text)) return undefined;
  // Hex groups only (no dotted IPv4 tail): parsed here, as the URL parser would.
  if (!text.includes('.')) return parseHexIpv6(text);
  return parseIpv6ByUrl(text);
}

/**
 * Text of 1–4 digit hex groups separated by `:`, at most one `::` standing
 * for one or more zero groups, 8 groups in all: the WHATWG URL host parser's
 * rules for such text (checked against it in generator.test.ts).
 * @internal
 */
export function parseHexIpv6(text: string): Uint8Array | undefined {
  const at = text.indexOf('::');
  if (at >= 0 && text.indexOf('::', at + 1) >= 0) return undefined;
  const groupsOf = (part: string): number[] | undefined => {
    if (part === '') return [];
    const out: number[] = [];
    for (const g of part.split(':')) {
      if (g.length === 0 || g.length > 4) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const left = groupsOf(at < 0 ? text : text.slice(0, at));
  const right = at < 0 ? [] : groupsOf(text.slice(at + 2));
  if (left === undefined || right === undefined) return undefined;
  const count = left.length + right.length;
  if (at < 0 ? count !== 8 : count > 7) return undefined;
  const out = new Uint8Array(IPV6_BYTES);
  left.forEach((v, i) => {
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  right.forEach((v, i) => {
    const j = 8 - right.length + i;
    out[2 * j] = v >>> 8;
    out[2 * j + 1] = v & 0xff;
  });
  return out;
}

/**
 * {@link parseIpv6} through the WHATWG URL host parser (any form Node accepts).
 * @internal
 */
export function parseIpv6ByUrl(text: string): Uint8Array | undefined {
  if (typeof text !== 'string' || text.length === 0 || text.length > 64 || /[^0-9a-fA-F:.]/.test(text)) return undefined;
  let host: string;
  try {
    host = new URL(`http://[${text}]/`).hostname;
  } catch {
    return undefined;
  }
  // The URL parser prints pure hex groups with at most one `::`.
  const inner = host.slice(1, -1);
  const [head, tail] = inner.includes('::') ? inner.split('::') : [inner, undefined];
  const left = head === '' ? [] : head!.split(':');
  const right = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? left : [...left, ...new Array<string>(8 - left.length - right.length).fill('0'), ...right];
  if (groups.length !== 8) return undefined;
  const out = new Uint8Array(IPV6_BYTES);
  groups.forEach((g, i) => {
    const v = Number.parseInt(g, 16);
    out[2 * i] = v >>> 8;
    out[2 * i + 1] = v & 0xff;
  });
  return out;
}

/**
 * Canonical text of a 16-byte IPv6 address (RFC 5952 §4), e.g.
 * `2001:db8:1:2:8f3a:10:0:7`.
 * @public
 */
export function formatIpv6(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== IPV6_BYTES) throw new RangeError('an IPv6 address is 16 bytes');
  // This runs once per derived address, so no arrays, closures or endsWith():
  // the groups go into one reused Int32Array (synchronous, never re-entered).
  const groups = GROUPS;
  for (let i = 0; i < 8; i++) groups[i] = (bytes[2 * i]! << 8) | bytes[2 * i + 1]!;
  // RFC 5952 §4.2.3: the first longest run of zero groups, only if 2 or longer.
  let bestAt = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i + 1;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      bestAt = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (bestAt < 0) {
    // No run to compress (the common case for a key address).
    let out = groups[0]!.toString(16);
    for (let i = 1; i < 8; i++) out += ':' + groups[i]!.toString(16);
    return out;
  }
  let out = '';
  for (let i = 0; i < bestAt; i++) out += groups[i]!.toString(16) + ':';
  // `a:b:` + `:` makes `a:b::`; at the start, `::` itself.
  out += bestAt === 0 ? '::' : ':';
  const after = bestAt + bestLen;
  for (let i = after; i < 8; i++) out += (i === after ? '' : ':') + groups[i]!.toString(16);
  return out;
}

/** Scratch for {@link formatIpv6}: the 8 groups of the address being printed. */
const GROUPS = new Int32Array(8);

/**
 * Parse a /64 prefix such as `2001:db8:1:2::/64`.
 * @throws KeyAddressError `GS_ERR_KEYADDR_INVALID_PREFIX` unless the text is an
 * IPv6 address, `/64`, with all of its low 64 bits zero.
 * @public
 */
export function parsePrefix(text: string): KeyAddressPrefix {
  const bad = (why: string) =>
    new KeyAddressError('GS_ERR_KEYADDR_INVALID_PREFIX', `prefix ${JSON.stringify(text)} ${why}; give a /64 like 2001:db8:1:2::/64`);
  if (typeof text !== 'string') throw bad('is not a string');
  const slash = text.indexOf('/');
  if (slash < 0) throw bad('has no prefix length');
  if (text.slice(slash + 1) !== '64') throw bad('is not a /64');
  const bytes = parseIpv6(text.slice(0, slash));
  if (bytes === undefined) throw bad('is not an IPv6 address');
  if (bytes.subarray(8).some((b) => b !== 0)) throw bad('has bits set in its low 64 bits');
  return { text: `${formatIpv6(bytes)}/64`, bytes };
}

/**
 * Interface identifiers a generated address must never use, as inclusive
 * ranges of the 64-bit IID. Written once here; {@link isReservedIid} reads it.
 *
 * - RFC 4291 §2.6.1 / RFC 5453 §3: the all-zero IID is the Subnet-Router
 *   anycast address.
 * - RFC 5453 §3 (IANA "Reserved IPv6 Interface Identifiers"): the
 *   "Reserved IPv6 Interface Identifiers corresponding to the IANA Ethernet
 *   Block" 0200:5EFF:FE00:0000–0200:5EFF:FE00:5212, the Proxy Mobile IPv6 IID
 *   0200:5EFF:FE00:5213 (RFC 6543), and the rest of that block
 *   0200:5EFF:FE00:5214–0200:5EFF:FEFF:FFFF.
 * - RFC 2526 §2: the reserved subnet anycast addresses, the top 128 IIDs
 *   FDFF:FFFF:FFFF:FF80–FDFF:FFFF:FFFF:FFFF (EUI-64 format prefixes).
 * @public
 */
export const RESERVED_IID_RANGES: readonly { readonly first: bigint; readonly last: bigint; readonly what: string }[] = Object.freeze([
  { first: 0x0000_0000_0000_0000n, last: 0x0000_0000_0000_0000n, what: 'Subnet-Router anycast (RFC 4291 §2.6.1, RFC 5453)' },
  { first: 0x0200_5eff_fe00_0000n, last: 0x0200_5eff_fe00_5212n, what: 'IANA Ethernet block, reserved (RFC 5453)' },
  { first: 0x0200_5eff_fe00_5213n, last: 0x0200_5eff_fe00_5213n, what: 'Proxy Mobile IPv6 (RFC 5453, RFC 6543)' },
  { first: 0x0200_5eff_fe00_5214n, last: 0x0200_5eff_feff_ffffn, what: 'IANA Ethernet block, reserved (RFC 5453)' },
  { first: 0xfdff_ffff_ffff_ff80n, last: 0xfdff_ffff_ffff_ffffn, what: 'reserved subnet anycast (RFC 2526)' },
]);

/**
 * Read 8 bytes at `offset` as an unsigned big-endian 64-bit integer.
 * @public
 */
export function iidOf(bytes: Uint8Array, offset = 0): bigint {
  if (bytes.length < offset + 8) throw new RangeError('an IID is 8 bytes');
  let v = 0n;
  for (let i = 0; i < 8; i++) v = (v << 8n) | BigInt(bytes[offset + i]!);
  return v;
}

/**
 * Whether a 64-bit interface identifier (a bigint, or 8 bytes big-endian) is
 * one of {@link RESERVED_IID_RANGES}.
 * @public
 */
export function isReservedIid(iid: bigint | Uint8Array): boolean {
  if (typeof iid === 'bigint') {
    if (iid < 0n || iid > 0xffff_ffff_ffff_ffffn) throw new RangeError('an IID is an unsigned 64-bit value');
    return inReservedRange(iid);
  }
  if (!(iid instanceof Uint8Array) || iid.length !== 8) throw new RangeError('an IID is 8 bytes');
  return isReservedIidAt(iid, 0);
}

function inReservedRange(v: bigint): boolean {
  return RESERVED_IID_RANGES.some((r) => v >= r.first && v <= r.last);
}

/**
 * {@link isReservedIid} of the 8 bytes at `offset` of `bytes` (e.g. the
 * first 8 of a MAC), without copying them out first. The caller guarantees
 * `offset + 8 ≤ bytes.length`.
 * @internal
 */
export function isReservedIidAt(bytes: Uint8Array, offset: number): boolean {
  // Fast reject for the common case (every range starts with 0x00, 0x02 or
  // 0xfd), before the bigint conversion: this runs once per address.
  const top = bytes[offset]!;
  if (top !== 0x00 && top !== 0x02 && top !== 0xfd) return false;
  return inReservedRange(iidOf(bytes, offset));
}
