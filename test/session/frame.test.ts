/**
 * Frame codec (smoltcp-style): golden bytes → fields, fields → a buffer
 * pre-filled with 0xa5, round trips, every truncation, pinned numbers and
 * canonical rejections.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameError } from '../../src/errors/index.js';
import {
  DataFlag,
  DEFAULT_MAX_FRAME_BODY,
  emitFrame,
  encodeFrame,
  FRAME_VERSION,
  frameLen,
  FrameType,
  FrameView,
  GoAwayCode,
  HEADER_LEN,
  INITIAL_WINDOW,
  MAX_FRAME_BODY_LIMIT,
  MAX_OPEN_METADATA_LEN,
  MAX_REASON_LEN,
  parseFrame,
  parseHeader,
  ResetCode,
  type Frame,
} from '../../src/session/frame.js';
import { arbFrame } from './frame-arbitraries.js';

function hex(s: string): Uint8Array {
  return Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
}

function toHex(b: Uint8Array): string {
  return Buffer.from(b).toString('hex');
}

const ab = new Uint8Array([0xab, 0xcd]);

/** One golden vector per type (and the DATA offset flag): bytes and the fields they mean. */
const golden: { name: string; bytes: string; frame: Frame }[] = [
  {
    name: 'OPEN',
    bytes: '01 01 0000 00000001 00000002 abcd',
    frame: { kind: 'OPEN', connId: 1, metadata: ab },
  },
  {
    name: 'DATA',
    bytes: '01 02 0000 00000003 00000003 68 69 21',
    frame: { kind: 'DATA', connId: 3, payload: new Uint8Array([0x68, 0x69, 0x21]) },
  },
  {
    name: 'DATA with OFFSET',
    bytes: '01 02 0001 fffffffe 0000000a 0102030405060708 abcd',
    frame: { kind: 'DATA', connId: 0xfffffffe, offset: 0x0102030405060708n, payload: ab },
  },
  {
    name: 'WINDOW_UPDATE',
    bytes: '01 03 0000 00000002 00000004 00040000',
    frame: { kind: 'WINDOW_UPDATE', connId: 2, credit: 0x40000 },
  },
  {
    name: 'CLOSE',
    bytes: '01 04 0000 00000007 00000000',
    frame: { kind: 'CLOSE', connId: 7 },
  },
  {
    name: 'RESET',
    bytes: '01 05 0000 00000009 00000006 00000002 6f6b',
    frame: { kind: 'RESET', connId: 9, code: 2, reason: 'ok' },
  },
  {
    name: 'PING',
    bytes: '01 06 0000 00000000 00000008 0000000100000002',
    frame: { kind: 'PING', opaque: hex('0000000100000002') },
  },
  {
    name: 'PONG',
    bytes: '01 07 0000 00000000 00000008 ffffffffffffffff',
    frame: { kind: 'PONG', opaque: hex('ffffffffffffffff') },
  },
  {
    name: 'CONTROL',
    bytes: '01 08 0000 00000000 00000001 7b',
    frame: { kind: 'CONTROL', body: new Uint8Array([0x7b]) },
  },
  {
    name: 'GO_AWAY',
    bytes: '01 09 0000 00000000 00000007 00000001 c3a9 21',
    frame: { kind: 'GO_AWAY', code: 1, reason: 'é!' },
  },
];

function expectFrameError(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(FrameError);
    expect((error as FrameError).code).toBe(code);
    return;
  }
  throw new Error(`expected FrameError ${code}`);
}

describe('pinned wire numbers', () => {
  it('header is 12 bytes, version 1', () => {
    expect(HEADER_LEN).toBe(12);
    expect(FRAME_VERSION).toBe(1);
  });

  it('every type, flag and code keeps its number', () => {
    expect({ ...FrameType }).toEqual({
      OPEN: 1,
      DATA: 2,
      WINDOW_UPDATE: 3,
      CLOSE: 4,
      RESET: 5,
      PING: 6,
      PONG: 7,
      CONTROL: 8,
      GO_AWAY: 9,
    });
    expect({ ...DataFlag }).toEqual({ OFFSET: 0x0001 });
    expect({ ...ResetCode }).toEqual({ CANCEL: 0, PROTOCOL: 1, TOO_MANY_CONNECTIONS: 2, CLOSE_TIMEOUT: 3, REFUSED: 4 });
    expect({ ...GoAwayCode }).toEqual({ NORMAL: 0, PROTOCOL_ERROR: 1, INTERNAL_ERROR: 2 });
  });

  it('limits keep their values', () => {
    expect(DEFAULT_MAX_FRAME_BODY).toBe(256 * 1024);
    expect(MAX_FRAME_BODY_LIMIT).toBe(16 * 1024 * 1024);
    expect(MAX_OPEN_METADATA_LEN).toBe(4096);
    expect(MAX_REASON_LEN).toBe(256);
    expect(INITIAL_WINDOW).toBe(256 * 1024);
  });
});

describe('golden frames', () => {
  for (const g of golden) {
    it(`${g.name}: bytes → fields`, () => {
      const bytes = hex(g.bytes);
      expect(parseFrame(bytes)).toEqual(g.frame);
      const view = FrameView.checked(bytes);
      expect(view.version).toBe(1);
      expect(view.type).toBe(FrameType[g.frame.kind]);
      expect(view.bodyLength).toBe(bytes.length - HEADER_LEN);
    });

    it(`${g.name}: fields → buffer pre-filled with 0xa5`, () => {
      const bytes = hex(g.bytes);
      expect(frameLen(g.frame)).toBe(bytes.length);
      const out = new Uint8Array(bytes.length).fill(0xa5);
      expect(emitFrame(g.frame, out)).toBe(bytes.length);
      expect(toHex(out)).toBe(toHex(bytes));
      expect(toHex(encodeFrame(g.frame))).toBe(toHex(bytes));
    });

    it(`${g.name}: every truncation is rejected`, () => {
      const bytes = hex(g.bytes);
      for (let n = 0; n < bytes.length; n++) {
        expectFrameError(() => parseFrame(bytes.subarray(0, n)), 'GS_ERR_FRAME_MALFORMED');
      }
    });

    it(`${g.name}: a trailing byte is rejected`, () => {
      const bytes = hex(g.bytes);
      const longer = new Uint8Array(bytes.length + 1);
      longer.set(bytes);
      expectFrameError(() => parseFrame(longer), 'GS_ERR_FRAME_MALFORMED');
    });
  }

  it('view accessors write every header field', () => {
    const buf = new Uint8Array(HEADER_LEN).fill(0xa5);
    const view = FrameView.unchecked(buf);
    view.version = 1;
    view.type = FrameType.CLOSE;
    view.flags = 0;
    view.connId = 0x01020304;
    view.bodyLength = 0;
    expect(toHex(buf)).toBe('010400000102030400000000');
    expect(view.connId).toBe(0x01020304);
    expect(view.body.length).toBe(0);
  });
});

describe('canonical decoding', () => {
  const cases: [string, string, string][] = [
    ['version 0', '00 04 0000 00000001 00000000', 'GS_ERR_FRAME_VERSION'],
    ['version 2', '02 04 0000 00000001 00000000', 'GS_ERR_FRAME_VERSION'],
    ['type 0', '01 00 0000 00000001 00000000', 'GS_ERR_FRAME_UNKNOWN_TYPE'],
    ['type 10', '01 0a 0000 00000001 00000000', 'GS_ERR_FRAME_UNKNOWN_TYPE'],
    ['type 255', '01 ff 0000 00000000 00000000', 'GS_ERR_FRAME_UNKNOWN_TYPE'],
    ['DATA unknown flag', '01 02 0002 00000001 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['CLOSE with the OFFSET flag', '01 04 0001 00000001 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['PING with a flag', '01 06 8000 00000000 00000008 0000000000000000', 'GS_ERR_FRAME_MALFORMED'],
    ['DATA on conn 0', '01 02 0000 00000000 00000001 00', 'GS_ERR_FRAME_MALFORMED'],
    ['OPEN on conn 0', '01 01 0000 00000000 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['RESET on conn 0', '01 05 0000 00000000 00000004 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['PING on conn 1', '01 06 0000 00000001 00000008 0000000000000000', 'GS_ERR_FRAME_MALFORMED'],
    ['CONTROL on conn 1', '01 08 0000 00000001 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['GO_AWAY on conn 1', '01 09 0000 00000001 00000004 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['WINDOW_UPDATE of 3 bytes', '01 03 0000 00000001 00000003 000001', 'GS_ERR_FRAME_MALFORMED'],
    ['WINDOW_UPDATE of 5 bytes', '01 03 0000 00000001 00000005 0000000100', 'GS_ERR_FRAME_MALFORMED'],
    ['WINDOW_UPDATE of 0 credit', '01 03 0000 00000001 00000004 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['CLOSE with a body', '01 04 0000 00000001 00000001 00', 'GS_ERR_FRAME_MALFORMED'],
    ['PING of 7 bytes', '01 06 0000 00000000 00000007 00000000000000', 'GS_ERR_FRAME_MALFORMED'],
    ['PONG of 9 bytes', '01 07 0000 00000000 00000009 000000000000000000', 'GS_ERR_FRAME_MALFORMED'],
    ['RESET without code', '01 05 0000 00000001 00000003 000000', 'GS_ERR_FRAME_MALFORMED'],
    ['GO_AWAY without code', '01 09 0000 00000000 00000000', 'GS_ERR_FRAME_MALFORMED'],
    ['RESET reason not UTF-8', '01 05 0000 00000001 00000005 00000000 ff', 'GS_ERR_FRAME_MALFORMED'],
    ['GO_AWAY reason cut mid-character', '01 09 0000 00000000 00000005 00000000 c3', 'GS_ERR_FRAME_MALFORMED'],
    ['DATA with OFFSET but 7-byte body', '01 02 0001 00000001 00000007 00000000000000', 'GS_ERR_FRAME_MALFORMED'],
  ];
  for (const [name, bytes, code] of cases) {
    it(`rejects ${name}`, () => expectFrameError(() => parseFrame(hex(bytes)), code));
  }

  it('rejects a body over the cap from the header alone', () => {
    const header = hex('01 02 0000 00000001 00040001'); // 256 KiB + 1, no body bytes present
    expectFrameError(() => parseHeader(header), 'GS_ERR_FRAME_TOO_LARGE');
    expectFrameError(() => parseHeader(hex('01 08 0000 00000000 00001001'), 0, 4096), 'GS_ERR_FRAME_TOO_LARGE');
    expect(parseHeader(hex('01 08 0000 00000000 00001000'), 0, 4096).bodyLength).toBe(4096);
  });

  it('rejects OPEN metadata over 4 KiB and reasons over 256 bytes from the header', () => {
    expectFrameError(() => parseHeader(hex('01 01 0000 00000001 00001001')), 'GS_ERR_FRAME_TOO_LARGE');
    expectFrameError(() => parseHeader(hex('01 05 0000 00000001 00000105')), 'GS_ERR_FRAME_TOO_LARGE');
    expect(parseHeader(hex('01 05 0000 00000001 00000104')).bodyLength).toBe(260);
  });

  it('keeps a leading byte-order mark in a reason', () => {
    const frame: Frame = { kind: 'GO_AWAY', code: 0, reason: '\ufeffbom' };
    const bytes = encodeFrame(frame);
    expect(parseFrame(bytes)).toEqual(frame);
  });

  it('emit refuses invalid reprs with RangeError', () => {
    expect(() => encodeFrame({ kind: 'DATA', connId: 0, payload: ab })).toThrow(RangeError);
    expect(() => encodeFrame({ kind: 'WINDOW_UPDATE', connId: 1, credit: 0 })).toThrow(RangeError);
    expect(() => encodeFrame({ kind: 'WINDOW_UPDATE', connId: 1, credit: 2 ** 32 })).toThrow(RangeError);
    expect(() => encodeFrame({ kind: 'PING', opaque: new Uint8Array(7) })).toThrow(RangeError);
    expect(() => encodeFrame({ kind: 'RESET', connId: 1, code: 0, reason: 'x'.repeat(257) })).toThrow(RangeError);
    expect(() => encodeFrame({ kind: 'OPEN', connId: 1, metadata: new Uint8Array(4097) })).toThrow(RangeError);
    expect(() => encodeFrame({ kind: 'DATA', connId: 1, offset: -1n, payload: ab })).toThrow(RangeError);
    expect(() => emitFrame({ kind: 'CLOSE', connId: 1 }, new Uint8Array(11))).toThrow(RangeError);
  });
});

// ---------------------------------------------------------------------------
// Properties

describe('round trips', () => {
  it('parse(encode(f)) equals f, and frameLen matches', () => {
    fc.assert(
      fc.property(arbFrame, (frame) => {
        const b = encodeFrame(frame);
        expect(b.length).toBe(frameLen(frame));
        expect(parseFrame(b)).toEqual(frame);
      }),
      { numRuns: 2000 },
    );
  });

  it('emit(parse(b)) === b for every byte string that parses', () => {
    // Mostly valid frames with a few bytes flipped, so many still parse.
    const mutated = fc.tuple(arbFrame, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 3 })).map(([frame, edits]) => {
      const b = encodeFrame(frame);
      for (const [at, v] of edits) b[at % b.length] = v;
      return b;
    });
    let parsed = 0;
    fc.assert(
      fc.property(mutated, (b) => {
        let frame: Frame;
        try {
          frame = parseFrame(b);
        } catch (error) {
          expect(error).toBeInstanceOf(FrameError);
          return;
        }
        parsed++;
        const out = new Uint8Array(b.length).fill(0xa5);
        emitFrame(frame, out);
        expect(toHex(out)).toBe(toHex(b));
      }),
      { numRuns: 3000 },
    );
    expect(parsed).toBeGreaterThan(100);
  });
});
