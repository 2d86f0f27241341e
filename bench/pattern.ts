/**
 * The byte stream every benchmark transfer sends: a fixed pseudo-random
 * block, repeated. The period is not a multiple of any chunk size, so a
 * lost, doubled or misplaced chunk shows up as a content mismatch, not only
 * in the count. The same bytes in every process, so a sender and a checker
 * in different processes agree.
 */
import { createHash } from 'node:crypto';

/** Largest view `patternAt` gives. */
export const PATTERN_MAX_CHUNK = 1 << 20;
const PERIOD = PATTERN_MAX_CHUNK + 13;
/** The pattern followed by its own first PATTERN_MAX_CHUNK bytes, so any chunk is one subarray. */
const PATTERN: Buffer = (() => {
  const b = Buffer.allocUnsafe(PERIOD + PATTERN_MAX_CHUNK);
  let x = 0x9e3779b9; // xorshift32, fixed seed
  for (let i = 0; i < PERIOD; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    b[i] = x & 0xff;
  }
  b.copy(b, PERIOD, 0, PATTERN_MAX_CHUNK);
  return b;
})();

/** Bytes `[offset, offset + length)` of the endless pattern (length ≤ 1 MiB), as a view. */
export function patternAt(offset: number, length: number): Buffer {
  const start = offset % PERIOD;
  return PATTERN.subarray(start, start + length);
}

/** SHA-256 (hex) of the first `bytes` bytes of the pattern. */
export function patternDigest(bytes: number): string {
  const h = createHash('sha256');
  for (let off = 0; off < bytes; off += PATTERN_MAX_CHUNK) h.update(patternAt(off, Math.min(PATTERN_MAX_CHUNK, bytes - off)));
  return h.digest('hex');
}

/** Stream offset of the first byte of `chunk` (which starts at offset `at`) that differs from the pattern, or -1. */
export function patternMismatch(chunk: Uint8Array, at: number): number {
  const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  for (let i = 0; i < buf.length; i += PATTERN_MAX_CHUNK) {
    const piece = buf.subarray(i, Math.min(buf.length, i + PATTERN_MAX_CHUNK));
    const want = patternAt(at + i, piece.length);
    if (!piece.equals(want)) {
      let j = 0;
      while (piece[j] === want[j]) j++;
      return at + i + j;
    }
  }
  return -1;
}
