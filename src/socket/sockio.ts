/**
 * SockIo: one connection of the socket API (the seed's `SOCKIO`, paper
 * §4.5.2–4.5.11), over any {@link ByteStream}.
 *
 * Receiving: the SockIo resumes its stream at once and keeps what arrives in
 * its own buffer, in order, until `recv`/`recvAsync` (or an adapter) takes
 * it. Once the buffer holds `recvHighWaterMark` bytes it pauses the stream,
 * which stops reading from the transport, so the peer's writes see
 * backpressure; taking bytes below the mark resumes it.
 *
 * Sending: the stream's `write()` takes whole chunks and only says afterwards
 * that it is past its high-water mark. A send therefore hands the stream
 * pieces of at most {@link SEND_PIECE_BYTES} while it keeps saying yes, and
 * reports how many bytes it handed over; once the stream says no, further
 * sends accept nothing until `drain`. Bytes a send did not accept were not
 * sent: a timeout loses and duplicates nothing.
 */
import { GatesockError, SocketError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import type { ByteStream, TransportInfo } from '../transport/byte-stream.js';
import type { Duplex } from 'node:stream';
import type { ReadableStream, WritableStream } from 'node:stream/web';
import { coreChunks, coreToDuplex, coreToReadable, coreToWritable, type SockIoCore } from './adapters.js';
import { SockEvent } from './event.js';

/**
 * Returned by {@link SockIo.sendAsync} and {@link SockIo.recvAsync} when the
 * call would have to wait (the seed's `0xFFFFFFFF`).
 *
 * A symbol rather than `0xFFFFFFFF`: in JavaScript that number is an
 * ordinary value that a byte count could one day equal, and nothing forces
 * a caller to test for it; a symbol can never be mistaken for a count or for
 * data, and TypeScript makes the caller narrow it away before using the
 * result. It is registered (`Symbol.for`), so the ESM and CommonJS copies of
 * gatesock agree on it.
 *
 * @public
 */
export const WOULD_BLOCK: unique symbol = Symbol.for('gatesock.socket.WOULD_BLOCK');

/**
 * The type of {@link WOULD_BLOCK}.
 * @public
 */
export type WouldBlock = typeof WOULD_BLOCK;

/**
 * Largest piece a send hands the stream in one `write()`, in bytes: it bounds
 * how far one send can overshoot the stream's high-water mark.
 * @public
 */
export const SEND_PIECE_BYTES = 64 * 1024;

/** Default of {@link SockIoOptions.recvHighWaterMark}. */
const DEFAULT_RECV_HIGH_WATER_MARK = 256 * 1024;
/** Default of {@link SockIoOptions.lingerMs}. */
const DEFAULT_LINGER_MS = 30_000;
/** Default and largest `max` of a recv. */
const DEFAULT_RECV_MAX = 64 * 1024;
/** Node's timers overflow past 2^31 − 1 ms and would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * What is known about the remote end of a {@link SockIo}, given by whoever
 * made the connection (the relay fills in the connection ID and the peer's
 * MSID; `transport` defaults to the stream's own description).
 * @public
 */
export interface SockIoInfo {
  /** Connection ID the gateway allocated within the server session. */
  readonly connectionId?: number;
  /** The peer's machine ID (`MSID-…`), when known. */
  readonly peerMsid?: string;
  /** The PCID the connection was made to, when known. */
  readonly pcid?: string;
  /** The carrying stream's endpoints. */
  readonly transport?: TransportInfo;
  /** Anything else the creator wants to attach. */
  readonly [key: string]: unknown;
}

/**
 * Options of {@link SockIo.fromStream}.
 * @public
 */
export interface SockIoOptions {
  /**
   * Bytes received and not yet read that the SockIo buffers before it pauses
   * the stream (and so stops reading from the peer). Resumes once reading
   * brings the buffer below it again. Default 262 144 (256 KiB).
   */
  recvHighWaterMark?: number;
  /**
   * After `disconnect()`, how long to wait, in milliseconds, for the peer to
   * finish its side before the stream is destroyed. Default 30 000.
   */
  lingerMs?: number;
}

function notConnected(message: string, cause?: GatesockError): SocketError {
  return new SocketError('GS_ERR_NOT_CONNECTED', message, cause === undefined ? undefined : { cause });
}

/**
 * One connection of the socket API: blocking-style `send`/`recv` with an
 * optional timeout, non-blocking `sendAsync`/`recvAsync`, a readiness
 * {@link SockEvent} to serve many sockets from one loop, and adapters to
 * Node and WHATWG streams and async iteration.
 *
 * `serverStart` hands one to its accept callback and `clientConnect`
 * resolves with one; {@link SockIo.fromStream} wraps any other
 * {@link ByteStream}.
 *
 * Use one consumer style per direction at a time: `recv`/`recvAsync`, or the
 * Duplex, or `readable`, or async iteration, for reading (each takes bytes
 * from the same buffer, so two would split the data between them); the same
 * for writing. Keep one `send` in flight at a time so that the order of
 * bytes is the order of calls.
 *
 * @example
 * ```ts
 * const sock = await clientConnect('my-server', options);
 * sock.setTimeout(5000);                       // send/recv reject GS_ERR_TIMEOUT after 5 s
 * const data = new TextEncoder().encode('hello');
 * for (let off = 0; off < data.length; ) off += await sock.send(data.subarray(off));
 * const reply = await sock.recv(1024);         // 1..1024 bytes, or empty at end of stream
 * await sock.disconnect();
 * ```
 * @public
 */
export class SockIo implements AsyncIterable<Uint8Array> {
  /** What is known about the remote end; frozen. */
  readonly info: Readonly<SockIoInfo>;

  readonly #stream: ByteStream;
  readonly #highWaterMark: number;
  readonly #lingerMs: number;
  #event = new SockEvent();
  #timeoutMs = 0;

  // Receive buffer: chunks[head] is the oldest, of which headOffset bytes were taken.
  #chunks: Uint8Array[] = [];
  #head = 0;
  #headOffset = 0;
  #buffered = 0;
  #pausedByUs = false;

  #remoteEnded = false;
  #localEnded = false;
  #disconnected = false;
  #closed = false;
  #closeError: GatesockError | undefined;
  #writeBlocked = false;
  #lingerTimer: ReturnType<typeof setTimeout> | undefined;

  /** Blocked recv/send calls, woken (all of them) to look again after any change. */
  readonly #readWaiters = new Set<() => void>();
  readonly #writeWaiters = new Set<() => void>();

  readonly #whenClosed: Promise<void>;
  #resolveClosed!: () => void;

  #duplex: Duplex | undefined;
  #readable: ReadableStream<Uint8Array> | undefined;
  #writable: WritableStream<Uint8Array> | undefined;

  private constructor(stream: ByteStream, info: SockIoInfo | undefined, options: SockIoOptions) {
    const highWaterMark = options.recvHighWaterMark ?? DEFAULT_RECV_HIGH_WATER_MARK;
    const lingerMs = options.lingerMs ?? DEFAULT_LINGER_MS;
    checkOption(Number.isSafeInteger(highWaterMark) && highWaterMark > 0, 'recvHighWaterMark', 'must be a positive integer');
    checkOption(Number.isInteger(lingerMs) && lingerMs > 0 && lingerMs <= MAX_TIMER_MS, 'lingerMs', `must be an integer from 1 to ${MAX_TIMER_MS}`);
    this.#stream = stream;
    this.#highWaterMark = highWaterMark;
    this.#lingerMs = lingerMs;
    this.info = Object.freeze({ transport: stream.info, ...info });
    this.#whenClosed = new Promise((resolve) => (this.#resolveClosed = resolve));

    stream.on('data', this.#onData);
    stream.on('end', this.#onEnd);
    stream.on('drain', this.#onDrain);
    stream.on('close', this.#onClose);
    if (stream.closed) this.#onClose();
    else stream.resume();
  }

  /**
   * Wrap a connected {@link ByteStream}. The SockIo takes the stream over:
   * it attaches its listeners and resumes it, so nobody else should read
   * from or write to it afterwards.
   *
   * @param stream - A connected stream (TCP, secure channel, multiplexed connection, …).
   * @param info - What is known about the remote end; copied and frozen.
   * @param options - Buffering and linger options.
   */
  static fromStream(stream: ByteStream, info?: SockIoInfo, options: SockIoOptions = {}): SockIo {
    checkOption(typeof stream === 'object' && stream !== null && typeof stream.write === 'function', 'stream', 'must be a ByteStream');
    return new SockIo(stream, info, options);
  }

  /**
   * Send some of `data`: resolves with the number of bytes accepted, at
   * least 1 (0 only for an empty `data`). Accepts what fits under the
   * stream's backpressure, waiting for room when nothing does; bytes not
   * accepted were not sent, so send the rest with another call.
   *
   * Rejects with `SocketError` `GS_ERR_TIMEOUT` when a timeout is set
   * ({@link SockIo.setTimeout}) and passes with nothing accepted, and with
   * `GS_ERR_NOT_CONNECTED` after `disconnect()`, `end()` or the connection's
   * close.
   */
  async send(data: Uint8Array): Promise<number> {
    checkData(data);
    return this.#block(() => this.#sendNow(data), this.#writeWaiters, this.#timeoutMs, 'send');
  }

  /**
   * Receive: resolves with at least 1 and at most `max` bytes, waiting for
   * them if none are buffered, or with an empty array at end of stream (the
   * peer ended or disconnected; every later call gives empty again). Bytes
   * beyond `max` stay buffered, in order.
   *
   * Rejects with `SocketError` `GS_ERR_TIMEOUT` when a timeout is set and
   * passes with nothing received (the socket stays usable), and with
   * `GS_ERR_NOT_CONNECTED` after `disconnect()`, or once the connection
   * closed without an end of stream (a reset) and the buffer is empty.
   *
   * @param max - Most bytes to return, a positive integer. Default 65 536.
   */
  async recv(max: number = DEFAULT_RECV_MAX): Promise<Uint8Array> {
    checkMax(max);
    return this.#block(() => this.#recvNow(max), this.#readWaiters, this.#timeoutMs, 'recv');
  }

  /**
   * Send without waiting: the number of bytes accepted (at least 1; 0 only
   * for an empty `data`), or {@link WOULD_BLOCK} when the stream has no room
   * now. The event ({@link SockIo.getEvent}) is set when room appears.
   *
   * @throws `SocketError` `GS_ERR_NOT_CONNECTED` after `disconnect()`,
   *   `end()` or the connection's close.
   */
  sendAsync(data: Uint8Array): number | WouldBlock {
    checkData(data);
    return this.#sendNow(data);
  }

  /**
   * Receive without waiting: 1 to `max` buffered bytes, an empty array at end
   * of stream, or {@link WOULD_BLOCK} when nothing is buffered yet. The event
   * is set when data (or the end) arrives.
   *
   * @param max - Most bytes to return, a positive integer. Default 65 536.
   * @throws `SocketError` `GS_ERR_NOT_CONNECTED` after `disconnect()`, or once
   *   the connection was reset and the buffer is empty.
   */
  recvAsync(max: number = DEFAULT_RECV_MAX): Uint8Array | WouldBlock {
    checkMax(max);
    return this.#recvNow(max);
  }

  /**
   * The readiness event (the seed's `SockIoGetSockIoEvent`). It is set
   * whenever the socket may have become readable (data or end arrived),
   * writable (room after backpressure) or closed. It is an auto-reset
   * event: a wait consumes the signal, so after waking, call
   * `recvAsync`/`sendAsync` until they return {@link WOULD_BLOCK}.
   */
  getEvent(): SockEvent {
    return this.#event;
  }

  /**
   * Signal `event` instead of this socket's own event from now on, so that
   * many sockets can share one event (the seed's `SockIoReplaceIoEvent`).
   * The new event is set once at once, so a loop waiting on it looks at this
   * socket at least once (it may already hold data).
   */
  replaceEvent(event: SockEvent): void {
    checkOption(event instanceof SockEvent, 'event', 'must be a SockEvent');
    this.#event = event;
    event.set();
  }

  /**
   * Time limit of each later `send` and `recv` call, in milliseconds, counted
   * from the call; 0 (the default) waits for ever, as in the seed. The
   * non-blocking calls and the stream adapters do not use it.
   */
  setTimeout(ms: number): void {
    checkOption(Number.isInteger(ms) && ms >= 0 && ms <= MAX_TIMER_MS, 'ms', `must be an integer from 0 (no timeout) to ${MAX_TIMER_MS}`);
    this.#timeoutMs = ms;
  }

  /**
   * False after `disconnect()` or once the connection closed. A connection
   * whose peer ended its side is still connected (`recv` gives end of
   * stream, `send` still works).
   */
  get isConnected(): boolean {
    return !this.#disconnected && !this.#closed;
  }

  /** Bytes received and buffered, not yet read. */
  get recvBuffered(): number {
    return this.#buffered;
  }

  /**
   * Close gracefully (the seed's `SockIoDisconnect`): bytes already accepted
   * are still delivered, then the peer's `recv` gives end of stream. From
   * now on `send`/`recv` (and calls still waiting) reject with
   * `GS_ERR_NOT_CONNECTED`; unread bytes are dropped, and whatever the peer
   * still sends is read and discarded until it finishes its side, or for
   * `lingerMs` at most, after which the stream is destroyed.
   *
   * @returns A promise that resolves once the underlying stream has closed;
   *   it never rejects, and there is no need to wait for it.
   */
  disconnect(): Promise<void> {
    if (this.#disconnected) return this.#whenClosed;
    this.#disconnected = true;
    this.#chunks = [];
    this.#head = 0;
    this.#headOffset = 0;
    this.#buffered = 0;
    if (!this.#closed) {
      this.#localEnded = true;
      this.#stream.end();
      if (this.#pausedByUs) {
        this.#pausedByUs = false;
        this.#stream.resume();
      }
      // end() may close the stream at once (a peer that had ended already); a
      // timer armed then would hold this SockIo for lingerMs for nothing.
      if (!this.#closed) {
        this.#lingerTimer = setTimeout(() => this.#stream.destroy(), this.#lingerMs);
        this.#lingerTimer.unref?.();
      }
    }
    this.#wakeAll();
    return this.#whenClosed;
  }

  /**
   * Half-close: finish our sending side after the bytes already accepted;
   * the peer's `recv` gives end of stream, and we can go on receiving.
   * Later sends reject with `GS_ERR_NOT_CONNECTED`. Does nothing after
   * `disconnect()` or close.
   */
  end(): void {
    if (this.#disconnected || this.#closed || this.#localEnded) return;
    this.#localEnded = true;
    this.#stream.end();
    this.#wake(this.#writeWaiters);
  }

  /**
   * The socket as a Node `Duplex` (the same object on every call). Reads
   * pull from the socket only as the Duplex's consumer asks; a write calls
   * back once the socket accepted every byte. Ending the Duplex half-closes
   * the socket; destroying it disconnects. Works with
   * `stream/promises`' `pipeline`.
   */
  toDuplex(): Duplex {
    return (this.#duplex ??= coreToDuplex(this.#core()));
  }

  /**
   * The receiving side as a WHATWG `ReadableStream` (the same object each
   * time). It reads only when its reader asks; cancelling it disconnects
   * the socket.
   */
  get readable(): ReadableStream<Uint8Array> {
    return (this.#readable ??= coreToReadable(this.#core()));
  }

  /**
   * The sending side as a WHATWG `WritableStream` (the same object each
   * time). A write settles once the socket accepted the whole chunk;
   * closing half-closes the socket, aborting disconnects it.
   */
  get writable(): WritableStream<Uint8Array> {
    return (this.#writable ??= coreToWritable(this.#core()));
  }

  /**
   * Received chunks (up to 65 536 bytes each) until end of stream. Leaving
   * the loop early leaves the socket connected. Rejects with
   * `GS_ERR_NOT_CONNECTED` as `recv` does.
   */
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    return coreChunks(this.#core());
  }

  // ---- state changes from the stream ----

  readonly #onData = (chunk: Uint8Array): void => {
    if (this.#disconnected) return; // lingering: read and discard
    if (chunk.length === 0) return;
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    if (this.#buffered >= this.#highWaterMark && !this.#pausedByUs) {
      this.#pausedByUs = true;
      this.#stream.pause();
    }
    this.#wake(this.#readWaiters);
    this.#event.set();
  };

  readonly #onEnd = (): void => {
    this.#remoteEnded = true;
    if (this.#disconnected) return;
    this.#wake(this.#readWaiters);
    this.#event.set();
  };

  readonly #onDrain = (): void => {
    this.#writeBlocked = false;
    if (this.#disconnected) return;
    this.#wake(this.#writeWaiters);
    this.#event.set();
  };

  readonly #onClose = (error?: GatesockError): void => {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = error;
    clearTimeout(this.#lingerTimer);
    this.#lingerTimer = undefined;
    this.#stream.off('data', this.#onData);
    this.#stream.off('end', this.#onEnd);
    this.#stream.off('drain', this.#onDrain);
    this.#stream.off('close', this.#onClose);
    this.#wakeAll();
    if (!this.#disconnected) this.#event.set();
    this.#resolveClosed();
  };

  // ---- the operations, once, without waiting ----

  #sendNow(data: Uint8Array): number | WouldBlock {
    if (this.#disconnected) throw notConnected('send after disconnect()');
    if (this.#closed) throw notConnected('send on a closed connection', this.#closeError);
    if (this.#localEnded) throw notConnected('send after end()');
    if (data.length === 0) return 0;
    if (this.#writeBlocked) return WOULD_BLOCK;
    let sent = 0;
    while (sent < data.length) {
      const piece = data.subarray(sent, sent + SEND_PIECE_BYTES);
      const more = this.#stream.write(piece);
      sent += piece.length;
      if (!more) {
        this.#writeBlocked = true;
        break;
      }
    }
    return sent;
  }

  #recvNow(max: number): Uint8Array | WouldBlock {
    if (this.#disconnected) throw notConnected('recv after disconnect()');
    if (this.#buffered > 0) return this.#take(max);
    if (this.#remoteEnded) return new Uint8Array(0);
    if (this.#closed) throw notConnected('connection closed without an end of stream', this.#closeError);
    return WOULD_BLOCK;
  }

  /** Take 1..max buffered bytes (the buffer is not empty). */
  #take(max: number): Uint8Array {
    const first = this.#chunks[this.#head]!;
    const firstLeft = first.length - this.#headOffset;
    let out: Uint8Array;
    if (firstLeft >= max || this.#head + 1 === this.#chunks.length) {
      // One chunk suffices (or is all there is): a view, no copy.
      const n = Math.min(firstLeft, max);
      out = first.subarray(this.#headOffset, this.#headOffset + n);
      this.#consume(n);
    } else {
      out = new Uint8Array(Math.min(max, this.#buffered));
      let filled = 0;
      while (filled < out.length) {
        const chunk = this.#chunks[this.#head]!;
        const n = Math.min(chunk.length - this.#headOffset, out.length - filled);
        out.set(chunk.subarray(this.#headOffset, this.#headOffset + n), filled);
        filled += n;
        this.#consume(n);
      }
    }
    if (this.#pausedByUs && this.#buffered < this.#highWaterMark && !this.#closed) {
      this.#pausedByUs = false;
      this.#stream.resume();
    }
    return out;
  }

  /** Drop `n` bytes from the front; they lie within the head chunk. */
  #consume(n: number): void {
    this.#buffered -= n;
    this.#headOffset += n;
    if (this.#headOffset === this.#chunks[this.#head]!.length) {
      this.#chunks[this.#head] = EMPTY; // release the chunk
      this.#head++;
      this.#headOffset = 0;
      if (this.#head === this.#chunks.length) {
        this.#chunks = [];
        this.#head = 0;
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#chunks.length) {
        this.#chunks = this.#chunks.slice(this.#head);
        this.#head = 0;
      }
    }
  }

  // ---- waiting ----

  /** Try `attempt` until it does not return WOULD_BLOCK, waking on each change; `timeoutMs` 0 = no limit. */
  async #block<T>(attempt: () => T | WouldBlock, waiters: Set<() => void>, timeoutMs: number, what: string): Promise<T> {
    const deadline = timeoutMs > 0 ? performance.now() + timeoutMs : Infinity;
    for (;;) {
      const result = attempt();
      if (result !== WOULD_BLOCK) return result;
      await new Promise<void>((resolve, reject) => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const wake = (): void => {
          clearTimeout(timer);
          resolve();
        };
        waiters.add(wake);
        if (deadline !== Infinity) {
          timer = setTimeout(
            () => {
              waiters.delete(wake);
              reject(new SocketError('GS_ERR_TIMEOUT', `${what} timed out after ${timeoutMs} ms`));
            },
            Math.max(0, Math.ceil(deadline - performance.now())),
          );
        }
      });
    }
  }

  #wake(waiters: Set<() => void>): void {
    if (waiters.size === 0) return;
    const list = [...waiters];
    waiters.clear();
    for (const wake of list) wake();
  }

  #wakeAll(): void {
    this.#wake(this.#readWaiters);
    this.#wake(this.#writeWaiters);
  }

  /** The operations the stream adapters build on: no timeout. */
  #core(): SockIoCore {
    return {
      read: (max) => this.#block(() => this.#recvNow(max), this.#readWaiters, 0, 'recv'),
      writeAll: async (data) => {
        checkData(data);
        for (let off = 0; off < data.length; ) {
          off += await this.#block(() => this.#sendNow(data.subarray(off)), this.#writeWaiters, 0, 'send');
        }
      },
      end: () => this.end(),
      disconnect: () => void this.disconnect(),
    };
  }
}

const EMPTY = new Uint8Array(0);

function checkData(data: unknown): asserts data is Uint8Array {
  checkOption(data instanceof Uint8Array, 'data', 'must be a Uint8Array');
}

function checkMax(max: unknown): void {
  checkOption(Number.isSafeInteger(max) && (max as number) > 0, 'max', 'must be a positive integer');
}
