/**
 * Streaming encoder and progressive decoder against the whole-block codec:
 * random codes, shard lengths and arrival orders give the same parity and
 * the same data, exactly when the last data shard / the k-th shard is in.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FecError } from '../../src/errors/index.js';
import { ReedSolomon } from '../../src/fec/reed-solomon.js';
import { ProgressiveDecoder, StreamingEncoder } from '../../src/fec/streaming.js';

const code = fc.integer({ min: 1, max: 60 }).chain((k) =>
  fc.tuple(fc.constant(k), fc.integer({ min: 1, max: Math.min(20, 256 - k) }), fc.integer({ min: 1, max: 200 }), fc.integer()),
);

function block(k: number, len: number, seed: number): Uint8Array[] {
  let x = seed | 1;
  return Array.from({ length: k }, () => new Uint8Array(len).map(() => (x = (Math.imul(x, 1103515245) + 12345) | 0) >>> 23));
}

const same = (a: readonly Uint8Array[], b: readonly Uint8Array[]) =>
  a.length === b.length && a.every((s, i) => Buffer.from(s).equals(Buffer.from(b[i]!)));

function codeOf(error: unknown): string | undefined {
  return error instanceof FecError ? error.code : undefined;
}

describe('StreamingEncoder', () => {
  it('data shards in any order give encode(data), on the last one', () => {
    fc.assert(
      fc.property(code, fc.boolean(), ([k, m, len, seed], announce) => {
        const rs = new ReedSolomon(k, m);
        const data = block(k, len, seed);
        const order = fc.sample(fc.shuffledSubarray([...Array(k).keys()], { minLength: k, maxLength: k }), { numRuns: 1, seed })[0]!;
        const enc = new StreamingEncoder(rs, announce ? len : undefined);
        let parity: Uint8Array[] | undefined;
        order.forEach((j, n) => {
          expect(enc.complete).toBe(false);
          parity = enc.add(j, data[j]!);
          expect(parity === undefined).toBe(n < k - 1);
        });
        expect(enc.complete).toBe(true);
        expect(enc.received).toBe(k);
        expect(same(parity!, rs.encode(data))).toBe(true);
        expect(enc.parity()).toBe(parity);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses bad indices, duplicates, other lengths, early parity; stays usable', () => {
    const rs = new ReedSolomon(3, 2);
    const data = block(3, 8, 1);
    const enc = new StreamingEncoder(rs);
    expect(() => enc.parity()).toThrow(expect.objectContaining({ code: 'GS_ERR_FEC_TOO_FEW_SHARDS' }));
    enc.add(1, data[1]!);
    for (const i of [-1, 3, 0.5, NaN]) expect(codeOf(catchIt(() => enc.add(i, data[0]!)))).toBe('GS_ERR_FEC_BAD_INDEX');
    expect(catchIt(() => enc.add(1, data[1]!))).toMatchObject({ code: 'GS_ERR_FEC_BAD_INDEX', message: expect.stringMatching(/already/) });
    expect(catchIt(() => enc.add(0, new Uint8Array(7)))).toMatchObject({ code: 'GS_ERR_FEC_SHARD_SIZE', message: expect.stringMatching(/7 bytes/) });
    expect(codeOf(catchIt(() => enc.add(0, new Uint8Array(0))))).toBe('GS_ERR_FEC_SHARD_SIZE');
    enc.add(2, data[2]!);
    expect(same(enc.add(0, data[0]!)!, rs.encode(data))).toBe(true);
    expect(codeOf(catchIt(() => new StreamingEncoder(rs, 0)))).toBe('GS_ERR_FEC_SHARD_SIZE');
    expect(codeOf(catchIt(() => new StreamingEncoder(rs, 4).add(0, data[0]!)))).toBe('GS_ERR_FEC_SHARD_SIZE');
  });
});

describe('ProgressiveDecoder', () => {
  it('any k distinct shards in any order give the data, on the k-th', () => {
    fc.assert(
      fc.property(code, ([k, m, len, seed]) => {
        const rs = new ReedSolomon(k, m);
        const data = block(k, len, seed);
        const all = [...data, ...rs.encode(data)];
        const order = fc.sample(fc.shuffledSubarray([...Array(k + m).keys()], { minLength: k + m, maxLength: k + m }), {
          numRuns: 1,
          seed,
        })[0]!;
        const dec = new ProgressiveDecoder(rs);
        let got: Uint8Array[] | undefined;
        order.forEach((i, n) => {
          const r = dec.add(i, all[i]!);
          expect(r === undefined).toBe(n < k - 1);
          if (n === k - 1) got = r;
          else if (r) expect(r).toBe(got);
        });
        expect(dec.done).toBe(true);
        expect(dec.received).toBe(k + m);
        expect(same(got!, data)).toBe(true);
        expect(dec.data()).toBe(got);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses bad indices, duplicates and other lengths, before and after decoding', () => {
    const rs = new ReedSolomon(2, 2);
    const data = block(2, 5, 3);
    const all = [...data, ...rs.encode(data)];
    const dec = new ProgressiveDecoder(rs);
    expect(codeOf(catchIt(() => dec.data()))).toBe('GS_ERR_FEC_TOO_FEW_SHARDS');
    expect(dec.add(3, all[3]!)).toBeUndefined();
    for (const i of [-1, 4, 1.5]) expect(codeOf(catchIt(() => dec.add(i, all[0]!)))).toBe('GS_ERR_FEC_BAD_INDEX');
    expect(codeOf(catchIt(() => dec.add(3, all[3]!)))).toBe('GS_ERR_FEC_BAD_INDEX');
    expect(codeOf(catchIt(() => dec.add(0, new Uint8Array(6))))).toBe('GS_ERR_FEC_SHARD_SIZE');
    expect(same(dec.add(2, all[2]!)!, data)).toBe(true);
    expect(codeOf(catchIt(() => dec.add(2, all[2]!)))).toBe('GS_ERR_FEC_BAD_INDEX');
    expect(codeOf(catchIt(() => dec.add(0, new Uint8Array(4))))).toBe('GS_ERR_FEC_SHARD_SIZE');
    expect(same(dec.add(0, all[0]!)!, data)).toBe(true);
  });
});

function catchIt(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error('expected a throw');
}
