/**
 * The multiplexed session: many {@link MuxConnection}s, a control channel,
 * pings and keepalive over one {@link ByteStream} (in production a Noise
 * secure channel; in tests a memory pair). Chunk boundaries of the transport
 * mean nothing: frames are decoded incrementally.
 *
 * Read loop (yamux `session.go`): decode, then dispatch by frame kind. A
 * frame for a connection ID we do not know (closed, reset, never opened) is
 * dropped, not fatal, so one late frame cannot take down a session carrying
 * many clients. A malformed frame, an unknown type or an OPEN that breaks
 * the ID rules closes this session (GO_AWAY `PROTOCOL_ERROR` first) with a
 * typed error; nothing is ever thrown out of a transport event handler.
 *
 * Write loop: frames are scheduled by {@link SendScheduler} into a batch
 * buffer and written as one transport write; the loop stops when `write()`
 * returns false and continues on `drain`. Over a transport that seals writes
 * into records (the secure channel's `recordSize`), DATA frames end where
 * records end, so the peer decodes each frame inside one record, without
 * gathering its body into a copy. The batch is one 256 KiB scratch
 * buffer shared by every session in the process (a gateway may hold
 * thousands of sessions), which relies on the ByteStream contract: a
 * transport keeps no reference to a chunk after `write()` returns. A flush
 * that starts while another is writing (a transport whose `write()` runs a
 * session synchronously) gets a buffer of its own.
 *
 * Clear payload (pass-through): over a transport that sends split records
 * (a SecureChannel: `writeWithClear`, `onSplitRecord`), the DATA of a
 * connection whose payload is already end-to-end ciphertext
 * ({@link MuxConnection.enableClearPayload}) goes with its 12-byte header
 * sealed and its payload as it is. The session takes the transport's split
 * records: each must hold exactly one DATA header, with no OFFSET, whose
 * body is the clear part, arriving between frames; anything else fails the
 * session (`GS_ERR_FRAME_MALFORMED`). One for a connection that has not
 * enabled clear payload resets that connection (`GS_ERR_PROTOCOL`, RESET
 * `PROTOCOL`) and its bytes are never delivered.
 *
 * Keepalive: after `keepaliveMs` without a byte from the peer we PING; after
 * `2 × keepaliveMs` without one the session is dead (`GS_ERR_SESSION_DEAD`)
 * and every connection closes with that error (DESIGN.md, "Closing").
 */
import { EventEmitter } from 'eventemitter3';
import { FrameError, GatesockError, SessionError } from '../../errors/index.js';
import { checkOption } from '../../errors/check.js';
import type { ByteStream } from '../../transport/index.js';
import { FrameDecoder } from '../frame-decoder.js';
import { encodeFrame, GoAwayCode, HEADER_LEN, MAX_OPEN_METADATA_LEN, parseHeader, PING_BODY_LEN, ResetCode, type Frame } from '../frame.js';
import type { ClearSpan, SplitRecordHandler } from '../secure/channel.js';
import { clipReason, MuxConnection, type ConnectionHost } from './connection.js';
import { publish, sessionChannels } from './diagnostics.js';
import { RttEstimator } from './flow.js';
import { MAX_DATA_PAYLOAD, resolveMuxOptions, type MuxClock, type MuxOptions } from './options.js';
import { SendScheduler } from './scheduler.js';
import { isTerminal, type ConnState } from './state.js';

/**
 * Which end of the session we are: the initiator opens odd connection IDs,
 * the responder even ones (as yamux's client and server).
 * @public
 */
export type MuxRole = 'initiator' | 'responder';

/**
 * Options of {@link MuxSession}: the role plus any {@link MuxOptions}.
 * @public
 */
export interface MuxSessionOptions extends Partial<MuxOptions> {
  /** Which end we are; decides the parity of the connection IDs we open. */
  role: MuxRole;
}

/**
 * Events of a {@link MuxSession}.
 * @public
 */
export interface MuxSessionEvents {
  /** The peer opened a connection. It starts paused; call `resume()` to read. Without a listener, incoming opens are refused. */
  connection: (conn: MuxConnection, metadata: Uint8Array) => void;
  /** A CONTROL frame arrived (a message of the relay layer). */
  control: (body: Uint8Array) => void;
  /** The peer sent GO_AWAY: it opens nothing more, and `open()` now throws. */
  goAway: (code: number, reason: string) => void;
  /** The session ended, with an error unless it was closed cleanly; emitted once. */
  close: (error?: GatesockError) => void;
}

/**
 * Counters of a session.
 * @public
 */
export interface MuxSessionStats {
  /** Live connections (both directions). */
  readonly connections: number;
  /** Connections we opened. */
  readonly opened: number;
  /** Connections the peer opened that we accepted. */
  readonly accepted: number;
  /** Peer OPENs we refused (limit, no listener, going away). */
  readonly refused: number;
  /** Bytes read from the transport. */
  readonly bytesIn: number;
  /** Bytes written to the transport. */
  readonly bytesOut: number;
  /** Frames dropped because their connection ID was unknown. */
  readonly droppedFrames: number;
  /** Smoothed PING round-trip time in ms; 0 before the first PONG. */
  readonly rttMs: number;
}

type Phase = 'open' | 'closing' | 'closed';

interface PendingPing {
  readonly sentAt: number;
  readonly resolve: (rttMs: number) => void;
  readonly reject: (error: GatesockError) => void;
}

/** Bytes of the write batch: several quanta per transport write. */
const BATCH_BYTES = 256 * 1024;
let sharedBatch: Uint8Array | undefined;
let sharedBatchBusy = false;
/** Most urgent frames we let queue before we stop answering PINGs and refused OPENs (a peer that does not read). */
const MAX_URGENT_QUEUE = 1024;

const KEYS_BESIDES_OPTIONS = ['role'] as const;

/**
 * The record size a transport seals its writes into, if it says (a
 * SecureChannel's `recordSize`), else 0. DATA frames are then cut at record
 * ends (scheduler.ts, "Record alignment").
 */
function recordSizeOf(transport: ByteStream): number {
  const size = (transport as { readonly recordSize?: unknown }).recordSize;
  return typeof size === 'number' && Number.isInteger(size) && size > 2 * HEADER_LEN && size <= BATCH_BYTES ? size : 0;
}

/** A transport that sends and takes split records (a SecureChannel). */
interface SplitTransport extends ByteStream {
  writeWithClear(chunk: Uint8Array, spans: readonly ClearSpan[]): boolean;
  onSplitRecord: SplitRecordHandler | undefined;
}

function splitTransportOf(transport: ByteStream): SplitTransport | undefined {
  const t = transport as Partial<SplitTransport>;
  return typeof t.writeWithClear === 'function' && 'onSplitRecord' in t ? (t as SplitTransport) : undefined;
}

/**
 * A multiplexed session over one {@link ByteStream}.
 *
 * ```ts
 * const [a, b] = memoryPair();
 * const client = new MuxSession(a, { role: 'initiator' });
 * const server = new MuxSession(b, { role: 'responder' });
 * server.on('connection', (conn) => { conn.on('data', (d) => conn.write(d)); conn.resume(); });
 * const conn = client.open();
 * conn.on('data', console.log);
 * conn.resume();
 * conn.write(new TextEncoder().encode('hello'));
 * ```
 * @public
 */
export class MuxSession extends EventEmitter<MuxSessionEvents> {
  /** Our end of the session. */
  readonly role: MuxRole;
  /** The verified options in force (defaults filled in). */
  readonly options: Readonly<MuxOptions>;

  private readonly transport: ByteStream;
  /** The transport again when it sends split records (clear payload), else undefined. */
  private readonly splitTransport: SplitTransport | undefined;
  private readonly clock: MuxClock;
  private readonly decoder: FrameDecoder;
  private readonly scheduler: SendScheduler;
  private readonly conns = new Map<number, MuxConnection>();
  /** What connections call back into; made with the first connection (an idle session needs none). */
  private host: ConnectionHost | undefined;
  private readonly rtt = new RttEstimator();
  private readonly pings = new Map<number, PendingPing>();

  private phase: Phase = 'open';
  private failure: GatesockError | undefined;
  private remoteGoAway = false;
  private nextId: number;
  private nextPingId = 1;
  private flushScheduled = false;
  private blocked = false;
  private lastRecvAt: number;
  private keepaliveTimer: unknown;
  private keepalivePingOut = false;
  private lingerTimer: unknown;
  private graceTimer: unknown;
  private closeWaiters: (() => void)[] = [];

  private counters = { opened: 0, accepted: 0, refused: 0, bytesIn: 0, bytesOut: 0, droppedFrames: 0 };

  /**
   * Start a session over `transport`: listeners are attached now, and the
   * transport is resumed on the next microtask, so listeners the caller
   * attaches right after construction see every event. Sends one PING at
   * once to learn the RTT for window autotuning.
   * @throws {@link ConfigError} `GS_ERR_INVALID_OPTION` naming a bad option.
   */
  constructor(transport: ByteStream, options: MuxSessionOptions) {
    super();
    const { role } = options;
    checkOption(role === 'initiator' || role === 'responder', 'role', "must be 'initiator' or 'responder'");
    this.role = role;
    this.options = resolveMuxOptions(options, KEYS_BESIDES_OPTIONS);
    this.transport = transport;
    this.clock = this.options.clock;
    this.decoder = new FrameDecoder({ maxBody: this.options.maxFrameBody });
    this.splitTransport = splitTransportOf(transport);
    this.scheduler = new SendScheduler(this.options.sendQuantum, MAX_DATA_PAYLOAD, recordSizeOf(transport), this.splitTransport !== undefined);
    if (this.splitTransport) this.splitTransport.onSplitRecord = this.onSplitRecord;
    this.nextId = role === 'initiator' ? 1 : 2;
    this.lastRecvAt = this.clock.now();

    transport.on('data', this.onTransportData);
    transport.on('end', this.onTransportEnd);
    transport.on('drain', this.onTransportDrain);
    transport.on('close', this.onTransportClose);
    publish(sessionChannels.open, () => ({ session: this, role }));
    if (transport.closed) {
      this.teardown(new SessionError('GS_ERR_SESSION_CLOSED', 'transport already closed'), 'transport already closed');
      return;
    }
    this.armKeepalive(this.options.keepaliveMs);
    this.ping().catch(() => {});
    // Resume on the next microtask, not here: bytes already buffered below
    // (an OPEN that arrived with the handshake) would otherwise be dispatched
    // inside this constructor, before the caller could attach its
    // `connection` listener, and the connection would be refused.
    queueMicrotask(() => {
      if (!this.closed) transport.resume();
    });
  }

  /** True once the session has ended (the `close` event may still be on its way). */
  get closed(): boolean {
    return this.phase === 'closed';
  }

  /** The error the session ended with, if any. */
  get error(): GatesockError | undefined {
    return this.failure;
  }

  /** Counters. */
  get stats(): MuxSessionStats {
    return { connections: this.conns.size, ...this.counters, rttMs: this.rtt.rttMs };
  }

  /** Smoothed RTT in ms from pings; 0 before the first PONG. */
  get rttMs(): number {
    return this.rtt.rttMs;
  }

  /**
   * Open a connection; `metadata` (≤ 4 KiB, copied) travels in the OPEN
   * frame. The connection starts paused; data may be written at once.
   * @throws {@link SessionError} `GS_ERR_SESSION_CLOSED` once the session is
   *   closing, closed, or the peer sent GO_AWAY; `GS_ERR_TOO_MANY_CONNECTIONS`
   *   at `maxConnections` or when connection IDs run out.
   * @throws RangeError for metadata over 4 KiB.
   */
  open(metadata: Uint8Array = new Uint8Array(0)): MuxConnection {
    if (this.phase !== 'open' || this.remoteGoAway) {
      throw this.failure ?? new SessionError('GS_ERR_SESSION_CLOSED', this.remoteGoAway ? 'peer sent GO_AWAY' : 'session is closing');
    }
    if (metadata.length > MAX_OPEN_METADATA_LEN) throw new RangeError(`open metadata is ${metadata.length} bytes, max ${MAX_OPEN_METADATA_LEN}`);
    if (this.conns.size >= this.options.maxConnections) {
      throw new SessionError('GS_ERR_TOO_MANY_CONNECTIONS', `at maxConnections (${this.options.maxConnections})`);
    }
    if (this.nextId > 0xffffffff) throw new SessionError('GS_ERR_TOO_MANY_CONNECTIONS', 'connection IDs exhausted');
    const id = this.nextId;
    this.nextId += 2;
    const copy = metadata.slice();
    // OPEN is queued before the connection exists for the scheduler, so it precedes its DATA.
    this.scheduler.pushUrgent({ kind: 'OPEN', connId: id, metadata: copy });
    const conn = new MuxConnection((this.host ??= this.makeHost()), id, copy, 'sendOpen');
    this.conns.set(id, conn);
    this.counters.opened++;
    this.scheduleFlush();
    return conn;
  }

  /**
   * Send a CONTROL frame (a relay-layer message). `body` is copied.
   * @throws {@link SessionError} `GS_ERR_SESSION_CLOSED` after the session
   *   ended; {@link FrameError} `GS_ERR_FRAME_TOO_LARGE` above `maxFrameBody`.
   */
  sendControl(body: Uint8Array): void {
    if (this.phase === 'closed') throw this.failure ?? new SessionError('GS_ERR_SESSION_CLOSED', 'session closed');
    if (body.length > this.options.maxFrameBody) {
      throw new FrameError('GS_ERR_FRAME_TOO_LARGE', `CONTROL body of ${body.length} bytes exceeds maxFrameBody ${this.options.maxFrameBody}`);
    }
    this.queueUrgent({ kind: 'CONTROL', body: body.slice() });
  }

  /**
   * Measure the round trip: resolves with the RTT in ms when the PONG
   * arrives; rejects with the session's error if it ends first.
   */
  ping(): Promise<number> {
    if (this.phase === 'closed') return Promise.reject(this.failure ?? new SessionError('GS_ERR_SESSION_CLOSED', 'session closed'));
    const id = this.nextPingId;
    this.nextPingId = id >= 0xffffffff ? 1 : id + 1;
    const opaque = new Uint8Array(PING_BODY_LEN);
    new DataView(opaque.buffer).setUint32(4, id);
    return new Promise<number>((resolve, reject) => {
      this.pings.set(id, { sentAt: this.clock.now(), resolve, reject });
      this.queueUrgent({ kind: 'PING', opaque });
    });
  }

  /**
   * Close cleanly: send GO_AWAY, refuse new connections, half-close every
   * connection (queued data first), wait until each is closed by the peer,
   * then end the transport. A connection still open after `closeTimeoutMs`
   * (or `2 × keepaliveMs` when that is 0) is reset with `CLOSE_TIMEOUT`,
   * so this always finishes. Resolves when the session has ended; never
   * rejects.
   */
  close(): Promise<void> {
    if (this.phase === 'closed') return Promise.resolve();
    const done = new Promise<void>((resolve) => this.closeWaiters.push(resolve));
    if (this.phase === 'open') {
      this.phase = 'closing';
      this.queueUrgent({ kind: 'GO_AWAY', code: GoAwayCode.NORMAL, reason: '' });
      publish(sessionChannels.goAway, () => ({ session: this, direction: 'sent', code: GoAwayCode.NORMAL, reason: '' }));
      for (const conn of [...this.conns.values()]) conn.end();
      const grace = this.options.closeTimeoutMs || 2 * this.options.keepaliveMs;
      this.graceTimer = this.clock.setTimer(() => {
        for (const conn of [...this.conns.values()]) {
          conn.kill(ResetCode.CLOSE_TIMEOUT, 'session closing', new SessionError('GS_ERR_SESSION_CLOSED', `session closed before connection ${conn.id} finished (after ${grace} ms)`), 'close() grace expired');
        }
        this.scheduleFlush();
      }, grace);
      this.scheduleFlush();
    }
    return done;
  }

  /**
   * Abort at once: every connection closes with `error` (or
   * `GS_ERR_SESSION_CLOSED`), queued bytes are dropped and the transport is
   * destroyed. `close` carries the error as given (wrapped into a
   * {@link SessionError} when it is not a gatesock error).
   */
  destroy(error?: Error): void {
    if (this.phase === 'closed') return;
    const gs = error === undefined ? undefined : error instanceof GatesockError ? error : new SessionError('GS_ERR_SESSION_CLOSED', `session destroyed: ${error.message}`, { cause: error });
    this.teardown(gs, 'destroy() called');
    this.transport.destroy(error);
  }

  // -------------------------------------------------------------------------
  // Transport events: never throw out of these.

  private readonly onTransportData = (chunk: Uint8Array): void => {
    if (this.phase === 'closed') return;
    this.counters.bytesIn += chunk.length;
    this.lastRecvAt = this.clock.now();
    try {
      this.decoder.push(chunk, this.onFrame);
    } catch (error) {
      this.fail(error);
    }
  };

  /** A split record: one DATA frame whose payload crossed the hop as it is (file comment). */
  private readonly onSplitRecord = (header: Uint8Array, clear: readonly Uint8Array[]): void => {
    if (this.phase === 'closed') return;
    let clearLength = 0;
    for (const piece of clear) clearLength += piece.length;
    this.counters.bytesIn += header.length + clearLength;
    this.lastRecvAt = this.clock.now();
    try {
      if (this.decoder.bufferedBytes !== 0) throw new FrameError('GS_ERR_FRAME_MALFORMED', 'split record in the middle of a frame');
      if (header.length !== HEADER_LEN) throw new FrameError('GS_ERR_FRAME_MALFORMED', `split record header of ${header.length} bytes, expected ${HEADER_LEN}`);
      const h = parseHeader(header, 0, this.options.maxFrameBody);
      if (h.kind !== 'DATA' || h.flags !== 0 || h.connId === 0 || h.bodyLength !== clearLength) {
        throw new FrameError('GS_ERR_FRAME_MALFORMED', `split record must hold one DATA header without flags for its ${clearLength} clear bytes (got ${h.kind}, flags ${h.flags}, body ${h.bodyLength})`);
      }
      const conn = this.conns.get(h.connId);
      if (conn === undefined) {
        this.counters.droppedFrames++;
      } else if (!conn.clearPayload) {
        const why = 'payload outside the hop encryption on a connection that does not carry the end-to-end layer';
        conn.kill(ResetCode.PROTOCOL, why, new SessionError('GS_ERR_PROTOCOL', `connection ${conn.id}: the peer sent ${why}; refused`), 'clear payload refused');
      } else {
        // One frame's payload in the pieces it arrived in: no copy.
        for (const piece of clear) {
          conn.handleData(piece, undefined, true);
          if (isTerminal(conn.state)) break; // reset (beyond its window, after CLOSE): the rest is void
        }
      }
    } catch (error) {
      this.fail(error);
    }
  };

  private readonly onTransportEnd = (): void => {
    if (this.phase === 'closed') return;
    if ((this.remoteGoAway || this.phase === 'closing') && this.conns.size === 0) {
      // The peer ended after a GO_AWAY either way, with nothing left open: a clean close.
      this.teardown(undefined, 'peer ended the transport after GO_AWAY');
    } else {
      this.teardown(new SessionError('GS_ERR_SESSION_CLOSED', 'peer ended the transport without closing the session'), 'transport ended');
    }
    this.endTransport();
  };

  private readonly onTransportDrain = (): void => {
    this.blocked = false;
    this.scheduleFlush();
  };

  private readonly onTransportClose = (error?: GatesockError): void => {
    this.clock.clearTimer(this.lingerTimer);
    if (this.phase === 'closed') return;
    const message = error === undefined ? 'transport closed' : `transport closed: ${error.message}`;
    this.teardown(new SessionError('GS_ERR_SESSION_CLOSED', message, { cause: error }), message);
  };

  // -------------------------------------------------------------------------
  // Read loop: dispatch by frame kind

  private readonly onFrame = (frame: Frame): void => {
    if (this.phase === 'closed') {
      this.decoder.stop();
      return;
    }
    switch (frame.kind) {
      case 'DATA': {
        const conn = this.conns.get(frame.connId);
        if (conn === undefined) this.counters.droppedFrames++;
        else conn.handleData(frame.payload, frame.offset);
        return;
      }
      case 'WINDOW_UPDATE': {
        const conn = this.conns.get(frame.connId);
        if (conn === undefined) this.counters.droppedFrames++;
        else conn.handleWindowUpdate(frame.credit);
        return;
      }
      case 'CLOSE': {
        const conn = this.conns.get(frame.connId);
        if (conn === undefined) this.counters.droppedFrames++;
        else conn.handleFin();
        return;
      }
      case 'RESET': {
        const conn = this.conns.get(frame.connId);
        if (conn === undefined) this.counters.droppedFrames++;
        else conn.handleReset(frame.code, frame.reason);
        return;
      }
      case 'OPEN':
        return this.onOpen(frame.connId, frame.metadata);
      case 'PING':
        // A peer that pings but never reads would grow our queue; stop answering it.
        if (this.scheduler.urgentCount < MAX_URGENT_QUEUE) this.queueUrgent({ kind: 'PONG', opaque: frame.opaque.slice() });
        return;
      case 'PONG':
        return this.onPong(frame.opaque);
      case 'CONTROL':
        this.emit('control', frame.body);
        return;
      case 'GO_AWAY':
        return this.onGoAway(frame.code, frame.reason);
    }
  };

  private onOpen(id: number, metadata: Uint8Array): void {
    // yamux: the peer's IDs have the other parity; a wrong one, or an ID
    // still in use, is a protocol error for the whole session.
    const peerParity = this.role === 'initiator' ? 0 : 1;
    if (id % 2 !== peerParity) throw new FrameError('GS_ERR_UNEXPECTED_FRAME', `OPEN for connection ${id}: the ${this.role === 'initiator' ? 'responder' : 'initiator'} opens ${peerParity === 1 ? 'odd' : 'even'} IDs`);
    if (this.conns.has(id)) throw new FrameError('GS_ERR_UNEXPECTED_FRAME', `OPEN for connection ${id}, which is open`);
    if (this.phase !== 'open' || this.listenerCount('connection') === 0) {
      this.refuse(id, ResetCode.REFUSED, this.phase === 'open' ? 'no listener for connections' : 'session is closing');
      return;
    }
    if (this.conns.size >= this.options.maxConnections) {
      this.refuse(id, ResetCode.TOO_MANY_CONNECTIONS, `at maxConnections (${this.options.maxConnections})`);
      return;
    }
    const copy = metadata.slice();
    const conn = new MuxConnection((this.host ??= this.makeHost()), id, copy, 'recvOpen');
    this.conns.set(id, conn);
    this.counters.accepted++;
    this.emit('connection', conn, copy);
  }

  private refuse(id: number, code: number, reason: string): void {
    this.counters.refused++;
    // A peer that floods OPENs without reading our answers gets no more of them.
    if (this.scheduler.urgentCount < MAX_URGENT_QUEUE) this.queueUrgent({ kind: 'RESET', connId: id, code, reason });
  }

  private onPong(opaque: Uint8Array): void {
    const view = new DataView(opaque.buffer, opaque.byteOffset, opaque.byteLength);
    if (view.getUint32(0) !== 0) return; // not one of ours: ignore
    const id = view.getUint32(4);
    const pending = this.pings.get(id);
    if (pending === undefined) return;
    this.pings.delete(id);
    const rtt = this.clock.now() - pending.sentAt;
    this.rtt.sample(rtt);
    pending.resolve(rtt);
  }

  private onGoAway(code: number, reason: string): void {
    this.remoteGoAway = true;
    publish(sessionChannels.goAway, () => ({ session: this, direction: 'received', code, reason }));
    this.emit('goAway', code, reason);
    if (code !== GoAwayCode.NORMAL && this.phase !== 'closed') {
      const tail = reason === '' ? '' : `: ${reason}`;
      this.teardown(new SessionError('GS_ERR_PROTOCOL', `peer closed the session with GO_AWAY ${code}${tail}`), 'peer sent GO_AWAY with an error');
      this.endTransport();
    }
  }

  // -------------------------------------------------------------------------
  // Write loop

  private queueUrgent(frame: Frame): void {
    this.scheduler.pushUrgent(frame);
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.phase === 'closed') return;
    this.flushScheduled = true;
    queueMicrotask(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    if (this.phase === 'closed') return;
    if (!this.blocked && !this.scheduler.idle) {
      const owner = !sharedBatchBusy;
      const batch = owner ? (sharedBatch ??= new Uint8Array(BATCH_BYTES)) : new Uint8Array(BATCH_BYTES);
      if (owner) sharedBatchBusy = true;
      try {
        this.writeBatches(batch);
      } finally {
        if (owner) sharedBatchBusy = false;
      }
    }
    if (this.phase === 'closing' && this.conns.size === 0 && this.scheduler.idle) {
      // Every connection closed and every byte handed to the transport.
      this.teardown(undefined, 'close() finished');
      this.endTransport();
    }
  };

  private writeBatches(batch: Uint8Array): void {
    while (!this.blocked && !this.scheduler.idle && this.phase !== 'closed') {
      const out = this.scheduler.fill(batch);
      if (out.length === 0) break;
      this.counters.bytesOut += out.length;
      const spans = this.scheduler.clearSpans;
      for (const span of spans) if (span.data !== undefined) this.counters.bytesOut += span.clear;
      let ok: boolean;
      try {
        ok = spans.length > 0 ? this.splitTransport!.writeWithClear(out, spans) : this.transport.write(out);
      } catch (error) {
        const message = error instanceof Error ? error.message : String(error);
        this.teardown(new SessionError('GS_ERR_SESSION_CLOSED', `transport write failed: ${message}`, { cause: error }), 'transport write failed');
        return;
      }
      if (!ok) this.blocked = true;
    }
  }

  // -------------------------------------------------------------------------
  // Keepalive

  private armKeepalive(ms: number): void {
    this.keepaliveTimer = this.clock.setTimer(this.onKeepalive, Math.max(1, Math.ceil(ms)));
  }

  private readonly onKeepalive = (): void => {
    this.keepaliveTimer = undefined;
    if (this.phase === 'closed') return;
    const k = this.options.keepaliveMs;
    const idle = this.clock.now() - this.lastRecvAt;
    if (idle >= 2 * k) {
      publish(sessionChannels.dead, () => ({ session: this, idleMs: idle }));
      this.teardown(new SessionError('GS_ERR_SESSION_DEAD', `no traffic from the peer for ${Math.round(idle)} ms (2 × keepaliveMs ${k})`), 'peer dead');
      this.transport.destroy();
      return;
    }
    if (idle >= k && !this.keepalivePingOut) {
      this.keepalivePingOut = true;
      this.ping().then(
        () => (this.keepalivePingOut = false),
        () => {},
      );
    }
    this.armKeepalive((idle < k ? k : 2 * k) - idle);
  };

  // -------------------------------------------------------------------------
  // Ending

  /** A read-side failure: GO_AWAY with a code when we still can, then tear down. */
  private fail(error: unknown): void {
    if (this.phase === 'closed') return;
    let gs: GatesockError;
    let code: number;
    if (error instanceof FrameError) {
      gs = error;
      code = GoAwayCode.PROTOCOL_ERROR;
    } else if (error instanceof GatesockError) {
      gs = error;
      code = GoAwayCode.INTERNAL_ERROR;
    } else {
      // A listener of ours (data, connection, control) threw: not the peer's fault.
      const message = error instanceof Error ? error.message : String(error);
      gs = new SessionError('GS_ERR_SESSION_CLOSED', `session closed: a listener threw: ${message}`, { cause: error });
      code = GoAwayCode.INTERNAL_ERROR;
    }
    try {
      if (!this.transport.closed) this.transport.write(encodeFrame({ kind: 'GO_AWAY', code, reason: clipReason(gs.message) }));
    } catch {
      // The transport is gone; the GO_AWAY was a courtesy.
    }
    this.teardown(gs, `failed: ${gs.message}`);
    this.endTransport();
  }

  /** End our side of the transport, and destroy it if the peer has not closed within 2 × keepaliveMs. */
  private endTransport(): void {
    try {
      this.transport.end();
    } catch {
      // already closed
    }
    if (!this.transport.closed && this.lingerTimer === undefined) {
      this.lingerTimer = this.clock.setTimer(() => this.transport.destroy(), 2 * this.options.keepaliveMs);
    }
  }

  /** Enter `closed`: stop reading and writing, end every connection and ping, emit `close` on a microtask. */
  private teardown(error: GatesockError | undefined, why: string): void {
    if (this.phase === 'closed') return;
    this.phase = 'closed';
    this.failure = error;
    this.decoder.stop();
    this.scheduler.clear();
    this.clock.clearTimer(this.keepaliveTimer);
    this.keepaliveTimer = undefined;
    this.clock.clearTimer(this.graceTimer);
    this.transport.off('data', this.onTransportData);
    const connError = error ?? new SessionError('GS_ERR_SESSION_CLOSED', 'session closed');
    for (const conn of [...this.conns.values()]) conn.terminate(connError, `session ended: ${why}`);
    this.conns.clear();
    const pingError = error ?? new SessionError('GS_ERR_SESSION_CLOSED', 'session closed before the PONG');
    for (const ping of this.pings.values()) ping.reject(pingError);
    this.pings.clear();
    publish(sessionChannels.close, () => ({ session: this, error }));
    const waiters = this.closeWaiters;
    this.closeWaiters = [];
    // After the connections' own `close` events (also microtasks, queued above).
    queueMicrotask(() => {
      this.emit('close', error);
      for (const resolve of waiters) resolve();
    });
  }

  private makeHost(): ConnectionHost {
    return {
      options: this.options,
      clock: this.clock,
      transportInfo: this.transport.info,
      rttMs: () => this.rtt.rttMs,
      wantSend: (conn) => {
        if (this.phase === 'closed') return;
        this.scheduler.scheduleData(conn);
        this.scheduleFlush();
      },
      wantGrant: (conn) => {
        if (this.phase === 'closed') return;
        this.scheduler.scheduleGrant(conn);
        this.scheduleFlush();
      },
      sendReset: (connId, code, reason) => {
        if (this.phase !== 'closed') this.queueUrgent({ kind: 'RESET', connId, code, reason });
      },
      released: (conn) => {
        if (this.conns.get(conn.id) === conn) this.conns.delete(conn.id);
        this.scheduler.remove(conn);
        if (this.phase === 'closing') this.scheduleFlush();
      },
      traced: (conn, from: ConnState, to: ConnState, why) => {
        publish(sessionChannels.connState, () => ({ session: this, connId: conn.id, from, to, why }));
      },
      windowGrown: (conn, window) => {
        publish(sessionChannels.window, () => ({ session: this, connId: conn.id, window, rttMs: this.rtt.rttMs }));
      },
    };
  }
}
