// The 32-bit FEC-info field: sbn:16 | esi:16, pinned bit layout, round trip, range checks.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FecError } from '../../src/errors/index.js';
import { decodeFecInfo, encodeFecInfo, FEC_INFO_MAX_BLOCKS, FEC_INFO_MAX_SYMBOLS } from '../../src/fec/object.js';

describe('FEC-info field', () => {
  it('pins the layout: sbn in bits 31…16, esi in bits 15…0, unsigned', () => {
    expect(encodeFecInfo(0, 0)).toBe(0);
    expect(encodeFecInfo(1, 0)).toBe(0x0001_0000);
    expect(encodeFecInfo(0, 1)).toBe(0x0000_0001);
    expect(encodeFecInfo(0x1234, 0xabcd)).toBe(0x1234_abcd);
    expect(encodeFecInfo(0xffff, 0xffff)).toBe(0xffff_ffff); // unsigned, not -1
    const view = new DataView(new ArrayBuffer(4));
    view.setUint32(0, encodeFecInfo(0x0102, 0x0304)); // big-endian on the wire
    expect([...new Uint8Array(view.buffer)]).toEqual([1, 2, 3, 4]);
    expect(FEC_INFO_MAX_BLOCKS).toBe(65_536);
    expect(FEC_INFO_MAX_SYMBOLS).toBe(65_536);
  });

  it('round-trips every (sbn, esi) and every 32-bit value', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(u16, u16, (sbn, esi) => {
        expect(decodeFecInfo(encodeFecInfo(sbn, esi))).toEqual({ sbn, esi });
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 0xffffffff }), (v) => {
        const { sbn, esi } = decodeFecInfo(v);
        expect(encodeFecInfo(sbn, esi)).toBe(v);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses values outside the field', () => {
    for (const [sbn, esi] of [[-1, 0], [0, -1], [65_536, 0], [0, 65_536], [1.5, 0], [0, Number.NaN]] as const) {
      expect(() => encodeFecInfo(sbn, esi)).toThrow(FecError);
      expect(() => encodeFecInfo(sbn, esi)).toThrow(/(sbn|esi) must be an integer in 0…65535/);
    }
    for (const v of [-1, 2 ** 32, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      let code: unknown;
      try {
        decodeFecInfo(v);
      } catch (e) {
        code = (e as FecError).code;
      }
      expect(code).toBe('GS_ERR_FEC_BAD_INDEX');
    }
  });
});
