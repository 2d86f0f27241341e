// Large objects never held whole: the decoder's onBlock release (one bit per
// finished block, late duplicates still ignored) and the encoder reading one
// block at a time from an ObjectBlockSource; on both codecs.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  encodeFecInfo,
  ObjectDecoder,
  ObjectEncoder,
  objectLayout,
  type EncodedSymbol,
  type ObjectBlockSource,
  type ObjectCodeOptions,
} from '../../src/fec/object.js';
import { createReedSolomon } from '../../src/fec/reed-solomon.js';
import { CODERS, expectFec } from './rs16-expect.js';


/** Byte `i` of a virtual object (seeded): an object that is never materialised by the source. */
function byteAt(i: number, seed: number): number {
  let x = Math.imul(i ^ seed, 0x9e3779b1) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x85ebca6b) >>> 0;
  return (x ^ (x >>> 13)) & 0xff;
}

function bytes(offset: number, n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => byteAt(offset + i, seed));
}

/** A block source over the virtual object that records each read. */
function source(length: number, seed: number): ObjectBlockSource & { reads: [number, number, number][] } {
  const reads: [number, number, number][] = [];
  return {
    length,
    reads,
    readBlock(sbn, offset, n) {
      reads.push([sbn, offset, n]);
      return bytes(offset, n, seed);
    },
  };
}

/** Symbols of each block with up to m lost, some duplicated, shuffled within the block (seeded). */
function lossyBlock(symbols: EncodedSymbol[], m: number, seed: number): EncodedSymbol[] {
  let s = seed >>> 0 || 1;
  const next = () => (s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0);
  const kept = [...symbols];
  for (let i = kept.length - 1; i > 0; i--) {
    const j = next() % (i + 1);
    [kept[i], kept[j]] = [kept[j]!, kept[i]!];
  }
  kept.splice(0, next() % (m + 1));
  return [...kept, ...kept.filter(() => next() % 4 === 0)];
}

/**
 * A multicast-like arrival order over blocks in turn, each block's symbols
 * interleaved with the next block's (so two blocks are in flight at a time).
 */
function arrivals(symbols: EncodedSymbol[], blockCount: number, m: number, seed: number): EncodedSymbol[] {
  const perBlock = Array.from({ length: blockCount }, (_, sbn) => lossyBlock(symbols.filter((x) => x.sbn === sbn), m, seed + sbn));
  const out: EncodedSymbol[] = [];
  for (let sbn = 0; sbn < blockCount; sbn++) {
    const rest = perBlock[sbn]!; // what the previous round left of this block
    const next = perBlock[sbn + 1];
    const early = next ? next.splice(0, next.length >> 1) : []; // the first half of the next block ...
    for (let i = 0; i < Math.max(rest.length, early.length); i++) {
      if (i < rest.length) out.push(rest[i]!); // ... alternating with the rest of this one
      if (i < early.length) out.push(early[i]!);
    }
  }
  return out;
}

describe('ObjectDecoder with onBlock', () => {
  it('hands over every block once, in any size, and holds no decoded block and at most two pending', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: CODERS.length - 1 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 2, max: 12 }),
        fc.nat(200),
        fc.integer(),
        (c, words, k, m, fullBlocks, tail, seed) => {
          const symbolSize = 2 * words;
          const length = fullBlocks * k * symbolSize + (tail % (k * symbolSize));
          const options: ObjectCodeOptions = { symbolSize, sourceSymbols: k, repairSymbols: m, coder: CODERS[c]![1] };
          const object = bytes(0, length, seed);
          const enc = new ObjectEncoder(object, options);
          const symbols = [...enc.symbols()];
          const got: Uint8Array[] = [];
          const calls: number[] = [];
          const dec = new ObjectDecoder(length, {
            ...options,
            onBlock: (sbn, block) => {
              calls.push(sbn);
              got[sbn] = block;
            },
          });
          const blockCount = dec.layout.blockCount;
          expect(blockCount).toBeGreaterThanOrEqual(2);
          for (const s of arrivals(symbols, blockCount, m, seed)) {
            dec.add(s.fecInfo, s.symbol);
            expect(dec.retainedBlocks).toBe(0);
            expect(dec.pendingBlocks).toBeLessThanOrEqual(2);
          }
          expect(dec.complete).toBe(true);
          expect(dec.pendingBlocks).toBe(0);
          expect([...calls].sort((a, b) => a - b)).toEqual(Array.from({ length: blockCount }, (_, i) => i));
          const joined = new Uint8Array(length);
          const blockBytes = k * symbolSize;
          got.forEach((b, sbn) => joined.set(b, sbn * blockBytes));
          expect(joined).toEqual(object);

          // Late duplicates of released blocks: ignored, no new pending block, no second call.
          for (const s of symbols) {
            const r = dec.add(s.fecInfo, s.symbol);
            expect(r).toEqual({ sbn: s.sbn, esi: s.esi, accepted: false, blockComplete: true, complete: true });
          }
          expect(dec.pendingBlocks).toBe(0);
          expect(calls.length).toBe(blockCount);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('without onBlock, keeps every decoded block (the counter sees them)', () => {
    const options = { symbolSize: 4, sourceSymbols: 3, repairSymbols: 2, coder: createReedSolomon };
    const object = bytes(0, 50, 7);
    const dec = new ObjectDecoder(50, options);
    let most = 0;
    for (const s of new ObjectEncoder(object, options).symbols()) {
      dec.add(s.fecInfo, s.symbol);
      most = Math.max(most, dec.retainedBlocks);
    }
    expect(dec.retainedBlocks).toBe(dec.layout.blockCount);
    expect(most).toBe(5);
    expect(dec.object()).toEqual(object);
  });

  it('gives the block bytes as a fresh array the callback may keep, the last one unpadded', () => {
    const options = { symbolSize: 4, sourceSymbols: 2, repairSymbols: 1, coder: createReedSolomon };
    const object = bytes(0, 11, 3); // blocks of 8 and 3 bytes
    const got = new Map<number, Uint8Array>();
    const dec = new ObjectDecoder(11, { ...options, onBlock: (sbn, b) => got.set(sbn, b) });
    const buf = new Uint8Array(4);
    for (const s of new ObjectEncoder(object, options).symbols()) {
      buf.set(s.symbol);
      dec.add(s.fecInfo, buf);
      buf.fill(0xee);
    }
    expect(got.get(0)).toEqual(object.subarray(0, 8));
    expect(got.get(1)).toEqual(object.subarray(8));
    expect(got.get(0)!.buffer).not.toBe(got.get(1)!.buffer);
  });

  it('refuses bad input with the same typed errors, and block()/object() once blocks are released', () => {
    for (const [, coder] of CODERS) {
      const options = { symbolSize: 4, sourceSymbols: 4, repairSymbols: 2, coder };
      const released: number[] = [];
      const dec = new ObjectDecoder(20, { ...options, onBlock: (sbn) => released.push(sbn) });
      const sym = new Uint8Array(4);
      expectFec(() => dec.add(encodeFecInfo(2, 0), sym), 'GS_ERR_FEC_BAD_INDEX', /outside the object: it has 2 blocks/);
      expectFec(() => dec.add(encodeFecInfo(0, 6), sym), 'GS_ERR_FEC_BAD_INDEX', /esi must be < k \+ m = 6/);
      expectFec(() => dec.add(encodeFecInfo(1, 1), sym), 'GS_ERR_FEC_BAD_INDEX', /implicit zeros/);
      expectFec(() => dec.add(encodeFecInfo(0, 0), new Uint8Array(5)), 'GS_ERR_FEC_SHARD_SIZE', /5 bytes, the object's symbols 4/);
      expect(() => dec.add(encodeFecInfo(0, 0), [1, 2, 3, 4] as never)).toThrow(TypeError);
      expectFec(() => dec.block(1), 'GS_ERR_FEC_TOO_FEW_SHARDS', /block 1 is not decoded yet/);
      expect(dec.pendingBlocks).toBe(0); // nothing refused was kept
      dec.add(encodeFecInfo(1, 0), sym); // block 1 has one real symbol: decoded and released
      expect(released).toEqual([1]);
      expect(dec.isBlockComplete(1)).toBe(true);
      expect(dec.needed(1)).toBe(0);
      expect(dec.missingBlocks()).toEqual([0]);
      expectFec(() => dec.block(1), 'GS_ERR_FEC_INVALID_PARAMS', /block 1: this decoder hands each block to onBlock/);
      expectFec(() => dec.object(), 'GS_ERR_FEC_INVALID_PARAMS', /the object: this decoder hands each block to onBlock/);
      expectFec(() => dec.block(2), 'GS_ERR_FEC_BAD_INDEX', /sbn 2 is outside the object/);
      expect(() => new ObjectDecoder(20, { ...options, onBlock: 'no' as never })).toThrow(TypeError);
      expectFec(() => new ObjectDecoder(20, { ...options, sourceSymbols: 0, onBlock: () => {} }), 'GS_ERR_FEC_INVALID_PARAMS', /sourceSymbols/);
    }
  });

  it('a throwing onBlock throws out of add(); the block still counts as complete', () => {
    const options = { symbolSize: 2, sourceSymbols: 1, repairSymbols: 1, coder: createReedSolomon };
    const dec = new ObjectDecoder(4, { ...options, onBlock: () => { throw new Error('disk full'); } });
    expect(() => dec.add(encodeFecInfo(0, 0), Uint8Array.of(1, 2))).toThrow('disk full');
    expect(dec.isBlockComplete(0)).toBe(true);
    expect(dec.pendingBlocks).toBe(0);
    expect(dec.add(encodeFecInfo(0, 1), Uint8Array.of(1, 2)).accepted).toBe(false);
  });
});

describe('ObjectEncoder from an ObjectBlockSource', () => {
  it('gives the in-memory encoder’s symbols, reading each block once, in order, one at a time', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: CODERS.length - 1 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 1, max: 4 }),
        fc.nat(2000),
        fc.integer(),
        (c, words, k, m, length, seed) => {
          const options: ObjectCodeOptions = { symbolSize: 2 * words, sourceSymbols: k, repairSymbols: m, coder: CODERS[c]![1] };
          const src = source(length, seed);
          const enc = new ObjectEncoder(src, options);
          expect(src.reads).toEqual([]); // nothing read up front
          const layout = objectLayout(length, options);
          const blockBytes = k * options.symbolSize;
          const streamed: EncodedSymbol[] = [];
          for (const s of enc.symbols()) {
            // When a symbol of block sbn is out, exactly blocks 0…sbn have been read.
            expect(src.reads.length).toBe(s.sbn + 1);
            streamed.push({ ...s, symbol: s.symbol.slice() });
          }
          expect(src.reads).toEqual(
            Array.from({ length: layout.blockCount }, (_, sbn) => [sbn, sbn * blockBytes, Math.min(blockBytes, length - sbn * blockBytes)]),
          );
          expect(streamed).toEqual([...new ObjectEncoder(bytes(0, length, seed), options).symbols()]);
          // Repair on demand reads just the one block it names.
          for (const s of streamed.filter((_, i) => i % 3 === 0)) {
            src.reads.length = 0;
            expect(enc.symbol(s.fecInfo)).toEqual(s.symbol);
            expect(src.reads.map((r) => r[0])).toEqual([s.sbn]);
          }
        },
      ),
      { numRuns: 80 },
    );
  });

  it('sends a 40-block object end to end with neither side holding more than a block or two', () => {
    for (const [name, coder] of CODERS) {
      const options = { symbolSize: 100, sourceSymbols: 8, repairSymbols: 3, coder };
      const length = 40 * 800 - 33;
      const src = source(length, 11);
      const enc = new ObjectEncoder(src, options);
      let written = 0;
      let mismatches = 0;
      const dec = new ObjectDecoder(length, {
        ...options,
        onBlock: (sbn, block) => {
          written += block.length;
          for (let i = 0; i < block.length; i++) if (block[i] !== byteAt(sbn * 800 + i, 11)) mismatches++;
        },
      });
      let most = 0;
      for (const s of arrivals([...enc.symbols()], 40, 3, 5)) {
        dec.add(s.fecInfo, s.symbol);
        most = Math.max(most, dec.pendingBlocks + dec.retainedBlocks);
      }
      expect(dec.complete, name).toBe(true);
      expect(written).toBe(length);
      expect(mismatches).toBe(0);
      expect(most).toBeLessThanOrEqual(2);
      expect(Math.max(...src.reads.map((r) => r[2]))).toBe(800);
    }
  });

  it('refuses a source that is not one, and blocks of the wrong size or type', () => {
    const options = { symbolSize: 4, sourceSymbols: 2, repairSymbols: 1, coder: createReedSolomon };
    expect(() => new ObjectEncoder({ length: 10 } as never, options)).toThrow(TypeError);
    expect(() => new ObjectEncoder(null as never, options)).toThrow(TypeError);
    expectFec(() => new ObjectEncoder({ length: -1, readBlock: () => new Uint8Array(0) }, options), 'GS_ERR_FEC_INVALID_PARAMS', /object length/);
    const short = new ObjectEncoder({ length: 10, readBlock: (_s, _o, n) => new Uint8Array(n - 1) }, options);
    expectFec(() => [...short.symbols()], 'GS_ERR_FEC_SHARD_SIZE', /readBlock\(0, 0, 8\) returned 7 bytes, block 0 has 8/);
    expectFec(() => short.symbol(encodeFecInfo(1, 2)), 'GS_ERR_FEC_SHARD_SIZE', /readBlock\(1, 8, 2\) returned 1 bytes/);
    const wrong = new ObjectEncoder({ length: 10, readBlock: () => [1, 2] as never }, options);
    expect(() => wrong.symbol(encodeFecInfo(0, 0))).toThrow(TypeError);
    expectFec(() => wrong.symbol(encodeFecInfo(2, 0)), 'GS_ERR_FEC_BAD_INDEX', /outside the object/);
  });
});
