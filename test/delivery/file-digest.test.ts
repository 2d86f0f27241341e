/**
 * The receiver's file digest advances over the decoded blocks from block 0
 * on, in whatever order they are decoded, and gives the SHA-256 of the
 * whole file only once every block is in; a failed read leaves it
 * unfinished (the receiver then hashes the file whole).
 */
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileDigest } from '../../src/delivery/update/file-digest.js';

const BLOCK = 1000;

function fileOf(size: number): { bytes: Buffer; blocks: number; read: (sbn: number) => Uint8Array; reads: number[] } {
  const bytes = randomBytes(size);
  const reads: number[] = [];
  return {
    bytes,
    blocks: Math.ceil(size / BLOCK),
    reads,
    read: (sbn) => {
      reads.push(sbn);
      return bytes.subarray(sbn * BLOCK, Math.min(size, (sbn + 1) * BLOCK));
    },
  };
}

describe('FileDigest', () => {
  it('blocks decoded out of order: each block is read once, when the run from block 0 reaches it; the result is the file SHA-256', () => {
    const f = fileOf(7 * BLOCK + 123);
    const digest = new FileDigest(f.blocks, f.read);
    const done = new Set<number>();
    const order = [2, 0, 1, 5, 3, 7, 4, 6];
    const hashedAfter: number[] = [];
    for (const sbn of order) {
      done.add(sbn);
      digest.advance((b) => done.has(b));
      hashedAfter.push(digest.hashedBlocks);
      if (done.size < f.blocks) expect(digest.result()).toBeUndefined();
    }
    expect(hashedAfter).toEqual([0, 1, 3, 3, 4, 4, 6, 8]);
    expect(f.reads).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(Buffer.from(digest.result()!)).toEqual(createHash('sha256').update(f.bytes).digest());
    // A digest is given once.
    expect(digest.result()).toBeUndefined();
  });

  it('blocks already decoded before it starts (a resumed receiver) are hashed at the first advance', () => {
    const f = fileOf(3 * BLOCK);
    const digest = new FileDigest(f.blocks, f.read);
    digest.advance(() => true);
    expect(Buffer.from(digest.result()!)).toEqual(createHash('sha256').update(f.bytes).digest());
  });

  it('a read that fails leaves it unfinished for good', () => {
    const f = fileOf(4 * BLOCK);
    let fail = true;
    const digest = new FileDigest(f.blocks, (sbn) => {
      if (sbn === 2 && fail) throw new Error('EIO');
      return f.read(sbn);
    });
    digest.advance(() => true);
    fail = false;
    digest.advance(() => true);
    expect(digest.hashedBlocks).toBe(2);
    expect(digest.result()).toBeUndefined();
  });
});
