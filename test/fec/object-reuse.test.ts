// ObjectDecoder's reuseBlockBytes: every block reaches onBlock in one reused array, valid during the call.
import { describe, expect, it } from 'vitest';
import { ObjectDecoder, ObjectEncoder, type ObjectCodeOptions } from '../../src/fec/object.js';
import { createReedSolomon } from '../../src/fec/reed-solomon.js';

const OPTS: ObjectCodeOptions = { symbolSize: 10, sourceSymbols: 4, repairSymbols: 3, coder: createReedSolomon };

function bytes(n: number, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  return Uint8Array.from({ length: n }, () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s >>> 24;
  });
}

/** Decode `obj` with some symbols lost (repair used) and one block given whole; collect what onBlock saw. */
function run(obj: Uint8Array, reuse: boolean | undefined): { out: Uint8Array; arrays: Uint8Array[] } {
  const out = new Uint8Array(obj.length);
  const arrays: Uint8Array[] = [];
  const block = OPTS.sourceSymbols * OPTS.symbolSize;
  const dec = new ObjectDecoder(obj.length, {
    ...OPTS,
    ...(reuse === undefined ? {} : { reuseBlockBytes: reuse }),
    onBlock: (sbn, b) => {
      arrays.push(b);
      out.set(b, sbn * block);
    },
  });
  dec.setBlock(1, obj.subarray(block, 2 * block));
  const enc = new ObjectEncoder(obj, OPTS);
  for (const s of enc.symbols()) if ((s.esi + s.sbn) % 3 !== 0) dec.add(s.fecInfo, s.symbol);
  expect(dec.complete).toBe(true);
  return { out, arrays };
}

describe('ObjectDecoder reuseBlockBytes', () => {
  const obj = bytes(5 * 40 + 17, 9); // 6 blocks of 40 bytes, the last one 17

  it('gives the same bytes as fresh arrays, in one reused buffer', () => {
    const fresh = run(obj, undefined);
    const reused = run(obj, true);
    expect(Buffer.from(fresh.out).equals(Buffer.from(obj))).toBe(true);
    expect(Buffer.from(reused.out).equals(Buffer.from(obj))).toBe(true);
    expect(reused.arrays.length).toBe(6);
    expect(new Set(reused.arrays.map((a) => a.buffer)).size).toBe(1);
    expect(new Set(fresh.arrays.map((a) => a.buffer)).size).toBe(6);
    expect(reused.arrays.map((a) => a.length).sort((a, b) => a - b)).toEqual([17, 40, 40, 40, 40, 40]);
    expect(new Set(run(obj, false).arrays.map((a) => a.buffer)).size).toBe(6);
  });

  it('gives a block finished from inside onBlock its own array', () => {
    const block = OPTS.sourceSymbols * OPTS.symbolSize;
    const seen: [number, Uint8Array][] = [];
    const dec: ObjectDecoder = new ObjectDecoder(obj.length, {
      ...OPTS,
      reuseBlockBytes: true,
      onBlock: (sbn, b) => {
        seen.push([sbn, b.slice()]);
        if (sbn === 0) dec.setBlock(2, obj.subarray(2 * block, 3 * block));
        expect(Buffer.from(b).equals(Buffer.from(obj.subarray(sbn * block, sbn * block + b.length)))).toBe(true);
      },
    });
    dec.setBlock(0, obj.subarray(0, block));
    expect(seen.map(([s]) => s)).toEqual([0, 2]);
  });

  it('refuses a non-boolean', () => {
    expect(() => new ObjectDecoder(40, { ...OPTS, reuseBlockBytes: 'yes' as unknown as boolean, onBlock: () => {} })).toThrow(TypeError);
  });
});
