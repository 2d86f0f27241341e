/**
 * An in-memory pair of connected {@link ByteStream}s, for tests and
 * experiments. (Shaping — latency, bandwidth, jitter — is added in this file.)
 */
import { EventEmitter } from 'eventemitter3';
import { TransportError, type GatesockError } from '../errors/index.js';
import type { ByteStream, ByteStreamEvents, TransportInfo } from './byte-stream.js';

/**
 * Options of {@link memoryPair}.
 * @public
 */
export interface MemoryPairOptions {
  /** Bytes a side may have queued towards its peer before `write()` returns false. Default 1 MiB. */
  highWaterMark?: number;
}

class MemoryStream extends EventEmitter<ByteStreamEvents> implements ByteStream {
  peer!: MemoryStream;
  readonly info: TransportInfo;
  closed = false;
  private paused = true;
  private inbox: Uint8Array[] = [];
  private inboxBytes = 0;
  private inboxEnded = false;
  private endEmitted = false;
  private localEnded = false;
  private wantDrain = false;
  private flushScheduled = false;

  constructor(
    name: string,
    private readonly highWaterMark: number,
  ) {
    super();
    this.info = { kind: 'memory', local: name, remote: name === 'a' ? 'b' : 'a' };
  }

  write(chunk: Uint8Array): boolean {
    if (this.localEnded || this.closed) throw new TransportError('GS_ERR_TRANSPORT_CLOSED', 'write after end or close');
    if (chunk.length === 0) return true;
    const full = this.peer.deliver(chunk.slice());
    if (full) this.wantDrain = true;
    return !full;
  }

  end(): void {
    if (this.localEnded || this.closed) return;
    this.localEnded = true;
    this.peer.deliverEnd();
    this.maybeClose();
  }

  destroy(error?: Error): void {
    if (this.closed) return;
    this.finish(error);
    this.peer.finish(undefined);
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.scheduleFlush();
  }

  /** Called by the peer: queue bytes here. Returns true when past the high-water mark. */
  private deliver(chunk: Uint8Array): boolean {
    if (this.closed) return false;
    this.inbox.push(chunk);
    this.inboxBytes += chunk.length;
    this.scheduleFlush();
    return this.inboxBytes >= this.highWaterMark;
  }

  private deliverEnd(): void {
    this.inboxEnded = true;
    this.scheduleFlush();
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.closed) return;
    this.flushScheduled = true;
    queueMicrotask(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    while (!this.paused && !this.closed && this.inbox.length > 0) {
      const chunk = this.inbox.shift()!;
      this.inboxBytes -= chunk.length;
      this.emit('data', chunk);
    }
    if (this.inboxBytes < this.highWaterMark && this.peer.wantDrain) {
      this.peer.wantDrain = false;
      this.peer.emit('drain');
    }
    if (this.inboxEnded && this.inbox.length === 0 && !this.endEmitted && !this.closed) {
      this.endEmitted = true;
      this.emit('end');
      this.maybeClose();
    }
  }

  private maybeClose(): void {
    if (this.localEnded && this.endEmitted) this.finish(undefined);
  }

  private finish(error: Error | undefined): void {
    if (this.closed) return;
    this.closed = true;
    this.inbox = [];
    this.inboxBytes = 0;
    const gsError =
      error === undefined
        ? undefined
        : ((error as GatesockError).code !== undefined
            ? (error as GatesockError)
            : new TransportError('GS_ERR_TRANSPORT_CLOSED', error.message, { cause: error }));
    this.emit('close', gsError);
  }
}

/**
 * Make two connected in-memory byte streams: what one writes, the other reads.
 * @public
 */
export function memoryPair(options: MemoryPairOptions = {}): [ByteStream, ByteStream] {
  const hwm = options.highWaterMark ?? 1 << 20;
  const a = new MemoryStream('a', hwm);
  const b = new MemoryStream('b', hwm);
  a.peer = b;
  b.peer = a;
  return [a, b];
}
