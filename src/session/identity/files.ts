/**
 * Identities on disk: the key as PEM `PRIVATE KEY` (PKCS#8, mode 0600) and
 * the chain as a PEM `CERTIFICATE` bundle, leaf first. OpenSSL reads both.
 *
 * Node only: `node:fs` is loaded when one of these functions runs, so
 * importing the identity module elsewhere does not need it.
 */
import type * as NodeFs from 'node:fs/promises';
import type * as NodePath from 'node:path';
import { checkOption } from '../../errors/check.js';
import { createIdentity, createServerIdentity, type Identity } from './identity.js';
import { IdentityKey, type CryptoOption } from './keys.js';
import { certificatesFromPem, certificatesToPem } from './pem.js';
import type { ServerCertificateOptions } from './issue.js';

/**
 * File names inside an identity directory.
 * @public
 */
export const IDENTITY_FILES = Object.freeze({ key: 'key.pem', certificate: 'cert.pem' });

/**
 * Where an identity lives: a directory (holding {@link IDENTITY_FILES}) or two explicit paths.
 * @public
 */
export type IdentityLocation = string | { readonly keyPath: string; readonly certificatePath: string };

/** Options of {@link saveIdentity}. @public */
export interface SaveIdentityOptions {
  /** Replace existing files. Default false: refuse, so a server's key (and so its MSID) is never replaced by accident. */
  overwrite?: boolean;
}

function node(): { fs: typeof NodeFs; path: typeof NodePath } {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const fs = proc?.getBuiltinModule?.('node:fs/promises') as typeof NodeFs | undefined;
  const path = proc?.getBuiltinModule?.('node:path') as typeof NodePath | undefined;
  checkOption(fs !== undefined && path !== undefined, 'identity files', 'need Node.js ≥ 20.16 (process.getBuiltinModule)');
  return { fs, path };
}

function resolvePaths(location: IdentityLocation, path: typeof NodePath): { keyPath: string; certificatePath: string } {
  if (typeof location === 'string') {
    checkOption(location.length > 0, 'location', 'must be a directory path or { keyPath, certificatePath }');
    return { keyPath: path.join(location, IDENTITY_FILES.key), certificatePath: path.join(location, IDENTITY_FILES.certificate) };
  }
  checkOption(typeof location?.keyPath === 'string' && typeof location.certificatePath === 'string', 'location', 'must be a directory path or { keyPath, certificatePath }');
  return { keyPath: location.keyPath, certificatePath: location.certificatePath };
}

/**
 * Write an identity: the key with mode 0600, the chain with mode 0644. A
 * directory is created (mode 0700) when missing. Each file is written to a
 * temporary name and then moved into place, so a crash never leaves half a
 * key. Rejects with `ConfigError` `GS_ERR_INVALID_OPTION` when a file exists
 * and `overwrite` is not set; file-system errors are passed on as they are.
 * @public
 */
export async function saveIdentity(identity: Identity, location: IdentityLocation, options: SaveIdentityOptions = {}): Promise<{ keyPath: string; certificatePath: string }> {
  checkOption(identity?.key instanceof IdentityKey && Array.isArray(identity.chain), 'identity', 'must be an Identity');
  const { fs, path } = node();
  const paths = resolvePaths(location, path);
  if (typeof location === 'string') await fs.mkdir(location, { recursive: true, mode: 0o700 });
  const overwrite = options.overwrite === true;
  if (!overwrite) {
    for (const p of [paths.keyPath, paths.certificatePath]) {
      const exists = await fs.stat(p).then(
        () => true,
        () => false,
      );
      checkOption(!exists, p, 'already exists; pass { overwrite: true } to replace it');
    }
  }
  // Chain first: loaders treat the key file as the sign that an identity is complete.
  await writeAtomically(fs, paths.certificatePath, certificatesToPem(identity.chain), 0o644, overwrite);
  await writeAtomically(fs, paths.keyPath, identity.key.toPem(), 0o600, overwrite);
  return paths;
}

async function writeAtomically(fs: typeof NodeFs, file: string, text: string, mode: number, overwrite: boolean): Promise<void> {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await fs.writeFile(tmp, text, { mode, flag: 'wx' });
  try {
    await fs.chmod(tmp, mode); // writeFile's mode is reduced by the umask; make it exact
    if (overwrite) await fs.rename(tmp, file);
    else await fs.link(tmp, file); // fails with EEXIST instead of replacing a file that appeared meanwhile
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/**
 * Read an identity written by {@link saveIdentity} (or by OpenSSL: any
 * PKCS#8 Ed25519 key and PEM chain, leaf first). Rejects with
 * `CryptoError` `GS_ERR_BAD_KEY` (bad key, or not the leaf's key),
 * `CertificateError` `GS_ERR_CERT_INVALID` (bad chain), or the file-system
 * error (e.g. `ENOENT`).
 * @public
 */
export async function loadIdentity(location: IdentityLocation, options: CryptoOption = {}): Promise<Identity> {
  const { fs, path } = node();
  const paths = resolvePaths(location, path);
  const [keyPem, chainPem] = await Promise.all([fs.readFile(paths.keyPath, 'utf8'), fs.readFile(paths.certificatePath, 'utf8')]);
  return createIdentity(IdentityKey.fromPem(keyPem, options), certificatesFromPem(chainPem));
}

/**
 * A server's start: load its identity from `directory`, or on first start
 * create one ({@link createServerIdentity}) and save it there. Not safe
 * against two processes starting for the first time in the same directory at
 * the same instant (one of them fails with `GS_ERR_INVALID_OPTION`).
 * @public
 */
export async function loadOrCreateServerIdentity(directory: string, options: ServerCertificateOptions = {}): Promise<Identity> {
  checkOption(typeof directory === 'string' && directory.length > 0, 'directory', 'must be a directory path');
  const { fs, path } = node();
  const keyExists = await fs.stat(path.join(directory, IDENTITY_FILES.key)).then(
    () => true,
    () => false,
  );
  if (keyExists) return loadIdentity(directory, options);
  const identity = createServerIdentity(options);
  await saveIdentity(identity, directory);
  return identity;
}
