// ObjectDecoder.add(fecInfo, symbol, { copy: false }): the decoder keeps the caller's array instead of a copy.
import { describe, expect, it } from 'vitest';
import { ObjectDecoder, ObjectEncoder, type ObjectCodeOptions } from '../../src/fec/object.js';
import { createReedSolomon } from '../../src/fec/reed-solomon.js';

const OPTS: ObjectCodeOptions = { symbolSize: 10, sourceSymbols: 4, repairSymbols: 2, coder: createReedSolomon };

function bytes(n: number, seed: number): Uint8Array {
  let s = seed >>> 0 || 1;
  return Uint8Array.from({ length: n }, () => {
    s = (Math.imul(s, 1_664_525) + 1_013_904_223) >>> 0;
    return s >>> 24;
  });
}

/** Feed block 0's symbols (esi 1 lost) as fresh arrays, change one source symbol's array after `add`, and return the decoded block. */
function decodeChangingInput(copy: boolean | undefined): { block: Uint8Array; obj: Uint8Array } {
  const obj = bytes(40, 3);
  const dec = new ObjectDecoder(obj.length, OPTS);
  const enc = new ObjectEncoder(obj, OPTS);
  let changed: Uint8Array | undefined;
  for (const s of enc.symbols()) {
    if (s.esi === 1) continue;
    const mine = s.symbol.slice();
    dec.add(s.fecInfo, mine, copy === undefined ? undefined : { copy });
    if (s.esi === 0) changed = mine;
    changed?.fill(0xaa); // the caller breaks the rule (or not: with a copy, nothing happens)
  }
  expect(dec.complete).toBe(true);
  return { block: dec.block(0), obj };
}

describe('ObjectDecoder.add without a copy', () => {
  it('copies by default and with copy: true: later changes to the caller array do not reach the block', () => {
    for (const copy of [undefined, true]) {
      const { block, obj } = decodeChangingInput(copy);
      expect(Buffer.from(block).equals(Buffer.from(obj))).toBe(true);
    }
  });

  it('with copy: false keeps the caller array itself (a change before decoding shows in the block)', () => {
    const { block } = decodeChangingInput(false);
    expect(Array.from(block.subarray(0, 10))).toEqual(new Array<number>(10).fill(0xaa));
  });

  it('with copy: false decodes losses exactly when the caller leaves the arrays alone, also a short last block', () => {
    const obj = bytes(3 * 40 + 17, 11);
    const dec = new ObjectDecoder(obj.length, OPTS);
    const given: Uint8Array[] = [];
    for (const s of new ObjectEncoder(obj, OPTS).symbols()) {
      if (s.esi === 2 || (s.sbn === 1 && s.esi === 0)) continue;
      const mine = s.symbol.slice();
      given.push(mine);
      dec.add(s.fecInfo, mine, { copy: false });
    }
    expect(dec.complete).toBe(true);
    expect(Buffer.from(dec.object()).equals(Buffer.from(obj))).toBe(true);
    // Decoding read the given arrays and wrote none of them.
    const again = [...new ObjectEncoder(obj, OPTS).symbols()].filter((s) => !(s.esi === 2 || (s.sbn === 1 && s.esi === 0)));
    again.forEach((s, i) => expect(Buffer.from(given[i]!).equals(Buffer.from(s.symbol))).toBe(true));
  });
});
