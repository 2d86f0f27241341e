import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateError, ConfigError, CryptoError } from '../../../src/errors/index.js';
import {
  IDENTITY_FILES,
  certificateFromPem,
  certificateToPem,
  certificatesFromPem,
  certificatesToPem,
  createIdentity,
  createServerIdentity,
  generateIdentityKey,
  loadIdentity,
  loadOrCreateServerIdentity,
  saveIdentity,
} from '../../../src/session/identity/index.js';
import { createGatewaySystemPki } from './pki.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gatesock-identity-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('certificate PEM', () => {
  const pki = createGatewaySystemPki();

  it('one certificate round-trips, with 64-character lines', () => {
    const pem = certificateToPem(pki.gateway.certificate);
    expect(pem).toMatch(/^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=]{1,64}\n)+-----END CERTIFICATE-----\n$/);
    expect(pem.split('\n').slice(1, -3).every((l) => l.length === 64)).toBe(true);
    expect(certificateFromPem(pem).der).toEqual(pki.gateway.certificate.der);
  });

  it('bundles round-trip in order; CRLF, comments and other blocks are tolerated', () => {
    const chain = [pki.gateway.certificate, pki.root];
    const pem = certificatesToPem(chain);
    expect(certificatesFromPem(pem).map((c) => c.subject)).toEqual(chain.map((c) => c.subject));
    const messy = `subject=whatever\r\n${pem.replace(/\n/g, '\r\n')}\n${generateIdentityKey().toPem()}`;
    expect(certificatesFromPem(messy).map((c) => c.der)).toEqual(chain.map((c) => c.der));
    expect(() => certificateFromPem(pem)).toThrow(/expected one certificate, found 2/);
  });

  it.each([
    ['no block', 'nothing here'],
    ['bad base64', '-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n'],
    ['non-canonical base64 (padding bits set)', '-----BEGIN CERTIFICATE-----\nMAB=\n-----END CERTIFICATE-----\n'],
    ['not a certificate inside', '-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n'],
  ])('%s → GS_ERR_CERT_INVALID', (_name, text) => {
    expect(() => certificatesFromPem(text)).toThrow(CertificateError);
  });
});

describe('identity files', () => {
  it('saveIdentity writes key (0600) and chain; loadIdentity reads them back', async () => {
    const pki = createGatewaySystemPki();
    const identity = createIdentity(pki.gateway.key, [pki.gateway.certificate, pki.root]);
    const where = join(dir, 'gw');
    const paths = await saveIdentity(identity, where);
    expect(paths).toEqual({ keyPath: join(where, IDENTITY_FILES.key), certificatePath: join(where, IDENTITY_FILES.certificate) });
    if (process.platform !== 'win32') {
      expect((await stat(paths.keyPath)).mode & 0o777).toBe(0o600);
      expect((await stat(where)).mode & 0o077).toBe(0);
    }
    expect(await readFile(paths.keyPath, 'utf8')).toBe(pki.gateway.key.toPem());
    const loaded = await loadIdentity(where);
    expect(loaded.key.publicKey).toEqual(identity.key.publicKey);
    expect(loaded.chain.map((c) => c.der)).toEqual(identity.chain.map((c) => c.der));
    expect(loaded.certificateChain).toEqual(identity.certificateChain);
    expect(loaded.msid).toBe(identity.msid);
  });

  it('refuses to overwrite unless asked, and then replaces both files', async () => {
    const where = join(dir, 'srv-overwrite');
    const first = createServerIdentity();
    await saveIdentity(first, where);
    const second = createServerIdentity();
    await expect(saveIdentity(second, where)).rejects.toThrow(ConfigError);
    expect((await loadIdentity(where)).msid).toBe(first.msid);
    await saveIdentity(second, where, { overwrite: true });
    expect((await loadIdentity(where)).msid).toBe(second.msid);
  });

  it('explicit paths work too', async () => {
    const id = createServerIdentity();
    const paths = { keyPath: join(dir, 'explicit.key'), certificatePath: join(dir, 'explicit.crt') };
    await saveIdentity(id, paths);
    expect((await loadIdentity(paths)).msid).toBe(id.msid);
  });

  it('a key that is not the leaf certificate key is refused (GS_ERR_BAD_KEY)', async () => {
    const where = join(dir, 'mismatch');
    await saveIdentity(createServerIdentity(), where);
    await writeFile(join(where, IDENTITY_FILES.key), generateIdentityKey().toPem());
    await expect(loadIdentity(where)).rejects.toThrow(CryptoError);
    expect(() => createIdentity(generateIdentityKey(), [createServerIdentity().certificate])).toThrow(/does not belong/);
  });

  it('loadOrCreateServerIdentity creates once, then loads the same identity (same MSID)', async () => {
    const where = join(dir, 'server-home');
    const first = await loadOrCreateServerIdentity(where);
    expect(first.certificate.role).toBe('server');
    const again = await loadOrCreateServerIdentity(where);
    expect(again.msid).toBe(first.msid);
    expect(again.key.publicKey).toEqual(first.key.publicKey);
  });

  it('a missing file rejects with the file-system error', async () => {
    await expect(loadIdentity(join(dir, 'nowhere'))).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
