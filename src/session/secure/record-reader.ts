/**
 * Splits a byte stream into Noise messages framed as the spec suggests (§3):
 *
 * ```
 *  0      1      2 ...
 * +------+------+---------------------------+
 * | length (u16 BE) | message (length bytes) |
 * +------+------+---------------------------+
 * ```
 *
 * Handshake and transport messages use the same framing. A length of zero
 * never frames a Noise message (no valid ChaChaPoly message is empty once
 * keys are set, and the first handshake message always carries an ephemeral
 * key). It marks a **split record** instead, which a channel accepts only
 * when its reader allows it ({@link RecordReader.next}'s `allowSplit`; the
 * channel's `onSplitRecord`), else it is refused as before:
 *
 * ```
 *  0        2        4        6                 6+S             6+S+C
 * +--------+--------+--------+-----------------+---------------+
 * | 0x0000 | S u16  | C u16  | sealed (S bytes)| clear (C bytes)|
 * +--------+--------+--------+-----------------+---------------+
 *  S  sealed length: a Noise transport message (16-byte tag + 1..64 bytes)
 *  C  clear length, 1..65535
 *  sealed  the sender's header, sealed with the next nonce and the six
 *          prefix bytes as associated data (so S and C are authenticated)
 *  clear   bytes the hop does not encrypt or authenticate: the sender
 *          promises they are already end-to-end ciphertext
 * ```
 *
 * The clear part is handed out as views of the received chunks (one per
 * chunk it lies in; never the join scratch, never a copy), so the upper
 * layer may keep them and a relay forwards them without copying.
 */
import { FrameError } from '../../errors/index.js';

/** Bytes of the length prefix. */
export const RECORD_PREFIX_LEN = 2;
/** Bytes of a split record's prefix (marker, S, C). */
export const SPLIT_PREFIX_LEN = 6;
/** Largest header a split record seals. */
export const MAX_SPLIT_HEADER = 64;
/** Largest clear part of a split record. */
export const MAX_SPLIT_CLEAR = 0xffff;
const SPLIT_TAG_LEN = 16;

/** Write the six prefix bytes of a split record into `out` at `pos`. */
export function writeSplitPrefix(out: Uint8Array, pos: number, sealedLen: number, clearLen: number): void {
  out[pos] = 0;
  out[pos + 1] = 0;
  out[pos + 2] = sealedLen >> 8;
  out[pos + 3] = sealedLen & 0xff;
  out[pos + 4] = clearLen >> 8;
  out[pos + 5] = clearLen & 0xff;
}

/** A split record as read: `ad` is its prefix (the associated data of `sealed`). */
export interface SplitRecord {
  readonly ad: Uint8Array;
  readonly sealed: Uint8Array;
  /** The clear part, in order: views of the chunks it arrived in. */
  readonly clear: Uint8Array[];
}

/** Incremental reader: push chunks in, take whole records out. */
export class RecordReader {
  private chunks: Uint8Array[] = [];
  private buffered = 0;

  /** Bytes held that do not yet form a record. */
  get pending(): number {
    return this.buffered;
  }

  push(chunk: Uint8Array): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.buffered += chunk.length;
  }

  /**
   * The next whole record, or undefined until more bytes arrive. Never holds
   * more than one 64 KiB record plus one chunk.
   *
   * A record that lies within one chunk comes back as a view of it. One that
   * spans chunks must be joined: into `scratch` when given (65,535 bytes,
   * the largest Noise message, will do; the result is then a view of `scratch`,
   * valid only until the caller next uses it), else into a fresh array. With
   * 64 KiB socket reads and 65,537-byte full records nearly every full record
   * spans two reads, so a caller that consumes the record at once (decrypts
   * it into fresh memory) saves a 64 KiB allocation per record.
   */
  next(scratch?: Uint8Array): Uint8Array | undefined;
  /**
   * As above, and with `allowSplit` a split record (file comment) comes back
   * as a {@link SplitRecord}; without it, its marker is refused as a
   * zero-length record.
   */
  next(scratch: Uint8Array | undefined, allowSplit: boolean): Uint8Array | SplitRecord | undefined;
  next(scratch?: Uint8Array, allowSplit = false): Uint8Array | SplitRecord | undefined {
    if (this.buffered < RECORD_PREFIX_LEN) return undefined;
    const head = this.peek(RECORD_PREFIX_LEN);
    const len = (head[0]! << 8) | head[1]!;
    if (len === 0) {
      if (!allowSplit) throw new FrameError('GS_ERR_FRAME_MALFORMED', 'zero-length Noise record');
      return this.nextSplit(scratch);
    }
    if (this.buffered < RECORD_PREFIX_LEN + len) return undefined;
    this.skip(RECORD_PREFIX_LEN);
    return this.take(len, scratch);
  }

  private nextSplit(scratch: Uint8Array | undefined): SplitRecord | undefined {
    if (this.buffered < SPLIT_PREFIX_LEN) return undefined;
    const prefix = this.peek(SPLIT_PREFIX_LEN);
    const sealedLen = (prefix[2]! << 8) | prefix[3]!;
    const clearLen = (prefix[4]! << 8) | prefix[5]!;
    if (sealedLen <= SPLIT_TAG_LEN || sealedLen > SPLIT_TAG_LEN + MAX_SPLIT_HEADER) {
      throw new FrameError('GS_ERR_FRAME_MALFORMED', `split record with a sealed part of ${sealedLen} bytes (must be ${SPLIT_TAG_LEN + 1}..${SPLIT_TAG_LEN + MAX_SPLIT_HEADER})`);
    }
    if (clearLen === 0) throw new FrameError('GS_ERR_FRAME_MALFORMED', 'split record with an empty clear part');
    if (this.buffered < SPLIT_PREFIX_LEN + sealedLen + clearLen) return undefined;
    const ad = this.take(SPLIT_PREFIX_LEN, undefined).slice();
    const sealed = this.take(sealedLen, scratch);
    return { ad, sealed, clear: this.takeViews(clearLen) };
  }

  /** The next `n` bytes as views of the chunks they lie in (no copy). */
  private takeViews(n: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    this.buffered -= n;
    while (n > 0) {
      const c = this.chunks[0]!;
      if (c.length <= n) {
        out.push(c);
        this.chunks.shift();
        n -= c.length;
      } else {
        out.push(c.subarray(0, n));
        this.chunks[0] = c.subarray(n);
        n = 0;
      }
    }
    return out;
  }

  /** Everything still held (used when handing the stream over). */
  drain(): Uint8Array[] {
    const out = this.chunks;
    this.chunks = [];
    this.buffered = 0;
    return out;
  }

  private peek(n: number): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) return first;
    const out = new Uint8Array(n);
    let off = 0;
    for (const c of this.chunks) {
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (off === n) break;
    }
    return out;
  }

  private skip(n: number): void {
    this.take(n, undefined);
  }

  private take(n: number, scratch: Uint8Array | undefined): Uint8Array {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      // Fast path: the record lies within one chunk (the common case).
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = scratch !== undefined && scratch.length >= n ? scratch.subarray(0, n) : new Uint8Array(n);
    let off = 0;
    while (off < n) {
      const c = this.chunks[0]!;
      const k = Math.min(c.length, n - off);
      out.set(c.subarray(0, k), off);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.buffered -= n;
    return out;
  }
}
