/**
 * The configured set of configuration files (seed 004 §4.2: absolute path and
 * content): each file's SHA-256 and size, and its text when the policy allows
 * it and it is small enough.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, realpath } from 'node:fs/promises';
import * as posix from 'node:path/posix';
import { checkHostPath, fileKey, type FileEntry } from '../report/index.js';

/** Options of {@link collectFiles}. @public */
export interface FilesOptions {
  /** Absolute, normalised paths to collect (anything else throws `GS_ERR_SECURITY_UNSAFE_PATH`). */
  readonly paths: readonly string[];
  /**
   * Whose content may be sent: `true` all, `false` none (default), or the
   * list of paths whose content may be sent (others get only hash and size).
   */
  readonly content?: boolean | readonly string[];
  /** Content is sent only for files of at most this many bytes. Default 64 KiB. */
  readonly maxContentBytes?: number;
  /**
   * Directory treated as `/` (tests use a fixture tree). A path whose real
   * location is outside it (a symbolic link pointing out) is reported absent.
   * Default `/`.
   */
  readonly root?: string;
}

const READ_CHUNK = 64 * 1024;

async function readOne(root: string, path: string, wantContent: boolean, maxContent: number): Promise<FileEntry> {
  const absent: FileEntry = { path, sha256: null, size: null, content: null, omitted: null };
  const onDisk = posix.join(root, path);
  if (root !== '/') {
    let real: string;
    try {
      real = await realpath(onDisk);
    } catch {
      return absent;
    }
    const realRoot = await realpath(root);
    if (real !== realRoot && !real.startsWith(realRoot.endsWith('/') ? realRoot : `${realRoot}/`)) return absent;
  }
  let handle;
  try {
    // O_NONBLOCK: a FIFO at a configured path must not hang the agent (regular files ignore the flag).
    handle = await open(onDisk, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch {
    return absent;
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) return absent;
    const hash = createHash('sha256');
    const kept: Buffer[] = [];
    let size = 0;
    const buf = Buffer.allocUnsafe(READ_CHUNK);
    for (;;) {
      const { bytesRead } = await handle.read(buf, 0, READ_CHUNK, null);
      if (bytesRead === 0) break;
      hash.update(buf.subarray(0, bytesRead));
      if (wantContent && size + bytesRead <= maxContent) kept.push(Buffer.from(buf.subarray(0, bytesRead)));
      size += bytesRead;
    }
    const sha256 = hash.digest('hex');
    if (!wantContent) return { path, sha256, size, content: null, omitted: 'policy' };
    if (size > maxContent) return { path, sha256, size, content: null, omitted: 'too-large' };
    let content: string;
    try {
      content = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(kept));
    } catch {
      return { path, sha256, size, content: null, omitted: 'not-text' };
    }
    return { path, sha256, size, content, omitted: null };
  } finally {
    await handle.close();
  }
}

/**
 * Collect the configured files, sorted by path. A path with no regular file
 * (missing, a directory, unreadable) is reported with `sha256: null`.
 * @public
 */
export async function collectFiles(options: FilesOptions): Promise<FileEntry[]> {
  const maxContent = options.maxContentBytes ?? 64 * 1024;
  const allowed = options.content ?? false;
  for (const p of options.paths) checkHostPath(p, 'collected file');
  if (Array.isArray(allowed)) for (const p of allowed) checkHostPath(p, 'content-allowed path');
  const allowedSet = new Set(Array.isArray(allowed) ? allowed : []);
  const unique = [...new Set(options.paths)].sort();
  const out: FileEntry[] = [];
  for (const path of unique) {
    const want = allowed === true || allowedSet.has(path);
    out.push(await readOne(options.root ?? '/', path, want, maxContent));
  }
  return out.sort((a, b) => (fileKey(a) < fileKey(b) ? -1 : 1));
}
