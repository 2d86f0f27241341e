/**
 * Streaming decoder: any chunking of a byte stream gives the same frames (and
 * the same first error) as decoding it whole.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameError } from '../../src/errors/index.js';
import { FrameDecoder } from '../../src/session/frame-decoder.js';
import { encodeFrame, HEADER_LEN, parseFrame, type Frame } from '../../src/session/frame.js';
import { arbFrame } from './frame-arbitraries.js';
import { concat } from './fuzz-arbitraries.js';

interface Outcome {
  frames: Frame[];
  error: string | undefined;
}

/** Feed `chunks` in order; collect frames and the first error code. */
function decodeChunks(chunks: Uint8Array[], maxBody?: number): Outcome {
  const decoder = new FrameDecoder(maxBody === undefined ? {} : { maxBody });
  const frames: Frame[] = [];
  for (const chunk of chunks) {
    try {
      decoder.push(chunk, (f) => frames.push(f));
    } catch (error) {
      expect(error).toBeInstanceOf(FrameError);
      return { frames, error: (error as FrameError).code };
    }
  }
  return { frames, error: undefined };
}

/** Cut `bytes` at the given points (sorted, deduplicated, in range). */
function cut(bytes: Uint8Array, points: number[]): Uint8Array[] {
  const cuts = [...new Set(points.map((p) => p % (bytes.length + 1)))].sort((x, y) => x - y);
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    out.push(bytes.slice(prev, c));
    prev = c;
  }
  return out;
}

function oneByteAtATime(bytes: Uint8Array): Uint8Array[] {
  return Array.from(bytes, (b) => Uint8Array.of(b));
}

describe('FrameDecoder', () => {
  it('decodes frames fed one byte at a time', () => {
    fc.assert(
      fc.property(fc.array(arbFrame, { minLength: 1, maxLength: 8 }), (frames) => {
        const stream = concat(frames.map(encodeFrame));
        expect(decodeChunks(oneByteAtATime(stream))).toEqual({ frames, error: undefined });
      }),
      { numRuns: 300 },
    );
  });

  it('any chunking equals whole-buffer decoding, garbage included', () => {
    const stream = fc.tuple(fc.array(arbFrame, { maxLength: 8 }), fc.uint8Array({ maxLength: 40 })).map(([frames, tail]) => concat([...frames.map(encodeFrame), tail]));
    fc.assert(
      fc.property(stream, fc.array(fc.nat(), { maxLength: 20 }), (bytes, points) => {
        const whole = decodeChunks([bytes]);
        expect(decodeChunks(cut(bytes, points))).toEqual(whole);
        expect(decodeChunks(oneByteAtATime(bytes))).toEqual(whole);
      }),
      { numRuns: 1000 },
    );
  });

  it('every truncation of a valid stream is incomplete, never an error', () => {
    fc.assert(
      fc.property(arbFrame, (frame) => {
        const bytes = encodeFrame(frame);
        for (let n = 0; n < bytes.length; n++) {
          const decoder = new FrameDecoder();
          expect(decoder.decode(bytes.subarray(0, n))).toEqual([]);
          expect(decoder.state).toBe(n < HEADER_LEN ? 'header' : 'body');
        }
      }),
      { numRuns: 200 },
    );
  });

  it('agrees with parseFrame on single frames', () => {
    fc.assert(
      fc.property(arbFrame, (frame) => {
        const bytes = encodeFrame(frame);
        expect(new FrameDecoder().decode(bytes)).toEqual([parseFrame(bytes)]);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses an over-cap body from the 12 header bytes, before any body byte', () => {
    const decoder = new FrameDecoder({ maxBody: 1024 });
    const header = encodeFrame({ kind: 'CONTROL', body: new Uint8Array(1025) }).subarray(0, HEADER_LEN);
    expect(() => decoder.decode(header)).toThrow(FrameError);
    expect(decoder.error?.code).toBe('GS_ERR_FRAME_TOO_LARGE');
    expect(decoder.bufferedBytes).toBe(0);
  });

  it('holds no more than the declared body while waiting for it', () => {
    const frame = encodeFrame({ kind: 'CONTROL', body: new Uint8Array(5000).fill(7) });
    const decoder = new FrameDecoder();
    decoder.decode(frame.subarray(0, 100));
    expect(decoder.state).toBe('body');
    expect(decoder.bufferedBytes).toBe(100 - HEADER_LEN);
    const [f] = decoder.decode(frame.subarray(100));
    expect(f).toEqual({ kind: 'CONTROL', body: new Uint8Array(5000).fill(7) });
  });

  it('stays failed after an error', () => {
    const decoder = new FrameDecoder();
    const bad = Uint8Array.of(2, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0);
    expect(() => decoder.decode(bad)).toThrow(FrameError);
    expect(decoder.state).toBe('failed');
    const good = encodeFrame({ kind: 'CLOSE', connId: 1 });
    expect(() => decoder.decode(good)).toThrow(FrameError);
    expect(decoder.error?.code).toBe('GS_ERR_FRAME_VERSION');
  });

  it('delivers the frames before a bad one, then throws', () => {
    const good = encodeFrame({ kind: 'CLOSE', connId: 5 });
    const bad = Uint8Array.of(1, 42, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    const seen: Frame[] = [];
    const decoder = new FrameDecoder();
    expect(() => decoder.push(concat([good, bad]), (f) => seen.push(f))).toThrow(FrameError);
    expect(seen).toEqual([{ kind: 'CLOSE', connId: 5 }]);
  });

  it('hands out a view of the chunk when a body arrives whole', () => {
    const bytes = encodeFrame({ kind: 'DATA', connId: 1, payload: new Uint8Array([1, 2, 3]) });
    const [frame] = new FrameDecoder().decode(bytes);
    expect(frame?.kind === 'DATA' && frame.payload.buffer).toBe(bytes.buffer);
  });

  it('stop() ignores the rest of the chunk', () => {
    const decoder = new FrameDecoder();
    const two = concat([encodeFrame({ kind: 'CLOSE', connId: 1 }), encodeFrame({ kind: 'CLOSE', connId: 3 })]);
    const seen: Frame[] = [];
    decoder.push(two, (f) => {
      seen.push(f);
      decoder.stop();
    });
    expect(seen.length).toBe(1);
    expect(decoder.state).toBe('stopped');
  });

  it('checks its maxBody option', () => {
    expect(() => new FrameDecoder({ maxBody: 16 * 1024 * 1024 + 1 })).toThrow(RangeError);
    expect(() => new FrameDecoder({ maxBody: -1 })).toThrow(RangeError);
  });
});
