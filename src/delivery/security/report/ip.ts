/**
 * IP addresses as the security center spells them: one canonical text per
 * address (dotted quad without leading zeros; IPv6 in RFC 5952 form, lower
 * case, longest zero run compressed, IPv4-mapped addresses as `::ffff:a.b.c.d`),
 * so reports, scanner files and firewall rules compare as strings.
 */

/** The 4 (IPv4) or 16 (IPv6) bytes of `text`, or undefined when it is not an address in strict syntax. */
export function ipBytes(text: string): Uint8Array | undefined {
  if (text.length === 0 || text.length > 45) return undefined;
  if (!text.includes(':')) return ipv4Bytes(text);
  return ipv6Bytes(text);
}

function ipv4Bytes(text: string): Uint8Array | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i]!;
    // No leading zeros: "010" is octal to some parsers and decimal to others.
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function ipv6Bytes(text: string): Uint8Array | undefined {
  let head = text;
  let tail4: Uint8Array | undefined;
  const lastColon = text.lastIndexOf(':');
  if (text.slice(lastColon + 1).includes('.')) {
    tail4 = ipv4Bytes(text.slice(lastColon + 1));
    if (tail4 === undefined) return undefined;
    head = text.slice(0, lastColon + 1) + '0:0';
  }
  const halves = head.split('::');
  if (halves.length > 2) return undefined;
  const groups = (s: string): string[] | undefined => {
    if (s === '') return [];
    const g = s.split(':');
    return g.every((x) => /^[0-9a-fA-F]{1,4}$/.test(x)) ? g : undefined;
  };
  const left = groups(halves[0]!);
  const right = halves.length === 2 ? groups(halves[1]!) : [];
  if (left === undefined || right === undefined) return undefined;
  const total = left.length + right.length;
  if (halves.length === 1 ? total !== 8 : total > 7) return undefined;
  const words = [...left, ...new Array<string>(8 - total).fill('0'), ...right];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    const v = parseInt(w, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 0xff;
  });
  if (tail4 !== undefined) out.set(tail4, 12);
  return out;
}

/** Canonical text of 4 or 16 address bytes (RFC 5952 for IPv6). */
export function formatIp(bytes: Uint8Array): string {
  if (bytes.length === 4) return Array.from(bytes).join('.');
  if (bytes.length !== 16) throw new RangeError('an IP address has 4 or 16 bytes');
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff) {
    return `::ffff:${Array.from(bytes.subarray(12)).join('.')}`;
  }
  const words: number[] = [];
  for (let i = 0; i < 8; i++) words.push((bytes[2 * i]! << 8) | bytes[2 * i + 1]!);
  // RFC 5952 §4.2: compress the longest run of two or more zero words, the first on a tie.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) { best = i; bestLen = j - i; }
    i = j;
  }
  const hex = words.map((w) => w.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** `text` in canonical form, or undefined when it is not an IPv4/IPv6 address. */
export function canonicalIp(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const b = ipBytes(text);
  return b === undefined ? undefined : formatIp(b);
}

/** True for `0.0.0.0` and `::` (a socket bound to every address). */
export function isWildcardIp(text: string): boolean {
  return text === '0.0.0.0' || text === '::';
}
