/** fast-check arbitraries of session frames, shared by the codec, decoder and fuzz tests. */
import fc from 'fast-check';
import { MAX_REASON_LEN, type Frame } from '../../src/session/frame.js';

const u32 = fc.integer({ min: 0, max: 0xffffffff });
const connId = fc.integer({ min: 1, max: 0xffffffff });
const bytes = (max: number) => fc.uint8Array({ maxLength: max });
const reason = fc.string({ unit: 'grapheme', maxLength: 40 }).filter((s) => Buffer.byteLength(s) <= MAX_REASON_LEN);

/** Any valid frame (small bodies). */
export const arbFrame: fc.Arbitrary<Frame> = fc.oneof(
  fc.record({ kind: fc.constant('OPEN' as const), connId, metadata: bytes(64) }),
  fc.record({ kind: fc.constant('DATA' as const), connId, payload: bytes(200) }),
  fc.record({ kind: fc.constant('DATA' as const), connId, offset: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), payload: bytes(200) }),
  fc.record({ kind: fc.constant('WINDOW_UPDATE' as const), connId, credit: fc.integer({ min: 1, max: 0xffffffff }) }),
  fc.record({ kind: fc.constant('CLOSE' as const), connId }),
  fc.record({ kind: fc.constant('RESET' as const), connId, code: u32, reason }),
  fc.record({ kind: fc.constant('PING' as const), opaque: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('PONG' as const), opaque: fc.uint8Array({ minLength: 8, maxLength: 8 }) }),
  fc.record({ kind: fc.constant('CONTROL' as const), body: bytes(200) }),
  fc.record({ kind: fc.constant('GO_AWAY' as const), code: u32, reason }),
);

