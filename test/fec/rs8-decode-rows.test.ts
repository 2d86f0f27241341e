// rs8DecodeRows: the decode rows of the missing data shards from an e × e inverse equal the rows of the k × k inverse.
import { describe, expect, it } from 'vitest';
import { invertMatrix, type Gf256Matrix } from '../../src/fec/matrix.js';
import { ReedSolomon, rs8ParityMatrix } from '../../src/fec/reed-solomon.js';
import { DecodeMatrixCache, rs8DecodeRows } from '../../src/fec/rs8-support.js';

function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s / 2 ** 32;
  };
}

/** The rows `missing` of the inverse of the generator rows `chosen` (the reference: a full k × k inverse). */
function fullRows(parity: Gf256Matrix, k: number, chosen: number[], missing: number[]): Gf256Matrix {
  const sub = chosen.map((i) => {
    if (i >= k) return parity[i - k]!.slice();
    const row = new Uint8Array(k);
    row[i] = 1;
    return row;
  });
  const inv = invertMatrix(sub);
  return missing.map((j) => inv[j]!);
}

/** A random erasure pattern: the lowest k present shards (as reconstruct chooses them) and the missing data shards. */
function pattern(k: number, m: number, r: () => number): { chosen: number[]; missing: number[] } {
  const lost = new Set<number>();
  const e = Math.floor(r() * (m + 1));
  while (lost.size < e) lost.add(Math.floor(r() * (k + m)));
  const chosen: number[] = [];
  for (let i = 0; i < k + m && chosen.length < k; i++) if (!lost.has(i)) chosen.push(i);
  const missing: number[] = [];
  for (let i = 0; i < k; i++) if (lost.has(i)) missing.push(i);
  return { chosen, missing };
}

describe('rs8DecodeRows', () => {
  it('equals the rows of the full inverse for random erasure patterns and shapes', () => {
    const r = rng(5);
    for (const [k, m] of [[1, 1], [4, 2], [10, 4], [64, 8], [192, 64], [200, 56]] as const) {
      const parity = rs8ParityMatrix(k, m);
      for (let n = 0; n < 12; n++) {
        const { chosen, missing } = pattern(k, m, r);
        expect(rs8DecodeRows(parity, k, chosen, missing)).toEqual(fullRows(parity, k, chosen, missing));
      }
    }
  });

  it('refuses a choice that does not hold one parity shard per missing data shard', () => {
    const parity = rs8ParityMatrix(4, 2);
    expect(() => rs8DecodeRows(parity, 4, [0, 2, 3, 4], [1, 2])).toThrow(RangeError);
  });

  it('the cache hands back the same rows for the same pattern, and reconstruct rebuilds lost data', () => {
    const parity = rs8ParityMatrix(8, 4);
    const cache = new DecodeMatrixCache(parity, 8, 4);
    const a = cache.rows([0, 1, 3, 4, 6, 7, 8, 9], [2, 5]);
    expect(cache.rows([0, 1, 3, 4, 6, 7, 8, 9], [2, 5])).toBe(a);
    expect(a).toEqual(fullRows(parity, 8, [0, 1, 3, 4, 6, 7, 8, 9], [2, 5]));
    const rs = new ReedSolomon(8, 4);
    const r = rng(9);
    const data = Array.from({ length: 8 }, () => Uint8Array.from({ length: 33 }, () => Math.floor(r() * 256)));
    const shards: (Uint8Array | null)[] = [...data, ...rs.encode(data)];
    shards[2] = shards[5] = shards[6] = shards[8] = null;
    rs.reconstruct(shards, { dataOnly: true });
    for (let i = 0; i < 8; i++) expect(shards[i]).toEqual(data[i]);
  });
});
