/**
 * Small byte and DER helpers shared by the identity modules (internal).
 */
import * as asn1js from 'asn1js';

/** Largest certificate (or key) we read, in bytes; ours are about 400. Checked before any parsing. */
export const MAX_DER_LEN = 16 * 1024;
const MAX_DEPTH = 16;

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i]! ^ b[i]!;
  return diff === 0;
}

export function toHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

/**
 * True when `der` is exactly one element whose framing follows DER (X.690
 * §10): definite lengths in their shortest form, strings only in primitive
 * form, and no byte before or after. BER allows several encodings of one
 * value; refusing them gives each certificate exactly one byte string, so its
 * MSID (a hash of those bytes) is well defined. Content rules inside
 * primitives (minimal INTEGERs and the like) are not checked here: the TBS
 * bytes are signed exactly as they are, and the outer fields are checked by
 * the certificate parser.
 */
export function isDerFramed(der: Uint8Array): boolean {
  return der.length > 0 && der.length <= MAX_DER_LEN && walk(der, 0, der.length, 0) === der.length;
}

/** Walk one TLV at `off`; returns its end, or -1 when its framing is not DER. */
function walk(b: Uint8Array, off: number, end: number, depth: number): number {
  if (depth > MAX_DEPTH || off >= end) return -1;
  const tag = b[off++]!;
  if ((tag & 0x1f) === 0x1f) {
    // High tag number form (X.690 §8.1.2.4): base-128, no leading 0x80, and only for numbers ≥ 31.
    if (off >= end || b[off] === 0x80) return -1;
    let n = 0;
    for (;;) {
      if (off >= end || n > 0xffffff) return -1;
      const c = b[off++]!;
      n = n * 128 + (c & 0x7f);
      if ((c & 0x80) === 0) break;
    }
    if (n < 31) return -1;
  }
  if (off >= end) return -1;
  const first = b[off++]!;
  let len: number;
  if (first < 0x80) len = first;
  else {
    const count = first & 0x7f;
    // 0x80 is the indefinite form (BER only); more than 3 length bytes is far beyond MAX_DER_LEN.
    if (count === 0 || count > 3 || off + count > end || b[off] === 0) return -1;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + b[off++]!;
    if (len < 0x80) return -1; // should have used the short form (X.690 §10.1)
  }
  const valueEnd = off + len;
  if (valueEnd > end) return -1;
  if ((tag & 0x20) === 0) return valueEnd;
  // Constructed: universal types other than SEQUENCE and SET (i.e. segmented strings) are BER only (X.690 §10.2).
  if ((tag & 0xc0) === 0 && tag !== 0x30 && tag !== 0x31) return -1;
  while (off < valueEnd) {
    off = walk(b, off, valueEnd, depth + 1);
    if (off < 0) return -1;
  }
  return valueEnd;
}

/** Decode exactly one ASN.1 element from `bytes`, or return undefined (malformed or trailing bytes). */
export function decodeOne(bytes: Uint8Array): asn1js.AsnType | undefined {
  const r = asn1js.fromBER(bytes);
  if (r.offset !== bytes.length || r.result.error) return undefined;
  return r.result;
}

/** The bytes an asn1js block was decoded from (tag, length and value). */
export function encodedBytes(block: asn1js.AsnType): Uint8Array {
  return new Uint8Array(block.valueBeforeDecodeView);
}
