/**
 * A strict reader for the one certificate shape gatesock issues (issue.ts),
 * so that verifying a certificate seen for the first time does not pay for a
 * general ASN.1 decoder: pkijs + asn1js take about 0.5 ms per certificate
 * (asn1js even tries to decode the signature's bit string as nested ASN.1),
 * this reader a few microseconds. It implements only the subset it needs, in
 * the manner of noble-curves' DER codec:
 *
 * ```text
 * Certificate  30 { TBS, 30 05 06 03 2B6570, 03 41 00 <signature 64> }
 * TBS          30 { A0 03 02 01 02                      version v3
 *                   02 <serial>
 *                   30 05 06 03 2B6570                  Ed25519, no parameters
 *                   30 <issuer Name>
 *                   30 { <time>, <time> }               validity
 *                   30 <subject Name>
 *                   30 2A 30 05 06 03 2B6570 03 21 00 <key 32>
 *                   A3 { 30 { Extension, ... } } }      at least one extension
 * Name         30 { 31 { 30 { 06 <known type>, 0C|13 <string> } }, ... }   one attribute per RDN
 * time         17 YYMMDDHHMMSSZ | 18 YYYYMMDDHHMMSSZ
 * Extension    30 { 06 <oid>, [01 01 FF], 04 { <one DER element> } }
 * ```
 *
 * Contract: {@link readCertificate} returns exactly what the pkijs path
 * (certificate.ts `decodeWithPkijs`) returns for the same bytes, or
 * `undefined` — never an error. `undefined` means "not the shape I know, or
 * something the pkijs path might judge differently", and the caller then
 * decodes with pkijs, which accepts or refuses as it always did. So this
 * reader can only make accepted certificates faster; it cannot accept what
 * the pkijs path refuses, nor refuse what it accepts. A property test
 * (test/session/identity/certificate-reader.test.ts) holds both to that on
 * generated and mutated certificates.
 *
 * How each check of the pkijs path is met here:
 *
 * | pkijs path | here |
 * | --- | --- |
 * | DER framing of the whole certificate (`isDerFramed`) | runs before either path |
 * | version 0, 1 or 2; extensions only in v3 | only the exact v3 bytes, with extensions |
 * | both algorithm fields Ed25519 without parameters | exact bytes |
 * | signature: primitive bit string, 0 unused bits, 64 bytes | exact header `03 41 00` |
 * | key: Ed25519 SPKI, 0 unused bits, 32 bytes | exact header |
 * | validity times (UTCTime or GeneralizedTime) | the RFC 5280 `Z` forms with every field in range; else defer |
 * | names: SEQUENCE of non-empty SETs of (OID, value) | one attribute per RDN, a type from NAME_ATTRIBUTES, UTF8String (valid UTF-8) or PrintableString; else defer |
 * | extension value is one BER element | one DER element; else defer |
 * | duplicate extension; unknown critical extension | defer (the pkijs path refuses, or records it) |
 * | basicConstraints, keyUsage, extKeyUsage, SKI, AKI contents | the DER forms issue.ts writes; anything else defers |
 * | validity order, role/OU agreement | shared (certificate.ts `finish`) |
 */
import type { CertParts, DecodedCertificate, ExtensionFields } from './certificate.js';
import { isDerFramed } from './der.js';
import { simpleNameText, type NameAttribute } from './names.js';
import { NAME_ATTRIBUTES_DER, OID_EXT_DER, ROLE_PURPOSE_DER, type Role } from './oids.js';

// RFC 8410 §3: AlgorithmIdentifier { id-Ed25519 } with parameters absent.
const ED25519_ALG = Uint8Array.of(0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70);
// SubjectPublicKeyInfo { ED25519_ALG, BIT STRING (0 unused bits, 32 bytes) }, up to the key.
const ED25519_SPKI_HEAD = Uint8Array.of(0x30, 0x2a, ...ED25519_ALG, 0x03, 0x21, 0x00);
// [0] EXPLICIT Version ::= v3 (2).
const VERSION_V3 = Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02);
const SIGNATURE_HEAD = Uint8Array.of(0x03, 0x41, 0x00);
const DER_TRUE = 0xff;

const TAG = { BOOLEAN: 0x01, INTEGER: 0x02, BIT_STRING: 0x03, OCTET_STRING: 0x04, OID: 0x06, UTF8: 0x0c, PRINTABLE: 0x13, UTC: 0x17, GENERALIZED: 0x18, SEQ: 0x30, SET: 0x31 } as const;

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }); // as asn1js decodes UTF8String

/** Thrown inside the reader to mean "defer to pkijs"; never escapes {@link readCertificate}. */
const DEFER = Symbol('defer');

/** One TLV: its tag, where its contents start and where it ends. */
interface Tlv {
  readonly tag: number;
  /** Offset of the tag byte. */
  readonly off: number;
  readonly start: number;
  readonly end: number;
}

/**
 * The TLV at `off` (single-byte tag, DER length), bounded by `end`. The whole
 * certificate passed `isDerFramed`, but contents of primitives (an extension's
 * OCTET STRING) did not, so every bound is checked again here.
 */
function tlv(b: Uint8Array, off: number, end: number): Tlv {
  if (off + 2 > end) throw DEFER;
  const tag = b[off]!;
  if ((tag & 0x1f) === 0x1f) throw DEFER; // high tag numbers: none in our shape
  let len = b[off + 1]!;
  let start = off + 2;
  if (len >= 0x80) {
    const count = len & 0x7f;
    if (count === 0 || count > 2 || start + count > end || b[start] === 0) throw DEFER;
    len = 0;
    for (let i = 0; i < count; i++) len = len * 256 + b[start++]!;
    if (len < 0x80) throw DEFER; // X.690 §10.1: shortest form
  }
  if (start + len > end) throw DEFER;
  return { tag, off, start, end: start + len };
}

function expectTag(t: Tlv, tag: number): Tlv {
  if (t.tag !== tag) throw DEFER;
  return t;
}

function bytesAt(b: Uint8Array, off: number, end: number, want: Uint8Array): number {
  if (off + want.length > end) throw DEFER;
  for (let i = 0; i < want.length; i++) if (b[off + i] !== want[i]) throw DEFER;
  return off + want.length;
}

function sameBytes(b: Uint8Array, start: number, end: number, want: Uint8Array): boolean {
  if (end - start !== want.length) return false;
  for (let i = 0; i < want.length; i++) if (b[start + i] !== want[i]) return false;
  return true;
}

/**
 * Read a certificate already known to be DER-framed. Returns its decoded
 * form, identical to the pkijs path's, or `undefined` to defer to that path.
 */
export function readCertificate(der: Uint8Array): DecodedCertificate | undefined {
  try {
    return read(der);
  } catch (e) {
    if (e === DEFER) return undefined;
    throw e; // a bug here, not bad input: do not hide it behind the fallback
  }
}

function read(b: Uint8Array): DecodedCertificate {
  const cert = expectTag(tlv(b, 0, b.length), TAG.SEQ);
  if (cert.end !== b.length) throw DEFER;
  const tbs = expectTag(tlv(b, cert.start, cert.end), TAG.SEQ);
  let off = bytesAt(b, tbs.end, cert.end, ED25519_ALG);
  off = bytesAt(b, off, cert.end, SIGNATURE_HEAD);
  if (off + 64 !== cert.end) throw DEFER;
  const signature = b.subarray(off, cert.end);

  off = bytesAt(b, tbs.start, tbs.end, VERSION_V3);
  const serial = expectTag(tlv(b, off, tbs.end), TAG.INTEGER);
  if (serial.end === serial.start) throw DEFER;
  off = bytesAt(b, serial.end, tbs.end, ED25519_ALG);
  const issuer = expectTag(tlv(b, off, tbs.end), TAG.SEQ);
  const issuerAttributes = readName(b, issuer);
  const validity = expectTag(tlv(b, issuer.end, tbs.end), TAG.SEQ);
  const nb = tlv(b, validity.start, validity.end);
  const na = tlv(b, nb.end, validity.end);
  if (na.end !== validity.end) throw DEFER;
  const subject = expectTag(tlv(b, validity.end, tbs.end), TAG.SEQ);
  const subjectAttributes = readName(b, subject);
  off = bytesAt(b, subject.end, tbs.end, ED25519_SPKI_HEAD);
  if (off + 32 > tbs.end) throw DEFER;
  const publicKey = b.subarray(off, off + 32);
  const extWrapper = expectTag(tlv(b, off + 32, tbs.end), 0xa3);
  if (extWrapper.end !== tbs.end) throw DEFER; // no unique IDs, nothing after the extensions
  const extensions = expectTag(tlv(b, extWrapper.start, extWrapper.end), TAG.SEQ);
  if (extensions.end !== extWrapper.end || extensions.start === extensions.end) throw DEFER;

  // pkijs strips one leading zero byte of the serial's contents, and so do we.
  let serialBytes = b.subarray(serial.start, serial.end);
  if (serialBytes.length > 1 && serialBytes[0] === 0) serialBytes = serialBytes.subarray(1);

  const parts: CertParts = {
    der: b,
    tbs: b.subarray(tbs.off, tbs.end),
    signature,
    publicKey,
    issuerDer: b.subarray(issuer.off, issuer.end),
    subjectDer: b.subarray(subject.off, subject.end),
    notBefore: readTime(b, nb),
    notAfter: readTime(b, na),
    ...readExtensions(b, extensions),
  };
  return {
    parts,
    subjectAttributes,
    subjectText: () => simpleNameText(subjectAttributes),
    issuerText: () => simpleNameText(issuerAttributes),
    serial: serialBytes,
  };
}

/**
 * A Name (RFC 5280 §4.1.2.4) of single-attribute RDNs whose types we can
 * print and whose values are strings; its attributes in order.
 */
function readName(b: Uint8Array, name: Tlv): NameAttribute[] {
  if (name.start === name.end) throw DEFER; // an empty name: ours never are
  const attributes: NameAttribute[] = [];
  for (let off = name.start; off < name.end; ) {
    const rdn = expectTag(tlv(b, off, name.end), TAG.SET);
    const atv = expectTag(tlv(b, rdn.start, rdn.end), TAG.SEQ);
    if (atv.end !== rdn.end) throw DEFER; // multi-valued RDN
    const type = expectTag(tlv(b, atv.start, atv.end), TAG.OID);
    const oid = NAME_ATTRIBUTES_DER.find(([der]) => sameBytes(b, type.off, type.end, der))?.[1];
    if (oid === undefined) throw DEFER;
    const value = tlv(b, type.end, atv.end);
    if (value.end !== atv.end) throw DEFER;
    attributes.push([oid, readString(b, value)]);
    off = rdn.end;
  }
  return attributes;
}

function readString(b: Uint8Array, t: Tlv): string {
  const bytes = b.subarray(t.start, t.end);
  if (t.tag === TAG.UTF8) {
    try {
      return utf8.decode(bytes);
    } catch {
      throw DEFER; // asn1js keeps invalid UTF-8 as a raw string; leave that to it
    }
  }
  if (t.tag === TAG.PRINTABLE) {
    // X.680 §41.4 PrintableString characters; asn1js reads each byte as one character.
    let s = '';
    for (const c of bytes) {
      if (!PRINTABLE[c]) throw DEFER;
      s += String.fromCharCode(c);
    }
    return s;
  }
  throw DEFER;
}

const PRINTABLE: boolean[] = [];
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?") PRINTABLE[c.charCodeAt(0)] = true;

/**
 * RFC 5280 §4.1.2.5.1–2: UTCTime `YYMMDDHHMMSSZ` (years 1950–2049) or
 * GeneralizedTime `YYYYMMDDHHMMSSZ`. Every field must be in range (asn1js
 * would let `Date.UTC` roll an hour 24 over into the next day; we defer).
 */
function readTime(b: Uint8Array, t: Tlv): number {
  const digits = t.tag === TAG.UTC ? 12 : t.tag === TAG.GENERALIZED ? 14 : -1;
  if (digits < 0 || t.end - t.start !== digits + 1 || b[t.end - 1] !== 0x5a /* Z */) throw DEFER;
  const n = (i: number) => {
    const hi = b[t.start + i]! - 0x30;
    const lo = b[t.start + i + 1]! - 0x30;
    if (hi < 0 || hi > 9 || lo < 0 || lo > 9) throw DEFER;
    return hi * 10 + lo;
  };
  let year: number;
  let at: number;
  if (digits === 12) {
    const yy = n(0);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
    at = 2;
  } else {
    year = n(0) * 100 + n(2);
    if (year < 1000) throw DEFER; // Date.UTC reads years 0–99 as 1900–1999; not ours to judge
    at = 4;
  }
  const month = n(at);
  const day = n(at + 2);
  const hour = n(at + 4);
  const minute = n(at + 6);
  const second = n(at + 8);
  if (month < 1 || month > 12 || day < 1 || day > daysIn(year, month) || hour > 23 || minute > 59 || second > 59) throw DEFER;
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

function daysIn(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** The extensions issue.ts writes, in the DER it writes them; anything else defers. */
/** What a certificate without extensions says; both parse paths start from it. */
export function noExtensions(): { -readonly [K in keyof ExtensionFields]: ExtensionFields[K] } {
  return { isCa: false, pathLen: undefined, keyUsage: undefined, subjectKeyId: undefined, authorityKeyId: undefined, role: null, unknownCritical: [] };
}

function readExtensions(b: Uint8Array, list: Tlv): ExtensionFields {
  const out = noExtensions();
  let seen = 0;
  for (let off = list.start; off < list.end; ) {
    const e = expectTag(tlv(b, off, list.end), TAG.SEQ);
    off = e.end;
    const id = expectTag(tlv(b, e.start, e.end), TAG.OID);
    const which = OID_EXT_DER.findIndex(([der]) => sameBytes(b, id.off, id.end, der));
    // Unknown extensions (and subjectAltName) go the pkijs way: it knows how to name their OIDs.
    if (which < 0) throw DEFER;
    if (seen & (1 << which)) throw DEFER; // a duplicate: the pkijs path refuses it
    seen |= 1 << which;
    let next = tlv(b, id.end, e.end);
    if (next.tag === TAG.BOOLEAN) {
      // critical BOOLEAN DEFAULT FALSE: in DER present only when TRUE, as FF (X.690 §11.1, §11.5).
      if (next.end - next.start !== 1 || b[next.start] !== DER_TRUE) throw DEFER;
      next = tlv(b, next.end, e.end);
    }
    const octets = expectTag(next, TAG.OCTET_STRING);
    if (octets.end !== e.end) throw DEFER;
    const inner = b.subarray(octets.start, octets.end);
    if (!isDerFramed(inner)) throw DEFER; // the pkijs path reads it as BER; DER is our subset
    const value = tlv(b, octets.start, octets.end);
    switch (OID_EXT_DER[which]![1]) {
      case 'subjectAltName':
        throw DEFER; // not in OID_EXT_DER; here for the exhaustive switch
      case 'basicConstraints': {
        // BasicConstraints ::= SEQUENCE { cA BOOLEAN DEFAULT FALSE, pathLenConstraint INTEGER (0..MAX) OPTIONAL }
        expectTag(value, TAG.SEQ);
        let at = value.start;
        if (at < value.end && b[at] === TAG.BOOLEAN) {
          const ca = tlv(b, at, value.end);
          if (ca.end - ca.start !== 1 || b[ca.start] !== DER_TRUE) throw DEFER;
          out.isCa = true;
          at = ca.end;
        }
        if (at < value.end) {
          const n = expectTag(tlv(b, at, value.end), TAG.INTEGER);
          out.pathLen = smallNonNegative(b, n);
          at = n.end;
        }
        if (at !== value.end) throw DEFER;
        break;
      }
      case 'keyUsage': {
        // A primitive BIT STRING: unused-bit count, then the bits; the mask is read as the pkijs path reads it.
        expectTag(value, TAG.BIT_STRING);
        const len = value.end - value.start;
        const unused = b[value.start]!;
        if (len < 1 || unused > 7 || (len === 1 && unused !== 0)) throw DEFER;
        const bits = b.subarray(value.start + 1, value.end);
        let mask = 0;
        for (let bit = 0; bit < Math.min(bits.length * 8, 9); bit++) if (bits[bit >> 3]! & (0x80 >> (bit & 7))) mask |= 1 << bit;
        out.keyUsage = mask;
        break;
      }
      case 'extKeyUsage': {
        expectTag(value, TAG.SEQ);
        if (value.start === value.end) throw DEFER;
        for (let at = value.start; at < value.end; ) {
          const p = expectTag(tlv(b, at, value.end), TAG.OID);
          if (!wellFormedOid(b, p)) throw DEFER;
          at = p.end;
          const role: Role | undefined = ROLE_PURPOSE_DER.find(([, der]) => sameBytes(b, p.off, p.end, der))?.[0];
          if (role === undefined) continue;
          if (out.role !== null && out.role !== role) throw DEFER; // two roles: the pkijs path refuses
          out.role = role;
        }
        break;
      }
      case 'subjectKeyIdentifier':
        expectTag(value, TAG.OCTET_STRING);
        out.subjectKeyId = b.subarray(value.start, value.end);
        break;
      case 'authorityKeyIdentifier': {
        // AuthorityKeyIdentifier ::= SEQUENCE { keyIdentifier [0] IMPLICIT OCTET STRING OPTIONAL, ... }: ours has the key ID only.
        expectTag(value, TAG.SEQ);
        if (value.start === value.end) break;
        const keyId = expectTag(tlv(b, value.start, value.end), 0x80);
        if (keyId.end !== value.end) throw DEFER;
        out.authorityKeyId = b.subarray(keyId.start, keyId.end);
        break;
      }
    }
  }
  return out;
}

/** A minimal non-negative INTEGER below 2^24 (a pathLenConstraint); else defer. */
function smallNonNegative(b: Uint8Array, t: Tlv): number {
  const len = t.end - t.start;
  if (len < 1 || len > 3 || b[t.start]! & 0x80) throw DEFER;
  if (len > 1 && b[t.start] === 0 && (b[t.start + 1]! & 0x80) === 0) throw DEFER; // X.690 §8.3.2: minimal
  let n = 0;
  for (let i = t.start; i < t.end; i++) n = n * 256 + b[i]!;
  return n;
}

/** X.690 §8.19: non-empty, each subidentifier minimal (no leading 0x80) and terminated. */
function wellFormedOid(b: Uint8Array, t: Tlv): boolean {
  if (t.start === t.end || b[t.end - 1]! & 0x80) return false;
  for (let i = t.start; i < t.end; i++) if (b[i] === 0x80 && (i === t.start || (b[i - 1]! & 0x80) === 0)) return false;
  return true;
}
