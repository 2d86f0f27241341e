/**
 * WebSocket byte streams (RFC 6455, via the `ws` package): `wsConnect`,
 * `wsListen`, and the wrapper between a `ws` WebSocket and {@link ByteStream}.
 * A WebSocket carries gatesock where only HTTP(S) gets through, and lets a
 * session share a port with an existing HTTP(S) server.
 *
 * Mapping:
 * - bytes travel as **binary** messages; a write larger than
 *   {@link WS_MAX_SEND_MESSAGE_BYTES} is split. A text message from the peer
 *   is a protocol error: the stream closes with 1003 (unsupported data) and
 *   a `GS_ERR_TRANSPORT_CLOSED` error that says so;
 * - backpressure: `write()` returns false once `ws.bufferedAmount` reaches
 *   the high-water mark; `drain` follows when a send completes with the
 *   buffer below it again;
 * - `pause`/`resume` → `ws.pause()`/`ws.resume()`, which stop and restart
 *   reading the TCP socket (messages already decoded wait in the inbox);
 * - **no half-close**: WebSocket has none. `end()` sends a normal close
 *   (1000) after everything queued; the peer gets `end` and then `close`, and
 *   can send nothing more (its `write()` throws `GS_ERR_TRANSPORT_CLOSED`).
 *   Data the peer sent before it saw our close is still delivered. After
 *   `end()`, `pause()` no longer stops reading the socket (the closing
 *   handshake must be read); what arrives waits in memory until `resume()`;
 * - `destroy()` drops the connection without a close handshake; the peer
 *   closes with an error (code 1006).
 */
import http from 'node:http';
import type https from 'node:https';
import type net from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { TransportError } from '../errors/index.js';
import { checkOption } from '../errors/check.js';
import type { ByteStream, ByteStreamListener, TransportInfo } from './byte-stream.js';
import { describeError, StreamBase } from './stream-base.js';
import { checkTimeout, formatHostPort, listenOn, serverListener } from './tcp.js';

/**
 * Largest binary message a write is sent as; longer writes are split.
 * @public
 */
export const WS_MAX_SEND_MESSAGE_BYTES = 256 * 1024;

const DEFAULT_HIGH_WATER_MARK = 256 * 1024;
const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/**
 * Options shared by {@link wsConnect} and {@link wsListen}.
 * @public
 */
export interface WsStreamOptions {
  /** `write()` returns false once this many bytes wait to be sent. Default 256 KiB. */
  highWaterMark?: number;
  /**
   * Largest message accepted from the peer, in bytes; a bigger one closes
   * the stream (1009). Bounds memory per connection. Default 1 MiB
   * (gatesock sends at most {@link WS_MAX_SEND_MESSAGE_BYTES}).
   */
  maxMessageBytes?: number;
}

/**
 * Options of {@link wsConnect}.
 * @public
 */
export interface WsConnectOptions extends WsStreamOptions {
  /** Time allowed for the TCP connect and the opening handshake, in ms. Default 10 000. */
  timeoutMs?: number;
  /** Abort the attempt; the promise rejects with `GS_ERR_CONNECT_FAILED`. */
  signal?: AbortSignal;
  /** Extra headers for the opening handshake (e.g. a bearer token for a reverse proxy). */
  headers?: Record<string, string>;
}

/**
 * Options of {@link wsListen}: either `host`/`port` (a new HTTP server is
 * bound) or `server` (ride an existing, already listening HTTP(S) server).
 * @public
 */
export interface WsListenOptions extends WsStreamOptions {
  /** Address to bind when no `server` is given. Default `127.0.0.1`. */
  host?: string;
  /** Port to bind when no `server` is given; 0 (the default) picks a free one. */
  port?: number;
  /**
   * Accept upgrades only on this path (e.g. `/gatesock`); others are left to
   * the server's other `upgrade` listeners, or refused with 404 if there
   * are none. Default: every path.
   */
  path?: string;
  /**
   * An HTTP or HTTPS server that is already listening; WebSocket upgrades
   * (on `path`) become streams while its other requests are untouched.
   * `close()` detaches from it but leaves it running.
   */
  server?: http.Server | https.Server;
}

function checkStreamOptions(options: WsStreamOptions): { highWaterMark: number; maxMessageBytes: number } {
  const highWaterMark = options.highWaterMark ?? DEFAULT_HIGH_WATER_MARK;
  const maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
  checkOption(Number.isSafeInteger(highWaterMark) && highWaterMark > 0, 'highWaterMark', 'must be a positive integer');
  checkOption(Number.isSafeInteger(maxMessageBytes) && maxMessageBytes > 0, 'maxMessageBytes', 'must be a positive integer');
  return { highWaterMark, maxMessageBytes };
}

function toBytes(data: WebSocket.RawData): Uint8Array {
  if (Array.isArray(data)) return Buffer.concat(data);
  return data instanceof ArrayBuffer ? new Uint8Array(data) : data;
}

/** An open `ws` WebSocket as a {@link ByteStream}. */
class WsStream extends StreamBase {
  readonly info: TransportInfo;
  private wantDrain = false;
  private lastError: Error | undefined;

  /**
   * @param copyOnSend - true on the server side: `ws` does not mask server
   *   frames and keeps a reference to the buffer, so we copy; client frames
   *   are masked into a fresh buffer by `ws` already.
   */
  constructor(
    private readonly ws: WebSocket,
    socket: net.Socket | undefined,
    private readonly highWaterMark: number,
    private readonly copyOnSend: boolean,
  ) {
    super();
    ws.pause();
    this.info = {
      kind: 'websocket',
      local: formatHostPort(socket?.localAddress, socket?.localPort),
      remote: formatHostPort(socket?.remoteAddress, socket?.remotePort),
    };
    ws.on('message', (data, isBinary) => {
      if (isBinary) {
        this.deliver(toBytes(data));
        return;
      }
      // RFC 6455 §7.4.1: 1003 = received a type of data it cannot accept.
      ws.close(1003, 'gatesock: binary messages only');
      this.finish(new TransportError('GS_ERR_TRANSPORT_CLOSED', `websocket ${this.info.remote} sent a text message; gatesock streams carry binary messages only`));
    });
    ws.on('error', (err) => {
      this.lastError = err;
    });
    ws.on('close', (code, reason) => this.onWsClose(code, reason.toString('utf8')));
  }

  protected send(chunk: Uint8Array): boolean {
    if (this.ws.readyState !== WebSocket.OPEN) {
      throw new TransportError('GS_ERR_TRANSPORT_CLOSED', `websocket ${this.info.remote} is closing (the peer ended; WebSocket has no half-close)`);
    }
    for (let offset = 0; offset < chunk.length; offset += WS_MAX_SEND_MESSAGE_BYTES) {
      const piece = chunk.subarray(offset, offset + WS_MAX_SEND_MESSAGE_BYTES);
      this.ws.send(this.copyOnSend ? Buffer.from(piece) : piece, { binary: true }, this.onSent);
    }
    if (this.ws.bufferedAmount < this.highWaterMark) return true;
    this.wantDrain = true;
    return false;
  }

  protected sendEnd(): void {
    // No half-close in WebSocket: a normal close, queued behind every message sent.
    this.ws.close(1000);
    // The closing handshake needs us to read the peer's close frame even if
    // the user is paused; what the peer still sends waits in the inbox. It is
    // bounded: the peer stops sending once it reads our close.
    this.ws.resume();
  }

  protected abort(): void {
    this.ws.terminate();
  }

  protected onPause(): void {
    if (!this.localEnded) this.ws.pause();
  }

  protected onResume(): void {
    this.ws.resume();
  }

  protected onEndEmitted(): void {
    // `end` is delivered only once the WebSocket has closed: nothing is left.
    this.finish();
  }

  /** Called by `ws` once each send has reached the socket (or failed, when the close path reports it). */
  private readonly onSent = (err?: Error | null): void => {
    // Node passes `null` on success.
    if (err != null || !this.wantDrain || this.closed || this.ws.bufferedAmount >= this.highWaterMark) return;
    this.wantDrain = false;
    this.emit('drain');
  };

  private onWsClose(code: number, reason: string): void {
    if (this.closed) return;
    // 1000 normal closure; 1005 a close frame without a code (RFC 6455 §7.4.1).
    if (code === 1000 || code === 1005) {
      this.deliverEnd();
      return;
    }
    const detail = `${reason === '' ? '' : ` (${reason})`}${this.lastError === undefined ? '' : `: ${describeError(this.lastError)}`}`;
    this.finish(new TransportError('GS_ERR_TRANSPORT_CLOSED', `websocket ${this.info.remote} closed abnormally, code ${code}${detail}`, { cause: this.lastError }));
  }
}

/**
 * Open a WebSocket to `url` (`ws:` or `wss:`) and return it as a (paused)
 * {@link ByteStream}. Compression is off: session records are encrypted,
 * so they would not compress.
 *
 * @example
 * ```ts
 * const stream = await wsConnect('wss://gateway.example/gatesock', { timeoutMs: 5000 });
 * ```
 * @throws `TransportError` `GS_ERR_CONNECT_FAILED` naming the URL and the
 *   reason (refused, HTTP status instead of an upgrade, timed out, aborted);
 *   `ConfigError` for a bad URL or option.
 * @public
 */
export async function wsConnect(url: string, options: WsConnectOptions = {}): Promise<ByteStream> {
  let parsed: URL | undefined;
  try {
    parsed = new URL(url);
  } catch {
    parsed = undefined;
  }
  checkOption(parsed !== undefined && (parsed.protocol === 'ws:' || parsed.protocol === 'wss:'), 'url', 'must be a ws: or wss: URL');
  const { highWaterMark, maxMessageBytes } = checkStreamOptions(options);
  const timeoutMs = checkTimeout(options.timeoutMs);
  const { signal } = options;
  const failed = (reason: string, cause?: unknown) =>
    new TransportError('GS_ERR_CONNECT_FAILED', `websocket connect to ${url} failed: ${reason}`, { cause });
  if (signal?.aborted) throw failed('aborted', signal.reason);
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false, maxPayload: maxMessageBytes, headers: options.headers });
    let socket: net.Socket | undefined;
    let settled = false;
    const settle = (error: TransportError | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (error === undefined) {
        // Synchronously, inside `open`: no message can be emitted before the wrapper listens.
        resolve(new WsStream(ws, socket, highWaterMark, false));
      } else {
        ws.terminate();
        reject(error);
      }
    };
    const onAbort = (): void => settle(failed('aborted', signal?.reason));
    const timer = setTimeout(() => settle(failed(`timed out after ${timeoutMs} ms`)), timeoutMs);
    signal?.addEventListener('abort', onAbort, { once: true });
    ws.once('upgrade', (res) => {
      socket = res.socket;
    });
    ws.once('open', () => settle(undefined));
    // Stays attached: `ws` emits `error` after a failed or aborted handshake too.
    ws.on('error', (err) => settle(failed(describeError(err), err)));
  });
}

/**
 * Accept WebSocket connections; each arrives at `onStream` as a (paused)
 * {@link ByteStream}. Binds its own HTTP server on `host`/`port` (plain
 * requests get 426 Upgrade Required), or attaches to `options.server`.
 *
 * @example
 * ```ts
 * // Share an HTTPS port: upgrades on /gatesock become streams.
 * const listener = await wsListen({ server: httpsServer, path: '/gatesock' }, (stream) => {
 *   stream.on('data', (chunk) => stream.write(chunk));
 *   stream.resume();
 * });
 * ```
 * @throws `TransportError` `GS_ERR_CONNECT_FAILED` when the address cannot
 *   be bound; `ConfigError` for a bad option (e.g. `server` together with
 *   `host`/`port`, or a `server` that is not listening).
 * @public
 */
export async function wsListen(options: WsListenOptions, onStream: (stream: ByteStream) => void): Promise<ByteStreamListener> {
  const { highWaterMark, maxMessageBytes } = checkStreamOptions(options);
  const { path, server } = options;
  checkOption(path === undefined || (typeof path === 'string' && path.startsWith('/')), 'path', "must start with '/'");
  if (server !== undefined) {
    checkOption(options.host === undefined && options.port === undefined, 'server', 'cannot be combined with host or port');
    checkOption(server.listening, 'server', 'must already be listening');
  }
  const http1 =
    server ??
    http.createServer((_req, res) => {
      res.writeHead(426, { Connection: 'close', Upgrade: 'websocket' }).end('gatesock: WebSocket upgrades only\n');
    });
  const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false, maxPayload: maxMessageBytes, clientTracking: false });
  const onUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer): void => {
    if (path !== undefined && new URL(req.url ?? '/', 'http://localhost').pathname !== path) {
      // Another `upgrade` listener may own this path; if there is none, say so.
      if (http1.listenerCount('upgrade') === 1) socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => onStream(new WsStream(ws, socket, highWaterMark, true)));
  };
  http1.on('upgrade', onUpgrade);
  const detach = (): void => {
    http1.off('upgrade', onUpgrade);
    wss.close();
  };
  if (server !== undefined) return serverListener(server, detach, false);
  return listenOn(http1, options, 'websocket', detach);
}
