// The gateway system's PKI on disk: initPki writes a root CA, a controller and
// gateways signed by it; loadPki reads and checks them; addGateway issues more
// from the stored root key. OpenSSL (TOOLCHAIN.md trap 3: -check_ss_sig and
// -x509_strict) must accept every certificate against root/cert.pem.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CertificateError, ConfigError } from '../../src/errors/index.js';
import { PKI_DEFAULTS, addGateway, initPki, loadPki, type PkiIdentityFiles } from '../../src/relay/pki.js';
import {
  certificateFromPem,
  certificatesFromPem,
  createServerIdentity,
  loadIdentity,
  msidOf,
  saveIdentity,
  verifyCertificateChain,
  type Certificate,
  type Role,
} from '../../src/session/index.js';
import { rejection } from '../helpers/rejection.js';

const work = mkdtempSync(join(tmpdir(), 'gatesock-pki-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));
let n = 0;
const freshDir = () => join(work, `pki-${++n}`);

const OPENSSL_VERSION = (() => {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
})();
if (!OPENSSL_VERSION) console.warn('pki.test.ts: openssl checks SKIPPED — no `openssl` on PATH');
const opensslVerify = (caFile: string, certFile: string) =>
  spawnSync('openssl', ['verify', '-check_ss_sig', '-x509_strict', '-CAfile', caFile, certFile], { encoding: 'utf8' });

const readCert = (file: string): Certificate => certificateFromPem(readFileSync(file, 'utf8'));
const mode = (file: string) => statSync(file).mode & 0o777;

/** Checks one identity folder: files, modes, role, signature by `root`, MSID. */
function expectIssued(files: PkiIdentityFiles, root: Certificate, role: Role): void {
  expect(existsSync(files.certificatePath)).toBe(true);
  expect(mode(files.keyPath)).toBe(0o600);
  expect(readFileSync(files.keyPath, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
  const chain = certificatesFromPem(readFileSync(files.certificatePath, 'utf8'));
  expect(chain).toHaveLength(1); // leaf only: peers ship the root
  const leaf = chain[0]!;
  expect(leaf.role).toBe(role);
  expect(leaf.isCa).toBe(false);
  expect(leaf.issuer).toBe(root.subject);
  expect(msidOf(leaf)).toBe(files.msid);
  expect(verifyCertificateChain([leaf], { roots: [root], role }).der).toEqual(leaf.der);
  // Another role is refused: the role is in the certificate, not in the folder name.
  const other: Role = role === 'gateway' ? 'controller' : 'gateway';
  expect(() => verifyCertificateChain([leaf], { roots: [root], role: other })).toThrow(expect.objectContaining({ code: 'GS_ERR_CERT_WRONG_ROLE' }));
}

describe('initPki', () => {
  it('writes a root CA, a controller and two gateways, keys 0600, each signed by the root with its role', async () => {
    const dir = freshDir();
    const layout = await initPki({ directory: dir });
    expect(layout.directory).toBe(dir);
    expect(readdirSync(dir).sort()).toEqual(['controller', 'gateway-1', 'gateway-2', 'root']);
    expect(layout.root).toMatchObject({ directory: join(dir, 'root'), certificatePath: join(dir, 'root/cert.pem'), keyPath: join(dir, 'root/key.pem') });
    expect(layout.controller.certificatePath).toBe(join(dir, 'controller/cert.pem'));
    expect(layout.gateways.map((g) => [g.name, g.certificatePath, g.keyPath])).toEqual([
      ['gateway-1', join(dir, 'gateway-1/cert.pem'), join(dir, 'gateway-1/key.pem')],
      ['gateway-2', join(dir, 'gateway-2/cert.pem'), join(dir, 'gateway-2/key.pem')],
    ]);
    expect(PKI_DEFAULTS.gateways).toBe(2);

    const root = readCert(layout.root.certificatePath);
    expect(mode(layout.root.keyPath)).toBe(0o600);
    expect(root.isCa).toBe(true);
    expect(root.role).toBeNull();
    expect(root.commonName).toBe('gatesock root CA');
    expect(msidOf(root)).toBe(layout.root.msid);
    expect(verifyCertificateChain([root], { roots: [root] }).der).toEqual(root.der);
    // The root key on disk is the root certificate's key.
    expect((await loadIdentity(layout.root.directory)).msid).toBe(layout.root.msid);

    expectIssued(layout.controller, root, 'controller');
    for (const g of layout.gateways) expectIssued(g, root, 'gateway');
    expect(readCert(layout.controller.certificatePath).commonName).toBe('gatesock controller');
    expect(readCert(layout.gateways[1]!.certificatePath).commonName).toBe('gatesock gateway-2');
    expect(new Set([layout.root.msid, layout.controller.msid, ...layout.gateways.map((g) => g.msid)]).size).toBe(4);

    // A root made elsewhere does not vouch for these.
    const stranger = readCert((await initPki({ directory: freshDir(), gateways: 0 })).root.certificatePath);
    expect(() => verifyCertificateChain([readCert(layout.controller.certificatePath)], { roots: [stranger] })).toThrow(CertificateError);
  });

  it('takes the number of gateways, the validity and the name prefix', async () => {
    const dir = freshDir();
    const before = Date.now();
    const layout = await initPki({ directory: dir, gateways: 3, validDays: 30, commonNamePrefix: 'acme' });
    expect(layout.gateways.map((g) => g.name)).toEqual(['gateway-1', 'gateway-2', 'gateway-3']);
    const root = readCert(layout.root.certificatePath);
    expect(root.commonName).toBe('acme root CA');
    for (const file of [layout.root.certificatePath, layout.controller.certificatePath, layout.gateways[2]!.certificatePath]) {
      const days = (readCert(file).notAfter.getTime() - before) / 86_400_000;
      expect(days).toBeGreaterThan(29.99);
      expect(days).toBeLessThan(30.01);
    }
    expect(readCert(layout.gateways[2]!.certificatePath).commonName).toBe('acme gateway-3');
    expect((await initPki({ directory: freshDir(), gateways: 0 })).gateways).toEqual([]);
  });

  it.skipIf(!OPENSSL_VERSION)(`openssl verify -check_ss_sig -x509_strict accepts every certificate against root/cert.pem (${OPENSSL_VERSION ?? 'no openssl'})`, async () => {
    const layout = await initPki({ directory: freshDir() });
    for (const files of [layout.controller, ...layout.gateways]) {
      const r = opensslVerify(layout.root.certificatePath, files.certificatePath);
      expect(r.stderr).toBe('');
      expect(r.stdout.trim()).toBe(`${files.certificatePath}: OK`);
      expect(r.status).toBe(0);
    }
    // And refuses them against another root, so the check above means something.
    const other = await initPki({ directory: freshDir(), gateways: 0 });
    const r = opensslVerify(other.root.certificatePath, layout.controller.certificatePath);
    expect(r.status).not.toBe(0);
  });

  it('refuses to overwrite an existing PKI unless forced, and force replaces it', async () => {
    const dir = freshDir();
    const first = await initPki({ directory: dir, gateways: 3 });
    const rootPem = readFileSync(first.root.certificatePath, 'utf8');
    const err = await rejection(initPki({ directory: dir }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.code).toBe('GS_ERR_INVALID_OPTION');
    expect(err.message).toMatch(/already holds a PKI \(.*root.*\); pass force \(--force\) to replace it/);
    expect(readFileSync(first.root.certificatePath, 'utf8')).toBe(rootPem);
    expect(readdirSync(dir).sort()).toEqual(['controller', 'gateway-1', 'gateway-2', 'gateway-3', 'root']);

    // An operator's own file in a PKI folder survives a forced init.
    writeFileSync(join(dir, 'gateway-3', 'notes.txt'), 'rack 4\n');
    const second = await initPki({ directory: dir, force: true });
    expect(readFileSync(second.root.certificatePath, 'utf8')).not.toBe(rootPem);
    expect(second.root.msid).not.toBe(first.root.msid);
    expect(existsSync(join(dir, 'gateway-3', 'cert.pem'))).toBe(false);
    expect(readFileSync(join(dir, 'gateway-3', 'notes.txt'), 'utf8')).toBe('rack 4\n');
    // No stale certificate from the old root is left to be loaded.
    const loaded = await loadPki(dir);
    expect([...loaded.gateways.keys()]).toEqual(['gateway-1', 'gateway-2']);
    expect(loaded.layout.root.msid).toBe(second.root.msid);
  });

  it('refuses a folder holding only part of a PKI, too', async () => {
    const dir = freshDir();
    await initPki({ directory: dir });
    rmSync(join(dir, 'root'), { recursive: true });
    const err = await rejection(initPki({ directory: dir }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(/already holds a PKI/);
  });

  it.each([
    [{ directory: '' }, /^directory must be/],
    [{ gateways: -1 }, /^gateways must be an integer from 0 to 256/],
    [{ gateways: 1.5 }, /^gateways must be/],
    [{ gateways: 257 }, /^gateways must be/],
    [{ validDays: 0 }, /^validDays must be an integer ≥ 1/],
    [{ commonNamePrefix: '' }, /^commonNamePrefix must be a string of 1 to 24 characters/],
    [{ commonNamePrefix: 'x'.repeat(25) }, /^commonNamePrefix must be/],
  ])('refuses %j by name and writes nothing', async (bad, why) => {
    const dir = freshDir();
    const err = await rejection(initPki({ directory: dir, ...bad }));
    expect(err).toBeInstanceOf(ConfigError);
    expect(err.message).toMatch(why);
    expect(existsSync(dir)).toBe(false);
  });
});

describe('loadPki', () => {
  it('loads the root certificate, the controller and the gateways by name', async () => {
    const dir = freshDir();
    const layout = await initPki({ directory: dir, gateways: 2 });
    mkdirSync(join(dir, 'logs')); // a folder without a certificate is not a gateway
    const pki = await loadPki(dir);
    expect(pki.layout).toEqual(layout);
    expect(msidOf(pki.root)).toBe(layout.root.msid);
    expect(pki.controller.msid).toBe(layout.controller.msid);
    expect(pki.controller.certificate.role).toBe('controller');
    expect([...pki.gateways.keys()]).toEqual(['gateway-1', 'gateway-2']);
    expect(pki.gateways.get('gateway-2')?.msid).toBe(layout.gateways[1]!.msid);
    // The identities sign: their keys are the certificates' keys.
    const msg = new TextEncoder().encode('hello');
    expect(pki.gateways.get('gateway-1')!.sign(msg)).toHaveLength(64);
  });

  it('works without the root key (kept offline)', async () => {
    const dir = freshDir();
    await initPki({ directory: dir });
    rmSync(join(dir, 'root', 'key.pem'));
    expect((await loadPki(dir)).gateways.size).toBe(2);
  });

  it('refuses a certificate from another root, or in the wrong role', async () => {
    const dir = freshDir();
    await initPki({ directory: dir });
    const other = await initPki({ directory: freshDir() });
    // gateway-2 replaced by another system's gateway.
    for (const f of ['cert.pem', 'key.pem']) writeFileSync(join(dir, 'gateway-2', f), readFileSync(join(other.directory, 'gateway-1', f)));
    expect(await rejection(loadPki(dir))).toMatchObject({ code: 'GS_ERR_CERT_UNTRUSTED' });

    const dir2 = freshDir();
    await initPki({ directory: dir2 });
    // The controller's folder holds a gateway certificate.
    for (const f of ['cert.pem', 'key.pem']) writeFileSync(join(dir2, 'controller', f), readFileSync(join(dir2, 'gateway-1', f)));
    expect(await rejection(loadPki(dir2))).toMatchObject({ code: 'GS_ERR_CERT_WRONG_ROLE' });
  });

  it('leaves a server identity kept beside the PKI alone: not a gateway to loadPki, not removed by init --force', async () => {
    const dir = freshDir();
    await initPki({ directory: dir });
    const server = createServerIdentity();
    await saveIdentity(server, join(dir, 'server-identity'));
    const loaded = await loadPki(dir);
    expect([...loaded.gateways.keys()]).toEqual(['gateway-1', 'gateway-2']);
    await initPki({ directory: dir, force: true });
    expect((await loadIdentity(join(dir, 'server-identity'))).msid).toBe(server.msid);
  });

  it('fails with the file-system error when there is no PKI', async () => {
    expect(await rejection(loadPki(freshDir()))).toMatchObject({ code: 'ENOENT' });
  });
});

describe('addGateway', () => {
  it('issues one more gateway from the stored root key, which loadPki then finds', async () => {
    const dir = freshDir();
    const layout = await initPki({ directory: dir, gateways: 2, commonNamePrefix: 'acme' });
    const root = readCert(layout.root.certificatePath);
    const g = await addGateway(dir, 'gateway-10');
    expect(g).toMatchObject({ name: 'gateway-10', directory: join(dir, 'gateway-10'), certificatePath: join(dir, 'gateway-10/cert.pem'), keyPath: join(dir, 'gateway-10/key.pem') });
    expectIssued(g, root, 'gateway');
    expect(readCert(g.certificatePath).commonName).toBe('acme gateway-10'); // the prefix comes from the root's name
    // Not valid beyond the root.
    expect(readCert(g.certificatePath).notAfter.getTime()).toBeLessThanOrEqual(root.notAfter.getTime());
    if (OPENSSL_VERSION) expect(opensslVerify(layout.root.certificatePath, g.certificatePath).status).toBe(0);

    const eu = await addGateway(dir, 'eu-west.1', { validDays: 7 });
    expectIssued(eu, root, 'gateway');
    const pki = await loadPki(dir);
    expect([...pki.gateways.keys()]).toEqual(['eu-west.1', 'gateway-1', 'gateway-2', 'gateway-10']);
    expect(pki.gateways.get('gateway-10')?.msid).toBe(g.msid);
  });

  it('refuses an existing gateway, a bad name, and a folder without a root key', async () => {
    const dir = freshDir();
    const layout = await initPki({ directory: dir });
    const before = readFileSync(layout.gateways[0]!.certificatePath, 'utf8');
    const taken = await rejection(addGateway(dir, 'gateway-1'));
    expect(taken).toBeInstanceOf(ConfigError);
    expect(taken.message).toMatch(/"gateway-1" already has a certificate/);
    expect(readFileSync(layout.gateways[0]!.certificatePath, 'utf8')).toBe(before);

    for (const bad of ['', '../escape', 'a/b', '.hidden', 'has space', 'x'.repeat(33), 'root', 'controller']) {
      const err = await rejection(addGateway(dir, bad));
      expect(err, bad).toBeInstanceOf(ConfigError);
      expect(err.message, bad).toMatch(/^name must/);
    }
    expect(existsSync(join(work, 'escape'))).toBe(false);

    rmSync(layout.root.keyPath);
    expect(await rejection(addGateway(dir, 'gateway-3'))).toMatchObject({ code: 'ENOENT' });
    expect(existsSync(join(dir, 'gateway-3'))).toBe(false);
  });
});
