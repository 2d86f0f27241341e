/**
 * GF(2^8) arithmetic: the field laws over all elements (exhaustive where
 * 256² or 256³/sampled fits), the product table against table-free
 * multiplication, and the matrix helpers.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { GF256_EXP, GF256_LOG, GF256_MUL, GF256_ROWS, gfDiv, gfInv, gfMul, gfMulSlow, gfPow } from '../../src/fec/gf256.js';
import { identityMatrix, invertMatrix, multiplyMatrices, SingularMatrixError, zeroMatrix } from '../../src/fec/matrix.js';

const byte = fc.integer({ min: 0, max: 255 });
const nonZero = fc.integer({ min: 1, max: 255 });

describe('GF(2^8) field', () => {
  it('product table equals shift-and-add multiplication for all 65 536 pairs', () => {
    for (let a = 0; a < 256; a++) {
      for (let b = 0; b < 256; b++) {
        const slow = gfMulSlow(a, b);
        if (GF256_MUL[(a << 8) | b] !== slow || gfMul(a, b) !== slow || GF256_ROWS[a]![b] !== slow) {
          throw new Error(`${a}·${b}: table ${gfMul(a, b)}, slow ${slow}`);
        }
      }
    }
  });

  it('2 generates the multiplicative group; log and exp are inverse', () => {
    const seen = new Set<number>();
    for (let i = 0; i < 255; i++) seen.add(GF256_EXP[i]!);
    expect(seen.size).toBe(255);
    for (let a = 1; a < 256; a++) expect(GF256_EXP[GF256_LOG[a]!]).toBe(a);
  });

  it('commutative, associative, distributive; 0 and 1 neutral/absorbing', () => {
    fc.assert(
      fc.property(byte, byte, byte, (a, b, c) => {
        expect(gfMul(a, b)).toBe(gfMul(b, a));
        expect(gfMul(gfMul(a, b), c)).toBe(gfMul(a, gfMul(b, c)));
        expect(gfMul(a, b ^ c)).toBe(gfMul(a, b) ^ gfMul(a, c));
        expect(gfMul(a, 1)).toBe(a);
        expect(gfMul(a, 0)).toBe(0);
        expect(a ^ a).toBe(0);
      }),
      { numRuns: 5000 },
    );
  });

  it('every non-zero element has an inverse; division undoes multiplication', () => {
    for (let a = 1; a < 256; a++) expect(gfMul(a, gfInv(a))).toBe(1);
    fc.assert(
      fc.property(byte, nonZero, (a, b) => {
        expect(gfDiv(gfMul(a, b), b)).toBe(a);
      }),
    );
    expect(() => gfInv(0)).toThrow(RangeError);
    expect(() => gfDiv(5, 0)).toThrow(RangeError);
  });

  it('powers: a^255 = 1 for a ≠ 0, a^(n+1) = a^n · a', () => {
    for (let a = 1; a < 256; a++) expect(gfPow(a, 255)).toBe(1);
    fc.assert(
      fc.property(byte, fc.integer({ min: 0, max: 600 }), (a, n) => {
        expect(gfPow(a, n + 1)).toBe(gfMul(gfPow(a, n), a));
      }),
    );
    expect(gfPow(0, 0)).toBe(1);
  });
});

describe('GF(2^8) matrices', () => {
  const square = (n: number) => fc.array(fc.uint8Array({ minLength: n, maxLength: n }), { minLength: n, maxLength: n });

  it('M · M⁻¹ = M⁻¹ · M = I for random invertible matrices; singular ones throw', () => {
    let inverted = 0;
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }).chain(square), (m) => {
        let inv;
        try {
          inv = invertMatrix(m);
        } catch (error) {
          expect(error).toBeInstanceOf(SingularMatrixError);
          return;
        }
        inverted++;
        expect(multiplyMatrices(m, inv)).toEqual(identityMatrix(m.length));
        expect(multiplyMatrices(inv, m)).toEqual(identityMatrix(m.length));
      }),
      { numRuns: 300 },
    );
    expect(inverted).toBeGreaterThan(100);
  });

  it('a zero row or two equal rows is singular; invert leaves its input alone', () => {
    expect(() => invertMatrix(zeroMatrix(3, 3))).toThrow(SingularMatrixError);
    const twice = [Uint8Array.of(1, 2), Uint8Array.of(1, 2)];
    expect(() => invertMatrix(twice)).toThrow(SingularMatrixError);
    const m = [Uint8Array.of(0, 3), Uint8Array.of(7, 1)];
    const copy = m.map((r) => r.slice());
    invertMatrix(m);
    expect(m).toEqual(copy);
    expect(() => invertMatrix([Uint8Array.of(1, 2)])).toThrow(RangeError);
    expect(() => multiplyMatrices([Uint8Array.of(1, 2)], [Uint8Array.of(1)])).toThrow(RangeError);
  });
});
