/**
 * TCP byte streams: `tcpConnect`, `tcpListen`, and the `net.Socket` wrapper
 * that the HTTP CONNECT client reuses for its tunnel.
 *
 * The wrapper is a thin, faithful mapping:
 * - `write` → `socket.write` (its boolean, and the socket's `drain`); the
 *   chunk is copied, so the caller may reuse its buffer at once;
 * - `pause`/`resume` → `socket.pause`/`socket.resume`: a paused socket stops
 *   reading, the kernel's receive window fills, and the remote writer sees
 *   `write()` return false with no `drain` until we resume;
 * - half-close: sockets use `allowHalfOpen: true`; `end()` sends FIN and the
 *   peer's FIN becomes `end`; `close` follows once both directions are done;
 * - `destroy()` sends a TCP reset (RST), so the peer closes with an error
 *   rather than seeing an ordinary `end`. A peer that is paused notices the
 *   reset only when it reads or writes again;
 * - Nagle's algorithm is off (`setNoDelay(true)`): sessions send small
 *   frames and care about latency.
 */
import net from 'node:net';
import { TransportError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import type { ByteStream, ByteStreamListener, TransportInfo } from './byte-stream.js';
import { describeError, StreamBase, toTransportError } from './stream-base.js';

/** Default time allowed for a TCP connect, in milliseconds. */
const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/**
 * Options of {@link tcpConnect}.
 * @public
 */
export interface TcpConnectOptions {
  /** Host name or IP address (IPv4 or IPv6, without brackets). */
  host: string;
  /** TCP port, 1 to 65535. */
  port: number;
  /** Give up connecting after this many milliseconds. Default 10 000. */
  timeoutMs?: number;
  /** Abort the connect attempt; the promise rejects with `GS_ERR_CONNECT_FAILED`. */
  signal?: AbortSignal;
}

/**
 * Options of {@link tcpListen}.
 * @public
 */
export interface TcpListenOptions {
  /**
   * Address to bind, e.g. `127.0.0.1`, `::1`, `0.0.0.0` or `::`. Default
   * `127.0.0.1`: listening beyond this machine is a choice made by name.
   */
  host?: string;
  /** Port to bind; 0 (the default) picks a free one, see `listener.port`. */
  port?: number;
  /** Length of the kernel's queue of pending connections. Default: Node's (511). */
  backlog?: number;
}

/**
 * `host:port`, with brackets around an IPv6 address (`[::1]:443`).
 * @internal
 */
export function formatHostPort(host: string | undefined, port: number | undefined): string {
  const h = host ?? '?';
  return `${h.includes(':') ? `[${h}]` : h}:${port ?? '?'}`;
}

/**
 * Check `host` and `port` options of a connect call, by name.
 * @internal
 */
export function checkEndpoint(host: unknown, port: unknown, prefix: string): void {
  checkOption(typeof host === 'string' && host.length > 0, `${prefix}host`, 'must be a non-empty string');
  checkOption(Number.isInteger(port) && (port as number) >= 1 && (port as number) <= 65535, `${prefix}port`, 'must be an integer from 1 to 65535');
}

/**
 * Check a `timeoutMs` option, returning it or the default.
 * @internal
 */
export function checkTimeout(timeoutMs: number | undefined): number {
  const t = timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  checkOption(Number.isFinite(t) && t > 0, 'timeoutMs', 'must be a positive number of milliseconds');
  return t;
}

/**
 * Open a TCP connection, resolving with the raw connected socket
 * (half-open allowed, Nagle off). Every failure is `GS_ERR_CONNECT_FAILED`
 * naming `what` and `host:port`.
 * @internal
 */
export function openSocket(host: string, port: number, timeoutMs: number, signal: AbortSignal | undefined, what: string): Promise<net.Socket> {
  const where = formatHostPort(host, port);
  const failed = (reason: string, cause?: unknown) =>
    new TransportError('GS_ERR_CONNECT_FAILED', `${what} connect to ${where} failed: ${reason}`, { cause });
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(failed('aborted', signal.reason));
      return;
    }
    let settled = false;
    const socket = net.connect({ host, port, allowHalfOpen: true });
    const settle = (error?: TransportError): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.off('connect', onConnect);
      if (error === undefined) {
        resolve(socket);
      } else {
        socket.destroy();
        reject(error);
      }
    };
    const onConnect = (): void => {
      socket.setNoDelay(true);
      settle();
    };
    const onAbort = (): void => settle(failed('aborted', signal?.reason));
    const timer = setTimeout(() => settle(failed(`timed out after ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', onConnect);
    // Stays attached: an error in the gap before the stream wrapper takes
    // over must not become an uncaught exception (the wrapper still learns of
    // it from `close(hadError)`).
    socket.on('error', (err) => settle(failed(describeError(err), err)));
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

// Copies of written chunks. A fresh Buffer per write would allocate as many
// bytes as are sent: at hundreds of MB/s that external memory alone makes V8
// collect garbage every few tens of milliseconds (measured: a scavenge and a
// mark-compact per ~30 ms on the relay thread of the session throughput
// figure). Instead copies are carved out of 1 MiB slabs, and a slab is reused
// once the socket has called back for every copy in it. A copy whose callback
// never comes (the socket died) just leaves its slab to the garbage
// collector, so a slab is never reused while the kernel may still read it.
const SLAB_BYTES = 1 << 20;
/** Larger chunks get a buffer of their own. */
const MAX_SLAB_COPY = 256 * 1024;
/** Idle slabs kept for reuse, process-wide. */
const MAX_FREE_SLABS = 8;

interface Slab {
  readonly buf: Buffer;
  /** Bytes handed out since the slab was last empty. */
  used: number;
  /** Copies handed out whose write has not called back yet. */
  pending: number;
}

let currentSlab: Slab | undefined;
const freeSlabs: Slab[] = [];

/** A slab with room for `n` bytes, or undefined when `n` is too large to pool. */
function slabFor(n: number): Slab | undefined {
  if (n > MAX_SLAB_COPY) return undefined;
  const s = currentSlab;
  if (s !== undefined) {
    if (s.pending === 0) s.used = 0;
    if (SLAB_BYTES - s.used >= n) return s;
  }
  // `s` is retired: releaseSlab returns it to the free list once its last copy is written.
  const next = freeSlabs.pop() ?? { buf: Buffer.allocUnsafeSlow(SLAB_BYTES), used: 0, pending: 0 };
  next.used = 0;
  currentSlab = next;
  return next;
}

function releaseSlab(slab: Slab): void {
  if (--slab.pending > 0 || slab === currentSlab) return;
  if (freeSlabs.length < MAX_FREE_SLABS) freeSlabs.push(slab);
}

/**
 * A connected `net.Socket` as a {@link ByteStream}.
 * @internal
 */
export class SocketStream extends StreamBase {
  readonly info: TransportInfo;
  private socketEnded = false;
  private socketClosed = false;

  /**
   * @param socket - connected; this stream takes it over (pauses it first).
   * @param head - bytes already read from the socket by whoever opened it
   *   (e.g. tunnel bytes behind a proxy's response header); emitted first.
   */
  constructor(
    private readonly socket: net.Socket,
    kind: string,
    remote?: string,
    head?: Uint8Array,
  ) {
    super();
    socket.pause();
    this.info = {
      kind,
      local: formatHostPort(socket.localAddress, socket.localPort),
      remote: remote ?? formatHostPort(socket.remoteAddress, socket.remotePort),
    };
    if (head !== undefined && head.length > 0) this.deliver(head);
    socket.on('data', (chunk: Buffer) => this.deliver(chunk));
    socket.on('end', () => {
      this.socketEnded = true;
      this.deliverEnd();
    });
    socket.on('drain', () => {
      if (!this.closed) this.emit('drain');
    });
    socket.on('error', (err) => this.finish(toTransportError(err, `${kind} connection ${this.info.remote}`)));
    socket.on('close', (hadError) => this.onSocketClose(hadError));
  }

  protected send(chunk: Uint8Array, owned: boolean): boolean {
    // net.Socket keeps a reference until the bytes reach the kernel, so a
    // chunk the caller may reuse is copied (into a recycled slab); an owned
    // one is sent as it is.
    if (owned) return this.socket.write(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength));
    const slab = slabFor(chunk.length);
    if (slab === undefined) return this.socket.write(Buffer.from(chunk));
    const copy = slab.buf.subarray(slab.used, slab.used + chunk.length);
    copy.set(chunk);
    slab.used += chunk.length;
    slab.pending++;
    return this.socket.write(copy, () => releaseSlab(slab));
  }

  protected sendEnd(): void {
    this.socket.end();
  }

  protected abort(): void {
    try {
      this.socket.resetAndDestroy();
    } finally {
      this.socket.destroy();
    }
  }

  protected onPause(): void {
    this.socket.pause();
  }

  protected onResume(): void {
    this.socket.resume();
  }

  protected onEndEmitted(): void {
    if (this.socketClosed) this.finish();
  }

  private onSocketClose(hadError: boolean): void {
    this.socketClosed = true;
    if (this.closed) return;
    const where = `${this.info.kind} connection ${this.info.remote}`;
    if (hadError) {
      this.finish(new TransportError('GS_ERR_TRANSPORT_CLOSED', `${where} closed after an error`));
    } else if (!this.socketEnded) {
      this.finish(new TransportError('GS_ERR_TRANSPORT_CLOSED', `${where} closed before the peer ended`));
    } else if (this.endEmitted) {
      this.finish();
    }
    // else: the peer's end is still queued behind unread data (the user paused);
    // `close` follows once `end` has been emitted.
  }
}

/**
 * Open a TCP connection and return it as a (paused) {@link ByteStream}.
 *
 * @example
 * ```ts
 * const stream = await tcpConnect({ host: '::1', port: 4433, timeoutMs: 2000 });
 * stream.on('data', (chunk) => console.log(chunk.length));
 * stream.resume();
 * ```
 * @throws `TransportError` `GS_ERR_CONNECT_FAILED` naming `host:port` and the
 *   OS reason (refused, unreachable, timed out, aborted);
 *   `ConfigError` for a bad option.
 * @public
 */
export async function tcpConnect(options: TcpConnectOptions): Promise<ByteStream> {
  checkEndpoint(options.host, options.port, '');
  const timeoutMs = checkTimeout(options.timeoutMs);
  const socket = await openSocket(options.host, options.port, timeoutMs, options.signal, 'tcp');
  return new SocketStream(socket, 'tcp');
}

/**
 * Bind `server` and resolve once it listens, as a {@link ByteStreamListener}
 * whose `close()` stops accepting (already accepted streams stay open) and
 * then runs `onClose`. Bind failures are `GS_ERR_LISTEN_FAILED`.
 * @internal
 */
export function listenOn(
  server: net.Server,
  options: { host?: string; port?: number; backlog?: number },
  what: string,
  onClose: () => void = () => {},
): Promise<ByteStreamListener> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 0;
  checkOption(typeof host === 'string' && host.length > 0, 'host', 'must be a non-empty string');
  checkOption(Number.isInteger(port) && port >= 0 && port <= 65535, 'port', 'must be an integer from 0 to 65535');
  checkOption(options.backlog === undefined || (Number.isInteger(options.backlog) && options.backlog > 0), 'backlog', 'must be a positive integer');
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      reject(new TransportError('GS_ERR_LISTEN_FAILED', `${what} listen on ${formatHostPort(host, port)} failed: ${describeError(err)}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen({ host, port, backlog: options.backlog }, () => {
      server.off('error', onError);
      // Errors after listening (e.g. EMFILE on accept) leave the server
      // listening; Node retries, so they are not fatal to the listener.
      server.on('error', () => {});
      resolve(serverListener(server, onClose, true));
    });
  });
}

/**
 * A listening server as a {@link ByteStreamListener}. `close()` runs
 * `onClose`, then stops the server from listening if `owned`.
 * @internal
 */
export function serverListener(server: net.Server, onClose: () => void, owned: boolean): ByteStreamListener {
  const bound = server.address() as net.AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: formatHostPort(bound.address, bound.port),
    port: bound.port,
    close(): Promise<void> {
      // `server.close()` stops listening at once but calls back only after
      // every accepted connection has ended; we promise only the former.
      closing ??= new Promise((resolve) => {
        onClose();
        if (owned && server.listening) server.close();
        setImmediate(resolve);
      });
      return closing;
    },
  };
}

/**
 * Accept TCP connections; each arrives at `onStream` as a (paused)
 * {@link ByteStream}.
 *
 * @example
 * ```ts
 * const listener = await tcpListen({ host: '::1', port: 0 }, (stream) => {
 *   stream.on('data', (chunk) => stream.write(chunk)); // echo
 *   stream.on('end', () => stream.end());
 *   stream.resume();
 * });
 * console.log(listener.address); // [::1]:40123
 * ```
 * @throws `TransportError` `GS_ERR_LISTEN_FAILED` when the address cannot be
 *   bound (in use, not local); `ConfigError` for a bad option.
 * @public
 */
export async function tcpListen(options: TcpListenOptions, onStream: (stream: ByteStream) => void): Promise<ByteStreamListener> {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    socket.setNoDelay(true);
    onStream(new SocketStream(socket, 'tcp'));
  });
  return listenOn(server, options, 'tcp');
}
