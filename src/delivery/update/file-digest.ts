/**
 * The SHA-256 of a receiver's data file, computed while the file fills in.
 *
 * The receiver may apply a file only once its SHA-256 equals the digest the
 * publisher signed. Hashing the whole file after the last block costs about
 * 40 ms of CPU per 64 MiB, and on a host (or a test bed) with many receivers
 * they all finish in the same instant, so that pass sat at the very end of
 * every transfer. Here the hash advances over the run of decoded blocks
 * that starts at block 0: each time that run grows, its new blocks are read
 * back from the data file — from the page cache, they were just written —
 * and hashed. When the last block is decoded the digest is ready.
 *
 * It hashes the file's bytes, not the decoder's: the check still covers
 * exactly what will be moved into place (a wrong offset in the store would
 * show here as it did in the full pass). Blocks that a resumed receiver
 * finished before it stopped are read back the same way.
 *
 * SHA-256 is sequential, so a block decoded ahead of a missing one waits
 * for it; with loss, what follows the first hole is hashed when the hole is
 * repaired. A read that fails leaves the digest unfinished, and the
 * receiver then hashes the file whole at the end ({@link FileDigest.result}).
 */
import { createHash, type Hash } from 'node:crypto';

/** Reads block `sbn` of the data file (its exact length: the last block may be short). */
export type BlockReader = (sbn: number) => Uint8Array;

/** @internal */
export class FileDigest {
  readonly #blockCount: number;
  readonly #read: BlockReader;
  readonly #hash: Hash = createHash('sha256');
  /** Blocks [0, next) are hashed. */
  #next = 0;
  #broken = false;

  constructor(blockCount: number, read: BlockReader) {
    this.#blockCount = blockCount;
    this.#read = read;
  }

  /** Blocks hashed so far (all of them from block 0 on). */
  get hashedBlocks(): number {
    return this.#next;
  }

  /** Hash every decoded block that now extends the hashed run. */
  advance(isDone: (sbn: number) => boolean): void {
    if (this.#broken) return;
    try {
      while (this.#next < this.#blockCount && isDone(this.#next)) {
        this.#hash.update(this.#read(this.#next));
        this.#next++;
      }
    } catch {
      // The full pass at the end reads the file again and reports what it finds.
      this.#broken = true;
    }
  }

  /** The file's SHA-256 once every block is hashed; undefined before, or after a failed read. */
  result(): Uint8Array | undefined {
    if (this.#broken || this.#next < this.#blockCount) return undefined;
    this.#broken = true; // a Hash gives its digest once
    return new Uint8Array(this.#hash.digest());
  }
}
