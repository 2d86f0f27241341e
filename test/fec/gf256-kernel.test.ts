/**
 * The fast GF(2^8) kernels against their plain reference twins (STYLE.md
 * §1): random coefficients (0, 1 and the rest), lengths around the word and
 * unroll boundaries, ranges, and subarrays at every byteOffset mod 4 on
 * both sides, so aligned, same-misaligned and differently-aligned paths all
 * run.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { mul, mulAdd, mulAddRef, mulRef, xorInto } from '../../src/fec/gf256-kernel.js';

type Kernel = (c: number, input: Uint8Array, output: Uint8Array, start?: number, end?: number) => void;

/** A random input, an output, offsets in their buffers, a range and a coefficient biased to 0 and 1. */
const job = fc
  .record({
    len: fc.oneof(fc.integer({ min: 0, max: 80 }), fc.integer({ min: 0, max: 3000 })),
    inOffset: fc.integer({ min: 0, max: 7 }),
    outOffset: fc.integer({ min: 0, max: 7 }),
    c: fc.oneof(fc.constantFrom(0, 1, 2, 255), fc.integer({ min: 0, max: 255 })),
    seed: fc.integer(),
    cut: fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.double({ min: 0, max: 1, noNaN: true })),
  })
  .map(({ len, inOffset, outOffset, c, seed, cut }) => {
    let x = seed | 1;
    const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 16) & 0xff;
    const inBuf = new Uint8Array(len + inOffset + 5).map(rand);
    const outBuf = new Uint8Array(len + outOffset + 5).map(rand);
    const a = Math.min(len, Math.floor(cut[0] * (len + 1)));
    const b = Math.min(len, Math.floor(cut[1] * (len + 1)));
    return {
      c,
      input: inBuf.subarray(inOffset, inOffset + len),
      outBuf,
      outOffset,
      len,
      start: Math.min(a, b),
      end: Math.max(a, b),
    };
  });

function twins(fast: Kernel, ref: Kernel): void {
  fc.assert(
    fc.property(job, fc.boolean(), ({ c, input, outBuf, outOffset, len, start, end }, whole) => {
      const o1 = outBuf.slice();
      const o2 = outBuf.slice();
      const out1 = o1.subarray(outOffset, outOffset + len);
      const out2 = o2.subarray(outOffset, outOffset + len);
      const inCopy = input.slice();
      if (whole) {
        fast(c, input, out1);
        ref(c, input, out2);
      } else {
        fast(c, input, out1, start, end);
        ref(c, input, out2, start, end);
      }
      // Whole buffers compared: nothing written outside the range either.
      // (Buffer.equals: deep equality on kilobytes would dominate the run.)
      if (!Buffer.from(o1.buffer).equals(Buffer.from(o2.buffer))) expect(o1).toEqual(o2);
      if (!Buffer.from(inCopy.buffer).equals(Buffer.from(input))) throw new Error('input changed');
    }),
    { numRuns: 2000 },
  );
}

describe('GF(2^8) kernels equal their reference twins', () => {
  it('mulAdd', () => twins(mulAdd, mulAddRef));
  it('mul', () => twins(mul, mulRef));
  it('xorInto is mulAdd by 1', () => twins((_c, i, o, s, e) => xorInto(i, o, s, e), (_c, i, o, s, e) => mulAddRef(1, i, o, s, e)));

  it('mul works in place (input === output)', () => {
    const buf = new Uint8Array(1001).map((_, i) => i * 31);
    for (const c of [0, 1, 2, 77]) {
      const a = buf.slice();
      const b = buf.slice();
      mul(c, a.subarray(1), a.subarray(1));
      mulRef(c, b.subarray(1), b.subarray(1));
      expect(a).toEqual(b);
    }
  });
});
