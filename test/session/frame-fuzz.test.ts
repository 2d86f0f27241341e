/**
 * Fuzzing the frame decoder: random bytes and mutated frame streams, in
 * random chunkings. Never anything but a FrameError, never more held than
 * one capped frame, and the same outcome however the bytes are cut.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameError } from '../../src/errors/index.js';
import { FrameDecoder } from '../../src/session/frame-decoder.js';
import { encodeFrame, HEADER_LEN, parseFrame } from '../../src/session/frame.js';
import { arbFrame } from './frame-arbitraries.js';
import { mutatedStream } from './fuzz-arbitraries.js';

const MAX_BODY = 64 * 1024;

/** Feed every chunk; return the frame count and the error code, checking the invariants on the way. */
function feed(chunks: Uint8Array[]): { frames: number; error: string | undefined } {
  const decoder = new FrameDecoder({ maxBody: MAX_BODY });
  let frames = 0;
  for (const chunk of chunks) {
    try {
      decoder.push(chunk, () => frames++);
    } catch (error) {
      if (!(error instanceof FrameError)) throw error;
      if (decoder.state !== 'failed') throw new Error(`decoder in state ${decoder.state} after a FrameError`);
      return { frames, error: error.code };
    }
    // Plain check: `expect` here would cost more than the decoder.
    if (decoder.bufferedBytes > HEADER_LEN + MAX_BODY) throw new Error(`decoder holds ${decoder.bufferedBytes} bytes`);
  }
  return { frames, error: undefined };
}

describe('frame decoder fuzz', () => {
  it('random bytes: a FrameError or frames, nothing else (40 000 cases)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: 16 }), (bytes, step) => {
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < bytes.length; i += step) chunks.push(bytes.subarray(i, i + step));
        const cut = feed(chunks);
        expect(feed([bytes])).toEqual(cut);
      }),
      { numRuns: 40_000 },
    );
  });

  it('mutated frame streams: same outcome in any chunking (20 000 cases)', () => {
    fc.assert(
      fc.property(mutatedStream, fc.integer({ min: 1, max: 300 }), (bytes, step) => {
        const chunks: Uint8Array[] = [];
        for (let i = 0; i < bytes.length; i += step) chunks.push(bytes.subarray(i, i + step));
        expect(feed(chunks)).toEqual(feed([bytes]));
      }),
      { numRuns: 20_000 },
    );
  });

  it('parseFrame on mutated single frames: a frame or a FrameError (10 000 cases)', () => {
    fc.assert(
      fc.property(arbFrame, fc.nat(), fc.integer({ min: 0, max: 255 }), (frame, at, value) => {
        const b = encodeFrame(frame);
        b[at % b.length] = value;
        try {
          parseFrame(b);
        } catch (error) {
          if (!(error instanceof FrameError)) throw error;
        }
      }),
      { numRuns: 10_000 },
    );
  });
});
