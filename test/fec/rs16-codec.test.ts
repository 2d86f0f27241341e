// ReedSolomon16: MDS round trips, encodeIndex, a plain reference twin, and every refusal.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { gf65536Exp, gf65536Inv, gf65536Mul } from '../../src/fec/gf65536.js';
import { cauchyInverseLogs, ReedSolomon16, RS16_MAX_SHARDS } from '../../src/fec/reed-solomon16.js';
import { expectFec } from './rs16-expect.js';

function randomShards(count: number, len: number, seed: number): Uint8Array[] {
  let s = seed >>> 0 || 1;
  return Array.from({ length: count }, () =>
    Uint8Array.from({ length: len }, () => {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      return s & 0xff;
    }),
  );
}

/** Reference twin of the encoder: the documented formula, word by word, with the checked field ops. */
function refParity(data: readonly Uint8Array[], k: number, p: number): Uint8Array {
  const len = data[0]!.length;
  const out = new Uint8Array(len);
  for (let w = 0; w < len / 2; w++) {
    let acc = 0;
    for (let j = 0; j < k; j++) {
      const d = data[j]![2 * w]! | (data[j]![2 * w + 1]! << 8);
      acc ^= gf65536Mul(d, gf65536Inv((k + p) ^ j));
    }
    out[2 * w] = acc & 0xff;
    out[2 * w + 1] = acc >>> 8;
  }
  return out;
}

/** 0…n−1 in a seeded (xorshift) Fisher–Yates order. */
function shuffled(n: number, seed: number): number[] {
  const a = Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    const j = s % (i + 1);
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

/** Lose `lost` of the k + m shards, reconstruct, and compare with the originals. */
function roundTrip(rs: ReedSolomon16, data: Uint8Array[], parity: Uint8Array[], lost: readonly number[], dataOnly = false): void {
  const all = [...data, ...parity];
  const shards: (Uint8Array | null)[] = [...all];
  for (const i of lost) shards[i] = null;
  rs.reconstruct(shards, { dataOnly });
  for (let i = 0; i < rs.totalShards; i++) {
    if (dataOnly && i >= rs.dataShards && lost.includes(i)) expect(shards[i]).toBeNull();
    else expect(shards[i]).toEqual(all[i]);
  }
}

function* subsets(n: number, size: number, start = 0, prefix: number[] = []): Generator<number[]> {
  if (prefix.length === size) {
    yield prefix;
    return;
  }
  for (let i = start; i < n; i++) yield* subsets(n, size, i + 1, [...prefix, i]);
}

describe('ReedSolomon16', () => {
  it('recovers from every pattern of ≤ m losses on tiny codes', () => {
    for (const [k, m] of [[1, 1], [1, 3], [2, 2], [3, 3], [4, 2], [5, 4], [2, 6]] as const) {
      const rs = new ReedSolomon16(k, m);
      const data = randomShards(k, 6, k * 100 + m);
      const parity = rs.encode(data);
      expect(rs.verify([...data, ...parity])).toBe(true);
      for (let e = 0; e <= m; e++) for (const lost of subsets(k + m, e)) roundTrip(rs, data, parity, lost, e % 2 === 1);
    }
  });

  it('encode equals the reference formula, aligned or not, and encodeIndex equals encode', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 40 }), fc.integer({ min: 1, max: 20 }), fc.integer(), (k, m, words, seed) => {
        const rs = new ReedSolomon16(k, m);
        const data = randomShards(k, 2 * words, seed);
        const parity = rs.encode(data);
        // Odd byteOffsets force the byte-pair path; the bytes must not change.
        const unaligned = data.map((d) => {
          const b = new Uint8Array(d.length + 1);
          b.set(d, 1);
          return b.subarray(1);
        });
        const outs = Array.from({ length: m }, () => new Uint8Array(2 * words + 1).subarray(1));
        expect(rs.encode(unaligned, outs)).toBe(outs);
        for (let p = 0; p < m; p++) {
          expect(parity[p]).toEqual(refParity(data, k, p));
          expect(outs[p]).toEqual(parity[p]);
          expect(rs.encodeIndex(data, p)).toEqual(parity[p]);
          const into = new Uint8Array(2 * words).fill(0xa5);
          expect(rs.encodeIndex(unaligned, p, into)).toBe(into);
          expect(into).toEqual(parity[p]);
        }
      }),
      { numRuns: 60 },
    );
  });

  it('recovers random erasure patterns for random k, m with k + m well past 256', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 2500 }),
        fc.integer({ min: 1, max: 600 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer(),
        fc.boolean(),
        (k, m, words, seed, dataOnly) => {
          const rs = new ReedSolomon16(k, m);
          const data = randomShards(k, 2 * words, seed);
          const parity = rs.encode(data);
          // Lose e ≤ m shards: the first e of a seeded shuffle of all k + m indices.
          const order = shuffled(k + m, seed);
          const lost = order.slice(0, (seed >>> 3) % (m + 1));
          roundTrip(rs, data, parity, lost, dataOnly);
        },
      ),
      { numRuns: 25 },
    );
  });

  it(`works at k + m = ${RS16_MAX_SHARDS} with 2-byte shards, at both ends`, () => {
    for (const [k, m] of [[RS16_MAX_SHARDS - 16, 16], [16, RS16_MAX_SHARDS - 16]] as const) {
      const rs = new ReedSolomon16(k, m);
      expect(rs.totalShards).toBe(65_536);
      const data = randomShards(k, 2, k);
      const parity = rs.encode(data);
      expect(rs.encodeIndex(data, m - 1)).toEqual(parity[m - 1]);
      // Lose 15 data shards, including the first and last, and the last parity shard: m = 16 in all.
      const lost = [0, k - 1, ...Array.from({ length: 13 }, (_, i) => Math.floor(((i + 1) * k) / 15))];
      const shards: (Uint8Array | null)[] = [...data, ...parity];
      for (const i of lost) shards[i] = null;
      shards[k + m - 1] = null;
      rs.reconstruct(shards);
      expect(shards.slice(0, k)).toEqual(data);
      expect(shards[k + m - 1]).toEqual(parity[m - 1]);
    }
  });

  it('inverts Cauchy matrices (closed form checked against the product)', () => {
    fc.assert(
      fc.property(fc.uniqueArray(fc.integer({ min: 0, max: 0xffff }), { minLength: 2, maxLength: 40 }), (points) => {
        const n = points.length >> 1;
        const xs = points.slice(0, n);
        const ys = points.slice(n, 2 * n);
        const inv = cauchyInverseLogs(xs, ys);
        for (let c = 0; c < n; c++) {
          for (let col = 0; col < n; col++) {
            let acc = 0;
            for (let r = 0; r < n; r++) acc ^= gf65536Mul(gf65536Exp(inv[c * n + r]!), gf65536Inv(xs[r]! ^ ys[col]!));
            expect(acc).toBe(c === col ? 1 : 0);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('verify spots a changed byte in any shard', () => {
    const rs = new ReedSolomon16(6, 3);
    const data = randomShards(6, 10, 5);
    const all = [...data, ...rs.encode(data)];
    expect(rs.verify(all)).toBe(true);
    for (let i = 0; i < all.length; i++) {
      const bad = all.map((s) => s.slice());
      const b = bad[i]!;
      b[i % 10] = b[i % 10]! ^ 1;
      expect(rs.verify(bad)).toBe(false);
    }
  });

  it('refuses bad k and m', () => {
    for (const [k, m] of [[0, 1], [1, 0], [-1, 2], [1.5, 2], [2, Number.NaN], [65_000, 537], [65_536, 1]] as const) {
      expectFec(() => new ReedSolomon16(k, m), 'GS_ERR_FEC_INVALID_PARAMS', /k|m/);
    }
    expect(new ReedSolomon16(65_535, 1).totalShards).toBe(65_536);
  });

  it('refuses odd, empty, mismatched and too short shards with SHARD_SIZE', () => {
    const rs = new ReedSolomon16(3, 2);
    const d = randomShards(3, 8, 1);
    expectFec(() => rs.encode([d[0]!, d[1]!, new Uint8Array(7)]), 'GS_ERR_FEC_SHARD_SIZE', /odd length 7.*even/);
    expectFec(() => rs.encode(randomShards(3, 5, 1)), 'GS_ERR_FEC_SHARD_SIZE', /odd length/);
    expectFec(() => rs.encode([d[0]!, d[1]!, new Uint8Array(10)]), 'GS_ERR_FEC_SHARD_SIZE', /10 bytes, the others 8/);
    expectFec(() => rs.encode(randomShards(3, 0, 1)), 'GS_ERR_FEC_SHARD_SIZE', /empty/);
    expectFec(() => rs.encode(d, [new Uint8Array(8)]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /encode: parity shards: 1 given, need 2/);
    expectFec(() => rs.encode(d, [new Uint8Array(8), new Uint8Array(8), new Uint8Array(8)]), 'GS_ERR_FEC_BAD_INDEX', /3 given, the code has 2/);
    expectFec(() => rs.encode(d, [new Uint8Array(8), new Uint8Array(6)]), 'GS_ERR_FEC_SHARD_SIZE', /parity shard 1 .* 8 bytes/);
    expectFec(() => rs.encodeIndex(d, 0, new Uint8Array(4)), 'GS_ERR_FEC_SHARD_SIZE', /output shard/);
    expectFec(() => rs.reconstruct([d[0]!, null, new Uint8Array(6), null, null]), 'GS_ERR_FEC_SHARD_SIZE', /shard 2 has 6 bytes/);
    expect(() => rs.encode([d[0]!, d[1]!, 'abcd' as never])).toThrow(TypeError);
  });

  it('refuses too few shards and bad indices', () => {
    const rs = new ReedSolomon16(3, 2);
    const d = randomShards(3, 8, 2);
    const all = [...d, ...rs.encode(d)];
    expectFec(() => rs.encode(d.slice(0, 2)), 'GS_ERR_FEC_TOO_FEW_SHARDS', /needs k = 3 data shards, got 2/);
    expectFec(() => rs.encode([d[0]!, null as never, d[2]!]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /data shard 1 is missing/);
    expectFec(() => rs.encode([...d, d[0]!]), 'GS_ERR_FEC_BAD_INDEX', /takes k = 3 data shards, got 4/);
    expectFec(() => rs.reconstruct([all[0]!, null, undefined, all[3]!, null]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /needs 3 of 5 shards, got 2/);
    expectFec(() => rs.reconstruct(all.slice(0, 4)), 'GS_ERR_FEC_BAD_INDEX', /k \+ m = 5 entries, got 4/);
    expectFec(() => rs.reconstruct([...all, all[0]!]), 'GS_ERR_FEC_BAD_INDEX', /got 6/);
    expectFec(() => rs.verify([all[0]!, all[1]!, all[2]!, all[3]!, null as never]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /shard 4 is missing/);
    for (const p of [-1, 2, 0.5, Number.NaN]) expectFec(() => rs.encodeIndex(d, p), 'GS_ERR_FEC_BAD_INDEX', /parity index/);
  });

  it('leaves present shards untouched', () => {
    const rs = new ReedSolomon16(4, 3);
    const data = randomShards(4, 12, 9);
    const all = [...data, ...rs.encode(data)];
    const copies = all.map((s) => s.slice());
    const shards: (Uint8Array | null)[] = [...all];
    shards[1] = shards[2] = shards[5] = null;
    rs.reconstruct(shards);
    all.forEach((s, i) => expect(s).toEqual(copies[i]));
  });
});
