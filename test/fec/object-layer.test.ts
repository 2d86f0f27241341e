// Object layer: awkward sizes, losses up to m per block, any order with duplicates, on both codecs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  blockSourceSymbols,
  encodeFecInfo,
  ObjectDecoder,
  ObjectEncoder,
  objectLayout,
  type CoderFactory,
  type EncodedSymbol,
  type ObjectCodeOptions,
} from '../../src/fec/object.js';
import { createReedSolomon } from '../../src/fec/reed-solomon.js';
import { createReedSolomon16 } from '../../src/fec/reed-solomon16.js';
import { CODERS, expectFec } from './rs16-expect.js';


function bytes(n: number, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  return Uint8Array.from({ length: n }, () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s >>> 24;
  });
}

/** A seeded Fisher–Yates shuffle (fast-check supplies the seed, so failures replay). */
function shuffle<T>(items: T[], seed: number): T[] {
  let s = seed >>> 0 || 1;
  for (let i = items.length - 1; i > 0; i--) {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    const j = s % (i + 1);
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** Drop up to m symbols of each block, duplicate some, shuffle: what a lossy multicast delivers. */
function deliver(symbols: EncodedSymbol[], m: number, seed: number): EncodedSymbol[] {
  const bySbn = new Map<number, EncodedSymbol[]>();
  for (const s of symbols) bySbn.set(s.sbn, [...(bySbn.get(s.sbn) ?? []), s]);
  const kept: EncodedSymbol[] = [];
  let n = seed;
  for (const block of bySbn.values()) {
    n = (Math.imul(n, 69_069) + 1) >>> 0;
    const lose = n % (m + 1);
    kept.push(...shuffle([...block], n).slice(lose));
  }
  const dups = kept.filter((_, i) => (i * 7 + seed) % 5 === 0);
  return shuffle([...kept, ...dups], seed ^ 0x5bd1e995);
}

const arbCase = fc
  .record({
    coder: fc.integer({ min: 0, max: CODERS.length - 1 }),
    words: fc.integer({ min: 1, max: 24 }),
    k: fc.integer({ min: 1, max: 12 }),
    m: fc.integer({ min: 1, max: 6 }),
    sizeKind: fc.constantFrom('zero', 'one', 'block', 'blockPlus1', 'symbolMinus1', 'random'),
    extra: fc.nat(5 * 12 * 48),
    seed: fc.integer(),
  })
  .map((c) => {
    const symbolSize = 2 * c.words; // even, so both codecs take it
    const blockBytes = c.k * symbolSize;
    const length = {
      zero: 0,
      one: 1,
      block: blockBytes,
      blockPlus1: blockBytes + 1,
      symbolMinus1: symbolSize - 1,
      random: c.extra,
    }[c.sizeKind];
    const options: ObjectCodeOptions = { symbolSize, sourceSymbols: c.k, repairSymbols: c.m, coder: CODERS[c.coder]![1] };
    return { ...c, length, options };
  });

describe('object layer', () => {
  it('round-trips awkward sizes through losses ≤ m per block, any order, duplicates', () => {
    fc.assert(
      fc.property(arbCase, ({ length, options, seed, m }) => {
        const object = bytes(length, seed);
        const enc = new ObjectEncoder(object, options);
        const symbols = [...enc.symbols()];
        const dec = new ObjectDecoder(length, options);
        expect(dec.complete).toBe(length === 0);
        const arrivals = deliver(symbols, m, seed);
        let sawComplete = false;
        for (const s of arrivals) {
          const before = dec.isBlockComplete(s.sbn);
          const r = dec.add(s.fecInfo, s.symbol);
          expect(r.sbn).toBe(s.sbn);
          if (before) expect(r.accepted).toBe(false);
          expect(r.complete).toBe(dec.completeBlocks === dec.layout.blockCount);
          sawComplete ||= r.complete;
        }
        expect(dec.complete).toBe(true);
        expect(sawComplete || length === 0).toBe(true);
        expect(dec.missingBlocks()).toEqual([]);
        expect(dec.object()).toEqual(object);
      }),
      { numRuns: 200 },
    );
  });

  it('sends no symbol past the object end, and exactly k + m per full block', () => {
    for (const [name, coder] of CODERS) {
      const options = { symbolSize: 4, sourceSymbols: 5, repairSymbols: 2, coder };
      const sizes = [0, 1, 3, 4, 5, 20, 21, 39, 40, 41];
      for (const length of sizes) {
        const symbols = [...new ObjectEncoder(bytes(length, length), options).symbols()];
        const layout = objectLayout(length, options);
        const expected = Array.from({ length: layout.blockCount }, (_, sbn) => blockSourceSymbols(layout, sbn) + 2).reduce((a, b) => a + b, 0);
        expect(symbols.length, `${name} ${length}`).toBe(expected);
        expect(layout.blockCount).toBe(Math.ceil(length / 20));
        for (const s of symbols) expect(s.symbol.length).toBe(4);
      }
    }
  });

  it('needs only the real symbols of a short last block (1 byte + 1 repair symbol is a full object)', () => {
    for (const [, coder] of CODERS) {
      const options = { symbolSize: 8, sourceSymbols: 10, repairSymbols: 3, coder };
      const enc = new ObjectEncoder(Uint8Array.of(42), options);
      const [source, repair] = [...enc.symbols({ repair: 1 })];
      expect(source!.esi).toBe(0);
      expect(repair!.esi).toBe(10);
      const dec = new ObjectDecoder(1, options);
      expect(dec.needed(0)).toBe(1);
      const r = dec.add(repair!.fecInfo, repair!.symbol);
      expect(r).toEqual({ sbn: 0, esi: 10, accepted: true, blockComplete: true, complete: true });
      expect(dec.object()).toEqual(Uint8Array.of(42));
    }
  });

  it('makes any symbol on demand, equal to the streamed one; repair option limits what is streamed', () => {
    fc.assert(
      fc.property(arbCase, fc.integer({ min: 0, max: 6 }), ({ length, options, seed }, r) => {
        const enc = new ObjectEncoder(bytes(length, seed), options);
        const all = [...enc.symbols()];
        for (const s of all) expect(enc.symbol(s.fecInfo)).toEqual(s.symbol);
        const repair = Math.min(r, options.repairSymbols);
        const some = [...enc.symbols({ repair })];
        expect(some).toEqual(all.filter((s) => s.esi < options.sourceSymbols + repair));
      }),
      { numRuns: 60 },
    );
  });

  it('fromChunks gives the same symbols as the in-memory encoder for any chunking', async () => {
    await fc.assert(
      fc.asyncProperty(arbCase, fc.array(fc.integer({ min: 1, max: 300 }), { minLength: 1, maxLength: 20 }), async ({ length, options, seed }, cuts) => {
        const object = bytes(length, seed);
        async function* chunks(): AsyncGenerator<Uint8Array> {
          let off = 0;
          for (let i = 0; off < length; i++) {
            const n = cuts[i % cuts.length]!;
            yield object.slice(off, off + n);
            off += n;
          }
          yield new Uint8Array(0);
        }
        const streamed: EncodedSymbol[] = [];
        for await (const s of ObjectEncoder.fromChunks(chunks(), options)) streamed.push(s);
        expect(streamed).toEqual([...new ObjectEncoder(object, options).symbols()]);
      }),
      { numRuns: 60 },
    );
  });

  it('tracks per-block progress and refuses to hand out what it does not have', () => {
    const options = { symbolSize: 2, sourceSymbols: 3, repairSymbols: 2, coder: createReedSolomon16 };
    const object = bytes(10, 3); // blocks of 6 bytes: 6 + 4 (2 real symbols)
    const symbols = [...new ObjectEncoder(object, options).symbols()];
    const dec = new ObjectDecoder(10, options);
    expect(dec.missingBlocks()).toEqual([0, 1]);
    expect([dec.needed(0), dec.needed(1)]).toEqual([3, 2]);
    expectFec(() => dec.block(1), 'GS_ERR_FEC_TOO_FEW_SHARDS', /block 1 is not decoded yet: it needs 2 more/);
    expectFec(() => dec.object(), 'GS_ERR_FEC_TOO_FEW_SHARDS', /2 of 2 blocks still need symbols/);
    for (const s of symbols.filter((x) => x.sbn === 1 && x.esi !== 0)) dec.add(s.fecInfo, s.symbol);
    expect(dec.isBlockComplete(1)).toBe(true);
    expect(dec.block(1)).toEqual(object.subarray(6));
    expect(dec.missingBlocks()).toEqual([0]);
    const again = symbols.find((x) => x.sbn === 1)!;
    expect(dec.add(again.fecInfo, again.symbol).accepted).toBe(false);
    const first = symbols.find((x) => x.sbn === 0)!;
    expect(dec.add(first.fecInfo, first.symbol).accepted).toBe(true);
    expect(dec.add(first.fecInfo, first.symbol).accepted).toBe(false); // duplicate
    expect(dec.needed(0)).toBe(2);
  });

  it('copies symbols on add, so callers may reuse their buffers', () => {
    const options = { symbolSize: 4, sourceSymbols: 2, repairSymbols: 1, coder: createReedSolomon16 };
    const object = bytes(8, 9);
    const dec = new ObjectDecoder(8, options);
    const buf = new Uint8Array(4);
    for (const s of new ObjectEncoder(object, options).symbols()) {
      if (s.esi === 0) continue;
      buf.set(s.symbol);
      dec.add(s.fecInfo, buf);
      buf.fill(0xee);
    }
    expect(dec.object()).toEqual(object);
  });

  it('refuses fecInfo outside the object and symbols of the wrong size', () => {
    const options = { symbolSize: 4, sourceSymbols: 4, repairSymbols: 2, coder: createReedSolomon16 };
    const dec = new ObjectDecoder(20, options); // block 0 full, block 1 has 1 real symbol
    const sym = new Uint8Array(4);
    expectFec(() => dec.add(encodeFecInfo(2, 0), sym), 'GS_ERR_FEC_BAD_INDEX', /sbn 2, esi 0\) is outside the object: it has 2 blocks/);
    expectFec(() => dec.add(encodeFecInfo(0, 6), sym), 'GS_ERR_FEC_BAD_INDEX', /esi must be < k \+ m = 6/);
    expectFec(() => dec.add(encodeFecInfo(1, 1), sym), 'GS_ERR_FEC_BAD_INDEX', /block 1 has 1 source symbols; the rest are implicit zeros/);
    expectFec(() => dec.add(-1, sym), 'GS_ERR_FEC_BAD_INDEX', /unsigned 32-bit/);
    expectFec(() => dec.add(encodeFecInfo(0, 0), new Uint8Array(5)), 'GS_ERR_FEC_SHARD_SIZE', /5 bytes, the object's symbols 4/);
    expect(() => dec.add(encodeFecInfo(0, 0), [1, 2, 3, 4] as never)).toThrow(TypeError);
    expectFec(() => dec.needed(2), 'GS_ERR_FEC_BAD_INDEX', /sbn 2 is outside the object/);
    expectFec(() => new ObjectEncoder(bytes(20, 1), options).symbol(encodeFecInfo(1, 3)), 'GS_ERR_FEC_BAD_INDEX', /implicit zeros/);
    const empty = new ObjectDecoder(0, options);
    expect(empty.complete).toBe(true);
    expect(empty.object()).toEqual(new Uint8Array(0));
    expectFec(() => empty.add(encodeFecInfo(0, 0), sym), 'GS_ERR_FEC_BAD_INDEX', /it has 0 blocks/);
  });

  it('refuses bad options, coders and sizes before any data', () => {
    const base = { symbolSize: 4, sourceSymbols: 4, repairSymbols: 2, coder: createReedSolomon16 };
    const cases: [Partial<ObjectCodeOptions>, RegExp][] = [
      [{ symbolSize: 0 }, /symbolSize must be an integer ≥ 1/],
      [{ sourceSymbols: 0 }, /sourceSymbols \(k\)/],
      [{ repairSymbols: 1.5 }, /repairSymbols \(m\)/],
      [{ sourceSymbols: 65_000, repairSymbols: 537 }, /k \+ m must be ≤ 65536/],
      [{ coder: (() => createReedSolomon16(3, 2)) as CoderFactory }, /coder is \(3, 2\), the object layout needs \(4, 2\)/],
      [{ coder: 'rs' as never }, /coder must be a function/],
      [{ sourceSymbols: 300, coder: createReedSolomon }, /256|k \+ m/],
    ];
    for (const [patch, message] of cases) {
      expectFec(() => new ObjectDecoder(100, { ...base, ...patch }), 'GS_ERR_FEC_INVALID_PARAMS', message);
    }
    expectFec(() => new ObjectDecoder(-1, base), 'GS_ERR_FEC_INVALID_PARAMS', /object length must be an integer ≥ 0/);
    expectFec(() => new ObjectDecoder(100, { ...base, symbolSize: 3 }), 'GS_ERR_FEC_SHARD_SIZE', /odd length 3/);
    expect(new ObjectDecoder(100, { ...base, symbolSize: 3, coder: createReedSolomon }).layout.blockCount).toBe(9);
    expectFec(() => objectLayout(65_536 * 16 + 1, base), 'GS_ERR_FEC_INVALID_PARAMS', /needs 65537 blocks.*at most 65536/);
    expect(objectLayout(65_536 * 16, base).blockCount).toBe(65_536);
    expectFec(() => [...new ObjectEncoder(bytes(8, 1), base).symbols({ repair: 3 })], 'GS_ERR_FEC_INVALID_PARAMS', /repair must be an integer in 0…2/);
  });
});
