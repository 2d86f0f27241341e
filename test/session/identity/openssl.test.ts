// Interop with OpenSSL (3.0 here): our certificates and keys must be what a
// standard tool accepts, and what it makes must be what we accept.
// TOOLCHAIN.md trap 3: `openssl verify` needs -check_ss_sig to check a trust
// anchor's own signature, and -x509_strict for RFC 5280 rules.
import { execFileSync, spawnSync } from 'node:child_process';
import { X509Certificate, createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  GATESOCK_ARC,
  IdentityKey,
  certificateFromPem,
  certificateToPem,
  createServerIdentity,
  parseCertificate,
  verifyCertificateChain,
  type Certificate,
} from '../../../src/session/identity/index.js';
import { createGatewaySystemPki, flipByte } from './pki.js';

const OPENSSL_VERSION = (() => {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
})();
if (!OPENSSL_VERSION) console.warn('openssl.test.ts: SKIPPED — no `openssl` on PATH, so OpenSSL interop is not checked');

describe.skipIf(!OPENSSL_VERSION)(`OpenSSL interop (${OPENSSL_VERSION ?? 'SKIPPED: openssl not found on PATH'})`, () => {
  const dir = mkdtempSync(join(tmpdir(), 'gatesock-openssl-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pki = createGatewaySystemPki();
  const other = createGatewaySystemPki(); // same names, different keys
  const server = createServerIdentity();

  const write = (name: string, certs: Certificate | Uint8Array) => {
    const file = join(dir, name);
    writeFileSync(file, certs instanceof Uint8Array ? `-----BEGIN CERTIFICATE-----\n${Buffer.from(certs).toString('base64')}\n-----END CERTIFICATE-----\n` : certificateToPem(certs));
    return file;
  };
  const root = write('root.pem', pki.root);
  const files = {
    root,
    controller: write('controller.pem', pki.controller.certificate),
    gateway: write('gateway.pem', pki.gateway.certificate),
    server: write('server.pem', server.certificate),
  };
  const openssl = (...args: string[]) => spawnSync('openssl', args, { encoding: 'utf8' });
  const verify = (caFile: string, cert: string) => openssl('verify', '-check_ss_sig', '-x509_strict', '-CAfile', caFile, cert);

  it.each([
    ['root', files.root, ['CA:TRUE', 'Certificate Sign, CRL Sign', 'Subject: CN = gatesock test root']],
    ['controller', files.controller, ['CA:FALSE', 'Digital Signature', 'OU = controller', `${GATESOCK_ARC}.1.1`]],
    ['gateway', files.gateway, ['CA:FALSE', 'Digital Signature', 'OU = gateway', `${GATESOCK_ARC}.1.2`]],
    ['server', files.server, ['CA:FALSE', 'Digital Signature', 'OU = server', `${GATESOCK_ARC}.1.3`]],
  ])('openssl x509 -text parses the %s certificate and shows Ed25519 and its role', (_name, file, expected) => {
    const r = openssl('x509', '-in', file, '-text', '-noout');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('Signature Algorithm: ED25519');
    expect(r.stdout).toContain('Public Key Algorithm: ED25519');
    expect(r.stdout).toContain('Version: 3 (0x2)');
    for (const s of expected) expect(r.stdout).toContain(s);
  });

  it('openssl verify -check_ss_sig -x509_strict accepts the root, controller and gateway (and the self-signed server against itself)', () => {
    for (const file of [files.root, files.controller, files.gateway]) {
      const r = verify(files.root, file);
      expect(r.status, `${file}: ${r.stdout}${r.stderr}`).toBe(0);
      expect(r.stdout).toContain(': OK');
    }
    const s = verify(files.server, files.server);
    expect(s.status, s.stdout + s.stderr).toBe(0);
  });

  it('openssl verify refuses a flipped signature byte, a corrupted root, and another root of the same name', () => {
    const gw = pki.gateway.certificate.der;
    const flipped = write('gateway-flipped.pem', flipByte(gw, gw.length - 1));
    expect(verify(files.root, flipped).status).not.toBe(0);
    const badRoot = write('root-flipped.pem', flipByte(pki.root.der, pki.root.der.length - 1));
    expect(verify(badRoot, badRoot).status).not.toBe(0);
    expect(verify(badRoot, files.gateway).status).not.toBe(0);
    const foreign = write('other-gateway.pem', other.gateway.certificate);
    expect(verify(files.root, foreign).status).not.toBe(0);
  });

  it("Node's X509Certificate agrees: issuer signatures verify, a flipped one does not", () => {
    const rootKey = new X509Certificate(pki.root.der).publicKey;
    expect(new X509Certificate(pki.gateway.certificate.der).verify(rootKey)).toBe(true);
    expect(new X509Certificate(flipByte(pki.gateway.certificate.der, pki.gateway.certificate.der.length - 1)).verify(rootKey)).toBe(false);
  });

  it('openssl pkey reads our PKCS#8 key, and gives the same public key', () => {
    const keyFile = join(dir, 'key.pem');
    writeFileSync(keyFile, server.key.toPem(), { mode: 0o600 });
    const spki = execFileSync('openssl', ['pkey', '-in', keyFile, '-pubout', '-outform', 'DER']);
    expect(new Uint8Array(spki.subarray(-32))).toEqual(server.key.publicKey);
  });

  it('we read what OpenSSL makes: its Ed25519 key, and its self-signed Ed25519 certificate', () => {
    const keyFile = join(dir, 'ossl-key.pem');
    const certFile = join(dir, 'ossl-cert.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyFile]);
    execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=made by openssl/O=Example', '-days', '2', '-out', certFile]);
    const key = IdentityKey.fromPem(readFileSync(keyFile, 'utf8'));
    expect(key.publicKey).toEqual(new Uint8Array(createPublicKey(readFileSync(keyFile)).export({ format: 'der', type: 'spki' }).subarray(-32)));
    const cert = certificateFromPem(readFileSync(certFile, 'utf8'));
    expect(cert.publicKey).toEqual(key.publicKey);
    expect(cert.subject).toBe('O=Example,CN=made by openssl');
    expect(cert.isCa).toBe(true);
    expect(cert.role).toBeNull();
    expect(verifyCertificateChain([cert], { roots: [cert] })).toBe(cert);
  });

  it('an OpenSSL EC certificate is refused as GS_ERR_CERT_INVALID (Ed25519 only)', () => {
    const keyFile = join(dir, 'ec-key.pem');
    execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', keyFile]);
    const der = execFileSync('openssl', ['req', '-x509', '-new', '-key', keyFile, '-subj', '/CN=ec', '-days', '1', '-outform', 'DER']);
    expect(() => parseCertificate(new Uint8Array(der))).toThrow(expect.objectContaining({ code: 'GS_ERR_CERT_INVALID' }));
  });
});
