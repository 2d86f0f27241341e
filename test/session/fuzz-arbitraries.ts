/**
 * fast-check arbitraries for fuzzing: frame streams aimed at a session (small
 * connection IDs, so frames hit live connections), and mutations of them.
 */
import fc from 'fast-check';
import { encodeFrame, type Frame } from '../../src/session/frame.js';

const smallId = fc.integer({ min: 1, max: 8 });
const body = (max: number) => fc.uint8Array({ maxLength: max });

/** Frames a responder session may meet; about half of them are valid in context. */
export const arbSessionFrame: fc.Arbitrary<Frame> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('OPEN' as const), connId: smallId, metadata: body(8) }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('DATA' as const), connId: smallId, payload: body(300) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('DATA' as const), connId: smallId, offset: fc.bigInt({ min: 0n, max: 400n }), payload: body(50) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('WINDOW_UPDATE' as const), connId: smallId, credit: fc.oneof(fc.integer({ min: 1, max: 70_000 }), fc.constant(0xffffffff)) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('CLOSE' as const), connId: smallId }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('RESET' as const), connId: smallId, code: fc.integer({ min: 0, max: 5 }), reason: fc.string({ maxLength: 10 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('PING' as const), opaque: fc.uint8Array({ minLength: 8, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('PONG' as const), opaque: fc.uint8Array({ minLength: 8, maxLength: 8 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('CONTROL' as const), body: body(20) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('GO_AWAY' as const), code: fc.integer({ min: 0, max: 3 }), reason: fc.string({ maxLength: 10 }) }) },
);

type Mutation = { op: 'flip'; at: number; value: number } | { op: 'cut'; at: number } | { op: 'insert'; at: number; bytes: Uint8Array };

const arbMutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('cut' as const), at: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 6 }) }),
);

/** Join byte arrays into one. */
export function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function mutate(bytes: Uint8Array, mutations: Mutation[]): Uint8Array {
  let b = bytes;
  for (const m of mutations) {
    if (b.length === 0) break;
    const at = m.at % b.length;
    if (m.op === 'flip') {
      b = b.slice();
      b[at] = m.value;
    } else if (m.op === 'cut') {
      b = b.slice(0, at);
    } else {
      b = concat([b.subarray(0, at), m.bytes, b.subarray(at)]);
    }
  }
  return b;
}

/** A stream of session frames with zero to three mutations. */
export const mutatedStream: fc.Arbitrary<Uint8Array> = fc
  .tuple(fc.array(arbSessionFrame, { minLength: 1, maxLength: 12 }), fc.array(arbMutation, { maxLength: 3 }))
  .map(([frames, mutations]) => mutate(concat(frames.map(encodeFrame)), mutations));

/** The frames themselves, unmutated, encoded. */
export const validStream: fc.Arbitrary<Uint8Array> = fc.array(arbSessionFrame, { minLength: 1, maxLength: 12 }).map((frames) => concat(frames.map(encodeFrame)));
