/**
 * What every {@link ByteStream} implementation shares, so the contract in
 * byte-stream.ts is enforced in one place rather than once per transport:
 *
 * - the *inbox*: bytes from the transport wait here while the stream is
 *   paused (a new stream starts paused), and leave in order, followed by one
 *   `end`, only while it is resumed;
 * - the write guard: `write()` after `end()` or close throws
 *   `GS_ERR_TRANSPORT_CLOSED`, and an empty write is a no-op;
 * - `close` exactly once, with a {@link GatesockError} when abnormal.
 *
 * A transport subclass moves bytes (`send`, `sendEnd`, `abort`), feeds the
 * inbox (`deliver`, `deliverEnd`), and says when it is finished (`finish`).
 *
 * @internal
 */
import { EventEmitter } from 'eventemitter3';
import { GatesockError, TransportError } from '../errors/index.js';
import type { ByteStream, ByteStreamEvents, TransportInfo } from './byte-stream.js';

/**
 * Wrap anything thrown or emitted by a transport as a {@link GatesockError};
 * gatesock errors pass through unchanged.
 * @internal
 */
export function toTransportError(error: unknown, context: string): GatesockError {
  if (error instanceof GatesockError) return error;
  const message = error instanceof Error ? describeError(error) : String(error);
  return new TransportError('GS_ERR_TRANSPORT_CLOSED', `${context}: ${message}`, { cause: error });
}

/**
 * One line for an OS or library error: its code (ECONNRESET) and message.
 * Node ≥ 20 reports a failed dual-stack connect as an `AggregateError` with an
 * empty message, so its inner errors are spelled out.
 * @internal
 */
export function describeError(error: Error): string {
  if (error instanceof AggregateError && error.errors.length > 0) {
    return error.errors.map((e: unknown) => (e instanceof Error ? describeError(e) : String(e))).join('; ');
  }
  const code = (error as NodeJS.ErrnoException).code;
  if (code !== undefined && !error.message.includes(code)) return `${code} ${error.message}`;
  return error.message || code || error.name;
}

/**
 * Base of the transport streams: inbox, pause state, write guard, single close.
 * @internal
 */
export abstract class StreamBase extends EventEmitter<ByteStreamEvents> implements ByteStream {
  abstract readonly info: TransportInfo;
  /** `end()` was called: our sending side is finished. */
  protected localEnded = false;
  /** `end` has been emitted: the peer's sending side is finished and read. */
  protected endEmitted = false;
  /** Bytes waiting in the inbox. */
  protected inboxBytes = 0;
  private paused = true;
  private isClosed = false;
  private inbox: Uint8Array[] = [];
  private remoteEnded = false;
  private flushScheduled = false;

  get closed(): boolean {
    return this.isClosed;
  }

  write(chunk: Uint8Array): boolean {
    return this.writeChecked(chunk, false);
  }

  writeOwned(chunk: Uint8Array): boolean {
    return this.writeChecked(chunk, true);
  }

  private writeChecked(chunk: Uint8Array, owned: boolean): boolean {
    if (this.isClosed || this.localEnded) {
      throw new TransportError('GS_ERR_TRANSPORT_CLOSED', `${this.info.kind} stream: write after ${this.isClosed ? 'close' : 'end'}`);
    }
    if (chunk.length === 0) return true;
    return this.send(chunk, owned);
  }

  end(): void {
    if (this.isClosed || this.localEnded) return;
    this.localEnded = true;
    this.sendEnd();
  }

  destroy(error?: Error): void {
    if (this.isClosed) return;
    this.abort(error);
    this.finish(error === undefined ? undefined : toTransportError(error, `${this.info.kind} stream destroyed`));
  }

  pause(): void {
    if (this.paused) return;
    this.paused = true;
    this.onPause();
  }

  resume(): void {
    if (this.isClosed) return;
    this.paused = false;
    this.onResume();
    this.scheduleFlush();
  }

  /** Queue bytes for the user. Emitted on a later microtask, in order, while resumed. */
  protected deliver(chunk: Uint8Array): void {
    if (this.isClosed || this.remoteEnded) return;
    this.inbox.push(chunk);
    this.inboxBytes += chunk.length;
    this.scheduleFlush();
  }

  /** The peer ended: emit `end` once the inbox is empty. */
  protected deliverEnd(): void {
    if (this.isClosed || this.remoteEnded) return;
    this.remoteEnded = true;
    this.scheduleFlush();
  }

  /**
   * Emit `close` (once); drops whatever is still in the inbox. `error`
   * undefined means a normal end.
   */
  protected finish(error?: GatesockError): void {
    if (this.isClosed) return;
    this.isClosed = true;
    this.inbox = [];
    this.inboxBytes = 0;
    this.onFinish();
    this.emit('close', error);
  }

  /**
   * Send bytes to the peer; return false to ask the writer to wait for
   * `drain`. With `owned`, the caller gave `chunk` up (writeOwned) and it may
   * be kept without a copy; otherwise the caller may reuse it on return.
   */
  protected abstract send(chunk: Uint8Array, owned: boolean): boolean;
  /** Send end-of-stream to the peer after everything queued. */
  protected abstract sendEnd(): void;
  /** Tear the transport down at once; `finish` is called right after. */
  protected abstract abort(error?: Error): void;
  /** The user paused: stop reading from the transport. */
  protected abstract onPause(): void;
  /** The user resumed: read from the transport again. */
  protected abstract onResume(): void;
  /** Called after each flush of the inbox (memory streams emit the peer's `drain` here). */
  protected onFlushed(): void {}
  /** Called once, right after `end` was emitted. */
  protected abstract onEndEmitted(): void;
  /** Called once when the stream closes, before `close` is emitted: release timers and handles. */
  protected onFinish(): void {}

  private scheduleFlush(): void {
    if (this.flushScheduled || this.isClosed) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    // A `data` listener may pause, end or destroy; the loop re-checks each time.
    while (!this.paused && !this.isClosed && this.inbox.length > 0) {
      const chunk = this.inbox.shift()!;
      this.inboxBytes -= chunk.length;
      this.emit('data', chunk);
    }
    if (this.isClosed) return;
    this.onFlushed();
    if (this.remoteEnded && !this.paused && this.inbox.length === 0 && !this.endEmitted && !this.isClosed) {
      this.endEmitted = true;
      this.emit('end');
      this.onEndEmitted();
    }
  }
}
