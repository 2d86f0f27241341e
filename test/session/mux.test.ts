/**
 * MuxSession over memory pairs: integrity, the stall test, autotuning over
 * latency, fairness, half-close, reset, keepalive, transport loss, limits,
 * and the session's reaction to a raw peer that breaks the rules.
 */
import diagnosticsChannel from 'node:diagnostics_channel';
import { afterEach, describe, expect, it } from 'vitest';
import { ConfigError, FrameError, GatesockError, SessionError } from '../../src/errors/index.js';
import { FrameDecoder } from '../../src/session/frame-decoder.js';
import { encodeFrame, GoAwayCode, INITIAL_WINDOW, ResetCode, type Frame } from '../../src/session/frame.js';
import { ConnState, MuxSession, type MuxConnection } from '../../src/session/mux/index.js';
import { memoryPair, type ByteStream } from '../../src/transport/index.js';
import { CuttableStream, nextConnection, pattern, readAll, sameBytes, sessionPair, waitFor, writeAll, type SessionPair } from './mux-helpers.js';

const MiB = 1024 * 1024;
const live: MuxSession[] = [];

function track(pair: SessionPair): SessionPair {
  live.push(pair.a, pair.b);
  return pair;
}

afterEach(() => {
  for (const s of live.splice(0)) s.destroy();
});

/** The error `conn` closed with (undefined for a clean close), whether or not it has closed yet. */
function closeError(conn: MuxConnection): Promise<GatesockError | undefined> {
  if (conn.closed) return Promise.resolve(conn.error);
  return new Promise((resolve) => conn.once('close', resolve));
}

function sessionClosed(session: MuxSession): Promise<GatesockError | undefined> {
  return new Promise((resolve) => session.once('close', resolve));
}

/** Echo every incoming connection back to its opener, then end. */
function echoServer(session: MuxSession): void {
  session.on('connection', (conn) => {
    conn.on('data', (d) => {
      if (!conn.write(d)) {
        conn.pause();
        conn.once('drain', () => conn.resume());
      }
    });
    conn.on('end', () => conn.end());
    conn.resume();
  });
}

describe('MuxSession transfers', () => {
  it('carries a multi-MiB transfer both ways at once on one connection, intact', async () => {
    const { a, b } = track(sessionPair());
    const up = pattern(6 * MiB, 1);
    const down = pattern(5 * MiB + 123, 2);
    const incoming = nextConnection(b);
    const ca = a.open();
    const cb = await incoming;
    const [gotAtB, gotAtA] = await Promise.all([readAll(cb), readAll(ca), writeAll(ca, up, 100_000), writeAll(cb, down, 7_777)]);
    expect(sameBytes(gotAtB, up)).toBe(true);
    expect(sameBytes(gotAtA, down)).toBe(true);
    await Promise.all([closeError(ca), closeError(cb)]).then((errors) => expect(errors).toEqual([undefined, undefined]));
    expect(a.stats.connections).toBe(0);
    expect(b.stats.connections).toBe(0);
  });

  it('runs many connections in both directions over one pair', async () => {
    const { a, b } = track(sessionPair());
    echoServer(a);
    echoServer(b);
    const jobs: Promise<void>[] = [];
    for (let i = 0; i < 40; i++) {
      const from = i % 2 === 0 ? a : b;
      const conn = from.open(new TextEncoder().encode(`conn ${i}`));
      const data = pattern(48 * 1024 + i * 1000, 100 + i);
      jobs.push(
        Promise.all([readAll(conn), writeAll(conn, data, 4096)]).then(([echoed]) => {
          expect(sameBytes(echoed, data)).toBe(true);
        }),
      );
    }
    await Promise.all(jobs);
    await waitFor(() => a.stats.connections === 0 && b.stats.connections === 0, 2000, 'all connections closed');
    // Initiator IDs are odd, responder IDs even.
    expect(a.stats.opened).toBe(20);
    expect(b.stats.accepted).toBe(20);
  });

  it('gives odd IDs to the initiator and even ones to the responder, and passes metadata', async () => {
    const { a, b } = track(sessionPair());
    const seen: [number, string][] = [];
    const onConn = (conn: MuxConnection, meta: Uint8Array) => seen.push([conn.id, new TextDecoder().decode(meta)]);
    a.on('connection', onConn);
    b.on('connection', onConn);
    const ids = [a.open(new TextEncoder().encode('x')).id, a.open().id, b.open(new TextEncoder().encode('y')).id, b.open().id];
    expect(ids).toEqual([1, 3, 2, 4]);
    await waitFor(() => seen.length === 4);
    expect(seen.sort()).toEqual([
      [1, 'x'],
      [2, 'y'],
      [3, ''],
      [4, ''],
    ]);
  });
});

describe('flow control', () => {
  it('a paused reader stalls only its own connection, within its window (the stall test)', async () => {
    const { a, b } = track(sessionPair());
    const incoming: MuxConnection[] = [];
    b.on('connection', (c) => incoming.push(c));
    const stalled = a.open(new TextEncoder().encode('stalled'));
    const busy = a.open(new TextEncoder().encode('busy'));
    await waitFor(() => incoming.length === 2);
    const [stalledAtB, busyAtB] = incoming as [MuxConnection, MuxConnection];
    // stalledAtB is never resumed: its reader has stopped.

    let stalledWriteDone = false;
    void writeAll(stalled, pattern(4 * MiB, 3)).then(() => (stalledWriteDone = true));
    let maxBuffered = 0;
    const sampler = setInterval(() => (maxBuffered = Math.max(maxBuffered, stalledAtB.stats.bufferedBytes)), 1);

    const data = pattern(8 * MiB, 4);
    const [got] = await Promise.all([readAll(busyAtB), writeAll(busy, data)]);
    clearInterval(sampler);
    expect(sameBytes(got, data)).toBe(true);

    // The stalled connection is stuck: exactly one window delivered and buffered, the rest held back.
    maxBuffered = Math.max(maxBuffered, stalledAtB.stats.bufferedBytes);
    expect(stalledWriteDone).toBe(false);
    expect(stalledAtB.stats.bufferedBytes).toBe(INITIAL_WINDOW);
    expect(maxBuffered).toBeLessThanOrEqual(stalledAtB.stats.receiveWindow);
    expect(stalledAtB.stats.receiveWindow).toBe(INITIAL_WINDOW);
    expect(stalled.stats.sendCredit).toBe(0);
    // b never sent anything on it (no grant while unread), so our OPEN is still unacknowledged.
    expect(stalled.state).toBe(ConnState.SynSent);

    // Reading again releases it.
    const rest = readAll(stalledAtB);
    await waitFor(() => stalledWriteDone, 5000, 'stalled writer to finish');
    expect(sameBytes(await rest, pattern(4 * MiB, 3))).toBe(true);
  });

  it('grows the receive window over a link with latency, up to maxWindow', async () => {
    const pair = track(sessionPair({ maxWindow: 4 * MiB }, { latencyMs: 10 }));
    const incoming = nextConnection(pair.b);
    await pair.a.ping(); // the RTT the autotuner uses
    expect(pair.a.rttMs).toBeGreaterThanOrEqual(19);
    const grown: number[] = [];
    const onWindow = (m: unknown) => grown.push((m as { window: number }).window);
    diagnosticsChannel.subscribe('gatesock:session:window', onWindow);
    try {
      const conn = pair.a.open();
      const peer = await incoming;
      const data = pattern(12 * MiB, 5);
      const [got] = await Promise.all([readAll(peer), writeAll(conn, data)]);
      expect(sameBytes(got, data)).toBe(true);
      // Doubling steps from 256 KiB, never past maxWindow. (On an idle machine
      // all the way to 4 MiB; a loaded one may stop a step or two short.)
      expect(grown.length).toBeGreaterThanOrEqual(2);
      expect(grown).toEqual(grown.map((_, i) => INITIAL_WINDOW * 2 ** (i + 1)));
      expect(peer.stats.receiveWindow).toBe(grown.at(-1));
      expect(peer.stats.receiveWindow).toBeLessThanOrEqual(4 * MiB);
    } finally {
      diagnosticsChannel.unsubscribe('gatesock:session:window', onWindow);
    }
  });

  it('does not grow the window when maxWindow is the initial window', async () => {
    const pair = track(sessionPair({ maxWindow: INITIAL_WINDOW }, { latencyMs: 5 }));
    const incoming = nextConnection(pair.b);
    const conn = pair.a.open();
    const peer = await incoming;
    await Promise.all([readAll(peer), writeAll(conn, pattern(2 * MiB, 6))]);
    expect(peer.stats.receiveWindow).toBe(INITIAL_WINDOW);
  });

  it('shares the link fairly between two busy connections', async () => {
    const { a, b } = track(sessionPair());
    const incoming: MuxConnection[] = [];
    b.on('connection', (c) => incoming.push(c));
    const c1 = a.open();
    const c2 = a.open();
    await waitFor(() => incoming.length === 2);
    const [r1, r2] = incoming as [MuxConnection, MuxConnection];
    const size = 8 * MiB;
    let firstDoneAt: [number, number] | undefined;
    const done1 = readAll(r1).then(() => (firstDoneAt ??= [r1.stats.bytesReceived, r2.stats.bytesReceived]));
    const done2 = readAll(r2).then(() => (firstDoneAt ??= [r1.stats.bytesReceived, r2.stats.bytesReceived]));
    await Promise.all([writeAll(c1, pattern(size, 7)), writeAll(c2, pattern(size, 8)), done1, done2]);
    const [n1, n2] = firstDoneAt!;
    // When the first finished, the other had most of its bytes too.
    expect(Math.min(n1, n2) / Math.max(n1, n2)).toBeGreaterThan(0.75);
  });
});

describe('closing connections', () => {
  it('half-closes in both orders', async () => {
    const { a, b } = track(sessionPair());
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    for (const openerEndsFirst of [true, false]) {
      const incoming = nextConnection(b);
      const opener = a.open();
      const accepter = await incoming;
      const [first, second] = openerEndsFirst ? [opener, accepter] : [accepter, opener];
      // `first` sends and half-closes; `second` reads to the end, still able to answer.
      first.write(enc.encode('question'));
      first.end();
      expect(dec.decode(await readAll(second))).toBe('question');
      expect(second.state).toBe(ConnState.RemoteClosed);
      second.write(enc.encode('answer'));
      second.end();
      expect(dec.decode(await readAll(first))).toBe('answer');
      expect(await Promise.all([closeError(opener), closeError(accepter)])).toEqual([undefined, undefined]);
      expect([opener.state, accepter.state]).toEqual([ConnState.Closed, ConnState.Closed]);
      expect(() => first.write(enc.encode('late'))).toThrow(expect.objectContaining({ code: 'GS_ERR_TRANSPORT_CLOSED' }));
    }
  });

  it('resets: destroy() on one end closes the other with GS_ERR_CONN_RESET', async () => {
    const { a, b } = track(sessionPair());
    const incoming = nextConnection(b);
    const client = a.open();
    client.write(new Uint8Array(10));
    const server = await incoming;
    server.resume();
    const serverClosed = closeError(server);
    client.destroy(new Error('user gave up'));
    const err = await serverClosed;
    expect(err).toBeInstanceOf(SessionError);
    expect(err?.code).toBe('GS_ERR_CONN_RESET');
    expect(err?.message).toContain('user gave up');
    expect(server.state).toBe(ConnState.Reset);
    // Locally, close carries the error destroy() was given.
    expect((await closeError(client))?.message).toContain('user gave up');
    // Writing after a reset fails as on any closed ByteStream, with the reset as the cause.
    let thrown: unknown;
    try {
      server.write(new Uint8Array(1));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toMatchObject({ code: 'GS_ERR_TRANSPORT_CLOSED', cause: { code: 'GS_ERR_CONN_RESET' } });
    // The session itself is fine.
    expect(await a.ping()).toBeGreaterThanOrEqual(0);
  });

  it('resets a connection whose peer never confirms our CLOSE (close timer)', async () => {
    const { a, b } = track(sessionPair({ closeTimeoutMs: 40 }));
    const incoming = nextConnection(b);
    const client = a.open();
    const server = await incoming;
    server.resume(); // reads, sees end, but never ends its own side
    client.resume();
    client.end();
    const [ce, se] = await Promise.all([closeError(client), closeError(server)]);
    expect(ce?.code).toBe('GS_ERR_CONN_RESET');
    expect(ce?.message).toContain('did not close');
    expect(se?.code).toBe('GS_ERR_CONN_RESET');
    expect(a.stats.connections).toBe(0);
    expect(b.stats.connections).toBe(0);
  });

  it('traces every state change on gatesock:session:conn-state', async () => {
    const { a, b } = track(sessionPair());
    const trace: string[] = [];
    const onState = (m: unknown) => {
      const { session, from, to } = m as { session: MuxSession; from: string; to: string };
      if (session === a) trace.push(`${from}->${to}`);
    };
    diagnosticsChannel.subscribe('gatesock:session:conn-state', onState);
    try {
      const incoming = nextConnection(b);
      const client = a.open();
      const server = await incoming;
      server.write(new Uint8Array(1));
      server.end();
      await readAll(client);
      client.end();
      await closeError(client);
    } finally {
      diagnosticsChannel.unsubscribe('gatesock:session:conn-state', onState);
    }
    expect(trace).toEqual(['init->synSent', 'synSent->established', 'established->remoteClosed', 'remoteClosed->closed']);
  });
});

describe('session lifetime', () => {
  it('sends and receives CONTROL messages and measures RTT', async () => {
    const { a, b } = track(sessionPair());
    const got = new Promise<Uint8Array>((resolve) => b.once('control', resolve));
    a.sendControl(new TextEncoder().encode('{"hello":1}'));
    expect(new TextDecoder().decode(await got)).toBe('{"hello":1}');
    const rtt = await b.ping();
    expect(rtt).toBeGreaterThanOrEqual(0);
    expect(b.stats.rttMs).toBeGreaterThan(0);
    expect(() => a.sendControl(new Uint8Array(a.options.maxFrameBody + 1))).toThrow(FrameError);
  });

  it('close() sends GO_AWAY, half-closes everything and ends cleanly on both sides', async () => {
    const { a, b } = track(sessionPair());
    echoServer(b);
    const goAway = new Promise<number>((resolve) => b.once('goAway', (code) => resolve(code)));
    const conn = a.open();
    const data = pattern(300_000, 9);
    const echoed = readAll(conn);
    conn.write(data);
    const closing = a.close();
    expect(() => a.open()).toThrow(SessionError);
    expect(await goAway).toBe(GoAwayCode.NORMAL);
    expect(() => b.open()).toThrow(SessionError);
    expect(sameBytes(await echoed, data)).toBe(true);
    await closing;
    const bClosed = await new Promise<GatesockError | undefined>((resolve) => (b.closed ? resolve(b.error) : b.once('close', resolve)));
    expect(a.error).toBeUndefined();
    expect(bClosed).toBeUndefined();
    expect(a.closed && b.closed).toBe(true);
  });

  it('close() finishes even when a connection cannot drain (peer stopped reading)', async () => {
    const { a, b } = track(sessionPair({ closeTimeoutMs: 60 }));
    b.on('connection', () => {}); // accepted, never read
    const conn = a.open();
    conn.write(new Uint8Array(INITIAL_WINDOW + 1000)); // the last 1000 bytes can never go, nor the CLOSE behind them
    const t0 = performance.now();
    await a.close();
    expect(performance.now() - t0).toBeLessThan(1000);
    expect((await closeError(conn))?.code).toBe('GS_ERR_SESSION_CLOSED');
    expect(a.error).toBeUndefined();
  });

  it('refuses OPENs beyond maxConnections with GS_ERR_TOO_MANY_CONNECTIONS', async () => {
    const pair = track(sessionPair({ maxConnections: 2 }));
    pair.b.on('connection', (c) => c.resume());
    const c1 = pair.a.open();
    const c2 = pair.a.open();
    expect(() => pair.a.open()).toThrow(expect.objectContaining({ code: 'GS_ERR_TOO_MANY_CONNECTIONS' }));
    // A peer with a higher limit opens a third: refused by b.
    const [ta, tb] = memoryPair();
    const wide = new MuxSession(ta, { role: 'initiator', maxConnections: 10 });
    const narrow = new MuxSession(tb, { role: 'responder', maxConnections: 2 });
    live.push(wide, narrow);
    narrow.on('connection', (c) => c.resume());
    const conns = [wide.open(), wide.open(), wide.open()];
    const err = await closeError(conns[2]!);
    expect(err?.code).toBe('GS_ERR_TOO_MANY_CONNECTIONS');
    expect(narrow.stats.refused).toBe(1);
    expect(narrow.stats.connections).toBe(2);
    expect(c1.state).not.toBe(ConnState.Reset);
    expect(c2.state).not.toBe(ConnState.Reset);
  });

  it('refuses OPENs when nobody listens for connections', async () => {
    const { a } = track(sessionPair());
    const err = await closeError(a.open());
    expect(err?.code).toBe('GS_ERR_CONN_RESET');
    expect(err?.message).toContain('refused');
  });

  it('declares both ends dead after 2 × keepaliveMs of silence, and tells every connection', async () => {
    const [ta, tb] = memoryPair();
    const ca = new CuttableStream(ta);
    const cb = new CuttableStream(tb);
    const keepaliveMs = 40;
    const a = new MuxSession(ca, { role: 'initiator', keepaliveMs });
    const b = new MuxSession(cb, { role: 'responder', keepaliveMs });
    live.push(a, b);
    const incoming = nextConnection(b);
    const client = a.open();
    const server = await incoming;
    const deaths: unknown[] = [];
    const onDead = (m: unknown) => deaths.push(m);
    diagnosticsChannel.subscribe('gatesock:session:dead', onDead);
    try {
      const t0 = performance.now();
      ca.cut();
      cb.cut();
      const [ea, eb, ec, es] = await Promise.all([
        sessionClosed(a),
        sessionClosed(b),
        closeError(client),
        closeError(server),
      ]);
      const elapsed = performance.now() - t0;
      for (const e of [ea, eb, ec, es]) expect(e?.code).toBe('GS_ERR_SESSION_DEAD');
      expect(elapsed).toBeGreaterThanOrEqual(2 * keepaliveMs - 5);
      expect(elapsed).toBeLessThan(2 * keepaliveMs + 150);
      expect(deaths.length).toBe(2);
    } finally {
      diagnosticsChannel.unsubscribe('gatesock:session:dead', onDead);
    }
  });

  it('keeps an idle but live session alive with pings', async () => {
    // 60 ms, not less: a loaded 2-core machine can stall an event loop for
    // 2 × 20 ms, which the session rightly reads as a dead peer.
    const { a, b } = track(sessionPair({ keepaliveMs: 60 }));
    await new Promise((r) => setTimeout(r, 400));
    expect(a.closed || b.closed).toBe(false);
    expect(a.stats.bytesOut).toBeGreaterThan(100); // several PINGs and PONGs
  });

  it('closes every connection on both ends with an error when the transport is destroyed', async () => {
    const { a, b, ta } = track(sessionPair());
    const incoming: MuxConnection[] = [];
    b.on('connection', (c) => incoming.push(c));
    const mine = [a.open(), a.open(), a.open()];
    await waitFor(() => incoming.length === 3);
    const all = [...mine, ...incoming].map(closeError);
    ta.destroy(new Error('cable cut'));
    const errors = await Promise.all(all);
    for (const e of errors) {
      expect(e).toBeInstanceOf(SessionError);
      expect(e?.code).toBe('GS_ERR_SESSION_CLOSED');
    }
    expect(a.closed && b.closed).toBe(true);
    await expect(a.ping()).rejects.toBeInstanceOf(SessionError);
    expect(() => a.open()).toThrow(SessionError);
  });

  it('destroy() tells every connection and the peer', async () => {
    const { a, b } = track(sessionPair());
    const incoming = nextConnection(b);
    const c = a.open();
    const s = await incoming;
    const both = Promise.all([closeError(c), closeError(s)]);
    a.destroy(new SessionError('GS_ERR_SESSION_CLOSED', 'shutting down'));
    const [ec, es] = await both;
    expect(ec?.message).toBe('shutting down');
    expect(es?.code).toBe('GS_ERR_SESSION_CLOSED');
  });

  it('publishes open, go-away and close on diagnostics channels', async () => {
    const seen: string[] = [];
    const names = ['open', 'go-away', 'close'];
    const handlers = names.map((n) => [`gatesock:session:${n}`, () => seen.push(n)] as const);
    for (const [name, fn] of handlers) diagnosticsChannel.subscribe(name, fn);
    try {
      const { a, b } = track(sessionPair());
      await a.close();
      await waitFor(() => b.closed);
    } finally {
      for (const [name, fn] of handlers) diagnosticsChannel.unsubscribe(name, fn);
    }
    expect(seen.sort()).toEqual(['close', 'close', 'go-away', 'go-away', 'open', 'open']);
  });

  it('verifies options by name', () => {
    const [t] = memoryPair();
    const make = (o: object) => () => new MuxSession(t, { role: 'initiator', ...o });
    expect(make({ keepaliveMs: 0 })).toThrow(new ConfigError('GS_ERR_INVALID_OPTION', 'keepaliveMs must be > 0'));
    expect(make({ maxConnections: 0 })).toThrow(/maxConnections/);
    expect(make({ maxWindow: 1000 })).toThrow(/maxWindow/);
    expect(make({ maxFrameBody: 1000 })).toThrow(/maxFrameBody/);
    expect(make({ closeTimeoutMs: -1 })).toThrow(/closeTimeoutMs/);
    expect(make({ sendQuantum: 10 })).toThrow(/sendQuantum/);
    expect(make({ keepAlive: 5 })).toThrow(/keepAlive is not a MuxSession option/);
    expect(() => new MuxSession(t, { role: 'server' as 'initiator' })).toThrow(/role/);
    t.destroy();
  });
});

// ---------------------------------------------------------------------------
// A raw peer: test code writes frames by hand to one MuxSession.

interface RawPeer {
  session: MuxSession;
  send(...frames: Frame[]): void;
  sendBytes(bytes: Uint8Array): void;
  received: Frame[];
  transport: ByteStream;
}

function rawPeer(role: 'initiator' | 'responder' = 'responder'): RawPeer {
  const [ours, theirs] = memoryPair();
  const session = new MuxSession(ours, { role });
  live.push(session);
  const received: Frame[] = [];
  const decoder = new FrameDecoder({ maxBody: 16 * MiB });
  theirs.on('data', (d) =>
    decoder.push(d, (f) => {
      received.push(f);
      // Answer pings, as a live peer would.
      if (f.kind === 'PING' && !theirs.closed) theirs.write(encodeFrame({ kind: 'PONG', opaque: f.opaque }));
    }),
  );
  theirs.resume();
  return {
    session,
    received,
    transport: theirs,
    send: (...frames) => {
      for (const f of frames) theirs.write(encodeFrame(f));
    },
    sendBytes: (bytes) => theirs.write(bytes),
  };
}

describe('a peer that breaks the rules', () => {
  it('resets only the connection that sends beyond its window', async () => {
    const peer = rawPeer();
    const conns: MuxConnection[] = [];
    peer.session.on('connection', (c) => conns.push(c));
    peer.send({ kind: 'OPEN', connId: 1, metadata: new Uint8Array(0) }, { kind: 'OPEN', connId: 3, metadata: new Uint8Array(0) });
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < 4; i++) peer.send({ kind: 'DATA', connId: 1, payload: chunk });
    peer.send({ kind: 'DATA', connId: 1, payload: new Uint8Array(1) }); // one byte too many
    peer.send({ kind: 'DATA', connId: 3, payload: new Uint8Array(5) });
    await waitFor(() => conns.length === 2 && conns[0]!.state === ConnState.Reset);
    expect(conns[0]!.error?.code).toBe('GS_ERR_PROTOCOL');
    await waitFor(() => peer.received.some((f) => f.kind === 'RESET'));
    expect(peer.received.find((f) => f.kind === 'RESET')).toMatchObject({ connId: 1, code: ResetCode.PROTOCOL });
    expect(conns[1]!.stats.bytesReceived).toBe(5);
    expect(peer.session.closed).toBe(false);
  });

  it('drops frames for unknown connection IDs without failing', async () => {
    const peer = rawPeer();
    peer.send(
      { kind: 'DATA', connId: 99, payload: new Uint8Array(100) },
      { kind: 'WINDOW_UPDATE', connId: 98, credit: 5 },
      { kind: 'CLOSE', connId: 97 },
      { kind: 'RESET', connId: 96, code: 0, reason: '' },
    );
    await waitFor(() => peer.session.stats.droppedFrames === 4);
    expect(await peer.session.ping()).toBeGreaterThanOrEqual(0);
  });

  it('rejects DATA carrying a wrong offset, and accepts a right one', async () => {
    const peer = rawPeer();
    const conns: MuxConnection[] = [];
    peer.session.on('connection', (c) => conns.push(c));
    peer.send({ kind: 'OPEN', connId: 1, metadata: new Uint8Array(0) }, { kind: 'OPEN', connId: 3, metadata: new Uint8Array(0) });
    peer.send({ kind: 'DATA', connId: 1, offset: 0n, payload: new Uint8Array(10) }, { kind: 'DATA', connId: 1, offset: 10n, payload: new Uint8Array(10) });
    peer.send({ kind: 'DATA', connId: 3, offset: 5n, payload: new Uint8Array(10) });
    await waitFor(() => conns[1]?.state === ConnState.Reset);
    expect(conns[0]!.stats.bytesReceived).toBe(20);
    expect(conns[1]!.error?.code).toBe('GS_ERR_PROTOCOL');
  });

  it('resets a connection that sends DATA after its CLOSE', async () => {
    const peer = rawPeer();
    const conns: MuxConnection[] = [];
    peer.session.on('connection', (c) => conns.push(c));
    peer.send({ kind: 'OPEN', connId: 1, metadata: new Uint8Array(0) }, { kind: 'CLOSE', connId: 1 }, { kind: 'DATA', connId: 1, payload: new Uint8Array(1) });
    await waitFor(() => conns[0]?.state === ConnState.Reset);
    expect(conns[0]!.error?.code).toBe('GS_ERR_PROTOCOL');
  });

  const fatal: [string, (p: RawPeer) => void, string][] = [
    ['an unknown frame type', (p) => p.sendBytes(Uint8Array.of(1, 77, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)), 'GS_ERR_FRAME_UNKNOWN_TYPE'],
    ['a bad version', (p) => p.sendBytes(Uint8Array.of(9, 2, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0)), 'GS_ERR_FRAME_VERSION'],
    ['a malformed frame', (p) => p.sendBytes(Uint8Array.of(1, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0)), 'GS_ERR_FRAME_MALFORMED'],
    ['an oversized body', (p) => p.sendBytes(Uint8Array.of(1, 8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0)), 'GS_ERR_FRAME_TOO_LARGE'],
    ['an OPEN with our parity', (p) => p.send({ kind: 'OPEN', connId: 2, metadata: new Uint8Array(0) }), 'GS_ERR_UNEXPECTED_FRAME'],
    ['a second OPEN for a live ID', (p) => p.send({ kind: 'OPEN', connId: 1, metadata: new Uint8Array(0) }, { kind: 'OPEN', connId: 1, metadata: new Uint8Array(0) }), 'GS_ERR_UNEXPECTED_FRAME'],
  ];
  for (const [what, act, code] of fatal) {
    it(`closes the session on ${what}, with GO_AWAY first, leaving other sessions alone`, async () => {
      const peer = rawPeer();
      peer.session.on('connection', (c) => c.resume());
      const bystander = track(sessionPair());
      const closed = sessionClosed(peer.session);
      act(peer);
      const error = await closed;
      expect(error).toBeInstanceOf(FrameError);
      expect(error?.code).toBe(code);
      await waitFor(() => peer.received.some((f) => f.kind === 'GO_AWAY'));
      expect(peer.received.find((f) => f.kind === 'GO_AWAY')).toMatchObject({ code: GoAwayCode.PROTOCOL_ERROR });
      expect(await bystander.a.ping()).toBeGreaterThanOrEqual(0);
    });
  }

  it('closes the session when the peer sends GO_AWAY with an error code', async () => {
    const peer = rawPeer();
    const closed = sessionClosed(peer.session);
    peer.send({ kind: 'GO_AWAY', code: GoAwayCode.PROTOCOL_ERROR, reason: 'you sent junk' });
    const error = await closed;
    expect(error?.code).toBe('GS_ERR_PROTOCOL');
    expect(error?.message).toContain('you sent junk');
  });

  it('survives a listener that throws: the session closes with a typed error, nothing escapes', async () => {
    const peer = rawPeer();
    peer.session.on('control', () => {
      throw new Error('listener bug');
    });
    const closed = sessionClosed(peer.session);
    peer.send({ kind: 'CONTROL', body: new Uint8Array(1) });
    const error = await closed;
    expect(error).toBeInstanceOf(SessionError);
    expect(error?.message).toContain('listener bug');
  });
});
