/**
 * Streaming frame decoder: turns a byte stream cut anywhere (one byte at a
 * time, or many frames in one chunk) into {@link Frame}s.
 *
 * An explicit parser state machine over the chunks it is pushed, as undici's
 * WebSocket receiver: in `header` it gathers the 12 header bytes, checks them
 * all with {@link parseHeader} (version, type, flags, connection ID, every
 * length rule and the body cap) and only then moves to `body`, which gathers
 * exactly the declared body. A body that arrived whole inside one chunk is
 * handed out as a view of that chunk (no copy); otherwise the decoder
 * allocates exactly the declared, already capped, body length. After a
 * {@link FrameError} it stays `failed` and every later push throws the same
 * error, so one bad frame cannot be skipped over.
 */
import { FrameError } from '../errors/index.js';
import { DEFAULT_MAX_FRAME_BODY, HEADER_LEN, MAX_FRAME_BODY_LIMIT, parseBody, parseHeader, type Frame, type FrameHeader } from './frame.js';

/**
 * Where a {@link FrameDecoder} is.
 * @public
 */
export type FrameDecoderState = 'header' | 'body' | 'failed' | 'stopped';

/**
 * Options of {@link FrameDecoder}.
 * @public
 */
export interface FrameDecoderOptions {
  /**
   * Largest frame body accepted, in bytes; a header declaring more fails with
   * `GS_ERR_FRAME_TOO_LARGE` before any of the body is buffered. Default
   * 256 KiB, at most 16 MiB.
   */
  maxBody?: number;
}

/**
 * Incremental decoder of session frames.
 * @public
 */
export class FrameDecoder {
  private readonly maxBody: number;
  private parserState: FrameDecoderState = 'header';
  /** A header split across chunks is gathered here; made the first time one is (most never are). */
  private headerBuf: Uint8Array | undefined;
  private headerFill = 0;
  private header: FrameHeader | undefined;
  private body: Uint8Array | undefined;
  private bodyFill = 0;
  private failure: FrameError | undefined;

  constructor(options: FrameDecoderOptions = {}) {
    const maxBody = options.maxBody ?? DEFAULT_MAX_FRAME_BODY;
    if (!Number.isInteger(maxBody) || maxBody < 0 || maxBody > MAX_FRAME_BODY_LIMIT) {
      throw new RangeError(`maxBody must be an integer in [0, ${MAX_FRAME_BODY_LIMIT}], got ${maxBody}`);
    }
    this.maxBody = maxBody;
  }

  /** `header` or `body` while decoding, `failed` after a FrameError, `stopped` after {@link FrameDecoder.stop}. */
  get state(): FrameDecoderState {
    return this.parserState;
  }

  /** The error that failed the decoder, if any. */
  get error(): FrameError | undefined {
    return this.failure;
  }

  /** Bytes of an unfinished frame held so far (header and body). */
  get bufferedBytes(): number {
    return this.headerFill + this.bodyFill;
  }

  /**
   * Stop decoding: the rest of the current chunk and every later one are
   * ignored. For a session that closed while a chunk was being decoded.
   */
  stop(): void {
    if (this.parserState !== 'failed') this.parserState = 'stopped';
    this.body = undefined;
  }

  /**
   * Feed `chunk`; call `onFrame` for each frame it completes, in order. Byte
   * arrays in a frame are views the callee may keep (they never alias the
   * decoder's own buffers, and the chunk is the caller's to give away, as a
   * ByteStream `data` listener owns its chunk).
   * @throws {@link FrameError} for the first malformed frame, after
   *   delivering every frame before it; the decoder stays failed.
   */
  push(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    if (this.failure !== undefined) throw this.failure;
    try {
      this.run(chunk, onFrame);
    } catch (error) {
      if (error instanceof FrameError && this.parserState !== 'stopped') {
        this.failure = error;
        this.parserState = 'failed';
        this.body = undefined;
      }
      throw error;
    }
  }

  /** Decode `chunk` and return its complete frames (convenience over {@link FrameDecoder.push}). */
  decode(chunk: Uint8Array): Frame[] {
    const frames: Frame[] = [];
    this.push(chunk, (frame) => frames.push(frame));
    return frames;
  }

  private run(chunk: Uint8Array, onFrame: (frame: Frame) => void): void {
    let at = 0;
    const end = chunk.length;
    for (;;) {
      switch (this.parserState) {
        case 'header': {
          let header: FrameHeader;
          if (this.headerFill === 0 && end - at >= HEADER_LEN) {
            // Fast path: the whole header is in this chunk.
            header = parseHeader(chunk, at, this.maxBody);
            at += HEADER_LEN;
          } else {
            const take = Math.min(HEADER_LEN - this.headerFill, end - at);
            (this.headerBuf ??= new Uint8Array(HEADER_LEN)).set(chunk.subarray(at, at + take), this.headerFill);
            this.headerFill += take;
            at += take;
            if (this.headerFill < HEADER_LEN) return;
            this.headerFill = 0;
            header = parseHeader(this.headerBuf!, 0, this.maxBody);
          }
          const n = header.bodyLength;
          if (end - at >= n) {
            // Whole body in this chunk: hand out a view, no copy.
            const body = chunk.subarray(at, at + n);
            at += n;
            onFrame(parseBody(header, body));
            if (this.parserState !== 'header') return;
            continue;
          }
          // Allocate exactly the declared body; parseHeader has capped it.
          this.header = header;
          this.body = new Uint8Array(n);
          this.bodyFill = 0;
          this.parserState = 'body';
          continue;
        }
        case 'body': {
          const body = this.body!;
          const take = Math.min(body.length - this.bodyFill, end - at);
          body.set(chunk.subarray(at, at + take), this.bodyFill);
          this.bodyFill += take;
          at += take;
          if (this.bodyFill < body.length) return;
          const header = this.header!;
          this.body = undefined;
          this.header = undefined;
          this.bodyFill = 0;
          this.parserState = 'header';
          onFrame(parseBody(header, body));
          if (this.parserState !== 'header') return;
          continue;
        }
        case 'failed':
        case 'stopped':
          return;
      }
    }
  }
}
