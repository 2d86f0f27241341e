/**
 * Bundle repositories: encoded bundles stored by digest (the seed's
 * distribution server, 配付サーバ). The center keeps its own and serves the
 * agents' `fetch` from it; the same interface can front a repository that
 * runs apart.
 *
 * A repository stores bytes, not trust: `put` computes the digest, `get`
 * hands back only bytes whose SHA-256 still equals the digest asked for,
 * and the agent still checks the center's signature on whatever it gets.
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs/promises';
import * as path from 'node:path';
import { ConfigError, DispatchError } from '../../../errors/index.js';
import { sha256Digest, type Digest } from '../wire/index.js';

/**
 * Where encoded bundles live, by digest (`sha256:` + 64 hex).
 * @public
 */
export interface BundleRepository {
  /** Store `bytes` (an encoded bundle) and return its digest; storing the same bytes twice is harmless. */
  put(bytes: Uint8Array): Promise<Digest>;
  /**
   * The bytes stored under `digest`, or `undefined` when there are none (or
   * `digest` is not a well-formed digest). Rejects with `DispatchError`
   * `GS_ERR_DISPATCH_DIGEST_MISMATCH` when stored bytes no longer hash to it.
   */
  get(digest: Digest): Promise<Uint8Array | undefined>;
  /** Whether bytes are stored under `digest`. */
  has(digest: Digest): Promise<boolean>;
}

const DIGEST = /^sha256:([0-9a-f]{64})$/;

/** The hex part of a well-formed digest, or undefined. */
function hexOf(digest: unknown): string | undefined {
  return typeof digest === 'string' ? DIGEST.exec(digest)?.[1] : undefined;
}

function mismatch(digest: string, where: string): DispatchError {
  return new DispatchError('GS_ERR_DISPATCH_DIGEST_MISMATCH', `the bundle stored ${where} under ${digest} no longer hashes to it (damaged or replaced)`);
}

/**
 * A {@link BundleRepository} in memory. `get` returns the stored array
 * itself (no copy: a center serving 5,000 agents must not hold 5,000
 * copies); treat it as read-only.
 * @public
 */
export class MemoryBundleRepository implements BundleRepository {
  readonly #bundles = new Map<string, Uint8Array>();

  /** {@inheritDoc BundleRepository.put} */
  async put(bytes: Uint8Array): Promise<Digest> {
    const digest = sha256Digest(bytes);
    if (!this.#bundles.has(digest)) this.#bundles.set(digest, Uint8Array.from(bytes));
    return digest;
  }

  /** {@inheritDoc BundleRepository.get} */
  async get(digest: Digest): Promise<Uint8Array | undefined> {
    if (hexOf(digest) === undefined) return undefined;
    return this.#bundles.get(digest);
  }

  /** {@inheritDoc BundleRepository.has} */
  async has(digest: Digest): Promise<boolean> {
    return hexOf(digest) !== undefined && this.#bundles.has(digest);
  }
}

/**
 * A {@link BundleRepository} in a folder: one file per bundle, named by the
 * digest's 64 hex digits plus `.bundle`, written to a temporary name and
 * renamed into place (a reader never sees half a bundle), and hashed again
 * on every read.
 * @public
 */
export class DirectoryBundleRepository implements BundleRepository {
  /** The folder. */
  readonly dir: string;

  /** Use (and create when missing, on the first `put`) the folder `dir`. */
  constructor(dir: string) {
    if (typeof dir !== 'string' || dir.length === 0) throw new ConfigError('GS_ERR_INVALID_OPTION', 'repository dir must be a folder path');
    this.dir = dir;
  }

  /** {@inheritDoc BundleRepository.put} */
  async put(bytes: Uint8Array): Promise<Digest> {
    const digest = sha256Digest(bytes);
    const file = path.join(this.dir, `${hexOf(digest)!}.bundle`);
    if (await exists(file)) return digest;
    await fs.mkdir(this.dir, { recursive: true });
    const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const handle = await fs.open(tmp, 'wx', 0o644);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await fs.rename(tmp, file);
    } catch (err) {
      await fs.rm(tmp, { force: true });
      throw err;
    }
    return digest;
  }

  /** {@inheritDoc BundleRepository.get} */
  async get(digest: Digest): Promise<Uint8Array | undefined> {
    const hex = hexOf(digest);
    if (hex === undefined) return undefined;
    let bytes: Uint8Array;
    try {
      bytes = new Uint8Array(await fs.readFile(path.join(this.dir, `${hex}.bundle`)));
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') return undefined;
      throw err;
    }
    if (sha256Digest(bytes) !== digest) throw mismatch(digest, `in ${this.dir}`);
    return bytes;
  }

  /** {@inheritDoc BundleRepository.has} */
  async has(digest: Digest): Promise<boolean> {
    const hex = hexOf(digest);
    if (hex === undefined) return false;
    return exists(path.join(this.dir, `${hex}.bundle`));
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await fs.access(file);
    return true;
  } catch {
    return false;
  }
}
