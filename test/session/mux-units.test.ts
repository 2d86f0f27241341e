/**
 * The sans-I/O parts of the mux, alone: the connection state table, receive
 * window autotuning, the RTT estimator, the send scheduler, options, and the
 * keepalive and close timers under a manual clock.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, SessionError } from '../../src/errors/index.js';
import { FrameDecoder } from '../../src/session/frame-decoder.js';
import { encodeFrame, HEADER_LEN, INITIAL_WINDOW, parseHeader, ResetCode, type Frame } from '../../src/session/frame.js';
import { ReceiveWindow, RttEstimator } from '../../src/session/mux/flow.js';
import { DEFAULT_MUX_OPTIONS, MuxSession, verifyMuxOptions } from '../../src/session/mux/index.js';
import { SendScheduler, type SendSource } from '../../src/session/mux/scheduler.js';
import { ConnState, transition, type ConnEvent } from '../../src/session/mux/state.js';
import { FakeTransport, ManualClock } from './mux-helpers.js';

describe('connection state table', () => {
  const all = Object.values(ConnState);
  const events: ConnEvent[] = ['sendOpen', 'recvOpen', 'sendFrame', 'recvFrame', 'sendFin', 'recvFin', 'reset'];

  it('follows the yamux half-close set', () => {
    const table: Record<string, string> = {};
    for (const s of all) for (const e of events) table[`${s}:${e}`] = transition(s, e) ?? '-';
    expect(table).toMatchInlineSnapshot(`
      {
        "closed:recvFin": "-",
        "closed:recvFrame": "-",
        "closed:recvOpen": "-",
        "closed:reset": "-",
        "closed:sendFin": "-",
        "closed:sendFrame": "-",
        "closed:sendOpen": "-",
        "established:recvFin": "remoteClosed",
        "established:recvFrame": "established",
        "established:recvOpen": "-",
        "established:reset": "reset",
        "established:sendFin": "localClosed",
        "established:sendFrame": "established",
        "established:sendOpen": "-",
        "init:recvFin": "-",
        "init:recvFrame": "-",
        "init:recvOpen": "synReceived",
        "init:reset": "reset",
        "init:sendFin": "-",
        "init:sendFrame": "-",
        "init:sendOpen": "synSent",
        "localClosed:recvFin": "closed",
        "localClosed:recvFrame": "localClosed",
        "localClosed:recvOpen": "-",
        "localClosed:reset": "reset",
        "localClosed:sendFin": "-",
        "localClosed:sendFrame": "localClosed",
        "localClosed:sendOpen": "-",
        "remoteClosed:recvFin": "-",
        "remoteClosed:recvFrame": "remoteClosed",
        "remoteClosed:recvOpen": "-",
        "remoteClosed:reset": "reset",
        "remoteClosed:sendFin": "closed",
        "remoteClosed:sendFrame": "remoteClosed",
        "remoteClosed:sendOpen": "-",
        "reset:recvFin": "-",
        "reset:recvFrame": "-",
        "reset:recvOpen": "-",
        "reset:reset": "-",
        "reset:sendFin": "-",
        "reset:sendFrame": "-",
        "reset:sendOpen": "-",
        "synReceived:recvFin": "remoteClosed",
        "synReceived:recvFrame": "synReceived",
        "synReceived:recvOpen": "-",
        "synReceived:reset": "reset",
        "synReceived:sendFin": "localClosed",
        "synReceived:sendFrame": "established",
        "synReceived:sendOpen": "-",
        "synSent:recvFin": "remoteClosed",
        "synSent:recvFrame": "established",
        "synSent:recvOpen": "-",
        "synSent:reset": "reset",
        "synSent:sendFin": "localClosed",
        "synSent:sendFrame": "synSent",
        "synSent:sendOpen": "-",
      }
    `);
  });
});

describe('ReceiveWindow', () => {
  const MAX = 4 * INITIAL_WINDOW;

  it('grants once half the window is consumed, and only what was consumed', () => {
    const w = new ReceiveWindow(MAX, 0);
    expect(w.onReceive(INITIAL_WINDOW)).toBe(true);
    expect(w.onReceive(1)).toBe(false); // beyond the window
    expect(w.onConsume(INITIAL_WINDOW / 2 - 1, 1000, 0)).toBe(0);
    expect(w.onConsume(1, 1000, 0)).toBe(INITIAL_WINDOW / 2);
    expect(w.credit).toBe(INITIAL_WINDOW / 2);
    expect(w.window).toBe(INITIAL_WINDOW);
  });

  it('does not grow without an RTT sample', () => {
    const w = new ReceiveWindow(MAX, 0);
    w.onReceive(INITIAL_WINDOW);
    expect(w.onConsume(INITIAL_WINDOW, 0.001, 0)).toBe(INITIAL_WINDOW);
    expect(w.window).toBe(INITIAL_WINDOW);
  });

  it('doubles when half the window went in under 2 RTT, up to maxWindow', () => {
    const rtt = 10;
    const w = new ReceiveWindow(MAX, 0);
    let now = 0;
    const sizes: number[] = [];
    for (let i = 0; i < 5; i++) {
      const half = w.window / 2;
      expect(w.onReceive(half)).toBe(true);
      now += 2 * rtt - 1; // just under 4 · ½ · RTT
      const grant = w.onConsume(half, now, rtt);
      sizes.push(w.window);
      expect(w.credit).toBe(w.window - 0); // nothing unread: all credit is back
      expect(grant).toBeGreaterThanOrEqual(half);
    }
    expect(sizes).toEqual([2, 4, 4, 4, 4].map((k) => k * INITIAL_WINDOW));
  });

  it('stays put when the window took longer than that', () => {
    const w = new ReceiveWindow(MAX, 0);
    w.onReceive(INITIAL_WINDOW / 2);
    expect(w.onConsume(INITIAL_WINDOW / 2, 20, 10)).toBe(INITIAL_WINDOW / 2); // exactly 2 RTT: no growth
    expect(w.window).toBe(INITIAL_WINDOW);
  });

  it('never lets unread bytes exceed the window', () => {
    const w = new ReceiveWindow(MAX, 0);
    let unread = 0;
    let now = 0;
    for (let i = 0; i < 1000; i++) {
      now += 1;
      const n = (i * 7919) % 50_000;
      if (w.onReceive(n)) unread += n;
      expect(unread).toBeLessThanOrEqual(w.window);
      const k = Math.min(unread, (i * 104729) % 70_000);
      unread -= k;
      w.onConsume(k, now, 5);
    }
  });
});

describe('RttEstimator', () => {
  it('starts at the first sample and smooths by 1/8', () => {
    const r = new RttEstimator();
    expect(r.rttMs).toBe(0);
    r.sample(80);
    expect(r.rttMs).toBe(80);
    r.sample(0);
    expect(r.rttMs).toBeCloseTo(70, 0);
  });
});

class Source implements SendSource {
  inRing = false;
  grantQueued = false;
  turnLeft = 0;
  fin = false;
  finSent = false;
  grant = 0;
  taken = 0;
  constructor(
    readonly id: number,
    public queued: number,
    public credit = Number.MAX_SAFE_INTEGER,
  ) {}
  sendable(): number {
    return Math.min(this.queued, this.credit);
  }
  take(out: Uint8Array, at: number, n: number): void {
    out.fill(this.id, at, at + n);
    this.queued -= n;
    this.credit -= n;
    this.taken += n;
  }
  finDue(): boolean {
    return this.fin && !this.finSent && this.queued === 0;
  }
  finTaken(): void {
    this.finSent = true;
  }
  takeGrant(): number {
    const g = this.grant;
    this.grant = 0;
    return g;
  }
}

function framesOf(batch: Uint8Array): Frame[] {
  return new FrameDecoder({ maxBody: 16 << 20 }).decode(batch);
}

describe('SendScheduler', () => {
  it('round-robins busy connections a quantum at a time', () => {
    const s = new SendScheduler(1000, 600);
    const a = new Source(1, 5000);
    const b = new Source(3, 5000);
    s.scheduleData(a);
    s.scheduleData(b);
    const batch = s.fill(new Uint8Array(4 * (HEADER_LEN + 1000)));
    const order = framesOf(batch).map((f) => (f.kind === 'DATA' ? `${f.connId}:${f.payload.length}` : f.kind));
    // Each turn is 1000 bytes in frames of at most 600.
    expect(order.slice(0, 6)).toEqual(['1:600', '1:400', '3:600', '3:400', '1:600', '1:400']);
    expect(Math.abs(a.taken - b.taken)).toBeLessThanOrEqual(1000);
  });

  it('puts urgent frames and window updates ahead of data, and CLOSE right after the last byte', () => {
    const s = new SendScheduler(64 * 1024, 64 * 1024);
    const a = new Source(1, 10);
    a.fin = true;
    a.grant = 500;
    s.scheduleData(a);
    s.scheduleGrant(a);
    s.pushUrgent({ kind: 'PING', opaque: new Uint8Array(8) });
    const frames = framesOf(s.fill(new Uint8Array(4096)));
    expect(frames.map((f) => f.kind)).toEqual(['PING', 'WINDOW_UPDATE', 'DATA', 'CLOSE']);
    expect(s.idle).toBe(true);
  });

  it('waits for credit, and resumes a turn cut short by a full batch', () => {
    const s = new SendScheduler(1000, 1000);
    const a = new Source(1, 3000, 0);
    s.scheduleData(a);
    expect(s.fill(new Uint8Array(4096)).length).toBe(0);
    expect(a.inRing).toBe(false);
    a.credit = 3000;
    s.scheduleData(a);
    const b = new Source(3, 3000);
    s.scheduleData(b);
    const first = framesOf(s.fill(new Uint8Array(HEADER_LEN + 300)));
    expect(first).toMatchObject([{ kind: 'DATA', connId: 1 }]);
    // The rest of a's turn (700 bytes) comes before b.
    const next = framesOf(s.fill(new Uint8Array(4096))).map((f) => (f.kind === 'DATA' ? `${f.connId}:${f.payload.length}` : f.kind));
    expect(next[0]).toBe('1:700');
    expect(next[1]).toBe('3:1000');
  });

  it('sends an urgent frame larger than the batch on its own', () => {
    const s = new SendScheduler(1000, 1000);
    s.pushUrgent({ kind: 'CONTROL', body: new Uint8Array(10_000) });
    const out = s.fill(new Uint8Array(4096));
    expect(out.length).toBe(HEADER_LEN + 10_000);
    expect(s.idle).toBe(true);
  });
});

describe('options', () => {
  it('defaults are frozen and valid', () => {
    expect(Object.isFrozen(DEFAULT_MUX_OPTIONS)).toBe(true);
    expect(() => verifyMuxOptions(DEFAULT_MUX_OPTIONS)).not.toThrow();
    expect(DEFAULT_MUX_OPTIONS.maxWindow).toBe(16 * 1024 * 1024);
  });

  it('names the option that is wrong', () => {
    expect(() => verifyMuxOptions({ ...DEFAULT_MUX_OPTIONS, keepaliveMs: 0 })).toThrow(ConfigError);
    expect(() => verifyMuxOptions({ ...DEFAULT_MUX_OPTIONS, keepaliveMs: 0 })).toThrow('keepaliveMs must be > 0');
    expect(() => verifyMuxOptions({ ...DEFAULT_MUX_OPTIONS, connectionHighWaterMark: 0 })).toThrow('connectionHighWaterMark must be > 0');
  });
});

// ---------------------------------------------------------------------------
// Timers under a manual clock

function written(t: FakeTransport): Frame[] {
  const d = new FrameDecoder({ maxBody: 16 << 20 });
  return t.written.flatMap((w) => d.decode(w));
}

const tick = () => new Promise((r) => setImmediate(r));

describe('keepalive and close timers (manual clock)', () => {
  it('pings after keepaliveMs of silence and declares the peer dead at 2 × keepaliveMs', async () => {
    const clock = new ManualClock();
    const t = new FakeTransport();
    const s = new MuxSession(t, { role: 'initiator', clock, keepaliveMs: 1000 });
    const conn = s.open();
    await tick();
    const pingsAtStart = written(t).filter((f) => f.kind === 'PING').length; // the RTT probe
    clock.advance(999);
    await tick();
    expect(written(t).filter((f) => f.kind === 'PING').length).toBe(pingsAtStart);
    clock.advance(1);
    await tick();
    expect(written(t).filter((f) => f.kind === 'PING').length).toBe(pingsAtStart + 1);
    // Traffic at 1500 ms pushes death back to 3500 ms.
    clock.advance(500);
    t.feed(encodeFrame({ kind: 'CONTROL', body: new Uint8Array(0) }));
    clock.advance(1999);
    expect(s.closed).toBe(false);
    clock.advance(1);
    expect(s.closed).toBe(true);
    expect(s.error).toBeInstanceOf(SessionError);
    expect(s.error?.code).toBe('GS_ERR_SESSION_DEAD');
    await tick();
    expect(conn.closed).toBe(true);
    expect(conn.error?.code).toBe('GS_ERR_SESSION_DEAD');
    expect(t.closed).toBe(true);
  });

  it('resets a half-closed connection only after closeTimeoutMs of silence from the peer on it', async () => {
    const clock = new ManualClock();
    const t = new FakeTransport();
    const s = new MuxSession(t, { role: 'initiator', clock, keepaliveMs: 60_000, closeTimeoutMs: 1000 });
    const conn = s.open();
    conn.resume();
    conn.end();
    await tick();
    expect(conn.state).toBe(ConnState.LocalClosed);
    clock.advance(600);
    t.feed(encodeFrame({ kind: 'DATA', connId: conn.id, payload: new Uint8Array(3) })); // the peer is still talking
    clock.advance(600);
    expect(conn.state).toBe(ConnState.LocalClosed);
    clock.advance(400);
    expect(conn.state).toBe(ConnState.Reset);
    await tick();
    expect(conn.error?.code).toBe('GS_ERR_CONN_RESET');
    expect(written(t).at(-1)).toMatchObject({ kind: 'RESET', connId: conn.id, code: ResetCode.CLOSE_TIMEOUT });
    expect(s.closed).toBe(false);
    s.destroy();
  });
});

describe('record alignment', () => {
  /** A transport that says it carries records of `recordSize` bytes, as the secure channel does. */
  class RecordTransport extends FakeTransport {
    constructor(readonly recordSize: number) {
      super();
    }
  }

  /** Start and end offsets of every frame in one transport write. */
  function frameSpans(bytes: Uint8Array): Array<{ kind: string; start: number; end: number }> {
    const spans = [];
    for (let at = 0; at < bytes.length; ) {
      const h = parseHeader(bytes, at);
      const end = at + HEADER_LEN + h.bodyLength;
      spans.push({ kind: h.kind, start: at, end });
      at = end;
    }
    return spans;
  }

  it.each([4096, 65_519])('over a transport with records of %i bytes, no DATA frame crosses a record boundary', async (recordSize) => {
    const t = new RecordTransport(recordSize);
    const s = new MuxSession(t, { role: 'initiator', clock: new ManualClock(), keepaliveMs: 60_000 });
    const conns = [s.open(), s.open()];
    await tick();
    const setup = t.written.length;
    // Writes of awkward sizes on two connections, so turns interleave.
    for (const size of [1, 70_000, 333, 100_000, 65_536]) for (const c of conns) c.write(new Uint8Array(size).fill(7));
    for (let i = 0; i < 10; i++) await tick();
    // Each transport write is sealed into records from its first byte: within a write,
    // no DATA frame may straddle a multiple of recordSize.
    let data = 0;
    for (const chunk of t.written.slice(setup)) {
      for (const f of frameSpans(chunk)) {
        if (f.kind !== 'DATA') continue;
        data++;
        expect(Math.floor(f.start / recordSize)).toBe(Math.floor((f.end - 1) / recordSize));
      }
    }
    expect(data).toBeGreaterThan(4);
    s.destroy();
  });
});
