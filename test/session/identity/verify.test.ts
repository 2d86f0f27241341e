import { describe, expect, it } from 'vitest';
import { CertificateError } from '../../../src/errors/index.js';
import { nativeBackend, nobleBackend, type CryptoBackend } from '../../../src/session/crypto/index.js';
import {
  VerificationCache,
  certificateVerifier,
  createServerIdentity,
  generateIdentityKey,
  msidOf,
  parseCertificate,
  verifyCertificateChain,
  type Certificate,
  type VerifyCertificateOptions,
} from '../../../src/session/identity/index.js';
import { buildCertificate, ext } from '../../../src/session/identity/issue.js';
import { partsOf } from '../../../src/session/identity/certificate.js';
import * as asn1js from 'asn1js';
import { DAY, createGatewaySystemPki, flipByte, indexOfBytes } from './pki.js';
import { codeOf } from '../../helpers/error-code.js';

const NOW = new Date('2031-03-01T00:00:00Z');
const pki = createGatewaySystemPki({ now: NOW });
const gw = pki.gateway.certificate;
const ctl = pki.controller.certificate;
const server = createServerIdentity({ now: NOW });
const base: VerifyCertificateOptions = { roots: [pki.root], now: NOW };

/** A backend that counts Ed25519 verifications. */
function countingBackend(): CryptoBackend & { verifies: number } {
  const b = { ...nobleBackend, verifies: 0 } as CryptoBackend & { verifies: number };
  (b as { ed25519: CryptoBackend['ed25519'] }).ed25519 = {
    ...nobleBackend.ed25519,
    verify: (s, m, k) => {
      b.verifies++;
      return nobleBackend.ed25519.verify(s, m, k);
    },
  };
  return b;
}

describe('verifyCertificateChain accepts', () => {
  it('controller and gateway certificates under the root, with the wanted role', () => {
    expect(verifyCertificateChain([gw], { ...base, role: 'gateway' })).toBe(gw);
    expect(verifyCertificateChain([ctl], { ...base, role: 'controller' })).toBe(ctl);
    expect(verifyCertificateChain([ctl], { ...base, role: ['gateway', 'controller'] })).toBe(ctl);
    expect(verifyCertificateChain([gw], base)).toBe(gw); // no role asked: any
  });

  it('DER input, and chains that carry the root itself', () => {
    expect(verifyCertificateChain([gw.der], { ...base, role: 'gateway' }).der).toEqual(gw.der);
    expect(verifyCertificateChain([gw.der, pki.root.der], { ...base, role: 'gateway' }).der).toEqual(gw.der);
    expect(verifyCertificateChain([pki.root], base)).toBe(pki.root); // the root alone
  });

  it('validity bounds are inclusive', () => {
    expect(verifyCertificateChain([gw], { ...base, now: gw.notBefore })).toBe(gw);
    expect(verifyCertificateChain([gw], { ...base, now: gw.notAfter })).toBe(gw);
  });

  it('a self-signed server pinned by MSID (any hex case), or explicitly allowed', () => {
    const cert = server.certificate;
    expect(verifyCertificateChain([cert], { now: NOW, role: 'server', expectMsid: server.msid })).toBe(cert);
    expect(verifyCertificateChain([cert.der], { now: NOW, role: 'server', expectMsid: `MSID-${server.msid.slice(5).toLowerCase()}` }).der).toEqual(cert.der);
    expect(verifyCertificateChain([cert], { now: NOW, role: 'server', allowSelfSignedServer: true })).toBe(cert);
    expect(verifyCertificateChain([cert], { ...base, role: 'server', expectMsid: server.msid })).toBe(cert); // roots do not get in the way
  });

  it('with either crypto backend', () => {
    for (const crypto of [nobleBackend, nativeBackend()].filter((b) => b !== undefined)) {
      expect(verifyCertificateChain([gw], { ...base, role: 'gateway', crypto })).toBe(gw);
      expect(codeOf(() => verifyCertificateChain([flipByte(gw.der, gw.der.length - 1)], { ...base, crypto }))).toBe('GS_ERR_CERT_BAD_SIGNATURE');
    }
  });

  it('certificateVerifier fits the secure channel: publicKey, msid, role', () => {
    const verify = certificateVerifier({ ...base, role: 'gateway' });
    const peer = verify([gw.der]);
    expect(peer).toMatchObject({ publicKey: pki.gateway.key.publicKey, msid: msidOf(gw), role: 'gateway' });
    expect(peer.certificate.der).toEqual(gw.der);
    expect(() => verify([ctl.der])).toThrow(CertificateError);
    expect(codeOf(() => certificateVerifier({ ...base } as never))).toBe('GS_ERR_INVALID_OPTION');
  });
});

describe('verifyCertificateChain refuses, each with its code', () => {
  const otherPki = createGatewaySystemPki({ now: NOW }); // same names, different keys
  const cnAt = indexOfBytes(gw.der, new TextEncoder().encode('gateway-1'));
  const selfSignedGateway = (() => {
    const key = generateIdentityKey();
    const name = partsOf(gw).subjectDer;
    return buildCertificate({ subject: name, issuer: name, publicKey: key.publicKey, signer: key, authorityKeyId: undefined, validity: { notBefore: gw.notBefore, notAfter: gw.notAfter }, role: 'gateway', crypto: undefined });
  })();
  const issuedByGateway = buildCertificate({
    subject: partsOf(ctl).subjectDer,
    issuer: partsOf(gw).subjectDer,
    publicKey: generateIdentityKey().publicKey,
    signer: pki.gateway.key,
    authorityKeyId: partsOf(gw).subjectKeyId,
    validity: { notBefore: gw.notBefore, notAfter: gw.notAfter },
    role: 'controller',
    crypto: undefined,
  });
  const unknownCritical = buildCertificate({
    subject: partsOf(gw).subjectDer,
    issuer: partsOf(pki.root).subjectDer,
    publicKey: pki.gateway.key.publicKey,
    signer: pki.rootKey,
    authorityKeyId: partsOf(pki.root).subjectKeyId,
    validity: { notBefore: gw.notBefore, notAfter: gw.notAfter },
    role: 'gateway',
    crypto: undefined,
    extraExtensions: [ext('1.2.3.4.5', true, new asn1js.Null())],
  });
  const shortRoot = createGatewaySystemPki({ now: NOW });
  const expiredRootPki = (() => {
    // A root valid 10 days, and a leaf valid a year under it.
    const p = createGatewaySystemPki({ now: NOW });
    const root = buildCertificate({
      subject: partsOf(p.root).subjectDer,
      issuer: partsOf(p.root).subjectDer,
      publicKey: p.rootKey.publicKey,
      signer: p.rootKey,
      authorityKeyId: undefined,
      validity: { notBefore: p.root.notBefore, notAfter: new Date(NOW.getTime() + 10 * DAY) },
      role: null,
      crypto: undefined,
    });
    return { root, leaf: p.gateway.certificate };
  })();

  const cases: Array<[string, () => unknown, string]> = [
    ['wrong role', () => verifyCertificateChain([gw], { ...base, role: 'controller' }), 'GS_ERR_CERT_WRONG_ROLE'],
    ['wrong role (none of several)', () => verifyCertificateChain([gw], { ...base, role: ['controller', 'server'] }), 'GS_ERR_CERT_WRONG_ROLE'],
    ['a root where a role is wanted', () => verifyCertificateChain([pki.root], { ...base, role: 'gateway' }), 'GS_ERR_CERT_WRONG_ROLE'],
    ['self-signed server where a gateway is wanted', () => verifyCertificateChain([server.certificate], { ...base, role: 'gateway', expectMsid: server.msid }), 'GS_ERR_CERT_WRONG_ROLE'],
    ['expired', () => verifyCertificateChain([gw], { ...base, now: new Date(gw.notAfter.getTime() + 1000) }), 'GS_ERR_CERT_EXPIRED'],
    ['not yet valid', () => verifyCertificateChain([gw], { ...base, now: new Date(gw.notBefore.getTime() - 1000) }), 'GS_ERR_CERT_NOT_YET_VALID'],
    ['expired root, valid leaf', () => verifyCertificateChain([expiredRootPki.leaf], { roots: [expiredRootPki.root], now: new Date(NOW.getTime() + 20 * DAY) }), 'GS_ERR_CERT_EXPIRED'],
    ['other root with the same names (leaf alone)', () => verifyCertificateChain([otherPki.gateway.certificate], { ...base, role: 'gateway' }), 'GS_ERR_CERT_UNTRUSTED'],
    ['other root with the same names (root in chain)', () => verifyCertificateChain([otherPki.gateway.certificate, otherPki.root], base), 'GS_ERR_CERT_UNTRUSTED'],
    ['other root itself', () => verifyCertificateChain([otherPki.root], base), 'GS_ERR_CERT_UNTRUSTED'],
    ['no roots at all', () => verifyCertificateChain([gw], { now: NOW }), 'GS_ERR_CERT_UNTRUSTED'],
    ['self-signed gateway', () => verifyCertificateChain([selfSignedGateway], { ...base, role: 'gateway' }), 'GS_ERR_CERT_UNTRUSTED'],
    ['self-signed server, neither pinned nor allowed', () => verifyCertificateChain([server.certificate], { ...base, role: 'server' }), 'GS_ERR_CERT_UNTRUSTED'],
    ['flipped signature byte', () => verifyCertificateChain([flipByte(gw.der, gw.der.length - 1)], base), 'GS_ERR_CERT_BAD_SIGNATURE'],
    ['flipped TBS byte (in the CN)', () => verifyCertificateChain([flipByte(gw.der, cnAt)], base), 'GS_ERR_CERT_BAD_SIGNATURE'],
    ['flipped TBS byte (in the serial)', () => verifyCertificateChain([flipByte(gw.der, 16)], base), 'GS_ERR_CERT_BAD_SIGNATURE'],
    ['self-signed server with a flipped signature', () => verifyCertificateChain([flipByte(server.certificate.der, server.certificate.der.length - 1)], { now: NOW, allowSelfSignedServer: true }), 'GS_ERR_CERT_BAD_SIGNATURE'],
    ['trusted root with a broken self-signature', () => verifyCertificateChain([shortRoot.gateway.certificate], { roots: [parseCertificate(flipByte(shortRoot.root.der, shortRoot.root.der.length - 1))], now: NOW }), 'GS_ERR_CERT_BAD_SIGNATURE'],
    ['MSID mismatch (self-signed server)', () => verifyCertificateChain([server.certificate], { now: NOW, role: 'server', expectMsid: createServerIdentity().msid }), 'GS_ERR_CERT_MSID_MISMATCH'],
    ['MSID mismatch (gateway)', () => verifyCertificateChain([gw], { ...base, expectMsid: msidOf(ctl) }), 'GS_ERR_CERT_MSID_MISMATCH'],
    ['non-CA issuer', () => verifyCertificateChain([issuedByGateway, gw], base), 'GS_ERR_CERT_INVALID'],
    ['broken linkage', () => verifyCertificateChain([ctl, gw], base), 'GS_ERR_CERT_INVALID'],
    ['unknown critical extension', () => verifyCertificateChain([unknownCritical], base), 'GS_ERR_CERT_INVALID'],
    ['empty chain', () => verifyCertificateChain([], base), 'GS_ERR_CERT_INVALID'],
    ['chain of nine', () => verifyCertificateChain(Array(9).fill(gw), base), 'GS_ERR_CERT_INVALID'],
    ['an oversized certificate', () => verifyCertificateChain([new Uint8Array(100_000)], { ...base, cache: new VerificationCache() }), 'GS_ERR_CERT_INVALID'],
    ['garbage in the chain', () => verifyCertificateChain([Uint8Array.of(1, 2, 3)], base), 'GS_ERR_CERT_INVALID'],
    ['a look-alike object', () => verifyCertificateChain([{ ...gw } as Certificate], base), 'GS_ERR_CERT_INVALID'],
    ['bad role option', () => verifyCertificateChain([gw], { ...base, role: 'client' as never }), 'GS_ERR_INVALID_OPTION'],
    ['bad expectMsid option', () => verifyCertificateChain([gw], { ...base, expectMsid: 'MSID-1234' }), 'GS_ERR_INVALID_OPTION'],
    ['roots not parsed certificates', () => verifyCertificateChain([gw], { roots: [pki.root.der as never] }), 'GS_ERR_INVALID_OPTION'],
  ];
  it.each(cases)('%s', (_name, f, code) => {
    expect(codeOf(f)).toBe(code);
  });

  it('the issuer-signed certificate under a non-CA has a good signature: only the CA flag is wrong', () => {
    expect(partsOf(issuedByGateway).signature).toHaveLength(64);
    expect(msidOf(issuedByGateway)).toMatch(/^MSID-/);
  });
});

describe('VerificationCache', () => {
  it('serves a repeated chain without Ed25519 work, but still checks time, role and MSID', () => {
    const fresh = createGatewaySystemPki({ now: NOW }); // its root's self-signature is not memoised yet
    const [gw, ctl] = [fresh.gateway.certificate, fresh.controller.certificate];
    const cache = new VerificationCache();
    const crypto = countingBackend();
    const opts = { roots: [fresh.root], now: NOW, cache, crypto };
    verifyCertificateChain([gw.der], { ...opts, role: 'gateway' });
    const afterFirst = crypto.verifies;
    expect(afterFirst).toBe(2); // the leaf under the root, and the root's own signature
    expect(cache.misses).toBe(1);

    expect(verifyCertificateChain([gw.der], { ...opts, role: 'gateway' }).der).toEqual(gw.der);
    expect(verifyCertificateChain([gw], { ...opts, role: 'gateway' })).toBeDefined(); // same bytes, parsed: same key
    expect(cache.hits).toBe(2);
    expect(crypto.verifies).toBe(afterFirst);

    const later = new Date(gw.notAfter.getTime() + 1000);
    expect(codeOf(() => verifyCertificateChain([gw.der], { ...opts, now: later }))).toBe('GS_ERR_CERT_EXPIRED');
    expect(codeOf(() => verifyCertificateChain([gw.der], { ...opts, role: 'controller' }))).toBe('GS_ERR_CERT_WRONG_ROLE');
    expect(codeOf(() => verifyCertificateChain([gw.der], { ...opts, expectMsid: msidOf(ctl) }))).toBe('GS_ERR_CERT_MSID_MISMATCH');
    expect(cache.hits).toBe(5);
    expect(crypto.verifies).toBe(afterFirst);
  });

  it('a self-signed server stays subject to the pin on every hit', () => {
    const cache = new VerificationCache();
    const cert = server.certificate;
    verifyCertificateChain([cert.der], { now: NOW, cache, expectMsid: server.msid });
    expect(codeOf(() => verifyCertificateChain([cert.der], { now: NOW, cache }))).toBe('GS_ERR_CERT_UNTRUSTED');
    expect(codeOf(() => verifyCertificateChain([cert.der], { now: NOW, cache, expectMsid: createServerIdentity().msid }))).toBe('GS_ERR_CERT_MSID_MISMATCH');
    expect(cache.hits).toBe(2);
  });

  it('keys on the roots too, and does not store failures', () => {
    const cache = new VerificationCache();
    verifyCertificateChain([gw], { ...base, cache });
    const other = createGatewaySystemPki({ now: NOW });
    expect(codeOf(() => verifyCertificateChain([gw], { roots: [other.root], now: NOW, cache }))).toBe('GS_ERR_CERT_UNTRUSTED');
    expect(codeOf(() => verifyCertificateChain([gw], { roots: [other.root], now: NOW, cache }))).toBe('GS_ERR_CERT_UNTRUSTED');
    expect(cache.hits).toBe(0);
    expect(cache.misses).toBe(3);
    expect(cache.size).toBe(1);
  });

  it('is bounded and evicts the least recently used entry', () => {
    const cache = new VerificationCache({ maxEntries: 2 });
    const crypto = countingBackend();
    const opts = { ...base, cache, crypto };
    const [a, b, c] = [pki.issue('gateway', 'a').certificate, pki.issue('gateway', 'b').certificate, pki.issue('gateway', 'c').certificate];
    verifyCertificateChain([a], opts);
    verifyCertificateChain([b], opts);
    verifyCertificateChain([a], opts); // a is now the most recent
    verifyCertificateChain([c], opts); // evicts b
    expect(cache.size).toBe(2);
    const before = crypto.verifies;
    verifyCertificateChain([a], opts);
    expect(crypto.verifies).toBe(before); // still cached
    verifyCertificateChain([b], opts);
    expect(crypto.verifies).toBeGreaterThan(before); // had been evicted
    cache.clear();
    expect(cache.size).toBe(0);
    expect(codeOf(() => new VerificationCache({ maxEntries: 0 }))).toBe('GS_ERR_INVALID_OPTION');
  });
});
