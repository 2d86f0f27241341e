/**
 * The GF(2^8) Reed–Solomon codec: every erasure pattern of at most m losses
 * on every small code (k + m ≤ 8), random patterns on large codes (k + m up
 * to 256), encodeIndex against encode, verify, the generator's shape, and
 * every bad input with its FecError code. Each reconstruction test runs over
 * the decode-cache options (off, one entry, default) on identical shards.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FecError, type FecErrorCode } from '../../src/errors/index.js';
import { mulAddRef } from '../../src/fec/gf256-kernel.js';
import { createReedSolomon, ReedSolomon, rs8ParityMatrix } from '../../src/fec/reed-solomon.js';

/** Decode-cache settings every reconstruction test runs under (STYLE.md §6, option matrix). */
const CACHE_OPTIONS = [{ decodeCacheSize: 0 }, { decodeCacheSize: 1 }, {}] as const;

/** Deterministic pseudo-random bytes. */
function randomShards(count: number, len: number, seed: number, offset = 0): Uint8Array[] {
  let x = seed | 1;
  return Array.from({ length: count }, () => {
    const buf = new Uint8Array(len + offset);
    for (let i = 0; i < buf.length; i++) buf[i] = (x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 23;
    return buf.subarray(offset);
  });
}

const same = (a: Uint8Array, b: Uint8Array | null | undefined) => b instanceof Uint8Array && Buffer.from(a).equals(Buffer.from(b));

/** Parity by the definition, with the reference kernel: P · data. */
function referenceParity(k: number, m: number, data: readonly Uint8Array[]): Uint8Array[] {
  const p = rs8ParityMatrix(k, m);
  return p.map((row) => {
    const out = new Uint8Array(data[0]!.length);
    row.forEach((c, j) => mulAddRef(c, data[j]!, out));
    return out;
  });
}

/** Lose the shards in `lost`, reconstruct, and check everything came back (data only, then all). */
function lossAndBack(rs: ReedSolomon, all: readonly Uint8Array[], lost: readonly number[]): void {
  for (const dataOnly of [true, false]) {
    const shards: (Uint8Array | null)[] = all.slice();
    for (const i of lost) shards[i] = null;
    rs.reconstruct(shards, { dataOnly });
    for (let i = 0; i < all.length; i++) {
      if (dataOnly && i >= rs.dataShards && lost.includes(i)) {
        if (shards[i] !== null) throw new Error(`dataOnly rebuilt parity shard ${i}`);
      } else if (!same(all[i]!, shards[i])) {
        throw new Error(`RS(${rs.dataShards},${rs.parityShards}) lost [${lost}]: shard ${i} differs`);
      }
    }
  }
}

function expectFec(fn: () => unknown, code: FecErrorCode, message?: RegExp): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FecError);
    expect((error as FecError).code).toBe(code);
    if (message) expect((error as Error).message).toMatch(message);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('RS(k, m) over GF(2^8): encode', () => {
  it('encode equals P · data by the reference kernel; encodeIndex equals encode; verify agrees', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 40 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 0, max: 7 }),
        fc.integer(),
        (k, m, len, offset, seed) => {
          const rs = new ReedSolomon(k, m);
          const data = randomShards(k, len, seed, offset);
          const copy = data.map((d) => d.slice());
          const parity = rs.encode(data);
          const ref = referenceParity(k, m, data);
          for (let i = 0; i < m; i++) {
            if (!same(ref[i]!, parity[i])) throw new Error(`parity ${i} differs from the reference`);
            if (!same(parity[i]!, rs.encodeIndex(data, i))) throw new Error(`encodeIndex(${i}) differs`);
            const out = new Uint8Array(len + 3).subarray(3);
            rs.encodeIndex(data, i, out);
            if (!same(parity[i]!, out)) throw new Error(`encodeIndex(${i}, out) differs`);
          }
          data.forEach((d, j) => expect(same(copy[j]!, d)).toBe(true));
          expect(rs.verify([...data, ...parity])).toBe(true);
          const bad = parity.map((p) => p.slice());
          bad[seed >>> 0 ? (seed >>> 0) % m : 0]![(seed >>> 3) % len]! ^= 1 << (seed & 7);
          expect(rs.verify([...data, ...bad])).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('writes into given parity arrays (also subarrays of one buffer) and returns them', () => {
    const rs = createReedSolomon(5, 3);
    const data = randomShards(5, 1001, 7);
    const buf = new Uint8Array(3 * 1001 + 1);
    const parity = [0, 1, 2].map((i) => buf.subarray(1 + i * 1001, 1 + (i + 1) * 1001));
    expect(rs.encode(data, parity)).toBe(parity);
    expect(parity).toEqual(rs.encode(data));
  });

  it('generator: parity row 0 is XOR of the data, column 0 all ones, m = 1 is XOR parity', () => {
    for (const [k, m] of [[1, 1], [10, 4], [200, 56], [1, 255], [255, 1]] as const) {
      const p = rs8ParityMatrix(k, m);
      expect(p.length).toBe(m);
      for (let j = 0; j < k; j++) expect(p[0]![j]).toBe(1);
      for (let i = 0; i < m; i++) expect(p[i]![0]).toBe(1);
      for (const row of p) for (const c of row) expect(c).not.toBe(0);
    }
    const data = randomShards(4, 33, 3);
    const xor = new Uint8Array(33);
    for (const d of data) for (let i = 0; i < 33; i++) xor[i]! ^= d[i]!;
    expect(new ReedSolomon(4, 1).encode(data)[0]).toEqual(xor);
  });
});

describe('RS(k, m) over GF(2^8): reconstruct', () => {
  it.each(CACHE_OPTIONS)('every pattern of ≤ m losses on every code with k + m ≤ 8 (%o)', (options) => {
    let patterns = 0;
    for (let n = 2; n <= 8; n++) {
      for (let k = 1; k < n; k++) {
        const m = n - k;
        const rs = new ReedSolomon(k, m, options);
        const len = 1 + ((n * 37 + k * 11) % 70);
        const data = randomShards(k, len, n * 31 + k);
        const all = [...data, ...rs.encode(data)];
        for (let mask = 0; mask < 1 << n; mask++) {
          const lost = [...Array(n).keys()].filter((i) => mask & (1 << i));
          if (lost.length > m) continue;
          lossAndBack(rs, all, lost);
          patterns++;
        }
      }
    }
    expect(patterns).toBeGreaterThan(700);
  });

  it.each(CACHE_OPTIONS)('random patterns of ≤ m losses on codes up to k + m = 256 (%o)', (options) => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 255 }).chain((k) =>
          fc.tuple(fc.constant(k), fc.integer({ min: 1, max: 256 - k }), fc.integer({ min: 1, max: 64 }), fc.integer()),
        ),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 1, maxLength: 256 }),
        ([k, m, len, seed], picks) => {
          const rs = new ReedSolomon(k, m, options);
          const data = randomShards(k, len, seed, seed & 3);
          const all = [...data, ...rs.encode(data)];
          // Lose up to m distinct shards, biased to data (parity losses are the easy case).
          const lost = new Set<number>();
          for (const p of picks) {
            if (lost.size >= m) break;
            lost.add(Math.min(k + m - 1, Math.floor(p * p * (k + m))));
          }
          lossAndBack(rs, all, [...lost]);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('the same patterns again hit the cache and still decode right (LRU of one)', () => {
    const rs = new ReedSolomon(6, 3, { decodeCacheSize: 1 });
    const data = randomShards(6, 100, 99);
    const all = [...data, ...rs.encode(data)];
    for (let round = 0; round < 3; round++) {
      for (const lost of [[0, 1, 2], [0, 1, 2], [3, 4, 5], [0, 1, 2], [1, 6, 8]]) lossAndBack(rs, all, lost);
    }
  });

  it('more than k present: uses k of them; all present is a no-op', () => {
    const rs = new ReedSolomon(3, 3);
    const data = randomShards(3, 17, 5);
    const all = [...data, ...rs.encode(data)];
    const shards: (Uint8Array | undefined)[] = all.slice();
    shards[1] = undefined;
    rs.reconstruct(shards);
    expect(shards[1]).toEqual(all[1]);
    const full = all.slice();
    expect(rs.reconstruct(full)).toBe(full);
    full.forEach((s, i) => expect(s).toBe(all[i]));
  });
});

describe('RS(k, m) over GF(2^8): bad input', () => {
  const rs = new ReedSolomon(4, 2);
  const data = randomShards(4, 10, 1);
  const parity = rs.encode(data);

  it('k and m out of range', () => {
    for (const [k, m] of [[0, 1], [1, 0], [-1, 2], [2.5, 1], [1, 1.5], [NaN, 1], [200, 57], [256, 1], [1, 256]]) {
      expectFec(() => new ReedSolomon(k!, m!), 'GS_ERR_FEC_INVALID_PARAMS', /k=|m=/);
    }
    expect(new ReedSolomon(255, 1).totalShards).toBe(256);
    expect(new ReedSolomon(1, 255).totalShards).toBe(256);
    expectFec(() => new ReedSolomon(2, 2, { decodeCacheSize: -1 }), 'GS_ERR_FEC_INVALID_PARAMS', /decodeCacheSize/);
  });

  it('wrong shard counts', () => {
    expectFec(() => rs.encode(data.slice(0, 3)), 'GS_ERR_FEC_TOO_FEW_SHARDS', /3 given, need 4/);
    expectFec(() => rs.encode([...data, data[0]!]), 'GS_ERR_FEC_BAD_INDEX', /5 given/);
    expectFec(() => rs.encode(data, [new Uint8Array(10)]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /parity/);
    expectFec(() => rs.reconstruct([...data, parity[0]!]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /slots/);
    expectFec(() => rs.reconstruct([...data, ...parity, null]), 'GS_ERR_FEC_BAD_INDEX', /slots/);
    expectFec(() => rs.verify([...data, parity[0]!]), 'GS_ERR_FEC_TOO_FEW_SHARDS');
  });

  it('mismatched or empty shards, and outputs of the wrong size', () => {
    const short = [...data.slice(0, 3), new Uint8Array(9)];
    expectFec(() => rs.encode(short), 'GS_ERR_FEC_SHARD_SIZE', /data shard 3 has 9 bytes/);
    expectFec(() => rs.encode(data.map(() => new Uint8Array(0))), 'GS_ERR_FEC_SHARD_SIZE', /empty/);
    expectFec(() => rs.encode(data, [new Uint8Array(10), new Uint8Array(11)]), 'GS_ERR_FEC_SHARD_SIZE', /parity shard 1/);
    expectFec(() => rs.encodeIndex(data, 0, new Uint8Array(9)), 'GS_ERR_FEC_SHARD_SIZE', /out/);
    expectFec(() => rs.reconstruct([null, data[1]!, data[2]!, new Uint8Array(11), parity[0]!, null]), 'GS_ERR_FEC_SHARD_SIZE', /shard 3/);
    expectFec(() => rs.verify([...data, parity[0]!, new Uint8Array(3)]), 'GS_ERR_FEC_SHARD_SIZE', /shard 5/);
    expect(() => rs.encode([1, 2, 3, 4] as unknown as Uint8Array[])).toThrow(TypeError);
  });

  it('too few shards to reconstruct; a missing shard in verify', () => {
    expectFec(() => rs.reconstruct([null, null, null, data[3]!, parity[0]!, parity[1]!]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /3 of 6 shards present, need 4/);
    expectFec(() => rs.reconstruct([null, null, null, null, null, null]), 'GS_ERR_FEC_TOO_FEW_SHARDS');
    expectFec(() => rs.verify([...data, parity[0]!, undefined as unknown as Uint8Array]), 'GS_ERR_FEC_TOO_FEW_SHARDS', /shard 5 is missing/);
  });

  it('parity and data indices out of range', () => {
    for (const i of [-1, 2, 1.5, NaN, 256]) {
      expectFec(() => rs.encodeIndex(data, i), 'GS_ERR_FEC_BAD_INDEX', /parity index/);
      expectFec(() => rs.coefficient(i, 0), 'GS_ERR_FEC_BAD_INDEX');
    }
    expectFec(() => rs.coefficient(0, 4), 'GS_ERR_FEC_BAD_INDEX', /data index 4/);
    expect(rs.coefficient(0, 3)).toBe(1);
  });

  it('outputs that overlap the data or each other', () => {
    const d = data.map((x) => x.slice());
    expectFec(() => rs.encode(d, [d[0]!, new Uint8Array(10)]), 'GS_ERR_FEC_INVALID_PARAMS', /overlaps data shard 0/);
    const p = new Uint8Array(10);
    expectFec(() => rs.encode(d, [p, p]), 'GS_ERR_FEC_INVALID_PARAMS', /overlaps parity shard 0/);
    const big = new Uint8Array(50);
    const parts = [0, 1, 2, 3].map((j) => big.subarray(j * 10, j * 10 + 10));
    expectFec(() => rs.encodeIndex(parts, 1, big.subarray(35, 45)), 'GS_ERR_FEC_INVALID_PARAMS', /overlaps data shard 3/);
    expect(rs.encodeIndex(parts, 1, big.subarray(40, 50))).toBeInstanceOf(Uint8Array);
  });
});
