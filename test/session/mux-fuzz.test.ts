/**
 * Fuzzing a MuxSession: random and mutated bytes from the "peer", cut into
 * random chunks. Nothing may throw out of the transport's event handler; the
 * session either stays up or ends with a typed FrameError/SessionError (after
 * GO_AWAY when the bytes were malformed); every session ends by the dead-peer
 * deadline (no hang); unread bytes stay within each window; and a session
 * pair alive alongside is untouched. Unhandled rejections fail the run.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { FrameError, GatesockError, SessionError } from '../../src/errors/index.js';
import { FrameDecoder } from '../../src/session/frame-decoder.js';
import { GoAwayCode, type Frame } from '../../src/session/frame.js';
import { MuxSession, type MuxConnection } from '../../src/session/mux/index.js';
import { mutatedStream, validStream } from './fuzz-arbitraries.js';
import { FakeTransport, ManualClock, nextConnection, pattern, readAll, sameBytes, sessionPair, writeAll, type SessionPair } from './mux-helpers.js';

const KEEPALIVE_MS = 1000;

const input = fc.tuple(
  fc.oneof({ weight: 3, arbitrary: mutatedStream }, { weight: 1, arbitrary: validStream }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 80 }) }),
  fc.integer({ min: 1, max: 400 }),
);

interface Victim {
  session: MuxSession;
  transport: FakeTransport;
  clock: ManualClock;
  conns: MuxConnection[];
}

function victim(): Victim {
  const clock = new ManualClock();
  const transport = new FakeTransport();
  const session = new MuxSession(transport, { role: 'responder', clock, keepaliveMs: KEEPALIVE_MS, closeTimeoutMs: 300 });
  const conns: MuxConnection[] = [];
  session.on('connection', (conn) => {
    conns.push(conn);
    // Exercise the read and write paths; pause every other connection.
    if (conn.id % 4 === 1) conn.resume();
    conn.on('data', (d) => {
      if (d.length > 100) conn.write(d.subarray(0, 100));
    });
    conn.on('end', () => conn.end());
  });
  session.on('control', () => {});
  return { session, transport, clock, conns };
}

function chunks(bytes: Uint8Array, step: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let i = 0; i < bytes.length; i += step) out.push(bytes.subarray(i, i + step));
  return out;
}

function lastFrames(transport: FakeTransport): Frame[] {
  const decoder = new FrameDecoder({ maxBody: 16 * 1024 * 1024 });
  const frames: Frame[] = [];
  for (const w of transport.written) decoder.push(w, (f) => frames.push(f));
  return frames;
}

/** Plain assertion: `expect` costs more than the session does at 30 000 runs. */
function check(ok: boolean, what: string): asserts ok {
  if (!ok) throw new Error(`fuzz invariant broken: ${what}`);
}

/** The invariants that hold right after any input. */
function checkAfterInput(v: Victim): void {
  for (const conn of v.conns) {
    const { bufferedBytes, receiveWindow } = conn.stats;
    check(bufferedBytes <= receiveWindow, `connection ${conn.id} holds ${bufferedBytes} bytes over its ${receiveWindow}-byte window`);
  }
  if (!v.session.closed) return;
  const error = v.session.error;
  check(error instanceof FrameError || error instanceof SessionError, `session closed with ${String(error)}`);
  // Our listeners never throw, so a SessionError caused by something that is not a gatesock error is a bug in the session.
  const cause = (error as Error).cause;
  if (error instanceof SessionError && cause !== undefined && !(cause instanceof GatesockError)) throw cause;
  if (error instanceof FrameError) {
    // A malformed frame: GO_AWAY PROTOCOL_ERROR went out first.
    const goAway = lastFrames(v.transport).at(-1);
    expect(goAway).toMatchObject({ kind: 'GO_AWAY', code: GoAwayCode.PROTOCOL_ERROR });
  }
}

let bystander: SessionPair;

beforeAll(() => {
  bystander = sessionPair();
});

afterAll(() => {
  bystander.a.destroy();
  bystander.b.destroy();
});

describe('MuxSession fuzz', () => {
  it('survives random and mutated input, synchronously (30 000 cases)', () => {
    let closedByFrameError = 0;
    let stayedUp = 0;
    fc.assert(
      fc.property(input, ([bytes, step]) => {
        const v = victim();
        for (const chunk of chunks(bytes, step)) v.transport.feed(chunk); // throws if the handler threw
        checkAfterInput(v);
        if (v.session.error instanceof FrameError) closedByFrameError++;
        if (!v.session.closed) stayedUp++;
        // No hang: with the peer silent from now on, the session is dead by 2 × keepaliveMs.
        v.clock.advance(2 * KEEPALIVE_MS);
        check(v.session.closed && v.session.error instanceof GatesockError, 'session still up after 2 × keepaliveMs of silence');
        check(v.clock.pending <= 1, `${v.clock.pending} timers left after the session ended`);
      }),
      { numRuns: 30_000 },
    );
    // The input mix reaches both outcomes.
    expect(closedByFrameError).toBeGreaterThan(3000);
    expect(stayedUp).toBeGreaterThan(3000);
  });

  it('survives mutated input with the event loop turning between chunks (3 000 cases)', async () => {
    await fc.assert(
      fc.asyncProperty(input, async ([bytes, step]) => {
        const v = victim();
        const closed = new Promise<GatesockError | undefined>((resolve) => v.session.once('close', resolve));
        for (const chunk of chunks(bytes, step)) {
          v.transport.feed(chunk);
          await Promise.resolve();
        }
        await new Promise((r) => setImmediate(r));
        checkAfterInput(v);
        v.clock.advance(2 * KEEPALIVE_MS);
        const error = await closed;
        expect(error instanceof FrameError || error instanceof SessionError).toBe(true);
        // Every connection has been told.
        await new Promise((r) => setImmediate(r));
        for (const conn of v.conns) expect(conn.state === 'reset' || conn.state === 'closed').toBe(true);
      }),
      { numRuns: 3_000 },
    );
  });

  it('left the bystander session untouched', async () => {
    expect(bystander.a.closed || bystander.b.closed).toBe(false);
    const incoming = nextConnection(bystander.b);
    const conn = bystander.a.open();
    const peer = await incoming;
    const data = pattern(1 << 20, 11);
    const [got] = await Promise.all([readAll(peer), writeAll(conn, data)]);
    expect(sameBytes(got, data)).toBe(true);
    expect(await bystander.a.ping()).toBeGreaterThanOrEqual(0);
  });
});
