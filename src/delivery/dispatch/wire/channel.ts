/**
 * One dispatch channel over a SockIo: whole {@link ChannelMessage}s in and
 * out (messages.ts is the codec), for the center, the agent and a
 * repository alike.
 *
 * Receiving: a read loop pulls chunks from the socket into a
 * {@link MessageReader}. Each message goes to the first waiting
 * {@link DispatchChannel.next} call whose filter takes it; otherwise to the
 * `message` listeners; with neither, it waits in a small backlog that
 * `next()` reads first. While the backlog is full the loop stops reading,
 * so an unread peer meets the socket's backpressure instead of filling
 * memory. A malformed message closes the channel (and only this channel)
 * with the `DispatchError`.
 *
 * Sending: messages are queued and written whole, one after another, each
 * waiting for the socket to accept its bytes (backpressure), so two
 * concurrent `send()` calls never interleave their bytes.
 */
import { EventEmitter } from 'eventemitter3';
import { ConfigError, DispatchError, GatesockError, SocketError } from '../../../errors/index.js';
import { checkOption } from '../../../errors/check.js';
import type { SockIo } from '../../../socket/index.js';
import { MessageReader, encodeMessage, type ChannelMessage } from './messages.js';

/** Default of the `maxBacklog` option: messages held for `next()` before reading pauses. @public */
export const DEFAULT_CHANNEL_BACKLOG = 64;
/** Node's timers overflow past 2^31 − 1 ms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Events of a {@link DispatchChannel}.
 * @public
 */
export interface DispatchChannelEvents {
  /** A message no `next()` call took. */
  message: (m: ChannelMessage) => void;
  /** The channel closed: `err` is undefined for a clean end (either side), else why. Emitted once. */
  close: (err?: GatesockError) => void;
}

/**
 * Options of a {@link DispatchChannel}.
 * @public
 */
export interface DispatchChannelOptions {
  /** Largest message accepted (`len`), default 64 MiB + 64 KiB. */
  maxBytes?: number;
  /** Messages held for `next()` when nobody listens, before reading pauses (default 64). */
  maxBacklog?: number;
}

interface Waiter {
  filter: (m: ChannelMessage) => boolean;
  resolve: (m: ChannelMessage) => void;
  reject: (err: GatesockError) => void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/**
 * One dispatch channel over a SockIo (or any ByteStream via
 * `SockIo.fromStream`).
 *
 * @example
 * ```ts
 * const [a, b] = memoryPair();
 * const center = new DispatchChannel(SockIo.fromStream(a));
 * const agent = new DispatchChannel(SockIo.fromStream(b));
 * await agent.send({ t: 'hello', agentMsid, certificate, pending: [] });
 * const hello = await center.next((m) => m.t === 'hello', 5000);
 * ```
 * @public
 */
export class DispatchChannel extends EventEmitter<DispatchChannelEvents> {
  /** The socket the channel runs over. */
  readonly sock: SockIo;
  readonly #reader: MessageReader;
  readonly #maxBacklog: number;
  readonly #backlog: ChannelMessage[] = [];
  readonly #waiters: Waiter[] = [];
  #room: (() => void) | undefined;
  #sendChain: Promise<unknown> = Promise.resolve();
  #closed = false;
  #closing = false;
  #closeError: GatesockError | undefined;

  /** Start reading `sock` at once; attach listeners in the same tick. */
  constructor(sock: SockIo, options: DispatchChannelOptions = {}) {
    super();
    const maxBacklog = options.maxBacklog ?? DEFAULT_CHANNEL_BACKLOG;
    checkOption(Number.isSafeInteger(maxBacklog) && maxBacklog >= 1, 'maxBacklog', 'must be a positive integer');
    this.sock = sock;
    this.#maxBacklog = maxBacklog;
    this.#reader = new MessageReader(options.maxBytes === undefined ? {} : { maxBytes: options.maxBytes });
    void this.#readLoop();
  }

  /** True once the channel closed (either side, or an error). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Send one message: resolves once the socket accepted all its bytes.
   * Concurrent sends go out whole, in call order.
   * @throws DispatchError `GS_ERR_DISPATCH_MALFORMED` for a message outside
   *   the grammar (nothing is sent); SocketError `GS_ERR_NOT_CONNECTED` once
   *   the channel closed.
   */
  send(m: ChannelMessage): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = encodeMessage(m);
    } catch (err) {
      return Promise.reject(err);
    }
    const write = this.#sendChain.then(async () => {
      if (this.#closed || this.#closing) throw this.#notConnected();
      for (let off = 0; off < bytes.length; ) off += await this.sock.send(bytes.subarray(off));
    });
    this.#sendChain = write.catch(() => undefined);
    return write;
  }

  /**
   * The next message that `filter` takes (default: any), from the backlog
   * first. A message taken here is not emitted as `message`.
   * @param timeoutMs - Give up after this long (default: wait for ever).
   * @throws DispatchError `GS_ERR_DISPATCH_TIMEOUT` when the time passes;
   *   the channel's close error (or SocketError `GS_ERR_NOT_CONNECTED`) once it closed.
   */
  next(filter: (m: ChannelMessage) => boolean = () => true, timeoutMs?: number): Promise<ChannelMessage> {
    const i = this.#backlog.findIndex(filter);
    if (i >= 0) {
      const [m] = this.#backlog.splice(i, 1);
      this.#wakeReader();
      return Promise.resolve(m!);
    }
    if (this.#closed) return Promise.reject(this.#closeError ?? this.#notConnected());
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > MAX_TIMER_MS)) {
      return Promise.reject(new ConfigError('GS_ERR_INVALID_OPTION', `timeoutMs must be an integer from 0 to ${MAX_TIMER_MS}`));
    }
    return new Promise((resolve, reject) => {
      const w: Waiter = { filter, resolve, reject, timer: undefined };
      if (timeoutMs !== undefined) {
        w.timer = setTimeout(() => {
          this.#removeWaiter(w);
          reject(new DispatchError('GS_ERR_DISPATCH_TIMEOUT', `no matching dispatch message within ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.#waiters.push(w);
    });
  }

  /**
   * Close: messages already queued by `send()` go out first, then the socket
   * is disconnected. Resolves once the socket closed; never rejects.
   */
  async close(): Promise<void> {
    if (!this.#closing) {
      this.#closing = true;
      await this.#sendChain;
      this.#finish(undefined);
    }
    await this.sock.disconnect();
  }

  // ---- receiving ----

  async #readLoop(): Promise<void> {
    try {
      for await (const chunk of this.sock) {
        for (const m of this.#reader.push(chunk)) this.#deliver(m);
        while (this.#backlog.length >= this.#maxBacklog && !this.#closed) await new Promise<void>((r) => (this.#room = r));
        if (this.#closed) return;
      }
      this.#finish(undefined);
    } catch (err) {
      if (this.#closing) this.#finish(undefined);
      else if (err instanceof GatesockError) this.#finish(err);
      else this.#finish(new SocketError('GS_ERR_NOT_CONNECTED', `dispatch channel failed: ${String(err)}`, { cause: err }));
    }
  }

  #deliver(m: ChannelMessage): void {
    const w = this.#waiters.find((x) => x.filter(m));
    if (w) {
      this.#removeWaiter(w);
      w.resolve(m);
      return;
    }
    if (this.listenerCount('message') > 0) {
      try {
        this.emit('message', m);
      } catch (err) {
        // A listener's own bug: surface it as Node's EventEmitter would, without killing the channel.
        queueMicrotask(() => {
          throw err;
        });
      }
      return;
    }
    this.#backlog.push(m);
  }

  #removeWaiter(w: Waiter): void {
    const i = this.#waiters.indexOf(w);
    if (i >= 0) this.#waiters.splice(i, 1);
    if (w.timer !== undefined) clearTimeout(w.timer);
  }

  #wakeReader(): void {
    const room = this.#room;
    this.#room = undefined;
    room?.();
  }

  #notConnected(): SocketError {
    return new SocketError('GS_ERR_NOT_CONNECTED', 'the dispatch channel is closed', this.#closeError ? { cause: this.#closeError } : undefined);
  }

  #finish(err: GatesockError | undefined): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeError = err;
    for (const w of this.#waiters.splice(0)) {
      if (w.timer !== undefined) clearTimeout(w.timer);
      w.reject(err ?? this.#notConnected());
    }
    this.#wakeReader();
    void this.sock.disconnect();
    this.emit('close', err);
  }
}
