/**
 * A small seeded pseudo-random generator for simulations: link shaping in
 * {@link memoryPair} now, the simulated lossy datagram network later.
 *
 * The generator is xoshiro128** 1.1 (Blackman and Vigna, "Scrambled linear
 * pseudorandom number generators", 2018; public-domain reference
 * `xoshiro128starstar.c`): 128 bits of state, 32-bit outputs, period
 * 2^128 − 1, and a `jump()` that skips 2^64 outputs so several independent
 * streams can come from one seed. It is fast and statistically sound for
 * simulation, and **not** cryptographically secure: never use it for keys,
 * nonces or tokens.
 *
 * A numeric seed is expanded to the 128-bit state with splitmix64, as the
 * authors recommend, so nearby seeds (0, 1, 2, …) give unrelated streams and
 * the all-zero state cannot occur in practice. Outputs for a given seed are
 * fixed by test/transport/random.test.ts against the reference C code.
 */
import { checkOption } from '../errors/check.js';

const MASK64 = (1n << 64n) - 1n;

/** splitmix64 (Vigna, public domain): one step from state `x`, returning [next x, output]. */
function splitmix64(x: bigint): [bigint, bigint] {
  const next = (x + 0x9e3779b97f4a7c15n) & MASK64;
  let z = next;
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
  return [next, z ^ (z >> 31n)];
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

/** Reference `JUMP` polynomial: equivalent to 2^64 calls of `next()`. */
const JUMP = [0x8764000b, 0xf542d2d3, 0x6fa035c3, 0x77f2db5b] as const;

/**
 * xoshiro128** 1.1: a deterministic, seedable generator of 32-bit values.
 * Same seed, same sequence, on every platform.
 *
 * @example
 * ```ts
 * const rng = new SeededRandom(42);
 * rng.next();      // 0x69e85a2a, always
 * rng.nextFloat(); // in [0, 1)
 * ```
 * @internal
 */
export class SeededRandom {
  private readonly s = new Uint32Array(4);

  /**
   * @param seed - an integer in [0, 2^53); expanded to the state with
   *   splitmix64. Pass a `Uint32Array` of four words (not all zero) to set the
   *   raw state instead, as the reference code's tests do.
   */
  constructor(seed: number | Uint32Array) {
    if (typeof seed === 'number') {
      checkOption(Number.isSafeInteger(seed) && seed >= 0, 'seed', 'must be an integer in [0, 2^53)');
      let x = BigInt(seed);
      for (let i = 0; i < 4; i += 2) {
        const [nextX, out] = splitmix64(x);
        x = nextX;
        this.s[i] = Number(out & 0xffffffffn);
        this.s[i + 1] = Number(out >> 32n);
      }
    } else {
      checkOption(seed.length === 4 && seed.some((w) => w !== 0), 'seed', 'state must be four words, not all zero');
      this.s.set(seed);
    }
  }

  /** The next 32-bit output, as an unsigned integer in [0, 2^32). */
  next(): number {
    const s = this.s;
    const s0 = s[0]!;
    const s1 = s[1]!;
    const s2 = s[2]! ^ s0;
    const s3 = s[3]! ^ s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    s[0] = s0 ^ s3;
    s[1] = s1 ^ s2;
    s[2] = s2 ^ (s1 << 9);
    s[3] = rotl(s3, 11);
    return result;
  }

  /** A float in [0, 1), from the 32 bits of one `next()`. */
  nextFloat(): number {
    return this.next() * 2 ** -32;
  }

  /**
   * Skip ahead 2^64 outputs, in place, and return `this`. Streams that are one
   * jump apart never overlap in practice, so `a.clone().jump()` gives a second
   * independent stream from the same seed (reference `jump()`).
   */
  jump(): this {
    const acc = new Uint32Array(4);
    for (const word of JUMP) {
      for (let b = 0; b < 32; b++) {
        if ((word >>> b) & 1) {
          for (let i = 0; i < 4; i++) acc[i] = acc[i]! ^ this.s[i]!;
        }
        this.next();
      }
    }
    this.s.set(acc);
    return this;
  }

  /** A generator with the same state, advancing independently from now on. */
  clone(): SeededRandom {
    return new SeededRandom(this.s.slice());
  }
}
