import { describe, expect, it } from 'vitest';
import { createReedSolomon, createReedSolomon16 } from '../../src/fec/index.js';
import { prepareUpdate, type UpdateCode } from '../../src/delivery/index.js';
import { FAR_FUTURE, fileBytes, publisher } from './fixtures/wire.js';

// A sender's pass names its repair symbols up front (planRepair), so each block's are made in one
// block product. The packets must be the very ones made one at a time, in any order asked.
describe('PreparedUpdate.planRepair', () => {
  for (const code of ['rs8', 'rs16'] as UpdateCode[]) {
    it(`${code}: planned repair packets equal the unplanned ones, interleaved over more blocks than the cache holds`, () => {
      const file = fileBytes(30 * 6 * 64 - 20, 5);
      const options = { name: 'p.bin', key: publisher, fileId: 1, version: 1, expires: FAR_FUTURE, symbolSize: 64, sourceSymbols: 6, repairSymbols: 5, code };
      const planned = prepareUpdate(file, options);
      const plain = prepareUpdate(file, options);
      expect(planned.layout.blockCount).toBe(30);
      const k = 6;
      // Round-robin over the blocks, a different count each (as a repair round), plus source symbols and a repeat.
      const items: { sbn: number; esi: number }[] = [];
      for (let j = 0; j < 5; j++) for (let sbn = 0; sbn < 30; sbn++) if (j < 1 + (sbn % 5)) items.push({ sbn, esi: k + ((j + sbn) % 5) });
      items.push({ sbn: 3, esi: 0 }, { sbn: 3, esi: k + 3 }, { sbn: 29, esi: k });
      planned.planRepair(items);
      for (const { sbn, esi } of items) expect(planned.symbolPacket(sbn, esi)).toEqual(plain.symbolPacket(sbn, esi));
      // A symbol not in the plan, and a new plan replacing the old one half used.
      planned.planRepair(items.slice(0, 40));
      for (const { sbn, esi } of items.slice(0, 10)) expect(planned.symbolPacket(sbn, esi)).toEqual(plain.symbolPacket(sbn, esi));
      planned.planRepair(items.slice(60));
      for (const { sbn, esi } of [...items].reverse()) expect(planned.symbolPacket(sbn, esi)).toEqual(plain.symbolPacket(sbn, esi));
    });
  }
});

describe('encodeIndices', () => {
  it('equals encodeIndex for each index asked, in the order asked (rs8 and rs16)', () => {
    for (const coder of [createReedSolomon(7, 9), createReedSolomon16(7, 9)]) {
      const data = Array.from({ length: 7 }, (_, j) => fileBytes(96, 20 + j));
      const asked = [8, 0, 3, 5];
      const made = coder.encodeIndices(data, asked);
      expect(made).toEqual(asked.map((i) => coder.encodeIndex(data, i)));
      expect(coder.encodeIndices(data, [])).toEqual([]);
      expect(() => coder.encodeIndices(data, [9])).toThrow(expect.objectContaining({ code: 'GS_ERR_FEC_BAD_INDEX' }));
    }
  });
});
