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
 * Handshake and transport messages use the same framing. A length of zero is
 * refused: no valid ChaChaPoly message is empty once keys are set, and the
 * first handshake message always carries an ephemeral key.
 */
import { FrameError } from '../../errors/index.js';

/** Bytes of the length prefix. */
export const RECORD_PREFIX_LEN = 2;

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
  next(scratch?: Uint8Array): Uint8Array | undefined {
    if (this.buffered < RECORD_PREFIX_LEN) return undefined;
    const head = this.peek(RECORD_PREFIX_LEN);
    const len = (head[0]! << 8) | head[1]!;
    if (len === 0) throw new FrameError('GS_ERR_FRAME_MALFORMED', 'zero-length Noise record');
    if (this.buffered < RECORD_PREFIX_LEN + len) return undefined;
    this.skip(RECORD_PREFIX_LEN);
    return this.take(len, scratch);
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
