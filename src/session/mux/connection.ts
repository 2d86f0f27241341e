/**
 * One multiplexed connection: a {@link ByteStream} carried by a
 * {@link MuxSession}, so anything that pipes byte streams can pipe it.
 *
 * Receive side: DATA is checked against the connection's receive window
 * (flow.ts) and either emitted at once (resumed, nothing queued) or queued
 * while paused; unread bytes never exceed the window, and credit is granted
 * back only as the application consumes, so a paused reader holds up only
 * this connection. Send side: `write()` copies into a queue the scheduler
 * drains within the peer's credit; `write()` returns false past
 * `connectionHighWaterMark` and `drain` follows.
 *
 * Every state change goes through {@link MuxConnection.setState}, which traces
 * it on `gatesock:session:conn-state`. `end` and `close` are emitted on a
 * microtask, never from inside the session's read or write loop.
 */
import { EventEmitter } from 'eventemitter3';
import { GatesockError, SessionError, TransportError } from '../../errors/index.js';
import type { ByteStream, ByteStreamEvents, TransportInfo } from '../../transport/index.js';
import { INITIAL_WINDOW, MAX_REASON_LEN, ResetCode } from '../frame.js';
import { ReceiveWindow } from './flow.js';
import type { MuxClock, MuxOptions } from './options.js';
import { canReceive, canSend, ConnState, isTerminal, transition, type ConnEvent } from './state.js';

/**
 * What a connection needs from its session.
 * @internal
 */
export interface ConnectionHost {
  readonly options: Readonly<MuxOptions>;
  readonly clock: MuxClock;
  readonly transportInfo: TransportInfo;
  /** Smoothed RTT in ms, 0 if unknown. */
  rttMs(): number;
  /** The connection has data (or a CLOSE) that may go now. */
  wantSend(conn: MuxConnection): void;
  /** The connection owes the peer a WINDOW_UPDATE. */
  wantGrant(conn: MuxConnection): void;
  /** Send RESET for the connection, ahead of data. */
  sendReset(connId: number, code: number, reason: string): void;
  /** The connection reached a terminal state: forget its ID. */
  released(conn: MuxConnection): void;
  /** Trace a state change. */
  traced(conn: MuxConnection, from: ConnState, to: ConnState, why: string): void;
  /** Trace an autotuned window. */
  windowGrown(conn: MuxConnection, window: number): void;
}

/**
 * Counters of one connection.
 * @public
 */
export interface MuxConnectionStats {
  /** Payload bytes received from the peer. */
  readonly bytesReceived: number;
  /** Payload bytes sent to the peer. */
  readonly bytesSent: number;
  /** Current receive window (autotuned), in bytes. */
  readonly receiveWindow: number;
  /** Bytes received but not yet read by the application (≤ receiveWindow). */
  readonly bufferedBytes: number;
  /** Bytes we may still send before the peer grants more. */
  readonly sendCredit: number;
  /** Bytes written by the application and not yet sent. */
  readonly queuedBytes: number;
}

const EMPTY = new Uint8Array(0);
const utf8 = new TextEncoder();

/** Cut `reason` to at most MAX_REASON_LEN UTF-8 bytes without splitting a character. */
export function clipReason(reason: string): string {
  if (reason.length * 3 <= MAX_REASON_LEN) return reason;
  let out = reason;
  while (utf8.encode(out).length > MAX_REASON_LEN) out = out.slice(0, Math.floor(out.length * 0.9));
  // A cut may leave a lone high surrogate; drop it.
  const last = out.charCodeAt(out.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? out.slice(0, -1) : out;
}

/**
 * The local error for a RESET the peer sent.
 * @internal
 */
export function resetError(code: number, reason: string, connId: number): SessionError {
  const tail = reason === '' ? '' : `: ${reason}`;
  switch (code) {
    case ResetCode.TOO_MANY_CONNECTIONS:
      return new SessionError('GS_ERR_TOO_MANY_CONNECTIONS', `connection ${connId} refused: peer is at its connection limit${tail}`);
    case ResetCode.REFUSED:
      return new SessionError('GS_ERR_CONN_RESET', `connection ${connId} refused by peer${tail}`);
    case ResetCode.PROTOCOL:
      return new SessionError('GS_ERR_PROTOCOL', `connection ${connId} reset by peer for a protocol violation${tail}`);
    default:
      return new SessionError('GS_ERR_CONN_RESET', `connection ${connId} reset by peer (code ${code})${tail}`);
  }
}

// MuxConnection is also the scheduler's SendSource (the `@internal` members
// below). It does not declare `implements SendSource`, so the public
// declaration names no internal type; the session passes connections to the
// scheduler, which type-checks them against SendSource there.
/**
 * A connection multiplexed over a {@link MuxSession}. Implements
 * {@link ByteStream}; starts paused like every ByteStream.
 *
 * `write()` after `end()`, after a reset or after close throws
 * {@link TransportError} `GS_ERR_TRANSPORT_CLOSED` as every ByteStream does;
 * after a reset its `cause` is the error that reset the connection.
 * @public
 */
export class MuxConnection extends EventEmitter<ByteStreamEvents> implements ByteStream {
  /** Connection ID: odd when the initiator opened it, even for the responder. */
  readonly id: number;
  /** OPEN metadata: what we sent, or what the peer sent. */
  readonly metadata: Uint8Array;
  /**
   * Endpoint description: kind `mux`; `local` and `remote` are the session
   * transport's (its kind when unknown) followed by `#` and the connection ID.
   */
  readonly info: TransportInfo;

  private connState: ConnState = ConnState.Init;
  private readonly host: ConnectionHost;
  private failure: GatesockError | undefined;
  private closeEmitted = false;
  private closeScheduled = false;

  // Receive side
  private readonly recv: ReceiveWindow;
  private inbox: Uint8Array[] = [];
  private inboxHead = 0;
  private inboxBytes = 0;
  private paused = true;
  private remoteEnded = false;
  private endEmitted = false;
  private flushScheduled = false;
  private received = 0;
  private pendingGrant = 0;

  // Send side
  private queue: Uint8Array[] = [];
  private queueHead = 0;
  private queueOffset = 0;
  private queued = 0;
  private credit = INITIAL_WINDOW;
  private sent = 0;
  private finRequested = false;
  private finSent = false;
  private wantDrain = false;

  // Close timer
  private closeTimer: unknown;
  private lastPeerFrameAt = 0;

  /**
   * Clear payload (pass-through), explicit state, one way each:
   * - `payloadMode`: `sealed` (the default: payload only inside the hop
   *   encryption, both ways) → `clear` ({@link MuxConnection.enableClearPayload}:
   *   both ends of the hop agreed; payload may now arrive outside it);
   * - `clearSendFrom`: the offset in our outgoing bytes from which they go
   *   outside the hop encryption ({@link MuxConnection.startClearPayload});
   *   Infinity until then. Bytes before it always go sealed.
   * - `clearReceivedFrom`: the offset in the incoming bytes of the first one
   *   that arrived outside the hop encryption; Infinity until then. After
   *   it, sealed DATA is a protocol error (the peer switches once).
   */
  private payloadMode: 'sealed' | 'clear' = 'sealed';
  private clearSendFrom = Infinity;
  private clearReceiveFrom = Infinity;

  /** @internal SendSource bookkeeping. */
  inRing = false;
  /** @internal SendSource bookkeeping. */
  grantQueued = false;
  /** @internal SendSource bookkeeping. */
  turnLeft = 0;

  /** @internal Created by {@link MuxSession} only. */
  constructor(host: ConnectionHost, id: number, metadata: Uint8Array, event: 'sendOpen' | 'recvOpen') {
    super();
    this.host = host;
    this.id = id;
    this.metadata = metadata;
    const t = host.transportInfo;
    this.info = { kind: 'mux', local: `${t.local ?? t.kind}#${id}`, remote: `${t.remote ?? t.kind}#${id}` };
    this.recv = new ReceiveWindow(host.options.maxWindow, host.clock.now());
    this.apply(event, event === 'sendOpen' ? 'open() sent OPEN' : 'peer sent OPEN');
  }

  /**
   * True once {@link MuxConnection.enableClearPayload} was called: DATA
   * that arrives with its payload outside the hop encryption is accepted,
   * and ours may go so after {@link MuxConnection.startClearPayload}. While
   * false, such DATA resets the connection (`GS_ERR_PROTOCOL`) and none of
   * it is delivered.
   */
  get clearPayload(): boolean {
    return this.payloadMode === 'clear';
  }

  /**
   * Both ends of the hop agreed that this connection carries end-to-end
   * ciphertext (the relay's end-to-end layer) which the hop need not
   * encrypt again (pass-through, as TURN relays do): accept such payload
   * from the peer from now on. Only the relay layer calls it, when the
   * connection opens. It cannot be undone.
   */
  enableClearPayload(): void {
    this.payloadMode = 'clear';
  }

  /**
   * Send every byte written from now on outside the hop encryption (the
   * session's transport sends split records: header sealed, payload as it
   * is); bytes written before stay sealed. Does nothing unless
   * {@link MuxConnection.enableClearPayload} was called, or once started.
   * An endpoint calls it once its end-to-end handshake is done, so only
   * end-to-end transport ciphertext ever goes clear; a relay calls it
   * before forwarding the first byte that arrived clear.
   */
  startClearPayload(): void {
    if (this.payloadMode === 'clear' && this.clearSendFrom === Infinity) this.clearSendFrom = this.sent + this.queued;
  }

  /**
   * The offset in this connection's incoming bytes of the first one that
   * arrived outside the hop encryption; Infinity while none has. Every
   * later byte arrives so too.
   */
  get clearReceivedFrom(): number {
    return this.clearReceiveFrom;
  }

  /** Current protocol state. */
  get state(): ConnState {
    return this.connState;
  }

  /** True once `close` has been emitted. */
  get closed(): boolean {
    return this.closeEmitted;
  }

  /** The error the connection ended with, if it ended abnormally. */
  get error(): GatesockError | undefined {
    return this.failure;
  }

  /** Counters and flow-control state, for diagnostics and tests. */
  get stats(): MuxConnectionStats {
    return {
      bytesReceived: this.received,
      bytesSent: this.sent,
      receiveWindow: this.recv.window,
      bufferedBytes: this.inboxBytes,
      sendCredit: this.credit,
      queuedBytes: this.queued,
    };
  }

  // -------------------------------------------------------------------------
  // ByteStream

  /**
   * Queue a copy of `chunk` for the peer; it is sent as the peer's credit
   * allows. Returns false once `connectionHighWaterMark` bytes are queued
   * (wait for `drain`); throws `GS_ERR_TRANSPORT_CLOSED` after `end()`, a
   * reset or close.
   */
  write(chunk: Uint8Array): boolean {
    return this.enqueue(chunk, true);
  }

  /**
   * As {@link MuxConnection.write}, but `chunk` is handed over and queued
   * without a copy: the caller must never modify it again. A relay forwards
   * the chunks its `data` listener owns this way.
   */
  writeOwned(chunk: Uint8Array): boolean {
    return this.enqueue(chunk, false);
  }

  private enqueue(chunk: Uint8Array, copy: boolean): boolean {
    if (this.finRequested || !canSend(this.connState) || this.closeEmitted) {
      // The ByteStream contract's code, so code that pipes streams handles a
      // connection like any transport; the reset or session error is the cause.
      const why = this.finRequested ? 'end' : this.failure === undefined ? 'close' : `reset (${this.failure.message})`;
      throw new TransportError('GS_ERR_TRANSPORT_CLOSED', `connection ${this.id}: write after ${why}`, { cause: this.failure });
    }
    if (chunk.length === 0) return true;
    // The ByteStream contract lets the caller of write() reuse `chunk` once we return (writeOwned: it gave it up).
    // Queued, not sent from here: the write loop runs on the next microtask
    // and takes turns between every connection with data, so a connection
    // that writes first does not get the link to itself (fair sending).
    this.queue.push(copy ? chunk.slice() : chunk);
    this.queued += chunk.length;
    if (this.credit > 0) this.host.wantSend(this);
    if (this.queued >= this.host.options.connectionHighWaterMark) {
      this.wantDrain = true;
      return false;
    }
    return true;
  }

  /** Half-close: CLOSE goes to the peer after the last queued byte. */
  end(): void {
    if (this.finRequested || !canSend(this.connState)) return;
    this.finRequested = true;
    // The CLOSE needs no credit; the scheduler sends it after the last queued byte.
    this.host.wantSend(this);
  }

  /**
   * Abort both directions: RESET goes to the peer (its side closes with
   * `GS_ERR_CONN_RESET`), queued and unread bytes are dropped, and `close`
   * is emitted before this returns, with `error` as a GatesockError.
   */
  destroy(error?: Error): void {
    if (this.closeEmitted) return;
    const local = error === undefined ? undefined : error instanceof GatesockError ? error : new SessionError('GS_ERR_CONN_RESET', `connection ${this.id} destroyed: ${error.message}`, { cause: error });
    if (!isTerminal(this.connState)) {
      this.host.sendReset(this.id, ResetCode.CANCEL, clipReason(error?.message ?? ''));
      this.failure ??= local;
      this.setState(ConnState.Reset, 'destroy() called');
    }
    this.dropInbox();
    this.emitClose(this.failure ?? local);
  }

  /**
   * Stop emitting `data`. Arriving bytes are buffered within the receive
   * window and no credit is granted back, so only this connection stalls.
   */
  pause(): void {
    this.paused = true;
  }

  /** Start or continue emitting `data`; buffered bytes are delivered on a microtask. */
  resume(): void {
    if (this.closeEmitted) return;
    this.paused = false;
    this.scheduleFlush();
  }

  // -------------------------------------------------------------------------
  // Frames from the peer (called by the session)

  /** @internal DATA arrived. */
  handleData(payload: Uint8Array, offset: bigint | undefined, clear = false): void {
    this.peerActivity();
    if (!canReceive(this.connState)) return this.protocolReset('DATA after CLOSE');
    if (clear) {
      // The session checked clearPayload before; the first clear byte is where the peer switched.
      if (this.clearReceiveFrom === Infinity) this.clearReceiveFrom = this.received;
    } else if (this.clearReceiveFrom !== Infinity) {
      return this.protocolReset('sealed DATA after clear payload started');
    }
    if (offset !== undefined && offset !== BigInt(this.received)) {
      return this.protocolReset(`DATA offset ${offset}, expected ${this.received}`);
    }
    if (!this.recv.onReceive(payload.length)) {
      return this.protocolReset(`peer sent ${payload.length} bytes with ${this.recv.credit} bytes of window left`);
    }
    this.apply('recvFrame', 'first DATA acknowledges OPEN');
    this.received += payload.length;
    if (payload.length === 0) return;
    if (!this.paused && this.inboxBytes === 0 && !this.flushScheduled) {
      this.emit('data', payload);
      this.consumed(payload.length);
      return;
    }
    // A view into a large transport chunk would pin all of it; keep a copy
    // so buffered memory is bounded by the window, not by chunk sizes.
    const kept = payload.byteLength * 2 < payload.buffer.byteLength ? payload.slice() : payload;
    this.inbox.push(kept);
    this.inboxBytes += kept.length;
    if (!this.paused) this.scheduleFlush();
  }

  /** @internal WINDOW_UPDATE arrived. */
  handleWindowUpdate(credit: number): void {
    this.peerActivity();
    if (isTerminal(this.connState)) return;
    if (this.credit + credit > 0xffffffff) return this.protocolReset('send window above 2^32 - 1');
    this.apply('recvFrame', 'first WINDOW_UPDATE acknowledges OPEN');
    const was = this.credit;
    this.credit += credit;
    if (was === 0 && this.queued > 0) this.host.wantSend(this);
  }

  /** @internal CLOSE arrived. */
  handleFin(): void {
    this.peerActivity();
    const next = transition(this.connState, 'recvFin');
    if (next === undefined) return this.protocolReset(`CLOSE in state ${this.connState}`);
    this.setState(next, 'peer sent CLOSE');
    this.remoteEnded = true;
    this.scheduleFlush();
  }

  /** @internal RESET arrived. */
  handleReset(code: number, reason: string): void {
    if (isTerminal(this.connState)) return;
    this.abort(resetError(code, reason, this.id), `peer sent RESET ${code}`);
  }

  /** @internal The session ended: end this connection with `error`. */
  terminate(error: GatesockError, why: string): void {
    if (!isTerminal(this.connState)) this.abort(error, why);
  }

  // -------------------------------------------------------------------------
  // SendSource (called by the scheduler inside the session's write loop)

  /** @internal Payload bytes that may go now: queued bytes within the send credit. */
  sendable(): number {
    return this.credit < this.queued ? this.credit : this.queued;
  }

  /** @internal Bytes to send sealed before the clear ones start (≤ 0: the next go clear; Infinity: never). */
  sealedLeft(): number {
    return this.clearSendFrom - this.sent;
  }

  /** @internal Copy the next `n` queued bytes into `out` at `at`, consuming them and their credit. */
  take(out: Uint8Array, at: number, n: number): void {
    this.consume(n, (piece) => {
      out.set(piece, at);
      at += piece.length;
    });
  }

  /**
   * @internal The next `n` (≤ sendable()) payload bytes as views of the
   * queued chunks, consuming them and their credit: for a clear DATA frame,
   * whose payload the transport copies once, straight from here. Queued
   * chunks are copies or handed over (writeOwned), so nothing changes them.
   */
  takeViews(n: number): Uint8Array[] {
    const pieces: Uint8Array[] = [];
    this.consume(n, (piece) => pieces.push(piece));
    return pieces;
  }

  /** Hand the next `n` queued bytes to `visit` in pieces, then account for them as sent. */
  private consume(n: number, visit: (piece: Uint8Array) => void): void {
    let left = n;
    while (left > 0) {
      const chunk = this.queue[this.queueHead]!;
      const avail = chunk.length - this.queueOffset;
      const k = avail < left ? avail : left;
      visit(k === chunk.length ? chunk : chunk.subarray(this.queueOffset, this.queueOffset + k));
      left -= k;
      this.queueOffset += k;
      if (this.queueOffset === chunk.length) {
        this.queue[this.queueHead] = EMPTY;
        this.queueHead++;
        this.queueOffset = 0;
      }
    }
    if (this.queueHead === this.queue.length) {
      this.queue.length = 0;
      this.queueHead = 0;
    } else if (this.queueHead > 256) {
      this.queue = this.queue.slice(this.queueHead);
      this.queueHead = 0;
    }
    this.queued -= n;
    this.credit -= n;
    this.sent += n;
    this.apply('sendFrame', 'first DATA acknowledges OPEN');
    if (this.wantDrain && this.queued < this.host.options.connectionHighWaterMark) {
      this.wantDrain = false;
      queueMicrotask(() => {
        if (!this.closeEmitted && !isTerminal(this.connState)) this.emit('drain');
      });
    }
  }

  /** @internal True when `end()` was called, everything queued is sent and the CLOSE is due. */
  finDue(): boolean {
    return this.finRequested && !this.finSent && this.queued === 0 && canSend(this.connState);
  }

  /** @internal The CLOSE was written into the batch. */
  finTaken(): void {
    this.finSent = true;
    const next = transition(this.connState, 'sendFin');
    if (next === undefined) return;
    this.setState(next, 'sent CLOSE after the last queued byte');
    if (next === ConnState.LocalClosed) this.armCloseTimer();
  }

  /** @internal Credit owed to the peer in a WINDOW_UPDATE, taken (and zeroed). */
  takeGrant(): number {
    const g = this.pendingGrant;
    this.pendingGrant = 0;
    if (g > 0) this.apply('sendFrame', 'first WINDOW_UPDATE acknowledges OPEN');
    return canReceive(this.connState) ? g : 0;
  }

  // -------------------------------------------------------------------------
  // State

  /**
   * The one place the state changes. Traces every change; on reaching a
   * terminal state, releases the connection ID and schedules `close`.
   */
  private setState(next: ConnState, why: string): void {
    const from = this.connState;
    if (from === next) return;
    this.connState = next;
    this.host.traced(this, from, next, why);
    if (isTerminal(next)) {
      this.clearCloseTimer();
      this.host.released(this);
      if (next === ConnState.Reset) {
        this.dropInbox();
        this.queue = [];
        this.queueHead = 0;
        this.queueOffset = 0;
        this.queued = 0;
        this.pendingGrant = 0;
        this.scheduleClose(this.failure);
      } else if (this.endEmitted) {
        this.scheduleClose(undefined);
      }
    }
  }

  /** Apply an event that may or may not change the state (acks). */
  private apply(event: ConnEvent, why: string): void {
    if (this.connState === ConnState.Established) return; // the hot path: DATA both ways changes nothing
    const next = transition(this.connState, event);
    if (next !== undefined) this.setState(next, why);
  }

  private abort(error: GatesockError | undefined, why: string): void {
    this.failure ??= error;
    this.setState(ConnState.Reset, why);
  }

  /** The peer broke this connection's rules: reset it, not the session. */
  private protocolReset(reason: string): void {
    this.kill(ResetCode.PROTOCOL, reason, new SessionError('GS_ERR_PROTOCOL', `connection ${this.id}: ${reason}`), `protocol violation: ${reason}`);
  }

  /** @internal Reset from our side: RESET `code` to the peer, `error` locally. */
  kill(code: number, reason: string, error: GatesockError, why: string): void {
    if (isTerminal(this.connState)) return;
    this.host.sendReset(this.id, code, clipReason(reason));
    this.abort(error, why);
  }

  // -------------------------------------------------------------------------
  // Close timer (yamux's StreamCloseTimeout)

  private peerActivity(): void {
    if (this.closeTimer !== undefined) this.lastPeerFrameAt = this.host.clock.now();
  }

  private armCloseTimer(): void {
    const timeout = this.host.options.closeTimeoutMs;
    if (timeout === 0) return;
    this.lastPeerFrameAt = this.host.clock.now();
    this.closeTimer = this.host.clock.setTimer(this.onCloseTimer, timeout);
  }

  private readonly onCloseTimer = (): void => {
    this.closeTimer = undefined;
    if (this.connState !== ConnState.LocalClosed) return;
    const timeout = this.host.options.closeTimeoutMs;
    const silent = this.host.clock.now() - this.lastPeerFrameAt;
    if (silent < timeout) {
      // The peer was active meanwhile: wait out the rest.
      this.closeTimer = this.host.clock.setTimer(this.onCloseTimer, timeout - silent);
      return;
    }
    this.kill(
      ResetCode.CLOSE_TIMEOUT,
      `no CLOSE within ${timeout} ms`,
      new SessionError('GS_ERR_CONN_RESET', `connection ${this.id}: peer did not close within ${timeout} ms of our CLOSE`),
      'close timer fired',
    );
  };

  private clearCloseTimer(): void {
    if (this.closeTimer === undefined) return;
    this.host.clock.clearTimer(this.closeTimer);
    this.closeTimer = undefined;
  }

  // -------------------------------------------------------------------------
  // Reading

  private consumed(n: number): void {
    const before = this.recv.window;
    const grant = this.recv.onConsume(n, this.host.clock.now(), this.host.rttMs());
    if (grant === 0 || !canReceive(this.connState)) return;
    if (this.recv.window !== before) this.host.windowGrown(this, this.recv.window);
    this.pendingGrant += grant;
    this.host.wantGrant(this);
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closeEmitted) return;
    this.flushScheduled = true;
    queueMicrotask(this.flush);
  }

  private readonly flush = (): void => {
    this.flushScheduled = false;
    // A `data` listener may pause or destroy; re-check each time.
    while (!this.paused && !this.closeEmitted && this.inboxHead < this.inbox.length) {
      const chunk = this.inbox[this.inboxHead]!;
      this.inbox[this.inboxHead] = EMPTY;
      this.inboxHead++;
      this.inboxBytes -= chunk.length;
      this.emit('data', chunk);
      this.consumed(chunk.length);
    }
    if (this.inboxHead === this.inbox.length) {
      this.inbox.length = 0;
      this.inboxHead = 0;
    }
    if (this.closeEmitted || this.paused) return;
    if (this.remoteEnded && this.inboxBytes === 0 && !this.endEmitted) {
      this.endEmitted = true;
      this.emit('end');
      if (this.connState === ConnState.Closed) this.scheduleClose(undefined);
    }
  };

  private dropInbox(): void {
    this.inbox = [];
    this.inboxHead = 0;
    this.inboxBytes = 0;
  }

  /** Emit `close` on a microtask: never from inside the session's read or write loop. */
  private scheduleClose(error: GatesockError | undefined): void {
    if (this.closeScheduled) return;
    this.closeScheduled = true;
    queueMicrotask(() => this.emitClose(error));
  }

  private emitClose(error: GatesockError | undefined): void {
    if (this.closeEmitted) return;
    this.closeScheduled = true;
    this.closeEmitted = true;
    this.emit('close', error);
  }
}
