// ObjectDecoder.setBlock: a whole block the caller decoded and verified, taken instead of its symbols.
import { describe, expect, it, vi } from 'vitest';
import { ObjectDecoder, ObjectEncoder, type ObjectCodeOptions } from '../../src/fec/object.js';
import { createReedSolomon } from '../../src/fec/reed-solomon.js';
import { expectFec } from './rs16-expect.js';

const OPTS: ObjectCodeOptions = { symbolSize: 10, sourceSymbols: 4, repairSymbols: 2, coder: createReedSolomon };
const BLOCK = 40;

function bytes(n: number, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  return Uint8Array.from({ length: n }, () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s >>> 24;
  });
}

describe('ObjectDecoder.setBlock', () => {
  it('round trip: some blocks set whole, the rest from symbols (with a short last block)', () => {
    const obj = bytes(3 * BLOCK + 13, 7); // 4 blocks, the last 13 bytes
    const dec = new ObjectDecoder(obj.length, OPTS);
    expect(dec.setBlock(1, obj.subarray(BLOCK, 2 * BLOCK))).toBe(true);
    expect(dec.setBlock(3, obj.subarray(3 * BLOCK))).toBe(true);
    expect(dec.completeBlocks).toBe(2);
    expect(dec.missingBlocks()).toEqual([0, 2]);
    // Block 0 got a symbol before: setBlock drops it; later symbols of set blocks are ignored.
    const enc = new ObjectEncoder(obj, OPTS);
    for (const s of enc.symbols()) {
      if (s.sbn === 1 || s.sbn === 3) expect(dec.add(s.fecInfo, s.symbol).accepted).toBe(false);
      else if (s.esi !== 1) dec.add(s.fecInfo, s.symbol); // block 0 and 2 lose esi 1: decoded from repair
    }
    expect(dec.complete).toBe(true);
    expect(dec.pendingBlocks).toBe(0);
    expect(Buffer.from(dec.object()).equals(Buffer.from(obj))).toBe(true);
    expect(Buffer.from(dec.block(3)).equals(Buffer.from(obj.subarray(3 * BLOCK)))).toBe(true);
  });

  it('copies its input, drops held symbols of the block, and ignores a block already complete', () => {
    const obj = bytes(2 * BLOCK, 9);
    const dec = new ObjectDecoder(obj.length, OPTS);
    const enc = new ObjectEncoder(obj, OPTS);
    const first = [...enc.symbols()].filter((s) => s.sbn === 0);
    dec.add(first[0]!.fecInfo, first[0]!.symbol);
    expect(dec.pendingBlocks).toBe(1);
    const data = obj.slice(0, BLOCK);
    expect(dec.setBlock(0, data)).toBe(true);
    data.fill(0);
    expect(dec.pendingBlocks).toBe(0);
    expect(dec.needed(0)).toBe(0);
    expect(Buffer.from(dec.block(0)).equals(Buffer.from(obj.subarray(0, BLOCK)))).toBe(true);
    // Already complete (set, or decoded from symbols): ignored, the bytes kept are unchanged.
    expect(dec.setBlock(0, new Uint8Array(BLOCK))).toBe(false);
    expect(Buffer.from(dec.block(0)).equals(Buffer.from(obj.subarray(0, BLOCK)))).toBe(true);
    for (const s of enc.symbols()) if (s.sbn === 1) dec.add(s.fecInfo, s.symbol);
    expect(dec.setBlock(1, new Uint8Array(BLOCK))).toBe(false);
    expect(Buffer.from(dec.object()).equals(Buffer.from(obj))).toBe(true);
  });

  it('refuses a wrong length (SHARD_SIZE), a block outside the object (BAD_INDEX), a non-array', () => {
    const obj = bytes(BLOCK + 13, 11);
    const dec = new ObjectDecoder(obj.length, OPTS);
    expectFec(() => dec.setBlock(0, new Uint8Array(BLOCK - 1)), 'GS_ERR_FEC_SHARD_SIZE', /setBlock was given/);
    expectFec(() => dec.setBlock(1, new Uint8Array(BLOCK)), 'GS_ERR_FEC_SHARD_SIZE', /setBlock was given/); // the last block is 13 bytes, unpadded
    expectFec(() => dec.setBlock(2, new Uint8Array(BLOCK)), 'GS_ERR_FEC_BAD_INDEX', /outside the object/);
    expectFec(() => dec.setBlock(-1, new Uint8Array(BLOCK)), 'GS_ERR_FEC_BAD_INDEX', /outside the object/);
    expectFec(() => dec.setBlock(0.5, new Uint8Array(BLOCK)), 'GS_ERR_FEC_BAD_INDEX', /outside the object/);
    expect(() => dec.setBlock(0, [1, 2] as unknown as Uint8Array)).toThrow(TypeError);
    expect(dec.completeBlocks).toBe(0);
    expect(dec.setBlock(1, obj.subarray(BLOCK))).toBe(true);
    expect(dec.completeBlocks).toBe(1);
  });

  it('with onBlock: hands the block over once, as a new array, and keeps nothing', () => {
    const obj = bytes(2 * BLOCK + 5, 13);
    const got: [number, Uint8Array][] = [];
    const onBlock = vi.fn((sbn: number, b: Uint8Array) => void got.push([sbn, b]));
    const dec = new ObjectDecoder(obj.length, { ...OPTS, onBlock });
    const data = obj.slice(2 * BLOCK);
    expect(dec.setBlock(2, data)).toBe(true);
    expect(dec.setBlock(2, data)).toBe(false);
    expect(onBlock).toHaveBeenCalledTimes(1);
    expect(got[0]![0]).toBe(2);
    expect(got[0]![1]).not.toBe(data);
    expect(Buffer.from(got[0]![1]).equals(Buffer.from(data))).toBe(true);
    expect(dec.retainedBlocks).toBe(0);
    expectFec(() => dec.block(2), 'GS_ERR_FEC_INVALID_PARAMS', /keeps none/);
    // A throwing onBlock: setBlock throws it, and the block still counts as complete.
    const bad = new ObjectDecoder(obj.length, {
      ...OPTS,
      onBlock: () => {
        throw new Error('disk full');
      },
    });
    expect(() => bad.setBlock(0, obj.subarray(0, BLOCK))).toThrow('disk full');
    expect(bad.isBlockComplete(0)).toBe(true);
    expect(bad.setBlock(0, obj.subarray(0, BLOCK))).toBe(false);
  });
});
