// The strict certificate reader (certificate-reader.ts) against the pkijs
// path: on every input, parseCertificate and parseCertificateWithPkijs give
// the same certificate or the same error code, and whenever the reader
// answers, its answer equals the pkijs decoding field by field. Inputs:
// certificates from the real makers, hand-assembled certificates over a menu
// of shapes (most of which the reader must defer), and mutations of both.
import * as asn1js from 'asn1js';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CertificateError } from '../../../src/errors/index.js';
import {
  createRootCa,
  createServerCertificate,
  generateIdentityKey,
  issueCertificate,
  parseCertificate,
  ROLE_PURPOSE_OIDS,
  ROLES,
  type Certificate,
} from '../../../src/session/identity/index.js';
import { decodeWithPkijs, parseCertificateWithPkijs, partsOf, type DecodedCertificate } from '../../../src/session/identity/certificate.js';
import { readCertificate } from '../../../src/session/identity/certificate-reader.js';
import { isDerFramed, toHex } from '../../../src/session/identity/der.js';
import { buildCertificate, ext } from '../../../src/session/identity/issue.js';

const hex = (b: Uint8Array | undefined) => (b === undefined ? undefined : toHex(b));

function decodedSummary(d: DecodedCertificate) {
  const p = d.parts;
  return {
    der: hex(p.der),
    tbs: hex(p.tbs),
    signature: hex(p.signature),
    publicKey: hex(p.publicKey),
    issuerDer: hex(p.issuerDer),
    subjectDer: hex(p.subjectDer),
    notBefore: p.notBefore,
    notAfter: p.notAfter,
    isCa: p.isCa,
    pathLen: p.pathLen,
    keyUsage: p.keyUsage,
    subjectKeyId: hex(p.subjectKeyId),
    authorityKeyId: hex(p.authorityKeyId),
    role: p.role,
    unknownCritical: [...p.unknownCritical],
    subjectAttributes: d.subjectAttributes.map(([oid, v]) => [oid, v]),
    subject: d.subjectText(),
    issuer: d.issuerText(),
    serial: hex(d.serial),
  };
}

/** Everything a caller can see of a parse: the certificate's fields and parts, or the error code. */
function outcome(parse: (b: Uint8Array) => Certificate, b: Uint8Array) {
  let c: Certificate;
  try {
    c = parse(b);
  } catch (e) {
    if (!(e instanceof CertificateError)) throw e;
    return { code: e.code };
  }
  const p = partsOf(c);
  return {
    fields: {
      der: hex(c.der),
      commonName: c.commonName,
      role: c.role,
      publicKey: hex(c.publicKey),
      notBefore: c.notBefore.getTime(),
      notAfter: c.notAfter.getTime(),
      isCa: c.isCa,
      subject: c.subject,
      issuer: c.issuer,
      serialNumber: c.serialNumber,
    },
    parts: { tbs: hex(p.tbs), signature: hex(p.signature), pathLen: p.pathLen, keyUsage: p.keyUsage, ski: hex(p.subjectKeyId), aki: hex(p.authorityKeyId), unknownCritical: [...p.unknownCritical] },
  };
}

/** The property: both parse paths agree, and the reader, when it answers, agrees with pkijs's decoding. */
function agree(b: Uint8Array): 'fast' | 'deferred' | 'not-der' {
  expect(outcome(parseCertificate, b)).toEqual(outcome(parseCertificateWithPkijs, b));
  if (!isDerFramed(b)) return 'not-der';
  const fast = readCertificate(b.slice());
  if (fast === undefined) return 'deferred';
  expect(decodedSummary(fast)).toEqual(decodedSummary(decodeWithPkijs(b.slice())));
  return 'fast';
}

// ------------------------------------------------------------------ a small DER writer for hand-made shapes

function len(n: number): number[] {
  if (n < 0x80) return [n];
  const out: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) out.unshift(v & 0xff);
  return [0x80 | out.length, ...out];
}
const tlv = (tag: number, ...contents: Uint8Array[]) => {
  const body = Uint8Array.from(contents.flatMap((c) => [...c]));
  return Uint8Array.from([tag, ...len(body.length), ...body]);
};
const bytes = (...b: number[]) => Uint8Array.from(b);
const oid = (dotted: string) => new Uint8Array(new asn1js.ObjectIdentifier({ value: dotted }).toBER());
const ascii = (s: string) => new TextEncoder().encode(s);
const ED25519 = tlv(0x30, oid('1.3.101.112'));

interface Shape {
  version: Uint8Array;
  serial: Uint8Array;
  issuer: Uint8Array;
  notBefore: Uint8Array;
  notAfter: Uint8Array;
  subject: Uint8Array;
  extensions: Uint8Array[] | null;
}

function assemble(s: Shape): Uint8Array {
  const tbs = tlv(
    0x30,
    s.version,
    s.serial,
    ED25519,
    s.issuer,
    tlv(0x30, s.notBefore, s.notAfter),
    s.subject,
    tlv(0x30, ED25519, tlv(0x03, bytes(0), new Uint8Array(32).fill(7))),
    ...(s.extensions === null ? [] : [tlv(0xa3, tlv(0x30, ...s.extensions))]),
  );
  return tlv(0x30, tbs, ED25519, tlv(0x03, bytes(0), new Uint8Array(64).fill(9)));
}

const extension = (id: string, critical: Uint8Array | null, value: Uint8Array) => tlv(0x30, oid(id), ...(critical ? [critical] : []), tlv(0x04, value));

const arbDigits = (n: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: n, maxLength: n }).map((d) => d.join(''));
const arbTime = fc.oneof(
  // well-formed UTCTime / GeneralizedTime (the reader's subset, unless a field is out of range)
  fc.tuple(fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 })).map(
    (f) => tlv(0x17, ascii(`${f.map((x) => String(x).padStart(2, '0')).join('')}Z`)),
  ),
  fc.tuple(fc.integer({ min: 0, max: 9999 }), fc.integer({ min: 0, max: 13 }), fc.integer({ min: 0, max: 32 }), fc.integer({ min: 0, max: 24 }), fc.integer({ min: 0, max: 60 }), fc.integer({ min: 0, max: 60 })).map(
    ([y, ...f]) => tlv(0x18, ascii(`${String(y).padStart(4, '0')}${f.map((x) => String(x).padStart(2, '0')).join('')}Z`)),
  ),
  // other forms the pkijs path may or may not take: fractions, offsets, short forms, junk
  fc.constantFrom('20300101000000.5Z', '203001010000Z', '20300101000000+0100', '3001010000Z', '300101000000+0000', '30010100000Z', 'abcdefghijklmZ').map((s) =>
    tlv(s.length === 13 || s.startsWith('3') ? 0x17 : 0x18, ascii(s)),
  ),
  arbDigits(12).map((d) => tlv(0x17, ascii(`${d}Z`))),
);

const NAME_TYPES = ['2.5.4.3', '2.5.4.11', '2.5.4.10', '2.5.4.6', '0.9.2342.19200300.100.1.25', '2.5.4.5', '1.2.3.4'];
const arbAttrValue = fc.oneof(
  fc.string({ maxLength: 12 }).map((s) => tlv(0x0c, ascii(s))),
  fc.string({ unit: 'grapheme', maxLength: 6 }).map((s) => tlv(0x0c, ascii(s))),
  fc.constantFrom('Ab 1', 'a*b', 'x@y', ' #lead', 'trail ').map((s) => tlv(0x13, ascii(s))),
  fc.constantFrom(tlv(0x0c, bytes(0xff, 0xfe)), tlv(0x16, ascii('ia5')), tlv(0x1e, bytes(0, 0x41)), tlv(0x02, bytes(1)), tlv(0x0c, bytes(0xef, 0xbb, 0xbf, 0x41))),
);
const arbAtv = fc.tuple(fc.constantFrom(...NAME_TYPES), arbAttrValue).map(([t, v]) => tlv(0x30, oid(t), v));
const arbName = fc.array(fc.array(arbAtv, { minLength: 1, maxLength: 2 }), { maxLength: 3 }).map((rdns) => tlv(0x30, ...rdns.map((atvs) => tlv(0x31, ...atvs))));

const TRUE = tlv(0x01, bytes(0xff));
const arbCritical = fc.constantFrom(null, TRUE, tlv(0x01, bytes(0x00)), tlv(0x01, bytes(0x01)));
const roleOid = (r: (typeof ROLES)[number]) => oid(ROLE_PURPOSE_OIDS[r]);
const arbExtension = fc.oneof(
  fc
    .tuple(arbCritical, fc.constantFrom(null, TRUE, tlv(0x01, bytes(0)), tlv(0x01, bytes(5))), fc.constantFrom(null, bytes(0), bytes(3), bytes(0x7f), bytes(0, 0x80), bytes(0, 1), bytes(0x80), bytes(1, 0, 0, 0)))
    .map(([c, ca, n]) => extension('2.5.29.19', c, tlv(0x30, ...(ca ? [ca] : []), ...(n ? [tlv(0x02, n)] : [])))),
  fc.tuple(arbCritical, fc.integer({ min: 0, max: 9 }), fc.uint8Array({ maxLength: 3 })).map(([c, unused, b]) => extension('2.5.29.15', c, tlv(0x03, bytes(unused), b))),
  fc
    .tuple(arbCritical, fc.array(fc.constantFrom(roleOid('server'), roleOid('gateway'), roleOid('controller'), oid('1.3.6.1.5.5.7.3.1'), bytes(0x06, 0x02, 0x80, 0x01), tlv(0x05)), { maxLength: 3 }))
    .map(([c, purposes]) => extension('2.5.29.37', c, tlv(0x30, ...purposes))),
  fc.tuple(arbCritical, fc.uint8Array({ maxLength: 20 })).map(([c, id]) => extension('2.5.29.14', c, tlv(0x04, id))),
  fc
    .tuple(arbCritical, fc.uint8Array({ maxLength: 20 }), fc.constantFrom('key', 'empty', 'issuer', 'twice'))
    .map(([c, id, kind]) =>
      extension(
        '2.5.29.35',
        c,
        kind === 'key' ? tlv(0x30, tlv(0x80, id)) : kind === 'empty' ? tlv(0x30) : kind === 'twice' ? tlv(0x30, tlv(0x80, id), tlv(0x80, bytes(1))) : tlv(0x30, tlv(0x80, id), tlv(0x82, bytes(1))),
      ),
    ),
  arbCritical.map((c) => extension('2.5.29.17', c, tlv(0x30, tlv(0x82, ascii('example.org'))))),
  arbCritical.map((c) => extension('1.2.3.4.5', c, tlv(0x05))),
  // a value that is BER (long-form length where the short form fits), or not one element
  arbCritical.map((c) => extension('2.5.29.14', c, bytes(0x04, 0x81, 0x01, 0xaa))),
  arbCritical.map((c) => extension('2.5.29.14', c, bytes(0x04, 0x01, 0xaa, 0x00))),
);

/** Our makers' extension list for a role, in their order, so the reader's own shape is well covered too. */
const ourExtensions = (role: (typeof ROLES)[number] | null, ski: Uint8Array) => [
  extension('2.5.29.19', TRUE, tlv(0x30, ...(role === null ? [TRUE] : []))),
  extension('2.5.29.15', TRUE, tlv(0x03, bytes(role === null ? 1 : 7, role === null ? 0x06 : 0x80))),
  ...(role === null ? [] : [extension('2.5.29.37', null, tlv(0x30, roleOid(role)))]),
  extension('2.5.29.14', null, tlv(0x04, ski)),
  extension('2.5.29.35', null, tlv(0x30, tlv(0x80, ski))),
];

const V3 = bytes(0xa0, 0x03, 0x02, 0x01, 0x02);
const often = <T,>(good: fc.Arbitrary<T>, other: fc.Arbitrary<T>) => fc.oneof({ arbitrary: good, weight: 4 }, { arbitrary: other, weight: 1 });
const goodTime = fc.constantFrom(tlv(0x17, ascii('300101000000Z')), tlv(0x17, ascii('491231235959Z')), tlv(0x17, ascii('500101000000Z')), tlv(0x18, ascii('20500101000000Z')), tlv(0x18, ascii('99991231235959Z')));
const goodName = fc
  .array(fc.tuple(fc.constantFrom('2.5.4.3', '2.5.4.11', '2.5.4.10'), fc.string({ maxLength: 10 })), { minLength: 1, maxLength: 3 })
  .map((atvs) => tlv(0x30, ...atvs.map(([t, v]) => tlv(0x31, tlv(0x30, oid(t), tlv(0x0c, ascii(v)))))));
const arbExtensions = fc.oneof(
  { arbitrary: fc.constant(null), weight: 1 },
  { arbitrary: fc.array(arbExtension, { maxLength: 6 }), weight: 2 },
  {
    // ours, with one extension changed, dropped or added
    arbitrary: fc
      .tuple(fc.constantFrom(null, ...ROLES), fc.uint8Array({ minLength: 20, maxLength: 20 }), fc.nat(5), fc.constantFrom('keep', 'replace', 'drop', 'add'), arbExtension)
      .map(([role, ski, at, how, e]) => {
        const list = ourExtensions(role, ski);
        const i = at % list.length;
        if (how === 'replace') list[i] = e;
        else if (how === 'drop') list.splice(i, 1);
        else if (how === 'add') list.splice(i, 0, e);
        return list;
      }),
    weight: 6,
  },
);

const arbShape: fc.Arbitrary<Shape> = fc.record({
  version: often(fc.constant(V3), fc.constantFrom(bytes(0xa0, 0x03, 0x02, 0x01, 0x01), bytes(0xa0, 0x03, 0x02, 0x01, 0x05), bytes(0xa0, 0x04, 0x02, 0x02, 0x00, 0x02), bytes())),
  serial: often(fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => tlv(0x02, b)), fc.constant(tlv(0x02))),
  issuer: often(goodName, arbName),
  notBefore: often(goodTime, arbTime),
  notAfter: often(goodTime, arbTime),
  subject: often(goodName, arbName),
  extensions: arbExtensions,
});

// ------------------------------------------------------------------ tests

describe('strict certificate reader = pkijs path', () => {
  it('reads every certificate our makers issue, with the same fields as pkijs', () => {
    const arbCn = fc.oneof(fc.string({ minLength: 1, maxLength: 64 }), fc.string({ unit: 'grapheme', minLength: 1, maxLength: 20 }), fc.constantFrom('a,b', '#x', ' lead', 'trail ', 'q"+;<>\\', 'nul\0'));
    fc.assert(
      fc.property(
        fc.constantFrom('root', 'controller', 'gateway', 'server', 'issued-server'),
        arbCn,
        fc.integer({ min: 1, max: 36_500 }),
        fc.date({ min: new Date('1970-01-02T00:00:00Z'), max: new Date('2200-01-01T00:00:00Z'), noInvalidDate: true }),
        (kind, commonName, validDays, now) => {
          const key = generateIdentityKey();
          const root = createRootCa({ commonName: 'r', validDays: 36_500, key, now });
          const cert =
            kind === 'root'
              ? createRootCa({ commonName, validDays, key, now })
              : kind === 'server'
                ? createServerCertificate(key, { commonName, validDays, now })
                : issueCertificate({ role: kind === 'issued-server' ? 'server' : kind, commonName, publicKey: generateIdentityKey().publicKey, issuer: { key, certificate: root }, validDays, now });
          expect(agree(cert.der)).toBe('fast');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('hand-assembled certificates of many shapes: same result or same error code on both paths', () => {
    const seen = { fast: 0, deferred: 0, 'not-der': 0 };
    fc.assert(
      fc.property(arbShape, (shape) => {
        seen[agree(assemble(shape))]++;
      }),
      { numRuns: 3000 },
    );
    // The menu must exercise both outcomes, or the property says little.
    expect(seen.fast).toBeGreaterThan(50);
    expect(seen.deferred).toBeGreaterThan(50);
  });

  it('our shape with every field varied in range is read fast', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(null, ...ROLES),
        arbName.filter((n) => n.length > 2),
        fc.uint8Array({ minLength: 1, maxLength: 20 }),
        fc.uint8Array({ minLength: 20, maxLength: 20 }),
        (role, name, serial, ski) => {
          const der = assemble({
            version: bytes(0xa0, 0x03, 0x02, 0x01, 0x02),
            serial: tlv(0x02, serial),
            issuer: name,
            notBefore: tlv(0x17, ascii('300101000000Z')),
            notAfter: tlv(0x18, ascii('21300101000000Z')),
            subject: name,
            extensions: ourExtensions(role, ski),
          });
          agree(der);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('mutated certificates (flipped, cut and inserted bytes): same result or same error code on both paths', () => {
    const key = generateIdentityKey();
    const root = createRootCa({ commonName: 'root', validDays: 3650, key });
    const sources = [root.der, createServerCertificate(key).der, issueCertificate({ role: 'gateway', commonName: 'gw', publicKey: key.publicKey, issuer: { key, certificate: root }, validDays: 30 }).der];
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(600), mask: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(600), mask: fc.constant(0) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(600), mask: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...sources), fc.array(mutation, { minLength: 1, maxLength: 3 }), (der, mutations) => {
        let b = der.slice();
        for (const m of mutations) {
          const at = m.at % b.length;
          if (m.kind === 'flip') b[at] = b[at]! ^ m.mask;
          else if (m.kind === 'cut') b = b.subarray(0, at);
          else b = Uint8Array.from([...b.subarray(0, at), m.mask, ...b.subarray(at)]);
          if (b.length === 0) return;
        }
        agree(b);
      }),
      { numRuns: 3000 },
    );
  });

  it('defers what it does not know, and the pkijs path still decides', () => {
    const key = generateIdentityKey();
    const root = createRootCa({ commonName: 'root', validDays: 3650, key });
    const base = {
      issuer: partsOf(root).subjectDer,
      publicKey: generateIdentityKey().publicKey,
      signer: key,
      authorityKeyId: partsOf(root).subjectKeyId,
      validity: { notBefore: root.notBefore, notAfter: root.notAfter },
      role: 'gateway' as const,
      crypto: undefined,
    };
    const named = (subject: Uint8Array, extra: Parameters<typeof buildCertificate>[0]['extraExtensions'] = []) => buildCertificate({ ...base, subject, extraExtensions: extra }).der;
    const raw = (subject: Uint8Array, extensions: Uint8Array[]) =>
      assemble({ version: V3, serial: tlv(0x02, bytes(1)), issuer: subject, notBefore: tlv(0x17, ascii('300101000000Z')), notAfter: tlv(0x17, ascii('310101000000Z')), subject, extensions });
    const gwName = tlv(0x30, tlv(0x31, tlv(0x30, oid('2.5.4.3'), tlv(0x0c, ascii('gw')))), tlv(0x31, tlv(0x30, oid('2.5.4.11'), tlv(0x0c, ascii('gateway')))));
    const cases: Array<[string, Uint8Array, string]> = [
      ['subjectAltName', named(gwName, [ext('2.5.29.17', false, new asn1js.Sequence({ value: [new asn1js.Primitive({ idBlock: { tagClass: 3, tagNumber: 2 }, valueHex: ascii('gw.example') })] }))]), 'ok'],
      ['an unknown critical extension (recorded for the verifier)', named(gwName, [ext('1.2.3.4.5', true, new asn1js.Null())]), 'ok'],
      ['an unknown non-critical extension', named(gwName, [ext('1.2.3.4.5', false, new asn1js.Null())]), 'ok'],
      ['a duplicate keyUsage', raw(gwName, [...ourExtensions('gateway', new Uint8Array(20)), extension('2.5.29.15', TRUE, tlv(0x03, bytes(7, 0x80)))]), 'GS_ERR_CERT_INVALID'],
      ['two gatesock roles', raw(gwName, [extension('2.5.29.37', null, tlv(0x30, roleOid('gateway'), roleOid('server')))]), 'GS_ERR_CERT_INVALID'],
      ['a non-DER critical flag (FALSE written out)', raw(gwName, [extension('2.5.29.14', tlv(0x01, bytes(0)), tlv(0x04, bytes(1, 2)))]), 'ok'],
      ['a BER extension value', raw(gwName, [extension('2.5.29.14', null, bytes(0x04, 0x81, 0x02, 1, 2))]), 'ok'],
      ['a multi-valued RDN', named(tlv(0x30, tlv(0x31, tlv(0x30, oid('2.5.4.3'), tlv(0x0c, ascii('gw'))), tlv(0x30, oid('2.5.4.11'), tlv(0x0c, ascii('gateway')))))), 'ok'],
      ['an IA5String attribute', named(tlv(0x30, tlv(0x31, tlv(0x30, oid('2.5.4.11'), tlv(0x16, ascii('gateway')))))), 'ok'],
      ['an attribute type we cannot print', named(tlv(0x30, tlv(0x31, tlv(0x30, oid('2.5.4.11'), tlv(0x0c, ascii('gateway')))), tlv(0x31, tlv(0x30, oid('1.2.3.4'), tlv(0x0c, ascii('x')))))), 'ok'],
    ];
    for (const [why, der, expected] of cases) {
      expect(readCertificate(der), why).toBeUndefined();
      const o = outcome(parseCertificate, der);
      expect(o, why).toEqual(outcome(parseCertificateWithPkijs, der));
      expect('code' in o ? o.code : 'ok', why).toBe(expected);
    }
  });

  it('refusals the reader reaches itself keep their code: role/OU disagreement, validity ending before it starts', () => {
    const name = (ou: string) => tlv(0x30, tlv(0x31, tlv(0x30, oid('2.5.4.3'), tlv(0x0c, ascii('s')))), tlv(0x31, tlv(0x30, oid('2.5.4.11'), tlv(0x0c, ascii(ou)))));
    const shape = (ou: string, notBefore: string, notAfter: string) =>
      assemble({
        version: bytes(0xa0, 0x03, 0x02, 0x01, 0x02),
        serial: tlv(0x02, bytes(1)),
        issuer: name(ou),
        notBefore: tlv(0x17, ascii(notBefore)),
        notAfter: tlv(0x17, ascii(notAfter)),
        subject: name(ou),
        extensions: ourExtensions('server', new Uint8Array(20)),
      });
    const good = shape('server', '300101000000Z', '310101000000Z');
    expect(readCertificate(good)).toBeDefined();
    expect(parseCertificate(good).role).toBe('server');
    for (const der of [shape('gateway', '300101000000Z', '310101000000Z'), shape('server', '310101000000Z', '300101000000Z')]) {
      expect(readCertificate(der)).toBeDefined(); // the shape is the reader's; the refusal comes from the shared checks
      expect(outcome(parseCertificate, der)).toEqual({ code: 'GS_ERR_CERT_INVALID' });
      expect(outcome(parseCertificateWithPkijs, der)).toEqual({ code: 'GS_ERR_CERT_INVALID' });
    }
  });
});
