/**
 * The one byte-stream contract every transport implements and the session
 * layer consumes (DESIGN.md, src/transport).
 *
 * Contract, in the order a user meets it:
 * - A new ByteStream is **paused**: nothing is emitted until `resume()` is
 *   called, so listeners can be attached first and no byte is lost.
 * - `data` delivers chunks in order; the listener owns the chunk.
 * - `write()` queues bytes and returns `false` once the transport's buffer
 *   is past its high-water mark; the caller waits for `drain` before writing
 *   more (backpressure). Writing after `end()` or close throws
 *   `GS_ERR_TRANSPORT_CLOSED`.
 * - `pause()` stops `data` events; the transport then stops reading from its
 *   peer, so the peer's writes see backpressure in turn.
 * - `end()` half-closes our sending side; the peer sees `end`.
 * - `close` is emitted exactly once, when both directions are finished or the
 *   stream is destroyed; it carries an error if the end was abnormal.
 */
import { EventEmitter } from 'eventemitter3';
import type { GatesockError } from '../errors/index.js';

/**
 * Events of a {@link ByteStream}.
 * @public
 */
export interface ByteStreamEvents {
  /** Bytes arrived from the peer, in order. The listener owns the chunk. */
  data: (chunk: Uint8Array) => void;
  /** The peer half-closed its side: no more `data` will come. */
  end: () => void;
  /** `write()` returned false earlier and the stream can take more now. */
  drain: () => void;
  /** The stream is finished in both directions; emitted exactly once. */
  close: (error?: GatesockError) => void;
}

/**
 * What a transport knows about its endpoints, for logs and diagnostics.
 * @public
 */
export interface TransportInfo {
  /** Which transport carries the stream. */
  readonly kind: 'tcp' | 'websocket' | 'http-connect' | 'memory' | 'secure' | string;
  /** Local endpoint, e.g. `127.0.0.1:5000`, when known. */
  readonly local?: string;
  /** Remote endpoint, e.g. `[::1]:443`, when known. */
  readonly remote?: string;
}

/**
 * A reliable, ordered, bidirectional byte stream with backpressure.
 * @public
 */
export interface ByteStream extends EventEmitter<ByteStreamEvents> {
  /**
   * Queue bytes for the peer. Returns false when the caller should wait for
   * `drain` before writing more. The stream does not keep a reference to
   * `chunk` after returning unless documented by the transport.
   */
  write(chunk: Uint8Array): boolean;
  /**
   * Like `write()`, but the caller hands `chunk` over: the stream may keep
   * it without copying, and the caller must never modify it again. Optional;
   * a caller that has a fresh buffer it will not touch (a sealed record)
   * uses it where present and falls back to `write()`.
   */
  writeOwned?(chunk: Uint8Array): boolean;
  /** Half-close: send everything queued, then signal end to the peer. */
  end(): void;
  /** Abort both directions at once; queued bytes may be lost. */
  destroy(error?: Error): void;
  /** Stop emitting `data` (and stop reading from the peer). */
  pause(): void;
  /** Start or continue emitting `data`. A new stream starts paused. */
  resume(): void;
  /** True once `close` has been emitted. */
  readonly closed: boolean;
  /** Endpoint description. */
  readonly info: TransportInfo;
}

/**
 * A listener that accepts incoming byte streams (TCP server, WebSocket
 * server, in-memory acceptor).
 * @public
 */
export interface ByteStreamListener {
  /** The address actually bound, e.g. `127.0.0.1:41234`. */
  readonly address: string;
  /** The bound port, for listeners on an IP port. */
  readonly port: number;
  /** Stop accepting; streams already accepted stay open. */
  close(): Promise<void>;
}
