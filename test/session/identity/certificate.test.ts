import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CertificateError, ConfigError } from '../../../src/errors/index.js';
import {
  DEFAULT_CERTIFICATE_OPTIONS,
  GATESOCK_ARC,
  ROLE_PURPOSE_OIDS,
  createRootCa,
  createServerCertificate,
  generateIdentityKey,
  issueCertificate,
  parseCertificate,
  type Certificate,
} from '../../../src/session/identity/index.js';
import { ROLE_PURPOSE_DER } from '../../../src/session/identity/oids.js';
import { DAY, createGatewaySystemPki, indexOfBytes } from './pki.js';
import { codeOf } from '../../helpers/error-code.js';

const NOW = new Date('2030-06-15T12:00:00.500Z');
const HOUR = 3_600_000;

describe('certificate round trips (build → DER → parse)', () => {
  const pki = createGatewaySystemPki({ now: NOW });
  const serverKey = generateIdentityKey();
  const server = createServerCertificate(serverKey, { now: NOW });

  const cases: Array<[string, Certificate, Partial<Certificate>]> = [
    ['root', pki.root, { role: null, isCa: true, commonName: 'gatesock test root', subject: 'CN=gatesock test root', issuer: 'CN=gatesock test root' }],
    [
      'controller',
      pki.controller.certificate,
      { role: 'controller', isCa: false, commonName: 'controller-1', subject: 'OU=controller,CN=controller-1', issuer: 'CN=gatesock test root' },
    ],
    ['gateway', pki.gateway.certificate, { role: 'gateway', isCa: false, commonName: 'gateway-1', subject: 'OU=gateway,CN=gateway-1', issuer: 'CN=gatesock test root' }],
    ['server', server, { role: 'server', isCa: false }],
  ];

  it.each(cases)('%s: parsing its DER gives the same fields and bytes', (_name, cert, expected) => {
    const again = parseCertificate(cert.der);
    expect(again.der).toEqual(cert.der);
    for (const [k, v] of Object.entries(expected)) expect(again[k as keyof Certificate]).toEqual(v);
    for (const k of ['commonName', 'role', 'publicKey', 'notBefore', 'notAfter', 'isCa', 'subject', 'issuer', 'serialNumber'] as const) {
      expect(again[k]).toEqual(cert[k]);
    }
    expect(again.publicKey).toHaveLength(32);
  });

  it('keys: leaf certificates carry the subject key, the root its own', () => {
    expect(pki.root.publicKey).toEqual(pki.rootKey.publicKey);
    expect(pki.gateway.certificate.publicKey).toEqual(pki.gateway.key.publicKey);
    expect(server.publicKey).toEqual(serverKey.publicKey);
  });

  it('server: self-signed, CN derived from the key, 100-year validity', () => {
    expect(server.issuer).toBe(server.subject);
    expect(server.commonName).toMatch(/^gatesock-server-[0-9a-f]{16}$/);
    expect(server.subject).toBe(`OU=server,CN=${server.commonName}`);
    expect(server.notAfter.getTime()).toBe(Math.floor((NOW.getTime() + DEFAULT_CERTIFICATE_OPTIONS.serverValidDays * DAY) / 1000) * 1000);
    expect(server.notAfter.getUTCFullYear()).toBe(2130); // GeneralizedTime (≥ 2050) round-trips
  });

  it('validity: starts one hour back (clock skew), ends validDays later, whole seconds', () => {
    const c = pki.gateway.certificate;
    expect(c.notBefore.getTime()).toBe(Math.floor((NOW.getTime() - HOUR) / 1000) * 1000);
    expect(c.notAfter.getTime()).toBe(Math.floor((NOW.getTime() + 365 * DAY) / 1000) * 1000);
  });

  it('serial numbers: 16 random bytes, positive, distinct', () => {
    const serials = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const c = createServerCertificate(serverKey, { now: NOW });
      expect(c.serialNumber).toMatch(/^[1-7][0-9A-F]{31}$|^0[1-9A-F][0-9A-F]{30}$/);
      serials.add(c.serialNumber);
    }
    expect(serials.size).toBe(50);
  });

  it('the role is in extendedKeyUsage (its private purpose OID) and in the subject OU', () => {
    for (const [role, oidDer] of ROLE_PURPOSE_DER) {
      const cert = role === 'server' ? server : role === 'gateway' ? pki.gateway.certificate : pki.controller.certificate;
      expect(cert.role).toBe(role);
      expect(() => indexOfBytes(cert.der, oidDer)).not.toThrow();
      expect(() => indexOfBytes(cert.der, new TextEncoder().encode(role))).not.toThrow();
      for (const [other, otherDer] of ROLE_PURPOSE_DER) if (other !== role) expect(() => indexOfBytes(cert.der, otherDer)).toThrow();
    }
    expect(ROLE_PURPOSE_OIDS).toEqual({ controller: `${GATESOCK_ARC}.1.1`, gateway: `${GATESOCK_ARC}.1.2`, server: `${GATESOCK_ARC}.1.3` });
    expect(() => indexOfBytes(pki.root.der, ROLE_PURPOSE_DER[0]![1].subarray(0, 8))).toThrow(); // the root has no role
  });

  it('toJSON and toString show public fields only', () => {
    const json = JSON.parse(JSON.stringify(pki.gateway.certificate));
    expect(json).toMatchObject({ subject: 'OU=gateway,CN=gateway-1', role: 'gateway', isCa: false });
    expect(String(pki.gateway.certificate)).toBe('Certificate(OU=gateway,CN=gateway-1)');
  });

  it('byte and date fields are copies: changing them does not change the certificate', () => {
    const c = pki.gateway.certificate;
    const der = c.der;
    der.fill(0);
    c.publicKey.fill(0);
    c.notAfter.setTime(0);
    expect(c.der).not.toEqual(der);
    expect(c.publicKey).toEqual(pki.gateway.key.publicKey);
    expect(c.notAfter.getTime()).toBeGreaterThan(0);
  });
});

describe('option checks', () => {
  const key = generateIdentityKey();
  const root = createRootCa({ commonName: 'r', validDays: 10, key });
  const base = { role: 'gateway' as const, commonName: 'g', publicKey: generateIdentityKey().publicKey, issuer: { key, certificate: root }, validDays: 10 };

  it.each([
    ['empty commonName', () => createRootCa({ commonName: '', validDays: 1, key })],
    ['commonName over 64 characters', () => createRootCa({ commonName: 'x'.repeat(65), validDays: 1, key })],
    ['validDays 0', () => createRootCa({ commonName: 'r', validDays: 0, key })],
    ['validDays 1.5', () => createRootCa({ commonName: 'r', validDays: 1.5, key })],
    ['validDays past 9999', () => createRootCa({ commonName: 'r', validDays: 3_000_000, key })],
    ['key not an IdentityKey', () => createRootCa({ commonName: 'r', validDays: 1, key: {} as never })],
    ['unknown role', () => issueCertificate({ ...base, role: 'client' as never })],
    ['short public key', () => issueCertificate({ ...base, publicKey: new Uint8Array(31) })],
    ['issuer key not the issuer certificate key', () => issueCertificate({ ...base, issuer: { key: generateIdentityKey(), certificate: root } })],
    [
      'non-CA issuer',
      () => {
        const gk = generateIdentityKey();
        const gw = issueCertificate({ ...base, publicKey: gk.publicKey });
        return issueCertificate({ ...base, issuer: { key: gk, certificate: gw } });
      },
    ],
    ['invalid now', () => createServerCertificate(key, { now: new Date(NaN) })],
  ])('%s → ConfigError GS_ERR_INVALID_OPTION', (_name, f) => {
    expect(f).toThrow(ConfigError);
    expect(codeOf(f)).toBe('GS_ERR_INVALID_OPTION');
  });
});

describe('parseCertificate refuses malformed input with GS_ERR_CERT_INVALID', () => {
  const pki = createGatewaySystemPki();
  const der = pki.gateway.certificate.der;

  it.each([
    ['empty', new Uint8Array(0)],
    ['one byte', Uint8Array.of(0x30)],
    ['truncated', der.subarray(0, der.length - 1)],
    ['trailing byte', Uint8Array.from([...der, 0])],
    ['a bare SEQUENCE', Uint8Array.of(0x30, 0x00)],
    ['huge', new Uint8Array(20_000)],
  ])('%s', (_name, bytes) => {
    expect(() => parseCertificate(bytes)).toThrow(CertificateError);
    expect(codeOf(() => parseCertificate(bytes))).toBe('GS_ERR_CERT_INVALID');
  });

  it('non-DER framing (a long-form length where the short form fits) is refused', () => {
    // The first short-form length inside: the version [0] wrapper, A0 03 02 01 02.
    const i = indexOfBytes(der, Uint8Array.of(0xa0, 0x03, 0x02, 0x01, 0x02));
    const ber = Uint8Array.from([...der.subarray(0, i + 1), 0x81, 0x03, ...der.subarray(i + 2)]);
    // Fix the enclosing lengths (outer SEQUENCE and TBS SEQUENCE both use 2-byte long forms: 30 82 hh ll).
    for (const at of [2, 6]) {
      const n = (ber[at]! << 8) + ber[at + 1]! + 1;
      ber[at] = n >> 8;
      ber[at + 1] = n & 0xff;
    }
    expect(codeOf(() => parseCertificate(ber))).toBe('GS_ERR_CERT_INVALID');
  });

  it('not a Uint8Array', () => {
    expect(codeOf(() => parseCertificate('x' as never))).toBe('GS_ERR_CERT_INVALID');
  });

  it('fuzz: random bytes never crash the parser', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const code = codeOf(() => parseCertificate(bytes));
        return code === 'GS_ERR_CERT_INVALID';
      }),
      { numRuns: 2000 },
    );
  });

  it('fuzz: mutated valid DER either parses or is refused with GS_ERR_CERT_INVALID', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(der.length - 1), mask: fc.integer({ min: 1, max: 255 }) }),
      fc.record({ kind: fc.constant('cut' as const), at: fc.nat(der.length - 1), mask: fc.constant(0) }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(der.length), mask: fc.integer({ min: 0, max: 255 }) }),
    );
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 3 }), (mutations) => {
        let b = der.slice();
        for (const m of mutations) {
          const at = Math.min(m.at, b.length - 1);
          if (m.kind === 'flip') b[at] = b[at]! ^ m.mask;
          else if (m.kind === 'cut') b = b.subarray(0, at);
          else b = Uint8Array.from([...b.subarray(0, at), m.mask, ...b.subarray(at)]);
          if (b.length === 0) break;
        }
        try {
          const c = parseCertificate(b);
          return c.publicKey.length === 32;
        } catch (e) {
          return e instanceof CertificateError && e.code === 'GS_ERR_CERT_INVALID';
        }
      }),
      { numRuns: 3000 },
    );
  });
});
