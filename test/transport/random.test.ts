/**
 * xoshiro128** 1.1 known answers. The expected words were produced by the
 * authors' public-domain reference C (xoshiro128starstar.c: next() and
 * jump(), with splitmix64.c for seeding, state words = low then high half of
 * two splitmix64 outputs), compiled with gcc -O2 on this machine.
 */
import { describe, expect, it } from 'vitest';
import { SeededRandom } from '../../src/transport/random.js';

const words = (rng: SeededRandom, n = 6): number[] => Array.from({ length: n }, () => rng.next());

describe('SeededRandom (xoshiro128** 1.1)', () => {
  it('matches the reference from raw state {1, 2, 3, 4}', () => {
    expect(words(new SeededRandom(Uint32Array.of(1, 2, 3, 4)))).toEqual([
      0x00002d00, 0x00000000, 0x005a7080, 0x04389d80, 0x79199d9b, 0x61963b24,
    ]);
  });

  it('matches the reference jump()', () => {
    expect(words(new SeededRandom(Uint32Array.of(1, 2, 3, 4)).jump())).toEqual([
      0x472fa5a7, 0x2c705cbc, 0x0189f94c, 0xc5ea7935, 0xb5931f89, 0xba9dcbb4,
    ]);
  });

  it('matches the reference for splitmix64-expanded seeds', () => {
    expect(words(new SeededRandom(0))).toEqual([0xdec9045d, 0x9a089d75, 0xab77d362, 0xc3e16405, 0x5c95a8da, 0x60dea056]);
    expect(words(new SeededRandom(42))).toEqual([0x69e85a2a, 0xf843fad0, 0x0105185f, 0x8a1f1ea6, 0xa66be2a9, 0x9844904e]);
    expect(words(new SeededRandom(2 ** 53 - 1))).toEqual([0x4980a133, 0x4cb68966, 0x277278c2, 0xb0783cff, 0x9b095106, 0x3dc1dbe9]);
  });

  it('clone() continues identically and independently', () => {
    const a = new SeededRandom(5);
    a.next();
    const b = a.clone();
    expect(words(b, 4)).toEqual(words(a, 4));
    b.next();
    expect(a.next()).not.toBe(b.next());
  });

  it('nextFloat() stays in [0, 1) with a plausible mean', () => {
    const rng = new SeededRandom(1);
    let sum = 0;
    for (let i = 0; i < 10_000; i++) {
      const x = rng.nextFloat();
      expect(x >= 0 && x < 1).toBe(true);
      sum += x;
    }
    expect(Math.abs(sum / 10_000 - 0.5)).toBeLessThan(0.02);
  });

  it('rejects seeds it cannot honour', () => {
    for (const bad of [-1, 1.5, 2 ** 53, Number.NaN]) {
      expect(() => new SeededRandom(bad)).toThrow(/seed/);
    }
    expect(() => new SeededRandom(new Uint32Array(4))).toThrow(/not all zero/);
  });
});
