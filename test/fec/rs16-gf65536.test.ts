// GF(2^16) laws, checked against a shift-and-add reference that does not use the tables.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  GF65536_ORDER,
  GF65536_POLY,
  gf65536Div,
  gf65536Exp,
  gf65536Inv,
  gf65536Log,
  gf65536Mul,
} from '../../src/fec/gf65536.js';

/** Carry-less multiply, then reduce modulo x^16 + x^12 + x^3 + x + 1. */
function refMul(a: number, b: number): number {
  let r = 0;
  for (let i = 0; i < 16; i++) if ((b >>> i) & 1) r ^= a << i;
  for (let bit = 30; bit >= 16; bit--) if ((r >>> bit) & 1) r ^= GF65536_POLY << (bit - 16);
  return r;
}

const elem = fc.integer({ min: 0, max: 0xffff });
const nonZero = fc.integer({ min: 1, max: 0xffff });

describe('GF(2^16)', () => {
  it('uses x^16 + x^12 + x^3 + x + 1, and it is primitive: 2 has order 65,535', () => {
    expect(GF65536_POLY).toBe(0x1100b);
    expect(GF65536_ORDER).toBe(65_535);
    const seen = new Uint8Array(65_536);
    let x = 1;
    let repeats = 0; // an earlier return to 1 would make the order a proper divisor of 65,535
    for (let i = 0; i < 65_535; i++) {
      if (seen[x]) repeats++;
      seen[x] = 1;
      x = refMul(x, 2);
    }
    expect(repeats).toBe(0);
    expect(x).toBe(1); // 2^65535 = 1
    expect(seen[0]).toBe(0);
  });

  it('multiplication matches the shift-and-add reference', () => {
    fc.assert(fc.property(elem, elem, (a, b) => gf65536Mul(a, b) === refMul(a, b)), { numRuns: 3000 });
    expect(gf65536Mul(0xffff, 0xffff)).toBe(refMul(0xffff, 0xffff));
  });

  it('is a field: commutative, associative, distributive, 1 and 0, inverses', () => {
    fc.assert(
      fc.property(elem, elem, elem, (a, b, c) => {
        expect(gf65536Mul(a, b)).toBe(gf65536Mul(b, a));
        expect(gf65536Mul(gf65536Mul(a, b), c)).toBe(gf65536Mul(a, gf65536Mul(b, c)));
        expect(gf65536Mul(a, b ^ c)).toBe(gf65536Mul(a, b) ^ gf65536Mul(a, c));
        expect(gf65536Mul(a, 1)).toBe(a);
        expect(gf65536Mul(a, 0)).toBe(0);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(nonZero, elem, (a, b) => {
        expect(gf65536Mul(a, gf65536Inv(a))).toBe(1);
        expect(gf65536Mul(gf65536Div(b, a), a)).toBe(b);
        expect(gf65536Exp(gf65536Log(a))).toBe(a);
      }),
      { numRuns: 2000 },
    );
  });

  it('exp wraps mod 65,535, including negative exponents', () => {
    expect(gf65536Exp(0)).toBe(1);
    expect(gf65536Exp(65_535)).toBe(1);
    expect(gf65536Exp(-1)).toBe(gf65536Inv(2));
    expect(gf65536Exp(16)).toBe(0x100b);
  });

  it('refuses zero divisors, logs of zero and non-elements', () => {
    expect(() => gf65536Div(1, 0)).toThrow(RangeError);
    expect(() => gf65536Inv(0)).toThrow(/division by zero/);
    expect(() => gf65536Log(0)).toThrow(/log of zero/);
    expect(() => gf65536Mul(65_536, 1)).toThrow(/0…65535/);
    expect(() => gf65536Mul(1.5, 1)).toThrow(RangeError);
    expect(() => gf65536Exp(0.5)).toThrow(RangeError);
  });
});
